//! A model worker's file (dashboard 4): profile, pairing history and a page of the care
//! timeline, whose entries are read from the log at the positions the timeline keeps.

use super::*;

/// Dashboard 4: a model worker's file.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ModelWorkerFile {
    pub model_worker_id: Uuid,
    pub name: Shown,
    pub honour: String,
    pub region_code: String,
    pub county_code: String,
    pub city_code: Option<String>,
    pub registered_on: NaiveDate,
    pub in_hardship: bool,
    pub hardship_tier: Option<String>,
    pub hardship_since: Option<NaiveDate>,
    pub died_on: Option<NaiveDate>,
    pub erased: bool,
    pub last_visit_on: Option<NaiveDate>,
    pub visits: i64,
    pub open_issues: i64,
    pub pairings: Vec<PairingHistory>,
    pub timeline: Paged<TimelineEntry>,
}

/// One pairing in a model worker's history.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct PairingHistory {
    pub pairing_id: Uuid,
    pub director_id: Uuid,
    pub director_name: Shown,
    pub effective_from: NaiveDate,
    pub ended_on: Option<NaiveDate>,
    pub end_reason: Option<String>,
    pub last_visit_on: Option<NaiveDate>,
}

/// One event of the care timeline, with who recorded it and when (both timestamps).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TimelineEntry {
    pub position: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub stream_id: String,
    pub business_date: Option<NaiveDate>,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub actor_id: String,
    pub actor_role: String,
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
        let mut conn = tx.conn();
        let (mw, pairs, dirs, timeline) = (
            physical(g, "model_workers"),
            physical(g, "pairings"),
            physical(g, "directors"),
            physical(g, "timeline"),
        );
        use ColType::{Int as I, Text as T};
        let mut q = Q::new();
        let id = q.text(model_worker_id.to_string());
        let rows = q
            .fetch(
                &mut conn,
                &format!(
                    "SELECT name_sealed, name_event, erased, honour, region_code, county_code, \
                     city_code, registered_on, in_hardship, hardship_tier, hardship_since, \
                     died_on, last_visit_on, visits, open_issues FROM {mw} WHERE id = {id}"
                ),
                &[T, T, I, T, T, T, T, T, I, T, T, T, T, I, I],
            )
            .await?;
        let Some(m) = rows.into_iter().next() else {
            return Ok(None);
        };
        let pairings = q
            .fetch(
                &mut conn,
                &format!(
                    "SELECT p.id, p.director_id, d.name_sealed, d.name_event, d.erased, \
                     p.effective_from, p.ended_on, p.end_reason, p.last_visit_on \
                     FROM {pairs} p LEFT JOIN {dirs} d ON d.id = p.director_id \
                     WHERE p.model_worker_id = {id} ORDER BY p.effective_from, p.id"
                ),
                &[T, T, T, T, I, T, T, T, T],
            )
            .await?;
        let page = Page {
            limit: limit.clamp(1, 500),
            offset: 0,
        };
        let mut q2 = Q::new();
        let id2 = q2.text(model_worker_id.to_string());
        let after_p = q2.int(after);
        let l = q2.int(i64::from(page.limit) + 1);
        let positions = q2
            .fetch(
                &mut conn,
                &format!(
                    "SELECT position FROM {timeline} \
                     WHERE model_worker_id = {id2} AND position > {after_p} \
                     ORDER BY position LIMIT {l}"
                ),
                &[I],
            )
            .await?;
        drop(tx);
        let positions: Vec<u64> = positions.iter().map(|r| int(&r[0]) as u64).collect();
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
                pairing_id: uuid(&p[0]).unwrap_or_default(),
                director_id: uuid(&p[1]).unwrap_or_default(),
                director_name: show(keys, access, text(&p[2]), uuid(&p[3]), int(&p[4]) != 0)
                    .await?,
                effective_from: date(&p[5]).unwrap_or_default(),
                ended_on: date(&p[6]),
                end_reason: text(&p[7]),
                last_visit_on: date(&p[8]),
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
            name: show(keys, access, text(&m[0]), uuid(&m[1]), int(&m[2]) != 0).await?,
            honour: text(&m[3]).unwrap_or_default(),
            region_code: text(&m[4]).unwrap_or_default(),
            county_code: text(&m[5]).unwrap_or_default(),
            city_code: text(&m[6]),
            registered_on: date(&m[7]).unwrap_or_default(),
            in_hardship: int(&m[8]) != 0,
            hardship_tier: text(&m[9]),
            hardship_since: date(&m[10]),
            died_on: date(&m[11]),
            erased: int(&m[2]) != 0,
            last_visit_on: date(&m[12]),
            visits: int(&m[13]),
            open_issues: int(&m[14]),
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
