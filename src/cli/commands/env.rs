//! `provision env`: the current worktree's overrides as dotenv lines,
//! shell code for `eval`, or a JSON object.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output::{self, Report};
use crate::sandbox::{envfile, overrides};
use crate::shell::{fish_quote, posix_quote};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print `export` lines for SHELL, quoted for `eval` (fish: `set -gx`).
    #[arg(long, value_name = "SHELL", conflicts_with = "json")]
    pub shell: Option<Shell>,
}

/// A shell `provision env --shell` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let vars = overrides_here(globals)?;
    if args.shell.is_none() && !globals.json {
        // Dotenv lines are quoted as the env file is; a value that cannot
        // be (an edited lock) is refused, not printed to be misread.
        if let Some((key, value)) = vars.iter().find(|(_, v)| envfile::quote(v).is_none()) {
            return Err(envfile::Unquotable {
                key: key.clone(),
                value: value.clone(),
            }
            .into());
        }
    }
    let report = EnvReport {
        vars,
        shell: args.shell,
    };
    output::emit(&report, globals.json);
    Ok(Exit::Clean)
}

/// The current worktree's overrides, with a warning where it has none.
pub(super) fn overrides_here(globals: &Globals) -> Result<BTreeMap<String, String>, BoxError> {
    let found = overrides::current(&globals.cwd)?;
    if let Some(note) = &found.note {
        globals.progress.warn(note);
    }
    Ok(found.vars)
}

/// Dotenv lines, shell code, or (with `--json`) an object of the variables.
#[derive(Serialize)]
#[serde(transparent)]
struct EnvReport {
    vars: BTreeMap<String, String>,
    #[serde(skip)]
    shell: Option<Shell>,
}

impl Report for EnvReport {
    fn text(&self) -> String {
        self.vars
            .iter()
            .map(|(key, value)| match self.shell {
                None => format!("{key}={}\n", envfile::quote(value).unwrap_or_default()),
                Some(Shell::Bash | Shell::Zsh) => format!("export {key}={}\n", posix_quote(value)),
                Some(Shell::Fish) => format!("set -gx {key} {}\n", fish_quote(value)),
            })
            .collect()
    }
}
