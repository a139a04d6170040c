//! The plan: recipe × worktree ⇒ the sandbox it should have. Pure: every
//! fact it needs is observed beforehand and passed in, and the result holds
//! no timestamps, host names or absolute paths (unless a recipe template puts
//! them into an env value). The clone's tag (`{clone}`) is in it as itself:
//! the lock writes it `{clone}` (`lock::symbolic`).
//!
//! One step per part of the sandbox: `links`, `env`, the database and the
//! recipe hash, each a function of `Inputs` alone.

#[cfg(test)]
mod case;
mod env;
mod links;

use std::collections::{BTreeMap, BTreeSet};

use crate::db::migrations::{self, Migration};
use crate::hash;
use crate::recipe::config::{self, Settings};
use crate::recipe::include::Resolved;
use crate::recipe::template::{self, TemplateError};
use crate::sandbox::lock::{self, DatabaseLock, Hook, NamedPorts, Sandbox, VERSION};
use crate::slug;

/// Everything the plan depends on.
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    /// Lines of `.worktreeinclude`, part of the recipe hash.
    pub include_lines: Vec<String>,
    pub name: &'a str,
    pub repo: &'a str,
    /// The clone's tag (`{clone}`).
    pub clone: &'a str,
    /// The database name the sandbox has now, if any (see [`database_name`]).
    pub database: Option<&'a str>,
    /// The first named port (`{port}`).
    pub port: u16,
    /// Every named port (`{port.NAME}`), the first among them.
    pub ports: &'a NamedPorts,
    pub main: &'a str,
    pub worktree: &'a str,
    pub is_main: bool,
    pub resolved: &'a Resolved,
    /// Paths the worktree's own index tracks among the resolved ones.
    pub tracked_in_worktree: &'a BTreeSet<String>,
    /// The main checkout's copy of the env file, when that file is also linked.
    pub shared_env: Option<&'a str>,
    /// The keys each other linked dotenv file (`.env*`, `.dev.vars`) of
    /// the main checkout assigns.
    pub linked_env_keys: &'a BTreeMap<String, BTreeSet<String>>,
    pub migrations: &'a [Migration],
}

pub struct Plan {
    pub sandbox: Sandbox,
    /// The env file's text, when there is one to write.
    pub env_text: Option<String>,
    /// Linked dotenv files that set a key the overrides set: isolation an
    /// app may not get. Said by `new`, `verify` and `status`, not by every
    /// `apply`.
    pub shadowed: Vec<String>,
    /// Things the user should know that are not errors.
    pub notes: Vec<String>,
    /// The template values (`{db}`, `{port}`, …).
    pub values: BTreeMap<&'static str, String>,
}

/// The database name a sandbox gets: the `name` template, slugged and cut,
/// with the clone's `tag` for `{clone}`. `kept` is the name the sandbox
/// has now (its record's, or its lock's): one from before `{clone}` joined
/// the default name stays while the recipe keeps the default.
pub fn database_name(
    settings: &Settings,
    name: &str,
    repo: &str,
    tag: &str,
    kept: Option<&str>,
) -> Result<String, TemplateError> {
    let database = &settings.database;
    // Only `{clone}` may stand for a tag.
    let plain = |text: &str| text.replace(slug::TAG, "_");
    let named = |template: &str| -> Result<String, TemplateError> {
        let values = BTreeMap::from([
            ("name", plain(name)),
            ("slug", slug::slug(name)),
            ("repo", plain(repo)),
            ("clone", slug::TAG.to_string()),
        ]);
        let cut = slug::identifier_with_tags(&template::expand(template, &values)?, tag.len());
        Ok(cut.replace(slug::TAG, tag))
    };
    if database.name == config::default_database_name(database.kind)
        && let Some(kept) = kept
        && kept == named(config::NAME_BEFORE_CLONES)?
    {
        return Ok(kept.to_string());
    }
    named(&database.name)
}

/// The values of a sandbox's templates; `ports` is the first port
/// (`{port}`) and every named one (`{port.NAME}`).
pub fn values(
    name: &str,
    repo: &str,
    clone: &str,
    db: &str,
    (port, ports): (u16, &NamedPorts),
    main: &str,
    worktree: &str,
) -> BTreeMap<&'static str, String> {
    let mut values = BTreeMap::from([
        ("name", name.to_string()),
        ("slug", slug::slug(name)),
        ("repo", repo.to_string()),
        ("clone", clone.to_string()),
        ("db", db.to_string()),
        ("port", port.to_string()),
        ("main", main.to_string()),
        ("worktree", worktree.to_string()),
    ]);
    for (name, port) in ports {
        values.insert(template::port_key(name), port.to_string());
    }
    values
}

/// The env overrides, expanded.
pub fn overrides(
    settings: &Settings,
    values: &BTreeMap<&'static str, String>,
) -> Result<BTreeMap<String, String>, TemplateError> {
    settings
        .env_vars
        .iter()
        .map(|(key, value)| Ok((key.clone(), template::expand(value, values)?)))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    EnvValue(#[from] crate::sandbox::envfile::Unquotable),
    #[error(
        "env.file `{file}` lies inside `{link}`, which is linked from the main checkout: writing it would change the main checkout's copy; choose a path outside `{link}`"
    )]
    EnvInsideLink { file: String, link: String },
    #[error(
        "{}:{line}: {path} matches both links.copy `{copy}` and links.reflink `{reflink}` (line {reflink_line}); keep it in one of them",
        crate::recipe::config::FILE_NAME
    )]
    TwoModes {
        path: String,
        copy: String,
        line: usize,
        reflink: String,
        reflink_line: usize,
    },
}

pub fn plan(inputs: &Inputs) -> Result<Plan, PlanError> {
    let settings = inputs.settings;
    let db = database_name(
        settings,
        inputs.name,
        inputs.repo,
        inputs.clone,
        inputs.database,
    )?;
    let values = values(
        inputs.name,
        inputs.repo,
        inputs.clone,
        &db,
        (inputs.port, inputs.ports),
        inputs.main,
        inputs.worktree,
    );
    // This order decides which error is reported and the order of the notes.
    env::check_outside_links(inputs)?;
    let mut notes = Vec::new();
    let links = links::links(inputs, &mut notes)?;
    let (env, env_text) = env::env(inputs, &values, &mut notes)?;
    let shadowed = env::shadowed(inputs, &values)?;
    let sandbox = Sandbox {
        version: VERSION,
        worktree: inputs.name.to_string(),
        recipe: recipe_hash(settings, &inputs.include_lines),
        links,
        env,
        database: database(settings, db, inputs.migrations),
        port: inputs.port,
        ports: lock::stored_ports(inputs.ports),
        setup: setup(settings),
    };
    Ok(Plan {
        sandbox,
        env_text,
        shadowed,
        notes,
        values,
    })
}

/// The database as it is once every migration file is applied.
fn database(settings: &Settings, name: String, migrations: &[Migration]) -> DatabaseLock {
    let applied: Vec<_> = migrations.iter().map(Migration::record).collect();
    DatabaseLock {
        kind: settings.database.kind,
        location: crate::db::location(settings.database.kind, &name),
        name,
        chain: migrations::chain(&applied),
        migrations: applied,
    }
}

/// What the sandbox was planned from: the settings and `.worktreeinclude`.
fn recipe_hash(settings: &Settings, include_lines: &[String]) -> String {
    let recipe = serde_json::json!({ "settings": settings, "include": include_lines });
    hash::of(&serde_json::to_vec(&recipe).expect("a JSON value always serializes"))
}

/// Every `[[setup]]` command, as completed: what a finished apply records.
fn setup(settings: &Settings) -> Vec<Hook> {
    settings
        .setup
        .iter()
        .map(|run| Hook {
            run: run.clone(),
            completed: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::case::Case;
    use crate::recipe::config::Settings;
    use crate::slug::MAX_IDENTIFIER;

    /// A worktree with links in every mode, a shared env file, migrations
    /// and setup: the lock it gets, byte for byte.
    fn rich() -> Case {
        let mut case = Case::new()
            .recipe(
                "[env]\nfile = \".dev.vars\"\n\n[links]\ncopy = [\"*.key\"]\n\n[[setup]]\nrun = \"npm ci\"\n",
            )
            .include(&[".dev.vars", "node_modules/", "config/a.key"], &[".npmrc"])
            .migrations(&["0001_users.sql", "0002_posts.sql"]);
        case.shared_env = Some("API_KEY=k\n".into());
        case
    }

    /// Lock bytes are the record every clone compares against: a change
    /// here is a format change, not a refactor.
    #[test]
    fn the_lock_is_pinned() {
        assert_eq!(
            rich().lock(),
            r#"{
  "database": {
    "chain": "blake3:2620d75dbbed388968d164c163a48e01436efde0b3521a3d7ef02359bb7b5a29",
    "kind": "sqlite",
    "location": "$GIT_COMMON_DIR/provision/sqlite/app_feature.sqlite",
    "migrations": [
      {
        "checksum": "blake3:a1739d9de62fd36eb2937ae4102e9edaa716f937f5968e207ee5298a006fdf0d",
        "name": "0001_users.sql"
      },
      {
        "checksum": "blake3:a1a746cd04b8c629c5b677da725cfc8ff031d4993ddede1d70812b1cabb4466f",
        "name": "0002_posts.sql"
      }
    ],
    "name": "app_feature"
  },
  "env": {
    "content": "blake3:fc52d1a9a54b3db371cfa31fe311ab700507e71a0935d87297ccea184b1678f0",
    "file": ".dev.vars",
    "overrides": {
      "DB_NAME": "app_feature",
      "PORT": "20001"
    },
    "shared": "blake3:863ce5a8d4002c84e10bb2229eabcc73948a681c312d0c42185cceb948fd02d4"
  },
  "hash": "blake3:6f7df8c4ed2a8424389f48acf4b889ede8e4d79fe3e1be6e31c31445e7b888c5",
  "links": [
    {
      "kind": "absent",
      "path": ".npmrc",
      "target": "{main}/.npmrc"
    },
    {
      "kind": "file",
      "mode": "copy",
      "path": "config/a.key",
      "target": "{main}/config/a.key"
    },
    {
      "kind": "dir",
      "path": "node_modules",
      "target": "{main}/node_modules"
    }
  ],
  "port": 20001,
  "recipe": "blake3:9f99a0a4836696101096e2eb9f02c4f6bfb12f6a7956dd02d6f37253f3f9c582",
  "setup": [
    {
      "completed": true,
      "run": "npm ci"
    }
  ],
  "version": 1,
  "worktree": "feature"
}
"#
        );
    }

    #[test]
    fn same_inputs_give_the_same_lock_bytes() {
        assert_eq!(rich().lock(), rich().lock());
        // Another clone, at another path: the same bytes.
        let mut elsewhere = rich();
        elsewhere.main = "/srv/ci/app".into();
        elsewhere.worktree = "/tmp/w".into();
        assert_eq!(elsewhere.lock(), rich().lock());
    }

    #[test]
    fn no_absolute_path_reaches_the_lock_unless_a_template_puts_it_there() {
        let case = rich();
        let lock = case.lock();
        assert!(!lock.contains("/home"), "{lock}");
        let case = Case::new().recipe("[env.vars]\nDATA = \"{worktree}/data\"\n");
        let lock = case.lock();
        assert!(
            lock.contains("\"DATA\": \"/home/dev/worktree-feature/data\""),
            "{lock}"
        );
        assert_eq!(lock.matches("/home").count(), 1, "{lock}");
    }

    #[test]
    fn the_database_name_is_a_slug_of_the_template() {
        let name = |case: Case| case.plan().unwrap().sandbox.database.name;
        assert_eq!(name(Case::new()), "app_feature");
        let mut case = Case::new();
        case.name = "Feature/Auth-2".into();
        assert_eq!(name(case), "app_feature_auth_2");
        assert_eq!(
            name(Case::new().recipe("[database]\nname = \"{name}-db\"\n")),
            "feature_db"
        );
        let plan = Case::new()
            .recipe("[database]\nkind = \"postgres\"\n")
            .plan()
            .unwrap();
        assert_eq!(
            plan.sandbox.database.kind,
            crate::recipe::config::DatabaseKind::Postgres
        );
        assert_eq!(
            plan.sandbox.database.location,
            "postgres:app_feature_0a1b2c3d"
        );
        assert_eq!(plan.values["db"], "app_feature_0a1b2c3d");
    }

    #[test]
    fn long_database_names_are_cut_and_kept_apart() {
        let long = |tail: &str| {
            let mut case = Case::new();
            case.name = format!("{}{tail}", "x".repeat(80));
            case.plan().unwrap().sandbox.database.name
        };
        let (a, b) = (long("a"), long("b"));
        assert_eq!(a.len(), MAX_IDENTIFIER);
        assert!(a.starts_with("app_xxx"), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, long("a"));
    }

    #[test]
    fn migrations_are_recorded_in_order_with_their_chain() {
        let planned = rich().plan().unwrap().sandbox.database;
        let names: Vec<_> = planned.migrations.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["0001_users.sql", "0002_posts.sql"]);
        assert_eq!(
            planned.chain,
            crate::db::migrations::chain(&planned.migrations)
        );
        let none = Case::new().plan().unwrap().sandbox.database;
        assert!(none.migrations.is_empty());
        assert_ne!(none.chain, planned.chain);
    }

    #[test]
    fn the_recipe_hash_follows_the_recipe_only() {
        let recipe = |case: Case| case.plan().unwrap().sandbox.recipe;
        let base = recipe(Case::new());
        let mut renamed = Case::new();
        renamed.name = "other".into();
        assert_eq!(recipe(renamed), base);
        assert_ne!(recipe(Case::new().include(&[".env"], &[])), base);
        assert_ne!(
            recipe(Case::new().recipe("[ports]\nrange = \"3000-3009\"\n")),
            base
        );
        // The settings as serialized, with the include lines beside them.
        let json = serde_json::json!({ "settings": Settings::default(), "include": [] });
        assert_eq!(base, crate::hash::of(&serde_json::to_vec(&json).unwrap()));
    }

    /// On a server, each clone's database is its own, and its lock is the
    /// same as every other clone's: the tag is written `{clone}`.
    #[test]
    fn each_clone_names_its_own_database_in_the_same_lock() {
        let recipe = "[database]\nkind = \"postgres\"\n[env.vars]\nURL = \"postgres:///{db}\"\n";
        let mut other = Case::new().recipe(recipe);
        other.clone = "ffff0000".into();
        let (one, two) = (Case::new().recipe(recipe), other);
        let planned = one.plan().unwrap();
        assert_eq!(planned.sandbox.database.name, "app_feature_0a1b2c3d");
        assert_eq!(planned.values["db"], "app_feature_0a1b2c3d");
        assert_eq!(
            two.plan().unwrap().sandbox.database.name,
            "app_feature_ffff0000"
        );
        assert_eq!(one.lock(), two.lock());
        for symbolic in [
            r#""name": "app_feature_{clone}""#,
            r#""location": "postgres:app_feature_{clone}""#,
            r#""URL": "postgres:///app_feature_{clone}""#,
        ] {
            assert!(one.lock().contains(symbolic), "{}", one.lock());
        }
        let text = one.plan().unwrap().env_text.unwrap();
        assert!(
            text.contains("URL=postgres:///app_feature_0a1b2c3d"),
            "{text}"
        );
    }

    /// A sandbox made before `{clone}` joined the default keeps its
    /// database; one the recipe renames does not.
    #[test]
    fn a_name_from_before_clone_tags_is_kept_under_the_default() {
        let postgres = "[database]\nkind = \"postgres\"\n";
        let mut old = Case::new().recipe(postgres);
        old.database = Some("app_feature".into());
        assert_eq!(old.plan().unwrap().sandbox.database.name, "app_feature");
        old.database = Some("app_other".into());
        assert_eq!(
            old.plan().unwrap().sandbox.database.name,
            "app_feature_0a1b2c3d"
        );
        let mut renamed =
            Case::new().recipe(&format!("{postgres}name = \"x_{{slug}}_{{clone}}\"\n"));
        renamed.database = Some("app_feature".into());
        assert_eq!(
            renamed.plan().unwrap().sandbox.database.name,
            "x_feature_0a1b2c3d"
        );
    }

    #[test]
    fn setup_commands_are_planned_as_completed_in_order() {
        let case = Case::new().recipe("[[setup]]\nrun = \"a\"\n[[setup]]\nrun = \"b {port}\"\n");
        let setup = case.plan().unwrap().sandbox.setup;
        let runs: Vec<_> = setup
            .iter()
            .map(|h| (h.run.as_str(), h.completed))
            .collect();
        assert_eq!(runs, [("a", true), ("b {port}", true)]);
    }

    /// Named ports reach the lock all together, the first as `port`, and
    /// each is an override of its name; the default `PORT` leaves the lock
    /// as it always was.
    #[test]
    fn named_ports_reach_the_lock_and_the_overrides() {
        let plan = Case::new()
            .recipe("[ports]\nnames = [\"WEB\", \"API_PORT\"]\n")
            .plan()
            .unwrap();
        let sandbox = &plan.sandbox;
        assert_eq!(sandbox.port, 20001);
        let ports: Vec<_> = sandbox
            .ports
            .iter()
            .map(|(n, p)| (n.as_str(), *p))
            .collect();
        assert_eq!(ports, [("API_PORT", 20002), ("WEB", 20001)]);
        let overrides = &sandbox.env.as_ref().unwrap().overrides;
        assert_eq!(overrides["WEB"], "20001");
        assert_eq!(overrides["API_PORT"], "20002");
        assert_eq!(plan.values["port.API_PORT"], "20002");
        assert!(Case::new().plan().unwrap().sandbox.ports.is_empty());
        assert!(!Case::new().lock().contains("\"ports\""));
    }

    #[test]
    fn values_name_the_sandbox() {
        let values = rich().plan().unwrap().values;
        let keys: Vec<_> = values.keys().copied().collect();
        assert_eq!(
            keys,
            [
                "clone",
                "db",
                "main",
                "name",
                "port",
                "port.PORT",
                "repo",
                "slug",
                "worktree"
            ]
        );
        assert_eq!(values["main"], "/home/dev/app");
        assert_eq!(values["clone"], "0a1b2c3d");
        assert_eq!(values["port"], "20001");
        assert_eq!(values["port.PORT"], "20001");
    }
}
