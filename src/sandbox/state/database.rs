//! The database and its ledger against the wanted migrations (the plan's,
//! which are the migration files, for apply; the lock's record for verify),
//! and each migration's file against the checksum it is wanted with.

use crate::db::migrations::{Applied, Format, Migration, order};
use crate::sandbox::lock::Sandbox;
use crate::sandbox::observe::DatabaseSeen;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Apply creates it (then applies every migration); verify: "(missing)".
    Missing,
    /// There, without provision's mark: apply refuses to touch it; verify:
    /// "(not marked as provision's)".
    Unmarked,
    Ours,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseState {
    pub presence: Presence,
    /// The layout, whose tool's order the migrations apply in.
    pub format: Format,
    /// One per ledger row, in ledger order, then one per wanted migration
    /// no row records, in wanted order: the order apply checks them in.
    pub migrations: Vec<MigrationState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub name: String,
    pub ledger: Ledger,
    /// Only part of the ledger has the row: the part that lacks it. Apply
    /// completes the ledger (where the file is there); verify reports the
    /// row as that alone.
    pub missing_from: Option<&'static str>,
    pub file: MigrationFile,
}

/// What the ledger records of one migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ledger {
    /// Recorded as wanted.
    Applied,
    /// Recorded with another checksum: apply refuses (the file changed
    /// after it was applied); verify names both.
    Differs { recorded: String, wanted: String },
    /// Recorded, but not wanted: apply refuses (its file is gone); verify:
    /// not in the lock.
    Unwanted,
    /// Wanted, not recorded: apply applies it, or refuses when it sorts
    /// before `before`, the last one recorded; verify: not in the ledger.
    Pending { before: Option<String> },
}

/// A migration's file against the checksum it is wanted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationFile {
    /// The wanted checksum (or, where nothing wants it, just there).
    Same,
    /// Verify: edited after it was applied. (Apply wants the files as they
    /// are: a recorded row that differs is `Ledger::Differs`.)
    Edited { current: String },
    /// Apply refuses a recorded migration without its file; verify: gone.
    Gone,
}

/// One way the branch's migrations no longer extend the chain the
/// database has applied. Only a rebuild (`provision db reset`) brings such
/// a database to the branch: applying on top would not give the schema the
/// migrations describe.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Divergence {
    /// Applied, and its file changed since.
    Edited { name: String },
    /// Applied, and its file is gone from the branch.
    Gone { name: String },
    /// Not applied, and it sorts before `applied`, which is (a migration
    /// that came with a merge, say).
    Earlier { name: String, applied: String },
}

impl Divergence {
    fn words(&self) -> String {
        match self {
            Divergence::Edited { name } => format!("{name} was edited after it was applied"),
            Divergence::Gone { name } => format!("{name} was applied but its file is gone"),
            Divergence::Earlier { name, applied } => {
                format!("{name} is new but sorts before the applied {applied}")
            }
        }
    }
}

/// How apply and verify both say that a database diverged, in one
/// wording (after the database's name).
/// In the main checkout, whose database is the user's own data, nothing
/// rebuilds it on its own and `gc` never collects the one set aside.
pub fn diverged_message(found: &[Divergence], in_main: bool) -> String {
    let what = divergence_words(found);
    if in_main {
        return format!(
            "no longer matches this branch's migrations: {what}; \
             `provision db reset` rebuilds it from the migrations, keeping this one aside \
             (the main checkout's: `provision gc` leaves it to you); \
             `on_divergence = \"rebuild\"` never rebuilds the main checkout's database on its own"
        );
    }
    format!(
        "no longer matches this branch's migrations: {what}; \
         `provision db reset` rebuilds it from the migrations (keeping this one aside until the next `provision gc`), \
         or set `[database] on_divergence = \"rebuild\"` to have `provision apply` do so"
    )
}

/// What diverged, each part in its words.
pub fn divergence_words(found: &[Divergence]) -> String {
    let what: Vec<String> = found.iter().map(Divergence::words).collect();
    what.join("; ")
}

/// The checksum each migration was applied with, as best known: the lock's
/// record, else the file. (Part of a ledger may keep no checksum.)
pub fn known_checksums(locked: Option<&Sandbox>, files: &[Migration]) -> Vec<Applied> {
    let locked = locked
        .map(|p| p.database.migrations.as_slice())
        .unwrap_or_default();
    files
        .iter()
        .map(|f| {
            locked
                .iter()
                .find(|l| l.name == f.name)
                .cloned()
                .unwrap_or_else(|| f.record())
        })
        .collect()
}

/// `known`: the checksum a row that keeps none was applied with
/// (`known_checksums`); `format`: whose order applies.
pub fn database(
    format: Format,
    wanted: &[Applied],
    files: &[Migration],
    known: &[Applied],
    seen: &DatabaseSeen,
) -> DatabaseState {
    let presence = match (seen.exists, seen.marked) {
        (false, _) => Presence::Missing,
        (true, false) => Presence::Unmarked,
        (true, true) => Presence::Ours,
    };
    let file = |name: &str, want: Option<&Applied>| match files.iter().find(|f| f.name == name) {
        None => MigrationFile::Gone,
        Some(f) if want.is_some_and(|w| w.checksum != f.checksum) => MigrationFile::Edited {
            current: f.checksum.clone(),
        },
        Some(_) => MigrationFile::Same,
    };
    let mut migrations = Vec::new();
    for row in &seen.rows {
        let want = wanted.iter().find(|w| w.name == row.name);
        let recorded = row
            .checksum
            .clone()
            .or_else(|| {
                known
                    .iter()
                    .find(|k| k.name == row.name)
                    .map(|k| k.checksum.clone())
            })
            .unwrap_or_default();
        let ledger = match want {
            None => Ledger::Unwanted,
            Some(w) if w.checksum != recorded => Ledger::Differs {
                recorded,
                wanted: w.checksum.clone(),
            },
            Some(_) => Ledger::Applied,
        };
        migrations.push(MigrationState {
            name: row.name.clone(),
            ledger,
            missing_from: row.missing_from,
            file: file(&row.name, want),
        });
    }
    // Flyway's repeatables come after every versioned migration, whenever
    // they were applied: they put nothing out of order.
    let key = |name: &str| order::key(format, name);
    let last = seen
        .rows
        .iter()
        .map(|r| (key(&r.name), r.name.as_str()))
        .filter(|(k, _)| !k.is_repeatable())
        .max();
    for want in wanted
        .iter()
        .filter(|w| !seen.rows.iter().any(|r| r.name == w.name))
    {
        let at = key(&want.name);
        let before = last
            .as_ref()
            .filter(|(last, _)| !at.is_repeatable() && at < *last);
        migrations.push(MigrationState {
            name: want.name.clone(),
            ledger: Ledger::Pending {
                before: before.map(|(_, name)| name.to_string()),
            },
            missing_from: None,
            file: file(&want.name, Some(want)),
        });
    }
    DatabaseState {
        presence,
        format,
        migrations,
    }
}

impl DatabaseState {
    /// Whether `name` is a Flyway repeatable migration: applied again
    /// whenever its checksum changes, after every versioned one.
    pub fn is_repeatable(&self, name: &str) -> bool {
        order::key(self.format, name).is_repeatable()
    }

    /// The first state of migration `name`.
    pub fn of(&self, name: &str) -> Option<&MigrationState> {
        self.migrations.iter().find(|m| m.name == name)
    }

    /// The rows the whole ledger has, in its order.
    pub fn complete_rows(&self) -> impl Iterator<Item = &MigrationState> {
        self.migrations
            .iter()
            .filter(|m| m.is_recorded() && m.missing_from.is_none())
    }

    /// Where the branch's migrations (the wanted ones, as apply reads
    /// them) no longer extend what the database applied; empty when
    /// applying the pending ones on top brings it to the branch.
    pub fn divergence(&self) -> Vec<Divergence> {
        let mut found = Vec::new();
        for m in &self.migrations {
            let name = m.name.clone();
            found.push(match &m.ledger {
                // A changed repeatable is applied again: no divergence.
                Ledger::Differs { .. } | Ledger::Pending { .. }
                    if self.is_repeatable(&name) && m.file != MigrationFile::Gone =>
                {
                    continue;
                }
                _ if m.is_recorded() && m.file == MigrationFile::Gone => Divergence::Gone { name },
                Ledger::Differs { .. } => Divergence::Edited { name },
                Ledger::Pending {
                    before: Some(applied),
                } => Divergence::Earlier {
                    name,
                    applied: applied.clone(),
                },
                Ledger::Pending { before: None } | Ledger::Applied | Ledger::Unwanted => continue,
            });
        }
        found
    }

    /// How verify words whole rows out of their tool's order, the order
    /// migrations apply in. (Apply leaves the ledger as it is.)
    pub fn order_message(&self) -> Option<String> {
        let rows: Vec<(order::OrderKey, &str)> = self
            .complete_rows()
            .map(|m| (order::key(self.format, &m.name), m.name.as_str()))
            .filter(|(key, _)| !key.is_repeatable())
            .collect();
        if rows.is_sorted_by(|a, b| a.0 <= b.0) {
            return None;
        }
        let names: Vec<&str> = rows.iter().map(|(_, name)| *name).collect();
        Some(format!("applied out of order: {}", names.join(", ")))
    }
}

impl MigrationState {
    /// Whether some part of the ledger has its row.
    pub fn is_recorded(&self) -> bool {
        !matches!(self.ledger, Ledger::Pending { .. })
    }

    /// Only the tool's ledger has it, and its file is here: the tool
    /// applied it itself; apply records it, verify calls it stale.
    pub fn is_adoptable(&self) -> bool {
        self.missing_from == Some(crate::db::ledgers::OURS) && self.file != MigrationFile::Gone
    }

    /// How verify words a row only part of the ledger has.
    pub fn partial_message(&self) -> Option<String> {
        self.missing_from
            .map(|part| format!("ledger row missing from {part}"))
    }
}

impl Presence {
    /// How verify words it, after the database's name.
    pub fn message(self) -> Option<&'static str> {
        match self {
            Presence::Missing => Some("(missing)"),
            Presence::Unmarked => Some("(not marked as provision's)"),
            Presence::Ours => None,
        }
    }
}

impl Ledger {
    /// How verify words it.
    pub fn message(&self) -> Option<String> {
        Some(match self {
            Ledger::Applied => return None,
            Ledger::Differs { recorded, wanted } => {
                format!("the database's ledger records checksum {recorded}, the lock {wanted}")
            }
            Ledger::Unwanted => "in the database's ledger but not in the lock".into(),
            Ledger::Pending { .. } => "in the lock but not in the database's ledger".into(),
        })
    }
}

impl MigrationFile {
    /// How verify words it.
    pub fn message(&self) -> Option<&'static str> {
        match self {
            MigrationFile::Same => None,
            MigrationFile::Edited { .. } => Some("edited after it was applied"),
            MigrationFile::Gone => Some("applied, but its file is gone"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::db::LedgerRow;
    use crate::sandbox::lock;

    fn file(name: &str, checksum: &str) -> Migration {
        Migration {
            checksum: checksum.into(),
            ..Migration::flat(name, PathBuf::from(name), "")
        }
    }

    fn applied(name: &str, checksum: &str) -> Applied {
        Applied {
            name: name.into(),
            checksum: checksum.into(),
        }
    }

    fn row(name: &str, checksum: Option<&str>, missing_from: Option<&'static str>) -> LedgerRow {
        LedgerRow {
            name: name.into(),
            checksum: checksum.map(str::to_string),
            missing_from,
        }
    }

    fn ours(rows: Vec<LedgerRow>) -> DatabaseSeen {
        DatabaseSeen {
            exists: true,
            marked: true,
            rows,
        }
    }

    fn files() -> Vec<Migration> {
        vec![
            file("1.sql", "c1"),
            file("2.sql", "c2"),
            file("3.sql", "c3"),
        ]
    }

    /// As apply reads it: the files are what is wanted.
    fn for_apply(seen: &DatabaseSeen) -> DatabaseState {
        let files = files();
        let wanted: Vec<Applied> = files.iter().map(Migration::record).collect();
        database(
            Format::Flat,
            &wanted,
            &files,
            &known_checksums(None, &files),
            seen,
        )
    }

    fn ledgers(state: &DatabaseState) -> Vec<(&str, Ledger)> {
        state
            .migrations
            .iter()
            .map(|m| (m.name.as_str(), m.ledger.clone()))
            .collect()
    }

    #[test]
    fn a_missing_database_has_every_migration_pending() {
        let state = for_apply(&DatabaseSeen::default());
        assert_eq!(state.presence, Presence::Missing);
        let pending = Ledger::Pending { before: None };
        assert_eq!(
            ledgers(&state),
            [
                ("1.sql", pending.clone()),
                ("2.sql", pending.clone()),
                ("3.sql", pending)
            ]
        );
        let unmarked = DatabaseSeen {
            exists: true,
            ..DatabaseSeen::default()
        };
        assert_eq!(for_apply(&unmarked).presence, Presence::Unmarked);
    }

    #[test]
    fn rows_come_first_in_ledger_order_then_what_is_pending() {
        let seen = ours(vec![
            row("2.sql", Some("edited"), None),
            row("9.sql", Some("c9"), None),
        ]);
        let state = for_apply(&seen);
        assert_eq!(
            ledgers(&state),
            [
                (
                    "2.sql",
                    Ledger::Differs {
                        recorded: "edited".into(),
                        wanted: "c2".into()
                    }
                ),
                ("9.sql", Ledger::Unwanted),
                (
                    "1.sql",
                    Ledger::Pending {
                        before: Some("9.sql".into())
                    }
                ),
                (
                    "3.sql",
                    Ledger::Pending {
                        before: Some("9.sql".into())
                    }
                ),
            ]
        );
        assert_eq!(state.of("9.sql").unwrap().file, MigrationFile::Gone);
        assert_eq!(state.of("2.sql").unwrap().file, MigrationFile::Same);
    }

    #[test]
    fn a_row_without_a_checksum_was_applied_with_the_best_known_one() {
        let seen = ours(vec![
            row("1.sql", None, Some("provision_migrations")),
            row("2.sql", Some("c2"), Some("d1_migrations")),
        ]);
        let files = files();
        let lock = lock_recording(vec![applied("1.sql", "locked")]);
        let known = known_checksums(Some(&lock), &files);
        let wanted: Vec<Applied> = files.iter().map(Migration::record).collect();
        let state = database(Format::Flat, &wanted, &files, &known, &seen);
        assert_eq!(
            state.migrations[0].ledger,
            Ledger::Differs {
                recorded: "locked".into(),
                wanted: "c1".into()
            }
        );
        assert_eq!(state.migrations[1].ledger, Ledger::Applied);
        assert_eq!(
            state.migrations[1].partial_message().unwrap(),
            "ledger row missing from d1_migrations"
        );
        // Only whole rows count for the ledger's order and the diff.
        assert_eq!(state.complete_rows().count(), 0);
    }

    #[test]
    fn against_the_lock_files_may_be_edited_or_gone() {
        let wanted = [
            applied("1.sql", "c1"),
            applied("2.sql", "old"),
            applied("4.sql", "c4"),
        ];
        let seen = ours(vec![row("1.sql", Some("c1"), None)]);
        let state = database(Format::Flat, &wanted, &files(), &[], &seen);
        assert_eq!(state.of("1.sql").unwrap().file, MigrationFile::Same);
        assert_eq!(
            state.of("2.sql").unwrap().file,
            MigrationFile::Edited {
                current: "c2".into()
            }
        );
        assert_eq!(state.of("4.sql").unwrap().file, MigrationFile::Gone);
        assert!(state.of("3.sql").is_none(), "nothing wants 3.sql");
    }

    #[test]
    fn whole_rows_out_of_lexical_order_are_named_in_ledger_order() {
        let seen = ours(vec![
            row("2.sql", Some("c2"), None),
            row("0.sql", Some("c0"), Some("d1_migrations")),
            row("1.sql", Some("c1"), None),
        ]);
        assert_eq!(
            for_apply(&seen).order_message().unwrap(),
            "applied out of order: 2.sql, 1.sql"
        );
        let sorted = ours(vec![row("1.sql", Some("c1"), None)]);
        assert_eq!(for_apply(&sorted).order_message(), None);
    }

    fn lock_recording(migrations: Vec<Applied>) -> Sandbox {
        Sandbox {
            version: lock::VERSION,
            worktree: "a".into(),
            recipe: String::new(),
            links: vec![],
            env: None,
            database: lock::DatabaseLock {
                kind: crate::recipe::config::DatabaseKind::Sqlite,
                name: "app_a".into(),
                location: "sqlite".into(),
                migrations,
                chain: String::new(),
            },
            port: 20001,
            ports: Default::default(),
            setup: vec![],
        }
    }
}
