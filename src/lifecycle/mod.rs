//! Sandboxes over time: the registry of what provision created (the roots),
//! and taking sandboxes down again: `remove`, `gc` and the `status` of all.

pub(crate) mod create;
pub(crate) mod gc;
pub(crate) mod orphans;
pub(crate) mod registry;
pub(crate) mod remove;
pub(crate) mod status;
pub(crate) mod teardown;
