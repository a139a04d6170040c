//! What a person sees: the text output of `verify` and the help, snapshot-
//! tested with temp paths, hashes and ports redacted.

use crate::support::TestEnv;

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"blake3:[0-9a-f]{64}", "blake3:[HASH]");
    settings.add_filter(r#""port": \d+"#, r#""port": [PORT]"#);
    settings.add_filter(r#""PORT": "\d+""#, r#""PORT": "[PORT]""#);
    settings.add_filter(r"/[^\s]*/\.tmp[^/\s]+", "[TMP]");
    settings
}

#[test]
fn verify_shows_a_diff_and_one_line_per_finding() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    fs_err::remove_file(wt.join("node_modules")).unwrap();
    fs_err::remove_file(wt.join(".env.local")).unwrap();
    let run = env.provision(&wt, &["verify"]).expect(1);
    settings().bind(|| insta::assert_snapshot!(run.stdout));
}

#[test]
fn help_names_every_command() {
    let env = TestEnv::new();
    let run = env.provision(env.dir.path(), &["--help"]).expect(0);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn help_of_the_ecosystem_commands() {
    let env = TestEnv::new();
    for command in ["env", "exec", "init", "completions"] {
        let run = env
            .provision(env.dir.path(), &[command, "--help"])
            .expect(0);
        insta::assert_snapshot!(format!("help_{command}"), run.stdout);
    }
}

#[test]
fn help_of_the_service_commands() {
    let env = TestEnv::new();
    for command in ["up", "down", "logs", "remove"] {
        let run = env
            .provision(env.dir.path(), &[command, "--help"])
            .expect(0);
        insta::assert_snapshot!(format!("help_{command}"), run.stdout);
    }
}

#[test]
fn help_of_db_reset() {
    let env = TestEnv::new();
    let run = env
        .provision(env.dir.path(), &["db", "reset", "--help"])
        .expect(0);
    insta::assert_snapshot!("help_db_reset", run.stdout);
}
