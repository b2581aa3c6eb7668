//! Given/when/then tests of the issue lifecycle: raised → (resolved on the spot | acknowledged →
//! escalated… → resolved) → confirmed → closed, and reopening.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

mod common;

use caretrail_domain::Category::*;
use caretrail_domain::command::*;
use caretrail_domain::event::*;
use caretrail_domain::testing::given;
use caretrail_domain::vocab::*;
use caretrail_domain::*;
use chrono::NaiveDate;
use common::*;

fn raise() -> Command {
    RaiseIssue {
        issue_id: I,
        model_worker_id: MW,
        visit_id: None,
        category: IssueCategory::Utilities,
        description: plain("水管堵塞"),
        urgency: Urgency::Normal,
        on: Some(date(2021, 10, 1)),
    }
    .into()
}

fn ack(on: NaiveDate) -> Command {
    AcknowledgeIssue {
        issue_id: I,
        owner: D,
        respond_by: date(2021, 10, 10),
        on: Some(on),
    }
    .into()
}

fn escalate(to: BodyId) -> Command {
    EscalateIssue {
        issue_id: I,
        to_body: to,
        channel: EscalationChannel::Phone,
        due_by: date(2021, 10, 20),
        on: Some(date(2021, 10, 3)),
    }
    .into()
}

fn resolve() -> Command {
    ResolveIssue {
        issue_id: I,
        outcome: ResolutionOutcome::Resolved,
        summary: plain("已疏通"),
        resolved_by: Some(TEAM),
        on: Some(date(2021, 10, 5)),
    }
    .into()
}

fn confirm() -> Command {
    ConfirmResolution {
        issue_id: I,
        via: ConfirmationVia::Visit,
        satisfaction: Satisfaction::Satisfied,
        on: Some(date(2021, 10, 6)),
    }
    .into()
}

fn close(reason: Option<&str>) -> Command {
    CloseIssue {
        issue_id: I,
        override_reason: reason.map(plain),
        on: Some(date(2021, 10, 7)),
    }
    .into()
}

fn reopen() -> Command {
    ReopenIssue {
        issue_id: I,
        reason: plain("又堵了"),
        on: Some(date(2021, 10, 8)),
    }
    .into()
}

fn spot() -> Command {
    ResolveOnSpot {
        issue_id: I,
        summary: plain("当场答复"),
        on: Some(date(2021, 10, 1)),
    }
    .into()
}

fn raised() -> Vec<Command> {
    with(world(), [raise()])
}
fn acked() -> Vec<Command> {
    with(raised(), [ack(date(2021, 10, 2))])
}
fn escalated() -> Vec<Command> {
    with(acked(), [escalate(TEAM)])
}
fn resolved() -> Vec<Command> {
    with(escalated(), [resolve()])
}
fn confirmed() -> Vec<Command> {
    with(resolved(), [confirm()])
}
fn closed() -> Vec<Command> {
    with(confirmed(), [close(None)])
}

fn issue(e: impl Into<Event>) -> (StreamName, Event) {
    (stream(Issue, I), e.into())
}

#[test]
fn raise_issue_is_accepted() {
    given(history(world()))
        .when(raise())
        .then([issue(IssueRaised {
            issue_id: I,
            model_worker_id: MW,
            visit_id: None,
            category: IssueCategory::Utilities,
            description: plain("水管堵塞"),
            urgency: Urgency::Normal,
            on: date(2021, 10, 1),
        })]);
}

#[test]
fn raise_issue_refusals() {
    given(history(raised()))
        .when(raise())
        .then_err("issue_already_raised");
    given(history(vec![]))
        .when(raise())
        .then_err("unknown_model_worker");
    let Command::RaiseIssue(mut c) = raise() else {
        unreachable!()
    };
    c.visit_id = Some(V);
    given(history(world()))
        .when(c.clone())
        .then_err("unknown_visit");
    let mut other = visit(V, P, MW, D, date(2021, 10, 13));
    other.pairing_id = None;
    other.adhoc_reason = Some(plain("临时"));
    other.model_worker_id = MW2;
    given(history(with(world(), [register(MW2), other.into()])))
        .when(c.clone())
        .then_err("visit_model_worker_mismatch");
    let own = visit(V, P, MW, D, date(2021, 10, 13));
    let voided = with(
        paired(),
        [
            own.into(),
            VoidVisit {
                visit_id: V,
                reason: plain("x"),
            }
            .into(),
        ],
    );
    given(history(voided))
        .when(c.clone())
        .then_err("visit_voided");
    c.visit_id = None;
    c.description = plain("");
    given(history(world()))
        .when(c.clone())
        .then_err("required_text_empty");
    c.description = plain("x");
    c.on = Some(date(2022, 1, 1));
    given(history(world())).when(c).then_err("date_in_future");
}

#[test]
fn resolve_on_spot_is_accepted_only_when_raised() {
    given(history(raised()))
        .when(spot())
        .then([issue(IssueResolvedOnSpot {
            issue_id: I,
            model_worker_id: MW,
            summary: plain("当场答复"),
            on: date(2021, 10, 1),
        })]);
    given(history(world()))
        .when(spot())
        .then_err("unknown_issue");
    given(history(acked()))
        .when(spot())
        .then_err("issue_already_acknowledged");
    given(history(resolved()))
        .when(spot())
        .then_err("issue_already_resolved");
    given(history(closed()))
        .when(spot())
        .then_err("issue_closed");
}

#[test]
fn acknowledge_issue_is_accepted() {
    given(history(raised()))
        .when(ack(date(2021, 10, 2)))
        .then([issue(IssueAcknowledged {
            issue_id: I,
            model_worker_id: MW,
            owner: D,
            respond_by: date(2021, 10, 10),
            on: date(2021, 10, 2),
        })]);
}

#[test]
fn acknowledge_issue_refusals() {
    given(history(acked()))
        .when(ack(date(2021, 10, 2)))
        .then_err("issue_already_acknowledged");
    given(history(raised()))
        .when(ack(date(2021, 9, 30)))
        .then_err("issue_date_out_of_order");
    given(history(raised()))
        .when(ack(date(2021, 10, 11)))
        .then_err("due_date_before_step");
    let c = AcknowledgeIssue {
        issue_id: I,
        owner: D2,
        respond_by: date(2021, 10, 10),
        on: Some(date(2021, 10, 2)),
    };
    given(history(raised()))
        .when(c)
        .then_err("unknown_director");
}

#[test]
fn escalate_issue_is_accepted_and_may_repeat() {
    given(history(acked()))
        .when(escalate(TEAM))
        .then([issue(IssueEscalated {
            issue_id: I,
            model_worker_id: MW,
            to_body: TEAM,
            channel: EscalationChannel::Phone,
            due_by: date(2021, 10, 20),
            on: date(2021, 10, 3),
        })]);
    assert!(
        given(history(escalated()))
            .when(escalate(ASSOC))
            .result()
            .is_ok()
    );
}

#[test]
fn escalate_issue_refusals() {
    given(history(raised()))
        .when(escalate(TEAM))
        .then_err("issue_not_acknowledged");
    given(history(acked()))
        .when(escalate(UNION))
        .then_err("unknown_body");
    let late = EscalateIssue {
        issue_id: I,
        to_body: TEAM,
        channel: EscalationChannel::Letter,
        due_by: date(2021, 10, 2),
        on: Some(date(2021, 10, 3)),
    };
    given(history(acked()))
        .when(late)
        .then_err("due_date_before_step");
    given(history(resolved()))
        .when(escalate(TEAM))
        .then_err("issue_already_resolved");
    given(history(closed()))
        .when(escalate(TEAM))
        .then_err("issue_closed");
}

fn respond(body: BodyId, response: BodyResponseKind, to: Option<BodyId>) -> RecordBodyResponse {
    RecordBodyResponse {
        issue_id: I,
        body_id: body,
        response,
        redirected_to: to,
        due_by: None,
        note: None,
        on: Some(date(2021, 10, 4)),
    }
}

#[test]
fn record_body_response_is_accepted_and_redirects() {
    given(history(escalated()))
        .when(respond(TEAM, BodyResponseKind::Accepted, None))
        .then([issue(BodyResponseRecorded {
            issue_id: I,
            model_worker_id: MW,
            body_id: TEAM,
            response: BodyResponseKind::Accepted,
            redirected_to: None,
            due_by: None,
            note: None,
            on: date(2021, 10, 4),
        })]);
    // After a redirect, the new body is the one that answers.
    let redirected = with(
        escalated(),
        [respond(TEAM, BodyResponseKind::Redirected, Some(ASSOC)).into()],
    );
    assert!(
        given(history(redirected.clone()))
            .when(respond(ASSOC, BodyResponseKind::Accepted, None))
            .result()
            .is_ok()
    );
    given(history(redirected))
        .when(respond(TEAM, BodyResponseKind::Accepted, None))
        .then_err("body_not_escalated_to");
}

#[test]
fn record_body_response_refusals() {
    given(history(acked()))
        .when(respond(TEAM, BodyResponseKind::Accepted, None))
        .then_err("issue_not_escalated");
    given(history(escalated()))
        .when(respond(ASSOC, BodyResponseKind::Accepted, None))
        .then_err("body_not_escalated_to");
    given(history(escalated()))
        .when(respond(TEAM, BodyResponseKind::Redirected, None))
        .then_err("redirect_target_invalid");
    given(history(escalated()))
        .when(respond(TEAM, BodyResponseKind::Declined, Some(ASSOC)))
        .then_err("redirect_target_invalid");
    given(history(escalated()))
        .when(respond(TEAM, BodyResponseKind::Redirected, Some(UNION)))
        .then_err("unknown_body");
    let mut early = respond(TEAM, BodyResponseKind::Redirected, Some(ASSOC));
    early.due_by = Some(date(2021, 10, 1));
    given(history(escalated()))
        .when(early)
        .then_err("due_date_before_step");
    given(history(resolved()))
        .when(respond(TEAM, BodyResponseKind::Accepted, None))
        .then_err("issue_already_resolved");
}

#[test]
fn note_issue_progress_is_accepted_until_closed() {
    let note = NoteIssueProgress {
        issue_id: I,
        note: plain("已联系社区"),
        on: Some(date(2021, 10, 4)),
    };
    given(history(escalated()))
        .when(note.clone())
        .then([issue(IssueProgressNoted {
            issue_id: I,
            model_worker_id: MW,
            note: plain("已联系社区"),
            on: date(2021, 10, 4),
        })]);
    given(history(closed()))
        .when(NoteIssueProgress {
            on: Some(date(2021, 10, 9)),
            ..note.clone()
        })
        .then_err("issue_closed");
    given(history(world())).when(note).then_err("unknown_issue");
}

#[test]
fn resolve_issue_is_accepted_from_acknowledged_or_escalated() {
    given(history(escalated()))
        .when(resolve())
        .then([issue(IssueResolved {
            issue_id: I,
            model_worker_id: MW,
            outcome: ResolutionOutcome::Resolved,
            summary: plain("已疏通"),
            resolved_by: Some(TEAM),
            on: date(2021, 10, 5),
        })]);
    assert!(given(history(acked())).when(resolve()).result().is_ok());
}

#[test]
fn resolve_issue_refusals() {
    given(history(raised()))
        .when(resolve())
        .then_err("issue_not_acknowledged");
    given(history(resolved()))
        .when(resolve())
        .then_err("issue_already_resolved");
    given(history(closed()))
        .when(resolve())
        .then_err("issue_closed");
    let Command::ResolveIssue(mut c) = resolve() else {
        unreachable!()
    };
    c.resolved_by = Some(UNION);
    given(history(escalated()))
        .when(c.clone())
        .then_err("unknown_body");
    c.resolved_by = None;
    c.summary = plain(" ");
    given(history(escalated()))
        .when(c)
        .then_err("required_text_empty");
}

#[test]
fn confirm_resolution_is_accepted_once_resolved() {
    given(history(resolved()))
        .when(confirm())
        .then([issue(IssueResolutionConfirmed {
            issue_id: I,
            model_worker_id: MW,
            via: ConfirmationVia::Visit,
            satisfaction: Satisfaction::Satisfied,
            on: date(2021, 10, 6),
        })]);
    given(history(escalated()))
        .when(confirm())
        .then_err("issue_not_resolved");
    given(history(confirmed()))
        .when(confirm())
        .then_err("issue_already_confirmed");
    given(history(closed()))
        .when(confirm())
        .then_err("issue_closed");
}

#[test]
fn close_issue_needs_confirmation_or_an_override_reason() {
    given(history(confirmed()))
        .when(close(None))
        .then([issue(IssueClosed {
            issue_id: I,
            model_worker_id: MW,
            override_reason: None,
            on: date(2021, 10, 7),
        })]);
    given(history(resolved()))
        .when(close(None))
        .then_err("issue_not_confirmed");
    given(history(resolved()))
        .when(close(Some("劳模已搬离，无法联系")))
        .then([issue(IssueClosed {
            issue_id: I,
            model_worker_id: MW,
            override_reason: Some(plain("劳模已搬离，无法联系")),
            on: date(2021, 10, 7),
        })]);
    given(history(resolved()))
        .when(close(Some("")))
        .then_err("required_text_empty");
    given(history(escalated()))
        .when(close(Some("x")))
        .then_err("issue_not_resolved");
    given(history(closed()))
        .when(close(None))
        .then_err("issue_closed");
}

#[test]
fn reopen_issue_from_resolved_or_closed() {
    given(history(closed()))
        .when(reopen())
        .then([issue(IssueReopened {
            issue_id: I,
            model_worker_id: MW,
            reason: plain("又堵了"),
            on: date(2021, 10, 8),
        })]);
    assert!(given(history(resolved())).when(reopen()).result().is_ok());
    given(history(escalated()))
        .when(reopen())
        .then_err("issue_not_resolved");
    // A reopened issue with an owner goes back to acknowledged: it can be escalated again.
    let reopened = with(closed(), [reopen()]);
    let again = EscalateIssue {
        issue_id: I,
        to_body: TEAM,
        channel: EscalationChannel::Phone,
        due_by: date(2021, 10, 20),
        on: Some(date(2021, 10, 9)),
    };
    assert!(given(history(reopened)).when(again).result().is_ok());
    // An issue answered on the spot has no owner and goes back to raised.
    let spot_reopened = with(raised(), [spot(), reopen()]);
    given(history(spot_reopened))
        .when(escalate(TEAM))
        .then_err("issue_not_acknowledged");
}
