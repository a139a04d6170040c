//! `remove`, `gc`, `status` and ports, on real git and SQLite.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Barrier;

use crate::support::{Run, TestEnv, read, sqlite, write};

fn db_file(main: &Path, db: &str) -> PathBuf {
    main.join(".git/provision/sqlite")
        .join(format!("{db}.sqlite"))
}

fn record_file(main: &Path, id: &str) -> PathBuf {
    main.join(".git/provision/sandboxes")
        .join(format!("{id}.json"))
}

fn records(main: &Path) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = fs_err::read_dir(main.join(".git/provision/sandboxes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_str(&read(&p)).unwrap_or_else(|e| panic!("{p:?}: {e}")))
        .collect();
    out.sort_by_key(|r| r["name"].as_str().unwrap().to_string());
    out
}

fn env_port(worktree: &Path) -> u16 {
    read(worktree.join(".env.local"))
        .lines()
        .find_map(|l| l.strip_prefix("PORT="))
        .expect("a PORT line")
        .parse()
        .unwrap()
}

fn names(list: &serde_json::Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_string())
        .collect()
}

fn worktree_list(env: &TestEnv, main: &Path) -> String {
    env.git(main, &["worktree", "list", "--porcelain"])
}

#[test]
fn five_sandboxes_get_five_distinct_ports() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let names = ["a", "b", "c", "d", "e"];
    for name in names {
        env.provision(&main, &["new", name]).expect(0);
    }
    let ports: BTreeSet<u16> = names
        .iter()
        .map(|n| env_port(&env.path(&format!("worktree-{n}"))))
        .collect();
    assert_eq!(ports.len(), 5, "{ports:?}");
    assert!(ports.iter().all(|p| (20000..=29999).contains(p)));
    let recorded: BTreeSet<u16> = records(&main)
        .iter()
        .map(|r| r["port"].as_u64().unwrap() as u16)
        .collect();
    assert_eq!(recorded, ports);
}

#[test]
fn ports_come_from_the_configured_range_and_are_freed_by_remove() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[ports]\nrange = \"31870-31871\"\n",
    );
    env.commit_all(&main, "two ports only");
    env.provision(&main, &["new", "a"]).expect(0);
    env.provision(&main, &["new", "b"]).expect(0);
    let run = env.provision(&main, &["new", "c"]).expect(2);
    assert!(run.stderr.contains("no free port"), "{}", run.stderr);
    env.provision(&main, &["remove", "a"]).expect(0);
    env.provision(&main, &["new", "c"]).expect(0);
    let ports: BTreeSet<u16> = ["b", "c"]
        .iter()
        .map(|n| env_port(&env.path(&format!("worktree-{n}"))))
        .collect();
    assert_eq!(ports, BTreeSet::from([31870, 31871]));
}

#[test]
fn gc_takes_exactly_the_orphans() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for name in ["by-hand", "by-git", "live", "dirty", "locked"] {
        env.provision(&main, &["new", name]).expect(0);
    }
    // A database provision did not create and no record names.
    let stray = db_file(&main, "app_stray");
    rusqlite::Connection::open(&stray)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();

    fs_err::remove_dir_all(env.path("worktree-by-hand")).unwrap();
    // Past git's expiry for entries whose folder is gone (three months by
    // default, during which a moved worktree can still be repaired).
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    env.git(&main, &["worktree", "remove", "../worktree-by-git"]);
    let dirty = env.path("worktree-dirty");
    write(dirty.join("notes.txt"), "unsaved\n");
    write(dirty.join("package.json"), "{}\n");
    env.git(&main, &["worktree", "lock", "../worktree-locked"]);
    fs_err::remove_dir_all(env.path("worktree-locked")).unwrap();

    let registry_before = records(&main);
    let list_before = worktree_list(&env, &main);
    let run = env
        .provision(&main, &["gc", "--dry-run", "--json"])
        .expect(0);
    let report = run.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        names(&report["removed"]),
        BTreeSet::from(["by-hand".into(), "by-git".into()])
    );
    let databases: BTreeSet<&str> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["database"].as_str().unwrap())
        .collect();
    assert_eq!(databases, BTreeSet::from(["app_by_hand", "app_by_git"]));
    assert_eq!(
        names(&report["kept"]),
        BTreeSet::from([
            "main".into(),
            "live".into(),
            "dirty".into(),
            "locked".into()
        ])
    );
    let text = env.provision(&main, &["gc", "--dry-run"]).expect(0).stdout;
    assert!(text.contains("would drop database app_by_hand"), "{text}");
    assert!(text.contains("would drop database app_by_git"), "{text}");
    assert!(text.contains("nothing was changed"), "{text}");
    // The dry run changed nothing.
    assert_eq!(records(&main), registry_before);
    assert_eq!(worktree_list(&env, &main), list_before);
    assert!(db_file(&main, "app_by_hand").is_file());
    assert!(db_file(&main, "app_by_git").is_file());

    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(
        names(&report["removed"]),
        BTreeSet::from(["by-hand".into(), "by-git".into()])
    );
    for item in report["removed"].as_array().unwrap() {
        assert_eq!(item["database_fate"], "dropped", "{item}");
    }
    assert!(!db_file(&main, "app_by_hand").exists());
    assert!(!db_file(&main, "app_by_git").exists());
    for kept in ["app_live", "app_dirty", "app_locked"] {
        assert!(db_file(&main, kept).is_file(), "{kept}");
    }
    assert!(stray.is_file(), "a database without a record was touched");
    let left: Vec<String> = records(&main)
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["dirty", "live", "locked"]);
    let list = worktree_list(&env, &main);
    assert!(!list.contains("worktree-by-hand"), "{list}");
    assert!(!list.contains("prunable"), "{list}");
    assert!(list.contains("worktree-locked"), "{list}");
    // The live and dirty sandboxes are untouched and still verify clean.
    env.provision(&env.path("worktree-live"), &["verify"])
        .expect(0);
    env.provision(&dirty, &["verify"]).expect(0);
    assert_eq!(read(dirty.join("notes.txt")), "unsaved\n");
    assert_eq!(read(dirty.join("package.json")), "{}\n");
    // A second run finds nothing more to do.
    let again = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(again["removed"], serde_json::json!([]));
}

#[test]
fn gc_keeps_a_worktree_moved_with_git_and_follows_it() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "a"]).expect(0);
    let moved = env.path("moved-a");
    env.git(
        &main,
        &["worktree", "move", "../worktree-a", moved.to_str().unwrap()],
    );

    let report = env
        .provision(&main, &["gc", "--dry-run", "--json"])
        .expect(0)
        .json();
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    assert!(report.to_string().contains("moved from"), "{report}");
    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    assert!(names(&report["kept"]).contains("a"), "{report}");
    assert!(db_file(&main, "app_a").is_file());
    let record = &records(&main)[0];
    let path = std::path::PathBuf::from(record["path"].as_str().unwrap());
    assert_eq!(
        fs_err::canonicalize(path).unwrap(),
        fs_err::canonicalize(&moved).unwrap()
    );
    env.provision(&moved, &["verify"]).expect(0);
    // Once followed, it is plainly live.
    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert!(!report.to_string().contains("moved from"), "{report}");
}

#[test]
fn remove_refuses_unsaved_work_and_force_takes_everything() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    write(wt.join("notes.txt"), "my unsaved work\n");
    write(wt.join("package.json"), "{\"edited\": true}\n");

    let run = env.provision(&main, &["remove", "feature"]).expect(2);
    assert!(run.stderr.contains("notes.txt"), "{}", run.stderr);
    assert!(run.stderr.contains("package.json"), "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(read(wt.join("notes.txt")), "my unsaved work\n");
    assert!(db_file(&main, "app_feature").is_file());
    assert!(record_file(&main, "worktree-feature").is_file());
    env.provision(&wt, &["verify"]).expect(0);

    let port = env_port(&wt);
    let run = env
        .provision(&main, &["remove", "feature", "--force", "--json"])
        .expect(0);
    let removal = run.json();
    assert_eq!(removal["database_fate"], "dropped");
    assert_eq!(removal["port"], port);
    assert_eq!(removal["branch_deleted"], true, "no commits: merged");
    assert!(!wt.exists());
    assert!(!db_file(&main, "app_feature").exists());
    assert!(!record_file(&main, "worktree-feature").exists());
    assert!(!worktree_list(&env, &main).contains("worktree-feature"));
    // The link was removed, not followed: the main checkout's files are intact.
    assert!(main.join("node_modules/left-pad/index.js").is_file());
    assert!(main.join(".env").is_file());
}

#[test]
fn remove_refuses_real_files_hidden_by_provisions_exclude_list() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "a"]).expect(0);
    let wt = env.path("worktree-a");
    // The link replaced by a real, edited file: git does not see it, since
    // the link path is in the shared info/exclude.
    fs_err::remove_file(wt.join(".npmrc")).unwrap();
    write(wt.join(".npmrc"), "//registry.example/:_authToken=mine\n");
    assert_eq!(env.git(&wt, &["status", "--porcelain"]), "");

    let run = env.provision(&main, &["remove", "a"]).expect(2);
    assert!(run.stderr.contains(".npmrc"), "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(
        read(wt.join(".npmrc")),
        "//registry.example/:_authToken=mine\n"
    );
    // gc --merged keeps it too.
    let report = env
        .provision(&main, &["gc", "--merged", "--json"])
        .expect(0)
        .json();
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    assert!(wt.is_dir());

    // The env file provision wrote, edited by hand, is named as well; a
    // link folder replaced by a real one too.
    fs_err::remove_file(wt.join(".npmrc")).unwrap();
    env.provision(&wt, &["apply"]).expect(0);
    write(
        wt.join(".env.local"),
        &format!("{}MY_KEY=1\n", read(wt.join(".env.local"))),
    );
    fs_err::remove_file(wt.join("node_modules")).unwrap();
    fs_err::create_dir_all(wt.join("node_modules/mine")).unwrap();
    let run = env.provision(&main, &["remove", "a"]).expect(2);
    assert!(
        run.stderr.contains(".env.local") && run.stderr.contains("node_modules"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(".npmrc"), "{}", run.stderr);

    env.provision(&main, &["remove", "a", "--force"]).expect(0);
    assert!(!wt.exists());
    assert_eq!(
        read(main.join(".npmrc")),
        read(crate::support::FIXTURE.to_string() + "/.npmrc")
    );
}

#[test]
fn remove_keeps_commits_on_no_other_branch_and_unmerged_branches() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "wip"]).expect(0);
    let wt = env.path("worktree-wip");
    write(wt.join("src/new.txt"), "work\n");
    env.commit_all(&wt, "half-done idea");

    let run = env.provision(&main, &["remove", "wip"]).expect(2);
    assert!(run.stderr.contains("half-done idea"), "{}", run.stderr);
    assert!(wt.is_dir());

    // Pushed elsewhere (another branch holds it): no longer unique, but
    // still not merged, so the branch stays.
    env.git(&main, &["branch", "backup", "wip"]);
    let run = env
        .provision(&main, &["remove", wt.to_str().unwrap()])
        .expect(0);
    assert!(
        run.stdout
            .contains("kept branch wip: it is not merged into main"),
        "{}",
        run.stdout
    );
    assert!(!wt.exists());
    env.git(&main, &["rev-parse", "--verify", "refs/heads/wip"]);

    // The main worktree is never removed.
    let run = env
        .provision(&main, &["remove", main.to_str().unwrap()])
        .expect(2);
    assert!(run.stderr.contains("main worktree"), "{}", run.stderr);
}

#[test]
fn remove_keep_branch_and_gc_merged() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for name in ["done", "kept", "open", "busy", "fresh"] {
        env.provision(&main, &["new", name]).expect(0);
    }
    env.provision(&main, &["remove", "kept", "--keep-branch"])
        .expect(0);
    env.git(&main, &["rev-parse", "--verify", "refs/heads/kept"]);

    let done = env.path("worktree-done");
    write(done.join("src/done.txt"), "finished\n");
    env.commit_all(&done, "finished work");
    env.git(&main, &["merge", "-q", "--ff-only", "done"]);
    let open = env.path("worktree-open");
    write(open.join("src/open.txt"), "ongoing\n");
    env.commit_all(&open, "ongoing work");
    // Merged but dirty: kept.
    let busy = env.path("worktree-busy");
    write(busy.join("src/busy.txt"), "merged\n");
    env.commit_all(&busy, "merged work");
    env.git(&main, &["merge", "-q", "--no-ff", "--no-edit", "busy"]);
    write(busy.join("scratch.txt"), "x\n");
    // "fresh" has no commits of its own: merged by ancestry, but kept.
    sqlite(&main, "app_fresh")
        .execute("INSERT INTO users(email) VALUES('wip@example.com')", [])
        .unwrap();

    let report = env
        .provision(&main, &["gc", "--merged", "--json"])
        .expect(0)
        .json();
    assert_eq!(names(&report["removed"]), BTreeSet::from(["done".into()]));
    assert!(!done.exists());
    assert!(!db_file(&main, "app_done").exists());
    let branches = env.git(&main, &["branch", "--format=%(refname:short)"]);
    assert!(!branches.lines().any(|b| b == "done"), "{branches}");
    let kept = report["kept"].as_array().unwrap();
    let reason = |name: &str| {
        kept.iter()
            .find(|k| k["name"] == name)
            .map(|k| k["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} not kept: {report}"))
    };
    assert!(reason("open").contains("not merged"));
    assert!(reason("busy").contains("scratch.txt"));
    assert!(reason("fresh").contains("no commits of its own yet"));
    assert!(db_file(&main, "app_fresh").is_file());
    assert!(env.path("worktree-busy/scratch.txt").is_file());
}

#[test]
fn eight_concurrent_new_give_eight_clean_sandboxes() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let start = Barrier::new(8);
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (env, main, start) = (&env, &main, &start);
                scope.spawn(move || {
                    start.wait();
                    env.provision(main, &["new", &format!("agent-{i}")])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in runs {
        run.expect(0);
    }
    let records = records(&main);
    assert_eq!(records.len(), 8);
    let ports: BTreeSet<u64> = records
        .iter()
        .map(|r| r["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports.len(), 8, "{ports:?}");
    for i in 0..8 {
        let wt = env.path(&format!("worktree-agent-{i}"));
        env.provision(&wt, &["verify"]).expect(0);
        assert_eq!(env.git(&wt, &["status", "--porcelain"]), "");
    }
    let exclude = read(main.join(".git/info/exclude"));
    assert_eq!(exclude.matches(">>> provision").count(), 1, "{exclude}");
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    let states: Vec<&str> = status["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["main"] == false)
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["clean"; 8]);
}

#[test]
fn status_lists_every_worktree_with_its_state() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for name in ["clean", "drifted", "stale", "orphan"] {
        env.provision(&main, &["new", name]).expect(0);
    }
    fs_err::remove_file(env.path("worktree-drifted/.npmrc")).unwrap();
    write(
        env.path("worktree-stale/migrations/0003_add_tags.sql"),
        "CREATE TABLE tags(id INTEGER PRIMARY KEY);\n",
    );
    fs_err::remove_dir_all(env.path("worktree-orphan")).unwrap();
    // Past git's expiry for entries whose folder is gone (three months by
    // default, during which a moved worktree can still be repaired).
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    env.git(
        &main,
        &["worktree", "add", "-q", "-b", "plain", "../worktree-plain"],
    );

    let report = env.provision(&main, &["status", "--json"]).expect(0).json();
    let rows = report["sandboxes"].as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {report}"))
    };
    assert_eq!(rows.len(), 6, "{report}");
    assert_eq!(row("main")["main"], true);
    assert_eq!(row("main")["state"], "not-provisioned");
    assert_eq!(row("clean")["state"], "clean");
    assert_eq!(row("clean")["dirty"], false);
    assert_eq!(row("clean")["database"], "app_clean");
    assert_eq!(row("clean")["port"], env_port(&env.path("worktree-clean")));
    assert_eq!(row("drifted")["state"], "drift");
    assert_eq!(row("stale")["state"], "stale");
    assert_eq!(row("stale")["dirty"], true);
    assert_eq!(row("orphan")["state"], "orphan");
    assert_eq!(row("orphan")["dirty"], serde_json::Value::Null);
    assert_eq!(row("plain")["state"], "not-provisioned");
    assert_eq!(row("plain")["database"], serde_json::Value::Null);

    let text = env.provision(&main, &["status"]).expect(0).stdout;
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("NAME"), "{text}");
    let state_column = header.find("STATE").unwrap();
    let line = text.lines().find(|l| l.starts_with("stale ")).unwrap();
    assert_eq!(&line[state_column..state_column + 5], "stale", "{text}");
}

/// On a terminal the rows print as each is read, in the table a pipe gets
/// (here the main checkout's `not provisioned` sets the state column's
/// width either way).
#[test]
fn status_on_a_terminal_prints_the_table_a_pipe_gets() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for name in ["one", "two", "three"] {
        env.provision(&main, &["new", name]).expect(0);
    }
    fs_err::remove_file(env.path("worktree-two/.npmrc")).unwrap();
    let piped = env.provision(&main, &["status"]).expect(0).stdout;
    assert!(piped.contains("└ link .npmrc"), "{piped}");
    let mut cmd = env.command("script", &main);
    cmd.args(["-qec", "\"$PROVISION\" status", "/dev/null"])
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    let run = Run::from(cmd.output().unwrap()).expect(0);
    assert_eq!(run.stdout.replace("\r\n", "\n"), piped);
}

/// git hands a removed worktree's id to the next worktree of the same folder
/// name; that worktree must not take over the old sandbox's record or data.
#[test]
fn a_worktree_under_a_reused_id_never_inherits_the_old_sandbox() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    env.git(&main, &["worktree", "remove", "../worktree-feat"]);
    fs_err::create_dir_all(env.path("elsewhere")).unwrap();
    env.worktree_add(&main, "other", &env.path("elsewhere/worktree-feat"));
    let wt = env.path("elsewhere/worktree-feat");

    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains("still holds sandbox `feat`"),
        "{}",
        run.stderr
    );
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    let feat = status["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "feat")
        .unwrap()
        .clone();
    assert_eq!(feat["state"], "orphan", "{status}");

    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(
        names(&report["removed"]),
        BTreeSet::from(["feat".to_string()]),
        "{report}"
    );
    assert!(!db_file(&main, "app_feat").exists());
    assert!(
        wt.is_dir(),
        "gc must not touch the worktree now under the id"
    );

    env.provision(&wt, &["apply"]).expect(0);
    assert!(read(wt.join(".env.local")).contains("DB_NAME=app_other"));
    env.provision(&wt, &["verify"]).expect(0);
}

/// git can still refuse to remove a worktree that passed provision's own
/// checks (here: one git believes holds submodules); its database must
/// survive that.
#[test]
fn remove_keeps_the_database_when_git_refuses_the_worktree() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    fs_err::create_dir_all(main.join(".git/worktrees/worktree-feat/modules")).unwrap();
    let run = env.provision(&main, &["remove", "feat"]).expect(2);
    assert!(run.stderr.contains("submodules"), "{}", run.stderr);
    assert!(db_file(&main, "app_feat").is_file());
    assert!(record_file(&main, "worktree-feat").is_file());
    env.provision(&env.path("worktree-feat"), &["verify"])
        .expect(0);
}

/// remove and gc never take a sandbox down in the middle of an apply.
#[test]
fn a_sandbox_being_applied_is_not_taken_down() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    // Hold the sandbox's lock as a running `provision apply` does.
    let lock = fs_err::File::open(main.join(".git/provision/locks/worktree-feat.lock")).unwrap();
    lock.file().lock().unwrap();
    let run = env.provision(&main, &["remove", "feat"]).expect(2);
    assert!(
        run.stderr.contains("sandbox `feat` is busy"),
        "{}",
        run.stderr
    );
    assert!(env.path("worktree-feat").is_dir() && db_file(&main, "app_feat").is_file());
    drop(lock);
    env.provision(&main, &["remove", "feat"]).expect(0);
    assert!(!db_file(&main, "app_feat").exists());
}

#[test]
fn status_tells_unreadable_and_locked_missing_sandboxes_apart() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "a"]).expect(0);
    env.provision(&main, &["new", "locked"]).expect(0);
    env.git(&main, &["worktree", "lock", "../worktree-locked"]);
    fs_err::remove_dir_all(env.path("worktree-locked")).unwrap();
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"oracle\"\n",
    );
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    let row = |name: &str| {
        status["sandboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("a")["state"], "error", "{status}");
    assert!(
        row("a")["detail"]
            .as_str()
            .unwrap()
            .contains("provision.toml:2"),
        "{status}"
    );
    assert_eq!(row("locked")["state"], "missing", "{status}");
}

/// git names a linked worktree after its folder; one called `main` is not
/// the main checkout.
#[test]
fn a_worktree_folder_named_main_gets_its_own_sandbox() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["apply"]).expect(0);
    env.worktree_add(&main, "other", &env.path("main"));
    env.provision(&env.path("main"), &["apply"]).expect(0);
    assert!(read(env.path("main/.env.local")).contains("DB_NAME=app_other"));
    assert!(read(main.join(".env.local")).contains("DB_NAME=app_main"));
    env.provision(&main, &["verify"]).expect(0);
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    let databases: BTreeSet<&str> = status["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["database"].as_str().unwrap())
        .collect();
    assert_eq!(
        databases,
        BTreeSet::from(["app_main", "app_other"]),
        "{status}"
    );
}

/// A live sandbox whose claim file is lost is still its worktree's: gc
/// keeps it and the next apply claims it again.
#[test]
fn a_lost_claim_does_not_orphan_a_live_sandbox() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    let claim = main.join(".git/worktrees/worktree-feat/provision-sandbox");
    fs_err::remove_file(&claim).unwrap();
    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    assert!(db_file(&main, "app_feat").is_file());
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    assert_eq!(status["sandboxes"].as_array().unwrap().len(), 2, "{status}");
    let wt = env.path("worktree-feat");
    env.provision(&wt, &["apply"]).expect(0);
    assert!(claim.is_file());
    env.provision(&wt, &["verify"]).expect(0);

    // Lost again, and the branch switched: its lock there still names this
    // sandbox, so gc keeps it and says apply writes the claim again.
    fs_err::remove_file(&claim).unwrap();
    env.git(&wt, &["switch", "-q", "-c", "elsewhere"]);
    let report = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    assert!(
        report
            .to_string()
            .contains("holds its lock, but its claim is missing"),
        "{report}"
    );
    assert!(db_file(&main, "app_feat").is_file());
}

#[test]
fn remove_refuses_a_worktree_with_a_checked_out_submodule() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let sub = env.fixture_repo("sub");
    env.provision(&main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    env.git(
        &wt,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            sub.to_str().unwrap(),
            "vendor/sub",
        ],
    );
    env.commit_all(&wt, "a submodule");
    let run = env.provision(&main, &["remove", "feat"]).expect(2);
    assert!(run.stderr.contains("submodules"), "{}", run.stderr);
    assert!(db_file(&main, "app_feat").is_file() && wt.is_dir());
}

/// A worktree moved with plain `mv` only looks gone: git keeps its entry
/// until `gc.worktreePruneExpire`, and gc keeps its sandbox as long. In its
/// new place provision names `git worktree repair`, after which everything
/// is as before.
#[test]
fn a_moved_worktree_keeps_its_database_until_gits_expiry() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "moved"]).expect(0);
    let old = env.path("worktree-moved");
    let new = env.path("elsewhere");
    fs_err::rename(&old, &new).unwrap();

    let gc = env.provision(&main, &["gc", "--json"]).expect(0).json();
    assert_eq!(gc["removed"], serde_json::json!([]), "{gc}");
    assert!(
        gc["kept"].to_string().contains("git worktree repair"),
        "{gc}"
    );
    assert!(db_file(&main, "app_moved").is_file());
    let status = env.provision(&main, &["status", "--json"]).expect(0).json();
    let row = status["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "moved")
        .cloned()
        .unwrap();
    assert_eq!(row["state"], "missing", "{status}");

    let run = env.provision(&new, &["verify"]).expect(2);
    assert!(
        run.stderr.contains("run `git worktree repair` in it"),
        "{}",
        run.stderr
    );
    env.git(&new, &["worktree", "repair"]);
    env.provision(&new, &["verify"]).expect(0);
    env.provision(&main, &["gc"]).expect(0);
    assert!(db_file(&main, "app_moved").is_file());
    env.provision(&new, &["verify"]).expect(0);
}
