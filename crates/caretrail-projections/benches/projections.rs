//! Projection benchmarks: a full rebuild from a generated log (events/s, peak RSS), live lag
//! under sustained appends, and dashboard query latency (p50/p99) at that size.
//!
//! `cargo bench -p caretrail-projections --bench projections -- [EVENTS] [postgres]
//! [rebuild-only]` (defaults: 1,000,000 events on SQLite; `rebuild-only` skips the query and
//! live phases). The generated log is kept in
//! `target/proj-bench-EVENTS.db` and reused by later runs.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use caretrail_app::view::Access;
use caretrail_app::{App, FixedClock, KeyRing, MasterKey};
use caretrail_domain::Policy;
use caretrail_projections::query::{
    CaseloadQuery, CaseloadSort, CoverageLevel, GiftGrouping, GiftsQuery, IssuesQuery, Page,
    RegionFilter, VisitStatus, VisitStatusQuery,
};
use caretrail_projections::{Projector, Size, generate};
use chrono::NaiveDate;

/// One `kB` field of `/proc/self/status`, in MB (0 where Linux does not report it).
fn status_mb(status: &str, name: &str) -> f64 {
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn peak_rss_mb() -> f64 {
    status_mb(
        &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
        "VmHWM:",
    )
}

/// The current resident set split as Linux reports it: (anonymous, file-backed, shared) MB.
/// File-backed pages are the database file mapped by connections (`mmap_size`) and count in
/// RSS although the kernel can drop them; the split tells heap growth from mapped reads.
fn rss_split_mb() -> (f64, f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    (
        status_mb(&status, "RssAnon:"),
        status_mb(&status, "RssFile:"),
        status_mb(&status, "RssShmem:"),
    )
}

/// Samples the resident set every 20 ms until dropped, keeping the peak of each part; with
/// `CARETRAIL_RSS_TRACE` set it also prints one line per second (a time series of the
/// rebuild's memory).
struct RssSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(f64, f64, f64)>>,
}

impl RssSampler {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let trace = std::env::var_os("CARETRAIL_RSS_TRACE").is_some();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut last_print = 0u64;
            let mut peak = (0.0f64, 0.0f64, 0.0f64);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let (a, f, s) = rss_split_mb();
                peak = (peak.0.max(a), peak.1.max(f), peak.2.max(s));
                let secs = started.elapsed().as_secs();
                if trace && secs > last_print {
                    last_print = secs;
                    println!("rss t={secs:>4}s anon {a:6.0} MB  file {f:6.0} MB  shmem {s:5.0} MB");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the peaks of (anonymous, file-backed, shared) MB.
    fn finish(mut self) -> (f64, f64, f64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

fn master() -> MasterKey {
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap()
}

async fn app(url: &str) -> App {
    let store = caretrail_store::connect(url, Default::default())
        .await
        .unwrap();
    let keys = KeyRing::open(store.as_ref(), master()).await.unwrap();
    let t = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    App::new(
        store,
        Arc::new(keys),
        Policy::default(),
        Arc::new(FixedClock(t)),
    )
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
    let events: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let pg = args.iter().any(|a| a == "postgres");
    // `rebuild-only`: skip the query and live phases (for profiling the rebuild).
    let rebuild_only = args.iter().any(|a| a == "rebuild-only");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (url, _guard) = if pg {
            let h = caretrail_store::testing::postgres().await.expect("CARETRAIL_PG_URL");
            (h.url.clone(), Some(h))
        } else {
            let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
            (format!("sqlite://{dir}/proj-bench-{events}.db"), None)
        };
        let app = app(&url).await;
        let head = app.store().head().await.unwrap().position;
        if head < events {
            let t = Instant::now();
            let r = generate(&app, 42, Size::events(events - head)).await.unwrap();
            println!(
                "generate: {} events, {} commands, {} refused, {} model workers in {:.1}s ({:.0} events/s)",
                r.events,
                r.commands,
                r.rejected.values().sum::<u64>(),
                r.model_workers,
                t.elapsed().as_secs_f64(),
                r.events as f64 / t.elapsed().as_secs_f64()
            );
        }
        // Reset the peak (Linux: `5` to clear_refs), so the figure below is the rebuild's own
        // and not the generator's that ran before it in this process.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = peak_rss_mb();
        let sampler = RssSampler::start();
        let projector = Projector::open(app.store().clone()).await.unwrap();
        let report = projector.rebuild().await.unwrap();
        let (anon, file, shmem) = sampler.finish();
        println!(
            "rebuild ({}): {} events in {:.2}s = {:.0} events/s (apply {:.2}s, indexes {:.2}s); peak RSS during the rebuild {:.0} MB (at its start {:.0} MB; peaks of its parts: anonymous {:.0} MB, file-backed {:.0} MB, shared {:.0} MB)",
            app.store().backend(),
            report.events,
            report.seconds,
            report.events_per_second,
            report.apply_seconds,
            report.index_seconds,
            peak_rss_mb(),
            rss_before,
            anon,
            file,
            shmem
        );

        if rebuild_only {
            return;
        }
        // Dashboard latency at this size.
        let rm = projector.read_models();
        let keys = app.keys().clone();
        let as_of = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let all = RegionFilter::default();
        let hz = RegionFilter { city: Some("330100".into()), county: None };
        let mut lat: Vec<(&str, Vec<f64>)> = Vec::new();
        macro_rules! time {
            ($name:expr, $e:expr) => {{
                let mut v = Vec::new();
                for _ in 0..200 {
                    let t = Instant::now();
                    let _ = $e.await.unwrap();
                    v.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat.push(($name, v));
            }};
        }
        let status = |status, region: RegionFilter| VisitStatusQuery {
            as_of,
            region,
            status,
            include_ended: false,
            director_id: None,
            named: None,
            page: Page::default(),
        };
        time!("overview", rm.overview(as_of, &all));
        time!("overview (city)", rm.overview(as_of, &hz));
        time!("visit status: overdue", rm.visit_status(&keys, &Access::Personal, &status(Some(VisitStatus::Overdue), all.clone())));
        time!("visit status: city", rm.visit_status(&keys, &Access::Redacted, &status(None, hz.clone())));
        time!("caseload", rm.director_caseload(&keys, &Access::Redacted, &CaseloadQuery { as_of, role: None, sort: CaseloadSort::LeastEngaged, named: None, page: Page::default() }));
        time!("issues board", rm.issues(&IssuesQuery { as_of, region: all.clone(), state: None, body_id: None, raised_from: None, raised_to: None, breached_only: false, page: Page::default() }));
        time!("issue summary", rm.issue_summary(as_of, &all));
        time!("gifts by month", rm.gifts(&GiftsQuery { from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(), to: as_of, region: all.clone(), group_by: GiftGrouping::Month, page: Page::default() }));
        time!("gifts by county", rm.gifts(&GiftsQuery { from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(), to: as_of, region: all.clone(), group_by: GiftGrouping::County, page: Page::default() }));
        time!("coverage (county)", rm.coverage(as_of, CoverageLevel::County, &all));
        let file_id = rm.visit_status(&keys, &Access::Redacted, &status(None, all.clone())).await.unwrap().items[0].model_worker_id;
        time!("model worker file", rm.model_worker_file(&keys, &Access::Personal, file_id, 0, 100));
        for (name, v) in lat {
            println!("query {name:<24} p50 {:6.2} ms  p99 {:6.2} ms", pct(v.clone(), 0.5), pct(v, 0.99));
        }

        // Live lag under sustained appends: the generator appends in 4,000-event commits while
        // the runner follows; sample the lag every 50 ms.
        let runner = Arc::new(projector);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let r2 = runner.clone();
        let task = tokio::spawn(async move {
            r2.run(async {
                let _ = stopped.await;
            })
            .await
        });
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let runner = runner.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    match runner.lag().await {
                        Ok(l) => samples.push((l.behind_events, l.behind_seconds)),
                        Err(_) => break,
                    }
                }
                samples
            })
        };
        let t = Instant::now();
        let g = generate(&app, 4242, Size::events(100_000)).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let caught = Instant::now();
        runner.catch_up().await.unwrap();
        let drain = caught.elapsed().as_secs_f64();
        let _ = stop.send(());
        let _ = task.await;
        let samples = sampler.await.unwrap_or_default();
        let (mut ev, mut sec): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        for (e, s) in &samples {
            ev.push(*e as f64);
            sec.push(*s);
        }
        if !ev.is_empty() {
            println!(
                "live: {} events appended at {:.0} events/s; lag p50 {:.0} events / {:.2}s, p99 {:.0} events / {:.2}s, max {:.0} events; drained {:.2}s after the last append",
                g.events,
                g.events as f64 / secs,
                pct(ev.clone(), 0.5),
                pct(sec.clone(), 0.5),
                pct(ev.clone(), 0.99),
                pct(sec.clone(), 0.99),
                pct(ev, 1.0),
                drain
            );
        }
        println!("peak RSS at exit {:.0} MB", peak_rss_mb());
    });
}
