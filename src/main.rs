//! `provision`: a reproducible sandbox for every git worktree.
//!
//! `main` stays thin: parse, run, print the error chain, map to an exit code.

use std::process::ExitCode;

use clap::Parser;
use provision::{cli, output};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json;
    match cli::run(cli) {
        Ok(exit) => exit.code(),
        Err(err) => {
            output::print_error(&*err);
            if json {
                output::print_error_json(&*err, 2);
            }
            cli::Exit::Error.code()
        }
    }
}
