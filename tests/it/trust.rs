//! A repository's commands run only once this user approved their exact
//! text: `provision trust` approves, `--trust` and `PROVISION_TRUST=1` skip
//! approval, and approvals live in the user's config dir, not the repository.

use std::path::Path;

use crate::support::{Run, TestEnv, read, write};

const RECIPE: &str = "[[setup]]\nrun = \"echo ran >> setup.log\"\n";

/// `provision` as a user runs it who has not set PROVISION_TRUST.
fn untrusted(env: &TestEnv, cwd: &Path, args: &[&str]) -> Run {
    Run::from(
        env.command(env!("CARGO_BIN_EXE_provision"), cwd)
            .env_remove("PROVISION_TRUST")
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn an_unapproved_setup_command_stops_new_before_anything_is_made() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("provision.toml"), RECIPE);
    env.commit_all(&main, "setup");

    let run = untrusted(&env, &main, &["new", "feat"]).expect(2);
    assert!(
        run.stderr
            .contains("provision.toml:2: setup `echo ran >> setup.log` is not approved"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`provision trust`"), "{}", run.stderr);
    assert!(!env.path("worktree-feat").exists());
    assert!(
        !env.git(&main, &["branch", "--list", "feat"])
            .contains("feat")
    );

    let list = untrusted(&env, &main, &["trust", "--list", "--json"])
        .expect(0)
        .json();
    assert_eq!(list["commands"][0]["state"], "not approved");
    assert_eq!(list["commands"][0]["line"], 2);
    let text = untrusted(&env, &main, &["trust"]).expect(0).stdout;
    assert!(text.contains("approved now"), "{text}");
    let store = env.path("home/.config/provision/trust.json");
    assert!(read(&store).contains("echo ran >> setup.log"));
    assert_eq!(env.git(&main, &["status", "--porcelain"]), "");

    untrusted(&env, &main, &["new", "feat"]).expect(0);
    assert_eq!(read(env.path("worktree-feat/setup.log")), "ran\n");
}

#[test]
fn a_pulled_change_to_a_command_needs_approval_again() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("provision.toml"), RECIPE);
    untrusted(&env, &main, &["trust"]).expect(0);
    untrusted(&env, &main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");

    write(
        main.join("provision.toml"),
        "[[setup]]\nrun = \"echo ran >> setup.log; touch pwned\"\n",
    );
    let run = untrusted(&env, &wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains("touch pwned` is not approved"),
        "{}",
        run.stderr
    );
    assert!(!wt.join("pwned").exists());

    // The switch for CI and agents, by flag or variable.
    untrusted(&env, &wt, &["apply", "--trust"]).expect(0);
    assert!(wt.join("pwned").exists());
    let run = Run::from(
        env.command(env!("CARGO_BIN_EXE_provision"), &wt)
            .env("PROVISION_TRUST", "1")
            .args(["verify"])
            .output()
            .unwrap(),
    );
    run.expect(0);
}

#[test]
fn the_command_kind_runs_nothing_unapproved_and_a_bad_store_is_named() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"command\"\ncreate = \"mkdir -p \\\"{main}/.dbs/{db}\\\"\"\nexists = \"test -d \\\"{main}/.dbs/{db}\\\"\"\nmigrate = \"cp \\\"{migration}\\\" \\\"{main}/.dbs/{db}/\\\"\"\ndrop = \"rm -rf \\\"{main}/.dbs/{db}\\\"\"\n",
    );
    let run = untrusted(&env, &main, &["new", "feat"]).expect(2);
    assert!(
        run.stderr
            .contains("provision.toml:3: database.create `mkdir"),
        "{}",
        run.stderr
    );
    // Each database command is listed with its line, as setup commands are.
    let list = untrusted(&env, &main, &["trust", "--list", "--json"])
        .expect(0)
        .json();
    let lines: Vec<(String, u64)> = list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["what"].as_str().unwrap().starts_with("database."))
        .map(|c| {
            (
                c["what"].as_str().unwrap().into(),
                c["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [("create", 3), ("exists", 4), ("migrate", 5), ("drop", 6)];
    let want: Vec<(String, u64)> = want
        .iter()
        .map(|(k, l)| (format!("database.{k}"), *l))
        .collect();
    assert_eq!(lines, want, "{list}");
    untrusted(&env, &main, &["trust"]).expect(0);
    untrusted(&env, &main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    untrusted(&env, &wt, &["verify"]).expect(0);

    let store = env.path("home/.config/provision/trust.json");
    write(&store, "{\"version\": 1, \"repositories\": ");
    let run = untrusted(&env, &wt, &["verify"]).expect(2);
    assert!(
        run.stderr
            .contains(&format!("{}: not a file of approvals", store.display())),
        "{}",
        run.stderr
    );
}

/// The commands run with the overrides in their environment: a pulled
/// change to them needs approval as a changed command does, and variables
/// that make programs load other code are refused outright. A changed
/// `drop` stops remove and gc from running it.
#[test]
fn the_commands_environment_and_teardown_are_approved_too() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        &format!("{RECIPE}[env.vars]\nDB_NAME = \"{{db}}\"\nMODE = \"a\"\n"),
    );
    untrusted(&env, &main, &["trust"]).expect(0);
    untrusted(&env, &main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    write(
        main.join("provision.toml"),
        &format!("{RECIPE}[env.vars]\nDB_NAME = \"{{db}}\"\nMODE = \"b\"\n"),
    );
    let run = untrusted(&env, &wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains("env.vars (the commands' environment)"),
        "{}",
        run.stderr
    );

    write(
        main.join("provision.toml"),
        &format!("{RECIPE}[env.vars]\nLD_PRELOAD = \"{{main}}/x.so\"\n"),
    );
    let run = untrusted(&env, &wt, &["apply", "--trust"]).expect(2);
    assert!(
        run.stderr
            .contains("provision.toml:4: env.vars: `LD_PRELOAD` changes which libraries"),
        "{}",
        run.stderr
    );

    // The command kind's drop, changed after approval, never runs.
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let kind = |drop: &str| {
        format!(
            "[database]\nkind = \"command\"\ncreate = \"mkdir -p \\\"{{main}}/.dbs/{{db}}\\\"\"\nexists = \"test -d \\\"{{main}}/.dbs/{{db}}\\\"\"\nmigrate = \"true\"\ndrop = \"{drop}\"\n"
        )
    };
    write(
        main.join("provision.toml"),
        &kind("rm -rf \\\"{main}/.dbs/{db}\\\""),
    );
    untrusted(&env, &main, &["trust"]).expect(0);
    untrusted(&env, &main, &["new", "feat"]).expect(0);
    write(
        main.join("provision.toml"),
        &kind("touch \\\"{main}/pwned\\\""),
    );
    untrusted(&env, &main, &["remove", "feat"]).expect(2);
    untrusted(&env, &main, &["gc"]);
    assert!(!main.join("pwned").exists());
    assert!(main.join(".dbs/app_feat").is_dir());
}

#[test]
fn approvals_made_at_once_in_many_repositories_are_all_kept() {
    let env = TestEnv::new();
    let repos: Vec<_> = (0..8)
        .map(|i| {
            let main = env.fixture_repo(&format!("app{i}"));
            write(main.join("provision.toml"), RECIPE);
            env.commit_all(&main, "setup");
            main
        })
        .collect();
    // Each saves the whole store: without a lock around reading and
    // saving it, the last to save drops what the others approved.
    let runs: Vec<_> = repos
        .iter()
        .map(|main| {
            env.command(env!("CARGO_BIN_EXE_provision"), main)
                .env_remove("PROVISION_TRUST")
                .arg("trust")
                .spawn()
                .unwrap()
        })
        .collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success());
    }
    for main in &repos {
        let list = untrusted(&env, main, &["trust", "--list", "--json"])
            .expect(0)
            .json();
        assert_eq!(list["commands"][0]["state"], "approved", "{list}");
    }
}
