//! NATS JetStream publication throughput: 100,000 events of about 600 bytes published to a
//! `nats-server` this bench starts (JetStream, file storage, on 127.0.0.1) in pipelined batches
//! of 512, five runs with fresh event ids each (so the duplicate window drops nothing), printing
//! events per second per run.
//!
//! `cargo bench -p caretrail-integrations --bench nats --features testing` (set
//! `CARETRAIL_BENCH_EVENTS` to change the count per run). Without `nats-server` it says so and
//! exits.

// A bench that unwraps fails with the error, which is what it should do; the lint is for the
// service's own code.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use caretrail_integrations::Outgoing;
use caretrail_integrations::nats::harness::NatsServer;
use caretrail_integrations::nats::{DEFAULT_PREFIX, JetStreamConfig, NatsPublisher, subject};
use uuid::Uuid;

const RUNS: u64 = 5;
const BATCH: usize = 512;
const BODY_BYTES: usize = 600;
/// The high bits of the ids (a UUIDv7 shape); the run and the position fill the low bits.
const ID_BASE: u128 = 0x0192_0000_0000_7000_8000_0000_0000_0000;

fn events(run: u64, n: u64) -> Vec<Outgoing> {
    let filler = "x".repeat(BODY_BYTES);
    (1..=n)
        .map(|position| {
            let event_id = Uuid::from_u128(ID_BASE | u128::from(run) << 40 | u128::from(position));
            let head = format!(r#"{{"specversion":"1.0","id":"{event_id}","#)
                + &format!(r#""type":"VisitRecorded","position":{position},"data":""#);
            let pad = BODY_BYTES.saturating_sub(head.len() + 2);
            let body = format!("{head}{}\"}}", &filler[..pad]);
            Outgoing {
                position,
                event_id,
                category: "visit".to_owned(),
                event_type: "VisitRecorded".to_owned(),
                recorded_at: chrono::Utc::now(),
                body: body.into(),
            }
        })
        .collect()
}

fn main() {
    let n: u64 = std::env::var("CARETRAIL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let Some(server) = NatsServer::start_or_skip("the NATS publication bench") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let publisher = NatsPublisher::connect(JetStreamConfig::new(server.url()))
            .await
            .unwrap();
        let mut rates = Vec::new();
        for run in 1..=RUNS {
            let events = events(run, n);
            let items: Vec<(String, &Outgoing)> = events
                .iter()
                .map(|e| (subject(DEFAULT_PREFIX, &e.category, &e.event_type), e))
                .collect();
            let started = Instant::now();
            for chunk in items.chunks(BATCH) {
                let outcome = publisher.publish_batch(chunk).await;
                assert!(outcome.error.is_none(), "{:?}", outcome.error);
                assert_eq!((outcome.acked, outcome.duplicates), (chunk.len(), 0));
            }
            let seconds = started.elapsed().as_secs_f64();
            let rate = n as f64 / seconds;
            rates.push(rate);
            println!(
                "nats publish run {run}: {n} events of {BODY_BYTES} bytes in batches of {BATCH}: \
                 {seconds:.3} s, {rate:.0} events/s"
            );
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "nats publish: median {:.0} events/s (min {:.0}, max {:.0}) over {RUNS} runs",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1]
        );
    });
}
