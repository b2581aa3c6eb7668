//! The SQLite writer's own OS thread: one direct connection (rusqlite) that plans and commits
//! every batch of the group-commit task, with each statement prepared once and stepped in place.
//!
//! Through sqlx every statement of a batch was a round trip to the driver's worker thread
//! (BEGIN, the snapshot, each multi-row insert, COMMIT), and every bound value was copied into
//! an argument buffer first. Here the whole batch (snapshot, planning, inserts, commit) runs on
//! the thread that owns the connection, so a batch costs one hand-over each way, whatever its
//! size. The guarantees are the same as before: `BEGIN IMMEDIATE` (a second process waits on
//! the busy timeout instead of interleaving), WAL with `synchronous=FULL` (an acknowledged
//! append has been fsync'd), and the schema's triggers check every row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::plan::{self, Snapshot};
use crate::types::{AppendRequest, Head, from_micros, to_micros};
use crate::writer::{BatchBackend, Committed, PROBE_ROW};

/// How long the writer waits for the write lock held by another connection (a consumer's
/// transaction, another process) before the batch fails as busy.
const BUSY: Duration = Duration::from_secs(30);

const HEAD: &str = "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1";
const STREAM_VERSION: &str = "SELECT MAX(stream_version) FROM events WHERE stream_id = ?1";
const STORED_RESULT: &str = "SELECT result FROM commands WHERE command_id = ?1";
const INSERT_EVENT: &str = "INSERT INTO events (position, stream_id, stream_version, event_id, \
    event_type, schema_version, data, actor_id, actor_role, command_id, correlation_id, \
    causation_id, business_date, recorded_at, leaf_hash, category) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
const INSERT_COMMAND: &str =
    "INSERT INTO commands (command_id, result, recorded_at) VALUES (?1, ?2, ?3)";
const EVENT_EXISTS: &str = "SELECT 1 FROM events WHERE event_id = ?1";
const PROBE: &str = "INSERT INTO consumer_checkpoints (name, position, updated_at) \
    VALUES (?1, (SELECT COALESCE(MAX(position), 0) FROM events), ?2) \
    ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
    updated_at = excluded.updated_at";

/// Work for the writer thread, each with the channel its answer goes back on.
enum Job {
    Commit {
        reqs: Vec<AppendRequest>,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<Committed>>,
    },
    ExistingIds {
        ids: Vec<Uuid>,
        reply: oneshot::Sender<Result<Vec<Uuid>>>,
    },
    Probe {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// The group-commit task's handle on the writer thread. Dropping it (when the store's last
/// handle goes) ends the thread, which closes its connection.
pub(super) struct ThreadWriter {
    jobs: mpsc::Sender<Job>,
}

impl ThreadWriter {
    /// Opens the writer's connection to the (already migrated) database file at `path` and
    /// starts its thread. The first connection is opened here so that a file that cannot be
    /// written fails the store's opening, not its first append.
    pub(super) fn start(path: &Path) -> Result<Self> {
        let conn = open(path)?;
        let (jobs, rx) = mpsc::channel();
        let mut thread = WriterThread {
            conn: Some(conn),
            path: path.to_owned(),
        };
        std::thread::Builder::new()
            .name("caretrail-sqlite-writer".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    thread.run(job);
                }
            })
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        Ok(Self { jobs })
    }

    /// Hands a job to the thread and waits for its answer; [`StoreError::Closed`] if the
    /// thread is gone.
    async fn call<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T>>) -> Job) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(job(reply)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl BatchBackend for ThreadWriter {
    #[tracing::instrument(name = "store.sqlite.commit_batch", skip_all, fields(appends = reqs.len()))]
    async fn commit_batch(
        &mut self,
        reqs: &[&AppendRequest],
        now: DateTime<Utc>,
    ) -> Result<Committed> {
        // The thread needs the requests for as long as it works on them; the copy is a few
        // allocations per append, next to the copies planning makes into the stored rows.
        let reqs: Vec<AppendRequest> = reqs.iter().map(|r| (*r).clone()).collect();
        self.call(|reply| Job::Commit { reqs, now, reply }).await
    }

    async fn existing_event_ids(&mut self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        let ids = ids.to_vec();
        self.call(|reply| Job::ExistingIds { ids, reply }).await
    }

    async fn probe(&mut self) -> Result<()> {
        self.call(|reply| Job::Probe { reply }).await
    }
}

/// Opens a writer connection with the settings durability depends on.
fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY)?;
    // WAL is a property of the file (set when the store first opened it); synchronous=FULL is
    // a property of the connection and is what makes COMMIT wait for the fsync of the log.
    // The page cache matches the read pool's, so index pages stay hot.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -16384; PRAGMA mmap_size = 268435456;",
    )?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// The thread's state: its connection, and where to open it again.
struct WriterThread {
    /// `None` after a transaction could not be ended cleanly and no new connection could be
    /// opened yet; the next job opens one.
    conn: Option<Connection>,
    path: PathBuf,
}

impl WriterThread {
    fn run(&mut self, job: Job) {
        // A caller that stopped waiting (its task was cancelled) loses only its answer: the
        // work is done or not done exactly as if it had waited.
        match job {
            Job::Commit { reqs, now, reply } => {
                let refs: Vec<&AppendRequest> = reqs.iter().collect();
                let _ = reply.send(self.in_transaction(|c| commit(c, &refs, now)));
            }
            Job::ExistingIds { ids, reply } => {
                let _ = reply.send(self.conn().and_then(|c| existing(c, &ids)));
            }
            Job::Probe { reply } => {
                let _ = reply.send(self.in_transaction(|c| {
                    c.prepare_cached(PROBE)?
                        .execute(params![PROBE_ROW, to_micros(Utc::now())])?;
                    Ok(())
                }));
            }
        }
    }

    /// The connection, opened again if it was dropped.
    fn conn(&mut self) -> Result<&Connection> {
        if self.conn.is_none() {
            self.conn = Some(open(&self.path)?);
            tracing::info!("event store writer reopened its connection");
        }
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Database(sqlx::Error::WorkerCrashed))
    }

    /// Runs `work` inside `BEGIN IMMEDIATE` ... `COMMIT`. On failure the transaction is rolled
    /// back if it is still open (SQLite may already have rolled it back by itself, after a full
    /// disk); if even the ROLLBACK fails, the connection's state is unknown, so it is closed
    /// and the next job opens a fresh one. A connection left inside a transaction would fail
    /// every later `BEGIN` until a restart.
    fn in_transaction<T>(&mut self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn()?;
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let result = work(conn).and_then(|value| {
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(value)
        });
        if result.is_err()
            && !conn.is_autocommit()
            && let Err(e) = conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "writer could not roll back; replacing its connection");
            self.conn = None;
        }
        result
    }
}

/// Plans and inserts one batch inside the open transaction.
fn commit(conn: &Connection, reqs: &[&AppendRequest], now: DateTime<Utc>) -> Result<Committed> {
    let snap = snapshot(conn, reqs)?;
    let plan = plan::plan(reqs, snap, now);
    insert(conn, &plan)?;
    Ok(Committed {
        outcomes: plan.outcomes,
        events: plan.events,
    })
}

/// What planning needs: the head, the versions of the batch's streams, and the stored results
/// of its command ids, each read with a cached point lookup.
fn snapshot(conn: &Connection, reqs: &[&AppendRequest]) -> Result<Snapshot> {
    let head = conn
        .prepare_cached(HEAD)?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?;
    let head = match head {
        None => Head::default(),
        Some((position, at)) => Head {
            position: position as u64,
            recorded_at: Some(from_micros(at)),
        },
    };
    let mut versions = HashMap::new();
    let mut st = conn.prepare_cached(STREAM_VERSION)?;
    for stream in plan::streams_of(reqs) {
        let v: Option<i64> = st.query_row([stream], |r| r.get(0))?;
        if let Some(v) = v {
            versions.insert(stream.to_owned(), v as u64);
        }
    }
    let mut commands = HashMap::new();
    let mut st = conn.prepare_cached(STORED_RESULT)?;
    for id in plan::commands_of(reqs) {
        let stored: Option<String> = st
            .query_row([&id.as_bytes()[..]], |r| r.get(0))
            .optional()?;
        if let Some(text) = stored {
            commands.insert(id, crate::types::stored_result(id, &text)?);
        }
    }
    Ok(Snapshot {
        head,
        versions,
        commands,
    })
}

/// Inserts a planned batch's events and command results, one cached statement each, stepped
/// once per row.
fn insert(conn: &Connection, plan: &plan::Plan) -> Result<()> {
    let blob = |id: Option<Uuid>| id.map(|u| *u.as_bytes());
    let mut st = conn.prepare_cached(INSERT_EVENT)?;
    for e in &plan.events {
        st.execute(params![
            e.position as i64,
            e.stream_id,
            e.stream_version as i64,
            &e.event_id.as_bytes()[..],
            e.event_type,
            i64::from(e.schema_version),
            e.data,
            e.actor_id,
            e.actor_role,
            blob(e.command_id),
            blob(e.correlation_id),
            blob(e.causation_id),
            e.business_date.map(|d| d.format("%Y-%m-%d").to_string()),
            to_micros(e.recorded_at),
            &e.leaf_hash[..],
            e.category(),
        ])?;
    }
    if !plan.commands.is_empty() {
        let mut st = conn.prepare_cached(INSERT_COMMAND)?;
        for (id, result) in &plan.commands {
            let text = serde_json::to_string(result).map_err(|e| {
                StoreError::InvalidAppend(format!(
                    "the result of command {id} does not serialise: {e}"
                ))
            })?;
            st.execute(params![
                &id.as_bytes()[..],
                text,
                to_micros(result.recorded_at)
            ])?;
        }
    }
    Ok(())
}

/// Which of `ids` are stored as event ids.
fn existing(conn: &Connection, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    let mut st = conn.prepare_cached(EVENT_EXISTS)?;
    let mut found = Vec::new();
    for id in ids {
        if st.exists([&id.as_bytes()[..]])? {
            found.push(*id);
        }
    }
    Ok(found)
}
