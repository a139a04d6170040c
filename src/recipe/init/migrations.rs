//! Which migrations folder `init` points the recipe at, and its layout:
//! the folders common tools use (and diesel.toml's), each read by the same
//! code `apply` reads it with, so what init writes is what apply does.

use std::path::Path;

use crate::db::migrations::{self, Format};

/// Migration folders of common tools, in the order they are preferred.
const CANDIDATES: [(&str, &str); 7] = [
    (
        "migrations",
        "wrangler D1, sqlx, diesel, golang-migrate, goose",
    ),
    ("db/migrations", "dbmate, golang-migrate, goose"),
    ("db/migrate", "Rails, dbmate"),
    ("supabase/migrations", "Supabase"),
    ("prisma/migrations", "Prisma"),
    ("db/migration", "Flyway"),
    ("src/main/resources/db/migration", "Flyway"),
];

/// A migrations folder found in the checkout.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Folder {
    pub dir: String,
    pub tool: &'static str,
    /// Its layout and how many migrations it holds, or why it reads as none.
    pub read: Result<(Format, usize), String>,
    /// What says its SQL is PostgreSQL's, if anything does.
    pub postgres: Option<&'static str>,
}

impl Folder {
    pub fn count(&self) -> usize {
        self.read.as_ref().map_or(0, |(_, n)| *n)
    }

    pub fn describe(&self) -> String {
        match &self.read {
            Ok((format, n)) => format!("{}/ ({n} {} migrations)", self.dir, format.as_str()),
            Err(_) => format!("{}/ (unreadable)", self.dir),
        }
    }
}

pub(super) fn find(root: &Path) -> Vec<Folder> {
    let mut dirs: Vec<(String, &'static str)> = Vec::new();
    if let Some(dir) = diesel_dir(root) {
        dirs.push((dir, "diesel (diesel.toml)"));
    }
    for (dir, tool) in CANDIDATES {
        if !dirs.iter().any(|(d, _)| d == dir) {
            dirs.push((dir.to_string(), tool));
        }
    }
    let sqlx = fs_err::read_to_string(root.join("Cargo.toml")).is_ok_and(|t| t.contains("sqlx"));
    dirs.into_iter()
        .filter(|(dir, _)| root.join(dir).is_dir())
        .map(|(dir, tool)| {
            let read = migrations::scan(root, &dir, None)
                .map(|m| {
                    // sqlx writes what golang-migrate writes; Cargo.toml tells.
                    let format = match m.format {
                        Format::Flat | Format::GolangMigrate if sqlx && !m.is_empty() => {
                            Format::Sqlx
                        }
                        format => format,
                    };
                    (format, m.len())
                })
                .map_err(|e| e.to_string());
            let postgres = says_postgres(root, &dir);
            Folder {
                dir,
                tool,
                read,
                postgres,
            }
        })
        .collect()
}

/// Prisma's lock file names its database; diesel's setup migration is
/// PostgreSQL's.
fn says_postgres(root: &Path, dir: &str) -> Option<&'static str> {
    let lock =
        fs_err::read_to_string(root.join(dir).join("migration_lock.toml")).unwrap_or_default();
    if lock.contains("\"postgresql\"") {
        return Some("migration_lock.toml names postgresql");
    }
    root.join(dir)
        .join("00000000000000_diesel_initial_setup")
        .is_dir()
        .then_some("diesel's initial setup migration is PostgreSQL's")
}

/// diesel.toml's `[migrations_directory] dir`, else diesel's default.
fn diesel_dir(root: &Path) -> Option<String> {
    let text = fs_err::read_to_string(root.join("diesel.toml")).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    let dir = value
        .get("migrations_directory")
        .and_then(|m| m.get("dir"))
        .and_then(|d| d.as_str())
        .unwrap_or("migrations");
    let dir = dir.trim_end_matches('/');
    crate::recipe::config::check_relative(dir).ok()?;
    Some(dir.to_string())
}

/// The folder provision applies: the first holding migrations.
pub(super) fn chosen(folders: &[Folder]) -> Option<&Folder> {
    folders.iter().find(|f| f.count() > 0)
}

/// What a layout is, for the comment beside `format`.
fn what(format: Format) -> &'static str {
    match format {
        Format::Flat => "plain *.sql files, applied in name order",
        Format::GolangMigrate => {
            "golang-migrate's <version>_<name>.up.sql (the .down.sql never), by version; schema_migrations kept"
        }
        Format::Sqlx => "sqlx's <version>_<name>.sql or .up.sql, by version; _sqlx_migrations kept",
        Format::Diesel => {
            "diesel's <version>_<name>/up.sql, by version; __diesel_schema_migrations kept"
        }
        Format::Prisma => {
            "Prisma's <timestamp>_<name>/migration.sql, by name; _prisma_migrations kept"
        }
        Format::Dbmate => "dbmate's -- migrate:up sections, by version; schema_migrations kept",
        Format::Goose => "goose's -- +goose Up sections, by version; goose_db_version kept",
        Format::Flyway => "Flyway's V<version>__<name>.sql, by version; flyway_schema_history kept",
    }
}

/// The `migrations` and `format` lines, and a comment on every other
/// folder found.
pub(super) fn lines(folders: &[Folder], out: &mut String) {
    match chosen(folders) {
        Some(Folder {
            dir,
            tool,
            read: Ok((format, n)),
            ..
        }) => out.push_str(&format!(
            "migrations = \"{dir}\"   # {n} migration(s), found as {tool} keeps them\n\
             format = \"{}\"   # {}\n",
            format.as_str(),
            what(*format)
        )),
        _ => out.push_str(
            "# migrations = \"migrations\"   # the default; no migrations folder yet\n\
             # format = \"…\"   # read from the folder: flat, golang-migrate, sqlx, diesel, prisma, dbmate, goose, flyway\n",
        ),
    }
    let chosen = chosen(folders).map(|f| f.dir.as_str());
    for folder in folders.iter().filter(|f| Some(f.dir.as_str()) != chosen) {
        let why = match &folder.read {
            Err(e) => format!("cannot be read as migrations: {e}"),
            Ok((_, 0)) => "holds no SQL migrations provision applies: that tool applies them itself (a [[setup]] step)".into(),
            Ok(_) => "holds migrations too; provision applies one folder".into(),
        };
        out.push_str(&format!("# {}/ ({}) {why}\n", folder.dir, folder.tool));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let at = dir.path().join(path);
            fs_err::create_dir_all(at.parent().unwrap()).unwrap();
            fs_err::write(at, text).unwrap();
        }
        dir
    }

    fn found(files: &[(&str, &str)]) -> Option<(String, Format)> {
        let dir = repo(files);
        let folders = find(dir.path());
        chosen(&folders).map(|f| (f.dir.clone(), f.read.clone().unwrap().0))
    }

    #[test]
    fn each_tool_is_recognised_where_it_keeps_its_migrations() {
        for (files, dir, format) in [
            (
                vec![("prisma/migrations/1_a/migration.sql", "A")],
                "prisma/migrations",
                Format::Prisma,
            ),
            (
                vec![("db/migrations/1_a.sql", "-- migrate:up\nA")],
                "db/migrations",
                Format::Dbmate,
            ),
            (
                vec![
                    ("migrations/1_a.up.sql", "A"),
                    ("migrations/1_a.down.sql", "D"),
                ],
                "migrations",
                Format::GolangMigrate,
            ),
            (
                vec![
                    (
                        "diesel.toml",
                        "[migrations_directory]\ndir = \"db/diesel\"\n",
                    ),
                    ("db/diesel/2024_a/up.sql", "A"),
                ],
                "db/diesel",
                Format::Diesel,
            ),
            (
                vec![
                    ("Cargo.toml", "[dependencies]\nsqlx = \"0.8\"\n"),
                    ("migrations/1_a.sql", "A"),
                ],
                "migrations",
                Format::Sqlx,
            ),
            (
                vec![("db/migration/V1__a.sql", "A")],
                "db/migration",
                Format::Flyway,
            ),
            (
                vec![("migrations/0001_a.sql", "A")],
                "migrations",
                Format::Flat,
            ),
        ] {
            assert_eq!(found(&files), Some((dir.to_string(), format)), "{files:?}");
        }
        assert_eq!(found(&[("db/migrate/1_a.rb", "")]), None);
        let dir = repo(&[
            ("prisma/migrations/1_a/migration.sql", "A"),
            (
                "prisma/migrations/migration_lock.toml",
                "provider = \"postgresql\"\n",
            ),
        ]);
        assert!(find(dir.path())[0].postgres.is_some());
    }

    #[test]
    fn the_lines_name_the_folder_the_layout_and_the_others() {
        let dir = repo(&[
            ("db/migrations/1_a.sql", "-- migrate:up\nA"),
            ("db/migrate/1_a.rb", ""),
        ]);
        let mut out = String::new();
        lines(&find(dir.path()), &mut out);
        assert!(out.starts_with("migrations = \"db/migrations\"   # 1 migration(s), found as dbmate, golang-migrate, goose keeps them\nformat = \"dbmate\""), "{out}");
        assert!(
            out.contains("# db/migrate/ (Rails, dbmate) holds no SQL migrations"),
            "{out}"
        );
    }
}
