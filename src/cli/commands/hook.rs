//! `provision hook claude-code`: the handler Claude Code's `WorktreeCreate`
//! and `WorktreeRemove` hooks run. It reads the event's JSON object from
//! stdin; for a create it builds the sandbox as `new` does and prints only
//! the worktree's absolute path on stdout (Claude Code reads it; progress
//! goes to stderr); for a remove it removes the sandbox under `remove`'s
//! safety rules. A non-zero exit fails the agent's worktree operation.

use crate::BoxError;
use crate::agents::claude_code::{self, Event};
use crate::cli::{Exit, Globals};
use crate::git::Checkout;
use crate::lifecycle::remove::{self, RemoveOptions};
use crate::output;
use crate::workspace::Workspace;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent whose hook event arrives on stdin.
    #[arg(value_enum)]
    pub agent: Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Agent {
    /// Claude Code's WorktreeCreate and WorktreeRemove hooks.
    ClaudeCode,
}

pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let Agent::ClaudeCode = args.agent;
    match claude_code::read_event(std::io::stdin().lock())? {
        Event::Create {
            name,
            path,
            cwd,
            base,
        } => {
            let here = Globals {
                cwd: cwd.unwrap_or_else(|| globals.cwd.clone()),
                ..globals.clone()
            };
            // An agent reusing a name gets its branch back as it is: a base
            // is only where a new branch starts.
            let exists = Checkout::discover(&here.cwd)
                .ok()
                .and_then(|c| git2::Repository::open(&c.main).ok())
                .is_some_and(|r| r.find_branch(&name, git2::BranchType::Local).is_ok());
            let base = base.filter(|_| !exists);
            let outcome = super::new::create(&here, &name, path, base.as_deref())?;
            output::stdout(format!("{}\n", outcome.path).as_bytes());
        }
        Event::Remove { path, cwd } => {
            // From inside the worktree when Claude Code gives no cwd: any
            // folder of the repository finds its main checkout.
            let cwd = cwd.unwrap_or_else(|| path.clone());
            let target = path.to_string_lossy();
            let options = RemoveOptions {
                target: &target,
                cwd: &cwd,
                force: false,
                keep_branch: false,
                dry_run: false,
            };
            let removal = remove::remove(&Workspace::discover(&cwd)?, options)?;
            globals
                .progress
                .step(&format!("removed sandbox {}", removal.name));
        }
    }
    Ok(Exit::Clean)
}
