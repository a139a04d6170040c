//! A `new` that has not finished with git: written under the registry lock
//! before `git worktree add`, deleted under it once git's worktree is
//! `new`'s (or taken back whole). One left behind names a `new` that failed
//! or was killed with git's step half done and could not take it back: the
//! branch git made, a folder half checked out, an admin dir half written.
//! `remove NAME`, `gc` and the next `new NAME` finish it; `apply` in the
//! worktree takes it over instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BoxError;
use crate::fsutil;
use crate::git;
use crate::lifecycle::{leftover, remove};
use crate::workspace::Workspace;

/// What a `new` was making.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The sandbox and branch name.
    pub name: String,
    /// Where the worktree goes, absolute.
    pub path: PathBuf,
    /// The commit the branch starts at, when `new` makes the branch: the
    /// branch is taken back only while it still points there.
    pub start: Option<String>,
    /// Something was at `path` before git: it is never provision's to delete.
    pub folder_existed: bool,
}

/// What finishing a pending `new` did, and what it kept (and why).
#[derive(Debug, Default)]
pub struct Finished {
    pub done: Vec<String>,
    pub kept: Vec<String>,
    pub branch_deleted: bool,
}

fn dir(common_dir: &Path) -> PathBuf {
    common_dir.join("provision").join("pending")
}

fn file(common_dir: &Path, name: &str) -> PathBuf {
    dir(common_dir).join(format!(
        "{}.json",
        crate::hash::short(&crate::hash::of(name.as_bytes()), 16)
    ))
}

/// Writes (or rewrites) the entry; the caller holds the registry lock.
pub fn write(common_dir: &Path, pending: &Pending) -> Result<(), BoxError> {
    let text = serde_json::to_vec_pretty(pending)?;
    fsutil::write_atomically(&file(common_dir, &pending.name), &text)?;
    Ok(())
}

/// Deletes the entry for `name`, if there is one.
pub fn delete(common_dir: &Path, name: &str) -> Result<(), BoxError> {
    match fs_err::remove_file(file(common_dir, name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Deletes the temporary files of entry writes cut short (entries are
/// written under the registry lock, which the caller holds: any temporary
/// file is a dead run's).
pub fn sweep(common_dir: &Path) -> Result<(), BoxError> {
    let Ok(entries) = fs_err::read_dir(dir(common_dir)) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".provision-")
            && entry.file_type()?.is_file()
        {
            fs_err::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Every entry that reads as one provision wrote. Read back, so checked: a
/// name git accepts for a branch, an absolute path free of `..`. Anything
/// else is left where it is and never acted on.
pub fn all(common_dir: &Path) -> Vec<Pending> {
    let Ok(entries) = fs_err::read_dir(dir(common_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<Pending> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let text = fs_err::read(entry.path()).ok()?;
            let pending: Pending = serde_json::from_slice(&text).ok()?;
            let valid = git2::Branch::name_is_valid(&pending.name).unwrap_or(false)
                && pending.path.is_absolute()
                && fsutil::normalize(&pending.path) == pending.path
                && entry.path() == file(common_dir, &pending.name)
                && pending
                    .start
                    .as_deref()
                    .is_none_or(|s| git2::Oid::from_str(s).is_ok());
            valid.then_some(pending)
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The entry for `name`, if there is a valid one.
pub fn get(common_dir: &Path, name: &str) -> Option<Pending> {
    all(common_dir).into_iter().find(|p| p.name == name)
}

/// `apply` in `root` takes over the worktree a failed `new` left there: it
/// is no longer one to finish.
pub fn take_over(common_dir: &Path, root: &Path) -> Result<(), BoxError> {
    for pending in all(common_dir) {
        if git::same_path(&pending.path, root) {
            delete(common_dir, &pending.name)?;
        }
    }
    Ok(())
}

/// Takes back what the pending `new` made, under the registry lock: its
/// worktree (unless someone has worked in it since, or `force`), what git
/// left of its folder and admin dir, and its branch (while it still points
/// where `new` started it). The entry goes once nothing is kept.
pub fn finish(workspace: &Workspace, pending: &Pending, force: bool) -> Result<Finished, BoxError> {
    let checkout = &workspace.checkout;
    let (main, common_dir) = (&checkout.main, &checkout.common_dir);
    let path = &pending.path;
    let shown = path.display();
    let mut finished = Finished::default();
    let start = pending
        .start
        .as_deref()
        .map(git2::Oid::from_str)
        .transpose()?;
    let worktrees = git::worktrees(main, common_dir)?;
    // Where git's files came from: the start commit, else (a branch that
    // was there before) the branch.
    let repo = git2::Repository::open(main)?;
    // A branch that cannot be read is an error, never "no branch": the
    // entry, and with it the branch, would be forgotten.
    let tip = match repo.find_branch(&pending.name, git2::BranchType::Local) {
        Ok(branch) => branch.get().target(),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let sources = Vec::from_iter(start.or(tip));
    if let Some(worktree) = worktrees
        .iter()
        .find(|w| !w.is_main && git::same_path(&w.path, path))
    {
        // git's index and admin dir may be half written: when git cannot
        // say what is in it, the files are held against the start commit.
        let work = match remove::unsaved_after_git(workspace, worktree) {
            // Its commits stay on its branch, which goes only while it
            // points where `new` started it.
            Ok(work) => Some(remove::Unsaved {
                commits: Vec::new(),
                ..work
            }),
            Err(_) if worktree.path.is_dir() => None,
            Err(_) => Some(remove::Unsaved::default()),
        };
        if worktree.locked && !worktree.cut_short {
            finished.kept.push(format!(
                "the worktree {shown} is locked (`git worktree lock`)"
            ));
        } else if let Some(work) = work.as_ref().filter(|w| !force && !w.is_empty()) {
            finished.kept.push(format!(
                "the worktree {shown} holds unsaved work ({}): `provision apply` there takes it over; `provision remove --force {}` discards it",
                work.describe(),
                pending.name
            ));
        } else {
            git::unlock(common_dir, &worktree.id)?;
            let gone = (work.is_some() || force)
                && git::mark_removing(common_dir, &worktree.id).is_ok()
                && git::worktree_remove(main, path, true).is_ok();
            if !gone && path.is_dir() {
                // git cannot read what it made, or its removal failed part
                // way: only what the start commit holds goes.
                if let Err(why) = leftover::clear(main, common_dir, path, &sources)? {
                    finished.kept.push(format!("the worktree {shown}: {why}"));
                }
            }
            if !gone && finished.kept.is_empty() && git::has_entry(common_dir, &worktree.id) {
                // Its folder is gone now: this drops git's entry.
                git::worktree_remove(main, path, true)?;
            }
            if finished.kept.is_empty() {
                finished.done.push(format!("removed worktree {shown}"));
            }
        }
    } else if !pending.folder_existed && leftover::is_left(path, &worktrees, common_dir) {
        match leftover::clear(main, common_dir, path, &sources)? {
            Ok(()) => finished
                .done
                .push(format!("removed what git left of {shown}")),
            Err(why) => finished.kept.push(format!(
                "the folder {shown}, which git no longer lists: {why}; delete it by hand once you have what you need"
            )),
        }
    }
    if !finished.kept.is_empty() {
        return Ok(finished);
    }
    // An admin dir git's step left without its folder: git's own prune,
    // under git's own expiry.
    git::worktree_prune(main, &git::prune_expire(main))?;
    let broken = git::broken_entries(common_dir);
    if !broken.is_empty() {
        finished.kept.push(format!(
            "git's admin dir .git/worktrees/{}, which `git worktree prune` did not take away",
            broken.join(", .git/worktrees/")
        ));
        return Ok(finished);
    }
    match (start, tip) {
        (Some(start), Some(tip)) if start == tip => {
            forget_ref_lock(common_dir, &pending.name, start)?;
            git::branch_delete(main, &pending.name)?;
            finished.branch_deleted = true;
            finished
                .done
                .push(format!("deleted branch {} (new made it)", pending.name));
        }
        (Some(_), Some(_)) => finished.done.push(format!(
            "kept branch {}: it has moved since `new` made it",
            pending.name
        )),
        _ => {}
    }
    delete(common_dir, &pending.name)?;
    Ok(finished)
}

/// The branch's lock file a git run cut short left (`refs/heads/NAME.lock`:
/// killed, or its unlink failed, between taking the lock and letting go),
/// which makes every later `git branch -D` fail. Deleted only when the
/// update it stands for changes nothing: it is empty (a deletion) or holds
/// the commit `new` started the branch at, which the branch still points to.
fn forget_ref_lock(common_dir: &Path, name: &str, start: git2::Oid) -> Result<(), BoxError> {
    let lock = common_dir.join("refs/heads").join(format!("{name}.lock"));
    match fs_err::read_to_string(&lock) {
        Ok(text) if text.trim().is_empty() || text.trim() == start.to_string() => {
            fs_err::remove_file(&lock)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(name: &str) -> Pending {
        Pending {
            name: name.into(),
            path: PathBuf::from("/tmp/x"),
            start: Some("0123456789012345678901234567890123456789".into()),
            folder_existed: false,
        }
    }

    #[test]
    fn entries_round_trip_and_go() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &pending("feature/a")).unwrap();
        write(dir.path(), &pending("b")).unwrap();
        assert_eq!(all(dir.path()), [pending("b"), pending("feature/a")]);
        delete(dir.path(), "b").unwrap();
        assert_eq!(get(dir.path(), "feature/a"), Some(pending("feature/a")));
        assert_eq!(get(dir.path(), "b"), None);
    }

    #[test]
    fn entries_read_back_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            Pending {
                path: PathBuf::from("relative"),
                ..pending("a")
            },
            Pending {
                path: PathBuf::from("/tmp/../etc"),
                ..pending("b")
            },
            pending("-bad..name"),
            Pending {
                start: Some("HEAD".into()),
                ..pending("c")
            },
        ] {
            write(dir.path(), &bad).unwrap();
        }
        // Under another entry's file name.
        let text = serde_json::to_vec(&pending("d")).unwrap();
        fs_err::write(file(dir.path(), "e"), text).unwrap();
        assert_eq!(all(dir.path()), []);
    }
}
