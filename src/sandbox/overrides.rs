//! What `provision env` and `provision exec` give: the current worktree's env
//! overrides, as its lock records them, which are exactly what its env file
//! holds. They come from the lock and not from the recipe: a worktree
//! without a sandbox has no port reserved yet, so the values it would get
//! are not known until `apply` reserves them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::BoxError;
use crate::git::Checkout;
use crate::lifecycle::identity::CloneId;
use crate::recipe::config;
use crate::sandbox::lock::{self, EnvLock, LockError};

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
    let clone = CloneId::current(&checkout.common_dir)?;
    let read = lock::read(&checkout.root, clone.tag())?
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
            note: drifted(&checkout.root, &env, clone.tag()),
            vars: env.overrides,
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

/// A warning when the env file is no longer what the lock records: the
/// values printed are the lock's, and the app may be reading others.
/// `file` is one the lock's reader let through: inside the worktree.
fn drifted(root: &Path, env: &EnvLock, tag: &str) -> Option<String> {
    let (file, content) = (&env.file, &env.content);
    let path = root.join(file);
    let now = match fs_err::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => "is a symlink",
        Ok(_) => match fs_err::read(&path) {
            Ok(bytes) if lock::env_hash(&bytes, tag) == *content => return None,
            Ok(_) => "was edited",
            Err(_) => "cannot be read",
        },
        Err(_) => "is missing",
    };
    Some(format!(
        "{file} {now} since provision wrote it: these are the values its lock records; `provision verify` shows the drift, `provision apply` rewrites it"
    ))
}
