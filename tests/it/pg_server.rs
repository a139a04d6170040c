//! One private PostgreSQL per test run, from the machine's own binaries:
//! `initdb` into a temp dir (trust auth), `pg_ctl start` on a free loopback
//! port with its socket in that dir. Tests share it and keep apart by
//! database name.
//!
//! Statics are never dropped, so the server cannot be stopped by a guard.
//! Instead a watchdog shell, in its own process group so a Ctrl-C aimed at
//! the tests does not reach it, polls the test process and, once it is gone
//! (passed, failed or killed), stops the server and deletes the temp dir.
//!
//! `initdb` and `postgres` refuse to run as root; as root (CI) they run as
//! the `postgres` user through `runuser`. A missing PostgreSQL is a failure,
//! never a skip.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::LazyLock;

/// The role `pg_hba.conf` asks a password of (it does not exist until a
/// test creates it).
pub const PASSWORD_USER: &str = "t_password_user";

pub struct PgServer {
    pub port: u16,
}

static SERVER: LazyLock<PgServer> = LazyLock::new(start);

pub fn server() -> &'static PgServer {
    &SERVER
}

impl PgServer {
    /// A URL for the maintenance database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn client(&self, dbname: &str) -> postgres::Client {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname(dbname)
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to test server, database {dbname}: {e}"))
    }
}

fn start() -> PgServer {
    let bin = bindir();
    let dir = tempfile::Builder::new()
        .prefix("provision-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let data = dir.join("data");
    let as_root = fs_err::metadata("/proc/self").expect("/proc/self").uid() == 0;
    // Until the watchdog owns the temp dir, a failure here deletes it.
    let run = |c: &mut Command| {
        if let Err(message) = try_run(c) {
            let _ = fs_err::remove_dir_all(&dir);
            panic!("{message}");
        }
    };
    if as_root {
        run(Command::new("chown").args(["-R", "postgres:"]).arg(&dir));
    }
    let cmd = |program: &str| {
        let program = bin.join(program);
        if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    run(cmd("initdb")
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data));
    // One role needs a password, for the password-file test; every other
    // connection is trusted.
    let hba = data.join("pg_hba.conf");
    let rules = fs_err::read_to_string(&hba).expect("read pg_hba.conf");
    let with_password = format!("host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n");
    fs_err::write(&hba, with_password + &rules).expect("write pg_hba.conf");
    let port = free_port();
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        dir.display()
    );
    run(cmd("pg_ctl")
        .args(["-w", "-t", "60", "-o", &options, "-l"])
        .arg(dir.join("server.log"))
        .arg("-D")
        .arg(&data)
        .arg("start")
        .process_group(0));

    let mut stop = format!(
        "{} -D {} -m immediate stop",
        bin.join("pg_ctl").display(),
        data.display()
    );
    if as_root {
        stop = format!("runuser -u postgres -- {stop}");
    }
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    // Never waited for: it outlives this process on purpose.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the test server's watchdog");
    PgServer { port }
}

/// Where `initdb` and `pg_ctl` are: on PATH, where `pg_config` says, or in
/// Debian's versioned folder.
fn bindir() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|d| d.join("initdb").is_file()) {
        return dir;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = fs_err::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|d| d.join("initdb").is_file())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb was not found (PATH, pg_config --bindir, /usr/lib/postgresql/*/bin): \
             install the `postgresql` package; the PostgreSQL tests never skip"
        )
    })
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

fn try_run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e} (`sh tests/run.sh` installs PostgreSQL)"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// A port on which nothing listens, for "the server is down".
pub fn dead_port() -> u16 {
    free_port()
}
