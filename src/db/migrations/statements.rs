//! Where a migration's statements begin and end, and how it must run:
//! inside provision's transaction, outside any (a tool's marker, or a
//! statement PostgreSQL refuses inside one), or in the transaction the file
//! opens itself (`BEGIN; … COMMIT;`, common in golang-migrate files).
//!
//! The split only has to find top-level statements, so it knows what keeps
//! a `;` from ending one: quotes, comments, dollar quotes, parentheses, and
//! the `BEGIN … END;` body of a trigger or SQL-standard function.

/// A top-level statement: `head` is the offset of its first word (after
/// comments and blanks), `end` is just past its `;` (or the text's end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub head: usize,
    pub end: usize,
    /// Its first words, upper-cased (enough to classify it).
    pub words: Vec<String>,
}

/// How a migration runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// In provision's transaction, with its ledger rows: all or nothing.
    Wrapped,
    /// Statement by statement outside any transaction, then recorded once
    /// it succeeded; `why` says what asked for it.
    Outside { why: String },
    /// The file opens and commits its own transaction; its ledger rows go
    /// in right before the file's `COMMIT` at `commit_at`, so they commit
    /// with its changes.
    Own { commit_at: usize },
}

/// Where the split is within the statement being read.
#[derive(Default)]
struct Nesting {
    /// Open parentheses.
    depth: usize,
    /// Inside a trigger's or function's `BEGIN … END` body.
    body: bool,
    /// The last word was an END that may close the body.
    last_end: bool,
    /// Open `CASE … END`s: their END closes no body.
    cases: usize,
}

impl Nesting {
    fn word(&mut self, stmt: &mut Statement, word: String) {
        if self.depth == 0 && word == "BEGIN" && defines_body(&stmt.words) {
            self.body = true;
        }
        self.last_end = false;
        match word.as_str() {
            "CASE" => self.cases += 1,
            "END" if self.cases > 0 => self.cases -= 1,
            "END" => self.last_end = true,
            _ => {}
        }
        if stmt.words.len() < 8 {
            stmt.words.push(word);
        }
    }

    fn ends_at_semicolon(&self) -> bool {
        self.depth == 0 && (!self.body || self.last_end)
    }
}

/// The statements of `sql`, in order; comment-only stretches are none.
pub fn split(sql: &str) -> Vec<Statement> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut current: Option<Statement> = None;
    let mut at = Nesting::default();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && next == Some(b'-') {
            i = find(b, i, b"\n").map_or(b.len(), |at| at + 1);
            continue;
        }
        if c == b'/' && next == Some(b'*') {
            i = skip_block_comment(b, i);
            continue;
        }
        let stmt = current.get_or_insert_with(|| Statement {
            head: i,
            end: i,
            words: Vec::new(),
        });
        if is_word_byte(c) && !c.is_ascii_digit() && (i == 0 || !is_word_byte(b[i - 1])) {
            let start = i;
            while i < b.len() && is_word_byte(b[i]) {
                i += 1;
            }
            let word = sql[start..i].to_ascii_uppercase();
            if b.get(i) == Some(&b'\'') && (word == "E" || word == "X" || word == "B") {
                i = skip_quoted(b, i, b'\'', word == "E");
                at.last_end = false;
            } else {
                at.word(stmt, word);
            }
            continue;
        }
        match c {
            b'\'' | b'"' | b'`' => i = skip_quoted(b, i, c, false),
            b'$' => i = skip_dollar(b, i),
            b'(' => {
                at.depth += 1;
                i += 1;
            }
            b')' => {
                at.depth = at.depth.saturating_sub(1);
                i += 1;
            }
            b';' if at.ends_at_semicolon() => {
                let mut done = current.take().expect("a statement is open");
                done.end = i + 1;
                out.push(done);
                at = Nesting::default();
                i += 1;
                continue;
            }
            _ => i += 1,
        }
        at.last_end = false;
    }
    if let Some(mut rest) = current {
        rest.end = b.len();
        out.push(rest);
    }
    out
}

/// `CREATE [TEMP] TRIGGER` and `CREATE [OR REPLACE] FUNCTION|PROCEDURE`
/// may hold a `BEGIN … END` body whose `;`s do not end them.
fn defines_body(words: &[String]) -> bool {
    words.first().is_some_and(|w| w == "CREATE")
        && words
            .iter()
            .take(5)
            .any(|w| w == "TRIGGER" || w == "FUNCTION" || w == "PROCEDURE")
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| from + at)
}

/// Past a `/* … */` comment, nested as PostgreSQL nests them.
fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Past a quoted string or identifier starting at `i`; a doubled quote
/// stays inside, and so does a backslash-escaped one in an `E'…'` string.
fn skip_quoted(b: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    i += 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Past a `$tag$ … $tag$` string; a `$` that opens none (`$1`) is one byte.
fn skip_dollar(b: &[u8], i: usize) -> usize {
    if i > 0 && is_word_byte(b[i - 1]) {
        return i + 1;
    }
    let mut j = i + 1;
    while j < b.len() && is_word_byte(b[j]) && !(j == i + 1 && b[j].is_ascii_digit()) {
        j += 1;
    }
    if b.get(j) != Some(&b'$') {
        return i + 1;
    }
    let tag = &b[i..=j];
    find(b, j + 1, tag).map_or(b.len(), |at| at + tag.len())
}

/// The 1-based line of byte `at`.
pub fn line_of(sql: &str, at: usize) -> usize {
    sql.as_bytes()[..at.min(sql.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Begin,
    Commit,
    Rollback,
}

fn control(words: &[String]) -> Option<Control> {
    let second = words.get(1).map(String::as_str);
    match words.first()?.as_str() {
        "BEGIN" if second != Some("ATOMIC") => Some(Control::Begin),
        "START" if second == Some("TRANSACTION") => Some(Control::Begin),
        "COMMIT" | "END" => Some(Control::Commit),
        "ROLLBACK" | "ABORT" if second != Some("TO") => Some(Control::Rollback),
        _ => None,
    }
}

/// A statement PostgreSQL (or SQLite, for VACUUM) refuses inside a
/// transaction block.
fn refuses_transaction(words: &[String]) -> bool {
    let has = |w: &str| words.iter().any(|x| x == w);
    match words.first().map(String::as_str) {
        Some("CREATE" | "DROP" | "REINDEX") if has("CONCURRENTLY") => true,
        Some("CREATE" | "DROP") => {
            matches!(
                words.get(1).map(String::as_str),
                Some("DATABASE" | "TABLESPACE")
            )
        }
        Some("VACUUM") => true,
        Some("ALTER") => words.get(1).is_some_and(|w| w == "SYSTEM"),
        _ => false,
    }
}

/// Where the file's one `BEGIN … COMMIT` commits; any other use of
/// transaction control is refused with its line.
fn own_transaction(sql: &str, controls: &[(Control, usize)]) -> Result<usize, String> {
    let mut commit_at = None;
    let mut open = None;
    for &(control, at) in controls {
        let what = match control {
            Control::Begin if open.is_none() && commit_at.is_none() => {
                open = Some(at);
                continue;
            }
            Control::Commit if open.is_some() => {
                (open, commit_at) = (None, Some(at));
                continue;
            }
            Control::Begin if open.is_some() => "a BEGIN inside the file's transaction",
            Control::Begin => "a second transaction",
            Control::Commit => "a COMMIT without its BEGIN",
            Control::Rollback => "a ROLLBACK",
        };
        return Err(refusal(sql, at, what));
    }
    match (open, commit_at) {
        (Some(at), _) => Err(refusal(sql, at, "a BEGIN without its COMMIT")),
        (None, Some(at)) => Ok(at),
        (None, None) => unreachable!("controls is not empty"),
    }
}

fn refusal(sql: &str, at: usize, what: &str) -> String {
    format!(
        "line {}: {what}; provision runs a migration that manages its own transaction \
         only as one BEGIN … COMMIT, recording it inside that transaction: \
         split the file into one migration per transaction",
        line_of(sql, at)
    )
}

/// How `sql` runs; `marker` is the tool's own "no transaction" marker, if
/// the file carries one. An `Err` says why provision refuses it, with its
/// line: a file whose transactions it cannot record atomically.
pub fn mode(sql: &str, marker: Option<&str>) -> Result<Mode, String> {
    let statements = split(sql);
    let controls: Vec<(Control, usize)> = statements
        .iter()
        .filter_map(|s| control(&s.words).map(|c| (c, s.head)))
        .collect();
    if !controls.is_empty() {
        return own_transaction(sql, &controls).map(|commit_at| Mode::Own { commit_at });
    }
    if let Some(marker) = marker {
        return Ok(Mode::Outside {
            why: format!("its marker `{marker}`"),
        });
    }
    if let Some(s) = statements.iter().find(|s| refuses_transaction(&s.words)) {
        let shown: Vec<&str> = s.words.iter().take(4).map(String::as_str).collect();
        return Ok(Mode::Outside {
            why: format!(
                "line {}: {} cannot run inside a transaction",
                line_of(sql, s.head),
                shown.join(" ")
            ),
        });
    }
    Ok(Mode::Wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(sql: &str) -> Vec<String> {
        split(sql)
            .iter()
            .map(|s| sql[s.head..s.end].trim().to_string())
            .collect()
    }

    #[test]
    fn quotes_comments_and_bodies_keep_their_semicolons() {
        let sql = "-- a; comment\nCREATE TABLE t(a text default 'x;y', \"b;\" int);\n\
                   /* block; /* nested; */ still; */ INSERT INTO t VALUES(E'\\';', 1);\n\
                   DO $$ BEGIN PERFORM 1; END $$;\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 1; DELETE FROM t; END;\n\
                   CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2);\n\
                   SELECT $1, a$b$ FROM t";
        let got = heads(sql);
        assert_eq!(got.len(), 7, "{got:#?}");
        assert!(got[1].starts_with("INSERT INTO t VALUES(E'\\';', 1);"));
        assert!(got[4].ends_with("DELETE FROM t; END;"));
        // A CASE's END inside a trigger body ends neither.
        let case = "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = CASE WHEN 1 THEN 2 END; END;\nSELECT 1;";
        assert_eq!(heads(case).len(), 2, "{:#?}", heads(case));
        assert_eq!(got[6], "SELECT $1, a$b$ FROM t");
        // A column named begin is no body.
        assert_eq!(heads("CREATE TABLE begin(begin int); SELECT 1;").len(), 2);
        assert_eq!(heads("-- only a comment\n").len(), 0);
    }

    #[test]
    fn a_file_that_opens_its_own_transaction_is_recorded_inside_it() {
        let sql = "PRAGMA foreign_keys=off;\nBEGIN TRANSACTION;\nCREATE TABLE a(x);\nCOMMIT;\nPRAGMA foreign_keys=on;\n";
        let Mode::Own { commit_at } = mode(sql, None).unwrap() else {
            panic!()
        };
        assert!(sql[commit_at..].starts_with("COMMIT;"));
        // A trigger's END and a DO block's BEGIN are not transaction control.
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;\nDO $$ BEGIN END $$;";
        assert_eq!(mode(sql, None).unwrap(), Mode::Wrapped);
    }

    #[test]
    fn transactions_provision_cannot_record_atomically_are_refused_by_line() {
        for (sql, want) in [
            (
                "BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nCOMMIT;",
                "line 4: a second transaction",
            ),
            ("BEGIN;\nSELECT 1;\nROLLBACK;", "line 3: a ROLLBACK"),
            ("SELECT 1;\nCOMMIT;", "line 2: a COMMIT without its BEGIN"),
        ] {
            let err = mode(sql, None).unwrap_err();
            assert!(err.starts_with(want), "{sql:?}: {err}");
        }
        assert!(matches!(
            mode("BEGIN; SAVEPOINT a; ROLLBACK TO a; COMMIT;", None),
            Ok(Mode::Own { .. })
        ));
    }

    #[test]
    fn markers_and_statements_that_refuse_a_transaction_run_outside_one() {
        assert_eq!(
            mode(
                "CREATE INDEX x ON t(a);",
                Some("-- migrate:up transaction:false")
            )
            .unwrap(),
            Mode::Outside {
                why: "its marker `-- migrate:up transaction:false`".into()
            }
        );
        assert_eq!(
            mode(
                "SELECT 1;\nCREATE UNIQUE INDEX CONCURRENTLY x ON t(a);",
                None
            )
            .unwrap(),
            Mode::Outside {
                why: "line 2: CREATE UNIQUE INDEX CONCURRENTLY cannot run inside a transaction"
                    .into()
            }
        );
        assert_eq!(
            mode("CREATE INDEX x ON t(a);", None).unwrap(),
            Mode::Wrapped
        );
    }
}
