//! Test harness for the audit crate's integration tests, copied from the event store's
//! (`crates/caretrail-store/tests/common`): a fresh database per test on each backend, a helper to
//! build appends, and `tamper`, which changes stored rows the way a superuser could, with the
//! store's protective triggers bypassed.
//!
//! PostgreSQL tests read `CARETRAIL_PG_URL` (a server URL whose user may create databases).
//! Each test creates its own database and drops it afterwards. Without the variable they print
//! one line saying they were skipped; with `CI=true` a missing variable fails instead.

#![allow(dead_code)]

use std::sync::Arc;

use caretrail_store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, StoreOptions, StreamId, connect,
};

/// A fresh, empty database of one backend.
pub struct Harness {
    pub url: String,
    pub backend: &'static str,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, db: String },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres { admin_url, db } = self {
            let (admin_url, db) = (admin_url.clone(), db.clone());
            // Dropping runs outside any runtime the test may still hold; a short-lived one on
            // its own thread cleans up.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                    }
                });
            })
            .join();
        }
    }
}

impl Harness {
    /// Opens a store (a new pool and writer) on this harness's database.
    pub async fn open(&self) -> Arc<dyn EventStore> {
        self.open_with(StoreOptions::default()).await
    }

    pub async fn open_with(&self, options: StoreOptions) -> Arc<dyn EventStore> {
        connect(&self.url, options)
            .await
            .unwrap_or_else(|e| panic!("open {} store: {e}", self.backend))
    }
}

pub async fn sqlite() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    Some(Harness {
        url,
        backend: "sqlite",
        _guard: Guard::Sqlite(dir),
    })
}

/// The PostgreSQL server URL from the environment, or `None` after printing why not.
pub fn pg_url() -> Option<String> {
    match std::env::var("CARETRAIL_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CARETRAIL_PG_URL is not set, and CI=true forbids skipping PostgreSQL tests"
                );
            }
            eprintln!(
                "skipped: CARETRAIL_PG_URL is not set, so this PostgreSQL test did not run \
                 (.ci/run sets it)"
            );
            None
        }
    }
}

pub async fn postgres() -> Option<Harness> {
    use sqlx::Connection;
    let admin_url = pg_url()?;
    let db = format!("caretrail_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to CARETRAIL_PG_URL: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = with_database(&admin_url, &db);
    Some(Harness {
        url,
        backend: "postgres",
        _guard: Guard::Postgres { admin_url, db },
    })
}

/// `url` with its database path replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

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
