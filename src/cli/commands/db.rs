//! `provision db`: this sandbox's database on its own. `db reset` builds it
//! anew from the migrations (the work is `sandbox::apply`'s, asked to
//! rebuild), keeping the old one aside until the next `gc`.

use serde::Serialize;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output::{self, BOLD, GREEN, Report, paint};
use crate::recipe::trust;
use crate::sandbox::apply::{self, Action, Outcome};
use crate::workspace::{Workspace, WorktreeSandbox};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Build this sandbox's database anew from the migrations, keeping the
    /// old one aside (SQLite: moved, PostgreSQL: renamed, still marked as
    /// provision's) until the next `provision gc`.
    ///
    /// For a database that no longer matches the branch's migrations: an
    /// applied migration edited, or one sorting before an applied one
    /// (after a merge). The links, env file and setup are brought up to
    /// date as `provision apply` does.
    Reset(ResetArgs),
    /// Make a spare copy of a store entry ahead of the next sandbox (run in
    /// the background by `new` and `db reset` on PostgreSQL).
    #[command(hide = true)]
    Refill {
        /// The store entry (`provision_store_<hash>`).
        entry: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// Print what would be done, and do nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Drop the old database instead of keeping it aside (the only way for
    /// the command kind, which cannot keep one aside).
    #[arg(long)]
    pub discard: bool,
}

/// `db reset`'s report: apply's, read as a rebuild.
#[derive(Debug, Serialize)]
pub struct Reset {
    #[serde(flatten)]
    pub outcome: Outcome,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    match args.command {
        DbCommand::Reset(args) => {
            let workspace = Workspace::discover(&globals.cwd)?;
            trust::check_recipe(&workspace.checkout.main, &workspace.settings)?;
            let sandbox = WorktreeSandbox::reserve(workspace, None, args.dry_run)?;
            let options = apply::Options {
                dry_run: args.dry_run,
                reset: true,
                discard: args.discard,
            };
            let outcome = apply::apply(&sandbox, options, &globals.progress)?;
            output::emit(&Reset { outcome }, globals.json);
            Ok(Exit::Clean)
        }
        DbCommand::Refill { entry } => {
            crate::lifecycle::store::refill(&Workspace::discover(&globals.cwd)?, &entry)?;
            Ok(Exit::Clean)
        }
    }
}

impl Report for Reset {
    fn text(&self) -> String {
        let outcome = &self.outcome;
        if outcome.dry_run {
            return outcome.text();
        }
        let (mut applied, mut cached) = (0, 0);
        for action in &outcome.actions {
            match action {
                Action::Migrate { names } => applied += names.len(),
                Action::CreateDatabase { cached: from, .. } => cached += from.len(),
                _ => {}
            }
        }
        let mut out = paint(
            GREEN,
            format!(
                "rebuilt the database of sandbox {} ({applied} migration(s) applied, {cached} from the store)",
                outcome.worktree
            ),
        );
        out.push('\n');
        if let Some(aside) = &outcome.set_aside {
            out.push_str(&format!(
                "the previous one is kept as {} ({}) until {}; to get it back:\n  {}\n",
                paint(BOLD, &aside.database),
                aside.location,
                aside.until,
                aside.restore
            ));
        }
        out
    }
}
