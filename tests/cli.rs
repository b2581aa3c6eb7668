//! End-to-end tests of the `caretrail` binary: the real executable, a real database file.

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
