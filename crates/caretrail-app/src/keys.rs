//! Personal data under per-subject keys, erasable by destroying the key (crypto-shredding).
//!
//! Every data subject (a model worker, a director, a named official) gets a random 256-bit data
//! key the first time personal data about them is stored. Personal values are sealed with
//! XChaCha20-Poly1305 under that key, with associated data binding the ciphertext to the event
//! id and the subject id, so a sealed value cannot be moved to another event or subject and
//! still open. Data keys are stored wrapped (encrypted) under a master key that never enters
//! the database: it comes from `CARETRAIL_MASTER_KEY` or a key file created with owner-only
//! permissions. Erasing a subject replaces its wrapped key with NULL in the mutable
//! `subject_keys` table; the immutable events, their ciphertext and their hashes do not change,
//! and their personal fields read as erased from then on.
//!
//! Copies of a wrapped key can survive in backups or PostgreSQL WAL archives; they are
//! encrypted under the master key, so rotating the master key (re-wrapping live keys) retires
//! those copies too.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use caretrail_domain::Sealed;
use caretrail_store::{EventStore, PgTables, SqliteTables, StoreError, TableSet, Tables};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

const WRAP_AAD: &[u8] = b"caretrail.data-key.v1";
const SEAL_AAD: &[u8] = b"caretrail.personal.v1";
const CHECK_AAD: &[u8] = b"caretrail.master-key-check.v1";
const CHECK_PLAINTEXT: &[u8] = b"caretrail master key check";

/// How many unwrapped data keys are kept in memory before the cache is emptied.
const CACHE_LIMIT: usize = 50_000;

/// The key tables (`master_key_check`, `subject_keys`), registered with the store.
static TABLES: TableSet = TableSet {
    name: "keys",
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    postgres: sqlx::migrate!("./migrations/postgres"),
};

/// What can go wrong with keys and sealed values. Messages name subjects by id only.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The master key is missing or malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The master key does not open this database's keys.
    #[error(
        "the master key does not match this database (it wraps its data keys under another key)"
    )]
    WrongMasterKey,
    /// The subject's key was destroyed; nothing new can be sealed for them.
    #[error("personal data of subject {0} was erased; it cannot be stored again")]
    SubjectErased(Uuid),
    /// A sealed value did not open under its subject's key (altered, or moved between events).
    #[error("a sealed value of subject {0} does not open")]
    Tampered(Uuid),
    /// The key table failed.
    #[error("key storage: {0}")]
    Database(#[from] sqlx::Error),
    /// The key table's schema could not be applied.
    #[error("key storage schema: {0}")]
    Schema(#[source] StoreError),
    /// The operating system gave no random bytes.
    #[error("no randomness available: {0}")]
    Random(String),
}

impl KeyError {
    /// Whether the key table could not be reached (the database is unavailable), as opposed to
    /// a key that is wrong, erased or tampered with.
    pub fn is_unavailable(&self) -> bool {
        match self {
            KeyError::Database(e) => caretrail_store::error::is_unavailable(e),
            KeyError::Schema(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(out)
}

/// The key that wraps every data key. Zeroed in memory when dropped.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A key from its base64 text (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let mut bytes = B64
            .decode(text.trim())
            .map_err(|_| KeyError::MasterKey("not valid base64".into()))?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::MasterKey("must be 32 bytes".into()))?;
        bytes.zeroize();
        Ok(Self(Zeroizing::new(key)))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self(Zeroizing::new(random()?)))
    }

    /// The key from `CARETRAIL_MASTER_KEY` if set, else from `path`, creating the file with
    /// owner-only permissions (0600) and a fresh key on first use.
    pub fn from_env_or_file(path: &Path) -> Result<Self, KeyError> {
        if let Ok(text) = std::env::var("CARETRAIL_MASTER_KEY") {
            return Self::from_base64(&text);
        }
        Self::load_or_create(path)
    }

    /// The key in `path`, created with mode 0600 if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        use std::io::Write;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(path)
                        .map_err(|e| KeyError::MasterKey(format!("{}: {e}", path.display())))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        return Err(KeyError::MasterKey(format!(
                            "{} is readable by other users (mode {:o}); run chmod 600 on it",
                            path.display(),
                            mode & 0o777
                        )));
                    }
                }
                Self::from_base64(&text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options
                    .open(path)
                    .map_err(|e| KeyError::MasterKey(format!("create {}: {e}", path.display())))?;
                let text = Zeroizing::new(B64.encode(*key.0));
                file.write_all(text.as_bytes())
                    .and_then(|()| file.write_all(b"\n"))
                    .and_then(|()| file.sync_all())
                    .map_err(|e| KeyError::MasterKey(format!("write {}: {e}", path.display())))?;
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok(key)
            }
            Err(e) => Err(KeyError::MasterKey(format!("{}: {e}", path.display()))),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.0).into())
    }
}

/// A subject's unwrapped data key, or the fact that it was erased.
#[derive(Clone)]
enum KeyState {
    Live(Zeroizing<[u8; 32]>),
    Erased,
}

/// Seals and unseals personal values; creates and destroys subjects' data keys.
pub struct KeyRing {
    master: MasterKey,
    db: Box<dyn KeyTables>,
    cache: Mutex<HashMap<Uuid, KeyState>>,
    /// Erasures made through this key ring, so that anything rendered with opened values can
    /// tell that it may be stale (see [`KeyRing::erasures`]).
    erasures: std::sync::atomic::AtomicU64,
    /// Moves (under the cache's lock) at every erasure and every emptying of the cache: a key
    /// read from the database while it moved may predate an erasure whose marker is gone, so
    /// it is not kept (see [`KeyRing::load`]).
    epoch: std::sync::atomic::AtomicU64,
}

fn aad(prefix: &[u8], parts: &[&Uuid]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
    out
}

impl KeyRing {
    /// Opens the key tables in `store`'s database (creating them), and checks that `master`
    /// is the key this database's data keys are wrapped under.
    #[tracing::instrument(name = "keys.open", skip_all)]
    pub async fn open(store: &dyn EventStore, master: MasterKey) -> Result<Self, KeyError> {
        let db: Box<dyn KeyTables> = match store.tables(&TABLES).await.map_err(KeyError::Schema)? {
            Tables::Sqlite(t) => Box::new(t),
            Tables::Postgres(t) => Box::new(t),
        };
        loop {
            match db.master_check().await? {
                Some(wrapped) => {
                    let (nonce, ct) = split_nonce(&wrapped).ok_or(KeyError::WrongMasterKey)?;
                    let opened = master
                        .cipher()
                        .decrypt(
                            nonce,
                            Payload {
                                msg: ct,
                                aad: CHECK_AAD,
                            },
                        )
                        .map_err(|_| KeyError::WrongMasterKey)?;
                    if opened != CHECK_PLAINTEXT {
                        return Err(KeyError::WrongMasterKey);
                    }
                    break;
                }
                None => {
                    let nonce: [u8; 24] = random()?;
                    let ct = master
                        .cipher()
                        .encrypt(
                            &XNonce::from(nonce),
                            Payload {
                                msg: CHECK_PLAINTEXT,
                                aad: CHECK_AAD,
                            },
                        )
                        .map_err(|_| KeyError::Random("encryption failed".into()))?;
                    db.insert_master_check([&nonce[..], &ct[..]].concat())
                        .await?;
                    // Another process may have won the insert with a different key: check
                    // again.
                }
            }
        }
        Ok(Self {
            master,
            db,
            cache: Mutex::new(HashMap::new()),
            erasures: std::sync::atomic::AtomicU64::new(0),
            epoch: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn cached(&self, subject: Uuid) -> Option<KeyState> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&subject)
            .cloned()
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keeps `state`, read from the database when the epoch was `read_at`. Answers whether it
    /// was kept: a live key read while an erasure or an emptying of the cache happened is not,
    /// since the erasure's marker that would have refused it may be gone.
    fn remember(&self, subject: Uuid, state: KeyState, read_at: u64) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(state, KeyState::Live(_)) && self.epoch() != read_at {
            return false;
        }
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
            self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        // Erasure is final: a load that read the key before an erasure and finishes after it
        // must not bring the key back into the cache.
        if matches!(cache.get(&subject), Some(KeyState::Erased)) {
            return matches!(state, KeyState::Erased);
        }
        cache.insert(subject, state);
        true
    }

    /// The subject's key state as stored: `None` when the subject has no key yet.
    ///
    /// A key read while the epoch moved is read again: it may have been read just before an
    /// erasure (of this subject, in this process or one applied from the log) whose marker an
    /// emptying of the cache has since removed, and keeping it would open the erased person's
    /// data again. Red team: the cache-full clear and the erasure follower's start both empty
    /// the cache, markers included.
    async fn load(&self, subject: Uuid) -> Result<Option<KeyState>, KeyError> {
        if let Some(state) = self.cached(subject) {
            return Ok(Some(state));
        }
        loop {
            let read_at = self.epoch();
            let row = self.db.wrapped_key(subject).await?;
            let state = match row {
                None => return Ok(None),
                Some(None) => KeyState::Erased,
                Some(Some(wrapped)) => KeyState::Live(self.unwrap_key(subject, &wrapped)?),
            };
            if self.remember(subject, state.clone(), read_at) {
                return Ok(Some(state));
            }
            if let Some(state) = self.cached(subject) {
                return Ok(Some(state));
            }
        }
    }

    fn unwrap_key(&self, subject: Uuid, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let (nonce, ct) = split_nonce(wrapped).ok_or(KeyError::WrongMasterKey)?;
        let key = Zeroizing::new(
            self.master
                .cipher()
                .decrypt(
                    nonce,
                    Payload {
                        msg: ct,
                        aad: &aad(WRAP_AAD, &[&subject]),
                    },
                )
                .map_err(|_| KeyError::WrongMasterKey)?,
        );
        let key: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongMasterKey)?;
        Ok(Zeroizing::new(key))
    }

    /// A new random data key for `subject`, and its wrapped form as stored.
    fn new_key(&self, subject: Uuid) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>), KeyError> {
        let key = Zeroizing::new(random::<32>()?);
        let nonce: [u8; 24] = random()?;
        let ct = self
            .master
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &key[..],
                    aad: &aad(WRAP_AAD, &[&subject]),
                },
            )
            .map_err(|_| KeyError::Random("encryption failed".into()))?;
        Ok((key, [&nonce[..], &ct[..]].concat()))
    }

    /// The subject's live data key, created on first use.
    async fn key_for_sealing(&self, subject: Uuid) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        match self.load(subject).await? {
            Some(KeyState::Live(k)) => return Ok(k),
            Some(KeyState::Erased) => return Err(KeyError::SubjectErased(subject)),
            None => {}
        }
        let (_, wrapped) = self.new_key(subject)?;
        let now = chrono::Utc::now();
        // Two writers may create a key for the same subject at once: the first insert wins and
        // both use the stored one.
        self.db.insert_key(subject, wrapped, now).await?;
        match self.load(subject).await? {
            Some(KeyState::Live(k)) => Ok(k),
            _ => Err(KeyError::SubjectErased(subject)),
        }
    }

    /// Makes sure every one of `subjects` has a data key, creating the missing ones together
    /// in one transaction, and keeps them in memory for the seals that follow.
    ///
    /// Sealing for a subject met for the first time stores its key on its own, one durable
    /// write per person outside the append's group commit; a roster import of thousands of new
    /// people was bounded by those writes to a few hundred rows a second. An erased subject
    /// stays erased (its row exists, without a key), so sealing for it is still refused.
    ///
    /// Every subject's row is read, also those whose key is in memory: another process may
    /// have erased one since this one kept its key (a roster commit cut half-way, then
    /// committed again after an erasure on another instance), and sealing under the kept key
    /// would store the erased person's data again. Reading the rows back costs one query per 500
    /// subjects; an erased row replaces the key in memory.
    #[tracing::instrument(name = "keys.prepare", skip_all, fields(subjects = subjects.len()))]
    pub async fn prepare(&self, subjects: &[Uuid]) -> Result<(), KeyError> {
        let mut unknown: Vec<Uuid> = subjects.to_vec();
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        let stored = self.remember_stored(&unknown).await?;
        let mut created = Vec::new();
        for subject in unknown.into_iter().filter(|s| !stored.contains(s)) {
            created.push((subject, self.new_key(subject)?.1));
        }
        if created.is_empty() {
            return Ok(());
        }
        self.db.insert_keys(&created, chrono::Utc::now()).await?;
        // Another writer may have stored a key for some of them first: use what is stored.
        let subjects: Vec<Uuid> = created.iter().map(|(s, _)| *s).collect();
        self.remember_stored(&subjects).await?;
        Ok(())
    }

    /// Reads the stored keys of `subjects` into the cache, and answers which had a row.
    async fn remember_stored(
        &self,
        subjects: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, KeyError> {
        let mut found = std::collections::HashSet::new();
        let read_at = self.epoch();
        for (subject, wrapped) in self.db.wrapped_keys(subjects).await? {
            let state = match wrapped {
                None => KeyState::Erased,
                Some(w) => KeyState::Live(self.unwrap_key(subject, &w)?),
            };
            // A key not kept (the epoch moved) is read again when it is next needed.
            self.remember(subject, state, read_at);
            found.insert(subject);
        }
        Ok(found)
    }

    /// Seals `plaintext` for `subject` in event `event_id`.
    pub async fn seal(
        &self,
        subject: Uuid,
        event_id: Uuid,
        plaintext: &str,
    ) -> Result<Sealed, KeyError> {
        let key = self.key_for_sealing(subject).await?;
        let nonce: [u8; 24] = random()?;
        let ct = XChaCha20Poly1305::new((&*key).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad(SEAL_AAD, &[&event_id, &subject]),
                },
            )
            .map_err(|_| KeyError::Random("encryption failed".into()))?;
        Ok(Sealed {
            subject,
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ct),
        })
    }

    /// Opens a sealed value of event `event_id`: `Ok(None)` when the subject was erased.
    pub async fn unseal(
        &self,
        sealed: &Sealed,
        event_id: Uuid,
    ) -> Result<Option<String>, KeyError> {
        let key = match self.load(sealed.subject).await? {
            Some(KeyState::Live(k)) => k,
            // No key at all can only mean the key row was removed outside caretrail, which is
            // as good as erased: the value cannot be read.
            Some(KeyState::Erased) | None => return Ok(None),
        };
        let tampered = || KeyError::Tampered(sealed.subject);
        let nonce: [u8; 24] = B64
            .decode(&sealed.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(tampered)?;
        let ct = B64.decode(&sealed.ciphertext).map_err(|_| tampered())?;
        let plain = XChaCha20Poly1305::new((&*key).into())
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ct,
                    aad: &aad(SEAL_AAD, &[&event_id, &sealed.subject]),
                },
            )
            .map_err(|_| tampered())?;
        String::from_utf8(plain).map(Some).map_err(|_| tampered())
    }

    /// Whether the subject's key was destroyed.
    pub async fn is_erased(&self, subject: Uuid) -> Result<bool, KeyError> {
        Ok(matches!(self.load(subject).await?, Some(KeyState::Erased)))
    }

    /// Destroys the subject's data key (idempotent). On SQLite the database runs with
    /// `secure_delete`, and the write-ahead log is truncated afterwards, so the wrapped key's
    /// bytes do not linger in the file.
    #[tracing::instrument(name = "keys.erase", skip_all, fields(subject = %subject))]
    pub async fn erase(&self, subject: Uuid) -> Result<(), KeyError> {
        self.db.erase(subject, chrono::Utc::now()).await?;
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(subject, KeyState::Erased);
            self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        self.erasures
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Empties the cache of unwrapped keys, erased subjects included: every key is read from
    /// the database again when next needed ([`crate::erasures`] starts with this, so no key
    /// loaded before it followed the log outlives an erasure).
    pub fn forget_cached(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.clear();
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// How many erasures this key ring has made. A cache of values opened with this key ring
    /// holds only while this number is unchanged, so an erasure made through this process is
    /// never served from it. An erasure made by another process reaches this one through the
    /// log ([`crate::erasures::follow_erasures`] applies it here, which counts it too).
    pub fn erasures(&self) -> u64 {
        self.erasures.load(std::sync::atomic::Ordering::Acquire)
    }
}

fn split_nonce(wrapped: &[u8]) -> Option<(&XNonce, &[u8])> {
    if wrapped.len() < 24 {
        return None;
    }
    let (nonce, ct) = wrapped.split_at(24);
    Some((nonce.try_into().ok()?, ct))
}

/// The key tables' statements, once per backend; [`KeyRing::open`] picks the implementation.
#[async_trait]
trait KeyTables: Send + Sync {
    /// The stored master key check, if there is one.
    async fn master_check(&self) -> Result<Option<Vec<u8>>, KeyError>;
    /// Stores the master key check unless one is stored.
    async fn insert_master_check(&self, wrapped: Vec<u8>) -> Result<(), KeyError>;
    /// The subject's row: `None` without one, `Some(None)` when its key was erased.
    async fn wrapped_key(&self, subject: Uuid) -> Result<Option<Option<Vec<u8>>>, KeyError>;
    /// Stores a subject's wrapped key unless the subject has a row already.
    async fn insert_key(
        &self,
        subject: Uuid,
        wrapped: Vec<u8>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError>;
    /// The rows of `subjects` that exist: each subject with its wrapped key, `None` when
    /// erased.
    async fn wrapped_keys(
        &self,
        subjects: &[Uuid],
    ) -> Result<Vec<(Uuid, Option<Vec<u8>>)>, KeyError>;
    /// Stores every subject's wrapped key in one transaction, leaving subjects that have a
    /// row already as they are.
    async fn insert_keys(
        &self,
        keys: &[(Uuid, Vec<u8>)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError>;
    /// Destroys the subject's key (a row without a key).
    async fn erase(
        &self,
        subject: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError>;
}

/// Rows per multi-row statement of [`KeyTables::insert_keys`] and
/// [`KeyTables::wrapped_keys`]: three parameters a row stays far below both backends' limits.
const KEYS_PER_STATEMENT: usize = 500;

/// SQLite: times as microseconds since the epoch.
#[async_trait]
impl KeyTables for SqliteTables {
    async fn master_check(&self) -> Result<Option<Vec<u8>>, KeyError> {
        Ok(
            sqlx::query_scalar("SELECT wrapped FROM master_key_check WHERE id = 1")
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn insert_master_check(&self, wrapped: Vec<u8>) -> Result<(), KeyError> {
        sqlx::query(
            "INSERT INTO master_key_check (id, wrapped) VALUES (1, ?1) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(wrapped)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn wrapped_key(&self, subject: Uuid) -> Result<Option<Option<Vec<u8>>>, KeyError> {
        Ok(
            sqlx::query_scalar("SELECT wrapped_key FROM subject_keys WHERE subject_id = ?1")
                .bind(subject)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn insert_key(
        &self,
        subject: Uuid,
        wrapped: Vec<u8>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError> {
        sqlx::query(
            "INSERT INTO subject_keys (subject_id, wrapped_key, created_at) \
             VALUES (?1, ?2, ?3) ON CONFLICT (subject_id) DO NOTHING",
        )
        .bind(subject)
        .bind(wrapped)
        .bind(now.timestamp_micros())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn wrapped_keys(
        &self,
        subjects: &[Uuid],
    ) -> Result<Vec<(Uuid, Option<Vec<u8>>)>, KeyError> {
        let mut out = Vec::with_capacity(subjects.len());
        for chunk in subjects.chunks(KEYS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT subject_id, wrapped_key FROM subject_keys WHERE subject_id IN (",
            );
            let mut list = q.separated(", ");
            for s in chunk {
                list.push_bind(*s);
            }
            q.push(")");
            out.extend(
                q.build_query_as::<(Uuid, Option<Vec<u8>>)>()
                    .fetch_all(self.pool())
                    .await?,
            );
        }
        Ok(out)
    }

    async fn insert_keys(
        &self,
        keys: &[(Uuid, Vec<u8>)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError> {
        let mut tx = self.pool().begin().await?;
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO subject_keys (subject_id, wrapped_key, created_at) ",
            );
            q.push_values(chunk, |mut row, (subject, wrapped)| {
                row.push_bind(*subject)
                    .push_bind(wrapped.clone())
                    .push_bind(now.timestamp_micros());
            });
            q.push(" ON CONFLICT (subject_id) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    async fn erase(
        &self,
        subject: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError> {
        let mut conn = self.pool().acquire().await?;
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO subject_keys (subject_id, wrapped_key, created_at, erased_at) \
             VALUES (?1, NULL, ?2, ?2) ON CONFLICT (subject_id) DO UPDATE \
             SET wrapped_key = NULL, erased_at = COALESCE(subject_keys.erased_at, ?2)",
        )
        .bind(subject)
        .bind(now.timestamp_micros())
        .execute(&mut *conn)
        .await?;
        // Best effort: a long-running reader can keep old frames alive until it ends.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// PostgreSQL: times as `timestamptz`.
#[async_trait]
impl KeyTables for PgTables {
    async fn master_check(&self) -> Result<Option<Vec<u8>>, KeyError> {
        Ok(
            sqlx::query_scalar("SELECT wrapped FROM master_key_check WHERE id = 1")
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn insert_master_check(&self, wrapped: Vec<u8>) -> Result<(), KeyError> {
        sqlx::query(
            "INSERT INTO master_key_check (id, wrapped) VALUES (1, $1) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(wrapped)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn wrapped_key(&self, subject: Uuid) -> Result<Option<Option<Vec<u8>>>, KeyError> {
        Ok(
            sqlx::query_scalar("SELECT wrapped_key FROM subject_keys WHERE subject_id = $1")
                .bind(subject)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn insert_key(
        &self,
        subject: Uuid,
        wrapped: Vec<u8>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError> {
        sqlx::query(
            "INSERT INTO subject_keys (subject_id, wrapped_key, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (subject_id) DO NOTHING",
        )
        .bind(subject)
        .bind(wrapped)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn wrapped_keys(
        &self,
        subjects: &[Uuid],
    ) -> Result<Vec<(Uuid, Option<Vec<u8>>)>, KeyError> {
        let mut out = Vec::with_capacity(subjects.len());
        for chunk in subjects.chunks(KEYS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "SELECT subject_id, wrapped_key FROM subject_keys WHERE subject_id IN (",
            );
            let mut list = q.separated(", ");
            for s in chunk {
                list.push_bind(*s);
            }
            q.push(")");
            out.extend(
                q.build_query_as::<(Uuid, Option<Vec<u8>>)>()
                    .fetch_all(self.pool())
                    .await?,
            );
        }
        Ok(out)
    }

    async fn insert_keys(
        &self,
        keys: &[(Uuid, Vec<u8>)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError> {
        let mut tx = self.pool().begin().await?;
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "INSERT INTO subject_keys (subject_id, wrapped_key, created_at) ",
            );
            q.push_values(chunk, |mut row, (subject, wrapped)| {
                row.push_bind(*subject)
                    .push_bind(wrapped.clone())
                    .push_bind(now);
            });
            q.push(" ON CONFLICT (subject_id) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
    async fn erase(
        &self,
        subject: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), KeyError> {
        sqlx::query(
            "INSERT INTO subject_keys (subject_id, wrapped_key, created_at, erased_at) \
             VALUES ($1, NULL, $2, $2) ON CONFLICT (subject_id) DO UPDATE \
             SET wrapped_key = NULL, erased_at = COALESCE(subject_keys.erased_at, $2)",
        )
        .bind(subject)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
