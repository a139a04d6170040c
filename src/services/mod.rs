//! Services tied to a sandbox: the `[[services]]` commands `provision up`
//! starts in a worktree, each in the background in a process group of its
//! own, with the sandbox's env and its output in a log under the git common
//! dir; `down` stops them, and `remove` and `gc` stop them together with
//! every other process still working in the worktree (`stop`).
//!
//! `procs` reads `/proc` and signals processes by pid and start time;
//! `record` keeps what was started; `stop` decides which processes are the
//! sandbox's and stops them.

pub mod procs;
pub mod record;
pub mod stop;
mod stopped;
mod updown;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::BoxError;
use crate::recipe::config::{self, DEFAULT_GRACE, Service};
use crate::sandbox::{lock, overrides, plan};
use crate::workspace::Workspace;
pub use record::{Dir, Record, RecordError};
pub use stop::{How, Stopped};
pub use updown::{Down, Up, down, up};

/// Set in every service's environment: its name.
pub const NAME_VAR: &str = "PROVISION_SERVICE";
/// Set in every service's environment: a token of this run, inherited by
/// every process the service starts, which proves a process is the
/// service's when provision stops it.
pub const TOKEN_VAR: &str = "PROVISION_SERVICE_ID";

/// How many times a stop looks again for processes started meanwhile (a
/// service's shell loop that forked while its children were stopped).
const ROUNDS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no service `{name}` in {}; {known}", config::FILE_NAME)]
    Unknown { name: String, known: String },
    #[error(
        "{} in {} is not a sandbox in the registry (made without provision, or its record is another worktree's): run `provision apply` there first", lock::FILE_NAME, .0.display()
    )]
    NoRecord(PathBuf),
    #[error(
        "service `{name}` ended, but processes it started still run (pids {pids}); `provision down {name}` stops them, then `provision up {name}` starts it again"
    )]
    LeftRunning { name: String, pids: String },
    #[error(
        "cannot tell whether service `{0}` runs: its record cannot be read; `provision down {0}` forgets it (and signals nothing by it)"
    )]
    Unreadable(String, #[source] RecordError),
    #[error("no log of service `{0}` in this sandbox: `provision up {0}` starts it")]
    NoLog(String),
    #[error("cannot start service `{0}`")]
    Start(String, #[source] std::io::Error),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// The sandbox of the worktree provision runs in, as its services see it:
/// the template values and overrides its lock records.
pub struct Here {
    pub workspace: Workspace,
    pub dir: Dir,
    /// The sandbox name.
    pub name: String,
    values: BTreeMap<&'static str, String>,
    env: BTreeMap<String, String>,
}

impl Here {
    /// Needs a sandbox: a lock (whose overrides the services get) and this
    /// worktree's own registry record (whose id keeps the services).
    pub fn discover(cwd: &Path) -> Result<Self, BoxError> {
        let workspace = Workspace::discover(cwd)?;
        let checkout = &workspace.checkout;
        // Checks the lock and its keys; fails where there is none.
        let env = overrides::current(cwd)?.vars;
        let locked = lock::read(&checkout.root, workspace.clone.tag())?
            .ok_or_else(|| overrides::OverridesError::NoSandbox(checkout.root.clone()))?
            .sandbox;
        let registry = &workspace.registry;
        let branch = checkout.branch.as_deref();
        registry
            .get(&checkout.id)?
            .filter(|r| registry.owns_at(r, &r.id, &checkout.root, branch))
            .filter(|r| r.name == locked.worktree)
            .ok_or_else(|| ServiceError::NoRecord(checkout.root.clone()))?;
        let values = plan::values(
            &locked.worktree,
            &workspace.repo,
            workspace.clone.tag(),
            &locked.database.name,
            (locked.port, &locked.named_ports()),
            &checkout.main.to_string_lossy(),
            &checkout.root.to_string_lossy(),
        );
        Ok(Here {
            dir: Dir::new(&checkout.common_dir, &checkout.id),
            name: locked.worktree,
            values,
            env,
            workspace,
        })
    }

    /// The recipe's services named in `names` (all of them when empty).
    pub fn select(&self, names: &[String]) -> Result<Vec<&Service>, ServiceError> {
        let services = &self.workspace.settings.services;
        if names.is_empty() {
            return Ok(services.iter().collect());
        }
        names
            .iter()
            .map(|name| {
                services
                    .iter()
                    .find(|s| s.name == *name)
                    .ok_or_else(|| unknown(name, services))
            })
            .collect()
    }
}

pub(crate) fn unknown(name: &str, services: &[Service]) -> ServiceError {
    let known = if services.is_empty() {
        "it declares no [[services]]".to_string()
    } else {
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        format!("its services are {}", names.join(", "))
    };
    ServiceError::Unknown {
        name: name.to_string(),
        known,
    }
}

/// Stops what `choose` finds (or, with `dry_run`, says what it would
/// stop), looking again for processes started meanwhile.
pub(crate) fn stop_processes(
    owned: &[stop::Owned],
    folder: Option<&stop::Folder>,
    dry_run: bool,
) -> Vec<Stopped> {
    let spared = procs::self_and_ancestors();
    let mut out: Vec<Stopped> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..ROUNDS {
        let (targets, kept) = stop::choose(&stop::scan(), owned, folder, &spared);
        if round == 0 {
            // Provision itself is about to end: only its callers are named.
            let me = std::process::id() as i32;
            let callers = kept.iter().filter(|t| t.id.pid != me);
            out.extend(callers.map(|t| Stopped::of(t, How::Spared)));
        }
        // One that survived SIGKILL is not signalled again.
        let targets: Vec<_> = targets.into_iter().filter(|t| seen.insert(t.id)).collect();
        if targets.is_empty() {
            break;
        }
        if dry_run {
            out.extend(targets.iter().map(|t| Stopped::of(t, How::WouldStop)));
            break;
        }
        out.extend(stop::stop(&targets));
    }
    out
}

/// A service of a sandbox as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `running`, `exited`, or `unknown` (its record cannot be read).
    pub state: &'static str,
    /// The process provision started, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// How it ended, when it exited by itself and its shell wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

impl ServiceStatus {
    /// `web`, `web (exited 1)`, `web (exited)`, `web (unknown)`.
    pub fn label(&self) -> String {
        match (self.state, self.status) {
            ("running", _) => self.name.clone(),
            ("exited", Some(status)) => format!("{} (exited {status})", self.name),
            (state, _) => format!("{} ({state})", self.name),
        }
    }
}

/// The services of sandbox `name` in worktree `id`, in name order. Reads
/// only: the records and `/proc`.
pub fn statuses(common_dir: &Path, id: &str, name: &str) -> Vec<ServiceStatus> {
    let dir = Dir::new(common_dir, id);
    let mut out = Vec::new();
    for service in dir.names() {
        let (state, pid, status) = match dir.read(&service) {
            Ok(Some(record)) if record.sandbox != name => continue,
            Ok(Some(record)) => match record.leader() {
                Some(leader) => ("running", Some(leader.pid), None),
                None => ("exited", None, dir.exit_status(&service)),
            },
            Ok(None) => continue,
            Err(_) => ("unknown", None, None),
        };
        out.push(ServiceStatus {
            name: service,
            state,
            pid,
            status,
        });
    }
    out
}

/// The sandbox whose processes `remove` and `gc` stop.
pub struct Sandbox<'a> {
    pub common_dir: &'a Path,
    /// The worktree id its services are kept under.
    pub id: &'a str,
    pub name: &'a str,
    pub path: &'a Path,
    /// Whether git still lists the worktree and its folder exists.
    pub live: bool,
    /// Other worktrees of the repository (those inside it are spared).
    pub others: Vec<PathBuf>,
}

/// Stops the sandbox's services and every other process whose working
/// directory is inside its worktree, and with `dry_run` only says which;
/// then forgets the services' records and logs.
pub fn stop_sandbox(sandbox: &Sandbox, dry_run: bool) -> Result<Vec<Stopped>, RecordError> {
    let dir = Dir::new(sandbox.common_dir, sandbox.id);
    let owned: Vec<stop::Owned> = (dir.names().iter())
        .filter_map(|name| dir.read(name).ok().flatten())
        .filter(|r| r.sandbox == sandbox.name && crate::git::same_path(&r.worktree, sandbox.path))
        .map(|r| stop::Owned {
            leader: r.leader(),
            grace: r.grace(),
            name: r.name,
            token: r.token,
        })
        .collect();
    let path = stop::canonical(sandbox.path);
    let folder = stop::Folder {
        nested: (sandbox.others.iter())
            .map(|p| stop::canonical(p))
            .filter(|p| p.starts_with(&path) && *p != path)
            .collect(),
        path,
        live: sandbox.live,
        grace: DEFAULT_GRACE,
    };
    let stopped = stop_processes(&owned, Some(&folder), dry_run);
    if !dry_run && stopped.iter().all(|s| s.how != How::Failed) {
        dir.remove()?;
    }
    Ok(stopped)
}
