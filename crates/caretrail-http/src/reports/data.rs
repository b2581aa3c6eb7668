//! A report's figures, read through the dashboards' queries and nothing else: gifts per city
//! and county are `ReadModels::gifts` (the gifts dashboard), open issues per body and age are
//! `ReadModels::issue_summary` (the issues summary), overdue pairings are
//! `ReadModels::visit_status` with `status=overdue` (the overdue list), and people reached is
//! `ReadModels::period_reach`. Totals are checked sums of the per-city rows (an overflow is an
//! error, never a wrapped or saturated number).
//!
//! The live read models move while a report is read (each query is its own read transaction),
//! so the report notes the projector's checkpoint before and after: when they differ, it
//! reads again, and after [`LIVE_ATTEMPTS`] moving reads it computes the report from a replay
//! of the log up to the last checkpoint seen, so every report is the state at one log
//! position, and says which.

use std::collections::BTreeMap;

use caretrail_app::view::Access;
use caretrail_domain::RegionCode;
use caretrail_projections::ReadModels;
use caretrail_projections::query::{
    AGE_BUCKETS, GiftGrouping, GiftTotals, GiftsQuery, Page, PairingStatus, Reach, VisitStatus,
    VisitStatusQuery, yuan,
};
use caretrail_projections::replay::{AsOf, replay};
use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::{Period, PeriodKind, ReportError, report_date};
use crate::AppState;
use crate::auth::Principal;
use crate::dashboard::{Params, models_at, projection_error, read_side};
use crate::error::ApiResult;

/// Reads of the live read models that may see them move before the report is taken from a
/// replay instead.
pub const LIVE_ATTEMPTS: usize = 3;

/// Rows read per page of the dashboards' paged queries (their maximum).
const PAGE: u32 = 500;

/// A report: its header and figures.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Report {
    /// Monthly or yearly.
    pub kind: PeriodKind,
    /// `2021-10` or `2021`.
    pub period: String,
    /// The period's first day.
    pub from: NaiveDate,
    /// The period's last day.
    pub to: NaiveDate,
    /// The association's name (the registered body of kind `association` serving the
    /// province); null when none is registered.
    pub association: Option<String>,
    /// The business date issue ages and overdue pairings are computed against: the period's
    /// last day, or the as-of date within a current period.
    pub as_of: NaiveDate,
    /// The log position the figures reflect (every event up to it, none after).
    pub log_position: u64,
    /// Computed from a replay of the log (`as_of_position`, `as_of_recorded_at`, or a live
    /// state that kept moving) rather than the live read models.
    pub replayed: bool,
    /// When the report was computed.
    pub generated_at: DateTime<Utc>,
    /// The period's totals.
    pub totals: Totals,
    /// Per city (prefecture) where visits took place, by code.
    pub by_city: Vec<RegionLine>,
    /// Per county where visits took place, by code.
    pub by_county: Vec<RegionLine>,
    /// Open issues as of `as_of`.
    pub issues: IssueLines,
    /// Active pairings overdue for a visit as of `as_of`, most overdue first.
    pub overdue: Vec<OverdueLine>,
}

/// A period's totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Totals {
    /// Non-voided visits dated in the period.
    pub visits: i64,
    /// Distinct model workers those visits went to.
    pub people_reached: i64,
    /// Condolence money given, in fen.
    pub cash_fen: i64,
    /// `cash_fen` as yuan with two decimals.
    pub cash_yuan: String,
    /// The known value of goods given, in fen.
    pub goods_fen: i64,
    /// `goods_fen` as yuan with two decimals.
    pub goods_yuan: String,
    /// Gifts of goods.
    pub goods_count: i64,
    /// Gifts of flowers.
    pub flowers_count: i64,
    /// Open issues as of `as_of`.
    pub open_issues: i64,
    /// Active pairings overdue as of `as_of`.
    pub overdue_pairings: i64,
}

/// Visits and gifts in one city or county.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RegionLine {
    /// The GB/T 2260 code (current code); empty for visits in a region without a city.
    pub code: String,
    /// Its name from the region table (empty when the code is not in it).
    pub name: String,
    /// For a county, its city's code.
    pub city_code: Option<String>,
    /// For a county, its city's name.
    pub city_name: Option<String>,
    /// Non-voided visits.
    pub visits: i64,
    /// Distinct model workers visited here.
    pub people_reached: i64,
    /// Cash given, in fen.
    pub cash_fen: i64,
    /// `cash_fen` as yuan.
    pub cash_yuan: String,
    /// Goods given, in fen.
    pub goods_fen: i64,
    /// `goods_fen` as yuan.
    pub goods_yuan: String,
    /// Gifts of goods.
    pub goods_count: i64,
    /// Gifts of flowers.
    pub flowers_count: i64,
}

/// Open issues by body and by age.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct IssueLines {
    /// Open issues per body they are escalated to, most first.
    pub by_body: Vec<BodyLine>,
    /// Open issues not escalated to any body.
    pub not_escalated: i64,
    /// Open issues per age bucket (`0-7`, `8-30`, `31-90`, `>90` days since raised).
    pub by_age: Vec<AgeLine>,
}

/// Open issues escalated to one body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BodyLine {
    /// The body's id.
    pub body_id: Uuid,
    /// The body's name (an organisation's, not personal); null if unknown.
    pub name: Option<String>,
    /// Open issues escalated to it.
    pub open: i64,
    /// Of those, past their response date.
    pub breached: i64,
}

/// Open issues in one age bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AgeLine {
    /// The bucket: days since raised.
    pub bucket: String,
    /// Open issues in it.
    pub open: i64,
}

/// One overdue pairing, without names (a report leaves the system).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OverdueLine {
    /// The pairing's id.
    pub pairing_id: Uuid,
    /// The model worker's city.
    pub city_code: Option<String>,
    /// Its name.
    pub city_name: Option<String>,
    /// The model worker's county.
    pub county_code: String,
    /// Its name.
    pub county_name: String,
    /// The latest visit.
    pub last_visit_on: Option<NaiveDate>,
    /// The day after which it is overdue.
    pub due_on: NaiveDate,
    /// Days past that day as of the report's as-of date.
    pub days_overdue: i64,
}

/// Computes the report for `period` as `principal` may read it, at one log position.
pub async fn compute(
    state: &AppState,
    principal: &Principal,
    params: &Params,
    period: Period,
    today: NaiveDate,
) -> ApiResult<Report> {
    let (models, replayed_at) = models_at(state, principal, params).await?;
    let generated_at = state.app.clock().now();
    if let Some(position) = replayed_at {
        let figures = figures(state, &models, period, today).await?;
        return Ok(figures.into_report(period, position, true, generated_at));
    }
    let projector = &read_side(state)?.projector;
    let mut last = None;
    for _ in 0..LIVE_ATTEMPTS {
        let before = projector.live_version().await.map_err(projection_error)?;
        let figures = figures(state, &models, period, today).await?;
        let after = projector.live_version().await.map_err(projection_error)?;
        if before == after {
            return Ok(figures.into_report(period, after.1, false, generated_at));
        }
        last = Some(after.1);
    }
    // The live tables kept moving: the state at the last checkpoint seen, replayed.
    let position = last.unwrap_or_default();
    tracing::info!(
        position,
        "live read models kept moving; the report is replayed"
    );
    let replayed = replay(state.app.store().clone(), AsOf::Position(position))
        .await
        .map_err(projection_error)?;
    let figures = figures(state, &replayed.read_models, period, today).await?;
    Ok(figures.into_report(period, replayed.position, true, generated_at))
}

/// Everything but the header.
struct Figures {
    association: Option<String>,
    as_of: NaiveDate,
    totals: Totals,
    by_city: Vec<RegionLine>,
    by_county: Vec<RegionLine>,
    issues: IssueLines,
    overdue: Vec<OverdueLine>,
}

impl Figures {
    fn into_report(
        self,
        period: Period,
        log_position: u64,
        replayed: bool,
        generated_at: DateTime<Utc>,
    ) -> Report {
        Report {
            kind: period.kind,
            period: period.label(),
            from: period.first_day(),
            to: period.last_day(),
            association: self.association,
            as_of: self.as_of,
            log_position,
            replayed,
            generated_at,
            totals: self.totals,
            by_city: self.by_city,
            by_county: self.by_county,
            issues: self.issues,
            overdue: self.overdue,
        }
    }
}

fn checked(a: i64, b: i64) -> Result<i64, ReportError> {
    a.checked_add(b).ok_or(ReportError::Overflow)
}

async fn figures(
    state: &AppState,
    m: &ReadModels,
    period: Period,
    today: NaiveDate,
) -> ApiResult<Figures> {
    let as_of = report_date(&period, today);
    let (from, to) = (period.first_day(), period.last_day());
    let association = m.association_name().await.map_err(projection_error)?;
    let reach = m.period_reach(from, to).await.map_err(projection_error)?;
    let by_city = region_lines(
        &all_gifts(m, from, to, GiftGrouping::City).await?,
        &reach.by_city,
    );
    let by_county = region_lines(
        &all_gifts(m, from, to, GiftGrouping::County).await?,
        &reach.by_county,
    );
    let mut totals = Totals {
        visits: 0,
        people_reached: reach.total.people,
        cash_fen: 0,
        cash_yuan: String::new(),
        goods_fen: 0,
        goods_yuan: String::new(),
        goods_count: 0,
        flowers_count: 0,
        open_issues: 0,
        overdue_pairings: 0,
    };
    for line in &by_city {
        totals.visits = checked(totals.visits, line.visits)?;
        totals.cash_fen = checked(totals.cash_fen, line.cash_fen)?;
        totals.goods_fen = checked(totals.goods_fen, line.goods_fen)?;
        totals.goods_count = checked(totals.goods_count, line.goods_count)?;
        totals.flowers_count = checked(totals.flowers_count, line.flowers_count)?;
    }
    totals.cash_yuan = yuan(totals.cash_fen);
    totals.goods_yuan = yuan(totals.goods_fen);

    let summary = m
        .issue_summary(as_of, &Default::default())
        .await
        .map_err(projection_error)?;
    let mut by_age: BTreeMap<&str, i64> = AGE_BUCKETS.iter().map(|b| (*b, 0)).collect();
    for c in &summary.open_by_state_and_age {
        totals.open_issues = checked(totals.open_issues, c.count)?;
        if let Some(n) = by_age.get_mut(c.age_bucket.as_str()) {
            *n = checked(*n, c.count)?;
        }
    }
    let mut escalated = 0i64;
    let by_body = summary
        .by_body
        .iter()
        .map(|b| {
            escalated = checked(escalated, b.open)?;
            Ok(BodyLine {
                body_id: b.body_id,
                name: b.name.clone(),
                open: b.open,
                breached: b.breached,
            })
        })
        .collect::<Result<Vec<_>, ReportError>>()?;
    let issues = IssueLines {
        by_body,
        not_escalated: totals
            .open_issues
            .checked_sub(escalated)
            .ok_or(ReportError::Overflow)?,
        by_age: AGE_BUCKETS
            .iter()
            .map(|b| AgeLine {
                bucket: (*b).to_owned(),
                open: by_age.get(b).copied().unwrap_or(0),
            })
            .collect(),
    };

    let overdue: Vec<OverdueLine> = all_overdue(state, m, as_of)
        .await?
        .into_iter()
        .map(|p| {
            let county = RegionCode::parse(&p.county_code).ok();
            OverdueLine {
                pairing_id: p.pairing_id,
                city_name: p
                    .city_code
                    .as_deref()
                    .and_then(|c| RegionCode::parse(c).ok())
                    .map(|c| c.name().to_owned()),
                city_code: p.city_code,
                county_name: county.map(|c| c.name().to_owned()).unwrap_or_default(),
                county_code: p.county_code,
                last_visit_on: p.last_visit_on,
                due_on: p.next_due_on,
                days_overdue: p.days_overdue,
            }
        })
        .collect();
    totals.overdue_pairings = i64::try_from(overdue.len()).map_err(|_| ReportError::Overflow)?;
    Ok(Figures {
        association,
        as_of,
        totals,
        by_city,
        by_county,
        issues,
        overdue,
    })
}

/// Every page of the gifts dashboard for `from..=to` grouped by `group_by`.
async fn all_gifts(
    m: &ReadModels,
    from: NaiveDate,
    to: NaiveDate,
    group_by: GiftGrouping,
) -> ApiResult<Vec<GiftTotals>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = m
            .gifts(&GiftsQuery {
                from,
                to,
                region: Default::default(),
                group_by,
                page: Page {
                    limit: PAGE,
                    offset,
                },
            })
            .await
            .map_err(projection_error)?;
        out.extend(page.items);
        match page.next_offset {
            Some(next) => offset = next,
            None => return Ok(out),
        }
    }
}

/// Every active pairing overdue on `as_of` (the overdue list, every page), without names.
async fn all_overdue(
    state: &AppState,
    m: &ReadModels,
    as_of: NaiveDate,
) -> ApiResult<Vec<PairingStatus>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = m
            .visit_status(
                state.app.keys(),
                &Access::Redacted,
                &VisitStatusQuery {
                    as_of,
                    region: Default::default(),
                    status: Some(VisitStatus::Overdue),
                    include_ended: false,
                    director_id: None,
                    named: None,
                    page: Page {
                        limit: PAGE,
                        offset,
                    },
                },
            )
            .await
            .map_err(projection_error)?;
        out.extend(page.items);
        match page.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    // Most overdue first, as the overdue list is read (the query orders by due date).
    out.sort_by(|a, b| {
        b.days_overdue
            .cmp(&a.days_overdue)
            .then(a.pairing_id.cmp(&b.pairing_id))
    });
    Ok(out)
}

/// The gifts per region joined with the people reached there, in code order. A region with
/// visits has a gifts row and a reach row (both count non-voided visits by where they took
/// place); one without either is left out.
fn region_lines(gifts: &[GiftTotals], reach: &[Reach]) -> Vec<RegionLine> {
    let people: BTreeMap<&str, i64> = reach.iter().map(|r| (r.code.as_str(), r.people)).collect();
    let mut lines: Vec<RegionLine> = gifts
        .iter()
        .map(|g| {
            let code = RegionCode::parse(&g.key).ok();
            let city = code.and_then(|c| c.city()).filter(|c| Some(*c) != code);
            RegionLine {
                code: g.key.clone(),
                name: g.label.clone().unwrap_or_default(),
                city_code: city.map(|c| c.as_str()),
                city_name: city.map(|c| c.name().to_owned()),
                visits: g.visits,
                people_reached: people.get(g.key.as_str()).copied().unwrap_or(0),
                cash_fen: g.cash_fen,
                cash_yuan: g.cash_yuan.clone(),
                goods_fen: g.goods_fen,
                goods_yuan: yuan(g.goods_fen),
                goods_count: g.goods_count,
                flowers_count: g.flowers_count,
            }
        })
        .collect();
    lines.sort_by(|a, b| a.code.cmp(&b.code));
    lines
}
