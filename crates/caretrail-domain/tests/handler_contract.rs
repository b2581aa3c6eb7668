//! The contract the command handler relies on: which streams to load, which to write, and
//! that concurrent decisions on a shared invariant write to a common stream (so optimistic
//! concurrency catches them). Also checks house rules of the crate itself.

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use caretrail_domain::Category::*;
use caretrail_domain::command::RecordDeath;
use caretrail_domain::decide::{Context, Policy};
use caretrail_domain::testing::{InMemory, TEST_ACTOR, default_today};
use caretrail_domain::*;
use common::*;

fn store(commands: Vec<Command>) -> InMemory {
    let mut s = InMemory::new();
    s.append(history(commands));
    s
}

fn written(decision: &Decision) -> BTreeSet<StreamName> {
    decision.iter().map(|(s, _)| *s).collect()
}

#[test]
fn deciding_without_loading_is_a_defect_not_a_user_error() {
    let policy = Policy::default();
    let ctx = Context {
        today: default_today(),
        actor: TEST_ACTOR,
        policy: &policy,
    };
    let err = decide(&States::new(), &register(MW), &ctx).unwrap_err();
    assert_eq!(err.code(), "state_not_loaded");
}

#[test]
fn streams_follow_from_loaded_state_in_a_second_round() {
    let s = store(paired());
    let death: Command = RecordDeath {
        model_worker_id: MW,
        died_on: date(2021, 10, 20),
    }
    .into();
    let first = streams_to_load(&death, &States::new());
    assert_eq!(first, vec![stream(ModelWorker, MW)]);
    let (_, all) = s.load_for(&death);
    let all: BTreeSet<_> = all.into_iter().collect();
    assert_eq!(
        all,
        BTreeSet::from([
            stream(ModelWorker, MW),
            stream(Pairing, P),
            stream(Director, D)
        ])
    );
}

#[test]
fn concurrent_assignments_of_one_director_share_a_written_stream() {
    let s = store(with(world(), [register(MW2), hardship(MW2)]));
    let policy = Policy::default();
    let ctx = Context {
        today: default_today(),
        actor: TEST_ACTOR,
        policy: &policy,
    };
    // Both are decided on the same versions, as two concurrent requests would be.
    let a = s
        .decide(&assign(P, D, MW, date(2021, 10, 1)), &ctx)
        .unwrap();
    let b = s
        .decide(&assign(P2, D, MW2, date(2021, 10, 1)), &ctx)
        .unwrap();
    assert!(
        written(&a).contains(&stream(Director, D)) && written(&b).contains(&stream(Director, D))
    );
}

#[test]
fn a_visit_and_a_concurrent_end_of_its_pairing_share_a_written_stream() {
    let s = store(paired());
    let policy = Policy::default();
    let ctx = Context {
        today: default_today(),
        actor: TEST_ACTOR,
        policy: &policy,
    };
    let v = s
        .decide(&visit(V, P, MW, D, date(2021, 10, 20)).into(), &ctx)
        .unwrap();
    let e = s.decide(&end_pair(P, date(2021, 10, 10)), &ctx).unwrap();
    assert!(written(&v).contains(&stream(Pairing, P)) && written(&e).contains(&stream(Pairing, P)));
}

#[test]
fn rejection_codes_are_unique_snake_case_and_localised() {
    let samples = [
        Rejection::StateNotLoaded { stream: "x".into() },
        Rejection::PersonalDataNotPlain { field: "name" },
        Rejection::RequiredTextEmpty { field: "name" },
        Rejection::DateInFuture { field: "on" },
        Rejection::DirectorAlreadyPaired,
        Rejection::ModelWorkerAlreadyPaired,
        Rejection::PairingNotActiveOnDate,
        Rejection::IssueNotAcknowledged,
        Rejection::VisitDateInFuture,
        Rejection::UnknownBody,
        Rejection::ModelWorkerDeceased,
        Rejection::ModelWorkerNotInHardship,
    ];
    let codes: BTreeSet<_> = samples.iter().map(Rejection::code).collect();
    assert_eq!(codes.len(), samples.len());
    for r in &samples {
        assert!(
            r.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{}",
            r.code()
        );
        assert!(!r.to_string().is_empty() && !r.message_zh().is_empty());
    }
    // Every code in the source is distinct (the list above only samples the enum).
    let source = include_str!("../src/rejection.rs");
    let all: Vec<&str> = source
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "duplicate rejection code");
    assert!(all.len() >= 50);
}

#[test]
fn every_module_says_what_it_is_for() {
    // Submodules (`decide/visit.rs`) are modules too: walk the whole tree.
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut checked = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("//! "),
                "{} has no //! module doc",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 15, "only {checked} modules found");
}
