//! Query functions the HTTP layer serves: the seven dashboards of `docs/domain.md` (section 8), with filters,
//! sorting and limit/offset pagination, answered from indexed read-model tables.
//!
//! Everything that depends on "today" is computed here against the caller's `as_of` date:
//! visit status (never_visited / on_track / due_soon / overdue), issue ages and breaches,
//! "this month" and "this year". Names are opened only for [`Access::Personal`] readers and
//! read as erased once the subject's key is gone.
//!
//! Each call runs in one read transaction, so the generation pointer and the rows it reads
//! agree even while a rebuild switches generations.

mod file;
mod gifts;
mod issues;

pub use file::*;
pub use gifts::*;
pub use issues::*;

use caretrail_app::KeyRing;
use caretrail_app::view::Access;
use caretrail_domain::{RegionCode, Sealed};
use std::sync::Arc;

use caretrail_store::{Database, EventStore};
use chrono::{Datelike, Days, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::error::{ProjectionError, Result};
use crate::model::OPEN_STATES;
use crate::runner::read_meta;
use crate::sql::{ColType, Conn, Val, physical};

/// Handle on a set of read-model tables: the live ones (following the generation pointer) or
/// a fixed generation (an as-of replay's scratch database), and the log they were built from
/// (the timeline keeps positions and reads the events themselves from it).
#[derive(Clone)]
pub struct ReadModels {
    db: Database,
    fixed: Option<i64>,
    log: Arc<dyn EventStore>,
}

impl std::fmt::Debug for ReadModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModels")
            .field("db", &self.db)
            .field("fixed", &self.fixed)
            .field("log", &self.log.backend())
            .finish()
    }
}

enum ReadTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl ReadTx {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            ReadTx::Sqlite(t) => Conn::Sqlite(&mut *t),
            ReadTx::Postgres(t) => Conn::Postgres(&mut *t),
        }
    }
}

/// A personal value as a reader sees it: the text, or that it was erased or withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    Text(String),
    Erased,
    Redacted,
    /// Nothing was recorded.
    Missing,
}

impl Serialize for Shown {
    /// The same shapes as the event view: a string, `{"erased": true}`, `{"redacted": true}`.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Shown::Text(t) => s.serialize_str(t),
            Shown::Missing => s.serialize_none(),
            Shown::Erased | Shown::Redacted => {
                let mut m = s.serialize_map(Some(1))?;
                let key = if *self == Shown::Erased {
                    "erased"
                } else {
                    "redacted"
                };
                m.serialize_entry(key, &true)?;
                m.end()
            }
        }
    }
}

impl JsonSchema for Shown {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Shown".into()
    }

    /// The four shapes [`Shown`]'s `Serialize` writes, and nothing else.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A personal value as the reader may see it: the text; null when nothing was recorded; `{\"erased\": true}` once the subject's key is destroyed; `{\"redacted\": true}` when the reader's role may not see it.",
            "oneOf": [
                { "type": "string" },
                { "type": "null" },
                { "type": "object", "properties": { "erased": { "const": true } },
                  "required": ["erased"], "additionalProperties": false },
                { "type": "object", "properties": { "redacted": { "const": true } },
                  "required": ["redacted"], "additionalProperties": false }
            ]
        })
    }
}

async fn show(
    keys: &KeyRing,
    access: &Access,
    sealed: Option<String>,
    event: Option<Uuid>,
    erased: bool,
) -> Result<Shown> {
    if erased {
        return Ok(Shown::Erased);
    }
    let (Some(sealed), Some(event)) = (sealed, event) else {
        return Ok(Shown::Missing);
    };
    let sealed: Sealed = serde_json::from_str(&sealed)
        .map_err(|_| ProjectionError::InvalidQuery("a stored sealed value is malformed".into()))?;
    if !access.may_open(sealed.subject) {
        return Ok(Shown::Redacted);
    }
    Ok(match keys.unseal(&sealed, event).await? {
        Some(text) => Shown::Text(text),
        None => Shown::Erased,
    })
}

/// Restricts a dashboard to a city (prefecture) or a county, by GB/T 2260 code. Retired
/// codes are accepted and mean their successor.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RegionFilter {
    pub city: Option<String>,
    pub county: Option<String>,
}

impl RegionFilter {
    fn resolved(&self) -> Result<(Option<String>, Option<String>)> {
        let parse = |s: &Option<String>| -> Result<Option<String>> {
            s.as_deref()
                .map(|c| {
                    RegionCode::parse(c)
                        .map(|r| r.successor().as_str())
                        .map_err(|e| ProjectionError::InvalidQuery(e.to_string()))
                })
                .transpose()
        };
        Ok((parse(&self.city)?, parse(&self.county)?))
    }
}

/// Limit/offset pagination (limit 1..=500, default 50).
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 50,
            offset: 0,
        }
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub limit: u32,
    pub offset: u32,
    /// The offset of the next page, when there is one.
    pub next_offset: Option<u32>,
}

/// A statement under construction: numbered placeholders and their values.
struct Q {
    vals: Vec<Val>,
    types: Vec<ColType>,
}

impl Q {
    fn new() -> Q {
        Q {
            vals: Vec::new(),
            types: Vec::new(),
        }
    }
    fn text(&mut self, s: impl Into<String>) -> String {
        self.vals.push(Val::Text(s.into()));
        self.types.push(ColType::Text);
        format!("?{}", self.vals.len())
    }
    fn int(&mut self, i: i64) -> String {
        self.vals.push(Val::Int(i));
        self.types.push(ColType::Int);
        format!("?{}", self.vals.len())
    }
    fn region(&mut self, filter: &RegionFilter, prefix: &str) -> Result<String> {
        let (city, county) = filter.resolved()?;
        let mut sql = String::new();
        if let Some(c) = city {
            let p = self.text(c);
            sql.push_str(&format!(" AND {prefix}city_code = {p}"));
        }
        if let Some(c) = county {
            let p = self.text(c);
            sql.push_str(&format!(" AND {prefix}county_code = {p}"));
        }
        Ok(sql)
    }
    async fn fetch(
        &self,
        conn: &mut Conn<'_>,
        sql: &str,
        out: &[ColType],
    ) -> Result<Vec<Vec<Val>>> {
        conn.fetch(sql, &self.vals, &self.types, out).await
    }
}

fn int(v: &Val) -> i64 {
    match v {
        Val::Int(i) => *i,
        _ => 0,
    }
}
/// A stored integer that must be there (an amount's part, a sum): anything else is an error,
/// never a default.
fn strict_int(v: &Val, what: &'static str) -> Result<i64> {
    match v {
        Val::Int(i) => Ok(*i),
        _ => Err(ProjectionError::Malformed(what)),
    }
}

/// An amount of fen from its two stored parts (or their sums, see [`crate::sql::FEN_SPLIT`]):
/// an error when it does not fit `i64`.
fn fen(hi: &Val, lo: &Val) -> Result<i64> {
    let fen = crate::sql::join_fen(strict_int(hi, "amount")?, strict_int(lo, "amount")?);
    i64::try_from(fen).map_err(|_| ProjectionError::AmountNotRepresentable)
}

/// `CAST(COALESCE(SUM(..), 0) AS BIGINT)` of both parts of a money column, for [`fen`].
fn sum_fen(column: &str) -> String {
    format!(
        "CAST(COALESCE(SUM({column}_hi), 0) AS BIGINT), CAST(COALESCE(SUM({column}_lo), 0) AS BIGINT)"
    )
}

fn text(v: &Val) -> Option<String> {
    match v {
        Val::Text(s) => Some(s.clone()),
        _ => None,
    }
}
fn date(v: &Val) -> Option<NaiveDate> {
    text(v).and_then(|s| s.parse().ok())
}
fn uuid(v: &Val) -> Option<Uuid> {
    text(v).and_then(|s| s.parse().ok())
}

fn minus(d: NaiveDate, days: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(days)).unwrap_or(d)
}

fn page_of<T>(mut items: Vec<T>, page: Page) -> Paged<T> {
    let limit = page.limit.clamp(1, 500);
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Paged {
        items,
        limit,
        offset: page.offset,
        next_offset: more.then_some(page.offset + limit),
    }
}

fn limit_sql(q: &mut Q, page: Page) -> String {
    let limit = i64::from(page.limit.clamp(1, 500)) + 1;
    let l = q.int(limit);
    let o = q.int(i64::from(page.offset));
    format!(" LIMIT {l} OFFSET {o}")
}

/// Money in fen shown as yuan with two decimals.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Issue age buckets, by days since the issue was raised.
pub const AGE_BUCKETS: [&str; 4] = ["0-7", "8-30", "31-90", ">90"];

fn bucket_sql(q: &mut Q, as_of: NaiveDate) -> String {
    let d7 = q.text(minus(as_of, 7).to_string());
    let d30 = q.text(minus(as_of, 30).to_string());
    let d90 = q.text(minus(as_of, 90).to_string());
    format!(
        "CASE WHEN raised_on >= {d7} THEN '0-7' WHEN raised_on >= {d30} THEN '8-30' \
         WHEN raised_on >= {d90} THEN '31-90' ELSE '>90' END"
    )
}

fn open_states_sql() -> String {
    let list: Vec<String> = OPEN_STATES.iter().map(|s| format!("'{s}'")).collect();
    format!("({})", list.join(", "))
}

/// Open issues counted by state and age bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct IssueCount {
    pub state: String,
    pub age_bucket: String,
    pub count: i64,
}

/// Dashboard 1: the overview.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Overview {
    pub as_of: NaiveDate,
    pub model_workers_in_hardship: i64,
    pub paired: i64,
    pub unpaired: i64,
    /// Paired share of model workers in hardship, in percent (one decimal).
    pub coverage_percent: f64,
    pub active_pairings: i64,
    pub visits_this_month: i64,
    pub visits_this_year: i64,
    pub cash_fen_this_year: i64,
    pub cash_yuan_this_year: String,
    pub goods_fen_this_year: i64,
    pub goods_given_this_year: i64,
    pub flowers_given_this_year: i64,
    pub open_issues: Vec<IssueCount>,
}

/// The status of a pairing's visits on a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitStatus {
    NeverVisited,
    OnTrack,
    DueSoon,
    Overdue,
}

/// Dashboard 2's filters.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VisitStatusQuery {
    pub as_of: NaiveDate,
    #[serde(default)]
    pub region: RegionFilter,
    pub status: Option<VisitStatus>,
    /// Include ended pairings (default: active ones only).
    #[serde(default)]
    pub include_ended: bool,
    #[serde(default)]
    pub page: Page,
}

/// Dashboard 2: one pairing's visit status. The default order is most overdue first.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct PairingStatus {
    pub pairing_id: Uuid,
    pub director_id: Uuid,
    pub director_name: Shown,
    pub model_worker_id: Uuid,
    pub model_worker_name: Shown,
    pub city_code: Option<String>,
    pub county_code: String,
    pub effective_from: NaiveDate,
    pub ended_on: Option<NaiveDate>,
    pub last_visit_on: Option<NaiveDate>,
    pub next_due_on: NaiveDate,
    pub status: VisitStatus,
    /// Days past the due date (negative: days left).
    pub days_overdue: i64,
    pub visits_this_year: i64,
    pub open_issues: i64,
}

/// Dashboard 3's filters.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CaseloadQuery {
    pub as_of: NaiveDate,
    pub role: Option<String>,
    #[serde(default)]
    pub sort: CaseloadSort,
    #[serde(default)]
    pub page: Page,
}

/// Orders of the caseload list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseloadSort {
    /// Fewest visits this year first: who needs a nudge.
    #[default]
    LeastEngaged,
    MostEngaged,
    /// By id: stable for exports.
    Id,
}

/// Dashboard 3: a director's caseload and engagement in the year of `as_of`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DirectorCaseload {
    pub director_id: Uuid,
    pub name: Shown,
    pub role: String,
    pub term_ended_on: Option<NaiveDate>,
    pub pairing_id: Option<Uuid>,
    pub model_worker_id: Option<Uuid>,
    pub visits_this_year: i64,
    pub joint_visits_this_year: i64,
    pub contacts_this_year: i64,
    pub last_contact_on: Option<NaiveDate>,
    pub issues_raised_this_year: i64,
    pub issues_closed_this_year: i64,
}

/// The model workers list: filters by region, hardship and pairing.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ModelWorkersQuery {
    #[serde(default)]
    pub region: RegionFilter,
    pub in_hardship: Option<bool>,
    pub paired: Option<bool>,
    #[serde(default)]
    pub page: Page,
}

/// One row of the model workers list.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ModelWorkerItem {
    pub model_worker_id: Uuid,
    pub name: Shown,
    pub honour: String,
    pub county_code: String,
    pub city_code: Option<String>,
    pub in_hardship: bool,
    pub hardship_tier: Option<String>,
    pub died_on: Option<NaiveDate>,
    pub pairing_id: Option<Uuid>,
    pub director_id: Option<Uuid>,
    pub last_visit_on: Option<NaiveDate>,
    pub visits: i64,
    pub open_issues: i64,
}

/// The visits list: filters by region, date range, pairing and model worker.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct VisitsQuery {
    #[serde(default)]
    pub region: RegionFilter,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub pairing_id: Option<Uuid>,
    pub model_worker_id: Option<Uuid>,
    pub director_id: Option<Uuid>,
    #[serde(default)]
    pub include_voided: bool,
    #[serde(default)]
    pub page: Page,
}

/// One visit with its gift totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VisitItem {
    pub visit_id: Uuid,
    pub visited_on: NaiveDate,
    pub model_worker_id: Uuid,
    pub pairing_id: Option<Uuid>,
    pub director_id: Option<Uuid>,
    pub region_code: String,
    pub county_code: String,
    pub city_code: Option<String>,
    pub cash_fen: i64,
    pub cash_yuan: String,
    pub goods_fen: i64,
    pub goods_count: i64,
    pub flowers_count: i64,
    pub participants: i64,
    pub joint: bool,
    pub medical_advice: bool,
    pub late_entry: bool,
    pub voided: bool,
    pub corrections: i64,
    /// The log position of the visit's recording event.
    pub position: i64,
}

fn status_of(
    last: Option<NaiveDate>,
    due_on: NaiveDate,
    soon_from: NaiveDate,
    as_of: NaiveDate,
) -> VisitStatus {
    if last.is_none() {
        VisitStatus::NeverVisited
    } else if as_of > due_on {
        VisitStatus::Overdue
    } else if as_of >= soon_from {
        VisitStatus::DueSoon
    } else {
        VisitStatus::OnTrack
    }
}

impl ReadModels {
    /// The live read models beside `store`'s log.
    pub fn live(store: Arc<dyn EventStore>) -> ReadModels {
        ReadModels {
            db: store.database(),
            fixed: None,
            log: store,
        }
    }

    /// One generation in `db` (a replay's scratch database), built from `log`.
    pub(crate) fn fixed(db: Database, generation: i64, log: Arc<dyn EventStore>) -> ReadModels {
        ReadModels {
            db,
            fixed: Some(generation),
            log,
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn begin(&self) -> Result<(ReadTx, i64)> {
        let mut tx = match &self.db {
            Database::Sqlite(p) => ReadTx::Sqlite(p.begin().await?),
            Database::Postgres(p) => ReadTx::Postgres(p.begin().await?),
        };
        let generation = match self.fixed {
            Some(g) => g,
            None => read_meta(&mut tx.conn())
                .await?
                .map(|m| m.live_generation)
                .ok_or_else(|| {
                    ProjectionError::InvalidQuery("read models are not set up".into())
                })?,
        };
        Ok((tx, generation))
    }

    /// The generation these read models serve now.
    pub async fn generation(&self) -> Result<i64> {
        Ok(self.begin().await?.1)
    }

    /// Every row of every table, as text, in key order (for comparing two builds).
    pub async fn dump(&self) -> Result<Vec<(String, Vec<String>)>> {
        let (mut tx, g) = self.begin().await?;
        let mut out = Vec::new();
        for def in crate::model::TABLES {
            out.push((
                def.name.to_owned(),
                crate::sql::dump(&mut tx.conn(), g, def).await?,
            ));
        }
        Ok(out)
    }

    /// Dashboard 1.
    #[tracing::instrument(name = "projections.overview", skip_all)]
    pub async fn overview(&self, as_of: NaiveDate, region: &RegionFilter) -> Result<Overview> {
        let (mut tx, g) = self.begin().await?;
        let mut conn = tx.conn();
        let (mw, pairs, months, issues) = (
            physical(g, "model_workers"),
            physical(g, "pairings"),
            physical(g, "gifts_by_month"),
            physical(g, "issues"),
        );
        let mut q = Q::new();
        let r = q.region(region, "")?;
        let row = q
            .fetch(
                &mut conn,
                &format!(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN pairing_id IS NOT NULL \
                     THEN 1 ELSE 0 END), 0) AS BIGINT) FROM {mw} \
                     WHERE in_hardship = 1 AND died_on IS NULL{r}"
                ),
                &[ColType::Int, ColType::Int],
            )
            .await?;
        let (hardship, paired) = row.first().map_or((0, 0), |r| (int(&r[0]), int(&r[1])));
        let mut q = Q::new();
        let r = q.region(region, "")?;
        let active = q
            .fetch(
                &mut conn,
                &format!("SELECT COUNT(*) FROM {pairs} WHERE active = 1{r}"),
                &[ColType::Int],
            )
            .await?
            .first()
            .map_or(0, |r| int(&r[0]));
        let this_month = format!("{:04}-{:02}", as_of.year(), as_of.month());
        let mut q = Q::new();
        let from = q.text(format!("{:04}-01", as_of.year()));
        let to = q.text(this_month.clone());
        let m = q.text(this_month);
        let r = q.region(region, "")?;
        let (cash, goods) = (sum_fen("cash_fen"), sum_fen("goods_fen"));
        let sums = q
            .fetch(
                &mut conn,
                &format!(
                    "SELECT CAST(COALESCE(SUM(visits), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN month = {m} THEN visits ELSE 0 END), 0) AS BIGINT), \
                     {cash}, {goods}, \
                     CAST(COALESCE(SUM(goods_count), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(flowers_count), 0) AS BIGINT) \
                     FROM {months} WHERE month >= {from} AND month <= {to}{r}"
                ),
                &[ColType::Int; 8],
            )
            .await?;
        let row = sums.first().ok_or(ProjectionError::Malformed("no sums"))?;
        let s: Vec<i64> = vec![
            strict_int(&row[0], "visits")?,
            strict_int(&row[1], "visits")?,
            fen(&row[2], &row[3])?,
            fen(&row[4], &row[5])?,
            strict_int(&row[6], "goods")?,
            strict_int(&row[7], "flowers")?,
        ];
        let open_issues = open_issue_counts(&mut conn, &issues, as_of, region).await?;
        let coverage_percent = if hardship == 0 {
            0.0
        } else {
            ((paired as f64) * 1000.0 / hardship as f64).round() / 10.0
        };
        Ok(Overview {
            as_of,
            model_workers_in_hardship: hardship,
            paired,
            unpaired: hardship - paired,
            coverage_percent,
            active_pairings: active,
            visits_this_month: s[1],
            visits_this_year: s[0],
            cash_fen_this_year: s[2],
            cash_yuan_this_year: yuan(s[2]),
            goods_fen_this_year: s[3],
            goods_given_this_year: s[4],
            flowers_given_this_year: s[5],
            open_issues,
        })
    }

    /// Dashboard 2 (and, with `status: overdue`, the overdue list sorted by days overdue).
    #[tracing::instrument(name = "projections.visit_status", skip_all)]
    pub async fn visit_status(
        &self,
        keys: &KeyRing,
        access: &Access,
        query: &VisitStatusQuery,
    ) -> Result<Paged<PairingStatus>> {
        let (mut tx, g) = self.begin().await?;
        let mut conn = tx.conn();
        let (pairs, mw, dirs, visits) = (
            physical(g, "pairings"),
            physical(g, "model_workers"),
            physical(g, "directors"),
            physical(g, "visits"),
        );
        let as_of = query.as_of;
        let mut q = Q::new();
        let a = q.text(as_of.to_string());
        let year_start = q.text(format!("{:04}-01-01", as_of.year()));
        let mut filter = String::new();
        if !query.include_ended {
            filter.push_str(" AND p.active = 1");
        }
        filter.push_str(&q.region(&query.region, "p.")?);
        match query.status {
            None => {}
            Some(VisitStatus::NeverVisited) => filter.push_str(" AND p.last_visit_on IS NULL"),
            Some(VisitStatus::Overdue) => filter.push_str(&format!(
                " AND p.last_visit_on IS NOT NULL AND p.due_on < {a}"
            )),
            Some(VisitStatus::DueSoon) => filter.push_str(&format!(
                " AND p.last_visit_on IS NOT NULL AND p.due_soon_from <= {a} AND p.due_on >= {a}"
            )),
            Some(VisitStatus::OnTrack) => filter.push_str(&format!(
                " AND p.last_visit_on IS NOT NULL AND p.due_soon_from > {a}"
            )),
        }
        let lim = limit_sql(&mut q, query.page);
        let sql = format!(
            "SELECT p.id, p.director_id, d.name_sealed, d.name_event, d.erased, p.model_worker_id, \
             m.name_sealed, m.name_event, m.erased, p.city_code, p.county_code, p.effective_from, \
             p.ended_on, p.last_visit_on, p.due_on, p.due_soon_from, \
             (SELECT COUNT(*) FROM {visits} v WHERE v.pairing_id = p.id AND v.voided = 0 \
              AND v.visited_on >= {year_start} AND v.visited_on <= {a}), \
             COALESCE(m.open_issues, 0) \
             FROM {pairs} p LEFT JOIN {dirs} d ON d.id = p.director_id \
             LEFT JOIN {mw} m ON m.id = p.model_worker_id \
             WHERE 1 = 1{filter} ORDER BY p.due_on, p.id{lim}"
        );
        use ColType::{Int as I, Text as T};
        let rows = q
            .fetch(
                &mut conn,
                &sql,
                &[T, T, T, T, I, T, T, T, I, T, T, T, T, T, T, T, I, I],
            )
            .await?;
        drop(tx);
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let due = date(&r[14]).unwrap_or_default();
            let last = date(&r[13]);
            items.push(PairingStatus {
                pairing_id: uuid(&r[0]).unwrap_or_default(),
                director_id: uuid(&r[1]).unwrap_or_default(),
                director_name: show(keys, access, text(&r[2]), uuid(&r[3]), int(&r[4]) != 0)
                    .await?,
                model_worker_id: uuid(&r[5]).unwrap_or_default(),
                model_worker_name: show(keys, access, text(&r[6]), uuid(&r[7]), int(&r[8]) != 0)
                    .await?,
                city_code: text(&r[9]),
                county_code: text(&r[10]).unwrap_or_default(),
                effective_from: date(&r[11]).unwrap_or_default(),
                ended_on: date(&r[12]),
                last_visit_on: last,
                next_due_on: due,
                status: status_of(last, due, date(&r[15]).unwrap_or(due), as_of),
                days_overdue: (as_of - due).num_days(),
                visits_this_year: int(&r[16]),
                open_issues: int(&r[17]),
            });
        }
        Ok(page_of(items, query.page))
    }

    /// Dashboard 3.
    #[tracing::instrument(name = "projections.caseload", skip_all)]
    pub async fn director_caseload(
        &self,
        keys: &KeyRing,
        access: &Access,
        query: &CaseloadQuery,
    ) -> Result<Paged<DirectorCaseload>> {
        let (mut tx, g) = self.begin().await?;
        let mut conn = tx.conn();
        let (dirs, years) = (physical(g, "directors"), physical(g, "director_years"));
        let mut q = Q::new();
        let y = q.int(i64::from(query.as_of.year()));
        let mut filter = String::new();
        if let Some(role) = &query.role {
            let p = q.text(role.clone());
            filter.push_str(&format!(" AND d.role = {p}"));
        }
        let order = match query.sort {
            CaseloadSort::LeastEngaged => "COALESCE(y.visits, 0), d.id",
            CaseloadSort::MostEngaged => "COALESCE(y.visits, 0) DESC, d.id",
            CaseloadSort::Id => "d.id",
        };
        let lim = limit_sql(&mut q, query.page);
        let sql = format!(
            "SELECT d.id, d.name_sealed, d.name_event, d.erased, d.role, d.term_ended_on, \
             d.pairing_id, d.model_worker_id, COALESCE(y.visits, 0), COALESCE(y.joint_visits, 0), \
             COALESCE(y.contacts, 0), d.last_contact_on, COALESCE(y.issues_raised, 0), \
             COALESCE(y.issues_closed, 0) \
             FROM {dirs} d LEFT JOIN {years} y ON y.director_id = d.id AND y.year = {y} \
             WHERE 1 = 1{filter} ORDER BY {order}{lim}"
        );
        use ColType::{Int as I, Text as T};
        let rows = q
            .fetch(&mut conn, &sql, &[T, T, T, I, T, T, T, T, I, I, I, T, I, I])
            .await?;
        drop(tx);
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(DirectorCaseload {
                director_id: uuid(&r[0]).unwrap_or_default(),
                name: show(keys, access, text(&r[1]), uuid(&r[2]), int(&r[3]) != 0).await?,
                role: text(&r[4]).unwrap_or_default(),
                term_ended_on: date(&r[5]),
                pairing_id: uuid(&r[6]),
                model_worker_id: uuid(&r[7]),
                visits_this_year: int(&r[8]),
                joint_visits_this_year: int(&r[9]),
                contacts_this_year: int(&r[10]),
                last_contact_on: date(&r[11]),
                issues_raised_this_year: int(&r[12]),
                issues_closed_this_year: int(&r[13]),
            });
        }
        Ok(page_of(items, query.page))
    }

    /// The model workers list, by id, from the model worker table's indexes.
    #[tracing::instrument(name = "projections.model_workers", skip_all)]
    pub async fn model_workers(
        &self,
        keys: &KeyRing,
        access: &Access,
        query: &ModelWorkersQuery,
    ) -> Result<Paged<ModelWorkerItem>> {
        let (mut tx, g) = self.begin().await?;
        let mut conn = tx.conn();
        let mw = physical(g, "model_workers");
        let mut q = Q::new();
        let mut filter = q.region(&query.region, "")?;
        if let Some(h) = query.in_hardship {
            let p = q.int(i64::from(h));
            filter.push_str(&format!(" AND in_hardship = {p}"));
        }
        match query.paired {
            Some(true) => filter.push_str(" AND pairing_id IS NOT NULL"),
            Some(false) => filter.push_str(" AND pairing_id IS NULL"),
            None => {}
        }
        let lim = limit_sql(&mut q, query.page);
        let sql = format!(
            "SELECT id, name_sealed, name_event, erased, honour, county_code, city_code, \
             in_hardship, hardship_tier, died_on, pairing_id, director_id, last_visit_on, \
             visits, open_issues FROM {mw} WHERE 1 = 1{filter} ORDER BY id{lim}"
        );
        use ColType::{Int as I, Text as T};
        let rows = q
            .fetch(
                &mut conn,
                &sql,
                &[T, T, T, I, T, T, T, I, T, T, T, T, T, I, I],
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(ModelWorkerItem {
                model_worker_id: uuid(&r[0]).unwrap_or_default(),
                name: show(keys, access, text(&r[1]), uuid(&r[2]), int(&r[3]) != 0).await?,
                honour: text(&r[4]).unwrap_or_default(),
                county_code: text(&r[5]).unwrap_or_default(),
                city_code: text(&r[6]),
                in_hardship: int(&r[7]) != 0,
                hardship_tier: text(&r[8]),
                died_on: date(&r[9]),
                pairing_id: uuid(&r[10]),
                director_id: uuid(&r[11]),
                last_visit_on: date(&r[12]),
                visits: int(&r[13]),
                open_issues: int(&r[14]),
            });
        }
        Ok(page_of(items, query.page))
    }

    /// The visits list, newest first, from the visit table's date indexes.
    #[tracing::instrument(name = "projections.visits", skip_all)]
    pub async fn visits(&self, query: &VisitsQuery) -> Result<Paged<VisitItem>> {
        let (mut tx, g) = self.begin().await?;
        let mut conn = tx.conn();
        let visits = physical(g, "visits");
        let mut q = Q::new();
        let mut filter = q.region(&query.region, "")?;
        if let Some(d) = query.from {
            let p = q.text(d.to_string());
            filter.push_str(&format!(" AND visited_on >= {p}"));
        }
        if let Some(d) = query.to {
            let p = q.text(d.to_string());
            filter.push_str(&format!(" AND visited_on <= {p}"));
        }
        for (column, id) in [
            ("pairing_id", query.pairing_id),
            ("model_worker_id", query.model_worker_id),
            ("director_id", query.director_id),
        ] {
            if let Some(id) = id {
                let p = q.text(id.to_string());
                filter.push_str(&format!(" AND {column} = {p}"));
            }
        }
        if !query.include_voided {
            filter.push_str(" AND voided = 0");
        }
        let lim = limit_sql(&mut q, query.page);
        let sql = format!(
            "SELECT id, visited_on, model_worker_id, pairing_id, director_id, region_code, \
             county_code, city_code, cash_fen_hi, cash_fen_lo, goods_fen_hi, goods_fen_lo, \
             goods_count, flowers_count, \
             participants, joint, medical_advice, late_entry, voided, corrections, position \
             FROM {visits} WHERE 1 = 1{filter} ORDER BY visited_on DESC, id{lim}"
        );
        use ColType::{Int as I, Text as T};
        let rows = q
            .fetch(
                &mut conn,
                &sql,
                &[
                    T, T, T, T, T, T, T, T, I, I, I, I, I, I, I, I, I, I, I, I, I,
                ],
            )
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                let (cash, goods) = (fen(&r[8], &r[9])?, fen(&r[10], &r[11])?);
                Ok(VisitItem {
                    visit_id: uuid(&r[0]).unwrap_or_default(),
                    visited_on: date(&r[1]).unwrap_or_default(),
                    model_worker_id: uuid(&r[2]).unwrap_or_default(),
                    pairing_id: uuid(&r[3]),
                    director_id: uuid(&r[4]),
                    region_code: text(&r[5]).unwrap_or_default(),
                    county_code: text(&r[6]).unwrap_or_default(),
                    city_code: text(&r[7]),
                    cash_fen: cash,
                    cash_yuan: yuan(cash),
                    goods_fen: goods,
                    goods_count: int(&r[12]),
                    flowers_count: int(&r[13]),
                    participants: int(&r[14]),
                    joint: int(&r[15]) != 0,
                    medical_advice: int(&r[16]) != 0,
                    late_entry: int(&r[17]) != 0,
                    voided: int(&r[18]) != 0,
                    corrections: int(&r[19]),
                    position: int(&r[20]),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, query.page))
    }
}
