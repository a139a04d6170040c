//! `provision env` and `provision exec`: the current worktree's env
//! overrides, as its lock records them, which are exactly what its env file
//! holds. They come from the lock and not from the recipe: a worktree
//! without a sandbox has no port reserved yet, so the values it would get
//! are not known until `apply` reserves them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::BoxError;
use crate::cli::Shell;
use crate::config;
use crate::envfile;
use crate::lock::{self, LockError};
use crate::output::Report;
use crate::repo::Checkout;

#[derive(Debug, thiserror::Error)]
pub enum OverridesError {
    #[error(
        "no sandbox in {} yet (no {}): run `provision apply` there first", .0.display(), lock::FILE_NAME
    )]
    NoSandbox(PathBuf),
    #[error(
        "{} in {} fails its own hash (edited by hand?): `provision apply` rebuilds it", lock::FILE_NAME, .0.display()
    )]
    Tampered(PathBuf),
    #[error(
        "{}: override `{key}` is not an environment variable name (edited by hand?): `provision apply` rebuilds it", .lock.display()
    )]
    BadKey { lock: PathBuf, key: String },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot run `{program}`")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

impl OverridesError {
    /// The exit status for a command that could not start, as `env` and
    /// the shells give it: 127 not found, 126 otherwise.
    pub fn status(&self) -> u8 {
        match self {
            OverridesError::Exec { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                127
            }
            _ => 126,
        }
    }
}

/// The overrides of the worktree around `cwd`. The main checkout has its
/// own sandbox once `provision apply` ran there; where its env file is the
/// one every worktree shares, it has no overrides (nothing is written into
/// that file), and `note` says so.
pub struct Overrides {
    pub vars: BTreeMap<String, String>,
    pub note: Option<String>,
}

pub fn current(cwd: &Path) -> Result<Overrides, BoxError> {
    let checkout = Checkout::discover(cwd)?;
    let read = lock::read(&checkout.root)?
        .ok_or_else(|| OverridesError::NoSandbox(checkout.root.clone()))?;
    if !read.hash_ok {
        return Err(OverridesError::Tampered(checkout.root).into());
    }
    // The hash catches mistakes, not tampering, and `env --shell` output is
    // run as shell code unattended (direnv, a shellHook): keys are checked.
    let mut keys = read.sandbox.env.iter().flat_map(|e| e.overrides.keys());
    if let Some(key) = keys.find(|k| !config::is_env_name(k)) {
        return Err(OverridesError::BadKey {
            lock: checkout.root.join(lock::FILE_NAME),
            key: key.clone(),
        }
        .into());
    }
    Ok(match read.sandbox.env {
        Some(env) => Overrides {
            vars: env.overrides,
            note: None,
        },
        None => Overrides {
            vars: BTreeMap::new(),
            note: Some(
                "the main checkout's env file is the one every worktree shares: it has no overrides"
                    .into(),
            ),
        },
    })
}

/// `provision env`'s report: dotenv lines, shell code, or (with `--json`)
/// an object of the variables.
#[derive(Serialize)]
#[serde(transparent)]
pub struct EnvReport {
    pub vars: BTreeMap<String, String>,
    #[serde(skip)]
    pub shell: Option<Shell>,
}

impl Report for EnvReport {
    fn text(&self) -> String {
        self.vars
            .iter()
            .map(|(key, value)| match self.shell {
                None => format!("{key}={}\n", envfile::quote(value)),
                Some(Shell::Bash | Shell::Zsh) => format!("export {key}={}\n", posix_quote(value)),
                Some(Shell::Fish) => format!("set -gx {key} {}\n", fish_quote(value)),
            })
            .collect()
    }
}

/// Single quotes keep everything literal in sh, bash and zsh (newlines,
/// `$`, backslashes, backticks); a single quote itself ends the quoting,
/// is escaped, and reopens it.
pub(crate) fn posix_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// In fish's single quotes only `\\` and `\'` are escapes.
fn fish_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// Replaces provision with `command`, the overrides added to its
/// environment: its exit status is the caller's to see, unchanged, and a
/// signal reaches it directly (so a signal death reads as one, 128+N in a
/// shell). Returns only when the command cannot be started.
pub fn exec(vars: &BTreeMap<String, String>, command: &[OsString]) -> OverridesError {
    use std::os::unix::process::CommandExt;
    let (program, args) = command.split_first().expect("clap requires a command");
    crate::output::command(
        &program.to_string_lossy(),
        args.iter().map(|a| a.to_string_lossy()),
    );
    let source = std::process::Command::new(program)
        .args(args)
        .envs(vars)
        .exec();
    OverridesError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_character() {
        let value = "it's $HOME `x` \\ \"q\"\nline 2";
        assert_eq!(posix_quote(value), "'it'\\''s $HOME `x` \\ \"q\"\nline 2'");
        assert_eq!(fish_quote(value), "'it\\'s $HOME `x` \\\\ \"q\"\nline 2'");
    }
}
