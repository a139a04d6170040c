//! A database whose applied migrations the branch's no longer extend: an
//! applied migration edited, or one merged in that sorts before an applied
//! one. `apply` and `verify` say what diverged in the same words; `apply`
//! brings everything else up to date; `db reset` (or `on_divergence =
//! "rebuild"`) builds the database anew, keeping the old one aside until
//! the next `gc`. SQLite and PostgreSQL alike.

use std::path::{Path, PathBuf};

use crate::pg_server::server;
use crate::support::{Run, TestEnv, read, sqlite, write};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// The fixture app with `[database]` of `kind` (PostgreSQL databases named
/// `t_<tag>_<slug>`) plus `extra` lines, and its sandbox `feature`.
fn app(env: &TestEnv, kind: Kind, tag: &str, extra: &str) -> (PathBuf, PathBuf) {
    let main = env.fixture_repo("app");
    let database = match kind {
        Kind::Sqlite => format!("[database]\n{extra}"),
        Kind::Postgres => format!(
            "[database]\nkind = \"postgres\"\nurl = \"{}\"\nname = \"t_{tag}_{{slug}}\"\n{extra}",
            server().url()
        ),
    };
    write(main.join("provision.toml"), &database);
    env.commit_all(&main, "recipe");
    env.provision(&main, &["new", "feature"]).expect(0);
    (main, env.path("worktree-feature"))
}

fn db_name(kind: Kind, tag: &str) -> String {
    match kind {
        Kind::Sqlite => "app_feature".into(),
        Kind::Postgres => format!("t_{tag}_feature"),
    }
}

/// The names in provision's ledger, in the order applied.
fn ledger(kind: Kind, main: &Path, db: &str) -> Vec<String> {
    match kind {
        Kind::Sqlite => {
            let conn = sqlite(main, db);
            let mut stmt = conn
                .prepare("SELECT name FROM provision_migrations ORDER BY rowid")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        }
        Kind::Postgres => server()
            .client(db)
            .query("SELECT name FROM provision_migrations ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect(),
    }
}

fn database_exists(kind: Kind, main: &Path, db: &str) -> bool {
    match kind {
        Kind::Sqlite => main
            .join(".git/provision/sqlite")
            .join(format!("{db}.sqlite"))
            .is_file(),
        Kind::Postgres => server()
            .client("postgres")
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
            .unwrap()
            .is_some(),
    }
}

/// The PostgreSQL database's mark (its comment).
fn pg_mark(db: &str) -> Option<String> {
    server()
        .client("postgres")
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .unwrap()
        .get(0)
}

/// The recipe changes while the database has diverged: a new linked file
/// and a new env override, which `apply` must bring in all the same.
fn change_links_and_env(main: &Path, tag: &str) {
    write(main.join(".secrets"), "TOKEN=1\n");
    let include = read(main.join(".worktreeinclude"));
    write(
        main.join(".worktreeinclude"),
        &format!("{include}.secrets\n"),
    );
    let recipe = read(main.join("provision.toml"));
    write(
        main.join("provision.toml"),
        &format!(
            "[env.vars]\nDB_NAME = \"{{db}}\"\nPORT = \"{{port}}\"\nEXTRA = \"{tag}\"\n\n{recipe}"
        ),
    );
}

fn assert_links_and_env_up_to_date(wt: &Path, tag: &str) {
    let link = wt.join(".secrets");
    assert!(
        link.symlink_metadata().unwrap().file_type().is_symlink(),
        "the new link is made"
    );
    let lock: serde_json::Value = serde_json::from_str(&read(wt.join("provision.lock"))).unwrap();
    let file = lock["env"]["file"].as_str().unwrap();
    assert!(
        read(wt.join(file)).contains(&format!("EXTRA={tag}")),
        "the env file has the new override"
    );
}

fn assert_diverged(run: &Run, what: &str) -> String {
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(
        text.contains("no longer matches this branch's migrations")
            && text.contains(what)
            && text.contains("`provision db reset`"),
        "{text}"
    );
    // The one wording, from `no longer` to the end of its line.
    let at = text.find("no longer matches").unwrap();
    text[at..].lines().next().unwrap().to_string()
}

fn edited_then_reset(kind: Kind, tag: &str) {
    let env = TestEnv::new();
    let (main, wt) = app(&env, kind, tag, "");
    let db = db_name(kind, tag);
    // A migration of the branch's own, applied, then edited (unmerged).
    let mine = wt.join("migrations/0003_feature.sql");
    write(&mine, "CREATE TABLE feature(x int);\n");
    env.provision(&wt, &["apply"]).expect(0);
    write(&mine, "CREATE TABLE feature(x int, y int);\n");
    change_links_and_env(&main, tag);

    let verify = env.provision(&wt, &["verify"]).expect(1);
    let said = assert_diverged(&verify, "0003_feature.sql was edited after it was applied");
    assert!(
        verify
            .stdout
            .contains("`provision db reset` rebuilds the database")
    );
    let dry = env.provision(&wt, &["apply", "--dry-run"]).expect(0);
    assert!(dry.stderr.contains(&said), "{}", dry.stderr);
    let apply = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        apply
            .stderr
            .contains(&format!("error: database {db} {said}")),
        "same words: {}",
        apply.stderr
    );
    assert_links_and_env_up_to_date(&wt, tag);
    // The database is left as it was, and the lock says so.
    assert_eq!(
        ledger(kind, &main, &db),
        [
            "0001_create_users.sql",
            "0002_create_posts.sql",
            "0003_feature.sql"
        ]
    );
    let verify = env.provision(&wt, &["verify"]).expect(1);
    assert_eq!(assert_diverged(&verify, "0003_feature.sql"), said);

    let reset = env.provision(&wt, &["db", "reset", "--json"]).expect(0);
    let report = reset.json();
    let aside = report["set_aside"]["database"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(aside.starts_with(&format!("{db}_aside_")), "{report}");
    assert!(
        report["set_aside"]["restore"]
            .as_str()
            .unwrap()
            .contains(&aside)
    );
    env.provision(&wt, &["verify"]).expect(0);
    assert_links_and_env_up_to_date(&wt, tag);
    assert!(database_exists(kind, &main, &aside), "kept aside");
    if kind == Kind::Postgres {
        assert_eq!(
            pg_mark(&aside),
            pg_mark(&db),
            "still marked as the sandbox's"
        );
        server()
            .client(&db)
            .batch_execute("INSERT INTO feature(x, y) VALUES (1, 2)")
            .unwrap();
    } else {
        sqlite(&main, &db)
            .execute_batch("INSERT INTO feature(x, y) VALUES (1, 2)")
            .unwrap();
    }

    // Kept until the next gc, which drops it (and only it).
    let dry = env.provision(&main, &["gc", "--dry-run"]).expect(0);
    assert!(dry.stdout.contains(&aside) && dry.stdout.contains("would drop it"));
    assert!(database_exists(kind, &main, &aside));
    let gc = env.provision(&main, &["gc"]).expect(0);
    assert!(gc.stdout.contains("dropped"), "{}", gc.stdout);
    assert!(!database_exists(kind, &main, &aside));
    assert!(database_exists(kind, &main, &db));
    env.provision(&wt, &["verify"]).expect(0);
    env.provision(&main, &["remove", "feature", "--force"])
        .expect(0);
}

#[test]
fn sqlite_an_edited_applied_migration_then_db_reset() {
    edited_then_reset(Kind::Sqlite, "dv_edit");
}

#[test]
fn postgres_an_edited_applied_migration_then_db_reset() {
    edited_then_reset(Kind::Postgres, "dv_edit");
}

/// The branch applies a migration of its own, then merges the main branch,
/// which brings one that sorts before it.
fn merge_brings_an_earlier_migration(kind: Kind, tag: &str, rebuild: bool) {
    let env = TestEnv::new();
    let extra = if rebuild {
        "on_divergence = \"rebuild\"\n"
    } else {
        ""
    };
    let (main, wt) = app(&env, kind, tag, extra);
    let db = db_name(kind, tag);
    write(
        wt.join("migrations/0005_feature.sql"),
        "CREATE TABLE feature(x int);\n",
    );
    env.commit_all(&wt, "feature migration");
    env.provision(&wt, &["apply"]).expect(0);
    write(
        main.join("migrations/0003_main.sql"),
        "CREATE TABLE from_main(x int);\n",
    );
    env.commit_all(&main, "main migration");
    env.git(&wt, &["merge", "-q", "--no-edit", "main"]);
    change_links_and_env(&main, tag);

    let what = "0003_main.sql is new but sorts before the applied 0005_feature.sql";
    if rebuild {
        let run = env.provision(&wt, &["apply", "--json"]).expect(0);
        assert!(
            run.stderr.contains(what) && run.stderr.contains("it is rebuilt"),
            "{}",
            run.stderr
        );
        let aside = run.json()["set_aside"]["database"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(database_exists(kind, &main, &aside));
        assert_eq!(
            ledger(kind, &main, &db),
            [
                "0001_create_users.sql",
                "0002_create_posts.sql",
                "0003_main.sql",
                "0005_feature.sql"
            ]
        );
        env.provision(&wt, &["verify"]).expect(0);
    } else {
        let verify = env.provision(&wt, &["verify"]).expect(1);
        let said = assert_diverged(&verify, what);
        let run = env.provision(&wt, &["apply"]).expect(2);
        assert!(run.stderr.contains(&said), "{}", run.stderr);
        assert_eq!(
            ledger(kind, &main, &db),
            [
                "0001_create_users.sql",
                "0002_create_posts.sql",
                "0005_feature.sql"
            ]
        );
    }
    assert_links_and_env_up_to_date(&wt, tag);
    env.provision(&main, &["gc"]).expect(0);
    env.provision(&main, &["remove", "feature", "--force"])
        .expect(0);
}

#[test]
fn sqlite_a_merged_earlier_migration_is_refused() {
    merge_brings_an_earlier_migration(Kind::Sqlite, "dv_refuse", false);
}

#[test]
fn sqlite_a_merged_earlier_migration_is_rebuilt() {
    merge_brings_an_earlier_migration(Kind::Sqlite, "dv_rebuild", true);
}

#[test]
fn postgres_a_merged_earlier_migration_is_refused() {
    merge_brings_an_earlier_migration(Kind::Postgres, "dv_refuse", false);
}

#[test]
fn postgres_a_merged_earlier_migration_is_rebuilt() {
    merge_brings_an_earlier_migration(Kind::Postgres, "dv_rebuild", true);
}

/// The main checkout's database is the user's own data: `on_divergence =
/// "rebuild"` (meant for agents' sandboxes) leaves it, and one set aside
/// there by hand is never collected by a `gc` some agent runs.
#[test]
fn the_main_checkouts_database_is_rebuilt_only_by_hand_and_gc_keeps_it_aside() {
    let env = TestEnv::new();
    let (main, _) = app(&env, Kind::Sqlite, "main", "on_divergence = \"rebuild\"\n");
    write(
        main.join("migrations/0005_mine.sql"),
        "CREATE TABLE mine(x int);\n",
    );
    env.provision(&main, &["apply"]).expect(0);
    sqlite(&main, "app_main")
        .execute_batch("INSERT INTO mine VALUES (42);")
        .unwrap();
    // Merged in, sorting before the one applied.
    write(
        main.join("migrations/0003_theirs.sql"),
        "CREATE TABLE theirs(x int);\n",
    );
    let run = env.provision(&main, &["apply"]).expect(2);
    assert!(
        run.stderr
            .contains("never rebuilds the main checkout's database on its own"),
        "{}",
        run.stderr
    );
    let kept: i64 = sqlite(&main, "app_main")
        .query_row("SELECT x FROM mine", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 42);

    env.provision(&main, &["db", "reset"]).expect(0);
    let gc = env
        .provision(&env.path("worktree-feature"), &["gc", "--json"])
        .expect(0)
        .json();
    let fate = &gc["set_aside"][0];
    assert!(
        fate["done"]
            .as_str()
            .unwrap()
            .starts_with("kept: the main checkout's data is never collected"),
        "{gc}"
    );
    let aside = fate["database"].as_str().unwrap();
    let kept: i64 = sqlite(&main, aside)
        .query_row("SELECT x FROM mine", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 42);
}

/// A database an app keeps in WAL mode, with changes still in its WAL
/// (the app has it open): set aside, its file alone holds them, so no kill
/// between moving the WAL and moving the file can part them.
#[test]
fn a_database_in_wal_mode_is_set_aside_with_its_changes_in_the_file() {
    let env = TestEnv::new();
    let (main, wt) = app(&env, Kind::Sqlite, "wal", "");
    let app_conn = sqlite(&main, "app_feature");
    app_conn.pragma_update(None, "journal_mode", "wal").unwrap();
    app_conn
        .execute_batch("CREATE TABLE notes(x int); INSERT INTO notes VALUES (7);")
        .unwrap();
    let report = env
        .provision(&wt, &["db", "reset", "--json"])
        .expect(0)
        .json();
    let aside = report["set_aside"]["database"].as_str().unwrap();
    let dir = main.join(".git/provision/sqlite");
    // The file alone, away from anything beside it.
    let alone = env.path("alone.sqlite");
    fs_err::copy(dir.join(format!("{aside}.sqlite")), &alone).unwrap();
    let kept: i64 = rusqlite::Connection::open(&alone)
        .unwrap()
        .query_row("SELECT x FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 7);
    drop(app_conn);
}
