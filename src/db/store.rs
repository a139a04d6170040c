//! A content-addressed store of migrated database states, as Nix stores
//! realisations: a state is keyed by the hash of its starting point (an
//! empty database, or a seed's identity) and the chain of migrations
//! applied to it, (name, checksum) in order. A new database (`new`, `db
//! reset`) starts as a copy of the entry of the longest cached prefix of
//! its chain and applies only the rest; the result is stored in turn.
//!
//! Entries are databases of the kind's own, named `provision_store_<hash>`
//! (SQLite: files beside the sandboxes' under `.git/provision/sqlite/`,
//! copied with a reflink where the file system can; PostgreSQL: databases
//! that sandboxes are made from with `CREATE DATABASE … TEMPLATE`). Each is
//! marked as provision's with the store's mark (`Workspace::mark` of
//! [`STORE_ID`]), made under a temporary name and moved into place only
//! when complete, and never changed after: two `new`s building one entry
//! at once each make their own, and the second to arrive drops its copy.

use serde::Serialize;

use crate::db::migrations::{Applied, Format, chain, chain_link};
use crate::recipe::config::{DatabaseKind, DatabaseSettings};

/// How every entry's name starts.
pub const PREFIX: &str = "provision_store_";
/// How a spare copy of an entry is named: `provision_spare_<entry's
/// hash>_<8 hex>`. A server kind makes one ahead (`provision db refill`,
/// started in the background after a sandbox is made from the entry), so
/// the next sandbox is a rename away rather than a copy away.
pub const SPARE: &str = "provision_spare_";
/// The worktree id the store's mark names: git makes no worktree id with a
/// `:` (it is not allowed in a ref name), so no sandbox shares the mark.
pub const STORE_ID: &str = "store:v1";
/// How many entries `gc` keeps beyond those a live sandbox's chain needs:
/// the newest.
pub const KEEP_NEWEST: usize = 3;

/// One entry, as a kind finds it and marks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// The store's mark, which the entry carries.
    pub mark: String,
}

/// An entry as listed: its name, size in bytes, and an order of creation
/// (larger is newer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stored {
    pub name: String,
    pub bytes: u64,
    #[serde(skip)]
    pub newness: u64,
}

/// Whether databases of this recipe go through the store: the command kind
/// only with `snapshot` and `restore` commands, not a PostgreSQL
/// `template` (whose contents provision cannot key).
pub fn usable(settings: &DatabaseSettings) -> bool {
    match settings.kind {
        DatabaseKind::Sqlite => true,
        DatabaseKind::Postgres => settings.template.is_none(),
        DatabaseKind::Command => {
            settings.commands.snapshot.is_some() && settings.commands.restore.is_some()
        }
    }
}

/// The entry names of every prefix of `applied`: `[i]` is the state after
/// its first `i + 1` migrations, from `start` (`"empty"`, or a seed's
/// identity), in `format` (whose tool's ledger the database keeps too).
/// `mark`, the store's (naming the clone), is part of the key: two clones
/// on one server keep stores of their own, and never take each other's
/// entries.
pub fn keys(
    mark: &str,
    kind: DatabaseKind,
    format: Format,
    start: &str,
    applied: &[Applied],
) -> Vec<String> {
    let mut link = chain(std::iter::empty());
    applied
        .iter()
        .map(|m| {
            link = chain_link(&link, m);
            let text = format!(
                "provision-store:v1\0{mark}\0{}\0{}\0{start}\0{link}",
                kind.as_str(),
                format.as_str(),
            );
            format!("{PREFIX}{}", &blake3::hash(text.as_bytes()).to_hex()[..32])
        })
        .collect()
}

/// The longest prefix of `keys` that `stored` has: how many migrations it
/// covers, and its entry.
pub fn longest<'a>(keys: &'a [String], stored: &[String]) -> Option<(usize, &'a str)> {
    keys.iter()
        .enumerate()
        .rev()
        .find(|(_, key)| stored.contains(key))
        .map(|(i, key)| (i + 1, key.as_str()))
}

/// Which entries `gc` drops: those no chain in `needed` (the keys of every
/// live sandbox's chain) has, but for the newest `KEEP_NEWEST`.
/// A spare copy goes with its entry.
pub fn collectable<'a>(stored: &'a [Stored], needed: &[String]) -> Vec<&'a Stored> {
    let mut by_age: Vec<&Stored> = stored.iter().filter(|s| is_entry(&s.name)).collect();
    by_age.sort_by_key(|s| std::cmp::Reverse(s.newness));
    let gone: Vec<&Stored> = by_age
        .into_iter()
        .skip(KEEP_NEWEST)
        .filter(|s| !needed.contains(&s.name))
        .collect();
    let kept = |entry: &str| {
        stored.iter().any(|s| s.name == entry) && !gone.iter().any(|g| g.name == entry)
    };
    // One spare of a kept entry stays, the newest: `new`s made at once each
    // start a refill, and each may make one before any sees another's.
    let mut spares: Vec<&Stored> = stored
        .iter()
        .filter(|s| spare_of(&s.name).is_some())
        .collect();
    spares.sort_by_key(|s| std::cmp::Reverse(s.newness));
    let mut spared: Vec<String> = Vec::new();
    let spares = spares.into_iter().filter(|s| {
        let entry = spare_of(&s.name).expect("a spare");
        if kept(&entry) && !spared.contains(&entry) {
            spared.push(entry);
            return false;
        }
        true
    });
    gone.iter().copied().chain(spares).collect()
}

/// Whether `name` is an entry's (read back from a listing: it names a
/// file or a database, so it must be one provision makes).
pub fn is_entry(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(|hex| is_hex(hex, 32))
}

/// The entry `name` is a spare copy of, if it is one.
pub fn spare_of(name: &str) -> Option<String> {
    let rest = name.strip_prefix(SPARE)?;
    let (hash, tag) = rest.split_once('_')?;
    (is_hex(hash, 32) && is_hex(tag, 8)).then(|| format!("{PREFIX}{hash}"))
}

/// A new name for a spare copy of `entry`.
pub fn spare_name(entry: &str) -> String {
    let hash = entry.strip_prefix(PREFIX).unwrap_or(entry);
    let seed = format!(
        "{entry}{:?}{}",
        std::time::SystemTime::now(),
        std::process::id()
    );
    format!(
        "{SPARE}{hash}_{}",
        &blake3::hash(seed.as_bytes()).to_hex()[..8]
    )
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(names: &[&str]) -> Vec<Applied> {
        names
            .iter()
            .map(|n| Applied {
                name: n.to_string(),
                checksum: format!("c{n}"),
            })
            .collect()
    }

    fn stored(name: &str, newness: u64) -> Stored {
        Stored {
            name: name.into(),
            bytes: 1,
            newness,
        }
    }

    #[test]
    fn a_key_names_its_start_and_the_whole_chain_before_it() {
        let sqlite = |start, names: &[&str]| {
            keys(
                "o",
                DatabaseKind::Sqlite,
                Format::Flat,
                start,
                &applied(names),
            )
        };
        let two = sqlite("empty", &["1.sql", "2.sql"]);
        assert_eq!(two.len(), 2);
        assert!(two.iter().all(|k| is_entry(k) && k.len() <= 63), "{two:?}");
        // A prefix has the same key whatever follows it.
        assert_eq!(sqlite("empty", &["1.sql", "3.sql"])[0], two[0]);
        assert_ne!(sqlite("empty", &["1.sql", "3.sql"])[1], two[1]);
        // Another start, kind or layout is another state.
        assert_ne!(sqlite("seed:blake3:x", &["1.sql"])[0], two[0]);
        assert_ne!(
            keys(
                "p",
                DatabaseKind::Sqlite,
                Format::Flat,
                "empty",
                &applied(&["1.sql"])
            )[0],
            two[0],
            "another clone's store"
        );
        let pg = keys(
            "o",
            DatabaseKind::Postgres,
            Format::Flat,
            "empty",
            &applied(&["1.sql"]),
        );
        assert_ne!(pg[0], two[0]);
        let dbmate = keys(
            "o",
            DatabaseKind::Sqlite,
            Format::Dbmate,
            "empty",
            &applied(&["1.sql"]),
        );
        assert_ne!(dbmate[0], two[0]);
    }

    #[test]
    fn the_longest_stored_prefix_is_used() {
        let keys = keys(
            "o",
            DatabaseKind::Sqlite,
            Format::Flat,
            "empty",
            &applied(&["1", "2", "3"]),
        );
        assert_eq!(longest(&keys, &[]), None);
        let some = [keys[0].clone(), keys[1].clone()];
        assert_eq!(longest(&keys, &some), Some((2, keys[1].as_str())));
    }

    #[test]
    fn gc_keeps_what_a_chain_needs_and_the_newest_few() {
        let all: Vec<Stored> = (0..6)
            .map(|i| stored(&format!("{PREFIX}{i:032x}"), i))
            .collect();
        let needed = vec![all[0].name.clone()];
        let gone: Vec<u64> = collectable(&all, &needed)
            .iter()
            .map(|s| s.newness)
            .collect();
        assert_eq!(gone, [2, 1]);
        // A spare copy goes with its entry, or without one.
        let mut with_spares = all.clone();
        with_spares.push(stored(&spare_name(&all[1].name), 9));
        with_spares.push(stored(&spare_name(&all[5].name), 9));
        with_spares.push(stored(&spare_name(&format!("{PREFIX}{:032x}", 99)), 9));
        let gone = collectable(&with_spares, &needed);
        assert_eq!(gone.len(), 4);
        assert!(!gone.iter().any(|g| g.name == with_spares[7].name));
        // Of several spares of a kept entry, the newest stays.
        let mut piled = all.clone();
        let hash = all[5].name.strip_prefix(PREFIX).unwrap();
        for newness in [7, 9, 8] {
            piled.push(stored(&format!("{SPARE}{hash}_{newness:08x}"), newness));
        }
        let gone: Vec<u64> = collectable(&piled, &needed)
            .iter()
            .filter(|g| spare_of(&g.name).is_some())
            .map(|g| g.newness)
            .collect();
        assert_eq!(gone, [8, 7]);
        assert!(!is_entry("provision_store_../x"));
        assert!(!is_entry("app_feature"));
        let entry = format!("{PREFIX}{:032x}", 7);
        let spare = spare_name(&entry);
        assert!(spare.len() <= 63, "{spare}");
        assert_eq!(spare_of(&spare), Some(entry.clone()));
        assert_eq!(spare_of(&entry), None);
        assert_eq!(spare_of("provision_spare_x_y"), None);
    }
}
