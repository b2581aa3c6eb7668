//! Events: the facts the log keeps, one plain struct per event type.
//!
//! Each event serializes as a JSON object of its own fields; its type name and schema version
//! travel beside it in the store (see [`Event::event_type`] and [`Event::schema_version`]), not
//! inside the data, so the data schema of every type is a plain object. Events carry the ids of
//! people and hold personal values only as [`Personal`]; each type offers
//! `personal_fields_mut`, which names every personal field with the subject whose key seals it.
//! Every personal field's subject can be derived from the event alone, which is why events carry
//! `model_worker_id` even where the aggregate id would do.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::authority::Role;
use crate::command::VisitChanges;
use crate::ids::*;
use crate::personal::{Personal, PersonalRef, PersonalVisitor};
use crate::region::RegionCode;
use crate::subscription::{Delivery, Filter, SubscriptionDisableReason};
use crate::upcast::{self, UpcastError};
use crate::vocab::*;

fn opt(f: &mut PersonalVisitor<'_>, subject: Uuid, field: &'static str, p: &mut Option<Personal>) {
    if let Some(p) = p {
        f(PersonalRef::new(subject, field), p);
    }
}

fn participants(f: &mut PersonalVisitor<'_>, list: &str, ps: &mut [Participant]) {
    for (i, p) in ps.iter_mut().enumerate() {
        if let ParticipantWho::Named { person_id, name } = &mut p.who {
            f(PersonalRef::indexed(person_id.0, list, i, "name"), name);
        }
    }
}

/// A model worker's file was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelWorkerRegistered {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The honour held.
    pub honour: Honour,
    /// The year of the honour.
    pub honour_year: Option<u16>,
    /// Occupation.
    pub occupation: Option<String>,
    /// Region as recorded.
    pub region_code: RegionCode,
    /// Name.
    pub name: Personal,
    /// Gender.
    pub gender: Option<Personal>,
    /// Birth year.
    pub birth_year: Option<Personal>,
    /// Phone.
    pub phone: Option<Personal>,
    /// WeChat id.
    pub wechat: Option<Personal>,
    /// Address.
    pub address: Option<Personal>,
    /// ID number.
    pub id_number: Option<Personal>,
    /// Business date of registration.
    pub registered_on: NaiveDate,
}

impl ModelWorkerRegistered {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        let s = self.model_worker_id.0;
        f(PersonalRef::new(s, "name"), &mut self.name);
        opt(f, s, "gender", &mut self.gender);
        opt(f, s, "birth_year", &mut self.birth_year);
        opt(f, s, "phone", &mut self.phone);
        opt(f, s, "wechat", &mut self.wechat);
        opt(f, s, "address", &mut self.address);
        opt(f, s, "id_number", &mut self.id_number);
    }
}

/// A model worker was assessed as being in hardship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HardshipAssessed {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The tier.
    pub tier: HardshipTier,
    /// The causes.
    pub causes: Vec<HardshipCause>,
    /// The assessment date.
    pub assessed_on: NaiveDate,
    /// The actor who recorded the assessment.
    pub by: Uuid,
    /// Details.
    pub note: Option<Personal>,
}

impl HardshipAssessed {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        opt(f, self.model_worker_id.0, "note", &mut self.note);
    }
}

/// A model worker left hardship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HardshipExited {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The date.
    pub exited_on: NaiveDate,
    /// Why.
    pub reason: Option<Personal>,
}

impl HardshipExited {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        opt(f, self.model_worker_id.0, "reason", &mut self.reason);
    }
}

/// A model worker moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelWorkerRelocated {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The new region.
    pub region_code: RegionCode,
    /// The date of the move.
    pub moved_on: NaiveDate,
    /// The new address.
    pub address: Option<Personal>,
}

impl ModelWorkerRelocated {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        opt(f, self.model_worker_id.0, "address", &mut self.address);
    }
}

/// A model worker died.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelWorkerDied {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The date of death.
    pub died_on: NaiveDate,
}

/// The model worker's side of a new pairing (keeps "one pairing per model worker" checkable
/// with the model worker's stream version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelWorkerPaired {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The pairing.
    pub pairing_id: PairingId,
    /// The director.
    pub director_id: DirectorId,
    /// First day in force.
    pub effective_from: NaiveDate,
}

/// The model worker's side of an ended pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelWorkerUnpaired {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The pairing.
    pub pairing_id: PairingId,
    /// Last day in force.
    pub ended_on: NaiveDate,
}

/// A director was appointed for a term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DirectorAppointed {
    /// The director.
    pub director_id: DirectorId,
    /// The association.
    pub body_id: BodyId,
    /// The role.
    pub role: DirectorRole,
    /// The term.
    pub term: Term,
    /// Name.
    pub name: Personal,
    /// Own model-worker file.
    pub model_worker_id: Option<ModelWorkerId>,
    /// Phone.
    pub phone: Option<Personal>,
    /// WeChat id.
    pub wechat: Option<Personal>,
}

impl DirectorAppointed {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        let s = self.director_id.0;
        f(PersonalRef::new(s, "name"), &mut self.name);
        opt(f, s, "phone", &mut self.phone);
        opt(f, s, "wechat", &mut self.wechat);
    }
}

/// A director's term ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DirectorTermEnded {
    /// The director.
    pub director_id: DirectorId,
    /// Last day of the term.
    pub ended_on: NaiveDate,
}

/// The director's side of a new pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DirectorPaired {
    /// The director.
    pub director_id: DirectorId,
    /// The pairing.
    pub pairing_id: PairingId,
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// First day in force.
    pub effective_from: NaiveDate,
}

/// The director's side of an ended pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DirectorUnpaired {
    /// The director.
    pub director_id: DirectorId,
    /// The pairing.
    pub pairing_id: PairingId,
    /// Last day in force.
    pub ended_on: NaiveDate,
}

/// A body was registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BodyRegistered {
    /// The body.
    pub body_id: BodyId,
    /// Its kind.
    pub kind: BodyKind,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region_code: Option<RegionCode>,
}

/// A director and a model worker were paired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PairAssigned {
    /// The pairing.
    pub pairing_id: PairingId,
    /// The director.
    pub director_id: DirectorId,
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// First day in force.
    pub effective_from: NaiveDate,
    /// The cadence in force for this pairing (the default resolved at assignment).
    pub visit_policy: VisitPolicy,
}

/// A pairing ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PairEnded {
    /// The pairing.
    pub pairing_id: PairingId,
    /// The director.
    pub director_id: DirectorId,
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// Last day in force (inclusive).
    pub ended_on: NaiveDate,
    /// Why.
    pub reason: PairEndReason,
    /// Details.
    pub note: Option<Personal>,
}

impl PairEnded {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        opt(f, self.model_worker_id.0, "note", &mut self.note);
    }
}

/// A visit or contact was logged against a pairing; written so that a concurrent `EndPair`
/// and a visit on the same pairing conflict on the pairing stream's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PairActivityLogged {
    /// The pairing.
    pub pairing_id: PairingId,
    /// The visit or contact id.
    pub activity_id: Uuid,
    /// Which of the two.
    pub kind: ActivityKind,
    /// The business date of the activity.
    pub on: NaiveDate,
}

/// A logged activity no longer counts (its visit was voided).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PairActivityWithdrawn {
    /// The pairing.
    pub pairing_id: PairingId,
    /// The visit or contact id.
    pub activity_id: Uuid,
}

/// A visit was recorded. Schema version 2 added `medical_advice_given`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VisitRecorded {
    /// The visit.
    pub visit_id: VisitId,
    /// The model worker visited.
    pub model_worker_id: ModelWorkerId,
    /// The pairing, unless ad hoc.
    pub pairing_id: Option<PairingId>,
    /// The paired director, copied from the pairing for read models.
    pub director_id: Option<DirectorId>,
    /// Why an unpaired visit was made.
    pub adhoc_reason: Option<Personal>,
    /// Business date.
    pub visited_on: NaiveDate,
    /// Region.
    pub region_code: RegionCode,
    /// Place.
    pub place: Option<Personal>,
    /// Participants.
    pub participants: Vec<Participant>,
    /// Gifts.
    pub gifts: Vec<Gift>,
    /// Findings.
    pub findings: Findings,
    /// Contacts exchanged.
    pub contact_exchanged: ContactExchanged,
    /// Medical advice given (added in v2).
    pub medical_advice_given: bool,
    /// Benefit checks.
    pub benefit_checks: Vec<BenefitCheck>,
    /// Recorded more than the policy's late-entry threshold after the visit date.
    pub late_entry: bool,
}

impl VisitRecorded {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        let s = self.model_worker_id.0;
        opt(f, s, "adhoc_reason", &mut self.adhoc_reason);
        opt(f, s, "place", &mut self.place);
        participants(f, "participants", &mut self.participants);
        self.findings.visit(s, "findings.", f);
    }
}

/// A visit was corrected; the original stays in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VisitCorrected {
    /// The visit.
    pub visit_id: VisitId,
    /// The model worker visited.
    pub model_worker_id: ModelWorkerId,
    /// Why.
    pub reason: Personal,
    /// What changed.
    pub changes: VisitChanges,
    /// Whether the corrected visit date makes the record a late entry.
    pub late_entry: bool,
}

impl VisitCorrected {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        let s = self.model_worker_id.0;
        f(PersonalRef::new(s, "reason"), &mut self.reason);
        opt(f, s, "changes.place", &mut self.changes.place);
        if let Some(ps) = &mut self.changes.participants {
            participants(f, "changes.participants", ps);
        }
        if let Some(findings) = &mut self.changes.findings {
            findings.visit(s, "changes.findings.", f);
        }
    }
}

/// A visit was voided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VisitVoided {
    /// The visit.
    pub visit_id: VisitId,
    /// The model worker visited.
    pub model_worker_id: ModelWorkerId,
    /// Why.
    pub reason: Personal,
}

impl VisitVoided {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        f(
            PersonalRef::new(self.model_worker_id.0, "reason"),
            &mut self.reason,
        );
    }
}

/// An issue was raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueRaised {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// The visit where it was heard.
    pub visit_id: Option<VisitId>,
    /// Category.
    pub category: IssueCategory,
    /// Description.
    pub description: Personal,
    /// Urgency.
    pub urgency: Urgency,
    /// Business date.
    pub on: NaiveDate,
}

/// An issue was answered on the spot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueResolvedOnSpot {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// The answer given.
    pub summary: Personal,
    /// Business date.
    pub on: NaiveDate,
}

/// A director took ownership of an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueAcknowledged {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// The owner.
    pub owner: DirectorId,
    /// Respond by.
    pub respond_by: NaiveDate,
    /// Business date.
    pub on: NaiveDate,
}

/// An issue was relayed to a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueEscalated {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// The body.
    pub to_body: BodyId,
    /// How.
    pub channel: EscalationChannel,
    /// Answer due by.
    pub due_by: NaiveDate,
    /// Business date.
    pub on: NaiveDate,
}

/// A body answered an escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BodyResponseRecorded {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// The body that answered.
    pub body_id: BodyId,
    /// The answer.
    pub response: BodyResponseKind,
    /// For a redirect: the new body.
    pub redirected_to: Option<BodyId>,
    /// For a redirect: the due date in force afterwards.
    pub due_by: Option<NaiveDate>,
    /// Details.
    pub note: Option<Personal>,
    /// Business date.
    pub on: NaiveDate,
}

/// Progress on an issue was noted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueProgressNoted {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// The note.
    pub note: Personal,
    /// Business date.
    pub on: NaiveDate,
}

/// An issue was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueResolved {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// Outcome.
    pub outcome: ResolutionOutcome,
    /// What was done.
    pub summary: Personal,
    /// The body that solved it.
    pub resolved_by: Option<BodyId>,
    /// Business date.
    pub on: NaiveDate,
}

/// The model worker confirmed a resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueResolutionConfirmed {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// How.
    pub via: ConfirmationVia,
    /// Satisfaction.
    pub satisfaction: Satisfaction,
    /// Business date.
    pub on: NaiveDate,
}

/// An issue was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueClosed {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// Why it was closed without confirmation, if it was.
    pub override_reason: Option<Personal>,
    /// Business date.
    pub on: NaiveDate,
}

/// An issue was reopened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IssueReopened {
    /// The issue.
    pub issue_id: IssueId,
    /// Whose issue.
    pub model_worker_id: ModelWorkerId,
    /// Why.
    pub reason: Personal,
    /// Business date.
    pub on: NaiveDate,
}

macro_rules! issue_personal {
    ($($ty:ident: $($field:ident)?, $($opt:ident)?;)*) => {
        $(
            impl $ty {
                /// Visits every personal field.
                pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
                    let s = self.model_worker_id.0;
                    $(f(PersonalRef::new(s, stringify!($field)), &mut self.$field);)?
                    $(opt(f, s, stringify!($opt), &mut self.$opt);)?
                }
            }
        )*
    };
}

issue_personal! {
    IssueRaised: description, ;
    IssueResolvedOnSpot: summary, ;
    BodyResponseRecorded: , note;
    IssueProgressNoted: note, ;
    IssueResolved: summary, ;
    IssueClosed: , override_reason;
    IssueReopened: reason, ;
}

/// A daily contact was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactRecorded {
    /// The contact.
    pub contact_id: ContactId,
    /// The pairing.
    pub pairing_id: PairingId,
    /// The director.
    pub director_id: DirectorId,
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// Business date.
    pub on: NaiveDate,
    /// Channel.
    pub channel: ContactChannel,
    /// What was said.
    pub note: Option<Personal>,
}

impl ContactRecorded {
    /// Visits every personal field.
    pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
        opt(f, self.model_worker_id.0, "note", &mut self.note);
    }
}

/// A subject's personal data was erased (their key destroyed). Holds no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PersonalDataErased {
    /// The subject.
    pub subject_id: Uuid,
    /// The legal basis.
    pub legal_basis: LegalBasis,
    /// Business date.
    pub erased_on: NaiveDate,
}

/// A subscription was created. Its signing secret is not in the log (it is kept sealed beside
/// it and shown once to its creator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionCreated {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// Its name.
    pub name: String,
    /// Which events it takes (normalised: sorted, without duplicates).
    pub filter: Filter,
    /// Delivery starts after this log position.
    pub start_after: u64,
    /// Where the events go.
    pub delivery: Delivery,
    /// The integration token that may read its status.
    pub owner_token_id: Option<Uuid>,
    /// Business date.
    pub created_on: NaiveDate,
}

/// A subscription was paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionPaused {
    /// The subscription.
    pub subscription_id: SubscriptionId,
}

/// A paused or disabled subscription was resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionResumed {
    /// The subscription.
    pub subscription_id: SubscriptionId,
}

/// A subscription's cursor was moved: delivery continues after `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionRewound {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The new cursor.
    pub after: u64,
}

/// A subscription's signing secret was replaced by generation `generation`; the previous one
/// keeps signing for `grace_seconds` after this event's record time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionSecretRotated {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The new secret's generation.
    pub generation: u32,
    /// How long the previous secret still signs, in seconds.
    pub grace_seconds: u32,
}

/// A subscription was disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionDisabled {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// Why.
    pub reason: SubscriptionDisableReason,
}

/// A subscription was deleted and its secrets destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubscriptionDeleted {
    /// The subscription.
    pub subscription_id: SubscriptionId,
}

/// An account was created. Its user name and password hash are kept outside the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountCreated {
    /// The account.
    pub account_id: AccountId,
    /// Its role.
    pub role: Role,
    /// For a director account: the director it speaks for.
    pub director_id: Option<DirectorId>,
    /// Business date.
    pub created_on: NaiveDate,
}

/// An account's role (or the director it speaks for) changed; its sessions ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountRoleChanged {
    /// The account.
    pub account_id: AccountId,
    /// The new role.
    pub role: Role,
    /// For a director account: the director it speaks for.
    pub director_id: Option<DirectorId>,
}

/// An account was disabled; its sessions ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountDisabled {
    /// The account.
    pub account_id: AccountId,
}

/// A disabled account was enabled again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountEnabled {
    /// The account.
    pub account_id: AccountId,
}

/// An account's password was set (never the password or its hash); its sessions ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountPasswordSet {
    /// The account.
    pub account_id: AccountId,
    /// Changed by the holder, or reset by an administrator.
    pub reason: PasswordSetReason,
    /// Who set it: the actor of the command (the holder, or the administrator who reset it).
    pub by: Uuid,
}

macro_rules! events {
    (personal: [$($p:ident),* $(,)?], plain: [$($n:ident),* $(,)?], versions: {$($v:ident = $ver:expr),* $(,)?} $(,)?) => {
        /// Every event type.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Event {
            $(
                #[allow(missing_docs)]
                $p($p),
            )*
            $(
                #[allow(missing_docs)]
                $n($n),
            )*
        }

        $(impl From<$p> for Event { fn from(e: $p) -> Event { Event::$p(e) } })*
        $(impl From<$n> for Event { fn from(e: $n) -> Event { Event::$n(e) } })*

        /// The names of all event types.
        pub const EVENT_TYPES: &[&str] = &[$(stringify!($p),)* $(stringify!($n),)*];

        impl Event {
            /// The event type name stored beside the data, e.g. `VisitRecorded`.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$p(_) => stringify!($p),)*
                    $(Event::$n(_) => stringify!($n),)*
                }
            }

            /// The schema version of the data this code writes.
            pub fn schema_version(&self) -> u32 {
                current_version(self.event_type())
            }

            /// The event's data as a JSON object. Fails while any personal field is still
            /// plain (or erased): seal first.
            pub fn to_data(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self {
                    $(Event::$p(e) => serde_json::to_value(e),)*
                    $(Event::$n(e) => serde_json::to_value(e),)*
                }
            }

            /// Reads stored data of any known version: upcasts it to the current version,
            /// then deserializes it.
            pub fn from_data(
                event_type: &str,
                schema_version: u32,
                data: serde_json::Value,
            ) -> Result<Event, UpcastError> {
                let (_, data) = upcast::upcast(event_type, schema_version, data)?;
                let parsed = match event_type {
                    $(stringify!($p) => serde_json::from_value::<$p>(data).map(Event::$p),)*
                    $(stringify!($n) => serde_json::from_value::<$n>(data).map(Event::$n),)*
                    _ => return Err(UpcastError::UnknownEventType(event_type.to_owned())),
                };
                parsed.map_err(|e| UpcastError::InvalidData {
                    event_type: event_type.to_owned(),
                    message: e.to_string(),
                })
            }

            /// Visits every personal field with the subject whose key seals it and a stable
            /// field name. Events without personal data visit nothing.
            pub fn personal_fields_mut(&mut self, f: &mut PersonalVisitor<'_>) {
                match self {
                    $(Event::$p(e) => e.personal_fields_mut(f),)*
                    $(Event::$n(_) => {})*
                }
            }
        }

        /// The schema version this code writes for an event type (1 unless listed).
        pub fn current_version(event_type: &str) -> u32 {
            match event_type {
                $(stringify!($v) => $ver,)*
                _ => 1,
            }
        }

        /// The JSON Schema of every event type's data, by name.
        pub fn event_schemas() -> Vec<(&'static str, schemars::Schema)> {
            vec![
                $((stringify!($p), schemars::schema_for!($p)),)*
                $((stringify!($n), schemars::schema_for!($n)),)*
            ]
        }
    };
}

events! {
    personal: [
        ModelWorkerRegistered, HardshipAssessed, HardshipExited, ModelWorkerRelocated,
        DirectorAppointed, PairEnded, VisitRecorded, VisitCorrected, VisitVoided, IssueRaised,
        IssueResolvedOnSpot, BodyResponseRecorded, IssueProgressNoted, IssueResolved, IssueClosed,
        IssueReopened, ContactRecorded,
    ],
    plain: [
        ModelWorkerDied, ModelWorkerPaired, ModelWorkerUnpaired, DirectorTermEnded,
        DirectorPaired, DirectorUnpaired, BodyRegistered, PairAssigned, PairActivityLogged,
        PairActivityWithdrawn, IssueAcknowledged, IssueEscalated, IssueResolutionConfirmed,
        PersonalDataErased, SubscriptionCreated, SubscriptionPaused, SubscriptionResumed,
        SubscriptionRewound, SubscriptionSecretRotated, SubscriptionDisabled, SubscriptionDeleted,
        AccountCreated, AccountRoleChanged, AccountDisabled, AccountEnabled, AccountPasswordSet,
    ],
    versions: { VisitRecorded = 2 }
}

impl Event {
    /// The business date the event is about (Asia/Shanghai calendar), stored beside the event so
    /// auditors can ask "what happened on date X" without decoding payloads. Corrections, voids
    /// and withdrawals are about a record rather than a day, so they have none; a body's
    /// registration has none either.
    pub fn business_date(&self) -> Option<NaiveDate> {
        match self {
            Event::ModelWorkerRegistered(e) => Some(e.registered_on),
            Event::HardshipAssessed(e) => Some(e.assessed_on),
            Event::HardshipExited(e) => Some(e.exited_on),
            Event::ModelWorkerRelocated(e) => Some(e.moved_on),
            Event::ModelWorkerDied(e) => Some(e.died_on),
            Event::ModelWorkerPaired(e) => Some(e.effective_from),
            Event::ModelWorkerUnpaired(e) => Some(e.ended_on),
            Event::DirectorAppointed(e) => Some(e.term.from),
            Event::DirectorTermEnded(e) => Some(e.ended_on),
            Event::DirectorPaired(e) => Some(e.effective_from),
            Event::DirectorUnpaired(e) => Some(e.ended_on),
            Event::PairAssigned(e) => Some(e.effective_from),
            Event::PairEnded(e) => Some(e.ended_on),
            Event::PairActivityLogged(e) => Some(e.on),
            Event::VisitRecorded(e) => Some(e.visited_on),
            Event::IssueRaised(e) => Some(e.on),
            Event::IssueResolvedOnSpot(e) => Some(e.on),
            Event::IssueAcknowledged(e) => Some(e.on),
            Event::IssueEscalated(e) => Some(e.on),
            Event::BodyResponseRecorded(e) => Some(e.on),
            Event::IssueProgressNoted(e) => Some(e.on),
            Event::IssueResolved(e) => Some(e.on),
            Event::IssueResolutionConfirmed(e) => Some(e.on),
            Event::IssueClosed(e) => Some(e.on),
            Event::IssueReopened(e) => Some(e.on),
            Event::ContactRecorded(e) => Some(e.on),
            Event::PersonalDataErased(e) => Some(e.erased_on),
            Event::SubscriptionCreated(e) => Some(e.created_on),
            Event::AccountCreated(e) => Some(e.created_on),
            Event::SubscriptionPaused(_)
            | Event::SubscriptionResumed(_)
            | Event::SubscriptionRewound(_)
            | Event::SubscriptionSecretRotated(_)
            | Event::SubscriptionDisabled(_)
            | Event::SubscriptionDeleted(_)
            | Event::AccountRoleChanged(_)
            | Event::AccountDisabled(_)
            | Event::AccountEnabled(_)
            | Event::AccountPasswordSet(_)
            | Event::BodyRegistered(_)
            | Event::VisitCorrected(_)
            | Event::VisitVoided(_)
            | Event::PairActivityWithdrawn(_) => None,
        }
    }
}
