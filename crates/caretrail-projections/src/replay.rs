//! As-of replay for auditors: any read model as of a global position, as of a record time, or
//! for a business date, computed by replaying the log into a private in-memory SQLite database.
//!
//! The live read models are never touched: the scratch database is built by the same
//! [`Applier`] the runner uses (so a replay to position P equals what the live tables held
//! when P was the head) and is queried through the same [`ReadModels`] functions. Replaying
//! into SQLite regardless of the store's backend keeps one code path and needs no privileges
//! on the production database.

use std::sync::Arc;

use caretrail_store::{EventFilter, EventStore, LogQuery};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::model::{self, Applier};
use crate::query::ReadModels;
use crate::sql::ReadModelDb;

/// Which moment to reconstruct.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum AsOf {
    /// Everything up to and including this global position.
    Position(u64),
    /// What had been stored by this time ("what did we know at T").
    RecordTime(DateTime<Utc>),
    /// What happened up to this business date, as known now: events dated later are left
    /// out (events without a business date, such as corrections, are kept).
    BusinessDate(NaiveDate),
}

/// A replayed set of read models and the log position it reflects.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// The replayed read models, in their scratch database; queried like the live ones.
    pub read_models: ReadModels,
    /// The log position the replay reflects: the events up to it were applied (for
    /// [`AsOf::BusinessDate`] this is the head when the replay began, and events dated later
    /// were left out).
    pub position: u64,
}

const PAGE: usize = 20_000;

/// Rebuilds every read model as of `as_of` in a scratch database.
#[tracing::instrument(name = "projections.replay", skip_all)]
pub async fn replay(store: Arc<dyn EventStore>, as_of: AsOf) -> Result<Replayed> {
    let up_to = match as_of {
        AsOf::Position(p) => p,
        AsOf::RecordTime(t) => store.position_at(t).await?,
        AsOf::BusinessDate(_) => store.head().await?.position,
    };
    let db = ReadModelDb::scratch().await?;
    {
        let mut c = db.acquire().await?;
        model::create_tables(&mut c.conn(), 0, model::Indexes::WhileBuilding).await?;
    }
    let mut applier = Applier::new(0, true);
    let mut after = 0;
    while after < up_to {
        let events = store
            .read_log(&LogQuery {
                after,
                up_to: Some(up_to),
                filter: EventFilter::all(),
                limit: PAGE,
            })
            .await?;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        after = last;
        let mut batch = Vec::with_capacity(events.len());
        for e in events {
            if let AsOf::BusinessDate(d) = as_of
                && e.business_date.is_some_and(|b| b > d)
            {
                continue;
            }
            batch.push(model::decode(e)?);
        }
        let mut tx = db.begin().await?;
        applier.apply_batch(&mut tx.conn(), &batch).await?;
        tx.commit().await?;
    }
    {
        // Sorted index builds once at the end, as a rebuild does.
        let mut c = db.acquire().await?;
        model::create_indexes(&mut c.conn(), 0).await?;
    }
    Ok(Replayed {
        read_models: ReadModels::fixed(db, 0, store),
        position: up_to,
    })
}
