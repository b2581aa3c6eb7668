//! Who may run a command, and what it is about.
//!
//! Authorisation happens before deciding, in the caller (the HTTP layer, from the token), but
//! the knowledge it needs is the domain's: which [`Role`]s may issue each command
//! ([`CommandKind::issuers`], answerable from a command's name before its body is read) and
//! which records a command touches ([`Command::subjects`]). Both are exhaustive `match`es on
//! the command, so a new command does not compile until it says who may run it and what it
//! touches.
//!
//! A subject is either what the command is *about* ([`Relation::About`]: the records it
//! creates, changes or files something under) or a record it *mentions* in passing
//! ([`Relation::Mentions`]: a director who came along on a visit, the body an issue is relayed
//! to). A director's commands reach only their own active pairing ([`Reach::OwnPairing`],
//! judged by [`Scope::covers`]) for what they are about; mentioned records grant nothing and
//! change nothing of their own, and the decision's rules judge them (a visit a director records
//! is led by that director: [`crate::Rejection::VisitLeadNotActor`]).
//!
//! An issue or a visit names its model worker only in its own stream, so judging one needs
//! that stream's state: [`Subject::owner_stream`] names it and [`model_worker_of`] reads the
//! model worker from it. Everything here stays pure; the caller does the reading.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::{Command, CommandKind, VisitChanges};
use crate::ids::*;
use crate::state::State;
use crate::stream::{Category, StreamName};
use crate::vocab::{Participant, ParticipantWho};

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The association's office: runs every command on every record and reads everything.
    Admin,
    /// A director: records visits, contacts and issues for their own pairing only.
    Director,
    /// Reads everything with personal fields redacted and changes nothing.
    Auditor,
    /// A system reading the event log and subscriptions, personal fields withheld; changes
    /// nothing.
    Integration,
}

impl Role {
    /// The role's name in tokens and metadata, e.g. `director`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Director => "director",
            Role::Auditor => "auditor",
            Role::Integration => "integration",
        }
    }

    /// The role named `s`, if any.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "director" => Some(Role::Director),
            "auditor" => Some(Role::Auditor),
            "integration" => Some(Role::Integration),
            _ => None,
        }
    }

    /// Whether this role may run commands of `kind` (on some record: see [`Role::reach`]).
    pub fn may_run(self, kind: CommandKind) -> bool {
        kind.issuers().contains(&self)
    }

    /// Whether this role may run any command at all.
    pub fn runs_commands(self) -> bool {
        CommandKind::ALL.iter().any(|&kind| self.may_run(kind))
    }

    /// Which records this role's commands may be about.
    pub fn reach(self) -> Reach {
        match self {
            Role::Admin => Reach::Everything,
            Role::Director => Reach::OwnPairing,
            Role::Auditor | Role::Integration => Reach::Nothing,
        }
    }
}

/// Which records a role's commands may be about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Every record: the office records what it was told, about anyone.
    Everything,
    /// Only the records of the caller's own active pairing ([`Scope`]).
    OwnPairing,
    /// No record: the role runs no command.
    Nothing,
}

/// The roles that may issue a command: the office alone, or the office and the directors.
const OFFICE: &[Role] = &[Role::Admin];
const OFFICE_AND_DIRECTORS: &[Role] = &[Role::Admin, Role::Director];

impl CommandKind {
    /// Whether this command changes an account. Those are run through the accounts resource,
    /// which keeps the credentials (user name, password hash) the log never holds.
    pub fn is_account(self) -> bool {
        use CommandKind as K;
        matches!(
            self,
            K::CreateAccount
                | K::ChangeAccountRole
                | K::DisableAccount
                | K::EnableAccount
                | K::SetAccountPassword
        )
    }

    /// Whether this command changes an integration's subscription. Those are run through the
    /// subscriptions resource, which makes the signing secret the command relies on.
    pub fn is_subscription(self) -> bool {
        use CommandKind as K;
        matches!(
            self,
            K::CreateSubscription
                | K::PauseSubscription
                | K::ResumeSubscription
                | K::RewindSubscription
                | K::RotateSubscriptionSecret
                | K::DisableSubscription
                | K::DeleteSubscription
        )
    }

    /// The roles that may issue this command. Directors record what happens within their
    /// pairing (visits, contacts, issues and the first steps of answering them); everything
    /// that registers, pairs, escalates or erases is the office's. Auditors and integrations
    /// run no command.
    pub fn issuers(self) -> &'static [Role] {
        use CommandKind as K;
        match self {
            K::RecordVisit
            | K::CorrectVisit
            | K::VoidVisit
            | K::RecordContact
            | K::RaiseIssue
            | K::ResolveOnSpot
            | K::NoteIssueProgress
            | K::ConfirmResolution => OFFICE_AND_DIRECTORS,
            K::RegisterModelWorker
            | K::AssessHardship
            | K::ExitHardship
            | K::RecordRelocation
            | K::RecordDeath
            | K::AppointDirector
            | K::EndDirectorTerm
            | K::RegisterBody
            | K::AssignPair
            | K::EndPair
            | K::AcknowledgeIssue
            | K::EscalateIssue
            | K::RecordBodyResponse
            | K::ResolveIssue
            | K::CloseIssue
            | K::ReopenIssue
            | K::ErasePersonalData
            // Who is sent which data where is the office's decision alone.
            | K::CreateSubscription
            | K::PauseSubscription
            | K::ResumeSubscription
            | K::RewindSubscription
            | K::RotateSubscriptionSecret
            | K::DisableSubscription
            | K::DeleteSubscription
            // Who may sign in, and as what, is the office's decision alone.
            | K::CreateAccount
            | K::ChangeAccountRole
            | K::DisableAccount
            | K::EnableAccount
            // On any account, only an administrator (a reset). The holder of an account also
            // changes their own password, whatever their role: the accounts resource allows
            // that for the caller's own account only, after checking the current password.
            | K::SetAccountPassword => OFFICE,
        }
    }
}

/// A record a command touches. (Not the *data subject* whose key seals a personal value,
/// [`crate::PersonalRef::subject`], although several of these are data subjects too.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A model worker's file.
    ModelWorker(ModelWorkerId),
    /// A director.
    Director(DirectorId),
    /// A pairing.
    Pairing(PairingId),
    /// A visit.
    Visit(VisitId),
    /// An issue.
    Issue(IssueId),
    /// A daily contact.
    Contact(ContactId),
    /// A body (union, department, association, volunteer team).
    Body(BodyId),
    /// A person named in a record who is neither a model worker nor a director.
    Person(PersonId),
    /// The data subject of an erasure: a model worker, director or person id.
    DataSubject(Uuid),
    /// An integration's subscription.
    Subscription(SubscriptionId),
    /// An API token (the integration that may read a subscription's status).
    Token(Uuid),
    /// An account a person signs in with.
    Account(AccountId),
}

impl Subject {
    /// The record's id.
    pub fn uuid(self) -> Uuid {
        match self {
            Subject::ModelWorker(id) => id.uuid(),
            Subject::Director(id) => id.uuid(),
            Subject::Pairing(id) => id.uuid(),
            Subject::Visit(id) => id.uuid(),
            Subject::Issue(id) => id.uuid(),
            Subject::Contact(id) => id.uuid(),
            Subject::Body(id) => id.uuid(),
            Subject::Person(id) => id.uuid(),
            Subject::DataSubject(id) => id,
            Subject::Subscription(id) => id.uuid(),
            Subject::Token(id) => id,
            Subject::Account(id) => id.uuid(),
        }
    }

    /// The stream that says which model worker this record is about, for the records that
    /// name their model worker only there (an issue, a visit); `None` for the others.
    pub fn owner_stream(self) -> Option<StreamName> {
        match self {
            Subject::Visit(id) => Some(StreamName::new(Category::Visit, id)),
            Subject::Issue(id) => Some(StreamName::new(Category::Issue, id)),
            Subject::ModelWorker(_)
            | Subject::Director(_)
            | Subject::Pairing(_)
            | Subject::Contact(_)
            | Subject::Body(_)
            | Subject::Person(_)
            | Subject::DataSubject(_)
            | Subject::Subscription(_)
            | Subject::Token(_)
            | Subject::Account(_) => None,
        }
    }
}

/// The model worker a visit's or an issue's state is about; `None` before it is recorded or
/// raised (and for other streams).
pub fn model_worker_of(state: &State) -> Option<ModelWorkerId> {
    match state {
        State::Visit(v) => v.info.as_ref().map(|i| i.model_worker_id),
        State::Issue(i) => i.info.as_ref().map(|i| i.model_worker_id),
        _ => None,
    }
}

/// How a command touches a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    /// The command creates or changes this record, or files something under it: a caller
    /// confined to their own pairing may touch it only there.
    About,
    /// The command names this record in passing (who came along on a visit, the body an issue
    /// is relayed to, the director who owns an issue's follow-up): naming it grants nothing,
    /// and the decision's own rules judge it.
    Mentions,
}

/// One record a command touches, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Touch {
    /// How.
    pub relation: Relation,
    /// Which record.
    pub subject: Subject,
}

fn about(subject: Subject) -> Touch {
    Touch {
        relation: Relation::About,
        subject,
    }
}

fn mentions(subject: Subject) -> Touch {
    Touch {
        relation: Relation::Mentions,
        subject,
    }
}

/// Who took part in a visit, and the bodies they came from: mentioned, not what it is about.
fn participants(list: &[Participant], out: &mut Vec<Touch>) {
    for p in list {
        match p.who {
            ParticipantWho::Director { director_id } => {
                out.push(mentions(Subject::Director(director_id)));
            }
            ParticipantWho::Named { person_id, .. } => {
                out.push(mentions(Subject::Person(person_id)));
            }
            ParticipantWho::Unnamed => {}
        }
        if let Some(body) = p.body_id {
            out.push(mentions(Subject::Body(body)));
        }
    }
}

fn changed_participants(changes: &VisitChanges, out: &mut Vec<Touch>) {
    if let Some(list) = &changes.participants {
        participants(list, out);
    }
}

impl Command {
    /// Every record this command touches, nested ones included (a visit's participants), in
    /// a stable order without repeats.
    pub fn subjects(&self) -> Vec<Touch> {
        use Command as K;
        use Subject as S;
        let mut out = Vec::new();
        match self {
            K::RegisterModelWorker(c) => out.push(about(S::ModelWorker(c.model_worker_id))),
            K::AssessHardship(c) => out.push(about(S::ModelWorker(c.model_worker_id))),
            K::ExitHardship(c) => out.push(about(S::ModelWorker(c.model_worker_id))),
            K::RecordRelocation(c) => out.push(about(S::ModelWorker(c.model_worker_id))),
            K::RecordDeath(c) => out.push(about(S::ModelWorker(c.model_worker_id))),
            K::AppointDirector(c) => {
                out.push(about(S::Director(c.director_id)));
                out.push(mentions(S::Body(c.body_id)));
                // The director's own model-worker file, when they have one.
                out.extend(c.model_worker_id.map(|m| mentions(S::ModelWorker(m))));
            }
            K::EndDirectorTerm(c) => out.push(about(S::Director(c.director_id))),
            K::RegisterBody(c) => out.push(about(S::Body(c.body_id))),
            K::AssignPair(c) => {
                out.push(about(S::Pairing(c.pairing_id)));
                out.push(about(S::Director(c.director_id)));
                out.push(about(S::ModelWorker(c.model_worker_id)));
            }
            K::EndPair(c) => out.push(about(S::Pairing(c.pairing_id))),
            K::RecordVisit(c) => {
                out.push(about(S::Visit(c.visit_id)));
                out.push(about(S::ModelWorker(c.model_worker_id)));
                out.extend(c.pairing_id.map(|p| about(S::Pairing(p))));
                participants(&c.participants, &mut out);
            }
            K::CorrectVisit(c) => {
                out.push(about(S::Visit(c.visit_id)));
                changed_participants(&c.changes, &mut out);
            }
            K::VoidVisit(c) => out.push(about(S::Visit(c.visit_id))),
            K::RaiseIssue(c) => {
                out.push(about(S::Issue(c.issue_id)));
                out.push(about(S::ModelWorker(c.model_worker_id)));
                // The visit it was heard at: filing an issue under a visit is about that visit.
                out.extend(c.visit_id.map(|v| about(S::Visit(v))));
            }
            K::ResolveOnSpot(c) => out.push(about(S::Issue(c.issue_id))),
            K::AcknowledgeIssue(c) => {
                out.push(about(S::Issue(c.issue_id)));
                out.push(mentions(S::Director(c.owner)));
            }
            K::EscalateIssue(c) => {
                out.push(about(S::Issue(c.issue_id)));
                out.push(mentions(S::Body(c.to_body)));
            }
            K::RecordBodyResponse(c) => {
                out.push(about(S::Issue(c.issue_id)));
                out.push(mentions(S::Body(c.body_id)));
                out.extend(c.redirected_to.map(|b| mentions(S::Body(b))));
            }
            K::NoteIssueProgress(c) => out.push(about(S::Issue(c.issue_id))),
            K::ResolveIssue(c) => {
                out.push(about(S::Issue(c.issue_id)));
                out.extend(c.resolved_by.map(|b| mentions(S::Body(b))));
            }
            K::ConfirmResolution(c) => out.push(about(S::Issue(c.issue_id))),
            K::CloseIssue(c) => out.push(about(S::Issue(c.issue_id))),
            K::ReopenIssue(c) => out.push(about(S::Issue(c.issue_id))),
            K::RecordContact(c) => {
                out.push(about(S::Contact(c.contact_id)));
                out.push(about(S::Pairing(c.pairing_id)));
            }
            K::ErasePersonalData(c) => out.push(about(S::DataSubject(c.subject_id))),
            K::CreateSubscription(c) => {
                out.push(about(S::Subscription(c.subscription_id)));
                out.extend(c.owner_token_id.map(|t| mentions(S::Token(t))));
            }
            K::PauseSubscription(c) => out.push(about(S::Subscription(c.subscription_id))),
            K::ResumeSubscription(c) => out.push(about(S::Subscription(c.subscription_id))),
            K::RewindSubscription(c) => out.push(about(S::Subscription(c.subscription_id))),
            K::RotateSubscriptionSecret(c) => out.push(about(S::Subscription(c.subscription_id))),
            K::DisableSubscription(c) => out.push(about(S::Subscription(c.subscription_id))),
            K::DeleteSubscription(c) => out.push(about(S::Subscription(c.subscription_id))),
            K::CreateAccount(c) => {
                out.push(about(S::Account(c.account_id)));
                out.extend(c.director_id.map(|d| mentions(S::Director(d))));
            }
            K::ChangeAccountRole(c) => {
                out.push(about(S::Account(c.account_id)));
                out.extend(c.director_id.map(|d| mentions(S::Director(d))));
            }
            K::DisableAccount(c) => out.push(about(S::Account(c.account_id))),
            K::EnableAccount(c) => out.push(about(S::Account(c.account_id))),
            K::SetAccountPassword(c) => out.push(about(S::Account(c.account_id))),
        }
        // One record can be named twice (a director listed twice, one body for several
        // participants); a record both about and mentioned counts as about.
        out.sort();
        out.dedup();
        out
    }
}

/// What a director's commands may be about: their own active pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The director.
    pub director: DirectorId,
    /// Their active pairing.
    pub pairing: PairingId,
    /// The model worker of that pairing.
    pub model_worker: ModelWorkerId,
}

impl Scope {
    /// The scope of `director` from their stream's state; `None` without an active pairing,
    /// when a director's commands reach nothing.
    pub fn of(director: DirectorId, state: &State) -> Option<Scope> {
        let State::Director(d) = state else {
            return None;
        };
        d.active_pairing().map(|p| Scope {
            director,
            pairing: p.pairing_id,
            model_worker: ModelWorkerId(p.counterpart),
        })
    }

    /// Whether a command about `subject` stays within this scope. `owner` is the model worker
    /// the subject's [`Subject::owner_stream`] names (`None` when that stream has no state
    /// yet: a visit or issue being created, which the command files under the model worker it
    /// names beside it, judged on its own).
    pub fn covers(&self, subject: Subject, owner: Option<ModelWorkerId>) -> bool {
        match subject {
            Subject::Pairing(p) => p == self.pairing,
            Subject::ModelWorker(m) => m == self.model_worker,
            Subject::Visit(_) | Subject::Issue(_) => owner.is_none_or(|m| m == self.model_worker),
            Subject::Director(d) => d == self.director,
            // A contact is recorded once, in the pairing the command names beside it (judged
            // on its own), and never referred to again; an id already used is the decision's
            // `contact_already_recorded`.
            Subject::Contact(_) => true,
            // A pairing holds no body, other person or erasure of its own to act on.
            Subject::Body(_) | Subject::Person(_) | Subject::DataSubject(_) => false,
            // Integrations are the office's, never a pairing's.
            Subject::Subscription(_) | Subject::Token(_) => false,
            // A director's own account is changed through the accounts resource, which checks
            // that it is theirs; no pairing reaches an account.
            Subject::Account(_) => false,
        }
    }
}
