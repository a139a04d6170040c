//! Hostile and broken input: every case ends in one error line naming the
//! offending value, or in the safe outcome the README documents, and never
//! loses or clobbers anything of the user's.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::support::{TestEnv, read, sqlite, write};

fn first_line(stderr: &str) -> &str {
    stderr.lines().next().unwrap_or_default()
}

#[track_caller]
fn assert_starts(stderr: &str, expected: &str) {
    assert!(first_line(stderr).starts_with(expected), "{stderr}");
}

fn nothing_made(env: &TestEnv, main: &Path, name: &str) {
    assert!(!env.path(&format!("worktree-{name}")).exists());
    assert_eq!(env.git(main, &["branch", "--list", name]), "");
}

fn is_link(path: &Path) -> bool {
    fs_err::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn an_include_through_a_symlinked_folder_of_the_main_checkout_is_refused() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let outside = env.path("outside");
    fs_err::create_dir_all(&outside).unwrap();
    write(outside.join("key"), "secret\n");
    fs_err::os::unix::fs::symlink(&outside, main.join("linked")).unwrap();
    write(main.join(".worktreeinclude"), ".env\nlinked/key\n");
    let run = env.provision(&main, &["new", "x"]).expect(2);
    assert_starts(
        &run.stderr,
        "error: .worktreeinclude:2: `linked/key` goes through `linked`, a symlink in the main checkout",
    );
    nothing_made(&env, &main, "x");
    // The symlinked folder itself is linked as a folder, as a `node_modules`
    // kept in a store is.
    write(main.join(".worktreeinclude"), "linked\n");
    env.provision(&main, &["new", "x"]).expect(0);
    assert_eq!(read(env.path("worktree-x/linked/key")), "secret\n");
}

/// A branch `other` on which `conf` is what `make` leaves in the worktree.
fn branch_with_conf(env: &TestEnv, main: &Path, make: impl FnOnce(&Path)) {
    env.git(main, &["checkout", "-q", "-b", "other"]);
    make(&main.join("conf"));
    env.commit_all(main, "conf on other");
    env.git(main, &["checkout", "-q", "main"]);
    // In the main checkout, `conf/` is an untracked folder to share.
    fs_err::create_dir_all(main.join("conf")).unwrap();
    write(main.join("conf/app.key"), "k\n");
    write(main.join(".worktreeinclude"), "conf/app.key\n");
    write(
        main.join(".gitignore"),
        &format!("{}conf/\n", read(main.join(".gitignore"))),
    );
    env.commit_all(main, "share conf/app.key");
}

#[test]
fn an_include_whose_parent_in_the_worktree_is_a_tracked_file_is_refused() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    branch_with_conf(&env, &main, |conf| write(conf, "tracked file\n"));
    let run = env
        .provision(&main, &["new", "x", "--from", "other"])
        .expect(2);
    assert!(
        run.stderr
            .contains("conf/app.key cannot be linked: conf in this worktree is a file"),
        "{}",
        run.stderr
    );
    nothing_made(&env, &main, "x");
    // In the main checkout the parent is a tracked file: nothing to link.
    write(main.join(".worktreeinclude"), "package.json/x\n");
    let run = env.provision(&main, &["new", "y"]).expect(0);
    assert!(
        run.stderr
            .contains("package.json/x: listed in .worktreeinclude but missing")
    );
    assert_eq!(
        read(env.path("worktree-y/package.json")),
        read(main.join("package.json"))
    );
}

#[test]
fn an_include_is_never_linked_through_a_tracked_symlink_out_of_the_worktree() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let outside = env.path("outside");
    fs_err::create_dir_all(&outside).unwrap();
    branch_with_conf(&env, &main, |conf| {
        fs_err::os::unix::fs::symlink(&outside, conf).unwrap()
    });
    let run = env
        .provision(&main, &["new", "x", "--from", "other"])
        .expect(2);
    assert!(
        run.stderr
            .contains("conf/app.key cannot be linked: conf in this worktree is a symlink"),
        "{}",
        run.stderr
    );
    assert_eq!(fs_err::read_dir(&outside).unwrap().count(), 0);
    nothing_made(&env, &main, "x");
}

#[test]
fn names_that_are_not_branch_names_are_refused_by_value() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for name in ["a..b", "has space", "ends.lock", "-dash", "x~1"] {
        let run = env.provision(&main, &["new", "--", name]).expect(2);
        assert_starts(
            &run.stderr,
            &format!("error: `{name}` is not a valid branch name"),
        );
    }
    assert_eq!(
        fs_err::read_dir(env.dir.path()).unwrap().count(),
        2,
        "only app and home"
    );
    // A name that is not UTF-8 never reaches git.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provision"))
        .current_dir(&main)
        .arg("new")
        .arg(OsStr::from_bytes(b"bad\xff"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid UTF-8"));
}

#[test]
fn names_that_slug_alike_never_share_a_database() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "Feature-X"]).expect(0);
    for name in ["feature_x", "feature.x", "FEATURE/X"] {
        let run = env.provision(&main, &["new", name]).expect(2);
        assert!(
            run.stderr
                .contains("database name `app_feature_x` is already used by sandbox `Feature-X`"),
            "{}",
            run.stderr
        );
        nothing_made(&env, &main, name);
    }
    env.provision(&env.path("worktree-Feature-X"), &["verify"])
        .expect(0);
}

#[test]
fn long_names_get_distinct_databases_of_at_most_63_bytes() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let mut databases = Vec::new();
    for last in ["a", "b"] {
        let name = format!("{}-{last}", "n".repeat(198));
        env.provision(&main, &["new", &name]).expect(0);
        let wt = env.path(&format!("worktree-{name}"));
        env.provision(&wt, &["verify"]).expect(0);
        let lock: serde_json::Value =
            serde_json::from_str(&read(wt.join("provision.lock"))).unwrap();
        databases.push(lock["database"]["name"].as_str().unwrap().to_string());
    }
    assert_ne!(databases[0], databases[1]);
    for db in &databases {
        assert_eq!(db.len(), 63, "{db}");
        assert!(db.starts_with("app_nnn"), "{db}");
    }
}

#[test]
fn file_names_that_are_not_utf8_are_never_linked_or_migrated() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join(".worktreeinclude"), "*.key\n");
    write(
        main.join(".gitignore"),
        &format!("{}*.key\n", read(main.join(".gitignore"))),
    );
    env.commit_all(&main, "share keys");
    write(main.join("good.key"), "k\n");
    write(main.join(OsStr::from_bytes(b"bad\xff.key")), "k\n");
    env.provision(&main, &["new", "x"]).expect(0);
    let wt = env.path("worktree-x");
    assert!(is_link(&wt.join("good.key")));
    assert!(!wt.join(OsStr::from_bytes(b"bad\xff.key")).exists());
    env.provision(&wt, &["verify"]).expect(0);

    // Two such migrations would share one ledger name: refused by name.
    write(
        wt.join("migrations")
            .join(OsStr::from_bytes(b"0003_\xff.sql")),
        "CREATE TABLE t(x);\n",
    );
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert_starts(&run.stderr, "error: ");
    assert!(
        first_line(&run.stderr)
            .ends_with("/migrations/0003_\u{FFFD}.sql: a migration's file name must be UTF-8"),
        "{}",
        run.stderr
    );
}

#[test]
fn recipe_values_of_the_wrong_type_are_named_with_their_line() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for (toml, expected) in [
        (
            "[ports]\nrange = 5\n",
            "error: provision.toml:2: invalid type: integer `5`, expected a string",
        ),
        (
            "[env.vars]\nPORT = 8080\n",
            "error: provision.toml:2: invalid type: integer `8080`, expected a string",
        ),
        (
            "worktree = \"../x\"\n",
            "error: provision.toml:1: invalid type: string \"../x\", expected a table",
        ),
        (
            "[worktree]\npath = \"../wt-{nope}\"\n",
            "error: provision.toml:2: worktree.path: unknown template `{nope}`",
        ),
        ("[database\n", "error: provision.toml:1: "),
    ] {
        write(main.join("provision.toml"), toml);
        let run = env.provision(&main, &["new", "x"]).expect(2);
        assert_starts(&run.stderr, expected);
        nothing_made(&env, &main, "x");
    }
    // An empty file is the defaults.
    write(main.join("provision.toml"), "");
    env.provision(&main, &["new", "x"]).expect(0);
    env.provision(&env.path("worktree-x"), &["verify"])
        .expect(0);
}

#[test]
fn broken_locks_are_named_and_rebuilt_but_a_newer_one_is_kept() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "x"]).expect(0);
    let wt = env.path("worktree-x");
    let lock_path = wt.join("provision.lock");
    let good = read(&lock_path);

    for (text, expected) in [
        (
            &good[..good.len() / 2],
            "error: provision.lock is not a valid lock: EOF while parsing",
        ),
        (
            "not json\n",
            "error: provision.lock is not a valid lock: expected",
        ),
        (
            "[]\n",
            "error: provision.lock is not a valid lock: not a JSON object",
        ),
    ] {
        write(&lock_path, text);
        let run = env.provision(&wt, &["verify"]).expect(2);
        assert_starts(&run.stderr, expected);
        // The lock is provision's own record: apply rebuilds it.
        env.provision(&wt, &["apply"]).expect(0);
        assert_eq!(read(&lock_path), good);
    }

    // Hand-edited: the hash catches it, apply restores it.
    write(
        &lock_path,
        &good.replace("\"worktree\": \"x\"", "\"worktree\": \"y\""),
    );
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout
            .contains("edited: its contents no longer match its hash"),
        "{}",
        run.stdout
    );
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(read(&lock_path), good);

    // From a newer provision, with a field this one does not know: named as
    // such, and never overwritten by an older provision.
    let newer = good.replace("\"version\": 1", "\"version\": 2").replace(
        "\"worktree\": \"x\"",
        "\"worktree\": \"x\",\n  \"setup\": []",
    );
    write(&lock_path, &newer);
    for command in ["verify", "apply"] {
        let run = env.provision(&wt, &[command]).expect(2);
        assert_starts(
            &run.stderr,
            "error: provision.lock is from a newer provision (lock version 2; this one reads version 1)",
        );
    }
    assert_eq!(read(&lock_path), newer);
}

#[test]
fn files_other_than_sql_in_the_migrations_folder_are_ignored() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "x"]).expect(0);
    let wt = env.path("worktree-x");
    let migrations = wt.join("migrations");
    write(migrations.join("README.md"), "# notes\n");
    write(migrations.join("0003_draft.sql.bak"), "DROP TABLE users;\n");
    fs_err::create_dir_all(migrations.join("0004_folder.sql")).unwrap();
    env.provision(&wt, &["verify"]).expect(0);
    let run = env.provision(&wt, &["apply", "--json"]).expect(0);
    assert_eq!(run.json()["actions"], serde_json::json!([]));
}

#[test]
fn a_migration_failing_halfway_is_rolled_back_and_named_with_the_database_message() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "x"]).expect(0);
    let wt = env.path("worktree-x");
    let lock = read(wt.join("provision.lock"));
    write(
        wt.join("migrations/0003_half.sql"),
        "CREATE TABLE half(x);\nINSERT INTO half VALUES (1);\nCREATE TABLE oops (;\n",
    );
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert_eq!(
        run.stderr.lines().find(|l| l.starts_with("error:")),
        Some("error: migration 0003_half.sql failed: line 3: near \";\": syntax error"),
        "{}",
        run.stderr
    );
    let db = sqlite(&main, "app_x");
    let half: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'half'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(half, 0);
    for ledger in ["provision_migrations", "d1_migrations"] {
        let listed: i64 = db
            .query_row(
                &format!("SELECT count(*) FROM {ledger} WHERE name = '0003_half.sql'"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(listed, 0, "{ledger}");
    }
    assert_eq!(read(wt.join("provision.lock")), lock);
}

#[test]
fn a_link_whose_main_checkout_target_was_deleted_is_drift_and_apply_records_it_absent() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "x"]).expect(0);
    let wt = env.path("worktree-x");
    fs_err::remove_file(main.join(".npmrc")).unwrap();
    fs_err::remove_dir_all(main.join("node_modules")).unwrap();
    let run = env.provision(&wt, &["verify"]).expect(1);
    for path in [".npmrc", "node_modules"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(&format!("drift link {path} "))
                    && l.ends_with(&format!("points to {{main}}/{path}, which does not exist"))),
            "{}",
            run.stdout
        );
    }
    env.provision(&wt, &["apply"]).expect(0);
    env.provision(&wt, &["verify"]).expect(0);
    let lock = read(wt.join("provision.lock"));
    assert!(
        lock.contains("\"kind\": \"absent\",\n      \"path\": \".npmrc\""),
        "{lock}"
    );
}

/// Env files are read by dotenv parsers and by `set -a; . FILE` alike: a
/// value that looks like code (a branch name through `{name}`, say) is text
/// to both, and one no quoting keeps literal for both is refused by key.
#[test]
fn env_values_never_run_as_code() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[env.vars]\nBRANCH = \"{name}\"\nCMD = \"$(touch pwned) `touch pwned2` $HOME\"\nQUOTE = \"it's\"\n",
    );
    env.provision(&main, &["new", "x$(id)`id`"]).expect(0);
    let wt = env.path("worktree-x$(id)`id`");
    let out = env
        .command("sh", &wt)
        .args([
            "-c",
            "set -a; . ./.env.local; printf '%s|%s|%s' \"$BRANCH\" \"$CMD\" \"$QUOTE\"",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "x$(id)`id`|$(touch pwned) `touch pwned2` $HOME|it's"
    );
    for file in ["pwned", "pwned2"] {
        assert!(!wt.join(file).exists(), "{file} was created");
    }
    env.provision(&wt, &["verify"]).expect(0);

    write(
        main.join("provision.toml"),
        "[env.vars]\nMIXED = \"it's $(x)\"\n",
    );
    let run = env.provision(&main, &["new", "y"]).expect(2);
    assert!(
        run.stderr.contains("env override `MIXED`"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-y").exists());
}

/// A lock is read back from disk: one whose link or env path leaves the
/// worktree (with its hash recomputed, so it passes as intact) is refused
/// by field, and apply, rebuilding the lock, touches nothing outside.
#[test]
fn a_forged_lock_never_reaches_outside_the_worktree() {
    use provision::sandbox::lock::{self, Sandbox};
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    write(env.path("victim"), "keep me\n");
    fs_err::create_dir_all(env.path("victim-dir")).unwrap();
    write(env.path("victim-dir/file"), "keep me too\n");
    for (field, forged) in [
        ("links[0].path", "../victim"),
        ("links[0].path", "/VICTIM"),
        ("env.file", "../victim-dir/file"),
    ] {
        let forged = forged.replace("/VICTIM", &env.path("victim").display().to_string());
        let text = read(wt.join("provision.lock"));
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value.as_object_mut().unwrap().remove("hash");
        let mut sandbox: Sandbox = serde_json::from_value(value).unwrap();
        if field == "env.file" {
            sandbox.env.as_mut().unwrap().file = forged.clone();
        } else {
            sandbox.links[0].path = forged.clone();
        }
        write(wt.join("provision.lock"), &lock::render(&sandbox));

        let run = env.provision(&wt, &["verify"]).expect(2);
        assert!(
            run.stderr.contains(&format!(
                "provision.lock is not a valid lock: {field} `{forged}`"
            )),
            "{}",
            run.stderr
        );
        let run = env.provision(&wt, &["apply"]).expect(0);
        assert!(
            run.stderr.contains("apply writes it anew"),
            "{}",
            run.stderr
        );
        assert_eq!(read(env.path("victim")), "keep me\n");
        assert_eq!(read(env.path("victim-dir/file")), "keep me too\n");
        env.provision(&wt, &["verify"]).expect(0);
    }

    // A lock that is a symlink is not followed.
    fs_err::remove_file(wt.join("provision.lock")).unwrap();
    fs_err::os::unix::fs::symlink(env.path("victim"), wt.join("provision.lock")).unwrap();
    let run = env.provision(&wt, &["verify"]).expect(2);
    assert!(run.stderr.contains("it is a symlink"), "{}", run.stderr);
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(read(env.path("victim")), "keep me\n");
    assert!(
        fs_err::symlink_metadata(wt.join("provision.lock"))
            .unwrap()
            .is_file()
    );
}

/// What sits where provision's lock belongs is checked as links are: a
/// real folder there is someone's, and remove refuses to take it along.
#[test]
fn remove_keeps_a_folder_where_the_lock_belongs() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    fs_err::remove_file(wt.join("provision.lock")).unwrap();
    fs_err::create_dir_all(wt.join("provision.lock")).unwrap();
    write(wt.join("provision.lock/notes.txt"), "mine\n");
    let run = env.provision(&main, &["remove", "feat"]).expect(2);
    assert!(
        run.stderr
            .contains("provision.lock/ (a real folder, not provision's lock)"),
        "{}",
        run.stderr
    );
    assert_eq!(read(wt.join("provision.lock/notes.txt")), "mine\n");
}

/// One corrupt registry record stops no other sandbox: it is named with
/// its full path by status and gc, and apply in its worktree writes it
/// again. A record whose fields leave their bounds is corrupt too.
#[test]
fn a_corrupt_registry_record_stops_no_other_sandbox() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "one"]).expect(0);
    let record = main.join(".git/provision/sandboxes/worktree-one.json");
    let text = read(&record);
    write(&record, &text[..text.len() / 2]);

    env.provision(&main, &["new", "two"]).expect(0);
    let two = env.path("worktree-two");
    env.provision(&two, &["apply"]).expect(0);
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    let bad = status["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "error")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(bad["path"], record.display().to_string());
    assert!(
        bad["detail"].as_str().unwrap().contains("is corrupt"),
        "{status}"
    );
    let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert!(
        gc["kept"]
            .to_string()
            .contains("worktree-one.json is corrupt"),
        "{gc}"
    );
    assert!(main.join(".git/provision/sqlite/app_one.sqlite").exists());
    env.provision(&main, &["remove", "two"]).expect(0);

    // apply in its worktree writes it again, and keeps its database.
    let one = env.path("worktree-one");
    env.provision(&one, &["apply"]).expect(0);
    env.provision(&one, &["verify"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&read(&record)).unwrap();
    assert_eq!(json["database"]["name"], "app_one");

    // Fields read back are checked: a path that is not absolute.
    let forged = read(&record).replace(&one.display().to_string(), "relative/one");
    write(&record, &forged);
    let status = env.provision(&main, &["status"]).expect(0).stdout;
    assert!(
        status.contains("path `relative/one` is not absolute"),
        "{status}"
    );
}

/// A claim (in git's admin dir) is read back too: one forged to name
/// another sandbox, or emptied, never makes gc drop the live sandbox whose
/// lock says it is this one; a record naming another sandbox's database
/// gets it dropped by neither gc nor remove.
#[test]
fn forged_claims_and_ghost_records_drop_no_live_database() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "keep"]).expect(0);
    let claim = main.join(".git/worktrees/worktree-keep/provision-sandbox");
    for forged in ["intruder\n", ""] {
        write(&claim, forged);
        let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
        assert_eq!(gc["removed"], serde_json::json!([]), "{gc}");
        assert!(main.join(".git/provision/sqlite/app_keep.sqlite").is_file());
    }
    env.provision(&env.path("worktree-keep"), &["apply"])
        .expect(0);
    assert_eq!(read(&claim), "keep\n");

    let record = read(main.join(".git/provision/sandboxes/worktree-keep.json"));
    let ghost = record
        .replace("\"worktree-keep\"", "\"ghost\"")
        .replace("\"name\": \"keep\"", "\"name\": \"ghost\"");
    write(main.join(".git/provision/sandboxes/ghost.json"), &ghost);
    let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert!(
        gc["kept"]
            .to_string()
            .contains("is named by sandbox keep's record too"),
        "{gc}"
    );
    let run = env.provision(&main, &["remove", "ghost"]).expect(2);
    assert!(
        run.stderr.contains("provision drops it for neither"),
        "{}",
        run.stderr
    );
    assert!(main.join(".git/provision/sqlite/app_keep.sqlite").is_file());
    env.provision(&env.path("worktree-keep"), &["verify"])
        .expect(0);
}
