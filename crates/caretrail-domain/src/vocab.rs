//! The shared vocabulary of commands and events: enums and small records (`docs/domain.md`, glossary).
//!
//! Enum values are snake_case on the wire and stable: read models and clients switch on them, so
//! renaming one is a schema change that needs an upcaster.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{BodyId, DirectorId, PersonId};
use crate::money::Fen;
use crate::personal::{Personal, PersonalRef, PersonalVisitor};

/// The honour a model worker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Honour {
    /// 全国劳动模范.
    NationalModelWorker,
    /// 全国先进工作者.
    NationalAdvancedWorker,
    /// 省劳动模范.
    ProvincialModelWorker,
    /// 省先进工作者.
    ProvincialAdvancedWorker,
    /// Any other honour.
    Other,
}

/// How deep a model worker's hardship is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HardshipTier {
    /// 深度困难.
    Deep,
    /// 相对困难.
    Relative,
    /// 意外致困.
    Accidental,
}

/// A coarse cause of hardship; details go into the sealed note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HardshipCause {
    /// Old age.
    OldAge,
    /// Illness.
    Illness,
    /// Disability.
    Disability,
    /// Low income.
    LowIncome,
    /// A family burden (care of relatives, children's schooling).
    FamilyBurden,
    /// An accident or disaster.
    Accident,
    /// Housing problems.
    Housing,
    /// Anything else.
    Other,
}

/// An officer's role in the association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirectorRole {
    /// 会长.
    President,
    /// 副会长.
    VicePresident,
    /// 常务理事.
    StandingDirector,
    /// 理事.
    Director,
    /// 工作人员.
    Staff,
}

/// A term of office. `until` is the planned last day, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Term {
    /// The first day of the term.
    pub from: NaiveDate,
    /// The planned last day of the term (inclusive), if fixed.
    #[serde(default)]
    pub until: Option<NaiveDate>,
}

impl Term {
    /// Whether the planned term covers a date (an ended term is tracked separately).
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.from <= date && self.until.is_none_or(|u| date <= u)
    }
}

/// The kind of an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    /// 劳模协会.
    Association,
    /// 省总工会.
    UnionProvincial,
    /// 市总工会.
    UnionCity,
    /// 县总工会.
    UnionCounty,
    /// 街道工会.
    UnionSubdistrict,
    /// 企业工会.
    EmployerUnion,
    /// 政府部门.
    GovernmentDepartment,
    /// 志愿服务队.
    VolunteerTeam,
    /// Anything else.
    Other,
}

/// How often a pairing should be visited; configuration, not law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitPolicy {
    /// At most this many days between visits before the pairing is overdue.
    pub max_days_between_visits: u32,
    /// A pairing is "due soon" this many days before it would be overdue.
    pub due_soon_window_days: u32,
}

impl Default for VisitPolicy {
    /// The article's practice as read in `docs/domain.md`: about twice a year (an assumption).
    fn default() -> Self {
        VisitPolicy {
            max_days_between_visits: 183,
            due_soon_window_days: 30,
        }
    }
}

/// Why a pairing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PairEndReason {
    /// Ended to pair one side with someone else.
    Reassigned,
    /// The model worker left hardship.
    HardshipExited,
    /// The director's term ended (emitted by `EndDirectorTerm`).
    DirectorTermEnded,
    /// The model worker died (emitted by `RecordDeath`).
    ModelWorkerDied,
    /// The model worker or director asked for it.
    OnRequest,
    /// Anything else.
    Other,
}

/// Who took part in a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ParticipantWho {
    /// A registered director, referenced by id (their name lives in their own file).
    Director {
        /// The director.
        director_id: DirectorId,
    },
    /// A named person, e.g. a union official; the name is sealed under `person_id`'s key.
    Named {
        /// The subject id of this person's personal data.
        person_id: PersonId,
        /// The person's name.
        name: Personal,
    },
    /// Someone recorded only by role and body, e.g. "Wenzhou association staff".
    Unnamed,
}

/// The internally tagged object (`{"kind": "director", "director_id": ...}`), read by hand:
/// serde's derive for an internally tagged enum buffers the object and loses the path of an
/// error inside it (a malformed `director_id` would be reported at `who`), and it ignores
/// unknown keys beside a unit variant.
impl<'de> Deserialize<'de> for ParticipantWho {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Director,
            Named,
            Unnamed,
        }
        /// Every field of every variant, each at its own path.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Repr {
            kind: Kind,
            #[serde(default)]
            director_id: Option<DirectorId>,
            #[serde(default)]
            person_id: Option<PersonId>,
            #[serde(default)]
            name: Option<Personal>,
        }
        const DIRECTOR: &[&str] = &["kind", "director_id"];
        const NAMED: &[&str] = &["kind", "person_id", "name"];
        const UNNAMED: &[&str] = &["kind"];
        let r = Repr::deserialize(deserializer)?;
        match r.kind {
            Kind::Director => match (r.director_id, r.person_id, r.name) {
                (Some(director_id), None, None) => Ok(ParticipantWho::Director { director_id }),
                (None, _, _) => Err(D::Error::missing_field("director_id")),
                (_, Some(_), _) => Err(D::Error::unknown_field("person_id", DIRECTOR)),
                (_, _, Some(_)) => Err(D::Error::unknown_field("name", DIRECTOR)),
            },
            Kind::Named => match (r.director_id, r.person_id, r.name) {
                (None, Some(person_id), Some(name)) => {
                    Ok(ParticipantWho::Named { person_id, name })
                }
                (Some(_), _, _) => Err(D::Error::unknown_field("director_id", NAMED)),
                (_, None, _) => Err(D::Error::missing_field("person_id")),
                (_, _, None) => Err(D::Error::missing_field("name")),
            },
            Kind::Unnamed => match (r.director_id, r.person_id, r.name) {
                (None, None, None) => Ok(ParticipantWho::Unnamed),
                (Some(_), _, _) => Err(D::Error::unknown_field("director_id", UNNAMED)),
                (_, Some(_), _) => Err(D::Error::unknown_field("person_id", UNNAMED)),
                (_, _, Some(_)) => Err(D::Error::unknown_field("name", UNNAMED)),
            },
        }
    }
}

/// The part someone played in a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantRole {
    /// The lead visitor; every visit has exactly one.
    Lead,
    /// Another association officer.
    Companion,
    /// An official of a union or department.
    UnionOfficial,
    /// Staff of an association.
    AssociationStaff,
    /// A volunteer.
    Volunteer,
    /// Anyone else.
    Other,
}

/// One participant of a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Participant {
    /// Who it was.
    pub who: ParticipantWho,
    /// The part they played.
    pub role: ParticipantRole,
    /// Their public office, e.g. `党组书记、副主席` (not personal: offices are public).
    #[serde(default)]
    pub office: Option<String>,
    /// The body they came from.
    #[serde(default)]
    pub body_id: Option<BodyId>,
}

/// The kind of a gift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GiftKind {
    /// 慰问金: requires an amount.
    Cash,
    /// 慰问品: a description and, when known, a value.
    Goods,
    /// 鲜花.
    Flowers,
}

/// One gift handed over at a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gift {
    /// Cash, goods or flowers.
    pub kind: GiftKind,
    /// The amount (cash) or value (goods, flowers) in fen; required for cash.
    #[serde(default)]
    pub amount_fen: Option<Fen>,
    /// What was given (not personal).
    #[serde(default)]
    pub description: Option<String>,
}

/// What the visitors learnt, as sealed free text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Findings {
    /// Living conditions.
    #[serde(default)]
    pub living: Option<Personal>,
    /// Health.
    #[serde(default)]
    pub health: Option<Personal>,
    /// Family.
    #[serde(default)]
    pub family: Option<Personal>,
}

impl Findings {
    pub(crate) fn visit(&mut self, subject: uuid::Uuid, prefix: &str, f: &mut PersonalVisitor<'_>) {
        for (name, field) in [
            ("living", &mut self.living),
            ("health", &mut self.health),
            ("family", &mut self.family),
        ] {
            if let Some(p) = field {
                f(
                    PersonalRef {
                        subject,
                        field: format!("{prefix}{name}").into(),
                    },
                    p,
                );
            }
        }
    }
}

/// Which contacts were exchanged (the numbers themselves belong in the person's file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactExchanged {
    /// Phone numbers exchanged (互留联系方式).
    #[serde(default)]
    pub phone: bool,
    /// WeChat added (互加微信).
    #[serde(default)]
    pub wechat: bool,
}

/// The state found for one benefit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BenefitStatus {
    /// Implemented as due.
    Implemented,
    /// Partly implemented.
    PartiallyImplemented,
    /// Not implemented.
    NotImplemented,
    /// Checked, but the outcome was not recorded.
    Unknown,
}

/// A check that a benefit (e.g. 劳模待遇) is actually paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BenefitCheck {
    /// The benefit's name (a policy, not personal).
    pub benefit: String,
    /// What was found.
    pub status: BenefitStatus,
}

/// What an issue is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueCategory {
    /// Housing repair.
    HousingRepair,
    /// Water, power, gas.
    Utilities,
    /// Medical care.
    Medical,
    /// Benefits and policy.
    BenefitsPolicy,
    /// Income and living.
    IncomeLiving,
    /// Legal matters.
    Legal,
    /// Family care.
    FamilyCare,
    /// Anything else.
    Other,
}

/// How urgent an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Low.
    Low,
    /// Normal.
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

/// How an issue was relayed to a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EscalationChannel {
    /// A letter or formal document.
    Letter,
    /// A phone call.
    Phone,
    /// Online (WeChat, e-mail, a platform).
    Online,
    /// A meeting.
    Meeting,
    /// In person.
    InPerson,
    /// Anything else.
    Other,
}

/// A body's answer to an escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyResponseKind {
    /// The body takes the issue on.
    Accepted,
    /// The body declines; the owner may escalate elsewhere.
    Declined,
    /// The body redirects it to another body (named in `redirected_to`).
    Redirected,
}

/// How an issue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionOutcome {
    /// Solved.
    Resolved,
    /// Partly solved.
    PartiallyResolved,
    /// Cannot be solved (explained in the summary).
    NotResolvable,
    /// Withdrawn by the model worker.
    Withdrawn,
}

/// How a model worker's confirmation was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationVia {
    /// During a visit.
    Visit,
    /// By phone.
    Phone,
    /// By WeChat.
    Wechat,
    /// In person, outside a visit.
    InPerson,
    /// Anything else.
    Other,
}

/// How satisfied the model worker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// Satisfied.
    Satisfied,
    /// Partly satisfied.
    PartlySatisfied,
    /// Not satisfied.
    NotSatisfied,
}

/// The channel of a daily contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactChannel {
    /// A phone call.
    Phone,
    /// A WeChat message or call.
    Wechat,
    /// In person (outside a recorded visit).
    InPerson,
    /// Anything else.
    Other,
}

/// The legal basis of an erasure (PIPL art. 47 grounds, coarsely).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// The person asked for deletion.
    SubjectRequest,
    /// Consent was withdrawn.
    ConsentWithdrawn,
    /// The purpose is fulfilled or the retention period expired.
    PurposeFulfilled,
    /// Processing was unlawful.
    UnlawfulProcessing,
    /// Anything else.
    Other,
}

/// What kind of pairing activity a `PairActivityLogged` event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// A visit.
    Visit,
    /// A daily contact.
    Contact,
}

/// Why an account's password was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordSetReason {
    /// The holder changed it, knowing the old one.
    Changed,
    /// An administrator reset it (which also lifts a lockout).
    Reset,
}

impl PasswordSetReason {
    /// The reason as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordSetReason::Changed => "changed",
            PasswordSetReason::Reset => "reset",
        }
    }
}
