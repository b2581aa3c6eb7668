//! The projection runner: a checkpointed, exactly-once consumer of the log that keeps the
//! dashboard tables current, rebuilds them without downtime, and reports its lag.
//!
//! Every batch is applied in the transaction opened by [`EventStore::begin_consumer`], and the
//! checkpoint advances in that same transaction: after a crash the tables and the checkpoint
//! agree, and the runner resumes after the last committed batch. Events at or below the
//! checkpoint read inside the transaction are skipped, so applying an overlapping batch twice
//! (two runner processes, a retried batch) changes nothing.
//!
//! Tables are versioned by *generation* (`rm{g}_visits`, ...). One row of `projection_meta`
//! names the generation that serves queries and the one being built, and each generation has
//! its own checkpoint (`projection.dashboards.g{g}`). A rebuild builds a new generation from
//! position 0 in big batches while the old one keeps serving (and, when the code is the same,
//! keeps following the log), then applies the last few events and flips the pointer in one
//! transaction; the old generation is dropped afterwards. A new generation's tables start
//! with only the indexes its handlers read through; the others are built in one sorted pass
//! each just before the switch. On a SQLite file the bulk of a rebuild runs on direct
//! connections in two threads ([`crate::bulk`]). A change of [`CODE_VERSION`] starts
//! a rebuild when the runner starts.
//!
//! The live runner ([`Projector::run`]) never stops on an error: it reports as `projector` in
//! the store's health registry (its position after every batch, and a liveness check when the
//! log is quiet), retries after a capped exponential backoff, and logs only when its state
//! changes. Every unit of its database work (one consumer transaction, one read) is abandoned
//! after the store's `background_unit` deadline, so a connection gone silent cannot wedge it;
//! an abandoned transaction commits nothing and its cached rows are forgotten.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use caretrail_store::{
    EventFilter, EventStore, Expect, LogQuery, RecordedEvent, StoreError, subscribe,
};
use futures::FutureExt;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::error::{ProjectionError, Result};
use crate::model::{self, Applier, Envelope, Indexes};
use crate::query::ReadModels;
use crate::sql::{Backend, ColType, Conn, ReadModelDb, Val, cell};

/// The name of the dashboard projection.
pub const PROJECTION: &str = "dashboards";

/// Bump when the handlers or tables change: a runner that finds another version rebuilds.
pub const CODE_VERSION: i64 = 4;

/// Events per transaction while catching up or rebuilding.
pub const BULK_BATCH: usize = 20_000;

/// Most events per transaction while following the log live.
pub const LIVE_BATCH: usize = 2_000;

/// The shortest time between two live batches. Under a steady command load the log grows by a
/// few events per millisecond; applying them as they come meant one write transaction every
/// few events, each taking SQLite's single write lock from the command writer. Waiting this
/// long after a small batch lets the next one gather what arrives meanwhile; the dashboards
/// lag by at most this much more.
pub const LIVE_PACE: Duration = Duration::from_millis(20);

/// A rebuild stops batching and switches once it is this close to the head.
const SWITCH_DISTANCE: u64 = 2_000;

const META_DDL: &str = "CREATE TABLE IF NOT EXISTS projection_meta (\
    name TEXT PRIMARY KEY, \
    live_generation BIGINT NOT NULL, \
    live_version BIGINT NOT NULL, \
    building_generation BIGINT, \
    building_version BIGINT, \
    next_generation BIGINT NOT NULL)";

/// The checkpoint name of a generation.
pub fn consumer_name(generation: i64) -> String {
    format!("projection.{PROJECTION}.g{generation}")
}

/// What `projection_meta` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// The generation whose tables (`rm{g}_...`) answer queries.
    pub live_generation: i64,
    /// The version of the projection code (`CODE_VERSION`) that built the live generation. another version makes the runner
    /// rebuild.
    pub live_version: i64,
    /// The generation a rebuild is building, if one is in progress (or was interrupted).
    pub building_generation: Option<i64>,
    /// The [`CODE_VERSION`] of the rebuild in progress: a rebuild of the same version resumes
    /// it, another one drops it and starts a new generation.
    pub building_version: Option<i64>,
    /// The number the next rebuild claims for its generation (generations are never reused).
    pub next_generation: i64,
}

pub(crate) async fn read_meta(conn: &mut Conn<'_>) -> Result<Option<Meta>> {
    let sql = format!(
        "SELECT live_generation, live_version, building_generation, building_version, \
         next_generation FROM projection_meta WHERE name = {}",
        conn.backend().param(1)
    );
    let rows = conn
        .fetch(
            &sql,
            &[Val::Text(PROJECTION.into())],
            &[ColType::Text],
            &[ColType::Int; 5],
        )
        .await?;
    let Some(mut row) = rows.into_iter().next() else {
        return Ok(None);
    };
    const TABLE: &str = "projection_meta";
    Ok(Some(Meta {
        live_generation: cell(&mut row, 0, TABLE, "live_generation")?,
        live_version: cell(&mut row, 1, TABLE, "live_version")?,
        building_generation: cell(&mut row, 2, TABLE, "building_generation")?,
        building_version: cell(&mut row, 3, TABLE, "building_version")?,
        next_generation: cell(&mut row, 4, TABLE, "next_generation")?,
    }))
}

/// An applier and the checkpoint it last committed: if the stored checkpoint differs when the
/// next batch starts, someone else wrote the tables and the cached rows are forgotten.
struct Slot {
    applier: Applier,
    committed: Option<u64>,
}

/// How far the dashboards are behind the log.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Lag {
    /// The projection's name (`dashboards`).
    pub projection: &'static str,
    /// The live generation.
    pub generation: i64,
    /// The version of the projection code (`CODE_VERSION`) that built the live generation.
    pub code_version: i64,
    /// The live generation's checkpoint: every event up to this position is applied.
    pub checkpoint: u64,
    /// The log's head position as stored now.
    pub head: u64,
    /// Events stored but not yet applied.
    pub behind_events: u64,
    /// How long the oldest unapplied event has been stored (0 when caught up).
    pub behind_seconds: f64,
    /// A rebuild in progress: `[generation, checkpoint]`.
    // Described as a pair of integers rather than a tuple schema (`prefixItems`), which some
    // OpenAPI tools reject.
    #[schemars(with = "Option<[i64; 2]>")]
    pub rebuilding: Option<(i64, u64)>,
}

/// What a rebuild did.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct RebuildReport {
    /// The generation built, live now.
    pub generation: i64,
    /// The generation it replaced (its tables are dropped, or left behind with a warning when
    /// a reader still held them).
    pub previous_generation: i64,
    /// Events this run applied (fewer than the log's when it resumed an interrupted rebuild).
    pub events: u64,
    /// Wall-clock seconds of the whole rebuild, switch included.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_second: f64,
    /// Of `seconds`: folding the log into the new tables (up to the last few events).
    pub apply_seconds: f64,
    /// Of `seconds`: building the secondary indexes left out while folding.
    pub index_seconds: f64,
}

/// Outcome of one batch attempt.
enum Step {
    Applied(u64),
    /// The live generation changed under us; read the pointer again.
    Moved,
}

/// The projection runner for one store.
pub struct Projector {
    store: Arc<dyn EventStore>,
    db: ReadModelDb,
    live: Mutex<Option<Slot>>,
    bulk_batch: usize,
    /// Events per transaction of the SQLite bulk rebuild.
    bulk_commit: usize,
    /// What each applier may keep in memory.
    budgets: model::Budgets,
}

impl Projector {
    /// Prepares the projection tables in the store's database (idempotent, safe to race).
    #[tracing::instrument(name = "projections.open", skip_all)]
    pub async fn open(store: Arc<dyn EventStore>) -> Result<Projector> {
        let db = ReadModelDb::of_store(store.as_ref());
        let mut pc = db.acquire().await?;
        let mut conn = pc.conn();
        // Two processes may race to create the table on PostgreSQL; the loser's error is
        // harmless once the table exists.
        if let Err(e) = conn.ddl(META_DDL).await {
            tracing::debug!(error = %e, "projection_meta creation raced");
        }
        let b = conn.backend();
        let inserted = conn
            .execute(
                &format!(
                    "INSERT INTO projection_meta (name, live_generation, live_version, \
                     next_generation) VALUES ({}, 1, {}, 2) ON CONFLICT (name) DO NOTHING",
                    b.param(1),
                    b.param(2)
                ),
                &[Val::Text(PROJECTION.into()), Val::Int(CODE_VERSION)],
                &[ColType::Text, ColType::Int],
            )
            .await?;
        if inserted > 0 {
            model::create_tables(&mut conn, 1, Indexes::All).await?;
        } else if let Some(meta) = read_meta(&mut conn).await? {
            // Also covers a crash between inserting the row and creating the tables.
            model::create_tables(&mut conn, meta.live_generation, Indexes::All).await?;
        }
        drop(pc);
        Ok(Projector {
            store,
            db,
            live: Mutex::new(None),
            bulk_batch: BULK_BATCH,
            bulk_commit: crate::bulk::COMMIT_EVENTS,
            budgets: model::Budgets::default(),
        })
    }

    /// Sets the events per transaction for catch-up and rebuild (tests make them small).
    pub fn with_bulk_batch(mut self, n: usize) -> Self {
        self.bulk_batch = n.max(1);
        self.bulk_commit = n.max(1);
        self
    }

    /// Sets the events per transaction of the SQLite bulk rebuild alone, after
    /// [`Projector::with_bulk_batch`] (tests: small read batches in long transactions).
    pub fn with_bulk_commit(mut self, n: usize) -> Self {
        self.bulk_commit = n.max(1);
        self
    }

    /// Sets how many entity rows each applier keeps cached (tests make it small so that rows
    /// are written and forgotten mid-transaction and read back).
    pub fn with_row_budget(mut self, rows: usize) -> Self {
        self.budgets.rows = rows;
        self
    }

    /// Sets how many pairing links each applier keeps (tests make it small so that links
    /// start over and are read back).
    pub fn with_link_budget(mut self, links: usize) -> Self {
        self.budgets.links = links;
        self
    }

    fn applier(&self, generation: i64, fresh: bool) -> Applier {
        Applier::new(generation, fresh).with_budgets(self.budgets)
    }

    /// The store whose log this runner follows.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Runs one unit of database work, abandoning it after the store's `background_unit`
    /// deadline: a connection that went silent fails the unit instead of wedging the runner.
    async fn unit<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let deadline = self.store.options().timeouts.background_unit;
        tokio::time::timeout(deadline, work)
            .await
            .unwrap_or(Err(ProjectionError::Store(StoreError::Unresponsive(
                deadline,
            ))))
    }

    /// The live read models, for queries.
    pub fn read_models(&self) -> ReadModels {
        ReadModels::live(self.store.clone())
    }

    /// What `projection_meta` says now: the live generation, a rebuild in progress, the next
    /// generation number. An error if the row is missing (the runner creates it when opened).
    pub async fn meta(&self) -> Result<Meta> {
        let mut pc = self.db.acquire().await?;
        read_meta(&mut pc.conn())
            .await?
            .ok_or_else(|| ProjectionError::InvalidQuery("projection_meta is empty".into()))
    }

    /// The live generation and its checkpoint: the state of the live tables, which changes
    /// exactly when an answer computed from them may change (what cached answers are keyed by).
    pub async fn live_version(&self) -> Result<(i64, u64)> {
        let generation = self.meta().await?.live_generation;
        let checkpoint = self.store.checkpoint(&consumer_name(generation)).await?;
        Ok((generation, checkpoint))
    }

    /// Applies one batch to `generation` in one consumer transaction.
    async fn step(
        &self,
        generation: i64,
        live: bool,
        slot: &mut Slot,
        events: &[Envelope],
        switch: bool,
    ) -> Result<Step> {
        let mut tx = self
            .store
            .begin_consumer(&consumer_name(generation))
            .await?;
        let checkpoint = tx.position();
        let outcome: Result<Option<u64>> = async {
            let mut conn = self.db.consumer_conn(&mut tx)?;
            // SQLite's page cache (PostgreSQL's buffers are the server's): read-model writes
            // touch B-tree pages all over the tables (keys are random UUIDs); SQLite's default
            // 2 MB page cache re-reads them from the OS for every batch.
            // A rebuild's steps get a small one: on a SQLite file they only apply what the
            // bulk phase left (at most about `SWITCH_DISTANCE` events), and a 32 MiB cache
            // there filled with the random pages those events touch, more of them the
            // larger the tables: the tail added about 20 MB to the rebuild's memory at 1M
            // events and 37 MB at 4.4M, on top of a bulk phase that stays flat (with
            // 4 MiB: 9-12 MB at both sizes).
            conn.page_cache(if live { 32 * 1024 } else { 4 * 1024 })
                .await?;
            if live {
                let meta = read_meta(&mut conn).await?;
                if meta.map(|m| m.live_generation) != Some(generation) {
                    return Ok(None);
                }
            }
            // Taken, not read: if this step is abandoned half-way (a deadline), the rows it
            // cached must not be trusted by the next one.
            if slot.committed.take() != Some(checkpoint) {
                slot.applier.forget();
            }
            let todo: &[Envelope] = match events.iter().position(|e| e.position > checkpoint) {
                Some(i) => &events[i..],
                None => &[],
            };
            if let Some(first) = todo.first()
                && first.position != checkpoint + 1
            {
                return Err(ProjectionError::Gap {
                    checkpoint,
                    next: first.position,
                });
            }
            slot.applier.apply_batch(&mut conn, todo).await?;
            if switch {
                let b = conn.backend();
                conn.execute(
                    &format!(
                        "UPDATE projection_meta SET live_generation = {}, live_version = {}, \
                         building_generation = NULL, building_version = NULL WHERE name = {}",
                        b.param(1),
                        b.param(2),
                        b.param(3)
                    ),
                    &[
                        Val::Int(generation),
                        Val::Int(CODE_VERSION),
                        Val::Text(PROJECTION.into()),
                    ],
                    &[ColType::Int, ColType::Int, ColType::Text],
                )
                .await?;
            }
            Ok(Some(todo.last().map_or(checkpoint, |e| e.position)))
        }
        .await;
        match outcome {
            Ok(Some(last)) => match tx.commit(last).await {
                Ok(()) => {
                    slot.committed = Some(last);
                    Ok(Step::Applied(last))
                }
                Err(e) => {
                    slot.committed = None;
                    Err(e.into())
                }
            },
            Ok(None) => {
                let _ = tx.rollback().await;
                Ok(Step::Moved)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                slot.committed = None;
                Err(e)
            }
        }
    }

    /// Reads and decodes up to `limit` events after `after` (and at most up to `up_to`).
    async fn read(&self, after: u64, up_to: Option<u64>, limit: usize) -> Result<Vec<Envelope>> {
        let events = self
            .store
            .read_log(&LogQuery {
                after,
                up_to,
                filter: EventFilter::all(),
                limit,
            })
            .await?;
        events.into_iter().map(model::decode).collect()
    }

    /// Applies stored events to the live generation, rebuilding first when the code version
    /// changed.
    async fn apply_live(&self, events: Vec<Envelope>) -> Result<()> {
        loop {
            let meta = self.unit(self.meta()).await?;
            if meta.live_version != CODE_VERSION {
                self.rebuild().await?;
                continue;
            }
            let g = meta.live_generation;
            let mut guard = self.live.lock().await;
            let slot = match guard.as_mut() {
                Some(s) if s.applier.generation() == g => s,
                _ => guard.insert(Slot {
                    applier: self.applier(g, false),
                    committed: None,
                }),
            };
            match self.unit(self.step(g, true, slot, &events, false)).await? {
                Step::Applied(_) => return Ok(()),
                Step::Moved => continue,
            }
        }
    }

    /// Brings the live read models up to the head as it is now; returns the checkpoint.
    #[tracing::instrument(name = "projections.catch_up", skip_all)]
    pub async fn catch_up(&self) -> Result<u64> {
        loop {
            let meta = self.unit(self.meta()).await?;
            if meta.live_version != CODE_VERSION {
                self.rebuild().await?;
                continue;
            }
            let (checkpoint, head) = self
                .unit(async {
                    let checkpoint = self
                        .store
                        .checkpoint(&consumer_name(meta.live_generation))
                        .await?;
                    Ok((checkpoint, self.store.head().await?.position))
                })
                .await?;
            if checkpoint >= head {
                return Ok(checkpoint);
            }
            let events = self
                .unit(self.read(checkpoint, Some(head), self.bulk_batch))
                .await?;
            self.apply_live(events).await?;
        }
    }

    /// Follows the log until `shutdown` resolves: catches up, then applies what the
    /// subscription delivers in batches of what is ready. It reports as `projector` in the
    /// store's health registry; errors (a full disk, a lost database, a dropped generation after
    /// a switch) are retried after a capped exponential backoff until they pass, so this
    /// returns only at shutdown.
    #[tracing::instrument(name = "projections.run", skip_all)]
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let poll = self.store.options().poll_interval;
        let task = self
            .store
            .health()
            .register("projector", Expect::FollowsLog { every: poll * 2 });
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let work = async {
                let mut applied = self.catch_up().await?;
                task.at(applied);
                let mut sub = subscribe(self.store.clone(), applied, EventFilter::all());
                loop {
                    let first = match tokio::time::timeout(poll * 2, sub.next()).await {
                        Ok(e) => e?,
                        Err(_) => {
                            // A quiet log: prove the database still answers before saying
                            // so, since a silent connection looks just as quiet.
                            self.unit(async { Ok(self.store.head().await?) }).await?;
                            task.at(applied);
                            continue;
                        }
                    };
                    let mut batch: Vec<RecordedEvent> = vec![first];
                    while batch.len() < LIVE_BATCH {
                        match sub.next().now_or_never() {
                            Some(Ok(e)) => batch.push(e),
                            Some(Err(e)) => return Err::<(), _>(ProjectionError::from(e)),
                            None => break,
                        }
                    }
                    let full = batch.len() >= LIVE_BATCH;
                    let decoded = batch
                        .into_iter()
                        .map(model::decode)
                        .collect::<Result<Vec<_>>>()?;
                    let last = decoded.last().map_or(applied, |e| e.position);
                    self.apply_live(decoded).await?;
                    applied = last;
                    task.at(applied);
                    if !full {
                        tokio::time::sleep(LIVE_PACE).await;
                    }
                }
            };
            let failed = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                r = work => match r {
                    Ok(()) => continue,
                    Err(e) => e,
                },
            };
            let delay = task.failed(failed.kind(), &failed);
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Lag of the live generation (and progress of a rebuild in flight).
    pub async fn lag(&self) -> Result<Lag> {
        let meta = self.meta().await?;
        let checkpoint = self
            .store
            .checkpoint(&consumer_name(meta.live_generation))
            .await?;
        let head = self.store.head().await?;
        let behind = head.position.saturating_sub(checkpoint);
        let behind_seconds = if behind == 0 {
            0.0
        } else {
            let next = self
                .store
                .read_log(&LogQuery {
                    after: checkpoint,
                    up_to: Some(checkpoint + 1),
                    filter: EventFilter::all(),
                    limit: 1,
                })
                .await?;
            next.first().map_or(0.0, |e| {
                (chrono::Utc::now() - e.recorded_at)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1e6
            })
        };
        let rebuilding = match meta.building_generation {
            Some(g) => Some((g, self.store.checkpoint(&consumer_name(g)).await?)),
            None => None,
        };
        Ok(Lag {
            projection: PROJECTION,
            generation: meta.live_generation,
            code_version: meta.live_version,
            checkpoint,
            head: head.position,
            behind_events: behind,
            behind_seconds,
            rebuilding,
        })
    }

    /// Claims the generation to build: resumes one of this code version, or starts a new one.
    async fn claim_build(&self) -> Result<(i64, i64)> {
        // Holds SQLite's write lock from its `BEGIN IMMEDIATE`, and the meta row's lock on
        // PostgreSQL, until the claim commits.
        let mut tx = self.unit(self.db.begin_write()).await?;
        let claimed: (i64, i64, Option<i64>) = self
            .unit(async {
                tx.lock_rows("SELECT 1 FROM projection_meta WHERE name = 'dashboards'")
                    .await?;
                let mut conn = tx.conn();
                let meta = read_meta(&mut conn).await?.ok_or_else(|| {
                    ProjectionError::InvalidQuery("projection_meta is empty".into())
                })?;
                if let (Some(g), Some(CODE_VERSION)) =
                    (meta.building_generation, meta.building_version)
                {
                    return Ok((g, meta.live_generation, None));
                }
                let g = meta.next_generation;
                let b = conn.backend();
                conn.execute(
                    &format!(
                        "UPDATE projection_meta SET building_generation = {}, \
                         building_version = {}, next_generation = {} WHERE name = {}",
                        b.param(1),
                        b.param(2),
                        b.param(3),
                        b.param(4)
                    ),
                    &[
                        Val::Int(g),
                        Val::Int(CODE_VERSION),
                        Val::Int(g + 1),
                        Val::Text(PROJECTION.into()),
                    ],
                    &[ColType::Int, ColType::Int, ColType::Int, ColType::Text],
                )
                .await?;
                Ok((g, meta.live_generation, meta.building_generation))
            })
            .await?;
        self.unit(tx.commit()).await?;
        let (g, live, abandoned) = claimed;
        let mut pc = self.db.acquire().await?;
        let mut conn = pc.conn();
        if let Some(old) = abandoned {
            model::drop_tables(&mut conn, old).await?;
        }
        model::create_tables(&mut conn, g, Indexes::WhileBuilding).await?;
        Ok((g, live))
    }

    /// Builds the read models from position 0 into a new generation while the current one
    /// keeps serving, then switches atomically and drops the old tables. Resumes a rebuild
    /// that a crash interrupted.
    #[tracing::instrument(name = "projections.rebuild", skip_all)]
    pub async fn rebuild(&self) -> Result<RebuildReport> {
        let started = Instant::now();
        let (generation, previous) = self.claim_build().await?;
        let start = self.store.checkpoint(&consumer_name(generation)).await?;
        tracing::info!(generation, resume_from = start, "rebuilding read models");
        let mut slot = Slot {
            applier: self.applier(generation, start == 0),
            committed: Some(start),
        };
        let mut checkpoint = start;
        let mut bulk_index_seconds = 0.0;
        if let Some(path) = self.store.sqlite_file() {
            let applier = std::mem::replace(&mut slot.applier, self.applier(generation, false));
            let sizes = crate::bulk::Sizes {
                read: self.bulk_batch.min(crate::bulk::READ_BATCH),
                commit: self.bulk_commit,
            };
            let bulk = tokio::task::spawn_blocking(move || {
                crate::bulk::run(path, generation, applier, start, SWITCH_DISTANCE, sizes)
            })
            .await
            .map_err(|e| ProjectionError::Worker(e.to_string()))??;
            slot.applier = bulk.applier;
            slot.committed = bulk.own.then_some(bulk.checkpoint);
            checkpoint = bulk.checkpoint;
            bulk_index_seconds = bulk.index_seconds;
        } else if self.db.backend() == Backend::Postgres {
            let applier = std::mem::replace(&mut slot.applier, self.applier(generation, false));
            let sizes = crate::bulk::Sizes {
                read: self.bulk_batch.min(crate::bulk::READ_BATCH),
                commit: self.bulk_commit,
            };
            let head = self.store.head().await?.position;
            let bulk = crate::bulk::postgres::run(
                self.store.clone(),
                &self.db,
                generation,
                applier,
                start,
                head,
                sizes,
            )
            .await?;
            slot.applier = bulk.applier;
            slot.committed = bulk.own.then_some(bulk.checkpoint);
            checkpoint = bulk.checkpoint;
        }
        loop {
            let head = self.store.head().await?.position;
            if head.saturating_sub(checkpoint) <= SWITCH_DISTANCE {
                break;
            }
            let events = self
                .unit(self.read(checkpoint, Some(head), self.bulk_batch))
                .await?;
            match self
                .unit(self.step(generation, false, &mut slot, &events, false))
                .await?
            {
                Step::Applied(p) => checkpoint = p,
                Step::Moved => {}
            }
        }
        let apply_seconds = started.elapsed().as_secs_f64() - bulk_index_seconds;
        // The secondary indexes left out while building, each in one sorted pass.
        // An index build over millions of rows may take longer than the statement timeout
        // that keeps everything else from hanging; it lifts it for itself only.
        let mut long = self.db.unbounded().await?;
        model::create_indexes(&mut long.conn(), generation).await?;
        long.finish().await?;
        // On a SQLite file the bulk phase built them (the call above found them) and timed it.
        let index_seconds = started.elapsed().as_secs_f64() - apply_seconds;
        // The tail and the switch in one transaction. The consumer transaction holds the
        // SQLite write lock, so no event can be appended between reading the head and the
        // switch; on PostgreSQL later events are simply applied by the live runner.
        loop {
            let head = self.store.head().await?.position;
            let events = self
                .unit(self.read(checkpoint, Some(head), self.bulk_batch))
                .await?;
            let done = events.last().is_none_or(|e| e.position >= head);
            match self
                .unit(self.step(generation, false, &mut slot, &events, done))
                .await?
            {
                Step::Applied(p) => checkpoint = p,
                Step::Moved => {}
            }
            if done {
                break;
            }
        }
        if previous != generation {
            let dropped = match self.store.sqlite_file() {
                // On a SQLite file, a direct connection with a small cache drops the old
                // generation and is then closed: dropping walks every page of its tables, and
                // through a pooled connection that cost 17 MB of memory per 1M events of
                // generation, kept for as long as the pool kept the connection.
                Some(path) => tokio::task::spawn_blocking(move || {
                    crate::bulk::drop_generation(&path, previous)
                })
                .await
                .map_err(|e| ProjectionError::Worker(e.to_string()))
                .and_then(|r| r),
                None => {
                    let mut pc = self.db.acquire().await?;
                    model::drop_tables(&mut pc.conn(), previous).await
                }
            };
            if let Err(e) = dropped {
                // A reader may still hold the old tables; the next rebuild drops nothing it
                // needs, so a leftover generation is only wasted space.
                tracing::warn!(code = e.code(), "old generation not dropped");
            }
        }
        *self.live.lock().await = None;
        let seconds = started.elapsed().as_secs_f64();
        let events = checkpoint - start;
        Ok(RebuildReport {
            generation,
            previous_generation: previous,
            events,
            seconds,
            events_per_second: events as f64 / seconds.max(1e-9),
            apply_seconds,
            index_seconds,
        })
    }
}
