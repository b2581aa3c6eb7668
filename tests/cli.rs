//! End-to-end tests of the `caretrail` binary: the real executable, a real database file.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn caretrail() -> Command {
    Command::new(env!("CARGO_BIN_EXE_caretrail"))
}

#[test]
fn migrate_creates_an_empty_sqlite_store_and_events_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let out = caretrail().args(["migrate", "--db", &db]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sqlite store ready; head position 0"
    );
    assert!(dir.path().join("c.db").exists());
    let out = caretrail().args(["events", "--db", &db]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_database_url_fails_with_one_line_and_a_non_zero_exit() {
    let out = caretrail()
        .args(["migrate", "--db", "mysql://nowhere/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unsupported database URL"), "{err}");
}

#[test]
fn an_unwritable_sqlite_path_fails_with_one_line() {
    let out = caretrail()
        .args(["migrate", "--db", "sqlite:///nonexistent-dir/for/sure/c.db"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("caretrail: cannot open the store"), "{err}");
}

/// Runs the binary in `dir` (where it keeps its master key file) and returns stdout, or panics
/// with stderr.
fn run_in(dir: &std::path::Path, args: &[&str]) -> String {
    let out = caretrail().current_dir(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn gen_then_rebuild_then_replay_answer_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://g.db";
    let report: serde_json::Value = serde_json::from_str(&run_in(
        dir.path(),
        &["gen", "--db", db, "--events", "600", "--seed", "3"],
    ))
    .unwrap();
    assert!(report["events"].as_u64().unwrap() >= 600, "{report}");
    assert!(dir.path().join("caretrail.master.key").exists());
    // The same seed on a fresh store gives the same history.
    let again: serde_json::Value = serde_json::from_str(&run_in(
        dir.path(),
        &[
            "gen",
            "--db",
            "sqlite://h.db",
            "--events",
            "600",
            "--seed",
            "3",
        ],
    ))
    .unwrap();
    assert_eq!(again["events"], report["events"]);
    assert_eq!(again["commands"], report["commands"]);
    let rebuilt: serde_json::Value =
        serde_json::from_str(&run_in(dir.path(), &["projections", "rebuild", "--db", db])).unwrap();
    assert!(rebuilt["generation"].as_i64().unwrap() >= 1, "{rebuilt}");
    let replayed: serde_json::Value = serde_json::from_str(&run_in(
        dir.path(),
        &[
            "replay",
            "--db",
            db,
            "--position",
            "300",
            "--as-of",
            "2030-01-01",
        ],
    ))
    .unwrap();
    assert_eq!(replayed["as_of_position"], serde_json::json!(300));
    assert!(replayed["overview"]["model_workers_in_hardship"].is_number());
    // Events stream as JSON lines, and stop quietly when the reader goes away.
    let events = run_in(dir.path(), &["events", "--db", db, "--up-to", "5"]);
    assert_eq!(events.lines().count(), 5);
}

#[test]
fn bad_tool_input_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expect) in [
        (
            &["replay", "--db", "sqlite://x.db"][..],
            "give exactly one of --position or --recorded-at",
        ),
        (
            &["replay", "--db", "sqlite://x.db", "--position", "5"][..],
            "beyond the head",
        ),
        (
            &[
                "token",
                "create",
                "--db",
                "sqlite://x.db",
                "--role",
                "king",
                "--name",
                "n",
            ][..],
            "unknown role",
        ),
        (
            &[
                "token",
                "create",
                "--db",
                "sqlite://x.db",
                "--role",
                "director",
                "--name",
                "n",
            ][..],
            "director",
        ),
        (
            &["gen", "--db", "sqlite://x.db", "--events", "0"][..],
            "--events must be at least 1",
        ),
    ] {
        let out = caretrail()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn token_create_prints_a_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let token = run_in(
        dir.path(),
        &[
            "token",
            "create",
            "--db",
            "sqlite://t.db",
            "--role",
            "auditor",
            "--name",
            "审计",
        ],
    );
    assert!(token.trim().starts_with("ctk_"), "{token}");
    assert_eq!(token.trim().len(), 4 + 43);
}

/// `serve` stops on SIGTERM with a zero exit and leaves one self-contained database file: a
/// copy of the `.db` alone (without its write-ahead log) holds every event.
#[test]
fn serve_stops_on_sigterm_and_leaves_a_complete_database_file() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("c.db");
    let db = format!("sqlite://{}", db_path.display());
    let mut child = caretrail()
        .current_dir(dir.path())
        .args(["serve", "--db", &db, "--listen", "127.0.0.1:0", "--demo"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.starts_with("caretrail listening on "))
        .expect("the server says where it listens");
    assert!(listening.contains("127.0.0.1:"), "{listening}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let wal = dir.path().join("c.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the write-ahead log was folded into the file"
    );
    let events = run_in(dir.path(), &["events", "--db", &db]);
    let copy_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&db_path, copy_dir.path().join("c.db")).unwrap();
    std::fs::copy(
        dir.path().join("caretrail.master.key"),
        copy_dir.path().join("caretrail.master.key"),
    )
    .unwrap();
    let copy = format!("sqlite://{}", copy_dir.path().join("c.db").display());
    let copied = run_in(copy_dir.path(), &["events", "--db", &copy]);
    assert!(events.lines().count() > 10, "the demo was recorded");
    assert_eq!(copied, events, "the .db alone holds every event");
}

caretrail_store::both_backends!(token_list_and_revoke_manage_tokens_without_sql);

/// Runs the binary in `dir` and returns (success, stdout, stderr).
fn run_raw(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = caretrail().current_dir(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The id `token create` reports on stderr (`created ROLE token ID (NAME...)`).
fn created_id(stderr: &str) -> String {
    stderr
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no id in {stderr:?}"))
        .to_owned()
}

/// Hardening #5: revoking a token needed SQL, and tokens never expired. `token create
/// --expires-in`, `token list` (never a secret) and `token revoke` (one-line errors, non-zero
/// exit for an unknown id) manage them; a revoked token authenticates nothing.
async fn token_list_and_revoke_manage_tokens_without_sql(h: &caretrail_store::testing::Harness) {
    let dir = tempfile::tempdir().unwrap();
    let db = h.url.as_str();
    let create = |role: &str, name: &str, extra: &[&str]| {
        let mut args = vec![
            "token", "create", "--db", db, "--role", role, "--name", name,
        ];
        args.extend_from_slice(extra);
        let (ok, token, err) = run_raw(dir.path(), &args);
        assert!(ok, "{err}");
        (token.trim().to_owned(), created_id(&err), err)
    };
    let (auditor, auditor_id, _) = create("auditor", "审计组", &[]);
    let (integration, integration_id, err) =
        create("integration", "nightly\texport", &["--expires-in", "30d"]);
    assert!(err.contains("valid until"), "{err}");

    let (ok, list, err) = run_raw(dir.path(), &["token", "list", "--db", db]);
    assert!(ok, "{err}");
    assert!(
        !list.contains("ctk_") && !list.contains(&auditor[4..]),
        "{list}"
    );
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(
        lines[0],
        "id\trole\tdirector\tcreated\texpires\trevoked\tname"
    );
    assert_eq!(lines.len(), 3, "{list}");
    let row = |id: &str, list: &str| -> Vec<String> {
        list.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not in {list}"))
            .split('\t')
            .map(str::to_owned)
            .collect()
    };
    let a = row(&auditor_id, &list);
    assert_eq!((a[1].as_str(), a[2].as_str()), ("auditor", "-"));
    assert_eq!(
        (a[4].as_str(), a[5].as_str(), a[6].as_str()),
        ("-", "-", "审计组")
    );
    let i = row(&integration_id, &list);
    assert_eq!(i.len(), 7, "a tab in a name does not add a column: {i:?}");
    let expires = chrono::DateTime::parse_from_rfc3339(&i[4]).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "{i:?}");

    // Revoke: once, again (a no-op, said so), an unknown id, not an id.
    let (ok, out, err) = run_raw(dir.path(), &["token", "revoke", "--db", db, &auditor_id]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("revoked token {auditor_id}"));
    let (ok, out, _) = run_raw(dir.path(), &["token", "revoke", "--db", db, &auditor_id]);
    assert!(ok && out.contains("already revoked"), "{out}");
    let unknown = uuid::Uuid::now_v7().to_string();
    for (bad, expect) in [
        (unknown.as_str(), "there is no token with id"),
        ("not-a-token-id", "is not a token id"),
    ] {
        let (ok, _, err) = run_raw(dir.path(), &["token", "revoke", "--db", db, bad]);
        assert!(!ok, "{bad}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.starts_with("caretrail: ") && err.contains(expect),
            "{err}"
        );
    }
    let (_, list, _) = run_raw(dir.path(), &["token", "list", "--db", db]);
    assert_ne!(row(&auditor_id, &list)[5], "-", "{list}");
    assert_eq!(row(&integration_id, &list)[5], "-", "{list}");

    // What a server sees: the revoked token authenticates nothing, the other one does and
    // carries its expiry.
    let store = h.open().await;
    let tokens = caretrail_http::TokenStore::open(store.as_ref())
        .await
        .unwrap();
    assert!(tokens.authenticate(&auditor).await.unwrap().is_none());
    let p = tokens.authenticate(&integration).await.unwrap().unwrap();
    assert_eq!(p.token_id.to_string(), integration_id);
    assert_eq!(
        p.expires_at.map(|t| t.timestamp()),
        Some(expires.timestamp())
    );
}
