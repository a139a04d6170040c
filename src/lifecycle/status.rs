//! `provision status`: every worktree git knows plus every record whose
//! worktree is gone, with its sandbox's name, database, port, whether it has
//! unsaved changes, and its state. Takes no lock. It writes only what
//! speeds up the next look: git's own index refresh, when `git status` is
//! asked about a worktree that git's index alone does not prove clean
//! (`git::proven_clean`), and the record of such a proof beside the index.
//!
//! Rows are read on all cores; what they share (the recipe, the includes
//! against the main checkout, git's exclude settings) is read once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::Serialize;

use crate::BoxError;
use crate::git::{self, Checkout, Worktree};
use crate::lifecycle::identity::CloneId;
use crate::lifecycle::orphans::{self, Evidence, Gone, Kept, Verdict};
use crate::lifecycle::registry::{Record, Registry, RegistryError};
use crate::sandbox::lock::NamedPorts;
use crate::sandbox::{lock, verify};
use crate::services::{self, ServiceStatus};
use crate::workspace::{MainView, Workspace, WorktreeSandbox};

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

#[derive(Debug, Clone, Serialize)]
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
    /// The store of migrated states; `None` where the recipe cannot be
    /// read (or its server reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<crate::lifecycle::store::Contents>,
}

/// Works from the checkout alone: a bad recipe shows as each sandbox's
/// error, not as status's own.
pub fn status(checkout: &Checkout) -> Result<Report, BoxError> {
    let listing = Listing::gather(checkout)?;
    let mut sandboxes = Vec::with_capacity(listing.rows.len());
    listing.finish(|row| sandboxes.push(row));
    Ok(Report {
        sandboxes,
        store: store(checkout),
    })
}

/// The store of migrated states, where it holds anything and the recipe
/// (and its server) can be read.
pub fn store(checkout: &Checkout) -> Option<crate::lifecycle::store::Contents> {
    // Read-only: the clone's identity as it is, never made here.
    let clone = CloneId::current(&checkout.common_dir).ok()?;
    crate::workspace::Workspace::load_as(checkout.clone(), clone)
        .ok()
        .and_then(|workspace| crate::lifecycle::store::contents(&workspace).ok())
        .filter(|contents| !contents.entries.is_empty())
}

/// Every row of a status, before any state is read: what git's list and
/// the registry say (names, branches, paths, ports, databases), and what
/// all rows share (the recipe, the main checkout), read once.
pub struct Listing<'a> {
    /// The worktrees' rows, to be completed, then the orphans', complete.
    pub rows: Vec<Row>,
    worktrees: Vec<Worktree>,
    shared: Shared<'a>,
}

/// What every worktree's row reads alike: read once, by the first row
/// that needs it.
struct Shared<'a> {
    checkout: &'a Checkout,
    clone: CloneId,
    workspace: OnceLock<Result<Workspace, BoxError>>,
    main: OnceLock<Result<MainView, String>>,
    excludes: OnceLock<Option<git::Excludes>>,
}

impl<'a> Listing<'a> {
    pub fn gather(checkout: &'a Checkout) -> Result<Self, BoxError> {
        let registry = Registry::new(&checkout.common_dir);
        let clone = CloneId::current(&checkout.common_dir)?;
        let records = registry.read_all()?;
        let worktrees = git::worktrees(&checkout.main, &checkout.common_dir)?;
        let expired = if worktrees.iter().any(|w| w.prunable) {
            git::expired_entries(&checkout.main, &git::prune_expire(&checkout.main))?
        } else {
            Vec::new()
        };
        // A record can only belong to a worktree of its own id: each such
        // pair is asked once (it reads the worktree's claim), not every
        // record against every worktree.
        let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            by_id.entry(record.id.as_str()).or_default().push(i);
        }
        let mut owned = vec![false; records.len()];
        let mut rows: Vec<Row> = worktrees
            .iter()
            .map(|worktree| {
                let mut first = None;
                for &i in by_id.get(worktree.id.as_str()).into_iter().flatten() {
                    if registry.owns(&records[i], worktree) {
                        owned[i] = true;
                        first = first.or(Some(&records[i]));
                    }
                }
                skeleton(worktree, first, expired.contains(&worktree.id))
            })
            .collect();
        for (record, _) in records.iter().zip(owned).filter(|(_, owned)| !owned) {
            let (dir, tag) = (&checkout.common_dir, clone.tag());
            rows.push(orphan(&registry, record, &worktrees, dir, tag));
        }
        for row in &mut rows {
            row.services = services::statuses(&checkout.common_dir, &row.id, &row.name);
        }
        rows.extend(corrupt_rows(&registry)?);
        Ok(Listing {
            rows,
            worktrees,
            shared: Shared {
                checkout,
                clone,
                workspace: OnceLock::new(),
                main: OnceLock::new(),
                excludes: OnceLock::new(),
            },
        })
    }

    /// Completes the rows, on every core, and hands each to `each` in
    /// order as soon as it and all before it are done.
    pub fn finish(self, mut each: impl FnMut(Row)) {
        let Listing {
            mut rows,
            worktrees,
            shared,
        } = self;
        let orphans = rows.split_off(worktrees.len());
        let work: Vec<(Worktree, Row)> = worktrees.into_iter().zip(rows).collect();
        in_parallel(
            &work,
            || None,
            |repo, (worktree, row)| complete(&shared, repo, worktree, row.clone()),
            &mut each,
        );
        orphans.into_iter().for_each(each);
    }
}

/// The row of a record whose worktree git no longer lists.
fn orphan(
    registry: &Registry,
    record: &Record,
    worktrees: &[Worktree],
    common_dir: &Path,
    tag: &str,
) -> Row {
    let claim = registry.claim_of(record);
    let evidence = Evidence::gather(record, claim, worktrees, common_dir, tag);
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
    Row {
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
    }
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

/// A worktree's row as far as git's list and the record tell it; complete
/// already for a worktree whose folder is gone or was cut short.
fn skeleton(worktree: &Worktree, record: Option<&Record>, expired: bool) -> Row {
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
    } else if worktree.prunable || !worktree.path.is_dir() {
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
    }
    row
}

/// Reads the state of `worktree`'s sandbox into its skeleton `row`.
/// `repo` is this thread's handle on the repository, opened once.
fn complete(
    shared: &Shared,
    repo: &mut Option<git2::Repository>,
    worktree: &Worktree,
    mut row: Row,
) -> Row {
    if row.detail.is_some() {
        return row;
    }
    let checkout = shared.checkout.sibling(worktree);
    let head = head_tree(shared, repo, worktree);
    row.dirty = dirty(shared, worktree, checkout.as_ref().ok(), &head);
    let (state, detail, warnings) = match checkout {
        Ok(checkout) => verify(shared, checkout, &head),
        Err(e) => Err(e.into()),
    }
    .unwrap_or_else(|e| (State::Error, Some(e.to_string()), Vec::new()));
    row.state = state;
    row.detail = detail;
    row.warnings = warnings;
    row
}

/// The tree of the commit git listed as the worktree's HEAD: `Ok(None)`
/// before its first commit.
fn head_tree<'r>(
    shared: &Shared,
    repo: &'r mut Option<git2::Repository>,
    worktree: &Worktree,
) -> Result<Option<git2::Tree<'r>>, BoxError> {
    let Some(oid) = worktree.head.as_deref() else {
        return Ok(None);
    };
    let oid = git2::Oid::from_str(oid)?;
    if oid.is_zero() {
        return Ok(None);
    }
    if repo.is_none() {
        *repo = Some(git2::Repository::open(&shared.checkout.common_dir)?);
    }
    let repo = repo.as_ref().expect("just opened");
    Ok(Some(repo.find_commit(oid)?.tree()?))
}

/// Whether the worktree has files `git status` would list: proven clean
/// from git's own index when it can be, else asked of `git status`
/// (`None` when that fails).
fn dirty(
    shared: &Shared,
    worktree: &Worktree,
    checkout: Option<&Checkout>,
    head: &Result<Option<git2::Tree>, BoxError>,
) -> Option<bool> {
    let excludes = shared
        .excludes
        .get_or_init(|| git::Excludes::load(&shared.checkout.main, &shared.checkout.common_dir));
    // Only a worktree of this repository: the excludes are its own.
    let checkout = checkout.filter(|c| c.common_dir == shared.checkout.common_dir);
    if let (Some(excludes), Some(checkout), Ok(Some(tree))) = (excludes, checkout, head) {
        // The proof's record goes where git's index is, and with it: a
        // linked worktree's admin dir goes with the worktree.
        let (git_dir, record) = if checkout.is_main() {
            let common = &checkout.common_dir;
            let _ = fs_err::create_dir_all(common.join("provision"));
            (common.clone(), common.join("provision").join("main-clean"))
        } else {
            let admin = checkout.common_dir.join("worktrees").join(&checkout.id);
            let record = admin.join("provision-clean");
            (admin, record)
        };
        if git::proven_clean(excludes, &checkout.root, &git_dir, &record, tree.id()) {
            return Some(false);
        }
    }
    git::unsaved_files(&worktree.path)
        .ok()
        .map(|files| !files.is_empty())
}

/// The state `verify` reports, with its first finding; the recipe and the
/// main checkout as read once for every row.
fn verify(
    shared: &Shared,
    checkout: Checkout,
    head: &Result<Option<git2::Tree>, BoxError>,
) -> Result<(State, Option<String>, Vec<String>), BoxError> {
    let Some(read) = lock::read(&checkout.root, shared.clone.tag())? else {
        return Ok((State::NotProvisioned, None, Vec::new()));
    };
    let workspace = shared
        .workspace
        .get_or_init(|| Workspace::load_as(shared.checkout.clone(), shared.clone.clone()));
    let workspace = match workspace {
        Ok(workspace) => workspace,
        Err(e) => return Err(e.to_string().into()),
    };
    let ctx = WorktreeSandbox::observe(workspace.at(checkout), &read.sandbox);
    let checked = verify::check(&ctx, &read, |files| {
        let main = shared
            .main
            .get_or_init(|| workspace.main_view().map_err(|e| e.to_string()));
        let main = main.as_ref().map_err(|e| BoxError::from(e.clone()))?;
        let head = match head {
            Ok(head) => head.as_ref(),
            Err(e) => return Err(e.to_string().into()),
        };
        ctx.plan_with(main, head, files)
    })?;
    if checked.findings.is_empty() {
        return Ok((State::Clean, None, checked.plan.shadowed));
    }
    let stale = |f: &verify::Finding| f.kind == verify::FindingKind::Stale;
    let state = if checked.findings.iter().all(stale) {
        State::Stale
    } else {
        State::Drift
    };
    let first = checked
        .findings
        .iter()
        .find(|f| state == State::Stale || !stale(f))
        .map(|f| format!("{}: {}", f.subject, f.message));
    Ok((state, first, checked.plan.shadowed))
}

/// Computes `f` for every item on all cores, each thread with its own
/// `state` (from `init`), taking the next item as soon as it is free, and
/// hands the results to `each` in the items' order as they complete.
fn in_parallel<T: Sync, R: Send, S>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> R + Sync,
    mut each: impl FnMut(R),
) {
    // Twice the cores: a row that leaves its answer to `git status`, or
    // whose folders are not cached, waits on another process or the disk
    // while the other rows go on.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get() * 2)
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let (sender, results) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (sender, next, init, f) = (sender.clone(), &next, &init, &f);
            scope.spawn(move || {
                let mut state = init();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if sender.send((i, f(&mut state, item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut done = BTreeMap::new();
        let mut due = 0;
        for (i, result) in results {
            done.insert(i, result);
            while let Some(result) = done.remove(&due) {
                each(result);
                due += 1;
            }
        }
    });
}
