//! Names to database identifiers: every identifier is `[a-z0-9_]`, 1 to 63
//! bytes, and the same name always gives the same one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provision::slug;

fuzz_target!(|name: &str| {
    let id = slug::identifier(name);
    assert!(!id.is_empty() && id.len() <= slug::MAX_IDENTIFIER, "{id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{id:?}");
    assert_eq!(slug::identifier(name), id);
    let s = slug::slug(name);
    assert!(!s.is_empty() && !s.contains("__"), "{s:?}");
});
