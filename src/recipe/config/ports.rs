//! `[ports]`: the range each sandbox's port is taken from.

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, PortRange, Source};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPorts {
    range: Option<Spanned<String>>,
}

pub(super) fn resolve(
    raw: RawPorts,
    source: &Source,
    ports: &mut PortRange,
) -> Result<(), ConfigError> {
    if let Some(range) = raw.range {
        *ports = parse_range(range.get_ref()).ok_or_else(|| {
            source.error_at(
                &range,
                format!(
                    "ports.range: `{}` is not a range like \"20000-29999\"",
                    range.get_ref()
                ),
            )
        })?;
    }
    Ok(())
}

fn parse_range(text: &str) -> Option<PortRange> {
    let (first, last) = text.split_once('-')?;
    let first: u16 = first.trim().parse().ok()?;
    let last: u16 = last.trim().parse().ok()?;
    (first > 0 && first <= last).then_some(PortRange { first, last })
}

#[cfg(test)]
mod tests {
    use crate::recipe::config::{PortRange, parse};

    #[test]
    fn defaults_to_20000_29999() {
        let s = parse("[ports]\n").unwrap();
        assert_eq!(
            s.ports,
            PortRange {
                first: 20000,
                last: 29999
            }
        );
    }

    #[test]
    fn ranges_parse() {
        for (range, first, last) in [("3000-3009", 3000, 3009), (" 1 - 1 ", 1, 1)] {
            let s = parse(&format!("[ports]\nrange = \"{range}\"\n")).unwrap();
            assert_eq!(s.ports, PortRange { first, last }, "{range}");
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
}
