//! The read models' database: the one place in the crate that tells SQLite from PostgreSQL
//! when it opens a connection or a transaction.
//!
//! Everything else (the runner, the queries, the replay) asks a [`ReadModelDb`] for a
//! [`PoolConn`], a [`Tx`] or an [`Unbounded`] session, or for the connection of a consumer
//! transaction, and writes its statements against the [`Conn`] they hand out, whose
//! [`Backend`] only chooses placeholders and type names. The pools are the store's own, so the
//! read models get the store's timeouts (acquire, statement, idle in transaction) and its
//! release check, and close with it.

use caretrail_store::{ConsumerTx, Database, EventStore};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::{Backend, ColType, Conn, Val};
use crate::error::Result;

/// The database holding a set of read-model tables: the store's own, or a replay's scratch
/// database.
#[derive(Clone, Debug)]
pub struct ReadModelDb {
    db: Database,
}

impl ReadModelDb {
    /// The store's database, where the live read models and `projection_meta` are kept.
    ///
    /// This is the crate's one use of [`EventStore::database`], the raw pool that is on its
    /// way out of the store's interface.
    pub fn of_store(store: &dyn EventStore) -> ReadModelDb {
        ReadModelDb {
            db: store.database(),
        }
    }

    /// A private in-memory SQLite database for an as-of replay. Its pool holds exactly one
    /// connection and never closes it (an in-memory database lives as long as its connection),
    /// so every later acquire and transaction sees the same tables.
    pub async fn scratch() -> Result<ReadModelDb> {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await?;
        Ok(ReadModelDb {
            db: Database::Sqlite(pool),
        })
    }

    /// The raw pool, for tests that tamper with the tables behind the read models' back.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The SQL dialect this database speaks.
    pub fn backend(&self) -> Backend {
        match self.db {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// A pooled connection, outside any transaction: each statement commits on its own.
    pub async fn acquire(&self) -> Result<PoolConn> {
        Ok(PoolConn(match &self.db {
            Database::Sqlite(p) => PoolInner::Sqlite(p.acquire().await?),
            Database::Postgres(p) => PoolInner::Postgres(p.acquire().await?),
        }))
    }

    /// A transaction begun with a plain `BEGIN`: on SQLite a deferred one, which takes a read
    /// snapshot at its first read and the write lock only at its first write; on PostgreSQL
    /// one at the server's default isolation level (read committed unless configured
    /// otherwise). What a query's reads and a replay's writes run in.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx(match &self.db {
            Database::Sqlite(p) => TxInner::Sqlite(p.begin().await?),
            Database::Postgres(p) => TxInner::Postgres(p.begin().await?),
        }))
    }

    /// A transaction that is going to write after it read: on SQLite begun with
    /// `BEGIN IMMEDIATE`, so it holds the database's one write lock from the start and cannot
    /// fail halfway on a lock another writer took after its reads; on PostgreSQL a plain
    /// transaction, whose rows are locked with [`Tx::lock_rows`].
    ///
    /// A transaction sqlx knows about (not a `BEGIN` sent as a statement): if its `COMMIT`
    /// fails, the pool's release check closes the connection rather than pool it still inside
    /// the transaction, holding SQLite's write lock.
    pub async fn begin_write(&self) -> Result<Tx> {
        Ok(Tx(match &self.db {
            Database::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Database::Postgres(p) => TxInner::Postgres(p.begin().await?),
        }))
    }

    /// A session for work that may take longer than the statement timeout the store sets for
    /// everything else (a secondary index built over millions of rows). On PostgreSQL a
    /// transaction that lifts `statement_timeout` for itself only (`SET LOCAL`), so its
    /// statements commit with [`Unbounded::finish`]; on SQLite, which has no statement
    /// timeout, a pooled connection whose statements commit one by one.
    pub async fn unbounded(&self) -> Result<Unbounded> {
        Ok(Unbounded(match &self.db {
            Database::Sqlite(p) => UnboundedInner::Sqlite(p.acquire().await?),
            Database::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SET LOCAL statement_timeout = 0")
                    .execute(&mut *tx)
                    .await?;
                UnboundedInner::Postgres(tx)
            }
        }))
    }

    /// The connection of a consumer transaction of this database's store, to write a
    /// projection's effects beside the checkpoint the transaction commits.
    pub fn consumer_conn<'t>(&self, tx: &'t mut ConsumerTx) -> Result<Conn<'t>> {
        Ok(match self.backend() {
            Backend::Sqlite => Conn::Sqlite(tx.sqlite()?),
            Backend::Postgres => Conn::Postgres(tx.postgres()?),
        })
    }
}

/// A connection taken from a [`ReadModelDb`]'s pool; it goes back to the pool when dropped.
pub struct PoolConn(PoolInner);

enum PoolInner {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl PoolConn {
    /// The connection, to run statements on.
    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            PoolInner::Sqlite(c) => Conn::Sqlite(&mut *c),
            PoolInner::Postgres(c) => Conn::Postgres(&mut *c),
        }
    }
}

/// A transaction on a [`ReadModelDb`] ([`ReadModelDb::begin`], [`ReadModelDb::begin_write`]).
/// Dropped without [`Tx::commit`], it rolls back.
pub struct Tx(TxInner);

enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// A sqlx query of `$sql` decoding `$row`s, with `$vals` bound, NULLs typed by `$types`.
macro_rules! bound_as {
    ($row:ty, $sql:expr, $vals:expr, $types:expr) => {{
        let mut q = sqlx::query_as::<_, $row>(sqlx::AssertSqlSafe($sql));
        for (v, t) in $vals.iter().zip($types) {
            q = match (v, t) {
                (Val::Int(i), _) => q.bind(*i),
                (Val::Text(s), _) => q.bind(s.clone()),
                (Val::Null, ColType::Int) => q.bind(None::<i64>),
                (Val::Null, ColType::Text) => q.bind(None::<String>),
            };
        }
        q
    }};
}

impl Tx {
    /// The transaction's connection, to run statements in it.
    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            TxInner::Sqlite(t) => Conn::Sqlite(&mut *t),
            TxInner::Postgres(t) => Conn::Postgres(&mut *t),
        }
    }

    /// The SQL dialect of the transaction's database.
    pub fn backend(&self) -> Backend {
        match self.0 {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Locks the rows `select` reads (a `SELECT` without a locking clause) until the
    /// transaction ends: `SELECT ... FOR UPDATE` on PostgreSQL; nothing on SQLite, where a
    /// transaction from [`ReadModelDb::begin_write`] already holds the database's write lock.
    pub async fn lock_rows(&mut self, select: &str) -> Result<()> {
        match self.0 {
            TxInner::Sqlite(_) => Ok(()),
            TxInner::Postgres(_) => self.conn().ddl(&format!("{select} FOR UPDATE")).await,
        }
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<()> {
        match self.0 {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Runs `sql` (written with this backend's placeholders) with `vals` bound, NULLs typed
    /// by `types`, and decodes every row as an `R` by column name. The error is sqlx's, for
    /// the caller to name the table and column a value failed to decode in.
    pub(crate) async fn fetch_as<R>(
        &mut self,
        sql: &str,
        vals: &[Val],
        types: &[ColType],
    ) -> std::result::Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        match &mut self.0 {
            TxInner::Sqlite(t) => bound_as!(R, sql, vals, types).fetch_all(&mut **t).await,
            TxInner::Postgres(t) => bound_as!(R, sql, vals, types).fetch_all(&mut **t).await,
        }
    }
}

/// A session for long work, from [`ReadModelDb::unbounded`].
pub struct Unbounded(UnboundedInner);

enum UnboundedInner {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Unbounded {
    /// The session's connection.
    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            UnboundedInner::Sqlite(c) => Conn::Sqlite(&mut *c),
            UnboundedInner::Postgres(t) => Conn::Postgres(&mut *t),
        }
    }

    /// Ends the session: commits the work on PostgreSQL (on SQLite it is committed already).
    pub async fn finish(self) -> Result<()> {
        match self.0 {
            UnboundedInner::Sqlite(_) => {}
            UnboundedInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Conn<'_> {
    /// Sets this connection's page cache to `kib` KiB on SQLite (`PRAGMA cache_size = -kib`; a
    /// per-connection setting that costs nothing to repeat); nothing on PostgreSQL, whose
    /// buffers are the server's.
    pub async fn page_cache(&mut self, kib: u32) -> Result<()> {
        match self {
            Conn::Sqlite(_) | Conn::Lite(_) => {
                self.ddl(&format!("PRAGMA cache_size = -{kib}")).await
            }
            Conn::Postgres(_) => Ok(()),
        }
    }
}
