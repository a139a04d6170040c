//! `provision up` and `down`: starting a sandbox's services and stopping
//! them again.

use std::path::Path;

use serde::Serialize;

use super::{Here, How, NAME_VAR, Record, ServiceError, Stopped, TOKEN_VAR};
use super::{procs, stop, stop_processes, unknown};
use crate::BoxError;
use crate::recipe::config::{self, Service};
use crate::shell::Shell;

/// What `up` did with one service.
#[derive(Debug, Serialize)]
pub struct Up {
    pub name: String,
    pub pid: i32,
    /// False: it was running already, and nothing was started.
    pub started: bool,
    pub log: String,
}

/// Starts each service of `services` that is not running, in the worktree;
/// one that is running is left as it is.
pub fn up(here: &Here, services: &[&Service]) -> Result<Vec<Up>, BoxError> {
    let checkout = &here.workspace.checkout;
    // `up`, `down`, `apply`, `remove` and `gc` take turns on a sandbox.
    let _turn = here.workspace.registry.lock_sandbox(&checkout.id)?;
    let mut out = Vec::new();
    for service in services {
        let log = here.dir.log(&service.name).display().to_string();
        let recorded = (here.dir.read(&service.name))
            .map_err(|e| ServiceError::Unreadable(service.name.clone(), e))?;
        if let Some(record) = recorded {
            if let Some(leader) = record.leader() {
                out.push(Up {
                    name: service.name.clone(),
                    pid: leader.pid,
                    started: false,
                    log,
                });
                continue;
            }
            let left = left_running(&record.token);
            if !left.is_empty() {
                let pids: Vec<String> = left.iter().map(|p| p.to_string()).collect();
                return Err(ServiceError::LeftRunning {
                    name: service.name.clone(),
                    pids: pids.join(", "),
                }
                .into());
            }
        }
        let record =
            start(here, service).map_err(|e| ServiceError::Start(service.name.clone(), e))?;
        here.dir.write(&record)?;
        out.push(Up {
            name: service.name.clone(),
            pid: record.pid,
            started: true,
            log,
        });
    }
    Ok(out)
}

/// The pids of running processes that carry `token`.
fn left_running(token: &str) -> Vec<i32> {
    stop::scan()
        .into_iter()
        .filter(|p| p.token.as_deref() == Some(token))
        .map(|p| p.id.pid)
        .collect()
}

/// Starts one service: its log starts empty, its exit status unknown.
fn start(here: &Here, service: &Service) -> std::io::Result<Record> {
    let checkout = &here.workspace.checkout;
    fs_err::create_dir_all(here.dir.path())?;
    let log = fs_err::File::create(here.dir.log(&service.name))?;
    let exit_file = here.dir.exit_file(&service.name);
    match fs_err::remove_file(&exit_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let token = token(checkout.common_dir.as_path(), &checkout.id, &service.name);
    let extra = [(NAME_VAR, service.name.clone()), (TOKEN_VAR, token.clone())];
    let shell = Shell {
        template: &service.run,
        cwd: &checkout.root,
        values: &here.values,
        env: &here.env,
        worktree: &checkout.root,
        extra_env: &extra,
        quiet: false,
    };
    let what = format!(
        "{}:{}: services.{}",
        config::FILE_NAME,
        service.line,
        service.name
    );
    let child = shell.start(&what, log.into_parts().0, &exit_file)?;
    let pid = child.id() as i32;
    // Not yet reaped, so its pid names it until provision exits. Its record
    // is written once its token shows, so every later look proves it.
    let stat = procs::stat(pid).ok_or_else(|| std::io::Error::other("it vanished at once"))?;
    if !procs::await_env(stat.id, TOKEN_VAR, &token) && procs::running(stat.id) {
        // Unprovable later, so it is not left running.
        let _ = procs::signal(stat.id, procs::Signal::Kill);
        return Err(std::io::Error::other(format!(
            "its environment did not show {TOKEN_VAR} within a second of pid {pid} starting"
        )));
    }
    Ok(Record {
        name: service.name.clone(),
        run: service.run.clone(),
        pid,
        start: stat.id.start,
        boot: procs::boot_id(),
        token,
        sandbox: here.name.clone(),
        worktree: checkout.root.clone(),
        grace_ms: service.grace.as_millis() as u64,
    })
}

/// A token no other run shares: the service and the moment it started.
fn token(common_dir: &Path, id: &str, name: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seed = format!(
        "{}\0{id}\0{name}\0{now}\0{}",
        common_dir.display(),
        std::process::id()
    );
    crate::hash::short(&seed, 16)
}

/// What `down` did with one service.
#[derive(Debug, Serialize)]
pub struct Down {
    pub name: String,
    /// It had ended by itself before `down`: how.
    pub exited: Option<Exited>,
    pub stopped: Vec<Stopped>,
    /// Its record could not be read, so nothing was signalled by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// How a service ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Exited {
    /// Its exit status, when its shell lived to write it.
    pub status: Option<i32>,
}

/// Stops `names` (every service with a record when empty): SIGTERM, then
/// SIGKILL after each one's grace period; forgets their records.
pub fn down(here: &Here, names: &[String]) -> Result<Vec<Down>, BoxError> {
    let checkout = &here.workspace.checkout;
    let _turn = here.workspace.registry.lock_sandbox(&checkout.id)?;
    let recorded = here.dir.names();
    let names: Vec<String> = if names.is_empty() {
        recorded.clone()
    } else {
        names.to_vec()
    };
    let declared = &here.workspace.settings.services;
    let mut owned = Vec::new();
    let mut out = Vec::new();
    for name in names {
        if !recorded.contains(&name) && !declared.iter().any(|s| s.name == name) {
            return Err(unknown(&name, declared).into());
        }
        let mut down = Down {
            name: name.clone(),
            exited: None,
            stopped: Vec::new(),
            unreadable: None,
        };
        match here.dir.read(&name) {
            Ok(Some(record)) => {
                let leader = record.leader();
                if leader.is_none() {
                    down.exited = Some(Exited {
                        status: here.dir.exit_status(&name),
                    });
                }
                owned.push(stop::Owned {
                    name: name.clone(),
                    grace: record.grace(),
                    token: record.token,
                    leader,
                });
            }
            Ok(None) => {}
            Err(e) => down.unreadable = Some(e.to_string()),
        }
        out.push(down);
    }
    let stopped = stop_processes(&owned, None, false);
    for down in &mut out {
        down.stopped = (stopped.iter())
            .filter(|s| s.why == stop::Why::Service(down.name.clone()))
            .cloned()
            .collect();
        if down.stopped.iter().all(|s| s.how != How::Failed) {
            here.dir.forget(&down.name)?;
        }
    }
    Ok(out)
}
