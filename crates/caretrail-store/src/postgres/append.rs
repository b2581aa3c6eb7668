//! The PostgreSQL half of group commit: a batch in one round trip.
//!
//! The writer plans a batch (with [`crate::plan`]) against what it last knew of the log: the
//! head, and the versions of streams it wrote or read before. It then sends the plan to the
//! server-side function `caretrail_append` (migration 0002) as one statement outside any
//! explicit transaction. Under the append lock, the function checks that the head, every named
//! stream's version and the absence of the command ids planned as new are exactly as planned;
//! only then does it insert and notify, and the statement's implicit transaction commits
//! before the answer arrives. Lock, checks, inserts, notify and COMMIT are one round trip.
//!
//! When the writer's knowledge was stale (another process appended, a stream it never saw
//! already exists, a command id was stored) the function writes nothing and returns what it
//! read under the lock; the writer plans again from that. Every guarantee is decided under the
//! lock by the database: positions continue the head, expected versions are checked against
//! the actual versions (which a conflict reports), and stored command results are replayed.
//! Knowledge can only make a round trip wasted, never an append wrong. After a few stale
//! attempts in a row (appenders in other processes keep moving the head), the writer holds
//! the lock across a transaction of its own, in which the second attempt cannot be stale, so
//! every batch ends.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Connection, PgConnection, Postgres, Row};
use uuid::Uuid;

use super::{BEGIN_AND_LOCK, NOTIFY_CHANNEL};
use crate::error::Result;
use crate::plan::{self, Snapshot};
use crate::pool::bounded;
use crate::types::{AppendRequest, AppendResult, Head};
use crate::writer::{self, BatchBackend, Committed};

/// Unlocked attempts per batch before the writer takes the append lock for a transaction of
/// its own. The first attempt after a start or a failure is stale by construction (the writer
/// knows nothing), so two are needed to commit without the lock at all.
const UNLOCKED_ATTEMPTS: usize = 3;

/// Most stream versions the writer remembers; past this it forgets them all (a forgotten
/// stream costs one stale attempt when next written, nothing else).
const KNOWN_STREAMS: usize = 65_536;

/// The writer's backend: its connection, kept between batches, and what it knows of the log.
pub(super) struct PgWriter {
    pool: PgPool,
    deadline: Duration,
    /// The connection of the last successful batch. Taken out for each batch and put back only
    /// on success, so a batch that failed or was abandoned returns its connection to the pool,
    /// whose release check closes it if it is broken or still inside a transaction.
    conn: Option<PoolConnection<Postgres>>,
    /// What the last successful batch left known, if anything. Taken for each batch, like
    /// `conn`: after a failure the writer assumes nothing.
    known: Option<Known>,
}

/// The log as the writer last saw it under the lock.
struct Known {
    /// The head, if known at all.
    head: Option<Head>,
    /// Stream versions (0 for a stream known to be empty).
    versions: HashMap<String, u64>,
}

impl Known {
    fn remember(&mut self, stream: &str, version: u64) {
        if self.versions.len() >= KNOWN_STREAMS && !self.versions.contains_key(stream) {
            self.versions.clear();
        }
        self.versions.insert(stream.to_owned(), version);
    }
}

/// What one call of `caretrail_append` came to.
enum Attempt {
    /// The plan was committed.
    Written(Committed),
    /// The plan was stale and nothing was written; this is what the function read instead.
    Stale(Read),
}

/// The function's reading of the log under the lock.
struct Read {
    head: Head,
    /// Versions of the batch's streams, in the order they were sent.
    versions: Vec<u64>,
    /// Stored results of command ids the plan took as new.
    stored: Vec<(Uuid, String)>,
}

impl PgWriter {
    pub(super) fn new(pool: PgPool, deadline: Duration) -> Self {
        Self {
            pool,
            deadline,
            conn: None,
            known: None,
        }
    }

    /// Gives the kept connection back to the pool, for operations that use the pool.
    fn release(&mut self) {
        self.conn = None;
        self.known = None;
    }

    async fn commit_batch_now(
        &mut self,
        reqs: &[&AppendRequest],
        now: DateTime<Utc>,
    ) -> Result<Committed> {
        let known = self.known.take();
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.pool.acquire().await?,
        };
        let (done, known) = commit_on(&mut conn, reqs, now, known).await?;
        self.conn = Some(conn);
        self.known = Some(known);
        Ok(done)
    }
}

#[async_trait]
impl BatchBackend for PgWriter {
    #[tracing::instrument(name = "store.postgres.commit_batch", skip_all, fields(appends = reqs.len()))]
    async fn commit_batch(
        &mut self,
        reqs: &[&AppendRequest],
        now: DateTime<Utc>,
    ) -> Result<Committed> {
        // A batch that outlives the deadline is abandoned: its connection goes back to the
        // pool, whose release check discards it; the server rolls back whatever was open (or
        // `idle_in_transaction_session_timeout` does, if the connection went silent), and the
        // callers hear `Unresponsive`. Had the commit already happened, a retry with the same
        // command id finds the stored result.
        bounded(self.deadline, self.commit_batch_now(reqs, now)).await
    }

    async fn existing_event_ids(&mut self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        self.release();
        bounded(self.deadline, async {
            Ok(
                sqlx::query_scalar("SELECT event_id FROM events WHERE event_id = ANY($1)")
                    .bind(ids)
                    .fetch_all(&self.pool)
                    .await?,
            )
        })
        .await
    }

    async fn probe(&mut self) -> Result<()> {
        self.release();
        bounded(self.deadline, async {
            sqlx::query(
                "INSERT INTO consumer_checkpoints (name, position, updated_at) \
                 VALUES ($1, (SELECT COALESCE(MAX(position), 0) FROM events), now()) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
                 updated_at = excluded.updated_at",
            )
            .bind(writer::PROBE_ROW)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }
}

/// Commits `reqs` on `conn`: unlocked attempts first, then, if other appenders kept making
/// them stale, attempts inside a transaction holding the append lock.
async fn commit_on(
    conn: &mut PgConnection,
    reqs: &[&AppendRequest],
    now: DateTime<Utc>,
    known: Option<Known>,
) -> Result<(Committed, Known)> {
    let streams = plan::streams_of(reqs);
    let cmds = plan::commands_of(reqs);
    let mut known = known.unwrap_or(Known {
        head: None,
        versions: HashMap::new(),
    });
    let mut stored: HashMap<Uuid, AppendResult> = HashMap::new();
    for _ in 0..UNLOCKED_ATTEMPTS {
        match attempt(conn, reqs, &streams, &cmds, &known, &stored, now).await? {
            Attempt::Written(done) => return Ok(learn_written(known, done)),
            Attempt::Stale(read) => learn_stale(&mut known, &mut stored, &streams, read)?,
        }
    }
    tracing::debug!(
        appends = reqs.len(),
        "appends of other processes kept the batch's plan stale; planning under the lock"
    );
    let mut tx = conn.begin_with(BEGIN_AND_LOCK).await?;
    loop {
        match attempt(&mut tx, reqs, &streams, &cmds, &known, &stored, now).await? {
            Attempt::Written(done) => {
                tx.commit().await?;
                return Ok(learn_written(known, done));
            }
            // Holding the lock, only the first attempt here can be stale: nobody else writes.
            Attempt::Stale(read) => learn_stale(&mut known, &mut stored, &streams, read)?,
        }
    }
}

/// Updates `known` with a committed plan's events.
fn learn_written(mut known: Known, done: Committed) -> (Committed, Known) {
    for e in &done.events {
        known.remember(&e.stream_id, e.stream_version);
    }
    if let Some(last) = done.events.last() {
        known.head = Some(Head {
            position: last.position,
            recorded_at: Some(last.recorded_at),
        });
    }
    (done, known)
}

/// Replaces `known` with what the function read, and adds the stored results it found.
fn learn_stale(
    known: &mut Known,
    stored: &mut HashMap<Uuid, AppendResult>,
    streams: &[&str],
    read: Read,
) -> Result<()> {
    known.head = Some(read.head);
    for (s, v) in streams.iter().zip(read.versions) {
        known.remember(s, v);
    }
    for (id, result) in read.stored {
        stored.insert(id, crate::types::stored_result(id, &result)?);
    }
    Ok(())
}

/// Plans the batch against `known` and `stored`, and calls `caretrail_append` once. With no
/// head known, it plans nothing and expects a head no log has: the call only reads.
async fn attempt(
    conn: &mut PgConnection,
    reqs: &[&AppendRequest],
    streams: &[&str],
    cmds: &[Uuid],
    known: &Known,
    stored: &HashMap<Uuid, AppendResult>,
    now: DateTime<Utc>,
) -> Result<Attempt> {
    let (reqs, head, expected_head) = match known.head {
        Some(h) => (reqs, h, i64::try_from(h.position).unwrap_or(i64::MAX)),
        None => (&[][..], Head::default(), -1),
    };
    let expected: Vec<i64> = streams
        .iter()
        .map(|s| known.versions.get(*s).copied().unwrap_or(0) as i64)
        .collect();
    let new_commands: Vec<Uuid> = cmds
        .iter()
        .filter(|c| !stored.contains_key(c))
        .copied()
        .collect();
    let plan = plan::plan(
        reqs,
        Snapshot {
            head,
            versions: streams
                .iter()
                .zip(&expected)
                .filter(|(_, v)| **v > 0)
                .map(|(s, v)| ((*s).to_owned(), *v as u64))
                .collect(),
            commands: stored.clone(),
        },
        now,
    );
    let ev = &plan.events;
    let c = &plan.commands;
    let results = c
        .iter()
        .map(|(_, r)| serde_json::to_string(r))
        .collect::<serde_json::Result<Vec<_>>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let row = sqlx::query(
        "SELECT written, head, head_at, versions, stored_ids, stored_results \
         FROM caretrail_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                               $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)",
    )
    .bind(expected_head)
    .bind(streams)
    .bind(&expected)
    .bind(&new_commands)
    .bind(ev.iter().map(|e| e.position as i64).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.stream_id.as_str()).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.category()).collect::<Vec<_>>())
    .bind(
        ev.iter()
            .map(|e| e.stream_version as i64)
            .collect::<Vec<_>>(),
    )
    .bind(ev.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
    .bind(
        ev.iter()
            .map(|e| e.schema_version as i32)
            .collect::<Vec<_>>(),
    )
    .bind(ev.iter().map(|e| e.data.as_str()).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.actor_id.as_str()).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.actor_role.as_str()).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.command_id).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.correlation_id).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.causation_id).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.business_date).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| e.recorded_at).collect::<Vec<_>>())
    .bind(ev.iter().map(|e| &e.leaf_hash[..]).collect::<Vec<_>>())
    .bind(c.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(results)
    .bind(c.iter().map(|(_, r)| r.recorded_at).collect::<Vec<_>>())
    .bind(NOTIFY_CHANNEL)
    .fetch_one(&mut *conn)
    .await?;
    if row.try_get::<bool, _>(0)? && expected_head >= 0 {
        return Ok(Attempt::Written(Committed {
            outcomes: plan.outcomes,
            events: plan.events,
        }));
    }
    Ok(Attempt::Stale(read_of(&row)?))
}

fn read_of(row: &PgRow) -> Result<Read> {
    let position: i64 = row.try_get(1)?;
    let versions: Vec<i64> = row.try_get(3)?;
    let ids: Vec<Uuid> = row.try_get(4)?;
    let results: Vec<String> = row.try_get(5)?;
    Ok(Read {
        head: Head {
            position: position as u64,
            recorded_at: row.try_get(2)?,
        },
        versions: versions.into_iter().map(|v| v as u64).collect(),
        stored: ids.into_iter().zip(results).collect(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_function_takes_the_append_lock() {
        let sql = include_str!("../../migrations/postgres/0002_append_function.sql");
        assert!(sql.contains(&format!(
            "pg_advisory_xact_lock({})",
            super::super::APPEND_LOCK
        )));
    }
}
