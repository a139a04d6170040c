//! The on-disk formats, byte for byte: the fixture app's lock and registry
//! record as provision wrote them before their fields were typed
//! (`golden/`, from the binary of commit a6501b5).

use std::path::Path;

use serde_json::Value;

use crate::support::{TestEnv, read};

/// The port the registry hands `app/feature` when nothing holds it.
const GOLDEN_PORT: u64 = 23229;

#[test]
fn the_fixture_apps_lock_and_record_keep_their_bytes() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let worktree = fs_err::canonicalize(env.path("worktree-feature")).unwrap();
    let lock = read(worktree.join("provision.lock"));
    let record = read(main.join(".git/provision/sandboxes/worktree-feature.json"))
        .replace(worktree.to_str().unwrap(), "[WORKTREE]");
    let golden = |name: &str| {
        read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/it/golden")
                .join(name),
        )
    };
    let port = serde_json::from_str::<Value>(&lock).unwrap()["port"].as_u64();
    for (written, golden) in [
        (lock, golden("fixture-app.lock")),
        (record, golden("fixture-app.record.json")),
    ] {
        if port == Some(GOLDEN_PORT) {
            assert_eq!(written, golden);
        } else {
            // Another program holds the port here: compare all the rest.
            assert_eq!(without_port(&written), without_port(&golden), "{written}");
        }
    }
}

/// `text` without the port and the hashes over it.
fn without_port(text: &str) -> Value {
    let mut value: Value = serde_json::from_str(text).unwrap();
    for field in [
        "/port",
        "/hash",
        "/lock_hash",
        "/env/content",
        "/env/overrides/PORT",
    ] {
        if let Some(found) = value.pointer_mut(field) {
            *found = Value::Null;
        }
    }
    value
}
