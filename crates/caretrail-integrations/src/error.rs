//! The integrations' errors. Messages name subscriptions, tables and columns, never a
//! payload, a secret or a receiver's answer.

use caretrail_store::StoreError;

/// What went wrong in the integrations.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The integrations' tables failed.
    #[error("integrations table: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value does not decode.
    #[error("{table}.{column} holds a value that does not decode")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
    /// A position or count does not fit the tables' 64-bit integers.
    #[error("a position is out of range")]
    OutOfRange,
    /// JSON (de)serialisation of a stored value failed.
    #[error("integrations JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The key ring could not seal or open a secret.
    #[error(transparent)]
    Keys(#[from] caretrail_app::KeyError),
    /// A command failed.
    #[error(transparent)]
    App(#[from] caretrail_app::AppError),
    /// An event could not be shown.
    #[error(transparent)]
    View(#[from] caretrail_app::view::ViewError),
    /// The subscription has no usable signing secret (destroyed, or never stored).
    #[error("subscription {0} has no signing secret")]
    NoSecret(uuid::Uuid),
    /// A webhook URL is refused.
    #[error(transparent)]
    Url(#[from] crate::webhook::UrlRefused),
    /// The operating system's random source failed.
    #[error("cannot draw a random secret")]
    Random,
    /// A position given is past the log's head.
    #[error("the position is past the log's head ({head})")]
    PositionAfterHead {
        /// The head.
        head: u64,
    },
    /// No subscription has this id (or it was deleted).
    #[error("unknown subscription {0}")]
    Unknown(uuid::Uuid),
    /// A change was stored but the registry did not show it in time.
    #[error("the subscription was stored but is not shown yet; read it again shortly")]
    NotShown,
    /// The webhook client could not be built.
    #[error(transparent)]
    Webhook(#[from] crate::webhook::WebhookError),
    /// NATS JetStream failed.
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    /// A NATS subscription was made but the server runs without `--nats-url`.
    #[error("NATS delivery needs the server to be started with --nats-url")]
    NatsNotConfigured,
}

/// The integrations' result type.
pub type Result<T, E = IntegrationError> = std::result::Result<T, E>;
