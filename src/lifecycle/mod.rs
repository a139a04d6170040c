//! Sandboxes over time: the registry of what provision created (the roots),
//! creating them (`create`), taking them down again (`remove`, `gc`, over
//! `teardown`), and the `status` of all; `orphans` is the one table `gc`
//! and `status` judge a record without a worktree by; `leftover` and
//! `pending` finish what a git step cut short left.

pub(crate) mod create;
pub(crate) mod gc;
pub(crate) mod leftover;
pub(crate) mod orphans;
pub(crate) mod pending;
pub(crate) mod ports;
pub(crate) mod registry;
pub(crate) mod remove;
pub(crate) mod status;
pub(crate) mod teardown;
