//! Event store benchmark: durable append throughput at 1, 16 and 64 concurrent appenders, the
//! physical baseline of the same disk and driver, forward read rate, append latency as a stream
//! grows, and live subscription latency. Prints a Markdown report for `BENCHMARKS.md`.
//!
//! ```sh
//! cargo bench -p caretrail-store --bench store                      # SQLite
//! CARETRAIL_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p caretrail-store --bench store -- --backend postgres
//! ```
//!
//! Options: `--backend sqlite|postgres|both`, `--scale F` (multiplies every count; 1.0 default),
//! `--max-wait-us N` (group commit wait, default 0), `--phases a,b` (any of baseline, appends,
//! growth, read, live; default all), `--db-dir D` (SQLite: keep the database in D and reuse it).

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caretrail_store::{
    AppendRequest, EventFilter, EventStore, ExpectedVersion, LogQuery, Metadata, NewEvent,
    StoreOptions, StreamId, connect, subscribe,
};
use sqlx::{ConnectOptions, Connection};
use uuid::Uuid;

/// A payload of about 500 bytes, shaped like a visit event with sealed personal fields.
fn payload(i: u64) -> String {
    let sealed = "q".repeat(120);
    let v = serde_json::json!({
        "visit_id": Uuid::from_u128(i as u128),
        "pairing_id": Uuid::from_u128(7),
        "visited_on": "2021-10-13",
        "region_code": "330825",
        "place": {"subject": Uuid::from_u128(9), "nonce": "n".repeat(32), "ciphertext": sealed},
        "gifts": [{"kind": "cash", "amount_fen": 100000}, {"kind": "flowers", "amount_fen": 0}],
        "findings": {"subject": Uuid::from_u128(9), "nonce": "n".repeat(32), "ciphertext": "f".repeat(80)},
        "medical_advice_given": false,
        "seq": i,
    });
    serde_json::to_string(&v).unwrap()
}

/// Payloads made before timing starts, so the bench measures the store, not `json!`.
static PAYLOADS: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| (0..1024).map(payload).collect());

fn new_event(i: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "VisitRecorded".into(),
        schema_version: 2,
        data: PAYLOADS[(i % 1024) as usize].clone(),
        business_date: chrono::NaiveDate::from_ymd_opt(2021, 10, 13),
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

struct Target {
    backend: &'static str,
    url: String,
    cleanup: Option<(String, String)>,
}

async fn sqlite_target(dir: &std::path::Path, name: &str) -> Target {
    Target {
        backend: "sqlite",
        url: format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
        cleanup: None,
    }
}

async fn pg_target(admin: &str, name: &str) -> Target {
    let db = format!("caretrail_bench_{name}_{}", Uuid::new_v4().simple());
    let mut c = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect admin");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .execute(&mut c)
        .await
        .expect("create bench db");
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    Target {
        backend: "postgres",
        url: format!("{base}/{db}"),
        cleanup: Some((admin.to_owned(), db)),
    }
}

async fn drop_target(t: Target) {
    if let Some((admin, db)) = t.cleanup {
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect admin");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
        )))
        .execute(&mut c)
        .await;
    }
}

/// Durable single-event commands from `tasks` appenders, each on its own stream with an exact
/// expected version and a command id (what the command handler does).
async fn appends(store: &Arc<dyn EventStore>, tasks: usize, per_task: u64) -> (f64, Vec<Duration>) {
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("visit-{}", Uuid::new_v4().simple())).unwrap();
            let mut lat = Vec::with_capacity(per_task as usize);
            for v in 0..per_task {
                let req = AppendRequest::single(
                    stream.clone(),
                    ExpectedVersion::Exact(v),
                    vec![new_event(t as u64 * 1_000_000 + v)],
                    Metadata::actor("bench", "admin").command(Uuid::now_v7()),
                );
                let t0 = Instant::now();
                store.append(req).await.expect("append");
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    (lat.len() as f64 / secs, lat)
}

/// The physical limits in the same run: one fsync'd single-row commit, and the same event rows
/// inserted by sqlx in one transaction without our triggers, planning or hashing.
async fn baseline(target: &Target, rows: u64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let create = "CREATE TABLE raw_events (position BIGINT PRIMARY KEY, stream_id TEXT NOT NULL, \
                  stream_version BIGINT NOT NULL, event_id BLOB NOT NULL, event_type TEXT NOT NULL, \
                  data TEXT NOT NULL, recorded_at BIGINT NOT NULL, leaf_hash BLOB NOT NULL)";
    let insert1 = "INSERT INTO raw_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    if target.backend == "sqlite" {
        let path = target.url.trim_start_matches("sqlite://").to_owned() + ".raw";
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let mut c = opts.connect().await.unwrap();
        sqlx::query(create).execute(&mut c).await.unwrap();
        // One durable commit of one row, repeated.
        let n = 300;
        let t0 = Instant::now();
        for i in 0..n {
            sqlx::query(insert1)
                .bind(i as i64 + 1)
                .bind("visit-x")
                .bind(i as i64)
                .bind(Uuid::now_v7())
                .bind("VisitRecorded")
                .bind(payload(i))
                .bind(0i64)
                .bind(vec![0u8; 32])
                .execute(&mut c)
                .await
                .unwrap();
        }
        let per = t0.elapsed() / n as u32;
        out.push((
            "one durable single-row commit (sqlx, WAL, synchronous=FULL)".into(),
            format!("{} ({:.0} commits/s)", ms(per), 1.0 / per.as_secs_f64()),
        ));
        sqlx::query("DELETE FROM raw_events")
            .execute(&mut c)
            .await
            .unwrap();
        // Same rows, one transaction, one row per statement.
        let mut tx = c.begin().await.unwrap();
        let t0 = Instant::now();
        for i in 0..rows {
            sqlx::query(insert1)
                .bind(i as i64 + 1)
                .bind("visit-x")
                .bind(i as i64)
                .bind(Uuid::now_v7())
                .bind("VisitRecorded")
                .bind(payload(i))
                .bind(0i64)
                .bind(vec![0u8; 32])
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        out.push((
            format!("{rows} raw rows, one transaction, 1 row/statement (sqlx)"),
            format!("{:.0} rows/s", rows as f64 / t0.elapsed().as_secs_f64()),
        ));
        sqlx::query("DELETE FROM raw_events")
            .execute(&mut c)
            .await
            .unwrap();
        // Same rows, one transaction, 128 rows/statement.
        let tuple = "(?, ?, ?, ?, ?, ?, ?, ?)";
        let sql: &'static str = Box::leak(
            format!(
                "INSERT INTO raw_events VALUES {}",
                vec![tuple; 128].join(", ")
            )
            .into_boxed_str(),
        );
        let mut tx = c.begin().await.unwrap();
        let t0 = Instant::now();
        let mut i = 0u64;
        while i + 128 <= rows {
            let mut q = sqlx::query(sql);
            for k in i..i + 128 {
                q = q
                    .bind(k as i64 + 1)
                    .bind("visit-x")
                    .bind(k as i64)
                    .bind(Uuid::now_v7())
                    .bind("VisitRecorded")
                    .bind(payload(k))
                    .bind(0i64)
                    .bind(vec![0u8; 32]);
            }
            q.execute(&mut *tx).await.unwrap();
            i += 128;
        }
        tx.commit().await.unwrap();
        out.push((
            format!("{i} raw rows, one transaction, 128 rows/statement (sqlx)"),
            format!("{:.0} rows/s", i as f64 / t0.elapsed().as_secs_f64()),
        ));
        let _ = std::fs::remove_file(&path);
    } else {
        let mut c = sqlx::PgConnection::connect(&target.url).await.unwrap();
        let create = create.replace("BLOB", "BYTEA");
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut c)
            .await
            .unwrap();
        let insert1 = "INSERT INTO raw_events VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let n = 300;
        let t0 = Instant::now();
        for i in 0..n {
            sqlx::query(insert1)
                .bind(i as i64 + 1)
                .bind("visit-x")
                .bind(i as i64)
                .bind(Uuid::now_v7().as_bytes().to_vec())
                .bind("VisitRecorded")
                .bind(payload(i))
                .bind(0i64)
                .bind(vec![0u8; 32])
                .execute(&mut c)
                .await
                .unwrap();
        }
        let per = t0.elapsed() / n as u32;
        out.push((
            "one durable single-row commit (sqlx, synchronous_commit=on)".into(),
            format!("{} ({:.0} commits/s)", ms(per), 1.0 / per.as_secs_f64()),
        ));
        sqlx::query("TRUNCATE raw_events")
            .execute(&mut c)
            .await
            .unwrap();
        let mut tx = c.begin().await.unwrap();
        let t0 = Instant::now();
        for i in 0..rows {
            sqlx::query(insert1)
                .bind(i as i64 + 1)
                .bind("visit-x")
                .bind(i as i64)
                .bind(Uuid::now_v7().as_bytes().to_vec())
                .bind("VisitRecorded")
                .bind(payload(i))
                .bind(0i64)
                .bind(vec![0u8; 32])
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        out.push((
            format!("{rows} raw rows, one transaction, 1 row/statement (sqlx)"),
            format!("{:.0} rows/s", rows as f64 / t0.elapsed().as_secs_f64()),
        ));
        sqlx::query("TRUNCATE raw_events")
            .execute(&mut c)
            .await
            .unwrap();
        let mut tx = c.begin().await.unwrap();
        let t0 = Instant::now();
        let mut i = 0u64;
        while i < rows {
            let k: Vec<u64> = (i..(i + 128).min(rows)).collect();
            sqlx::query(
                "INSERT INTO raw_events SELECT * FROM UNNEST($1::bigint[], $2::text[], \
                 $3::bigint[], $4::bytea[], $5::text[], $6::text[], $7::bigint[], $8::bytea[])",
            )
            .bind(k.iter().map(|k| *k as i64 + 1).collect::<Vec<_>>())
            .bind(k.iter().map(|_| "visit-x").collect::<Vec<_>>())
            .bind(k.iter().map(|k| *k as i64).collect::<Vec<_>>())
            .bind(
                k.iter()
                    .map(|_| Uuid::now_v7().as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
            .bind(k.iter().map(|_| "VisitRecorded").collect::<Vec<_>>())
            .bind(k.iter().map(|k| payload(*k)).collect::<Vec<_>>())
            .bind(k.iter().map(|_| 0i64).collect::<Vec<_>>())
            .bind(k.iter().map(|_| vec![0u8; 32]).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .unwrap();
            i += k.len() as u64;
        }
        tx.commit().await.unwrap();
        out.push((
            format!("{rows} raw rows, one transaction, 128 rows/statement via UNNEST (sqlx)"),
            format!("{:.0} rows/s", rows as f64 / t0.elapsed().as_secs_f64()),
        ));
    }
    out
}

async fn run(target: &Target, scale: f64, max_wait: Duration, phases: &[String]) -> String {
    let on = |p: &str| phases.is_empty() || phases.iter().any(|x| x == p);
    let n = |x: f64| ((x * scale).round() as u64).max(1);
    let mut report = format!("\n### {}\n\n", target.backend);
    std::sync::LazyLock::force(&PAYLOADS);
    let mut options = StoreOptions::default();
    options.group_commit.max_wait = max_wait;
    let store = connect(&target.url, options).await.expect("open store");

    if on("baseline") {
        report.push_str("| measurement | result |\n|---|---|\n");
        for (what, result) in baseline(target, n(20_000.0)).await {
            report.push_str(&format!("| {what} | {result} |\n"));
        }
    }
    if on("appends") {
        let durable_commit = {
            // Re-measure in the shape of our own writer: one single-event append at a time.
            let (rate, _) = appends(&store, 1, n(1_000.0)).await;
            rate
        };

        report.push_str("\n| appenders | appends/s (1 event each, durable) | p50 | p99 | mean appends per commit | ratio to one durable commit |\n|---|---|---|---|---|---|\n");
        for (tasks, per) in [(1usize, n(2_000.0)), (16, n(1_500.0)), (64, n(800.0))] {
            let m = store.notifier();
            let m = m.metrics();
            let (c0, a0) = (m.commits.load(Relaxed), m.appends.load(Relaxed));
            let (rate, lat) = appends(&store, tasks, per).await;
            let batch = (m.appends.load(Relaxed) - a0) as f64
                / (m.commits.load(Relaxed) - c0).max(1) as f64;
            report.push_str(&format!(
                "| {tasks} | {rate:.0} | {} | {} | {batch:.1} | {:.1}× |\n",
                ms(pct(&lat, 0.5)),
                ms(pct(&lat, 0.99)),
                rate / durable_commit
            ));
        }
    }
    if on("growth") {
        // Append latency as one stream grows.
        let stream = StreamId::new("pairing-growing").unwrap();
        let total = n(5_000.0);
        let mut lat = Vec::new();
        for v in 0..total {
            let req = AppendRequest::single(
                stream.clone(),
                ExpectedVersion::Exact(v),
                vec![new_event(v)],
                Metadata::actor("bench", "admin").command(Uuid::now_v7()),
            );
            let t0 = Instant::now();
            store.append(req).await.unwrap();
            lat.push(t0.elapsed());
        }
        let window = (total / 10).max(1) as usize;
        let avg = |s: &[Duration]| s.iter().sum::<Duration>() / s.len().max(1) as u32;
        report.push_str(&format!(
        "\nAppend latency on one stream as it grows to {total} events: mean of the first {window} {}, of the last {window} {}.\n",
        ms(avg(&lat[..window])),
        ms(avg(&lat[lat.len() - window..]))
    ));
    }
    if on("read") {
        // Grow the log for the read measurement with large concurrent batches.
        let head = store.head().await.unwrap().position;
        let want = n(200_000.0);
        if head < want {
            let mut handles = Vec::new();
            let per = (want - head) / 64 + 1;
            for t in 0..64u64 {
                let store = store.clone();
                handles.push(tokio::spawn(async move {
                    let stream = StreamId::new(format!("fill-{t}")).unwrap();
                    let mut i = 0;
                    while i < per {
                        let k = 50.min(per - i);
                        let events = (0..k).map(|j| new_event(i + j)).collect();
                        store
                            .append(AppendRequest::single(
                                stream.clone(),
                                ExpectedVersion::Any,
                                events,
                                Metadata::actor("bench", "admin"),
                            ))
                            .await
                            .unwrap();
                        i += k;
                    }
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
        }
        let head = store.head().await.unwrap().position;
        for page in [1_000usize, 10_000] {
            let t0 = Instant::now();
            let mut after = 0;
            let mut count = 0u64;
            loop {
                let events = store.read_log(&LogQuery::after(after, page)).await.unwrap();
                let Some(last) = events.last() else { break };
                after = last.position;
                count += events.len() as u64;
            }
            assert_eq!(count, head);
            report.push_str(&format!(
            "\nForward read of the whole log ({head} events), one page of {page} at a time (`read_log`): {:.0} events/s.",
            count as f64 / t0.elapsed().as_secs_f64()
        ));
        }
        {
            use futures::StreamExt;
            let t0 = Instant::now();
            let mut count = 0u64;
            let mut last = 0;
            let mut events = std::pin::pin!(caretrail_store::stream_log(
                store.clone(),
                LogQuery::after(0, 1_000)
            ));
            while let Some(e) = events.next().await {
                let e = e.unwrap();
                assert_eq!(e.position, last + 1);
                last = e.position;
                count += 1;
            }
            assert_eq!(count, head);
            report.push_str(&format!(
            "\nForward read of the whole log ({head} events), streamed with prefetch (`stream_log`, pages of 1000): {:.0} events/s.",
            count as f64 / t0.elapsed().as_secs_f64()
        ));
        }
        if let Some(path) = store.sqlite_file() {
            report.push_str(&bulk_reads(&path, head));
        }
        report.push('\n');
    }
    if on("live") {
        // Live subscription latency: acknowledged → received, at a steady 1,000 appends/s from 4
        // appenders.
        let acked: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let received: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let start = store.head().await.unwrap().position;
        let count = n(4_000.0);
        let sub_task = {
            let store = store.clone();
            let received = received.clone();
            tokio::spawn(async move {
                let mut sub = subscribe(store, start, EventFilter::all());
                for _ in 0..count {
                    let e = sub.next().await.unwrap();
                    received.lock().unwrap().insert(e.position, Instant::now());
                }
            })
        };
        let mut handles = Vec::new();
        for t in 0..4u64 {
            let store = store.clone();
            let acked = acked.clone();
            handles.push(tokio::spawn(async move {
                let stream = StreamId::new(format!("live-{t}")).unwrap();
                let mut tick = tokio::time::interval(Duration::from_millis(4));
                for i in 0..count / 4 {
                    tick.tick().await;
                    let r = store
                        .append(AppendRequest::single(
                            stream.clone(),
                            ExpectedVersion::Any,
                            vec![new_event(i)],
                            Metadata::actor("bench", "admin"),
                        ))
                        .await
                        .unwrap();
                    acked
                        .lock()
                        .unwrap()
                        .insert(r.first_position().unwrap(), Instant::now());
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        sub_task.await.unwrap();
        let acked = acked.lock().unwrap();
        let received = received.lock().unwrap();
        let mut lat: Vec<Duration> = acked
            .iter()
            .map(|(p, a)| received[p].saturating_duration_since(*a))
            .collect();
        lat.sort();
        report.push_str(&format!(
        "\nLive subscription latency (append acknowledged → subscriber has it; {} events at ~1,000/s): p50 {}, p99 {}, max {}.\n",
        lat.len(),
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap())
    ));
    }
    drop(store);
    report
}

/// The whole log read on a direct connection in batches of 4,096 (the projection rebuild's
/// reader), through `bulk::LogReader` and, for comparison, with the same statement stepped by
/// hand: what the API costs over the engine. Both copy what the rebuild keeps of a row (its
/// short text fields) and look at the payload once; each runs twice, interleaved, and the
/// better run counts (the machine is shared).
fn bulk_reads(path: &std::path::Path, head: u64) -> String {
    const BATCH: usize = 4_096;
    let through_api = || {
        let t0 = Instant::now();
        let mut reader = caretrail_store::bulk::LogReader::open(path).unwrap();
        let (mut after, mut count, mut kept) = (0, 0u64, 0usize);
        while let Some(last) = reader
            .read(after, BATCH, |row| {
                count += 1;
                kept += row.stream_id.to_owned().len()
                    + row.event_type.to_owned().len()
                    + row.actor_id.to_owned().len()
                    + row.actor_role.to_owned().len()
                    + row.data.len();
                Ok::<_, caretrail_store::StoreError>(())
            })
            .unwrap()
        {
            after = last;
            reader.release_memory().unwrap();
        }
        assert_eq!(count, head);
        (count as f64 / t0.elapsed().as_secs_f64(), kept)
    };
    let by_hand = || {
        let t0 = Instant::now();
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap();
        conn.execute_batch("PRAGMA cache_size = -4096;").unwrap();
        let (mut after, mut count, mut kept) = (0i64, 0u64, 0usize);
        loop {
            let mut st = conn
                .prepare_cached(caretrail_store::sqlite::bulk::READ_EVENTS)
                .unwrap();
            let mut rows = st.query(rusqlite::params![after, BATCH as i64]).unwrap();
            let mut last = None;
            while let Some(r) = rows.next().unwrap() {
                let position: i64 = r.get(0).unwrap();
                let _id = uuid::Uuid::from_slice(r.get_ref(1).unwrap().as_blob().unwrap()).unwrap();
                let stream_id: String = r.get(2).unwrap();
                let event_type: String = r.get(3).unwrap();
                let _version: i64 = r.get(4).unwrap();
                let data = r.get_ref(5).unwrap().as_str().unwrap();
                let actor_id: String = r.get(6).unwrap();
                let actor_role: String = r.get(7).unwrap();
                let _date = r
                    .get_ref(8)
                    .unwrap()
                    .as_str_or_null()
                    .unwrap()
                    .map(|d| d.parse::<chrono::NaiveDate>().unwrap());
                let _at: i64 = r.get(9).unwrap();
                kept += stream_id.len()
                    + event_type.len()
                    + actor_id.len()
                    + actor_role.len()
                    + data.len();
                last = Some(position);
                count += 1;
            }
            drop(rows);
            drop(st);
            let Some(last) = last else { break };
            after = last;
            conn.execute_batch("PRAGMA shrink_memory").unwrap();
        }
        assert_eq!(count, head);
        (count as f64 / t0.elapsed().as_secs_f64(), kept)
    };
    let (mut api, mut hand) = ((0.0f64, 0), (0.0f64, 0));
    for _ in 0..2 {
        let a = through_api();
        let h = by_hand();
        assert_eq!(a.1, h.1, "both read the same bytes");
        api = if a.0 > api.0 { a } else { api };
        hand = if h.0 > hand.0 { h } else { hand };
    }
    format!(
        "\nForward read of the whole log ({head} events) on a direct connection, batches of {BATCH}: {:.0} events/s through `bulk::LogReader`, {:.0} events/s with the same statement stepped by hand (best of two each).",
        api.0, hand.0
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let backend = arg("--backend").unwrap_or_else(|| "sqlite".into());
    let scale: f64 = arg("--scale").map_or(1.0, |s| s.parse().expect("--scale is a number"));
    let phases: Vec<String> = arg("--phases")
        .map(|p| p.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let max_wait = Duration::from_micros(
        arg("--max-wait-us").map_or(0, |s| s.parse().expect("--max-wait-us is a number")),
    );
    // The database goes in the working directory (the disk under test), or in --db-dir, which is
    // kept so that a later run (e.g. `--phases read` under a profiler) reuses the filled log.
    let temp = tempfile::tempdir_in(".").expect("bench dir in the working directory");
    let kept = arg("--db-dir").map(std::path::PathBuf::from);
    if let Some(d) = &kept {
        std::fs::create_dir_all(d).expect("create --db-dir");
    }
    let dir_path = kept.clone().unwrap_or_else(|| temp.path().to_owned());
    let mut report = String::from("## Event store\n");
    if backend == "sqlite" || backend == "both" {
        let t = sqlite_target(&dir_path, "events").await;
        report.push_str(&run(&t, scale, max_wait, &phases).await);
    }
    if backend == "postgres" || backend == "both" {
        let admin = std::env::var("CARETRAIL_PG_URL")
            .expect("set CARETRAIL_PG_URL to benchmark PostgreSQL");
        let t = pg_target(&admin, "events").await;
        report.push_str(&run(&t, scale, max_wait, &phases).await);
        drop_target(t).await;
    }
    println!("{report}");
}
