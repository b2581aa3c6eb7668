//! The director table's handlers: appointment, term, pairing and contacts (a contact raises
//! the director's latest contact date and counts in the year's engagement).

use super::*;

impl Applier {
    /// A director's appointment, term, pairing and contacts.
    /// [`Applier::apply`] sends only these events here.
    pub(super) fn apply_director_event(&mut self, env: &Envelope) -> Result<()> {
        use Event as E;
        match &env.event {
            E::DirectorAppointed(e) => {
                self.directors.put(
                    e.director_id.0,
                    DirectorRow {
                        id: e.director_id.0,
                        role: enum_text(&e.role),
                        name_sealed: sealed_json(&e.name),
                        name_event: Some(env.event_id),
                        term_from: e.term.from,
                        ..DirectorRow::default()
                    },
                );
            }
            E::DirectorTermEnded(e) => {
                if let Some(d) = self.directors.get_mut(e.director_id.0) {
                    d.term_ended_on = Some(e.ended_on);
                }
            }
            E::DirectorPaired(e) => {
                if let Some(d) = self.directors.get_mut(e.director_id.0) {
                    d.pairing_id = Some(e.pairing_id.0);
                    d.model_worker_id = Some(e.model_worker_id.0);
                }
            }
            E::DirectorUnpaired(e) => {
                if let Some(d) = self.directors.get_mut(e.director_id.0)
                    && d.pairing_id == Some(e.pairing_id.0)
                {
                    d.pairing_id = None;
                    d.model_worker_id = None;
                }
            }
            E::ContactRecorded(e) => {
                let id = e.director_id.0;
                if let Some(d) = self.directors.get_mut(id) {
                    d.last_contact_on = max_date(d.last_contact_on, e.on);
                } else if !self.directors.fresh && !self.directors.rows.contains_key(&id) {
                    // Not cached: raise the stored date at the next flush instead of
                    // reading the row now (a row known to be absent gets nothing, as
                    // before).
                    let pending = self.contacts.entry(id).or_insert(e.on);
                    *pending = (*pending).max(e.on);
                }
                self.year(e.director_id.0, e.on.year()).contacts += 1;
                self.timeline(env, e.model_worker_id.0);
            }
            _ => {}
        }
        Ok(())
    }
}
