//! Creating a sandbox (`provision new`): `git worktree add` under the
//! registry lock while the SQLite database is built ahead from git's
//! objects, then the sandbox is applied. A failure takes back exactly what
//! this attempt made, and names the step.

use std::path::{Path, PathBuf};

use crate::BoxError;
use crate::db::build_ahead::{Ahead, Prebuilt};
use crate::db::migrations::{Applied, Migration};
use crate::db::store;
use crate::git::{self, Checkout, Start};
use crate::lifecycle::pending::{self, Pending};
use crate::output::Progress;
use crate::sandbox::apply::{self, Action, Outcome};
use crate::sandbox::setup::SetupError;
use crate::workspace::{Workspace, WorktreeSandbox};

/// What `provision new` was asked for, resolved.
pub struct Options<'a> {
    /// The branch and sandbox name.
    pub name: &'a str,
    /// Where the worktree goes, absolute.
    pub path: PathBuf,
    /// The revision the branch starts at (`HEAD` when `None`).
    pub from: Option<&'a str>,
}

pub fn create(
    workspace: &Workspace,
    options: Options,
    progress: &Progress,
) -> Result<Outcome, BoxError> {
    let Options { name, path, from } = options;
    let checkout = &workspace.checkout;
    let start = git::branch_start(&checkout.main, name, from)?;
    // Asked before the database is built ahead, which runs beside git.
    let parallel = git::parallel_checkout_pays(&checkout.main);
    let ahead = Ahead::start(
        &checkout.main,
        &checkout.common_dir,
        &workspace.settings,
        &start.revision(name),
        workspace.mark(store::STORE_ID).text(),
    );
    let added = add_worktree(workspace, name, &path, from, parallel, progress);
    if let Ok((start, _)) = &added {
        progress.step(&format!(
            "worktree  {} {}",
            path.display(),
            start.describe(name)
        ));
        if ahead.is_running() {
            progress.step("database  still migrating, from git's objects");
        }
    }
    // Joined before any error returns, so an unused database is deleted.
    let prebuilt = ahead.finish();
    let (_, begun) = added?;
    let mut attempt = Attempt::default();
    match build_new(workspace, &path, name, prebuilt, progress, &mut attempt) {
        Ok(outcome) => Ok(outcome),
        // Everything before the setup commands is built and locked: kept,
        // so that `apply` continues at the failed command.
        Err(err) if err.is::<SetupError>() => Err(SetupError::Kept {
            dir: path.display().to_string(),
            source: err,
        }
        .into()),
        Err(err) => {
            let undone = undo_new(workspace, &begun, &attempt, progress);
            Err(with_step(&format!("building the sandbox ({undone})"), err))
        }
    }
}

/// What a `new` attempt made beyond the worktree and branch, so that a
/// failure takes back exactly that and nothing that was there before.
#[derive(Default)]
struct Attempt {
    sandbox: Option<WorktreeSandbox>,
    /// The new worktree's id, once `new` reads it, when it had no record:
    /// the record is this attempt's, even one written just before a failure.
    new_record: Option<String>,
    new_database: bool,
}

fn build_new(
    workspace: &Workspace,
    path: &Path,
    name: &str,
    prebuilt: Option<Prebuilt>,
    progress: &Progress,
    attempt: &mut Attempt,
) -> Result<Outcome, BoxError> {
    let checkout = Checkout::discover(path)?;
    if workspace.registry.get(&checkout.id)?.is_none() {
        attempt.new_record = Some(checkout.id.clone());
    }
    let reserved = WorktreeSandbox::reserve(workspace.at(checkout), Some(name), false)?;
    let sandbox = attempt.sandbox.insert(reserved);
    attempt.new_database = !sandbox.database()?.exists()?;
    let made = match prebuilt {
        Some(prebuilt) if attempt.new_database => adopt(sandbox, prebuilt, progress)?,
        _ => Vec::new(),
    };
    let mut outcome = apply::apply(sandbox, apply::Options::default(), progress)?;
    outcome.actions.splice(0..0, made);
    Ok(outcome)
}

/// Moves the database built during the checkout into place if it was built
/// from exactly the migration files git checked out; returns what that
/// did, for the report.
fn adopt(
    sandbox: &WorktreeSandbox,
    prebuilt: Prebuilt,
    progress: &Progress,
) -> Result<Vec<Action>, BoxError> {
    let checked_out: Vec<Applied> = sandbox
        .migrations()?
        .iter()
        .map(Migration::record)
        .collect();
    let mut database = sandbox.database()?;
    if checked_out != prebuilt.applied || !database.adopt(prebuilt.file)? {
        return Ok(Vec::new());
    }
    let names: Vec<String> = prebuilt.applied.into_iter().map(|a| a.name).collect();
    let cached = prebuilt.from_store.as_ref().map_or(0, |(_, n)| *n);
    let create = Action::CreateDatabase {
        name: database.name().to_string(),
        location: database.location(),
        from_store: prebuilt.from_store.map(|(entry, _)| entry),
        cached: names[..cached].to_vec(),
        seed: None,
    };
    progress.step(&create.to_string());
    let rest = names[cached..].to_vec();
    for name in &rest {
        progress.step(&format!("migrate   {name}"));
    }
    let mut made = vec![create];
    if !rest.is_empty() {
        made.push(Action::Migrate { names: rest });
    }
    Ok(made)
}

/// `git worktree add` under the registry lock: git does not serialise
/// concurrent adds fully (one can read another's half-written admin dir and
/// fail, "failed to read .git/worktrees/…/commondir"), so many agents at
/// once take turns here. Where the branch comes from is asked again under
/// the lock, since another `new` may have made it meanwhile (the build
/// ahead only guessed; it is checked against the files git writes).
/// A [`Pending`] entry covers git's step: if git fails and what it made
/// cannot be taken back, or this run is killed, `remove NAME`, `gc` or the
/// next `new NAME` finish it.
fn add_worktree(
    workspace: &Workspace,
    name: &str,
    path: &Path,
    from: Option<&str>,
    parallel: bool,
    progress: &Progress,
) -> Result<(Start, Pending), BoxError> {
    let checkout = &workspace.checkout;
    let _turn = workspace.registry.lock()?;
    if let Some(earlier) = pending::get(&checkout.common_dir, name) {
        let finished = pending::finish(workspace, &earlier, false)?;
        if !finished.kept.is_empty() {
            return Err(format!(
                "an earlier `provision new {name}` failed and left {}; `provision remove {name}` says what it keeps",
                finished.kept.join("; ")
            )
            .into());
        }
    }
    let start = git::branch_start(&checkout.main, name, from)?;
    let begun = Pending {
        name: name.to_string(),
        path: path.to_path_buf(),
        start: match start.creates_branch() {
            true => Some(start_commit(&checkout.main, &start.revision(name))?),
            false => None,
        },
        folder_existed: fs_err::symlink_metadata(path).is_ok(),
    };
    pending::write(&checkout.common_dir, &begun)?;
    let added = git::worktree_add(&checkout.main, name, path, &start, parallel)
        .and_then(|()| match git::checkout_complete(path)? {
            true => Ok(()),
            false => Err(git::GitError::Command {
                args: format!("worktree add {}", path.display()),
                stderr: "git reported success, but its checkout is incomplete (the index lacks files of HEAD)".into(),
            }),
        })
        .and_then(|()| git::unlock_added(&checkout.common_dir, path))
        .map_err(BoxError::from)
        // While the entry stays, the worktree is not this run's to build.
        .and_then(|()| pending::delete(&checkout.common_dir, name));
    if let Err(e) = added {
        take_back(workspace, &begun, progress);
        return Err(e);
    }
    Ok((start, begun))
}

/// The commit `revision` names, as text.
fn start_commit(main: &Path, revision: &str) -> Result<String, BoxError> {
    let repo = git2::Repository::open(main)?;
    Ok(repo
        .revparse_single(revision)?
        .peel_to_commit()?
        .id()
        .to_string())
}

/// Takes back what git made of `pending` (under the registry lock); what
/// cannot go yet stays pending, and is said.
fn take_back(workspace: &Workspace, pending: &Pending, progress: &Progress) -> bool {
    match pending::finish(workspace, pending, false) {
        Ok(finished) if finished.kept.is_empty() => true,
        Ok(finished) => {
            progress.warn(&format!(
                "kept {}; `provision remove {}` finishes it",
                finished.kept.join("; "),
                pending.name
            ));
            false
        }
        Err(e) => {
            progress.warn(&format!(
                "could not take back what git made ({e}); `provision remove {}` finishes it",
                pending.name
            ));
            false
        }
    }
}

/// Removes what a failed `new` made, and says what that was.
fn undo_new(
    workspace: &Workspace,
    begun: &Pending,
    attempt: &Attempt,
    progress: &Progress,
) -> String {
    let mut undone = Vec::new();
    // The record goes only once the database is known to be gone: while it
    // stays, it is the root that lets `gc` collect the database.
    let mut database_gone = true;
    if let Some(sandbox) = &attempt.sandbox
        && attempt.new_database
    {
        database_gone = match drop_new_database(sandbox) {
            Ok(true) => {
                undone.push("the database");
                true
            }
            Ok(false) => true,
            Err(e) => {
                progress.warn(&format!(
                    "could not drop the new database `{}` again ({e}); its record stays, so `provision gc` finds it",
                    sandbox.database_name
                ));
                false
            }
        };
    }
    // Even without a sandbox: reserving it may have written the record
    // before it failed.
    let registry = &workspace.registry;
    if let Some(id) = &attempt.new_record
        && database_gone
        && let Ok(guard) = registry.lock()
        && registry.get(id).is_ok_and(|r| r.is_some())
        && registry.delete(&guard, id).is_ok()
    {
        undone.push("the registry record");
    }
    // Pending again, so that what cannot be taken back now is finished by
    // `remove NAME` or `gc`.
    let taken_back = workspace.registry.lock().is_ok_and(|_turn| {
        pending::write(&workspace.checkout.common_dir, begun).is_ok()
            && take_back(workspace, begun, progress)
    });
    if taken_back {
        undone.push("the worktree and branch");
    }
    if undone.is_empty() {
        "nothing it made could be removed again".into()
    } else {
        format!("removed again: {}", undone.join(", "))
    }
}

/// Drops the database a failed `new` created; `Ok(false)` when there is none.
fn drop_new_database(sandbox: &WorktreeSandbox) -> Result<bool, BoxError> {
    let mut db = sandbox.database()?;
    if !db.exists()? {
        // Lets a kind forget what it kept of it (the command kind's record).
        db.drop_database()?;
        return Ok(false);
    }
    if !db.is_marked()? {
        // Half made by a failed `create`: provision never drops what does
        // not carry its mark, so a person has to look.
        return Err(format!(
            "it exists without provision's mark ({}); drop it by hand",
            db.location()
        )
        .into());
    }
    db.drop_database()?;
    Ok(true)
}

/// Names the step that failed in front of the error.
fn with_step(step: &str, err: impl Into<BoxError>) -> BoxError {
    #[derive(Debug, thiserror::Error)]
    #[error("{step} failed")]
    struct StepFailed {
        step: String,
        #[source]
        source: BoxError,
    }
    Box::new(StepFailed {
        step: step.to_string(),
        source: err.into(),
    })
}
