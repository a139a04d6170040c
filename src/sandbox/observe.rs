//! What is actually there: the worktree's links and env file, and the
//! database's ledger. Reads only. `state` classifies what is found; what
//! is found, described in the lock's own terms (`Observed::sandbox`), is
//! what verify diffs line by line against the lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::db::migrations::{self, Applied};
use crate::db::{Database, DbError, Ledger, LedgerRow};
use crate::fsutil;
use crate::hash;
use crate::sandbox::envfile;
use crate::sandbox::lock::{self, DatabaseLock, EnvLock, Link, LinkKind, LinkMode, Sandbox};

/// What one look at a link's path finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Nothing,
    /// A real file or folder (`File` or `Dir`).
    Real(LinkKind),
    /// A symlink whose text cannot be read.
    Unreadable,
    /// A symlink: its target as the lock writes it (`{main}/<path>` when it
    /// reaches the main checkout's copy), and what is there (`File`, `Dir`,
    /// or `Absent`).
    Symlink {
        target: String,
        kind: LinkKind,
    },
}

/// What is at the env file's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvFound {
    Nothing,
    Symlink,
    /// There, but not readable as text (a folder, or not UTF-8).
    Unreadable,
    Text {
        hash: String,
        /// Whether provision wrote it (its header), so may rewrite it.
        ours: bool,
        /// The values it sets for the looked-for keys.
        values: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSeen {
    pub file: EnvFound,
    /// The hash of the main checkout's copy (or `(missing)`), looked at
    /// only where the lock records one.
    pub shared: Option<String>,
}

/// What the database says of itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseSeen {
    pub exists: bool,
    pub marked: bool,
    pub rows: Vec<LedgerRow>,
}

impl DatabaseSeen {
    /// Everything, the ledger even of a database that is not provision's
    /// (verify reports what it holds).
    pub fn look(database: &mut dyn Database) -> Result<Self, DbError> {
        if !database.exists()? {
            return Ok(DatabaseSeen::default());
        }
        let rows = database.ledger()?.rows;
        Ok(DatabaseSeen {
            exists: true,
            marked: database.is_marked()?,
            rows,
        })
    }

    /// Nothing past the mark of a database that is not provision's (apply
    /// refuses it, and reads no further).
    pub fn look_if_ours(database: &mut dyn Database) -> Result<Self, DbError> {
        if !database.exists()? {
            return Ok(DatabaseSeen::default());
        }
        let marked = database.is_marked()?;
        let rows = if marked {
            database.ledger()?.rows
        } else {
            Vec::new()
        };
        Ok(DatabaseSeen {
            exists: true,
            marked,
            rows,
        })
    }

    /// The rows the whole ledger has, as a lock records them: a checksum
    /// the ledger does not keep is the best `known` one.
    pub fn applied(&self, known: &[Applied]) -> Vec<Applied> {
        self.rows
            .iter()
            .filter(|r| r.missing_from.is_none())
            .map(|r| Applied {
                name: r.name.clone(),
                checksum: r.checksum.clone().unwrap_or_else(|| {
                    known
                        .iter()
                        .find(|k| k.name == r.name)
                        .map(|k| k.checksum.clone())
                        .unwrap_or_default()
                }),
            })
            .collect()
    }
}

/// The observed sandbox, shaped like `reference` (a lock): the same links
/// and keys are looked at, and what cannot be observed (name, port, recipe,
/// which setup commands completed) is copied.
pub struct Observed {
    /// What is at each of the reference's links, in its order.
    pub links: Vec<Found>,
    pub env: Option<EnvSeen>,
    pub database: DatabaseSeen,
    /// All of the above in the lock's terms.
    pub sandbox: Sandbox,
}

/// `tag` is the clone's (`{clone}`), as in the env file's hash.
pub fn observe(
    reference: &Sandbox,
    worktree: &Path,
    main: &Path,
    tag: &str,
    database: &mut dyn Database,
) -> Result<Observed, DbError> {
    let links: Vec<Found> = reference
        .links
        .iter()
        .map(|link| look(&link.path, worktree, main))
        .collect();
    let env = reference
        .env
        .as_ref()
        .map(|env| look_env(env, worktree, main, tag));
    let seen = DatabaseSeen::look(database)?;
    let sandbox = Sandbox {
        links: reference
            .links
            .iter()
            .zip(&links)
            .map(|(link, found)| as_link(link, found))
            .collect(),
        env: reference
            .env
            .as_ref()
            .zip(env.as_ref())
            .map(|(e, s)| as_env(e, s)),
        database: as_database(database, &seen),
        ..reference.clone()
    };
    Ok(Observed {
        links,
        env,
        database: seen,
        sandbox,
    })
}

/// What is at `path` of the worktree. A link's target is resolved without
/// following the folders on the way (as the kernel does when they are real).
pub fn look(path: &str, worktree: &Path, main: &Path) -> Found {
    let at = worktree.join(path);
    let Ok(meta) = fs_err::symlink_metadata(&at) else {
        return Found::Nothing;
    };
    if !meta.file_type().is_symlink() {
        return Found::Real(if meta.is_dir() {
            LinkKind::Dir
        } else {
            LinkKind::File
        });
    }
    let Ok(text) = fs_err::read_link(&at) else {
        return Found::Unreadable;
    };
    let resolved = fsutil::normalize(&at.parent().unwrap_or(worktree).join(&text));
    let target = if resolved == main.join(path) {
        format!("{{main}}/{path}")
    } else {
        text.display().to_string()
    };
    let kind = match fs_err::metadata(&resolved) {
        Ok(m) if m.is_dir() => LinkKind::Dir,
        Ok(_) => LinkKind::File,
        Err(_) => LinkKind::Absent,
    };
    Found::Symlink { target, kind }
}

/// The first folder on the way to `path` that is a symlink or a file: a
/// write at `path` would land where it points, or fail.
pub fn blocker(worktree: &Path, path: &str) -> Option<(PathBuf, &'static str)> {
    fsutil::blocked_parent(worktree, Path::new(path))
}

/// What apply looks at before it writes or deletes at a path.
pub struct Spot {
    pub found: Found,
    pub blocker: Option<(PathBuf, &'static str)>,
}

pub fn spot(path: &str, worktree: &Path, main: &Path) -> Spot {
    Spot {
        found: look(path, worktree, main),
        blocker: blocker(worktree, path),
    }
}

/// `found` as a lock records a link. A copy (`[links] copy`/`reflink`) is
/// the worktree's own: a real file or folder of its kind, its contents
/// never compared; a symlink in its place shows as a symlink.
pub fn as_link(link: &Link, found: &Found) -> Link {
    let (target, kind, mode) = match found {
        // Nothing, or the worktree's own file or link: nothing of provision's.
        Found::Nothing | Found::Real(_) if link.kind == LinkKind::Absent => {
            (link.target.clone(), LinkKind::Absent, link.mode)
        }
        Found::Symlink { target, .. }
            if link.kind == LinkKind::Absent && *target != link.target =>
        {
            (link.target.clone(), LinkKind::Absent, link.mode)
        }
        Found::Nothing => (link.target.clone(), LinkKind::Missing, link.mode),
        Found::Real(_) if link.mode.is_symlink() => (String::new(), LinkKind::NotALink, link.mode),
        Found::Real(kind) => (link.target.clone(), *kind, link.mode),
        Found::Unreadable => (String::new(), LinkKind::Missing, LinkMode::Symlink),
        Found::Symlink { target, kind } => (target.clone(), *kind, LinkMode::Symlink),
    };
    Link {
        path: link.path.clone(),
        target,
        kind,
        mode,
    }
}

const MISSING: &str = "(missing)";
const SYMLINK: &str = "(a symlink, not a real file)";

/// The env file, and the values it sets for the keys `env` overrides;
/// its hash as the lock records it, with the clone's `tag`.
pub fn look_env(env: &EnvLock, worktree: &Path, main: &Path, tag: &str) -> EnvSeen {
    let path = worktree.join(&env.file);
    let shared = env.shared.as_ref().map(|_| {
        fs_err::read(main.join(&env.file)).map_or_else(|_| MISSING.to_string(), |b| hash::of(&b))
    });
    let file = match fs_err::symlink_metadata(&path) {
        Err(_) => EnvFound::Nothing,
        Ok(meta) if meta.file_type().is_symlink() => EnvFound::Symlink,
        Ok(_) => match fs_err::read_to_string(&path) {
            Ok(text) => EnvFound::Text {
                hash: lock::env_hash(text.as_bytes(), tag),
                ours: envfile::is_ours(&text),
                values: envfile::values(&text, env.overrides.keys().cloned()),
            },
            Err(_) => EnvFound::Unreadable,
        },
    };
    EnvSeen { file, shared }
}

/// `seen` as a lock records the env file.
fn as_env(env: &EnvLock, seen: &EnvSeen) -> EnvLock {
    let all = |word: &str| {
        let values = env.overrides.keys().map(|k| (k.clone(), word.to_string()));
        (word.to_string(), values.collect())
    };
    let (content, overrides) = match &seen.file {
        EnvFound::Nothing | EnvFound::Unreadable => all(MISSING),
        EnvFound::Symlink => all(SYMLINK),
        EnvFound::Text { hash, values, .. } => (hash.clone(), values.clone()),
    };
    EnvLock {
        file: env.file.clone(),
        shared: seen.shared.clone(),
        overrides,
        content,
    }
}

/// `seen` as a lock records the database: the rows the whole ledger
/// agrees on, and the name marked when the database is missing or is
/// not provision's.
fn as_database(database: &dyn Database, seen: &DatabaseSeen) -> DatabaseLock {
    let applied = Ledger {
        rows: seen.rows.clone(),
    }
    .complete();
    let name = match (seen.exists, seen.marked) {
        (false, _) => format!("{} (missing)", database.name()),
        (true, false) => format!("{} (not marked as provision's)", database.name()),
        (true, true) => database.name().to_string(),
    };
    DatabaseLock {
        kind: database.kind(),
        name,
        location: database.location(),
        chain: migrations::chain(&applied),
        migrations: applied,
    }
}
