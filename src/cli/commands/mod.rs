//! One file per subcommand: its clap `Args`, its `run`, and how its report
//! reads as text (the JSON form is the report's own serialization).

mod all;
pub mod apply;
pub mod completions;
pub mod db;
pub mod down;
pub mod env;
pub mod exec;
pub mod gc;
pub mod hook;
pub mod identity;
pub mod init;
pub mod logs;
pub mod mcp;
pub mod new;
pub mod remove;
pub mod status;
pub mod trust;
pub mod up;
pub mod verify;

/// A lock hash as reports show it: the prefix and 12 hex digits.
fn short(hash: &str) -> &str {
    &hash[..hash.len().min(7 + 12)]
}
