//! Prometheus metrics in the text exposition format, kept in atomics: requests by route and
//! status, request latency histograms by route, live subscribers, refused unauthenticated and
//! rate-limited requests, and the store writer's counters. Hand-written because the format is a page of text and a registry crate would
//! bring a second HTTP stack for its own exporter.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The service's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    subscribers: AtomicI64,
    subscriptions_total: AtomicU64,
    /// Requests refused with 401 for want of a valid token.
    unauthenticated_total: AtomicU64,
    /// Requests without a valid token refused with 429 (their address over its budget).
    throttled_total: AtomicU64,
    /// Requests with a valid token refused with 429 (the token over its budget).
    token_limited_total: AtomicU64,
    /// The refusals not yet in a log line, and when the last line was written.
    refusal_log: Mutex<RefusalLog>,
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
        self.0.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = latency.entry(route.to_owned()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Counts a request refused for want of a valid token (401, or 429 when `throttled`). A
    /// flood must not become a flood of log lines: the first refusal is logged at once, later
    /// ones in one summary line per [`REFUSAL_LOG_EVERY`] at most; the exact counts are in
    /// `/metrics`.
    pub fn refused_unauthenticated(&self, throttled: bool) {
        let counter = if throttled {
            &self.throttled_total
        } else {
            &self.unauthenticated_total
        };
        counter.fetch_add(1, Ordering::Relaxed);
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
        self.token_limited_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Live SSE subscribers right now.
    pub fn subscribers(&self) -> i64 {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// Renders the exposition text; `extra` appends the store's and read side's figures.
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP caretrail_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE caretrail_http_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "caretrail_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP caretrail_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE caretrail_http_request_duration_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "caretrail_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "caretrail_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "caretrail_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "caretrail_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP caretrail_sse_subscribers Live event-stream subscribers.\n");
        out.push_str("# TYPE caretrail_sse_subscribers gauge\n");
        let _ = writeln!(out, "caretrail_sse_subscribers {}", self.subscribers());
        out.push_str(
            "# HELP caretrail_sse_subscriptions_total Event-stream subscriptions opened.\n",
        );
        out.push_str("# TYPE caretrail_sse_subscriptions_total counter\n");
        let _ = writeln!(
            out,
            "caretrail_sse_subscriptions_total {}",
            self.subscriptions_total.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP caretrail_http_unauthenticated_total Requests refused with 401 for want of a valid token.\n",
        );
        out.push_str("# TYPE caretrail_http_unauthenticated_total counter\n");
        let _ = writeln!(
            out,
            "caretrail_http_unauthenticated_total {}",
            self.unauthenticated_total.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP caretrail_http_rate_limited_total Requests refused with 429, by what was over its rate.\n",
        );
        out.push_str("# TYPE caretrail_http_rate_limited_total counter\n");
        let _ = writeln!(
            out,
            "caretrail_http_rate_limited_total{{limit=\"address\"}} {}",
            self.throttled_total.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "caretrail_http_rate_limited_total{{limit=\"token\"}} {}",
            self.token_limited_total.load(Ordering::Relaxed)
        );
        for (name, kind, value) in extra {
            let _ = writeln!(
                out,
                "# TYPE {} {kind}",
                name.split('{').next().unwrap_or(name)
            );
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

impl Metrics {
    /// Counts a new live subscriber until the returned guard is dropped.
    pub fn subscriber(self: &std::sync::Arc<Self>) -> OwnedSubscriberGuard {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        self.subscriptions_total.fetch_add(1, Ordering::Relaxed);
        OwnedSubscriberGuard(self.clone())
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
