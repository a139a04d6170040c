//! Docker Compose: a repository with a compose file gets a compose project
//! per sandbox through `COMPOSE_PROJECT_NAME`. Docker does not run where
//! these tests run: they check the environment compose would be given,
//! not compose itself.

use std::collections::BTreeSet;

use crate::support::{TestEnv, read, write};

const COMPOSE: &str = r#"services:
  api:
    image: example/api
    ports:
      - "127.0.0.1:${API_PORT}:8080"
"#;

#[test]
fn a_compose_file_gives_each_sandbox_its_own_project() {
    let env = TestEnv::new();
    let main = env.fixture_repo("app");
    write(main.join("compose.yaml"), COMPOSE);
    write(
        main.join("provision.toml"),
        "[ports]\nnames = [\"PORT\", \"API_PORT\"]\n",
    );
    env.commit_all(&main, "compose");
    let mut projects = BTreeSet::new();
    for name in ["feature-a", "Feature/B"] {
        env.provision(&main, &["new", name]).expect(0);
        let wt = env.path(&format!("worktree-{}", name.replace('/', "-")));
        let vars = env.provision(&wt, &["env", "--json"]).expect(0).json();
        let project = vars["COMPOSE_PROJECT_NAME"].as_str().unwrap().to_string();
        // What compose accepts as a project name.
        let mut chars = project.chars();
        assert!(chars.next().unwrap().is_ascii_alphanumeric(), "{project}");
        assert!(
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c)),
            "{project}"
        );
        assert!(read(wt.join(".env.local")).contains(&format!("COMPOSE_PROJECT_NAME={project}\n")));
        // `provision exec -- docker compose up` sees the project and the port.
        let run = env
            .provision(
                &wt,
                &[
                    "exec",
                    "--",
                    "sh",
                    "-c",
                    "echo \"$COMPOSE_PROJECT_NAME $API_PORT\"",
                ],
            )
            .expect(0);
        assert_eq!(
            run.stdout,
            format!("{project} {}\n", vars["API_PORT"].as_str().unwrap())
        );
        projects.insert(project);
    }
    assert_eq!(
        projects.into_iter().collect::<Vec<_>>(),
        ["app_feature_a", "app_feature_b"]
    );

    // Given `[env.vars]` replace the defaults, this one too.
    write(
        main.join("provision.toml"),
        "[env.vars]\nPORT = \"{port}\"\n",
    );
    let wt = env.path("worktree-feature-a");
    env.provision(&wt, &["apply"]).expect(0);
    let vars = env.provision(&wt, &["env", "--json"]).expect(0).json();
    assert!(vars.get("COMPOSE_PROJECT_NAME").is_none(), "{vars}");
}
