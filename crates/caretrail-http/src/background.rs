//! The service's background tasks, started one way for `caretrail serve` and the test service:
//! the dashboards' projector, the follower that applies erasures made by other servers to this
//! one's key cache, the audit tree follower and the checkpointer (and the periodic summary of
//! refused requests in the log).
//!
//! Each task retries its own failures and reports into the store's health registry (see
//! `caretrail_store::health`); what is left to this module is a task that panics. A panic is a
//! bug, but a bug in one event's handling must not leave the dashboards frozen until someone
//! restarts the process: the task is logged and started again after a capped backoff, and
//! while it is down the registry reports it stopped, so `/readyz` says not ready.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use caretrail_audit::Auditor;
use caretrail_projections::Projector;
use caretrail_store::Backoff;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which tasks to run.
pub struct Tasks {
    /// The dashboards' projector, followed live when given.
    pub projector: Option<Arc<Projector>>,
    /// The command handler whose key ring applies erasures recorded by any server
    /// (`caretrail_app::erasures`).
    pub erasures: Option<Arc<caretrail_app::App>>,
    /// The audit tree follower runs when an auditor is given.
    pub auditor: Option<Arc<Auditor>>,
    /// The checkpointer runs (with the auditor) when an interval is given.
    pub checkpoint_every: Option<Duration>,
    /// The server's metrics: their summary of refused requests is written every interval.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Starts the tasks; each stops when `stop` turns true (or its sender is dropped). The handles
/// end once their task has stopped.
pub fn spawn(tasks: Tasks, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    if let Some(projector) = tasks.projector {
        let stopped = stop.clone();
        handles.push(supervise("projector", stop.clone(), move || {
            let projector = projector.clone();
            let stopped = wait_for_stop(stopped.clone());
            async move {
                // `run` retries its own errors and returns only at shutdown.
                let _ = projector.run(stopped).await;
            }
        }));
    }
    if let Some(app) = tasks.erasures {
        handles.push(supervise("keys.erasures", stop.clone(), move || {
            caretrail_app::erasures::follow_erasures(app.store().clone(), app.keys().clone())
        }));
    }
    if let Some(auditor) = tasks.auditor {
        {
            let auditor = auditor.clone();
            handles.push(supervise("audit.tree", stop.clone(), move || {
                auditor.clone().run_tree_follower()
            }));
        }
        if let Some(every) = tasks.checkpoint_every {
            handles.push(supervise("audit.checkpointer", stop.clone(), move || {
                caretrail_audit::run_checkpointer(auditor.clone(), every)
            }));
        }
    }
    if let Some(metrics) = tasks.metrics {
        let mut stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(crate::metrics::REFUSAL_LOG_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        metrics.flush_refusals();
                    }
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }));
    }
    handles
}

/// Resolves when `stop` turns true or its sender goes away.
async fn wait_for_stop(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs the task `make` builds until `stop`, starting it again after a panic.
fn supervise<F, Fut>(name: &'static str, stop: watch::Receiver<bool>, make: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let backoff = Backoff::default();
        let mut panics = 0u32;
        loop {
            let mut task = tokio::spawn(make());
            let outcome = tokio::select! {
                r = &mut task => r,
                () = wait_for_stop(stop.clone()) => {
                    // Tasks are stopped by dropping them at an await: an unfinished batch
                    // rolls back with its checkpoint and is done again on the next start.
                    task.abort();
                    let _ = task.await;
                    return;
                }
            };
            match outcome {
                Err(e) if e.is_panic() => {
                    panics = panics.saturating_add(1);
                    let delay = backoff.delay(panics);
                    tracing::error!(
                        task = name,
                        panics,
                        restart_in_ms = delay.as_millis() as u64,
                        "background task panicked; starting it again"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = wait_for_stop(stop.clone()) => return,
                    }
                }
                // Ended on its own (shutdown seen by the task itself) or was cancelled.
                _ => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Hardening #2: a background task that panics is started again instead of staying dead.
    #[tokio::test]
    async fn a_panicking_task_is_started_again_until_stopped() {
        let starts = Arc::new(AtomicU32::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let counted = starts.clone();
        let handle = supervise("test", stop, move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("boom {n}");
                }
                std::future::pending::<()>().await;
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while starts.load(Ordering::SeqCst) < 3 {
            assert!(tokio::time::Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop_tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(1), handle)
            .await
            .expect("stops when asked")
            .unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }
}
