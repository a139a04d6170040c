//! Gathers what the plan needs for one worktree: the recipe from the main
//! checkout, the sandbox name and port from the registry, the untracked files
//! of the main checkout and the worktree's migration files.

use std::collections::BTreeSet;
use std::path::Path;

use crate::BoxError;
use crate::db::migrations::{self, Migration};
use crate::db::{self, Database};
use crate::git::{self, Checkout};
use crate::lifecycle::registry::{self, Claim, DatabaseRecord, Record, Registry};
use crate::recipe::config::{self, Settings};
use crate::recipe::include::{self, Entry};
use crate::sandbox::lock::Sandbox;
use crate::sandbox::plan::{self, Inputs, Plan};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(
        "worktree id `{id}` still holds sandbox `{name}` (database `{database}`) of a worktree removed without provision; `provision gc` collects it (or, if this is that worktree, `provision remove --force {name}` lets go of it), then try again"
    )]
    IdReused {
        id: String,
        name: String,
        database: String,
    },
    #[error(
        "sandbox `{name}` owns database `{old}`, but the recipe now names `{new}`; provision will not leave `{old}` behind: restore `[database] name`, or `provision remove` and `provision new` the sandbox"
    )]
    DatabaseRenamed {
        name: String,
        old: String,
        new: String,
    },
    #[error(
        "database name `{database}` is already used by sandbox `{name}` ({path}); choose another worktree name or `[database] name`"
    )]
    DatabaseTaken {
        database: String,
        name: String,
        path: String,
    },
}

pub struct Context {
    pub checkout: Checkout,
    pub settings: Settings,
    pub includes: Vec<Entry>,
    pub repo: String,
    pub name: String,
    pub port: u16,
    /// The database this sandbox owns, as its record (or lock) names it.
    pub database_name: String,
    pub registry: Registry,
}

/// The recipe, read from the main checkout.
pub fn recipe(checkout: &Checkout) -> Result<(Settings, Vec<Entry>), BoxError> {
    Ok((
        config::load(&checkout.main)?,
        include::load(&checkout.main)?,
    ))
}

impl Context {
    /// For `apply`: under the registry lock, finds or creates this worktree's
    /// record, reserving a port that no other sandbox holds. With `dry_run`
    /// the record is worked out but not written.
    pub fn reserve(
        checkout: Checkout,
        name: Option<&str>,
        dry_run: bool,
    ) -> Result<Self, BoxError> {
        let (settings, includes) = recipe(&checkout)?;
        let repo = checkout.repo_name();
        let registry = Registry::new(&checkout.common_dir);
        let guard = registry.lock()?;
        let records = registry.all(&guard)?;
        let existing = records.iter().find(|r| r.id == checkout.id);
        let branch = checkout.branch.as_deref();
        if let Some(record) =
            existing.filter(|r| !registry.owns_at(r, &r.id, &checkout.root, branch))
        {
            // git reuses a worktree id once its entry is gone; the record is
            // that earlier worktree's, and its database is still there.
            return Err(ContextError::IdReused {
                id: checkout.id.clone(),
                name: record.name.clone(),
                database: record.database.name.clone(),
            }
            .into());
        }
        let name = match (existing, name) {
            (Some(record), _) => record.name.clone(),
            (None, Some(name)) => name.to_string(),
            (None, None) => default_name(&checkout),
        };
        let db_name = plan::database_name(&settings, &name, &repo)?;
        if let Some(record) = existing.filter(|r| r.database.name != db_name) {
            return Err(ContextError::DatabaseRenamed {
                name,
                old: record.database.name.clone(),
                new: db_name,
            }
            .into());
        }
        if let Some(other) = records
            .iter()
            .find(|r| r.id != checkout.id && r.database.name == db_name)
        {
            return Err(ContextError::DatabaseTaken {
                database: db_name,
                name: other.name.clone(),
                path: other.path.display().to_string(),
            }
            .into());
        }
        let port = match existing {
            Some(record) => record.port,
            None => {
                let taken: BTreeSet<u16> = records.iter().map(|r| r.port).collect();
                registry::allocate_port(&taken, settings.ports, &format!("{repo}/{name}"))?
            }
        };
        let record = Record {
            id: checkout.id.clone(),
            name: name.clone(),
            path: checkout.root.clone(),
            branch: checkout.branch.clone(),
            database: DatabaseRecord {
                kind: settings.database.kind,
                location: db::location(settings.database.kind, &db_name),
                name: db_name,
            },
            port,
            lock_hash: existing.and_then(|r| r.lock_hash.clone()),
        };
        if !dry_run && registry.claim_of(&record) != Claim::Ours {
            registry.claim(&guard, &record.id, &record.name)?;
        }
        if !dry_run && existing != Some(&record) {
            registry.put(&guard, &record)?;
        }
        drop(guard);
        Ok(Context {
            checkout,
            settings,
            includes,
            repo,
            name,
            port,
            database_name: record.database.name,
            registry,
        })
    }

    /// For `verify`: reads only, and observes the sandbox its lock
    /// describes (a recipe that now names another database is reported as
    /// stale, not the locked one as missing).
    pub fn observe(checkout: Checkout, lock: &Sandbox) -> Result<Self, BoxError> {
        let (settings, includes) = recipe(&checkout)?;
        Ok(Context {
            repo: checkout.repo_name(),
            registry: Registry::new(&checkout.common_dir),
            checkout,
            settings,
            includes,
            name: lock.worktree.clone(),
            port: lock.port,
            database_name: lock.database.name.clone(),
        })
    }

    pub fn database(&self) -> Result<Box<dyn Database>, BoxError> {
        let owner = Owner {
            common_dir: &self.checkout.common_dir,
            main: &self.checkout.main,
            worktree: &self.checkout.root,
            id: &self.checkout.id,
            name: &self.name,
            database: &self.database_name,
            port: self.port,
        };
        open_database(&self.settings, &self.repo, &owner)
    }

    pub fn migrations(&self) -> Result<Vec<Migration>, BoxError> {
        Ok(migrations::scan(
            &self.checkout.root.join(&self.settings.database.migrations),
        )?)
    }

    /// Observes the main checkout and worktree, then plans.
    pub fn plan(&self, migrations: &[Migration]) -> Result<Plan, BoxError> {
        let main_repo = git2::Repository::open(&self.checkout.main)?;
        let resolved = include::resolve(&self.includes, &main_repo, &self.checkout.main)?;
        let mut tracked_in_worktree = BTreeSet::new();
        if !self.checkout.is_main() {
            let worktree = self.checkout.open()?;
            let head = git::head_tree(&worktree)?;
            for (path, _) in &resolved.present {
                if git::committed(head.as_ref(), path) {
                    tracked_in_worktree.insert(path.clone());
                }
            }
        }
        let env_file = &self.settings.env_file;
        let shared_env = if resolved.present.iter().any(|(p, _)| p == env_file) {
            Some(fs_err::read_to_string(self.checkout.main.join(env_file))?)
        } else {
            None
        };
        let main = self.checkout.main.to_string_lossy();
        let worktree = self.checkout.root.to_string_lossy();
        let inputs = Inputs {
            settings: &self.settings,
            include_lines: self.includes.iter().map(|e| e.text.clone()).collect(),
            name: &self.name,
            repo: &self.repo,
            port: self.port,
            main: &main,
            worktree: &worktree,
            is_main: self.checkout.is_main(),
            resolved: &resolved,
            tracked_in_worktree: &tracked_in_worktree,
            shared_env: shared_env.as_deref(),
            migrations,
        };
        Ok(plan::plan(&inputs)?)
    }
}

/// The name a worktree gets when it was made without `provision new`: its
/// branch, else git's name for it.
fn default_name(checkout: &Checkout) -> String {
    checkout
        .branch
        .clone()
        .unwrap_or_else(|| checkout.id.clone())
}

/// Who a sandbox is, as far as opening its database needs: from a live
/// worktree, or from a record whose worktree is gone.
pub struct Owner<'a> {
    pub common_dir: &'a Path,
    pub main: &'a Path,
    /// The worktree's path (`{worktree}`), even once its folder is gone.
    pub worktree: &'a Path,
    pub id: &'a str,
    pub name: &'a str,
    pub database: &'a str,
    pub port: u16,
}

pub fn open_database(
    settings: &Settings,
    repo: &str,
    owner: &Owner,
) -> Result<Box<dyn Database>, BoxError> {
    let values = plan::values(
        owner.name,
        repo,
        owner.database,
        owner.port,
        &owner.main.to_string_lossy(),
        &owner.worktree.to_string_lossy(),
    );
    let place = db::Place {
        common_dir: owner.common_dir,
        owner: format!("repo={} worktree={}", owner.common_dir.display(), owner.id),
        worktree: owner.worktree,
        env: plan::overrides(settings, &values)?,
        values,
    };
    Ok(db::open(&settings.database, owner.database, &place))
}
