//! `[[setup]]` commands: run after the links, env file and database exist,
//! in order, through `sh -c` in the worktree root with the sandbox's env
//! overrides and `PROVISION_*` values in their environment (as the command
//! database kind runs its commands: `shell`).
//!
//! The lock records each command's text and whether it completed. A command
//! runs when it, or one before it, differs from the lock or did not
//! complete: a command appended to the list runs alone, an edited one runs
//! again with every command after it (a later command may build on an
//! earlier one's result, as a Dockerfile's layers do), and a failed one is
//! where the next `apply` starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::BoxError;
use crate::output::Progress;
use crate::sandbox::lock::Hook;
use crate::sandbox::plan::Plan;
use crate::shell::Shell;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{}:{line}: setup command failed: {run} ({status}){output}",
        crate::recipe::config::FILE_NAME
    )]
    Failed {
        line: usize,
        run: String,
        status: String,
        /// The last lines it printed, as the command database kind shows
        /// them: `--quiet` held them back.
        output: String,
    },
    #[error(
        "{}:{line}: cannot run setup command {run}",
        crate::recipe::config::FILE_NAME
    )]
    Start {
        line: usize,
        run: String,
        #[source]
        source: std::io::Error,
    },
    /// A failure during `new`, which keeps the sandbox for `apply` to resume.
    #[error(
        "setup command failed in {dir}; the sandbox is kept: run `provision apply` there to continue"
    )]
    Kept {
        dir: String,
        #[source]
        source: BoxError,
    },
}

/// The index of the first command `apply` must run: the commands before it
/// completed, with the same text, in the same place.
pub fn first_pending(planned: &[Hook], locked: &[Hook]) -> usize {
    planned
        .iter()
        .zip(locked)
        .take_while(|(want, have)| have.completed && want.run == have.run)
        .count()
}

/// What every setup command of one sandbox runs with.
pub struct Runner {
    root: PathBuf,
    values: BTreeMap<&'static str, String>,
    env: BTreeMap<String, String>,
    /// The line of each command in provision.toml.
    lines: Vec<usize>,
}

impl Runner {
    /// The plan's values and overrides, so the commands see what `env`
    /// and `exec` give (no overrides where the env file is the shared one);
    /// `lines` are the commands' lines in provision.toml.
    pub fn new(root: &Path, plan: &Plan, lines: &[usize]) -> Self {
        let env = plan.sandbox.env.as_ref().map(|e| e.overrides.clone());
        Runner {
            root: root.to_path_buf(),
            values: plan.values.clone(),
            env: env.unwrap_or_default(),
            lines: lines.to_vec(),
        }
    }

    /// Runs the recipe's command number `index`, its output streaming to
    /// stderr.
    pub fn run(&self, index: usize, run: &str, progress: &Progress) -> Result<(), SetupError> {
        let line = self.lines.get(index).copied().unwrap_or_default();
        let started = Instant::now();
        let shell = Shell {
            template: run,
            cwd: &self.root,
            values: &self.values,
            env: &self.env,
            worktree: &self.root,
            extra_env: &[],
            quiet: false,
        };
        let ran = shell.run().map_err(|source| SetupError::Start {
            line,
            run: run.to_string(),
            source,
        })?;
        match ran.code {
            Some(0) => {
                let took = started.elapsed();
                if took >= Duration::from_secs(1) {
                    progress.finished(&format!("setup     {run}"), took);
                }
                Ok(())
            }
            code => Err(SetupError::Failed {
                line,
                run: run.to_string(),
                output: ran.last_output(),
                status: code.map_or(ran.status, |c| format!("exit {c}")),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(list: &[(&str, bool)]) -> Vec<Hook> {
        Hook::list(list)
    }

    #[test]
    fn runs_from_the_first_changed_or_unfinished_command() {
        let want = hooks(&[("a", true), ("b", true), ("c", true)]);
        assert_eq!(first_pending(&want, &want), 3);
        assert_eq!(first_pending(&want, &hooks(&[("a", true), ("b", true)])), 2);
        assert_eq!(
            first_pending(&want, &hooks(&[("a", true), ("b", false)])),
            1
        );
        assert_eq!(
            first_pending(&want, &hooks(&[("a", true), ("B", true), ("c", true)])),
            1
        );
        assert_eq!(first_pending(&want, &[]), 0);
        assert_eq!(first_pending(&want[..1], &want), 1);
    }
}
