//! `provision mcp` driven by the official Python MCP SDK's client (PyPI
//! `mcp`, installed by tests/run.sh into a venv), as an agent's client
//! drives it: the tools are listed with their schemas, each returns what the
//! command's `--json` prints, and an error is a tool error.

use std::path::PathBuf;

use crate::support::TestEnv;

/// The venv's python, as tests/run.sh made it.
fn python() -> PathBuf {
    let path = std::env::var_os("PROVISION_TEST_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{} is missing: `sh tests/run.sh` installs the MCP client",
        path.display()
    );
    path
}

#[test]
fn an_mcp_client_drives_the_sandbox_lifecycle() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    let client = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");
    let out = env
        .command(python().to_str().unwrap(), &main)
        .args([
            client,
            env!("CARGO_BIN_EXE_provision"),
            main.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(report["server"], "provision");
    let tools = report["tools"].as_object().unwrap();
    let names: Vec<&str> = tools.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "apply", "db_reset", "env", "new", "remove", "status", "verify"
        ]
    );
    assert_eq!(tools["new"]["required"], serde_json::json!(["name"]));
    assert_eq!(tools["remove"]["properties"]["force"]["type"], "boolean");

    let worktree = env.path("worktree-feat");
    assert_eq!(report["new"]["error"], false);
    assert_eq!(report["new"]["result"]["path"], worktree.to_str().unwrap());
    assert_eq!(report["env"]["result"]["DB_NAME"], "app_feat");
    assert_eq!(report["verify"]["result"]["clean"], true);
    let reset = &report["db_reset"]["result"];
    assert_eq!(report["db_reset"]["error"], false);
    let aside = reset["set_aside"]["database"].as_str().unwrap();
    assert!(aside.starts_with("app_feat_aside_"), "{reset}");
    assert!(
        reset["set_aside"]["restore"]
            .as_str()
            .unwrap()
            .starts_with("mv -f "),
        "{reset}"
    );
    let rows = report["status"]["result"]["sandboxes"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["name"] == "feat" && r["state"] == "clean")
    );

    // An error is a tool error carrying provision's message and exit status.
    assert_eq!(report["bad"]["error"], true);
    assert!(
        report["bad"]["result"]["error"]
            .as_str()
            .unwrap()
            .contains("`bad..name` is not a valid branch name")
    );
    assert_eq!(report["bad"]["result"]["exit"], 2);
    // Tools act on the server's own repository only.
    assert_eq!(report["elsewhere"]["error"], true);
    assert!(
        report["elsewhere"]["result"]["error"]
            .as_str()
            .unwrap()
            .contains("is not a folder of the repository this server serves")
    );

    assert_eq!(report["remove"]["result"]["database_fate"], "dropped");
    assert!(!worktree.exists());
    // Only the main checkout is left.
    let direct = env.provision(&main, &["status", "--json"]).expect(0).json();
    assert_eq!(direct["sandboxes"].as_array().unwrap().len(), 1);
}
