//! The role matrix: what an administrator, a director, an auditor and an integration may run,
//! read and follow live, and that a director sees only their own pairing's personal data.

use caretrail_domain::demo;
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(
    the_role_matrix_holds,
    me_lists_exactly_the_commands_each_role_may_send,
    a_director_reads_the_visits_about_their_pairing_and_no_other,
);

async fn the_role_matrix_holds(h: &Harness) {
    let t = spawn(h).await;
    let feng = demo::directors::FENG_YALI.uuid();
    let yang = demo::directors::YANG_WEIWEI.uuid();
    let yu = demo::workers::YU_PEIYE.uuid();
    let wang = demo::workers::WANG_MEIWEN.uuid();
    let director = t.token(Role::Director, Some(feng)).await;
    let auditor = t.token(Role::Auditor, None).await;
    let integration = t.token(Role::Integration, None).await;

    // Commands: a director records a visit for their own pairing...
    let own = t
        .post(
            &director,
            "RecordVisit",
            visit_body(Uuid::now_v7(), yu, demo::pairing(1).uuid(), feng),
        )
        .await;
    assert_eq!(own.status(), StatusCode::CREATED);
    let own: Value = own.json().await.unwrap();
    let recorded = t
        .get(
            &t.admin,
            &format!(
                "/api/v1/events?after={}&limit=1",
                own["events"][0]["position"].as_u64().unwrap() - 1
            ),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        recorded["events"][0]["metadata"]["actor_id"],
        json!(feng.to_string()),
        "the actor comes from the token"
    );
    // ...but not for another director's pairing, nor an administrative command.
    let other = t
        .post(
            &director,
            "RecordVisit",
            visit_body(Uuid::now_v7(), wang, demo::pairing(2).uuid(), yang),
        )
        .await;
    let body = problem(other, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(!body.to_string().contains("王美文"));
    problem(
        t.post(
            &director,
            "RegisterBody",
            json!({ "body_id": Uuid::now_v7(), "kind": "other", "name": "x" }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    for token in [&auditor, &integration] {
        problem(
            t.post(
                token,
                "RecordVisit",
                visit_body(Uuid::now_v7(), yu, demo::pairing(1).uuid(), feng),
            )
            .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }

    // The log: admin, auditor and integration read it; a director does not (but follows a live
    // stream of their own pairing's events, below).
    for token in [&t.admin, &auditor, &integration] {
        assert_eq!(
            t.get(token, "/api/v1/events?limit=5").await.status(),
            StatusCode::OK
        );
    }
    problem(
        t.get(&director, "/api/v1/events").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A director's live stream carries only events about their own pairing.
    let feed = t.get(&director, "/api/v1/events/subscribe").await;
    assert_eq!(feed.status(), StatusCode::OK);
    let head = t.app.store().head().await.unwrap().position;
    let theirs = t
        .post(
            &t.admin,
            "RecordVisit",
            visit_body(Uuid::now_v7(), wang, demo::pairing(2).uuid(), yang),
        )
        .await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    let theirs: Value = theirs.json().await.unwrap();
    let mine = t
        .post(
            &t.admin,
            "RecordVisit",
            visit_body(Uuid::now_v7(), yu, demo::pairing(1).uuid(), feng),
        )
        .await;
    assert_eq!(mine.status(), StatusCode::CREATED);
    let mine: Value = mine.json().await.unwrap();
    let positions = |v: &Value| -> Vec<u64> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect()
    };
    let (own, other) = (positions(&mine), positions(&theirs));
    let seen = read_sse_all_until(feed, *own.last().unwrap()).await;
    let live: Vec<u64> = seen.iter().map(|(p, _)| *p).filter(|p| *p > head).collect();
    assert_eq!(live, own, "only the director's own new events, in order");
    assert!(other.iter().all(|p| !live.contains(p)));

    // Personal data: opened for the administrator, withheld from auditor and integration.
    let path = format!("/api/v1/streams/modelworker-{yu}");
    let as_admin: Value = t.get(&t.admin, &path).await.json().await.unwrap();
    assert_eq!(as_admin["events"][0]["data"]["name"], json!("俞培叶"));
    for token in [&auditor, &integration] {
        let seen: Value = t.get(token, &path).await.json().await.unwrap();
        assert_eq!(
            seen["events"][0]["data"]["name"],
            json!({ "redacted": true })
        );
        assert!(!seen.to_string().contains("俞培叶"));
    }
    // A director sees their own model worker's name, and nothing of another's.
    let mine: Value = t.get(&director, &path).await.json().await.unwrap();
    assert_eq!(mine["events"][0]["data"]["name"], json!("俞培叶"));
    let theirs = t
        .get(&director, &format!("/api/v1/streams/modelworker-{wang}"))
        .await;
    let body = problem(theirs, StatusCode::NOT_FOUND, "not_found").await;
    assert!(!body.to_string().contains("王美文"));
}

/// The page offers a role exactly the forms `/api/v1/me` lists, so the list must be the
/// domain's issuer table (less the subscription commands, which have their own resource), and
/// every command listed must be a route that does not refuse the role before reading the body.
async fn me_lists_exactly_the_commands_each_role_may_send(h: &Harness) {
    use caretrail_domain::CommandKind;
    let t = spawn(h).await;
    let feng = demo::directors::FENG_YALI.uuid();
    let tokens = [
        (Role::Admin, t.admin.clone()),
        (Role::Director, t.token(Role::Director, Some(feng)).await),
        (Role::Auditor, t.token(Role::Auditor, None).await),
        (Role::Integration, t.token(Role::Integration, None).await),
    ];
    for (role, token) in &tokens {
        let me: Value = t.get(token, "/api/v1/me").await.json().await.unwrap();
        let listed: Vec<String> = serde_json::from_value(me["commands"].clone()).unwrap();
        let expected: Vec<String> = CommandKind::ALL
            .iter()
            .filter(|k| !k.is_subscription() && !k.is_account() && role.may_run(**k))
            .map(|k| k.name().to_owned())
            .collect();
        assert_eq!(listed, expected, "{role:?}");
        assert_eq!(
            me["role"],
            json!(role.as_str()),
            "the principal is still there"
        );
        // A listed command is judged on its body (422 for an empty one), an unlisted one is
        // refused for the role before the body is read (403). Subscription and account
        // commands have no command route at all (their own resources; `accounts.rs`).
        for kind in CommandKind::ALL
            .iter()
            .filter(|k| !k.is_subscription() && !k.is_account())
        {
            let status = t.post(token, kind.name(), json!({})).await.status();
            if listed.iter().any(|c| c == kind.name()) {
                assert_eq!(
                    status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{role:?} {}",
                    kind.name()
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role:?} {}", kind.name());
            }
        }
    }
}

/// A director corrects and voids the visits they led, so they read those visits whole (the
/// page shows what is being corrected); another pairing's visit, and a visit id that was
/// never recorded, answer the same 404 and say nothing of what is in them.
async fn a_director_reads_the_visits_about_their_pairing_and_no_other(h: &Harness) {
    let t = spawn(h).await;
    let feng = demo::directors::FENG_YALI.uuid();
    let yang = demo::directors::YANG_WEIWEI.uuid();
    let yu = demo::workers::YU_PEIYE.uuid();
    let wang = demo::workers::WANG_MEIWEN.uuid();
    let director = t.token(Role::Director, Some(feng)).await;
    let auditor = t.token(Role::Auditor, None).await;

    let mine = Uuid::now_v7();
    let res = t
        .post(
            &director,
            "RecordVisit",
            visit_body(mine, yu, demo::pairing(1).uuid(), feng),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let theirs = Uuid::now_v7();
    let mut body = visit_body(theirs, wang, demo::pairing(2).uuid(), yang);
    body["place"] = json!("衢州市柯城区某小区");
    let res = t.post(&t.admin, "RecordVisit", body).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // Their own visit, whole, with its personal values opened (their model worker's).
    let page: Value = t
        .get(&director, &format!("/api/v1/streams/visit-{mine}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["version"], json!(1));
    assert_eq!(page["events"][0]["event_type"], json!("VisitRecorded"));
    assert_eq!(page["events"][0]["data"]["place"], json!("杭州市西湖区"));
    // A correction of it is read the same way.
    let res = t
        .post(
            &director,
            "CorrectVisit",
            json!({ "visit_id": mine, "reason": "日期记错", "changes": { "visited_on": "2025-01-16" } }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let page: Value = t
        .get(&director, &format!("/api/v1/streams/visit-{mine}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["version"], json!(2));

    // Another pairing's visit and a visit that does not exist: the same 404, nothing leaked.
    let other = t
        .get(&director, &format!("/api/v1/streams/visit-{theirs}"))
        .await;
    let body = problem(other, StatusCode::NOT_FOUND, "not_found").await;
    assert!(!body.to_string().contains("柯城区"), "{body}");
    let none = t
        .get(
            &director,
            &format!("/api/v1/streams/visit-{}", Uuid::now_v7()),
        )
        .await;
    assert_eq!(
        problem(none, StatusCode::NOT_FOUND, "not_found").await["detail"],
        body["detail"]
    );
    // Issues and contacts stay out of reach as before, even about their own pairing.
    let issue = t
        .get(
            &director,
            &format!("/api/v1/streams/issue-{}", Uuid::now_v7()),
        )
        .await;
    problem(issue, StatusCode::NOT_FOUND, "not_found").await;
    // Others' reading is unchanged: the auditor reads the visit with its place withheld.
    let seen: Value = t
        .get(&auditor, &format!("/api/v1/streams/visit-{theirs}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["events"][0]["data"]["place"],
        json!({ "redacted": true })
    );
}
