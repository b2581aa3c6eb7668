//! Pairings: assignment, one pairing per director and per model worker, ending.

use super::*;

#[test]
fn assign_pair_writes_to_pairing_director_and_model_worker() {
    given(history(world()))
        .when(assign(P, D, MW, date(2021, 10, 1)))
        .then([
            (
                stream(Pairing, P),
                PairAssigned {
                    pairing_id: P,
                    director_id: D,
                    model_worker_id: MW,
                    effective_from: date(2021, 10, 1),
                    visit_policy: VisitPolicy {
                        max_days_between_visits: 183,
                        due_soon_window_days: 30,
                    },
                }
                .into(),
            ),
            (
                stream(Director, D),
                DirectorPaired {
                    director_id: D,
                    pairing_id: P,
                    model_worker_id: MW,
                    effective_from: date(2021, 10, 1),
                }
                .into(),
            ),
            (
                stream(ModelWorker, MW),
                ModelWorkerPaired {
                    model_worker_id: MW,
                    pairing_id: P,
                    director_id: D,
                    effective_from: date(2021, 10, 1),
                }
                .into(),
            ),
        ]);
}

#[test]
fn assign_pair_keeps_a_per_pairing_visit_policy() {
    let Command::AssignPair(mut c) = assign(P, D, MW, date(2021, 10, 1)) else {
        unreachable!()
    };
    c.visit_policy = Some(VisitPolicy {
        max_days_between_visits: 90,
        due_soon_window_days: 14,
    });
    let events = given(history(world())).when(c.clone()).result().unwrap();
    let Event::PairAssigned(e) = &events[0].1 else {
        panic!("first event is PairAssigned")
    };
    assert_eq!(e.visit_policy.max_days_between_visits, 90);
    c.visit_policy = Some(VisitPolicy {
        max_days_between_visits: 30,
        due_soon_window_days: 30,
    });
    given(history(world()))
        .when(c)
        .then_err("visit_policy_invalid");
}

#[test]
fn assign_pair_refusals() {
    let from = date(2021, 10, 1);
    given(history(paired()))
        .when(assign(P, D2, MW2, from))
        .then_err("pairing_already_exists");
    given(history(world()))
        .when(assign(P, D2, MW, from))
        .then_err("unknown_director");
    given(history(world()))
        .when(assign(P, D, MW2, from))
        .then_err("unknown_model_worker");
    given(history(world()))
        .when(assign(P, D, MW, date(2020, 6, 1)))
        .then_err("director_not_in_term");
    given(history(with(world(), [register(MW2)])))
        .when(assign(P, D, MW2, from))
        .then_err("model_worker_not_in_hardship");
    given(history(with(
        world(),
        [RecordDeath {
            model_worker_id: MW,
            died_on: date(2021, 9, 1),
        }
        .into()],
    )))
    .when(assign(P, D, MW, from))
    .then_err("model_worker_deceased");
    let exited = ExitHardship {
        model_worker_id: MW,
        exited_on: None,
        reason: None,
    };
    given(history(with(world(), [exited.into()])))
        .when(assign(P, D, MW, from))
        .then_err("model_worker_not_in_hardship");
}

#[test]
fn one_pairing_per_director_and_per_model_worker() {
    let more = with(paired(), [appoint(D2), register(MW2), hardship(MW2)]);
    given(history(more.clone()))
        .when(assign(P2, D, MW2, date(2021, 10, 5)))
        .then_err("director_already_paired");
    given(history(more.clone()))
        .when(assign(P2, D2, MW, date(2021, 10, 5)))
        .then_err("model_worker_already_paired");
    // Policy off: a director may hold two pairings.
    let policy = decide::Policy {
        one_pairing_per_director: false,
        ..Default::default()
    };
    let result = given(history(more))
        .policy(policy)
        .when(assign(P2, D, MW2, date(2021, 10, 5)))
        .result();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn reassignment_is_end_then_assign_without_overlap() {
    let ended = with(
        world(),
        [
            assign(P, D, MW, date(2021, 1, 10)),
            end_pair(P, date(2021, 10, 10)),
        ],
    );
    // Starting on the last day of the old pairing overlaps it.
    given(history(ended.clone()))
        .when(assign(P2, D, MW, date(2021, 10, 10)))
        .then_err("pairing_period_overlaps");
    let policy = decide::Policy {
        one_pairing_per_director: false,
        one_pairing_per_model_worker: false,
        ..Default::default()
    };
    given(history(ended.clone()))
        .policy(policy)
        .when(assign(P2, D, MW, date(2021, 10, 10)))
        .then_err("pairing_period_overlaps");
    let result = given(history(ended))
        .when(assign(P2, D, MW, date(2021, 10, 11)))
        .result();
    assert_eq!(result.map(|d| d.len()), Ok(3));
}

#[test]
fn end_pair_is_accepted() {
    given(history(paired()))
        .when(end_pair(P, date(2021, 10, 15)))
        .then([
            (
                stream(Pairing, P),
                PairEnded {
                    pairing_id: P,
                    director_id: D,
                    model_worker_id: MW,
                    ended_on: date(2021, 10, 15),
                    reason: PairEndReason::Reassigned,
                    note: None,
                }
                .into(),
            ),
            (
                stream(Director, D),
                DirectorUnpaired {
                    director_id: D,
                    pairing_id: P,
                    ended_on: date(2021, 10, 15),
                }
                .into(),
            ),
            (
                stream(ModelWorker, MW),
                ModelWorkerUnpaired {
                    model_worker_id: MW,
                    pairing_id: P,
                    ended_on: date(2021, 10, 15),
                }
                .into(),
            ),
        ]);
}

#[test]
fn end_pair_refusals() {
    given(history(world()))
        .when(end_pair(P, date(2021, 10, 15)))
        .then_err("unknown_pairing");
    given(history(with(paired(), [end_pair(P, date(2021, 10, 15))])))
        .when(end_pair(P, date(2021, 10, 20)))
        .then_err("pairing_already_ended");
    given(history(paired()))
        .when(end_pair(P, date(2021, 9, 30)))
        .then_err("pair_end_before_start");
    given(history(paired()))
        .when(end_pair(P, date(2021, 11, 2)))
        .then_err("date_in_future");
    given(history(with(
        paired(),
        [visit(V, P, MW, D, date(2021, 10, 20)).into()],
    )))
    .when(end_pair(P, date(2021, 10, 19)))
    .then_err("pair_end_before_last_activity");
}
