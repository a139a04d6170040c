//! `provision init`: a commented recipe fitted to the checkout (the work
//! is `recipe::init`; its report reads as text here).

use serde::Serialize;

use crate::BoxError;
use crate::agents::claude_code::{self, SETTINGS_FILE};
use crate::cli::commands::hook::Agent;
use crate::cli::{Exit, Globals};
use crate::fsutil;
use crate::git::Checkout;
use crate::output::{self, BOLD, DIM, GREEN, Report, YELLOW, paint};
use crate::recipe::init::{self, InitReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also point AGENT's worktree hooks at provision (`claude-code`:
    /// `.claude/settings.json`, merged with what is there).
    #[arg(long, value_enum, value_name = "AGENT")]
    pub agent: Option<Agent>,
}

#[derive(Serialize)]
struct InitWithAgent {
    #[serde(flatten)]
    init: InitReport,
    /// With `--agent`: the settings file and the hook events added to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<AgentSettings>,
}

#[derive(Serialize)]
struct AgentSettings {
    file: String,
    added: Vec<&'static str>,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let init = init::init(&globals.cwd)?;
    let agent = match args.agent {
        Some(Agent::ClaudeCode) => Some(claude_settings(globals)?),
        None => None,
    };
    output::emit(&InitWithAgent { init, agent }, globals.json);
    Ok(Exit::Clean)
}

/// Merges the hook entries into the main checkout's Claude Code settings,
/// writing only when something was added.
fn claude_settings(globals: &Globals) -> Result<AgentSettings, BoxError> {
    let main = Checkout::discover(&globals.cwd)?.main_of()?;
    let path = main.main.join(SETTINGS_FILE);
    for link in [".claude", SETTINGS_FILE] {
        if let Ok(target) = fs_err::read_link(main.main.join(link)) {
            return Err(claude_code::SettingsError::linked(link, &target).into());
        }
    }
    let existing = match fs_err::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let merged = claude_code::merge_settings(existing.as_deref())?;
    if !merged.added.is_empty() {
        fsutil::write_atomically(&path, merged.text.as_bytes())?;
    }
    Ok(AgentSettings {
        file: path.display().to_string(),
        added: merged.added,
    })
}

impl Report for InitWithAgent {
    fn text(&self) -> String {
        let mut out = self.init.text();
        if let Some(agent) = &self.agent {
            if agent.added.is_empty() {
                out.push_str(&format!(
                    "{} {SETTINGS_FILE} (its hooks already run provision)\n",
                    paint(DIM, "kept   ")
                ));
            } else {
                out.push_str(&format!(
                    "{} {SETTINGS_FILE}: {} hook(s) run `{}`\n",
                    paint(GREEN, "merged "),
                    agent.added.join(" and "),
                    claude_code::HOOK_COMMAND
                ));
            }
        }
        out
    }
}

impl Report for InitReport {
    fn text(&self) -> String {
        let mut out = String::new();
        if self.found.is_empty() {
            out.push_str(&format!(
                "{}\n",
                paint(DIM, "found no known tool: defaults")
            ));
        } else {
            out.push_str(&format!("found {}\n", self.found.join(", ")));
        }
        for file in &self.wrote {
            out.push_str(&format!("{} {file}\n", paint(GREEN, "wrote  ")));
        }
        for file in &self.skipped {
            out.push_str(&format!(
                "{} {file} (it exists; not overwritten)\n",
                paint(YELLOW, "skipped")
            ));
        }
        if !self.wrote.is_empty() {
            out.push_str(&format!(
                "{}\n",
                paint(BOLD, "review them, commit them, then: provision new NAME")
            ));
        }
        out
    }
}
