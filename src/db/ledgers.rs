//! The ledger each migration tool reads, written beside provision's own
//! `provision_migrations` in the same transaction, exactly as the tool
//! writes it, so the tool run in a sandbox sees the database as its own and
//! carries on from there; and read back, so a migration the tool applied
//! itself is adopted (recorded, not run again).
//!
//! | layout | table | a row |
//! | --- | --- | --- |
//! | flat, on SQLite | `d1_migrations` (wrangler) | the file name |
//! | golang-migrate | `schema_migrations(version, dirty)` | one row: the last version |
//! | sqlx | `_sqlx_migrations` | version, description, SHA-384 |
//! | diesel | `__diesel_schema_migrations` | version |
//! | Prisma | `_prisma_migrations` | folder name, SHA-256 |
//! | dbmate | `schema_migrations(version)` | version |
//! | goose | `goose_db_version` | version, is_applied |
//! | Flyway | `flyway_schema_history` | rank, version, script, CRC-32 |
//!
//! Statements carry their values as literals (numbers, hex, quoted text),
//! so one text serves both databases; PostgreSQL names are qualified with
//! `public`, where the tools keep them by default, since a migration may
//! empty `search_path`.

use std::collections::{HashMap, HashSet};

use super::{Ledger, LedgerRow};
use crate::db::migrations::{Format, Migration, order};

pub const OURS: &str = "provision_migrations";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One tool's ledger in one database, and the migration files its rows
/// name (a row holds a version; the lock and provision name files).
#[derive(Debug, Clone)]
pub struct ToolLedger {
    format: Format,
    dialect: Dialect,
    files: Vec<Migration>,
}

impl ToolLedger {
    /// `None` where the layout has no tool ledger (flat on PostgreSQL).
    pub fn new(format: Format, dialect: Dialect, files: &[Migration]) -> Option<ToolLedger> {
        if format == Format::Flat && dialect == Dialect::Postgres {
            return None;
        }
        Some(ToolLedger {
            format,
            dialect,
            files: files.to_vec(),
        })
    }

    pub fn table(&self) -> &'static str {
        match self.format {
            Format::Flat => "d1_migrations",
            Format::GolangMigrate | Format::Dbmate => "schema_migrations",
            Format::Sqlx => "_sqlx_migrations",
            Format::Diesel => "__diesel_schema_migrations",
            Format::Prisma => "_prisma_migrations",
            Format::Goose => "goose_db_version",
            Format::Flyway => "flyway_schema_history",
        }
    }

    fn name(&self) -> String {
        match self.dialect {
            Dialect::Sqlite => self.table().to_string(),
            Dialect::Postgres => format!("public.{}", self.table()),
        }
    }

    fn pg(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    /// Creates the table as the tool does, if it is not there.
    pub fn create(&self) -> String {
        let t = self.name();
        let pg = self.pg();
        let (now, timestamp) = if pg {
            ("now()", "timestamptz")
        } else {
            ("CURRENT_TIMESTAMP", "TIMESTAMP")
        };
        match self.format {
            Format::Flat => format!(
                "CREATE TABLE IF NOT EXISTS {t}(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, \
                 applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
            ),
            Format::GolangMigrate if pg => format!(
                "CREATE TABLE IF NOT EXISTS {t} (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
            ),
            Format::GolangMigrate => format!(
                "CREATE TABLE IF NOT EXISTS {t} (version uint64, dirty bool);\n\
                 CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON {t} (version)"
            ),
            Format::Sqlx => format!(
                "CREATE TABLE IF NOT EXISTS {t} (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
                 installed_on {timestamp} NOT NULL DEFAULT {now}, success BOOLEAN NOT NULL, \
                 checksum {} NOT NULL, execution_time BIGINT NOT NULL)",
                if pg { "BYTEA" } else { "BLOB" }
            ),
            Format::Diesel => format!(
                "CREATE TABLE IF NOT EXISTS {t} (version VARCHAR(50) PRIMARY KEY NOT NULL, \
                 run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            ),
            Format::Prisma => format!(
                "CREATE TABLE IF NOT EXISTS {t} (id VARCHAR(36) PRIMARY KEY NOT NULL, \
                 checksum VARCHAR(64) NOT NULL, finished_at {timestamp}, migration_name VARCHAR(255) NOT NULL, \
                 logs TEXT, rolled_back_at {timestamp}, started_at {timestamp} NOT NULL DEFAULT {now}, \
                 applied_steps_count INTEGER NOT NULL DEFAULT 0)"
            ),
            Format::Dbmate => {
                format!("CREATE TABLE IF NOT EXISTS {t} (version varchar(128) PRIMARY KEY)")
            }
            Format::Goose => format!(
                "CREATE TABLE IF NOT EXISTS {t} ({}, version_id bigint NOT NULL, is_applied boolean NOT NULL, \
                 tstamp timestamp NULL DEFAULT {});\n\
                 INSERT INTO {t} (version_id, is_applied) SELECT 0, true WHERE NOT EXISTS (SELECT 1 FROM {t})",
                if pg {
                    "id serial PRIMARY KEY"
                } else {
                    "id INTEGER PRIMARY KEY AUTOINCREMENT"
                },
                if pg { "now()" } else { "(datetime('now'))" }
            ),
            Format::Flyway => format!(
                "CREATE TABLE IF NOT EXISTS {t} (installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), \
                 description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, \
                 checksum INT, installed_by VARCHAR(100) NOT NULL, installed_on {} NOT NULL DEFAULT {}, \
                 execution_time INT NOT NULL, success BOOLEAN NOT NULL);\n\
                 CREATE INDEX IF NOT EXISTS flyway_schema_history_s_idx ON {t} (success)",
                if pg { "TIMESTAMP" } else { "TEXT" },
                if pg {
                    "now()"
                } else {
                    "(strftime('%Y-%m-%d %H:%M:%f', 'now'))"
                }
            ),
        }
    }

    /// Records `m` as the tool records a migration it applied.
    pub fn record(&self, m: &Migration) -> String {
        let t = self.name();
        let text = |s: &str| quote(s, self.pg());
        let v = &m.version;
        match self.format {
            Format::Flat => format!("INSERT INTO {t}(name) VALUES({})", text(&m.name)),
            // One row, the last version applied.
            Format::GolangMigrate => format!(
                "UPDATE {t} SET version = {v}, dirty = false WHERE version < {v};\n\
                 INSERT INTO {t} (version, dirty) SELECT {v}, false WHERE NOT EXISTS (SELECT 1 FROM {t})"
            ),
            Format::Sqlx => format!(
                "INSERT INTO {t} (version, description, success, checksum, execution_time) \
                 VALUES ({v}, {}, true, {}, 0)",
                text(&m.description),
                if self.pg() {
                    format!("decode('{}', 'hex')", m.tool_checksum)
                } else {
                    format!("X'{}'", m.tool_checksum)
                }
            ),
            Format::Diesel | Format::Dbmate => {
                format!("INSERT INTO {t} (version) VALUES ({})", text(v))
            }
            Format::Prisma => format!(
                "INSERT INTO {t} (id, checksum, finished_at, migration_name, started_at, applied_steps_count) \
                 VALUES ({}, {}, {now}, {}, {now}, 1)",
                text(&uuid(&m.name)),
                text(&m.tool_checksum),
                text(v),
                now = if self.pg() {
                    "now()"
                } else {
                    "CURRENT_TIMESTAMP"
                }
            ),
            Format::Goose => {
                format!("INSERT INTO {t} (version_id, is_applied) VALUES ({v}, true)")
            }
            Format::Flyway => format!(
                "INSERT INTO {t} (installed_rank, version, description, type, script, checksum, installed_by, \
                 execution_time, success) \
                 SELECT COALESCE(MAX(installed_rank), 0) + 1, {}, {}, 'SQL', {}, {}, {}, 0, true FROM {t}",
                if v.is_empty() { "NULL".into() } else { text(v) },
                text(&m.description),
                text(&m.name),
                m.tool_checksum,
                if self.pg() { "current_user" } else { "''" }
            ),
        }
    }

    /// Rows of text naming what the tool counts as applied, in the tool's
    /// order. (Columns cast to text get other names, or PostgreSQL would
    /// order by the text.)
    pub fn select(&self) -> String {
        let t = self.name();
        match self.format {
            Format::Flat => format!("SELECT name FROM {t} ORDER BY id"),
            Format::GolangMigrate => {
                format!("SELECT CAST(version AS TEXT) AS v, CAST(dirty AS TEXT) AS d FROM {t}")
            }
            Format::Sqlx => {
                format!("SELECT CAST(version AS TEXT) AS v FROM {t} WHERE success ORDER BY version")
            }
            Format::Diesel | Format::Dbmate => {
                format!("SELECT CAST(version AS TEXT) AS v FROM {t} ORDER BY version")
            }
            Format::Prisma => format!(
                "SELECT migration_name FROM {t} WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL \
                 ORDER BY started_at"
            ),
            Format::Goose => format!(
                "SELECT CAST(version_id AS TEXT) AS v, CAST(is_applied AS TEXT) AS a FROM {t} ORDER BY id DESC"
            ),
            Format::Flyway => format!(
                "SELECT COALESCE(version, ''), script FROM {t} WHERE success ORDER BY installed_rank"
            ),
        }
    }

    /// The names of the migrations `rows` (from `select`) count as
    /// applied. A row whose file is gone names nothing: a version alone
    /// says nothing provision could check.
    pub fn applied(&self, rows: &[Vec<Option<String>>]) -> Vec<String> {
        let cell = |row: &Vec<Option<String>>, i: usize| row.get(i).cloned().flatten();
        let by_version = |versions: Vec<String>| -> Vec<String> {
            versions
                .iter()
                .filter_map(|v| self.files.iter().find(|f| &f.version == v))
                .map(|f| f.name.clone())
                .collect()
        };
        let truthy = |s: Option<String>| matches!(s.as_deref(), Some("true" | "1" | "t"));
        match self.format {
            Format::Flat => rows.iter().filter_map(|r| cell(r, 0)).collect(),
            Format::GolangMigrate => {
                let Some(row) = rows.first() else {
                    return Vec::new();
                };
                let last: u128 = cell(row, 0).and_then(|v| v.parse().ok()).unwrap_or(0);
                let dirty = truthy(cell(row, 1));
                self.files
                    .iter()
                    .filter(|f| {
                        let n = order::key(self.format, &f.name);
                        matches!(n, order::OrderKey::Number(n, _) if n < last || (n == last && !dirty))
                    })
                    .map(|f| f.name.clone())
                    .collect()
            }
            Format::Sqlx | Format::Diesel | Format::Dbmate | Format::Prisma => {
                by_version(rows.iter().filter_map(|r| cell(r, 0)).collect())
            }
            // The latest row of each version says whether it is applied.
            Format::Goose => {
                let mut seen = HashSet::new();
                let mut applied = Vec::new();
                for row in rows {
                    let Some(version) = cell(row, 0) else {
                        continue;
                    };
                    if version != "0" && seen.insert(version.clone()) && truthy(cell(row, 1)) {
                        applied.push(version);
                    }
                }
                applied.reverse();
                by_version(applied)
            }
            // Versions in the order they were installed; repeatables, which
            // may have run many times, after them by name (Flyway's order).
            Format::Flyway => {
                let (mut versioned, mut repeatable) = (Vec::new(), Vec::new());
                for row in rows {
                    match cell(row, 0).filter(|v| !v.is_empty()) {
                        Some(version) => versioned.extend(by_version(vec![version])),
                        None => repeatable.extend(
                            cell(row, 1).filter(|s| self.files.iter().any(|f| &f.name == s)),
                        ),
                    }
                }
                repeatable.sort();
                repeatable.dedup();
                versioned.extend(repeatable);
                versioned
            }
        }
    }

    /// `record` for the migration named `name`: its file, or for
    /// wrangler's ledger, which keeps only the name, the name alone.
    pub fn record_name(&self, name: &str) -> Option<String> {
        match self.files.iter().find(|f| f.name == name) {
            Some(file) => Some(self.record(file)),
            None if self.format == Format::Flat => {
                Some(self.record(&Migration::flat(name, name.into(), "")))
            }
            None => None,
        }
    }
}

/// provision's rows (name, checksum) and the tool's, as one ledger: a row
/// only one of them has names the other as missing it. The tool's order
/// comes first, as wrangler's ledger always did: a row provision adopts
/// later keeps its place in it.
pub fn merge(ours: Vec<(String, String)>, tool: Option<(&'static str, Vec<String>)>) -> Ledger {
    let Some((table, names)) = tool else {
        let rows = ours
            .into_iter()
            .map(|(name, checksum)| LedgerRow {
                name,
                checksum: Some(checksum),
                missing_from: None,
            })
            .collect();
        return Ledger { rows };
    };
    let checksums: HashMap<&str, &str> = ours
        .iter()
        .map(|(name, checksum)| (name.as_str(), checksum.as_str()))
        .collect();
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for name in &names {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let checksum = checksums.get(name.as_str()).map(|c| c.to_string());
        rows.push(LedgerRow {
            name: name.clone(),
            missing_from: checksum.is_none().then_some(OURS),
            checksum,
        });
    }
    for (name, checksum) in &ours {
        if !seen.contains(name.as_str()) {
            rows.push(LedgerRow {
                name: name.clone(),
                checksum: Some(checksum.clone()),
                missing_from: Some(table),
            });
        }
    }
    Ledger { rows }
}

/// A string literal; on PostgreSQL one that reads the same whatever a
/// migration set `standard_conforming_strings` to.
fn quote(text: &str, pg: bool) -> String {
    if pg {
        crate::db::postgres::quote_literal(text)
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// A version-4-shaped UUID for Prisma's `id`, unique per name and moment.
fn uuid(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{name}\0{nanos}\0{}", std::process::id());
    let hex = blake3::hash(seed.as_bytes()).to_hex();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
#[path = "ledgers_tests.rs"]
mod tests;
