//! The command kind: templated shell commands drive any other tool (wrangler
//! D1, a MySQL client, a hosted branching CLI).
//!
//! The tool behind the commands keeps no checksums and carries no mark of
//! provision's, so provision keeps both itself, in a record under the git
//! common dir (`provision/command/<db>.json`): written by `create` (the
//! mark), extended after every successful `migrate` (the ledger: names and
//! checksums of the files handed over), removed by drop. A database that
//! `exists` reports but that has no record naming this repository and
//! worktree was not made by provision for this sandbox.
//!
//! The mark lives beside the database, not in it, so it can outlive it: a
//! record whose database `exists` reports gone is stale, and would vouch
//! for the next database of that name, someone else's. `create` and
//! `drop_database` delete such a record instead of trusting it.
//! The record, not the lock, is the ledger because the lock is written last:
//! a run that fails half-way must still remember what it did apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::{self, Entry, Stored};
use super::{Database, DbError, Ledger, LedgerRow, MARK, Mark};
use crate::db::migrations::{Applied, Migration};
use crate::fsutil;
use crate::recipe::config::{Commands, DatabaseKind, DatabaseSettings};
use crate::recipe::template;
use crate::shell::{Ran, Shell};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    mark: String,
    migrations: Vec<Applied>,
}

pub struct CommandDb {
    name: String,
    mark: Mark,
    commands: Commands,
    /// The worktree as the sandbox knows it: `{worktree}` and
    /// `PROVISION_WORKTREE`, even once its folder is gone.
    root: PathBuf,
    main: String,
    record_path: PathBuf,
    values: BTreeMap<&'static str, String>,
    env: BTreeMap<String, String>,
}

impl CommandDb {
    pub fn new(settings: &DatabaseSettings, name: &str, place: &super::Place) -> Self {
        let mut values = place.values.clone();
        values.insert("db", name.to_string());
        CommandDb {
            name: name.to_string(),
            mark: place.mark.clone(),
            commands: settings.commands.clone(),
            root: place.worktree.to_path_buf(),
            main: values.get("main").cloned().unwrap_or_default(),
            record_path: place
                .common_dir
                .join("provision")
                .join("command")
                .join(format!("{name}.json")),
            values,
            env: place.env.clone(),
        }
    }

    /// The record file, whoever's it is.
    fn any_record(&self) -> Result<Option<Record>, DbError> {
        read_record(&self.record_path)
    }

    /// The record of the store's entry `name` beside this one's.
    fn entry_path(&self, name: &str) -> PathBuf {
        self.record_path.with_file_name(format!("{name}.json"))
    }

    /// The record, if its whole mark names this clone and worktree
    /// (another worktree's record for the same name is not this one's).
    fn record(&self) -> Result<Option<Record>, DbError> {
        Ok(self.any_record()?.filter(|r| self.mark.is_ours(&r.mark)))
    }

    fn remove_record(&self) -> Result<(), DbError> {
        match fs_err::remove_file(&self.record_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Writes `record` with the mark by identity (one by path is marked
    /// anew with the next write).
    fn write_record(&self, record: &Record) -> Result<(), DbError> {
        let record = Record {
            mark: self.mark.text(),
            migrations: record.migrations.clone(),
        };
        write_record_at(&self.record_path, &record)
    }

    fn command(&self, key: &'static str, why: &'static str) -> Result<&str, DbError> {
        let command = match key {
            "create" => &self.commands.create,
            "migrate" => &self.commands.migrate,
            "exists" => &self.commands.exists,
            _ => &self.commands.drop,
        };
        command.as_deref().ok_or(DbError::NoCommand(key, why))
    }

    /// Whether `template` reaches the worktree folder: through
    /// `{worktree}`, `PROVISION_WORKTREE`, or an env override whose value
    /// holds the worktree's path.
    fn uses_worktree(&self, template: &str) -> bool {
        let keys = template::keys(template).unwrap_or_default();
        if keys.iter().any(|k| k == "worktree") || template.contains("PROVISION_WORKTREE") {
            return true;
        }
        let root = self.root.to_string_lossy();
        self.env.iter().any(|(key, value)| {
            value.contains(&*root)
                && (template.contains(&format!("${key}"))
                    || template.contains(&format!("${{{key}}}")))
        })
    }

    /// Runs `template` through `sh -c` in the worktree root (see
    /// `shell`); `quiet` holds its output back, for questions like `exists`.
    ///
    /// Once the worktree folder is gone (`gc` of an orphan) a command runs in
    /// the main checkout, but one that names the worktree is refused: its
    /// path may be reused by now, and a `cd` to it that fails would leave
    /// the command acting on the main checkout.
    fn run(
        &self,
        template: &str,
        value: Option<(&'static str, &str)>,
        extra_env: &[(&str, String)],
        quiet: bool,
    ) -> Result<Ran, DbError> {
        let mut values = self.values.clone();
        if let Some((key, value)) = value {
            values.insert(key, value.to_string());
        }
        let cwd = if self.root.is_dir() {
            self.root.as_path()
        } else if self.uses_worktree(template) {
            return Err(DbError::WorktreeGone {
                command: template.to_string(),
                worktree: path_text(&self.root),
            });
        } else {
            Path::new(&self.main)
        };
        let shell = Shell {
            template,
            cwd,
            values: &values,
            env: &self.env,
            worktree: &self.root,
            extra_env,
            quiet,
        };
        Ok(shell.run()?)
    }

    /// Runs a command that must succeed.
    fn must(
        &self,
        what: &'static str,
        template: &str,
        value: Option<(&'static str, &str)>,
        extra_env: &[(&str, String)],
    ) -> Result<(), DbError> {
        let ran = self.run(template, value, extra_env, false)?;
        if ran.code == Some(0) {
            return Ok(());
        }
        Err(failure(what, template, ran))
    }
}

/// A record file (a sandbox's, or a store entry's), whoever's it is.
fn read_record(path: &Path) -> Result<Option<Record>, DbError> {
    let text = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let record: Record = serde_json::from_str(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    Ok(Some(record).filter(|r| r.mark.starts_with(MARK)))
}

fn write_record_at(path: &Path, record: &Record) -> Result<(), DbError> {
    let mut text = serde_json::to_string_pretty(record).expect("a record serializes");
    text.push('\n');
    Ok(fsutil::write_atomically(path, text.as_bytes())?)
}

fn failure(what: &'static str, template: &str, ran: Ran) -> DbError {
    DbError::Command {
        what,
        command: template.to_string(),
        output: ran.last_output(),
        status: ran.status,
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

impl Database for CommandDb {
    fn kind(&self) -> DatabaseKind {
        DatabaseKind::Command
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        super::location(DatabaseKind::Command, &self.name)
    }

    /// The `exists` command's answer (status 0: yes, 1: no, anything else
    /// is an error), else whether a record is there (another worktree's
    /// too: then it exists but is not this sandbox's).
    fn exists(&mut self) -> Result<bool, DbError> {
        let Some(template) = self.commands.exists.clone() else {
            return Ok(self.any_record()?.is_some());
        };
        let ran = self.run(&template, None, &[], true)?;
        match ran.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(failure("exists", &template, ran)),
        }
    }

    fn is_marked(&mut self) -> Result<bool, DbError> {
        Ok(self.record()?.is_some())
    }

    fn create(&mut self) -> Result<(), DbError> {
        if self.commands.exists.is_some() && self.exists()? {
            return if self.is_marked()? {
                Ok(())
            } else {
                Err(DbError::Unmarked {
                    name: self.name.clone(),
                    location: self.location(),
                })
            };
        }
        // The database is absent, so a record left over is stale. It goes
        // first: if `create` fails, none may vouch for what comes next.
        self.remove_record()?;
        if let Some(template) = self.commands.create.clone() {
            self.must("create", &template, None, &[])?;
        }
        self.write_record(&Record {
            mark: self.mark.text(),
            migrations: Vec::new(),
        })
    }

    fn ledger(&mut self) -> Result<Ledger, DbError> {
        let migrations = self.record()?.map(|r| r.migrations).unwrap_or_default();
        Ok(Ledger {
            rows: migrations
                .into_iter()
                .map(|m| LedgerRow {
                    name: m.name,
                    checksum: Some(m.checksum),
                    missing_from: None,
                })
                .collect(),
        })
    }

    /// A `migrate` command that names `{migration}` runs once per file; one
    /// that does not (a tool that applies a whole folder, like `wrangler d1
    /// migrations apply`) runs once for all of them, which it finds listed
    /// in `PROVISION_MIGRATIONS`, one path per line.
    fn migrate_all(
        &mut self,
        pending: &[&Migration],
        starting: &mut dyn FnMut(&Migration),
    ) -> Result<(), DbError> {
        if pending.is_empty() {
            return Ok(());
        }
        let template = self.command("migrate", "apply migrations")?.to_string();
        let Some(mut record) = self.record()? else {
            return Err(DbError::Unmarked {
                name: self.name.clone(),
                location: self.location(),
            });
        };
        let per_file = template::keys(&template)
            .map(|keys| keys.iter().any(|k| k == "migration"))
            .unwrap_or(false);
        let batches: Vec<&[&Migration]> = if per_file {
            pending.chunks(1).collect()
        } else {
            vec![pending]
        };
        for batch in batches {
            for migration in batch {
                starting(migration);
            }
            let paths: Vec<String> = batch.iter().map(|m| path_text(&m.path)).collect();
            let env = [("PROVISION_MIGRATIONS", paths.join("\n"))];
            // One file is also `{migration}` and `PROVISION_MIGRATION`.
            let one = (batch.len() == 1).then(|| paths[0].clone());
            let one = one.as_deref().map(|path| ("migration", path));
            self.must("migrate", &template, one, &env)?;
            record.migrations.extend(batch.iter().map(|m| m.record()));
            self.write_record(&record)?;
        }
        Ok(())
    }

    /// `restore`, when the entry's record carries the store's mark: the
    /// record of this database then lists what the entry's does.
    fn create_from(&mut self, entry: &Entry) -> Result<bool, DbError> {
        let Some(template) = self.commands.restore.clone() else {
            return Ok(false);
        };
        let Some(stored) =
            read_record(&self.entry_path(&entry.name))?.filter(|r| r.mark == entry.mark)
        else {
            return Ok(false);
        };
        // Without `exists`, a database provision has no record of (one a
        // recipe without `drop` left to its tool, say) may be there, and
        // `restore` would copy the entry over it.
        if self.commands.exists.is_none() {
            return Err(DbError::NoCommand(
                "exists",
                "restore a database from the store without overwriting one it did not create",
            ));
        }
        if self.exists()? {
            return Ok(false);
        }
        // A record left over is stale, and goes first (as in `create`).
        self.remove_record()?;
        self.must("restore", &template, Some(("entry", &entry.name)), &[])?;
        self.write_record(&stored)?;
        Ok(true)
    }

    /// `snapshot`, then the entry's record, marked as the store's, lists
    /// what this database's does.
    fn save_as(&mut self, entry: &Entry) -> Result<(), DbError> {
        let (Some(template), Some(record)) = (self.commands.snapshot.clone(), self.record()?)
        else {
            return Ok(());
        };
        let at = self.entry_path(&entry.name);
        if read_record(&at)?.is_some() {
            return Ok(());
        }
        self.must("snapshot", &template, Some(("entry", &entry.name)), &[])?;
        let stored = Record {
            mark: entry.mark.clone(),
            migrations: record.migrations,
        };
        write_record_at(&at, &stored)
    }

    fn store_entries(&mut self, mark: &str) -> Result<Vec<Stored>, DbError> {
        let dir = self.record_path.parent().expect("a record has a folder");
        let mut out = Vec::new();
        for item in crate::fsutil::entries(dir)? {
            let file = item.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".json").filter(|n| store::is_entry(n)) else {
                continue;
            };
            if read_record(&item.path())?.is_none_or(|r| r.mark != mark) {
                continue;
            }
            let newness = item
                .metadata()?
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            out.push(Stored {
                name: name.to_string(),
                bytes: 0,
                newness,
            });
        }
        Ok(out)
    }

    fn can_drop(&self) -> bool {
        self.commands.drop.is_some()
    }

    fn forget(&mut self) -> Result<(), DbError> {
        self.remove_record()
    }

    fn remark(&mut self) -> Result<(), DbError> {
        match self.record()? {
            Some(record) if self.mark.is_by_path(&record.mark) => self.write_record(&record),
            _ => Ok(()),
        }
    }

    fn drop_database(&mut self) -> Result<(), DbError> {
        if !self.exists()? {
            // Gone already; its record must go too, or it would vouch for
            // the next database of this name.
            return self.remove_record();
        }
        if !self.is_marked()? {
            return Err(DbError::Unmarked {
                name: self.name.clone(),
                location: self.location(),
            });
        }
        let template = self.command("drop", "drop a database")?.to_string();
        self.must("drop", &template, None, &[])?;
        self.remove_record()
    }
}
