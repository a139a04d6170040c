//! One integration-test binary: every test drives the real `provision`
//! binary in real git repositories built from scratch in temp dirs.

mod pg_server;
mod support;

mod agents;
mod command;
mod crash;
mod ecosystem;
mod formats;
mod hostile;
mod layouts;
mod lifecycle;
mod links;
mod mcp;
mod migration_runs;
mod postgres;
mod properties;
mod recipe;
mod sandbox;
mod setup;
mod snapshots;
mod state;
mod stress;
mod tools;
mod trust;
mod workflow;
