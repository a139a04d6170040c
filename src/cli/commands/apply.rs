//! `provision apply` (and a bare `provision`): bring this worktree's sandbox
//! to what the recipe says (the work is `sandbox::apply`'s).

use std::path::Path;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output::{self, BOLD, GREEN, Report, paint};
use crate::recipe::trust;
use crate::sandbox::apply::{self, Outcome};
use crate::workspace::{Workspace, WorktreeSandbox};

use super::{all, short};

#[derive(Debug, clap::Args, Default)]
pub struct Args {
    /// Print what would be done, and do nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Apply in every worktree that has a sandbox, each reported on its own;
    /// exit 2 if any failed.
    #[arg(long)]
    pub all: bool,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    if args.all {
        let report = all::run(&globals.cwd, &globals.progress, |path| {
            apply_in(path, args.dry_run, globals)
        })?;
        output::emit(&report, globals.json);
        return Ok(if report.failed() == 0 {
            Exit::Clean
        } else {
            Exit::Error
        });
    }
    let outcome = apply_in(&globals.cwd, args.dry_run, globals)?;
    output::emit(&outcome, globals.json);
    Ok(Exit::Clean)
}

fn apply_in(dir: &Path, dry_run: bool, globals: &Globals) -> Result<Outcome, BoxError> {
    let workspace = Workspace::discover(dir)?;
    trust::check_recipe(&workspace.checkout.main, &workspace.settings)?;
    let sandbox = WorktreeSandbox::reserve(workspace, None, dry_run)?;
    let options = apply::Options {
        dry_run,
        ..apply::Options::default()
    };
    apply::apply(&sandbox, options, &globals.progress)
}

impl Report for Outcome {
    fn text(&self) -> String {
        if self.dry_run {
            let mut out = format!(
                "{}\n",
                paint(
                    BOLD,
                    format!(
                        "would apply {} action(s) to {}",
                        self.actions.len(),
                        self.worktree
                    )
                )
            );
            for action in &self.actions {
                out.push_str(&format!("  {action}\n"));
            }
            return out;
        }
        if self.actions.is_empty() {
            return format!(
                "{}\n",
                paint(
                    GREEN,
                    format!(
                        "sandbox {} is up to date (lock {})",
                        self.worktree,
                        short(&self.lock)
                    )
                )
            );
        }
        format!(
            "{}\n",
            paint(
                GREEN,
                format!(
                    "sandbox {}: {} action(s) applied (lock {})",
                    self.worktree,
                    self.actions.len(),
                    short(&self.lock)
                )
            )
        )
    }
}
