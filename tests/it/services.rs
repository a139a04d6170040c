//! `[[services]]`: `provision up` starts real processes in the sandbox,
//! `status` and `logs` show them, `down` stops them (SIGKILL after the grace
//! period for one that ignores SIGTERM). `processes.rs` has `remove` and
//! `gc` stopping them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Run, TestEnv, read, write};

/// Long enough for a loaded machine; every wait ends as soon as its
/// condition holds.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

const RECIPE: &str = r#"
[ports]
names = ["PORT", "API_PORT"]

[[services]]
name = "web"
run = "python3 -u -m http.server --bind 127.0.0.1 {port}"

[[services]]
name = "env"
run = 'printf "%s %s %s\n" "$DB_NAME" "$API_PORT" "$PROVISION_SERVICE" > env.out; exec sleep 1000'

[[services]]
name = "short"
run = "echo bye; exit 3"

[[services]]
name = "stubborn"
run = "trap '' TERM; echo ready; while :; do sleep 0.1; done"
grace = 1
"#;

/// Waits until `condition` holds; panics naming `what` after [`TIMEOUT`].
#[track_caller]
pub(crate) fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

pub(crate) fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// `/proc/PID/stat`'s state and process group, if the pid runs (a zombie
/// has ended).
pub(crate) fn proc_stat(pid: i64) -> Option<(char, i64)> {
    let text = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split(' ').collect();
    let state = fields[0].chars().next()?;
    (state != 'Z' && state != 'X').then(|| (state, fields[2].parse().unwrap()))
}

pub(crate) fn running(pid: i64) -> bool {
    proc_stat(pid).is_some()
}

/// A sandbox `feature` of the fixture app with [`RECIPE`]; on drop, every
/// process still working in the test's folder is killed, so that a failed
/// test leaves nothing behind.
pub(crate) struct Fixture {
    pub env: TestEnv,
    pub main: PathBuf,
    pub wt: PathBuf,
}

impl Fixture {
    /// Ports come from `first`..`first + 49`: tests run at once, and each
    /// has its own range, so no two tests' servers contend for a port.
    pub(crate) fn new(first: u16) -> Self {
        let env = TestEnv::new();
        let main = env.fixture_repo("app");
        let range = format!("[ports]\nrange = \"{first}-{}\"\n", first + 49);
        write(
            main.join("provision.toml"),
            &RECIPE.replacen("[ports]\n", &range, 1),
        );
        env.provision(&main, &["new", "feature"]).expect(0);
        let wt = fs_err::canonicalize(env.path("worktree-feature")).unwrap();
        Fixture { env, main, wt }
    }

    pub(crate) fn provision(&self, args: &[&str]) -> Run {
        self.env.provision(&self.wt, args)
    }

    pub(crate) fn port(&self) -> u16 {
        let lock: Value = serde_json::from_str(&read(self.wt.join("provision.lock"))).unwrap();
        lock["port"].as_u64().unwrap() as u16
    }

    /// Waits until service `web` serves on the sandbox's port, as its own
    /// log says (so it is not some other program on that port).
    pub(crate) fn wait_serving(&self) {
        let port = self.port();
        let serving = format!("Serving HTTP on 127.0.0.1 port {port}");
        wait_until("web serves", || {
            self.provision(&["logs", "web"]).stdout.contains(&serving) && listening(port)
        });
    }

    /// The `status --json` row of the sandbox.
    pub(crate) fn row(&self) -> Value {
        let status = self
            .env
            .provision(&self.main, &["status", "--json"])
            .expect(0)
            .json();
        let rows = status["sandboxes"].as_array().unwrap();
        rows.iter()
            .find(|r| r["name"] == "feature")
            .unwrap()
            .clone()
    }

    /// The status of service `name` in `status --json`, if it has one.
    pub(crate) fn service(&self, name: &str) -> Option<Value> {
        let row = self.row();
        let services = row["services"].as_array().unwrap();
        services.iter().find(|s| s["name"] == name).cloned()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let root = fs_err::canonicalize(self.env.dir.path()).unwrap();
        let me = std::process::id().to_string();
        for entry in fs_err::read_dir("/proc").unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let Ok(cwd) = fs_err::read_link(entry.path().join("cwd")) else {
                continue;
            };
            let cwd = cwd.to_string_lossy().replace(" (deleted)", "");
            if pid != me && Path::new(&cwd).starts_with(&root) {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
    }
}

#[test]
fn a_service_listens_on_its_port_up_status_logs_down() {
    let fx = Fixture::new(32100);
    let port = fx.port();
    let up = fx
        .provision(&["up", "web", "env", "--json"])
        .expect(0)
        .json();
    let started = &up["services"];
    assert_eq!(started[0]["name"], "web");
    assert_eq!(started[0]["started"], true, "{up}");
    let pid = started[0]["pid"].as_i64().unwrap();
    fx.wait_serving();
    // Its own process group, not provision's or the test's.
    let (_, group) = proc_stat(pid).unwrap();
    assert_eq!(group, pid);

    // The sandbox's env: its overrides, named ports and service name.
    let env_out = fx.wt.join("env.out");
    wait_until("env writes env.out", || {
        env_out.is_file() && read(&env_out).ends_with('\n')
    });
    let lock: Value = serde_json::from_str(&read(fx.wt.join("provision.lock"))).unwrap();
    let api = lock["ports"]["API_PORT"].as_u64().unwrap();
    assert_eq!(read(&env_out), format!("app_feature {api} env\n"));

    // Up twice starts nothing twice.
    let again = fx
        .provision(&["up", "web", "env", "--json"])
        .expect(0)
        .json();
    let web = &again["services"][0];
    assert_eq!(web["pid"].as_i64(), Some(pid));
    assert!(
        again["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["started"] == false),
        "{again}"
    );
    let text = fx.provision(&["up", "web"]).expect(0).stdout;
    assert!(
        text.starts_with(&format!("running web  pid {pid}")),
        "{text}"
    );

    let web = fx.service("web").unwrap();
    assert_eq!(
        (web["state"].clone(), web["pid"].as_i64()),
        ("running".into(), Some(pid))
    );
    let row = fx.row();
    assert_eq!(row["ports"]["API_PORT"].as_u64(), Some(api));
    let status = fx.env.provision(&fx.main, &["status"]).expect(0).stdout;
    assert!(status.contains("SERVICES"), "{status}");
    assert!(status.contains(" env, web "), "{status}");
    assert!(
        status.contains(&format!("└ ports API_PORT={api}, PORT={port}")),
        "{status}"
    );

    // The log has what the server printed, a request included.
    let serving = format!("Serving HTTP on 127.0.0.1 port {port}");
    wait_until("the log says it serves", || {
        fx.provision(&["logs", "web"]).stdout.contains(&serving)
    });
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /provision-was-here HTTP/1.0\r\n\r\n")
        .unwrap();
    stream.read_to_end(&mut Vec::new()).unwrap();
    wait_until("the log has the request", || {
        fx.provision(&["logs", "web"])
            .stdout
            .contains("GET /provision-was-here")
    });
    let json = fx.provision(&["logs", "web", "--json"]).expect(0).json();
    assert!(json["log"].as_str().unwrap().contains(&serving), "{json}");

    // `logs -f` follows while it runs and ends once it is stopped.
    let mut follow = fx
        .env
        .command(env!("CARGO_BIN_EXE_provision"), &fx.wt)
        .args(["logs", "web", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().contains(&serving));

    let down = fx.provision(&["down", "web", "--json"]).expect(0).json();
    let stopped = down["services"][0]["stopped"].as_array().unwrap();
    assert!(
        stopped
            .iter()
            .any(|s| s["pid"] == pid && s["how"] == "terminated"),
        "{down}"
    );
    wait_until("the port is free", || free(port));
    assert!(!running(pid));
    wait_until("logs -f ends", || follow.try_wait().unwrap().is_some());
    assert!(follow.wait().unwrap().success());
    assert!(fx.service("web").is_none());
    // The log stays after `down`.
    assert!(
        fx.provision(&["logs", "web"])
            .expect(0)
            .stdout
            .contains(&serving)
    );

    let text = fx.provision(&["down"]).expect(0).stdout;
    assert!(
        text.starts_with("env  stopped\n  stopped service env: pid"),
        "{text}"
    );
    assert_eq!(
        fx.provision(&["down"]).expect(0).stdout,
        "no services running here: nothing to stop\n"
    );
}

#[test]
fn a_service_that_exits_is_reported_with_its_status() {
    let fx = Fixture::new(32150);
    fx.provision(&["up", "short"]).expect(0);
    wait_until("short has exited", || {
        fx.service("short").is_some_and(|s| s["state"] == "exited")
    });
    let short = fx.service("short").unwrap();
    assert_eq!(short["status"], 3, "{short}");
    let status = fx.env.provision(&fx.main, &["status"]).expect(0).stdout;
    assert!(status.contains("short (exited 3)"), "{status}");
    assert_eq!(fx.provision(&["logs", "short"]).expect(0).stdout, "bye\n");

    // `up` starts an exited service again; `down` says how it had ended.
    let up = fx.provision(&["up", "short", "--json"]).expect(0).json();
    assert_eq!(up["services"][0]["started"], true);
    wait_until("short has exited again", || {
        fx.service("short").is_some_and(|s| s["status"] == 3)
    });
    let down = fx.provision(&["down", "short"]).expect(0).stdout;
    assert_eq!(down, "short  had exited with status 3\n");
    assert!(fx.service("short").is_none());
}

#[test]
fn a_service_that_ignores_sigterm_is_killed_after_its_grace_period() {
    let fx = Fixture::new(32200);
    let up = fx.provision(&["up", "stubborn", "--json"]).expect(0).json();
    let pid = up["services"][0]["pid"].as_i64().unwrap();
    wait_until("stubborn is ready", || {
        fx.provision(&["logs", "stubborn"]).stdout.contains("ready")
    });
    let down = fx
        .provision(&["down", "stubborn", "--json"])
        .expect(0)
        .json();
    let stopped = down["services"][0]["stopped"].as_array().unwrap().clone();
    let killed: Vec<&Value> = stopped.iter().filter(|s| s["how"] == "killed").collect();
    assert_eq!(killed.len(), 1, "{down}");
    assert!(
        killed[0]["command"]
            .as_str()
            .unwrap()
            .contains("trap '' TERM"),
        "{down}"
    );
    assert_eq!(
        killed[0]["why"],
        serde_json::json!({"kind": "service", "name": "stubborn"})
    );
    for s in &stopped {
        assert!(!running(s["pid"].as_i64().unwrap()), "{s}");
    }
    assert!(!running(pid));
    assert!(fx.service("stubborn").is_none());
}

#[test]
fn services_run_only_once_approved_and_name_what_they_are() {
    let fx = Fixture::new(32250);
    let untrusted = |args: &[&str]| {
        Run::from(
            fx.env
                .command(env!("CARGO_BIN_EXE_provision"), &fx.wt)
                .env_remove("PROVISION_TRUST")
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let run = untrusted(&["up", "short"]).expect(2);
    assert!(
        run.stderr.starts_with(
            "error: provision.toml:16: services.short `echo bye; exit 3` is not approved"
        ),
        "{}",
        run.stderr
    );
    assert!(fx.service("short").is_none());
    let list = untrusted(&["trust", "--list", "--json"]).expect(0).json();
    let whats: Vec<&str> = list["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    assert_eq!(
        whats,
        [
            "services.web",
            "services.env",
            "services.short",
            "services.stubborn",
            "env.vars (the commands' environment)"
        ]
    );
    untrusted(&["trust"]).expect(0);
    untrusted(&["up", "short"]).expect(0);

    let run = fx.provision(&["up", "nope"]).expect(2);
    assert_eq!(
        run.stderr,
        "error: no service `nope` in provision.toml; its services are web, env, short, stubborn\n"
    );
    let run = fx.provision(&["logs", "web"]).expect(2);
    assert_eq!(
        run.stderr,
        "error: no log of service `web` in this sandbox: `provision up web` starts it\n"
    );
    // A worktree without a sandbox has no env to give a service.
    let plain = fx.env.path("plain");
    fx.env.worktree_add(&fx.main, "plain", &plain);
    let run = fx.env.provision(&plain, &["up"]).expect(2);
    assert!(
        run.stderr.starts_with("error: no sandbox in"),
        "{}",
        run.stderr
    );
}
