//! Migration files: `*.sql` in the migrations folder, applied in lexical
//! order, each identified by its name and a checksum of its LF-normalised
//! bytes. A chained hash over the sequence catches an inserted, removed or
//! reordered migration even where every single checksum still matches.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hash;

/// A migration file on disk.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub path: PathBuf,
    pub checksum: String,
}

impl Migration {
    pub fn sql(&self) -> std::io::Result<String> {
        fs_err::read_to_string(&self.path)
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

/// The migration files of `dir`, sorted by name. A missing folder has none.
pub fn scan(dir: &Path) -> std::io::Result<Vec<Migration>> {
    let entries = match fs_err::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().as_encoded_bytes().ends_with(b".sql") || !entry.file_type()?.is_file()
        {
            continue;
        }
        // The ledger records names as text: two names that are not UTF-8
        // could come out as the same text, and one pass for the other.
        let Ok(name) = entry.file_name().into_string() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: a migration's file name must be UTF-8",
                    entry.path().display()
                ),
            ));
        };
        let path = entry.path();
        let checksum = hash::of_text(&fs_err::read(&path)?);
        out.push(Migration {
            name,
            path,
            checksum,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `blake3(previous chain ‖ name ‖ checksum)` folded over the sequence.
pub fn chain<'a>(applied: impl IntoIterator<Item = &'a Applied>) -> String {
    let mut link = hash::of(b"");
    for m in applied {
        let mut hasher = blake3::Hasher::new();
        hasher.update(link.as_bytes());
        hasher.update(b"\0");
        hasher.update(m.name.as_bytes());
        hasher.update(b"\0");
        hasher.update(m.checksum.as_bytes());
        link = format!("{}{}", hash::PREFIX, hasher.finalize().to_hex());
    }
    link
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
        let names: Vec<_> = scan(dir.path())
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["0001_a.sql", "0002_b.sql"]);
        assert!(scan(&dir.path().join("missing")).unwrap().is_empty());
    }
}
