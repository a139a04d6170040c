//! Properties of the parsers and the lock's canonical form, checked on
//! generated input in every `cargo test` (the fuzz targets in `fuzz/` dig
//! deeper, for minutes at a time): no input panics, canonicalisation is
//! idempotent, the hash ignores key order and whitespace, and every slug is
//! a valid identifier of at most 63 bytes.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use provision::migrations::Applied;
use provision::recipe::config::DatabaseKind;
use provision::recipe::{config, include, template};
use provision::sandbox::lock::{
    self, DatabaseLock, EnvLock, Hook, Link, LinkKind, LinkMode, Sandbox,
};
use provision::slug;
use serde_json::Value;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn hash() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|h| format!("blake3:{h}"))
}

/// A path a lock may name: relative, inside the worktree (the lock's own
/// reader refuses anything else).
fn inner_path() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_][a-zA-Z0-9_.é-]{0,10}(/[a-z0-9_]{1,8}){0,2}"
}

fn sandbox() -> impl Strategy<Value = Sandbox> {
    let link = (
        inner_path(),
        text(),
        prop_oneof![
            Just(LinkKind::File),
            Just(LinkKind::Dir),
            Just(LinkKind::Absent)
        ],
        prop_oneof![
            Just(LinkMode::Symlink),
            Just(LinkMode::Copy),
            Just(LinkMode::Reflink)
        ],
    )
        .prop_map(|(path, target, kind, mode)| Link {
            path,
            target,
            kind,
            mode,
        });
    let env = proptest::option::of(
        (
            inner_path(),
            proptest::option::of(hash()),
            proptest::collection::btree_map(text(), text(), 0..4),
            hash(),
        )
            .prop_map(|(file, shared, overrides, content)| EnvLock {
                file,
                shared,
                overrides,
                content,
            }),
    );
    let applied = (text(), hash()).prop_map(|(name, checksum)| Applied { name, checksum });
    let database = (
        prop_oneof![
            Just(DatabaseKind::Sqlite),
            Just(DatabaseKind::Postgres),
            Just(DatabaseKind::Command)
        ],
        "[a-z0-9_]{1,63}",
        text(),
        proptest::collection::vec(applied, 0..4),
        hash(),
    )
        .prop_map(|(kind, name, location, migrations, chain)| DatabaseLock {
            kind,
            name,
            location,
            migrations,
            chain,
        });
    let hook = (text(), any::<bool>()).prop_map(|(run, completed)| Hook { run, completed });
    (
        text(),
        hash(),
        proptest::collection::vec(link, 0..4),
        env,
        database,
        any::<u16>(),
        proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,8}", any::<u16>(), 0..3),
        proptest::collection::vec(hook, 0..3),
    )
        .prop_map(
            |(worktree, recipe, links, env, database, port, ports, setup)| Sandbox {
                version: lock::VERSION,
                worktree,
                recipe,
                links,
                env,
                database,
                port,
                ports,
                setup,
            },
        )
}

/// `value` as JSON text with every object's keys in reverse order and `gap`
/// around every token: the same data as the canonical form, spelt otherwise.
fn respell(value: &Value, gap: &str) -> String {
    match value {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| {
                    format!(
                        "{gap}{}{gap}:{gap}{}{gap}",
                        Value::String(k.clone()),
                        respell(v, gap)
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|v| format!("{gap}{}{gap}", respell(v, gap)))
                .collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canonicalisation_is_idempotent(sandbox in sandbox()) {
        let text = lock::render(&sandbox);
        let read = lock::parse(&text).unwrap();
        prop_assert!(read.hash_ok);
        prop_assert_eq!(&read.sandbox, &sandbox);
        prop_assert_eq!(lock::render(&read.sandbox), text);
        prop_assert_eq!(lock::canonical(&read.sandbox), lock::canonical(&sandbox));
    }

    #[test]
    fn the_hash_ignores_key_order_and_whitespace(sandbox in sandbox(), gap in "[ \t\r\n]{0,3}") {
        let value: Value = serde_json::from_str(&lock::render(&sandbox)).unwrap();
        let read = lock::parse(&respell(&value, &gap)).unwrap();
        prop_assert!(read.hash_ok);
        prop_assert_eq!(read.recorded_hash, lock::hash_of(&sandbox));
        prop_assert_eq!(read.sandbox, sandbox);
    }

    #[test]
    fn every_slug_is_an_identifier_of_at_most_63_bytes(name in "\\PC{0,300}") {
        let id = slug::identifier(&name);
        prop_assert!(!id.is_empty() && id.len() <= slug::MAX_IDENTIFIER, "{:?}", id);
        prop_assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{:?}", id);
        prop_assert_eq!(slug::identifier(&name), id);
    }

    #[test]
    fn long_names_that_differ_get_different_identifiers(stem in "[a-z]{70,120}", a in "[a-z0-9]{1,8}", b in "[a-z0-9]{1,8}") {
        prop_assume!(a != b);
        prop_assert_ne!(slug::identifier(&format!("{stem}_{a}")), slug::identifier(&format!("{stem}_{b}")));
    }

    #[test]
    fn no_input_panics_a_parser(input in "\\PC{0,200}") {
        let _ = lock::parse(&input);
        let _ = include::parse(&input, Path::new("/nonexistent-main"));
        let _ = config::parse(&input);
        let _ = template::keys(&input);
        let _ = template::to_shell(&input, &BTreeMap::new());
    }

    #[test]
    fn no_recipe_shaped_input_panics(
        section in prop_oneof![Just("worktree"), Just("env"), Just("env.vars"), Just("database"), Just("ports")],
        key in "[a-z_]{1,10}",
        value in prop_oneof![
            "\"[^\"\\\\]{0,20}\"".boxed(),
            "-?[0-9]{1,6}".boxed(),
            Just("true".to_string()).boxed(),
            Just("[1, \"x\"]".to_string()).boxed(),
        ],
    ) {
        let _ = config::parse(&format!("[{section}]\n{key} = {value}\n"));
        let _ = config::parse(&format!("[ports]\nrange = {value}\n"));
    }
}
