//! `caretrail gen`, `caretrail projections rebuild` and `caretrail replay`: the generator, an
//! on-demand rebuild of the dashboards, and the auditor's "overview as of then", as JSON.
//!
//! Long runs show a progress bar on a terminal (the log head or the rebuild's checkpoint,
//! polled), and stay quiet when stderr is not a terminal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use caretrail_projections::query::RegionFilter;
use caretrail_projections::{AsOf, Projector, Size, generate, replay};
use caretrail_store::EventStore;
use chrono::{DateTime, NaiveDate, Utc};

use crate::audit::progress_bar;
use crate::serve::{KeyArgs, open};

/// Prints `value` as pretty JSON on stdout; a closed pipe surfaces as an I/O error the
/// binary treats as a normal end.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// `projections` subcommands.
#[derive(clap::Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuilds every dashboard read model from position 0 into new tables while the old ones
    /// keep serving, then switches.
    Rebuild,
}

/// Shows `bar` following `value()` until the returned guard is dropped.
fn follow<F, Fut>(what: &'static str, total: u64, value: F) -> Option<tokio::task::JoinHandle<()>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Option<u64>> + Send,
{
    let bar = progress_bar(what)?;
    bar.set_length(total);
    Some(tokio::spawn(async move {
        loop {
            if let Some(v) = value().await {
                bar.set_position(v.min(total));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }))
}

pub async fn gen_events(db: &str, keys: &KeyArgs, seed: u64, events: u64) -> anyhow::Result<()> {
    if events == 0 {
        anyhow::bail!("--events must be at least 1");
    }
    let opened = open(db, keys, caretrail_store::StoreOptions::default()).await?;
    let store = opened.app.store().clone();
    let start = store.head().await?.position;
    let progress = follow("generating", events, move || {
        let store = store.clone();
        async move { store.head().await.ok().map(|h| h.position - start) }
    });
    let report = generate(&opened.app, seed, Size::events(events))
        .await
        .context("generation failed")?;
    if let Some(p) = progress {
        p.abort();
    }
    print_json(&report)?;
    Ok(())
}

pub async fn projections(db: &str, keys: &KeyArgs, cmd: ProjectionsCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectionsCommand::Rebuild => {
            let opened = open(db, keys, caretrail_store::StoreOptions::default()).await?;
            let store: Arc<dyn EventStore> = opened.app.store().clone();
            let projector = Arc::new(Projector::open(store.clone()).await?);
            let head = store.head().await?.position;
            let watched = projector.clone();
            let progress = follow("rebuilding", head, move || {
                let p = watched.clone();
                async move {
                    p.lag()
                        .await
                        .ok()
                        .and_then(|l| l.rebuilding.map(|(_, at)| at))
                }
            });
            let report = projector.rebuild().await.context("rebuild failed")?;
            if let Some(p) = progress {
                p.abort();
            }
            print_json(&report)?;
        }
    }
    Ok(())
}

pub async fn replay_overview(
    db: &str,
    keys: &KeyArgs,
    position: Option<u64>,
    recorded_at: Option<DateTime<Utc>>,
    as_of: Option<NaiveDate>,
) -> anyhow::Result<()> {
    let at = match (position, recorded_at) {
        (Some(p), None) => AsOf::Position(p),
        (None, Some(t)) => AsOf::RecordTime(t),
        _ => anyhow::bail!("give exactly one of --position or --recorded-at"),
    };
    let opened = open(db, keys, caretrail_store::StoreOptions::default()).await?;
    let store = opened.app.store().clone();
    let head = store.head().await?.position;
    if let AsOf::Position(p) = at
        && p > head
    {
        anyhow::bail!("position {p} is beyond the head of the log ({head})");
    }
    let replayed = replay(store, at).await.context("replay failed")?;
    let as_of = as_of.unwrap_or_else(|| caretrail_app::shanghai_date(Utc::now()));
    let overview = replayed
        .read_models
        .overview(as_of, &RegionFilter::default())
        .await?;
    let out = serde_json::json!({
        "as_of_position": replayed.position,
        "overview": overview,
    });
    print_json(&out)?;
    Ok(())
}
