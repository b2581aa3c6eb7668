//! Health of the background tasks, and their retry discipline.
//!
//! Every long-lived task of a service (the store's writer, the dashboards' projector, the audit
//! tree follower, the checkpointer) holds a [`TaskHealth`] registered in its store's [`Health`]
//! registry and publishes into it: whether it is alive, when it last succeeded, the kind of its
//! last failure, and, for consumers of the log, the position it has handled. `/readyz` and
//! `/metrics` read the registry without touching the database, so they answer at once even
//! while the database does not.
//!
//! Failures are retried by the task itself after a capped exponential backoff
//! ([`TaskHealth::failed`] returns the delay): a task recovers on its own once the cause is gone
//! (a full disk freed, a database back), at most [`Backoff::max`] after that. Failures are
//! logged when the task's state changes (it starts failing, or fails for another reason) and
//! recoveries once, not at every retry: an outage of an hour must not write a line every
//! few hundred milliseconds per task.
//!
//! Readiness ([`Health::problems`]) is "every task is alive, none is failing, none has gone
//! quiet for longer than it should, and no consumer is behind the log by more than
//! [`ReadyBounds`]" (events and time).

use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

/// Retry delays: `first`, doubling up to `max`, each drawn at random from its upper half so
/// that tasks (and processes) failing together do not retry in lockstep.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Delay after the first failure (before jitter); it doubles with each further one.
    pub first: Duration,
    /// The cap: no delay is longer than this, however many failures.
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms doubling up to 5 s: the first retries come quickly (a busy lock, a dropped
    /// connection), and once the cause is gone a task is back within 5 s, while a long outage
    /// costs each task one attempt every few seconds.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (1 = after the first failure).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let full = self
            .first
            .saturating_mul(1u32 << doublings)
            .min(self.max)
            .max(Duration::from_millis(1));
        // Jitter from a fresh random id: only failures pay for it.
        let r = (uuid::Uuid::new_v4().as_u128() % 1024) as u32;
        full / 2 + (full / 2) * r / 1024
    }
}

/// How a task is expected to report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Works on demand and may be idle for any time (the writer): healthy unless it failed or
    /// stopped.
    OnDemand,
    /// Follows the log and reports its position at least every `every`, idle or not; it is
    /// held to [`ReadyBounds`] for lag and silence.
    FollowsLog {
        /// The longest a healthy task goes between two position reports.
        every: Duration,
    },
    /// Succeeds every `every` (the checkpointer); silent for longer than that plus
    /// [`ReadyBounds::max_lag`] means it is stuck.
    Periodic {
        /// How often it is meant to succeed.
        every: Duration,
    },
}

/// How far behind, and how long quiet, a task may be while the service counts as ready.
#[derive(Clone, Copy, Debug)]
pub struct ReadyBounds {
    /// Most events a log consumer may be behind the head.
    pub max_lag_events: u64,
    /// Longest a log consumer may stay behind the head without catching up to where the head
    /// was, and longest past its period any task may go without reporting.
    pub max_lag: Duration,
}

impl Default for ReadyBounds {
    /// 1,000 events and 30 s. The live projector applies up to 2,000 events per transaction
    /// and the writer commits up to 256 appends at once, so a burst of commands can put a
    /// healthy consumer a few hundred events behind for a moment; a thousand means it is not
    /// keeping up. Time catches the slow case the count misses (a quiet log and a stuck
    /// consumer): a healthy consumer works off what it saw within a second or two, a rebuild's
    /// switch or a long index build holds it for seconds, and 30 s is far past both while
    /// still short enough that a load balancer stops sending readers to stale dashboards
    /// quickly.
    fn default() -> Self {
        Self {
            max_lag_events: 1_000,
            max_lag: Duration::from_secs(30),
        }
    }
}

/// The registry of one store's background tasks.
#[derive(Debug)]
pub struct Health {
    tasks: Mutex<Vec<Arc<Cell>>>,
    head: watch::Receiver<u64>,
}

#[derive(Debug)]
struct Cell {
    name: &'static str,
    expect: Expect,
    backoff: Backoff,
    status: Mutex<Status>,
}

#[derive(Debug)]
struct Status {
    alive: bool,
    /// Last report of any kind (success or failure): a task that neither succeeds nor fails is
    /// stuck.
    last_report: Instant,
    last_success: Option<(Instant, DateTime<Utc>)>,
    last_error: Option<&'static str>,
    /// Consecutive failures since the last success.
    failures: u32,
    failing_since: Option<Instant>,
    position: Option<u64>,
    /// The head a lagging consumer must reach, and since when: a consumer that keeps passing
    /// its watermarks is keeping up; one that sits below the same watermark is stuck.
    watermark: Option<(u64, Instant)>,
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Alive, and its last attempt succeeded.
    Running,
    /// A consumer that has not reported a position yet.
    Starting,
    /// Its last attempt failed; it is retrying.
    Failing,
    /// It ended or panicked.
    Stopped,
}

/// What a task looks like now.
#[derive(Clone, Debug, Serialize)]
pub struct TaskReport {
    /// The task's registered name (`store.writer`, `projector`, `audit.tree`, ...).
    pub task: &'static str,
    /// Where the task stands.
    pub state: TaskState,
    /// When its last unit of work succeeded (UTC); `None` if none has yet.
    pub last_success: Option<DateTime<Utc>>,
    /// The kind of the most recent failure (kept after a recovery, for the record).
    pub last_error: Option<&'static str>,
    /// Failures since its last success (0 unless it is failing).
    pub consecutive_failures: u32,
    /// For consumers: every event up to here has been handled.
    pub position: Option<u64>,
    /// For consumers: how many events the committed head is past `position`.
    pub behind_events: Option<u64>,
    /// How long the consumer has been behind without reaching the head it first saw.
    pub behind_seconds: Option<f64>,
    /// Since the task last reported anything.
    pub silent_seconds: f64,
    #[serde(skip)]
    expect: Expect,
}

impl Health {
    /// A registry reading the committed head from `head` (the store's notifier).
    pub fn new(head: watch::Receiver<u64>) -> Self {
        Self {
            tasks: Mutex::new(Vec::new()),
            head,
        }
    }

    /// Registers a task; the returned handle marks it stopped when dropped (the task ended or
    /// panicked).
    pub fn register(&self, name: &'static str, expect: Expect) -> TaskHealth {
        self.register_with(name, expect, Backoff::default())
    }

    /// Like [`Health::register`], retrying with `backoff` instead of [`Backoff::default`].
    pub fn register_with(
        &self,
        name: &'static str,
        expect: Expect,
        backoff: Backoff,
    ) -> TaskHealth {
        let now = Instant::now();
        let cell = Arc::new(Cell {
            name,
            expect,
            backoff,
            status: Mutex::new(Status {
                alive: true,
                last_report: now,
                last_success: None,
                last_error: None,
                failures: 0,
                failing_since: None,
                position: None,
                watermark: None,
            }),
        });
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        // A task registered again under its name (restarted by its owner) replaces a stopped
        // one, so the registry does not grow with restarts.
        tasks.retain(|c| c.name != name || c.lock().alive);
        tasks.push(cell.clone());
        TaskHealth { cell }
    }

    /// The committed head the consumers are measured against.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// Every task's state, in registration order.
    pub fn report(&self) -> Vec<TaskReport> {
        let head = self.head();
        let now = Instant::now();
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.iter().map(|c| c.report(head, now)).collect()
    }

    /// Why the service is not ready, per task (empty when every task is healthy).
    pub fn problems(&self, bounds: &ReadyBounds) -> Vec<String> {
        self.report()
            .iter()
            .filter_map(|r| r.problem(bounds))
            .collect()
    }
}

impl Cell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self, head: u64, now: Instant) -> TaskReport {
        let mut s = self.lock();
        let behind = s.position.map(|p| head.saturating_sub(p));
        if let Some(p) = s.position {
            s.update_watermark(p, head, now);
        }
        let state = if !s.alive {
            TaskState::Stopped
        } else if s.failures > 0 {
            TaskState::Failing
        } else if matches!(self.expect, Expect::FollowsLog { .. }) && s.position.is_none() {
            TaskState::Starting
        } else {
            TaskState::Running
        };
        TaskReport {
            task: self.name,
            state,
            last_success: s.last_success.map(|(_, at)| at),
            last_error: s.last_error,
            consecutive_failures: s.failures,
            position: s.position,
            behind_events: behind,
            behind_seconds: s
                .watermark
                .map(|(_, since)| now.duration_since(since).as_secs_f64()),
            silent_seconds: now.duration_since(s.last_report).as_secs_f64(),
            expect: self.expect,
        }
    }
}

impl Status {
    fn update_watermark(&mut self, position: u64, head: u64, now: Instant) {
        self.watermark = match self.watermark {
            _ if position >= head => None,
            Some((target, since)) if position < target => Some((target, since)),
            _ => Some((head, now)),
        };
    }
}

impl TaskReport {
    /// Why this task keeps the service from being ready, if it does.
    pub fn problem(&self, bounds: &ReadyBounds) -> Option<String> {
        let name = self.task;
        match self.state {
            TaskState::Stopped => return Some(format!("{name} has stopped")),
            TaskState::Failing => {
                return Some(format!(
                    "{name} is failing ({}; {} attempts)",
                    self.last_error.unwrap_or("unknown"),
                    self.consecutive_failures
                ));
            }
            TaskState::Starting => {
                return Some(format!("{name} has not caught up with the log yet"));
            }
            TaskState::Running => {}
        }
        let quiet_limit = match self.expect {
            Expect::OnDemand => None,
            Expect::FollowsLog { every } | Expect::Periodic { every } => {
                Some(every.as_secs_f64() + bounds.max_lag.as_secs_f64())
            }
        };
        if let Some(limit) = quiet_limit
            && self.silent_seconds > limit
        {
            return Some(format!(
                "{name} has not reported for {:.0} s",
                self.silent_seconds
            ));
        }
        if let Some(behind) = self.behind_events
            && behind > bounds.max_lag_events
        {
            return Some(format!(
                "{name} is {behind} events behind the log (bound {})",
                bounds.max_lag_events
            ));
        }
        if let Some(secs) = self.behind_seconds
            && secs > bounds.max_lag.as_secs_f64()
        {
            return Some(format!(
                "{name} has been behind the log for {secs:.0} s (bound {} s)",
                bounds.max_lag.as_secs()
            ));
        }
        None
    }

    /// Whether the task is alive and not failing.
    pub fn is_up(&self) -> bool {
        matches!(self.state, TaskState::Running | TaskState::Starting)
    }
}

/// A task's handle on its entry in the registry. Dropping it marks the task stopped.
#[derive(Debug)]
pub struct TaskHealth {
    cell: Arc<Cell>,
}

impl TaskHealth {
    /// A handle registered nowhere, for tasks run on their own (tools, tests).
    pub fn unregistered(name: &'static str, expect: Expect) -> Self {
        let (_, head) = watch::channel(0);
        Health::new(head).register(name, expect)
    }

    /// The task's name.
    pub fn name(&self) -> &'static str {
        self.cell.name
    }

    /// A unit of work succeeded (a batch committed, a checkpoint signed, an idle check passed).
    pub fn succeeded(&self) {
        let mut s = self.cell.lock();
        let now = Instant::now();
        if s.failures > 0 {
            let for_secs = s
                .failing_since
                .map_or(0.0, |t| now.duration_since(t).as_secs_f64());
            tracing::info!(
                task = self.cell.name,
                failures = s.failures,
                failing_seconds = for_secs,
                "background task recovered"
            );
        }
        s.failures = 0;
        s.failing_since = None;
        s.last_report = now;
        s.last_success = Some((now, Utc::now()));
    }

    /// A consumer succeeded and has handled the log up to `position`. How far that is behind
    /// the head is measured when the registry is read, against the head then.
    pub fn at(&self, position: u64) {
        self.succeeded();
        self.cell.lock().position = Some(position);
    }

    /// A unit of work failed with an error of `kind`. Logs a warning when the task starts
    /// failing or fails for another reason (a debug line otherwise) and returns how long to
    /// wait before the next attempt.
    pub fn failed(&self, kind: &'static str, error: &dyn Display) -> Duration {
        let mut s = self.cell.lock();
        let now = Instant::now();
        let changed = s.failures == 0 || s.last_error != Some(kind);
        s.failures = s.failures.saturating_add(1);
        s.failing_since.get_or_insert(now);
        s.last_error = Some(kind);
        s.last_report = now;
        let delay = self.cell.backoff.delay(s.failures);
        if changed {
            tracing::warn!(
                task = self.cell.name,
                kind,
                %error,
                retry_in_ms = delay.as_millis() as u64,
                "background task failing; retrying with backoff until it recovers"
            );
        } else {
            tracing::debug!(task = self.cell.name, kind, %error, attempt = s.failures, "retrying");
        }
        delay
    }

    /// Whether the last attempt failed.
    pub fn is_failing(&self) -> bool {
        self.cell.lock().failures > 0
    }
}

impl Drop for TaskHealth {
    fn drop(&mut self) {
        // Also on a panic's unwinding: whoever started the task logs the panic.
        self.cell.lock().alive = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (watch::Sender<u64>, Health) {
        let (tx, rx) = watch::channel(0);
        (tx, Health::new(rx))
    }

    /// Hardening #2: retries of a failing task back off, but never wait longer than the cap
    /// once the cause is gone.
    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (7, 5000), (40, 5000)] {
            for _ in 0..50 {
                let d = b.delay(attempt).as_millis() as u64;
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d} ms not in [{}, {full}]",
                    full / 2
                );
            }
        }
    }

    /// Hardening #2: `/readyz` said ready while the audit tasks were failing.
    #[test]
    fn a_failing_task_is_not_ready_until_it_succeeds_again() {
        let (_head, health) = registry();
        let bounds = ReadyBounds::default();
        let task = health.register("store.writer", Expect::OnDemand);
        assert!(health.problems(&bounds).is_empty());
        task.failed("disk_full", &"database or disk is full");
        task.failed("disk_full", &"database or disk is full");
        let problems = health.problems(&bounds);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("disk_full"), "{problems:?}");
        let report = &health.report()[0];
        assert_eq!(report.consecutive_failures, 2);
        task.succeeded();
        assert!(health.problems(&bounds).is_empty());
        assert_eq!(health.report()[0].last_error, Some("disk_full"));
    }

    /// Hardening #2: a task that died (returned or panicked) is reported, not forgotten.
    #[test]
    fn a_dropped_handle_reports_the_task_stopped() {
        let (_head, health) = registry();
        let task = health.register("projector", Expect::OnDemand);
        drop(task);
        let problems = health.problems(&ReadyBounds::default());
        assert_eq!(problems, vec!["projector has stopped".to_owned()]);
        // Registering it again (a restart) replaces the stopped entry.
        let _task = health.register("projector", Expect::OnDemand);
        assert_eq!(health.report().len(), 1);
        assert!(health.problems(&ReadyBounds::default()).is_empty());
    }

    /// Hardening #2: readiness covers a consumer that is behind, by events and by time.
    #[test]
    fn a_consumer_is_held_to_the_event_and_time_bounds() {
        let (head, health) = registry();
        let every = Duration::from_millis(500);
        let task = health.register("projector", Expect::FollowsLog { every });
        let bounds = ReadyBounds {
            max_lag_events: 10,
            max_lag: Duration::from_millis(200),
        };
        assert_eq!(health.report()[0].state, TaskState::Starting);
        assert!(!health.problems(&bounds).is_empty());
        head.send_replace(5);
        task.at(5);
        assert!(health.problems(&bounds).is_empty());
        // Too many events behind.
        head.send_replace(16);
        assert!(health.problems(&bounds)[0].contains("11 events behind"));
        // Within the count, but stuck below the same watermark for longer than the bound.
        task.at(14);
        assert!(
            health.problems(&bounds).is_empty(),
            "a first look sets a watermark"
        );
        std::thread::sleep(Duration::from_millis(250));
        task.at(15);
        let problems = health.problems(&bounds);
        assert!(problems[0].contains("behind the log for"), "{problems:?}");
        // Passing the watermark (the head it was measured against) lets it off.
        task.at(16);
        assert!(health.problems(&bounds).is_empty());
    }

    /// Hardening #2: a wedged task (neither succeeding nor failing) is not ready either.
    #[test]
    fn a_task_that_stops_reporting_is_not_ready() {
        let (_head, health) = registry();
        let task = health.register(
            "audit.checkpointer",
            Expect::Periodic {
                every: Duration::from_millis(50),
            },
        );
        task.succeeded();
        let bounds = ReadyBounds {
            max_lag_events: 10,
            max_lag: Duration::from_millis(50),
        };
        assert!(health.problems(&bounds).is_empty());
        std::thread::sleep(Duration::from_millis(150));
        assert!(health.problems(&bounds)[0].contains("has not reported"));
        task.succeeded();
        assert!(health.problems(&bounds).is_empty());
    }
}
