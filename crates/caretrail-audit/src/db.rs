//! The audit tables and their SQL, per backend.
//!
//! Two tables beside the event store's: `audit_merkle_nodes (level, idx, hash)` holds every
//! complete subtree of the log's Merkle tree (level 0 = the leaf hashes as the tree consumer saw
//! them), and `audit_checkpoints` every checkpoint the service signed. They are registered with
//! the store as the table set `audit` (`migrations/`, recorded in
//! `_caretrail_audit_migrations`); their first migration says `IF NOT EXISTS` because
//! databases made before that created them on their own.
//!
//! [`AuditTables`] holds the statements, implemented once for SQLite and once for PostgreSQL;
//! [`AuditDb::open`] picks the implementation, the one place this crate tells the backends
//! apart. Node writes happen inside the consumer transaction the store hands out
//! ([`caretrail_store::ConsumerTx`]), so the tree and the consumer's checkpoint commit together.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use caretrail_store::{ConsumerTx, EventStore, PgTables, SqliteTables, TableSet, Tables};
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::Result;
use crate::merkle::{Hash, NodeId};

/// The audit tables, registered with the store.
static TABLES: TableSet = TableSet {
    name: "audit",
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
};

/// A checkpoint as stored: the signed note and the values it signs, for indexing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Number of leaves (events) the checkpoint covers.
    pub tree_size: u64,
    /// The tree's root hash at that size.
    pub root_hash: Hash,
    /// When the checkpoint was signed (UTC).
    pub signed_at: DateTime<Utc>,
    /// The whole signed note (C2SP checkpoint text).
    pub note: String,
}

/// The audit tables' handle: their statements for the store's backend, on the store's pool.
/// Sharing the pool gives them the store's timeouts and its release check (a connection whose
/// transaction could not be ended is closed, never reused), and one close of the store closes
/// them too.
#[derive(Clone)]
pub struct AuditDb(Arc<dyn AuditTables>);

impl std::fmt::Debug for AuditDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditDb")
    }
}

fn to_hash(bytes: &[u8]) -> Result<Hash, sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("a stored hash is not 32 bytes".into()))
}

/// A stored signing time in microseconds (SQLite), refused when out of range rather than read
/// as the epoch.
fn from_micros(us: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| sqlx::Error::Decode("audit_checkpoints.signed_at is out of range".into()))
}

impl AuditDb {
    /// The audit tables in `store`'s database (creating them if they are missing).
    pub async fn open(store: &dyn EventStore) -> Result<Self> {
        Ok(Self(match store.tables(&TABLES).await? {
            Tables::Sqlite(t) => Arc::new(t),
            Tables::Postgres(t) => Arc::new(t),
        }))
    }

    /// The stored hashes of `ids` (missing ones are absent from the map).
    pub async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.0.nodes(ids).await
    }

    /// Stores a checkpoint unless one of the same tree size exists; returns the stored one.
    pub async fn insert_checkpoint(&self, cp: &StoredCheckpoint) -> Result<StoredCheckpoint> {
        self.0.insert_checkpoint(cp).await?;
        Ok(self
            .checkpoint_at(cp.tree_size)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?)
    }

    /// The checkpoint of exactly `tree_size`, if one was signed.
    pub async fn checkpoint_at(&self, tree_size: u64) -> Result<Option<StoredCheckpoint>> {
        Ok(self.0.checkpoints(Some(tree_size), false).await?.pop())
    }

    /// The checkpoint with the largest tree size.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        Ok(self.0.checkpoints(None, true).await?.pop())
    }

    /// Every stored checkpoint, by tree size.
    pub async fn all_checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        self.0.checkpoints(None, false).await
    }

    /// Writes `nodes` inside a consumer transaction. A node that already exists is kept:
    /// complete subtrees never change, so a re-run after a crash writes the same values.
    pub async fn insert_nodes(&self, tx: &mut ConsumerTx, nodes: &[(NodeId, Hash)]) -> Result<()> {
        self.0.insert_nodes(tx, nodes).await
    }

    /// Reads nodes inside a consumer transaction (the frontier the consumer continues from).
    pub async fn nodes_in_tx(
        &self,
        tx: &mut ConsumerTx,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>> {
        self.0.nodes_in_tx(tx, ids).await
    }
}

/// The audit tables' statements, once per backend.
#[async_trait]
trait AuditTables: Send + Sync {
    /// The stored hashes of `ids` (not empty).
    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>>;
    /// Stores a checkpoint unless one of the same tree size exists.
    async fn insert_checkpoint(&self, cp: &StoredCheckpoint) -> Result<()>;
    /// The checkpoints of tree size `size` (every one when `None`), by tree size; only the
    /// largest when `latest`.
    async fn checkpoints(&self, size: Option<u64>, latest: bool) -> Result<Vec<StoredCheckpoint>>;
    /// See [`AuditDb::insert_nodes`].
    async fn insert_nodes(&self, tx: &mut ConsumerTx, nodes: &[(NodeId, Hash)]) -> Result<()>;
    /// See [`AuditDb::nodes_in_tx`].
    async fn nodes_in_tx(
        &self,
        tx: &mut ConsumerTx,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>>;
}

/// A checkpoint query: the columns every one reads, then `$tail`.
macro_rules! checkpoints {
    ($tail:literal) => {
        concat!(
            "SELECT tree_size, root_hash, signed_at, note FROM audit_checkpoints ",
            $tail
        )
    };
}

/// The checkpoint query for `size` (every one when `None`) or the latest; `at` is the
/// backend's query of one size, whose placeholder differs.
fn checkpoint_sql(size: Option<u64>, latest: bool, at: &'static str) -> &'static str {
    match (size, latest) {
        (Some(_), _) => at,
        (None, true) => checkpoints!("ORDER BY tree_size DESC LIMIT 1"),
        (None, false) => checkpoints!("ORDER BY tree_size"),
    }
}

/// Rows per multi-row `INSERT` on SQLite: 3 parameters each stays far below its limit.
const SQLITE_ROWS_PER_INSERT: usize = 500;

/// SQLite: signing times as microseconds since the epoch.
#[async_trait]
impl AuditTables for SqliteTables {
    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        let levels: Vec<i64> = ids.iter().map(|n| i64::from(n.level)).collect();
        let idxs: Vec<i64> = ids.iter().map(|n| n.index as i64).collect();
        // json_each turns two arrays into a key list for one indexed lookup per node.
        let rows = sqlx::query(
            "SELECT n.level, n.idx, n.hash FROM json_each(?1) AS l \
             JOIN json_each(?2) AS i ON i.key = l.key \
             JOIN audit_merkle_nodes AS n ON n.level = l.value AND n.idx = i.value",
        )
        .bind(serde_json::to_string(&levels).unwrap_or_default())
        .bind(serde_json::to_string(&idxs).unwrap_or_default())
        .fetch_all(self.pool())
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(
                NodeId {
                    level: r.try_get::<i64, _>(0)? as u8,
                    index: r.try_get::<i64, _>(1)? as u64,
                },
                to_hash(r.try_get::<&[u8], _>(2)?)?,
            );
        }
        Ok(out)
    }

    async fn insert_checkpoint(&self, cp: &StoredCheckpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, signed_at, note) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(cp.tree_size as i64)
        .bind(&cp.root_hash[..])
        .bind(cp.signed_at.timestamp_micros())
        .bind(&cp.note)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn checkpoints(&self, size: Option<u64>, latest: bool) -> Result<Vec<StoredCheckpoint>> {
        let mut q = sqlx::query(checkpoint_sql(
            size,
            latest,
            checkpoints!("WHERE tree_size = ?1"),
        ));
        if let Some(size) = size {
            q = q.bind(size as i64);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(StoredCheckpoint {
                tree_size: r.try_get::<i64, _>(0)? as u64,
                root_hash: to_hash(r.try_get::<&[u8], _>(1)?)?,
                signed_at: from_micros(r.try_get(2)?)?,
                note: r.try_get(3)?,
            });
        }
        Ok(out)
    }

    async fn insert_nodes(&self, tx: &mut ConsumerTx, nodes: &[(NodeId, Hash)]) -> Result<()> {
        let conn = tx.sqlite()?;
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
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn nodes_in_tx(
        &self,
        tx: &mut ConsumerTx,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>> {
        let conn = tx.sqlite()?;
        let mut out = HashMap::new();
        for id in ids {
            let hash: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT hash FROM audit_merkle_nodes WHERE level = ?1 AND idx = ?2",
            )
            .bind(i64::from(id.level))
            .bind(id.index as i64)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(h) = hash {
                out.insert(*id, to_hash(&h)?);
            }
        }
        Ok(out)
    }
}

/// PostgreSQL: signing times as `timestamptz`, levels as `smallint`.
#[async_trait]
impl AuditTables for PgTables {
    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        let levels: Vec<i16> = ids.iter().map(|n| i16::from(n.level)).collect();
        let idxs: Vec<i64> = ids.iter().map(|n| n.index as i64).collect();
        let rows = sqlx::query(
            "SELECT n.level, n.idx, n.hash \
             FROM UNNEST($1::smallint[], $2::bigint[]) AS k(level, idx) \
             JOIN audit_merkle_nodes AS n ON n.level = k.level AND n.idx = k.idx",
        )
        .bind(levels)
        .bind(idxs)
        .fetch_all(self.pool())
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(
                NodeId {
                    level: r.try_get::<i16, _>(0)? as u8,
                    index: r.try_get::<i64, _>(1)? as u64,
                },
                to_hash(r.try_get::<&[u8], _>(2)?)?,
            );
        }
        Ok(out)
    }

    async fn insert_checkpoint(&self, cp: &StoredCheckpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (tree_size, root_hash, signed_at, note) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(cp.tree_size as i64)
        .bind(&cp.root_hash[..])
        .bind(cp.signed_at)
        .bind(&cp.note)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn checkpoints(&self, size: Option<u64>, latest: bool) -> Result<Vec<StoredCheckpoint>> {
        let mut q = sqlx::query(checkpoint_sql(
            size,
            latest,
            checkpoints!("WHERE tree_size = $1"),
        ));
        if let Some(size) = size {
            q = q.bind(size as i64);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(StoredCheckpoint {
                tree_size: r.try_get::<i64, _>(0)? as u64,
                root_hash: to_hash(r.try_get::<&[u8], _>(1)?)?,
                signed_at: r.try_get(2)?,
                note: r.try_get(3)?,
            });
        }
        Ok(out)
    }

    async fn insert_nodes(&self, tx: &mut ConsumerTx, nodes: &[(NodeId, Hash)]) -> Result<()> {
        let conn = tx.postgres()?;
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
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn nodes_in_tx(
        &self,
        tx: &mut ConsumerTx,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>> {
        let conn = tx.postgres()?;
        let mut out = HashMap::new();
        for id in ids {
            let hash: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT hash FROM audit_merkle_nodes WHERE level = $1 AND idx = $2",
            )
            .bind(i16::from(id.level))
            .bind(id.index as i64)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(h) = hash {
                out.insert(*id, to_hash(&h)?);
            }
        }
        Ok(out)
    }
}
