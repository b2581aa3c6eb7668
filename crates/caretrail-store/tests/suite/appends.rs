//! Appends: exact read-back, expected versions, atomic multi-stream appends, idempotent
//! command ids, duplicate event ids, concurrent conflicts and refused input.

use super::*;

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

pub async fn appenders_in_two_processes_share_one_gapless_order(h: &Harness) {
    // Two stores on one database stand in for two server processes. Each writer plans from
    // what it last knew of the log, which the other keeps making stale: every append must
    // still land exactly once, at the position and stream version it was acknowledged with,
    // and a racing exact expected version must fail with the version actually stored.
    let stores = [h.open().await, h.open().await];
    let mut tasks = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        for t in 0..6u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut conflicts = 0u64;
                for i in 0..15u64 {
                    let shared = format!("shared-{}", i % 3);
                    let acked_one = store
                        .append(append(&shared, ExpectedVersion::Any, vec![event("A", i)]))
                        .await
                        .unwrap();
                    acked.extend(acked_one.events);
                    // Every task claims version 1 of the same new stream once: one wins.
                    if i == t {
                        let race = format!("race-{n}-{t}");
                        store
                            .append(append(
                                &race,
                                ExpectedVersion::NoStream,
                                vec![event("B", i)],
                            ))
                            .await
                            .unwrap();
                        match store
                            .append(append(
                                "race",
                                ExpectedVersion::NoStream,
                                vec![event("C", i)],
                            ))
                            .await
                        {
                            Ok(r) => acked.extend(r.events),
                            Err(StoreError::WrongExpectedVersion { actual: 1, .. }) => {
                                conflicts += 1;
                            }
                            Err(e) => panic!("race: {e:?}"),
                        }
                    }
                }
                (acked, conflicts)
            }));
        }
    }
    let mut acked = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (a, c) = t.await.unwrap();
        acked.extend(a);
        conflicts += c;
    }
    assert_eq!(conflicts, 11, "exactly one of twelve claims of `race` wins");
    let log = all_events(&stores[0]).await;
    assert_positions_are_one_to_n(&log);
    assert_eq!(log.len(), 12 * 15 + 12 + 1);
    for a in &acked {
        let e = &log[(a.position - 1) as usize];
        assert_eq!(
            (e.event_id, &e.stream_id, e.stream_version),
            (a.event_id, &a.stream_id, a.stream_version)
        );
    }
    let mut versions = std::collections::HashMap::new();
    for e in &log {
        let v = versions.entry(e.stream_id.clone()).or_insert(0);
        *v += 1;
        assert_eq!(e.stream_version, *v, "{} skips a version", e.stream_id);
    }
}
