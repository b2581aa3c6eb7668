//! The storage conformance suite: generic tests over `dyn EventStore`, run unchanged against
//! every backend by the `conformance!` macro in `tests/store.rs`.

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

async fn all_events(store: &Arc<dyn EventStore>) -> Vec<caretrail_store::RecordedEvent> {
    store
        .read_log(&LogQuery::after(0, 1_000_000))
        .await
        .expect("read log")
}

pub async fn appended_events_read_back_exactly(h: &Harness) {
    let store = h.open().await;
    let date = chrono::NaiveDate::from_ymd_opt(2021, 10, 13).unwrap();
    let e1 = event("VisitRecorded", 1).on(date);
    let e2 = NewEvent {
        // Key order and spacing are kept byte for byte: the leaf hash commits to them.
        // Escaped control characters too: the SQLite backend packs pages with U+001E/U+001F.
        data: r#"{ "z": 1, "a": [1, 2.5, "三"], "c": "\u001e\u001f\n" }"#.into(),
        ..event("VisitCorrected", 2)
    };
    let mut metadata = Metadata::actor("director-7", "director").command(Uuid::now_v7());
    metadata.correlation_id = Some(Uuid::now_v7());
    metadata.causation_id = Some(Uuid::now_v7());
    let res = store
        .append(AppendRequest::single(
            stream("visit-1"),
            ExpectedVersion::NoStream,
            vec![e1.clone(), e2.clone()],
            metadata.clone(),
        ))
        .await
        .expect("append");
    assert_eq!(res.first_position(), Some(1));
    assert_eq!(res.last_position(), Some(2));
    assert_eq!(res.version_of(&stream("visit-1")), Some(2));
    assert!(!res.deduplicated);

    let read = store
        .read_stream(&stream("visit-1"), 1, 100)
        .await
        .expect("read stream");
    assert_eq!(read.len(), 2);
    for (got, sent) in read.iter().zip([&e1, &e2]) {
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.event_type, sent.event_type);
        assert_eq!(got.data, sent.data, "payload bytes must round-trip exactly");
        assert_eq!(got.business_date, sent.business_date);
        assert_eq!(got.actor_id, "director-7");
        assert_eq!(got.actor_role, "director");
        assert_eq!(got.command_id, metadata.command_id);
        assert_eq!(got.correlation_id, metadata.correlation_id);
        assert_eq!(got.causation_id, metadata.causation_id);
        assert_eq!(got.recorded_at, res.recorded_at);
        assert_eq!(got.category(), "visit");
        assert_eq!(got.recompute_leaf_hash(), got.leaf_hash);
    }
    assert_eq!(read[1].stream_version, 2);
    assert_eq!(store.stream_version(&stream("visit-1")).await.unwrap(), 2);
    assert_eq!(store.stream_version(&stream("visit-2")).await.unwrap(), 0);
    assert_eq!(
        store
            .read_stream(&stream("visit-1"), 2, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.head().await.unwrap().position, 2);
}

pub async fn expected_versions_are_enforced_with_the_actual_version(h: &Harness) {
    let store = h.open().await;
    let s = "pairing-1";
    let err = store
        .append(append(s, ExpectedVersion::Exists, vec![event("A", 0)]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: 0,
                expected: ExpectedVersion::Exists,
                ..
            }
        ),
        "{err:?}"
    );
    // Twelve events, so that versions above 9 are exercised (a text comparison of "10" and
    // "9" would get these wrong).
    for v in 0..12u64 {
        store
            .append(append(s, ExpectedVersion::Exact(v), vec![event("A", v)]))
            .await
            .unwrap_or_else(|e| panic!("append at version {v}: {e}"));
    }
    for (expected, name) in [
        (ExpectedVersion::Exact(9), "stale 9"),
        (ExpectedVersion::Exact(10), "stale 10"),
        (ExpectedVersion::Exact(13), "future 13"),
        (ExpectedVersion::NoStream, "no stream"),
    ] {
        let err = store
            .append(append(s, expected, vec![event("A", 99)]))
            .await
            .unwrap_err();
        match err {
            StoreError::WrongExpectedVersion {
                ref stream,
                expected: e,
                actual,
            } => {
                assert_eq!(stream.as_str(), s, "{name}");
                assert_eq!(e, expected, "{name}");
                assert_eq!(actual, 12, "{name}");
            }
            other => panic!("{name}: expected a conflict, got {other:?}"),
        }
        assert!(err.is_conflict());
    }
    store
        .append(append(s, ExpectedVersion::Exact(12), vec![event("A", 12)]))
        .await
        .expect("exact 12");
    store
        .append(append(s, ExpectedVersion::Exists, vec![event("A", 13)]))
        .await
        .expect("exists");
    store
        .append(append(s, ExpectedVersion::Any, vec![event("A", 14)]))
        .await
        .expect("any");
    assert_eq!(store.stream_version(&stream(s)).await.unwrap(), 15);
    assert_eq!(store.head().await.unwrap().position, 15);
}

pub async fn multi_stream_appends_are_all_or_nothing(h: &Harness) {
    let store = h.open().await;
    store
        .append(append(
            "director-1",
            ExpectedVersion::NoStream,
            vec![event("Appointed", 0)],
        ))
        .await
        .unwrap();
    store
        .append(append(
            "modelworker-1",
            ExpectedVersion::NoStream,
            vec![event("Registered", 0)],
        ))
        .await
        .unwrap();

    // The model worker's expectation is stale: nothing may be written to any stream.
    let req = AppendRequest {
        streams: vec![
            StreamAppend {
                stream: stream("pairing-1"),
                expected: ExpectedVersion::NoStream,
                events: vec![event("PairAssigned", 0)],
            },
            StreamAppend {
                stream: stream("director-1"),
                expected: ExpectedVersion::Exact(1),
                events: vec![event("DirectorPaired", 0)],
            },
            StreamAppend {
                stream: stream("modelworker-1"),
                expected: ExpectedVersion::Exact(5),
                events: vec![event("ModelWorkerPaired", 0)],
            },
        ],
        metadata: md(),
    };
    let err = store.append(req.clone()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::WrongExpectedVersion { stream, actual: 1, .. } if stream.as_str() == "modelworker-1"),
        "{err:?}"
    );
    assert_eq!(store.head().await.unwrap().position, 2);
    assert_eq!(store.stream_version(&stream("pairing-1")).await.unwrap(), 0);
    assert_eq!(
        store.stream_version(&stream("director-1")).await.unwrap(),
        1
    );

    let mut ok = req;
    ok.streams[2].expected = ExpectedVersion::Exact(1);
    // A guard-only entry checks a stream without writing to it.
    ok.streams.push(StreamAppend {
        stream: stream("body-1"),
        expected: ExpectedVersion::NoStream,
        events: vec![],
    });
    let res = store.append(ok).await.expect("atomic append");
    let positions: Vec<u64> = res.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![3, 4, 5]);
    assert_eq!(res.version_of(&stream("pairing-1")), Some(1));
    assert_eq!(res.version_of(&stream("director-1")), Some(2));
    assert_eq!(res.version_of(&stream("modelworker-1")), Some(2));
    assert_eq!(res.version_of(&stream("body-1")), Some(0));
    let log = all_events(&store).await;
    assert!(log.iter().skip(2).all(|e| e.recorded_at == res.recorded_at));
    assert_eq!(store.stream_version(&stream("body-1")).await.unwrap(), 0);

    // A failing guard fails the whole append too.
    let guarded = AppendRequest {
        streams: vec![
            StreamAppend {
                stream: stream("issue-1"),
                expected: ExpectedVersion::NoStream,
                events: vec![event("IssueRaised", 0)],
            },
            StreamAppend {
                stream: stream("body-2"),
                expected: ExpectedVersion::Exists,
                events: vec![],
            },
        ],
        metadata: md(),
    };
    assert!(store.append(guarded).await.unwrap_err().is_conflict());
    assert_eq!(store.head().await.unwrap().position, 5);
}

pub async fn a_repeated_command_id_returns_the_original_result_and_writes_nothing(h: &Harness) {
    let store = h.open().await;
    let cmd = Uuid::now_v7();
    let first = AppendRequest::single(
        stream("contact-1"),
        ExpectedVersion::NoStream,
        vec![event("ContactRecorded", 1), event("ContactRecorded", 2)],
        md().command(cmd),
    );
    let original = store.append(first.clone()).await.expect("first append");
    // The retry is identical, and would even conflict on its expectation if it were decided
    // again: it must not be.
    let again = store.append(first).await.expect("retry");
    assert!(again.deduplicated);
    let looked_up = store
        .command_result(cmd)
        .await
        .unwrap()
        .expect("stored result");
    assert_eq!(looked_up, again);
    assert!(
        store
            .command_result(Uuid::now_v7())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(again.events, original.events);
    assert_eq!(again.streams, original.streams);
    assert_eq!(again.recorded_at, original.recorded_at);
    // A different payload under the same command id is still the same command.
    let other = AppendRequest::single(
        stream("contact-2"),
        ExpectedVersion::Any,
        vec![event("ContactRecorded", 3)],
        md().command(cmd),
    );
    let third = store.append(other).await.expect("same command, other body");
    assert_eq!(third.events, original.events);
    assert_eq!(store.head().await.unwrap().position, 2);
    assert_eq!(store.stream_version(&stream("contact-2")).await.unwrap(), 0);

    // Many concurrent retries of one command: exactly one write.
    let cmd = Uuid::now_v7();
    let req = AppendRequest::single(
        stream("contact-3"),
        ExpectedVersion::Any,
        vec![event("ContactRecorded", 4)],
        md().command(cmd),
    );
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, req) = (store.clone(), req.clone());
        tasks.push(tokio::spawn(async move { store.append(req).await }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().expect("concurrent retry"));
    }
    assert_eq!(results.iter().filter(|r| !r.deduplicated).count(), 1);
    assert!(results.iter().all(|r| r.events == results[0].events));
    assert_eq!(store.head().await.unwrap().position, 3);
}

pub async fn a_duplicate_event_id_is_refused_without_failing_neighbours(h: &Harness) {
    let store = h.open().await;
    let e = event("IssueRaised", 1);
    store
        .append(append("issue-1", ExpectedVersion::Any, vec![e.clone()]))
        .await
        .unwrap();
    let err = store
        .append(append("issue-2", ExpectedVersion::Any, vec![e.clone()]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventId(id) if id == e.event_id),
        "{err:?}"
    );
    assert_eq!(store.head().await.unwrap().position, 1);

    // Fire the duplicate among many good appends at once: they share group-commit batches
    // with it, and every one of them must still succeed.
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let store = store.clone();
        let ev = if i == 17 {
            e.clone()
        } else {
            event("IssueRaised", i)
        };
        tasks.push(tokio::spawn(async move {
            store
                .append(append(
                    &format!("issue-n{i}"),
                    ExpectedVersion::NoStream,
                    vec![ev],
                ))
                .await
        }));
    }
    let mut failures = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => assert_ne!(i, 17),
            Err(StoreError::DuplicateEventId(id)) => {
                assert_eq!(i, 17);
                assert_eq!(id, e.event_id);
                failures += 1;
            }
            Err(other) => panic!("append {i}: {other:?}"),
        }
    }
    assert_eq!(failures, 1);
    let log = all_events(&store).await;
    assert_eq!(log.len(), 40);
    assert_eq!(log.iter().filter(|x| x.event_id == e.event_id).count(), 1);
    assert_positions_are_one_to_n(&log);
}

pub async fn conflicting_concurrent_appends_fail_alone(h: &Harness) {
    let store = h.open().await;
    // Thirty appenders race for the same new stream; exactly one wins, the rest get their own
    // conflict, and appends to other streams in the same batches are unaffected.
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let s = if i % 2 == 0 {
                "pairing-race".to_owned()
            } else {
                format!("pairing-{i}")
            };
            (
                i,
                store
                    .append(append(
                        &s,
                        ExpectedVersion::NoStream,
                        vec![event("PairAssigned", i)],
                    ))
                    .await,
            )
        }));
    }
    let (mut won, mut lost, mut others) = (0, 0, 0);
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match (i % 2 == 0, r) {
            (true, Ok(_)) => won += 1,
            (true, Err(StoreError::WrongExpectedVersion { actual: 1, .. })) => lost += 1,
            (false, Ok(_)) => others += 1,
            (_, r) => panic!("append {i}: {r:?}"),
        }
    }
    assert_eq!((won, lost, others), (1, 29, 30));
    assert_positions_are_one_to_n(&all_events(&store).await);
}

pub async fn invalid_appends_are_refused_before_storage(h: &Harness) {
    let store = h.open().await;
    let bad_json = NewEvent {
        data: "{not json".into(),
        ..event("A", 0)
    };
    assert!(matches!(
        store
            .append(append("s-1", ExpectedVersion::Any, vec![bad_json]))
            .await,
        Err(StoreError::InvalidAppend(_))
    ));
    let twice = AppendRequest {
        streams: vec![
            StreamAppend {
                stream: stream("s-1"),
                expected: ExpectedVersion::Any,
                events: vec![event("A", 0)],
            },
            StreamAppend {
                stream: stream("s-1"),
                expected: ExpectedVersion::Any,
                events: vec![event("A", 1)],
            },
        ],
        metadata: md(),
    };
    assert!(matches!(
        store.append(twice).await,
        Err(StoreError::InvalidAppend(_))
    ));
    let e = event("A", 0);
    assert!(matches!(
        store
            .append(append("s-1", ExpectedVersion::Any, vec![e.clone(), e]))
            .await,
        Err(StoreError::InvalidAppend(_))
    ));
    let anonymous = AppendRequest::single(
        stream("s-1"),
        ExpectedVersion::Any,
        vec![event("A", 0)],
        Metadata::default(),
    );
    assert!(matches!(
        store.append(anonymous).await,
        Err(StoreError::InvalidAppend(_))
    ));
    assert!(matches!(
        store
            .append(append(
                "s-1",
                ExpectedVersion::Any,
                vec![event("bad type", 0)]
            ))
            .await,
        Err(StoreError::InvalidAppend(_))
    ));
    assert_eq!(store.head().await.unwrap().position, 0);
}

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

pub fn assert_positions_are_one_to_n(log: &[caretrail_store::RecordedEvent]) {
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=log.len() as u64).collect::<Vec<_>>());
}

/// The suite's own table set, standing for another crate's tables (`tables`).
static SUITE_TABLES: caretrail_store::TableSet = caretrail_store::TableSet {
    name: "suite",
    sqlite: sqlx::migrate!("./tests/migrations/sqlite"),
    postgres: sqlx::migrate!("./tests/migrations/postgres"),
};

/// How many versions of `set` the database records.
async fn recorded_versions(tables: &caretrail_store::Tables, set: &str) -> i64 {
    let sql = match set {
        "suite" => "SELECT COUNT(*) FROM _caretrail_suite_migrations",
        other => panic!("no record query for {other}"),
    };
    match tables {
        caretrail_store::Tables::Sqlite(t) => {
            sqlx::query_scalar(sql).fetch_one(t.pool()).await.unwrap()
        }
        caretrail_store::Tables::Postgres(t) => {
            sqlx::query_scalar(sql).fetch_one(t.pool()).await.unwrap()
        }
    }
}

/// Another crate's tables: its migrations are applied in order once, recorded in a table of
/// their own, again from a second process without error, and its effects commit in a
/// consumer's transaction on that backend's connection only.
pub async fn other_crates_tables_are_migrated_once_and_written_in_consumer_transactions(
    h: &Harness,
) {
    let store = h.open().await;
    let tables = store.tables(&SUITE_TABLES).await.expect("migrations apply");
    assert_eq!(recorded_versions(&tables, "suite").await, 2);
    // Asked again, by this store or by another one on the same database: nothing to do.
    store.tables(&SUITE_TABLES).await.expect("again");
    let other = h.open().await;
    let tables = other.tables(&SUITE_TABLES).await.expect("another store");
    assert_eq!(recorded_versions(&tables, "suite").await, 2);

    // Both migrations ran, in order (the second adds a column with a default).
    let mut tx = store.begin_consumer("suite").await.unwrap();
    match &tables {
        caretrail_store::Tables::Sqlite(_) => {
            assert!(matches!(
                tx.postgres(),
                Err(StoreError::WrongBackend { .. })
            ));
            sqlx::query("INSERT INTO suite_notes (id, note) VALUES (1, 'written')")
                .execute(tx.sqlite().unwrap())
                .await
                .unwrap();
        }
        caretrail_store::Tables::Postgres(_) => {
            assert!(matches!(tx.sqlite(), Err(StoreError::WrongBackend { .. })));
            sqlx::query("INSERT INTO suite_notes (id, note) VALUES (1, 'written')")
                .execute(tx.postgres().unwrap())
                .await
                .unwrap();
        }
    }
    tx.commit(0).await.unwrap();
    let seen: i64 = match &tables {
        caretrail_store::Tables::Sqlite(t) => {
            sqlx::query_scalar("SELECT seen FROM suite_notes WHERE id = 1")
                .fetch_one(t.pool())
                .await
                .unwrap()
        }
        caretrail_store::Tables::Postgres(t) => {
            sqlx::query_scalar("SELECT seen FROM suite_notes WHERE id = 1")
                .fetch_one(t.pool())
                .await
                .unwrap()
        }
    };
    assert_eq!(seen, 0);

    // A name that would make another table name is refused.
    static BAD: caretrail_store::TableSet = caretrail_store::TableSet {
        name: "x; DROP",
        sqlite: sqlx::migrate!("./tests/migrations/sqlite"),
        postgres: sqlx::migrate!("./tests/migrations/postgres"),
    };
    assert!(matches!(
        store.tables(&BAD).await,
        Err(StoreError::InvalidTableSet(_))
    ));
}

/// The bulk reader (SQLite's direct connection) reads exactly what `read_log` reads, batch
/// after batch, and keeps a consumer's checkpoint where the store reads it. PostgreSQL has no
/// file to open.
pub async fn the_bulk_reader_reads_the_log_as_stored(h: &Harness) {
    let store = h.open().await;
    let Some(path) = store.sqlite_file() else {
        assert_eq!(store.backend(), "postgres");
        return;
    };
    let date = chrono::NaiveDate::from_ymd_opt(2021, 10, 13).unwrap();
    for i in 0..25u64 {
        let e = if i % 2 == 0 {
            event("VisitRecorded", i).on(date)
        } else {
            event("ContactLogged", i)
        };
        store
            .append(append(
                &format!("visit-{}", i % 4),
                ExpectedVersion::Any,
                vec![e],
            ))
            .await
            .unwrap();
    }
    let stored = all_events(&store).await;
    let mut reader = caretrail_store::bulk::LogReader::open(&path).unwrap();
    assert_eq!(reader.head().unwrap(), 25);
    let mut read = Vec::new();
    let mut after = 0;
    while let Some(last) = reader
        .read(after, 10, |row| {
            read.push((
                row.position,
                row.event_id,
                row.stream_id.to_owned(),
                row.event_type.to_owned(),
                row.schema_version,
                row.data.to_owned(),
                row.actor_id.to_owned(),
                row.actor_role.to_owned(),
                row.business_date,
                row.recorded_at_us,
            ));
            Ok::<_, StoreError>(())
        })
        .unwrap()
    {
        after = last;
        reader.release_memory().unwrap();
    }
    assert_eq!(read.len(), stored.len());
    for (r, e) in read.iter().zip(&stored) {
        assert_eq!(
            r,
            &(
                e.position,
                e.event_id,
                e.stream_id.clone(),
                e.event_type.clone(),
                e.schema_version,
                e.data.clone(),
                e.actor_id.clone(),
                e.actor_role.clone(),
                e.business_date,
                e.recorded_at.timestamp_micros(),
            )
        );
    }
    // A consumer keeping its checkpoint on a direct connection of its own.
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(
        caretrail_store::bulk::read_checkpoint(&conn, "bulk").unwrap(),
        0
    );
    caretrail_store::bulk::write_checkpoint(&conn, "bulk", 25).unwrap();
    assert_eq!(
        caretrail_store::bulk::read_checkpoint(&conn, "bulk").unwrap(),
        25
    );
    assert_eq!(store.checkpoint("bulk").await.unwrap(), 25);
}
