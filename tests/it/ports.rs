//! Named ports (`[ports] names`): each name its own port, distinct across
//! live sandboxes, never one something listens on, stable across `apply`,
//! in the lock, the registry and the env file, freed by `remove` and `gc`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::Path;

use serde_json::Value;

use crate::support::{TestEnv, read, write};

const NAMES: [&str; 3] = ["PORT", "API_PORT", "VITE_PORT"];

/// The recipe: three named ports from `range`, and a setup command that
/// writes one of them through `{port.NAME}`.
fn recipe(range: &str) -> String {
    format!(
        "[ports]\nrange = \"{range}\"\nnames = [\"PORT\", \"API_PORT\", \"VITE_PORT\"]\n\n\
         [[setup]]\nrun = 'echo \"{{port.VITE_PORT}}\" > vite-port.txt'\n"
    )
}

fn lock(worktree: &Path) -> Value {
    serde_json::from_str(&read(worktree.join("provision.lock"))).unwrap()
}

/// The named ports a lock records, by name.
fn ports_of(worktree: &Path) -> BTreeMap<String, u16> {
    let lock = lock(worktree);
    serde_json::from_value(lock["ports"].clone()).unwrap_or_else(|e| panic!("{e}: {lock}"))
}

#[test]
fn eight_sandboxes_get_three_distinct_named_ports_each_and_keep_them() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    // 30 ports for 24, three of them taken by listeners: the search has to
    // walk past both other sandboxes' ports and what listens.
    let listeners: Vec<TcpListener> = (31000..31003)
        .map(|port| TcpListener::bind(("127.0.0.1", port)).expect("the test's port is free"))
        .collect();
    let listening: BTreeSet<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    write(main.join("provision.toml"), &recipe("31000-31029"));
    let mut all = BTreeSet::new();
    let mut by_sandbox = BTreeMap::new();
    for i in 0..8 {
        let name = format!("f{i}");
        let run = env.provision(&main, &["new", &name, "--json"]).expect(0);
        let report = run.json();
        let wt = env.path(&format!("worktree-{name}"));
        let ports = ports_of(&wt);
        assert_eq!(ports.keys().map(String::as_str).collect::<Vec<_>>(), {
            let mut names = NAMES.to_vec();
            names.sort();
            names
        });
        assert_eq!(report["port"], ports["PORT"], "{report}");
        assert_eq!(report["ports"], serde_json::to_value(&ports).unwrap());
        assert_eq!(lock(&wt)["port"], ports["PORT"]);
        // Each name is its own override, and `{port.NAME}` expands.
        let vars = env.provision(&wt, &["env", "--json"]).expect(0).json();
        for (name, port) in &ports {
            assert_eq!(vars[name], port.to_string(), "{vars}");
            assert!((31000..=31029).contains(port), "{name}={port}");
            assert!(!listening.contains(port), "{name}={port} is listening");
            assert!(all.insert(*port), "{name}={port} handed out twice");
        }
        assert_eq!(
            read(wt.join("vite-port.txt")).trim(),
            ports["VITE_PORT"].to_string()
        );
        // The registry holds them too.
        let record = read(main.join(format!(".git/provision/sandboxes/worktree-{name}.json")));
        let record: Value = serde_json::from_str(&record).unwrap();
        assert_eq!(record["ports"], serde_json::to_value(&ports).unwrap());
        by_sandbox.insert(name, ports);
    }
    assert_eq!(all.len(), 24);

    // Stable: apply changes nothing, even with the ports now listening (as
    // the sandbox's own servers would).
    drop(listeners);
    let held: Vec<TcpListener> = all
        .iter()
        .map(|port| TcpListener::bind(("127.0.0.1", *port)).unwrap())
        .collect();
    for (name, ports) in &by_sandbox {
        let wt = env.path(&format!("worktree-{name}"));
        let before = read(wt.join("provision.lock"));
        env.provision(&wt, &["apply"]).expect(0);
        env.provision(&wt, &["verify"]).expect(0);
        assert_eq!(read(wt.join("provision.lock")), before);
        assert_eq!(&ports_of(&wt), ports);
    }
    drop(held);
}

#[test]
fn remove_and_gc_free_every_named_port() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    // Room for two sandboxes of three ports exactly.
    write(main.join("provision.toml"), &recipe("31100-31105"));
    env.provision(&main, &["new", "a"]).expect(0);
    env.provision(&main, &["new", "b"]).expect(0);
    let run = env.provision(&main, &["new", "c"]).expect(2);
    assert!(
        run.stderr
            .contains("no free port in 31100-31105: every port is taken by a sandbox or in use; widen `[ports] range`"),
        "{}",
        run.stderr
    );

    let ports_a = ports_of(&env.path("worktree-a"));
    let run = env
        .provision(&main, &["remove", "a", "--force", "--json"])
        .expect(0);
    let removal = run.json();
    assert_eq!(removal["ports"], serde_json::to_value(&ports_a).unwrap());
    let text = removal["done"].to_string();
    let freed = format!(
        "freed ports API_PORT={}, PORT={}, VITE_PORT={}",
        ports_a["API_PORT"], ports_a["PORT"], ports_a["VITE_PORT"]
    );
    assert!(text.contains(&freed), "{text}");
    env.provision(&main, &["new", "c"]).expect(0);
    let taken: BTreeSet<u16> = ["b", "c"]
        .iter()
        .flat_map(|n| ports_of(&env.path(&format!("worktree-{n}"))).into_values())
        .collect();
    assert_eq!(taken.len(), 6);

    // A worktree deleted by hand: gc frees its ports.
    fs_err::remove_dir_all(env.path("worktree-b")).unwrap();
    // Past git's expiry for entries whose folder is gone.
    env.git(&main, &["config", "gc.worktreePruneExpire", "now"]);
    env.provision(&main, &["new", "d"]).expect(2);
    let run = env.provision(&main, &["gc"]).expect(0);
    assert!(
        run.stdout.contains("freed ports API_PORT="),
        "{}",
        run.stdout
    );
    env.provision(&main, &["new", "d"]).expect(0);
}

/// A recipe that renames its ports: a kept name keeps its port, a new name
/// gets one, a dropped one is let go; the default recipe's lock has no
/// `ports` at all.
#[test]
fn renamed_ports_keep_what_they_can() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    env.provision(&main, &["new", "feature"]).expect(0);
    let wt = env.path("worktree-feature");
    let first = lock(&wt);
    assert!(first.get("ports").is_none(), "{first}");
    let port = first["port"].as_u64().unwrap() as u16;

    write(
        main.join("provision.toml"),
        "[ports]\nnames = [\"PORT\", \"API_PORT\"]\n",
    );
    let run = env.provision(&wt, &["verify"]).expect(1);
    assert!(run.stdout.contains("recipe"), "{}", run.stdout);
    env.provision(&wt, &["apply"]).expect(0);
    let ports = ports_of(&wt);
    assert_eq!(ports["PORT"], port);
    assert_ne!(ports["API_PORT"], port);
    let vars = env.provision(&wt, &["env", "--json"]).expect(0).json();
    assert_eq!(vars["API_PORT"], ports["API_PORT"].to_string());

    write(main.join("provision.toml"), "[ports]\nnames = [\"WEB\"]\n");
    env.provision(&wt, &["apply"]).expect(0);
    let ports = ports_of(&wt);
    assert_eq!(ports.keys().collect::<Vec<_>>(), ["WEB"]);
    let vars = env.provision(&wt, &["env", "--json"]).expect(0).json();
    assert_eq!(vars["WEB"], ports["WEB"].to_string());
    assert!(vars.get("PORT").is_none(), "{vars}");
}
