//! `kind = "postgres"` against the private test server. Every test names its
//! databases `t_<test>_…` so that the tests can share the server in parallel.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::pg_server::{dead_port, server};
use crate::services::wait_until;
use crate::support::{TestEnv, kill_group, read, write};

/// The fixture app with a PostgreSQL recipe; its sandboxes are `t_<tag>_<slug>`.
fn pg_app(env: &TestEnv, tag: &str, extra: &str) -> PathBuf {
    pg_app_at(env, "app", &format!("name = \"t_{tag}_{{slug}}\"\n{extra}"))
}

/// The fixture app at `rel` on the test server, with `extra` in its
/// `[database]` (PostgreSQL's default name unless it names one).
pub(crate) fn pg_app_at(env: &TestEnv, rel: &str, extra: &str) -> PathBuf {
    let main = env.fixture_repo(rel);
    write(
        main.join("provision.toml"),
        &format!(
            "[database]\nkind = \"postgres\"\nurl = \"{}\"\n{extra}",
            server().url()
        ),
    );
    env.commit_all(&main, "postgres recipe");
    main
}

pub(crate) fn database_exists(name: &str) -> bool {
    server()
        .client("postgres")
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .unwrap()
        .is_some()
}

#[test]
fn new_creates_a_marked_migrated_database_and_verify_is_clean() {
    let env = TestEnv::new();
    let main = pg_app(&env, "new", "");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");

    let mark: String = server()
        .client("postgres")
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&"t_new_feature"],
        )
        .unwrap()
        .get(0);
    // The clone by its identity, not by its path.
    let clone = read(main.join(".git/provision/clone-id"));
    assert_eq!(
        mark,
        format!(
            "provision:v1 clone={} worktree=worktree-feature",
            clone.trim_end()
        )
    );

    let mut db = server().client("t_new_feature");
    let ledger: Vec<String> = db
        .query("SELECT name FROM provision_migrations ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ledger, ["0001_create_users.sql", "0002_create_posts.sql"]);
    db.execute(
        "INSERT INTO users(id, email) VALUES(1, 'a@example.com')",
        &[],
    )
    .unwrap();

    let lock = read(wt.join("provision.lock"));
    assert!(
        lock.contains("\"location\": \"postgres:t_new_feature\""),
        "{lock}"
    );
    assert!(!lock.contains("127.0.0.1"), "host in the lock:\n{lock}");

    env.provision(&wt, &["verify"]).expect(0);
    let run = env.provision(&wt, &["apply", "--json"]).expect(0);
    assert_eq!(run.json()["actions"], serde_json::json!([]));
}

#[test]
fn the_server_can_come_from_database_url() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"postgres\"\nname = \"t_envurl_{slug}\"\n",
    );
    env.commit_all(&main, "postgres recipe");
    let url = server().url();
    let vars = [("DATABASE_URL", url.as_str())];
    env.provision_with(&main, &["new", "feature"], &vars)
        .expect(0);
    assert!(database_exists("t_envurl_feature"));
    env.provision_with(&env.path("worktree-feature"), &["verify"], &vars)
        .expect(0);
}

#[test]
fn a_lost_ledger_row_or_an_edited_migration_is_drift() {
    let env = TestEnv::new();
    let main = pg_app(&env, "drift", "");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let mut db = server().client("t_drift_feature");

    let row = db
        .query_one(
            "DELETE FROM provision_migrations WHERE name = '0002_create_posts.sql' RETURNING checksum",
            &[],
        )
        .unwrap();
    let checksum: String = row.get(0);
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout.contains("migration 0002_create_posts.sql")
            && run.stdout.contains("not in the database's ledger"),
        "{}",
        run.stdout
    );
    db.execute(
        "INSERT INTO provision_migrations(name, checksum) VALUES('0002_create_posts.sql', $1)",
        &[&checksum],
    )
    .unwrap();
    env.provision(&wt, &["verify"]).expect(0);

    env.assert_edited_migration_is_caught(&wt);
}

#[test]
fn an_unmarked_database_is_refused_and_kept() {
    let env = TestEnv::new();
    let main = pg_app(&env, "unmarked", "");
    let mut admin = server().client("postgres");
    admin
        .batch_execute("CREATE DATABASE t_unmarked_feature")
        .unwrap();
    server()
        .client("t_unmarked_feature")
        .batch_execute("CREATE TABLE precious(x int); INSERT INTO precious VALUES (42);")
        .unwrap();

    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr.contains("database `t_unmarked_feature`")
            && run.stderr.contains("was not created by provision")
            && run.stderr.contains("choose another name"),
        "{}",
        run.stderr
    );
    // The failed `new` cleaned up after itself, and only after itself.
    assert!(!env.path("worktree-feature").exists());
    let kept: i32 = server()
        .client("t_unmarked_feature")
        .query_one("SELECT x FROM precious", &[])
        .unwrap()
        .get(0);
    assert_eq!(kept, 42);
    assert!(
        server()
            .client("t_unmarked_feature")
            .query_opt("SELECT to_regclass('provision_migrations')::text", &[])
            .unwrap()
            .and_then(|r| r.get::<_, Option<String>>(0))
            .is_none(),
        "provision migrated a database it does not own"
    );
}

/// Two clones of one repository on one server name their sandboxes alike;
/// one clone's database carries a mark that names the other clone.
#[test]
fn another_clones_database_is_refused_and_kept() {
    let env = TestEnv::new();
    let main = pg_app(&env, "clone", "");
    let mut admin = server().client("postgres");
    admin
        .batch_execute("CREATE DATABASE t_clone_feature")
        .unwrap();
    admin
        .batch_execute(
            "COMMENT ON DATABASE t_clone_feature IS 'provision:v1 repo=/elsewhere/.git worktree=worktree-feature'",
        )
        .unwrap();
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr
            .contains("was not created by provision for this worktree"),
        "{}",
        run.stderr
    );
    assert!(database_exists("t_clone_feature"));
    server()
        .client("postgres")
        .batch_execute("DROP DATABASE t_clone_feature")
        .unwrap();
}

#[test]
fn a_failing_migration_rolls_back_names_the_file_and_leaves_nothing() {
    let env = TestEnv::new();
    let main = pg_app(&env, "broken", "");
    write(
        main.join("migrations/0003_broken.sql"),
        "CREATE TABLE half(x int);\nSELECT no_such_function();\n",
    );
    env.commit_all(&main, "broken migration");
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr.contains("migration 0003_broken.sql failed")
            && run.stderr.contains("no_such_function"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-feature").exists());
    assert_eq!(env.git(&main, &["branch", "--list", "feature"]), "");
    // Ours, made by this attempt: dropped again.
    assert!(!database_exists("t_broken_feature"));
}

#[test]
fn a_template_sandbox_starts_with_the_templates_rows() {
    let env = TestEnv::new();
    let main = pg_app(&env, "tpl", "template = \"t_tpl_seed\"\n");
    server()
        .client("postgres")
        .batch_execute("CREATE DATABASE t_tpl_seed")
        .unwrap();
    let mut seed = server().client("t_tpl_seed");
    seed.batch_execute(
        "CREATE TABLE seed_rows(x int); INSERT INTO seed_rows VALUES (1), (2), (3);",
    )
    .unwrap();

    // While someone is connected to the template, PostgreSQL cannot copy it.
    let run = env.provision(&main, &["new", "busy"]).expect(2);
    assert!(
        run.stderr
            .contains("template database `t_tpl_seed` is busy"),
        "{}",
        run.stderr
    );
    assert!(!database_exists("t_tpl_busy"));
    // The copy it tried to make under a name of its own was never made:
    // nothing is left for `gc`.
    let left = fs_err::read_dir(main.join(".git/provision/creating")).unwrap();
    assert_eq!(left.count(), 0);
    drop(seed);

    env.provision(&main, &["new", "feature"]).expect(0);
    let mut db = server().client("t_tpl_feature");
    let rows: i64 = db
        .query_one("SELECT count(*) FROM seed_rows", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 3);
    // …and then the migrations the template lacks.
    let applied: i64 = db
        .query_one("SELECT count(*) FROM provision_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(applied, 2);
    env.provision(&env.path("worktree-feature"), &["verify"])
        .expect(0);
}

#[test]
fn a_stopped_server_is_a_quick_clear_error_and_nothing_is_half_made() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let port = dead_port();
    write(
        main.join("provision.toml"),
        &format!(
            "[database]\nkind = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:{port}/postgres\"\n"
        ),
    );
    env.commit_all(&main, "postgres recipe");
    let started = Instant::now();
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        run.stderr
            .contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-feature").exists());
    assert_eq!(env.git(&main, &["branch", "--list", "feature"]), "");
    assert_eq!(
        fs_err::read_dir(main.join(".git/provision/sandboxes"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

#[test]
fn verify_against_an_unreachable_server_is_an_error_not_drift() {
    let env = TestEnv::new();
    let main = pg_app(&env, "gone", "");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    // The server moves away; the recipe hash does not hold the URL.
    let port = dead_port();
    write(
        main.join("provision.toml"),
        &read(main.join("provision.toml")).replace(
            &server().url(),
            &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        ),
    );
    let run = env.provision(&wt, &["verify"]).expect(2);
    assert!(
        run.stderr
            .contains(&format!("cannot connect to PostgreSQL at 127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
}

/// remove and gc drop a sandbox's PostgreSQL database, and never one whose
/// mark is gone: provision cannot tell that one from somebody else's.
#[test]
fn remove_and_gc_drop_marked_databases_only() {
    let env = TestEnv::new();
    let main = pg_app(&env, "life", "");
    for name in ["gone", "unmarked", "removed"] {
        env.provision(&main, &["new", name]).expect(0);
    }
    assert!(database_exists("t_life_removed"));
    env.provision(&main, &["remove", "removed"]).expect(0);
    assert!(!database_exists("t_life_removed"));

    server()
        .client("postgres")
        .batch_execute("COMMENT ON DATABASE t_life_unmarked IS NULL")
        .unwrap();
    for name in ["gone", "unmarked"] {
        fs_err::remove_dir_all(env.path(&format!("worktree-{name}"))).unwrap();
        // Past git's expiry for entries whose folder is gone.
        env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    }
    let run = env.provision(&main, &["gc"]).expect(0);
    assert!(
        run.stdout
            .contains("kept database t_life_unmarked: it has no provision mark"),
        "{}",
        run.stdout
    );
    assert!(!database_exists("t_life_gone"));
    assert!(database_exists("t_life_unmarked"));
    server()
        .client("postgres")
        .batch_execute("DROP DATABASE t_life_unmarked")
        .unwrap();
}

#[test]
fn a_password_comes_from_the_password_file_as_libpq_reads_it() {
    use crate::pg_server::PASSWORD_USER;
    let env = TestEnv::new();
    password_role();
    let main = env.fixture_repo("app");
    let url = format!(
        "postgres://{PASSWORD_USER}@127.0.0.1:{}/postgres",
        server().port
    );
    write(
        main.join("provision.toml"),
        &format!(
            "[database]\nkind = \"postgres\"\nurl = \"{url}\"\nname = \"t_pgpass_{{slug}}\"\n"
        ),
    );
    env.commit_all(&main, "postgres recipe");
    let pgpass = env.path("pgpass");
    let port = server().port;
    write(
        &pgpass,
        &format!(
            "# first match wins\n127.0.0.1:{port}:*:{PASSWORD_USER}:se\\:cret\n*:*:*:*:wrong\n"
        ),
    );
    let run = |args: &[&str]| {
        crate::support::Run::from(
            env.command(env!("CARGO_BIN_EXE_provision"), &main)
                .env("PGPASSFILE", &pgpass)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let mode = |mode| {
        fs_err::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap()
    };

    // libpq ignores a password file others can read, and so does provision.
    mode(0o644);
    let refused = run(&["new", "open"]).expect(2);
    assert!(refused.stderr.contains("password"), "{}", refused.stderr);
    assert!(!database_exists("t_pgpass_open"));

    mode(0o600);
    run(&["new", "feature"]).expect(0);
    assert!(database_exists("t_pgpass_feature"));
    run(&["remove", "feature"]).expect(0);
    assert!(!database_exists("t_pgpass_feature"));
}

/// The role the server asks a password of, made once by whichever test
/// needs it first.
fn password_role() {
    use crate::pg_server::PASSWORD_USER;
    static MADE: std::sync::Once = std::sync::Once::new();
    MADE.call_once(|| {
        server()
            .client("postgres")
            .batch_execute(&format!(
                "CREATE ROLE {PASSWORD_USER} LOGIN CREATEDB PASSWORD 'se:cret'"
            ))
            .unwrap()
    });
}

/// A password from the password file goes to a server the repository's
/// recipe names only once this user approved its url (`provision trust`);
/// to a server the user's own environment names, freely; and a server
/// that asks for none needs no approval.
#[test]
fn a_password_goes_to_a_server_a_recipe_names_only_once_approved() {
    use crate::pg_server::PASSWORD_USER;
    let env = TestEnv::new();
    password_role();
    let port = server().port;
    let main = env.fixture_repo("app");
    let url = format!("postgres://{PASSWORD_USER}@127.0.0.1:{port}/postgres");
    let recipe = |url: &str| {
        let url = if url.is_empty() {
            String::new()
        } else {
            format!("url = \"{url}\"\n")
        };
        write(
            main.join("provision.toml"),
            &format!("[database]\nkind = \"postgres\"\n{url}name = \"t_approve_{{slug}}\"\n"),
        );
        env.commit_all(&main, "postgres recipe");
    };
    let pgpass = env.path("pgpass");
    write(&pgpass, "*:*:*:*:se\\:cret\n");
    fs_err::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = |args: &[&str], vars: &[(&str, &str)]| {
        crate::support::Run::from(
            env.command(env!("CARGO_BIN_EXE_provision"), &main)
                .env_remove("PROVISION_TRUST")
                .env("PGPASSFILE", &pgpass)
                .envs(vars.iter().copied())
                .args(args)
                .output()
                .unwrap(),
        )
    };

    recipe(&url);
    let refused = run(&["new", "feature"], &[]).expect(2);
    let main_path = fs_err::canonicalize(&main).unwrap();
    assert!(
        refused.stderr.contains(&format!(
            "[database] url `{url}` of {}'s provision.toml names a server that asks for a password, and your password file has one for it:",
            main_path.display()
        )) && refused.stderr.contains("`provision trust`"),
        "{}",
        refused.stderr
    );
    assert!(!database_exists("t_approve_feature"));
    let listed = run(&["trust", "--list"], &[]).expect(0);
    assert!(listed.stdout.contains(&url), "{}", listed.stdout);
    run(&["trust"], &[]).expect(0);
    run(&["new", "feature"], &[]).expect(0);
    assert!(database_exists("t_approve_feature"));
    run(&["remove", "feature"], &[]).expect(0);

    // Named by the user's environment: no approval asked.
    recipe("");
    run(&["new", "env"], &[("DATABASE_URL", &url)]).expect(0);
    run(&["remove", "env"], &[("DATABASE_URL", &url)]).expect(0);

    // A server that asks for no password needs no approval.
    recipe(&format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    run(&["new", "open"], &[]).expect(0);
    run(&["remove", "open"], &[]).expect(0);
    assert!(!database_exists("t_approve_open"));
}

#[test]
fn a_new_killed_while_the_server_copies_leaves_nothing_unmarked_and_gc_drops_the_copy() {
    let env = TestEnv::new();
    let main = pg_app(&env, "killcopy", "template = \"t_killcopy_tpl\"\n");
    let mut admin = server().client("postgres");
    admin
        .batch_execute("CREATE DATABASE t_killcopy_tpl")
        .unwrap();
    // A comment on the template, in an open transaction, holds a lock its
    // copy waits for: provision is killed while the server copies.
    let mut holder = server().client("postgres");
    let mut hold = holder.transaction().unwrap();
    hold.batch_execute("COMMENT ON DATABASE t_killcopy_tpl IS 'held'")
        .unwrap();
    let mut child = env.provision_spawn(&main, &["new", "feature"]);
    let copying = "SELECT 1 FROM pg_stat_activity WHERE application_name = 'provision' \
                   AND query LIKE 'CREATE DATABASE%t_killcopy_tpl%'";
    wait_until("provision's copy waits for the template", || {
        let waits = format!("{copying} AND wait_event_type = 'Lock'");
        admin.query_opt(&waits, &[]).unwrap().is_some()
    });
    kill_group(&mut child);
    // The server goes on copying for the killed client, and the copy is
    // not visible yet: `gc` keeps its record for a later run.
    env.provision(&main, &["gc"]).expect(0);
    let records = main.join(".git/provision/creating");
    assert_eq!(fs_err::read_dir(&records).unwrap().count(), 1);
    hold.rollback().unwrap();
    // The server finishes a copy whose client is gone.
    wait_until("the server finishes the copy", || {
        admin.query_opt(copying, &[]).unwrap().is_none()
    });

    // Nothing unmarked under the sandbox's name: the copy has one of its own.
    assert!(!database_exists("t_killcopy_feature"));
    let records: Vec<String> = fs_err::read_dir(&records)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let half_made = &records[0];
    assert!(database_exists(half_made), "{half_made}");

    let run = env.provision(&main, &["gc", "--dry-run"]).expect(0);
    assert!(
        run.stdout.contains(&format!("{half_made}  would drop it")),
        "{}",
        run.stdout
    );
    assert!(database_exists(half_made));
    let run = env.provision(&main, &["gc", "--json"]).expect(0);
    let report = run.json();
    assert_eq!(report["half_made"][0]["name"], half_made.as_str());
    assert_eq!(report["half_made"][0]["done"], "dropped");
    assert!(!database_exists(half_made));
    // The name was never taken: `apply` in the worktree the killed `new`
    // left makes it.
    env.provision(&env.path("worktree-feature"), &["apply"])
        .expect(0);
    assert!(database_exists("t_killcopy_feature"));
    env.provision(&main, &["gc"]).expect(0);
    assert!(database_exists("t_killcopy_feature"));
}

/// A killed `new`'s copy that the server finishes while `gc` looks at its
/// record: between gc's "is it there?" (not yet) and "is the server still
/// copying it?" (no longer). The record must not be forgotten then, or the
/// copy is left under its `provision_new_` name with nothing that leads a
/// later `gc` to it. Every message provision sends is slowed (strace) so
/// that the copy can finish in that gap.
#[test]
fn a_copy_the_server_finishes_while_gc_looks_at_its_record_is_still_dropped() {
    let env = TestEnv::new();
    // A role of its own, to tell this test's gc from other tests' sessions.
    let user = "t_racegc_user";
    let mut admin = server().client("postgres");
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {user} SUPERUSER LOGIN; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ))
        .unwrap();
    let main = pg_app_at(
        &env,
        "app",
        "name = \"t_racegc_{slug}\"\ntemplate = \"t_racegc_tpl\"\n",
    );
    write(
        main.join("provision.toml"),
        &read(main.join("provision.toml")).replace("postgres@", &format!("{user}@")),
    );
    env.commit_all(&main, "its own role");
    admin.batch_execute("CREATE DATABASE t_racegc_tpl").unwrap();
    env.provision(&main, &["gc"]).expect(0);
    let clone = read(main.join(".git/provision/clone-id"));
    // What a `new` killed while the server copies leaves: its record,
    // locked by nobody, and a copy that waits for the template (a comment
    // on it, in an open transaction, holds the lock the copy needs).
    let half_made = "provision_new_0123456789abcd01";
    let records = main.join(".git/provision/creating");
    fs_err::create_dir_all(&records).unwrap();
    write(records.join(half_made), clone.trim_end());
    let mut holder = server().client("postgres");
    let mut hold = holder.transaction().unwrap();
    hold.batch_execute("COMMENT ON DATABASE t_racegc_tpl IS 'held'")
        .unwrap();
    let copier = std::thread::spawn(move || {
        server()
            .client("postgres")
            .batch_execute(&format!(
                "CREATE DATABASE {half_made} TEMPLATE t_racegc_tpl"
            ))
            .unwrap();
    });
    let copying = format!(
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE {half_made}%' \
         AND wait_event_type = 'Lock'"
    );
    wait_until("the copy waits for the template", || {
        admin.query_opt(&copying, &[]).unwrap().is_some()
    });

    let gc = env
        .command("strace", &main)
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=sendto"])
        .args(["-e", "inject=sendto:delay_enter=300000"])
        .arg(env!("CARGO_BIN_EXE_provision"))
        .arg("gc")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("strace runs (it is part of the test environment)");
    // gc asked whether the copy is there (not yet): the server finishes it.
    let looked = format!(
        "SELECT 1 FROM pg_stat_activity WHERE usename = '{user}' \
         AND state = 'idle' AND query = 'SELECT 1 FROM pg_database WHERE datname = $1'"
    );
    wait_until("gc looked the copy up", || {
        admin.query_opt(&looked, &[]).unwrap().is_some()
    });
    hold.rollback().unwrap();
    copier.join().unwrap();
    let out = gc.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // That gc dropped it (it was there by the time gc asked whether the
    // server still copies it), or kept its record: the next gc drops it.
    env.provision(&main, &["gc"]).expect(0);
    assert!(
        !database_exists(half_made),
        "{half_made} is left, and no record leads gc to it"
    );
    assert_eq!(fs_err::read_dir(&records).unwrap().count(), 0);
    admin.batch_execute("DROP DATABASE t_racegc_tpl").unwrap();
}

/// A `db reset` killed while the server renames its database aside (the
/// rename waits for a lock someone holds on it): the server finishes the
/// rename for the killed client. A `gc` meanwhile must not take the record
/// of a database the server is still moving for one that is gone, or the
/// database set aside is left with nothing that leads a later `gc` to it.
#[test]
fn a_database_the_server_still_sets_aside_for_a_killed_reset_keeps_its_record() {
    let env = TestEnv::new();
    let main = pg_app(&env, "asiderace", "");
    env.provision(&main, &["new", "x"]).expect(0);
    let db = "t_asiderace_x";
    let mut admin = server().client("postgres");
    let mark: String = admin
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .unwrap()
        .get(0);
    // The same comment again, in an open transaction: it holds a lock on
    // the database that its rename waits for.
    let mut holder = server().client("postgres");
    let mut hold = holder.transaction().unwrap();
    hold.batch_execute(&format!("COMMENT ON DATABASE {db} IS '{mark}'"))
        .unwrap();
    let mut child = env.provision_spawn(&env.path("worktree-x"), &["db", "reset"]);
    let renaming = format!(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'provision' \
         AND query LIKE 'ALTER DATABASE \"{db}\" RENAME TO%' AND wait_event_type = 'Lock'"
    );
    wait_until("the rename waits for the lock", || {
        admin.query_opt(&renaming, &[]).unwrap().is_some()
    });
    kill_group(&mut child);
    env.provision(&main, &["gc"]).expect(0);
    hold.rollback().unwrap();
    let aside = format!("{db}\\_aside\\_%");
    let set_aside = |admin: &mut postgres::Client| {
        admin
            .query_opt(
                "SELECT datname FROM pg_database WHERE datname LIKE $1",
                &[&aside],
            )
            .unwrap()
            .map(|r| r.get::<_, String>(0))
    };
    wait_until("the server finishes the rename", || {
        set_aside(&mut admin).is_some()
    });

    // The documented recovery: `apply` in the worktree, then `gc`.
    env.provision(&env.path("worktree-x"), &["apply"]).expect(0);
    env.provision(&main, &["gc"]).expect(0);
    assert_eq!(
        set_aside(&mut admin),
        None,
        "the database set aside is left, and no record leads gc to it"
    );
    env.provision(&main, &["remove", "x", "--force"]).expect(0);
}
