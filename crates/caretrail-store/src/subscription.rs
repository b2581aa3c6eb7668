//! Catch-up-then-live subscriptions to the global log.
//!
//! A subscription tracks `scanned`: every event at or below it has been delivered or filtered
//! out. It reads storage page by page up to the known committed head; once caught up it waits
//! for the next batch this process commits (delivered straight from memory when it follows on
//! from `scanned`), a head change (a wake-up from another process via LISTEN/NOTIFY, or a gap in
//! what memory offered), or a poll tick. Storage is always the source of truth: a subscriber
//! that falls behind the in-memory broadcast (it lagged, or another process wrote in between)
//! simply reads storage again. So a slow subscriber never blocks the writer and holds at most a
//! page or one batch in memory.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{broadcast, watch};

use crate::EventStore;
use crate::error::{Result, StoreError};
use crate::types::{EventFilter, LogQuery, RecordedEvent};

/// Events read from storage per round trip while catching up.
const PAGE: usize = 1000;

/// A live, ordered, gap-free and duplicate-free feed of the log after a position.
pub struct Subscription {
    store: Arc<dyn EventStore>,
    filter: EventFilter,
    scanned: u64,
    buffer: VecDeque<RecordedEvent>,
    head: watch::Receiver<u64>,
    batches: broadcast::Receiver<Arc<[RecordedEvent]>>,
}

impl Subscription {
    pub(crate) fn new(store: Arc<dyn EventStore>, after: u64, filter: EventFilter) -> Self {
        let notifier = store.notifier();
        // Subscribe to live batches before the first storage read, so nothing committed in
        // between can fall through (and if it did, the head check would still catch it).
        let batches = notifier.committed_batches();
        let head = notifier.watch_head();
        Self {
            store,
            filter,
            scanned: after,
            buffer: VecDeque::new(),
            head,
            batches,
        }
    }

    /// Every event at or below this position has been delivered or filtered out.
    pub fn position(&self) -> u64 {
        self.scanned
    }

    /// How many events are read and waiting: [`Subscription::next`] returns them without
    /// waiting. Zero means every event up to [`Subscription::position`] has been returned.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next event. Waits for one if the subscription has caught up.
    pub async fn next(&mut self) -> Result<RecordedEvent> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                return Ok(e);
            }
            let head = *self.head.borrow_and_update();
            if self.scanned < head {
                // The batches that moved the head are published before it moves: take what
                // continues from memory, and read storage only for what is still missing.
                self.take_ready_batches()?;
                if self.buffer.is_empty() && self.scanned < head {
                    self.read_storage(head).await?;
                }
                continue;
            }
            self.wait().await?;
        }
    }

    async fn read_storage(&mut self, head: u64) -> Result<()> {
        let q = LogQuery {
            after: self.scanned,
            up_to: Some(head),
            filter: self.filter.clone(),
            limit: PAGE,
        };
        let events = self.store.read_log(&q).await?;
        self.scanned = if events.len() < PAGE {
            head
        } else {
            events.last().map_or(head, |e| e.position)
        };
        self.buffer.extend(events);
        Ok(())
    }

    async fn wait(&mut self) -> Result<()> {
        let poll = self.store.options().poll_interval;
        tokio::select! {
            biased;
            batch = self.batches.recv() => match batch {
                Ok(batch) => self.take_batch(&batch),
                // Fell behind the in-memory feed: storage has everything.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Err(StoreError::Closed),
            },
            changed = self.head.changed() => {
                if changed.is_err() {
                    return Err(StoreError::Closed);
                }
            }
            _ = tokio::time::sleep(poll) => {
                let head = self.store.head().await?.position;
                self.store.notifier().advance(head);
            }
        }
        Ok(())
    }

    /// Takes every batch already waiting in the receiver, without waiting.
    fn take_ready_batches(&mut self) -> Result<()> {
        loop {
            match self.batches.try_recv() {
                Ok(batch) => self.take_batch(&batch),
                Err(broadcast::error::TryRecvError::Empty)
                | Err(broadcast::error::TryRecvError::Lagged(_)) => return Ok(()),
                Err(broadcast::error::TryRecvError::Closed) => return Err(StoreError::Closed),
            }
        }
    }

    /// Takes a batch this process committed, if it continues exactly where we are; otherwise
    /// leaves the gap to be read from storage.
    fn take_batch(&mut self, batch: &[RecordedEvent]) {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        if last.position <= self.scanned || first.position > self.scanned + 1 {
            return;
        }
        let scanned = self.scanned;
        self.buffer.extend(
            batch
                .iter()
                .filter(|e| e.position > scanned && self.filter.matches(e))
                .cloned(),
        );
        self.scanned = last.position;
    }

    /// The subscription as a `Stream` that ends only on error.
    pub fn into_stream(self) -> impl Stream<Item = Result<RecordedEvent>> + Send {
        futures::stream::unfold(Some(self), |sub| async move {
            let mut sub = sub?;
            match sub.next().await {
                Ok(e) => Some((Ok(e), Some(sub))),
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}
