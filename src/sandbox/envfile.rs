//! The per-worktree env file: a real file of the worktree, never a symlink.
//!
//! When the env file is also a shared file (`.dev.vars` linked from the main
//! checkout), appending to the link would write through into the main
//! checkout and every other worktree. Instead the worktree gets a real file:
//! the shared contents, with overridden keys commented out, then the overrides.

use std::collections::BTreeMap;

pub const HEADER: &str = "# Written by provision: edits are replaced by `provision apply`.";

/// The file's contents from the shared text (if any) and the overrides.
pub fn render(shared: Option<&str>, overrides: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push('\n');
    if let Some(shared) = shared {
        out.push_str("# Shared values, from the main checkout:\n");
        for line in shared.lines() {
            match key_of(line) {
                Some(key) if overrides.contains_key(key) => {
                    out.push_str(&format!("# {key}: overridden below\n"));
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out.push_str("# This worktree's overrides:\n");
    for (key, value) in overrides {
        out.push_str(&format!("{key}={}\n", quote(value)));
    }
    out
}

/// Whether `text` is one provision wrote (and may therefore rewrite).
pub fn is_ours(text: &str) -> bool {
    text.starts_with(HEADER)
}

/// The values of `keys` as the file sets them (last assignment wins).
pub fn values(text: &str, keys: impl IntoIterator<Item = String>) -> BTreeMap<String, String> {
    let mut wanted: BTreeMap<String, String> =
        keys.into_iter().map(|k| (k, String::new())).collect();
    let mut seen = BTreeMap::new();
    for line in text.lines() {
        let Some(key) = key_of(line) else { continue };
        if wanted.contains_key(key) {
            let raw = line.split_once('=').map_or("", |(_, v)| v.trim());
            seen.insert(key.to_string(), unquote(raw));
        }
    }
    for (key, value) in wanted.iter_mut() {
        *value = seen.remove(key).unwrap_or_else(|| "(unset)".into());
    }
    wanted
}

/// The key a `KEY=value` or `export KEY=value` line assigns.
fn key_of(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let valid = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(key)
}

pub(crate) fn quote(value: &str) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:@,+".contains(c));
    if plain && !value.is_empty() {
        value.to_string()
    } else {
        serde_json::to_string(value).expect("a string always serializes")
    }
}

fn unquote(raw: &str) -> String {
    if raw.starts_with('"')
        && let Ok(value) = serde_json::from_str::<String>(raw)
    {
        return value;
    }
    raw.trim_matches(['"', '\'']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("DB_NAME".into(), "app_x".into()),
            ("GREETING".into(), "hi there".into()),
        ])
    }

    #[test]
    fn overrides_win_over_shared_values() {
        let text = render(Some("API_KEY=secret\nDB_NAME=app\n"), &overrides());
        assert!(text.contains("API_KEY=secret\n"));
        assert!(!text.contains("DB_NAME=app\n"));
        assert!(text.contains("DB_NAME=app_x\n"));
        assert!(text.contains("GREETING=\"hi there\"\n"));
        assert!(is_ours(&text));
    }

    #[test]
    fn values_read_back_what_render_wrote() {
        let text = render(None, &overrides());
        assert_eq!(values(&text, overrides().into_keys()), overrides());
    }
}
