//! Linked worktrees through git itself: `worktree add`, `list`, `remove`,
//! their ids and locks, and what git would refuse to remove.

use std::path::{Path, PathBuf};

use git2::Repository;

use super::{GitError, MAIN_ID, run_git};

/// Where the branch of a new worktree comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A new branch, at this revision (`HEAD` when `None`).
    New(Option<String>),
    /// The local branch exists: checked out as it is.
    Existing,
    /// Only a remote has it: a local branch tracking this remote branch
    /// (`origin/NAME`).
    Track(String),
}

impl Start {
    /// Whether `new` makes the branch (and so may delete it again).
    pub fn creates_branch(&self) -> bool {
        !matches!(self, Start::Existing)
    }

    /// The revision the worktree's files come from.
    pub fn revision(&self, branch: &str) -> String {
        match self {
            Start::New(from) => from.clone().unwrap_or_else(|| "HEAD".into()),
            Start::Existing => format!("refs/heads/{branch}"),
            Start::Track(remote) => format!("refs/remotes/{remote}"),
        }
    }

    /// How progress words it: `on new branch x`, `on branch x`, …
    pub fn describe(&self, branch: &str) -> String {
        match self {
            Start::New(_) => format!("on new branch {branch}"),
            Start::Existing => format!("on branch {branch}"),
            Start::Track(remote) => format!("on new branch {branch} tracking {remote}"),
        }
    }
}

/// Decides where `branch` comes from: an existing local branch is checked
/// out, one only a remote has gets a tracking branch (`origin` first when
/// several have it), anything else is new at `from`. `from` with an
/// existing branch is refused: it would be ignored.
pub fn branch_start(main: &Path, branch: &str, from: Option<&str>) -> Result<Start, GitError> {
    if !git2::Branch::name_is_valid(branch)? {
        return Err(GitError::BadBranchName(branch.into()));
    }
    let repo = git2::Repository::open(main)?;
    // A revision goes to git as a word after the path: one that reads as
    // an option (`--force`) is refused, and only what resolves is passed.
    if let Some(rev) = from
        && (rev.starts_with('-') || repo.revparse_single(rev).is_err())
    {
        return Err(GitError::BadRevision(rev.into()));
    }
    let start = if repo.find_branch(branch, git2::BranchType::Local).is_ok() {
        Start::Existing
    } else {
        let mut remotes: Vec<String> = repo
            .remotes()?
            .iter()
            .filter_map(|remote| Some(format!("{}/{branch}", remote.ok()??)))
            .filter(|name| repo.find_branch(name, git2::BranchType::Remote).is_ok())
            .collect();
        remotes.sort_by_key(|name| !name.starts_with("origin/"));
        match remotes.into_iter().next() {
            Some(remote) => Start::Track(remote),
            None => return Ok(Start::New(from.map(str::to_string))),
        }
    };
    match from {
        Some(rev) => Err(GitError::FromExisting {
            branch: branch.into(),
            rev: rev.into(),
            found: match &start {
                Start::Track(remote) => remote.clone(),
                _ => "a local branch".into(),
            },
        }),
        None => Ok(start),
    }
}

/// `git worktree add` of `path` on `branch`, as `start` says; with git's
/// parallel checkout when `parallel` (see [`parallel_checkout_pays`]).
pub fn worktree_add(
    main: &Path,
    branch: &str,
    path: &Path,
    start: &Start,
    parallel: bool,
) -> Result<(), GitError> {
    // Locked from git's first write until `unlock_added`, with a reason of
    // provision's own: a `new` killed in between leaves a worktree that
    // `gc` knows for one no `new` will finish (`new` holds the registry
    // lock until it unlocks, and `gc` takes it).
    let mut args: Vec<String> = Vec::new();
    if parallel {
        args.extend(["-c".into(), "checkout.workers=0".into()]);
    }
    args.extend(["worktree", "add", "--lock", "--reason", ADDING].map(String::from));
    let path = path.to_string_lossy().into_owned();
    match start {
        Start::New(from) => {
            args.extend(["-b".into(), branch.into(), path]);
            args.extend(from.clone());
        }
        Start::Existing => args.extend([path, branch.into()]),
        Start::Track(remote) => args.extend([
            "--track".into(),
            "-b".into(),
            branch.into(),
            path,
            remote.clone(),
        ]),
    }
    run_git(main, &args).map(|_| ())
}

/// Whether git's parallel checkout (`checkout.workers=0`, a worker per
/// core) pays for a new worktree now: 2 cores or more, nothing else
/// running this moment, and no task kept waiting for a core lately (the
/// kernel's CPU pressure over 10 s under 10%; without it, a load average
/// under all cores but one). On the 3,000-file benchmark with 2 cores it
/// took 0.74–0.97× the default's time with the cores idle (the less, the
/// more the disk is the limit: its writes overlap), but 1.7–2.5× with the
/// other core busy, which is what many agents at once look like. Waiting
/// on the disk is not a busy core: the load average counts it, the
/// pressure does not. A user's own `checkout.workers` is never overridden.
pub fn parallel_checkout_pays(main: &Path) -> bool {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loadavg = fs_err::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = loadavg.split_whitespace().collect();
    // "running/total" scheduling entities; running counts this thread.
    let running: Option<usize> = fields
        .get(3)
        .and_then(|f| f.split('/').next())
        .and_then(|f| f.parse().ok());
    let calm = match fs_err::read_to_string("/proc/pressure/cpu") {
        // "some avg10=2.80 avg60=… avg300=… total=…"
        Ok(text) => text
            .lines()
            .find_map(|line| line.strip_prefix("some "))
            .and_then(|line| line.split_whitespace().next())
            .and_then(|field| field.strip_prefix("avg10="))
            .and_then(|value| value.parse::<f64>().ok())
            .is_some_and(|stalled| stalled < 10.0),
        Err(_) => fields
            .first()
            .and_then(|f| f.parse::<f64>().ok())
            .is_some_and(|load| load < (cores - 1) as f64),
    };
    cores >= 2 && running.is_some_and(|r| r <= 1) && calm && !configured(main, "checkout.workers")
}

/// Whether git's config sets `key` for the repository at `main`, as far as
/// libgit2 reads it, or may set it where libgit2 does not look (the
/// environment's `GIT_CONFIG_*`).
fn configured(main: &Path, key: &str) -> bool {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if env("GIT_CONFIG_PARAMETERS").is_some() || env("GIT_CONFIG_COUNT").is_some() {
        return true;
    }
    let in_file = |name: &str| {
        env(name).is_some_and(|path| {
            git2::Config::open(Path::new(&path)).is_ok_and(|c| c.get_entry(key).is_ok())
        })
    };
    in_file("GIT_CONFIG_GLOBAL")
        || in_file("GIT_CONFIG_SYSTEM")
        || Repository::open(main)
            .and_then(|repo| repo.config())
            .is_ok_and(|config| config.get_entry(key).is_ok())
}

/// Whether git's checkout of a new worktree at `path` is whole: its index
/// holds an entry for every file of HEAD's tree. git's `worktree add` can
/// report success over a checkout that read HEAD wrong (a disk fault
/// there): an empty index, and no files.
pub fn checkout_complete(path: &Path) -> Result<bool, GitError> {
    let repo = Repository::open(path)?;
    let Some(tree) = super::head_tree(&repo)? else {
        return Ok(true);
    };
    let mut files = 0usize;
    tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        if entry.kind() != Some(git2::ObjectType::Tree) {
            files += 1;
        }
        git2::TreeWalkResult::Ok
    })?;
    Ok(repo.index()?.len() == files)
}

/// The lock reason `worktree_add` gives git while the worktree is made.
pub const ADDING: &str = "provision new: being created";

/// Takes back the lock `worktree_add` left, as `git worktree unlock` does,
/// without another git run on `new`'s path.
pub fn unlock_added(common_dir: &Path, path: &Path) -> Result<(), GitError> {
    let id = id_from_dot_git(common_dir, path).unwrap_or_else(|| file_name(path));
    unlock(common_dir, &id)
}

/// Takes over a worktree a killed `new` left locked with [`ADDING`]: its
/// lock goes, so that `gc` no longer counts it as cut short. Any other lock
/// (the user's `git worktree lock`) stays. Returns whether there was one.
/// git's checkout may have been cut short too: a missing index is made
/// from HEAD (the files stay as they are) and the files it had not
/// written yet are written; a file that is there is never overwritten.
/// So is one whose take-down was cut short inside `git worktree remove`
/// (marked [`REMOVING`]): the files git deleted come back, and the mark goes.
pub fn take_over_added(common_dir: &Path, id: &str, root: &Path) -> Result<bool, GitError> {
    let admin = common_dir.join("worktrees").join(id);
    let adding = fs_err::read_to_string(admin.join("locked"))
        .is_ok_and(|reason| reason.trim_end() == ADDING);
    let removing = admin.join(REMOVING).is_file();
    if !adding && !removing {
        return Ok(false);
    }
    // git writes the index whole or not at all: one that is there holds
    // what the user may have staged since, and stays.
    if !admin.join("index").is_file() {
        run_git(root, &["reset".into(), "-q".into()])?;
        // A file git was writing when it was cut short holds the start of
        // HEAD's content (nothing, if git had only opened it): git's own
        // doing, as `gc` counts it, and written whole like a missing one.
        let differ = run_git(root, &["diff".into(), "--name-only".into(), "-z".into()])?;
        let differ: Vec<String> = differ
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        let cut: Vec<String> = super::history::cut_short(root, &differ)?;
        if !cut.is_empty() {
            let mut args: Vec<String> = ["checkout-index", "-f", "-q", "--"]
                .map(String::from)
                .to_vec();
            args.extend(cut);
            run_git(root, &args)?;
        }
    }
    // Exits 1 when files exist, which is what it is told to keep.
    let _ = run_git(root, &["checkout-index".into(), "-a".into(), "-q".into()]);
    if removing {
        fs_err::remove_file(admin.join(REMOVING))?;
    }
    if adding {
        unlock(common_dir, id)?;
    }
    Ok(true)
}

/// The expiry git's own gc gives an entry whose folder is gone
/// (`gc.worktreePruneExpire`, by default three months): until then the
/// worktree may only have been moved, and `git worktree repair` finds it.
pub fn prune_expire(main: &Path) -> String {
    let args = ["config", "--get", "gc.worktreePruneExpire"].map(String::from);
    run_git(main, &args)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "3.months.ago".into())
}

/// The ids of entries git's gc would prune now, under `expire`: git
/// decides, with its own date parsing, from its own records.
pub fn expired_entries(main: &Path, expire: &str) -> Result<Vec<String>, GitError> {
    let args = [
        "worktree",
        "prune",
        "--dry-run",
        "--verbose",
        "--expire",
        expire,
    ];
    crate::output::command("git", args);
    // git says what it would prune on stderr.
    let output = super::command(main)
        .args(args)
        .output()
        .map_err(GitError::Spawn)?;
    if !output.status.success() {
        return Err(GitError::Command {
            args: crate::shell::words(args),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| line.strip_prefix("Removing worktrees/"))
        .filter_map(|rest| rest.split_once(':').map(|(id, _)| id.to_string()))
        .collect())
}

/// The file in a worktree's admin dir that says a provision take-down has
/// begun `git worktree remove` there. git deletes the admin dir last, so
/// while the worktree is still listed, a marked one is one git's step was
/// cut short in: its missing files are git's doing, not the user's.
const REMOVING: &str = "provision-removing";

/// Marks worktree `id` as being removed by provision (see [`REMOVING`]).
pub fn mark_removing(common_dir: &Path, id: &str) -> Result<(), GitError> {
    let path = common_dir.join("worktrees").join(id).join(REMOVING);
    if path.is_file() {
        return Ok(());
    }
    Ok(crate::fsutil::write_atomically(
        &path,
        b"provision remove\n",
    )?)
}

/// `git worktree prune` under git's own expiry for entries whose folder is
/// gone (`expire`, see [`prune_expire`]): what git's gc would prune. Takes
/// away an admin dir a take-down cut short left without its folder.
pub fn worktree_prune(main: &Path, expire: &str) -> Result<(), GitError> {
    let args = ["worktree", "prune", "--expire", expire].map(String::from);
    run_git(main, &args).map(|_| ())
}

/// The admin dirs git's own prune takes away at once: no `gitdir` file (what
/// a `git worktree add` or `remove` cut short leaves), not locked.
pub fn broken_entries(common_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(common_dir.join("worktrees")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter(|e| !e.path().join("gitdir").exists() && !e.path().join("locked").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Removes a worktree's lock (`worktrees/<id>/locked`).
pub fn unlock(common_dir: &Path, id: &str) -> Result<(), GitError> {
    match fs_err::remove_file(common_dir.join("worktrees").join(id).join("locked")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
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
    /// A provision take-down had begun `git worktree remove` on it (see
    /// [`mark_removing`]): what is missing from it, git deleted.
    pub removing: bool,
}

impl Worktree {
    /// git lists it but cannot use it: its admin dir lost `HEAD` or
    /// `commondir` (a `git worktree remove` cut short part way through
    /// deleting it), so `git status` there fails and `git worktree remove`
    /// refuses its folder.
    pub fn is_broken(&self, common_dir: &Path) -> bool {
        let admin = common_dir.join("worktrees").join(&self.id);
        !self.is_main && (!admin.join("HEAD").is_file() || !admin.join("commondir").is_file())
    }
}

/// Every worktree of the repository, the main one first, as git lists it.
/// One `git` run; ids come from the `gitdir` files under `worktrees/`.
/// A list that misses a usable entry git's own records hold (git failed to
/// read it: a disk fault) is asked for again, then refused: acting on it
/// could take a live worktree for a gone one.
pub fn worktrees(main: &Path, common_dir: &Path) -> Result<Vec<Worktree>, GitError> {
    let listed = list_worktrees(main, common_dir)?;
    if missing_entry(common_dir, &listed).is_none() {
        return Ok(listed);
    }
    // Once more: a `new` may have added it in between.
    let listed = list_worktrees(main, common_dir)?;
    match missing_entry(common_dir, &listed) {
        None => Ok(listed),
        Some(id) => Err(GitError::Command {
            args: "worktree list --porcelain -z".into(),
            stderr: format!(
                "its list misses the worktree .git/worktrees/{id} that git's own records hold; try again"
            ),
        }),
    }
}

/// The id of a usable entry under `worktrees/` (its `gitdir`, `HEAD` and
/// `commondir` there) that `listed` lacks.
fn missing_entry(common_dir: &Path, listed: &[Worktree]) -> Option<String> {
    worktree_ids(common_dir)
        .into_iter()
        .map(|(_, id)| id)
        .filter(|id| {
            let admin = common_dir.join("worktrees").join(id);
            admin.join("HEAD").is_file() && admin.join("commondir").is_file()
        })
        .find(|id| !listed.iter().any(|w| &w.id == id))
}

fn list_worktrees(main: &Path, common_dir: &Path) -> Result<Vec<Worktree>, GitError> {
    let text = run_git(
        main,
        &[
            "worktree".into(),
            "list".into(),
            "--porcelain".into(),
            "-z".into(),
        ],
    )?;
    // Read only for a worktree whose `.git` does not name its entry.
    let mut ids: Option<Vec<(String, String)>> = None;
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
                        ids.get_or_insert_with(|| worktree_ids(common_dir))
                            .iter()
                            .find(|(path, _)| same_path(Path::new(path), Path::new(value)))
                            .map(|(_, id)| id.clone())
                    })
                    .unwrap_or_else(|| file_name(Path::new(value)))
            };
            let removing = !is_main
                && common_dir
                    .join("worktrees")
                    .join(&id)
                    .join(REMOVING)
                    .is_file();
            out.push(Worktree {
                id,
                path: PathBuf::from(value),
                branch: None,
                head: None,
                is_main,
                locked: false,
                cut_short: false,
                prunable: false,
                removing,
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

/// Whether git's own records (`worktrees/<id>/gitdir`, read here, not
/// through `git worktree list`) hold a usable entry for the folder `root`:
/// one with its `HEAD` and `commondir`. A record that cannot be read counts
/// as one: provision never takes a folder git may still know.
pub fn has_usable_entry_for(common_dir: &Path, root: &Path) -> bool {
    let Ok(entries) = fs_err::read_dir(common_dir.join("worktrees")) else {
        return common_dir.join("worktrees").exists();
    };
    entries.into_iter().any(|entry| {
        let Ok(entry) = entry else {
            return true;
        };
        let admin = entry.path();
        match fs_err::read_to_string(admin.join("gitdir")) {
            Ok(text) => {
                let path = text.trim_end_matches('\n');
                let path = path.strip_suffix("/.git").unwrap_or(path);
                same_path(Path::new(path), root)
                    && admin.join("HEAD").is_file()
                    && admin.join("commondir").is_file()
            }
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        }
    })
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

/// Whether git keeps an entry (`worktrees/<id>`) for the worktree `id`: an
/// admin dir without its `gitdir` file is one git's own prune takes away
/// at once (what a cut-short `git worktree add` or `remove` leaves).
pub fn has_entry(common_dir: &Path, id: &str) -> bool {
    id != MAIN_ID
        && !id.is_empty()
        && common_dir
            .join("worktrees")
            .join(id)
            .join("gitdir")
            .is_file()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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
