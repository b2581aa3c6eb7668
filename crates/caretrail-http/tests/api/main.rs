//! End-to-end tests of the HTTP service: the real router served on port 0 over a real database
//! (SQLite and PostgreSQL), driven by an HTTP client. One test binary (one link on a small CI
//! machine), one module per area; each module instantiates its cases for both backends.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

mod accounts;
mod audit;
mod authorization;
mod commands;
mod common;
mod dashboards;
mod errors;
mod events;
mod imports;
mod operations;
mod reports;
mod roles;
mod search;
mod subscription_attacks;
mod subscriptions;
