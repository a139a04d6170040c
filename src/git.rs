//! Everything provision asks of git: where the main checkout and the shared
//! git dir are, which worktree we are in, what is untracked, and `worktree add`.

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Repository, Status, StatusOptions};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("not inside a git repository: {0}")]
    NotARepository(String),
    #[error("`{0}` is not a valid branch name (see `git check-ref-format`)")]
    BadBranchName(String),
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

    pub fn is_main(&self) -> bool {
        self.root == self.main
    }

    fn from_repo(repo: &Repository) -> Result<Self, GitError> {
        let root = fs_err::canonicalize(repo.workdir().ok_or(GitError::Bare)?)?;
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

/// `git worktree add -b BRANCH PATH [REV]`, run by git itself so hooks run
/// and git's own locking guards concurrent adds.
pub fn worktree_add(
    main: &Path,
    branch: &str,
    path: &Path,
    from: Option<&str>,
) -> Result<(), GitError> {
    if !git2::Branch::name_is_valid(branch)? {
        return Err(GitError::BadBranchName(branch.into()));
    }
    // Not git's parallel checkout (`checkout.workers`): on 2 cores it saved
    // 3–7% idle and took 1.7–2.5× as long with the other core busy, which
    // is what many agents at once look like (`just bench`). A user who sets
    // it in git's config gets it anyway.
    // Locked from git's first write until `unlock_added`, with a reason of
    // provision's own: a `new` killed in between leaves a worktree that
    // `gc` knows for one no `new` will finish (`new` holds the registry
    // lock until it unlocks, and `gc` takes it).
    let mut args: Vec<String> = [
        "worktree", "add", "--lock", "--reason", ADDING, "-b", branch,
    ]
    .map(String::from)
    .into();
    args.push(path.to_string_lossy().into_owned());
    if let Some(rev) = from {
        args.push(rev.into());
    }
    run_git(main, &args).map(|_| ())
}

/// The lock reason `worktree_add` gives git while the worktree is made.
pub const ADDING: &str = "provision new: being created";

/// Takes back the lock `worktree_add` left, as `git worktree unlock` does,
/// without another git run on `new`'s path.
pub fn unlock_added(common_dir: &Path, path: &Path) -> Result<(), GitError> {
    let id = id_from_dot_git(common_dir, path).unwrap_or_else(|| file_name(path));
    unlock(common_dir, &id)
}

/// Removes a worktree's lock (`worktrees/<id>/locked`).
pub fn unlock(common_dir: &Path, id: &str) -> Result<(), GitError> {
    match fs_err::remove_file(common_dir.join("worktrees").join(id).join("locked")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Undoes a `worktree_add` after a later step failed: the new worktree and
/// its branch go, nothing else does.
pub fn worktree_undo(main: &Path, branch: &str, path: &Path) -> Result<(), GitError> {
    worktree_remove(main, path, true)?;
    branch_delete(main, branch)
}

pub fn run_git(dir: &Path, args: &[String]) -> Result<String, GitError> {
    crate::output::command("git", args);
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(GitError::Spawn)?;
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
            args: args.join(" "),
            stderr,
        })
    }
}

const EXCLUDE_BEGIN: &str =
    "# >>> provision: links, env files and locks (managed, edits are overwritten) >>>";
const EXCLUDE_END: &str = "# <<< provision <<<";

/// Keeps `paths` out of `git status` in every worktree through the shared
/// `info/exclude`: a symlink named `node_modules` is not matched by a
/// `.gitignore` line `node_modules/`, and an untracked file would block
/// `git worktree remove`. Only provision's own block is rewritten. Callers
/// hold the registry lock, since every worktree shares this file.
pub fn exclude_paths(common_dir: &Path, paths: &[String]) -> Result<bool, GitError> {
    let file = common_dir.join("info").join("exclude");
    let old = match fs_err::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let mut kept = Vec::new();
    let mut in_block = false;
    let mut existing = Vec::new();
    for line in old.lines() {
        match line {
            EXCLUDE_BEGIN => in_block = true,
            EXCLUDE_END => in_block = false,
            _ if in_block => existing.push(line.to_string()),
            _ => kept.push(line.to_string()),
        }
    }
    let mut wanted: Vec<String> = existing.clone();
    for path in paths {
        let line = format!("/{path}");
        if !wanted.contains(&line) {
            wanted.push(line);
        }
    }
    wanted.sort();
    wanted.dedup();
    if wanted == existing {
        return Ok(false);
    }
    let mut text = kept.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(EXCLUDE_BEGIN);
    text.push('\n');
    for line in &wanted {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(EXCLUDE_END);
    text.push('\n');
    crate::fsutil::write_atomically(&file, text.as_bytes())?;
    Ok(true)
}

/// The paths in provision's block of the shared `info/exclude`, relative,
/// `/`-separated: what git does not show in any worktree's status.
pub fn excluded_paths(common_dir: &Path) -> Result<Vec<String>, GitError> {
    let file = common_dir.join("info").join("exclude");
    let text = match fs_err::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(text
        .lines()
        .skip_while(|l| *l != EXCLUDE_BEGIN)
        .skip(1)
        .take_while(|l| *l != EXCLUDE_END)
        .map(|l| l.trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// One entry of `git worktree list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Worktree {
    /// `main`, or git's name for the worktree (its folder under `worktrees/`).
    pub id: String,
    pub path: PathBuf,
    /// The checked-out branch, short (`feature`); `None` when detached.
    pub branch: Option<String>,
    pub head: Option<String>,
    pub is_main: bool,
    /// `git worktree lock`ed: provision never touches it.
    pub locked: bool,
    /// Locked by a `provision new` whose `git worktree add` never finished.
    pub cut_short: bool,
    /// Git would prune it: its folder (or its gitdir file) is gone.
    pub prunable: bool,
}

/// Every worktree of the repository, the main one first, as git lists it.
/// One `git` run; ids come from the `gitdir` files under `worktrees/`.
pub fn worktrees(main: &Path, common_dir: &Path) -> Result<Vec<Worktree>, GitError> {
    let text = run_git(
        main,
        &[
            "worktree".into(),
            "list".into(),
            "--porcelain".into(),
            "-z".into(),
        ],
    )?;
    let ids = worktree_ids(common_dir);
    let mut out: Vec<Worktree> = Vec::new();
    for field in text.split('\0') {
        let (key, value) = field.split_once(' ').unwrap_or((field, ""));
        if key == "worktree" {
            let is_main = out.is_empty();
            // The folder's own `.git` file names its entry best; the
            // folder name is only a last guess, and wrong for a moved one.
            let id = if is_main {
                MAIN_ID.to_string()
            } else {
                id_from_dot_git(common_dir, Path::new(value))
                    .or_else(|| {
                        ids.iter()
                            .find(|(path, _)| same_path(Path::new(path), Path::new(value)))
                            .map(|(_, id)| id.clone())
                    })
                    .unwrap_or_else(|| file_name(Path::new(value)))
            };
            out.push(Worktree {
                id,
                path: PathBuf::from(value),
                branch: None,
                head: None,
                is_main,
                locked: false,
                cut_short: false,
                prunable: false,
            });
            continue;
        }
        let Some(entry) = out.last_mut() else {
            continue;
        };
        match key {
            "HEAD" => entry.head = Some(value.to_string()),
            "branch" => entry.branch = Some(value.trim_start_matches("refs/heads/").to_string()),
            "locked" => {
                entry.locked = true;
                entry.cut_short = value == ADDING;
            }
            "prunable" => entry.prunable = true,
            _ => {}
        }
    }
    Ok(out)
}

/// (worktree path as git recorded it, id) for every linked worktree.
fn worktree_ids(common_dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = fs_err::read_dir(common_dir.join("worktrees")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let gitdir = fs_err::read_to_string(entry.path().join("gitdir")).ok()?;
            let path = gitdir.trim_end_matches('\n');
            let path = path.strip_suffix("/.git").unwrap_or(path).to_string();
            Some((path, entry.file_name().to_string_lossy().into_owned()))
        })
        .collect()
}

/// The id in a linked worktree's `.git` file (`gitdir: <common>/worktrees/<id>`),
/// if that entry exists.
fn id_from_dot_git(common_dir: &Path, worktree: &Path) -> Option<String> {
    let text = fs_err::read_to_string(worktree.join(".git")).ok()?;
    let gitdir = text.trim_end().strip_prefix("gitdir: ")?;
    let gitdir = worktree.join(gitdir);
    let id = gitdir.file_name()?.to_string_lossy().into_owned();
    common_dir
        .join("worktrees")
        .join(&id)
        .is_dir()
        .then_some(id)
}

/// Equal paths, or two spellings of one existing folder.
pub fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (fs_err::canonicalize(a), fs_err::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
}

/// Whether git keeps an entry (`worktrees/<id>`) for the worktree `id`.
pub fn has_entry(common_dir: &Path, id: &str) -> bool {
    id != MAIN_ID && !id.is_empty() && common_dir.join("worktrees").join(id).is_dir()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

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

/// Whether git would refuse `git worktree remove` (without `--force`) for
/// submodules: as git checks, a `modules` folder in the worktree's admin dir
/// or a populated gitlink in its index.
pub fn has_submodules(common_dir: &Path, id: &str, root: &Path) -> Result<bool, GitError> {
    if common_dir
        .join("worktrees")
        .join(id)
        .join("modules")
        .is_dir()
    {
        return Ok(true);
    }
    const GITLINK: u32 = 0o160000;
    let index = Repository::open(root)?.index()?;
    Ok(index.iter().any(|entry| {
        entry.mode == GITLINK
            && root
                .join(String::from_utf8_lossy(&entry.path).as_ref())
                .join(".git")
                .exists()
    }))
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

/// `git worktree remove [--force] PATH`; also drops the entry of a worktree
/// whose folder is already gone.
pub fn worktree_remove(main: &Path, path: &Path, force: bool) -> Result<(), GitError> {
    let mut args: Vec<String> = vec!["worktree".into(), "remove".into()];
    if force {
        args.push("--force".into());
    }
    args.push(path.to_string_lossy().into_owned());
    run_git(main, &args).map(|_| ())
}

/// `git branch -D BRANCH`; callers check first that it is merged.
pub fn branch_delete(main: &Path, branch: &str) -> Result<(), GitError> {
    run_git(main, &["branch".into(), "-D".into(), branch.into()]).map(|_| ())
}
