//! The database and its ledger against the wanted migrations (the plan's,
//! which are the migration files, for apply; the lock's record for verify),
//! and each migration's file against the checksum it is wanted with.

use crate::db::migrations::{Applied, Migration};
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

pub fn database(
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
    let last = seen.rows.iter().map(|r| r.name.as_str()).max();
    for want in wanted
        .iter()
        .filter(|w| !seen.rows.iter().any(|r| r.name == w.name))
    {
        let before = last.filter(|last| want.name.as_str() < *last);
        migrations.push(MigrationState {
            name: want.name.clone(),
            ledger: Ledger::Pending {
                before: before.map(str::to_string),
            },
            missing_from: None,
            file: file(&want.name, Some(want)),
        });
    }
    DatabaseState {
        presence,
        migrations,
    }
}

impl DatabaseState {
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

    /// The whole rows' names when they are not in lexical order, the order
    /// migrations apply in. (Apply leaves the ledger as it is.)
    pub fn out_of_order(&self) -> Option<Vec<&str>> {
        let names: Vec<&str> = self.complete_rows().map(|m| m.name.as_str()).collect();
        (!names.is_sorted()).then_some(names)
    }
}

impl MigrationState {
    /// Whether some part of the ledger has its row.
    pub fn is_recorded(&self) -> bool {
        !matches!(self.ledger, Ledger::Pending { .. })
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
