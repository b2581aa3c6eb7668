//! The authorization table, end to end on SQLite and PostgreSQL: per command and per role,
//! whether the role may run it at all (refused before the body is read), and for a director,
//! which records their commands may be about: their own pairing's, not another director's,
//! including records named only inside the command (the visit an issue is raised at, an
//! existing issue or visit, whose model worker only its own stream names).

use caretrail_domain::command::COMMAND_NAMES;
use caretrail_domain::demo;
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, spawn};

caretrail_store::both_backends!(
    each_role_runs_exactly_its_commands,
    a_director_acts_only_within_their_own_pairing,
);

/// The commands a director may run (about their own pairing); every other command is the
/// administrator's alone, and auditors and integrations run none.
const DIRECTOR_COMMANDS: &[&str] = &[
    "RecordVisit",
    "CorrectVisit",
    "VoidVisit",
    "RecordContact",
    "RaiseIssue",
    "ResolveOnSpot",
    "NoteIssueProgress",
    "ConfirmResolution",
];

/// The status of an answer and its problem's code (`None` for an accepted command).
type Answer = (StatusCode, Option<String>);

/// Posts a command as `token`.
async fn post(t: &TestApp, token: &str, command: &str, body: &Value) -> Answer {
    let res = t.post(token, command, body.clone()).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    (status, body["code"].as_str().map(str::to_owned))
}

/// Per command and role: an administrator and, for their commands, a director get past the
/// role check (an empty body then fails validation, 422); everyone else is refused with 403
/// before the body is read.
async fn each_role_runs_exactly_its_commands(h: &Harness) {
    let t = spawn(h).await;
    let director = t
        .token(Role::Director, Some(demo::directors::FENG_YALI.uuid()))
        .await;
    let auditor = t.token(Role::Auditor, None).await;
    let integration = t.token(Role::Integration, None).await;
    let roles = [
        (Role::Admin, &t.admin),
        (Role::Director, &director),
        (Role::Auditor, &auditor),
        (Role::Integration, &integration),
    ];
    assert_eq!(COMMAND_NAMES.len(), 37);
    for &command in COMMAND_NAMES {
        // Subscriptions are changed through their own resource, which makes the secret a
        // webhook needs, and accounts through theirs, which keeps the credentials; the
        // command route does not exist for them, for any role.
        if caretrail_domain::CommandKind::from_name(command)
            .is_some_and(|k| k.is_subscription() || k.is_account())
        {
            for (role, token) in &roles {
                let answer = post(&t, token, command, &json!({})).await;
                assert_eq!(
                    answer,
                    (StatusCode::NOT_FOUND, Some("not_found".to_owned())),
                    "{role:?} {command}"
                );
            }
            continue;
        }
        for (role, token) in &roles {
            let allowed = match role {
                Role::Admin => true,
                Role::Director => DIRECTOR_COMMANDS.contains(&command),
                Role::Auditor | Role::Integration => false,
            };
            let answer = post(&t, token, command, &json!({})).await;
            let expected = if allowed {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("validation_failed".to_owned()),
                )
            } else {
                (StatusCode::FORBIDDEN, Some("forbidden".to_owned()))
            };
            assert_eq!(answer, expected, "{role:?} {command}");
        }
    }
    // A name that is no command's has no path: 404 to everyone.
    for (role, token) in &roles {
        let (status, _) = post(&t, token, "MakeCoffee", &json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{role:?}");
    }
}

fn visit(visit: Uuid, worker: Uuid, pairing: Uuid, lead: Uuid, along: Option<Uuid>) -> Value {
    let mut participants =
        vec![json!({ "who": { "kind": "director", "director_id": lead }, "role": "lead" })];
    if let Some(d) = along {
        participants
            .push(json!({ "who": { "kind": "director", "director_id": d }, "role": "companion" }));
    }
    json!({
        "visit_id": visit, "model_worker_id": worker, "pairing_id": pairing,
        "visited_on": "2025-01-15", "region_code": "330106", "participants": participants
    })
}

fn issue(issue: Uuid, worker: Uuid, at_visit: Option<Uuid>) -> Value {
    let mut body = json!({ "issue_id": issue, "model_worker_id": worker,
                           "category": "medical", "description": "看病难", "urgency": "normal" });
    if let Some(v) = at_visit {
        body["visit_id"] = json!(v);
    }
    body
}

/// Feng Yali's pairing is with Yu Peiye (pairing 1), Yang Weiwei's with Wang Meiwen
/// (pairing 2). Feng may act on her own pairing's records, with another director along; not
/// on Yang's, whether the command names the other pairing, its model worker, or an existing
/// visit or issue about them, also when that is nested (the visit an issue is raised at).
async fn a_director_acts_only_within_their_own_pairing(h: &Harness) {
    let t = spawn(h).await;
    let feng = demo::directors::FENG_YALI.uuid();
    let yang = demo::directors::YANG_WEIWEI.uuid();
    let chen = demo::directors::CHEN_MEIFANG.uuid();
    let yu = demo::workers::YU_PEIYE.uuid();
    let wang = demo::workers::WANG_MEIWEN.uuid();
    let (own_pairing, other_pairing) = (demo::pairing(1).uuid(), demo::pairing(2).uuid());
    let director = t.token(Role::Director, Some(feng)).await;
    let created = (StatusCode::CREATED, None);
    let forbidden = (StatusCode::FORBIDDEN, Some("forbidden".to_owned()));

    // The office records on Yang's pairing: a visit and an issue about Wang Meiwen.
    let (other_visit, other_issue) = (Uuid::now_v7(), Uuid::now_v7());
    let body = visit(other_visit, wang, other_pairing, yang, None);
    assert_eq!(post(&t, &t.admin, "RecordVisit", &body).await, created);
    let body = issue(other_issue, wang, None);
    assert_eq!(post(&t, &t.admin, "RaiseIssue", &body).await, created);

    let (own_visit, own_issue) = (Uuid::now_v7(), Uuid::now_v7());
    let reason = "更正";
    let table: Vec<(&str, Value, Answer)> = vec![
        // Visits: her own pairing, with another director along (a mentioned participant).
        (
            "RecordVisit",
            visit(own_visit, yu, own_pairing, feng, Some(yang)),
            created.clone(),
        ),
        (
            "RecordVisit",
            visit(Uuid::now_v7(), wang, other_pairing, feng, None),
            forbidden.clone(),
        ),
        (
            "RecordVisit",
            visit(Uuid::now_v7(), yu, other_pairing, feng, None),
            forbidden.clone(),
        ),
        (
            "RecordVisit",
            visit(Uuid::now_v7(), wang, own_pairing, feng, None),
            forbidden.clone(),
        ),
        // An existing visit id is judged by the model worker its stream names.
        (
            "RecordVisit",
            visit(other_visit, yu, own_pairing, feng, None),
            forbidden.clone(),
        ),
        (
            "CorrectVisit",
            json!({ "visit_id": own_visit, "reason": reason,
                    "changes": { "participants": [
                        { "who": { "kind": "director", "director_id": feng }, "role": "lead" },
                        { "who": { "kind": "director", "director_id": chen }, "role": "companion" } ] } }),
            created.clone(),
        ),
        (
            "CorrectVisit",
            json!({ "visit_id": other_visit, "reason": reason,
                    "changes": { "region_code": "330102" } }),
            forbidden.clone(),
        ),
        (
            "VoidVisit",
            json!({ "visit_id": other_visit, "reason": reason }),
            forbidden.clone(),
        ),
        // Contacts.
        (
            "RecordContact",
            json!({ "contact_id": Uuid::now_v7(), "pairing_id": own_pairing,
                    "on": "2025-01-16", "channel": "phone" }),
            created.clone(),
        ),
        (
            "RecordContact",
            json!({ "contact_id": Uuid::now_v7(), "pairing_id": other_pairing,
                    "on": "2025-01-16", "channel": "phone" }),
            forbidden.clone(),
        ),
        // Issues: raised about her model worker at her visit; not about Wang Meiwen, nor at
        // a visit to Wang Meiwen (nested in the command).
        (
            "RaiseIssue",
            issue(own_issue, yu, Some(own_visit)),
            created.clone(),
        ),
        (
            "RaiseIssue",
            issue(Uuid::now_v7(), wang, None),
            forbidden.clone(),
        ),
        (
            "RaiseIssue",
            issue(Uuid::now_v7(), yu, Some(other_visit)),
            forbidden.clone(),
        ),
        (
            "RaiseIssue",
            issue(other_issue, yu, None),
            forbidden.clone(),
        ),
        // The steps of an issue a director may take: on hers, not on one about Wang Meiwen.
        (
            "NoteIssueProgress",
            json!({ "issue_id": own_issue, "note": "已联系" }),
            created.clone(),
        ),
        (
            "NoteIssueProgress",
            json!({ "issue_id": other_issue, "note": "已联系" }),
            forbidden.clone(),
        ),
        (
            "ResolveOnSpot",
            json!({ "issue_id": other_issue, "summary": "已答复" }),
            forbidden.clone(),
        ),
        (
            "ResolveOnSpot",
            json!({ "issue_id": own_issue, "summary": "已答复" }),
            created.clone(),
        ),
        (
            "ConfirmResolution",
            json!({ "issue_id": other_issue, "via": "phone", "satisfaction": "satisfied" }),
            forbidden.clone(),
        ),
        (
            "ConfirmResolution",
            json!({ "issue_id": own_issue, "via": "phone", "satisfaction": "satisfied" }),
            created.clone(),
        ),
        (
            "VoidVisit",
            json!({ "visit_id": own_visit, "reason": reason }),
            created.clone(),
        ),
    ];
    for (i, (command, body, expected)) in table.iter().enumerate() {
        let answer = post(&t, &director, command, body).await;
        assert_eq!(&answer, expected, "row {i}: {command} {body}");
    }

    // A visit to her model worker that another director led is her pairing's, but she may not
    // correct it: the domain's refusal of the caller, also 403.
    let led_by_chen = Uuid::now_v7();
    let body = visit(led_by_chen, yu, own_pairing, chen, None);
    assert_eq!(post(&t, &t.admin, "RecordVisit", &body).await, created);
    let correction = json!({ "visit_id": led_by_chen, "reason": reason,
                             "changes": { "region_code": "330102" } });
    assert_eq!(
        post(&t, &director, "CorrectVisit", &correction).await,
        (
            StatusCode::FORBIDDEN,
            Some("visit_not_led_by_actor".to_owned())
        )
    );

    // The office acts on any pairing.
    let body = visit(Uuid::now_v7(), wang, other_pairing, yang, None);
    assert_eq!(post(&t, &t.admin, "RecordVisit", &body).await, created);

    // A director without an active pairing acts on nothing.
    let unpaired = t.token(Role::Director, Some(Uuid::now_v7())).await;
    let body = visit(Uuid::now_v7(), yu, own_pairing, feng, None);
    assert_eq!(post(&t, &unpaired, "RecordVisit", &body).await, forbidden);
}
