//! `provision completions SHELL`: a completion script on stdout.

use crate::BoxError;
use crate::cli::{Cli, Exit};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: Args) -> Result<Exit, BoxError> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "provision", &mut script);
    output::stdout(&script);
    Ok(Exit::Clean)
}
