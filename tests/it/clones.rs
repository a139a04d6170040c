//! A clone's identity (`.git/provision/clone-id`): databases stay
//! provision's when the repository moves, and clones sharing one
//! PostgreSQL server each get databases of their own, which the other's
//! `remove` and `gc` never touch.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::command::command_app_at;
use crate::pg_server::server;
use crate::postgres::{database_exists as exists, pg_app_at};
use crate::support::{TestEnv, read, write};

fn clone_id(main: &Path) -> String {
    read(main.join(".git/provision/clone-id"))
        .trim_end()
        .to_string()
}

/// `{clone}` of the clone at `main`.
fn tag(main: &Path) -> String {
    clone_id(main)[..8].to_string()
}

fn mark(name: &str) -> Option<String> {
    server()
        .client("postgres")
        .query_one(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .get(0)
}

fn set_mark(name: &str, mark: &str) {
    server()
        .client("postgres")
        .batch_execute(&format!(
            "COMMENT ON DATABASE \"{name}\" IS '{}'",
            mark.replace('\'', "''")
        ))
        .unwrap();
}

fn drop_database(name: &str) {
    server()
        .client("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
        .unwrap();
}

/// Moves the whole main checkout to `to`, and lets git find its linked
/// worktrees again, as a user would after `mv`.
fn move_repository(env: &TestEnv, main: &Path, to: &str) -> PathBuf {
    let moved = env.path(to);
    fs_err::create_dir_all(moved.parent().unwrap()).unwrap();
    fs_err::rename(main, &moved).unwrap();
    env.git(&moved, &["worktree", "repair"]);
    moved
}

/// A worktree's folder gone, past git's expiry: `gc` collects its sandbox.
fn orphan(env: &TestEnv, main: &Path, worktree: &Path) {
    fs_err::remove_dir_all(worktree).unwrap();
    env.git(main, &["config", "gc.worktreePruneExpire", "now"]);
}

#[test]
fn a_moved_repository_keeps_its_postgres_databases() {
    let env = TestEnv::new();
    let main = pg_app_at(&env, "app", "");
    for name in ["kept", "removed", "orphan"] {
        env.provision(&main, &["new", name]).expect(0);
    }
    let tag = tag(&main);
    let db = |name: &str| format!("app_{name}_{tag}");
    assert!(exists(&db("removed")) && exists(&db("orphan")));

    let main = move_repository(&env, &main, "moved/app");
    env.provision(&main, &["remove", "removed"]).expect(0);
    assert!(!exists(&db("removed")));
    orphan(&env, &main, &env.path("worktree-orphan"));
    env.provision(&main, &["gc"]).expect(0);
    assert!(!exists(&db("orphan")));

    // A sandbox from before the move is brought up to date (its links
    // point at the main checkout's new place), its database the same one.
    let kept = env.path("worktree-kept");
    env.provision(&kept, &["apply"]).expect(0);
    env.provision(&kept, &["verify"]).expect(0);
    assert!(exists(&db("kept")));
    env.provision(&main, &["new", "after"]).expect(0);
    assert!(exists(&db("after")));
    env.provision(&env.path("moved/worktree-after"), &["verify"])
        .expect(0);
    for name in ["kept", "after"] {
        env.provision(&main, &["remove", name]).expect(0);
        assert!(!exists(&db(name)), "{name}");
    }
}

/// Renamed, too: `remove` and `gc` find the databases a sandbox made
/// before the rename (under the old `{repo}`), and `new` names new ones
/// after the new folder.
#[test]
fn a_renamed_repository_keeps_its_command_kind_and_sqlite_databases() {
    let env = TestEnv::new();
    let migrate = "/usr/bin/sqlite3 \"$PROVISION_MAIN/.sandboxes/$PROVISION_DB.db\" < {migration}";
    let command = command_app_at(&env, "command/app", migrate, "");
    let sqlite = env.fixture_repo("sqlite/app");
    for main in [&command, &sqlite] {
        for name in ["removed", "orphan"] {
            env.provision(main, &["new", name]).expect(0);
        }
    }
    let command = move_repository(&env, &command, "command/renamed");
    let sqlite = move_repository(&env, &sqlite, "sqlite/renamed");
    let files = [
        (&command, "command", ".sandboxes/app_{}.db"),
        (&sqlite, "sqlite", ".git/provision/sqlite/app_{}.sqlite"),
    ];
    for (main, kind, file) in files {
        let db = |name: &str| main.join(file.replace("{}", name));
        assert!(db("removed").is_file() && db("orphan").is_file(), "{kind}");
        env.provision(main, &["remove", "removed"]).expect(0);
        assert!(!db("removed").exists(), "{kind}");
        orphan(&env, main, &env.path(&format!("{kind}/worktree-orphan")));
        env.provision(main, &["gc"]).expect(0);
        assert!(!db("orphan").exists(), "{kind}");
        env.provision(main, &["new", "after"]).expect(0);
        let renamed = main.join(file.replace("app_{}", "renamed_after"));
        assert!(renamed.is_file(), "{kind}");
    }
}

/// Two clones on two machines share a team's server: each gets its own
/// database for the same sandbox name, with the same lock, and neither's
/// `remove` or `gc` touches the other's.
#[test]
fn two_clones_on_one_server_each_get_their_own_databases() {
    let env = TestEnv::new();
    let a = pg_app_at(&env, "app", "");
    let b = env.clone_of(&a, "elsewhere/app");
    env.provision(&a, &["new", "feature"]).expect(0);
    let new = env.provision(&b, &["--json", "new", "feature"]).expect(0);
    assert_ne!(tag(&a), tag(&b));
    let (db_a, db_b) = (
        format!("app_feature_{}", tag(&a)),
        format!("app_feature_{}", tag(&b)),
    );
    assert_eq!(new.json()["database"]["name"], db_b.as_str());
    assert_eq!(new.json()["env"]["DB_NAME"], db_b.as_str());
    for (main, db) in [(&a, &db_a), (&b, &db_b)] {
        assert_eq!(
            mark(db).unwrap(),
            format!(
                "provision:v1 clone={} worktree=worktree-feature",
                clone_id(main)
            )
        );
    }
    let (wt_a, wt_b) = (
        env.path("worktree-feature"),
        env.path("elsewhere/worktree-feature"),
    );
    assert!(read(wt_b.join(".env.local")).contains(&format!("DB_NAME={db_b}\n")));
    let (lock_a, lock_b) = (
        read(wt_a.join("provision.lock")),
        read(wt_b.join("provision.lock")),
    );
    assert!(
        lock_a.contains("\"name\": \"app_feature_{clone}\""),
        "{lock_a}"
    );
    assert_eq!(without_port(&lock_a), without_port(&lock_b));
    let port = |lock: &str| serde_json::from_str::<Value>(lock).unwrap()["port"].clone();
    if port(&lock_a) == port(&lock_b) {
        assert_eq!(lock_a, lock_b);
    }

    // A record in B that names A's database (forged, or restored from A)
    // does not get it dropped: its mark names clone A.
    env.provision(&b, &["new", "stray"]).expect(0);
    let stray = format!("app_stray_{}", tag(&b));
    let record = b.join(".git/provision/sandboxes/worktree-stray.json");
    write(&record, &read(&record).replace(&stray, &db_a));
    orphan(&env, &b, &env.path("elsewhere/worktree-stray"));
    let gc = env.provision(&b, &["gc"]).expect(0);
    assert!(
        gc.stdout
            .contains(&format!("kept database {db_a}: it has no provision mark")),
        "{}",
        gc.stdout
    );
    assert!(exists(&db_a));
    drop_database(&stray);

    env.provision(&b, &["remove", "feature"]).expect(0);
    assert!(!exists(&db_b) && exists(&db_a));
    env.provision(&wt_a, &["verify"]).expect(0);
    env.provision(&a, &["remove", "feature"]).expect(0);
    assert!(!exists(&db_a));
}

/// `lock` without the port and the hashes over it.
fn without_port(lock: &str) -> Value {
    let mut value: Value = serde_json::from_str(lock).unwrap();
    for field in ["/port", "/hash", "/env/content", "/env/overrides/PORT"] {
        *value.pointer_mut(field).unwrap() = Value::Null;
    }
    value
}

/// A name without `{clone}` is the same in both clones: the second is
/// refused, and the first clone's database is not taken over.
#[test]
fn a_database_another_clone_made_is_never_adopted() {
    let env = TestEnv::new();
    let a = pg_app_at(&env, "app", "name = \"t_adopt_{slug}\"\n");
    let b = env.clone_of(&a, "elsewhere/app");
    env.provision(&a, &["new", "feature"]).expect(0);
    let run = env.provision(&b, &["new", "feature"]).expect(2);
    assert!(
        run.stderr
            .contains("database `t_adopt_feature` at postgres:t_adopt_feature exists but was not created by provision for this worktree"),
        "{}",
        run.stderr
    );
    assert!(mark("t_adopt_feature").unwrap().contains(&clone_id(&a)));
    env.provision(&b, &["gc"]).expect(0);
    assert!(exists("t_adopt_feature"));
    env.provision(&a, &["remove", "feature"]).expect(0);
    assert!(!exists("t_adopt_feature"));
}

/// What an older provision made (marked by the repository's path, named
/// by the old default) stays this clone's: `apply` marks it anew, `remove`
/// drops it, and a recipe that keeps the default keeps its name.
#[test]
fn databases_from_before_clone_ids_stay_owned() {
    let env = TestEnv::new();
    let main = pg_app_at(&env, "t_legacy", "name = \"{repo}_{slug}\"\n");
    for name in ["applied", "removed"] {
        env.provision(&main, &["new", name]).expect(0);
    }
    let common_dir = fs_err::canonicalize(main.join(".git")).unwrap();
    for name in ["applied", "removed"] {
        let by_path = format!(
            "provision:v1 repo={} worktree=worktree-{name}",
            common_dir.display()
        );
        set_mark(&format!("t_legacy_{name}"), &by_path);
    }
    // The recipe goes back to the default name, which now holds `{clone}`.
    write(
        main.join("provision.toml"),
        &read(main.join("provision.toml")).replace("name = \"{repo}_{slug}\"\n", ""),
    );
    env.commit_all(&main, "default name");
    let applied = env.path("worktree-applied");
    env.provision(&applied, &["apply"]).expect(0);
    env.provision(&applied, &["verify"]).expect(0);
    assert_eq!(
        mark("t_legacy_applied").unwrap(),
        format!(
            "provision:v1 clone={} worktree=worktree-applied",
            clone_id(&main)
        )
    );
    env.provision(&main, &["remove", "removed"]).expect(0);
    assert!(!exists("t_legacy_removed"));
    env.provision(&main, &["new", "newer"]).expect(0);
    let newer = format!("t_legacy_newer_{}", tag(&main));
    assert!(exists(&newer));
    for name in ["applied", "newer"] {
        env.provision(&main, &["remove", name]).expect(0);
    }
    assert!(!exists("t_legacy_applied") && !exists(&newer));
}

/// A clone identity that is not one provision wrote stops every command
/// that could act on a database, naming the file; nothing is dropped.
#[test]
fn a_forged_clone_id_is_an_error_and_nothing_is_dropped() {
    let env = TestEnv::new();
    let main = pg_app_at(&env, "app", "");
    env.provision(&main, &["new", "feature"]).expect(0);
    let db = format!("app_feature_{}", tag(&main));
    let file = main.join(".git/provision/clone-id");
    let id = read(&file);
    let wt = env.path("worktree-feature");
    for forged in [
        "",
        "garbage\n",
        "repo=/elsewhere/.git\n",
        &id.to_uppercase(),
    ] {
        write(&file, forged);
        for (cwd, args) in [
            (&main, &["remove", "feature"][..]),
            (&main, &["gc"][..]),
            (&wt, &["apply"][..]),
        ] {
            let run = env.provision(cwd, args).expect(2);
            let first = run.stderr.lines().next().unwrap_or_default();
            assert!(
                first.starts_with(&format!(
                    "error: {} is not a clone identity provision wrote",
                    fs_err::canonicalize(&file).unwrap().display()
                )),
                "{args:?} {forged:?}: {}",
                run.stderr
            );
        }
        assert!(exists(&db) && wt.is_dir(), "{forged:?}");
    }
    let json = env.provision(&main, &["--json", "gc"]).expect(2).json();
    assert_eq!(json["exit"], 2);
    write(&file, &id);
    env.provision(&main, &["remove", "feature"]).expect(0);
    assert!(!exists(&db));
}

/// A repository copied whole carries its identity: the copy is refused,
/// even once the original has moved away, until `provision identity --new`
/// gives it one of its own; then its sandboxes get databases of their own,
/// and the original's stay its.
#[test]
fn a_copied_repository_is_refused_until_it_has_an_identity_of_its_own() {
    let env = TestEnv::new();
    let main = pg_app_at(&env, "app", "");
    env.provision(&main, &["apply"]).expect(0);
    env.provision(&main, &["new", "feature"]).expect(0);
    let original = tag(&main);
    let db = |name: &str| format!("app_{name}_{original}");
    let copy = env.path("copy/app");
    fs_err::create_dir_all(copy.parent().unwrap()).unwrap();
    let cp = std::process::Command::new("cp")
        .args(["-a", main.to_str().unwrap(), copy.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(cp.success());
    // The original is renamed: it keeps its identity, the copy does not
    // take it.
    let main = move_repository(&env, &main, "renamed/app");
    env.provision(&main, &["status"]).expect(0);
    let copy_git = fs_err::canonicalize(copy.join(".git")).unwrap();
    for args in [
        &["new", "other"][..],
        &["gc"][..],
        &["status"][..],
        &["apply"][..],
    ] {
        let run = env.provision(&copy, args).expect(2);
        assert!(
            run.stderr.starts_with(&format!(
                "error: {} holds the clone identity of {}, but is not that folder: this repository is a copy of it, or was moved from another file system;",
                copy_git.display(),
                fs_err::canonicalize(env.path("app")).unwrap_or(env.path("app")).join(".git").display()
            )) && run.stderr.contains("`provision identity --new`"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(exists(&db("main")) && exists(&db("feature")));
    env.provision(&main, &["new", "x"]).expect(0);

    let json = env
        .provision(&copy, &["--json", "identity", "--new"])
        .expect(0)
        .json();
    assert_eq!(json["action"], "new");
    assert_eq!(json["renamed"], serde_json::json!(["main", "feature"]));
    let own = tag(&copy);
    assert_ne!(own, original);
    env.provision(&copy, &["apply"]).expect(0);
    env.provision(&copy, &["verify"]).expect(0);
    env.provision(&copy, &["new", "x"]).expect(0);
    assert!(exists(&format!("app_main_{own}")) && exists(&format!("app_x_{own}")));
    env.provision(&copy, &["remove", "x"]).expect(0);
    assert!(exists(&db("x")) && exists(&db("main")) && exists(&db("feature")));
    env.provision(&env.path("renamed/worktree-x"), &["verify"])
        .expect(0);
    env.provision(&main, &["remove", "x"]).expect(0);
    env.provision(&main, &["remove", "feature"]).expect(0);
    assert!(!exists(&db("x")) && !exists(&db("feature")));
}

/// A hard-linked copy (`cp -al`) shares the identity's file, not its
/// folder: refused too. Moved across file systems (a new folder, the old
/// one gone), `provision identity --moved` keeps the identity.
#[test]
fn a_hard_linked_copy_is_refused_and_a_move_is_accepted_when_told() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["apply"]).expect(0);
    let id = clone_id(&main);
    let copy = env.path("linked");
    let cp = std::process::Command::new("cp")
        .args(["-al", main.to_str().unwrap(), copy.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(cp.success());
    let run = env.provision(&copy, &["status"]).expect(2);
    assert!(
        run.stderr.contains("but is not that folder"),
        "{}",
        run.stderr
    );
    let json = env.provision(&copy, &["--json", "status"]).expect(2).json();
    assert_eq!(json["exit"], 2);

    // As a move across file systems looks: a new folder, the old gone.
    fs_err::remove_dir_all(&main).unwrap();
    env.provision(&copy, &["status"]).expect(2);
    let moved = env.provision(&copy, &["identity", "--moved"]).expect(0);
    assert!(moved.stdout.contains(&id), "{}", moved.stdout);
    env.provision(&copy, &["status"]).expect(0);
    assert_eq!(clone_id(&copy), id);
}

/// `verify`, `status` and `env` only read: they make no identity, and do
/// not write down where a moved repository now is.
#[test]
fn read_only_commands_write_no_identity() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let dir = main.join(".git/provision");
    env.provision(&main, &["verify"]).expect(1);
    env.provision(&main, &["status"]).expect(0);
    env.provision(&main, &["env"]).expect(2);
    assert!(!dir.join("clone-id").exists() && !dir.join("clone-home").exists());

    env.provision(&main, &["apply"]).expect(0);
    let home = read(dir.join("clone-home"));
    let moved = move_repository(&env, &main, "moved/app");
    let dir = moved.join(".git/provision");
    for args in [&["verify"][..], &["status"][..], &["env"][..]] {
        env.provision(&moved, args).expect(0);
    }
    assert_eq!(read(dir.join("clone-home")), home);
    env.provision(&moved, &["apply"]).expect(0);
    assert_ne!(read(dir.join("clone-home")), home);
}

/// A literal `{clone}` in an override (`{{clone}}` in the recipe) stays
/// literal through the lock: `verify` is clean right after `new`, and
/// `env` prints what the env file holds.
#[test]
fn a_literal_clone_in_an_override_stays_literal() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[env.vars]\nLITERAL = \"{{clone}}\"\nJSON = '{{\"a\": \"{{clone}}\"}}'\n",
    );
    env.commit_all(&main, "literal");
    env.provision(&main, &["new", "f"]).expect(0);
    let wt = env.path("worktree-f");
    env.provision(&wt, &["verify"]).expect(0);
    let vars = env.provision(&wt, &["--json", "env"]).expect(0).json();
    assert_eq!(vars["LITERAL"], "{clone}", "{vars}");
    assert_eq!(vars["JSON"], "{\"a\": \"{clone}\"}", "{vars}");
    let lock = read(wt.join("provision.lock"));
    assert!(lock.contains(r#""LITERAL": "{{clone}""#), "{lock}");
}
