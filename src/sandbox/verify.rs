//! Checks a sandbox against its lock (drift) and the lock against the recipe
//! (stale), reading only. Findings are one line each; the unified diff shows
//! the lock against what was observed.

use serde::Serialize;
use similar::TextDiff;

use crate::BoxError;
use crate::db::migrations::Migration;
use crate::git::Checkout;
use crate::sandbox::lock::{self, LinkKind, Sandbox};
use crate::sandbox::observe::{self, MISSING, SYMLINK};
use crate::sandbox::setup;
use crate::workspace::{Workspace, WorktreeSandbox};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// `drift` (the sandbox differs from its lock), `stale` (the lock
    /// differs from what the recipe now gives) or `lock` (the lock itself).
    pub kind: &'static str,
    pub subject: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub worktree: Option<String>,
    pub path: String,
    pub clean: bool,
    pub findings: Vec<Finding>,
    pub diff: String,
}

pub fn verify(checkout: Checkout) -> Result<Report, BoxError> {
    let root = checkout.root.clone();
    let path = root.display().to_string();
    let Some(read) = lock::read(&root)? else {
        let finding = Finding {
            kind: "lock",
            subject: lock::FILE_NAME.into(),
            message: "missing: this worktree is not provisioned (run `provision apply`)".into(),
        };
        return Ok(Report {
            worktree: None,
            path,
            clean: false,
            findings: vec![finding],
            diff: String::new(),
        });
    };
    let locked = &read.sandbox;
    let mut findings = Vec::new();
    if !read.hash_ok {
        findings.push(Finding {
            kind: "lock",
            subject: lock::FILE_NAME.into(),
            message: format!(
                "edited: its contents no longer match its hash {}",
                read.recorded_hash
            ),
        });
    }
    let ctx = WorktreeSandbox::observe(Workspace::load(checkout)?, locked);
    let files = ctx.migrations()?;
    let mut database = ctx.database()?;
    let observed = observe::observe(locked, &root, &ctx.checkout.main, database.as_mut())?;
    let partial: Vec<&str> = observed
        .partial_rows
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    drift(locked, &observed.sandbox, &files, &partial, &mut findings);
    for row in &observed.partial_rows {
        findings.push(Finding {
            kind: "drift",
            subject: format!("migration {}", row.name),
            message: format!(
                "ledger row missing from {}",
                row.missing_from.unwrap_or("the ledger")
            ),
        });
    }
    // Whatever the specific checks above do not name, the diff still shows:
    // verify never passes a sandbox that differs from its lock.
    if findings.iter().all(|f| f.kind == "lock") && observed.sandbox != *locked {
        findings.push(Finding {
            kind: "drift",
            subject: "sandbox".into(),
            message: "differs from its lock (see the diff)".into(),
        });
    }
    let plan = ctx.plan(&files)?;
    stale(locked, &plan.sandbox, &mut findings);

    let mut diff = unified(locked, &observed.sandbox, "observed");
    if findings.iter().any(|f| f.kind == "stale") {
        diff.push_str(&unified(locked, &plan.sandbox, "recipe"));
    }
    Ok(Report {
        worktree: Some(locked.worktree.clone()),
        path,
        clean: findings.is_empty(),
        findings,
        diff,
    })
}

fn unified(locked: &Sandbox, other: &Sandbox, label: &str) -> String {
    let old = pretty(locked);
    let new = pretty(other);
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(2)
        .header(lock::FILE_NAME, label)
        .to_string()
}

fn pretty(sandbox: &Sandbox) -> String {
    let mut text =
        serde_json::to_string_pretty(&serde_json::to_value(sandbox).expect("serializes"))
            .expect("serializes");
    text.push('\n');
    text
}

/// A copy's kind in words.
fn kind_name(kind: LinkKind) -> &'static str {
    if kind == LinkKind::Dir {
        "folder"
    } else {
        "file"
    }
}

/// Differences between the lock and what is there. `partial` names ledger
/// rows that only part of the ledger has; they are reported on their own.
fn drift(
    locked: &Sandbox,
    observed: &Sandbox,
    files: &[Migration],
    partial: &[&str],
    findings: &mut Vec<Finding>,
) {
    let drift = |subject: String, message: String| Finding {
        kind: "drift",
        subject,
        message,
    };
    for (want, have) in locked.links.iter().zip(&observed.links) {
        if want == have {
            continue;
        }
        let message = match have.kind {
            LinkKind::Missing => "missing".to_string(),
            LinkKind::NotALink => "replaced by a regular file or folder".to_string(),
            _ if have.mode != want.mode => {
                "a symlink where the worktree's own copy belongs".to_string()
            }
            LinkKind::Absent if want.kind != LinkKind::Absent => {
                format!("points to {}, which does not exist", have.target)
            }
            _ if have.target != want.target => {
                format!("points to {} instead of {}", have.target, want.target)
            }
            _ if !want.mode.is_symlink() => format!(
                "a {} where the worktree's own copy (a {}) belongs",
                kind_name(have.kind),
                kind_name(want.kind)
            ),
            _ => format!("now a {:?} link, locked as {:?}", have.kind, want.kind).to_lowercase(),
        };
        findings.push(drift(format!("link {}", want.path), message));
    }
    if let (Some(want), Some(have)) = (&locked.env, &observed.env) {
        let subject = format!("env file {}", want.file);
        if have.content == MISSING {
            findings.push(drift(subject, "missing".into()));
        } else if have.content == SYMLINK {
            findings.push(drift(
                subject,
                "is a symlink: writing overrides through it would change the main checkout's file"
                    .into(),
            ));
        } else if have.content != want.content {
            let changed: Vec<&str> = want
                .overrides
                .iter()
                .filter(|(k, v)| have.overrides.get(*k) != Some(v))
                .map(|(k, _)| k.as_str())
                .collect();
            let detail = if changed.is_empty() {
                String::new()
            } else {
                format!(" ({} changed)", changed.join(", "))
            };
            findings.push(drift(
                subject,
                format!("edited since provision wrote it{detail}"),
            ));
        }
        if have.shared != want.shared {
            findings.push(Finding {
                kind: "stale",
                subject: format!("env file {}", want.file),
                message: format!(
                    "the main checkout's {} changed since it was merged in",
                    want.file
                ),
            });
        }
    }
    for hook in locked.setup.iter().filter(|h| !h.completed) {
        findings.push(drift(
            format!("setup `{}`", hook.run),
            "did not complete (`provision apply` runs it again)".into(),
        ));
    }
    let (want, have) = (&locked.database, &observed.database);
    if have.name != want.name {
        findings.push(drift(
            format!("database {}", want.name),
            have.name.trim_start_matches(&want.name).trim().to_string(),
        ));
    }
    for applied in &want.migrations {
        let subject = format!("migration {}", applied.name);
        let recorded = have.migrations.iter().find(|m| m.name == applied.name);
        if let Some(row) = recorded.filter(|m| m.checksum != applied.checksum) {
            findings.push(drift(
                subject.clone(),
                format!(
                    "the database's ledger records checksum {}, the lock {}",
                    row.checksum, applied.checksum
                ),
            ));
        }
        match files.iter().find(|f| f.name == applied.name) {
            None => findings.push(drift(
                subject.clone(),
                "applied, but its file is gone".into(),
            )),
            Some(file) if file.checksum != applied.checksum => {
                findings.push(drift(subject.clone(), "edited after it was applied".into()))
            }
            Some(_) => {}
        }
        let in_ledger = have.migrations.iter().any(|m| m.name == applied.name);
        if have.name == want.name && !in_ledger && !partial.contains(&applied.name.as_str()) {
            findings.push(drift(
                subject,
                "in the lock but not in the database's ledger".into(),
            ));
        }
    }
    for extra in have
        .migrations
        .iter()
        .filter(|m| !want.migrations.iter().any(|w| w.name == m.name))
    {
        findings.push(drift(
            format!("migration {}", extra.name),
            "in the database's ledger but not in the lock".into(),
        ));
    }
    let have_names: Vec<&str> = have.migrations.iter().map(|m| m.name.as_str()).collect();
    let mut sorted = have_names.clone();
    sorted.sort();
    if have_names != sorted {
        findings.push(drift(
            "migrations".into(),
            format!("applied out of order: {}", have_names.join(", ")),
        ));
    }
}

fn stale(locked: &Sandbox, planned: &Sandbox, findings: &mut Vec<Finding>) {
    let mut push = |subject: String, message: String| {
        findings.push(Finding {
            kind: "stale",
            subject,
            message,
        })
    };
    if locked.recipe != planned.recipe {
        push(
            "recipe".into(),
            "provision.toml or .worktreeinclude changed since the lock was written".into(),
        );
    }
    for link in &planned.links {
        match locked.links.iter().find(|o| o.path == link.path) {
            None => push(
                format!("link {}", link.path),
                "wanted by the recipe, not in the lock".into(),
            ),
            Some(old) if old.mode != link.mode => push(
                format!("link {}", link.path),
                format!(
                    "the recipe now wants a {}, the lock has a {}",
                    link.mode.as_str(),
                    old.mode.as_str()
                ),
            ),
            Some(old) if old.kind != link.kind => push(
                format!("link {}", link.path),
                format!("the main checkout's {} is now {:?}", link.path, link.kind).to_lowercase(),
            ),
            Some(_) => {}
        }
    }
    for link in locked
        .links
        .iter()
        .filter(|l| !planned.links.iter().any(|p| p.path == l.path))
    {
        push(
            format!("link {}", link.path),
            "in the lock, no longer wanted by the recipe".into(),
        );
    }
    if let (Some(want), Some(have)) = (&planned.env, &locked.env)
        && want.overrides != have.overrides
    {
        push(
            format!("env file {}", want.file),
            "the recipe's overrides changed".into(),
        );
    }
    let first = setup::first_pending(&planned.setup, &locked.setup);
    for (index, hook) in planned.setup.iter().enumerate().skip(first) {
        let message = match locked.setup.get(index) {
            // Reported as drift above.
            Some(old) if old.run == hook.run && !old.completed => continue,
            Some(old) if old.run == hook.run => "runs again: a setup command before it changed",
            _ => "not run yet",
        };
        push(format!("setup `{}`", hook.run), message.into());
    }
    for hook in locked
        .setup
        .iter()
        .filter(|h| !planned.setup.iter().any(|p| p.run == h.run))
    {
        push(
            format!("setup `{}`", hook.run),
            "in the lock, no longer in the recipe".into(),
        );
    }
    if planned.database.name != locked.database.name {
        push(
            "database".into(),
            format!("the recipe now names it {}", planned.database.name),
        );
    }
    for file in planned
        .database
        .migrations
        .iter()
        .filter(|m| !locked.database.migrations.iter().any(|l| l.name == m.name))
    {
        push(format!("migration {}", file.name), "not applied yet".into());
    }
}
