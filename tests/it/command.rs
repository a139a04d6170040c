//! `kind = "command"` driving the real `sqlite3` CLI: one database file per
//! sandbox under the main checkout's `.sandboxes/`.

use std::path::{Path, PathBuf};

use crate::support::{Run, TestEnv, read, write};

const SQLITE3: &str = "/usr/bin/sqlite3";

/// The fixture app with a command-kind recipe; `migrate` is the given line.
fn command_app(env: &TestEnv, migrate: &str, extra: &str) -> PathBuf {
    command_app_at(env, "app", migrate, extra)
}

/// `command_app` with the main checkout at `rel`.
pub(crate) fn command_app_at(env: &TestEnv, rel: &str, migrate: &str, extra: &str) -> PathBuf {
    assert!(
        Path::new(SQLITE3).is_file(),
        "the command-kind tests drive {SQLITE3}: install the `sqlite3` package"
    );
    let main = env.fixture_repo(rel);
    let file = "\"$PROVISION_MAIN/.sandboxes/{db}.db\"";
    write(
        main.join("provision.toml"),
        &format!(
            r#"[database]
kind = "command"
create = 'mkdir -p "$PROVISION_MAIN/.sandboxes" && {SQLITE3} {file} "PRAGMA user_version = 1;" && echo created {{db}} for port {{port}}'
exists = 'test -f {file}'
migrate = '{migrate}'
drop = 'rm {file}'
{extra}"#
        ),
    );
    write(
        main.join(".gitignore"),
        &format!("{}.sandboxes/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "command recipe");
    main
}

/// The command app whose `migrate` feeds one file at a time to `sqlite3`.
fn per_file_app(env: &TestEnv) -> PathBuf {
    command_app(
        env,
        &format!("{SQLITE3} \"$PROVISION_MAIN/.sandboxes/$PROVISION_DB.db\" < {{migration}}"),
        "",
    )
}

fn tables(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn commands_create_migrate_and_verify_per_migration() {
    let env = TestEnv::new();
    let main = per_file_app(&env);
    let run = env
        .provision(&main, &["new", "feature", "--json"])
        .expect(0);
    // Command output goes to stderr; stdout stays one JSON report.
    assert_eq!(run.json()["worktree"], "feature");
    assert!(
        run.stderr.contains("created app_feature for port"),
        "{}",
        run.stderr
    );

    let db = main.join(".sandboxes/app_feature.db");
    assert_eq!(tables(&db), ["posts", "users"]);
    let wt = env.path("worktree-feature");
    let lock = read(wt.join("provision.lock"));
    assert!(
        lock.contains("\"location\": \"command:app_feature\""),
        "{lock}"
    );
    assert!(lock.contains("0002_create_posts.sql"), "{lock}");
    env.provision(&wt, &["verify"]).expect(0);
    env.provision(&wt, &["apply"]).expect(0);
    assert!(
        env.provision(&wt, &["apply"])
            .expect(0)
            .stdout
            .contains("is up to date")
    );

    // A new migration goes through `migrate` too, and only it.
    write(
        wt.join("migrations/0003_add_bio.sql"),
        "ALTER TABLE users ADD COLUMN bio TEXT;\n",
    );
    env.provision(&wt, &["verify"]).expect(1);
    env.provision(&wt, &["apply"]).expect(0);
    env.provision(&wt, &["verify"]).expect(0);

    // An applied migration edited afterwards: the tool keeps no checksums,
    // provision's record does.
    env.assert_edited_migration_is_caught(&wt);

    // The database removed behind provision's back is reported missing.
    fs_err::remove_file(&db).unwrap();
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout.contains("app_feature (missing)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_folder_migrate_command_runs_once_for_all_pending() {
    let env = TestEnv::new();
    let main = command_app(
        &env,
        &format!(
            "echo run >> \"$PROVISION_MAIN/.sandboxes/runs\"; for f in $PROVISION_MIGRATIONS; do {SQLITE3} \"$PROVISION_MAIN/.sandboxes/$PROVISION_DB.db\" < \"$f\" || exit 1; done"
        ),
        "",
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    assert_eq!(read(main.join(".sandboxes/runs")), "run\n");
    assert_eq!(
        tables(&main.join(".sandboxes/app_feature.db")),
        ["posts", "users"]
    );
    env.provision(&env.path("worktree-feature"), &["verify"])
        .expect(0);
}

#[test]
fn a_failing_command_names_itself_its_status_and_output_and_is_undone() {
    let env = TestEnv::new();
    let main = per_file_app(&env);
    write(
        main.join("migrations/0003_broken.sql"),
        "CREATE TABLE oops (;\n",
    );
    env.commit_all(&main, "broken migration");
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr.contains("(migrate) exited with status 1")
            && run.stderr.contains("< {migration}`")
            && run.stderr.contains("| ")
            && run.stderr.contains("syntax error"),
        "{}",
        run.stderr
    );
    // The failed `new` dropped what it made, through the `drop` command.
    assert!(!main.join(".sandboxes/app_feature.db").exists());
    assert!(!env.path("worktree-feature").exists());
    assert!(
        !main
            .join(".git/provision/command/app_feature.json")
            .exists()
    );
}

#[test]
fn a_database_provision_did_not_create_is_refused_and_kept() {
    let env = TestEnv::new();
    let main = per_file_app(&env);
    fs_err::create_dir_all(main.join(".sandboxes")).unwrap();
    let db = main.join(".sandboxes/app_feature.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE precious(x); INSERT INTO precious VALUES (42);")
        .unwrap();
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr.contains("was not created by provision"),
        "{}",
        run.stderr
    );
    assert!(db.exists());
    assert_eq!(tables(&db), ["precious"]);
}

#[test]
fn remove_and_gc_run_the_drop_command() {
    let env = TestEnv::new();
    let main = per_file_app(&env);
    env.provision(&main, &["new", "kept"]).expect(0);
    env.provision(&main, &["new", "removed"]).expect(0);
    env.provision(&main, &["new", "orphan"]).expect(0);
    let db = |name: &str| main.join(format!(".sandboxes/app_{name}.db"));
    assert!(db("removed").is_file() && db("orphan").is_file());

    env.provision(&main, &["remove", "removed"]).expect(0);
    assert!(!db("removed").exists());
    // The worktree is gone, so gc runs the drop command in the main checkout.
    fs_err::remove_dir_all(env.path("worktree-orphan")).unwrap();
    // Past git's expiry for entries whose folder is gone.
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    env.provision(&main, &["gc"]).expect(0);
    assert!(!db("orphan").exists());
    assert!(db("kept").is_file());
    env.provision(&env.path("worktree-kept"), &["verify"])
        .expect(0);
}

/// A recipe whose database lives inside the worktree, at `{worktree}/state`.
fn in_worktree_app(env: &TestEnv, exists: &str, drop: &str) -> PathBuf {
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        &format!(
            "[database]\nkind = \"command\"\ncreate = 'mkdir -p \"{{worktree}}/state\"'\nmigrate = 'true'\nexists = '{exists}'\ndrop = '{drop}'\n"
        ),
    );
    write(
        main.join(".gitignore"),
        &format!("{}state/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "command recipe inside the worktree");
    // The main checkout's own state, which no sandbox owns.
    fs_err::create_dir_all(main.join("state")).unwrap();
    write(main.join("state/precious"), "keep me\n");
    main
}

#[test]
fn gc_never_runs_a_command_naming_a_gone_worktree_against_the_main_checkout() {
    let env = TestEnv::new();
    let main = in_worktree_app(
        &env,
        r#"test -d "{worktree}/state""#,
        r#"rm -rf "{worktree}/state""#,
    );
    env.provision(&main, &["new", "a"]).expect(0);
    assert!(env.path("worktree-a/state").is_dir());
    fs_err::remove_dir_all(env.path("worktree-a")).unwrap();
    // Past git's expiry for entries whose folder is gone.
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);

    let mut report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(read(main.join("state/precious")), "keep me\n");
    // Reported as kept, with the record (and its port) as the root that
    // leads back to the database, on every run until someone lets go.
    let kept_a = |report: &serde_json::Value| {
        report["kept"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "a")
            .map(|k| k["reason"].as_str().unwrap().to_string())
    };
    // The first run prunes git's entry (that much is removed) and keeps
    // the database; later runs find only the record, and list it as kept.
    assert_eq!(
        report["removed"][0]["database_fate"], "kept-worktree-gone",
        "{report}"
    );
    for _ in 0..2 {
        report = env.provision(&main, &["gc", "--json"]).expect(0).json();
        assert_eq!(report["removed"], serde_json::json!([]), "{report}");
        let reason = kept_a(&report).unwrap_or_else(|| panic!("a not kept: {report}"));
        assert!(reason.contains("kept database app_a"), "{reason}");
    }
    env.provision(&main, &["remove", "--force", "a"]).expect(0);
    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    assert_eq!(kept_a(&report), None, "{report}");
    assert_eq!(read(main.join("state/precious")), "keep me\n");
}

#[test]
fn gc_never_runs_a_command_naming_provision_worktree_once_its_folder_is_gone() {
    let env = TestEnv::new();
    // A `cd` that fails would leave `rm` in the command's working directory.
    let main = in_worktree_app(
        &env,
        r#"test -d "$PROVISION_WORKTREE/state""#,
        r#"cd "$PROVISION_WORKTREE"; rm -rf state"#,
    );
    env.provision(&main, &["new", "b"]).expect(0);
    fs_err::remove_dir_all(env.path("worktree-b")).unwrap();
    // Past git's expiry for entries whose folder is gone.
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    let run = env.provision(&main, &["gc"]).expect(0);
    assert_eq!(read(main.join("state/precious")), "keep me\n");
    assert!(
        run.stdout.contains("whose folder is gone"),
        "{}",
        run.stdout
    );
}

#[test]
fn provision_worktree_stays_the_gone_folder_never_the_main_checkout() {
    let env = TestEnv::new();
    // Scripts read `PROVISION_WORKTREE` where provision cannot see it, so
    // their commands still run once the folder is gone, in the main checkout.
    let main = in_worktree_app(&env, r#"sh "{main}/exists.sh""#, r#"sh "{main}/drop.sh""#);
    write(
        main.join("exists.sh"),
        "echo \"$PROVISION_WORKTREE\" >> \"$PROVISION_MAIN/seen\"\ntest -d \"$PROVISION_WORKTREE/state\"\n",
    );
    write(
        main.join("drop.sh"),
        "cd \"$PROVISION_WORKTREE\" || exit 1\nrm -rf state\n",
    );
    env.provision(&main, &["new", "b"]).expect(0);
    let wt = env.path("worktree-b");
    fs_err::remove_dir_all(&wt).unwrap();
    // Past git's expiry for entries whose folder is gone.
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    let run = env.provision(&main, &["gc", "--json"]).expect(0);
    assert_eq!(
        run.json()["removed"][0]["database_fate"],
        "absent",
        "{}",
        run.stdout
    );
    assert_eq!(read(main.join("state/precious")), "keep me\n");
    let seen = read(main.join("seen"));
    assert_eq!(seen.lines().last(), Some(wt.to_str().unwrap()), "{seen}");
    assert!(!seen.contains(&format!("{}\n", main.display())), "{seen}");
}

#[test]
fn remove_runs_commands_in_the_worktree_before_it_goes() {
    let env = TestEnv::new();
    let main = in_worktree_app(
        &env,
        r#"test -d "{worktree}/state""#,
        r#"rm -rf "{worktree}/state" && echo dropped-in "$PWD""#,
    );
    env.provision(&main, &["new", "a"]).expect(0);
    let run = env
        .provision(&main, &["remove", "a", "--force", "--json"])
        .expect(0);
    assert_eq!(run.json()["database_fate"], "dropped", "{}", run.stdout);
    assert!(run.stderr.contains("dropped-in") && run.stderr.contains("worktree-a"));
    assert_eq!(read(main.join("state/precious")), "keep me\n");
    assert!(!env.path("worktree-a").exists());
}

#[test]
fn create_without_exists_is_refused_before_it_can_adopt_a_database() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let file = "\"$PROVISION_MAIN/.sandboxes/{db}.db\"";
    // An idempotent `create`: it succeeds on a database that is already there.
    write(
        main.join("provision.toml"),
        &format!(
            "[database]\nkind = \"command\"\ncreate = 'mkdir -p \"$PROVISION_MAIN/.sandboxes\" && {SQLITE3} {file} \"SELECT 1;\"'\nmigrate = 'true'\ndrop = 'rm {file}'\n"
        ),
    );
    env.commit_all(&main, "command recipe without exists");
    fs_err::create_dir_all(main.join(".sandboxes")).unwrap();
    let db = main.join(".sandboxes/app_feature.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE precious(x);")
        .unwrap();

    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr
            .contains("provision.toml:3: database.create: needs an `exists` command"),
        "{}",
        run.stderr
    );
    // With `exists` added the recipe is valid; a sandbox made by hand on
    // that name is still refused its database, and removing it keeps it.
    write(
        main.join("provision.toml"),
        &format!(
            "{}exists = 'test -f {file}'\n",
            read(main.join("provision.toml"))
        ),
    );
    env.commit_all(&main, "command recipe with exists");
    let wt = env.path("worktree-feature");
    env.worktree_add(&main, "feature", &wt);
    refused_and_kept(&env, &main, &wt, "feature", &db);
}

/// The database a `new --json` report says it created.
fn created_database(run: &Run) -> String {
    let report = run.json();
    let created = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "create-database");
    created.expect("a create-database action")["name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every file under `dir` whose name is `name`.
fn find(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_name() == name {
            found.push(path.clone());
        }
        if entry.file_type().unwrap().is_dir() {
            found.extend(find(&path, name));
        }
    }
    found
}

#[test]
fn a_branch_name_with_shell_syntax_is_data_in_commands_never_code() {
    let env = TestEnv::new();
    // Git allows `$ ( ) { }` in branch names; the worktree path and every
    // migration's path carry the name too.
    let name = "a$(touch${IFS}PWNED)";
    let main = command_app(
        &env,
        &format!(
            "echo applying \"{{migration}}\" for \"{{name}}\" >> \"{{main}}/.sandboxes/log\" && {SQLITE3} \"$PROVISION_MAIN/.sandboxes/{{db}}.db\" < \"{{migration}}\""
        ),
        "",
    );
    let run = env.provision(&main, &["new", name, "--json"]).expect(0);
    assert!(
        find(env.dir.path(), "PWNED").is_empty(),
        "a command ran code from the name: {}",
        run.stderr
    );
    let db = created_database(&run);
    assert_eq!(
        tables(&main.join(format!(".sandboxes/{db}.db"))),
        ["posts", "users"]
    );
    let wt = env.path(&format!("worktree-{name}"));
    let log = read(main.join(".sandboxes/log"));
    assert_eq!(
        log,
        format!(
            "applying {m}/0001_create_users.sql for {name}\napplying {m}/0002_create_posts.sql for {name}\n",
            m = wt.join("migrations").display()
        )
    );
    env.provision(&wt, &["verify"]).expect(0);
    env.provision(&main, &["remove", name, "--force"]).expect(0);
    assert!(find(env.dir.path(), "PWNED").is_empty());
    assert!(!main.join(format!(".sandboxes/{db}.db")).exists());
}

#[test]
fn a_path_with_spaces_and_quotes_is_exactly_itself_inside_double_quotes() {
    let env = TestEnv::new();
    let main = env.fixture_repo(r#"my "app" $HOME `x`"#);
    let file = r#""{main}/.sandboxes/{db}.db""#;
    write(
        main.join("provision.toml"),
        &format!(
            "[database]\nkind = \"command\"\ncreate = 'mkdir -p \"{{main}}/.sandboxes\" && {SQLITE3} {file} \"PRAGMA user_version = 1;\"'\nexists = 'test -f {file}'\nmigrate = '{SQLITE3} {file} < \"{{migration}}\"'\ndrop = 'rm {file}'\n"
        ),
    );
    write(
        main.join(".gitignore"),
        &format!("{}.sandboxes/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "command recipe with templates in double quotes");
    let run = env
        .provision(&main, &["new", "feature", "--json"])
        .expect(0);
    let db = main.join(format!(".sandboxes/{}.db", created_database(&run)));
    assert_eq!(tables(&db), ["posts", "users"]);
    env.provision(&main, &["remove", "feature", "--force"])
        .expect(0);
    assert!(!db.exists());
}

/// A database of someone else's at `main/.sandboxes/app_feature.db`.
fn someone_elses_database(main: &Path) -> PathBuf {
    let db = main.join(".sandboxes/app_feature.db");
    assert!(!db.exists());
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE precious(x); INSERT INTO precious VALUES (42);")
        .unwrap();
    db
}

/// `provision` refuses to touch `db`, then `remove` and `gc` keep it.
fn refused_and_kept(env: &TestEnv, main: &Path, wt: &Path, name: &str, db: &Path) {
    let run = env.provision(wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains("was not created by provision"),
        "{}",
        run.stderr
    );
    assert_eq!(tables(db), ["precious"]);
    let run = env
        .provision(main, &["remove", name, "--force", "--json"])
        .expect(0);
    assert_eq!(
        run.json()["database_fate"],
        "kept-unmarked",
        "{}",
        run.stdout
    );
    env.provision(main, &["gc"]).expect(0);
    assert_eq!(tables(db), ["precious"]);
}

#[test]
fn a_record_left_by_another_worktree_does_not_mark_a_database() {
    let env = TestEnv::new();
    let main = per_file_app(&env);
    env.provision(&main, &["new", "feature"]).expect(0);
    // The database deleted by hand, the sandbox removed: its record stays.
    fs_err::remove_file(main.join(".sandboxes/app_feature.db")).unwrap();
    env.provision(&main, &["remove", "feature", "--force"])
        .expect(0);
    let db = someone_elses_database(&main);
    // Another worktree on a branch of the same name gets the same database
    // name; the record names the first worktree, not this one.
    let wt = env.path("elsewhere");
    env.worktree_add(&main, "feature", &wt);
    refused_and_kept(&env, &main, &wt, "feature", &db);
}

#[test]
fn a_create_that_fails_leaves_no_stale_record_to_vouch_for_the_next_database() {
    let env = TestEnv::new();
    let main = per_file_app(&env);
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    fs_err::remove_file(main.join(".sandboxes/app_feature.db")).unwrap();
    // `create` fails while `.sandboxes` is a file.
    fs_err::remove_dir_all(main.join(".sandboxes")).unwrap();
    write(main.join(".sandboxes"), "");
    env.provision(&wt, &["apply"]).expect(2);
    fs_err::remove_file(main.join(".sandboxes")).unwrap();
    fs_err::create_dir(main.join(".sandboxes")).unwrap();
    let db = someone_elses_database(&main);
    refused_and_kept(&env, &main, &wt, "feature", &db);
}

#[test]
fn a_database_dropped_by_hand_leaves_no_record_to_adopt_its_successor() {
    let env = TestEnv::new();
    let main = per_file_app(&env);
    env.provision(&main, &["new", "feature"]).expect(0);
    fs_err::remove_file(main.join(".sandboxes/app_feature.db")).unwrap();
    env.provision(&main, &["remove", "feature", "--force"])
        .expect(0);
    assert!(
        !main
            .join(".git/provision/command/app_feature.json")
            .exists(),
        "the record outlived its database"
    );
    let db = someone_elses_database(&main);
    // Same name, same worktree path, so the same owner: only the record's
    // absence tells this database from provision's.
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr.contains("was not created by provision"),
        "{}",
        run.stderr
    );
    assert_eq!(tables(&db), ["precious"]);
    // The failed `new` took its worktree back; the same path again.
    let wt = env.path("worktree-feature");
    env.worktree_add(&main, "feature", &wt);
    refused_and_kept(&env, &main, &wt, "feature", &db);
}

/// A failed `new` whose database cannot be dropped again keeps the record,
/// so the database stays findable and `gc` collects it later.
#[test]
fn a_database_a_failed_new_cannot_drop_stays_collectable() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let recipe = |drop: &str| {
        format!(
            "[database]\nkind = \"command\"\ncreate = 'mkdir -p \"{{main}}/.db\" && touch \"{{main}}/.db/{{db}}\"'\nexists = 'test -f \"{{main}}/.db/{{db}}\"'\nmigrate = 'exit 3'\ndrop = '{drop}'\n"
        )
    };
    write(main.join("provision.toml"), &recipe("exit 4"));
    write(
        main.join(".gitignore"),
        &format!("{}.db/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "a recipe whose drop fails");
    let run = env.provision(&main, &["new", "feat"]).expect(2);
    assert!(
        run.stderr
            .contains("could not drop the new database `app_feat`"),
        "{}",
        run.stderr
    );
    assert!(main.join(".db/app_feat").is_file());
    assert!(!env.path("worktree-feat").exists());

    write(
        main.join("provision.toml"),
        &recipe(r#"rm "{main}/.db/{db}""#),
    );
    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(report["removed"][0]["database_fate"], "dropped", "{report}");
    assert!(!main.join(".db/app_feat").exists());
}

/// A `create` that fails half way leaves a database without provision's
/// mark: the failed `new` must not drop it, and must say where it is.
#[test]
fn a_half_made_database_is_named_not_dropped() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"command\"\ncreate = 'mkdir -p \"{main}/.db\" && touch \"{main}/.db/{db}\" && exit 5'\nexists = 'test -f \"{main}/.db/{db}\"'\nmigrate = 'true'\ndrop = 'rm \"{main}/.db/{db}\"'\n",
    );
    write(
        main.join(".gitignore"),
        &format!("{}.db/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "a create that fails half way");
    let run = env.provision(&main, &["new", "feat"]).expect(2);
    assert!(
        run.stderr
            .contains("could not drop the new database `app_feat`")
            && run.stderr.contains("exists without provision's mark"),
        "{}",
        run.stderr
    );
    assert!(main.join(".db/app_feat").is_file());
    assert!(!env.path("worktree-feat").exists());
}

/// A recipe with only `migrate` (a tool that makes its database on first
/// migrate, inside the worktree): `remove` and `gc` take the sandbox down,
/// leave the database to its tool, and forget provision's record of it.
#[test]
fn a_recipe_with_only_migrate_is_removable() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"command\"\nmigrate = 'mkdir -p state && cat \"{migration}\" >> state/db.sql'\n",
    );
    write(
        main.join(".gitignore"),
        &format!("{}state/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "migrate-only recipe");
    env.provision(&main, &["new", "a"]).expect(0);
    env.provision(&main, &["new", "b"]).expect(0);
    let record = |db: &str| main.join(format!(".git/provision/command/{db}.json"));
    assert!(record("app_a").is_file());

    let run = env.provision(&main, &["remove", "a", "--json"]).expect(0);
    assert_eq!(
        run.json()["database_fate"],
        "kept-no-drop",
        "{}",
        run.stdout
    );
    assert!(!env.path("worktree-a").exists());
    assert!(!record("app_a").exists(), "the record is forgotten");

    fs_err::remove_dir_all(env.path("worktree-b")).unwrap();
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    let run = env.provision(&main, &["gc"]).expect(0);
    assert!(
        run.stdout
            .contains("left database app_b to its tool: the recipe has no `drop` command"),
        "{}",
        run.stdout
    );
    assert!(!record("app_b").exists());
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    assert_eq!(status["sandboxes"].as_array().unwrap().len(), 1);
}

/// A service that writes into its worktree as it stops leaves work that
/// makes `git worktree remove` refuse: the database must not go first.
#[test]
fn the_database_never_goes_while_its_worktree_stays() {
    let env = TestEnv::new();
    let main = per_file_app(&env);
    let recipe = read(main.join("provision.toml"));
    write(
        main.join("provision.toml"),
        &format!(
            "{recipe}\n[[services]]\nname = \"writer\"\nrun = \"trap 'echo bye > shutdown.log; exit 0' TERM; while :; do sleep 0.1; done\"\n"
        ),
    );
    env.commit_all(&main, "a service");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    env.provision(&wt, &["up"]).expect(0);

    let run = env.provision(&main, &["remove", "feature"]).expect(2);
    assert!(
        run.stderr
            .contains("git would refuse to remove its worktree")
            && run.stderr.contains("shutdown.log"),
        "{}",
        run.stderr
    );
    assert!(wt.is_dir());
    assert!(main.join(".sandboxes/app_feature.db").is_file(), "kept");
    env.provision(&wt, &["verify"]).expect(0);
    // Once the work is dealt with, both go.
    fs_err::remove_file(wt.join("shutdown.log")).unwrap();
    env.provision(&main, &["remove", "feature"]).expect(0);
    assert!(!wt.exists() && !main.join(".sandboxes/app_feature.db").exists());
}

/// With `snapshot` and `restore`, the command kind keeps a store of
/// migrated states too: the second sandbox is restored from the first's
/// state and applies nothing.
#[test]
fn snapshot_and_restore_give_the_command_kind_a_store() {
    let env = TestEnv::new();
    let dir = "\"$PROVISION_MAIN/.sandboxes\"";
    let main = command_app(
        &env,
        &format!("{SQLITE3} \"$PROVISION_MAIN/.sandboxes/$PROVISION_DB.db\" < {{migration}}"),
        &format!(
            "snapshot = 'cp {dir}/\"{{db}}.db\" {dir}/\"{{entry}}.db\"'\nrestore = 'cp {dir}/\"{{entry}}.db\" {dir}/\"{{db}}.db\"'\n"
        ),
    );
    let run = env.provision(&main, &["new", "a", "--json"]).expect(0);
    let actions = run.json()["actions"].clone();
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "store"),
        "{actions}"
    );
    let run = env.provision(&main, &["new", "b", "--json"]).expect(0);
    let report = run.json();
    let actions = report["actions"].as_array().unwrap();
    let create = actions
        .iter()
        .find(|a| a["action"] == "create-database")
        .unwrap();
    let entry = create["from_store"].as_str().unwrap().to_string();
    assert!(
        !actions.iter().any(|a| a["action"] == "migrate"),
        "{report}"
    );
    assert_eq!(
        tables(&main.join(".sandboxes/app_b.db")),
        ["posts", "users"]
    );
    assert!(main.join(format!(".sandboxes/{entry}.db")).is_file());
    env.provision(&env.path("worktree-b"), &["verify"])
        .expect(0);

    // `{entry}` is known to those two only, and they come in a pair.
    for (extra, want) in [
        (
            "snapshot = 'cp a {entry}'\n",
            "database.snapshot: needs a `restore` command too",
        ),
        (
            "create = 'x {entry}'\n",
            "database.create: `{entry}` cannot be used here",
        ),
    ] {
        let recipe =
            format!("[database]\nkind = \"command\"\nexists = 'e'\nmigrate = 'm'\n{extra}");
        write(main.join("provision.toml"), &recipe);
        let run = env.provision(&main, &["apply"]).expect(2);
        assert!(run.stderr.contains(want), "{want}: {}", run.stderr);
    }
}
