//! Errors of the projection layer. Messages name positions, ids and tables, never payloads or
//! personal values.

use caretrail_app::KeyError;
use caretrail_store::StoreError;

/// Why a projection, rebuild, replay or query failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The read-model database failed.
    #[error("read-model database error: {0}")]
    Database(sqlx::Error),
    /// The read-model database failed on the SQLite bulk connection of a rebuild.
    #[error("read-model database error (bulk rebuild): {0}")]
    Bulk(#[from] rusqlite::Error),
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be decoded into the domain.
    #[error("stored event at position {position} cannot be read: {reason}")]
    Unreadable {
        /// The event's global position.
        position: u64,
        /// What failed to decode, as the decoder or upcaster put it (personal values in a
        /// payload are sealed, so it can quote none in plain text).
        reason: String,
    },
    /// Sealed values could not be opened (a key-table failure or a tampered value).
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A query asked for something that does not exist (an unknown region, an empty range).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The log does not continue where the projection stopped (a subscription skipped ahead);
    /// the runner re-reads storage.
    #[error("events do not continue the checkpoint at {checkpoint} (next was {next})")]
    Gap {
        /// The checkpoint of the transaction: every event up to it is applied.
        checkpoint: u64,
        /// The position of the first event that was to be applied next.
        next: u64,
    },
    /// A rebuild's worker thread could not start or stopped abnormally.
    #[error("rebuild worker: {0}")]
    Worker(String),
    /// A total of money does not fit a 64-bit number of fen (the read model holds it exactly,
    /// but answers in `i64`): an error rather than a wrapped or rounded number.
    #[error("a total amount is too large to answer as a 64-bit number of fen")]
    AmountNotRepresentable,
    /// A read-model row holds a value its column's type cannot have: a NULL where a value is
    /// required, text that is not a UUID or a date, a non-integer count or amount. A corrupt
    /// or mis-migrated row is an error, never read as a plausible default. The reason says
    /// what is wrong, never the value.
    #[error("read-model table {table}, column {column}: {reason}")]
    CorruptRow {
        /// The table's name without its generation prefix (`pairings`, not `rm3_pairings`).
        table: &'static str,
        /// The column's name.
        column: String,
        /// What is wrong with the value ([`crate::sql::Undecodable`] and the like).
        reason: String,
    },
    /// Event generation failed in the domain or the command handler.
    #[error("generator: {0}")]
    Generator(String),
}

impl ProjectionError {
    /// A stable machine-readable code for the HTTP layer.
    pub fn code(&self) -> &'static str {
        match self {
            ProjectionError::Database(_) | ProjectionError::Bulk(_) => "read_model_database_error",
            ProjectionError::Store(_) => "store_error",
            ProjectionError::Unreadable { .. } => "stored_event_unreadable",
            ProjectionError::Keys(_) => "key_storage_error",
            ProjectionError::InvalidQuery(_) => "invalid_query",
            ProjectionError::Gap { .. } => "projection_gap",
            ProjectionError::Generator(_) => "generator_error",
            ProjectionError::Worker(_) => "rebuild_worker_failed",
            ProjectionError::AmountNotRepresentable => "amount_not_representable",
            ProjectionError::CorruptRow { .. } => "read_model_corrupt",
        }
    }

    /// Whether the failure says the database cannot serve right now (unreachable, silent, full,
    /// locked) rather than that the request or the stored data is wrong: answered "retry
    /// later" (503), where the others are bugs or corruption (500) or bad requests.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ProjectionError::Database(e) => caretrail_store::error::is_unavailable(e),
            ProjectionError::Store(e) => e.is_unavailable(),
            ProjectionError::Keys(e) => e.is_unavailable(),
            ProjectionError::Bulk(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::ReadOnly
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::OutOfMemory
                )
            ),
            _ => false,
        }
    }

    /// A short, stable name of the failure for health reports: the database's own kind where
    /// the database failed (`disk_full`, `pool_timeout`, ...), else [`ProjectionError::code`].
    pub fn kind(&self) -> &'static str {
        match self {
            ProjectionError::Database(e) => caretrail_store::error::kind(e),
            ProjectionError::Store(e) => e.kind(),
            _ => self.code(),
        }
    }
}

/// The result of the projection layer's operations: [`ProjectionError`] unless said otherwise.
pub type Result<T, E = ProjectionError> = std::result::Result<T, E>;
