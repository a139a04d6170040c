//! `provision verify`: the sandbox against its lock, and the lock against
//! the recipe, reading only; exit 1 on drift or a stale lock.

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::git::Checkout;
use crate::output::{self, CYAN, DIM, GREEN, RED, Report, YELLOW, paint};
use crate::sandbox::verify::{self, FindingKind};

use super::all;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verify every worktree that has a sandbox, each reported on its own;
    /// exit 1 if any drifted, 2 if any could not be read.
    #[arg(long)]
    pub all: bool,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    if args.all {
        let report = all::run(&globals.cwd, &globals.progress, |path| {
            verify::verify(Checkout::discover(path)?)
        })?;
        output::emit(&report, globals.json);
        let drifted = report
            .sandboxes
            .iter()
            .any(|e| matches!(e, all::Each::Done(r) if !r.clean));
        return Ok(match (report.failed(), drifted) {
            (0, false) => Exit::Clean,
            (0, true) => Exit::Drift,
            _ => Exit::Error,
        });
    }
    let report = verify::verify(Checkout::discover(&globals.cwd)?)?;
    for warning in &report.warnings {
        globals.progress.warn(warning);
    }
    output::emit(&report, globals.json);
    Ok(if report.clean {
        Exit::Clean
    } else {
        Exit::Drift
    })
}

impl Report for verify::Report {
    fn text(&self) -> String {
        let mut out = String::new();
        for line in self.diff.lines() {
            let style = match line.chars().next() {
                Some('+') if !line.starts_with("+++") => GREEN,
                Some('-') if !line.starts_with("---") => RED,
                Some('@') => CYAN,
                _ => DIM,
            };
            out.push_str(&paint(style, line));
            out.push('\n');
        }
        let width = self
            .findings
            .iter()
            .map(|f| f.subject.len())
            .max()
            .unwrap_or(0);
        for f in &self.findings {
            let kind = paint(
                if f.kind == FindingKind::Stale {
                    YELLOW
                } else {
                    RED
                },
                format!("{:<5}", f.kind),
            );
            out.push_str(&format!("{kind} {:<width$}  {}\n", f.subject, f.message));
        }
        let name = self.worktree.as_deref().unwrap_or("this worktree");
        if self.clean {
            out.push_str(&paint(GREEN, format!("sandbox {name} matches its lock\n")));
        } else if self.diverged {
            out.push_str(&format!(
                "{} finding(s) in {name}; `provision db reset` rebuilds the database, and `provision apply` repairs the rest\n",
                self.findings.len()
            ));
        } else {
            out.push_str(&format!(
                "{} finding(s) in {name}; `provision apply` repairs what it can\n",
                self.findings.len()
            ));
        }
        out
    }
}
