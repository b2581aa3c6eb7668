//! End-to-end tests of integrations' webhook delivery across crashes: the real `caretrail`
//! binary (`serve` processes started and SIGKILLed here), real databases, and real receivers
//! (`caretrail_integrations::testing::Receiver`, which verifies every delivery with the
//! Standard Webhooks library and parses it with the CloudEvents SDK). Nothing is mocked.
//!
//! - A server killed with SIGKILL while a backlog is being delivered, restarted on the same
//!   SQLite file, delivers every event it had not stored as acknowledged, and repeats only
//!   those after its stored cursor.
//! - Two nodes on one PostgreSQL database deliver each subscription from one node only, and
//!   when the node holding subscriptions is killed the other takes them over once the lease
//!   expires.
//!
//! What was delivered is compared with the log as the API serves it (`GET /api/v1/events`,
//! filtered here rather than by the server), and the cursor a killed node left behind is read
//! from its database table after the kill (the only exact record of it).

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use caretrail_integrations::testing::{Delivery, Receiver};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// Contacts in the log before the crash test's subscription starts delivering: the first
/// cursor is stored some 200 ms after delivery starts (the progress writer's interval), and
/// the kill must come while most of them are still to be delivered.
const BACKLOG: usize = 500;

/// The event type the subscriptions here take.
const TYPE: &str = "ContactRecorded";

/// The master key every process of a test shares (base64 of 32 bytes).
fn master_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

/// The last lines of a server's log, for failure messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!("{}:\n{}", log.display(), lines[from..].join("\n"))
}

/// One `caretrail serve` process.
struct Server {
    name: String,
    child: Child,
    base: String,
    /// The admin token it printed (`--demo` only).
    admin: Option<String>,
    log: PathBuf,
}

impl Server {
    /// Starts `caretrail serve` on `db` in `dir` on a free port (with `--webhook-allow-private`
    /// and `extra`), and waits until it says where it listens (and, with `--demo`, prints its
    /// admin token). Its log goes to `dir/<name>.log`.
    async fn start(dir: &Path, name: &str, db: &str, extra: &[&str]) -> Server {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_caretrail"))
            .current_dir(dir)
            .env("CARETRAIL_MASTER_KEY", master_key())
            .env("RUST_LOG", "warn,caretrail_integrations=info")
            .args(["serve", "--db", db, "--listen", "127.0.0.1:0"])
            .arg("--webhook-allow-private")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let demo = extra.contains(&"--demo");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let (mut base, mut admin) = (None, None);
        loop {
            let line = tokio::time::timeout_at(deadline, lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("{name} did not start within 60 s; {}", tail(&log)))
                .unwrap()
                .unwrap_or_else(|| panic!("{name} exited before it listened; {}", tail(&log)));
            if let Some(url) = line.strip_prefix("caretrail listening on ") {
                base = Some(url.trim().to_owned());
            } else if let Some(token) = line.strip_prefix("admin token: ") {
                admin = Some(token.trim().to_owned());
            }
            if base.is_some() && (!demo || admin.is_some()) {
                break;
            }
        }
        // Whatever else it prints is read, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            name: name.to_owned(),
            child,
            base: base.unwrap(),
            admin,
            log,
        }
    }

    /// SIGKILL, and waits until the process is gone.
    async fn kill_9(&mut self) {
        use std::os::unix::process::ExitStatusExt;
        self.child.start_kill().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not die", self.name))
            .unwrap();
        assert_eq!(status.signal(), Some(9), "{}: {status:?}", self.name);
    }

    /// A client of this server with `token`.
    fn api(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }
}

/// An admin's client of one server.
#[derive(Clone)]
struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The event log after `after` (all of it, page by page).
    async fn log_after(&self, mut after: u64) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let page = self
                .get(&format!("/api/v1/events?after={after}&limit=1000"))
                .await;
            let events = page["events"].as_array().unwrap();
            if events.is_empty() {
                return out;
            }
            out.extend(events.iter().cloned());
            after = page["next_after"].as_u64().unwrap();
        }
    }

    /// The log's head position.
    async fn head(&self) -> u64 {
        self.log_after(0)
            .await
            .last()
            .map_or(0, |e| e["position"].as_u64().unwrap())
    }

    /// The `ContactRecorded` events after `after`: position to event id.
    async fn contacts_after(&self, after: u64) -> BTreeMap<u64, String> {
        self.log_after(after)
            .await
            .iter()
            .filter(|e| e["event_type"] == json!(TYPE))
            .map(|e| {
                (
                    e["position"].as_u64().unwrap(),
                    e["event_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Records `n` contacts in the demo's first pairing, one after the other (each writes a
    /// ContactRecorded and a PairActivityLogged to the same pairing stream, so concurrent ones
    /// would conflict).
    async fn record_contacts(&self, n: usize) {
        for _ in 0..n {
            let (status, body) = self
                .post(
                    "/api/v1/commands/RecordContact",
                    json!({ "contact_id": Uuid::now_v7(),
                        "pairing_id": caretrail_domain::demo::pairing(1),
                        "on": "2021-10-30", "channel": "phone" }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "RecordContact: {body}");
        }
    }

    /// Creates a webhook subscription to `url` for ContactRecorded events after `start_after`;
    /// answers its id and secret.
    async fn subscribe(&self, name: &str, url: &str, start_after: u64) -> (Uuid, String) {
        let (status, body) = self
            .post(
                "/api/v1/subscriptions",
                json!({ "name": name, "filter": { "types": [TYPE] },
                    "delivery": { "kind": "webhook", "url": url },
                    "start_after": start_after }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let secret = body["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"), "{body}");
        (body["id"].as_str().unwrap().parse().unwrap(), secret)
    }

    async fn status(&self, id: Uuid) -> Value {
        self.get(&format!("/api/v1/subscriptions/{id}")).await
    }
}

/// A receiver whose secret is set once its subscription has one (no event matches before).
async fn receiver() -> Receiver {
    Receiver::start("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").await
}

/// Waits until `r` has received every position of `expected` (repeats allowed), failing after
/// `limit` with what is missing. Answers how long it took.
async fn wait_all(r: &Receiver, expected: &BTreeMap<u64, String>, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got: BTreeSet<u64> = r.deliveries().iter().map(|d| d.position).collect();
        if expected.keys().all(|p| got.contains(p)) {
            return started.elapsed();
        }
        if started.elapsed() > limit {
            let missing: Vec<u64> = expected
                .keys()
                .filter(|p| !got.contains(p))
                .copied()
                .collect();
            panic!(
                "not delivered within {limit:?}: {} of {} missing, first {:?}",
                missing.len(),
                expected.len(),
                &missing[..missing.len().min(10)]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Positions in arrival order.
fn positions(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().map(|d| d.position).collect()
}

/// Asserts `positions` never goes down.
fn assert_non_decreasing(what: &str, positions: &[u64]) {
    if let Some(w) = positions.windows(2).find(|w| w[1] < w[0]) {
        panic!("{what}: {} arrived after {}", w[1], w[0]);
    }
}

/// The checks every receiver passes: exactly the expected positions were delivered (as a
/// set), each with the log's event id as its `webhook-id`, correctly signed and well formed;
/// a position arrives more than once only when it is after `cursor_at_kill` (the cursor the
/// killed process had stored; `None`: nothing was killed under this subscription, so nothing
/// repeats); arrivals before and after `split` (the end of the first delivering process's
/// life) are each in log order.
fn assert_delivered(
    what: &str,
    r: &Receiver,
    expected: &BTreeMap<u64, String>,
    cursor_at_kill: Option<u64>,
    split: DateTime<Utc>,
) {
    let deliveries = r.deliveries();
    assert_eq!(r.bad_signatures(), 0, "{what}: bad signatures");
    assert_eq!(r.bad_bodies(), 0, "{what}: bad bodies");
    let got: BTreeSet<u64> = deliveries.iter().map(|d| d.position).collect();
    let want: BTreeSet<u64> = expected.keys().copied().collect();
    assert_eq!(
        got.difference(&want).collect::<Vec<_>>(),
        Vec::<&u64>::new(),
        "{what}: delivered positions the log does not hold after start_after as {TYPE}"
    );
    assert_eq!(got, want, "{what}: the delivered set is the log's");
    for d in &deliveries {
        assert_eq!(
            d.webhook_id, expected[&d.position],
            "{what}: webhook-id of position {}",
            d.position
        );
        assert_eq!(d.event_type, TYPE, "{what}");
    }
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for d in &deliveries {
        *counts.entry(d.position).or_default() += 1;
    }
    let repeated: Vec<u64> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(p, _)| *p)
        .collect();
    match cursor_at_kill {
        None => assert!(repeated.is_empty(), "{what}: repeated {repeated:?}"),
        Some(cursor) => assert!(
            repeated.iter().all(|p| *p > cursor),
            "{what}: repeated {repeated:?}, some at or before the stored cursor {cursor}"
        ),
    }
    let (before, after): (Vec<Delivery>, Vec<Delivery>) =
        deliveries.into_iter().partition(|d| d.received_at < split);
    assert_non_decreasing(&format!("{what}, first lifetime"), &positions(&before));
    assert_non_decreasing(&format!("{what}, second lifetime"), &positions(&after));
}

/// The stored cursor (`delivered_position`) and lease owner of every subscription, read from
/// the integrations' table with `db`'s driver.
async fn stored_cursors(db: &str) -> HashMap<Uuid, (u64, Option<String>)> {
    use sqlx::{Connection, Row};
    let sql = "SELECT id, delivered_position, lease_owner FROM integration_subscriptions";
    let rows: Vec<(String, i64, Option<String>)> = if db.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(db).await.unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
        let out = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        c.close().await.unwrap();
        out
    } else {
        let mut c = sqlx::PgConnection::connect(db).await.unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
        let out = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        c.close().await.unwrap();
        out
    };
    rows.into_iter()
        .map(|(id, cursor, owner)| (id.parse().unwrap(), (u64::try_from(cursor).unwrap(), owner)))
        .collect()
}

/// Crash recovery on SQLite: 500 contacts are in the log when a subscription starting before
/// them is created, so the worker has a backlog to deliver; the server is SIGKILLed once some
/// of it has arrived (most not), and restarted on the same file with the same master key. Every
/// ContactRecorded event after start_after, including 20 recorded after the restart, arrives;
/// only positions after the cursor stored at the kill arrive twice; each lifetime delivers in
/// log order; every delivery is correctly signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_server_mid_delivery_loses_nothing() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let mut first = Server::start(dir.path(), "first", &db, &["--demo"]).await;
    let token = first.admin.clone().unwrap();
    let api = first.api(&token);

    let start_after = api.head().await;
    let recording = Instant::now();
    api.record_contacts(BACKLOG).await;
    eprintln!("recorded {BACKLOG} contacts in {:?}", recording.elapsed());
    let r = receiver().await;
    let (id, secret) = api.subscribe("崩溃恢复", &r.url(), start_after).await;
    r.set_secrets(&[&secret]);
    let s = api.status(id).await;
    assert_eq!(s["delivered_position"], json!(start_after), "{s}");

    // Kill once some deliveries have arrived and a cursor past start_after is stored: the
    // backlog is 500 events, so most are still to come (checked below).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = api.status(id).await;
        if s["delivered_position"].as_u64().unwrap() > start_after {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress stored within 30 s: {s}; {}",
            tail(&first.log)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill_9().await;
    // A request the receiver had read when the process died is recorded a moment later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let arrived = r.deliveries();
    assert!(
        !arrived.is_empty() && arrived.len() < BACKLOG,
        "the kill came mid-delivery: {} of {BACKLOG} had arrived",
        arrived.len()
    );
    let stored = stored_cursors(&db).await;
    let (cursor_at_kill, _) = stored[&id];
    let last_arrived = arrived.iter().map(|d| d.position).max().unwrap();
    assert!(
        cursor_at_kill <= last_arrived,
        "the stored cursor {cursor_at_kill} is past every acknowledged event ({last_arrived})"
    );
    let rate = arrived.len() as f64
        / (arrived.last().unwrap().received_at - arrived[0].received_at)
            .to_std()
            .unwrap()
            .as_secs_f64();
    eprintln!(
        "killed after {} deliveries (last position {last_arrived}, {rate:.0}/s); stored cursor {cursor_at_kill} (start_after {start_after})",
        arrived.len()
    );

    let split = Utc::now();
    let second = Server::start(dir.path(), "second", &db, &["--demo"]).await;
    // The token from before the kill still works: tokens are in the database.
    let api = second.api(&token);
    api.record_contacts(20).await;
    let expected = api.contacts_after(start_after).await;
    assert_eq!(expected.len(), BACKLOG + 20, "the log holds every contact");
    let took = wait_all(&r, &expected, Duration::from_secs(60)).await;
    eprintln!(
        "all {} delivered {took:?} after the restart's commands",
        expected.len()
    );
    // Give a stray repeat the time to show before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_delivered("after the kill", &r, &expected, Some(cursor_at_kill), split);
    let repeats = r.deliveries().len() - expected.len();
    eprintln!("{repeats} repeated deliveries, all after the stored cursor");

    // The stored cursor catches up with the last delivered event.
    let last = *expected.keys().last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = api.status(id).await;
        if s["delivered_position"].as_u64().unwrap() >= last {
            assert_eq!(s["state"], json!("active"), "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "the cursor never caught up: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("kill_9 test took {:?}", started.elapsed());
}

/// Two nodes on one PostgreSQL database, four subscriptions to four receivers: while both run,
/// each subscription is delivered by one node only (every event exactly once, in order) and
/// its status names that node. Then the node holding subscriptions is SIGKILLed while
/// contacts are being recorded, and more are recorded after: within 30 s the other node has
/// taken its subscriptions over (the lease lasts 10 s) and every event has arrived; repeats
/// only after the killed node's stored cursors, none on the survivor's own subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgresql_deliver_each_subscription_once_and_take_over_after_kill_9() {
    let Some(h) = caretrail_store::testing::postgres().await else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), "a", &h.url, &["--demo", "--node", "a"]).await;
    let b = Server::start(dir.path(), "b", &h.url, &["--node", "b"]).await;
    let token = a.admin.clone().unwrap();
    let mut nodes: HashMap<String, Server> = HashMap::new();
    let apis: HashMap<String, Api> = [("a", &a), ("b", &b)]
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s.api(&token)))
        .collect();
    nodes.insert("a".into(), a);
    nodes.insert("b".into(), b);

    let start_after = apis["a"].head().await;
    let mut subs = Vec::new();
    for i in 0..4 {
        let r = receiver().await;
        let via = &apis[["a", "b"][i % 2]];
        let (id, secret) = via
            .subscribe(&format!("集成 {i}"), &r.url(), start_after)
            .await;
        r.set_secrets(&[&secret]);
        subs.push((id, r));
    }
    // Each subscription is leased by one of the nodes.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut owners: HashMap<Uuid, String> = HashMap::new();
    while owners.len() < subs.len() {
        for (id, _) in &subs {
            let s = apis["b"].status(*id).await;
            if let Some(node) = s["node"].as_str() {
                assert!(node == "a" || node == "b", "{s}");
                owners.insert(*id, node.to_owned());
            }
        }
        assert!(Instant::now() < deadline, "not all leased: {owners:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Both nodes take commands.
    apis["a"].record_contacts(20).await;
    apis["b"].record_contacts(20).await;
    let expected = apis["a"].contacts_after(start_after).await;
    assert_eq!(expected.len(), 40);
    for (_, r) in &subs {
        wait_all(r, &expected, Duration::from_secs(30)).await;
    }
    // Time for a second delivery by the other node to show, were there one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (i, (id, r)) in subs.iter().enumerate() {
        let what = format!("subscription {i} while both nodes run");
        assert_delivered(&what, r, &expected, None, Utc::now());
        assert_eq!(
            positions(&r.deliveries()),
            expected.keys().copied().collect::<Vec<_>>(),
            "{what}: once each, in order"
        );
        let s = apis["a"].status(*id).await;
        assert_eq!(s["node"].as_str(), Some(owners[id].as_str()), "{what}: {s}");
        assert_eq!(s["state"], json!("active"), "{what}: {s}");
    }
    let held = |n: &str| owners.values().filter(|o| *o == n).count();
    eprintln!("leases: a holds {}, b holds {}", held("a"), held("b"));
    let (victim, survivor) = if held("a") >= held("b") {
        ("a", "b")
    } else {
        ("b", "a")
    };
    assert!(held(victim) > 0);

    // Kill the node holding subscriptions while contacts are being recorded on the other.
    let recording = {
        let api = apis[survivor].clone();
        tokio::spawn(async move { api.record_contacts(30).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    nodes.get_mut(victim).unwrap().kill_9().await;
    let killed = Instant::now();
    let split = Utc::now() + chrono::Duration::seconds(3);
    // Read before the lease can expire: only the dead node could have moved these cursors.
    let stored = stored_cursors(&h.url).await;
    for (id, owner) in &owners {
        if owner == victim {
            assert_eq!(
                stored[id].1.as_deref(),
                Some(victim),
                "still leased to the dead node"
            );
        }
    }
    recording.await.unwrap();
    apis[survivor].record_contacts(20).await;
    let expected = apis[survivor].contacts_after(start_after).await;
    assert_eq!(expected.len(), 90);

    // The survivor takes the dead node's subscriptions over once their leases expire.
    let mut taken_over = None;
    while taken_over.is_none() {
        let mut all = true;
        for (id, _) in &subs {
            let s = apis[survivor].status(*id).await;
            all &= s["node"].as_str() == Some(survivor);
        }
        if all {
            taken_over = Some(killed.elapsed());
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no takeover within 30 s; {}",
            tail(&nodes[survivor].log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (_, r) in &subs {
        let left = Duration::from_secs(30).saturating_sub(killed.elapsed());
        wait_all(r, &expected, left).await;
    }
    let all_delivered = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut repeats = 0;
    for (i, (id, r)) in subs.iter().enumerate() {
        let what = format!("subscription {i} (held by {}) after the kill", owners[id]);
        let cursor = (owners[id] == victim).then(|| stored[id].0);
        assert_delivered(&what, r, &expected, cursor, split);
        repeats += r.deliveries().len() - expected.len();
        let s = apis[survivor].status(*id).await;
        assert_eq!(s["state"], json!("active"), "{what}: {s}");
    }
    eprintln!(
        "killed node {victim}: taken over after {:?}, everything delivered after {all_delivered:?}, {repeats} repeats; test took {:?}",
        taken_over.unwrap(),
        started.elapsed()
    );
}

/// A pause answered by one node stops the other node's worker before it sends anything recorded
/// after the pause. Workers answer "still wanted" from memory between changes, so a change made
/// elsewhere must reach them by itself: the worker meets the pause in log order in its
/// subscription's own stream, and its node's registry, told of the new head, counts a change.
/// Either alone keeps this test green today (it was run with the first disabled); it guards
/// the property, not one mechanism.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_answered_by_one_node_stops_the_other_nodes_worker_before_anything_recorded_after_it()
 {
    let Some(h) = caretrail_store::testing::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), "a", &h.url, &["--demo", "--node", "a"]).await;
    let b = Server::start(dir.path(), "b", &h.url, &["--node", "b"]).await;
    let token = a.admin.clone().unwrap();
    let apis: HashMap<&str, Api> = [("a", a.api(&token)), ("b", b.api(&token))].into();

    let start_after = apis["a"].head().await;
    let r = receiver().await;
    let (id, secret) = apis["a"]
        .subscribe("跨节点暂停", &r.url(), start_after)
        .await;
    r.set_secrets(&[&secret]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let owner = loop {
        if let Some(node) = apis["a"].status(id).await["node"].as_str() {
            break node.to_owned();
        }
        assert!(Instant::now() < deadline, "never leased");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let other = if owner == "a" { "b" } else { "a" };

    // The owner's worker is running and past its first look at its row.
    apis[owner.as_str()].record_contacts(5).await;
    let before = apis[other].contacts_after(start_after).await;
    wait_all(&r, &before, Duration::from_secs(30)).await;

    // Paused through the other node, then contacts recorded there at once.
    let (status, body) = apis[other]
        .post(&format!("/api/v1/subscriptions/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    apis[other].record_contacts(10).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = positions(&r.deliveries());
    assert_eq!(
        got,
        before.keys().copied().collect::<Vec<_>>(),
        "nothing recorded after the pause was sent (owner {owner}); {}",
        tail(&dir.path().join(format!("{owner}.log")))
    );

    // Resumed: the rest arrives, in order, once.
    let (status, body) = apis[other]
        .post(&format!("/api/v1/subscriptions/{id}/resume"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = apis[other].contacts_after(start_after).await;
    assert_eq!(expected.len(), 15);
    wait_all(&r, &expected, Duration::from_secs(30)).await;
    assert_eq!(
        positions(&r.deliveries()),
        expected.keys().copied().collect::<Vec<_>>()
    );
}
