//! The recipe's settings: `provision.toml` in the main checkout, every key
//! optional. Values are checked here (unknown keys, unknown templates, bad
//! paths) so that nothing is created from a recipe that is wrong.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

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
    pub ports: PortRange,
    /// Left out of the recipe hash while empty, so a recipe without them
    /// hashes as it did before they existed.
    #[serde(skip_serializing_if = "Links::is_empty")]
    pub links: Links,
    /// `[[setup]] run = "…"`, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
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
}

/// `[links]`: gitignore-style patterns over the included paths that are
/// copied (or reflinked) into each worktree instead of symlinked.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Links {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copy: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reflink: Vec<String>,
}

impl Links {
    pub fn is_empty(&self) -> bool {
        self.copy.is_empty() && self.reflink.is_empty()
    }
}

/// Serialized into the recipe hash; keys a kind does not use are left out,
/// so a recipe that does not use them hashes as it did before they existed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatabaseSettings {
    pub kind: DatabaseKind,
    pub name: String,
    pub migrations: String,
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

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
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
                name: "{repo}_{slug}".into(),
                migrations: "migrations".into(),
                url: None,
                template: None,
                commands: Commands::default(),
            },
            ports: PortRange {
                first: 20000,
                last: 29999,
            },
            links: Links::default(),
            setup: Vec::new(),
            lines: Lines::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    worktree: RawWorktree,
    #[serde(default)]
    env: RawEnv,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    ports: RawPorts,
    #[serde(default)]
    links: RawLinks,
    #[serde(default)]
    setup: Vec<RawSetup>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLinks {
    #[serde(default)]
    copy: Vec<Spanned<String>>,
    #[serde(default)]
    reflink: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    run: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawWorktree {
    path: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawEnv {
    file: Option<Spanned<String>>,
    vars: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawDatabase {
    kind: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    migrations: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    template: Option<Spanned<String>>,
    create: Option<Spanned<String>>,
    migrate: Option<Spanned<String>>,
    exists: Option<Spanned<String>>,
    drop: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
struct RawPorts {
    range: Option<Spanned<String>>,
}

/// Reads `provision.toml` from `main`; a missing file means all defaults.
pub fn load(main: &Path) -> Result<Settings, ConfigError> {
    let path = main.join(FILE_NAME);
    match fs_err::read_to_string(&path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(e) => Err(ConfigError::Read(FILE_NAME.into(), e)),
    }
}

pub fn parse(text: &str) -> Result<Settings, ConfigError> {
    let at = |span: Option<Range<usize>>, message: String| ConfigError::Invalid {
        file: FILE_NAME.into(),
        line: span.map_or(1, |s| line_of(text, s.start)),
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| at(e.span(), e.message().to_string()))?;
    let field = |value: &Spanned<String>, name: &str, allowed: &[&str], why: &'static str| {
        check_template(value.get_ref(), allowed, why)
            .map_err(|e| at(Some(value.span()), format!("{name}: {e}")))
    };
    // A shell command's template the shell would never expand.
    let shell_quoting = |value: &Spanned<String>, name: &str| match template::unexpanded_key(
        value.get_ref(),
    ) {
        Some(quoted) => Err(at(
            Some(value.span()),
            format!(
                "{name}: `{{{quoted}}}` sits inside single quotes or a quoted here-document, where the shell does not expand it; use double quotes"
            ),
        )),
        None => Ok(()),
    };

    let mut settings = Settings::default();
    if let Some(path) = raw.worktree.path {
        field(
            &path,
            "worktree.path",
            &["name", "slug", "repo", "main"],
            "the worktree path is chosen before the sandbox exists",
        )?;
        settings.worktree_path = path.into_inner();
    }
    if let Some(file) = raw.env.file {
        field(
            &file,
            "env.file",
            &[],
            "the env file is a fixed path in every worktree",
        )?;
        check_relative(file.get_ref())
            .map_err(|m| at(Some(file.span()), format!("env.file: {m}")))?;
        settings.env_file = file.into_inner();
    }
    if let Some(vars) = raw.env.vars {
        settings.env_vars.clear();
        for (key, value) in vars {
            if !is_env_name(key.get_ref()) {
                return Err(at(
                    Some(key.span()),
                    format!("env.vars: `{}` is not a valid variable name", key.get_ref()),
                ));
            }
            field(
                &value,
                &format!("env.vars.{}", key.get_ref()),
                template::SANDBOX,
                "`{migration}` is only known to `[database] migrate`",
            )?;
            settings
                .env_vars
                .insert(key.into_inner(), value.into_inner());
        }
    }
    if let Some(kind) = &raw.database.kind {
        settings.database.kind = match kind.get_ref().as_str() {
            "sqlite" => DatabaseKind::Sqlite,
            "postgres" => DatabaseKind::Postgres,
            "command" => DatabaseKind::Command,
            other => {
                return Err(at(
                    Some(kind.span()),
                    format!(
                        "database.kind: unknown kind `{other}`; known: sqlite, postgres, command"
                    ),
                ));
            }
        };
    }
    let kind = settings.database.kind;
    // A key another kind uses is a mistake worth a line number, not a no-op.
    let only_for = |value: &Option<Spanned<String>>, key: &str, wanted: DatabaseKind| match value {
        Some(v) if kind != wanted => Err(at(
            Some(v.span()),
            format!(
                "database.{key}: only used with kind = \"{}\" (this recipe's kind is \"{}\")",
                wanted.as_str(),
                kind.as_str()
            ),
        )),
        _ => Ok(()),
    };
    let db = &raw.database;
    only_for(&db.url, "url", DatabaseKind::Postgres)?;
    only_for(&db.template, "template", DatabaseKind::Postgres)?;
    for (key, value) in [
        ("create", &db.create),
        ("migrate", &db.migrate),
        ("exists", &db.exists),
        ("drop", &db.drop),
    ] {
        only_for(value, key, DatabaseKind::Command)?;
    }
    if let Some(url) = &db.url {
        field(
            url,
            "database.url",
            &[],
            "the server is the same for every sandbox",
        )?;
        settings.database.url = Some(url.get_ref().clone());
    }
    if let Some(template) = &db.template {
        field(
            template,
            "database.template",
            &[],
            "the template is one database every sandbox copies",
        )?;
        if template.get_ref().is_empty() {
            return Err(at(
                Some(template.span()),
                "database.template: empty name".into(),
            ));
        }
        settings.database.template = Some(template.get_ref().clone());
    }
    let sandbox_keys = template::SANDBOX;
    let mut migrate_keys = sandbox_keys.to_vec();
    migrate_keys.push("migration");
    let commands = &mut settings.database.commands;
    for (key, value, allowed, slot) in [
        ("create", &db.create, sandbox_keys, &mut commands.create),
        (
            "migrate",
            &db.migrate,
            migrate_keys.as_slice(),
            &mut commands.migrate,
        ),
        ("exists", &db.exists, sandbox_keys, &mut commands.exists),
        ("drop", &db.drop, sandbox_keys, &mut commands.drop),
    ] {
        if let Some(value) = value {
            field(
                value,
                &format!("database.{key}"),
                allowed,
                "`{migration}` is only known to `migrate`",
            )?;
            shell_quoting(value, &format!("database.{key}"))?;
            *slot = Some(value.get_ref().clone());
        }
    }
    // Without `exists`, an idempotent `create` (`CREATE DATABASE IF NOT
    // EXISTS`) succeeds on someone else's database: provision would mark it
    // as its own, and a later `drop` would remove it.
    if db.exists.is_none() {
        for (key, value) in [("create", &db.create), ("drop", &db.drop)] {
            if let Some(value) = value {
                return Err(at(
                    Some(value.span()),
                    format!(
                        "database.{key}: needs an `exists` command too (exit 0 = exists, 1 = does not), \
                         so provision never takes over or drops a database it did not create"
                    ),
                ));
            }
        }
    }
    if let Some(name) = raw.database.name {
        field(
            &name,
            "database.name",
            &["name", "slug", "repo"],
            "the database name cannot depend on itself, the port or absolute paths",
        )?;
        settings.database.name = name.into_inner();
    }
    if let Some(dir) = raw.database.migrations {
        field(
            &dir,
            "database.migrations",
            &[],
            "the migrations folder is a fixed path",
        )?;
        check_relative(dir.get_ref())
            .map_err(|m| at(Some(dir.span()), format!("database.migrations: {m}")))?;
        settings.database.migrations = dir.into_inner();
    }
    if let Some(range) = raw.ports.range {
        settings.ports = parse_range(range.get_ref()).ok_or_else(|| {
            at(
                Some(range.span()),
                format!(
                    "ports.range: `{}` is not a range like \"20000-29999\"",
                    range.get_ref()
                ),
            )
        })?;
    }
    for (key, patterns, slot, lines) in [
        (
            "copy",
            &raw.links.copy,
            &mut settings.links.copy,
            &mut settings.lines.copy,
        ),
        (
            "reflink",
            &raw.links.reflink,
            &mut settings.links.reflink,
            &mut settings.lines.reflink,
        ),
    ] {
        for pattern in patterns {
            let line = line_of(text, pattern.span().start);
            let text = pattern.get_ref();
            let bad = |why: &str| at(Some(pattern.span()), format!("links.{key}: `{text}` {why}"));
            if text.trim().is_empty() || text.starts_with('#') {
                return Err(bad("is not a pattern"));
            }
            if text.split('/').any(|part| part == "..") {
                return Err(bad("leaves the repository"));
            }
            ignore::gitignore::GitignoreBuilder::new("/")
                .add_line(None, text)
                .map_err(|e| bad(&format!("is not a valid pattern ({e})")))?;
            slot.push(text.clone());
            lines.push(line);
        }
    }
    for hook in raw.setup {
        let run = &hook.run;
        if run.get_ref().trim().is_empty() {
            return Err(at(Some(run.span()), "setup.run: empty command".into()));
        }
        field(
            run,
            "setup.run",
            template::SANDBOX,
            "`{migration}` is only known to `[database] migrate`",
        )?;
        shell_quoting(run, "setup.run")?;
        settings.setup.push(run.get_ref().clone());
        settings.lines.setup.push(line_of(text, run.span().start));
    }
    Ok(settings)
}

fn check_template(value: &str, allowed: &[&str], why: &'static str) -> Result<(), TemplateError> {
    for key in template::keys(value)? {
        if !allowed.contains(&key.as_str()) {
            return Err(TemplateError::NotAvailable(key, why));
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

fn parse_range(text: &str) -> Option<PortRange> {
    let (first, last) = text.split_once('-')?;
    let first: u16 = first.trim().parse().ok()?;
    let last: u16 = last.trim().parse().ok()?;
    (first > 0 && first <= last).then_some(PortRange { first, last })
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
    fn template_out_of_place_is_refused() {
        let err = parse("[database]\nname = \"{db}\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("database.name: `{db}` cannot be used here"),
            "{err}"
        );
    }

    #[test]
    fn kind_specific_keys_are_checked() {
        let s = parse(
            "[database]\nkind = \"postgres\"\nurl = \"postgres://u@h:5/d\"\ntemplate = \"seed\"\n",
        )
        .unwrap();
        assert_eq!(s.database.kind, DatabaseKind::Postgres);
        assert_eq!(s.database.template.as_deref(), Some("seed"));
        // The url is not part of the recipe hash: it names a host.
        assert!(!serde_json::to_string(&s).unwrap().contains("postgres://"));

        let err = parse("[database]\nname = \"x\"\nurl = \"postgres://h/d\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("provision.toml:3: database.url: only used with kind = \"postgres\""),
            "{err}"
        );

        let s = parse("[database]\nkind = \"command\"\nmigrate = \"run {migration}\"\n").unwrap();
        assert_eq!(
            s.database.commands.migrate.as_deref(),
            Some("run {migration}")
        );
        let err = parse("[database]\nkind = \"command\"\ncreate = \"run {migration}\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("provision.toml:3: database.create: `{migration}`"),
            "{err}"
        );
    }

    #[test]
    fn create_and_drop_need_exists() {
        for key in ["create", "drop"] {
            let err = parse(&format!(
                "[database]\nkind = \"command\"\nmigrate = \"m\"\n{key} = \"x\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with(&format!(
                    "provision.toml:4: database.{key}: needs an `exists` command"
                )),
                "{err}"
            );
            parse(&format!(
                "[database]\nkind = \"command\"\n{key} = \"x\"\nexists = \"e\"\n"
            ))
            .unwrap();
        }
    }

    #[test]
    fn default_settings_hash_as_before_the_new_keys() {
        let json = serde_json::to_string(&Settings::default().database).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"sqlite","name":"{repo}_{slug}","migrations":"migrations"}"#
        );
    }

    #[test]
    fn ports_range_parses() {
        let s = parse("[ports]\nrange = \"3000-3009\"\n").unwrap();
        assert_eq!(
            s.ports,
            PortRange {
                first: 3000,
                last: 3009
            }
        );
        assert!(parse("[ports]\nrange = \"9-1\"\n").is_err());
    }

    #[test]
    fn a_template_in_single_quotes_is_refused_with_its_line() {
        let err = parse("[database]\nkind = \"command\"\nexists = \"test -f '{db}.db'\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("provision.toml:3: database.exists: `{db}` sits inside single quotes"),
            "{err}"
        );
    }

    #[test]
    fn links_and_setup_parse_and_leave_the_default_hash_alone() {
        let s = parse(
            "[links]\ncopy = [\"node_modules/.cache\"]\nreflink = [\".wrangler\"]\n\n[[setup]]\nrun = \"npm ci\"\n[[setup]]\nrun = \"make PORT={port}\"\n",
        )
        .unwrap();
        assert_eq!(s.links.copy, ["node_modules/.cache"]);
        assert_eq!(s.links.reflink, [".wrangler"]);
        assert_eq!(s.setup, ["npm ci", "make PORT={port}"]);
        let json = serde_json::to_string(&Settings::default()).unwrap();
        assert!(!json.contains("links") && !json.contains("setup"), "{json}");
    }

    #[test]
    fn bad_links_and_setup_name_their_line() {
        for (text, want) in [
            ("[links]\ncopy = \"x\"\n", "provision.toml:2:"),
            (
                "[links]\ncopy = [\"a\", \"../x\"]\n",
                "provision.toml:2: links.copy: `../x` leaves",
            ),
            (
                "[links]\nmove = [\"a\"]\n",
                "provision.toml:2: unknown field `move`",
            ),
            (
                "\n[[setup]]\nrun = \"npm ci\"\nwhen = \"x\"\n",
                "provision.toml:4: unknown field `when`",
            ),
            ("[[setup]]\nrun = 3\n", "provision.toml:2:"),
            (
                "[[setup]]\nrun = \"\"\n",
                "provision.toml:2: setup.run: empty command",
            ),
            (
                "[[setup]]\nrun = \"echo {migration}\"\n",
                "provision.toml:2: setup.run: `{migration}`",
            ),
            (
                "[[setup]]\nrun = \"echo '{db}'\"\n",
                "provision.toml:2: setup.run: `{db}` sits inside single quotes",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    /// Every `toml` block of the README is a recipe provision accepts.
    #[test]
    fn the_readme_recipes_parse() {
        let readme = include_str!("../../README.md");
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
