//! The audit tables and their SQL, per backend.
//!
//! Two tables beside the event store's: `audit_merkle_nodes (level, idx, hash)` holds every
//! complete subtree of the log's Merkle tree (level 0 = the leaf hashes as the tree consumer saw
//! them), and `audit_checkpoints` every checkpoint the service signed. They are created with
//! `CREATE TABLE IF NOT EXISTS` when an [`crate::Auditor`] opens, rather than by migrations:
//! the store's sqlx migrator owns `_sqlx_migrations` and would refuse a database carrying
//! versions it does not know, and two statements that never change shape do not need a
//! migrator of their own. A future change of shape gets a new table name.
//!
//! Node writes happen inside the consumer transaction the store hands out
//! ([`caretrail_store::ConsumerTx`]), so the tree and the consumer's checkpoint commit together.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::merkle::{Hash, NodeId};

const SQLITE_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS audit_merkle_nodes (
        level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
        idx   INTEGER NOT NULL CHECK (idx >= 0),
        hash  BLOB    NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
    ) STRICT, WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (
        tree_size INTEGER PRIMARY KEY CHECK (tree_size >= 0),
        root_hash BLOB    NOT NULL CHECK (length(root_hash) = 32),
        signed_at INTEGER NOT NULL,
        note      TEXT    NOT NULL
    ) STRICT",
];

const PG_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS audit_merkle_nodes (
        level SMALLINT NOT NULL CHECK (level >= 0 AND level < 64),
        idx   BIGINT   NOT NULL CHECK (idx >= 0),
        hash  BYTEA    NOT NULL CHECK (octet_length(hash) = 32),
        PRIMARY KEY (level, idx)
    )",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (
        tree_size BIGINT      PRIMARY KEY CHECK (tree_size >= 0),
        root_hash BYTEA       NOT NULL CHECK (octet_length(root_hash) = 32),
        signed_at TIMESTAMPTZ NOT NULL,
        note      TEXT        NOT NULL
    )",
];

/// A checkpoint as stored: the signed note and the values it signs, for indexing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root_hash: Hash,
    pub signed_at: DateTime<Utc>,
    /// The whole signed note (C2SP checkpoint text).
    pub note: String,
}

/// The audit tables' handle: the store's connection pool.
#[derive(Clone, Debug)]
pub enum AuditDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

fn to_hash(bytes: &[u8]) -> Result<Hash, sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("a stored hash is not 32 bytes".into()))
}

impl AuditDb {
    /// The audit tables on the store's own connection pool (creating them if they are
    /// missing). Sharing the pool gives them the store's timeouts and its release check (a
    /// connection whose transaction could not be ended is closed, never reused), and one
    /// close of the store closes them too.
    pub async fn open(db: &caretrail_store::Database) -> Result<Self, sqlx::Error> {
        let db = match db {
            caretrail_store::Database::Sqlite(p) => Self::Sqlite(p.clone()),
            caretrail_store::Database::Postgres(p) => Self::Postgres(p.clone()),
        };
        db.create_schema().await?;
        Ok(db)
    }

    async fn create_schema(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                for stmt in SQLITE_SCHEMA {
                    sqlx::query(*stmt).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Two processes opening a fresh database at once would race on the catalog;
                // a transaction-scoped advisory lock makes the second wait and find the tables.
                sqlx::query("SELECT pg_advisory_xact_lock(7336253612)")
                    .execute(&mut *tx)
                    .await?;
                for stmt in PG_SCHEMA {
                    sqlx::query(*stmt).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
        }
    }

    /// The stored hashes of `ids` (missing ones are absent from the map).
    pub async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, sqlx::Error> {
        let mut out = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        let levels: Vec<i64> = ids.iter().map(|n| i64::from(n.level)).collect();
        let idxs: Vec<i64> = ids.iter().map(|n| n.index as i64).collect();
        let rows = match self {
            Self::Sqlite(pool) => {
                // json_each turns two arrays into a key list for one indexed lookup per node.
                sqlx::query(
                    "SELECT n.level, n.idx, n.hash FROM json_each(?1) AS l \
                     JOIN json_each(?2) AS i ON i.key = l.key \
                     JOIN audit_merkle_nodes AS n ON n.level = l.value AND n.idx = i.value",
                )
                .bind(serde_json::to_string(&levels).unwrap_or_default())
                .bind(serde_json::to_string(&idxs).unwrap_or_default())
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| {
                    Ok((
                        r.try_get::<i64, _>(0)?,
                        r.try_get::<i64, _>(1)?,
                        to_hash(r.try_get::<&[u8], _>(2)?)?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
            Self::Postgres(pool) => {
                let levels: Vec<i16> = levels.iter().map(|l| *l as i16).collect();
                sqlx::query(
                    "SELECT n.level, n.idx, n.hash \
                     FROM UNNEST($1::smallint[], $2::bigint[]) AS k(level, idx) \
                     JOIN audit_merkle_nodes AS n ON n.level = k.level AND n.idx = k.idx",
                )
                .bind(levels)
                .bind(idxs)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| {
                    Ok((
                        i64::from(r.try_get::<i16, _>(0)?),
                        r.try_get::<i64, _>(1)?,
                        to_hash(r.try_get::<&[u8], _>(2)?)?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
        };
        for (level, idx, hash) in rows {
            out.insert(
                NodeId {
                    level: level as u8,
                    index: idx as u64,
                },
                hash,
            );
        }
        Ok(out)
    }

    /// Stores a checkpoint unless one of the same tree size exists; returns the stored one.
    pub async fn insert_checkpoint(
        &self,
        cp: &StoredCheckpoint,
    ) -> Result<StoredCheckpoint, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO audit_checkpoints (tree_size, root_hash, signed_at, note) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tree_size) DO NOTHING",
                )
                .bind(cp.tree_size as i64)
                .bind(&cp.root_hash[..])
                .bind(cp.signed_at.timestamp_micros())
                .bind(&cp.note)
                .execute(pool)
                .await?;
            }
            Self::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO audit_checkpoints (tree_size, root_hash, signed_at, note) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING",
                )
                .bind(cp.tree_size as i64)
                .bind(&cp.root_hash[..])
                .bind(cp.signed_at)
                .bind(&cp.note)
                .execute(pool)
                .await?;
            }
        }
        self.checkpoint_at(cp.tree_size)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    async fn query_checkpoints(
        &self,
        sqlite: &'static str,
        pg: &'static str,
        arg: Option<i64>,
    ) -> Result<Vec<StoredCheckpoint>, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => {
                let mut q = sqlx::query(sqlite);
                if let Some(a) = arg {
                    q = q.bind(a);
                }
                q.fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(StoredCheckpoint {
                            tree_size: r.try_get::<i64, _>(0)? as u64,
                            root_hash: to_hash(r.try_get::<&[u8], _>(1)?)?,
                            signed_at: DateTime::from_timestamp_micros(r.try_get(2)?)
                                .unwrap_or_default(),
                            note: r.try_get(3)?,
                        })
                    })
                    .collect()
            }
            Self::Postgres(pool) => {
                let mut q = sqlx::query(pg);
                if let Some(a) = arg {
                    q = q.bind(a);
                }
                q.fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(StoredCheckpoint {
                            tree_size: r.try_get::<i64, _>(0)? as u64,
                            root_hash: to_hash(r.try_get::<&[u8], _>(1)?)?,
                            signed_at: r.try_get(2)?,
                            note: r.try_get(3)?,
                        })
                    })
                    .collect()
            }
        }
    }

    /// The checkpoint of exactly `tree_size`, if one was signed.
    pub async fn checkpoint_at(
        &self,
        tree_size: u64,
    ) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
        Ok(self
            .query_checkpoints(
                "SELECT tree_size, root_hash, signed_at, note FROM audit_checkpoints \
                 WHERE tree_size = ?1",
                "SELECT tree_size, root_hash, signed_at, note FROM audit_checkpoints \
                 WHERE tree_size = $1",
                Some(tree_size as i64),
            )
            .await?
            .pop())
    }

    /// The checkpoint with the largest tree size.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
        Ok(self
            .query_checkpoints(
                "SELECT tree_size, root_hash, signed_at, note FROM audit_checkpoints \
                 ORDER BY tree_size DESC LIMIT 1",
                "SELECT tree_size, root_hash, signed_at, note FROM audit_checkpoints \
                 ORDER BY tree_size DESC LIMIT 1",
                None,
            )
            .await?
            .pop())
    }

    /// Every stored checkpoint, by tree size.
    pub async fn all_checkpoints(&self) -> Result<Vec<StoredCheckpoint>, sqlx::Error> {
        self.query_checkpoints(
            "SELECT tree_size, root_hash, signed_at, note FROM audit_checkpoints \
             ORDER BY tree_size",
            "SELECT tree_size, root_hash, signed_at, note FROM audit_checkpoints \
             ORDER BY tree_size",
            None,
        )
        .await
    }
}

/// Rows per multi-row `INSERT` on SQLite: 3 parameters each stays far below its limit.
const SQLITE_ROWS_PER_INSERT: usize = 500;

/// Writes `nodes` inside a consumer transaction. A node that already exists is kept: complete
/// subtrees never change, so a re-run after a crash writes the same values.
pub async fn insert_nodes(
    tx: &mut caretrail_store::ConsumerTxInner,
    nodes: &[(NodeId, Hash)],
) -> Result<(), sqlx::Error> {
    use caretrail_store::ConsumerTxInner;
    match tx {
        ConsumerTxInner::Sqlite(tx) => {
            for chunk in nodes.chunks(SQLITE_ROWS_PER_INSERT) {
                let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT INTO audit_merkle_nodes (level, idx, hash) ",
                );
                qb.push_values(chunk, |mut b, (id, hash)| {
                    b.push_bind(i64::from(id.level))
                        .push_bind(id.index as i64)
                        .push_bind(hash.to_vec());
                });
                qb.push(" ON CONFLICT (level, idx) DO NOTHING");
                qb.build().execute(&mut **tx).await?;
            }
        }
        ConsumerTxInner::Postgres(tx) => {
            let levels: Vec<i16> = nodes.iter().map(|(n, _)| i16::from(n.level)).collect();
            let idxs: Vec<i64> = nodes.iter().map(|(n, _)| n.index as i64).collect();
            let hashes: Vec<Vec<u8>> = nodes.iter().map(|(_, h)| h.to_vec()).collect();
            sqlx::query(
                "INSERT INTO audit_merkle_nodes (level, idx, hash) \
                 SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[]) \
                 ON CONFLICT (level, idx) DO NOTHING",
            )
            .bind(levels)
            .bind(idxs)
            .bind(hashes)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Reads nodes inside a consumer transaction (the frontier the consumer continues from).
pub async fn nodes_in_tx(
    tx: &mut caretrail_store::ConsumerTxInner,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, sqlx::Error> {
    use caretrail_store::ConsumerTxInner;
    let mut out = HashMap::new();
    for id in ids {
        let hash: Option<Vec<u8>> = match tx {
            ConsumerTxInner::Sqlite(tx) => {
                sqlx::query_scalar(
                    "SELECT hash FROM audit_merkle_nodes WHERE level = ?1 AND idx = ?2",
                )
                .bind(i64::from(id.level))
                .bind(id.index as i64)
                .fetch_optional(&mut **tx)
                .await?
            }
            ConsumerTxInner::Postgres(tx) => {
                sqlx::query_scalar(
                    "SELECT hash FROM audit_merkle_nodes WHERE level = $1 AND idx = $2",
                )
                .bind(i16::from(id.level))
                .bind(id.index as i64)
                .fetch_optional(&mut **tx)
                .await?
            }
        };
        if let Some(h) = hash {
            out.insert(*id, to_hash(&h)?);
        }
    }
    Ok(out)
}
