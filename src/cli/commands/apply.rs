//! `provision apply` (and a bare `provision`): bring this worktree's sandbox
//! to what the recipe says (the work is `sandbox::apply`'s).

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output::{self, BOLD, GREEN, Report, paint};
use crate::recipe::trust;
use crate::sandbox::apply::{self, Outcome};
use crate::workspace::{Workspace, WorktreeSandbox};

use super::short;

#[derive(Debug, clap::Args, Default)]
pub struct Args {
    /// Print what would be done, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let workspace = Workspace::discover(&globals.cwd)?;
    trust::check_recipe(&workspace.checkout.main, &workspace.settings)?;
    let sandbox = WorktreeSandbox::reserve(workspace, None, args.dry_run)?;
    let outcome = apply::apply(&sandbox, args.dry_run, &globals.progress)?;
    output::emit(&outcome, globals.json);
    Ok(Exit::Clean)
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
