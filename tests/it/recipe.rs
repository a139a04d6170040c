//! Reading the recipe: `.worktreeinclude` patterns and `provision.toml`
//! errors that name the file, line and value, with nothing created.

use crate::support::{TestEnv, read, write};

#[test]
fn unknown_key_is_one_line_naming_file_and_line() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[database]\nkind = \"sqlite\"\nmigration = \"db\"\n",
    );
    let run = env.provision(&main, &["new", "x"]).expect(2);
    let first = run.stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: provision.toml:3: unknown field `migration`"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-x").exists());
    assert_eq!(env.git(&main, &["branch", "--list", "x"]), "");
}

#[test]
fn unknown_template_is_named_with_its_line() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[env.vars]\nDB_NAME = \"{db}\"\nAPI = \"http://localhost:{prot}\"\n",
    );
    let run = env.provision(&main, &["new", "x"]).expect(2);
    assert!(
        run.stderr
            .starts_with("error: provision.toml:3: env.vars.API: unknown template `{prot}`"),
        "{}",
        run.stderr
    );
}

/// A name whose `{clone}` tags alone cannot fit a database name is
/// refused where it is written, not by the server.
#[test]
fn too_many_clone_tags_are_refused_at_load() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let name = |n: usize| format!("[database]\nname = \"{}\"\n", "{clone}".repeat(n));
    write(main.join("provision.toml"), &name(7));
    let run = env.provision(&main, &["new", "x"]).expect(2);
    assert!(
        run.stderr.starts_with(
            "error: provision.toml:2: database.name: `{clone}` 7 times does not fit a database name (63 bytes at most): use it at most 6 times"
        ),
        "{}",
        run.stderr
    );
    write(main.join("provision.toml"), &name(6));
    env.provision(&main, &["new", "x"]).expect(0);
}

#[test]
fn entries_leaving_the_repository_are_refused() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join(".worktreeinclude"), ".env\n../../etc/passwd\n");
    let run = env.provision(&main, &["new", "x"]).expect(2);
    assert!(
        run.stderr
            .starts_with("error: .worktreeinclude:2: `../../etc/passwd` leaves the repository"),
        "{}",
        run.stderr
    );
    write(main.join(".worktreeinclude"), "/etc/passwd\n");
    let run = env.provision(&main, &["new", "x"]).expect(2);
    assert!(
        run.stderr
            .contains("`/etc/passwd` is an absolute path outside the repository"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-x").exists());
}

#[test]
fn patterns_match_untracked_files_only() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    fs_err::create_dir_all(main.join("config/keys/nested")).unwrap();
    write(main.join("config/keys/nested/signing.key"), "k1\n");
    write(main.join("config/app.key"), "k2\n");
    write(main.join("settings.local"), "local\n");
    write(
        main.join(".gitignore"),
        &format!("{}config/\n*.local\n", read(main.join(".gitignore"))),
    );
    write(
        main.join(".worktreeinclude"),
        "# patterns\n*.local\nconfig/**/*.key\npackage.json\nsrc\nmissing.env\n",
    );
    env.commit_all(&main, "patterns");

    let run = env.provision(&main, &["new", "x"]).expect(0);
    assert!(
        run.stderr
            .contains("package.json: tracked by git, never replaced by a link"),
        "{}",
        run.stderr
    );
    // A folder counts as tracked when anything inside it is.
    assert!(
        run.stderr
            .contains("src: tracked by git, never replaced by a link"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("missing.env: listed in .worktreeinclude but missing"),
        "{}",
        run.stderr
    );
    let wt = env.path("worktree-x");
    for link in [
        "settings.local",
        "config/app.key",
        "config/keys/nested/signing.key",
    ] {
        assert!(
            fs_err::symlink_metadata(wt.join(link))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link}"
        );
    }
    assert_eq!(read(wt.join("config/keys/nested/signing.key")), "k1\n");
    assert!(
        !fs_err::symlink_metadata(wt.join("package.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let lock = read(wt.join("provision.lock"));
    assert!(
        lock.contains("\"kind\": \"absent\",\n      \"path\": \"missing.env\""),
        "{lock}"
    );
    env.provision(&wt, &["verify"]).expect(0);
    assert_eq!(env.git(&wt, &["status", "--porcelain"]), "");
}

#[test]
fn an_env_file_inside_a_linked_folder_is_refused() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    fs_err::create_dir_all(main.join("config")).unwrap();
    write(main.join("config/shared.json"), "{}\n");
    write(
        main.join(".gitignore"),
        &format!("{}config/\n", read(main.join(".gitignore"))),
    );
    write(main.join(".worktreeinclude"), "config\n");
    write(
        main.join("provision.toml"),
        "[env]\nfile = \"config/.env.local\"\n",
    );
    env.commit_all(&main, "recipe");
    let run = env.provision(&main, &["new", "a"]).expect(2);
    assert!(
        run.stderr
            .contains("env.file `config/.env.local` lies inside `config`"),
        "{}",
        run.stderr
    );
    assert!(!main.join("config/.env.local").exists());
    assert!(!env.path("worktree-a").exists());
}

#[test]
fn a_main_checkout_link_to_a_folder_is_linked_as_a_folder() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let store = env.path("store/node_modules");
    fs_err::create_dir_all(&store).unwrap();
    fs_err::remove_dir_all(main.join("node_modules")).unwrap();
    fs_err::os::unix::fs::symlink(&store, main.join("node_modules")).unwrap();
    env.provision(&main, &["new", "a"]).expect(0);
    let wt = env.path("worktree-a");
    env.provision(&wt, &["verify"]).expect(0);
    let run = env.provision(&wt, &["apply", "--json"]).expect(0);
    assert_eq!(run.json()["actions"], serde_json::json!([]));
}

/// Recipe paths that would collide with provision's own files are refused
/// when the recipe is read, by line, before anything is made.
#[test]
fn recipe_paths_that_collide_with_provisions_own_files_are_refused() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    for (file, text, expected) in [
        (
            ".worktreeinclude",
            ".env\n*\n",
            ".worktreeinclude:2: `*` takes in provision.lock",
        ),
        (
            ".worktreeinclude",
            "provision.lock\n",
            ".worktreeinclude:1: `provision.lock` takes in provision.lock",
        ),
        (
            "provision.toml",
            "[env]\nfile = \"provision.lock\"\n",
            "provision.toml:2: env.file `provision.lock` is one of provision's or git's own files",
        ),
        (
            "provision.toml",
            "[env]\nfile = \"migrations/.env\"\n",
            "env.file `migrations/.env` lies in the migrations folder `migrations`",
        ),
        (
            "provision.toml",
            "[env]\nfile = \"./.env.local\"\n",
            "provision.toml:2: env.file `./.env.local` must be a plain relative path",
        ),
        (
            ".worktreeinclude",
            "./.env\n",
            ".worktreeinclude:1: `./.env` names a path in two ways",
        ),
    ] {
        let before = fs_err::read_to_string(main.join(file)).unwrap_or_default();
        write(main.join(file), text);
        let run = env.provision(&main, &["new", "x"]).expect(2);
        assert!(run.stderr.contains(expected), "{text}: {}", run.stderr);
        assert!(!env.path("worktree-x").exists());
        write(main.join(file), &before);
    }
    write(
        main.join(".worktreeinclude"),
        ".env\n*.local\n!provision.lock\n",
    );
    env.provision(&main, &["new", "x"]).expect(0);
}
