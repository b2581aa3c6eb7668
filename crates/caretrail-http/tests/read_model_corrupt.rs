//! Regression test of issue 15, item 1, over HTTP on both backends: a corrupt read-model row
//! (a bad date, a bad UUID, a NULL where a value is required) makes the dashboard that reads
//! it answer 500 problem+json with the stable code `read_model_corrupt`, and the server logs
//! the table and the column. Before, the value was read as a default (a nil UUID, `0`, `""`,
//! 0001-01-01) and shown as a plausible answer.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, OnceLock};

use caretrail_http::Role;
use caretrail_store::Database;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};

caretrail_store::both_backends!(
    a_corrupt_read_model_row_answers_500_read_model_corrupt_and_is_logged,
);

/// Collects the formatted log lines of every test in this binary.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide log capture (one subscriber per process; both backends' cases share it).
fn log() -> &'static Lines {
    static LINES: OnceLock<Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Lines::default();
        let writer = lines.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::ERROR)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        lines
    })
}

async fn sql(db: &Database, statement: String) {
    match db {
        Database::Sqlite(p) => {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(p)
                .await
                .unwrap();
        }
        Database::Postgres(p) => {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(p)
                .await
                .unwrap();
        }
    }
}

async fn live_generation(db: &Database) -> i64 {
    let q = "SELECT live_generation FROM projection_meta";
    match db {
        Database::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
        Database::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.unwrap(),
    }
}

async fn a_corrupt_read_model_row_answers_500_read_model_corrupt_and_is_logged(h: &Harness) {
    let log = log();
    let master = caretrail_app::MasterKey::generate().unwrap();
    let service = caretrail_http::testing::demo_service(h, master, |_| {}).await;
    let admin = service
        .tokens
        .create(Role::Admin, None, "admin")
        .await
        .unwrap()
        .1;
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client
            .get(format!("{}{path}", service.base))
            .bearer_auth(&admin);
        async move {
            let res = request.send().await.unwrap();
            let status = res.status();
            let content_type = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, content_type, res.json::<Value>().await.unwrap())
        }
    };
    let cases = [
        (
            "/api/v1/pairings?as_of=2021-10-31&include_ended=true",
            "pairings",
            "due_on",
        ),
        ("/api/v1/visits", "visits", "id"),
        ("/api/v1/directors?as_of=2021-10-31", "directors", "role"),
    ];
    // The dashboards answer while the rows are sound (and the projector has caught up). Under
    // another query than the one asked below: an answer stays cached until the projector
    // applies a batch, and rows rewritten behind its back do not move that, so the same query
    // would answer from before the rows were spoilt.
    for (path, ..) in cases {
        let sep = if path.contains('?') { '&' } else { '?' };
        let (status, _, body) = get(&format!("{path}{sep}limit=50")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(!body["items"].as_array().unwrap().is_empty(), "{body}");
    }
    let db = service.app.store().database();
    let g = live_generation(&db).await;
    // A bad date, a bad UUID and a NULL where a value is required, each in the first row of
    // its table.
    for (table, column, value) in [
        ("pairings", "due_on", "'2021-02-30'"),
        ("visits", "id", "'not-a-uuid'"),
        ("directors", "role", "NULL"),
    ] {
        let t = format!("rm{g}_{table}");
        sql(
            &db,
            format!("UPDATE {t} SET {column} = {value} WHERE id = (SELECT MIN(id) FROM {t})"),
        )
        .await;
    }
    for (path, table, column) in cases {
        let (status, content_type, problem) = get(path).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}: {problem}"
        );
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{path}"
        );
        assert_eq!(problem["code"], json!("read_model_corrupt"), "{problem}");
        assert_eq!(problem["status"], json!(500), "{problem}");
        // The body names no table, column or value: those are for the log.
        let text = problem.to_string();
        assert!(
            !text.contains(column) && !text.contains("not-a-uuid"),
            "{text}"
        );
        let logged = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
        assert!(
            logged.lines().any(|l| l.contains("read_model_corrupt")
                && l.contains(&format!("table={table} "))
                && l.contains(&format!("column={column} "))),
            "no log line names {table}.{column}:\n{logged}"
        );
    }
}
