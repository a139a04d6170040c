//! Which processes provision stops. Nothing is left running: `remove` and
//! `gc` stop the sandbox's services and every other process working in its
//! worktree (a process started by hand included), name them, and
//! `--dry-run` lists them. Nothing else is touched: not another user's
//! process, not one a forged service record names.

use std::path::Path;
use std::process::{Child, Command};

use serde_json::Value;

use crate::services::{Fixture, free, running, wait_until};
use crate::support::{read, write};

/// A process started by hand in the worktree, as a dev server left behind.
fn stray(dir: &Path) -> Child {
    Command::new("sleep")
        .arg("1000")
        .current_dir(dir)
        .spawn()
        .unwrap()
}

fn signal_of(child: &mut Child) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&child.wait().unwrap())
}

#[test]
fn remove_stops_the_services_and_a_process_started_by_hand() {
    let fx = Fixture::new(32300);
    let port = fx.port();
    let up = fx.provision(&["up", "web", "--json"]).expect(0).json();
    let web = up["services"][0]["pid"].as_i64().unwrap();
    fx.wait_serving();
    let mut sleeper = stray(&fx.wt.join("src"));
    let stray_pid = i64::from(sleeper.id());

    let dry = fx
        .env
        .provision(&fx.main, &["remove", "feature", "--dry-run", "--json"])
        .expect(0)
        .json();
    let would: Vec<i64> = dry["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_i64().unwrap())
        .collect();
    assert!(would.contains(&web) && would.contains(&stray_pid), "{dry}");
    let text = fx
        .env
        .provision(&fx.main, &["remove", "feature", "--dry-run"])
        .expect(0)
        .stdout;
    let line = format!(
        "would stop a process working in {}: pid {stray_pid} (sleep 1000)",
        fx.wt.join("src").display()
    );
    assert!(
        text.contains(&line) && text.contains("would stop service web: pid"),
        "{text}"
    );
    assert!(running(web) && sleeper.try_wait().unwrap().is_none() && fx.wt.is_dir());

    let run = fx
        .env
        .provision(&fx.main, &["remove", "feature", "--force"])
        .expect(0);
    assert!(
        run.stdout.contains(&line.replace("would stop", "stopped")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("stopped service web: pid"),
        "{}",
        run.stdout
    );
    assert_eq!(signal_of(&mut sleeper), Some(15));
    assert!(!running(web));
    wait_until("the port is free", || free(port));
    assert!(
        !fx.main
            .join(".git/provision/services/worktree-feature")
            .exists()
    );
    assert!(!fx.wt.exists());
}

#[test]
fn gc_stops_what_still_runs_in_a_deleted_worktree() {
    let fx = Fixture::new(32350);
    let up = fx
        .provision(&["up", "web", "stubborn", "--json"])
        .expect(0)
        .json();
    let pids: Vec<i64> = up["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_i64().unwrap())
        .collect();
    wait_until("stubborn is ready", || {
        fx.provision(&["logs", "stubborn"]).stdout.contains("ready")
    });
    let port = fx.port();
    fx.wait_serving();
    let mut sleeper = stray(&fx.wt);
    // The folder deleted by hand: its processes keep running, in a deleted folder.
    fs_err::remove_dir_all(&fx.wt).unwrap();
    // Past git's expiry for entries whose folder is gone.
    fx.env
        .git(&fx.main, &["config", "gc.worktreePruneExpire", "now"]);

    let dry = fx
        .env
        .provision(&fx.main, &["gc", "--dry-run"])
        .expect(0)
        .stdout;
    let line = format!(
        "would stop a process working in {} (deleted): pid {} (sleep 1000)",
        fx.wt.display(),
        sleeper.id()
    );
    assert!(dry.contains(&line), "{dry}");
    assert!(
        dry.contains("would stop service web: pid")
            && dry.contains("would stop service stubborn: pid"),
        "{dry}"
    );
    assert!(pids.iter().all(|p| running(*p)));

    let run = fx
        .env
        .provision(&fx.main, &["gc", "--json"])
        .expect(0)
        .json();
    let removed = &run["removed"][0];
    let stopped = removed["stopped"].as_array().unwrap();
    assert!(
        stopped
            .iter()
            .any(|s| s["how"] == "killed" && s["why"]["name"] == "stubborn"),
        "{run}"
    );
    assert!(
        stopped.iter().any(|s| s["pid"] == i64::from(sleeper.id())),
        "{run}"
    );
    assert_eq!(signal_of(&mut sleeper), Some(15));
    assert!(pids.iter().all(|p| !running(*p)));
    wait_until("the port is free", || free(port));
}

/// Even run as root, provision stops only its own user's processes: a
/// process of another user working in the worktree is left alone (and not
/// named, since provision does not look at it).
#[test]
fn another_users_process_in_the_worktree_is_left_alone() {
    if !fs_err::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    {
        eprintln!("skipped: starting a process as another user needs root");
        return;
    }
    let fx = Fixture::new(32450);
    // setpriv changes user and execs: the pid is the other user's sleep.
    let mut theirs = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sleep",
            "1000",
        ])
        .current_dir(&fx.wt)
        .spawn()
        .unwrap();
    let mut mine = stray(&fx.wt);
    let uid_of = |pid: u32| {
        let status = fs_err::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let line = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .map(str::to_string);
        line.and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
    };
    wait_until("the other user's sleep runs", || {
        uid_of(theirs.id()).as_deref() == Some("65534")
    });

    let run = fx
        .env
        .provision(&fx.main, &["remove", "feature", "--force", "--json"])
        .expect(0)
        .json();
    let stopped: Vec<i64> = run["stopped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(stopped, [i64::from(mine.id())], "{run}");
    assert_eq!(signal_of(&mut mine), Some(15));
    assert!(
        theirs.try_wait().unwrap().is_none(),
        "another user's process was stopped"
    );
    theirs.kill().unwrap();
    theirs.wait().unwrap();
}

/// Field 22 of `/proc/PID/stat`: when the process started.
fn start_time(pid: u32) -> u64 {
    let text = read(format!("/proc/{pid}/stat"));
    let fields: Vec<&str> = text[text.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[19].parse().unwrap()
}

/// Records are read back: one that names a process `up` did not start
/// (a recycled pid, the right start time even) gets nothing signalled, and
/// one that does not read is refused by `up` until `down` forgets it.
#[test]
fn a_record_naming_another_process_never_gets_it_signalled() {
    let fx = Fixture::new(32400);
    fx.provision(&["up", "short"]).expect(0);
    wait_until("short has exited", || {
        fx.service("short").is_some_and(|s| s["state"] == "exited")
    });
    let record_path = fx
        .main
        .join(".git/provision/services/worktree-feature/short.json");
    let mut record: Value = serde_json::from_str(&read(&record_path)).unwrap();
    // Someone else's process, not in the worktree, under the record's pid.
    let mut other = Command::new("sleep")
        .arg("1000")
        .current_dir(fx.env.dir.path())
        .spawn()
        .unwrap();
    record["pid"] = other.id().into();
    record["start"] = start_time(other.id()).into();
    write(&record_path, &record.to_string());
    let short = fx.service("short").unwrap();
    assert_eq!(short["state"], "exited", "{short}");
    let down = fx.provision(&["down", "short", "--json"]).expect(0).json();
    assert_eq!(
        down["services"][0]["stopped"],
        serde_json::json!([]),
        "{down}"
    );
    assert!(
        other.try_wait().unwrap().is_none(),
        "the other process was signalled"
    );
    other.kill().unwrap();
    other.wait().unwrap();

    fx.provision(&["up", "short"]).expect(0);
    write(&record_path, "{\"pid\": 1}");
    let run = fx.provision(&["up", "short"]).expect(2);
    assert!(
        run.stderr.starts_with(
            "error: cannot tell whether service `short` runs: its record cannot be read; `provision down short` forgets it (and signals nothing by it)\n\nCaused by:\n    service record "
        ),
        "{}",
        run.stderr
    );
    let text = fx.provision(&["down", "short"]).expect(0).stdout;
    assert!(text.contains("nothing was signalled by it"), "{text}");
    assert!(
        fx.provision(&["up", "short", "--json"]).expect(0).json()["services"][0]["started"] == true
    );
}
