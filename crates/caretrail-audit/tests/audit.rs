//! The audit toolkit against real databases, each case run on SQLite and PostgreSQL: the tree
//! consumer and the proofs it serves, checkpoints, export and verification, the tamper suite
//! (each tampering detected at the right position), and personal-data erasure keeping every
//! proof valid. One test binary keeps link time down.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use caretrail_audit::merkle::{self, verify_consistency, verify_inclusion};
use caretrail_audit::{
    AuditConfig, Auditor, KeySource, NoteVerifier, VerifyError, VerifyOptions, VerifyReport,
    export, verify_file, verify_store,
};
use caretrail_store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId,
};
use chrono::NaiveDate;
use common::Harness;

caretrail_store::both_backends!(
    the_stored_tree_serves_proofs_that_verify_for_every_position_and_size,
    an_export_and_the_live_database_verify_clean,
    a_flipped_byte_in_event_data_is_found_at_its_position,
    a_changed_metadata_field_is_found_at_its_position,
    a_deleted_event_is_found_at_its_position,
    two_swapped_events_are_found_at_the_first_of_them,
    a_log_truncated_and_regrown_after_a_checkpoint_is_found_as_a_fork,
    an_old_backup_restored_under_newer_checkpoints_is_found,
    a_checkpoint_with_a_bad_signature_is_found,
    a_forged_consistency_proof_is_found,
    erasing_personal_data_keys_keeps_every_proof_valid,
    the_tree_is_updated_with_one_pooled_connection,
);

/// A store, an auditor on it, and the key directory.
struct Setup {
    store: Arc<dyn EventStore>,
    auditor: Auditor,
    key: NoteVerifier,
    _dir: tempfile::TempDir,
}

async fn setup(h: &Harness) -> Setup {
    let dir = tempfile::tempdir().expect("key dir");
    let store = h.open().await;
    let auditor = open_auditor(&store, &dir).await;
    let key = auditor.verifier().expect("signing key");
    Setup {
        store,
        auditor,
        key,
        _dir: dir,
    }
}

async fn open_auditor(store: &Arc<dyn EventStore>, dir: &tempfile::TempDir) -> Auditor {
    let config = AuditConfig {
        origin: "caretrail/test".into(),
        key: Some(KeySource::File(dir.path().join("audit.key"))),
        // Small batches, so that catching up spans many consumer transactions.
        batch: 7,
    };
    Auditor::open(store.clone(), config)
        .await
        .expect("open auditor")
}

/// Appends `n` events in appends of up to three, with varied envelopes (business dates,
/// command and correlation ids, two streams per append now and then).
async fn append_events(store: &Arc<dyn EventStore>, n: u64) {
    let mut i = 0;
    while i < n {
        let take = (n - i).min(3);
        let mut streams = Vec::new();
        let mut events = Vec::new();
        for j in 0..take {
            let k = i + j;
            let mut e = NewEvent::json(
                if k % 2 == 0 {
                    "VisitRecorded"
                } else {
                    "GiftGiven"
                },
                1 + (k % 2) as u32,
                &serde_json::json!({ "n": k, "note": "看望 ✓", "amount": 100 + k }),
            )
            .expect("json");
            if k % 3 == 0 {
                e = e.on(NaiveDate::from_ymd_opt(2021, 10, 1 + (k % 28) as u32).expect("date"));
            }
            events.push(e);
        }
        streams.push(StreamAppend {
            stream: StreamId::new(format!("pairing-{}", i % 4)).expect("stream"),
            expected: ExpectedVersion::Any,
            events,
        });
        if i % 9 == 0 {
            streams.push(StreamAppend {
                stream: StreamId::new(format!("director-{i}")).expect("stream"),
                expected: ExpectedVersion::Any,
                events: vec![],
            });
        }
        let mut metadata = Metadata::actor("director-7", "director").command(uuid::Uuid::new_v4());
        if i % 2 == 0 {
            metadata.correlation_id = Some(uuid::Uuid::new_v4());
        }
        store
            .append(AppendRequest { streams, metadata })
            .await
            .expect("append");
        i += take;
    }
}

async fn sign(a: &Auditor) -> u64 {
    a.sign_checkpoint()
        .await
        .expect("sign checkpoint")
        .tree_size
}

async fn verify_db(s: &Setup) -> Result<VerifyReport, VerifyError> {
    verify_store(
        &s.auditor,
        &s.key,
        &VerifyOptions::default(),
        &mut |_, _| {},
    )
    .await
}

async fn export_text(a: &Auditor) -> String {
    let mut out = Vec::new();
    export(a, &mut out, &mut |_, _| {}).await.expect("export");
    String::from_utf8(out).expect("utf-8 export")
}

fn verify_text(text: &str, key: &NoteVerifier) -> Result<VerifyReport, VerifyError> {
    verify_file(
        text.as_bytes(),
        key,
        &VerifyOptions::default(),
        &mut |_, _| {},
    )
}

/// A log of 25 events with checkpoints at 10, 18 and 25.
async fn checkpointed(h: &Harness) -> Setup {
    let s = setup(h).await;
    append_events(&s.store, 10).await;
    assert_eq!(sign(&s.auditor).await, 10);
    append_events(&s.store, 8).await;
    assert_eq!(sign(&s.auditor).await, 18);
    append_events(&s.store, 7).await;
    assert_eq!(sign(&s.auditor).await, 25);
    s
}

/// Checks that both the live database and a fresh export fail with `check`.
async fn assert_both_fail(s: &Setup, check: impl Fn(&VerifyError)) {
    let err = verify_db(s)
        .await
        .expect_err("the database must fail verification");
    check(&err);
    let text = export_text(&s.auditor).await;
    let err = verify_text(&text, &s.key).expect_err("the export must fail verification");
    check(&err);
}

const COLUMNS: &str = "stream_id, category, stream_version, event_id, event_type, schema_version, \
    data, actor_id, actor_role, command_id, correlation_id, causation_id, business_date, \
    recorded_at, leaf_hash";

// ---------------------------------------------------------------------------------------------

async fn the_stored_tree_serves_proofs_that_verify_for_every_position_and_size(h: &Harness) {
    let s = setup(h).await;
    append_events(&s.store, 37).await;
    assert_eq!(s.auditor.update_tree().await.unwrap(), 37);
    let log = s
        .store
        .read_log(&caretrail_store::LogQuery::after(0, 1000))
        .await
        .unwrap();
    let leaves: Vec<merkle::Hash> = log.iter().map(|e| e.leaf_hash).collect();
    for size in 1..=37u64 {
        let root = s.auditor.root_at(size).await.unwrap();
        let mut f = merkle::Frontier::new();
        for l in &leaves[..size as usize] {
            f.push(*l, |_, _| {});
        }
        assert_eq!(root, f.root(), "root at {size}");
        for position in [1, size / 2 + 1, size] {
            let p = s.auditor.inclusion_proof(position, size).await.unwrap();
            assert_eq!(p.leaf_hash, leaves[position as usize - 1]);
            verify_inclusion(p.leaf_index, size, &p.leaf_hash, &p.proof, &root)
                .unwrap_or_else(|e| panic!("inclusion {position} in {size}: {e}"));
        }
        for from in [1, size / 3 + 1, size] {
            let old = s.auditor.root_at(from).await.unwrap();
            let new = s.auditor.root_at(37).await.unwrap();
            let p = s.auditor.consistency_proof(from, 37).await.unwrap();
            verify_consistency(from, 37, &p.proof, &old, &new)
                .unwrap_or_else(|e| panic!("consistency {from} to 37: {e}"));
        }
    }
    // The raw leaf encoding recomputes the leaf hash.
    let leaf = s.auditor.leaf_encoding(5).await.unwrap();
    assert_eq!(merkle::hash_leaf(&leaf.encoding), leaves[4]);
    // Out-of-range questions are refused, not answered wrongly.
    assert!(s.auditor.inclusion_proof(38, 38).await.is_err());
    assert!(s.auditor.inclusion_proof(0, 10).await.is_err());
    assert!(s.auditor.consistency_proof(0, 10).await.is_err());
    // The signed checkpoint opens with the public key and carries the tree's root.
    let cp = s.auditor.sign_checkpoint().await.unwrap();
    let body = caretrail_audit::note::open_checkpoint(&s.key, &cp.note).unwrap();
    assert_eq!(
        (body.tree_size, body.root_hash),
        (37, s.auditor.root_at(37).await.unwrap())
    );
    assert_eq!(s.auditor.latest_checkpoint().await.unwrap(), Some(cp));
}

async fn an_export_and_the_live_database_verify_clean(h: &Harness) {
    let s = checkpointed(h).await;
    append_events(&s.store, 4).await;
    let db = verify_db(&s).await.expect("database verifies");
    assert_eq!(
        (db.events, db.checkpoints, db.latest_checkpoint),
        (29, 3, Some(25))
    );
    let text = export_text(&s.auditor).await;
    let file = verify_text(&text, &s.key).expect("export verifies");
    assert_eq!(file, db);
    // Another key does not verify these checkpoints.
    let other = caretrail_audit::NoteSigner::from_seed("caretrail/test", [9; 32])
        .unwrap()
        .verifier();
    let err = verify_text(&text, &other).unwrap_err();
    assert_eq!(err.checkpoint(), Some(10), "{err}");
    // A cut-off export is not mistaken for a complete one.
    let cut: String = text.lines().take(12).map(|l| format!("{l}\n")).collect();
    assert!(matches!(
        verify_text(&cut, &s.key),
        Err(VerifyError::Truncated(_))
    ));
}

async fn a_flipped_byte_in_event_data_is_found_at_its_position(h: &Harness) {
    let s = checkpointed(h).await;
    tamper(
        h,
        &["UPDATE events SET data = replace(data, '\"n\":', '\"m\":') WHERE position = 14"],
    )
    .await;
    assert_both_fail(&s, |e| {
        assert!(
            matches!(e, VerifyError::LeafHashMismatch { position: 14 }),
            "{e}"
        );
    })
    .await;
}

async fn a_changed_metadata_field_is_found_at_its_position(h: &Harness) {
    let s = checkpointed(h).await;
    tamper(
        h,
        &["UPDATE events SET actor_id = 'director-8' WHERE position = 6"],
    )
    .await;
    assert_both_fail(&s, |e| {
        assert!(
            matches!(e, VerifyError::LeafHashMismatch { position: 6 }),
            "{e}"
        );
    })
    .await;
}

async fn a_deleted_event_is_found_at_its_position(h: &Harness) {
    let s = checkpointed(h).await;
    tamper(h, &["DELETE FROM events WHERE position = 12"]).await;
    assert_both_fail(&s, |e| {
        assert!(
            matches!(
                e,
                VerifyError::MissingPosition {
                    position: 12,
                    found: 13
                }
            ),
            "{e}"
        );
        assert_eq!(e.position(), Some(12));
    })
    .await;
}

async fn two_swapped_events_are_found_at_the_first_of_them(h: &Harness) {
    let s = checkpointed(h).await;
    tamper(
        h,
        &[
            format!("CREATE TABLE swapped AS SELECT position, {COLUMNS} FROM events WHERE position IN (3, 7)"),
            "DELETE FROM events WHERE position IN (3, 7)".into(),
            format!("INSERT INTO events (position, {COLUMNS}) SELECT 10 - position, {COLUMNS} FROM swapped"),
        ],
    )
    .await;
    assert_both_fail(&s, |e| {
        assert!(
            matches!(e, VerifyError::LeafHashMismatch { position: 3 }),
            "{e}"
        );
    })
    .await;
}

async fn a_log_truncated_and_regrown_after_a_checkpoint_is_found_as_a_fork(h: &Harness) {
    let s = checkpointed(h).await;
    // Truncate back to the checkpoint at 18, forget the tree, and regrow differently through
    // the store itself, so every new event is well-formed and hashes correctly.
    tamper(
        h,
        &[
            "DELETE FROM events WHERE position > 18",
            "DELETE FROM audit_merkle_nodes",
            "UPDATE consumer_checkpoints SET position = 0 WHERE name = 'audit.merkle'",
        ],
    )
    .await;
    let store = h.open().await;
    for i in 0..9 {
        store
            .append(AppendRequest::single(
                StreamId::new("pairing-forged").unwrap(),
                ExpectedVersion::Any,
                vec![
                    NewEvent::json("VisitRecorded", 1, &serde_json::json!({ "forged": i }))
                        .unwrap(),
                ],
                Metadata::actor("mallory", "admin"),
            ))
            .await
            .unwrap();
    }
    let s = Setup {
        auditor: open_auditor(&store, &s._dir).await,
        store,
        ..s
    };
    assert_eq!(s.auditor.update_tree().await.unwrap(), 27);
    assert_both_fail(&s, |e| {
        assert!(
            matches!(
                e,
                VerifyError::RootMismatch {
                    tree_size: 25,
                    first_position: 19
                }
            ),
            "{e}"
        );
    })
    .await;
}

async fn an_old_backup_restored_under_newer_checkpoints_is_found(h: &Harness) {
    let s = checkpointed(h).await;
    let newest = s.auditor.latest_checkpoint().await.unwrap().unwrap().note;
    // The events (and the tree) as a backup taken at 18 events had them; the checkpoint table
    // still holds the checkpoint at 25.
    tamper(
        h,
        &[
            "DELETE FROM events WHERE position > 18",
            "DELETE FROM audit_merkle_nodes",
            "UPDATE consumer_checkpoints SET position = 0 WHERE name = 'audit.merkle'",
        ],
    )
    .await;
    s.auditor.update_tree().await.unwrap();
    assert_both_fail(&s, |e| {
        assert!(
            matches!(
                e,
                VerifyError::CheckpointBeyondLog {
                    tree_size: 25,
                    log_size: 18
                }
            ),
            "{e}"
        );
        assert_eq!(e.position(), Some(19));
    })
    .await;
    // Restored whole, checkpoints included: the checkpoint the auditor kept still tells.
    tamper(h, &["DELETE FROM audit_checkpoints WHERE tree_size > 18"]).await;
    verify_db(&s)
        .await
        .expect("the restored database is self-consistent");
    let options = VerifyOptions {
        trusted_checkpoints: vec![newest],
    };
    let err = verify_store(&s.auditor, &s.key, &options, &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::CheckpointBeyondLog {
                tree_size: 25,
                log_size: 18
            }
        ),
        "{err}"
    );
}

async fn a_checkpoint_with_a_bad_signature_is_found(h: &Harness) {
    let s = checkpointed(h).await;
    let cp = s.auditor.checkpoints().await.unwrap().remove(1);
    assert_eq!(cp.tree_size, 18);
    // Change one character of the signature's base64 (after the key hash).
    let sig_at = cp.note.rfind(' ').unwrap() + 10;
    let mut forged = cp.note.clone().into_bytes();
    forged[sig_at] = if forged[sig_at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    tamper(
        h,
        &[format!(
            "UPDATE audit_checkpoints SET note = '{forged}' WHERE tree_size = 18"
        )],
    )
    .await;
    assert_both_fail(&s, |e| {
        assert!(
            matches!(e, VerifyError::BadSignature { tree_size: 18, .. }),
            "{e}"
        );
    })
    .await;
}

async fn a_forged_consistency_proof_is_found(h: &Harness) {
    let s = checkpointed(h).await;
    // Rewrite, in the node table, a subtree that the proof from 18 to 25 uses and the proof from
    // 10 to 18 does not: the log then serves a forged proof, while leaves and roots are intact.
    let earlier = merkle::nodes_for(&merkle::consistency_spans(10, 18));
    let node = merkle::nodes_for(&merkle::consistency_spans(18, 25))
        .into_iter()
        .find(|n| !earlier.contains(n))
        .expect("a node only the later proof uses");
    let fake = if h.backend == "sqlite" {
        "x'".to_owned() + &"ab".repeat(32) + "'"
    } else {
        "'\\x".to_owned() + &"ab".repeat(32) + "'"
    };
    tamper(
        h,
        &[format!(
            "UPDATE audit_merkle_nodes SET hash = {fake} WHERE level = {} AND idx = {}",
            node.level, node.index
        )],
    )
    .await;
    assert_both_fail(&s, |e| {
        assert!(
            matches!(e, VerifyError::InconsistentCheckpoints { from: 18, to: 25 }),
            "{e}"
        );
    })
    .await;
}

async fn erasing_personal_data_keys_keeps_every_proof_valid(h: &Harness) {
    let s = setup(h).await;
    // Personal data is stored as ciphertext; the key that opens it lives in a separate table.
    // (A one-time pad stands in for the real AEAD here: what matters is where the key lives.)
    let key: Vec<u8> = (0..16u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let name = "王秀英 13800000000".as_bytes();
    let sealed: Vec<u8> = name
        .iter()
        .zip(key.iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect();
    tamper(
        h,
        &[
            "CREATE TABLE subject_keys (subject TEXT PRIMARY KEY, dek TEXT NOT NULL)".into(),
            format!(
                "INSERT INTO subject_keys VALUES ('subject-1', '{}')",
                hex::encode(&key)
            ),
        ],
    )
    .await;
    append_events(&s.store, 5).await;
    s.store
        .append(AppendRequest::single(
            StreamId::new("subject-1").unwrap(),
            ExpectedVersion::NoStream,
            vec![NewEvent::json(
                "BeneficiaryRegistered",
                1,
                &serde_json::json!({ "subject": "subject-1", "name_sealed": hex::encode(&sealed) }),
            )
            .unwrap()],
            Metadata::actor("admin", "admin"),
        ))
        .await
        .unwrap();
    append_events(&s.store, 5).await;
    let cp = s.auditor.sign_checkpoint().await.unwrap();
    let before = verify_db(&s).await.expect("verifies before erasure");
    let proof_before = s.auditor.inclusion_proof(6, 11).await.unwrap();

    // Erasure: the key is deleted; the event, its leaf and the tree stay as they were.
    tamper(h, &["DELETE FROM subject_keys WHERE subject = 'subject-1'"]).await;
    let after = verify_db(&s).await.expect("verifies after erasure");
    assert_eq!(before, after);
    let proof_after = s.auditor.inclusion_proof(6, 11).await.unwrap();
    assert_eq!(proof_before, proof_after);
    verify_inclusion(
        5,
        11,
        &proof_after.leaf_hash,
        &proof_after.proof,
        &cp.root_hash,
    )
    .expect("the erased subject's event is still provably in the signed tree");
    let text = export_text(&s.auditor).await;
    verify_text(&text, &s.key).expect("the export verifies after erasure");
    // And the ciphertext no longer opens: the key is gone.
    let keys: i64 = match h.backend {
        "sqlite" => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&h.url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM subject_keys")
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        _ => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&h.url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM subject_keys")
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    };
    assert_eq!(keys, 0);
}

async fn tamper<S: AsRef<str>>(h: &Harness, statements: &[S]) {
    let owned: Vec<String> = statements.iter().map(|s| s.as_ref().to_owned()).collect();
    common::tamper(h, &owned).await;
}

// ---------------------------------------------------------------------------------------------
// kill -9: a child process appends from several tasks while the tree follower and a fast
// checkpointer run; the parent kills it mid-flight, twice, then checks that the tree catches up,
// checkpoints and verification agree, and no acknowledged event is missing.

const CHILD_URL: &str = "CARETRAIL_AUDIT_CRASH_URL";
const CHILD_KEY: &str = "CARETRAIL_AUDIT_CRASH_KEY";

mod crash {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_tree_and_checkpoints_survive_a_sigkill_during_appends() {
        if let Some(h) = crate::common::sqlite().await {
            crate::crash_test(&h).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_tree_and_checkpoints_survive_a_sigkill_during_appends() {
        if let Some(h) = crate::common::postgres().await {
            crate::crash_test(&h).await;
        }
    }
}

/// Not a test on its own: the child half of the crash tests. Without its environment variables
/// it returns at once.
#[test]
fn crash_child_entry() {
    let (Ok(url), Ok(key)) = (std::env::var(CHILD_URL), std::env::var(CHILD_KEY)) else {
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
        let config = AuditConfig {
            origin: "caretrail/test".into(),
            key: Some(KeySource::File(key.into())),
            batch: 500,
        };
        let auditor = Arc::new(
            Auditor::open(store.clone(), config)
                .await
                .expect("child opens auditor"),
        );
        tokio::spawn(auditor.clone().run_tree_follower());
        tokio::spawn(caretrail_audit::run_checkpointer(
            auditor.clone(),
            std::time::Duration::from_millis(20),
        ));
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let req = AppendRequest::single(
                        StreamId::new(format!("crash-{t}")).unwrap(),
                        ExpectedVersion::Any,
                        vec![
                            NewEvent::json("A", 1, &serde_json::json!({ "i": i })).unwrap(),
                            NewEvent::json("B", 1, &serde_json::json!({ "i": i })).unwrap(),
                        ],
                        Metadata::actor("tester", "admin"),
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

async fn crash_test(h: &Harness) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("audit.key");
    let mut acked: Vec<(u64, uuid::Uuid)> = Vec::new();
    for round in 0..2 {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_entry",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_URL, &h.url)
            .env(CHILD_KEY, &key_path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let target = acked.len() + 600;
        // The first round also runs until the child has signed a checkpoint (on a loaded
        // machine 600 acknowledgements can come before the first signing), so that the kills
        // below do hit a process that signs.
        let mut watcher: Option<Auditor> = None;
        let mut lines_read = 0u64;
        loop {
            if acked.len() >= target {
                if round > 0 {
                    break;
                }
                if lines_read.is_multiple_of(100) {
                    if watcher.is_none() {
                        // The child created the audit tables before its first append.
                        let store = h.open().await;
                        let config = AuditConfig {
                            origin: "caretrail/test".into(),
                            key: None,
                            batch: 500,
                        };
                        watcher = Some(Auditor::open(store, config).await.unwrap());
                    }
                    let signed = watcher.as_ref().unwrap().checkpoints().await.unwrap();
                    if !signed.is_empty() {
                        break;
                    }
                }
            }
            let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
                .await
                .expect("child stopped acknowledging")
                .expect("read child output")
                .unwrap_or_else(|| panic!("child exited early in round {round}"));
            lines_read += 1;
            if let Some(rest) = line.strip_prefix("ack ") {
                let (p, id) = rest.split_once(' ').expect("ack line");
                acked.push((p.parse().unwrap(), id.parse().unwrap()));
            }
        }
        // SIGKILL in the middle of appends, tree batches and checkpoint signing.
        child.start_kill().expect("kill child");
        child.wait().await.expect("reap child");
    }

    let store = h.open().await;
    let config = AuditConfig {
        origin: "caretrail/test".into(),
        key: Some(KeySource::File(key_path.clone())),
        batch: 500,
    };
    let auditor = Auditor::open(store.clone(), config).await.unwrap();
    let head = store.head().await.unwrap().position;
    let before = auditor.checkpoints().await.unwrap();
    assert!(
        !before.is_empty(),
        "the checkpointer signed nothing before the kills"
    );
    // The tree catches up to exactly the log, and a new checkpoint covers all of it.
    assert_eq!(auditor.update_tree().await.unwrap(), head);
    assert_eq!(auditor.sign_checkpoint().await.unwrap().tree_size, head);
    let key = auditor.verifier().unwrap();
    let report = verify_store(&auditor, &key, &VerifyOptions::default(), &mut |_, _| {})
        .await
        .expect("the database verifies after two kills");
    assert_eq!(report.events, head);
    assert_eq!(report.latest_checkpoint, Some(head));
    assert_eq!(
        report.checkpoints as usize,
        auditor.checkpoints().await.unwrap().len()
    );
    // No acknowledged event is missing or moved.
    let log = store
        .read_log(&caretrail_store::LogQuery::after(0, 1_000_000))
        .await
        .unwrap();
    for (p, id) in &acked {
        assert_eq!(
            log[(*p - 1) as usize].event_id,
            *id,
            "acknowledged event at {p}"
        );
    }
    // Every checkpoint signed before the kills is still proven by today's tree.
    for cp in before {
        assert_eq!(auditor.root_at(cp.tree_size).await.unwrap(), cp.root_hash);
    }
}

/// Issue 16's attack finding 7: the tree follower read the log inside its consumer transaction,
/// so it needed a second pooled connection while holding the first (on SQLite, with the write
/// lock). When every other pooled connection was a writer waiting for that lock, nothing moved
/// until the pool's 30 s acquire timeout, and 20 subscriptions created at once stalled the
/// database. With a pool of one connection the old order can never finish; the tree must be
/// updated with the one connection alone.
async fn the_tree_is_updated_with_one_pooled_connection(h: &Harness) {
    let dir = tempfile::tempdir().expect("key dir");
    let store = h
        .open_with(caretrail_store::StoreOptions {
            read_connections: 1,
            ..Default::default()
        })
        .await;
    let auditor = open_auditor(&store, &dir).await;
    append_events(&store, 40).await;
    let size = tokio::time::timeout(std::time::Duration::from_secs(10), auditor.update_tree())
        .await
        .expect("the tree is updated without waiting for a second pooled connection")
        .expect("update the tree");
    assert_eq!(size, 40);
}
