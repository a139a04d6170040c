//! The registry: what provision created, one record per sandbox, kept under
//! the git common dir (shared by every worktree, never committed). These
//! records are the roots `gc` works from and the ledger ports are handed
//! out from. Every change happens under one file lock, with atomic writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::git::Worktree;
use crate::recipe::config::DatabaseKind;
use crate::sandbox::lock::{self, NamedPorts};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {0}")]
    Io(String, #[source] std::io::Error),
    #[error(
        "registry record {} is corrupt: {reason}; the other sandboxes work on. `provision apply` in its worktree writes it again; if that worktree is gone, move the file away once you have dropped its database by hand",
        .path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "no free port in {first}-{last}: every port is taken by a sandbox or in use; widen `[ports] range`"
    )]
    PortsExhausted { first: u16, last: u16 },
}

/// One sandbox as provision created it. Holds absolute paths: it describes
/// this machine's state, unlike the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Git's id for the worktree: `main`, or the name under `.git/worktrees/`.
    pub id: String,
    /// The sandbox name.
    pub name: String,
    pub path: PathBuf,
    pub branch: Option<String>,
    pub database: DatabaseRecord,
    /// The first named port.
    pub port: u16,
    /// Every named port, left out while there is only the default `PORT`
    /// (see [`lock::stored_ports`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: NamedPorts,
    /// Hash of the last lock written; `None` until the first apply finished.
    pub lock_hash: Option<String>,
    /// A `remove` began taking it down, its merged branch with it: a `gc`
    /// that finds it an orphan (the `remove` was cut short) deletes that
    /// branch too. A merged branch holds no commit of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removing: bool,
}

impl Record {
    /// Every port the sandbox holds, by name.
    pub fn named_ports(&self) -> NamedPorts {
        lock::named_ports(self.port, &self.ports)
    }

    /// The ports as one phrase: `port 20001`, or `ports API=20002, WEB=20001`.
    pub fn ports_text(&self) -> String {
        super::ports::text(&self.named_ports())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseRecord {
    #[serde(deserialize_with = "crate::db::read_kind")]
    pub kind: DatabaseKind,
    pub name: String,
    pub location: String,
    /// The seed the database started as, where it did: `gc` keys the
    /// store's entries its chain needs from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<SeedStart>,
}

/// A database's start as a copy of `[database] seed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedStart {
    /// The seed's identity (a hash of its copy).
    pub identity: String,
    /// How many of the chain's first migrations the seed had applied.
    pub applied: usize,
}

/// A record names what `remove` and `gc` act on (a folder git removes, a
/// database dropped): read back from disk, each field is checked first.
fn check(record: &Record, stem: &str) -> Result<(), String> {
    let plain_id =
        !matches!(record.id.as_str(), "" | "." | "..") && !record.id.contains(['/', '\0']);
    if !plain_id || record.id != stem {
        return Err(format!(
            "id `{}` is not its file's name, or not a worktree id",
            record.id
        ));
    }
    if !record.path.is_absolute() {
        return Err(format!("path `{}` is not absolute", record.path.display()));
    }
    if !crate::slug::is_identifier(&record.database.name) {
        return Err(format!(
            "database.name `{}` is not a name provision makes",
            record.database.name
        ));
    }
    Ok(())
}

/// A worktree's claim on a record, as its admin dir holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Ours,
    /// The admin dir claims another sandbox: git reused the id.
    Other,
    /// No claim file (or no admin dir: the worktree entry is gone).
    Missing,
}

#[derive(Clone)]
pub struct Registry {
    dir: PathBuf,
    common_dir: PathBuf,
}

/// Held while the registry is being read and changed; released on drop.
pub struct Guard {
    _file: fs_err::File,
}

impl Registry {
    pub fn new(common_dir: &Path) -> Self {
        Registry {
            dir: common_dir.join("provision"),
            common_dir: common_dir.to_path_buf(),
        }
    }

    fn records_dir(&self) -> PathBuf {
        self.dir.join("sandboxes")
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.records_dir().join(format!("{id}.json"))
    }

    fn io(&self, what: &str) -> impl FnOnce(std::io::Error) -> RegistryError {
        let what = format!("{what} in {}", self.dir.display());
        move |e| RegistryError::Io(what, e)
    }

    /// Takes the registry's exclusive lock, waiting for other provision runs.
    pub fn lock(&self) -> Result<Guard, RegistryError> {
        fs_err::create_dir_all(&self.dir).map_err(self.io("create"))?;
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("registry.lock"))
            .map_err(self.io("open the lock"))?;
        file.file().lock().map_err(self.io("lock"))?;
        Ok(Guard { _file: file })
    }

    /// The claim a linked worktree carries in its own admin dir under
    /// `.git/worktrees/<id>/`. git deletes that dir with the worktree and
    /// keeps it through `git worktree move`, but reuses the id for the next
    /// worktree of the same folder name: the claim tells a record's own
    /// worktree from a newcomer under the same id.
    fn claim_path(&self, id: &str) -> Option<PathBuf> {
        (id != crate::git::MAIN_ID).then(|| {
            self.common_dir
                .join("worktrees")
                .join(id)
                .join("provision-sandbox")
        })
    }

    /// Marks worktree `id` as the one holding sandbox `name`.
    pub fn claim(&self, _guard: &Guard, id: &str, name: &str) -> Result<(), RegistryError> {
        match self.claim_path(id) {
            Some(path) => fsutil::write_atomically(&path, format!("{name}\n").as_bytes())
                .map_err(self.io("claim a worktree")),
            None => Ok(()),
        }
    }

    /// What the admin dir under the record's id says about the record.
    pub fn claim_of(&self, record: &Record) -> Claim {
        let Some(path) = self.claim_path(&record.id) else {
            return Claim::Ours;
        };
        match fs_err::read_to_string(path) {
            Ok(text) if text.trim_end() == record.name => Claim::Ours,
            Ok(_) => Claim::Other,
            Err(_) => Claim::Missing,
        }
    }

    /// Whether `record` belongs to `worktree`: its claim says so, or, with
    /// no claim at all (the file lost), it sits where the record says on
    /// the record's branch. git makes a fresh admin dir when it reuses an id,
    /// so a newcomer carries no claim: at another path, or on another branch
    /// at the same path, it is not the record's.
    pub fn owns(&self, record: &Record, worktree: &Worktree) -> bool {
        self.owns_at(
            record,
            &worktree.id,
            &worktree.path,
            worktree.branch.as_deref(),
        )
    }

    /// [`Registry::owns`] for the worktree `id` at `path` on `branch`.
    pub fn owns_at(&self, record: &Record, id: &str, path: &Path, branch: Option<&str>) -> bool {
        record.id == id
            && match self.claim_of(record) {
                Claim::Ours => true,
                Claim::Other => false,
                Claim::Missing => {
                    crate::git::same_path(&record.path, path) && record.branch.as_deref() == branch
                }
            }
    }

    /// Takes one sandbox's own lock, so two `apply` runs on one worktree
    /// take turns while other sandboxes go on. Lock order: a sandbox's lock
    /// before the registry's.
    pub fn lock_sandbox(&self, id: &str) -> Result<Guard, RegistryError> {
        let file = self.sandbox_lock_file(id)?;
        file.file().lock().map_err(self.io("lock a sandbox"))?;
        Ok(Guard { _file: file })
    }

    /// The sandbox's lock if it is free now, else `None`.
    pub fn try_lock_sandbox(&self, id: &str) -> Result<Option<Guard>, RegistryError> {
        let file = self.sandbox_lock_file(id)?;
        match file.file().try_lock() {
            Ok(()) => Ok(Some(Guard { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(self.io("lock a sandbox")(e)),
        }
    }

    fn sandbox_lock_file(&self, id: &str) -> Result<fs_err::File, RegistryError> {
        let dir = self.dir.join("locks");
        fs_err::create_dir_all(&dir).map_err(self.io("create"))?;
        fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{id}.lock")))
            .map_err(self.io("open a sandbox lock"))
    }

    pub fn all(&self, _guard: &Guard) -> Result<Vec<Record>, RegistryError> {
        self.read_all()
    }

    /// Reads every record without taking the lock: a snapshot for reports.
    /// Records are replaced atomically, so each one read is whole. A corrupt
    /// one is left out, so that it stops no other sandbox; [`Self::corrupt`]
    /// names it.
    pub fn read_all(&self) -> Result<Vec<Record>, RegistryError> {
        let mut out: Vec<Record> = self
            .read_each()?
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The records that cannot be read, for `status` and `gc` to name.
    pub fn corrupt(&self) -> Result<Vec<RegistryError>, RegistryError> {
        Ok(self
            .read_each()?
            .into_iter()
            .filter_map(Result::err)
            .collect())
    }

    fn read_each(&self) -> Result<Vec<Result<Record, RegistryError>>, RegistryError> {
        let entries = match fs_err::read_dir(self.records_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("list")(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(self.io("list"))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push(self.read(&path));
            }
        }
        Ok(out)
    }

    pub fn get(&self, id: &str) -> Result<Option<Record>, RegistryError> {
        let path = self.record_path(id);
        if !path.exists() {
            return Ok(None);
        }
        self.read(&path).map(Some)
    }

    fn read(&self, path: &Path) -> Result<Record, RegistryError> {
        let corrupt = |reason: String| RegistryError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        // Never followed: a record is provision's own file.
        if fs_err::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(corrupt("it is a symlink".into()));
        }
        let text = fs_err::read_to_string(path).map_err(|e| corrupt(e.to_string()))?;
        let record: Record = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        check(&record, &stem).map_err(corrupt)?;
        Ok(record)
    }

    pub fn put(&self, _guard: &Guard, record: &Record) -> Result<(), RegistryError> {
        // A path that is not UTF-8 has no JSON form: said, not a panic.
        let mut text = serde_json::to_string_pretty(record).map_err(|e| {
            self.io("write")(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        })?;
        text.push('\n');
        fsutil::write_atomically(&self.record_path(&record.id), text.as_bytes())
            .map_err(self.io("write"))
    }

    pub fn delete(&self, _guard: &Guard, id: &str) -> Result<(), RegistryError> {
        match fs_err::remove_file(self.record_path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("delete")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            id: "wt".into(),
            name: "feature".into(),
            path: "/repo/wt".into(),
            branch: Some("feature".into()),
            database: DatabaseRecord {
                kind: DatabaseKind::Postgres,
                name: "app_feature".into(),
                location: "postgres:app_feature".into(),
                seed: None,
            },
            port: 20001,
            ports: NamedPorts::new(),
            lock_hash: None,
            removing: false,
        }
    }

    /// The kind is written as the word it always was, and an unknown word
    /// read back is refused, naming the file and the field.
    #[test]
    fn a_record_keeps_its_kind_as_a_word() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(dir.path());
        let guard = registry.lock().unwrap();
        registry.put(&guard, &record()).unwrap();
        let file = dir.path().join("provision/sandboxes/wt.json");
        let text = fs_err::read_to_string(&file).unwrap();
        assert!(text.contains("\"kind\": \"postgres\","), "{text}");
        assert_eq!(registry.get("wt").unwrap(), Some(record()));

        fs_err::write(&file, text.replace("\"postgres\"", "\"mysql\"")).unwrap();
        let err = registry.get("wt").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "registry record {} is corrupt: database.kind: unknown variant `mysql`, expected one of `sqlite`, `postgres`, `command`",
                file.display()
            )),
            "{err}"
        );
    }
}
