//! Integrations' subscriptions end to end: created over HTTP, delivered by the engine to a real
//! receiver on 127.0.0.1 that checks every delivery with the Standard Webhooks library and
//! parses it with the CloudEvents SDK (`caretrail_integrations::testing::Receiver`), on both
//! backends. Failures and recovery, `410 Gone`, resume, rewind, secret rotation, deletion,
//! who may read and change what, and the SSRF guard.

use std::time::Duration;

use caretrail_http::Role;
use caretrail_integrations::testing::{Mode, Receiver};
use caretrail_store::testing::Harness;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(
    a_webhook_subscription_delivers_every_matching_event_in_order_signed_as_cloudevents,
    a_failing_receiver_recovers_and_nothing_is_skipped_or_reordered,
    gone_disables_at_once_resume_continues_from_the_cursor_and_rewind_redelivers,
    a_rotated_secret_and_its_predecessor_both_sign_until_deletion_destroys_them,
    who_may_read_and_change_subscriptions,
    subscription_bodies_are_checked_without_echoing_them,
    ssrf_webhook_urls_to_private_addresses_are_refused_without_allow_private,
    nats_every_event_lands_in_jetstream_once_across_a_server_restart,
    an_unfiltered_subscription_never_carries_subscriptions_own_events,
);

const WAIT: Duration = Duration::from_secs(20);

impl TestApp {
    async fn send(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let req = self
            .client
            .request(method, format!("{}/api/v1/subscriptions{path}", self.base))
            .bearer_auth(token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        req.send().await.expect("request")
    }

    /// Creates a webhook subscription to `url`; answers its id and secret.
    async fn subscribe(
        &self,
        url: &str,
        filter: Value,
        start_after: Option<u64>,
    ) -> (Uuid, String) {
        let mut body = json!({ "name": "省总工会案件系统", "filter": filter,
            "delivery": { "kind": "webhook", "url": url } });
        if let Some(p) = start_after {
            body["start_after"] = json!(p);
        }
        let res = self
            .send(&self.admin, reqwest::Method::POST, "", Some(body))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let created: Value = res.json().await.unwrap();
        let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(location, format!("/api/v1/subscriptions/{id}"));
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"), "{created}");
        (id, secret)
    }

    async fn status(&self, id: Uuid) -> Value {
        let res = self
            .send(&self.admin, reqwest::Method::GET, &format!("/{id}"), None)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// Polls the subscription until `done` holds (20 s at most).
    async fn wait_status(&self, id: Uuid, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let s = self.status(id).await;
            if done(&s) {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "never {what}: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Records `n` contacts in the demo's first pairing (events the receiver's filter takes).
    async fn contacts(&self, n: usize) {
        let pairing = caretrail_domain::demo::pairing(1);
        for _ in 0..n {
            let res = self
                .post(
                    &self.admin,
                    "RecordContact",
                    json!({ "contact_id": Uuid::now_v7(),
                    "pairing_id": pairing, "on": "2021-10-30", "channel": "phone", "note": "回电13800138000" }),
                )
                .await;
            assert_eq!(res.status(), StatusCode::CREATED);
        }
    }
}

/// A fresh receiver; its secret is set once the subscription has one.
async fn receiver() -> Receiver {
    Receiver::start("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").await
}

async fn a_webhook_subscription_delivers_every_matching_event_in_order_signed_as_cloudevents(
    h: &Harness,
) {
    let t = spawn(h).await;
    let r = receiver().await;
    let head = t.app.store().head().await.unwrap().position;
    let (id, secret) = t
        .subscribe(
            &r.url(),
            json!({ "categories": ["contact", "pairing"] }),
            None,
        )
        .await;
    r.set_secrets(&[&secret]);
    let s = t.status(id).await;
    assert_eq!(s["state"], json!("active"));
    assert_eq!(
        s["delivered_position"],
        json!(head),
        "starts at the head by default"
    );
    assert!(s.get("secret").is_none(), "the secret is shown once: {s}");

    t.contacts(5).await;
    // Each contact writes ContactRecorded and PairActivityLogged: ten events, in log order.
    let got = r.wait_for(10, WAIT).await;
    let positions: Vec<u64> = got.iter().map(|d| d.position).collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(positions, sorted, "in order, once each");
    assert!(positions.iter().all(|p| *p > head));
    let log = t
        .app
        .store()
        .read_log(&caretrail_store::LogQuery::after(head, 100))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.category() != "subscription")
        .collect::<Vec<_>>();
    assert_eq!(
        positions,
        log.iter().map(|e| e.position).collect::<Vec<_>>()
    );
    for (d, e) in got.iter().zip(&log) {
        assert_eq!(
            d.webhook_id,
            e.event_id.to_string(),
            "webhook-id is the event id"
        );
        use cloudevents::AttributesReader;
        assert_eq!(d.cloudevent.id(), e.event_id.to_string());
        assert_eq!(d.cloudevent.subject(), Some(e.stream_id.as_str()));
        assert_eq!(d.event_type, e.event_type);
    }
    // The note of a contact is personal: integrations never see it in plaintext.
    let body = serde_json::to_string(&got.iter().map(|d| d.cloudevent.clone()).collect::<Vec<_>>())
        .unwrap();
    assert!(
        !body.contains("13800138000"),
        "no personal plaintext: {body}"
    );
    let contact = got
        .iter()
        .find(|d| d.event_type == "ContactRecorded")
        .unwrap();
    let data: Value = serde_json::to_value(&contact.cloudevent).unwrap()["data"].clone();
    assert_eq!(data["note"], json!({ "redacted": true }), "{data}");
    assert_eq!(r.bad_signatures(), 0);
    assert_eq!(r.bad_bodies(), 0);

    let s = t
        .wait_status(id, "caught up", |s| s["lag_events"] == json!(0))
        .await;
    assert_eq!(s["delivered_total"], json!(10));
    assert_eq!(s["consecutive_failures"], json!(0));
    let attempts: Value = t
        .send(
            &t.admin,
            reqwest::Method::GET,
            &format!("/{id}/attempts"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(attempts.as_array().unwrap().len(), 10);
    assert_eq!(attempts[0]["outcome"], json!("delivered"));
    assert!(
        (200..300).contains(&attempts[0]["status"].as_u64().unwrap()),
        "{attempts}"
    );

    // Its figures are in /metrics, by subscription id.
    let metrics = t.get(&t.admin, "/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "caretrail_subscription_deliveries_total{{subscription=\"{id}\"}} 10"
        )),
        "{metrics}"
    );
    for family in [
        "caretrail_subscription_attempt_duration_seconds_count",
        "caretrail_subscription_lag_events",
        "caretrail_subscription_lag_seconds",
    ] {
        assert!(
            metrics.contains(&format!("{family}{{subscription=\"{id}\"}}")),
            "{family}"
        );
    }
    assert!(metrics.contains(&format!(
        "caretrail_subscription_state{{subscription=\"{id}\",state=\"active\"}} 1"
    )));
    assert!(!metrics.contains(&secret[6..]));

    // Creating it is audit history: the event is in the log, without the secret.
    let created = t
        .app
        .store()
        .read_stream(
            &caretrail_store::StreamId::new(format!("subscription-{id}")).unwrap(),
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(created[0].event_type, "SubscriptionCreated");
    assert!(
        !created[0].data.contains(&secret[6..]),
        "no secret in the log"
    );
    assert_eq!(created[0].actor_role, "admin");
}

async fn a_failing_receiver_recovers_and_nothing_is_skipped_or_reordered(h: &Harness) {
    let t = spawn(h).await;
    let r = receiver().await;
    let (id, secret) = t
        .subscribe(&r.url(), json!({ "types": ["ContactRecorded"] }), None)
        .await;
    r.set_secrets(&[&secret]);
    // Three failures (500, 500, 500), within the test schedule's three retries, then success.
    r.set_mode(Mode::FailNext(3));
    t.contacts(4).await;
    let got = r.wait_for(4, WAIT).await;
    let positions: Vec<u64> = got.iter().map(|d| d.position).collect();
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        positions, sorted,
        "every event once, in order: {positions:?}"
    );
    let s = t
        .wait_status(id, "recovered", |s| {
            s["state"] == json!("active") && s["delivered_total"] == json!(4)
        })
        .await;
    assert_eq!(s["failed_total"], json!(3));
    let attempts: Vec<Value> = t
        .send(
            &t.admin,
            reqwest::Method::GET,
            &format!("/{id}/attempts"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> = attempts
        .iter()
        .rev()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        &outcomes[..4],
        &["retry", "retry", "retry", "delivered"],
        "{attempts:?}"
    );
    assert_eq!(attempts.last().unwrap()["status"], json!(500));

    // A receiver that is down (connection refused) for a moment, then back.
    r.stop().await;
    t.contacts(1).await;
    t.wait_status(id, "failing", |s| s["state"] == json!("failing"))
        .await;
    r.restart().await;
    let got = r.wait_for(5, WAIT).await;
    assert_eq!(got.len(), 5, "nothing skipped, no duplicate");
    t.wait_status(id, "active again", |s| s["state"] == json!("active"))
        .await;
}

async fn gone_disables_at_once_resume_continues_from_the_cursor_and_rewind_redelivers(h: &Harness) {
    let t = spawn(h).await;
    let r = receiver().await;
    let (id, secret) = t
        .subscribe(&r.url(), json!({ "types": ["ContactRecorded"] }), None)
        .await;
    r.set_secrets(&[&secret]);
    t.contacts(1).await;
    r.wait_for(1, WAIT).await;
    r.set_mode(Mode::Status(410));
    t.contacts(2).await;
    let s = t
        .wait_status(id, "disabled", |s| s["state"] == json!("disabled"))
        .await;
    assert_eq!(s["disabled_reason"], json!("gone"));
    assert_eq!(
        s["failed_total"],
        json!(1),
        "410 disables at the first answer"
    );
    // The system's disabling is in the log.
    let stream = t
        .app
        .store()
        .read_stream(
            &caretrail_store::StreamId::new(format!("subscription-{id}")).unwrap(),
            0,
            10,
        )
        .await
        .unwrap();
    let disabled = stream.last().unwrap();
    assert_eq!(disabled.event_type, "SubscriptionDisabled");
    assert_eq!(disabled.actor_role, "system");

    r.set_mode(Mode::Ok);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.deliveries().len(), 1, "nothing is sent while disabled");
    let res = t
        .send(
            &t.admin,
            reqwest::Method::POST,
            &format!("/{id}/resume"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let got = r.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3, "the two held back arrive after the resume");

    // Rewind to before the first: all three again, in order.
    let first = got[0].position;
    let res = t
        .send(
            &t.admin,
            reqwest::Method::POST,
            &format!("/{id}/rewind"),
            Some(json!({ "after": first - 1 })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let got = r.wait_for(6, WAIT).await;
    let again: Vec<u64> = got[3..].iter().map(|d| d.position).collect();
    assert_eq!(
        again,
        got[..3].iter().map(|d| d.position).collect::<Vec<_>>()
    );

    // Pause holds delivery; a second pause is refused; resume delivers what waited.
    let res = t
        .send(
            &t.admin,
            reqwest::Method::POST,
            &format!("/{id}/pause"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = t
        .send(
            &t.admin,
            reqwest::Method::POST,
            &format!("/{id}/pause"),
            None,
        )
        .await;
    problem(res, StatusCode::CONFLICT, "subscription_already_paused").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.contacts(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.deliveries().len(), 6, "nothing is sent while paused");
    t.send(
        &t.admin,
        reqwest::Method::POST,
        &format!("/{id}/resume"),
        None,
    )
    .await;
    r.wait_for(7, WAIT).await;
    // Rewinding past the head is refused.
    let res = t
        .send(
            &t.admin,
            reqwest::Method::POST,
            &format!("/{id}/rewind"),
            Some(json!({ "after": 1_000_000_000u64 })),
        )
        .await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "position_after_head").await;
}

async fn a_rotated_secret_and_its_predecessor_both_sign_until_deletion_destroys_them(h: &Harness) {
    let t = spawn(h).await;
    let r = receiver().await;
    let (id, old) = t
        .subscribe(&r.url(), json!({ "types": ["ContactRecorded"] }), None)
        .await;
    r.set_secrets(&[&old]);
    let res = t
        .send(
            &t.admin,
            reqwest::Method::POST,
            &format!("/{id}/rotate-secret"),
            Some(json!({ "grace_seconds": 3600 })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["secret_generation"], json!(2));
    assert!(rotated["previous_valid_until"].is_string());
    // A receiver that knows only the new secret, and one that knows only the old: both verify.
    r.set_secrets(&[&new]);
    t.contacts(1).await;
    r.wait_for(1, WAIT).await;
    r.set_secrets(&[&old]);
    t.contacts(1).await;
    r.wait_for(2, WAIT).await;
    assert_eq!(r.bad_signatures(), 0);
    // A grace above a week is refused.
    let res = t
        .send(
            &t.admin,
            reqwest::Method::POST,
            &format!("/{id}/rotate-secret"),
            Some(json!({ "grace_seconds": 604_801 })),
        )
        .await;
    problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "subscription_grace_too_long",
    )
    .await;

    let res = t
        .send(&t.admin, reqwest::Method::DELETE, &format!("/{id}"), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = t
        .send(&t.admin, reqwest::Method::GET, &format!("/{id}"), None)
        .await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = t
        .send(&t.admin, reqwest::Method::DELETE, &format!("/{id}"), None)
        .await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let deleted_at = t.app.store().head().await.unwrap().position;
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.contacts(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // At least once: an event acknowledged just before may come again, nothing after.
    let after: Vec<u64> = r
        .deliveries()
        .iter()
        .map(|d| d.position)
        .filter(|p| *p > deleted_at)
        .collect();
    assert!(
        after.is_empty(),
        "a deleted subscription delivered {after:?}"
    );
    // Its key is destroyed with it: the sealed secrets can no longer be opened.
    assert!(t.app.keys().is_erased(id).await.unwrap());
}

async fn who_may_read_and_change_subscriptions(h: &Harness) {
    let t = spawn(h).await;
    let r = receiver().await;
    let integration = t
        .tokens
        .create(Role::Integration, None, "warehouse")
        .await
        .unwrap();
    let other = t.token(Role::Integration, None).await;
    let auditor = t.token(Role::Auditor, None).await;
    let director = t
        .token(
            Role::Director,
            Some(caretrail_domain::demo::directors::FENG_YALI.uuid()),
        )
        .await;
    let body = json!({ "name": "数据仓库", "delivery": { "kind": "webhook", "url": r.url() },
        "owner_token_id": integration.0.token_id });
    let res = t
        .send(&t.admin, reqwest::Method::POST, "", Some(body.clone()))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _) = t.subscribe(&r.url(), json!({}), None).await;

    let list = |token: String| {
        let t = &t;
        async move {
            let res = t.send(&token, reqwest::Method::GET, "", None).await;
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Vec<Value>>().await.unwrap().len()
        }
    };
    assert_eq!(list(t.admin.clone()).await, 2);
    assert_eq!(list(auditor.clone()).await, 2);
    assert_eq!(
        list(integration.1.clone()).await,
        1,
        "an integration sees its own"
    );
    assert_eq!(list(other.clone()).await, 0);
    let res = t
        .send(
            &integration.1,
            reqwest::Method::GET,
            &format!("/{id}"),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = t
        .send(&other, reqwest::Method::GET, &format!("/{id}"), None)
        .await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = t.send(&director, reqwest::Method::GET, "", None).await;
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    for token in [&integration.1, &auditor, &director] {
        let res = t
            .send(token, reqwest::Method::POST, "", Some(body.clone()))
            .await;
        problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        let res = t
            .send(token, reqwest::Method::POST, &format!("/{id}/pause"), None)
            .await;
        problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        let res = t
            .send(token, reqwest::Method::DELETE, &format!("/{id}"), None)
            .await;
        problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // The generic command route does not take subscription commands (they need a secret).
    let res = t
        .post(
            &t.admin,
            "CreateSubscription",
            json!({ "subscription_id": Uuid::now_v7(),
            "name": "x", "start_after": 0, "delivery": { "kind": "webhook", "url": r.url() } }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = t
        .send(
            &t.admin,
            reqwest::Method::GET,
            &format!("/{}", Uuid::now_v7()),
            None,
        )
        .await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

async fn subscription_bodies_are_checked_without_echoing_them(h: &Harness) {
    let t = spawn(h).await;
    let cases = [
        (
            json!({ "name": "x", "delivery": { "kind": "webhook", "url": "ftp://13800138000.example/" } }),
            "subscription_url_invalid",
        ),
        (
            json!({ "name": "x", "delivery": { "kind": "webhook", "url": "https://13800138000:pw@example.com/" } }),
            "subscription_url_credentials",
        ),
        (
            json!({ "name": "x", "filter": { "types": ["13800138000"] },
            "delivery": { "kind": "webhook", "url": "https://example.com/" } }),
            "subscription_filter_unknown",
        ),
        (
            json!({ "name": "x", "delivery": { "kind": "nats", "subject_prefix": "a.>" } }),
            "nats_not_configured",
        ),
        (
            json!({ "name": "   ", "delivery": { "kind": "webhook", "url": "https://example.com/" } }),
            "required_text_empty",
        ),
        (
            json!({ "name": "x", "delivery": { "kind": "smtp", "to": "13800138000" } }),
            "validation_failed",
        ),
        (
            json!({ "name": "x", "subscription_id": Uuid::now_v7(),
            "delivery": { "kind": "webhook", "url": "https://example.com/" } }),
            "validation_failed",
        ),
        (
            json!({ "name": "x", "start_after": 999_999_999u64,
            "delivery": { "kind": "webhook", "url": "https://example.com/" } }),
            "position_after_head",
        ),
        (
            json!({ "name": "x\u{202e}", "delivery": { "kind": "webhook", "url": "https://example.com/" } }),
            "validation_failed",
        ),
    ];
    for (body, code) in cases {
        let res = t
            .send(&t.admin, reqwest::Method::POST, "", Some(body.clone()))
            .await;
        assert!(res.status().is_client_error(), "{body}");
        let text = res.text().await.unwrap();
        assert!(text.contains(code), "{body} → {text}");
        assert!(!text.contains("13800138000"), "echoed: {text}");
    }
    let res = t
        .client
        .post(format!("{}/api/v1/subscriptions", t.base))
        .bearer_auth(&t.admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = t
        .send(&t.admin, reqwest::Method::GET, "/not-a-uuid", None)
        .await;
    problem(res, StatusCode::BAD_REQUEST, "invalid_path_parameter").await;
}

async fn ssrf_webhook_urls_to_private_addresses_are_refused_without_allow_private(h: &Harness) {
    let mut engine = caretrail_http::testing::test_engine();
    engine.webhook.allow_private = false;
    let service = caretrail_http::testing::demo_service_with(
        h,
        master(h),
        caretrail_http::testing::DemoOptions {
            integrations: Some(engine),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let admin = service
        .tokens
        .create(Role::Admin, None, "admin")
        .await
        .unwrap()
        .1;
    let client = reqwest::Client::new();
    for url in [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "http://example.com/hook",
    ] {
        let res = client
            .post(format!("{}/api/v1/subscriptions", service.base))
            .bearer_auth(&admin)
            .json(&json!({ "name": "x", "delivery": { "kind": "webhook", "url": url } }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let p: Value = res.json().await.unwrap();
        assert!(
            p["type"].as_str().unwrap().contains("webhook_url_"),
            "{url}: {p}"
        );
        assert!(!p.to_string().contains(url), "the URL is not echoed: {p}");
    }
}

async fn nats_every_event_lands_in_jetstream_once_across_a_server_restart(h: &Harness) {
    use caretrail_integrations::nats::harness::NatsServer;
    use futures::StreamExt;
    let Some(mut nats) = NatsServer::start_or_skip("nats_every_event_lands_in_jetstream_once")
    else {
        return;
    };
    let mut engine = caretrail_http::testing::test_engine();
    engine.nats = Some(caretrail_integrations::nats::JetStreamConfig::new(
        nats.url(),
    ));
    let service = caretrail_http::testing::demo_service_with(
        h,
        master(h),
        caretrail_http::testing::DemoOptions {
            integrations: Some(engine),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let t = TestApp::from_service(service).await;
    let head = t.app.store().head().await.unwrap().position;
    let res = t
        .send(
            &t.admin,
            reqwest::Method::POST,
            "",
            Some(json!({ "name": "数据仓库",
            "filter": { "types": ["ContactRecorded"] },
            "delivery": { "kind": "nats" } })),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["secret"], Value::Null, "NATS has no signing secret");
    assert_eq!(created["delivery"]["subject_prefix"], json!("caretrail"));
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();

    t.contacts(20).await;
    // The broker goes away mid-stream and comes back: the engine retries from the first event
    // JetStream did not acknowledge; its duplicate window drops what was stored twice.
    nats.stop();
    t.contacts(20).await;
    t.wait_status(id, "failing while NATS is down", |s| {
        s["state"] == json!("failing")
    })
    .await;
    nats.restart();
    t.contacts(10).await;
    let log: Vec<_> = t
        .app
        .store()
        .read_log(&caretrail_store::LogQuery::after(head, 1000))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "ContactRecorded")
        .collect();
    assert_eq!(log.len(), 50);
    t.wait_status(id, "caught up", |s| {
        s["state"] == json!("active") && s["delivered_total"].as_u64() >= Some(50)
    })
    .await;

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("CARETRAIL").await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        50,
        "each event once"
    );
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..50 {
        let m = tokio::time::timeout(WAIT, messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(m.subject.as_str(), "caretrail.contact.ContactRecorded");
        let id = m
            .headers
            .as_ref()
            .unwrap()
            .get("Nats-Msg-Id")
            .unwrap()
            .as_str()
            .to_owned();
        let body: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            body["id"].as_str(),
            Some(id.as_str()),
            "the body is the CloudEvent"
        );
        assert_eq!(body["specversion"], json!("1.0"));
        ids.insert(id.parse::<Uuid>().unwrap());
    }
    let expected: std::collections::HashSet<Uuid> = log.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, expected);
}

/// Attack finding 6: subscriptions' own events name other integrations' targets (a URL may hold
/// a key) and owners; a subscription that takes every event still never carries them.
async fn an_unfiltered_subscription_never_carries_subscriptions_own_events(h: &Harness) {
    let t = spawn(h).await;
    let r = receiver().await;
    let (_, secret) = t.subscribe(&r.url(), json!({}), None).await;
    r.set_secrets(&[&secret]);
    let other = receiver().await;
    t.subscribe(&format!("{}?key=S3CRET", other.url()), json!({}), None)
        .await;
    t.contacts(1).await;
    let got = r.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let types: Vec<String> = r
        .deliveries()
        .iter()
        .map(|d| d.event_type.clone())
        .collect();
    assert_eq!(types, ["ContactRecorded", "PairActivityLogged"], "{got:?}");
}
