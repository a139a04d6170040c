//! The command line as data: clap derive structs, nothing else.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A reproducible sandbox for every git worktree: its own checkout, links to
/// the main checkout's untracked config, env overrides, database and port.
///
/// Without a command, `provision` runs `apply` in the current worktree.
#[derive(Debug, Parser)]
#[command(name = "provision", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Run as if provision was started in DIR.
    #[arg(short = 'C', long, global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// Print a JSON report on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print errors and warnings only: no progress lines, no output of the
    /// database kind's commands or of setup commands (a failing one still
    /// shows its last lines).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also print each git and shell command as it runs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a worktree on a new branch and build its sandbox.
    New(NewArgs),
    /// Bring this worktree's sandbox to what the recipe says (the default command).
    Apply(ApplyArgs),
    /// Check this worktree's sandbox against its lock; exit 1 on drift.
    Verify(VerifyArgs),
    /// Remove a worktree with its database, port and record; delete its branch if merged.
    Remove(RemoveArgs),
    /// Clean up after worktrees that are gone: drop their databases, free their ports.
    Gc(GcArgs),
    /// List every worktree with its sandbox: name, branch, database, port, state.
    Status(StatusArgs),
    /// Print this worktree's env overrides: dotenv lines, shell exports or JSON.
    Env(EnvArgs),
    /// Run a command with this worktree's env overrides in its environment.
    Exec(ExecArgs),
    /// Write a commented provision.toml and .worktreeinclude fitted to this repository.
    Init(InitArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name of the new branch and sandbox (`feature-auth`).
    pub name: String,

    /// Start the branch at REV instead of the main checkout's HEAD.
    #[arg(long, value_name = "REV")]
    pub from: Option<String>,

    /// Put the worktree at DIR instead of `[worktree] path`.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct ApplyArgs {
    /// Print what would be done, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The sandbox name, or the worktree's path.
    pub name: String,

    /// Remove even when the worktree has uncommitted changes, untracked files or
    /// commits on no other branch (an unmerged branch is still kept).
    #[arg(long)]
    pub force: bool,

    /// Keep the branch even when it is merged.
    #[arg(long)]
    pub keep_branch: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Print what would be removed and kept, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also remove clean worktrees whose branch is merged into the main checkout's branch.
    #[arg(long)]
    pub merged: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Print `export` lines for SHELL, quoted for `eval` (fish: `set -gx`).
    #[arg(long, value_name = "SHELL", conflicts_with = "json")]
    pub shell: Option<Shell>,
}

/// A shell `provision env --shell` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The command and its arguments (`provision exec -- npm run dev`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct InitArgs {}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
