//! Long operations: an administrator's projection rebuild followed to its end, an auditor's
//! export downloaded and verified offline, who may read which, and 503 without the part of the
//! server an operation needs.

use caretrail_domain::demo;
use caretrail_http::Role;
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(
    an_administrator_rebuilds_the_read_models_and_follows_its_progress,
    operations_are_readable_only_by_the_roles_that_may_start_them,
    an_auditor_exports_the_log_and_the_download_verifies,
    operations_answer_503_without_a_read_side_or_an_audit_tree,
);

async fn an_administrator_rebuilds_the_read_models_and_follows_its_progress(h: &Harness) {
    let t = spawn(h).await;
    let head = t.app.store().head().await.unwrap().position;
    let lag: Value = t
        .get(&t.admin, "/api/v1/dashboard/projections")
        .await
        .json()
        .await
        .unwrap();
    let overview = "/api/v1/dashboard/overview?as_of=2021-10-31";
    let before: Value = t.get(&t.admin, overview).await.json().await.unwrap();

    // Held before it does any work, the rebuild is reported running, with the head as its
    // total; a second one is refused and pointed at the first.
    let hold = t.operations.hold_starts().await;
    let (location, started) = accepted(t.start(&t.admin, "rebuild").await, "rebuild").await;
    assert_eq!(started["state"], json!("running"));
    assert_eq!(started["finished_at"], Value::Null);
    assert!(started["started_at"].is_string());
    let second = t.start(&t.admin, "rebuild").await;
    assert_eq!(second.headers()["location"].to_str().unwrap(), location);
    problem(second, StatusCode::CONFLICT, "operation_in_progress").await;
    let running: Value = t.get(&t.admin, &location).await.json().await.unwrap();
    assert_eq!(running["state"], json!("running"));
    assert_eq!(running["done"], json!(0));
    assert_eq!(running["total"], json!(head));
    drop(hold);

    let done = t.finished(&t.admin, &location).await;
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    assert_eq!(done["done"], json!(head), "{done}");
    assert_eq!(done["total"], json!(head), "{done}");
    assert!(done["finished_at"].is_string());
    assert!(done.get("error").is_none());
    let report = &done["result"];
    assert_eq!(report["previous_generation"], lag["generation"]);
    assert_ne!(report["generation"], lag["generation"]);
    assert!(report["seconds"].is_number());

    // The new generation is live and the dashboards answer from it, with the same numbers.
    let after: Value = t
        .get(&t.admin, "/api/v1/dashboard/projections")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["generation"], report["generation"]);
    let res = t.get(&t.admin, overview).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), before);

    // Once finished, another rebuild may start.
    let (again, _) = accepted(t.start(&t.admin, "rebuild").await, "rebuild").await;
    assert_ne!(again, location);
    let done = t.finished(&t.admin, &again).await;
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    assert_eq!(done["result"]["previous_generation"], report["generation"]);
}

async fn operations_are_readable_only_by_the_roles_that_may_start_them(h: &Harness) {
    let t = spawn(h).await;
    let director = t
        .token(Role::Director, Some(demo::directors::FENG_YALI.uuid()))
        .await;
    let integration = t.token(Role::Integration, None).await;
    let auditor = t.token(Role::Auditor, None).await;
    for token in [&director, &integration, &auditor] {
        problem(
            t.start(token, "rebuild").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    for token in [&director, &integration] {
        problem(
            t.start(token, "export").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    problem(
        t.start("", "rebuild").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // An administrator's rebuild: not the auditor's (nor anyone else's) to read.
    let (location, _) = accepted(t.start(&t.admin, "rebuild").await, "rebuild").await;
    for token in [&auditor, &director, &integration] {
        problem(
            t.get(token, &location).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    let done = t.finished(&t.admin, &location).await;
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    // A rebuild has no file.
    problem(
        t.get(&t.admin, &format!("{location}/file")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Unknown and malformed ids.
    let unknown = format!("/api/v1/operations/{}", Uuid::now_v7());
    for path in [
        unknown.clone(),
        format!("{unknown}/file"),
        "/api/v1/operations/not-an-id".to_owned(),
    ] {
        problem(
            t.get(&t.admin, &path).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // Roles that may read no operation learn nothing, not even whether an id exists.
    problem(
        t.get(&director, &unknown).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

async fn an_auditor_exports_the_log_and_the_download_verifies(h: &Harness) {
    let t = spawn(h).await;
    t.auditor.sign_checkpoint().await.unwrap();
    let head = t.app.store().head().await.unwrap().position;
    let auditor = t.token(Role::Auditor, None).await;

    let hold = t.operations.hold_starts().await;
    let (location, started) = accepted(t.start(&auditor, "export").await, "export").await;
    assert_eq!(started["state"], json!("running"));
    assert_eq!(started["total"], json!(head));
    // One export at a time per server, whoever asks.
    problem(
        t.start(&t.admin, "export").await,
        StatusCode::CONFLICT,
        "operation_in_progress",
    )
    .await;
    problem(
        t.get(&auditor, &format!("{location}/file")).await,
        StatusCode::CONFLICT,
        "operation_in_progress",
    )
    .await;
    drop(hold);

    let done = t.finished(&auditor, &location).await;
    assert_eq!(done["state"], json!("succeeded"), "{done}");
    assert_eq!(done["done"], json!(head));
    assert_eq!(done["total"], json!(head));
    let result = &done["result"];
    assert_eq!(result["events"], json!(head));
    assert_eq!(result["checkpoints"], json!(1));
    let download = format!("{location}/file");
    assert_eq!(result["download"], json!(download));
    let name = format!("caretrail-export-{head}.jsonl");
    assert_eq!(result["file_name"], json!(name));

    let res = t.get(&auditor, &download).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    assert_eq!(
        res.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{name}\"")
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let bytes = res.bytes().await.unwrap();
    assert_eq!(json!(bytes.len()), result["bytes"]);
    // The file verifies with only the service's public key, as the CLI's export does.
    let key = t.auditor.verifier().expect("a signing key");
    let report = caretrail_audit::verify_file(
        &bytes[..],
        &key,
        &caretrail_audit::VerifyOptions::default(),
        &mut |_, _| {},
    )
    .expect("the downloaded export verifies");
    assert_eq!(report.events, head);
    assert_eq!(report.checkpoints, 1);

    // An administrator may read and download the auditor's export too; a second download
    // gets the same bytes.
    let again = t.get(&t.admin, &download).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.bytes().await.unwrap(), bytes);
}

async fn operations_answer_503_without_a_read_side_or_an_audit_tree(h: &Harness) {
    let service = caretrail_http::testing::demo_service(h, master(h), |state| {
        state.read = None;
        state.auditor = None;
    })
    .await;
    let (_, admin) = service
        .tokens
        .create(Role::Admin, None, "admin")
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for (kind, code) in [
        ("rebuild", "read_side_unavailable"),
        ("export", "audit_unavailable"),
    ] {
        let res = client
            .post(format!("{}/api/v1/operations/{kind}", service.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        problem(res, StatusCode::SERVICE_UNAVAILABLE, code).await;
    }
}
