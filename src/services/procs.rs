//! Processes as Linux's `/proc` shows them, and signals sent so that they
//! reach the process that was looked at and no other.
//!
//! A pid alone does not name a process: once it exits, the kernel hands its
//! number to the next one. A process is named here by its pid and its start
//! time (`/proc/PID/stat` field 22, clock ticks since boot, which a recycled
//! pid cannot share with the process it replaces), and within one boot
//! (`/proc/sys/kernel/random/boot_id`). Signals go through a pidfd opened
//! before the start time is checked again, so a pid recycled in between is
//! never signalled.

use std::path::{Path, PathBuf};

/// A process's identity: its pid and its start time within this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id {
    pub pid: i32,
    pub start: u64,
}

/// What `/proc/PID/stat` says of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub id: Id,
    pub ppid: i32,
    pub pgid: i32,
    /// `Z` (zombie) and `X` (dead) have ended.
    pub state: char,
}

impl Stat {
    pub fn ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses
/// and may itself hold spaces and `)`, so fields are counted from its last
/// `)`.
pub fn parse_stat(pid: i32, text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 3 (state), 4 (ppid), 5 (pgrp), 22 (starttime), counted from 1.
    Some(Stat {
        id: Id {
            pid,
            start: fields.get(22 - 3)?.parse().ok()?,
        },
        state: fields.first()?.chars().next()?,
        ppid: fields.get(4 - 3)?.parse().ok()?,
        pgid: fields.get(5 - 3)?.parse().ok()?,
    })
}

fn proc_path(pid: i32, file: &str) -> PathBuf {
    Path::new("/proc").join(pid.to_string()).join(file)
}

pub fn stat(pid: i32) -> Option<Stat> {
    let text = fs_err::read_to_string(proc_path(pid, "stat")).ok()?;
    parse_stat(pid, &text)
}

/// Whether the process `id` is still running (not ended, not replaced).
pub fn running(id: Id) -> bool {
    stat(id.pid).is_some_and(|s| s.id == id && !s.ended())
}

/// This boot's id; empty where the kernel does not say.
pub fn boot_id() -> String {
    fs_err::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_string())
        .unwrap_or_default()
}

/// Every pid `/proc` lists of a process that runs as the same user as
/// provision (`/proc/PID` belongs to the process's user): even as root,
/// provision never stops another user's work.
pub fn own_pids() -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = fs_err::metadata("/proc/self").map(|m| m.uid()) else {
        return Vec::new();
    };
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let entry = e.ok()?;
            let pid = entry.file_name().to_str()?.parse().ok()?;
            (entry.metadata().ok()?.uid() == me).then_some(pid)
        })
        .collect()
}

/// A process's working directory, and whether that folder has been
/// deleted since (the kernel then adds ` (deleted)` to the path). `None`
/// for a process of another user, or one that has ended.
pub fn cwd(pid: i32) -> Option<(PathBuf, bool)> {
    let link = fs_err::read_link(proc_path(pid, "cwd")).ok()?;
    let text = link.to_str()?;
    Some(match text.strip_suffix(" (deleted)") {
        Some(path) => (PathBuf::from(path), true),
        None => (link, false),
    })
}

/// The value of `key` in the environment a process was started with.
pub fn env_var(pid: i32, key: &str) -> Option<String> {
    let environ = fs_err::read(proc_path(pid, "environ")).ok()?;
    let prefix = format!("{key}=");
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// Waits (up to a second) until a process just spawned shows `key=value`
/// in its environment; false if it does not, or ends first. The kernel
/// lets a spawning parent go on before the new program's environment is in
/// place: until then `/proc/PID/environ` reads empty, and a check made
/// then would not know the process.
pub fn await_env(id: Id, key: &str, value: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        if env_var(id.pid, key).as_deref() == Some(value) {
            return true;
        }
        if !running(id) || std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// The command line, for a person: its words joined by spaces, cut to a
/// length that fits on one line.
pub fn command(pid: i32) -> String {
    const MAX: usize = 80;
    let words = fs_err::read(proc_path(pid, "cmdline")).unwrap_or_default();
    let mut text: String = String::from_utf8_lossy(&words)
        .split('\0')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        text = fs_err::read_to_string(proc_path(pid, "comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_default();
    }
    if text.chars().count() > MAX {
        text = text.chars().take(MAX - 1).collect::<String>() + "…";
    }
    text
}

/// Provision itself and every process it descends from (the shell or
/// agent that started it): never stopped, even where their folder lies in
/// a worktree being removed.
pub fn self_and_ancestors() -> Vec<i32> {
    let mut out = Vec::new();
    let mut pid = std::process::id() as i32;
    while pid > 0 && !out.contains(&pid) {
        out.push(pid);
        pid = stat(pid).map_or(0, |s| s.ppid);
    }
    out
}

/// A signal provision sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
}

/// Sends `signal` to the process `id`, if it is still that process: the
/// pidfd pins the process, and its start time is checked once the pidfd
/// is open. `Ok(false)`: it had ended, or its pid now names another.
#[cfg(target_os = "linux")]
pub fn signal(id: Id, signal: Signal) -> std::io::Result<bool> {
    use rustix::process::{self, Pid, PidfdFlags};
    let Some(pid) = Pid::from_raw(id.pid).filter(|_| id.pid > 1) else {
        return Ok(false);
    };
    let pidfd = match process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if !running(id) {
        return Ok(false);
    }
    let sig = match signal {
        Signal::Term => process::Signal::TERM,
        Signal::Kill => process::Signal::KILL,
    };
    match process::pidfd_send_signal(&pidfd, sig) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn signal(_: Id, _: Signal) -> std::io::Result<bool> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "stopping processes needs Linux (/proc and pidfds)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let text = "4242 (my (odd) cmd) S 10 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        let stat = parse_stat(4242, text).unwrap();
        assert_eq!(
            stat,
            Stat {
                id: Id {
                    pid: 4242,
                    start: 987654
                },
                ppid: 10,
                pgid: 4242,
                state: 'S',
            }
        );
        assert!(!stat.ended());
        let zombie = text.replace(") S ", ") Z ");
        assert!(parse_stat(4242, &zombie).unwrap().ended());
        assert_eq!(parse_stat(1, "1 (cut"), None);
        assert_eq!(parse_stat(1, "1 (x) S 0 1"), None);
    }

    #[test]
    fn this_process_is_seen_as_it_is() {
        let me = std::process::id() as i32;
        let stat = stat(me).unwrap();
        assert!(running(stat.id));
        assert!(!running(Id {
            start: stat.id.start + 1,
            ..stat.id
        }));
        let (dir, deleted) = cwd(me).unwrap();
        assert_eq!(dir, std::env::current_dir().unwrap());
        assert!(!deleted);
        assert!(self_and_ancestors().starts_with(&[me, stat.ppid]));
        assert!(own_pids().contains(&me));
        assert!(!boot_id().is_empty());
    }

    /// A start time that does not match is another process: no signal.
    #[test]
    fn a_recycled_pid_is_not_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let id = stat(pid).unwrap().id;
        let other = Id {
            start: id.start.wrapping_sub(1),
            ..id
        };
        assert!(!signal(other, Signal::Kill).unwrap());
        assert!(running(id));
        assert!(signal(id, Signal::Term).unwrap());
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(15)
        );
        assert!(!signal(id, Signal::Kill).unwrap());
    }
}
