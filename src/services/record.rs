//! What provision keeps of the services it started, per worktree under the
//! git common dir (`.git/provision/services/<worktree id>/`): for each
//! service `NAME.json` (its record), `NAME.log` (its output) and, once it
//! has ended by itself, `NAME.exit` (its exit status, written by the shell
//! that waited for it).
//!
//! Records are read back, so they are checked before anything acts on
//! them: a record names a process, and a signal to the wrong one would hit
//! someone else's work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::procs::{self, Id};
use crate::fsutil;
use crate::recipe::config::is_service_name;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot {0} {path}", path = .1.display())]
    Io(&'static str, PathBuf, #[source] std::io::Error),
    #[error("service record {path} is not one provision wrote: {1}", path = .0.display())]
    Invalid(PathBuf, String),
}

/// One service as `provision up` started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub name: String,
    /// The command as the recipe had it when it started.
    pub run: String,
    /// The process provision started (a shell that waits for the command,
    /// in a process group of its own: the group's id is this pid).
    pub pid: i32,
    /// Its start time, in clock ticks since boot (`/proc/PID/stat`).
    pub start: u64,
    /// The boot it was started in.
    pub boot: String,
    /// In the environment of every process of the service, as
    /// `PROVISION_SERVICE_ID`: 16 hex digits.
    pub token: String,
    /// The sandbox and worktree it was started in.
    pub sandbox: String,
    pub worktree: PathBuf,
    /// Between SIGTERM and SIGKILL, in milliseconds.
    pub grace_ms: u64,
}

impl Record {
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms)
    }

    /// The process provision started, if it still runs as that process
    /// (same boot, same pid and start time, and it carries the token).
    pub fn leader(&self) -> Option<Id> {
        let id = Id {
            pid: self.pid,
            start: self.start,
        };
        let ours = self.boot == procs::boot_id()
            && procs::running(id)
            && procs::env_var(self.pid, super::TOKEN_VAR).as_deref() == Some(&self.token);
        ours.then_some(id)
    }

    /// Why this record cannot be one provision wrote for `name`, if so.
    fn invalid(&self, name: &str) -> Option<String> {
        if self.name != name || !is_service_name(&self.name) {
            Some(format!("it names service `{}`", self.name))
        } else if self.pid <= 1 || self.start == 0 {
            Some(format!("pid {} started at {}", self.pid, self.start))
        } else if self.token.len() != 16 || !self.token.chars().all(|c| c.is_ascii_hexdigit()) {
            Some(format!("token `{}`", self.token))
        } else if !self.worktree.is_absolute() {
            Some(format!("worktree {}", self.worktree.display()))
        } else {
            None
        }
    }
}

/// One worktree's folder of service records and logs.
#[derive(Debug, Clone)]
pub struct Dir {
    path: PathBuf,
}

impl Dir {
    pub fn new(common_dir: &Path, worktree_id: &str) -> Self {
        Dir {
            path: common_dir
                .join("provision")
                .join("services")
                .join(worktree_id),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, name: &str, extension: &str) -> PathBuf {
        self.path.join(format!("{name}.{extension}"))
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.file(name, "log")
    }

    pub fn exit_file(&self, name: &str) -> PathBuf {
        self.file(name, "exit")
    }

    /// The record of service `name`; `Ok(None)` when there is none.
    pub fn read(&self, name: &str) -> Result<Option<Record>, RecordError> {
        let path = self.file(name, "json");
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RecordError::Io("read", path, e)),
        };
        let record: Record = serde_json::from_str(&text)
            .map_err(|e| RecordError::Invalid(path.clone(), e.to_string()))?;
        match record.invalid(name) {
            Some(why) => Err(RecordError::Invalid(path, why)),
            None => Ok(Some(record)),
        }
    }

    /// The names of every service with a record, sorted.
    pub fn names(&self) -> Vec<String> {
        let Ok(entries) = fs_err::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".json")?;
                is_service_name(stem).then(|| stem.to_string())
            })
            .collect();
        names.sort();
        names
    }

    /// Writes a fresh record, clearing the exit status of an earlier run.
    pub fn write(&self, record: &Record) -> Result<(), RecordError> {
        let path = self.file(&record.name, "json");
        let mut text = serde_json::to_string_pretty(record).expect("a record serializes");
        text.push('\n');
        fsutil::write_atomically(&path, text.as_bytes())
            .map_err(|e| RecordError::Io("write", path, e))
    }

    /// How the service's last run ended, as its shell wrote it.
    pub fn exit_status(&self, name: &str) -> Option<i32> {
        fs_err::read_to_string(self.exit_file(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Deletes the record and exit status of `name`; the log stays.
    pub fn forget(&self, name: &str) -> Result<(), RecordError> {
        for path in [self.file(name, "json"), self.exit_file(name)] {
            match fs_err::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RecordError::Io("delete", path, e)),
            }
        }
        Ok(())
    }

    /// Deletes the folder with every record and log: the sandbox is gone.
    pub fn remove(&self) -> Result<(), RecordError> {
        match fs_err::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RecordError::Io("delete", self.path.clone(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            name: "web".into(),
            run: "serve".into(),
            pid: 4242,
            start: 100,
            boot: "b".into(),
            token: "0123456789abcdef".into(),
            sandbox: "feature".into(),
            worktree: "/w/wt".into(),
            grace_ms: 5000,
        }
    }

    #[test]
    fn records_read_back_and_bad_ones_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::new(tmp.path(), "wt");
        fs_err::create_dir_all(dir.path()).unwrap();
        dir.write(&record()).unwrap();
        assert_eq!(dir.read("web").unwrap(), Some(record()));
        assert_eq!(dir.names(), ["web"]);
        assert_eq!(dir.read("api").unwrap(), None);

        let file = dir.path().join("web.json");
        for (edit, why) in [
            (("\"pid\": 4242", "\"pid\": 1"), "pid 1 started at 100"),
            (
                ("\"name\": \"web\"", "\"name\": \"x/y\""),
                "it names service `x/y`",
            ),
            (("0123456789abcdef", "0123"), "token `0123`"),
            (("\"/w/wt\"", "\"wt\""), "worktree wt"),
        ] {
            dir.write(&record()).unwrap();
            let text = fs_err::read_to_string(&file)
                .unwrap()
                .replace(edit.0, edit.1);
            fs_err::write(&file, text).unwrap();
            let err = dir.read("web").unwrap_err().to_string();
            assert!(err.ends_with(why), "{err}");
        }
        fs_err::write(&file, "{").unwrap();
        assert!(dir.read("web").is_err());

        fs_err::write(dir.exit_file("web"), "3\n").unwrap();
        assert_eq!(dir.exit_status("web"), Some(3));
        dir.forget("web").unwrap();
        assert_eq!(dir.exit_status("web"), None);
        assert!(dir.names().is_empty());
    }

    /// A record naming a process that is not the one provision started
    /// (another start time, another boot, no token) has no leader.
    #[test]
    fn a_leader_is_proved_not_assumed() {
        let me = procs::stat(std::process::id() as i32).unwrap().id;
        let mut record = Record {
            pid: me.pid,
            start: me.start,
            boot: procs::boot_id(),
            ..record()
        };
        // This test process carries no token.
        assert_eq!(record.leader(), None);
        record.start += 1;
        assert_eq!(record.leader(), None);

        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(super::super::TOKEN_VAR, &record.token)
            .spawn()
            .unwrap();
        let id = procs::stat(child.id() as i32).unwrap().id;
        assert!(procs::await_env(id, super::super::TOKEN_VAR, &record.token));
        let record = Record {
            pid: id.pid,
            start: id.start,
            ..record
        };
        assert_eq!(record.leader(), Some(id));
        let other_boot = Record {
            boot: "another boot".into(),
            ..record.clone()
        };
        assert_eq!(other_boot.leader(), None);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(record.leader(), None);
    }
}
