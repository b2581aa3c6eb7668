//! Prometheus metrics: requests by route and status, request latency histograms by route,
//! live subscribers, refused unauthenticated and rate-limited requests, and, read at each
//! scrape, the store writer's counters and the health registry's background tasks.
//!
//! Kept with `prometheus-client` (the Prometheus project's own Rust client): it brings no HTTP
//! stack (we serve `/metrics` ourselves), keeps counters in atomics, and escapes label values
//! and help text, which a hand-written exposition gets wrong the first time a label holds a
//! quote or a backslash. The answer is the classic text format (0.0.4) every scraper reads.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use caretrail_store::{EventStore, ReadyBounds, TaskReport};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    /// What was over its rate: `address` (requests without a valid token) or `token`.
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskErrorLabels {
    task: &'static str,
    kind: &'static str,
}

/// A gauge holding a float (the crate's default gauge holds an `i64`).
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The service's metrics.
pub struct Metrics {
    /// Everything kept between scrapes, registered once.
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    subscribers: Gauge,
    subscriptions: Counter,
    /// Requests refused with 401 for want of a valid token.
    unauthenticated: Counter,
    /// Requests refused with 429, by what was over its rate.
    rate_limited: Family<LimitLabels, Counter>,
    /// The refusals not yet in a log line, and when the last line was written.
    refusal_log: Mutex<RefusalLog>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let subscribers = Gauge::default();
        let subscriptions = Counter::default();
        let unauthenticated = Counter::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let mut registry = Registry::default();
        registry.register(
            "caretrail_http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "caretrail_http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "caretrail_sse_subscribers",
            "Live event-stream subscribers",
            subscribers.clone(),
        );
        registry.register(
            "caretrail_sse_subscriptions",
            "Event-stream subscriptions opened",
            subscriptions.clone(),
        );
        registry.register(
            "caretrail_http_unauthenticated",
            "Requests refused with 401 for want of a valid token",
            unauthenticated.clone(),
        );
        registry.register(
            "caretrail_http_rate_limited",
            "Requests refused with 429, by what was over its rate",
            rate_limited.clone(),
        );
        // Both series exist from the start, so a dashboard's rate() sees the first refusal.
        for limit in ["address", "token"] {
            drop(rate_limited.get_or_create(&LimitLabels { limit }));
        }
        Self {
            registry,
            requests,
            latency,
            subscribers,
            subscriptions,
            unauthenticated,
            rate_limited,
            refusal_log: Mutex::new(RefusalLog::default()),
        }
    }
}

#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unauthenticated: u64,
    throttled: u64,
}

/// At most one log line per this interval sums up refused unauthenticated requests.
pub const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Counts a live subscriber while it exists (owned: SSE streams outlive their handler).
pub struct OwnedSubscriberGuard(std::sync::Arc<Metrics>);

impl Drop for OwnedSubscriberGuard {
    fn drop(&mut self) {
        self.0.subscribers.dec();
    }
}

impl Metrics {
    fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts a request refused for want of a valid token (401, or 429 when `throttled`). A
    /// flood must not become a flood of log lines: the first refusal is logged at once, later
    /// ones in one summary line per [`REFUSAL_LOG_EVERY`] at most; the exact counts are in
    /// `/metrics`.
    pub fn refused_unauthenticated(&self, throttled: bool) {
        if throttled {
            self.rate_limited
                .get_or_create(&LimitLabels { limit: "address" })
                .inc();
        } else {
            self.unauthenticated.inc();
        }
        let mut log = self.refusal_log.lock().unwrap_or_else(|e| e.into_inner());
        if throttled {
            log.throttled += 1;
        } else {
            log.unauthenticated += 1;
        }
        if log.last.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
            write_refusals(&mut log);
        }
    }

    /// Writes the refusals not yet summed up, if the last summary is at least
    /// [`REFUSAL_LOG_EVERY`] old, and returns what it wrote. A refusal only writes a summary
    /// when one is due, so the tail of a flood would wait for the next refusal (forever, if
    /// the flood ended): the background tasks call this every interval.
    pub fn flush_refusals(&self) -> Option<(u64, u64)> {
        let mut log = self.refusal_log.lock().unwrap_or_else(|e| e.into_inner());
        let pending = (log.unauthenticated, log.throttled);
        let due = log.last.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
        if pending == (0, 0) || !due {
            return None;
        }
        write_refusals(&mut log);
        Some(pending)
    }
}

/// One summary line, then a fresh interval.
fn write_refusals(log: &mut RefusalLog) {
    tracing::warn!(
        unauthenticated = log.unauthenticated,
        throttled = log.throttled,
        "refused requests without a valid token (summed up at most every 10 s)"
    );
    *log = RefusalLog {
        last: Some(Instant::now()),
        ..RefusalLog::default()
    };
}

impl Metrics {
    /// Counts a request refused because its (valid) token is over its rate.
    pub fn rate_limited_token(&self) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit: "token" })
            .inc();
    }

    /// Live SSE subscribers right now.
    pub fn subscribers(&self) -> i64 {
        self.subscribers.get()
    }

    /// Counts a new live subscriber until the returned guard is dropped.
    pub fn subscriber(self: &std::sync::Arc<Self>) -> OwnedSubscriberGuard {
        self.subscribers.inc();
        self.subscriptions.inc();
        OwnedSubscriberGuard(self.clone())
    }

    /// The exposition text: the request metrics, then the store's figures and the health
    /// registry's tasks as they are now (read from memory, never from the database, so a
    /// scrape works, and shows the outage, while the database does not answer).
    pub fn render(&self, store: &dyn EventStore, ready: &ReadyBounds) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; the encoder's Result is for other writers.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_client::encoding::prometheus_text::encode(
            &mut out,
            &scrape_registry(store, ready),
        );
        out
    }
}

/// The figures read at scrape time: the writer's counters, the head, the projector's lag and
/// one series per background task.
fn scrape_registry(store: &dyn EventStore, ready: &ReadyBounds) -> Registry {
    use std::sync::atomic::Ordering::Relaxed;
    let mut r = Registry::default();
    let notifier = store.notifier();
    let w = notifier.metrics();
    for (name, help, value) in [
        (
            "caretrail_store_commits",
            "Write transactions committed",
            &w.commits,
        ),
        ("caretrail_store_appends", "Appends accepted", &w.appends),
        (
            "caretrail_store_appends_rejected",
            "Appends refused (version conflicts, duplicates)",
            &w.rejected,
        ),
        (
            "caretrail_store_events_appended",
            "Events appended",
            &w.events,
        ),
    ] {
        r.register(name, help, ConstCounter::new(value.load(Relaxed)));
    }
    r.register(
        "caretrail_store_head_position",
        "The log's last committed position",
        // A position is a BIGINT, and a float holds every integer below 2^53 exactly.
        ConstGauge::new(notifier.head() as f64),
    );
    let health = store.health();
    let tasks = health.report();
    if let Some(p) = tasks.iter().find(|t| t.task == "projector") {
        r.register(
            "caretrail_projection_lag_events",
            "Events the dashboards are behind the head",
            ConstGauge::new(p.behind_events.unwrap_or(0) as f64),
        );
        r.register(
            "caretrail_projection_lag_seconds",
            "How long the dashboards have been behind the head",
            ConstGauge::new(p.behind_seconds.unwrap_or(0.0)),
        );
    }
    register_tasks(&mut r, &tasks);
    r.register(
        "caretrail_tasks_healthy",
        "1 when every background task is within its readiness bounds",
        ConstGauge::new(i64::from(health.problems(ready).is_empty())),
    );
    r
}

/// The health registry as gauges, one series per task; a family with no series is left out.
fn register_tasks(r: &mut Registry, tasks: &[TaskReport]) {
    let mut family = |name: &str, help: &str, values: Vec<(&'static str, f64)>| {
        if values.is_empty() {
            return;
        }
        let f = Family::<TaskLabels, FloatGauge>::default();
        for (task, v) in values {
            f.get_or_create(&TaskLabels { task }).set(v);
        }
        r.register(name, help, f);
    };
    family(
        "caretrail_task_up",
        "1 while a background task is alive and not failing",
        tasks
            .iter()
            .map(|t| (t.task, if t.is_up() { 1.0 } else { 0.0 }))
            .collect(),
    );
    family(
        "caretrail_task_consecutive_failures",
        "Failures of a background task since its last success",
        tasks
            .iter()
            .map(|t| (t.task, f64::from(t.consecutive_failures)))
            .collect(),
    );
    family(
        "caretrail_task_last_success_timestamp_seconds",
        "When a background task last succeeded (Unix time)",
        tasks
            .iter()
            .filter_map(|t| Some((t.task, t.last_success?.timestamp_micros() as f64 / 1e6)))
            .collect(),
    );
    family(
        "caretrail_task_position",
        "The log position a consumer task has handled",
        tasks
            .iter()
            .filter_map(|t| Some((t.task, t.position? as f64)))
            .collect(),
    );
    family(
        "caretrail_task_lag_events",
        "Events a consumer task is behind the head",
        tasks
            .iter()
            .filter_map(|t| Some((t.task, t.behind_events? as f64)))
            .collect(),
    );
    family(
        "caretrail_task_lag_seconds",
        "How long a consumer task has been behind the head",
        tasks
            .iter()
            .filter(|t| t.position.is_some())
            .map(|t| (t.task, t.behind_seconds.unwrap_or(0.0)))
            .collect(),
    );
    family(
        "caretrail_task_silent_seconds",
        "Seconds since a background task last reported",
        tasks.iter().map(|t| (t.task, t.silent_seconds)).collect(),
    );
    let errors = Family::<TaskErrorLabels, Gauge>::default();
    let mut any = false;
    for t in tasks {
        if let Some(kind) = t.last_error {
            errors
                .get_or_create(&TaskErrorLabels { task: t.task, kind })
                .set(1);
            any = true;
        }
    }
    if any {
        r.register(
            "caretrail_task_last_error_info",
            "The kind of a background task's most recent failure",
            errors,
        );
    }
}

/// Middleware recording every request against its matched route (not its raw path, which
/// would make one series per id).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    state.metrics.record(
        &route,
        &method,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Red-team finding: the tail of a flood of requests without a valid token was summed up
    /// in the log only at the next refusal (never, if the flood had ended). The background
    /// tasks flush it once its interval is over.
    #[test]
    fn the_tail_of_a_flood_is_written_when_its_interval_ends_without_another_refusal() {
        let m = Metrics::default();
        // The first refusal of an interval is written at once; the next ones wait.
        m.refused_unauthenticated(false);
        m.refused_unauthenticated(false);
        m.refused_unauthenticated(true);
        assert_eq!(m.flush_refusals(), None, "not due yet");
        m.refusal_log.lock().unwrap().last = Instant::now().checked_sub(REFUSAL_LOG_EVERY);
        assert_eq!(m.flush_refusals(), Some((1, 1)));
        assert_eq!(m.flush_refusals(), None, "nothing pending");
    }
}
