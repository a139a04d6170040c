//! Branches and unsaved work: what removing a worktree and its branch
//! would lose, and whether a branch is merged.

use std::path::Path;

use git2::Repository;

use super::{GitError, run_git};

/// Work in a worktree that deleting it would lose: changed and staged files
/// and untracked files that are not ignored, as `git status --short` names
/// them. Provision's own links, env file and lock are excluded through
/// `info/exclude`, so they do not count.
pub fn unsaved_files(root: &Path) -> Result<Vec<String>, GitError> {
    // git's own status, as `git status` runs it: git stats the index in
    // parallel and, like `git status`, writes back what it refreshed. A
    // fresh checkout's index is racily clean (written in the same second as
    // its files), so every file is re-read until one status refreshes it:
    // with `--no-optional-locks`, or with libgit2, that was 3,000 reads per
    // worktree on every `provision status` (`just bench`).
    let args = [
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=normal",
        "--ignore-submodules=all",
    ]
    .map(String::from);
    let out = run_git(root, &args)?;
    let mut files = Vec::new();
    let mut fields = out.split('\0').filter(|f| !f.is_empty());
    while let Some(field) = fields.next() {
        let (code, path) = field.split_at(field.len().min(3));
        if code.starts_with('R') || code.starts_with('C') {
            fields.next(); // a rename's source path follows
        }
        files.push(format!("{} {path}", code.trim()));
    }
    Ok(files)
}

/// Commits reachable from `head` that no other local or remote-tracking
/// branch holds (`git log HEAD --not --exclude=BRANCH --branches --remotes`):
/// what deleting the worktree and its branch would lose.
pub fn unique_commits(
    main: &Path,
    head: &str,
    branch: Option<&str>,
) -> Result<Vec<String>, GitError> {
    let mut args: Vec<String> = vec![
        "log".into(),
        "--format=%h %s".into(),
        head.into(),
        "--not".into(),
    ];
    if let Some(branch) = branch {
        args.push(format!("--exclude={branch}"));
    }
    args.push("--branches".into());
    args.push("--remotes".into());
    Ok(run_git(main, &args)?.lines().map(str::to_string).collect())
}

/// The branch (or commit) the main checkout has out: what "merged" means.
pub fn default_branch(main: &Path) -> Result<(String, git2::Oid), GitError> {
    let repo = Repository::open(main)?;
    let head = repo.head()?;
    let oid = head.peel_to_commit()?.id();
    let name = if head.is_branch() {
        head.shorthand().unwrap_or("HEAD").to_string()
    } else {
        "HEAD".to_string()
    };
    Ok((name, oid))
}

/// Whether `branch`'s tip is contained in `target` (equal or an ancestor).
pub fn is_merged(main: &Path, branch: &str, target: git2::Oid) -> Result<bool, GitError> {
    let repo = Repository::open(main)?;
    let tip = repo
        .find_branch(branch, git2::BranchType::Local)?
        .get()
        .peel_to_commit()?
        .id();
    Ok(tip == target || repo.graph_descendant_of(target, tip)?)
}

/// Whether `branch` has moved since it was created, by its reflog: a
/// branch fresh from `provision new` is "merged" by ancestry, but nothing on
/// it is finished. Without a reflog there is no telling, so: no.
pub fn has_own_commits(main: &Path, branch: &str) -> Result<bool, GitError> {
    let repo = Repository::open(main)?;
    let reflog = repo.reflog(&format!("refs/heads/{branch}"))?;
    let Some(created) = reflog.iter().next_back() else {
        return Ok(false);
    };
    let tip = repo
        .find_branch(branch, git2::BranchType::Local)?
        .get()
        .peel_to_commit()?
        .id();
    Ok(tip != created.id_new())
}

/// `git branch -D BRANCH`; callers check first that it is merged.
pub fn branch_delete(main: &Path, branch: &str) -> Result<(), GitError> {
    run_git(main, &["branch".into(), "-D".into(), branch.into()]).map(|_| ())
}

/// Of `paths` (relative, folders ending in `/`, as `git status` names
/// them), those holding content that HEAD's tree does not: a file git has
/// not written, or one that differs from HEAD's blob. For a worktree whose
/// checkout was cut short, where the index cannot be trusted: what git
/// itself wrote there is no one's work.
pub fn unlike_head(root: &Path, paths: &[String]) -> Result<Vec<String>, GitError> {
    let repo = git2::Repository::open(root)?;
    let tree = repo.head()?.peel_to_tree()?;
    let mut out = Vec::new();
    for path in paths {
        let mut files = Vec::new();
        collect_files(&root.join(path.trim_end_matches('/')), &mut files)?;
        let differs = files.iter().any(|file| {
            let rel = file.strip_prefix(root).unwrap_or(file);
            !holds(&repo, &tree, rel, file)
        });
        if differs {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Of `paths` (relative files that differ from HEAD's), those whose bytes
/// are the start of HEAD's blob: files git was cut short writing.
pub fn cut_short(root: &Path, paths: &[String]) -> Result<Vec<String>, GitError> {
    let repo = git2::Repository::open(root)?;
    let tree = repo.head()?.peel_to_tree()?;
    Ok(paths
        .iter()
        .filter(|rel| {
            let file = root.join(rel);
            fs_err::symlink_metadata(&file).is_ok_and(|m| m.is_file())
                && holds(&repo, &tree, Path::new(rel.as_str()), &file)
        })
        .cloned()
        .collect())
}

/// Whether `tree` holds the content of `file` at `rel`: the same blob (a
/// symlink's is its target), or a file git was writing when it was cut
/// short, whose bytes are the start of that blob.
pub fn holds(repo: &Repository, tree: &git2::Tree, rel: &Path, file: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(entry) = tree.get_path(rel) else {
        return false;
    };
    let Ok(meta) = fs_err::symlink_metadata(file) else {
        return false;
    };
    if meta.file_type().is_symlink() {
        return fs_err::read_link(file).is_ok_and(|target| {
            git2::Oid::hash_object(git2::ObjectType::Blob, target.as_os_str().as_bytes())
                .is_ok_and(|oid| oid == entry.id())
        });
    }
    if !meta.is_file() {
        return false;
    }
    if git2::Oid::hash_file(git2::ObjectType::Blob, file).is_ok_and(|oid| oid == entry.id()) {
        return true;
    }
    let Ok(blob) = repo.find_blob(entry.id()) else {
        return false;
    };
    fs_err::read(file).is_ok_and(|bytes| blob.content().starts_with(&bytes))
}

/// Every file under `path` (itself, if a file; nothing, if gone).
fn collect_files(path: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), GitError> {
    let Ok(meta) = fs_err::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        for entry in fs_err::read_dir(path)? {
            collect_files(&entry?.path(), out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository whose HEAD holds `a.txt` ("hello world\n") and a
    /// symlink `link` to `a.txt`; returns it with HEAD's tree.
    fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        fs_err::write(dir.path().join("a.txt"), "hello world\n").unwrap();
        fs_err::os::unix::fs::symlink("a.txt", dir.path().join("link")).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        index.add_path(Path::new("link")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("a", "a@b").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "one", &tree, &[])
            .unwrap();
        drop(tree);
        (dir, repo)
    }

    fn held(dir: &Path, repo: &Repository, rel: &str) -> bool {
        let tree = repo.head().unwrap().peel_to_tree().unwrap();
        holds(repo, &tree, Path::new(rel), &dir.join(rel))
    }

    #[test]
    fn the_same_blob_and_the_same_link_are_held() {
        let (dir, repo) = repo();
        assert!(held(dir.path(), &repo, "a.txt"));
        assert!(held(dir.path(), &repo, "link"));
    }

    #[test]
    fn a_file_git_was_cut_short_writing_is_held() {
        let (dir, repo) = repo();
        fs_err::write(dir.path().join("a.txt"), "hello").unwrap();
        assert!(held(dir.path(), &repo, "a.txt"));
    }

    #[test]
    fn changed_new_or_relinked_content_is_not_held() {
        let (dir, repo) = repo();
        fs_err::write(dir.path().join("a.txt"), "hello world\nmore\n").unwrap();
        assert!(!held(dir.path(), &repo, "a.txt"));
        fs_err::write(dir.path().join("b.txt"), "hello").unwrap();
        assert!(!held(dir.path(), &repo, "b.txt"));
        fs_err::remove_file(dir.path().join("link")).unwrap();
        fs_err::os::unix::fs::symlink("elsewhere", dir.path().join("link")).unwrap();
        assert!(!held(dir.path(), &repo, "link"));
    }
}
