//! The store of migrated states: a new database starts from the entry of
//! the longest cached prefix of its chain and applies only the rest; `gc`
//! collects the entries nothing needs. SQLite and PostgreSQL.

use std::path::{Path, PathBuf};

use crate::pg_server::server;
use crate::support::{TestEnv, write};

/// The fixture app; with `pg`, on the test server as `t_<tag>_<slug>`.
fn app(env: &TestEnv, pg: Option<&str>) -> PathBuf {
    let main = env.fixture_repo("app");
    if let Some(tag) = pg {
        write(
            main.join("provision.toml"),
            &format!(
                "[database]\nkind = \"postgres\"\nurl = \"{}\"\nname = \"t_{tag}_{{slug}}\"\n",
                server().url()
            ),
        );
        env.commit_all(&main, "postgres recipe");
    }
    main
}

/// `new NAME --json`: where its database came from, and what it migrated.
fn new(env: &TestEnv, main: &Path, name: &str) -> (Option<String>, Vec<String>) {
    let report = env
        .provision(main, &["new", name, "--json"])
        .expect(0)
        .json();
    let create = create_action(&report);
    let migrated = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "migrate")
        .flat_map(|a| a["names"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let from = create["from_store"].as_str().map(str::to_string);
    (from, migrated)
}

/// A `--json` report's `create-database` action.
fn create_action(report: &serde_json::Value) -> &serde_json::Value {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "create-database")
        .unwrap()
}

/// The store's entries (not the spare copies PostgreSQL's are given in
/// the background).
fn store_entries(env: &TestEnv, main: &Path) -> Vec<String> {
    let status = env.provision(main, &["status", "--json"]).expect(0).json();
    status["store"]["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .filter(|name| name.starts_with("provision_store_"))
                .collect()
        })
        .unwrap_or_default()
}

fn database_exists(name: &str) -> bool {
    server()
        .client("postgres")
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap()
        .is_some()
}

/// The spare copy of `entry` that `new` has a background process make.
fn wait_for_spare(entry: &str) -> String {
    let hash = entry.trim_start_matches("provision_store_");
    for _ in 0..600 {
        let row = server()
            .client("postgres")
            .query_opt(
                "SELECT datname FROM pg_database WHERE datname LIKE $1 \
                 AND shobj_description(oid, 'pg_database') IS NOT NULL",
                &[&format!("provision\\_spare\\_{hash}\\_%")],
            )
            .unwrap();
        if let Some(row) = row {
            return row.get(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no spare copy of {entry} was made");
}

fn add_migration(env: &TestEnv, main: &Path, name: &str) {
    write(
        main.join("migrations").join(name),
        &format!("CREATE TABLE t_{}(x int);\n", name.trim_end_matches(".sql")),
    );
    env.commit_all(main, name);
}

fn reuse_then_extend(pg: Option<&str>) {
    let env = TestEnv::new();
    let main = app(&env, pg);
    let (from, migrated) = new(&env, &main, "a");
    assert_eq!(from, None);
    assert_eq!(migrated, ["0001_create_users.sql", "0002_create_posts.sql"]);
    let entries = store_entries(&env, &main);
    assert_eq!(entries.len(), 1, "the result is stored");

    // On PostgreSQL a spare copy of the entry is made in the background,
    // and the next sandbox takes it by a rename.
    let spare = pg.map(|_| wait_for_spare(&entries[0]));
    // The second `new` applies nothing new.
    let (from, migrated) = new(&env, &main, "b");
    if let Some(spare) = spare {
        assert!(!database_exists(&spare), "{spare} was taken");
    }
    assert_eq!(from.as_ref(), Some(&entries[0]));
    assert!(migrated.is_empty(), "{migrated:?}");
    env.provision(&env.path("worktree-b"), &["verify"])
        .expect(0);

    // A new migration on top: the entry is the start, one is applied.
    add_migration(&env, &main, "0003_more.sql");
    let (from, migrated) = new(&env, &main, "c");
    assert_eq!(from.as_ref(), Some(&entries[0]));
    assert_eq!(migrated, ["0003_more.sql"]);
    env.provision(&env.path("worktree-c"), &["verify"])
        .expect(0);
    assert_eq!(store_entries(&env, &main).len(), 2);
    let (from, migrated) = new(&env, &main, "d");
    assert!(from.is_some() && migrated.is_empty(), "{migrated:?}");

    // gc keeps what a live sandbox's chain needs and the newest few.
    for name in ["a", "b", "c", "d"] {
        env.provision(&main, &["remove", name, "--force"]).expect(0);
    }
    for more in ["0004_m.sql", "0005_m.sql", "0006_m.sql"] {
        add_migration(&env, &main, more);
        new(&env, &main, "x");
        env.provision(&main, &["remove", "x", "--force"]).expect(0);
    }
    let before = store_entries(&env, &main);
    assert_eq!(before.len(), 5);
    let dry = env
        .provision(&main, &["gc", "--dry-run", "--json"])
        .expect(0);
    let lines = dry.json()["store"]["entries"].as_array().unwrap().clone();
    let dropped = |report: &serde_json::Value, word: &str| {
        report["store"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"].as_str().unwrap().starts_with("provision_store_"))
            .filter(|e| e["done"].as_str().unwrap().starts_with(word))
            .count()
    };
    assert_eq!(dropped(&dry.json(), "would drop"), 2, "{lines:?}");
    assert_eq!(store_entries(&env, &main), before);
    let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(dropped(&gc, "dropped"), 2);
    let after = store_entries(&env, &main);
    assert_eq!(after.len(), 3);
    // What is left still serves.
    let (from, migrated) = new(&env, &main, "y");
    assert!(from.is_some() && migrated.is_empty(), "{migrated:?}");
    env.provision(&main, &["remove", "y", "--force"]).expect(0);
    if pg.is_some() {
        // The test server is shared: the store goes with the test.
        let status = env.provision(&main, &["status", "--json"]).expect(0).json();
        let mut admin = server().client("postgres");
        for entry in status["store"]["entries"].as_array().unwrap() {
            let name = entry["name"].as_str().unwrap();
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .unwrap();
        }
    }
}

#[test]
fn sqlite_a_stored_state_is_reused_and_extended_and_collected() {
    reuse_then_extend(None);
}

#[test]
fn postgres_a_stored_state_is_reused_and_extended_and_collected() {
    reuse_then_extend(Some("st_reuse"));
}

/// Two `new`s building the same entry at once: both sandboxes are whole,
/// one entry is kept, and no temporary file is left.
#[test]
fn two_news_building_one_entry_at_once_are_safe() {
    let env = TestEnv::new();
    let main = app(&env, None);
    let children: Vec<_> = ["p", "q"]
        .iter()
        .map(|name| {
            env.command(env!("CARGO_BIN_EXE_provision"), &main)
                .args(["new", name])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in ["p", "q"] {
        env.provision(&env.path(&format!("worktree-{name}")), &["verify"])
            .expect(0);
    }
    assert_eq!(store_entries(&env, &main).len(), 1);
    let leftovers: Vec<_> = fs_err::read_dir(main.join(".git/provision/sqlite"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".provision"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `[database] seed`: a SQLite sandbox starts as a copy of the seed (its
/// data and the migrations its ledger has), applies the rest, and stores
/// that under the seed's identity: a changed seed is never served stale.
#[test]
fn a_seed_starts_each_sandbox_and_a_changed_seed_is_never_stale() {
    let env = TestEnv::new();
    let main = app(&env, None);
    env.provision(&main, &["apply"]).expect(0);
    let main_db = main.join(".git/provision/sqlite/app_main.sqlite");
    let seed = main.join("seed.sqlite");
    fs_err::copy(&main_db, &seed).unwrap();
    let people = |db: &Path, sql: &str| {
        rusqlite::Connection::open(db)
            .unwrap()
            .execute_batch(sql)
            .unwrap()
    };
    people(
        &seed,
        "CREATE TABLE people(name TEXT); INSERT INTO people VALUES ('ann');",
    );
    write(
        main.join("provision.toml"),
        "[database]\nseed = \"seed.sqlite\"\n",
    );
    write(
        main.join(".gitignore"),
        "seed.sqlite\n.env\n.dev.vars\n.npmrc\nnode_modules\n",
    );
    add_migration(&env, &main, "0003_more.sql");

    let count = |name: &str| -> i64 {
        let db = main.join(format!(".git/provision/sqlite/app_{name}.sqlite"));
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT count(*) FROM people", [], |r| r.get(0))
            .unwrap()
    };
    let report = env
        .provision(&main, &["new", "a", "--json"])
        .expect(0)
        .json();
    assert!(create_action(&report)["seed"].is_string(), "{report}");
    let (_, migrated) = new(&env, &main, "b");
    assert!(migrated.is_empty(), "the seed's state with 0003 was stored");
    assert_eq!((count("a"), count("b")), (1, 1));
    env.provision(&env.path("worktree-a"), &["verify"])
        .expect(0);

    // A changed seed is another start: nothing stored for it yet.
    people(&seed, "INSERT INTO people VALUES ('bob');");
    let (from, migrated) = new(&env, &main, "c");
    assert_eq!(from, None);
    assert_eq!(migrated, ["0003_more.sql"]);
    assert_eq!(count("c"), 2);
    assert_eq!(read_seed_rows(&seed), 2, "the seed itself is only read");

    // `seed = "main"`: the main checkout's own sandbox database.
    people(
        &main_db,
        "CREATE TABLE people(name TEXT); INSERT INTO people VALUES ('main');",
    );
    write(main.join("provision.toml"), "[database]\nseed = \"main\"\n");
    env.provision(&main, &["apply"]).expect(0);
    new(&env, &main, "d");
    assert_eq!(count("d"), 1);

    // A seed that no longer matches the branch is named.
    write(
        main.join("migrations/0003_more.sql"),
        "CREATE TABLE t_changed(x int);\n",
    );
    env.commit_all(&main, "edit 0003");
    let run = env.provision(&main, &["new", "e"]).expect(2);
    assert!(
        run.stderr
            .contains("no longer matches this branch's migrations")
            && run.stderr.contains("0003_more.sql was edited"),
        "{}",
        run.stderr
    );
}

fn read_seed_rows(seed: &Path) -> i64 {
    rusqlite::Connection::open(seed)
        .unwrap()
        .query_row("SELECT count(*) FROM people", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_spare_a_killed_new_marked_but_never_took_is_dropped_by_gc() {
    let env = TestEnv::new();
    let main = app(&env, Some("halftaken"));
    new(&env, &main, "a");
    let entries = store_entries(&env, &main);
    let spare = wait_for_spare(&entries[0]);
    // A `new` killed between marking the spare as its sandbox's and
    // renaming it to its sandbox's name.
    let clone = crate::support::read(main.join(".git/provision/clone-id"));
    let mark = |clone: &str| format!("provision:v1 clone={clone} worktree=worktree-b");
    let mut admin = server().client("postgres");
    admin
        .batch_execute(&format!(
            "COMMENT ON DATABASE \"{spare}\" IS '{}'",
            mark(clone.trim_end())
        ))
        .unwrap();
    // Another clone's, in the same state, is not this clone's to drop.
    let theirs = format!("provision_spare_{}_{}", "a".repeat(32), "b".repeat(8));
    admin
        .batch_execute(&format!("CREATE DATABASE \"{theirs}\""))
        .unwrap();
    admin
        .batch_execute(&format!(
            "COMMENT ON DATABASE \"{theirs}\" IS '{}'",
            mark(&"c".repeat(32))
        ))
        .unwrap();

    let dry = env.provision(&main, &["gc", "--dry-run"]).expect(0);
    assert!(
        dry.stdout.contains(&format!("{spare}  would drop it")),
        "{}",
        dry.stdout
    );
    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(
        report["half_made"],
        serde_json::json!([{"name": spare, "done": "dropped"}])
    );
    assert!(!database_exists(&spare));
    assert!(database_exists(&theirs));
    assert!(
        database_exists(&entries[0]),
        "the entry a live chain needs stays"
    );
    assert!(database_exists("t_halftaken_a"));
    admin
        .batch_execute(&format!("DROP DATABASE \"{theirs}\""))
        .unwrap();
}

/// Two `new`s take the same spare: b marks it as its sandbox's, c marks it
/// as its own meanwhile, b renames it and is killed before it marks it
/// again. The spare must never become b's database with c's mark (one
/// `apply` refuses and `remove` and `gc` never drop): taking it (its mark
/// and its rename) is all or nothing. Every message b sends is slowed
/// (strace) so that c's mark lands between b's two statements.
#[test]
fn a_spare_two_news_mark_at_once_never_becomes_a_sandbox_with_the_others_mark() {
    use std::os::unix::process::CommandExt;
    let env = TestEnv::new();
    let main = app(&env, Some("racespare"));
    new(&env, &main, "a");
    let entries = store_entries(&env, &main);
    let spare = wait_for_spare(&entries[0]);
    let clone = crate::support::read(main.join(".git/provision/clone-id"));
    let theirs = format!(
        "provision:v1 clone={} worktree=worktree-c",
        clone.trim_end()
    );
    let mut child = env
        .command("strace", &main)
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=sendto"])
        .args(["-e", "inject=sendto:delay_enter=300000"])
        .arg(env!("CARGO_BIN_EXE_provision"))
        .args(["new", "b"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("strace runs (it is part of the test environment)");
    let mut admin = server().client("postgres");
    let done = |admin: &mut postgres::Client, like: String| {
        admin
            .query_opt(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'provision' \
                 AND state = 'idle' AND query LIKE $1",
                &[&like],
            )
            .unwrap()
            .is_some()
            || database_exists("t_racespare_b")
    };
    crate::services::wait_until("b marked the spare as its own", || {
        done(&mut admin, format!("COMMENT ON DATABASE \"{spare}\"%"))
    });
    // c marks it: where b's mark and rename are one, it is gone already.
    let _ = admin.batch_execute(&format!("COMMENT ON DATABASE \"{spare}\" IS '{theirs}'"));
    crate::services::wait_until("b renamed the spare", || database_exists("t_racespare_b"));
    crate::support::kill_group(&mut child);

    // The documented recovery: `apply` in the worktree the killed `new` left.
    env.provision(&env.path("worktree-b"), &["apply"]).expect(0);
    env.provision(&env.path("worktree-b"), &["verify"])
        .expect(0);
    for name in ["a", "b"] {
        env.provision(&main, &["remove", name, "--force"]).expect(0);
    }
    env.provision(&main, &["gc"]).expect(0);
}
