//! Coding agents that make worktrees themselves: their hooks, and the
//! settings that point those hooks at provision.

pub mod claude_code;
mod ordered_json;
