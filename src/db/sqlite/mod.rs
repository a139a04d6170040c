//! The embedded default: one SQLite file per sandbox, kept under the git
//! common dir (outside every worktree, so `gc` can find it after the
//! worktree is gone).
//!
//! Applied migrations go into wrangler's own ledger, `d1_migrations(id,
//! name, applied_at)`, so `wrangler d1 migrations list` sees the same state,
//! and into `provision_migrations(name, checksum)`, which keeps what
//! wrangler does not: a checksum of each applied file.

mod migrate;
mod prebuild;

use std::path::PathBuf;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::ledgers::{self, Dialect, OURS, ToolLedger};
use super::store::{self, Entry, Stored};
use super::{Database, DatabaseKind, DbError, Ledger};
use crate::db::migrations::{Applied, Format, Migration};

pub use prebuild::{BuiltAhead, Source, prebuild, prebuild_stored, snapshot, sweep_abandoned};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS d1_migrations(
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        name       TEXT UNIQUE,
        applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
    );
    CREATE TABLE IF NOT EXISTS provision_migrations(
        name       TEXT PRIMARY KEY,
        checksum   TEXT NOT NULL,
        applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
    );
    CREATE TABLE IF NOT EXISTS provision_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

pub struct Sqlite {
    path: PathBuf,
    name: String,
    /// The mark a database made here gets.
    mark: String,
    conn: Option<Connection>,
    /// The migration tool's ledger kept beside provision's: wrangler's
    /// until `tool_ledger` names the layout.
    tool: Option<ToolLedger>,
}

impl Sqlite {
    pub fn new(path: PathBuf, name: &str, mark: String) -> Self {
        Sqlite {
            path,
            name: name.to_string(),
            mark,
            conn: None,
            tool: ToolLedger::new(Format::Flat, Dialect::Sqlite, &[]),
        }
    }

    fn fail(&self, action: &str) -> impl FnOnce(rusqlite::Error) -> DbError + '_ {
        let action = action.to_string();
        move |source| DbError::Sqlite {
            name: self.name.clone(),
            action,
            source,
        }
    }

    /// Opens the existing file without creating it (read-write: SQLite
    /// rolls back a transaction a killed writer left, on the next open).
    fn conn(&mut self) -> Result<&mut Connection, DbError> {
        if self.conn.is_none() {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(&self.path, flags).map_err(self.fail("open"))?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(self.fail("open"))?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just opened"))
    }

    fn has_table(&mut self, table: &str) -> Result<bool, DbError> {
        let name = self.name.clone();
        let found: Option<i64> = self
            .conn()?
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .optional()
            .map_err(|source| DbError::Sqlite {
                name,
                action: "read the schema".into(),
                source,
            })?;
        Ok(found.is_some())
    }

    /// Every row `sql` selects from `table`; none while the table does not exist.
    fn rows<T>(
        &mut self,
        table: &str,
        sql: &str,
        row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, DbError> {
        if !self.has_table(table)? {
            return Ok(Vec::new());
        }
        let fail = |source| DbError::Sqlite {
            name: self.name.clone(),
            action: format!("read {table}"),
            source,
        };
        let conn = self.conn.as_ref().expect("has_table opened it");
        let mut stmt = conn.prepare(sql).map_err(fail)?;
        stmt.query_map([], row)
            .and_then(|rows| rows.collect::<Result<Vec<T>, _>>())
            .map_err(fail)
    }
}

/// SQLite's message for a failed migration on one line: a syntax error
/// carries the rest of the file, so it is named by its line instead.
fn one_line(sql: &str, err: rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqlInputError {
            msg,
            sql: rest,
            offset,
            ..
        } if sql.ends_with(rest.trim_end_matches('\0')) => {
            let rest = rest.trim_end_matches('\0');
            let at = sql.len() - rest.len() + usize::try_from(offset).unwrap_or(0);
            let line = sql.as_bytes()[..at.min(sql.len())]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            format!("line {line}: {msg}")
        }
        other => other
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

impl Database for Sqlite {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Sqlite
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        super::location(crate::recipe::config::DatabaseKind::Sqlite, &self.name)
    }

    fn exists(&mut self) -> Result<bool, DbError> {
        Ok(self.path.is_file())
    }

    fn is_marked(&mut self) -> Result<bool, DbError> {
        if !self.has_table("provision_meta")? {
            return Ok(false);
        }
        let mark: Option<String> = self
            .conn()?
            .query_row(
                "SELECT value FROM provision_meta WHERE key = 'mark'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.fail("read mark"))?;
        // Any clone's mark: the file lives in this clone's common dir.
        Ok(mark.is_some_and(|m| m.starts_with(super::MARK)))
    }

    fn create(&mut self) -> Result<(), DbError> {
        if self.exists()? {
            if self.is_marked()? {
                return Ok(());
            }
            return Err(DbError::Unmarked {
                name: self.name.clone(),
                location: self.path.display().to_string(),
            });
        }
        // Built under a temporary name and moved in, marked, only if nothing
        // got there first: a crash never leaves an unmarked database where
        // the real one belongs. The same path as a database built ahead.
        let dir = self.path.parent().expect("the path has a folder");
        if self.adopt(prebuild(dir, &[])?)? {
            return Ok(());
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} appeared while provision created it",
                self.path.display()
            ),
        )
        .into())
    }

    fn ledger(&mut self) -> Result<Ledger, DbError> {
        let ours: Vec<(String, String)> = self.rows(
            OURS,
            "SELECT name, checksum FROM provision_migrations ORDER BY rowid",
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let tool = match self.tool.clone() {
            Some(tool) => {
                let rows = self.rows(tool.table(), &tool.select(), |r| {
                    (0..r.as_ref().column_count()).map(|i| r.get(i)).collect()
                })?;
                Some((tool.table(), tool.applied(&rows)))
            }
            None => None,
        };
        // A row that sorts out of place stays where the ledger put it, for
        // verify to report.
        Ok(ledgers::merge(ours, tool))
    }

    fn tool_ledger(&mut self, format: Format, files: &[Migration]) {
        self.tool = ToolLedger::new(format, Dialect::Sqlite, files);
    }

    /// See `migrate`: each migration atomic with its ledger rows.
    fn migrate_all(
        &mut self,
        pending: &[&Migration],
        starting: &mut dyn FnMut(&Migration),
    ) -> Result<(), DbError> {
        let tool = self.tool.clone();
        let conn = self.conn()?;
        migrate::all(conn, pending, starting, &|conn, m| {
            record(conn, tool.as_ref(), m)
        })
    }

    fn repair(&mut self, known: &[Applied]) -> Result<(), DbError> {
        let ledger = self.ledger()?;
        let tool = self.tool.clone();
        let name = self.name.clone();
        let conn = self.conn()?;
        let fail = |source| DbError::Sqlite {
            name: name.clone(),
            action: "repair the ledger".into(),
            source,
        };
        let tx = conn.transaction().map_err(fail)?;
        for row in &ledger.rows {
            match (row.missing_from, &tool) {
                (None, _) => {}
                // Only the tool's ledger has it (the tool applied it, or
                // wrangler did): take the checksum from the best record
                // there is (the lock, else the file).
                (Some(OURS), _) => {
                    let Some(known) = known.iter().find(|k| k.name == row.name) else {
                        continue;
                    };
                    tx.execute(
                        "INSERT INTO provision_migrations(name, checksum) VALUES(?1, ?2)",
                        params![row.name, known.checksum],
                    )
                    .map_err(fail)?;
                }
                (Some(_), Some(tool)) => {
                    if let Some(sql) = tool.record_name(&row.name) {
                        tx.execute_batch(&tool.create()).map_err(fail)?;
                        tx.execute_batch(&sql).map_err(fail)?;
                    }
                }
                (Some(_), None) => {}
            }
        }
        tx.commit().map_err(fail)?;
        Ok(())
    }

    fn adopt(&mut self, built: BuiltAhead) -> Result<bool, DbError> {
        if self.exists()? {
            return Ok(false);
        }
        if !built.is_intact()? {
            return Err(std::io::Error::other(format!(
                "{} is no longer the database provision built there",
                built.path.display()
            ))
            .into());
        }
        {
            // Never created here: a file that vanished is an error, not an
            // empty database to mark.
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn =
                Connection::open_with_flags(&built.path, flags).map_err(self.fail("adopt"))?;
            // Synced once, below, with everything else in the file.
            conn.pragma_update(None, "synchronous", "OFF")
                .map_err(self.fail("adopt"))?;
            set_mark(&conn, &self.mark).map_err(self.fail("mark"))?;
        }
        fs_err::File::open(&built.path)?.sync_all()?;
        // Moved while still locked: a sweep never sees it unlocked.
        match built.path.persist_noclobber(&self.path) {
            Ok(()) => Ok(true),
            // Someone else's got there first; theirs stays, this one goes.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e.error.into()),
        }
    }

    fn create_from(&mut self, entry: &Entry) -> Result<bool, DbError> {
        let from = self.path.with_file_name(format!("{}.sqlite", entry.name));
        if self.exists()? || mark_of(&from).as_ref() != Some(&entry.mark) {
            return Ok(false);
        }
        let dir = self.path.parent().expect("the path has a folder");
        let built = prebuild::copied(dir, &from)?;
        self.adopt(built)
    }

    /// `VACUUM INTO` a new file (a consistent copy even while another
    /// connection writes), marked as the store's, moved into place unless
    /// an entry got there first.
    fn save_as(&mut self, entry: &Entry) -> Result<(), DbError> {
        let to = self.path.with_file_name(format!("{}.sqlite", entry.name));
        if to.exists() {
            return Ok(());
        }
        let dir = self.path.parent().expect("the path has a folder");
        let built = prebuild::empty(dir)?;
        let target = built.path.to_string_lossy().into_owned();
        self.conn()?
            .execute("VACUUM INTO ?1", [target])
            .map_err(self.fail("copy into the store"))?;
        save_marked(&built, &to, &entry.mark)
    }

    fn store_entries(&mut self, mark: &str) -> Result<Vec<Stored>, DbError> {
        let dir = self.path.parent().expect("the path has a folder");
        list_entries(dir, mark)
    }

    /// A hard link under the new name, then the old name removed: never
    /// over a file that is there. The journal (a killed writer's, which
    /// SQLite rolls back on the next open) goes along first.
    fn set_aside(&mut self, aside: &str) -> Result<(), DbError> {
        if !self.is_marked()? {
            return Err(DbError::Unmarked {
                name: self.name.clone(),
                location: self.path.display().to_string(),
            });
        }
        // Its changes moved from the WAL into the file first, where
        // nobody else has it open: the files move one by one, and a kill
        // between two would part the file from a WAL that holds data.
        if let Some(conn) = self.conn.take() {
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        let to = self.path.with_file_name(format!("{aside}.sqlite"));
        for suffix in SIDE_FILES.iter().rev() {
            let from = PathBuf::from(format!("{}{suffix}", self.path.display()));
            let into = PathBuf::from(format!("{}{suffix}", to.display()));
            match fs_err::hard_link(&from, &into) {
                Ok(()) => fs_err::remove_file(&from)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn drop_database(&mut self) -> Result<(), DbError> {
        if !self.exists()? {
            return Ok(());
        }
        if !self.is_marked()? {
            return Err(DbError::Unmarked {
                name: self.name.clone(),
                location: self.path.display().to_string(),
            });
        }
        self.conn = None;
        for suffix in SIDE_FILES {
            let path = PathBuf::from(format!("{}{suffix}", self.path.display()));
            match fs_err::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Sets a database's mark (a copy carries its source's: replaced).
fn set_mark(conn: &Connection, mark: &str) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    conn.execute(
        "INSERT INTO provision_meta(key, value) VALUES('mark', ?1) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [mark],
    )?;
    Ok(())
}

/// The mark of the database file at `path`, read only; `None` where there
/// is none (or no file, or no database).
fn mark_of(path: &std::path::Path) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row(
        "SELECT value FROM provision_meta WHERE key = 'mark'",
        [],
        |r| r.get(0),
    )
    .ok()
}

/// Marks the database `built` with `mark`, syncs it and moves it to `to`
/// unless something is there (another provision stored the same entry:
/// this copy goes).
pub fn save_marked(built: &BuiltAhead, to: &std::path::Path, mark: &str) -> Result<(), DbError> {
    let fail = |source| DbError::Sqlite {
        name: to.display().to_string(),
        action: "mark a store entry".into(),
        source,
    };
    {
        let conn = Connection::open(&built.path).map_err(fail)?;
        set_mark(&conn, mark).map_err(fail)?;
    }
    fs_err::File::open(&built.path)?.sync_all()?;
    // A link never replaces what is there; the temporary name goes with
    // `built`.
    match std::fs::hard_link(&built.path, to) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e.into()),
        _ => Ok(()),
    }
}

/// The store's entries in `dir` marked `mark`, newest by modification time.
pub fn list_entries(dir: &std::path::Path, mark: &str) -> Result<Vec<Stored>, DbError> {
    let mut out = Vec::new();
    for entry in crate::fsutil::entries(dir)? {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".sqlite").filter(|n| store::is_entry(n)) else {
            continue;
        };
        if mark_of(&entry.path()).as_deref() != Some(mark) {
            continue;
        }
        let meta = entry.metadata()?;
        let newness = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        out.push(Stored {
            name: name.to_string(),
            bytes: meta.len(),
            newness,
        });
    }
    Ok(out)
}

/// The database file and those SQLite keeps beside it.
const SIDE_FILES: [&str; 4] = ["", "-wal", "-shm", "-journal"];

/// A migration's ledger rows, provision's and its tool's, in the
/// caller's transaction.
fn record(conn: &Connection, tool: Option<&ToolLedger>, m: &Migration) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    if let Some(tool) = tool {
        conn.execute_batch(&tool.create())?;
        conn.execute_batch(&tool.record(m))?;
    }
    // A repeatable migration applied again keeps its row, newly checksummed.
    conn.execute(
        "INSERT INTO provision_migrations(name, checksum) VALUES(?1, ?2) \
         ON CONFLICT(name) DO UPDATE SET checksum = excluded.checksum, applied_at = CURRENT_TIMESTAMP",
        params![m.name, m.checksum],
    )?;
    Ok(())
}

/// The migration's SQL and its ledger rows, inside the caller's
/// transaction (a build ahead, of migrations that need nothing else).
fn run_migration(conn: &Connection, name: &str, checksum: &str, sql: &str) -> Result<(), DbError> {
    let failed = |e| DbError::Migration {
        file: name.to_string(),
        message: one_line(sql, e),
    };
    conn.execute_batch(SCHEMA).map_err(failed)?;
    // With its NUL: SQLite copies a script that does not end in one before
    // each statement it prepares, which made a migration of many statements
    // quadratic (80,000 INSERTs: 11.6 s; with the NUL, linear).
    conn.execute_batch(&format!("{sql}\0")).map_err(failed)?;
    // Built ahead only from flat folders: wrangler's ledger.
    let wrangler = ToolLedger::new(Format::Flat, Dialect::Sqlite, &[]);
    let migration = Migration {
        checksum: checksum.to_string(),
        ..Migration::flat(name, name.into(), "")
    };
    record(conn, wrangler.as_ref(), &migration).map_err(failed)
}
