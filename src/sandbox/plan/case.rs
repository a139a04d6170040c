//! A plan's inputs built by hand, without git or a checkout: the owned
//! values `Inputs` borrows, with a worktree named `feature` as default.

use std::collections::{BTreeMap, BTreeSet};

use super::{Inputs, Plan, PlanError, plan};
use crate::db::migrations::Migration;
use crate::hash;
use crate::recipe::config::{self, Settings};
use crate::recipe::include::Resolved;
use crate::sandbox::lock;

pub(super) struct Case {
    pub settings: Settings,
    pub include_lines: Vec<String>,
    pub name: String,
    /// The clone's tag.
    pub clone: String,
    /// The database name the sandbox has now.
    pub database: Option<String>,
    pub main: String,
    pub worktree: String,
    pub is_main: bool,
    pub resolved: Resolved,
    pub tracked_in_worktree: BTreeSet<String>,
    pub shared_env: Option<String>,
    pub linked_env_keys: BTreeMap<String, BTreeSet<String>>,
    pub migrations: Vec<Migration>,
    /// 20001, 20002, … for the recipe's port names, in order.
    pub ports: lock::NamedPorts,
}

impl Case {
    pub fn new() -> Self {
        Case {
            settings: Settings::default(),
            include_lines: Vec::new(),
            name: "feature".into(),
            clone: "0a1b2c3d".into(),
            database: None,
            main: "/home/dev/app".into(),
            worktree: "/home/dev/worktree-feature".into(),
            is_main: false,
            resolved: Resolved::default(),
            tracked_in_worktree: BTreeSet::new(),
            shared_env: None,
            linked_env_keys: BTreeMap::new(),
            migrations: Vec::new(),
            ports: lock::NamedPorts::from([("PORT".to_string(), 20001)]),
        }
    }

    /// With the settings of a `provision.toml` text.
    pub fn recipe(mut self, toml: &str) -> Self {
        self.settings = config::parse(toml).unwrap();
        self.ports = (20001..)
            .zip(&self.settings.ports.names)
            .map(|(port, name)| (name.clone(), port))
            .collect();
        self
    }

    /// With these `.worktreeinclude` results in the main checkout: paths
    /// ending in `/` are folders; `absent` ones are missing there.
    pub fn include(mut self, present: &[&str], absent: &[&str]) -> Self {
        for path in present {
            let dir = path.ends_with('/');
            let path = path.trim_end_matches('/').to_string();
            self.include_lines.push(path.clone());
            self.resolved.present.insert((path, dir));
        }
        for path in absent {
            self.include_lines.push(path.to_string());
            self.resolved.absent.insert(path.to_string());
        }
        self
    }

    pub fn in_main(mut self) -> Self {
        self.is_main = true;
        self.worktree = self.main.clone();
        self
    }

    /// Migration files by name; plan reads only their names and checksums.
    pub fn migrations(mut self, names: &[&str]) -> Self {
        self.migrations = names
            .iter()
            .map(|name| Migration {
                checksum: hash::of(name.as_bytes()),
                ..Migration::flat(
                    name,
                    format!("{}/migrations/{name}", self.worktree).into(),
                    "",
                )
            })
            .collect();
        self
    }

    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            settings: &self.settings,
            include_lines: self.include_lines.clone(),
            name: &self.name,
            repo: "app",
            clone: &self.clone,
            database: self.database.as_deref(),
            port: 20001,
            ports: &self.ports,
            main: &self.main,
            worktree: &self.worktree,
            is_main: self.is_main,
            resolved: &self.resolved,
            tracked_in_worktree: &self.tracked_in_worktree,
            shared_env: self.shared_env.as_deref(),
            linked_env_keys: &self.linked_env_keys,
            migrations: &self.migrations,
        }
    }

    pub fn plan(&self) -> Result<Plan, PlanError> {
        plan(&self.inputs())
    }

    /// The lock file's text of the planned sandbox.
    pub fn lock(&self) -> String {
        lock::render(&lock::symbolic(&self.plan().unwrap().sandbox, &self.clone))
    }
}
