//! A realistic, deterministic log generator for demos and benchmarks.
//!
//! Model workers spread over Zhejiang's counties are registered, assessed in hardship and
//! paired with directors; directors visit at an irregular cadence (some pairings drift past
//! 183 days and become overdue), hand over cash, goods and flowers, sometimes with union
//! officials; daily contacts happen between visits; issues are raised, acknowledged,
//! escalated to unions and departments, answered (sometimes redirected), resolved, confirmed,
//! closed and occasionally reopened; visits are corrected or voided; directors' terms end and
//! pairings are reassigned; model workers move, leave hardship or die, and some are erased.
//!
//! Every event comes out of the domain's `decide` on the current state of the streams it
//! reads, with personal values sealed by the application's [`KeyRing`], so the log is valid by
//! construction. A command the domain refuses is counted and skipped. Appends go to the store
//! in order, many in flight at once, so the group-commit writer packs them into large
//! transactions. The simulation is driven by a seeded generator: the same seed gives the same
//! business content (ids, dates, amounts); only record times and AEAD nonces differ.
//!
//! [`generate`] walks the days and model workers; each thing that can happen on a day is a
//! named step in `steps.rs`, and `sim.rs` holds the plumbing (the random source, names, and
//! the simulation's decide-and-append loop).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use caretrail_app::{App, KeyRing};
use caretrail_domain::command::*;
use caretrail_domain::vocab::*;
use caretrail_domain::*;
use caretrail_store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId,
};
use chrono::{Days, NaiveDate};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{ProjectionError, Result};

mod sim;
mod steps;

use sim::{Rng, Sim, name};

/// How much to generate.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Size {
    /// Stop once this many events are stored (the last command's events are kept whole).
    pub events: u64,
}

impl Size {
    /// About `events` events.
    pub fn events(events: u64) -> Size {
        Size { events }
    }
}

/// What the generator wrote.
#[derive(Clone, Debug, Serialize)]
pub struct GenerateReport {
    /// The seed the simulation ran from: the same seed gives the same business content.
    pub seed: u64,
    /// Events stored.
    pub events: u64,
    /// Commands the domain accepted (each stored one or more events).
    pub commands: u64,
    /// Commands the domain refused, by rejection code (skipped, nothing stored).
    pub rejected: BTreeMap<String, u64>,
    /// Model workers planned (about one per 150 events, at least 8); not all of them may
    /// have been registered before the event count was reached.
    pub model_workers: u64,
    /// The first simulated business day.
    pub first_day: NaiveDate,
    /// The last simulated business day: where the event count was reached, or the end of
    /// the simulated years.
    pub last_day: NaiveDate,
    /// Wall-clock seconds the generation took.
    pub seconds: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Raised,
    Acknowledged,
    Escalated,
    Answered,
    Resolved,
    Confirmed,
}

struct Issue {
    id: IssueId,
    stage: Stage,
    next: NaiveDate,
    body: BodyId,
}

/// A correction or void of a recorded visit, due on a later day.
#[derive(Clone, Copy)]
struct Fix {
    visit: VisitId,
    on: NaiveDate,
    /// Void the visit (else correct its cash).
    void: bool,
}

struct Worker {
    id: ModelWorkerId,
    registers_on: NaiveDate,
    registered: bool,
    active: bool,
    director: Option<DirectorId>,
    pairing: Option<PairingId>,
    next_visit: NaiveDate,
    next_contact: NaiveDate,
    issue: Option<Issue>,
    fix: Option<Fix>,
    erase_on: Option<NaiveDate>,
    county: RegionCode,
    reassign_on: Option<NaiveDate>,
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn plus(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).unwrap_or(d)
}

/// Generates about `size.events` events into the app's store, deterministically from `seed`.
#[tracing::instrument(name = "projections.generate", skip_all, fields(seed, events = size.events))]
pub async fn generate(app: &App, seed: u64, size: Size) -> Result<GenerateReport> {
    let started = std::time::Instant::now();
    let mut sim = Sim {
        store: app.store().clone(),
        keys: app.keys().clone(),
        policy: app.policy().clone(),
        actor: Uuid::from_u128(0xAD),
        rng: Rng(seed),
        states: HashMap::new(),
        pending: Vec::new(),
        index: HashMap::new(),
        flushed: 0,
        events: 0,
        commands: 0,
        rejected: BTreeMap::new(),
    };
    let counties: Vec<RegionCode> = RegionCode::all()
        .filter(|c| c.level() == region::RegionLevel::County && !c.is_retired())
        .collect();
    let retired: Vec<RegionCode> = RegionCode::all().filter(|c| c.is_retired()).collect();
    let cities: Vec<RegionCode> = RegionCode::all()
        .filter(|c| c.level() == region::RegionLevel::Prefecture)
        .collect();
    let first_day = day(2019, 1, 1);
    let last_day = day(2025, 12, 31);

    let bodies = sim.register_bodies(&cities, first_day).await?;
    // About 150 events per model worker over the simulated years.
    let n = (size.events / 150).max(8);
    let mut workers = sim.plan_workers(n, first_day, &counties, &retired);

    let mut today = first_day;
    'days: while today <= last_day {
        for w in workers.iter_mut() {
            if sim.events >= size.events {
                break 'days;
            }
            if !w.registered {
                if w.registers_on != today {
                    continue;
                }
                w.registered = true;
                sim.register_worker(w, today).await?;
            }
            if !w.active {
                sim.erase_if_due(w, today).await?;
                continue;
            }
            // (Re)pairing with a newly appointed director.
            if w.reassign_on == Some(today) {
                w.reassign_on = None;
                sim.pair_with_new_director(w, &bodies, today).await?;
            }
            let (Some(pairing), Some(director)) = (w.pairing, w.director) else {
                continue;
            };
            if today >= w.next_visit {
                sim.visit(w, pairing, director, &bodies, today).await?;
            }
            if today >= w.next_contact {
                sim.contact(w, pairing, today).await?;
            }
            if let Some(fix) = w.fix
                && fix.on <= today
            {
                w.fix = None;
                sim.fix_visit(fix, today).await?;
            }
            if w.issue.as_ref().is_some_and(|issue| issue.next <= today) {
                sim.advance_issue(w, director, today).await?;
            }
            sim.life_events(w, pairing, director, &counties, today)
                .await?;
        }
        today = plus(today, 1);
    }
    sim.flush().await?;
    Ok(GenerateReport {
        seed,
        events: sim.events,
        commands: sim.commands,
        rejected: sim.rejected,
        model_workers: n,
        first_day,
        last_day: today.min(last_day),
        seconds: started.elapsed().as_secs_f64(),
    })
}
