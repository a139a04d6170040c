//! The chaos harness's bounded subset: `chaos/chaos.py --quick` drives the
//! debug binary through `kill -9` at random points of `new`, `apply`,
//! `remove` and `gc` (8 agents at once), a sample of syscall faults
//! (`strace -f -e inject=…`), a sample of faults in one git step alone,
//! every hostile-state case, and on PostgreSQL (a private server the
//! harness starts) 4 rounds of kills of 6 agents (`new`, `apply`, `db
//! reset`, `remove`, `gc`, and the background `db refill`) and a sample of
//! kills at a statement, with a fixed seed, in a minute or two on 2 cores;
//! it must find no violation.
//! `just chaos` runs the whole harness (`chaos/chaos.py`).

use std::process::Command;

#[test]
fn a_bounded_chaos_run_finds_no_violation() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/chaos/chaos.py");
    let output = Command::new("python3")
        .arg(script)
        .args(["--quick", "--seed", "1", "--quiet", "--binary"])
        .arg(env!("CARGO_BIN_EXE_provision"))
        .output()
        .expect("python3 runs chaos/chaos.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("violations: 0 "),
        "chaos/chaos.py --quick --seed 1 (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
}
