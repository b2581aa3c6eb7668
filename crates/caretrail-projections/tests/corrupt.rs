//! A corrupt or mis-migrated read-model row is an error naming its table and column, never
//! a plausible default (issue 15, item 1): a bad UUID, a bad date, a NULL where a value is
//! required, a flag that is neither 0 nor 1 and, where the backend can store one, text in an
//! integer column. Each case corrupts one value of the demo's read models through plain SQL
//! and asks the dashboard that reads it.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use caretrail_app::view::Access;
use caretrail_app::{App, CommandMeta, FixedClock, KeyRing, MasterKey};
use caretrail_domain::{Policy, demo};
use caretrail_projections::query::{
    CaseloadQuery, CaseloadSort, IssuesQuery, ModelWorkersQuery, NameIndex, NameQuery, Page,
    People, RegionFilter, VisitStatusQuery, VisitsQuery,
};
use caretrail_projections::{ProjectionError, Projector, ReadModels};
use caretrail_store::Database;
use caretrail_store::testing::Harness;
use uuid::Uuid;

caretrail_store::both_backends!(
    a_corrupt_read_model_value_is_an_error_naming_its_table_and_column,
    a_model_worker_file_with_a_corrupt_value_is_an_error_not_a_default,
);

fn master() -> MasterKey {
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([5u8; 32])).unwrap()
}

/// The demo, projected; its read models and database.
async fn demo_read_models(h: &Harness) -> (App, ReadModels, Database) {
    let store = caretrail_store::connect(&h.url, Default::default())
        .await
        .expect("open store");
    let keys = KeyRing::open(store.as_ref(), master())
        .await
        .expect("key ring");
    let t = demo::today().and_hms_opt(4, 0, 0).unwrap().and_utc();
    let app = App::new(
        store,
        Arc::new(keys),
        Policy::default(),
        Arc::new(FixedClock(t)),
    );
    for cmd in demo::october_2021() {
        // A fresh command id each (the same one would answer the first command again).
        let admin = CommandMeta::new(Uuid::from_u128(0xAD), "admin");
        app.execute(&cmd, &admin).await.expect("demo command");
    }
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let rm = projector.read_models();
    let db = app.store().database();
    (app, rm, db)
}

/// Runs one statement against the read-model database.
async fn sql(db: &Database, statement: &str) {
    match db {
        Database::Sqlite(p) => {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(p)
                .await
                .unwrap();
        }
        Database::Postgres(p) => {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(p)
                .await
                .unwrap();
        }
    }
}

/// Sets `column` of one row of the live `table` (the one with the smallest id) to `value`
/// (SQL text), and returns the SQL that puts the old value back.
async fn corrupt(rm: &ReadModels, table: &str, column: &str, value: &str) -> String {
    let g = rm.generation().await.unwrap();
    let t = format!("rm{g}_{table}");
    let db = rm.database();
    let id = match db {
        Database::Sqlite(p) => {
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT MIN(id) FROM {t}")))
                .fetch_one(p)
                .await
                .unwrap()
        }
        Database::Postgres(p) => {
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT MIN(id) FROM {t}")))
                .fetch_one(p)
                .await
                .unwrap()
        }
    };
    // The old value, quoted as SQL (NULL, an integer or text).
    let old = match db {
        Database::Sqlite(p) => sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
            "SELECT quote({column}) FROM {t} WHERE id = '{id}'"
        )))
        .fetch_one(p)
        .await
        .unwrap(),
        Database::Postgres(p) => sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
            "SELECT quote_nullable({column}) FROM {t} WHERE id = '{id}'"
        )))
        .fetch_one(p)
        .await
        .unwrap(),
    };
    // `id` itself changes when it is the corrupted column: restore by the new value.
    let key = if column == "id" {
        value.trim_matches('\'').to_owned()
    } else {
        id.clone()
    };
    sql(
        db,
        &format!("UPDATE {t} SET {column} = {value} WHERE id = '{id}'"),
    )
    .await;
    format!("UPDATE {t} SET {column} = {old} WHERE id = '{key}'")
}

fn assert_corrupt<T: std::fmt::Debug>(
    answer: caretrail_projections::Result<T>,
    table: &str,
    column: &str,
) {
    match answer {
        Err(ProjectionError::CorruptRow {
            table: t,
            column: c,
            reason,
        }) => {
            assert_eq!((t, c.as_str()), (table, column), "{reason}");
            let e = ProjectionError::CorruptRow {
                table: t,
                column: c,
                reason,
            };
            assert_eq!(e.code(), "read_model_corrupt");
            assert!(!e.is_unavailable());
        }
        other => panic!("expected a corrupt {table}.{column}, got {other:?}"),
    }
}

fn status() -> VisitStatusQuery {
    VisitStatusQuery {
        as_of: demo::today(),
        region: RegionFilter::default(),
        status: None,
        include_ended: true,
        director_id: None,
        named: None,
        page: Page::default(),
    }
}

async fn a_corrupt_read_model_value_is_an_error_naming_its_table_and_column(h: &Harness) {
    let (app, rm, db) = demo_read_models(h).await;
    let keys = app.keys().clone();
    let workers = ModelWorkersQuery::default();
    let visits = VisitsQuery::default();
    let caseload = CaseloadQuery {
        as_of: demo::today(),
        role: None,
        sort: CaseloadSort::Id,
        named: None,
        page: Page::default(),
    };
    let issues = IssuesQuery {
        as_of: demo::today(),
        region: RegionFilter::default(),
        state: Some("all".into()),
        body_id: None,
        raised_from: None,
        raised_to: None,
        breached_only: false,
        page: Page::default(),
    };
    // Every dashboard answers before anything is corrupted.
    rm.visit_status(&keys, &Access::Personal, &status())
        .await
        .unwrap();
    rm.model_workers(&keys, &Access::Personal, &workers)
        .await
        .unwrap();
    rm.visits(&visits).await.unwrap();
    rm.director_caseload(&keys, &Access::Personal, &caseload)
        .await
        .unwrap();
    assert!(!rm.issues(&issues).await.unwrap().items.is_empty());

    // A bad date in a required date column.
    let undo = corrupt(&rm, "pairings", "due_on", "'2021-02-30'").await;
    assert_corrupt(
        rm.visit_status(&keys, &Access::Personal, &status()).await,
        "pairings",
        "due_on",
    );
    sql(&db, &undo).await;
    // A bad UUID in a required id, selected under another name.
    let undo = corrupt(&rm, "visits", "id", "'not-a-uuid'").await;
    assert_corrupt(rm.visits(&visits).await, "visits", "id");
    sql(&db, &undo).await;
    // A bad UUID in an optional column is as corrupt as in a required one.
    let undo = corrupt(&rm, "model_workers", "pairing_id", "'00000000-0000'").await;
    assert_corrupt(
        rm.model_workers(&keys, &Access::Personal, &workers).await,
        "model_workers",
        "pairing_id",
    );
    sql(&db, &undo).await;
    // A NULL where a value is required (SQLite's decoder would read it as "").
    let undo = corrupt(&rm, "directors", "role", "NULL").await;
    assert_corrupt(
        rm.director_caseload(&keys, &Access::Personal, &caseload)
            .await,
        "directors",
        "role",
    );
    sql(&db, &undo).await;
    // A NULL in a required integer (SQLite's decoder would read it as 0).
    let undo = corrupt(&rm, "model_workers", "visits", "NULL").await;
    assert_corrupt(
        rm.model_workers(&keys, &Access::Personal, &workers).await,
        "model_workers",
        "visits",
    );
    sql(&db, &undo).await;
    // A flag that is neither 0 nor 1.
    let undo = corrupt(&rm, "model_workers", "erased", "7").await;
    assert_corrupt(
        rm.model_workers(&keys, &Access::Personal, &workers).await,
        "model_workers",
        "erased",
    );
    sql(&db, &undo).await;
    // The name search reads the same columns packed into one value: a bad value is named,
    // and a NULL is refused rather than the row silently left out of every search.
    let index = NameIndex::default();
    let wu = NameQuery::parse("吴").unwrap();
    let search = |people| rm.people_named(&keys, &Access::Personal, &index, people, &wu, None);
    assert_eq!(search(People::ModelWorkers).await.unwrap().len(), 2);
    for (table, people, column, value) in [
        ("model_workers", People::ModelWorkers, "erased", "7"),
        (
            "model_workers",
            People::ModelWorkers,
            "name_event",
            "'not-a-uuid'",
        ),
        ("directors", People::Directors, "erased", "NULL"),
    ] {
        let undo = corrupt(&rm, table, column, value).await;
        assert_corrupt(search(people).await, table, column);
        sql(&db, &undo).await;
    }
    // A bad date in the issues board.
    let undo = corrupt(&rm, "issues", "raised_on", "'yesterday'").await;
    assert_corrupt(rm.issues(&issues).await, "issues", "raised_on");
    sql(&db, &undo).await;
    // A NULL in a row read through a LEFT JOIN: the pairing's director row is there, so its
    // flag is required (only a missing row reads as "nothing to show").
    let g = rm.generation().await.unwrap();
    let first_pairing_director =
        format!("(SELECT director_id FROM rm{g}_pairings ORDER BY id LIMIT 1)");
    sql(
        &db,
        &format!("UPDATE rm{g}_directors SET erased = NULL WHERE id = {first_pairing_director}"),
    )
    .await;
    assert_corrupt(
        rm.visit_status(&keys, &Access::Personal, &status()).await,
        "directors",
        "erased",
    );
    sql(
        &db,
        &format!("UPDATE rm{g}_directors SET erased = 0 WHERE id = {first_pairing_director}"),
    )
    .await;
    if matches!(db, Database::Sqlite(_)) {
        // Only SQLite can store text in an integer column.
        let undo = corrupt(&rm, "visits", "participants", "'many'").await;
        assert_corrupt(rm.visits(&visits).await, "visits", "participants");
        sql(&db, &undo).await;
    }

    // Restored, every dashboard answers again.
    rm.visit_status(&keys, &Access::Personal, &status())
        .await
        .unwrap();
    rm.model_workers(&keys, &Access::Personal, &workers)
        .await
        .unwrap();
    rm.visits(&visits).await.unwrap();
    rm.director_caseload(&keys, &Access::Personal, &caseload)
        .await
        .unwrap();
    rm.issues(&issues).await.unwrap();
}

async fn a_model_worker_file_with_a_corrupt_value_is_an_error_not_a_default(h: &Harness) {
    let (app, rm, _db) = demo_read_models(h).await;
    let keys = app.keys().clone();
    let first = rm
        .model_workers(&keys, &Access::Personal, &ModelWorkersQuery::default())
        .await
        .unwrap()
        .items[0]
        .model_worker_id;
    rm.model_worker_file(&keys, &Access::Personal, first, 0, 10)
        .await
        .unwrap()
        .expect("the first model worker's file");
    let _undo = corrupt(&rm, "model_workers", "registered_on", "'2021-13-01'").await;
    assert_corrupt(
        rm.model_worker_file(&keys, &Access::Personal, first, 0, 10)
            .await,
        "model_workers",
        "registered_on",
    );
}
