//! The model worker table's handlers: registration, hardship, moves, death, pairing, and the
//! erasure of a person's name (a model worker's or a director's).

use super::*;

impl Applier {
    /// A model worker's registration, hardship, moves, death, pairing and erasure (an erasure clears a director's name too).
    /// [`Applier::apply`] sends only these events here.
    pub(super) async fn apply_model_worker_event(
        &mut self,
        conn: &mut Conn<'_>,
        env: &Envelope,
    ) -> Result<()> {
        use Event as E;
        let g = self.generation;
        match &env.event {
            E::ModelWorkerRegistered(e) => {
                let (county, city) = regions(&e.region_code);
                self.model_workers.put(
                    e.model_worker_id.0,
                    ModelWorkerRow {
                        id: e.model_worker_id.0,
                        honour: enum_text(&e.honour),
                        region_code: e.region_code.as_str(),
                        county_code: county,
                        city_code: city,
                        name_sealed: sealed_json(&e.name),
                        name_event: Some(env.event_id),
                        registered_on: e.registered_on,
                        ..ModelWorkerRow::default()
                    },
                );
                self.timeline(env, e.model_worker_id.0);
            }
            E::HardshipAssessed(e) => {
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
                    m.in_hardship = true;
                    m.hardship_tier = Some(enum_text(&e.tier));
                    m.hardship_since = Some(e.assessed_on);
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::HardshipExited(e) => {
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
                    m.in_hardship = false;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ModelWorkerRelocated(e) => {
                let (county, city) = regions(&e.region_code);
                let mut pairing = None;
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
                    m.region_code = e.region_code.as_str();
                    m.county_code = county.clone();
                    m.city_code = city.clone();
                    pairing = m.pairing_id;
                }
                if let Some(p) = pairing {
                    self.pairings.ensure(conn, g, [p]).await?;
                    if let Some(p) = self.pairings.get_mut(p) {
                        p.county_code = county;
                        p.city_code = city;
                    }
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ModelWorkerDied(e) => {
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
                    m.died_on = Some(e.died_on);
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ModelWorkerPaired(e) => {
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
                    m.pairing_id = Some(e.pairing_id.0);
                    m.director_id = Some(e.director_id.0);
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::ModelWorkerUnpaired(e) => {
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0)
                    && m.pairing_id == Some(e.pairing_id.0)
                {
                    m.pairing_id = None;
                    m.director_id = None;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::PersonalDataErased(e) => {
                let mut is_worker = false;
                if let Some(m) = self.model_workers.get_mut(e.subject_id) {
                    m.name_sealed = None;
                    m.erased = true;
                    is_worker = true;
                }
                if let Some(d) = self.directors.get_mut(e.subject_id) {
                    d.name_sealed = None;
                    d.erased = true;
                }
                if is_worker {
                    self.timeline(env, e.subject_id);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
