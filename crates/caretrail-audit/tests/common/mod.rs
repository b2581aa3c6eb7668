//! Helpers for the audit crate's integration tests: the shared per-test database harness from
//! `caretrail_store::testing`, builders for appends, and `tamper`, which changes stored rows the
//! way a superuser could, with the store's protective triggers bypassed.

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

/// Runs `statements` on one connection with the event log's triggers bypassed, as a database
/// superuser could: SQLite drops them, PostgreSQL turns them off for the session
/// (`session_replication_role = replica`).
pub async fn tamper(h: &Harness, statements: &[String]) {
    use sqlx::Connection;
    if h.backend == "sqlite" {
        let mut c = sqlx::SqliteConnection::connect(&h.url)
            .await
            .expect("connect sqlite");
        for t in [
            "events_position_is_next",
            "events_stream_version_is_next",
            "events_record_time_monotonic",
            "events_refuse_update",
            "events_refuse_delete",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER IF EXISTS {t}")))
                .execute(&mut c)
                .await
                .expect("drop trigger");
        }
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.clone()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    } else {
        let mut c = sqlx::PgConnection::connect(&h.url)
            .await
            .expect("connect pg");
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut c)
            .await
            .expect("bypass triggers");
        for s in statements {
            sqlx::query(sqlx::AssertSqlSafe(s.clone()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }
}
