//! Everyday use as a person or script meets it: names with `/`, errors a
//! script can read, output into a closed pipe, status rows that say why.

use crate::support::{TestEnv, write};

#[test]
fn a_name_with_a_slash_keeps_its_branch_but_not_nested_folders() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature/login"]).expect(0);
    let wt = env.path("worktree-feature-login");
    assert!(wt.join("provision.lock").is_file());
    assert!(!env.path("worktree-feature").exists());
    assert_eq!(
        env.git(&wt, &["branch", "--show-current"]).trim(),
        "feature/login"
    );
    env.provision(&main, &["remove", "feature/login"]).expect(0);
    assert!(!wt.exists());
    let leftovers: Vec<_> = fs_err::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("worktree-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn with_json_an_error_is_also_a_json_object_on_stdout() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"oracle\"\n",
    );
    let run = env.provision(&main, &["new", "x", "--json"]).expect(2);
    let json = run.json();
    assert_eq!(json["exit"], 2);
    let message = json["error"].as_str().unwrap();
    assert!(message.contains("provision.toml"), "{message}");
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(json["causes"].is_array());

    // Without --json, stdout stays empty.
    let run = env.provision(&main, &["new", "x"]).expect(2);
    assert_eq!(run.stdout, "");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    for args in [
        &["completions", "fish"][..],
        &["status"],
        &["verify"],
        &["env"],
    ] {
        // A pipe whose reader is gone before provision writes: every write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = env
            .command(env!("CARGO_BIN_EXE_provision"), &env.path("worktree-feat"))
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn status_text_says_why_a_row_is_not_clean() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"oracle\"\n",
    );
    let text = env.provision(&main, &["status"]).expect(0).stdout;
    let feat = text.lines().position(|l| l.starts_with("feat ")).unwrap();
    let below = text.lines().nth(feat + 1).unwrap();
    assert!(below.trim_start().starts_with("└ "), "{text}");
    assert!(below.contains("provision.toml"), "{text}");
    assert!(
        text.contains("the main checkout is `not provisioned` until `provision apply` runs there"),
        "{text}"
    );
}

#[test]
fn env_warns_while_the_env_file_differs_from_its_lock() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    let clean = env.provision(&wt, &["env"]).expect(0);
    assert!(!clean.stderr.contains("warning"), "{}", clean.stderr);

    let file = wt.join(".env.local");
    let text = crate::support::read(&file);
    write(&file, &text.replace("DB_NAME=", "DB_NAME=edited_"));
    let run = env.provision(&wt, &["env"]).expect(0);
    assert!(run.stdout.contains("DB_NAME=app_feat\n"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("warning: .env.local was edited since provision wrote it"),
        "{}",
        run.stderr
    );
    fs_err::remove_file(&file).unwrap();
    let run = env.provision(&wt, &["exec", "--", "true"]).expect(0);
    assert!(
        run.stderr.contains(".env.local is missing"),
        "{}",
        run.stderr
    );
}

#[test]
fn new_checks_out_an_existing_branch_and_keeps_it_on_failure() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.git(&main, &["checkout", "-q", "-b", "resume"]);
    write(main.join("src/resumed.txt"), "work in progress\n");
    env.commit_all(&main, "resume work");
    env.git(&main, &["checkout", "-q", "main"]);

    let run = env
        .provision(&main, &["new", "resume", "--from", "HEAD"])
        .expect(2);
    assert!(
        run.stderr.contains("branch `resume` exists already"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-resume").exists());

    let run = env.provision(&main, &["new", "resume"]).expect(0);
    assert!(run.stderr.contains("on branch resume"), "{}", run.stderr);
    let wt = env.path("worktree-resume");
    assert_eq!(
        crate::support::read(wt.join("src/resumed.txt")),
        "work in progress\n"
    );
    env.provision(&wt, &["verify"]).expect(0);
    // Its commits are on no other branch, and remove says what --force does.
    let run = env.provision(&main, &["remove", "resume"]).expect(2);
    assert!(
        run.stderr.contains("they stay on branch `resume`, which remove keeps: pass --force to remove the worktree and keep the branch"),
        "{}",
        run.stderr
    );
    env.provision(&main, &["remove", "resume", "--force"])
        .expect(0);
    // Unmerged: remove keeps it, as always.
    assert!(
        env.git(&main, &["branch", "--list", "resume"])
            .contains("resume")
    );

    // A sandbox that fails to build takes its worktree back, but never a
    // branch that was there before.
    env.git(&main, &["checkout", "-q", "resume"]);
    write(main.join("migrations/0003_broken.sql"), "CREATE TABLE;\n");
    env.commit_all(&main, "broken migration");
    env.git(&main, &["checkout", "-q", "main"]);
    let run = env.provision(&main, &["new", "resume"]).expect(2);
    assert!(run.stderr.contains("0003_broken.sql"), "{}", run.stderr);
    assert!(!wt.exists());
    assert!(
        env.git(&main, &["branch", "--list", "resume"])
            .contains("resume")
    );
}

#[test]
fn new_tracks_a_branch_only_a_remote_has() {
    let env = TestEnv::new();
    let origin = env.fixture_repo("origin");
    env.git(&origin, &["checkout", "-q", "-b", "review"]);
    write(origin.join("src/pr.txt"), "under review\n");
    env.commit_all(&origin, "pull request");
    env.git(&origin, &["checkout", "-q", "main"]);
    let clone = env.clone_of(&origin, "clone");

    let run = env.provision(&clone, &["new", "review"]).expect(0);
    assert!(
        run.stderr.contains("tracking origin/review"),
        "{}",
        run.stderr
    );
    let wt = env.path("worktree-review");
    assert_eq!(
        crate::support::read(wt.join("src/pr.txt")),
        "under review\n"
    );
    assert_eq!(
        env.git(&wt, &["rev-parse", "--abbrev-ref", "review@{upstream}"])
            .trim(),
        "origin/review"
    );
    env.provision(&wt, &["verify"]).expect(0);
}

#[test]
fn a_failed_worktree_add_leaves_no_branch() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    fs_err::create_dir_all(env.path("worktree-taken")).unwrap();
    write(env.path("worktree-taken/file.txt"), "someone's\n");
    let run = env.provision(&main, &["new", "taken"]).expect(2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    // git's command as `-v` shows it: quoted where a shell would split it.
    assert!(
        run.stderr
            .contains(" worktree add --lock --reason 'provision new: being created' -b taken "),
        "{}",
        run.stderr
    );
    assert!(
        !env.git(&main, &["branch", "--list", "taken"])
            .contains("taken")
    );
    assert_eq!(
        crate::support::read(env.path("worktree-taken/file.txt")),
        "someone's\n"
    );
}

#[test]
fn apply_and_verify_all_report_every_sandbox() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "one"]).expect(0);
    env.provision(&main, &["new", "two"]).expect(0);
    env.provision(&main, &["verify", "--all"]).expect(0);

    // A recipe change leaves both stale; a foreign env file stops one.
    write(
        main.join("provision.toml"),
        "[env.vars]\nDB_NAME = \"{db}\"\nPORT = \"{port}\"\nMODE = \"sandbox\"\n",
    );
    let two = env.path("worktree-two");
    write(two.join(".env.local"), "MINE=1\n");
    let json = env
        .provision(&main, &["verify", "--all", "--json"])
        .expect(1)
        .json();
    let rows = json["sandboxes"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "the main checkout has no sandbox: {json}");
    assert!(rows.iter().all(|r| r["clean"] == false));

    let run = env.provision(&main, &["apply", "--all"]).expect(2);
    assert!(run.stdout.contains("sandbox one: "), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "error {}: .env.local exists and was not written by provision",
            two.display()
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("2 sandbox(es), 1 failed"),
        "{}",
        run.stdout
    );
    env.provision(&env.path("worktree-one"), &["verify"])
        .expect(0);
    assert_eq!(crate::support::read(two.join(".env.local")), "MINE=1\n");

    fs_err::remove_file(two.join(".env.local")).unwrap();
    env.provision(&main, &["apply", "--all"]).expect(0);
    env.provision(&main, &["verify", "--all"]).expect(0);
}

/// The fixture links a `.dev.vars` that sets DB_NAME, while the overrides
/// go into `.env.local`: an app reading only `.dev.vars` would use the
/// main checkout's database. new, verify and status say so; apply does not
/// repeat it on every run.
#[test]
fn a_linked_file_setting_an_override_is_warned_about() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let run = env.provision(&main, &["new", "feat"]).expect(0);
    let warning = "warning: .dev.vars (linked from the main checkout) sets DB_NAME, which this worktree overrides in .env.local";
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    let wt = env.path("worktree-feat");
    let run = env.provision(&wt, &["verify"]).expect(0);
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    let json = env.provision(&wt, &["verify", "--json"]).expect(0).json();
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1);
    let text = env.provision(&main, &["status"]).expect(0).stdout;
    assert!(
        text.contains("└ warning: .dev.vars (linked from the main checkout) sets DB_NAME"),
        "{text}"
    );
    let run = env.provision(&wt, &["apply"]).expect(0);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    // With the overrides in .dev.vars itself, nothing is shadowed.
    write(main.join("provision.toml"), "[env]\nfile = \".dev.vars\"\n");
    env.provision(&wt, &["apply"]).expect(0);
    let run = env.provision(&wt, &["verify"]).expect(0);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

/// Moving the overrides into a linked file (`.env`): apply replaces the
/// link with a real file holding the shared values and the overrides, and
/// takes away the old env file it wrote; the main checkout's `.env` stays.
#[test]
fn switching_the_env_file_to_a_linked_file_keeps_the_worktree_whole() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    let shared = crate::support::read(main.join(".env"));
    write(main.join("provision.toml"), "[env]\nfile = \".env\"\n");
    env.provision(&wt, &["apply"]).expect(0);
    let meta = fs_err::symlink_metadata(wt.join(".env")).unwrap();
    assert!(meta.file_type().is_file());
    let text = crate::support::read(wt.join(".env"));
    assert!(
        text.contains("API_KEY=shared-secret\n") && text.contains("DB_NAME=app_feat\n"),
        "{text}"
    );
    assert!(!wt.join(".env.local").exists());
    assert_eq!(crate::support::read(main.join(".env")), shared);
    env.provision(&wt, &["verify"]).expect(0);
}

/// A revision reaches git as a word after the path: one that reads as an
/// option is refused, never passed on.
#[test]
fn from_must_name_a_revision() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let run = env
        .provision(&main, &["new", "x", "--from=--no-checkout"])
        .expect(2);
    assert!(
        run.stderr
            .contains("`--no-checkout` is not a revision of this repository"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-x").exists());
    env.provision(&main, &["new", "x", "--from", "HEAD"])
        .expect(0);
}
