//! Adversarial cases against issue 14's features (divergence, the store,
//! clone identity): each a way provision lost or could lose data.

use std::path::{Path, PathBuf};

use crate::support::{TestEnv, read, sqlite, write};

fn sqlite_db(main: &Path, db: &str) -> PathBuf {
    main.join(".git/provision/sqlite").join(format!("{db}.sqlite"))
}

/// An aside record is untrusted input: one hand-edited (or forged) to name
/// the live sandbox's own database must not lead `gc` to drop it, though
/// that database carries the very mark the record's sandbox gives it.
#[test]
fn gc_never_drops_a_live_database_an_aside_record_names() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("provision.toml"), "[database]\n");
    env.commit_all(&main, "recipe");
    env.provision(&main, &["new", "feat"]).expect(0);
    let wt = env.path("worktree-feat");
    let reset = env.provision(&wt, &["db", "reset", "--json"]).expect(0);
    let aside = reset.json()["set_aside"]["database"]
        .as_str()
        .unwrap()
        .to_string();
    sqlite(&main, "app_feat")
        .execute_batch("CREATE TABLE precious(x); INSERT INTO precious VALUES (42);")
        .unwrap();
    // The record, copied to name the live database instead.
    let dir = main.join(".git/provision/aside");
    let record = read(dir.join(format!("{aside}.json")));
    write(
        dir.join("app_feat.json"),
        &record.replace(&format!("\"database\": \"{aside}\""), "\"database\": \"app_feat\""),
    );

    let gc = env.provision(&main, &["gc"]).expect(0);
    assert!(
        sqlite_db(&main, "app_feat").is_file(),
        "gc dropped the live sandbox's database:\n{}",
        gc.stdout
    );
    assert!(gc.stdout.contains("app_feat.json"), "{}", gc.stdout);
    env.provision(&wt, &["verify"]).expect(0);
    let kept: i64 = sqlite(&main, "app_feat")
        .query_row("SELECT x FROM precious", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 42);

    // A sandbox whose database has the form of an aside name, and a
    // record of it made to match that form exactly.
    env.provision(&main, &["new", "x_aside_5"]).expect(0);
    let other = env.path("worktree-x_aside_5");
    assert!(sqlite_db(&main, "app_x_aside_5").is_file());
    write(
        dir.join("app_x_aside_5.json"),
        &format!(
            "{{\"database\": \"app_x_aside_5\", \"from\": \"app_x\", \"kind\": \"sqlite\", \
             \"sandbox\": \"x_aside_5\", \"id\": \"worktree-x_aside_5\", \"path\": {:?}, \"at\": 5}}\n",
            other.display().to_string()
        ),
    );
    let gc = env.provision(&main, &["gc"]).expect(0);
    assert!(
        sqlite_db(&main, "app_x_aside_5").is_file(),
        "gc dropped a live sandbox's database:\n{}",
        gc.stdout
    );
    env.provision(&other, &["verify"]).expect(0);
}
