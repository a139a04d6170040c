//! `provision remove`: a worktree, its processes, its database, its ports and
//! its record go together. Without `--force` nothing happens while the worktree holds work
//! that would be lost; the branch is deleted only when it is merged.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::BoxError;
use crate::git::{self, Worktree};
use crate::lifecycle::registry::{Record, Registry};
use crate::lifecycle::teardown::{self, Options};
use crate::lifecycle::{leftover, pending};
use crate::sandbox::{envfile, lock};
use crate::workspace::Workspace;

/// What `remove` reports is what the take-down did.
pub use crate::lifecycle::teardown::Removal;

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(
        "no sandbox or worktree `{0}`: give a sandbox name or a worktree path (`provision status` lists them)"
    )]
    NotFound(String),
    #[error("{0} is the main worktree; provision never removes it")]
    Main(String),
    #[error(
        "{0} is locked (`git worktree lock`), so provision leaves it alone; run `git worktree unlock` first"
    )]
    Locked(String),
    #[error(
        "sandbox {name}'s database `{database}` is named by sandbox {other}'s record too: provision drops it for neither, and removed nothing; move the wrong record (under .git/provision/sandboxes/) away by hand"
    )]
    SharedDatabase {
        name: String,
        database: String,
        other: String,
    },
    #[error("a `provision new {name}` failed part way, and provision keeps what it left: {kept}")]
    PendingKept { name: String, kept: String },
    #[error("{name} has unsaved work, so nothing was removed: {work}; {remedy}")]
    Unsaved {
        name: String,
        work: String,
        remedy: String,
    },
}

/// Work that deleting a worktree would lose.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Unsaved {
    /// Changed, staged and untracked (not ignored) files, `git status --short` style.
    pub files: Vec<String>,
    /// Commits no other branch holds, `abc1234 subject`.
    pub commits: Vec<String>,
    /// Files git does not see because provision's exclude list names their
    /// path, but that are not what provision put there, `path (why)`.
    pub hidden: Vec<String>,
    /// Submodules: git removes such a worktree only with `--force` (and
    /// their own unsaved work with it).
    pub submodules: bool,
}

impl Unsaved {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.commits.is_empty()
            && self.hidden.is_empty()
            && !self.submodules
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.files.is_empty() {
            parts.push(format!(
                "{} uncommitted or untracked file(s) ({})",
                self.files.len(),
                first_few(&self.files)
            ));
        }
        if !self.hidden.is_empty() {
            parts.push(format!(
                "{} file(s) git does not list because provision excludes their path ({})",
                self.hidden.len(),
                first_few(&self.hidden)
            ));
        }
        if !self.commits.is_empty() {
            parts.push(format!(
                "{} commit(s) on no other branch ({})",
                self.commits.len(),
                first_few(&self.commits)
            ));
        }
        if self.submodules {
            parts.push("submodules (git removes them only with --force)".into());
        }
        parts.join(" and ")
    }
}

impl Unsaved {
    /// What to do about it, and what `--force` would really do: it discards
    /// files, but an unmerged branch (and so its commits) is always kept.
    pub fn remedy(&self, branch: Option<&str>) -> String {
        let files = !self.files.is_empty() || !self.hidden.is_empty() || self.submodules;
        let commits = !self.commits.is_empty();
        match (files, commits, branch) {
            (true, false, _) => "commit or stash them, or pass --force to discard them".into(),
            (true, true, Some(branch)) => format!(
                "commit or stash the files, or pass --force to discard them; the commits stay on branch `{branch}` either way"
            ),
            (false, true, Some(branch)) => format!(
                "they stay on branch `{branch}`, which remove keeps: pass --force to remove the worktree and keep the branch"
            ),
            // Detached: no branch holds the commits, so `--force` loses them.
            (_, _, None) => {
                "put them on a branch (`git switch -c NAME`), or pass --force to discard them"
                    .into()
            }
            (false, false, Some(_)) => String::new(),
        }
    }
}

pub fn first_few(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items[..items.len().min(SHOWN)].join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(", and {} more", items.len() - SHOWN));
    }
    text
}

/// What `git worktree remove` would lose in `worktree`. A worktree whose
/// folder is gone has no files left to lose.
pub fn unsaved(workspace: &Workspace, worktree: &Worktree) -> Result<Unsaved, BoxError> {
    let checkout = &workspace.checkout;
    if !worktree.path.is_dir() {
        return Ok(Unsaved::default());
    }
    let files = git::unsaved_files(&worktree.path)?;
    let hidden = hidden_files(workspace, &worktree.path)?;
    let commits = match &worktree.head {
        Some(head) => git::unique_commits(&checkout.main, head, worktree.branch.as_deref())?,
        None => Vec::new(),
    };
    Ok(Unsaved {
        files,
        commits,
        hidden,
        submodules: git::has_submodules(&checkout.common_dir, &worktree.id, &worktree.path)?,
    })
}

/// [`unsaved`] for a worktree whose git step was cut short: a `new` killed
/// inside `git worktree add`, or a take-down inside `git worktree remove`.
/// Its index may be half written and git deleted some of its files, so
/// what counts is content HEAD does not have: what git itself wrote (or
/// deleted) there is no one's work.
pub fn unsaved_after_git(workspace: &Workspace, worktree: &Worktree) -> Result<Unsaved, BoxError> {
    let checkout = &workspace.checkout;
    let unusable = !worktree.path.join(".git").exists() || worktree.is_broken(&checkout.common_dir);
    if worktree.path.is_dir() && unusable {
        // git deleted the folder's `.git` link or part of its admin dir
        // already, and cannot say: what is left is held against HEAD's
        // tree (the branch's, when git lost HEAD).
        let repo = git2::Repository::open(&checkout.main)?;
        let sources = leftover::sources(
            &checkout.main,
            worktree.head.as_deref(),
            worktree.branch.as_deref(),
        )?;
        let Some(tree) = (sources.first()).and_then(|oid| repo.find_commit(*oid).ok()?.tree().ok())
        else {
            return Err(format!(
                "git lost the HEAD of {} and names no branch: provision cannot tell what in it is work",
                worktree.path.display()
            )
            .into());
        };
        let trees = [tree];
        let found = leftover::survey(&repo, &worktree.path, &trees, &checkout.common_dir)?;
        let head = (worktree.head.as_deref()).filter(|h| h.bytes().any(|b| b != b'0'));
        let commits = match head {
            Some(head) => git::unique_commits(&checkout.main, head, worktree.branch.as_deref())?,
            None => Vec::new(),
        };
        return Ok(Unsaved {
            files: leftover::foreign(&found),
            commits,
            ..Unsaved::default()
        });
    }
    let mut work = unsaved(workspace, worktree)?;
    let listed: Vec<String> = work
        .files
        .iter()
        .filter_map(|f| f.split_once(' ').map(|(_, path)| path.to_string()))
        .collect();
    work.files = if worktree.path.is_dir() {
        git::unlike_head(&worktree.path, &listed)?
    } else {
        Vec::new()
    };
    Ok(work)
}

/// The shared `info/exclude` hides every path provision ever linked, in
/// every worktree, so `git status` cannot tell provision's link from a real
/// file a user put in its place. Checks each such path (and the lock's
/// links and env file) by hand: a symlink, or an env file exactly as
/// provision wrote it, is provision's; anything else is someone's work.
fn hidden_files(workspace: &Workspace, root: &Path) -> Result<Vec<String>, BoxError> {
    let (common_dir, tag) = (&workspace.checkout.common_dir, workspace.clone.tag());
    // A lock that cannot be read only loses the env file's hash.
    let sandbox = lock::read(root, tag)
        .ok()
        .flatten()
        .map(|read| read.sandbox);
    let mut paths: BTreeSet<String> = git::excluded_paths(common_dir)?.into_iter().collect();
    if let Some(sandbox) = &sandbox {
        paths.extend(sandbox.links.iter().map(|l| l.path.clone()));
        paths.extend(sandbox.env.iter().map(|e| e.file.clone()));
    }
    paths.remove(lock::FILE_NAME);
    // A copy (`[links] copy`) is the worktree's own, and goes with it as its
    // ignored files do.
    for link in sandbox.iter().flat_map(|s| &s.links) {
        if !link.mode.is_symlink() {
            paths.remove(&link.path);
        }
    }
    let written_env = sandbox.as_ref().and_then(|s| s.env.as_ref());
    let index = git2::Repository::open(root)?.index()?;
    let mut out = Vec::new();
    // The lock's own path is hidden too: only a lock provision can read is
    // provision's, never a folder or a file someone put there.
    let at = root.join(lock::FILE_NAME);
    if let Ok(meta) = fs_err::symlink_metadata(&at)
        && !git::is_tracked(&index, lock::FILE_NAME)
    {
        if meta.is_dir() {
            out.push(format!(
                "{}/ (a real folder, not provision's lock)",
                lock::FILE_NAME
            ));
        } else if meta.file_type().is_symlink() || !matches!(lock::read(root, tag), Ok(Some(_))) {
            out.push(format!("{} (not a lock provision wrote)", lock::FILE_NAME));
        }
    }
    for path in paths {
        // A tracked path is in git's status already.
        if git::is_tracked(&index, &path) {
            continue;
        }
        let at = root.join(&path);
        let meta = match fs_err::symlink_metadata(&at) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            out.push(format!("{path}/ (a real folder, not provision's link)"));
            continue;
        }
        // Only a regular file is read (a FIFO would hang the read).
        if !meta.is_file() {
            out.push(format!("{path} (not a regular file, not provision's)"));
            continue;
        }
        let bytes = fs_err::read(&at)?;
        let ours = envfile::is_ours(&String::from_utf8_lossy(&bytes));
        match written_env.filter(|e| e.file == path) {
            Some(env) if ours && lock::env_hash(&bytes, tag) == env.content => {}
            Some(_) if ours => out.push(format!("{path} (edited since provision wrote it)")),
            None if ours => {}
            _ => out.push(format!("{path} (a real file, not provision's)")),
        }
    }
    Ok(out)
}

/// What `provision remove` is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct RemoveOptions<'a> {
    /// A sandbox name, a worktree path, or the branch or id of a worktree
    /// provision never set up.
    pub target: &'a str,
    /// Where a relative path in `target` starts.
    pub cwd: &'a Path,
    /// Remove even with unsaved work (an unmerged branch is still kept).
    pub force: bool,
    /// Keep the branch even when it is merged.
    pub keep_branch: bool,
    /// Say what would be done (and stopped), and change nothing.
    pub dry_run: bool,
}

pub fn remove(workspace: &Workspace, options: RemoveOptions) -> Result<Removal, BoxError> {
    let RemoveOptions {
        target,
        cwd,
        force,
        keep_branch,
        dry_run,
    } = options;
    let checkout = &workspace.checkout;
    let registry = &workspace.registry;
    let guard = registry.lock()?;
    // A `new NAME` that failed with git's step half undone is finished
    // first; its sandbox, if it got that far, then goes as any other.
    let finished = match pending::get(&checkout.common_dir, target) {
        Some(pending) if !dry_run => Some(finish_pending(workspace, &pending, force)?),
        _ => None,
    };
    let records = registry.all(&guard)?;
    let worktrees = git::worktrees(&checkout.main, &checkout.common_dir)?;
    let Some((record, worktree)) = resolve(cwd, target, registry, &records, &worktrees) else {
        return finished.ok_or_else(|| RemoveError::NotFound(target.to_string()).into());
    };
    let shown = worktree
        .map(|w| w.path.display().to_string())
        .or_else(|| record.map(|r| r.path.display().to_string()))
        .unwrap_or_default();
    if worktree.is_some_and(|w| w.is_main) || record.is_some_and(|r| r.id == git::MAIN_ID) {
        return Err(RemoveError::Main(shown).into());
    }
    if worktree.is_some_and(|w| w.locked) {
        return Err(RemoveError::Locked(shown).into());
    }
    // A database two records name is dropped for neither: one of them was
    // forged or copied, and provision cannot tell which.
    if let Some((record, other)) = record.and_then(|r| {
        records
            .iter()
            .find(|o| o.id != r.id && o.database.name == r.database.name)
            .map(|o| (r, o))
    }) {
        return Err(RemoveError::SharedDatabase {
            name: record.name.clone(),
            database: record.database.name.clone(),
            other: other.name.clone(),
        }
        .into());
    }
    if let (false, Some(worktree)) = (force, worktree) {
        let work = if worktree.removing || record.is_some_and(|r| r.removing) {
            unsaved_after_git(workspace, worktree)?
        } else {
            unsaved(workspace, worktree)?
        };
        if !work.is_empty() {
            return Err(RemoveError::Unsaved {
                name: record.map_or(shown, |r| r.name.clone()),
                work: work.describe(),
                remedy: work.remedy(worktree.branch.as_deref()),
            }
            .into());
        }
    }
    let options = Options {
        force,
        branch: true,
        keep_branch,
        dry_run,
    };
    let mut removal = teardown::take_down(workspace, Some(&guard), record, worktree, options)?;
    if let Some(finished) = finished {
        removal.done.splice(0..0, finished.done);
        removal.branch_deleted |= finished.branch_deleted;
    }
    Ok(removal)
}

/// Finishes the pending `new` of `pending.name` (see [`pending`]): an
/// error if anything of it has to stay.
fn finish_pending(
    workspace: &Workspace,
    pending: &pending::Pending,
    force: bool,
) -> Result<Removal, BoxError> {
    let finished = pending::finish(workspace, pending, force)?;
    if !finished.kept.is_empty() {
        return Err(RemoveError::PendingKept {
            name: pending.name.clone(),
            kept: finished.kept.join("; "),
        }
        .into());
    }
    Ok(pending_removal(pending, finished))
}

/// A finished pending `new`, reported as a take-down.
pub fn pending_removal(pending: &pending::Pending, finished: pending::Finished) -> Removal {
    let mut done = vec![format!(
        "finished a `provision new {}` that failed part way",
        pending.name
    )];
    done.extend(finished.done);
    Removal {
        name: pending.name.clone(),
        path: pending.path.display().to_string(),
        branch: Some(pending.name.clone()),
        database: None,
        database_fate: None,
        port: None,
        ports: Default::default(),
        dry_run: false,
        stopped: Vec::new(),
        branch_deleted: finished.branch_deleted,
        done,
    }
}

fn resolve<'a>(
    cwd: &Path,
    target: &str,
    registry: &Registry,
    records: &'a [Record],
    worktrees: &'a [Worktree],
) -> Option<(Option<&'a Record>, Option<&'a Worktree>)> {
    let worktree_of = |record: &Record| worktrees.iter().find(|w| registry.owns(record, w));
    let record_of = |worktree: &Worktree| records.iter().find(|r| registry.owns(r, worktree));
    if let Some(record) = records.iter().find(|r| r.name == target) {
        return Some((Some(record), worktree_of(record)));
    }
    // A path: compare canonical forms where the folder still exists.
    let as_path = crate::fsutil::normalize(&cwd.join(target));
    let canonical = fs_err::canonicalize(&as_path).unwrap_or(as_path);
    let same = |p: &Path| fs_err::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()) == canonical;
    if let Some(worktree) = worktrees.iter().find(|w| same(&w.path)) {
        return Some((record_of(worktree), Some(worktree)));
    }
    if let Some(record) = records.iter().find(|r| same(&r.path)) {
        return Some((Some(record), worktree_of(record)));
    }
    let worktree = worktrees
        .iter()
        .find(|w| !w.is_main && (w.branch.as_deref() == Some(target) || w.id == target))?;
    Some((record_of(worktree), Some(worktree)))
}
