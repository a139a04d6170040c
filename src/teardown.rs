//! Takes a sandbox's own parts apart once its worktree is gone or going:
//! the database (only when it carries provision's mark) and the registry
//! record (which frees the port). Shared by `remove` and `gc`.

use serde::Serialize;

use crate::config::Settings;
use crate::context::{self, Owner};
use crate::db::DbError;
use crate::registry::{Guard, Record, Registry, RegistryError};
use crate::repo::Checkout;

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error("cannot drop database `{0}`")]
    Drop(String, #[source] Box<DbError>),
    #[error("cannot open database `{0}`")]
    Open(String, #[source] crate::BoxError),
    #[error("cannot delete the registry record of `{0}`")]
    Record(String, #[source] RegistryError),
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
}

impl DatabaseFate {
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
        }
    }
}

/// Drops the record's database if provision created it; with `dry_run`
/// only says what it would do.
pub fn drop_database(
    settings: &Settings,
    main: &Checkout,
    record: &Record,
    dry_run: bool,
) -> Result<DatabaseFate, TeardownError> {
    let recorded = &record.database;
    // Always the record's path, even when its folder is gone: it is what
    // `{worktree}` and the env overrides meant. The command kind itself
    // decides where to run once the folder is gone.
    let owner = Owner {
        common_dir: &main.common_dir,
        main: &main.main,
        worktree: &record.path,
        id: &record.id,
        name: &record.name,
        port: record.port,
    };
    let mut database = context::open_database(settings, &main.repo_name(), &owner)
        .map_err(|e| TeardownError::Open(recorded.name.clone(), e))?;
    if database.kind() != recorded.kind || database.location() != recorded.location {
        return Ok(DatabaseFate::KeptRecipeChanged);
    }
    let fate = (|| {
        if !database.exists()? {
            return Ok(DatabaseFate::Absent);
        }
        if !database.is_marked()? {
            return Ok(DatabaseFate::KeptUnmarked);
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
pub fn forget(registry: &Registry, guard: &Guard, record: &Record) -> Result<(), TeardownError> {
    registry
        .delete(guard, &record.id)
        .map_err(|e| TeardownError::Record(record.name.clone(), e))
}
