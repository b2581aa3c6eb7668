//! The event log over HTTP: pages (`GET /api/v1/events`), one stream
//! (`GET /api/v1/streams/{id}`) and the live feed as Server-Sent Events
//! (`GET /api/v1/events/subscribe`).
//!
//! The SSE feed is a store subscription: stored events first, then live ones, in order, each
//! once. Every SSE event's `id:` is its global position, so a client that reconnects with
//! `Last-Event-ID` resumes exactly after the last event it received. Comments are sent as
//! heartbeats so proxies keep idle streams open; the feed ends when the server shuts down and
//! when its token expires or is revoked (`TokenStore::lapsed`).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use caretrail_app::KeyRing;
use caretrail_app::view::{Access, EventView, ViewError, view};
use caretrail_domain::{Category, StreamName};
use caretrail_store::{
    EventFilter, LogQuery, RecordedEvent, StreamId, subscribe as store_subscribe,
};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::openapi::{EventStream, Json};

/// The most events one page returns.
pub const MAX_PAGE: usize = 1000;

/// An event as the API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EventOut {
    /// Position in the global log (1-based, gapless, in commit order).
    pub position: u64,
    /// The event's id.
    pub event_id: Uuid,
    /// The stream it belongs to: its category, a dash and the aggregate's id (`visit-0195...`).
    pub stream_id: String,
    /// The event's version within its stream (1 for the stream's first event).
    pub stream_version: u64,
    /// The event's type (`VisitRecorded`, `IssueRaised`, ...); it decides the shape of `data`.
    pub event_type: String,
    /// The schema version of `data`: the event type's current one (older data is upcast).
    pub schema_version: u32,
    /// The payload in the current schema. Each personal value is its plaintext (a string) when
    /// the token may see it, `{"erased": true}` once erased, otherwise `{"redacted": true}`.
    pub data: serde_json::Value,
    /// Who recorded the event and why.
    pub metadata: MetadataOut,
    /// The business date the event is about (Asia/Shanghai), if any.
    pub occurred_at: Option<chrono::NaiveDate>,
    /// When the event was stored (UTC, microsecond precision, never decreasing along positions).
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// Lowercase hex SHA-256 leaf hash (RFC 6962 leaf of the audit tree).
    pub leaf_hash: String,
}

/// Who recorded an event and why.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct MetadataOut {
    /// Who recorded it: the director's id for a director's token, otherwise the token's id.
    pub actor_id: String,
    /// The role it was recorded in (`admin`, `director`, or `system` for the server itself).
    pub actor_role: String,
    /// The command that wrote the event (shared by every event it wrote); null if none.
    pub command_id: Option<Uuid>,
    /// Shared by everything one user action set off (by default the command's id).
    pub correlation_id: Option<Uuid>,
    /// The event or command that directly caused this one, if any.
    pub causation_id: Option<Uuid>,
}

impl From<EventView> for EventOut {
    fn from(v: EventView) -> Self {
        Self {
            position: v.position,
            event_id: v.event_id,
            stream_id: v.stream_id,
            stream_version: v.stream_version,
            event_type: v.event_type,
            schema_version: v.schema_version,
            data: v.data,
            metadata: MetadataOut {
                actor_id: v.actor_id,
                actor_role: v.actor_role,
                command_id: v.command_id,
                correlation_id: v.correlation_id,
                causation_id: v.causation_id,
            },
            occurred_at: v.business_date,
            recorded_at: v.recorded_at,
            leaf_hash: v.leaf_hash,
        }
    }
}

/// How many recent renderings [`Renders`] keeps, both access classes together.
const RENDERS: usize = 8192;

/// Which rendering of an event a reader gets: one shared by every administrator, one shared by
/// every reader who sees no personal values. A director's (only their own subjects opened) is
/// not shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Class {
    Personal,
    Redacted,
}

type RenderCell = Arc<tokio::sync::OnceCell<Arc<str>>>;

#[derive(Default)]
struct RenderSlots {
    cells: HashMap<(u64, Class), RenderCell>,
    order: VecDeque<(u64, Class)>,
    /// The key ring's erasure count the cells were rendered under.
    erasures: u64,
}

/// Live subscribers' renderings of recent events, shared.
///
/// Every subscriber following the head gets the same new event at the same moment, and most
/// of them would render it the same way: parse the payload, upcast it, open or redact sealed
/// values, serialize. With a thousand subscribers that is a thousand identical renderings per
/// event, which is what bounded delivery latency. Here the first subscriber of an access class
/// renders an event and the others wait for and share that JSON (one `OnceCell` per event and
/// class). The cache forgets everything when the key ring has erased a key since, so a value
/// erased through this process is never served from it. An erasure made by another process
/// (a second server on the same PostgreSQL) shows here once the rendering has left the cache
/// (the last 8,192 events), as it shows in the key ring's own cache once that key is reloaded.
#[derive(Default)]
pub struct Renders {
    slots: std::sync::Mutex<RenderSlots>,
}

impl Renders {
    /// The event as JSON for a reader with `access`.
    pub async fn render(
        &self,
        keys: &KeyRing,
        e: &RecordedEvent,
        access: &Access,
    ) -> Result<Arc<str>, ViewError> {
        let class = match access {
            Access::Personal => Class::Personal,
            Access::Redacted => Class::Redacted,
            Access::Subjects(_) => return render(keys, e, access).await,
        };
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let erasures = keys.erasures();
            if slots.erasures != erasures {
                *slots = RenderSlots {
                    erasures,
                    ..RenderSlots::default()
                };
            }
            let key = (e.position, class);
            match slots.cells.get(&key) {
                Some(cell) => cell.clone(),
                None => {
                    let cell = RenderCell::default();
                    slots.cells.insert(key, cell.clone());
                    slots.order.push_back(key);
                    while slots.order.len() > RENDERS {
                        if let Some(old) = slots.order.pop_front() {
                            slots.cells.remove(&old);
                        }
                    }
                    cell
                }
            }
        };
        cell.get_or_try_init(|| render(keys, e, access))
            .await
            .cloned()
    }
}

async fn render(keys: &KeyRing, e: &RecordedEvent, access: &Access) -> Result<Arc<str>, ViewError> {
    let out: EventOut = view(keys, e, access).await?.into();
    Ok(serde_json::to_string(&out).unwrap_or_default().into())
}

/// Query parameters of the log endpoints.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Events after this global position (default 0).
    pub after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
    /// Comma-separated event types (e.g. `VisitRecorded,IssueRaised`).
    #[serde(rename = "type")]
    pub types: Option<String>,
    /// Comma-separated stream categories (modelworker, director, pairing, visit, issue, body,
    /// contact, privacy).
    pub category: Option<String>,
    /// Read the log as it stood at this position.
    pub as_of_position: Option<u64>,
}

/// Query parameters of the live feed: where it starts and what it carries.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeParams {
    /// Events after this global position (default 0; `Last-Event-ID` takes precedence).
    pub after: Option<u64>,
    /// Comma-separated event types (e.g. `VisitRecorded,IssueRaised`).
    #[serde(rename = "type")]
    pub types: Option<String>,
    /// Comma-separated stream categories (modelworker, director, pairing, visit, issue, body,
    /// contact, privacy).
    pub category: Option<String>,
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn filter(types: &Option<String>, category: &Option<String>) -> EventFilter {
    EventFilter {
        event_types: list(types),
        categories: list(category),
    }
}

/// What personal data a principal may see in the log.
pub(crate) async fn access_for(state: &AppState, p: &Principal) -> ApiResult<Access> {
    Ok(match p.role {
        Role::Admin => Access::Personal,
        Role::Auditor | Role::Integration => Access::Redacted,
        Role::Director => {
            let mut subjects = Vec::new();
            if let Some(d) = p.director_id {
                subjects.push(d);
                if let (_, Some(worker)) = crate::commands::own_pairing(state, d).await? {
                    subjects.push(worker);
                }
            }
            Access::Subjects(Arc::from(subjects))
        }
    })
}

async fn show(
    state: &AppState,
    events: &[caretrail_store::RecordedEvent],
    access: &Access,
) -> ApiResult<Vec<EventOut>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let v = view(state.app.keys(), e, access).await.map_err(|err| {
            let unavailable =
                matches!(&err, caretrail_app::view::ViewError::Keys(k) if k.is_unavailable());
            ApiError::unavailable_or_internal(unavailable, &err)
        })?;
        out.push(v.into());
    }
    Ok(out)
}

/// A page of the log.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EventsPage {
    /// The events, in position order (at most `limit`).
    pub events: Vec<EventOut>,
    /// Pass as `after` for the next page; equal to the request's `after` when nothing is newer.
    pub next_after: u64,
}

/// `GET /api/v1/events`: a page of the global log in position order, filtered by type and
/// category (administrators, auditors and integrations).
pub async fn page(
    State(state): State<AppState>,
    principal: Principal,
    params: Result<Query<LogParams>, ApiError>,
) -> ApiResult<Json<EventsPage>> {
    principal.require(
        &[Role::Admin, Role::Auditor, Role::Integration],
        "read the event log",
    )?;
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let after = params.after.unwrap_or(0);
    let events = state
        .app
        .store()
        .read_log(&LogQuery {
            after,
            up_to: params.as_of_position,
            filter: filter(&params.types, &params.category),
            limit,
        })
        .await?;
    let next_after = events.last().map_or(after, |e| e.position);
    // Subscriptions' own events name other integrations' targets: not for integrations.
    let events: Vec<RecordedEvent> = if principal.role == Role::Integration {
        events
            .into_iter()
            .filter(|e| !caretrail_integrations::engine::is_own_configuration(e))
            .collect()
    } else {
        events
    };
    let access = access_for(&state, &principal).await?;
    Ok(Json(EventsPage {
        events: show(&state, &events, &access).await?,
        next_after,
    }))
}

/// One stream's events.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StreamPage {
    /// The stream's id.
    pub stream_id: String,
    /// The stream's current version (0 when it does not exist).
    pub version: u64,
    /// Its events in version order, from `from_version`, at most `limit`.
    pub events: Vec<EventOut>,
}

/// Query parameters of one stream.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// First stream version to return (default 1).
    pub from_version: Option<u64>,
    /// At most this many events (default 1000; more is read as 1000, 0 as 1).
    pub limit: Option<usize>,
}

/// The stream a path names.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StreamPath {
    /// The stream id: its category, a dash and the aggregate's id (`visit-0195...`).
    #[schemars(schema_with = "stream_id_schema")]
    pub id: String,
}

/// The grammar of the stream ids caretrail writes: a category and a lowercase hyphenated UUID.
fn stream_id_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    schemars::json_schema!({
        "type": "string",
        "pattern": format!(
            "^({})-[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$",
            categories.join("|")
        )
    })
}

/// `GET /api/v1/streams/{id}`: one stream's events in version order. A director reads only
/// their own stream, their pairing's and their model worker's, and the visits recorded about
/// any of them; any other answers 404.
pub async fn stream(
    State(state): State<AppState>,
    principal: Principal,
    Path(StreamPath { id }): Path<StreamPath>,
    params: Result<Query<StreamParams>, ApiError>,
) -> ApiResult<Json<StreamPage>> {
    let Query(params) = params?;
    // Only the streams caretrail writes, named as it writes them: another name the store
    // would accept reads as an empty stream, which would tell a client it exists.
    if id.parse::<StreamName>().map(|n| n.to_string()).as_deref() != Ok(id.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_stream_id",
            "not a caretrail stream id: expected {category}-{uuid}, lowercase",
        ));
    }
    let stream =
        StreamId::new(id).map_err(|e| ApiError::bad_request("invalid_stream_id", e.to_string()))?;
    if principal.role == Role::Integration && stream.category() == Category::Subscription.as_str() {
        // Subscriptions' streams name other integrations' targets; 404 as for a director.
        return Err(ApiError::not_found("no such stream"));
    }
    let store = state.app.store();
    if principal.role == Role::Director {
        // A director reads their own streams and their pairing's, and the visits about them,
        // their pairing or their model worker (the ones their subscription delivers): they
        // correct and void the visits they led, so they must see what they are correcting.
        let (own_streams, own_ids) = match principal.director_id {
            Some(d) => {
                let (pairing, worker) = crate::commands::own_pairing(&state, d).await?;
                let mut streams = vec![format!("director-{d}")];
                streams.extend(pairing.map(|p| format!("pairing-{p}")));
                streams.extend(worker.map(|w| format!("modelworker-{w}")));
                let ids = [Some(d), pairing, worker].into_iter().flatten();
                (streams, ids.map(|u| u.to_string()).collect::<Vec<_>>())
            }
            None => (Vec::new(), Vec::new()),
        };
        let allowed = own_streams.iter().any(|s| s == stream.as_str())
            || (stream.category() == Category::Visit.as_str()
                && !own_ids.is_empty()
                && store
                    .read_stream(&stream, 1, 1)
                    .await?
                    .first()
                    .is_some_and(|recorded| concerns(recorded, &own_ids)));
        if !allowed {
            // 404, not 403: a director must not learn whether another person's stream exists.
            tracing::warn!(token_id = %principal.token_id, "access denied: director read of another stream");
            return Err(ApiError::not_found("no such stream"));
        }
    }
    let limit = params.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let version = store.stream_version(&stream).await?;
    let events = store
        .read_stream(&stream, params.from_version.unwrap_or(1).max(1), limit)
        .await?;
    let access = access_for(&state, &principal).await?;
    Ok(Json(StreamPage {
        stream_id: stream.to_string(),
        version,
        events: show(&state, &events, &access).await?,
    }))
}

/// Whether an event names one of `ids` as its director, pairing or model worker.
fn concerns(e: &caretrail_store::RecordedEvent, ids: &[String]) -> bool {
    let Ok(serde_json::Value::Object(data)) = serde_json::from_str::<serde_json::Value>(&e.data)
    else {
        return false;
    };
    ["director_id", "pairing_id", "model_worker_id"]
        .iter()
        .filter_map(|k| data.get(*k).and_then(|v| v.as_str()))
        .any(|v| ids.iter().any(|id| id == v))
}

/// `GET /api/v1/events/subscribe`: the log as Server-Sent Events, stored events after `after`
/// (or `Last-Event-ID`) and then live ones, each once. A director gets only the events that name
/// them, their pairing or their model worker.
pub async fn subscribe(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    params: Result<Query<SubscribeParams>, ApiError>,
) -> ApiResult<EventStream<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    principal.require(
        &[
            Role::Admin,
            Role::Auditor,
            Role::Integration,
            Role::Director,
        ],
        "subscribe to the event log",
    )?;
    let Query(params) = params?;
    // A director follows only events about their own pairing: those naming them, their pairing
    // or their model worker (as of when the stream opens).
    let own: Option<Vec<String>> = match (principal.role, principal.director_id) {
        (Role::Director, Some(d)) => {
            let (pairing, worker) = crate::commands::own_pairing(&state, d).await?;
            Some(
                [Some(d), pairing, worker]
                    .into_iter()
                    .flatten()
                    .map(|u| u.to_string())
                    .collect(),
            )
        }
        (Role::Director, None) => Some(Vec::new()),
        _ => None,
    };
    let hide_subscriptions = principal.role == Role::Integration;
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be a log position",
                    )
                })?,
        ),
    };
    let after = resume.or(params.after).unwrap_or(0);
    let access = access_for(&state, &principal).await?;
    let subscription = store_subscribe(
        state.app.store().clone(),
        after,
        filter(&params.types, &params.category),
    );
    let guard = state.metrics.subscriber();
    let mut shutdown = state.shutdown.clone();
    let keys = state.app.keys().clone();
    let renders = state.renders.clone();
    let tokens = state.tokens.clone();
    let events = subscription
        .into_stream()
        .take_until(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        // A stream lives no longer than its token: it ends when the token expires or, within
        // the token cache's time to live, when it is revoked.
        .take_until(async move { tokens.lapsed(&principal).await })
        .filter(move |item| {
            let keep = match (&own, item) {
                (_, Ok(e)) if hide_subscriptions && caretrail_integrations::engine::is_own_configuration(e) => false,
                (Some(ids), Ok(e)) => concerns(e, ids),
                _ => true,
            };
            std::future::ready(keep)
        })
        .then(move |item| {
            let keys = keys.clone();
            let access = access.clone();
            let renders = renders.clone();
            let _held = &guard;
            async move {
                let sse = match item {
                    Ok(e) => match renders.render(&keys, &e, &access).await {
                        Ok(json) => SseEvent::default()
                            .id(e.position.to_string())
                            .event(e.event_type.as_str())
                            .data(&*json),
                        Err(err) => {
                            tracing::error!(error = %err, "an event could not be shown to a subscriber");
                            SseEvent::default().event("error").data("event could not be shown")
                        }
                    },
                    Err(err) => {
                        tracing::error!(error = %err, "subscription failed");
                        SseEvent::default().event("error").data("subscription failed")
                    }
                };
                Ok::<_, Infallible>(sse)
            }
        });
    Ok(EventStream(
        Sse::new(events).keep_alive(KeepAlive::new().interval(state.heartbeat)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn key_ring() -> KeyRing {
        let h = caretrail_store::testing::sqlite().await.unwrap();
        let store = h.open().await;
        // The harness's directory must outlive the key ring's pool: keep it for the process.
        std::mem::forget(h);
        let master = caretrail_app::MasterKey::generate().unwrap();
        KeyRing::open(store.as_ref(), master).await.unwrap()
    }

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            position,
            stream_id: format!("body-{position}"),
            stream_version: 1,
            event_id: Uuid::now_v7(),
            event_type: "BodyRegistered".into(),
            schema_version: caretrail_domain::event::current_version("BodyRegistered"),
            data:
                r#"{"body_id":"0195f1a2-0000-7000-8000-000000000001","kind":"other","name":"团体"}"#
                    .into(),
            actor_id: "admin".into(),
            actor_role: "admin".into(),
            command_id: None,
            correlation_id: None,
            causation_id: None,
            business_date: None,
            recorded_at: chrono::Utc::now(),
            leaf_hash: [0; 32],
        }
    }

    #[tokio::test]
    async fn one_rendering_per_event_and_access_class_until_an_erasure() {
        let keys = key_ring().await;
        let renders = Renders::default();
        let e = event(7);
        let render = |access: Access| {
            let (keys, renders, e) = (&keys, &renders, &e);
            async move { renders.render(keys, e, &access).await.unwrap() }
        };
        let admin = render(Access::Personal).await;
        assert!(
            Arc::ptr_eq(&admin, &render(Access::Personal).await),
            "shared"
        );
        let redacted = render(Access::Redacted).await;
        assert!(Arc::ptr_eq(&redacted, &render(Access::Redacted).await));
        assert!(!Arc::ptr_eq(&admin, &redacted), "one rendering per class");
        let other = render(Access::Personal).await;
        assert!(!Arc::ptr_eq(
            &other,
            &renders
                .render(&keys, &event(8), &Access::Personal)
                .await
                .unwrap()
        ));
        // A director's view depends on the director: rendered each time.
        let director = || Access::Subjects(Arc::from(vec![Uuid::now_v7()]));
        assert!(!Arc::ptr_eq(
            &render(director()).await,
            &render(director()).await
        ));
        // An erasure through this key ring empties the cache: rendered again, same text.
        keys.erase(Uuid::now_v7()).await.unwrap();
        let after = render(Access::Personal).await;
        assert!(!Arc::ptr_eq(&admin, &after));
        assert_eq!(admin, after);
    }
}
