//! Every migrations layout provision reads, generated as its tool writes it
//! (32 migrations with triggers, functions, `DO` blocks, a contrib
//! extension and `CREATE INDEX CONCURRENTLY` on PostgreSQL; triggers and a
//! table rebuilt in the file's own transaction on SQLite), applied on both
//! databases: only the "up" parts, in the tool's order, verify clean, and
//! an edited migration caught by name. Every "down" part is a statement
//! that fails, so applying one fails the test.

use std::path::{Path, PathBuf};

use crate::pg_server::server;
use crate::support::{TestEnv, read, sqlite, write};

const COUNT: usize = 32;
const DOWN: &str = "DROP TABLE a_down_part_was_applied;\n";

#[derive(Clone, Copy, PartialEq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A repository of its own with `recipe` (the `[database]` keys after
/// `kind`) and `files`, committed.
pub fn repo(env: &TestEnv, db: Db, tag: &str, recipe: &str, files: &[(String, String)]) -> PathBuf {
    let main = env.path("app");
    fs_err::create_dir_all(&main).unwrap();
    env.git(&main, &["init", "-q", "-b", "main"]);
    let kind = match db {
        Db::Sqlite => String::new(),
        Db::Postgres => format!(
            "kind = \"postgres\"\nurl = \"{}\"\nname = \"t_{tag}_{{slug}}\"\n",
            server().url()
        ),
    };
    write(
        main.join("provision.toml"),
        &format!("[database]\n{kind}{recipe}"),
    );
    for (path, text) in files {
        let at = main.join(path);
        fs_err::create_dir_all(at.parent().unwrap()).unwrap();
        write(at, text);
    }
    env.commit_all(&main, "app");
    main
}

/// The first column of the first row of `sql`, as text, in the sandbox
/// `feature` of `main`.
pub fn query(db: Db, main: &Path, tag: &str, sql: &str) -> String {
    match db {
        Db::Sqlite => sqlite(main, "app_feature")
            .query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| match v {
                rusqlite::types::Value::Integer(n) => n.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap(),
        Db::Postgres => server()
            .client(&format!("t_{tag}_feature"))
            .query_one(&format!("SELECT ({sql})::text"), &[])
            .unwrap()
            .get(0),
    }
}

/// The up part of migration `i`: each kind of statement in turn.
fn up(db: Db, i: usize) -> String {
    let (a, b, c) = (
        i.saturating_sub(1),
        i.saturating_sub(2),
        i.saturating_sub(3),
    );
    match (db, i % 4) {
        (Db::Postgres, _) if i == 0 => "CREATE EXTENSION IF NOT EXISTS citext;\n\
             CREATE TABLE t0 (id bigserial PRIMARY KEY, email citext NOT NULL UNIQUE);\n"
            .into(),
        (Db::Sqlite, _) if i == 0 => {
            "CREATE TABLE t0 (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n".into()
        }
        (Db::Postgres, 1) => format!(
            "CREATE TABLE t{i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  \
             parent bigint REFERENCES t0(id), body text DEFAULT 'a;b', updated_at timestamptz DEFAULT now());\n"
        ),
        (Db::Sqlite, 1) => format!(
            "CREATE TABLE t{i} (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES t0(id),\n  \
             body TEXT DEFAULT 'a;b', updated_at TEXT);\n"
        ),
        (Db::Postgres, 2) => format!(
            "CREATE FUNCTION touch_{i}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  \
             NEW.updated_at := now();\n  RETURN NEW;\nEND;\n$$;\n\
             CREATE TRIGGER tr_{i} BEFORE UPDATE ON t{a} FOR EACH ROW EXECUTE FUNCTION touch_{i}();\n"
        ),
        (Db::Sqlite, 2) => format!(
            "CREATE TRIGGER tr_{i} AFTER UPDATE OF body ON t{a} BEGIN\n  \
             UPDATE t{a} SET updated_at = datetime('now') WHERE id = NEW.id;\nEND;\n"
        ),
        (Db::Postgres, 3) => format!(
            "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood_{i}') THEN\n    \
             CREATE TYPE mood_{i} AS ENUM ('ok', 'sad');\n  END IF;\nEND\n$$;\n\
             ALTER TABLE t{b} ADD COLUMN mood mood_{i};\n"
        ),
        // SQLite's way to change a table: its own transaction, around a
        // pragma that only works outside one.
        (Db::Sqlite, 3) => format!(
            "PRAGMA foreign_keys=off;\nBEGIN TRANSACTION;\nALTER TABLE t{b} ADD COLUMN mood TEXT;\n\
             UPDATE t{b} SET mood = 'ok';\nCOMMIT;\nPRAGMA foreign_keys=on;\n"
        ),
        (Db::Postgres, _) => format!("CREATE INDEX CONCURRENTLY t{c}_body ON t{c} (body);\n"),
        (Db::Sqlite, _) => format!("CREATE INDEX t{c}_body ON t{c} (body);\n"),
    }
}

/// Whether migration `i` needs to run outside a transaction.
fn concurrent(i: usize) -> bool {
    i > 0 && i.is_multiple_of(4)
}

pub type Files = Vec<(String, String)>;

/// The folder as `format`'s tool writes it, under `dir`; and the name of
/// the first migration in provision's ledger.
pub fn layout(db: Db, format: &str, dir: &str) -> (Files, String) {
    let mut files = Files::new();
    let mut add = |path: String, text: String| files.push((format!("{dir}/{path}"), text));
    for i in 0..COUNT {
        let sql = up(db, i);
        let n = i + 1;
        match format {
            "golang-migrate" | "sqlx" => {
                let marker = if format == "sqlx" && concurrent(i) {
                    "-- no-transaction\n"
                } else {
                    ""
                };
                add(format!("{n}_m{i}.up.sql"), format!("{marker}{sql}"));
                add(format!("{n}_m{i}.down.sql"), DOWN.into());
            }
            "diesel" => {
                let folder = format!("2024-01-01-{i:06}_m{i}");
                add(format!("{folder}/up.sql"), sql);
                add(format!("{folder}/down.sql"), DOWN.into());
                if concurrent(i) {
                    add(
                        format!("{folder}/metadata.toml"),
                        "run_in_transaction = false\n".into(),
                    );
                }
            }
            "prisma" => add(format!("20240101{i:06}_m{i}/migration.sql"), sql),
            "dbmate" => {
                let options = if concurrent(i) {
                    " transaction:false"
                } else {
                    ""
                };
                add(
                    format!("20240101{i:06}_m{i}.sql"),
                    format!("-- migrate:up{options}\n{sql}\n-- migrate:down\n{DOWN}"),
                );
            }
            "goose" => {
                let marker = if concurrent(i) {
                    "-- +goose NO TRANSACTION\n"
                } else {
                    ""
                };
                add(
                    format!("{n:05}_m{i}.sql"),
                    format!(
                        "{marker}-- +goose Up\n-- +goose StatementBegin\n{sql}-- +goose StatementEnd\n\n-- +goose Down\n{DOWN}"
                    ),
                );
            }
            "flyway" => {
                add(format!("V{n}__m{i}.sql"), sql);
                add(format!("U{n}__m{i}.sql"), DOWN.into());
            }
            other => panic!("no generator for {other}"),
        }
    }
    match format {
        "prisma" => add(
            "migration_lock.toml".into(),
            "provider = \"postgresql\"\n".into(),
        ),
        "flyway" => add(
            "R__views.sql".into(),
            "CREATE VIEW emails AS SELECT email FROM t0;\n".into(),
        ),
        "diesel" => add(".keep".into(), String::new()),
        _ => {}
    }
    let first = match format {
        "golang-migrate" | "sqlx" => "1_m0.up.sql",
        "diesel" => "2024-01-01-000000_m0/up.sql",
        "prisma" => "20240101000000_m0/migration.sql",
        "dbmate" => "20240101000000_m0.sql",
        "goose" => "00001_m0.sql",
        _ => "V1__m0.sql",
    };
    (files, first.to_string())
}

/// Generates `format`'s folder, builds a sandbox from it on `db`, and
/// checks it: every up part applied once, in order; verify clean; apply
/// idempotent; an edited migration caught by name.
fn applies(format: &str, db: Db) {
    let env = TestEnv::new();
    let tag = format!(
        "layout_{}_{}",
        format.replace('-', "_"),
        if db == Db::Sqlite { "s" } else { "p" }
    );
    let dir = "db/migrations";
    let (files, first) = layout(db, format, dir);
    let recipe = format!("migrations = \"{dir}\"\nformat = \"{format}\"\n");
    // golang-migrate, diesel, Prisma, dbmate, goose and Flyway are found
    // from the files; sqlx shares golang-migrate's and is named.
    let recipe = if format == "sqlx" {
        recipe
    } else {
        format!("migrations = \"{dir}\"\n")
    };
    let main = repo(&env, db, &tag, &recipe, &files);
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");

    let extra = usize::from(format == "flyway");
    let recorded = query(db, &main, &tag, "SELECT count(*) FROM provision_migrations");
    assert_eq!(recorded, (COUNT + extra).to_string(), "{format}");
    let first_row = query(
        db,
        &main,
        &tag,
        "SELECT name FROM provision_migrations ORDER BY rowid LIMIT 1"
            .replace("rowid", if db == Db::Sqlite { "rowid" } else { "id" })
            .as_str(),
    );
    assert_eq!(first_row, first, "{format}: applied first");
    assert_eq!(query(db, &main, &tag, "SELECT count(*) FROM t29"), "0");
    let (sql, want) = tool_ledger(format);
    assert_eq!(query(db, &main, &tag, sql), want, "{format}: {sql}");
    env.provision(&wt, &["verify"]).expect(0);
    let run = env.provision(&wt, &["apply", "--json"]).expect(0);
    assert_eq!(run.json()["actions"], serde_json::json!([]), "{format}");

    // A down part may change freely: it is never applied.
    if let Some((path, _)) = files
        .iter()
        .find(|(p, t)| p.contains("_m1") && t.contains(DOWN))
    {
        let at = wt.join(path);
        write(&at, &read(&at).replace(DOWN, "DROP TABLE t1; -- changed\n"));
        env.provision(&wt, &["verify"]).expect(0);
    }
    let file = wt.join(dir).join(&first);
    write(
        &file,
        &read(&file).replacen("CREATE TABLE t0", "CREATE TABLE t0_edited", 1),
    );
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout.contains(&format!("migration {first}"))
            && run.stdout.contains("edited after it was applied"),
        "{format}: {}",
        run.stdout
    );
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains(&format!(
            "no longer matches this branch's migrations: {first} was edited after it was applied"
        )),
        "{format}: {}",
        run.stderr
    );
}

/// A query of the tool's own ledger, and what it gives once all 32
/// migrations are applied, as the tool would have recorded them.
fn tool_ledger(format: &str) -> (&'static str, &'static str) {
    match format {
        // One row: the last version, clean.
        "golang-migrate" => (
            "SELECT version FROM schema_migrations WHERE NOT dirty",
            "32",
        ),
        "sqlx" => ("SELECT count(*) FROM _sqlx_migrations WHERE success", "32"),
        "diesel" => ("SELECT count(*) FROM __diesel_schema_migrations", "32"),
        "prisma" => (
            "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL \
             AND rolled_back_at IS NULL AND applied_steps_count = 1",
            "32",
        ),
        "dbmate" => ("SELECT count(*) FROM schema_migrations", "32"),
        // Goose's first row is version 0.
        "goose" => (
            "SELECT count(*) FROM goose_db_version WHERE is_applied",
            "33",
        ),
        // And Flyway's repeatable view.
        _ => (
            "SELECT count(*) FROM flyway_schema_history WHERE success",
            "33",
        ),
    }
}

macro_rules! layout_tests {
    ($($name:ident: $format:literal,)*) => {$(
        mod $name {
            use super::*;

            #[test]
            fn applies_on_sqlite() {
                applies($format, Db::Sqlite);
            }

            #[test]
            fn applies_on_postgres() {
                applies($format, Db::Postgres);
            }
        }
    )*};
}

layout_tests! {
    golang_migrate: "golang-migrate",
    sqlx: "sqlx",
    diesel: "diesel",
    prisma: "prisma",
    dbmate: "dbmate",
    goose: "goose",
    flyway: "flyway",
}
