//! Other crates' tables beside the log: the one way the key ring, the token table, the
//! idempotency keys and the audit tree keep their tables in the store's database.
//!
//! A crate describes its tables as a [`TableSet`]: a name and a directory of sqlx migrations
//! per backend, embedded with `sqlx::migrate!`. It hands the set to [`EventStore::tables`],
//! which applies the migrations the database lacks, in version order, records them in a table
//! of the set's own (`_caretrail_{name}_migrations`: the store's `_sqlx_migrations` would
//! refuse a database carrying versions it does not know), and answers with a [`Tables`]
//! handle, one variant per backend. The crate matches on it once, to choose its
//! implementation for that backend (a trait of its own implemented for [`SqliteTables`] and
//! [`PgTables`]); everything after that is written for one backend only, so the backend
//! branching of a crate lives in that one place.
//!
//! The handles borrow the store's read pool: the tables get the store's timeouts and its
//! release check (a connection whose transaction could not be ended is closed, never reused),
//! and [`EventStore::close`] closes them too. A consumer writes its effects in its
//! [`ConsumerTx`] through [`ConsumerTx::sqlite`] or [`ConsumerTx::postgres`], from the
//! implementation for that backend.
//!
//! [`EventStore::tables`]: crate::EventStore::tables
//! [`EventStore::close`]: crate::EventStore::close
//! [`ConsumerTx`]: crate::ConsumerTx
//! [`ConsumerTx::sqlite`]: crate::ConsumerTx::sqlite
//! [`ConsumerTx::postgres`]: crate::ConsumerTx::postgres

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::error::{Result, StoreError};

/// A crate's tables: a name and its migrations for each backend. For example (shown, not
/// compiled: `sqlx::migrate!` reads the migration folders of the crate that calls it):
///
/// ```text
/// static TABLES: caretrail_store::TableSet = caretrail_store::TableSet {
///     name: "keys",
///     sqlite: sqlx::migrate!("./migrations/sqlite"),
///     postgres: sqlx::migrate!("./migrations/postgres"),
/// };
/// ```
///
/// The name is lowercase ASCII letters, digits and `_`; its migrations are recorded in
/// `_caretrail_{name}_migrations`. A set's migrations are never edited once released (sqlx
/// refuses a database whose applied migration's checksum changed): a change of shape is a new
/// migration.
#[derive(Debug)]
pub struct TableSet {
    /// The set's name, unique among the sets of one database.
    pub name: &'static str,
    /// The migrations for SQLite.
    pub sqlite: Migrator,
    /// The migrations for PostgreSQL.
    pub postgres: Migrator,
}

impl TableSet {
    /// The table recording which of the set's migrations a database has.
    pub fn record_table(&self) -> String {
        format!("_caretrail_{}_migrations", self.name)
    }

    /// `migrations` with the set's own record table (the embedded migrator names sqlx's
    /// default, which is the store's own).
    fn migrator(&self, migrations: &'static Migrator) -> Result<Migrator> {
        let valid = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(StoreError::InvalidTableSet(self.name.to_owned()));
        }
        Ok(Migrator {
            migrations: Cow::Borrowed(&migrations.migrations),
            ignore_missing: migrations.ignore_missing,
            locking: migrations.locking,
            no_tx: migrations.no_tx,
            table_name: Cow::Owned(self.record_table()),
            create_schemas: Cow::Borrowed(&migrations.create_schemas),
        })
    }
}

/// The sets a store has brought up to date since it was opened: asking again costs nothing
/// (a key ring, a token table and the idempotency keys may each be opened more than once).
#[derive(Debug, Default)]
pub(crate) struct Registered(Mutex<HashSet<&'static str>>);

impl Registered {
    fn contains(&self, name: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    fn insert(&self, name: &'static str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name);
    }

    /// Applies `set` on a SQLite store's pool.
    pub(crate) async fn sqlite(
        &self,
        pool: &SqlitePool,
        set: &'static TableSet,
    ) -> Result<SqliteTables> {
        if !self.contains(set.name) {
            let migrator = set.migrator(&set.sqlite)?;
            // SQLite has no migration lock: two processes opening a fresh file at once may
            // both try to record a version, and the second fails on the record's key. Its
            // second run finds the version recorded (with the same checksum) and has nothing
            // left to do.
            if let Err(first) = migrator.run(pool).await {
                tracing::debug!(set = set.name, error = %first, "migrations retried once");
                migrator.run(pool).await?;
            }
            self.insert(set.name);
        }
        Ok(SqliteTables { pool: pool.clone() })
    }

    /// Applies `set` on a PostgreSQL store's pool (sqlx holds an advisory lock meanwhile, so
    /// concurrent processes apply it one after the other).
    pub(crate) async fn postgres(&self, pool: &PgPool, set: &'static TableSet) -> Result<PgTables> {
        if !self.contains(set.name) {
            set.migrator(&set.postgres)?.run(pool).await?;
            self.insert(set.name);
        }
        Ok(PgTables { pool: pool.clone() })
    }
}

/// The store's database, for a crate whose [`TableSet`] it has applied: one variant per
/// backend. Match on it once.
#[derive(Clone, Debug)]
pub enum Tables {
    /// The store is SQLite.
    Sqlite(SqliteTables),
    /// The store is PostgreSQL.
    Postgres(PgTables),
}

impl Tables {
    /// The handle on a [`crate::Database`], for code that still holds one (it is on its way
    /// out). The tables must have been applied through [`crate::EventStore::tables`] before.
    pub fn from_database(db: crate::Database) -> Self {
        match db {
            crate::Database::Sqlite(pool) => Self::Sqlite(SqliteTables { pool }),
            crate::Database::Postgres(pool) => Self::Postgres(PgTables { pool }),
        }
    }
}

/// A crate's tables on a SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteTables {
    pool: SqlitePool,
}

impl SqliteTables {
    /// The store's read pool: for statements that need no transaction of their own.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction that takes SQLite's write lock when it begins (`BEGIN IMMEDIATE`),
    /// so it cannot fail halfway on a lock another writer took after its reads.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// A crate's tables on a PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PgTables {
    pool: PgPool,
}

impl PgTables {
    /// The store's read pool, with the store's timeouts (acquire, statement, idle in
    /// transaction).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}
