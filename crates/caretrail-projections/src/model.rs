//! The dashboard read model: its tables and the handlers that fold events into them.
//!
//! Tables are normalised per entity (model workers, directors, bodies, pairings, visits,
//! issues), plus the model worker timeline and two additive aggregates (gifts by month and
//! county, engagement by director and year) that keep dashboard sums off the visit table.
//! Everything that depends on "today" (overdue, due soon, ages, "this year") is computed by the
//! queries against an `as_of` date; the tables hold only dates.
//!
//! Personal data: names are kept as the sealed JSON of the event that carried them plus that
//! event's id (the AEAD binds the two), and are opened at query time for readers who may see
//! them. Erasure clears the sealed value, so an erased name reads as erased even where the key
//! still existed when a replay ran.
//!
//! Whatever the log holds: an event can never change, so no event may stop a read model.
//! Free text copied from an event into a table (a body's name; everything else is an id, a
//! code, an enum word or sealed JSON, which escapes control characters) is stored
//! [`caretrail_domain::text::sanitize`]d: each character a command would refuse today
//! becomes U+FFFD. A NUL, which PostgreSQL refuses in `TEXT`, once stopped the dashboards and
//! every rebuild. Money is folded in 128 bits and stored exactly as two integer columns
//! ([`sql::FEN_SPLIT`]): amounts logged before the per-gift cap can add up beyond 64 bits, and
//! an overflowing `i64` wrapped in a rebuild and turned into a float on SQLite.
//!
//! [`Applier`] folds a batch in memory: it loads the rows the batch touches in bulk, applies the
//! events in log order, and writes dirty rows back with multi-row upserts in the caller's
//! transaction. A bounded row cache survives between batches while nobody else can have
//! written the tables (checked by the caller through the checkpoint).

use std::collections::{HashMap, HashSet};

use caretrail_domain::event::{self as ev, Event};
use caretrail_domain::vocab::{Gift, GiftKind, Participant, ParticipantRole};
use caretrail_domain::{Personal, RegionCode, text};
use caretrail_store::RecordedEvent;
use chrono::{Datelike, Days, NaiveDate};
use uuid::Uuid;

use crate::error::{ProjectionError, Result};
use crate::sql::{self, ColType, Conn, Row, TableDef, Val, table};

table! {
    /// One model worker's file.
    /// The second index covers the overview's and the coverage dashboard's counts (hardship,
    /// region, paired, last visit), so they read a narrow index instead of the wide rows.
    MwRow = "model_workers", key [id],
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
    DirRow = "directors", key [id], indexes [[role]], additive = false, money [], {
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
    PairRow = "pairings", key [id],
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
    MonthRow = "gifts_by_month", key [month, county_code], indexes [[city_code, month]], additive = true, money [cash_fen, goods_fen], {
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
    YearRow = "director_years", key [director_id, year], indexes [[year]], additive = true, money [cash_fen, goods_fen], {
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
    MwRow::DEF,
    DirRow::DEF,
    BodyRow::DEF,
    PairRow::DEF,
    VisitRow::DEF,
    IssueRow::DEF,
    TimelineRow::DEF,
    MonthRow::DEF,
    YearRow::DEF,
];

/// Issue states that count as open.
pub const OPEN_STATES: &[&str] = &["raised", "acknowledged", "escalated", "reopened"];

/// A stored event decoded for projection.
#[derive(Debug)]
pub struct Envelope {
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub event_type: String,
    pub business_date: Option<NaiveDate>,
    pub recorded_at_us: i64,
    pub actor_id: String,
    pub actor_role: String,
    pub event: Event,
}

/// Decodes a stored event. Current-version payloads are parsed straight into their typed
/// struct (no intermediate `serde_json::Value`, about twice as fast); older versions go through
/// the domain's upcasters.
pub fn decode(e: RecordedEvent) -> Result<Envelope> {
    let event = decode_event(e.position, &e.event_type, e.schema_version, &e.data)?;
    Ok(Envelope {
        position: e.position,
        event_id: e.event_id,
        stream_id: e.stream_id,
        event_type: e.event_type,
        business_date: e.business_date,
        recorded_at_us: e.recorded_at.timestamp_micros(),
        actor_id: e.actor_id,
        actor_role: e.actor_role,
        event,
    })
}

/// Decodes one payload (the bulk reader calls this with text borrowed from its rows).
pub fn decode_event(
    position: u64,
    event_type: &str,
    schema_version: u32,
    data: &str,
) -> Result<Event> {
    let unreadable = |reason: String| ProjectionError::Unreadable { position, reason };
    macro_rules! fast {
        ($($t:ident),* $(,)?) => {
            match event_type {
                $(stringify!($t) => Some(serde_json::from_str::<ev::$t>(data).map(Event::$t)),)*
                _ => None,
            }
        };
    }
    let parsed = if schema_version == ev::current_version(event_type) {
        fast!(
            ModelWorkerRegistered,
            HardshipAssessed,
            HardshipExited,
            ModelWorkerRelocated,
            DirectorAppointed,
            PairEnded,
            VisitRecorded,
            VisitCorrected,
            VisitVoided,
            IssueRaised,
            IssueResolvedOnSpot,
            BodyResponseRecorded,
            IssueProgressNoted,
            IssueResolved,
            IssueClosed,
            IssueReopened,
            ContactRecorded,
            ModelWorkerDied,
            ModelWorkerPaired,
            ModelWorkerUnpaired,
            DirectorTermEnded,
            DirectorPaired,
            DirectorUnpaired,
            BodyRegistered,
            PairAssigned,
            PairActivityLogged,
            PairActivityWithdrawn,
            IssueAcknowledged,
            IssueEscalated,
            IssueResolutionConfirmed,
            PersonalDataErased,
        )
    } else {
        None
    };
    match parsed {
        Some(r) => r.map_err(|err| unreadable(err.to_string())),
        None => {
            let value: serde_json::Value =
                serde_json::from_str(data).map_err(|err| unreadable(err.to_string()))?;
            Event::from_data(event_type, schema_version, value)
                .map_err(|err| unreadable(err.to_string()))
        }
    }
}

/// Rows of one `id`-keyed table that a batch has seen: `None` marks a row known to be absent.
///
/// Rows are boxed: a hash table keeps an eighth to a half of its slots empty and doubles when
/// it grows, and with rows stored inline every empty slot cost a whole row (a model worker is
/// 248 bytes). Measured on the 4.4M-event log: when the model workers came to fill most of
/// the row budget, their table's doubling alone added some 20 MB to the rebuild's peak.
struct Cache<R> {
    rows: HashMap<Uuid, Option<Box<R>>>,
    dirty: HashSet<Uuid>,
    /// The table holds exactly what this cache holds (built from empty, never trimmed): a
    /// miss is an absent row and needs no read.
    fresh: bool,
}

impl<R: Row> Cache<R> {
    fn new(fresh: bool) -> Self {
        Self {
            rows: HashMap::new(),
            dirty: HashSet::new(),
            fresh,
        }
    }

    /// After a flush: forgets the rows for which `done` holds (rows no event is expected to
    /// touch again); the table is then no longer known to hold only what the cache holds.
    fn forget_where(&mut self, mut done: impl FnMut(&R) -> bool) {
        let before = self.rows.len();
        self.rows
            .retain(|_, row| !row.as_deref().is_some_and(&mut done));
        if self.rows.len() != before {
            self.fresh = false;
        }
    }

    /// After a flush: forgets every row once the cache holds more than `limit`.
    fn trim(&mut self, limit: usize) {
        if self.rows.len() > limit && self.dirty.is_empty() {
            self.rows = HashMap::new();
            self.fresh = false;
        }
    }
}

impl<R: Row> Cache<R> {
    fn get(&self, id: Uuid) -> Option<&R> {
        self.rows.get(&id).and_then(Option::as_deref)
    }

    fn get_mut(&mut self, id: Uuid) -> Option<&mut R> {
        let row = self.rows.get_mut(&id).and_then(Option::as_deref_mut);
        if row.is_some() {
            self.dirty.insert(id);
        }
        row
    }

    fn put(&mut self, id: Uuid, row: R) {
        self.rows.insert(id, Some(Box::new(row)));
        self.dirty.insert(id);
    }

    /// Loads the rows among `ids` that this cache does not know yet. When the cache is fresh,
    /// the table is known to hold only what the cache holds, so nothing is read.
    /// Returns the ids that were read from the table.
    async fn ensure(
        &mut self,
        conn: &mut Conn<'_>,
        generation: i64,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<Vec<Uuid>> {
        let fresh = self.fresh;
        let mut unknown: Vec<Uuid> = ids
            .into_iter()
            .filter(|id| !self.rows.contains_key(id))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() || fresh {
            for id in unknown {
                self.rows.insert(id, None);
            }
            return Ok(Vec::new());
        }
        for (id, row) in sql::load_by_id::<R>(conn, generation, &unknown).await? {
            self.rows.insert(id, Some(Box::new(row)));
        }
        for &id in &unknown {
            self.rows.entry(id).or_insert(None);
        }
        Ok(unknown)
    }

    async fn flush(&mut self, conn: &mut Conn<'_>, generation: i64) -> Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<Uuid> = self.dirty.drain().collect();
        // Key order makes the write pattern (and B-tree page splits) deterministic.
        ids.sort_unstable();
        let rows: Vec<&R> = ids.iter().filter_map(|id| self.get(*id)).collect();
        sql::upsert_refs(conn, generation, &rows).await
    }
}

/// How many entity rows the applier keeps in memory, all tables together. Past this, the
/// caller flushes (the bulk rebuild checks [`Applier::over_budget`] after every read batch and
/// writes the rows inside its open transaction; the live runner flushes every batch anyway)
/// and [`Applier::flush`] forgets the cached rows, so the applier's memory is bounded by this
/// constant (plus one read batch) instead of by the number of model workers, directors and
/// pairings: a longer log costs reads of rows that no longer fit, never more memory.
/// At 400-700 bytes a row this is some 16-20 MB; the 1M-event bench log's whole population
/// (about 23,000 rows) fits, so it pays no reads there.
pub const ROW_BUDGET: usize = 32_768;

/// How many pairing → model worker links the applier keeps (about 33 bytes each, so at most
/// some 4 MB). Pair activities (four in ten events of a realistic log) need only that link
/// for the timeline, and it never changes once a pairing exists, so it outlives the row
/// budget's evictions and needs no reads while every pairing fits (a 10M-event log has about
/// 77,000).
pub const PAIR_LINKS: usize = 114_688;

/// What an applier may keep in memory: tests make both small to exercise eviction.
#[derive(Clone, Copy, Debug)]
pub struct Budgets {
    /// Cached entity rows allowed before the caller must flush ([`ROW_BUDGET`]).
    pub rows: usize,
    /// Pairing links kept before they start over ([`PAIR_LINKS`]).
    pub links: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            rows: ROW_BUDGET,
            links: PAIR_LINKS,
        }
    }
}

/// Folds events into one generation of the read-model tables.
pub struct Applier {
    generation: i64,
    mw: Cache<MwRow>,
    dir: Cache<DirRow>,
    body: Cache<BodyRow>,
    pair: Cache<PairRow>,
    visit: Cache<VisitRow>,
    issue: Cache<IssueRow>,
    months: HashMap<(String, String), MonthRow>,
    years: HashMap<(Uuid, i64), YearRow>,
    /// Timeline entries of the batch being applied: the event's position and the model
    /// worker, written at the end of [`Applier::apply_events`].
    timeline: Vec<(u64, Uuid)>,
    /// Each known pairing's model worker ([`PAIR_LINKS`]): immutable, so never stale.
    pair_links: HashMap<Uuid, Uuid>,
    /// Latest contact dates of directors that are not cached, written at the next flush
    /// without reading their rows (a contact, a third of a log's events, changes nothing
    /// else of a director). A row read in the meantime takes its pending date over.
    contacts: HashMap<Uuid, NaiveDate>,
    budgets: Budgets,
}

fn regions(code: &RegionCode) -> (String, Option<String>) {
    (code.successor().as_str(), code.city().map(|c| c.as_str()))
}

fn sealed_json(p: &Personal) -> Option<String> {
    match p {
        Personal::Sealed(s) => serde_json::to_string(s).ok(),
        _ => None,
    }
}

fn enum_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A visit's gift totals: money in 128 bits, because a visit in an old log may hold amounts
/// no policy capped.
struct GiftSums {
    cash: i128,
    goods_fen: i128,
    goods: i64,
    flowers: i64,
}

fn gift_sums(gifts: &[Gift]) -> GiftSums {
    let mut s = GiftSums {
        cash: 0,
        goods_fen: 0,
        goods: 0,
        flowers: 0,
    };
    for g in gifts {
        // At most a few thousand amounts below 2⁶³ each: far inside i128.
        let amount = i128::from(g.amount_fen.map_or(0, |f| f.as_i64()));
        match g.kind {
            GiftKind::Cash => s.cash += amount,
            GiftKind::Goods => {
                s.goods_fen += amount;
                s.goods += 1;
            }
            GiftKind::Flowers => s.flowers += 1,
        }
    }
    s
}

impl VisitRow {
    /// Cash given, in fen.
    pub fn cash_fen(&self) -> i128 {
        sql::join_fen(self.cash_fen_hi, self.cash_fen_lo)
    }

    /// The value of goods given, in fen.
    pub fn goods_fen(&self) -> i128 {
        sql::join_fen(self.goods_fen_hi, self.goods_fen_lo)
    }

    /// Sets the gift totals.
    fn set_gifts(&mut self, s: &GiftSums) -> Result<()> {
        (self.cash_fen_hi, self.cash_fen_lo) = sql::split_fen(s.cash)?;
        (self.goods_fen_hi, self.goods_fen_lo) = sql::split_fen(s.goods_fen)?;
        self.goods_count = s.goods;
        self.flowers_count = s.flowers;
        Ok(())
    }
}

fn is_joint(ps: &[Participant]) -> bool {
    ps.iter().any(|p| p.role == ParticipantRole::UnionOfficial)
}

fn set_due(p: &mut PairRow) {
    let base = p.last_visit_on.unwrap_or(p.effective_from);
    p.due_on = base
        .checked_add_days(Days::new(p.max_days.max(0) as u64))
        .unwrap_or(base);
    p.due_soon_from = p
        .due_on
        .checked_sub_days(Days::new(p.due_soon_days.max(0) as u64))
        .unwrap_or(p.due_on);
}

fn max_date(a: Option<NaiveDate>, b: NaiveDate) -> Option<NaiveDate> {
    Some(a.map_or(b, |a| a.max(b)))
}

fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

impl Applier {
    /// An applier for `generation`; `fresh` when its tables are empty.
    pub fn new(generation: i64, fresh: bool) -> Self {
        Self {
            generation,
            mw: Cache::new(fresh),
            dir: Cache::new(fresh),
            body: Cache::new(fresh),
            pair: Cache::new(fresh),
            visit: Cache::new(fresh),
            issue: Cache::new(fresh),
            months: HashMap::new(),
            years: HashMap::new(),
            timeline: Vec::new(),
            pair_links: HashMap::new(),
            contacts: HashMap::new(),
            budgets: Budgets::default(),
        }
    }

    /// Sets what this applier may keep in memory (at least one of each).
    pub fn with_budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = Budgets {
            rows: budgets.rows.max(1),
            links: budgets.links.max(1),
        };
        self
    }

    /// Entity rows held in memory, all tables together (sixteen pending contact dates,
    /// about 24 bytes each, count as one row).
    pub fn cached_rows(&self) -> usize {
        self.mw.rows.len()
            + self.dir.rows.len()
            + self.body.rows.len()
            + self.pair.rows.len()
            + self.visit.rows.len()
            + self.issue.rows.len()
            + self.contacts.len() / 16
    }

    /// True when the cached rows (visits of the open transaction included) have reached the
    /// budget: the caller should flush now, and [`Applier::flush`] then forgets them.
    pub fn over_budget(&self) -> bool {
        self.cached_rows() >= self.budgets.rows
    }

    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// Forgets every cached row (another writer may have changed the tables).
    pub fn forget(&mut self) {
        *self = Applier::new(self.generation, false).with_budgets(self.budgets);
    }

    /// Applies a batch in log order and writes the result (not the checkpoint) in `conn`.
    pub async fn apply_batch(&mut self, conn: &mut Conn<'_>, batch: &[Envelope]) -> Result<()> {
        self.apply_events(conn, batch).await?;
        self.flush(conn).await
    }

    /// Applies a batch in log order, keeping changed rows in memory: only the timeline (an
    /// append) and rows a handler must read back are written. Several batches may be applied
    /// before one [`Applier::flush`], so a row changed by each of them is written once; the
    /// caller's transaction and checkpoint must then span all of them.
    pub async fn apply_events(&mut self, conn: &mut Conn<'_>, batch: &[Envelope]) -> Result<()> {
        self.prefetch(conn, batch).await?;
        for env in batch {
            self.apply(conn, env).await?;
        }
        write_timeline(conn, self.generation, &self.timeline).await?;
        self.timeline.clear();
        Ok(())
    }

    /// Loads in bulk every row the batch names directly. The row an event creates (a
    /// registration, an appointment, an assignment, a recorded visit, a raised issue) is not
    /// read: the domain never creates an id twice and the checkpoint never applies an event
    /// twice, so it cannot exist yet, and most of a log's events are such creations.
    async fn prefetch(&mut self, conn: &mut Conn<'_>, batch: &[Envelope]) -> Result<()> {
        let (mut mw, mut dir, mut pair, mut visit, mut issue, mut links) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for env in batch {
            use Event as E;
            match &env.event {
                E::HardshipAssessed(e) => mw.push(e.model_worker_id.0),
                E::HardshipExited(e) => mw.push(e.model_worker_id.0),
                E::ModelWorkerRelocated(e) => mw.push(e.model_worker_id.0),
                E::ModelWorkerDied(e) => mw.push(e.model_worker_id.0),
                E::ModelWorkerPaired(e) => mw.push(e.model_worker_id.0),
                E::ModelWorkerUnpaired(e) => mw.push(e.model_worker_id.0),
                E::DirectorTermEnded(e) => dir.push(e.director_id.0),
                E::DirectorPaired(e) => dir.push(e.director_id.0),
                E::DirectorUnpaired(e) => dir.push(e.director_id.0),
                E::PairAssigned(e) => mw.push(e.model_worker_id.0),
                E::PairEnded(e) => pair.push(e.pairing_id.0),
                E::PairActivityLogged(e) => links.push(e.pairing_id.0),
                E::PairActivityWithdrawn(e) => links.push(e.pairing_id.0),
                E::VisitRecorded(e) => {
                    mw.push(e.model_worker_id.0);
                    if let Some(p) = e.pairing_id {
                        pair.push(p.0);
                    }
                }
                E::VisitCorrected(e) => {
                    visit.push(e.visit_id.0);
                    mw.push(e.model_worker_id.0);
                }
                E::VisitVoided(e) => {
                    visit.push(e.visit_id.0);
                    mw.push(e.model_worker_id.0);
                }
                // A contact changes only the director's latest contact date: an uncached
                // director gets a pending date instead of a read (see `contacts`).
                E::ContactRecorded(_) => {}
                E::PersonalDataErased(e) => {
                    mw.push(e.subject_id);
                    dir.push(e.subject_id);
                }
                E::IssueRaised(e) => mw.push(e.model_worker_id.0),
                E::IssueResolvedOnSpot(e) => {
                    issue.push(e.issue_id.0);
                    mw.push(e.model_worker_id.0);
                }
                E::IssueAcknowledged(e) => issue.push(e.issue_id.0),
                E::IssueEscalated(e) => issue.push(e.issue_id.0),
                E::BodyResponseRecorded(e) => issue.push(e.issue_id.0),
                E::IssueResolved(e) => {
                    issue.push(e.issue_id.0);
                    mw.push(e.model_worker_id.0);
                }
                E::IssueResolutionConfirmed(e) => issue.push(e.issue_id.0),
                E::IssueClosed(e) => {
                    issue.push(e.issue_id.0);
                    mw.push(e.model_worker_id.0);
                }
                E::IssueReopened(e) => {
                    issue.push(e.issue_id.0);
                    mw.push(e.model_worker_id.0);
                }
                E::ModelWorkerRegistered(_)
                | E::DirectorAppointed(_)
                | E::IssueProgressNoted(_)
                | E::BodyRegistered(_) => {}
            }
        }
        let g = self.generation;
        self.mw.ensure(conn, g, mw).await?;
        for id in self.dir.ensure(conn, g, dir).await? {
            self.take_pending_contact(id);
        }
        for id in self.pair.ensure(conn, g, pair).await? {
            self.link_pairing(id);
        }
        self.visit.ensure(conn, g, visit).await?;
        self.issue.ensure(conn, g, issue).await?;
        self.ensure_links(conn, links).await
    }

    /// Remembers a cached pairing's model worker while the links are under their budget.
    /// It never drops links: the batch being applied may rely on them (only
    /// [`Applier::ensure_links`], before a batch, starts them over), and a pairing that is
    /// not linked here is cached, so this batch finds its model worker anyway.
    fn link_pairing(&mut self, id: Uuid) {
        if let Some(m) = self.pair.get(id).map(|p| p.model_worker_id)
            && self.pair_links.len() < self.budgets.links
        {
            self.pair_links.insert(id, m);
        }
    }

    /// A pairing's model worker, from the cached row or the links.
    fn pairing_model_worker(&self, id: Uuid) -> Option<Uuid> {
        self.pair
            .get(id)
            .map(|p| p.model_worker_id)
            .or_else(|| self.pair_links.get(&id).copied())
    }

    /// Makes sure every pairing among `ids` (the pair activities of the batch about to be
    /// applied) is cached or linked: reads the model worker of the others, one narrow column
    /// instead of the whole row. When the links would outgrow their budget they start over
    /// first, and the batch's own are read again, so none it needs is missing.
    async fn ensure_links(&mut self, conn: &mut Conn<'_>, mut ids: Vec<Uuid>) -> Result<()> {
        if self.pair.fresh {
            // Every pairing of the table is cached.
            return Ok(());
        }
        ids.retain(|id| !self.pair.rows.contains_key(id));
        ids.sort_unstable();
        ids.dedup();
        let missing = ids
            .iter()
            .filter(|id| !self.pair_links.contains_key(id))
            .count();
        if missing == 0 {
            return Ok(());
        }
        if self.pair_links.len() + missing > self.budgets.links {
            self.pair_links = HashMap::new();
        } else {
            ids.retain(|id| !self.pair_links.contains_key(id));
        }
        let found = sql::load_uuid_column(
            conn,
            self.generation,
            PairRow::DEF.name,
            "model_worker_id",
            &ids,
        )
        .await?;
        self.pair_links.extend(found);
        Ok(())
    }

    /// A director row just read takes over the contact date pending for it.
    fn take_pending_contact(&mut self, id: Uuid) {
        if let Some(on) = self.contacts.remove(&id)
            && let Some(d) = self.dir.get_mut(id)
        {
            d.last_contact_on = max_date(d.last_contact_on, on);
        }
    }

    /// Writes the pending contact dates: each raises the director's latest contact date.
    async fn flush_contacts(&mut self, conn: &mut Conn<'_>) -> Result<()> {
        if self.contacts.is_empty() {
            return Ok(());
        }
        let mut pending: Vec<(Uuid, NaiveDate)> = self.contacts.drain().collect();
        pending.sort_unstable();
        let t = sql::physical(self.generation, DirRow::DEF.name);
        let (on_p, id_p) = (conn.backend().param(1), conn.backend().param(2));
        let stmt = format!(
            "UPDATE {t} SET last_contact_on = CASE WHEN last_contact_on IS NULL \
             OR last_contact_on < {on_p} THEN {on_p} ELSE last_contact_on END WHERE id = {id_p}"
        );
        for (id, on) in pending {
            conn.execute(
                &stmt,
                &[Val::Text(on.to_string()), Val::Text(id.to_string())],
                &[ColType::Text, ColType::Text],
            )
            .await?;
        }
        Ok(())
    }

    fn timeline(&mut self, env: &Envelope, model_worker_id: Uuid) {
        self.timeline.push((env.position, model_worker_id));
    }

    fn month(&mut self, v: &VisitRow, sign: i64) -> Result<()> {
        let month = format!("{:04}-{:02}", v.visited_on.year(), v.visited_on.month());
        let key = (month.clone(), v.county_code.clone());
        let row = self.months.entry(key).or_insert_with(|| MonthRow {
            month,
            county_code: v.county_code.clone(),
            city_code: v.city_code.clone().unwrap_or_default(),
            ..MonthRow::default()
        });
        row.visits += sign;
        let sign128 = i128::from(sign);
        sql::add_fen(
            &mut row.cash_fen_hi,
            &mut row.cash_fen_lo,
            sign128 * v.cash_fen(),
        )?;
        sql::add_fen(
            &mut row.goods_fen_hi,
            &mut row.goods_fen_lo,
            sign128 * v.goods_fen(),
        )?;
        row.goods_count += sign * v.goods_count;
        row.flowers_count += sign * v.flowers_count;
        Ok(())
    }

    fn year(&mut self, director: Uuid, year: i32) -> &mut YearRow {
        self.years
            .entry((director, i64::from(year)))
            .or_insert_with(|| YearRow {
                director_id: director,
                year: i64::from(year),
                ..YearRow::default()
            })
    }

    /// Adds (`sign` 1) or removes (`sign` -1) a visit's contribution to the aggregates.
    fn count_visit(&mut self, v: &VisitRow, sign: i64) -> Result<()> {
        self.month(v, sign)?;
        if let Some(d) = v.director_id {
            let y = self.year(d, v.visited_on.year());
            y.visits += sign;
            y.joint_visits += sign * i64::from(v.joint);
            let sign128 = i128::from(sign);
            sql::add_fen(
                &mut y.cash_fen_hi,
                &mut y.cash_fen_lo,
                sign128 * v.cash_fen(),
            )?;
            sql::add_fen(
                &mut y.goods_fen_hi,
                &mut y.goods_fen_lo,
                sign128 * v.goods_fen(),
            )?;
            y.goods_count += sign * v.goods_count;
            y.flowers_count += sign * v.flowers_count;
        }
        Ok(())
    }

    /// Re-derives the last visit dates of a pairing and a model worker after a visit dated
    /// `old` moved to `new` (`None`: voided). Where the cached maximum settles it (the visit
    /// was not the latest one, or moved later) no query runs; otherwise the visit table is
    /// brought up to date and asked, since a maximum cannot be maintained by subtraction.
    async fn recompute_last_visits(
        &mut self,
        conn: &mut Conn<'_>,
        pairing: Option<Uuid>,
        model_worker: Uuid,
        old: NaiveDate,
        new: Option<NaiveDate>,
    ) -> Result<()> {
        if let Some(p) = pairing
            && let Some(current) = self.pair.get(p).map(|r| r.last_visit_on)
        {
            let last = self
                .latest_visit(conn, "pairing_id", p, current, old, new)
                .await?;
            if let Some(row) = self.pair.get_mut(p) {
                row.last_visit_on = last;
                set_due(row);
            }
        }
        if let Some(current) = self.mw.get(model_worker).map(|r| r.last_visit_on) {
            let last = self
                .latest_visit(conn, "model_worker_id", model_worker, current, old, new)
                .await?;
            if let Some(row) = self.mw.get_mut(model_worker) {
                row.last_visit_on = last;
            }
        }
        Ok(())
    }

    /// The latest unvoided visit date of the visits whose `column` is `id`, after one dated
    /// `old` moved to `new`: settled from `current` when it can be, asked of the (flushed)
    /// visit table otherwise.
    async fn latest_visit(
        &mut self,
        conn: &mut Conn<'_>,
        column: &str,
        id: Uuid,
        current: Option<NaiveDate>,
        old: NaiveDate,
        new: Option<NaiveDate>,
    ) -> Result<Option<NaiveDate>> {
        if let Some(last) = settled_last_visit(current, old, new) {
            return Ok(last);
        }
        self.visit.flush(conn, self.generation).await?;
        let t = sql::physical(self.generation, VisitRow::DEF.name);
        let id_p = conn.backend().param(1);
        let rows = conn
            .fetch(
                &format!("SELECT MAX(visited_on) FROM {t} WHERE {column} = {id_p} AND voided = 0"),
                &[Val::Text(id.to_string())],
                &[ColType::Text],
                &[ColType::Text],
            )
            .await?;
        match rows.into_iter().next() {
            Some(mut row) => sql::cell(&mut row, 0, VisitRow::DEF.name, "visited_on"),
            None => Ok(None),
        }
    }

    async fn apply(&mut self, conn: &mut Conn<'_>, env: &Envelope) -> Result<()> {
        use Event as E;
        let g = self.generation;
        match &env.event {
            E::ModelWorkerRegistered(e) => {
                let (county, city) = regions(&e.region_code);
                self.mw.put(
                    e.model_worker_id.0,
                    MwRow {
                        id: e.model_worker_id.0,
                        honour: enum_text(&e.honour),
                        region_code: e.region_code.as_str(),
                        county_code: county,
                        city_code: city,
                        name_sealed: sealed_json(&e.name),
                        name_event: Some(env.event_id),
                        registered_on: e.registered_on,
                        ..MwRow::default()
                    },
                );
                self.timeline(env, e.model_worker_id.0);
            }
            E::HardshipAssessed(e) => {
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    m.in_hardship = true;
                    m.hardship_tier = Some(enum_text(&e.tier));
                    m.hardship_since = Some(e.assessed_on);
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::HardshipExited(e) => {
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    m.in_hardship = false;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ModelWorkerRelocated(e) => {
                let (county, city) = regions(&e.region_code);
                let mut pairing = None;
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    m.region_code = e.region_code.as_str();
                    m.county_code = county.clone();
                    m.city_code = city.clone();
                    pairing = m.pairing_id;
                }
                if let Some(p) = pairing {
                    self.pair.ensure(conn, g, [p]).await?;
                    if let Some(p) = self.pair.get_mut(p) {
                        p.county_code = county;
                        p.city_code = city;
                    }
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ModelWorkerDied(e) => {
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    m.died_on = Some(e.died_on);
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ModelWorkerPaired(e) => {
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    m.pairing_id = Some(e.pairing_id.0);
                    m.director_id = Some(e.director_id.0);
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ModelWorkerUnpaired(e) => {
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0)
                    && m.pairing_id == Some(e.pairing_id.0)
                {
                    m.pairing_id = None;
                    m.director_id = None;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::DirectorAppointed(e) => {
                self.dir.put(
                    e.director_id.0,
                    DirRow {
                        id: e.director_id.0,
                        role: enum_text(&e.role),
                        name_sealed: sealed_json(&e.name),
                        name_event: Some(env.event_id),
                        term_from: e.term.from,
                        ..DirRow::default()
                    },
                );
            }
            E::DirectorTermEnded(e) => {
                if let Some(d) = self.dir.get_mut(e.director_id.0) {
                    d.term_ended_on = Some(e.ended_on);
                }
            }
            E::DirectorPaired(e) => {
                if let Some(d) = self.dir.get_mut(e.director_id.0) {
                    d.pairing_id = Some(e.pairing_id.0);
                    d.model_worker_id = Some(e.model_worker_id.0);
                }
            }
            E::DirectorUnpaired(e) => {
                if let Some(d) = self.dir.get_mut(e.director_id.0)
                    && d.pairing_id == Some(e.pairing_id.0)
                {
                    d.pairing_id = None;
                    d.model_worker_id = None;
                }
            }
            E::BodyRegistered(e) => {
                self.body.put(
                    e.body_id.0,
                    BodyRow {
                        id: e.body_id.0,
                        kind: enum_text(&e.kind),
                        // The log may hold any text (see `caretrail_domain::text`): what a
                        // table stores is sanitised, so no value stops a backend.
                        name: text::sanitize(&e.name).into_owned(),
                        region_code: e.region_code.map(|r| r.as_str()),
                    },
                );
            }
            E::PairAssigned(e) => {
                let (county, city) = self
                    .mw
                    .get(e.model_worker_id.0)
                    .map(|m| (m.county_code.clone(), m.city_code.clone()))
                    .unwrap_or_default();
                let mut row = PairRow {
                    id: e.pairing_id.0,
                    director_id: e.director_id.0,
                    model_worker_id: e.model_worker_id.0,
                    city_code: city,
                    county_code: county,
                    effective_from: e.effective_from,
                    max_days: i64::from(e.visit_policy.max_days_between_visits),
                    due_soon_days: i64::from(e.visit_policy.due_soon_window_days),
                    active: true,
                    ..PairRow::default()
                };
                set_due(&mut row);
                self.pair.put(e.pairing_id.0, row);
                self.link_pairing(e.pairing_id.0);
                self.timeline(env, e.model_worker_id.0);
            }
            E::PairEnded(e) => {
                if let Some(p) = self.pair.get_mut(e.pairing_id.0) {
                    p.active = false;
                    p.ended_on = Some(e.ended_on);
                    p.end_reason = Some(enum_text(&e.reason));
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::PairActivityLogged(ev::PairActivityLogged { pairing_id, .. })
            | E::PairActivityWithdrawn(ev::PairActivityWithdrawn { pairing_id, .. }) => {
                if let Some(m) = self.pairing_model_worker(pairing_id.0) {
                    self.timeline(env, m);
                }
            }
            E::VisitRecorded(e) => {
                let (county, city) = regions(&e.region_code);
                let mut row = VisitRow {
                    id: e.visit_id.0,
                    pairing_id: e.pairing_id.map(|p| p.0),
                    model_worker_id: e.model_worker_id.0,
                    director_id: e.director_id.map(|d| d.0),
                    visited_on: e.visited_on,
                    region_code: e.region_code.as_str(),
                    county_code: county,
                    city_code: city,
                    participants: e.participants.len() as i64,
                    joint: is_joint(&e.participants),
                    medical_advice: e.medical_advice_given,
                    late_entry: e.late_entry,
                    voided: false,
                    corrections: 0,
                    position: env.position as i64,
                    ..VisitRow::default()
                };
                row.set_gifts(&gift_sums(&e.gifts))?;
                self.count_visit(&row, 1)?;
                self.visit.put(e.visit_id.0, row);
                if let Some(p) = e.pairing_id.and_then(|p| self.pair.get_mut(p.0)) {
                    p.last_visit_on = max_date(p.last_visit_on, e.visited_on);
                    set_due(p);
                }
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    m.last_visit_on = max_date(m.last_visit_on, e.visited_on);
                    m.visits += 1;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::VisitCorrected(e) => {
                if let Some(old) = self.visit.get(e.visit_id.0).cloned() {
                    let mut new = old.clone();
                    let c = &e.changes;
                    if let Some(d) = c.visited_on {
                        new.visited_on = d;
                    }
                    if let Some(r) = &c.region_code {
                        let (county, city) = regions(r);
                        new.region_code = r.as_str();
                        new.county_code = county;
                        new.city_code = city;
                    }
                    if let Some(gifts) = &c.gifts {
                        new.set_gifts(&gift_sums(gifts))?;
                    }
                    if let Some(ps) = &c.participants {
                        new.participants = ps.len() as i64;
                        new.joint = is_joint(ps);
                    }
                    if let Some(m) = c.medical_advice_given {
                        new.medical_advice = m;
                    }
                    // The event's flag speaks of a corrected date only; a correction that
                    // leaves the date alone leaves the visit's late entry as it was.
                    if c.visited_on.is_some() {
                        new.late_entry = e.late_entry;
                    }
                    new.corrections += 1;
                    if !old.voided {
                        self.count_visit(&old, -1)?;
                        self.count_visit(&new, 1)?;
                    }
                    let date_changed = new.visited_on != old.visited_on;
                    let new_date = new.visited_on;
                    self.visit.put(e.visit_id.0, new);
                    if date_changed && !old.voided {
                        if let Some(p) = old.pairing_id {
                            self.pair.ensure(conn, g, [p]).await?;
                        }
                        self.recompute_last_visits(
                            conn,
                            old.pairing_id,
                            old.model_worker_id,
                            old.visited_on,
                            Some(new_date),
                        )
                        .await?;
                    }
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::VisitVoided(e) => {
                if let Some(old) = self.visit.get(e.visit_id.0).cloned()
                    && !old.voided
                {
                    self.count_visit(&old, -1)?;
                    if let Some(v) = self.visit.get_mut(e.visit_id.0) {
                        v.voided = true;
                    }
                    if let Some(m) = self.mw.get_mut(old.model_worker_id) {
                        m.visits -= 1;
                    }
                    if let Some(p) = old.pairing_id {
                        self.pair.ensure(conn, g, [p]).await?;
                    }
                    self.recompute_last_visits(
                        conn,
                        old.pairing_id,
                        old.model_worker_id,
                        old.visited_on,
                        None,
                    )
                    .await?;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::IssueRaised(e) => {
                let (county, city, director) = self
                    .mw
                    .get(e.model_worker_id.0)
                    .map(|m| (m.county_code.clone(), m.city_code.clone(), m.director_id))
                    .unwrap_or_default();
                self.issue.put(
                    e.issue_id.0,
                    IssueRow {
                        id: e.issue_id.0,
                        model_worker_id: e.model_worker_id.0,
                        city_code: city,
                        county_code: county,
                        category: enum_text(&e.category),
                        urgency: enum_text(&e.urgency),
                        state: "raised".into(),
                        raised_on: e.on,
                        ..IssueRow::default()
                    },
                );
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    m.open_issues += 1;
                }
                if let Some(d) = director {
                    self.year(d, e.on.year()).issues_raised += 1;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::IssueResolvedOnSpot(ev::IssueResolvedOnSpot {
                issue_id,
                model_worker_id,
                on,
                ..
            })
            | E::IssueResolved(ev::IssueResolved {
                issue_id,
                model_worker_id,
                on,
                ..
            }) => {
                let mut was_open = false;
                if let Some(i) = self.issue.get_mut(issue_id.0) {
                    was_open = OPEN_STATES.contains(&i.state.as_str());
                    i.state = "resolved".into();
                    i.resolved_on = Some(*on);
                    i.days_to_resolve = Some(days_between(i.raised_on, *on));
                    if let ev::Event::IssueResolved(r) = &env.event
                        && let Some(b) = r.resolved_by
                    {
                        i.body_id = Some(b.0);
                    }
                }
                if was_open && let Some(m) = self.mw.get_mut(model_worker_id.0) {
                    m.open_issues -= 1;
                }
                self.timeline(env, model_worker_id.0);
            }
            E::IssueAcknowledged(e) => {
                if let Some(i) = self.issue.get_mut(e.issue_id.0) {
                    if OPEN_STATES.contains(&i.state.as_str()) {
                        i.state = "acknowledged".into();
                    }
                    i.owner_id = Some(e.owner.0);
                    i.respond_by = Some(e.respond_by);
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::IssueEscalated(e) => {
                if let Some(i) = self.issue.get_mut(e.issue_id.0) {
                    if OPEN_STATES.contains(&i.state.as_str()) {
                        i.state = "escalated".into();
                    }
                    i.body_id = Some(e.to_body.0);
                    i.due_by = Some(e.due_by);
                    i.escalations += 1;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::BodyResponseRecorded(e) => {
                if let Some(i) = self.issue.get_mut(e.issue_id.0) {
                    i.last_response = Some(enum_text(&e.response));
                    if let Some(to) = e.redirected_to {
                        i.body_id = Some(to.0);
                    }
                    if let Some(due) = e.due_by {
                        i.due_by = Some(due);
                    }
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::IssueProgressNoted(e) => self.timeline(env, e.model_worker_id.0),
            E::IssueResolutionConfirmed(e) => {
                if let Some(i) = self.issue.get_mut(e.issue_id.0) {
                    i.state = "confirmed".into();
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::IssueClosed(e) => {
                let mut was_open = false;
                if let Some(i) = self.issue.get_mut(e.issue_id.0) {
                    was_open = OPEN_STATES.contains(&i.state.as_str());
                    i.state = "closed".into();
                    i.closed_on = Some(e.on);
                    if i.days_to_resolve.is_none() {
                        i.days_to_resolve = Some(days_between(i.raised_on, e.on));
                    }
                }
                let mut director = None;
                if let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    if was_open {
                        m.open_issues -= 1;
                    }
                    director = m.director_id;
                }
                if let Some(d) = director {
                    self.year(d, e.on.year()).issues_closed += 1;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::IssueReopened(e) => {
                let mut was_open = true;
                if let Some(i) = self.issue.get_mut(e.issue_id.0) {
                    was_open = OPEN_STATES.contains(&i.state.as_str());
                    i.state = "reopened".into();
                    i.resolved_on = None;
                    i.closed_on = None;
                    i.days_to_resolve = None;
                    i.reopened += 1;
                }
                if !was_open && let Some(m) = self.mw.get_mut(e.model_worker_id.0) {
                    m.open_issues += 1;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ContactRecorded(e) => {
                let id = e.director_id.0;
                if let Some(d) = self.dir.get_mut(id) {
                    d.last_contact_on = max_date(d.last_contact_on, e.on);
                } else if !self.dir.fresh && !self.dir.rows.contains_key(&id) {
                    // Not cached: raise the stored date at the next flush instead of
                    // reading the row now (a row known to be absent gets nothing, as
                    // before).
                    let pending = self.contacts.entry(id).or_insert(e.on);
                    *pending = (*pending).max(e.on);
                }
                self.year(e.director_id.0, e.on.year()).contacts += 1;
                self.timeline(env, e.model_worker_id.0);
            }
            E::PersonalDataErased(e) => {
                let mut is_worker = false;
                if let Some(m) = self.mw.get_mut(e.subject_id) {
                    m.name_sealed = None;
                    m.erased = true;
                    is_worker = true;
                }
                if let Some(d) = self.dir.get_mut(e.subject_id) {
                    d.name_sealed = None;
                    d.erased = true;
                }
                if is_worker {
                    self.timeline(env, e.subject_id);
                }
            }
        }
        Ok(())
    }

    /// Writes every dirty row and every aggregate delta, then bounds the row caches.
    pub async fn flush(&mut self, conn: &mut Conn<'_>) -> Result<()> {
        let g = self.generation;
        self.mw.flush(conn, g).await?;
        self.dir.flush(conn, g).await?;
        self.flush_contacts(conn).await?;
        self.body.flush(conn, g).await?;
        self.pair.flush(conn, g).await?;
        self.visit.flush(conn, g).await?;
        self.issue.flush(conn, g).await?;
        let mut months: Vec<MonthRow> = std::mem::take(&mut self.months).into_values().collect();
        months.sort_by(|a, b| (&a.month, &a.county_code).cmp(&(&b.month, &b.county_code)));
        sql::upsert(conn, g, &months).await?;
        let mut years: Vec<YearRow> = std::mem::take(&mut self.years).into_values().collect();
        years.sort_by_key(|y| (y.director_id, y.year));
        sql::upsert(conn, g, &years).await?;
        // A visit row is written once and read again only by a rare correction or void, so
        // visits are not kept between flushes: they were a third of the cached rows.
        self.visit.trim(0);
        // A closed issue takes another event only when it is reopened (rare): closed issues
        // leave the cache, so it holds the open ones instead of every issue ever raised.
        self.issue.forget_where(|i| i.state == "closed");
        // Over the budget, every table starts over: the rows are written, and the next
        // batches read back only the ones they touch.
        if self.over_budget() {
            self.mw.trim(0);
            self.dir.trim(0);
            self.body.trim(0);
            self.pair.trim(0);
            self.issue.trim(0);
        }
        Ok(())
    }
}

/// Writes the timeline rows of a batch (two columns each, so the same upsert as every other
/// table; on a direct SQLite connection it binds rows without copying values).
async fn write_timeline(
    conn: &mut Conn<'_>,
    generation: i64,
    entries: &[(u64, Uuid)],
) -> Result<()> {
    let rows: Vec<TimelineRow> = entries
        .iter()
        .map(|&(position, model_worker_id)| TimelineRow {
            position: position as i64,
            model_worker_id,
        })
        .collect();
    sql::upsert(conn, generation, &rows).await
}

/// The latest visit date after one visit dated `old` moved to `new` (`None`: voided), when
/// `current` (the latest before) settles it without reading the other visits: the visit was
/// strictly earlier than the latest, so the latest one is another visit that did not change.
/// `None` when the visit may have been the latest and the others must be asked.
fn settled_last_visit(
    current: Option<NaiveDate>,
    old: NaiveDate,
    new: Option<NaiveDate>,
) -> Option<Option<NaiveDate>> {
    let current = current?;
    if old < current {
        Some(Some(new.map_or(current, |n| n.max(current))))
    } else if new.is_some_and(|n| n >= current) {
        // It was (one of) the latest and moved later still.
        Some(new)
    } else {
        None
    }
}

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

#[cfg(test)]
mod tests {
    use super::settled_last_visit;
    use chrono::NaiveDate;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2021, 10, day).unwrap()
    }

    #[test]
    fn the_cached_latest_visit_settles_changes_to_earlier_visits_without_a_query() {
        // An earlier visit moved or voided: the latest is another, unchanged visit.
        assert_eq!(
            settled_last_visit(Some(d(20)), d(5), Some(d(9))),
            Some(Some(d(20)))
        );
        assert_eq!(
            settled_last_visit(Some(d(20)), d(5), None),
            Some(Some(d(20)))
        );
        // An earlier visit moved past the latest becomes the latest.
        assert_eq!(
            settled_last_visit(Some(d(20)), d(5), Some(d(25))),
            Some(Some(d(25)))
        );
        // The latest visit moved later: still the latest.
        assert_eq!(
            settled_last_visit(Some(d(20)), d(20), Some(d(22))),
            Some(Some(d(22)))
        );
        // The latest visit moved earlier or was voided: only the visit table knows.
        assert_eq!(settled_last_visit(Some(d(20)), d(20), Some(d(10))), None);
        assert_eq!(settled_last_visit(Some(d(20)), d(20), None), None);
        // Nothing cached: ask.
        assert_eq!(settled_last_visit(None, d(20), None), None);
    }
}

#[cfg(test)]
mod row_budget_tests {
    use super::*;
    use caretrail_domain::vocab::{ActivityKind, ContactChannel, VisitPolicy};
    use caretrail_domain::{ContactId, DirectorId, ModelWorkerId, PairingId};
    use futures::FutureExt;

    fn envelope(position: u64, event: Event) -> Envelope {
        Envelope {
            position,
            event_id: Uuid::from_u128(position as u128),
            stream_id: String::new(),
            event_type: String::new(),
            business_date: None,
            recorded_at_us: 0,
            actor_id: String::new(),
            actor_role: String::new(),
            event,
        }
    }

    /// Links are full (a budget of one) and a batch both assigns a new pairing and logs an
    /// activity on a stored pairing that is not cached: the activity's link, read before the
    /// batch, must survive the assignment, or its timeline row is lost.
    #[test]
    fn a_pairing_assigned_mid_batch_keeps_the_links_the_batch_read() {
        let mut raw = rusqlite::Connection::open_in_memory().unwrap();
        let conn = &mut Conn::Lite(&mut raw);
        let g = 1;
        let day = NaiveDate::from_ymd_opt(2021, 10, 1).unwrap();
        create_tables(conn, g, Indexes::All)
            .now_or_never()
            .unwrap()
            .unwrap();
        let stored = PairRow {
            id: Uuid::from_u128(1),
            director_id: Uuid::from_u128(21),
            model_worker_id: Uuid::from_u128(11),
            effective_from: day,
            ..PairRow::default()
        };
        sql::upsert(conn, g, std::slice::from_ref(&stored))
            .now_or_never()
            .unwrap()
            .unwrap();
        let mut applier = Applier::new(g, false).with_budgets(Budgets {
            links: 1,
            ..Budgets::default()
        });
        let assigned = Event::PairAssigned(ev::PairAssigned {
            pairing_id: PairingId(Uuid::from_u128(2)),
            director_id: DirectorId(Uuid::from_u128(22)),
            model_worker_id: ModelWorkerId(Uuid::from_u128(12)),
            effective_from: day,
            visit_policy: VisitPolicy::default(),
        });
        let activity = Event::PairActivityLogged(ev::PairActivityLogged {
            pairing_id: PairingId(stored.id),
            activity_id: Uuid::from_u128(99),
            kind: ActivityKind::Contact,
            on: day,
        });
        applier
            .apply_batch(conn, &[envelope(1, assigned), envelope(2, activity)])
            .now_or_never()
            .unwrap()
            .unwrap();
        let timeline = sql::dump(conn, g, &TimelineRow::DEF)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(timeline.len(), 2, "{timeline:?}");
        assert!(timeline[1].contains(&stored.model_worker_id.to_string()));
    }

    /// A contact with a director who is not cached leaves a pending date; when a later batch
    /// of the same transaction reads that director's row (to end the term), the row must take
    /// the date over, or the flush would write the row back with the older date and lose it.
    #[test]
    fn a_director_row_read_after_an_uncached_contact_keeps_the_contact_date() {
        let mut raw = rusqlite::Connection::open_in_memory().unwrap();
        let conn = &mut Conn::Lite(&mut raw);
        let g = 1;
        let day = |d| NaiveDate::from_ymd_opt(2021, 10, d).unwrap();
        create_tables(conn, g, Indexes::All)
            .now_or_never()
            .unwrap()
            .unwrap();
        let director = Uuid::from_u128(7);
        let stored = DirRow {
            id: director,
            role: "standing_director".into(),
            term_from: day(1),
            last_contact_on: Some(day(2)),
            ..DirRow::default()
        };
        sql::upsert(conn, g, std::slice::from_ref(&stored))
            .now_or_never()
            .unwrap()
            .unwrap();

        // An applier that did not build the table: a miss is not an absent row.
        let mut applier = Applier::new(g, false);
        let contact = Event::ContactRecorded(ev::ContactRecorded {
            contact_id: ContactId(Uuid::from_u128(8)),
            pairing_id: PairingId(Uuid::from_u128(9)),
            director_id: DirectorId(director),
            model_worker_id: ModelWorkerId(Uuid::from_u128(10)),
            on: day(20),
            channel: ContactChannel::Phone,
            note: None,
        });
        applier
            .apply_events(conn, &[envelope(1, contact)])
            .now_or_never()
            .unwrap()
            .unwrap();
        assert!(
            applier.dir.get(director).is_none(),
            "the contact read the row"
        );
        let ended = Event::DirectorTermEnded(ev::DirectorTermEnded {
            director_id: DirectorId(director),
            ended_on: day(31),
        });
        applier
            .apply_events(conn, &[envelope(2, ended)])
            .now_or_never()
            .unwrap()
            .unwrap();
        applier.flush(conn).now_or_never().unwrap().unwrap();

        let rows = sql::load_by_id::<DirRow>(conn, g, &[director])
            .now_or_never()
            .unwrap()
            .unwrap();
        let (_, row) = &rows[0];
        assert_eq!(row.term_ended_on, Some(day(31)));
        assert_eq!(row.last_contact_on, Some(day(20)));
    }
}
