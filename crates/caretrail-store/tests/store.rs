//! The event store's integration tests: the conformance suite run unchanged against SQLite and
//! PostgreSQL, plus a crash test per backend. One test binary keeps link time down.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

mod common;
mod suite;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// Instantiates every suite case for one backend, each as its own named test.
macro_rules! conformance {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(h) = crate::common::$backend().await {
                        crate::suite::$case(&h).await;
                    }
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn acknowledged_appends_survive_a_sigkill() {
                if let Some(h) = crate::common::$backend().await {
                    crate::crash_test(&h).await;
                }
            }
        }
    };
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        conformance!(sqlite: $($case),*);
        conformance!(postgres: $($case),*);
    };
}

both_backends!(
    appended_events_read_back_exactly,
    expected_versions_are_enforced_with_the_actual_version,
    multi_stream_appends_are_all_or_nothing,
    a_repeated_command_id_returns_the_original_result_and_writes_nothing,
    a_duplicate_event_id_is_refused_without_failing_neighbours,
    conflicting_concurrent_appends_fail_alone,
    invalid_appends_are_refused_before_storage,
    events_are_read_back_by_position,
    reads_filter_by_type_and_category_and_stop_at_a_position,
    reads_as_of_a_record_time_see_a_prefix_of_the_log,
    the_log_streams_in_pages_in_order,
    a_subscription_catches_up_then_follows_live_without_gaps_or_duplicates,
    a_subscriber_in_another_process_sees_appends,
    a_slow_subscriber_falls_back_to_storage,
    consumers_commit_effects_and_checkpoint_together,
    the_database_refuses_to_change_or_remove_events,
    many_appenders_and_a_live_subscriber_agree_on_one_gapless_order,
    other_crates_tables_are_migrated_once_and_written_in_consumer_transactions,
    the_bulk_reader_reads_the_log_as_stored,
    appenders_in_two_processes_share_one_gapless_order,
);

const CHILD_ENV: &str = "CARETRAIL_CRASH_CHILD_URL";

/// Not a test on its own: the child half of `acknowledged_appends_survive_a_sigkill`. The parent
/// re-runs this test binary with only this entry selected and `CARETRAIL_CRASH_CHILD_URL` set;
/// the child appends from eight tasks forever and prints `ack POSITION EVENT_ID` for every
/// acknowledged event until it is killed. Without the variable it returns at once.
#[test]
fn crash_child_entry() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = caretrail_store::connect(&url, Default::default())
            .await
            .expect("child opens store");
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let req = common::append(
                        &format!("crash-{t}"),
                        caretrail_store::ExpectedVersion::Any,
                        vec![common::event("A", i), common::event("B", i)],
                    );
                    let r = store.append(req).await.expect("child append");
                    let mut out = String::new();
                    for w in &r.events {
                        out.push_str(&format!("ack {} {}\n", w.position, w.event_id));
                    }
                    print!("{out}");
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

async fn crash_test(h: &common::Harness) {
    let mut acked: Vec<(u64, uuid::Uuid)> = Vec::new();
    // Two rounds: the second starts on the log the first crash left behind.
    for round in 0..2 {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_entry",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &h.url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let target = acked.len() + 400;
        while acked.len() < target {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("child stopped acknowledging")
                .expect("read child output")
                .unwrap_or_else(|| panic!("child exited early in round {round}"));
            if let Some(rest) = line.strip_prefix("ack ") {
                let (p, id) = rest.split_once(' ').expect("ack line");
                acked.push((p.parse().unwrap(), id.parse().unwrap()));
            }
        }
        // SIGKILL in the middle of the appends: no chance to flush or clean up.
        child.start_kill().expect("kill child");
        child.wait().await.expect("reap child");
    }

    let store = h.open().await;
    let log = store
        .read_log(&caretrail_store::LogQuery::after(0, 10_000_000))
        .await
        .expect("read after crash");
    suite::assert_positions_are_one_to_n(&log);
    for (p, id) in &acked {
        let e = &log[(*p - 1) as usize];
        assert_eq!(
            e.event_id, *id,
            "acknowledged event at {p} is missing or moved"
        );
    }
    for e in &log {
        assert_eq!(
            e.recompute_leaf_hash(),
            e.leaf_hash,
            "leaf hash at {}",
            e.position
        );
    }
    // The store takes appends again after the crash, continuing the same order.
    let r = store
        .append(common::append(
            "after-1",
            caretrail_store::ExpectedVersion::NoStream,
            vec![common::event("A", 0)],
        ))
        .await
        .expect("append after crash");
    assert_eq!(r.first_position(), Some(log.len() as u64 + 1));
}
