//! The SQLite bulk path of a rebuild: two threads with their own direct SQLite connections
//! (rusqlite), one reading and decoding the log, one folding it into the shadow generation.
//!
//! Why a separate path: a rebuild on SQLite is bound by per-statement cost, not by the engine.
//! sqlx sends each statement to its connection's worker thread and copies every value out, and
//! the engine itself reads about ten times faster than that. Here the reader steps one
//! prepared statement over the log and parses each payload straight from the row's text into
//! the domain's typed event, while the writer, on the other core, applies the same
//! [`Applier`] as the live runner through [`Conn::Lite`] (cached prepared statements stepped
//! in place).
//!
//! Memory does not grow with the log: every part is bounded by a constant that a 1M-event log
//! already reaches. At most two decoded batches of 4,096 events wait in the channel; the
//! applier keeps at most [`model::ROW_BUDGET`] entity rows (past it they are written inside
//! the open transaction and forgotten); the applier's page cache (32 MiB) is released after
//! every commit and the reader's after every batch, so neither fills up with cold pages; the
//! deferred index builds sort with a 4 MiB cache; the old generation is dropped on a
//! connection that is closed afterwards.
//!
//! Exactly-once holds as on the generic path: the rows several batches changed and the
//! generation's checkpoint commit in one `BEGIN IMMEDIATE` transaction, and a checkpoint that
//! is not the one this rebuild last wrote (another process building the same generation) ends
//! the bulk phase; the generic runner then continues from the stored checkpoint.
//!
//! PostgreSQL has a bulk path of its own in [`postgres`].

pub(crate) mod postgres;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use caretrail_store::bulk::LogReader;
use futures::FutureExt;
use rusqlite::OpenFlags;

use crate::error::{ProjectionError, Result};
use crate::model::{self, Applier, Envelope};
use crate::runner::consumer_name;
use crate::sql::Conn;

/// How long either connection waits for the store's writer before giving up.
const BUSY: Duration = Duration::from_secs(30);

/// A direct connection to the store's file, used by one thread only (no SQLite mutex), that
/// waits [`BUSY`] for the store's writer.
fn open(path: &std::path::Path, flags: OpenFlags) -> Result<rusqlite::Connection> {
    let conn =
        rusqlite::Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY)?;
    Ok(conn)
}

/// Events folded per transaction. Most events change a few long-lived rows (a director's
/// last contact, a model worker's last visit); folding 200,000 of them before writing writes
/// each such row once instead of once per read batch, which is most of a rebuild's writes
/// (on the 1.1M-event bench log: 20,000 per transaction about 137,000 events/s, 100,000 about
/// 215,000, 200,000 about 240,000).
pub(crate) const COMMIT_EVENTS: usize = 200_000;

/// Events per decoded batch handed from the reader to the applier. Transactions no longer
/// follow read batches, so these stay small: at most three are alive at once (two queued, one
/// being applied), and decoded events are the largest thing a rebuild holds.
pub(crate) const READ_BATCH: usize = 4_096;

/// How the bulk phase cuts the log: events per read batch and per transaction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    pub read: usize,
    pub commit: usize,
}

/// The longest one transaction holds SQLite's write lock, so appends made during a rebuild
/// wait at most about this long (plus one read batch) whatever the machine's speed.
const COMMIT_AFTER: Duration = Duration::from_millis(750);

/// The transaction the applier has open: since when, up to which position it has applied,
/// and how many events.
struct Transaction {
    opened: Instant,
    applied: u64,
    events: usize,
}

/// What the bulk phase hands back to the runner.
pub(crate) struct Bulk {
    pub applier: Applier,
    /// The checkpoint this phase last committed (or found written by someone else).
    pub checkpoint: u64,
    /// False when another process wrote the checkpoint: the applier's cache is stale.
    pub own: bool,
    /// Time spent building the deferred indexes (0 when another process took over).
    pub index_seconds: f64,
}

/// Applies the log to `generation` from `start` until the head is within `stop_within`
/// events, cut as `sizes` says. Blocking: run it on a blocking thread.
pub(crate) fn run(
    path: PathBuf,
    generation: i64,
    mut applier: Applier,
    start: u64,
    stop_within: u64,
    sizes: Sizes,
) -> Result<Bulk> {
    let (tx, rx) = mpsc::sync_channel::<Result<Vec<Envelope>>>(2);
    let reader_path = path.clone();
    let reader = std::thread::Builder::new()
        .name("rebuild-reader".into())
        .spawn(move || {
            if let Err(e) = read_loop(&reader_path, start, stop_within, sizes.read, &tx) {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(|e| ProjectionError::Worker(format!("rebuild reader thread: {e}")))?;

    let conn = open(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // A 32 MiB page cache holds what one transaction touches (released after each commit,
    // see `commit`), so it is full from the first transactions on; NORMAL sync is
    // safe in WAL mode (no corruption) and a lost tail of batches is simply redone from the
    // checkpoint that committed with it.
    // A WAL checkpoint every 64 MiB instead of SQLite's 4 MiB: pages rewritten by several
    // batches (entity rows, the tables' right edges) are copied into the database once.
    conn.execute_batch(
        "PRAGMA cache_size = -32768; PRAGMA synchronous = NORMAL; \
         PRAGMA wal_autocheckpoint = 16384;",
    )?;
    let mut conn = conn;
    let name = consumer_name(generation);
    let mut checkpoint = start;
    let mut own = true;
    let mut open: Option<Transaction> = None;
    let outcome = (|| -> Result<()> {
        for events in rx.iter() {
            let events = events?;
            let Some(last) = events.last().map(|e| e.position) else {
                continue;
            };
            let tx = match open.as_mut() {
                Some(tx) => tx,
                None => {
                    conn.execute_batch("BEGIN IMMEDIATE")?;
                    let stored = stored_checkpoint(&conn, &name)?;
                    if stored != checkpoint {
                        conn.execute_batch("ROLLBACK")?;
                        // Someone else is building this generation; let the generic runner
                        // go on from what they committed.
                        checkpoint = stored;
                        own = false;
                        return Ok(());
                    }
                    open.insert(Transaction {
                        opened: Instant::now(),
                        applied: checkpoint,
                        events: 0,
                    })
                }
            };
            if events[0].position != tx.applied + 1 {
                return Err(ProjectionError::Gap {
                    checkpoint: tx.applied,
                    next: events[0].position,
                });
            }
            // On a direct connection the applier never waits: the first poll finishes it.
            applier
                .apply_events(&mut Conn::Lite(&mut conn), &events)
                .now_or_never()
                .ok_or_else(|| ProjectionError::Worker("bulk apply did not complete".into()))??;
            tx.applied = last;
            tx.events += events.len();
            if tx.events >= sizes.commit || tx.opened.elapsed() >= COMMIT_AFTER {
                commit(&mut conn, &name, &mut applier, last)?;
                checkpoint = last;
                open = None;
            } else if applier.over_budget() {
                // More rows than the budget: write them in the open transaction (it commits
                // on its usual schedule) and let the flush forget them.
                applier
                    .flush(&mut Conn::Lite(&mut conn))
                    .now_or_never()
                    .ok_or_else(|| {
                        ProjectionError::Worker("bulk flush did not complete".into())
                    })??;
            }
        }
        if let Some(tx) = open.take() {
            commit(&mut conn, &name, &mut applier, tx.applied)?;
            checkpoint = tx.applied;
        }
        Ok(())
    })();
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    // Dropping the receiver stops the reader at its next send.
    drop(rx);
    let _ = reader.join();
    outcome?;
    let indexing = Instant::now();
    // Everything is written, so the row caches only save the generic runner a few reads of
    // the last events; dropping them here keeps them from adding to the index builds' peak.
    applier.forget();
    if own {
        // The deferred indexes, on this connection: it maps nothing, and SQLite's sorter
        // keeps sorted runs of at most the cache size in memory and merges them from
        // temporary files, so a 4 MiB cache bounds it whatever the tables' size (1,000,000
        // events: 0.70-0.88 s and 131 MB peak, against 1.02-1.16 s and 141-147 MB with 16 MiB).
        // (The runner's own call afterwards finds the indexes and does nothing.)
        conn.execute_batch("PRAGMA cache_size = -4096;")?;
        // The reader has stopped, so its core can sort: SQLite's sorter hands sorted runs to
        // a helper thread (1,000,000 events: indexes 1.25 s instead of 1.5 s).
        conn.execute_batch("PRAGMA threads = 2;")?;
        model::create_indexes(&mut Conn::Lite(&mut conn), generation)
            .now_or_never()
            .ok_or_else(|| ProjectionError::Worker("index build did not complete".into()))??;
    }
    Ok(Bulk {
        applier,
        checkpoint,
        own,
        index_seconds: indexing.elapsed().as_secs_f64(),
    })
}

/// Drops every table of `generation` on a direct connection with a 4 MiB cache, closed when
/// done, so the pages a drop walks leave no memory behind.
pub(crate) fn drop_generation(path: &std::path::Path, generation: i64) -> Result<()> {
    let mut conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.execute_batch("PRAGMA cache_size = -4096;")?;
    model::drop_tables(&mut Conn::Lite(&mut conn), generation)
        .now_or_never()
        .ok_or_else(|| ProjectionError::Worker("dropping a generation did not complete".into()))?
}

fn stored_checkpoint(conn: &rusqlite::Connection, name: &str) -> Result<u64> {
    Ok(caretrail_store::bulk::read_checkpoint(conn, name)?)
}

/// Writes what the open transaction's batches changed, advances the checkpoint to `last` and
/// commits.
fn commit(
    conn: &mut rusqlite::Connection,
    name: &str,
    applier: &mut Applier,
    last: u64,
) -> Result<()> {
    applier
        .flush(&mut Conn::Lite(conn))
        .now_or_never()
        .ok_or_else(|| ProjectionError::Worker("bulk flush did not complete".into()))??;
    caretrail_store::bulk::write_checkpoint(conn, name, last)?;
    conn.execute_batch("COMMIT")?;
    // Everything the transaction wrote is now in the WAL; the pages it left in the cache are
    // mostly cold (appended timeline and visit rows), and keeping them until the cache's bound
    // evicts them made the cache, and the rebuild's memory, grow with the log. Releasing them
    // costs re-reading the few hot pages (entity rows, index interiors) once per transaction.
    conn.execute_batch("PRAGMA shrink_memory")?;
    Ok(())
}

/// Reads and decodes batches until the head is within `stop_within` of what was read.
fn read_loop(
    path: &std::path::Path,
    start: u64,
    stop_within: u64,
    batch: usize,
    tx: &mpsc::SyncSender<Result<Vec<Envelope>>>,
) -> Result<()> {
    let mut reader = LogReader::open(path)?;
    let mut after = start;
    loop {
        if reader.head()?.saturating_sub(after) <= stop_within {
            return Ok(());
        }
        let mut out = Vec::with_capacity(batch);
        let last = reader.read(after, batch, |row| {
            let event =
                model::decode_event(row.position, row.event_type, row.schema_version, row.data)?;
            out.push(Envelope {
                position: row.position,
                event_id: row.event_id,
                stream_id: row.stream_id.to_owned(),
                event_type: row.event_type.to_owned(),
                business_date: row.business_date,
                recorded_at_us: row.recorded_at_us,
                actor_id: row.actor_id.to_owned(),
                actor_role: row.actor_role.to_owned(),
                event,
            });
            Ok::<_, ProjectionError>(())
        })?;
        let Some(last) = last else {
            return Ok(());
        };
        after = last;
        reader.release_memory()?;
        if tx.send(Ok(out)).is_err() {
            return Ok(());
        }
    }
}
