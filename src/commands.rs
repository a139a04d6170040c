//! One function per command: resolve the arguments into plain values, do
//! the work through the library modules, return a report for `output`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use crate::apply::{self, Action, Outcome};
use crate::cli::{ApplyArgs, Cli, Command, EnvArgs, ExecArgs, GcArgs, NewArgs, RemoveArgs};
use crate::context::{self, Context};
use crate::migrations::{Applied, Migration};
use crate::output::{self, Progress, Verbosity};
use crate::prebuild::{Ahead, Prebuilt};
use crate::registry::Registry;
use crate::repo::{self, Checkout};
use crate::template;
use crate::verify;
use crate::{BoxError, gc, init, overrides, remove, render, slug, status};

/// How a command ended, as the exit status says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; for `verify`, a clean sandbox.
    Clean,
    /// `verify` found drift.
    Drift,
    /// Bad input, an unreadable lock, a failed step.
    Error,
    /// `exec` could not start its command (see `OverridesError::status`).
    Status(u8),
}

impl Exit {
    pub fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Exit::Clean => 0,
            Exit::Drift => 1,
            Exit::Error => 2,
            Exit::Status(code) => code,
        })
    }
}

pub fn run(cli: Cli) -> Result<Exit, BoxError> {
    let cwd = match &cli.directory {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()?,
    };
    output::set_verbosity(if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    });
    // `--json` keeps stderr to warnings too, unless `--verbose` asks for more.
    let progress = Progress::new(cli.json && !cli.verbose);
    match cli.command.unwrap_or(Command::Apply(ApplyArgs::default())) {
        Command::New(args) => new(&cwd, args, &progress, cli.json),
        Command::Apply(args) => apply(&cwd, args, &progress, cli.json),
        Command::Verify(_) => verify(&cwd, cli.json),
        Command::Remove(args) => remove(&cwd, args, cli.json),
        Command::Gc(args) => gc(&cwd, args, cli.json),
        Command::Status(_) => {
            output::emit(&status::status(&cwd)?, cli.json);
            Ok(Exit::Clean)
        }
        Command::Env(args) => env(&cwd, args, &progress, cli.json),
        Command::Exec(args) => exec(&cwd, args, &progress),
        Command::Init(_) => {
            output::emit(&init::init(&cwd)?, cli.json);
            Ok(Exit::Clean)
        }
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "provision", &mut std::io::stdout());
            Ok(Exit::Clean)
        }
    }
}

fn env(cwd: &Path, args: EnvArgs, progress: &Progress, json: bool) -> Result<Exit, BoxError> {
    let report = overrides::EnvReport {
        vars: overrides_here(cwd, progress)?,
        shell: args.shell,
    };
    output::emit(&report, json);
    Ok(Exit::Clean)
}

/// Returns only when the command could not be started.
fn exec(cwd: &Path, args: ExecArgs, progress: &Progress) -> Result<Exit, BoxError> {
    let err = overrides::exec(&overrides_here(cwd, progress)?, &args.command);
    output::print_error(&err);
    Ok(Exit::Status(err.status()))
}

/// The current worktree's overrides, with a warning where it has none.
fn overrides_here(cwd: &Path, progress: &Progress) -> Result<BTreeMap<String, String>, BoxError> {
    let found = overrides::current(cwd)?;
    if let Some(note) = &found.note {
        progress.warn(note);
    }
    Ok(found.vars)
}

fn remove(cwd: &Path, args: RemoveArgs, json: bool) -> Result<Exit, BoxError> {
    let removal = remove::remove(cwd, &args.name, args.force, args.keep_branch)?;
    output::emit(&removal, json);
    Ok(Exit::Clean)
}

fn gc(cwd: &Path, args: GcArgs, json: bool) -> Result<Exit, BoxError> {
    let report = gc::gc(cwd, args.dry_run, args.merged)?;
    output::emit(&report, json);
    Ok(if report.failed.is_empty() {
        Exit::Clean
    } else {
        Exit::Error
    })
}

fn new(cwd: &Path, args: NewArgs, progress: &Progress, json: bool) -> Result<Exit, BoxError> {
    let main = Checkout::discover(cwd)?.main_of()?;
    let (settings, _) = context::recipe(&main)?;
    let path = match args.path {
        Some(path) => std::path::absolute(cwd.join(path))?,
        None => {
            let values = [
                ("name", args.name.clone()),
                ("slug", slug::slug(&args.name)),
                ("repo", main.repo_name()),
                ("main", main.main.display().to_string()),
            ];
            main.main.join(template::expand(
                &settings.worktree_path,
                &values.into_iter().collect(),
            )?)
        }
    };
    let path = crate::fsutil::normalize(&path);
    let start = args.from.as_deref().unwrap_or("HEAD");
    let ahead = Ahead::start(&main.main, &main.common_dir, &settings, start);
    let added = {
        // git does not serialise concurrent `worktree add`s fully: one can
        // read another's half-written admin dir and fail ("failed to read
        // .git/worktrees/…/commondir"). Many agents at once take turns here.
        let _turn = Registry::new(&main.common_dir).lock()?;
        repo::worktree_add(&main.main, &args.name, &path, args.from.as_deref())
            .and_then(|()| repo::unlock_added(&main.common_dir, &path))
    };
    if added.is_ok() {
        progress.step(&format!(
            "worktree  {} on new branch {}",
            path.display(),
            args.name
        ));
        if ahead.is_running() {
            progress.step("database  still migrating, from git's objects");
        }
    }
    // Joined before any error returns, so an unused database is deleted.
    let prebuilt = ahead.finish();
    added?;
    let mut attempt = Attempt::default();
    match build_new(&path, &args.name, prebuilt, progress, &mut attempt) {
        Ok(outcome) => {
            output::emit(&render::NewReport(outcome), json);
            Ok(Exit::Clean)
        }
        // Everything before the setup commands is built and locked: kept,
        // so that `apply` continues at the failed command.
        Err(err) if err.is::<crate::setup::SetupError>() => Err(crate::setup::SetupError::Kept {
            dir: path.display().to_string(),
            source: err,
        }
        .into()),
        Err(err) => {
            let undone = undo_new(&main, &args.name, &path, &attempt, progress);
            Err(with_step(&format!("building the sandbox ({undone})"), err))
        }
    }
}

/// What a `new` attempt made beyond the worktree and branch, so that a
/// failure takes back exactly that and nothing that was there before.
#[derive(Default)]
struct Attempt {
    ctx: Option<Context>,
    new_record: bool,
    new_database: bool,
}

fn build_new(
    path: &Path,
    name: &str,
    prebuilt: Option<Prebuilt>,
    progress: &Progress,
    attempt: &mut Attempt,
) -> Result<Outcome, BoxError> {
    let checkout = Checkout::discover(path)?;
    attempt.new_record = Registry::new(&checkout.common_dir)
        .get(&checkout.id)?
        .is_none();
    let ctx = attempt
        .ctx
        .insert(Context::reserve(checkout, Some(name), false)?);
    attempt.new_database = !ctx.database()?.exists()?;
    let made = match prebuilt {
        Some(prebuilt) if attempt.new_database => adopt(ctx, prebuilt, progress)?,
        _ => Vec::new(),
    };
    let mut outcome = apply::apply(ctx, false, progress)?;
    outcome.actions.splice(0..0, made);
    Ok(outcome)
}

/// Moves the database built during the checkout into place if it was built
/// from exactly the migration files git checked out; returns what that
/// did, for the report.
fn adopt(ctx: &Context, prebuilt: Prebuilt, progress: &Progress) -> Result<Vec<Action>, BoxError> {
    let checked_out: Vec<Applied> = ctx.migrations()?.iter().map(Migration::record).collect();
    let mut database = ctx.database()?;
    if checked_out != prebuilt.applied || !database.adopt(prebuilt.file)? {
        return Ok(Vec::new());
    }
    let create = Action::CreateDatabase {
        name: database.name().to_string(),
        location: database.location(),
    };
    progress.step(&create.to_string());
    let names: Vec<String> = prebuilt.applied.into_iter().map(|a| a.name).collect();
    for name in &names {
        progress.step(&format!("migrate   {name}"));
    }
    Ok(vec![create, Action::Migrate { names }])
}

/// Removes what a failed `new` made, and says what that was.
fn undo_new(
    main: &Checkout,
    name: &str,
    path: &Path,
    attempt: &Attempt,
    progress: &Progress,
) -> String {
    let mut undone = Vec::new();
    if let Some(ctx) = &attempt.ctx {
        // The record goes only once the database is known to be gone: while
        // it stays, it is the root that lets `gc` collect the database.
        let mut database_gone = true;
        if attempt.new_database {
            database_gone = match drop_new_database(ctx) {
                Ok(true) => {
                    undone.push("the database");
                    true
                }
                Ok(false) => true,
                Err(e) => {
                    progress.warn(&format!(
                        "could not drop the new database `{}` again ({e}); its record stays, so `provision gc` finds it",
                        ctx.database_name
                    ));
                    false
                }
            };
        }
        if attempt.new_record
            && database_gone
            && let Ok(guard) = ctx.registry.lock()
            && ctx.registry.delete(&guard, &ctx.checkout.id).is_ok()
        {
            undone.push("the registry record");
        }
    }
    match repo::worktree_undo(&main.main, name, path) {
        Ok(()) => undone.push("the worktree and branch"),
        Err(e) => progress.warn(&format!("could not remove the new worktree again: {e}")),
    }
    if undone.is_empty() {
        "nothing it made could be removed again".into()
    } else {
        format!("removed again: {}", undone.join(", "))
    }
}

/// Drops the database a failed `new` created; `Ok(false)` when there is none.
fn drop_new_database(ctx: &Context) -> Result<bool, BoxError> {
    let mut db = ctx.database()?;
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

fn apply(cwd: &Path, args: ApplyArgs, progress: &Progress, json: bool) -> Result<Exit, BoxError> {
    let checkout = Checkout::discover(cwd)?;
    let ctx = Context::reserve(checkout, None, args.dry_run)?;
    let outcome = apply::apply(&ctx, args.dry_run, progress)?;
    output::emit(&outcome, json);
    Ok(Exit::Clean)
}

fn verify(cwd: &Path, json: bool) -> Result<Exit, BoxError> {
    let report = verify::verify(Checkout::discover(cwd)?)?;
    output::emit(&report, json);
    Ok(if report.clean {
        Exit::Clean
    } else {
        Exit::Drift
    })
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
