//! `provision trust`: lists the commands the recipe runs and approves their
//! exact text for this repository (`--list` only lists). Approvals are kept
//! in the user's config dir, never in the repository.

use serde::Serialize;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::git::Checkout;
use crate::output::{self, BOLD, DIM, GREEN, Report, YELLOW, paint};
use crate::recipe::config::{self, FILE_NAME};
use crate::recipe::trust::{self, RecipeCommand, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only list the commands and whether each is approved.
    #[arg(long)]
    pub list: bool,
}

#[derive(Serialize)]
struct TrustReport {
    /// The main checkout the approvals are for.
    repository: String,
    /// Where approvals are kept.
    store: String,
    commands: Vec<Row>,
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    command: RecipeCommand,
    /// `approved` (before this run), `approved now`, or `not approved`.
    state: &'static str,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let main = Checkout::discover(&globals.cwd)?.main_of()?;
    let settings = config::load(&main.main)?;
    let repository = main.main.to_string_lossy().into_owned();
    let commands = trust::approvals(&settings);
    let (mut store, path, _held) = if args.list {
        let (store, path) = Store::load()?;
        (store, path, None)
    } else {
        let (store, path, held) = Store::load_to_change()?;
        (store, path, Some(held))
    };
    let rows = commands
        .iter()
        .map(|command| Row {
            command: command.clone(),
            state: match (store.approves(&repository, &command.run), args.list) {
                (true, _) => "approved",
                (false, true) => "not approved",
                (false, false) => "approved now",
            },
        })
        .collect();
    if !args.list && store.approve(&repository, &commands) {
        store.save(&path)?;
    }
    let report = TrustReport {
        repository,
        store: path.display().to_string(),
        commands: rows,
    };
    output::emit(&report, globals.json);
    Ok(Exit::Clean)
}

impl Report for TrustReport {
    fn text(&self) -> String {
        if self.commands.is_empty() {
            return format!("{FILE_NAME} runs no commands: nothing to approve\n");
        }
        let width = self
            .commands
            .iter()
            .map(|r| r.state.len())
            .max()
            .unwrap_or(0);
        let mut out = format!(
            "{}\n",
            paint(BOLD, format!("commands of {}", self.repository))
        );
        for row in &self.commands {
            let style = match row.state {
                "not approved" => YELLOW,
                "approved now" => GREEN,
                _ => DIM,
            };
            let at = match row.command.line {
                Some(line) => format!("{FILE_NAME}:{line} {}", row.command.what),
                None => format!("{FILE_NAME} {}", row.command.what),
            };
            out.push_str(&format!(
                "  {}  {at}\n      {}\n",
                paint(style, format!("{:<width$}", row.state)),
                row.command.run
            ));
        }
        out.push_str(&paint(
            DIM,
            format!("approvals are kept in {}\n", self.store),
        ));
        out
    }
}
