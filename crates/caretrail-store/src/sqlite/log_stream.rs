//! [`crate::stream_log`] on SQLite: a direct, read-only connection (rusqlite) on a blocking
//! thread steps one cached statement per page and sends each decoded page over a bounded
//! channel, so reading and the consumer's work overlap.
//!
//! Through the read pool every page went to sqlx's worker thread and came back as one packed
//! text value that was split and parsed again; here each row's values are taken straight from
//! SQLite's row, the payload copied once as the JSON text it was stored as. Order and filters
//! are those of [`crate::EventStore::read_log`]: positions after `after` up to `up_to` (the head
//! when the read starts), in log order, passing the filter. Each page is its own short read
//! transaction, so a slow consumer never holds the write-ahead log back from a checkpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use futures::{Stream, StreamExt};
use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::types::{LogQuery, RecordedEvent, from_micros};

/// Pages decoded ahead of the consumer.
const PREFETCH: usize = 3;

/// How long the reader waits for a lock held by the writer (a checkpoint of the log).
const BUSY: Duration = Duration::from_secs(30);

/// Pages after which the reader hands its page cache back: a scan's pages are cold once read
/// (see [`crate::bulk::LogReader::release_memory`]).
const RELEASE_EVERY: u32 = 16;

macro_rules! page {
    ($filter:literal) => {
        concat!(
            "SELECT position, stream_id, stream_version, event_id, event_type, schema_version, \
             data, actor_id, actor_role, command_id, correlation_id, causation_id, \
             business_date, recorded_at, leaf_hash FROM events \
             WHERE position > ?1 AND position <= ?2",
            $filter,
            " ORDER BY position LIMIT ?3"
        )
    };
}

/// Streams the log of the SQLite database file at `path` as `query` describes, `query.limit`
/// events per page.
pub(crate) fn stream_log(
    path: PathBuf,
    query: LogQuery,
) -> impl Stream<Item = Result<RecordedEvent>> + Send {
    // The reader starts on the first poll, inside the runtime that polls the stream.
    futures::stream::once(async move {
        let (pages, rx) = mpsc::channel(PREFETCH);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = read_pages(&path, &query, &pages) {
                let _ = pages.blocking_send(Err(e));
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) })
    })
    .flatten()
    .flat_map(|page: Result<Vec<RecordedEvent>>| match page {
        Ok(events) => futures::stream::iter(events.into_iter().map(Ok)).left_stream(),
        Err(e) => futures::stream::iter(std::iter::once(Err(e))).right_stream(),
    })
}

/// Opens the file read-only for this thread alone.
fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY)?;
    conn.execute_batch("PRAGMA cache_size = -4096;")?;
    Ok(conn)
}

/// Reads every page and sends it; stops early, without error, when the stream was dropped.
fn read_pages(
    path: &Path,
    query: &LogQuery,
    pages: &mpsc::Sender<Result<Vec<RecordedEvent>>>,
) -> Result<()> {
    let conn = open(path)?;
    let up_to = match query.up_to {
        Some(p) => p,
        None => {
            let head: i64 =
                conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                    r.get(0)
                })?;
            head.max(0) as u64
        }
    };
    let page = query.limit.max(1);
    let json = |list: &[String]| {
        (!list.is_empty()).then(|| serde_json::Value::from(list.to_vec()).to_string())
    };
    let types = json(&query.filter.event_types);
    let cats = json(&query.filter.categories);
    let sql = match (&types, &cats) {
        (None, None) => page!(""),
        (Some(_), None) => page!(" AND event_type IN (SELECT value FROM json_each(?4))"),
        (None, Some(_)) => page!(" AND category IN (SELECT value FROM json_each(?4))"),
        (Some(_), Some(_)) => page!(
            " AND event_type IN (SELECT value FROM json_each(?4)) \
              AND category IN (SELECT value FROM json_each(?5))"
        ),
    };
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let (up_to_sql, limit_sql) = (clamp(up_to), i64::try_from(page).unwrap_or(i64::MAX));
    let mut after = query.after;
    let mut read = 0u32;
    while after < up_to {
        let mut events = Vec::with_capacity(page.min(4_096));
        {
            let after_sql = clamp(after);
            let mut args: Vec<&dyn ToSql> = vec![&after_sql, &up_to_sql, &limit_sql];
            args.extend(types.iter().chain(&cats).map(|s| s as &dyn ToSql));
            let mut st = conn.prepare_cached(sql)?;
            let mut rows = st.query(&args[..])?;
            while let Some(r) = rows.next()? {
                events.push(decode(r)?);
            }
        }
        let full = events.len() == page;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        after = last;
        if pages.blocking_send(Ok(events)).is_err() {
            return Ok(());
        }
        if !full {
            break;
        }
        read += 1;
        if read.is_multiple_of(RELEASE_EVERY) {
            conn.execute_batch("PRAGMA shrink_memory")?;
        }
    }
    Ok(())
}

/// One row of [`page!`].
fn decode(r: &rusqlite::Row<'_>) -> Result<RecordedEvent> {
    let position = r.get::<_, i64>(0)? as u64;
    let corrupt = |what: &str| StoreError::Corrupt {
        position,
        reason: format!("{what} is malformed"),
    };
    let text = |i: usize, what: &str| -> Result<String> {
        Ok(r.get_ref(i)?
            .as_str()
            .map_err(|_| corrupt(what))?
            .to_owned())
    };
    let uuid = |i: usize, what: &str| -> Result<Option<Uuid>> {
        match r.get_ref(i)?.as_blob_or_null().map_err(|_| corrupt(what))? {
            None => Ok(None),
            Some(b) => Uuid::from_slice(b).map(Some).map_err(|_| corrupt(what)),
        }
    };
    let business_date = match r
        .get_ref(12)?
        .as_str_or_null()
        .map_err(|_| corrupt("business_date"))?
    {
        None => None,
        Some(d) => {
            Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| corrupt("business_date"))?)
        }
    };
    let leaf_hash = r
        .get_ref(14)?
        .as_blob()
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| corrupt("leaf_hash"))?;
    Ok(RecordedEvent {
        position,
        stream_id: text(1, "stream_id")?,
        stream_version: r.get::<_, i64>(2)? as u64,
        event_id: uuid(3, "event_id")?.ok_or_else(|| corrupt("event_id"))?,
        event_type: text(4, "event_type")?,
        schema_version: u32::try_from(r.get::<_, i64>(5)?)
            .map_err(|_| corrupt("schema_version"))?,
        data: text(6, "data")?,
        actor_id: text(7, "actor_id")?,
        actor_role: text(8, "actor_role")?,
        command_id: uuid(9, "command_id")?,
        correlation_id: uuid(10, "correlation_id")?,
        causation_id: uuid(11, "causation_id")?,
        business_date,
        recorded_at: from_micros(r.get(13)?),
        leaf_hash,
    })
}
