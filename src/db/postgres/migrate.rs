//! Applying migrations on PostgreSQL, each atomic with its ledger row:
//! in a transaction of its own; as the file says when it opens its own
//! (`BEGIN; … COMMIT;`), with its row written before its `COMMIT`; or
//! statement by statement outside any, as its tool's marker or a statement
//! like `CREATE INDEX CONCURRENTLY` needs (PostgreSQL runs the statements
//! of one query string as one transaction), recorded once it succeeded.
//!
//! Every migration starts with the session as a new connection has it
//! (`RESET ALL`, and the role and session authorization, which it keeps):
//! one that empties `search_path` or sets a role must not change how the
//! next one, or provision's own ledger, resolves names or is allowed.

use postgres::{Client, GenericClient};

use super::{LEDGER, server_message};
use crate::db::DbError;
use crate::db::ledgers::ToolLedger;
use crate::db::migrations::{Migration, Mode, statements};

/// The session as a new connection has it. `RESET ALL` leaves the role
/// and the session authorization as they are: a migration that set one
/// would run the next, and write provision's ledger, as that role.
pub(super) const RESET: &str = "RESET ALL; RESET SESSION AUTHORIZATION; RESET ROLE";

pub(super) fn all(
    client: &mut Client,
    tool: Option<&ToolLedger>,
    pending: &[&Migration],
    starting: &mut dyn FnMut(&Migration),
) -> Result<(), DbError> {
    for migration in pending {
        starting(migration);
        one(client, tool, migration)?;
    }
    Ok(())
}

fn failed(migration: &Migration) -> impl Fn(postgres::Error) -> DbError + '_ {
    move |e| DbError::Migration {
        file: migration.name.clone(),
        message: server_message(&e),
    }
}

fn one(
    client: &mut Client,
    tool: Option<&ToolLedger>,
    migration: &Migration,
) -> Result<(), DbError> {
    let failed = failed(migration);
    client.batch_execute(RESET).map_err(&failed)?;
    client.batch_execute(LEDGER).map_err(&failed)?;
    if recorded(client, migration)? {
        return Ok(());
    }
    let sql = migration.sql();
    match migration.mode()? {
        Mode::Wrapped => {
            let mut tx = client.transaction().map_err(&failed)?;
            tx.batch_execute(sql).map_err(&failed)?;
            record(&mut tx, tool, migration)?;
            tx.commit().map_err(&failed)
        }
        Mode::Outside { why } => {
            for statement in statements::split(sql) {
                let text = &sql[statement.head..statement.end];
                client.batch_execute(text).map_err(|e| DbError::Migration {
                    file: migration.name.clone(),
                    message: format!(
                        "line {}: {} (it ran outside a transaction ({why}), so the statements before this one stay applied; it is not recorded)",
                        statements::line_of(sql, statement.head),
                        server_message(&e)
                    ),
                })?;
            }
            client.batch_execute(RESET).map_err(&failed)?;
            let mut tx = client.transaction().map_err(&failed)?;
            record(&mut tx, tool, migration)?;
            tx.commit().map_err(&failed)
        }
        Mode::Own { commit_at } => {
            let (body, commit) = sql.split_at(commit_at);
            // Its own BEGIN leaves the session inside its transaction: the
            // row goes in there, and its COMMIT commits both.
            let run = client
                .batch_execute(body)
                .map_err(&failed)
                .and_then(|()| record(client, tool, migration))
                .and_then(|()| client.batch_execute(commit).map_err(&failed));
            if run.is_err() {
                let _ = client.batch_execute("ROLLBACK");
            }
            run
        }
    }
}

/// Whether another run recorded it meanwhile (checked under the lock).
fn recorded(client: &mut Client, migration: &Migration) -> Result<bool, DbError> {
    let row = client
        .query_opt(
            "SELECT checksum FROM public.provision_migrations WHERE name = $1",
            &[&migration.name],
        )
        .map_err(failed(migration))?;
    let Some(row) = row else {
        return Ok(false);
    };
    let checksum: String = row.get(0);
    if checksum == migration.checksum {
        return Ok(true);
    }
    if migration.repeatable {
        return Ok(false);
    }
    Err(DbError::Migration {
        file: migration.name.clone(),
        message: format!(
            "another run recorded it with checksum {checksum}, the file has {}",
            migration.checksum
        ),
    })
}

/// Its rows in provision's ledger and its tool's, in the caller's transaction.
fn record(
    client: &mut impl GenericClient,
    tool: Option<&ToolLedger>,
    migration: &Migration,
) -> Result<(), DbError> {
    // As the session's own user, whatever role the migration set: the
    // ledger is provision's. In the migration's transaction, so kept.
    client
        .batch_execute("RESET SESSION AUTHORIZATION; RESET ROLE")
        .map_err(failed(migration))?;
    client
        .execute(
            "INSERT INTO public.provision_migrations(name, checksum) VALUES($1, $2) \
             ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
            &[&migration.name, &migration.checksum],
        )
        .map_err(failed(migration))?;
    if let Some(tool) = tool {
        let sql = format!("{};\n{}", tool.create(), tool.record(migration));
        client.batch_execute(&sql).map_err(failed(migration))?;
    }
    Ok(())
}
