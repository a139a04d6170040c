//! `provision mcp`: a Model Context Protocol server over stdio, for agents
//! that call tools rather than shells. Each tool runs this same binary with
//! `--json` and returns exactly that report as its structured result, so a
//! tool and its command can never drift apart; an error comes back as a
//! tool error carrying the message and its causes (`{error, causes, exit}`).
//! A tool call is its own process: a failure in one leaves the server up.

use std::path::PathBuf;
use std::process::Stdio;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::JsonSchema;
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Deserialize;

use crate::BoxError;
use crate::cli::{Exit, Globals};
use crate::git::Checkout;
use crate::recipe::trust;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_: Args, globals: &Globals) -> Result<Exit, BoxError> {
    let server = Server {
        cwd: globals.cwd.clone(),
        tool_router: Server::tool_router(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let running = server.serve(rmcp::transport::stdio()).await?;
        running.waiting().await?;
        Ok::<_, BoxError>(())
    })?;
    Ok(Exit::Clean)
}

#[derive(Clone)]
struct Server {
    /// Where the server was started: the default `directory` of a tool.
    cwd: PathBuf,
    tool_router: ToolRouter<Self>,
}

/// Where a tool runs: a worktree or the repository.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Here {
    /// Run as if provision was started in this folder (default: where the
    /// server was started).
    directory: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct NewArgs {
    /// Name of the new branch and sandbox.
    name: String,
    /// Start the branch at this revision instead of the main checkout's HEAD.
    from: Option<String>,
    /// Put the worktree here instead of `[worktree] path`.
    path: Option<String>,
    /// Run as if provision was started in this folder.
    directory: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct ApplyArgs {
    /// Only say what would be done.
    #[serde(default)]
    dry_run: bool,
    /// The worktree to apply in (default: where the server was started).
    directory: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct DbResetArgs {
    /// Only say what would be done.
    #[serde(default)]
    dry_run: bool,
    /// Drop the old database instead of keeping it aside (the command
    /// kind's only way).
    #[serde(default)]
    discard: bool,
    /// The worktree whose database to rebuild (default: where the server
    /// was started).
    directory: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct RemoveArgs {
    /// The sandbox name, or the worktree's path.
    name: String,
    /// Remove even with uncommitted changes, untracked files or commits on no
    /// other branch (an unmerged branch is still kept).
    #[serde(default)]
    force: bool,
    /// Keep the branch even when it is merged.
    #[serde(default)]
    keep_branch: bool,
    /// Run as if provision was started in this folder.
    directory: Option<String>,
}

#[tool_router]
impl Server {
    #[tool(
        description = "Create a git worktree on a new branch with its own sandbox: linked config, env overrides (DB_NAME, PORT), its own migrated database. Returns `provision new --json`."
    )]
    async fn new(
        &self,
        Parameters(args): Parameters<NewArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut argv = vec!["new".to_string(), args.name];
        push_opt(&mut argv, "--from", args.from);
        push_opt(&mut argv, "--path", args.path);
        self.provision(argv, args.directory).await
    }

    #[tool(
        description = "Bring a worktree's sandbox to what the recipe says, or with dry_run list what would be done. Returns `provision apply --json`."
    )]
    async fn apply(
        &self,
        Parameters(args): Parameters<ApplyArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut argv = vec!["apply".to_string()];
        if args.dry_run {
            argv.push("--dry-run".into());
        }
        self.provision(argv, args.directory).await
    }

    #[tool(
        description = "Rebuild a worktree's database from its branch's migrations, for one that no longer matches them (an applied migration edited, or an earlier-sorting one merged in); the old one is kept aside until the next gc. Returns `provision db reset --json`, whose `set_aside.restore` says how to get the old one back."
    )]
    async fn db_reset(
        &self,
        Parameters(args): Parameters<DbResetArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut argv = vec!["db".to_string(), "reset".to_string()];
        if args.dry_run {
            argv.push("--dry-run".into());
        }
        if args.discard {
            argv.push("--discard".into());
        }
        self.provision(argv, args.directory).await
    }

    #[tool(
        description = "Check a worktree's sandbox against its lock and its lock against the recipe; `clean` says whether it matches. Returns `provision verify --json`."
    )]
    async fn verify(
        &self,
        Parameters(here): Parameters<Here>,
    ) -> Result<CallToolResult, ErrorData> {
        self.provision(vec!["verify".into()], here.directory).await
    }

    #[tool(
        description = "Every worktree of the repository with its sandbox: name, branch, state, port, database. Returns `provision status --json`."
    )]
    async fn status(
        &self,
        Parameters(here): Parameters<Here>,
    ) -> Result<CallToolResult, ErrorData> {
        self.provision(vec!["status".into()], here.directory).await
    }

    #[tool(
        description = "A worktree's env overrides (DB_NAME, PORT, …) as an object. Returns `provision env --json`."
    )]
    async fn env(&self, Parameters(here): Parameters<Here>) -> Result<CallToolResult, ErrorData> {
        self.provision(vec!["env".into()], here.directory).await
    }

    #[tool(
        description = "Remove a worktree with its processes, database, ports and record; its branch goes only when merged. Refuses a worktree holding unsaved work unless force. Returns `provision remove --json`."
    )]
    async fn remove(
        &self,
        Parameters(args): Parameters<RemoveArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut argv = vec!["remove".to_string(), args.name];
        if args.force {
            argv.push("--force".into());
        }
        if args.keep_branch {
            argv.push("--keep-branch".into());
        }
        self.provision(argv, args.directory).await
    }
}

fn push_opt(argv: &mut Vec<String>, flag: &str, value: Option<String>) {
    if let Some(value) = value {
        argv.push(flag.into());
        argv.push(value);
    }
}

impl Server {
    /// Runs `provision ARGV --json` in `directory` and returns its report:
    /// exit 0 (and `verify`'s 1, a report of drift) as the result, exit 2 as
    /// a tool error with the JSON error provision printed.
    async fn provision(
        &self,
        argv: Vec<String>,
        directory: Option<String>,
    ) -> Result<CallToolResult, ErrorData> {
        let internal = |what: &str, e: &dyn std::fmt::Display| {
            ErrorData::internal_error(format!("{what}: {e}"), None)
        };
        let exe = std::env::current_exe().map_err(|e| internal("cannot find provision", &e))?;
        let dir = directory.map_or_else(|| self.cwd.clone(), |d| self.cwd.join(d));
        // Tools act on the repository the server serves, and no other: an
        // agent's `directory` could name any folder on the machine.
        let here = |d: &std::path::Path| Checkout::discover(d).ok().map(|c| c.common_dir);
        if here(&dir).is_none() || here(&dir) != here(&self.cwd) {
            return Ok(CallToolResult::structured_error(serde_json::json!({
                "error": format!("{} is not a folder of the repository this server serves ({})", dir.display(), self.cwd.display()),
                "causes": [],
                "exit": 2,
            })));
        }
        let mut command = tokio::process::Command::new(exe);
        // `provision --trust mcp` trusts for its tools too.
        if trust::trust_all() {
            command.env("PROVISION_TRUST", "1");
        }
        let output = command
            .arg("-C")
            .arg(&dir)
            .args(&argv)
            .arg("--json")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .await
            .map_err(|e| internal("cannot run provision", &e))?;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| internal("provision printed no JSON report", &e))?;
        Ok(match output.status.code() {
            Some(0 | 1) => CallToolResult::structured(report),
            _ => CallToolResult::structured_error(report),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("provision", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "provision gives every git worktree its own sandbox: links to the main checkout's untracked config, env overrides (DB_NAME, PORT), its own migrated database. Use `new` to start work on a branch in its own worktree, `env` for its values, `verify`/`status` to check, `db_reset` when its database no longer matches the branch's migrations, `remove` when done.",
            )
    }
}
