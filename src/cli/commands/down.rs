//! `provision down [SERVICE…]`: stop this sandbox's services, SIGTERM then
//! SIGKILL after each one's grace period (the work is `services::down`'s).

use serde::Serialize;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output::{self, DIM, GREEN, RED, Report, YELLOW, paint};
use crate::services::{self, Down, Here, How};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The services to stop (default: every service running or recorded here).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Serialize)]
struct DownReport {
    sandbox: String,
    services: Vec<Down>,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let here = Here::discover(&globals.cwd)?;
    let report = DownReport {
        sandbox: here.name.clone(),
        services: services::down(&here, &args.services)?,
    };
    output::emit(&report, globals.json);
    let failed = report
        .services
        .iter()
        .flat_map(|s| &s.stopped)
        .any(|s| s.how == How::Failed);
    Ok(if failed { Exit::Error } else { Exit::Clean })
}

impl Report for DownReport {
    fn text(&self) -> String {
        if self.services.is_empty() {
            return "no services running here: nothing to stop\n".into();
        }
        let mut out = String::new();
        for service in &self.services {
            let state = match (&service.exited, service.stopped.is_empty()) {
                (Some(exited), _) => match exited.status {
                    Some(status) => paint(YELLOW, format!("had exited with status {status}")),
                    None => paint(YELLOW, "had exited"),
                },
                (None, true) => paint(DIM, "was not running"),
                (None, false) => paint(GREEN, "stopped"),
            };
            out.push_str(&format!("{}  {state}\n", service.name));
            if let Some(why) = &service.unreadable {
                out.push_str(&format!(
                    "  {}\n",
                    paint(RED, format!("{why}: nothing was signalled by it"))
                ));
            }
            for line in services::stop::describe(&service.stopped) {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }
}
