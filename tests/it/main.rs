//! One integration-test binary: every test drives the real `provision`
//! binary in real git repositories built from scratch in temp dirs.

mod support;

mod lifecycle;
mod recipe;
mod sandbox;
mod snapshots;
