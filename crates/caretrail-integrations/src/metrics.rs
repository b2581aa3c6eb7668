//! Per-subscription figures for `/metrics`: deliveries, failed attempts, attempt latency,
//! and, refreshed by the supervisor's tick, lag in events and seconds and the state.
//!
//! Labelled by subscription id only (names are free text an administrator typed; ids are
//! bounded by the subscriptions that exist). A deleted subscription's series stay until the
//! process restarts, as counters should.

use std::time::Duration;

use caretrail_store::RecordedEvent;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use uuid::Uuid;

use crate::db::SubscriptionRow;
use crate::webhook::Attempt;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    subscription: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    subscription: String,
    state: &'static str,
}

/// Upper bounds of the attempt-latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The integrations' metrics.
#[derive(Debug)]
pub struct IntegrationMetrics {
    registry: Registry,
    delivered: Family<Labels, Counter>,
    failed: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    lag_events: Family<Labels, Gauge>,
    lag_seconds: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    state: Family<StateLabels, Gauge>,
}

impl Default for IntegrationMetrics {
    fn default() -> Self {
        let delivered = Family::<Labels, Counter>::default();
        let failed = Family::<Labels, Counter>::default();
        let latency =
            Family::<Labels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let lag_events = Family::<Labels, Gauge>::default();
        let lag_seconds = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let state = Family::<StateLabels, Gauge>::default();
        let mut registry = Registry::default();
        registry.register(
            "caretrail_subscription_deliveries",
            "Events delivered (acknowledged by the target), by subscription",
            delivered.clone(),
        );
        registry.register(
            "caretrail_subscription_failures",
            "Failed delivery attempts, by subscription",
            failed.clone(),
        );
        registry.register(
            "caretrail_subscription_attempt_duration_seconds",
            "Webhook attempt latency (and NATS batch latency), by subscription",
            latency.clone(),
        );
        registry.register(
            "caretrail_subscription_lag_events",
            "Log positions after the subscription's cursor",
            lag_events.clone(),
        );
        registry.register(
            "caretrail_subscription_lag_seconds",
            "Age of the oldest event after the subscription's cursor",
            lag_seconds.clone(),
        );
        registry.register(
            "caretrail_subscription_state",
            "1 for the subscription's current state (active, paused, failing, disabled)",
            state.clone(),
        );
        Self {
            registry,
            delivered,
            failed,
            latency,
            lag_events,
            lag_seconds,
            state,
        }
    }
}

fn labels(id: &Uuid) -> Labels {
    Labels {
        subscription: id.to_string(),
    }
}

impl IntegrationMetrics {
    /// One webhook attempt.
    pub fn attempt(&self, id: &Uuid, attempt: &Attempt) {
        self.latency
            .get_or_create(&labels(id))
            .observe(attempt.latency.as_secs_f64());
        if !matches!(attempt.outcome, crate::webhook::Outcome::Delivered) {
            self.failed.get_or_create(&labels(id)).inc();
        }
    }

    /// One event delivered.
    pub fn delivered(&self, id: &Uuid, _event: &RecordedEvent) {
        self.delivered.get_or_create(&labels(id)).inc();
    }

    /// One failed NATS publication.
    pub fn failed(&self, id: &Uuid) {
        self.failed.get_or_create(&labels(id)).inc();
    }

    /// A NATS batch of `n` acknowledged in `took`.
    pub fn nats_batch(&self, id: &Uuid, _n: usize, took: Duration) {
        self.latency
            .get_or_create(&labels(id))
            .observe(took.as_secs_f64());
    }

    /// The lag of a subscription, as the supervisor last measured it.
    pub fn lag(&self, id: &str, events: u64, seconds: f64) {
        let l = Labels {
            subscription: id.to_owned(),
        };
        self.lag_events
            .get_or_create(&l)
            .set(i64::try_from(events).unwrap_or(i64::MAX));
        self.lag_seconds.get_or_create(&l).set(seconds);
    }

    /// A subscription's state, from its row.
    pub fn observe_row(&self, row: &SubscriptionRow) {
        let current = crate::service::state_of(row);
        for state in ["active", "paused", "failing", "disabled"] {
            self.state
                .get_or_create(&StateLabels {
                    subscription: row.id.clone(),
                    state,
                })
                .set(i64::from(state == current));
        }
    }

    /// Appends the exposition text of these metrics to `out`.
    pub fn encode(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(out, &self.registry);
    }
}
