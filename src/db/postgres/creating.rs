//! A PostgreSQL database is made under a name of its own first
//! (`provision_new_<16 hex>`, random), marked there, then renamed into
//! place. `CREATE DATABASE` cannot run in a transaction with its `COMMENT`,
//! and the server finishes a copy whose client was killed, so a crash
//! between the two would otherwise leave an unmarked database under a
//! sandbox's or the store's name: one provision may never drop, that
//! blocks the sandbox until a person drops it, or that hides a store entry
//! for good. The name is recorded first under `.git/provision/creating/`,
//! the record locked while this process makes it; `gc` drops a database a
//! record names whose lock nobody holds (the process that made it died),
//! and forgets the record.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::fsutil;

/// Whether nobody holds the file at `path` locked (false when it is gone).
fn unlocked(path: &Path) -> std::io::Result<bool> {
    Ok(fsutil::try_lock(path)?.is_some())
}

/// How every such name starts.
pub const PREFIX: &str = "provision_new_";

/// The record of one database being made, locked by this process until it
/// is done (or abandoned).
pub struct Creating {
    pub name: String,
    record: PathBuf,
    _lock: fs_err::File,
}

fn dir(common_dir: &Path) -> PathBuf {
    common_dir.join("provision").join("creating")
}

impl Creating {
    /// Records and locks a new random name, written to disk before the
    /// database exists, with the id of the clone that makes it (a copy of
    /// `.git` carries the records along).
    pub fn begin(common_dir: &Path, clone: &str) -> std::io::Result<Creating> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("{PREFIX}{hex}");
        let dir = dir(common_dir);
        fs_err::create_dir_all(&dir)?;
        // Locked before it takes its name: `gc` never sees it unlocked
        // while this process lives.
        let record = dir.join(&name);
        let unnamed = dir.join(format!(".{name}"));
        let mut lock = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&unnamed)?;
        lock.file().lock()?;
        lock.write_all(clone.as_bytes())?;
        lock.sync_all()?;
        fs_err::rename(&unnamed, &record)?;
        fs_err::File::open(&dir)?.sync_all()?;
        Ok(Creating {
            name,
            record,
            _lock: lock,
        })
    }

    /// The database is in place under its own name, or was never made:
    /// the record goes.
    pub fn finish(self) {
        let _ = fs_err::remove_file(&self.record);
    }
}

/// The names whose record, made by `clone`, nobody holds locked: what a
/// killed process left.
pub fn abandoned(common_dir: &Path, clone: &str) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fsutil::entries(&dir(common_dir))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_name(&name) {
            continue;
        }
        if unlocked(&entry.path())? && fs_err::read_to_string(entry.path())? == clone {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Deletes the records a process killed in `begin` left before they took
/// their names (they name no database yet).
pub fn sweep_unnamed(common_dir: &Path) -> std::io::Result<()> {
    for entry in fsutil::entries(&dir(common_dir))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.strip_prefix('.').is_some_and(is_name) && unlocked(&entry.path())? {
            forget(common_dir, &name)?;
        }
    }
    Ok(())
}

/// Forgets the record of `name`, once its database is gone.
pub fn forget(common_dir: &Path, name: &str) -> std::io::Result<()> {
    match fs_err::remove_file(dir(common_dir).join(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `name` is one `Creating::begin` makes.
pub fn is_name(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_record_nobody_holds_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let held = Creating::begin(dir.path(), "c1").unwrap();
        assert!(is_name(&held.name));
        assert_eq!(abandoned(dir.path(), "c1").unwrap(), Vec::<String>::new());
        let name = held.name.clone();
        // A process that dies lets go of its lock and leaves the record.
        drop(held._lock);
        let records = dir.path().join("provision/creating");
        fs_err::write(records.join("notes.txt"), "c1").unwrap();
        assert_eq!(abandoned(dir.path(), "c1").unwrap(), vec![name.clone()]);
        // A copy of `.git` has the record too; it is not the copy's.
        assert!(abandoned(dir.path(), "c2").unwrap().is_empty());
        forget(dir.path(), &name).unwrap();
        assert!(abandoned(dir.path(), "c1").unwrap().is_empty());
    }

    #[test]
    fn a_record_killed_before_it_took_its_name_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("provision/creating");
        fs_err::create_dir_all(&records).unwrap();
        let unnamed = records.join(".provision_new_0123456789abcdef");
        fs_err::write(&unnamed, "").unwrap();
        let held = Creating::begin(dir.path(), "c1").unwrap();
        sweep_unnamed(dir.path()).unwrap();
        assert!(!unnamed.exists());
        assert!(records.join(&held.name).exists());
    }

    #[test]
    fn names_are_provisions_own() {
        assert!(is_name("provision_new_0123456789abcdef"));
        assert!(!is_name("provision_new_0123456789ABCDEF"));
        assert!(!is_name("provision_new_app"));
        assert!(!is_name("app"));
    }
}
