//! The PostgreSQL backend, for production.
//!
//! Every append transaction first takes one transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`), so appends from every server process on the database run one at a
//! time: positions are head + 1, head + 2, ..., never skipped (a rolled-back transaction took
//! no number, unlike a sequence), and they become visible in position order, because a
//! transaction's commit is visible before its locks are released and the next appender can only
//! start after that. Group commit makes one lock round per batch rather than per append, and
//! the server-side function `caretrail_append` makes that round one round trip (see
//! `postgres/append.rs`).
//! `pg_notify` inside the transaction wakes subscribers in other processes at commit; it is a
//! hint only, subscribers always read the log itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::health::{Expect, Health, TaskHealth};
use crate::pool::bounded;
use crate::types::{AppendRequest, AppendResult, Head, LogQuery, RecordedEvent, StreamId};
use crate::writer::{self, LogNotifier, WriterHandle};
use crate::{ConsumerTx, ConsumerTxInner, EventStore, StoreOptions};

mod append;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock every appender holds for the length of its transaction ("caretrl1"); an
/// operator finds the current appender as `objid` in `pg_locks`.
pub const APPEND_LOCK: i64 = 0x6361_7265_7472_6c31;

/// Opens an append transaction and takes the append lock (`APPEND_LOCK`) in one round trip,
/// for a writer that other processes' appends kept from committing without it.
const BEGIN_AND_LOCK: &str = "BEGIN; SELECT pg_advisory_xact_lock(7161130662566718513)";

/// The LISTEN/NOTIFY channel carrying the new head after each commit.
pub const NOTIFY_CHANNEL: &str = "caretrail_events";

macro_rules! columns {
    () => {
        "position, stream_id, stream_version, event_id, event_type, schema_version, data, \
         actor_id, actor_role, command_id, correlation_id, causation_id, business_date, \
         recorded_at, leaf_hash"
    };
}

/// The PostgreSQL event store.
pub struct PgStore {
    pool: PgPool,
    writer: WriterHandle,
    notifier: Arc<LogNotifier>,
    options: StoreOptions,
    health: Arc<Health>,
    /// The table sets applied since the store was opened.
    tables: crate::tables::Registered,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Connects, migrates, and starts the writer and the NOTIFY listener.
    #[tracing::instrument(name = "store.postgres.connect", skip_all)]
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self> {
        let timeouts = options.timeouts;
        let connect = crate::pool::pg_connect(url, timeouts)?;
        let pool = crate::pool::postgres(options.read_connections, timeouts)
            .connect_with(connect.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        // The writer gets its own small pool: a connection that breaks is replaced rather than
        // wedging the writer.
        let write_pool = crate::pool::postgres(1, timeouts)
            .connect_with(connect.clone())
            .await?;
        // So does the LISTEN connection: sqlx's listener keeps the connection it takes for as
        // long as it lives, which would quietly leave the read pool one short.
        let listen_pool = crate::pool::postgres(1, timeouts).connect_lazy_with(connect);
        let head = read_head(&pool).await?;
        let notifier = Arc::new(LogNotifier::new(head.position, options.broadcast_capacity));
        let health = Arc::new(Health::new(notifier.watch_head()));
        let writer = writer::spawn(
            append::PgWriter::new(write_pool, timeouts.deadline()),
            options.group_commit,
            notifier.clone(),
            health.register("store.writer", Expect::OnDemand),
        );
        let listener = tokio::spawn(listen(
            listen_pool,
            pool.clone(),
            notifier.clone(),
            timeouts.deadline(),
            health.register("store.listener", Expect::OnDemand),
        ));
        Ok(Self {
            pool,
            writer,
            notifier,
            options,
            health,
            tables: Default::default(),
            listener,
        })
    }

    /// How long one operation may wait on the database.
    fn deadline(&self) -> Duration {
        self.options.timeouts.deadline()
    }

    /// The read pool, for read models kept in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// How long the LISTEN connection may stay quiet before it is asked whether it still answers:
/// a connection that went silent delivers no notification and no error either.
const LISTEN_CHECK: Duration = Duration::from_secs(10);

/// Follows NOTIFY hints from every process and raises the known head. Losing a hint only
/// delays a subscriber until its next poll, so a failing listener is retried with backoff and
/// reported (`store.listener`), and subscribers meanwhile poll.
/// It stops when the store's read pool is closed (the store is shutting down).
async fn listen(
    pool: PgPool,
    read_pool: PgPool,
    notifier: Arc<LogNotifier>,
    deadline: Duration,
    task: TaskHealth,
) {
    loop {
        let result = async {
            let mut listener = bounded(deadline, async {
                let mut l = PgListener::connect_with(&pool).await?;
                l.listen(NOTIFY_CHANNEL).await?;
                Ok(l)
            })
            .await?;
            task.succeeded();
            loop {
                match tokio::time::timeout(LISTEN_CHECK, listener.recv()).await {
                    Ok(n) => {
                        if let Ok(p) = n?.payload().parse::<u64>() {
                            notifier.advance(p);
                        }
                    }
                    Err(_) => {
                        bounded(deadline, async {
                            sqlx::query("SELECT 1").execute(&mut listener).await?;
                            Ok(())
                        })
                        .await?;
                        task.succeeded();
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), StoreError>(())
        }
        .await;
        if let Err(e) = result {
            if read_pool.is_closed() {
                pool.close().await;
                return;
            }
            tokio::time::sleep(task.failed(e.kind(), &e)).await;
        }
    }
}

fn head_of(row: Option<PgRow>) -> Result<Head> {
    Ok(match row {
        None => Head {
            position: 0,
            recorded_at: None,
        },
        Some(r) => Head {
            position: r.try_get::<i64, _>(0)? as u64,
            recorded_at: Some(r.try_get(1)?),
        },
    })
}

async fn read_head(pool: &PgPool) -> Result<Head> {
    head_of(
        sqlx::query("SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(pool)
            .await?,
    )
}

fn decode(r: &PgRow) -> Result<RecordedEvent> {
    let position = r.try_get::<i64, _>(0)? as u64;
    let hash: &[u8] = r.try_get(14)?;
    Ok(RecordedEvent {
        position,
        stream_id: r.try_get(1)?,
        stream_version: r.try_get::<i64, _>(2)? as u64,
        event_id: r.try_get(3)?,
        event_type: r.try_get(4)?,
        schema_version: r.try_get::<i32, _>(5)? as u32,
        data: r.try_get(6)?,
        actor_id: r.try_get(7)?,
        actor_role: r.try_get(8)?,
        command_id: r.try_get(9)?,
        correlation_id: r.try_get(10)?,
        causation_id: r.try_get(11)?,
        business_date: r.try_get::<Option<NaiveDate>, _>(12)?,
        recorded_at: r.try_get(13)?,
        leaf_hash: hash.try_into().map_err(|_| StoreError::Corrupt {
            position,
            reason: "leaf hash is not 32 bytes".into(),
        })?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventStore for PgStore {
    #[tracing::instrument(name = "store.append", skip_all, fields(backend = "postgres", streams = req.streams.len(), events = req.event_count()))]
    async fn append(&self, req: AppendRequest) -> Result<AppendResult> {
        self.writer.append(req).await
    }

    #[tracing::instrument(name = "store.read_stream", skip_all, fields(backend = "postgres", stream = %stream, from_version))]
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        bounded(self.deadline(), async {
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM events WHERE stream_id = $1 AND stream_version >= $2 \
              ORDER BY stream_version LIMIT $3"
            ))
            .bind(stream.as_str())
            .bind(from_version as i64)
            .bind(limit(max))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(decode).collect()
        })
        .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        bounded(self.deadline(), async {
            let v: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = $1",
            )
            .bind(stream.as_str())
            .fetch_one(&self.pool)
            .await?;
            Ok(v as u64)
        })
        .await
    }

    #[tracing::instrument(name = "store.read_log", skip_all, fields(backend = "postgres", after = q.after, limit = q.limit))]
    async fn read_log(&self, q: &LogQuery) -> Result<Vec<RecordedEvent>> {
        bounded(self.deadline(), async {
            let up_to = q.up_to.map_or(i64::MAX, |p| p as i64);
            let types = &q.filter.event_types;
            let cats = &q.filter.categories;
            let sql = match (types.is_empty(), cats.is_empty()) {
                (true, true) => concat!(
                    "SELECT ",
                    columns!(),
                    " FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3"
                ),
                (false, true) => concat!(
                    "SELECT ",
                    columns!(),
                    " FROM events WHERE position > $1 AND position <= $2 \
                  AND event_type = ANY($4) ORDER BY position LIMIT $3"
                ),
                (true, false) => concat!(
                    "SELECT ",
                    columns!(),
                    " FROM events WHERE position > $1 AND position <= $2 \
                  AND category = ANY($4) ORDER BY position LIMIT $3"
                ),
                (false, false) => concat!(
                    "SELECT ",
                    columns!(),
                    " FROM events WHERE position > $1 AND position <= $2 \
                  AND event_type = ANY($4) AND category = ANY($5) ORDER BY position LIMIT $3"
                ),
            };
            let mut query = sqlx::query(sql)
                .bind(q.after as i64)
                .bind(up_to)
                .bind(limit(q.limit));
            for list in [types, cats] {
                if !list.is_empty() {
                    query = query.bind(list);
                }
            }
            let rows = query.fetch_all(&self.pool).await?;
            rows.iter().map(decode).collect()
        })
        .await
    }

    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>> {
        bounded(self.deadline(), async {
            crate::check_positions(positions)?;
            if positions.is_empty() {
                return Ok(Vec::new());
            }
            let list: Vec<i64> = positions
                .iter()
                .map(|&p| i64::try_from(p).unwrap_or(i64::MAX))
                .collect();
            let rows = sqlx::query(concat!(
                "SELECT ",
                columns!(),
                " FROM events WHERE position = ANY($1) ORDER BY position"
            ))
            .bind(list)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(decode).collect()
        })
        .await
    }

    async fn head(&self) -> Result<Head> {
        bounded(self.deadline(), async { read_head(&self.pool).await }).await
    }

    async fn position_at(&self, t: DateTime<Utc>) -> Result<u64> {
        bounded(self.deadline(), async {
            let p: Option<i64> = sqlx::query_scalar(
                "SELECT position FROM events WHERE recorded_at <= $1 \
             ORDER BY recorded_at DESC, position DESC LIMIT 1",
            )
            .bind(t)
            .fetch_optional(&self.pool)
            .await?;
            Ok(p.unwrap_or(0) as u64)
        })
        .await
    }

    async fn checkpoint(&self, consumer: &str) -> Result<u64> {
        bounded(self.deadline(), async {
            let p: Option<i64> =
                sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE name = $1")
                    .bind(consumer)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(p.unwrap_or(0) as u64)
        })
        .await
    }

    #[tracing::instrument(
        name = "store.begin_consumer",
        skip_all,
        fields(backend = "postgres", consumer)
    )]
    async fn begin_consumer(&self, consumer: &str) -> Result<ConsumerTx> {
        bounded(self.deadline(), async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO consumer_checkpoints (name, position, updated_at) \
             VALUES ($1, 0, now()) ON CONFLICT (name) DO NOTHING",
            )
            .bind(consumer)
            .execute(&mut *tx)
            .await?;
            // The row lock makes a second instance of the same consumer wait until this one
            // commits, and then see its checkpoint: effects are applied once.
            let p: i64 = sqlx::query_scalar(
                "SELECT position FROM consumer_checkpoints WHERE name = $1 FOR UPDATE",
            )
            .bind(consumer)
            .fetch_one(&mut *tx)
            .await?;
            Ok(ConsumerTx::new(
                consumer,
                p as u64,
                ConsumerTxInner::Postgres(tx),
                Some(self.deadline()),
            ))
        })
        .await
    }

    async fn command_result(&self, command_id: Uuid) -> Result<Option<AppendResult>> {
        bounded(self.deadline(), async {
            let stored: Option<String> =
                sqlx::query_scalar("SELECT result FROM commands WHERE command_id = $1")
                    .bind(command_id)
                    .fetch_optional(&self.pool)
                    .await?;
            stored
                .map(|s| {
                    let mut r = crate::types::stored_result(command_id, &s)?;
                    r.deduplicated = true;
                    Ok(r)
                })
                .transpose()
        })
        .await
    }

    async fn tables(&self, set: &'static crate::TableSet) -> Result<crate::Tables> {
        Ok(crate::Tables::Postgres(
            self.tables.postgres(&self.pool, set).await?,
        ))
    }

    fn database(&self) -> crate::Database {
        crate::Database::Postgres(self.pool.clone())
    }

    fn notifier(&self) -> Arc<LogNotifier> {
        self.notifier.clone()
    }

    fn options(&self) -> &StoreOptions {
        &self.options
    }

    fn health(&self) -> &Arc<Health> {
        &self.health
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

pub(crate) async fn commit_checkpoint(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    name: &str,
    position: u64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO consumer_checkpoints (name, position, updated_at) VALUES ($1, $2, now()) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
         updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(position as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_begin_statement_takes_the_append_lock() {
        assert!(super::BEGIN_AND_LOCK.ends_with(&format!("({})", super::APPEND_LOCK)));
    }
}
