//! One integration-test binary: every test drives the real `provision`
//! binary in real git repositories built from scratch in temp dirs.

mod pg_server;
mod support;

mod chaos;
mod command;
mod crash;
mod ecosystem;
mod hostile;
mod lifecycle;
mod links;
mod postgres;
mod properties;
mod recipe;
mod sandbox;
mod setup;
mod snapshots;
mod stress;
mod trust;
mod workflow;
