//! Brings a worktree's sandbox to its plan: observe, read each part's
//! state as the actions that close the gap (`decide`), refuse anything that
//! would lose a user's data, then act (`execute`). Idempotent: on a healthy
//! sandbox the list is empty and nothing is written. The lock is written
//! last, so it never claims more than is true.

mod decide;
use decide::DatabaseActions;
pub use decide::Rebuild;
mod execute;
mod start;
#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::BoxError;
use crate::db::aside::{self, Aside};
use crate::db::migrations::{Applied, Migrations, ScanError};
use crate::db::store;
use crate::db::{Database, DbError};
use crate::git;
use crate::output::Progress;
use crate::recipe::config::DatabaseKind;
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
    /// Everything else is brought up to date; the database is left.
    #[error("database {name} {message}")]
    Diverged { name: String, message: String },
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
        /// The store's entry it is made from (a copy of a migrated state).
        #[serde(skip_serializing_if = "Option::is_none")]
        from_store: Option<String>,
        /// The migrations that entry has applied.
        #[serde(skip)]
        cached: Vec<String>,
        /// `[database] seed`: the seed's identity (a hash of its contents),
        /// where the database starts as its copy.
        #[serde(skip_serializing_if = "Option::is_none")]
        seed: Option<String>,
    },
    /// The database, just migrated, copied into the store as `entry`.
    Store {
        entry: String,
    },
    /// The database moved to the name `aside` (kept until the next `gc`),
    /// to be built anew.
    SetAside {
        name: String,
        aside: String,
    },
    /// `db reset --discard`: the database dropped, to be built anew.
    DropDatabase {
        name: String,
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
            Action::CreateDatabase {
                name,
                location,
                from_store,
                cached,
                seed,
            } => {
                write!(f, "create    database {name} at {location}")?;
                if seed.is_some() {
                    write!(f, " from the seed")?;
                }
                match from_store {
                    Some(_) => write!(f, " from the store ({} migration(s) cached)", cached.len()),
                    None => Ok(()),
                }
            }
            Action::Store { entry } => write!(f, "store     the migrated database as {entry}"),
            Action::SetAside { name, aside } => write!(
                f,
                "set aside database {name} as {aside} (kept until the next `provision gc`)"
            ),
            Action::DropDatabase { name } => write!(f, "drop      database {name}"),
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
    /// The database a rebuild set aside, and how to go back to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<SetAside>,
    pub lock: String,
    /// What the lock holds (the one just written, unless a dry run):
    /// `new`'s report comes from it, not from reading the file back.
    #[serde(skip)]
    pub sandbox: lock::Sandbox,
}

#[derive(Debug, Serialize)]
pub struct SetAside {
    pub database: String,
    pub location: String,
    /// Until then it is kept.
    pub until: &'static str,
    /// What brings it back in place of the rebuilt one.
    pub restore: String,
}

/// What `apply` is asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Say what would be done, and do nothing.
    pub dry_run: bool,
    /// `provision db reset`: build the database anew even where it has
    /// not diverged, setting the old one aside.
    pub reset: bool,
    /// With `reset`: drop the old one instead (the command kind's only way).
    pub discard: bool,
}

pub fn apply(
    ctx: &WorktreeSandbox,
    options: Options,
    progress: &Progress,
) -> Result<Outcome, BoxError> {
    let dry_run = options.dry_run;
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
    let tag = ctx.clone.tag();
    let previous = match lock::read(root, tag) {
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
    let settings = &ctx.settings.database;
    let now = aside::now();
    // Never on its own in the main checkout: its database is the user's.
    let rebuilds = !settings.on_divergence.is_refuse() && !ctx.checkout.is_main();
    let aside = (options.reset || rebuilds).then(|| Aside {
        database: aside::name(database.name(), now),
        from: database.name().to_string(),
        kind: database.kind(),
        sandbox: ctx.name.clone(),
        id: ctx.checkout.id.clone(),
        path: root.clone(),
        at: now,
    });
    if options.reset && !options.discard && database.kind() == DatabaseKind::Command {
        return Err(DbError::NoAside(database.kind().as_str()).into());
    }
    let rebuild = match &aside {
        _ if options.discard => Rebuild::Discard,
        None => Rebuild::Leave,
        Some(aside) => Rebuild::SetAside(&aside.database),
    };
    let (db, seen) = database_actions(
        &plan,
        database.as_mut(),
        &migrations,
        &known,
        options.reset,
        rebuild,
    )?;
    actions.extend(db.actions);
    let store_mark = ctx.mark(store::STORE_ID).text();
    let starts = start::Starts {
        ctx,
        wanted: &plan.sandbox.database.migrations,
        files: &migrations,
        known: &known,
        store_mark: &store_mark,
        progress,
    };
    let seed = starts.plan(database.as_mut(), &mut actions)?;
    // Left as it is, the database is locked as it is: the lock never
    // claims migrations the database does not have.
    let diverged = db.left.then(|| ApplyError::Diverged {
        name: database.name().to_string(),
        message: state::diverged_message(&db.diverged, ctx.checkout.is_main()),
    });
    if !db.left && !db.diverged.is_empty() {
        let note = format!(
            "database {} no longer matched this branch's migrations ({}): it is rebuilt",
            database.name(),
            state::divergence_words(&db.diverged)
        );
        progress.warn(&note);
        plan.notes.push(note);
    }
    if diverged.is_some() {
        plan.sandbox.database.migrations = seen.applied(&known);
        plan.sandbox.database.chain =
            crate::db::migrations::chain(&plan.sandbox.database.migrations);
    }
    if let (Some(diverged), true) = (&diverged, dry_run) {
        progress.warn(&diverged.to_string());
        plan.notes.push(diverged.to_string());
    }
    let desired = &plan.sandbox;
    let locked_setup = locked.map(|l| l.setup.as_slice()).unwrap_or_default();
    actions.extend(decide::setup(&desired.setup, locked_setup));
    let on_disk = lock::symbolic(desired, tag);
    let rendered = lock::render(&on_disk);
    let lock_hash = lock::hash_of(&on_disk);
    if previous.as_ref().is_none_or(|p| p.text != rendered) {
        actions.push(Action::WriteLock {
            hash: lock_hash.clone(),
        });
    }

    if !dry_run {
        database.remark()?;
        let run = execute::Execution {
            root,
            main: &ctx.checkout.main,
            desired: &on_disk,
            setup: Runner::new(root, &plan, &ctx.settings.lines.setup),
            env_text: plan.env_text.as_deref(),
            lock_text: &rendered,
            database: database.as_mut(),
            aside: aside.as_ref(),
            common_dir: &ctx.checkout.common_dir,
            store_mark,
            seed,
            migrations: &migrations,
            known: &known,
            progress,
        };
        execute::all(ctx, run, &actions, &lock_hash)?;
        start::refill_spare(ctx, database.kind(), &actions);
        if let Some(diverged) = diverged {
            return Err(diverged.into());
        }
    }
    let set_aside = aside
        .filter(|_| actions.iter().any(|a| matches!(a, Action::SetAside { .. })))
        .map(|aside| SetAside {
            location: crate::db::location(aside.kind, &aside.database),
            until: "the next `provision gc`",
            restore: aside::restore_hint(&ctx.checkout.common_dir, &aside),
            database: aside.database,
        });
    Ok(Outcome {
        worktree: ctx.name.clone(),
        path: root.display().to_string(),
        dry_run,
        actions,
        notes: plan.notes,
        shadowed: plan.shadowed,
        set_aside,
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
        let seen = observe::look_env(env, root, main, ctx.clone.tag());
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
            observe::look_env(old, root, main, ctx.clone.tag()).file,
            observe::EnvFound::Text { hash, ours: true, .. } if hash == old.content
        )
    {
        actions.push(Action::RemoveEnv {
            file: old.file.clone(),
        });
    }
    Ok(actions)
}

/// The database: looked at only now, after the worktree's refusals; and
/// what was seen of it.
fn database_actions(
    plan: &Plan,
    database: &mut dyn Database,
    files: &Migrations,
    known: &[Applied],
    reset: bool,
    rebuild: Rebuild,
) -> Result<(DatabaseActions, DatabaseSeen), BoxError> {
    let seen = DatabaseSeen::look_if_ours(database)?;
    let wanted = &plan.sandbox.database.migrations;
    let state = state::database(files.format, wanted, files, known, &seen);
    let all: Vec<String> = wanted.iter().map(|m| m.name.clone()).collect();
    let name = database.name();
    let actions = decide::database(&state, name, database.location(), &all, reset, rebuild)?;
    Ok((actions, seen))
}
