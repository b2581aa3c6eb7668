//! Attacks on integrations' subscriptions, each as a regression test that names it: the
//! findings of the attack session (`finding_N_...`, all fixed), and the
//! attacks that held (`held_...`), kept so they keep holding. Every test runs on both backends
//! against the real router, engine and a real receiver on 127.0.0.1.

use std::time::Duration;

use caretrail_http::Role;
use caretrail_integrations::testing::{Mode, Receiver};
use caretrail_store::testing::Harness;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::*;

caretrail_store::both_backends!(
    finding_1_a_url_too_long_once_encoded_is_refused_at_creation,
    finding_2_receiver_excerpts_are_sanitised_and_capped,
    finding_3_concurrent_rotations_answer_409_never_500,
    finding_4_answers_holding_a_secret_are_not_cacheable,
    finding_5_nothing_recorded_after_a_pause_or_delete_answer_is_delivered,
    held_ssrf_every_encoding_of_a_private_address_is_refused,
    held_redirects_are_never_followed,
    held_the_secret_is_shown_once_and_nowhere_else,
    held_bad_inputs_are_refused_without_echo_and_create_nothing,
    held_huge_and_endless_answers_are_capped,
    held_integrations_reach_only_their_own_subscriptions,
    finding_6_an_integration_cannot_read_other_integrations_subscriptions_through_the_log,
    finding_7_parallel_creates_do_not_stall_the_database,
    finding_8_the_owner_must_be_a_valid_integration_token,
    finding_9_a_key_given_twice_is_refused,
);

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn call(
    t: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let req = t
        .client
        .request(method, format!("{}/api/v1/subscriptions{path}", t.base))
        .bearer_auth(token);
    match body {
        Some(b) => req.json(&b),
        None => req,
    }
    .send()
    .await
    .expect("request")
}

/// Creates a webhook subscription to `url` taking `filter`; its id and secret.
async fn create(t: &TestApp, url: &str, filter: Value) -> (Uuid, String) {
    let res = call(
        t,
        &t.admin,
        Method::POST,
        "",
        Some(json!({ "name": "攻击测试", "filter": filter,
            "delivery": { "kind": "webhook", "url": url } })),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    (
        v["id"].as_str().unwrap().parse().unwrap(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

async fn status(t: &TestApp, id: Uuid) -> Value {
    let res = call(t, &t.admin, Method::GET, &format!("/{id}"), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn wait_status(t: &TestApp, id: Uuid, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = status(t, id).await;
        if done(&s) {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "never {what}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn attempts(t: &TestApp, id: Uuid) -> Vec<Value> {
    let res = call(t, &t.admin, Method::GET, &format!("/{id}/attempts"), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn list_len(t: &TestApp) -> usize {
    let res = call(t, &t.admin, Method::GET, "", None).await;
    res.json::<Vec<Value>>().await.unwrap().len()
}

/// Records a contact whose note holds a phone number (personal data).
async fn contact(t: &TestApp) {
    let res = t
        .post(
            &t.admin,
            "RecordContact",
            json!({ "contact_id": Uuid::now_v7(), "pairing_id": caretrail_domain::demo::pairing(1),
                "on": "2021-10-30", "channel": "phone", "note": "回电13800138000" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// The demo service with `engine` as its integrations' engine.
async fn spawn_engine(h: &Harness, engine: caretrail_integrations::EngineConfig) -> TestApp {
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
    TestApp::from_service(service).await
}

/// As production runs: no private addresses.
async fn spawn_public_only(h: &Harness) -> TestApp {
    let mut engine = caretrail_http::testing::test_engine();
    engine.webhook.allow_private = false;
    spawn_engine(h, engine).await
}

/// Finding 1: a URL of at most 2,048 bytes as typed whose percent-encoded form (what is sent,
/// and what every attempt checks again) is longer was accepted, and then every attempt failed
/// with `url_refused: webhook_url_too_long` until the subscription was disabled.
async fn finding_1_a_url_too_long_once_encoded_is_refused_at_creation(h: &Harness) {
    let t = spawn(h).await;
    for url in [
        format!("https://example.com/{}", "é".repeat(1010)),
        format!("https://example.com/?q={}", "\u{4e2d}".repeat(600)),
    ] {
        assert!(url.len() <= 2048);
        let res = call(
            &t,
            &t.admin,
            Method::POST,
            "",
            Some(json!({ "name": "x", "delivery": { "kind": "webhook", "url": url } })),
        )
        .await;
        let p = problem(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "webhook_url_too_long",
        )
        .await;
        assert!(!p.to_string().contains("éé"), "{p}");
    }
    assert_eq!(list_len(&t).await, 0, "nothing created");
}

/// Finding 2: a receiver's answer is kept as the attempt's excerpt, shown on the admin page;
/// bidirectional overrides, isolates, line separators and byte-order marks went through
/// (only `char::is_control` was replaced). Now every character a name refuses is replaced, and
/// the excerpt stays capped at the first kilobyte of the answer.
async fn finding_2_receiver_excerpts_are_sanitised_and_capped(h: &Harness) {
    let t = spawn(h).await;
    let r = Receiver::start(SECRET).await;
    let mut answer = String::from(
        "\u{1b}[31mRED\u{1b}[0m\u{7}\r\n\u{202e}evil\u{202c}\u{2066}x\u{2069}\u{2028}\u{feff}\u{85}13800138000",
    );
    answer.push_str(&"\u{1}\u{1b}[2J".repeat(1000));
    r.set_mode(Mode::Respond(500, answer));
    let (id, secret) = create(&t, &r.url(), json!({ "types": ["ContactRecorded"] })).await;
    r.set_secrets(&[&secret]);
    contact(&t).await;
    wait_status(&t, id, "failing", |s| s["state"] == json!("failing")).await;
    let a = attempts(&t, id).await;
    let excerpt = a[0]["response_excerpt"].as_str().unwrap();
    for c in excerpt.chars() {
        assert!(
            !c.is_control()
                && caretrail_domain::text::refused(c, caretrail_domain::text::TextKind::Line)
                    .is_none(),
            "U+{:04X} kept in {excerpt:?}",
            u32::from(c)
        );
    }
    assert!(excerpt.contains("evil"), "{excerpt:?}");
    // The first 1,024 bytes of the answer, each refused character one U+FFFD.
    assert!(
        excerpt.chars().count() <= 1024,
        "{}",
        excerpt.chars().count()
    );
    assert_eq!(
        a[0]["error"],
        json!("status 500"),
        "the error is ours, not the receiver's"
    );
    r.set_mode(Mode::Ok);
}

/// Finding 3: two rotations at once both chose the next generation; the one whose sealed
/// secret was stored second hit the secrets table's unique key and answered 500. It now
/// answers 409 `subscription_secret_generation_stale`, as when the command loses the race,
/// and every secret a 200 handed out is one the subscription knows.
async fn finding_3_concurrent_rotations_answer_409_never_500(h: &Harness) {
    let t = spawn(h).await;
    let r = Receiver::start(SECRET).await;
    let (id, _) = create(&t, &r.url(), json!({ "types": ["ContactRecorded"] })).await;
    let path = format!("/{id}/rotate-secret");
    let rotations = (0..8).map(|_| {
        call(
            &t,
            &t.admin,
            Method::POST,
            &path,
            Some(json!({ "grace_seconds": 60 })),
        )
    });
    let mut won = Vec::new();
    for res in futures::future::join_all(rotations).await {
        match res.status() {
            StatusCode::OK => won.push(res.json::<Value>().await.unwrap()),
            StatusCode::CONFLICT => {
                let p: Value = res.json().await.unwrap();
                assert!(
                    p["code"] == json!("subscription_secret_generation_stale"),
                    "{p}"
                );
            }
            other => panic!("a rotation answered {other}: {}", res.text().await.unwrap()),
        }
    }
    assert!(!won.is_empty());
    let s = status(&t, id).await;
    assert_eq!(s["secret_generation"], json!(1 + won.len()), "{s}");
    // The latest winner's secret signs.
    let newest = won
        .iter()
        .max_by_key(|w| w["secret_generation"].as_u64())
        .unwrap();
    r.set_secrets(&[newest["secret"].as_str().unwrap()]);
    contact(&t).await;
    r.wait_for(1, WAIT).await;
    assert_eq!(r.bad_signatures(), 0);
}

/// Finding 4: the answers that hold the signing secret (create, rotate) carried no
/// `Cache-Control`, so a browser or an intermediary could keep the secret.
async fn finding_4_answers_holding_a_secret_are_not_cacheable(h: &Harness) {
    let t = spawn(h).await;
    let r = Receiver::start(SECRET).await;
    let res = call(
        &t,
        &t.admin,
        Method::POST,
        "",
        Some(json!({ "name": "x", "delivery": { "kind": "webhook", "url": r.url() } })),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = call(
        &t,
        &t.admin,
        Method::POST,
        &format!("/{id}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
}

/// Finding 5: a pause (or a delete) was answered once the registry showed it, but the worker
/// ran on until the supervisor's next tick (a second in production): an event recorded right
/// after the answer was still delivered. Workers now check their subscription before every
/// attempt. The engine runs with production's tick here, so the window is as wide as it is
/// in production.
async fn finding_5_nothing_recorded_after_a_pause_or_delete_answer_is_delivered(h: &Harness) {
    let mut engine = caretrail_http::testing::test_engine();
    engine.tick = Duration::from_secs(1);
    engine.lease_ttl = Duration::from_secs(10);
    let t = spawn_engine(h, engine).await;
    let r = Receiver::start(SECRET).await;
    for stop in ["pause", "delete"] {
        for _ in 0..3 {
            let (id, secret) = create(&t, &r.url(), json!({ "types": ["ContactRecorded"] })).await;
            r.set_secrets(&[&secret]);
            // The worker runs: one event delivered.
            let before = r.deliveries().len();
            contact(&t).await;
            r.wait_for(before + 1, WAIT).await;
            let res = match stop {
                "pause" => call(&t, &t.admin, Method::POST, &format!("/{id}/pause"), None).await,
                _ => call(&t, &t.admin, Method::DELETE, &format!("/{id}"), None).await,
            };
            assert!(res.status().is_success(), "{stop}: {}", res.status());
            contact(&t).await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert_eq!(
                r.deliveries().len(),
                before + 1,
                "an event recorded after the {stop} was answered was delivered"
            );
            if stop == "pause" {
                call(&t, &t.admin, Method::DELETE, &format!("/{id}"), None).await;
            }
        }
    }
}

/// Finding 6 (not fixed: a design decision): an integration token reads only the
/// subscriptions made for it on `/api/v1/subscriptions`, but every subscription's
/// configuration (name, URL with its query string, filter, owner token id) is in its
/// `SubscriptionCreated` event, which integration tokens read in `/api/v1/events`,
/// `/api/v1/streams/subscription-…` and the event stream, and which every subscription without
/// a filter delivers to its receiver (webhook or the shared NATS stream).
async fn finding_6_an_integration_cannot_read_other_integrations_subscriptions_through_the_log(
    h: &Harness,
) {
    let t = spawn(h).await;
    let mine = t
        .tokens
        .create(Role::Integration, None, "mine")
        .await
        .unwrap();
    let theirs = t.token(Role::Integration, None).await;
    let res = call(
        &t,
        &t.admin,
        Method::POST,
        "",
        Some(json!({ "name": "省总工会案件系统", "owner_token_id": mine.0.token_id,
            "delivery": { "kind": "webhook", "url": "https://cases.example.org/hook?key=S3CRET" } })),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = call(&t, &theirs, Method::GET, &format!("/{id}"), None).await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    for path in [
        format!("/api/v1/streams/subscription-{id}"),
        "/api/v1/events?category=subscription&limit=100".to_owned(),
    ] {
        let res = t.get(&theirs, &path).await;
        let text = res.text().await.unwrap();
        assert!(
            !text.contains("S3CRET") && !text.contains("cases.example.org"),
            "{path} shows another integration's subscription: {text}"
        );
    }
}

/// Finding 7: 20 subscriptions created at once stalled the whole database for 30 s: creates
/// answered 500 (`database is locked`) and 503 (`pool timed out`), and the store writer, the
/// audit tree and the engine reported failures. First seen beside 200 subscriptions to a hung
/// receiver; remeasured with the release binary, the hung subscriptions played no part (20
/// parallel creates alone: 30.1 s, 9 of them 500 and 8 of them 503).
///
/// The cause was the audit tree follower (off in the test service unless asked, which is why
/// this test once did not reproduce it): it read the log inside its consumer transaction, which
/// on SQLite holds the write lock on one pooled connection, so the read needed a second one
/// while every other pooled connection was a create waiting for the lock. It now reads before
/// the transaction. After: 20 parallel creates in 0.15 s, all 201 (beside 200 hung
/// subscriptions: 0.24 s).
async fn finding_7_parallel_creates_do_not_stall_the_database(h: &Harness) {
    let service = caretrail_http::testing::demo_service_with(
        h,
        master(h),
        caretrail_http::testing::DemoOptions {
            tree_follower: true,
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let t = TestApp::from_service(service).await;
    let r = Receiver::start(SECRET).await;
    let started = std::time::Instant::now();
    let creates = (0..20).map(|i| {
        call(
            &t,
            &t.admin,
            Method::POST,
            "",
            Some(json!({ "name": format!("并发创建 {i}"),
                "delivery": { "kind": "webhook", "url": r.url() } })),
        )
    });
    for res in futures::future::join_all(creates).await {
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
    }
    // The lock waits that stalled it lasted the 30 s busy timeout; a few seconds is slack
    // for a loaded CI machine.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Finding 8 (noticed in review): `owner_token_id` was stored whatever it named. A mistyped
/// id, an administrator's or director's token, or a revoked one created a subscription that no
/// integration could ever read, and the administrator learnt it only from the integration's
/// 404s. It must name an unrevoked, unexpired integration token.
async fn finding_8_the_owner_must_be_a_valid_integration_token(h: &Harness) {
    let t = spawn(h).await;
    let r = Receiver::start(SECRET).await;
    let integration = t
        .tokens
        .create(Role::Integration, None, "owner")
        .await
        .unwrap();
    let revoked = t
        .tokens
        .create(Role::Integration, None, "revoked")
        .await
        .unwrap();
    t.tokens.revoke(revoked.0.token_id).await.unwrap();
    let expired = t
        .tokens
        .create_expiring(
            Role::Integration,
            None,
            "expired",
            Some(chrono::Utc::now() + chrono::Duration::milliseconds(300)),
        )
        .await
        .unwrap();
    let admin = t.tokens.create(Role::Admin, None, "admin").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for owner in [
        Uuid::now_v7(),
        revoked.0.token_id,
        expired.0.token_id,
        admin.0.token_id,
    ] {
        let res = call(
            &t,
            &t.admin,
            Method::POST,
            "",
            Some(json!({ "name": "x", "owner_token_id": owner,
                "delivery": { "kind": "webhook", "url": r.url() } })),
        )
        .await;
        problem(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "subscription_owner_unknown",
        )
        .await;
    }
    assert_eq!(list_len(&t).await, 0, "nothing created");
    let res = call(
        &t,
        &t.admin,
        Method::POST,
        "",
        Some(
            json!({ "name": "x", "owner_token_id": integration.0.token_id,
            "delivery": { "kind": "webhook", "url": r.url() } }),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// Finding 9 (noticed in review): a body holding one key twice was read with the last value
/// winning, so `{"delivery": <a public URL>, "delivery": <another>}` could mean one target to a
/// reviewer's tool or a proxy's log and another to caretrail. It is refused, naming the
/// position, not the key.
async fn finding_9_a_key_given_twice_is_refused(h: &Harness) {
    let t = spawn(h).await;
    let r = Receiver::start(SECRET).await;
    let body = format!(
        r#"{{"name": "x", "delivery": {{"kind": "webhook", "url": "{}"}}, "delivery": {{"kind": "webhook", "url": "https://13800138000.example.org/"}}}}"#,
        r.url()
    );
    let res = t
        .client
        .post(format!("{}/api/v1/subscriptions", t.base))
        .bearer_auth(&t.admin)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let text = problem(res, StatusCode::BAD_REQUEST, "duplicate_json_key")
        .await
        .to_string();
    assert!(
        !text.contains("13800138000") && !text.contains("delivery"),
        "{text}"
    );
    assert_eq!(list_len(&t).await, 0, "nothing created");
}

async fn held_ssrf_every_encoding_of_a_private_address_is_refused(h: &Harness) {
    let t = spawn_public_only(h).await;
    for url in [
        "https://2130706433/",
        "https://0x7f.1/",
        "https://127.1/",
        "https://0177.0.0.1/",
        "https://0x7f000001/",
        "https://127.0.0.1./",
        "https://127.000.000.001/",
        "https://0/",
        "https://0.0.0.0/",
        "https://[::]/",
        "https://[::1]/",
        "https://[::ffff:7f00:1]/",
        "https://[::127.0.0.1]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[64:ff9b:1::7f00:1]/",
        "https://[2002:a9fe:a9fe::1]/",
        "https://[::ffff:0:7f00:1]/",
        "https://[fe80::1]/",
        "https://[fd00:ec2::254]/",
        "https://[2001::1]/",
        "https://100.100.100.200/",
        "https://169.254.169.254/latest/meta-data/",
        "https://%31%32%37.0.0.1/",
        "https://127%2e0%2e0%2e1/",
        "https://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
        "https://127\u{3002}0\u{3002}0\u{3002}1/",
        "https://localhost/",
        "https://LOCALHOST:8443/",
        "https://example.com@127.0.0.1/",
        "https://example.com\\@127.0.0.1/",
        "https:\\\\127.0.0.1/",
        "http://example.com/",
    ] {
        let res = call(
            &t,
            &t.admin,
            Method::POST,
            "",
            Some(json!({ "name": "x", "delivery": { "kind": "webhook", "url": url } })),
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let p: Value = res.json().await.unwrap();
        let code = p["code"].as_str().unwrap();
        assert!(
            code.starts_with("webhook_url_") || code.starts_with("subscription_url_"),
            "{url}: {p}"
        );
        assert!(!p.to_string().contains("127"), "{url} echoed: {p}");
    }
    assert_eq!(list_len(&t).await, 0, "nothing created");
}

async fn held_redirects_are_never_followed(h: &Harness) {
    let t = spawn(h).await;
    let target = Receiver::start(SECRET).await;
    let r = Receiver::start(SECRET).await;
    r.set_mode(Mode::Redirect(target.url()));
    let (id, secret) = create(&t, &r.url(), json!({ "types": ["ContactRecorded"] })).await;
    r.set_secrets(&[&secret]);
    target.set_secrets(&[&secret]);
    contact(&t).await;
    wait_status(&t, id, "failing", |s| s["last_status"] == json!(302)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(target.requests(), 0, "the redirect was followed");
    let a = attempts(&t, id).await;
    assert_eq!(a[0]["error"], json!("redirect 302"));
    assert!(!a[0].to_string().contains(&target.url()), "{}", a[0]);
    r.set_mode(Mode::Ok);
}

async fn held_the_secret_is_shown_once_and_nowhere_else(h: &Harness) {
    let t = spawn(h).await;
    let r = Receiver::start(SECRET).await;
    let (id, secret) = create(&t, &r.url(), json!({})).await;
    r.set_secrets(&[&secret]);
    contact(&t).await;
    r.wait_for(1, WAIT).await;
    let key = &secret["whsec_".len()..];
    let auditor = t.token(Role::Auditor, None).await;
    for (token, path) in [
        (&t.admin, format!("/api/v1/subscriptions/{id}")),
        (&t.admin, "/api/v1/subscriptions".to_owned()),
        (&t.admin, format!("/api/v1/subscriptions/{id}/attempts")),
        (&t.admin, "/api/v1/events?limit=1000".to_owned()),
        (&t.admin, format!("/api/v1/streams/subscription-{id}")),
        (&auditor, "/metrics".to_owned()),
    ] {
        let text = t.get(token, &path).await.text().await.unwrap();
        assert!(!text.contains(key), "{path} shows the secret");
    }
    // Not in any delivery either (a subscription without a filter receives its own events).
    for d in r.deliveries() {
        let body = serde_json::to_string(&d.cloudevent).unwrap();
        assert!(!body.contains(key), "a delivery carries the secret");
        assert!(
            !body.contains("13800138000"),
            "a delivery carries personal plaintext"
        );
    }
    // Deleting destroys the key that sealed it.
    let res = call(&t, &t.admin, Method::DELETE, &format!("/{id}"), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(t.app.keys().is_erased(id).await.unwrap());
}

async fn held_bad_inputs_are_refused_without_echo_and_create_nothing(h: &Harness) {
    let t = spawn(h).await;
    let r = Receiver::start(SECRET).await;
    let url = r.url();
    let hook = json!({ "kind": "webhook", "url": url });
    let mut bodies = vec![
        json!({ "name": "13800138000".repeat(1000), "delivery": hook }),
        json!({ "name": "a\u{202e}13800138000", "delivery": hook }),
        json!({ "name": "a\u{0}13800138000", "delivery": hook }),
        json!({ "name": "a\n13800138000", "delivery": hook }),
        json!({ "name": { "13800138000": [[[[1]]]] }, "delivery": hook }),
        json!({ "name": "x", "13800138000": 1, "delivery": hook }),
        json!({ "name": "x", "delivery": { "kind": "webhook", "url": url, "headers": { "x": "13800138000" } } }),
        json!({ "name": "x", "delivery": { "kind": "webhook", "url": "https://example.com/\u{202e}13800138000" } }),
        json!({ "name": "x", "delivery": { "kind": "nats", "subject_prefix": "a.* 13800138000" } }),
        json!({ "name": "x", "filter": { "types": vec!["VisitRecorded"; 10_000] }, "delivery": hook }),
        json!({ "name": "x", "filter": { "categories": ["13800138000"] }, "delivery": hook }),
        json!({ "name": "x", "owner_token_id": "13800138000", "delivery": hook }),
    ];
    for start in [
        json!(-1),
        json!(1.5),
        json!("13800138000"),
        json!(u64::MAX),
        json!(true),
    ] {
        bodies.push(json!({ "name": "x", "start_after": start, "delivery": hook }));
    }
    for body in bodies {
        let res = call(&t, &t.admin, Method::POST, "", Some(body.clone())).await;
        assert!(res.status().is_client_error(), "{body}: {}", res.status());
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let text = res.text().await.unwrap();
        assert!(!text.contains("13800138000"), "echoed: {text}");
    }
    // A body far over the limit. (300 kB, not a mebibyte: the server answers 413 as soon as
    // the limit is passed and closes the connection, and with a mebibyte still being sent
    // the unread rest makes the kernel reset the connection, on a loaded machine before the
    // client has read the answer; the refusal is the same.)
    let res = call(
        &t,
        &t.admin,
        Method::POST,
        "",
        Some(json!({ "name": "x".repeat(300_000), "delivery": hook })),
    )
    .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(list_len(&t).await, 0, "nothing created");

    let (id, _) = create(&t, &url, json!({ "types": ["ContactRecorded"] })).await;
    for (path, body) in [
        ("rewind", json!({ "after": -1 })),
        ("rewind", json!({ "after": 1.5 })),
        ("rewind", json!({ "after": u64::MAX })),
        ("rewind", json!({})),
        ("rewind", json!({ "after": 0, "x": 1 })),
        ("rotate-secret", json!({ "grace_seconds": -1 })),
        (
            "rotate-secret",
            json!({ "grace_seconds": 4_294_967_296u64 }),
        ),
        ("rotate-secret", json!({ "grace_seconds": 604_801 })),
        ("rotate-secret", json!({ "generation": 9 })),
    ] {
        let res = call(
            &t,
            &t.admin,
            Method::POST,
            &format!("/{id}/{path}"),
            Some(body.clone()),
        )
        .await;
        assert!(
            res.status().is_client_error(),
            "{path} {body}: {}",
            res.status()
        );
    }
    // A limit past u64 does not parse; a large one that does reads as the 100 kept.
    for q in ["limit=-1", "limit=1e9", "limit=99999999999999999999", "x=1"] {
        let res = call(
            &t,
            &t.admin,
            Method::GET,
            &format!("/{id}/attempts?{q}"),
            None,
        )
        .await;
        problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    let s = status(&t, id).await;
    assert_eq!(s["secret_generation"], json!(1), "{s}");
    assert_eq!(list_len(&t).await, 1);
}

async fn held_huge_and_endless_answers_are_capped(h: &Harness) {
    let t = spawn(h).await;
    for mode in [Mode::LargeBody(20 << 20), Mode::EndlessBody] {
        let r = Receiver::start(SECRET).await;
        r.set_mode(mode.clone());
        let (id, secret) = create(&t, &r.url(), json!({ "types": ["ContactRecorded"] })).await;
        r.set_secrets(&[&secret]);
        contact(&t).await;
        let s = wait_status(&t, id, "delivered", |s| s["delivered_total"] == json!(1)).await;
        assert_eq!(s["state"], json!("active"), "{mode:?}: {s}");
        let a = attempts(&t, id).await;
        let excerpt = a[0]["response_excerpt"].as_str().unwrap();
        assert!(excerpt.len() <= 1024, "{mode:?}: {} bytes", excerpt.len());
        assert!(
            a[0]["latency_ms"].as_f64().unwrap() < 2000.0,
            "{mode:?}: the body was read on: {}",
            a[0]
        );
    }
}

async fn held_integrations_reach_only_their_own_subscriptions(h: &Harness) {
    let t = spawn(h).await;
    let r = Receiver::start(SECRET).await;
    let mine = t
        .tokens
        .create(Role::Integration, None, "mine")
        .await
        .unwrap();
    let theirs = t
        .tokens
        .create(Role::Integration, None, "theirs")
        .await
        .unwrap();
    let expired = t
        .tokens
        .create_expiring(
            Role::Integration,
            None,
            "expired",
            Some(chrono::Utc::now() + chrono::Duration::milliseconds(500)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let res = call(
        &t,
        &t.admin,
        Method::POST,
        "",
        Some(json!({ "name": "x", "owner_token_id": mine.0.token_id,
            "delivery": { "kind": "webhook", "url": r.url() } })),
    )
    .await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = call(&t, &mine.1, Method::GET, &format!("/{id}/attempts"), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    for path in [format!("/{id}"), format!("/{id}/attempts")] {
        let res = call(&t, &theirs.1, Method::GET, &path, None).await;
        problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let res = call(&t, &expired.1, Method::GET, "", None).await;
    problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    t.tokens.revoke(mine.0.token_id).await.unwrap();
    for path in [format!("/{id}"), format!("/{id}/attempts"), String::new()] {
        let res = call(&t, &mine.1, Method::GET, &path, None).await;
        problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let auditor = t.token(Role::Auditor, None).await;
    for (method, path, body) in [
        (Method::POST, format!("/{id}/pause"), None),
        (
            Method::POST,
            format!("/{id}/rewind"),
            Some(json!({ "after": 0 })),
        ),
        (Method::POST, format!("/{id}/rotate-secret"), None),
        (Method::DELETE, format!("/{id}"), None),
    ] {
        for token in [&auditor, &theirs.1] {
            let res = call(&t, token, method.clone(), &path, body.clone()).await;
            problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
}
