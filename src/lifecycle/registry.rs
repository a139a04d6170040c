//! The registry: what provision created, one record per sandbox, kept under
//! the git common dir (shared by every worktree, never committed). These
//! records are the roots `gc` works from and the ledger ports are handed
//! out from. Every change happens under one file lock, with atomic writes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::git::Worktree;
use crate::recipe::config::{DatabaseKind, PortRange};
use crate::sandbox::lock::{self, NamedPorts};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {0}")]
    Io(String, #[source] std::io::Error),
    #[error("registry record {0} is corrupt")]
    Corrupt(String, #[source] serde_json::Error),
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
}

impl Record {
    /// Every port the sandbox holds, by name.
    pub fn named_ports(&self) -> NamedPorts {
        lock::named_ports(self.port, &self.ports)
    }

    /// The ports as one phrase: `port 20001`, or `ports API=20002, WEB=20001`.
    pub fn ports_text(&self) -> String {
        ports_text(&self.named_ports())
    }
}

/// `port 20001` for the one default port, else `ports API=20002, WEB=20001`.
pub fn ports_text(ports: &NamedPorts) -> String {
    if lock::stored_ports(ports).is_empty()
        && let Some(port) = ports.values().next()
    {
        return format!("port {port}");
    }
    let each: Vec<String> = ports.iter().map(|(n, p)| format!("{n}={p}")).collect();
    format!("ports {}", each.join(", "))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseRecord {
    #[serde(deserialize_with = "crate::db::read_kind")]
    pub kind: DatabaseKind,
    pub name: String,
    pub location: String,
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
    /// Records are replaced atomically, so each one read is whole.
    pub fn read_all(&self) -> Result<Vec<Record>, RegistryError> {
        let entries = match fs_err::read_dir(self.records_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("list")(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(self.io("list"))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push(self.read(&path)?);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
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
        let text = fs_err::read_to_string(path).map_err(self.io("read"))?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        serde_json::from_str(&text).map_err(|e| RegistryError::Corrupt(name, e))
    }

    pub fn put(&self, _guard: &Guard, record: &Record) -> Result<(), RegistryError> {
        let mut text = serde_json::to_string_pretty(record).expect("a record always serializes");
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

/// The ports sandbox `seed` holds for `names`. A name keeps its port in
/// `kept` (what the sandbox held before: ports stay stable across `apply`);
/// each other name gets a port that no record holds (`taken`), none of the
/// sandbox's own has, and nothing listens on (`free`). The first name's
/// search starts where a single port's always did, so a sandbox without
/// `[ports] names` gets the port it always got.
pub fn allocate_ports(
    names: &[String],
    kept: &NamedPorts,
    taken: &BTreeSet<u16>,
    range: PortRange,
    seed: &str,
    free: impl Fn(u16) -> bool,
) -> Result<NamedPorts, RegistryError> {
    let mut ports: NamedPorts = names
        .iter()
        .filter_map(|name| kept.get(name).map(|port| (name.clone(), *port)))
        .collect();
    for (index, name) in names.iter().enumerate() {
        if ports.contains_key(name) {
            continue;
        }
        let mut unavailable = taken.clone();
        unavailable.extend(ports.values());
        let seed = match index {
            0 => seed.to_string(),
            _ => format!("{seed}:{name}"),
        };
        let port = allocate_port(&unavailable, range, &seed, &free)?;
        ports.insert(name.clone(), port);
    }
    Ok(ports)
}

/// A port for `seed` that is not `taken` and that `free` says nothing
/// listens on. The search starts at a point derived from `seed`, so the same
/// sandbox name tends to get the same port in every clone, and walks up from
/// there: collisions are resolved against the registry, never left to chance.
fn allocate_port(
    taken: &BTreeSet<u16>,
    range: PortRange,
    seed: &str,
    free: impl Fn(u16) -> bool,
) -> Result<u16, RegistryError> {
    let size = u32::from(range.last - range.first) + 1;
    let start = u32::from_str_radix(&crate::hash::short(seed, 8), 16).expect("hex") % size;
    (0..size)
        .map(|step| range.first + ((start + step) % size) as u16)
        .find(|port| !taken.contains(port) && free(*port))
        .ok_or(RegistryError::PortsExhausted {
            first: range.first,
            last: range.last,
        })
}

/// Nothing listens on `port` on the loopback interface.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: PortRange = PortRange {
        first: 41000,
        last: 41002,
    };

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn ports_skip_taken_and_wrap() {
        let first = allocate_port(&BTreeSet::new(), RANGE, "a", |_| true).unwrap();
        let taken: BTreeSet<u16> = [41000, 41001, 41002]
            .into_iter()
            .filter(|p| *p != first)
            .collect();
        assert_eq!(allocate_port(&taken, RANGE, "b", |_| true).unwrap(), first);
        let all: BTreeSet<u16> = [41000, 41001, 41002].into();
        assert!(matches!(
            allocate_port(&all, RANGE, "c", |_| true),
            Err(RegistryError::PortsExhausted { .. })
        ));
    }

    /// Every name of a sandbox gets its own port, apart from every other
    /// record's and from what listens; the first starts where a single
    /// port's search always did.
    #[test]
    fn named_ports_are_distinct_and_skip_what_listens() {
        let range = PortRange {
            first: 30000,
            last: 30009,
        };
        let single = allocate_port(&BTreeSet::new(), range, "app/x", |_| true).unwrap();
        let taken = BTreeSet::from([30001, 30005]);
        let listening = 30002;
        let all = names(&["PORT", "API", "VITE", "DEBUG"]);
        let ports = allocate_ports(
            &all,
            &NamedPorts::new(),
            &BTreeSet::new(),
            range,
            "app/x",
            |_| true,
        )
        .unwrap();
        assert_eq!(ports["PORT"], single);
        let ports = allocate_ports(&all, &NamedPorts::new(), &taken, range, "app/x", |p| {
            p != listening
        })
        .unwrap();
        let values: BTreeSet<u16> = ports.values().copied().collect();
        assert_eq!(values.len(), 4, "{ports:?}");
        assert!(values.iter().all(|p| range.first <= *p && *p <= range.last));
        assert!(values.is_disjoint(&BTreeSet::from([30001, 30002, 30005])));
        // Seven ports left for eight names.
        let eight = names(&["A", "B", "C", "D", "E", "F", "G", "H"]);
        let err = allocate_ports(&eight, &NamedPorts::new(), &taken, range, "s", |p| {
            p != listening
        });
        assert!(matches!(err, Err(RegistryError::PortsExhausted { .. })));
    }

    /// A name keeps its port, even one that now listens (the sandbox's own
    /// server); a new name gets a port none of the kept ones has, and a
    /// dropped name's port goes.
    #[test]
    fn kept_ports_stay() {
        let kept = NamedPorts::from([("WEB".to_string(), 41001), ("OLD".to_string(), 41000)]);
        let ports = allocate_ports(
            &names(&["API", "WEB"]),
            &kept,
            &BTreeSet::new(),
            RANGE,
            "s",
            |p| p != 41001,
        )
        .unwrap();
        assert_eq!(ports["WEB"], 41001);
        assert_ne!(ports["API"], 41001);
        assert!(!ports.contains_key("OLD"));
        let again = allocate_ports(
            &names(&["API", "WEB"]),
            &ports,
            &BTreeSet::new(),
            RANGE,
            "s",
            |_| false,
        )
        .unwrap();
        assert_eq!(again, ports);
    }

    #[test]
    fn ports_read_as_one_phrase() {
        let mut record = record();
        assert_eq!(record.ports_text(), "port 20001");
        record.ports = NamedPorts::from([("WEB".to_string(), 20001), ("API".to_string(), 20002)]);
        assert_eq!(record.ports_text(), "ports API=20002, WEB=20001");
    }

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
            },
            port: 20001,
            ports: NamedPorts::new(),
            lock_hash: None,
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
        let err = registry.get("wt").unwrap_err();
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(err.to_string(), "registry record wt.json is corrupt");
        assert!(
            cause.starts_with("database.kind: unknown variant `mysql`, expected one of `sqlite`, `postgres`, `command`"),
            "{cause}"
        );
    }

    #[test]
    fn a_listening_port_is_skipped() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy = listener.local_addr().unwrap().port();
        let range = PortRange {
            first: busy,
            last: busy,
        };
        assert!(allocate_port(&BTreeSet::new(), range, "x", is_free).is_err());
    }
}
