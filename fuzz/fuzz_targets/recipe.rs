//! `provision.toml`: any text gives settings or one error naming a line of
//! the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(provision::recipe::config::ConfigError::Invalid { line, .. }) = provision::recipe::config::parse(text) {
        assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line}");
    }
    let _ = provision::recipe::template::keys(text);
});
