//! The one reading of a sandbox: what is wanted (the plan, for apply; the
//! lock, for verify) against what `observe` found, as a typed state per
//! link, env file, database and setup command, and the lock against the
//! recipe as typed changes. Pure: no I/O happens here.
//!
//! One reason, two uses: each state decides what apply does (an action,
//! a refusal, or nothing) and carries the words verify reports it with.
//! So "verify is clean" and "apply has nothing to do" are one fact.

mod changes;
mod database;
mod env;
mod link;

pub use changes::{LinkChange, Step, changes, link_changes, steps};
pub use database::{
    DatabaseState, Divergence, Ledger, MigrationFile, Presence, database, diverged_message,
    divergence_words, known_checksums,
};
pub use env::{EnvFileState, env};
pub use link::{LinkState, link};

use crate::sandbox::lock::LinkKind;

/// A link's kind in words, as refusals and findings name it.
pub fn kind_word(kind: LinkKind) -> &'static str {
    if kind == LinkKind::Dir {
        "folder"
    } else {
        "file"
    }
}
