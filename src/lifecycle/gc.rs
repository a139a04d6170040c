//! `provision gc`: the registry's records are the roots. A record whose
//! worktree is gone (folder deleted, or the git entry removed with plain git)
//! and a git entry git calls prunable are orphans: their databases are
//! dropped (only marked ones, only ones with a record), their ports freed and
//! their git entries pruned. The main worktree, locked worktrees and live
//! worktrees are never touched; `--merged` adds clean, merged worktrees
//! under the same rules as `remove`.

use std::path::Path;

use serde::Serialize;

use crate::BoxError;
use crate::git::{self, Checkout};
use crate::lifecycle::registry::{Claim, Guard, Record, Registry};
use crate::lifecycle::remove;
use crate::lifecycle::teardown::{self, Options, Removal, Shared};
use crate::output;
use crate::workspace;

#[derive(Debug, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub removed: Vec<Removed>,
    pub kept: Vec<Kept>,
    /// Orphans whose take-down failed part way; the record stays for the next run.
    pub failed: Vec<Failed>,
}

#[derive(Debug, Serialize)]
pub struct Removed {
    /// Why it was an orphan (or merged).
    pub reason: String,
    #[serde(flatten)]
    pub removal: Removal,
}

#[derive(Debug, Serialize)]
pub struct Kept {
    pub name: String,
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Failed {
    pub name: String,
    pub path: String,
    pub error: String,
}

impl Report {
    /// A take-down that kept the database in place (and so its record)
    /// is reported as kept: nothing the user would call removed is gone.
    fn record(&mut self, reason: String, removal: Removal) {
        if removal.database_fate.is_some_and(|fate| fate.still_ours()) {
            self.kept.push(Kept {
                name: removal.name.clone(),
                path: removal.path.clone(),
                reason: format!(
                    "{reason}: {}; `provision remove --force {}` lets go of the record",
                    removal.done.join("; "),
                    removal.name
                ),
            });
        } else {
            self.removed.push(Removed { reason, removal });
        }
    }
}

pub fn gc(cwd: &Path, dry_run: bool, merged: bool) -> Result<Report, BoxError> {
    let main = Checkout::discover(cwd)?.main_of()?;
    let (settings, _) = workspace::recipe(&main)?;
    let registry = Registry::new(&main.common_dir);
    // Records first, then git's list: `new` adds the git entry before the
    // record, so every record read here already has its entry listed.
    // Holding the lock keeps `new` and `remove` out while we act; a sandbox
    // whose `apply` is running is skipped (see `teardown::take_down`).
    let guard = if dry_run {
        None
    } else {
        Some(registry.lock()?)
    };
    let records = registry.read_all()?;
    let worktrees = git::worktrees(&main.main, &main.common_dir)?;
    // Which record belongs to which listed worktree, decided before anything
    // is taken down (taking a worktree down deletes its claim).
    let owner_of = |record: &Record| worktrees.iter().position(|w| registry.owns(record, w));
    let owners: Vec<Option<usize>> = records.iter().map(owner_of).collect();
    let claims: Vec<Claim> = records.iter().map(|r| registry.claim_of(r)).collect();
    let default = if merged {
        Some(git::default_branch(&main.main)?)
    } else {
        None
    };
    let shared = Shared {
        main: &main,
        settings: &settings,
        registry: &registry,
    };
    let mut report = Report {
        dry_run,
        removed: Vec::new(),
        kept: Vec::new(),
        failed: Vec::new(),
    };
    let orphan = Options {
        dry_run,
        ..Options::default()
    };
    for (index, worktree) in worktrees.iter().enumerate() {
        let record = records
            .iter()
            .zip(&owners)
            .find(|(_, owner)| **owner == Some(index))
            .map(|(record, _)| record);
        let name = record
            .map(|r| r.name.clone())
            .or_else(|| worktree.branch.clone())
            .unwrap_or_else(|| worktree.id.clone());
        let keep = |reason: String| Kept {
            name: name.clone(),
            path: worktree.path.display().to_string(),
            reason,
        };
        let (reason, options) = if worktree.is_main {
            report.kept.push(keep("the main worktree".into()));
            continue;
        } else if worktree.cut_short {
            // Under the registry lock no `new` is between its `git worktree
            // add` and the unlock that follows it: this one was killed.
            if !dry_run {
                git::unlock(&main.common_dir, &worktree.id)?;
            }
            (
                "a `provision new` was cut short while git made it".to_string(),
                Options {
                    force: true,
                    branch: true,
                    dry_run,
                    ..Options::default()
                },
            )
        } else if worktree.locked {
            let gone = if worktree.path.exists() {
                ""
            } else {
                ", even though its folder is gone"
            };
            report
                .kept
                .push(keep(format!("locked (`git worktree lock`){gone}")));
            continue;
        } else if worktree.prunable {
            ("its folder is gone".to_string(), orphan)
        } else if let Some((target, oid)) = &default {
            match merged_and_clean(&main, worktree, target, *oid)? {
                Ok(reason) => (
                    reason,
                    Options {
                        branch: true,
                        dry_run,
                        ..Options::default()
                    },
                ),
                Err(why) => {
                    report.kept.push(keep(why));
                    continue;
                }
            }
        } else {
            report
                .kept
                .push(keep(live(&registry, guard.as_ref(), record, worktree)?));
            continue;
        };
        match teardown::take_down(&shared, guard.as_ref(), record, Some(worktree), options) {
            Ok(removal) => report.removed.push(Removed { reason, removal }),
            Err(e) => report.failed.push(Failed {
                name,
                path: worktree.path.display().to_string(),
                error: output::one_line(&*e),
            }),
        }
    }
    for ((record, _), claim) in records
        .iter()
        .zip(&owners)
        .zip(claims)
        .filter(|((r, owner), _)| r.id != git::MAIN_ID && owner.is_none())
    {
        let listed = worktrees.iter().find(|w| w.id == record.id);
        let keep = |reason: String| Kept {
            name: record.name.clone(),
            path: record.path.display().to_string(),
            reason,
        };
        // Unclaimed, at the record's own path but on another branch: a
        // newcomer under the reused id, or this sandbox's worktree after its
        // claim was lost and its branch switched. Not provably an orphan.
        if claim == Claim::Missing && listed.is_some_and(|w| git::same_path(&w.path, &record.path))
        {
            report.kept.push(keep(format!(
                "the worktree at its path is on another branch and carries no claim; \
                 `provision remove --force {}` takes this sandbox down if it is stale",
                record.name
            )));
            continue;
        }
        // Git still has an entry under this id that its list did not match
        // to a path: not provably gone, so not an orphan.
        if listed.is_none() && claim != Claim::Other && git::has_entry(&main.common_dir, &record.id)
        {
            report.kept.push(keep(format!(
                "git still has a worktree entry `{}` for it; run `git worktree list`",
                record.id
            )));
            continue;
        }
        let reason = if listed.is_some() {
            "its worktree is gone; git gave its id to another worktree"
        } else if record.path.exists() {
            "its git worktree entry is gone"
        } else {
            "its folder and git worktree entry are gone"
        };
        match teardown::take_down(&shared, guard.as_ref(), Some(record), None, orphan) {
            Ok(removal) => report.record(reason.into(), removal),
            Err(e) => report.failed.push(Failed {
                name: record.name.clone(),
                path: record.path.display().to_string(),
                error: output::one_line(&*e),
            }),
        }
    }
    if !dry_run {
        // Provision's own temporary files, named as such and unlocked:
        // a killed `new` was building these ahead of its worktree.
        crate::db::sweep_abandoned(&crate::db::sqlite_dir(&main.common_dir))?;
    }
    Ok(report)
}

/// The reason a live worktree is kept. One moved with `git worktree move`
/// keeps its id, so it is still the record's root; the record follows it
/// to its new path when we hold the lock.
fn live(
    registry: &Registry,
    guard: Option<&Guard>,
    record: Option<&Record>,
    worktree: &git::Worktree,
) -> Result<String, BoxError> {
    let Some(record) = record.filter(|r| !git::same_path(&r.path, &worktree.path)) else {
        return Ok("live".into());
    };
    let from = record.path.display();
    let Some(guard) = guard else {
        return Ok(format!("live (moved from {from})"));
    };
    registry.put(
        guard,
        &Record {
            path: worktree.path.clone(),
            ..record.clone()
        },
    )?;
    Ok(format!("live (moved from {from}; record updated)"))
}

/// `Ok(reason)` when `--merged` may remove the worktree, else `Err(why not)`.
fn merged_and_clean(
    main: &Checkout,
    worktree: &git::Worktree,
    target: &str,
    oid: git2::Oid,
) -> Result<Result<String, String>, BoxError> {
    let Some(branch) = &worktree.branch else {
        return Ok(Err("live (detached HEAD, no branch to be merged)".into()));
    };
    if !git::is_merged(&main.main, branch, oid)? {
        return Ok(Err(format!("live (branch not merged into {target})")));
    }
    if !git::has_own_commits(&main.main, branch)? {
        return Ok(Err("live (no commits of its own yet)".into()));
    }
    let work = remove::unsaved(main, worktree)?;
    if !work.is_empty() {
        return Ok(Err(format!(
            "merged, but it has unsaved work: {}",
            work.describe()
        )));
    }
    Ok(Ok(format!(
        "branch {branch} is merged into {target} and the worktree is clean"
    )))
}
