//! Test harness for every crate whose tests need a real database: a fresh, empty database per
//! test on each backend, dropped afterwards. Compiled into the library (it is small) so that the
//! store's, the domain handler's, the projections' and the HTTP layer's tests share one harness.
//!
//! PostgreSQL tests read `CARETRAIL_PG_URL` (a server URL whose user may create databases).
//! Each test creates its own database and drops it afterwards. Without the variable they print
//! one line saying they were skipped; with `CI=true` a missing variable fails instead.

use std::sync::Arc;

use crate::{EventStore, StoreOptions, connect};

/// A fresh, empty database of one backend.
pub struct Harness {
    /// Database URL of the fresh database (`sqlite://…` or `postgres://…`).
    pub url: String,
    /// Which backend it is: `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    _guard: Guard,
}

enum Guard {
    // Held only for its Drop, which deletes the directory.
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

    /// Opens a store on this harness's database with the given tuning.
    pub async fn open_with(&self, options: StoreOptions) -> Arc<dyn EventStore> {
        connect(&self.url, options)
            .await
            .unwrap_or_else(|e| panic!("open {} store: {e}", self.backend))
    }
}

/// A fresh SQLite database in a temporary directory, deleted when the harness drops. Always
/// `Some`; the `Option` matches [`postgres`].
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

/// A fresh PostgreSQL database on the `CARETRAIL_PG_URL` server, dropped when the harness
/// drops; `None` when the variable is unset (see [`pg_url`]).
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

/// Instantiates async test cases once per backend: `both_backends!(case_a, case_b)` expects
/// `async fn case_a(h: &Harness)` beside it and makes `sqlite::case_a` and `postgres::case_a`,
/// each on a fresh database (PostgreSQL ones skip with a message when `CARETRAIL_PG_URL` is not
/// set, and fail under `CI=true`). The calling crate needs tokio's test macro.
#[macro_export]
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(h) = $crate::testing::sqlite().await {
                        super::$case(&h).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(h) = $crate::testing::postgres().await {
                        super::$case(&h).await;
                    }
                }
            )*
        }
    };
}
