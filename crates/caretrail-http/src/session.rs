//! Browser sessions for accounts: sign-in with a user name and password, a session cookie,
//! CSRF protection, lockout after failed sign-ins, and the routes under `/api/v1/session`.
//!
//! **Sign-in** (`POST /api/v1/session {username, password}`) answers the same 401
//! `invalid_credentials` for an unknown name, a wrong password and a disabled account, and an
//! unknown name costs the same Argon2id verification as a known one ([`crate::password`]).
//! Failed sign-ins are counted per account in `account_credentials`; [`LOCK_AFTER`] of them
//! lock it for [`LOCK_FOR`] (429 `account_locked` with `Retry-After`), lifted by time or by an
//! administrator's password reset. Unknown names are counted the same way in memory, so the
//! lockout answer does not tell which names exist either. Each client address may try
//! [`SIGNIN_BURST`] sign-ins at once and one a second after that, across all names.
//!
//! Sign-ins and lockouts are **not** events in the log: anyone on the network could write to
//! the immutable log by failing to sign in, and a flood would bury the record of care under
//! noise forever. They are counted in the table and logged with the account id (never the
//! name that was typed, which may be a password typed in the wrong box).
//!
//! **Sessions** are 256 random bits in a cookie; only their SHA-256 is stored. A session ends
//! after [`IDLE_TIMEOUT`] without a request or [`ABSOLUTE_TIMEOUT`] after sign-in, at sign-out,
//! at "sign out everywhere", and when the account's password, role or state changes (the
//! accounts resource ends the sessions *before* recording the change, so a crash in between
//! leaves the sessions ended rather than a session with an old role). The cookie is
//! `HttpOnly; SameSite=Strict; Path=/`, and when the server's public URL is `https://...`
//! (`serve --public-url`) also `Secure` under the `__Host-` prefix.
//!
//! **CSRF**: a request authenticated by the cookie that is not `GET`/`HEAD` must carry
//! `X-CSRF-Token`, an HMAC of the session secret (so nothing more is stored, and the token is
//! worthless without the cookie it belongs to); the page reads it from the sign-in answer or
//! `GET /api/v1/session`. Its `Origin`, when sent, must be the server's own, and
//! `Sec-Fetch-Site`, when sent, `same-origin` or `none`. A refusal is 403 `csrf_token_missing`,
//! `csrf_token_invalid` or `cross_site_request`. Bearer-token requests carry no ambient
//! credential and need none of this.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::AppState;
use crate::auth::{Principal, RateLimiter, Role};
use crate::error::{ApiError, ApiResult};
use crate::password::{PasswordError, Passwords};
use crate::tables::{AccountTables, NewSession};

/// A session ends after this long without a request (OWASP: 15 to 30 minutes for
/// applications holding sensitive data).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A session ends this long after sign-in whatever its use: a working day.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// Failed sign-ins in a row that lock an account.
pub const LOCK_AFTER: i32 = 5;

/// How long a lockout lasts.
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);

/// Sign-ins one client address may try at once (then one a second).
pub const SIGNIN_BURST: u32 = 10;

/// How often at most a session's last use is written (a request in between counts as use all
/// the same; the idle timeout is precise to this).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The cookie's name over plain HTTP.
pub const COOKIE: &str = "caretrail_session";

/// The cookie's name over HTTPS: the `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, has `Path=/` and no `Domain`, so a sibling subdomain cannot plant one.
pub const SECURE_COOKIE: &str = "__Host-caretrail_session";

/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the server is reached, for the cookie's flags and the `Origin` check.
#[derive(Clone, Debug, Default)]
pub struct PublicUrl {
    /// `https://care.example.org` (scheme and authority; no path), if configured.
    pub origin: Option<String>,
}

impl PublicUrl {
    /// From `--public-url`: its scheme and authority; `None` when it is not an http(s) URL.
    pub fn parse(url: &str) -> Option<PublicUrl> {
        let url = url.trim().trim_end_matches('/');
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let scheme = if url.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        Some(PublicUrl {
            origin: Some(format!("{scheme}://{}", authority.to_ascii_lowercase())),
        })
    }

    /// Whether the cookie is `Secure` (and `__Host-`).
    pub fn secure(&self) -> bool {
        self.origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"))
    }
}

/// What the sign-in and session answers hold.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct SessionInfo {
    /// The account.
    pub account_id: Uuid,
    /// Its user name.
    pub username: String,
    /// Its role.
    pub role: Role,
    /// For a director account: the director.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub director_id: Option<Uuid>,
    /// Send this back in `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    /// When the session ends at the latest.
    pub expires_at: DateTime<Utc>,
    /// A session ends after this many seconds without a request.
    pub idle_timeout_seconds: u64,
}

/// A signed-in session as the cache holds it.
#[derive(Clone, Debug)]
struct Live {
    principal: Principal,
    last_seen: DateTime<Utc>,
    touched: Instant,
}

/// A session hash's live session (or `None`: unknown or revoked) and when it was read.
type CachedSession = (Option<Live>, Instant);

/// Failures of a name that has no account, kept in memory only.
#[derive(Clone, Copy, Debug, Default)]
struct Phantom {
    failures: i32,
    locked_until: Option<DateTime<Utc>>,
}

/// Why a sign-in did not succeed.
#[derive(Debug)]
pub enum SignInError {
    /// Unknown name, wrong password or disabled account: one answer for all three.
    Invalid,
    /// Locked until then.
    Locked(DateTime<Utc>),
    /// This address tried too many sign-ins.
    Throttled(Duration),
    /// The passwords are all being checked.
    Busy,
    /// Storage or the log could not answer.
    Unavailable(String),
}

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the user name or password is wrong",
            ),
            SignInError::Locked(until) => {
                let wait = (until - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::from_secs(1));
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "account_locked",
                    "too many failed sign-ins: this account is locked for a while; an \
                     administrator's password reset unlocks it at once",
                )
                .retry_after(wait)
            }
            SignInError::Throttled(wait) => {
                ApiError::too_many_requests("too many sign-ins from this address; slow down", wait)
            }
            SignInError::Busy => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "sign_in_busy",
                "too many sign-ins are being checked; retry shortly",
            )
            .retry_after(Duration::from_secs(1)),
            SignInError::Unavailable(cause) => ApiError::unavailable(&cause),
        }
    }
}

impl From<PasswordError> for SignInError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => SignInError::Busy,
            other => SignInError::Unavailable(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for SignInError {
    fn from(e: sqlx::Error) -> Self {
        SignInError::Unavailable(e.to_string())
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::UNIX_EPOCH)
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The CSRF token of a session: HMAC-SHA256 keyed by the session secret. It is derived, so
/// nothing more is stored; it cannot be turned back into the secret.
pub fn csrf_token(secret: &str) -> String {
    type HmacSha256 = hmac::Hmac<Sha256>;
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
    mac.update(b"caretrail csrf v1");
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Normalises a user name for storage and lookup: trimmed, lower case.
pub fn normalise_username(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Whether a (normalised) user name has an acceptable shape: 3 to 64 of `a-z 0-9 . _ -`,
/// starting with a letter or digit. Plain ASCII keeps look-alike names apart.
pub fn valid_username(name: &str) -> bool {
    (3..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The sessions, the credentials and the password hasher.
pub struct Sessions {
    db: Arc<dyn AccountTables>,
    /// Argon2id hashing, bounded.
    pub passwords: Passwords,
    public: RwLock<PublicUrl>,
    cache: Mutex<HashMap<[u8; 32], CachedSession>>,
    phantoms: Mutex<HashMap<String, Phantom>>,
    signins: RwLock<Arc<RateLimiter<IpAddr>>>,
    /// Lock duration and idle timeout (tests shorten them).
    timing: RwLock<(Duration, Duration)>,
    cache_ttl: Duration,
}

impl Sessions {
    /// Sessions over the account tables.
    pub(crate) fn new(
        db: Arc<dyn AccountTables>,
        passwords: Passwords,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            db,
            passwords,
            public: RwLock::new(PublicUrl::default()),
            cache: Mutex::new(HashMap::new()),
            phantoms: Mutex::new(HashMap::new()),
            signins: RwLock::new(Arc::new(RateLimiter::new(1, SIGNIN_BURST))),
            timing: RwLock::new((LOCK_FOR, IDLE_TIMEOUT)),
            cache_ttl,
        }
    }

    /// The account tables.
    pub(crate) fn db(&self) -> &Arc<dyn AccountTables> {
        &self.db
    }

    /// Sets how the server is reached (cookie flags, `Origin` check).
    pub fn set_public_url(&self, url: PublicUrl) {
        *self.public.write().unwrap_or_else(|e| e.into_inner()) = url;
    }

    /// How the server is reached.
    pub fn public_url(&self) -> PublicUrl {
        self.public
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Shortens the lockout and the idle timeout (tests).
    pub fn set_timing(&self, lock_for: Duration, idle: Duration) {
        *self.timing.write().unwrap_or_else(|e| e.into_inner()) = (lock_for, idle);
    }

    /// Replaces the per-address sign-in limit (tests that sign in many times).
    pub fn set_signin_limit(&self, per_second: u32, burst: u32) {
        *self.signins.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(RateLimiter::new(per_second, burst));
    }

    fn lock_for(&self) -> Duration {
        self.timing.read().unwrap_or_else(|e| e.into_inner()).0
    }

    fn idle(&self) -> Duration {
        self.timing.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// The cookie name in use.
    pub fn cookie_name(&self) -> &'static str {
        if self.public_url().secure() {
            SECURE_COOKIE
        } else {
            COOKIE
        }
    }

    /// The `Set-Cookie` value for a new session.
    pub fn set_cookie(&self, secret: &str) -> String {
        let secure = self.public_url().secure();
        format!(
            "{}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.cookie_name(),
            ABSOLUTE_TIMEOUT.as_secs(),
            if secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self) -> String {
        let secure = self.public_url().secure();
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            self.cookie_name(),
            if secure { "; Secure" } else { "" }
        )
    }

    /// The session secret a request's cookie carries, if any.
    pub fn secret_of<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty() && v.len() <= 64)
    }

    /// Checks an unsafe request made with the cookie: the CSRF token, `Origin` and
    /// `Sec-Fetch-Site`.
    pub fn check_csrf(
        &self,
        method: &Method,
        headers: &HeaderMap,
        secret: &str,
    ) -> Result<(), ApiError> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        self.check_origin(headers)?;
        let Some(sent) = headers.get(CSRF_HEADER) else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_token_missing",
                "a request signed in with the session cookie that changes something needs the X-CSRF-Token header",
            ));
        };
        let expected = csrf_token(secret);
        let same = sent.as_bytes().len() == expected.len()
            && sent
                .as_bytes()
                .iter()
                .zip(expected.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_token_invalid",
                "the X-CSRF-Token header does not belong to this session",
            ))
        }
    }

    /// `Sec-Fetch-Site`, when sent, is `same-origin` or `none`; `Origin`, when sent, is the
    /// server's own (its public URL, or else the request's `Host` over the configured scheme).
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let cross = || {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_site_request",
                "a request with the session cookie must come from this server's own pages",
            )
        };
        if let Some(site) = headers.get("sec-fetch-site")
            && !matches!(site.as_bytes(), b"same-origin" | b"none")
        {
            return Err(cross());
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().map_err(|_| cross())?.to_ascii_lowercase();
            let public = self.public_url();
            let expected = match public.origin {
                Some(o) => o,
                None => {
                    let host = headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .ok_or_else(cross)?
                        .to_ascii_lowercase();
                    format!("http://{host}")
                }
            };
            if origin != expected {
                return Err(cross());
            }
        }
        Ok(())
    }

    /// The principal of a session secret: `None` for an unknown, revoked or expired session.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, sqlx::Error> {
        let h = hash(secret);
        let now = Utc::now();
        let idle = chrono::Duration::from_std(self.idle()).unwrap_or(chrono::Duration::MAX);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&h)
            .filter(|(_, at)| at.elapsed() < self.cache_ttl)
            .map(|(live, _)| live.clone());
        let live = match cached {
            Some(live) => live,
            None => {
                let live = self.db.session(&h).await?.and_then(|row| {
                    Some(Live {
                        principal: Principal {
                            token_id: row.session_id,
                            name: row.username,
                            role: Role::parse(&row.role)?,
                            director_id: row.director_id,
                            expires_at: Some(from_micros(row.expires_at)),
                            account_id: Some(row.account_id),
                            session: true,
                        },
                        last_seen: from_micros(row.last_seen_at),
                        touched: Instant::now(),
                    })
                });
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(h, (live.clone(), Instant::now()));
                live
            }
        };
        let Some(mut live) = live else {
            return Ok(None);
        };
        if live.principal.expires_at.is_some_and(|t| t <= now) || live.last_seen + idle <= now {
            return Ok(None);
        }
        if live.touched.elapsed() >= TOUCH_EVERY
            || now - live.last_seen >= chrono::Duration::from_std(TOUCH_EVERY).unwrap_or_default()
        {
            self.db
                .touch_session(live.principal.token_id, micros(now))
                .await?;
            live.last_seen = now;
            live.touched = Instant::now();
            if let Some(entry) = self
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&h)
            {
                entry.0 = Some(live.clone());
            }
        }
        Ok(Some(live.principal))
    }

    /// Whether a session is still unrevoked (for open streams).
    pub async fn is_active(&self, session_id: Uuid) -> Result<bool, sqlx::Error> {
        self.db.session_unrevoked(session_id).await
    }

    /// Forgets what this process cached about an account's sessions (after revoking them).
    fn forget(&self, account_id: Uuid) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (live, _)| {
                live.as_ref()
                    .is_none_or(|l| l.principal.account_id != Some(account_id))
            });
    }

    /// Ends every session of an account (sign out everywhere, and before any change of its
    /// password, role or state).
    pub async fn end_all(&self, account_id: Uuid) -> Result<u64, sqlx::Error> {
        let n = self
            .db
            .revoke_account_sessions(account_id, micros(Utc::now()))
            .await?;
        self.forget(account_id);
        Ok(n)
    }

    /// Ends one session.
    pub async fn end(&self, secret: &str, session_id: Uuid) -> Result<(), sqlx::Error> {
        self.db
            .revoke_session(session_id, micros(Utc::now()))
            .await?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash(secret));
        Ok(())
    }

    /// Opens a session for an account in `role`; answers the cookie secret and what the
    /// client is told.
    pub async fn open(
        &self,
        account_id: Uuid,
        username: &str,
        role: Role,
        director_id: Option<Uuid>,
    ) -> Result<(Zeroizing<String>, SessionInfo), SignInError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).map_err(|e| SignInError::Unavailable(e.to_string()))?;
        let secret = Zeroizing::new(URL_SAFE_NO_PAD.encode(raw.as_ref()));
        let now = Utc::now();
        let expires_at = now + chrono::Duration::from_std(ABSOLUTE_TIMEOUT).unwrap_or_default();
        self.db
            .insert_session(NewSession {
                hash: &hash(&secret),
                session_id: Uuid::now_v7(),
                account_id,
                username,
                role: role.as_str(),
                director_id,
                now: micros(now),
                expires_at: micros(expires_at),
            })
            .await?;
        let info = SessionInfo {
            account_id,
            username: username.to_owned(),
            role,
            director_id,
            csrf_token: csrf_token(&secret),
            expires_at,
            idle_timeout_seconds: self.idle().as_secs(),
        };
        Ok((secret, info))
    }

    /// Checks a user name and password; answers the account on success. Counts failures and
    /// locks as the module documentation says. `state` reads the account's role and state
    /// from the log.
    pub(crate) async fn check_password(
        &self,
        client: Option<IpAddr>,
        username: &str,
        password: Zeroizing<String>,
    ) -> Result<crate::tables::CredentialRow, SignInError> {
        if let Some(client) = client
            && let Err(wait) = self
                .signins
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .admit(client)
        {
            return Err(SignInError::Throttled(wait));
        }
        // No stored password is longer than a new one may be: a longer one is wrong without
        // asking Argon2 to read it (a 256 KiB body would otherwise be hashed, by every request).
        if password.len() > crate::password::MAX_BYTES {
            return Err(SignInError::Invalid);
        }
        let name = normalise_username(username);
        let now = Utc::now();
        let row = if valid_username(&name) {
            self.db.credentials_by_username(&name).await?
        } else {
            None
        };
        match row {
            Some(row) => {
                if let Some(until) = row.locked_until.map(from_micros)
                    && until > now
                {
                    return Err(SignInError::Locked(until));
                }
                let ok = self
                    .passwords
                    .verify(password, Some(row.password_hash.clone()))
                    .await?;
                if ok {
                    self.db.clear_failures(row.account_id).await?;
                    Ok(row)
                } else {
                    let until =
                        now + chrono::Duration::from_std(self.lock_for()).unwrap_or_default();
                    if let Some(locked) = self
                        .db
                        .record_failure(row.account_id, LOCK_AFTER, micros(until))
                        .await?
                    {
                        tracing::warn!(account_id = %row.account_id, "account locked after repeated failed sign-ins");
                        return Err(SignInError::Locked(from_micros(locked)));
                    }
                    tracing::info!(account_id = %row.account_id, "failed sign-in");
                    Err(SignInError::Invalid)
                }
            }
            None => {
                // The same lockout for names that do not exist, so the answer does not tell.
                let key = hex::encode(hash(&name));
                if let Some(until) = self.phantom(&key).locked_until
                    && until > now
                {
                    return Err(SignInError::Locked(until));
                }
                self.passwords.verify(password, None).await?;
                let lock_for = chrono::Duration::from_std(self.lock_for()).unwrap_or_default();
                let mut phantoms = self.phantoms.lock().unwrap_or_else(|e| e.into_inner());
                if phantoms.len() > 10_000 {
                    phantoms.retain(|_, p| p.locked_until.is_some_and(|t| t > now));
                    if phantoms.len() > 10_000 {
                        phantoms.clear();
                    }
                }
                let p = phantoms.entry(key).or_default();
                p.failures += 1;
                if p.failures >= LOCK_AFTER {
                    p.failures = 0;
                    p.locked_until = Some(now + lock_for);
                    return Err(SignInError::Locked(now + lock_for));
                }
                Err(SignInError::Invalid)
            }
        }
    }

    fn phantom(&self, key: &str) -> Phantom {
        self.phantoms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or_default()
    }
}

/// The client address a request came from (its rate-limit key), when served by
/// [`crate::Server`]; never fails.
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| crate::auth::client_key(c.0.ip())),
        ))
    }
}

/// Nothing to document: the address is the connection's.
impl aide::operation::OperationInput for ClientAddr {}

/// `POST /api/v1/session`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The user name (case does not matter).
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    /// The password.
    #[schemars(length(min = 1, max = 256))]
    pub password: String,
}

/// `POST /api/v1/session/password`'s body.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password.
    #[schemars(length(min = 1, max = 256))]
    pub current_password: String,
    /// The new password: at least 10 characters, at most 256 bytes, no control characters.
    #[schemars(length(min = 10, max = 256))]
    pub new_password: String,
}

fn with_cookie(status: StatusCode, cookie: &str, body: Option<&SessionInfo>) -> Response {
    let mut res = match body {
        Some(info) => (status, axum::Json(info)).into_response(),
        None => status.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Reads a JSON body strictly (a key twice is refused), naming the field, never the value.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    crate::json::parse_body(bytes)
}

/// Signs in and opens a session for an account whose log state allows it.
async fn sign_in_account(
    state: &AppState,
    row: &crate::tables::CredentialRow,
) -> Result<(Zeroizing<String>, SessionInfo), ApiError> {
    let stream =
        caretrail_domain::StreamName::new(caretrail_domain::Category::Account, row.account_id);
    let (_, st) = state.app.state(&stream).await?;
    let caretrail_domain::State::Account(account) = st else {
        return Err(SignInError::Invalid.into());
    };
    let Some(role) = account.role.filter(|_| account.exists && !account.disabled) else {
        tracing::info!(account_id = %row.account_id, "sign-in refused: account disabled or not created");
        return Err(SignInError::Invalid.into());
    };
    Ok(state
        .tokens
        .sessions
        .open(
            row.account_id,
            &row.username,
            role,
            account.director_id.map(|d| d.uuid()),
        )
        .await?)
}

/// `POST /api/v1/session`: signs in with a user name and password.
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let sessions = &state.tokens.sessions;
    // A sign-in form posted from another site (login CSRF) is refused like any other.
    sessions.check_origin(&headers)?;
    let req: SignIn = body(&bytes)?;
    let password = Zeroizing::new(req.password);
    let row = sessions
        .check_password(client, &req.username, password)
        .await?;
    let (secret, info) = sign_in_account(&state, &row).await?;
    tracing::info!(account_id = %row.account_id, "signed in");
    Ok(with_cookie(
        StatusCode::OK,
        &sessions.set_cookie(&secret),
        Some(&info),
    ))
}

/// The session of a request signed in with the cookie, or 409 for a bearer token.
fn session_of(principal: &Principal) -> ApiResult<Uuid> {
    match principal.account_id {
        Some(id) if principal.session => Ok(id),
        _ => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_a_session",
            "this request is authenticated by a bearer token, not a signed-in session",
        )),
    }
}

/// `GET /api/v1/session`: the signed-in session, with its CSRF token.
pub async fn current(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let account_id = session_of(&principal)?;
    let secret = state
        .tokens
        .sessions
        .secret_of(&headers)
        .unwrap_or_default();
    let info = SessionInfo {
        account_id,
        username: principal.name.clone(),
        role: principal.role,
        director_id: principal.director_id,
        csrf_token: csrf_token(secret),
        expires_at: principal.expires_at.unwrap_or_else(Utc::now),
        idle_timeout_seconds: state.tokens.sessions.idle().as_secs(),
    };
    let mut res = axum::Json(info).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `DELETE /api/v1/session`: signs out this session.
pub async fn sign_out(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> ApiResult<Response> {
    session_of(&principal)?;
    let sessions = &state.tokens.sessions;
    let secret = sessions.secret_of(&headers).unwrap_or_default();
    sessions
        .end(secret, principal.token_id)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(with_cookie(
        StatusCode::NO_CONTENT,
        &sessions.clear_cookie(),
        None,
    ))
}

/// `POST /api/v1/session/end-all`: signs out every session of the account.
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Response> {
    let account_id = session_of(&principal)?;
    let sessions = &state.tokens.sessions;
    let n = sessions
        .end_all(account_id)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    tracing::info!(%account_id, sessions = n, "signed out everywhere");
    Ok(with_cookie(
        StatusCode::NO_CONTENT,
        &sessions.clear_cookie(),
        None,
    ))
}

/// `POST /api/v1/session/password`: the holder changes their own password. Every session of
/// the account ends; this browser gets a new one.
pub async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    ClientAddr(client): ClientAddr,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    let account_id = session_of(&principal)?;
    let req: ChangePassword = body(&bytes)?;
    crate::accounts::check_new_password(&req.new_password, "new_password")?;
    let sessions = &state.tokens.sessions;
    // The current password is checked like a sign-in (and counts towards the lockout), so a
    // session left open on a shared computer cannot change the password without it.
    let row = sessions
        .check_password(
            client,
            &principal.name,
            Zeroizing::new(req.current_password),
        )
        .await?;
    if row.account_id != account_id {
        return Err(SignInError::Invalid.into());
    }
    let new_hash = sessions
        .passwords
        .hash(Zeroizing::new(req.new_password))
        .await
        .map_err(SignInError::from)?;
    crate::accounts::set_password(
        &state,
        &principal,
        account_id,
        caretrail_domain::vocab::PasswordSetReason::Changed,
        &new_hash,
    )
    .await?;
    let (secret, info) = sign_in_account(&state, &row).await?;
    Ok(with_cookie(
        StatusCode::OK,
        &sessions.set_cookie(&secret),
        Some(&info),
    ))
}
