//! One worktree's sandbox: plan (recipe × worktree ⇒ desired), observe
//! (what is there), state (the one reading of the two), apply (close the
//! gap) and verify (report it), and the lock that records what was realised.

pub(crate) mod apply;
pub(crate) mod copy;
pub mod envfile;
pub mod lock;
pub(crate) mod observe;
pub(crate) mod overrides;
pub(crate) mod plan;
pub(crate) mod setup;
pub(crate) mod state;
pub(crate) mod verify;
