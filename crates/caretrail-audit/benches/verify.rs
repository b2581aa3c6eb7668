//! Verification throughput: writes an export of N synthetic events (real leaf encoding, real
//! hashes, a signed checkpoint with a consistency proof every 100,000 events) to a temporary
//! file, then times `verify_file` on it (a reading and parsing thread beside the hashing one)
//! and prints events per second of wall time, with the CPU time of each side.
//!
//! `cargo bench -p caretrail-audit --bench verify` (N defaults to 1,000,000; set
//! `CARETRAIL_BENCH_EVENTS` to change it).

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use caretrail_audit::export::{CheckpointRecord, End, EventRecord, FORMAT, Header, Line, VERSION};
use caretrail_audit::merkle::{self, Frontier, Hash, NodeId};
use caretrail_audit::note::{CheckpointBody, NoteSigner};
use caretrail_audit::{VerifyOptions, verify_file};
use caretrail_store::RecordedEvent;
use chrono::{DateTime, NaiveDate};
use uuid::Uuid;

const CHECKPOINT_EVERY: u64 = 100_000;

/// This thread's time on a CPU in seconds (Linux `schedstat`): the verifying (hashing) side;
/// `None` where the file does not exist.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// The whole process's CPU time in seconds, ended threads included (Linux `/proc/self/stat`,
/// user + system, in the kernel's fixed 100 ticks a second); `None` where it does not exist.
fn process_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The one-minute load average, to print beside each figure.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn event(position: u64) -> RecordedEvent {
    let data = format!(
        r#"{{"pairing_id":"0192f3a4-{position:012}","visit_date":"2021-10-13","kind":"home_visit","gifts":[{{"item":"大米","qty":2}},{{"item":"食用油","qty":1}}],"amount_cents":{},"note_sealed":"{}"}}"#,
        position % 50_000,
        "9f3a".repeat(12)
    );
    let mut e = RecordedEvent {
        position,
        stream_id: format!("pairing-{}", position % 997),
        stream_version: position / 997 + 1,
        event_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 | u128::from(position)),
        event_type: if position.is_multiple_of(3) {
            "GiftGiven".into()
        } else {
            "VisitRecorded".into()
        },
        schema_version: 1,
        data,
        actor_id: format!("director-{}", position % 40),
        actor_role: "director".into(),
        command_id: Some(Uuid::from_u128(u128::from(position) << 64 | 7)),
        correlation_id: Some(Uuid::from_u128(u128::from(position) << 64 | 9)),
        causation_id: None,
        business_date: NaiveDate::from_ymd_opt(2021, 10, 1 + (position % 28) as u32),
        recorded_at: DateTime::from_timestamp_micros(
            1_634_000_000_000_000 + position as i64 * 1000,
        )
        .expect("in range"),
        leaf_hash: [0; 32],
    };
    e.leaf_hash = e.recompute_leaf_hash();
    e
}

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::var("CARETRAIL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let signer = NoteSigner::from_seed("caretrail/bench", [42; 32])?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("export.jsonl");

    let started = Instant::now();
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    fn put(out: &mut impl Write, line: &Line<'_>) -> anyhow::Result<()> {
        serde_json::to_writer(&mut *out, line)?;
        out.write_all(b"\n")?;
        Ok(())
    }
    put(
        &mut out,
        &Line::Header(Header {
            format: FORMAT.into(),
            version: VERSION,
            origin: "caretrail/bench".into(),
            public_key: Some(signer.verifier().to_string()),
            events: n,
            checkpoints: n / CHECKPOINT_EVERY,
        }),
    )?;
    let mut frontier = Frontier::new();
    let mut nodes: HashMap<NodeId, Hash> = HashMap::new();
    let mut previous = 0u64;
    let mut checkpoints = 0;
    for position in 1..=n {
        let e = event(position);
        frontier.push(e.leaf_hash, |id, h| {
            nodes.insert(id, *h);
        });
        put(&mut out, &Line::Event(EventRecord::of(&e)))?;
        if position.is_multiple_of(CHECKPOINT_EVERY) {
            let proof = if previous > 0 {
                merkle::hash_spans(&merkle::consistency_spans(previous, position), |id| {
                    nodes.get(&id).copied()
                })
                .expect("all nodes kept")
                .iter()
                .map(hex::encode)
                .collect()
            } else {
                Vec::new()
            };
            let body = CheckpointBody {
                origin: "caretrail/bench".into(),
                tree_size: position,
                root_hash: frontier.root(),
                time: DateTime::from_timestamp(1_700_000_000 + position as i64, 0),
            };
            put(
                &mut out,
                &Line::Checkpoint(CheckpointRecord {
                    tree_size: position,
                    note: signer.sign(&body.to_text()),
                    consistency_proof: proof,
                }),
            )?;
            previous = position;
            checkpoints += 1;
        }
    }
    put(
        &mut out,
        &Line::End(End {
            events: n,
            checkpoints,
        }),
    )?;
    out.flush()?;
    drop(out);
    let bytes = std::fs::metadata(&path)?.len();
    eprintln!(
        "wrote {n} events, {checkpoints} checkpoints, {:.1} MiB in {:.2?}",
        bytes as f64 / 1048576.0,
        started.elapsed()
    );

    let key = signer.verifier();
    let mut best = f64::MAX;
    for run in 1..=3 {
        let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
        let t = Instant::now();
        let (cpu, process) = (thread_cpu_seconds(), process_cpu_seconds());
        let report = verify_file(reader, &key, &VerifyOptions::default(), &mut |_, _| {})?;
        let wall = t.elapsed().as_secs_f64();
        let hashing = match (cpu, thread_cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        };
        let total = match (process, process_cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => f64::NAN,
        };
        assert_eq!(report.events, n);
        assert_eq!(report.checkpoints, checkpoints);
        println!(
            "run {run}: verified {n} events and {checkpoints} checkpoints in {wall:.3} s wall = \
             {:.0} events/s (CPU: {total:.2} s in all, {hashing:.3} s of it hashing); load {}",
            n as f64 / wall,
            load()
        );
        best = best.min(wall);
    }
    println!(
        "best: {:.0} events/s of wall time ({:.1} MiB/s of export)",
        n as f64 / best,
        bytes as f64 / 1048576.0 / best
    );
    Ok(())
}
