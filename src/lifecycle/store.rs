//! The store of migrated states (`db::store`) over time: what `status`
//! shows of it, and what `gc` collects from it: the entries no live
//! sandbox's chain needs, but for the newest few. An entry is dropped only
//! while it carries the store's mark.

use serde::Serialize;

use crate::BoxError;
use crate::db::migrations;
use crate::db::store::{self, Stored};
use crate::db::{Database, location};
use crate::sandbox::lock;
use crate::workspace::{Owner, Workspace};

/// The store as `status` and `gc` report it.
#[derive(Debug, Default, Serialize)]
pub struct Contents {
    pub entries: Vec<Line>,
    /// Their size together, in bytes.
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Line {
    pub name: String,
    pub location: String,
    pub bytes: u64,
    /// For `gc`: what became of it (kept entries say why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
}

impl Contents {
    fn of(entries: Vec<Line>) -> Self {
        Contents {
            bytes: entries.iter().map(|e| e.bytes).sum(),
            entries,
        }
    }

    /// One line for a person: how many entries, how big.
    pub fn summary(&self) -> String {
        format!(
            "{} entr{}, {}",
            self.entries.len(),
            if self.entries.len() == 1 { "y" } else { "ies" },
            size(self.bytes)
        )
    }
}

/// `1.2 MiB`, `340 KiB`, `12 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The store's entry `name`, opened as the store's (with its mark).
fn open_entry(workspace: &Workspace, name: &str) -> Result<Box<dyn Database>, BoxError> {
    let ports = workspace.no_ports();
    workspace.open_database(&Owner {
        worktree: &workspace.checkout.main,
        id: store::STORE_ID,
        name: "store",
        database: name,
        port: 0,
        ports: &ports,
    })
}

/// Every entry of the store, for the recipe's kind (none where the kind
/// keeps no store).
fn entries(workspace: &Workspace) -> Result<Vec<Stored>, BoxError> {
    if !store::usable(&workspace.settings.database) {
        return Ok(Vec::new());
    }
    let mark = workspace.mark(store::STORE_ID).text();
    Ok(open_entry(workspace, store::PREFIX)?.store_entries(&mark)?)
}

fn line(workspace: &Workspace, stored: &Stored, done: Option<String>) -> Line {
    Line {
        name: stored.name.clone(),
        location: location(workspace.settings.database.kind, &stored.name),
        bytes: stored.bytes,
        done,
    }
}

/// What the store holds, for `status`.
pub fn contents(workspace: &Workspace) -> Result<Contents, BoxError> {
    let lines = entries(workspace)?
        .iter()
        .map(|s| line(workspace, s, None))
        .collect();
    Ok(Contents::of(lines))
}

/// The keys every live sandbox's chain needs: each prefix of the
/// migrations its lock records (a lock that cannot be read needs none).
fn needed(workspace: &Workspace) -> Result<Vec<String>, BoxError> {
    let settings = &workspace.settings.database;
    let main = &workspace.checkout.main;
    let format = migrations::scan(main, &settings.migrations, settings.format)?.format;
    let mark = workspace.mark(store::STORE_ID).text();
    let mut keys = Vec::new();
    for record in workspace.registry.read_all()? {
        let Ok(Some(read)) = lock::read(&record.path, workspace.clone.tag()) else {
            continue;
        };
        let chain = &read.sandbox.database.migrations;
        match &record.database.seed {
            Some(seed) if seed.applied <= chain.len() => {
                let start = format!("seed:{}", seed.identity);
                let rest = &chain[seed.applied..];
                keys.extend(store::keys(&mark, settings.kind, format, &start, rest));
            }
            _ => keys.extend(store::keys(&mark, settings.kind, format, "empty", chain)),
        }
    }
    Ok(keys)
}

/// Drops (or with `dry_run`, names) the entries nothing needs; reports
/// every entry with what became of it.
pub fn collect(workspace: &Workspace, dry_run: bool) -> Result<Contents, BoxError> {
    let stored = entries(workspace)?;
    if stored.is_empty() {
        return Ok(Contents::default());
    }
    let needed = needed(workspace)?;
    let gone: Vec<&Stored> = store::collectable(&stored, &needed);
    let mut lines = Vec::new();
    for entry in &stored {
        let done = if !gone.iter().any(|g| g.name == entry.name) {
            if store::spare_of(&entry.name).is_some() {
                "kept: a spare copy of a kept entry".to_string()
            } else if needed.contains(&entry.name) {
                "kept: a live sandbox's chain needs it".to_string()
            } else {
                format!("kept: one of the newest {}", store::KEEP_NEWEST)
            }
        } else if dry_run {
            "would drop it: nothing needs it".to_string()
        } else {
            drop_entry(workspace, &entry.name)
        };
        lines.push(line(workspace, entry, Some(done)));
    }
    Ok(Contents::of(lines))
}

/// Makes a spare copy of `entry` (a name read from the command line: only
/// an entry's name is taken).
pub fn refill(workspace: &Workspace, entry: &str) -> Result<(), BoxError> {
    if !store::is_entry(entry) || !store::usable(&workspace.settings.database) {
        return Ok(());
    }
    Ok(open_entry(workspace, entry)?.make_spare()?)
}

/// Drops (or with `dry_run`, names) the databases killed processes of this
/// clone left half made under names of their own (see `db::drop_abandoned`).
pub fn drop_abandoned(
    workspace: &Workspace,
    dry_run: bool,
) -> Result<Vec<crate::db::HalfMade>, BoxError> {
    Ok(open_entry(workspace, store::PREFIX)?.drop_abandoned(dry_run)?)
}

/// Drops one entry, only while it carries the store's mark.
fn drop_entry(workspace: &Workspace, name: &str) -> String {
    let dropped = (|| -> Result<bool, BoxError> {
        let mut entry = open_entry(workspace, name)?;
        if !entry.is_marked()? {
            return Ok(false);
        }
        entry.drop_database()?;
        Ok(true)
    })();
    match dropped {
        Ok(true) => "dropped: nothing needs it".into(),
        Ok(false) => "kept: it has no provision mark naming the store".into(),
        Err(e) => format!("kept: {}", crate::output::one_line(&*e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_a_person_says_them() {
        assert_eq!(super::size(12), "12 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(3 * 1024 * 1024), "3.0 MiB");
    }
}
