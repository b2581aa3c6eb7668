//! The lists: a director's caseload and engagement (dashboard 3), the model workers and the
//! visits, each with its filters, answer rows and the query that reads them.

use super::*;

/// Dashboard 3's filters.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CaseloadQuery {
    /// The business date whose calendar year the figures are for.
    pub as_of: NaiveDate,
    /// Only directors with this role (as appointed, e.g. `standing_director`).
    pub role: Option<String>,
    /// The order (default: least engaged first).
    #[serde(default)]
    pub sort: CaseloadSort,
    /// Only these directors (a name search's matches, [`ReadModels::people_named`]).
    #[serde(default)]
    pub named: Option<Vec<Uuid>>,
    /// Which page.
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
    /// Most visits this year first.
    MostEngaged,
    /// By id: stable for exports.
    Id,
}

/// Dashboard 3: a director's caseload and engagement in the year of `as_of`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DirectorCaseload {
    /// The director's id.
    pub director_id: Uuid,
    /// The director's name, as the reader may see it.
    pub name: Shown,
    /// The role the director was appointed to (e.g. `standing_director`).
    pub role: String,
    /// The day the director's term ended; null while in term.
    pub term_ended_on: Option<NaiveDate>,
    /// The director's current pairing; null when unpaired.
    pub pairing_id: Option<Uuid>,
    /// The model worker of the current pairing; null when unpaired.
    pub model_worker_id: Option<Uuid>,
    /// Non-voided visits in `as_of`'s calendar year (the whole year, dates after `as_of` included)
    /// within this director's pairings; ad-hoc visits are not counted.
    pub visits_this_year: i64,
    /// Of those visits, the ones with a union official among the participants.
    pub joint_visits_this_year: i64,
    /// Contacts (calls, messages, meetings) recorded in `as_of`'s calendar year.
    pub contacts_this_year: i64,
    /// The date of the director's latest contact; null when none.
    pub last_contact_on: Option<NaiveDate>,
    /// Issues raised in `as_of`'s calendar year about the model worker this director was paired
    /// with at the time.
    pub issues_raised_this_year: i64,
    /// Issues closed in `as_of`'s calendar year about the model worker this director was paired
    /// with at the time.
    pub issues_closed_this_year: i64,
}

/// The model workers list: filters by region, hardship and pairing.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ModelWorkersQuery {
    /// Only model workers whose current region is in this city or county.
    #[serde(default)]
    pub region: RegionFilter,
    /// Only those in hardship (true) or not (false).
    pub in_hardship: Option<bool>,
    /// Only those with an active pairing (true) or without (false).
    pub paired: Option<bool>,
    /// Only this model worker (a director's list holds only the one they are paired with).
    #[serde(default)]
    pub model_worker_id: Option<Uuid>,
    /// Only these model workers (a name search's matches, [`ReadModels::people_named`]).
    #[serde(default)]
    pub named: Option<Vec<Uuid>>,
    /// Which page.
    #[serde(default)]
    pub page: Page,
}

/// One row of the model workers list.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ModelWorkerItem {
    /// The model worker's id.
    pub model_worker_id: Uuid,
    /// The model worker's name, as the reader may see it.
    pub name: Shown,
    /// The honour held (the domain's `Honour`, snake_case).
    pub honour: String,
    /// The current region's GB/T 2260 code (a retired code reads as its successor).
    pub county_code: String,
    /// The prefecture-level city of that region; null for a province-level region.
    pub city_code: Option<String>,
    /// Whether the model worker is in hardship now.
    pub in_hardship: bool,
    /// The tier of the latest hardship assessment (snake_case); null if never assessed.
    pub hardship_tier: Option<String>,
    /// The date of death, when recorded.
    pub died_on: Option<NaiveDate>,
    /// The current pairing; null when unpaired.
    pub pairing_id: Option<Uuid>,
    /// The director of the current pairing; null when unpaired.
    pub director_id: Option<Uuid>,
    /// The date of the latest non-voided visit, paired or ad hoc; null when never visited.
    pub last_visit_on: Option<NaiveDate>,
    /// Non-voided visits to this model worker, paired and ad hoc, all time.
    pub visits: i64,
    /// Open issues about this model worker (raised, acknowledged, escalated or reopened).
    pub open_issues: i64,
}

/// The visits list: filters by region, date range, pairing and model worker.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct VisitsQuery {
    /// Only visits that took place in this city or county.
    #[serde(default)]
    pub region: RegionFilter,
    /// Visited on or after this date.
    pub from: Option<NaiveDate>,
    /// Visited on or before this date.
    pub to: Option<NaiveDate>,
    /// Only this pairing's visits.
    pub pairing_id: Option<Uuid>,
    /// Only visits to this model worker.
    pub model_worker_id: Option<Uuid>,
    /// Only visits within this director's pairings (the pairing's director, not the lead).
    pub director_id: Option<Uuid>,
    /// Include voided visits (default: not).
    #[serde(default)]
    pub include_voided: bool,
    /// Which page.
    #[serde(default)]
    pub page: Page,
}

/// One visit with its gift totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VisitItem {
    /// The visit's id.
    pub visit_id: Uuid,
    /// The visit's date (as corrected).
    pub visited_on: NaiveDate,
    /// The model worker visited.
    pub model_worker_id: Uuid,
    /// The pairing the visit was made under; null for an ad-hoc visit.
    pub pairing_id: Option<Uuid>,
    /// The pairing's director; null for an ad-hoc visit.
    pub director_id: Option<Uuid>,
    /// Where the visit took place, as recorded (GB/T 2260).
    pub region_code: String,
    /// `region_code`'s current code (a retired code reads as its successor).
    pub county_code: String,
    /// The prefecture-level city of that region; null for a province-level region.
    pub city_code: Option<String>,
    /// Condolence money given, in fen (1 yuan = 100 fen).
    pub cash_fen: i64,
    /// `cash_fen` as yuan with two decimals (e.g. `1000.00`).
    pub cash_yuan: String,
    /// The known value of goods given, in fen (flower values are not summed).
    pub goods_fen: i64,
    /// Number of gifts of goods.
    pub goods_count: i64,
    /// Number of gifts of flowers.
    pub flowers_count: i64,
    /// Number of people who went.
    pub participants: i64,
    /// Whether a union official took part.
    pub joint: bool,
    /// Whether medical advice was given.
    pub medical_advice: bool,
    /// Whether the visit was recorded more than the policy's late-entry days after its date (from
    /// the latest correction; see `docs/domain.md` §8).
    pub late_entry: bool,
    /// Whether the visit was voided.
    pub voided: bool,
    /// Number of corrections applied.
    pub corrections: i64,
    /// The log position of the visit's recording event.
    pub position: i64,
}

query_row! {
    /// A row of dashboard 3.
    CaseloadRow {
        "directors" => {
            director_id ("id"): Text<Uuid>,
            name_sealed: Option<String>,
            name_event: Option<Text<Uuid>>,
            erased: Flag,
            role: Text<String>,
            term_ended_on: Option<Text<NaiveDate>>,
            pairing_id: Option<Text<Uuid>>,
            model_worker_id: Option<Text<Uuid>>,
            last_contact_on: Option<Text<NaiveDate>>,
        },
        "director_years" => {
            visits_this_year ("visits"): Int,
            joint_visits_this_year ("joint_visits"): Int,
            contacts_this_year ("contacts"): Int,
            issues_raised_this_year ("issues_raised"): Int,
            issues_closed_this_year ("issues_closed"): Int,
        },
    }
}

query_row! {
    /// A row of the model workers list.
    ModelWorkerItemRow {
        "model_workers" => {
            model_worker_id ("id"): Text<Uuid>,
            name_sealed: Option<String>,
            name_event: Option<Text<Uuid>>,
            erased: Flag,
            honour: Text<String>,
            county_code: Text<String>,
            city_code: Option<String>,
            in_hardship: Flag,
            hardship_tier: Option<String>,
            died_on: Option<Text<NaiveDate>>,
            pairing_id: Option<Text<Uuid>>,
            director_id: Option<Text<Uuid>>,
            last_visit_on: Option<Text<NaiveDate>>,
            visits: Int,
            open_issues: Int,
        }
    }
}

query_row! {
    /// A row of the visits list.
    VisitItemRow {
        "visits" => {
            visit_id ("id"): Text<Uuid>,
            visited_on: Text<NaiveDate>,
            model_worker_id: Text<Uuid>,
            pairing_id: Option<Text<Uuid>>,
            director_id: Option<Text<Uuid>>,
            region_code: Text<String>,
            county_code: Text<String>,
            city_code: Option<String>,
            cash_fen_hi: Int,
            cash_fen_lo: Int,
            goods_fen_hi: Int,
            goods_fen_lo: Int,
            goods_count: Int,
            flowers_count: Int,
            participants: Int,
            joint: Flag,
            medical_advice: Flag,
            late_entry: Flag,
            voided: Flag,
            corrections: Int,
            position: Int,
        }
    }
}

impl ReadModels {
    /// Dashboard 3.
    #[tracing::instrument(name = "projections.caseload", skip_all)]
    pub async fn director_caseload(
        &self,
        keys: &KeyRing,
        access: &Access,
        query: &CaseloadQuery,
    ) -> Result<Paged<DirectorCaseload>> {
        let (mut tx, g) = self.begin().await?;
        let (dirs, years) = (physical(g, "directors"), physical(g, "director_years"));
        let mut q = tx.args();
        let y = q.int(i64::from(query.as_of.year()));
        let mut filter = String::new();
        if let Some(role) = &query.role {
            let p = q.text(role.clone());
            filter.push_str(&format!(" AND d.role = {p}"));
        }
        if let Some(named) = &query.named {
            filter.push_str(&q.among("d.id", named));
        }
        let order = match query.sort {
            CaseloadSort::LeastEngaged => "COALESCE(y.visits, 0), d.id",
            CaseloadSort::MostEngaged => "COALESCE(y.visits, 0) DESC, d.id",
            CaseloadSort::Id => "d.id",
        };
        let lim = limit_sql(&mut q, query.page);
        let sql = format!(
            "SELECT d.id AS director_id, d.name_sealed, d.name_event, d.erased, d.role, \
             d.term_ended_on, d.pairing_id, d.model_worker_id, \
             COALESCE(y.visits, 0) AS visits_this_year, \
             COALESCE(y.joint_visits, 0) AS joint_visits_this_year, \
             COALESCE(y.contacts, 0) AS contacts_this_year, d.last_contact_on, \
             COALESCE(y.issues_raised, 0) AS issues_raised_this_year, \
             COALESCE(y.issues_closed, 0) AS issues_closed_this_year \
             FROM {dirs} d LEFT JOIN {years} y ON y.director_id = d.id AND y.year = {y} \
             WHERE 1 = 1{filter} ORDER BY {order}{lim}"
        );
        let rows: Vec<CaseloadRow> = tx.rows(&sql, &q).await?;
        drop(tx);
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(DirectorCaseload {
                director_id: r.director_id.0,
                name: show(
                    keys,
                    access,
                    "directors",
                    r.name_sealed,
                    opt(r.name_event),
                    r.erased.0,
                )
                .await?,
                role: r.role.0,
                term_ended_on: opt(r.term_ended_on),
                pairing_id: opt(r.pairing_id),
                model_worker_id: opt(r.model_worker_id),
                visits_this_year: r.visits_this_year.0,
                joint_visits_this_year: r.joint_visits_this_year.0,
                contacts_this_year: r.contacts_this_year.0,
                last_contact_on: opt(r.last_contact_on),
                issues_raised_this_year: r.issues_raised_this_year.0,
                issues_closed_this_year: r.issues_closed_this_year.0,
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
        let mw = physical(g, "model_workers");
        let mut q = tx.args();
        let mut filter = q.region(&query.region, "")?;
        if let Some(id) = query.model_worker_id {
            let p = q.text(id.to_string());
            filter.push_str(&format!(" AND id = {p}"));
        }
        if let Some(named) = &query.named {
            filter.push_str(&q.among("id", named));
        }
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
            "SELECT id AS model_worker_id, name_sealed, name_event, erased, honour, county_code, \
             city_code, in_hardship, hardship_tier, died_on, pairing_id, director_id, \
             last_visit_on, visits, open_issues FROM {mw} WHERE 1 = 1{filter} ORDER BY id{lim}"
        );
        let rows: Vec<ModelWorkerItemRow> = tx.rows(&sql, &q).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(ModelWorkerItem {
                model_worker_id: r.model_worker_id.0,
                name: show(
                    keys,
                    access,
                    "model_workers",
                    r.name_sealed,
                    opt(r.name_event),
                    r.erased.0,
                )
                .await?,
                honour: r.honour.0,
                county_code: r.county_code.0,
                city_code: r.city_code,
                in_hardship: r.in_hardship.0,
                hardship_tier: r.hardship_tier,
                died_on: opt(r.died_on),
                pairing_id: opt(r.pairing_id),
                director_id: opt(r.director_id),
                last_visit_on: opt(r.last_visit_on),
                visits: r.visits.0,
                open_issues: r.open_issues.0,
            });
        }
        Ok(page_of(items, query.page))
    }

    /// The visits list, newest first, from the visit table's date indexes.
    #[tracing::instrument(name = "projections.visits", skip_all)]
    pub async fn visits(&self, query: &VisitsQuery) -> Result<Paged<VisitItem>> {
        let (mut tx, g) = self.begin().await?;
        let visits = physical(g, "visits");
        let mut q = tx.args();
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
            "SELECT id AS visit_id, visited_on, model_worker_id, pairing_id, director_id, \
             region_code, county_code, city_code, cash_fen_hi, cash_fen_lo, goods_fen_hi, \
             goods_fen_lo, goods_count, flowers_count, \
             participants, joint, medical_advice, late_entry, voided, corrections, position \
             FROM {visits} WHERE 1 = 1{filter} ORDER BY visited_on DESC, id{lim}"
        );
        let rows: Vec<VisitItemRow> = tx.rows(&sql, &q).await?;
        let items = rows
            .into_iter()
            .map(|r| {
                let cash = fen(r.cash_fen_hi, r.cash_fen_lo)?;
                let goods = fen(r.goods_fen_hi, r.goods_fen_lo)?;
                Ok(VisitItem {
                    visit_id: r.visit_id.0,
                    visited_on: r.visited_on.0,
                    model_worker_id: r.model_worker_id.0,
                    pairing_id: opt(r.pairing_id),
                    director_id: opt(r.director_id),
                    region_code: r.region_code.0,
                    county_code: r.county_code.0,
                    city_code: r.city_code,
                    cash_fen: cash,
                    cash_yuan: yuan(cash),
                    goods_fen: goods,
                    goods_count: r.goods_count.0,
                    flowers_count: r.flowers_count.0,
                    participants: r.participants.0,
                    joint: r.joint.0,
                    medical_advice: r.medical_advice.0,
                    late_entry: r.late_entry.0,
                    voided: r.voided.0,
                    corrections: r.corrections.0,
                    position: r.position.0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, query.page))
    }
}
