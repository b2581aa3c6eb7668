//! Hardening #2: a failed transaction must never hand its connection back to the pool still
//! inside the transaction. SQLite rolls a transaction back by itself when a COMMIT fails on a
//! full disk; the ROLLBACK that follows then fails too, and sqlx went on counting the
//! connection as inside a transaction. Reused from the pool, it refused every later `begin`
//! ("attempted to call begin_with at non-zero transaction depth"), so the projector and the
//! audit tree stopped until a restart. Here the transaction is ended behind sqlx's back, which
//! makes its COMMIT and ROLLBACK fail exactly as they do after a full disk.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use caretrail_store::testing::Harness;
use caretrail_store::{ConsumerTxInner, StoreOptions};

caretrail_store::both_backends!(
    a_connection_whose_commit_and_rollback_failed_never_returns_to_the_pool_in_a_transaction,
);

async fn a_connection_whose_commit_and_rollback_failed_never_returns_to_the_pool_in_a_transaction(
    h: &Harness,
) {
    // One pooled connection, so the next transaction gets the very same one back.
    let store = h
        .open_with(StoreOptions {
            read_connections: 1,
            ..Default::default()
        })
        .await;
    for round in 0..3u64 {
        let mut tx = store
            .begin_consumer("resilience.test")
            .await
            .unwrap_or_else(|e| {
                panic!("round {round}: a consumer transaction could not begin: {e}")
            });
        match tx.inner() {
            ConsumerTxInner::Sqlite(t) => {
                sqlx::query("ROLLBACK").execute(&mut **t).await.unwrap();
            }
            ConsumerTxInner::Postgres(t) => {
                sqlx::query("ROLLBACK").execute(&mut **t).await.unwrap();
            }
        }
        // SQLite: "cannot commit - no transaction is active", and the rollback on drop fails
        // likewise. PostgreSQL commits nothing (its transaction is gone) and warns.
        let committed = tx.commit(round + 1).await;
        if h.backend == "sqlite" {
            assert!(committed.is_err(), "round {round}: the COMMIT should fail");
        }
    }
    // And the pool still serves ordinary work.
    let tx = store.begin_consumer("resilience.test").await.unwrap();
    tx.commit(7).await.unwrap();
    assert_eq!(store.checkpoint("resilience.test").await.unwrap(), 7);
}
