//! Every error status answers problem+json with its stable code, 429 included.

use caretrail_domain::demo;
use caretrail_http::{RateLimiter, Role};
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(every_error_status_is_problem_json,);

async fn every_error_status_is_problem_json(h: &Harness) {
    let t = spawn(h).await;
    let url = |c: &str| format!("{}/api/v1/commands/{c}", t.base);
    // 400: malformed JSON.
    let res = t
        .client
        .post(url("RecordVisit"))
        .bearer_auth(&t.admin)
        .header("content-type", "application/json")
        .body("{\"visit_id\": ")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    // 400: a key given twice (parsers disagree on which value wins), named by position only.
    let res = t
        .client
        .post(url("RegisterBody"))
        .bearer_auth(&t.admin)
        .header("content-type", "application/json")
        .body(
            r#"{"body_id": "0190a4b2-7c1d-7e3f-8a9b-0c1d2e3f4a5b", "kind": "other", "name": "甲", "name": "13800138000"}"#,
        )
        .send()
        .await
        .unwrap();
    let body = problem(res, StatusCode::BAD_REQUEST, "duplicate_json_key").await;
    assert!(!body.to_string().contains("13800138000"), "{body}");
    // 422: a negative amount, named by its field; the value sent is not echoed.
    let mut body = visit_body(
        Uuid::now_v7(),
        demo::workers::YU_PEIYE.uuid(),
        demo::pairing(1).uuid(),
        demo::directors::FENG_YALI.uuid(),
    );
    body["gifts"][0]["amount_fen"] = json!(-13800009999i64);
    let res = t.post(&t.admin, "RecordVisit", body).await;
    let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(p["errors"][0]["field"], json!("gifts[0].amount_fen"));
    assert!(!p.to_string().contains("13800009999"), "{p}");
    // 422: a personal value of the wrong type is not echoed either.
    let res = t
        .post(
            &t.admin,
            "RegisterModelWorker",
            json!({ "model_worker_id": Uuid::now_v7(),
        "honour": "provincial_model_worker", "region_code": "330106", "name": 13800001111u64 }),
        )
        .await;
    let p = problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(p["errors"][0]["field"], json!("name"));
    assert!(!p.to_string().contains("13800001111"), "{p}");
    // 409: a rule of the domain, with its code.
    let res = t
        .post(
            &t.admin,
            "RegisterBody",
            json!({ "body_id": demo::bodies::ASSOCIATION.uuid(),
        "kind": "association", "name": "重复" }),
        )
        .await;
    problem(res, StatusCode::CONFLICT, "body_already_registered").await;
    // 401 and 403.
    problem(
        t.post("not-a-token", "RegisterBody", json!({})).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let res = t
        .client
        .get(format!("{}/api/v1/events", t.base))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let auditor = t.token(Role::Auditor, None).await;
    problem(
        t.post(&auditor, "RegisterBody", json!({})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // 404: an unknown command and an unknown route.
    problem(
        t.post(&t.admin, "MakeCoffee", json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        t.get(&t.admin, "/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // 413: too large.
    let huge = json!({ "body_id": Uuid::now_v7(), "kind": "other", "name": "x".repeat(300_000) });
    problem(
        t.post(&t.admin, "RegisterBody", huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;
    // 415: not JSON.
    let res = t
        .client
        .post(url("RegisterBody"))
        .bearer_auth(&t.admin)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // 400 on a bad query.
    problem(
        t.get(&t.admin, "/api/v1/events?limit=0").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    problem(
        t.get(&t.admin, "/api/v1/events?after=minus").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    // 503: the store goes away.
    match t.app.store().database() {
        caretrail_store::Database::Sqlite(p) => p.close().await,
        caretrail_store::Database::Postgres(p) => p.close().await,
    }
    problem(
        t.get(&t.admin, "/api/v1/events").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_answer_429() {
    let h = caretrail_store::testing::sqlite().await.unwrap();
    let t = spawn_with(&h, Some(RateLimiter::new(1, 3))).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(t.get(&t.admin, "/api/v1/events?limit=1").await);
    }
    let last = statuses.pop().unwrap();
    problem(last, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(statuses[0].status(), StatusCode::OK);
}
