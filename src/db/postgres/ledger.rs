//! The sandbox's ledger on PostgreSQL: `public.provision_migrations` and,
//! beside it, the migration tool's own table (`db::ledgers`).

use postgres::{Client, GenericClient};

use super::failed;
use crate::db::ledgers::{self, OURS, ToolLedger};
use crate::db::migrations::Applied;
use crate::db::{DbError, Ledger};

fn has_table(client: &mut impl GenericClient, table: &str) -> Result<bool, postgres::Error> {
    let row = client.query_one(
        "SELECT to_regclass($1) IS NOT NULL",
        &[&format!("public.{table}")],
    )?;
    Ok(row.get(0))
}

/// The schema of a ledger an older provision made outside `public` (the
/// first of `search_path`, where it did not name one): read as none, it
/// would have every migration applied again.
fn elsewhere(client: &mut Client) -> Result<Option<String>, postgres::Error> {
    let row = client.query_opt(
        "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relname = 'provision_migrations' AND n.nspname <> 'public' \
         AND to_regclass('public.provision_migrations') IS NULL LIMIT 1",
        &[],
    )?;
    Ok(row.map(|r| r.get(0)))
}

/// Both ledgers of database `name`, merged (see `ledgers::merge`).
pub(super) fn read(
    client: &mut Client,
    name: &str,
    tool: Option<&ToolLedger>,
) -> Result<Ledger, DbError> {
    let fail = failed(name, &format!("read {OURS}"));
    if let Some(schema) = elsewhere(client).map_err(&fail)? {
        return Err(DbError::LedgerElsewhere {
            name: name.to_string(),
            schema,
        });
    }
    let ours = if has_table(client, OURS).map_err(&fail)? {
        client
            .query(
                "SELECT name, checksum FROM public.provision_migrations ORDER BY id",
                &[],
            )
            .map_err(&fail)?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    } else {
        Vec::new()
    };
    let tool = match tool {
        Some(tool) => {
            let fail = failed(name, &format!("read {}", tool.table()));
            let rows = if has_table(client, tool.table()).map_err(&fail)? {
                client
                    .query(&tool.select(), &[])
                    .map_err(&fail)?
                    .into_iter()
                    .map(|r| (0..r.len()).map(|i| r.get(i)).collect())
                    .collect()
            } else {
                Vec::new()
            };
            Some((tool.table(), tool.applied(&rows)))
        }
        None => None,
    };
    Ok(ledgers::merge(ours, tool))
}

/// Completes rows only one ledger has: provision records what the tool
/// applied itself (with the best checksum known: the lock's, else the
/// file's), and the tool's ledger gets what provision applied.
pub(super) fn repair(
    client: &mut Client,
    name: &str,
    tool: Option<&ToolLedger>,
    known: &[Applied],
) -> Result<(), DbError> {
    let ledger = read(client, name, tool)?;
    let fail = failed(name, "repair the ledger");
    let mut tx = client.transaction().map_err(&fail)?;
    for row in &ledger.rows {
        match (row.missing_from, tool) {
            (Some(OURS), _) => {
                let Some(known) = known.iter().find(|k| k.name == row.name) else {
                    continue;
                };
                tx.execute(
                    "INSERT INTO public.provision_migrations(name, checksum) VALUES($1, $2)",
                    &[&row.name, &known.checksum],
                )
                .map_err(&fail)?;
            }
            (Some(_), Some(tool)) => {
                if let Some(sql) = tool.record_name(&row.name) {
                    tx.batch_execute(&tool.create()).map_err(&fail)?;
                    tx.batch_execute(&sql).map_err(&fail)?;
                }
            }
            _ => {}
        }
    }
    tx.commit().map_err(fail)
}
