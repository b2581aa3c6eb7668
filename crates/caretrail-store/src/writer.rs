//! Group commit: one writer task per store drains concurrent appends into a single transaction.
//!
//! Durable commits cost an fsync each; with one writer per database (SQLite allows no other,
//! and PostgreSQL appends are serialised anyway to keep the log gapless), throughput comes from
//! putting many appends into each commit. Callers send their append over a bounded channel and
//! wait on a oneshot for their own result. The writer takes whatever is queued (up to
//! `max_batch`, waiting at most `max_wait` for more), plans it with [`crate::plan`], and commits
//! once. If the batch transaction fails as a whole, every append in it is retried on its own, so
//! one bad append never fails its neighbours.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use uuid::Uuid;

use crate::error::{Result, StoreError};
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
}

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

/// Starts the writer task for `backend`.
pub(crate) fn spawn<B: BatchBackend>(
    backend: B,
    settings: GroupCommit,
    notifier: Arc<LogNotifier>,
) -> WriterHandle {
    let (tx, rx) = mpsc::channel(settings.queue_depth.max(1));
    tokio::spawn(run(backend, rx, settings, notifier));
    WriterHandle { tx }
}

async fn run<B: BatchBackend>(
    mut backend: B,
    mut rx: mpsc::Receiver<Pending>,
    settings: GroupCommit,
    notifier: Arc<LogNotifier>,
) {
    let max_batch = settings.max_batch.max(1);
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
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
        write(&mut backend, &mut batch, &notifier).await;
    }
    tracing::debug!("event store writer stopped: every store handle was dropped");
}

#[tracing::instrument(name = "store.group_commit", skip_all, fields(appends = batch.len()))]
async fn write<B: BatchBackend>(backend: &mut B, batch: &mut Vec<Pending>, notifier: &LogNotifier) {
    let reqs: Vec<&AppendRequest> = batch.iter().map(|p| &p.req).collect();
    match backend.commit_batch(&reqs, Utc::now()).await {
        Ok(done) => deliver(batch.drain(..), done, notifier),
        Err(e) if batch.len() == 1 => {
            let p = batch.pop().expect("batch has one append");
            let e = explain(backend, &p.req, e).await;
            notifier.metrics().rejected.fetch_add(1, Ordering::Relaxed);
            let _ = p.reply.send(Err(e));
        }
        Err(e) => {
            // Something in the batch broke the transaction (a duplicate event id slipped past
            // planning, or the database failed). Retry each append alone so that only the
            // guilty one fails.
            tracing::warn!(error = %e, appends = batch.len(), "batch commit failed; retrying appends one by one");
            for p in batch.drain(..) {
                match backend.commit_batch(&[&p.req], Utc::now()).await {
                    Ok(done) => deliver(std::iter::once(p), done, notifier),
                    Err(e) => {
                        let e = explain(backend, &p.req, e).await;
                        notifier.metrics().rejected.fetch_add(1, Ordering::Relaxed);
                        let _ = p.reply.send(Err(e));
                    }
                }
            }
        }
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
