//! `provision`: a reproducible sandbox for every git worktree.
//!
//! `main` stays thin: parse, run, print the error chain, map to an exit code.

mod apply;
mod cli;
mod commands;
mod config;
mod context;
mod db;
mod envfile;
mod fsutil;
mod gc;
mod hash;
mod include;
mod lock;
mod migrations;
mod observe;
mod output;
mod plan;
mod registry;
mod remove;
mod render;
mod repo;
mod slug;
mod status;
mod teardown;
mod template;
mod verify;

use std::process::ExitCode;

use clap::Parser;

/// Errors crossing module boundaries; each module's own enum sits inside.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(exit) => exit.code(),
        Err(err) => {
            output::print_error(&*err);
            commands::Exit::Error.code()
        }
    }
}
