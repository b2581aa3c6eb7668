//! Webhook delivery over real sockets: `WebhookClient` against the `testing` receiver, which
//! checks every delivery with the Standard Webhooks library and the CloudEvents SDK. Nothing is
//! mocked, so a test fails where a real receiver would refuse what caretrail sends.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use caretrail_app::view::EventView;
use caretrail_integrations::cloudevent::{Outgoing, render};
use caretrail_integrations::testing::{Mode, Receiver};
use caretrail_integrations::webhook::{
    Attempt, Outcome, Secret, WebhookClient, WebhookConfig, signature_header,
};
use cloudevents::AttributesReader as _;
use serde_json::json;
use uuid::Uuid;

fn event(position: u64) -> Outgoing {
    let view = EventView {
        position,
        stream_id: format!("visit-{}", Uuid::now_v7()),
        stream_version: 1,
        event_id: Uuid::now_v7(),
        event_type: "VisitRecorded".to_owned(),
        schema_version: 2,
        stored_schema_version: 2,
        data: json!({ "notes": { "redacted": true }, "minutes": 45 }),
        actor_id: "director-1".to_owned(),
        actor_role: "director".to_owned(),
        command_id: None,
        correlation_id: None,
        causation_id: None,
        business_date: None,
        recorded_at: chrono::Utc::now(),
        leaf_hash: "0f".repeat(32),
    };
    render(&view, "urn:caretrail:test").unwrap()
}

fn client(allow_private: bool, timeout: Duration) -> WebhookClient {
    WebhookClient::new(WebhookConfig {
        allow_private,
        timeout,
        ..WebhookConfig::default()
    })
    .unwrap()
}

fn local_client() -> WebhookClient {
    client(true, Duration::from_secs(5))
}

async fn start_receiver() -> (Receiver, Secret) {
    let secret = Secret::generate().unwrap();
    (Receiver::start(&secret.to_whsec()).await, secret)
}

async fn deliver(client: &WebhookClient, receiver: &Receiver, secret: &Secret) -> Attempt {
    let url = client.check_url(&receiver.url()).unwrap();
    client.deliver(&url, &[secret], &event(7)).await
}

fn error_of(attempt: &Attempt) -> &str {
    attempt.error.as_deref().unwrap_or("")
}

#[tokio::test]
async fn a_delivery_verifies_with_standard_webhooks_and_parses_as_a_cloudevent() {
    let (receiver, secret) = start_receiver().await;
    let client = local_client();
    let msg = event(u64::from(u32::MAX) + 5);
    let url = client.check_url(&receiver.url()).unwrap();
    let before = chrono::Utc::now().timestamp();

    let attempt = client.deliver(&url, &[&secret], &msg).await;

    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    assert_eq!(attempt.status, Some(204));
    assert_eq!(attempt.error, None);
    assert_eq!(attempt.response_excerpt, None);
    let delivered = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(receiver.bad_signatures(), 0);
    assert_eq!(receiver.bad_bodies(), 0);
    let d = &delivered[0];
    assert_eq!(d.webhook_id, msg.event_id.to_string());
    assert_eq!(d.position, msg.position);
    assert_eq!(d.event_type, "VisitRecorded");
    assert_eq!(d.cloudevent.id(), msg.event_id.to_string());
    assert_eq!(d.cloudevent.ty(), "cn.caretrail.VisitRecorded.v2");

    let header = |name: &str| d.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("webhook-id"), msg.event_id.to_string());
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    assert!((before..=chrono::Utc::now().timestamp()).contains(&timestamp));
    assert_eq!(
        header("webhook-signature"),
        signature_header(&[&secret], &d.webhook_id, timestamp, &msg.body)
    );
    assert_eq!(
        header("user-agent"),
        format!("caretrail-webhooks/{}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_and_either_verifies() {
    let old = Secret::generate().unwrap();
    let new = Secret::generate().unwrap();
    let receiver = Receiver::start(&old.to_whsec()).await;
    let client = local_client();
    let url = client.check_url(&receiver.url()).unwrap();

    // A receiver still on the old secret, one already on the new, one holding both.
    for verifying in [
        vec![old.to_whsec()],
        vec![new.to_whsec()],
        vec![old.to_whsec(), new.to_whsec()],
    ] {
        let verifying: Vec<&str> = verifying.iter().map(String::as_str).collect();
        receiver.set_secrets(&verifying);
        let attempt = client.deliver(&url, &[&old, &new], &event(1)).await;
        assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    }
    assert_eq!(receiver.deliveries().len(), 3);
    let signature = receiver.deliveries()[0].headers["webhook-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(signature.split(' ').count(), 2);
    assert_eq!(receiver.bad_signatures(), 0);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver_and_retried() {
    let (receiver, _) = start_receiver().await;
    let other = Secret::generate().unwrap();
    let attempt = deliver(&local_client(), &receiver, &other).await;
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert_eq!(attempt.status, Some(400));
    assert_eq!(error_of(&attempt), "status 400");
    assert_eq!(receiver.bad_signatures(), 1);
    assert!(receiver.deliveries().is_empty());
}

#[tokio::test]
async fn a_500_is_retried_with_its_status_and_excerpt() {
    let (receiver, secret) = start_receiver().await;
    receiver.set_mode(Mode::Status(500));
    let attempt = deliver(&local_client(), &receiver, &secret).await;
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert_eq!(attempt.status, Some(500));
    assert_eq!(error_of(&attempt), "status 500");
    assert_eq!(
        attempt.response_excerpt.as_deref(),
        Some("scripted status 500")
    );
}

#[tokio::test]
async fn a_receiver_failing_twice_is_delivered_on_the_third_attempt() {
    let (receiver, secret) = start_receiver().await;
    receiver.set_mode(Mode::FailNext(2));
    let client = local_client();
    let outcomes: Vec<Outcome> = [
        deliver(&client, &receiver, &secret).await,
        deliver(&client, &receiver, &secret).await,
        deliver(&client, &receiver, &secret).await,
    ]
    .iter()
    .map(|a| a.outcome)
    .collect();
    assert_eq!(
        outcomes,
        [Outcome::Retry, Outcome::Retry, Outcome::Delivered]
    );
    assert_eq!(receiver.deliveries().len(), 1);
}

#[tokio::test]
async fn a_410_means_gone() {
    let (receiver, secret) = start_receiver().await;
    receiver.set_mode(Mode::Status(410));
    let attempt = deliver(&local_client(), &receiver, &secret).await;
    assert_eq!(attempt.outcome, Outcome::Gone);
    assert_eq!(attempt.status, Some(410));
}

#[tokio::test]
async fn a_hanging_receiver_times_out_within_the_configured_timeout() {
    let (receiver, secret) = start_receiver().await;
    receiver.set_mode(Mode::Hang);
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let attempt = deliver(&client(true, timeout), &receiver, &secret).await;
    let took = started.elapsed();
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert_eq!(attempt.status, None);
    assert!(error_of(&attempt).starts_with("timeout"), "{attempt:?}");
    assert!(took >= timeout, "{took:?}");
    assert!(took < timeout + Duration::from_secs(1), "{took:?}");
    assert_eq!(receiver.requests(), 1);
}

#[tokio::test]
async fn a_stopped_receiver_is_a_connect_failure_even_with_a_pooled_connection() {
    let (receiver, secret) = start_receiver().await;
    let client = local_client();
    // A first delivery leaves a keep-alive connection in the client's pool.
    assert_eq!(
        deliver(&client, &receiver, &secret).await.outcome,
        Outcome::Delivered
    );

    receiver.stop().await;
    let attempt = deliver(&client, &receiver, &secret).await;
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert_eq!(attempt.status, None);
    assert!(error_of(&attempt).starts_with("connect"), "{attempt:?}");

    receiver.restart().await;
    assert_eq!(
        deliver(&client, &receiver, &secret).await.outcome,
        Outcome::Delivered
    );
    assert_eq!(receiver.deliveries().len(), 2);
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let (receiver, secret) = start_receiver().await;
    let (elsewhere, _) = start_receiver().await;
    receiver.set_mode(Mode::Redirect(elsewhere.url()));
    let attempt = deliver(&local_client(), &receiver, &secret).await;
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert_eq!(attempt.status, Some(302));
    assert_eq!(error_of(&attempt), "redirect 302");
    assert_eq!(elsewhere.connections(), 0);
    assert!(receiver.deliveries().is_empty());
}

#[tokio::test]
async fn the_response_excerpt_is_capped_for_a_10_mb_body() {
    let (receiver, secret) = start_receiver().await;
    receiver.set_mode(Mode::LargeBody(10 << 20));
    let attempt = deliver(&local_client(), &receiver, &secret).await;
    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    assert_eq!(attempt.response_excerpt, Some("x".repeat(1024)));
}

#[tokio::test]
async fn an_endless_response_body_is_not_read_to_its_end() {
    let (receiver, secret) = start_receiver().await;
    receiver.set_mode(Mode::EndlessBody);
    let timeout = Duration::from_secs(3);
    let started = Instant::now();
    let attempt = deliver(&client(true, timeout), &receiver, &secret).await;
    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    assert_eq!(attempt.error, None, "{attempt:?}");
    assert_eq!(attempt.response_excerpt, Some("y".repeat(1024)));
    assert!(started.elapsed() < timeout, "read until the timeout");
}

#[tokio::test]
async fn control_characters_in_the_response_excerpt_are_replaced() {
    let (receiver, secret) = start_receiver().await;
    receiver.set_mode(Mode::Respond(503, "busy\r\n\u{1b}[31mtry later".to_owned()));
    let attempt = deliver(&local_client(), &receiver, &secret).await;
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert_eq!(
        attempt.response_excerpt.as_deref(),
        Some("busy\u{FFFD}\u{FFFD}\u{FFFD}[31mtry later")
    );
}

fn public_only() -> WebhookClient {
    client(false, Duration::from_secs(5))
}

fn refusal(url: &str) -> &'static str {
    public_only().check_url(url).unwrap_err().code()
}

#[test]
fn ssrf_plain_http_is_refused() {
    assert_eq!(refusal("http://example.com/hook"), "webhook_url_scheme");
}

#[test]
fn ssrf_a_loopback_literal_is_refused() {
    assert_eq!(refusal("https://127.0.0.1/"), "webhook_url_private_address");
    assert_eq!(refusal("https://[::1]/"), "webhook_url_private_address");
}

#[test]
fn ssrf_a_private_network_literal_is_refused() {
    assert_eq!(refusal("https://10.0.0.1/"), "webhook_url_private_address");
}

#[test]
fn ssrf_the_cloud_metadata_address_is_refused() {
    assert_eq!(
        refusal("https://169.254.169.254/latest/meta-data/"),
        "webhook_url_private_address"
    );
}

#[test]
fn ssrf_an_ipv4_mapped_loopback_is_refused() {
    assert_eq!(
        refusal("https://[::ffff:127.0.0.1]/"),
        "webhook_url_private_address"
    );
}

#[test]
fn ssrf_credentials_in_the_url_are_refused() {
    assert_eq!(
        refusal("https://user:pw@example.com/"),
        "webhook_url_credentials"
    );
}

#[tokio::test]
async fn ssrf_a_name_resolving_to_loopback_is_refused_after_resolution() {
    let (receiver, secret) = start_receiver().await;
    let client = public_only();
    let url = format!("https://localhost:{}/hook", receiver.port());
    // A name passes the creation-time check: only its addresses can say where it leads.
    let url = client.check_url(&url).unwrap();

    let attempt = client.deliver(&url, &[&secret], &event(1)).await;

    assert_eq!(attempt.outcome, Outcome::Retry);
    assert_eq!(attempt.status, None);
    assert!(
        error_of(&attempt).starts_with("address_refused"),
        "{attempt:?}"
    );
    assert_eq!(receiver.connections(), 0, "the receiver was reached");
}

#[tokio::test]
async fn ssrf_deliver_checks_an_ip_literal_itself_since_it_is_never_resolved() {
    let (receiver, secret) = start_receiver().await;
    let client = public_only();
    let url = url::Url::parse(&format!("https://127.0.0.1:{}/hook", receiver.port())).unwrap();

    let attempt = client.deliver(&url, &[&secret], &event(1)).await;

    assert_eq!(attempt.outcome, Outcome::Retry);
    assert!(
        error_of(&attempt).starts_with("address_refused"),
        "{attempt:?}"
    );
    assert_eq!(receiver.connections(), 0, "the receiver was reached");
}

#[tokio::test]
async fn errors_never_carry_the_query_string() {
    let (receiver, secret) = start_receiver().await;
    receiver.stop().await;
    let client = local_client();
    let url = client
        .check_url(&format!("{}?token=s3cr3t", receiver.url()))
        .unwrap();
    let attempt = client.deliver(&url, &[&secret], &event(1)).await;
    let error = error_of(&attempt);
    assert!(error.starts_with("connect"), "{attempt:?}");
    assert!(!error.contains("s3cr3t"), "{error}");
    assert!(!error.contains("127.0.0.1"), "{error}");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    let client = public_only();
    let url = client
        .check_url("https://does-not-exist.invalid/hook")
        .unwrap();
    let secret = Secret::generate().unwrap();
    let attempt = client.deliver(&url, &[&secret], &event(1)).await;
    assert_eq!(attempt.outcome, Outcome::Retry);
    assert!(error_of(&attempt).starts_with("dns"), "{attempt:?}");
}
