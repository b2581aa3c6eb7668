//! The page's first load on the demo, in a real browser: how many bytes it transfers and how
//! long it takes to be interactive. Targets (issue 17): ≤ 300 KB transferred, interactive
//! ≤ 1 s.
//!
//! The demo service runs in this process on a fresh SQLite store (the data `serve --demo`
//! loads) and Debian's headless Chromium loads the administrator's sign-in URL over loopback,
//! each run in a new browser session, so with an empty cache. "Interactive" is the page's own
//! `caretrail:interactive` performance mark, set when the first view has rendered with its
//! data (the overview's cards and charts), measured from the start of navigation. Bytes are the
//! Resource Timing API's `transferSize` (headers and encoded bodies) of the page, its assets
//! and every API request made until the network has been quiet for half a second; the live
//! event stream, which never completes, is not counted. A second load in the same session
//! shows the cached case.
//!
//! ```sh
//! cargo bench -p caretrail-web --bench first_load -- [RUNS]
//! ```
//!
//! Needs chromium and chromedriver (`apt-get install chromium chromium-driver`); without them
//! it says so and exits.

// A bench that unwraps fails with the error, which is what it should do.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use caretrail_app::MasterKey;
use caretrail_http::Role;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// Chromium without a display, a GPU, a sandbox or the network, at desktop size.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
    "--lang=zh-CN",
];

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// One load: milliseconds to the interactive mark and to DOMContentLoaded, bytes transferred
/// and requests made.
#[derive(Debug)]
struct Load {
    interactive_ms: f64,
    dom_content_loaded_ms: f64,
    bytes: u64,
    requests: u64,
}

async fn session(driver: &str, chromium: &PathBuf) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": CHROMIUM_FLAGS },
    });
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps.as_object().unwrap().clone())
        .connect(driver)
        .await
        .expect("a WebDriver session")
}

/// What the Resource and Navigation Timing APIs say so far.
const MEASURE: &str = r#"
    const nav = performance.getEntriesByType("navigation")[0];
    const res = performance.getEntriesByType("resource");
    const mark = performance.getEntriesByName("caretrail:interactive")[0];
    return {
        interactive: mark ? mark.startTime : null,
        dcl: nav ? nav.domContentLoadedEventEnd : null,
        bytes: (nav ? nav.transferSize : 0) + res.reduce((n, r) => n + r.transferSize, 0),
        requests: 1 + res.length,
    };
"#;

async fn load(c: &Client, url: &str) -> Load {
    c.goto(url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last: Option<(u64, Instant)> = None;
    loop {
        let m: Value = c.execute(MEASURE, vec![]).await.unwrap();
        let requests = m["requests"].as_u64().unwrap();
        if !m["interactive"].is_null() {
            // Quiet: no new request for half a second after the view became interactive.
            match last {
                Some((n, since))
                    if n == requests && since.elapsed() >= Duration::from_millis(500) =>
                {
                    return Load {
                        interactive_ms: m["interactive"].as_f64().unwrap(),
                        dom_content_loaded_ms: m["dcl"].as_f64().unwrap_or(f64::NAN),
                        bytes: m["bytes"].as_u64().unwrap(),
                        requests,
                    };
                }
                Some((n, _)) if n == requests => {}
                _ => last = Some((requests, Instant::now())),
            }
        }
        assert!(
            Instant::now() < deadline,
            "the page never became interactive: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spread(label: &str, unit: &str, mut xs: Vec<f64>) {
    xs.sort_by(f64::total_cmp);
    let median = xs[xs.len() / 2];
    println!(
        "{label}: min {:.1} {unit}, median {median:.1} {unit}, max {:.1} {unit}",
        xs[0],
        xs[xs.len() - 1]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let (Some(chromium), Some(chromedriver)) = (
        which("chromium").or_else(|| which("chromium-browser")),
        which("chromedriver"),
    ) else {
        println!("first_load: skipped: chromium and chromedriver are not installed");
        return;
    };

    let h = caretrail_store::testing::sqlite().await.expect("sqlite");
    let master = MasterKey::from_base64(&{
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    })
    .unwrap();
    let service = caretrail_http::testing::demo_service(&h, master, |_| {}).await;
    let admin = service
        .tokens
        .create(Role::Admin, None, "基准管理员")
        .await
        .unwrap()
        .1;
    // The sign-in URL `serve --demo` prints: the demo's month, with the token in the fragment.
    let url = format!("{}/login#token={admin}&as_of=2021-10-30", service.base);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = tokio::process::Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let driver = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let c = session(&driver, &chromium).await;
        let first = load(&c, &url).await;
        let again = load(&c, &url).await;
        println!("run {run}: empty cache {first:?}; cached {again:?}");
        cold.push(first);
        warm.push(again);
        c.close().await.unwrap();
    }
    spread(
        "interactive, empty cache",
        "ms",
        cold.iter().map(|l| l.interactive_ms).collect(),
    );
    spread(
        "DOMContentLoaded, empty cache",
        "ms",
        cold.iter().map(|l| l.dom_content_loaded_ms).collect(),
    );
    spread(
        "transferred, empty cache",
        "KB",
        cold.iter().map(|l| l.bytes as f64 / 1000.0).collect(),
    );
    spread(
        "requests, empty cache",
        "",
        cold.iter().map(|l| l.requests as f64).collect(),
    );
    spread(
        "interactive, cached",
        "ms",
        warm.iter().map(|l| l.interactive_ms).collect(),
    );
    spread(
        "transferred, cached",
        "KB",
        warm.iter().map(|l| l.bytes as f64 / 1000.0).collect(),
    );
    drop(service);
    drop(h);
}
