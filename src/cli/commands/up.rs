//! `provision up [SERVICE…]`: start the recipe's `[[services]]` in this
//! worktree's sandbox, in the background (the work is `services::up`'s).

use serde::Serialize;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output::{self, DIM, GREEN, Report, paint};
use crate::recipe::{config, trust};
use crate::services::{self, Here, Up};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The services to start (default: every `[[services]]` of provision.toml).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Serialize)]
struct UpReport {
    sandbox: String,
    services: Vec<Up>,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let here = Here::discover(&globals.cwd)?;
    let chosen = here.select(&args.services)?;
    // Every command is approved before any starts: none half-way.
    let main = here.workspace.checkout.main.to_string_lossy();
    for service in &chosen {
        let what = format!(
            "{}:{}: services.{}",
            config::FILE_NAME,
            service.line,
            service.name
        );
        trust::require(&main, &what, &service.run)?;
    }
    let report = UpReport {
        sandbox: here.name.clone(),
        services: services::up(&here, &chosen)?,
    };
    output::emit(&report, globals.json);
    Ok(Exit::Clean)
}

impl Report for UpReport {
    fn text(&self) -> String {
        if self.services.is_empty() {
            return format!(
                "{} declares no [[services]]: nothing to start\n",
                config::FILE_NAME
            );
        }
        let width = self
            .services
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for service in &self.services {
            let (state, style) = if service.started {
                ("started", GREEN)
            } else {
                ("running", DIM)
            };
            out.push_str(&format!(
                "{} {:<width$}  pid {:<7}  log {}\n",
                paint(style, format!("{state:<7}")),
                service.name,
                service.pid,
                service.log,
            ));
        }
        if self.services.iter().any(|s| !s.started) {
            out.push_str(&paint(
                DIM,
                "`running`: it was running already, and was left as it is\n",
            ));
        }
        out
    }
}
