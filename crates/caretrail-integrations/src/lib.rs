//! Integrations: durable subscriptions to the event log, delivered to the systems that follow
//! it (the federation's case system, an SMS reminder service, a data warehouse).
//!
//! A subscription is a resource an administrator creates with a command; its events are in the
//! log like every other change ("who started sending which data where" is audit history). Each
//! subscription is a checkpointed consumer of the log with a filter and a delivery target:
//!
//! - [`cloudevent`]: an event as a CloudEvents 1.0 structured JSON body, rendered as the
//!   integration role reads it (personal values withheld), with the log position, stream
//!   version and leaf hash as extension attributes.
//! - [`webhook`]: Standard Webhooks 1.0 over HTTPS (signing, the SSRF guard checked after name
//!   resolution on every attempt, one attempt's outcome).
//! - [`nats`]: publication to a NATS JetStream stream, deduplicated by event id.
//! - `testing` (feature `testing`): a real webhook receiver that checks deliveries with the
//!   Standard Webhooks library and the CloudEvents SDK, for this crate's tests and others'.
//!
//! The log is the queue: nothing is copied out of it to be delivered, a subscription's cursor
//! is the position of the last event its target acknowledged, and a resumed, rewound or
//! restarted subscription delivers from its cursor.

pub mod cloudevent;
pub mod db;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod nats;
pub mod registry;
pub mod service;
pub mod webhook;

#[cfg(feature = "testing")]
pub mod testing;

pub use cloudevent::Outgoing;
pub use engine::EngineConfig;
pub use error::{IntegrationError, Result};
pub use service::{CreateRequest, Created, Integrations, Rotated, SubscriptionStatus};
