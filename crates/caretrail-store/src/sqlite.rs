//! The SQLite backend: the embedded default, one database file created on first use.
//!
//! One writer connection, owned by its own OS thread ([`thread_writer`]), does every append
//! inside `BEGIN IMMEDIATE` (so a second process on the same file waits on the busy timeout
//! instead of interleaving), in WAL mode with `synchronous=FULL`, so an acknowledged append has
//! been fsync'd. Readers and consumers use a separate pool; WAL lets them read while the writer
//! writes. A long read of the log ([`crate::stream_log`]) steps its own direct connection on a
//! blocking thread ([`log_stream`]).

mod log_stream;
mod thread_writer;

pub(crate) use log_stream::stream_log;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteRow, SqliteSynchronous,
};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::health::{Expect, Health};
use crate::types::{AppendRequest, AppendResult, Head, LogQuery, RecordedEvent, StreamId};
use crate::types::{from_micros, to_micros};
use crate::writer::{self, LogNotifier, WriterHandle};
use crate::{ConsumerTx, ConsumerTxInner, EventStore, StoreOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

macro_rules! columns {
    () => {
        "position, stream_id, stream_version, event_id, event_type, schema_version, data, \
         actor_id, actor_role, command_id, correlation_id, causation_id, business_date, \
         recorded_at, leaf_hash"
    };
}

/// A page of the log packed into one value: rows separated by U+001E, fields by U+001F.
///
/// sqlx's SQLite driver hands every row from its worker thread to the async side separately,
/// which caps row-at-a-time reads near 200,000 rows/s here; one value per page removes that
/// cost. The separators cannot occur inside a field: stream ids, event types and actor fields
/// are validated to hold no control characters, payloads are valid JSON (which escapes them),
/// ids and hashes are hex, dates and numbers are digits.
macro_rules! packed {
    (@select) => {
        "SELECT group_concat(concat_ws(char(31), \
           position, stream_id, stream_version, hex(event_id), event_type, schema_version, \
           data, actor_id, actor_role, COALESCE(hex(command_id), ''), \
           COALESCE(hex(correlation_id), ''), COALESCE(hex(causation_id), ''), \
           COALESCE(business_date, ''), recorded_at, hex(leaf_hash)), \
           char(30) ORDER BY position) "
    };
    (@positions) => {
        concat!(
            packed!(@select),
            "FROM (SELECT * FROM events WHERE position IN (SELECT value FROM json_each(?1)) \
             ORDER BY position)"
        )
    };
    ($filter:literal) => {
        concat!(
            packed!(@select),
            "FROM (SELECT * FROM events WHERE position > ?1 AND position <= ?2",
            $filter,
            " ORDER BY position LIMIT ?3)"
        )
    };
}

/// Decodes a page packed by [`packed!`].
fn unpack(packed: &str) -> Result<Vec<RecordedEvent>> {
    let mut out = Vec::with_capacity(packed.len() / 600 + 1);
    for row in packed.split('\u{1e}') {
        let mut f = row.split('\u{1f}');
        let mut next = || f.next().unwrap_or_default();
        let position_text = next();
        let position: u64 = position_text.parse().map_err(|_| StoreError::Corrupt {
            position: 0,
            reason: format!("packed row does not start with a position: {position_text:.20}"),
        })?;
        let corrupt = |what: &str| StoreError::Corrupt {
            position,
            reason: format!("packed field {what} is malformed"),
        };
        let uuid = |s: &str, what: &str| Uuid::try_parse(s).map_err(|_| corrupt(what));
        let opt_uuid = |s: &str, what: &str| {
            if s.is_empty() {
                Ok(None)
            } else {
                uuid(s, what).map(Some)
            }
        };
        let stream_id = next().to_owned();
        let stream_version = next().parse().map_err(|_| corrupt("stream_version"))?;
        let event_id = uuid(next(), "event_id")?;
        let event_type = next().to_owned();
        let schema_version = next().parse().map_err(|_| corrupt("schema_version"))?;
        let data = next().to_owned();
        let actor_id = next().to_owned();
        let actor_role = next().to_owned();
        let command_id = opt_uuid(next(), "command_id")?;
        let correlation_id = opt_uuid(next(), "correlation_id")?;
        let causation_id = opt_uuid(next(), "causation_id")?;
        let business_date = match next() {
            "" => None,
            d => Some(
                NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| corrupt("business_date"))?,
            ),
        };
        let recorded_at = from_micros(next().parse().map_err(|_| corrupt("recorded_at"))?);
        let mut leaf_hash = [0u8; 32];
        hex::decode_to_slice(next(), &mut leaf_hash).map_err(|_| corrupt("leaf_hash"))?;
        if f.next().is_some() {
            return Err(corrupt("count"));
        }
        out.push(RecordedEvent {
            position,
            stream_id,
            stream_version,
            event_id,
            event_type,
            schema_version,
            data,
            actor_id,
            actor_role,
            command_id,
            correlation_id,
            causation_id,
            business_date,
            recorded_at,
            leaf_hash,
        });
    }
    Ok(out)
}

/// The SQLite event store.
pub struct SqliteStore {
    pool: SqlitePool,
    writer: WriterHandle,
    notifier: Arc<LogNotifier>,
    options: StoreOptions,
    health: Arc<Health>,
    /// The table sets applied since the store was opened.
    tables: crate::tables::Registered,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url` (`sqlite://PATH` or a
    /// plain path).
    #[tracing::instrument(name = "store.sqlite.open", skip_all)]
    pub async fn open(url: &str, options: StoreOptions) -> Result<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let connect = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // Readers map the file instead of copying every page through read(); the page
            // cache per connection is 16 MiB instead of 2 MiB, so index pages stay hot.
            .pragma("mmap_size", "268435456")
            .pragma("cache_size", "-16384");
        let pool = crate::pool::sqlite(options.read_connections, options.timeouts)
            .connect_with(connect.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let file = connect.get_filename();
        let name = file.to_string_lossy();
        if name.is_empty() || name.contains(":memory:") {
            return Err(StoreError::UnsupportedUrl(format!(
                "{url} (the event store's writer needs a database file, not an in-memory one)"
            )));
        }
        let backend = thread_writer::ThreadWriter::start(file)?;
        let head = read_head(&pool).await?;
        let notifier = Arc::new(LogNotifier::new(head.position, options.broadcast_capacity));
        let health = Arc::new(Health::new(notifier.watch_head()));
        let writer = writer::spawn(
            backend,
            options.group_commit,
            notifier.clone(),
            health.register("store.writer", Expect::OnDemand),
        );
        Ok(Self {
            pool,
            writer,
            notifier,
            options,
            health,
            tables: Default::default(),
        })
    }

    /// The read pool, for read models kept in the same database file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

async fn read_head(pool: &SqlitePool) -> Result<Head> {
    let row =
        sqlx::query("SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(pool)
            .await?;
    Ok(match row {
        None => Head {
            position: 0,
            recorded_at: None,
        },
        Some(r) => Head {
            position: r.try_get::<i64, _>(0)? as u64,
            recorded_at: Some(from_micros(r.try_get(1)?)),
        },
    })
}

fn decode(r: &SqliteRow) -> Result<RecordedEvent> {
    let position = r.try_get::<i64, _>(0)? as u64;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let business_date = match r.try_get::<Option<&str>, _>(12)? {
        None => None,
        Some(s) => Some(
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|e| corrupt(format!("business date: {e}")))?,
        ),
    };
    let hash: &[u8] = r.try_get(14)?;
    Ok(RecordedEvent {
        position,
        stream_id: r.try_get(1)?,
        stream_version: r.try_get::<i64, _>(2)? as u64,
        event_id: r.try_get(3)?,
        event_type: r.try_get(4)?,
        schema_version: r.try_get::<i64, _>(5)? as u32,
        data: r.try_get(6)?,
        actor_id: r.try_get(7)?,
        actor_role: r.try_get(8)?,
        command_id: r.try_get(9)?,
        correlation_id: r.try_get(10)?,
        causation_id: r.try_get(11)?,
        business_date,
        recorded_at: from_micros(r.try_get(13)?),
        leaf_hash: hash
            .try_into()
            .map_err(|_| corrupt("leaf hash is not 32 bytes".into()))?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventStore for SqliteStore {
    #[tracing::instrument(name = "store.append", skip_all, fields(backend = "sqlite", streams = req.streams.len(), events = req.event_count()))]
    async fn append(&self, req: AppendRequest) -> Result<AppendResult> {
        self.writer.append(req).await
    }

    #[tracing::instrument(name = "store.read_stream", skip_all, fields(backend = "sqlite", stream = %stream, from_version))]
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM events WHERE stream_id = ?1 AND stream_version >= ?2 \
              ORDER BY stream_version LIMIT ?3"
        ))
        .bind(stream.as_str())
        .bind(from_version as i64)
        .bind(limit(max))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        let v: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?1",
        )
        .bind(stream.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(v as u64)
    }

    #[tracing::instrument(name = "store.read_log", skip_all, fields(backend = "sqlite", after = q.after, limit = q.limit))]
    async fn read_log(&self, q: &LogQuery) -> Result<Vec<RecordedEvent>> {
        let up_to = q.up_to.map_or(i64::MAX, |p| p as i64);
        let types = (!q.filter.event_types.is_empty())
            .then(|| serde_json::to_string(&q.filter.event_types).expect("strings serialise"));
        let cats = (!q.filter.categories.is_empty())
            .then(|| serde_json::to_string(&q.filter.categories).expect("strings serialise"));
        let sql = match (&types, &cats) {
            (None, None) => packed!(""),
            (Some(_), None) => packed!(" AND event_type IN (SELECT value FROM json_each(?4))"),
            (None, Some(_)) => packed!(" AND category IN (SELECT value FROM json_each(?4))"),
            (Some(_), Some(_)) => packed!(
                " AND event_type IN (SELECT value FROM json_each(?4)) \
                  AND category IN (SELECT value FROM json_each(?5))"
            ),
        };
        let mut query = sqlx::query_scalar::<_, Option<String>>(sql)
            .bind(q.after as i64)
            .bind(up_to)
            .bind(limit(q.limit));
        for list in [types, cats].into_iter().flatten() {
            query = query.bind(list);
        }
        match query.fetch_one(&self.pool).await? {
            None => Ok(Vec::new()),
            Some(packed) => unpack(&packed),
        }
    }

    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>> {
        crate::check_positions(positions)?;
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(positions).expect("numbers serialise");
        let packed: Option<String> = sqlx::query_scalar(packed!(@positions))
            .bind(list)
            .fetch_one(&self.pool)
            .await?;
        match packed {
            None => Ok(Vec::new()),
            Some(packed) => unpack(&packed),
        }
    }

    async fn head(&self) -> Result<Head> {
        read_head(&self.pool).await
    }

    async fn position_at(&self, t: DateTime<Utc>) -> Result<u64> {
        // A binary search over positions in one statement: record time never decreases along
        // the gapless positions (both enforced by the schema's triggers), so the answer is
        // the last position whose record time is at or before `t`. `lo` stays 0 when even the
        // first event is later than `t`.
        let p: Option<i64> = sqlx::query_scalar(
            "WITH RECURSIVE search(lo, hi) AS ( \
                 SELECT 0, (SELECT COALESCE(MAX(position), 0) FROM events) \
                 UNION ALL \
                 SELECT CASE WHEN (SELECT recorded_at FROM events \
                                   WHERE position = (lo + hi + 1) / 2) <= ?1 \
                             THEN (lo + hi + 1) / 2 ELSE lo END, \
                        CASE WHEN (SELECT recorded_at FROM events \
                                   WHERE position = (lo + hi + 1) / 2) <= ?1 \
                             THEN hi ELSE (lo + hi + 1) / 2 - 1 END \
                 FROM search WHERE lo < hi) \
             SELECT lo FROM search WHERE lo = hi",
        )
        .bind(to_micros(t))
        .fetch_optional(&self.pool)
        .await?;
        Ok(p.unwrap_or(0) as u64)
    }

    async fn checkpoint(&self, consumer: &str) -> Result<u64> {
        let p: Option<i64> = sqlx::query_scalar(bulk::READ_CHECKPOINT)
            .bind(consumer)
            .fetch_optional(&self.pool)
            .await?;
        Ok(p.unwrap_or(0) as u64)
    }

    #[tracing::instrument(
        name = "store.begin_consumer",
        skip_all,
        fields(backend = "sqlite", consumer)
    )]
    async fn begin_consumer(&self, consumer: &str) -> Result<ConsumerTx> {
        // IMMEDIATE takes the write lock up front: two instances of one consumer then run one
        // after the other, and the second sees the first's checkpoint.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let p: Option<i64> = sqlx::query_scalar(bulk::READ_CHECKPOINT)
            .bind(consumer)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(ConsumerTx::new(
            consumer,
            p.unwrap_or(0) as u64,
            ConsumerTxInner::Sqlite(tx),
            None,
        ))
    }

    async fn command_result(&self, command_id: Uuid) -> Result<Option<AppendResult>> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT result FROM commands WHERE command_id = ?1")
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
    }

    async fn tables(&self, set: &'static crate::TableSet) -> Result<crate::Tables> {
        Ok(crate::Tables::Sqlite(
            self.tables.sqlite(&self.pool, set).await?,
        ))
    }

    fn database(&self) -> crate::Database {
        crate::Database::Sqlite(self.pool.clone())
    }

    fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        let options = self.pool.connect_options();
        let path = options.get_filename();
        let name = path.to_string_lossy();
        (!name.is_empty() && !name.contains(":memory:") && path.exists())
            .then(|| path.to_path_buf())
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
        "sqlite"
    }
}

pub(crate) async fn commit_checkpoint(
    mut tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    name: &str,
    position: u64,
) -> Result<()> {
    sqlx::query(bulk::WRITE_CHECKPOINT)
        .bind(name)
        .bind(position as i64)
        .bind(to_micros(Utc::now()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// SQL for consumers that read the log and keep their checkpoint through their own direct SQLite
/// connection (the projection rebuild's bulk path, which needs the engine's speed that sqlx's
/// per-statement worker round trip cannot give). It lives here, beside the schema, and this
/// module's own code uses the checkpoint statements too, so the two cannot drift apart.
///
/// `HEAD` and `READ_EVENTS` are on their way out: a consumer reads the log through
/// [`crate::bulk::LogReader`] and keeps its checkpoint with [`crate::bulk::read_checkpoint`] and
/// [`crate::bulk::write_checkpoint`].
pub mod bulk {
    /// The head position.
    pub const HEAD: &str = "SELECT COALESCE(MAX(position), 0) FROM events";
    /// Up to `?2` events after position `?1`, in log order. Columns: position, event_id
    /// (16-byte blob), stream_id, event_type, schema_version, data (JSON text), actor_id,
    /// actor_role, business_date (ISO date text or NULL), recorded_at (microseconds, UTC).
    pub const READ_EVENTS: &str = "SELECT position, event_id, stream_id, event_type, \
        schema_version, data, actor_id, actor_role, business_date, recorded_at \
        FROM events WHERE position > ?1 ORDER BY position LIMIT ?2";
    /// A consumer's checkpoint (`?1` = name); no row means 0.
    pub const READ_CHECKPOINT: &str = "SELECT position FROM consumer_checkpoints WHERE name = ?1";
    /// Sets a consumer's checkpoint: `?1` name, `?2` position, `?3` microseconds now.
    pub const WRITE_CHECKPOINT: &str = "INSERT INTO consumer_checkpoints \
        (name, position, updated_at) VALUES (?1, ?2, ?3) \
        ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
        updated_at = excluded.updated_at";
}

#[cfg(test)]
mod tests {
    use crate::types::{ExpectedVersion, Metadata, NewEvent};
    use crate::{AppendRequest, LogQuery, StreamId};

    /// `position_at` searches positions instead of an index on record time: it must agree with
    /// a scan of the log for times before, between, on and after the events, including several
    /// events sharing one record time (one batch).
    #[tokio::test]
    async fn position_at_agrees_with_a_scan_of_the_log() {
        let h = crate::testing::sqlite().await.expect("sqlite harness");
        let store = h.open().await;
        assert_eq!(store.position_at(chrono::Utc::now()).await.unwrap(), 0);
        for i in 0..23u64 {
            let events = (0..=(i % 3))
                .map(|_| NewEvent::json("T", 1, &serde_json::json!({ "i": i })).unwrap())
                .collect();
            let stream = StreamId::new(format!("s-{i}")).unwrap();
            let req = AppendRequest::single(
                stream,
                ExpectedVersion::Any,
                events,
                Metadata::actor("t", "test"),
            );
            store.append(req).await.unwrap();
        }
        let log = store.read_log(&LogQuery::after(0, 1_000)).await.unwrap();
        let mut times: Vec<_> = log.iter().map(|e| e.recorded_at).collect();
        let first = times[0] - chrono::Duration::microseconds(1);
        let last = times[times.len() - 1] + chrono::Duration::microseconds(1);
        times.extend([first, last]);
        times.extend(
            log.iter()
                .map(|e| e.recorded_at + chrono::Duration::microseconds(1)),
        );
        for t in times {
            let scan = log
                .iter()
                .filter(|e| e.recorded_at <= t)
                .map(|e| e.position)
                .max()
                .unwrap_or(0);
            assert_eq!(store.position_at(t).await.unwrap(), scan, "at {t}");
        }
        let pool = match store.database() {
            crate::Database::Sqlite(pool) => pool,
            crate::Database::Postgres(_) => unreachable!("a SQLite harness"),
        };
        let index: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE name = 'events_by_recorded_at'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        assert_eq!(
            index, None,
            "the record-time index is dropped by migration 0002"
        );
    }
}
