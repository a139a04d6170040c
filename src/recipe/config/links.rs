//! `[links]`: gitignore-style patterns over the included paths that each
//! worktree gets as a copy (or reflink) instead of a symlink.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{ConfigError, Lines, Source};

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLinks {
    #[serde(default)]
    copy: Vec<Spanned<String>>,
    #[serde(default)]
    reflink: Vec<Spanned<String>>,
}

pub(super) fn resolve(
    raw: RawLinks,
    source: &Source,
    links: &mut Links,
    lines: &mut Lines,
) -> Result<(), ConfigError> {
    for (key, patterns, slot, lines) in [
        ("copy", raw.copy, &mut links.copy, &mut lines.copy),
        (
            "reflink",
            raw.reflink,
            &mut links.reflink,
            &mut lines.reflink,
        ),
    ] {
        for pattern in patterns {
            check(&pattern, key, source)?;
            lines.push(source.line(&pattern));
            slot.push(pattern.into_inner());
        }
    }
    Ok(())
}

fn check(pattern: &Spanned<String>, key: &str, source: &Source) -> Result<(), ConfigError> {
    let text = pattern.get_ref();
    let bad = |why: &str| source.error_at(pattern, format!("links.{key}: `{text}` {why}"));
    if text.trim().is_empty() || text.starts_with('#') {
        return Err(bad("is not a pattern"));
    }
    if text.split('/').any(|part| part == "..") {
        return Err(bad("leaves the repository"));
    }
    ignore::gitignore::GitignoreBuilder::new("/")
        .add_line(None, text)
        .map_err(|e| bad(&format!("is not a valid pattern ({e})")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::recipe::config::{Settings, parse};

    #[test]
    fn defaults_to_none_and_stays_out_of_the_recipe_hash() {
        let s = parse("[links]\n").unwrap();
        assert!(s.links.is_empty());
        let json = serde_json::to_string(&Settings::default()).unwrap();
        assert!(!json.contains("links"), "{json}");
    }

    #[test]
    fn patterns_keep_their_order_and_lines() {
        let s = parse(
            "[links]\ncopy = [\n  \"node_modules/.cache\",\n  \"*.key\",\n]\nreflink = [\".wrangler\"]\n",
        )
        .unwrap();
        assert_eq!(s.links.copy, ["node_modules/.cache", "*.key"]);
        assert_eq!(s.links.reflink, [".wrangler"]);
        assert_eq!(s.lines.copy, [3, 4]);
        assert_eq!(s.lines.reflink, [6]);
        let json = serde_json::to_string(&s.links).unwrap();
        assert_eq!(
            json,
            r#"{"copy":["node_modules/.cache","*.key"],"reflink":[".wrangler"]}"#
        );
    }

    #[test]
    fn errors_name_their_line() {
        for (text, want) in [
            (
                "[links]\ncopy = \"x\"\n",
                "provision.toml:2: invalid type: string \"x\", expected a sequence",
            ),
            (
                "[links]\ncopy = [\"a\", \"../x\"]\n",
                "provision.toml:2: links.copy: `../x` leaves the repository",
            ),
            (
                "[links]\nreflink = [\n\"a\",\n\"# x\"]\n",
                "provision.toml:4: links.reflink: `# x` is not a pattern",
            ),
            (
                "[links]\ncopy = [\" \"]\n",
                "provision.toml:2: links.copy: ` ` is not a pattern",
            ),
            (
                "[links]\nmove = [\"a\"]\n",
                "provision.toml:2: unknown field `move`, expected `copy` or `reflink`",
            ),
            (
                "links = 3\n",
                "provision.toml:1: invalid type: integer `3`, expected struct RawLinks",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text:?}");
        }
        let err = parse("[links]\ncopy = [\"[z-a]\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("provision.toml:2: links.copy: `[z-a]` is not a valid pattern ("),
            "{err}"
        );
    }
}
