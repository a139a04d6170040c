//! `provision remove NAME`: a worktree with its processes, database, ports
//! and record (the work is `lifecycle::remove`'s).

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::lifecycle::remove::{self, RemoveOptions};
use crate::lifecycle::teardown;
use crate::output::{self, GREEN, Report, paint};
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sandbox name, or the worktree's path.
    pub name: String,

    /// Remove even when the worktree has uncommitted changes, untracked files or
    /// commits on no other branch (an unmerged branch is still kept).
    #[arg(long)]
    pub force: bool,

    /// Keep the branch even when it is merged.
    #[arg(long)]
    pub keep_branch: bool,

    /// Print what would be removed and which processes would be stopped, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let options = RemoveOptions {
        target: &args.name,
        cwd: &globals.cwd,
        force: args.force,
        keep_branch: args.keep_branch,
        dry_run: args.dry_run,
    };
    let removal = remove::remove(&Workspace::discover(&globals.cwd)?, options)?;
    output::emit(&removal, globals.json);
    Ok(Exit::Clean)
}

impl Report for teardown::Removal {
    fn text(&self) -> String {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut out = format!(
            "{}\n",
            paint(GREEN, format!("{verb} sandbox {}", self.name))
        );
        for line in &self.done {
            out.push_str(&format!("  {line}\n"));
        }
        if self.dry_run {
            out.push_str("dry run: nothing was changed\n");
        }
        out
    }
}
