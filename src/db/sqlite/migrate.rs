//! Applying migrations to a SQLite file, each atomic with its ledger rows:
//!
//! - most run in one transaction with a savepoint each, committed once with
//!   SQLite's full syncs: one that fails rolls back alone and the ones
//!   before it stay, as if each had committed on its own; a killed process
//!   rolls back the batch, which the next apply redoes, and the lock
//!   (written after this returns) never claims it. One commit writes each
//!   page once: twenty migrations took 80 fsyncs and 550 writes one by one;
//! - one whose file opens its own transaction (`BEGIN; … COMMIT;`, often
//!   around `PRAGMA foreign_keys=off`, which only works outside one) runs as
//!   the file says, with its ledger rows written right before its `COMMIT`;
//! - one its tool's marker (or a `VACUUM`) keeps outside a transaction runs
//!   statement by statement, and is recorded once it has succeeded.

use rusqlite::Connection;

use super::one_line;
use crate::db::DbError;
use crate::db::migrations::{Migration, Mode};

/// Applies `pending` in order; whatever fails, the ones before it stay.
pub(super) fn all(
    conn: &Connection,
    pending: &[&Migration],
    starting: &mut dyn FnMut(&Migration),
    record: &dyn Fn(&Connection, &Migration) -> rusqlite::Result<()>,
) -> Result<(), DbError> {
    let mut batch = Batch { conn, open: false };
    let mut result = Ok(());
    for migration in pending {
        starting(migration);
        result = batch.one(migration, record);
        if result.is_err() {
            break;
        }
    }
    batch.close(pending.first().map_or("", |m| m.name.as_str()))?;
    result
}

struct Batch<'a> {
    conn: &'a Connection,
    /// Whether the shared transaction is open.
    open: bool,
}

impl Batch<'_> {
    fn one(
        &mut self,
        migration: &Migration,
        record: &dyn Fn(&Connection, &Migration) -> rusqlite::Result<()>,
    ) -> Result<(), DbError> {
        let sql = migration.sql();
        let failed = failed(migration, "");
        match migration.mode()? {
            Mode::Wrapped => {
                if !self.open {
                    self.conn.execute_batch("BEGIN").map_err(&failed)?;
                    self.open = true;
                }
                self.conn
                    .execute_batch("SAVEPOINT provision_migration")
                    .map_err(&failed)?;
                let run = self
                    .conn
                    .execute_batch(&format!("{sql}\0"))
                    .map_err(failed_in(migration, sql))
                    .and_then(|()| record(self.conn, migration).map_err(&failed));
                if run.is_err() {
                    let _ = self.conn.execute_batch("ROLLBACK TO provision_migration");
                }
                self.conn
                    .execute_batch("RELEASE provision_migration")
                    .map_err(&failed)?;
                run
            }
            Mode::Outside { why } => {
                self.close(&migration.name)?;
                self.conn
                    .execute_batch(&format!("{sql}\0"))
                    .map_err(|e| outside_failed(migration, &why, e))?;
                self.in_transaction(|conn| record(conn, migration))
                    .map_err(&failed)
            }
            Mode::Own { commit_at } => {
                self.close(&migration.name)?;
                let (body, commit) = sql.split_at(commit_at);
                let run = self
                    .conn
                    .execute_batch(&format!("{body}\0"))
                    .map_err(failed_in(migration, sql))
                    .and_then(|()| record(self.conn, migration).map_err(&failed))
                    .and_then(|()| {
                        self.conn
                            .execute_batch(&format!("{commit}\0"))
                            .map_err(failed_in(migration, sql))
                    });
                if run.is_err() && !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                run
            }
        }
    }

    fn in_transaction(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        self.conn.execute_batch("BEGIN")?;
        match work(self.conn) {
            Ok(()) => self.conn.execute_batch("COMMIT"),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Commits the shared transaction, if open.
    fn close(&mut self, name: &str) -> Result<(), DbError> {
        if std::mem::take(&mut self.open) {
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| DbError::Migration {
                    file: name.to_string(),
                    message: format!("commit: {e}"),
                })?;
        }
        Ok(())
    }
}

fn failed<'a>(migration: &'a Migration, sql: &'a str) -> impl Fn(rusqlite::Error) -> DbError + 'a {
    move |e| DbError::Migration {
        file: migration.name.clone(),
        message: one_line(sql, e),
    }
}

fn failed_in<'a>(
    migration: &'a Migration,
    sql: &'a str,
) -> impl FnOnce(rusqlite::Error) -> DbError + 'a {
    move |e| failed(migration, sql)(e)
}

/// A migration outside a transaction may have left part of its changes.
fn outside_failed(migration: &Migration, why: &str, e: rusqlite::Error) -> DbError {
    DbError::Migration {
        file: migration.name.clone(),
        message: format!(
            "{} (it ran outside a transaction ({why}), so the statements before the failing one stay applied; it is not recorded)",
            one_line(migration.sql(), e)
        ),
    }
}
