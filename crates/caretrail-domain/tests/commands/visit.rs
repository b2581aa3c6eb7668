//! Visits: recording, amounts and gifts, who leads, correcting and voiding.

use super::*;

fn full_visit() -> RecordVisit {
    let mut v = visit(V, P, MW, D, date(2021, 10, 13));
    v.place = Some(plain("杭州某小区"));
    v.participants.push(Participant {
        who: ParticipantWho::Named {
            person_id: OFFICIAL,
            name: plain("某官员"),
        },
        role: ParticipantRole::UnionOfficial,
        office: Some("党组书记、副主席".into()),
        body_id: Some(TEAM),
    });
    v.gifts = vec![
        Gift {
            kind: GiftKind::Cash,
            amount_fen: Some(Fen::from_yuan(1000).unwrap()),
            description: Some("示例金额（原文未载明）".into()),
        },
        Gift {
            kind: GiftKind::Flowers,
            amount_fen: None,
            description: None,
        },
    ];
    v.findings.health = Some(plain("身体尚可"));
    v.contact_exchanged = ContactExchanged {
        phone: true,
        wechat: true,
    };
    v.medical_advice_given = true;
    v.benefit_checks = vec![BenefitCheck {
        benefit: "劳模待遇".into(),
        status: BenefitStatus::Unknown,
    }];
    v
}

#[test]
fn record_visit_on_a_pairing_is_accepted() {
    let v = full_visit();
    given(history(paired())).when(v.clone()).then([
        (
            stream(Visit, V),
            VisitRecorded {
                visit_id: V,
                model_worker_id: MW,
                pairing_id: Some(P),
                director_id: Some(D),
                adhoc_reason: None,
                visited_on: date(2021, 10, 13),
                region_code: region("330100"),
                place: v.place.clone(),
                participants: v.participants.clone(),
                gifts: v.gifts.clone(),
                findings: v.findings.clone(),
                contact_exchanged: ContactExchanged {
                    phone: true,
                    wechat: true,
                },
                medical_advice_given: true,
                benefit_checks: v.benefit_checks.clone(),
                late_entry: false,
            }
            .into(),
        ),
        (
            stream(Pairing, P),
            PairActivityLogged {
                pairing_id: P,
                activity_id: V.0,
                kind: ActivityKind::Visit,
                on: date(2021, 10, 13),
            }
            .into(),
        ),
    ]);
}

#[test]
fn adhoc_visit_is_accepted_and_late_entries_are_flagged() {
    let mut v = visit(V, P, MW, D, date(2021, 9, 1));
    v.pairing_id = None;
    v.adhoc_reason = Some(plain("节日慰问"));
    let events = given(history(world())).when(v).result().unwrap();
    assert_eq!(
        events.len(),
        1,
        "an ad-hoc visit writes only its own stream"
    );
    let Event::VisitRecorded(e) = &events[0].1 else {
        panic!()
    };
    assert!(
        e.late_entry,
        "61 days after the visit is a late entry under the default 30-day policy"
    );
    assert_eq!(e.director_id, None);
}

#[test]
fn record_visit_refusals() {
    let base = || visit(V, P, MW, D, date(2021, 10, 13));
    given(history(with(paired(), [base().into()])))
        .when(base())
        .then_err("visit_already_recorded");
    given(history(paired()))
        .when(visit(V, P, MW, D, date(2021, 11, 2)))
        .then_err("visit_date_in_future");
    given(history(paired()))
        .when(visit(V, P, MW, D, date(2021, 9, 30)))
        .then_err("pairing_not_active_on_date");
    given(history(with(paired(), [end_pair(P, date(2021, 10, 10))])))
        .when(base())
        .then_err("pairing_not_active_on_date");
    given(history(world()))
        .when(base())
        .then_err("unknown_pairing");
    given(history(with(paired(), [register(MW2)])))
        .when(visit(V, P, MW2, D, date(2021, 10, 13)))
        .then_err("visit_model_worker_mismatch");
    given(history(paired()))
        .when(visit(V, P, MW2, D, date(2021, 10, 13)))
        .then_err("unknown_model_worker");
    let mut v = base();
    v.pairing_id = None;
    given(history(paired()))
        .when(v.clone())
        .then_err("visit_needs_pairing_or_adhoc_reason");
    v.pairing_id = Some(P);
    v.adhoc_reason = Some(plain("原因"));
    given(history(paired()))
        .when(v)
        .then_err("visit_has_pairing_and_adhoc_reason");
    let mut v = base();
    v.participants.clear();
    given(history(paired()))
        .when(v.clone())
        .then_err("visit_without_participants");
    v.participants = vec![lead(D), lead(D)];
    given(history(paired()))
        .when(v.clone())
        .then_err("visit_needs_one_lead");
    v.participants = vec![lead(D2)];
    given(history(paired()))
        .when(v.clone())
        .then_err("unknown_director");
    v.participants = vec![Participant {
        body_id: Some(UNION),
        ..lead(D)
    }];
    given(history(paired()))
        .when(v.clone())
        .then_err("unknown_body");
    v.participants = vec![lead(D)];
    v.gifts = vec![Gift {
        kind: GiftKind::Cash,
        amount_fen: None,
        description: None,
    }];
    given(history(paired()))
        .when(v.clone())
        .then_err("cash_gift_without_amount");
    let max = Fen::new(i64::MAX).unwrap();
    v.gifts = vec![
        Gift {
            kind: GiftKind::Cash,
            amount_fen: Some(max),
            description: None,
        },
        Gift {
            kind: GiftKind::Goods,
            amount_fen: Some(Fen::new(1).unwrap()),
            description: None,
        },
    ];
    // Caught by the cap by default; a policy without one still refuses a total that does
    // not fit.
    given(history(paired()))
        .when(v.clone())
        .then_err("gift_amount_above_cap");
    given(history(paired()))
        .policy(Policy {
            max_gift_fen: max,
            ..Policy::default()
        })
        .when(v)
        .then_err("amount_overflow");
}

#[test]
fn visit_amounts_are_parsed_at_the_boundary() {
    for (amount, needle) in [
        ("-1", "negative"),
        ("1.5", "integer number of fen"),
        ("100.0", "integer number of fen"),
        ("1e3", "integer number of fen"),
        ("9223372036854775808", "too large"),
    ] {
        let body = format!(
            r#"{{"visit_id":"{V}","model_worker_id":"{MW}","pairing_id":"{P}","visited_on":"2021-10-13","region_code":"330100","participants":[],"gifts":[{{"kind":"cash","amount_fen":{amount}}}]}}"#
        );
        let err = Command::parse("RecordVisit", serde_json::from_str(&body).unwrap()).unwrap_err();
        assert!(err.to_string().contains(needle), "{amount}: {err}");
    }
}

/// Hardening #7: the issue's amounts (9223372036854775807 and 100000 fen on two visits) were
/// accepted; one gift's amount is now capped by policy (100,000 yuan by default), named by its
/// field, on a new visit and in a correction.
#[test]
fn gifts_above_the_policy_cap_are_refused() {
    let gift = |fen: i64| Gift {
        kind: GiftKind::Cash,
        amount_fen: Some(Fen::new(fen).unwrap()),
        description: None,
    };
    let with_gifts = |gifts: Vec<Gift>| RecordVisit {
        gifts,
        ..visit(V, P, MW, D, date(2021, 10, 13))
    };
    let cap = DEFAULT_MAX_GIFT_FEN.as_i64();
    assert_eq!(cap, 10_000_000);
    given(history(paired()))
        .when(with_gifts(vec![gift(100_000), gift(cap)]))
        .result()
        .expect("amounts up to the cap are accepted");
    for amount in [cap + 1, i64::MAX] {
        let refused = given(history(paired()))
            .when(with_gifts(vec![gift(100_000), gift(amount)]))
            .result()
            .unwrap_err();
        assert_eq!(refused.code(), "gift_amount_above_cap");
        assert_eq!(
            refused.to_string(),
            "gifts[1].amount_fen exceeds the cap of 100000.00 yuan per gift"
        );
        assert_eq!(
            refused.message_zh(),
            "gifts[1].amount_fen 超过单笔慰问金额上限 100000.00 元"
        );
    }
    // The cap is the policy's.
    given(history(paired()))
        .policy(Policy {
            max_gift_fen: Fen::new(50_000).unwrap(),
            ..Policy::default()
        })
        .when(with_gifts(vec![gift(100_000)]))
        .then_err("gift_amount_above_cap");
    // A correction's gifts are held to it too.
    let recorded = with(paired(), [visit(V, P, MW, D, date(2021, 10, 13)).into()]);
    let refused = given(history(recorded))
        .when(CorrectVisit {
            visit_id: V,
            reason: plain("金额录错"),
            changes: VisitChanges {
                gifts: Some(vec![gift(i64::MAX)]),
                ..Default::default()
            },
        })
        .result()
        .unwrap_err();
    assert_eq!(
        refused,
        Rejection::GiftAmountAboveCap {
            field: "changes.gifts[0].amount_fen".into(),
            cap: DEFAULT_MAX_GIFT_FEN,
        }
    );
}

#[test]
fn commands_deny_unknown_fields_and_redact_values() {
    let err = Command::parse(
        "RecordDeath",
        serde_json::json!({"model_worker_id": MW.0, "died_on": "2021-01-01", "nmae": "x"}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not define"), "{err}");
    assert!(!err.to_string().contains("nmae"), "{err}");
    let err = Command::parse(
        "RegisterBody",
        serde_json::json!({"body_id": ASSOC.0, "kind": "张三的秘密", "name": "x"}),
    )
    .unwrap_err();
    assert!(
        !err.to_string().contains("张三"),
        "values must be redacted: {err}"
    );
    assert_eq!(
        Command::parse("Nope", serde_json::json!({}))
            .unwrap_err()
            .code(),
        "unknown_command"
    );
}

/// Hardening #8: a director records their own visits; another director may come along, but
/// naming them as the lead is refused, on a new visit and in a correction.
#[test]
fn a_directors_visit_is_led_by_that_director() {
    let as_d = Actor {
        id: D.0,
        director: Some(D),
    };
    let companion = |d: DirectorId| Participant {
        role: ParticipantRole::Companion,
        ..lead(d)
    };
    let world = with(paired(), [appoint(D2)]);
    // Led by the acting director, with another director along: accepted.
    let mut v = visit(V, P, MW, D, date(2021, 10, 13));
    v.participants.push(companion(D2));
    let events = given(history(world.clone()))
        .actor(as_d)
        .when(v)
        .result()
        .expect("a director leads their own visit");
    assert_eq!(events[0].0, stream(Visit, V));
    // Another director as the lead (the acting one only a companion): refused.
    let mut v = visit(V, P, MW, D2, date(2021, 10, 13));
    v.participants.push(companion(D));
    given(history(world.clone()))
        .actor(as_d)
        .when(v.clone())
        .then_err("visit_lead_not_actor");
    // A named official or an unnamed person as the lead: refused too.
    let mut by_official = visit(V, P, MW, D, date(2021, 10, 13));
    by_official.participants = vec![Participant {
        who: ParticipantWho::Named {
            person_id: OFFICIAL,
            name: plain("某官员"),
        },
        ..lead(D)
    }];
    given(history(world.clone()))
        .actor(as_d)
        .when(by_official)
        .then_err("visit_lead_not_actor");
    // An administrator may record a visit led by any director.
    given(history(world.clone()))
        .when(v)
        .result()
        .expect("an administrator names any lead");
    // A correction that changes the participants follows the same rule; one that leaves them
    // alone does not look at them.
    let recorded = with(world, [visit(V, P, MW, D, date(2021, 10, 13)).into()]);
    let correct = |changes: VisitChanges| CorrectVisit {
        visit_id: V,
        reason: plain("更正"),
        changes,
    };
    given(history(recorded.clone()))
        .actor(as_d)
        .when(correct(VisitChanges {
            participants: Some(vec![lead(D2), companion(D)]),
            ..Default::default()
        }))
        .then_err("visit_lead_not_actor");
    given(history(recorded.clone()))
        .actor(as_d)
        .when(correct(VisitChanges {
            participants: Some(vec![lead(D), companion(D2)]),
            ..Default::default()
        }))
        .result()
        .expect("the director stays the lead");
    given(history(recorded))
        .actor(as_d)
        .when(correct(VisitChanges {
            medical_advice_given: Some(true),
            ..Default::default()
        }))
        .result()
        .expect("participants unchanged");
}

/// Hardening (red-team finding): a director could correct or void another director's visit
/// to their own model worker (authorisation only compared the model worker). A director now
/// corrects or voids only the visits they led; an administrator any.
#[test]
fn a_director_corrects_or_voids_only_the_visits_they_led() {
    let as_d = Actor {
        id: D.0,
        director: Some(D),
    };
    let world = with(paired(), [appoint(D2)]);
    // Led by D2 on D's pairing (recorded by an administrator).
    let by_d2 = with(
        world.clone(),
        [visit(V, P, MW, D2, date(2021, 10, 13)).into()],
    );
    let take_over = CorrectVisit {
        visit_id: V,
        reason: plain("更正"),
        changes: VisitChanges {
            participants: Some(vec![lead(D)]),
            gifts: Some(vec![]),
            ..Default::default()
        },
    };
    given(history(by_d2.clone()))
        .actor(as_d)
        .when(take_over.clone())
        .then_err("visit_not_led_by_actor");
    let void = VoidVisit {
        visit_id: V,
        reason: plain("作废"),
    };
    given(history(by_d2.clone()))
        .actor(as_d)
        .when(void.clone())
        .then_err("visit_not_led_by_actor");
    given(history(by_d2.clone()))
        .when(void.clone())
        .result()
        .expect("an administrator voids any visit");
    // A visit D led: D may void it. After an administrator hands the lead to D2, D may not.
    let by_d = with(world, [visit(V, P, MW, D, date(2021, 10, 13)).into()]);
    given(history(by_d.clone()))
        .actor(as_d)
        .when(void.clone())
        .result()
        .expect("a director voids a visit they led");
    let handed_over = with(
        by_d,
        [Command::from(CorrectVisit {
            visit_id: V,
            reason: plain("带队人录错"),
            changes: VisitChanges {
                participants: Some(vec![lead(D2)]),
                ..Default::default()
            },
        })],
    );
    given(history(handed_over))
        .actor(as_d)
        .when(void)
        .then_err("visit_not_led_by_actor");
}

#[test]
fn correct_visit_is_accepted_and_moves_the_pairing_activity() {
    let changes = VisitChanges {
        visited_on: Some(date(2021, 10, 12)),
        ..Default::default()
    };
    given(history(with(
        paired(),
        [visit(V, P, MW, D, date(2021, 10, 13)).into()],
    )))
    .when(CorrectVisit {
        visit_id: V,
        reason: plain("日期录错"),
        changes: changes.clone(),
    })
    .then([
        (
            stream(Visit, V),
            VisitCorrected {
                visit_id: V,
                model_worker_id: MW,
                reason: plain("日期录错"),
                changes,
                late_entry: false,
            }
            .into(),
        ),
        (
            stream(Pairing, P),
            PairActivityLogged {
                pairing_id: P,
                activity_id: V.0,
                kind: ActivityKind::Visit,
                on: date(2021, 10, 12),
            }
            .into(),
        ),
    ]);
}

#[test]
fn correct_visit_refusals() {
    let recorded = with(paired(), [visit(V, P, MW, D, date(2021, 10, 13)).into()]);
    let correct = |changes: VisitChanges| CorrectVisit {
        visit_id: V,
        reason: plain("更正"),
        changes,
    };
    let flag = VisitChanges {
        medical_advice_given: Some(true),
        ..Default::default()
    };
    given(history(paired()))
        .when(correct(flag.clone()))
        .then_err("unknown_visit");
    given(history(recorded.clone()))
        .when(correct(VisitChanges::default()))
        .then_err("correction_empty");
    given(history(recorded.clone()))
        .when(correct(VisitChanges {
            visited_on: Some(date(2021, 9, 1)),
            ..Default::default()
        }))
        .then_err("pairing_not_active_on_date");
    given(history(recorded.clone()))
        .when(correct(VisitChanges {
            visited_on: Some(date(2021, 11, 5)),
            ..Default::default()
        }))
        .then_err("visit_date_in_future");
    given(history(recorded.clone()))
        .when(CorrectVisit {
            visit_id: V,
            reason: plain(""),
            changes: flag.clone(),
        })
        .then_err("required_text_empty");
    let voided = with(
        recorded,
        [VoidVisit {
            visit_id: V,
            reason: plain("重复录入"),
        }
        .into()],
    );
    given(history(voided))
        .when(correct(flag))
        .then_err("visit_voided");
}

#[test]
fn void_visit_is_accepted_and_withdraws_the_pairing_activity() {
    given(history(with(
        paired(),
        [visit(V, P, MW, D, date(2021, 10, 13)).into()],
    )))
    .when(VoidVisit {
        visit_id: V,
        reason: plain("重复录入"),
    })
    .then([
        (
            stream(Visit, V),
            VisitVoided {
                visit_id: V,
                model_worker_id: MW,
                reason: plain("重复录入"),
            }
            .into(),
        ),
        (
            stream(Pairing, P),
            PairActivityWithdrawn {
                pairing_id: P,
                activity_id: V.0,
            }
            .into(),
        ),
    ]);
}

#[test]
fn a_voided_visit_no_longer_holds_the_pairing_open() {
    let h = with(
        paired(),
        [
            visit(V, P, MW, D, date(2021, 10, 20)).into(),
            VoidVisit {
                visit_id: V,
                reason: plain("录错"),
            }
            .into(),
        ],
    );
    assert!(
        given(history(h))
            .when(end_pair(P, date(2021, 10, 15)))
            .result()
            .is_ok()
    );
}

#[test]
fn void_visit_refusals() {
    let void = VoidVisit {
        visit_id: V,
        reason: plain("x"),
    };
    given(history(paired()))
        .when(void.clone())
        .then_err("unknown_visit");
    given(history(with(
        paired(),
        [
            visit(V, P, MW, D, date(2021, 10, 13)).into(),
            void.clone().into(),
        ],
    )))
    .when(void)
    .then_err("visit_voided");
}
