//! What git leaves when its own step is cut short: a folder `git worktree
//! add` half checked out, or one `git worktree remove` half deleted, that
//! git no longer lists. Such a folder goes only when nothing in it is
//! anyone's work: every file is content git holds at the same path in a
//! tree provision knows the folder came from, or is provision's own.

use std::collections::BTreeSet;
use std::path::Path;

use git2::Oid;

use crate::BoxError;
use crate::git;
use crate::sandbox::{envfile, lock};

/// One file (or symlink, or anything else that is not a folder) in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Relative to the folder, `/`-separated.
    pub path: String,
    /// A tree holds its content at its path (see [`git::holds`]).
    pub held: bool,
    /// Provision's own: the folder's `.git` link, its lock, a link it made,
    /// an env file it wrote, one of its temporary files.
    pub own: bool,
}

/// The files whose content git does not hold and provision did not write:
/// someone's work, which must not be deleted.
pub fn foreign(found: &[Found]) -> Vec<String> {
    found
        .iter()
        .filter(|f| !f.own && !f.held)
        .map(|f| f.path.clone())
        .collect()
}

/// Every file under `root` against `trees` (commits' trees: where the
/// folder's files came from).
pub fn survey(
    repo: &git2::Repository,
    root: &Path,
    trees: &[git2::Tree],
    common_dir: &Path,
) -> Result<Vec<Found>, BoxError> {
    // Provision's links and env files sit at paths its exclude block lists.
    let excluded: BTreeSet<String> = git::excluded_paths(common_dir)?.into_iter().collect();
    // Only whether it reads as a lock: the clone's tag it fills in is moot.
    let lock_ok = matches!(lock::read(root, ""), Ok(Some(_)));
    let mut out = Vec::new();
    walk(root, root, &mut |path, rel, meta| {
        let held = trees
            .iter()
            .any(|tree| git::holds(repo, tree, Path::new(&rel), path));
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        let own = (rel == ".git" && meta.is_file())
            || (rel == lock::FILE_NAME && lock_ok)
            || (name.starts_with(".provision-") && meta.is_file())
            || (excluded.contains(&rel)
                && (meta.file_type().is_symlink()
                    || (meta.is_file()
                        && fs_err::read(path)
                            .is_ok_and(|b| envfile::is_ours(&String::from_utf8_lossy(&b))))));
        out.push(Found {
            path: rel,
            held,
            own,
        });
        Ok(())
    })?;
    Ok(out)
}

type Visit<'a> = dyn FnMut(&Path, String, &std::fs::Metadata) -> Result<(), BoxError> + 'a;

fn walk(root: &Path, dir: &Path, visit: &mut Visit) -> Result<(), BoxError> {
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        let meta = fs_err::symlink_metadata(&path)?;
        if meta.is_dir() {
            walk(root, &path, visit)?;
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        visit(&path, rel.to_string_lossy().into_owned(), &meta)?;
    }
    Ok(())
}

/// Whether `root` is a folder git's step left behind: not a repository of
/// its own (`.git` a folder), and either not the folder of a worktree git
/// lists, or of one git lists but can no longer use (see
/// [`git::Worktree::is_broken`]).
/// git's own records are read too: a `git worktree list` that failed to
/// read one (a disk fault) must not make a live worktree look left.
pub fn is_left(root: &Path, worktrees: &[git::Worktree], common_dir: &Path) -> bool {
    root.is_dir()
        && !root.join(".git").is_dir()
        && worktrees
            .iter()
            .filter(|w| git::same_path(&w.path, root))
            .all(|w| w.is_broken(common_dir))
        && !git::has_usable_entry_for(common_dir, root)
}

/// The commits a worktree's files came from: its HEAD (as git lists it;
/// none once git lost it) and its branch's tip.
pub fn sources(
    main: &Path,
    head: Option<&str>,
    branch: Option<&str>,
) -> Result<Vec<Oid>, BoxError> {
    let repo = git2::Repository::open(main)?;
    let head = head.and_then(|h| Oid::from_str(h).ok());
    let tip = branch
        .and_then(|b| repo.find_branch(b, git2::BranchType::Local).ok())
        .and_then(|b| b.get().target());
    let mut out: Vec<Oid> = head
        .into_iter()
        .chain(tip)
        .filter(|o| !o.is_zero())
        .collect();
    out.dedup();
    Ok(out)
}

/// Deletes the folder `root` git left if nothing in it is anyone's work
/// (against the trees of `commits`); `Ok(Err(why))` when it is kept.
pub fn clear(
    main: &Path,
    common_dir: &Path,
    root: &Path,
    commits: &[Oid],
) -> Result<Result<(), String>, BoxError> {
    let repo = git2::Repository::open(main)?;
    let trees: Vec<git2::Tree> = commits
        .iter()
        .filter_map(|oid| repo.find_commit(*oid).ok()?.tree().ok())
        .collect();
    if trees.is_empty() {
        return Ok(Err(
            "no commit it was checked out from is left to compare its files with".into(),
        ));
    }
    let foreign = foreign(&survey(&repo, root, &trees, common_dir)?);
    if !foreign.is_empty() {
        return Ok(Err(format!(
            "{} file(s) in it are not content git holds ({})",
            foreign.len(),
            crate::lifecycle::remove::first_few(&foreign)
        )));
    }
    fs_err::remove_dir_all(root)?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str, held: bool, own: bool) -> Found {
        Found {
            path: path.into(),
            held,
            own,
        }
    }

    #[test]
    fn content_a_tree_holds_is_gits() {
        let files = [
            found("src/a.js", true, false),
            found("src/b.js", true, false),
        ];
        assert!(foreign(&files).is_empty());
    }

    #[test]
    fn changed_or_new_content_is_someones_work() {
        let files = [
            found("src/a.js", false, false),
            found("src/b.js", true, false),
            found("notes.txt", false, false),
        ];
        assert_eq!(foreign(&files), ["src/a.js", "notes.txt"]);
    }

    #[test]
    fn provisions_own_files_go_whatever_their_content() {
        let files = [
            found(".git", false, true),
            found("provision.lock", false, true),
            found("node_modules", false, true),
        ];
        assert!(foreign(&files).is_empty());
    }
}
