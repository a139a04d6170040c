//! The per-worktree env file: a real file of the worktree, never a symlink.
//!
//! When the env file is also a shared file (`.dev.vars` linked from the main
//! checkout), appending to the link would write through into the main
//! checkout and every other worktree. Instead the worktree gets a real file:
//! the shared contents, with overridden keys commented out, then the overrides.

use std::collections::BTreeMap;

pub const HEADER: &str = "# Written by provision: edits are replaced by `provision apply`.";

/// A value no quoting makes literal to both dotenv parsers and `sh`.
#[derive(Debug, thiserror::Error)]
#[error(
    "env override `{key}`: its value {value:?} holds a single quote and one of $ ` \\ \", and no quoting keeps that literal for both dotenv parsers and `set -a; . FILE`; change the value"
)]
pub struct Unquotable {
    pub key: String,
    pub value: String,
}

/// The file's contents from the shared text (if any) and the overrides.
pub fn render(
    shared: Option<&str>,
    overrides: &BTreeMap<String, String>,
) -> Result<String, Unquotable> {
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
        let quoted = quote(value).ok_or_else(|| Unquotable {
            key: key.clone(),
            value: value.clone(),
        })?;
        out.push_str(&format!("{key}={quoted}\n"));
    }
    Ok(out)
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
    let mut rest = text;
    while !rest.is_empty() {
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        rest = after;
        let Some(key) = key_of(line) else { continue };
        let raw = line.split_once('=').map_or("", |(_, v)| v.trim_start());
        // A quoted value may go on over the next lines.
        let value = match raw.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                let (value, after) = quoted(quote, &raw[1..], rest);
                rest = after;
                value
            }
            _ => raw.trim_end().to_string(),
        };
        if wanted.contains_key(key) {
            seen.insert(key.to_string(), value);
        }
    }
    for (key, value) in wanted.iter_mut() {
        *value = seen.remove(key).unwrap_or_else(|| "(unset)".into());
    }
    wanted
}

/// A value quoted with `quote` that starts with `first` (the rest of its
/// line) and may go on in `rest`; returns it and what follows it.
fn quoted<'a>(quote: char, first: &str, rest: &'a str) -> (String, &'a str) {
    let mut value = String::new();
    let mut line = first.to_string();
    let mut rest = rest;
    loop {
        if let Some(end) = line.find(quote) {
            value.push_str(&line[..end]);
            return (value, rest);
        }
        value.push_str(&line);
        if rest.is_empty() {
            return (value, rest);
        }
        value.push('\n');
        let (next, after) = rest.split_once('\n').unwrap_or((rest, ""));
        line = next.to_string();
        rest = after;
    }
}

/// Whether the file at `path` is one dotenv loaders read: `.env*`, `.dev.vars`.
pub fn is_dotenv(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with(".env") && name != ".envrc" || name == ".dev.vars"
}

/// The keys `text` assigns.
pub fn keys(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(key_of)
        .map(str::to_string)
        .collect()
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

/// A value as dotenv parsers (Node's dotenv and dotenv-expand, Ruby's
/// dotenv, godotenv, python-dotenv, wrangler) and `set -a; . FILE` all read
/// it, literally: bare when plain; else in single quotes, which none of them
/// expands (`$(…)`, `$VAR`, backticks stay text; a newline stays a
/// newline); a value holding `'` in double quotes when nothing in it is
/// special there. `None` when it holds `'` and one of `$`, a backtick,
/// `\` or `"`: every form then expands or unescapes it for some reader.
pub fn quote(value: &str) -> Option<String> {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./:@,+".contains(c));
    if plain && !value.is_empty() {
        Some(value.to_string())
    } else if !value.contains('\'') {
        Some(format!("'{value}'"))
    } else if !value.contains(['$', '`', '\\', '"']) {
        Some(format!("\"{value}\""))
    } else {
        None
    }
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
        let text = render(Some("API_KEY=secret\nDB_NAME=app\n"), &overrides()).unwrap();
        assert!(text.contains("API_KEY=secret\n"));
        assert!(!text.contains("DB_NAME=app\n"));
        assert!(text.contains("DB_NAME=app_x\n"));
        assert!(text.contains("GREETING='hi there'\n"));
        assert!(is_ours(&text));
    }

    #[test]
    fn values_read_back_what_render_wrote() {
        let text = render(None, &overrides()).unwrap();
        assert_eq!(values(&text, overrides().into_keys()), overrides());
    }

    #[test]
    fn values_that_look_like_code_stay_text() {
        for value in [
            "$(touch pwned)",
            "`id`",
            "${HOME}",
            "a\nb",
            "it's",
            "\\n",
            "\"q\"",
            "",
        ] {
            let vars = BTreeMap::from([("V".to_string(), value.to_string())]);
            let text = render(None, &vars).unwrap();
            assert_eq!(values(&text, ["V".to_string()])["V"], value, "{text}");
        }
        assert_eq!(quote("$(x)").unwrap(), "'$(x)'");
        assert_eq!(quote("it's").unwrap(), "\"it's\"");
        assert!(quote("it's $(x)").is_none());
        assert!(render(None, &BTreeMap::from([("V".into(), "'`".into())])).is_err());
    }
}
