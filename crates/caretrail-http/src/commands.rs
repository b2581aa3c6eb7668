//! `POST /api/v1/commands/{CommandName}`: the command's fields as the JSON body.
//!
//! The actor comes from the bearer token, never from the body. `Idempotency-Key` makes a retry
//! return the original response without writing: the key and the actor determine the command
//! id, and the store answers a known command id with its stored result; the key is bound to
//! the first request's name and body, so reusing it for another request answers 422
//! (`crate::idempotency`). `If-Match` carries the
//! expected version of the command's aggregate stream.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use caretrail_app::CommandMeta;
use caretrail_domain::authority::model_worker_of;
use caretrail_domain::{
    Category, Command, CommandKind, CommandParseError, DirectorId, Reach, Relation, Scope,
    State as DomainState, StreamName,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, FieldError};

/// Where one written event landed.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WrittenEvent {
    /// The event's position in the global log (1-based, gapless, in commit order).
    pub position: u64,
    /// The event's id.
    pub event_id: Uuid,
    /// The stream it was appended to (`category-uuid`).
    pub stream_id: String,
    /// Its version within that stream (the stream's event count after it).
    pub stream_version: u64,
}

/// The answer to an accepted command.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CommandAccepted {
    /// The command's id: derived from the `Idempotency-Key` when one was sent, so a retry
    /// answers the same id.
    pub command_id: Uuid,
    /// The command's aggregate stream (the first one written).
    pub stream_id: Option<String>,
    /// That stream's version after the command.
    pub stream_version: Option<u64>,
    /// Where each event the command produced landed, in log order.
    pub events: Vec<WrittenEvent>,
    /// When the events were recorded (UTC).
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// The command id for an idempotency key: the same key from the same actor is the same command.
pub(crate) fn command_id_for(actor: Uuid, key: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"caretrail.idempotency.v1")
        .chain_update(actor.as_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Whether the request says its body is JSON as this API reads it: exactly one
/// `Content-Type`, `application/json`, with no parameter but an optional `charset=utf-8`.
/// Anything else (`application/jsonx`, `application/evil+json`, `charset=utf-16`, `text/plain`)
/// is refused rather than guessed at: a body read under the wrong type is a body misread.
fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Some(media) = value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<mime::Mime>().ok())
    else {
        return false;
    };
    media.type_() == mime::APPLICATION
        && media.subtype() == mime::JSON
        && media.suffix().is_none()
        && media
            .params()
            .all(|(name, value)| name == mime::CHARSET && value == mime::UTF_8)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            ApiError::bad_request("invalid_header", format!("the {name} header is not text"))
        }),
    }
}

/// `POST /api/v1/commands/{CommandName}`: authorises, parses, runs the command and answers
/// 201 with where its events landed (or the stored answer for a retried idempotency key).
pub async fn command(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, HeaderMap, Json<CommandAccepted>)> {
    // Who may run what is known from the token and the name alone (the domain's table of
    // issuers): refuse before reading the body, so a caller without the right learns nothing
    // from validation messages. The name is client text: it is repeated back only once it is
    // known to be a command's.
    if !principal.role.runs_commands() {
        return Err(principal.deny("run commands"));
    }
    match CommandKind::from_name(&name) {
        None => return Err(unknown_command()),
        Some(kind) if !principal.role.may_run(kind) => {
            return Err(principal.deny(&format!("run {name}")));
        }
        Some(_) => {}
    }
    if !is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "commands are JSON: send Content-Type: application/json (charset, if given, utf-8)",
        ));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "request bodies are limited to {} bytes",
                    crate::MAX_BODY_BYTES
                ),
            )
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
    })?;
    // Strictly: a key given twice is refused rather than read as its last value.
    let json = crate::json::parse(&body)?;
    let (replayed, accepted) = run(&state, &principal, &name, json, &headers).await?;
    let mut out_headers = HeaderMap::new();
    if replayed {
        out_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some(stream) = &accepted.stream_id
        && let Ok(v) = HeaderValue::from_str(&format!("/api/v1/streams/{stream}"))
    {
        out_headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, out_headers, Json(accepted)))
}

/// The command path after the body is read as JSON: parse, authorise, claim the
/// `Idempotency-Key` of `headers` (and read `If-Match`), run. Answers whether the result was a
/// replay of a stored command, and where the events landed. Roster imports
/// (`crate::imports`) run each row through here with a key derived from the file and the row.
pub(crate) async fn run(
    state: &AppState,
    principal: &Principal,
    name: &str,
    json: serde_json::Value,
    headers: &HeaderMap,
) -> ApiResult<(bool, CommandAccepted)> {
    run_claimed(state, principal, name, json, headers, false).await
}

/// [`run`], where `preclaimed` says the caller has already bound the request's
/// `Idempotency-Key` to this very request (`idempotency::claim_many` answered `First` or
/// `Same` for its command id and this name and body), so the claim is not made again.
pub(crate) async fn run_claimed(
    state: &AppState,
    principal: &Principal,
    name: &str,
    json: serde_json::Value,
    headers: &HeaderMap,
    preclaimed: bool,
) -> ApiResult<(bool, CommandAccepted)> {
    // Only a request that claims a key needs its fingerprint (a canonical copy of the body
    // and a hash); the body is taken by the parser next, so it is made here or not at all.
    let fingerprint = (!preclaimed && headers.contains_key("idempotency-key"))
        .then(|| crate::idempotency::fingerprint(name, &json));
    // The domain's error names the field and what its schema expects there, never a value or
    // a key that was sent, so it is passed on as it is.
    let command = Command::parse(name, json).map_err(|e| match e {
        CommandParseError::UnknownCommand => unknown_command(),
        CommandParseError::InvalidBody { field, message } => ApiError::validation(
            format!("the body is not a valid {name} command"),
            vec![FieldError { field, message }],
        ),
    })?;
    authorize(state, principal, &command).await?;

    let mut meta = CommandMeta::new(principal.actor_id(), principal.role.as_str());
    if principal.role == Role::Director {
        meta.director = principal.director_id;
    }
    // Without an Idempotency-Key the command id is new, so no earlier result can exist.
    meta.may_be_retry = false;
    let mut keyed = false;
    if let Some(key) = header_str(headers, "idempotency-key")? {
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 200 characters",
            ));
        }
        meta.command_id = command_id_for(principal.actor_id(), key);
        meta.may_be_retry = true;
        keyed = true;
    }
    let expected = match header_str(headers, "if-match")? {
        None => None,
        Some(v) => Some(v.trim().trim_matches('"').parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_if_match",
                "If-Match must be a stream version, e.g. \"3\"",
            )
        })?),
    };
    if let Some(fingerprint) = fingerprint.filter(|_| keyed) {
        // Bind the key to this request before anything can run under it (see idempotency).
        let claim = tokio::time::timeout(
            crate::idempotency::CLAIM_DEADLINE,
            crate::idempotency::claim(
                state.tokens.tables().as_ref(),
                meta.command_id,
                &fingerprint,
            ),
        )
        .await
        .map_err(|_| ApiError::unavailable(&"the Idempotency-Key claim did not finish in time"))?
        .map_err(|e| ApiError::unavailable(&e))?;
        if claim == crate::idempotency::Claim::Other {
            return Err(key_reused());
        }
    }
    let result = state
        .app
        .execute_expecting(&command, &meta, expected)
        .await?;
    let first = result.events.first();
    let stream_version = first.and_then(|f| {
        result
            .streams
            .iter()
            .find(|s| s.stream_id == f.stream_id)
            .map(|s| s.version)
    });
    Ok((
        result.deduplicated,
        CommandAccepted {
            command_id: meta.command_id,
            stream_id: first.map(|f| f.stream_id.clone()),
            stream_version,
            events: result
                .events
                .iter()
                .map(|e| WrittenEvent {
                    position: e.position,
                    event_id: e.event_id,
                    stream_id: e.stream_id.clone(),
                    stream_version: e.stream_version,
                })
                .collect(),
            recorded_at: result.recorded_at,
        },
    ))
}

/// 422 `idempotency_key_reused`: the key is bound to another request.
pub(crate) fn key_reused() -> ApiError {
    let mut err = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used with another request; a new request needs a new key",
    );
    err.detail_zh = Some("该幂等键已用于另一个请求；新的请求须使用新的幂等键".to_owned());
    err
}

/// A command name that is not one: not repeated back (it is whatever the client sent).
fn unknown_command() -> ApiError {
    ApiError::not_found("there is no command of that name")
}

/// Decides whether `principal` may run `command`: the domain says which roles may issue it,
/// how far each role reaches and which records the command is about; this only reads the
/// states those answers need (the director's pairing, the model worker of an existing issue or
/// visit).
async fn authorize(state: &AppState, principal: &Principal, command: &Command) -> ApiResult<()> {
    if !principal.role.may_run(command.kind()) {
        return Err(principal.deny(&format!("run {}", command.name())));
    }
    match principal.role.reach() {
        Reach::Everything => Ok(()),
        Reach::Nothing => Err(principal.deny("run commands")),
        Reach::OwnPairing => {
            let Some(director) = principal.director_id else {
                return Err(principal.deny("run commands without a director"));
            };
            let director = DirectorId(director);
            let (_, director_state) = state
                .app
                .state(&StreamName::new(Category::Director, director))
                .await?;
            let Some(scope) = Scope::of(director, &director_state) else {
                return Err(principal.deny("act on another director's pairing"));
            };
            for touch in command.subjects() {
                if touch.relation != Relation::About {
                    continue;
                }
                let owner = match touch.subject.owner_stream() {
                    Some(stream) => model_worker_of(&state.app.state(&stream).await?.1),
                    None => None,
                };
                if !scope.covers(touch.subject, owner) {
                    return Err(principal.deny("act on another director's pairing"));
                }
            }
            Ok(())
        }
    }
}

/// The director's active pairing and its model worker.
pub(crate) async fn own_pairing(
    state: &AppState,
    director: Uuid,
) -> ApiResult<(Option<Uuid>, Option<Uuid>)> {
    let (_, s) = state
        .app
        .state(&StreamName::new(Category::Director, director))
        .await?;
    Ok(match s {
        DomainState::Director(d) => d.active_pairing().map_or((None, None), |p| {
            (Some(p.pairing_id.uuid()), Some(p.counterpart))
        }),
        _ => (None, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_from_the_same_actor_is_the_same_command() {
        let a = Uuid::from_u128(1);
        assert_eq!(command_id_for(a, "k"), command_id_for(a, "k"));
        assert_ne!(command_id_for(a, "k"), command_id_for(a, "k2"));
        assert_ne!(
            command_id_for(a, "k"),
            command_id_for(Uuid::from_u128(2), "k")
        );
    }

    /// Hardening, API contract: only `application/json` (optionally `charset=utf-8`) is JSON.
    #[test]
    fn only_application_json_in_utf_8_is_json() {
        let with = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            }
            is_json(&h)
        };
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json; charset=\"utf-8\"",
            // RFC 9110 allows empty parameters.
            "application/json;",
        ] {
            assert!(with(&[ok]), "{ok}");
        }
        for refused in [
            "application/jsonx",
            "application/evil+json",
            "application/json+evil",
            "application/json; charset=utf-16",
            "application/json; charset=utf-8; boundary=x",
            "application/json; foo=bar",
            "application/x-json",
            "text/json",
            "text/plain",
            "application/json/x",
            "json",
            "",
        ] {
            assert!(!with(&[refused]), "{refused:?}");
        }
        assert!(!with(&[]), "no content type");
        assert!(
            !with(&["application/json", "text/plain"]),
            "two content types"
        );
    }
}
