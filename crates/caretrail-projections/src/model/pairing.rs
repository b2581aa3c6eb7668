//! The pairing table's handlers (assignment, end, activities) and its due dates.

use super::*;

pub(super) fn set_due(p: &mut PairingRow) {
    let base = p.last_visit_on.unwrap_or(p.effective_from);
    p.due_on = base
        .checked_add_days(Days::new(p.max_days.max(0) as u64))
        .unwrap_or(base);
    p.due_soon_from = p
        .due_on
        .checked_sub_days(Days::new(p.due_soon_days.max(0) as u64))
        .unwrap_or(p.due_on);
}

impl Applier {
    /// A pairing's assignment, end and activities.
    /// [`Applier::apply`] sends only these events here.
    pub(super) fn apply_pairing_event(&mut self, env: &Envelope) -> Result<()> {
        use Event as E;
        match &env.event {
            E::PairAssigned(e) => {
                let (county, city) = self
                    .model_workers
                    .get(e.model_worker_id.0)
                    .map(|m| (m.county_code.clone(), m.city_code.clone()))
                    .unwrap_or_default();
                let mut row = PairingRow {
                    id: e.pairing_id.0,
                    director_id: e.director_id.0,
                    model_worker_id: e.model_worker_id.0,
                    city_code: city,
                    county_code: county,
                    effective_from: e.effective_from,
                    max_days: i64::from(e.visit_policy.max_days_between_visits),
                    due_soon_days: i64::from(e.visit_policy.due_soon_window_days),
                    active: true,
                    ..PairingRow::default()
                };
                set_due(&mut row);
                self.pairings.put(e.pairing_id.0, row);
                self.link_pairing(e.pairing_id.0);
                self.timeline(env, e.model_worker_id.0);
            }
            E::PairEnded(e) => {
                if let Some(p) = self.pairings.get_mut(e.pairing_id.0) {
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
            _ => {}
        }
        Ok(())
    }
}
