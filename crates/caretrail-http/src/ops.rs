//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document, and
//! the problem+json answers for unknown routes and methods.
//!
//! `/healthz`, `/readyz` and `/openapi.json` are open (probes and clients need them before
//! they hold a token); `/metrics` needs an administrator's or an auditor's token, since it
//! shows the log head and which routes are used how often.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use caretrail_store::TaskReport;
use serde::Serialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::ApiError;
use crate::openapi::Json;

/// The answer of `/healthz`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: HealthStatus,
}

/// See [`Health`].
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
}

/// The process is up.
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: HealthStatus::Ok,
    })
}

/// The answer of `/readyz`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Readiness {
    /// `ready`, or `not_ready` (with status 503).
    pub status: &'static str,
    /// Why not ready, one sentence each; absent when ready.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Each background task's health: `task`, `state`, last success, last error kind,
    /// consecutive failures, position and lag.
    pub tasks: Vec<serde_json::Value>,
}

/// How long `/readyz` waits for the database to answer before calling it unavailable.
const READY_PROBE: Duration = Duration::from_secs(1);

/// Ready means: the database answers within [`READY_PROBE`], and every background task
/// registered in the store's health registry (writer, projector, audit tree, checkpointer) is
/// alive, not failing, reporting, and within the lag bounds of [`AppState::ready`]. The tasks'
/// figures come from memory, so the answer takes at most the probe's second even while the
/// database does not answer.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.app.store();
    let mut problems = store.health().problems(&state.ready);
    // The tasks notice an outage at their next unit of work; the probe notices it now.
    match tokio::time::timeout(READY_PROBE, store.head()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "readiness: store unavailable");
            problems.push(format!("the event store is unavailable ({})", e.kind()));
        }
        Err(_) => problems.push(format!(
            "the event store did not answer within {} s",
            READY_PROBE.as_secs()
        )),
    }
    if *state.shutdown.borrow() {
        problems.push("shutting down".to_owned());
    }
    let tasks = store.health().report();
    if problems.is_empty() {
        Json(Readiness {
            status: "ready",
            problems,
            tasks: tasks.iter().map(|t| json!(t)).collect(),
        })
        .into_response()
    } else {
        // An error like any other (problem+json), with the list as an extension member.
        let mut extensions = serde_json::Map::new();
        extensions.insert("problems".into(), json!(problems));
        extensions.insert("tasks".into(), json!(tasks));
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the service is not ready; see problems",
        )
        .into_response_with(extensions)
    }
}

/// Prometheus text format, for administrators and auditors (a scraper holds an auditor
/// token). Everything comes from memory (the writer's counters, the health
/// registry), never from the database, so scraping works, and shows the outage, while the
/// database does not answer.
pub async fn metrics(State(state): State<AppState>, principal: Principal) -> Response {
    if let Err(denied) = principal.require(&[Role::Admin, Role::Auditor], "read metrics") {
        return denied.into_response();
    }
    let store = state.app.store();
    let notifier = store.notifier();
    let w = notifier.metrics();
    let head = notifier.head() as f64;
    let tasks = store.health().report();
    let mut extra = vec![
        (
            "caretrail_store_commits_total",
            "counter",
            w.commits.load(Relaxed) as f64,
        ),
        (
            "caretrail_store_appends_total",
            "counter",
            w.appends.load(Relaxed) as f64,
        ),
        (
            "caretrail_store_appends_rejected_total",
            "counter",
            w.rejected.load(Relaxed) as f64,
        ),
        (
            "caretrail_store_events_appended_total",
            "counter",
            w.events.load(Relaxed) as f64,
        ),
        ("caretrail_store_head_position", "gauge", head),
    ];
    if let Some(p) = tasks.iter().find(|t| t.task == "projector") {
        extra.push((
            "caretrail_projection_lag_events",
            "gauge",
            p.behind_events.unwrap_or(0) as f64,
        ));
        extra.push((
            "caretrail_projection_lag_seconds",
            "gauge",
            p.behind_seconds.unwrap_or(0.0),
        ));
    }
    let healthy = store.health().problems(&state.ready).is_empty();
    let mut text = state.metrics.render(&extra);
    text.push_str(&task_metrics(&tasks, healthy));
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// The OpenAPI document as served: generated once with the routes (see [`crate::router`]).
#[derive(Clone, Debug)]
pub struct Document(pub Bytes);

/// The health registry as gauges, one series per task.
fn task_metrics(tasks: &[TaskReport], healthy: bool) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, values: Vec<(String, f64)>| {
        if values.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, v) in values {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    };
    let label = |t: &TaskReport| format!("task=\"{}\"", t.task);
    family(
        "caretrail_task_up",
        "1 while a background task is alive and not failing.",
        tasks
            .iter()
            .map(|t| (label(t), if t.is_up() { 1.0 } else { 0.0 }))
            .collect(),
    );
    family(
        "caretrail_task_consecutive_failures",
        "Failures of a background task since its last success.",
        tasks
            .iter()
            .map(|t| (label(t), f64::from(t.consecutive_failures)))
            .collect(),
    );
    family(
        "caretrail_task_last_success_timestamp_seconds",
        "When a background task last succeeded (Unix time).",
        tasks
            .iter()
            .filter_map(|t| {
                let at = t.last_success?;
                Some((label(t), at.timestamp_micros() as f64 / 1e6))
            })
            .collect(),
    );
    family(
        "caretrail_task_last_error_info",
        "The kind of a background task's most recent failure.",
        tasks
            .iter()
            .filter_map(|t| Some((format!("{},kind=\"{}\"", label(t), t.last_error?), 1.0)))
            .collect(),
    );
    family(
        "caretrail_task_position",
        "The log position a consumer task has handled.",
        tasks
            .iter()
            .filter_map(|t| Some((label(t), t.position? as f64)))
            .collect(),
    );
    family(
        "caretrail_task_lag_events",
        "Events a consumer task is behind the head.",
        tasks
            .iter()
            .filter_map(|t| Some((label(t), t.behind_events? as f64)))
            .collect(),
    );
    family(
        "caretrail_task_lag_seconds",
        "How long a consumer task has been behind the head.",
        tasks
            .iter()
            .filter(|t| t.position.is_some())
            .map(|t| (label(t), t.behind_seconds.unwrap_or(0.0)))
            .collect(),
    );
    family(
        "caretrail_task_silent_seconds",
        "Seconds since a background task last reported.",
        tasks.iter().map(|t| (label(t), t.silent_seconds)).collect(),
    );
    let _ = writeln!(
        out,
        "# HELP caretrail_tasks_healthy 1 when every background task is within its readiness bounds."
    );
    let _ = writeln!(out, "# TYPE caretrail_tasks_healthy gauge");
    let _ = writeln!(out, "caretrail_tasks_healthy {}", u8::from(healthy));
    out
}

/// The OpenAPI 3.1 document, generated from the code.
pub async fn openapi(Extension(Document(doc)): Extension<Document>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc,
    )
        .into_response()
}

/// Unknown routes answer problem+json too.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

/// A known route asked with a method it does not take (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method; see the Allow header",
    )
}
