//! Carries out apply's actions in order, each path checked again right
//! before it is written or deleted, then records the lock in the registry.

use std::path::Path;

use crate::BoxError;
use crate::db::aside::{self, Aside};
use crate::db::migrations::{Applied, Migration};
use crate::db::store::Entry;
use crate::db::{BuiltAhead, Database};
use crate::fsutil;
use crate::git;
use crate::lifecycle::registry::{Registry, SeedStart};
use crate::output::Progress;
use crate::sandbox::copy;
use crate::sandbox::lock::{self, LinkMode, Sandbox};
use crate::sandbox::observe;
use crate::sandbox::setup::Runner;
use crate::workspace::WorktreeSandbox;

use super::decide::under_old_link;
use super::{Action, ApplyError, EnvReason};

/// What carrying out the actions needs.
pub struct Execution<'a> {
    pub root: &'a Path,
    pub main: &'a Path,
    /// The sandbox as its lock records it (`lock::symbolic`).
    pub desired: &'a Sandbox,
    pub setup: Runner,
    pub env_text: Option<&'a str>,
    pub lock_text: &'a str,
    pub database: &'a mut dyn Database,
    /// The record of the database a rebuild sets aside.
    pub aside: Option<&'a Aside>,
    pub common_dir: &'a Path,
    /// Who the store's entries belong to, as their mark names it.
    pub store_mark: String,
    /// The seed's copy a new database starts as (`[database] seed`).
    pub seed: Option<BuiltAhead>,
    pub migrations: &'a [Migration],
    pub known: &'a [Applied],
    pub progress: &'a Progress,
}

/// Runs `actions`, then records `lock_hash` (and the branch) in the
/// worktree's registry record.
pub fn all(
    ctx: &WorktreeSandbox,
    mut run: Execution,
    actions: &[Action],
    lock_hash: &str,
) -> Result<(), BoxError> {
    keep_out_of_git_status(ctx, run.desired)?;
    for action in actions {
        run.execute(action)?;
    }
    let seed = seed_start(actions, run.desired.database.migrations.len());
    let guard = ctx.registry.lock()?;
    if let Some(mut record) = ctx.registry.get(&ctx.checkout.id)?
        && (record.lock_hash.as_deref() != Some(lock_hash)
            || record.branch != ctx.checkout.branch
            || seed.as_ref().is_some_and(|s| *s != record.database.seed))
    {
        record.lock_hash = Some(lock_hash.to_string());
        record.branch = ctx.checkout.branch.clone();
        if let Some(seed) = seed {
            record.database.seed = seed;
        }
        ctx.registry.put(&guard, &record)?;
    }
    Ok(())
}

/// Where a database these actions made started: `Some(None)` empty,
/// `Some(Some(_))` as the seed; `None` where they made none. The seed had
/// applied what the chain of `chain_len` migrations still has after the
/// store's copy and the migrations run on top are taken away.
fn seed_start(actions: &[Action], chain_len: usize) -> Option<Option<SeedStart>> {
    let (at, identity, cached) = actions.iter().enumerate().find_map(|(at, a)| match a {
        Action::CreateDatabase { seed, cached, .. } => Some((at, seed.clone(), cached.len())),
        _ => None,
    })?;
    let migrated: usize = actions[at..]
        .iter()
        .map(|a| match a {
            Action::Migrate { names } => names.len(),
            _ => 0,
        })
        .sum();
    Some(identity.map(|identity| SeedStart {
        identity,
        applied: chain_len.saturating_sub(cached + migrated),
    }))
}

/// Adds the lock, the env file and every link path to the shared exclude
/// list, under the registry lock because every worktree shares that file.
fn keep_out_of_git_status(ctx: &WorktreeSandbox, desired: &Sandbox) -> Result<(), BoxError> {
    let mut paths = vec![lock::FILE_NAME.to_string()];
    paths.extend(desired.env.iter().map(|e| e.file.clone()));
    paths.extend(desired.links.iter().map(|l| l.path.clone()));
    let _guard = ctx.registry.lock()?;
    git::exclude_paths(&ctx.checkout.common_dir, &paths)?;
    Ok(())
}

/// Checked again right before each write or delete.
fn not_blocked(root: &Path, path: &str, doing: &'static str) -> Result<(), ApplyError> {
    under_old_link(path, observe::blocker(root, path).as_ref(), doing, &[]).map(|_| ())
}

/// Removes the symlink at `path` (nothing there is fine). Looked at again
/// right before: between the decision and now (a wait for the registry lock
/// while another `new` runs git) someone may have put a real file there,
/// and that is theirs.
fn remove_link(root: &Path, path: &str) -> Result<(), BoxError> {
    let at = root.join(path);
    match fs_err::symlink_metadata(&at) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(meta) if meta.file_type().is_symlink() => Ok(fs_err::remove_file(&at)?),
        _ => Err(ApplyError::Changed {
            path: path.to_string(),
        }
        .into()),
    }
}

/// The env file at `path` is still provision's (or not there), or a write
/// would replace someone's edit made since the decision.
fn still_ours(root: &Path, path: &str) -> Result<(), BoxError> {
    match fs_err::read_to_string(root.join(path)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(text) if crate::sandbox::envfile::is_ours(&text) => Ok(()),
        _ => Err(ApplyError::ForeignEnvFile {
            file: path.to_string(),
        }
        .into()),
    }
}

impl Execution<'_> {
    fn execute(&mut self, action: &Action) -> Result<(), BoxError> {
        let root = self.root;
        if !matches!(action, Action::Migrate { .. }) {
            self.progress.step(&action.to_string());
        }
        match action {
            Action::Link { path, target } => {
                not_blocked(root, path, "linked")?;
                let at = root.join(path);
                if let Some(parent) = at.parent() {
                    fs_err::create_dir_all(parent)?;
                }
                remove_link(root, path)?;
                fs_err::os::unix::fs::symlink(target, &at)?;
            }
            Action::Unlink { path } => {
                not_blocked(root, path, "unlinked")?;
                remove_link(root, path)?;
            }
            Action::RemoveEnv { file } => {
                not_blocked(root, file, "removed")?;
                still_ours(root, file)?;
                fs_err::remove_file(root.join(file))?
            }
            Action::Copy { path, mode } => {
                not_blocked(root, path, "copied")?;
                // Only a symlink is ever in the way (the decision refuses
                // anything else): the link goes, the data it points to stays.
                remove_link(root, path)?;
                copy::copy(self.main, root, path, *mode == LinkMode::Reflink)?;
            }
            Action::Setup { run, index } => self.setup(*index, run)?,
            Action::WriteEnv { file, reason } => {
                not_blocked(root, file, "written")?;
                let at = root.join(file);
                if *reason == EnvReason::ReplacesSymlink {
                    // Remove the link itself; writing through it would change
                    // the main checkout's file.
                    remove_link(root, file)?;
                } else {
                    still_ours(root, file)?;
                }
                let text = self.env_text.expect("an env action has text");
                fsutil::write_atomically(&at, text.as_bytes())?;
            }
            Action::CreateDatabase {
                from_store, cached, ..
            } => {
                let entry = from_store.as_ref().map(|name| Entry {
                    name: name.clone(),
                    mark: self.store_mark.clone(),
                });
                // Gone meanwhile (a `gc`), or not the store's: built as
                // any other, the cached migrations too.
                let made = entry.is_some_and(|e| {
                    let spare = self.database.take_spare(&e);
                    if let Ok(true) = spare {
                        return true;
                    }
                    self.database.create_from(&e).unwrap_or_else(|err| {
                        let warning = format!("the store's {} is passed over: {err}", e.name);
                        self.progress.warn(&warning);
                        false
                    })
                });
                if !made {
                    match self.seed.take() {
                        // Something got there first: theirs stays.
                        Some(copy) => {
                            if !self.database.adopt(copy)? {
                                let path = self.database.location();
                                return Err(ApplyError::Changed { path }.into());
                            }
                        }
                        None => self.database.create()?,
                    }
                    self.migrate(cached)?;
                }
            }
            Action::Store { entry } => {
                let entry = Entry {
                    name: entry.clone(),
                    mark: self.store_mark.clone(),
                };
                // The store only saves time: a failure to fill it is said,
                // and the sandbox is whole without it.
                if let Err(e) = self.database.save_as(&entry) {
                    self.progress
                        .warn(&format!("the store keeps no copy of this database: {e}"));
                }
            }
            Action::SetAside { .. } => {
                let record = self.aside.expect("a set-aside action has its record");
                // Recorded first: a crash after the move leaves a record
                // that leads `gc` to it, never a database nothing names.
                // Under the registry lock, which `gc` holds: it never reads
                // the record between the two.
                let _guard = Registry::new(self.common_dir).lock()?;
                aside::record(self.common_dir, record)?;
                // A failed move keeps its record: a rename the server made
                // but could not confirm left a database only it names.
                // `gc` forgets a record whose database is not there.
                self.database.set_aside(&record.database)?;
            }
            Action::DropDatabase { .. } => self.database.drop_database()?,
            Action::RepairLedger { .. } => self.database.repair(self.known)?,
            Action::Migrate { names } => self.migrate(names)?,
            Action::WriteLock { .. } => {
                fsutil::write_atomically(&root.join(lock::FILE_NAME), self.lock_text.as_bytes())?
            }
        }
        Ok(())
    }

    fn migrate(&mut self, names: &[String]) -> Result<(), BoxError> {
        let pending: Vec<&Migration> = names
            .iter()
            .filter_map(|name| self.migrations.iter().find(|f| &f.name == name))
            .collect();
        let progress = self.progress;
        self.database.migrate_all(&pending, &mut |m| {
            progress.step(&format!("migrate   {}", m.name))
        })?;
        Ok(())
    }

    fn setup(&self, index: usize, run: &str) -> Result<(), BoxError> {
        if let Err(err) = self.setup.run(index, run, self.progress) {
            // What did complete is recorded, so the next `apply` starts at
            // this command.
            let mut partial = self.desired.clone();
            for hook in &mut partial.setup[index..] {
                hook.completed = false;
            }
            let text = lock::render(&partial);
            fsutil::write_atomically(&self.root.join(lock::FILE_NAME), text.as_bytes())?;
            return Err(err.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(seed: Option<&str>, cached: &[&str]) -> Action {
        Action::CreateDatabase {
            name: "app_a".into(),
            location: String::new(),
            from_store: None,
            cached: cached.iter().map(|c| c.to_string()).collect(),
            seed: seed.map(str::to_string),
        }
    }

    #[test]
    fn a_seeded_start_counts_what_the_seed_had_applied() {
        let migrate = Action::Migrate {
            names: vec!["5".into()],
        };
        // 5 in the chain: the store's copy had 2 on top of the seed, 1 ran.
        let actions = [create(Some("id"), &["3", "4"]), migrate.clone()];
        let start = seed_start(&actions, 5).unwrap().unwrap();
        assert_eq!((start.identity.as_str(), start.applied), ("id", 2));
        assert_eq!(
            seed_start(&[create(None, &[]), migrate.clone()], 5),
            Some(None)
        );
        // No database made: the record keeps what it says.
        assert_eq!(seed_start(&[migrate], 5), None);
    }
}
