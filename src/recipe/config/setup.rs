//! `[[setup]]`: shell commands run in each new sandbox, in order.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};
use crate::recipe::template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSetup {
    run: Spanned<String>,
}

pub(super) fn resolve(
    raw: Vec<RawSetup>,
    source: &Source,
    setup: &mut Vec<String>,
    lines: &mut Vec<usize>,
) -> Result<(), ConfigError> {
    for RawSetup { run } in raw {
        if run.get_ref().trim().is_empty() {
            return Err(source.error_at(&run, "setup.run: empty command".into()));
        }
        source.templates(
            &run,
            "setup.run",
            template::SANDBOX,
            "`{migration}` is only known to `[database] migrate`",
        )?;
        source.shell_quoting(&run, "setup.run")?;
        lines.push(source.line(&run));
        setup.push(run.into_inner());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::recipe::config::{Settings, parse};

    #[test]
    fn defaults_to_none_and_stays_out_of_the_recipe_hash() {
        assert!(parse("").unwrap().setup.is_empty());
        let json = serde_json::to_string(&Settings::default()).unwrap();
        assert!(!json.contains("setup"), "{json}");
    }

    #[test]
    fn commands_keep_their_order_and_lines() {
        let s = parse("[[setup]]\nrun = \"npm ci\"\n\n[[setup]]\nrun = \"make PORT={port}\"\n")
            .unwrap();
        assert_eq!(s.setup, ["npm ci", "make PORT={port}"]);
        assert_eq!(s.lines.setup, [2, 5]);
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.ends_with(r#""setup":["npm ci","make PORT={port}"]}"#),
            "{json}"
        );
    }

    #[test]
    fn errors_name_their_line() {
        for (text, want) in [
            (
                "\n[[setup]]\nrun = \"npm ci\"\nwhen = \"x\"\n",
                "provision.toml:4: unknown field `when`, expected `run`",
            ),
            ("[[setup]]\n", "provision.toml:1: missing field `run`"),
            (
                "[[setup]]\nrun = 3\n",
                "provision.toml:2: invalid type: integer `3`, expected a string",
            ),
            (
                "[[setup]]\nrun = \"\"\n",
                "provision.toml:2: setup.run: empty command",
            ),
            (
                "[[setup]]\nrun = \"echo {migration}\"\n",
                "provision.toml:2: setup.run: `{migration}` cannot be used here: `{migration}` is only known to `[database] migrate`",
            ),
            (
                "[[setup]]\nrun = \"x\"\n[[setup]]\nrun = \"echo '{db}'\"\n",
                "provision.toml:4: setup.run: `{db}` sits inside single quotes or a quoted here-document, where the shell does not expand it; use double quotes",
            ),
            (
                "setup = [\"x\"]\n",
                "provision.toml:1: invalid type: string \"x\", expected struct RawSetup",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }
}
