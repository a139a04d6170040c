//! Apply's reading of each state: the action that brings it to the plan,
//! nothing, or the refusal that keeps a user's data. Pure: what is there was
//! looked at before (`observe`), and the first refusal, in the order the
//! parts are decided, is the one reported.

use std::path::{Path, PathBuf};

use crate::BoxError;
use crate::db::DbError;
use crate::fsutil;
use crate::sandbox::lock::{EnvLock, Hook, Link, LinkKind};
use crate::sandbox::observe::{EnvSeen, Spot};
use crate::sandbox::state::{
    self, DatabaseState, Divergence, EnvFileState, Ledger, LinkState, MigrationFile, Presence,
    Step, kind_word,
};

use super::{Action, ApplyError, EnvReason};

/// Links an earlier recipe made that this one no longer wants go first (a
/// new path may lie inside an old folder link), then the plan's links.
/// `dropped` are the lock's links the plan no longer has; `copies` the
/// paths the lock records as the worktree's own copies.
pub fn links(
    wanted: &[(&Link, Spot)],
    dropped: &[(&Link, Spot)],
    copies: &[&str],
    root: &Path,
    main: &Path,
) -> Result<Vec<Action>, ApplyError> {
    let mut actions = Vec::new();
    for (old, spot) in dropped {
        // A copy is the worktree's own and stays.
        if !old.mode.is_symlink() || spot.blocker.is_some() {
            continue;
        }
        // Only the link provision made, still pointing where it did.
        let made = match state::link(old, &spot.found, false) {
            LinkState::InPlace | LinkState::KindChanged { .. } => true,
            LinkState::Dangling { target } => target == old.target,
            _ => false,
        };
        if made {
            actions.push(Action::Unlink {
                path: old.path.clone(),
            });
        }
    }
    // An absent link has nothing in the main checkout to link to.
    for (link, spot) in wanted.iter().filter(|(l, _)| l.kind != LinkKind::Absent) {
        let doing = if link.mode.is_symlink() {
            "linked"
        } else {
            "copied"
        };
        let state = if under_old_link(&link.path, spot.blocker.as_ref(), doing, &actions)? {
            LinkState::Missing
        } else {
            state::link(link, &spot.found, copies.contains(&link.path.as_str()))
        };
        actions.extend(link_action(link, state, root, main)?);
    }
    Ok(actions)
}

fn link_action(
    link: &Link,
    state: LinkState,
    root: &Path,
    main: &Path,
) -> Result<Option<Action>, ApplyError> {
    let path = link.path.clone();
    match state {
        LinkState::InPlace => Ok(None),
        LinkState::Occupied { own_copy: true, .. } => Err(ApplyError::OwnCopy { path }),
        LinkState::Occupied { have, .. } => Err(ApplyError::Occupied {
            path,
            what: kind_word(have),
        }),
        // The worktree's own copy, as the lock says, is never replaced; a
        // real file the lock does not record as a copy is someone's work,
        // never adopted (`remove` would take it along).
        LinkState::NotOurCopy { have, wanted } => Err(ApplyError::CopyKind {
            path,
            what: kind_word(have),
            wanted: kind_word(wanted),
        }),
        _ if link.mode.is_symlink() => Ok(Some(Action::Link {
            target: link_text(root, main, &path),
            path,
        })),
        // Nothing, or a symlink, which holds no data, is where the copy goes.
        _ => Ok(Some(Action::Copy {
            path,
            mode: link.mode,
        })),
    }
}

/// Refuses a path whose folder in the worktree (`blocker`) is a file
/// (tracked on this branch) or a symlink, which would carry a write or
/// delete out of the worktree (into the main checkout), unless that symlink
/// is an old link `actions` removes first: then the path is free (`true`).
pub fn under_old_link(
    path: &str,
    blocker: Option<&(PathBuf, &'static str)>,
    doing: &'static str,
    actions: &[Action],
) -> Result<bool, ApplyError> {
    let Some((parent, what)) = blocker else {
        return Ok(false);
    };
    let unlinked = |a: &Action| matches!(a, Action::Unlink { path } if Path::new(path) == parent);
    if *what == "symlink" && actions.iter().any(unlinked) {
        return Ok(true);
    }
    Err(ApplyError::Blocked {
        path: path.to_string(),
        doing,
        parent: parent.display().to_string(),
        what,
    })
}

/// The relative text of a link from `root/path` to `main/path`.
fn link_text(root: &Path, main: &Path, path: &str) -> String {
    let at = root.join(path);
    fsutil::relative_path(at.parent().unwrap_or(root), &main.join(path))
        .display()
        .to_string()
}

pub fn env(
    want: &EnvLock,
    seen: &EnvSeen,
    blocker: Option<&(PathBuf, &'static str)>,
    actions: &[Action],
) -> Result<Option<Action>, ApplyError> {
    let file = want.file.clone();
    // An old link the recipe dropped goes first: an old folder link on the
    // way, or the file's own old link when a linked file became the env
    // file (`[env] file = ".env"` with `.env` linked).
    let unlinked = actions
        .iter()
        .any(|a| matches!(a, Action::Unlink { path } if *path == file));
    let state = if unlinked || under_old_link(&file, blocker, "written", actions)? {
        EnvFileState::Missing
    } else {
        state::env(want, seen).file
    };
    let reason = match state {
        EnvFileState::Written => return Ok(None),
        EnvFileState::Missing => EnvReason::New,
        EnvFileState::Symlink => EnvReason::ReplacesSymlink,
        EnvFileState::Edited { ours: true, .. } => EnvReason::OutOfDate,
        EnvFileState::Edited { ours: false, .. } | EnvFileState::Unreadable => {
            return Err(ApplyError::ForeignEnvFile { file });
        }
    };
    Ok(Some(Action::WriteEnv { file, reason }))
}

/// What apply does with a database that has to be built anew: diverged
/// from the branch's migrations, or `provision db reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild<'a> {
    /// Leave it as it is, and say why (`on_divergence = "refuse"`).
    Leave,
    /// Move it aside under this name (until the next `gc`), then build it.
    SetAside(&'a str),
    /// Drop it, then build it (`db reset --discard`, for the command kind,
    /// which cannot keep one aside).
    Discard,
}

/// The database's actions, and where it diverged from the branch's
/// migrations.
#[derive(Debug, Default)]
pub struct DatabaseActions {
    pub actions: Vec<Action>,
    pub diverged: Vec<Divergence>,
    /// Diverged, and left as it is (no actions).
    pub left: bool,
}

/// `name` and `location` are the database's; `all` every wanted
/// migration, in the order a new database applies them; `reset` rebuilds
/// it even where it has not diverged.
pub fn database(
    state: &DatabaseState,
    name: &str,
    location: String,
    all: &[String],
    reset: bool,
    rebuild: Rebuild,
) -> Result<DatabaseActions, BoxError> {
    let mut actions = Vec::new();
    match state.presence {
        Presence::Missing => actions.push(Action::CreateDatabase {
            name: name.into(),
            location,
            from_store: None,
            cached: Vec::new(),
            seed: None,
        }),
        Presence::Unmarked => {
            return Err(DbError::Unmarked {
                name: name.into(),
                location,
            }
            .into());
        }
        Presence::Ours => {
            let diverged = state.divergence();
            if reset || !diverged.is_empty() {
                let first = match rebuild {
                    Rebuild::Leave => {
                        return Ok(DatabaseActions {
                            actions,
                            diverged,
                            left: true,
                        });
                    }
                    Rebuild::SetAside(aside) => Action::SetAside {
                        name: name.into(),
                        aside: aside.into(),
                    },
                    Rebuild::Discard => Action::DropDatabase { name: name.into() },
                };
                actions.push(first);
                actions.push(Action::CreateDatabase {
                    name: name.into(),
                    location,
                    from_store: None,
                    cached: Vec::new(),
                    seed: None,
                });
                if !all.is_empty() {
                    actions.push(Action::Migrate {
                        names: all.to_vec(),
                    });
                }
                return Ok(DatabaseActions {
                    actions,
                    diverged,
                    left: false,
                });
            }
        }
    }
    let partial: Vec<String> = state
        .migrations
        .iter()
        .filter(|m| m.missing_from.is_some() && m.file != MigrationFile::Gone)
        .map(|m| m.name.clone())
        .collect();
    if !partial.is_empty() {
        actions.push(Action::RepairLedger { rows: partial });
    }
    let mut pending = Vec::new();
    // Repeatables run after every versioned migration, new or changed.
    let mut repeatables = Vec::new();
    for m in &state.migrations {
        match &m.ledger {
            Ledger::Differs { .. } | Ledger::Pending { .. }
                if state.is_repeatable(&m.name) && m.file != MigrationFile::Gone =>
            {
                repeatables.push(m.name.clone());
            }
            // Whatever else is not applied is pending: a missing database
            // has no rows to diverge from, an existing one did not diverge.
            Ledger::Pending { .. } => pending.push(m.name.clone()),
            _ => {}
        }
    }
    pending.extend(repeatables);
    if !pending.is_empty() {
        actions.push(Action::Migrate { names: pending });
    }
    Ok(DatabaseActions {
        actions,
        ..DatabaseActions::default()
    })
}

/// Every command from the first that did not complete as the lock records.
pub fn setup(wanted: &[Hook], locked: &[Hook]) -> Vec<Action> {
    wanted
        .iter()
        .zip(state::steps(wanted, locked))
        .enumerate()
        .filter(|(_, (_, step))| *step != Step::Done)
        .map(|(index, (hook, _))| Action::Setup {
            run: hook.run.clone(),
            index,
        })
        .collect()
}
