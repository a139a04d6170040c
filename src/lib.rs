//! `provision`: a reproducible sandbox for every git worktree.
//!
//! The binary (`main.rs`) is a thin shell over this library. The parsers are
//! public so that fuzz targets and property tests reach them as the binary does.

mod apply;
pub mod cli;
pub mod commands;
pub mod config;
mod context;
mod copy;
mod db;
pub mod envfile;
mod fsutil;
mod gc;
mod hash;
pub mod include;
mod init;
pub mod lock;
pub mod migrations;
mod observe;
pub mod output;
mod overrides;
mod plan;
mod prebuild;
mod registry;
mod remove;
mod render;
mod repo;
mod setup;
mod shell;
pub mod slug;
mod status;
mod teardown;
pub mod template;
mod verify;

/// Errors crossing module boundaries; each module's own enum sits inside.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
