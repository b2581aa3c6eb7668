//! The storage conformance suite: generic tests over `dyn EventStore`, run unchanged against
//! every backend by the `conformance!` macro in `tests/store.rs`.
//!
//! One module per area; each test is a `pub async fn` the macro calls by name.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use caretrail_store::{
    AppendRequest, ConsumerTxInner, EventFilter, EventStore, ExpectedVersion, LogQuery, Metadata,
    NewEvent, StoreError, StreamAppend, stream_log, subscribe,
};
use futures::StreamExt;
use uuid::Uuid;

use crate::common::{Harness, append, event, md, stream};

mod appends;
mod consumers;
mod reads;
mod tables;

pub use appends::*;
pub use consumers::*;
pub use reads::*;
pub use tables::*;

async fn all_events(store: &Arc<dyn EventStore>) -> Vec<caretrail_store::RecordedEvent> {
    store
        .read_log(&LogQuery::after(0, 1_000_000))
        .await
        .expect("read log")
}

pub fn assert_positions_are_one_to_n(log: &[caretrail_store::RecordedEvent]) {
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=log.len() as u64).collect::<Vec<_>>());
}
