//! Model workers: registration, hardship, relocation and death.

use super::*;

#[test]
fn register_model_worker_is_accepted() {
    given(vec![]).when(register(MW)).then([(
        stream(ModelWorker, MW),
        ModelWorkerRegistered {
            model_worker_id: MW,
            honour: Honour::NationalModelWorker,
            honour_year: None,
            occupation: None,
            region_code: region("330100"),
            name: plain("测试劳模"),
            gender: None,
            birth_year: None,
            phone: None,
            wechat: None,
            address: None,
            id_number: None,
            registered_on: date(2021, 11, 1),
        }
        .into(),
    )]);
}

#[test]
fn register_model_worker_twice_is_refused() {
    given(history(vec![register(MW)]))
        .when(register(MW))
        .then_err("model_worker_already_registered");
}

#[test]
fn register_model_worker_needs_a_name() {
    let Command::RegisterModelWorker(mut c) = register(MW) else {
        unreachable!()
    };
    c.name = plain("  ");
    given(vec![])
        .when(c.clone())
        .then_err("required_text_empty");
    c.name = Personal::Sealed(Sealed {
        subject: MW.0,
        nonce: "n".into(),
        ciphertext: "x".into(),
    });
    given(vec![]).when(c).then_err("personal_data_not_plain");
}

#[test]
fn assess_hardship_is_accepted() {
    given(history(vec![register(MW)]))
        .when(hardship(MW))
        .then([(
            stream(ModelWorker, MW),
            HardshipAssessed {
                model_worker_id: MW,
                tier: HardshipTier::Relative,
                causes: vec![HardshipCause::OldAge],
                assessed_on: date(2021, 9, 1),
                by: TEST_ACTOR.id,
                note: None,
            }
            .into(),
        )]);
}

#[test]
fn assess_hardship_refusals() {
    given(vec![])
        .when(hardship(MW))
        .then_err("unknown_model_worker");
    let Command::AssessHardship(mut c) = hardship(MW) else {
        unreachable!()
    };
    c.causes.clear();
    given(history(vec![register(MW)]))
        .when(c.clone())
        .then_err("hardship_causes_empty");
    c.causes = vec![HardshipCause::Illness];
    c.assessed_on = Some(date(2021, 11, 2));
    given(history(vec![register(MW)]))
        .when(c)
        .then_err("date_in_future");
    given(history(vec![
        register(MW),
        RecordDeath {
            model_worker_id: MW,
            died_on: date(2021, 5, 1),
        }
        .into(),
    ]))
    .when(hardship(MW))
    .then_err("model_worker_deceased");
}

#[test]
fn exit_hardship_is_accepted_and_needs_hardship() {
    let exit = ExitHardship {
        model_worker_id: MW,
        exited_on: None,
        reason: Some(plain("收入改善")),
    };
    given(history(vec![register(MW), hardship(MW)]))
        .when(exit.clone())
        .then([(
            stream(ModelWorker, MW),
            HardshipExited {
                model_worker_id: MW,
                exited_on: date(2021, 11, 1),
                reason: Some(plain("收入改善")),
            }
            .into(),
        )]);
    given(history(vec![register(MW)]))
        .when(exit.clone())
        .then_err("model_worker_not_in_hardship");
    given(vec![]).when(exit).then_err("unknown_model_worker");
}

#[test]
fn record_relocation_is_accepted() {
    let cmd = RecordRelocation {
        model_worker_id: MW,
        region_code: region("330825"),
        moved_on: Some(date(2021, 6, 1)),
        address: Some(plain("某镇某村")),
    };
    given(history(vec![register(MW)])).when(cmd.clone()).then([(
        stream(ModelWorker, MW),
        ModelWorkerRelocated {
            model_worker_id: MW,
            region_code: region("330825"),
            moved_on: date(2021, 6, 1),
            address: Some(plain("某镇某村")),
        }
        .into(),
    )]);
    given(vec![])
        .when(cmd.clone())
        .then_err("unknown_model_worker");
    given(history(vec![
        register(MW),
        RecordDeath {
            model_worker_id: MW,
            died_on: date(2021, 5, 1),
        }
        .into(),
    ]))
    .when(cmd)
    .then_err("model_worker_deceased");
}

#[test]
fn region_codes_are_parsed_at_the_boundary() {
    let body = serde_json::json!({"model_worker_id": MW.0, "region_code": "110101"});
    let err = Command::parse("RecordRelocation", body).unwrap_err();
    assert_eq!(err.code(), "invalid_command_body");
    assert!(
        err.to_string().contains("not a known Zhejiang division"),
        "{err}"
    );
}

#[test]
fn record_death_without_pairing_is_accepted() {
    given(history(vec![register(MW)]))
        .when(RecordDeath {
            model_worker_id: MW,
            died_on: date(2021, 10, 20),
        })
        .then([(
            stream(ModelWorker, MW),
            ModelWorkerDied {
                model_worker_id: MW,
                died_on: date(2021, 10, 20),
            }
            .into(),
        )]);
}

#[test]
fn record_death_ends_the_active_pairing_on_all_three_streams() {
    given(history(paired()))
        .when(RecordDeath {
            model_worker_id: MW,
            died_on: date(2021, 10, 20),
        })
        .then([
            (
                stream(ModelWorker, MW),
                ModelWorkerDied {
                    model_worker_id: MW,
                    died_on: date(2021, 10, 20),
                }
                .into(),
            ),
            (
                stream(Pairing, P),
                PairEnded {
                    pairing_id: P,
                    director_id: D,
                    model_worker_id: MW,
                    ended_on: date(2021, 10, 20),
                    reason: PairEndReason::ModelWorkerDied,
                    note: None,
                }
                .into(),
            ),
            (
                stream(Director, D),
                DirectorUnpaired {
                    director_id: D,
                    pairing_id: P,
                    ended_on: date(2021, 10, 20),
                }
                .into(),
            ),
            (
                stream(ModelWorker, MW),
                ModelWorkerUnpaired {
                    model_worker_id: MW,
                    pairing_id: P,
                    ended_on: date(2021, 10, 20),
                }
                .into(),
            ),
        ]);
}

#[test]
fn record_death_refusals() {
    let death = RecordDeath {
        model_worker_id: MW,
        died_on: date(2021, 10, 20),
    };
    given(vec![])
        .when(death.clone())
        .then_err("unknown_model_worker");
    given(history(with(world(), [death.clone().into()])))
        .when(death.clone())
        .then_err("model_worker_deceased");
    given(history(world()))
        .when(RecordDeath {
            model_worker_id: MW,
            died_on: date(2021, 11, 2),
        })
        .then_err("date_in_future");
    // A death dated before a recorded visit would leave that visit outside the pairing.
    given(history(with(
        paired(),
        [visit(V, P, MW, D, date(2021, 10, 25)).into()],
    )))
    .when(death)
    .then_err("pair_end_before_last_activity");
}
