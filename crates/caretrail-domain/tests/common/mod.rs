//! Fixtures shared by the integration tests: fixed ids, dates, and command builders.

#![allow(dead_code)]

use caretrail_domain::command::*;
use caretrail_domain::decide::{Context, Policy};
use caretrail_domain::testing::{InMemory, TEST_ACTOR, default_today};
use caretrail_domain::vocab::*;
use caretrail_domain::*;
use chrono::NaiveDate;

pub const MW: ModelWorkerId = ModelWorkerId::from_u128(0x100);
pub const MW2: ModelWorkerId = ModelWorkerId::from_u128(0x101);
pub const D: DirectorId = DirectorId::from_u128(0x200);
pub const D2: DirectorId = DirectorId::from_u128(0x201);
pub const ASSOC: BodyId = BodyId::from_u128(0x300);
pub const TEAM: BodyId = BodyId::from_u128(0x301);
pub const UNION: BodyId = BodyId::from_u128(0x302);
pub const P: PairingId = PairingId::from_u128(0x400);
pub const P2: PairingId = PairingId::from_u128(0x401);
pub const V: VisitId = VisitId::from_u128(0x500);
pub const V2: VisitId = VisitId::from_u128(0x501);
pub const I: IssueId = IssueId::from_u128(0x600);
pub const C: ContactId = ContactId::from_u128(0x700);
pub const OFFICIAL: PersonId = PersonId::from_u128(0x800);

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

pub fn region(code: &str) -> RegionCode {
    RegionCode::parse(code).expect("valid test region")
}

pub fn plain(s: &str) -> Personal {
    Personal::plain(s)
}

pub fn stream(category: Category, id: impl Into<uuid::Uuid>) -> StreamName {
    StreamName::new(category, id)
}

/// Runs commands in order with the default policy and today, returning the log they produce.
pub fn history(commands: Vec<Command>) -> Vec<(StreamName, Event)> {
    let policy = Policy::default();
    let ctx = Context {
        today: default_today(),
        actor: TEST_ACTOR,
        policy: &policy,
    };
    let mut store = InMemory::new();
    for c in commands {
        let name = c.name();
        if let Err(r) = store.execute(&c, &ctx) {
            panic!("fixture command {name} refused: {}", r.code());
        }
    }
    store.log
}

pub fn register(mw: ModelWorkerId) -> Command {
    RegisterModelWorker {
        model_worker_id: mw,
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
    }
    .into()
}

pub fn hardship(mw: ModelWorkerId) -> Command {
    AssessHardship {
        model_worker_id: mw,
        tier: HardshipTier::Relative,
        causes: vec![HardshipCause::OldAge],
        assessed_on: Some(date(2021, 9, 1)),
        note: None,
    }
    .into()
}

pub fn body(id: BodyId, kind: BodyKind, name: &str) -> Command {
    RegisterBody {
        body_id: id,
        kind,
        name: name.into(),
        region_code: None,
    }
    .into()
}

pub fn appoint(d: DirectorId) -> Command {
    AppointDirector {
        director_id: d,
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
    .into()
}

pub fn assign(p: PairingId, d: DirectorId, mw: ModelWorkerId, from: NaiveDate) -> Command {
    AssignPair {
        pairing_id: p,
        director_id: d,
        model_worker_id: mw,
        effective_from: from,
        visit_policy: None,
    }
    .into()
}

pub fn end_pair(p: PairingId, on: NaiveDate) -> Command {
    EndPair {
        pairing_id: p,
        ended_on: Some(on),
        reason: PairEndReason::Reassigned,
        note: None,
    }
    .into()
}

pub fn lead(d: DirectorId) -> Participant {
    Participant {
        who: ParticipantWho::Director { director_id: d },
        role: ParticipantRole::Lead,
        office: None,
        body_id: None,
    }
}

pub fn visit(
    v: VisitId,
    p: PairingId,
    mw: ModelWorkerId,
    d: DirectorId,
    on: NaiveDate,
) -> RecordVisit {
    RecordVisit {
        visit_id: v,
        model_worker_id: mw,
        pairing_id: Some(p),
        adhoc_reason: None,
        visited_on: on,
        region_code: region("330100"),
        place: None,
        participants: vec![lead(d)],
        gifts: vec![],
        findings: Findings::default(),
        contact_exchanged: ContactExchanged::default(),
        medical_advice_given: false,
        benefit_checks: vec![],
    }
}

/// Two bodies, one director in term, one model worker in hardship.
pub fn world() -> Vec<Command> {
    vec![
        body(ASSOC, BodyKind::Association, "浙江省劳动模范协会"),
        body(TEAM, BodyKind::VolunteerTeam, "杭州市劳模工匠志愿服务队"),
        appoint(D),
        register(MW),
        hardship(MW),
    ]
}

/// `world()` plus the pairing P from 2021-10-01.
pub fn paired() -> Vec<Command> {
    let mut c = world();
    c.push(assign(P, D, MW, date(2021, 10, 1)));
    c
}

pub fn with(mut base: Vec<Command>, more: impl IntoIterator<Item = Command>) -> Vec<Command> {
    base.extend(more);
    base
}
