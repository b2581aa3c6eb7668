//! Command handling end to end, through the real store, on both backends: the article's
//! October 2021 visits, idempotent retries, concurrent pairings, and crypto-shredding.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use caretrail_app::view::{Access, view};
use caretrail_app::{App, AppError, CommandMeta, FixedClock, KeyRing, MasterKey};
use caretrail_domain::{Command, Policy, demo};
use caretrail_store::testing::Harness;
use caretrail_store::{EventStore, LogQuery};
use serde_json::json;
use uuid::Uuid;

caretrail_store::both_backends!(
    the_october_2021_visits_are_recorded_and_read_back,
    a_retried_command_returns_its_first_result,
    concurrent_pairings_of_one_director_let_exactly_one_through,
    erasure_shreds_one_subject_and_keeps_the_log_intact,
    a_wrong_master_key_is_refused,
    keys_prepared_together_are_stored_and_an_erased_subject_stays_erased,
    attack_a_subject_erased_by_another_process_after_prepare_is_refused_when_prepared_again,
    attack_a_key_cached_by_another_server_is_closed_by_an_erasure_made_here,
);

fn demo_clock() -> Arc<FixedClock> {
    // Noon in Shanghai on the demo's "today".
    let t = demo::today().and_hms_opt(4, 0, 0).unwrap().and_utc();
    Arc::new(FixedClock(t))
}

async fn app_with(h: &Harness, master: MasterKey) -> Result<App, AppError> {
    let store = h.open().await;
    let keys = KeyRing::open(store.as_ref(), master).await?;
    Ok(App::new(
        store,
        Arc::new(keys),
        Policy::default(),
        demo_clock(),
    ))
}

/// A master key shared by every app opened on one harness.
fn master_for(h: &Harness) -> MasterKey {
    let mut bytes = [0u8; 32];
    for (i, b) in h.url.bytes().enumerate() {
        bytes[i % 32] ^= b;
    }
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode(bytes)).unwrap()
}

async fn app(h: &Harness) -> App {
    app_with(h, master_for(h)).await.expect("open app")
}

fn admin() -> CommandMeta {
    CommandMeta::new(Uuid::from_u128(0xAD), "admin")
}

async fn run_demo(app: &App) {
    for (i, cmd) in demo::october_2021().iter().enumerate() {
        app.execute(cmd, &admin())
            .await
            .unwrap_or_else(|e| panic!("demo command {i} ({}): {e}", cmd.name()));
    }
}

async fn log(store: &Arc<dyn EventStore>) -> Vec<caretrail_store::RecordedEvent> {
    store
        .read_log(&LogQuery::after(0, 1_000_000))
        .await
        .unwrap()
}

async fn the_october_2021_visits_are_recorded_and_read_back(h: &Harness) {
    let app = app(h).await;
    run_demo(&app).await;
    let events = log(app.store()).await;
    let count = |t: &str| events.iter().filter(|e| e.event_type == t).count();
    assert_eq!(
        count("VisitRecorded"),
        9,
        "nine visits in the article's table"
    );
    assert_eq!(count("BodyRegistered"), 5);
    assert_eq!(count("ModelWorkerRegistered"), 9);
    assert_eq!(count("PairAssigned"), count("DirectorPaired"));
    assert_eq!(count("PairAssigned"), count("ModelWorkerPaired"));
    assert!(count("PairAssigned") >= 8);
    // Every event records who, when and why.
    for e in &events {
        assert_eq!(e.actor_role, "admin");
        assert_eq!(e.actor_id, Uuid::from_u128(0xAD).to_string());
        assert!(e.command_id.is_some() && e.correlation_id.is_some());
        assert_eq!(e.recompute_leaf_hash(), e.leaf_hash);
    }
    // Visit dates are the business dates of their events.
    let visit_dates: Vec<String> = events
        .iter()
        .filter(|e| e.event_type == "VisitRecorded")
        .map(|e| e.business_date.unwrap().to_string())
        .collect();
    assert!(visit_dates.contains(&"2021-10-18".to_owned()));
    assert!(visit_dates.contains(&"2021-10-28".to_owned()));
    // No name is stored in plaintext anywhere in the log.
    for name in ["俞培叶", "冯亚丽", "夏汝清", "徐雄强", "潘志强"] {
        assert!(
            !events.iter().any(|e| e.data.contains(name)),
            "{name} is stored in plaintext"
        );
    }
    // An administrator reads names back; an auditor sees them redacted.
    let registered = events
        .iter()
        .find(|e| {
            e.event_type == "ModelWorkerRegistered"
                && e.stream_id.ends_with(&demo::workers::YU_PEIYE.to_string())
        })
        .expect("俞培叶 registered");
    let shown = view(app.keys(), registered, &Access::Personal)
        .await
        .unwrap();
    assert_eq!(shown.data["name"], json!("俞培叶"));
    let redacted = view(app.keys(), registered, &Access::Redacted)
        .await
        .unwrap();
    assert_eq!(redacted.data["name"], json!({ "redacted": true }));
    // Domain state folds from the stored events.
    let stream = caretrail_domain::StreamName::new(
        caretrail_domain::Category::ModelWorker,
        demo::workers::YU_PEIYE,
    );
    let domain_events = app.read_domain_stream(&stream).await.unwrap();
    assert!(
        domain_events
            .iter()
            .any(|e| e.event_type() == "ModelWorkerPaired")
    );
}

async fn a_retried_command_returns_its_first_result(h: &Harness) {
    let app = app(h).await;
    let id = Uuid::now_v7();
    let cmd = Command::parse(
        "RegisterModelWorker",
        json!({ "model_worker_id": id, "honour": "provincial_model_worker",
                "region_code": "330106", "name": "重试测试" }),
    )
    .unwrap();
    let meta = admin();
    let first = app.execute(&cmd, &meta).await.expect("first");
    // Deciding again would refuse (already registered): the retry must not be decided again.
    let again = app.execute(&cmd, &meta).await.expect("retry");
    assert!(again.deduplicated);
    assert_eq!(again.events, first.events);
    // The same command under a new id is a new command, and the domain refuses it.
    let err = app.execute(&cmd, &admin()).await.unwrap_err();
    assert_eq!(err.code(), "model_worker_already_registered", "{err}");
    assert_eq!(app.store().head().await.unwrap().position, 1);
}

async fn register_in_hardship(app: &App, id: Uuid) {
    let cmd = Command::parse(
        "RegisterModelWorker",
        json!({ "model_worker_id": id, "honour": "national_model_worker",
                "region_code": "330825", "name": "并发测试" }),
    )
    .unwrap();
    app.execute(&cmd, &admin()).await.unwrap();
    let cmd = Command::parse(
        "AssessHardship",
        json!({ "model_worker_id": id, "tier": "relative", "causes": ["old_age"] }),
    )
    .unwrap();
    app.execute(&cmd, &admin()).await.unwrap();
}

async fn concurrent_pairings_of_one_director_let_exactly_one_through(h: &Harness) {
    // Two server instances (two stores, two handlers) on one database.
    let a = Arc::new(app(h).await);
    let b = Arc::new(app(h).await);
    let director = Uuid::now_v7();
    let body = Uuid::now_v7();
    let cmd = Command::parse(
        "RegisterBody",
        json!({ "body_id": body, "kind": "association", "name": "测试协会" }),
    )
    .unwrap();
    a.execute(&cmd, &admin()).await.expect("register body");
    let cmd = Command::parse(
        "AppointDirector",
        json!({ "director_id": director, "body_id": body, "role": "standing_director",
                "term": { "from": "2021-01-01" }, "name": "测试理事" }),
    )
    .unwrap();
    a.execute(&cmd, &admin()).await.expect("appoint");
    let workers: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    for w in &workers {
        register_in_hardship(&a, *w).await;
    }
    let mut tasks = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        let cmd = Command::parse(
            "AssignPair",
            json!({ "pairing_id": Uuid::now_v7(), "director_id": director,
                    "model_worker_id": w, "effective_from": "2021-06-01" }),
        )
        .unwrap();
        tasks.push(tokio::spawn(
            async move { app.execute(&cmd, &admin()).await },
        ));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), "director_already_paired", "{e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one pairing for the director");
    let events = log(a.store()).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "DirectorPaired")
            .count(),
        1
    );
}

/// Every byte the database keeps for this harness: the SQLite files, or every row of every
/// table as text on PostgreSQL.
async fn raw_database_bytes(h: &Harness) -> Vec<u8> {
    if h.backend == "sqlite" {
        let path = h.url.trim_start_matches("sqlite://");
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(bytes);
            }
        }
        all
    } else {
        let pool = sqlx::PgPool::connect(&h.url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&pool)
                .await
                .unwrap();
        let mut all = Vec::new();
        for t in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT t::text FROM \"{t}\" t"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            for r in rows {
                all.extend(r.into_bytes());
            }
        }
        all
    }
}

fn contains(haystack: &[u8], needle: impl AsRef<[u8]>) -> bool {
    let needle = needle.as_ref();
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn erasure_shreds_one_subject_and_keeps_the_log_intact(h: &Harness) {
    let app = app(h).await;
    run_demo(&app).await;
    let subject = Uuid::now_v7();
    let (name, phone, address) = ("删除测试人", "13800009999", "杭州市西湖区测试路1号");
    let cmd = Command::parse(
        "RegisterModelWorker",
        json!({ "model_worker_id": subject, "honour": "provincial_model_worker",
                "region_code": "330106", "name": name, "phone": phone, "address": address }),
    )
    .unwrap();
    app.execute(&cmd, &admin()).await.unwrap();
    let before = log(app.store()).await;
    let registered = before.last().unwrap().clone();
    let shown = view(app.keys(), &registered, &Access::Personal)
        .await
        .unwrap();
    assert_eq!(shown.data["phone"], json!(phone));

    let wrapped_key = stored_wrapped_key(h, subject).await;
    assert!(contains(&raw_database_bytes(h).await, &wrapped_key));
    let erase = Command::parse(
        "ErasePersonalData",
        json!({ "subject_id": subject, "legal_basis": "subject_request" }),
    )
    .unwrap();
    app.execute(&erase, &admin()).await.expect("erase");
    assert!(app.keys().is_erased(subject).await.unwrap());

    // The log is unchanged and still verifies; the erasure is itself an event.
    let after = log(app.store()).await;
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(after.last().unwrap().event_type, "PersonalDataErased");
    assert!(!after.last().unwrap().data.contains(name));
    for e in &after {
        assert_eq!(
            e.recompute_leaf_hash(),
            e.leaf_hash,
            "position {}",
            e.position
        );
    }
    // The subject's fields now read as erased, for a fresh process too.
    let fresh = app_with(h, master_for(h)).await.unwrap();
    for keys in [app.keys().as_ref(), fresh.keys().as_ref()] {
        let shown = view(keys, &registered, &Access::Personal).await.unwrap();
        assert_eq!(shown.data["name"], json!({ "erased": true }));
        assert_eq!(shown.data["phone"], json!({ "erased": true }));
    }
    // Everyone else's data still opens.
    let other = after
        .iter()
        .find(|e| {
            e.event_type == "ModelWorkerRegistered"
                && e.stream_id
                    .ends_with(&demo::workers::WANG_MEIWEN.to_string())
        })
        .unwrap();
    let shown = view(fresh.keys(), other, &Access::Personal).await.unwrap();
    assert_eq!(shown.data["name"], json!("王美文"));
    // New personal data for the erased subject is refused.
    let again = Command::parse(
        "RecordRelocation",
        json!({ "model_worker_id": subject, "region_code": "330102", "address": "新地址" }),
    )
    .unwrap();
    match app.execute(&again, &admin()).await {
        Err(e) => assert!(
            ["subject_erased", "personal_data_erased"].contains(&e.code()),
            "{e}"
        ),
        Ok(_) => panic!("stored new personal data for an erased subject"),
    }
    // Scan every byte the database holds: no plaintext of the subject anywhere.
    let raw = raw_database_bytes(h).await;
    assert!(!raw.is_empty());
    for secret in [name, phone, address] {
        assert!(!contains(&raw, secret), "{secret} found in the database");
    }
    // Nor the destroyed key: secure_delete and the truncated WAL leave no copy in the files.
    assert!(
        !contains(&raw, &wrapped_key),
        "the erased data key is still in the database"
    );
}

/// The subject's wrapped data key as the bytes the database keeps (raw on SQLite, the text
/// form of `bytea` on PostgreSQL, matching `raw_database_bytes`).
async fn stored_wrapped_key(h: &Harness, subject: Uuid) -> Vec<u8> {
    if h.backend == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&h.url).await.unwrap();
        sqlx::query_scalar("SELECT wrapped_key FROM subject_keys WHERE subject_id = ?1")
            .bind(subject)
            .fetch_one(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&h.url).await.unwrap();
        let text: String =
            sqlx::query_scalar("SELECT wrapped_key::text FROM subject_keys WHERE subject_id = $1")
                .bind(subject)
                .fetch_one(&pool)
                .await
                .unwrap();
        text.into_bytes()
    }
}

/// `KeyRing::prepare` (a roster import's data keys, made in one transaction): keys it makes
/// are stored, not only cached, so another process opens what this one seals; a subject met
/// twice, or already keyed by another process, keeps one key; an erased subject stays erased;
/// more subjects than one statement holds are all keyed.
async fn keys_prepared_together_are_stored_and_an_erased_subject_stays_erased(h: &Harness) {
    let one = app(h).await;
    let other = app(h).await;
    let erased = Uuid::now_v7();
    one.keys().erase(erased).await.unwrap();
    let keyed_elsewhere = Uuid::now_v7();
    let event = Uuid::now_v7();
    let sealed_elsewhere = other
        .keys()
        .seal(keyed_elsewhere, event, "别处已有密钥")
        .await
        .unwrap();
    let mut subjects: Vec<Uuid> = (0..1_200).map(|_| Uuid::now_v7()).collect();
    subjects.push(subjects[0]);
    subjects.push(erased);
    subjects.push(keyed_elsewhere);
    one.keys().prepare(&subjects).await.unwrap();

    for subject in [subjects[0], subjects[1_199]] {
        let sealed = one.keys().seal(subject, event, "王建国").await.unwrap();
        assert_eq!(
            other
                .keys()
                .unseal(&sealed, event)
                .await
                .unwrap()
                .as_deref(),
            Some("王建国"),
            "a prepared key is stored, so another process opens what this one sealed"
        );
    }
    assert_eq!(
        one.keys()
            .unseal(&sealed_elsewhere, event)
            .await
            .unwrap()
            .as_deref(),
        Some("别处已有密钥"),
        "a subject keyed before keeps its key"
    );
    assert!(matches!(
        one.keys().seal(erased, event, "不应存入").await,
        Err(caretrail_app::KeyError::SubjectErased(s)) if s == erased
    ));
    assert!(other.keys().is_erased(erased).await.unwrap());
}

/// Attack (two instances on one database): a roster commit on one instance prepares the keys
/// of all its people, is cut half-way, and one of the people it has not written yet is erased
/// through another instance. Committed again, the first instance prepares the same people
/// again: it must see the erasure in the database rather than trust the key it kept in memory,
/// or it would seal the erased person's data under that key and keep serving it.
async fn attack_a_subject_erased_by_another_process_after_prepare_is_refused_when_prepared_again(
    h: &Harness,
) {
    let one = app(h).await;
    let other = app(h).await;
    let subjects: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    one.keys().prepare(&subjects).await.unwrap();
    other.keys().erase(subjects[1]).await.unwrap();
    one.keys().prepare(&subjects).await.unwrap();
    let event = Uuid::now_v7();
    assert!(matches!(
        one.keys().seal(subjects[1], event, "不应存入").await,
        Err(caretrail_app::KeyError::SubjectErased(s)) if s == subjects[1]
    ));
    assert!(one.keys().is_erased(subjects[1]).await.unwrap());
    // The others keep their keys: what one seals, the other opens.
    let sealed = one.keys().seal(subjects[2], event, "王建国").await.unwrap();
    assert_eq!(
        other
            .keys()
            .unseal(&sealed, event)
            .await
            .unwrap()
            .as_deref(),
        Some("王建国")
    );
}

async fn a_wrong_master_key_is_refused(h: &Harness) {
    let app = app(h).await;
    run_demo(&app).await;
    let err = app_with(h, MasterKey::generate().unwrap())
        .await
        .err()
        .expect("a different master key must be refused");
    assert!(
        matches!(err, AppError::Keys(caretrail_app::KeyError::WrongMasterKey)),
        "{err}"
    );
}

#[test]
fn a_master_key_file_is_created_owner_only_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let _first = MasterKey::load_or_create(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A key others can read is refused rather than used.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(MasterKey::load_or_create(&path).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let _again = MasterKey::load_or_create(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

/// Two servers on one database: the second has opened a person's name (their key is in its
/// cache) when the first erases them. The second follows the log, so the name stops opening
/// there too within the propagation bound, without a restart; and while its follower runs it
/// reports into the health registry, so a dead follower makes the server not ready. (On SQLite
/// another process's commits are seen only by polling the head; CI caught a first version whose
/// own wait timed out together with that poll and so never saw them.)
async fn attack_a_key_cached_by_another_server_is_closed_by_an_erasure_made_here(h: &Harness) {
    let here = app(h).await;
    let there = app(h).await;
    let subject = Uuid::now_v7();
    let cmd = Command::parse(
        "RegisterModelWorker",
        json!({ "model_worker_id": subject, "honour": "provincial_model_worker",
                "region_code": "330106", "name": "缓存测试人", "phone": "13800001111" }),
    )
    .unwrap();
    here.execute(&cmd, &admin()).await.unwrap();
    let registered = log(here.store()).await.last().unwrap().clone();
    let follower = tokio::spawn(caretrail_app::erasures::follow_erasures(
        there.store().clone(),
        there.keys().clone(),
    ));
    // The follower is registered and reports its place in the log.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !there
        .store()
        .health()
        .report()
        .iter()
        .any(|t| t.task == "keys.erasures" && t.position.is_some())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the follower never reported"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Opened there after the follower started (which empties the cache once): the key is now
    // in that server's cache, and only the log can tell it about the erasure.
    let opened = view(there.keys(), &registered, &Access::Personal)
        .await
        .unwrap();
    assert_eq!(opened.data["name"], json!("缓存测试人"));
    let epoch = there.keys().erasures();

    let erase = Command::parse(
        "ErasePersonalData",
        json!({ "subject_id": subject, "legal_basis": "subject_request" }),
    )
    .unwrap();
    here.execute(&erase, &admin()).await.expect("erase");
    let bound = caretrail_app::erasures::propagation_bound(there.store().as_ref())
        + std::time::Duration::from_secs(2);
    let erased_at = std::time::Instant::now();
    loop {
        let shown = view(there.keys(), &registered, &Access::Personal)
            .await
            .unwrap();
        if shown.data["name"] == json!({ "erased": true }) && there.keys().erasures() > epoch {
            assert_eq!(shown.data["phone"], json!({ "erased": true }));
            break;
        }
        assert!(
            erased_at.elapsed() < bound,
            "the other server still opens the name {:?} after the erasure",
            erased_at.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Nothing new can be sealed for the person there either.
    assert!(matches!(
        there.keys().seal(subject, Uuid::now_v7(), "新数据").await,
        Err(caretrail_app::KeyError::SubjectErased(s)) if s == subject
    ));
    follower.abort();
    let _ = follower.await;
    // Stopped, it says so: the registry reports the task as not alive.
    assert!(
        there
            .store()
            .health()
            .report()
            .iter()
            .any(|t| t.task == "keys.erasures" && t.state == caretrail_store::TaskState::Stopped),
        "a stopped follower still counts as alive"
    );
}
