//! Events as CloudEvents 1.0 (structured JSON mode).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One event ready to send: its CloudEvents JSON body and what a transport needs beside it.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The event's position in the global log.
    pub position: u64,
    /// The event's id: the webhook id and the NATS message id, so receivers deduplicate.
    pub event_id: Uuid,
    /// The stream category (`visit`, `pairing`, ...).
    pub category: String,
    /// The event type (`VisitRecorded`, ...).
    pub event_type: String,
    /// When the event was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The CloudEvents structured JSON body.
    pub body: bytes::Bytes,
}
