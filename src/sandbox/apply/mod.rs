//! Brings a worktree's sandbox to its plan: observe, read each part's
//! state as the actions that close the gap (`decide`), refuse anything that
//! would lose a user's data, then act (`execute`). Idempotent: on a healthy
//! sandbox the list is empty and nothing is written. The lock is written
//! last, so it never claims more than is true.

mod decide;
mod execute;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::BoxError;
use crate::db::Database;
use crate::db::migrations::{Applied, Migrations, ScanError};
use crate::git;
use crate::output::Progress;
use crate::sandbox::lock::{self, Link, LinkMode};
use crate::sandbox::observe::{self, DatabaseSeen};
use crate::sandbox::plan::Plan;
use crate::sandbox::setup::Runner;
use crate::sandbox::state::{self, LinkChange};
use crate::workspace::WorktreeSandbox;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "{path} is a real {what} where the link to the main checkout belongs; provision will not replace it: move it away and run `provision apply`"
    )]
    Occupied { path: String, what: &'static str },
    #[error(
        "{path} is this worktree's own copy, and the recipe now links it; provision will not delete a copy that may hold changes: remove it and run `provision apply`"
    )]
    OwnCopy { path: String },
    #[error(
        "{path} is a real {what} where a copy of the main checkout's {wanted} belongs; provision will not replace it: move it away and run `provision apply`"
    )]
    CopyKind {
        path: String,
        what: &'static str,
        wanted: &'static str,
    },
    #[error(
        "{path} cannot be {doing}: {parent} in this worktree is a {what}; provision will not write through or replace it"
    )]
    Blocked {
        path: String,
        doing: &'static str,
        parent: String,
        what: &'static str,
    },
    #[error(
        "{file} exists and was not written by provision; provision will not overwrite it: move it away or set `[env] file` in provision.toml"
    )]
    ForeignEnvFile { file: String },
    #[error(
        "{path} changed while apply ran: a real file or folder is there now; provision leaves it: move it away and run `provision apply`"
    )]
    Changed { path: String },
    #[error(
        "migration {name} was changed after it was applied (applied {recorded}, file now {current}); restore the file and add the change as a new migration"
    )]
    Edited {
        name: String,
        recorded: String,
        current: String,
    },
    #[error("migration {name} is applied in the database but its file is missing from {dir}/")]
    FileMissing { name: String, dir: String },
    #[error(
        "migration {pending} sorts before the already applied {applied}; rename it so it sorts last"
    )]
    OutOfOrder { pending: String, applied: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvReason {
    New,
    OutOfDate,
    /// A symlink sits where the real file belongs (the `.dev.vars` trap).
    ReplacesSymlink,
}

/// One step towards the plan.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Link {
        path: String,
        target: String,
    },
    Unlink {
        path: String,
    },
    /// The env file an earlier recipe named, as provision wrote it: the
    /// overrides moved to another file.
    RemoveEnv {
        file: String,
    },
    /// A copy (or reflink) of the main checkout's file or folder, made
    /// where nothing is, or in place of a symlink.
    Copy {
        path: String,
        mode: LinkMode,
    },
    WriteEnv {
        file: String,
        reason: EnvReason,
    },
    CreateDatabase {
        name: String,
        location: String,
    },
    RepairLedger {
        rows: Vec<String>,
    },
    /// All pending migrations, applied in order in one go (some tools apply
    /// a whole folder in one run).
    Migrate {
        names: Vec<String>,
    },
    /// A `[[setup]]` command; `index` is its place in the recipe's list.
    Setup {
        run: String,
        #[serde(skip)]
        index: usize,
    },
    WriteLock {
        hash: String,
    },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Link { path, target } => write!(f, "link      {path} -> {target}"),
            Action::Unlink { path } => write!(f, "unlink    {path}"),
            Action::RemoveEnv { file } => write!(f, "remove    {file} (the overrides moved)"),
            Action::Copy { path, mode } => {
                write!(f, "{:<9} {path} <- {{main}}/{path}", mode.as_str())
            }
            Action::Setup { run, .. } => write!(f, "setup     {run}"),
            Action::WriteEnv { file, reason } => {
                let why = match reason {
                    EnvReason::New => "new",
                    EnvReason::OutOfDate => "out of date",
                    EnvReason::ReplacesSymlink => "a real file replaces the symlink",
                };
                write!(f, "write     {file} ({why})")
            }
            Action::CreateDatabase { name, location } => {
                write!(f, "create    database {name} at {location}")
            }
            Action::RepairLedger { rows } => write!(f, "repair    ledger rows {}", rows.join(", ")),
            Action::Migrate { names } => write!(f, "migrate   {}", names.join(", ")),
            Action::WriteLock { hash } => write!(f, "lock      {} {hash}", lock::FILE_NAME),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub worktree: String,
    pub path: String,
    pub dry_run: bool,
    pub actions: Vec<Action>,
    pub notes: Vec<String>,
    /// Linked dotenv files that set a key the overrides set (`new` says so).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadowed: Vec<String>,
    pub lock: String,
    /// What the lock holds (the one just written, unless a dry run):
    /// `new`'s report comes from it, not from reading the file back.
    #[serde(skip)]
    pub sandbox: lock::Sandbox,
}

pub fn apply(
    ctx: &WorktreeSandbox,
    dry_run: bool,
    progress: &Progress,
) -> Result<Outcome, BoxError> {
    let root = &ctx.checkout.root;
    let _turn = if dry_run {
        None
    } else {
        Some(take_turn(ctx, progress)?)
    };
    let migrations = ctx.migrations()?;
    let dir = &ctx.settings.database.migrations;
    if migrations.missing && ctx.settings.database.migrations_set {
        return Err(ScanError::Missing { dir: dir.clone() }.into());
    }
    let mut plan = ctx.plan(&migrations)?;
    plan.notes.extend(migrations.note(dir));
    // A lock that fails its own hash was edited, one that does not parse is
    // broken: nothing in either is trusted, and the new lock replaces it. A
    // newer provision's lock is kept: this one cannot know what it records.
    let previous = match lock::read(root) {
        Err(err @ lock::LockError::Newer(_)) => return Err(err.into()),
        Err(err) => {
            progress.warn(&format!(
                "{err}; nothing in it is used, and apply writes it anew"
            ));
            None
        }
        read => read.ok().flatten().filter(|read| read.hash_ok),
    };
    let mut database = ctx.database()?;
    database.tool_ledger(migrations.format, &migrations);
    for note in &plan.notes {
        progress.warn(note);
    }
    let locked = previous.as_ref().map(|p| &p.sandbox);
    let known = state::known_checksums(locked, &migrations);
    let mut actions = worktree_actions(ctx, &plan, locked)?;
    actions.extend(database_actions(
        ctx,
        &plan,
        database.as_mut(),
        &migrations,
        &known,
    )?);
    let desired = &plan.sandbox;
    let locked_setup = locked.map(|l| l.setup.as_slice()).unwrap_or_default();
    actions.extend(decide::setup(&desired.setup, locked_setup));
    let rendered = lock::render(desired);
    let lock_hash = lock::hash_of(desired);
    if previous.as_ref().is_none_or(|p| p.text != rendered) {
        actions.push(Action::WriteLock {
            hash: lock_hash.clone(),
        });
    }

    if !dry_run {
        let run = execute::Execution {
            root,
            main: &ctx.checkout.main,
            desired,
            setup: Runner::new(root, &plan, &ctx.settings.lines.setup),
            env_text: plan.env_text.as_deref(),
            lock_text: &rendered,
            database: database.as_mut(),
            migrations: &migrations,
            known: &known,
            progress,
        };
        execute::all(ctx, run, &actions, &lock_hash)?;
    }
    Ok(Outcome {
        worktree: ctx.name.clone(),
        path: root.display().to_string(),
        dry_run,
        actions,
        notes: plan.notes,
        shadowed: plan.shadowed,
        lock: lock_hash,
        sandbox: plan.sandbox,
    })
}

/// The sandbox's lock. Another `apply` here (a long migration, say) goes
/// first: said, rather than waited for without a word.
fn take_turn(
    ctx: &WorktreeSandbox,
    progress: &Progress,
) -> Result<crate::lifecycle::registry::Guard, BoxError> {
    if let Some(turn) = ctx.registry.try_lock_sandbox(&ctx.checkout.id)? {
        return Ok(turn);
    }
    progress.warn(&format!(
        "waiting for another provision that is applying sandbox {} (a long migration?)",
        ctx.name
    ));
    Ok(ctx.registry.lock_sandbox(&ctx.checkout.id)?)
}

/// The links and the env file: looked at, then decided.
fn worktree_actions<'a>(
    ctx: &WorktreeSandbox,
    plan: &'a Plan,
    locked: Option<&'a lock::Sandbox>,
) -> Result<Vec<Action>, ApplyError> {
    let (root, main) = (ctx.checkout.root.as_path(), ctx.checkout.main.as_path());
    let desired = &plan.sandbox;
    let old = locked.map(|l| l.links.as_slice()).unwrap_or_default();
    let spot = |link: &'a Link| (link, observe::spot(&link.path, root, main));
    let wanted: Vec<_> = desired.links.iter().map(spot).collect();
    // Only provision's own links go: a path git tracks on this branch (a
    // lock read back may name one) is the branch's file, never unlinked.
    let repo = ctx.checkout.open().ok();
    let head = repo.as_ref().and_then(|r| git::head_tree(r).ok().flatten());
    let dropped: Vec<_> = state::link_changes(&desired.links, old)
        .into_iter()
        .filter(|(link, change)| {
            *change == LinkChange::Dropped && !git::committed(head.as_ref(), &link.path)
        })
        .map(|(link, _)| spot(link))
        .collect();
    let copies: Vec<&str> = old
        .iter()
        .filter(|l| !l.mode.is_symlink())
        .map(|l| l.path.as_str())
        .collect();
    let mut actions = decide::links(&wanted, &dropped, &copies, root, main)?;
    if let Some(env) = &desired.env {
        let seen = observe::look_env(env, root, main);
        let blocker = observe::blocker(root, &env.file);
        actions.extend(decide::env(env, &seen, blocker.as_ref(), &actions)?);
    }
    // The old env file goes only as provision left it: a file edited since
    // is someone's, and stays.
    if let Some(old) = locked.and_then(|l| l.env.as_ref())
        && desired.env.as_ref().is_none_or(|e| e.file != old.file)
        && !desired.links.iter().any(|l| l.path == old.file)
        && observe::blocker(root, &old.file).is_none()
        && matches!(
            observe::look_env(old, root, main).file,
            observe::EnvFound::Text { hash, ours: true, .. } if hash == old.content
        )
    {
        actions.push(Action::RemoveEnv {
            file: old.file.clone(),
        });
    }
    Ok(actions)
}

/// The database: looked at only now, after the worktree's refusals.
fn database_actions(
    ctx: &WorktreeSandbox,
    plan: &Plan,
    database: &mut dyn Database,
    files: &Migrations,
    known: &[Applied],
) -> Result<Vec<Action>, BoxError> {
    let seen = DatabaseSeen::look_if_ours(database)?;
    let wanted = &plan.sandbox.database.migrations;
    let state = state::database(files.format, wanted, files, known, &seen);
    let dir = &ctx.settings.database.migrations;
    decide::database(&state, database.name(), database.location(), dir)
}
