//! `provision`: a reproducible sandbox for every git worktree.
//!
//! The binary (`main.rs`) is a thin shell over this library. The parsers are
//! public so that fuzz targets and property tests reach them as the binary does.
//!
//! Data flows one way: `cli` resolves a `workspace` (repository, recipe,
//! registry), `sandbox` plans, observes and classifies one worktree's
//! sandbox and applies or verifies it, `db` holds the database kinds and
//! migrations, `lifecycle` keeps the registry and takes sandboxes down,
//! `services` runs a sandbox's processes and stops them again.

mod agents;
pub mod cli;
mod db;
mod fsutil;
mod git;
mod hash;
mod lifecycle;
pub mod output;
pub mod recipe;
pub mod sandbox;
mod services;
mod shell;
pub mod slug;
mod workspace;

pub use db::migrations;

/// Errors crossing module boundaries; each module's own enum sits inside.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
