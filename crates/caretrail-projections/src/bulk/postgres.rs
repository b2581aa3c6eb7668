//! The PostgreSQL bulk path of a rebuild: the log streamed and decoded on one task while the
//! applier folds it into the shadow generation in large consumer transactions, each flush
//! written as sets (`COPY` into a staging table, then one `INSERT ... SELECT ... ON CONFLICT`
//! per table: `sql::copy_upsert`).
//!
//! The generic path reads a page, applies it, writes every row it changed and commits, one
//! page at a time, with each table's rows sent as multi-row `VALUES` statements. Here reading
//! and decoding (`stream_log`, which prefetches pages) overlap applying, and one transaction
//! spans many pages, so a row that many events change (a director, a model worker) is written
//! once per transaction instead of once per page.
//!
//! Exactly-once holds as on every path: a transaction is the store's consumer transaction
//! ([`EventStore::begin_consumer`], which locks the generation's checkpoint row), the rows it
//! changed and the checkpoint commit together, and a checkpoint that is not the one this
//! rebuild last wrote (another process building the same generation) ends the bulk phase; the
//! generic runner then continues from the stored checkpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use caretrail_store::{ConsumerTx, EventFilter, EventStore, LogQuery, stream_log};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{Bulk, Sizes};
use crate::error::{ProjectionError, Result};
use crate::model::{self, Applier, Envelope};
use crate::runner::consumer_name;
use crate::sql::ReadModelDb;

/// Events per page the reader asks the store for.
const PAGE: usize = 10_000;

/// The longest one transaction stays open: PostgreSQL takes no lock others wait for here
/// (the generation's tables are new, the checkpoint row is this rebuild's), so this only
/// bounds how much work a failure throws away, and keeps a transaction well inside the
/// store's deadlines.
const COMMIT_AFTER: Duration = Duration::from_secs(3);

/// The consumer transaction the applier has open.
struct Open {
    tx: ConsumerTx,
    opened: Instant,
    applied: u64,
    events: usize,
}

/// Applies the log after `start` up to `up_to` to `generation`, cut as `sizes` says.
pub(crate) async fn run(
    store: Arc<dyn EventStore>,
    db: &ReadModelDb,
    generation: i64,
    mut applier: Applier,
    start: u64,
    up_to: u64,
    sizes: Sizes,
) -> Result<Bulk> {
    let (tx, mut rx) = mpsc::channel::<Result<Vec<Envelope>>>(2);
    let reader = tokio::spawn(read_loop(store.clone(), start, up_to, sizes.read, tx));
    let name = consumer_name(generation);
    let mut checkpoint = start;
    let mut own = true;
    let mut open: Option<Open> = None;
    let outcome: Result<()> = async {
        while let Some(events) = rx.recv().await {
            let events = events?;
            let Some(last) = events.last().map(|e| e.position) else {
                continue;
            };
            let o = match open.as_mut() {
                Some(o) => o,
                None => {
                    let tx = store.begin_consumer(&name).await?;
                    if tx.position() != checkpoint {
                        // Someone else is building this generation (dropping `tx` rolls it
                        // back); the generic runner goes on from what they committed.
                        checkpoint = tx.position();
                        own = false;
                        return Ok(());
                    }
                    open.insert(Open {
                        tx,
                        opened: Instant::now(),
                        applied: checkpoint,
                        events: 0,
                    })
                }
            };
            if events[0].position != o.applied + 1 {
                return Err(ProjectionError::Gap {
                    checkpoint: o.applied,
                    next: events[0].position,
                });
            }
            let mut conn = db.consumer_conn(&mut o.tx)?;
            applier.apply_events(&mut conn, &events).await?;
            o.applied = last;
            o.events += events.len();
            if o.events >= sizes.commit || o.opened.elapsed() >= COMMIT_AFTER {
                if let Some(o) = open.take() {
                    checkpoint = commit(db, &mut applier, o).await?;
                }
            } else if applier.over_budget() {
                // More rows than the budget: write them in the open transaction and let
                // the flush forget them.
                applier.flush(&mut conn).await?;
            }
        }
        if let Some(o) = open.take() {
            checkpoint = commit(db, &mut applier, o).await?;
        }
        Ok(())
    }
    .await;
    // Ends the reader if the applier stopped first (its next send would fail anyway).
    reader.abort();
    outcome?;
    Ok(Bulk {
        applier,
        checkpoint,
        own,
        index_seconds: 0.0,
    })
}

/// Writes what the open transaction's batches changed, advances the checkpoint with it and
/// commits; answers the new checkpoint.
async fn commit(db: &ReadModelDb, applier: &mut Applier, mut o: Open) -> Result<u64> {
    applier.flush(&mut db.consumer_conn(&mut o.tx)?).await?;
    o.tx.commit(o.applied).await?;
    Ok(o.applied)
}

/// Streams the log after `start` up to `up_to`, decodes it into batches of `batch` events and
/// sends them until the end, an error (sent as the last item), or the applier hangs up.
async fn read_loop(
    store: Arc<dyn EventStore>,
    start: u64,
    up_to: u64,
    batch: usize,
    tx: mpsc::Sender<Result<Vec<Envelope>>>,
) {
    let query = LogQuery {
        after: start,
        up_to: Some(up_to),
        filter: EventFilter::all(),
        limit: PAGE,
    };
    let mut events = std::pin::pin!(stream_log(store, query));
    let mut out = Vec::with_capacity(batch);
    while let Some(e) = events.next().await {
        match e.map_err(ProjectionError::from).and_then(model::decode) {
            Ok(env) => out.push(env),
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
        if out.len() >= batch
            && tx
                .send(Ok(std::mem::replace(&mut out, Vec::with_capacity(batch))))
                .await
                .is_err()
        {
            return;
        }
    }
    if !out.is_empty() {
        let _ = tx.send(Ok(out)).await;
    }
}
