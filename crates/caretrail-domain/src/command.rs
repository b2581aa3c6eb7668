//! Commands: what a user asks the system to do.
//!
//! Each command is a plain struct that deserializes from the JSON body of
//! `POST /api/v1/commands/{CommandName}` with unknown fields denied, so a misspelt field is an
//! error rather than silently ignored. Personal fields arrive as plain strings; the decision
//! copies them into events, which the command handler seals before storing. Business dates that
//! are optional default to the context's `today` (Asia/Shanghai).

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::authority::Role;
use crate::ids::*;
use crate::personal::Personal;
use crate::region::RegionCode;
use crate::subscription::{Delivery, Filter, SubscriptionDisableReason};
use crate::vocab::*;

/// Registers a model worker's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterModelWorker {
    /// The new model worker's id (chosen by the caller).
    pub model_worker_id: ModelWorkerId,
    /// The honour held.
    pub honour: Honour,
    /// The year the honour was conferred, when known.
    #[serde(default)]
    pub honour_year: Option<u16>,
    /// Occupation or trade, e.g. `种粮大户` (not personal on its own).
    #[serde(default)]
    pub occupation: Option<String>,
    /// Where the model worker lives.
    pub region_code: RegionCode,
    /// Name.
    pub name: Personal,
    /// Gender.
    #[serde(default)]
    pub gender: Option<Personal>,
    /// Birth year.
    #[serde(default)]
    pub birth_year: Option<Personal>,
    /// Phone.
    #[serde(default)]
    pub phone: Option<Personal>,
    /// WeChat id.
    #[serde(default)]
    pub wechat: Option<Personal>,
    /// Home address.
    #[serde(default)]
    pub address: Option<Personal>,
    /// Resident ID number.
    #[serde(default)]
    pub id_number: Option<Personal>,
}

/// Records an assessment that a model worker is in hardship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessHardship {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The tier.
    pub tier: HardshipTier,
    /// At least one cause.
    pub causes: Vec<HardshipCause>,
    /// The assessment date; defaults to today.
    #[serde(default)]
    pub assessed_on: Option<NaiveDate>,
    /// Details (sealed).
    #[serde(default)]
    pub note: Option<Personal>,
}

/// Records that a model worker is no longer in hardship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitHardship {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The date; defaults to today.
    #[serde(default)]
    pub exited_on: Option<NaiveDate>,
    /// Why (sealed).
    #[serde(default)]
    pub reason: Option<Personal>,
}

/// Records a move to another region (and address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRelocation {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The new region.
    pub region_code: RegionCode,
    /// The date of the move; defaults to today.
    #[serde(default)]
    pub moved_on: Option<NaiveDate>,
    /// The new address (sealed).
    #[serde(default)]
    pub address: Option<Personal>,
}

/// Records a model worker's death; ends the active pairing on that date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDeath {
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The date of death.
    pub died_on: NaiveDate,
}

/// Appoints a director for a term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointDirector {
    /// The director (reused for a new term after an earlier one ended).
    pub director_id: DirectorId,
    /// The association the director serves in.
    pub body_id: BodyId,
    /// The role.
    pub role: DirectorRole,
    /// The term.
    pub term: Term,
    /// Name.
    pub name: Personal,
    /// The director's own model-worker file, when registered (officers are model workers too).
    #[serde(default)]
    pub model_worker_id: Option<ModelWorkerId>,
    /// Phone.
    #[serde(default)]
    pub phone: Option<Personal>,
    /// WeChat id.
    #[serde(default)]
    pub wechat: Option<Personal>,
}

/// Ends a director's term; ends the active pairing on the same day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndDirectorTerm {
    /// The director.
    pub director_id: DirectorId,
    /// The last day of the term; defaults to today.
    #[serde(default)]
    pub ended_on: Option<NaiveDate>,
}

/// Registers an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The new body's id.
    pub body_id: BodyId,
    /// Its kind.
    pub kind: BodyKind,
    /// Its official name (organisations are not personal data).
    pub name: String,
    /// Where it is.
    #[serde(default)]
    pub region_code: Option<RegionCode>,
}

/// Pairs a director with a model worker from a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignPair {
    /// The new pairing's id.
    pub pairing_id: PairingId,
    /// The director.
    pub director_id: DirectorId,
    /// The model worker.
    pub model_worker_id: ModelWorkerId,
    /// The first day the pairing is in force.
    pub effective_from: NaiveDate,
    /// Overrides the policy's default visit cadence for this pairing.
    #[serde(default)]
    pub visit_policy: Option<VisitPolicy>,
}

/// Ends a pairing. Reassigning is `EndPair` followed by `AssignPair`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndPair {
    /// The pairing.
    pub pairing_id: PairingId,
    /// The last day the pairing is in force (inclusive); defaults to today.
    #[serde(default)]
    pub ended_on: Option<NaiveDate>,
    /// Why.
    pub reason: PairEndReason,
    /// Details (sealed).
    #[serde(default)]
    pub note: Option<Personal>,
}

/// Records a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordVisit {
    /// The new visit's id.
    pub visit_id: VisitId,
    /// The model worker visited.
    pub model_worker_id: ModelWorkerId,
    /// The pairing the visit belongs to; exactly one of this and `adhoc_reason`.
    #[serde(default)]
    pub pairing_id: Option<PairingId>,
    /// Why an unpaired visit was made (sealed); exactly one of this and `pairing_id`.
    #[serde(default)]
    pub adhoc_reason: Option<Personal>,
    /// The business date of the visit (Asia/Shanghai).
    pub visited_on: NaiveDate,
    /// Where, as a region.
    pub region_code: RegionCode,
    /// Where, as a place or address (sealed).
    #[serde(default)]
    pub place: Option<Personal>,
    /// Who took part: at least one, exactly one lead.
    pub participants: Vec<Participant>,
    /// What was handed over.
    #[serde(default)]
    pub gifts: Vec<Gift>,
    /// What was learnt (sealed).
    #[serde(default)]
    pub findings: Findings,
    /// Which contacts were exchanged.
    #[serde(default)]
    pub contact_exchanged: ContactExchanged,
    /// Whether medical advice was given.
    #[serde(default)]
    pub medical_advice_given: bool,
    /// Benefits checked.
    #[serde(default)]
    pub benefit_checks: Vec<BenefitCheck>,
}

/// The fields a correction replaces; absent fields stay as they were.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitChanges {
    /// A corrected date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visited_on: Option<NaiveDate>,
    /// A corrected region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_code: Option<RegionCode>,
    /// A corrected place (sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Personal>,
    /// The corrected participant list (replaces the whole list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<Participant>>,
    /// The corrected gift list (replaces the whole list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gifts: Option<Vec<Gift>>,
    /// Corrected findings (replace all three).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Findings>,
    /// Corrected contact exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_exchanged: Option<ContactExchanged>,
    /// Corrected medical-advice flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_advice_given: Option<bool>,
    /// Corrected benefit checks (replace the whole list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefit_checks: Option<Vec<BenefitCheck>>,
}

impl VisitChanges {
    /// Whether the correction changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == VisitChanges::default()
    }
}

/// Corrects a recorded visit; the original event stays, the correction says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectVisit {
    /// The visit.
    pub visit_id: VisitId,
    /// Why (sealed).
    pub reason: Personal,
    /// What changes.
    pub changes: VisitChanges,
}

/// Voids a visit recorded in error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidVisit {
    /// The visit.
    pub visit_id: VisitId,
    /// Why (sealed).
    pub reason: Personal,
}

/// Raises an issue for a model worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseIssue {
    /// The new issue's id.
    pub issue_id: IssueId,
    /// Whose issue it is.
    pub model_worker_id: ModelWorkerId,
    /// The visit at which it was heard, if any.
    #[serde(default)]
    pub visit_id: Option<VisitId>,
    /// What it is about.
    pub category: IssueCategory,
    /// What it is (sealed).
    pub description: Personal,
    /// How urgent it is.
    pub urgency: Urgency,
    /// The date raised; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Answers an issue on the spot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveOnSpot {
    /// The issue.
    pub issue_id: IssueId,
    /// The answer given (sealed).
    pub summary: Personal,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Takes ownership of an issue that could not be answered on the spot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeIssue {
    /// The issue.
    pub issue_id: IssueId,
    /// The director who owns the follow-up.
    pub owner: DirectorId,
    /// When the model worker should hear back.
    pub respond_by: NaiveDate,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Relays an issue to a body with a due date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateIssue {
    /// The issue.
    pub issue_id: IssueId,
    /// The body it is relayed to.
    pub to_body: BodyId,
    /// How.
    pub channel: EscalationChannel,
    /// When the body should answer; not before the escalation date.
    pub due_by: NaiveDate,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Records a body's answer to an escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordBodyResponse {
    /// The issue.
    pub issue_id: IssueId,
    /// The body answering (must be the one escalated to).
    pub body_id: BodyId,
    /// The answer.
    pub response: BodyResponseKind,
    /// For `redirected`: the body it was redirected to.
    #[serde(default)]
    pub redirected_to: Option<BodyId>,
    /// For `redirected`: a new due date, otherwise the old one stands.
    #[serde(default)]
    pub due_by: Option<NaiveDate>,
    /// Details (sealed).
    #[serde(default)]
    pub note: Option<Personal>,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Notes progress on an open issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteIssueProgress {
    /// The issue.
    pub issue_id: IssueId,
    /// The note (sealed).
    pub note: Personal,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Resolves an acknowledged or escalated issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveIssue {
    /// The issue.
    pub issue_id: IssueId,
    /// The outcome.
    pub outcome: ResolutionOutcome,
    /// What was done (sealed).
    pub summary: Personal,
    /// The body that solved it, if any.
    #[serde(default)]
    pub resolved_by: Option<BodyId>,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Records the model worker's confirmation of a resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmResolution {
    /// The issue.
    pub issue_id: IssueId,
    /// How the confirmation was obtained.
    pub via: ConfirmationVia,
    /// How satisfied the model worker is.
    pub satisfaction: Satisfaction,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Closes a resolved issue: confirmed, or with an override reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseIssue {
    /// The issue.
    pub issue_id: IssueId,
    /// Required when the model worker has not confirmed (sealed).
    #[serde(default)]
    pub override_reason: Option<Personal>,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Reopens a resolved, confirmed or closed issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenIssue {
    /// The issue.
    pub issue_id: IssueId,
    /// Why (sealed).
    pub reason: Personal,
    /// The date; defaults to today.
    #[serde(default)]
    pub on: Option<NaiveDate>,
}

/// Records a daily contact within a pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordContact {
    /// The new contact's id.
    pub contact_id: ContactId,
    /// The pairing.
    pub pairing_id: PairingId,
    /// The date of the contact.
    pub on: NaiveDate,
    /// The channel.
    pub channel: ContactChannel,
    /// What was said (sealed).
    #[serde(default)]
    pub note: Option<Personal>,
}

/// Erases a data subject's personal data by destroying their key (crypto-shredding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasePersonalData {
    /// The subject: a model worker, director or person id.
    pub subject_id: Uuid,
    /// The legal basis.
    pub legal_basis: LegalBasis,
}

/// Creates a subscription: a durable, filtered feed of the log to an integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    /// The new subscription's id.
    pub subscription_id: SubscriptionId,
    /// A name people recognise it by, e.g. `省总工会案件系统` (at most 100 characters).
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// Which events it takes.
    #[serde(default)]
    pub filter: Filter,
    /// Deliver the events after this log position (the head when the subscription was made,
    /// unless its creator asked for an earlier start).
    pub start_after: u64,
    /// Where the events go.
    pub delivery: Delivery,
    /// The integration token that may read this subscription's status, if any.
    #[serde(default)]
    pub owner_token_id: Option<Uuid>,
}

/// Pauses a subscription: nothing is delivered until it is resumed; its cursor stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseSubscription {
    /// The subscription.
    pub subscription_id: SubscriptionId,
}

/// Resumes a paused or disabled subscription from its cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeSubscription {
    /// The subscription.
    pub subscription_id: SubscriptionId,
}

/// Moves a subscription's cursor back (or forward), so the events after `after` are delivered
/// again: for a downstream that was rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewindSubscription {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// Deliver from the event after this position (0: from the first event).
    pub after: u64,
}

/// Starts signing a webhook subscription's deliveries with a new secret; for a grace period
/// the old secret signs too (Standard Webhooks allows several signatures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSubscriptionSecret {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// The new secret's generation: one more than the current one (the first secret is
    /// generation 1), so two rotations at once cannot both win.
    pub generation: u32,
    /// How long the previous secret keeps signing, in seconds (default a day, at most a week).
    #[serde(default)]
    #[schemars(range(max = 604_800))]
    pub grace_seconds: Option<u32>,
}

/// Stops a subscription because its target cannot take deliveries (the receiver answered
/// `410 Gone`, or failed for too long); resuming it delivers from its cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableSubscription {
    /// The subscription.
    pub subscription_id: SubscriptionId,
    /// Why, in a few words (`gone`, `failing`), never a receiver's answer.
    pub reason: SubscriptionDisableReason,
}

/// Deletes a subscription: nothing more is delivered and its signing secrets are destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteSubscription {
    /// The subscription.
    pub subscription_id: SubscriptionId,
}

/// Creates an account a person signs in with. The user name and the password's hash are kept
/// outside the log (a mutable table), so the log holds no secret and no name that erasure
/// could not remove; it records that the account exists, its role and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// The new account's id.
    pub account_id: AccountId,
    /// What the account may do: `admin`, `director` or `auditor` (integrations use tokens).
    pub role: Role,
    /// For the director role: the director the account speaks for.
    #[serde(default)]
    pub director_id: Option<DirectorId>,
}

/// Gives an account another role (or, for a director account, another director).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAccountRole {
    /// The account.
    pub account_id: AccountId,
    /// The new role: `admin`, `director` or `auditor`.
    pub role: Role,
    /// For the director role: the director the account speaks for.
    #[serde(default)]
    pub director_id: Option<DirectorId>,
}

/// Disables an account: it cannot sign in, and its sessions end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableAccount {
    /// The account.
    pub account_id: AccountId,
}

/// Enables a disabled account again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableAccount {
    /// The account.
    pub account_id: AccountId,
}

/// Records that an account's password was set: changed by its holder or reset by an
/// administrator. The password and its hash are never in the log, only that it happened and
/// (in the event) by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAccountPassword {
    /// The account.
    pub account_id: AccountId,
    /// Changed by the holder, or reset by an administrator.
    pub reason: PasswordSetReason,
}

macro_rules! commands {
    ($($name:ident),* $(,)?) => {
        /// Every command, as received.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Command {
            $(
                #[allow(missing_docs)]
                $name($name),
            )*
        }

        $(
            impl From<$name> for Command {
                fn from(c: $name) -> Command {
                    Command::$name(c)
                }
            }
        )*

        /// The names of all commands, as used in `POST /api/v1/commands/{CommandName}`.
        pub const COMMAND_NAMES: &[&str] = &[$(stringify!($name)),*];

        /// Which command, without its body: what can be known from the name alone (who may
        /// run it, [`CommandKind::issuers`]) before a body is read.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CommandKind {
            $(
                #[allow(missing_docs)]
                $name,
            )*
        }

        impl CommandKind {
            /// Every command kind, in the order of [`COMMAND_NAMES`].
            pub const ALL: &[CommandKind] = &[$(CommandKind::$name),*];

            /// The command's name, e.g. `RecordVisit`.
            pub fn name(self) -> &'static str {
                match self {
                    $(CommandKind::$name => stringify!($name),)*
                }
            }

            /// The kind of the command named `name`; `None` when no command has that name.
            pub fn from_name(name: &str) -> Option<CommandKind> {
                match name {
                    $(stringify!($name) => Some(CommandKind::$name),)*
                    _ => None,
                }
            }
        }

        impl Command {
            /// The command's name, e.g. `RecordVisit`.
            pub fn name(&self) -> &'static str {
                self.kind().name()
            }

            /// Which command this is.
            pub fn kind(&self) -> CommandKind {
                match self {
                    $(Command::$name(_) => CommandKind::$name,)*
                }
            }

            /// Parses a command from its name and JSON body. An error names the failing field
            /// and what the schema expects there, never what was sent ([`crate::parse`]), and
            /// every text field must hold text a person types ([`crate::text`]).
            pub fn parse(name: &str, body: serde_json::Value) -> Result<Command, CommandParseError> {
                match name {
                    $(stringify!($name) => crate::parse::body::<$name>(stringify!($name), body)
                        .map(Command::$name),)*
                    _ => Err(CommandParseError::UnknownCommand),
                }
            }
        }

        /// The JSON Schema of every command, by name.
        pub fn command_schemas() -> Vec<(&'static str, schemars::Schema)> {
            vec![$((stringify!($name), schemars::schema_for!($name)),)*]
        }

        /// The schema of command `name`'s body from `generator`, which keeps the definitions
        /// it refers to where its settings say (the OpenAPI document's components); `None`
        /// for an unknown name.
        pub fn command_subschema(
            name: &str,
            generator: &mut schemars::SchemaGenerator,
        ) -> Option<schemars::Schema> {
            match name {
                $(stringify!($name) => Some(generator.subschema_for::<$name>()),)*
                _ => None,
            }
        }
    };
}

commands!(
    RegisterModelWorker,
    AssessHardship,
    ExitHardship,
    RecordRelocation,
    RecordDeath,
    AppointDirector,
    EndDirectorTerm,
    RegisterBody,
    AssignPair,
    EndPair,
    RecordVisit,
    CorrectVisit,
    VoidVisit,
    RaiseIssue,
    ResolveOnSpot,
    AcknowledgeIssue,
    EscalateIssue,
    RecordBodyResponse,
    NoteIssueProgress,
    ResolveIssue,
    ConfirmResolution,
    CloseIssue,
    ReopenIssue,
    RecordContact,
    ErasePersonalData,
    CreateSubscription,
    PauseSubscription,
    ResumeSubscription,
    RewindSubscription,
    RotateSubscriptionSecret,
    DisableSubscription,
    DeleteSubscription,
    CreateAccount,
    ChangeAccountRole,
    DisableAccount,
    EnableAccount,
    SetAccountPassword,
);

/// Why a request body is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandParseError {
    /// No command has this name.
    #[error("unknown command")]
    UnknownCommand,
    /// The body does not match the command's schema. `field` is the path to the offending
    /// value (`gifts[0].amount_fen`, a missing `participants[0].role`, or the object holding a
    /// key the command does not define; `.` for the body itself), built only from names the
    /// schema defines; the message is built from fixed text and the schema, never from the
    /// values or keys sent.
    #[error("invalid command body at {field}: {message}")]
    InvalidBody {
        /// The path of the offending value (`gifts[0].amount_fen`, `.` for the body).
        field: String,
        /// What is wrong there, from fixed text and the schema.
        message: String,
    },
}

impl CommandParseError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            CommandParseError::UnknownCommand => "unknown_command",
            CommandParseError::InvalidBody { .. } => "invalid_command_body",
        }
    }
}
