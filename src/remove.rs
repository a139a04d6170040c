//! `provision remove`: a worktree, its database, its port and its record go
//! together. Without `--force` nothing happens while the worktree holds work
//! that would be lost; the branch is deleted only when it is merged.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::BoxError;
use crate::config::Settings;
use crate::registry::{Guard, Record, Registry};
use crate::repo::{self, Checkout, Worktree};
use crate::teardown::{self, DatabaseFate};
use crate::{context, envfile, hash, lock};

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(
        "no sandbox or worktree `{0}`: give a sandbox name or a worktree path (`provision status` lists them)"
    )]
    NotFound(String),
    #[error("{0} is the main worktree; provision never removes it")]
    Main(String),
    #[error(
        "{0} is locked (`git worktree lock`), so provision leaves it alone; run `git worktree unlock` first"
    )]
    Locked(String),
    #[error(
        "{name} has unsaved work, so nothing was removed: {work}; commit it and merge or push it, or pass --force to discard it"
    )]
    Unsaved { name: String, work: String },
}

/// Work that deleting a worktree would lose.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Unsaved {
    /// Changed, staged and untracked (not ignored) files, `git status --short` style.
    pub files: Vec<String>,
    /// Commits no other branch holds, `abc1234 subject`.
    pub commits: Vec<String>,
    /// Files git does not see because provision's exclude list names their
    /// path, but that are not what provision put there, `path (why)`.
    pub hidden: Vec<String>,
}

impl Unsaved {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.commits.is_empty() && self.hidden.is_empty()
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.files.is_empty() {
            parts.push(format!(
                "{} uncommitted or untracked file(s) ({})",
                self.files.len(),
                first_few(&self.files)
            ));
        }
        if !self.hidden.is_empty() {
            parts.push(format!(
                "{} file(s) git does not list because provision excludes their path ({})",
                self.hidden.len(),
                first_few(&self.hidden)
            ));
        }
        if !self.commits.is_empty() {
            parts.push(format!(
                "{} commit(s) on no other branch ({})",
                self.commits.len(),
                first_few(&self.commits)
            ));
        }
        parts.join(" and ")
    }
}

fn first_few(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items[..items.len().min(SHOWN)].join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(", and {} more", items.len() - SHOWN));
    }
    text
}

/// What `git worktree remove` would lose in `worktree`. A worktree whose
/// folder is gone has no files left to lose.
pub fn unsaved(main: &Checkout, worktree: &Worktree) -> Result<Unsaved, BoxError> {
    if !worktree.path.is_dir() {
        return Ok(Unsaved::default());
    }
    let files = repo::unsaved_files(&worktree.path)?;
    let hidden = hidden_files(&main.common_dir, &worktree.path)?;
    let commits = match &worktree.head {
        Some(head) => repo::unique_commits(&main.main, head, worktree.branch.as_deref())?,
        None => Vec::new(),
    };
    Ok(Unsaved {
        files,
        commits,
        hidden,
    })
}

/// The shared `info/exclude` hides every path provision ever linked, in
/// every worktree, so `git status` cannot tell provision's link from a real
/// file a user put in its place. Checks each such path (and the lock's
/// links and env file) by hand: a symlink, or an env file exactly as
/// provision wrote it, is provision's; anything else is someone's work.
fn hidden_files(common_dir: &Path, root: &Path) -> Result<Vec<String>, BoxError> {
    // A lock that cannot be read only loses the env file's hash.
    let sandbox = lock::read(root).ok().flatten().map(|read| read.sandbox);
    let mut paths: BTreeSet<String> = repo::excluded_paths(common_dir)?.into_iter().collect();
    if let Some(sandbox) = &sandbox {
        paths.extend(sandbox.links.iter().map(|l| l.path.clone()));
        paths.extend(sandbox.env.iter().map(|e| e.file.clone()));
    }
    paths.remove(lock::FILE_NAME);
    let written_env = sandbox.as_ref().and_then(|s| s.env.as_ref());
    let index = git2::Repository::open(root)?.index()?;
    let mut out = Vec::new();
    for path in paths {
        // A tracked path is in git's status already.
        if repo::is_tracked(&index, &path) {
            continue;
        }
        let at = root.join(&path);
        let meta = match fs_err::symlink_metadata(&at) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            out.push(format!("{path}/ (a real folder, not provision's link)"));
            continue;
        }
        let bytes = fs_err::read(&at)?;
        let ours = envfile::is_ours(&String::from_utf8_lossy(&bytes));
        match written_env.filter(|e| e.file == path) {
            Some(env) if ours && hash::of(&bytes) == env.content => {}
            Some(_) if ours => out.push(format!("{path} (edited since provision wrote it)")),
            None if ours => {}
            _ => out.push(format!("{path} (a real file, not provision's)")),
        }
    }
    Ok(out)
}

/// One sandbox taken down (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub name: String,
    pub path: String,
    pub branch: Option<String>,
    pub database: Option<String>,
    pub database_fate: Option<DatabaseFate>,
    /// The port freed with the record.
    pub port: Option<u16>,
    pub branch_deleted: bool,
    /// What was done, one line each, for a person.
    pub done: Vec<String>,
}

/// Everything a take-down needs from the repository.
pub struct Repo<'a> {
    pub main: &'a Checkout,
    pub settings: &'a Settings,
    pub registry: &'a Registry,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Pass `--force` to `git worktree remove` (discards unsaved work).
    pub force: bool,
    /// Decide the branch's fate; `gc` leaves orphans' branches alone.
    pub branch: bool,
    pub keep_branch: bool,
    pub dry_run: bool,
}

/// Drops the database if provision made it, removes the worktree through
/// git, deletes the record and, when asked and merged, the branch. Callers
/// have checked for unsaved work; `guard` is held unless `dry_run`.
pub fn take_down(
    repo_: &Repo,
    guard: Option<&Guard>,
    record: Option<&Record>,
    worktree: Option<&Worktree>,
    options: Options,
) -> Result<Removal, BoxError> {
    let path = worktree
        .map(|w| w.path.clone())
        .or_else(|| record.map(|r| r.path.clone()))
        .unwrap_or_default();
    let branch = worktree
        .and_then(|w| w.branch.clone())
        .or_else(|| record.and_then(|r| r.branch.clone()));
    let name = record
        .map(|r| r.name.clone())
        .or_else(|| branch.clone())
        .or_else(|| worktree.map(|w| w.id.clone()))
        .unwrap_or_default();
    let mut removal = Removal {
        name,
        path: path.display().to_string(),
        branch: branch.clone(),
        database: record.map(|r| r.database.name.clone()),
        database_fate: None,
        port: record.map(|r| r.port),
        branch_deleted: false,
        done: Vec::new(),
    };
    // "removed" or "would remove": a dry run reads the same as the real one.
    let did = |done: &str, would: &str| {
        if options.dry_run {
            format!("would {would}")
        } else {
            done.to_string()
        }
    };
    // The database goes first, while the worktree folder is still there:
    // command-kind commands may need it, and refuse to run without it.
    let fate = match record {
        Some(record) => Some(teardown::drop_database(
            repo_.settings,
            repo_.main,
            record,
            options.dry_run,
        )?),
        None => None,
    };
    if let Some(worktree) = worktree {
        let folder_gone = !worktree.path.exists();
        if !options.dry_run {
            repo::worktree_remove(&repo_.main.main, &worktree.path, options.force)?;
        }
        removal.done.push(if folder_gone {
            format!(
                "{} git's entry for {}",
                did("pruned", "prune"),
                worktree.path.display()
            )
        } else {
            format!(
                "{} worktree {}",
                did("removed", "remove"),
                worktree.path.display()
            )
        });
    }
    if let (Some(record), Some(fate)) = (record, fate) {
        removal.database_fate = Some(fate);
        removal.done.push(fate.describe(&record.database.name));
        if let Some(guard) = guard.filter(|_| !options.dry_run) {
            teardown::forget(repo_.registry, guard, record)?;
        }
        removal
            .done
            .push(format!("{} port {}", did("freed", "free"), record.port));
    }
    if let (true, Some(branch)) = (options.branch, worktree.and_then(|w| w.branch.as_ref())) {
        let (target, oid) = repo::default_branch(&repo_.main.main)?;
        if options.keep_branch {
            removal
                .done
                .push(format!("kept branch {branch} (--keep-branch)"));
        } else if repo::is_merged(&repo_.main.main, branch, oid)? {
            if !options.dry_run {
                repo::branch_delete(&repo_.main.main, branch)?;
            }
            removal.branch_deleted = true;
            removal.done.push(format!(
                "{} branch {branch} (merged into {target})",
                did("deleted", "delete")
            ));
        } else {
            removal.done.push(format!(
                "kept branch {branch}: it is not merged into {target}"
            ));
        }
    }
    Ok(removal)
}

/// `provision remove NAME`: NAME is a sandbox name, a worktree path, or the
/// branch or id of a worktree provision never set up.
pub fn remove(
    cwd: &Path,
    target: &str,
    force: bool,
    keep_branch: bool,
) -> Result<Removal, BoxError> {
    let main = Checkout::discover(cwd)?.main_of()?;
    let (settings, _) = context::recipe(&main)?;
    let registry = Registry::new(&main.common_dir);
    let guard = registry.lock()?;
    let records = registry.all(&guard)?;
    let worktrees = repo::worktrees(&main.main, &main.common_dir)?;
    let (record, worktree) = resolve(cwd, target, &records, &worktrees)
        .ok_or_else(|| RemoveError::NotFound(target.to_string()))?;
    let shown = worktree
        .map(|w| w.path.display().to_string())
        .or_else(|| record.map(|r| r.path.display().to_string()))
        .unwrap_or_default();
    if worktree.is_some_and(|w| w.is_main) || record.is_some_and(|r| r.id == "main") {
        return Err(RemoveError::Main(shown).into());
    }
    if worktree.is_some_and(|w| w.locked) {
        return Err(RemoveError::Locked(shown).into());
    }
    if let (false, Some(worktree)) = (force, worktree) {
        let work = unsaved(&main, worktree)?;
        if !work.is_empty() {
            return Err(RemoveError::Unsaved {
                name: record.map_or(shown, |r| r.name.clone()),
                work: work.describe(),
            }
            .into());
        }
    }
    let repo_ = Repo {
        main: &main,
        settings: &settings,
        registry: &registry,
    };
    let options = Options {
        force,
        branch: true,
        keep_branch,
        dry_run: false,
    };
    take_down(&repo_, Some(&guard), record, worktree, options)
}

fn resolve<'a>(
    cwd: &Path,
    target: &str,
    records: &'a [Record],
    worktrees: &'a [Worktree],
) -> Option<(Option<&'a Record>, Option<&'a Worktree>)> {
    let worktree_of = |record: &Record| worktrees.iter().find(|w| w.id == record.id);
    if let Some(record) = records.iter().find(|r| r.name == target) {
        return Some((Some(record), worktree_of(record)));
    }
    // A path: compare canonical forms where the folder still exists.
    let as_path = crate::fsutil::normalize(&cwd.join(target));
    let canonical = fs_err::canonicalize(&as_path).unwrap_or(as_path);
    let same = |p: &Path| fs_err::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()) == canonical;
    if let Some(worktree) = worktrees.iter().find(|w| same(&w.path)) {
        let record = records.iter().find(|r| r.id == worktree.id);
        return Some((record, Some(worktree)));
    }
    if let Some(record) = records.iter().find(|r| same(&r.path)) {
        return Some((Some(record), worktree_of(record)));
    }
    let worktree = worktrees
        .iter()
        .find(|w| !w.is_main && (w.branch.as_deref() == Some(target) || w.id == target))?;
    Some((records.iter().find(|r| r.id == worktree.id), Some(worktree)))
}
