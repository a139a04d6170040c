//! Brings a worktree's sandbox to its plan: observe, list the actions that
//! close the gap, refuse anything that would lose a user's data, then act.
//! Idempotent: on a healthy sandbox the list is empty and nothing is written.
//! The lock is written last, so it never claims more than is true.

use std::path::Path;

use serde::Serialize;

use crate::BoxError;
use crate::db::Database;
use crate::db::migrations::{Applied, Migration};
use crate::fsutil;
use crate::git;
use crate::output::Progress;
use crate::sandbox::copy;
use crate::sandbox::envfile;
use crate::sandbox::lock::{self, Link, LinkKind, LinkMode, Sandbox};
use crate::sandbox::observe;
use crate::sandbox::setup::{self, Runner};
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
    pub lock: String,
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
        Some(ctx.registry.lock_sandbox(&ctx.checkout.id)?)
    };
    let migrations = ctx.migrations()?;
    let plan = ctx.plan(&migrations)?;
    // A lock that fails its own hash was edited, one that does not parse is
    // broken: nothing in either is trusted, and the new lock replaces it. A
    // newer provision's lock is kept: this one cannot know what it records.
    let previous = match lock::read(root) {
        Err(err @ lock::LockError::Newer(_)) => return Err(err.into()),
        read => read.ok().flatten().filter(|read| read.hash_ok),
    };
    let mut database = ctx.database()?;
    let desired = &plan.sandbox;
    for note in &plan.notes {
        progress.warn(note);
    }

    let mut actions = Vec::new();
    link_actions(
        desired,
        previous.as_ref().map(|p| &p.sandbox),
        root,
        &ctx.checkout.main,
        &mut actions,
    )?;
    let env_text = plan.env_text.as_deref();
    if let (Some(env), Some(text)) = (&desired.env, env_text) {
        env_action(&env.file, text, root, &mut actions)?;
    }
    let known = known_checksums(previous.as_ref().map(|p| &p.sandbox), &migrations);
    database_actions(
        database.as_mut(),
        &migrations,
        &known,
        &ctx.settings.database.migrations,
        &mut actions,
    )?;
    let previous_setup = previous.as_ref().map(|p| p.sandbox.setup.as_slice());
    let first = setup::first_pending(&desired.setup, previous_setup.unwrap_or_default());
    for (index, hook) in desired.setup.iter().enumerate().skip(first) {
        actions.push(Action::Setup {
            run: hook.run.clone(),
            index,
        });
    }
    let rendered = lock::render(desired);
    let lock_hash = lock::hash_of(desired);
    if previous.as_ref().is_none_or(|p| p.text != rendered) {
        actions.push(Action::WriteLock {
            hash: lock_hash.clone(),
        });
    }

    if !dry_run {
        keep_out_of_git_status(ctx, desired)?;
        let mut run = Execution {
            root,
            main: &ctx.checkout.main,
            desired,
            setup: Runner::new(root, &plan, &ctx.settings.lines.setup),
            env_text,
            lock_text: &rendered,
            database: database.as_mut(),
            migrations: &migrations,
            known: &known,
            progress,
        };
        for action in &actions {
            run.execute(action)?;
        }
        let guard = ctx.registry.lock()?;
        if let Some(mut record) = ctx.registry.get(&ctx.checkout.id)?
            && (record.lock_hash.as_deref() != Some(lock_hash.as_str())
                || record.branch != ctx.checkout.branch)
        {
            record.lock_hash = Some(lock_hash.clone());
            record.branch = ctx.checkout.branch.clone();
            ctx.registry.put(&guard, &record)?;
        }
    }
    Ok(Outcome {
        worktree: ctx.name.clone(),
        path: root.display().to_string(),
        dry_run,
        actions,
        notes: plan.notes,
        lock: lock_hash,
    })
}

fn link_actions(
    desired: &Sandbox,
    previous: Option<&Sandbox>,
    root: &Path,
    main: &Path,
    actions: &mut Vec<Action>,
) -> Result<(), ApplyError> {
    let was_copy = |path: &str| {
        previous.is_some_and(|p| {
            p.links
                .iter()
                .any(|l| l.path == path && !l.mode.is_symlink())
        })
    };
    // Links an earlier recipe made that this one no longer wants go first:
    // a new path may lie inside an old folder link. A copy is the
    // worktree's own and stays.
    for old in previous.map(|p| p.links.as_slice()).unwrap_or_default() {
        if !old.mode.is_symlink()
            || desired.links.iter().any(|l| l.path == old.path)
            || fsutil::blocked_parent(root, Path::new(&old.path)).is_some()
        {
            continue;
        }
        let observed = observe::observe_link(old, root, main);
        if observed.target == old.target && observed.kind != LinkKind::Missing {
            actions.push(Action::Unlink {
                path: old.path.clone(),
            });
        }
    }
    for link in desired.links.iter().filter(|l| l.kind != LinkKind::Absent) {
        let doing = if link.mode.is_symlink() {
            "linked"
        } else {
            "copied"
        };
        let observed = if under_old_link(root, &link.path, doing, actions)? {
            Link {
                kind: LinkKind::Missing,
                ..link.clone()
            }
        } else {
            observe::observe_link(link, root, main)
        };
        let what = || {
            if root.join(&link.path).is_dir() {
                "folder"
            } else {
                "file"
            }
        };
        if !link.mode.is_symlink() {
            match observed.kind {
                // A symlink (provision's, or anyone's) holds no data.
                _ if observed.mode.is_symlink() => {}
                LinkKind::Missing => {}
                // The worktree's own copy, as the lock says: its contents
                // are its own. A real file the lock does not record as a
                // copy is someone's work, never adopted (`remove` would
                // take it along).
                kind if kind == link.kind && was_copy(&link.path) => continue,
                _ => {
                    return Err(ApplyError::CopyKind {
                        path: link.path.clone(),
                        what: what(),
                        wanted: if link.kind == LinkKind::Dir {
                            "folder"
                        } else {
                            "file"
                        },
                    });
                }
            }
            actions.push(Action::Copy {
                path: link.path.clone(),
                mode: link.mode,
            });
            continue;
        }
        match observed.kind {
            LinkKind::NotALink if was_copy(&link.path) => {
                return Err(ApplyError::OwnCopy {
                    path: link.path.clone(),
                });
            }
            LinkKind::NotALink => {
                return Err(ApplyError::Occupied {
                    path: link.path.clone(),
                    what: what(),
                });
            }
            _ if observed.target == link.target && observed.kind == link.kind => {}
            _ => actions.push(Action::Link {
                path: link.path.clone(),
                target: link_text(root, main, &link.path),
            }),
        }
    }
    Ok(())
}

/// Refuses a path whose folder in the worktree is a file (tracked on this
/// branch) or a symlink, which would carry a write or delete out of the
/// worktree (into the main checkout), unless that symlink is an old link
/// `actions` removes first: then the path is free (`true`).
fn under_old_link(
    root: &Path,
    path: &str,
    doing: &'static str,
    actions: &[Action],
) -> Result<bool, ApplyError> {
    let Some((parent, what)) = fsutil::blocked_parent(root, Path::new(path)) else {
        return Ok(false);
    };
    let unlinked = |a: &Action| matches!(a, Action::Unlink { path } if Path::new(path) == parent);
    if what == "symlink" && actions.iter().any(unlinked) {
        return Ok(true);
    }
    Err(ApplyError::Blocked {
        path: path.to_string(),
        doing,
        parent: parent.display().to_string(),
        what,
    })
}

/// Checked again right before each write or delete.
fn not_blocked(root: &Path, path: &str, doing: &'static str) -> Result<(), ApplyError> {
    under_old_link(root, path, doing, &[]).map(|_| ())
}

/// The relative text of a link from `root/path` to `main/path`.
fn link_text(root: &Path, main: &Path, path: &str) -> String {
    let at = root.join(path);
    fsutil::relative_path(at.parent().unwrap_or(root), &main.join(path))
        .display()
        .to_string()
}

fn env_action(
    file: &str,
    text: &str,
    root: &Path,
    actions: &mut Vec<Action>,
) -> Result<(), ApplyError> {
    let path = root.join(file);
    let reason = match fs_err::symlink_metadata(&path) {
        // An old folder link on the way is removed first.
        _ if under_old_link(root, file, "written", actions)? => EnvReason::New,
        Err(_) => EnvReason::New,
        Ok(meta) if meta.file_type().is_symlink() => EnvReason::ReplacesSymlink,
        Ok(_) => match fs_err::read_to_string(&path) {
            Ok(current) if current == text => return Ok(()),
            Ok(current) if envfile::is_ours(&current) => EnvReason::OutOfDate,
            _ => {
                return Err(ApplyError::ForeignEnvFile {
                    file: file.to_string(),
                });
            }
        },
    };
    actions.push(Action::WriteEnv {
        file: file.to_string(),
        reason,
    });
    Ok(())
}

/// The checksum each migration was applied with, as best known: the lock's
/// record, else the file.
fn known_checksums(previous: Option<&Sandbox>, files: &[Migration]) -> Vec<Applied> {
    let locked = previous
        .map(|p| p.database.migrations.as_slice())
        .unwrap_or_default();
    files
        .iter()
        .map(|f| {
            locked
                .iter()
                .find(|l| l.name == f.name)
                .cloned()
                .unwrap_or_else(|| f.record())
        })
        .collect()
}

fn database_actions(
    database: &mut dyn Database,
    files: &[Migration],
    known: &[Applied],
    dir: &str,
    actions: &mut Vec<Action>,
) -> Result<(), BoxError> {
    let mut applied: Vec<Applied> = Vec::new();
    if !database.exists()? {
        actions.push(Action::CreateDatabase {
            name: database.name().into(),
            location: database.location(),
        });
    } else {
        if !database.is_marked()? {
            return Err(crate::db::DbError::Unmarked {
                name: database.name().into(),
                location: database.location(),
            }
            .into());
        }
        let ledger = database.ledger()?;
        let partial: Vec<String> = ledger
            .rows
            .iter()
            .filter(|r| r.missing_from.is_some() && known.iter().any(|k| k.name == r.name))
            .map(|r| r.name.clone())
            .collect();
        if !partial.is_empty() {
            actions.push(Action::RepairLedger { rows: partial });
        }
        for row in &ledger.rows {
            let Some(file) = files.iter().find(|f| f.name == row.name) else {
                return Err(ApplyError::FileMissing {
                    name: row.name.clone(),
                    dir: dir.into(),
                }
                .into());
            };
            let recorded = row
                .checksum
                .clone()
                .or_else(|| {
                    known
                        .iter()
                        .find(|k| k.name == row.name)
                        .map(|k| k.checksum.clone())
                })
                .unwrap_or_default();
            if recorded != file.checksum {
                return Err(ApplyError::Edited {
                    name: row.name.clone(),
                    recorded,
                    current: file.checksum.clone(),
                }
                .into());
            }
            applied.push(file.record());
        }
    }
    let last_applied = applied.iter().map(|a| a.name.as_str()).max();
    let mut pending = Vec::new();
    for file in files
        .iter()
        .filter(|f| !applied.iter().any(|a| a.name == f.name))
    {
        if let Some(last) = last_applied.filter(|last| file.name.as_str() < *last) {
            return Err(ApplyError::OutOfOrder {
                pending: file.name.clone(),
                applied: last.to_string(),
            }
            .into());
        }
        pending.push(file.name.clone());
    }
    if !pending.is_empty() {
        actions.push(Action::Migrate { names: pending });
    }
    Ok(())
}

/// What carrying out the actions needs.
struct Execution<'a> {
    root: &'a Path,
    main: &'a Path,
    desired: &'a Sandbox,
    setup: Runner,
    env_text: Option<&'a str>,
    lock_text: &'a str,
    database: &'a mut dyn Database,
    migrations: &'a [Migration],
    known: &'a [Applied],
    progress: &'a Progress,
}

impl Execution<'_> {
    fn execute(&mut self, action: &Action) -> Result<(), BoxError> {
        let root = self.root;
        if !matches!(action, Action::Migrate { .. }) {
            self.progress.step(&action.to_string());
        }
        match action {
            Action::Link { path, target } => {
                not_blocked(root, path, "linked")?;
                let at = root.join(path);
                if let Some(parent) = at.parent() {
                    fs_err::create_dir_all(parent)?;
                }
                if fs_err::symlink_metadata(&at).is_ok() {
                    fs_err::remove_file(&at)?;
                }
                fs_err::os::unix::fs::symlink(target, &at)?;
            }
            Action::Unlink { path } => {
                not_blocked(root, path, "unlinked")?;
                fs_err::remove_file(root.join(path))?
            }
            Action::Copy { path, mode } => {
                not_blocked(root, path, "copied")?;
                let at = root.join(path);
                // Only a symlink is ever in the way (link_actions refuses
                // anything else): the link goes, the data it points to stays.
                if fs_err::symlink_metadata(&at).is_ok() {
                    fs_err::remove_file(&at)?;
                }
                copy::copy(self.main, root, path, *mode == LinkMode::Reflink)?;
            }
            Action::Setup { run, index } => {
                if let Err(err) = self.setup.run(*index, run, self.progress) {
                    // What did complete is recorded, so the next `apply`
                    // starts at this command.
                    let mut partial = self.desired.clone();
                    for hook in &mut partial.setup[*index..] {
                        hook.completed = false;
                    }
                    let text = lock::render(&partial);
                    fsutil::write_atomically(&root.join(lock::FILE_NAME), text.as_bytes())?;
                    return Err(err.into());
                }
            }
            Action::WriteEnv { file, reason } => {
                not_blocked(root, file, "written")?;
                let at = root.join(file);
                if *reason == EnvReason::ReplacesSymlink {
                    // Remove the link itself; writing through it would change
                    // the main checkout's file.
                    fs_err::remove_file(&at)?;
                }
                let text = self.env_text.expect("an env action has text");
                fsutil::write_atomically(&at, text.as_bytes())?;
            }
            Action::CreateDatabase { .. } => self.database.create()?,
            Action::RepairLedger { .. } => self.database.repair(self.known)?,
            Action::Migrate { names } => {
                let pending: Vec<&Migration> = names
                    .iter()
                    .filter_map(|name| self.migrations.iter().find(|f| &f.name == name))
                    .collect();
                let progress = self.progress;
                self.database.migrate_all(&pending, &mut |m| {
                    progress.step(&format!("migrate   {}", m.name))
                })?;
            }
            Action::WriteLock { .. } => {
                fsutil::write_atomically(&root.join(lock::FILE_NAME), self.lock_text.as_bytes())?
            }
        }
        Ok(())
    }
}

/// Adds the lock, the env file and every link path to the shared exclude
/// list, under the registry lock because every worktree shares that file.
fn keep_out_of_git_status(ctx: &WorktreeSandbox, desired: &Sandbox) -> Result<(), BoxError> {
    let mut paths = vec![lock::FILE_NAME.to_string()];
    paths.extend(desired.env.iter().map(|e| e.file.clone()));
    paths.extend(desired.links.iter().map(|l| l.path.clone()));
    let _guard = ctx.registry.lock()?;
    git::exclude_paths(&ctx.checkout.common_dir, &paths)?;
    Ok(())
}
