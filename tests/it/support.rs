//! A hermetic environment for driving `provision` as a user would: a fresh
//! temp dir, a fake HOME, no global or system git config, a fixed identity.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/app");

pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

/// What a command printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit status is `code`.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        fs_err::create_dir_all(dir.path().join("home")).unwrap();
        TestEnv { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `program` in the hermetic environment, `$PROVISION` naming the binary.
    pub fn command(&self, program: &str, cwd: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd)
            .env("HOME", self.path("home"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env("NO_COLOR", "1")
            // The recipes the tests write are their own; trust.rs drops
            // this to test approval itself.
            .env("PROVISION_TRUST", "1")
            .env("PROVISION", env!("CARGO_BIN_EXE_provision"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("DATABASE_URL")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env_remove("PGUSER")
            .env_remove("PGPASSWORD")
            .env_remove("PGDATABASE")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        cmd
    }

    pub fn git(&self, cwd: &Path, args: &[&str]) -> String {
        let run = Run::from(
            self.command("git", cwd)
                .args(args)
                .output()
                .expect("git runs"),
        );
        assert_eq!(run.code, 0, "git {args:?} failed: {}", run.stderr);
        run.stdout
    }

    pub fn provision(&self, cwd: &Path, args: &[&str]) -> Run {
        self.provision_with(cwd, args, &[])
    }

    /// `provision` with extra environment variables.
    pub fn provision_with(&self, cwd: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
        Run::from(
            self.command(env!("CARGO_BIN_EXE_provision"), cwd)
                .args(args)
                .envs(vars.iter().copied())
                .output()
                .expect("provision runs"),
        )
    }

    /// `provision` started in the background, in a process group of its own
    /// so that [`kill_group`] takes down its children (a command kind's
    /// shell) with it, as killing an agent's session does.
    pub fn provision_spawn(&self, cwd: &Path, args: &[&str]) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        self.command(env!("CARGO_BIN_EXE_provision"), cwd)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("provision starts")
    }

    /// The fixture app as a fresh repository at `rel`: tracked code and
    /// migrations committed, `.env`, `.dev.vars`, `.npmrc` and
    /// `node_modules` present but untracked (the fixture's .gitignore).
    pub fn fixture_repo(&self, rel: &str) -> PathBuf {
        let root = self.path(rel);
        copy_dir(Path::new(FIXTURE), &root);
        self.git(&root, &["init", "-q", "-b", "main"]);
        self.git(&root, &["add", "-A"]);
        self.git(&root, &["commit", "-q", "-m", "fixture app"]);
        root
    }

    /// `git clone` of `origin` at `rel`, with the untracked config copied in.
    pub fn clone_of(&self, origin: &Path, rel: &str) -> PathBuf {
        let root = self.path(rel);
        self.git(
            self.dir.path(),
            &[
                "clone",
                "-q",
                origin.to_str().unwrap(),
                root.to_str().unwrap(),
            ],
        );
        for name in [".env", ".dev.vars", ".npmrc", "node_modules"] {
            let from = Path::new(FIXTURE).join(name);
            if from.is_dir() {
                copy_dir(&from, &root.join(name));
            } else {
                fs_err::copy(&from, root.join(name)).unwrap();
            }
        }
        root
    }

    /// A plain `git worktree add -b BRANCH PATH`, as a user makes one
    /// without provision.
    pub fn worktree_add(&self, main: &Path, branch: &str, path: &Path) {
        self.git(
            main,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                branch,
                path.to_str().unwrap(),
            ],
        );
    }

    /// An applied migration edited afterwards: verify names it, apply
    /// refuses it by name. Holds for every database kind.
    pub fn assert_edited_migration_is_caught(&self, worktree: &Path) {
        let file = worktree.join("migrations/0001_create_users.sql");
        write(
            &file,
            &format!("{}-- edited after it was applied\n", read(&file)),
        );
        let run = self.provision(worktree, &["verify"]).expect(1);
        assert!(
            run.stdout.contains("migration 0001_create_users.sql")
                && run.stdout.contains("edited after it was applied"),
            "{}",
            run.stdout
        );
        let run = self.provision(worktree, &["apply"]).expect(2);
        assert!(
            run.stderr.contains(
                "no longer matches this branch's migrations: 0001_create_users.sql was edited after it was applied"
            ) && run.stderr.contains("`provision db reset`"),
            "{}",
            run.stderr
        );
    }

    /// The fixture app whose `config` folder is linked whole into the
    /// sandbox `feature`, and whose `config/app.env` is itself a link to a
    /// secret outside the repository: (main, worktree, secret).
    pub fn linked_config_folder(&self) -> (PathBuf, PathBuf, PathBuf) {
        let main = self.fixture_repo("app");
        let secret = self.path("secrets/app.env");
        fs_err::create_dir_all(secret.parent().unwrap()).unwrap();
        write(&secret, "KEY=secret\n");
        fs_err::create_dir_all(main.join("config")).unwrap();
        fs_err::os::unix::fs::symlink(&secret, main.join("config/app.env")).unwrap();
        write(main.join(".worktreeinclude"), ".env\nconfig\n");
        self.provision(&main, &["new", "feature"]).expect(0);
        (main, self.path("worktree-feature"), secret)
    }

    pub fn commit_all(&self, root: &Path, message: &str) {
        self.git(root, &["add", "-A"]);
        self.git(root, &["commit", "-q", "-m", message]);
    }
}

/// `kill -9` to every process of `child`'s group, then reaps `child`.
pub fn kill_group(child: &mut std::process::Child) {
    let status = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -9 failed");
    child.wait().unwrap();
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn read(path: impl AsRef<Path>) -> String {
    fs_err::read_to_string(path.as_ref()).unwrap()
}

pub fn write(path: impl AsRef<Path>, text: &str) {
    fs_err::write(path.as_ref(), text).unwrap()
}

/// The sandbox's SQLite file, opened directly.
pub fn sqlite(main: &Path, db: &str) -> rusqlite::Connection {
    let path = main
        .join(".git/provision/sqlite")
        .join(format!("{db}.sqlite"));
    assert!(path.is_file(), "no database at {}", path.display());
    rusqlite::Connection::open(path).unwrap()
}
