//! `provision new NAME`: a worktree on a new branch, with its sandbox built
//! (the work is `lifecycle::create`'s).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::fsutil;
use crate::lifecycle::create::{self, Options};
use crate::output::{self, GREEN, Report, paint};
use crate::recipe::config::DatabaseKind;
use crate::recipe::{template, trust};
use crate::sandbox::apply::Outcome;
use crate::slug;
use crate::workspace::Workspace;

use super::short;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the branch (new, or one that exists) and of the sandbox (`feature-auth`).
    pub name: String,

    /// Start the branch at REV instead of the main checkout's HEAD.
    #[arg(long, value_name = "REV")]
    pub from: Option<String>,

    /// Put the worktree at DIR instead of `[worktree] path`.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let outcome = create(globals, &args.name, args.path, args.from.as_deref())?;
    for warning in &outcome.shadowed {
        globals.progress.warn(warning);
    }
    // What an orchestrator needs next, from the lock just written: one
    // object, so nothing has to be scraped from text. Taken from what was
    // written, not read back: a failed read must not fail a `new` that is
    // done.
    let locked = outcome.sandbox.clone();
    let report = NewReport {
        branch: args.name,
        port: locked.port,
        ports: locked.named_ports(),
        database: Database {
            kind: locked.database.kind,
            name: locked.database.name,
            location: locked.database.location,
        },
        env: locked.env.map(|env| env.overrides).unwrap_or_default(),
        outcome,
    };
    output::emit(&report, globals.json);
    Ok(Exit::Clean)
}

/// What `new` does, for `new` and for the agents' hooks: `path` relative
/// to where provision runs, else `[worktree] path`.
pub(super) fn create(
    globals: &Globals,
    name: &str,
    path: Option<PathBuf>,
    from: Option<&str>,
) -> Result<Outcome, BoxError> {
    let workspace = Workspace::discover(&globals.cwd)?;
    trust::check_recipe(&workspace.checkout.main, &workspace.settings)?;
    let main = &workspace.checkout.main;
    let path = match path {
        Some(path) => std::path::absolute(globals.cwd.join(path))?,
        None => {
            // A branch name may hold `/` (`feature/login`); its folder does
            // not nest: `../worktree-feature-login`.
            let values = [
                ("name", name.replace('/', "-")),
                ("slug", slug::slug(name)),
                ("repo", workspace.repo.clone()),
                ("main", main.display().to_string()),
            ];
            main.join(template::expand(
                &workspace.settings.worktree_path,
                &values.into_iter().collect(),
            )?)
        }
    };
    // A record, a lock and git's own files name the worktree as text.
    if path.to_str().is_none() {
        return Err(format!(
            "{} is not a UTF-8 path; provision needs one it can record",
            path.display()
        )
        .into());
    }
    let options = Options {
        name,
        path: fsutil::normalize(&path),
        from,
    };
    create::create(&workspace, options, &globals.progress)
}

/// `new`'s report: apply's, read as the announcement of a new sandbox,
/// with the sandbox's branch, port, database and env overrides.
#[derive(serde::Serialize)]
struct NewReport {
    #[serde(flatten)]
    outcome: Outcome,
    branch: String,
    /// The first named port.
    port: u16,
    /// Every named port (`[ports] names`), the first among them.
    ports: BTreeMap<String, u16>,
    database: Database,
    env: BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
struct Database {
    kind: DatabaseKind,
    name: String,
    location: String,
}

impl Report for NewReport {
    fn text(&self) -> String {
        format!(
            "{}\n  cd {}\n",
            paint(
                GREEN,
                format!(
                    "sandbox {} is ready (lock {})",
                    self.outcome.worktree,
                    short(&self.outcome.lock)
                )
            ),
            self.outcome.path
        )
    }
}
