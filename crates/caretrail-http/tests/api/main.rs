//! End-to-end tests of the HTTP service: the real router served on port 0 over a real database
//! (SQLite and PostgreSQL), driven by an HTTP client. One test binary (one link on a small CI
//! machine), one module per area; each module instantiates its cases for both backends.

mod audit;
mod authorization;
mod commands;
mod common;
mod dashboards;
mod errors;
mod events;
mod operations;
mod roles;
