//! The NATS JetStream publisher against a real `nats-server` (the `testing` feature's harness):
//! what a JetStream consumer reads back after batches, republication, a server restart in the
//! middle of a stream of batches and a server that is down at start.
//!
//! Run with `cargo test -p caretrail-integrations --features testing --test nats`. Without
//! `nats-server` installed each test prints one line saying it was skipped (and fails under
//! `CI=true`).
#![allow(clippy::unwrap_used)]
#![cfg(feature = "testing")]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, pull};
use caretrail_integrations::Outgoing;
use caretrail_integrations::nats::harness::NatsServer;
use caretrail_integrations::nats::{
    BatchOutcome, DEFAULT_PREFIX, JetStreamConfig, NatsPublisher, subject,
};
use futures::StreamExt;
use uuid::Uuid;

const CATEGORIES: [(&str, &str); 3] = [
    ("visit", "VisitRecorded"),
    ("pairing", "PairAssigned"),
    ("issue", "IssueRaised"),
];

/// The high bits of the test events' ids (a UUIDv7 shape); the low bits are the position.
const ID_BASE: u128 = 0x0192_0000_0000_7000_8000_0000_0000_0000;

/// `n` events, from position `first`, each with a distinct body of about `body_len` bytes.
fn events(first: u64, n: usize, body_len: usize) -> Vec<Outgoing> {
    (first..first + n as u64)
        .map(|position| {
            let (category, event_type) = CATEGORIES[position as usize % CATEGORIES.len()];
            let event_id = Uuid::from_u128(ID_BASE | u128::from(position));
            let head = format!(r#"{{"specversion":"1.0","id":"{event_id}","type":"{event_type}","#)
                + &format!(r#""source":"/caretrail","position":{position},"data":{{"note":""#);
            let pad = body_len.saturating_sub(head.len() + 3);
            let body = format!("{head}{}\"}}}}", "x".repeat(pad));
            Outgoing {
                position,
                event_id,
                category: category.to_owned(),
                event_type: event_type.to_owned(),
                recorded_at: chrono::Utc::now(),
                body: body.into(),
            }
        })
        .collect()
}

fn items(events: &[Outgoing]) -> Vec<(String, &Outgoing)> {
    events
        .iter()
        .map(|e| (subject(DEFAULT_PREFIX, &e.category, &e.event_type), e))
        .collect()
}

fn config(server: &NatsServer, publish_timeout: Duration) -> JetStreamConfig {
    JetStreamConfig {
        publish_timeout,
        ..JetStreamConfig::new(server.url())
    }
}

/// What the engine does: publish from the cursor in batches, advance over the acknowledged
/// prefix, retry the rest. Returns the outcomes that reported an error.
async fn publish_all(
    publisher: &NatsPublisher,
    items: &[(String, &Outgoing)],
    batch: usize,
    deadline: Duration,
) -> Vec<BatchOutcome> {
    let start = Instant::now();
    let mut cursor = 0;
    let mut failed = Vec::new();
    while cursor < items.len() {
        assert!(
            start.elapsed() < deadline,
            "publishing did not finish in {deadline:?}; at {cursor} of {}",
            items.len()
        );
        let len = batch.min(items.len() - cursor);
        let outcome = publisher.publish_batch(&items[cursor..cursor + len]).await;
        cursor += outcome.acked;
        if outcome.error.is_some() {
            assert!(
                outcome.acked < len,
                "a failed batch reports every item acked"
            );
            failed.push(outcome);
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else {
            assert_eq!(outcome.acked, len, "a batch without error stops short");
        }
    }
    failed
}

/// One message as a consumer reads it.
struct Read {
    subject: String,
    id: Uuid,
    content_type: String,
    payload: bytes::Bytes,
}

/// Every message of the `CARETRAIL` stream, read with a pull consumer from the start, after
/// checking the stream holds exactly `expected` messages.
async fn read_stream(url: &str, expected: usize) -> Vec<Read> {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("CARETRAIL").await.unwrap();
    let held = stream.info().await.unwrap().state.messages;
    assert_eq!(held, expected as u64, "messages in the stream");
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut read = Vec::with_capacity(expected);
    while read.len() < expected {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the consumer delivers every message")
            .unwrap()
            .unwrap();
        let headers = message.headers.as_ref().expect("headers");
        read.push(Read {
            subject: message.subject.to_string(),
            id: headers
                .get("Nats-Msg-Id")
                .expect("Nats-Msg-Id")
                .as_str()
                .parse()
                .unwrap(),
            content_type: headers
                .get("Content-Type")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default(),
            payload: message.payload.clone(),
        });
    }
    read
}

fn assert_exactly_once(read: &[Read], events: &[Outgoing]) {
    assert_eq!(read.len(), events.len());
    let ids: HashSet<Uuid> = read.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), read.len(), "a message id appears twice");
    let expected: HashSet<Uuid> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(
        ids, expected,
        "the stream's ids differ from the published ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_in_batches_are_read_back_once_in_order_with_subjects_and_bodies() {
    let Some(server) = NatsServer::start_or_skip("the 10,000-event round trip") else {
        return;
    };
    let publisher = NatsPublisher::connect(config(&server, Duration::from_secs(5)))
        .await
        .unwrap();
    let events = events(1, 10_000, 400);
    let items = items(&events);
    for chunk in items.chunks(256) {
        let outcome = publisher.publish_batch(chunk).await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.acked, chunk.len());
        assert_eq!(outcome.duplicates, 0);
    }

    let read = read_stream(&server.url(), events.len()).await;
    assert_exactly_once(&read, &events);
    for (r, e) in read.iter().zip(&events) {
        assert_eq!(
            r.id, e.event_id,
            "the stream's order differs from the log's"
        );
        assert_eq!(
            r.subject,
            format!("caretrail.{}.{}", e.category, e.event_type)
        );
        assert_eq!(r.content_type, "application/cloudevents+json");
        assert_eq!(r.payload, e.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republished_events_are_counted_as_duplicates_and_not_stored_again() {
    let Some(server) = NatsServer::start_or_skip("the republication test") else {
        return;
    };
    let publisher = NatsPublisher::connect(config(&server, Duration::from_secs(5)))
        .await
        .unwrap();
    let events = events(1, 1_000, 300);
    let items = items(&events);
    for chunk in items.chunks(256) {
        let outcome = publisher.publish_batch(chunk).await;
        assert_eq!((outcome.acked, outcome.duplicates), (chunk.len(), 0));
    }
    // Again, in other batch boundaries, as after a crash that lost the cursor's last advance.
    let mut duplicates = 0;
    for chunk in items.chunks(300) {
        let outcome = publisher.publish_batch(chunk).await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.acked, chunk.len());
        duplicates += outcome.duplicates;
    }
    assert_eq!(duplicates, events.len());

    let read = read_stream(&server.url(), events.len()).await;
    assert_exactly_once(&read, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_in_the_middle_of_batches_leaves_every_event_in_the_stream_once() {
    let Some(server) = NatsServer::start_or_skip("the server restart test") else {
        return;
    };
    let url = server.url();
    let server = Arc::new(Mutex::new(server));
    let publisher = NatsPublisher::connect(JetStreamConfig {
        publish_timeout: Duration::from_millis(500),
        ..JetStreamConfig::new(url.clone())
    })
    .await
    .unwrap();
    let events = events(1, 30_000, 400);
    let items = items(&events);

    // The operator stops the server once the first batches are in, while batches keep coming,
    // and starts it again two seconds later.
    let (started, begun) = std::sync::mpsc::channel::<()>();
    let outage = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || {
            begun.recv().unwrap();
            std::thread::sleep(Duration::from_millis(5));
            server.lock().unwrap().stop();
            std::thread::sleep(Duration::from_secs(2));
            server.lock().unwrap().restart();
        })
    };
    let first = publisher.publish_batch(&items[..256]).await;
    assert_eq!(first.acked, 256);
    started.send(()).unwrap();
    let failed = publish_all(&publisher, &items[256..], 256, Duration::from_secs(60)).await;
    outage.join().unwrap();

    assert!(!failed.is_empty(), "the outage did not fail any batch");
    assert!(
        failed
            .iter()
            .all(|o| o.error.as_ref().is_some_and(|e| e.is_transient())),
        "{:?}",
        failed
            .iter()
            .map(|o| o.error.as_ref().map(|e| e.code()))
            .collect::<Vec<_>>()
    );
    let read = read_stream(&url, events.len()).await;
    assert_exactly_once(&read, &events);
    let out_of_order = read
        .iter()
        .zip(&events)
        .filter(|(r, e)| r.id != e.event_id)
        .count();
    println!(
        "restart: {} failed batches, {} events stored out of log order",
        failed.len(),
        out_of_order
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_while_the_server_is_down_returns_and_publishing_succeeds_once_it_is_up() {
    let Some(mut server) = NatsServer::start_or_skip("the server-down-at-start test") else {
        return;
    };
    server.stop();
    let started = Instant::now();
    let publisher = tokio::time::timeout(
        Duration::from_secs(10),
        NatsPublisher::connect(config(&server, Duration::from_millis(500))),
    )
    .await
    .expect("connect returns while the server is down")
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));

    let events = events(1, 600, 300);
    let items = items(&events);
    let down = publisher.publish_batch(&items[..100]).await;
    assert_eq!(down.acked, 0);
    let error = down.error.expect("a batch fails while the server is down");
    assert!(error.is_transient(), "{error}");

    server.restart();
    let failed = publish_all(&publisher, &items, 256, Duration::from_secs(30)).await;
    println!(
        "server down at start: {} failed batches after it came up",
        failed.len()
    );
    let read = read_stream(&server.url(), events.len()).await;
    assert_exactly_once(&read, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_stream_with_other_subjects_is_an_error_and_left_unchanged() {
    let Some(server) = NatsServer::start_or_skip("the stream conflict test") else {
        return;
    };
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "CARETRAIL".into(),
        subjects: vec!["elsewhere.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();

    let error = NatsPublisher::connect(config(&server, Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "nats_stream_conflict", "{error}");
    assert!(error.to_string().contains("elsewhere.>"), "{error}");
    let info = js.get_stream("CARETRAIL").await.unwrap();
    assert_eq!(info.cached_info().config.subjects, ["elsewhere.>"]);

    // A stream whose subjects cover the configured ones is used as it is.
    js.update_stream(async_nats::jetstream::stream::Config {
        name: "CARETRAIL".into(),
        subjects: vec!["elsewhere.>".into(), "caretrail.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let publisher = NatsPublisher::connect(config(&server, Duration::from_secs(5)))
        .await
        .unwrap();
    let events = events(1, 3, 100);
    assert_eq!(publisher.publish_batch(&items(&events)).await.acked, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_stops_the_batch_there_without_its_body_in_the_error() {
    let Some(server) = NatsServer::start_or_skip("the oversized event test") else {
        return;
    };
    let publisher = NatsPublisher::connect(config(&server, Duration::from_secs(5)))
        .await
        .unwrap();
    let mut events = events(1, 5, 200);
    events[3].body = format!("\"{}\"", "secret".repeat(400_000)).into();
    let outcome = publisher.publish_batch(&items(&events)).await;
    assert_eq!(outcome.acked, 3);
    let error = outcome.error.unwrap();
    assert_eq!(error.code(), "nats_too_large");
    assert!(!error.to_string().contains("secret"));
    assert!(error.to_string().contains(&events[3].event_id.to_string()));
}

/// A figure, not a gate: `cargo bench -p caretrail-integrations --bench nats --features
/// testing` is the measurement (optimised, five runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_of_100_000_events_of_600_bytes_in_batches_of_512() {
    let Some(server) = NatsServer::start_or_skip("the throughput figure") else {
        return;
    };
    let publisher = NatsPublisher::connect(config(&server, Duration::from_secs(10)))
        .await
        .unwrap();
    let events = events(1, 100_000, 600);
    let items = items(&events);
    let started = Instant::now();
    for chunk in items.chunks(512) {
        let outcome = publisher.publish_batch(chunk).await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert_eq!(outcome.acked, chunk.len());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "nats publish: {} events of 600 bytes in batches of 512 in {seconds:.2} s: {:.0} events/s",
        events.len(),
        events.len() as f64 / seconds
    );
}
