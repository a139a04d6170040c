//! `[links] copy` and `reflink`: copies the worktree owns, beside symlinks.

use crate::support::{TestEnv, read, write};

#[test]
fn copies_are_the_worktrees_own_and_never_clobbered() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    // A `.worktreeinclude` as written for Claude Code: gitignore syntax.
    write(
        main.join(".worktreeinclude"),
        ".env\n.dev.vars\nnode_modules/\n.wrangler/\n",
    );
    fs_err::create_dir_all(main.join(".wrangler/state")).unwrap();
    write(main.join(".wrangler/state/d1.sqlite"), "seed");
    write(
        main.join("provision.toml"),
        "[links]\ncopy = [\"node_modules\", \"build-cache\"]\nreflink = [\".wrangler\"]\n",
    );
    let run = env.provision(&main, &["new", "feature"]).expect(0);
    assert!(
        run.stderr.contains(
            "provision.toml:2: links.copy `build-cache` matches no path .worktreeinclude links"
        ),
        "{}",
        run.stderr
    );
    let wt = env.path("worktree-feature");
    for copy in ["node_modules", ".wrangler"] {
        let meta = fs_err::symlink_metadata(wt.join(copy)).unwrap();
        assert!(meta.is_dir(), "{copy} is a real folder");
    }
    assert!(
        fs_err::symlink_metadata(wt.join(".env"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(read(wt.join(".wrangler/state/d1.sqlite")), "seed");
    let lock = read(wt.join("provision.lock"));
    assert!(lock.contains(r#""mode": "copy","#), "{lock}");
    assert!(lock.contains(r#""mode": "reflink","#), "{lock}");
    assert_eq!(
        lock.matches("\"mode\"").count(),
        2,
        "symlinks carry no mode: {lock}"
    );

    // The copy's contents are the worktree's to change: not drift, and the
    // main checkout's copy is untouched.
    write(wt.join(".wrangler/state/d1.sqlite"), "worktree data");
    env.provision(&wt, &["verify"]).expect(0);
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(read(wt.join(".wrangler/state/d1.sqlite")), "worktree data");
    assert_eq!(read(main.join(".wrangler/state/d1.sqlite")), "seed");

    // A symlink where the copy belongs is drift; apply copies again.
    fs_err::remove_dir_all(wt.join("node_modules")).unwrap();
    fs_err::os::unix::fs::symlink("../app/node_modules", wt.join("node_modules")).unwrap();
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout
            .contains("link node_modules  a symlink where the worktree's own copy belongs"),
        "{}",
        run.stdout
    );
    let run = env.provision(&wt, &["apply"]).expect(0);
    assert!(
        run.stderr
            .contains("copy      node_modules <- {main}/node_modules"),
        "{}",
        run.stderr
    );
    assert!(
        !fs_err::symlink_metadata(wt.join("node_modules"))
            .unwrap()
            .is_symlink()
    );
    assert!(main.join("node_modules/left-pad/index.js").is_file());
    env.provision(&wt, &["verify"]).expect(0);

    // The recipe now links what was copied: the copy may hold changes, so
    // apply refuses and keeps it.
    write(
        main.join("provision.toml"),
        "[links]\ncopy = [\"node_modules\"]\n",
    );
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout
            .contains("the recipe now wants a symlink, the lock has a reflink"),
        "{}",
        run.stdout
    );
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr
            .contains("error: .wrangler is this worktree's own copy, and the recipe now links it"),
        "{}",
        run.stderr
    );
    assert_eq!(read(wt.join(".wrangler/state/d1.sqlite")), "worktree data");

    // A symlink becomes a copy; the main checkout's file stays as it was.
    write(
        main.join("provision.toml"),
        "[links]\ncopy = [\"node_modules\", \".env\"]\nreflink = [\".wrangler\"]\n",
    );
    env.provision(&wt, &["apply"]).expect(0);
    assert!(
        !fs_err::symlink_metadata(wt.join(".env"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(read(wt.join(".env")), read(main.join(".env")));
    env.provision(&wt, &["verify"]).expect(0);

    // Copies go with the worktree, without --force.
    env.provision(&main, &["remove", "feature"]).expect(0);
    assert!(!wt.exists());
}

#[test]
fn a_copy_in_both_lists_is_refused_by_name() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[links]\ncopy = [\"node_*\"]\nreflink = [\"node_modules\"]\n",
    );
    let run = env.provision(&main, &["new", "feature"]).expect(2);
    assert!(
        run.stderr.contains(
            "provision.toml:2: node_modules matches both links.copy `node_*` and links.reflink `node_modules` (line 3)"
        ),
        "{}",
        run.stderr
    );
}

/// The copy of a file inside a folder that was linked whole: the old folder
/// link goes first, so the copy never lands in (or deletes from) the main
/// checkout.
#[test]
fn a_copy_replacing_a_linked_folder_never_reaches_the_main_checkout() {
    let env = TestEnv::new();
    let (main, wt, secret) = env.linked_config_folder();

    write(main.join(".worktreeinclude"), ".env\nconfig/app.env\n");
    write(
        main.join("provision.toml"),
        "[links]\ncopy = [\"config/app.env\"]\n",
    );
    env.provision(&wt, &["apply"]).expect(0);
    assert_eq!(
        fs_err::read_link(main.join("config/app.env")).unwrap(),
        secret
    );
    assert_eq!(read(&secret), "KEY=secret\n");
    let copy = fs_err::symlink_metadata(wt.join("config/app.env")).unwrap();
    assert!(copy.is_file(), "a real file");
    assert_eq!(read(wt.join("config/app.env")), "KEY=secret\n");
    env.provision(&wt, &["verify"]).expect(0);
}

/// A real file the user made where a copy belongs is theirs, not a copy
/// provision made: apply refuses it by name, and remove does not take it.
#[test]
fn a_users_own_file_is_never_adopted_as_a_copy() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("provision.toml"), "[links]\ncopy = [\".env\"]\n");
    env.provision(&main, &["new", "other"]).expect(0);
    let wt = env.path("feature");
    env.worktree_add(&main, "feature", &wt);
    write(wt.join(".env"), "MY_WORK=precious\n");
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr.contains(
            "error: .env is a real file where a copy of the main checkout's file belongs"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(read(wt.join(".env")), "MY_WORK=precious\n");
    let run = env.provision(&main, &["remove", "feature"]).expect(2);
    assert!(run.stderr.contains(".env (a real file"), "{}", run.stderr);
    assert_eq!(read(wt.join(".env")), "MY_WORK=precious\n");
}

/// A FIFO (or socket) inside a copied folder is refused by name: reading it
/// would wait for a writer forever. `timeout` only keeps a regression from
/// hanging the suite.
#[test]
fn a_fifo_in_a_copied_folder_is_refused_by_name() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    fs_err::create_dir_all(main.join(".wrangler/state")).unwrap();
    let mkfifo = env
        .command("mkfifo", &main)
        .arg(".wrangler/state/sock")
        .status()
        .unwrap();
    assert!(mkfifo.success());
    write(main.join(".worktreeinclude"), ".wrangler\n");
    write(
        main.join("provision.toml"),
        "[links]\ncopy = [\".wrangler\"]\n",
    );
    let run = crate::support::Run::from(
        env.command("timeout", &main)
            .args(["60", env!("CARGO_BIN_EXE_provision"), "new", "feature"])
            .output()
            .unwrap(),
    )
    .expect(2);
    assert!(
        run.stderr
            .contains("cannot copy .wrangler/state/sock: a fifo"),
        "{}",
        run.stderr
    );
    assert!(!env.path("worktree-feature").exists(), "{}", run.stderr);

    // A copy that fails in an existing worktree leaves no staging folder.
    let wt = env.path("mine");
    env.worktree_add(&main, "mine", &wt);
    let run = env.provision(&wt, &["apply"]).expect(2);
    assert!(
        run.stderr
            .contains("error: cannot copy .wrangler/state/sock: a fifo"),
        "{}",
        run.stderr
    );
    let names: Vec<_> = fs_err::read_dir(&wt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".provision"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_copy_of_the_wrong_kind_is_named_as_one() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(
        main.join("provision.toml"),
        "[links]\ncopy = [\"node_modules\"]\n",
    );
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    fs_err::remove_dir_all(wt.join("node_modules")).unwrap();
    write(wt.join("node_modules"), "");
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(
        run.stdout
            .contains("link node_modules  a file where the worktree's own copy (a folder) belongs"),
        "{}",
        run.stdout
    );
}
