//! caretrail's auditor's toolkit: an RFC 6962 Merkle tree over the global event log, signed
//! checkpoints, inclusion and consistency proofs, export, and an offline verifier.
//!
//! - [`merkle`]: the tree as pure functions (hashing, proofs from stored complete subtrees,
//!   RFC 9162 verification, the incremental [`merkle::Frontier`]).
//! - [`note`]: C2SP signed-note / tlog-checkpoint text with Ed25519.
//! - [`key`]: where the signing key lives (a 0600 key file outside the database, or text from
//!   the environment).
//! - [`db`]: the audit tables on SQLite and PostgreSQL.
//! - [`auditor`]: [`Auditor`], the service side: keeps the tree up to date as the exactly-once
//!   consumer `audit.merkle`, signs checkpoints, serves proofs and raw leaves.
//! - [`export`] and [`verify`]: the JSON-lines export and the verifier that checks an export or
//!   a live database with nothing but the public key, naming the first failing position.
//!
//! Leaf `i` of the tree (0-based) is the stored leaf hash of the event at global position
//! `i + 1`; see `caretrail_store::leaf` for the encoding and `docs/audit-format.md` for the
//! whole format.
//!
//! Why not the `ct-merkle` crate: it is well made, but its trees live in memory (a million
//! leaves would be rebuilt at every start) and its proof helpers name nodes in its own in-order
//! layout, so serving proofs from stored subtrees with `O(log n)` reads would still need our own
//! layout and fold code; its verifier takes leaf values rather than leaf hashes, and it warns
//! that it is unaudited. The algorithms are short and fully specified by RFC 9162 §2.1, and this
//! implementation is checked against the public transparency-dev test vectors and, by property
//! tests, against a separate recursive implementation written from RFC 6962 in the tests.
//!
//! Architecture invariant: this crate reads the event store only through
//! `caretrail_store::EventStore` and writes tree nodes only in the store's consumer
//! transaction; it never changes events.

pub mod auditor;
pub mod db;
pub mod export;
pub mod key;
pub mod merkle;
pub mod note;
pub mod verify;

pub use auditor::{
    AuditConfig, Auditor, ConsistencyProof, InclusionProof, LeafEncoding, run_checkpointer,
};
pub use db::StoredCheckpoint as Checkpoint;
pub use export::export;
pub use key::KeySource;
pub use note::{NoteSigner, NoteVerifier};
pub use verify::{VerifyError, VerifyOptions, VerifyReport, verify_file, verify_store};

/// The consumer name under which the Merkle tree follows the log.
pub const TREE_CONSUMER: &str = "audit.merkle";

/// Everything the service side of the toolkit can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] caretrail_store::StoreError),
    /// The audit tables could not be read or written.
    #[error("audit database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The key file could not be read or written.
    #[error("audit key file {path}: {source}")]
    KeyFile {
        /// The key file's path.
        path: std::path::PathBuf,
        /// The I/O error on it.
        source: std::io::Error,
    },
    /// Writing an export failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A key or note does not parse.
    #[error(transparent)]
    Note(#[from] note::NoteError),
    /// This auditor was opened without a signing key.
    #[error("no signing key is configured")]
    NoSigningKey,
    /// A position or tree size outside the tree.
    #[error("{0}")]
    OutOfRange(String),
    /// A stored tree node is missing (the audit tables were altered).
    #[error("merkle node (level {}, index {}) is missing", .0.level, .0.index)]
    MissingNode(merkle::NodeId),
    /// The log skips a position: an event was removed behind the store's back.
    #[error("the log skips position {expected} (next stored is {found})")]
    LogGap {
        /// The position the tree needed next.
        expected: u64,
        /// The next position actually stored.
        found: u64,
    },
    /// A stored event no longer hashes to its stored leaf hash; the tree refuses to cover it.
    #[error("the event at position {position} does not hash to its stored leaf hash")]
    LeafMismatch {
        /// Global log position of the event.
        position: u64,
    },
}

impl AuditError {
    /// Whether the database could not serve (unreachable, silent, full, locked): "retry later",
    /// where the other failures are bugs, tampering or bad requests.
    pub fn is_unavailable(&self) -> bool {
        match self {
            AuditError::Store(e) => e.is_unavailable(),
            AuditError::Database(e) => caretrail_store::error::is_unavailable(e),
            _ => false,
        }
    }

    /// A short, stable name of the failure, for health reports.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditError::Store(e) => e.kind(),
            AuditError::Database(e) => caretrail_store::error::kind(e),
            AuditError::KeyFile { .. } => "key_file",
            AuditError::Io(_) => "io",
            AuditError::Note(_) => "note",
            AuditError::NoSigningKey => "no_signing_key",
            AuditError::OutOfRange(_) => "out_of_range",
            AuditError::MissingNode(_) => "missing_node",
            AuditError::LogGap { .. } => "log_gap",
            AuditError::LeafMismatch { .. } => "leaf_mismatch",
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;

/// Lowercase-hex serde for hashes in API values.
pub(crate) mod hex_hash {
    use serde::Serializer;

    /// How a hash appears in JSON, for the schemas of the types that carry one.
    pub struct HexHash;

    impl schemars::JsonSchema for HexHash {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "HexHash".into()
        }

        fn inline_schema() -> bool {
            true
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({
                "description": "A SHA-256 hash, lowercase hex.",
                "type": "string",
                "pattern": "^[0-9a-f]{64}$"
            })
        }
    }

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn serialize_vec<S: Serializer>(hs: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(hs.iter().map(hex::encode))
    }
}
