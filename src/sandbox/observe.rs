//! What is actually there: the worktree's links and env file, and the
//! database's ledger, described in the lock's own terms so the two can be
//! compared field by field and diffed line by line. Reads only.

use std::path::Path;

use crate::db::migrations;
use crate::db::{Database, DbError, LedgerRow};
use crate::fsutil;
use crate::hash;
use crate::sandbox::envfile;
use crate::sandbox::lock::{DatabaseLock, EnvLock, Link, LinkKind, LinkMode, Sandbox};

/// The observed sandbox, shaped like `reference` (a lock or a plan): the
/// same links and keys are looked at, and what cannot be observed (name,
/// port, recipe, which setup commands completed) is copied.
pub struct Observed {
    pub sandbox: Sandbox,
    /// Ledger rows only part of the ledger has.
    pub partial_rows: Vec<LedgerRow>,
}

pub fn observe(
    reference: &Sandbox,
    worktree: &Path,
    main: &Path,
    database: &mut dyn Database,
) -> Result<Observed, DbError> {
    let links = reference
        .links
        .iter()
        .map(|link| observe_link(link, worktree, main))
        .collect();
    let env = reference
        .env
        .as_ref()
        .map(|env| observe_env(env, worktree, main));
    let database_exists = database.exists()?;
    let (rows, marked) = if database_exists {
        (database.ledger()?.rows, database.is_marked()?)
    } else {
        (Vec::new(), false)
    };
    let applied: Vec<_> = crate::db::Ledger { rows: rows.clone() }.complete();
    let name = match (database_exists, marked) {
        (false, _) => format!("{} (missing)", database.name()),
        (true, false) => format!("{} (not marked as provision's)", database.name()),
        (true, true) => database.name().to_string(),
    };
    let sandbox = Sandbox {
        links,
        env,
        database: DatabaseLock {
            kind: database.kind(),
            name,
            location: database.location(),
            chain: migrations::chain(&applied),
            migrations: applied,
        },
        ..reference.clone()
    };
    let partial_rows = rows
        .into_iter()
        .filter(|r| r.missing_from.is_some())
        .collect();
    Ok(Observed {
        sandbox,
        partial_rows,
    })
}

/// A link as it is. A copy (`[links] copy`/`reflink`) is the worktree's own:
/// it is observed as a real file or folder of its kind, its contents never
/// compared, and a symlink in its place is observed as a symlink.
pub fn observe_link(link: &Link, worktree: &Path, main: &Path) -> Link {
    let at = worktree.join(&link.path);
    let observed = |target: String, kind, mode| Link {
        path: link.path.clone(),
        target,
        kind,
        mode,
    };
    let Ok(meta) = fs_err::symlink_metadata(&at) else {
        let kind = if link.kind == LinkKind::Absent {
            LinkKind::Absent
        } else {
            LinkKind::Missing
        };
        return observed(link.target.clone(), kind, link.mode);
    };
    if !meta.file_type().is_symlink() {
        if link.mode.is_symlink() {
            return observed(String::new(), LinkKind::NotALink, link.mode);
        }
        let kind = if meta.is_dir() {
            LinkKind::Dir
        } else {
            LinkKind::File
        };
        return observed(link.target.clone(), kind, link.mode);
    }
    let Ok(text) = fs_err::read_link(&at) else {
        return observed(String::new(), LinkKind::Missing, LinkMode::Symlink);
    };
    let resolved = fsutil::normalize(&at.parent().unwrap_or(worktree).join(&text));
    let target = if resolved == main.join(&link.path) {
        format!("{{main}}/{}", link.path)
    } else {
        text.display().to_string()
    };
    let kind = match fs_err::metadata(&resolved) {
        Ok(m) if m.is_dir() => LinkKind::Dir,
        Ok(_) => LinkKind::File,
        Err(_) => LinkKind::Absent,
    };
    observed(target, kind, LinkMode::Symlink)
}

pub const MISSING: &str = "(missing)";
pub const SYMLINK: &str = "(a symlink, not a real file)";

fn observe_env(env: &EnvLock, worktree: &Path, main: &Path) -> EnvLock {
    let path = worktree.join(&env.file);
    let shared = env.shared.as_ref().map(|_| {
        fs_err::read(main.join(&env.file)).map_or_else(|_| MISSING.to_string(), |b| hash::of(&b))
    });
    let keys = env.overrides.keys().cloned();
    let (content, overrides) = match fs_err::symlink_metadata(&path) {
        Err(_) => (
            MISSING.to_string(),
            keys.map(|k| (k, MISSING.to_string())).collect(),
        ),
        Ok(meta) if meta.file_type().is_symlink() => (
            SYMLINK.to_string(),
            keys.map(|k| (k, SYMLINK.to_string())).collect(),
        ),
        Ok(_) => match fs_err::read_to_string(&path) {
            Ok(text) => (hash::of(text.as_bytes()), envfile::values(&text, keys)),
            Err(_) => (
                MISSING.to_string(),
                keys.map(|k| (k, MISSING.to_string())).collect(),
            ),
        },
    };
    EnvLock {
        file: env.file.clone(),
        shared,
        overrides,
        content,
    }
}
