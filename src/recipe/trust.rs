//! Approval of the commands a repository's recipe runs (`[[setup]]`,
//! `[[services]]` and the command kind's `create`, `exists`, `migrate`,
//! `drop`). They are code from
//! a commit, so a pulled commit could change what `provision apply` runs on
//! this machine: as direnv and mise do, a command runs only once this user
//! approved its exact text for this repository.
//!
//! Approvals live outside every repository, in the user's config dir
//! (`$XDG_CONFIG_HOME/provision/trust.json`, else `~/.config/…`), so no
//! commit can approve itself. `--trust` or `PROVISION_TRUST=1` runs a
//! recipe's commands without approval: for CI, and for agents the user set
//! up. Every command passes [`require`] right before it runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::hash;
use crate::recipe::config::{DatabaseKind, Settings};

/// The variable that, set to `1`, trusts every recipe's commands.
pub const ENV: &str = "PROVISION_TRUST";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "{what} `{run}` is not approved for {main}: a repository's commands run only once you approved them; review them with `provision trust`, which approves them (CI and agents you set up: `--trust` or {ENV}=1)"
    )]
    Untrusted {
        what: String,
        run: String,
        main: String,
    },
    #[error(
        "[database] url `{url}` of {main}'s provision.toml names a server that asks for a password, and your password file has one for it: a server a repository names gets your password only once you approved it; review it with `provision trust`, which approves it (CI and agents you set up: `--trust` or {ENV}=1)"
    )]
    UntrustedServer { url: String, main: String },
    #[error(
        "{}: not a file of approvals provision can read ({reason}); delete it to start over (the approvals in it are lost)", .path.display()
    )]
    BadStore { path: PathBuf, reason: String },
    #[error("no config dir for approvals: neither XDG_CONFIG_HOME nor HOME is set")]
    NoConfigDir,
    #[error("cannot write the approvals to {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

static TRUST_ALL: AtomicBool = AtomicBool::new(false);

/// `--trust` on the command line, or `PROVISION_TRUST=1` (clap reads
/// both): set once, before a command runs.
pub fn set_trust_all(on: bool) {
    TRUST_ALL.store(on, Ordering::Relaxed);
}

pub fn trust_all() -> bool {
    TRUST_ALL.load(Ordering::Relaxed)
}

/// One command of the recipe, as the user reviews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipeCommand {
    /// `setup`, `services.NAME` or `database.create`, `database.migrate`, …
    pub what: String,
    /// Its line in provision.toml, where known.
    pub line: Option<usize>,
    pub run: String,
}

/// Every command the recipe may run, in recipe order.
pub fn commands(settings: &Settings) -> Vec<RecipeCommand> {
    let db = &settings.database.commands;
    let database = [
        ("create", &db.create),
        ("exists", &db.exists),
        ("migrate", &db.migrate),
        ("drop", &db.drop),
        ("snapshot", &db.snapshot),
        ("restore", &db.restore),
    ];
    let database = database.into_iter().filter_map(|(key, run)| {
        run.as_ref().map(|run| RecipeCommand {
            what: format!("database.{key}"),
            line: settings.lines.database.get(key).copied(),
            run: run.clone(),
        })
    });
    let setup = settings
        .setup
        .iter()
        .enumerate()
        .map(|(i, run)| RecipeCommand {
            what: "setup".into(),
            line: settings.lines.setup.get(i).copied(),
            run: run.clone(),
        });
    let services = settings.services.iter().map(|service| RecipeCommand {
        what: format!("services.{}", service.name),
        line: Some(service.line),
        run: service.run.clone(),
    });
    let mut out: Vec<RecipeCommand> = database.chain(setup).chain(services).collect();
    // The commands run with the overrides in their environment: a changed
    // value (`NODE_OPTIONS=--require …`) changes what an approved command
    // does, so the overrides are approved with them.
    if !out.is_empty() {
        let vars: Vec<String> = settings
            .env_vars
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push(RecipeCommand {
            what: "env.vars (the commands' environment)".into(),
            line: None,
            run: vars.join(" "),
        });
    }
    out
}

/// What `provision trust` lists and approves: the recipe's commands, and
/// the server its `[database] url` names, which gets a password from the
/// password file only once approved.
pub fn approvals(settings: &Settings) -> Vec<RecipeCommand> {
    let mut out = commands(settings);
    if settings.database.kind == DatabaseKind::Postgres
        && let Some(url) = &settings.database.url
    {
        out.push(RecipeCommand {
            what: SERVER.into(),
            line: None,
            run: url.clone(),
        });
    }
    out
}

const SERVER: &str = "database.url (gets your password file's password for it)";

/// What this user approved: per main checkout, the hashes of the exact
/// command texts (with the text, for a person reading the file).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    version: u32,
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

const VERSION: u32 = 1;

fn store_path() -> Result<PathBuf, TrustError> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| Path::new(dir).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))
        .ok_or(TrustError::NoConfigDir)?;
    Ok(config.join("provision").join("trust.json"))
}

impl Store {
    /// The approvals on disk; none when the file does not exist. The file
    /// is read back, so it is checked: a bad one is an error naming it.
    pub fn load() -> Result<(Store, PathBuf), TrustError> {
        let path = store_path()?;
        let bad = |reason: String| TrustError::BadStore {
            path: path.clone(),
            reason,
        };
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let store = Store {
                    version: VERSION,
                    ..Store::default()
                };
                return Ok((store, path));
            }
            Err(e) => return Err(bad(e.to_string())),
        };
        let store: Store = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if store.version != VERSION {
            return Err(bad(format!(
                "version {}, expected {VERSION}",
                store.version
            )));
        }
        Ok((store, path))
    }

    /// The approvals, held against every other writer until the returned
    /// lock drops: two `provision trust` runs at once would each save what
    /// they read, and one's approvals would be lost.
    pub fn load_to_change() -> Result<(Store, PathBuf, std::fs::File), TrustError> {
        let path = store_path()?;
        let lock_path = path.with_extension("json.lock");
        let held = (|| {
            fs_err::create_dir_all(path.parent().expect("the store is in a folder"))?;
            let file = fs_err::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?
                .into_parts()
                .0;
            file.lock()?;
            Ok(file)
        })()
        .map_err(|source| TrustError::Write {
            path: lock_path.clone(),
            source,
        })?;
        let (store, path) = Store::load()?;
        Ok((store, path, held))
    }

    pub fn approves(&self, main: &str, run: &str) -> bool {
        self.repositories
            .get(main)
            .is_some_and(|approved| approved.contains_key(&hash::of(run.as_bytes())))
    }

    /// Approves `commands` for `main`; returns whether anything was new.
    pub fn approve(&mut self, main: &str, commands: &[RecipeCommand]) -> bool {
        let approved = self.repositories.entry(main.to_string()).or_default();
        let mut changed = false;
        for command in commands {
            let key = hash::of(command.run.as_bytes());
            changed |= approved.insert(key, command.run.clone()).is_none();
        }
        changed
    }

    pub fn save(&self, path: &Path) -> Result<(), TrustError> {
        let mut text = serde_json::to_string_pretty(self).expect("approvals serialize");
        text.push('\n');
        fsutil::write_atomically(path, text.as_bytes()).map_err(|source| TrustError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The approvals, read once per process (`status` asks from many threads).
fn store() -> Result<&'static Store, TrustError> {
    static STORE: OnceLock<Result<Store, String>> = OnceLock::new();
    let loaded = STORE.get_or_init(|| Store::load().map(|(s, _)| s).map_err(|e| e.to_string()));
    loaded.as_ref().map_err(|reason| TrustError::BadStore {
        path: store_path().unwrap_or_default(),
        reason: reason.clone(),
    })
}

/// The gate in front of every command provision runs for a recipe.
pub fn require(main: &str, what: &str, run: &str) -> Result<(), TrustError> {
    if trust_all() || store()?.approves(main, run) {
        return Ok(());
    }
    Err(TrustError::Untrusted {
        what: what.to_string(),
        run: run.to_string(),
        main: main.to_string(),
    })
}

/// The gate in front of sending a password from the password file to the
/// server `url` the recipe of `main` names.
pub fn require_server(main: &str, url: &str) -> Result<(), TrustError> {
    if trust_all() || store()?.approves(main, url) {
        return Ok(());
    }
    Err(TrustError::UntrustedServer {
        url: url.to_string(),
        main: main.to_string(),
    })
}

/// Checks every command of the recipe before anything is changed, so that
/// an unapproved one stops `new` or `apply` at the start, not half-way.
pub fn check_recipe(main: &Path, settings: &Settings) -> Result<(), TrustError> {
    let main = main.to_string_lossy();
    for command in commands(settings) {
        let what = match command.line {
            Some(line) => format!("{}:{line}: {}", super::config::FILE_NAME, command.what),
            None => format!("{}: {}", super::config::FILE_NAME, command.what),
        };
        require(&main, &what, &command.run)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(run: &str) -> RecipeCommand {
        RecipeCommand {
            what: "setup".into(),
            line: Some(3),
            run: run.into(),
        }
    }

    #[test]
    fn approval_is_per_repository_and_exact_text() {
        let mut store = Store::default();
        assert!(store.approve("/repo", &[command("npm ci")]));
        assert!(!store.approve("/repo", &[command("npm ci")]));
        assert!(store.approves("/repo", "npm ci"));
        assert!(!store.approves("/repo", "npm ci "));
        assert!(!store.approves("/other", "npm ci"));
    }

    #[test]
    fn a_store_reads_back_what_it_wrote() {
        let mut store = Store {
            version: VERSION,
            ..Store::default()
        };
        store.approve("/repo", &[command("make db")]);
        let text = serde_json::to_string(&store).unwrap();
        let back: Store = serde_json::from_str(&text).unwrap();
        assert!(back.approves("/repo", "make db"));
        assert!(serde_json::from_str::<Store>(r#"{"version":1,"repositories":{},"x":1}"#).is_err());
    }
}
