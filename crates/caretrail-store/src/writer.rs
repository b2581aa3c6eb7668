//! Group commit: one writer task per store drains concurrent appends into a single transaction.
//!
//! Durable commits cost an fsync each; with one writer per database (SQLite allows no other,
//! and PostgreSQL appends are serialised anyway to keep the log gapless), throughput comes from
//! putting many appends into each commit. Callers send their append over a bounded channel and
//! wait on a oneshot for their own result. The writer takes whatever is queued (up to
//! `max_batch`, waiting at most `max_wait` for more), plans it with [`crate::plan`], and commits
//! once. If the batch transaction fails as a whole, every append in it is retried on its own, so
//! one bad append never fails its neighbours; when it failed because the database cannot serve
//! (a full disk, an unreachable server), every append in it fails at once instead, since a
//! retry one by one would only multiply the wait.
//!
//! The writer reports into the store's [`Health`](crate::health::Health) as `store.writer`:
//! failing while the database refuses its commits, and proving recovery by itself with a
//! probe commit after each backoff delay, so that readiness comes back when the cause is gone
//! even if no command arrives to try.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::health::TaskHealth;
use crate::types::{AppendRequest, AppendResult, RecordedEvent};

/// What a committed transaction produced.
pub(crate) struct Committed {
    pub outcomes: Vec<Result<AppendResult>>,
    pub events: Vec<RecordedEvent>,
}

/// The backend half of the writer: one transaction over a batch.
#[async_trait]
pub(crate) trait BatchBackend: Send + 'static {
    /// Reads what planning needs, plans, inserts and commits. On error nothing was written.
    async fn commit_batch(
        &mut self,
        reqs: &[&AppendRequest],
        now: DateTime<Utc>,
    ) -> Result<Committed>;

    /// Which of `ids` are already stored (to explain a uniqueness violation).
    async fn existing_event_ids(&mut self, ids: &[Uuid]) -> Result<Vec<Uuid>>;

    /// Commits a write that changes nothing of the log (the row `store.writer` of
    /// `consumer_checkpoints`, set to the head), to learn whether commits succeed again.
    async fn probe(&mut self) -> Result<()>;
}

/// The checkpoint row the writer's probe writes: the head when the writer last proved, after
/// a failure, that it can commit.
pub(crate) const PROBE_ROW: &str = "store.writer";

/// Tells readers in this process that the log grew: a watch of the committed head (the data
/// path for subscribers is always storage or this process's own committed batches).
#[derive(Debug)]
pub struct LogNotifier {
    head: watch::Sender<u64>,
    committed: broadcast::Sender<Arc<[RecordedEvent]>>,
    metrics: WriterMetrics,
}

/// Counters of the writer since the store opened, for `/metrics` and benchmarks.
#[derive(Debug, Default)]
pub struct WriterMetrics {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Appends that succeeded (including idempotent replays).
    pub appends: AtomicU64,
    /// Appends refused (conflicts, duplicates, database errors).
    pub rejected: AtomicU64,
    /// Events written.
    pub events: AtomicU64,
}

impl LogNotifier {
    pub(crate) fn new(head: u64, capacity: usize) -> Self {
        Self {
            head: watch::Sender::new(head),
            committed: broadcast::Sender::new(capacity.max(1)),
            metrics: WriterMetrics::default(),
        }
    }

    /// The writer's counters.
    pub fn metrics(&self) -> &WriterMetrics {
        &self.metrics
    }

    /// Raises the known committed head to `position` (never lowers it).
    pub fn advance(&self, position: u64) {
        self.head.send_if_modified(|h| {
            if position > *h {
                *h = position;
                true
            } else {
                false
            }
        });
    }

    /// The highest position known to be committed.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// A receiver of head changes.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// A receiver of batches committed by this process's writer, in commit order.
    pub fn committed_batches(&self) -> broadcast::Receiver<Arc<[RecordedEvent]>> {
        self.committed.subscribe()
    }

    fn publish(&self, events: Vec<RecordedEvent>) {
        let Some(last) = events.last().map(|e| e.position) else {
            return;
        };
        // The batch is published before the head moves: a subscriber woken by this move finds
        // the batch already in its receiver and takes it from memory, instead of racing the
        // publication and reading storage (a thousand live subscribers would each read every
        // event back). The head can still move first by another way (PostgreSQL's NOTIFY of
        // this very commit, a poll): such a subscriber reads storage and then ignores the
        // batch as already seen. One that sees a gap before a batch ignores the batch and
        // reads storage once the head has moved, which is right after.
        if self.committed.receiver_count() > 0 {
            let _ = self.committed.send(events.into());
        }
        self.advance(last);
    }
}

/// Group commit settings.
#[derive(Clone, Copy, Debug)]
pub struct GroupCommit {
    /// Most appends in one transaction.
    pub max_batch: usize,
    /// Longest the writer waits for more appends once it has one. Zero means "take what is
    /// queued": appends that arrive while a commit is in flight form the next batch anyway.
    pub max_wait: Duration,
    /// Appends that may wait in the queue before callers are held back.
    pub queue_depth: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_wait: Duration::ZERO,
            queue_depth: 4096,
        }
    }
}

pub(crate) struct Pending {
    pub req: AppendRequest,
    pub reply: oneshot::Sender<Result<AppendResult>>,
}

/// The sending side held by a store.
#[derive(Clone, Debug)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Pending>,
}

impl WriterHandle {
    pub(crate) async fn append(&self, req: AppendRequest) -> Result<AppendResult> {
        req.validate()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { req, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Starts the writer task for `backend`, reporting as `task`.
pub(crate) fn spawn<B: BatchBackend>(
    backend: B,
    settings: GroupCommit,
    notifier: Arc<LogNotifier>,
    task: TaskHealth,
) -> WriterHandle {
    let (tx, rx) = mpsc::channel(settings.queue_depth.max(1));
    tokio::spawn(run(backend, rx, settings, notifier, task));
    WriterHandle { tx }
}

async fn run<B: BatchBackend>(
    mut backend: B,
    mut rx: mpsc::Receiver<Pending>,
    settings: GroupCommit,
    notifier: Arc<LogNotifier>,
    task: TaskHealth,
) {
    let max_batch = settings.max_batch.max(1);
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    // While commits fail because the database cannot serve: when to probe it next.
    let mut probe_at: Option<tokio::time::Instant> = None;
    loop {
        let first = match probe_at {
            None => rx.recv().await,
            Some(at) => tokio::select! {
                p = rx.recv() => p,
                () = tokio::time::sleep_until(at) => {
                    probe_at = match backend.probe().await {
                        Ok(()) => {
                            task.succeeded();
                            None
                        }
                        Err(e) => {
                            fail_waiting(&mut rx, &e, &notifier);
                            Some(tokio::time::Instant::now() + task.failed(e.kind(), &e))
                        }
                    };
                    continue;
                }
            },
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        if !settings.max_wait.is_zero() && batch.len() < max_batch {
            let deadline = Instant::now() + settings.max_wait;
            while batch.len() < max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, rx.recv()).await {
                    Ok(Some(p)) => batch.push(p),
                    _ => break,
                }
            }
        }
        match write(&mut backend, &mut batch, &notifier).await {
            Outcome::Committed => {
                task.succeeded();
                probe_at = None;
            }
            Outcome::Unavailable(e) => {
                fail_waiting(&mut rx, &e, &notifier);
                probe_at = Some(tokio::time::Instant::now() + task.failed(e.kind(), &e));
            }
            Outcome::Refused => {}
        }
    }
    tracing::debug!("event store writer stopped: every store handle was dropped");
}

/// What a batch came to, for the writer's health.
enum Outcome {
    /// At least one transaction committed.
    Committed,
    /// Nothing committed, for reasons of the appends themselves (conflicts, duplicates): the
    /// database is fine.
    Refused,
    /// The database could not serve; every append of the batch failed with this error.
    Unavailable(StoreError),
}

#[tracing::instrument(name = "store.group_commit", skip_all, fields(appends = batch.len()))]
async fn write<B: BatchBackend>(
    backend: &mut B,
    batch: &mut Vec<Pending>,
    notifier: &LogNotifier,
) -> Outcome {
    let reqs: Vec<&AppendRequest> = batch.iter().map(|p| &p.req).collect();
    let e = match backend.commit_batch(&reqs, Utc::now()).await {
        Ok(done) => {
            deliver(batch.drain(..), done, notifier);
            return Outcome::Committed;
        }
        Err(e) => e,
    };
    if e.is_unavailable() {
        // The database, not an append, is the problem: fail every append now. Retrying them
        // one by one would make the last caller wait for as many failures as came before it.
        fail_all(batch, &e, notifier);
        return Outcome::Unavailable(e);
    }
    if batch.len() == 1 {
        let p = batch.pop().expect("batch has one append");
        let e = explain(backend, &p.req, e).await;
        notifier.metrics().rejected.fetch_add(1, Ordering::Relaxed);
        let _ = p.reply.send(Err(e));
        return Outcome::Refused;
    }
    // Something in the batch broke the transaction (a duplicate event id slipped past
    // planning). Retry each append alone so that only the guilty one fails.
    tracing::warn!(error = %e, appends = batch.len(), "batch commit failed; retrying appends one by one");
    let mut outcome = Outcome::Refused;
    while !batch.is_empty() {
        let p = batch.remove(0);
        match backend.commit_batch(&[&p.req], Utc::now()).await {
            Ok(done) => {
                deliver(std::iter::once(p), done, notifier);
                outcome = Outcome::Committed;
            }
            Err(e) if e.is_unavailable() => {
                batch.insert(0, p);
                fail_all(batch, &e, notifier);
                return Outcome::Unavailable(e);
            }
            Err(e) => {
                let e = explain(backend, &p.req, e).await;
                notifier.metrics().rejected.fetch_add(1, Ordering::Relaxed);
                let _ = p.reply.send(Err(e));
            }
        }
    }
    outcome
}

/// Answers the appends that queued up while an attempt failed because the database could not
/// serve with that attempt's failure: the database was found unavailable a moment ago, and
/// trying them next would make each caller wait through a second failed attempt (a client
/// during an outage hears 503 within one attempt's timeout, not two).
fn fail_waiting(rx: &mut mpsc::Receiver<Pending>, e: &StoreError, notifier: &LogNotifier) {
    let mut waiting = Vec::new();
    while let Ok(p) = rx.try_recv() {
        waiting.push(p);
    }
    fail_all(&mut waiting, e, notifier);
}

/// Answers every append of `batch` with a copy of the database failure `e`.
fn fail_all(batch: &mut Vec<Pending>, e: &StoreError, notifier: &LogNotifier) {
    notifier
        .metrics()
        .rejected
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    for p in batch.drain(..) {
        let _ = p.reply.send(Err(unavailable_copy(e)));
    }
}

/// A copy of an "unavailable" error for one more caller (sqlx errors do not clone): the kind
/// is kept where the callers switch on it, the message names the original.
fn unavailable_copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Closed => StoreError::Closed,
        StoreError::Unresponsive(d) => StoreError::Unresponsive(*d),
        StoreError::Database(sqlx::Error::PoolTimedOut) => {
            StoreError::Database(sqlx::Error::PoolTimedOut)
        }
        StoreError::Database(sqlx::Error::PoolClosed) => {
            StoreError::Database(sqlx::Error::PoolClosed)
        }
        other => StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!(
            "the batch this append was in failed: {other}"
        )))),
    }
}

fn deliver(pending: impl Iterator<Item = Pending>, done: Committed, notifier: &LogNotifier) {
    let m = notifier.metrics();
    m.commits.fetch_add(1, Ordering::Relaxed);
    m.events
        .fetch_add(done.events.len() as u64, Ordering::Relaxed);
    notifier.publish(done.events);
    for (p, outcome) in pending.zip(done.outcomes) {
        let counter = if outcome.is_ok() {
            &m.appends
        } else {
            &m.rejected
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let _ = p.reply.send(outcome);
    }
}

/// Turns a uniqueness violation into the typed error it stands for.
async fn explain<B: BatchBackend>(
    backend: &mut B,
    req: &AppendRequest,
    e: StoreError,
) -> StoreError {
    if !e.is_unique_violation() {
        return e;
    }
    let ids: Vec<Uuid> = req
        .streams
        .iter()
        .flat_map(|s| s.events.iter().map(|e| e.event_id))
        .collect();
    match backend.existing_event_ids(&ids).await {
        Ok(found) if !found.is_empty() => StoreError::DuplicateEventId(found[0]),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::health::{Backoff, Expect, Health};
    use crate::types::{ExpectedVersion, Metadata, NewEvent, StreamId};

    /// A backend whose commits fail as "database full" until `healthy` is set; it counts the
    /// calls it gets.
    #[derive(Clone, Default)]
    struct Flaky {
        healthy: Arc<std::sync::atomic::AtomicBool>,
        commits: Arc<AtomicU64>,
        probes: Arc<AtomicU64>,
        head: Arc<Mutex<u64>>,
    }

    fn full() -> StoreError {
        StoreError::Database(sqlx::Error::Io(std::io::Error::other(
            "No space left on device",
        )))
    }

    #[async_trait]
    impl BatchBackend for Flaky {
        async fn commit_batch(
            &mut self,
            reqs: &[&AppendRequest],
            now: DateTime<Utc>,
        ) -> Result<Committed> {
            self.commits.fetch_add(1, Ordering::SeqCst);
            if !self.healthy.load(Ordering::SeqCst) {
                return Err(full());
            }
            let mut head = self.head.lock().unwrap();
            let plan = crate::plan::plan(
                reqs,
                crate::plan::Snapshot {
                    head: crate::types::Head {
                        position: *head,
                        recorded_at: None,
                    },
                    versions: Default::default(),
                    commands: Default::default(),
                },
                now,
            );
            *head += plan.events.len() as u64;
            Ok(Committed {
                outcomes: plan.outcomes,
                events: plan.events,
            })
        }

        async fn existing_event_ids(&mut self, _: &[Uuid]) -> Result<Vec<Uuid>> {
            Ok(Vec::new())
        }

        async fn probe(&mut self) -> Result<()> {
            self.probes.fetch_add(1, Ordering::SeqCst);
            if self.healthy.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err(full())
            }
        }
    }

    fn append(n: u64) -> AppendRequest {
        AppendRequest::single(
            StreamId::new(format!("test-{n}")).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::json("T", 1, &serde_json::json!({ "n": n })).unwrap()],
            Metadata::actor("tester", "admin"),
        )
    }

    /// Hardening #2: a writer whose commits fail because the database cannot serve fails the
    /// whole batch at once (no retry one by one), reports itself failing, and, with no
    /// command arriving, proves its own recovery by probing once the cause is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unavailable_database_fails_the_batch_at_once_and_the_writer_recovers_by_itself() {
        let backend = Flaky::default();
        let notifier = Arc::new(LogNotifier::new(0, 16));
        let health = Health::new(notifier.watch_head());
        let task = health.register_with(
            "store.writer",
            Expect::OnDemand,
            Backoff {
                first: Duration::from_millis(20),
                max: Duration::from_millis(50),
            },
        );
        let settings = GroupCommit {
            max_batch: 64,
            max_wait: Duration::from_millis(50),
            queue_depth: 64,
        };
        let writer = spawn(backend.clone(), settings, notifier.clone(), task);
        let calls: Vec<_> = (0..8)
            .map(|n| {
                let w = writer.clone();
                tokio::spawn(async move { w.append(append(n)).await })
            })
            .collect();
        for c in calls {
            let e = c.await.unwrap().unwrap_err();
            assert!(e.is_unavailable(), "{e}");
        }
        let commits = backend.commits.load(Ordering::SeqCst);
        assert!(
            commits <= 2,
            "8 appends gathered into at most 2 batches took {commits} commit attempts"
        );
        let problems = health.problems(&Default::default());
        assert!(
            problems[0].contains("store.writer is failing"),
            "{problems:?}"
        );
        // Still failing: the writer keeps probing on its own, with backoff.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let probes = backend.probes.load(Ordering::SeqCst);
        assert!((2..=20).contains(&probes), "{probes} probes in 300 ms");
        assert!(!health.problems(&Default::default()).is_empty());
        // The cause goes away; no command arrives, yet the writer reports healthy again.
        backend.healthy.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            health.problems(&Default::default()).is_empty(),
            "{:?}",
            health.problems(&Default::default())
        );
        let done = writer.append(append(99)).await.unwrap();
        assert_eq!(done.last_position(), Some(1));
        assert_eq!(notifier.head(), 1);
    }
}
