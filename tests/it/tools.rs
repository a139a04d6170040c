//! The migration tools themselves agree with a provision sandbox: the real
//! `dbmate` (npm), `sqlx` (sqlx-cli) and `diesel` (diesel_cli) report
//! nothing pending, then apply a new migration themselves, which verify
//! calls stale and apply adopts without running it again. Prisma and Flyway
//! cannot be installed here: their tables are checked against their
//! documented shape, and their checksums against other implementations.
//!
//! `tests/run.sh` installs the tools into `target/test-tools/bin`
//! (`PROVISION_TEST_TOOLS`); a missing tool fails the test.

use std::path::{Path, PathBuf};

use crate::layouts::{Db, layout, query, repo};
use crate::pg_server::server;
use crate::support::{Run, TestEnv, read, write};

const DIR: &str = "db/migrations";

/// The installed tool `name`.
fn tool(name: &str) -> PathBuf {
    let dir = std::env::var_os("PROVISION_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools"));
    let path = dir.join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the tests through tests/run.sh, which installs it",
        path.display()
    );
    path
}

/// The sandbox `feature`'s database as the tools address it.
fn url(db: Db, main: &Path, tag: &str, sqlite_scheme: &str) -> String {
    match db {
        Db::Sqlite => format!(
            "{sqlite_scheme}{}",
            fs_err::canonicalize(main.join(".git/provision/sqlite/app_feature.sqlite"))
                .unwrap()
                .display()
        ),
        Db::Postgres => format!(
            "postgres://postgres@127.0.0.1:{}/t_{tag}_feature?sslmode=disable",
            server().port
        ),
    }
}

fn run(env: &TestEnv, cwd: &Path, program: &Path, args: &[&str]) -> Run {
    Run::from(
        env.command(program.to_str().unwrap(), cwd)
            .args(args)
            .output()
            .expect("the tool runs"),
    )
}

/// The sandbox of `format`'s generated folder on `db`.
fn sandbox(env: &TestEnv, db: Db, format: &str, tag: &str) -> (PathBuf, PathBuf) {
    let (files, _) = layout(db, format, DIR);
    let recipe = format!("migrations = \"{DIR}\"\nformat = \"{format}\"\n");
    let main = repo(env, db, tag, &recipe, &files);
    env.provision(&main, &["new", "feature"]).expect(0);
    (main, env.path("worktree-feature"))
}

/// A migration the tool applied itself: verify calls it stale, apply
/// records it without running it (it would fail: `later` exists).
fn adopts(env: &TestEnv, db: Db, main: &Path, wt: &Path, tag: &str, name: &str) {
    let run = env.provision(wt, &["verify"]).expect(1);
    let line = format!(
        "stale migration {name}  applied by its own tool, not yet in provision's ledger: `provision apply` adopts it\n1 finding(s)"
    );
    assert!(run.stdout.contains(&line), "{}", run.stdout);
    let run = env.provision(wt, &["apply", "--json"]).expect(0);
    let actions = run.json()["actions"].to_string();
    assert!(
        actions.contains("repair-ledger") && !actions.contains("\"migrate\""),
        "{actions}"
    );
    env.provision(wt, &["verify"]).expect(0);
    let count = query(db, main, tag, "SELECT count(*) FROM provision_migrations");
    assert_eq!(count, "33");
}

fn dbmate(db: Db, tag: &str) {
    let env = TestEnv::new();
    let (main, wt) = sandbox(&env, db, "dbmate", tag);
    let url = url(db, &main, tag, "sqlite:");
    let dbmate = tool("dbmate");
    let args = ["--url", &url, "--migrations-dir", DIR, "--no-dump-schema"];
    let status = run(
        &env,
        &wt,
        &dbmate,
        &[&args[..], &["status", "--exit-code"]].concat(),
    );
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    assert!(
        status.stdout.contains("Applied: 32") && status.stdout.contains("Pending: 0"),
        "{}",
        status.stdout
    );

    let later = "20250101000000_later.sql";
    write(
        wt.join(DIR).join(later),
        "-- migrate:up\nCREATE TABLE later (x int);\n\n-- migrate:down\nDROP TABLE later;\n",
    );
    run(&env, &wt, &dbmate, &[&args[..], &["up"]].concat()).expect(0);
    adopts(&env, db, &main, &wt, tag, later);
}

#[test]
fn dbmate_finds_nothing_pending_and_what_it_applies_is_adopted_on_sqlite() {
    dbmate(Db::Sqlite, "dbmate_s");
}

#[test]
fn dbmate_finds_nothing_pending_and_what_it_applies_is_adopted_on_postgres() {
    dbmate(Db::Postgres, "dbmate_p");
}

fn sqlx(db: Db, tag: &str) {
    let env = TestEnv::new();
    let (main, wt) = sandbox(&env, db, "sqlx", tag);
    let url = url(db, &main, tag, "sqlite://");
    let sqlx = tool("sqlx");
    let args = ["--source", DIR, "--database-url", &url];
    let info = run(
        &env,
        &wt,
        &sqlx,
        &[&["migrate", "info"][..], &args].concat(),
    )
    .expect(0);
    assert_eq!(
        info.stdout.matches("installed").count(),
        32,
        "{}",
        info.stdout
    );
    assert!(
        !info.stdout.contains("pending") && !info.stdout.contains("checksum"),
        "{}",
        info.stdout
    );

    let later = "33_later.up.sql";
    write(wt.join(DIR).join(later), "CREATE TABLE later (x int);\n");
    write(
        wt.join(DIR).join("33_later.down.sql"),
        "DROP TABLE later;\n",
    );
    // sqlx checks every applied migration's checksum before it runs one.
    run(&env, &wt, &sqlx, &[&["migrate", "run"][..], &args].concat()).expect(0);
    adopts(&env, db, &main, &wt, tag, later);
}

#[test]
fn sqlx_finds_nothing_pending_and_what_it_applies_is_adopted_on_sqlite() {
    sqlx(Db::Sqlite, "sqlx_s");
}

#[test]
fn sqlx_finds_nothing_pending_and_what_it_applies_is_adopted_on_postgres() {
    sqlx(Db::Postgres, "sqlx_p");
}

fn diesel(db: Db, tag: &str) {
    let env = TestEnv::new();
    let (main, wt) = sandbox(&env, db, "diesel", tag);
    let url = url(db, &main, tag, "");
    let diesel = tool("diesel");
    let args = ["--migration-dir", DIR, "--database-url", &url];
    let pending = run(
        &env,
        &wt,
        &diesel,
        &[&["migration", "pending"][..], &args].concat(),
    )
    .expect(0);
    assert_eq!(
        pending.stdout.trim(),
        "false",
        "{}{}",
        pending.stdout,
        pending.stderr
    );

    let later = "2025-01-01-000000_later/up.sql";
    fs_err::create_dir_all(wt.join(DIR).join("2025-01-01-000000_later")).unwrap();
    write(wt.join(DIR).join(later), "CREATE TABLE later (x int);\n");
    write(
        wt.join(DIR).join("2025-01-01-000000_later/down.sql"),
        "DROP TABLE later;\n",
    );
    run(
        &env,
        &wt,
        &diesel,
        &[&["migration", "run"][..], &args].concat(),
    )
    .expect(0);
    adopts(&env, db, &main, &wt, tag, later);
}

#[test]
fn diesel_finds_nothing_pending_and_what_it_applies_is_adopted_on_sqlite() {
    diesel(Db::Sqlite, "diesel_s");
}

#[test]
fn diesel_finds_nothing_pending_and_what_it_applies_is_adopted_on_postgres() {
    diesel(Db::Postgres, "diesel_p");
}

/// A command's standard output, trimmed.
fn output(env: &TestEnv, cwd: &Path, program: &str, args: &[&str]) -> String {
    let run = Run::from(env.command(program, cwd).args(args).output().unwrap()).expect(0);
    run.stdout.trim().to_string()
}

/// Prisma's documented `_prisma_migrations`, with the SHA-256 of each
/// `migration.sql` as `sha256sum` computes it.
#[test]
fn prismas_ledger_has_its_documented_columns_and_checksums() {
    for (db, tag) in [(Db::Sqlite, "prisma_s"), (Db::Postgres, "prisma_p")] {
        let env = TestEnv::new();
        let (main, wt) = sandbox(&env, db, "prisma", tag);
        let columns = match db {
            Db::Sqlite => {
                "SELECT group_concat(name, ',') FROM pragma_table_info('_prisma_migrations')"
            }
            Db::Postgres => {
                "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) \
                             FROM information_schema.columns WHERE table_name = '_prisma_migrations'"
            }
        };
        assert_eq!(
            query(db, &main, tag, columns),
            "id,checksum,finished_at,migration_name,logs,rolled_back_at,started_at,applied_steps_count"
        );
        for folder in ["20240101000000_m0", "20240101000017_m17"] {
            let file = wt.join(DIR).join(folder).join("migration.sql");
            let sum = output(&env, &wt, "sha256sum", &[file.to_str().unwrap()]);
            let sql = format!(
                "SELECT checksum FROM _prisma_migrations WHERE migration_name = '{folder}'"
            );
            assert_eq!(
                query(db, &main, tag, &sql),
                sum.split(' ').next().unwrap(),
                "{folder}"
            );
        }
        let ids = query(
            db,
            &main,
            tag,
            "SELECT count(DISTINCT id) FROM _prisma_migrations WHERE length(id) = 36",
        );
        assert_eq!(ids, "32");
    }
}

/// Flyway's `flyway_schema_history`, with its CRC-32 over the file's
/// lines as Python's zlib computes it.
#[test]
fn flyways_history_has_its_ranks_versions_scripts_and_checksums() {
    let env = TestEnv::new();
    let (db, tag) = (Db::Postgres, "flyway_h");
    let (main, wt) = sandbox(&env, db, "flyway", tag);
    let crc = "import sys, zlib\n\
               text = open(sys.argv[1], encoding='utf-8').read()\n\
               c = zlib.crc32(''.join(text.splitlines()).encode())\n\
               print(c - 2**32 if c >= 2**31 else c)\n";
    for (rank, version, script) in [
        ("1", "1", "V1__m0.sql"),
        ("10", "10", "V10__m9.sql"),
        ("33", "", "R__views.sql"),
    ] {
        let file = wt.join(DIR).join(script);
        let want = output(&env, &wt, "python3", &["-c", crc, file.to_str().unwrap()]);
        let sql = format!(
            "SELECT concat_ws('|', installed_rank, coalesce(version, ''), description, type, checksum, success) \
             FROM flyway_schema_history WHERE script = '{script}'"
        );
        let description = script.split("__").nth(1).unwrap().trim_end_matches(".sql");
        assert_eq!(
            query(db, &main, tag, &sql),
            format!("{rank}|{version}|{description}|SQL|{want}|t"),
            "{script}"
        );
    }
}

/// golang-migrate keeps one row, the last version: a migration it applied
/// itself shows as that row moving on, and is adopted.
#[test]
fn a_migration_golang_migrate_applied_itself_is_adopted() {
    let env = TestEnv::new();
    let (db, tag) = (Db::Postgres, "golang_adopt");
    let (main, wt) = sandbox(&env, db, "golang-migrate", tag);
    let later = "33_later.up.sql";
    write(wt.join(DIR).join(later), "CREATE TABLE later (x int);\n");
    let mut client = server().client(&format!("t_{tag}_feature"));
    // What `migrate up` does: run the file, then set the version.
    client
        .batch_execute(&format!(
            "{}DELETE FROM schema_migrations; INSERT INTO schema_migrations(version, dirty) VALUES (33, false);",
            read(wt.join(DIR).join(later))
        ))
        .unwrap();
    adopts(&env, db, &main, &wt, tag, later);
}
