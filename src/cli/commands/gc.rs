//! `provision gc`: clean up after worktrees that are gone (the decisions
//! are `lifecycle::gc`'s).

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::lifecycle::gc::{self, GcOptions};
use crate::lifecycle::store::size;
use crate::output::{self, BOLD, DIM, GREEN, RED, Report, paint};
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print what would be removed and kept, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also remove clean worktrees whose branch is merged into the main checkout's branch.
    #[arg(long)]
    pub merged: bool,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let options = GcOptions {
        dry_run: args.dry_run,
        merged: args.merged,
    };
    let report = gc::gc(&Workspace::discover(&globals.cwd)?, options)?;
    output::emit(&report, globals.json);
    Ok(if report.failed.is_empty() {
        Exit::Clean
    } else {
        Exit::Error
    })
}

impl Report for gc::Report {
    fn text(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        out.push_str(&paint(BOLD, format!("{verb} {}\n", self.removed.len())));
        for item in &self.removed {
            let r = &item.removal;
            out.push_str(&format!(
                "  {}  {}  ({})\n",
                paint(GREEN, &r.name),
                r.path,
                item.reason
            ));
            for line in &r.done {
                out.push_str(&format!("      {line}\n"));
            }
        }
        out.push_str(&paint(BOLD, format!("kept {}\n", self.kept.len())));
        let width = self.kept.iter().map(|k| k.name.len()).max().unwrap_or(0);
        let path_width = self.kept.iter().map(|k| k.path.len()).max().unwrap_or(0);
        for kept in &self.kept {
            out.push_str(&format!(
                "  {:<width$}  {}  {}\n",
                kept.name,
                paint(DIM, format!("{:<path_width$}", kept.path)),
                kept.reason
            ));
        }
        for failed in &self.failed {
            out.push_str(&format!(
                "{} {}  {}: {}\n",
                paint(RED, "failed"),
                failed.name,
                failed.path,
                failed.error
            ));
        }
        if !self.set_aside.is_empty() {
            out.push_str(&paint(BOLD, "set aside by rebuilds\n"));
        }
        for aside in &self.set_aside {
            out.push_str(&format!(
                "  {}  (of {})  {}\n",
                aside.database, aside.sandbox, aside.done
            ));
        }
        if !self.half_made.is_empty() {
            out.push_str(&paint(
                BOLD,
                "left half made by a provision that was killed\n",
            ));
        }
        for half in &self.half_made {
            out.push_str(&format!("  {}  {}\n", half.name, half.done));
        }
        if !self.store.entries.is_empty() {
            out.push_str(&paint(
                BOLD,
                format!("store of migrated states: {}\n", self.store.summary()),
            ));
        }
        for entry in &self.store.entries {
            out.push_str(&format!(
                "  {}  {}  {}\n",
                entry.name,
                size(entry.bytes),
                entry.done.as_deref().unwrap_or_default()
            ));
        }
        if self.dry_run {
            out.push_str("dry run: nothing was changed\n");
        }
        out
    }
}
