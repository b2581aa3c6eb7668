//! caretrail's read models: dashboards for administrators and as-of answers for auditors,
//! derived from the event log.
//!
//! - [`Projector`] ([`runner`]) is a checkpointed consumer of the log: each batch of events and
//!   the checkpoint commit in one transaction (exactly once), it resumes after a crash where it
//!   stopped, follows the log live through a subscription, reports its [`Lag`], and rebuilds
//!   into shadow tables that replace the live ones atomically ([`Projector::rebuild`]).
//! - [`model`] holds the tables (SQLite and PostgreSQL) and the event handlers.
//! - [`ReadModels`] ([`query`]) answers the seven dashboards of `docs/domain.md` (section 8) with filters,
//!   sorting and pagination; personal names are opened per reader ([`Access`]).
//! - [`replay`] rebuilds any read model as of a position, a record time or a business date in
//!   a scratch database.
//! - [`generate`] writes a realistic, seeded log through the domain's `decide`.
//!
//! Architecture invariant: read models hold no plaintext personal data (only sealed values and
//! ids); everything relative to "today" is computed at query time against an `as_of` date.

mod bulk;
pub mod error;
pub mod generate;
pub mod model;
pub mod query;
pub mod replay;
pub mod runner;
pub mod sql;

pub use caretrail_app::view::Access;
pub use error::{ProjectionError, Result};
pub use generate::{GenerateReport, Size, generate};
pub use query::ReadModels;
pub use replay::{AsOf, Replayed, replay};
pub use runner::{CODE_VERSION, Lag, Meta, PROJECTION, Projector, RebuildReport};

/// Rebuilds every read model of `store` now (what `caretrail projections rebuild` runs).
pub async fn rebuild(
    store: std::sync::Arc<dyn caretrail_store::EventStore>,
) -> Result<RebuildReport> {
    Projector::open(store).await?.rebuild().await
}
