//! Consumers and the database's own guarantees: effects and checkpoints committed together,
//! events the database refuses to change, and one gapless order under many appenders.

use super::*;

pub async fn consumers_commit_effects_and_checkpoint_together(h: &Harness) {
    let store = h.open().await;
    for i in 0..30u64 {
        store
            .append(append("s-1", ExpectedVersion::Any, vec![event("A", i)]))
            .await
            .unwrap();
    }
    assert_eq!(store.checkpoint("counter").await.unwrap(), 0);
    {
        let mut tx = store.begin_consumer("counter").await.unwrap();
        create_effects_table(&mut tx).await;
        tx.commit(0).await.unwrap();
    }
    // A consumer that fails midway leaves neither effects nor checkpoint behind.
    {
        let mut tx = store.begin_consumer("counter").await.unwrap();
        assert_eq!(tx.position(), 0);
        insert_effect(&mut tx, 1).await;
        tx.rollback().await.unwrap();
    }
    assert_eq!(store.checkpoint("counter").await.unwrap(), 0);
    assert_eq!(count_effects(&store, h).await, 0);

    // Two instances of the same consumer race over the log in small steps; the checkpoint lock
    // serialises them, so every event's effect is written exactly once (the effects table's
    // primary key would refuse a second).
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let mut tx = store.begin_consumer("counter").await.unwrap();
                let from = tx.position();
                let events = store.read_log(&LogQuery::after(from, 4)).await.unwrap();
                if events.is_empty() {
                    tx.rollback().await.unwrap();
                    return;
                }
                for e in &events {
                    insert_effect(&mut tx, e.position).await;
                }
                tx.commit(events.last().unwrap().position).await.unwrap();
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(store.checkpoint("counter").await.unwrap(), 30);
    assert_eq!(count_effects(&store, h).await, 30);
    // A checkpoint never moves backwards.
    let tx = store.begin_consumer("counter").await.unwrap();
    assert!(matches!(
        tx.commit(3).await,
        Err(StoreError::CheckpointConflict { .. })
    ));
    assert_eq!(store.checkpoint("counter").await.unwrap(), 30);
}

async fn create_effects_table(tx: &mut caretrail_store::ConsumerTx) {
    let sql = "CREATE TABLE effects (position BIGINT PRIMARY KEY)";
    match tx.inner() {
        ConsumerTxInner::Sqlite(c) => {
            sqlx::query(sql).execute(&mut **c).await.unwrap();
        }
        ConsumerTxInner::Postgres(c) => {
            sqlx::query(sql).execute(&mut **c).await.unwrap();
        }
    }
}

async fn insert_effect(tx: &mut caretrail_store::ConsumerTx, position: u64) {
    match tx.inner() {
        ConsumerTxInner::Sqlite(c) => {
            sqlx::query("INSERT INTO effects (position) VALUES (?1)")
                .bind(position as i64)
                .execute(&mut **c)
                .await
                .expect("effect written once");
        }
        ConsumerTxInner::Postgres(c) => {
            sqlx::query("INSERT INTO effects (position) VALUES ($1)")
                .bind(position as i64)
                .execute(&mut **c)
                .await
                .expect("effect written once");
        }
    }
}

async fn count_effects(_store: &Arc<dyn EventStore>, h: &Harness) -> i64 {
    match h.backend {
        "sqlite" => {
            let pool = sqlx::SqlitePool::connect(&h.url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM effects")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        _ => {
            let pool = sqlx::PgPool::connect(&h.url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM effects")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    }
}

/// Runs raw SQL against the harness database and says whether the database refused it.
async fn raw_refused(h: &Harness, sql: &'static str) -> bool {
    match h.backend {
        "sqlite" => {
            let pool = sqlx::SqlitePool::connect(&h.url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.is_err()
        }
        _ => {
            let pool = sqlx::PgPool::connect(&h.url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.is_err()
        }
    }
}

pub async fn the_database_refuses_to_change_or_remove_events(h: &Harness) {
    let store = h.open().await;
    for i in 0..3u64 {
        store
            .append(append("visit-1", ExpectedVersion::Any, vec![event("A", i)]))
            .await
            .unwrap();
    }
    let before = all_events(&store).await;
    for sql in [
        "UPDATE events SET data = '{}' WHERE position = 2",
        "UPDATE events SET actor_id = 'someone else'",
        "DELETE FROM events WHERE position = 3",
        "DELETE FROM events",
    ] {
        assert!(raw_refused(h, sql).await, "the database accepted: {sql}");
    }
    if h.backend == "postgres" {
        assert!(
            raw_refused(h, "TRUNCATE events").await,
            "TRUNCATE was accepted"
        );
    }
    // Inserting around the writer is refused too when it would break the chain: a gap in
    // positions, or a stream version that skips.
    let gap = match h.backend {
        "sqlite" => {
            "INSERT INTO events (position, stream_id, category, stream_version, event_id, event_type, schema_version, data, actor_id, actor_role, recorded_at, leaf_hash) VALUES (9, 'x-1', 'x', 1, randomblob(16), 'A', 1, '{}', 'a', 'b', 9999999999999999, randomblob(32))"
        }
        _ => {
            "INSERT INTO events (position, stream_id, category, stream_version, event_id, event_type, schema_version, data, actor_id, actor_role, recorded_at, leaf_hash) VALUES (9, 'x-1', 'x', 1, gen_random_uuid(), 'A', 1, '{}', 'a', 'b', now(), sha256('x'))"
        }
    };
    assert!(raw_refused(h, gap).await, "a position gap was accepted");
    let skip = match h.backend {
        "sqlite" => {
            "INSERT INTO events (position, stream_id, category, stream_version, event_id, event_type, schema_version, data, actor_id, actor_role, recorded_at, leaf_hash) VALUES (4, 'visit-1', 'visit', 7, randomblob(16), 'A', 1, '{}', 'a', 'b', 9999999999999999, randomblob(32))"
        }
        _ => {
            "INSERT INTO events (position, stream_id, category, stream_version, event_id, event_type, schema_version, data, actor_id, actor_role, recorded_at, leaf_hash) VALUES (4, 'visit-1', 'visit', 7, gen_random_uuid(), 'A', 1, '{}', 'a', 'b', now(), sha256('x'))"
        }
    };
    assert!(
        raw_refused(h, skip).await,
        "a skipped stream version was accepted"
    );
    assert_eq!(all_events(&store).await, before);
    for e in &before {
        assert_eq!(e.recompute_leaf_hash(), e.leaf_hash);
    }
}

pub async fn many_appenders_and_a_live_subscriber_agree_on_one_gapless_order(h: &Harness) {
    // Two stores on one database stand in for two server processes (two pools, two writers).
    let a = h.open().await;
    let b = h.open().await;
    let mut sub = subscribe(a.clone(), 0, EventFilter::all());
    const TASKS: u64 = 32;
    const PER_TASK: u64 = 40;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..PER_TASK {
                // Some appends carry two events, some touch a shared stream.
                let s = if i % 5 == 0 {
                    "shared-1".to_owned()
                } else {
                    format!("task-{t}")
                };
                let n = if i % 7 == 0 { 2 } else { 1 };
                let events: Vec<NewEvent> = (0..n).map(|k| event("A", i * 10 + k)).collect();
                let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
                let r = store
                    .append(append(&s, ExpectedVersion::Any, events))
                    .await
                    .expect("append");
                for (w, id) in r.events.iter().zip(ids) {
                    assert_eq!(w.event_id, id);
                    acked.push((w.position, id));
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let total = acked.len() as u64;
    let mut seen = Vec::new();
    while (seen.len() as u64) < total {
        let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("subscriber stalled")
            .unwrap();
        seen.push((e.position, e.event_id));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sub.next())
            .await
            .is_err(),
        "an extra event arrived"
    );
    let positions: Vec<u64> = seen.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        positions,
        (1..=total).collect::<Vec<_>>(),
        "subscriber order"
    );
    acked.sort();
    assert_eq!(
        seen, acked,
        "every acknowledged event, once, where it was acknowledged"
    );
    let log = all_events(&a).await;
    assert_positions_are_one_to_n(&log);
    let ids: HashSet<Uuid> = log.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len() as u64, total);
    // Stream versions are gapless per stream too.
    let mut by_stream: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    for e in &log {
        by_stream
            .entry(&e.stream_id)
            .or_default()
            .push(e.stream_version);
    }
    for (s, versions) in by_stream {
        assert_eq!(
            versions,
            (1..=versions.len() as u64).collect::<Vec<_>>(),
            "{s}"
        );
    }
    let distinct: BTreeSet<_> = log.iter().map(|e| e.recorded_at).collect();
    assert!(!distinct.is_empty());
    assert!(log.iter().all(|e| e.recompute_leaf_hash() == e.leaf_hash));
}
