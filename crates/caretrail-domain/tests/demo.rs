//! The article's October 2021 visits run through decide/evolve in memory; then every event is
//! sealed through the personal-field visitor, stored as JSON, and read back (with the v1 → v2
//! upcast of `VisitRecorded`).

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use caretrail_domain::decide::{Context, Policy};
use caretrail_domain::demo;
use caretrail_domain::event::Event;
use caretrail_domain::personal::PLAIN_NOT_STORABLE;
use caretrail_domain::state::{IssueStatus, State};
use caretrail_domain::testing::{InMemory, TEST_ACTOR};
use caretrail_domain::vocab::GiftKind;
use caretrail_domain::*;

fn run_demo() -> InMemory {
    let policy = Policy::default();
    let ctx = Context {
        today: demo::today(),
        actor: TEST_ACTOR,
        policy: &policy,
    };
    let mut store = InMemory::new();
    for c in demo::october_2021() {
        if let Err(r) = store.execute(&c, &ctx) {
            panic!("demo command {} refused: {} ({r})", c.name(), r.code());
        }
    }
    store
}

fn count(store: &InMemory, event_type: &str) -> usize {
    store
        .log
        .iter()
        .filter(|(_, e)| e.event_type() == event_type)
        .count()
}

#[test]
fn the_whole_demo_is_accepted_with_the_article_counts() {
    let store = run_demo();
    assert_eq!(count(&store, "BodyRegistered"), 5);
    assert_eq!(count(&store, "DirectorAppointed"), 10);
    assert_eq!(count(&store, "ModelWorkerRegistered"), 9);
    assert_eq!(count(&store, "PairAssigned"), 8);
    assert_eq!(count(&store, "VisitRecorded"), 9);
    assert_eq!(count(&store, "IssueClosed"), 1);

    let visits: Vec<_> = store
        .log
        .iter()
        .filter_map(|(_, e)| match e {
            Event::VisitRecorded(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(
        visits.iter().filter(|v| v.pairing_id.is_none()).count(),
        1,
        "陈良松's visit is ad hoc"
    );
    assert_eq!(
        visits.iter().filter(|v| v.medical_advice_given).count(),
        1,
        "medical advice for 徐云华"
    );
    assert_eq!(
        visits
            .iter()
            .filter(|v| !v.benefit_checks.is_empty())
            .count(),
        1,
        "benefits check for 俞培叶"
    );
    assert_eq!(
        visits.iter().filter(|v| v.contact_exchanged.wechat).count(),
        2
    );
    assert!(visits.iter().all(|v| !v.late_entry));
    let cash: Vec<Fen> = visits
        .iter()
        .flat_map(|v| &v.gifts)
        .filter(|g| g.kind == GiftKind::Cash)
        .filter_map(|g| g.amount_fen)
        .collect();
    assert_eq!(cash.len(), 9);
    assert_eq!(
        Fen::sum(cash).unwrap().to_string(),
        "9000.00",
        "9 example amounts of 1000 yuan"
    );
    assert!(
        visits
            .iter()
            .flat_map(|v| &v.gifts)
            .filter(|g| g.kind == GiftKind::Cash)
            .all(|g| g.description.as_deref() == Some(demo::EXAMPLE_LABEL))
    );
    let regions: BTreeSet<String> = visits.iter().map(|v| v.region_code.to_string()).collect();
    for code in [
        "330100", "330825", "330783", "330300", "330302", "330212", "330400",
    ] {
        assert!(regions.contains(code), "{code} recorded");
    }
    match store.state(&StreamName::new(Category::Issue, demo::PIPE_ISSUE.0)) {
        State::Issue(s) => assert_eq!(s.info.map(|i| i.status), Some(IssueStatus::Closed)),
        other => panic!("unexpected state {other:?}"),
    }
}

const NAMES: [&str; 6] = ["冯亚丽", "俞培叶", "张根仙", "徐雄强", "陈志芳", "水管堵塞"];

/// A stand-in for the crypto layer: replaces plaintext by a Sealed value that does not contain it.
fn seal(event: &mut Event) -> usize {
    let mut n = 0;
    event.personal_fields_mut(&mut |r, value| {
        if let Personal::Plain(text) = value {
            *value = Personal::Sealed(Sealed {
                subject: r.subject,
                nonce: format!("{}", r.field),
                ciphertext: format!("{}-chars", text.chars().count()),
            });
            n += 1;
        }
    });
    n
}

#[test]
fn plaintext_events_cannot_be_stored_and_sealed_ones_round_trip() {
    let store = run_demo();
    let mut sealed_fields = 0;
    for (_, event) in &store.log {
        let mut event = event.clone();
        let had_plain = {
            let mut any = false;
            event
                .clone()
                .personal_fields_mut(&mut |_, v| any |= matches!(v, Personal::Plain(_)));
            any
        };
        if had_plain {
            let err = event.to_data().unwrap_err();
            assert!(
                err.to_string().contains(PLAIN_NOT_STORABLE),
                "{}",
                event.event_type()
            );
        }
        sealed_fields += seal(&mut event);
        let data = event.to_data().expect("sealed events serialize");
        assert!(data.is_object());
        let text = data.to_string();
        for name in NAMES {
            assert!(!text.contains(name), "{} leaks {name}", event.event_type());
        }
        let back = Event::from_data(event.event_type(), event.schema_version(), data).unwrap();
        assert_eq!(back, event);
    }
    // 10 director names + 9 model worker names + 2 named officials + places, reasons and notes.
    assert!(
        sealed_fields >= 21 + 9,
        "only {sealed_fields} personal fields were visited"
    );
}

#[test]
fn personal_fields_are_named_with_their_subject() {
    let store = run_demo();
    let mut refs = Vec::new();
    for (_, e) in &store.log {
        let mut e = e.clone();
        e.personal_fields_mut(&mut |r, _| refs.push(r));
    }
    assert!(refs.contains(&PersonalRef::new(demo::workers::YU_PEIYE.0, "name")));
    assert!(refs.contains(&PersonalRef::new(demo::directors::FENG_YALI.0, "name")));
    // A named official is sealed under the official's own key, not the model worker's.
    assert!(refs.contains(&PersonalRef::indexed(
        demo::XU_XIONGQIANG.0,
        "participants",
        1,
        "name"
    )));
    assert!(refs.contains(&PersonalRef::new(
        demo::workers::ZHANG_GENXIAN.0,
        "description"
    )));
}

#[test]
fn visit_recorded_v1_is_read_as_v2_without_medical_advice() {
    let store = run_demo();
    let (_, visit) = store
        .log
        .iter()
        .find(|(_, e)| matches!(e, Event::VisitRecorded(v) if v.medical_advice_given))
        .expect("the demo has a visit with medical advice");
    let mut visit = visit.clone();
    seal(&mut visit);
    assert_eq!(visit.schema_version(), 2);
    let mut v1 = visit.to_data().unwrap();
    v1.as_object_mut().unwrap().remove("medical_advice_given");
    assert!(
        Event::from_data("VisitRecorded", 2, v1.clone()).is_err(),
        "v2 requires the field"
    );
    let (version, upcast_data) = upcast("VisitRecorded", 1, v1.clone()).unwrap();
    assert_eq!(version, 2);
    assert_eq!(
        upcast_data["medical_advice_given"],
        serde_json::Value::Bool(false)
    );
    let Event::VisitRecorded(read) = Event::from_data("VisitRecorded", 1, v1).unwrap() else {
        panic!("read back as another type");
    };
    assert!(!read.medical_advice_given);
}
