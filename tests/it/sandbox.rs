//! `provision new`, `apply` and `verify` on the SQLite default.

use std::path::Path;

use crate::support::{TestEnv, read, sqlite, write};

fn lock_hash(worktree: &Path) -> String {
    let lock: serde_json::Value =
        serde_json::from_str(&read(worktree.join("provision.lock"))).unwrap();
    lock["hash"].as_str().unwrap().to_string()
}

#[test]
fn new_builds_the_whole_sandbox_and_verify_is_clean() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let run = env.provision(&main, &["new", "feature-auth"]).expect(0);
    assert!(
        run.stdout.contains("sandbox feature-auth is ready"),
        "{}",
        run.stdout
    );

    let wt = env.path("worktree-feature-auth");
    assert_eq!(
        env.git(&wt, &["branch", "--show-current"]).trim(),
        "feature-auth"
    );
    for (link, target) in [
        (".env", "../app/.env"),
        (".dev.vars", "../app/.dev.vars"),
        (".npmrc", "../app/.npmrc"),
        ("node_modules", "../app/node_modules"),
    ] {
        assert_eq!(
            fs_err::read_link(wt.join(link)).unwrap(),
            Path::new(target),
            "{link}"
        );
    }
    assert!(wt.join("node_modules/left-pad/index.js").is_file());
    let env_file = read(wt.join(".env.local"));
    assert!(
        env_file.contains("DB_NAME=app_feature_auth\n"),
        "{env_file}"
    );
    assert!(env_file.contains("PORT="), "{env_file}");

    let db = sqlite(&main, "app_feature_auth");
    let d1: Vec<String> = db
        .prepare("SELECT name FROM d1_migrations ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(d1, ["0001_create_users.sql", "0002_create_posts.sql"]);
    let ours: i64 = db
        .query_row("SELECT count(*) FROM provision_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(ours, 2);
    db.execute("INSERT INTO users(email) VALUES('a@example.com')", [])
        .unwrap();

    let lock = read(wt.join("provision.lock"));
    assert!(lock.contains("\"hash\": \"blake3:"), "{lock}");
    assert!(
        !lock.contains(env.dir.path().to_str().unwrap()),
        "absolute path in lock:\n{lock}"
    );

    env.provision(&wt, &["verify"]).expect(0);
    // The links, env file and lock are kept out of git status.
    assert_eq!(env.git(&wt, &["status", "--porcelain"]), "");
}

#[test]
fn two_sandboxes_are_isolated() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "a"]).expect(0);
    env.provision(&main, &["new", "b"]).expect(0);
    sqlite(&main, "app_a")
        .execute(
            "INSERT INTO users(email) VALUES('only-in-a@example.com')",
            [],
        )
        .unwrap();
    let in_b: i64 = sqlite(&main, "app_b")
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(in_b, 0);
    let (a, b) = (
        read(env.path("worktree-a/.env.local")),
        read(env.path("worktree-b/.env.local")),
    );
    assert!(a.contains("DB_NAME=app_a") && b.contains("DB_NAME=app_b"));
    let port = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("PORT="))
            .unwrap()
            .to_string()
    };
    assert_ne!(port(&a), port(&b));
}

#[test]
fn apply_on_a_healthy_sandbox_changes_nothing() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let before = read(wt.join("provision.lock"));
    let run = env.provision(&wt, &["apply", "--json"]).expect(0);
    assert_eq!(run.json()["actions"], serde_json::json!([]));
    let run = env.provision(&wt, &[]).expect(0);
    assert!(run.stdout.contains("is up to date"), "{}", run.stdout);
    assert_eq!(read(wt.join("provision.lock")), before);
}

/// Each kind of drift: verify exits 1 and names it, apply repairs it, and
/// the lock comes back byte for byte.
#[test]
fn drift_is_reported_and_repaired() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let original = read(wt.join("provision.lock"));

    type Breaker = Box<dyn Fn()>;
    let (wt2, main2) = (wt.clone(), main.clone());
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "delete a link",
            Box::new({
                let wt = wt.clone();
                move || fs_err::remove_file(wt.join("node_modules")).unwrap()
            }),
            "link node_modules",
        ),
        (
            "edit the env file",
            Box::new({
                let wt = wt.clone();
                move || {
                    write(
                        wt.join(".env.local"),
                        &read(wt.join(".env.local")).replace("DB_NAME=app_feature", "DB_NAME=prod"),
                    )
                }
            }),
            "env file .env.local",
        ),
        (
            "delete a ledger row",
            Box::new(move || {
                sqlite(&main2, "app_feature")
                    .execute(
                        "DELETE FROM d1_migrations WHERE name = '0002_create_posts.sql'",
                        [],
                    )
                    .unwrap();
            }),
            "migration 0002_create_posts.sql",
        ),
        (
            "edit the lock",
            Box::new(move || {
                write(
                    wt2.join("provision.lock"),
                    &read(wt2.join("provision.lock"))
                        .replace("\"name\": \"app_feature\"", "\"name\": \"app_other\""),
                )
            }),
            "provision.lock",
        ),
    ];
    for (what, break_it, named) in cases {
        break_it();
        let run = env.provision(&wt, &["verify"]).expect(1);
        assert!(
            run.stdout.contains(named),
            "{what}: verify should name {named}:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("--- provision.lock"),
            "{what}: no diff:\n{}",
            run.stdout
        );
        env.provision(&wt, &["apply"]).expect(0);
        env.provision(&wt, &["verify"]).expect(0);
        assert_eq!(
            read(wt.join("provision.lock")),
            original,
            "{what}: lock differs after repair"
        );
    }
}

#[test]
fn verify_json_lists_findings() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    fs_err::remove_file(wt.join(".npmrc")).unwrap();
    let report = env.provision(&wt, &["verify", "--json"]).expect(1).json();
    assert_eq!(report["clean"], false);
    assert_eq!(report["findings"][0]["subject"], "link .npmrc");
    assert_eq!(report["findings"][0]["message"], "missing");
}

#[test]
fn same_recipe_and_name_give_the_same_lock_in_any_clone() {
    let env = TestEnv::new();
    let origin = env.fixture_repo("origin");
    let one = env.clone_of(&origin, "one/app");
    let two = env.clone_of(&origin, "elsewhere/deeper/checkout");
    env.provision(&one, &["new", "feature-auth"]).expect(0);
    env.provision(&two, &["new", "feature-auth"]).expect(0);
    let a = env.path("one/worktree-feature-auth");
    let b = env.path("elsewhere/deeper/worktree-feature-auth");
    assert_eq!(lock_hash(&a), lock_hash(&b));
    assert_eq!(
        read(a.join("provision.lock")),
        read(b.join("provision.lock"))
    );
}

/// The seed recipe's trap: the override file is also a shared, linked file.
#[test]
fn env_file_that_is_also_shared_becomes_a_real_file() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("provision.toml"), "[env]\nfile = \".dev.vars\"\n");
    env.commit_all(&main, "recipe");
    let shared_before = read(main.join(".dev.vars"));

    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let meta = fs_err::symlink_metadata(wt.join(".dev.vars")).unwrap();
    assert!(meta.file_type().is_file(), ".dev.vars must be a real file");
    let text = read(wt.join(".dev.vars"));
    assert!(text.contains("CLOUDFLARE_ACCOUNT=acct-123\n"), "{text}");
    assert!(text.contains("DB_NAME=app_feature\n"), "{text}");
    assert!(
        !text.contains("DB_NAME=fixture_app\n"),
        "the override must win:\n{text}"
    );
    assert_eq!(read(main.join(".dev.vars")), shared_before);

    // A changed shared file makes the sandbox stale; apply merges it again.
    write(
        main.join(".dev.vars"),
        &format!("{shared_before}NEW_KEY=rotated\n"),
    );
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout.contains("main checkout's .dev.vars changed"),
        "{}",
        run.stdout
    );
    env.provision(&wt, &["apply"]).expect(0);
    assert!(read(wt.join(".dev.vars")).contains("NEW_KEY=rotated"));
    env.provision(&wt, &["verify"]).expect(0);

    // Replacing the file by the old-style symlink is caught and undone.
    fs_err::remove_file(wt.join(".dev.vars")).unwrap();
    fs_err::os::unix::fs::symlink("../app/.dev.vars", wt.join(".dev.vars")).unwrap();
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(run.stdout.contains("is a symlink"), "{}", run.stdout);
    env.provision(&wt, &["apply"]).expect(0);
    assert!(
        fs_err::symlink_metadata(wt.join(".dev.vars"))
            .unwrap()
            .file_type()
            .is_file()
    );
    assert!(!read(main.join(".dev.vars")).contains("DB_NAME=app_feature"));
}

#[test]
fn migrations_edited_after_apply_are_refused_by_name() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    env.assert_edited_migration_is_caught(&wt);
}

#[test]
fn a_new_migration_is_stale_until_applied() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    write(
        wt.join("migrations/0003_add_bio.sql"),
        "ALTER TABLE users ADD COLUMN bio TEXT;\n",
    );
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout.contains("migration 0003_add_bio.sql") && run.stdout.contains("not applied yet"),
        "{}",
        run.stdout
    );
    let run = env.provision(&wt, &["apply", "--dry-run"]).expect(0);
    assert!(
        run.stdout.contains("migrate   0003_add_bio.sql"),
        "{}",
        run.stdout
    );
    env.provision(&wt, &["verify"]).expect(1);
    env.provision(&wt, &["apply"]).expect(0);
    env.provision(&wt, &["verify"]).expect(0);
    sqlite(&main, "app_feature")
        .execute("UPDATE users SET bio = 'x'", [])
        .unwrap();
}

#[test]
fn a_failing_migration_leaves_nothing_half_made() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("migrations/0003_broken.sql"),
        "CREATE TABLE oops (;\n",
    );
    env.commit_all(&main, "broken migration");
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr.contains("migration 0003_broken.sql failed"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-feature").exists());
    assert_eq!(env.git(&main, &["branch", "--list", "feature"]), "");
    // Nothing under the databases' folder either: not the database built
    // during the checkout, not a temporary file.
    let left: Vec<_> = fs_err::read_dir(main.join(".git/provision/sqlite"))
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        fs_err::read_dir(main.join(".git/provision/sandboxes"))
            .unwrap()
            .count(),
        0
    );
}

/// `new` builds the database from git's objects while git checks out, and
/// keeps it only if the files git wrote are the same migrations: a
/// post-checkout hook that changes one makes it build from the files.
#[test]
fn the_database_follows_the_checked_out_migrations() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let hook = main.join(".git/hooks/post-checkout");
    write(
        &hook,
        "#!/bin/sh\necho 'CREATE TABLE from_hook (x);' >> migrations/0002_create_posts.sql\n",
    );
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let run = env.provision(&main, &["--json", "new", "hooked"]).expect(0);
    let db = sqlite(&main, "app_hooked");
    let tables: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'from_hook'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "{}", run.stdout);
    env.provision(&env.path("worktree-hooked"), &["verify"])
        .expect(0);

    // Without the hook, the database built during the checkout is the one
    // kept, and the report says it was made first: from the store, where
    // the first one's build from git's objects put its state.
    fs_err::remove_file(&hook).unwrap();
    let run = env.provision(&main, &["--json", "new", "plain"]).expect(0);
    let report = run.json();
    let actions: Vec<String> = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions[0], "create-database", "{actions:?}");
    assert!(report["actions"][0]["from_store"].is_string(), "{report}");
    assert!(!actions.contains(&"migrate".to_string()), "{actions:?}");
    env.provision(&env.path("worktree-plain"), &["verify"])
        .expect(0);
    let left: Vec<_> = fs_err::read_dir(main.join(".git/provision/sqlite"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("provision_store_"))
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

/// In a sandbox that already has its database, a migration that fails
/// half way is rolled back alone: the ones before it stay applied, its own
/// first statement is undone, and neither ledger lists it.
#[test]
fn a_migration_failing_half_way_rolls_back_alone() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    write(
        main.join("migrations/0003_fine.sql"),
        "CREATE TABLE fine (x);\n",
    );
    write(
        main.join("migrations/0004_broken.sql"),
        "CREATE TABLE half (x);\nCREATE TABLE oops (;\n",
    );
    env.commit_all(&main, "a fine and a broken migration");
    let wt = env.path("worktree-feature");
    env.git(&wt, &["merge", "-q", "main"]);

    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains(
            "error: migration 0004_broken.sql failed: line 2: near \";\": syntax error\n"
        ),
        "{}",
        run.stderr
    );
    let db = sqlite(&main, "app_feature");
    let tables = |name: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!((tables("fine"), tables("half")), (1, 0));
    for ledger in ["d1_migrations", "provision_migrations"] {
        let names: Vec<String> = db
            .prepare(&format!("SELECT name FROM {ledger} ORDER BY name"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            names,
            [
                "0001_create_users.sql",
                "0002_create_posts.sql",
                "0003_fine.sql"
            ],
            "{ledger}"
        );
    }
    // The lock still claims only what it claimed before.
    assert!(!read(wt.join("provision.lock")).contains("0003_fine.sql"));
}

#[test]
fn plain_git_worktrees_are_adopted() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.git(
        &main,
        &["worktree", "add", "-q", "-b", "by-hand", "../by-hand"],
    );
    let wt = env.path("by-hand");
    env.provision(&wt, &["verify"]).expect(1);
    env.provision(&wt, &[]).expect(0);
    env.provision(&wt, &["verify"]).expect(0);
    assert!(read(wt.join(".env.local")).contains("DB_NAME=app_by_hand"));
    assert!(
        fs_err::symlink_metadata(wt.join("node_modules"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn the_main_checkout_gets_a_sandbox_without_links_to_itself() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["apply"]).expect(0);
    assert!(
        fs_err::symlink_metadata(main.join(".env"))
            .unwrap()
            .file_type()
            .is_file()
    );
    assert!(read(main.join(".env.local")).contains("DB_NAME=app_main"));
    env.provision(&main, &["verify"]).expect(0);
}

#[test]
fn user_files_are_never_clobbered() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.worktree_add(&main, "mine", &env.path("mine"));
    let wt = env.path("mine");
    write(wt.join(".env.local"), "MY_OWN=1\n");
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr
            .contains(".env.local exists and was not written by provision"),
        "{}",
        run.stderr
    );
    assert_eq!(read(wt.join(".env.local")), "MY_OWN=1\n");

    fs_err::remove_file(wt.join(".env.local")).unwrap();
    write(wt.join(".npmrc"), "registry=http://localhost:4873/\n");
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains(".npmrc is a real file"),
        "{}",
        run.stderr
    );
    assert_eq!(read(wt.join(".npmrc")), "registry=http://localhost:4873/\n");
    assert!(
        !wt.join("provision.lock").exists(),
        "no lock may claim a sandbox that was not built"
    );
}

#[test]
fn dry_run_changes_nothing() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.worktree_add(&main, "later", &env.path("later"));
    let wt = env.path("later");
    let run = env
        .provision(&wt, &["apply", "--dry-run", "--json"])
        .expect(0);
    let actions = run.json()["actions"].as_array().unwrap().len();
    assert!(actions >= 6, "{}", run.stdout);
    assert!(!wt.join(".env.local").exists() && !wt.join("provision.lock").exists());
    assert!(
        !main.join(".git/provision/sandboxes").exists()
            || fs_err::read_dir(main.join(".git/provision/sandboxes"))
                .unwrap()
                .count()
                == 0
    );
    assert!(!main.join(".git/provision/sqlite/app_later.sqlite").exists());
}

#[test]
fn an_absent_include_that_appears_is_linked_by_the_next_apply() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join(".worktreeinclude"), ".env\n.wrangler\n");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    env.provision(&wt, &["verify"]).expect(0);

    fs_err::create_dir_all(main.join(".wrangler/state")).unwrap();
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(run.stdout.contains("link .wrangler"), "{}", run.stdout);
    env.provision(&wt, &["apply"]).expect(0);
    assert!(
        fs_err::symlink_metadata(wt.join(".wrangler"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    env.provision(&wt, &["verify"]).expect(0);
}

#[test]
fn what_the_worktree_makes_at_an_absent_includes_path_is_its_own() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join(".worktreeinclude"), ".env\n.wrangler\n.cache\n");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    // wrangler makes its state folder in the worktree; a person links a
    // cache of their own. Neither is provision's, so verify has nothing to
    // say and apply nothing to do, and neither touches them.
    fs_err::create_dir_all(wt.join(".wrangler/state")).unwrap();
    write(wt.join(".wrangler/state/d1.sqlite"), "local");
    fs_err::os::unix::fs::symlink("/tmp", wt.join(".cache")).unwrap();
    env.provision(&wt, &["verify"]).expect(0);
    let dry = env.provision(&wt, &["apply", "--dry-run"]).expect(0);
    assert!(
        dry.stdout.contains("would apply 0 action(s)"),
        "{}",
        dry.stdout
    );
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(read(wt.join(".wrangler/state/d1.sqlite")), "local");
    assert_eq!(
        fs_err::read_link(wt.join(".cache")).unwrap(),
        Path::new("/tmp")
    );

    // Once the main checkout has one, the worktree's own is in the way: named, kept.
    fs_err::create_dir_all(main.join(".wrangler")).unwrap();
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(run.stdout.contains("link .wrangler"), "{}", run.stdout);
    assert_eq!(read(wt.join(".wrangler/state/d1.sqlite")), "local");
}

#[test]
fn a_ledger_checksum_edited_in_the_database_is_drift() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    sqlite(&main, "app_feature")
        .execute(
            "UPDATE provision_migrations SET checksum = 'blake3:0000'",
            [],
        )
        .unwrap();
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout
            .contains("the database's ledger records checksum blake3:0000"),
        "{}",
        run.stdout
    );
}

/// A recipe that renames the database must not strand the old one.
#[test]
fn a_renamed_database_is_stale_and_never_left_behind() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    write(
        main.join("provision.toml"),
        "[database]\nname = \"renamed_{slug}\"\n",
    );
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout
            .contains("the recipe now names it renamed_feature"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("(missing)"), "{}", run.stdout);
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(run.stderr.contains("sandbox `feature` owns database `app_feature`, but the recipe now names `renamed_feature`"), "{}", run.stderr);
    assert!(
        main.join(".git/provision/sqlite/app_feature.sqlite")
            .is_file()
    );
    assert!(
        !main
            .join(".git/provision/sqlite/renamed_feature.sqlite")
            .exists()
    );
}

/// git reuses a worktree id once its entry is pruned; the new worktree must
/// not inherit the old sandbox's database.
#[test]
fn a_reused_worktree_id_does_not_inherit_the_old_sandbox() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "old"]).expect(0);
    sqlite(&main, "app_old")
        .execute("INSERT INTO users(email) VALUES('keep@example.com')", [])
        .unwrap();
    fs_err::remove_dir_all(env.path("worktree-old")).unwrap();
    env.git(&main, &["worktree", "prune"]);
    let run = env
        .provision(&main, &["new", "zed", "--path", "../worktree-old"])
        .expect(2);
    assert!(
        run.stderr.contains("still holds sandbox `old`"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-old").exists());
    let kept: i64 = sqlite(&main, "app_old")
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1);
    env.provision(&main, &["gc"]).expect(0);
    env.provision(&main, &["new", "zed", "--path", "../worktree-old"])
        .expect(0);
}

#[test]
fn concurrent_applies_in_one_worktree_take_turns() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.worktree_add(&main, "w", &env.path("w"));
    let wt = env.path("w");
    let start = std::sync::Barrier::new(4);
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (env, wt, start) = (&env, &wt, &start);
                scope.spawn(move || {
                    start.wait();
                    env.provision(wt, &["apply"])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in runs {
        run.expect(0);
    }
    env.provision(&wt, &["verify"]).expect(0);
}

/// A folder linked whole, then only a file inside it: the old folder link
/// goes first, and nothing is ever written or deleted through it into the
/// main checkout (whose file here is itself a link to a secret elsewhere).
#[test]
fn nothing_is_written_through_a_linked_folder_into_the_main_checkout() {
    let env = TestEnv::new();
    let (main, wt, secret) = env.linked_config_folder();
    assert!(
        fs_err::symlink_metadata(wt.join("config"))
            .unwrap()
            .is_symlink()
    );

    write(main.join(".worktreeinclude"), ".env\nconfig/app.env\n");
    let run = env.provision(&wt, &["apply"]).expect(0);
    let step = |text| run.stderr.find(text).expect(&run.stderr);
    assert!(
        step("unlink    config\n") < step("link      config/app.env"),
        "the old link goes first: {}",
        run.stderr
    );
    assert_eq!(
        fs_err::read_link(main.join("config/app.env")).unwrap(),
        secret
    );
    assert_eq!(read(main.join("config/app.env")), "KEY=secret\n");
    assert!(
        fs_err::symlink_metadata(wt.join("config"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(read(wt.join("config/app.env")), "KEY=secret\n");
    env.provision(&wt, &["verify"]).expect(0);

    // A folder the user linked by hand is refused by name, not written through.
    let wt = env.path("mine");
    env.worktree_add(&main, "mine", &wt);
    fs_err::os::unix::fs::symlink("../app/config", wt.join("config")).unwrap();
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains(
            "error: config/app.env cannot be linked: config in this worktree is a symlink; provision will not write through or replace it"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        fs_err::read_link(main.join("config/app.env")).unwrap(),
        secret
    );
}
