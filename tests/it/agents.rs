//! Agents that make worktrees themselves: Claude Code's WorktreeCreate and
//! WorktreeRemove hooks handled by `provision hook claude-code`, and
//! `init --agent claude-code` pointing them at provision.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Run, TestEnv, read, write};

/// Runs the hook with `event` on stdin and stdin left open, as an agent may
/// leave it: the hook must answer after one JSON object, not at EOF.
fn hook(env: &TestEnv, cwd: &Path, event: &serde_json::Value) -> Run {
    let mut child = env
        .command(env!("CARGO_BIN_EXE_provision"), cwd)
        .args(["hook", "claude-code"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(event.to_string().as_bytes()).unwrap();
    stdin.flush().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the hook waits for stdin to close"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn worktree_create_builds_the_sandbox_and_prints_only_its_path() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let wanted = main.join(".claude/worktrees/agent-a1");
    let event = serde_json::json!({
        "hook_event_name": "WorktreeCreate",
        "session_id": "s1",
        "cwd": main,
        "name": "agent-a1",
        "worktree_path": wanted,
    });
    let run = hook(&env, &main, &event).expect(0);
    assert_eq!(run.stdout, format!("{}\n", wanted.display()));
    assert!(
        run.stderr.contains("worktree"),
        "progress on stderr: {}",
        run.stderr
    );
    env.provision(&wanted, &["verify"]).expect(0);
    assert!(read(wanted.join(".env.local")).contains("DB_NAME=app_agent_a1"));

    // Without a path, `[worktree] path` decides; `worktree_name` and
    // `base_ref` are read as older builds send them.
    let event = serde_json::json!({
        "hook_event_name": "WorktreeCreate",
        "worktree_name": "agent-b2",
        "base_ref": "HEAD",
    });
    let run = hook(&env, &main, &event).expect(0);
    let path = env.path("worktree-agent-b2");
    assert_eq!(run.stdout.trim(), path.display().to_string());
    env.provision(&path, &["verify"]).expect(0);
}

#[test]
fn worktree_remove_takes_the_sandbox_away_under_removes_rules() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "agent-c3"]).expect(0);
    let wt = env.path("worktree-agent-c3");
    write(wt.join("work.txt"), "unsaved\n");
    let event = serde_json::json!({ "hook_event_name": "WorktreeRemove", "worktree_path": wt });
    let run = hook(&env, &main, &event).expect(2);
    assert!(run.stderr.contains("work.txt"), "{}", run.stderr);
    assert!(wt.join("work.txt").exists());

    fs_err::remove_file(wt.join("work.txt")).unwrap();
    let run = hook(&env, &main, &event).expect(0);
    assert_eq!(run.stdout, "");
    assert!(!wt.exists());
    assert!(
        !main
            .join(".git/provision/sqlite/app_agent_c3.sqlite")
            .exists()
    );

    let run = hook(
        &env,
        &main,
        &serde_json::json!({ "hook_event_name": "Stop" }),
    )
    .expect(2);
    assert!(
        run.stderr.contains("WorktreeCreate and WorktreeRemove"),
        "{}",
        run.stderr
    );
}

#[test]
fn init_agent_merges_the_hooks_into_claude_settings() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let settings = main.join(".claude/settings.json");
    fs_err::create_dir_all(main.join(".claude")).unwrap();
    write(
        &settings,
        "{\n  \"permissions\": {\"allow\": [\"Bash(npm test)\"]},\n  \"model\": \"opus\"\n}\n",
    );
    let run = env
        .provision(&main, &["init", "--agent", "claude-code"])
        .expect(0);
    assert!(
        run.stdout
            .contains("WorktreeCreate and WorktreeRemove hook(s) run `provision hook claude-code`"),
        "{}",
        run.stdout
    );
    let text = read(&settings);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["permissions"]["allow"][0], "Bash(npm test)");
    assert_eq!(json["model"], "opus");
    for event in ["WorktreeCreate", "WorktreeRemove"] {
        assert_eq!(
            json["hooks"][event][0]["hooks"][0]["command"],
            "provision hook claude-code"
        );
    }
    assert!(text.find("permissions").unwrap() < text.find("model").unwrap());

    let again = env
        .provision(&main, &["init", "--agent", "claude-code", "--json"])
        .expect(0)
        .json();
    assert_eq!(again["agent"]["added"], serde_json::json!([]));
    assert_eq!(read(&settings), text);

    write(&settings, "{ not json");
    let run = env
        .provision(&main, &["init", "--agent", "claude-code"])
        .expect(2);
    assert!(
        run.stderr.contains(".claude/settings.json: not valid JSON"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&settings), "{ not json");
}

/// An orchestrator reads one object from `new --json`: where, which branch,
/// which port, which database, which env values; nothing else on stdout.
#[test]
fn new_json_is_one_object_with_what_an_orchestrator_needs() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let run = env.provision(&main, &["new", "orch", "--json"]).expect(0);
    let json = run.json();
    let wt = env.path("worktree-orch");
    assert_eq!(json["path"], wt.to_str().unwrap());
    assert_eq!(json["branch"], "orch");
    assert_eq!(json["database"]["name"], "app_orch");
    assert_eq!(json["database"]["kind"], "sqlite");
    let port = json["port"].as_u64().unwrap();
    assert_eq!(json["env"]["DB_NAME"], "app_orch");
    assert_eq!(json["env"]["PORT"], port.to_string());
    assert!(read(wt.join(".env.local")).contains(&format!("PORT={port}")));
}

/// Claude Code reusing a name: the branch is checked out as it is, and its
/// base (which only says where a new branch starts) is not held against it.
#[test]
fn worktree_create_reuses_an_existing_branch_despite_a_base() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.git(&main, &["branch", "agent-d4"]);
    let event = serde_json::json!({
        "hook_event_name": "WorktreeCreate",
        "name": "agent-d4",
        "base_ref": "HEAD",
    });
    let run = hook(&env, &main, &event).expect(0);
    let path = env.path("worktree-agent-d4");
    assert_eq!(run.stdout.trim(), path.display().to_string());
    env.provision(&path, &["verify"]).expect(0);
}

#[test]
fn init_agent_never_writes_through_a_symlinked_settings_file() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let shared = env.path("dotfiles/settings.json");
    fs_err::create_dir_all(env.path("dotfiles")).unwrap();
    write(&shared, "{\"model\": \"opus\"}\n");
    fs_err::create_dir_all(main.join(".claude")).unwrap();
    fs_err::os::unix::fs::symlink(&shared, main.join(".claude/settings.json")).unwrap();
    let run = env
        .provision(&main, &["init", "--agent", "claude-code"])
        .expect(2);
    assert!(
        run.stderr.contains(".claude/settings.json is a symlink to")
            && run
                .stderr
                .contains("add the WorktreeCreate and WorktreeRemove hooks"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&shared), "{\"model\": \"opus\"}\n");
    assert!(main.join(".claude/settings.json").is_symlink());

    // A linked folder is outside the checkout all the same.
    fs_err::remove_dir_all(main.join(".claude")).unwrap();
    fs_err::os::unix::fs::symlink(env.path("dotfiles"), main.join(".claude")).unwrap();
    let run = env
        .provision(&main, &["init", "--agent", "claude-code"])
        .expect(2);
    assert!(
        run.stderr.contains(".claude is a symlink to"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&shared), "{\"model\": \"opus\"}\n");
}
