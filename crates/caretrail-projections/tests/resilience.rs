//! Hardening #2: after a failed COMMIT, no pooled connection may stay inside its transaction.
//! A projection rebuild claimed its generation with a BEGIN sent as a plain statement, so when
//! that transaction's COMMIT failed, nothing rolled it back: the connection went back into the
//! pool still holding SQLite's write lock, and every later write waited out its busy timeout
//! and failed, until a restart.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use caretrail_projections::Projector;
use caretrail_store::{AppendRequest, Database, ExpectedVersion, Metadata, NewEvent, StreamId};

/// The claim's COMMIT is made to fail the way that keeps SQLite's transaction open: a trigger
/// on `projection_meta` writes a row breaking a deferred foreign key, which SQLite checks at
/// COMMIT and then refuses it without ending the transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_whose_claim_cannot_commit_leaves_no_transaction_holding_the_write_lock() {
    let h = caretrail_store::testing::sqlite().await.expect("harness");
    let store = h.open().await;
    let projector = Projector::open(store.clone()).await.expect("projector");
    let Database::Sqlite(pool) = store.database() else {
        unreachable!("a SQLite harness")
    };
    for sql in [
        "CREATE TABLE sabotage_parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE sabotage_child (parent INTEGER \
         REFERENCES sabotage_parent (id) DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TRIGGER sabotage AFTER UPDATE ON projection_meta \
         BEGIN INSERT INTO sabotage_child VALUES (42); END",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    let failed = projector.rebuild().await;
    assert!(failed.is_err(), "the claim's COMMIT should fail");

    // The writer takes the write lock at once: nothing the failed claim left holds it.
    let append = store.append(AppendRequest::single(
        StreamId::new("resilience-1").unwrap(),
        ExpectedVersion::Any,
        vec![NewEvent::json("Tested", 1, &serde_json::json!({ "n": 1 })).unwrap()],
        Metadata::actor("tester", "admin"),
    ));
    let appended = tokio::time::timeout(Duration::from_secs(5), append)
        .await
        .expect("an append waited on a write lock the failed claim still held");
    assert_eq!(appended.expect("append").last_position(), Some(1));
}
