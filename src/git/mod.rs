//! Everything provision asks of git: which checkout we are in and what it
//! holds (`checkout`), the worktrees and their ids (`worktree`), the shared
//! exclude file (`exclude`), branches and unsaved work (`history`). Callers
//! see one flat `git::` namespace.

mod cached;
mod checkout;
mod exclude;
mod history;
mod worktree;

use std::path::Path;
use std::process::Command;

pub use cached::{Excludes, proven_clean};
pub use checkout::{Checkout, Untracked, committed, head_tree, is_tracked, untracked};
pub use exclude::{exclude_paths, excluded_paths};
pub use history::{
    branch_delete, default_branch, has_own_commits, holds, is_merged, unique_commits, unlike_head,
    unsaved_files,
};
pub use worktree::{
    Start, Worktree, branch_start, broken_entries, checkout_complete, expired_entries, has_entry,
    has_submodules, has_usable_entry_for, mark_removing, parallel_checkout_pays, prune_expire,
    same_path, take_over_added, unlock, unlock_added, worktree_add, worktree_prune,
    worktree_remove, worktrees,
};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("not inside a git repository: {0}")]
    NotARepository(String),
    #[error("`{0}` is not a valid branch name (see `git check-ref-format`)")]
    BadBranchName(String),
    #[error(
        "branch `{branch}` exists already ({found}), so there is nothing to start at `{rev}`: drop --from to check `{branch}` out, or choose a new name"
    )]
    FromExisting {
        branch: String,
        rev: String,
        found: String,
    },
    #[error(
        "this worktree was moved without git (git still records it at {0}): run `git worktree repair` in it, then try again"
    )]
    Moved(String),
    #[error("`{0}` is not a revision of this repository")]
    BadRevision(String),
    #[error("bare repositories have no checkout to provision")]
    Bare,
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("cannot run git")]
    Spawn(#[source] std::io::Error),
    #[error("`git {args}` failed: {stderr}")]
    Command { args: String, stderr: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The main worktree's id. git names a linked worktree after its folder,
/// and a folder may well be called `main`; git never starts an id with a
/// dot (it strips leading dots), so this one cannot clash.
pub const MAIN_ID: &str = ".main";

/// `git -C dir`, as provision runs it: worded in English (its output is
/// parsed, and quoted in errors), and killed if provision dies first. A
/// git left running by a killed `provision new` would go on making the
/// worktree while the recovery (`remove`, `gc`) takes it down.
pub(crate) fn command(dir: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    let mut command = Command::new("git");
    command.env("LC_ALL", "C").arg("-C").arg(dir);
    // SAFETY: between fork and exec the closure only makes two system
    // calls, which is what a child of a threaded process may do.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The parent may have died before the line above.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other("provision ended before git started"));
            }
            Ok(())
        });
    }
    command
}

pub fn run_git(dir: &Path, args: &[String]) -> Result<String, GitError> {
    crate::output::command("git", args);
    let output = command(dir).args(args).output().map_err(GitError::Spawn)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        // git's own verdict; its progress and hint lines are noise here.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let verdict: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("fatal:") || l.starts_with("error:"))
            .collect();
        let stderr = if verdict.is_empty() { lines } else { verdict }.join("; ");
        Err(GitError::Command {
            args: crate::shell::words(args),
            stderr,
        })
    }
}
