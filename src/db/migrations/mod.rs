//! Migrations as real tools write them (`layout`): flat `*.sql`, up/down
//! pairs, diesel and Prisma folders, dbmate and goose sections, Flyway
//! versions. Each is identified by its path in the folder and a checksum
//! of its LF-normalised "up" part, applied in its tool's order (`order`),
//! in or outside a transaction as its tool's markers and its statements
//! say (`statements`). A chained hash over the sequence catches an
//! inserted, removed or reordered migration even where every single
//! checksum still matches.

pub mod layout;
pub mod order;
pub mod sections;
pub mod statements;
pub mod tools;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash;

pub use layout::{Entry, Format, LayoutError};
pub use statements::Mode;

/// A migration file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its path in the migrations folder (`0001_a.sql`, `2024…_a/up.sql`).
    pub name: String,
    pub path: PathBuf,
    /// Of the part that is applied.
    pub checksum: String,
    /// The SQL applied: the file, or its "up" part.
    pub up: String,
    /// The tool's marker that runs it outside a transaction, as written.
    pub no_transaction: Option<String>,
    /// How its tool names it in its own ledger.
    pub version: String,
    /// Flyway's `R__` files: applied again whenever their checksum changes.
    pub repeatable: bool,
    /// What its tool records of it besides (see `tools`).
    pub description: String,
    pub tool_checksum: String,
}

impl Migration {
    /// A flat `*.sql` migration of `sql` (for tests and builds from git).
    pub fn flat(name: &str, path: PathBuf, sql: &str) -> Migration {
        Migration {
            name: name.to_string(),
            path,
            checksum: hash::of_text(sql.as_bytes()),
            up: sql.to_string(),
            no_transaction: None,
            version: name.to_string(),
            repeatable: false,
            description: String::new(),
            tool_checksum: String::new(),
        }
    }

    pub fn sql(&self) -> &str {
        &self.up
    }

    /// How it runs; an error names the file and line provision refuses.
    pub fn mode(&self) -> Result<Mode, crate::db::DbError> {
        statements::mode(&self.up, self.no_transaction.as_deref()).map_err(|message| {
            crate::db::DbError::Migration {
                file: self.name.clone(),
                message,
            }
        })
    }

    pub fn record(&self) -> Applied {
        Applied {
            name: self.name.clone(),
            checksum: self.checksum.clone(),
        }
    }
}

/// A migration as recorded in a ledger or a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applied {
    pub name: String,
    pub checksum: String,
}

/// The migrations folder as read: its layout and migrations, in order.
#[derive(Debug, Clone)]
pub struct Migrations {
    pub format: Format,
    pub files: Vec<Migration>,
    /// The folder does not exist.
    pub missing: bool,
    /// Files in it that no layout applies.
    pub unrecognised: Vec<String>,
}

impl std::ops::Deref for Migrations {
    type Target = [Migration];
    fn deref(&self) -> &[Migration] {
        &self.files
    }
}

impl Migrations {
    /// A warning for a folder of files none of which is a migration.
    pub fn note(&self, dir: &str) -> Option<String> {
        if !self.files.is_empty() || self.unrecognised.is_empty() {
            return None;
        }
        let shown: Vec<&str> = self
            .unrecognised
            .iter()
            .take(3)
            .map(String::as_str)
            .collect();
        Some(format!(
            "{dir}/ holds {} file(s) but no SQL migration provision applies ({}{}): \
             the database gets none of them; point `[database] migrations` at the SQL migrations",
            self.unrecognised.len(),
            shown.join(", "),
            if self.unrecognised.len() > 3 {
                ", …"
            } else {
                ""
            }
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("migrations folder {dir}/: {source}")]
    Layout {
        dir: String,
        #[source]
        source: LayoutError,
    },
    #[error(
        "migrations folder {dir}/ does not exist (provision.toml sets `[database] migrations`)"
    )]
    Missing { dir: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The migrations in `root`/`dir`, read as `format` says (else as their
/// layout shows). A missing folder has none, and says so.
pub fn scan(root: &Path, dir: &str, format: Option<Format>) -> Result<Migrations, ScanError> {
    let folder = root.join(dir);
    let Some(entries) = list(&folder)? else {
        return Ok(Migrations {
            format: format.unwrap_or(Format::Flat),
            files: Vec::new(),
            missing: true,
            unrecognised: Vec::new(),
        });
    };
    let read = layout::read(&entries, format).map_err(|source| ScanError::Layout {
        dir: dir.to_string(),
        source,
    })?;
    let mut files = read.migrations;
    for file in &mut files {
        file.path = folder.join(&file.path);
    }
    Ok(Migrations {
        format: read.format,
        files,
        missing: false,
        unrecognised: read.unrecognised,
    })
}

/// The regular files of `folder` and of its folders (not deeper: no
/// layout nests further); `None` when it does not exist.
fn list(folder: &Path) -> std::io::Result<Option<Vec<Entry>>> {
    let top = match fs_err::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in top {
        let entry = entry?;
        let kind = entry.file_type()?;
        let Some(name) = utf8_name(&entry)? else {
            continue;
        };
        if kind.is_dir() {
            for inner in fs_err::read_dir(entry.path())? {
                let inner = inner?;
                if let Some(file) = utf8_name(&inner)?
                    && inner.file_type()?.is_file()
                {
                    out.push(read_entry(format!("{name}/{file}"), &inner.path())?);
                }
            }
        } else if kind.is_file() {
            out.push(read_entry(name, &entry.path())?);
        }
    }
    Ok(Some(out))
}

fn read_entry(path: String, at: &Path) -> std::io::Result<Entry> {
    let bytes = if Entry::is_read(&path) {
        fs_err::read(at)?
    } else {
        Vec::new()
    };
    Ok(Entry { path, bytes })
}

/// The entry's name; the ledger records names as text, so two names that
/// are not UTF-8 could come out as the same text, and one pass for the
/// other: such a `.sql` file is an error, anything else is not looked at.
fn utf8_name(entry: &fs_err::DirEntry) -> std::io::Result<Option<String>> {
    match entry.file_name().into_string() {
        Ok(name) => Ok(Some(name)),
        Err(name) if name.as_encoded_bytes().ends_with(b".sql") => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}: a migration's file name must be UTF-8",
                entry.path().display()
            ),
        )),
        Err(_) => Ok(None),
    }
}

/// `blake3(previous chain ‖ name ‖ checksum)` folded over the sequence.
pub fn chain<'a>(applied: impl IntoIterator<Item = &'a Applied>) -> String {
    applied
        .into_iter()
        .fold(hash::of(b""), |link, m| chain_link(&link, m))
}

/// The chain after `m`, from the chain `link` before it.
pub fn chain_link(link: &str, m: &Applied) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(link.as_bytes());
    hasher.update(b"\0");
    hasher.update(m.name.as_bytes());
    hasher.update(b"\0");
    hasher.update(m.checksum.as_bytes());
    format!("{}{}", hash::PREFIX, hasher.finalize().to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(name: &str, checksum: &str) -> Applied {
        Applied {
            name: name.into(),
            checksum: checksum.into(),
        }
    }

    #[test]
    fn chain_catches_reordering() {
        let a = applied("0001.sql", "x");
        let b = applied("0002.sql", "y");
        assert_ne!(chain([&a, &b]), chain([&b, &a]));
        assert_eq!(chain([&a, &b]), chain([&a, &b]));
    }

    #[test]
    fn scan_sorts_and_skips_non_sql() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["0002_b.sql", "0001_a.sql", "README.md"] {
            fs_err::write(dir.path().join(name), "select 1;\n").unwrap();
        }
        let read = scan(dir.path(), ".", None).unwrap();
        let names: Vec<_> = read.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["0001_a.sql", "0002_b.sql"]);
        assert_eq!(read[0].path, dir.path().join("./0001_a.sql"));
        assert!(scan(dir.path(), "missing", None).unwrap().missing);
    }
}
