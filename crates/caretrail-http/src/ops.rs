//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document, and
//! the problem+json answers for unknown routes and methods.
//!
//! `/healthz`, `/readyz` and `/openapi.json` are open (probes and clients need them before
//! they hold a token); `/metrics` needs an administrator's or an auditor's token, since it
//! shows the log head and which routes are used how often.

use std::sync::atomic::Ordering::Relaxed;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
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
}

/// The store answers and every read side reports itself caught up.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    match state.app.store().head().await {
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            problems.push("event store unreachable".to_owned());
        }
    }
    if let Some(read) = &state.read {
        match read.projector.lag().await {
            Ok(lag) if lag.behind_events > crate::READY_LAG_EVENTS => problems.push(format!(
                "dashboards are {} events behind the log",
                lag.behind_events
            )),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "readiness: projection lag unknown");
                problems.push("dashboard projection status unknown".to_owned());
            }
        }
    }
    if *state.shutdown.borrow() {
        problems.push("shutting down".to_owned());
    }
    if problems.is_empty() {
        Json(Readiness {
            status: "ready",
            problems,
        })
        .into_response()
    } else {
        // An error like any other (problem+json), with the list as an extension member.
        let mut extensions = serde_json::Map::new();
        extensions.insert("problems".into(), json!(problems));
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the service is not ready; see problems",
        )
        .into_response_with(extensions)
    }
}

/// Prometheus text format, for administrators and auditors (a scraper holds an auditor
/// token).
pub async fn metrics(State(state): State<AppState>, principal: Principal) -> Response {
    if let Err(denied) = principal.require(&[Role::Admin, Role::Auditor], "read metrics") {
        return denied.into_response();
    }
    let store = state.app.store();
    let notifier = store.notifier();
    let w = notifier.metrics();
    let head = notifier.head() as f64;
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
    if let Some(read) = &state.read
        && let Ok(lag) = read.projector.lag().await
    {
        extra.push((
            "caretrail_projection_lag_events",
            "gauge",
            lag.behind_events as f64,
        ));
        extra.push((
            "caretrail_projection_lag_seconds",
            "gauge",
            lag.behind_seconds,
        ));
    }
    let mut res = state.metrics.render(&extra).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// The OpenAPI document as served: generated once with the routes (see [`crate::router`]).
#[derive(Clone, Debug)]
pub struct Document(pub Bytes);

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
