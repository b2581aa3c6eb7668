//! Aggregate states and `evolve`: what each stream's events add up to.
//!
//! A state holds only what decisions need (personal data never: rules do not depend on a name),
//! so folding a stream is cheap and erasure never changes a decision. Every state starts as
//! "nothing recorded yet" ([`State::initial`]) and each event only touches the state of the
//! stream it was written to; events of other streams are ignored.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use uuid::Uuid;

use crate::event::Event;
use crate::ids::*;
use crate::rejection::Rejection;
use crate::stream::{Category, StreamName};
use crate::vocab::{Participant, ParticipantRole, ParticipantWho, Term, VisitPolicy};

/// One side's view of a pairing period, kept in both the director's and the model worker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairingPeriod {
    /// The pairing.
    pub pairing_id: PairingId,
    /// The other side (a model worker for a director, a director for a model worker).
    pub counterpart: Uuid,
    /// First day in force.
    pub from: NaiveDate,
    /// Last day in force, once ended.
    pub ended_on: Option<NaiveDate>,
}

fn pair(
    periods: &mut Vec<PairingPeriod>,
    pairing_id: PairingId,
    counterpart: Uuid,
    from: NaiveDate,
) {
    periods.push(PairingPeriod {
        pairing_id,
        counterpart,
        from,
        ended_on: None,
    });
}

fn unpair(periods: &mut [PairingPeriod], pairing_id: PairingId, ended_on: NaiveDate) {
    if let Some(p) = periods.iter_mut().find(|p| p.pairing_id == pairing_id) {
        p.ended_on = Some(ended_on);
    }
}

/// A model worker's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelWorkerState {
    /// Whether the file exists.
    pub registered: bool,
    /// Whether the model worker is currently in hardship.
    pub in_hardship: bool,
    /// The date of death, if recorded.
    pub died_on: Option<NaiveDate>,
    /// Pairings, oldest first.
    pub pairings: Vec<PairingPeriod>,
}

impl ModelWorkerState {
    /// The pairing not yet ended, if any.
    pub fn active_pairing(&self) -> Option<&PairingPeriod> {
        self.pairings.iter().find(|p| p.ended_on.is_none())
    }
}

/// A director's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectorState {
    /// Whether ever appointed.
    pub appointed: bool,
    /// The current (or last) term.
    pub term: Option<Term>,
    /// The actual last day of that term, once ended.
    pub term_ended_on: Option<NaiveDate>,
    /// Pairings, oldest first.
    pub pairings: Vec<PairingPeriod>,
}

impl DirectorState {
    /// The pairing not yet ended, if any.
    pub fn active_pairing(&self) -> Option<&PairingPeriod> {
        self.pairings.iter().find(|p| p.ended_on.is_none())
    }

    /// Whether the director holds a term on a date.
    pub fn in_term_on(&self, date: NaiveDate) -> bool {
        self.term.is_some_and(|t| t.covers(date))
            && self.term_ended_on.is_none_or(|end| date <= end)
    }
}

/// The facts of an assigned pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingInfo {
    /// The director.
    pub director_id: DirectorId,
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// First day in force.
    pub effective_from: NaiveDate,
    /// Last day in force, once ended.
    pub ended_on: Option<NaiveDate>,
    /// The cadence.
    pub visit_policy: VisitPolicy,
}

impl PairingInfo {
    /// Whether the pairing is in force on a date.
    pub fn active_on(&self, date: NaiveDate) -> bool {
        self.effective_from <= date && self.ended_on.is_none_or(|end| date <= end)
    }
}

/// A pairing's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairingState {
    /// Set once assigned.
    pub info: Option<PairingInfo>,
    /// Dates of visits and contacts logged against the pairing, by activity id.
    pub activities: BTreeMap<Uuid, NaiveDate>,
}

impl PairingState {
    /// The date of the latest visit or contact.
    pub fn last_activity(&self) -> Option<NaiveDate> {
        self.activities.values().max().copied()
    }
}

/// The facts of a recorded visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitInfo {
    /// The model worker visited.
    pub model_worker_id: ModelWorkerId,
    /// The pairing, unless ad hoc.
    pub pairing_id: Option<PairingId>,
    /// The (possibly corrected) date.
    pub visited_on: NaiveDate,
    /// Whether voided.
    pub voided: bool,
    /// The director who led it (as recorded or last corrected), when a director led it.
    pub led_by: Option<DirectorId>,
}

/// A visit's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitState {
    /// Set once recorded.
    pub info: Option<VisitInfo>,
}

/// Where an issue stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueStatus {
    /// Raised, not yet handled.
    Raised,
    /// A director owns it.
    Acknowledged,
    /// Relayed to a body.
    Escalated,
    /// Resolved (on the spot or after follow-up).
    Resolved,
    /// The model worker confirmed the resolution.
    Confirmed,
    /// Closed.
    Closed,
}

/// The facts of an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueInfo {
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// Where it stands.
    pub status: IssueStatus,
    /// The owning director, once acknowledged.
    pub owner: Option<DirectorId>,
    /// The body it is currently escalated to.
    pub escalated_to: Option<BodyId>,
    /// The date of the latest step; later steps may not be dated before it.
    pub last_on: NaiveDate,
}

/// An issue's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueState {
    /// Set once raised.
    pub info: Option<IssueInfo>,
}

/// A body's stream. Bodies are never removed, so existence only grows and decisions that read
/// it need not write to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyState {
    /// Whether registered.
    pub registered: bool,
}

/// A contact's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactState {
    /// Whether recorded.
    pub recorded: bool,
}

/// A data subject's erasure stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivacyState {
    /// Whether erased.
    pub erased: bool,
}

/// A subscription's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Whether created (and not deleted).
    pub exists: bool,
    /// Whether deleted: a deleted subscription's id is never reused.
    pub deleted: bool,
    /// Whether a webhook (only webhooks have secrets).
    pub webhook: bool,
    /// Paused by an administrator.
    pub paused: bool,
    /// Disabled (by its receiver or its failures).
    pub disabled: bool,
    /// The current secret's generation (1 after creation).
    pub generation: u32,
}

/// An account's stream: what signing in needs from the log (the credentials are elsewhere).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountState {
    /// Whether created.
    pub exists: bool,
    /// The account's role (meaningful once created).
    pub role: Option<crate::authority::Role>,
    /// For a director account: the director it speaks for.
    pub director_id: Option<DirectorId>,
    /// Whether disabled.
    pub disabled: bool,
}

/// The state of one stream, whatever its category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// `modelworker-…`
    ModelWorker(ModelWorkerState),
    /// `director-…`
    Director(DirectorState),
    /// `pairing-…`
    Pairing(PairingState),
    /// `visit-…`
    Visit(VisitState),
    /// `issue-…`
    Issue(IssueState),
    /// `body-…`
    Body(BodyState),
    /// `contact-…`
    Contact(ContactState),
    /// `privacy-…`
    Privacy(PrivacyState),
    /// `subscription-…`
    Subscription(SubscriptionState),
    /// `account-…`
    Account(AccountState),
}

impl State {
    /// The state of an empty stream of a category.
    pub fn initial(category: Category) -> State {
        match category {
            Category::ModelWorker => State::ModelWorker(Default::default()),
            Category::Director => State::Director(Default::default()),
            Category::Pairing => State::Pairing(Default::default()),
            Category::Visit => State::Visit(Default::default()),
            Category::Issue => State::Issue(Default::default()),
            Category::Body => State::Body(Default::default()),
            Category::Contact => State::Contact(Default::default()),
            Category::Privacy => State::Privacy(Default::default()),
            Category::Subscription => State::Subscription(Default::default()),
            Category::Account => State::Account(Default::default()),
        }
    }

    /// Folds a stream's events from the initial state.
    pub fn fold<'a>(category: Category, events: impl IntoIterator<Item = &'a Event>) -> State {
        events.into_iter().fold(State::initial(category), evolve)
    }
}

/// Applies one event of a stream to that stream's state.
pub fn evolve(mut state: State, event: &Event) -> State {
    use Event as E;
    match (&mut state, event) {
        (State::ModelWorker(s), E::ModelWorkerRegistered(_)) => s.registered = true,
        (State::ModelWorker(s), E::HardshipAssessed(_)) => s.in_hardship = true,
        (State::ModelWorker(s), E::HardshipExited(_)) => s.in_hardship = false,
        (State::ModelWorker(s), E::ModelWorkerDied(e)) => s.died_on = Some(e.died_on),
        (State::ModelWorker(s), E::ModelWorkerPaired(e)) => pair(
            &mut s.pairings,
            e.pairing_id,
            e.director_id.0,
            e.effective_from,
        ),
        (State::ModelWorker(s), E::ModelWorkerUnpaired(e)) => {
            unpair(&mut s.pairings, e.pairing_id, e.ended_on)
        }
        (State::Director(s), E::DirectorAppointed(e)) => {
            s.appointed = true;
            s.term = Some(e.term);
            s.term_ended_on = None;
        }
        (State::Director(s), E::DirectorTermEnded(e)) => s.term_ended_on = Some(e.ended_on),
        (State::Director(s), E::DirectorPaired(e)) => pair(
            &mut s.pairings,
            e.pairing_id,
            e.model_worker_id.0,
            e.effective_from,
        ),
        (State::Director(s), E::DirectorUnpaired(e)) => {
            unpair(&mut s.pairings, e.pairing_id, e.ended_on)
        }
        (State::Pairing(s), E::PairAssigned(e)) => {
            s.info = Some(PairingInfo {
                director_id: e.director_id,
                model_worker_id: e.model_worker_id,
                effective_from: e.effective_from,
                ended_on: None,
                visit_policy: e.visit_policy,
            })
        }
        (State::Pairing(s), E::PairEnded(e)) => {
            if let Some(info) = &mut s.info {
                info.ended_on = Some(e.ended_on);
            }
        }
        (State::Pairing(s), E::PairActivityLogged(e)) => {
            s.activities.insert(e.activity_id, e.on);
        }
        (State::Pairing(s), E::PairActivityWithdrawn(e)) => {
            s.activities.remove(&e.activity_id);
        }
        (State::Visit(s), E::VisitRecorded(e)) => {
            s.info = Some(VisitInfo {
                model_worker_id: e.model_worker_id,
                pairing_id: e.pairing_id,
                visited_on: e.visited_on,
                voided: false,
                led_by: director_lead(&e.participants),
            })
        }
        (State::Visit(s), E::VisitCorrected(e)) => {
            if let Some(info) = &mut s.info {
                if let Some(date) = e.changes.visited_on {
                    info.visited_on = date;
                }
                if let Some(ps) = &e.changes.participants {
                    info.led_by = director_lead(ps);
                }
            }
        }
        (State::Visit(s), E::VisitVoided(_)) => {
            if let Some(info) = &mut s.info {
                info.voided = true;
            }
        }
        (State::Issue(s), E::IssueRaised(e)) => {
            s.info = Some(IssueInfo {
                model_worker_id: e.model_worker_id,
                status: IssueStatus::Raised,
                owner: None,
                escalated_to: None,
                last_on: e.on,
            })
        }
        (State::Issue(s), event) => {
            if let Some(info) = &mut s.info {
                apply_issue(info, event);
            }
        }
        (State::Body(s), E::BodyRegistered(_)) => s.registered = true,
        (State::Contact(s), E::ContactRecorded(_)) => s.recorded = true,
        (State::Privacy(s), E::PersonalDataErased(_)) => s.erased = true,
        (State::Account(s), E::AccountCreated(e)) => {
            s.exists = true;
            s.role = Some(e.role);
            s.director_id = e.director_id;
        }
        (State::Account(s), E::AccountRoleChanged(e)) => {
            s.role = Some(e.role);
            s.director_id = e.director_id;
        }
        (State::Account(s), E::AccountDisabled(_)) => s.disabled = true,
        (State::Account(s), E::AccountEnabled(_)) => s.disabled = false,
        (State::Subscription(s), E::SubscriptionCreated(e)) => {
            s.exists = true;
            s.webhook = matches!(e.delivery, crate::subscription::Delivery::Webhook { .. });
            s.generation = 1;
        }
        (State::Subscription(s), E::SubscriptionPaused(_)) => s.paused = true,
        (State::Subscription(s), E::SubscriptionResumed(_)) => {
            s.paused = false;
            s.disabled = false;
        }
        (State::Subscription(s), E::SubscriptionDisabled(_)) => s.disabled = true,
        (State::Subscription(s), E::SubscriptionSecretRotated(e)) => s.generation = e.generation,
        (State::Subscription(s), E::SubscriptionDeleted(_)) => {
            s.exists = false;
            s.deleted = true;
        }
        // Events of other streams do not change this stream's state.
        _ => {}
    }
    state
}

fn apply_issue(info: &mut IssueInfo, event: &Event) {
    use Event as E;
    let on = match event {
        E::IssueResolvedOnSpot(e) => {
            info.status = IssueStatus::Resolved;
            e.on
        }
        E::IssueAcknowledged(e) => {
            info.status = IssueStatus::Acknowledged;
            info.owner = Some(e.owner);
            e.on
        }
        E::IssueEscalated(e) => {
            info.status = IssueStatus::Escalated;
            info.escalated_to = Some(e.to_body);
            e.on
        }
        E::BodyResponseRecorded(e) => {
            if let Some(to) = e.redirected_to {
                info.escalated_to = Some(to);
            }
            e.on
        }
        E::IssueProgressNoted(e) => e.on,
        E::IssueResolved(e) => {
            info.status = IssueStatus::Resolved;
            e.on
        }
        E::IssueResolutionConfirmed(e) => {
            info.status = IssueStatus::Confirmed;
            e.on
        }
        E::IssueClosed(e) => {
            info.status = IssueStatus::Closed;
            e.on
        }
        E::IssueReopened(e) => {
            // A reopened issue goes back to its owner if it had one, else to the start.
            info.status = if info.owner.is_some() {
                IssueStatus::Acknowledged
            } else {
                IssueStatus::Raised
            };
            info.escalated_to = None;
            e.on
        }
        _ => return,
    };
    info.last_on = info.last_on.max(on);
}

/// The states a decision may read, keyed by stream name. The command handler fills it with the
/// streams [`crate::streams_to_load`] names (an empty stream is inserted as its initial state).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct States {
    map: BTreeMap<StreamName, State>,
}

macro_rules! accessor {
    ($fn:ident, $id:ty, $cat:ident, $state:ident) => {
        /// The loaded state of this aggregate, or `StateNotLoaded`.
        pub fn $fn(&self, id: $id) -> Result<&$state, Rejection> {
            let name = StreamName::new(Category::$cat, id.0);
            match self.map.get(&name) {
                Some(State::$cat(s)) => Ok(s),
                _ => Err(Rejection::StateNotLoaded {
                    stream: name.to_string(),
                }),
            }
        }
    };
}

impl States {
    /// No states loaded.
    pub fn new() -> States {
        States::default()
    }

    /// Adds (or replaces) a loaded stream's state.
    pub fn insert(&mut self, stream: StreamName, state: State) {
        self.map.insert(stream, state);
    }

    /// Whether a stream is loaded.
    pub fn contains(&self, stream: &StreamName) -> bool {
        self.map.contains_key(stream)
    }

    /// A loaded stream's state.
    pub fn get(&self, stream: &StreamName) -> Option<&State> {
        self.map.get(stream)
    }

    /// Applies an event to a loaded stream (inserting its initial state first if needed); used
    /// by in-memory runners and tests.
    pub fn apply(&mut self, stream: StreamName, event: &Event) {
        let state = self
            .map
            .remove(&stream)
            .unwrap_or_else(|| State::initial(stream.category));
        self.map.insert(stream, evolve(state, event));
    }

    accessor!(model_worker, ModelWorkerId, ModelWorker, ModelWorkerState);
    accessor!(director, DirectorId, Director, DirectorState);
    accessor!(pairing, PairingId, Pairing, PairingState);
    accessor!(visit, VisitId, Visit, VisitState);
    accessor!(issue, IssueId, Issue, IssueState);
    accessor!(body, BodyId, Body, BodyState);
    accessor!(contact, ContactId, Contact, ContactState);
    accessor!(
        subscription,
        SubscriptionId,
        Subscription,
        SubscriptionState
    );
    accessor!(account, AccountId, Account, AccountState);

    /// The loaded erasure state of a subject.
    pub fn privacy(&self, subject: Uuid) -> Result<&PrivacyState, Rejection> {
        let name = StreamName::new(Category::Privacy, subject);
        match self.map.get(&name) {
            Some(State::Privacy(s)) => Ok(s),
            _ => Err(Rejection::StateNotLoaded {
                stream: name.to_string(),
            }),
        }
    }
}

/// The director among `participants` who led, if a director led.
fn director_lead(participants: &[Participant]) -> Option<DirectorId> {
    participants.iter().find_map(|p| match (&p.role, &p.who) {
        (ParticipantRole::Lead, ParticipantWho::Director { director_id }) => Some(*director_id),
        _ => None,
    })
}
