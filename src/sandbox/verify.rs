//! Checks a sandbox against its lock (drift) and the lock against the recipe
//! (stale), reading only: each part's state (`state`), in its words.
//! Findings are one line each; the unified diff shows the lock against what
//! was observed.

use serde::Serialize;
use similar::TextDiff;

use crate::BoxError;
use crate::db::migrations::Migrations;
use crate::git::Checkout;
use crate::lifecycle::identity::CloneId;
use crate::sandbox::lock::{self, Sandbox};
use crate::sandbox::observe::{self, Observed};
use crate::sandbox::plan::Plan;
use crate::sandbox::state::{self, Ledger, MigrationFile, Presence, Step};
use crate::workspace::{Workspace, WorktreeSandbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    /// The sandbox differs from its lock.
    Drift,
    /// The lock differs from what the recipe now gives.
    Stale,
    /// The lock itself (missing, or edited).
    Lock,
}

/// As it serializes; padded as asked (the report aligns the kinds).
impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            FindingKind::Drift => "drift",
            FindingKind::Stale => "stale",
            FindingKind::Lock => "lock",
        })
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    pub subject: String,
    pub message: String,
}

impl Finding {
    fn lock(message: String) -> Self {
        Finding {
            kind: FindingKind::Lock,
            subject: lock::FILE_NAME.into(),
            message,
        }
    }

    fn drift(subject: String, message: impl Into<String>) -> Self {
        Finding {
            kind: FindingKind::Drift,
            subject,
            message: message.into(),
        }
    }

    fn stale(subject: String, message: impl Into<String>) -> Self {
        Finding {
            kind: FindingKind::Stale,
            subject,
            message: message.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub worktree: Option<String>,
    pub path: String,
    pub clean: bool,
    pub findings: Vec<Finding>,
    pub diff: String,
    /// The database no longer matches the branch's migrations: only
    /// `provision db reset` brings it there.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub diverged: bool,
    /// Linked dotenv files that set a key the overrides set: an app that
    /// loads one of them gets the main checkout's values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub fn verify(checkout: Checkout) -> Result<Report, BoxError> {
    let root = checkout.root.clone();
    let path = root.display().to_string();
    let clone = CloneId::current(&checkout.common_dir)?;
    let Some(read) = lock::read(&root, clone.tag())? else {
        let finding = Finding::lock(
            "missing: this worktree is not provisioned (run `provision apply`)".into(),
        );
        return Ok(Report {
            worktree: None,
            path,
            clean: false,
            findings: vec![finding],
            diff: String::new(),
            diverged: false,
            warnings: Vec::new(),
        });
    };
    let ctx = WorktreeSandbox::observe(Workspace::load_as(checkout, clone)?, &read.sandbox);
    let checked = check(&ctx, &read, |files| ctx.plan(files))?;
    let locked = &read.sandbox;
    let mut diff = unified(locked, &checked.observed, "observed");
    if checked
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Stale)
    {
        diff.push_str(&unified(locked, &checked.plan.sandbox, "recipe"));
    }
    Ok(Report {
        worktree: Some(locked.worktree.clone()),
        path,
        clean: checked.findings.is_empty(),
        diverged: checked.diverged,
        findings: checked.findings,
        diff,
        warnings: checked.plan.shadowed,
    })
}

/// What `verify` finds, before its report is worded: the findings, the
/// sandbox as observed, and what the recipe now plans.
pub struct Checked {
    pub findings: Vec<Finding>,
    /// The database no longer matches the branch's migrations.
    pub diverged: bool,
    pub observed: Sandbox,
    pub plan: Plan,
}

/// Checks the sandbox `ctx` against its lock `read`; `plan` plans from the
/// migration files found (`status` plans many worktrees from one read of
/// the main checkout).
pub fn check(
    ctx: &WorktreeSandbox,
    read: &lock::Read,
    plan: impl FnOnce(&Migrations) -> Result<Plan, BoxError>,
) -> Result<Checked, BoxError> {
    let locked = &read.sandbox;
    let mut findings = Vec::new();
    if !read.hash_ok {
        findings.push(Finding::lock(format!(
            "edited: its contents no longer match its hash {}",
            read.recorded_hash
        )));
    }
    let files = ctx.migrations()?;
    let mut database = ctx.database()?;
    database.tool_ledger(files.format, &files);
    let main = &ctx.checkout.main;
    let root = &ctx.checkout.root;
    let observed = observe::observe(locked, root, main, ctx.clone.tag(), database.as_mut())?;
    worktree_drift(locked, &observed, &mut findings);
    let dir = &ctx.settings.database.migrations;
    let in_main = ctx.checkout.is_main();
    let diverged = database_drift(locked, &observed, &files, dir, in_main, &mut findings);
    // Whatever the specific checks above do not name, the diff still shows:
    // verify never passes a sandbox that differs from its lock.
    if findings.iter().all(|f| f.kind == FindingKind::Lock) && observed.sandbox != *locked {
        findings.push(Finding::drift(
            "sandbox".into(),
            "differs from its lock (see the diff)",
        ));
    }
    let plan = plan(&files)?;
    for change in state::changes(locked, &plan.sandbox) {
        let subject = change.subject();
        // A migration its tool applied is already named as stale.
        let named = findings
            .iter()
            .any(|f| f.kind == FindingKind::Stale && f.subject == subject);
        if let Some(message) = change.message()
            && !named
        {
            findings.push(Finding::stale(subject, message));
        }
    }
    Ok(Checked {
        diverged,
        findings,
        observed: observed.sandbox,
        plan,
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

/// The links, env file and setup commands against the lock.
fn worktree_drift(locked: &Sandbox, observed: &Observed, findings: &mut Vec<Finding>) {
    let links = locked.links.iter().zip(&observed.links);
    for ((want, found), have) in links.zip(&observed.sandbox.links) {
        // Equal as the lock records it is in place, also where a
        // hand-edited lock names a kind only observing gives (`missing`).
        if want == have {
            continue;
        }
        let own_copy = !want.mode.is_symlink();
        if let Some(message) = state::link(want, found, own_copy).message() {
            findings.push(Finding::drift(format!("link {}", want.path), message));
        }
    }
    if let (Some(want), Some(seen)) = (&locked.env, &observed.env) {
        let subject = format!("env file {}", want.file);
        let env = state::env(want, seen);
        if let Some(message) = env.file.message() {
            findings.push(Finding::drift(subject.clone(), message));
        }
        if let Some(message) = env.shared_message(&want.file) {
            findings.push(Finding::stale(subject, message));
        }
    }
    // The lock records what did not complete: that is the sandbox's state.
    for hook in locked.setup.iter().filter(|h| !h.completed) {
        let message = Step::Failed.message().unwrap_or_default();
        findings.push(Finding::drift(format!("setup `{}`", hook.run), message));
    }
}

/// The database and its ledger against the lock, and the migration files
/// against the lock's checksums (`dir`: where they are; `in_main`: in the
/// main checkout); whether the database diverged from the branch's
/// migrations.
fn database_drift(
    locked: &Sandbox,
    observed: &Observed,
    files: &Migrations,
    dir: &str,
    in_main: bool,
    findings: &mut Vec<Finding>,
) -> bool {
    let want = &locked.database;
    let known = state::known_checksums(Some(locked), files);
    let db = state::database(
        files.format,
        &want.migrations,
        files,
        &known,
        &observed.database,
    );
    // A folder that is gone (renamed, or `[database] migrations` changed)
    // is one finding, not one per migration it held.
    let folder_gone = files.missing && !want.migrations.is_empty();
    if folder_gone {
        findings.push(Finding::drift(
            format!("migrations folder {dir}/"),
            format!(
                "missing: the lock records {} migration(s) from it",
                want.migrations.len()
            ),
        ));
    }
    if let Some(message) = db.presence.message() {
        findings.push(Finding::drift(format!("database {}", want.name), message));
    }
    // The branch's migrations against what the database applied, as
    // apply reads them: one finding, in apply's words.
    let branch: Vec<_> = files.iter().map(|f| f.record()).collect();
    let branch_state = state::database(files.format, &branch, files, &known, &observed.database);
    let diverged = branch_state.divergence();
    // A folder that is gone is said once, above.
    let diverged = db.presence == Presence::Ours && !diverged.is_empty() && !folder_gone;
    if diverged {
        findings.push(Finding::stale(
            format!("database {}", want.name),
            state::diverged_message(&branch_state.divergence(), in_main),
        ));
    }
    for applied in &want.migrations {
        let subject = || format!("migration {}", applied.name);
        // A row only part of the ledger has is reported as that alone.
        let row = db.complete_rows().find(|m| m.name == applied.name);
        if let Some(message) = row.and_then(|m| m.ledger.message()) {
            findings.push(Finding::drift(subject(), message));
        }
        let Some(migration) = db.of(&applied.name) else {
            continue;
        };
        if matches!(migration.file, MigrationFile::Edited { .. }) && db.is_repeatable(&applied.name)
        {
            findings.push(Finding::stale(
                subject(),
                "changed since it was applied: `provision apply` applies it again (a repeatable migration)",
            ));
        } else if let Some(message) = migration.file.message()
            && !(folder_gone && migration.file == MigrationFile::Gone)
        {
            findings.push(Finding::drift(subject(), message));
        }
        // Not in the ledger of a database that is missing or not
        // provision's says nothing more.
        if db.presence == Presence::Ours && !migration.is_recorded() {
            let message = migration.ledger.message().unwrap_or_default();
            findings.push(Finding::drift(subject(), message));
        }
    }
    for extra in db.complete_rows().filter(|m| m.ledger == Ledger::Unwanted) {
        let message = extra.ledger.message().unwrap_or_default();
        findings.push(Finding::drift(format!("migration {}", extra.name), message));
    }
    if let Some(message) = db.order_message() {
        findings.push(Finding::drift("migrations".into(), message));
    }
    for row in &db.migrations {
        let subject = format!("migration {}", row.name);
        if row.is_adoptable() {
            // Its tool applied it, in a sandbox that is the tool's own.
            findings.push(Finding::stale(
                subject,
                "applied by its own tool, not yet in provision's ledger: `provision apply` adopts it",
            ));
        } else if let Some(message) = row.partial_message() {
            findings.push(Finding::drift(subject, message));
        }
    }
    diverged
}
