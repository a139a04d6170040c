//! The recipe: what the repository commits. `provision.toml` (config),
//! `.worktreeinclude` (include), the `{key}` templates in its values, and
//! `init`, which writes a first recipe.

pub mod config;
pub mod include;
pub(crate) mod init;
pub mod template;
pub mod trust;
