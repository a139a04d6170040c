//! Database kinds behind one trait: create, exists, migrate, ledger, drop.
//!
//! Every kind marks what it creates as provision's and refuses to migrate or
//! drop anything without that mark: provision never touches a database it did
//! not create.

pub mod aside;
pub(crate) mod build_ahead;
mod command;
pub mod ledgers;
pub mod migrations;
pub(crate) mod postgres;
mod sqlite;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::{Error as _, IntoDeserializer};
use serde::{Deserialize, Deserializer};

use crate::db::migrations::{Applied, Format, Migration};
use crate::recipe::config::{DatabaseKind, DatabaseSettings};

pub use command::CommandDb;
pub use postgres::Postgres;
pub use sqlite::{BuiltAhead, Source, Sqlite, prebuild_stored, snapshot, sweep_abandoned};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "database `{name}` at {location} exists but was not created by provision for this worktree (it has no provision mark naming this clone and worktree); \
         provision will not migrate or drop it: choose another name with `[database] name` in provision.toml"
    )]
    Unmarked { name: String, location: String },
    #[error("migration {file} failed: {message}")]
    Migration { file: String, message: String },
    #[error(
        "database `{name}` keeps provision's ledger in schema `{schema}`, and provision now keeps it in `public`; \
         provision will not migrate it until it is moved: run `ALTER TABLE \"{schema}\".provision_migrations SET SCHEMA public` in it"
    )]
    LedgerElsewhere { name: String, schema: String },
    #[error("database `{name}`: {action}{}", busy(source))]
    Sqlite {
        name: String,
        action: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database `{name}`: {action}")]
    Postgres {
        name: String,
        action: String,
        #[source]
        source: ::postgres::Error,
    },
    #[error(
        "database `{name}` has settings of its own (`ALTER DATABASE … SET`, grants, owner or connection limits, as a migration may set them), which a copy made with `CREATE DATABASE … TEMPLATE` does not carry"
    )]
    NotCopied { name: String },
    #[error("cannot connect to PostgreSQL at {server}")]
    Connect {
        server: String,
        #[source]
        source: ::postgres::Error,
    },
    #[error("invalid PostgreSQL connection settings ({from}): {message}")]
    Settings { from: &'static str, message: String },
    #[error(
        "template database `{template}` is busy: PostgreSQL copies a template only while nobody else is connected to it; close its other sessions and try again"
    )]
    TemplateBusy { template: String },
    #[error("`{command}` ({what}) {status}{output}")]
    Command {
        what: &'static str,
        command: String,
        status: String,
        /// The last lines it printed, each on its own indented line.
        output: String,
    },
    #[error(
        "`{command}` names the worktree {worktree}, whose folder is gone, so provision will not run it; \
         remove the database by hand"
    )]
    WorktreeGone { command: String, worktree: String },
    #[error("no `{0}` command in [database] of provision.toml; the command kind needs one to {1}")]
    NoCommand(&'static str, &'static str),
    #[error(
        "the {0} kind cannot keep a database aside: `provision db reset --discard` drops it and builds it anew"
    )]
    NoAside(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Untrusted(#[from] crate::recipe::trust::TrustError),
}

/// What a busy SQLite database means here: another provision holds it for
/// a write that outlasted the wait (a long migration).
fn busy(source: &rusqlite::Error) -> &'static str {
    if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
        "; another provision is changing it (a long migration?): try again once it is done"
    } else {
        ""
    }
}

/// A database a killed provision left half made, and what `gc` did with it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HalfMade {
    pub name: String,
    pub done: String,
}

/// What a database says has been applied to it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    pub rows: Vec<LedgerRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    pub name: String,
    /// `None` where the ledger keeps no checksum for this row.
    pub checksum: Option<String>,
    /// Set when only part of the ledger records this migration (for SQLite:
    /// one of `d1_migrations` and `provision_migrations` lacks the row).
    pub missing_from: Option<&'static str>,
}

impl Ledger {
    /// The rows every part of the ledger agrees on, as lock entries.
    pub fn complete(&self) -> Vec<Applied> {
        self.rows
            .iter()
            .filter(|r| r.missing_from.is_none())
            .map(|r| Applied {
                name: r.name.clone(),
                checksum: r.checksum.clone().unwrap_or_default(),
            })
            .collect()
    }
}

pub trait Database {
    fn kind(&self) -> DatabaseKind;
    fn name(&self) -> &str;
    /// Where the database lives, without host-specific parts (for the lock).
    fn location(&self) -> String;
    fn exists(&mut self) -> Result<bool, DbError>;
    /// Whether the existing database carries provision's mark.
    fn is_marked(&mut self) -> Result<bool, DbError>;
    /// Creates the database and marks it as provision's.
    fn create(&mut self) -> Result<(), DbError>;
    fn ledger(&mut self) -> Result<Ledger, DbError>;
    /// Applies the pending migrations in order, calling `starting` before
    /// each, and records each atomically with its changes (or, for one run
    /// outside a transaction, once it has succeeded). Whatever fails, the
    /// ones before it stay applied and recorded.
    fn migrate_all(
        &mut self,
        pending: &[&Migration],
        starting: &mut dyn FnMut(&Migration),
    ) -> Result<(), DbError>;
    /// Completes ledger rows that only part of the ledger has, taking
    /// checksums from `known` (the lock's record, else the files).
    fn repair(&mut self, known: &[Applied]) -> Result<(), DbError> {
        // A kind with a single ledger has no partial rows to complete.
        let _ = known;
        Ok(())
    }
    /// Keeps the ledger of the tool whose layout `files` are in beside
    /// provision's (writing it with each migration, reading it back);
    /// kinds whose tool keeps its own ledger ignore it.
    fn tool_ledger(&mut self, format: Format, files: &[Migration]) {
        let _ = (format, files);
    }
    /// Moves a database built ahead of time (`sqlite::prebuild`) into place
    /// as this one, marked; false where this one already exists or the kind
    /// builds nothing ahead.
    fn adopt(&mut self, built: BuiltAhead) -> Result<bool, DbError> {
        drop(built);
        Ok(false)
    }
    /// Marks an existing database that carries this sandbox's mark by path
    /// (see [`Mark`]) with the mark by identity; anything else is left as
    /// it is.
    fn remark(&mut self) -> Result<(), DbError> {
        Ok(())
    }
    /// Drops the database; only ever called on a marked one.
    fn drop_database(&mut self) -> Result<(), DbError>;
    /// Whether the recipe gives a way to drop it (the command kind may
    /// have no `drop` command).
    fn can_drop(&self) -> bool {
        true
    }
    /// Lets go of a database provision cannot drop: forgets what it kept
    /// of it, so its name is never mistaken for provision's later.
    fn forget(&mut self) -> Result<(), DbError> {
        Ok(())
    }
    /// Builds this (missing) database as a copy of the store's `entry`,
    /// marked as this one's; false where the kind keeps no store, or the
    /// entry is not there or not the store's.
    fn create_from(&mut self, entry: &store::Entry) -> Result<bool, DbError> {
        let _ = entry;
        Ok(false)
    }
    /// Copies this database into the store as `entry`, marked as the
    /// store's, unless it is there already.
    fn save_as(&mut self, entry: &store::Entry) -> Result<(), DbError> {
        let _ = entry;
        Ok(())
    }
    /// Becomes a spare copy of the store's `entry` made ahead (marked as
    /// its own first, then renamed: an instant); false where there is none
    /// (or the kind makes none).
    fn take_spare(&mut self, entry: &store::Entry) -> Result<bool, DbError> {
        let _ = entry;
        Ok(false)
    }
    /// Makes a spare copy of this database, a store entry, unless one is
    /// there (see `store::SPARE`).
    fn make_spare(&mut self) -> Result<(), DbError> {
        Ok(())
    }
    /// The store's entries beside this database that carry `mark` (the
    /// store's).
    fn store_entries(&mut self, mark: &str) -> Result<Vec<store::Stored>, DbError> {
        let _ = mark;
        Ok(Vec::new())
    }
    /// Which of `names` the store holds, marked with `mark`: what `new`
    /// and `db reset` look up, cheaper where listing the whole store
    /// measures each entry's size.
    fn stored_among(&mut self, names: &[String], mark: &str) -> Result<Vec<String>, DbError> {
        Ok(self
            .store_entries(mark)?
            .into_iter()
            .map(|s| s.name)
            .filter(|n| names.contains(n))
            .collect())
    }
    /// Drops the databases this clone's killed processes left half made
    /// (PostgreSQL: copies under names of their own, see
    /// `postgres::creating`, and spare copies half taken), or with
    /// `dry_run` names them; says what became of each.
    fn drop_abandoned(&mut self, dry_run: bool) -> Result<Vec<HalfMade>, DbError> {
        let _ = dry_run;
        Ok(Vec::new())
    }
    /// Whether the server is still at a statement naming this database
    /// for a client (a rename or a copy goes on after its client was
    /// killed): one not there yet is then not gone. Only a server kind can
    /// say.
    fn in_flight(&mut self) -> Result<bool, DbError> {
        Ok(false)
    }
    /// Moves this (marked) database to the name `aside`, mark and all,
    /// never over anything there; this name is then free.
    fn set_aside(&mut self, aside: &str) -> Result<(), DbError> {
        let _ = aside;
        Err(DbError::NoAside(self.kind().as_str()))
    }
}

/// What every mark starts with.
pub(crate) const MARK: &str = "provision:v1";

/// The mark of one sandbox's database: `provision:v1 clone=<id>
/// worktree=<id>`, naming the clone by its identity (see
/// `lifecycle::identity`), so that moving the repository keeps it, and the
/// worktree by git's id for it.
///
/// Databases marked before clones had an identity name the git common
/// dir's path instead (`repo=<path>`). Such a mark is still this
/// sandbox's while the path is the same; `apply` marks it anew.
#[derive(Debug, Clone)]
pub struct Mark {
    pub clone: String,
    pub common_dir: PathBuf,
    pub worktree: String,
}

impl Mark {
    /// The mark a database gets.
    pub fn text(&self) -> String {
        format!("{MARK} clone={} worktree={}", self.clone, self.worktree)
    }

    /// Whether `found` marks this sandbox's database, in either form.
    pub fn is_ours(&self, found: &str) -> bool {
        found == self.text() || self.is_by_path(found)
    }

    /// Whether `found` is this sandbox's mark in the form by path.
    pub fn is_by_path(&self, found: &str) -> bool {
        let by_path = format!(
            "{MARK} repo={} worktree={}",
            self.common_dir.display(),
            self.worktree
        );
        found == by_path
    }
}

/// Where things live that a database kind needs to know of.
pub struct Place<'a> {
    pub common_dir: &'a Path,
    /// The mark of the sandbox's database.
    pub mark: Mark,
    /// The worktree root, where commands run while it exists. It stays the
    /// sandbox's own path (for `{worktree}`) after its folder is gone.
    pub worktree: &'a Path,
    /// The sandbox's template values (`{db}`, `{port}`, …) for commands.
    pub values: BTreeMap<&'static str, String>,
    /// The sandbox's env overrides, passed on to commands.
    pub env: BTreeMap<String, String>,
}

pub fn open(settings: &DatabaseSettings, name: &str, place: &Place) -> Box<dyn Database> {
    match settings.kind {
        DatabaseKind::Sqlite => Box::new(Sqlite::new(
            sqlite_path(place.common_dir, name),
            name,
            place.mark.text(),
        )),
        DatabaseKind::Postgres => Box::new(Postgres::new(
            settings,
            name,
            place.mark.clone(),
            place.values.get("main").map_or("", String::as_str),
        )),
        DatabaseKind::Command => Box::new(CommandDb::new(settings, name, place)),
    }
}

/// Where a kind keeps a database of this name, as the lock records it: no
/// host names or absolute paths, so every clone's lock is the same.
pub fn location(kind: DatabaseKind, name: &str) -> String {
    match kind {
        DatabaseKind::Sqlite => format!("$GIT_COMMON_DIR/provision/sqlite/{name}.sqlite"),
        DatabaseKind::Postgres => format!("postgres:{name}"),
        DatabaseKind::Command => format!("command:{name}"),
    }
}

/// Reads `database.kind` back from a file provision wrote (a lock, a registry
/// record). Such files are untrusted input: an unknown kind is an error that
/// names the field, where serde alone would name only the variant.
pub(crate) fn read_kind<'de, D: Deserializer<'de>>(from: D) -> Result<DatabaseKind, D::Error> {
    let text = String::deserialize(from)?;
    DatabaseKind::deserialize(text.as_str().into_deserializer())
        .map_err(|e: serde::de::value::Error| D::Error::custom(format_args!("database.kind: {e}")))
}

pub fn sqlite_path(common_dir: &Path, name: &str) -> PathBuf {
    sqlite_dir(common_dir).join(format!("{name}.sqlite"))
}

pub fn sqlite_dir(common_dir: &Path) -> PathBuf {
    common_dir.join("provision").join("sqlite")
}
