//! Many agents on one repository at once: eight workers each run `new`,
//! `apply` and `remove` for three rounds while a ninth runs `gc`. Afterwards
//! every surviving sandbox verifies clean, and the registry, git's worktree
//! list and the databases on disk all agree.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Barrier;

use crate::support::{Run, TestEnv, read};

const WORKERS: usize = 8;
const ROUNDS: usize = 3;

#[test]
fn eight_agents_creating_applying_and_removing_at_once_leave_a_consistent_repository() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let start = Barrier::new(WORKERS + 1);
    let runs: Vec<(String, Run)> = std::thread::scope(|scope| {
        let (env, main, start) = (&env, &main, &start);
        let mut handles: Vec<_> = (0..WORKERS)
            .map(|worker| {
                scope.spawn(move || {
                    start.wait();
                    let mut runs = Vec::new();
                    for round in 0..ROUNDS {
                        let name = format!("agent-{worker}-{round}");
                        let wt = env.path(&format!("worktree-{name}"));
                        runs.push((format!("new {name}"), env.provision(main, &["new", &name])));
                        runs.push((format!("apply {name}"), env.provision(&wt, &["apply"])));
                        // The last round's sandbox survives.
                        if round + 1 < ROUNDS {
                            runs.push((
                                format!("remove {name}"),
                                env.provision(main, &["remove", &name]),
                            ));
                        }
                    }
                    runs
                })
            })
            .collect();
        handles.push(scope.spawn(move || {
            start.wait();
            (0..ROUNDS)
                .map(|_| ("gc".to_string(), env.provision(main, &["gc"])))
                .collect()
        }));
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for (what, run) in &runs {
        assert_eq!(run.code, 0, "{what}:\n{}\n{}", run.stdout, run.stderr);
    }

    let survivors: BTreeSet<PathBuf> = (0..WORKERS)
        .map(|w| env.path(&format!("worktree-agent-{w}-{}", ROUNDS - 1)))
        .map(|p| fs_err::canonicalize(p).unwrap())
        .collect();
    for wt in &survivors {
        env.provision(wt, &["verify"]).expect(0);
        assert_eq!(env.git(wt, &["status", "--porcelain"]), "");
    }

    // git's list of linked worktrees is exactly the survivors.
    let listed: BTreeSet<PathBuf> = env
        .git(&main, &["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(PathBuf::from)
        .filter(|p| *p != fs_err::canonicalize(&main).unwrap())
        .collect();
    assert_eq!(listed, survivors);

    // The registry holds one record per survivor, each with its own port
    // and database, and no database is left without a record.
    let records: Vec<serde_json::Value> = fs_err::read_dir(main.join(".git/provision/sandboxes"))
        .unwrap()
        .map(|e| serde_json::from_str(&read(e.unwrap().path())).unwrap())
        .collect();
    let recorded: BTreeSet<PathBuf> = records
        .iter()
        .map(|r| PathBuf::from(r["path"].as_str().unwrap()))
        .collect();
    assert_eq!(recorded, survivors);
    let ports: BTreeSet<u64> = records
        .iter()
        .map(|r| r["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports.len(), WORKERS, "{ports:?}");
    let databases: BTreeSet<String> = records
        .iter()
        .map(|r| format!("{}.sqlite", r["database"]["name"].as_str().unwrap()))
        .collect();
    let on_disk: BTreeSet<String> = fs_err::read_dir(main.join(".git/provision/sqlite"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // The store's entries are no sandbox's.
        .filter(|name| !name.starts_with("provision_store_"))
        .collect();
    assert_eq!(on_disk, databases);
}
