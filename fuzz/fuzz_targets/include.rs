//! `.worktreeinclude`: any text parses or is refused, never panics, and an
//! accepted entry never leaves the repository through `..`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(entries) = provision::recipe::include::parse(text, std::path::Path::new("/nonexistent-main")) {
        for entry in entries {
            assert!(!entry.text.trim_start_matches('!').split('/').any(|p| p == ".."));
        }
    }
});
