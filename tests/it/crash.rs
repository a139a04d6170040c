//! `kill -9` in the middle of `new`, `apply`, `remove` and `gc`: whatever
//! the kill leaves, `apply` finishes the sandbox or `remove`/`gc` takes it
//! away completely, and a lock never claims a migration that did not commit.
//! Each kill lands at a point the test observes (a database file growing
//! mid-migration, a drop command's marker), never after a blind sleep.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::{TestEnv, kill_group, read, sqlite, write};

/// Millions of rows in one transaction: seconds of work, so that git is done
/// with its checkout long before (`new` runs the two side by side), and the
/// database file outgrows SQLite's page cache (so it grows on disk) long
/// before commit.
const SLOW: &str = "CREATE TABLE big(x INTEGER);\n\
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8000000)\n\
    INSERT INTO big SELECT x FROM c;\n";
const SLOW_NAME: &str = "0003_big.sql";

/// Waits until `ready` holds while `child` runs; panics if it ends first.
fn wait_for(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("provision ended ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn db_path(main: &Path, db: &str) -> PathBuf {
    sqlite_dir(main).join(format!("{db}.sqlite"))
}

/// Kills `child` while the slow migration is writing `db`, or the file
/// `new` builds it in ahead of the worktree: the file has grown past
/// anything the fixture's own migrations make, and the hot journal left
/// behind shows the transaction never committed. Returns that file.
fn kill_mid_migration(child: Child, main: &Path, db: &str) -> PathBuf {
    kill_mid_migration_once(child, main, db, || true)
}

/// As `kill_mid_migration`, for `new`: the kill waits until git has added
/// the worktree too (its lock is taken back once git is done), so that it
/// lands in provision's work, not in git's checkout.
fn kill_new_mid_migration(child: Child, main: &Path, name: &str) -> PathBuf {
    let admin = main.join(format!(".git/worktrees/worktree-{name}"));
    kill_mid_migration_once(child, main, &format!("app_{name}"), || {
        admin.join("gitdir").is_file() && !admin.join("locked").exists()
    })
}

fn kill_mid_migration_once(
    mut child: Child,
    main: &Path,
    db: &str,
    mut also: impl FnMut() -> bool,
) -> PathBuf {
    let growing = || {
        fs_err::read_dir(sqlite_dir(main)).ok()?.find_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let ours = name == format!("{db}.sqlite")
                || (name.starts_with(".provision-ahead-") && name.ends_with(".sqlite"));
            (ours && fs_err::metadata(&path).ok()?.len() > 1 << 20).then_some(path)
        })
    };
    wait_for(&mut child, "the slow migration got going", || {
        growing().is_some() && also()
    });
    kill_group(&mut child);
    let file = growing().expect("still there after the kill");
    let journal = PathBuf::from(format!("{}-journal", file.display()));
    assert!(journal.is_file(), "the kill did not land mid-transaction");
    file
}

fn sqlite_dir(main: &Path) -> PathBuf {
    main.join(".git/provision/sqlite")
}

/// Files a killed `new` left while building a database ahead.
fn abandoned(main: &Path) -> Vec<String> {
    fs_err::read_dir(sqlite_dir(main))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".provision-ahead-"))
                .collect()
        })
        .unwrap_or_default()
}

fn ledger(main: &Path, db: &str) -> Vec<String> {
    let conn = sqlite(main, db);
    let mut stmt = conn
        .prepare("SELECT name FROM provision_migrations ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn record_count(main: &Path) -> usize {
    fs_err::read_dir(main.join(".git/provision/sandboxes"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn slow_app(env: &TestEnv) -> PathBuf {
    let main = env.fixture_repo("app");
    write(main.join("migrations").join(SLOW_NAME), SLOW);
    env.commit_all(&main, "a long migration");
    main
}

/// The fixture app whose `*.js` files git checks out through a filter
/// that waits while `hold` exists in the main checkout, touching
/// `smudging` first: a kill can land inside git's checkout.
fn slow_checkout_app(env: &TestEnv) -> PathBuf {
    let main = env.fixture_repo("app");
    write(main.join(".gitattributes"), "*.js filter=slow\n");
    env.commit_all(&main, "a slow filter");
    let smudge = format!(
        "touch {0}/smudging; while test -e {0}/hold; do sleep 0.02; done; cat",
        main.display()
    );
    env.git(&main, &["config", "filter.slow.smudge", &smudge]);
    main
}

/// A migration still running when git is done is said to be, so `new` is
/// not silent while it waits.
#[test]
fn new_says_when_it_waits_for_a_long_migration() {
    let env = TestEnv::new();
    let main = slow_app(&env);
    let run = env.provision(&main, &["new", "x"]).expect(0);
    let waiting = run
        .stderr
        .find("database  still migrating")
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(run.stderr[waiting..].contains(&format!("migrate   {SLOW_NAME}")));
    env.provision(&env.path("worktree-x"), &["verify"])
        .expect(0);
}

/// `new` builds the database while git checks out, so a kill mid-migration
/// lands in the file it builds ahead: the worktree is there, its database
/// and lock are not.
#[test]
fn a_new_killed_mid_migration_is_finished_by_apply() {
    let env = TestEnv::new();
    let main = slow_app(&env);
    let cut = kill_new_mid_migration(env.provision_spawn(&main, &["new", "x"]), &main, "x");
    assert!(!db_path(&main, "app_x").exists(), "{}", cut.display());
    let wt = env.path("worktree-x");
    // The lock comes last: no lock claims what the kill cut short.
    assert!(!wt.join("provision.lock").exists());
    env.provision(&wt, &["verify"]).expect(1);
    // A gc meanwhile keeps the half-made sandbox, as its worktree is live,
    // and deletes the file the kill left half built.
    assert_eq!(abandoned(&main).len(), 2, "the file and its journal");
    let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(gc["removed"], serde_json::json!([]), "{gc}");
    assert_eq!(abandoned(&main), Vec::<String>::new());

    env.provision(&wt, &["apply"]).expect(0);
    env.provision(&wt, &["verify"]).expect(0);
    let count: i64 = sqlite(&main, "app_x")
        .query_row("SELECT count(*) FROM big", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 8_000_000);
    assert!(read(wt.join("provision.lock")).contains(SLOW_NAME));
}

#[test]
fn an_apply_killed_mid_migration_keeps_the_lock_and_ledger_as_they_were() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "x"]).expect(0);
    let wt = env.path("worktree-x");
    let lock = read(wt.join("provision.lock"));
    write(wt.join("migrations").join(SLOW_NAME), SLOW);
    kill_mid_migration(env.provision_spawn(&wt, &["apply"]), &main, "app_x");

    assert_eq!(read(wt.join("provision.lock")), lock);
    // Opening the database rolls the cut transaction back.
    assert_eq!(
        ledger(&main, "app_x"),
        ["0001_create_users.sql", "0002_create_posts.sql"]
    );
    let big: Option<String> = sqlite(&main, "app_x")
        .query_row(
            "SELECT name FROM sqlite_master WHERE name = 'big'",
            [],
            |r| r.get(0),
        )
        .ok();
    assert_eq!(big, None);
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(run.stdout.contains(SLOW_NAME), "{}", run.stdout);

    env.provision(&wt, &["apply"]).expect(0);
    env.provision(&wt, &["verify"]).expect(0);
}

#[test]
fn a_new_killed_mid_migration_is_taken_away_by_remove_or_gc() {
    let env = TestEnv::new();
    let main = slow_app(&env);
    for name in ["removed", "collected"] {
        kill_new_mid_migration(env.provision_spawn(&main, &["new", name]), &main, name);
    }
    env.provision(&main, &["remove", "removed"]).expect(0);
    fs_err::remove_dir_all(env.path("worktree-collected")).unwrap();
    // Past git's expiry for entries whose folder is gone (three months by
    // default, during which a moved worktree can still be repaired).
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    env.provision(&main, &["gc"]).expect(0);

    for name in ["removed", "collected"] {
        let db = db_path(&main, &format!("app_{name}"));
        assert!(!db.exists() && !PathBuf::from(format!("{}-journal", db.display())).exists());
        assert!(!env.path(&format!("worktree-{name}")).exists());
    }
    assert_eq!(record_count(&main), 0);
    assert_eq!(abandoned(&main), Vec::<String>::new());
    assert_eq!(
        env.git(&main, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
}

/// A command-kind recipe whose `drop` announces itself in `dropping` and
/// then waits while `hold` exists: a slow external tool to be killed in.
fn slow_drop_app(env: &TestEnv) -> PathBuf {
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        r#"[database]
kind = "command"
create = 'mkdir -p "{main}/.sandboxes" && touch "{main}/.sandboxes/{db}"'
exists = 'test -f "{main}/.sandboxes/{db}"'
migrate = 'true'
drop = 'touch "{main}/dropping"; while test -e "{main}/hold"; do sleep 0.02; done; rm "{main}/.sandboxes/{db}"'
"#,
    );
    write(
        main.join(".gitignore"),
        &format!(
            "{}.sandboxes/\ndropping\nhold\n",
            read(main.join(".gitignore"))
        ),
    );
    env.commit_all(&main, "command recipe with a slow drop");
    main
}

/// Runs `args`, kills it (and its drop command) once the drop has begun,
/// then lets later drops through.
fn kill_mid_drop(env: &TestEnv, main: &Path, args: &[&str]) {
    write(main.join("hold"), "");
    let mut child = env.provision_spawn(main, args);
    wait_for(&mut child, "the drop command started", || {
        main.join("dropping").exists()
    });
    kill_group(&mut child);
    fs_err::remove_file(main.join("hold")).unwrap();
    fs_err::remove_file(main.join("dropping")).unwrap();
}

#[test]
fn a_remove_or_gc_killed_mid_drop_is_finished_by_the_next_run() {
    let env = TestEnv::new();
    let main = slow_drop_app(&env);
    env.provision(&main, &["new", "removed"]).expect(0);
    env.provision(&main, &["new", "collected"]).expect(0);
    env.provision(&main, &["new", "kept"]).expect(0);

    kill_mid_drop(&env, &main, &["remove", "removed"]);
    env.provision(&main, &["remove", "removed"]).expect(0);

    fs_err::remove_dir_all(env.path("worktree-collected")).unwrap();
    // Past git's expiry for entries whose folder is gone (three months by
    // default, during which a moved worktree can still be repaired).
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    kill_mid_drop(&env, &main, &["gc"]);
    env.provision(&main, &["gc"]).expect(0);

    for name in ["removed", "collected"] {
        assert!(
            !main.join(format!(".sandboxes/app_{name}")).exists(),
            "{name}"
        );
        assert!(!env.path(&format!("worktree-{name}")).exists(), "{name}");
    }
    assert_eq!(record_count(&main), 1);
    let list = env.git(&main, &["worktree", "list", "--porcelain"]);
    assert_eq!(list.matches("worktree ").count(), 2, "{list}");
    env.provision(&env.path("worktree-kept"), &["verify"])
        .expect(0);
}

/// A kill while git itself writes the checkout: a smudge filter announces
/// itself in `smudging` and waits while `hold` exists. git leaves the
/// worktree locked with provision's reason, and `gc` takes it all away.
#[test]
fn a_new_killed_while_git_checks_out_is_taken_away_by_gc() {
    let env = TestEnv::new();
    let main = slow_checkout_app(&env);
    write(main.join("hold"), "");

    let mut child = env.provision_spawn(&main, &["new", "x"]);
    wait_for(&mut child, "git's checkout got going", || {
        main.join("smudging").exists()
    });
    kill_group(&mut child);
    fs_err::remove_file(main.join("hold")).unwrap();
    let list = env.git(&main, &["worktree", "list", "--porcelain"]);
    assert!(
        list.contains("locked provision new: being created"),
        "{list}"
    );
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    let row = &status["sandboxes"][1];
    assert_eq!(row["state"], "orphan", "{status}");
    assert!(
        row["detail"].as_str().unwrap().contains("cut short"),
        "{status}"
    );

    let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(gc["removed"].as_array().unwrap().len(), 1, "{gc}");
    assert!(!env.path("worktree-x").exists());
    assert_eq!(env.git(&main, &["branch", "--list", "x"]), "");
    assert_eq!(
        env.git(&main, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    assert_eq!(record_count(&main), 0);
    assert_eq!(abandoned(&main), Vec::<String>::new());
}

/// A `new` killed inside `git worktree add` leaves a worktree git locks
/// with provision's reason. Work done in it is never thrown away: `apply`
/// there takes the sandbox over (git's lock goes), and `gc` keeps a cut-short
/// worktree holding content HEAD does not have.
#[test]
fn work_in_a_worktree_a_killed_new_left_is_never_collected() {
    let env = TestEnv::new();
    let main = slow_checkout_app(&env);
    for name in ["taken", "edited"] {
        write(main.join("hold"), "");
        let _ = fs_err::remove_file(main.join("smudging"));
        let mut child = env.provision_spawn(&main, &["new", name]);
        wait_for(&mut child, "git's checkout got going", || {
            main.join("smudging").exists()
        });
        kill_group(&mut child);
        fs_err::remove_file(main.join("hold")).unwrap();
    }

    // One is taken over by apply: git's lock is gone, and it verifies.
    // As a person finishes git's cut checkout: its index.lock goes, then
    // a hard reset writes the files.
    let taken = env.path("worktree-taken");
    let _ = fs_err::remove_file(main.join(".git/worktrees/worktree-taken/index.lock"));
    env.git(&taken, &["reset", "-q", "--hard", "HEAD"]);
    env.provision(&taken, &["apply"]).expect(0);
    env.provision(&taken, &["verify"]).expect(0);
    write(taken.join("notes.txt"), "mine\n");
    // The other is worked in without provision.
    let edited = env.path("worktree-edited");
    write(edited.join("draft.txt"), "unsaved\n");

    let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(gc["removed"], serde_json::json!([]), "{gc}");
    let kept = gc["kept"].to_string();
    assert!(
        kept.contains("holds unsaved work") && kept.contains("draft.txt"),
        "{gc}"
    );
    assert_eq!(read(taken.join("notes.txt")), "mine\n");
    assert_eq!(read(edited.join("draft.txt")), "unsaved\n");
    let list = env.git(&main, &["worktree", "list", "--porcelain"]);
    let taken_entry = list
        .split("\n\n")
        .find(|e| e.contains("worktree-taken"))
        .unwrap();
    assert!(!taken_entry.contains("locked"), "{list}");
}

/// A `remove` cut short after git removed the worktree leaves the record
/// (and the branch, its last step): the re-run finishes the branch too.
#[test]
fn a_remove_cut_short_after_gits_step_is_finished_with_its_branch() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "x"]).expect(0);
    // Where a kill after `git worktree remove` leaves things.
    env.git(&main, &["worktree", "remove", "../worktree-x"]);
    let run = env.provision(&main, &["remove", "x"]).expect(0);
    assert!(
        run.stdout.contains("deleted branch x (merged into main)"),
        "{}",
        run.stdout
    );
    assert_eq!(env.git(&main, &["branch", "--list", "x"]), "");
    assert_eq!(record_count(&main), 0);
}

/// A second `apply` in a sandbox whose first is still migrating says what
/// it waits for, then finds nothing left to do.
#[test]
fn a_second_apply_says_what_it_waits_for() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "x"]).expect(0);
    let wt = env.path("worktree-x");
    write(wt.join("migrations").join(SLOW_NAME), SLOW);
    let mut first = env.provision_spawn(&wt, &["apply"]);
    let db = db_path(&main, "app_x");
    wait_for(&mut first, "the slow migration got going", || {
        fs_err::metadata(&db).is_ok_and(|m| m.len() > 1 << 20)
    });
    let second = env.provision(&wt, &["apply"]).expect(0);
    assert!(
        second
            .stderr
            .contains("waiting for another provision that is applying sandbox x"),
        "{}",
        second.stderr
    );
    assert!(first.wait().unwrap().success());
    env.provision(&wt, &["verify"]).expect(0);
}

/// A `new` killed while git wrote a file leaves it cut short (its bytes the
/// start of HEAD's, none at all for one git had only opened), no index, and
/// git's lock with provision's reason. `apply` there takes the sandbox over
/// and finishes git's checkout: such a file is written whole, as one git
/// had not reached yet is; the user's edit of another file stays.
#[test]
fn apply_writes_whole_the_files_a_killed_new_left_cut_short() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "x"]).expect(0);
    let wt = env.path("worktree-x");
    // The state a kill inside git's checkout leaves.
    let admin = main.join(".git/worktrees/worktree-x");
    fs_err::remove_file(admin.join("index")).unwrap();
    let reason = "provision new: being created";
    env.git(
        &main,
        &["worktree", "lock", "--reason", reason, "../worktree-x"],
    );
    let package = read(wt.join("package.json"));
    write(wt.join("package.json"), &package[..package.len() / 2]);
    write(wt.join("migrations/0002_create_posts.sql"), "");
    fs_err::remove_file(wt.join("migrations/0001_create_users.sql")).unwrap();
    // The user's own edit, which is no prefix of HEAD's content.
    write(wt.join(".gitignore"), "mine\n");

    env.provision(&wt, &["apply"]).expect(0);
    let status = env.git(&wt, &["status", "--porcelain", "--untracked-files=no"]);
    assert_eq!(status, " M .gitignore\n", "{status}");
    assert_eq!(read(wt.join("package.json")), package);
    assert_eq!(read(wt.join(".gitignore")), "mine\n");
    env.provision(&wt, &["verify"]).expect(0);
}
