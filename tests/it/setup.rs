//! `[[setup]]` commands: run in order after the sandbox exists, recorded in
//! the lock, resumed from a failure.

use crate::support::{TestEnv, read, write};

const HOOKS: &str = r#"
[[setup]]
run = "echo \"$DB_NAME {port}\" >> setup.log"

[[setup]]
run = "test -f go || (echo not yet >&2; exit 3)"

[[setup]]
run = "echo third >> setup.log"
"#;

#[test]
fn setup_commands_run_in_order_and_resume_after_a_failure() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("provision.toml"), HOOKS);
    let wt = env.path("wt");
    env.worktree_add(&main, "feature", &wt);

    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains(
            "error: provision.toml:6: setup command failed: test -f go || (echo not yet >&2; exit 3) (exit 3)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("not yet"),
        "output streams: {}",
        run.stderr
    );
    let lock: serde_json::Value = serde_json::from_str(&read(wt.join("provision.lock"))).unwrap();
    let port = lock["port"].as_u64().unwrap();
    assert_eq!(read(wt.join("setup.log")), format!("app_feature {port}\n"));
    let completed: Vec<bool> = lock["setup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["completed"].as_bool().unwrap())
        .collect();
    assert_eq!(completed, [true, false, false]);

    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout
            .contains("did not complete (`provision apply` runs it again)"),
        "{}",
        run.stdout
    );
    let run = env.provision(&wt, &["apply", "--dry-run"]).expect(0);
    assert!(
        !run.stdout.contains("setup     echo \"$DB_NAME")
            && run.stdout.contains("  setup     test -f go")
            && run.stdout.contains("  setup     echo third >> setup.log"),
        "{}",
        run.stdout
    );

    // Fixed: apply continues at the failed command.
    write(wt.join("go"), "");
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(
        read(wt.join("setup.log")),
        format!("app_feature {port}\nthird\n")
    );
    env.provision(&wt, &["verify"]).expect(0);
    let run = env.provision(&wt, &["apply"]).expect(0);
    assert!(run.stdout.contains("is up to date"), "{}", run.stdout);

    // An appended command runs alone; its output stays out of --json.
    write(
        main.join("provision.toml"),
        &format!("{HOOKS}\n[[setup]]\nrun = \"echo appended\"\n"),
    );
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout.contains("setup `echo appended`") && run.stdout.contains("not run yet"),
        "{}",
        run.stdout
    );
    let run = env.provision(&wt, &["--json", "apply"]).expect(0);
    let actions = run.json()["actions"].clone();
    assert_eq!(
        actions[0],
        serde_json::json!({"action": "setup", "run": "echo appended"}),
        "{actions}"
    );
    assert!(run.stderr.contains("appended"), "{}", run.stderr);
    assert_eq!(
        read(wt.join("setup.log")),
        format!("app_feature {port}\nthird\n")
    );

    // An edited command runs again, and every command after it.
    write(
        main.join("provision.toml"),
        &HOOKS.replace("exit 3)", "exit 4)"),
    );
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(
        read(wt.join("setup.log")),
        format!("app_feature {port}\nthird\nthird\n")
    );
    env.provision(&wt, &["verify"]).expect(0);
}

#[test]
fn a_failed_setup_command_in_new_keeps_the_sandbox_to_resume() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("provision.toml"), "[[setup]]\nrun = \"exit 1\"\n");
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    let wt = env.path("worktree-feature");
    assert!(
        run.stderr.contains(&format!(
            "error: setup command failed in {}; the sandbox is kept: run `provision apply` there to continue\n\nCaused by:\n    provision.toml:2: setup command failed: exit 1 (exit 1)",
            wt.display()
        )),
        "{}",
        run.stderr
    );
    assert!(wt.join("provision.lock").is_file(), "{}", run.stderr);
    write(main.join("provision.toml"), "[[setup]]\nrun = \"true\"\n");
    env.provision(&wt, &["apply"]).expect(0);
    env.provision(&wt, &["verify"]).expect(0);
}

#[test]
fn quiet_still_shows_a_failed_setup_commands_last_lines() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[[setup]]\nrun = \"echo because >&2; exit 3\"\n",
    );
    let run = env.provision(&main, &["-q", "new", "feature"]).expect(2);
    assert!(
        run.stderr.contains("its last output:\n    | because"),
        "{}",
        run.stderr
    );
}

/// A command that leaves a process running (a dev server) holds the output
/// pipes open: `new` must not wait for that process to end. The process
/// here marks its end with a file, which is not there when `new` returns.
#[test]
fn a_background_process_does_not_hold_up_new() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[[setup]]\nrun = \"(sleep 30; touch ended) & echo $! > background.pid\"\n",
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let ended = wt.join("ended").exists();
    env.command("sh", &wt)
        .args(["-c", "kill \"$(cat background.pid)\""])
        .status()
        .unwrap();
    assert!(
        !ended,
        "new returned only after the background process ended"
    );
}

/// Setup commands see the overrides `env` and `exec` give: in a main
/// checkout whose env file is the shared one, none.
#[test]
fn setup_commands_get_the_overrides_env_reports() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[env]\nfile = \".dev.vars\"\n\n[[setup]]\nrun = \"echo \\\"${{DB_NAME-none}} {db}\\\" > setup.out\"\n",
    );
    env.provision(&main, &["apply"]).expect(0);
    assert_eq!(env.provision(&main, &["env"]).expect(0).stdout, "");
    assert_eq!(read(main.join("setup.out")), "none app_main\n");

    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let run = env.provision(&wt, &["env"]).expect(0);
    assert!(
        run.stdout.contains("DB_NAME=app_feature\n"),
        "{}",
        run.stdout
    );
    assert_eq!(read(wt.join("setup.out")), "app_feature app_feature\n");
}

/// As the README says: a command removed from the middle of the list is not
/// undone, and every command after it runs again (it is no longer in the
/// same place).
#[test]
fn removing_a_command_reruns_the_commands_after_it() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let hook = |name: &str| format!("[[setup]]\nrun = \"echo {name} >> setup.log\"\n");
    write(
        main.join("provision.toml"),
        &[hook("a"), hook("b"), hook("c")].concat(),
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    write(
        main.join("provision.toml"),
        &[hook("a"), hook("c")].concat(),
    );
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(read(wt.join("setup.log")), "a\nb\nc\nc\n");
    env.provision(&wt, &["verify"]).expect(0);
}
