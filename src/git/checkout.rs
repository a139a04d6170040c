//! Which checkout we are in (main or linked, its id and branch) and what it
//! holds: its untracked files, its index, its HEAD tree.

use std::path::{Path, PathBuf};

use git2::{Repository, Status, StatusOptions};

use super::{GitError, MAIN_ID};

/// The checkout provision runs in, with the paths every step needs.
#[derive(Debug, Clone)]
pub struct Checkout {
    /// Root of the main worktree (the one that owns the git dir).
    pub main: PathBuf,
    /// Root of the worktree we are in (equal to `main` in the main checkout).
    pub root: PathBuf,
    /// The git dir shared by all worktrees.
    pub common_dir: PathBuf,
    /// [`MAIN_ID`] for the main worktree, else git's name for the linked worktree.
    pub id: String,
    /// The checked-out branch, if any.
    pub branch: Option<String>,
}

impl Checkout {
    pub fn discover(dir: &Path) -> Result<Self, GitError> {
        let repo = Repository::discover(dir).map_err(|e| match e.code() {
            git2::ErrorCode::NotFound => GitError::NotARepository(dir.display().to_string()),
            _ => GitError::Git(e),
        })?;
        Self::from_repo(&repo)
    }

    /// The main checkout of the same repository, whichever worktree we are in.
    pub fn main_of(&self) -> Result<Self, GitError> {
        Self::discover(&self.main)
    }

    /// The worktree `worktree` of this checkout's repository, as `git
    /// worktree list` gave it: what [`Checkout::discover`] finds there,
    /// without opening the repository again when the worktree's `.git`
    /// leads straight back to the entry git listed (anything else is
    /// discovered as usual).
    pub fn sibling(&self, worktree: &super::Worktree) -> Result<Self, GitError> {
        let root = fs_err::canonicalize(&worktree.path)?;
        let same = if worktree.is_main {
            root == self.main && root.join(".git") == self.common_dir
        } else {
            fs_err::read_to_string(root.join(".git"))
                .ok()
                .and_then(|text| {
                    let gitdir = root.join(text.trim_end().strip_prefix("gitdir: ")?);
                    fs_err::canonicalize(gitdir).ok()
                })
                .is_some_and(|gitdir| {
                    gitdir == self.common_dir.join("worktrees").join(&worktree.id)
                })
        };
        if !same {
            return Self::discover(&root);
        }
        Ok(Checkout {
            main: self.main.clone(),
            root,
            common_dir: self.common_dir.clone(),
            id: if worktree.is_main {
                MAIN_ID.into()
            } else {
                worktree.id.clone()
            },
            branch: worktree.branch.clone(),
        })
    }

    pub fn is_main(&self) -> bool {
        self.root == self.main
    }

    fn from_repo(repo: &Repository) -> Result<Self, GitError> {
        let workdir = repo.workdir().ok_or(GitError::Bare)?;
        if repo.is_worktree() && !workdir.exists() {
            // Found through its `.git` file, but git records it elsewhere:
            // moved with `mv`, not `git worktree move`.
            return Err(GitError::Moved(workdir.display().to_string()));
        }
        let root = fs_err::canonicalize(workdir)?;
        let common_dir = fs_err::canonicalize(repo.commondir())?;
        let main_repo = Repository::open(&common_dir)?;
        let main = fs_err::canonicalize(main_repo.workdir().ok_or(GitError::Bare)?)?;
        let id = if repo.is_worktree() {
            repo.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "worktree".into())
        } else {
            MAIN_ID.into()
        };
        let branch = current_branch(repo);
        Ok(Checkout {
            main,
            root,
            common_dir,
            id,
            branch,
        })
    }

    pub fn open(&self) -> Result<Repository, GitError> {
        Ok(Repository::open(&self.root)?)
    }

    /// The repository's short name: the origin remote's last path segment,
    /// else the main checkout's folder name. Every clone of one remote agrees.
    pub fn repo_name(&self) -> String {
        let from_remote = Repository::open(&self.main).ok().and_then(|repo| {
            let remote = repo.find_remote("origin").ok()?;
            let url = remote.url().ok()?.trim_end_matches('/').to_string();
            let last = url
                .rsplit(['/', ':'])
                .next()?
                .trim_end_matches(".git")
                .to_string();
            (!last.is_empty()).then_some(last)
        });
        from_remote.unwrap_or_else(|| {
            self.main
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }
}

fn current_branch(repo: &Repository) -> Option<String> {
    let head = repo.head().ok()?;
    head.is_branch()
        .then(|| head.shorthand().ok().map(str::to_string))
        .flatten()
}

/// A path in the main checkout that git does not track.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Untracked {
    /// Relative, `/`-separated.
    pub path: String,
    pub is_dir: bool,
    /// Ignored by a `.gitignore` rule (as opposed to merely untracked).
    pub ignored: bool,
}

/// Untracked and ignored entries of a checkout. Untracked folders are
/// listed file by file; ignored folders (like `node_modules`) as one entry,
/// so a large dependency tree is never walked.
pub fn untracked(repo: &Repository) -> Result<Vec<Untracked>, GitError> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .include_ignored(true)
        .recurse_untracked_dirs(true)
        .recurse_ignored_dirs(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut opts))?;
    let mut out = Vec::new();
    for entry in statuses.iter() {
        let status = entry.status();
        if !status.intersects(Status::WT_NEW | Status::IGNORED) {
            continue;
        }
        let Ok(path) = entry.path() else { continue };
        let is_dir = path.ends_with('/');
        out.push(Untracked {
            path: path.trim_end_matches('/').to_string(),
            is_dir,
            ignored: status.contains(Status::IGNORED),
        });
    }
    out.sort();
    Ok(out)
}

/// Whether `path` (relative, `/`-separated) is tracked in `repo`'s index, or
/// for a folder, whether anything under it is.
pub fn is_tracked(index: &git2::Index, path: &str) -> bool {
    if index.get_path(Path::new(path), 0).is_some() {
        return true;
    }
    // A binary search; iterating copies every entry's path (3,000 per call).
    index.find_prefix(format!("{path}/")).is_ok()
}

/// The tree of `repo`'s HEAD commit: what a checkout of it gets from git.
/// `None` before the first commit.
pub fn head_tree(repo: &Repository) -> Result<Option<git2::Tree<'_>>, GitError> {
    match repo.head() {
        Ok(head) => Ok(Some(head.peel_to_tree()?)),
        Err(e)
            if matches!(
                e.code(),
                git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether git checks `path` (relative, `/`-separated) out of `tree`: a file,
/// or a folder, which a tree holds only with something in it. Asked of the
/// commit rather than the index: a few object reads instead of parsing and
/// hashing the whole index, the largest part of `verify`'s time on a
/// 3,000-file repository (`just bench`).
pub fn committed(tree: Option<&git2::Tree>, path: &str) -> bool {
    tree.is_some_and(|tree| tree.get_path(Path::new(path)).is_ok())
}
