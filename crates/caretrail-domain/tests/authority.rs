//! Who may run each command, and what each command is about: every command declares its
//! issuers and its subjects (nested ones included), and a director's scope covers their own
//! pairing only.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use caretrail_domain::authority::model_worker_of;
use caretrail_domain::command::COMMAND_NAMES;
use caretrail_domain::decide::{Context, Policy};
use caretrail_domain::testing::{InMemory, TEST_ACTOR};
use caretrail_domain::{
    Category, Command, CommandKind, DirectorId, ModelWorkerId, PairingId, Reach, Relation, Role,
    Scope, StreamName, Subject, demo,
};
use serde_json::{Value, json};
use uuid::Uuid;

use Role::{Auditor, Integration};

const ROLES: [Role; 4] = [Role::Admin, Role::Director, Auditor, Integration];

/// A distinct id for each field of the examples, so each can be traced to a subject.
fn id(n: u128) -> Uuid {
    Uuid::from_u128(0xA000 + n)
}

/// The director, pairing and model worker of the scope the director examples stay in.
const OWN_DIRECTOR: u128 = 1;
const OWN_PAIRING: u128 = 2;
const OWN_WORKER: u128 = 3;

fn scope() -> Scope {
    Scope {
        director: DirectorId(id(OWN_DIRECTOR)),
        pairing: PairingId(id(OWN_PAIRING)),
        model_worker: ModelWorkerId(id(OWN_WORKER)),
    }
}

/// A body of every command with every optional id given (a visit with a director along, a
/// named person and a body; an issue raised at a visit). The commands directors may run are
/// about the [`scope`]'s pairing. The `match` is exhaustive: a new command needs an example.
fn example(kind: CommandKind) -> Value {
    use CommandKind as K;
    let participants = json!([
        { "who": { "kind": "director", "director_id": id(OWN_DIRECTOR) }, "role": "lead" },
        { "who": { "kind": "director", "director_id": id(20) }, "role": "companion" },
        { "who": { "kind": "named", "person_id": id(21), "name": "许雄强" },
          "role": "union_official", "body_id": id(22) },
        { "who": { "kind": "unnamed" }, "role": "volunteer" }
    ]);
    match kind {
        K::RegisterModelWorker => json!({ "model_worker_id": id(10),
            "honour": "national_model_worker", "region_code": "330106", "name": "余培叶" }),
        K::AssessHardship => json!({ "model_worker_id": id(10), "tier": "deep",
            "causes": ["illness"] }),
        K::ExitHardship => json!({ "model_worker_id": id(10) }),
        K::RecordRelocation => json!({ "model_worker_id": id(10), "region_code": "330106" }),
        K::RecordDeath => json!({ "model_worker_id": id(10), "died_on": "2021-10-01" }),
        K::AppointDirector => json!({ "director_id": id(11), "body_id": id(12),
            "role": "standing_director", "term": { "from": "2020-01-01" }, "name": "冯亚丽",
            "model_worker_id": id(13) }),
        K::EndDirectorTerm => json!({ "director_id": id(11) }),
        K::RegisterBody => json!({ "body_id": id(12), "kind": "association", "name": "协会" }),
        K::AssignPair => json!({ "pairing_id": id(14), "director_id": id(11),
            "model_worker_id": id(10), "effective_from": "2021-01-01" }),
        K::EndPair => json!({ "pairing_id": id(14), "reason": "reassigned" }),
        K::RecordVisit => json!({ "visit_id": id(30), "model_worker_id": id(OWN_WORKER),
            "pairing_id": id(OWN_PAIRING), "visited_on": "2021-10-01", "region_code": "330106",
            "participants": participants }),
        K::CorrectVisit => json!({ "visit_id": id(30), "reason": "更正",
            "changes": { "participants": participants } }),
        K::VoidVisit => json!({ "visit_id": id(30), "reason": "误录" }),
        K::RaiseIssue => json!({ "issue_id": id(31), "model_worker_id": id(OWN_WORKER),
            "visit_id": id(30), "category": "medical", "description": "看病难",
            "urgency": "normal" }),
        K::ResolveOnSpot => json!({ "issue_id": id(31), "summary": "已答复" }),
        K::AcknowledgeIssue => json!({ "issue_id": id(31), "owner": id(11),
            "respond_by": "2021-11-30" }),
        K::EscalateIssue => json!({ "issue_id": id(31), "to_body": id(12), "channel": "letter",
            "due_by": "2021-11-30" }),
        K::RecordBodyResponse => json!({ "issue_id": id(31), "body_id": id(12),
            "response": "redirected", "redirected_to": id(15) }),
        K::NoteIssueProgress => json!({ "issue_id": id(31), "note": "已联系" }),
        K::ResolveIssue => json!({ "issue_id": id(31), "outcome": "resolved", "summary": "已解决",
            "resolved_by": id(12) }),
        K::ConfirmResolution => json!({ "issue_id": id(31), "via": "phone",
            "satisfaction": "satisfied" }),
        K::CloseIssue => json!({ "issue_id": id(31) }),
        K::ReopenIssue => json!({ "issue_id": id(31), "reason": "复发" }),
        K::RecordContact => json!({ "contact_id": id(32), "pairing_id": id(OWN_PAIRING),
            "on": "2021-10-02", "channel": "phone" }),
        K::ErasePersonalData => json!({ "subject_id": id(10), "legal_basis": "subject_request" }),
        K::CreateSubscription => json!({ "subscription_id": id(40), "name": "省总工会",
            "filter": { "types": ["VisitRecorded"], "categories": ["visit"] }, "start_after": 0,
            "delivery": { "kind": "webhook", "url": "https://example.com/hook" },
            "owner_token_id": id(41) }),
        K::PauseSubscription => json!({ "subscription_id": id(40) }),
        K::ResumeSubscription => json!({ "subscription_id": id(40) }),
        K::RewindSubscription => json!({ "subscription_id": id(40), "after": 0 }),
        K::RotateSubscriptionSecret => json!({ "subscription_id": id(40), "generation": 2,
            "grace_seconds": 60 }),
        K::DisableSubscription => json!({ "subscription_id": id(40), "reason": "gone" }),
        K::DeleteSubscription => json!({ "subscription_id": id(40) }),
        K::CreateAccount => json!({ "account_id": id(50), "role": "director",
            "director_id": id(11) }),
        K::ChangeAccountRole => json!({ "account_id": id(50), "role": "director",
            "director_id": id(11) }),
        K::DisableAccount => json!({ "account_id": id(50) }),
        K::EnableAccount => json!({ "account_id": id(50) }),
        K::SetAccountPassword => json!({ "account_id": id(50), "reason": "reset" }),
    }
}

fn command(kind: CommandKind) -> Command {
    Command::parse(kind.name(), example(kind))
        .unwrap_or_else(|e| panic!("the example of {} does not parse: {e}", kind.name()))
}

/// Every uuid anywhere in a JSON body, nested ones included.
fn uuids(v: &Value, out: &mut Vec<Uuid>) {
    match v {
        Value::String(s) => out.extend(s.parse::<Uuid>().ok()),
        Value::Array(a) => a.iter().for_each(|v| uuids(v, out)),
        Value::Object(m) => m.values().for_each(|v| uuids(v, out)),
        _ => {}
    }
}

#[test]
fn every_command_has_a_kind_and_a_name_that_lead_back_to_it() {
    let names: Vec<&str> = CommandKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names, COMMAND_NAMES);
    for &kind in CommandKind::ALL {
        assert_eq!(CommandKind::from_name(kind.name()), Some(kind));
        assert_eq!(command(kind).kind(), kind);
    }
    assert_eq!(CommandKind::from_name("MakeCoffee"), None);
    assert_eq!(CommandKind::from_name("recordvisit"), None);
}

/// The walk over every command: each says who may issue it and what it is about, and every id
/// its body holds, nested ones included, is among its declared subjects.
#[test]
fn every_command_declares_its_issuers_and_every_record_it_touches() {
    for &kind in CommandKind::ALL {
        let name = kind.name();
        let issuers = kind.issuers();
        assert!(
            issuers.contains(&Role::Admin),
            "{name}: the office runs every command"
        );
        for role in [Auditor, Integration] {
            assert!(!issuers.contains(&role), "{name}: {role:?} runs no command");
        }
        let subjects = command(kind).subjects();
        assert!(
            subjects.iter().any(|t| t.relation == Relation::About),
            "{name} is about no record"
        );
        let mut ids = Vec::new();
        uuids(&example(kind), &mut ids);
        for id in ids {
            assert!(
                subjects.iter().any(|t| t.subject.uuid() == id),
                "{name}: the id {id} in its body is not among its subjects {subjects:?}"
            );
        }
    }
}

#[test]
fn only_the_office_and_directors_run_commands_and_directors_only_their_pairings_records() {
    let director_commands: Vec<&str> = CommandKind::ALL
        .iter()
        .filter(|k| Role::Director.may_run(**k))
        .map(|k| k.name())
        .collect();
    assert_eq!(
        director_commands,
        [
            "RecordVisit",
            "CorrectVisit",
            "VoidVisit",
            "RaiseIssue",
            "ResolveOnSpot",
            "NoteIssueProgress",
            "ConfirmResolution",
            "RecordContact",
        ]
    );
    let runs: Vec<bool> = ROLES.iter().map(|r| r.runs_commands()).collect();
    assert_eq!(runs, [true, true, false, false]);
    let reach: Vec<Reach> = ROLES.iter().map(|r| r.reach()).collect();
    assert_eq!(
        reach,
        [
            Reach::Everything,
            Reach::OwnPairing,
            Reach::Nothing,
            Reach::Nothing
        ]
    );
    for role in ROLES {
        assert_eq!(Role::parse(role.as_str()), Some(role));
    }
}

/// The subjects of a visit: what it is about, and who came along (mentioned, nested in its
/// participants), which a director's scope does not judge.
#[test]
fn a_visits_participants_are_mentioned_not_what_it_is_about() {
    let subjects = command(CommandKind::RecordVisit).subjects();
    let about: BTreeSet<Subject> = subjects
        .iter()
        .filter(|t| t.relation == Relation::About)
        .map(|t| t.subject)
        .collect();
    let expected: BTreeSet<Subject> = [
        Subject::Visit(id(30).into()),
        Subject::ModelWorker(ModelWorkerId(id(OWN_WORKER))),
        Subject::Pairing(PairingId(id(OWN_PAIRING))),
    ]
    .into();
    assert_eq!(about, expected);
    let mentioned: Vec<Subject> = subjects
        .iter()
        .filter(|t| t.relation == Relation::Mentions)
        .map(|t| t.subject)
        .collect();
    for s in [
        Subject::Director(DirectorId(id(OWN_DIRECTOR))),
        Subject::Director(DirectorId(id(20))),
        Subject::Person(id(21).into()),
        Subject::Body(id(22).into()),
    ] {
        assert!(
            mentioned.contains(&s),
            "{s:?} is not mentioned: {subjects:?}"
        );
    }
    // A correction's new participant list is nested in its changes.
    let corrected = command(CommandKind::CorrectVisit).subjects();
    assert!(
        corrected.iter().any(|t| t.relation == Relation::Mentions
            && t.subject == Subject::Director(DirectorId(id(20))))
    );
}

/// The authorization table in the pure domain: per record kind, what a director's scope
/// covers. An issue or visit is judged by the model worker its own stream names.
#[test]
fn a_directors_scope_covers_their_own_pairing_and_nothing_else() {
    let own = scope();
    let other_worker = Some(ModelWorkerId(id(40)));
    let mine = Some(own.model_worker);
    let table: &[(Subject, Option<ModelWorkerId>, bool)] = &[
        (Subject::Pairing(own.pairing), None, true),
        (Subject::Pairing(PairingId(id(41))), None, false),
        (Subject::ModelWorker(own.model_worker), None, true),
        (Subject::ModelWorker(ModelWorkerId(id(40))), None, false),
        (Subject::Director(own.director), None, true),
        (Subject::Director(DirectorId(id(42))), None, false),
        // A new visit or issue: filed under the model worker the command names, judged apart.
        (Subject::Visit(id(43).into()), None, true),
        (Subject::Visit(id(43).into()), mine, true),
        (Subject::Visit(id(43).into()), other_worker, false),
        (Subject::Issue(id(44).into()), None, true),
        (Subject::Issue(id(44).into()), mine, true),
        (Subject::Issue(id(44).into()), other_worker, false),
        (Subject::Contact(id(45).into()), None, true),
        (Subject::Body(id(46).into()), None, false),
        (Subject::Person(id(47).into()), None, false),
        (Subject::DataSubject(own.model_worker.uuid()), None, false),
    ];
    for &(subject, owner, covered) in table {
        assert_eq!(
            own.covers(subject, owner),
            covered,
            "{subject:?} owned by {owner:?}"
        );
    }
    // Every command a director may run, as the examples write it, stays in the scope; the same
    // command about another model worker's issue or visit (nested: the visit an issue is
    // raised at) does not.
    for &kind in CommandKind::ALL
        .iter()
        .filter(|k| Role::Director.may_run(**k))
    {
        for t in command(kind).subjects() {
            if t.relation == Relation::About {
                assert!(own.covers(t.subject, None), "{}: {t:?}", kind.name());
                assert!(own.covers(t.subject, mine), "{}: {t:?}", kind.name());
            }
        }
    }
    let mut raised_at_another_visit = example(CommandKind::RaiseIssue);
    raised_at_another_visit["visit_id"] = json!(id(48));
    let command = Command::parse("RaiseIssue", raised_at_another_visit).unwrap();
    let refused = command.subjects().into_iter().any(|t| {
        let owner = (t.subject == Subject::Visit(id(48).into())).then_some(ModelWorkerId(id(40)));
        t.relation == Relation::About && !own.covers(t.subject, owner)
    });
    assert!(refused, "an issue raised at another model worker's visit");
}

/// The states the HTTP layer reads for a director: their active pairing from their stream, and
/// the model worker of an existing visit or issue from its own.
#[test]
fn a_directors_scope_is_their_active_pairing_and_visits_and_issues_name_their_model_worker() {
    let policy = Policy::default();
    let ctx = Context {
        today: demo::today(),
        actor: TEST_ACTOR,
        policy: &policy,
    };
    let mut store = InMemory::new();
    for c in demo::october_2021() {
        store.execute(&c, &ctx).expect("the demo is accepted");
    }
    let feng = demo::directors::FENG_YALI;
    let director = store.state(&StreamName::new(Category::Director, feng));
    assert_eq!(
        Scope::of(feng, &director),
        Some(Scope {
            director: feng,
            pairing: demo::pairing(1),
            model_worker: demo::workers::YU_PEIYE,
        })
    );
    // A stream of another kind makes no scope.
    let visit = Subject::Visit(demo::visit(1));
    let visit_stream = visit
        .owner_stream()
        .expect("a visit names its model worker");
    assert_eq!(
        visit_stream,
        StreamName::new(Category::Visit, demo::visit(1))
    );
    assert_eq!(Scope::of(feng, &store.state(&visit_stream)), None);
    assert_eq!(
        model_worker_of(&store.state(&visit_stream)),
        Some(demo::workers::YU_PEIYE)
    );
    let issue = Subject::Issue(demo::PIPE_ISSUE).owner_stream().unwrap();
    assert!(model_worker_of(&store.state(&issue)).is_some());
    // Before it is recorded, a visit names nobody: the command creating it is judged by the
    // model worker it names beside it.
    let new = StreamName::new(Category::Visit, id(99));
    assert_eq!(model_worker_of(&store.state(&new)), None);
    assert_eq!(Subject::Pairing(demo::pairing(1)).owner_stream(), None);
    assert_eq!(
        Subject::ModelWorker(demo::workers::YU_PEIYE).owner_stream(),
        None
    );
}
