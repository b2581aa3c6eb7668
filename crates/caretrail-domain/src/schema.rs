//! JSON Schemas of every command body and every event's data, generated from the Rust types.
//!
//! The schemas are checked in under `schemas/` at the workspace root so that clients and
//! reviewers can see a contract change in a diff; the `schemas` integration test fails when
//! the checked-in files differ from what this module generates. Regenerate them with
//! `CARETRAIL_BLESS=1 cargo test -p caretrail-domain --test schemas`.

use crate::command::command_schemas;
use crate::event::event_schemas;

/// The command that rewrites the checked-in schemas.
pub const REGENERATE: &str = "CARETRAIL_BLESS=1 cargo test -p caretrail-domain --test schemas";

/// Every schema file as `(path relative to schemas/, content)`, in a fixed order. The content
/// is pretty-printed JSON with a trailing newline.
pub fn generate() -> Result<Vec<(String, String)>, serde_json::Error> {
    let commands = command_schemas()
        .into_iter()
        .map(|(n, s)| (format!("commands/{n}.json"), s));
    let events = event_schemas()
        .into_iter()
        .map(|(n, s)| (format!("events/{n}.json"), s));
    commands
        .chain(events)
        .map(|(path, schema)| Ok((path, serde_json::to_string_pretty(&schema)? + "\n")))
        .collect()
}
