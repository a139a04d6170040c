//! SQLite databases built under a temporary name beside the real ones, then
//! marked and moved into place by `Database::adopt`: by `create`, and by
//! `new` ahead of its worktree (`db::build_ahead`). Nothing half-built ever
//! sits where a database belongs.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use tempfile::TempPath;

use super::{SCHEMA, run_migration};
use crate::db::{DbError, store};

/// A migration read from git's objects rather than from a checkout.
pub struct Source {
    pub name: String,
    pub checksum: String,
    pub sql: String,
}

/// How the temporary files of databases being built start (by `create`, or
/// ahead by `new`): `sweep_abandoned` looks for nothing else.
const AHEAD: &str = ".provision-ahead-";

/// A database built ahead under a temporary name beside the databases. Its
/// builder holds a lock on it while it lives, which tells a sweep a live one
/// from one a killed `new` left; dropping it unadopted deletes it.
pub struct BuiltAhead {
    pub(super) path: TempPath,
    _held: std::fs::File,
}

/// Whether the database at `path` is in WAL mode (its header's format
/// versions are 2) with no `-wal` or `-shm` file beside it.
fn at_rest_in_wal_mode(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let sidecar = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name).exists()
    };
    if sidecar("-wal") || sidecar("-shm") {
        return Ok(false);
    }
    let mut header = [0u8; 20];
    match fs_err::File::open(path)?.read_exact(&mut header) {
        Ok(()) => {
            Ok(header.starts_with(b"SQLite format 3\0") && header[18] == 2 && header[19] == 2)
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// `path` as a `file:` URI's path: every byte but the unreserved ones and
/// `/` percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl BuiltAhead {
    /// Whether the file at its path is still the one its builder locked:
    /// a sweep never takes a locked file, so anything else is a bug to stop
    /// at, not a database to mark.
    pub(super) fn is_intact(&self) -> std::io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        Ok(fs_err::metadata(&self.path)?.ino() == self._held.metadata()?.ino())
    }
}

/// Builds a database from `migrations` in `dir`, unmarked and unsynced:
/// `Database::adopt` marks it, syncs it and moves it into place.
pub fn prebuild(dir: &Path, migrations: &[Source]) -> Result<BuiltAhead, DbError> {
    let built = empty(dir)?;
    migrate(&built, migrations)?;
    Ok(built)
}

/// As `prebuild`, from the store's entry of the longest prefix of
/// `migrations` (`keys`: the entry of each prefix) that it has, marked
/// `store_mark` (the store's); the result goes into the store. Returns the database and
/// the entry it started from, with how many migrations that had applied.
pub fn prebuild_stored(
    dir: &Path,
    migrations: &[Source],
    keys: &[String],
    store_mark: &str,
) -> Result<(BuiltAhead, Option<(String, usize)>), DbError> {
    let entry = |name: &str| dir.join(format!("{name}.sqlite"));
    let stored = super::list_entries(dir, store_mark)?;
    let names: Vec<String> = stored.into_iter().map(|s| s.name).collect();
    let hit = store::longest(keys, &names);
    let built = match hit {
        Some((cached, name)) => {
            let built = copied(dir, &entry(name))?;
            migrate(&built, &migrations[cached..])?;
            built
        }
        None => prebuild(dir, migrations)?,
    };
    if let Some(full) = keys
        .last()
        .filter(|_| hit.is_none_or(|(n, _)| n < keys.len()))
    {
        super::save_marked(&copied(dir, &built.path)?, &entry(full), store_mark)?;
    }
    Ok((built, hit.map(|(n, name)| (name.to_string(), n))))
}

/// A consistent copy of the database `from` (a seed, which someone may be
/// writing), under a temporary name in `dir`: `VACUUM INTO` through a
/// read-only connection, so the seed itself is never written. Returns it
/// with its identity, the hash of its bytes.
pub fn snapshot(dir: &Path, from: &Path) -> Result<(BuiltAhead, String), DbError> {
    if !from.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the seed {} is not a file", from.display()),
        )
        .into());
    }
    let built = empty(dir)?;
    let fail = |source| DbError::Sqlite {
        name: from.display().to_string(),
        action: "copy the seed".into(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if at_rest_in_wal_mode(from)? {
        // Even read-only, SQLite makes a WAL database's `-wal` and `-shm`
        // files beside it (in the main checkout) and leaves them. One at
        // rest (no such files: nothing has it open to write) is read as
        // the unchanging file it is.
        let uri = format!("file:{}?immutable=1", uri_path(from));
        Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
    } else {
        Connection::open_with_flags(from, flags)
    }
    .map_err(fail)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(fail)?;
    let target = built.path.to_string_lossy().into_owned();
    conn.execute("VACUUM INTO ?1", [target]).map_err(fail)?;
    let identity = crate::hash::of(&fs_err::read(&built.path)?);
    Ok((built, identity))
}

impl BuiltAhead {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An empty file under a temporary name in `dir`, locked while it lives.
pub(super) fn empty(dir: &Path) -> Result<BuiltAhead, DbError> {
    use std::os::unix::fs::MetadataExt;
    fs_err::create_dir_all(dir)?;
    let (held, path) = tempfile::Builder::new()
        .prefix(AHEAD)
        .suffix(".sqlite")
        .tempfile_in(dir)?
        .into_parts();
    held.lock()?;
    // A sweep may have taken the file between its creation and the lock.
    if fs_err::metadata(&path)?.ino() != held.metadata()?.ino() {
        return Err(std::io::Error::other("a sweep took the file being built").into());
    }
    Ok(BuiltAhead { path, _held: held })
}

/// A copy of the database `from` (a store entry) under a temporary name
/// in `dir`, as `prebuild` makes one; a reflink where the file system can.
pub fn copied(dir: &Path, from: &Path) -> Result<BuiltAhead, DbError> {
    let built = empty(dir)?;
    let source = fs_err::File::open(from)?;
    let target = fs_err::OpenOptions::new().write(true).open(&built.path)?;
    if crate::sandbox::copy::clone_into(source.file(), target.file()).is_err() {
        std::io::copy(&mut &source, &mut &target)?;
    }
    Ok(built)
}

/// Applies `migrations` to the database `built` in one transaction.
pub fn migrate(built: &BuiltAhead, migrations: &[Source]) -> Result<(), DbError> {
    let path = &built.path;
    let fail = |source| DbError::Sqlite {
        name: path.display().to_string(),
        action: "create".into(),
        source,
    };
    let mut conn = Connection::open(path).map_err(fail)?;
    conn.pragma_update(None, "synchronous", "OFF")
        .map_err(fail)?;
    let tx = conn.transaction().map_err(fail)?;
    for m in migrations {
        run_migration(&tx, &m.name, &m.checksum, &m.sql)?;
    }
    tx.execute_batch(SCHEMA).map_err(fail)?;
    tx.commit().map_err(fail)?;
    Ok(())
}

/// Deletes the databases that a killed `new` was building ahead in `dir`:
/// those whose lock nobody holds. Returns how many.
pub fn sweep_abandoned(dir: &Path) -> std::io::Result<usize> {
    let mut swept = 0;
    for entry in crate::fsutil::entries(dir)? {
        let path = entry.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !(name.starts_with(AHEAD) && name.ends_with(".sqlite")) {
            continue;
        }
        // Held while it goes. None: its builder still runs, or it is gone
        // meanwhile (its builder dropped it, or another sweep took it).
        let Some(_held) = crate::fsutil::try_lock(&path)? else {
            continue;
        };
        for suffix in ["", "-journal", "-wal", "-shm"] {
            match fs_err::remove_file(format!("{}{suffix}", path.display())) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        swept += 1;
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeds_path_is_one_uri_path_whatever_it_holds() {
        let path = Path::new("/repo/my seed?#%é.sqlite");
        assert_eq!(uri_path(path), "/repo/my%20seed%3F%23%25%C3%A9.sqlite");
    }

    #[test]
    fn only_a_wal_database_with_nothing_beside_it_is_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        drop(conn);
        assert!(!at_rest_in_wal_mode(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        assert!(
            !at_rest_in_wal_mode(&path).unwrap(),
            "open: its -wal is there"
        );
        drop(conn);
        assert!(at_rest_in_wal_mode(&path).unwrap());
    }

    fn ahead_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(AHEAD))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_sweep_takes_only_what_nobody_builds() {
        let dir = tempfile::tempdir().unwrap();
        let migration = Source {
            name: "0001_a.sql".into(),
            checksum: "c".into(),
            sql: "CREATE TABLE a(x);".into(),
        };
        let live = prebuild(dir.path(), &[migration]).unwrap();
        let abandoned = dir.path().join(format!("{AHEAD}killed.sqlite"));
        fs_err::write(&abandoned, b"").unwrap();
        fs_err::write(dir.path().join("app_x.sqlite"), b"").unwrap();

        assert_eq!(sweep_abandoned(dir.path()).unwrap(), 1);
        assert!(!abandoned.exists());
        assert!(live.path.exists());
        assert!(dir.path().join("app_x.sqlite").exists());
        // Dropped unadopted, a build leaves nothing behind.
        drop(live);
        assert_eq!(ahead_files(dir.path()), Vec::<String>::new());
        assert_eq!(sweep_abandoned(&dir.path().join("none")).unwrap(), 0);
    }

    #[test]
    fn a_build_holds_the_migrations_and_both_ledgers() {
        let dir = tempfile::tempdir().unwrap();
        let migration = Source {
            name: "0001_a.sql".into(),
            checksum: "c".into(),
            sql: "CREATE TABLE a(x);".into(),
        };
        let built = prebuild(dir.path(), &[migration]).unwrap();
        let conn = Connection::open(&built.path).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM a"), 0);
        assert_eq!(count("SELECT count(*) FROM d1_migrations"), 1);
        assert_eq!(
            count("SELECT count(*) FROM provision_migrations WHERE checksum = 'c'"),
            1
        );
        // Unmarked until adopted.
        assert_eq!(count("SELECT count(*) FROM provision_meta"), 0);
    }

    #[test]
    fn a_build_whose_file_was_replaced_is_not_intact() {
        let dir = tempfile::tempdir().unwrap();
        let built = prebuild(dir.path(), &[]).unwrap();
        assert!(built.is_intact().unwrap());
        // What issue 12 item 9's "no such table: provision_meta" needs: the
        // file at the build's path is no longer the one it built.
        fs_err::remove_file(&built.path).unwrap();
        fs_err::write(&built.path, b"").unwrap();
        assert!(!built.is_intact().unwrap());
    }
}
