//! Takes a sandbox apart: its processes (services, and anything else still
//! working in its folder), the worktree through git, the database (only
//! when it carries provision's mark), the registry record (which frees the
//! ports) and, when asked and merged, the branch. The primitive `remove` and `gc`
//! share; deciding what may go is theirs.

use std::path::Path;

use serde::Serialize;

use crate::BoxError;
use crate::db::DbError;
use crate::git::{self, Worktree};
use crate::lifecycle::leftover;
use crate::lifecycle::registry::{Guard, Record, Registry, RegistryError};
use crate::recipe::config::DatabaseKind;
use crate::sandbox::lock::NamedPorts;
use crate::services::{self, Stopped};
use crate::workspace::{Owner, Workspace};

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error("cannot drop database `{0}`")]
    Drop(String, #[source] Box<DbError>),
    #[error("cannot open database `{0}`")]
    Open(String, #[source] crate::BoxError),
    #[error(
        "sandbox `{0}` is busy: a `provision apply` is running in it; try again when it is done"
    )]
    Busy(String),
    #[error(
        "kept {0}, which a take-down cut short inside git left: {1}; the sandbox's record stays, so that `provision remove` finishes it once you have moved what you need out"
    )]
    Kept(String, String),
    #[error("cannot delete the registry record of `{0}`")]
    Record(String, #[source] RegistryError),
    #[error(
        "sandbox `{name}` was not removed: git would refuse to remove its worktree ({why}), and its database goes only with it; {remedy}"
    )]
    WorktreeStays {
        name: String,
        why: String,
        remedy: String,
    },
}

/// What became of a sandbox's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseFate {
    Dropped,
    /// `--dry-run`: it would be dropped.
    WouldDrop,
    /// Nothing to drop: it was never created or is already gone.
    Absent,
    /// It exists without provision's mark: provision did not create it.
    KeptUnmarked,
    /// The recipe now names another kind or place than the record: opening
    /// "the same" database could reach someone else's, so it is left alone.
    KeptRecipeChanged,
    /// A command-kind command names the worktree, whose folder is gone.
    KeptWorktreeGone,
    /// The command kind's recipe has no `drop`: the database is left to
    /// its tool, and provision forgot its record of it.
    KeptNoDrop,
}

impl DatabaseFate {
    /// Provision's database, left in place for now: its record must stay.
    pub fn still_ours(self) -> bool {
        matches!(
            self,
            DatabaseFate::KeptRecipeChanged | DatabaseFate::KeptWorktreeGone
        )
    }

    pub fn describe(self, name: &str) -> String {
        match self {
            DatabaseFate::Dropped => format!("dropped database {name}"),
            DatabaseFate::WouldDrop => format!("would drop database {name}"),
            DatabaseFate::Absent => format!("database {name} was already gone"),
            DatabaseFate::KeptUnmarked => {
                format!("kept database {name}: it has no provision mark")
            }
            DatabaseFate::KeptRecipeChanged => format!(
                "kept database {name}: provision.toml's [database] no longer matches the record"
            ),
            DatabaseFate::KeptWorktreeGone => format!(
                "kept database {name}: its `exists` or `drop` command names the worktree, whose folder is gone; remove it by hand"
            ),
            DatabaseFate::KeptNoDrop => format!(
                "left database {name} to its tool: the recipe has no `drop` command (provision forgot its record of it)"
            ),
        }
    }
}

/// Drops the record's database if provision created it; with `dry_run`
/// only says what it would do.
fn drop_database(
    workspace: &Workspace,
    record: &Record,
    dry_run: bool,
) -> Result<DatabaseFate, TeardownError> {
    let recorded = &record.database;
    let ports = record.named_ports();
    // Always the record's path, even when its folder is gone: it is what
    // `{worktree}` and the env overrides meant. The command kind itself
    // decides where to run once the folder is gone.
    let owner = Owner {
        worktree: &record.path,
        id: &record.id,
        name: &record.name,
        database: &recorded.name,
        port: record.port,
        ports: &ports,
    };
    let mut database = workspace
        .open_database(&owner)
        .map_err(|e| TeardownError::Open(recorded.name.clone(), e))?;
    if database.kind() != recorded.kind || database.location() != recorded.location {
        return Ok(DatabaseFate::KeptRecipeChanged);
    }
    let fate = (|| {
        if !database.exists()? {
            if !dry_run {
                // Lets a kind forget what it kept of a database that is gone
                // (the command kind's record), so the name can never be
                // mistaken for provision's later.
                database.drop_database()?;
            }
            return Ok(DatabaseFate::Absent);
        }
        if !database.is_marked()? {
            return Ok(DatabaseFate::KeptUnmarked);
        }
        if !database.can_drop() {
            if !dry_run {
                database.forget()?;
            }
            return Ok(DatabaseFate::KeptNoDrop);
        }
        if dry_run {
            return Ok(DatabaseFate::WouldDrop);
        }
        database.drop_database()?;
        Ok(DatabaseFate::Dropped)
    })();
    match fate {
        Err(DbError::WorktreeGone { .. }) => Ok(DatabaseFate::KeptWorktreeGone),
        other => other.map_err(|e| TeardownError::Drop(recorded.name.clone(), Box::new(e))),
    }
}

/// Deletes the record, which frees its port for the next sandbox.
fn forget(registry: &Registry, guard: &Guard, record: &Record) -> Result<(), TeardownError> {
    registry
        .delete(guard, &record.id)
        .map_err(|e| TeardownError::Record(record.name.clone(), e))
}

/// One sandbox taken down (or, in a dry run, that would be).
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub name: String,
    pub path: String,
    pub branch: Option<String>,
    pub database: Option<String>,
    pub database_fate: Option<DatabaseFate>,
    /// The port freed with the record (the first, with named ports).
    pub port: Option<u16>,
    /// Every named port freed with the record.
    #[serde(skip_serializing_if = "NamedPorts::is_empty")]
    pub ports: NamedPorts,
    /// A dry run: nothing was done, `done` says what would be.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The processes stopped (or, in a dry run, that would be).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<Stopped>,
    pub branch_deleted: bool,
    /// What was done, one line each, for a person.
    pub done: Vec<String>,
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

impl Options {
    /// "removed" or "would remove": a dry run reads the same as the real one.
    fn did(self, done: &str, would: &str) -> String {
        if self.dry_run {
            format!("would {would}")
        } else {
            done.to_string()
        }
    }
}

/// Drops the database if provision made it, removes the worktree through
/// git, deletes the record and, when asked and merged, the branch. Callers
/// have checked for unsaved work; `guard` is held unless `dry_run`.
pub fn take_down(
    workspace: &Workspace,
    guard: Option<&Guard>,
    record: Option<&Record>,
    worktree: Option<&Worktree>,
    options: Options,
) -> Result<Removal, BoxError> {
    let mut removal = Removal::of(record, worktree);
    removal.dry_run = options.dry_run;
    // One take-down at a time per sandbox, and never in the middle of an
    // apply: waiting here while holding the registry lock could deadlock
    // with an apply that waits for the registry, so a busy sandbox is skipped.
    let _turn = match record.filter(|_| !options.dry_run) {
        Some(record) => Some(
            workspace
                .registry
                .try_lock_sandbox(&record.id)?
                .ok_or_else(|| TeardownError::Busy(record.name.clone()))?,
        ),
        None => None,
    };
    // git refuses, even forced, a worktree whose `.git` does not lead back
    // to its entry (the repository moved, or `.git` was replaced): refused
    // here, before anything is marked or dropped. One a take-down cut short
    // inside git left without it is cleared further on.
    if let (false, Some(worktree)) = (options.dry_run, worktree) {
        let entry = (workspace.checkout.common_dir.join("worktrees")).join(&worktree.id);
        let cut_short = worktree.removing || record.is_some_and(|r| r.removing);
        if !cut_short && worktree.path.is_dir() && !leads_back(&worktree.path, &entry) {
            return Err(TeardownError::WorktreeStays {
                name: removal.name.clone(),
                why: format!("its `.git` does not lead back to {}", entry.display()),
                remedy: "if the repository was moved, run `git worktree repair` in it first".into(),
            }
            .into());
        }
    }
    // Nothing of the sandbox is left running, and nothing writes into the
    // worktree while it goes.
    removal.stopped = stop_processes(workspace, record, worktree, options.dry_run)?;
    removal
        .done
        .extend(services::stop::describe(&removal.stopped));
    // Said in the record first, so that a `gc` finishing a take-down cut
    // short deletes the branch as this one would have.
    if let (Some(record), Some(guard)) = (record, guard)
        && options.branch
        && !options.keep_branch
        && !options.dry_run
        && !record.removing
    {
        let marked = Record {
            removing: true,
            ..record.clone()
        };
        workspace.registry.put(guard, &marked)?;
    }
    let drop_database = |record: &Record| drop_database(workspace, record, options.dry_run);
    // The command kind's commands may need the worktree folder, so its
    // database goes first; every other kind's goes after git has removed
    // the worktree, the step that can still refuse.
    let database_first = workspace.settings.database.kind == DatabaseKind::Command;
    // A database never goes while its worktree stays: whatever would make
    // git refuse is checked right before the database goes.
    if let (true, false, Some(record), Some(worktree)) =
        (database_first, options.dry_run, record, worktree)
    {
        git_would_keep(workspace, record, worktree, options.force)?;
    }
    let mut fate = match record {
        Some(record) if database_first => Some(drop_database(record)?),
        _ => None,
    };
    if let Some(worktree) = worktree {
        let folder_gone = !worktree.path.exists();
        // A take-down before this one began git's step and was cut short.
        let cut_short = worktree.removing || record.is_some_and(|r| r.removing);
        if !options.dry_run {
            let common_dir = &workspace.checkout.common_dir;
            if git::has_entry(common_dir, &worktree.id) {
                git::mark_removing(common_dir, &worktree.id)?;
            }
            let unusable = !worktree.path.join(".git").exists() || worktree.is_broken(common_dir);
            if cut_short && worktree.path.is_dir() && unusable {
                // git deleted the folder's `.git` link (or part of its admin
                // dir) before it was cut short, and refuses such a folder:
                // what is left goes when HEAD (or the record's branch) holds
                // it, then git's entry of a folder that is gone.
                let heads = leftover::sources(
                    &workspace.checkout.main,
                    worktree.head.as_deref(),
                    record.and_then(|r| r.branch.as_deref()),
                )?;
                let (main, path) = (&workspace.checkout.main, &worktree.path);
                if let Err(why) = leftover::clear(main, common_dir, path, &heads)? {
                    return Err(TeardownError::Kept(path.display().to_string(), why).into());
                }
            }
            // A take-down git's step was cut short in lacks the files git
            // deleted: git would call that unsaved work. Callers have
            // checked that nothing else is.
            let force = options.force || cut_short;
            git::worktree_remove(&workspace.checkout.main, &worktree.path, force)?;
        }
        let path = worktree.path.display();
        removal.done.push(if folder_gone {
            format!("{} git's entry for {path}", options.did("pruned", "prune"))
        } else {
            format!("{} worktree {path}", options.did("removed", "remove"))
        });
    }
    if let (None, Some(record), false) = (worktree, record, options.dry_run) {
        removal.done.extend(leftover_folder(workspace, record)?);
        removal.done.extend(leftover_entry(workspace, record)?);
    }
    if let Some(record) = record.filter(|_| !database_first) {
        fate = Some(drop_database(record)?);
    }
    // The record's branch when git's step is already done (a `remove` cut
    // short after it): the re-run finishes the branch too. Before the
    // record goes, since the re-run finds the branch through it. git
    // refuses to delete a branch some other worktree has out.
    let branch = match worktree {
        Some(worktree) => worktree.branch.as_ref(),
        None => record.and_then(|r| r.branch.as_ref()),
    };
    if let (true, Some(branch)) = (options.branch, branch) {
        removal.branch_deleted = branch_fate(workspace, branch, options, &mut removal.done)?;
    }
    if let (Some(record), Some(fate)) = (record, fate) {
        let freed = release(workspace, guard, record, fate, options)?;
        removal.database_fate = Some(fate);
        removal.done.extend(freed);
    }
    Ok(removal)
}

/// Refuses when `git worktree remove` would refuse `worktree`, as git
/// checks it: locked, or (without `force`) changed or untracked files or
/// submodules.
fn git_would_keep(
    workspace: &Workspace,
    record: &Record,
    worktree: &Worktree,
    force: bool,
) -> Result<(), BoxError> {
    if !worktree.path.is_dir() {
        return Ok(());
    }
    let refuse = |why: String, remedy: &str| TeardownError::WorktreeStays {
        name: record.name.clone(),
        why,
        remedy: remedy.to_string(),
    };
    // Read again: gc unlocks a worktree a killed `new` left locked.
    let lock = (workspace.checkout.common_dir.join("worktrees"))
        .join(&worktree.id)
        .join("locked");
    if worktree.locked && lock.exists() {
        return Err(refuse(
            "it is locked (`git worktree lock`)".into(),
            "run `git worktree unlock` first",
        )
        .into());
    }
    if force {
        return Ok(());
    }
    let mut work = crate::lifecycle::remove::unsaved(workspace, worktree)?;
    // Commits stay on the branch; git removes a worktree that has them.
    work.commits.clear();
    if !work.is_empty() {
        let remedy = work.remedy(worktree.branch.as_deref());
        return Err(refuse(work.describe(), &remedy).into());
    }
    Ok(())
}

/// Whether the worktree at `path` has the `.git` file git's `worktree
/// remove` validates: a `gitdir:` line naming its `entry`.
fn leads_back(path: &Path, entry: &Path) -> bool {
    let link = path.join(".git");
    if !fs_err::symlink_metadata(&link).is_ok_and(|meta| meta.is_file()) {
        return false;
    }
    let Ok(text) = fs_err::read_to_string(&link) else {
        return false;
    };
    let Some(named) = text.lines().next().and_then(|l| l.strip_prefix("gitdir:")) else {
        return false;
    };
    let named = Path::new(named.trim());
    git::same_path(&path.join(named), entry)
}

/// The record's folder when git no longer lists it (or lists it, but can
/// no longer use it): `git worktree remove` deleted git's entry but failed
/// (or was killed) part way through the files. It goes when every file left is content the record's branch holds
/// or provision's own; otherwise it stays with the record, and the error
/// says why.
fn leftover_folder(workspace: &Workspace, record: &Record) -> Result<Option<String>, BoxError> {
    let checkout = &workspace.checkout;
    let worktrees = git::worktrees(&checkout.main, &checkout.common_dir)?;
    if !leftover::is_left(&record.path, &worktrees, &checkout.common_dir) {
        return Ok(None);
    }
    let tip = leftover::sources(&checkout.main, None, record.branch.as_deref())?;
    let path = &record.path;
    match leftover::clear(&checkout.main, &checkout.common_dir, path, &tip)? {
        Ok(()) => {
            if worktrees.iter().any(|w| git::same_path(&w.path, path)) {
                // An entry git still lists, of a folder that is gone now:
                // this drops it.
                git::worktree_remove(&checkout.main, path, true)?;
            }
            Ok(Some(format!("removed what git left of {}", path.display())))
        }
        // The record stays with it, so that the next run finishes it.
        Err(why) => Err(TeardownError::Kept(path.display().to_string(), why).into()),
    }
}

/// What git's cut-short `worktree remove` left of the record's admin dir
/// once its folder is gone: without its `gitdir`, git's own prune takes it;
/// with a `gitdir` naming the record's folder but no `HEAD` or `commondir`
/// (so git could not list it as the record's), `git worktree remove`
/// drops it. An intact entry (a worktree moved with `mv`) is never touched.
fn leftover_entry(workspace: &Workspace, record: &Record) -> Result<Option<String>, BoxError> {
    let (main, common_dir) = (&workspace.checkout.main, &workspace.checkout.common_dir);
    let admin = common_dir.join("worktrees").join(&record.id);
    if !admin.is_dir() || record.path.exists() {
        return Ok(None);
    }
    if !git::has_entry(common_dir, &record.id) {
        git::worktree_prune(main, &git::prune_expire(main))?;
        return Ok(None);
    }
    let names_record = fs_err::read_to_string(admin.join("gitdir")).is_ok_and(|text| {
        let path = text.trim_end_matches('\n');
        Path::new(path.strip_suffix("/.git").unwrap_or(path)) == record.path
    });
    let broken = !admin.join("HEAD").is_file() || !admin.join("commondir").is_file();
    if !(names_record && broken) {
        return Ok(None);
    }
    git::worktree_remove(main, &record.path, true)?;
    Ok(Some(format!(
        "dropped git's entry for {}, which git's cut-short step left half deleted",
        record.path.display()
    )))
}

/// Stops the sandbox's services and every other process working in its
/// worktree (see `services::stop`); with `dry_run`, only says which.
fn stop_processes(
    workspace: &Workspace,
    record: Option<&Record>,
    worktree: Option<&Worktree>,
    dry_run: bool,
) -> Result<Vec<Stopped>, BoxError> {
    let (id, path) = match (worktree, record) {
        (Some(w), _) => (&w.id, &w.path),
        (None, Some(r)) => (&r.id, &r.path),
        (None, None) => return Ok(Vec::new()),
    };
    let checkout = &workspace.checkout;
    let others = git::worktrees(&checkout.main, &checkout.common_dir)?
        .into_iter()
        .map(|w| w.path)
        .filter(|p| p != path)
        .collect();
    let sandbox = services::Sandbox {
        common_dir: &checkout.common_dir,
        id,
        name: record.map_or("", |r| r.name.as_str()),
        path,
        // Once git's entry is gone, the path may hold something else.
        live: worktree.is_some(),
        others,
    };
    Ok(services::stop_sandbox(&sandbox, dry_run)?)
}

impl Removal {
    /// Nothing done yet to the sandbox of `record` and `worktree`.
    fn of(record: Option<&Record>, worktree: Option<&Worktree>) -> Self {
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
        Removal {
            name,
            path: path.display().to_string(),
            branch,
            database: record.map(|r| r.database.name.clone()),
            database_fate: None,
            port: record.map(|r| r.port),
            ports: record.map(Record::named_ports).unwrap_or_default(),
            stopped: Vec::new(),
            dry_run: false,
            branch_deleted: false,
            done: Vec::new(),
        }
    }
}

/// Lets go of the record once its database is settled, which frees its
/// port; returns what that did, for the report.
fn release(
    workspace: &Workspace,
    guard: Option<&Guard>,
    record: &Record,
    fate: DatabaseFate,
    options: Options,
) -> Result<Vec<String>, TeardownError> {
    let mut done = vec![fate.describe(&record.database.name)];
    // `remove --force` lets go of the record even so: the user was told
    // where the database is and chose to keep it by hand.
    if fate.still_ours() && !options.force {
        // The record is the only root that leads gc back to it.
        done.push(format!(
            "kept the record and {} until the database is gone",
            record.ports_text()
        ));
        return Ok(done);
    }
    if let Some(guard) = guard.filter(|_| !options.dry_run) {
        forget(&workspace.registry, guard, record)?;
    }
    done.push(format!(
        "{} {}",
        options.did("freed", "free"),
        record.ports_text()
    ));
    Ok(done)
}

/// Deletes `branch` when it is merged into the main checkout's, unless
/// asked to keep it; says which in `done`, and returns whether it went.
fn branch_fate(
    workspace: &Workspace,
    branch: &str,
    options: Options,
    done: &mut Vec<String>,
) -> Result<bool, BoxError> {
    let main = &workspace.checkout.main;
    let (target, oid) = git::default_branch(main)?;
    // Gone already (deleted by hand, say): nothing left to decide. A
    // repository or branch that cannot be read is an error, not "gone": the
    // branch would stay while the record that leads back to it went.
    let repo = git2::Repository::open(main)?;
    match repo.find_branch(branch, git2::BranchType::Local) {
        Ok(_) => {}
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    if options.keep_branch {
        done.push(format!("kept branch {branch} (--keep-branch)"));
        return Ok(false);
    }
    if !git::is_merged(main, branch, oid)? {
        done.push(format!(
            "kept branch {branch}: it is not merged into {target}"
        ));
        return Ok(false);
    }
    if !options.dry_run {
        git::branch_delete(main, branch)?;
    }
    done.push(format!(
        "{} branch {branch} (merged into {target})",
        options.did("deleted", "delete")
    ));
    Ok(true)
}
