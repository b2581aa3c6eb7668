//! The read model's tables, each declared once (`table!`) for both backends and the direct
//! connection, and the statements that create, index and drop a generation of them.

use super::*;

table! {
    /// One model worker's file.
    /// The second index covers the overview's and the coverage dashboard's counts (hardship,
    /// region, paired, last visit), so they read a narrow index instead of the wide rows.
    ModelWorkerRow = "model_workers", key [id],
    indexes [[city_code, county_code], [in_hardship, city_code, county_code, died_on, pairing_id, last_visit_on]],
    additive = false, money [], {
        /// The model worker's id.
        id: Uuid,
        /// The honour they hold, as its snake_case name (`national_model_worker`, ...).
        honour: String,
        /// The region code as registered or last relocated to (GB/T 2260; may be a retired code).
        region_code: String,
        /// The recorded region's current code (retired codes map to their successor).
        county_code: String,
        /// The city (prefecture) of the region, if the code has one.
        city_code: Option<String>,
        /// The name as the JSON of its sealed value (never plaintext); `None` once erased or when
        /// none was recorded.
        name_sealed: Option<String>,
        /// The event that sealed the name: its id is the AEAD associated data the name opens with.
        name_event: Option<Uuid>,
        /// The registration date.
        registered_on: NaiveDate,
        /// In hardship now (assessed and not exited).
        in_hardship: bool,
        /// The last assessed hardship tier (`deep`, ...), kept after an exit.
        hardship_tier: Option<String>,
        /// The date of the last hardship assessment.
        hardship_since: Option<NaiveDate>,
        /// The date of death, if recorded.
        died_on: Option<NaiveDate>,
        /// The model worker's personal data was erased (the name reads as erased).
        erased: bool,
        /// The current pairing, if paired.
        pairing_id: Option<Uuid>,
        /// The director of the current pairing, if paired.
        director_id: Option<Uuid>,
        /// The date of the latest visit that is not voided.
        last_visit_on: Option<NaiveDate>,
        /// Visits recorded, voided ones not counted.
        visits: i64,
        /// Issues raised for the model worker that are open (raised, acknowledged, escalated or
        /// reopened).
        open_issues: i64,
    }
}

table! {
    /// A director (association officer).
    DirectorRow = "directors", key [id], indexes [[role]], additive = false, money [], {
        /// The director's id.
        id: Uuid,
        /// The director's role in the association, as its snake_case name (`president`, ...).
        role: String,
        /// The name as the JSON of its sealed value (never plaintext); `None` once erased or when
        /// none was recorded.
        name_sealed: Option<String>,
        /// The event that sealed the name: its id is the AEAD associated data the name opens with.
        name_event: Option<Uuid>,
        /// The first day of the director's term.
        term_from: NaiveDate,
        /// The day the term ended, if it has.
        term_ended_on: Option<NaiveDate>,
        /// The director's current pairing, if paired.
        pairing_id: Option<Uuid>,
        /// The model worker of the current pairing, if paired.
        model_worker_id: Option<Uuid>,
        /// The date of the director's latest recorded contact.
        last_contact_on: Option<NaiveDate>,
        /// The director's personal data was erased (the name reads as erased).
        erased: bool,
    }
}

table! {
    /// An organisation issues are escalated to.
    BodyRow = "bodies", key [id], indexes [], additive = false, money [], {
        /// The body's id.
        id: Uuid,
        /// The kind of body, as its snake_case name (`association`, `union_city`, ...).
        kind: String,
        /// The body's name, sanitised (see `caretrail_domain::text`); an organisation's name is not
        /// personal.
        name: String,
        /// The region the body serves (GB/T 2260), if any.
        region_code: Option<String>,
    }
}

table! {
    /// A pairing; `due_on` is the date after which it is overdue (a date, not a status).
    PairingRow = "pairings", key [id],
    indexes [[active, due_on, city_code, county_code], [city_code, county_code, due_on], [director_id], [model_worker_id]],
    additive = false, money [], {
        /// The pairing's id.
        id: Uuid,
        /// The director.
        director_id: Uuid,
        /// The model worker.
        model_worker_id: Uuid,
        /// The model worker's city (prefecture) code, if the region has one; follows their moves
        /// while this is their current pairing.
        city_code: Option<String>,
        /// The model worker's county code (current code); follows their moves while this is their
        /// current pairing.
        county_code: String,
        /// The first day of the pairing.
        effective_from: NaiveDate,
        /// The day the pairing ended, if it has.
        ended_on: Option<NaiveDate>,
        /// Why it ended, as the reason's snake_case name (`reassigned`, ...).
        end_reason: Option<String>,
        /// The pairing's visit policy: most days allowed between two visits.
        max_days: i64,
        /// The pairing's visit policy: days before `due_on` from which a visit is due soon.
        due_soon_days: i64,
        /// The date of the pairing's latest visit that is not voided.
        last_visit_on: Option<NaiveDate>,
        /// `max_days` after the latest visit (or after `effective_from` before the first one).
        due_on: NaiveDate,
        /// `due_soon_days` before `due_on`.
        due_soon_from: NaiveDate,
        /// The pairing has not ended.
        active: bool,
    }
}

table! {
    /// A visit with its gift totals (corrections applied, voids flagged).
    VisitRow = "visits", key [id],
    indexes [[pairing_id, visited_on], [model_worker_id, visited_on], [visited_on]],
    additive = false, money [cash_fen, goods_fen], {
        /// The visit's id.
        id: Uuid,
        /// The pairing the visit was made under; `None` for an ad hoc visit.
        pairing_id: Option<Uuid>,
        /// The model worker visited.
        model_worker_id: Uuid,
        /// The pairing's director, copied from the event; `None` for an ad hoc visit.
        director_id: Option<Uuid>,
        /// The date of the visit, as last corrected.
        visited_on: NaiveDate,
        /// The region code of the visit as recorded (GB/T 2260; may be a retired code).
        region_code: String,
        /// The region's current county code (a retired code maps to its successor).
        county_code: String,
        /// The region's city (prefecture) code, if it has one.
        city_code: Option<String>,
        /// Cash given, in fen: `cash_fen_hi` × 10¹² + `cash_fen_lo` (see [`sql::FEN_SPLIT`]).
        cash_fen_hi: i64,
        /// The low part of the cash amount (see `cash_fen_hi`).
        cash_fen_lo: i64,
        /// The value of goods and flowers given, in fen, split the same way.
        goods_fen_hi: i64,
        /// The low part of the goods amount (see `goods_fen_hi`).
        goods_fen_lo: i64,
        /// Gifts of goods.
        goods_count: i64,
        /// Gifts of flowers.
        flowers_count: i64,
        /// People on the visit, the lead included.
        participants: i64,
        /// A union official took part (a joint visit).
        joint: bool,
        /// Medical advice was given.
        medical_advice: bool,
        /// Recorded more than the policy's late-entry threshold after the visit date (as the
        /// event that recorded the visit, or the last correction of its date, says).
        late_entry: bool,
        /// The visit was voided: it counts nowhere any more.
        voided: bool,
        /// Corrections applied.
        corrections: i64,
        /// The log position of the event that recorded the visit.
        position: i64,
    }
}

table! {
    /// An issue on the issues board.
    IssueRow = "issues", key [id],
    indexes [[state, raised_on, city_code, county_code], [body_id, state], [days_to_resolve], [model_worker_id]],
    additive = false, money [], {
        /// The issue's id.
        id: Uuid,
        /// The model worker the issue is raised for.
        model_worker_id: Uuid,
        /// The model worker's city (prefecture) code when the issue was raised, if any.
        city_code: Option<String>,
        /// The model worker's county code when the issue was raised.
        county_code: String,
        /// The issue's category, as its snake_case name (`housing_repair`, ...).
        category: String,
        /// The issue's urgency, as its snake_case name (`low` to `urgent`).
        urgency: String,
        /// Where the issue stands: `raised`, `acknowledged`, `escalated`, `reopened` (the open
        /// states), `resolved`, `confirmed` or `closed`.
        state: String,
        /// The day it was raised.
        raised_on: NaiveDate,
        /// The director who acknowledged it, if one did.
        owner_id: Option<Uuid>,
        /// The date the owner promised to respond by, if acknowledged.
        respond_by: Option<NaiveDate>,
        /// The body the issue is with (escalated to, redirected to, or resolved by), if any.
        body_id: Option<Uuid>,
        /// The date the body's answer is due by, if escalated.
        due_by: Option<NaiveDate>,
        /// Times escalated.
        escalations: i64,
        /// The body's latest response, as its snake_case name (`accepted`, `declined`,
        /// `redirected`).
        last_response: Option<String>,
        /// The day it was resolved; cleared when reopened.
        resolved_on: Option<NaiveDate>,
        /// The day it was closed; cleared when reopened.
        closed_on: Option<NaiveDate>,
        /// Days from raised to resolved (or to closed, for an issue closed unresolved); cleared
        /// when reopened.
        days_to_resolve: Option<i64>,
        /// Times reopened.
        reopened: i64,
    }
}

table! {
    /// One event in a model worker's care timeline: only where it is in the log and whose
    /// timeline it belongs to. What the event was, who recorded it and when are read from the
    /// log itself at query time, so the timeline (one row for most events) stays a narrow
    /// append of two columns and the log stays the one copy of them.
    /// Keyed by position (one timeline row per event at most): rows arrive in key order, so
    /// a rebuild appends to the table instead of inserting all over it.
    TimelineRow = "timeline", key [position], indexes [[model_worker_id, position]], additive = false, money [], {
        /// The event's global log position.
        position: i64,
        /// The model worker whose timeline the event is in.
        model_worker_id: Uuid,
    }
}

table! {
    /// Visits and gifts per month and county (the city is carried for roll-up).
    GiftMonthRow = "gifts_by_month", key [month, county_code], indexes [[city_code, month]], additive = true, money [cash_fen, goods_fen], {
        /// The calendar month of the visits, as `YYYY-MM`.
        month: String,
        /// The county (current code) the visits were in.
        county_code: String,
        /// The county's city (prefecture) code; empty when it has none.
        city_code: String,
        /// Visits, voided ones not counted.
        visits: i64,
        /// Cash given, in fen: `cash_fen_hi` × 10¹² + `cash_fen_lo` (see [`sql::FEN_SPLIT`]).
        cash_fen_hi: i64,
        /// The low part of the cash amount (see `cash_fen_hi`).
        cash_fen_lo: i64,
        /// The value of goods and flowers given, in fen, split the same way.
        goods_fen_hi: i64,
        /// The low part of the goods amount (see `goods_fen_hi`).
        goods_fen_lo: i64,
        /// Gifts of goods.
        goods_count: i64,
        /// Gifts of flowers.
        flowers_count: i64,
    }
}

table! {
    /// A director's engagement in one calendar year.
    DirectorYearRow = "director_years", key [director_id, year], indexes [[year]], additive = true, money [cash_fen, goods_fen], {
        /// The director.
        director_id: Uuid,
        /// The calendar year.
        year: i64,
        /// Visits that year under the director's pairings, voided ones not counted.
        visits: i64,
        /// Of `visits`: joint visits (a union official took part).
        joint_visits: i64,
        /// Cash given, in fen: `cash_fen_hi` × 10¹² + `cash_fen_lo` (see [`sql::FEN_SPLIT`]).
        cash_fen_hi: i64,
        /// The low part of the cash amount (see `cash_fen_hi`).
        cash_fen_lo: i64,
        /// The value of goods and flowers given, in fen, split the same way.
        goods_fen_hi: i64,
        /// The low part of the goods amount (see `goods_fen_hi`).
        goods_fen_lo: i64,
        /// Gifts of goods on those visits.
        goods_count: i64,
        /// Gifts of flowers on those visits.
        flowers_count: i64,
        /// Contacts the director recorded that year.
        contacts: i64,
        /// Issues raised that year for the model worker the director was paired with then.
        issues_raised: i64,
        /// Issues closed that year for the model worker the director was paired with then.
        issues_closed: i64,
    }
}

/// Every table of the dashboard read model.
pub const TABLES: &[TableDef] = &[
    ModelWorkerRow::DEF,
    DirectorRow::DEF,
    BodyRow::DEF,
    PairingRow::DEF,
    VisitRow::DEF,
    IssueRow::DEF,
    TimelineRow::DEF,
    GiftMonthRow::DEF,
    DirectorYearRow::DEF,
];

/// Which secondary indexes to create with the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexes {
    /// Every index (a live generation, a replay).
    All,
    /// Only those the handlers read through while building (the visit indexes behind the
    /// latest-visit recomputation); the rest are built in one sorted pass by
    /// [`create_indexes`] before the switch, instead of being updated row by row.
    WhileBuilding,
}

fn needed_while_building(def: &TableDef, cols: &[&str]) -> bool {
    def.name == VisitRow::DEF.name && cols.len() == 2 && cols[1] == "visited_on"
}

/// Creates every table of `generation` with the indexes `indexes` selects.
pub async fn create_tables(conn: &mut Conn<'_>, generation: i64, indexes: Indexes) -> Result<()> {
    let backend = conn.backend();
    for def in TABLES {
        let select =
            |d: &TableDef, c: &[&str]| indexes == Indexes::All || needed_while_building(d, c);
        for stmt in sql::create_statements(backend, generation, def, select) {
            conn.ddl(&stmt).await?;
        }
    }
    Ok(())
}

/// Creates every index of `generation` that does not exist yet, one statement each (each is
/// its own short write transaction on SQLite, so appends wait for one index at most).
pub async fn create_indexes(conn: &mut Conn<'_>, generation: i64) -> Result<()> {
    let backend = conn.backend();
    for def in TABLES {
        for stmt in sql::create_statements(backend, generation, def, |_, _| true)
            .into_iter()
            .skip(1)
        {
            conn.ddl(&stmt).await?;
        }
    }
    Ok(())
}

/// Drops every table of `generation`.
pub async fn drop_tables(conn: &mut Conn<'_>, generation: i64) -> Result<()> {
    for def in TABLES {
        let t = sql::physical(generation, def.name);
        conn.ddl(&format!("DROP TABLE IF EXISTS {t}")).await?;
    }
    Ok(())
}
