//! `provision remove NAME`: a worktree with its database, port and record
//! (the work is `lifecycle::remove`'s).

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
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let options = RemoveOptions {
        target: &args.name,
        cwd: &globals.cwd,
        force: args.force,
        keep_branch: args.keep_branch,
    };
    let removal = remove::remove(&Workspace::discover(&globals.cwd)?, options)?;
    output::emit(&removal, globals.json);
    Ok(Exit::Clean)
}

impl Report for teardown::Removal {
    fn text(&self) -> String {
        let mut out = format!(
            "{}\n",
            paint(GREEN, format!("removed sandbox {}", self.name))
        );
        for line in &self.done {
            out.push_str(&format!("  {line}\n"));
        }
        out
    }
}
