//! The read models end to end on both backends: the article's October 2021 numbers, erasure,
//! as-of replay against recorded live answers, rebuilds, the generator, and crashes.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use caretrail_app::view::Access;
use caretrail_app::{App, CommandMeta, FixedClock, KeyRing, MasterKey};
use caretrail_domain::{Command, Policy, demo};
use caretrail_projections::query::{
    CaseloadQuery, CaseloadSort, CoverageLevel, GiftGrouping, GiftsQuery, IssuesQuery, NameIndex,
    NameQuery, Page, People, RegionFilter, Shown, VisitStatus, VisitStatusQuery, VisitsQuery,
};
use caretrail_projections::{AsOf, Projector, ReadModels, Size, generate, replay};
use caretrail_store::testing::Harness;
use chrono::NaiveDate;
use serde_json::{Value, json};
use uuid::Uuid;

caretrail_store::both_backends!(
    dashboards_show_the_numbers_counted_by_hand_from_the_article,
    erased_names_read_as_erased_and_auditors_see_them_redacted,
    replay_as_of_a_position_equals_the_live_answer_recorded_then,
    a_late_event_changes_as_known_at_answers_but_not_earlier_ones,
    a_rebuild_switches_generations_and_equals_the_live_tables,
    generated_logs_are_valid_and_project_identically_live_and_rebuilt,
    a_row_budget_smaller_than_the_population_changes_no_row,
    a_kill_during_live_projection_or_rebuild_leaves_tables_equal_to_a_fresh_rebuild,
    a_correction_that_keeps_the_date_keeps_the_late_entry_flag,
    concurrent_first_searches_open_each_name_once,
);

fn date(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn master_for(url: &str) -> MasterKey {
    let mut bytes = [0u8; 32];
    for (i, b) in url.bytes().enumerate() {
        bytes[i % 32] ^= b;
    }
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode(bytes)).unwrap()
}

async fn app_on(url: &str) -> App {
    let store = caretrail_store::connect(url, Default::default())
        .await
        .expect("open store");
    let keys = KeyRing::open(store.as_ref(), master_for(url))
        .await
        .expect("key ring");
    let t = demo::today().and_hms_opt(4, 0, 0).unwrap().and_utc();
    App::new(
        store,
        Arc::new(keys),
        Policy::default(),
        Arc::new(FixedClock(t)),
    )
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

fn status_query(as_of: NaiveDate, status: Option<VisitStatus>) -> VisitStatusQuery {
    VisitStatusQuery {
        as_of,
        region: RegionFilter::default(),
        status,
        include_ended: false,
        director_id: None,
        named: None,
        page: Page::default(),
    }
}

fn gifts_by(group_by: GiftGrouping) -> GiftsQuery {
    GiftsQuery {
        from: date(2021, 1, 1),
        to: date(2021, 12, 31),
        region: RegionFilter::default(),
        group_by,
        page: Page::default(),
    }
}

async fn dashboards_show_the_numbers_counted_by_hand_from_the_article(h: &Harness) {
    let app = app_on(&h.url).await;
    run_demo(&app).await;
    let projector = Projector::open(app.store().clone()).await.unwrap();
    let head = app.store().head().await.unwrap().position;
    assert_eq!(projector.catch_up().await.unwrap(), head);
    let lag = projector.lag().await.unwrap();
    assert_eq!((lag.behind_events, lag.checkpoint), (0, head));
    let rm = projector.read_models();
    let all = RegionFilter::default();

    // Overview on the demo's "today": nine model workers in hardship, eight paired (陈良松 was
    // visited ad hoc), nine visits in October, 1,000 yuan (example amount) each, nine bunches
    // of flowers and one lot of goods (金立文); the 2019 pipe issue is closed.
    let o = rm.overview(demo::today(), &all).await.unwrap();
    assert_eq!(o.model_workers_in_hardship, 9);
    assert_eq!((o.paired, o.unpaired, o.active_pairings), (8, 1, 8));
    assert_eq!(o.coverage_percent, 88.9);
    assert_eq!((o.visits_this_month, o.visits_this_year), (9, 9));
    assert_eq!(o.cash_fen_this_year, 9 * 100_000);
    assert_eq!(o.cash_yuan_this_year, "9000.00");
    assert_eq!((o.goods_given_this_year, o.flowers_given_this_year), (1, 9));
    assert!(o.open_issues.is_empty(), "{:?}", o.open_issues);

    // Visits and gifts per city, counted by hand from the article's visits (`demo.rs`).
    let by_city = rm.gifts(&gifts_by(GiftGrouping::City)).await.unwrap().items;
    let counted: Vec<(&str, i64, i64, i64, i64)> = by_city
        .iter()
        .map(|g| {
            (
                g.key.as_str(),
                g.visits,
                g.cash_fen,
                g.goods_count,
                g.flowers_count,
            )
        })
        .collect();
    assert_eq!(
        counted,
        vec![
            ("330100", 3, 300_000, 0, 3), // 杭州: 俞培叶, 王美文, 张根仙
            ("330200", 1, 100_000, 0, 1), // 宁波: 吴根德 (鄞州区)
            ("330300", 2, 200_000, 0, 2), // 温州: 吴来红, 陈良松 (鹿城区)
            ("330400", 1, 100_000, 0, 1), // 嘉兴: 徐云华
            ("330700", 1, 100_000, 1, 1), // 金华: 金立文 (东阳市)
            ("330800", 1, 100_000, 0, 1), // 衢州: 夏汝清 (龙游县)
        ]
    );
    assert_eq!(by_city[0].label.as_deref(), Some("杭州市"));
    let by_month = rm
        .gifts(&gifts_by(GiftGrouping::Month))
        .await
        .unwrap()
        .items;
    assert_eq!(by_month.len(), 1);
    assert_eq!(
        (by_month[0].key.as_str(), by_month[0].visits),
        ("2021-10", 9)
    );
    // A county filter rolls nothing up: 龙游县 alone.
    let mut longyou = gifts_by(GiftGrouping::County);
    longyou.region.county = Some("330825".into());
    let l = rm.gifts(&longyou).await.unwrap().items;
    assert_eq!((l.len(), l[0].visits), (1, 1));

    // Overdue on 2022-04-20 under the default policy (183 days, 30 days' warning): the three
    // Hangzhou pairings visited 10-13 (due 2022-04-14) and 夏汝清 visited 10-18 (due 04-19);
    // the other four are due soon.
    let keys = app.keys();
    let as_of = date(2022, 4, 20);
    let overdue = rm
        .visit_status(
            keys,
            &Access::Personal,
            &status_query(as_of, Some(VisitStatus::Overdue)),
        )
        .await
        .unwrap();
    let days: Vec<i64> = overdue.items.iter().map(|p| p.days_overdue).collect();
    assert_eq!(days, vec![6, 6, 6, 1], "sorted by days overdue");
    assert_eq!(
        overdue.items[3].model_worker_name,
        Shown::Text("夏汝清".into())
    );
    assert_eq!(overdue.items[3].director_name, Shown::Text("潘志强".into()));
    let soon = rm
        .visit_status(
            keys,
            &Access::Personal,
            &status_query(as_of, Some(VisitStatus::DueSoon)),
        )
        .await
        .unwrap();
    assert_eq!(soon.items.len(), 4);
    let all_pairs = rm
        .visit_status(keys, &Access::Personal, &status_query(as_of, None))
        .await
        .unwrap();
    assert_eq!(all_pairs.items.len(), 8);
    // On the demo's "today" every pairing is on track.
    let today = rm
        .visit_status(
            keys,
            &Access::Personal,
            &status_query(demo::today(), Some(VisitStatus::OnTrack)),
        )
        .await
        .unwrap();
    assert_eq!(today.items.len(), 8);
    // A city filter: Hangzhou has three pairings; pagination splits them.
    let mut hz = status_query(as_of, None);
    hz.region.city = Some("330100".into());
    hz.page = Page {
        limit: 2,
        offset: 0,
    };
    let first = rm.visit_status(keys, &Access::Personal, &hz).await.unwrap();
    assert_eq!((first.items.len(), first.next_offset), (2, Some(2)));
    hz.page.offset = 2;
    let second = rm.visit_status(keys, &Access::Personal, &hz).await.unwrap();
    assert_eq!((second.items.len(), second.next_offset), (1, None));

    // Coverage per city on the demo's today.
    let cov = rm
        .coverage(demo::today(), CoverageLevel::City, &all)
        .await
        .unwrap();
    let hz = cov.iter().find(|c| c.region_code == "330100").unwrap();
    assert_eq!(
        (hz.in_hardship, hz.paired, hz.visited_last_183_days),
        (3, 3, 3)
    );
    let wz = cov.iter().find(|c| c.region_code == "330300").unwrap();
    assert_eq!(
        (wz.in_hardship, wz.paired, wz.visited_last_183_days),
        (2, 1, 2)
    );
    assert_eq!(cov.iter().map(|c| c.in_hardship).sum::<i64>(), 9);

    // Caseload: ten officers; 潘志强's visit was joint with two union officials.
    let caseload = rm
        .director_caseload(
            keys,
            &Access::Personal,
            &CaseloadQuery {
                as_of: demo::today(),
                role: None,
                sort: CaseloadSort::MostEngaged,
                named: None,
                page: Page::default(),
            },
        )
        .await
        .unwrap();
    assert_eq!(caseload.items.len(), 10);
    let pan = caseload
        .items
        .iter()
        .find(|c| c.director_id == demo::directors::PAN_ZHIQIANG.0)
        .unwrap();
    assert_eq!((pan.visits_this_year, pan.joint_visits_this_year), (1, 1));
    assert_eq!(pan.name, Shown::Text("潘志强".into()));
    let unpaired: Vec<_> = caseload
        .items
        .iter()
        .filter(|c| c.pairing_id.is_none())
        .collect();
    assert_eq!(
        unpaired.len(),
        2,
        "陈美芳 and 张春媚 accompany but are not paired"
    );

    // The model worker file of 张根仙: the pipe issue's whole life is in the timeline.
    let file = rm
        .model_worker_file(
            keys,
            &Access::Personal,
            demo::workers::ZHANG_GENXIAN.0,
            0,
            100,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file.name, Shown::Text("张根仙".into()));
    assert_eq!(file.pairings.len(), 1);
    let types: Vec<&str> = file
        .timeline
        .items
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    for t in [
        "ModelWorkerRegistered",
        "IssueRaised",
        "IssueEscalated",
        "IssueResolved",
        "VisitRecorded",
        "IssueResolutionConfirmed",
        "IssueClosed",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    assert!(
        file.timeline
            .items
            .windows(2)
            .all(|w| w[0].position < w[1].position)
    );
    assert!(file.timeline.items.iter().all(|e| e.actor_role == "admin"));

    // Issues: the pipe issue took 8 days to resolve; nothing is open.
    let summary = rm.issue_summary(demo::today(), &all).await.unwrap();
    assert_eq!(
        (summary.resolved, summary.median_days_to_resolve),
        (1, Some(8.0))
    );
    let mut closed = IssuesQuery {
        as_of: demo::today(),
        region: all.clone(),
        state: Some("closed".into()),
        body_id: None,
        raised_from: None,
        raised_to: None,
        breached_only: false,
        page: Page::default(),
    };
    let board = rm.issues(&closed).await.unwrap();
    assert_eq!(board.items.len(), 1);
    assert_eq!(
        board.items[0].escalated_to_name.as_deref(),
        Some("杭州市劳模工匠志愿服务队")
    );
    assert_eq!(board.items[0].age_bucket, ">90");
    closed.state = None;
    assert!(rm.issues(&closed).await.unwrap().items.is_empty());
}

async fn erased_names_read_as_erased_and_auditors_see_them_redacted(h: &Harness) {
    let app = app_on(&h.url).await;
    run_demo(&app).await;
    let erase = Command::parse(
        "ErasePersonalData",
        json!({ "subject_id": demo::workers::YU_PEIYE.0, "legal_basis": "subject_request" }),
    )
    .unwrap();
    app.execute(&erase, &admin()).await.unwrap();
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let rm = projector.read_models();
    let keys = app.keys();
    let as_of = demo::today();
    let personal = rm
        .visit_status(keys, &Access::Personal, &status_query(as_of, None))
        .await
        .unwrap();
    let yu = personal
        .items
        .iter()
        .find(|p| p.model_worker_id == demo::workers::YU_PEIYE.0)
        .unwrap();
    assert_eq!(yu.model_worker_name, Shown::Erased);
    assert_eq!(yu.director_name, Shown::Text("冯亚丽".into()));
    assert_eq!(
        serde_json::to_value(&yu.model_worker_name).unwrap(),
        json!({"erased": true})
    );
    let redacted = rm
        .visit_status(keys, &Access::Redacted, &status_query(as_of, None))
        .await
        .unwrap();
    assert!(
        redacted
            .items
            .iter()
            .all(|p| p.director_name == Shown::Redacted)
    );
    // No plaintext name anywhere in the read-model tables.
    let dump = format!("{:?}", rm.dump().await.unwrap());
    for name in ["俞培叶", "冯亚丽", "夏汝清", "潘志强"] {
        assert!(!dump.contains(name), "{name} stored in plaintext");
    }
}

/// Every dashboard answer that does not depend on keys, as JSON, for comparisons.
async fn snapshot(rm: &ReadModels, keys: &KeyRing) -> Value {
    let all = RegionFilter::default();
    let as_of = date(2022, 4, 20);
    json!({
        "overview": rm.overview(as_of, &all).await.unwrap(),
        "status": rm.visit_status(keys, &Access::Personal, &status_query(as_of, None)).await.unwrap(),
        "caseload": rm.director_caseload(keys, &Access::Personal, &CaseloadQuery {
            as_of, role: None, sort: CaseloadSort::Id, named: None, page: Page { limit: 500, offset: 0 } }).await.unwrap(),
        "gifts_month": rm.gifts(&gifts_by(GiftGrouping::Month)).await.unwrap(),
        "gifts_county": rm.gifts(&gifts_by(GiftGrouping::County)).await.unwrap(),
        "gifts_director": rm.gifts(&gifts_by(GiftGrouping::Director)).await.unwrap(),
        "coverage": rm.coverage(as_of, CoverageLevel::County, &all).await.unwrap(),
        "issues": rm.issue_summary(as_of, &all).await.unwrap(),
        "file": rm.model_worker_file(keys, &Access::Personal, demo::workers::ZHANG_GENXIAN.0, 0, 500)
            .await.unwrap().map(|f| serde_json::to_value(f).unwrap()),
        "tables": rm.dump().await.unwrap(),
    })
}

async fn replay_as_of_a_position_equals_the_live_answer_recorded_then(h: &Harness) {
    let app = app_on(&h.url).await;
    let projector = Projector::open(app.store().clone()).await.unwrap();
    let mut recorded = Vec::new();
    for (i, cmd) in demo::october_2021().iter().enumerate() {
        app.execute(cmd, &admin()).await.unwrap();
        if i % 9 == 4 || i + 1 == demo::october_2021().len() {
            let p = projector.catch_up().await.unwrap();
            assert_eq!(p, app.store().head().await.unwrap().position);
            recorded.push((p, snapshot(&projector.read_models(), app.keys()).await));
        }
    }
    assert!(recorded.len() >= 5);
    for (p, live) in &recorded {
        let replayed = replay(app.store().clone(), AsOf::Position(*p))
            .await
            .unwrap();
        assert_eq!(replayed.position, *p);
        let then = snapshot(&replayed.read_models, app.keys()).await;
        assert_eq!(
            &then, live,
            "replay at position {p} differs from the live answer"
        );
    }
}

async fn a_late_event_changes_as_known_at_answers_but_not_earlier_ones(h: &Harness) {
    let app = app_on(&h.url).await;
    run_demo(&app).await;
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let before = snapshot(&projector.read_models(), app.keys()).await;
    let known_before = app.store().head().await.unwrap().recorded_at.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Recorded now, about 2021-10-15: a second ad hoc visit to 陈良松.
    let late = Command::parse(
        "RecordVisit",
        json!({
            "visit_id": Uuid::from_u128(0x1a7e), "model_worker_id": demo::workers::CHEN_LIANGSONG.0,
            "adhoc_reason": "补录", "visited_on": "2021-10-15", "region_code": "330302",
            "participants": [{ "who": { "kind": "director", "director_id": demo::directors::ZHANG_CHUNMEI.0 }, "role": "lead" }],
            "gifts": [{ "kind": "cash", "amount_fen": 50000 }],
        }),
    )
    .unwrap();
    app.execute(&late, &admin()).await.unwrap();
    projector.catch_up().await.unwrap();
    let after = snapshot(&projector.read_models(), app.keys()).await;
    assert_ne!(before, after);

    // As known before the late entry: exactly the earlier answer.
    let then = replay(app.store().clone(), AsOf::RecordTime(known_before))
        .await
        .unwrap();
    assert_eq!(snapshot(&then.read_models, app.keys()).await, before);
    // As known now: the late visit counts.
    let now = replay(app.store().clone(), AsOf::RecordTime(chrono::Utc::now()))
        .await
        .unwrap();
    assert_eq!(snapshot(&now.read_models, app.keys()).await, after);
    let all = RegionFilter::default();
    let o = now.read_models.overview(demo::today(), &all).await.unwrap();
    assert_eq!((o.visits_this_year, o.cash_fen_this_year), (10, 950_000));
    // For business date 2021-10-16 (as known now): the late visit and the first three
    // Hangzhou visits happened by then.
    let by_date = replay(app.store().clone(), AsOf::BusinessDate(date(2021, 10, 16)))
        .await
        .unwrap();
    let o = by_date
        .read_models
        .overview(date(2021, 10, 16), &all)
        .await
        .unwrap();
    assert_eq!(o.visits_this_month, 4);
    // The live tables were never touched by the replays.
    assert_eq!(snapshot(&projector.read_models(), app.keys()).await, after);
}

async fn a_rebuild_switches_generations_and_equals_the_live_tables(h: &Harness) {
    let app = app_on(&h.url).await;
    run_demo(&app).await;
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let rm = projector.read_models();
    let live = rm.dump().await.unwrap();
    let g = rm.generation().await.unwrap();
    let report = projector.rebuild().await.unwrap();
    assert_eq!((report.previous_generation, report.generation), (g, g + 1));
    assert_eq!(rm.generation().await.unwrap(), g + 1);
    assert_eq!(rm.dump().await.unwrap(), live);
    // The live runner continues on the new generation.
    let erase = Command::parse(
        "ErasePersonalData",
        json!({ "subject_id": demo::workers::XU_YUNHUA.0, "legal_basis": "subject_request" }),
    )
    .unwrap();
    app.execute(&erase, &admin()).await.unwrap();
    let head = app.store().head().await.unwrap().position;
    assert_eq!(projector.catch_up().await.unwrap(), head);
    assert_ne!(rm.dump().await.unwrap(), live);
    // The library entry point (what `caretrail projections rebuild` calls) agrees.
    let after = rm.dump().await.unwrap();
    caretrail_projections::rebuild(app.store().clone())
        .await
        .unwrap();
    assert_eq!(rm.generation().await.unwrap(), g + 2);
    assert_eq!(rm.dump().await.unwrap(), after);
}

async fn generated_logs_are_valid_and_project_identically_live_and_rebuilt(h: &Harness) {
    let app = app_on(&h.url).await;
    let report = generate(&app, 7, Size::events(6_000)).await.unwrap();
    assert!(report.events >= 6_000, "{report:?}");
    let refused: u64 = report.rejected.values().sum();
    assert!(
        refused * 50 < report.commands,
        "too many refusals: {:?}",
        report.rejected
    );
    // Everything stored reads back into the domain.
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let rm = projector.read_models();
    let live = rm.dump().await.unwrap();
    let types: Vec<&str> = live.iter().map(|(t, _)| t.as_str()).collect();
    assert!(types.contains(&"visits"));
    let count = |t: &str| live.iter().find(|(n, _)| n == t).unwrap().1.len();
    assert!(count("visits") > 300 && count("issues") > 30 && count("pairings") > 30);
    projector.rebuild().await.unwrap();
    assert_eq!(rm.dump().await.unwrap(), live);
    // Same seed, same content.
    let other = caretrail_store::testing::sqlite().await.unwrap();
    let app2 = app_on(&other.url).await;
    let again = generate(&app2, 7, Size::events(6_000)).await.unwrap();
    assert_eq!(
        (again.events, again.commands),
        (report.events, report.commands)
    );
    let p2 = Projector::open(app2.store().clone()).await.unwrap();
    p2.catch_up().await.unwrap();
    let o1 = rm
        .overview(date(2020, 6, 30), &RegionFilter::default())
        .await
        .unwrap();
    let o2 = p2
        .read_models()
        .overview(date(2020, 6, 30), &RegionFilter::default())
        .await
        .unwrap();
    assert_eq!(o1, o2);
}

/// The applier's memory bound: with room for only 40 cached rows and 8 pairing links (the
/// log has more than three times as many model workers, directors and pairings), rows are
/// written mid-transaction, forgotten and read back over and over, contact dates are written
/// to rows that are not cached, and links start over and are read back. First live, from
/// the first event, in batches of 50 (so later batches meet rows of earlier ones); then
/// rebuilt in read batches of 50 inside long transactions (rows written before the commit);
/// then live again after the rebuild. Every table must equal the unbounded projection's.
async fn a_row_budget_smaller_than_the_population_changes_no_row(h: &Harness) {
    let app = app_on(&h.url).await;
    generate(&app, 11, Size::events(8_000)).await.unwrap();
    let bounded = Projector::open(app.store().clone())
        .await
        .unwrap()
        .with_row_budget(40)
        .with_link_budget(8)
        .with_bulk_batch(50)
        .with_bulk_commit(1_000_000);
    bounded.catch_up().await.unwrap();
    let followed = bounded.read_models().dump().await.unwrap();

    let unbounded = Projector::open(app.store().clone()).await.unwrap();
    unbounded.rebuild().await.unwrap();
    let expected = unbounded.read_models().dump().await.unwrap();
    let count = |t: &str| expected.iter().find(|(n, _)| n == t).unwrap().1.len();
    assert!(count("model_workers") + count("directors") + count("pairings") > 40 * 3);
    assert!(count("pairings") > 8 * 3);
    assert_eq!(followed, expected);

    let report = bounded.rebuild().await.unwrap();
    assert!(report.events >= 8_000, "{report:?}");
    assert_eq!(bounded.read_models().dump().await.unwrap(), expected);

    generate(&app, 12, Size::events(2_000)).await.unwrap();
    bounded.catch_up().await.unwrap();
    let followed = bounded.read_models().dump().await.unwrap();
    unbounded.rebuild().await.unwrap();
    assert_eq!(unbounded.read_models().dump().await.unwrap(), followed);
}

const CHILD_ENV: &str = "CARETRAIL_PROJECTIONS_CRASH_CHILD";

/// Not a test on its own: the child half of the crash test. With `URL|live` it generates
/// events while following them live; with `URL|rebuild` it rebuilds in small batches. It runs
/// until it is killed. Without the variable it returns at once.
#[test]
fn crash_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, mode) = spec.split_once('|').expect("URL|mode");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let app = app_on(url).await;
        let projector = Projector::open(app.store().clone())
            .await
            .expect("open")
            .with_bulk_batch(300);
        println!("ready");
        if mode == "rebuild" {
            loop {
                projector.rebuild().await.expect("rebuild");
            }
        } else {
            let generating = async {
                for seed in 100.. {
                    generate(&app, seed, Size::events(3_000))
                        .await
                        .expect("generate");
                }
            };
            tokio::select! {
                _ = generating => {}
                r = projector.run(std::future::pending()) => r.expect("run"),
            }
        }
    });
}

async fn kill_child(h: &Harness, mode: &str, until: impl AsyncFn() -> bool) {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, format!("{}|{mode}", h.url))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn child");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !until().await {
        assert!(
            std::time::Instant::now() < deadline,
            "child made no progress ({mode})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL mid-batch: no chance to finish a transaction or clean up.
    child.start_kill().expect("kill child");
    child.wait().await.expect("reap child");
}

async fn a_kill_during_live_projection_or_rebuild_leaves_tables_equal_to_a_fresh_rebuild(
    h: &Harness,
) {
    let app = app_on(&h.url).await;
    generate(&app, 1, Size::events(4_000)).await.unwrap();
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let store = app.store().clone();

    // 1. Killed while generating and following live.
    let start = projector.lag().await.unwrap().checkpoint;
    kill_child(h, "live", async || {
        projector
            .lag()
            .await
            .map(|l| l.checkpoint > start + 2_000)
            .unwrap_or(false)
    })
    .await;
    let head = store.head().await.unwrap().position;
    assert_eq!(projector.catch_up().await.unwrap(), head);
    let live = projector.read_models().dump().await.unwrap();
    projector.rebuild().await.unwrap();
    assert_eq!(
        projector.read_models().dump().await.unwrap(),
        live,
        "after a kill in live"
    );

    // 2. Killed in the middle of a rebuild: the old generation keeps serving, the rebuild
    //    resumes from its checkpoint and switches.
    let serving = projector.read_models().generation().await.unwrap();
    kill_child(h, "rebuild", async || match projector.lag().await {
        Ok(l) => l.rebuilding.is_some_and(|(_, cp)| cp > 1_000),
        Err(_) => false,
    })
    .await;
    let rm = projector.read_models();
    assert_eq!(
        rm.generation().await.unwrap(),
        serving,
        "the old generation still serves"
    );
    assert_eq!(rm.dump().await.unwrap(), live);
    let resumed = projector.rebuild().await.unwrap();
    assert!(resumed.generation > serving);
    assert_eq!(
        rm.dump().await.unwrap(),
        live,
        "after a kill during a rebuild"
    );
    // And a rebuild from position 0 agrees with the resumed one.
    projector.rebuild().await.unwrap();
    assert_eq!(rm.dump().await.unwrap(), live);
}

/// A visit entered late stays flagged as a late entry when a correction leaves its date alone
/// (`VisitCorrected.late_entry` speaks only of a corrected date; the read model once copied
/// its `false` over the visit's flag whatever the correction changed), live and rebuilt.
async fn a_correction_that_keeps_the_date_keeps_the_late_entry_flag(h: &Harness) {
    let app = app_on(&h.url).await;
    run_demo(&app).await;
    let visit_id = Uuid::from_u128(0x1a7e);
    let worker = demo::workers::YU_PEIYE.uuid();
    let director = "20211000-0000-0000-0000-000000000d01";
    // Recorded on the demo's today, 2021-10-30, about a visit two months before.
    let record = Command::parse(
        "RecordVisit",
        json!({
            "visit_id": visit_id, "model_worker_id": worker,
            "adhoc_reason": "补录", "visited_on": "2021-08-30", "region_code": "330106",
            "participants": [{"who": {"kind": "director", "director_id": director}, "role": "lead"}],
        }),
    )
    .unwrap();
    app.execute(&record, &admin()).await.unwrap();
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let rm = projector.read_models();
    let late = |rm: ReadModels| async move {
        let q = VisitsQuery {
            model_worker_id: Some(worker),
            include_voided: true,
            ..VisitsQuery::default()
        };
        let items = rm.visits(&q).await.unwrap().items;
        items
            .iter()
            .find(|v| v.visit_id == visit_id)
            .map(|v| v.late_entry)
            .expect("the visit is listed")
    };
    assert!(late(rm.clone()).await, "recorded two months late");
    let correct = Command::parse(
        "CorrectVisit",
        json!({ "visit_id": visit_id, "reason": "补记医疗建议",
                "changes": { "medical_advice_given": true } }),
    )
    .unwrap();
    app.execute(&correct, &admin()).await.unwrap();
    projector.catch_up().await.unwrap();
    assert!(
        late(rm.clone()).await,
        "a correction of another field cleared the flag"
    );
    projector.rebuild().await.unwrap();
    assert!(
        late(projector.read_models()).await,
        "the rebuild cleared the flag"
    );
}

/// After a start (or an erasure) the name index is empty and every search would open every
/// name at once; concurrent first searches instead open each name once, and all answer.
async fn concurrent_first_searches_open_each_name_once(h: &Harness) {
    let app = app_on(&h.url).await;
    run_demo(&app).await;
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let rm = projector.read_models();
    let index = NameIndex::default();
    let wu = NameQuery::parse("吴").unwrap();
    let searches = (0..8).map(|_| {
        rm.people_named(
            app.keys(),
            &Access::Personal,
            &index,
            People::ModelWorkers,
            &wu,
            None,
        )
    });
    for found in futures::future::join_all(searches).await {
        let mut want = vec![
            demo::workers::WU_LAIHONG.uuid(),
            demo::workers::WU_GENDE.uuid(),
        ];
        want.sort();
        assert_eq!(found.unwrap(), want);
    }
    // The demo's nine model workers, each opened once.
    assert_eq!(index.opened(), 9);
    assert_eq!(index.len(), 9);
    // Later searches open nothing, and at one live version they reuse the rows read first.
    let version = Some(projector.live_version().await.unwrap());
    for _ in 0..2 {
        let found = rm
            .people_named(
                app.keys(),
                &Access::Personal,
                &index,
                People::ModelWorkers,
                &wu,
                version,
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
    }
    assert_eq!(index.opened(), 9);
}
