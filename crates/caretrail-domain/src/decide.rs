//! The pure decision: `decide(states, command, context)` → the events to append, per stream.
//!
//! The command handler asks [`streams_to_load`] which streams a command reads, loads and folds
//! them (asking again until the answer no longer grows, because some streams are only known
//! from another stream's state), calls [`decide`], and appends each stream's events with the
//! version it loaded as the expected version. Rules that span aggregates write an event to every
//! stream whose state they rely on, so a concurrent command that changes one of those states
//! makes the append fail and the handler re-decides on fresh state. States that only ever grow
//! (a body or director exists) are read without being written.
//!
//! Visit decisions are in `decide/visit.rs`, issue decisions in `decide/issue.rs`, an
//! integration's subscription in `decide/subscription.rs`, an account in `decide/account.rs`.

mod account;
mod issue;
mod subscription;
mod visit;

use chrono::NaiveDate;
use uuid::Uuid;

use crate::command::*;
use crate::event::*;
use crate::ids::*;
use crate::money::Fen;
use crate::personal::Personal;
use crate::rejection::Rejection;
use crate::state::*;
use crate::stream::{Category, StreamName};
use crate::vocab::*;

/// The default cap of one gift's amount: 100,000 yuan ([`Policy::max_gift_fen`]).
pub const DEFAULT_MAX_GIFT_FEN: Fen = match Fen::new(10_000_000) {
    Ok(fen) => fen,
    Err(_) => Fen::ZERO,
};

/// Rules that are configuration, not law. `Default` is the article's practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// At most one active pairing per director (常务理事分别结对一名困难劳模).
    pub one_pairing_per_director: bool,
    /// At most one active pairing per model worker.
    pub one_pairing_per_model_worker: bool,
    /// Only model workers currently in hardship can be paired (结对困难劳模).
    pub pairing_requires_hardship: bool,
    /// The visit cadence used when `AssignPair` gives none.
    pub default_visit_policy: VisitPolicy,
    /// Visits recorded more than this many days after the visit date are flagged as late
    /// entries. 30 days is an assumption (the article sets no rule).
    pub late_entry_after_days: i64,
    /// The largest amount one gift may record (cash, or the value of goods or flowers).
    /// Amounts were unbounded, so a slip (a phone number typed into the amount, a few zeros
    /// too many) was accepted and broke every total. The default is 10,000,000 fen (100,000
    /// yuan): consolation money for a model worker in hardship is thousands of yuan a visit in
    /// the article's practice, and ten times the largest plausible single payment still
    /// leaves room for an exceptional case, while the totals of any log that could exist stay
    /// far inside the 64-bit range (it would take some 900 billion gifts at the cap).
    pub max_gift_fen: Fen,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            one_pairing_per_director: true,
            one_pairing_per_model_worker: true,
            pairing_requires_hardship: true,
            default_visit_policy: VisitPolicy::default(),
            late_entry_after_days: 30,
            max_gift_fen: DEFAULT_MAX_GIFT_FEN,
        }
    }
}

/// Who is acting. Authorisation (which role may run which command, on whose pairing) happens
/// before deciding, by the tables of [`crate::authority`]; the domain records the actor where an event names one
/// (`HardshipAssessed.by`) and applies the rules that depend on who acts (a director's visit is
/// led by that director).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The user's id.
    pub id: Uuid,
    /// The director this actor acts as, when the command comes from a director (their token
    /// names them); `None` for administrators and the system.
    pub director: Option<DirectorId>,
}

/// Everything a decision needs besides states and the command: it has no clock of its own.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Today's date in Asia/Shanghai; the default for optional business dates and the bound for
    /// "not in the future".
    pub today: NaiveDate,
    /// Who is acting.
    pub actor: Actor,
    /// The configured policy.
    pub policy: &'a Policy,
}

/// The stream of a record of `category` with id `id`.
fn stream_of(category: Category, id: impl Into<Uuid>) -> StreamName {
    StreamName::new(category, id)
}

fn loaded<T>(r: Result<T, Rejection>) -> Option<T> {
    r.ok()
}

/// The stream a command creates, for the commands whose first event starts a new stream (a
/// registration, an appointment, an assignment, a visit, an issue). A handler may decide such a
/// command on that stream's initial state without reading it, appending with "no stream yet"
/// as the expectation: if the stream exists after all, the append conflicts and the handler
/// reads it and decides again, reaching the same answer as if it had read first.
pub fn stream_created(command: &Command) -> Option<StreamName> {
    use Category as C;
    use Command as K;
    Some(match command {
        K::RegisterModelWorker(c) => stream_of(C::ModelWorker, c.model_worker_id),
        K::AppointDirector(c) => stream_of(C::Director, c.director_id),
        K::RegisterBody(c) => stream_of(C::Body, c.body_id),
        K::AssignPair(c) => stream_of(C::Pairing, c.pairing_id),
        K::RecordVisit(c) => stream_of(C::Visit, c.visit_id),
        K::RaiseIssue(c) => stream_of(C::Issue, c.issue_id),
        K::CreateSubscription(c) => stream_of(C::Subscription, c.subscription_id),
        K::CreateAccount(c) => stream_of(C::Account, c.account_id),
        _ => return None,
    })
}

/// The streams a command reads, given the states loaded so far. Call it again after loading
/// until it names no stream that is not loaded yet (two rounds at most): a stream that follows
/// from another's state (e.g. the pairing a dying model worker is in) appears in the second.
/// Every stream `decide` writes to is among them.
pub fn streams_to_load(command: &Command, states: &States) -> Vec<StreamName> {
    use Category as C;
    use Command as K;
    let mut out = Vec::new();
    match command {
        K::RegisterModelWorker(c) => out.push(stream_of(C::ModelWorker, c.model_worker_id)),
        K::AssessHardship(c) => out.push(stream_of(C::ModelWorker, c.model_worker_id)),
        K::ExitHardship(c) => out.push(stream_of(C::ModelWorker, c.model_worker_id)),
        K::RecordRelocation(c) => out.push(stream_of(C::ModelWorker, c.model_worker_id)),
        K::RecordDeath(c) => {
            out.push(stream_of(C::ModelWorker, c.model_worker_id));
            if let Some(p) =
                loaded(states.model_worker(c.model_worker_id)).and_then(|m| m.active_pairing())
            {
                out.push(stream_of(C::Pairing, p.pairing_id));
                out.push(stream_of(C::Director, p.counterpart));
            }
        }
        K::AppointDirector(c) => {
            out.push(stream_of(C::Director, c.director_id));
            out.push(stream_of(C::Body, c.body_id));
        }
        K::EndDirectorTerm(c) => {
            out.push(stream_of(C::Director, c.director_id));
            if let Some(p) = loaded(states.director(c.director_id)).and_then(|d| d.active_pairing())
            {
                out.push(stream_of(C::Pairing, p.pairing_id));
                out.push(stream_of(C::ModelWorker, p.counterpart));
            }
        }
        K::RegisterBody(c) => out.push(stream_of(C::Body, c.body_id)),
        K::AssignPair(c) => {
            out.push(stream_of(C::Pairing, c.pairing_id));
            out.push(stream_of(C::Director, c.director_id));
            out.push(stream_of(C::ModelWorker, c.model_worker_id));
        }
        K::EndPair(c) => {
            out.push(stream_of(C::Pairing, c.pairing_id));
            if let Some(info) = loaded(states.pairing(c.pairing_id)).and_then(|p| p.info.as_ref()) {
                out.push(stream_of(C::Director, info.director_id));
                out.push(stream_of(C::ModelWorker, info.model_worker_id));
            }
        }
        K::RecordVisit(c) => {
            out.push(stream_of(C::Visit, c.visit_id));
            out.push(stream_of(C::ModelWorker, c.model_worker_id));
            if let Some(p) = c.pairing_id {
                out.push(stream_of(C::Pairing, p));
            }
            participant_streams(&c.participants, &mut out);
        }
        K::CorrectVisit(c) => {
            out.push(stream_of(C::Visit, c.visit_id));
            if let Some(info) = loaded(states.visit(c.visit_id)).and_then(|v| v.info.as_ref())
                && let (Some(p), Some(_)) = (info.pairing_id, c.changes.visited_on)
            {
                out.push(stream_of(C::Pairing, p));
            }
            if let Some(ps) = &c.changes.participants {
                participant_streams(ps, &mut out);
            }
        }
        K::VoidVisit(c) => {
            out.push(stream_of(C::Visit, c.visit_id));
            if let Some(p) = loaded(states.visit(c.visit_id))
                .and_then(|v| v.info.as_ref())
                .and_then(|i| i.pairing_id)
            {
                out.push(stream_of(C::Pairing, p));
            }
        }
        K::RaiseIssue(c) => {
            out.push(stream_of(C::Issue, c.issue_id));
            out.push(stream_of(C::ModelWorker, c.model_worker_id));
            if let Some(v) = c.visit_id {
                out.push(stream_of(C::Visit, v));
            }
        }
        K::ResolveOnSpot(c) => out.push(stream_of(C::Issue, c.issue_id)),
        K::AcknowledgeIssue(c) => {
            out.push(stream_of(C::Issue, c.issue_id));
            out.push(stream_of(C::Director, c.owner));
        }
        K::EscalateIssue(c) => {
            out.push(stream_of(C::Issue, c.issue_id));
            out.push(stream_of(C::Body, c.to_body));
        }
        K::RecordBodyResponse(c) => {
            out.push(stream_of(C::Issue, c.issue_id));
            if let Some(b) = c.redirected_to {
                out.push(stream_of(C::Body, b));
            }
        }
        K::NoteIssueProgress(c) => out.push(stream_of(C::Issue, c.issue_id)),
        K::ResolveIssue(c) => {
            out.push(stream_of(C::Issue, c.issue_id));
            if let Some(b) = c.resolved_by {
                out.push(stream_of(C::Body, b));
            }
        }
        K::ConfirmResolution(c) => out.push(stream_of(C::Issue, c.issue_id)),
        K::CloseIssue(c) => out.push(stream_of(C::Issue, c.issue_id)),
        K::ReopenIssue(c) => out.push(stream_of(C::Issue, c.issue_id)),
        K::RecordContact(c) => {
            out.push(stream_of(C::Contact, c.contact_id));
            out.push(stream_of(C::Pairing, c.pairing_id));
        }
        K::ErasePersonalData(c) => out.push(stream_of(C::Privacy, c.subject_id)),
        K::CreateSubscription(c) => out.push(stream_of(C::Subscription, c.subscription_id)),
        K::PauseSubscription(c) => out.push(stream_of(C::Subscription, c.subscription_id)),
        K::ResumeSubscription(c) => out.push(stream_of(C::Subscription, c.subscription_id)),
        K::RewindSubscription(c) => out.push(stream_of(C::Subscription, c.subscription_id)),
        K::RotateSubscriptionSecret(c) => out.push(stream_of(C::Subscription, c.subscription_id)),
        K::DisableSubscription(c) => out.push(stream_of(C::Subscription, c.subscription_id)),
        K::DeleteSubscription(c) => out.push(stream_of(C::Subscription, c.subscription_id)),
        K::CreateAccount(c) => {
            out.push(stream_of(C::Account, c.account_id));
            out.extend(c.director_id.map(|d| stream_of(C::Director, d)));
        }
        K::ChangeAccountRole(c) => {
            out.push(stream_of(C::Account, c.account_id));
            out.extend(c.director_id.map(|d| stream_of(C::Director, d)));
        }
        K::DisableAccount(c) => out.push(stream_of(C::Account, c.account_id)),
        K::EnableAccount(c) => out.push(stream_of(C::Account, c.account_id)),
        K::SetAccountPassword(c) => out.push(stream_of(C::Account, c.account_id)),
    }
    out.sort();
    out.dedup();
    out
}

fn participant_streams(participants: &[Participant], out: &mut Vec<StreamName>) {
    for p in participants {
        if let ParticipantWho::Director { director_id } = p.who {
            out.push(stream_of(Category::Director, director_id));
        }
        if let Some(b) = p.body_id {
            out.push(stream_of(Category::Body, b));
        }
    }
}

/// The events a command produces, each with the stream it is appended to, in order.
pub type Decision = Vec<(StreamName, Event)>;

/// Decides a command on the given states. Pure: the same inputs give the same events.
pub fn decide(
    states: &States,
    command: &Command,
    ctx: &Context<'_>,
) -> Result<Decision, Rejection> {
    let mut d = Decider {
        states,
        ctx,
        out: Vec::new(),
    };
    d.decide(command)?;
    Ok(d.out)
}

struct Decider<'a> {
    states: &'a States,
    ctx: &'a Context<'a>,
    out: Decision,
}

/// Copies a required personal field from a command, which must be plain, non-blank text.
fn required(p: &Personal, field: &'static str) -> Result<Personal, Rejection> {
    match p {
        Personal::Plain(text) if text.trim().is_empty() => {
            Err(Rejection::RequiredTextEmpty { field })
        }
        Personal::Plain(_) => Ok(p.clone()),
        _ => Err(Rejection::PersonalDataNotPlain { field }),
    }
}

/// Copies an optional personal field; blank text counts as absent.
fn optional(p: &Option<Personal>, field: &'static str) -> Result<Option<Personal>, Rejection> {
    match p {
        None => Ok(None),
        Some(Personal::Plain(text)) if text.trim().is_empty() => Ok(None),
        Some(p) => required(p, field).map(Some),
    }
}

fn findings(f: &Findings) -> Result<Findings, Rejection> {
    Ok(Findings {
        living: optional(&f.living, "findings.living")?,
        health: optional(&f.health, "findings.health")?,
        family: optional(&f.family, "findings.family")?,
    })
}

/// The events that end an active pairing on all three streams.
struct PairEnd<'a> {
    pairing_id: PairingId,
    ended_on: NaiveDate,
    reason: PairEndReason,
    note: Option<Personal>,
    state: &'a PairingState,
}

impl<'a> Decider<'a> {
    fn emit(&mut self, category: Category, id: impl Into<Uuid>, event: impl Into<Event>) {
        self.out.push((stream_of(category, id), event.into()));
    }

    fn today(&self) -> NaiveDate {
        self.ctx.today
    }

    fn date(&self, date: Option<NaiveDate>, field: &'static str) -> Result<NaiveDate, Rejection> {
        let date = date.unwrap_or(self.ctx.today);
        if date > self.ctx.today {
            return Err(Rejection::DateInFuture { field });
        }
        Ok(date)
    }

    fn model_worker(&self, id: ModelWorkerId) -> Result<&'a ModelWorkerState, Rejection> {
        let m = self.states.model_worker(id)?;
        if !m.registered {
            return Err(Rejection::UnknownModelWorker);
        }
        Ok(m)
    }

    fn living_model_worker(&self, id: ModelWorkerId) -> Result<&'a ModelWorkerState, Rejection> {
        let m = self.model_worker(id)?;
        if m.died_on.is_some() {
            return Err(Rejection::ModelWorkerDeceased);
        }
        Ok(m)
    }

    fn director(&self, id: DirectorId) -> Result<&'a DirectorState, Rejection> {
        let d = self.states.director(id)?;
        if !d.appointed {
            return Err(Rejection::UnknownDirector);
        }
        Ok(d)
    }

    fn body(&self, id: BodyId) -> Result<(), Rejection> {
        if !self.states.body(id)?.registered {
            return Err(Rejection::UnknownBody);
        }
        Ok(())
    }

    fn pairing(&self, id: PairingId) -> Result<(&'a PairingState, &'a PairingInfo), Rejection> {
        let p = self.states.pairing(id)?;
        match &p.info {
            Some(info) => Ok((p, info)),
            None => Err(Rejection::UnknownPairing),
        }
    }

    fn issue(&self, id: IssueId) -> Result<&'a IssueInfo, Rejection> {
        self.states
            .issue(id)?
            .info
            .as_ref()
            .ok_or(Rejection::UnknownIssue)
    }

    /// An issue step's date: not in the future and not before the previous step.
    fn issue_date(&self, info: &IssueInfo, on: Option<NaiveDate>) -> Result<NaiveDate, Rejection> {
        let on = self.date(on, "on")?;
        if on < info.last_on {
            return Err(Rejection::IssueDateOutOfOrder);
        }
        Ok(on)
    }

    fn end_pairing(&mut self, end: PairEnd<'_>) -> Result<(), Rejection> {
        let info = end.state.info.as_ref().ok_or(Rejection::UnknownPairing)?;
        if info.ended_on.is_some() {
            return Err(Rejection::PairingAlreadyEnded);
        }
        if end.ended_on < info.effective_from {
            return Err(Rejection::PairEndBeforeStart);
        }
        if end
            .state
            .last_activity()
            .is_some_and(|last| end.ended_on < last)
        {
            return Err(Rejection::PairEndBeforeLastActivity);
        }
        // Both sides must be loaded: their versions guard against a concurrent re-pairing.
        self.states.director(info.director_id)?;
        self.states.model_worker(info.model_worker_id)?;
        self.emit(
            Category::Pairing,
            end.pairing_id,
            PairEnded {
                pairing_id: end.pairing_id,
                director_id: info.director_id,
                model_worker_id: info.model_worker_id,
                ended_on: end.ended_on,
                reason: end.reason,
                note: end.note,
            },
        );
        self.emit(
            Category::Director,
            info.director_id,
            DirectorUnpaired {
                director_id: info.director_id,
                pairing_id: end.pairing_id,
                ended_on: end.ended_on,
            },
        );
        self.emit(
            Category::ModelWorker,
            info.model_worker_id,
            ModelWorkerUnpaired {
                model_worker_id: info.model_worker_id,
                pairing_id: end.pairing_id,
                ended_on: end.ended_on,
            },
        );
        Ok(())
    }

    fn decide(&mut self, command: &Command) -> Result<(), Rejection> {
        use Category as C;
        use Command as K;
        match command {
            K::RegisterModelWorker(c) => {
                if self.states.model_worker(c.model_worker_id)?.registered {
                    return Err(Rejection::ModelWorkerAlreadyRegistered);
                }
                let event = ModelWorkerRegistered {
                    model_worker_id: c.model_worker_id,
                    honour: c.honour,
                    honour_year: c.honour_year,
                    occupation: c.occupation.clone(),
                    region_code: c.region_code,
                    name: required(&c.name, "name")?,
                    gender: optional(&c.gender, "gender")?,
                    birth_year: optional(&c.birth_year, "birth_year")?,
                    phone: optional(&c.phone, "phone")?,
                    wechat: optional(&c.wechat, "wechat")?,
                    address: optional(&c.address, "address")?,
                    id_number: optional(&c.id_number, "id_number")?,
                    registered_on: self.today(),
                };
                self.emit(C::ModelWorker, c.model_worker_id, event);
            }
            K::AssessHardship(c) => {
                self.living_model_worker(c.model_worker_id)?;
                if c.causes.is_empty() {
                    return Err(Rejection::HardshipCausesEmpty);
                }
                let event = HardshipAssessed {
                    model_worker_id: c.model_worker_id,
                    tier: c.tier,
                    causes: c.causes.clone(),
                    assessed_on: self.date(c.assessed_on, "assessed_on")?,
                    by: self.ctx.actor.id,
                    note: optional(&c.note, "note")?,
                };
                self.emit(C::ModelWorker, c.model_worker_id, event);
            }
            K::ExitHardship(c) => {
                let m = self.model_worker(c.model_worker_id)?;
                if !m.in_hardship {
                    return Err(Rejection::ModelWorkerNotInHardship);
                }
                let event = HardshipExited {
                    model_worker_id: c.model_worker_id,
                    exited_on: self.date(c.exited_on, "exited_on")?,
                    reason: optional(&c.reason, "reason")?,
                };
                self.emit(C::ModelWorker, c.model_worker_id, event);
            }
            K::RecordRelocation(c) => {
                self.living_model_worker(c.model_worker_id)?;
                let event = ModelWorkerRelocated {
                    model_worker_id: c.model_worker_id,
                    region_code: c.region_code,
                    moved_on: self.date(c.moved_on, "moved_on")?,
                    address: optional(&c.address, "address")?,
                };
                self.emit(C::ModelWorker, c.model_worker_id, event);
            }
            K::RecordDeath(c) => {
                let m = self.living_model_worker(c.model_worker_id)?;
                let died_on = self.date(Some(c.died_on), "died_on")?;
                self.emit(
                    C::ModelWorker,
                    c.model_worker_id,
                    ModelWorkerDied {
                        model_worker_id: c.model_worker_id,
                        died_on,
                    },
                );
                if let Some(p) = m.active_pairing() {
                    let state = self.states.pairing(p.pairing_id)?;
                    self.end_pairing(PairEnd {
                        pairing_id: p.pairing_id,
                        ended_on: died_on,
                        reason: PairEndReason::ModelWorkerDied,
                        note: None,
                        state,
                    })?;
                }
            }
            K::AppointDirector(c) => {
                let d = self.states.director(c.director_id)?;
                if d.appointed && d.term_ended_on.is_none() {
                    return Err(Rejection::DirectorAlreadyAppointed);
                }
                if c.term.until.is_some_and(|u| u < c.term.from)
                    || d.term_ended_on.is_some_and(|end| c.term.from <= end)
                {
                    return Err(Rejection::TermInvalid);
                }
                self.body(c.body_id)?;
                let event = DirectorAppointed {
                    director_id: c.director_id,
                    body_id: c.body_id,
                    role: c.role,
                    term: c.term,
                    name: required(&c.name, "name")?,
                    model_worker_id: c.model_worker_id,
                    phone: optional(&c.phone, "phone")?,
                    wechat: optional(&c.wechat, "wechat")?,
                };
                self.emit(C::Director, c.director_id, event);
            }
            K::EndDirectorTerm(c) => {
                let d = self.director(c.director_id)?;
                if d.term_ended_on.is_some() {
                    return Err(Rejection::DirectorNotInTerm);
                }
                let ended_on = self.date(c.ended_on, "ended_on")?;
                if d.term.is_some_and(|t| ended_on < t.from) {
                    return Err(Rejection::TermEndBeforeStart);
                }
                if let Some(p) = d.active_pairing() {
                    let state = self.states.pairing(p.pairing_id)?;
                    self.end_pairing(PairEnd {
                        pairing_id: p.pairing_id,
                        ended_on,
                        reason: PairEndReason::DirectorTermEnded,
                        note: None,
                        state,
                    })?;
                }
                self.emit(
                    C::Director,
                    c.director_id,
                    DirectorTermEnded {
                        director_id: c.director_id,
                        ended_on,
                    },
                );
            }
            K::RegisterBody(c) => {
                if self.states.body(c.body_id)?.registered {
                    return Err(Rejection::BodyAlreadyRegistered);
                }
                if c.name.trim().is_empty() {
                    return Err(Rejection::RequiredTextEmpty { field: "name" });
                }
                let event = BodyRegistered {
                    body_id: c.body_id,
                    kind: c.kind,
                    name: c.name.trim().to_owned(),
                    region_code: c.region_code,
                };
                self.emit(C::Body, c.body_id, event);
            }
            K::AssignPair(c) => self.assign_pair(c)?,
            K::EndPair(c) => {
                let (state, _) = self.pairing(c.pairing_id)?;
                let ended_on = self.date(c.ended_on, "ended_on")?;
                self.end_pairing(PairEnd {
                    pairing_id: c.pairing_id,
                    ended_on,
                    reason: c.reason,
                    note: optional(&c.note, "note")?,
                    state,
                })?;
            }
            K::RecordVisit(c) => self.record_visit(c)?,
            K::CorrectVisit(c) => self.correct_visit(c)?,
            K::VoidVisit(c) => {
                let info = self
                    .states
                    .visit(c.visit_id)?
                    .info
                    .as_ref()
                    .ok_or(Rejection::UnknownVisit)?;
                if info.voided {
                    return Err(Rejection::VisitVoided);
                }
                self.own_visit(info)?;
                let event = VisitVoided {
                    visit_id: c.visit_id,
                    model_worker_id: info.model_worker_id,
                    reason: required(&c.reason, "reason")?,
                };
                self.emit(C::Visit, c.visit_id, event);
                if let Some(p) = info.pairing_id {
                    self.states.pairing(p)?;
                    self.emit(
                        C::Pairing,
                        p,
                        PairActivityWithdrawn {
                            pairing_id: p,
                            activity_id: c.visit_id.0,
                        },
                    );
                }
            }
            K::RecordContact(c) => {
                if self.states.contact(c.contact_id)?.recorded {
                    return Err(Rejection::ContactAlreadyRecorded);
                }
                let on = self.date(Some(c.on), "on")?;
                let (_, info) = self.pairing(c.pairing_id)?;
                if !info.active_on(on) {
                    return Err(Rejection::PairingNotActiveOnDate);
                }
                let event = ContactRecorded {
                    contact_id: c.contact_id,
                    pairing_id: c.pairing_id,
                    director_id: info.director_id,
                    model_worker_id: info.model_worker_id,
                    on,
                    channel: c.channel,
                    note: optional(&c.note, "note")?,
                };
                self.emit(C::Contact, c.contact_id, event);
                self.emit(
                    C::Pairing,
                    c.pairing_id,
                    PairActivityLogged {
                        pairing_id: c.pairing_id,
                        activity_id: c.contact_id.0,
                        kind: ActivityKind::Contact,
                        on,
                    },
                );
            }
            K::ErasePersonalData(c) => {
                if self.states.privacy(c.subject_id)?.erased {
                    return Err(Rejection::PersonalDataAlreadyErased);
                }
                let event = PersonalDataErased {
                    subject_id: c.subject_id,
                    legal_basis: c.legal_basis,
                    erased_on: self.today(),
                };
                self.emit(C::Privacy, c.subject_id, event);
            }
            K::RaiseIssue(_)
            | K::ResolveOnSpot(_)
            | K::AcknowledgeIssue(_)
            | K::EscalateIssue(_)
            | K::RecordBodyResponse(_)
            | K::NoteIssueProgress(_)
            | K::ResolveIssue(_)
            | K::ConfirmResolution(_)
            | K::CloseIssue(_)
            | K::ReopenIssue(_) => self.decide_issue(command)?,
            K::CreateSubscription(_)
            | K::PauseSubscription(_)
            | K::ResumeSubscription(_)
            | K::RewindSubscription(_)
            | K::RotateSubscriptionSecret(_)
            | K::DisableSubscription(_)
            | K::DeleteSubscription(_) => self.decide_subscription(command)?,
            K::CreateAccount(_)
            | K::ChangeAccountRole(_)
            | K::DisableAccount(_)
            | K::EnableAccount(_)
            | K::SetAccountPassword(_) => self.decide_account(command)?,
        }
        Ok(())
    }

    fn assign_pair(&mut self, c: &AssignPair) -> Result<(), Rejection> {
        if self.states.pairing(c.pairing_id)?.info.is_some() {
            return Err(Rejection::PairingAlreadyExists);
        }
        let policy = self.ctx.policy;
        let visit_policy = c.visit_policy.unwrap_or(policy.default_visit_policy);
        if visit_policy.max_days_between_visits == 0
            || visit_policy.due_soon_window_days >= visit_policy.max_days_between_visits
        {
            return Err(Rejection::VisitPolicyInvalid);
        }
        let d = self.director(c.director_id)?;
        if !d.in_term_on(c.effective_from) {
            return Err(Rejection::DirectorNotInTerm);
        }
        let m = self.living_model_worker(c.model_worker_id)?;
        if policy.pairing_requires_hardship && !m.in_hardship {
            return Err(Rejection::ModelWorkerNotInHardship);
        }
        // A period overlaps the new, open-ended one unless it ended before the new start.
        let overlaps = |p: &PairingPeriod| p.ended_on.is_none_or(|end| end >= c.effective_from);
        // The same two people never have two pairings in force at once, whatever the policy.
        if d.pairings
            .iter()
            .any(|p| p.counterpart == c.model_worker_id.0 && overlaps(p))
        {
            return Err(Rejection::PairingPeriodOverlaps);
        }
        if policy.one_pairing_per_director {
            if d.active_pairing().is_some() {
                return Err(Rejection::DirectorAlreadyPaired);
            }
            if d.pairings.iter().any(overlaps) {
                return Err(Rejection::PairingPeriodOverlaps);
            }
        }
        if policy.one_pairing_per_model_worker {
            if m.active_pairing().is_some() {
                return Err(Rejection::ModelWorkerAlreadyPaired);
            }
            if m.pairings.iter().any(overlaps) {
                return Err(Rejection::PairingPeriodOverlaps);
            }
        }
        self.emit(
            Category::Pairing,
            c.pairing_id,
            PairAssigned {
                pairing_id: c.pairing_id,
                director_id: c.director_id,
                model_worker_id: c.model_worker_id,
                effective_from: c.effective_from,
                visit_policy,
            },
        );
        self.emit(
            Category::Director,
            c.director_id,
            DirectorPaired {
                director_id: c.director_id,
                pairing_id: c.pairing_id,
                model_worker_id: c.model_worker_id,
                effective_from: c.effective_from,
            },
        );
        self.emit(
            Category::ModelWorker,
            c.model_worker_id,
            ModelWorkerPaired {
                model_worker_id: c.model_worker_id,
                pairing_id: c.pairing_id,
                director_id: c.director_id,
                effective_from: c.effective_from,
            },
        );
        Ok(())
    }
}
