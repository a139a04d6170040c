//! The password file libpq reads (`PGPASSFILE`, else `~/.pgpass`), read as
//! libpq reads it, so a server that wants a password works as it does for
//! `psql`: the first line whose host, port, database and user match (each
//! may be `*`) gives the password. A file others can read is ignored, as
//! libpq ignores it.

use std::path::PathBuf;

use postgres::Config;
use postgres::config::Host;

/// The password for connecting with `config`, if the password file has one.
pub fn lookup(config: &Config) -> Option<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let path = file()?;
    let meta = fs_err::metadata(&path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = fs_err::read(&path).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(name) => name.clone(),
        Host::Unix(dir) => socket_host(dir)?,
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

/// How libpq names a socket directory in the password file: the default
/// one (`/var/run/postgresql` in Debian's and Ubuntu's builds, `/tmp` in
/// PostgreSQL's own) as `localhost`, any other by its path.
fn socket_host(dir: &std::path::Path) -> Option<String> {
    let dir = dir.to_str()?;
    let default = ["/var/run/postgresql", "/tmp"].contains(&dir.trim_end_matches('/'));
    Some(if default {
        "localhost".into()
    } else {
        dir.into()
    })
}

fn file() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(path) => Some(path.into()),
        None => Some(PathBuf::from(std::env::var_os("HOME")?).join(".pgpass")),
    }
}

/// The password of the first line matching `wanted` (host, port, database,
/// user). The file is bytes, as libpq reads it: a line need not be UTF-8.
fn find(text: &[u8], wanted: [&str; 4]) -> Option<Vec<u8>> {
    text.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.starts_with(b"#"))
        .filter_map(fields)
        .find(|fields| {
            fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field.star || field.text == want.as_bytes())
        })
        .map(|[.., password]| password.text)
}

/// A field of a line: its text, `:` and `\` unescaped; `star` when it is
/// `*` as written (an escaped `\*` is a literal star, as in libpq).
#[derive(Default)]
struct Field {
    text: Vec<u8>,
    star: bool,
}

/// A line's five fields, `:` and `\` escaped by `\`; `None` for a line
/// with fewer.
fn fields(line: &[u8]) -> Option<[Field; 5]> {
    let mut out: [Field; 5] = Default::default();
    let mut raw: [Vec<u8>; 5] = Default::default();
    let mut i = 0;
    let mut bytes = line.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                let next = bytes.next().unwrap_or(b'\\');
                raw[i].extend([b, next]);
                out[i].text.push(next);
            }
            b':' if i < 4 => i += 1,
            // As libpq: the password ends at an unescaped colon.
            b':' => break,
            b => {
                raw[i].push(b);
                out[i].text.push(b);
            }
        }
    }
    for (field, raw) in out.iter_mut().zip(&raw) {
        field.star = raw == b"*";
    }
    (i == 4).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANTED: [&str; 4] = ["db.example", "5432", "app_feature", "app"];

    fn found(text: &str, wanted: [&str; 4]) -> Option<String> {
        find(text.as_bytes(), wanted).map(|p| String::from_utf8(p).unwrap())
    }

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let text = "# comment\n\
                    other:5432:*:app:wrong\n\
                    db.example:*:*:app:right\n\
                    *:*:*:*:later\n";
        assert_eq!(found(text, WANTED).as_deref(), Some("right"));
        assert_eq!(found(text, ["h", "1", "d", "u"]).as_deref(), Some("later"));
        assert_eq!(found("db.example:5433:*:app:p\n", WANTED), None);
    }

    #[test]
    fn escaped_colons_and_backslashes_are_literal() {
        let field = |line: &str, i: usize| {
            String::from_utf8(fields(line.as_bytes()).unwrap()[i].text.clone()).unwrap()
        };
        assert_eq!(field(r"h:5432:d:u:pa\:ss\\word", 4), r"pa:ss\word");
        assert_eq!(field(r"h\:x:1:d:u:p", 0), "h:x");
        assert!(fields(b"h:5432:d:u").is_none());
        // As libpq, the password ends at an unescaped colon.
        assert_eq!(field("h:1:d:u:a:b", 4), "a");
    }

    /// As libpq: an escaped star is a star, not a wildcard; a line that is
    /// not UTF-8 is read, its password bytes as they are; `\r\n` ends a line.
    #[test]
    fn an_escaped_star_is_literal_and_any_bytes_are_read() {
        assert_eq!(found(r"db.example:5432:\*:app:p", WANTED), None);
        assert_eq!(
            found(
                r"db.example:5432:\*:app:p",
                ["db.example", "5432", "*", "app"]
            )
            .as_deref(),
            Some("p")
        );
        let text = b"other:1:d:u:\xff\r\ndb.example:5432:*:app:pass\xfe\r\n";
        assert_eq!(find(text, WANTED), Some(b"pass\xfe".to_vec()));
    }

    /// A socket directory matches `localhost` only when it is the default
    /// one; any other, by its path.
    #[test]
    fn a_socket_is_localhost_only_in_the_default_directory() {
        use std::path::Path;
        assert_eq!(
            socket_host(Path::new("/var/run/postgresql")).unwrap(),
            "localhost"
        );
        assert_eq!(socket_host(Path::new("/tmp")).unwrap(), "localhost");
        assert_eq!(socket_host(Path::new("/tmp/rvpg")).unwrap(), "/tmp/rvpg");
    }
}
