//! The reports over a large generated log: the time from request to the last byte of
//! `GET /api/v1/reports/yearly?period=2025&format=xlsx` (target: ≤ 2 s at 1,000,000 events),
//! and beside it the CSV, the JSON and a monthly workbook, served by the real service
//! (`Application::build`, the release build) on loopback.
//!
//! The log is the projection bench's (`generate`, seed 42, the same master key and clock), kept
//! in `target/proj-bench-EVENTS.db` and shared with it; it is generated when missing or short,
//! and the read models are rebuilt before the service starts when they are behind. The audit
//! tree, the checkpointer and the integrations are off, so the figures are the report's own.
//!
//! ```sh
//! cargo bench -p caretrail-http --bench reports                 # 1,000,000 events, 5 timed runs each
//! cargo bench -p caretrail-http --bench reports -- 200000 runs=9 replay
//! ```
//! `replay` adds one yearly workbook as of the head's position (a full replay of the log).

// A bench that unwraps stops with the error, which is what a bench should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use caretrail_app::{App, FixedClock, KeyRing, MasterKey};
use caretrail_domain::Policy;
use caretrail_http::Role;
use caretrail_http::application::{Application, Config, MasterKeySource};
use caretrail_projections::{Projector, Size, generate};
use chrono::NaiveDate;

/// The projection bench's master key, so both benches read one log.
fn master() -> MasterKey {
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Generates the log up to `events` if it is shorter (the projection bench's way).
async fn ensure_log(url: &str, events: u64) {
    let store = caretrail_store::connect(url, Default::default())
        .await
        .unwrap();
    let keys = KeyRing::open(store.as_ref(), master()).await.unwrap();
    let t = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let app = App::new(
        store.clone(),
        Arc::new(keys),
        Policy::default(),
        Arc::new(FixedClock(t)),
    );
    let head = store.head().await.unwrap().position;
    if head < events {
        let started = Instant::now();
        let r = generate(&app, 42, Size::events(events - head))
            .await
            .unwrap();
        println!(
            "generate: {} events in {:.1}s ({:.0} events/s)",
            r.events,
            started.elapsed().as_secs_f64(),
            r.events as f64 / started.elapsed().as_secs_f64()
        );
    }
    let projector = Projector::open(store.clone()).await.unwrap();
    let (_, checkpoint) = projector.live_version().await.unwrap();
    let head = store.head().await.unwrap().position;
    if checkpoint < head {
        let r = projector.rebuild().await.unwrap();
        println!(
            "rebuild: {} events in {:.1}s ({:.0} events/s)",
            r.events, r.seconds, r.events_per_second
        );
    }
    store.close().await.unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let events: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("runs=").and_then(|n| n.parse().ok()))
        .unwrap_or(5);
    let with_replay = args.iter().any(|a| a == "replay");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| format!("{}/../../target", env!("CARGO_MANIFEST_DIR")));
        let url = format!("sqlite://{dir}/proj-bench-{events}.db");
        ensure_log(&url, events).await;

        let keys = tempfile::tempdir().unwrap();
        let mut config = Config::new(url.clone(), MasterKeySource::Key(master()));
        config.audit.key = Some(caretrail_audit::KeySource::File(
            keys.path().join("audit.key"),
        ));
        config.catch_up = true;
        config.tree_follower = false;
        config.checkpoint_every = None;
        config.integrations = None;
        let application = Application::build(config).await.unwrap();
        let token = application
            .tokens()
            .create(Role::Admin, None, "bench")
            .await
            .unwrap()
            .1;
        let head = application.app().store().head().await.unwrap().position;
        let base = format!("http://{}", application.local_addr().unwrap());
        let _running = application.spawn();
        let client = reqwest::Client::new();
        println!(
            "log: {head} events ({url}); load average before: {}",
            load()
        );

        let mut cases = vec![
            (
                "yearly xlsx",
                "/api/v1/reports/yearly?period=2025&format=xlsx".to_owned(),
            ),
            (
                "yearly csv",
                "/api/v1/reports/yearly?period=2025&format=csv".to_owned(),
            ),
            (
                "yearly json",
                "/api/v1/reports/yearly?period=2025&format=json".to_owned(),
            ),
            (
                "monthly xlsx",
                "/api/v1/reports/monthly?period=2025-06&format=xlsx".to_owned(),
            ),
        ];
        if with_replay {
            cases.push((
                "yearly xlsx, replayed to the head",
                format!("/api/v1/reports/yearly?period=2025&format=xlsx&as_of_position={head}"),
            ));
        }
        for (name, path) in cases {
            let n = if name.contains("replayed") { 1 } else { runs };
            let mut times = Vec::with_capacity(n);
            let mut size = 0;
            // One untimed request first (page cache, prepared statements), then the runs.
            for i in 0..=n {
                let started = Instant::now();
                let res = client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), reqwest::StatusCode::OK, "{path}");
                let body = res.bytes().await.unwrap();
                let took = started.elapsed().as_secs_f64();
                size = body.len();
                if i > 0 || n == 1 {
                    times.push(took);
                }
            }
            println!(
                "{name}: {size} bytes; p50 {:.3}s, max {:.3}s over {} runs ({})",
                pct(times.clone(), 0.5),
                pct(times.clone(), 1.0),
                times.len(),
                times
                    .iter()
                    .map(|t| format!("{t:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        println!("load average after: {}", load());
    });
}
