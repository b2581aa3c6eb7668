//! Commands over HTTP: the article's demo scenario end to end, an idempotent retry that writes
//! nothing, and concurrency conflicts answered 409 and 412.

use caretrail_domain::demo;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(
    the_demo_scenario_runs_over_http,
    a_retry_with_the_same_idempotency_key_writes_nothing,
    concurrency_conflicts_answer_409_and_412,
);

async fn the_demo_scenario_runs_over_http(h: &Harness) {
    let t = spawn(h).await;
    let yu = demo::workers::YU_PEIYE.uuid();
    let feng = demo::directors::FENG_YALI.uuid();
    let pairing = demo::pairing(1).uuid();
    let visit = Uuid::now_v7();
    // The overview of the visit's month, asked twice (the second answer comes from the
    // answer cache) before the visit exists.
    let january = "/api/v1/dashboard/overview?as_of=2025-01-31";
    for _ in 0..2 {
        let o: Value = t.get(&t.admin, january).await.json().await.unwrap();
        assert_eq!(o["visits_this_month"], json!(0), "{o}");
    }
    let res = t
        .post(
            &t.admin,
            "RecordVisit",
            visit_body(visit, yu, pairing, feng),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["stream_id"], json!(format!("visit-{visit}")));
    assert_eq!(accepted["stream_version"], json!(1));
    let position = accepted["events"][0]["position"].as_u64().unwrap();

    // Once the dashboards have applied it, the cached overview is not served any more.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let lag: Value = t
            .get(&t.admin, "/api/v1/dashboard/projections")
            .await
            .json()
            .await
            .unwrap();
        if lag["checkpoint"].as_u64().unwrap_or(0) >= position {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "projection stalled: {lag}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let o: Value = t.get(&t.admin, january).await.json().await.unwrap();
    assert_eq!(o["visits_this_month"], json!(1), "{o}");

    // The visit is in the log, with its actor from the token and personal data opened for an
    // administrator.
    let page: Value = t
        .get(&t.admin, "/api/v1/events?type=VisitRecorded&limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let visits = page["events"].as_array().unwrap();
    assert_eq!(visits.len(), 10, "nine from the article and ours");
    let ours = visits
        .iter()
        .find(|e| e["position"] == json!(position))
        .unwrap();
    assert_eq!(ours["data"]["place"], json!("杭州市西湖区"));
    assert_eq!(ours["metadata"]["actor_role"], json!("admin"));
    assert_eq!(ours["occurred_at"], json!("2025-01-15"));
    assert_eq!(page["next_after"], json!(position));

    // The stream reads back too.
    let stream: Value = t
        .get(&t.admin, &format!("/api/v1/streams/visit-{visit}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stream["version"], json!(1));
    assert_eq!(stream["events"][0]["event_type"], json!("VisitRecorded"));

    // Operations endpoints answer.
    assert_eq!(t.get("", "/healthz").await.status(), StatusCode::OK);
    assert_eq!(t.get("", "/readyz").await.status(), StatusCode::OK);
    let metrics = t.get(&t.admin, "/metrics").await.text().await.unwrap();
    // Each command is its own route, so its requests are counted by command.
    assert!(metrics.contains("caretrail_http_requests_total{route=\"/api/v1/commands/RecordVisit\",method=\"POST\",status=\"201\"} 1"), "{metrics}");
    assert!(metrics.contains("caretrail_store_head_position"));
    let openapi: Value = t.get("", "/openapi.json").await.json().await.unwrap();
    assert!(openapi["paths"]["/api/v1/commands/RecordVisit"]["post"].is_object());
}

async fn a_retry_with_the_same_idempotency_key_writes_nothing(h: &Harness) {
    let t = spawn(h).await;
    let body = json!({ "model_worker_id": Uuid::now_v7(), "honour": "provincial_model_worker",
                       "region_code": "330782", "name": "幂等测试" });
    let send = || {
        t.client
            .post(format!("{}/api/v1/commands/RegisterModelWorker", t.base))
            .bearer_auth(&t.admin)
            .header("Idempotency-Key", "retry-1")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let head = t.app.store().head().await.unwrap().position;
    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(t.app.store().head().await.unwrap().position, head);
}

async fn concurrency_conflicts_answer_409_and_412(h: &Harness) {
    let t = spawn(h).await;
    // A stale If-Match on the model worker's stream.
    let yu = demo::workers::YU_PEIYE.uuid();
    let version = t
        .app
        .store()
        .stream_version(&caretrail_store::StreamId::new(format!("modelworker-{yu}")).unwrap())
        .await
        .unwrap();
    let relocate = json!({ "model_worker_id": yu, "region_code": "330106" });
    let stale = t
        .client
        .post(format!("{}/api/v1/commands/RecordRelocation", t.base))
        .bearer_auth(&t.admin)
        .header("If-Match", format!("\"{}\"", version - 1))
        .json(&relocate)
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "stream_version_mismatch",
    )
    .await;
    let fresh = t
        .client
        .post(format!("{}/api/v1/commands/RecordRelocation", t.base))
        .bearer_auth(&t.admin)
        .header("If-Match", format!("\"{version}\""))
        .json(&relocate)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::CREATED);

    // Two pairings of one director at once: one wins, the other hears the rule.
    let director = Uuid::now_v7();
    let ok = t
        .post(
            &t.admin,
            "AppointDirector",
            json!({ "director_id": director,
        "body_id": demo::bodies::ASSOCIATION.uuid(), "role": "standing_director",
        "term": { "from": "2021-01-01" }, "name": "并发理事" }),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let mut workers = Vec::new();
    for _ in 0..2 {
        let w = Uuid::now_v7();
        assert_eq!(
            t.post(
                &t.admin,
                "RegisterModelWorker",
                json!({ "model_worker_id": w,
            "honour": "national_model_worker", "region_code": "330825", "name": "并发劳模" })
            )
            .await
            .status(),
            StatusCode::CREATED
        );
        assert_eq!(
            t.post(
                &t.admin,
                "AssessHardship",
                json!({ "model_worker_id": w,
            "tier": "deep", "causes": ["illness"] })
            )
            .await
            .status(),
            StatusCode::CREATED
        );
        workers.push(w);
    }
    let (a, b) = tokio::join!(
        t.post(
            &t.admin,
            "AssignPair",
            json!({ "pairing_id": Uuid::now_v7(), "director_id": director,
            "model_worker_id": workers[0], "effective_from": "2024-01-01" })
        ),
        t.post(
            &t.admin,
            "AssignPair",
            json!({ "pairing_id": Uuid::now_v7(), "director_id": director,
            "model_worker_id": workers[1], "effective_from": "2024-01-01" })
        ),
    );
    let mut statuses = vec![a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::CREATED, StatusCode::CONFLICT]);
    let loser = if a.status() == StatusCode::CONFLICT {
        a
    } else {
        b
    };
    let body = problem(loser, StatusCode::CONFLICT, "director_already_paired").await;
    assert!(body["detail_zh"].is_string());
}
