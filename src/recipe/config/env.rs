//! `[env]`: the per-worktree env file and the overrides written into it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Settings, Source, is_env_name};
use crate::recipe::template;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawEnv {
    file: Option<Spanned<String>>,
    vars: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
}

/// Returns whether `[env.vars]` was given (else the defaults follow the
/// port names, once they are known).
pub(super) fn resolve(
    raw: RawEnv,
    source: &Source,
    settings: &mut Settings,
) -> Result<bool, ConfigError> {
    if let Some(file) = raw.file {
        source.templates(
            &file,
            "env.file",
            &[],
            "the env file is a fixed path in every worktree",
        )?;
        source.relative(&file, "env.file")?;
        // As the lock will name it, checked as the lock's reader checks it:
        // plain components only, not in .git, not the lock.
        let name = file.get_ref().as_str();
        if let Err(why) = crate::sandbox::lock::inside(name) {
            return Err(source.error_at(&file, format!("env.file `{name}` {why}")));
        }
        // The recipe's own files: overrides written into one of them would
        // break the recipe for good.
        if [super::FILE_NAME, crate::recipe::include::FILE_NAME].contains(&name) {
            return Err(source.error_at(
                &file,
                format!("env.file `{name}` is one of provision's or git's own files; choose another path"),
            ));
        }
        settings.lines.env_file = Some(source.line(&file));
        settings.env_file = file.into_inner();
    }
    // Given vars replace the defaults rather than adding to them.
    let given = raw.vars.is_some();
    if let Some(vars) = raw.vars {
        settings.env_vars.clear();
        for (key, value) in vars {
            if !is_env_name(key.get_ref()) {
                return Err(source.error_at(
                    &key,
                    format!("env.vars: `{}` is not a valid variable name", key.get_ref()),
                ));
            }
            if let Some(why) = runs_code(key.get_ref()) {
                return Err(source.error_at(
                    &key,
                    format!(
                        "env.vars: `{}` {why}: a commit could make every command and shell that loads the overrides run its code; set it outside the recipe",
                        key.get_ref()
                    ),
                ));
            }
            source.templates(
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
    Ok(given)
}

/// Variables that make a program load or run other code: the overrides
/// reach `[[setup]]` and database commands, and every shell that loads them
/// (`provision env --shell` under direnv), so the recipe may not set them.
fn runs_code(key: &str) -> Option<&'static str> {
    const EXACT: [&str; 14] = [
        "PATH",
        "BASH_ENV",
        "ENV",
        "PROMPT_COMMAND",
        "SHELLOPTS",
        "BASHOPTS",
        "IFS",
        "NODE_OPTIONS",
        "PYTHONSTARTUP",
        "PERL5OPT",
        "RUBYOPT",
        "JAVA_TOOL_OPTIONS",
        "GIT_SSH_COMMAND",
        "GIT_EXEC_PATH",
    ];
    if key.starts_with("LD_") || key.starts_with("DYLD_") {
        Some("changes which libraries every program loads")
    } else if EXACT.contains(&key) {
        Some("changes which code a shell or interpreter runs")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::recipe::config::parse;

    #[test]
    fn defaults_to_env_local_with_the_database_and_port() {
        let s = parse("[env]\n").unwrap();
        assert_eq!(s.env_file, ".env.local");
        assert_eq!(
            s.env_vars,
            BTreeMap::from([
                ("DB_NAME".to_string(), "{db}".to_string()),
                ("PORT".to_string(), "{port}".to_string()),
            ])
        );
    }

    #[test]
    fn given_vars_replace_the_defaults() {
        let s =
            parse("[env]\nfile = \".dev.vars\"\n[env.vars]\nDATABASE = \"{main}/{db}\"\n").unwrap();
        assert_eq!(s.env_file, ".dev.vars");
        assert_eq!(
            s.env_vars,
            BTreeMap::from([("DATABASE".to_string(), "{main}/{db}".to_string())])
        );
        assert!(parse("[env.vars]\n").unwrap().env_vars.is_empty());
    }

    #[test]
    fn errors_name_their_line() {
        for (text, want) in [
            (
                "[env]\nfile = \"{name}.env\"\n",
                "provision.toml:2: env.file: `{name}` cannot be used here: the env file is a fixed path in every worktree",
            ),
            (
                "[env]\n\nfile = \"/etc/env\"\n",
                "provision.toml:3: env.file: `/etc/env` must be a relative path inside the repository",
            ),
            (
                "[env]\nfile = \"a/../../x\"\n",
                "provision.toml:2: env.file: `a/../../x` must be a relative path inside the repository",
            ),
            (
                "[env]\nfile = \"\"\n",
                "provision.toml:2: env.file: empty path",
            ),
            (
                "[env.vars]\nOK = \"1\"\n1X = \"x\"\n",
                "provision.toml:3: env.vars: `1X` is not a valid variable name",
            ),
            (
                "[env.vars]\nA = \"{migration}\"\n",
                "provision.toml:2: env.vars.A: `{migration}` cannot be used here: `{migration}` is only known to `[database] migrate`",
            ),
            (
                "[env]\nfile = \".env\"\nfiel = 1\n",
                "provision.toml:3: unknown field `fiel`, expected `file` or `vars`",
            ),
            (
                "[env.vars]\nA = 3\n",
                "provision.toml:2: invalid type: integer `3`, expected a string",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }
}
