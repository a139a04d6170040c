//! `provision init`: a commented `provision.toml` and `.worktreeinclude`
//! fitted to what the main checkout holds (wrangler, Node, `.env` files,
//! the migration folders of common tools). It writes into the main
//! checkout, where provision reads the recipe from, and never overwrites a
//! file: one that exists is skipped and named.

use std::path::Path;

use serde::Serialize;

use crate::BoxError;
use crate::fsutil;
use crate::git::{self, Checkout};
use crate::recipe::config::{self, DatabaseKind};
use crate::recipe::include;

mod migrations;

/// What the main checkout shows of the tools it uses.
#[derive(Debug, Default)]
struct Found {
    /// `wrangler.toml`, `wrangler.json` or `wrangler.jsonc`.
    wrangler: Option<&'static str>,
    /// The install command of the package manager whose lockfile is there.
    node: Option<&'static str>,
    /// The env file the app loads, and which tool says so.
    env_loader: Option<(&'static str, &'static str)>,
    supabase: bool,
    /// Untracked files to link: `.env*`, `.npmrc`, `.envrc`.
    shared_files: Vec<String>,
    /// Migration folders that exist, read as apply reads them.
    migrations: Vec<migrations::Folder>,
}

impl Found {
    /// The folder provision applies: the first holding migrations.
    fn migrations_dir(&self) -> Option<&str> {
        migrations::chosen(&self.migrations).map(|f| f.dir.as_str())
    }

    fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.wrangler.map(String::from));
        if let Some(install) = self.node {
            out.push(format!("package.json ({install})"));
        }
        if let Some((file, tool)) = self.env_loader {
            out.push(format!("{tool} (loads {file})"));
        }
        out.extend(self.shared_files.iter().cloned());
        out.extend(self.migrations.iter().map(migrations::Folder::describe));
        out
    }
}

#[derive(Debug, Serialize)]
pub struct InitReport {
    /// The main checkout, where the files go.
    pub dir: String,
    pub found: Vec<String>,
    pub wrote: Vec<String>,
    /// Files that already existed and were left as they are.
    pub skipped: Vec<String>,
}

pub fn init(cwd: &Path) -> Result<InitReport, BoxError> {
    let main = Checkout::discover(cwd)?.main_of()?;
    let root = &main.main;
    let found = detect(root, &main.open()?.index()?)?;
    let mut report = InitReport {
        dir: root.display().to_string(),
        found: found.describe(),
        wrote: Vec::new(),
        skipped: Vec::new(),
    };
    for (name, text) in [
        (config::FILE_NAME, recipe(&found)),
        (include::FILE_NAME, include_list(&found)),
    ] {
        // An existing file is never touched, and one cut short never
        // appears, to be skipped as the user's by the next init.
        if fsutil::write_new(&root.join(name), text.as_bytes())? {
            report.wrote.push(name.to_string());
        } else {
            report.skipped.push(name.to_string());
        }
    }
    Ok(report)
}

fn detect(root: &Path, index: &git2::Index) -> Result<Found, BoxError> {
    let untracked = |path: &str| root.join(path).exists() && !git::is_tracked(index, path);
    let mut found = Found {
        wrangler: ["wrangler.toml", "wrangler.json", "wrangler.jsonc"]
            .into_iter()
            .find(|f| root.join(f).is_file()),
        supabase: root.join("supabase").is_dir(),
        ..Found::default()
    };
    if root.join("package.json").is_file() {
        found.node = Some(
            [
                ("pnpm-lock.yaml", "pnpm install --frozen-lockfile"),
                ("yarn.lock", "yarn install --frozen-lockfile"),
                ("bun.lockb", "bun install --frozen-lockfile"),
                ("bun.lock", "bun install --frozen-lockfile"),
            ]
            .into_iter()
            .find(|(lockfile, _)| root.join(lockfile).is_file())
            .map_or("npm ci", |(_, install)| install),
        );
    }
    found.env_loader = env_loader(root);
    for entry in fs_err::read_dir(root)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        // `.env`, `.env.local`, `.envrc`, …, and npm's registry credentials.
        let shared = name.starts_with(".env") || name == ".npmrc";
        if shared && root.join(&name).is_file() && untracked(&name) {
            found.shared_files.push(name);
        }
    }
    found.shared_files.sort();
    found.migrations = migrations::find(root);
    Ok(found)
}

/// Which env file the app loads, from the tools it depends on: the
/// overrides must go into a file the app reads, or every worktree quietly
/// uses the main checkout's database and port. `None`: nothing known.
fn env_loader(root: &Path) -> Option<(&'static str, &'static str)> {
    let read = |file: &str| fs_err::read_to_string(root.join(file)).unwrap_or_default();
    let package: serde_json::Value =
        serde_json::from_str(&read("package.json")).unwrap_or_default();
    let depends = |name: &str| {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|section| package[section].get(name).is_some())
    };
    // These load .env.local over .env (in development).
    let local = [
        "vite",
        "next",
        "nuxt",
        "astro",
        "@sveltejs/kit",
        "@remix-run/dev",
        "react-scripts",
        "dotenv-flow",
    ];
    if let Some(tool) = local.into_iter().find(|t| depends(t)) {
        return Some((".env.local", tool));
    }
    if read("Gemfile").contains("dotenv") {
        return Some((".env.local", "dotenv-rails"));
    }
    // These load only .env.
    if depends("dotenv") {
        return Some((".env", "dotenv"));
    }
    if read("go.mod").contains("github.com/joho/godotenv") {
        return Some((".env", "godotenv"));
    }
    if read("pyproject.toml").contains("python-dotenv")
        || read("requirements.txt").contains("python-dotenv")
    {
        return Some((".env", "python-dotenv"));
    }
    None
}

/// The `.worktreeinclude` text.
fn include_list(found: &Found) -> String {
    let mut out = String::from(
        "# Untracked files and folders every worktree links from the main checkout\n\
         # (one path or gitignore-style pattern per line, `!` excludes again).\n\
         # Written by `provision init`; a listed path the main checkout lacks is\n\
         # skipped with a warning.\n",
    );
    let mut paths: Vec<String> = found.shared_files.clone();
    if found.wrangler.is_some() {
        out.push_str(
            "# wrangler: .dev.vars holds the Worker's local secrets; .wrangler its local state.\n",
        );
        paths.extend([".dev.vars".to_string(), ".wrangler".to_string()]);
    }
    if found.node.is_some() {
        out.push_str(
            "# Node: one node_modules for every worktree (see the [[setup]] note in provision.toml).\n",
        );
        paths.push("node_modules".into());
    }
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        out.push_str("# .env\n# node_modules\n");
    }
    for path in paths {
        out.push_str(&path);
        out.push('\n');
    }
    out
}

/// The `provision.toml` text. Every active line parses with the same
/// loader as any recipe (a unit test checks each combination), and the
/// defaults are kept wherever a tool needs something `new` could not do on
/// a bare machine: the D1 block needs wrangler, so it stays commented.
fn recipe(found: &Found) -> String {
    let mut out = String::from(
        "# The sandbox every worktree of this repository gets: its links\n\
         # (.worktreeinclude), its env overrides, its own database and port.\n\
         # Written by `provision init`; every key is optional, and a value shown\n\
         # here is the default unless its comment says otherwise.\n",
    );
    let found_list = found.describe();
    if !found_list.is_empty() {
        out.push_str(&format!("# Fitted to: {}.\n", found_list.join(", ")));
    }

    out.push_str("\n[worktree]\npath = \"../worktree-{name}\"   # where `provision new NAME` puts the worktree\n");
    env_section(found, &mut out);
    database_section(found, &mut out);
    out.push_str(
        "\n[ports]\nrange = \"20000-29999\"   # each sandbox gets its ports from here\n\
         # names = [\"PORT\", \"API_PORT\"]   # one port per name, each an override of that name\n",
    );

    if let Some(install) = found.node {
        out.push_str(&format!(
            "\n# node_modules is linked from the main checkout (.worktreeinclude), so\n\
             # every worktree shares one install. For an install per worktree, take\n\
             # node_modules out of .worktreeinclude first (an install must not run\n\
             # through the link into the main checkout's folder), then:\n\
             # [[setup]]\n\
             # run = \"{install}\"\n"
        ));
    }
    out
}

/// `[env]` and `[env.vars]`: wrangler reads `.dev.vars`, which is also linked.
fn env_section(found: &Found, out: &mut String) {
    out.push_str("\n[env]\n");
    if found.wrangler.is_some() {
        out.push_str(
            "# `wrangler dev` reads .dev.vars, and .worktreeinclude links it: each\n\
             # worktree gets a real .dev.vars with the main checkout's values and\n\
             # these overrides, never a write through the link into the main checkout.\n\
             file = \".dev.vars\"\n",
        );
    } else if let Some((file, tool)) = found.env_loader {
        out.push_str(&format!(
            "# {tool} loads {file}, so the overrides go there{}.\n\
             file = \"{file}\"\n",
            if file == ".env" {
                ": a linked .env becomes a real file of the\n# worktree with the main checkout's values and these overrides"
            } else {
                ""
            }
        ));
    } else {
        out.push_str(
            "file = \".env.local\"   # the real per-worktree file that receives the overrides\n\
             # If your app loads only .env (plain dotenv), set file = \".env\": a linked\n\
             # .env then becomes a real file with the main checkout's values and these.\n",
        );
    }
    out.push_str("\n[env.vars]   # replaces the defaults when given\nDB_NAME = \"{db}\"\nPORT = \"{port}\"\n");
    if found.wrangler.is_some() {
        out.push_str(
            "# With the D1 commands below: npx wrangler dev --port \"$PORT\" --persist-to \"$WRANGLER_PERSIST\"\n\
             # WRANGLER_PERSIST = \"{main}/.wrangler/sandboxes/{db}\"\n",
        );
    }
    if found.supabase {
        out.push_str(
            "# `supabase start` serves PostgreSQL on 127.0.0.1:54322 (user postgres):\n\
             # DATABASE_URL = \"postgres://postgres@127.0.0.1:54322/{db}\"\n",
        );
    }
}

/// `[database]`: SQLite unless the migrations are PostgreSQL's (Supabase's,
/// or a Prisma or diesel folder that says so); with
/// wrangler, the commented command kind that keeps wrangler's own D1 state.
fn database_section(found: &Found, out: &mut String) {
    out.push_str("\n[database]\n");
    let mut kind = DatabaseKind::Postgres;
    if found.supabase && found.migrations_dir() == Some("supabase/migrations") {
        out.push_str(
            "# Supabase migrations are PostgreSQL's SQL. The server comes from\n\
             # DATABASE_URL or PGHOST/PGPORT/PGUSER/PGPASSWORD, e.g. after `supabase start`:\n\
             # export DATABASE_URL=postgres://postgres:postgres@127.0.0.1:54322/postgres\n\
             kind = \"postgres\"\n",
        );
    } else if let Some(said) = migrations::chosen(&found.migrations).and_then(|f| f.postgres) {
        out.push_str(&format!(
            "# {said}: PostgreSQL's SQL. The server comes from DATABASE_URL or\n\
             # PGHOST/PGPORT/PGUSER/PGPASSWORD, or set url below.\n\
             kind = \"postgres\"\n"
        ));
    } else {
        kind = DatabaseKind::Sqlite;
        out.push_str("kind = \"sqlite\"   # sqlite (default), postgres or command\n");
    }
    if kind == DatabaseKind::Postgres {
        out.push_str("# {clone}: this clone's own tag, so that clones sharing a server differ\n");
    }
    out.push_str(&format!(
        "name = \"{}\"   # slugged to [a-z0-9_], at most 63 bytes\n",
        config::default_database_name(kind)
    ));
    migrations::lines(&found.migrations, out);
    if let Some(file) = found.wrangler {
        out.push_str(&format!(
            "# Why SQLite here: it works without wrangler installed, and it keeps\n\
             # wrangler's d1_migrations ledger, so `wrangler d1 migrations list` reads it.\n\
             # For wrangler's own local D1 state per sandbox instead, replace the\n\
             # kind line with these (DB is the binding in {file}; its\n\
             # migrations_dir must match `migrations`) and add WRANGLER_PERSIST above:\n\
             # kind = \"command\"\n\
             # exists = 'test -d \"{{main}}/.wrangler/sandboxes/{{db}}\"'\n\
             # migrate = 'npx wrangler d1 migrations apply DB --local --persist-to \"{{main}}/.wrangler/sandboxes/{{db}}\"'\n\
             # drop = 'rm -rf \"{{main}}/.wrangler/sandboxes/{{db}}\"'\n"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrations::Format;

    fn all_kinds() -> Vec<Found> {
        let mut out = vec![Found::default()];
        for (wrangler, env_loader) in [
            (None, None),
            (Some("wrangler.toml"), None),
            (None, Some((".env", "dotenv"))),
            (None, Some((".env.local", "vite"))),
        ] {
            for node in [None, Some("npm ci")] {
                let folder = |dir: &str, format, n| migrations::Folder {
                    dir: dir.into(),
                    tool: "x",
                    read: Ok((format, n)),
                    postgres: (format == Format::Prisma).then_some("it says so"),
                };
                for (supabase, migrations) in [
                    (false, vec![folder("migrations", Format::Flat, 2)]),
                    (true, vec![folder("supabase/migrations", Format::Flat, 1)]),
                    (false, vec![folder("prisma/migrations", Format::Prisma, 30)]),
                    (false, vec![folder("db/migrate", Format::Flat, 0)]),
                ] {
                    out.push(Found {
                        wrangler,
                        node,
                        env_loader,
                        supabase,
                        shared_files: vec![".env".into()],
                        migrations,
                    });
                }
            }
        }
        out
    }

    #[test]
    fn every_generated_recipe_parses() {
        for found in all_kinds() {
            let text = recipe(&found);
            let settings = config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            // The kind's own default, written out: `{clone}` on a server.
            let database = &settings.database;
            assert_eq!(database.name, config::default_database_name(database.kind));
            if found.wrangler.is_some() {
                assert_eq!(settings.env_file, ".dev.vars");
            } else if let Some((file, _)) = found.env_loader {
                assert_eq!(settings.env_file, file);
            }
        }
    }

    #[test]
    fn the_commented_d1_block_parses_once_uncommented() {
        let found = Found {
            wrangler: Some("wrangler.toml"),
            ..Found::default()
        };
        let text = recipe(&found)
            .replace("kind = \"sqlite\"", "")
            .replace("# kind = \"command\"", "kind = \"command\"")
            .replace("# exists = ", "exists = ")
            .replace("# migrate = ", "migrate = ")
            .replace("# drop = ", "drop = ")
            .replace("# WRANGLER_PERSIST", "WRANGLER_PERSIST");
        let settings = config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(settings.database.kind.as_str(), "command");
        assert!(settings.env_vars.contains_key("WRANGLER_PERSIST"));
    }
}
