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
//!
//! Layout: the tables are declared in [`tables`], the row cache is [`cache`], and the handlers
//! are grouped by the read model an event mostly changes ([`model_worker`], [`director`],
//! [`pairing`], [`visit`], [`issue`]); `Applier::apply` dispatches each event to its family.
//! This module keeps the applier itself: its caches and budgets, the bulk prefetch of the rows
//! a batch names, and the flush.

use std::collections::{HashMap, HashSet};

use caretrail_domain::event::{self as ev, Event};
use caretrail_domain::vocab::{Gift, GiftKind, Participant, ParticipantRole};
use caretrail_domain::{Personal, RegionCode, text};
use caretrail_store::RecordedEvent;
use chrono::{Datelike, Days, NaiveDate};
use uuid::Uuid;

use crate::error::{ProjectionError, Result};
use crate::sql::{self, ColType, Conn, Row, TableDef, Val, table};

mod cache;
mod director;
mod envelope;
mod issue;
mod model_worker;
mod pairing;
mod tables;
mod visit;

use cache::Cache;
pub use envelope::{Envelope, decode, decode_event};
pub use tables::*;

/// Issue states that count as open.
pub const OPEN_STATES: &[&str] = &["raised", "acknowledged", "escalated", "reopened"];

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
    model_workers: Cache<ModelWorkerRow>,
    directors: Cache<DirectorRow>,
    bodies: Cache<BodyRow>,
    pairings: Cache<PairingRow>,
    visits: Cache<VisitRow>,
    issues: Cache<IssueRow>,
    months: HashMap<(String, String), GiftMonthRow>,
    years: HashMap<(Uuid, i64), DirectorYearRow>,
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
            model_workers: Cache::new(fresh),
            directors: Cache::new(fresh),
            bodies: Cache::new(fresh),
            pairings: Cache::new(fresh),
            visits: Cache::new(fresh),
            issues: Cache::new(fresh),
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
        self.model_workers.rows.len()
            + self.directors.rows.len()
            + self.bodies.rows.len()
            + self.pairings.rows.len()
            + self.visits.rows.len()
            + self.issues.rows.len()
            + self.contacts.len() / 16
    }

    /// True when the cached rows (visits of the open transaction included) have reached the
    /// budget: the caller should flush now, and [`Applier::flush`] then forgets them.
    pub fn over_budget(&self) -> bool {
        self.cached_rows() >= self.budgets.rows
    }

    /// The generation whose tables this applier writes.
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
        let (
            mut worker_ids,
            mut director_ids,
            mut pairing_ids,
            mut visit_ids,
            mut issue_ids,
            mut linked_pairings,
        ) = (
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
                E::HardshipAssessed(e) => worker_ids.push(e.model_worker_id.0),
                E::HardshipExited(e) => worker_ids.push(e.model_worker_id.0),
                E::ModelWorkerRelocated(e) => worker_ids.push(e.model_worker_id.0),
                E::ModelWorkerDied(e) => worker_ids.push(e.model_worker_id.0),
                E::ModelWorkerPaired(e) => worker_ids.push(e.model_worker_id.0),
                E::ModelWorkerUnpaired(e) => worker_ids.push(e.model_worker_id.0),
                E::DirectorTermEnded(e) => director_ids.push(e.director_id.0),
                E::DirectorPaired(e) => director_ids.push(e.director_id.0),
                E::DirectorUnpaired(e) => director_ids.push(e.director_id.0),
                E::PairAssigned(e) => worker_ids.push(e.model_worker_id.0),
                E::PairEnded(e) => pairing_ids.push(e.pairing_id.0),
                E::PairActivityLogged(e) => linked_pairings.push(e.pairing_id.0),
                E::PairActivityWithdrawn(e) => linked_pairings.push(e.pairing_id.0),
                E::VisitRecorded(e) => {
                    worker_ids.push(e.model_worker_id.0);
                    if let Some(p) = e.pairing_id {
                        pairing_ids.push(p.0);
                    }
                }
                E::VisitCorrected(e) => {
                    visit_ids.push(e.visit_id.0);
                    worker_ids.push(e.model_worker_id.0);
                }
                E::VisitVoided(e) => {
                    visit_ids.push(e.visit_id.0);
                    worker_ids.push(e.model_worker_id.0);
                }
                // A contact changes only the director's latest contact date: an uncached
                // director gets a pending date instead of a read (see `contacts`).
                E::ContactRecorded(_) => {}
                E::PersonalDataErased(e) => {
                    worker_ids.push(e.subject_id);
                    director_ids.push(e.subject_id);
                }
                E::IssueRaised(e) => worker_ids.push(e.model_worker_id.0),
                E::IssueResolvedOnSpot(e) => {
                    issue_ids.push(e.issue_id.0);
                    worker_ids.push(e.model_worker_id.0);
                }
                E::IssueAcknowledged(e) => issue_ids.push(e.issue_id.0),
                E::IssueEscalated(e) => issue_ids.push(e.issue_id.0),
                E::BodyResponseRecorded(e) => issue_ids.push(e.issue_id.0),
                E::IssueResolved(e) => {
                    issue_ids.push(e.issue_id.0);
                    worker_ids.push(e.model_worker_id.0);
                }
                E::IssueResolutionConfirmed(e) => issue_ids.push(e.issue_id.0),
                E::IssueClosed(e) => {
                    issue_ids.push(e.issue_id.0);
                    worker_ids.push(e.model_worker_id.0);
                }
                E::IssueReopened(e) => {
                    issue_ids.push(e.issue_id.0);
                    worker_ids.push(e.model_worker_id.0);
                }
                E::ModelWorkerRegistered(_)
                | E::DirectorAppointed(_)
                | E::IssueProgressNoted(_)
                | E::BodyRegistered(_) => {}
                // Integrations' subscriptions are no dashboard's concern.
                E::SubscriptionCreated(_)
                | E::SubscriptionPaused(_)
                | E::SubscriptionResumed(_)
                | E::SubscriptionRewound(_)
                | E::SubscriptionSecretRotated(_)
                | E::SubscriptionDisabled(_)
                | E::SubscriptionDeleted(_)
                | E::AccountCreated(_)
                | E::AccountRoleChanged(_)
                | E::AccountDisabled(_)
                | E::AccountEnabled(_)
                | E::AccountPasswordSet(_) => {}
            }
        }
        let g = self.generation;
        self.model_workers.ensure(conn, g, worker_ids).await?;
        for id in self.directors.ensure(conn, g, director_ids).await? {
            self.take_pending_contact(id);
        }
        for id in self.pairings.ensure(conn, g, pairing_ids).await? {
            self.link_pairing(id);
        }
        self.visits.ensure(conn, g, visit_ids).await?;
        self.issues.ensure(conn, g, issue_ids).await?;
        self.ensure_links(conn, linked_pairings).await
    }

    /// Remembers a cached pairing's model worker while the links are under their budget.
    /// It never drops links: the batch being applied may rely on them (only
    /// [`Applier::ensure_links`], before a batch, starts them over), and a pairing that is
    /// not linked here is cached, so this batch finds its model worker anyway.
    fn link_pairing(&mut self, id: Uuid) {
        if let Some(m) = self.pairings.get(id).map(|p| p.model_worker_id)
            && self.pair_links.len() < self.budgets.links
        {
            self.pair_links.insert(id, m);
        }
    }

    /// A pairing's model worker, from the cached row or the links.
    fn pairing_model_worker(&self, id: Uuid) -> Option<Uuid> {
        self.pairings
            .get(id)
            .map(|p| p.model_worker_id)
            .or_else(|| self.pair_links.get(&id).copied())
    }

    /// Makes sure every pairing among `ids` (the pair activities of the batch about to be
    /// applied) is cached or linked: reads the model worker of the others, one narrow column
    /// instead of the whole row. When the links would outgrow their budget they start over
    /// first, and the batch's own are read again, so none it needs is missing.
    async fn ensure_links(&mut self, conn: &mut Conn<'_>, mut ids: Vec<Uuid>) -> Result<()> {
        if self.pairings.fresh {
            // Every pairing of the table is cached.
            return Ok(());
        }
        ids.retain(|id| !self.pairings.rows.contains_key(id));
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
            PairingRow::DEF.name,
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
            && let Some(d) = self.directors.get_mut(id)
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
        let t = sql::physical(self.generation, DirectorRow::DEF.name);
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

    /// Applies one event: a dispatch to the handlers of its family, each in the module of
    /// the read model it mostly changes.
    async fn apply(&mut self, conn: &mut Conn<'_>, env: &Envelope) -> Result<()> {
        use Event as E;
        match &env.event {
            E::ModelWorkerRegistered(_)
            | E::HardshipAssessed(_)
            | E::HardshipExited(_)
            | E::ModelWorkerRelocated(_)
            | E::ModelWorkerDied(_)
            | E::ModelWorkerPaired(_)
            | E::ModelWorkerUnpaired(_)
            | E::PersonalDataErased(_) => self.apply_model_worker_event(conn, env).await,
            E::DirectorAppointed(_)
            | E::DirectorTermEnded(_)
            | E::DirectorPaired(_)
            | E::DirectorUnpaired(_)
            | E::ContactRecorded(_) => self.apply_director_event(env),
            E::PairAssigned(_)
            | E::PairEnded(_)
            | E::PairActivityLogged(_)
            | E::PairActivityWithdrawn(_) => self.apply_pairing_event(env),
            E::VisitRecorded(_) | E::VisitCorrected(_) | E::VisitVoided(_) => {
                self.apply_visit_event(conn, env).await
            }
            E::BodyRegistered(_)
            | E::IssueRaised(_)
            | E::IssueResolvedOnSpot(_)
            | E::IssueResolved(_)
            | E::IssueAcknowledged(_)
            | E::IssueEscalated(_)
            | E::BodyResponseRecorded(_)
            | E::IssueProgressNoted(_)
            | E::IssueResolutionConfirmed(_)
            | E::IssueClosed(_)
            | E::IssueReopened(_) => self.apply_issue_event(env),
            E::SubscriptionCreated(_)
            | E::SubscriptionPaused(_)
            | E::SubscriptionResumed(_)
            | E::SubscriptionRewound(_)
            | E::SubscriptionSecretRotated(_)
            | E::SubscriptionDisabled(_)
            | E::SubscriptionDeleted(_)
            // Accounts are who may sign in, not care: no dashboard shows them.
            | E::AccountCreated(_)
            | E::AccountRoleChanged(_)
            | E::AccountDisabled(_)
            | E::AccountEnabled(_)
            | E::AccountPasswordSet(_) => Ok(()),
        }
    }

    /// Writes every dirty row and every aggregate delta, then bounds the row caches.
    pub async fn flush(&mut self, conn: &mut Conn<'_>) -> Result<()> {
        let g = self.generation;
        self.model_workers.flush(conn, g).await?;
        self.directors.flush(conn, g).await?;
        self.flush_contacts(conn).await?;
        self.bodies.flush(conn, g).await?;
        self.pairings.flush(conn, g).await?;
        self.visits.flush(conn, g).await?;
        self.issues.flush(conn, g).await?;
        let mut months: Vec<GiftMonthRow> =
            std::mem::take(&mut self.months).into_values().collect();
        months.sort_by(|a, b| (&a.month, &a.county_code).cmp(&(&b.month, &b.county_code)));
        sql::upsert(conn, g, &months).await?;
        let mut years: Vec<DirectorYearRow> =
            std::mem::take(&mut self.years).into_values().collect();
        years.sort_by_key(|y| (y.director_id, y.year));
        sql::upsert(conn, g, &years).await?;
        // A visit row is written once and read again only by a rare correction or void, so
        // visits are not kept between flushes: they were a third of the cached rows.
        self.visits.trim(0);
        // A closed issue takes another event only when it is reopened (rare): closed issues
        // leave the cache, so it holds the open ones instead of every issue ever raised.
        self.issues.forget_where(|i| i.state == "closed");
        // Over the budget, every table starts over: the rows are written, and the next
        // batches read back only the ones they touch.
        if self.over_budget() {
            self.model_workers.trim(0);
            self.directors.trim(0);
            self.bodies.trim(0);
            self.pairings.trim(0);
            self.issues.trim(0);
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

#[cfg(test)]
mod tests {
    use super::visit::settled_last_visit;
    use chrono::NaiveDate;

    fn october(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2021, 10, day).unwrap()
    }

    #[test]
    fn the_cached_latest_visit_settles_changes_to_earlier_visits_without_a_query() {
        // An earlier visit moved or voided: the latest is another, unchanged visit.
        assert_eq!(
            settled_last_visit(Some(october(20)), october(5), Some(october(9))),
            Some(Some(october(20)))
        );
        assert_eq!(
            settled_last_visit(Some(october(20)), october(5), None),
            Some(Some(october(20)))
        );
        // An earlier visit moved past the latest becomes the latest.
        assert_eq!(
            settled_last_visit(Some(october(20)), october(5), Some(october(25))),
            Some(Some(october(25)))
        );
        // The latest visit moved later: still the latest.
        assert_eq!(
            settled_last_visit(Some(october(20)), october(20), Some(october(22))),
            Some(Some(october(22)))
        );
        // The latest visit moved earlier or was voided: only the visit table knows.
        assert_eq!(
            settled_last_visit(Some(october(20)), october(20), Some(october(10))),
            None
        );
        assert_eq!(
            settled_last_visit(Some(october(20)), october(20), None),
            None
        );
        // Nothing cached: ask.
        assert_eq!(settled_last_visit(None, october(20), None), None);
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
        let stored = PairingRow {
            id: Uuid::from_u128(1),
            director_id: Uuid::from_u128(21),
            model_worker_id: Uuid::from_u128(11),
            effective_from: day,
            ..PairingRow::default()
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
        let stored = DirectorRow {
            id: director,
            role: "standing_director".into(),
            term_from: day(1),
            last_contact_on: Some(day(2)),
            ..DirectorRow::default()
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
            applier.directors.get(director).is_none(),
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

        let rows = sql::load_by_id::<DirectorRow>(conn, g, &[director])
            .now_or_never()
            .unwrap()
            .unwrap();
        let (_, row) = &rows[0];
        assert_eq!(row.term_ended_on, Some(day(31)));
        assert_eq!(row.last_contact_on, Some(day(20)));
    }
}
