//! The HTTP layer's own tables, `api_tokens` ([`crate::auth::TokenStore`]),
//! `idempotency_keys` ([`crate::idempotency`]), `account_credentials` and `account_sessions`
//! ([`crate::session`]), and their statements per backend.
//!
//! The tables are registered with the store as the table set `http` (`migrations/`, recorded
//! in `_caretrail_http_migrations`). [`HttpTables`] holds every statement, implemented once for
//! SQLite (times as microseconds since the epoch) and once for PostgreSQL (`timestamptz`);
//! [`handle`] picks the implementation, the one place this crate tells the backends apart.

use std::sync::Arc;

use async_trait::async_trait;
use caretrail_store::{EventStore, PgTables, SqliteTables, StoreError, TableSet, Tables};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The HTTP layer's tables, registered with the store.
static TABLES: TableSet = TableSet {
    name: "http",
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
};

/// The HTTP tables in `store`'s database, created or brought up to date first.
pub(crate) async fn open(store: &dyn EventStore) -> Result<Arc<dyn HttpTables>, StoreError> {
    Ok(handle(store.tables(&TABLES).await?))
}

/// The statements for `tables`' backend.
pub(crate) fn handle(tables: Tables) -> Arc<dyn HttpTables> {
    match tables {
        Tables::Sqlite(t) => Arc::new(t),
        Tables::Postgres(t) => Arc::new(t),
    }
}

/// The account tables in `store`'s database, created or brought up to date first.
pub(crate) async fn open_accounts(
    store: &dyn EventStore,
) -> Result<Arc<dyn AccountTables>, StoreError> {
    Ok(match store.tables(&TABLES).await? {
        Tables::Sqlite(t) => Arc::new(t),
        Tables::Postgres(t) => Arc::new(t),
    })
}

/// A token as stored, without its hash.
pub(crate) struct TokenRow {
    pub token_id: Uuid,
    pub name: String,
    pub role: String,
    pub director_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new token's row.
pub(crate) struct NewToken<'a> {
    pub hash: &'a [u8; 32],
    pub token_id: Uuid,
    pub name: &'a str,
    pub role: &'a str,
    pub director_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Every statement of the HTTP tables.
#[async_trait]
pub(crate) trait HttpTables: Send + Sync {
    /// Stores a new token.
    async fn insert_token(&self, token: NewToken<'_>) -> Result<(), sqlx::Error>;
    /// The unrevoked token with hash `hash` (its `created_at` and `revoked_at` are not read).
    async fn unrevoked_token(&self, hash: &[u8; 32]) -> Result<Option<TokenRow>, sqlx::Error>;
    /// Whether the token `token_id` exists and is not revoked.
    async fn is_unrevoked(&self, token_id: Uuid) -> Result<bool, sqlx::Error>;
    /// Every token, oldest first.
    async fn tokens(&self) -> Result<Vec<TokenRow>, sqlx::Error>;
    /// Revokes the token unless it was revoked before: whether a row changed, and the token's
    /// revocation time after that (`None` when there is no such token).
    async fn revoke(
        &self,
        token_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(bool, Option<Option<DateTime<Utc>>>), sqlx::Error>;
    /// Binds `command_id` to `fingerprint` unless it is bound: whether this call bound it, and
    /// otherwise the stored fingerprint.
    async fn claim(
        &self,
        command_id: Uuid,
        fingerprint: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(bool, Option<Vec<u8>>), sqlx::Error>;
    /// [`HttpTables::claim`] for many keys in one transaction, answered in the order given
    /// (a roster import claims a file's keys together: one durable write, not one per row).
    async fn claim_many(
        &self,
        claims: &[(Uuid, [u8; 32])],
        now: DateTime<Utc>,
    ) -> Result<Vec<(bool, Option<Vec<u8>>)>, sqlx::Error>;
}

/// Keys per multi-row statement of [`HttpTables::claim_many`] (three parameters each).
const CLAIMS_PER_STATEMENT: usize = 500;

/// Puts `claim_many`'s answers in the order of `claims`: `inserted` are the ids this
/// transaction bound, `stored` the fingerprints found for the others.
fn claims_in_order(
    claims: &[(Uuid, [u8; 32])],
    inserted: &std::collections::HashSet<Uuid>,
    stored: &std::collections::HashMap<Uuid, Vec<u8>>,
) -> Vec<(bool, Option<Vec<u8>>)> {
    claims
        .iter()
        .map(|(id, _)| {
            if inserted.contains(id) {
                (true, None)
            } else {
                (false, stored.get(id).cloned())
            }
        })
        .collect()
}

/// A microsecond timestamp as SQLite rows hold them, refused when out of range.
fn from_micros(us: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(us).ok_or(sqlx::Error::Decode(
        "a token timestamp is out of range".into(),
    ))
}

/// Serialises the SQLite claims of this process (see `claim` below).
static SQLITE_CLAIMS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every token, oldest first, with the columns in [`TokenRow`]'s order (never the hash).
const LIST_TOKENS: &str = "SELECT token_id, name, role, director_id, created_at, expires_at, \
    revoked_at FROM api_tokens ORDER BY created_at, token_id";

#[async_trait]
impl HttpTables for SqliteTables {
    async fn insert_token(&self, t: NewToken<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO api_tokens \
             (token_hash, token_id, name, role, director_id, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&t.hash[..])
        .bind(t.token_id)
        .bind(t.name)
        .bind(t.role)
        .bind(t.director_id)
        .bind(t.created_at.timestamp_micros())
        .bind(t.expires_at.map(|t| t.timestamp_micros()))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn unrevoked_token(&self, hash: &[u8; 32]) -> Result<Option<TokenRow>, sqlx::Error> {
        type Row = (Uuid, String, String, Option<Uuid>, Option<i64>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT token_id, name, role, director_id, expires_at FROM api_tokens \
             WHERE token_hash = ?1 AND revoked_at IS NULL",
        )
        .bind(&hash[..])
        .fetch_optional(self.pool())
        .await?;
        row.map(|(token_id, name, role, director_id, expires)| {
            Ok(TokenRow {
                token_id,
                name,
                role,
                director_id,
                created_at: DateTime::UNIX_EPOCH,
                expires_at: expires.map(from_micros).transpose()?,
                revoked_at: None,
            })
        })
        .transpose()
    }

    async fn is_unrevoked(&self, token_id: Uuid) -> Result<bool, sqlx::Error> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM api_tokens WHERE token_id = ?1 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }

    async fn tokens(&self) -> Result<Vec<TokenRow>, sqlx::Error> {
        type Row = (
            Uuid,
            String,
            String,
            Option<Uuid>,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = sqlx::query_as(LIST_TOKENS).fetch_all(self.pool()).await?;
        rows.into_iter()
            .map(
                |(token_id, name, role, director_id, created, expires, revoked)| {
                    Ok(TokenRow {
                        token_id,
                        name,
                        role,
                        director_id,
                        created_at: from_micros(created)?,
                        expires_at: expires.map(from_micros).transpose()?,
                        revoked_at: revoked.map(from_micros).transpose()?,
                    })
                },
            )
            .collect()
    }

    async fn revoke(
        &self,
        token_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(bool, Option<Option<DateTime<Utc>>>), sqlx::Error> {
        let changed = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE token_id = ?1 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .bind(now.timestamp_micros())
        .execute(self.pool())
        .await?
        .rows_affected();
        let after: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM api_tokens WHERE token_id = ?1")
                .bind(token_id)
                .fetch_optional(self.pool())
                .await?;
        let after = match after {
            None => None,
            Some(t) => Some(t.map(from_micros).transpose()?),
        };
        Ok((changed == 1, after))
    }

    async fn claim(
        &self,
        command_id: Uuid,
        fingerprint: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(bool, Option<Vec<u8>>), sqlx::Error> {
        // SQLite has one write lock. A claim waiting for it holds a pooled connection, and a
        // burst of keyed commands once held every one of them while a projector or audit
        // transaction that held the lock waited for a pooled connection (a 30 s stall of
        // every write). One claim at a time leaves the rest of the pool free.
        let _one_at_a_time = SQLITE_CLAIMS.lock().await;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (command_id, fingerprint, created_at) \
             VALUES (?1, ?2, ?3) ON CONFLICT (command_id) DO NOTHING",
        )
        .bind(command_id)
        .bind(&fingerprint[..])
        .bind(now.timestamp_micros())
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1;
        if inserted {
            return Ok((true, None));
        }
        let stored =
            sqlx::query_scalar("SELECT fingerprint FROM idempotency_keys WHERE command_id = ?1")
                .bind(command_id)
                .fetch_optional(self.pool())
                .await?;
        Ok((false, stored))
    }

    async fn claim_many(
        &self,
        claims: &[(Uuid, [u8; 32])],
        now: DateTime<Utc>,
    ) -> Result<Vec<(bool, Option<Vec<u8>>)>, sqlx::Error> {
        // One claimer at a time, as for single claims (see `claim`).
        let _one_at_a_time = SQLITE_CLAIMS.lock().await;
        let mut tx = self.pool().begin().await?;
        let mut inserted = std::collections::HashSet::new();
        let mut stored = std::collections::HashMap::new();
        for chunk in claims.chunks(CLAIMS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO idempotency_keys (command_id, fingerprint, created_at) ",
            );
            q.push_values(chunk, |mut row, (id, fingerprint)| {
                row.push_bind(*id)
                    .push_bind(fingerprint.to_vec())
                    .push_bind(now.timestamp_micros());
            });
            q.push(" ON CONFLICT (command_id) DO NOTHING RETURNING command_id");
            let mine: Vec<Uuid> = q.build_query_scalar().fetch_all(&mut *tx).await?;
            inserted.extend(mine);
            let others: Vec<Uuid> = chunk
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !inserted.contains(id))
                .collect();
            if others.is_empty() {
                continue;
            }
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT command_id, fingerprint FROM idempotency_keys WHERE command_id IN (",
            );
            let mut list = q.separated(", ");
            for id in others {
                list.push_bind(id);
            }
            q.push(")");
            let rows: Vec<(Uuid, Vec<u8>)> = q.build_query_as().fetch_all(&mut *tx).await?;
            stored.extend(rows);
        }
        tx.commit().await?;
        Ok(claims_in_order(claims, &inserted, &stored))
    }
}

#[async_trait]
impl HttpTables for PgTables {
    async fn insert_token(&self, t: NewToken<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO api_tokens \
             (token_hash, token_id, name, role, director_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.hash[..])
        .bind(t.token_id)
        .bind(t.name)
        .bind(t.role)
        .bind(t.director_id)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn unrevoked_token(&self, hash: &[u8; 32]) -> Result<Option<TokenRow>, sqlx::Error> {
        type Row = (Uuid, String, String, Option<Uuid>, Option<DateTime<Utc>>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT token_id, name, role, director_id, expires_at FROM api_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&hash[..])
        .fetch_optional(self.pool())
        .await?;
        Ok(
            row.map(|(token_id, name, role, director_id, expires_at)| TokenRow {
                token_id,
                name,
                role,
                director_id,
                created_at: DateTime::UNIX_EPOCH,
                expires_at,
                revoked_at: None,
            }),
        )
    }

    async fn is_unrevoked(&self, token_id: Uuid) -> Result<bool, sqlx::Error> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM api_tokens WHERE token_id = $1 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }

    async fn tokens(&self) -> Result<Vec<TokenRow>, sqlx::Error> {
        type Row = (
            Uuid,
            String,
            String,
            Option<Uuid>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Row> = sqlx::query_as(LIST_TOKENS).fetch_all(self.pool()).await?;
        Ok(rows
            .into_iter()
            .map(
                |(token_id, name, role, director_id, created_at, expires_at, revoked_at)| {
                    TokenRow {
                        token_id,
                        name,
                        role,
                        director_id,
                        created_at,
                        expires_at,
                        revoked_at,
                    }
                },
            )
            .collect())
    }

    async fn revoke(
        &self,
        token_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(bool, Option<Option<DateTime<Utc>>>), sqlx::Error> {
        let changed = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        let after: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("SELECT revoked_at FROM api_tokens WHERE token_id = $1")
                .bind(token_id)
                .fetch_optional(self.pool())
                .await?;
        Ok((changed == 1, after))
    }

    async fn claim(
        &self,
        command_id: Uuid,
        fingerprint: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(bool, Option<Vec<u8>>), sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (command_id, fingerprint, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (command_id) DO NOTHING",
        )
        .bind(command_id)
        .bind(&fingerprint[..])
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1;
        if inserted {
            return Ok((true, None));
        }
        let stored =
            sqlx::query_scalar("SELECT fingerprint FROM idempotency_keys WHERE command_id = $1")
                .bind(command_id)
                .fetch_optional(self.pool())
                .await?;
        Ok((false, stored))
    }

    async fn claim_many(
        &self,
        claims: &[(Uuid, [u8; 32])],
        now: DateTime<Utc>,
    ) -> Result<Vec<(bool, Option<Vec<u8>>)>, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let mut inserted = std::collections::HashSet::new();
        let mut stored = std::collections::HashMap::new();
        for chunk in claims.chunks(CLAIMS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "INSERT INTO idempotency_keys (command_id, fingerprint, created_at) ",
            );
            q.push_values(chunk, |mut row, (id, fingerprint)| {
                row.push_bind(*id)
                    .push_bind(fingerprint.to_vec())
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (command_id) DO NOTHING RETURNING command_id");
            let mine: Vec<Uuid> = q.build_query_scalar().fetch_all(&mut *tx).await?;
            inserted.extend(mine);
            let others: Vec<Uuid> = chunk
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| !inserted.contains(id))
                .collect();
            if others.is_empty() {
                continue;
            }
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "SELECT command_id, fingerprint FROM idempotency_keys WHERE command_id IN (",
            );
            let mut list = q.separated(", ");
            for id in others {
                list.push_bind(id);
            }
            q.push(")");
            let rows: Vec<(Uuid, Vec<u8>)> = q.build_query_as().fetch_all(&mut *tx).await?;
            stored.extend(rows);
        }
        tx.commit().await?;
        Ok(claims_in_order(claims, &inserted, &stored))
    }
}

/// An account's credentials as stored.
pub(crate) struct CredentialRow {
    pub account_id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub failed_count: i32,
    /// Microseconds since the epoch.
    pub locked_until: Option<i64>,
    /// Microseconds since the epoch.
    pub created_at: i64,
}

/// A session as stored (not revoked), without its hash.
pub(crate) struct SessionRow {
    pub session_id: Uuid,
    pub account_id: Uuid,
    pub username: String,
    pub role: String,
    pub director_id: Option<Uuid>,
    /// Microseconds since the epoch, as every time in these two tables.
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// A new session's row.
pub(crate) struct NewSession<'a> {
    pub hash: &'a [u8; 32],
    pub session_id: Uuid,
    pub account_id: Uuid,
    pub username: &'a str,
    pub role: &'a str,
    pub director_id: Option<Uuid>,
    pub now: i64,
    pub expires_at: i64,
}

/// Every statement of the account tables. Times are microseconds since the epoch on both
/// backends, so each statement is one text with `$N` placeholders (SQLite reads them as
/// numbered parameters), written once for both by `account_statements!`.
#[async_trait]
pub(crate) trait AccountTables: Send + Sync {
    /// Stores a new account's credentials; `false` when the user name is taken.
    async fn insert_credentials(
        &self,
        account_id: Uuid,
        username: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error>;
    /// Removes an account's credentials (an account whose creation command failed).
    async fn delete_credentials(&self, account_id: Uuid) -> Result<(), sqlx::Error>;
    /// The credentials of the user name (already normalised).
    async fn credentials_by_username(
        &self,
        username: &str,
    ) -> Result<Option<CredentialRow>, sqlx::Error>;
    /// The credentials of an account.
    async fn credentials(&self, account_id: Uuid) -> Result<Option<CredentialRow>, sqlx::Error>;
    /// Every account's credentials row, by user name (the hashes are read but never answered).
    async fn all_credentials(&self) -> Result<Vec<CredentialRow>, sqlx::Error>;
    /// Counts a failed sign-in; at `threshold` failures the account is locked until
    /// `lock_until` and the count starts again. Answers the lock time, if this locked it.
    async fn record_failure(
        &self,
        account_id: Uuid,
        threshold: i32,
        lock_until: i64,
    ) -> Result<Option<i64>, sqlx::Error>;
    /// Clears the failure count and any lock (a successful sign-in).
    async fn clear_failures(&self, account_id: Uuid) -> Result<(), sqlx::Error>;
    /// Replaces the password hash; a reset also clears failures and the lock.
    async fn set_password(
        &self,
        account_id: Uuid,
        password_hash: &str,
        unlock: bool,
    ) -> Result<(), sqlx::Error>;
    /// Stores a new session.
    async fn insert_session(&self, s: NewSession<'_>) -> Result<(), sqlx::Error>;
    /// The unrevoked session with this hash.
    async fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRow>, sqlx::Error>;
    /// Notes that a session was used now.
    async fn touch_session(&self, session_id: Uuid, now: i64) -> Result<(), sqlx::Error>;
    /// Whether a session is unrevoked.
    async fn session_unrevoked(&self, session_id: Uuid) -> Result<bool, sqlx::Error>;
    /// Revokes one session.
    async fn revoke_session(&self, session_id: Uuid, now: i64) -> Result<(), sqlx::Error>;
    /// Revokes every session of an account; answers how many were open.
    async fn revoke_account_sessions(&self, account_id: Uuid, now: i64)
    -> Result<u64, sqlx::Error>;
}

/// A credentials row's columns, in [`CredentialRow`]'s order.
type CredentialTuple = (Uuid, String, String, i32, Option<i64>, i64);

fn credential(
    (account_id, username, password_hash, failed_count, locked_until, created_at): CredentialTuple,
) -> CredentialRow {
    CredentialRow {
        account_id,
        username,
        password_hash,
        failed_count,
        locked_until,
        created_at,
    }
}

/// A credentials row's columns, in [`CredentialRow`]'s order (a macro, so statements stay
/// literal text).
macro_rules! credential_columns {
    () => {
        "account_id, username, password_hash, failed_count, locked_until, created_at"
    };
}

macro_rules! account_statements {
    ($handle:ty) => {
        #[async_trait]
        impl AccountTables for $handle {
            async fn insert_credentials(
                &self,
                account_id: Uuid,
                username: &str,
                password_hash: &str,
                now: i64,
            ) -> Result<bool, sqlx::Error> {
                Ok(sqlx::query(
                    "INSERT INTO account_credentials \
                     (account_id, username, password_hash, failed_count, created_at) \
                     VALUES ($1, $2, $3, 0, $4) ON CONFLICT DO NOTHING",
                )
                .bind(account_id)
                .bind(username)
                .bind(password_hash)
                .bind(now)
                .execute(self.pool())
                .await?
                .rows_affected()
                    == 1)
            }

            async fn delete_credentials(&self, account_id: Uuid) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM account_credentials WHERE account_id = $1")
                    .bind(account_id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn credentials_by_username(
                &self,
                username: &str,
            ) -> Result<Option<CredentialRow>, sqlx::Error> {
                let row: Option<CredentialTuple> = sqlx::query_as(concat!(
                    "SELECT ",
                    credential_columns!(),
                    " FROM account_credentials WHERE username = $1"
                ))
                .bind(username)
                .fetch_optional(self.pool())
                .await?;
                Ok(row.map(credential))
            }

            async fn credentials(
                &self,
                account_id: Uuid,
            ) -> Result<Option<CredentialRow>, sqlx::Error> {
                let row: Option<CredentialTuple> = sqlx::query_as(concat!(
                    "SELECT ",
                    credential_columns!(),
                    " FROM account_credentials WHERE account_id = $1"
                ))
                .bind(account_id)
                .fetch_optional(self.pool())
                .await?;
                Ok(row.map(credential))
            }

            async fn all_credentials(&self) -> Result<Vec<CredentialRow>, sqlx::Error> {
                let rows: Vec<CredentialTuple> = sqlx::query_as(concat!(
                    "SELECT ",
                    credential_columns!(),
                    " FROM account_credentials ORDER BY username"
                ))
                .fetch_all(self.pool())
                .await?;
                Ok(rows.into_iter().map(credential).collect())
            }

            async fn record_failure(
                &self,
                account_id: Uuid,
                threshold: i32,
                lock_until: i64,
            ) -> Result<Option<i64>, sqlx::Error> {
                // One statement, so concurrent failures are all counted.
                let locked: Option<Option<i64>> = sqlx::query_scalar(
                    "UPDATE account_credentials SET \
                     locked_until = CASE WHEN failed_count + 1 >= $2 THEN $3 \
                                    ELSE locked_until END, \
                     failed_count = CASE WHEN failed_count + 1 >= $2 THEN 0 \
                                    ELSE failed_count + 1 END \
                     WHERE account_id = $1 RETURNING CASE WHEN failed_count = 0 \
                     THEN locked_until END",
                )
                .bind(account_id)
                .bind(threshold)
                .bind(lock_until)
                .fetch_optional(self.pool())
                .await?;
                Ok(locked.flatten())
            }

            async fn clear_failures(&self, account_id: Uuid) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE account_credentials SET failed_count = 0, locked_until = NULL \
                     WHERE account_id = $1 AND (failed_count <> 0 OR locked_until IS NOT NULL)",
                )
                .bind(account_id)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn set_password(
                &self,
                account_id: Uuid,
                password_hash: &str,
                unlock: bool,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE account_credentials SET password_hash = $2, \
                     failed_count = CASE WHEN $3 THEN 0 ELSE failed_count END, \
                     locked_until = CASE WHEN $3 THEN NULL ELSE locked_until END \
                     WHERE account_id = $1",
                )
                .bind(account_id)
                .bind(password_hash)
                .bind(unlock)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn insert_session(&self, s: NewSession<'_>) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO account_sessions (session_hash, session_id, account_id, \
                     username, role, director_id, created_at, last_seen_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
                )
                .bind(&s.hash[..])
                .bind(s.session_id)
                .bind(s.account_id)
                .bind(s.username)
                .bind(s.role)
                .bind(s.director_id)
                .bind(s.now)
                .bind(s.expires_at)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRow>, sqlx::Error> {
                type Row = (Uuid, Uuid, String, String, Option<Uuid>, i64, i64);
                let row: Option<Row> = sqlx::query_as(
                    "SELECT session_id, account_id, username, role, director_id, last_seen_at, \
                     expires_at FROM account_sessions \
                     WHERE session_hash = $1 AND revoked_at IS NULL",
                )
                .bind(&hash[..])
                .fetch_optional(self.pool())
                .await?;
                Ok(row.map(
                    |(session_id, account_id, username, role, director_id, last_seen_at, expires_at)| {
                        SessionRow {
                            session_id,
                            account_id,
                            username,
                            role,
                            director_id,
                            last_seen_at,
                            expires_at,
                        }
                    },
                ))
            }

            async fn touch_session(&self, session_id: Uuid, now: i64) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE account_sessions SET last_seen_at = $2 \
                     WHERE session_id = $1 AND last_seen_at < $2",
                )
                .bind(session_id)
                .bind(now)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn session_unrevoked(&self, session_id: Uuid) -> Result<bool, sqlx::Error> {
                let found: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM account_sessions WHERE session_id = $1 AND revoked_at IS NULL",
                )
                .bind(session_id)
                .fetch_optional(self.pool())
                .await?;
                Ok(found.is_some())
            }

            async fn revoke_session(&self, session_id: Uuid, now: i64) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE account_sessions SET revoked_at = $2 \
                     WHERE session_id = $1 AND revoked_at IS NULL",
                )
                .bind(session_id)
                .bind(now)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn revoke_account_sessions(
                &self,
                account_id: Uuid,
                now: i64,
            ) -> Result<u64, sqlx::Error> {
                Ok(sqlx::query(
                    "UPDATE account_sessions SET revoked_at = $2 \
                     WHERE account_id = $1 AND revoked_at IS NULL",
                )
                .bind(account_id)
                .bind(now)
                .execute(self.pool())
                .await?
                .rows_affected())
            }
        }
    };
}

account_statements!(SqliteTables);
account_statements!(PgTables);
