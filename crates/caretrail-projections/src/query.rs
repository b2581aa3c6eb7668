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
mod lists;
mod report;
mod row;
mod search;

pub use file::*;
pub use gifts::*;
pub use issues::*;
pub use lists::*;
pub use report::*;
pub use search::*;

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
use crate::sql::{Backend, ColType, Conn, ReadModelDb, Tx, Val, physical};
use row::{Flag, Int, QueryRow, Text, decode_error, opt, query_row};

/// Handle on a set of read-model tables: the live ones (following the generation pointer) or
/// a fixed generation (an as-of replay's scratch database), and the log they were built from
/// (the timeline keeps positions and reads the events themselves from it).
#[derive(Clone)]
pub struct ReadModels {
    db: ReadModelDb,
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

/// A query's read transaction (see the module documentation).
struct ReadTx(Tx);

impl ReadTx {
    fn conn(&mut self) -> Conn<'_> {
        self.0.conn()
    }

    fn backend(&self) -> Backend {
        self.0.backend()
    }

    /// Arguments for a statement on this transaction's backend.
    fn args(&self) -> Args {
        Args::new(self.backend())
    }

    /// Runs `sql` with `args` bound and decodes every row as an `R`: a value that does not
    /// decode is [`ProjectionError::CorruptRow`], naming its table and column.
    async fn rows<R: QueryRow>(&mut self, sql: &str, args: &Args) -> Result<Vec<R>> {
        self.0
            .fetch_as::<R>(sql, &args.vals, &args.types)
            .await
            .map_err(decode_error::<R>)
    }

    /// [`ReadTx::rows`] for a query that answers exactly one row (an aggregate).
    async fn one<R: QueryRow>(&mut self, sql: &str, args: &Args) -> Result<R> {
        self.rows(sql, args)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ProjectionError::Database(sqlx::Error::RowNotFound))
    }
}

/// A personal value as a reader sees it: the text, or that it was erased or withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// The plaintext.
    Text(String),
    /// The subject's personal data was erased (their key is destroyed).
    Erased,
    /// The reader's role or pairing may not see it.
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

/// A name as `access` may see it, from the sealed value `table` keeps in `name_sealed` (JSON
/// that does not parse is a corrupt row of `table`).
async fn show(
    keys: &KeyRing,
    access: &Access,
    table: &'static str,
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
        .map_err(|_| crate::sql::corrupt(table, "name_sealed", "not a sealed value's JSON"))?;
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
    /// Only this prefecture-level city (GB/T 2260 code).
    pub city: Option<String>,
    /// Only this county (GB/T 2260 code).
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
    /// Rows per page (1..=500; out-of-range values are clamped).
    pub limit: u32,
    /// Rows to skip before the page.
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
    /// This page's rows.
    pub items: Vec<T>,
    /// The page size used (after clamping to 1..=500).
    pub limit: u32,
    /// The offset this page starts at.
    pub offset: u32,
    /// The offset of the next page, when there is one.
    pub next_offset: Option<u32>,
}

/// The arguments of a statement under construction, for one backend: each added value
/// answers the placeholder to write in the SQL text (`?n` on SQLite, `$n` on PostgreSQL).
struct Args {
    backend: Backend,
    vals: Vec<Val>,
    types: Vec<ColType>,
}

impl Args {
    fn new(backend: Backend) -> Args {
        Args {
            backend,
            vals: Vec::new(),
            types: Vec::new(),
        }
    }
    fn text(&mut self, s: impl Into<String>) -> String {
        self.vals.push(Val::Text(s.into()));
        self.types.push(ColType::Text);
        self.backend.param(self.vals.len())
    }
    fn int(&mut self, i: i64) -> String {
        self.vals.push(Val::Int(i));
        self.types.push(ColType::Int);
        self.backend.param(self.vals.len())
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
}

/// An amount of fen from its two stored parts (or their sums, see [`crate::sql::FEN_SPLIT`]):
/// an error when it does not fit `i64`.
fn fen(Int(hi): Int, Int(lo): Int) -> Result<i64> {
    let fen = crate::sql::join_fen(hi, lo);
    i64::try_from(fen).map_err(|_| ProjectionError::AmountNotRepresentable)
}

/// `CAST(COALESCE(SUM(..), 0) AS BIGINT)` of both parts of a money column, for [`fen`], as
/// `{alias}_hi` and `{alias}_lo`.
fn sum_fen(column: &str, alias: &str) -> String {
    format!(
        "CAST(COALESCE(SUM({column}_hi), 0) AS BIGINT) AS {alias}_hi, \
         CAST(COALESCE(SUM({column}_lo), 0) AS BIGINT) AS {alias}_lo"
    )
}

/// A value of a row read through a `LEFT JOIN`: `None` when there is no row for the id
/// (`found`, the joined row's id, is NULL: nothing to show), the value when the row is there,
/// and an error when the row is there but the value is NULL (a corrupt row is not an absent one).
fn joined<T>(
    table: &'static str,
    column: &'static str,
    found: &Option<Text<Uuid>>,
    value: Option<T>,
) -> Result<Option<T>> {
    match (found, value) {
        (None, _) => Ok(None),
        (Some(_), Some(v)) => Ok(Some(v)),
        (Some(_), None) => Err(crate::sql::corrupt(
            table,
            column,
            crate::sql::NULL_IN_REQUIRED,
        )),
    }
}

/// Whether a name's owner was erased, from a `LEFT JOIN` (see [`joined`]): a missing row
/// reads as not erased.
fn erased(table: &'static str, found: &Option<Text<Uuid>>, flag: Option<Flag>) -> Result<bool> {
    Ok(joined(table, "erased", found, flag)?.is_some_and(|Flag(f)| f))
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

fn limit_sql(q: &mut Args, page: Page) -> String {
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

fn bucket_sql(q: &mut Args, as_of: NaiveDate) -> String {
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
    /// The open state: `raised`, `acknowledged`, `escalated` or `reopened`.
    pub state: String,
    /// Days since raised as of `as_of`: `0-7`, `8-30`, `31-90` or `>90`.
    pub age_bucket: String,
    /// Number of issues.
    pub count: i64,
}

/// Dashboard 1: the overview.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Overview {
    /// The business date the figures are computed against.
    pub as_of: NaiveDate,
    /// Living model workers in hardship (by current region).
    pub model_workers_in_hardship: i64,
    /// Of those, the ones with an active pairing.
    pub paired: i64,
    /// Of those, the ones without an active pairing.
    pub unpaired: i64,
    /// Paired share of model workers in hardship, in percent (one decimal).
    pub coverage_percent: f64,
    /// Pairings not ended (the live state, whatever `as_of`), by the model worker's current region.
    pub active_pairings: i64,
    /// Non-voided visits dated in `as_of`'s calendar month (the whole month), by where they took
    /// place.
    pub visits_this_month: i64,
    /// Non-voided visits dated from January to the end of `as_of`'s month (whole months), by where
    /// they took place.
    pub visits_this_year: i64,
    /// Condolence money given in those visits, in fen (1 yuan = 100 fen).
    pub cash_fen_this_year: i64,
    /// `cash_fen_this_year` as yuan with two decimals (e.g. `1000.00`).
    pub cash_yuan_this_year: String,
    /// The known value of goods given in those visits, in fen (flower values are not summed).
    pub goods_fen_this_year: i64,
    /// Number of gifts of goods in those visits.
    pub goods_given_this_year: i64,
    /// Number of gifts of flowers in those visits.
    pub flowers_given_this_year: i64,
    /// Open issues counted by state and age bucket.
    pub open_issues: Vec<IssueCount>,
}

/// The status of a pairing's visits on a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitStatus {
    /// No visit within the pairing yet.
    NeverVisited,
    /// Visited, and `as_of` is before the due-soon window.
    OnTrack,
    /// Visited, and `as_of` is within the due-soon window before the due date.
    DueSoon,
    /// Visited, and `as_of` is after the due date.
    Overdue,
}

/// Dashboard 2's filters.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct VisitStatusQuery {
    /// The business date statuses are computed against.
    pub as_of: NaiveDate,
    /// Only pairings whose model worker's current region is in this city or county.
    #[serde(default)]
    pub region: RegionFilter,
    /// Only pairings with this status.
    pub status: Option<VisitStatus>,
    /// Include ended pairings (default: active ones only).
    #[serde(default)]
    pub include_ended: bool,
    /// Only this director's pairings. Filtered in the query, so pages stay full and
    /// `next_offset` counts only the matching pairings.
    #[serde(default)]
    pub director_id: Option<Uuid>,
    /// Only pairings whose model worker or director is among these (a name search's
    /// matches, [`ReadModels::people_named`]).
    #[serde(default)]
    pub named: Option<Named>,
    /// Which page.
    #[serde(default)]
    pub page: Page,
}

/// The people a name search matched, for a list of pairings: a pairing is listed when its
/// model worker or its director is named.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Named {
    /// The model workers whose name matched.
    pub model_workers: Vec<Uuid>,
    /// The directors whose name matched.
    pub directors: Vec<Uuid>,
}

/// Dashboard 2: one pairing's visit status. The default order is most overdue first.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct PairingStatus {
    /// The pairing's id.
    pub pairing_id: Uuid,
    /// The paired director.
    pub director_id: Uuid,
    /// The director's name, as the reader may see it.
    pub director_name: Shown,
    /// The paired model worker.
    pub model_worker_id: Uuid,
    /// The model worker's name, as the reader may see it.
    pub model_worker_name: Shown,
    /// The prefecture-level city of the model worker's region; null for a province-level region.
    pub city_code: Option<String>,
    /// The model worker's region (GB/T 2260, current code; follows relocations while the pairing is
    /// current).
    pub county_code: String,
    /// The first day of the pairing.
    pub effective_from: NaiveDate,
    /// The last day of the pairing (inclusive); null while it is active.
    pub ended_on: Option<NaiveDate>,
    /// The date of the latest non-voided visit within the pairing; null when never visited.
    pub last_visit_on: Option<NaiveDate>,
    /// The date after which the pairing is overdue: `last_visit_on` (or `effective_from` if
    /// never visited) plus the pairing's maximum days between visits.
    pub next_due_on: NaiveDate,
    /// The visit status on `as_of`.
    pub status: VisitStatus,
    /// Days past the due date (negative: days left).
    pub days_overdue: i64,
    /// Non-voided visits within the pairing from 1 January of `as_of`'s year to `as_of`.
    pub visits_this_year: i64,
    /// Open issues about the model worker (raised, acknowledged, escalated or reopened), not only
    /// those raised within the pairing.
    pub open_issues: i64,
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

query_row! {
    /// The overview's counts of model workers in hardship.
    CoverageCounts { "model_workers" => { in_hardship: Int, paired ("pairing_id"): Int } }
}

query_row! {
    /// The overview's count of active pairings.
    ActivePairings { "pairings" => { active ("id"): Int } }
}

query_row! {
    /// The overview's sums over the year so far.
    YearSums {
        "gifts_by_month" => {
            visits_this_year ("visits"): Int,
            visits_this_month ("visits"): Int,
            cash_hi ("cash_fen_hi"): Int,
            cash_lo ("cash_fen_lo"): Int,
            goods_hi ("goods_fen_hi"): Int,
            goods_lo ("goods_fen_lo"): Int,
            goods_count: Int,
            flowers_count: Int,
        }
    }
}

query_row! {
    /// A row of dashboard 2.
    PairingStatusRow {
        "pairings" => {
            pairing_id ("id"): Text<Uuid>,
            director_id: Text<Uuid>,
            model_worker_id: Text<Uuid>,
            city_code: Option<String>,
            county_code: Text<String>,
            effective_from: Text<NaiveDate>,
            ended_on: Option<Text<NaiveDate>>,
            last_visit_on: Option<Text<NaiveDate>>,
            due_on: Text<NaiveDate>,
            due_soon_from: Text<NaiveDate>,
        },
        "directors" => {
            director_name_sealed ("name_sealed"): Option<String>,
            director_name_event ("name_event"): Option<Text<Uuid>>,
            director_erased ("erased"): Option<Flag>,
            /// The director row's id: NULL when the pairing's director has no row.
            director_row ("id"): Option<Text<Uuid>>,
        },
        "model_workers" => {
            model_worker_name_sealed ("name_sealed"): Option<String>,
            model_worker_name_event ("name_event"): Option<Text<Uuid>>,
            model_worker_erased ("erased"): Option<Flag>,
            open_issues: Option<Int>,
            /// The model worker row's id: NULL when the pairing's model worker has no row.
            model_worker_row ("id"): Option<Text<Uuid>>,
        },
        "visits" => { visits_this_year ("id"): Int },
    }
}

impl ReadModels {
    /// The live read models beside `store`'s log.
    pub fn live(store: Arc<dyn EventStore>) -> ReadModels {
        ReadModels {
            db: ReadModelDb::of_store(store.as_ref()),
            fixed: None,
            log: store,
        }
    }

    /// One generation in `db` (a replay's scratch database), built from `log`.
    pub(crate) fn fixed(db: ReadModelDb, generation: i64, log: Arc<dyn EventStore>) -> ReadModels {
        ReadModels {
            db,
            fixed: Some(generation),
            log,
        }
    }

    /// The database the read-model tables are in.
    pub fn database(&self) -> &Database {
        self.db.database()
    }

    async fn begin(&self) -> Result<(ReadTx, i64)> {
        let mut tx = ReadTx(self.db.begin().await?);
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
        let (mw, pairs, months, issues) = (
            physical(g, "model_workers"),
            physical(g, "pairings"),
            physical(g, "gifts_by_month"),
            physical(g, "issues"),
        );
        let mut q = tx.args();
        let r = q.region(region, "")?;
        let coverage: CoverageCounts = tx
            .one(
                &format!(
                    "SELECT COUNT(*) AS in_hardship, CAST(COALESCE(SUM(CASE WHEN pairing_id \
                     IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS paired FROM {mw} \
                     WHERE in_hardship = 1 AND died_on IS NULL{r}"
                ),
                &q,
            )
            .await?;
        let (Int(hardship), Int(paired)) = (coverage.in_hardship, coverage.paired);
        let mut q = tx.args();
        let r = q.region(region, "")?;
        let Int(active) = tx
            .one::<ActivePairings>(
                &format!("SELECT COUNT(*) AS active FROM {pairs} WHERE active = 1{r}"),
                &q,
            )
            .await?
            .active;
        let this_month = format!("{:04}-{:02}", as_of.year(), as_of.month());
        let mut q = tx.args();
        let from = q.text(format!("{:04}-01", as_of.year()));
        let to = q.text(this_month.clone());
        let m = q.text(this_month);
        let r = q.region(region, "")?;
        let (cash, goods) = (sum_fen("cash_fen", "cash"), sum_fen("goods_fen", "goods"));
        let sums: YearSums = tx
            .one(
                &format!(
                    "SELECT CAST(COALESCE(SUM(visits), 0) AS BIGINT) AS visits_this_year, \
                     CAST(COALESCE(SUM(CASE WHEN month = {m} THEN visits ELSE 0 END), 0) \
                     AS BIGINT) AS visits_this_month, {cash}, {goods}, \
                     CAST(COALESCE(SUM(goods_count), 0) AS BIGINT) AS goods_count, \
                     CAST(COALESCE(SUM(flowers_count), 0) AS BIGINT) AS flowers_count \
                     FROM {months} WHERE month >= {from} AND month <= {to}{r}"
                ),
                &q,
            )
            .await?;
        let cash = fen(sums.cash_hi, sums.cash_lo)?;
        let goods = fen(sums.goods_hi, sums.goods_lo)?;
        let open_issues = open_issue_counts(&mut tx, &issues, as_of, region).await?;
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
            visits_this_month: sums.visits_this_month.0,
            visits_this_year: sums.visits_this_year.0,
            cash_fen_this_year: cash,
            cash_yuan_this_year: yuan(cash),
            goods_fen_this_year: goods,
            goods_given_this_year: sums.goods_count.0,
            flowers_given_this_year: sums.flowers_count.0,
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
        let (pairs, mw, dirs, visits) = (
            physical(g, "pairings"),
            physical(g, "model_workers"),
            physical(g, "directors"),
            physical(g, "visits"),
        );
        let as_of = query.as_of;
        let mut q = tx.args();
        let a = q.text(as_of.to_string());
        let year_start = q.text(format!("{:04}-01-01", as_of.year()));
        let mut filter = String::new();
        if !query.include_ended {
            filter.push_str(" AND p.active = 1");
        }
        filter.push_str(&q.region(&query.region, "p.")?);
        if let Some(d) = query.director_id {
            let p = q.text(d.to_string());
            filter.push_str(&format!(" AND p.director_id = {p}"));
        }
        if let Some(named) = &query.named {
            let m = q.in_ids("p.model_worker_id", &named.model_workers);
            let d = q.in_ids("p.director_id", &named.directors);
            filter.push_str(&format!(" AND ({m} OR {d})"));
        }
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
            "SELECT p.id AS pairing_id, p.director_id, d.name_sealed AS director_name_sealed, \
             d.name_event AS director_name_event, d.erased AS director_erased, \
             d.id AS director_row, m.id AS model_worker_row, \
             p.model_worker_id, m.name_sealed AS model_worker_name_sealed, \
             m.name_event AS model_worker_name_event, m.erased AS model_worker_erased, \
             p.city_code, p.county_code, p.effective_from, p.ended_on, p.last_visit_on, \
             p.due_on, p.due_soon_from, \
             (SELECT COUNT(*) FROM {visits} v WHERE v.pairing_id = p.id AND v.voided = 0 \
              AND v.visited_on >= {year_start} AND v.visited_on <= {a}) AS visits_this_year, \
             m.open_issues \
             FROM {pairs} p LEFT JOIN {dirs} d ON d.id = p.director_id \
             LEFT JOIN {mw} m ON m.id = p.model_worker_id \
             WHERE 1 = 1{filter} ORDER BY p.due_on, p.id{lim}"
        );
        let rows: Vec<PairingStatusRow> = tx.rows(&sql, &q).await?;
        drop(tx);
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let (Text(due), last) = (r.due_on, opt(r.last_visit_on));
            items.push(PairingStatus {
                pairing_id: r.pairing_id.0,
                director_id: r.director_id.0,
                director_name: show(
                    keys,
                    access,
                    "directors",
                    r.director_name_sealed,
                    opt(r.director_name_event),
                    erased("directors", &r.director_row, r.director_erased)?,
                )
                .await?,
                model_worker_id: r.model_worker_id.0,
                model_worker_name: show(
                    keys,
                    access,
                    "model_workers",
                    r.model_worker_name_sealed,
                    opt(r.model_worker_name_event),
                    erased("model_workers", &r.model_worker_row, r.model_worker_erased)?,
                )
                .await?,
                city_code: r.city_code,
                county_code: r.county_code.0,
                effective_from: r.effective_from.0,
                ended_on: opt(r.ended_on),
                last_visit_on: last,
                next_due_on: due,
                status: status_of(last, due, r.due_soon_from.0, as_of),
                days_overdue: (as_of - due).num_days(),
                visits_this_year: r.visits_this_year.0,
                open_issues: joined(
                    "model_workers",
                    "open_issues",
                    &r.model_worker_row,
                    r.open_issues,
                )?
                .map_or(0, |Int(n)| n),
            });
        }
        Ok(page_of(items, query.page))
    }
}
