//! The recipe's settings: `provision.toml` in the main checkout, every key
//! optional. Values are checked here (unknown keys, unknown templates, bad
//! paths) so that nothing is created from a recipe that is wrong.
//!
//! This module holds the settings as logic sees them (their serialized form
//! is the recipe hash); each section's module holds its raw TOML shape and
//! the `resolve` that checks it into them.

mod compose;
mod database;
mod env;
mod links;
mod ports;
mod services;
mod setup;
mod worktree;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::db::migrations::Format;
use crate::recipe::template::{self, TemplateError};

pub const FILE_NAME: &str = "provision.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("cannot read {0}")]
    Read(String, #[source] std::io::Error),
}

/// The settings as logic sees them: defaults filled in, templates checked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Settings {
    pub worktree_path: String,
    pub env_file: String,
    pub env_vars: BTreeMap<String, String>,
    pub database: DatabaseSettings,
    pub ports: Ports,
    /// Left out of the recipe hash while empty, so a recipe without them
    /// hashes as it did before they existed.
    #[serde(skip_serializing_if = "Links::is_empty")]
    pub links: Links,
    /// `[[setup]] run = "…"`, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
    /// `[[services]]`, in order. Not part of the recipe hash: a service
    /// runs in a sandbox, it is not part of what a lock records.
    #[serde(skip)]
    pub services: Vec<Service>,
    /// Where the `[links]` patterns and `[[setup]]` commands are written,
    /// for errors found after parsing. Not part of the recipe.
    #[serde(skip)]
    pub lines: Lines,
}

/// Lines of `provision.toml`, one per entry of the list of the same name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lines {
    pub copy: Vec<usize>,
    pub reflink: Vec<usize>,
    pub setup: Vec<usize>,
    /// `[env] file`, when given.
    pub env_file: Option<usize>,
    /// The `[database]` commands, by key (`create`, `migrate`, …).
    pub database: std::collections::BTreeMap<&'static str, usize>,
}

pub use database::{NAME_BEFORE_CLONES, default_name as default_database_name};
pub use links::Links;
pub use ports::{DEFAULT_PORT_NAME, PortRange, Ports};
pub use services::{DEFAULT_GRACE, Service, is_service_name};

/// Serialized into the recipe hash; keys a kind does not use are left out,
/// so a recipe that does not use them hashes as it did before they existed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatabaseSettings {
    pub kind: DatabaseKind,
    pub name: String,
    pub migrations: String,
    /// `format`: the migrations' layout, when the recipe forces one (else
    /// it is read from the folder). Left out of the recipe hash unless set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Whether the recipe names the migrations folder: then it must exist.
    #[serde(skip)]
    pub migrations_set: bool,
    /// `postgres`: the server. Left out of the recipe hash: it names a host
    /// (and may hold a password), and moving the server is not a recipe change.
    #[serde(skip)]
    pub url: Option<String>,
    /// `postgres`: the database a new sandbox is copied from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// `command`: the templated shell commands.
    #[serde(flatten)]
    pub commands: Commands,
    /// `on_divergence`: what `apply` does with a database whose applied
    /// migrations the branch's no longer extend. Left out of the recipe
    /// hash at its default.
    #[serde(skip_serializing_if = "OnDivergence::is_refuse")]
    pub on_divergence: OnDivergence,
    /// `sqlite`: the database a new sandbox's starts as a copy of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Seed>,
}

/// Where a SQLite sandbox's database starts (`[database] seed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Seed {
    /// `"main"`: the main checkout's sandbox database.
    Main,
    /// A database file, relative to the main checkout.
    File(String),
}

/// What `apply` does with a database that has diverged from the branch's
/// migrations (an applied one edited or gone, or a new one sorting before
/// an applied one).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnDivergence {
    /// Bring everything else up to date, leave the database, and say so:
    /// `provision db reset` rebuilds it.
    #[default]
    Refuse,
    /// Rebuild it from the migrations, keeping the old one aside until
    /// the next `gc` (for agents' sandboxes).
    Rebuild,
}

impl OnDivergence {
    pub fn is_refuse(&self) -> bool {
        *self == OnDivergence::Refuse
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Commands {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exists: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop: Option<String>,
    /// Copies database `{db}` into the store's entry `{entry}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Makes database `{db}` as a copy of the store's entry `{entry}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
    Command,
}

impl DatabaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
            DatabaseKind::Command => "command",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            worktree_path: "../worktree-{name}".into(),
            env_file: ".env.local".into(),
            env_vars: BTreeMap::from([
                ("DB_NAME".to_string(), "{db}".to_string()),
                ("PORT".to_string(), "{port}".to_string()),
            ]),
            database: DatabaseSettings {
                kind: DatabaseKind::Sqlite,
                name: NAME_BEFORE_CLONES.into(),
                migrations: "migrations".into(),
                format: None,
                migrations_set: false,
                url: None,
                template: None,
                commands: Commands::default(),
                on_divergence: OnDivergence::Refuse,
                seed: None,
            },
            ports: Ports {
                range: PortRange {
                    first: 20000,
                    last: 29999,
                },
                names: vec![DEFAULT_PORT_NAME.to_string()],
            },
            links: Links::default(),
            setup: Vec::new(),
            services: Vec::new(),
            lines: Lines::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    worktree: worktree::RawWorktree,
    #[serde(default)]
    env: env::RawEnv,
    #[serde(default)]
    database: database::RawDatabase,
    #[serde(default)]
    ports: ports::RawPorts,
    #[serde(default)]
    links: links::RawLinks,
    #[serde(default)]
    setup: Vec<setup::RawSetup>,
    #[serde(default)]
    services: Vec<services::RawService>,
}

/// Reads `provision.toml` from `main`; a missing file means all defaults.
/// A compose file beside it adds `COMPOSE_PROJECT_NAME` to the default
/// overrides.
pub fn load(main: &Path) -> Result<Settings, ConfigError> {
    let path = main.join(FILE_NAME);
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ConfigError::Read(FILE_NAME.into(), e)),
    };
    parse_for(&text, compose::present(main))
}

/// The settings of a `provision.toml` text, in a repository without a
/// compose file.
pub fn parse(text: &str) -> Result<Settings, ConfigError> {
    parse_for(text, false)
}

/// The settings of a `provision.toml` text; `compose`: the repository has
/// a compose file.
fn parse_for(text: &str, compose: bool) -> Result<Settings, ConfigError> {
    let mut source = Source {
        text,
        port_names: Vec::new(),
    };
    let raw: RawFile =
        toml::from_str(text).map_err(|e| source.error(e.span(), e.message().to_string()))?;
    let mut settings = Settings::default();
    // `{port.NAME}` is checked against the names wherever it is written;
    // the names themselves are checked in their turn below.
    source.port_names = raw.ports.names_as_written(&settings.ports.names);
    // This order decides which of several mistakes is reported: keep it.
    worktree::resolve(raw.worktree, &source, &mut settings.worktree_path)?;
    let vars_given = env::resolve(raw.env, &source, &mut settings)?;
    database::resolve(
        raw.database,
        &source,
        &mut settings.database,
        &mut settings.lines,
    )?;
    // A migration folder is applied file by file: an env file in it would
    // be read as a migration, or change under it.
    let migrations = format!("{}/", settings.database.migrations.trim_end_matches('/'));
    if settings.env_file.starts_with(&migrations) {
        return Err(ConfigError::Invalid {
            file: FILE_NAME.into(),
            line: settings.lines.env_file.unwrap_or(1),
            message: format!(
                "env.file `{}` lies in the migrations folder `{}`; choose a path outside it",
                settings.env_file, settings.database.migrations
            ),
        });
    }
    ports::resolve(raw.ports, &source, &mut settings.ports)?;
    if !vars_given {
        settings.env_vars = ports::default_env_vars(&settings.ports.names);
        if compose {
            compose::add_default(&mut settings.env_vars);
        }
    }
    links::resolve(raw.links, &source, &mut settings.links, &mut settings.lines)?;
    setup::resolve(
        raw.setup,
        &source,
        &mut settings.setup,
        &mut settings.lines.setup,
    )?;
    services::resolve(raw.services, &source, &mut settings.services)?;
    Ok(settings)
}

/// The text of `provision.toml`, for errors that name their line, and the
/// port names `{port.NAME}` may refer to.
struct Source<'a> {
    text: &'a str,
    port_names: Vec<String>,
}

impl Source<'_> {
    /// An error at `span`, or on line 1 where there is none.
    fn error(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: FILE_NAME.into(),
            line: span.map_or(1, |s| line_of(self.text, s.start)),
            message,
        }
    }

    fn error_at<T>(&self, value: &Spanned<T>, message: String) -> ConfigError {
        self.error(Some(value.span()), message)
    }

    fn line<T>(&self, value: &Spanned<T>) -> usize {
        line_of(self.text, value.span().start)
    }

    /// The templates of `value` (the key `name`) are known and `allowed`;
    /// `why` says why another known one is not.
    fn templates(
        &self,
        value: &Spanned<String>,
        name: &str,
        allowed: &[&str],
        why: &'static str,
    ) -> Result<(), ConfigError> {
        check_template(value.get_ref(), allowed, why, &self.port_names)
            .map_err(|e| self.error_at(value, format!("{name}: {e}")))
    }

    /// A shell command's template the shell would never expand.
    fn shell_quoting(&self, value: &Spanned<String>, name: &str) -> Result<(), ConfigError> {
        match template::unexpanded_key(value.get_ref()) {
            Some(quoted) => Err(self.error_at(
                value,
                format!(
                    "{name}: `{{{quoted}}}` sits inside single quotes or a quoted here-document, where the shell does not expand it; use double quotes"
                ),
            )),
            None => Ok(()),
        }
    }

    /// A path inside the worktree (see `check_relative`).
    fn relative(&self, value: &Spanned<String>, name: &str) -> Result<(), ConfigError> {
        check_relative(value.get_ref()).map_err(|m| self.error_at(value, format!("{name}: {m}")))
    }
}

/// `value`'s templates are among `allowed`; a `{port.NAME}` is allowed
/// where `{port}` is, and names one of `port_names`.
fn check_template(
    value: &str,
    allowed: &[&str],
    why: &'static str,
    port_names: &[String],
) -> Result<(), TemplateError> {
    for key in template::keys(value)? {
        let port = template::port_name(&key);
        let base = if port.is_some() { "port" } else { key.as_str() };
        if !allowed.contains(&base) {
            return Err(TemplateError::NotAvailable(key, why));
        }
        if let Some(name) = port.filter(|name| !port_names.iter().any(|n| n == name)) {
            return Err(TemplateError::NoSuchPort(
                name.to_string(),
                port_names.join(", "),
            ));
        }
    }
    Ok(())
}

/// A path inside the worktree: relative, no `..`.
pub fn check_relative(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty() {
        return Err("empty path".into());
    }
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!(
            "`{path}` must be a relative path inside the repository"
        ));
    }
    Ok(())
}

pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), Settings::default());
        let empty_sections = "[worktree]\n[env]\n[database]\n[ports]\n[links]\n";
        assert_eq!(parse(empty_sections).unwrap(), Settings::default());
    }

    /// The recipe hash is serde_json of `Settings`: the defaults hash as
    /// they did before the keys that are left out at their default existed.
    #[test]
    fn default_settings_hash_as_before_the_new_keys() {
        let json = serde_json::to_string(&Settings::default().database).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"sqlite","name":"{repo}_{slug}","migrations":"migrations"}"#
        );
        let json = serde_json::to_string(&Settings::default()).unwrap();
        assert_eq!(
            json,
            r#"{"worktree_path":"../worktree-{name}","env_file":".env.local","env_vars":{"DB_NAME":"{db}","PORT":"{port}"},"database":{"kind":"sqlite","name":"{repo}_{slug}","migrations":"migrations"},"ports":{"first":20000,"last":29999}}"#
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("[env]\nfile = \".env\"\nfiel = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("provision.toml:3:"), "{err}");
        assert!(err.contains("fiel"), "{err}");
    }

    #[test]
    fn unknown_template_names_template_and_line() {
        let err = parse("[env.vars]\nA = \"x\"\nDB = \"{dbname}\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("provision.toml:3:"), "{err}");
        assert!(err.contains("{dbname}"), "{err}");
    }

    #[test]
    fn file_level_errors_name_their_line() {
        for (text, want) in [
            (
                "[ports]\nrange = \"1-2\"\n[other]\n",
                "provision.toml:3: unknown field `other`, expected one of `worktree`, `env`, `database`, `ports`, `links`, `setup`, `services`",
            ),
            (
                "[env]\nfile = \".env\"\nfile = \".env\"\n",
                "provision.toml:3: duplicate key",
            ),
            ("[env\n", "provision.toml:1: unclosed table, expected `]`"),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }

    /// Sections resolve in a fixed order, so of two mistakes the same one is
    /// reported whichever comes first in the file.
    #[test]
    fn sections_resolve_in_a_fixed_order() {
        let err = parse("[ports]\nrange = \"x\"\n[worktree]\npath = \"{db}\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("provision.toml:4: worktree.path"), "{err}");
    }

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(check_relative("a/b"), Ok(()));
        assert_eq!(check_relative(""), Err("empty path".into()));
        for path in ["/a", "../a", "a/../../b"] {
            assert!(check_relative(path).is_err(), "{path}");
        }
    }

    #[test]
    fn env_names_are_shell_names() {
        for name in ["A", "_a1", "DB_NAME"] {
            assert!(is_env_name(name), "{name}");
        }
        for name in ["", "1A", "A-B", "A B", "é"] {
            assert!(!is_env_name(name), "{name}");
        }
    }

    /// Every `toml` block of the README is a recipe provision accepts (other
    /// tools' TOML files are fenced with a title).
    #[test]
    fn the_readme_recipes_parse() {
        let readme = include_str!("../../../README.md");
        let blocks: Vec<&str> = readme
            .split("```toml\n")
            .skip(1)
            .map(|rest| rest.split("```").next().unwrap())
            .collect();
        assert!(blocks.len() >= 5, "found {} toml blocks", blocks.len());
        for block in blocks {
            if let Err(e) = parse(block) {
                panic!("{e}\n{block}");
            }
        }
    }
}
