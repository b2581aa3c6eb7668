//! Helpers for the store's integration tests: the shared database harness from
//! `caretrail_store::testing`, and small builders for appends.

#![allow(dead_code)]

pub use caretrail_store::testing::{Harness, postgres, sqlite};
use caretrail_store::{AppendRequest, ExpectedVersion, Metadata, NewEvent, StreamId};

pub fn stream(s: &str) -> StreamId {
    StreamId::new(s).expect("valid stream id")
}

pub fn event(kind: &str, n: u64) -> NewEvent {
    NewEvent::json(kind, 1, &serde_json::json!({ "n": n, "note": "照顾 ✓" })).expect("json")
}

pub fn md() -> Metadata {
    Metadata::actor("tester", "admin")
}

pub fn append(s: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest::single(stream(s), expected, events, md())
}
