//! The issues board's handlers, from raised to closed or reopened, and the bodies issues are
//! escalated to.

use super::*;

impl Applier {
    /// An issue's life from raised to closed (or reopened), and the bodies issues go to.
    /// [`Applier::apply`] sends only these events here.
    pub(super) fn apply_issue_event(&mut self, env: &Envelope) -> Result<()> {
        use Event as E;
        match &env.event {
            E::BodyRegistered(e) => {
                self.bodies.put(
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
            E::IssueRaised(e) => {
                let (county, city, director) = self
                    .model_workers
                    .get(e.model_worker_id.0)
                    .map(|m| (m.county_code.clone(), m.city_code.clone(), m.director_id))
                    .unwrap_or_default();
                self.issues.put(
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
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
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
                if let Some(i) = self.issues.get_mut(issue_id.0) {
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
                if was_open && let Some(m) = self.model_workers.get_mut(model_worker_id.0) {
                    m.open_issues -= 1;
                }
                self.timeline(env, model_worker_id.0);
            }
            E::IssueAcknowledged(e) => {
                if let Some(i) = self.issues.get_mut(e.issue_id.0) {
                    if OPEN_STATES.contains(&i.state.as_str()) {
                        i.state = "acknowledged".into();
                    }
                    i.owner_id = Some(e.owner.0);
                    i.respond_by = Some(e.respond_by);
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::IssueEscalated(e) => {
                if let Some(i) = self.issues.get_mut(e.issue_id.0) {
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
                if let Some(i) = self.issues.get_mut(e.issue_id.0) {
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
                if let Some(i) = self.issues.get_mut(e.issue_id.0) {
                    i.state = "confirmed".into();
                }
                self.timeline(env, e.model_worker_id.0);
            }
            E::IssueClosed(e) => {
                let mut was_open = false;
                if let Some(i) = self.issues.get_mut(e.issue_id.0) {
                    was_open = OPEN_STATES.contains(&i.state.as_str());
                    i.state = "closed".into();
                    i.closed_on = Some(e.on);
                    if i.days_to_resolve.is_none() {
                        i.days_to_resolve = Some(days_between(i.raised_on, e.on));
                    }
                }
                let mut director = None;
                if let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
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
                if let Some(i) = self.issues.get_mut(e.issue_id.0) {
                    was_open = OPEN_STATES.contains(&i.state.as_str());
                    i.state = "reopened".into();
                    i.resolved_on = None;
                    i.closed_on = None;
                    i.days_to_resolve = None;
                    i.reopened += 1;
                }
                if !was_open && let Some(m) = self.model_workers.get_mut(e.model_worker_id.0) {
                    m.open_issues += 1;
                }
                self.timeline(env, e.model_worker_id.0);
            }
            _ => {}
        }
        Ok(())
    }
}
