//! The repository provision runs in, resolved once per invocation: the
//! checkout, the recipe its main checkout commits, the registry. A
//! [`WorktreeSandbox`] is one worktree's sandbox within it: the name, port
//! and database the registry holds for it, and what it is planned to be.
//!
//! Commands that must work without a readable recipe (`status`, `env`,
//! `exec`, `init`, and `verify` until it has found a lock) work from the
//! [`Checkout`] alone.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::path::Path;

use crate::BoxError;
use crate::db::migrations::{self, Migration, Migrations};
use crate::db::{self, Database};
use crate::git::{self, Checkout};
use crate::lifecycle::identity::CloneId;
use crate::lifecycle::registry::{Claim, DatabaseRecord, Record, Registry};
use crate::lifecycle::{pending, ports};
use crate::recipe::config::{self, Settings};
use crate::recipe::include::{self, Entry};
use crate::sandbox::envfile;
use crate::sandbox::lock::{self, NamedPorts, Sandbox};
use crate::sandbox::plan::{self, Inputs, Plan};

#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
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

pub struct Workspace {
    /// The checkout we run in; `checkout.main` is the main checkout, where
    /// the recipe comes from.
    pub checkout: Checkout,
    pub settings: Settings,
    /// `.worktreeinclude`, as written.
    pub includes: Vec<Entry>,
    /// The repository's short name (`{repo}`).
    pub repo: String,
    /// This clone's identity: its databases' marks, and `{clone}`.
    pub clone: CloneId,
    pub registry: Registry,
}

impl Workspace {
    /// The workspace around `dir`: git first, then the recipe.
    pub fn discover(dir: &Path) -> Result<Self, BoxError> {
        Self::load(Checkout::discover(dir)?)
    }

    /// `checkout` with the recipe of its main checkout.
    pub fn load(checkout: Checkout) -> Result<Self, BoxError> {
        let clone = CloneId::of(&checkout.common_dir)?;
        Self::load_as(checkout, clone)
    }

    /// `checkout` with the recipe of its main checkout, as the clone
    /// `clone` (read-only commands: [`CloneId::current`]).
    pub fn load_as(checkout: Checkout, clone: CloneId) -> Result<Self, BoxError> {
        Ok(Workspace {
            settings: config::load(&checkout.main)?,
            includes: include::load(&checkout.main)?,
            repo: checkout.repo_name(),
            clone,
            registry: Registry::new(&checkout.common_dir),
            checkout,
        })
    }

    /// The same repository and recipe, from another of its worktrees.
    pub fn at(&self, checkout: Checkout) -> Self {
        Workspace {
            checkout,
            settings: self.settings.clone(),
            includes: self.includes.clone(),
            repo: self.repo.clone(),
            clone: self.clone.clone(),
            registry: self.registry.clone(),
        }
    }

    /// The database of the sandbox `owner`, as the recipe's kind opens it.
    pub fn open_database(&self, owner: &Owner) -> Result<Box<dyn Database>, BoxError> {
        let checkout = &self.checkout;
        let values = plan::values(
            owner.name,
            &self.repo,
            self.clone.tag(),
            owner.database,
            (owner.port, owner.ports),
            &checkout.main.to_string_lossy(),
            &owner.worktree.to_string_lossy(),
        );
        let place = db::Place {
            common_dir: &checkout.common_dir,
            mark: self.mark(owner.id),
            worktree: owner.worktree,
            env: plan::overrides(&self.settings, &values)?,
            values,
        };
        Ok(db::open(&self.settings.database, owner.database, &place))
    }

    /// The mark of a database of worktree `id` (the store's too).
    pub fn mark(&self, id: &str) -> db::Mark {
        db::Mark {
            clone: self.clone.as_str().to_string(),
            common_dir: self.checkout.common_dir.clone(),
            worktree: id.to_string(),
        }
    }

    /// Every port name of the recipe, at 0: for opening a database that
    /// is no sandbox's (the store's, one set aside), whose kind runs no
    /// commands, while the env templates still expand.
    pub fn no_ports(&self) -> NamedPorts {
        (self.settings.ports.names.iter())
            .map(|name| (name.clone(), 0))
            .collect()
    }

    /// This worktree's record, if it has one. A record under its id that
    /// it does not own is an earlier worktree's: git reuses an id once its
    /// entry is gone, and that worktree's database is still there.
    fn own_record<'r>(&self, records: &'r [Record]) -> Result<Option<&'r Record>, ReserveError> {
        let checkout = &self.checkout;
        let existing = records.iter().find(|r| r.id == checkout.id);
        let branch = checkout.branch.as_deref();
        // This worktree's own lock naming the record's sandbox settles it,
        // whatever a lost or forged claim says: the claim is written again.
        let locked_here = |r: &Record| {
            lock::read(&checkout.root, self.clone.tag())
                .ok()
                .flatten()
                .is_some_and(|read| {
                    read.sandbox.worktree == r.name && read.sandbox.database.name == r.database.name
                })
        };
        match existing
            .filter(|r| !self.registry.owns_at(r, &r.id, &checkout.root, branch) && !locked_here(r))
        {
            Some(record) => Err(ReserveError::IdReused {
                id: checkout.id.clone(),
                name: record.name.clone(),
                database: record.database.name.clone(),
            }),
            None => Ok(existing),
        }
    }

    /// The record this worktree's sandbox gets: `existing` as it is, or a
    /// new one named `name`; each port name keeps its port, and a new one
    /// gets a port that no other sandbox holds.
    fn record(
        &self,
        existing: Option<&Record>,
        name: Option<&str>,
        records: &[Record],
    ) -> Result<Record, BoxError> {
        let checkout = &self.checkout;
        let name = match (existing, name) {
            (Some(record), _) => record.name.clone(),
            (None, Some(name)) => name.to_string(),
            (None, None) => default_name(checkout),
        };
        let kept = existing.map(|r| r.database.name.as_str());
        let db_name =
            plan::database_name(&self.settings, &name, &self.repo, self.clone.tag(), kept)?;
        if let Some(record) = existing.filter(|r| r.database.name != db_name) {
            return Err(ReserveError::DatabaseRenamed {
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
            return Err(ReserveError::DatabaseTaken {
                database: db_name,
                name: other.name.clone(),
                path: other.path.display().to_string(),
            }
            .into());
        }
        let ports = &self.settings.ports;
        let kept = existing.map(Record::named_ports).unwrap_or_default();
        let taken: BTreeSet<u16> = records
            .iter()
            .flat_map(|r| r.named_ports().into_values())
            .collect();
        let seed = format!("{}/{name}", self.repo);
        let named = ports::allocate_ports(
            &ports.names,
            &kept,
            &taken,
            ports.range,
            &seed,
            ports::is_free,
        )?;
        let kind = self.settings.database.kind;
        Ok(Record {
            id: checkout.id.clone(),
            name,
            path: checkout.root.clone(),
            branch: checkout.branch.clone(),
            database: DatabaseRecord {
                kind,
                location: db::location(kind, &db_name),
                seed: existing
                    .filter(|r| r.database.name == db_name)
                    .and_then(|r| r.database.seed.clone()),
                name: db_name,
            },
            port: named[&ports.names[0]],
            ports: lock::stored_ports(&named),
            lock_hash: existing.and_then(|r| r.lock_hash.clone()),
            removing: false,
        })
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

/// One worktree's sandbox within its workspace.
pub struct WorktreeSandbox {
    workspace: Workspace,
    pub name: String,
    /// The first named port (`{port}`).
    pub port: u16,
    /// Every named port, the first among them.
    pub ports: NamedPorts,
    /// The database this sandbox owns, as its record (or lock) names it.
    pub database_name: String,
}

/// Code about one sandbox reads its workspace's fields as its own
/// (`sandbox.checkout`, `sandbox.settings`), as rustc's `FnCtxt` does.
impl Deref for WorktreeSandbox {
    type Target = Workspace;

    fn deref(&self) -> &Workspace {
        &self.workspace
    }
}

impl WorktreeSandbox {
    /// For `apply`: under the registry lock, finds or creates this worktree's
    /// record, reserving a port that no other sandbox holds. With `dry_run`
    /// the record is worked out but not written.
    pub fn reserve(
        workspace: Workspace,
        name: Option<&str>,
        dry_run: bool,
    ) -> Result<Self, BoxError> {
        let registry = &workspace.registry;
        let guard = registry.lock()?;
        let records = registry.all(&guard)?;
        let existing = workspace.own_record(&records)?;
        let record = workspace.record(existing, name, &records)?;
        if !dry_run && registry.claim_of(&record) != Claim::Ours {
            registry.claim(&guard, &record.id, &record.name)?;
        }
        // A worktree a killed `new` left locked is this sandbox's now: with
        // git's lock gone, `gc` no longer removes it as cut short. Under the
        // registry lock, which `gc` takes too.
        if !dry_run && !workspace.checkout.is_main() {
            git::take_over_added(
                &workspace.checkout.common_dir,
                &record.id,
                &workspace.checkout.root,
            )?;
            // So is one whose `new` failed with git's step half undone.
            pending::take_over(&workspace.checkout.common_dir, &workspace.checkout.root)?;
        }
        if !dry_run && existing != Some(&record) {
            registry.put(&guard, &record)?;
        }
        drop(guard);
        Ok(WorktreeSandbox {
            workspace,
            ports: record.named_ports(),
            name: record.name,
            port: record.port,
            database_name: record.database.name,
        })
    }

    /// For `verify`: reads only, and observes the sandbox its lock
    /// describes (a recipe that now names another database is reported as
    /// stale, not the locked one as missing).
    /// Ports come from the lock too; a port name the lock does not have
    /// yet (the recipe added it) reads as port 0 until `apply` reserves it,
    /// so the plan shows the lock as stale instead of failing to expand.
    pub fn observe(workspace: Workspace, lock: &Sandbox) -> Self {
        // `lock` has the clone's tag filled in (`lock::read`).
        let locked = lock.named_ports();
        let ports: NamedPorts = (workspace.settings.ports.names.iter())
            .map(|name| (name.clone(), locked.get(name).copied().unwrap_or(0)))
            .collect();
        WorktreeSandbox {
            port: ports[&workspace.settings.ports.names[0]],
            ports,
            workspace,
            name: lock.worktree.clone(),
            database_name: lock.database.name.clone(),
        }
    }

    pub fn database(&self) -> Result<Box<dyn Database>, BoxError> {
        self.workspace.open_database(&Owner {
            worktree: &self.checkout.root,
            id: &self.checkout.id,
            name: &self.name,
            database: &self.database_name,
            port: self.port,
            ports: &self.ports,
        })
    }

    /// The migrations folder as read. A folder the recipe names that does
    /// not exist is for the caller to refuse (`apply`) or report (`verify`).
    pub fn migrations(&self) -> Result<Migrations, BoxError> {
        let database = &self.settings.database;
        Ok(migrations::scan(
            &self.checkout.root,
            &database.migrations,
            database.format,
        )?)
    }

    /// Observes the main checkout and worktree, then plans.
    pub fn plan(&self, migrations: &[Migration]) -> Result<Plan, BoxError> {
        let main = self.main_view()?;
        if self.checkout.is_main() {
            return self.plan_with(&main, None, migrations);
        }
        let worktree = self.checkout.open()?;
        let head = git::head_tree(&worktree)?;
        self.plan_with(&main, head.as_ref(), migrations)
    }

    /// Plans against `main` (read once for many worktrees) and the tree of
    /// this worktree's HEAD commit (`None` before its first commit, and
    /// unused in the main checkout).
    pub fn plan_with(
        &self,
        main: &MainView,
        head: Option<&git2::Tree>,
        migrations: &[Migration],
    ) -> Result<Plan, BoxError> {
        let mut tracked_in_worktree = BTreeSet::new();
        if !self.checkout.is_main() {
            for (path, _) in &main.resolved.present {
                if git::committed(head, path) {
                    tracked_in_worktree.insert(path.clone());
                }
            }
        }
        let main_path = self.checkout.main.to_string_lossy();
        let worktree = self.checkout.root.to_string_lossy();
        let inputs = Inputs {
            settings: &self.settings,
            include_lines: self.includes.iter().map(|e| e.text.clone()).collect(),
            name: &self.name,
            repo: &self.repo,
            clone: self.clone.tag(),
            database: Some(&self.database_name),
            port: self.port,
            ports: &self.ports,
            main: &main_path,
            worktree: &worktree,
            is_main: self.checkout.is_main(),
            resolved: &main.resolved,
            tracked_in_worktree: &tracked_in_worktree,
            shared_env: main.shared_env.as_deref(),
            linked_env_keys: &main.linked_env_keys,
            migrations,
        };
        Ok(plan::plan(&inputs)?)
    }
}

/// What a plan reads from the main checkout: the includes resolved against
/// its files, and the linked env files' contents. The same for every
/// worktree, so `status` reads it once for all of them.
pub struct MainView {
    resolved: include::Resolved,
    shared_env: Option<String>,
    linked_env_keys: BTreeMap<String, BTreeSet<String>>,
}

impl Workspace {
    pub fn main_view(&self) -> Result<MainView, BoxError> {
        let main = &self.checkout.main;
        let main_repo = git2::Repository::open(main)?;
        let resolved = include::resolve(&self.includes, &main_repo, main)?;
        let env_file = &self.settings.env_file;
        let shared_env = if resolved.present.iter().any(|(p, _)| p == env_file) {
            Some(fs_err::read_to_string(main.join(env_file))?)
        } else {
            None
        };
        let mut linked_env_keys = BTreeMap::new();
        for (path, is_dir) in &resolved.present {
            if !is_dir && envfile::is_dotenv(path) {
                // Unreadable (not UTF-8, say): it sets nothing provision can see.
                let text = fs_err::read_to_string(main.join(path)).unwrap_or_default();
                linked_env_keys.insert(path.clone(), envfile::keys(&text));
            }
        }
        Ok(MainView {
            resolved,
            shared_env,
            linked_env_keys,
        })
    }
}

/// Who a sandbox is, as far as opening its database needs: from a live
/// worktree, or from a record whose worktree is gone.
pub struct Owner<'a> {
    /// The worktree's path (`{worktree}`), even once its folder is gone.
    pub worktree: &'a Path,
    pub id: &'a str,
    pub name: &'a str,
    pub database: &'a str,
    pub port: u16,
    pub ports: &'a NamedPorts,
}
