//! Where a database apply is about to make starts: empty, or a copy of its
//! seed (`[database] seed`), and then the store's entry of the longest
//! prefix of the rest of its chain (`db::store`), applying only what the
//! entry has not. The store only ever saves time: one that cannot be read
//! is passed over with a warning.

use std::path::PathBuf;

use crate::BoxError;
use crate::db::migrations::{Applied, Migrations};
use crate::db::{self, BuiltAhead, Database, Sqlite, store};
use crate::git::MAIN_ID;
use crate::output::Progress;
use crate::recipe::config::{DatabaseKind, Seed};
use crate::sandbox::observe::DatabaseSeen;
use crate::sandbox::state;
use crate::workspace::WorktreeSandbox;

use super::Action;
use super::decide::{self, Rebuild};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(
        "`[database] seed = \"main\"`, but the main checkout has no sandbox database yet: run `provision apply` in {0}"
    )]
    NoMain(String),
    #[error("the seed {seed} no longer matches this branch's migrations: {what}; update the seed")]
    Diverged { seed: String, what: String },
}

/// What deciding where a new database starts needs.
pub struct Starts<'a> {
    pub ctx: &'a WorktreeSandbox,
    /// The plan's migrations, in order.
    pub wanted: &'a [Applied],
    pub files: &'a Migrations,
    pub known: &'a [Applied],
    pub store_mark: &'a str,
    pub progress: &'a Progress,
}

impl Starts<'_> {
    /// Rewrites the `CreateDatabase` in `actions` (and the migrations
    /// after it) to start from the seed and the store; returns the seed's
    /// copy, which `CreateDatabase` then moves into place.
    pub fn plan(
        &self,
        database: &mut dyn Database,
        actions: &mut Vec<Action>,
    ) -> Result<Option<BuiltAhead>, BoxError> {
        let Some(at) = actions
            .iter()
            .position(|a| matches!(a, Action::CreateDatabase { .. }))
        else {
            return Ok(None);
        };
        let settings = &self.ctx.settings.database;
        let (seed, start) = match self.seed_path()? {
            Some(path) => {
                let (copy, identity) = self.seeded(database, &path, at, actions)?;
                (Some(copy), format!("seed:{identity}"))
            }
            None => (None, "empty".to_string()),
        };
        if store::usable(settings) {
            self.start_from_store(database, &start, at, actions);
        }
        Ok(seed)
    }

    /// The seed's file, where the recipe names one (the main checkout's
    /// own database starts empty).
    fn seed_path(&self) -> Result<Option<PathBuf>, BoxError> {
        let ctx = self.ctx;
        Ok(match &ctx.settings.database.seed {
            None => None,
            Some(Seed::Main) if ctx.checkout.is_main() => None,
            Some(Seed::Main) => {
                let record = ctx
                    .registry
                    .get(MAIN_ID)?
                    .ok_or_else(|| SeedError::NoMain(ctx.checkout.main.display().to_string()))?;
                Some(db::sqlite_path(
                    &ctx.checkout.common_dir,
                    &record.database.name,
                ))
            }
            Some(Seed::File(path)) => Some(ctx.checkout.main.join(path)),
        })
    }

    /// Copies the seed (a consistent snapshot), reads what it has applied,
    /// and puts what it still lacks after `CreateDatabase`.
    fn seeded(
        &self,
        database: &mut dyn Database,
        path: &std::path::Path,
        at: usize,
        actions: &mut Vec<Action>,
    ) -> Result<(BuiltAhead, String), BoxError> {
        let dir = db::sqlite_dir(&self.ctx.checkout.common_dir);
        let (copy, identity) = db::snapshot(&dir, path)?;
        let mut probe = Sqlite::new(copy.path().to_path_buf(), database.name(), String::new());
        probe.tool_ledger(self.files.format, self.files);
        let seen = DatabaseSeen {
            exists: true,
            marked: true,
            rows: probe.ledger()?.rows,
        };
        drop(probe);
        let state = state::database(
            self.files.format,
            self.wanted,
            self.files,
            self.known,
            &seen,
        );
        let all: Vec<String> = self.wanted.iter().map(|m| m.name.clone()).collect();
        let after = decide::database(
            &state,
            database.name(),
            String::new(),
            &all,
            false,
            Rebuild::Leave,
        )?;
        if after.left {
            return Err(SeedError::Diverged {
                seed: path.display().to_string(),
                what: state::divergence_words(&after.diverged),
            }
            .into());
        }
        if let Action::CreateDatabase { seed, .. } = &mut actions[at] {
            *seed = Some(identity.clone());
        }
        if matches!(actions.get(at + 1), Some(Action::Migrate { .. })) {
            actions.remove(at + 1);
        }
        for (i, action) in after.actions.into_iter().enumerate() {
            actions.insert(at + 1 + i, action);
        }
        Ok((copy, identity))
    }

    /// Starts from the store's entry of the longest prefix of the chain
    /// the database is about to apply, and stores what it ends with.
    fn start_from_store(
        &self,
        database: &mut dyn Database,
        start: &str,
        at: usize,
        actions: &mut Vec<Action>,
    ) {
        let Some(Action::Migrate { names }) = actions.get(at + 1).cloned() else {
            return;
        };
        let chain: Vec<Applied> = names
            .iter()
            .filter_map(|n| self.wanted.iter().find(|w| &w.name == n).cloned())
            .collect();
        if chain.len() != names.len() {
            return;
        }
        let mark = self.store_mark;
        let keys = store::keys(mark, database.kind(), self.files.format, start, &chain);
        let stored = match database.stored_among(&keys, mark) {
            Ok(stored) => stored,
            Err(e) => {
                self.progress
                    .warn(&format!("the store is passed over: {e}"));
                return;
            }
        };
        let full = keys.last().cloned();
        if let Some((cached, entry)) = store::longest(&keys, &stored) {
            let rest = names[cached..].to_vec();
            if let Action::CreateDatabase {
                from_store,
                cached: covered,
                ..
            } = &mut actions[at]
            {
                *from_store = Some(entry.to_string());
                *covered = names[..cached].to_vec();
            }
            if rest.is_empty() {
                actions.remove(at + 1);
                return;
            }
            actions[at + 1] = Action::Migrate { names: rest };
        }
        if let Some(entry) = full {
            actions.insert(at + 2, Action::Store { entry });
        }
    }
}

/// After a PostgreSQL sandbox was made from the store, a spare copy of
/// its entry is made in the background (`provision db refill`, a process
/// of its own that outlives this one), so that the next sandbox takes it
/// by a rename instead of waiting for a copy. Best effort: it is only ever
/// a head start.
pub fn refill_spare(ctx: &WorktreeSandbox, kind: DatabaseKind, actions: &[Action]) {
    if kind != DatabaseKind::Postgres {
        return;
    }
    let migrated = actions.iter().any(|a| matches!(a, Action::Migrate { .. }));
    let entry = actions.iter().find_map(|a| match a {
        Action::Store { entry } => Some(entry.clone()),
        Action::CreateDatabase {
            from_store: Some(entry),
            ..
        } if !migrated => Some(entry.clone()),
        _ => None,
    });
    let (Some(entry), Ok(exe)) = (entry, std::env::current_exe()) else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let _ = std::process::Command::new(exe)
        .arg("-C")
        .arg(&ctx.checkout.root)
        .args(["--quiet", "db", "refill", &entry])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
}
