//! The "up" part of a migration file and its tool's markers: dbmate's
//! `-- migrate:up` / `-- migrate:down` sections (with `transaction:false`),
//! goose's `-- +goose Up` / `-- +goose Down` (with `NO TRANSACTION`),
//! sqlx's `-- no-transaction` first line, diesel's `metadata.toml`.

/// The part of a file that is applied, and the marker that asks for it to
/// run outside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Up {
    pub sql: String,
    pub no_transaction: Option<String>,
}

/// The annotation of a `--` comment line: `-- +goose Up` ⇒ `+goose Up`.
fn annotation(line: &str) -> Option<&str> {
    line.trim_end().strip_prefix("--").map(str::trim_start)
}

/// Whether `text` has dbmate's up marker.
pub fn is_dbmate(text: &str) -> bool {
    text.lines().any(|l| dbmate_directive(l, "up").is_some())
}

/// Whether `text` has goose's up annotation.
pub fn is_goose(text: &str) -> bool {
    text.lines()
        .any(|l| goose_annotation(l).is_some_and(|a| a.eq_ignore_ascii_case("up")))
}

/// `-- migrate:up transaction:false` ⇒ the options after the directive.
fn dbmate_directive<'a>(line: &'a str, which: &str) -> Option<&'a str> {
    annotation(line)?
        .strip_prefix("migrate:")?
        .strip_prefix(which)
        .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

fn goose_annotation(line: &str) -> Option<&str> {
    let rest = annotation(line)?.strip_prefix("+goose")?;
    rest.starts_with(char::is_whitespace).then(|| rest.trim())
}

/// dbmate: from the `-- migrate:up` line to the `-- migrate:down` line.
pub fn dbmate(text: &str) -> Result<Up, String> {
    let mut sql = String::new();
    let mut options = None;
    for line in text.split_inclusive('\n') {
        if let Some(opts) = dbmate_directive(line, "up") {
            if options.is_some() {
                return Err("more than one `-- migrate:up` line".into());
            }
            options = Some(opts.trim().to_string());
        } else if dbmate_directive(line, "down").is_some() {
            if options.is_none() {
                return Err("`-- migrate:down` comes before `-- migrate:up`".into());
            }
            break;
        }
        if options.is_some() {
            sql.push_str(line);
        }
    }
    let Some(options) = options else {
        return Err("no `-- migrate:up` line".into());
    };
    let off = options
        .split_whitespace()
        .any(|o| o.eq_ignore_ascii_case("transaction:false"));
    Ok(Up {
        sql,
        no_transaction: off.then(|| format!("-- migrate:up {options}")),
    })
}

/// goose: the lines after `-- +goose Up` up to `-- +goose Down`;
/// `-- +goose NO TRANSACTION` anywhere runs it outside a transaction.
/// `StatementBegin`/`StatementEnd` are comments to a database, and the
/// statements they group are found again by `statements::split`.
pub fn goose(text: &str) -> Result<Up, String> {
    let mut sql = String::new();
    let (mut up, mut no_transaction) = (false, None);
    for line in text.split_inclusive('\n') {
        match goose_annotation(line)
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("UP") if up => return Err("more than one `-- +goose Up` line".into()),
            Some("UP") => up = true,
            Some("DOWN") if !up => {
                return Err("`-- +goose Down` comes before `-- +goose Up`".into());
            }
            Some("DOWN") => break,
            Some("NO TRANSACTION") => no_transaction = Some("-- +goose NO TRANSACTION".into()),
            _ => {}
        }
        if up {
            sql.push_str(line);
        }
    }
    if !up {
        return Err("no `-- +goose Up` line".into());
    }
    Ok(Up {
        sql,
        no_transaction,
    })
}

/// sqlx: the whole file; `-- no-transaction` as its first line runs it
/// outside a transaction.
pub fn sqlx(text: &str) -> Up {
    let first = text.lines().next().unwrap_or_default().trim();
    Up {
        sql: text.to_string(),
        no_transaction: (first == "-- no-transaction").then(|| first.to_string()),
    }
}

/// diesel: `run_in_transaction = false` in the folder's `metadata.toml`.
pub fn diesel_metadata(text: &str) -> Result<Option<String>, String> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        run_in_transaction: Option<bool>,
    }
    let metadata: Metadata = toml::from_str(text).map_err(|e| e.message().to_string())?;
    Ok((metadata.run_in_transaction == Some(false))
        .then(|| "metadata.toml: run_in_transaction = false".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbmate_applies_only_its_up_section() {
        let text = "-- a header\n-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t(a);\n\n-- migrate:down\nDROP INDEX i;\n";
        assert!(is_dbmate(text));
        let up = dbmate(text).unwrap();
        assert_eq!(
            up.sql,
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t(a);\n\n"
        );
        assert_eq!(
            up.no_transaction.as_deref(),
            Some("-- migrate:up transaction:false")
        );
        assert_eq!(
            dbmate("--migrate:up\nSELECT 1;\n").unwrap().no_transaction,
            None
        );
        assert!(!is_dbmate("-- migrate:upgrade\n"));
        assert_eq!(
            dbmate("-- migrate:down\nx\n-- migrate:up\n").unwrap_err(),
            "`-- migrate:down` comes before `-- migrate:up`"
        );
    }

    #[test]
    fn goose_applies_only_its_up_annotation() {
        let text = "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\n-- +goose Down\nDROP FUNCTION f;\n";
        assert!(is_goose(text));
        let up = goose(text).unwrap();
        assert!(up.sql.starts_with("-- +goose Up\n"), "{}", up.sql);
        assert!(!up.sql.contains("DROP"), "{}", up.sql);
        assert_eq!(
            up.no_transaction.as_deref(),
            Some("-- +goose NO TRANSACTION")
        );
        assert!(is_goose("-- +goose up\nSELECT 1;"));
        assert_eq!(goose("SELECT 1;").unwrap_err(), "no `-- +goose Up` line");
    }

    #[test]
    fn sqlx_and_diesel_markers() {
        assert!(sqlx("-- no-transaction\nVACUUM;").no_transaction.is_some());
        assert!(sqlx("SELECT 1; -- no-transaction").no_transaction.is_none());
        assert!(
            diesel_metadata("run_in_transaction = false\n")
                .unwrap()
                .is_some()
        );
        assert_eq!(diesel_metadata("run_in_transaction = true\n"), Ok(None));
        assert!(diesel_metadata("run_in_transaction = 1\n").is_err());
    }
}
