//! caretrail's event store: an append-only, gapless, commit-ordered log of events with a
//! per-event RFC 6962 leaf hash, on SQLite (embedded default) and PostgreSQL.
//!
//! Everything a caller needs is the [`EventStore`] trait; [`connect`] picks the backend from a
//! URL. Appends go through one group-commit writer per store ([`writer`]); reads page through
//! storage with bounded memory; [`Subscription`]s catch up from a position and then follow live;
//! [`ConsumerTx`] lets a consumer write its own effects and advance its checkpoint in one
//! transaction.
//!
//! Architecture invariant: this crate knows nothing of the care domain. It stores opaque JSON
//! payloads under stream ids and event types, and never logs payloads (they may hold ciphertext
//! of personal data, and their size is the caller's business).

pub mod bulk;
pub mod error;
pub mod health;
pub mod leaf;
mod plan;
mod pool;
pub mod postgres;
pub mod sqlite;
pub mod subscription;
pub mod tables;
pub mod testing;
pub mod types;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::Stream;

pub use error::{Result, StoreError};
pub use health::{Backoff, Expect, Health, ReadyBounds, TaskHealth, TaskReport, TaskState};
pub use pool::Timeouts;
pub use subscription::Subscription;
pub use tables::{PgTables, SqliteTables, TableSet, Tables};
pub use types::{
    AppendRequest, AppendResult, EventFilter, ExpectedVersion, Head, LogQuery, Metadata, NewEvent,
    RecordedEvent, StreamAppend, StreamId, StreamResult, WrittenEvent,
};
pub use writer::{GroupCommit, LogNotifier};

/// Most positions one [`EventStore::read_positions`] call reads (a timeline page is at most
/// 501).
pub const MAX_POSITIONS: usize = 1_000;

/// Refuses a positions read beyond [`MAX_POSITIONS`].
pub(crate) fn check_positions(positions: &[u64]) -> Result<()> {
    if positions.len() > MAX_POSITIONS {
        return Err(StoreError::InvalidRead(format!(
            "{} positions asked, at most {MAX_POSITIONS} per read",
            positions.len()
        )));
    }
    Ok(())
}

/// Tuning that works without configuration.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// How the writer batches appends into one transaction.
    pub group_commit: GroupCommit,
    /// Connections for reads and consumers (the writer has its own).
    pub read_connections: u32,
    /// Committed batches kept for live subscribers before a slow one must re-read storage.
    pub broadcast_capacity: usize,
    /// How often an idle subscriber re-reads the head from storage, to see appends by other
    /// processes even if a wake-up hint was lost.
    pub poll_interval: Duration,
    /// How long to wait on the database before calling it unavailable.
    pub timeouts: Timeouts,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            group_commit: GroupCommit::default(),
            read_connections: 8,
            broadcast_capacity: 1024,
            poll_interval: Duration::from_millis(500),
            timeouts: Timeouts::default(),
        }
    }
}

/// The event store. Both backends implement it and pass one conformance suite.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends atomically: every stream's expectation holds and all events are stored, or
    /// nothing is. An append whose command id is already stored returns the stored result.
    async fn append(&self, req: AppendRequest) -> Result<AppendResult>;

    /// Up to `limit` events of `stream` with `stream_version >= from_version`, in order.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// The stream's current version (0 when it does not exist).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64>;

    /// One page of the global log (see [`LogQuery`]).
    async fn read_log(&self, query: &LogQuery) -> Result<Vec<RecordedEvent>>;

    /// The events at `positions` (at most [`MAX_POSITIONS`]), in log order; positions with no
    /// event are left out. Read models keep only positions where they point at the log (the
    /// care timeline), so a read model row stays small and the log stays the one copy.
    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>>;

    /// The head as stored now.
    async fn head(&self) -> Result<Head>;

    /// The last position whose event was recorded at or before `t` (0 if none): the log "as
    /// known at" `t` is exactly the events up to it, because record time never decreases.
    async fn position_at(&self, t: DateTime<Utc>) -> Result<u64>;

    /// A consumer's stored checkpoint (0 when it has none).
    async fn checkpoint(&self, consumer: &str) -> Result<u64>;

    /// Opens a transaction for `consumer` holding its checkpoint; effects written through it
    /// and the new checkpoint commit together.
    async fn begin_consumer(&self, consumer: &str) -> Result<ConsumerTx>;

    /// The stored result of an append that carried `command_id`, if there was one. Lets a
    /// command handler answer a retried command before deciding it again (a second decision
    /// might reject what the first one accepted).
    async fn command_result(&self, command_id: uuid::Uuid) -> Result<Option<AppendResult>>;

    /// Brings `set`'s tables up to date in the store's database (the first time this store is
    /// asked for it) and hands out the typed handle on them: the extension point for other
    /// crates' tables (see [`tables`]).
    async fn tables(&self, set: &'static TableSet) -> Result<Tables>;

    /// The raw pool under the store. On its way out: crates keep their tables through
    /// [`EventStore::tables`], consumers write through [`ConsumerTx`], and the projection
    /// rebuild reads the log through [`bulk::LogReader`]; only the read models still use it.
    fn database(&self) -> Database;

    /// Closes the store's connection pools (waiting for connections in use to come back) and,
    /// on SQLite, folds the write-ahead log into the database file, so that a stopped server
    /// leaves one self-contained file; see [`Database::close`]. Every table that shares the
    /// store's pool (read models, keys, tokens, audit) is closed with it. `Ok(false)` when
    /// another connection kept part of the log.
    async fn close(&self) -> Result<bool> {
        self.database().close().await
    }

    /// The database file of a SQLite store, when a second connection can open it (not an
    /// in-memory database): what [`bulk::LogReader::open`] opens. `None` on PostgreSQL.
    fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// The in-process wake-up source for subscribers.
    fn notifier(&self) -> Arc<LogNotifier>;

    /// The store's tuning.
    fn options(&self) -> &StoreOptions;

    /// The health registry of this store's background tasks: its writer registers there, and
    /// so do the consumers that follow it (projector, audit tree, checkpointer).
    fn health(&self) -> &Arc<Health>;

    /// Which backend this is (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;
}

/// A handle on the database under a store: each backend's connection pool.
#[derive(Clone, Debug)]
pub enum Database {
    /// The SQLite backend's pool.
    Sqlite(sqlx::SqlitePool),
    /// The PostgreSQL backend's pool.
    Postgres(sqlx::PgPool),
}

impl Database {
    /// Closes the pool (waiting for connections in use to come back) and, on SQLite, folds
    /// the write-ahead log into the database file and empties it from a fresh connection, so
    /// that a stopped server leaves one self-contained file (copying only the `.db` of a
    /// database whose log still holds committed frames gives a broken copy). The fold runs
    /// after the close because an idle pooled connection can still hold a read snapshot that
    /// keeps the log. `Ok(false)` when another connection (another pool on the same file, or
    /// another process) kept part of the log.
    pub async fn close(&self) -> Result<bool> {
        match self {
            Database::Sqlite(pool) => {
                let options = (*pool.connect_options()).clone();
                pool.close().await;
                use sqlx::ConnectOptions;
                let mut conn = options.connect().await?;
                let busy: i64 = sqlx::query_scalar("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&mut conn)
                    .await?;
                use sqlx::Connection;
                conn.close().await?;
                Ok(busy == 0)
            }
            Database::Postgres(pool) => {
                pool.close().await;
                Ok(true)
            }
        }
    }
}

/// A consumer's transaction: effects and checkpoint commit together, or neither does.
pub struct ConsumerTx {
    name: String,
    position: u64,
    inner: ConsumerTxInner,
    /// How long its commit or rollback may wait on the database (PostgreSQL only).
    deadline: Option<Duration>,
}

/// The backend transaction under a [`ConsumerTx`], for writing effects with backend SQL.
pub enum ConsumerTxInner {
    /// A transaction on a SQLite store (begun `IMMEDIATE`, holding the write lock).
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// A transaction on a PostgreSQL store.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl ConsumerTx {
    pub(crate) fn new(
        name: &str,
        position: u64,
        inner: ConsumerTxInner,
        deadline: Option<Duration>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            position,
            inner,
            deadline,
        }
    }

    /// The checkpoint when the transaction began: the consumer has applied every event up to it.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The transaction, to write effects in it.
    pub fn inner(&mut self) -> &mut ConsumerTxInner {
        &mut self.inner
    }

    /// The transaction's connection on a SQLite store, to write effects from code written
    /// for SQLite ([`tables`]); [`StoreError::WrongBackend`] on PostgreSQL.
    pub fn sqlite(&mut self) -> Result<&mut sqlx::SqliteConnection> {
        match &mut self.inner {
            ConsumerTxInner::Sqlite(tx) => Ok(&mut **tx),
            ConsumerTxInner::Postgres(_) => Err(StoreError::WrongBackend {
                asked: "sqlite",
                actual: "postgres",
            }),
        }
    }

    /// The transaction's connection on a PostgreSQL store; [`StoreError::WrongBackend`] on
    /// SQLite.
    pub fn postgres(&mut self) -> Result<&mut sqlx::PgConnection> {
        match &mut self.inner {
            ConsumerTxInner::Postgres(tx) => Ok(&mut **tx),
            ConsumerTxInner::Sqlite(_) => Err(StoreError::WrongBackend {
                asked: "postgres",
                actual: "sqlite",
            }),
        }
    }

    /// Stores `position` as the checkpoint and commits the effects with it.
    pub async fn commit(self, position: u64) -> Result<()> {
        if position < self.position {
            return Err(StoreError::CheckpointConflict {
                name: self.name,
                expected: self.position,
                actual: position,
            });
        }
        match self.inner {
            ConsumerTxInner::Sqlite(tx) => {
                sqlite::commit_checkpoint(tx, &self.name, position).await
            }
            ConsumerTxInner::Postgres(tx) => {
                let commit = postgres::commit_checkpoint(tx, &self.name, position);
                match self.deadline {
                    Some(d) => pool::bounded(d, commit).await,
                    None => commit.await,
                }
            }
        }
    }

    /// Discards the effects; the checkpoint stays where it was.
    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            ConsumerTxInner::Sqlite(tx) => tx.rollback().await?,
            ConsumerTxInner::Postgres(tx) => {
                let rollback = async { Ok(tx.rollback().await?) };
                match self.deadline {
                    Some(d) => pool::bounded(d, rollback).await?,
                    None => rollback.await?,
                }
            }
        }
        Ok(())
    }
}

/// Opens the store at `url`, creating and migrating it as needed: `sqlite://PATH` (or a bare
/// path) for the embedded default, `postgres://...` for PostgreSQL.
pub async fn connect(url: &str, options: StoreOptions) -> Result<Arc<dyn EventStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, options).await?))
    } else if url.starts_with("sqlite:") || !url.contains("://") {
        Ok(Arc::new(sqlite::SqliteStore::open(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Streams the log as described by `query`, fetching `query.limit` events per page, so memory
/// stays bounded however long the log is. `query.up_to` defaults to the head when the stream
/// starts, so the stream ends.
///
/// On a SQLite file, a direct connection on a blocking thread reads the pages and decodes them
/// ahead of the consumer ([`sqlite`]). Otherwise, without a filter, positions are gapless, so
/// the pages are known ranges in advance: the next pages are fetched (and decoded, on other
/// tasks) while the current one is consumed, which keeps both the database and the decoder
/// busy. Filtered reads page one after another.
pub fn stream_log(
    store: Arc<dyn EventStore>,
    query: LogQuery,
) -> impl Stream<Item = Result<RecordedEvent>> + Send {
    use futures::StreamExt;
    if let Some(path) = store.sqlite_file() {
        return sqlite::stream_log(path, query).left_stream();
    }
    const PREFETCH: usize = 3;
    let page = query.limit.max(1) as u64;
    let pages = futures::stream::once(async move {
        let up_to = match query.up_to {
            Some(p) => p,
            None => store.head().await?.position,
        };
        Ok::<_, StoreError>((store, query, up_to))
    })
    .map(move |start| match start {
        Err(e) => futures::stream::iter(vec![Err(e)]).boxed(),
        Ok((store, query, up_to)) if query.filter.is_all() => {
            let ranges = (query.after..up_to)
                .step_by(page as usize)
                .map(move |after| LogQuery {
                    after,
                    up_to: Some((after + page).min(up_to)),
                    filter: EventFilter::all(),
                    limit: page as usize,
                });
            futures::stream::iter(ranges)
                .map(move |q| {
                    let store = store.clone();
                    async move {
                        tokio::spawn(async move { store.read_log(&q).await })
                            .await
                            .map_err(|_| StoreError::Closed)?
                    }
                })
                .buffered(PREFETCH)
                .boxed()
        }
        Ok((store, query, up_to)) => {
            futures::stream::try_unfold((store, query), move |(store, mut q)| async move {
                q.up_to = Some(up_to);
                q.limit = page as usize;
                if q.after >= up_to {
                    return Ok(None);
                }
                let events = store.read_log(&q).await?;
                match events.last() {
                    None => Ok(None),
                    Some(last) => {
                        q.after = last.position;
                        Ok(Some((events, (store, q))))
                    }
                }
            })
            .boxed()
        }
    })
    .flatten();
    pages
        .map(|page: Result<Vec<RecordedEvent>>| match page {
            Ok(events) => futures::stream::iter(events.into_iter().map(Ok)).left_stream(),
            Err(e) => futures::stream::iter(std::iter::once(Err(e))).right_stream(),
        })
        .flatten()
        .right_stream()
}

/// Subscribes to the log after `after`: stored events first, then live ones, in order, each
/// once.
pub fn subscribe(store: Arc<dyn EventStore>, after: u64, filter: EventFilter) -> Subscription {
    Subscription::new(store, after, filter)
}
