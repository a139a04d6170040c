//! `[database]`: the kind, the name template and the migrations folder, and
//! each kind's own keys (the PostgreSQL server, the command kind's commands).

use serde::Deserialize;
use toml::Spanned;

use super::{
    Commands, ConfigError, DatabaseKind, DatabaseSettings, Lines, OnDivergence, Seed, Source,
};
use crate::db::migrations::Format;
use crate::lifecycle::identity::TAG_LEN;
use crate::recipe::template;
use crate::slug;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawDatabase {
    kind: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    migrations: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    template: Option<Spanned<String>>,
    create: Option<Spanned<String>>,
    migrate: Option<Spanned<String>>,
    exists: Option<Spanned<String>>,
    drop: Option<Spanned<String>>,
    on_divergence: Option<Spanned<String>>,
    seed: Option<Spanned<String>>,
    snapshot: Option<Spanned<String>>,
    restore: Option<Spanned<String>>,
}

pub(super) fn resolve(
    raw: RawDatabase,
    source: &Source,
    database: &mut DatabaseSettings,
    lines: &mut Lines,
) -> Result<(), ConfigError> {
    if let Some(kind) = &raw.kind {
        database.kind = kind_of(kind, source)?;
    }
    only_for_their_kind(&raw, source, database.kind)?;
    server(&raw, source, database)?;
    commands(&raw, source, &mut database.commands, lines)?;
    if let Some(name) = raw.name {
        source.templates(
            &name,
            "database.name",
            &["name", "slug", "repo", "clone"],
            "the database name cannot depend on itself, the port or absolute paths",
        )?;
        let tags = template::keys(name.get_ref())
            .unwrap_or_default()
            .iter()
            .filter(|key| *key == "clone")
            .count();
        let most = slug::most_tags(TAG_LEN);
        if tags > most {
            return Err(source.error_at(
                &name,
                format!(
                    "database.name: `{{clone}}` {tags} times does not fit a database name ({} bytes at most): use it at most {most} times",
                    slug::MAX_IDENTIFIER
                ),
            ));
        }
        database.name = name.into_inner();
    } else {
        database.name = default_name(database.kind).to_string();
    }
    if let Some(dir) = raw.migrations {
        source.templates(
            &dir,
            "database.migrations",
            &[],
            "the migrations folder is a fixed path",
        )?;
        source.relative(&dir, "database.migrations")?;
        database.migrations = dir.into_inner();
        database.migrations_set = true;
    }
    if let Some(value) = &raw.on_divergence {
        database.on_divergence = on_divergence(value, source, database.kind)?;
    }
    if let Some(seed) = &raw.seed {
        source.templates(
            seed,
            "database.seed",
            &[],
            "the seed is one database every sandbox copies",
        )?;
        database.seed = Some(if seed.get_ref() == "main" {
            Seed::Main
        } else {
            source.relative(seed, "database.seed")?;
            Seed::File(seed.get_ref().clone())
        });
    }
    if let Some(format) = &raw.format {
        database.format = Some(Format::parse(format.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
            source.error_at(
                format,
                format!(
                    "database.format: unknown format `{}`; known: {}",
                    format.get_ref(),
                    known.join(", ")
                ),
            )
        })?);
    }
    Ok(())
}

/// `[database] name` when the recipe leaves it out. A PostgreSQL server
/// may be shared by many clones (a team's dev server), so its databases'
/// names carry the clone's tag; a SQLite file lives inside the clone's git
/// dir, and a command kind's tool is most often local too (a recipe whose
/// tool is shared writes `{clone}` into its name).
pub fn default_name(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Postgres => "{repo}_{slug}_{clone}",
        DatabaseKind::Sqlite | DatabaseKind::Command => NAME_BEFORE_CLONES,
    }
}

/// The default name of every kind before clones had a tag: sandboxes made
/// then keep their databases' names.
pub const NAME_BEFORE_CLONES: &str = "{repo}_{slug}";

fn kind_of(kind: &Spanned<String>, source: &Source) -> Result<DatabaseKind, ConfigError> {
    match kind.get_ref().as_str() {
        "sqlite" => Ok(DatabaseKind::Sqlite),
        "postgres" => Ok(DatabaseKind::Postgres),
        "command" => Ok(DatabaseKind::Command),
        other => Err(source.error_at(
            kind,
            format!("database.kind: unknown kind `{other}`; known: sqlite, postgres, command"),
        )),
    }
}

fn on_divergence(
    value: &Spanned<String>,
    source: &Source,
    kind: DatabaseKind,
) -> Result<OnDivergence, ConfigError> {
    match value.get_ref().as_str() {
        "refuse" => Ok(OnDivergence::Refuse),
        // The command kind has no way to keep a database aside, and a
        // rebuild must never lose the old one without being asked.
        "rebuild" if kind == DatabaseKind::Command => Err(source.error_at(
            value,
            "database.on_divergence: \"rebuild\" keeps the old database aside, which the command kind cannot do; \
             use \"refuse\" (`provision db reset --discard` rebuilds it by hand)"
                .into(),
        )),
        "rebuild" => Ok(OnDivergence::Rebuild),
        other => Err(source.error_at(
            value,
            format!("database.on_divergence: unknown value `{other}`; known: refuse, rebuild"),
        )),
    }
}

/// A key another kind uses is a mistake worth a line number, not a no-op.
fn only_for_their_kind(
    raw: &RawDatabase,
    source: &Source,
    kind: DatabaseKind,
) -> Result<(), ConfigError> {
    use DatabaseKind::{Command, Postgres};
    for (key, value, wanted) in [
        ("url", &raw.url, Postgres),
        ("template", &raw.template, Postgres),
        ("seed", &raw.seed, DatabaseKind::Sqlite),
        ("create", &raw.create, Command),
        ("migrate", &raw.migrate, Command),
        ("exists", &raw.exists, Command),
        ("drop", &raw.drop, Command),
        ("snapshot", &raw.snapshot, Command),
        ("restore", &raw.restore, Command),
    ] {
        if let Some(value) = value
            && kind != wanted
        {
            return Err(source.error_at(
                value,
                format!(
                    "database.{key}: only used with kind = \"{}\" (this recipe's kind is \"{}\")",
                    wanted.as_str(),
                    kind.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// `postgres`: the server, and the database each sandbox is copied from.
fn server(
    raw: &RawDatabase,
    source: &Source,
    database: &mut DatabaseSettings,
) -> Result<(), ConfigError> {
    if let Some(url) = &raw.url {
        source.templates(
            url,
            "database.url",
            &[],
            "the server is the same for every sandbox",
        )?;
        database.url = Some(url.get_ref().clone());
    }
    if let Some(template) = &raw.template {
        source.templates(
            template,
            "database.template",
            &[],
            "the template is one database every sandbox copies",
        )?;
        if template.get_ref().is_empty() {
            return Err(source.error_at(template, "database.template: empty name".into()));
        }
        database.template = Some(template.get_ref().clone());
    }
    Ok(())
}

/// `command`: the shell commands, templated with the sandbox's values.
fn commands(
    raw: &RawDatabase,
    source: &Source,
    commands: &mut Commands,
    lines: &mut Lines,
) -> Result<(), ConfigError> {
    let sandbox = template::SANDBOX;
    let migrate = [sandbox, &["migration"]].concat();
    let entry = [sandbox, &["entry"]].concat();
    for (key, value, allowed, slot) in [
        ("create", &raw.create, sandbox, &mut commands.create),
        ("migrate", &raw.migrate, &migrate[..], &mut commands.migrate),
        ("exists", &raw.exists, sandbox, &mut commands.exists),
        ("drop", &raw.drop, sandbox, &mut commands.drop),
        (
            "snapshot",
            &raw.snapshot,
            &entry[..],
            &mut commands.snapshot,
        ),
        ("restore", &raw.restore, &entry[..], &mut commands.restore),
    ] {
        let Some(value) = value else { continue };
        let name = format!("database.{key}");
        source.templates(
            value,
            &name,
            allowed,
            "`{migration}` is only known to `migrate`, `{entry}` to `snapshot` and `restore`",
        )?;
        source.shell_quoting(value, &name)?;
        *slot = Some(value.get_ref().clone());
        lines.database.insert(key, source.line(value));
    }
    // The store of migrated states needs both ways, or neither.
    for (key, value, other, missing) in [
        ("snapshot", &raw.snapshot, "restore", raw.restore.is_none()),
        ("restore", &raw.restore, "snapshot", raw.snapshot.is_none()),
    ] {
        if let (Some(value), true) = (value, missing) {
            return Err(source.error_at(
                value,
                format!(
                    "database.{key}: needs a `{other}` command too: the store of migrated states copies a database both ways"
                ),
            ));
        }
    }
    // Without `exists`, an idempotent `create` (`CREATE DATABASE IF NOT
    // EXISTS`) succeeds on someone else's database: provision would mark it
    // as its own, and a later `drop` would remove it.
    if raw.exists.is_none() {
        for (key, value) in [("create", &raw.create), ("drop", &raw.drop)] {
            if let Some(value) = value {
                return Err(source.error_at(
                    value,
                    format!(
                        "database.{key}: needs an `exists` command too (exit 0 = exists, 1 = does not), \
                         so provision never takes over or drops a database it did not create"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::recipe::config::{DatabaseKind, Settings, parse};

    #[test]
    fn defaults_to_sqlite_named_after_repo_and_worktree() {
        let s = parse("[database]\n").unwrap();
        assert_eq!(s.database, Settings::default().database);
        assert_eq!(s.database.kind, DatabaseKind::Sqlite);
        assert_eq!(s.database.name, "{repo}_{slug}");
        assert_eq!(s.database.migrations, "migrations");
        assert_eq!(s.database.url, None);
        assert_eq!(s.database.template, None);
        assert_eq!(s.database.commands, Default::default());
        assert_eq!(s.database.format, None);
    }

    /// A database outside the clone carries the clone's tag, unless the
    /// recipe names it otherwise.
    #[test]
    fn server_kinds_name_their_databases_after_the_clone_too() {
        let kind = |toml: &str| parse(toml).unwrap().database.name;
        assert_eq!(kind("[database]\nkind = \"sqlite\"\n"), "{repo}_{slug}");
        assert_eq!(
            kind("[database]\nkind = \"postgres\"\n"),
            "{repo}_{slug}_{clone}"
        );
        assert_eq!(kind("[database]\nkind = \"command\"\n"), "{repo}_{slug}");
        assert_eq!(
            kind("[database]\nkind = \"postgres\"\nname = \"{slug}\"\n"),
            "{slug}"
        );
        assert_eq!(
            kind("[database]\nname = \"{clone}_{slug}\"\n"),
            "{clone}_{slug}"
        );
    }

    #[test]
    fn a_forced_format_is_part_of_the_recipe_hash_only_when_set() {
        let s = parse("[database]\nformat = \"diesel\"\nmigrations = \"migrations\"\n").unwrap();
        assert_eq!(
            s.database.format,
            Some(crate::db::migrations::Format::Diesel)
        );
        assert!(s.database.migrations_set);
        let json = serde_json::to_string(&s.database).unwrap();
        assert!(json.contains(r#""format":"diesel""#), "{json}");
        let plain = serde_json::to_string(&parse("").unwrap().database).unwrap();
        assert!(!plain.contains("format"), "{plain}");
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
    fn on_divergence_is_refuse_unless_asked_and_never_rebuilds_the_command_kind() {
        use crate::recipe::config::OnDivergence;
        assert_eq!(
            parse("").unwrap().database.on_divergence,
            OnDivergence::Refuse
        );
        let s = parse("[database]\non_divergence = \"rebuild\"\n").unwrap();
        assert_eq!(s.database.on_divergence, OnDivergence::Rebuild);
        // Part of the recipe hash only when set.
        let json = serde_json::to_string(&s.database).unwrap();
        assert!(json.contains(r#""on_divergence":"rebuild""#), "{json}");
        let plain = serde_json::to_string(&parse("").unwrap().database).unwrap();
        assert!(!plain.contains("on_divergence"), "{plain}");
        for (text, want) in [
            (
                "[database]\non_divergence = \"drop\"\n",
                "provision.toml:2: database.on_divergence: unknown value `drop`; known: refuse, rebuild",
            ),
            (
                "[database]\nkind = \"command\"\nmigrate = \"m\"\non_divergence = \"rebuild\"\n",
                "provision.toml:4: database.on_divergence: \"rebuild\" keeps the old database aside",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn a_seed_is_main_or_a_path_inside_the_repository() {
        use crate::recipe::config::Seed;
        let seed = |text: &str| parse(&format!("[database]\nseed = \"{text}\"\n"));
        assert_eq!(seed("main").unwrap().database.seed, Some(Seed::Main));
        assert_eq!(
            seed("db/seed.sqlite").unwrap().database.seed,
            Some(Seed::File("db/seed.sqlite".into()))
        );
        let json = serde_json::to_string(&seed("main").unwrap().database).unwrap();
        assert!(json.contains(r#""seed":"main""#), "{json}");
        let err = seed("../x.sqlite").unwrap_err().to_string();
        assert!(err.starts_with("provision.toml:2: database.seed:"), "{err}");
        let err = parse("[database]\nkind = \"postgres\"\nseed = \"main\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("provision.toml:3: database.seed: only used with kind = \"sqlite\""),
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
    fn command_kind_keeps_its_commands_in_the_recipe_hash() {
        let s = parse(
            "[database]\nkind = \"command\"\ncreate = \"c {db}\"\nmigrate = \"m {migration}\"\nexists = \"e\"\ndrop = \"d\"\n",
        )
        .unwrap();
        let json = serde_json::to_string(&s.database).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"command","name":"{repo}_{slug}","migrations":"migrations","create":"c {db}","migrate":"m {migration}","exists":"e","drop":"d"}"#
        );
    }

    #[test]
    fn errors_name_their_line() {
        for (text, want) in [
            (
                "[database]\n\nkind = \"mysql\"\n",
                "provision.toml:3: database.kind: unknown kind `mysql`; known: sqlite, postgres, command",
            ),
            (
                "[database]\nexists = \"e\"\n",
                "provision.toml:2: database.exists: only used with kind = \"command\" (this recipe's kind is \"sqlite\")",
            ),
            (
                "[database]\nkind = \"command\"\ntemplate = \"seed\"\n",
                "provision.toml:3: database.template: only used with kind = \"postgres\" (this recipe's kind is \"command\")",
            ),
            (
                "[database]\nkind = \"postgres\"\nurl = \"postgres://h/{db}\"\n",
                "provision.toml:3: database.url: `{db}` cannot be used here: the server is the same for every sandbox",
            ),
            (
                "[database]\nkind = \"postgres\"\ntemplate = \"\"\n",
                "provision.toml:3: database.template: empty name",
            ),
            (
                "[database]\nkind = \"command\"\nexists = \"e\"\ncreate = \"c\"\ndrop = \"d '{db}'\"\n",
                "provision.toml:5: database.drop: `{db}` sits inside single quotes or a quoted here-document, where the shell does not expand it; use double quotes",
            ),
            (
                "[database]\nname = \"{port}\"\n",
                "provision.toml:2: database.name: `{port}` cannot be used here: the database name cannot depend on itself, the port or absolute paths",
            ),
            (
                "[database]\nmigrations = \"../m\"\n",
                "provision.toml:2: database.migrations: `../m` must be a relative path inside the repository",
            ),
            (
                "[database]\nmigrations = \"{repo}\"\n",
                "provision.toml:2: database.migrations: `{repo}` cannot be used here: the migrations folder is a fixed path",
            ),
            (
                "[database]\nformat = \"rails\"\n",
                "provision.toml:2: database.format: unknown format `rails`; known: flat, golang-migrate, sqlx, diesel, prisma, dbmate, goose, flyway",
            ),
            (
                "[database]\nkind = \"sqlite\"\nkinds = 1\n",
                "provision.toml:3: unknown field `kinds`, expected one of `kind`, `name`, `migrations`, `format`, `url`, `template`, `create`, `migrate`, `exists`, `drop`, `on_divergence`, `seed`, `snapshot`, `restore`",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }
}
