//! The dashboards and lists administrators and auditors read, served from the projections'
//! read models: overview, visit status per pairing (the overdue list), director caseload, a
//! model worker's file and timeline, the issues board, gifts, and region coverage.
//!
//! Every view takes `as_of` (a business date, default today in Asia/Shanghai) where time
//! matters, and `as_of_position` for the auditor's replay: the same view computed from a
//! scratch replay of the log up to that position, never from the live tables. Lists answer
//! `{"items": [...], "next_cursor": ...}`; the cursor is opaque to clients.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Uri;
use caretrail_app::shanghai_date;
use caretrail_domain::RegionCode;
use caretrail_projections::query::{
    CaseloadQuery, CaseloadSort, CoverageLevel, CoverageRow, DirectorCaseload, GiftGrouping,
    GiftTotals, GiftsQuery, IssueItem, IssueSummary, IssuesQuery, ModelWorkerFile, ModelWorkerItem,
    ModelWorkersQuery, NameIndex, NameQuery, Named, Overview, Page, Paged, PairingStatus, People,
    RegionFilter, TimelineEntry, VisitItem, VisitStatus, VisitStatusQuery, VisitsQuery,
};
use caretrail_projections::replay::{AsOf, replay};
use caretrail_projections::{Projector, ReadModels};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::events::access_for;
use crate::extract::{Path, Query};
use crate::openapi::JsonBytes;

mod cache;
use cache::{AnswerCache, answer_as, answer_key};

/// Who may read the aggregate dashboards (overview, issues summary, gifts) and the reports
/// written from them: one list, so a report is never readable by a role its dashboards are not.
pub(crate) const DASHBOARD_READERS: &[Role] = &[Role::Admin, Role::Auditor];

/// The read side the dashboards answer from.
#[derive(Clone)]
pub struct ReadSide {
    /// The projector whose live read models (and replays) answer.
    pub projector: Arc<Projector>,
    answers: Arc<AnswerCache>,
    /// Names opened for searches (`q`), in memory only.
    names: Arc<NameIndex>,
}

impl ReadSide {
    /// A read side over `projector`, with an empty answer cache.
    pub fn new(projector: Arc<Projector>) -> Self {
        Self {
            projector,
            answers: Arc::new(AnswerCache::default()),
            names: Arc::new(NameIndex::default()),
        }
    }
}

/// Every parameter a view may take; each route's own parameter struct (below) names the ones
/// it reads and converts into this.
#[derive(Debug, Default)]
pub struct Params {
    /// The business date "today" is (default: today in Asia/Shanghai).
    pub as_of: Option<NaiveDate>,
    /// Replay the log up to this global position instead of reading the live tables.
    pub as_of_position: Option<u64>,
    /// Replay the log up to the last position stored by this time (UTC).
    pub as_of_recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Only this city (prefecture), by GB/T 2260 code.
    pub city: Option<RegionCode>,
    /// Only this county, by GB/T 2260 code.
    pub county: Option<RegionCode>,
    /// Only pairings with this visit status.
    pub status: Option<VisitStatus>,
    /// Issue state filter: a state name, `open` (default) or `all`.
    pub state: Option<String>,
    /// Only directors with this role (as appointed, e.g. `standing_director`).
    pub role: Option<String>,
    /// Order of the director caseload (default: least engaged first).
    pub sort: Option<CaseloadSort>,
    /// Only issues escalated to this body.
    pub body_id: Option<Uuid>,
    /// Only this director's pairings or visits.
    pub director_id: Option<Uuid>,
    /// Only this pairing's visits.
    pub pairing_id: Option<Uuid>,
    /// Only visits to this model worker.
    pub model_worker_id: Option<Uuid>,
    /// Only model workers in hardship (true) or not (false).
    pub in_hardship: Option<bool>,
    /// Only model workers with an active pairing (true) or without (false).
    pub paired: Option<bool>,
    /// Include voided visits.
    pub include_voided: bool,
    /// First day of the range: a visit date, or for gifts any day of the first month.
    pub from: Option<NaiveDate>,
    /// Last day of the range: a visit date, or for gifts any day of the last month.
    pub to: Option<NaiveDate>,
    /// Issues raised on or after this date.
    pub raised_from: Option<NaiveDate>,
    /// Issues raised on or before this date.
    pub raised_to: Option<NaiveDate>,
    /// How the gifts dashboard groups (default: by month).
    pub group_by: Option<GiftGrouping>,
    /// Coverage per city or per county (default: city).
    pub level: Option<CoverageLevel>,
    /// Include ended pairings (default: active ones only).
    pub include_ended: bool,
    /// Only open issues whose response is overdue.
    pub breached_only: bool,
    /// Page size: 1–500, default 50 for lists; timeline entries, default 200, clamped to 1–500.
    pub limit: Option<u32>,
    /// Opaque list cursor: a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Timeline entries after this log position (default 0: from the start).
    pub after: Option<i64>,
    /// Only people whose name contains this text (administrators; a director within their own).
    pub q: Option<String>,
}

/// Declares a route's query parameters: a struct with the named groups of common parameters
/// and the route's own fields, deriving the schema the OpenAPI document lists them from, and
/// its conversion into [`Params`]. The fields are spelt out rather than `#[serde(flatten)]`ed
/// because query strings cannot flatten numbers or booleans.
macro_rules! view_params {
    ($(#[$m:meta])* $name:ident [$($group:ident),*] { $($body:tt)* }) => {
        view_params!(@expand $(#[$m])* $name [$($group)*] [] { $($body)* });
    };
    (@expand $(#[$m:meta])* $name:ident [today $($g:ident)*] [$($acc:tt)*] $body:tt) => {
        view_params!(@expand $(#[$m])* $name [$($g)*] [$($acc)*
            /// The business date "today" is, for overdue, age and this-month or this-year
            /// figures (default: today in Asia/Shanghai).
            as_of: Option<NaiveDate>,
        ] $body);
    };
    (@expand $(#[$m:meta])* $name:ident [replay $($g:ident)*] [$($acc:tt)*] $body:tt) => {
        view_params!(@expand $(#[$m])* $name [$($g)*] [$($acc)*
            /// The auditor's replay: the view computed from the log up to this position, not
            /// from the live tables (administrators and auditors; at most the log's head).
            as_of_position: Option<u64>,
            /// The auditor's replay: the view computed from what had been stored at this time
            /// (RFC 3339; administrators and auditors; not with `as_of_position`).
            as_of_recorded_at: Option<chrono::DateTime<chrono::Utc>>,
        ] $body);
    };
    (@expand $(#[$m:meta])* $name:ident [region $($g:ident)*] [$($acc:tt)*] $body:tt) => {
        view_params!(@expand $(#[$m])* $name [$($g)*] [$($acc)*
            /// Only this city (prefecture), by GB/T 2260 code; a retired code means its
            /// successor.
            city: Option<RegionCode>,
            /// Only this county, by GB/T 2260 code; a retired code means its successor.
            county: Option<RegionCode>,
        ] $body);
    };
    (@expand $(#[$m:meta])* $name:ident [name $($g:ident)*] [$($acc:tt)*] $body:tt) => {
        view_params!(@expand $(#[$m])* $name [$($g)*] [$($acc)*
            /// Only people whose name contains this text (spaces and case ignored; one line, at
            /// most 32 characters). Names are personal data: administrators search everyone,
            /// a director finds only themselves and their own model worker, and auditors and
            /// integrations are refused (403). Combines with the other filters and the cursor.
            #[schemars(length(min = 1, max = 32))]
            q: Option<String>,
        ] $body);
    };
    (@expand $(#[$m:meta])* $name:ident [page $($g:ident)*] [$($acc:tt)*] $body:tt) => {
        view_params!(@expand $(#[$m])* $name [$($g)*] [$($acc)*
            /// Page size (default 50).
            #[schemars(range(min = 1, max = 500))]
            limit: Option<u32>,
            /// Where the page starts: a previous page's `next_cursor`.
            #[schemars(regex(pattern = "^o[0-9]{1,9}$"))]
            cursor: Option<String>,
        ] $body);
    };
    (@expand $(#[$m:meta])* $name:ident [] [$($acc:tt)*] { $($body:tt)* }) => {
        view_params!(@emit $(#[$m])* $name { $($acc)* $($body)* });
    };
    (@emit $(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$m])*
        // A parameter the route does not read is refused (400 `invalid_query`), not ignored:
        // a misspelt filter would otherwise answer an unfiltered list.
        #[derive(Debug, Default, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl From<$name> for Params {
            fn from(p: $name) -> Params {
                Params {
                    $($field: p.$field,)*
                    ..Params::default()
                }
            }
        }
    };
}

view_params!(
    /// Parameters of the overview and the issues summary.
    SummaryParams [today, replay, region] {}
);

view_params!(
    /// Parameters of the visit status per pairing.
    PairingsParams [today, replay, region, name, page] {
        /// Only pairings with this visit status (`overdue` is the overdue list).
        status: Option<VisitStatus>,
        /// Include ended pairings (default: active ones only).
        #[serde(default)]
        include_ended: bool,
        /// Only this director's pairings (a director always sees only their own).
        director_id: Option<Uuid>,
    }
);

view_params!(
    /// Parameters of the director caseload.
    DirectorsParams [today, replay, name, page] {
        /// Only directors with this role (as appointed, e.g. `standing_director`).
        role: Option<String>,
        /// The order (default: least engaged first).
        sort: Option<CaseloadSort>,
    }
);

view_params!(
    /// Parameters of a model worker's file and timeline.
    FileParams [replay] {
        /// Timeline entries after this log position (default: from the start).
        after: Option<i64>,
        /// Timeline entries per page (default 200; more is read as 500, 0 as 1).
        limit: Option<u32>,
    }
);

view_params!(
    /// Parameters of the issues board.
    IssuesParams [today, replay, region, page] {
        /// A state (`raised`, `acknowledged`, `escalated`, `resolved`, `closed`, ...), `open`
        /// (the default: every state not closed) or `all`.
        state: Option<String>,
        /// Only issues escalated to this body.
        body_id: Option<Uuid>,
        /// Raised on or after this date.
        raised_from: Option<NaiveDate>,
        /// Raised on or before this date.
        raised_to: Option<NaiveDate>,
        /// Only open issues whose response is overdue.
        #[serde(default)]
        breached_only: bool,
    }
);

view_params!(
    /// Parameters of the gifts dashboard.
    GiftsParams [today, replay, region, page] {
        /// The first month (any day in it; default: January of `as_of`'s year). A range that
        /// ends before it starts is empty.
        from: Option<NaiveDate>,
        /// The last month (any day in it; default: `as_of`).
        to: Option<NaiveDate>,
        /// How to group (default: by month).
        group_by: Option<GiftGrouping>,
    }
);

view_params!(
    /// Parameters of region coverage.
    RegionsParams [today, replay, region] {
        /// Per city or per county (default: city).
        level: Option<CoverageLevel>,
    }
);

view_params!(
    /// Parameters of the model workers list.
    ModelWorkersParams [replay, region, name, page] {
        /// Only those in hardship (true) or not (false).
        in_hardship: Option<bool>,
        /// Only those with an active pairing (true) or without (false).
        paired: Option<bool>,
    }
);

view_params!(
    /// Parameters of the visits list.
    VisitsParams [replay, region, page] {
        /// Visited on or after this date.
        from: Option<NaiveDate>,
        /// Visited on or before this date.
        to: Option<NaiveDate>,
        /// Only this pairing's visits.
        pairing_id: Option<Uuid>,
        /// Only visits to this model worker.
        model_worker_id: Option<Uuid>,
        /// Only visits within this director's pairings (the pairing's director, not the visit's
        /// lead); a director always sees only their own.
        director_id: Option<Uuid>,
        /// Include voided visits (default: not).
        #[serde(default)]
        include_voided: bool,
    }
);

/// The model worker a path names.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WorkerPath {
    /// The model worker's id.
    pub id: Uuid,
}

/// A page of a list.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct List<T> {
    /// This page's rows.
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
            city: self.city.map(|c| c.as_str()),
            county: self.county.map(|c| c.as_str()),
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

/// 400 `invalid_query` when a date range ends before it starts: an empty answer would read as
/// "nothing happened" rather than "you asked for nothing".
fn date_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    names: (&str, &str),
) -> ApiResult<()> {
    match (from, to) {
        (Some(f), Some(t)) if f > t => Err(ApiError::bad_request(
            "invalid_query",
            format!("{} ({f}) is after {} ({t})", names.0, names.1),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn projection_error(e: caretrail_projections::ProjectionError) -> ApiError {
    use caretrail_projections::ProjectionError as P;
    match e {
        P::InvalidQuery(why) => ApiError::bad_request("invalid_query", why),
        // The read model holds the total exactly; the answer's 64-bit field cannot.
        P::AmountNotRepresentable => {
            tracing::error!("a dashboard total does not fit 64 bits of fen");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "amount_not_representable",
                "a total amount is too large to answer as a 64-bit number of fen",
            )
        }
        // A read-model value that does not decode: the log names the table, the column and
        // what is wrong (never the value); the client learns only the stable code, so the
        // dashboard shows an error instead of a plausible wrong number.
        P::CorruptRow {
            table,
            column,
            reason,
        } => {
            tracing::error!(
                code = "read_model_corrupt",
                table = %table,
                column = %column,
                reason = %reason,
                "a read-model row cannot be read"
            );
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "read_model_corrupt",
                "the read model holds a value that cannot be read; it has been logged",
            )
        }
        other => ApiError::unavailable_or_internal(other.is_unavailable(), &other),
    }
}

/// The read models to answer from: the live ones, or a replay for `as_of_position` /
/// `as_of_recorded_at` (auditors and administrators only).
pub(crate) fn read_side(state: &AppState) -> ApiResult<&ReadSide> {
    state.read.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "read_side_unavailable",
            "dashboards are not enabled on this server",
        )
    })
}

async fn models(state: &AppState, p: &Principal, params: &Params) -> ApiResult<ReadModels> {
    Ok(models_at(state, p, params).await?.0)
}

/// [`models`], and the log position a replay reflects (`None` for the live read models,
/// which move on; their position is their checkpoint, see [`Projector::live_version`]).
pub(crate) async fn models_at(
    state: &AppState,
    p: &Principal,
    params: &Params,
) -> ApiResult<(ReadModels, Option<u64>)> {
    let read = read_side(state)?;
    let as_of = match (params.as_of_position, params.as_of_recorded_at) {
        (None, None) => return Ok((read.projector.read_models(), None)),
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
    let replayed = replay(state.app.store().clone(), as_of)
        .await
        .map_err(projection_error)?;
    Ok((replayed.read_models, Some(replayed.position)))
}

pub(crate) fn today(state: &AppState, params: &Params) -> NaiveDate {
    params
        .as_of
        .unwrap_or_else(|| shanghai_date(state.app.clock().now()))
}

fn params<P: Into<Params>>(q: Result<Query<P>, ApiError>) -> ApiResult<Params> {
    q.map(|Query(p)| p.into())
}

/// `GET /dashboard/overview`: the programme's headline figures (administrators, auditors).
pub async fn overview(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<SummaryParams>, ApiError>,
) -> ApiResult<JsonBytes<Overview>> {
    principal.require(DASHBOARD_READERS, "read dashboards")?;
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

/// The ids of the `people` whose name contains `q.q`, as `principal` may read names; `None`
/// without a search. Auditors and integrations read no names, so a search is refused to them
/// (403) rather than answered with nothing, which would look like "nobody is called that".
async fn named(
    state: &AppState,
    principal: &Principal,
    access: &caretrail_app::view::Access,
    m: &ReadModels,
    people: &[People],
    q: &Params,
) -> ApiResult<Option<Vec<Vec<Uuid>>>> {
    let Some(raw) = &q.q else {
        return Ok(None);
    };
    if !matches!(principal.role, Role::Admin | Role::Director) {
        return Err(principal.deny("search by name"));
    }
    let query = NameQuery::parse(raw).map_err(projection_error)?;
    let read = read_side(state)?;
    // The live read models' version lets a search reuse the rows it read since the last
    // applied batch; a replay is read afresh.
    let live_version = if q.as_of_position.is_none() && q.as_of_recorded_at.is_none() {
        Some(
            read.projector
                .live_version()
                .await
                .map_err(projection_error)?,
        )
    } else {
        None
    };
    let mut found = Vec::with_capacity(people.len());
    for p in people {
        found.push(
            m.people_named(
                state.app.keys(),
                access,
                &read.names,
                *p,
                &query,
                live_version,
            )
            .await
            .map_err(projection_error)?,
        );
    }
    Ok(Some(found))
}

/// `GET /pairings`: visit status per pairing, sorted by due date; a director sees only their own.
pub async fn pairings(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<PairingsParams>, ApiError>,
) -> ApiResult<JsonBytes<List<PairingStatus>>> {
    principal.require(
        &[Role::Admin, Role::Auditor, Role::Director],
        "read pairings",
    )?;
    let q = params(q)?;
    let today = today(&state, &q);
    answer_as(&state, &principal, &uri, today, q.q.is_some(), || {
        pairings_page(&state, &principal, &q, today)
    })
    .await
}

async fn pairings_page(
    state: &AppState,
    principal: &Principal,
    q: &Params,
    today: NaiveDate,
) -> ApiResult<List<PairingStatus>> {
    let m = models(state, principal, q).await?;
    let access = access_for(state, principal).await?;
    // A director sees their own pairings only; an explicit director filter narrows the rest.
    // Both are filters of the query itself: filtering a page afterwards would answer short
    // pages, or an empty one while the director's pairings sit on a later page.
    let director_id = match principal.role {
        Role::Director => Some(
            principal
                .director_id
                .ok_or_else(|| principal.deny("read pairings without a director"))?,
        ),
        _ => q.director_id,
    };
    let named = named(
        state,
        principal,
        &access,
        &m,
        &[People::ModelWorkers, People::Directors],
        q,
    )
    .await?
    .map(|mut found| Named {
        directors: found.pop().unwrap_or_default(),
        model_workers: found.pop().unwrap_or_default(),
    });
    let page = m
        .visit_status(
            state.app.keys(),
            &access,
            &VisitStatusQuery {
                as_of: today,
                region: q.region(),
                status: q.status,
                include_ended: q.include_ended,
                director_id,
                named,
                page: q.page()?,
            },
        )
        .await
        .map_err(projection_error)?;
    Ok(List::from(page))
}

/// `GET /directors`: each director's caseload for the year of `as_of` (administrators, auditors).
pub async fn directors(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<DirectorsParams>, ApiError>,
) -> ApiResult<JsonBytes<List<DirectorCaseload>>> {
    principal.require(&[Role::Admin, Role::Auditor], "read director caseloads")?;
    let q = params(q)?;
    let today = today(&state, &q);
    answer_as(&state, &principal, &uri, today, q.q.is_some(), || {
        directors_page(&state, &principal, &q, today)
    })
    .await
}

async fn directors_page(
    state: &AppState,
    principal: &Principal,
    q: &Params,
    today: NaiveDate,
) -> ApiResult<List<DirectorCaseload>> {
    let m = models(state, principal, q).await?;
    let access = access_for(state, principal).await?;
    let named = named(state, principal, &access, &m, &[People::Directors], q)
        .await?
        .and_then(|mut found| found.pop());
    let page = m
        .director_caseload(
            state.app.keys(),
            &access,
            &CaseloadQuery {
                as_of: today,
                role: q.role.clone(),
                sort: q.sort.unwrap_or_default(),
                named,
                page: q.page()?,
            },
        )
        .await
        .map_err(projection_error)?;
    Ok(List::from(page))
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

/// The model worker's file as `principal` may see it; the caller has checked
/// [`may_read_worker`].
async fn worker_file(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    q: &Params,
) -> ApiResult<caretrail_projections::query::ModelWorkerFile> {
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

/// `GET /model-workers/{id}`: a model worker's file with the first page of their timeline.
pub async fn model_worker(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    Path(WorkerPath { id }): Path<WorkerPath>,
    q: Result<Query<FileParams>, ApiError>,
) -> ApiResult<JsonBytes<ModelWorkerFile>> {
    let q = params(q)?;
    may_read_worker(&state, &principal, id).await?;
    answer_as(&state, &principal, &uri, today(&state, &q), false, || {
        worker_file(&state, &principal, id, &q)
    })
    .await
}

/// A page of a model worker's care timeline.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TimelinePage {
    /// This page's entries, in log order.
    pub items: Vec<TimelineEntry>,
    /// The last entry's log position, to pass as `after` for the next page; absent on the
    /// last page.
    pub next_cursor: Option<String>,
}

/// `GET /model-workers/{id}/timeline`: a page of a model worker's care timeline.
pub async fn timeline(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    Path(WorkerPath { id }): Path<WorkerPath>,
    q: Result<Query<FileParams>, ApiError>,
) -> ApiResult<JsonBytes<TimelinePage>> {
    let q = params(q)?;
    may_read_worker(&state, &principal, id).await?;
    answer_as(
        &state,
        &principal,
        &uri,
        today(&state, &q),
        false,
        || async {
            let file = worker_file(&state, &principal, id, &q).await?;
            let next = file.timeline.items.last().map(|e| e.position);
            let more = file.timeline.next_offset.is_some();
            Ok(TimelinePage {
                next_cursor: if more {
                    next.map(|p| p.to_string())
                } else {
                    None
                },
                items: file.timeline.items,
            })
        },
    )
    .await
}

/// `GET /issues`: the issues board, oldest first (administrators, auditors).
pub async fn issues(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<IssuesParams>, ApiError>,
) -> ApiResult<JsonBytes<List<IssueItem>>> {
    principal.require(&[Role::Admin, Role::Auditor], "read the issues board")?;
    let q = params(q)?;
    date_range(q.raised_from, q.raised_to, ("raised_from", "raised_to"))?;
    let today = today(&state, &q);
    answer_as(&state, &principal, &uri, today, false, || async {
        let m = models(&state, &principal, &q).await?;
        let page = m
            .issues(&IssuesQuery {
                as_of: today,
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
        Ok(List::from(page))
    })
    .await
}

/// `GET /dashboard/issues`: open issues by state and age, per body, and time to resolve.
pub async fn issue_summary(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<SummaryParams>, ApiError>,
) -> ApiResult<JsonBytes<IssueSummary>> {
    principal.require(DASHBOARD_READERS, "read dashboards")?;
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

/// `GET /dashboard/gifts`: visits and gift totals grouped by month, region or director.
pub async fn gifts(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<GiftsParams>, ApiError>,
) -> ApiResult<JsonBytes<List<GiftTotals>>> {
    principal.require(DASHBOARD_READERS, "read dashboards")?;
    let q = params(q)?;
    let today = today(&state, &q);
    let from = q.from.unwrap_or_else(|| {
        NaiveDate::from_ymd_opt(chrono::Datelike::year(&today), 1, 1).unwrap_or(today)
    });
    let to = q.to.unwrap_or(today);
    let names = match (q.from, q.to) {
        (Some(_), Some(_)) => ("from", "to"),
        (None, _) => ("from (by default 1 January of the as-of year)", "to"),
        (_, None) => ("from", "to (by default the as-of date)"),
    };
    date_range(Some(from), Some(to), names)?;
    answer_as(&state, &principal, &uri, today, false, || async {
        let m = models(&state, &principal, &q).await?;
        let page = m
            .gifts(&GiftsQuery {
                from,
                to,
                region: q.region(),
                group_by: q.group_by.unwrap_or(GiftGrouping::Month),
                page: q.page()?,
            })
            .await
            .map_err(projection_error)?;
        Ok(List::from(page))
    })
    .await
}

/// `GET /regions`: coverage of model workers in hardship per city or county.
pub async fn regions(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<RegionsParams>, ApiError>,
) -> ApiResult<JsonBytes<List<CoverageRow>>> {
    principal.require(DASHBOARD_READERS, "read dashboards")?;
    let q = params(q)?;
    let today = today(&state, &q);
    answer_as(&state, &principal, &uri, today, false, || async {
        let m = models(&state, &principal, &q).await?;
        let rows = m
            .coverage(today, q.level.unwrap_or(CoverageLevel::City), &q.region())
            .await
            .map_err(projection_error)?;
        Ok(List {
            items: rows,
            next_cursor: None,
        })
    })
    .await
}

/// The model workers list. A director sees only the model worker they are paired with.
pub async fn model_workers(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<ModelWorkersParams>, ApiError>,
) -> ApiResult<JsonBytes<List<ModelWorkerItem>>> {
    principal.require(
        &[Role::Admin, Role::Auditor, Role::Director],
        "list model workers",
    )?;
    let q = params(q)?;
    answer_as(
        &state,
        &principal,
        &uri,
        today(&state, &q),
        q.q.is_some(),
        || model_workers_page(&state, &principal, &q),
    )
    .await
}

async fn model_workers_page(
    state: &AppState,
    principal: &Principal,
    q: &Params,
) -> ApiResult<List<ModelWorkerItem>> {
    let m = models(state, principal, q).await?;
    let access = access_for(state, principal).await?;
    let page = q.page()?;
    let named = named(state, principal, &access, &m, &[People::ModelWorkers], q)
        .await?
        .and_then(|mut found| found.pop());
    // A director's list holds only the model worker they are paired with, as a filter of the
    // query (not of a page afterwards, which would answer it on page one only if it sorted
    // there); an unpaired director's list is empty.
    let model_worker_id = if principal.role == Role::Director {
        let own = match principal.director_id {
            Some(d) => crate::commands::own_pairing(state, d).await?.1,
            None => None,
        };
        match own {
            Some(id) => Some(id),
            None => {
                return Ok(List::from(caretrail_projections::query::Paged {
                    items: Vec::new(),
                    limit: page.limit.clamp(1, 500),
                    offset: page.offset,
                    next_offset: None,
                }));
            }
        }
    } else {
        None
    };
    let page = m
        .model_workers(
            state.app.keys(),
            &access,
            &ModelWorkersQuery {
                region: q.region(),
                in_hardship: q.in_hardship,
                paired: q.paired,
                model_worker_id,
                named,
                page,
            },
        )
        .await
        .map_err(projection_error)?;
    Ok(List::from(page))
}

/// The visits list, newest first. A director sees only the visits they led.
pub async fn visits(
    State(state): State<AppState>,
    principal: Principal,
    uri: Uri,
    q: Result<Query<VisitsParams>, ApiError>,
) -> ApiResult<JsonBytes<List<VisitItem>>> {
    principal.require(&[Role::Admin, Role::Auditor, Role::Director], "list visits")?;
    let q = params(q)?;
    date_range(q.from, q.to, ("from", "to"))?;
    let director_id = match principal.role {
        Role::Director => principal.director_id,
        _ => q.director_id,
    };
    answer_as(
        &state,
        &principal,
        &uri,
        today(&state, &q),
        false,
        || async {
            let m = models(&state, &principal, &q).await?;
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
            Ok(List::from(page))
        },
    )
    .await
}
