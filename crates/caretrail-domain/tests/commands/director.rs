//! Directors and bodies: appointment, terms, reappointment, body registration.

use super::*;

#[test]
fn appoint_director_is_accepted() {
    given(history(vec![body(ASSOC, BodyKind::Association, "协会")]))
        .when(appoint(D))
        .then([(
            stream(Director, D),
            DirectorAppointed {
                director_id: D,
                body_id: ASSOC,
                role: DirectorRole::StandingDirector,
                term: Term {
                    from: date(2021, 1, 1),
                    until: None,
                },
                name: plain("测试理事"),
                model_worker_id: None,
                phone: None,
                wechat: None,
            }
            .into(),
        )]);
}

#[test]
fn appoint_director_refusals() {
    given(vec![]).when(appoint(D)).then_err("unknown_body");
    given(history(world()))
        .when(appoint(D))
        .then_err("director_already_appointed");
    let Command::AppointDirector(mut c) = appoint(D2) else {
        unreachable!()
    };
    c.term.until = Some(date(2020, 1, 1));
    given(history(world()))
        .when(c.clone())
        .then_err("term_invalid");
    // A new term may not start on or before the day the previous one ended.
    c.director_id = D;
    c.term = Term {
        from: date(2021, 3, 1),
        until: None,
    };
    given(history(with(
        world(),
        [EndDirectorTerm {
            director_id: D,
            ended_on: Some(date(2021, 3, 1)),
        }
        .into()],
    )))
    .when(c)
    .then_err("term_invalid");
}

#[test]
fn reappointment_after_a_term_ended_is_accepted() {
    let Command::AppointDirector(mut c) = appoint(D) else {
        unreachable!()
    };
    c.term = Term {
        from: date(2021, 4, 1),
        until: None,
    };
    let result = given(history(with(
        world(),
        [EndDirectorTerm {
            director_id: D,
            ended_on: Some(date(2021, 3, 1)),
        }
        .into()],
    )))
    .when(c)
    .result();
    assert_eq!(result.map(|d| d.len()), Ok(1));
}

#[test]
fn end_director_term_without_pairing_is_accepted() {
    given(history(world()))
        .when(EndDirectorTerm {
            director_id: D,
            ended_on: None,
        })
        .then([(
            stream(Director, D),
            DirectorTermEnded {
                director_id: D,
                ended_on: date(2021, 11, 1),
            }
            .into(),
        )]);
}

#[test]
fn end_director_term_ends_the_active_pairing() {
    given(history(paired()))
        .when(EndDirectorTerm {
            director_id: D,
            ended_on: Some(date(2021, 10, 31)),
        })
        .then([
            (
                stream(Pairing, P),
                PairEnded {
                    pairing_id: P,
                    director_id: D,
                    model_worker_id: MW,
                    ended_on: date(2021, 10, 31),
                    reason: PairEndReason::DirectorTermEnded,
                    note: None,
                }
                .into(),
            ),
            (
                stream(Director, D),
                DirectorUnpaired {
                    director_id: D,
                    pairing_id: P,
                    ended_on: date(2021, 10, 31),
                }
                .into(),
            ),
            (
                stream(ModelWorker, MW),
                ModelWorkerUnpaired {
                    model_worker_id: MW,
                    pairing_id: P,
                    ended_on: date(2021, 10, 31),
                }
                .into(),
            ),
            (
                stream(Director, D),
                DirectorTermEnded {
                    director_id: D,
                    ended_on: date(2021, 10, 31),
                }
                .into(),
            ),
        ]);
}

#[test]
fn end_director_term_refusals() {
    let end = EndDirectorTerm {
        director_id: D,
        ended_on: None,
    };
    given(vec![]).when(end.clone()).then_err("unknown_director");
    given(history(with(world(), [end.clone().into()])))
        .when(end)
        .then_err("director_not_in_term");
    given(history(world()))
        .when(EndDirectorTerm {
            director_id: D,
            ended_on: Some(date(2021, 11, 2)),
        })
        .then_err("date_in_future");
    given(history(world()))
        .when(EndDirectorTerm {
            director_id: D,
            ended_on: Some(date(2020, 12, 31)),
        })
        .then_err("term_end_before_start");
    given(history(paired()))
        .when(EndDirectorTerm {
            director_id: D,
            ended_on: Some(date(2021, 9, 30)),
        })
        .then_err("pair_end_before_start");
}

#[test]
fn register_body_is_accepted_once_with_a_name() {
    given(vec![])
        .when(body(UNION, BodyKind::UnionCity, " 衢州市总工会 "))
        .then([(
            stream(Body, UNION),
            BodyRegistered {
                body_id: UNION,
                kind: BodyKind::UnionCity,
                name: "衢州市总工会".into(),
                region_code: None,
            }
            .into(),
        )]);
    given(history(world()))
        .when(body(ASSOC, BodyKind::Association, "x"))
        .then_err("body_already_registered");
    given(vec![])
        .when(body(UNION, BodyKind::UnionCity, " "))
        .then_err("required_text_empty");
}
