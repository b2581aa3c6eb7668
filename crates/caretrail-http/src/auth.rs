//! Bearer-token authentication (and, through [`crate::session`], signed-in sessions) and the
//! four roles.
//!
//! Tokens are `ctk_` followed by 43 characters of base64url (256 random bits); only their
//! SHA-256 is stored, so a leaked database does not leak usable tokens. A principal's role
//! decides what it may do: `admin` everything; `director` records visits, contacts and issues
//! for their own pairing and sees only their own and their model worker's personal data;
//! `auditor` reads everything (personal fields redacted) and changes nothing; `integration`
//! reads the event log and subscriptions with personal fields withheld. Every denial is logged
//! with the principal's token id and what was refused, never with personal data.
//!
//! Tokens may expire, and are revoked with `caretrail token revoke` (often from another
//! process). A verified token is trusted for the cache's time to live ([`DEFAULT_CACHE_TTL`],
//! 5 s) without asking the database again, so a revocation reaches requests within that time;
//! an open event stream asks again on the same schedule ([`TokenStore::lapsed`]) and ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caretrail_store::EventStore;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// How long a verified token is trusted without asking the database again: a revocation takes
/// effect within this time, for requests and open streams alike. 5 s costs one indexed lookup
/// per token in use every 5 s and keeps a revoked token's window short (it was 30 s).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// The four roles are the domain's, which also says which commands each may run.
pub use caretrail_domain::Role;

/// An authenticated caller.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Principal {
    /// The token's id: the actor recorded for commands (a director token records the director).
    pub token_id: Uuid,
    /// The label given to the token when it was created (`caretrail token create --name`).
    pub name: String,
    /// What the caller may do and see.
    pub role: Role,
    /// For the director role: which director the token speaks for.
    pub director_id: Option<Uuid>,
    /// When the token stops being valid, if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// For a signed-in account: the account (then `token_id` is the session's id and `name`
    /// the user name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Uuid>,
    /// Whether the request was authenticated by the session cookie (and so needed a CSRF
    /// token if it changes something) rather than a bearer token.
    #[serde(skip)]
    #[schemars(skip)]
    pub session: bool,
}

impl Principal {
    /// The actor id recorded with commands: the director for a director token or account,
    /// else the account for a signed-in person, else the token.
    pub fn actor_id(&self) -> Uuid {
        self.director_id
            .or(self.account_id)
            .unwrap_or(self.token_id)
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
    /// A director token without a director id, or another role's token with one.
    #[error("a director token needs --director, and only a director token may have one")]
    DirectorMismatch,
    /// The requested expiry is not after now.
    #[error("a token's expiry must be in the future")]
    ExpiryNotInFuture,
    /// The token table could not be read or written.
    #[error("token storage: {0}")]
    Database(#[from] sqlx::Error),
    /// The token table could not be opened or migrated.
    #[error("token storage schema: {0}")]
    Schema(#[source] caretrail_store::StoreError),
    /// The operating system gave no random bytes for a new token's secret.
    #[error("no randomness available")]
    Random,
    /// The token table did not answer a re-check in time.
    #[error("token storage did not answer in time")]
    Unresponsive,
}

/// A token hash's principal (or `None` for an unknown or revoked token) and when that was
/// looked up.
type CachedLookup = (Option<Principal>, Instant);

/// A token as `caretrail token list` shows it: never its secret or its hash.
#[derive(Clone, Debug, Serialize)]
pub struct TokenInfo {
    /// The token's id.
    pub token_id: Uuid,
    /// The label given to the token when it was created.
    pub name: String,
    /// The role as stored: `admin`, `director`, `auditor` or `integration`.
    pub role: String,
    /// For a director token: the director it speaks for.
    pub director_id: Option<Uuid>,
    /// When the token was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When the token stops being valid; `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the token was revoked; `None` = not revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What `revoke` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The token was valid and is now revoked.
    Revoked,
    /// The token had been revoked before (at this time); nothing changed.
    AlreadyRevoked(DateTime<Utc>),
    /// There is no token with this id.
    Unknown,
}

/// How long a token the database confirmed is still taken while the database cannot answer.
const STALE_WHILE_UNAVAILABLE: Duration = Duration::from_secs(15 * 60);

/// How long the re-check of a token confirmed before may take before the confirmation stands.
const RECHECK_DEADLINE: Duration = Duration::from_millis(150);

/// The token table.
pub struct TokenStore {
    db: std::sync::Arc<dyn crate::tables::HttpTables>,
    /// Accounts' sessions and credentials, beside the tokens.
    pub sessions: crate::session::Sessions,
    cache: Mutex<HashMap<[u8; 32], CachedLookup>>,
    /// Whether a token id is still valid (not revoked), as last read, for open streams.
    active: Mutex<HashMap<Uuid, (bool, Instant)>>,
    /// The cache's time to live, in milliseconds.
    ttl_ms: AtomicU64,
}

impl TokenStore {
    /// The HTTP layer's tables, opened with the token store: the idempotency keys live beside
    /// the tokens, so a command's key claim uses the same handle instead of opening its own.
    pub(crate) fn tables(&self) -> &std::sync::Arc<dyn crate::tables::HttpTables> {
        &self.db
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a principal's token has passed its expiry at `now`.
fn expired(p: &Principal, now: DateTime<Utc>) -> bool {
    p.expires_at.is_some_and(|t| t <= now)
}

impl TokenStore {
    /// Opens (creating) the token table in `store`'s database.
    pub async fn open(store: &dyn EventStore) -> Result<Self, TokenError> {
        let db = crate::tables::open(store)
            .await
            .map_err(TokenError::Schema)?;
        let accounts = crate::tables::open_accounts(store)
            .await
            .map_err(TokenError::Schema)?;
        let passwords =
            crate::password::Passwords::new(crate::password::Passwords::default_concurrency())
                .map_err(|_| TokenError::Random)?;
        Ok(Self {
            db,
            sessions: crate::session::Sessions::new(accounts, passwords, DEFAULT_CACHE_TTL),
            cache: Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
            ttl_ms: AtomicU64::new(DEFAULT_CACHE_TTL.as_millis() as u64),
        })
    }

    /// How long a verified token is trusted without asking the database again.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    /// Sets the cache's time to live (tests shorten it; at least 1 ms).
    pub fn set_cache_ttl(&self, ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.ttl_ms.store(ms, Ordering::Relaxed);
    }

    /// Creates a token that never expires and returns it; the plaintext exists only in the
    /// return value.
    pub async fn create(
        &self,
        role: Role,
        director_id: Option<Uuid>,
        name: &str,
    ) -> Result<(Principal, String), TokenError> {
        self.create_expiring(role, director_id, name, None).await
    }

    /// Creates a token valid until `expires_at` (or for ever) and returns it.
    pub async fn create_expiring(
        &self,
        role: Role,
        director_id: Option<Uuid>,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(Principal, String), TokenError> {
        if (role == Role::Director) != director_id.is_some() {
            return Err(TokenError::DirectorMismatch);
        }
        let now = Utc::now();
        if expires_at.is_some_and(|t| t <= now) {
            return Err(TokenError::ExpiryNotInFuture);
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|_| TokenError::Random)?;
        let token = format!("ctk_{}", URL_SAFE_NO_PAD.encode(secret));
        let principal = Principal {
            token_id: Uuid::now_v7(),
            name: name.to_owned(),
            role,
            director_id,
            expires_at,
            account_id: None,
            session: false,
        };
        self.db
            .insert_token(crate::tables::NewToken {
                hash: &hash(&token),
                token_id: principal.token_id,
                name,
                role: role.as_str(),
                director_id,
                created_at: now,
                expires_at,
            })
            .await?;
        Ok((principal, token))
    }

    /// What the cache knows about a token, if it knows anything still fresh: `Some(None)` for
    /// a token known to be invalid.
    pub fn cached(&self, token: &str) -> Option<Option<Principal>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (p, at) = cache.get(&hash(token))?;
        (at.elapsed() < self.cache_ttl()).then(|| p.clone().filter(|p| !expired(p, Utc::now())))
    }

    /// The principal a token stands for, if it is valid: known, not revoked, not expired.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, TokenError> {
        let h = hash(token);
        let ttl = self.cache_ttl();
        if let Some((p, at)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&h)
            && at.elapsed() < ttl
        {
            // Expiry is checked on every use, so a cached token expires on time.
            return Ok(p.clone().filter(|p| !expired(p, Utc::now())));
        }
        let confirmed = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&h)
            .is_some_and(|(p, at)| p.is_some() && at.elapsed() < STALE_WHILE_UNAVAILABLE);
        // A token confirmed before gets a short deadline: a database that takes longer is
        // treated as unavailable for this lookup (a healthy one answers in a millisecond), so
        // an outage does not hold every request for the pool's acquire timeout.
        let lookup = if confirmed {
            match tokio::time::timeout(RECHECK_DEADLINE, self.lookup(&h)).await {
                Ok(r) => r,
                Err(_) => Err(TokenError::Unresponsive),
            }
        } else {
            self.lookup(&h).await
        };
        let principal = match lookup {
            Ok(p) => p,
            Err(e) => {
                // While the database cannot answer, a token it confirmed within the last
                // `STALE_WHILE_UNAVAILABLE` still stands (what is in memory does not depend on
                // the database: /metrics keeps answering during an outage); a token never
                // confirmed is refused as unavailable. A revocation cannot be seen until the
                // database answers again anyway.
                let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                return match cache.get(&h) {
                    Some((Some(p), at)) if at.elapsed() < STALE_WHILE_UNAVAILABLE => {
                        Ok(Some(p.clone()).filter(|p| !expired(p, Utc::now())))
                    }
                    _ => Err(e),
                };
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(h, (principal.clone(), Instant::now()));
        Ok(principal.filter(|p| !expired(p, Utc::now())))
    }

    /// The unrevoked token with hash `h`, from the database.
    async fn lookup(&self, h: &[u8; 32]) -> Result<Option<Principal>, TokenError> {
        Ok(self.db.unrevoked_token(h).await?.and_then(|row| {
            Some(Principal {
                token_id: row.token_id,
                name: row.name,
                role: Role::parse(&row.role)?,
                director_id: row.director_id,
                expires_at: row.expires_at,
                account_id: None,
                session: false,
            })
        }))
    }

    /// Whether the token `token_id` is still unrevoked, read from the database at most every
    /// half cache time to live (shared by every stream of the token).
    pub async fn is_active(&self, token_id: Uuid) -> Result<bool, TokenError> {
        let fresh_for = self.cache_ttl() / 2;
        if let Some((active, at)) = self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&token_id)
            && at.elapsed() < fresh_for
        {
            return Ok(*active);
        }
        let active = self.db.is_unrevoked(token_id).await?;
        let mut cache = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(token_id, (active, Instant::now()));
        Ok(active)
    }

    /// Resolves when `principal`'s token lapses: at its expiry, or within the cache time to
    /// live of its revocation (by this process or another). A failed check resolves too: a
    /// stream whose token cannot be verified ends, and its client resumes it with
    /// `Last-Event-ID` once a request can be authenticated again.
    pub async fn lapsed(&self, principal: &Principal) {
        let expiry = async {
            match principal.expires_at {
                Some(at) => {
                    let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    tokio::time::sleep(left).await;
                    tracing::info!(token_id = %principal.token_id, "stream ended: token expired");
                }
                None => std::future::pending().await,
            }
        };
        let revoked = async {
            loop {
                // Half the time to live between checks, each answered from a cache at most
                // half that old: a revocation is seen within one time to live.
                tokio::time::sleep(self.cache_ttl() / 2).await;
                let active = if principal.session {
                    self.sessions
                        .is_active(principal.token_id)
                        .await
                        .map_err(TokenError::from)
                } else {
                    self.is_active(principal.token_id).await
                };
                match active {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!(token_id = %principal.token_id, "stream ended: token revoked");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(token_id = %principal.token_id, error = %e,
                            "stream ended: its token could not be checked");
                        return;
                    }
                }
            }
        };
        tokio::select! {
            () = expiry => {},
            () = revoked => {},
        }
    }

    /// Every token, oldest first: ids, names, roles, times; never a secret or a hash.
    pub async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self
            .db
            .tokens()
            .await?
            .into_iter()
            .map(|t| TokenInfo {
                token_id: t.token_id,
                name: t.name,
                role: t.role,
                director_id: t.director_id,
                created_at: t.created_at,
                expires_at: t.expires_at,
                revoked_at: t.revoked_at,
            })
            .collect())
    }

    /// Revokes the token `token_id`. Requests with it are refused, and its streams end, within
    /// the cache time to live (at once in this process).
    pub async fn revoke(&self, token_id: Uuid) -> Result<Revocation, TokenError> {
        let now = Utc::now();
        let (changed, after) = self.db.revoke(token_id, now).await?;
        // Forget what this process knew about the token.
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (p, _)| p.as_ref().is_none_or(|p| p.token_id != token_id));
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token_id);
        Ok(match (changed, after) {
            (true, _) => Revocation::Revoked,
            (_, Some(Some(at))) => Revocation::AlreadyRevoked(at),
            // Unchanged but present and unrevoked cannot happen; no row means no such token.
            (_, _) => Revocation::Unknown,
        })
    }
}

/// The bearer token an `Authorization` header carries (RFC 6750: the scheme is
/// case-insensitive), if it carries one.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The rate-limit key of a client address: the address itself for IPv4, its /64 network for
/// IPv6 (one subscriber usually holds a whole /64, so single addresses would be free).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client address key of a request served by [`crate::Server`] (none when the router is
/// driven without it).
fn client_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| client_key(c.0.ip()))
}

/// The 429 for a client address that spent its budget of unauthenticated requests.
fn throttled(state: &AppState, wait: Duration) -> ApiError {
    state.metrics.refused_unauthenticated(true);
    ApiError::too_many_requests(
        "too many requests without a valid token from this address; slow down",
        wait,
    )
}

/// The 401 for a request without a valid token: counted, and logged only as part of a
/// periodic summary (one line per refusal let a flood fill the disk with log lines).
fn unauthenticated(state: &AppState, presented: bool) -> ApiError {
    state.metrics.refused_unauthenticated(false);
    if presented {
        ApiError::invalid_token()
    } else {
        ApiError::unauthorized()
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = client_of(&parts.extensions);
        // A request without a token was charged to its address by `limit_anonymous`.
        let Some(token) = bearer(&parts.headers) else {
            return session_principal(parts, state, client).await;
        };
        let principal = match state.tokens.cached(token) {
            Some(known) => known,
            None => {
                // An address that spent its budget on bad tokens does not get to make the
                // database look up more of them.
                if let Some(wait) = client.and_then(|c| state.anonymous.exhausted(c)) {
                    return Err(throttled(state, wait));
                }
                state
                    .tokens
                    .authenticate(token)
                    .await
                    .map_err(|e| ApiError::unavailable(&e))?
            }
        };
        match principal {
            Some(p) => match state.limiter.admit(p.token_id) {
                Ok(()) => Ok(p),
                Err(wait) => {
                    state.metrics.rate_limited_token();
                    Err(ApiError::too_many_requests(
                        "too many requests for this token; slow down",
                        wait,
                    ))
                }
            },
            None => match client.map(|c| state.anonymous.admit(c)) {
                Some(Err(wait)) => Err(throttled(state, wait)),
                _ => Err(unauthenticated(state, true)),
            },
        }
    }
}

/// The principal of a request signed in with the session cookie; a request that changes
/// something must also pass the CSRF checks ([`crate::session`]).
async fn session_principal(
    parts: &Parts,
    state: &AppState,
    client: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let sessions = &state.tokens.sessions;
    let Some(secret) = sessions.secret_of(&parts.headers) else {
        return Err(unauthenticated(state, false));
    };
    if let Some(wait) = client.and_then(|c| state.anonymous.exhausted(c)) {
        return Err(throttled(state, wait));
    }
    let principal = sessions
        .authenticate(secret)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let Some(principal) = principal else {
        // An unknown or ended session is charged to the address like a bad token.
        return match client.map(|c| state.anonymous.admit(c)) {
            Some(Err(wait)) => Err(throttled(state, wait)),
            _ => Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the session has ended; sign in again",
            )),
        };
    };
    sessions.check_csrf(&parts.method, &parts.headers, secret)?;
    match state.limiter.admit(principal.token_id) {
        Ok(()) => Ok(principal),
        Err(wait) => {
            state.metrics.rate_limited_token();
            Err(ApiError::too_many_requests(
                "too many requests for this session; slow down",
                wait,
            ))
        }
    }
}

/// Whether a path serves the embedded web page (static files, cheap, needed before sign-in).
fn is_page(path: &str) -> bool {
    path == "/" || path == "/login" || path.starts_with("/assets/")
}

/// Whether requests to a path authenticate their bearer token (and charge a bad one to the
/// client's address themselves).
fn authenticates(path: &str) -> bool {
    path.starts_with("/api/v1/") || path == "/metrics"
}

/// Middleware charging unauthenticated requests to their client address: requests without a
/// bearer token, and every request to an endpoint that needs none (`/healthz`, `/readyz`,
/// `/openapi.json`, unknown paths), except the web page's files. An address over its budget
/// gets 429 with `Retry-After` before any handler runs. Requests that present a token to an
/// endpoint that checks it are charged there, and only if the token is bad.
pub async fn limit_anonymous(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    // The liveness probe answers from memory: limiting it protects nothing, and a flood from
    // one address (or from every client behind one proxy) would fail the probes and get a
    // healthy process restarted.
    // A request with the session cookie is charged only if its session is bad, like a token;
    // a sign-in is limited per address by its own, stricter limit (`session`).
    let exempt = is_page(path)
        || path == "/healthz"
        || (authenticates(path)
            && (bearer(req.headers()).is_some()
                || state.tokens.sessions.secret_of(req.headers()).is_some()));
    if !exempt
        && let Some(client) = client_of(req.extensions())
        && let Err(wait) = state.anonymous.admit(client)
    {
        return throttled(&state, wait).into_response();
    }
    next.run(req).await
}

/// The most keys a [`RateLimiter`] tracks before it forgets the idle ones.
const MAX_KEYS: usize = 65_536;

/// A token-bucket rate limit per key: per token (generous by default: it protects the service
/// from a runaway client, not a well-behaved integration) and per client address for
/// unauthenticated requests.
pub struct RateLimiter<K = Uuid> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// `per_second` requests a second on average (at least 1), bursts of `burst` (at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The bucket's level now.
    fn refill(&self, level: f64, at: Instant, now: Instant) -> f64 {
        (level + now.duration_since(at).as_secs_f64() * self.per_second).min(self.burst)
    }

    /// How long until a bucket at `level` holds one request.
    fn wait(&self, level: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - level) / self.per_second).max(0.0))
    }

    /// Takes one request from the key's bucket; when it is empty, says how long until it
    /// holds one.
    pub fn admit(&self, key: K) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(&key) {
            // A full bucket is the same as none: forget those. If every bucket is in use (a
            // flood from very many addresses), forget them all rather than grow without bound.
            buckets.retain(|_, (level, at)| self.refill(*level, *at, now) < self.burst);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let (level, at) = buckets.entry(key).or_insert((self.burst, now));
        *level = self.refill(*level, *at, now);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(self.wait(*level))
        }
    }

    /// Without taking anything: if the key's bucket is empty, how long until it holds one.
    pub fn exhausted(&self, key: K) -> Option<Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (level, at) = buckets.get(&key)?;
        let level = self.refill(*level, *at, Instant::now());
        (level < 1.0).then(|| self.wait(level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening #9: every 429 says when to retry, and the bucket refills at its rate.
    #[test]
    fn an_empty_bucket_says_how_long_to_wait() {
        let limiter = RateLimiter::<u8>::new(10, 2);
        assert_eq!(limiter.exhausted(1), None);
        assert!(limiter.admit(1).is_ok() && limiter.admit(1).is_ok());
        let wait = limiter.admit(1).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(limiter.exhausted(1).is_some());
        assert!(limiter.admit(2).is_ok(), "keys have their own buckets");
        std::thread::sleep(wait + Duration::from_millis(20));
        assert!(limiter.admit(1).is_ok());
    }

    #[test]
    fn idle_keys_are_forgotten_and_memory_is_bounded() {
        let limiter = RateLimiter::<u32>::new(1, 1);
        for k in 0..(MAX_KEYS as u32 + 10) {
            let _ = limiter.admit(k);
        }
        assert!(limiter.buckets.lock().unwrap().len() <= MAX_KEYS);
    }

    #[test]
    fn an_ipv6_client_is_its_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let with = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(
                axum::http::header::AUTHORIZATION,
                axum::http::HeaderValue::from_str(v).unwrap(),
            );
            bearer(&h).map(str::to_owned)
        };
        assert_eq!(with("Bearer ctk_x").as_deref(), Some("ctk_x"));
        assert_eq!(with("BEARER  ctk_x ").as_deref(), Some("ctk_x"));
        assert_eq!(with("Basic dXNlcjpwYXNz"), None);
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Bearer"), None);
    }
}
