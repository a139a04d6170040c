//! PostgreSQL on a real server: one database per sandbox, created with
//! `CREATE DATABASE` (optionally from a template), marked with a
//! `COMMENT ON DATABASE`, its ledger a table inside it.
//!
//! Identifiers are always quoted with `quote_ident` and values go as bind
//! parameters; the one statement that cannot take a parameter (`COMMENT`)
//! gets a literal quoted with `quote_literal`.

use std::time::Duration;

use postgres::config::Host;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};

mod creating;
mod idle;
mod ledger;
mod migrate;
mod pgpass;

use super::ledgers::{Dialect, ToolLedger};
use super::store::{self, Entry, Stored};
use super::{Database, DbError, HalfMade, Ledger, MARK, Mark};
use crate::db::migrations::{Applied, Format, Migration};
use crate::recipe::config::{DatabaseKind, DatabaseSettings};
use crate::recipe::trust;

/// Long enough for a loaded server, short enough that a stopped one is
/// reported while the user still waits for it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Schema-qualified, as every name provision uses inside a sandbox: a
/// migration may empty `search_path` (pg_dump's files start so).
const LEDGER: &str = "
    CREATE TABLE IF NOT EXISTS public.provision_migrations(
        id         bigint GENERATED ALWAYS AS IDENTITY,
        name       text PRIMARY KEY,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )";

pub struct Postgres {
    name: String,
    mark: Mark,
    template: Option<String>,
    /// The maintenance database's settings; an error is kept until the
    /// first connection so that only commands that need the server fail.
    config: Result<Config, (&'static str, String)>,
    admin: Option<Client>,
    sandbox: Option<Client>,
    /// The migration tool's ledger kept beside provision's, once
    /// `tool_ledger` names the layout (flat folders have none here).
    tool: Option<ToolLedger>,
    /// The main checkout and `[database] url`, when the recipe names the
    /// server: a password from the password file goes there only once
    /// this user approved the url (`provision trust`).
    recipe_server: Option<(String, String)>,
}

impl Postgres {
    pub fn new(settings: &DatabaseSettings, name: &str, mark: Mark, main: &str) -> Self {
        Postgres {
            name: name.to_string(),
            mark,
            recipe_server: settings.url.clone().map(|url| (main.to_string(), url)),
            template: settings.template.clone(),
            config: server_config(settings.url.as_deref()),
            admin: None,
            sandbox: None,
            tool: None,
        }
    }

    /// Connects to the server ahead of its first use in this process
    /// (`new` does while git checks out), and parks the connection, or
    /// the failure, for that use (see `idle`).
    pub fn connect_ahead(settings: &DatabaseSettings, main: &str) {
        let mark = Mark {
            clone: String::new(),
            common_dir: Default::default(),
            worktree: String::new(),
        };
        let ahead = Postgres::new(settings, "postgres", mark, main);
        idle::park(ahead.server_key(), ahead.connect(None));
    }

    fn fail(&self, action: &str) -> impl Fn(postgres::Error) -> DbError + use<> {
        failed(&self.name, action)
    }

    fn connect(&self, dbname: Option<&str>) -> Result<Client, DbError> {
        let mut config = match &self.config {
            Ok(config) => config.clone(),
            Err((from, message)) => {
                return Err(DbError::Settings {
                    from,
                    message: message.clone(),
                });
            }
        };
        if let Some(dbname) = dbname {
            config.dbname(dbname);
        }
        // As libpq, an empty password is none.
        let password = match config.get_password() {
            Some(password) if !password.is_empty() => None,
            _ => pgpass::lookup(&config),
        };
        let refused = match (password, &self.recipe_server) {
            (None, _) => None,
            (Some(password), None) => {
                config.password(password);
                None
            }
            (Some(password), Some((main, url))) => match trust::require_server(main, url) {
                Ok(()) => {
                    config.password(password);
                    None
                }
                Err(refused) => Some(refused),
            },
        };
        config.connect(NoTls).map_err(|source| match refused {
            // The server asked for the password the file holds.
            Some(refused) if asked_for_password(&source) => DbError::Untrusted(refused),
            _ => DbError::Connect {
                server: describe(&config),
                source,
            },
        })
    }

    /// A connection to the maintenance database, for creating and dropping:
    /// the one an earlier `Postgres` of this process parked, if any.
    fn admin(&mut self) -> Result<&mut Client, DbError> {
        if self.admin.is_none() {
            let client = match idle::take(&self.server_key()) {
                Some(parked) => parked?,
                None => self.connect(None)?,
            };
            self.admin = Some(client);
        }
        Ok(self.admin.as_mut().expect("just connected"))
    }

    /// Whether a session of the server is still at a statement naming
    /// database `name` (a copy whose client was killed goes on).
    fn copying(&mut self, name: &str) -> Result<bool, DbError> {
        let row = self
            .admin()?
            .query_opt(
                "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
                 AND state <> 'idle' AND strpos(query, $1) > 0",
                &[&name],
            )
            .map_err(failed(name, "look for its copy"))?;
        Ok(row.is_some())
    }

    /// Spare copies marked as a sandbox's of this clone, not renamed.
    fn half_taken_spares(&mut self) -> Result<Vec<String>, DbError> {
        let spares = format!("{}%", store::SPARE.replace('_', "\\_"));
        let sandboxes = format!("{MARK} clone={} worktree=%", self.mark.clone);
        let store_mark = self.mark.text();
        let fail = failed("postgres", "look for spare copies half taken");
        let rows = self
            .admin()?
            .query(
                "SELECT datname FROM pg_database WHERE datname LIKE $1 \
                 AND shobj_description(oid, 'pg_database') LIKE $2 \
                 AND shobj_description(oid, 'pg_database') <> $3",
                &[&spares, &sandboxes, &store_mark],
            )
            .map_err(fail)?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|name| store::spare_of(name).is_some())
            .collect())
    }

    /// Which server and settings a maintenance connection was made with.
    fn server_key(&self) -> String {
        format!("{:?} {:?}", self.config, self.recipe_server)
    }

    /// A connection to the sandbox's own database, for its ledger.
    fn sandbox(&mut self) -> Result<&mut Client, DbError> {
        if self.sandbox.is_none() {
            let name = self.name.clone();
            self.sandbox = Some(self.connect(Some(&name))?);
        }
        Ok(self.sandbox.as_mut().expect("just connected"))
    }

    fn unmarked(&self) -> DbError {
        DbError::Unmarked {
            name: self.name.clone(),
            location: self.location(),
        }
    }

    /// Runs `sql` (a drop or a rename of database `name`) once no other
    /// session is connected to it; one may connect between the two
    /// statements, so it is tried twice.
    fn end_sessions_then(&mut self, name: &str, sql: &str, action: &str) -> Result<(), DbError> {
        let fail = failed(name, action);
        let end_sessions = failed(name, "end its sessions");
        let admin = self.admin()?;
        let mut result = Ok(());
        for _ in 0..2 {
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .map_err(&end_sessions)?;
            result = admin.batch_execute(sql);
            match &result {
                Err(e) if e.code() == Some(&SqlState::OBJECT_IN_USE) => continue,
                _ => break,
            }
        }
        result.map_err(fail)
    }

    /// `CREATE DATABASE name [TEMPLATE template]`, marked `mark`: made
    /// under a name of its own, marked there and renamed into place (see
    /// `creating`), so that no crash leaves an unmarked database under
    /// `name`. A template someone is connected to is waited for a while
    /// when `wait_for_template`.
    fn create_marked(
        &mut self,
        name: &str,
        template: Option<&str>,
        mark: &str,
        wait_for_template: bool,
    ) -> Result<Made, DbError> {
        let creating = creating::Creating::begin(&self.mark.common_dir, &self.mark.clone)?;
        let made = self.create_as(&creating.name, name, template, mark, wait_for_template);
        // A copy that is not in place and may still be there (its drop
        // failed too) keeps its record, for `gc`.
        let placed = matches!(made, Ok(Made::Made));
        if placed || self.named(&creating.name).is_ok_and(|there| !there) {
            creating.finish();
        }
        made
    }

    fn create_as(
        &mut self,
        temporary: &str,
        name: &str,
        template: Option<&str>,
        mark: &str,
        wait_for_template: bool,
    ) -> Result<Made, DbError> {
        let mut create = format!("CREATE DATABASE {}", quote_ident(temporary));
        if let Some(template) = template {
            create.push_str(&format!(" TEMPLATE {}", quote_ident(template)));
        }
        let mut tries = 0;
        loop {
            let Err(e) = self.admin()?.batch_execute(&create) else {
                break;
            };
            match template {
                Some(template) if e.code() == Some(&SqlState::OBJECT_IN_USE) => {
                    if wait_for_template && tries < 100 {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    let template = template.to_string();
                    return Err(DbError::TemplateBusy { template });
                }
                _ => return Err(failed(name, "create")(e)),
            }
        }
        let comment = format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(temporary),
            quote_literal(mark)
        );
        let rename = format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(temporary),
            quote_ident(name)
        );
        // Nobody should be connected to a database of provision's own
        // name, but a monitor may connect to every new one.
        let placed = self
            .admin()?
            .batch_execute(&comment)
            .map_err(failed(temporary, "mark"))
            .and_then(|()| {
                self.end_sessions_then(temporary, &rename, &format!("rename to {name}"))
            });
        let Err(e) = placed else {
            return Ok(Made::Made);
        };
        let drop = format!("DROP DATABASE {}", quote_ident(temporary));
        let _ = self.end_sessions_then(temporary, &drop, "drop");
        match code(&e) {
            Some(&SqlState::DUPLICATE_DATABASE) => Ok(Made::Taken),
            _ => Err(e),
        }
    }

    /// Whether a database `name` is there, whoever made it.
    fn named(&mut self, name: &str) -> Result<bool, DbError> {
        let row = self
            .admin()?
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .map_err(failed(name, "look up"))?;
        Ok(row.is_some())
    }

    /// The mark of database `name`, if it has one.
    fn mark_of(&mut self, name: &str) -> Result<Option<String>, DbError> {
        let fail = self.fail("read mark");
        let row = self
            .admin()?
            .query_opt(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .map_err(fail)?;
        Ok(row.and_then(|r| r.get(0)))
    }

    /// Marks the database as this sandbox's.
    fn comment(&mut self) -> Result<(), DbError> {
        let comment = format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(&self.name),
            quote_literal(&self.mark.text())
        );
        let fail = self.fail("mark");
        self.admin()?.batch_execute(&comment).map_err(fail)
    }

    /// The database's comment, where provision keeps its mark.
    fn found_mark(&mut self) -> Result<Option<String>, DbError> {
        let name = self.name.clone();
        self.mark_of(&name)
    }

    /// Keys the advisory lock that serialises migrations on this database.
    fn lock_key(&self) -> i64 {
        let hash = blake3::hash(format!("provision:migrate:{}", self.name).as_bytes());
        i64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
    }
}

/// What `create_marked` came to.
enum Made {
    Made,
    /// The name was taken meanwhile: the copy is dropped again.
    Taken,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(client) = self.admin.take() {
            idle::park(self.server_key(), Ok(client));
        }
    }
}

impl Database for Postgres {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Postgres
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        super::location(DatabaseKind::Postgres, &self.name)
    }

    fn exists(&mut self) -> Result<bool, DbError> {
        let name = self.name.clone();
        self.named(&name)
    }

    fn is_marked(&mut self) -> Result<bool, DbError> {
        // The whole mark, clone and worktree included: another clone of
        // this repository may use the same server.
        Ok(self.found_mark()?.is_some_and(|m| self.mark.is_ours(&m)))
    }

    fn create(&mut self) -> Result<(), DbError> {
        if self.exists()? {
            return if self.is_marked()? {
                Ok(())
            } else {
                Err(self.unmarked())
            };
        }
        let (name, mark, template) = (self.name.clone(), self.mark.text(), self.template.clone());
        match self.create_marked(&name, template.as_deref(), &mark, false)? {
            Made::Made => Ok(()),
            // Made meanwhile by someone else: ours only with our mark.
            Made::Taken if self.is_marked()? => Ok(()),
            Made::Taken => Err(self.unmarked()),
        }
    }

    fn remark(&mut self) -> Result<(), DbError> {
        match self.found_mark()? {
            Some(found) if self.mark.is_by_path(&found) => self.comment(),
            _ => Ok(()),
        }
    }

    fn ledger(&mut self) -> Result<Ledger, DbError> {
        let (name, tool) = (self.name.clone(), self.tool.clone());
        ledger::read(self.sandbox()?, &name, tool.as_ref())
    }

    fn tool_ledger(&mut self, format: Format, files: &[Migration]) {
        self.tool = ToolLedger::new(format, Dialect::Postgres, files);
    }

    fn repair(&mut self, known: &[Applied]) -> Result<(), DbError> {
        let (name, tool) = (self.name.clone(), self.tool.clone());
        ledger::repair(self.sandbox()?, &name, tool.as_ref(), known)
    }

    /// Under a session-level advisory lock: a second `apply` on this
    /// database waits, then finds the migrations recorded.
    fn migrate_all(
        &mut self,
        pending: &[&Migration],
        starting: &mut dyn FnMut(&Migration),
    ) -> Result<(), DbError> {
        let key = self.lock_key();
        let fail = self.fail("lock for migrating");
        let tool = self.tool.clone();
        let client = self.sandbox()?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&key])
            .map_err(&fail)?;
        let result = migrate::all(client, tool.as_ref(), pending, starting);
        // A failed statement may leave the session in a failed
        // transaction; unlocking needs it gone.
        let _ = client.batch_execute("ROLLBACK");
        let _ = client.batch_execute(migrate::RESET);
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .map_err(fail)?;
        result
    }

    /// `CREATE DATABASE … TEMPLATE` the entry. PostgreSQL copies a
    /// template only while nobody is connected to it, and another `new`
    /// may be copying the same entry: tried again for a while.
    fn create_from(&mut self, entry: &Entry) -> Result<bool, DbError> {
        if self.mark_of(&entry.name)? != Some(entry.mark.clone()) || self.exists()? {
            return Ok(false);
        }
        let (name, mark) = (self.name.clone(), self.mark.text());
        let made = self.create_marked(&name, Some(&entry.name), &mark, true)?;
        Ok(matches!(made, Made::Made))
    }

    /// This database as the template of the entry: nobody may be connected
    /// to it meanwhile, so provision's own session ends first, and an
    /// entry another `new` made first is left as it is.
    fn save_as(&mut self, entry: &Entry) -> Result<(), DbError> {
        self.sandbox = None;
        // What a migration may have set on the database itself, which
        // `CREATE DATABASE … TEMPLATE` does not copy: a sandbox made from
        // the entry would lack it while its ledger says it ran.
        let name = self.name.clone();
        let fail = self.fail("look at its settings");
        let own = self
            .admin()?
            .query_opt(
                "SELECT 1 FROM pg_database d WHERE d.datname = $1 AND ( \
                 d.datacl IS NOT NULL OR d.datconnlimit <> -1 OR NOT d.datallowconn \
                 OR d.datdba <> (SELECT oid FROM pg_roles WHERE rolname = current_user) \
                 OR EXISTS (SELECT 1 FROM pg_db_role_setting s WHERE s.setdatabase = d.oid))",
                &[&name],
            )
            .map_err(fail)?;
        if own.is_some() {
            return Err(DbError::NotCopied { name });
        }
        if self.named(&entry.name)? {
            return Ok(());
        }
        // Taken meanwhile: another `new` stored the same state.
        self.create_marked(&entry.name, Some(&name), &entry.mark, false)
            .map(|_| ())
    }

    fn take_spare(&mut self, entry: &Entry) -> Result<bool, DbError> {
        let Some(hash) = entry.name.strip_prefix(store::PREFIX) else {
            return Ok(false);
        };
        let pattern = format!("{}{hash}\\_%", store::SPARE.replace('_', "\\_"));
        let store_mark = &entry.mark;
        let fail = self.fail("look for a spare copy");
        let spares: Vec<String> = self
            .admin()?
            .query(
                "SELECT datname FROM pg_database WHERE datname LIKE $1 \
                 AND shobj_description(oid, 'pg_database') = $2 ORDER BY oid",
                &[&pattern, store_mark],
            )
            .map_err(fail)?
            .iter()
            .map(|r| r.get(0))
            .filter(|name: &String| store::spare_of(name).as_deref() == Some(entry.name.as_str()))
            .collect();
        let mark = self.mark.text();
        for spare in spares {
            // Marked as this sandbox's and renamed to its name in one
            // statement list, which the server runs as one transaction:
            // a crash leaves the spare as it was or the sandbox's database
            // whole, never one half taken. Another `new` taking the same
            // spare meanwhile waits for this one's lock on it and then no
            // longer finds it (its mark never lands on this database).
            let take = format!(
                "COMMENT ON DATABASE {} IS {}; ALTER DATABASE {} RENAME TO {}",
                quote_ident(&spare),
                quote_literal(&mark),
                quote_ident(&spare),
                quote_ident(&self.name)
            );
            if self.admin()?.batch_execute(&take).is_ok() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn make_spare(&mut self) -> Result<(), DbError> {
        let Some(hash) = self.name.strip_prefix(store::PREFIX) else {
            return Ok(());
        };
        let pattern = format!("{}{hash}\\_%", store::SPARE.replace('_', "\\_"));
        let fail = self.fail("look for a spare copy");
        // Only a marked one counts: no `new` takes an unmarked one.
        let mark = self.mark.text();
        let there = self
            .admin()?
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname LIKE $1 \
                 AND shobj_description(oid, 'pg_database') = $2",
                &[&pattern, &mark],
            )
            .map_err(&fail)?;
        if there.is_some() || !self.is_marked()? {
            return Ok(());
        }
        let (spare, entry, mark) = (
            store::spare_name(&self.name),
            self.name.clone(),
            self.mark.text(),
        );
        self.create_marked(&spare, Some(&entry), &mark, false)
            .map(|_| ())
    }

    fn store_entries(&mut self, mark: &str) -> Result<Vec<Stored>, DbError> {
        let fail = self.fail("list the store");
        let like = |prefix: &str| format!("{}%", prefix.replace('_', "\\_"));
        let (entries, spares) = (like(store::PREFIX), like(store::SPARE));
        let rows = self
            .admin()?
            .query(
                "SELECT datname, pg_database_size(oid), oid::bigint FROM pg_database \
                 WHERE (datname LIKE $1 OR datname LIKE $2) \
                 AND shobj_description(oid, 'pg_database') = $3",
                &[&entries, &spares, &mark],
            )
            .map_err(fail)?;
        Ok(rows
            .iter()
            .map(|r| Stored {
                name: r.get(0),
                bytes: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                newness: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            })
            .filter(|s| store::is_entry(&s.name) || store::spare_of(&s.name).is_some())
            .collect())
    }

    /// One lookup by name: `pg_database_size`, which `store_entries`
    /// needs, walks each database's files (5 ms for a few entries of 200
    /// tables).
    fn stored_among(&mut self, names: &[String], mark: &str) -> Result<Vec<String>, DbError> {
        let fail = self.fail("look up the store");
        let rows = self
            .admin()?
            .query(
                "SELECT datname FROM pg_database WHERE datname = ANY($1) \
                 AND shobj_description(oid, 'pg_database') = $2",
                &[&names, &mark],
            )
            .map_err(fail)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Also a spare copy a killed `new` marked as its sandbox's but had not
    /// yet renamed (`take_spare`): a spare's name with a mark of this
    /// clone's other than the store's. One a live `new` is taking fails
    /// its rename, and that `new` makes its database another way.
    fn drop_abandoned(&mut self, dry_run: bool) -> Result<Vec<HalfMade>, DbError> {
        let common_dir = self.mark.common_dir.clone();
        let mut found = Vec::new();
        for name in creating::abandoned(&common_dir, &self.mark.clone)? {
            // Whether the server still copies it is asked first: a copy it
            // finishes between the two questions is then found there, never
            // taken for one that was not made.
            let copying = !dry_run && self.copying(&name)?;
            if self.named(&name)? {
                found.push(name);
            } else if !dry_run && !copying {
                // Never made, or renamed into place before its record
                // went. One the server still copies for a killed client is
                // not there yet: its record waits for the next `gc`.
                creating::forget(&common_dir, &name)?;
            }
        }
        // Only a recipe with a store has spares.
        if self.template.is_none() {
            found.extend(self.half_taken_spares()?);
        }
        if !dry_run {
            creating::sweep_unnamed(&common_dir)?;
        }
        let mut out = Vec::new();
        for name in found {
            let done = if dry_run {
                "would drop it".to_string()
            } else {
                let drop = format!("DROP DATABASE IF EXISTS {}", quote_ident(&name));
                match self.end_sessions_then(&name, &drop, "drop it, left half made") {
                    Ok(()) => {
                        if creating::is_name(&name) {
                            creating::forget(&common_dir, &name)?;
                        }
                        "dropped".to_string()
                    }
                    Err(e) => format!("kept: {}", crate::output::one_line(&e)),
                }
            };
            out.push(HalfMade { name, done });
        }
        Ok(out)
    }

    /// Renamed, its comment (the mark) kept: PostgreSQL renames only a
    /// database nobody is connected to, so its sessions are ended first.
    fn set_aside(&mut self, aside: &str) -> Result<(), DbError> {
        if !self.is_marked()? {
            return Err(self.unmarked());
        }
        self.sandbox = None;
        let name = self.name.clone();
        let rename = format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(&name),
            quote_ident(aside)
        );
        self.end_sessions_then(&name, &rename, "set aside")
    }

    fn in_flight(&mut self) -> Result<bool, DbError> {
        let name = self.name.clone();
        self.copying(&name)
    }

    fn drop_database(&mut self) -> Result<(), DbError> {
        if !self.exists()? {
            return Ok(());
        }
        if !self.is_marked()? {
            return Err(self.unmarked());
        }
        self.sandbox = None;
        let name = self.name.clone();
        let drop = format!("DROP DATABASE {}", quote_ident(&name));
        self.end_sessions_then(&name, &drop, "drop")
    }
}

/// An error of a statement on database `name`.
fn failed(name: &str, action: &str) -> impl Fn(postgres::Error) -> DbError + use<> {
    let (name, action) = (name.to_string(), action.to_string());
    move |source| DbError::Postgres {
        name: name.clone(),
        action: action.clone(),
        source,
    }
}

/// The server's code for the statement an error is of, if any.
fn code(error: &DbError) -> Option<&SqlState> {
    match error {
        DbError::Postgres { source, .. } => source.code(),
        _ => None,
    }
}

/// The server's settings: `url`, else `DATABASE_URL`, else the `PG*`
/// variables libpq reads.
fn server_config(url: Option<&str>) -> Result<Config, (&'static str, String)> {
    let mut config = if let Some(url) = url {
        parse_url(url, "[database] url")?
    } else if let Some(url) = env("DATABASE_URL") {
        parse_url(&url, "DATABASE_URL")?
    } else {
        from_pg_env()
    };
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        config.dbname("postgres");
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("provision");
    Ok(config)
}

/// Whether the connection failed because the server asked for a password
/// provision had none for (the client's "password missing").
fn asked_for_password(error: &postgres::Error) -> bool {
    std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source())
        .any(|e| e.to_string() == "password missing")
}

fn parse_url(url: &str, from: &'static str) -> Result<Config, (&'static str, String)> {
    url.parse::<Config>().map_err(|e| (from, e.to_string()))
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn from_pg_env() -> Config {
    let mut config = Config::new();
    if let Some(host) = env("PGHOST") {
        for host in host.split(',') {
            config.host(host);
        }
    }
    if let Some(port) = env("PGPORT").and_then(|p| p.parse().ok()) {
        config.port(port);
    }
    if let Some(user) = env("PGUSER") {
        config.user(&user);
    }
    if let Some(password) = env("PGPASSWORD") {
        config.password(password);
    }
    if let Some(dbname) = env("PGDATABASE") {
        config.dbname(&dbname);
    }
    config
}

/// `host:port` (or the socket path) for errors; never the password.
fn describe(config: &Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => format!("{name}:{port}"),
            Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
        })
        .collect();
    hosts.join(", ")
}

/// The server's own words for a failed statement.
fn server_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => e.to_string(),
    }
}

/// An identifier in double quotes, inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal in single quotes, inner quotes doubled. Safe under
/// `standard_conforming_strings` (on by default since PostgreSQL 9.1); a
/// backslash makes it an escape string instead, so none can slip through.
pub fn quote_literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\'b"), "E'a\\\\''b'");
    }

    #[test]
    fn url_errors_name_their_source_and_servers_their_port() {
        let (from, _) = server_config(Some("postgres://u@h:notaport/d")).unwrap_err();
        assert_eq!(from, "[database] url");
        let config = server_config(Some("postgres://u@db.example:6543/d")).unwrap();
        assert_eq!(describe(&config), "db.example:6543");
    }
}
