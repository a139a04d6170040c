//! `provision status`: every worktree git knows plus every record whose
//! worktree is gone, with its sandbox's name, database, port, whether it has
//! unsaved changes, and its state. Takes no lock; the one write is git's
//! own index refresh, as `git status` makes it.

use serde::Serialize;

use crate::BoxError;
use crate::git::{self, Checkout, Worktree};
use crate::lifecycle::identity::CloneId;
use crate::lifecycle::orphans::{self, Evidence, Gone, Kept, Verdict};
use crate::lifecycle::registry::{Record, Registry, RegistryError};
use crate::sandbox::lock::NamedPorts;
use crate::sandbox::verify;
use crate::services::{self, ServiceStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The sandbox matches its lock and the lock matches the recipe.
    Clean,
    /// The sandbox differs from its lock (or the lock was edited).
    Drift,
    /// The recipe (or a new migration) asks for more than the lock records.
    Stale,
    /// No lock: `provision apply` was never run here.
    NotProvisioned,
    /// The worktree is gone; `provision gc` cleans up after it.
    Orphan,
    /// Its folder is gone but the worktree is locked: gc keeps it.
    Missing,
    /// The state could not be read (bad recipe, database server unreachable).
    Error,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Clean => "clean",
            State::Drift => "drift",
            State::Stale => "stale",
            State::NotProvisioned => "not provisioned",
            State::Orphan => "orphan",
            State::Missing => "missing",
            State::Error => "error",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub id: String,
    pub branch: Option<String>,
    pub path: String,
    pub database: Option<String>,
    pub port: Option<u16>,
    /// Every named port (`[ports] names`), the first among them.
    pub ports: NamedPorts,
    /// The sandbox's services, as `provision up` left them.
    pub services: Vec<ServiceStatus>,
    /// Uncommitted or untracked (not ignored) files; `None` when the folder is gone.
    pub dirty: Option<bool>,
    pub state: State,
    pub main: bool,
    pub locked: bool,
    /// The first finding, or why the state could not be read.
    pub detail: Option<String>,
    /// Linked dotenv files that set a key the overrides set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub sandboxes: Vec<Row>,
}

/// Works from the checkout alone: a bad recipe shows as each sandbox's
/// error, not as status's own.
pub fn status(checkout: &Checkout) -> Result<Report, BoxError> {
    let registry = Registry::new(&checkout.common_dir);
    let clone = CloneId::of(&checkout.common_dir)?;
    let records = registry.read_all()?;
    let worktrees = git::worktrees(&checkout.main, &checkout.common_dir)?;
    let expired = if worktrees.iter().any(|w| w.prunable) {
        git::expired_entries(&checkout.main, &git::prune_expire(&checkout.main))?
    } else {
        Vec::new()
    };
    let mut rows: Vec<Row> = in_parallel(&worktrees, |worktree| {
        row(
            worktree,
            records.iter().find(|r| registry.owns(r, worktree)),
            expired.contains(&worktree.id),
        )
    });
    for record in records
        .iter()
        .filter(|r| !worktrees.iter().any(|w| registry.owns(r, w)))
    {
        let claim = registry.claim_of(record);
        let evidence =
            Evidence::gather(record, claim, &worktrees, &checkout.common_dir, clone.tag());
        let (state, detail) = match orphans::judge(evidence) {
            Verdict::Kept(Kept::EntryRemains) => {
                (State::Missing, "git still has a worktree entry for it")
            }
            // gc keeps it, not provably gone; status words it as it always has.
            Verdict::Kept(Kept::Unclaimed) => (State::Orphan, Gone::IdReused.reason()),
            Verdict::Kept(Kept::ClaimBroken) => (
                State::Error,
                "its worktree holds its lock, but the claim there is missing or names another sandbox: `provision apply` there writes it again",
            ),
            Verdict::Orphan(Gone::FolderAndEntry) => (State::Orphan, Gone::Entry.reason()),
            Verdict::Orphan(gone) => (State::Orphan, gone.reason()),
        };
        rows.push(Row {
            name: record.name.clone(),
            id: record.id.clone(),
            branch: record.branch.clone(),
            path: record.path.display().to_string(),
            database: Some(record.database.name.clone()),
            port: Some(record.port),
            ports: record.named_ports(),
            services: Vec::new(),
            dirty: None,
            state,
            main: false,
            locked: false,
            detail: Some(detail.into()),
            warnings: Vec::new(),
        });
    }
    rows.extend(corrupt_rows(&registry)?);
    for row in &mut rows {
        row.services = services::statuses(&checkout.common_dir, &row.id, &row.name);
    }
    Ok(Report { sandboxes: rows })
}

/// A row for each record that cannot be read, named with its path.
fn corrupt_rows(registry: &Registry) -> Result<Vec<Row>, BoxError> {
    let mut rows = Vec::new();
    for corrupt in registry.corrupt()? {
        let RegistryError::Corrupt { path, .. } = &corrupt else {
            continue;
        };
        rows.push(Row {
            name: path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            id: String::new(),
            branch: None,
            path: path.display().to_string(),
            database: None,
            port: None,
            dirty: None,
            state: State::Error,
            main: false,
            locked: false,
            detail: Some(corrupt.to_string()),
            warnings: Vec::new(),
            ports: NamedPorts::default(),
            services: Vec::new(),
        });
    }
    Ok(rows)
}

fn row(worktree: &Worktree, record: Option<&Record>, expired: bool) -> Row {
    let mut row = Row {
        name: record
            .map(|r| r.name.clone())
            .or_else(|| worktree.branch.clone())
            .unwrap_or_else(|| worktree.id.clone()),
        id: worktree.id.clone(),
        branch: worktree.branch.clone(),
        path: worktree.path.display().to_string(),
        database: record.map(|r| r.database.name.clone()),
        port: record.map(|r| r.port),
        ports: record.map(Record::named_ports).unwrap_or_default(),
        services: Vec::new(),
        dirty: None,
        state: State::Orphan,
        main: worktree.is_main,
        locked: worktree.locked,
        detail: None,
        warnings: Vec::new(),
    };
    if worktree.cut_short {
        row.detail = Some(
            "a `provision new` was cut short while git made it; `provision gc` removes it".into(),
        );
        return row;
    }
    if worktree.prunable || !worktree.path.is_dir() {
        if worktree.locked {
            row.state = State::Missing;
            row.detail = Some("its folder is gone; locked, so gc keeps it".into());
        } else if worktree.prunable && !expired {
            row.state = State::Missing;
            row.detail = Some(
                "its folder is gone; git keeps its entry until it expires, and gc with it: if it was moved, `git worktree repair` there".into(),
            );
        } else {
            row.detail = Some("its folder is gone".into());
        }
        return row;
    }
    row.dirty = git::unsaved_files(&worktree.path)
        .ok()
        .map(|files| !files.is_empty());
    let (state, detail, warnings) = match Checkout::discover(&worktree.path) {
        Ok(checkout) => verify(checkout),
        Err(e) => (State::Error, Some(e.to_string()), Vec::new()),
    };
    row.state = state;
    row.detail = detail;
    row.warnings = warnings;
    row
}

/// The state `verify` reports, with its first finding.
fn verify(checkout: Checkout) -> (State, Option<String>, Vec<String>) {
    match verify::verify(checkout) {
        Ok(report) if report.worktree.is_none() => (State::NotProvisioned, None, Vec::new()),
        Ok(report) if report.clean => (State::Clean, None, report.warnings),
        Ok(report) => {
            let state = if report
                .findings
                .iter()
                .all(|f| f.kind == verify::FindingKind::Stale)
            {
                State::Stale
            } else {
                State::Drift
            };
            let first = report
                .findings
                .iter()
                .find(|f| state == State::Stale || f.kind != verify::FindingKind::Stale)
                .map(|f| format!("{}: {}", f.subject, f.message));
            (state, first, report.warnings)
        }
        Err(e) => (State::Error, Some(e.to_string()), Vec::new()),
    }
}

/// Maps `f` over `items` on every core, keeping the order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a status worker panicked"))
            .collect()
    })
}
