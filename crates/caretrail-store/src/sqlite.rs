//! The SQLite backend: the embedded default, one database file created on first use.
//!
//! One writer connection owned by the group-commit task does every append inside
//! `BEGIN IMMEDIATE` (so a second process on the same file waits on the busy timeout instead of
//! interleaving), in WAL mode with `synchronous=FULL`, so an acknowledged append has been
//! fsync'd. Readers and consumers use a separate pool; WAL lets them read while the writer
//! writes. Multi-row `INSERT` statements of fixed shapes (powers of two) keep sqlx's per-statement
//! cost off the per-event path.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::health::{Expect, Health};
use crate::plan::{self, Snapshot};
use crate::types::{AppendRequest, AppendResult, Head, LogQuery, RecordedEvent, StreamId};
use crate::types::{from_micros, to_micros};
use crate::writer::{self, BatchBackend, Committed, LogNotifier, WriterHandle};
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

/// Largest multi-row statement: 16 columns × 128 rows stays far below SQLite's 32,766
/// parameter limit while amortising the per-statement cost.
const MAX_ROWS_PER_INSERT: usize = 128;

/// `INSERT ... VALUES (...), (...)` for 1, 2, 4, ... 128 rows, built once. Fixed shapes keep
/// the prepared-statement cache small and hot.
static INSERT_EVENTS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    shapes(
        concat!("INSERT INTO events (", columns!(), ", category) VALUES "),
        16,
    )
});
static INSERT_COMMANDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    shapes(
        "INSERT INTO commands (command_id, result, recorded_at) VALUES ",
        3,
    )
});

fn shapes(prefix: &str, columns: usize) -> Vec<&'static str> {
    let tuple = format!("({})", vec!["?"; columns].join(", "));
    let mut out = Vec::new();
    let mut rows = 1;
    while rows <= MAX_ROWS_PER_INSERT {
        let sql = format!("{prefix}{}", vec![tuple.as_str(); rows].join(", "));
        // Leaked once per shape at first use: eight statements that live as long as the
        // process, which is what sqlx's `&'static str` safety marker asks for.
        out.push(&*Box::leak(sql.into_boxed_str()));
        rows *= 2;
    }
    out
}

/// Splits `n` rows into power-of-two chunks, largest first.
fn chunks(mut n: usize) -> impl Iterator<Item = (usize, usize)> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = if n >= MAX_ROWS_PER_INSERT {
            MAX_ROWS_PER_INSERT
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        n -= size;
        Some((size, size.trailing_zeros() as usize))
    })
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
        let connect = connect.statement_cache_capacity(64);
        let conn = connect.connect().await?;
        let head = read_head(&pool).await?;
        let notifier = Arc::new(LogNotifier::new(head.position, options.broadcast_capacity));
        let health = Arc::new(Health::new(notifier.watch_head()));
        let writer = writer::spawn(
            SqliteWriter {
                conn: Some(conn),
                connect,
            },
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

/// The writer's own connection (not pooled), and how to open it again.
struct SqliteWriter {
    /// `None` after a transaction could not be ended cleanly and no new connection could be
    /// opened yet; the next batch or probe opens one.
    conn: Option<SqliteConnection>,
    connect: SqliteConnectOptions,
}

impl SqliteWriter {
    /// The connection, opened again if it was dropped.
    async fn conn(&mut self) -> Result<&mut SqliteConnection> {
        if self.conn.is_none() {
            self.conn = Some(self.connect.connect().await?);
            tracing::info!("event store writer reopened its connection");
        }
        Ok(self.conn.as_mut().expect("connection just opened"))
    }

    /// Runs `work` inside `BEGIN IMMEDIATE` ... `COMMIT`. On failure the transaction is rolled
    /// back; if even the ROLLBACK fails, the connection's state is unknown (SQLite may have
    /// rolled back by itself after a full disk, or may still hold the transaction and the
    /// write lock), so it is closed and the next use opens a fresh one. A connection left
    /// inside a transaction would fail every later `BEGIN` until a restart.
    async fn in_transaction<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T>,
    ) -> Result<T> {
        let conn = self.conn().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let result = async {
            let value = work(&mut *conn).await?;
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok::<_, StoreError>(value)
        }
        .await;
        if result.is_err()
            && let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await
        {
            tracing::warn!(error = %e, "writer could not roll back; replacing its connection");
            if let Some(old) = self.conn.take() {
                let _ = sqlx::Connection::close_hard(old).await;
            }
        }
        result
    }
}

/// Everything planning needs in one statement returning one row: sqlx's SQLite driver
/// hands rows across threads one at a time, so a row per stream would cost a thread
/// wake-up per stream.
async fn snapshot(conn: &mut SqliteConnection, reqs: &[&AppendRequest]) -> Result<Snapshot> {
    let streams = plan::streams_of(reqs);
    let cmds: Vec<String> = plan::commands_of(reqs)
        .iter()
        .map(|c| c.simple().to_string())
        .collect();
    let row = sqlx::query(
        "SELECT \
               (SELECT position FROM events ORDER BY position DESC LIMIT 1), \
               (SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1), \
               (SELECT json_group_array(json_array(j.value, \
                    (SELECT MAX(stream_version) FROM events WHERE stream_id = j.value))) \
                  FROM json_each(?1) AS j), \
               (SELECT json_group_array(json_array(lower(hex(command_id)), result)) \
                  FROM commands WHERE command_id IN (SELECT unhex(value) FROM json_each(?2)))",
    )
    .bind(serde_json::to_string(&streams).expect("strings serialise"))
    .bind(serde_json::to_string(&cmds).expect("strings serialise"))
    .fetch_one(&mut *conn)
    .await?;
    let head = match row.try_get::<Option<i64>, _>(0)? {
        None => Head::default(),
        Some(p) => Head {
            position: p as u64,
            recorded_at: Some(from_micros(row.try_get(1)?)),
        },
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        position: head.position,
        reason,
    };
    let versions: Vec<(String, Option<u64>)> = serde_json::from_str(row.try_get::<&str, _>(2)?)
        .map_err(|e| corrupt(format!("stream versions: {e}")))?;
    let versions: HashMap<String, u64> = versions
        .into_iter()
        .filter_map(|(s, v)| v.map(|v| (s, v)))
        .collect();
    let stored: Vec<(String, String)> = serde_json::from_str(row.try_get::<&str, _>(3)?)
        .map_err(|e| corrupt(format!("stored commands: {e}")))?;
    let mut commands = HashMap::with_capacity(stored.len());
    for (id, result) in stored {
        let id = Uuid::parse_str(&id).map_err(|e| corrupt(format!("command id: {e}")))?;
        commands.insert(id, crate::types::stored_result(id, &result)?);
    }
    Ok(Snapshot {
        head,
        versions,
        commands,
    })
}

/// Inserts a planned batch's events and command results.
async fn insert(conn: &mut SqliteConnection, plan: &plan::Plan) -> Result<()> {
    let mut rest = plan.events.as_slice();
    for (size, shape) in chunks(rest.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut q = sqlx::query(INSERT_EVENTS[shape]);
        for e in chunk {
            q = q
                .bind(e.position as i64)
                .bind(e.stream_id.as_str())
                .bind(e.stream_version as i64)
                .bind(e.event_id)
                .bind(e.event_type.as_str())
                .bind(i64::from(e.schema_version))
                .bind(e.data.as_str())
                .bind(e.actor_id.as_str())
                .bind(e.actor_role.as_str())
                .bind(e.command_id)
                .bind(e.correlation_id)
                .bind(e.causation_id)
                .bind(e.business_date.map(|d| d.format("%Y-%m-%d").to_string()))
                .bind(to_micros(e.recorded_at))
                .bind(&e.leaf_hash[..])
                .bind(e.category());
        }
        q.execute(&mut *conn).await?;
    }
    let mut rest = plan.commands.as_slice();
    for (size, shape) in chunks(rest.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut q = sqlx::query(INSERT_COMMANDS[shape]);
        for (id, result) in chunk {
            q = q
                .bind(*id)
                .bind(serde_json::to_string(result).expect("results serialise"))
                .bind(to_micros(result.recorded_at));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[async_trait]
impl BatchBackend for SqliteWriter {
    #[tracing::instrument(name = "store.sqlite.commit_batch", skip_all, fields(appends = reqs.len()))]
    async fn commit_batch(
        &mut self,
        reqs: &[&AppendRequest],
        now: DateTime<Utc>,
    ) -> Result<Committed> {
        self.in_transaction(async |conn| {
            let snap = snapshot(conn, reqs).await?;
            let plan = plan::plan(reqs, snap, now);
            insert(conn, &plan).await?;
            Ok(Committed {
                outcomes: plan.outcomes,
                events: plan.events,
            })
        })
        .await
    }

    async fn existing_event_ids(&mut self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        let hexes: Vec<String> = ids.iter().map(|c| c.simple().to_string()).collect();
        let rows = sqlx::query(
            "SELECT event_id FROM events WHERE event_id IN (SELECT unhex(value) FROM json_each(?1))",
        )
        .bind(serde_json::to_string(&hexes).expect("strings serialise"))
        .fetch_all(self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    async fn probe(&mut self) -> Result<()> {
        self.in_transaction(async |conn| {
            sqlx::query(
                "INSERT INTO consumer_checkpoints (name, position, updated_at) \
                 VALUES (?1, (SELECT COALESCE(MAX(position), 0) FROM events), ?2) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
                 updated_at = excluded.updated_at",
            )
            .bind(writer::PROBE_ROW)
            .bind(to_micros(Utc::now()))
            .execute(conn)
            .await?;
            Ok(())
        })
        .await
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
        let p: Option<i64> = sqlx::query_scalar(
            "SELECT position FROM events WHERE recorded_at <= ?1 \
             ORDER BY recorded_at DESC, position DESC LIMIT 1",
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
    use super::chunks;

    #[test]
    fn chunks_cover_every_row_with_power_of_two_shapes() {
        for n in 0..600 {
            let sizes: Vec<usize> = chunks(n).map(|(s, _)| s).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= 128));
            for (size, shape) in chunks(n) {
                assert_eq!(1 << shape, size);
            }
        }
    }
}
