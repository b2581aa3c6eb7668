//! Reading a SQLite store's log in bulk, on a direct connection (rusqlite, the same
//! libsqlite3-sys as sqlx, so one SQLite library is linked), for a consumer that folds the
//! whole log at the engine's speed: the projection rebuild.
//!
//! sqlx sends each statement to its connection's worker thread and copies every value out of
//! every row; stepping one cached prepared statement over the log in place, and handing each
//! row's fields out borrowed, reads about ten times faster. [`LogReader`] does that, and keeps
//! the SQL against the `events` table here, beside the schema, where the conformance suite
//! covers it; a consumer never writes SQL against the log itself.
//!
//! [`read_checkpoint`] and [`write_checkpoint`] do the same for a consumer's checkpoint on a
//! direct connection of its own, in the transaction that writes its effects (the exactly-once
//! rule of [`crate::ConsumerTx`]).

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use rusqlite::{OpenFlags, OptionalExtension, params};
use uuid::Uuid;

use crate::error::{Result, StoreError};

/// Up to `?2` events after position `?1`, in log order.
const READ_EVENTS: &str = "SELECT position, event_id, stream_id, event_type, schema_version, \
    data, actor_id, actor_role, business_date, recorded_at \
    FROM events WHERE position > ?1 ORDER BY position LIMIT ?2";

/// How long the reader waits for a lock held by the store's writer (a checkpoint of the
/// write-ahead log) before giving up.
const BUSY: Duration = Duration::from_secs(30);

/// One stored event as the reader steps over it: text fields are borrowed from the row, so
/// nothing is copied that the consumer does not keep.
#[derive(Clone, Copy, Debug)]
pub struct LogRow<'r> {
    /// The global position.
    pub position: u64,
    /// The event's id.
    pub event_id: Uuid,
    /// The stream the event belongs to.
    pub stream_id: &'r str,
    /// The event type.
    pub event_type: &'r str,
    /// The payload's schema version.
    pub schema_version: u32,
    /// The payload, the JSON text exactly as appended.
    pub data: &'r str,
    /// Who recorded it.
    pub actor_id: &'r str,
    /// In which role.
    pub actor_role: &'r str,
    /// The business date the event is about, if it has one.
    pub business_date: Option<NaiveDate>,
    /// Microseconds since the Unix epoch, UTC.
    pub recorded_at_us: i64,
}

/// A read-only, direct connection to a SQLite store's file, for one thread (no SQLite mutex).
pub struct LogReader {
    conn: rusqlite::Connection,
}

impl LogReader {
    /// Opens the store's file at `path` (see [`crate::EventStore::sqlite_file`]) for reading.
    /// Its page cache is small (4 MiB): a sequential scan reads each page once.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY)?;
        conn.execute_batch("PRAGMA cache_size = -4096;")?;
        Ok(Self { conn })
    }

    /// The head position as stored now (0 for an empty log).
    pub fn head(&self) -> Result<u64> {
        let head: i64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                    r.get(0)
                })?;
        Ok(head.max(0) as u64)
    }

    /// Steps over up to `limit` events after position `after`, in log order, handing each to
    /// `each` (which stops the read with its first error), and answers the last position read
    /// (`None` when there was no event after `after`). A row that does not decode is
    /// [`StoreError::Corrupt`].
    pub fn read<E: From<StoreError>>(
        &mut self,
        after: u64,
        limit: usize,
        mut each: impl FnMut(LogRow<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<Option<u64>, E> {
        let mut last = None;
        let mut st = self
            .conn
            .prepare_cached(READ_EVENTS)
            .map_err(StoreError::from)?;
        let mut rows = st
            .query(params![
                i64::try_from(after).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ])
            .map_err(StoreError::from)?;
        while let Some(r) = rows.next().map_err(StoreError::from)? {
            let row = decode(r)?;
            last = Some(row.position);
            each(row)?;
        }
        Ok(last)
    }

    /// Releases the connection's page cache. A scan's pages are cold once read; in WAL mode,
    /// with a writer committing beside it, the cache was seen holding several times its bound
    /// (54 MB at 2.2M events with a 16 MiB bound), so a long reader releases it after every
    /// batch.
    pub fn release_memory(&self) -> Result<()> {
        Ok(self.conn.execute_batch("PRAGMA shrink_memory")?)
    }
}

/// One row of [`READ_EVENTS`].
fn decode<'r>(r: &'r rusqlite::Row<'r>) -> Result<LogRow<'r>> {
    let position = r.get::<_, i64>(0)? as u64;
    let corrupt = |reason: &str| StoreError::Corrupt {
        position,
        reason: reason.to_owned(),
    };
    let text = |i: usize, what: &str| -> Result<&'r str> {
        r.get_ref(i)?.as_str().map_err(|_| corrupt(what))
    };
    let event_id = r
        .get_ref(1)?
        .as_blob()
        .ok()
        .and_then(|b| Uuid::from_slice(b).ok())
        .ok_or_else(|| corrupt("event id is not 16 bytes"))?;
    let business_date = match r
        .get_ref(8)?
        .as_str_or_null()
        .map_err(|_| corrupt("business date is not text"))?
    {
        Some(d) => Some(
            d.parse::<NaiveDate>()
                .map_err(|_| corrupt("business date is not a date"))?,
        ),
        None => None,
    };
    Ok(LogRow {
        position,
        event_id,
        stream_id: text(2, "stream id is not text")?,
        event_type: text(3, "event type is not text")?,
        schema_version: u32::try_from(r.get::<_, i64>(4)?)
            .map_err(|_| corrupt("schema version is out of range"))?,
        data: text(5, "payload is not text")?,
        actor_id: text(6, "actor id is not text")?,
        actor_role: text(7, "actor role is not text")?,
        business_date,
        recorded_at_us: r.get(9)?,
    })
}

/// A consumer's checkpoint as stored (0 when it has none), read on a direct connection.
pub fn read_checkpoint(conn: &rusqlite::Connection, consumer: &str) -> Result<u64> {
    let position: Option<i64> = conn
        .query_row(crate::sqlite::bulk::READ_CHECKPOINT, [consumer], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(position.unwrap_or(0).max(0) as u64)
}

/// Sets a consumer's checkpoint on a direct connection, inside the transaction that writes
/// the effects it covers.
pub fn write_checkpoint(conn: &rusqlite::Connection, consumer: &str, position: u64) -> Result<()> {
    conn.execute(
        crate::sqlite::bulk::WRITE_CHECKPOINT,
        params![
            consumer,
            i64::try_from(position).unwrap_or(i64::MAX),
            chrono::Utc::now().timestamp_micros()
        ],
    )?;
    Ok(())
}
