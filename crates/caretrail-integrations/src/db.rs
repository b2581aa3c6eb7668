//! The integrations' tables and their SQL.
//!
//! Three tables beside the event store's (`migrations/`, registered with the store as the
//! table set `integrations`): the subscriptions, their sealed signing secrets and their recent
//! delivery attempts. Every statement is written once, with `$N` placeholders, which both
//! PostgreSQL and SQLite (as numbered parameters) read; the tables use only types both
//! backends share (text, 64-bit integers), so the one place this module tells the backends
//! apart is which pool or transaction a statement runs on ([`on_pool!`], [`on_tx!`]).
//!
//! Rows decode strictly: a value that does not parse (an id that is not a UUID, a JSON list
//! that is not one) is [`IntegrationError::Corrupt`] naming the column, never a default.

use caretrail_store::{ConsumerTx, ConsumerTxInner, EventStore, TableSet, Tables};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use crate::error::{IntegrationError, Result};

/// The integrations' tables, registered with the store.
static TABLES: TableSet = TableSet {
    name: "integrations",
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
};

/// How many attempts are kept per subscription.
pub const ATTEMPTS_KEPT: i64 = 100;

/// The largest number of attempts one `INSERT` writes (9 parameters each, far below either
/// backend's limit on parameters).
const INSERT_ROWS_MAX: usize = 64;

/// An `INSERT` of as many attempts as possible, at most `wanted` (at least one): the text
/// and how many rows it takes. A subscription that delivers hundreds of events a second
/// writes them in a few statements per flush instead of one each, and the row counts are
/// powers of two so each connection prepares at most seven texts.
fn insert_attempts(wanted: usize) -> (&'static str, usize) {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        let mut texts = Vec::new();
        let mut rows = 1;
        while rows <= INSERT_ROWS_MAX {
            let values: Vec<String> = (0..rows)
                .map(|r| {
                    let p: Vec<String> = (1..=9).map(|c| format!("${}", r * 9 + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            texts.push(format!(
                "INSERT INTO integration_attempts (subscription_id, position, event_id, \
                 attempted_at, status, latency_us, outcome, error, response_excerpt) VALUES {}",
                values.join(", ")
            ));
            rows *= 2;
        }
        texts
    });
    // The largest power of two not above `wanted` (capped), and its text.
    let rows = wanted.clamp(1, INSERT_ROWS_MAX);
    let index = usize::try_from(rows.ilog2()).unwrap_or(0);
    (texts[index].as_str(), 1 << index)
}

/// The tables' handle on the store's pool.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs one statement on whichever pool the store has.
macro_rules! on_pool {
    ($db:expr, |$p:ident| $body:expr) => {
        match &$db.pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// Runs statements on whichever transaction a consumer holds.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx.inner() {
            ConsumerTxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            ConsumerTxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// A subscription as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SubscriptionRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// JSON array of event types.
    pub filter_types: String,
    /// JSON array of categories.
    pub filter_categories: String,
    /// `webhook` or `nats`.
    pub kind: String,
    /// The URL or the subject prefix.
    pub target: String,
    /// The integration token that may read its status.
    pub owner_token_id: Option<String>,
    /// When created (µs).
    pub created_at: i64,
    /// The creating event's position.
    pub created_position: i64,
    /// Paused by an administrator (0/1).
    pub paused: i64,
    /// Why disabled, when disabled.
    pub disabled_reason: Option<String>,
    /// Deleted (0/1).
    pub deleted: i64,
    /// The current secret's generation.
    pub generation: i64,
    /// The cursor: every matching event up to it was acknowledged.
    pub delivered_position: i64,
    /// Bumped by every change that moves the cursor, changes the signing secret or stops
    /// delivery from outside the
    /// delivering worker (rewind, resume, disable, delete): the worker's writes carry the
    /// epoch they started from and are refused after such a change.
    pub epoch: i64,
    /// Failed attempts since the last success.
    pub consecutive_failures: i64,
    /// When the current run of failures began (µs).
    pub failing_since: Option<i64>,
    /// The last attempt (µs).
    pub last_attempt_at: Option<i64>,
    /// The last attempt's HTTP status.
    pub last_status: Option<i64>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When the next attempt is due (µs), while failing.
    pub next_attempt_at: Option<i64>,
    /// Events delivered, in all.
    pub delivered_total: i64,
    /// Attempts failed, in all.
    pub failed_total: i64,
    /// The node delivering it.
    pub lease_owner: Option<String>,
    /// Until when that node holds it (µs).
    pub lease_until: Option<i64>,
}

impl SubscriptionRow {
    /// The id, parsed.
    pub fn uuid(&self) -> Result<Uuid> {
        Uuid::parse_str(&self.id).map_err(|_| corrupt("id"))
    }

    /// The filter's event types.
    pub fn types(&self) -> Result<Vec<String>> {
        serde_json::from_str(&self.filter_types).map_err(|_| corrupt("filter_types"))
    }

    /// The filter's categories.
    pub fn categories(&self) -> Result<Vec<String>> {
        serde_json::from_str(&self.filter_categories).map_err(|_| corrupt("filter_categories"))
    }

    /// The cursor.
    pub fn cursor(&self) -> Result<u64> {
        u64::try_from(self.delivered_position).map_err(|_| corrupt("delivered_position"))
    }
}

/// A sealed secret as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SecretRow {
    /// Its generation.
    pub generation: i64,
    /// The sealed value (JSON of `caretrail_domain::Sealed`).
    pub sealed: String,
    /// When its grace period ends, for a rotated-out secret (µs).
    pub retire_at: Option<i64>,
}

/// One delivery attempt as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AttemptRow {
    /// The event's position.
    pub position: i64,
    /// The event's id.
    pub event_id: String,
    /// When (µs).
    pub attempted_at: i64,
    /// The HTTP status, if an answer came.
    pub status: Option<i64>,
    /// How long it took (µs).
    pub latency_us: i64,
    /// `delivered`, `retry` or `gone`.
    pub outcome: String,
    /// What went wrong.
    pub error: Option<String>,
    /// The start of the receiver's answer.
    pub response_excerpt: Option<String>,
}

/// What a delivering worker reports: its cursor and the attempts since its last report.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The subscription.
    pub id: String,
    /// The epoch the worker started from.
    pub epoch: i64,
    /// The node it runs on.
    pub node: String,
    /// The new cursor.
    pub cursor: u64,
    /// Failures since the last success (0 after a success).
    pub consecutive_failures: i64,
    /// When the run of failures began.
    pub failing_since: Option<i64>,
    /// When the next attempt is due.
    pub next_attempt_at: Option<i64>,
    /// Events delivered since the last report.
    pub delivered: i64,
    /// Attempts failed since the last report.
    pub failed: i64,
    /// The attempts, oldest first.
    pub attempts: Vec<AttemptRecord>,
}

/// One attempt, as a worker records it.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    /// The event's position.
    pub position: u64,
    /// The event's id.
    pub event_id: Uuid,
    /// When.
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// How long.
    pub latency_us: i64,
    /// `delivered`, `retry` or `gone`.
    pub outcome: &'static str,
    /// What went wrong.
    pub error: Option<String>,
    /// The start of the answer.
    pub response_excerpt: Option<String>,
}

fn corrupt(column: &'static str) -> IntegrationError {
    IntegrationError::Corrupt {
        table: "integration_subscriptions",
        column,
    }
}

fn signed(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| IntegrationError::OutOfRange)
}

const SELECT: &str = "SELECT id, name, filter_types, filter_categories, kind, target, \
    owner_token_id, created_at, created_position, paused, disabled_reason, deleted, generation, \
    delivered_position, epoch, consecutive_failures, failing_since, last_attempt_at, \
    last_status, last_error, next_attempt_at, delivered_total, failed_total, lease_owner, \
    lease_until FROM integration_subscriptions";

impl Db {
    /// The tables in `store`'s database, created or migrated as needed.
    pub async fn open(store: &dyn EventStore) -> Result<Self> {
        let pool = match store.tables(&TABLES).await? {
            Tables::Sqlite(t) => Pool::Sqlite(t.pool().clone()),
            Tables::Postgres(t) => Pool::Postgres(t.pool().clone()),
        };
        Ok(Self { pool })
    }

    /// Every subscription not deleted, oldest first.
    pub async fn list(&self) -> Result<Vec<SubscriptionRow>> {
        let sql = format!("{SELECT} WHERE deleted = 0 ORDER BY created_position");
        Ok(on_pool!(self, |p| {
            sqlx::query_as::<_, SubscriptionRow>(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(p)
                .await?
        }))
    }

    /// One subscription, deleted ones included.
    pub async fn get(&self, id: Uuid) -> Result<Option<SubscriptionRow>> {
        let sql = format!("{SELECT} WHERE id = $1");
        let id = id.to_string();
        Ok(on_pool!(self, |p| {
            sqlx::query_as::<_, SubscriptionRow>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Stores a sealed secret of `generation` (before the command that makes it current).
    pub async fn insert_secret(
        &self,
        id: Uuid,
        generation: u32,
        sealed: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO integration_secrets (subscription_id, generation, sealed, \
                   created_at) VALUES ($1, $2, $3, $4)";
        let id = id.to_string();
        on_pool!(self, |p| {
            sqlx::query(sql)
                .bind(&id)
                .bind(i64::from(generation))
                .bind(sealed)
                .bind(now.timestamp_micros())
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Removes a secret whose command was refused.
    pub async fn delete_secret(&self, id: Uuid, generation: u32) -> Result<()> {
        let sql = "DELETE FROM integration_secrets WHERE subscription_id = $1 AND generation = $2";
        let id = id.to_string();
        on_pool!(self, |p| {
            sqlx::query(sql)
                .bind(&id)
                .bind(i64::from(generation))
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The subscription's secrets up to `generation`, newest first.
    pub async fn secrets(&self, id: Uuid, generation: i64) -> Result<Vec<SecretRow>> {
        let sql = "SELECT generation, sealed, retire_at FROM integration_secrets \
                   WHERE subscription_id = $1 AND generation <= $2 ORDER BY generation DESC";
        let id = id.to_string();
        Ok(on_pool!(self, |p| {
            sqlx::query_as::<_, SecretRow>(sql)
                .bind(&id)
                .bind(generation)
                .fetch_all(p)
                .await?
        }))
    }

    /// The subscription's most recent attempts, newest first.
    pub async fn attempts(&self, id: Uuid, limit: i64) -> Result<Vec<AttemptRow>> {
        let sql = "SELECT position, event_id, attempted_at, status, latency_us, outcome, error, \
                   response_excerpt FROM integration_attempts WHERE subscription_id = $1 \
                   ORDER BY seq DESC LIMIT $2";
        let id = id.to_string();
        Ok(on_pool!(self, |p| {
            sqlx::query_as::<_, AttemptRow>(sql)
                .bind(&id)
                .bind(limit)
                .fetch_all(p)
                .await?
        }))
    }

    /// Takes or renews, for `node` until `until` (µs), the lease on every subscription that
    /// should be delivered (not deleted, paused or disabled) and that no other node holds
    /// unexpired at `now` (µs). One statement for all: a node's renewals cost one write per
    /// tick, however many subscriptions it delivers (SQLite has one writer for everything).
    pub async fn lease_all(&self, node: &str, now: i64, until: i64) -> Result<()> {
        let sql = "UPDATE integration_subscriptions SET lease_owner = $1, lease_until = $2 \
                   WHERE deleted = 0 AND paused = 0 AND disabled_reason IS NULL \
                   AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $3)";
        on_pool!(self, |p| {
            sqlx::query(sql)
                .bind(node)
                .bind(until)
                .bind(now)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Gives up `node`'s lease on `id` (a paused subscription, a node shutting down).
    pub async fn release(&self, id: &str, node: &str) -> Result<()> {
        let sql = "UPDATE integration_subscriptions SET lease_owner = NULL, lease_until = NULL \
                   WHERE id = $1 AND lease_owner = $2";
        on_pool!(self, |p| {
            sqlx::query(sql)
                .bind(id)
                .bind(node)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Writes workers' reports in one transaction; answers the ids whose write was refused
    /// (the epoch moved on or the lease went to another node), whose workers must stop.
    pub async fn write_progress(&self, reports: &[Progress]) -> Result<Vec<String>> {
        let update = "UPDATE integration_subscriptions SET delivered_position = $4, \
            consecutive_failures = $5, failing_since = $6, next_attempt_at = $7, \
            delivered_total = delivered_total + $8, failed_total = failed_total + $9, \
            last_attempt_at = COALESCE($10, last_attempt_at), \
            last_status = CASE WHEN $10 IS NULL THEN last_status ELSE $11 END, \
            last_error = CASE WHEN $10 IS NULL THEN last_error ELSE $12 END \
            WHERE id = $1 AND epoch = $2 AND lease_owner = $3 AND deleted = 0";
        let prune = "DELETE FROM integration_attempts WHERE subscription_id = $1 AND seq <= \
            (SELECT seq FROM integration_attempts WHERE subscription_id = $1 \
             ORDER BY seq DESC LIMIT 1 OFFSET $2)";
        let mut fenced = Vec::new();
        macro_rules! run {
            ($tx:expr) => {{
                for r in reports {
                    let last = r.attempts.last();
                    let n = sqlx::query(update)
                        .bind(&r.id)
                        .bind(r.epoch)
                        .bind(&r.node)
                        .bind(signed(r.cursor)?)
                        .bind(r.consecutive_failures)
                        .bind(r.failing_since)
                        .bind(r.next_attempt_at)
                        .bind(r.delivered)
                        .bind(r.failed)
                        .bind(last.map(|a| a.attempted_at.timestamp_micros()))
                        .bind(last.and_then(|a| a.status).map(i64::from))
                        .bind(last.and_then(|a| a.error.clone()))
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected();
                    if n == 0 {
                        fenced.push(r.id.clone());
                        continue;
                    }
                    let mut rest: &[AttemptRecord] = &r.attempts;
                    while !rest.is_empty() {
                        let (sql, rows) = insert_attempts(rest.len());
                        let mut query = sqlx::query(sql);
                        for a in &rest[..rows] {
                            query = query
                                .bind(&r.id)
                                .bind(signed(a.position)?)
                                .bind(a.event_id.to_string())
                                .bind(a.attempted_at.timestamp_micros())
                                .bind(a.status.map(i64::from))
                                .bind(a.latency_us)
                                .bind(a.outcome)
                                .bind(a.error.as_deref())
                                .bind(a.response_excerpt.as_deref());
                        }
                        query.execute(&mut *$tx).await?;
                        rest = &rest[rows..];
                    }
                    if !r.attempts.is_empty() {
                        sqlx::query(prune)
                            .bind(&r.id)
                            .bind(ATTEMPTS_KEPT)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                run!(tx);
                tx.commit().await?;
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                run!(tx);
                tx.commit().await?;
            }
        }
        Ok(fenced)
    }

    /// Applies one subscription event in the registry's consumer transaction.
    pub async fn apply(
        tx: &mut ConsumerTx,
        position: u64,
        recorded_at: DateTime<Utc>,
        event: &caretrail_domain::Event,
    ) -> Result<()> {
        use caretrail_domain::Event as E;
        use caretrail_domain::subscription::Delivery;
        let at = recorded_at.timestamp_micros();
        match event {
            E::SubscriptionCreated(e) => {
                let (kind, target) = match &e.delivery {
                    Delivery::Webhook { url } => ("webhook", url.clone()),
                    Delivery::Nats { subject_prefix } => (
                        "nats",
                        subject_prefix
                            .clone()
                            .unwrap_or_else(|| crate::nats::DEFAULT_PREFIX.to_owned()),
                    ),
                };
                let sql = "INSERT INTO integration_subscriptions (id, name, filter_types, \
                    filter_categories, kind, target, owner_token_id, created_at, \
                    created_position, delivered_position) \
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING";
                let types = serde_json::to_string(&e.filter.types)?;
                let categories = serde_json::to_string(&e.filter.categories)?;
                on_tx!(tx, |c| {
                    sqlx::query(sql)
                        .bind(e.subscription_id.uuid().to_string())
                        .bind(&e.name)
                        .bind(&types)
                        .bind(&categories)
                        .bind(kind)
                        .bind(&target)
                        .bind(e.owner_token_id.map(|t| t.to_string()))
                        .bind(at)
                        .bind(signed(position)?)
                        .bind(signed(e.start_after)?)
                        .execute(c)
                        .await?
                        .rows_affected()
                });
            }
            E::SubscriptionPaused(e) => {
                set(tx, e.subscription_id.uuid(), "paused = 1", None).await?;
            }
            E::SubscriptionResumed(e) => {
                let change = "paused = 0, disabled_reason = NULL, consecutive_failures = 0, \
                    failing_since = NULL, next_attempt_at = NULL, epoch = epoch + 1";
                set(tx, e.subscription_id.uuid(), change, None).await?;
            }
            E::SubscriptionRewound(e) => {
                let change = "delivered_position = $2, consecutive_failures = 0, \
                    failing_since = NULL, next_attempt_at = NULL, epoch = epoch + 1";
                set(tx, e.subscription_id.uuid(), change, Some(signed(e.after)?)).await?;
            }
            E::SubscriptionSecretRotated(e) => {
                let id = e.subscription_id.uuid();
                // The epoch moves on so the worker starts again and signs with the new secret.
                let change = "generation = $2, epoch = epoch + 1";
                set(tx, id, change, Some(i64::from(e.generation))).await?;
                let retire = "UPDATE integration_secrets SET retire_at = $3 \
                    WHERE subscription_id = $1 AND generation < $2 AND retire_at IS NULL";
                let until = at.saturating_add(i64::from(e.grace_seconds) * 1_000_000);
                on_tx!(tx, |c| {
                    sqlx::query(retire)
                        .bind(id.to_string())
                        .bind(i64::from(e.generation))
                        .bind(until)
                        .execute(c)
                        .await?
                        .rows_affected()
                });
            }
            E::SubscriptionDisabled(e) => {
                let reason = e.reason.as_str();
                let sql = "UPDATE integration_subscriptions SET disabled_reason = $2, \
                    epoch = epoch + 1 WHERE id = $1";
                on_tx!(tx, |c| {
                    sqlx::query(sql)
                        .bind(e.subscription_id.uuid().to_string())
                        .bind(reason)
                        .execute(c)
                        .await?
                        .rows_affected()
                });
            }
            E::SubscriptionDeleted(e) => {
                let id = e.subscription_id.uuid();
                let change = "deleted = 1, epoch = epoch + 1, lease_owner = NULL, \
                    lease_until = NULL";
                set(tx, id, change, None).await?;
                let sql = "DELETE FROM integration_secrets WHERE subscription_id = $1";
                on_tx!(tx, |c| {
                    sqlx::query(sql)
                        .bind(id.to_string())
                        .execute(c)
                        .await?
                        .rows_affected()
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// `UPDATE integration_subscriptions SET <change> WHERE id = $1`, with `$2` bound when given.
async fn set(tx: &mut ConsumerTx, id: Uuid, change: &str, value: Option<i64>) -> Result<()> {
    let sql = format!("UPDATE integration_subscriptions SET {change} WHERE id = $1");
    on_tx!(tx, |c| {
        let q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(id.to_string());
        let q = match value {
            Some(v) => q.bind(v),
            None => q,
        };
        q.execute(c).await?.rows_affected()
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_inserted_in_power_of_two_batches_that_add_up() {
        for wanted in 1..=200 {
            let (mut left, mut statements) = (wanted, 0);
            while left > 0 {
                let (sql, rows) = insert_attempts(left);
                assert!(rows.is_power_of_two() && rows <= left && rows <= INSERT_ROWS_MAX);
                // Numbered placeholders, 9 per row, the last one present and no more.
                assert!(sql.contains(&format!("${}", rows * 9)), "{sql}");
                assert!(!sql.contains(&format!("${}", rows * 9 + 1)), "{sql}");
                left -= rows;
                statements += 1;
            }
            assert!(statements <= 7 + wanted / INSERT_ROWS_MAX, "{wanted}");
        }
    }
}
