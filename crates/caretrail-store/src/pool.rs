//! Connection pools and deadlines shared by both backends.
//!
//! Two rules hold for every pooled connection, whichever crate uses it (the store, the read
//! models, the key ring, the token table and the audit tables all borrow the store's pool):
//!
//! - **A connection goes back into the pool only outside any transaction and only if it
//!   answers.** When a transaction's COMMIT or ROLLBACK fails (SQLite on a full disk rolls the
//!   transaction back itself, and the ROLLBACK that follows then fails too), sqlx still counts
//!   the connection as inside the transaction; returned to the pool like that, every later
//!   `begin` on it failed with "attempted to call begin_with at non-zero transaction depth",
//!   so the dashboards and the audit tree stopped until a restart. The release hook closes
//!   such a connection instead and the pool opens a fresh one. It also closes a connection that
//!   does not answer a ping in time: a query abandoned on a silent PostgreSQL connection (its
//!   caller timed out) would otherwise keep sqlx's own, unbounded release ping, and with it a
//!   pool slot, forever.
//! - **On PostgreSQL nothing waits on the database without a deadline** ([`Timeouts`]): taking
//!   a connection (which includes connecting and signing in) gives up after
//!   [`Timeouts::acquire`], the server cancels a statement after [`Timeouts::statement`], and
//!   the client abandons an operation whose connection has gone silent shortly after that.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::Connection;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;

use crate::error::{Result, StoreError};

/// How long the store waits on the database before calling it unavailable.
///
/// Only the release check applies to SQLite, whose database is a local file: its waits are
/// bounded by its busy timeout and by its own pool's contention, and a full disk fails at once.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Longest wait for a pooled connection on PostgreSQL, including opening one (TCP connect,
    /// startup, authentication) and the liveness ping of an idle one.
    pub acquire: Duration,
    /// PostgreSQL `statement_timeout`: the server cancels a statement running longer. The
    /// client abandons an operation one second after this, which is how a connection that went
    /// silent (a network that drops packets, a frozen server) is told from a slow one.
    pub statement: Duration,
    /// PostgreSQL `idle_in_transaction_session_timeout`: the server ends a session whose
    /// transaction sits idle this long, releasing its locks. A client that vanished in the
    /// middle of an append would otherwise keep the append lock, and every appender waiting.
    pub idle_in_transaction: Duration,
    /// PostgreSQL `tcp_keepalives_idle` (with an interval of a third of it and three probes),
    /// so the server notices a client host that vanished; zero keeps the server's setting.
    /// sqlx 0.9 sets no keepalive on the client's own socket, which is why the client relies
    /// on its deadlines instead.
    pub keepalive_idle: Duration,
    /// Longest one unit of background work (a consumer's transaction, a checkpoint) may take
    /// before it is abandoned and retried.
    pub background_unit: Duration,
}

impl Default for Timeouts {
    /// - `acquire` 1 s: a healthy pool hands out a connection in microseconds and a local
    ///   server opens one in milliseconds, so a second means the server is unreachable or the
    ///   pool is saturated; either way a quick 503 with `Retry-After` serves a client better
    ///   than a long wait (the service answers within 2 s during an outage).
    /// - `statement` 5 s: the slowest statements of the service take milliseconds (dashboard
    ///   queries at a million events: under 5 ms at p99); five seconds is far past any of them
    ///   and still short enough that a request or a background task stuck on a silent
    ///   connection is freed within seconds. A rebuild's index builds lift it for themselves.
    /// - `idle_in_transaction` 15 s: the service never leaves a transaction idle for more than
    ///   the client-side work between two statements (milliseconds).
    /// - `keepalive_idle` 10 s: a vanished client is noticed in about 20 s instead of the
    ///   operating system's two hours.
    /// - `background_unit` 30 s: a live batch takes well under a second and a rebuild's batch
    ///   of 20,000 events a few seconds on a busy machine; a unit stuck on a connection that
    ///   went silent holds its task back this long at most.
    fn default() -> Self {
        Self {
            acquire: Duration::from_secs(1),
            statement: Duration::from_secs(5),
            idle_in_transaction: Duration::from_secs(15),
            keepalive_idle: Duration::from_secs(10),
            background_unit: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// How long the client waits for one database operation on PostgreSQL before abandoning it.
    pub fn deadline(&self) -> Duration {
        self.statement + Duration::from_secs(1)
    }

    /// The deadline of the release check: a ping needs one round trip.
    fn release_check(&self) -> Duration {
        self.acquire.max(Duration::from_millis(100))
    }
}

/// Runs `op`, giving up after `deadline` with [`StoreError::Unresponsive`].
pub(crate) async fn bounded<T>(
    deadline: Duration,
    op: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(deadline, op)
        .await
        .unwrap_or(Err(StoreError::Unresponsive(deadline)))
}

/// The release check of both backends (see the module documentation): `true` keeps the
/// connection, `false` closes it politely, an error closes it at once.
fn release_check<'c, C: Connection>(
    conn: &'c mut C,
    deadline: Duration,
) -> BoxFuture<'c, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        // The ping runs after anything queued on the connection, such as the rollback a
        // dropped transaction queued, so the transaction depth read after it is final.
        match tokio::time::timeout(deadline, conn.ping()).await {
            Err(_) => {
                tracing::warn!(
                    "a released database connection did not answer within {deadline:?}; closing it"
                );
                Err(sqlx::Error::Io(std::io::ErrorKind::TimedOut.into()))
            }
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) if conn.is_in_transaction() => {
                tracing::warn!(
                    "a released database connection is still inside a transaction (its COMMIT \
                     or ROLLBACK failed); closing it instead of returning it to the pool"
                );
                Ok(false)
            }
            Ok(Ok(())) => Ok(true),
        }
    })
}

/// Pool options for the SQLite read pool.
pub(crate) fn sqlite(max: u32, timeouts: Timeouts) -> SqlitePoolOptions {
    let check = timeouts.release_check();
    SqlitePoolOptions::new()
        .max_connections(max.max(1))
        .after_release(move |conn, _: PoolConnectionMetadata| release_check(conn, check))
}

/// Pool options for a PostgreSQL pool.
pub(crate) fn postgres(max: u32, timeouts: Timeouts) -> PgPoolOptions {
    let check = timeouts.release_check();
    PgPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(timeouts.acquire)
        .after_release(move |conn, _: PoolConnectionMetadata| release_check(conn, check))
}

/// Connect options for `url` with the server-side timeouts of `timeouts` (added after any
/// `options` the URL carries, so the service's settings win).
pub(crate) fn pg_connect(url: &str, timeouts: Timeouts) -> Result<PgConnectOptions> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut settings = vec![
        ("statement_timeout", ms(timeouts.statement)),
        (
            "idle_in_transaction_session_timeout",
            ms(timeouts.idle_in_transaction),
        ),
    ];
    let idle = timeouts.keepalive_idle.as_secs();
    if idle > 0 {
        settings.push(("tcp_keepalives_idle", idle.to_string()));
        settings.push(("tcp_keepalives_interval", (idle / 3).max(1).to_string()));
        settings.push(("tcp_keepalives_count", "3".to_owned()));
    }
    Ok(PgConnectOptions::from_str(url)?.options(settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening #6: the PostgreSQL side of the outage timeouts is set on every connection.
    #[test]
    fn the_server_side_timeouts_travel_as_startup_options() {
        let o = pg_connect(
            "postgres://u@h/db?options=-c%20search_path%3Dx",
            Timeouts::default(),
        )
        .unwrap();
        let text = o.get_options().unwrap();
        assert!(text.starts_with("-c search_path=x"), "{text}");
        for part in [
            "-c statement_timeout=5000ms",
            "-c idle_in_transaction_session_timeout=15000ms",
            "-c tcp_keepalives_idle=10",
            "-c tcp_keepalives_interval=3",
            "-c tcp_keepalives_count=3",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }
}
