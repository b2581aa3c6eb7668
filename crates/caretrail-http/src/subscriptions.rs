//! `/api/v1/subscriptions`: integrations' durable subscriptions as a resource
//! (`caretrail_integrations`). Administrators create and change them; auditors read them all;
//! an integration token reads the ones made for it (`owner_token_id`) and nothing else.
//!
//! Every change is a command, so a request body is read by the domain's own parser (a body
//! is completed with the ids the server chooses, then parsed as the command): its errors name
//! the field and never repeat what was sent, as for `POST /commands/...`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use caretrail_app::CommandMeta;
use caretrail_domain::{Command, CommandParseError};
use caretrail_integrations::service::{AttemptOut, Created, Rotated, SubscriptionStatus};
use caretrail_integrations::{IntegrationError, Integrations};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{Path, Query};
use crate::openapi::Json;

/// The roles that read subscriptions: all of them for administrators and auditors, their own
/// for integrations.
const READERS: &[Role] = &[Role::Admin, Role::Auditor, Role::Integration];

fn integrations(state: &AppState) -> ApiResult<&Arc<Integrations>> {
    state.integrations.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "integrations_unavailable",
            "integrations are not enabled on this server",
        )
    })
}

impl From<IntegrationError> for ApiError {
    fn from(e: IntegrationError) -> Self {
        match e {
            IntegrationError::App(e) => e.into(),
            IntegrationError::Store(e) => e.into(),
            IntegrationError::Url(refused) => {
                let mut err = ApiError::validation(
                    "the webhook URL is refused",
                    vec![FieldError {
                        field: "delivery.url".to_owned(),
                        message: refused.to_string(),
                    }],
                );
                err.code = refused.code();
                err
            }
            IntegrationError::NatsNotConfigured => ApiError::new(
                StatusCode::CONFLICT,
                "nats_not_configured",
                "NATS delivery needs the server to be started with --nats-url",
            ),
            IntegrationError::PositionAfterHead { head } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "position_after_head",
                format!("the position is past the log's head ({head})"),
            ),
            IntegrationError::Unknown(_) => ApiError::not_found("no such subscription"),
            e @ IntegrationError::NotShown => ApiError::unavailable(&e),
            e => ApiError::internal(&e),
        }
    }
}

fn meta(principal: &Principal) -> CommandMeta {
    let mut meta = CommandMeta::new(principal.actor_id(), principal.role.as_str());
    meta.may_be_retry = false;
    meta
}

/// A JSON object body (an empty body reads as `{}`).
fn object(body: Result<Bytes, BytesRejection>) -> ApiResult<Map<String, Value>> {
    let body = body.map_err(|_| {
        ApiError::bad_request("unreadable_body", "the request body could not be read")
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match crate::json::parse(&body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::validation(
            "the body must be a JSON object",
            vec![FieldError {
                field: String::new(),
                message: "expected an object".to_owned(),
            }],
        )),
    }
}

/// Parses `body` completed with `set` as the command `name`; the fields in `set` are the
/// server's to choose, so a body that holds one is refused.
fn command(name: &str, mut body: Map<String, Value>, set: &[(&str, Value)]) -> ApiResult<Command> {
    for (key, value) in set {
        if body.contains_key(*key) {
            return Err(ApiError::validation(
                "the body holds a field the server sets",
                vec![FieldError {
                    field: (*key).to_owned(),
                    message: "is chosen by the server; leave it out".to_owned(),
                }],
            ));
        }
        body.insert((*key).to_owned(), value.clone());
    }
    Command::parse(name, Value::Object(body)).map_err(|e| match e {
        CommandParseError::UnknownCommand => ApiError::internal(&"unknown command"),
        CommandParseError::InvalidBody { field, message } => ApiError::validation(
            "the body is not valid here",
            vec![FieldError { field, message }],
        ),
    })
}

/// The subscription a path names.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SubscriptionPath {
    /// The subscription's id.
    pub id: Uuid,
}

/// Whether `principal` may read subscription `s`.
fn may_read(principal: &Principal, s: &SubscriptionStatus) -> bool {
    match principal.role {
        Role::Admin | Role::Auditor => true,
        Role::Integration => s.owner_token_id == Some(principal.token_id),
        Role::Director => false,
    }
}

/// `POST /api/v1/subscriptions`: creates a subscription (administrators). The answer holds
/// the webhook signing secret, this once.
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Created>)> {
    principal.require(&[Role::Admin], "create subscriptions")?;
    let integrations = integrations(&state)?;
    let mut body = object(body)?;
    let head = state.app.store().head().await?.position;
    let mut set = vec![("subscription_id", Value::String(Uuid::now_v7().to_string()))];
    if !body.contains_key("start_after") || body.get("start_after") == Some(&Value::Null) {
        body.remove("start_after");
        set.push(("start_after", Value::from(head)));
    }
    let Command::CreateSubscription(c) = command("CreateSubscription", body, &set)? else {
        return Err(ApiError::internal(&"parsed another command"));
    };
    if let Some(owner) = c.owner_token_id {
        check_owner(&state, owner).await?;
    }
    let created = integrations.create(c, &meta(&principal)).await?;
    let mut headers = no_store();
    if let Ok(v) = format!("/api/v1/subscriptions/{}", created.subscription.id).parse() {
        headers.insert(axum::http::header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(created)))
}

/// Refuses an `owner_token_id` that does not name an integration token that is still valid: a
/// mistyped id would otherwise create a subscription no integration can ever read, and the
/// administrator would learn it only from the integration's 404s.
async fn check_owner(state: &AppState, owner: Uuid) -> ApiResult<()> {
    let now = chrono::Utc::now();
    let tokens = state
        .tokens
        .list()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let usable = tokens.iter().any(|t| {
        t.token_id == owner
            && t.role == Role::Integration.as_str()
            && t.revoked_at.is_none()
            && t.expires_at.is_none_or(|at| at > now)
    });
    if usable {
        return Ok(());
    }
    let mut err = ApiError::validation(
        "owner_token_id does not name a valid integration token",
        vec![FieldError {
            field: "owner_token_id".to_owned(),
            message: "no unrevoked, unexpired integration token has this id".to_owned(),
        }],
    );
    err.code = "subscription_owner_unknown";
    Err(err)
}

/// The headers of an answer that holds a signing secret: no cache (the browser's, a proxy's)
/// may keep it.
fn no_store() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    headers
}

/// `GET /api/v1/subscriptions`.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<SubscriptionStatus>>> {
    principal.require(READERS, "read subscriptions")?;
    let all = integrations(&state)?.list().await?;
    Ok(Json(
        all.into_iter()
            .filter(|s| may_read(&principal, s))
            .collect(),
    ))
}

async fn readable(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<SubscriptionStatus> {
    principal.require(READERS, "read subscriptions")?;
    match integrations(state)?.status(id).await? {
        // Another integration's subscription is as unknown as a missing one.
        Some(s) if may_read(principal, &s) => Ok(s),
        _ => Err(ApiError::not_found("no such subscription")),
    }
}

/// `GET /api/v1/subscriptions/{id}`.
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(SubscriptionPath { id }): Path<SubscriptionPath>,
) -> ApiResult<Json<SubscriptionStatus>> {
    Ok(Json(readable(&state, &principal, id).await?))
}

/// Query of the attempts list.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    /// At most this many, newest first (default 100; more is read as 100, the most kept).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `GET /api/v1/subscriptions/{id}/attempts`.
pub async fn attempts(
    State(state): State<AppState>,
    principal: Principal,
    Path(SubscriptionPath { id }): Path<SubscriptionPath>,
    Query(q): Query<AttemptsQuery>,
) -> ApiResult<Json<Vec<AttemptOut>>> {
    readable(&state, &principal, id).await?;
    let limit = u32::try_from(q.limit.unwrap_or(100).min(100)).unwrap_or(100);
    Ok(Json(integrations(&state)?.attempts(id, limit).await?))
}

/// `POST /api/v1/subscriptions/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    principal: Principal,
    Path(SubscriptionPath { id }): Path<SubscriptionPath>,
) -> ApiResult<Json<SubscriptionStatus>> {
    principal.require(&[Role::Admin], "change subscriptions")?;
    Ok(Json(
        integrations(&state)?.pause(id, &meta(&principal)).await?,
    ))
}

/// `POST /api/v1/subscriptions/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    principal: Principal,
    Path(SubscriptionPath { id }): Path<SubscriptionPath>,
) -> ApiResult<Json<SubscriptionStatus>> {
    principal.require(&[Role::Admin], "change subscriptions")?;
    Ok(Json(
        integrations(&state)?.resume(id, &meta(&principal)).await?,
    ))
}

/// The body of a rewind (`{"after": N}`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewindRequest {
    /// Deliver again from the event after this position (0: the whole log).
    pub after: u64,
}

/// `POST /api/v1/subscriptions/{id}/rewind`.
pub async fn rewind(
    State(state): State<AppState>,
    principal: Principal,
    Path(SubscriptionPath { id }): Path<SubscriptionPath>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<SubscriptionStatus>> {
    principal.require(&[Role::Admin], "change subscriptions")?;
    let integrations = integrations(&state)?;
    let set = [("subscription_id", Value::String(id.to_string()))];
    let Command::RewindSubscription(c) = command("RewindSubscription", object(body)?, &set)? else {
        return Err(ApiError::internal(&"parsed another command"));
    };
    Ok(Json(
        integrations.rewind(id, c.after, &meta(&principal)).await?,
    ))
}

/// The body of a rotation (`{"grace_seconds": N}`, optional).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the previous secret keeps signing, in seconds (default 86400, at most 604800).
    #[serde(default)]
    #[schemars(range(max = 604_800))]
    pub grace_seconds: Option<u32>,
}

/// `POST /api/v1/subscriptions/{id}/rotate-secret`. The answer holds the new secret, this once.
pub async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
    Path(SubscriptionPath { id }): Path<SubscriptionPath>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(HeaderMap, Json<Rotated>)> {
    principal.require(&[Role::Admin], "change subscriptions")?;
    let integrations = integrations(&state)?;
    // The generation is the service's to choose; 1 stands in while the body is checked.
    let set = [
        ("subscription_id", Value::String(id.to_string())),
        ("generation", Value::from(1)),
    ];
    let Command::RotateSubscriptionSecret(c) =
        command("RotateSubscriptionSecret", object(body)?, &set)?
    else {
        return Err(ApiError::internal(&"parsed another command"));
    };
    Ok((
        no_store(),
        Json(
            integrations
                .rotate(id, c.grace_seconds, &meta(&principal))
                .await?,
        ),
    ))
}

/// `DELETE /api/v1/subscriptions/{id}`: stops delivery and destroys the signing secrets.
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(SubscriptionPath { id }): Path<SubscriptionPath>,
) -> ApiResult<StatusCode> {
    principal.require(&[Role::Admin], "delete subscriptions")?;
    integrations(&state)?.delete(id, &meta(&principal)).await?;
    Ok(StatusCode::NO_CONTENT)
}
