//! `provision gc`: the registry's records are the roots. A record whose
//! worktree is gone (folder deleted, or the git entry removed with plain git)
//! and a git entry git calls prunable are orphans: their databases are
//! dropped (only marked ones, only ones with a record), their ports freed and
//! their git entries pruned (an entry whose folder is gone only once git's
//! own expiry for it has passed: it may have moved). The main worktree, locked worktrees and live
//! worktrees are never touched; `--merged` adds clean, merged worktrees
//! under the same rules as `remove`.

use serde::Serialize;

use crate::BoxError;
use crate::db::aside;
use crate::git::{self, Worktree};
use crate::lifecycle::orphans::{self, Evidence, Verdict};
use crate::lifecycle::pending::{self, Finished, Pending};
use crate::lifecycle::registry::{Claim, Guard, Record, Registry, RegistryError};
use crate::lifecycle::remove;
use crate::lifecycle::store;
use crate::lifecycle::teardown::{self, Options, Removal};
use crate::output;
use crate::workspace::{Owner, Workspace};

#[derive(Debug, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub removed: Vec<Removed>,
    pub kept: Vec<Kept>,
    /// Orphans whose take-down failed part way; the record stays for the next run.
    pub failed: Vec<Failed>,
    /// The databases rebuilds set aside (`provision db reset`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<AsideFate>,
    /// The store of migrated states, each entry with what became of it.
    pub store: store::Contents,
    /// Databases a killed provision left half made under names of their
    /// own, dropped (or with `--dry-run`, that would be).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub half_made: Vec<crate::db::HalfMade>,
}

/// What became of one database a rebuild set aside.
#[derive(Debug, Serialize)]
pub struct AsideFate {
    pub database: String,
    /// The sandbox it was set aside from.
    pub sandbox: String,
    pub done: String,
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

/// What `provision gc` is asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct GcOptions {
    /// Say what would be removed and kept, and change nothing.
    pub dry_run: bool,
    /// Also remove clean worktrees whose branch is merged.
    pub merged: bool,
}

pub fn gc(workspace: &Workspace, options: GcOptions) -> Result<Report, BoxError> {
    let GcOptions { dry_run, merged } = options;
    let checkout = &workspace.checkout;
    let registry = &workspace.registry;
    // Records first, then git's list: `new` adds the git entry before the
    // record, so every record read here already has its entry listed.
    // Holding the lock keeps `new` and `remove` out while we act; a sandbox
    // whose `apply` is running is skipped (see `teardown::take_down`).
    let guard = if dry_run {
        None
    } else {
        Some(registry.lock()?)
    };
    // `new`s that failed with git's step half undone, first: what they
    // leave is then gone from git's list and the records.
    if guard.is_some() {
        pending::sweep(&checkout.common_dir)?;
    }
    let finished: Vec<_> = pending::all(&checkout.common_dir)
        .into_iter()
        .map(|pending| {
            let finished = guard.as_ref().map(|_| {
                pending::finish(workspace, &pending, false).map_err(|e| output::one_line(&*e))
            });
            (pending, finished)
        })
        .collect();
    let records = registry.read_all()?;
    let worktrees = git::worktrees(&checkout.main, &checkout.common_dir)?;
    let expire = git::prune_expire(&checkout.main);
    // Which record belongs to which listed worktree, decided before anything
    // is taken down (taking a worktree down deletes its claim).
    let owner_of = |record: &Record| worktrees.iter().position(|w| registry.owns(record, w));
    let owners: Vec<Option<usize>> = records.iter().map(owner_of).collect();
    let claims: Vec<Claim> = records.iter().map(|r| registry.claim_of(r)).collect();
    let mut run = Run {
        workspace,
        guard: guard.as_ref(),
        dry_run,
        merged: if merged {
            Some(git::default_branch(&checkout.main)?)
        } else {
            None
        },
        expired: git::expired_entries(&checkout.main, &expire)?,
        expire,
        report: Report {
            dry_run,
            removed: Vec::new(),
            kept: Vec::new(),
            failed: Vec::new(),
            set_aside: Vec::new(),
            store: store::Contents::default(),
            half_made: Vec::new(),
        },
    };
    for (pending, finished) in finished {
        run.pending(&pending, finished);
    }
    for (index, worktree) in worktrees.iter().enumerate() {
        let record = records
            .iter()
            .zip(&owners)
            .find(|(_, owner)| **owner == Some(index))
            .map(|(record, _)| record);
        run.worktree(worktree, record)?;
    }
    for ((record, _), claim) in records
        .iter()
        .zip(&owners)
        .zip(claims)
        .filter(|((r, owner), _)| r.id != git::MAIN_ID && owner.is_none())
    {
        let evidence = Evidence::gather(
            record,
            claim,
            &worktrees,
            &checkout.common_dir,
            workspace.clone.tag(),
        );
        run.record(record, evidence, &records);
    }
    run.corrupt(registry)?;
    if !dry_run && !git::broken_entries(&checkout.common_dir).is_empty() {
        // Admin dirs a git step cut short left without their `gitdir`:
        // git's own prune, under git's own expiry.
        git::worktree_prune(&checkout.main, &run.expire)?;
    }
    run.report.set_aside = set_aside(workspace, dry_run)?;
    // After the take-downs: a sandbox just removed needs nothing. A store
    // that cannot be read is a failure of its own, not gc's.
    match store::collect(workspace, dry_run) {
        Ok(contents) => run.report.store = contents,
        Err(e) => run.report.failed.push(Failed {
            name: "store of migrated states".into(),
            path: String::new(),
            error: output::one_line(&*e),
        }),
    }
    match store::drop_abandoned(workspace, dry_run) {
        Ok(names) => run.report.half_made = names,
        Err(e) => run.report.failed.push(Failed {
            name: "databases left half made".into(),
            path: String::new(),
            error: output::one_line(&*e),
        }),
    }
    if !dry_run {
        // Provision's own temporary files, named as such and unlocked:
        // a killed `new` was building these ahead of its worktree.
        crate::db::sweep_abandoned(&crate::db::sqlite_dir(&checkout.common_dir))?;
    }
    Ok(run.report)
}

/// Drops the databases rebuilds set aside: each only where it still
/// carries the mark of the sandbox its record names (opened as that
/// sandbox's, under the name it was set aside as).
fn set_aside(workspace: &Workspace, dry_run: bool) -> Result<Vec<AsideFate>, BoxError> {
    let common_dir = &workspace.checkout.common_dir;
    let (records, broken) = aside::all(common_dir)?;
    let mut out: Vec<AsideFate> = broken
        .into_iter()
        .map(|(path, why)| AsideFate {
            database: path.display().to_string(),
            sandbox: String::new(),
            done: format!("kept: its record cannot be used ({why}); remove it by hand"),
        })
        .collect();
    let ports = workspace.no_ports();
    let live = workspace.registry.read_all()?;
    for aside in records {
        // A database a sandbox's record names is that sandbox's, whatever
        // a record of databases set aside says.
        if let Some(record) = live.iter().find(|r| r.database.name == aside.database) {
            out.push(AsideFate {
                done: format!(
                    "kept: it is sandbox {}'s database; remove its record of being set aside by hand",
                    record.name
                ),
                database: aside.database,
                sandbox: aside.sandbox,
            });
            continue;
        }
        // The main checkout's database is the user's own data, not an
        // agent's sandbox: set aside by hand, it is dropped by hand.
        if aside.id == git::MAIN_ID {
            out.push(AsideFate {
                done: format!(
                    "kept: the main checkout's data is never collected; delete {} by hand once you are done with it",
                    crate::db::location(aside.kind, &aside.database)
                ),
                database: aside.database,
                sandbox: aside.sandbox,
            });
            continue;
        }
        let owner = Owner {
            worktree: &aside.path,
            id: &aside.id,
            name: &aside.sandbox,
            database: &aside.database,
            port: 0,
            ports: &ports,
        };
        let done = (|| -> Result<String, BoxError> {
            let mut database = workspace.open_database(&owner)?;
            if database.kind() != aside.kind {
                return Ok(format!(
                    "kept: it is a {} database, and the recipe's kind is now {}",
                    aside.kind.as_str(),
                    database.kind().as_str()
                ));
            }
            // Asked first: a rename the server finishes between the two
            // questions is then found there.
            let moving = database.in_flight()?;
            let (would, did) = if !database.exists()? {
                if moving {
                    return Ok("kept: the server is still moving it there for a `db reset` that was cut short; the next `gc` looks again".into());
                }
                (
                    "forget its record: it is gone",
                    "forgot its record: it was gone",
                )
            } else if !database.is_marked()? {
                return Ok("kept: it has no provision mark naming its sandbox".into());
            } else {
                if !dry_run {
                    database.drop_database()?;
                }
                ("drop it", "dropped")
            };
            if dry_run {
                return Ok(format!("would {would}"));
            }
            aside::forget(common_dir, &aside.database)?;
            Ok(did.into())
        })()
        .unwrap_or_else(|e| format!("kept: {}", output::one_line(&*e)));
        out.push(AsideFate {
            database: aside.database,
            sandbox: aside.sandbox,
            done,
        });
    }
    Ok(out)
}

/// One gc run, filling in its report.
struct Run<'a> {
    workspace: &'a Workspace,
    /// The registry lock, held unless `dry_run`.
    guard: Option<&'a Guard>,
    dry_run: bool,
    /// With `--merged`: the branch (or commit) the main checkout has out.
    merged: Option<(String, git2::Oid)>,
    /// git's expiry for entries whose folder is gone, and the ids past it.
    expire: String,
    expired: Vec<String>,
    report: Report,
}

/// What becomes of one listed worktree, and why.
enum Step {
    Keep(String),
    TakeDown(String, Options),
    /// Taken back as a `new` that failed part way (see `pending`).
    Finish(Pending),
}

impl Run<'_> {
    fn worktree(&mut self, worktree: &Worktree, record: Option<&Record>) -> Result<(), BoxError> {
        let name = record
            .map(|r| r.name.clone())
            .or_else(|| worktree.branch.clone())
            .unwrap_or_else(|| worktree.id.clone());
        let path = worktree.path.display().to_string();
        let (reason, options) = match self.step(worktree, record)? {
            Step::Keep(reason) => {
                self.report.kept.push(Kept { name, path, reason });
                return Ok(());
            }
            Step::TakeDown(reason, options) => (reason, options),
            Step::Finish(pending) => {
                let common_dir = &self.workspace.checkout.common_dir;
                let finished = pending::write(common_dir, &pending)
                    .and_then(|()| pending::finish(self.workspace, &pending, false))
                    .map_err(|e| output::one_line(&*e));
                self.pending(&pending, Some(finished));
                return Ok(());
            }
        };
        let workspace = self.workspace;
        match teardown::take_down(workspace, self.guard, record, Some(worktree), options) {
            Ok(removal) => self.report.removed.push(Removed { reason, removal }),
            Err(e) => self.report.failed.push(Failed {
                name,
                path,
                error: output::one_line(&*e),
            }),
        }
        Ok(())
    }

    fn step(&self, worktree: &Worktree, record: Option<&Record>) -> Result<Step, BoxError> {
        let dry_run = self.dry_run;
        let orphan = Options {
            dry_run,
            ..Options::default()
        };
        Ok(if worktree.is_main {
            Step::Keep("the main worktree".into())
        } else if worktree.cut_short {
            // Under the registry lock no `new` is between its `git worktree
            // add` and the unlock that follows it: this one was killed. If
            // someone has worked in it since, it is theirs to keep. Its
            // index may be half written, so what counts is content HEAD
            // does not have: what git itself wrote is no one's work.
            let work = remove::unsaved_after_git(self.workspace, worktree)?;
            if !work.is_empty() {
                return Ok(Step::Keep(format!(
                    "a `provision new` was cut short while git made it, but it holds unsaved work ({}): `provision apply` there takes it over; to discard it, `git worktree unlock {path}` then `provision remove --force {path}`",
                    work.describe(),
                    path = worktree.path.display()
                )));
            }
            let main = &self.workspace.checkout.main;
            if let (false, None, Some(branch), Some(head)) =
                (dry_run, record, &worktree.branch, &worktree.head)
            {
                // Taken back as a pending `new`, so that a take-down cut
                // short in its turn is finished by the next gc. Its branch
                // goes only while merged and where it was.
                let (_, target) = git::default_branch(main)?;
                return Ok(Step::Finish(Pending {
                    name: branch.clone(),
                    path: worktree.path.clone(),
                    start: git::is_merged(main, branch, target)?.then(|| head.clone()),
                    folder_existed: false,
                }));
            }
            if !dry_run {
                let common_dir = &self.workspace.checkout.common_dir;
                git::mark_removing(common_dir, &worktree.id)?;
                git::unlock(common_dir, &worktree.id)?;
            }
            let options = Options {
                force: true,
                branch: true,
                ..orphan
            };
            Step::TakeDown(
                "a `provision new` was cut short while git made it".into(),
                options,
            )
        } else if (worktree.removing || record.is_some_and(|r| r.removing)) && !worktree.locked {
            // A take-down (`remove`, or an earlier gc) was cut short inside
            // `git worktree remove`: it had decided the worktree goes, and
            // git deleted part of it. Finished unless someone has written
            // to it since.
            let work = remove::unsaved_after_git(self.workspace, worktree)?;
            if !work.is_empty() {
                return Ok(Step::Keep(format!(
                    "a take-down was cut short inside `git worktree remove`, but it holds unsaved work ({}): `provision remove --force {}` discards it",
                    work.describe(),
                    worktree.path.display()
                )));
            }
            Step::TakeDown(
                "a take-down was cut short inside `git worktree remove`".into(),
                Options {
                    branch: true,
                    ..orphan
                },
            )
        } else if worktree.locked {
            let gone = if worktree.path.exists() {
                ""
            } else {
                ", even though its folder is gone"
            };
            Step::Keep(format!("locked (`git worktree lock`){gone}"))
        } else if worktree.prunable && !self.expired.contains(&worktree.id) {
            // It may only have moved: git's own gc keeps its entry until
            // it expires, and so does provision, with the sandbox.
            Step::Keep(format!(
                "its folder is gone, but git keeps its entry until it expires (gc.worktreePruneExpire = {}): if it was moved, `git worktree repair` in its new place reconnects it; `git worktree prune` lets it go now",
                self.expire
            ))
        } else if worktree.prunable {
            Step::TakeDown(
                "its folder is gone, and git's entry for it expired".into(),
                orphan,
            )
        } else if let Some((target, oid)) = &self.merged {
            match merged_and_clean(self.workspace, worktree, target, *oid)? {
                Ok(reason) => Step::TakeDown(
                    reason,
                    Options {
                        branch: true,
                        ..orphan
                    },
                ),
                Err(why) => Step::Keep(why),
            }
        } else {
            let registry = &self.workspace.registry;
            Step::Keep(live(registry, self.guard, record, worktree)?)
        })
    }

    /// A `new` that failed part way, finished (or, in a dry run, not yet).
    fn pending(&mut self, pending: &Pending, finished: Option<Result<Finished, String>>) {
        let (name, path) = (pending.name.clone(), pending.path.display().to_string());
        const REASON: &str = "a `provision new` failed part way";
        match finished {
            None => self.report.kept.push(Kept {
                name,
                path,
                reason: format!("{REASON}: gc finishes it"),
            }),
            Some(Ok(finished)) if finished.kept.is_empty() => self.report.removed.push(Removed {
                reason: REASON.into(),
                removal: remove::pending_removal(pending, finished),
            }),
            Some(Ok(finished)) => self.report.kept.push(Kept {
                name,
                path,
                reason: format!("{REASON}, and left {}", finished.kept.join("; ")),
            }),
            Some(Err(error)) => self.report.failed.push(Failed { name, path, error }),
        }
    }

    /// A record no listed worktree owns: taken down if it is an orphan.
    /// A record that cannot be read names no database gc could prove gone:
    /// kept, and named with its path.
    fn corrupt(&mut self, registry: &Registry) -> Result<(), BoxError> {
        for corrupt in registry.corrupt()? {
            if let RegistryError::Corrupt { path, .. } = &corrupt {
                let name = path.file_stem().unwrap_or_default().to_string_lossy();
                self.report.kept.push(Kept {
                    name: name.into_owned(),
                    path: path.display().to_string(),
                    reason: corrupt.to_string(),
                });
            }
        }
        Ok(())
    }

    fn record(&mut self, record: &Record, evidence: Evidence, records: &[Record]) {
        let keep = |reason: String| Kept {
            name: record.name.clone(),
            path: record.path.display().to_string(),
            reason,
        };
        // A database two records name is dropped for neither: one of them
        // was forged or copied, and provision cannot tell which.
        if let Some(other) = records
            .iter()
            .find(|o| o.id != record.id && o.database.name == record.database.name)
        {
            self.report.kept.push(keep(format!(
                "its database `{}` is named by sandbox {}'s record too: provision drops it for neither; move the wrong record away by hand",
                record.database.name, other.name
            )));
            return;
        }
        let gone = match orphans::judge(evidence) {
            Verdict::Kept(orphans::Kept::Unclaimed) => {
                self.report.kept.push(keep(format!(
                    "the worktree at its path is on another branch and carries no claim; \
                     `provision remove --force {}` takes this sandbox down if it is stale",
                    record.name
                )));
                return;
            }
            Verdict::Kept(orphans::Kept::ClaimBroken) => {
                self.report.kept.push(keep(
                    "the worktree at its path holds its lock, but its claim is missing or names another sandbox: `provision apply` there writes it again".into(),
                ));
                return;
            }
            Verdict::Kept(orphans::Kept::EntryRemains) => {
                self.report.kept.push(keep(format!(
                    "git still has a worktree entry `{}` for it; run `git worktree list`",
                    record.id
                )));
                return;
            }
            Verdict::Orphan(gone) => gone,
        };
        let options = Options {
            dry_run: self.dry_run,
            // A `remove` cut short: its branch goes as it would have.
            branch: record.removing,
            ..Options::default()
        };
        match teardown::take_down(self.workspace, self.guard, Some(record), None, options) {
            Ok(removal) => self.report.record(gone.reason().into(), removal),
            Err(e) => self.report.failed.push(Failed {
                name: record.name.clone(),
                path: record.path.display().to_string(),
                error: output::one_line(&*e),
            }),
        }
    }
}

/// The reason a live worktree is kept. One moved with `git worktree move`
/// keeps its id, so it is still the record's root; the record follows it
/// to its new path when we hold the lock.
fn live(
    registry: &Registry,
    guard: Option<&Guard>,
    record: Option<&Record>,
    worktree: &Worktree,
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
    workspace: &Workspace,
    worktree: &Worktree,
    target: &str,
    oid: git2::Oid,
) -> Result<Result<String, String>, BoxError> {
    let Some(branch) = &worktree.branch else {
        return Ok(Err("live (detached HEAD, no branch to be merged)".into()));
    };
    let main = &workspace.checkout.main;
    if !git::is_merged(main, branch, oid)? {
        return Ok(Err(format!("live (branch not merged into {target})")));
    }
    if !git::has_own_commits(main, branch)? {
        return Ok(Err("live (no commits of its own yet)".into()));
    }
    let work = remove::unsaved(workspace, worktree)?;
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
