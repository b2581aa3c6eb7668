//! Search by name (`q`) at scale: registers N model workers (default 10,000) with generated
//! Chinese names through the command path, lets the projector build the read models, then
//! times `ReadModels::people_named` (the first, cold search that opens every name, and warm
//! ones) and the model workers list with a search, against the list without one.
//!
//! `cargo bench -p caretrail-projections --bench search -- [N] [postgres]`; SQLite in a
//! fresh file under `target/tmp` (removed first), PostgreSQL in a fresh database
//! (`CARETRAIL_PG_URL`).

// A bench that unwraps fails with the error, which is what it should do; the lint is for the
// service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use caretrail_app::view::Access;
use caretrail_app::{App, CommandMeta, FixedClock, KeyRing, MasterKey};
use caretrail_domain::command::{Command, RegisterModelWorker};
use caretrail_domain::vocab::Honour;
use caretrail_domain::{ModelWorkerId, Personal, Policy, RegionCode};
use caretrail_projections::Projector;
use caretrail_projections::query::{
    ModelWorkersQuery, NameIndex, NameQuery, Page, People, RegionFilter,
};
use chrono::NaiveDate;
use uuid::Uuid;

const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const GIVEN: &str = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建国志文斌鹏辉海燕春兰凤云飞林波宁峰亮根德来立美仙清";
const COUNTIES: [&str; 8] = [
    "330102", "330106", "330212", "330302", "330402", "330602", "330783", "330825",
];

fn master() -> MasterKey {
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap()
}

/// A seeded name of two or three characters (xorshift, so runs are comparable).
fn name(state: &mut u64) -> String {
    let mut next = |n: usize| {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state % n as u64) as usize
    };
    let s: Vec<char> = SURNAMES.chars().collect();
    let g: Vec<char> = GIVEN.chars().collect();
    let mut out = String::new();
    out.push(s[next(s.len())]);
    out.push(g[next(g.len())]);
    if next(3) > 0 {
        out.push(g[next(g.len())]);
    }
    out
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let pg = args.iter().any(|a| a == "postgres");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (url, _guard) = if pg {
            let h = caretrail_store::testing::postgres()
                .await
                .expect("CARETRAIL_PG_URL");
            (h.url.clone(), Some(h))
        } else {
            let path = format!("{}/search-bench-{n}.db", env!("CARGO_TARGET_TMPDIR"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            (format!("sqlite://{path}"), None)
        };
        let store = caretrail_store::connect(&url, Default::default())
            .await
            .unwrap();
        let keys = KeyRing::open(store.as_ref(), master()).await.unwrap();
        let now = NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let app = Arc::new(App::new(
            store,
            Arc::new(keys),
            Policy::default(),
            Arc::new(FixedClock(now)),
        ));
        // Register in 32 concurrent lanes (the store groups their appends).
        let t = Instant::now();
        let mut lanes = tokio::task::JoinSet::new();
        for lane in 0..32u64 {
            let app = app.clone();
            lanes.spawn(async move {
                let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (lane + 1);
                for i in (lane as usize..n).step_by(32) {
                    let command: Command = RegisterModelWorker {
                        model_worker_id: ModelWorkerId::from_u128(0xE000_0000 + i as u128),
                        honour: Honour::ProvincialModelWorker,
                        honour_year: None,
                        occupation: None,
                        region_code: RegionCode::parse(COUNTIES[i % COUNTIES.len()]).unwrap(),
                        name: Personal::plain(name(&mut seed)),
                        gender: None,
                        birth_year: None,
                        phone: None,
                        wechat: None,
                        address: None,
                        id_number: None,
                    }
                    .into();
                    app.execute(&command, &CommandMeta::new(Uuid::nil(), "admin"))
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(r) = lanes.join_next().await {
            r.unwrap();
        }
        println!(
            "registered {n} model workers in {:.1}s ({})",
            t.elapsed().as_secs_f64(),
            app.store().backend()
        );
        let projector = Projector::open(app.store().clone()).await.unwrap();
        projector.rebuild().await.unwrap();
        let rm = projector.read_models();
        // The keys the registrations cached are dropped, so the cold search opens every
        // data key from the database as a freshly started server would.
        let keys = Arc::new(KeyRing::open(app.store().as_ref(), master()).await.unwrap());
        let index = NameIndex::default();
        let access = Access::Personal;
        let common = NameQuery::parse("王").unwrap();
        let t = Instant::now();
        let found = rm
            .people_named(&keys, &access, &index, People::ModelWorkers, &common, None)
            .await
            .unwrap();
        println!(
            "cold search (opens {} names): {:.1} ms, {} match 王",
            index.len(),
            t.elapsed().as_secs_f64() * 1000.0,
            found.len()
        );
        let queries = ["王", "张伟", "李明", "林", "不存在"].map(|q| NameQuery::parse(q).unwrap());
        let list = |named: Option<Vec<Uuid>>, region: RegionFilter| ModelWorkersQuery {
            region,
            named,
            page: Page {
                limit: 50,
                offset: 0,
            },
            ..ModelWorkersQuery::default()
        };
        let hz = || RegionFilter {
            city: Some("330100".into()),
            county: None,
        };
        let mut search = Vec::new();
        let mut reused = Vec::new();
        let mut searched_list = Vec::new();
        let mut plain_list = Vec::new();
        for i in 0..300 {
            let q = &queries[i % queries.len()];
            let t = Instant::now();
            // As the HTTP layer does: the live version first, so that rows read since the
            // last applied batch are reused (every other run reads them again, as if a batch
            // had been applied in between).
            let version = if i % 2 == 0 {
                Some(projector.live_version().await.unwrap())
            } else {
                None
            };
            let named = rm
                .people_named(&keys, &access, &index, People::ModelWorkers, q, version)
                .await
                .unwrap();
            let took = t.elapsed().as_secs_f64() * 1000.0;
            if version.is_some() {
                reused.push(took)
            } else {
                search.push(took)
            }
            let region = if i % 2 == 0 {
                RegionFilter::default()
            } else {
                hz()
            };
            rm.model_workers(&keys, &access, &list(Some(named), region.clone()))
                .await
                .unwrap();
            searched_list.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            rm.model_workers(&keys, &access, &list(None, region))
                .await
                .unwrap();
            plain_list.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        for (what, v) in [
            ("warm search alone, rows read", search),
            (
                "warm search alone, rows reused at the same version (live_version included)",
                reused,
            ),
            ("list of 50 with a search (search + list)", searched_list),
            ("list of 50 without a search", plain_list),
        ] {
            println!(
                "{what}: p50 {:.2} ms, p99 {:.2} ms ({} runs)",
                pct(v.clone(), 0.5),
                pct(v.clone(), 0.99),
                v.len()
            );
        }
    });
}
