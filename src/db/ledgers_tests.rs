use super::*;
use crate::db::migrations::{Entry, layout};

fn entry(path: &str, text: &str) -> Entry {
    Entry {
        path: path.into(),
        bytes: text.as_bytes().to_vec(),
    }
}

/// Two migrations of each layout, as their tools name them.
fn files(format: Format) -> Vec<Migration> {
    let entries = match format {
        Format::Flat => vec![entry("0001_a.sql", "A"), entry("0002_b.sql", "B")],
        Format::GolangMigrate => vec![entry("1_a.up.sql", "A"), entry("10_b.up.sql", "B")],
        Format::Sqlx => vec![entry("1_a_b.up.sql", "A"), entry("2_c.sql", "B")],
        Format::Diesel => vec![
            entry("2024-01-01-000000_a/up.sql", "A"),
            entry("2024-01-02-000000_b/up.sql", "B"),
        ],
        Format::Prisma => vec![
            entry("1_a/migration.sql", "A"),
            entry("2_b/migration.sql", "B"),
        ],
        Format::Dbmate => vec![
            entry("1_a.sql", "-- migrate:up\nA"),
            entry("2_b.sql", "-- migrate:up\nB"),
        ],
        Format::Goose => vec![
            entry("1_a.sql", "-- +goose Up\nA"),
            entry("2_b.sql", "-- +goose Up\nB"),
        ],
        Format::Flyway => vec![entry("V1__it's.sql", "A"), entry("R__b.sql", "B")],
    };
    layout::read(&entries, Some(format)).unwrap().migrations
}

fn read_back(conn: &rusqlite::Connection, tool: &ToolLedger) -> Vec<String> {
    let mut stmt = conn.prepare(&tool.select()).unwrap();
    let rows: Vec<Vec<Option<String>>> = stmt
        .query_map([], |r| {
            (0..r.as_ref().column_count()).map(|i| r.get(i)).collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tool.applied(&rows)
}

#[test]
fn every_tool_reads_back_what_was_recorded_in_its_table() {
    for format in Format::ALL {
        let files = files(format);
        let tool = ToolLedger::new(format, Dialect::Sqlite, &files).unwrap();
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&tool.create()).unwrap();
        assert_eq!(read_back(&conn, &tool), Vec::<String>::new(), "{format:?}");
        conn.execute_batch(&tool.record(&files[0])).unwrap();
        assert_eq!(
            read_back(&conn, &tool),
            [files[0].name.clone()],
            "{format:?}"
        );
        // Created twice, as apply does, and recorded once more.
        conn.execute_batch(&tool.create()).unwrap();
        conn.execute_batch(&tool.record(&files[1])).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
        assert_eq!(read_back(&conn, &tool), names, "{format:?}");
    }
}

#[test]
fn golang_migrate_keeps_one_row_and_a_dirty_version_is_not_applied() {
    let files = files(Format::GolangMigrate);
    let tool = ToolLedger::new(Format::GolangMigrate, Dialect::Sqlite, &files).unwrap();
    let row = |v: &str, dirty: &str| vec![Some(v.to_string()), Some(dirty.to_string())];
    assert_eq!(
        tool.applied(&[row("10", "0")]),
        ["1_a.up.sql", "10_b.up.sql"]
    );
    assert_eq!(tool.applied(&[row("10", "true")]), ["1_a.up.sql"]);
    assert!(ToolLedger::new(Format::Flat, Dialect::Postgres, &files).is_none());
}

#[test]
fn a_row_only_one_ledger_has_names_the_other() {
    let ours = vec![
        ("a".to_string(), "c".to_string()),
        ("b".to_string(), "c".to_string()),
    ];
    let ledger = merge(ours, Some(("t", vec!["a".to_string(), "z".to_string()])));
    let rows: Vec<(&str, Option<&str>)> = ledger
        .rows
        .iter()
        .map(|r| (r.name.as_str(), r.missing_from))
        .collect();
    assert_eq!(rows, [("a", None), ("z", Some(OURS)), ("b", Some("t"))]);
    assert_eq!(ledger.rows[1].checksum, None);
}

#[test]
fn prisma_ids_are_uuid_shaped_and_distinct() {
    let (a, b) = (uuid("x"), uuid("y"));
    assert_eq!(a.len(), 36);
    assert_eq!(a.matches('-').count(), 4);
    assert_ne!(a, b);
}
