//! Roster import benchmark: model-worker rosters as XLSX (every row with a resident ID
//! number) previewed and committed over HTTP against the test service (the demo, the
//! projector and the router in this process, on loopback): two different rosters of ROWS rows,
//! each previewed and committed (or, with `preview-only`, only previewed). `registered=N`
//! first imports N model workers in files of 2,000 rows, so that the timed previews compare
//! their numbers with N registered ones (each unsealed under its person's key). Targets:
//! preview of 10,000 rows ≤ 5 s, commit ≥ 1,000 rows/s (BENCHMARKS.md has the figures).
//!
//! ```sh
//! CARGO_BUILD_JOBS=1 cargo bench -p caretrail-http --bench imports -- \
//!     [ROWS] [sqlite|postgres] [preview-only] [registered=N]
//! ```
//!
//! PostgreSQL needs `CARETRAIL_PG_URL`. The service shares the process (and the machine's
//! cores) with the client and the projector that follows the log while rows commit.

// A bench that unwraps fails with the error, which is what it should do.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use caretrail_app::MasterKey;
use caretrail_http::Role;
use serde_json::Value;

/// A resident ID number with a valid check digit for 17 digits.
fn id_number(first17: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    format!("{first17}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

const REGIONS: [&str; 6] = ["330102", "330106", "330825", "330783", "330302", "330212"];
const HONOURS: [&str; 4] = ["全国劳动模范", "省劳动模范", "省先进工作者", "其他"];

/// A roster of `rows` model workers; `series` keeps two rosters' ID numbers apart.
fn roster(rows: usize, series: u32) -> Vec<u8> {
    roster_from(rows, series, 0)
}

/// A roster of `rows` model workers numbered from `first`.
fn roster_from(rows: usize, series: u32, first: usize) -> Vec<u8> {
    let header = [
        "姓名",
        "荣誉称号",
        "地区代码",
        "职业",
        "性别",
        "出生年份",
        "电话",
        "住址",
        "身份证号",
    ];
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name("名册").unwrap();
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for k in 0..rows {
        let r = (k + 1) as u32;
        let i = first + k;
        let region = REGIONS[i % REGIONS.len()];
        let cells = [
            format!("劳模{series}-{i}"),
            HONOURS[i % HONOURS.len()].to_owned(),
            region.to_owned(),
            "种粮大户".to_owned(),
            if i.is_multiple_of(2) { "男" } else { "女" }.to_owned(),
            format!("{}", 1940 + i % 40),
            format!("138{:08}", i),
            format!("浙江省杭州市西湖区文三路{i}号"),
            id_number(&format!("{region}{}{series}{:06}", 1940 + i % 40, i)),
        ];
        for (c, v) in cells.iter().enumerate() {
            ws.write_string(r, c as u16, v.as_str()).unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rows: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let backend = args.get(1).map_or("sqlite", String::as_str);
    // `preview-only`: time the previews and commit nothing (a commit of 10,000 rows outlasts
    // the server's 60 s idle timeout on a loaded machine; see BENCHMARKS.md).
    let preview_only = args.get(2).is_some_and(|a| a == "preview-only");
    let h = match backend {
        "postgres" => caretrail_store::testing::postgres()
            .await
            .expect("set CARETRAIL_PG_URL for the PostgreSQL run"),
        _ => caretrail_store::testing::sqlite().await.unwrap(),
    };
    let service =
        caretrail_http::testing::demo_service(&h, MasterKey::generate().unwrap(), |_| {}).await;
    let admin = service
        .tokens
        .create(Role::Admin, None, "bench")
        .await
        .unwrap()
        .1;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    println!(
        "backend {backend}, {rows} rows, load average before: {}",
        load()
    );
    // `registered=N`: first register N model workers with ID numbers, imported 2,000 rows a
    // file, so that the previews below compare against N registered numbers.
    let registered: usize = std::env::args()
        .find_map(|a| a.strip_prefix("registered=").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    let mut done = 0;
    let started = Instant::now();
    while done < registered {
        let n = (registered - done).min(2_000);
        let file = roster_from(n, 9, done);
        let res = client
            .post(format!(
                "{}/api/v1/imports?kind=model-workers",
                service.base
            ))
            .bearer_auth(&admin)
            .header(
                "content-type",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
            .body(file)
            .send()
            .await
            .unwrap();
        let preview: Value = res.json().await.unwrap();
        let res = client
            .post(format!(
                "{}/api/v1/imports/{}/commit",
                service.base,
                preview["id"].as_str().unwrap()
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let outcome: Value = res.json().await.unwrap();
        assert_eq!(outcome["written"], n, "{}", outcome["rows"][0]);
        done += n;
    }
    if registered > 0 {
        let s = started.elapsed().as_secs_f64();
        println!(
            "registered {registered} in files of 2,000 (preview + commit): {s:.1} s = {:.0} rows/s; load average {}",
            registered as f64 / s,
            load()
        );
    }
    for series in [1u32, 2] {
        let file = roster(rows, series);
        let started = Instant::now();
        let res = client
            .post(format!(
                "{}/api/v1/imports?kind=model-workers",
                service.base
            ))
            .bearer_auth(&admin)
            .header(
                "content-type",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
            .body(file.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let preview: Value = res.json().await.unwrap();
        let preview_s = started.elapsed().as_secs_f64();
        assert_eq!(preview["valid"], rows, "{}", preview["rows"][0]);
        println!("roster {series}: preview {preview_s:.2} s (target ≤ 5 s)");
        if preview_only {
            continue;
        }
        let started = Instant::now();
        let res = client
            .post(format!(
                "{}/api/v1/imports/{}/commit",
                service.base,
                preview["id"].as_str().unwrap()
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let outcome: Value = res.json().await.unwrap();
        let commit_s = started.elapsed().as_secs_f64();
        assert_eq!(outcome["written"], rows, "{}", outcome["rows"][0]);
        println!(
            "roster {series} ({} KiB XLSX, {} model workers registered before it): preview {preview_s:.2} s (target ≤ 5 s), commit {commit_s:.2} s = {:.0} rows/s (target ≥ 1,000); load average {}",
            file.len() / 1024,
            (series - 1) as usize * rows,
            rows as f64 / commit_s,
            load()
        );
    }
}
