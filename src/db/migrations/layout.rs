//! The layouts real tools write their migrations in, recognised from the
//! folder's files (or forced by `[database] format`), and what each file is
//! to provision: a migration (and which part of it is "up"), a companion it
//! never applies (a down file, `metadata.toml`, Prisma's lock), or SQL the
//! layout would skip, which is an error rather than a quiet gap.
//!
//! Pure: the folder comes in as a list of entries, read from a checkout or
//! from git's objects alike.

use serde::{Deserialize, Serialize};

use super::Migration;
use super::order::{self, OrderKey};
use super::sections::{self, Up};
use super::tools;
use crate::hash;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Flat,
    GolangMigrate,
    Sqlx,
    Diesel,
    Prisma,
    Dbmate,
    Goose,
    Flyway,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Flat,
        Format::GolangMigrate,
        Format::Sqlx,
        Format::Diesel,
        Format::Prisma,
        Format::Dbmate,
        Format::Goose,
        Format::Flyway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Flat => "flat",
            Format::GolangMigrate => "golang-migrate",
            Format::Sqlx => "sqlx",
            Format::Diesel => "diesel",
            Format::Prisma => "prisma",
            Format::Dbmate => "dbmate",
            Format::Goose => "goose",
            Format::Flyway => "flyway",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// A file of the migrations folder: its path in it (`/`-separated, at most
/// one folder deep) and, for `.sql` and `.toml` files, its bytes.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub bytes: Vec<u8>,
}

impl Entry {
    /// Whether `layout` needs the file's bytes.
    pub fn is_read(path: &str) -> bool {
        path.ends_with(".sql") || path.ends_with(".toml")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error(
        "mixes layouts: {first} ({first_layout}) and {second} ({second_layout}); keep one layout per folder, or set `[database] format` in provision.toml"
    )]
    Mixed {
        first: String,
        first_layout: &'static str,
        second: String,
        second_layout: &'static str,
    },
    #[error(
        "{file} is not a migration of the {format} layout and would be skipped; rename or move it, or set `[database] format` in provision.toml"
    )]
    Stray { file: String, format: &'static str },
    #[error(
        "{first} and {second} have the same version; the {format} layout needs one file per version"
    )]
    SameVersion {
        first: String,
        second: String,
        format: &'static str,
    },
}

/// The shape of one entry, before a layout is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Flat,
    Up,
    Down,
    DieselUp,
    DieselDown,
    DieselMeta,
    PrismaUp,
    PrismaLock,
    FlywayVersioned,
    FlywayRepeatable,
    FlywayUndo,
    Dbmate,
    Goose,
    /// A `.sql` file no layout places where it is.
    StraySql,
    /// Not SQL: no layout applies it (a README, another tool's `.js`).
    Other,
    /// Hidden files (`.keep`, `.gitkeep`).
    Hidden,
}

fn shape(entry: &Entry) -> Shape {
    let (dir, file) = match entry.path.split_once('/') {
        Some((dir, file)) => (Some(dir), file),
        None => (None, entry.path.as_str()),
    };
    if file.starts_with('.') || dir.is_some_and(|d| d.starts_with('.')) {
        return Shape::Hidden;
    }
    if dir.is_some() {
        return match file {
            "up.sql" => Shape::DieselUp,
            "down.sql" => Shape::DieselDown,
            "metadata.toml" => Shape::DieselMeta,
            "migration.sql" => Shape::PrismaUp,
            f if f.ends_with(".sql") => Shape::StraySql,
            _ => Shape::Other,
        };
    }
    if file == "migration_lock.toml" {
        return Shape::PrismaLock;
    }
    if !file.ends_with(".sql") {
        return Shape::Other;
    }
    if file.ends_with(".up.sql") {
        return Shape::Up;
    }
    if file.ends_with(".down.sql") {
        return Shape::Down;
    }
    let text = String::from_utf8_lossy(&entry.bytes);
    if sections::is_goose(&text) {
        Shape::Goose
    } else if sections::is_dbmate(&text) {
        Shape::Dbmate
    } else if order::flyway_version(file).is_some() {
        Shape::FlywayVersioned
    } else if file.starts_with("R__") {
        Shape::FlywayRepeatable
    } else if file.starts_with('U') && order::flyway_version(&file.replacen('U', "V", 1)).is_some()
    {
        Shape::FlywayUndo
    } else {
        Shape::Flat
    }
}

/// The layout a shape belongs to, for detection: the format it means
/// alone, and how it is named in errors.
fn family(shape: Shape) -> Option<(Format, &'static str)> {
    Some(match shape {
        Shape::Flat => (Format::Flat, "flat *.sql"),
        Shape::Up | Shape::Down => (Format::GolangMigrate, "up/down files"),
        Shape::DieselUp | Shape::DieselDown => (Format::Diesel, "diesel folders"),
        Shape::PrismaUp => (Format::Prisma, "Prisma folders"),
        Shape::FlywayVersioned | Shape::FlywayRepeatable | Shape::FlywayUndo => {
            (Format::Flyway, "Flyway versions")
        }
        Shape::Dbmate => (Format::Dbmate, "dbmate sections"),
        Shape::Goose => (Format::Goose, "goose annotations"),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Migration,
    /// Part of the layout, never applied (down files, metadata).
    Companion,
    /// SQL the layout would skip: an error.
    Stray,
    Ignored,
}

fn role(format: Format, shape: Shape) -> Role {
    use Shape as S;
    let flyway_named = matches!(
        shape,
        S::FlywayVersioned | S::FlywayRepeatable | S::FlywayUndo
    );
    match (format, shape) {
        (Format::Prisma, S::PrismaLock) | (Format::Diesel, S::DieselMeta) => Role::Companion,
        (_, S::Other | S::Hidden | S::PrismaLock | S::DieselMeta) => Role::Ignored,
        (Format::Flat | Format::Sqlx, S::Flat) => Role::Migration,
        (Format::Flat | Format::Sqlx, _) if flyway_named => Role::Migration,
        (Format::Sqlx | Format::GolangMigrate, S::Up) => Role::Migration,
        (Format::Sqlx | Format::GolangMigrate, S::Down) => Role::Companion,
        (Format::Diesel, S::DieselUp) | (Format::Prisma, S::PrismaUp) => Role::Migration,
        (Format::Diesel, S::DieselDown) => Role::Companion,
        (Format::Flyway, S::FlywayVersioned | S::FlywayRepeatable) => Role::Migration,
        (Format::Flyway, S::FlywayUndo) => Role::Companion,
        (Format::Dbmate, S::Dbmate) | (Format::Goose, S::Goose) => Role::Migration,
        _ => Role::Stray,
    }
}

/// What the folder holds: its layout, its migrations in the tool's order,
/// and the files no layout applies (for the "none recognised" warning).
#[derive(Debug, Clone)]
pub struct Read {
    pub format: Format,
    pub migrations: Vec<Migration>,
    pub unrecognised: Vec<String>,
}

/// Reads `entries` as `forced` says, else as the layout they show.
pub fn read(entries: &[Entry], forced: Option<Format>) -> Result<Read, LayoutError> {
    let mut entries: Vec<&Entry> = entries.iter().collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let shapes: Vec<Shape> = entries.iter().map(|e| shape(e)).collect();
    let format = match forced {
        Some(format) => format,
        None => detect(&entries, &shapes)?,
    };
    let mut migrations = Vec::new();
    let mut unrecognised = Vec::new();
    for (entry, shape) in entries.iter().zip(&shapes) {
        match role(format, *shape) {
            Role::Migration => migrations.push(migration(format, entry, &entries)?),
            Role::Companion => {}
            Role::Stray => {
                return Err(LayoutError::Stray {
                    file: entry.path.clone(),
                    format: format.as_str(),
                });
            }
            Role::Ignored if *shape == Shape::Other => unrecognised.push(entry.path.clone()),
            Role::Ignored => {}
        }
    }
    migrations.sort_by_cached_key(|m| order::key(format, &m.name));
    same_versions(format, &migrations)?;
    Ok(Read {
        format,
        migrations,
        unrecognised,
    })
}

fn detect(entries: &[&Entry], shapes: &[Shape]) -> Result<Format, LayoutError> {
    let mut seen: Vec<(Format, &'static str, &str)> = Vec::new();
    for (entry, shape) in entries.iter().zip(shapes) {
        if let Some((format, name)) = family(*shape)
            && !seen.iter().any(|(f, _, _)| *f == format)
        {
            seen.push((format, name, &entry.path));
        }
    }
    match seen.as_slice() {
        [] => Ok(Format::Flat),
        [(format, _, _)] => Ok(*format),
        [(_, first_layout, first), (_, second_layout, second), ..] => Err(LayoutError::Mixed {
            first: first.to_string(),
            first_layout,
            second: second.to_string(),
            second_layout,
        }),
    }
}

/// One migration: its up part, marker, checksum and version.
fn migration(format: Format, entry: &Entry, all: &[&Entry]) -> Result<Migration, LayoutError> {
    let fail = |message: String| LayoutError::File {
        file: entry.path.clone(),
        message,
    };
    let text = std::str::from_utf8(&entry.bytes).map_err(|_| fail("not UTF-8 text".into()))?;
    let file = entry.path.rsplit('/').next().unwrap_or(&entry.path);
    let whole = || Up {
        sql: text.to_string(),
        no_transaction: None,
    };
    let up = match format {
        Format::Dbmate => sections::dbmate(text).map_err(fail)?,
        Format::Goose => sections::goose(text).map_err(fail)?,
        Format::Sqlx => sections::sqlx(text),
        Format::Diesel => {
            let (dir, _) = entry
                .path
                .split_once('/')
                .expect("diesel files are in folders");
            let metadata = format!("{dir}/metadata.toml");
            let marker = match all.iter().find(|e| e.path == metadata) {
                Some(meta) => sections::diesel_metadata(&String::from_utf8_lossy(&meta.bytes))
                    .map_err(|e| fail(format!("{metadata}: {e}")))?,
                None => None,
            };
            Up {
                no_transaction: marker,
                ..whole()
            }
        }
        _ => whole(),
    };
    let version = version(format, &entry.path, file).ok_or_else(|| {
        fail(format!(
            "the {} layout names files `{}`",
            format.as_str(),
            naming(format)
        ))
    })?;
    // The checksum of what is applied: a down part may change freely.
    let checksum = if up.sql == text {
        hash::of_text(&entry.bytes)
    } else {
        hash::of_text(up.sql.as_bytes())
    };
    let (description, tool_checksum) = tools::identity(format, &entry.path, text);
    Ok(Migration {
        name: entry.path.clone(),
        path: entry.path.clone().into(),
        checksum,
        up: up.sql,
        no_transaction: up.no_transaction,
        repeatable: order::key(format, &entry.path).is_repeatable(),
        version,
        description,
        tool_checksum,
    })
}

/// How the tool identifies the migration in its own ledger; `None` where
/// the name lacks what the tool needs.
fn version(format: Format, path: &str, file: &str) -> Option<String> {
    let digits = |s: &str| -> Option<String> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (n > 0).then(|| s[..n].to_string())
    };
    match format {
        Format::Flat => Some(file.to_string()),
        Format::GolangMigrate | Format::Goose => order::number(file).map(|n| n.to_string()),
        Format::Sqlx if file.starts_with('V') => None,
        Format::Sqlx => order::number(file).map(|n| n.to_string()),
        Format::Dbmate => digits(file),
        // diesel: the folder name up to its first `_`, without dashes.
        Format::Diesel => {
            let dir = path.split_once('/')?.0;
            let version = dir.split('_').next()?.replace('-', "");
            (!version.is_empty()).then_some(version)
        }
        Format::Prisma => path.split_once('/').map(|(dir, _)| dir.to_string()),
        Format::Flyway if file.starts_with("R__") => Some(String::new()),
        Format::Flyway => {
            let (version, _) = file.strip_prefix('V')?.split_once("__")?;
            Some(version.replace('_', "."))
        }
    }
}

fn naming(format: Format) -> &'static str {
    match format {
        Format::Flat => "*.sql",
        Format::GolangMigrate => "<number>_<name>.up.sql",
        Format::Sqlx => "<number>_<name>.sql or .up.sql",
        Format::Goose => "<number>_<name>.sql",
        Format::Dbmate => "<number>_<name>.sql",
        Format::Diesel => "<version>_<name>/up.sql",
        Format::Prisma => "<timestamp>_<name>/migration.sql",
        Format::Flyway => "V<version>__<description>.sql",
    }
}

/// Two files of one version: the tool would refuse the folder.
fn same_versions(format: Format, migrations: &[Migration]) -> Result<(), LayoutError> {
    if matches!(format, Format::Flat | Format::Prisma) {
        return Ok(());
    }
    let keyed = |m: &Migration| -> Option<OrderKey> {
        let key = order::key(format, &m.name);
        (!key.is_repeatable()).then_some(key)
    };
    for pair in migrations.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if keyed(a).is_some() && keyed(b).is_some() && a.version == b.version {
            return Err(LayoutError::SameVersion {
                first: a.name.clone(),
                second: b.name.clone(),
                format: format.as_str(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
