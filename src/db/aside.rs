//! Databases a rebuild set aside (`provision db reset`, `[database]
//! on_divergence = "rebuild"`): moved (SQLite) or renamed (PostgreSQL) to a
//! name of their own, still carrying the sandbox's mark, and recorded under
//! `provision/aside/` in the git common dir until the next `gc` drops them.
//!
//! The record is written before the database moves, so a crash in between
//! leaves a record of a database that is not there (which `gc` forgets),
//! never a database nothing leads back to. Records are read back as
//! untrusted input: names must be identifiers, and `gc` drops only what
//! still carries the mark of the sandbox the record names.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::recipe::config::DatabaseKind;
use crate::slug;

/// One database set aside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aside {
    /// Its name now.
    pub database: String,
    /// The sandbox database it was.
    pub from: String,
    #[serde(deserialize_with = "crate::db::read_kind")]
    pub kind: DatabaseKind,
    /// The sandbox it was set aside from, and its worktree (id and path),
    /// which the database's mark names.
    pub sandbox: String,
    pub id: String,
    pub path: PathBuf,
    /// When, in milliseconds since the epoch.
    pub at: u64,
}

/// The name a database `from` is set aside under at `at` (milliseconds):
/// `{from}_aside_{at}`, cut to an identifier (with a hash of the whole when
/// cut).
pub fn name(from: &str, at: u64) -> String {
    slug::identifier(&format!("{from}_aside_{at}"))
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn dir(common_dir: &Path) -> PathBuf {
    common_dir.join("provision").join("aside")
}

fn file(common_dir: &Path, database: &str) -> PathBuf {
    dir(common_dir).join(format!("{database}.json"))
}

/// Records `aside` (before its database moves).
pub fn record(common_dir: &Path, aside: &Aside) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(aside).expect("a record serializes");
    text.push('\n');
    fsutil::write_atomically(&file(common_dir, &aside.database), text.as_bytes())
}

/// Forgets the record of `database` (dropped, or never moved).
pub fn forget(common_dir: &Path, database: &str) -> std::io::Result<()> {
    match fs_err::remove_file(file(common_dir, database)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A record's path, and why it cannot be used.
pub type Unreadable = (PathBuf, String);

/// Every record, oldest first; one that cannot be read (or names
/// anything but identifiers, or another file than its own) is returned as
/// its path and why, and is never acted on.
pub fn all(common_dir: &Path) -> std::io::Result<(Vec<Aside>, Vec<Unreadable>)> {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for entry in crate::fsutil::entries(&dir(common_dir))? {
        let path = entry.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // Temporary files of an atomic write in progress.
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        match read(&path) {
            Ok(aside) => good.push(aside),
            Err(why) => bad.push((path, why)),
        }
    }
    good.sort_by(|a, b| (a.at, &a.database).cmp(&(b.at, &b.database)));
    Ok((good, bad))
}

fn read(path: &Path) -> Result<Aside, String> {
    let meta = fs_err::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let text = fs_err::read_to_string(path).map_err(|e| e.to_string())?;
    let aside: Aside = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    if !slug::is_identifier(&aside.database) || !slug::is_identifier(&aside.from) {
        return Err("a database name that provision would not make".into());
    }
    if stem != aside.database {
        return Err(format!("it names database `{}`", aside.database));
    }
    // Only the name a rebuild gives: a record edited to name another
    // database (the sandbox's own, which carries the same mark) is not one.
    if aside.database != name(&aside.from, aside.at) {
        return Err(format!(
            "`{}` is not the name `{}` is set aside under",
            aside.database, aside.from
        ));
    }
    Ok(aside)
}

/// How to go back to the database set aside, for the report.
pub fn restore_hint(common_dir: &Path, aside: &Aside) -> String {
    match aside.kind {
        DatabaseKind::Sqlite => {
            let at = |name: &str| {
                crate::db::sqlite_path(common_dir, name)
                    .display()
                    .to_string()
            };
            format!(
                "mv -f {} {}",
                shell_word(&at(&aside.database)),
                shell_word(&at(&aside.from))
            )
        }
        _ => format!(
            "DROP DATABASE \"{from}\"; ALTER DATABASE \"{aside}\" RENAME TO \"{from}\";",
            from = aside.from,
            aside = aside.database
        ),
    }
}

fn shell_word(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aside(database: &str) -> Aside {
        Aside {
            database: database.into(),
            from: "app_feat".into(),
            kind: DatabaseKind::Sqlite,
            sandbox: "feat".into(),
            id: "feat".into(),
            path: "/w/feat".into(),
            at: 7,
        }
    }

    #[test]
    fn names_are_identifiers_even_when_cut() {
        assert_eq!(
            name("app_feat", 1700000000123),
            "app_feat_aside_1700000000123"
        );
        let long = name(&"x".repeat(63), 1);
        assert!(slug::is_identifier(&long), "{long}");
        assert_ne!(long, name(&"x".repeat(63), 2));
    }

    #[test]
    fn records_read_back_and_forged_ones_are_set_apart() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), &aside("app_feat_aside_7")).unwrap();
        let forged = super::dir(dir.path()).join("other.json");
        let mut bad = aside("app_feat_aside_7");
        bad.database = "../x".into();
        fs_err::write(&forged, serde_json::to_string(&bad).unwrap()).unwrap();
        let (good, broken) = all(dir.path()).unwrap();
        assert_eq!(good, [aside("app_feat_aside_7")]);
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].0, forged);
        forget(dir.path(), "app_feat_aside_7").unwrap();
        forget(dir.path(), "app_feat_aside_7").unwrap();
        assert!(all(dir.path()).unwrap().0.is_empty());
    }

    #[test]
    fn the_hint_says_how_to_go_back() {
        let hint = restore_hint(Path::new("/r/.git"), &aside("app_feat_aside_7"));
        assert_eq!(
            hint,
            "mv -f /r/.git/provision/sqlite/app_feat_aside_7.sqlite /r/.git/provision/sqlite/app_feat.sqlite"
        );
        let pg = Aside {
            kind: DatabaseKind::Postgres,
            ..aside("app_feat_aside_7")
        };
        assert_eq!(
            restore_hint(Path::new("/r"), &pg),
            "DROP DATABASE \"app_feat\"; ALTER DATABASE \"app_feat_aside_7\" RENAME TO \"app_feat\";"
        );
    }
}
