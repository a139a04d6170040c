//! One integration-test binary: every test drives the real `provision`
//! binary in real git repositories built from scratch in temp dirs.

mod pg_server;
mod support;

mod agents;
mod chaos;
mod clones;
mod command;
mod compose;
mod crash;
mod database_safety;
mod divergence;
mod ecosystem;
mod faults;
mod formats;
mod hostile;
mod layouts;
mod lifecycle;
mod links;
mod mcp;
mod migration_runs;
mod ports;
mod postgres;
mod processes;
mod properties;
mod recipe;
mod sandbox;
mod services;
mod setup;
mod snapshots;
mod state;
mod store;
mod stress;
mod tools;
mod trust;
mod workflow;
