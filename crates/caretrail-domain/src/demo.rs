//! The October 2021 visits of the article, as commands (`docs/domain.md`, section 1: only
//! what the article states, every invented value labelled).
//!
//! Only what the article states is recorded: names, roles, honours, places, dates, who went
//! along, what kind of gifts were given, the 2019 blocked-pipe issue, the benefits check and the
//! medical advice. Everything the article does not give is an explicitly labelled example:
//! cash amounts ([`EXAMPLE_CASH_YUAN`], described as `示例金额（原文未载明）`), term and
//! pairing start dates, the hardship tier, and the exact days of the 2019 issue. No phone,
//! health or address detail is invented. Ids are fixed so that tests and demos are
//! reproducible. Names are personal data and appear as plain text, as in any command.

use chrono::NaiveDate;

use crate::command::*;
use crate::ids::*;
use crate::money::Fen;
use crate::personal::Personal;
use crate::region::RegionCode;
use crate::vocab::*;

/// The example cash amount per visit, in yuan. The article gives no amounts.
pub const EXAMPLE_CASH_YUAN: i64 = 1000;
/// How example amounts are described in the gifts.
pub const EXAMPLE_LABEL: &str = "示例金额（原文未载明）";

/// The date to run the demo with: the day after the last visit.
pub fn today() -> NaiveDate {
    ymd(2021, 10, 30)
}

/// A calendar date of the demo's script.
fn ymd(y: i32, m: u32, day: u32) -> NaiveDate {
    // Every call passes a date that exists; a typo in the script fails the demo's own tests
    // rather than becoming another date.
    NaiveDate::from_ymd_opt(y, m, day).expect("the demo's dates exist")
}

fn region(code: &str) -> RegionCode {
    // Every code below is in the embedded table (the demo test runs every command and checks the
    // recorded regions); the province is only a total-function fallback.
    RegionCode::parse(code).unwrap_or(RegionCode::ZHEJIANG)
}

/// A personal value of the demo, in plain text until the command handler seals it.
fn personal(s: &str) -> Personal {
    Personal::plain(s)
}

const fn id(n: u128) -> u128 {
    0x2021_1000_0000_0000_0000_0000_0000_0000 | n
}

/// Bodies.
pub mod bodies {
    use crate::ids::BodyId;
    /// 浙江省劳动模范协会.
    pub const ASSOCIATION: BodyId = BodyId::from_u128(super::id(0x0B01));
    /// 衢州市总工会.
    pub const QUZHOU_UNION: BodyId = BodyId::from_u128(super::id(0x0B02));
    /// 龙游县总工会.
    pub const LONGYOU_UNION: BodyId = BodyId::from_u128(super::id(0x0B03));
    /// 杭州市劳模工匠志愿服务队.
    pub const HANGZHOU_VOLUNTEERS: BodyId = BodyId::from_u128(super::id(0x0B04));
    /// 温州市劳模协会.
    pub const WENZHOU_ASSOCIATION: BodyId = BodyId::from_u128(super::id(0x0B05));
}

/// Directors (association officers).
pub mod directors {
    use crate::ids::DirectorId;
    /// 冯亚丽, 会长.
    pub const FENG_YALI: DirectorId = DirectorId::from_u128(super::id(0x0D01));
    /// 陈美芳, 副会长.
    pub const CHEN_MEIFANG: DirectorId = DirectorId::from_u128(super::id(0x0D02));
    /// 杨为伟, 副会长.
    pub const YANG_WEIWEI: DirectorId = DirectorId::from_u128(super::id(0x0D03));
    /// 孔胜东, 副会长.
    pub const KONG_SHENGDONG: DirectorId = DirectorId::from_u128(super::id(0x0D04));
    /// 潘志强, 常务理事.
    pub const PAN_ZHIQIANG: DirectorId = DirectorId::from_u128(super::id(0x0D05));
    /// 蒋晓萌, 常务理事.
    pub const JIANG_XIAOMENG: DirectorId = DirectorId::from_u128(super::id(0x0D06));
    /// 邢增福, 副会长.
    pub const XING_ZENGFU: DirectorId = DirectorId::from_u128(super::id(0x0D07));
    /// 张春媚, 理事.
    pub const ZHANG_CHUNMEI: DirectorId = DirectorId::from_u128(super::id(0x0D08));
    /// 周宁芝, 副会长.
    pub const ZHOU_NINGZHI: DirectorId = DirectorId::from_u128(super::id(0x0D09));
    /// 江力勤, 常务理事 (also 嘉兴市劳模协会会长).
    pub const JIANG_LIQIN: DirectorId = DirectorId::from_u128(super::id(0x0D0A));
}

/// Model workers.
pub mod workers {
    use crate::ids::ModelWorkerId;
    /// 俞培叶, 全国劳模, railway veteran.
    pub const YU_PEIYE: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E01));
    /// 王美文, 全国劳模.
    pub const WANG_MEIWEN: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E02));
    /// 张根仙, 全国劳模.
    pub const ZHANG_GENXIAN: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E03));
    /// 夏汝清, 全国劳模, grain farmer.
    pub const XIA_RUQING: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E04));
    /// 金立文, 省劳模.
    pub const JIN_LIWEN: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E05));
    /// 吴来红, 全国劳模.
    pub const WU_LAIHONG: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E06));
    /// 陈良松, 省先进工作者.
    pub const CHEN_LIANGSONG: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E07));
    /// 吴根德, 省劳模.
    pub const WU_GENDE: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E08));
    /// 徐云华, 全国劳模.
    pub const XU_YUNHUA: ModelWorkerId = ModelWorkerId::from_u128(super::id(0x0E09));
}

/// The 2019 blocked-pipe issue of 张根仙.
pub const PIPE_ISSUE: IssueId = IssueId::from_u128(id(0x1501));
/// 徐雄强, 衢州市总工会党组书记、副主席 (a named official, not a director).
pub const XU_XIONGQIANG: PersonId = PersonId::from_u128(id(0x0F01));
/// 陈志芳, 龙游县总工会党组书记、副主席.
pub const CHEN_ZHIFANG: PersonId = PersonId::from_u128(id(0x0F02));

/// The pairing of a model worker (one per paired model worker, by position).
pub fn pairing(n: u128) -> PairingId {
    PairingId::from_u128(id(0x1A00 + n))
}

/// The n-th visit (1-based, in the table's order).
pub fn visit(n: u128) -> VisitId {
    VisitId::from_u128(id(0x1B00 + n))
}

fn director(director_id: DirectorId, role: DirectorRole, name: &str) -> Command {
    AppointDirector {
        director_id,
        body_id: bodies::ASSOCIATION,
        role,
        // EXAMPLE: the article does not date the terms; the pairing system began in 2021.
        term: Term {
            from: ymd(2021, 1, 1),
            until: None,
        },
        name: personal(name),
        model_worker_id: None,
        phone: None,
        wechat: None,
    }
    .into()
}

fn worker(
    m: ModelWorkerId,
    honour: Honour,
    occupation: Option<&str>,
    code: &str,
    name: &str,
) -> [Command; 2] {
    [
        RegisterModelWorker {
            model_worker_id: m,
            honour,
            honour_year: None,
            occupation: occupation.map(str::to_owned),
            region_code: region(code),
            name: personal(name),
            gender: None,
            birth_year: None,
            phone: None,
            wechat: None,
            address: None,
            id_number: None,
        }
        .into(),
        // The article calls every paired model worker 困难劳模 but gives no tier or cause:
        // `relative` / `other` are placeholders, dated (EXAMPLE) when the pairings began.
        AssessHardship {
            model_worker_id: m,
            tier: HardshipTier::Relative,
            causes: vec![HardshipCause::Other],
            assessed_on: Some(ymd(2021, 10, 1)),
            note: None,
        }
        .into(),
    ]
}

fn by(d: DirectorId, role: ParticipantRole) -> Participant {
    Participant {
        who: ParticipantWho::Director { director_id: d },
        role,
        office: None,
        body_id: None,
    }
}

fn official(person: PersonId, name: &str, office: &str, body: BodyId) -> Participant {
    Participant {
        who: ParticipantWho::Named {
            person_id: person,
            name: personal(name),
        },
        role: ParticipantRole::UnionOfficial,
        office: Some(office.to_owned()),
        body_id: Some(body),
    }
}

fn cash() -> Gift {
    Gift {
        kind: GiftKind::Cash,
        amount_fen: Fen::from_yuan(EXAMPLE_CASH_YUAN).ok(),
        description: Some(EXAMPLE_LABEL.to_owned()),
    }
}

fn flowers() -> Gift {
    Gift {
        kind: GiftKind::Flowers,
        amount_fen: None,
        description: Some("鲜花".to_owned()),
    }
}

struct V<'a> {
    n: u128,
    worker: ModelWorkerId,
    pairing: Option<u128>,
    on: NaiveDate,
    code: &'a str,
    place: Option<&'a str>,
    participants: Vec<Participant>,
    gifts: Vec<Gift>,
}

fn record(v: V<'_>) -> RecordVisit {
    RecordVisit {
        visit_id: visit(v.n),
        model_worker_id: v.worker,
        pairing_id: v.pairing.map(pairing),
        adhoc_reason: None,
        visited_on: v.on,
        region_code: region(v.code),
        place: v.place.map(personal),
        participants: v.participants,
        gifts: v.gifts,
        findings: Findings::default(),
        contact_exchanged: ContactExchanged::default(),
        medical_advice_given: false,
        benefit_checks: vec![],
    }
}

/// The ordered commands that record the article's October 2021 visits.
pub fn october_2021() -> Vec<Command> {
    use ParticipantRole::{AssociationStaff, Companion, Lead};
    use bodies::*;
    use directors::*;
    use workers::*;

    let mut c: Vec<Command> = vec![
        RegisterBody {
            body_id: ASSOCIATION,
            kind: BodyKind::Association,
            name: "浙江省劳动模范协会".into(),
            region_code: Some(region("330000")),
        }
        .into(),
        RegisterBody {
            body_id: QUZHOU_UNION,
            kind: BodyKind::UnionCity,
            name: "衢州市总工会".into(),
            region_code: Some(region("330800")),
        }
        .into(),
        RegisterBody {
            body_id: LONGYOU_UNION,
            kind: BodyKind::UnionCounty,
            name: "龙游县总工会".into(),
            region_code: Some(region("330825")),
        }
        .into(),
        RegisterBody {
            body_id: HANGZHOU_VOLUNTEERS,
            kind: BodyKind::VolunteerTeam,
            name: "杭州市劳模工匠志愿服务队".into(),
            region_code: Some(region("330100")),
        }
        .into(),
        RegisterBody {
            body_id: WENZHOU_ASSOCIATION,
            kind: BodyKind::Association,
            name: "温州市劳模协会".into(),
            region_code: Some(region("330300")),
        }
        .into(),
        director(FENG_YALI, DirectorRole::President, "冯亚丽"),
        director(CHEN_MEIFANG, DirectorRole::VicePresident, "陈美芳"),
        director(YANG_WEIWEI, DirectorRole::VicePresident, "杨为伟"),
        director(KONG_SHENGDONG, DirectorRole::VicePresident, "孔胜东"),
        director(PAN_ZHIQIANG, DirectorRole::StandingDirector, "潘志强"),
        director(JIANG_XIAOMENG, DirectorRole::StandingDirector, "蒋晓萌"),
        director(XING_ZENGFU, DirectorRole::VicePresident, "邢增福"),
        director(ZHANG_CHUNMEI, DirectorRole::Director, "张春媚"),
        director(ZHOU_NINGZHI, DirectorRole::VicePresident, "周宁芝"),
        director(JIANG_LIQIN, DirectorRole::StandingDirector, "江力勤"),
    ];
    use Honour::{
        NationalModelWorker as National, ProvincialAdvancedWorker as Advanced,
        ProvincialModelWorker as Provincial,
    };
    c.extend(worker(YU_PEIYE, National, Some("铁路"), "330100", "俞培叶"));
    c.extend(worker(WANG_MEIWEN, National, None, "330100", "王美文"));
    c.extend(worker(ZHANG_GENXIAN, National, None, "330100", "张根仙"));
    c.extend(worker(
        XIA_RUQING,
        National,
        Some("种粮大户"),
        "330825",
        "夏汝清",
    ));
    c.extend(worker(JIN_LIWEN, Provincial, None, "330783", "金立文"));
    c.extend(worker(WU_LAIHONG, National, None, "330300", "吴来红"));
    c.extend(worker(CHEN_LIANGSONG, Advanced, None, "330302", "陈良松"));
    c.extend(worker(WU_GENDE, Provincial, None, "330212", "吴根德"));
    c.extend(worker(XU_YUNHUA, National, None, "330400", "徐云华"));

    // EXAMPLE: the article says the system was set up "this year" and visits began in October.
    let pairs = [
        (FENG_YALI, YU_PEIYE),
        (YANG_WEIWEI, WANG_MEIWEN),
        (KONG_SHENGDONG, ZHANG_GENXIAN),
        (PAN_ZHIQIANG, XIA_RUQING),
        (JIANG_XIAOMENG, JIN_LIWEN),
        (XING_ZENGFU, WU_LAIHONG),
        (ZHOU_NINGZHI, WU_GENDE),
        (JIANG_LIQIN, XU_YUNHUA),
    ];
    for (n, (dir, mw)) in (1u128..).zip(pairs) {
        c.push(
            AssignPair {
                pairing_id: pairing(n),
                director_id: dir,
                model_worker_id: mw,
                effective_from: ymd(2021, 10, 1),
                visit_policy: None,
            }
            .into(),
        );
    }

    // The 2019 blocked pipe (2019年底): the exact days are EXAMPLES.
    c.extend::<[Command; 6]>([
        RaiseIssue {
            issue_id: PIPE_ISSUE,
            model_worker_id: ZHANG_GENXIAN,
            visit_id: None,
            category: IssueCategory::Utilities,
            description: personal("家中水管堵塞"),
            urgency: Urgency::Normal,
            on: Some(ymd(2019, 12, 20)),
        }
        .into(),
        AcknowledgeIssue {
            issue_id: PIPE_ISSUE,
            owner: KONG_SHENGDONG,
            respond_by: ymd(2019, 12, 31),
            on: Some(ymd(2019, 12, 20)),
        }
        .into(),
        EscalateIssue {
            issue_id: PIPE_ISSUE,
            to_body: HANGZHOU_VOLUNTEERS,
            channel: EscalationChannel::InPerson,
            due_by: ymd(2019, 12, 31),
            on: Some(ymd(2019, 12, 20)),
        }
        .into(),
        RecordBodyResponse {
            issue_id: PIPE_ISSUE,
            body_id: HANGZHOU_VOLUNTEERS,
            response: BodyResponseKind::Accepted,
            redirected_to: None,
            due_by: None,
            note: None,
            on: Some(ymd(2019, 12, 21)),
        }
        .into(),
        ResolveIssue {
            issue_id: PIPE_ISSUE,
            outcome: ResolutionOutcome::Resolved,
            summary: personal("孔胜东带领杭州市劳模工匠志愿服务队上门开展志愿服务，水管疏通"),
            resolved_by: Some(HANGZHOU_VOLUNTEERS),
            on: Some(ymd(2019, 12, 28)),
        }
        .into(),
        NoteIssueProgress {
            issue_id: PIPE_ISSUE,
            note: personal("此后与劳模一直保持联系"),
            on: Some(ymd(2019, 12, 28)),
        }
        .into(),
    ]);

    let standard = || vec![cash(), flowers()];
    let mut v1 = record(V {
        n: 1,
        worker: YU_PEIYE,
        pairing: Some(1),
        on: ymd(2021, 10, 13),
        code: "330100",
        place: Some("杭州"),
        participants: vec![
            by(FENG_YALI, Lead),
            by(CHEN_MEIFANG, Companion),
            by(YANG_WEIWEI, Companion),
            by(KONG_SHENGDONG, Companion),
        ],
        gifts: standard(),
    });
    v1.contact_exchanged = ContactExchanged {
        phone: true,
        wechat: true,
    };
    v1.benefit_checks = vec![BenefitCheck {
        benefit: "劳模待遇".into(),
        status: BenefitStatus::Unknown,
    }];
    let mut v2 = record(V {
        n: 2,
        worker: WANG_MEIWEN,
        pairing: Some(2),
        on: ymd(2021, 10, 13),
        code: "330100",
        place: Some("杭州"),
        participants: vec![by(YANG_WEIWEI, Lead)],
        gifts: standard(),
    });
    v2.contact_exchanged = ContactExchanged {
        phone: true,
        wechat: true,
    };
    let v3 = record(V {
        n: 3,
        worker: ZHANG_GENXIAN,
        pairing: Some(3),
        on: ymd(2021, 10, 13),
        code: "330100",
        place: Some("杭州"),
        participants: vec![by(KONG_SHENGDONG, Lead)],
        gifts: standard(),
    });
    let v4 = record(V {
        n: 4,
        worker: XIA_RUQING,
        pairing: Some(4),
        on: ymd(2021, 10, 18),
        code: "330825",
        place: Some("龙游县塔石镇"),
        participants: vec![
            by(PAN_ZHIQIANG, Lead),
            official(XU_XIONGQIANG, "徐雄强", "党组书记、副主席", QUZHOU_UNION),
            official(CHEN_ZHIFANG, "陈志芳", "党组书记、副主席", LONGYOU_UNION),
        ],
        gifts: standard(),
    });
    let v5 = record(V {
        n: 5,
        worker: JIN_LIWEN,
        pairing: Some(5),
        on: ymd(2021, 10, 21),
        code: "330783",
        place: Some("东阳市江北茗田潭沿村"),
        participants: vec![by(JIANG_XIAOMENG, Lead)],
        gifts: vec![
            cash(),
            Gift {
                kind: GiftKind::Goods,
                amount_fen: None,
                description: Some("慰问品（原文未载明品名与价值）".into()),
            },
            flowers(),
        ],
    });
    let wenzhou_team = || {
        vec![
            by(XING_ZENGFU, Lead),
            by(ZHANG_CHUNMEI, Companion),
            Participant {
                who: ParticipantWho::Unnamed,
                role: AssociationStaff,
                office: None,
                body_id: Some(WENZHOU_ASSOCIATION),
            },
        ]
    };
    let v6 = record(V {
        n: 6,
        worker: WU_LAIHONG,
        pairing: Some(6),
        on: ymd(2021, 10, 21),
        code: "330300",
        place: Some("温州经开区中淳企业"),
        participants: wenzhou_team(),
        gifts: standard(),
    });
    // 邢增福 is paired with 吴来红 (one pairing per director), so the article leaves the second
    // Wenzhou visit without a stated pairing: it is recorded as ad hoc.
    let mut v7 = record(V {
        n: 7,
        worker: CHEN_LIANGSONG,
        pairing: None,
        on: ymd(2021, 10, 21),
        code: "330302",
        place: Some("鹿城区翠微小区"),
        participants: wenzhou_team(),
        gifts: standard(),
    });
    v7.adhoc_reason = Some(personal("同日温州走访（原文未载明结对关系）"));
    let mut v9 = record(V {
        n: 9,
        worker: XU_YUNHUA,
        pairing: Some(8),
        on: ymd(2021, 10, 28),
        code: "330400",
        place: None,
        participants: vec![by(JIANG_LIQIN, Lead)],
        gifts: standard(),
    });
    v9.medical_advice_given = true;
    let v8 = record(V {
        n: 8,
        worker: WU_GENDE,
        pairing: Some(7),
        on: ymd(2021, 10, 29),
        code: "330212",
        place: Some("宁波市姜山镇宅家村"),
        participants: vec![by(ZHOU_NINGZHI, Lead)],
        gifts: standard(),
    });

    c.extend::<[Command; 3]>([v1.into(), v2.into(), v3.into()]);
    // "这两年水管没再堵了吧？" "挺好的挺好的，没再堵过。": confirmed during visit 3.
    c.extend::<[Command; 2]>([
        ConfirmResolution {
            issue_id: PIPE_ISSUE,
            via: ConfirmationVia::Visit,
            satisfaction: Satisfaction::Satisfied,
            on: Some(ymd(2021, 10, 13)),
        }
        .into(),
        CloseIssue {
            issue_id: PIPE_ISSUE,
            override_reason: None,
            on: Some(ymd(2021, 10, 13)),
        }
        .into(),
    ]);
    c.extend::<[Command; 6]>([
        v4.into(),
        v5.into(),
        v6.into(),
        v7.into(),
        v9.into(),
        v8.into(),
    ]);
    c
}
