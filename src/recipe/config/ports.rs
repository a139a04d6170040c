//! `[ports]`: the range each sandbox's ports are taken from, and their names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{ConfigError, Source, is_env_name};

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// `[ports]`: where ports come from, and the name of each port a sandbox
/// gets (its env variable by default). Serialized into the recipe hash as
/// the range alone while the names are the default `["PORT"]`, so a recipe
/// without names hashes as it did before they existed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Ports {
    #[serde(flatten)]
    pub range: PortRange,
    #[serde(skip_serializing_if = "Ports::default_names")]
    pub names: Vec<String>,
}

/// The one port every sandbox has when `[ports] names` is not given.
pub const DEFAULT_PORT_NAME: &str = "PORT";

impl Ports {
    fn default_names(names: &[String]) -> bool {
        names == [DEFAULT_PORT_NAME]
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPorts {
    range: Option<Spanned<String>>,
    names: Option<Spanned<Vec<Spanned<String>>>>,
}

impl RawPorts {
    /// The names as written, unchecked (`default` when there are none), for
    /// checking `{port.NAME}` templates in sections resolved before this one.
    pub(super) fn names_as_written(&self, default: &[String]) -> Vec<String> {
        match &self.names {
            Some(names) => names
                .get_ref()
                .iter()
                .map(|n| n.get_ref().clone())
                .collect(),
            None => default.to_vec(),
        }
    }
}

pub(super) fn resolve(
    raw: RawPorts,
    source: &Source,
    ports: &mut Ports,
) -> Result<(), ConfigError> {
    if let Some(range) = raw.range {
        ports.range = parse_range(range.get_ref()).ok_or_else(|| {
            source.error_at(
                &range,
                format!(
                    "ports.range: `{}` is not a range like \"20000-29999\"",
                    range.get_ref()
                ),
            )
        })?;
    }
    if let Some(names) = raw.names {
        if names.get_ref().is_empty() {
            return Err(source.error_at(
                &names,
                "ports.names: empty; every sandbox has at least one port (the default is [\"PORT\"])"
                    .into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for name in names.get_ref() {
            if !is_env_name(name.get_ref()) {
                return Err(source.error_at(
                    name,
                    format!(
                        "ports.names: `{}` is not a valid variable name",
                        name.get_ref()
                    ),
                ));
            }
            if !seen.insert(name.get_ref()) {
                return Err(source.error_at(
                    name,
                    format!("ports.names: `{}` is named twice", name.get_ref()),
                ));
            }
        }
        let size = usize::from(ports.range.last - ports.range.first) + 1;
        if names.get_ref().len() > size {
            return Err(source.error_at(
                &names,
                format!(
                    "ports.names: {} ports cannot fit in the range of {size}",
                    names.get_ref().len()
                ),
            ));
        }
        ports.names = names
            .into_inner()
            .into_iter()
            .map(Spanned::into_inner)
            .collect();
    }
    Ok(())
}

/// The overrides when `[env.vars]` is not given: the database name, and
/// each port under its own name (the first as `{port}`, so the default
/// `PORT = "{port}"` hashes as it always did).
pub(super) fn default_env_vars(names: &[String]) -> BTreeMap<String, String> {
    let ports = names.iter().enumerate().map(|(i, name)| {
        let value = if i == 0 {
            "{port}".to_string()
        } else {
            format!("{{port.{name}}}")
        };
        (name.clone(), value)
    });
    // A port named DB_NAME is the user's choice: the port wins.
    std::iter::once(("DB_NAME".to_string(), "{db}".to_string()))
        .chain(ports)
        .collect()
}

fn parse_range(text: &str) -> Option<PortRange> {
    let (first, last) = text.split_once('-')?;
    let first: u16 = first.trim().parse().ok()?;
    let last: u16 = last.trim().parse().ok()?;
    (first > 0 && first <= last).then_some(PortRange { first, last })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::recipe::config::{PortRange, Settings, parse};

    #[test]
    fn defaults_to_20000_29999_and_one_port_named_port() {
        let s = parse("[ports]\n").unwrap();
        assert_eq!(
            s.ports.range,
            PortRange {
                first: 20000,
                last: 29999
            }
        );
        assert_eq!(s.ports.names, ["PORT"]);
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn ranges_parse() {
        for (range, first, last) in [("3000-3009", 3000, 3009), (" 1 - 1 ", 1, 1)] {
            let s = parse(&format!("[ports]\nrange = \"{range}\"\n")).unwrap();
            assert_eq!(s.ports.range, PortRange { first, last }, "{range}");
        }
    }

    #[test]
    fn a_bad_range_names_its_line() {
        for range in ["9-1", "0-5", "3000", "1-70000", "a-b", ""] {
            let err = parse(&format!("[ports]\n\nrange = \"{range}\"\n")).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "provision.toml:3: ports.range: `{range}` is not a range like \"20000-29999\""
                )
            );
        }
    }

    /// Named ports become the default overrides, the first as `{port}`;
    /// given `[env.vars]` replace them, and may name them as `{port.NAME}`.
    #[test]
    fn names_are_the_default_overrides() {
        let s = parse("[ports]\nnames = [\"WEB\", \"API_PORT\"]\n").unwrap();
        assert_eq!(s.ports.names, ["WEB", "API_PORT"]);
        let want = [
            ("API_PORT", "{port.API_PORT}"),
            ("DB_NAME", "{db}"),
            ("WEB", "{port}"),
        ];
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(s.env_vars, want);
        let json = serde_json::to_string(&s.ports).unwrap();
        assert_eq!(
            json,
            r#"{"first":20000,"last":29999,"names":["WEB","API_PORT"]}"#
        );
        let s = parse(
            "[env.vars]\nAPI = \"{port.API_PORT}\"\n[ports]\nnames = [\"PORT\", \"API_PORT\"]\n",
        )
        .unwrap();
        assert_eq!(s.env_vars.keys().collect::<Vec<_>>(), ["API"]);
        // The default names stay out of the recipe hash.
        let json = serde_json::to_string(&parse("[ports]\nnames = [\"PORT\"]\n").unwrap().ports);
        assert_eq!(json.unwrap(), r#"{"first":20000,"last":29999}"#);
    }

    #[test]
    fn bad_names_name_their_line() {
        for (text, want) in [
            (
                "[ports]\nnames = []\n",
                "provision.toml:2: ports.names: empty; every sandbox has at least one port (the default is [\"PORT\"])",
            ),
            (
                "[ports]\nnames = [\"PORT\",\n  \"api-port\"]\n",
                "provision.toml:3: ports.names: `api-port` is not a valid variable name",
            ),
            (
                "[ports]\nnames = [\"A\", \"B\", \"A\"]\n",
                "provision.toml:2: ports.names: `A` is named twice",
            ),
            (
                "[ports]\nrange = \"3000-3001\"\nnames = [\"A\", \"B\", \"C\"]\n",
                "provision.toml:3: ports.names: 3 ports cannot fit in the range of 2",
            ),
            (
                "[env.vars]\nX = \"{port.API}\"\n[ports]\nnames = [\"PORT\", \"WEB\"]\n",
                "provision.toml:2: env.vars.X: no port is named `API` (`{port.API}`); `[ports] names` has PORT, WEB",
            ),
            (
                "[env.vars]\nX = \"{port.API}\"\n",
                "provision.toml:2: env.vars.X: no port is named `API` (`{port.API}`); `[ports] names` has PORT",
            ),
            (
                "[worktree]\npath = \"../{port.PORT}\"\n",
                "provision.toml:2: worktree.path: `{port.PORT}` cannot be used here: the worktree path is chosen before the sandbox exists",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
    }
}
