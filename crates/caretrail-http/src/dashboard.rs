//! The dashboards and lists administrators and auditors read, served from the projections'
//! read models: overview, visit status per pairing (the overdue list), director caseload, a
//! model worker's file and timeline, the issues board, gifts, and region coverage.
//!
//! Every view takes `as_of` (a business date, default today in Asia/Shanghai) where time
//! matters, and `as_of_position` for the auditor's replay: the same view computed from a
//! scratch replay of the log up to that position, never from the live tables. Lists answer
//! `{"items": [...], "next_cursor": ...}`; the cursor is opaque to clients.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use caretrail_app::shanghai_date;
use caretrail_projections::query::{
    CaseloadQuery, CaseloadSort, CoverageLevel, GiftGrouping, GiftsQuery, IssuesQuery,
    ModelWorkersQuery, Page, Paged, RegionFilter, VisitStatus, VisitStatusQuery, VisitsQuery,
};
use caretrail_projections::replay::{AsOf, replay};
use caretrail_projections::{Projector, ReadModels};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::access_for;

/// The read side the dashboards answer from.
#[derive(Clone)]
pub struct ReadSide {
    pub projector: Arc<Projector>,
    answers: Arc<AnswerCache>,
}

impl ReadSide {
    pub fn new(projector: Arc<Projector>) -> Self {
        Self {
            projector,
            answers: Arc::new(AnswerCache::default()),
        }
    }

    /// Answers an aggregate dashboard from the cache when the live tables have not moved
    /// since it was computed (same generation and checkpoint), and computes it otherwise.
    ///
    /// Why: an aggregate over the whole log costs milliseconds at a million events, and a
    /// hundred administrators refreshing the same overview would queue behind each other on a
    /// small machine; between two applied batches the answer cannot change. The key is the
    /// route, the raw query and the business date "today" resolves to, so every parameter
    /// (region, `as_of`, replays) keys its own answer. Only views without personal data and
    /// identical for every role allowed to read them use it.
    async fn answer<T, F, Fut>(&self, key: String, compute: F) -> ApiResult<Response>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ApiResult<T>>,
    {
        let version = self
            .projector
            .live_version()
            .await
            .map_err(projection_error)?;
        // One computation per key and table state: requests arriving while it runs wait for
        // its answer instead of all running the same query (after each applied batch every
        // open dashboard asks again at once).
        let cell = self.answers.cell(version, key);
        let bytes = cell
            .get_or_try_init(|| async {
                let value = compute().await?;
                serde_json::to_vec(&value)
                    .map(Bytes::from)
                    .map_err(|e| ApiError::internal(&e))
            })
            .await?;
        Ok(json_bytes(bytes.clone()))
    }
}

/// Answers for one state of the live tables; a newer state empties it.
#[derive(Default)]
struct AnswerCache {
    inner: std::sync::Mutex<Answers>,
}

/// The table state the answers are for, and each key's answer (filled by the first request).
type Answers = (
    Option<(i64, u64)>,
    HashMap<String, Arc<tokio::sync::OnceCell<Bytes>>>,
);

/// Distinct answers kept per table state (regions × dates × views); beyond it the cache
/// starts over rather than grow.
const CACHED_ANSWERS: usize = 1024;

impl AnswerCache {
    /// The cell holding `key`'s answer at `version`. A request for an older state than the
    /// cache's (it read the version just before a batch was applied) gets a cell of its own
    /// that nobody keeps.
    fn cell(&self, version: (i64, u64), key: String) -> Arc<tokio::sync::OnceCell<Bytes>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.0 {
            Some(v) if v > version => return Arc::default(),
            Some(v) if v == version && inner.1.len() < CACHED_ANSWERS => {}
            Some(v) if v == version && inner.1.contains_key(&key) => {}
            _ => {
                inner.0 = Some(version);
                inner.1.clear();
            }
        }
        inner.1.entry(key).or_default().clone()
    }
}

fn json_bytes(body: Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The cache key of a request: its route, raw query and resolved "today".
fn answer_key(uri: &Uri, today: NaiveDate) -> String {
    format!("{}?{}|{today}", uri.path(), uri.query().unwrap_or(""))
}

/// Parameters every dashboard understands.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    /// The business date "today" is for overdue, age and this-month figures (default: today).
    pub as_of: Option<NaiveDate>,
    /// The auditor's replay: compute the view from the log up to this position.
    pub as_of_position: Option<u64>,
    /// The log as known at this record time (RFC 3339).
    pub as_of_recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    pub city: Option<String>,
    pub county: Option<String>,
    pub status: Option<VisitStatus>,
    pub state: Option<String>,
    pub role: Option<String>,
    pub sort: Option<CaseloadSort>,
    pub body_id: Option<Uuid>,
    pub director_id: Option<Uuid>,
    pub pairing_id: Option<Uuid>,
    pub model_worker_id: Option<Uuid>,
    pub in_hardship: Option<bool>,
    pub paired: Option<bool>,
    #[serde(default)]
    pub include_voided: bool,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub raised_from: Option<NaiveDate>,
    pub raised_to: Option<NaiveDate>,
    pub group_by: Option<GiftGrouping>,
    pub level: Option<CoverageLevel>,
    #[serde(default)]
    pub include_ended: bool,
    #[serde(default)]
    pub breached_only: bool,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Timeline: entries after this log position.
    pub after: Option<i64>,
}

/// A page of a list.
#[derive(Debug, Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> From<Paged<T>> for List<T> {
    fn from(p: Paged<T>) -> Self {
        Self {
            items: p.items,
            next_cursor: p.next_offset.map(|o| format!("o{o}")),
        }
    }
}

impl Params {
    fn region(&self) -> RegionFilter {
        RegionFilter {
            city: self.city.clone(),
            county: self.county.clone(),
        }
    }

    fn page(&self) -> ApiResult<Page> {
        let offset = match &self.cursor {
            None => 0,
            Some(c) => c
                .strip_prefix('o')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_cursor", "the cursor is not one this API issued")
                })?,
        };
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "limit must be between 1 and 500",
            ));
        }
        Ok(Page { limit, offset })
    }
}

/// A serialisable answer as the JSON body.
fn json(value: impl Serialize) -> ApiResult<Json<Value>> {
    Ok(Json(
        serde_json::to_value(value).map_err(|e| ApiError::internal(&e))?,
    ))
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", e.body_text())
}

fn projection_error(e: caretrail_projections::ProjectionError) -> ApiError {
    use caretrail_projections::ProjectionError as P;
    match e {
        P::InvalidQuery(why) => ApiError::bad_request("invalid_query", why),
        other => ApiError::unavailable_or_internal(other.is_unavailable(), &other),
    }
}

/// The read models to answer from: the live ones, or a replay for `as_of_position` /
/// `as_of_recorded_at` (auditors and administrators only).
fn read_side(state: &AppState) -> ApiResult<&ReadSide> {
    state.read.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "read_side_unavailable",
            "dashboards are not enabled on this server",
        )
    })
}

async fn models(state: &AppState, p: &Principal, params: &Params) -> ApiResult<ReadModels> {
    let read = read_side(state)?;
    let as_of = match (params.as_of_position, params.as_of_recorded_at) {
        (None, None) => return Ok(read.projector.read_models()),
        (Some(p), None) => AsOf::Position(p),
        (None, Some(t)) => AsOf::RecordTime(t),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "give as_of_position or as_of_recorded_at, not both",
            ));
        }
    };
    p.require(&[Role::Admin, Role::Auditor], "replay the log")?;
    let head = state.app.store().head().await?.position;
    if let AsOf::Position(pos) = as_of
        && pos > head
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("as_of_position {pos} is beyond the head of the log ({head})"),
        ));
    }
    Ok(replay(state.app.store().clone(), as_of)
        .await
        .map_err(projection_error)?
        .read_models)
}

fn today(state: &AppState, params: &Params) -> NaiveDate {
    params
        .as_of
        .unwrap_or_else(|| shanghai_date(state.app.clock().now()))
}

fn params(q: Result<Query<Params>, QueryRejection>) -> ApiResult<Params> {
    q.map(|Query(p)| p).map_err(query_error)
}

pub async fn overview(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    principal.require(&[Role::Admin, Role::Auditor], "read dashboards")?;
    let q = params(q)?;
    let today = today(&state, &q);
    read_side(&state)?
        .answer(answer_key(&uri, today), || async {
            let m = models(&state, &principal, &q).await?;
            m.overview(today, &q.region())
                .await
                .map_err(projection_error)
        })
        .await
}

pub async fn pairings(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    principal.require(
        &[Role::Admin, Role::Auditor, Role::Director],
        "read pairings",
    )?;
    let q = params(q)?;
    let m = models(&state, &principal, &q).await?;
    let access = access_for(&state, &principal).await?;
    let mut page = m
        .visit_status(
            state.app.keys(),
            &access,
            &VisitStatusQuery {
                as_of: today(&state, &q),
                region: q.region(),
                status: q.status,
                include_ended: q.include_ended,
                page: q.page()?,
            },
        )
        .await
        .map_err(projection_error)?;
    // A director sees their own pairings only; an explicit director filter narrows the rest.
    let only = match principal.role {
        Role::Director => principal.director_id,
        _ => q.director_id,
    };
    if let Some(d) = only {
        page.items.retain(|p| p.director_id == d);
    }
    json(List::from(page))
}

pub async fn directors(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    principal.require(&[Role::Admin, Role::Auditor], "read director caseloads")?;
    let q = params(q)?;
    let m = models(&state, &principal, &q).await?;
    let access = access_for(&state, &principal).await?;
    let page = m
        .director_caseload(
            state.app.keys(),
            &access,
            &CaseloadQuery {
                as_of: today(&state, &q),
                role: q.role.clone(),
                sort: q.sort.unwrap_or_default(),
                page: q.page()?,
            },
        )
        .await
        .map_err(projection_error)?;
    json(List::from(page))
}

/// May `principal` read model worker `id`'s file? A director only their own model worker's;
/// anyone else allowed answers 404 rather than 403 so as not to confirm the person exists.
async fn may_read_worker(state: &AppState, principal: &Principal, id: Uuid) -> ApiResult<()> {
    match principal.role {
        Role::Admin | Role::Auditor => Ok(()),
        Role::Director => {
            let own = match principal.director_id {
                Some(d) => crate::commands::own_pairing(state, d).await?.1,
                None => None,
            };
            if own == Some(id) {
                Ok(())
            } else {
                tracing::warn!(token_id = %principal.token_id, "access denied: director read of another model worker");
                Err(ApiError::not_found("no such model worker"))
            }
        }
        Role::Integration => Err(principal.deny("read model worker files")),
    }
}

/// The model worker's file as `principal` may see it.
async fn worker_file(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    q: &Params,
) -> ApiResult<caretrail_projections::query::ModelWorkerFile> {
    may_read_worker(state, principal, id).await?;
    let m = models(state, principal, q).await?;
    let access = access_for(state, principal).await?;
    m.model_worker_file(
        state.app.keys(),
        &access,
        id,
        q.after.unwrap_or(0),
        q.limit.unwrap_or(200).clamp(1, 500),
    )
    .await
    .map_err(projection_error)?
    .ok_or_else(|| ApiError::not_found("no such model worker"))
}

pub async fn model_worker(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let file = worker_file(&state, &principal, id, &params(q)?).await?;
    json(file)
}

pub async fn timeline(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let file = worker_file(&state, &principal, id, &params(q)?).await?;
    let next = file.timeline.items.last().map(|e| e.position);
    let more = file.timeline.next_offset.is_some();
    Ok(Json(serde_json::json!({
        "items": file.timeline.items,
        "next_cursor": if more { next.map(|p| p.to_string()) } else { None },
    })))
}

pub async fn issues(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    principal.require(&[Role::Admin, Role::Auditor], "read the issues board")?;
    let q = params(q)?;
    let m = models(&state, &principal, &q).await?;
    let page = m
        .issues(&IssuesQuery {
            as_of: today(&state, &q),
            region: q.region(),
            state: q.state.clone(),
            body_id: q.body_id,
            raised_from: q.raised_from,
            raised_to: q.raised_to,
            breached_only: q.breached_only,
            page: q.page()?,
        })
        .await
        .map_err(projection_error)?;
    json(List::from(page))
}

pub async fn issue_summary(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Response> {
    principal.require(&[Role::Admin, Role::Auditor], "read dashboards")?;
    let q = params(q)?;
    let today = today(&state, &q);
    read_side(&state)?
        .answer(answer_key(&uri, today), || async {
            let m = models(&state, &principal, &q).await?;
            m.issue_summary(today, &q.region())
                .await
                .map_err(projection_error)
        })
        .await
}

pub async fn gifts(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    principal.require(&[Role::Admin, Role::Auditor], "read dashboards")?;
    let q = params(q)?;
    let m = models(&state, &principal, &q).await?;
    let today = today(&state, &q);
    let from = q.from.unwrap_or_else(|| {
        NaiveDate::from_ymd_opt(chrono::Datelike::year(&today), 1, 1).unwrap_or(today)
    });
    let page = m
        .gifts(&GiftsQuery {
            from,
            to: q.to.unwrap_or(today),
            region: q.region(),
            group_by: q.group_by.unwrap_or(GiftGrouping::Month),
            page: q.page()?,
        })
        .await
        .map_err(projection_error)?;
    json(List::from(page))
}

pub async fn regions(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    principal.require(&[Role::Admin, Role::Auditor], "read dashboards")?;
    let q = params(q)?;
    let m = models(&state, &principal, &q).await?;
    let rows = m
        .coverage(
            today(&state, &q),
            q.level.unwrap_or(CoverageLevel::City),
            &q.region(),
        )
        .await
        .map_err(projection_error)?;
    Ok(Json(
        serde_json::json!({ "items": rows, "next_cursor": null }),
    ))
}

/// The model workers list. A director sees only the model worker they are paired with.
pub async fn model_workers(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    principal.require(
        &[Role::Admin, Role::Auditor, Role::Director],
        "list model workers",
    )?;
    let q = params(q)?;
    let m = models(&state, &principal, &q).await?;
    let access = access_for(&state, &principal).await?;
    let mut page = m
        .model_workers(
            state.app.keys(),
            &access,
            &ModelWorkersQuery {
                region: q.region(),
                in_hardship: q.in_hardship,
                paired: q.paired,
                page: q.page()?,
            },
        )
        .await
        .map_err(projection_error)?;
    if principal.role == Role::Director {
        let own = match principal.director_id {
            Some(d) => crate::commands::own_pairing(&state, d).await?.1,
            None => None,
        };
        page.items.retain(|w| Some(w.model_worker_id) == own);
    }
    json(List::from(page))
}

/// The visits list, newest first. A director sees only the visits they led.
pub async fn visits(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    principal.require(&[Role::Admin, Role::Auditor, Role::Director], "list visits")?;
    let q = params(q)?;
    let m = models(&state, &principal, &q).await?;
    let director_id = match principal.role {
        Role::Director => principal.director_id,
        _ => q.director_id,
    };
    let page = m
        .visits(&VisitsQuery {
            region: q.region(),
            from: q.from,
            to: q.to,
            pairing_id: q.pairing_id,
            model_worker_id: q.model_worker_id,
            director_id,
            include_voided: q.include_voided,
            page: q.page()?,
        })
        .await
        .map_err(projection_error)?;
    json(List::from(page))
}

/// Who the caller is, so a client can show what the role may see.
pub async fn me(principal: Principal) -> Json<Principal> {
    Json(principal)
}

/// The read side's lag, for operators.
pub async fn lag(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
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
    let lag = read.projector.lag().await.map_err(projection_error)?;
    json(lag)
}
