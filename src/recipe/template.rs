//! `{name}`-style templates in recipe values.
//!
//! Templates are checked when the recipe is read, so an unknown `{key}` is
//! reported with its line before anything is created.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// Every template a recipe may use.
pub const KNOWN: &[&str] = &[
    "name",
    "slug",
    "db",
    "repo",
    "port",
    "main",
    "worktree",
    "clone",
    "migration",
    "entry",
];

/// The templates that describe a sandbox (all but the per-migration one).
pub const SANDBOX: &[&str] = &[
    "name", "slug", "db", "repo", "port", "main", "worktree", "clone",
];

/// `{port.NAME}`: the port named `NAME` in `[ports] names`. It may be used
/// wherever `{port}` may.
const PORT_PREFIX: &str = "port.";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("unknown template `{{{0}}}`; known: {known} {{port.NAME}}", known = braced(KNOWN))]
    Unknown(String),
    #[error("`{{{0}}}` cannot be used here: {1}")]
    NotAvailable(String, &'static str),
    #[error("unclosed `{{` (write `{{{{` for a literal brace)")]
    Unclosed,
    #[error("no port is named `{0}` (`{{port.{0}}}`); `[ports] names` has {1}")]
    NoSuchPort(String, String),
}

fn braced(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("{{{k}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The port name of a `{port.NAME}` key.
pub fn port_name(key: &str) -> Option<&str> {
    key.strip_prefix(PORT_PREFIX)
        .filter(|name| crate::recipe::config::is_env_name(name))
}

/// Whether `key` is a template a recipe may write.
fn is_known(key: &str) -> bool {
    KNOWN.contains(&key) || port_name(key).is_some()
}

/// The key of `{port.NAME}`, as template values are keyed. The values of a
/// sandbox are keyed by `'static` names; port names come from the recipe,
/// so each is interned once per process (a recipe has a handful).
pub fn port_key(name: &str) -> &'static str {
    static KEYS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let key = format!("{PORT_PREFIX}{name}");
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    match keys.get(key.as_str()) {
        Some(interned) => interned,
        None => {
            let interned: &'static str = Box::leak(key.into_boxed_str());
            keys.insert(interned);
            interned
        }
    }
}

/// The names a template refers to, in order; errors on syntax or unknown names.
pub fn keys(template: &str) -> Result<Vec<String>, TemplateError> {
    let mut keys = Vec::new();
    each_part(template, |part| {
        if let Part::Key(key) = part {
            if !is_known(key) {
                return Err(TemplateError::Unknown(key.to_string()));
            }
            keys.push(key.to_string());
        }
        Ok(())
    })?;
    Ok(keys)
}

/// Expands a template that `keys` accepted. A key missing from `values` is
/// an internal error: the recipe check decides which keys each field may use.
pub fn expand(template: &str, values: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    each_part(template, |part| {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Key(key) => match values.get(key) {
                Some(value) => out.push_str(value),
                None => return Err(TemplateError::NotAvailable(key.to_string(), "no value yet")),
            },
        }
        Ok(())
    })?;
    Ok(out)
}

/// The environment variable that carries `key`'s value to a command:
/// `PROVISION_DB` for `{db}`, `PROVISION_PORT_API_PORT` for `{port.API_PORT}`.
pub fn variable(key: &str) -> String {
    format!("PROVISION_{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// A template as shell code: each `{key}` becomes `${PROVISION_KEY}`, a
/// parameter expansion of the variable that carries its value (`values`
/// says which keys have one). The shell never parses an expansion's result
/// as code, so a value holding `$(…)`, quotes or `;` stays data; inside
/// double quotes it is exactly the value.
pub fn to_shell(template: &str, values: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    each_part(template, |part| {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Key(key) if values.contains_key(key) => {
                out.push_str(&format!("${{{}}}", variable(key)))
            }
            Part::Key(key) => {
                return Err(TemplateError::NotAvailable(key.to_string(), "no value yet"));
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The first `{key}` in `command` that the shell would not expand to its
/// value: one inside single quotes (also within `$(…)` or backticks, which
/// start quoting afresh), or in the body of a quoted here-document
/// (`<<'SQL'`), which the shell takes literally. `#` comments are skipped;
/// an unquoted here-document's body expands (its `'` are plain text).
pub fn unexpanded_key(command: &str) -> Option<&str> {
    let mut stack = vec![Quoting::Code];
    let mut heredocs = Vec::new();
    let mut lines = command.split_inclusive('\n');
    while let Some(line) = lines.next() {
        if let Some(key) = scan_line(line, &mut stack, &mut heredocs) {
            return Some(key);
        }
        // The bodies of here-documents opened on this line follow it.
        for (delimiter, literal) in heredocs.drain(..) {
            for body in lines.by_ref() {
                if body.trim_end_matches('\n').trim_start_matches('\t') == delimiter {
                    break;
                }
                if literal && let Some(key) = first_key(body) {
                    return Some(key);
                }
            }
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq)]
enum Quoting {
    Code,
    Double,
    Single,
    Substitution,
    Backtick,
}

/// Scans one line, carrying the quoting `stack` across lines; collects the
/// here-documents it opens as (delimiter, body is literal).
fn scan_line<'a>(
    line: &'a str,
    stack: &mut Vec<Quoting>,
    heredocs: &mut Vec<(String, bool)>,
) -> Option<&'a str> {
    use Quoting::*;
    let mut i = 0;
    while i < line.len() {
        let Some(rest) = line.get(i..) else {
            i += 1; // inside a multi-byte character
            continue;
        };
        let top = *stack.last().expect("the stack keeps its bottom");
        if let Some(after) = rest.strip_prefix('{') {
            if after.starts_with('{') {
                i += 2;
                continue;
            }
            let key = after.split('}').next().unwrap_or_default();
            if top == Single && is_known(key) {
                return Some(key);
            }
            i += 1;
            continue;
        }
        let in_code = matches!(top, Code | Substitution | Backtick);
        let word_start = i == 0 || line[..i].ends_with(char::is_whitespace);
        match (top, rest.as_bytes()[0]) {
            (Single, b'\'') => {
                stack.pop();
            }
            (Single, _) => {}
            (_, b'\\') => i += 1,
            (_, b'#') if in_code && word_start => return None,
            (Double, b'"') => {
                stack.pop();
            }
            (Backtick, b'`') => {
                stack.pop();
            }
            (_, b'`') => stack.push(Backtick),
            (_, b'$') if rest.starts_with("$(") => {
                stack.push(Substitution);
                i += 1;
            }
            (Substitution, b')') => {
                stack.pop();
            }
            (Double, _) => {}
            (_, b'\'') => stack.push(Single),
            (_, b'"') => stack.push(Double),
            (_, b'<') if rest.starts_with("<<") && !rest.starts_with("<<<") => {
                let marker = rest[2..].trim_start_matches('-').trim_start();
                let literal = marker.starts_with(['\'', '"', '\\']);
                let delimiter: String = marker
                    .trim_start_matches(['\'', '"', '\\'])
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                heredocs.push((delimiter, literal));
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The first known `{key}` in `text`.
fn first_key(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        let after = &rest[at + 1..];
        if let Some(skip) = after.strip_prefix('{') {
            rest = skip;
            continue;
        }
        let key = after.split('}').next().unwrap_or_default();
        if is_known(key) {
            return Some(key);
        }
        rest = after;
    }
    None
}

enum Part<'a> {
    Literal(&'a str),
    Key(&'a str),
}

fn each_part<'a>(
    template: &'a str,
    mut visit: impl FnMut(Part<'a>) -> Result<(), TemplateError>,
) -> Result<(), TemplateError> {
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        visit(Part::Literal(&rest[..pos]))?;
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("{{") {
            visit(Part::Literal("{"))?;
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            visit(Part::Literal("}"))?;
            rest = after;
        } else if let Some(after) = tail.strip_prefix('}') {
            visit(Part::Literal("}"))?;
            rest = after;
        } else {
            let end = tail.find('}').ok_or(TemplateError::Unclosed)?;
            visit(Part::Key(&tail[1..end]))?;
            rest = &tail[end + 1..];
        }
    }
    visit(Part::Literal(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_keys_and_escapes() {
        let values = BTreeMap::from([("db", "app_x".to_string()), ("port", "20001".to_string())]);
        assert_eq!(
            expand("{db}:{port} {{lit}}", &values).unwrap(),
            "app_x:20001 {lit}"
        );
    }

    #[test]
    fn to_shell_names_variables_and_keeps_escapes() {
        let values = BTreeMap::from([
            ("main", "/a \"b\" $(c)".to_string()),
            ("migration", "m".to_string()),
        ]);
        assert_eq!(
            to_shell(r#"echo "{main}/x" {{lit}} {migration}"#, &values).unwrap(),
            r#"echo "${PROVISION_MAIN}/x" {lit} ${PROVISION_MIGRATION}"#
        );
        assert_eq!(
            to_shell("{db}", &values),
            Err(TemplateError::NotAvailable("db".into(), "no value yet"))
        );
    }

    #[test]
    fn finds_templates_the_shell_would_not_expand() {
        assert_eq!(unexpanded_key("echo '{db}'"), Some("db"));
        assert_eq!(unexpanded_key("echo \"'{db}'\""), None);
        assert_eq!(unexpanded_key("echo \\'{db} '{{x}}'"), None);
        assert_eq!(
            unexpanded_key("mysql -e \"DROP DATABASE \\`{db}\\`\""),
            None
        );
        // `$(…)` and backticks quote afresh, even inside double quotes.
        assert_eq!(
            unexpanded_key("test -f \"$(printf '%s' '{main}/x')\""),
            Some("main")
        );
        assert_eq!(
            unexpanded_key("echo \"$(cat \"{migration}\")\" `echo '{db}'`"),
            Some("db")
        );
        assert_eq!(unexpanded_key("echo \"$(cat \"{migration}\")\" {db}"), None);
        // A quoted here-document's body is literal; an unquoted one expands.
        assert_eq!(
            unexpanded_key("sqlite3 x <<'SQL'\nCREATE TABLE {db};\nSQL"),
            Some("db")
        );
        assert_eq!(
            unexpanded_key("sqlite3 x <<SQL\nCREATE TABLE {db};\nSQL"),
            None
        );
        assert_eq!(unexpanded_key("echo 'é' {db}"), None);
        // A heredoc ends at its delimiter; an unquoted body's `'` is text.
        let after = "sqlite3 x <<'SQL'\nSELECT 1;\nSQL\nsqlite3 \"{main}/{db}\" < \"{migration}\"";
        assert_eq!(unexpanded_key(after), None);
        assert_eq!(
            unexpanded_key("sqlite3 x <<SQL\nINSERT INTO t VALUES('{db}');\nSQL"),
            None
        );
        assert_eq!(
            unexpanded_key("psql <<-\"EOF\"\n\tDROP {db};\n\tEOF"),
            Some("db")
        );
        // Comments are not code: their apostrophes open nothing.
        assert_eq!(unexpanded_key("true # don't\necho \"{db}\""), None);
    }

    #[test]
    fn named_ports_are_keys_of_their_own() {
        assert_eq!(
            keys("{port}:{port.API_PORT}").unwrap(),
            ["port", "port.API_PORT"]
        );
        assert_eq!(keys("{port.}"), Err(TemplateError::Unknown("port.".into())));
        assert_eq!(
            keys("{port.a-b}"),
            Err(TemplateError::Unknown("port.a-b".into()))
        );
        assert!(std::ptr::eq(port_key("API"), port_key("API")));
        let values = BTreeMap::from([(port_key("API"), "20002".to_string())]);
        assert_eq!(expand("x{port.API}", &values).unwrap(), "x20002");
        assert_eq!(
            to_shell("--port \"{port.API}\"", &values).unwrap(),
            "--port \"${PROVISION_PORT_API}\""
        );
        assert_eq!(unexpanded_key("echo '{port.API}'"), Some("port.API"));
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        assert_eq!(
            keys("{dbname}"),
            Err(TemplateError::Unknown("dbname".into()))
        );
        assert_eq!(keys("{db"), Err(TemplateError::Unclosed));
        assert_eq!(keys("{repo}_{slug}").unwrap(), ["repo", "slug"]);
    }
}
