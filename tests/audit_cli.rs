//! End-to-end tests of `caretrail audit ...`: the real executable on a real SQLite file, with
//! events appended through the store library beforehand.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use caretrail_store::{AppendRequest, ExpectedVersion, Metadata, NewEvent, StreamId};

fn caretrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caretrail"))
        .args(args)
        .env_remove("CARETRAIL_AUDIT_KEY")
        .env_remove("CARETRAIL_AUDIT_SIGNING_KEY")
        .env_remove("CARETRAIL_AUDIT_PUBLIC_KEY")
        .output()
        .expect("run caretrail")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A SQLite store with `n` events.
fn store_with(dir: &Path, n: u64) -> String {
    let db = format!("sqlite://{}", dir.join("care.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = caretrail_store::connect(&db, Default::default())
            .await
            .expect("store");
        for i in 0..n {
            store
                .append(AppendRequest::single(
                    StreamId::new(format!("visit-{}", i % 3)).expect("stream"),
                    ExpectedVersion::Any,
                    vec![
                        NewEvent::json("VisitRecorded", 1, &serde_json::json!({ "n": i }))
                            .expect("json"),
                    ],
                    Metadata::actor("admin", "admin"),
                ))
                .await
                .expect("append");
        }
    });
    db
}

#[test]
fn checkpoint_export_and_verify_agree_on_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with(dir.path(), 12);
    let key = ok(&caretrail(&["audit", "--db", &db, "public-key"]));
    let key = key.trim();
    assert!(key.starts_with("caretrail/log+"), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("care.db.audit-key"))
            .expect("key file beside the database")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let note = ok(&caretrail(&["audit", "--db", &db, "checkpoint"]));
    assert!(note.starts_with("caretrail/log\n12\n"), "{note}");
    assert!(note.contains("\n\n\u{2014} caretrail/log "), "{note}");

    let file = dir.path().join("export.jsonl");
    let out = caretrail(&[
        "audit",
        "--db",
        &db,
        "export",
        "--out",
        file.to_str().unwrap(),
    ]);
    ok(&out);
    // Piped stderr gets no progress bar, only the summary.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "exported 12 events and 1 checkpoints"
    );

    let out = ok(&caretrail(&[
        "audit",
        "verify",
        "--file",
        file.to_str().unwrap(),
        "--public-key",
        key,
    ]));
    assert!(
        out.starts_with("verified 12 events and 1 checkpoints; latest checkpoint at tree size 12"),
        "{out}"
    );
    let out = ok(&caretrail(&[
        "audit",
        "--db",
        &db,
        "verify",
        "--public-key",
        key,
    ]));
    assert!(
        out.starts_with("verified 12 events and 1 checkpoints"),
        "{out}"
    );
}

#[test]
fn verify_names_the_first_failing_position_in_one_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with(dir.path(), 9);
    ok(&caretrail(&["audit", "--db", &db, "checkpoint"]));
    let key = ok(&caretrail(&["audit", "--db", &db, "public-key"]));
    // A superuser edits event 4 behind the store's back.
    let path = dir.path().join("care.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("DROP TRIGGER events_refuse_update")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("UPDATE events SET data = '{\"n\":33}' WHERE position = 4")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let out = caretrail(&["audit", "--db", &db, "verify", "--public-key", key.trim()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("caretrail: verification failed: first failing position 4:"),
        "{err}"
    );
}

#[test]
fn verify_with_the_wrong_public_key_fails_at_the_first_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with(dir.path(), 3);
    ok(&caretrail(&["audit", "--db", &db, "checkpoint"]));
    let other = tempfile::tempdir().unwrap();
    let other_db = store_with(other.path(), 0);
    let wrong = ok(&caretrail(&["audit", "--db", &other_db, "public-key"]));
    let out = caretrail(&["audit", "--db", &db, "verify", "--public-key", wrong.trim()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("caretrail: verification failed: first failing checkpoint at tree size 3"),
        "{err}"
    );
}
