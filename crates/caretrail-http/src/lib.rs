//! caretrail's HTTP API: commands, the event log, live event streams, dashboards and
//! operations endpoints, on axum.
//!
//! [`router`] builds the whole `Router` from an [`AppState`] (tests drive it directly or on port
//! 0); [`Server`] (`server.rs`) binds it, limits what each connection may hold (header-read and
//! idle timeouts, a connection cap) and shuts it down gracefully: stop accepting, let in-flight
//! requests finish, end live streams.
//!
//! Architecture invariant: handlers translate HTTP to calls on `caretrail-app`,
//! `caretrail-store` and the read side, and errors to problem+json; rules live in the domain,
//! never here. Personal data leaves the server only through `caretrail_app::view` with the
//! caller's role deciding the access.

pub mod accounts;
pub mod application;
pub mod audit;
pub mod auth;
pub mod background;
pub mod caller;
pub mod commands;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod extract;
pub mod idempotency;
pub mod imports;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod ops;
pub mod password;
pub mod reports;
pub mod server;
pub mod session;
pub mod subscriptions;
mod tables;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use aide::axum::ApiRouter;
use aide::axum::routing::{get_with, post_with};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Router};
use caretrail_app::App;
use tokio::sync::watch;

pub use application::{Application, BuildError, Config};
pub use auth::{Principal, RateLimiter, Role, TokenStore};
pub use error::{ApiError, ApiResult};
pub use server::{ConnectionLimits, Server};

/// Largest request body accepted (a visit with many participants is a few kilobytes).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler shares: one `Arc` around [`Shared`], so the clones axum makes of the
/// state for every extractor and middleware of every request are one reference count each,
/// not one per field (a dozen `Arc`s and a `watch::Receiver`, cloned and dropped several times
/// per request, showed up in the command path's profile).
///
/// Reads go through `Deref`; changing a field before serving (`state.read = ...`, as the
/// application's build and tests do) goes through `DerefMut`, which copies the shared fields
/// first if another clone holds them, so a change never reaches a clone made before it.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }
}

/// The fields of [`AppState`].
#[derive(Clone)]
pub struct Shared {
    /// The command handler, with the event store and the personal-data key ring under it.
    pub app: Arc<App>,
    /// Bearer tokens and their verification cache.
    pub tokens: Arc<TokenStore>,
    /// Requests per authenticated token.
    pub limiter: Arc<RateLimiter>,
    /// Requests without a valid token, per client address (`auth::limit_anonymous`).
    pub anonymous: Arc<RateLimiter<std::net::IpAddr>>,
    /// The service's Prometheus metrics, served at `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Flips to true when the server starts shutting down; live streams end on it.
    pub shutdown: watch::Receiver<bool>,
    /// Interval of SSE keep-alive comments.
    pub heartbeat: Duration,
    /// The dashboards' read side, when enabled.
    pub read: Option<dashboard::ReadSide>,
    /// The audit tree and checkpoints, when enabled.
    pub auditor: Option<Arc<caretrail_audit::Auditor>>,
    /// Long operations (rebuilds, exports) started over HTTP.
    pub operations: Arc<operations::Operations>,
    /// Renderings of recent events shared by live subscribers.
    pub renders: Arc<events::Renders>,
    /// How far behind (events and time) a background task may be while `/readyz` says ready.
    pub ready: caretrail_store::ReadyBounds,
    /// Integrations' subscriptions (webhooks, NATS), when enabled.
    pub integrations: Option<Arc<caretrail_integrations::Integrations>>,
    /// Roster import previews waiting to be committed (`imports`).
    pub imports: Arc<imports::Imports>,
}

impl AppState {
    /// State for `app` with default limits; `shutdown` comes from [`Server`] or a test.
    pub fn new(app: Arc<App>, tokens: Arc<TokenStore>, shutdown: watch::Receiver<bool>) -> Self {
        Self(Arc::new(Shared {
            app,
            tokens,
            limiter: Arc::new(RateLimiter::new(20_000, 40_000)),
            // Ample for probes, a browser signing in and a script with a typo; not for a flood.
            anonymous: Arc::new(RateLimiter::new(10, 50)),
            metrics: Arc::new(metrics::Metrics::default()),
            shutdown,
            heartbeat: Duration::from_secs(15),
            read: None,
            auditor: None,
            operations: Arc::new(operations::Operations::default()),
            renders: Arc::new(events::Renders::default()),
            ready: caretrail_store::ReadyBounds::default(),
            integrations: None,
            imports: Arc::new(imports::Imports::default()),
        }))
    }
}

/// The API's routes, each registered with its documentation (see [`openapi`]): the route
/// table of the service, and the source of its OpenAPI document.
pub fn api_routes() -> ApiRouter<AppState> {
    use aide::transform::TransformOperation;
    use openapi::{Describe, json_answer, response};
    use serde_json::json;

    let mut commands = ApiRouter::new();
    // One path per command: each has its own request schema, so clients and generated tests
    // see exactly the fields of the command they send.
    for &name in caretrail_domain::command::COMMAND_NAMES {
        // Subscriptions are changed through their resource (below), which makes the secret;
        // accounts through theirs, which keeps the credentials.
        if caretrail_domain::CommandKind::from_name(name)
            .is_some_and(|k| k.is_subscription() || k.is_account())
        {
            continue;
        }
        commands = commands.api_route(
            &format!("/commands/{name}"),
            post_with(
                move |state: State<AppState>,
                      principal: Principal,
                      headers: HeaderMap,
                      body: Result<Bytes, BytesRejection>| {
                    commands::command(state, principal, Path(name.to_owned()), headers, body)
                },
                move |op| openapi::command(op, name),
            ),
        );
    }
    fn dashboard_problems(op: TransformOperation<'_>) -> TransformOperation<'_> {
        op.problem(403, "the token's role may not read this (forbidden)")
            .problem(403, "only administrators and auditors may replay the log (as_of_position, as_of_recorded_at)")
            .problem(503, "dashboards are not enabled on this server (read_side_unavailable)")
    }
    fn audit_problems(op: TransformOperation<'_>) -> TransformOperation<'_> {
        op.problem(
            403,
            "only administrators and auditors read the audit tree (forbidden)",
        )
        .problem(
            503,
            "the audit tree is not enabled on this server (audit_unavailable)",
        )
    }
    let started = |what: &str| {
        json_answer::<operations::OperationStatus>(
            &format!("started: {what}; poll the operation at Location"),
            json!({ "Location": { "description": "/api/v1/operations/{id}",
                                  "schema": { "type": "string" } } }),
        )
    };
    let api = commands
        .api_route(
            "/events",
            get_with(events::page, |op| {
                op.describe("events", "events", "A page of the global event log, in position order")
                    .problem(403, "directors do not read the whole log (forbidden)")
            }),
        )
        .api_route(
            "/events/subscribe",
            get_with(events::subscribe, |op| {
                op.describe(
                    "subscribe",
                    "events",
                    "Server-Sent Events: stored events after the position, then live ones; `id:` is the position",
                )
                .header(
                    "Last-Event-ID",
                    "Resume after this log position (what the last event's `id:` said); takes precedence over `after`.",
                    json!({ "type": "string", "pattern": "^[\t ]*[0-9]{1,19}[\t ]*$" }),
                )
                .problem(400, "Last-Event-ID is not a log position (invalid_last_event_id)")
            }),
        )
        .api_route(
            "/streams/{id}",
            get_with(events::stream, |op| {
                op.describe("stream", "events", "One stream's events in version order")
                    .problem(400, "the stream id is malformed (invalid_stream_id)")
                    .problem(404, "a director reading a stream that is neither theirs, their pairing's, their model worker's nor a visit about them (not_found)")
            }),
        )
        .api_route(
            "/me",
            get_with(caller::me, |op| {
                op.describe("me", "dashboards", "Who the token belongs to (role, name, director) and the commands it may send")
            }),
        )
        .api_route(
            "/dashboard/overview",
            get_with(dashboard::overview, |op| {
                dashboard_problems(op.describe(
                    "overview",
                    "dashboards",
                    "Overview: coverage, visits, money and goods, open issues by age",
                ))
            }),
        )
        .api_route(
            "/dashboard/issues",
            get_with(dashboard::issue_summary, |op| {
                dashboard_problems(op.describe(
                    "issueSummary",
                    "dashboards",
                    "Issues summary: open by state and age, by body, median days to resolve",
                ))
            }),
        )
        .api_route(
            "/dashboard/gifts",
            get_with(dashboard::gifts, |op| {
                dashboard_problems(op.describe("gifts", "dashboards", "Gifts by month, city, county or director"))
            }),
        )
        .api_route(
            "/dashboard/projections",
            get_with(ops::lag, |op| {
                op.describe("projectionLag", "dashboards", "How far the dashboards are behind the log")
                    .problem(404, "dashboards are not enabled on this server (not_found)")
            }),
        )
        .api_route(
            "/pairings",
            get_with(dashboard::pairings, |op| {
                dashboard_problems(op.describe(
                    "pairings",
                    "dashboards",
                    "Visit status per pairing (status=overdue is the overdue list, most overdue first), searchable by name",
                ))
                .problem(403, "auditors and integrations may not search by name (forbidden)")
            }),
        )
        .api_route(
            "/directors",
            get_with(dashboard::directors, |op| {
                dashboard_problems(op.describe("directors", "dashboards", "Director caseload and engagement, searchable by name"))
                    .problem(403, "auditors and integrations may not search by name (forbidden)")
            }),
        )
        .api_route(
            "/model-workers",
            get_with(dashboard::model_workers, |op| {
                dashboard_problems(op.describe(
                    "modelWorkers",
                    "dashboards",
                    "Model workers, by region, hardship, pairing and name (a director sees their own)",
                ))
                .problem(403, "auditors and integrations may not search by name (forbidden)")
            }),
        )
        .api_route(
            "/model-workers/{id}",
            get_with(dashboard::model_worker, |op| {
                dashboard_problems(op.describe(
                    "modelWorker",
                    "dashboards",
                    "A model worker's file: profile, hardship, pairings, care timeline",
                ))
                .problem(404, "no such model worker, or not the director's own (not_found)")
            }),
        )
        .api_route(
            "/model-workers/{id}/timeline",
            get_with(dashboard::timeline, |op| {
                dashboard_problems(op.describe(
                    "timeline",
                    "dashboards",
                    "A model worker's care timeline, every event in order",
                ))
                .problem(404, "no such model worker, or not the director's own (not_found)")
            }),
        )
        .api_route(
            "/visits",
            get_with(dashboard::visits, |op| {
                dashboard_problems(op.describe(
                    "visits",
                    "dashboards",
                    "Visits, newest first, with their gift totals (a director sees the visits they led)",
                ))
            }),
        )
        .api_route(
            "/issues",
            get_with(dashboard::issues, |op| {
                dashboard_problems(op.describe("issues", "dashboards", "The issues board, oldest first"))
            }),
        )
        .api_route(
            "/divisions",
            get_with(caller::divisions, |op| {
                op.describe(
                    "divisions",
                    "dashboards",
                    "Zhejiang's current administrative divisions (GB/T 2260): code, name, level, parent",
                )
            }),
        )
        .api_route(
            "/regions",
            get_with(dashboard::regions, |op| {
                dashboard_problems(op.describe("regions", "dashboards", "Region coverage per city or county"))
            }),
        )
        .api_route(
            "/reports/monthly",
            get_with(reports::monthly, |op| {
                reports::document(op, "monthlyReport", "A month's report (XLSX, CSV or JSON)")
            }),
        )
        .api_route(
            "/reports/yearly",
            get_with(reports::yearly, |op| {
                reports::document(op, "yearlyReport", "A year's report (XLSX, CSV or JSON)")
            }),
        )
        .api_route(
            "/audit/checkpoint",
            get_with(audit::checkpoint, |op| {
                audit_problems(op.describe(
                    "checkpoint",
                    "audit",
                    "The latest signed checkpoint (tree size, root hash, signed note)",
                ))
                .problem(404, "no checkpoint has been signed yet (not_found)")
            }),
        )
        .api_route(
            "/audit/proof/inclusion",
            get_with(audit::inclusion, |op| {
                audit_problems(op.describe(
                    "inclusionProof",
                    "audit",
                    "RFC 6962 inclusion proof of a position in a tree size",
                ))
                .problem(400, "the position or tree size is outside the signed tree (out_of_range)")
            }),
        )
        .api_route(
            "/audit/proof/consistency",
            get_with(audit::consistency, |op| {
                audit_problems(op.describe(
                    "consistencyProof",
                    "audit",
                    "RFC 6962 consistency proof between two tree sizes",
                ))
                .problem(400, "a tree size is outside the tree, or from > to (out_of_range)")
            }),
        )
        .api_route(
            "/audit/leaf/{position}",
            get_with(audit::leaf, |op| {
                audit_problems(op.describe(
                    "leaf",
                    "audit",
                    "The raw leaf encoding of an event and its leaf hash",
                ))
                .problem(400, "no event at this position in the tree (out_of_range)")
            }),
        )
        .api_route(
            "/subscriptions",
            post_with(subscriptions::create, |op| {
                op.describe(
                    "createSubscription",
                    "subscriptions",
                    "Create a subscription: a durable, filtered feed of the log delivered as signed webhooks or to NATS JetStream (administrators). The answer holds the webhook signing secret, this once",
                )
                .with(|op| openapi::json_body::<caretrail_integrations::CreateRequest>(op, true))
                .answer(201, json_answer::<caretrail_integrations::Created>("created; Location names it", json!({
                    "Location": { "description": "/api/v1/subscriptions/{id}", "schema": { "type": "string" } },
                    "Cache-Control": { "description": "no-store: the answer holds the secret", "schema": { "type": "string" } } })))
                .problem(400, "the body is not JSON (malformed_json), or an object in it holds one key twice (duplicate_json_key)")
                .problem(403, "only administrators create subscriptions (forbidden)")
                .problem(409, "NATS delivery is not configured on this server (nats_not_configured)")
                .problem(422, "a field is invalid (validation_failed, subscription_* codes, webhook_url_* codes: a private address, plain http, credentials), or start_after is past the head (position_after_head)")
                .problem(503, "integrations are not enabled on this server (integrations_unavailable)")
            })
            .get_with(subscriptions::list, |op| {
                op.describe(
                    "subscriptions",
                    "subscriptions",
                    "Every subscription with its delivery state and lag (administrators and auditors; an integration sees its own)",
                )
                .problem(403, "directors do not read subscriptions (forbidden)")
            }),
        )
        .api_route(
            "/subscriptions/{id}",
            get_with(subscriptions::get, |op| {
                op.describe("subscription", "subscriptions", "One subscription's delivery state and lag")
                    .problem(403, "directors do not read subscriptions (forbidden)")
                    .problem(404, "no such subscription (not_found)")
            })
            .delete_with(subscriptions::delete, |op| {
                op.describe(
                    "deleteSubscription",
                    "subscriptions",
                    "Delete a subscription: delivery stops and its signing secrets are destroyed (administrators)",
                )
                .answer(204, response(json!({ "description": "deleted" })))
                .problem(403, "only administrators delete subscriptions (forbidden)")
                .problem(404, "no such subscription (not_found)")
            }),
        )
        .api_route(
            "/subscriptions/{id}/attempts",
            get_with(subscriptions::attempts, |op| {
                op.describe("subscriptionAttempts", "subscriptions", "The most recent delivery attempts, newest first")
                    .problem(403, "directors do not read subscriptions (forbidden)")
                    .problem(404, "no such subscription (not_found)")
            }),
        )
        .api_route(
            "/subscriptions/{id}/pause",
            post_with(subscriptions::pause, |op| {
                op.describe("pauseSubscription", "subscriptions", "Pause delivery; the cursor stays (administrators)")
                    .problem(403, "only administrators change subscriptions (forbidden)")
                    .problem(404, "no such subscription (not_found)")
                    .problem(409, "already paused (subscription_already_paused)")
            }),
        )
        .api_route(
            "/subscriptions/{id}/resume",
            post_with(subscriptions::resume, |op| {
                op.describe("resumeSubscription", "subscriptions", "Resume a paused or disabled subscription from its cursor (administrators)")
                    .problem(403, "only administrators change subscriptions (forbidden)")
                    .problem(404, "no such subscription (not_found)")
                    .problem(409, "neither paused nor disabled (subscription_not_stopped)")
            }),
        )
        .api_route(
            "/subscriptions/{id}/rewind",
            post_with(subscriptions::rewind, |op| {
                op.describe("rewindSubscription", "subscriptions", "Deliver again from the event after a position, for a rebuilt downstream (administrators)")
                    .with(|op| openapi::json_body::<subscriptions::RewindRequest>(op, true))
                    .problem(403, "only administrators change subscriptions (forbidden)")
                    .problem(404, "no such subscription (not_found)")
                    .problem(422, "the body is invalid (validation_failed) or the position is past the head (position_after_head)")
            }),
        )
        .api_route(
            "/subscriptions/{id}/rotate-secret",
            post_with(subscriptions::rotate, |op| {
                op.describe("rotateSubscriptionSecret", "subscriptions", "Make a new signing secret; the previous one signs too for a grace period (administrators). The answer holds the new secret, this once")
                    .with(|op| openapi::json_body::<subscriptions::RotateRequest>(op, false))
                    .answer(200, json_answer::<caretrail_integrations::Rotated>("rotated; the answer holds the new secret", json!({
                        "Cache-Control": { "description": "no-store: the answer holds the secret", "schema": { "type": "string" } } })))
                    .problem(403, "only administrators change subscriptions (forbidden)")
                    .problem(404, "no such subscription (not_found)")
                    .problem(409, "not a webhook (subscription_has_no_secret), or rotated meanwhile (subscription_secret_generation_stale)")
                    .problem(422, "the body is invalid (validation_failed, subscription_grace_too_long)")
            }),
        )
        .api_route(
            "/operations/rebuild",
            post_with(operations::start_rebuild, |op| {
                op.describe(
                    "startRebuild",
                    "operations",
                    "Start rebuilding the dashboards' read models into a new generation (administrators)",
                )
                .answer(202, started("a rebuild"))
                .problem(403, "only administrators rebuild (forbidden)")
                .problem(409, "a rebuild is already running (operation_in_progress); Location names it")
                .problem(503, "dashboards are not enabled on this server (read_side_unavailable)")
            }),
        )
        .api_route(
            "/operations/export",
            post_with(operations::start_export, |op| {
                op.describe(
                    "startExport",
                    "operations",
                    "Start exporting the audit log to a file (auditors and administrators)",
                )
                .answer(202, started("an export"))
                .problem(403, "only auditors and administrators export (forbidden)")
                .problem(409, "an export is already running (operation_in_progress); Location names it")
                .problem(503, "the audit tree is not enabled on this server (audit_unavailable)")
            }),
        )
        .api_route(
            "/operations/{id}",
            get_with(operations::status, |op| {
                op.describe("operation", "operations", "A long operation's state and progress")
                    .problem(403, "the token's role may not read operations of this kind (forbidden)")
                    .problem(404, "no such operation (finished ones are kept for an hour, at most the last 16)")
            }),
        )
        .api_route(
            "/operations/{id}/file",
            get_with(operations::file, |op| {
                op.describe("operationFile", "operations", "Download a finished export")
                    .answer(
                        200,
                        response(json!({
                            "description": "the export file (docs/audit-format.md) as an attachment",
                            "headers": { "Content-Disposition": {
                                "description": "attachment; filename=\"caretrail-export-<events>.jsonl\"",
                                "schema": { "type": "string" } } },
                            "content": { "application/x-ndjson": { "schema": { "type": "string" } } }
                        })),
                    )
                    .problem(403, "the token's role may not read exports (forbidden)")
                    .problem(404, "no such operation, or not an export (not_found)")
                    .problem(409, "the export is still running (operation_in_progress) or failed (operation_failed)")
            }),
        );
    let api = api.merge(imports::routes()).merge(account_routes());
    ApiRouter::new()
        .nest("/api/v1", api)
        .api_route(
            "/healthz",
            get_with(ops::healthz, |op| {
                op.describe("healthz", "service", "Liveness: the process answers")
            }),
        )
        .api_route(
            "/readyz",
            get_with(ops::readyz, |op| {
                op.describe(
                    "readyz",
                    "service",
                    "Readiness: the store answers and the dashboards are caught up",
                )
                .answer(200, json_answer::<ops::Readiness>("ready", json!({})))
                .problem(
                    503,
                    "not ready: the problem's `problems` member says why (not_ready)",
                )
            }),
        )
        .api_route(
            "/metrics",
            get_with(ops::metrics, |op| {
                op.describe(
                    "metrics",
                    "service",
                    "Prometheus metrics (text exposition format 0.0.4)",
                )
                .problem(
                    403,
                    "only administrators and auditors read metrics (forbidden)",
                )
                .answer(
                    200,
                    response(json!({
                        "description": "the metrics",
                        "content": { "text/plain": { "schema": { "type": "string" } } }
                    })),
                )
            }),
        )
        .api_route(
            "/openapi.json",
            get_with(ops::openapi, |op| {
                op.describe("openapi", "service", "This document").answer(
                    200,
                    response(json!({
                        "description": "the OpenAPI 3.1 document",
                        "content": { "application/json": { "schema": { "type": "object" } } }
                    })),
                )
            }),
        )
}

/// Sign-in, sessions, accounts and tokens (`session`, `accounts`).
fn account_routes() -> ApiRouter<AppState> {
    use aide::axum::routing::{delete_with, get_with, post_with};
    use openapi::{Describe, json_answer, response};
    use serde_json::json;
    let no_store = || {
        json!({ "Set-Cookie": { "description": "the session cookie (HttpOnly; SameSite=Strict; Path=/; Secure under https)",
                                "schema": { "type": "string" } },
                "Cache-Control": { "description": "no-store", "schema": { "type": "string" } } })
    };
    let signed_in = move |why: &str| json_answer::<session::SessionInfo>(why, no_store());
    let bad_body = "the body is not JSON (malformed_json), or an object in it holds one key twice (duplicate_json_key)";
    let admin_only = "only administrators manage accounts and tokens (forbidden)";
    ApiRouter::new()
        .api_route(
            "/session",
            post_with(session::sign_in, move |op| {
                op.describe("signIn", "session", "Sign in with a user name and password: sets the session cookie and answers the CSRF token (no bearer token)")
                    .with(|op| openapi::json_body::<session::SignIn>(op, true))
                    .answer(200, signed_in("signed in"))
                    .problem(400, bad_body)
                    .problem(401, "the user name or password is wrong, or the account is disabled: one answer for all (invalid_credentials)")
                    .problem(403, "posted from another site (cross_site_request)")
                    .problem(422, "the body is not a sign-in (validation_failed)")
                    .problem(429, "the account is locked after repeated failures (account_locked), this address tried too many sign-ins (rate_limited), or too many are being checked (sign_in_busy); Retry-After says when")
                    .problem(503, "the credentials table or the event store is unreachable (store_unavailable)")
            })
            .get_with(session::current, |op| {
                op.describe("session", "session", "The signed-in session, with its CSRF token")
                    .problem(409, "the request carries a bearer token, not a session (not_a_session)")
            })
            .delete_with(session::sign_out, |op| {
                op.describe("signOut", "session", "Sign out this session; the cookie is removed")
                    .answer(204, response(json!({ "description": "signed out" })))
                    .problem(409, "the request carries a bearer token, not a session (not_a_session)")
            }),
        )
        .api_route(
            "/session/end-all",
            post_with(session::sign_out_everywhere, |op| {
                op.describe("signOutEverywhere", "session", "Sign out every session of the signed-in account")
                    .answer(204, response(json!({ "description": "every session ended" })))
                    .problem(409, "the request carries a bearer token, not a session (not_a_session)")
            }),
        )
        .api_route(
            "/session/password",
            post_with(session::change_password, move |op| {
                op.describe("changePassword", "session", "Change my password (with the current one); every session ends and this one is replaced")
                    .with(|op| openapi::json_body::<session::ChangePassword>(op, true))
                    .answer(200, signed_in("changed; a new session cookie"))
                    .problem(400, bad_body)
                    .problem(401, "the current password is wrong (invalid_credentials)")
                    .problem(409, "the request carries a bearer token, not a session (not_a_session)")
                    .problem(422, "the body is invalid (validation_failed) or the new password too weak (weak_password)")
            }),
        )
        .api_route(
            "/accounts",
            get_with(accounts::list, move |op| {
                op.describe("accounts", "accounts", "Every account: user name, role, state, lockout (administrators)")
                    .problem(403, admin_only)
            })
            .post_with(accounts::create, move |op| {
                op.describe("createAccount", "accounts", "Create an account with a first password (administrators); recorded as CreateAccount")
                    .with(|op| openapi::json_body::<accounts::NewAccount>(op, true))
                    .answer(201, json_answer::<accounts::AccountOut>("created; Location names it", json!({
                        "Location": { "description": "/api/v1/accounts/{id}", "schema": { "type": "string" } },
                        "Cache-Control": { "description": "no-store", "schema": { "type": "string" } } })))
                    .problem(400, bad_body)
                    .problem(403, admin_only)
                    .problem(409, "the user name is taken (username_taken), or the director does not exist (unknown_director)")
                    .problem(422, "the body is invalid (validation_failed, invalid_username, weak_password, account_role_not_allowed, account_director_mismatch)")
                    .problem(429, "too many passwords are being hashed (sign_in_busy)")
            }),
        )
        .api_route(
            "/accounts/{id}",
            get_with(accounts::get, move |op| {
                op.describe("account", "accounts", "One account (administrators)")
                    .problem(403, admin_only)
                    .problem(404, "no such account (not_found)")
            }),
        )
        .api_route(
            "/accounts/{id}/role",
            post_with(accounts::change_role, move |op| {
                op.describe("changeAccountRole", "accounts", "Change an account's role; its sessions end (administrators)")
                    .with(|op| openapi::json_body::<accounts::RoleChange>(op, true))
                    .problem(400, bad_body)
                    .problem(403, admin_only)
                    .problem(404, "no such account (not_found)")
                    .problem(409, "the account already has this role (account_role_unchanged), or the director does not exist (unknown_director)")
                    .problem(422, "the body is invalid (validation_failed, account_role_not_allowed, account_director_mismatch)")
            }),
        )
        .api_route(
            "/accounts/{id}/disable",
            post_with(accounts::disable, move |op| {
                op.describe("disableAccount", "accounts", "Disable an account; its sessions end (administrators)")
                    .problem(403, admin_only)
                    .problem(404, "no such account (not_found)")
                    .problem(409, "already disabled (account_already_disabled)")
            }),
        )
        .api_route(
            "/accounts/{id}/enable",
            post_with(accounts::enable, move |op| {
                op.describe("enableAccount", "accounts", "Enable a disabled account (administrators)")
                    .problem(403, admin_only)
                    .problem(404, "no such account (not_found)")
                    .problem(409, "not disabled (account_not_disabled)")
            }),
        )
        .api_route(
            "/accounts/{id}/password",
            post_with(accounts::reset_password, move |op| {
                op.describe("resetAccountPassword", "accounts", "Reset an account's password: lifts a lockout, ends its sessions (administrators)")
                    .with(|op| openapi::json_body::<accounts::PasswordReset>(op, true))
                    .answer(204, response(json!({ "description": "reset" })))
                    .problem(400, bad_body)
                    .problem(403, admin_only)
                    .problem(404, "no such account (not_found)")
                    .problem(422, "the body is invalid (validation_failed) or the password too weak (weak_password)")
                    .problem(429, "too many passwords are being hashed (sign_in_busy)")
            }),
        )
        .api_route(
            "/tokens",
            get_with(accounts::list_tokens, move |op| {
                op.describe("tokens", "accounts", "Every bearer token: ids, roles, expiry, revocation; never a secret (administrators)")
                    .problem(403, admin_only)
            })
            .post_with(accounts::create_token, move |op| {
                op.describe("createToken", "accounts", "Make a bearer token; the answer holds it, this once (administrators)")
                    .with(|op| openapi::json_body::<accounts::NewToken>(op, true))
                    .answer(201, json_answer::<accounts::CreatedToken>("created; the answer holds the token", json!({
                        "Cache-Control": { "description": "no-store: the answer holds the secret", "schema": { "type": "string" } } })))
                    .problem(400, bad_body)
                    .problem(403, admin_only)
                    .problem(422, "the body is invalid (validation_failed)")
            }),
        )
        .api_route(
            "/tokens/{id}",
            delete_with(accounts::revoke_token, move |op| {
                op.describe("revokeToken", "accounts", "Revoke a token: refused, and its streams ended, within 5 s (administrators)")
                    .answer(204, response(json!({ "description": "revoked (or already revoked)" })))
                    .problem(403, admin_only)
                    .problem(404, "no such token (not_found)")
                    .problem(409, "the request is made with this very token (token_in_use)")
            }),
        )
}

/// The whole service: the documented API, its document at `/openapi.json`, and the web page.
pub fn router(state: AppState) -> Router {
    let built = openapi::build();
    for problem in &built.problems {
        // The OpenAPI test fails on these; a server still serves what it has.
        tracing::error!(problem = %problem, "the OpenAPI document is incomplete");
    }
    let document = ops::Document(Bytes::from(
        serde_json::to_vec(&built.document).unwrap_or_default(),
    ));
    built
        .routes
        .merge(caretrail_web::routes())
        .method_not_allowed_fallback(ops::method_not_allowed)
        .fallback(ops::not_found)
        .layer(Extension(document))
        .layer(axum::middleware::from_fn(error::problem_json_only))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::limit_anonymous,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<_>| {
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("unmatched", |p| p.as_str());
                    tracing::info_span!("http.request", method = %req.method(), route)
                },
            ),
        )
        .with_state(state)
}

/// A future that resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a server calls it before it announces its
/// address, so a signal sent as soon as the address is known stops it gracefully instead of
/// killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
