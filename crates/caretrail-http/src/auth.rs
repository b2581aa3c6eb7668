//! Bearer-token authentication and the four roles.
//!
//! Tokens are `ctk_` followed by 43 characters of base64url (256 random bits); only their
//! SHA-256 is stored, so a leaked database does not leak usable tokens. A principal's role
//! decides what it may do: `admin` everything; `director` records visits, contacts and issues
//! for their own pairing and sees only their own and their model worker's personal data;
//! `auditor` reads everything (personal fields redacted) and changes nothing; `integration`
//! reads the event log and subscriptions with personal fields withheld. Every denial is logged
//! with the principal's token id and what was refused, never with personal data.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caretrail_store::Database;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    table_name: std::borrow::Cow::Borrowed("_caretrail_http_migrations"),
    ..sqlx::migrate!("./migrations/sqlite")
};
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    table_name: std::borrow::Cow::Borrowed("_caretrail_http_migrations"),
    ..sqlx::migrate!("./migrations/postgres")
};

/// How long a verified token is trusted without asking the database again (a revocation takes
/// effect within this time).
const CACHE_TTL: Duration = Duration::from_secs(30);

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Director,
    Auditor,
    Integration,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Director => "director",
            Role::Auditor => "auditor",
            Role::Integration => "integration",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "director" => Some(Role::Director),
            "auditor" => Some(Role::Auditor),
            "integration" => Some(Role::Integration),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Principal {
    /// The token's id: the actor recorded for commands (a director token records the director).
    pub token_id: Uuid,
    pub name: String,
    pub role: Role,
    /// For the director role: which director the token speaks for.
    pub director_id: Option<Uuid>,
}

impl Principal {
    /// The actor id recorded with commands: the director for a director token, else the token.
    pub fn actor_id(&self) -> Uuid {
        self.director_id.unwrap_or(self.token_id)
    }

    /// Refuses unless the principal has one of `roles`; logs the denial.
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(self.deny(what))
        }
    }

    /// Logs a denial and builds the 403.
    pub fn deny(&self, what: &str) -> ApiError {
        tracing::warn!(token_id = %self.token_id, role = self.role.as_str(), what, "access denied");
        ApiError::forbidden(format!("the {} role may not {what}", self.role.as_str()))
    }
}

/// Why a token could not be created or checked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a director token needs --director, and only a director token may have one")]
    DirectorMismatch,
    #[error("token storage: {0}")]
    Database(#[from] sqlx::Error),
    #[error("token storage schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("no randomness available")]
    Random,
}

/// A token hash's principal (or `None` for an unknown token) and when that was looked up.
type CachedLookup = (Option<Principal>, Instant);

/// The token table.
pub struct TokenStore {
    db: Database,
    cache: Mutex<HashMap<[u8; 32], CachedLookup>>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenStore {
    /// Opens (creating) the token table in `db`.
    pub async fn open(db: Database) -> Result<Self, TokenError> {
        match &db {
            Database::Sqlite(p) => SQLITE_MIGRATOR.run(p).await?,
            Database::Postgres(p) => PG_MIGRATOR.run(p).await?,
        }
        Ok(Self {
            db,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Creates a token and returns it; the plaintext exists only in the return value.
    pub async fn create(
        &self,
        role: Role,
        director_id: Option<Uuid>,
        name: &str,
    ) -> Result<(Principal, String), TokenError> {
        if (role == Role::Director) != director_id.is_some() {
            return Err(TokenError::DirectorMismatch);
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| TokenError::Random)?;
        let token = format!("ctk_{}", URL_SAFE_NO_PAD.encode(secret));
        let principal = Principal {
            token_id: Uuid::now_v7(),
            name: name.to_owned(),
            role,
            director_id,
        };
        let h = hash(&token).to_vec();
        let now = chrono::Utc::now();
        match &self.db {
            Database::Sqlite(p) => {
                sqlx::query(
                    "INSERT INTO api_tokens (token_hash, token_id, name, role, director_id, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .bind(h)
                .bind(principal.token_id)
                .bind(name)
                .bind(role.as_str())
                .bind(director_id)
                .bind(now.timestamp_micros())
                .execute(p)
                .await?;
            }
            Database::Postgres(p) => {
                sqlx::query(
                    "INSERT INTO api_tokens (token_hash, token_id, name, role, director_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(h)
                .bind(principal.token_id)
                .bind(name)
                .bind(role.as_str())
                .bind(director_id)
                .bind(now)
                .execute(p)
                .await?;
            }
        }
        Ok((principal, token))
    }

    /// The principal a token stands for, if it is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, TokenError> {
        let h = hash(token);
        if let Some((p, at)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&h)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(p.clone());
        }
        type Row = (Uuid, String, String, Option<Uuid>);
        let row: Option<Row> = match &self.db {
            Database::Sqlite(p) => {
                sqlx::query_as(
                    "SELECT token_id, name, role, director_id FROM api_tokens \
                     WHERE token_hash = ?1 AND revoked_at IS NULL",
                )
                .bind(&h[..])
                .fetch_optional(p)
                .await?
            }
            Database::Postgres(p) => {
                sqlx::query_as(
                    "SELECT token_id, name, role, director_id FROM api_tokens \
                     WHERE token_hash = $1 AND revoked_at IS NULL",
                )
                .bind(&h[..])
                .fetch_optional(p)
                .await?
            }
        };
        let principal = row.and_then(|(token_id, name, role, director_id)| {
            Some(Principal {
                token_id,
                name,
                role: Role::parse(&role)?,
                director_id,
            })
        });
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(h, (principal.clone(), Instant::now()));
        Ok(principal)
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        match state.tokens.authenticate(token.trim()).await {
            Ok(Some(p)) => {
                if !state.limiter.admit(p.token_id) {
                    return Err(ApiError::new(
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        "too many requests for this token; slow down",
                    ));
                }
                Ok(p)
            }
            Ok(None) => {
                tracing::warn!("access denied: unknown or revoked token");
                Err(ApiError::unauthorized())
            }
            Err(e) => Err(ApiError::unavailable(&e)),
        }
    }
}

/// A token-bucket rate limit per token: generous by default (it protects the service from a
/// runaway client, not a well-behaved integration).
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Uuid, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the token's bucket, if there is one left.
    pub fn admit(&self, token: Uuid) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (level, at) = buckets.entry(token).or_insert((self.burst, now));
        *level = (*level + at.elapsed().as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            true
        } else {
            false
        }
    }
}
