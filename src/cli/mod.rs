//! The command line: the global flags, the subcommands (one file each in
//! `commands/`, holding its clap `Args`, its `run` and its report's text),
//! and the dispatch from one to the other.

pub mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::BoxError;
use crate::output::{self, Progress, Verbosity};
use commands::{
    apply, completions, db, down, env, exec, gc, hook, identity, init, logs, mcp, new, remove,
    status, trust, up, verify,
};

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

    /// Run the recipe's commands (`[[setup]]`, `[[services]]`, the command kind's) without
    /// approval by `provision trust`: for CI and agents you set up.
    #[arg(long, global = true, env = "PROVISION_TRUST", hide_env_values = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub trust: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a worktree (on a new branch, or one that exists) and build its sandbox.
    New(new::Args),
    /// Bring this worktree's sandbox to what the recipe says (the default command).
    Apply(apply::Args),
    /// This sandbox's database: `db reset` builds it anew from the migrations.
    Db(db::Args),
    /// Check this worktree's sandbox against its lock; exit 1 on drift.
    Verify(verify::Args),
    /// Remove a worktree with its processes, database, ports and record; delete its branch if merged.
    Remove(remove::Args),
    /// Clean up after worktrees that are gone: stop what still runs there, drop their databases, free their ports.
    Gc(gc::Args),
    /// List every worktree with its sandbox: name, branch, state, port, services, database.
    Status(status::Args),
    /// Print this worktree's env overrides: dotenv lines, shell exports or JSON.
    Env(env::Args),
    /// Run a command with this worktree's env overrides in its environment.
    Exec(exec::Args),
    /// Start this sandbox's [[services]] in the background, each in its own process group.
    Up(up::Args),
    /// Stop this sandbox's services: SIGTERM, then SIGKILL after the grace period.
    Down(down::Args),
    /// Print a service's log; `-f` follows it while the service runs.
    Logs(logs::Args),
    /// Write a commented provision.toml and .worktreeinclude fitted to this repository.
    Init(init::Args),
    /// Handle a coding agent's worktree hook: the event's JSON arrives on stdin.
    Hook(hook::Args),
    /// Serve provision's commands as MCP tools over stdio (new, apply, db_reset, verify, status, env, remove).
    Mcp(mcp::Args),
    /// List the recipe's commands and approve them for this repository.
    Trust(trust::Args),
    /// Show this clone's identity; `--new` for a copied repository, `--moved` for a moved one.
    Identity(identity::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
}

/// The global flags, resolved once into what every command needs.
#[derive(Clone)]
pub struct Globals {
    /// Where provision runs (`-C DIR`, else the current directory).
    pub cwd: PathBuf,
    pub json: bool,
    pub progress: Progress,
}

/// How a command ended, as the exit status says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; for `verify`, a clean sandbox.
    Clean,
    /// `verify` found drift.
    Drift,
    /// Bad input, an unreadable lock, a failed step.
    Error,
    /// `exec` could not start its command (126 or 127).
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
    output::set_verbosity(if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    });
    crate::recipe::trust::set_trust_all(cli.trust);
    let globals = Globals {
        cwd: match cli.directory {
            Some(dir) => dir,
            None => std::env::current_dir()?,
        },
        json: cli.json,
        // `--json` keeps stderr to warnings too, unless `--verbose` asks for more.
        progress: Progress::new(cli.json && !cli.verbose),
    };
    match cli.command {
        None => apply::run(apply::Args::default(), &globals),
        Some(Command::New(args)) => new::run(args, &globals),
        Some(Command::Apply(args)) => apply::run(args, &globals),
        Some(Command::Db(args)) => db::run(args, &globals),
        Some(Command::Verify(args)) => verify::run(args, &globals),
        Some(Command::Remove(args)) => remove::run(args, &globals),
        Some(Command::Gc(args)) => gc::run(args, &globals),
        Some(Command::Status(args)) => status::run(args, &globals),
        Some(Command::Env(args)) => env::run(args, &globals),
        Some(Command::Exec(args)) => exec::run(args, &globals),
        Some(Command::Up(args)) => up::run(args, &globals),
        Some(Command::Down(args)) => down::run(args, &globals),
        Some(Command::Logs(args)) => logs::run(args, &globals),
        Some(Command::Init(args)) => init::run(args, &globals),
        Some(Command::Hook(args)) => hook::run(args, &globals),
        Some(Command::Mcp(args)) => mcp::run(args, &globals),
        Some(Command::Trust(args)) => trust::run(args, &globals),
        Some(Command::Identity(args)) => identity::run(args, &globals),
        Some(Command::Completions(args)) => completions::run(args),
    }
}
