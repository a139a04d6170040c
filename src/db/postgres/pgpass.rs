//! The password file libpq reads (`PGPASSFILE`, else `~/.pgpass`), read as
//! libpq reads it, so a server that wants a password works as it does for
//! `psql`: the first line whose host, port, database and user match (each
//! may be `*`) gives the password. A file others can read is ignored, as
//! libpq ignores it.

use std::path::PathBuf;

use postgres::Config;
use postgres::config::Host;

/// The password for connecting with `config`, if the password file has one.
pub fn lookup(config: &Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = file()?;
    let meta = fs_err::metadata(&path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = fs_err::read_to_string(&path).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(name) => name.clone(),
        // libpq matches a socket connection as `localhost`.
        Host::Unix(_) => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config.get_dbname()?,
        config.get_user()?,
    ];
    find(&text, wanted)
}

fn file() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(path) => Some(path.into()),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".pgpass")),
    }
}

/// The password of the first line matching `wanted` (host, port, database,
/// user).
fn find(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(fields)
        .find(|fields| {
            fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want)
        })
        .map(|[.., password]| password)
}

/// A line's five fields, `:` and `\` escaped by `\`; `None` for a line
/// with fewer.
fn fields(line: &str) -> Option<[String; 5]> {
    let mut out: [String; 5] = Default::default();
    let mut i = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out[i].push(chars.next().unwrap_or('\\')),
            ':' if i < 4 => i += 1,
            // As libpq: the password ends at an unescaped colon.
            ':' => break,
            c => out[i].push(c),
        }
    }
    (i == 4).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: [&str; 4] = ["db.example", "5432", "app_feature", "app"];

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let text = "# comment\n\
                    other:5432:*:app:wrong\n\
                    db.example:*:*:app:right\n\
                    *:*:*:*:later\n";
        assert_eq!(find(text, WANTED).as_deref(), Some("right"));
        assert_eq!(find(text, ["h", "1", "d", "u"]).as_deref(), Some("later"));
        assert_eq!(find("db.example:5433:*:app:p\n", WANTED), None);
    }

    #[test]
    fn escaped_colons_and_backslashes_are_literal() {
        assert_eq!(
            fields(r"h:5432:d:u:pa\:ss\\word").unwrap()[4],
            r"pa:ss\word"
        );
        assert_eq!(fields(r"h\:x:1:d:u:p").unwrap()[0], "h:x");
        assert!(fields("h:5432:d:u").is_none());
        // As libpq, the password ends at an unescaped colon.
        assert_eq!(fields("h:1:d:u:a:b").unwrap()[4], "a");
    }
}
