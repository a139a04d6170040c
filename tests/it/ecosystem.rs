//! Fitting the way users already work: `env` for direnv and `nix develop`,
//! `exec`, `init` on wrangler and Node repositories, shell completions, and
//! the output conventions (`--quiet`, `--verbose`, colour).

use std::path::Path;

use crate::support::{Run, TestEnv, read, write};

/// A value no naive quoting survives (a `'` beside `$` the env file
/// refuses: see hostile.rs).
const AWKWARD: &str = "\"$HOME\" `id` \\n $(x)\nsecond line ";

fn sandbox_with_awkward_value(env: &TestEnv) -> std::path::PathBuf {
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[env.vars]\nDB_NAME = \"{db}\"\nPORT = \"{port}\"\nAWKWARD = \"\\\"$HOME\\\" `id` \\\\n $(x)\\nsecond line \"\n",
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    env.path("worktree-feature")
}

/// `program -c script`, with `provision` on the PATH as a user has it.
fn shell(env: &TestEnv, cwd: &Path, program: &str, script: &str) -> Run {
    let bin = Path::new(env!("CARGO_BIN_EXE_provision")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = Run::from(
        env.command(program, cwd)
            .args(["-c", script])
            .env("PATH", path)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {program}: {e} (`sh tests/run.sh` installs zsh and fish)")
            }),
    );
    run.expect(0)
}

#[test]
fn env_prints_what_the_env_file_holds_in_every_format() {
    let env = TestEnv::new();
    let wt = sandbox_with_awkward_value(&env);

    let dotenv = env.provision(&wt, &["env"]).expect(0).stdout;
    let file = read(wt.join(".env.local"));
    // AWKWARD's newline stays a newline inside its quotes.
    assert_eq!(dotenv.lines().count(), 4, "{dotenv}");
    for line in dotenv.lines() {
        assert!(file.lines().any(|l| l == line), "{line} not in\n{file}");
    }

    let json = env.provision(&wt, &["env", "--json"]).expect(0).json();
    assert_eq!(json["DB_NAME"], "app_feature");
    assert_eq!(json["AWKWARD"], AWKWARD);
    let port = json["PORT"].as_str().unwrap().to_string();

    // Each shell evaluates its own form back to the exact values.
    let expected = format!("{AWKWARD}|app_feature|{port}");
    let posix = r#"eval "$("$PROVISION" env --shell SHELL)" && printf '%s|%s|%s' "$AWKWARD" "$DB_NAME" "$PORT""#;
    for sh in ["bash", "zsh"] {
        let run = shell(&env, &wt, sh, &posix.replace("SHELL", sh));
        assert_eq!(run.stdout, expected, "{sh}");
    }
    let run = shell(
        &env,
        &wt,
        "fish",
        r#"$PROVISION env --shell fish | source; and printf '%s|%s|%s' "$AWKWARD" "$DB_NAME" "$PORT""#,
    );
    assert_eq!(run.stdout, expected, "fish");
}

#[test]
fn exec_runs_with_the_overrides_and_passes_the_exit_status_through() {
    let env = TestEnv::new();
    let wt = sandbox_with_awkward_value(&env);

    let run = env
        .provision(
            &wt,
            &[
                "exec",
                "--",
                "sh",
                "-c",
                r#"printf '%s' "$AWKWARD"; exit 7"#,
            ],
        )
        .expect(7);
    assert_eq!(run.stdout, AWKWARD);
    // Without `--`, the command's own flags stay its own.
    let run = env
        .provision(&wt, &["exec", "sh", "-c", "echo $DB_NAME"])
        .expect(0);
    assert_eq!(run.stdout, "app_feature\n");

    // A signal death reaches the caller as one: 128 + SIGTERM in a shell.
    let run = shell(
        &env,
        &wt,
        "bash",
        r#""$PROVISION" exec -- sh -c 'kill -TERM $$'; echo "status $?""#,
    );
    assert_eq!(run.stdout, "status 143\n");

    let run = env
        .provision(&wt, &["exec", "--", "no-such-program-here"])
        .expect(127);
    assert!(
        run.stderr
            .starts_with("error: cannot run `no-such-program-here`"),
        "{}",
        run.stderr
    );
}

#[test]
fn env_and_exec_name_a_worktree_without_a_sandbox() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let plain = env.path("plain");
    env.worktree_add(&main, "plain", &plain);
    for dir in [&main, &plain] {
        for args in [&["env"][..], &["exec", "--", "true"]] {
            let run = env.provision(dir, args).expect(2);
            assert_eq!(
                run.stderr,
                format!(
                    "error: no sandbox in {} yet (no provision.lock): run `provision apply` there first\n",
                    dir.display()
                )
            );
        }
    }
    // Once the main checkout has its sandbox, it has its overrides too.
    env.provision(&main, &["apply"]).expect(0);
    let run = env.provision(&main, &["env"]).expect(0);
    assert!(run.stdout.contains("DB_NAME=app_main\n"), "{}", run.stdout);
}

/// The lock's hash catches mistakes, not tampering, and `env --shell` runs
/// unattended (direnv, a shellHook): a key that is no variable name is
/// refused, never printed as shell code.
#[test]
fn env_refuses_a_lock_key_that_is_no_variable_name() {
    let env = TestEnv::new();
    let wt = sandbox_with_awkward_value(&env);
    let mut lock: serde_json::Value =
        serde_json::from_str(&read(wt.join("provision.lock"))).unwrap();
    lock["env"]["overrides"]["X=1; touch pwned; Y"] = "2".into();
    let map = lock.as_object_mut().unwrap();
    map.remove("hash");
    let hash = blake3::hash(&serde_json::to_vec(&map).unwrap()).to_hex();
    map.insert("hash".into(), format!("blake3:{hash}").into());
    write(
        wt.join("provision.lock"),
        &serde_json::to_string(&lock).unwrap(),
    );
    let script = r#"eval "$("$PROVISION" env --shell bash)""#;
    let run = Run::from(
        env.command("bash", &wt)
            .args(["-c", script])
            .output()
            .unwrap(),
    );
    assert!(
        run.stderr.contains(
            "provision.lock: override `X=1; touch pwned; Y` is not an environment variable name"
        ),
        "{}",
        run.stderr
    );
    assert!(!wt.join("pwned").exists());
    for args in [&["env"][..], &["exec", "--", "true"]] {
        env.provision(&wt, args).expect(2);
    }
}

/// A repository with `files` committed and `untracked` ignored but present.
fn repo_with(
    env: &TestEnv,
    files: &[(&str, &str)],
    untracked: &[(&str, &str)],
) -> std::path::PathBuf {
    let root = env.path("app");
    let ignore: String = untracked
        .iter()
        .map(|(path, _)| format!("{}\n", path.split('/').next().unwrap()))
        .collect();
    for (path, text) in files.iter().chain(untracked) {
        let path = root.join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        write(&path, text);
    }
    write(root.join(".gitignore"), &ignore);
    env.git(&root, &["init", "-q", "-b", "main"]);
    env.commit_all(&root, "app");
    root
}

#[test]
fn init_fits_a_wrangler_repository_and_new_works_without_wrangler() {
    let env = TestEnv::new();
    let main = repo_with(
        &env,
        &[
            (
                "wrangler.toml",
                "name = \"app\"\n[[d1_databases]]\nbinding = \"DB\"\n",
            ),
            (
                "migrations/0001_init.sql",
                "CREATE TABLE notes (id INTEGER);\n",
            ),
            ("src/index.js", "export default {};\n"),
        ],
        &[(".dev.vars", "API_KEY=secret\n"), (".wrangler/state/x", "")],
    );
    let run = env.provision(&main, &["init"]).expect(0);
    assert!(run.stdout.contains("found wrangler.toml"), "{}", run.stdout);
    let recipe = read(main.join("provision.toml"));
    assert!(recipe.contains("file = \".dev.vars\""), "{recipe}");
    assert!(recipe.contains("# kind = \"command\""), "{recipe}");
    assert_eq!(
        read(main.join(".worktreeinclude"))
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        [".dev.vars", ".wrangler"]
    );

    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let vars = read(wt.join(".dev.vars"));
    assert!(
        vars.contains("API_KEY=secret\n") && vars.contains("DB_NAME=app_feature\n"),
        "{vars}"
    );
    assert!(
        !fs_err::symlink_metadata(wt.join(".dev.vars"))
            .unwrap()
            .is_symlink()
    );
    assert!(
        fs_err::symlink_metadata(wt.join(".wrangler"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(read(main.join(".dev.vars")), "API_KEY=secret\n");
    env.provision(&wt, &["verify"]).expect(0);
    // The main checkout's .dev.vars is the shared one: no overrides there.
    env.provision(&main, &["apply"]).expect(0);
    let run = env.provision(&main, &["env"]).expect(0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("the main checkout's env file is the one every worktree shares"),
        "{}",
        run.stderr
    );

    // A second init overwrites nothing and says so.
    let before = read(main.join("provision.toml"));
    let run = env.provision(&main, &["init"]).expect(0);
    assert!(
        run.stdout
            .contains("skipped provision.toml (it exists; not overwritten)")
            && run
                .stdout
                .contains("skipped .worktreeinclude (it exists; not overwritten)"),
        "{}",
        run.stdout
    );
    assert_eq!(read(main.join("provision.toml")), before);
}

/// An init cut short (here by a file size limit, as a full disk would) leaves
/// no half-written recipe that the next init would keep as the user's.
#[test]
fn an_init_cut_short_leaves_no_half_written_recipe() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let cut = env
        .command("sh", &main)
        .args(["-c", r#"ulimit -f 1 && exec "$PROVISION" init"#])
        .output()
        .unwrap();
    assert!(!cut.status.success(), "the limit cuts init short");
    let run = env.provision(&main, &["init"]).expect(0);
    assert!(
        run.stdout.contains("wrote   provision.toml"),
        "{}",
        run.stdout
    );
    env.provision(&main, &["new", "feature"]).expect(0);
}

#[test]
fn init_fits_a_node_repository_and_new_works() {
    let env = TestEnv::new();
    let main = repo_with(
        &env,
        &[
            ("package.json", "{\"name\": \"app\"}\n"),
            ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
            (
                "db/migrate/0001_users.sql",
                "CREATE TABLE users (id INTEGER);\n",
            ),
            (
                "prisma/migrations/20240101_init/migration.sql",
                "SELECT 1;\n",
            ),
        ],
        &[
            (".env", "SECRET=1\n"),
            (".npmrc", "//registry.npmjs.org/:_authToken=x\n"),
            ("node_modules/left-pad/index.js", ""),
        ],
    );
    // An existing file of the user's is kept as it is.
    write(main.join(".worktreeinclude"), ".env\n");
    let run = env.provision(&main, &["init"]).expect(0);
    assert!(
        run.stdout.contains("wrote   provision.toml")
            && run.stdout.contains("skipped .worktreeinclude"),
        "{}",
        run.stdout
    );
    assert_eq!(read(main.join(".worktreeinclude")), ".env\n");
    let recipe = read(main.join("provision.toml"));
    for line in [
        "migrations = \"db/migrate\"   # 1 migration(s), found as Rails, dbmate keeps them\nformat = \"flat\"",
        "# [[setup]]\n# run = \"pnpm install --frozen-lockfile\"",
        "# prisma/migrations/ (Prisma) holds migrations too; provision applies one folder",
    ] {
        assert!(recipe.contains(line), "{line} not in\n{recipe}");
    }

    // The include list init would write, from scratch this time.
    fs_err::remove_file(main.join(".worktreeinclude")).unwrap();
    env.provision(&main, &["init"]).expect(0);
    let include = read(main.join(".worktreeinclude"));
    assert_eq!(
        include
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        [".env", ".npmrc", "node_modules"]
    );

    let run = env
        .provision(&main, &["new", "feature", "--json"])
        .expect(0);
    assert_eq!(
        run.json()["actions"].as_array().unwrap().len(),
        7,
        "{}",
        run.stdout
    );
    let wt = env.path("worktree-feature");
    assert!(
        fs_err::symlink_metadata(wt.join("node_modules"))
            .unwrap()
            .is_symlink()
    );
    assert!(read(wt.join(".env.local")).contains("DB_NAME=app_feature\n"));
    env.provision(&wt, &["verify"]).expect(0);
}

#[test]
fn completions_load_in_each_shell() {
    let env = TestEnv::new();
    let dir = env.dir.path();
    let run = shell(
        &env,
        dir,
        "bash",
        r#"source <("$PROVISION" completions bash) && complete -p provision"#,
    );
    assert!(run.stdout.contains("provision"), "{}", run.stdout);
    let run = shell(
        &env,
        dir,
        "fish",
        r#"$PROVISION completions fish | source; and complete -C 'provision e'"#,
    );
    assert!(
        run.stdout.contains("env\t") && run.stdout.contains("exec\t"),
        "{}",
        run.stdout
    );
    shell(
        &env,
        dir,
        "zsh",
        r#"autoload -Uz compinit && compinit -u -d "$HOME/zcompdump" && source <("$PROVISION" completions zsh) && (( $+functions[_provision] ))"#,
    );
}

#[test]
fn quiet_keeps_progress_back_and_verbose_shows_commands() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    // The overrides go into the .dev.vars the fixture links, which sets
    // DB_NAME: otherwise `new` rightly warns, and warnings pass --quiet.
    write(main.join("provision.toml"), "[env]\nfile = \".dev.vars\"\n");
    let run = env.provision(&main, &["--quiet", "new", "one"]).expect(0);
    assert_eq!(run.stderr, "", "{}", run.stderr);
    assert!(
        run.stdout.contains("sandbox one is ready"),
        "{}",
        run.stdout
    );

    let run = env.provision(&main, &["new", "two"]).expect(0);
    assert!(
        run.stderr.contains("• create    database app_two"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("$ git"), "{}", run.stderr);

    let run = env
        .provision(&main, &["--verbose", "new", "three"])
        .expect(0);
    // git's parallel checkout is asked for only on an idle machine.
    let add = " worktree add --lock --reason 'provision new: being created' -b three ";
    assert!(
        run.stderr.contains(&format!("$ git{add}"))
            || run
                .stderr
                .contains(&format!("$ git -c checkout.workers=0{add}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("• create    database app_three"),
        "{}",
        run.stderr
    );

    env.provision(&main, &["-q", "-v", "status"]).expect(2);
}

#[test]
fn quiet_holds_back_the_command_kinds_output() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        r#"[env]
file = ".dev.vars"

[database]
kind = "command"
exists = 'test -f "{main}/db-{db}"'
create = 'echo made-it; touch "{main}/db-{db}"'
migrate = 'echo applied "{migration}"'
drop = 'rm "{main}/db-{db}"'
"#,
    );
    let run = env.provision(&main, &["-q", "new", "one"]).expect(0);
    assert_eq!(run.stderr, "");
    let run = env.provision(&main, &["new", "two"]).expect(0);
    assert!(run.stderr.contains("made-it\n"), "{}", run.stderr);
    assert!(!run.stderr.contains("$ sh -c"), "{}", run.stderr);
    let run = env.provision(&main, &["-v", "new", "three"]).expect(0);
    assert!(
        run.stderr
            .contains("$ sh -c 'echo made-it; touch \"${PROVISION_MAIN}/db-${PROVISION_DB}\"'"),
        "{}",
        run.stderr
    );
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let env = TestEnv::new();
    let dir = env.dir.path();
    let escape = "\u{1b}[";
    // Piped: plain, even without NO_COLOR.
    let run = Run::from(
        env.command(env!("CARGO_BIN_EXE_provision"), dir)
            .arg("verify")
            .env_remove("NO_COLOR")
            .output()
            .unwrap(),
    );
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    // On a terminal (`script` gives the command a pty): coloured, unless NO_COLOR.
    for (no_color, coloured) in [(None, true), (Some("1"), false)] {
        let mut cmd = env.command("script", dir);
        cmd.args(["-qec", "\"$PROVISION\" verify", "/dev/null"])
            .env("TERM", "xterm")
            .env_remove("NO_COLOR");
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        let run = Run::from(cmd.output().unwrap());
        assert!(run.stdout.contains("error:"), "{}", run.stdout);
        assert_eq!(run.stdout.contains(escape), coloured, "{:?}", run.stdout);
    }
}

/// The template flake's shellHook, as Nix evaluates it (against stand-ins
/// for nixpkgs: see nix/check.nix), run by bash as `nix develop` would.
#[test]
fn the_template_dev_shell_loads_the_worktrees_overrides() {
    let env = TestEnv::new();
    let check = concat!(env!("CARGO_MANIFEST_DIR"), "/nix/check.nix");
    let run = Run::from(
        env.command("nix-instantiate", env.dir.path())
            .args(["--eval", "--json", "-A", "shellHook", check])
            .env("NIX_CONFIG", "build-users-group =")
            .output()
            .expect("nix-instantiate runs (`sh tests/run.sh` installs nix-bin)"),
    )
    .expect(0);
    let hook: String = serde_json::from_str(&run.stdout).unwrap();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let script = format!("{hook}\nprintf '%s' \"${{DB_NAME-unset}}\"");
    let run = shell(&env, &env.path("worktree-feature"), "bash", &script);
    assert_eq!(run.stdout, "app_feature");
    // Without a sandbox the shell still starts, and says why it has no values.
    let run = shell(&env, &main, "bash", &script);
    assert_eq!(run.stdout, "unset");
    assert!(
        run.stderr.contains("error: no sandbox in"),
        "{}",
        run.stderr
    );
}

/// The overrides must land in the file the app loads: plain dotenv reads
/// only `.env`, Vite reads `.env.local` over it. init picks by dependency.
#[test]
fn init_picks_the_env_file_the_app_loads() {
    let env = TestEnv::new();
    let main = repo_with(
        &env,
        &[(
            "package.json",
            "{\"name\": \"api\", \"dependencies\": {\"dotenv\": \"^16.0.0\"}}\n",
        )],
        &[
            (".env", "SECRET=1\nDB_NAME=main_db\n"),
            ("node_modules/dotenv/main.js", ""),
        ],
    );
    env.provision(&main, &["init"]).expect(0);
    let recipe = read(main.join("provision.toml"));
    assert!(
        recipe.contains("# dotenv loads .env, so the overrides go there"),
        "{recipe}"
    );
    assert!(recipe.contains("file = \".env\"\n"), "{recipe}");
    env.commit_all(&main, "recipe");
    let run = env.provision(&main, &["new", "feat"]).expect(0);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let wt = env.path("worktree-feat");
    let out = env
        .command("sh", &wt)
        .args([
            "-c",
            "set -a; . ./.env; printf '%s %s' \"$SECRET\" \"$DB_NAME\"",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 app_feat");
    assert_eq!(read(main.join(".env")), "SECRET=1\nDB_NAME=main_db\n");

    let env = TestEnv::new();
    let main = repo_with(
        &env,
        &[(
            "package.json",
            "{\"name\": \"web\", \"devDependencies\": {\"vite\": \"^6.0.0\"}}\n",
        )],
        &[(".env", "SECRET=1\n")],
    );
    env.provision(&main, &["init"]).expect(0);
    let recipe = read(main.join("provision.toml"));
    assert!(
        recipe.contains("# vite loads .env.local, so the overrides go there."),
        "{recipe}"
    );
    assert!(recipe.contains("file = \".env.local\"\n"), "{recipe}");
}
