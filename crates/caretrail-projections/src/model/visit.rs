//! The visit table's handlers (recording, correction, void) and the visit's share of the
//! additive aggregates (gifts by month and county, engagement by director and year).

use super::pairing::set_due;
use super::*;

/// A visit's gift totals: money in 128 bits, because a visit in an old log may hold amounts
/// no policy capped.
pub(super) struct GiftSums {
    cash: i128,
    goods_fen: i128,
    goods: i64,
    flowers: i64,
}

pub(super) fn gift_sums(gifts: &[Gift]) -> GiftSums {
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

pub(super) fn is_joint(ps: &[Participant]) -> bool {
    ps.iter().any(|p| p.role == ParticipantRole::UnionOfficial)
}

/// The latest visit date after one visit dated `old` moved to `new` (`None`: voided), when
/// `current` (the latest before) settles it without reading the other visits: the visit was
/// strictly earlier than the latest, so the latest one is another visit that did not change.
/// `None` when the visit may have been the latest and the others must be asked.
pub(super) fn settled_last_visit(
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

impl Applier {
    /// A visit's recording, correction or void, and its share of the aggregates.
    /// [`Applier::apply`] sends only these events here.
    pub(super) async fn apply_visit_event(
        &mut self,
        conn: &mut Conn<'_>,
        env: &Envelope,
    ) -> Result<()> {
        use Event as E;
        let g = self.generation;
        match &env.event {
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
                self.visits.put(e.visit_id.0, row);
                if let Some(p) = e.pairing_id.and_then(|p| self.pairings.get_mut(p.0)) {
                    p.last_visit_on = max_date(p.last_visit_on, e.visited_on);
                    set_due(p);
                }
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
                    m.last_visit_on = max_date(m.last_visit_on, e.visited_on);
                    m.visits += 1;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::VisitCorrected(e) => {
                if let Some(old) = self.visits.get(e.visit_id.0).cloned() {
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
                    self.visits.put(e.visit_id.0, new);
                    if date_changed && !old.voided {
                        if let Some(p) = old.pairing_id {
                            self.pairings.ensure(conn, g, [p]).await?;
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
                if let Some(old) = self.visits.get(e.visit_id.0).cloned()
                    && !old.voided
                {
                    self.count_visit(&old, -1)?;
                    if let Some(v) = self.visits.get_mut(e.visit_id.0) {
                        v.voided = true;
                    }
                    if let Some(m) = self.model_workers.get_mut(old.model_worker_id) {
                        m.visits -= 1;
                    }
                    if let Some(p) = old.pairing_id {
                        self.pairings.ensure(conn, g, [p]).await?;
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
            _ => {}
        }
        Ok(())
    }

    pub(super) fn month(&mut self, v: &VisitRow, sign: i64) -> Result<()> {
        let month = format!("{:04}-{:02}", v.visited_on.year(), v.visited_on.month());
        let key = (month.clone(), v.county_code.clone());
        let row = self.months.entry(key).or_insert_with(|| GiftMonthRow {
            month,
            county_code: v.county_code.clone(),
            city_code: v.city_code.clone().unwrap_or_default(),
            ..GiftMonthRow::default()
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

    pub(super) fn year(&mut self, director: Uuid, year: i32) -> &mut DirectorYearRow {
        self.years
            .entry((director, i64::from(year)))
            .or_insert_with(|| DirectorYearRow {
                director_id: director,
                year: i64::from(year),
                ..DirectorYearRow::default()
            })
    }

    /// Adds (`sign` 1) or removes (`sign` -1) a visit's contribution to the aggregates.
    pub(super) fn count_visit(&mut self, v: &VisitRow, sign: i64) -> Result<()> {
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
    pub(super) async fn recompute_last_visits(
        &mut self,
        conn: &mut Conn<'_>,
        pairing: Option<Uuid>,
        model_worker: Uuid,
        old: NaiveDate,
        new: Option<NaiveDate>,
    ) -> Result<()> {
        if let Some(p) = pairing
            && let Some(current) = self.pairings.get(p).map(|r| r.last_visit_on)
        {
            let last = self
                .latest_visit(conn, "pairing_id", p, current, old, new)
                .await?;
            if let Some(row) = self.pairings.get_mut(p) {
                row.last_visit_on = last;
                set_due(row);
            }
        }
        if let Some(current) = self
            .model_workers
            .get(model_worker)
            .map(|r| r.last_visit_on)
        {
            let last = self
                .latest_visit(conn, "model_worker_id", model_worker, current, old, new)
                .await?;
            if let Some(row) = self.model_workers.get_mut(model_worker) {
                row.last_visit_on = last;
            }
        }
        Ok(())
    }

    /// The latest unvoided visit date of the visits whose `column` is `id`, after one dated
    /// `old` moved to `new`: settled from `current` when it can be, asked of the (flushed)
    /// visit table otherwise.
    pub(super) async fn latest_visit(
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
        self.visits.flush(conn, self.generation).await?;
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
}
