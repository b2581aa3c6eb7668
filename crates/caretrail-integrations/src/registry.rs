//! The registry: the exactly-once consumer `integrations.registry` that keeps the
//! subscriptions table in step with the log's subscription events.
//!
//! A subscription's configuration (its name, filter, target, paused or disabled, its cursor
//! after a rewind, its secret's generation) is decided by commands and recorded as events; this
//! consumer applies those events to `integration_subscriptions` in the consumer transaction the
//! store hands out, so the table and the consumer's checkpoint commit together and a crash
//! applies nothing twice. Several nodes may run it on one database: the store's consumer
//! transaction serialises them, and each applies only what lies past the checkpoint it finds.
//!
//! It reads only `subscription-…` streams. The checkpoint is written only when there was
//! something to apply; how far the log has been scanned without finding any is kept in memory
//! and published ([`Registry::applied`]), so a request that created a subscription can wait
//! until the table shows it.

use std::sync::Arc;
use std::time::Duration;

use caretrail_store::{EventFilter, EventStore, Expect, LogQuery};
use tokio::sync::watch;

use crate::db::Db;
use crate::error::Result;

/// The consumer's name in `consumer_checkpoints`.
pub const CONSUMER: &str = "integrations.registry";

/// Events applied per transaction.
const BATCH: usize = 256;

/// The registry consumer.
pub struct Registry {
    store: Arc<dyn EventStore>,
    applied: watch::Sender<u64>,
    changes: watch::Sender<u64>,
}

impl Registry {
    /// A registry over `store`'s log (the tables are the store's, through its consumer
    /// transactions).
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            applied: watch::channel(0).0,
            changes: watch::channel(0).0,
        }
    }

    /// Every subscription event up to the published position is in the table.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Counts the batches of subscription events applied by this process: the delivery
    /// engine looks at the table at once when it moves (a pause, a rewind, a deletion take
    /// effect without waiting for its next tick).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Waits until the table holds every subscription event up to `position`, or `timeout`
    /// passes; false on timeout (the registry is behind or down).
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Applies what the log holds now, once. Returns the position scanned to.
    pub async fn catch_up(&self) -> Result<u64> {
        let known = *self.applied.borrow();
        let mut scanned = known.max(self.store.checkpoint(CONSUMER).await?);
        loop {
            let head = self.store.head().await?.position;
            if scanned >= head {
                self.applied.send_replace(scanned);
                return Ok(scanned);
            }
            scanned = self.step(scanned, head).await?;
            self.applied.send_replace(scanned);
        }
    }

    /// Applies the subscription events after `scanned` up to `head`, one batch; returns the new
    /// scanned position.
    async fn step(&self, scanned: u64, head: u64) -> Result<u64> {
        let query = LogQuery {
            after: scanned,
            up_to: Some(head),
            filter: EventFilter {
                event_types: Vec::new(),
                categories: vec!["subscription".to_owned()],
            },
            limit: BATCH,
        };
        let events = self.store.read_log(&query).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(head);
        };
        let mut tx = self.store.begin_consumer(CONSUMER).await?;
        let from = tx.position();
        if from >= last {
            // Another node applied them; this node's engine still looks at them now.
            tx.rollback().await?;
            self.changes.send_modify(|n| *n = n.wrapping_add(1));
            return Ok(if events.len() < BATCH { head } else { last });
        }
        for e in events.iter().filter(|e| e.position > from) {
            let event = caretrail_app::to_domain(e)?;
            tracing::info!(
                subscription = %e.stream_id,
                event = %e.event_type,
                position = e.position,
                "subscription changed"
            );
            Db::apply(&mut tx, e.position, e.recorded_at, &event).await?;
        }
        tx.commit(last).await?;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(if events.len() < BATCH { head } else { last })
    }

    /// Follows the log until `stop`, retrying failures with the store's backoff and reporting
    /// to its health registry as `integrations.registry`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let poll = self.store.options().poll_interval;
        let health = self.store.health().register(
            CONSUMER,
            Expect::FollowsLog {
                every: poll.max(Duration::from_secs(1)) * 2,
            },
        );
        let mut head = self.store.notifier().watch_head();
        loop {
            match self.catch_up().await {
                Ok(p) => health.at(p),
                Err(e) => {
                    let delay = health.failed("integrations.registry", &e);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
            tokio::select! {
                _ = head.changed() => {}
                () = tokio::time::sleep(poll) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
