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
        stream: StreamId,
        expected: ExpectedVersion,
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
        name: String,
        expected: u64,
        actual: u64,
    },

    /// The URL names neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL (use sqlite://PATH or postgres://...): {0}")]
    UnsupportedUrl(String),

    /// A stored row could not be decoded into an event.
    #[error("stored event at position {position} is malformed: {reason}")]
    Corrupt { position: u64, reason: String },

    /// The store's writer has stopped (the store was closed or its task panicked).
    #[error("the event store is closed")]
    Closed,

    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying the schema migrations failed.
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Whether re-deciding on fresh state and appending again may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::WrongExpectedVersion { .. })
    }

    /// Whether the database reported a uniqueness violation (used to tell a racing duplicate
    /// apart from other failures without reading error text).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
