//! Decisions about issues: raising, owning, relaying to a body, resolving, confirming,
//! closing and reopening (the issue's lifecycle, `docs/domain.md` section 3).

use super::*;

impl Decider<'_> {
    pub(super) fn decide_issue(&mut self, command: &Command) -> Result<(), Rejection> {
        use Command as K;
        use IssueStatus as St;
        let id = match command {
            K::RaiseIssue(c) => {
                if self.states.issue(c.issue_id)?.info.is_some() {
                    return Err(Rejection::IssueAlreadyRaised);
                }
                self.model_worker(c.model_worker_id)?;
                if let Some(v) = c.visit_id {
                    let visit = self
                        .states
                        .visit(v)?
                        .info
                        .as_ref()
                        .ok_or(Rejection::UnknownVisit)?;
                    if visit.voided {
                        return Err(Rejection::VisitVoided);
                    }
                    if visit.model_worker_id != c.model_worker_id {
                        return Err(Rejection::VisitModelWorkerMismatch);
                    }
                }
                let event = IssueRaised {
                    issue_id: c.issue_id,
                    model_worker_id: c.model_worker_id,
                    visit_id: c.visit_id,
                    category: c.category,
                    description: required(&c.description, "description")?,
                    urgency: c.urgency,
                    on: self.date(c.on, "on")?,
                };
                self.emit(Category::Issue, c.issue_id, event);
                return Ok(());
            }
            K::ResolveOnSpot(c) => c.issue_id,
            K::AcknowledgeIssue(c) => c.issue_id,
            K::EscalateIssue(c) => c.issue_id,
            K::RecordBodyResponse(c) => c.issue_id,
            K::NoteIssueProgress(c) => c.issue_id,
            K::ResolveIssue(c) => c.issue_id,
            K::ConfirmResolution(c) => c.issue_id,
            K::CloseIssue(c) => c.issue_id,
            K::ReopenIssue(c) => c.issue_id,
            _ => return Ok(()),
        };
        let info = self.issue(id)?;
        let mw = info.model_worker_id;
        // The refusal for a step that is not allowed in the current status.
        let wrong_status = |status: St| match status {
            St::Raised => Rejection::IssueNotAcknowledged,
            St::Acknowledged | St::Escalated => Rejection::IssueAlreadyAcknowledged,
            St::Resolved | St::Confirmed => Rejection::IssueAlreadyResolved,
            St::Closed => Rejection::IssueClosed,
        };
        let event: Event = match command {
            K::ResolveOnSpot(c) => {
                if info.status != St::Raised {
                    return Err(wrong_status(info.status));
                }
                let on = self.issue_date(info, c.on)?;
                IssueResolvedOnSpot {
                    issue_id: id,
                    model_worker_id: mw,
                    summary: required(&c.summary, "summary")?,
                    on,
                }
                .into()
            }
            K::AcknowledgeIssue(c) => {
                if info.status != St::Raised {
                    return Err(wrong_status(info.status));
                }
                let on = self.issue_date(info, c.on)?;
                self.director(c.owner)?;
                if c.respond_by < on {
                    return Err(Rejection::DueDateBeforeStep);
                }
                IssueAcknowledged {
                    issue_id: id,
                    model_worker_id: mw,
                    owner: c.owner,
                    respond_by: c.respond_by,
                    on,
                }
                .into()
            }
            K::EscalateIssue(c) => {
                if !matches!(info.status, St::Acknowledged | St::Escalated) {
                    return Err(wrong_status(info.status));
                }
                let on = self.issue_date(info, c.on)?;
                self.body(c.to_body)?;
                if c.due_by < on {
                    return Err(Rejection::DueDateBeforeStep);
                }
                IssueEscalated {
                    issue_id: id,
                    model_worker_id: mw,
                    to_body: c.to_body,
                    channel: c.channel,
                    due_by: c.due_by,
                    on,
                }
                .into()
            }
            K::RecordBodyResponse(c) => {
                match info.status {
                    St::Escalated => {}
                    St::Raised | St::Acknowledged => return Err(Rejection::IssueNotEscalated),
                    other => return Err(wrong_status(other)),
                }
                if info.escalated_to != Some(c.body_id) {
                    return Err(Rejection::BodyNotEscalatedTo);
                }
                let on = self.issue_date(info, c.on)?;
                let is_redirect = c.response == BodyResponseKind::Redirected;
                if is_redirect != c.redirected_to.is_some() || (!is_redirect && c.due_by.is_some())
                {
                    return Err(Rejection::RedirectTargetInvalid);
                }
                if let Some(to) = c.redirected_to {
                    self.body(to)?;
                }
                if c.due_by.is_some_and(|due| due < on) {
                    return Err(Rejection::DueDateBeforeStep);
                }
                BodyResponseRecorded {
                    issue_id: id,
                    model_worker_id: mw,
                    body_id: c.body_id,
                    response: c.response,
                    redirected_to: c.redirected_to,
                    due_by: c.due_by,
                    note: optional(&c.note, "note")?,
                    on,
                }
                .into()
            }
            K::NoteIssueProgress(c) => {
                if info.status == St::Closed {
                    return Err(Rejection::IssueClosed);
                }
                let on = self.issue_date(info, c.on)?;
                IssueProgressNoted {
                    issue_id: id,
                    model_worker_id: mw,
                    note: required(&c.note, "note")?,
                    on,
                }
                .into()
            }
            K::ResolveIssue(c) => {
                if !matches!(info.status, St::Acknowledged | St::Escalated) {
                    return Err(wrong_status(info.status));
                }
                let on = self.issue_date(info, c.on)?;
                if let Some(b) = c.resolved_by {
                    self.body(b)?;
                }
                IssueResolved {
                    issue_id: id,
                    model_worker_id: mw,
                    outcome: c.outcome,
                    summary: required(&c.summary, "summary")?,
                    resolved_by: c.resolved_by,
                    on,
                }
                .into()
            }
            K::ConfirmResolution(c) => {
                match info.status {
                    St::Resolved => {}
                    St::Confirmed => return Err(Rejection::IssueAlreadyConfirmed),
                    St::Closed => return Err(Rejection::IssueClosed),
                    _ => return Err(Rejection::IssueNotResolved),
                }
                let on = self.issue_date(info, c.on)?;
                IssueResolutionConfirmed {
                    issue_id: id,
                    model_worker_id: mw,
                    via: c.via,
                    satisfaction: c.satisfaction,
                    on,
                }
                .into()
            }
            K::CloseIssue(c) => {
                let override_reason = match &c.override_reason {
                    Some(r) => Some(required(r, "override_reason")?),
                    None => None,
                };
                match (info.status, &override_reason) {
                    (St::Confirmed, _) | (St::Resolved, Some(_)) => {}
                    (St::Resolved, None) => return Err(Rejection::IssueNotConfirmed),
                    (St::Closed, _) => return Err(Rejection::IssueClosed),
                    _ => return Err(Rejection::IssueNotResolved),
                }
                let on = self.issue_date(info, c.on)?;
                IssueClosed {
                    issue_id: id,
                    model_worker_id: mw,
                    override_reason,
                    on,
                }
                .into()
            }
            K::ReopenIssue(c) => {
                if !matches!(info.status, St::Resolved | St::Confirmed | St::Closed) {
                    return Err(Rejection::IssueNotResolved);
                }
                let on = self.issue_date(info, c.on)?;
                IssueReopened {
                    issue_id: id,
                    model_worker_id: mw,
                    reason: required(&c.reason, "reason")?,
                    on,
                }
                .into()
            }
            _ => return Ok(()),
        };
        self.out.push((stream_of(Category::Issue, id), event));
        Ok(())
    }
}
