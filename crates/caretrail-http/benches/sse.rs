//! SSE fan-out benchmark: N concurrent subscribers (default 1,000) on one `caretrail serve`
//! process, appends over HTTP at a steady rate, and for every event the time from "command
//! acknowledged" to "subscriber has it", p50/p99/max over all deliveries; plus the server's
//! resident memory per subscriber (RSS with subscribers minus RSS before, divided by N).
//!
//! ```sh
//! cargo build --release && cargo bench -p caretrail-http --bench sse -- [SUBSCRIBERS] [EVENTS]
//! ```
//!
//! The server is the release binary (`target/release/caretrail`, or `CARETRAIL_BIN`) in its own
//! process on loopback; this program is the clients.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let subscribers: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let events: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let bin = std::env::var("CARETRAIL_BIN").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/release/caretrail"
        )
        .to_owned()
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("sse.db").display());
    let token = {
        let out = std::process::Command::new(&bin)
            .current_dir(dir.path())
            .args([
                "token", "create", "--db", &db, "--role", "admin", "--name", "bench",
            ])
            .output()
            .expect("run caretrail (build it with cargo build --release)");
        String::from_utf8(out.stdout)
            .expect("token")
            .trim()
            .to_owned()
    };
    let port = 18_000 + (std::process::id() % 1000) as u16;
    let mut server = tokio::process::Command::new(&bin)
        .current_dir(dir.path())
        .args([
            "serve",
            "--db",
            &db,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--checkpoint-every",
            "1h",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start server");
    let pid = server.id().expect("server pid");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid);

    // Deliveries: (position → times received), filled by every subscriber.
    let received: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(subscribers);
    for _ in 0..subscribers {
        let (client, base, token, received, ready) = (
            client.clone(),
            base.clone(),
            token.clone(),
            received.clone(),
            ready_tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = client
                .get(format!("{base}/api/v1/events/subscribe?after=0"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("subscribe");
            assert!(res.status().is_success(), "subscribe: {}", res.status());
            let _ = ready.send(()).await;
            let mut body = res.bytes_stream();
            let mut buf = String::new();
            let mut seen = 0;
            while seen < events {
                let Some(Ok(chunk)) = body.next().await else {
                    break;
                };
                let now = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(i) = buf.find('\n') {
                    let line: String = buf.drain(..=i).collect();
                    if let Some(id) = line.strip_prefix("id:")
                        && let Ok(p) = id.trim().parse::<u64>()
                    {
                        received.lock().unwrap().push((p, now));
                        seen += 1;
                    }
                }
            }
        }));
    }
    for _ in 0..subscribers {
        ready_rx.recv().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_with = rss_kib(pid);

    // Appends: one command every 10 ms, each acknowledged time recorded by position.
    let mut acked: HashMap<u64, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for i in 0..events {
        tick.tick().await;
        let res = client
            .post(format!("{base}/api/v1/commands/RegisterBody"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "body_id": uuid::Uuid::now_v7(), "kind": "volunteer_team", "name": format!("订阅压测{i}")
            }))
            .send()
            .await
            .expect("append");
        let at = Instant::now();
        let body: serde_json::Value = res.json().await.expect("accepted");
        acked.insert(
            body["events"][0]["position"].as_u64().expect("position"),
            at,
        );
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let mut latencies: Vec<Duration> = received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(p, at)| acked.get(p).map(|a| at.saturating_duration_since(*a)))
        .collect();
    latencies.sort();
    let expected = subscribers * events;
    println!("## SSE fan-out\n");
    println!("| measurement | result |\n|---|---|");
    println!("| subscribers | {subscribers} |");
    println!("| events appended over HTTP (one every 10 ms) | {events} |");
    println!(
        "| deliveries received / expected | {} / {expected} |",
        latencies.len()
    );
    println!(
        "| acknowledged → delivered, p50 / p99 / max | {:.2} ms / {:.2} ms / {:.2} ms |",
        pct(&latencies, 0.5).as_secs_f64() * 1e3,
        pct(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "| server RSS before / with subscribers | {} MiB / {} MiB |",
        rss_before / 1024,
        rss_with / 1024
    );
    println!(
        "| server memory per subscriber | {:.1} KiB |",
        (rss_with.saturating_sub(rss_before)) as f64 / subscribers as f64
    );
    let _ = server.kill().await;
}
