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
        id: Uuid,
        honour: String,
        region_code: String,
        /// The recorded region's current code (retired codes map to their successor).
        county_code: String,
        city_code: Option<String>,
        name_sealed: Option<String>,
        name_event: Option<Uuid>,
        registered_on: NaiveDate,
        in_hardship: bool,
        hardship_tier: Option<String>,
        hardship_since: Option<NaiveDate>,
        died_on: Option<NaiveDate>,
        erased: bool,
        pairing_id: Option<Uuid>,
        director_id: Option<Uuid>,
        last_visit_on: Option<NaiveDate>,
        visits: i64,
        open_issues: i64,
    }
}

table! {
    /// A director (association officer).
    DirectorRow = "directors", key [id], indexes [[role]], additive = false, money [], {
        id: Uuid,
        role: String,
        name_sealed: Option<String>,
        name_event: Option<Uuid>,
        term_from: NaiveDate,
        term_ended_on: Option<NaiveDate>,
        pairing_id: Option<Uuid>,
        model_worker_id: Option<Uuid>,
        last_contact_on: Option<NaiveDate>,
        erased: bool,
    }
}

table! {
    /// An organisation issues are escalated to.
    BodyRow = "bodies", key [id], indexes [], additive = false, money [], {
        id: Uuid,
        kind: String,
        name: String,
        region_code: Option<String>,
    }
}

table! {
    /// A pairing; `due_on` is the date after which it is overdue (a date, not a status).
    PairingRow = "pairings", key [id],
    indexes [[active, due_on, city_code, county_code], [city_code, county_code, due_on], [director_id], [model_worker_id]],
    additive = false, money [], {
        id: Uuid,
        director_id: Uuid,
        model_worker_id: Uuid,
        city_code: Option<String>,
        county_code: String,
        effective_from: NaiveDate,
        ended_on: Option<NaiveDate>,
        end_reason: Option<String>,
        max_days: i64,
        due_soon_days: i64,
        last_visit_on: Option<NaiveDate>,
        due_on: NaiveDate,
        due_soon_from: NaiveDate,
        active: bool,
    }
}

table! {
    /// A visit with its gift totals (corrections applied, voids flagged).
    VisitRow = "visits", key [id],
    indexes [[pairing_id, visited_on], [model_worker_id, visited_on], [visited_on]],
    additive = false, money [cash_fen, goods_fen], {
        id: Uuid,
        pairing_id: Option<Uuid>,
        model_worker_id: Uuid,
        director_id: Option<Uuid>,
        visited_on: NaiveDate,
        region_code: String,
        county_code: String,
        city_code: Option<String>,
        /// Cash given, in fen: `cash_fen_hi` × 10¹² + `cash_fen_lo` (see [`sql::FEN_SPLIT`]).
        cash_fen_hi: i64,
        cash_fen_lo: i64,
        /// The value of goods and flowers given, in fen, split the same way.
        goods_fen_hi: i64,
        goods_fen_lo: i64,
        goods_count: i64,
        flowers_count: i64,
        participants: i64,
        joint: bool,
        medical_advice: bool,
        late_entry: bool,
        voided: bool,
        corrections: i64,
        position: i64,
    }
}

table! {
    /// An issue on the issues board.
    IssueRow = "issues", key [id],
    indexes [[state, raised_on, city_code, county_code], [body_id, state], [days_to_resolve], [model_worker_id]],
    additive = false, money [], {
        id: Uuid,
        model_worker_id: Uuid,
        city_code: Option<String>,
        county_code: String,
        category: String,
        urgency: String,
        state: String,
        raised_on: NaiveDate,
        owner_id: Option<Uuid>,
        respond_by: Option<NaiveDate>,
        body_id: Option<Uuid>,
        due_by: Option<NaiveDate>,
        escalations: i64,
        last_response: Option<String>,
        resolved_on: Option<NaiveDate>,
        closed_on: Option<NaiveDate>,
        days_to_resolve: Option<i64>,
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
        position: i64,
        model_worker_id: Uuid,
    }
}

table! {
    /// Visits and gifts per month and county (the city is carried for roll-up).
    GiftMonthRow = "gifts_by_month", key [month, county_code], indexes [[city_code, month]], additive = true, money [cash_fen, goods_fen], {
        month: String,
        county_code: String,
        city_code: String,
        visits: i64,
        /// Cash given, in fen: `cash_fen_hi` × 10¹² + `cash_fen_lo` (see [`sql::FEN_SPLIT`]).
        cash_fen_hi: i64,
        cash_fen_lo: i64,
        /// The value of goods and flowers given, in fen, split the same way.
        goods_fen_hi: i64,
        goods_fen_lo: i64,
        goods_count: i64,
        flowers_count: i64,
    }
}

table! {
    /// A director's engagement in one calendar year.
    DirectorYearRow = "director_years", key [director_id, year], indexes [[year]], additive = true, money [cash_fen, goods_fen], {
        director_id: Uuid,
        year: i64,
        visits: i64,
        joint_visits: i64,
        /// Cash given, in fen: `cash_fen_hi` × 10¹² + `cash_fen_lo` (see [`sql::FEN_SPLIT`]).
        cash_fen_hi: i64,
        cash_fen_lo: i64,
        /// The value of goods and flowers given, in fen, split the same way.
        goods_fen_hi: i64,
        goods_fen_lo: i64,
        goods_count: i64,
        flowers_count: i64,
        contacts: i64,
        issues_raised: i64,
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
