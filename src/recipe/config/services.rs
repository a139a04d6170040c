//! `[[services]]`: long-running commands (dev servers, watchers) that
//! `provision up` starts in a sandbox and `down`, `remove` and `gc` stop.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};
use crate::recipe::template;

/// `[[services]]`: a command `provision up` keeps running in the sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub run: String,
    /// Between SIGTERM and SIGKILL when it is stopped.
    pub grace: Duration,
    /// The line of `run` in provision.toml.
    pub line: usize,
}

/// How long a service has between SIGTERM and SIGKILL unless it says.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    name: Spanned<String>,
    run: Spanned<String>,
    /// Seconds between SIGTERM and SIGKILL.
    grace: Option<Spanned<f64>>,
}

pub(super) fn resolve(
    raw: Vec<RawService>,
    source: &Source,
    services: &mut Vec<Service>,
) -> Result<(), ConfigError> {
    for RawService { name, run, grace } in raw {
        if !is_service_name(name.get_ref()) {
            return Err(source.error_at(
                &name,
                format!(
                    "services.name: `{}` is not a service name (letters, digits, `-` and `_`, starting with a letter or digit)",
                    name.get_ref()
                ),
            ));
        }
        if services.iter().any(|s| s.name == *name.get_ref()) {
            return Err(source.error_at(
                &name,
                format!("services.name: `{}` is declared twice", name.get_ref()),
            ));
        }
        if run.get_ref().trim().is_empty() {
            return Err(source.error_at(&run, "services.run: empty command".into()));
        }
        source.templates(
            &run,
            "services.run",
            template::SANDBOX,
            "`{migration}` is only known to `[database] migrate`",
        )?;
        source.shell_quoting(&run, "services.run")?;
        let grace = match grace {
            Some(secs) if !(0.0..=3600.0).contains(secs.get_ref()) => {
                return Err(source.error_at(
                    &secs,
                    format!(
                        "services.grace: {} is not a number of seconds from 0 to 3600",
                        secs.get_ref()
                    ),
                ));
            }
            Some(secs) => Duration::from_secs_f64(*secs.get_ref()),
            None => DEFAULT_GRACE,
        };
        services.push(Service {
            line: source.line(&run),
            name: name.into_inner(),
            run: run.into_inner(),
            grace,
        });
    }
    Ok(())
}

/// A name that is safe as a file name and as a word on the command line.
pub fn is_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::recipe::config::{Settings, parse};

    #[test]
    fn services_keep_their_order_and_stay_out_of_the_recipe_hash() {
        let s = parse(
            "[[services]]\nname = \"web\"\nrun = \"npm run dev -- --port {port}\"\n\n\
             [[services]]\nname = \"api\"\nrun = \"./api --port {port.PORT}\"\ngrace = 0.5\n",
        )
        .unwrap();
        let names: Vec<_> = s.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "api"]);
        assert_eq!(s.services[0].grace, Duration::from_secs(5));
        assert_eq!(s.services[1].grace, Duration::from_millis(500));
        assert_eq!(s.services[1].line, 7);
        // A service is run, not realised: changing one leaves locks as they are.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, serde_json::to_string(&Settings::default()).unwrap());
    }

    #[test]
    fn errors_name_their_line() {
        for (text, want) in [
            (
                "[[services]]\nname = \"../x\"\nrun = \"x\"\n",
                "provision.toml:2: services.name: `../x` is not a service name (letters, digits, `-` and `_`, starting with a letter or digit)",
            ),
            (
                "[[services]]\nname = \"a\"\nrun = \"x\"\n[[services]]\nname = \"a\"\nrun = \"y\"\n",
                "provision.toml:5: services.name: `a` is declared twice",
            ),
            (
                "[[services]]\nname = \"a\"\nrun = \" \"\n",
                "provision.toml:3: services.run: empty command",
            ),
            (
                "[[services]]\nname = \"a\"\nrun = \"x\"\ngrace = -1\n",
                "provision.toml:4: services.grace: -1 is not a number of seconds from 0 to 3600",
            ),
            (
                "[[services]]\nname = \"a\"\nrun = \"serve --port '{port}'\"\n",
                "provision.toml:3: services.run: `{port}` sits inside single quotes or a quoted here-document, where the shell does not expand it; use double quotes",
            ),
            (
                "[[services]]\nname = \"a\"\nrun = \"serve {port.API}\"\n",
                "provision.toml:3: services.run: no port is named `API` (`{port.API}`); `[ports] names` has PORT",
            ),
            (
                "[[services]]\nname = \"a\"\n",
                "provision.toml:1: missing field `run`",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }
}
