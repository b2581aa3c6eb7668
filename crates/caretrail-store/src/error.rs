//! The store's error type. Variants are typed so that callers can switch on them (a conflict is
//! retried by re-deciding, a duplicate is reported, a database failure is surfaced); messages
//! carry ids and versions only, never payloads, because payloads may hold personal data.

use uuid::Uuid;

use crate::types::{ExpectedVersion, StreamId};

/// Everything that can go wrong in the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: a stream was not at the version the append expected. `actual` is
    /// the stream's version when the append was decided (0 = the stream does not exist).
    #[error("stream {stream} is at version {actual}, but the append expected {expected}")]
    WrongExpectedVersion {
        /// The stream whose version did not match.
        stream: StreamId,
        /// The version the append expected.
        expected: ExpectedVersion,
        /// The stream's version (number of events) when the append was decided.
        actual: u64,
    },

    /// An event with this id is already stored (by a different command).
    #[error("an event with id {0} is already stored")]
    DuplicateEventId(Uuid),

    /// The append is malformed (no streams, a stream named twice, a payload that is not JSON...).
    #[error("invalid append: {0}")]
    InvalidAppend(String),

    /// A read asked for more than one call answers (the message names the bound).
    #[error("invalid read: {0}")]
    InvalidRead(String),

    /// A stream id that cannot be stored.
    #[error("invalid stream id: {0}")]
    InvalidStreamId(String),

    /// Another instance of a consumer moved its checkpoint first.
    #[error("checkpoint of consumer {name} is at {actual}, expected {expected}")]
    CheckpointConflict {
        /// The consumer's name.
        name: String,
        /// The checkpoint stored when the consumer's transaction began.
        expected: u64,
        /// The position the commit asked to store, behind `expected`.
        actual: u64,
    },

    /// The URL names neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL (use sqlite://PATH or postgres://...): {0}")]
    UnsupportedUrl(String),

    /// A stored row could not be decoded into an event.
    #[error("stored event at position {position} is malformed: {reason}")]
    Corrupt {
        /// Global log position of the malformed row.
        position: u64,
        /// What could not be decoded.
        reason: String,
    },

    /// The store's writer has stopped (the store was closed or its task panicked).
    #[error("the event store is closed")]
    Closed,

    /// The database did not answer within the client's deadline (an unreachable server whose
    /// connections go silent rather than fail). The operation's outcome is unknown: an append
    /// may have committed, which a retry with the same command id finds.
    #[error("the database did not answer within {0:?}")]
    Unresponsive(std::time::Duration),

    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A [`crate::TableSet`]'s name is not lowercase letters, digits and `_`.
    #[error("invalid table set name {0:?}")]
    InvalidTableSet(String),

    /// A consumer transaction was asked for another backend's connection.
    #[error("the consumer transaction is on {actual}, not {asked}")]
    WrongBackend {
        /// The backend whose connection was asked for.
        asked: &'static str,
        /// The store's backend.
        actual: &'static str,
    },

    /// A direct connection ([`crate::bulk`]) refused or failed an operation.
    #[error("database error (direct connection): {0}")]
    Direct(#[from] rusqlite::Error),

    /// Applying the schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether re-deciding on fresh state and appending again may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }

    /// Whether the failure says the database cannot serve right now (unreachable, silent, out
    /// of space, locked, closed) rather than that something is wrong with the request or the
    /// stored data: the first is answered "retry later" (HTTP 503), the second is a bug or
    /// corruption (HTTP 500).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Closed | Self::Unresponsive(_) => true,
            Self::Database(e) => is_unavailable(e),
            Self::Direct(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::ReadOnly
                        | rusqlite::ErrorCode::OutOfMemory
                )
            ),
            _ => false,
        }
    }

    /// A short, stable name of the failure, for health reports and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WrongExpectedVersion { .. } => "conflict",
            Self::DuplicateEventId(_) => "duplicate_event_id",
            Self::InvalidAppend(_) | Self::InvalidRead(_) | Self::InvalidStreamId(_) => "invalid",
            Self::CheckpointConflict { .. } => "checkpoint_conflict",
            Self::UnsupportedUrl(_) => "unsupported_url",
            Self::Corrupt { .. } => "corrupt",
            Self::Closed => "closed",
            Self::Unresponsive(_) => "unresponsive",
            Self::Database(e) => kind(e),
            // The same names as the codes of sqlx's SQLite errors: the writer's failures read
            // alike whichever driver reported them.
            Self::Direct(e) => match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DiskFull) => "disk_full",
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    "busy"
                }
                Some(rusqlite::ErrorCode::ReadOnly) => "read_only",
                Some(rusqlite::ErrorCode::SystemIoFailure) => "io",
                Some(rusqlite::ErrorCode::OutOfMemory) => "out_of_memory",
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                    "corrupt"
                }
                Some(rusqlite::ErrorCode::ConstraintViolation) => "constraint",
                Some(rusqlite::ErrorCode::CannotOpen) => "unavailable",
                _ => "database_error",
            },
            Self::Migrate(_) | Self::InvalidTableSet(_) => "migration",
            Self::WrongBackend { .. } => "wrong_backend",
        }
    }

    /// Whether the database reported a uniqueness violation (used to tell a racing duplicate
    /// apart from other failures without reading error text).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            // The SQLite writer's direct connection: a UNIQUE or PRIMARY KEY constraint.
            Self::Direct(e) => e.sqlite_error().is_some_and(|e| {
                matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
            }),
            _ => false,
        }
    }
}

/// The primary SQLite result code of a database error (extended codes carry it in the low
/// byte), if the error came from SQLite.
fn sqlite_code(e: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<i64> {
    use sqlx::error::DatabaseError;
    let e: &sqlx::sqlite::SqliteError = e.try_downcast_ref()?;
    DatabaseError::code(e)?
        .parse::<i64>()
        .ok()
        .map(|c| c & 0xff)
}

/// The SQLSTATE of a PostgreSQL error.
fn pg_code(e: &(dyn sqlx::error::DatabaseError + 'static)) -> Option<String> {
    e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .map(|d| d.code().to_owned())
}

/// Whether a database error means the database cannot serve right now, on either backend:
/// no connection to be had (pool timeout, I/O, a closed pool or worker), or the server
/// refusing for a passing reason: SQLite full (13), busy (5), locked (6), I/O (10), cannot
/// open (14), read-only (8, a file system remounted read-only), out of memory (7);
/// PostgreSQL connection exceptions (08), insufficient resources (53: disk full, out of
/// memory, too many connections), operator intervention (57: a cancelled or timed-out
/// statement, a shutdown) and lock timeouts (55P03). Constraint violations, decoding
/// failures and syntax errors are not: retrying cannot help them.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(d) => {
            if let Some(code) = sqlite_code(d.as_ref()) {
                return matches!(code, 5 | 6 | 7 | 8 | 10 | 13 | 14);
            }
            match pg_code(d.as_ref()) {
                Some(state) => {
                    state.starts_with("08")
                        || state.starts_with("53")
                        || state.starts_with("57")
                        || state == "55P03"
                }
                None => false,
            }
        }
        _ => false,
    }
}

/// A short, stable name of a database error, for health reports and metrics labels.
pub fn kind(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::PoolTimedOut => "pool_timeout",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::Io(_) => "io",
        sqlx::Error::WorkerCrashed => "worker_crashed",
        sqlx::Error::Database(d) => {
            if let Some(code) = sqlite_code(d.as_ref()) {
                return match code {
                    13 => "disk_full",
                    5 | 6 => "busy",
                    8 => "read_only",
                    10 => "io",
                    7 => "out_of_memory",
                    11 | 26 => "corrupt",
                    19 => "constraint",
                    _ => "database_error",
                };
            }
            match pg_code(d.as_ref()).as_deref() {
                Some("53100") => "disk_full",
                Some("57014") => "statement_timeout",
                Some("55P03") => "lock_timeout",
                Some(s) if s.starts_with("08") => "connection_lost",
                Some(s) if s.starts_with("53") => "insufficient_resources",
                Some(s) if s.starts_with("57") => "server_shutdown",
                Some(s) if s.starts_with("23") => "constraint",
                _ => "database_error",
            }
        }
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => "decode",
        _ => "database_error",
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
