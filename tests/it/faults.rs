//! Disk faults and kills inside git's own steps, injected with `strace -f`
//! (provision and the git it runs alike) at the K-th `unlink`: a `new`
//! whose `git worktree add` (or its take-back) fails part way, a `remove`
//! whose `git worktree remove` deletes some files and then fails or is
//! killed. The documented recovery (`remove NAME`, `gc`) must then leave
//! nothing of the sandbox, and never delete what the user wrote.

use std::path::{Path, PathBuf};

use crate::support::{Run, TestEnv, write};

const UNLINKS: &str = "unlink,unlinkat,rmdir";

/// `provision ARGS` under strace, the K-th call of `syscalls` in each
/// process failing with EIO (`how = "error=EIO"`) or killing the process
/// making it (`how = "signal=KILL"`).
fn faulted(env: &TestEnv, cwd: &Path, syscalls: &str, how: &str, k: u32, args: &[&str]) -> Run {
    let output = env
        .command("strace", cwd)
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscalls}"))
        .arg("-e")
        .arg(format!("inject={syscalls}:{how}:when={k}"))
        .arg(env!("CARGO_BIN_EXE_provision"))
        .args(args)
        .output()
        .expect("strace runs (it is part of the test environment)");
    Run::from(output)
}

fn worktree(main: &Path, name: &str) -> PathBuf {
    main.parent().unwrap().join(format!("worktree-{name}"))
}

/// What is left of sandbox `name`, one word each; empty when nothing is.
fn left(env: &TestEnv, main: &Path, name: &str) -> Vec<&'static str> {
    let git = main.join(".git");
    let mut out = Vec::new();
    if fs_err::symlink_metadata(worktree(main, name)).is_ok() {
        out.push("folder");
    }
    if env
        .git(main, &["worktree", "list", "--porcelain"])
        .contains(&format!("worktree-{name}\n"))
    {
        out.push("git entry");
    }
    if git
        .join("worktrees")
        .join(format!("worktree-{name}"))
        .exists()
    {
        out.push("admin dir");
    }
    if !env.git(main, &["branch", "--list", name]).is_empty() {
        out.push("branch");
    }
    let records = fs_err::read_dir(git.join("provision/sandboxes"))
        .map(|d| d.count())
        .unwrap_or(0);
    if records > 0 {
        out.push("record");
    }
    let pending = fs_err::read_dir(git.join("provision/pending"))
        .map(|d| d.count())
        .unwrap_or(0);
    if pending > 0 {
        out.push("pending entry");
    }
    out
}

/// `provision ARGS` as a person runs it: when git stops on a lock file it
/// left behind (a git run killed, or whose unlink failed, while it held
/// it), git says to delete it once no git process runs; the person does,
/// and runs the step again.
fn as_a_person(env: &TestEnv, main: &Path, args: &[&str]) -> Run {
    let run = env.provision(main, args);
    let said = format!("{}{}", run.stdout, run.stderr);
    let Some(lock) = said
        .split("Unable to create '")
        .nth(1)
        .and_then(|rest| rest.split_once("': File exists"))
        .map(|(path, _)| PathBuf::from(path))
    else {
        return run;
    };
    fs_err::remove_file(lock).unwrap();
    env.provision(main, args)
}

/// The documented recovery after a failed `new` or `remove`: `remove
/// NAME` (which may find nothing left to remove), then `gc`.
fn recover(env: &TestEnv, main: &Path, name: &str) -> String {
    let remove = as_a_person(env, main, &["remove", name]);
    let gc = as_a_person(env, main, &["gc"]).expect(0);
    format!(
        "remove (exit {}): {}{}\ngc: {}",
        remove.code, remove.stdout, remove.stderr, gc.stdout
    )
}

#[test]
fn a_new_whose_git_step_fails_part_way_is_finished_by_remove() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let mut failed = 0;
    for k in 1..=12 {
        let run = faulted(&env, &main, UNLINKS, "error=EIO", k, &["new", "sx"]);
        if run.code == 0 {
            as_a_person(&env, &main, &["remove", "sx"]).expect(0);
            continue;
        }
        failed += 1;
        let recovery = recover(&env, &main, "sx");
        assert_eq!(
            left(&env, &main, "sx"),
            Vec::<&str>::new(),
            "unlink {k} failed in `new`: {}\nthen {recovery}",
            run.stderr
        );
    }
    assert!(failed > 0, "no fault made `new` fail");
}

#[test]
fn a_new_killed_inside_git_is_finished_by_remove() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for k in 1..=6 {
        let run = faulted(&env, &main, UNLINKS, "signal=KILL", k, &["new", "sx"]);
        let recovery = recover(&env, &main, "sx");
        assert_eq!(
            left(&env, &main, "sx"),
            Vec::<&str>::new(),
            "unlink {k} killed in `new` (exit {}): {}\nthen {recovery}",
            run.code,
            run.stderr
        );
    }
}

/// `git worktree remove` deletes files one by one: a fault at the K-th
/// leaves a half-deleted folder (git's entry with it, or, after EIO, git
/// has deleted its entry already).
#[test]
fn a_remove_cut_short_inside_git_is_finished_by_the_next_remove() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for how in ["error=EIO", "signal=KILL"] {
        for k in [3, 6, 9] {
            env.provision(&main, &["new", "sr"]).expect(0);
            let run = faulted(&env, &main, UNLINKS, how, k, &["remove", "sr"]);
            assert_ne!(run.code, 0, "unlink {k} ({how}) did not cut `remove` short");
            assert!(worktree(&main, "sr").exists(), "unlink {k} ({how})");
            env.provision(&main, &["remove", "sr"]).expect(0);
            assert_eq!(
                left(&env, &main, "sr"),
                Vec::<&str>::new(),
                "unlink {k} ({how}) in `remove`"
            );
        }
    }
}

#[test]
fn gc_finishes_a_remove_cut_short_inside_git() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for how in ["error=EIO", "signal=KILL"] {
        env.provision(&main, &["new", "sr"]).expect(0);
        let run = faulted(&env, &main, UNLINKS, how, 6, &["remove", "sr"]);
        assert_ne!(run.code, 0, "{how}");
        env.provision(&main, &["gc"]).expect(0);
        assert_eq!(left(&env, &main, "sr"), Vec::<&str>::new(), "{how}");
    }
}

/// What the user writes into a half-deleted worktree is theirs: the next
/// `remove` keeps the folder and says why, whether git still lists it
/// (killed) or not (its removal failed after it dropped its entry).
#[test]
fn work_written_into_a_half_removed_worktree_is_kept() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for how in ["error=EIO", "signal=KILL"] {
        env.provision(&main, &["new", "sr"]).expect(0);
        faulted(&env, &main, UNLINKS, how, 6, &["remove", "sr"]);
        let notes = worktree(&main, "sr").join("notes.txt");
        write(&notes, "the user's notes\n");
        let run = env.provision(&main, &["remove", "sr"]);
        assert_ne!(run.code, 0, "{how}: {}", run.stdout);
        // gc keeps it too (and says so: exit 2 when it was taking it down).
        env.provision(&main, &["gc"]);
        assert_eq!(
            crate::support::read(&notes),
            "the user's notes\n",
            "{how}: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            (run.stdout + &run.stderr).contains("notes.txt"),
            "{how}: remove does not say what it kept"
        );
        fs_err::remove_file(&notes).unwrap();
        env.provision(&main, &["remove", "sr"]).expect(0);
        assert_eq!(left(&env, &main, "sr"), Vec::<&str>::new(), "{how}");
    }
}

/// A failed `new`'s leftover is finished by the next `new` of that name,
/// which then succeeds.
#[test]
fn the_next_new_of_a_name_finishes_what_a_failed_one_left() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let run = faulted(&env, &main, UNLINKS, "error=EIO", 2, &["new", "sx"]);
    assert_ne!(run.code, 0);
    env.provision(&main, &["new", "sx"]).expect(0);
    env.provision(&worktree(&main, "sx"), &["verify"]).expect(0);
    assert_eq!(
        env.git(&worktree(&main, "sx"), &["status", "--porcelain"]),
        ""
    );
}
