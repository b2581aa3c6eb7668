//! Property tests where rules interact: random sequences of assign / end / visit / contact /
//! void / term end / death never leave two active pairings for one director or one model
//! worker, never overlap pairing periods, and never keep an accepted visit on a pairing that
//! was not in force on the visit's date. The invariants are recomputed from the event log
//! alone, independently of the aggregate states the decision used.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use caretrail_domain::command::*;
use caretrail_domain::decide::{Context, Policy};
use caretrail_domain::event::Event;
use caretrail_domain::testing::{InMemory, TEST_ACTOR};
use caretrail_domain::vocab::*;
use caretrail_domain::*;
use chrono::{Days, NaiveDate};
use common::*;
use proptest::prelude::*;

const DIRECTORS: [DirectorId; 3] = [
    DirectorId::from_u128(0xD0),
    DirectorId::from_u128(0xD1),
    DirectorId::from_u128(0xD2),
];
const WORKERS: [ModelWorkerId; 3] = [
    ModelWorkerId::from_u128(0xE0),
    ModelWorkerId::from_u128(0xE1),
    ModelWorkerId::from_u128(0xE2),
];

fn day(n: u64) -> NaiveDate {
    date(2021, 1, 1) + Days::new(n)
}

#[derive(Debug, Clone)]
enum Op {
    Assign { p: u8, d: usize, m: usize, day: u64 },
    End { p: u8, day: u64 },
    Visit { p: u8, m: usize, day: u64 },
    Contact { p: u8, day: u64 },
    Void { v: u8 },
    Correct { v: u8, day: u64 },
    TermEnd { d: usize, day: u64 },
    Death { m: usize, day: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, 0usize..3, 0usize..3, 0u64..300).prop_map(|(p, d, m, day)| Op::Assign { p, d, m, day }),
        2 => (0u8..6, 0u64..300).prop_map(|(p, day)| Op::End { p, day }),
        4 => (0u8..6, 0usize..3, 0u64..320).prop_map(|(p, m, day)| Op::Visit { p, m, day }),
        1 => (0u8..6, 0u64..300).prop_map(|(p, day)| Op::Contact { p, day }),
        1 => (0u8..20).prop_map(|v| Op::Void { v }),
        1 => (0u8..20, 0u64..300).prop_map(|(v, day)| Op::Correct { v, day }),
        1 => (0usize..3, 0u64..300).prop_map(|(d, day)| Op::TermEnd { d, day }),
        1 => (0usize..3, 0u64..300).prop_map(|(m, day)| Op::Death { m, day }),
    ]
}

fn pid(p: u8) -> PairingId {
    PairingId::from_u128(0xF00 + u128::from(p))
}

fn vid(v: u8) -> VisitId {
    VisitId::from_u128(0xA00 + u128::from(v))
}

fn command(op: &Op, next_visit: &mut u8) -> Command {
    match *op {
        Op::Assign { p, d, m, day: n } => assign(pid(p), DIRECTORS[d], WORKERS[m], day(n)),
        Op::End { p, day: n } => end_pair(pid(p), day(n)),
        Op::Visit { p, m, day: n } => {
            let v = vid(*next_visit);
            *next_visit = next_visit.wrapping_add(1) % 20;
            visit(v, pid(p), WORKERS[m], DIRECTORS[0], day(n)).into()
        }
        Op::Contact { p, day: n } => RecordContact {
            contact_id: ContactId::from_u128(0xC00 + u128::from(p) * 1000 + u128::from(n as u16)),
            pairing_id: pid(p),
            on: day(n),
            channel: ContactChannel::Phone,
            note: None,
        }
        .into(),
        Op::Void { v } => VoidVisit {
            visit_id: vid(v),
            reason: plain("录入错误"),
        }
        .into(),
        Op::Correct { v, day: n } => CorrectVisit {
            visit_id: vid(v),
            reason: plain("日期更正"),
            changes: VisitChanges {
                visited_on: Some(day(n)),
                ..Default::default()
            },
        }
        .into(),
        Op::TermEnd { d, day: n } => EndDirectorTerm {
            director_id: DIRECTORS[d],
            ended_on: Some(day(n)),
        }
        .into(),
        Op::Death { m, day: n } => RecordDeath {
            model_worker_id: WORKERS[m],
            died_on: day(n),
        }
        .into(),
    }
}

fn setup() -> Vec<Command> {
    let mut c = vec![body(ASSOC, BodyKind::Association, "协会")];
    for d in DIRECTORS {
        c.push(appoint(d));
    }
    for m in WORKERS {
        c.push(register(m));
        c.push(hardship(m));
    }
    c
}

/// Pairing periods, visit dates and activity, recomputed from the log alone.
fn check_log(log: &[(StreamName, Event)]) -> Result<(), TestCaseError> {
    let mut periods: BTreeMap<
        PairingId,
        (DirectorId, ModelWorkerId, NaiveDate, Option<NaiveDate>),
    > = BTreeMap::new();
    let mut visits: BTreeMap<VisitId, (PairingId, NaiveDate)> = BTreeMap::new();
    let mut voided = BTreeSet::new();
    let mut contacts = Vec::new();
    for (_, e) in log {
        match e {
            Event::PairAssigned(e) => {
                periods.insert(
                    e.pairing_id,
                    (e.director_id, e.model_worker_id, e.effective_from, None),
                );
            }
            Event::PairEnded(e) => {
                let p = periods
                    .get_mut(&e.pairing_id)
                    .expect("ended pairing was assigned");
                prop_assert!(p.3.is_none(), "pairing ended twice");
                p.3 = Some(e.ended_on);
            }
            Event::VisitRecorded(e) => {
                if let Some(p) = e.pairing_id {
                    visits.insert(e.visit_id, (p, e.visited_on));
                }
            }
            Event::VisitCorrected(e) => {
                if let (Some(v), Some(d)) = (visits.get_mut(&e.visit_id), e.changes.visited_on) {
                    v.1 = d;
                }
            }
            Event::VisitVoided(e) => {
                voided.insert(e.visit_id);
            }
            Event::ContactRecorded(e) => contacts.push((e.pairing_id, e.on)),
            _ => {}
        }
    }
    let list: Vec<_> = periods.values().collect();
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            let overlap =
                a.2 <= b.3.unwrap_or(NaiveDate::MAX) && b.2 <= a.3.unwrap_or(NaiveDate::MAX);
            prop_assert!(
                !(a.0 == b.0 && overlap),
                "director {} has overlapping pairings",
                a.0
            );
            prop_assert!(
                !(a.1 == b.1 && overlap),
                "model worker {} has overlapping pairings",
                a.1
            );
        }
    }
    for d in DIRECTORS {
        let active = list.iter().filter(|p| p.0 == d && p.3.is_none()).count();
        prop_assert!(active <= 1, "director {d} has {active} active pairings");
    }
    for m in WORKERS {
        let active = list.iter().filter(|p| p.1 == m && p.3.is_none()).count();
        prop_assert!(active <= 1, "model worker {m} has {active} active pairings");
    }
    let in_force = |p: &PairingId, on: NaiveDate| {
        periods
            .get(p)
            .is_some_and(|(_, _, from, end)| *from <= on && end.is_none_or(|e| on <= e))
    };
    for (v, (p, on)) in &visits {
        if !voided.contains(v) {
            prop_assert!(
                in_force(p, *on),
                "visit {v} on {on} lies outside its pairing"
            );
        }
    }
    for (p, on) in &contacts {
        prop_assert!(in_force(p, *on), "contact on {on} lies outside its pairing");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pairing_rules_hold_under_random_sequences(ops in proptest::collection::vec(op(), 1..40)) {
        let policy = Policy::default();
        let ctx = Context { today: day(304), actor: TEST_ACTOR, policy: &policy };
        let mut store = InMemory::new();
        for c in setup() {
            prop_assert!(store.execute(&c, &ctx).is_ok());
        }
        let mut next_visit = 0u8;
        for op in &ops {
            let c = command(op, &mut next_visit);
            // Refusals are expected; what matters is what the accepted commands leave behind.
            let _ = store.execute(&c, &ctx);
            check_log(&store.log)?;
        }
        // Folding each stream from the log gives the same state as applying events one by one.
        let streams: BTreeSet<StreamName> = store.log.iter().map(|(s, _)| *s).collect();
        for s in streams {
            prop_assert_eq!(store.state(&s), store.refold(&s));
        }
    }
}
