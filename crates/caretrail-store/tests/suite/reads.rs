//! Reads and subscriptions: by position, filtered, as of a record time, streamed in pages,
//! and live subscribers that catch up, follow, and fall back to storage.

use super::*;

pub async fn events_are_read_back_by_position(h: &Harness) {
    let store = h.open().await;
    for i in 0..12u64 {
        store
            .append(append(
                &format!("visit-{i}"),
                ExpectedVersion::Any,
                vec![event("VisitRecorded", i)],
            ))
            .await
            .unwrap();
    }
    let log = all_events(&store).await;
    // Asked out of order, with a repeat and a position past the head: log order, each once,
    // the missing one left out, every field as the log reads it.
    let got = store.read_positions(&[9, 2, 40, 5, 2]).await.unwrap();
    let positions: Vec<u64> = got.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![2, 5, 9]);
    for e in &got {
        let from_log = &log[e.position as usize - 1];
        assert_eq!(e.event_id, from_log.event_id);
        assert_eq!(e.stream_id, from_log.stream_id);
        assert_eq!(e.data, from_log.data);
        assert_eq!(e.recorded_at, from_log.recorded_at);
        assert_eq!(e.leaf_hash, from_log.leaf_hash);
    }
    assert!(store.read_positions(&[]).await.unwrap().is_empty());
    let too_many: Vec<u64> = (1..=caretrail_store::MAX_POSITIONS as u64 + 1).collect();
    assert!(matches!(
        store.read_positions(&too_many).await,
        Err(StoreError::InvalidRead(_))
    ));
}

pub async fn reads_filter_by_type_and_category_and_stop_at_a_position(h: &Harness) {
    let store = h.open().await;
    for i in 0..30u64 {
        let (s, t) = match i % 3 {
            0 => (format!("visit-{i}"), "VisitRecorded"),
            1 => (format!("issue-{i}"), "IssueRaised"),
            _ => (format!("issue-{i}"), "IssueEscalated"),
        };
        store
            .append(append(&s, ExpectedVersion::Any, vec![event(t, i)]))
            .await
            .unwrap();
    }
    let query = |types: &[&str], cats: &[&str], after, up_to, limit| LogQuery {
        after,
        up_to,
        filter: EventFilter {
            event_types: types.iter().map(|s| s.to_string()).collect(),
            categories: cats.iter().map(|s| s.to_string()).collect(),
        },
        limit,
    };
    let visits = store
        .read_log(&query(&[], &["visit"], 0, None, 100))
        .await
        .unwrap();
    assert_eq!(visits.len(), 10);
    assert!(visits.iter().all(|e| e.category() == "visit"));
    let issues = store
        .read_log(&query(&[], &["issue"], 0, None, 100))
        .await
        .unwrap();
    assert_eq!(issues.len(), 20);
    let raised = store
        .read_log(&query(&["IssueRaised"], &[], 0, None, 100))
        .await
        .unwrap();
    assert_eq!(raised.len(), 10);
    let two_types = store
        .read_log(&query(&["IssueRaised", "VisitRecorded"], &[], 0, None, 100))
        .await
        .unwrap();
    assert_eq!(two_types.len(), 20);
    let both = store
        .read_log(&query(
            &["IssueEscalated"],
            &["issue", "visit"],
            0,
            None,
            100,
        ))
        .await
        .unwrap();
    assert_eq!(both.len(), 10);
    let none = store
        .read_log(&query(&["VisitRecorded"], &["issue"], 0, None, 100))
        .await
        .unwrap();
    assert!(none.is_empty());
    // As of position 12: only what had been appended by then.
    let as_of = store
        .read_log(&query(&[], &[], 0, Some(12), 100))
        .await
        .unwrap();
    assert_eq!(as_of.len(), 12);
    assert_eq!(as_of.last().unwrap().position, 12);
    let page = store
        .read_log(&query(&[], &[], 5, Some(12), 3))
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
    // Ordered by position, whatever the filter.
    for list in [&visits, &issues, &raised, &both] {
        assert!(list.windows(2).all(|w| w[0].position < w[1].position));
    }
}

pub async fn reads_as_of_a_record_time_see_a_prefix_of_the_log(h: &Harness) {
    let store = h.open().await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    assert_eq!(store.position_at(before).await.unwrap(), 0);
    store
        .append(append(
            "s-1",
            ExpectedVersion::Any,
            vec![event("A", 1), event("A", 2)],
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store
        .append(append("s-1", ExpectedVersion::Any, vec![event("A", 3)]))
        .await
        .unwrap();
    assert_eq!(store.position_at(between).await.unwrap(), 2);
    assert_eq!(store.position_at(chrono::Utc::now()).await.unwrap(), 3);
    let log = all_events(&store).await;
    assert_eq!(store.position_at(log[0].recorded_at).await.unwrap(), 2);
    assert!(log.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
}

pub async fn the_log_streams_in_pages_in_order(h: &Harness) {
    let store = h.open().await;
    for i in 0..57u64 {
        store
            .append(append(
                &format!("s-{}", i % 4),
                ExpectedVersion::Any,
                vec![event("A", i)],
            ))
            .await
            .unwrap();
    }
    let positions: Vec<u64> = stream_log(store.clone(), LogQuery::after(3, 5))
        .map(|e| e.expect("event").position)
        .collect()
        .await;
    assert_eq!(positions, (4..=57).collect::<Vec<_>>());
    let mut q = LogQuery::after(0, 4);
    q.up_to = Some(10);
    q.filter.categories = vec!["s".into()];
    let n = stream_log(store.clone(), q).count().await;
    assert_eq!(n, 10);
}

pub async fn a_subscription_catches_up_then_follows_live_without_gaps_or_duplicates(h: &Harness) {
    let store = h.open().await;
    for i in 0..1500u64 {
        if i % 100 == 0 {
            // Appends of several events, so that catch-up crosses page boundaries mid-append.
            let events = (0..100).map(|j| event("A", i + j)).collect();
            store
                .append(append(&format!("s-{i}"), ExpectedVersion::Any, events))
                .await
                .unwrap();
        }
    }
    let head = store.head().await.unwrap().position;
    assert_eq!(head, 1500);
    let mut sub = subscribe(store.clone(), 10, EventFilter::all());
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..200u64 {
                store
                    .append(append("live-1", ExpectedVersion::Any, vec![event("B", i)]))
                    .await
                    .unwrap();
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 1690 {
        let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("subscription stalled")
            .expect("subscription error");
        seen.push(e.position);
    }
    writer.await.unwrap();
    assert_eq!(seen, (11..=1700).collect::<Vec<_>>());
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), sub.next())
            .await
            .is_err()
    );

    // A filtered subscription sees only its category, in order, also live.
    let mut only_live = subscribe(
        store.clone(),
        0,
        EventFilter {
            event_types: vec![],
            categories: vec!["live".into()],
        },
    );
    let mut got = Vec::new();
    while got.len() < 200 {
        got.push(only_live.next().await.unwrap().position);
    }
    assert_eq!(got, (1501..=1700).collect::<Vec<_>>());
    store
        .append(append("other-1", ExpectedVersion::Any, vec![event("C", 0)]))
        .await
        .unwrap();
    store
        .append(append("live-1", ExpectedVersion::Any, vec![event("B", 0)]))
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), only_live.next())
        .await
        .expect("live filtered event")
        .unwrap();
    assert_eq!(next.position, 1702);
}

pub async fn a_subscriber_in_another_process_sees_appends(h: &Harness) {
    // A second store on the same database stands in for another server process: it learns of
    // appends only through the database (NOTIFY on PostgreSQL, polling on SQLite).
    let writer = h.open().await;
    let reader = h.open().await;
    let mut sub = subscribe(reader.clone(), 0, EventFilter::all());
    for i in 0..20u64 {
        writer
            .append(append("s-1", ExpectedVersion::Any, vec![event("A", i)]))
            .await
            .unwrap();
    }
    for p in 1..=20u64 {
        let e = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("cross-process subscription stalled")
            .unwrap();
        assert_eq!(e.position, p);
    }
}

pub async fn a_slow_subscriber_falls_back_to_storage(h: &Harness) {
    let options = caretrail_store::StoreOptions {
        broadcast_capacity: 2,
        ..Default::default()
    };
    let store = h.open_with(options).await;
    let mut sub = subscribe(store.clone(), 0, EventFilter::all());
    // Far more batches than the in-memory feed holds, while the subscriber reads nothing.
    for i in 0..50u64 {
        store
            .append(append("s-1", ExpectedVersion::Any, vec![event("A", i)]))
            .await
            .unwrap();
    }
    for p in 1..=50u64 {
        assert_eq!(sub.next().await.unwrap().position, p);
    }
}
