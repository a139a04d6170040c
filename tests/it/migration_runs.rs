//! How migrations run: atomic with their ledger rows when the file opens
//! its own transaction, outside one when a marker says so, each on a
//! PostgreSQL session reset from the one before; and folders provision
//! will not call ready over: mixed, stray or missing.

use std::path::{Path, PathBuf};

use crate::layouts::{Db, query, repo};
use crate::support::{TestEnv, read, write};

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(path, text)| (format!("migrations/{path}"), text.to_string()))
        .collect()
}

fn tables(db: Db, main: &Path, tag: &str, name: &str) -> String {
    let sql = match db {
        Db::Sqlite => format!("SELECT count(*) FROM sqlite_master WHERE name = '{name}'"),
        Db::Postgres => format!("SELECT count(*) FROM pg_class WHERE relname = '{name}'"),
    };
    query(db, main, tag, &sql)
}

fn recorded(db: Db, main: &Path, tag: &str) -> String {
    query(db, main, tag, "SELECT count(*) FROM provision_migrations")
}

/// golang-migrate's habit: `BEGIN; … COMMIT;` in the file. A failing one
/// leaves neither its changes nor its ledger row; a fixed one applies.
fn own_transaction_is_atomic(db: Db, tag: &str) {
    let env = TestEnv::new();
    let up = "BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\n";
    let main = repo(
        &env,
        db,
        tag,
        "",
        &files(&[("1_a.up.sql", up), ("1_a.down.sql", "DROP TABLE a;\n")]),
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let broken = "BEGIN;\nCREATE TABLE b (x int);\nINSERT INTO nowhere VALUES (1);\nCOMMIT;\n";
    write(wt.join("migrations/2_b.up.sql"), broken);
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains("error: migration 2_b.up.sql failed: "),
        "{}",
        run.stderr
    );
    assert_eq!(tables(db, &main, tag, "b"), "0");
    assert_eq!(recorded(db, &main, tag), "1");
    write(
        wt.join("migrations/2_b.up.sql"),
        "BEGIN;\nCREATE TABLE b (x int);\nCOMMIT;\n",
    );
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(tables(db, &main, tag, "b"), "1");
    assert_eq!(recorded(db, &main, tag), "2");
    env.provision(&wt, &["verify"]).expect(0);

    write(
        wt.join("migrations/3_c.up.sql"),
        "BEGIN;\nCREATE TABLE c (x int);\nCOMMIT;\n\nBEGIN;\nCREATE TABLE d (x int);\nCOMMIT;\n",
    );
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr
            .contains("error: migration 3_c.up.sql failed: line 5: a second transaction;"),
        "{}",
        run.stderr
    );
    assert_eq!(tables(db, &main, tag, "c"), "0");
}

#[test]
fn a_migration_with_its_own_transaction_is_atomic_on_sqlite() {
    own_transaction_is_atomic(Db::Sqlite, "own_s");
}

#[test]
fn a_migration_with_its_own_transaction_is_atomic_on_postgres() {
    own_transaction_is_atomic(Db::Postgres, "own_p");
}

#[test]
fn a_pg_dump_style_migration_that_empties_search_path_is_recorded_and_so_is_the_next() {
    let env = TestEnv::new();
    let tag = "dump";
    let dump = "SET statement_timeout = 0;\nSET client_min_messages = warning;\n\
                SELECT pg_catalog.set_config('search_path', '', false);\n\
                CREATE TABLE public.accounts (id integer NOT NULL);\n";
    let main = repo(
        &env,
        Db::Postgres,
        tag,
        "",
        &files(&[
            ("0001_dump.sql", dump),
            ("0002_next.sql", "CREATE TABLE notes (id int);\n"),
        ]),
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    assert_eq!(recorded(Db::Postgres, &main, tag), "2");
    // The second one ran with the search_path a fresh session has.
    assert_eq!(
        query(
            Db::Postgres,
            &main,
            tag,
            "SELECT relnamespace::regnamespace FROM pg_class WHERE relname = 'notes'"
        ),
        "public"
    );
    env.provision(&env.path("worktree-feature"), &["verify"])
        .expect(0);
}

#[test]
fn a_migration_outside_a_transaction_that_fails_is_not_recorded_and_says_what_stays() {
    let env = TestEnv::new();
    let tag = "outside";
    let first = "-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n";
    let main = repo(
        &env,
        Db::Postgres,
        tag,
        "",
        &files(&[("20240101_t.sql", first)]),
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    write(
        wt.join("migrations/20240102_index.sql"),
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX broken ON nowhere (a);\n-- migrate:down\n",
    );
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains("error: migration 20240102_index.sql failed: line 3: ERROR: relation \"nowhere\" does not exist (it ran outside a transaction (its marker `-- migrate:up transaction:false`), so the statements before this one stay applied; it is not recorded)"),
        "{}",
        run.stderr
    );
    assert_eq!(tables(Db::Postgres, &main, tag, "t_a"), "1");
    assert_eq!(recorded(Db::Postgres, &main, tag), "1");
}

fn new_fails(env: &TestEnv, main: &Path) -> String {
    let run = env.provision(main, &["new", "feature"]).expect(2);
    run.stderr
}

#[test]
fn folders_provision_would_skip_migrations_of_are_errors_naming_them() {
    let env = TestEnv::new();
    let main = repo(
        &env,
        Db::Sqlite,
        "mixed",
        "",
        &files(&[
            ("0001_a.sql", "SELECT 1;"),
            ("2024-01-01-000000_b/up.sql", "SELECT 1;"),
        ]),
    );
    let stderr = new_fails(&env, &main);
    assert!(
        stderr.contains("migrations folder migrations/: mixes layouts: 0001_a.sql (flat *.sql) and 2024-01-01-000000_b/up.sql (diesel folders)"),
        "{stderr}"
    );
}

#[test]
fn sql_a_forced_format_does_not_apply_is_an_error() {
    let env = TestEnv::new();
    let main = repo(
        &env,
        Db::Sqlite,
        "stray",
        "format = \"golang-migrate\"\n",
        &files(&[("1_a.up.sql", "SELECT 1;"), ("seed.sql", "SELECT 2;")]),
    );
    let stderr = new_fails(&env, &main);
    assert!(
        stderr.contains("migrations folder migrations/: seed.sql is not a migration of the golang-migrate layout and would be skipped"),
        "{stderr}"
    );
}

#[test]
fn a_configured_folder_that_does_not_exist_is_an_error() {
    let env = TestEnv::new();
    let main = repo(
        &env,
        Db::Sqlite,
        "none",
        "migrations = \"db/migrations\"\n",
        &[],
    );
    let stderr = new_fails(&env, &main);
    assert!(
        stderr.contains("migrations folder db/migrations/ does not exist (provision.toml sets `[database] migrations`)"),
        "{stderr}"
    );
}

#[test]
fn a_folder_of_files_that_are_no_sql_migrations_is_a_warning() {
    let env = TestEnv::new();
    let main = repo(
        &env,
        Db::Sqlite,
        "rb",
        "",
        &files(&[("20240101_users.rb", "class Users; end\n")]),
    );
    let run = env.provision(&main, &["new", "feature"]).expect(0);
    assert!(
        run.stderr.contains(
            "migrations/ holds 1 file(s) but no SQL migration provision applies (20240101_users.rb)"
        ),
        "{}",
        run.stderr
    );
}

/// The folder the lock's migrations came from is gone: one finding.
#[test]
fn verify_names_a_missing_folder_once() {
    let env = TestEnv::new();
    let main: PathBuf = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    fs_err::remove_dir_all(wt.join("migrations")).unwrap();
    let run = env.provision(&wt, &["verify", "--json"]).expect(1);
    let findings = run.json()["findings"].clone();
    assert_eq!(
        findings,
        serde_json::json!([{
            "kind": "drift",
            "subject": "migrations folder migrations/",
            "message": "missing: the lock records 2 migration(s) from it",
        }]),
        "{}",
        run.stdout
    );
}

/// `init` reads the folder as apply will: diesel.toml's folder, in the
/// diesel layout; `new` then applies it and keeps diesel's ledger.
#[test]
fn init_writes_the_layout_it_finds_and_new_applies_it() {
    let env = TestEnv::new();
    let main = env.path("app");
    fs_err::create_dir_all(&main).unwrap();
    env.git(&main, &["init", "-q", "-b", "main"]);
    write(
        main.join("diesel.toml"),
        "[migrations_directory]\ndir = \"db/schema\"\n",
    );
    for (folder, sql) in [
        (
            "2024-01-01-000000_users",
            "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
        ),
        (
            "2024-01-02-000000_posts",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n",
        ),
    ] {
        fs_err::create_dir_all(main.join("db/schema").join(folder)).unwrap();
        write(main.join("db/schema").join(folder).join("up.sql"), sql);
        write(
            main.join("db/schema").join(folder).join("down.sql"),
            "DROP TABLE nothing;\n",
        );
    }
    env.provision(&main, &["init"]).expect(0);
    let recipe = read(main.join("provision.toml"));
    assert!(
        recipe.contains("migrations = \"db/schema\"   # 2 migration(s), found as diesel (diesel.toml) keeps them\nformat = \"diesel\""),
        "{recipe}"
    );
    env.commit_all(&main, "app");
    env.provision(&main, &["new", "feature"]).expect(0);
    assert_eq!(
        query(
            Db::Sqlite,
            &main,
            "",
            "SELECT group_concat(version, ',') FROM __diesel_schema_migrations"
        ),
        "20240101000000,20240102000000"
    );
}

/// Flyway's repeatable migrations run after the versioned ones, and again
/// whenever they change: verify calls a changed one stale, not edited.
#[test]
fn a_changed_flyway_repeatable_runs_again_after_the_versioned_ones() {
    for (db, tag) in [(Db::Sqlite, "repeat_s"), (Db::Postgres, "repeat_p")] {
        let env = TestEnv::new();
        let view = |columns: &str| {
            format!("DROP VIEW IF EXISTS v;\nCREATE VIEW v AS SELECT {columns} FROM t;\n")
        };
        let main = repo(
            &env,
            db,
            tag,
            "",
            &files(&[
                ("V1__t.sql", "CREATE TABLE t (a int, b int);\n"),
                ("R__v.sql", &view("a")),
            ]),
        );
        env.provision(&main, &["new", "feature"]).expect(0);
        let wt = env.path("worktree-feature");
        write(
            wt.join("migrations/V2__c.sql"),
            "ALTER TABLE t ADD COLUMN c int;\n",
        );
        write(wt.join("migrations/R__v.sql"), &view("a, b, c"));
        let run = env.provision(&wt, &["verify"]).expect(1);
        assert!(
            run.stdout.lines().any(|l| l.starts_with("stale migration R__v.sql ")
                && l.ends_with("changed since it was applied: `provision apply` applies it again (a repeatable migration)")),
            "{}",
            run.stdout
        );
        let run = env.provision(&wt, &["apply", "--json"]).expect(0);
        assert_eq!(
            run.json()["actions"][0],
            serde_json::json!({"action": "migrate", "names": ["V2__c.sql", "R__v.sql"]}),
            "{}",
            run.stdout
        );
        env.provision(&wt, &["verify"]).expect(0);
        assert_eq!(
            query(
                db,
                &main,
                tag,
                "SELECT count(*) FROM flyway_schema_history WHERE script = 'R__v.sql'"
            ),
            "2"
        );
        assert_eq!(
            query(db, &main, tag, "SELECT count(*) FROM provision_migrations"),
            "3"
        );
        // The view has c: it ran after V2.
        query(db, &main, tag, "SELECT count(c) FROM v");
    }
}

/// An older provision left its ledger in the first schema of
/// `search_path`: read as none, every migration would run again.
#[test]
fn a_ledger_outside_public_is_named_never_read_as_empty() {
    let env = TestEnv::new();
    let tag = "elsewhere";
    let main = repo(
        &env,
        Db::Postgres,
        tag,
        "",
        &files(&[("0001_a.sql", "CREATE TABLE a (x int);\n")]),
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    crate::pg_server::server()
        .client(&format!("t_{tag}_feature"))
        .batch_execute("CREATE SCHEMA old; ALTER TABLE provision_migrations SET SCHEMA old;")
        .unwrap();
    let wt = env.path("worktree-feature");
    for args in [&["apply"][..], &["verify"]] {
        let run = env.provision(&wt, args).expect(2);
        assert!(
            run.stderr.contains(
                "database `t_elsewhere_feature` keeps provision's ledger in schema `old`"
            ),
            "{}",
            run.stderr
        );
    }
    assert_eq!(tables(Db::Postgres, &main, tag, "a"), "1");
}
