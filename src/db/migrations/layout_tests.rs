use super::*;

fn entry(path: &str, text: &str) -> Entry {
    Entry {
        path: path.into(),
        bytes: text.as_bytes().to_vec(),
    }
}

fn names(read: &Read) -> Vec<&str> {
    read.migrations.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn each_layout_is_recognised_and_only_its_up_part_applied() {
    let cases: Vec<(Vec<Entry>, Format, Vec<&str>)> = vec![
        (
            vec![
                entry("0002_b.sql", "B"),
                entry("0001_a.sql", "A"),
                entry("README.md", ""),
            ],
            Format::Flat,
            vec!["0001_a.sql", "0002_b.sql"],
        ),
        (
            vec![
                entry("10_c.up.sql", "C"),
                entry("10_c.down.sql", "drop"),
                entry("9_b.up.sql", "B"),
                entry("9_b.down.sql", "drop"),
            ],
            Format::GolangMigrate,
            vec!["9_b.up.sql", "10_c.up.sql"],
        ),
        (
            vec![
                entry("2024-01-02-000000_b/up.sql", "B"),
                entry("2024-01-02-000000_b/down.sql", "drop"),
                entry("2024-01-01-000000_a/up.sql", "A"),
                entry(".keep", ""),
            ],
            Format::Diesel,
            vec!["2024-01-01-000000_a/up.sql", "2024-01-02-000000_b/up.sql"],
        ),
        (
            vec![
                entry("20240101_init/migration.sql", "A"),
                entry("migration_lock.toml", "provider = \"postgresql\"\n"),
            ],
            Format::Prisma,
            vec!["20240101_init/migration.sql"],
        ),
        (
            vec![entry(
                "20240101_a.sql",
                "-- migrate:up\nA\n-- migrate:down\nD\n",
            )],
            Format::Dbmate,
            vec!["20240101_a.sql"],
        ),
        (
            vec![
                entry("00002_b.sql", "-- +goose Up\nB\n"),
                entry("1_a.sql", "-- +goose Up\nA\n"),
            ],
            Format::Goose,
            vec!["1_a.sql", "00002_b.sql"],
        ),
        (
            vec![
                entry("V10__c.sql", "C"),
                entry("V2__b.sql", "B"),
                entry("U2__b.sql", "undo"),
                entry("R__views.sql", "V"),
            ],
            Format::Flyway,
            vec!["V2__b.sql", "V10__c.sql", "R__views.sql"],
        ),
    ];
    for (entries, format, want) in cases {
        let read = read(&entries, None).unwrap();
        assert_eq!(read.format, format);
        assert_eq!(names(&read), want, "{format:?}");
        assert!(
            read.migrations
                .iter()
                .all(|m| !m.up.contains("drop") && !m.up.contains('D')),
            "{format:?}: a down part is applied"
        );
    }
}

#[test]
fn flat_checksums_keep_their_value_and_sections_checksum_their_up_part() {
    let read = read(&[entry("0001_a.sql", "A\r\n")], None).unwrap();
    assert_eq!(read.migrations[0].checksum, hash::of(b"A\n"));
    let one = "-- migrate:up\nA\n-- migrate:down\nD\n";
    let other = "-- migrate:up\nA\n-- migrate:down\nchanged\n";
    let checksum = |text| read_one(text).checksum;
    assert_eq!(checksum(one), checksum(other));
    assert_ne!(checksum(one), checksum("-- migrate:up\nB\n"));
}

fn read_one(text: &str) -> Migration {
    read(&[entry("1_a.sql", text)], None)
        .unwrap()
        .migrations
        .remove(0)
}

#[test]
fn versions_are_the_tools_own() {
    let read = read(
        &[
            entry("2017-12-05-152347_users/up.sql", "A"),
            entry(
                "2017-12-05-152347_users/metadata.toml",
                "run_in_transaction = false\n",
            ),
        ],
        None,
    )
    .unwrap();
    assert_eq!(read.migrations[0].version, "20171205152347");
    assert!(read.migrations[0].no_transaction.is_some());
    let sqlx = super::read(
        &[entry("0042_a.up.sql", "-- no-transaction\nA")],
        Some(Format::Sqlx),
    )
    .unwrap();
    assert_eq!(sqlx.migrations[0].version, "42");
    assert!(sqlx.migrations[0].no_transaction.is_some());
    let flyway = super::read(&[entry("V1_2__a.sql", "A")], None).unwrap();
    assert_eq!(flyway.migrations[0].version, "1.2");
}

#[test]
fn skipped_sql_and_mixed_layouts_are_errors() {
    let err = read(&[entry("1_a.up.sql", "A"), entry("2_b.sql", "B")], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mixes layouts: 1_a.up.sql (up/down files) and 2_b.sql (flat *.sql); keep one layout per folder, or set `[database] format` in provision.toml"
    );
    let err = read(&[entry("x/seed.sql", "A"), entry("y/up.sql", "B")], None).unwrap_err();
    assert!(
        matches!(err, LayoutError::Stray { ref file, .. } if file == "x/seed.sql"),
        "{err}"
    );
    let err = read(&[entry("a.sql", "A")], Some(Format::GolangMigrate)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("a.sql is not a migration of the golang-migrate layout")
    );
    let err = read(&[entry("x_a.up.sql", "A")], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x_a.up.sql: the golang-migrate layout names files `<number>_<name>.up.sql`"
    );
    let err = read(
        &[entry("1_a.up.sql", "A"), entry("001_b.up.sql", "B")],
        None,
    )
    .unwrap_err();
    assert!(matches!(err, LayoutError::SameVersion { .. }), "{err}");
    let err = read(
        &[entry("1_a.sql", "-- migrate:down\nx\n-- migrate:up\n")],
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("1_a.sql: `-- migrate:down` comes before"),
        "{err}"
    );
}

#[test]
fn files_no_layout_applies_are_listed() {
    let read = read(&[entry("1_users.rb", ""), entry(".gitkeep", "")], None).unwrap();
    assert!(read.migrations.is_empty());
    assert_eq!(read.unrecognised, ["1_users.rb"]);
    assert_eq!(read.format, Format::Flat);
}
