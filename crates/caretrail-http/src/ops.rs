//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document, and
//! the problem+json answers for unknown routes and methods.
//!
//! `/healthz`, `/readyz` and `/openapi.json` are open (probes and clients need them before
//! they hold a token); `/metrics` needs an administrator's or an auditor's token, since it
//! shows the log head and which routes are used how often.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::openapi::Json;

/// The answer of `/healthz`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    pub status: HealthStatus,
}

/// Whether the process answers: always `ok` (liveness, not readiness).
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The process answers.
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
    let mut text = state
        .metrics
        .render(state.app.store().as_ref(), &state.ready);
    if let Some(integrations) = &state.integrations {
        integrations.metrics().encode(&mut text);
    }
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
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

/// The read side's lag, for operators.
pub async fn lag(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<caretrail_projections::runner::Lag>> {
    // Positions and lag only, no personal data: every signed-in role may know how fresh the
    // dashboards are (the web page resumes its live stream from the head it reports).
    principal.require(
        &[
            Role::Admin,
            Role::Auditor,
            Role::Director,
            Role::Integration,
        ],
        "read projection status",
    )?;
    let read = state
        .read
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no read side"))?;
    let lag = read
        .projector
        .lag()
        .await
        .map_err(crate::dashboard::projection_error)?;
    Ok(Json(lag))
}
