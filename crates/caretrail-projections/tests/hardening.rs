//! Issue 14's read-model findings on both backends, with the poison appended straight
//! through the store (as an old log or another writer could hold it, past every command
//! check): a NUL in a body's name (#1) and amounts whose totals leave 64 bits (#7). The live
//! projection must keep advancing, a rebuild must succeed and equal it, and what the
//! dashboards answer must be sanitised text and exact totals, or an error, never a wrapped,
//! saturated or rounded number. A property test checks that live and rebuilt totals agree
//! for random histories with amounts near the cap and beyond it.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use caretrail_app::{App, CommandMeta, FixedClock, KeyRing, MasterKey};
use caretrail_domain::command::{AcknowledgeIssue, EscalateIssue, RaiseIssue, VisitChanges};
use caretrail_domain::event::{self as ev, Event};
use caretrail_domain::vocab::{
    BodyKind, ContactExchanged, EscalationChannel, Findings, Gift, GiftKind, IssueCategory, Urgency,
};
use caretrail_domain::{
    BodyId, Category, DEFAULT_MAX_GIFT_FEN, DirectorId, Fen, IssueId, ModelWorkerId, Personal,
    Policy, RegionCode, Sealed, StreamName, VisitId, demo,
};
use caretrail_projections::query::{GiftGrouping, GiftsQuery, Page, RegionFilter, VisitsQuery};
use caretrail_projections::{ProjectionError, Projector, ReadModels};
use caretrail_store::testing::Harness;
use caretrail_store::{AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent};
use chrono::NaiveDate;
use proptest::prelude::*;
use uuid::Uuid;

caretrail_store::both_backends!(
    hardening_1_a_nul_in_the_log_stops_neither_the_dashboards_nor_a_rebuild,
    hardening_7_totals_beyond_64_bits_are_an_error_never_a_wrapped_number,
);

fn date(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn master_for(url: &str) -> MasterKey {
    let mut bytes = [3u8; 32];
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

/// Appends `event` to its stream directly through the store, bypassing the command path.
async fn append(store: &Arc<dyn EventStore>, category: Category, id: Uuid, event: Event) {
    let stream = caretrail_app::store_id(&StreamName::new(category, id)).unwrap();
    let new = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        data: event.to_data().expect("serialisable").to_string(),
        business_date: event.business_date(),
    };
    store
        .append(AppendRequest::single(
            stream,
            ExpectedVersion::Any,
            vec![new],
            Metadata {
                actor_id: "test".into(),
                actor_role: "system".into(),
                ..Metadata::default()
            },
        ))
        .await
        .expect("append");
}

/// A sealed value the projection never opens (voids and corrections carry a reason).
fn sealed() -> Personal {
    Personal::Sealed(Sealed {
        subject: Uuid::from_u128(1),
        nonce: "n".into(),
        ciphertext: "c".into(),
    })
}

/// Hardening #1: `"团\u0000体"` registered before text was checked. PostgreSQL refuses a NUL
/// in `TEXT`, so the projector failed on every retry and a rebuild failed too. Now the body
/// is stored with U+FFFD in place of each character a command would refuse, the dashboards
/// go on with later events, and a rebuild equals the live tables.
async fn hardening_1_a_nul_in_the_log_stops_neither_the_dashboards_nor_a_rebuild(h: &Harness) {
    let app = app_on(&h.url).await;
    for cmd in demo::october_2021() {
        app.execute(&cmd, &admin()).await.unwrap();
    }
    let projector = Projector::open(app.store().clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let poisoned = BodyId::from_u128(0xBAD);
    append(
        app.store(),
        Category::Body,
        poisoned.0,
        ev::BodyRegistered {
            body_id: poisoned,
            kind: BodyKind::UnionCity,
            name: "团\u{0}体\u{FFFF}\u{1B}[2J".into(),
            region_code: None,
        }
        .into(),
    )
    .await;
    let head = app.store().head().await.unwrap().position;
    assert_eq!(projector.catch_up().await.unwrap(), head);
    // Later events are projected: an issue escalated to that body.
    let issue = IssueId::from_u128(0x1550);
    let today = demo::today();
    for cmd in [
        RaiseIssue {
            issue_id: issue,
            model_worker_id: demo::workers::YU_PEIYE,
            visit_id: None,
            category: IssueCategory::HousingRepair,
            description: Personal::plain("屋顶漏雨"),
            urgency: Urgency::High,
            on: None,
        }
        .into(),
        AcknowledgeIssue {
            issue_id: issue,
            owner: demo::directors::FENG_YALI,
            respond_by: today,
            on: None,
        }
        .into(),
        EscalateIssue {
            issue_id: issue,
            to_body: poisoned,
            channel: EscalationChannel::Letter,
            due_by: today,
            on: None,
        }
        .into(),
    ] {
        app.execute(&cmd, &admin()).await.unwrap();
    }
    let head = app.store().head().await.unwrap().position;
    assert_eq!(projector.catch_up().await.unwrap(), head);
    let rm = projector.read_models();
    let shown = |rm: ReadModels| async move {
        let summary = rm
            .issue_summary(today, &RegionFilter::default())
            .await
            .unwrap();
        summary
            .by_body
            .into_iter()
            .find(|b| b.body_id == poisoned.0)
            .and_then(|b| b.name)
    };
    let expected = "团\u{FFFD}体\u{FFFD}\u{FFFD}[2J";
    assert_eq!(shown(rm.clone()).await.as_deref(), Some(expected));
    let live = rm.dump().await.unwrap();
    projector
        .rebuild()
        .await
        .expect("the rebuild gets past the NUL");
    assert_eq!(rm.dump().await.unwrap(), live);
    assert_eq!(shown(rm).await.as_deref(), Some(expected));
}

const DIRECTOR: DirectorId = DirectorId::from_u128(0xD1);
const WORKER: ModelWorkerId = ModelWorkerId::from_u128(0xE1);

fn cash(fen: i64) -> Gift {
    Gift {
        kind: GiftKind::Cash,
        amount_fen: Some(Fen::new(fen).unwrap()),
        description: None,
    }
}

fn goods(fen: i64) -> Gift {
    Gift {
        kind: GiftKind::Goods,
        amount_fen: Some(Fen::new(fen).unwrap()),
        description: None,
    }
}

fn recorded(visit: VisitId, on: NaiveDate, county: &str, gifts: Vec<Gift>) -> Event {
    ev::VisitRecorded {
        visit_id: visit,
        model_worker_id: WORKER,
        pairing_id: None,
        director_id: Some(DIRECTOR),
        adhoc_reason: None,
        visited_on: on,
        region_code: RegionCode::parse(county).unwrap(),
        place: None,
        participants: vec![],
        gifts,
        findings: Findings::default(),
        contact_exchanged: ContactExchanged::default(),
        medical_advice_given: false,
        benefit_checks: vec![],
        late_entry: false,
    }
    .into()
}

fn gifts_query(group_by: GiftGrouping) -> GiftsQuery {
    GiftsQuery {
        from: date(2021, 1, 1),
        to: date(2021, 12, 31),
        region: RegionFilter::default(),
        group_by,
        page: Page::default(),
    }
}

/// The cash totals by month and by director, or that they are not representable.
async fn cash_totals(rm: &ReadModels) -> Result<Vec<(String, i64)>, String> {
    let mut out = Vec::new();
    for group in [GiftGrouping::Month, GiftGrouping::Director] {
        match rm.gifts(&gifts_query(group)).await {
            Ok(page) => out.extend(page.items.into_iter().map(|g| (g.key, g.cash_fen))),
            Err(ProjectionError::AmountNotRepresentable) => {
                return Err("amount_not_representable".into());
            }
            Err(e) => panic!("gifts: {e}"),
        }
    }
    Ok(out)
}

/// Hardening #7: the issue's two visits (9223372036854775807 and 100000 fen) showed a float
/// on the live dashboards and a wrapped negative after a rebuild. Each visit keeps its exact
/// amount, totals that leave 64 bits answer an error both live and rebuilt, and voiding the
/// huge visit brings the exact total back.
async fn hardening_7_totals_beyond_64_bits_are_an_error_never_a_wrapped_number(h: &Harness) {
    let app = app_on(&h.url).await;
    let store = app.store().clone();
    let (huge, small) = (VisitId::from_u128(0x51), VisitId::from_u128(0x52));
    let on = date(2021, 10, 13);
    append(
        &store,
        Category::Visit,
        huge.0,
        recorded(huge, on, "330106", vec![cash(i64::MAX)]),
    )
    .await;
    append(
        &store,
        Category::Visit,
        small.0,
        recorded(small, on, "330106", vec![cash(100_000)]),
    )
    .await;
    let projector = Projector::open(store.clone()).await.unwrap();
    projector.catch_up().await.unwrap();
    let rm = projector.read_models();
    let visits = rm.visits(&VisitsQuery::default()).await.unwrap().items;
    let mut amounts: Vec<i64> = visits.iter().map(|v| v.cash_fen).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, vec![100_000, i64::MAX]);
    assert_eq!(
        cash_totals(&rm).await,
        Err("amount_not_representable".into())
    );
    assert!(matches!(
        rm.overview(date(2021, 10, 31), &RegionFilter::default())
            .await,
        Err(ProjectionError::AmountNotRepresentable)
    ));
    let live = rm.dump().await.unwrap();
    projector.rebuild().await.unwrap();
    assert_eq!(
        rm.dump().await.unwrap(),
        live,
        "live and rebuilt tables differ"
    );
    assert_eq!(
        cash_totals(&rm).await,
        Err("amount_not_representable".into())
    );
    // Voiding the huge visit leaves the exact total, live and rebuilt.
    append(
        &store,
        Category::Visit,
        huge.0,
        ev::VisitVoided {
            visit_id: huge,
            model_worker_id: WORKER,
            reason: sealed(),
        }
        .into(),
    )
    .await;
    projector.catch_up().await.unwrap();
    let expected = Ok(vec![
        ("2021-10".to_owned(), 100_000),
        (DIRECTOR.0.to_string(), 100_000),
    ]);
    assert_eq!(cash_totals(&rm).await, expected);
    let o = rm
        .overview(date(2021, 10, 31), &RegionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        (o.cash_fen_this_year, o.cash_yuan_this_year.as_str()),
        (100_000, "1000.00")
    );
    let live = rm.dump().await.unwrap();
    projector.rebuild().await.unwrap();
    assert_eq!(rm.dump().await.unwrap(), live);
    assert_eq!(cash_totals(&rm).await, expected);
}

/// One step of a random history of visits.
#[derive(Clone, Debug)]
enum Step {
    /// Records visit `n` in month `month` (1-12) of county `county` (an index).
    Record {
        n: u8,
        month: u32,
        county: usize,
        cash: Vec<i64>,
        goods: Vec<i64>,
    },
    /// Replaces the gifts of visit `n`, if recorded and not voided.
    Correct { n: u8, cash: Vec<i64> },
    /// Voids visit `n`, if recorded and not voided.
    Void { n: u8 },
    /// Lets the live projection catch up here (so live batches end at random places).
    CatchUp,
}

const COUNTIES: [&str; 3] = ["330106", "330102", "330782"];

/// Amounts a log may hold: ordinary ones, ones at and near the cap, and (from logs older
/// than the cap, or other writers) huge ones up to the 64-bit limit.
fn amount() -> impl Strategy<Value = i64> {
    let cap = DEFAULT_MAX_GIFT_FEN.as_i64();
    prop_oneof![
        4 => 0..200_000i64,
        4 => (cap - 3)..=cap,
        1 => (i64::MAX - 3)..=i64::MAX,
        1 => (1i64 << 61)..(1i64 << 62),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0u8..12, 1u32..=12, 0..COUNTIES.len(), prop::collection::vec(amount(), 0..3),
              prop::collection::vec(amount(), 0..2))
            .prop_map(|(n, month, county, cash, goods)| Step::Record { n, month, county, cash, goods }),
        2 => (0u8..12, prop::collection::vec(amount(), 0..3)).prop_map(|(n, cash)| Step::Correct { n, cash }),
        2 => (0u8..12).prop_map(|n| Step::Void { n }),
        2 => Just(Step::CatchUp),
    ]
}

/// Applies `steps` to a fresh log on `h`, projecting live at every `CatchUp`, and checks that
/// the live tables equal a rebuild's, and that both answer the totals the steps add up to
/// (in 128 bits), or an error where a total leaves 64 bits.
async fn live_and_rebuilt_agree(h: &Harness, steps: &[Step]) {
    let app = app_on(&h.url).await;
    let store = app.store().clone();
    let projector = Projector::open(store.clone()).await.unwrap();
    // What each visit holds now: (month, cash, goods' value), `None` once voided.
    type Held = Option<(u32, i128, i128)>;
    let mut visits: std::collections::HashMap<u8, Held> = Default::default();
    let mut months = std::collections::BTreeSet::new();
    for step in steps {
        match step {
            Step::Record {
                n,
                month,
                county,
                cash: c,
                goods: g,
            } => {
                if visits.contains_key(n) {
                    continue;
                }
                let gifts: Vec<Gift> = c
                    .iter()
                    .map(|&a| cash(a))
                    .chain(g.iter().map(|&a| goods(a)))
                    .collect();
                let id = VisitId::from_u128(0x5000 + u128::from(*n));
                append(
                    &store,
                    Category::Visit,
                    id.0,
                    recorded(id, date(2021, *month, 10), COUNTIES[*county], gifts),
                )
                .await;
                let sum = |v: &[i64]| v.iter().map(|&a| i128::from(a)).sum();
                visits.insert(*n, Some((*month, sum(c), sum(g))));
                // A month's row stays once it has counted a visit, even at zero.
                months.insert(*month);
            }
            Step::Correct { n, cash: c } => {
                let Some(Some((month, _, _))) = visits.get(n).copied() else {
                    continue;
                };
                let id = VisitId::from_u128(0x5000 + u128::from(*n));
                let changes = VisitChanges {
                    gifts: Some(c.iter().map(|&a| cash(a)).collect()),
                    ..VisitChanges::default()
                };
                let event = ev::VisitCorrected {
                    visit_id: id,
                    model_worker_id: WORKER,
                    reason: sealed(),
                    changes,
                    late_entry: false,
                };
                append(&store, Category::Visit, id.0, event.into()).await;
                // The correction's list replaces every gift, goods included.
                visits.insert(*n, Some((month, c.iter().map(|&a| i128::from(a)).sum(), 0)));
            }
            Step::Void { n } => {
                if !matches!(visits.get(n), Some(Some(_))) {
                    continue;
                }
                let id = VisitId::from_u128(0x5000 + u128::from(*n));
                let event = ev::VisitVoided {
                    visit_id: id,
                    model_worker_id: WORKER,
                    reason: sealed(),
                };
                append(&store, Category::Visit, id.0, event.into()).await;
                visits.insert(*n, None);
            }
            Step::CatchUp => {
                projector.catch_up().await.unwrap();
            }
        }
    }
    projector.catch_up().await.unwrap();
    let rm = projector.read_models();
    let live_tables = rm.dump().await.unwrap();
    let live_totals = cash_totals(&rm).await;
    // The totals the steps add up to; a query answers an error when any of its rows' cash or
    // goods total leaves 64 bits.
    let mut by_month: std::collections::BTreeMap<u32, (i128, i128)> =
        months.iter().map(|m| (*m, (0, 0))).collect();
    for (month, cash, goods) in visits.values().flatten() {
        let row = by_month.entry(*month).or_default();
        row.0 += cash;
        row.1 += goods;
    }
    let director = by_month
        .values()
        .fold((0i128, 0i128), |a, r| (a.0 + r.0, a.1 + r.1));
    let rows: Vec<(String, (i128, i128))> = by_month
        .iter()
        .map(|(m, r)| (format!("2021-{m:02}"), *r))
        .chain((!by_month.is_empty()).then(|| (DIRECTOR.0.to_string(), director)))
        .collect();
    let fits = |v: i128| i64::try_from(v).is_ok();
    let expected: Result<Vec<(String, i64)>, String> =
        if rows.iter().all(|(_, (c, g))| fits(*c) && fits(*g)) {
            Ok(rows.into_iter().map(|(k, (c, _))| (k, c as i64)).collect())
        } else {
            Err("amount_not_representable".into())
        };
    assert_eq!(live_totals, expected, "live totals");
    projector.rebuild().await.unwrap();
    assert_eq!(
        rm.dump().await.unwrap(),
        live_tables,
        "rebuilt tables differ from live ones"
    );
    assert_eq!(cash_totals(&rm).await, expected, "rebuilt totals");
}

fn block_on(f: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Hardening #7: live and rebuilt totals agree, on SQLite (the rebuild's bulk path on a
    /// file), for random histories with amounts near the cap and beyond 64 bits.
    #[test]
    fn hardening_7_live_and_rebuilt_totals_agree_sqlite(steps in prop::collection::vec(step(), 1..40)) {
        block_on(async {
            let h = caretrail_store::testing::sqlite().await.unwrap();
            live_and_rebuilt_agree(&h, &steps).await;
        });
    }

    /// Hardening #7: the same on PostgreSQL.
    #[test]
    fn hardening_7_live_and_rebuilt_totals_agree_postgres(steps in prop::collection::vec(step(), 1..40)) {
        block_on(async {
            if let Some(h) = caretrail_store::testing::postgres().await {
                live_and_rebuilt_agree(&h, &steps).await;
            }
        });
    }
}
