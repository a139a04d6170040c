//! `provision exec -- CMD…`: provision replaces itself with CMD, the
//! worktree's overrides in its environment, so CMD's exit status is the
//! status and a signal reaches CMD directly.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The command and its arguments (`provision exec -- npm run dev`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot run `{program}`")]
struct ExecError {
    program: String,
    #[source]
    source: std::io::Error,
}

/// Returns only when the command could not be started: 127 when it is not
/// found, 126 otherwise, as `env` and the shells give it.
pub fn run(args: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let err = exec(&super::env::overrides_here(globals)?, &args.command);
    output::print_error(&err);
    Ok(Exit::Status(
        if err.source.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        },
    ))
}

fn exec(vars: &BTreeMap<String, String>, command: &[OsString]) -> ExecError {
    let (program, args) = command.split_first().expect("clap requires a command");
    output::command(
        &program.to_string_lossy(),
        args.iter().map(|a| a.to_string_lossy()),
    );
    let source = std::process::Command::new(program)
        .args(args)
        .envs(vars)
        .exec();
    ExecError {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}
