//! A model worker's file (dashboard 4): profile, pairing history and a page of the care
//! timeline, whose entries are read from the log at the positions the timeline keeps.

use super::*;

/// Dashboard 4: a model worker's file.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ModelWorkerFile {
    /// The model worker's id.
    pub model_worker_id: Uuid,
    /// The model worker's name, as the reader may see it.
    pub name: Shown,
    /// The honour held (the domain's `Honour`, snake_case).
    pub honour: String,
    /// The current region as recorded (GB/T 2260; may be a retired code).
    pub region_code: String,
    /// `region_code`'s current code (a retired code reads as its successor).
    pub county_code: String,
    /// The prefecture-level city of that region; null for a province-level region.
    pub city_code: Option<String>,
    /// The day the file was opened.
    pub registered_on: NaiveDate,
    /// Whether the model worker is in hardship now.
    pub in_hardship: bool,
    /// The tier of the latest hardship assessment (snake_case); null if never assessed.
    pub hardship_tier: Option<String>,
    /// The date of the latest hardship assessment; null if never assessed.
    pub hardship_since: Option<NaiveDate>,
    /// The date of death, when recorded.
    pub died_on: Option<NaiveDate>,
    /// Whether the model worker's personal data was erased.
    pub erased: bool,
    /// The date of the latest non-voided visit, paired or ad hoc; null when never visited.
    pub last_visit_on: Option<NaiveDate>,
    /// Non-voided visits to this model worker, paired and ad hoc, all time.
    pub visits: i64,
    /// Open issues about this model worker (raised, acknowledged, escalated or reopened).
    pub open_issues: i64,
    /// Every pairing the model worker has had, oldest first.
    pub pairings: Vec<PairingHistory>,
    /// A page of the care timeline in log order; its `next_offset` is the last entry's log position
    /// (pass it as `after`), not an offset.
    pub timeline: Paged<TimelineEntry>,
}

/// One pairing in a model worker's history.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct PairingHistory {
    /// The pairing's id.
    pub pairing_id: Uuid,
    /// The paired director.
    pub director_id: Uuid,
    /// The director's name, as the reader may see it.
    pub director_name: Shown,
    /// The first day of the pairing.
    pub effective_from: NaiveDate,
    /// The last day of the pairing (inclusive); null while it is active.
    pub ended_on: Option<NaiveDate>,
    /// Why it ended (snake_case, e.g. `hardship_exited`, `model_worker_died`,
    /// `director_term_ended`); null while active.
    pub end_reason: Option<String>,
    /// The date of the latest non-voided visit within the pairing; null when never visited.
    pub last_visit_on: Option<NaiveDate>,
}

/// One event of the care timeline, with who recorded it and when (both timestamps).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TimelineEntry {
    /// The event's global log position.
    pub position: i64,
    /// The event's id.
    pub event_id: Uuid,
    /// The event type (e.g. `VisitRecorded`).
    pub event_type: String,
    /// The stream the event belongs to (e.g. `visit-<uuid>`).
    pub stream_id: String,
    /// The Asia/Shanghai calendar day the event is about; null for undated events (corrections,
    /// voids, ...).
    pub business_date: Option<NaiveDate>,
    /// When the event was stored (UTC).
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// Who recorded it: a director's or token's id; the nil UUID for the server itself.
    pub actor_id: String,
    /// The role they acted in (`admin`, `director`, `system`, ...).
    pub actor_role: String,
}

query_row! {
    /// The profile part of a model worker's file.
    ModelWorkerFileRow {
        "model_workers" => {
            name_sealed: Option<String>,
            name_event: Option<Text<Uuid>>,
            erased: Flag,
            honour: Text<String>,
            region_code: Text<String>,
            county_code: Text<String>,
            city_code: Option<String>,
            registered_on: Text<NaiveDate>,
            in_hardship: Flag,
            hardship_tier: Option<String>,
            hardship_since: Option<Text<NaiveDate>>,
            died_on: Option<Text<NaiveDate>>,
            last_visit_on: Option<Text<NaiveDate>>,
            visits: Int,
            open_issues: Int,
        }
    }
}

query_row! {
    /// One pairing of a model worker's history.
    PairingHistoryRow {
        "pairings" => {
            pairing_id ("id"): Text<Uuid>,
            director_id: Text<Uuid>,
            effective_from: Text<NaiveDate>,
            ended_on: Option<Text<NaiveDate>>,
            end_reason: Option<String>,
            last_visit_on: Option<Text<NaiveDate>>,
        },
        "directors" => {
            director_name_sealed ("name_sealed"): Option<String>,
            director_name_event ("name_event"): Option<Text<Uuid>>,
            director_erased ("erased"): Option<Flag>,
            /// The director row's id: NULL when the pairing's director has no row.
            director_row ("id"): Option<Text<Uuid>>,
        },
    }
}

query_row! {
    /// A position of a model worker's timeline.
    TimelinePosition { "timeline" => { position: Int } }
}

impl ReadModels {
    /// Dashboard 4: the file of one model worker, with one page of the timeline (events after
    /// position `after`, in log order).
    #[tracing::instrument(name = "projections.model_worker_file", skip_all)]
    pub async fn model_worker_file(
        &self,
        keys: &KeyRing,
        access: &Access,
        model_worker_id: Uuid,
        after: i64,
        limit: u32,
    ) -> Result<Option<ModelWorkerFile>> {
        let (mut tx, g) = self.begin().await?;
        let (mw, pairs, dirs, timeline) = (
            physical(g, "model_workers"),
            physical(g, "pairings"),
            physical(g, "directors"),
            physical(g, "timeline"),
        );
        let mut q = tx.args();
        let id = q.text(model_worker_id.to_string());
        let rows: Vec<ModelWorkerFileRow> = tx
            .rows(
                &format!(
                    "SELECT name_sealed, name_event, erased, honour, region_code, county_code, \
                     city_code, registered_on, in_hardship, hardship_tier, hardship_since, \
                     died_on, last_visit_on, visits, open_issues FROM {mw} WHERE id = {id}"
                ),
                &q,
            )
            .await?;
        let Some(m) = rows.into_iter().next() else {
            return Ok(None);
        };
        let pairings: Vec<PairingHistoryRow> = tx
            .rows(
                &format!(
                    "SELECT p.id AS pairing_id, p.director_id, \
                     d.name_sealed AS director_name_sealed, \
                     d.name_event AS director_name_event, d.erased AS director_erased, \
                     d.id AS director_row, \
                     p.effective_from, p.ended_on, p.end_reason, p.last_visit_on \
                     FROM {pairs} p LEFT JOIN {dirs} d ON d.id = p.director_id \
                     WHERE p.model_worker_id = {id} ORDER BY p.effective_from, p.id"
                ),
                &q,
            )
            .await?;
        let page = Page {
            limit: limit.clamp(1, 500),
            offset: 0,
        };
        let mut q = tx.args();
        let id = q.text(model_worker_id.to_string());
        let after_p = q.int(after);
        let l = q.int(i64::from(page.limit) + 1);
        let positions: Vec<TimelinePosition> = tx
            .rows(
                &format!(
                    "SELECT position FROM {timeline} \
                     WHERE model_worker_id = {id} AND position > {after_p} \
                     ORDER BY position LIMIT {l}"
                ),
                &q,
            )
            .await?;
        drop(tx);
        let positions: Vec<u64> = positions.iter().map(|r| r.position.0 as u64).collect();
        let events = self.log.read_positions(&positions).await?;
        if let Some(&missing) = positions
            .iter()
            .find(|p| events.binary_search_by_key(*p, |e| e.position).is_err())
        {
            // The read models were built from this log, so every position they hold is in it.
            return Err(ProjectionError::Unreadable {
                position: missing,
                reason: "the timeline names an event the log does not hold".into(),
            });
        }
        let mut history = Vec::new();
        for p in pairings {
            history.push(PairingHistory {
                pairing_id: p.pairing_id.0,
                director_id: p.director_id.0,
                director_name: show(
                    keys,
                    access,
                    "directors",
                    p.director_name_sealed,
                    opt(p.director_name_event),
                    erased("directors", &p.director_row, p.director_erased)?,
                )
                .await?,
                effective_from: p.effective_from.0,
                ended_on: opt(p.ended_on),
                end_reason: p.end_reason,
                last_visit_on: opt(p.last_visit_on),
            });
        }
        let mut entries: Vec<TimelineEntry> = events
            .into_iter()
            .map(|e| TimelineEntry {
                position: e.position as i64,
                event_id: e.event_id,
                event_type: e.event_type,
                stream_id: e.stream_id,
                business_date: e.business_date,
                recorded_at: e.recorded_at,
                actor_id: e.actor_id,
                actor_role: e.actor_role,
            })
            .collect();
        let more = entries.len() > page.limit as usize;
        entries.truncate(page.limit as usize);
        let next = more.then(|| entries.last().map_or(0, |e| e.position));
        Ok(Some(ModelWorkerFile {
            model_worker_id,
            name: show(
                keys,
                access,
                "model_workers",
                m.name_sealed,
                opt(m.name_event),
                m.erased.0,
            )
            .await?,
            honour: m.honour.0,
            region_code: m.region_code.0,
            county_code: m.county_code.0,
            city_code: m.city_code,
            registered_on: m.registered_on.0,
            in_hardship: m.in_hardship.0,
            hardship_tier: m.hardship_tier,
            hardship_since: opt(m.hardship_since),
            died_on: opt(m.died_on),
            erased: m.erased.0,
            last_visit_on: opt(m.last_visit_on),
            visits: m.visits.0,
            open_issues: m.open_issues.0,
            pairings: history,
            timeline: Paged {
                items: entries,
                limit: page.limit,
                offset: 0,
                // The timeline pages by position: pass this as `after` for the next page.
                next_offset: next.map(|p| p as u32),
            },
        }))
    }
}
