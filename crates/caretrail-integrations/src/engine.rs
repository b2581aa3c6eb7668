//! The delivery engine: on each node, a supervisor that leases subscriptions and runs one
//! worker per leased subscription, and a progress writer that stores what the workers did.
//!
//! **Ordering and at-least-once.** A worker follows the log from its subscription's cursor
//! (a store subscription with the subscription's filter) and hands events to the target one by
//! one (webhooks) or in pipelined batches (NATS), in log order. The cursor moves only over
//! events the target acknowledged (a 2xx, a JetStream ack); a failed event is retried, with
//! the retry schedule's delays, before anything after it is sent. So a receiver sees every
//! matching event, in order; it sees one twice only when its acknowledgement was lost (or the
//! node died before the cursor was stored, at most [`EngineConfig::flush_every`] of them).
//!
//! **The progress writer.** Cursors, failure counts and attempts are written by one task per
//! node, every `flush_every`, in one transaction for all subscriptions: writes per second do
//! not grow with the number of subscriptions, which matters on SQLite's single writer. A
//! failure is written at once (an administrator looking at a failing subscription sees it).
//!
//! **Several nodes.** A worker runs only while its node holds the subscription's lease (a row
//! lock with an expiry, renewed every `tick`), and every write of its progress is fenced by the
//! lease and by the subscription's epoch (bumped by a rewind, a resume, a secret rotation, a disable or a delete):
//! a node that lost its lease, or a worker from before a rewind, cannot move the cursor.
//! Another node takes a dead node's subscriptions over once the lease expires
//! ([`EngineConfig::lease_ttl`]).
//!
//! **Changes of a subscription.** A pause, rewind, rotation, disable or delete takes effect
//! before anything recorded after it is sent. A worker's store subscription also reads the
//! subscription's own stream (`subscription-<id>`), so it meets each change in log order,
//! whichever node made it, and stops to let the supervisor start what should run now. Before
//! each attempt it also asks [`still_wanted`], from memory unless the registry applied a change
//! since it last read its row or the lease's last renewal is old.
//!
//! **Work shared by subscriptions.** Each event's CloudEvent is rendered once per node and
//! shared by every subscription that sends it (only the signature differs), and attempts are
//! written in multi-row inserts: the cost per delivery stays the HTTP request and its signature.
//!
//! **Failing and disabled.** A subscription with failed attempts since its last success is
//! `failing`. When the last delay of the retry schedule has passed and the attempt still fails,
//! or the receiver answers `410 Gone`, the engine disables it with a command
//! (`DisableSubscription`, recorded in the log as the system's); an administrator's resume
//! delivers again from the cursor. NATS subscriptions are never disabled by failures: a broker
//! that is down is the operator's to restart, and the engine keeps retrying with a capped
//! backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caretrail_app::view::{Access, view};
use caretrail_app::{App, CommandMeta, KeyRing};
use caretrail_domain::command::DisableSubscription;
use caretrail_domain::subscription::SubscriptionDisableReason;
use caretrail_domain::{Category, Command, Sealed, StreamName, SubscriptionId};
use caretrail_store::{Backoff, EventFilter, EventStore, Expect, RecordedEvent};
use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::cloudevent::{Outgoing, RenderCache, render};
use crate::db::{AttemptRecord, Db, Progress, SubscriptionRow};
use crate::error::{IntegrationError, Result};
use crate::metrics::IntegrationMetrics;
use crate::nats::{JetStreamConfig, NatsPublisher};
use crate::webhook::{Outcome, Secret, WebhookClient, WebhookConfig};

/// The engine's settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This node's name in leases (a fresh UUID per process by default).
    pub node: String,
    /// The webhook client's settings (timeout, whether private addresses are allowed).
    pub webhook: WebhookConfig,
    /// The delays between a webhook's failed attempts; after the last one fails the
    /// subscription is disabled. Standard Webhooks' schedule by default.
    pub retry: Vec<Duration>,
    /// NATS JetStream, when the server was started with `--nats-url`.
    pub nats: Option<JetStreamConfig>,
    /// The CloudEvents `source` of every event.
    pub source: String,
    /// How long a lease lasts without renewal: how soon another node takes over.
    pub lease_ttl: Duration,
    /// How often the supervisor looks at the subscriptions and renews leases.
    pub tick: Duration,
    /// How often workers' progress is written.
    pub flush_every: Duration,
    /// Events per NATS batch.
    pub nats_batch: usize,
}

/// Standard Webhooks' suggested schedule after the first attempt: 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h, 10 h (some 27 hours of retrying).
pub fn standard_retry_schedule() -> Vec<Duration> {
    [5, 300, 1800, 7200, 18000, 36000, 36000]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

impl EngineConfig {
    /// The defaults, with events' `source` set to `source`.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            node: Uuid::new_v4().to_string(),
            webhook: WebhookConfig::default(),
            retry: standard_retry_schedule(),
            nats: None,
            source: source.into(),
            lease_ttl: Duration::from_secs(10),
            tick: Duration::from_secs(1),
            flush_every: Duration::from_millis(200),
            nats_batch: 512,
        }
    }
}

/// The engine's shared parts.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) app: Arc<App>,
    pub(crate) db: Db,
    pub(crate) cfg: EngineConfig,
    pub(crate) webhook: WebhookClient,
    pub(crate) nats: tokio::sync::OnceCell<Arc<NatsPublisher>>,
    pub(crate) metrics: Arc<IntegrationMetrics>,
    pub(crate) registry: Arc<crate::registry::Registry>,
    progress: mpsc::UnboundedSender<Report>,
    /// Events rendered once for all of this node's subscriptions.
    rendered: RenderCache,
    /// Until when (µs since the epoch) the supervisor's last renewal holds this node's leases:
    /// a worker trusts its lease without reading it while this is comfortably ahead.
    lease_until: std::sync::atomic::AtomicI64,
}

/// Events kept rendered: a few seconds of a busy log, so workers that follow the head share
/// one rendering of each event.
const RENDERED_KEPT: usize = 4096;

/// A worker's report to the progress writer.
pub(crate) enum Report {
    /// Progress to store, flushed at the next interval (or at once when `urgent`); `written`
    /// is told once it is stored (or refused).
    Progress {
        progress: Progress,
        urgent: bool,
        written: Option<tokio::sync::oneshot::Sender<()>>,
    },
}

/// A running worker.
struct Worker {
    epoch: i64,
    handle: JoinHandle<()>,
    fenced: Arc<std::sync::atomic::AtomicBool>,
}

impl Inner {
    pub(crate) fn new(
        store: Arc<dyn EventStore>,
        keys: Arc<KeyRing>,
        app: Arc<App>,
        db: Db,
        cfg: EngineConfig,
        metrics: Arc<IntegrationMetrics>,
        registry: Arc<crate::registry::Registry>,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<Report>)> {
        let webhook = WebhookClient::new(cfg.webhook.clone())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Self {
            store,
            keys,
            app,
            db,
            cfg,
            webhook,
            nats: tokio::sync::OnceCell::new(),
            metrics,
            registry,
            progress: tx,
            rendered: RenderCache::new(RENDERED_KEPT),
            lease_until: std::sync::atomic::AtomicI64::new(0),
        });
        Ok((inner, rx))
    }

    /// The NATS publisher, connected on first use.
    async fn nats(&self) -> Result<Arc<NatsPublisher>> {
        let cfg = self
            .cfg
            .nats
            .clone()
            .ok_or(IntegrationError::NatsNotConfigured)?;
        let publisher = self
            .nats
            .get_or_try_init(|| async move { NatsPublisher::connect(cfg).await.map(Arc::new) })
            .await?;
        Ok(publisher.clone())
    }

    /// The secrets that sign now: the current one and those still in their grace period.
    async fn signing_secrets(&self, id: Uuid, generation: i64) -> Result<Vec<Secret>> {
        let now = Utc::now().timestamp_micros();
        let mut out = Vec::new();
        for row in self.db.secrets(id, generation).await? {
            let current = row.generation == generation;
            if !current && row.retire_at.is_some_and(|t| t <= now) {
                continue;
            }
            let sealed: Sealed =
                serde_json::from_str(&row.sealed).map_err(|_| IntegrationError::Corrupt {
                    table: "integration_secrets",
                    column: "sealed",
                })?;
            let aad = secret_aad(row.generation);
            match self.keys.unseal(&sealed, aad).await? {
                Some(text) => {
                    out.push(
                        Secret::from_whsec(&text).map_err(|_| IntegrationError::Corrupt {
                            table: "integration_secrets",
                            column: "sealed",
                        })?,
                    )
                }
                None => return Err(IntegrationError::NoSecret(id)),
            }
        }
        if out.is_empty() {
            return Err(IntegrationError::NoSecret(id));
        }
        Ok(out)
    }

    /// Disables a subscription with a system command (recorded in the log).
    async fn disable(&self, id: Uuid, reason: SubscriptionDisableReason) -> Result<()> {
        let command = Command::DisableSubscription(DisableSubscription {
            subscription_id: SubscriptionId(id),
            reason,
        });
        match self
            .app
            .execute(&command, &CommandMeta::new(Uuid::nil(), "system"))
            .await
        {
            Ok(result) => {
                tracing::warn!(subscription = %id, reason = reason.as_str(), "subscription disabled");
                // The worker ends only once the table says disabled: a supervisor tick in
                // between would otherwise start it again and send once more.
                if let Some(p) = result.events.last().map(|e| e.position) {
                    self.registry.wait_for(p, Duration::from_secs(10)).await;
                }
                Ok(())
            }
            // Already disabled, paused away or deleted meanwhile: nothing to do.
            Err(caretrail_app::AppError::Rejected(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The AEAD binding of a sealed secret: its generation (a sealed secret cannot be moved to
/// another generation and still open).
pub(crate) fn secret_aad(generation: i64) -> Uuid {
    Uuid::from_u128(u128::from(generation.unsigned_abs()))
}

/// Runs the supervisor and the progress writer until `stop`.
pub(crate) async fn run(
    inner: Arc<Inner>,
    sink: mpsc::UnboundedReceiver<Report>,
    changes: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
) {
    let workers: Arc<Mutex<HashMap<String, Worker>>> = Arc::default();
    let writer = tokio::spawn(progress_writer(
        inner.clone(),
        sink,
        workers.clone(),
        stop.clone(),
    ));
    supervise(inner.clone(), workers.clone(), changes, stop).await;
    let _ = writer.await;
    // Give the leases back so another node need not wait for them to expire.
    let held: Vec<(String, Worker)> = workers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    for (id, w) in held {
        w.handle.abort();
        let _ = inner.db.release(&id, &inner.cfg.node).await;
    }
}

/// Every `tick`, and whenever the registry applied a change: lease what should run here,
/// start and stop workers accordingly.
async fn supervise(
    inner: Arc<Inner>,
    workers: Arc<Mutex<HashMap<String, Worker>>>,
    mut changes: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let health = inner.store.health().register(
        "integrations.engine",
        Expect::Periodic {
            every: inner.cfg.tick * 5,
        },
    );
    loop {
        match tick(&inner, &workers).await {
            Ok(()) => health.succeeded(),
            Err(e) => {
                health.failed("integrations.engine", &e);
            }
        }
        let registry_gone = tokio::select! {
            () = tokio::time::sleep(inner.cfg.tick) => false,
            // A subscription changed: pause, rewind and delete take effect now.
            changed = changes.changed() => changed.is_err(),
            _ = stop.wait_for(|s| *s) => return,
        };
        if registry_gone {
            // The registry is gone (shutting down): nothing more will change.
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
    }
}

async fn tick(inner: &Arc<Inner>, workers: &Arc<Mutex<HashMap<String, Worker>>>) -> Result<()> {
    let now = Utc::now();
    let until = now
        + chrono::Duration::from_std(inner.cfg.lease_ttl).unwrap_or(chrono::Duration::seconds(10));
    inner
        .db
        .lease_all(
            &inner.cfg.node,
            now.timestamp_micros(),
            until.timestamp_micros(),
        )
        .await?;
    inner.lease_until.store(
        until.timestamp_micros(),
        std::sync::atomic::Ordering::Release,
    );
    let rows = inner.db.list().await?;
    observe_lag(inner, &rows).await;
    let mut wanted: HashMap<String, SubscriptionRow> = HashMap::new();
    for row in rows {
        inner.metrics.observe_row(&row);
        let deliverable = row.paused == 0 && row.disabled_reason.is_none();
        if deliverable && row.lease_owner.as_deref() == Some(inner.cfg.node.as_str()) {
            wanted.insert(row.id.clone(), row);
        }
    }
    let mut map = workers.lock().unwrap_or_else(|e| e.into_inner());
    // Stop what should no longer run here, or runs from an old epoch, or was fenced off.
    let stale: Vec<String> = map
        .iter()
        .filter(|(id, w)| {
            w.handle.is_finished()
                || w.fenced.load(std::sync::atomic::Ordering::Acquire)
                || wanted.get(*id).is_none_or(|row| row.epoch != w.epoch)
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in stale {
        if let Some(w) = map.remove(&id) {
            w.handle.abort();
        }
    }
    for (id, row) in wanted {
        if map.contains_key(&id) {
            continue;
        }
        let fenced = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let epoch = row.epoch;
        let handle = tokio::spawn(worker(inner.clone(), row, fenced.clone()));
        map.insert(
            id,
            Worker {
                epoch,
                handle,
                fenced,
            },
        );
    }
    Ok(())
}

/// Sets every subscription's lag in the metrics: positions after its cursor, and the age of
/// the first of them (one read of the log for all). A failed read leaves the last figures.
async fn observe_lag(inner: &Arc<Inner>, rows: &[SubscriptionRow]) {
    let head = inner.store.health().head();
    let mut next: Vec<u64> = rows
        .iter()
        .filter_map(|r| r.cursor().ok())
        .filter(|c| *c < head)
        .map(|c| c + 1)
        .collect();
    next.sort_unstable();
    next.dedup();
    next.truncate(caretrail_store::MAX_POSITIONS);
    let Ok(events) = inner.store.read_positions(&next).await else {
        return;
    };
    let recorded: HashMap<u64, chrono::DateTime<Utc>> =
        events.iter().map(|e| (e.position, e.recorded_at)).collect();
    let now = Utc::now();
    for row in rows {
        let Ok(cursor) = row.cursor() else { continue };
        let behind = head.saturating_sub(cursor);
        let seconds = recorded
            .get(&(cursor + 1))
            .and_then(|t| (now - *t).to_std().ok())
            .map_or(0.0, |d| d.as_secs_f64());
        inner
            .metrics
            .lag(&row.id, behind, if behind == 0 { 0.0 } else { seconds });
    }
}

/// Writes workers' progress every `flush_every` (at once for an urgent report), one
/// transaction for all; marks fenced workers so the supervisor stops them.
async fn progress_writer(
    inner: Arc<Inner>,
    mut sink: mpsc::UnboundedReceiver<Report>,
    workers: Arc<Mutex<HashMap<String, Worker>>>,
    mut stop: watch::Receiver<bool>,
) {
    let backoff = Backoff::default();
    let mut failures = 0u32;
    let mut pending: Vec<Progress> = Vec::new();
    let mut waiting: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
    loop {
        let deadline = tokio::time::sleep(inner.cfg.flush_every);
        tokio::pin!(deadline);
        let stopping = loop {
            tokio::select! {
                report = sink.recv() => match report {
                    Some(Report::Progress { progress, urgent: u, written }) => {
                        merge(&mut pending, progress);
                        waiting.extend(written);
                        if u {
                            break false;
                        }
                    }
                    None => break true,
                },
                () = &mut deadline => break false,
                _ = stop.wait_for(|s| *s) => break true,
            }
        };
        if !pending.is_empty() {
            match inner.db.write_progress(&pending).await {
                Ok(fenced) => {
                    failures = 0;
                    pending.clear();
                    for w in waiting.drain(..) {
                        let _ = w.send(());
                    }
                    let map = workers.lock().unwrap_or_else(|e| e.into_inner());
                    for id in fenced {
                        if let Some(w) = map.get(&id) {
                            w.fenced.store(true, std::sync::atomic::Ordering::Release);
                        }
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, "cannot store subscriptions' progress; retrying");
                    tokio::time::sleep(backoff.delay(failures)).await;
                }
            }
        }
        if stopping {
            return;
        }
    }
}

/// Folds a report into the pending ones: the latest cursor and failure state of a
/// subscription win, attempts and counts add up.
fn merge(pending: &mut Vec<Progress>, p: Progress) {
    if let Some(old) = pending
        .iter_mut()
        .find(|o| o.id == p.id && o.epoch == p.epoch)
    {
        old.cursor = p.cursor;
        old.consecutive_failures = p.consecutive_failures;
        old.failing_since = p.failing_since;
        old.next_attempt_at = p.next_attempt_at;
        old.delivered += p.delivered;
        old.failed += p.failed;
        old.attempts.extend(p.attempts);
        let excess = old
            .attempts
            .len()
            .saturating_sub(crate::db::ATTEMPTS_KEPT as usize);
        old.attempts.drain(..excess);
    } else {
        pending.push(p);
    }
}

/// A worker: delivers one subscription's events until it ends or is stopped.
async fn worker(
    inner: Arc<Inner>,
    row: SubscriptionRow,
    fenced: Arc<std::sync::atomic::AtomicBool>,
) {
    let id = row.id.clone();
    if let Err(e) = deliver_loop(&inner, row, &fenced).await {
        tracing::warn!(subscription = %id, error = %e, "subscription worker stopped; it restarts at the next tick");
    }
}

/// What one worker knows of its subscription's state.
struct State {
    id: Uuid,
    /// The subscription's own stream (`subscription-<id>`): its changes, in log order.
    own_stream: String,
    /// What the subscription asked for (the store subscription reads a little more: see
    /// [`store_filter`]).
    filter: EventFilter,
    /// The registry's change counter as of this worker's last look at its row.
    changes: watch::Receiver<u64>,
    /// Whether the worker has looked at its row since it started.
    checked: bool,
    epoch: i64,
    cursor: u64,
    failures: i64,
    failing_since: Option<i64>,
    next_attempt_at: Option<i64>,
}

impl State {
    fn progress(
        &self,
        node: &str,
        delivered: i64,
        failed: i64,
        attempts: Vec<AttemptRecord>,
    ) -> Progress {
        Progress {
            id: self.id.to_string(),
            epoch: self.epoch,
            node: node.to_owned(),
            cursor: self.cursor,
            consecutive_failures: self.failures,
            failing_since: self.failing_since,
            next_attempt_at: self.next_attempt_at,
            delivered,
            failed,
            attempts,
        }
    }
}

async fn deliver_loop(
    inner: &Arc<Inner>,
    row: SubscriptionRow,
    fenced: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    let id = row.uuid()?;
    let filter = EventFilter {
        event_types: row.types()?,
        categories: row.categories()?,
    };
    let cursor = row.cursor()?;
    let mut state = State {
        id,
        own_stream: StreamName::new(Category::Subscription, id).to_string(),
        filter,
        // Subscribed before the first look at the row, so no change falls between the two.
        changes: inner.registry.changes(),
        checked: false,
        epoch: row.epoch,
        cursor,
        failures: row.consecutive_failures,
        failing_since: row.failing_since,
        next_attempt_at: row.next_attempt_at,
    };
    tracing::info!(subscription = %id, kind = %row.kind, after = cursor, "delivering");
    // A run of failures in progress keeps its schedule across a restart.
    if let Some(at) = row.next_attempt_at {
        let wait = at - Utc::now().timestamp_micros();
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait.unsigned_abs())).await;
        }
    }
    let mut sub =
        caretrail_store::subscribe(inner.store.clone(), cursor, store_filter(&state.filter));
    // An event of this subscription's own stream met while filling a NATS batch: it is
    // looked at before anything after it is sent.
    let mut carried: Option<RecordedEvent> = None;
    match row.kind.as_str() {
        "webhook" => {
            let url = inner.webhook.check_url(&row.target)?;
            let generation = row.generation;
            let mut secrets = inner.signing_secrets(id, generation).await?;
            let mut secrets_loaded = Instant::now();
            loop {
                if fenced.load(std::sync::atomic::Ordering::Acquire) {
                    return Ok(());
                }
                let event = match next_event(inner, &mut sub, &mut state, &mut carried).await? {
                    Next::Event(event) => *event,
                    Next::Idle => continue,
                    Next::Stop => return Ok(()),
                };
                let out = outgoing(inner, &event).await?;
                loop {
                    // Rotated secrets' grace periods end while a worker runs.
                    if secrets_loaded.elapsed() > Duration::from_secs(5) {
                        secrets = inner.signing_secrets(id, generation).await?;
                        secrets_loaded = Instant::now();
                    }
                    if !still_wanted(inner, &mut state).await? {
                        return Ok(());
                    }
                    let refs: Vec<&Secret> = secrets.iter().collect();
                    let started = Utc::now();
                    let attempt = inner.webhook.deliver(&url, &refs, &out).await;
                    inner.metrics.attempt(&state.id, &attempt);
                    let record = AttemptRecord {
                        position: event.position,
                        event_id: event.event_id,
                        attempted_at: started,
                        status: attempt.status,
                        latency_us: i64::try_from(attempt.latency.as_micros()).unwrap_or(i64::MAX),
                        outcome: match attempt.outcome {
                            Outcome::Delivered => "delivered",
                            Outcome::Retry => "retry",
                            Outcome::Gone => "gone",
                        },
                        error: attempt.error.clone(),
                        response_excerpt: attempt.response_excerpt.clone(),
                    };
                    match attempt.outcome {
                        Outcome::Delivered => {
                            if state.failures > 0 {
                                tracing::info!(subscription = %id, failures = state.failures, "subscription recovered");
                            }
                            state.failures = 0;
                            state.failing_since = None;
                            state.next_attempt_at = None;
                            state.cursor = event.position;
                            inner.metrics.delivered(&state.id, &event);
                            report(inner, &mut state, 1, 0, vec![record], false);
                            break;
                        }
                        Outcome::Gone => {
                            report_stored(inner, &mut state, 1, vec![record]).await;
                            inner.disable(id, SubscriptionDisableReason::Gone).await?;
                            return Ok(());
                        }
                        Outcome::Retry => {
                            state.failures += 1;
                            let now = Utc::now().timestamp_micros();
                            state.failing_since.get_or_insert(now);
                            let Some(delay) = usize::try_from(state.failures - 1)
                                .ok()
                                .and_then(|i| inner.cfg.retry.get(i))
                                .map(|d| jitter(*d))
                            else {
                                state.next_attempt_at = None;
                                report_stored(inner, &mut state, 1, vec![record]).await;
                                inner
                                    .disable(id, SubscriptionDisableReason::Failing)
                                    .await?;
                                return Ok(());
                            };
                            if state.failures == 1 {
                                tracing::warn!(subscription = %id, error = attempt.error.as_deref().unwrap_or(""), "subscription failing");
                            }
                            state.next_attempt_at =
                                Some(now + i64::try_from(delay.as_micros()).unwrap_or(i64::MAX));
                            report(inner, &mut state, 0, 1, vec![record], true);
                            tokio::time::sleep(delay).await;
                            if fenced.load(std::sync::atomic::Ordering::Acquire) {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        "nats" => {
            let prefix = row.target.clone();
            let backoff = Backoff::default();
            loop {
                if fenced.load(std::sync::atomic::Ordering::Acquire) {
                    return Ok(());
                }
                let first = match next_event(inner, &mut sub, &mut state, &mut carried).await? {
                    Next::Event(event) => *event,
                    Next::Idle => continue,
                    Next::Stop => return Ok(()),
                };
                let mut batch = vec![first];
                while sub.buffered() > 0 && batch.len() < inner.cfg.nats_batch {
                    let event = sub.next().await?;
                    if is_own_configuration(&event) {
                        if event.stream_id.as_str() == state.own_stream {
                            // A change of this subscription: the batch ends before it.
                            carried = Some(event);
                            break;
                        }
                        continue;
                    }
                    if state.filter.matches(&event) {
                        batch.push(event);
                    }
                }
                let mut outs = Vec::with_capacity(batch.len());
                for e in &batch {
                    outs.push(outgoing(inner, e).await?);
                }
                let mut done = 0;
                while done < outs.len() {
                    let publisher = match inner.nats().await {
                        Ok(p) => p,
                        Err(e) => {
                            state.failures += 1;
                            state
                                .failing_since
                                .get_or_insert(Utc::now().timestamp_micros());
                            tracing::warn!(subscription = %id, error = %e, "NATS unavailable");
                            report(inner, &mut state, 0, 1, Vec::new(), true);
                            tokio::time::sleep(
                                backoff.delay(state.failures.try_into().unwrap_or(u32::MAX)),
                            )
                            .await;
                            continue;
                        }
                    };
                    if !still_wanted(inner, &mut state).await? {
                        return Ok(());
                    }
                    let items: Vec<(String, &Outgoing)> = outs[done..]
                        .iter()
                        .map(|o| {
                            (
                                crate::nats::subject(&prefix, &o.category, &o.event_type),
                                o.as_ref(),
                            )
                        })
                        .collect();
                    let started = Instant::now();
                    let outcome = publisher.publish_batch(&items).await;
                    let acked = outcome.acked;
                    if acked > 0 {
                        let last = &batch[done + acked - 1];
                        state.cursor = last.position;
                        state.failures = 0;
                        state.failing_since = None;
                        for e in &batch[done..done + acked] {
                            inner.metrics.delivered(&state.id, e);
                        }
                        inner
                            .metrics
                            .nats_batch(&state.id, acked, started.elapsed());
                        done += acked;
                        report(inner, &mut state, acked as i64, 0, Vec::new(), false);
                    }
                    if let Some(err) = outcome.error {
                        state.failures += 1;
                        state
                            .failing_since
                            .get_or_insert(Utc::now().timestamp_micros());
                        inner.metrics.failed(&state.id);
                        if state.failures == 1 {
                            tracing::warn!(subscription = %id, error = %err, "NATS publication failing; retrying");
                        }
                        report(inner, &mut state, 0, 1, Vec::new(), true);
                        tokio::time::sleep(
                            backoff.delay(state.failures.try_into().unwrap_or(u32::MAX)),
                        )
                        .await;
                        if fenced.load(std::sync::atomic::Ordering::Acquire) {
                            return Ok(());
                        }
                    }
                }
            }
        }
        _ => Err(IntegrationError::Corrupt {
            table: "integration_subscriptions",
            column: "kind",
        }),
    }
}

/// Whether a worker may still send: its subscription is not paused, disabled or deleted, its
/// epoch is the one the worker started from, and this node holds its lease. Asked before
/// every attempt, because the supervisor stops a worker only at its next tick, and without it
/// an event recorded after a pause or a delete had been answered could still be sent.
///
/// Answered from memory while nothing changed: no subscription event was applied by the
/// registry since the worker last read its row (a pause is answered only once the registry
/// applied it, so an attempt after the answer sees the change), and the supervisor's last
/// renewal of the leases is good for more than a tick. Otherwise the row is read (one read by
/// primary key). Another node's change reaches this node's registry a moment later; the
/// worker meets it earlier still, in log order, in its own stream (see [`next_event`]).
async fn still_wanted(inner: &Inner, state: &mut State) -> Result<bool> {
    let margin = i64::try_from(inner.cfg.tick.as_micros()).unwrap_or(i64::MAX);
    let lease_good = Utc::now().timestamp_micros().saturating_add(margin)
        < inner.lease_until.load(std::sync::atomic::Ordering::Acquire);
    if state.checked && lease_good && !state.changes.has_changed().unwrap_or(true) {
        return Ok(true);
    }
    read_wanted(inner, state).await
}

/// [`still_wanted`] from the row itself.
async fn read_wanted(inner: &Inner, state: &mut State) -> Result<bool> {
    // Marked seen before the read: a change applied after it is looked at next time.
    state.changes.borrow_and_update();
    state.checked = true;
    let Some(row) = inner.db.get(state.id).await? else {
        return Ok(false);
    };
    Ok(row.deleted == 0
        && row.paused == 0
        && row.disabled_reason.is_none()
        && row.epoch == state.epoch
        && row.lease_owner.as_deref() == Some(inner.cfg.node.as_str()))
}

/// What a store subscription reads for a subscription's `filter`: the events it asked for and
/// every subscription event. Its own stream's events are how a worker learns, in log order, of
/// a pause, rewind, rotation, disable or delete made on any node before it sends anything
/// recorded after them; the other subscriptions' events are skipped.
fn store_filter(filter: &EventFilter) -> EventFilter {
    let mut wide = filter.clone();
    if !wide.event_types.is_empty() {
        wide.event_types.extend(
            caretrail_domain::event::EVENT_TYPES
                .iter()
                .filter(|t| t.starts_with("Subscription"))
                .map(|t| (*t).to_owned()),
        );
    }
    if !wide.categories.is_empty() {
        wide.categories
            .push(Category::Subscription.as_str().to_owned());
    }
    wide
}

/// What [`next_event`] found.
enum Next {
    /// An event to send (boxed: an event is large beside the other answers).
    Event(Box<RecordedEvent>),
    /// Nothing to send for now.
    Idle,
    /// The subscription changed so that this worker must end (the supervisor starts what
    /// should run now).
    Stop,
}

/// The next event to send, [`Next::Idle`] after a quiet `flush_every` (the cursor then moves
/// over what the filter skipped, so an idle filtered subscription's lag reads zero), or
/// [`Next::Stop`] when the subscription's own stream says it changed.
async fn next_event(
    inner: &Arc<Inner>,
    sub: &mut caretrail_store::Subscription,
    state: &mut State,
    carried: &mut Option<RecordedEvent>,
) -> Result<Next> {
    let event = if let Some(event) = carried.take() {
        event
    } else {
        match tokio::time::timeout(inner.cfg.flush_every, sub.next()).await {
            Ok(event) => event?,
            Err(_) => {
                if sub.buffered() == 0 && state.failures == 0 && sub.position() > state.cursor {
                    state.cursor = sub.position();
                    report(inner, state, 0, 0, Vec::new(), false);
                }
                return Ok(Next::Idle);
            }
        }
    };
    if is_own_configuration(&event) {
        if event.stream_id.as_str() == state.own_stream {
            // This subscription changed here: the table shows it once the registry applied
            // it, and whether the worker may go on is read there.
            if !inner
                .registry
                .wait_for(event.position, Duration::from_secs(10))
                .await
                || !read_wanted(inner, state).await?
            {
                return Ok(Next::Stop);
            }
        }
        // Every event before it was acknowledged: the cursor moves over it.
        state.cursor = event.position;
        report(inner, state, 0, 0, Vec::new(), false);
        return Ok(Next::Idle);
    }
    if !state.filter.matches(&event) {
        state.cursor = event.position;
        return Ok(Next::Idle);
    }
    Ok(Next::Event(Box::new(event)))
}

/// Whether an event is a subscription's own (`subscription-…` streams): never delivered. They
/// hold other integrations' targets and owners; administrators and auditors read them in the
/// log, integrations do not.
pub fn is_own_configuration(event: &RecordedEvent) -> bool {
    event.category() == caretrail_domain::Category::Subscription.as_str()
}

/// An event as the integration role reads it, in CloudEvents JSON: rendered by the first of
/// this node's subscriptions that sends it, shared by the others.
async fn outgoing(inner: &Arc<Inner>, event: &RecordedEvent) -> Result<Arc<Outgoing>> {
    if let Some(out) = inner.rendered.get(event.position, event.event_id) {
        return Ok(out);
    }
    let v = view(&inner.keys, event, &Access::Redacted).await?;
    let out = Arc::new(render(&v, &inner.cfg.source)?);
    inner.rendered.put(out.clone());
    Ok(out)
}

fn report(
    inner: &Arc<Inner>,
    state: &mut State,
    delivered: i64,
    failed: i64,
    attempts: Vec<AttemptRecord>,
    urgent: bool,
) {
    let progress = state.progress(&inner.cfg.node, delivered, failed, attempts);
    let _ = inner.progress.send(Report::Progress {
        progress,
        urgent,
        written: None,
    });
}

/// Reports at once and waits until the report is stored: before the worker disables its
/// subscription, whose command moves the epoch on and would fence the report off.
async fn report_stored(
    inner: &Arc<Inner>,
    state: &mut State,
    failed: i64,
    attempts: Vec<AttemptRecord>,
) {
    let progress = state.progress(&inner.cfg.node, 0, failed, attempts);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = inner.progress.send(Report::Progress {
        progress,
        urgent: true,
        written: Some(tx),
    });
    if sent.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
    }
}

/// `d` give or take a fifth, so receivers that failed together are not retried together.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return d;
    }
    let r = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX); // 0..=1
    d.mul_f64(0.8 + 0.4 * r)
}
