//! Sandboxes over time: the registry of what provision created (the roots),
//! creating them (`create`), taking them down again (`remove`, `gc`, over
//! `teardown`), and the `status` of all; `orphans` is the one table `gc`
//! and `status` judge a record without a worktree by; `leftover` and
//! `pending` finish what a git step cut short left; `identity` is the
//! clone's, which marks its databases.

pub(crate) mod create;
pub(crate) mod gc;
pub(crate) mod identity;
pub(crate) mod leftover;
pub(crate) mod orphans;
pub(crate) mod pending;
pub(crate) mod ports;
pub(crate) mod registry;
pub(crate) mod remove;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod teardown;
