//! `provision completions SHELL`: a completion script on stdout.

use crate::BoxError;
use crate::cli::{Cli, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: Args) -> Result<Exit, BoxError> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(args.shell, &mut cmd, "provision", &mut std::io::stdout());
    Ok(Exit::Clean)
}
