//! Which processes belong to a sandbox, and stopping them: SIGTERM, then
//! SIGKILL for what is still running after its grace period.
//!
//! Provision signals only a process it can prove is the sandbox's:
//!
//! - a service's: it carries the service's token in its environment
//!   (`PROVISION_SERVICE_ID`, inherited by everything the service starts),
//!   or it is in the process group of a service leader that is still the
//!   process provision started (same pid, same start time);
//! - a stray: its working directory is inside the worktree (and not inside
//!   another worktree nested in it).
//!
//! Provision itself and the processes it descends from (the shell or agent
//! that ran `provision remove`) are never stopped, and are named instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::procs::{self, Id, Signal};
pub use super::stopped::{How, Stopped, describe};

/// One process as a scan of `/proc` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub id: Id,
    pub pgid: i32,
    /// Its working directory, and whether that folder was deleted since.
    pub cwd: Option<(PathBuf, bool)>,
    /// Its `PROVISION_SERVICE_ID`, if it has one.
    pub token: Option<String>,
    pub command: String,
}

/// A service of the sandbox, as its record (checked against `/proc`) says.
#[derive(Debug, Clone)]
pub struct Owned {
    pub name: String,
    pub token: String,
    /// The process provision started, if it is still that process.
    pub leader: Option<Id>,
    pub grace: Duration,
}

/// Where the sandbox's strays are looked for.
#[derive(Debug, Clone)]
pub struct Folder {
    /// The worktree (canonical where it still exists).
    pub path: PathBuf,
    /// Whether a process may be in it as it is now; false once git's entry
    /// is gone, when only processes in the deleted folder are the
    /// sandbox's (the path may hold something else by now).
    pub live: bool,
    /// Other worktrees inside it: their processes are theirs.
    pub nested: Vec<PathBuf>,
    pub grace: Duration,
}

/// Why a process is the sandbox's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum Why {
    /// Part of the named service.
    Service(String),
    /// Its working directory is inside the worktree.
    Folder(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: Id,
    pub command: String,
    pub why: Why,
    pub grace: Duration,
}

/// The processes to stop, and the ones in the worktree that are spared
/// because provision runs under them.
pub fn choose(
    seen: &[Seen],
    services: &[Owned],
    folder: Option<&Folder>,
    spared: &[i32],
) -> (Vec<Target>, Vec<Target>) {
    let by_token: BTreeMap<&str, &Owned> = services.iter().map(|s| (s.token.as_str(), s)).collect();
    let (mut stop, mut keep) = (Vec::new(), Vec::new());
    for process in seen.iter().filter(|p| p.id.pid > 1) {
        let service = (process.token.as_deref())
            .and_then(|token| by_token.get(token).copied())
            .or_else(|| {
                (services.iter()).find(|s| s.leader.is_some_and(|l| l.pid == process.pgid))
            });
        let target = match (service, folder) {
            (Some(service), _) => Target {
                id: process.id,
                command: process.command.clone(),
                why: Why::Service(service.name.clone()),
                grace: service.grace,
            },
            (None, Some(folder)) if inside(process, folder) => Target {
                id: process.id,
                command: process.command.clone(),
                why: Why::Folder(folder_text(process)),
                grace: folder.grace,
            },
            _ => continue,
        };
        if spared.contains(&process.id.pid) {
            keep.push(target);
        } else {
            stop.push(target);
        }
    }
    (stop, keep)
}

/// The process's working directory is in the folder and not in a
/// worktree nested in it.
fn inside(process: &Seen, folder: &Folder) -> bool {
    let Some((cwd, deleted)) = &process.cwd else {
        return false;
    };
    (folder.live || *deleted)
        && cwd.starts_with(&folder.path)
        && !folder.nested.iter().any(|n| cwd.starts_with(n))
}

fn folder_text(process: &Seen) -> String {
    match &process.cwd {
        Some((cwd, true)) => format!("{} (deleted)", cwd.display()),
        Some((cwd, false)) => cwd.display().to_string(),
        None => String::new(),
    }
}

/// Every process of the calling user, as `/proc` shows it.
pub fn scan() -> Vec<Seen> {
    procs::own_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = procs::stat(pid).filter(|s| !s.ended())?;
            Some(Seen {
                id: stat.id,
                pgid: stat.pgid,
                cwd: procs::cwd(pid),
                token: procs::env_var(pid, super::TOKEN_VAR),
                command: procs::command(pid),
            })
        })
        .collect()
}

/// How long past its grace a process killed with SIGKILL may take to go.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// SIGTERM to every target, then SIGKILL to each still running once its
/// grace is over; waits until all have ended.
pub fn stop(targets: &[Target]) -> Vec<Stopped> {
    let started = Instant::now();
    let mut out = Vec::new();
    // (target, killed)
    let mut running: Vec<(&Target, bool)> = Vec::new();
    for target in targets {
        match procs::signal(target.id, Signal::Term) {
            Ok(true) => running.push((target, false)),
            // Ended before it was signalled: nothing of it is left running.
            Ok(false) => out.push(Stopped::of(target, How::Terminated)),
            Err(_) => out.push(Stopped::of(target, How::Failed)),
        }
    }
    while !running.is_empty() {
        let now = started.elapsed();
        running.retain(|(target, killed)| {
            let alive = procs::running(target.id);
            if !alive {
                let how = if *killed {
                    How::Killed
                } else {
                    How::Terminated
                };
                out.push(Stopped::of(target, how));
            } else if *killed && now > target.grace + KILL_WAIT {
                out.push(Stopped::of(target, How::Failed));
                return false;
            }
            alive
        });
        for (target, killed) in running.iter_mut() {
            if !*killed && now >= target.grace {
                *killed = true;
                // One that cannot be signalled is reported once KILL_WAIT is over.
                let _ = procs::signal(target.id, Signal::Kill);
            }
        }
        std::thread::sleep(POLL);
    }
    out
}

/// The folder as the kernel names it in `/proc/PID/cwd`: canonical while
/// it exists.
pub fn canonical(path: &Path) -> PathBuf {
    fs_err::canonicalize(path).unwrap_or_else(|_| crate::fsutil::normalize(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(pid: i32) -> Id {
        Id { pid, start: 100 }
    }

    fn seen(pid: i32, pgid: i32, cwd: &str, token: Option<&str>) -> Seen {
        let deleted = cwd.ends_with(" (deleted)");
        Seen {
            id: id(pid),
            pgid,
            cwd: Some((PathBuf::from(cwd.trim_end_matches(" (deleted)")), deleted)),
            token: token.map(str::to_string),
            command: format!("cmd{pid}"),
        }
    }

    fn web(leader: Option<i32>) -> Owned {
        Owned {
            name: "web".into(),
            token: "t1".into(),
            leader: leader.map(id),
            grace: Duration::from_secs(1),
        }
    }

    fn folder(live: bool) -> Folder {
        Folder {
            path: "/w/wt".into(),
            live,
            nested: vec!["/w/wt/inner".into()],
            grace: Duration::from_secs(5),
        }
    }

    fn pids(targets: &[Target]) -> Vec<i32> {
        targets.iter().map(|t| t.id.pid).collect()
    }

    #[test]
    fn a_service_is_its_token_or_its_live_leaders_group() {
        let processes = [
            seen(10, 10, "/elsewhere", Some("t1")),
            seen(11, 10, "/elsewhere", None),
            seen(12, 12, "/elsewhere", Some("t2")),
            seen(13, 13, "/elsewhere", None),
        ];
        let (stop, keep) = choose(&processes, &[web(Some(10))], None, &[]);
        assert_eq!(pids(&stop), [10, 11]);
        assert!(stop.iter().all(|t| t.why == Why::Service("web".into())));
        assert_eq!(stop[0].grace, Duration::from_secs(1));
        assert!(keep.is_empty());
        // The leader is gone (or its pid was recycled): its group number
        // proves nothing any more, only the token does.
        let (stop, _) = choose(&processes, &[web(None)], None, &[]);
        assert_eq!(pids(&stop), [10]);
    }

    #[test]
    fn a_stray_is_a_process_whose_folder_is_in_the_worktree() {
        let processes = [
            seen(20, 20, "/w/wt", None),
            seen(21, 21, "/w/wt/src/deep", None),
            seen(22, 22, "/w/wt-other", None),
            seen(23, 23, "/w/wt/inner/x", None),
            seen(24, 24, "/w/wt/gone (deleted)", None),
            seen(25, 25, "/w", None),
            seen(1, 1, "/w/wt", None),
        ];
        let (stop, _) = choose(&processes, &[], Some(&folder(true)), &[]);
        assert_eq!(pids(&stop), [20, 21, 24]);
        assert_eq!(stop[2].why, Why::Folder("/w/wt/gone (deleted)".into()));
        // Once git's entry is gone, only the deleted folder's processes
        // are provably the sandbox's.
        let (stop, _) = choose(&processes, &[], Some(&folder(false)), &[]);
        assert_eq!(pids(&stop), [24]);
    }

    #[test]
    fn provision_and_its_callers_are_spared() {
        let processes = [
            seen(30, 30, "/w/wt", None),
            seen(31, 31, "/w/wt", Some("t1")),
        ];
        let (stop, keep) = choose(&processes, &[web(None)], Some(&folder(true)), &[30, 31]);
        assert!(stop.is_empty());
        assert_eq!(pids(&keep), [30, 31]);
    }

    #[test]
    fn a_process_without_a_readable_folder_or_token_is_never_chosen() {
        let mut process = seen(40, 40, "/w/wt", None);
        process.cwd = None;
        let (stop, keep) = choose(&[process], &[web(Some(41))], Some(&folder(true)), &[]);
        assert!(stop.is_empty() && keep.is_empty());
    }

    #[test]
    fn stopping_ends_a_real_process_and_says_how() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let id = procs::stat(child.id() as i32).unwrap().id;
        let target = Target {
            id,
            command: "sleep 30".into(),
            why: Why::Folder("/x".into()),
            grace: Duration::from_secs(5),
        };
        let reaper = std::thread::spawn(move || child.wait().unwrap());
        let stopped = stop(std::slice::from_ref(&target));
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0].how, How::Terminated);
        assert_eq!(
            describe(&stopped),
            [format!(
                "stopped a process working in /x: pid {} (sleep 30)",
                id.pid
            )]
        );
        reaper.join().unwrap();
    }
}
