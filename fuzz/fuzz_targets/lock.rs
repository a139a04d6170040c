//! `provision.lock`: any text parses or is refused, never panics; whatever
//! parses renders to a canonical lock that parses back to the same sandbox
//! with a valid hash, and rendering that again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provision::sandbox::lock;

fuzz_target!(|text: &str| {
    let Ok(read) = lock::parse(text) else { return };
    let canonical = lock::render(&read.sandbox);
    let again = lock::parse(&canonical).expect("a rendered lock parses");
    assert!(again.hash_ok);
    assert_eq!(again.sandbox, read.sandbox);
    assert_eq!(lock::render(&again.sandbox), canonical);
    // The recorded hash is valid exactly when it is the canonical one.
    assert_eq!(read.hash_ok, read.recorded_hash == lock::hash_of(&read.sandbox));
});
