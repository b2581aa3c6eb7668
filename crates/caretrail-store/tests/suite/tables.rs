//! The store's extension points: other crates' table sets and the bulk log reader.

use super::*;

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
