//! Webhook delivery benchmark: the integrations' engine delivering to real receivers, against
//! the issue's targets.
//!
//! - **throughput**: one webhook subscription with `start_after: 0` over a log pre-filled with
//!   at least `events=` events (default 20,000; `RecordContact` commands on the demo's eight
//!   pairings, eight appenders at a time, each command two events); sustained events/s from
//!   the subscription's creation until the receiver has every event of the log, in order, once.
//!   Target ≥ 1,000 events/s.
//! - **latency**: `subs=` webhook subscriptions (default 100), one receiver each, all taking
//!   the `body` category, while a task appends `rate=` events/s (default 100) for `secs=`
//!   seconds (default 30), one event per durable append (`RegisterBody` through the command
//!   handler); for every delivery the receiver's arrival time minus the event's `recorded_at`
//!   (the CloudEvent's `time`, microseconds), p50/p95/p99/max over all deliveries. Target
//!   p99 ≤ 100 ms.
//!
//! ```sh
//! cargo bench -p caretrail-http --bench webhooks                      # both, three runs each
//! cargo bench -p caretrail-http --bench webhooks -- latency runs=1 subs=20 secs=10
//! # tick_ms=N sets the engine's supervisor tick (default 100 ms), to see what it costs
//! ```
//!
//! Each row also gives this process's CPU time per delivery (user + system of every thread:
//! the service, the engine and the receivers, from `/proc/self/stat`) and its CPU over wall
//! time in the measured window (200% is both cores), and ends with the machine's 1-minute
//! load average when the run ended (from
//! `/proc/loadavg`): on a 2-core machine anything above 2 means other work took cores from
//! the run.
//!
//! Everything is real and in this one process: the service as the tests build it
//! (`caretrail_http::testing::demo_service_with`: the HTTP API, the command handler, the
//! projector, the subscriptions registry and the delivery engine) on a SQLite file in the temp
//! directory (WAL, synchronous=FULL, on the machine's disk), the engine's webhook client over
//! loopback TCP, and `caretrail_integrations::testing::Receiver`s that verify every signature
//! with the Standard Webhooks library and parse every body with the CloudEvents SDK. Each run
//! starts a fresh database and service.
//!
//! The receivers record each request with its arrival time and answer 204 at once; the
//! signatures and bodies are checked after the measured window
//! (`Receiver::start_recording`, `verify_recorded`). Real receivers run on other machines:
//! checking 10,000 signatures a second on the two cores being measured would measure the
//! receivers, not the engine (it was a quarter of the CPU before this was changed).

// A bench that unwraps fails with the error, which is what it should do; the lint is for the
// service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use caretrail_app::{CommandMeta, MasterKey};
use caretrail_domain::command::{RecordContact, RegisterBody};
use caretrail_domain::vocab::{BodyKind, ContactChannel};
use caretrail_domain::{Command, Personal};
use caretrail_http::Role;
use caretrail_http::testing::{DemoOptions, DemoService, demo_service_with, test_engine};
use caretrail_integrations::testing::Receiver;
use chrono::{DateTime, Utc};
use cloudevents::AttributesReader as _;
use serde_json::{Value, json};
use uuid::Uuid;

/// The receivers start with this secret and verify with the subscription's once it exists.
const PLACEHOLDER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Args {
    scenarios: Vec<String>,
    runs: usize,
    events: u64,
    subs: usize,
    rate: u64,
    secs: u64,
    tick_ms: u64,
}

fn args() -> Args {
    let mut a = Args {
        scenarios: Vec::new(),
        runs: 3,
        events: 20_000,
        subs: 100,
        rate: 100,
        secs: 30,
        tick_ms: 100,
    };
    // `cargo bench` passes `--bench`; options are `key=value`, scenarios bare words.
    for arg in std::env::args().skip(1).filter(|a| !a.starts_with("--")) {
        match arg.split_once('=') {
            Some(("runs", v)) => a.runs = v.parse().expect("runs=N"),
            Some(("events", v)) => a.events = v.parse().expect("events=N"),
            Some(("subs", v)) => a.subs = v.parse().expect("subs=N"),
            Some(("rate", v)) => a.rate = v.parse().expect("rate=N"),
            Some(("secs", v)) => a.secs = v.parse().expect("secs=N"),
            Some(("tick_ms", v)) => a.tick_ms = v.parse().expect("tick_ms=N"),
            Some((k, _)) => panic!("unknown option {k}"),
            None => match arg.as_str() {
                "throughput" | "latency" => a.scenarios.push(arg),
                other => panic!("unknown scenario {other} (throughput, latency)"),
            },
        }
    }
    if a.scenarios.is_empty() {
        a.scenarios = vec!["throughput".into(), "latency".into()];
    }
    a
}

fn master() -> MasterKey {
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap()
}

/// The engine as the issue's targets are measured: the test engine (private addresses allowed,
/// for the loopback receivers) with a sane retry schedule and the default intervals.
fn engine(tick: Duration) -> caretrail_integrations::EngineConfig {
    let mut engine = test_engine();
    engine.webhook.allow_private = true;
    engine.webhook.timeout = Duration::from_secs(5);
    engine.retry = [1, 5, 30, 300]
        .into_iter()
        .map(Duration::from_secs)
        .collect();
    engine.tick = tick;
    engine.flush_every = Duration::from_millis(200);
    engine.lease_ttl = Duration::from_secs(10);
    engine
}

struct Bench {
    service: DemoService,
    admin: String,
    client: reqwest::Client,
    _harness: caretrail_store::testing::Harness,
}

async fn start(tick: Duration) -> Bench {
    let harness = caretrail_store::testing::sqlite().await.unwrap();
    let service = demo_service_with(
        &harness,
        master(),
        DemoOptions {
            integrations: Some(engine(tick)),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let admin = service
        .tokens
        .create(Role::Admin, None, "bench")
        .await
        .unwrap()
        .1;
    Bench {
        service,
        admin,
        client: reqwest::Client::new(),
        _harness: harness,
    }
}

impl Bench {
    /// Creates a webhook subscription; answers its id and secret.
    async fn subscribe(
        &self,
        name: &str,
        url: &str,
        filter: Value,
        start_after: Option<u64>,
    ) -> (String, String) {
        let mut body = json!({ "name": name, "filter": filter,
            "delivery": { "kind": "webhook", "url": url } });
        if let Some(p) = start_after {
            body["start_after"] = json!(p);
        }
        let res = self
            .client
            .post(format!("{}/api/v1/subscriptions", self.service.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::CREATED);
        let created: Value = res.json().await.unwrap();
        (
            created["id"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn head(&self) -> u64 {
        self.service.app.store().head().await.unwrap().position
    }

    async fn execute(&self, command: &Command) -> caretrail_store::AppendResult {
        self.service
            .app
            .execute(command, &CommandMeta::new(Uuid::nil(), "admin"))
            .await
            .unwrap()
    }
}

/// Waits until `receiver` has answered at least `n` requests (cheap: a counter, where
/// `deliveries()` clones every delivery so far).
async fn wait_requests(receiver: &Receiver, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while receiver.requests() < n {
        assert!(
            Instant::now() < deadline,
            "{n} requests expected within {timeout:?}, {} arrived",
            receiver.requests()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn ms(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().unwrap() as f64 / 1e3
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Positions of `deliveries` are exactly `first..=last`, each once, in order.
fn check_in_order(
    positions: impl Iterator<Item = u64>,
    first: u64,
    last: u64,
) -> Result<(), String> {
    let mut expect = first;
    for p in positions {
        if p != expect {
            return Err(format!("expected position {expect}, got {p}"));
        }
        expect += 1;
    }
    if expect != last + 1 {
        return Err(format!("stopped at {}, expected up to {last}", expect - 1));
    }
    Ok(())
}

struct ThroughputRun {
    prefilled: u64,
    mean_bytes: f64,
    delivered: usize,
    total: f64,
    first_after: f64,
    steady: f64,
    secs: f64,
    /// Process CPU (service, engine and receiver) per delivery, µs, and CPU/wall.
    cpu_us: f64,
    busy: f64,
}

async fn throughput(events: u64, tick: Duration) -> ThroughputRun {
    let b = Arc::new(start(tick).await);
    let before = b.head().await;
    // Eight appenders, one per demo pairing (a contact also appends to its pairing's stream,
    // so commands on one pairing would conflict); each command appends two events.
    let per_task = events.div_ceil(16);
    let mut tasks = Vec::new();
    for n in 1..=8u128 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let command = Command::RecordContact(RecordContact {
                    contact_id: Uuid::now_v7().into(),
                    pairing_id: caretrail_domain::demo::pairing(n),
                    on: chrono::NaiveDate::from_ymd_opt(2021, 10, 30).unwrap(),
                    channel: ContactChannel::Phone,
                    note: Some(Personal::Plain(format!(
                        "第{i}次电话回访：询问近况、身体情况与家庭困难，记录需要协调的事项，约定下次联系时间。老人说最近腿脚不便，社区医生每周上门一次，子女在外地打工，春节前会回来；已联系街道协调助餐服务，并提醒注意天气变化、按时服药。"
                    ))),
                });
                b.execute(&command).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let prefilled = b.head().await - before;
    let sample = b
        .service
        .app
        .store()
        .read_log(&caretrail_store::LogQuery {
            after: before,
            up_to: None,
            filter: Default::default(),
            limit: 1000,
        })
        .await
        .unwrap();
    let mean_bytes =
        sample.iter().map(|e| e.data.len()).sum::<usize>() as f64 / sample.len() as f64;
    // Let the projector finish folding the prefill, so it does not share the cores with the
    // delivery being measured.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let receiver = Receiver::start_recording(PLACEHOLDER_SECRET).await;
    let t0 = Utc::now();
    let (cpu0, wall0) = (cpu(), Instant::now());
    let (_, secret) = b
        .subscribe("吞吐", &receiver.url(), json!({}), Some(0))
        .await;
    receiver.set_secrets(&[&secret]);
    // The log holds the demo, the prefill and the subscription's own creation; nothing else
    // is appended until the receiver has it all. Subscriptions' own events are never
    // delivered (they hold other integrations' targets), so the receiver gets every other one.
    let last = b.head().await;
    let configuration: Vec<u64> = b
        .service
        .app
        .store()
        .read_log(&caretrail_store::LogQuery {
            after: 0,
            up_to: Some(last),
            filter: caretrail_store::EventFilter {
                event_types: Vec::new(),
                categories: vec!["subscription".to_owned()],
            },
            limit: 1000,
        })
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    let expected: Vec<u64> = (1..=last).filter(|p| !configuration.contains(p)).collect();
    wait_requests(&receiver, expected.len(), Duration::from_secs(600)).await;
    let (cpu1, wall1) = (cpu(), Instant::now());
    let deliveries = receiver.verify_recorded();
    assert_eq!(receiver.bad_signatures(), 0);
    assert_eq!(receiver.bad_bodies(), 0);
    let positions: Vec<u64> = deliveries.iter().map(|d| d.position).collect();
    assert!(
        positions == expected,
        "every event but the subscriptions' own, once, in order"
    );
    let first_at = deliveries[0].received_at;
    let last_at = deliveries[deliveries.len() - 1].received_at;
    let total = ms(last_at - t0) / 1e3;
    let steady = ms(last_at - first_at) / 1e3;
    ThroughputRun {
        prefilled,
        mean_bytes,
        delivered: deliveries.len(),
        total,
        first_after: ms(first_at - t0),
        steady: (deliveries.len() - 1) as f64 / steady,
        secs: deliveries.len() as f64 / total,
        cpu_us: (cpu1 - cpu0).as_secs_f64() * 1e6 / deliveries.len() as f64,
        busy: (cpu1 - cpu0).as_secs_f64() / (wall1 - wall0).as_secs_f64(),
    }
}

struct LatencyRun {
    subs: usize,
    appended: usize,
    deliveries: usize,
    append_rate: f64,
    /// recorded_at → received, ms, sorted.
    lat: Vec<f64>,
    /// recorded_at → append acknowledged to the appender, ms, sorted.
    commit: Vec<f64>,
    /// Per event: the first receiver's recorded_at → received, ms, sorted.
    first: Vec<f64>,
    /// How long each append (the command handler's `execute`) took, ms, sorted.
    calls: Vec<f64>,
    cpu_us: f64,
    busy: f64,
}

async fn latency(subs: usize, rate: u64, secs: u64, tick: Duration) -> LatencyRun {
    let b = Arc::new(start(tick).await);
    let mut receivers = Vec::with_capacity(subs);
    for i in 0..subs {
        let r = Receiver::start_recording(PLACEHOLDER_SECRET).await;
        let (_, secret) = b
            .subscribe(
                &format!("延迟{i}"),
                &r.url(),
                json!({ "categories": ["body"] }),
                None,
            )
            .await;
        r.set_secrets(&[&secret]);
        receivers.push(r);
    }
    let register = |i: u64| {
        Command::RegisterBody(RegisterBody {
            body_id: Uuid::now_v7().into(),
            kind: BodyKind::VolunteerTeam,
            name: format!("延迟压测志愿服务队{i}"),
            region_code: None,
        })
    };
    // One event every receiver must get before measuring: every worker is running and holds
    // a connection to its receiver.
    let warm = b.execute(&register(0)).await;
    let warm_position = warm.events.last().unwrap().position;
    for r in &receivers {
        wait_requests(r, 1, Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let total = rate * secs;
    let (cpu0, wall0) = (cpu(), Instant::now());
    let appender = {
        let b = b.clone();
        tokio::spawn(async move {
            let mut acked: Vec<(u64, DateTime<Utc>)> = Vec::with_capacity(total as usize);
            let mut calls = Vec::with_capacity(total as usize);
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            let started = Instant::now();
            for i in 1..=total {
                tick.tick().await;
                let call = Instant::now();
                let result = b.execute(&register(i)).await;
                calls.push(call.elapsed().as_secs_f64() * 1e3);
                acked.push((result.events.last().unwrap().position, Utc::now()));
            }
            (acked, calls, started.elapsed())
        })
    };
    let (acked, mut calls, took) = appender.await.unwrap();
    let append_rate = total as f64 / took.as_secs_f64();
    for r in &receivers {
        wait_requests(r, 1 + total as usize, Duration::from_secs(120)).await;
    }
    let (cpu1, wall1) = (cpu(), Instant::now());
    let first_position = warm_position + 1;
    let last_position = acked.last().unwrap().0;
    let acked: std::collections::HashMap<u64, DateTime<Utc>> = acked.into_iter().collect();
    let mut lat = Vec::new();
    let mut recorded: std::collections::HashMap<u64, DateTime<Utc>> = Default::default();
    let mut first: std::collections::HashMap<u64, f64> = Default::default();
    let mut deliveries = 0;
    for r in &receivers {
        let ds = r.verify_recorded();
        assert_eq!(r.bad_signatures(), 0);
        assert_eq!(r.bad_bodies(), 0);
        let ds: Vec<_> = ds
            .into_iter()
            .filter(|d| d.position > warm_position)
            .collect();
        // Only this run's `body` events were appended after the warm-up, one per append.
        check_in_order(ds.iter().map(|d| d.position), first_position, last_position).unwrap();
        for d in ds {
            let time = *d.cloudevent.time().unwrap();
            recorded.insert(d.position, time);
            let l = ms(d.received_at - time);
            lat.push(l);
            let f = first.entry(d.position).or_insert(l);
            *f = f.min(l);
            deliveries += 1;
        }
    }
    let mut commit: Vec<f64> = recorded.iter().map(|(p, t)| ms(acked[p] - *t)).collect();
    let mut first: Vec<f64> = first.into_values().collect();
    for v in [&mut lat, &mut commit, &mut first, &mut calls] {
        v.sort_by(f64::total_cmp);
    }
    LatencyRun {
        subs,
        appended: total as usize,
        deliveries,
        append_rate,
        lat,
        commit,
        first,
        calls,
        cpu_us: (cpu1 - cpu0).as_secs_f64() * 1e6 / deliveries as f64,
        busy: (cpu1 - cpu0).as_secs_f64() / (wall1 - wall0).as_secs_f64(),
    }
}

/// This process's CPU time so far (user + system, all threads), from `/proc/self/stat`.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name's closing parenthesis; utime and stime are the 12th and
    // 13th of them, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Duration::from_millis((f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10)
}

/// The machine's 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

fn quartet(v: &[f64]) -> String {
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1}",
        pct(v, 0.5),
        pct(v, 0.95),
        pct(v, 0.99),
        v.last().copied().unwrap_or_default()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    for scenario in &a.scenarios {
        match scenario.as_str() {
            "throughput" => {
                println!(
                    "\n## Webhook throughput: one subscription from position 0 (target ≥ 1,000 events/s)\n"
                );
                println!(
                    "| run | events in the log (prefill, mean payload) | delivered, in order, once | creation → first delivery | creation → last delivery | events/s, creation → last | events/s, first → last | process CPU per delivery (CPU/wall) | load |"
                );
                println!("|---|---|---|---|---|---|---|---|---|");
                for run in 1..=a.runs {
                    let r = throughput(a.events, Duration::from_millis(a.tick_ms)).await;
                    println!(
                        "| {run} | {} ({} prefilled, {:.0} B) | {} | {:.0} ms | {:.2} s | **{:.0}** | {:.0} | {:.0} µs ({:.0}%) | {} |",
                        r.delivered,
                        r.prefilled,
                        r.mean_bytes,
                        r.delivered,
                        r.first_after,
                        r.total,
                        r.secs,
                        r.steady,
                        r.cpu_us,
                        r.busy * 100.0,
                        load()
                    );
                }
            }
            "latency" => {
                println!(
                    "\n## Webhook latency: {} subscriptions (one receiver each), {} appends/s for {} s (target p99 ≤ 100 ms)\n",
                    a.subs, a.rate, a.secs
                );
                println!(
                    "| run | events appended (rate) | deliveries / expected | recorded → received, p50 / p95 / p99 / max (ms) | first receiver of each event, p50 / p95 / p99 / max | recorded → append acknowledged, p50 / p95 / p99 / max | append call (execute), p50 / p95 / p99 / max | process CPU per delivery (CPU/wall) | load |"
                );
                println!("|---|---|---|---|---|---|---|---|---|");
                for run in 1..=a.runs {
                    let r = latency(a.subs, a.rate, a.secs, Duration::from_millis(a.tick_ms)).await;
                    println!(
                        "| {run} | {} ({:.1}/s) | {} / {} | **{}** | {} | {} | {} | {:.0} µs ({:.0}%) | {} |",
                        r.appended,
                        r.append_rate,
                        r.deliveries,
                        r.subs * r.appended,
                        quartet(&r.lat),
                        quartet(&r.first),
                        quartet(&r.commit),
                        quartet(&r.calls),
                        r.cpu_us,
                        r.busy * 100.0,
                        load()
                    );
                }
            }
            _ => unreachable!(),
        }
    }
}
