//! The data-safety rules for databases that follow the branch (divergence,
//! the store of migrated states, seeds, clone identity) against forged
//! records, kills while the server copies, moved repositories and
//! migrations that change the session or the database's own settings:
//! each a way provision lost, or could lose, data.

use std::path::{Path, PathBuf};

use crate::pg_server::server;
use crate::postgres::database_exists;
use crate::services::wait_until;
use crate::support::{TestEnv, kill_group, read, sqlite, write};

fn sqlite_db(main: &Path, db: &str) -> PathBuf {
    main.join(".git/provision/sqlite")
        .join(format!("{db}.sqlite"))
}

/// An aside record is untrusted input: one hand-edited (or forged) to name
/// the live sandbox's own database must not lead `gc` to drop it, though
/// that database carries the very mark the record's sandbox gives it.
#[test]
fn gc_never_drops_a_live_database_an_aside_record_names() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("provision.toml"), "[database]\n");
    env.commit_all(&main, "recipe");
    env.provision(&main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    let reset = env.provision(&wt, &["db", "reset", "--json"]).expect(0);
    let aside = reset.json()["set_aside"]["database"]
        .as_str()
        .unwrap()
        .to_string();
    sqlite(&main, "app_feat")
        .execute_batch("CREATE TABLE precious(x); INSERT INTO precious VALUES (42);")
        .unwrap();
    // The record, copied to name the live database instead.
    let dir = main.join(".git/provision/aside");
    let record = read(dir.join(format!("{aside}.json")));
    write(
        dir.join("app_feat.json"),
        &record.replace(
            &format!("\"database\": \"{aside}\""),
            "\"database\": \"app_feat\"",
        ),
    );

    let gc = env.provision(&main, &["gc"]).expect(0);
    assert!(
        sqlite_db(&main, "app_feat").is_file(),
        "gc dropped the live sandbox's database:\n{}",
        gc.stdout
    );
    assert!(gc.stdout.contains("app_feat.json"), "{}", gc.stdout);
    env.provision(&wt, &["verify"]).expect(0);
    let kept: i64 = sqlite(&main, "app_feat")
        .query_row("SELECT x FROM precious", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 42);

    // A sandbox whose database has the form of an aside name, and a
    // record of it made to match that form exactly.
    env.provision(&main, &["new", "x_aside_5"]).expect(0);
    let other = env.path("worktree-x_aside_5");
    assert!(sqlite_db(&main, "app_x_aside_5").is_file());
    write(
        dir.join("app_x_aside_5.json"),
        &format!(
            "{{\"database\": \"app_x_aside_5\", \"from\": \"app_x\", \"kind\": \"sqlite\", \
             \"sandbox\": \"x_aside_5\", \"id\": \"worktree-x_aside_5\", \"path\": {:?}, \"at\": 5}}\n",
            other.display().to_string()
        ),
    );
    let gc = env.provision(&main, &["gc"]).expect(0);
    assert!(
        sqlite_db(&main, "app_x_aside_5").is_file(),
        "gc dropped a live sandbox's database:\n{}",
        gc.stdout
    );
    env.provision(&other, &["verify"]).expect(0);
}

fn pg_recipe(main: &Path, tag: &str) {
    write(
        main.join("provision.toml"),
        &format!(
            "[database]\nkind = \"postgres\"\nurl = \"{}\"\nname = \"t_{tag}_{{slug}}\"\n",
            server().url()
        ),
    );
}

/// This clone's store entry, once `new` made it and its spare copy (which
/// goes, so that the next `new` copies the entry itself).
fn entry_without_spare(main: &Path) -> (String, String) {
    let clone = read(main.join(".git/provision/clone-id"));
    let mark = format!("provision:v1 clone={} worktree=store:v1", clone.trim());
    let mut pg = server().client("postgres");
    let entry: String = pg
        .query_one(
            "SELECT datname FROM pg_database WHERE datname LIKE 'provision\\_store\\_%' \
             AND shobj_description(oid, 'pg_database') = $1",
            &[&mark],
        )
        .unwrap()
        .get(0);
    let hash = entry.trim_start_matches("provision_store_").to_string();
    let spare = format!("provision\\_spare\\_{hash}\\_%");
    let marked_spare = || {
        server()
            .client("postgres")
            .query_opt(
                "SELECT datname FROM pg_database WHERE datname LIKE $1 \
                 AND shobj_description(oid, 'pg_database') = $2",
                &[&spare, &mark],
            )
            .unwrap()
            .map(|r| r.get::<_, String>(0))
    };
    wait_until("the spare copy", || marked_spare().is_some());
    let name = marked_spare().unwrap();
    pg.batch_execute(&format!("DROP DATABASE \"{name}\""))
        .unwrap();
    (entry, mark)
}

/// Holds a lock on `entry` (a transaction that comments it anew), which
/// `CREATE DATABASE … TEMPLATE` of it waits for; runs `args` and kills it
/// while its copy waits; lets the copy go on, and waits until the server
/// has finished it (the killed client's session ends). Returns the names
/// the clone's records of databases being made held meanwhile.
fn kill_while_copying(
    env: &TestEnv,
    main: &Path,
    entry: &str,
    mark: &str,
    args: &[&str],
) -> Vec<String> {
    let mut holder = server().client("postgres");
    let mut hold = holder.transaction().unwrap();
    hold.batch_execute(&format!(
        "COMMENT ON DATABASE \"{entry}\" IS '{}'",
        mark.replace('\'', "''")
    ))
    .unwrap();
    let copying = |waiting: bool| {
        server()
            .client("postgres")
            .query_opt(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE%' \
                 AND query LIKE $1 AND (NOT $2 OR wait_event_type = 'Lock')",
                &[&format!("%TEMPLATE \"{entry}\"%"), &waiting],
            )
            .unwrap()
            .is_some()
    };
    let mut child = env.provision_spawn(main, args);
    wait_until("the copy of the entry to wait for its lock", || {
        copying(true)
    });
    let creating = main.join(".git/provision/creating");
    let records: Vec<String> = fs_err::read_dir(&creating)
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(!records.is_empty(), "the copy is recorded as being made");
    kill_group(&mut child);
    hold.commit().unwrap();
    wait_until("the server to finish the copy", || !copying(false));
    records
}

/// `kill -9` of `new` while PostgreSQL copies the store's entry into the
/// sandbox's database: the server finishes the copy (`COMMENT ON DATABASE`,
/// the mark, is a statement of its own, sent after). Before main's
/// 65c4a28 the database was left unmarked under the sandbox's name:
/// `apply` refused it ("not created by provision … choose another name")
/// and `remove` left it behind for good. `apply` must finish the sandbox,
/// and `gc` drop what was left half made.
#[test]
fn postgres_new_killed_while_copying_the_store_leaves_no_unmarked_database() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    pg_recipe(&main, "a14kill");
    env.commit_all(&main, "recipe");
    env.provision(&main, &["new", "feat"]).expect(0);
    let (entry, mark) = entry_without_spare(&main);

    let half = kill_while_copying(&env, &main, &entry, &mark, &["new", "two"]);
    let db = "t_a14kill_two";
    let wt = env.path("worktree-two");
    let apply = env.provision(&wt, &["apply"]);
    let remove = env.provision(&main, &["remove", "two", "--force"]);
    assert_eq!(
        (apply.code, database_exists(db)),
        (0, false),
        "apply:\n{}\nremove:\n{}{}",
        apply.stderr,
        remove.stdout,
        remove.stderr
    );
    env.provision(&main, &["gc"]).expect(0);
    for name in &half {
        assert!(!database_exists(name), "{name} was left half made");
    }
    env.provision(&main, &["remove", "feat", "--force"])
        .expect(0);
}

/// The command kind drops its database before `git worktree remove`, so
/// it first checks what would make git refuse. git also refuses, even with
/// `--force`, a worktree whose `.git` no longer leads back to the
/// repository: what moving the repository leaves (its worktrees' `.git`
/// files name the old path until `git worktree repair`). `remove --force`
/// then dropped the database and left the worktree.
#[test]
fn command_kind_never_drops_the_database_of_a_worktree_git_keeps() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"command\"\n\
         create = 'mkdir -p \"{main}/.db\" && echo data > \"{main}/.db/{db}\"'\n\
         exists = 'test -f \"{main}/.db/{db}\"'\nmigrate = 'true'\n\
         drop = 'rm \"{main}/.db/{db}\"'\n",
    );
    write(
        main.join(".gitignore"),
        &format!("{}.db/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "command recipe");
    env.provision(&main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    let moved = env.path("moved");
    fs_err::rename(&main, &moved).unwrap();
    assert!(moved.join(".db/app_feat").is_file());

    let remove = env.provision(&moved, &["remove", "feat", "--force"]);
    let kept = wt.is_dir();
    assert!(
        !kept || moved.join(".db/app_feat").is_file(),
        "the worktree stays ({}), its database is gone:\n{}",
        wt.display(),
        remove.stderr
    );
    assert_ne!(remove.code, 0, "{}", remove.stderr);
    assert!(
        remove.stderr.contains("git worktree repair"),
        "{}",
        remove.stderr
    );
    // Nothing was marked as a take-down under way: `gc` still runs.
    let gc = env.provision(&moved, &["gc"]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(wt.is_dir() && moved.join(".db/app_feat").is_file());
    // Once git's links are repaired, the sandbox goes whole.
    env.git(&moved, &["worktree", "repair", wt.to_str().unwrap()]);
    env.provision(&moved, &["remove", "feat", "--force"])
        .expect(0);
    assert!(!wt.exists() && !moved.join(".db/app_feat").exists());
}

/// A database's own settings (`ALTER DATABASE … SET`), as a migration may
/// make them, are not copied by `CREATE DATABASE … TEMPLATE`: a sandbox
/// made from the store's entry lacked what the same migrations gave the
/// sandbox they ran in, while its ledger said they had run.
#[test]
fn postgres_a_sandbox_from_the_store_has_what_its_migrations_set_on_the_database() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    pg_recipe(&main, "a14set");
    write(
        main.join("migrations/0003_settings.sql"),
        "CREATE SCHEMA app;\nCREATE TABLE app.things(x int);\n\
         DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = app, public', current_database()); END $$;\n",
    );
    env.commit_all(&main, "recipe and a migration that sets the search path");
    env.provision(&main, &["new", "one"]).expect(0);
    env.provision(&main, &["new", "two"]).expect(0);
    let search_path = |db: &str| -> String {
        server()
            .client(db)
            .query_one("SHOW search_path", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(search_path("t_a14set_one"), "app, public");
    assert_eq!(
        search_path("t_a14set_two"),
        "app, public",
        "the sandbox made from the store"
    );
    for name in ["one", "two"] {
        env.provision(&main, &["remove", name, "--force"]).expect(0);
    }
}

/// `kill -9` of `provision db refill` while PostgreSQL copies the entry
/// into a spare: the copy is left without its mark. Later refills took
/// any database named as a spare of the entry for one, marked or not, and
/// made none: every later `new` copied the entry, not a spare.
#[test]
fn postgres_a_refill_killed_mid_copy_does_not_stop_later_refills() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    pg_recipe(&main, "a14refill");
    env.commit_all(&main, "recipe");
    env.provision(&main, &["new", "feat"]).expect(0);
    let (entry, mark) = entry_without_spare(&main);

    let half = kill_while_copying(&env, &main, &entry, &mark, &["db", "refill", &entry]);
    let hash = entry.trim_start_matches("provision_store_");
    let spares = format!("provision\\_spare\\_{hash}\\_%");
    let count = |marked: bool| -> i64 {
        server()
            .client("postgres")
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname LIKE $1 \
                 AND (shobj_description(oid, 'pg_database') IS NOT DISTINCT FROM $2) = $3",
                &[&spares, &mark, &marked],
            )
            .unwrap()
            .get(0)
    };
    env.provision(&main, &["db", "refill", &entry]).expect(0);
    assert_eq!(count(true), 1, "a later refill makes a spare");
    env.provision(&main, &["gc"]).expect(0);
    assert_eq!(count(false), 0, "no spare is left unmarked");
    for name in &half {
        assert!(!database_exists(name), "{name} was left half made");
    }
    env.provision(&main, &["remove", "feat", "--force"])
        .expect(0);
}

/// A seed in the main checkout is only read: no file appears beside it.
/// Opened read-only, a seed in WAL mode (as an app that wrote it leaves
/// it) got a `-wal` and a `-shm` file created beside it, in the main
/// checkout, which `git status` then shows.
#[test]
fn a_seed_in_wal_mode_gets_no_files_beside_it() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["apply"]).expect(0);
    let seed = main.join("seed.sqlite");
    fs_err::copy(sqlite_db(&main, "app_main"), &seed).unwrap();
    let conn = rusqlite::Connection::open(&seed).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.execute_batch("CREATE TABLE people(name TEXT); INSERT INTO people VALUES ('ann');")
        .unwrap();
    drop(conn);
    assert!(!main.join("seed.sqlite-wal").exists());
    write(
        main.join("provision.toml"),
        "[database]\nseed = \"seed.sqlite\"\n",
    );
    env.commit_all(&main, "a seed");
    env.provision(&main, &["new", "a"]).expect(0);
    let status = env.git(&main, &["status", "--porcelain"]);
    assert!(status.is_empty(), "the main checkout changed:\n{status}");
}

/// The command kind with a store (`snapshot`/`restore`) but no `exists`:
/// provision knows a database by its record alone, and `restore` copies
/// the entry over whatever has the sandbox's name. Here a sandbox is
/// removed by a recipe with no `drop` (its database is left to its tool,
/// and provision forgets it); a new sandbox of the same name then
/// restored the entry over that database.
#[test]
fn command_kind_restore_never_overwrites_a_database_it_has_no_record_of() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let db = "\"$PROVISION_MAIN/.sb/{db}.db\"";
    let snap = "\"$PROVISION_MAIN/.snap/{entry}\"";
    write(
        main.join("provision.toml"),
        &format!(
            "[database]\nkind = \"command\"\n\
             migrate = 'mkdir -p \"$PROVISION_MAIN/.sb\" && /usr/bin/sqlite3 {db} < \"{{migration}}\"'\n\
             snapshot = 'mkdir -p \"$PROVISION_MAIN/.snap\" && cp {db} {snap}'\n\
             restore = 'cp {snap} {db}'\n"
        ),
    );
    write(
        main.join(".gitignore"),
        &format!("{}.sb/\n.snap/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "command recipe with a store, without exists or drop");
    env.provision(&main, &["new", "feat"]).expect(0);
    let file = main.join(".sb/app_feat.db");
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch("CREATE TABLE precious(x); INSERT INTO precious VALUES (42);")
        .unwrap();
    env.provision(&main, &["remove", "feat", "--force"])
        .expect(0);
    assert!(file.is_file(), "left to its tool");

    let again = env.provision(&main, &["new", "feat"]);
    let kept =
        rusqlite::Connection::open(&file)
            .unwrap()
            .query_row("SELECT x FROM precious", [], |r| r.get::<_, i64>(0));
    assert!(
        kept.is_ok(),
        "the database left to its tool was overwritten:\n{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("no `exists` command"),
        "{}",
        again.stderr
    );
}

/// A migration that sets a role (to own what it creates) leaves the next
/// one, and provision's ledger, as a new session has them: `RESET ALL`
/// does not reset the role. The ledger row, written in the migration's
/// transaction, was refused as that role ("permission denied for table
/// provision_migrations"), and the migration with it.
#[test]
fn postgres_a_migration_that_sets_a_role_is_recorded_and_the_next_runs_as_provision() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    pg_recipe(&main, "a14role");
    server()
        .client("postgres")
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE t_a14_owner NOLOGIN; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        )
        .unwrap();
    write(
        main.join("migrations/0003_owned.sql"),
        "GRANT USAGE, CREATE ON SCHEMA public TO t_a14_owner;\n\
         SET ROLE t_a14_owner;\nCREATE TABLE owned(x int);\n",
    );
    write(
        main.join("migrations/0004_after.sql"),
        "CREATE TABLE after(x int);\n",
    );
    env.commit_all(&main, "recipe and a migration that sets a role");
    let new = env.provision(&main, &["new", "feat"]);
    assert_eq!(new.code, 0, "{}", new.stderr);
    let owner = |table: &str| -> String {
        server()
            .client("t_a14role_feat")
            .query_one(
                "SELECT tableowner::text FROM pg_tables WHERE tablename = $1",
                &[&table],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(owner("owned"), "t_a14_owner");
    assert_eq!(
        owner("after"),
        "postgres",
        "the next migration ran as provision"
    );
    env.provision(&env.path("worktree-feat"), &["verify"])
        .expect(0);
    env.provision(&main, &["remove", "feat", "--force"])
        .expect(0);
}

/// `gc` keeps the store's entries a live sandbox's chain needs. The keys
/// it computes start from an empty database: a seeded sandbox's entries
/// (keyed by the seed's identity) are never among them, and go once they
/// are not among the newest few, though each sandbox here needs one.
#[test]
fn gc_keeps_the_store_entries_seeded_sandboxes_need() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["apply"]).expect(0);
    fs_err::copy(sqlite_db(&main, "app_main"), main.join("seed.sqlite")).unwrap();
    write(
        main.join("provision.toml"),
        "[database]\nseed = \"seed.sqlite\"\n",
    );
    write(
        main.join(".gitignore"),
        &format!("{}seed.sqlite\n", read(main.join(".gitignore"))),
    );
    for (n, name) in ["a", "b", "c", "d"].iter().enumerate() {
        write(
            main.join(format!("migrations/000{}_m.sql", n + 3)),
            &format!("CREATE TABLE m{n}(x int);\n"),
        );
        env.commit_all(&main, "one more migration");
        env.provision(&main, &["new", name]).expect(0);
    }
    let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
    let dropped: Vec<&serde_json::Value> = gc["store"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["done"].as_str().unwrap().starts_with("dropped"))
        .collect();
    assert!(
        dropped.is_empty(),
        "every entry is some live sandbox's: {dropped:?}"
    );
}
