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

/// How much to generate.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Size {
    /// Stop once this many events are stored (the last command's events are kept whole).
    pub events: u64,
}

impl Size {
    pub fn events(events: u64) -> Size {
        Size { events }
    }
}

/// What the generator wrote.
#[derive(Clone, Debug, Serialize)]
pub struct GenerateReport {
    pub seed: u64,
    pub events: u64,
    pub commands: u64,
    /// Commands the domain refused, by rejection code (skipped, nothing stored).
    pub rejected: BTreeMap<String, u64>,
    pub model_workers: u64,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub seconds: f64,
}

/// SplitMix64: a tiny, well-distributed deterministic generator (no dependency needed for a
/// simulation that only has to be reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn uuid(&mut self) -> Uuid {
        let hi = u128::from(self.next());
        let lo = u128::from(self.next());
        // Version-4 and variant bits, so the ids look like any other random UUID.
        let v = (hi << 64 | lo) & !(0xF000u128 << 64) | (0x4000u128 << 64);
        Uuid::from_u128(v & !(0xC000u128 << 48) | (0x8000u128 << 48))
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭",
];
const GIVEN: &[&str] = &[
    "建国", "秀英", "志强", "美芳", "国华", "丽娟", "伟", "静", "海燕", "明", "红梅", "永康",
    "金花", "德胜", "桂芳", "立新", "春生", "雪梅", "文斌", "玉兰",
];

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
    fix: Option<(VisitId, NaiveDate, bool)>,
    erase_on: Option<NaiveDate>,
    county: RegionCode,
    reassign_on: Option<NaiveDate>,
}

/// The generator's copy of the domain state, the stores' view of stream versions, and the
/// appends not yet sent.
struct Sim {
    store: Arc<dyn EventStore>,
    keys: Arc<KeyRing>,
    policy: Policy,
    actor: Uuid,
    rng: Rng,
    states: HashMap<StreamName, (u64, State)>,
    pending: Vec<StreamAppend>,
    index: HashMap<String, usize>,
    flushed: u64,
    events: u64,
    commands: u64,
    rejected: BTreeMap<String, u64>,
}

impl Sim {
    fn state(&self, s: &StreamName) -> State {
        self.states
            .get(s)
            .map(|(_, st)| st.clone())
            .unwrap_or_else(|| State::initial(s.category))
    }

    /// Decides `cmd` as of `today`; stores its events (sealed) in the pending batch.
    async fn run(&mut self, cmd: Command, today: NaiveDate) -> Result<bool> {
        let mut states = States::new();
        loop {
            let wanted: Vec<StreamName> = streams_to_load(&cmd, &states)
                .into_iter()
                .filter(|s| !states.contains(s))
                .collect();
            if wanted.is_empty() {
                break;
            }
            for s in wanted {
                let st = self.state(&s);
                states.insert(s, st);
            }
        }
        let ctx = Context {
            today,
            actor: Actor {
                id: self.actor,
                director: None,
            },
            policy: &self.policy,
        };
        let decision = match decide(&states, &cmd, &ctx) {
            Ok(d) => d,
            Err(r) => {
                *self.rejected.entry(r.code().to_owned()).or_default() += 1;
                return Ok(false);
            }
        };
        let mut appends: Vec<StreamAppend> = Vec::new();
        for (stream, mut event) in decision {
            let entry = self
                .states
                .entry(stream)
                .or_insert_with(|| (0, State::initial(stream.category)));
            let before = entry.0;
            entry.1 = evolve(
                std::mem::replace(&mut entry.1, State::initial(stream.category)),
                &event,
            );
            entry.0 += 1;
            let event_id = self.rng.uuid();
            caretrail_app::seal_event(&self.keys, &mut event, event_id).await?;
            let data = event.to_data().map_err(|e| {
                ProjectionError::Generator(format!("event does not serialise: {e}"))
            })?;
            let new = NewEvent {
                event_id,
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                data: data.to_string(),
                business_date: event.business_date(),
            };
            let id = StreamId::new(stream.to_string())?;
            match appends.iter_mut().find(|a| a.stream == id) {
                Some(a) => a.events.push(new),
                None => appends.push(StreamAppend {
                    stream: id,
                    expected: ExpectedVersion::Exact(before),
                    events: vec![new],
                }),
            }
            self.events += 1;
        }
        self.commands += 1;
        // Merge into the pending append: a stream already in it gets the new events after its
        // earlier ones (its expected version stays the one before the first), so every
        // stream's order is the decision order.
        for a in appends {
            match self.index.get(a.stream.as_str()) {
                Some(&i) => self.pending[i].events.extend(a.events),
                None => {
                    self.index
                        .insert(a.stream.as_str().to_owned(), self.pending.len());
                    self.pending.push(a);
                }
            }
        }
        if self.events - self.flushed >= 4_000 {
            self.flush().await?;
        }
        Ok(true)
    }

    /// Appends everything pending as one atomic append: one transaction and one sync for
    /// thousands of events. (Separate appends in flight at once may reach the writer in any
    /// order, which would break the expected versions.)
    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let streams = std::mem::take(&mut self.pending);
        self.index.clear();
        self.flushed = self.events;
        let command_id = self.rng.uuid();
        self.store
            .append(AppendRequest {
                streams,
                metadata: Metadata {
                    actor_id: self.actor.to_string(),
                    actor_role: "admin".into(),
                    command_id: Some(command_id),
                    correlation_id: Some(command_id),
                    causation_id: None,
                },
            })
            .await?;
        Ok(())
    }
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn plus(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).unwrap_or(d)
}

fn name(rng: &mut Rng) -> Personal {
    let s = SURNAMES[rng.below(SURNAMES.len() as u64) as usize];
    let g = GIVEN[rng.below(GIVEN.len() as u64) as usize];
    Personal::plain(format!("{s}{g}"))
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

    // Bodies: the association, each city's union and volunteer team, a few departments.
    let association = BodyId(sim.rng.uuid());
    sim.run(
        RegisterBody {
            body_id: association,
            kind: BodyKind::Association,
            name: "浙江省劳动模范协会".into(),
            region_code: Some(RegionCode::ZHEJIANG),
        }
        .into(),
        first_day,
    )
    .await?;
    let mut bodies: HashMap<RegionCode, Vec<BodyId>> = HashMap::new();
    for city in &cities {
        for (kind, suffix) in [
            (BodyKind::UnionCity, "总工会"),
            (BodyKind::VolunteerTeam, "劳模工匠志愿服务队"),
            (BodyKind::GovernmentDepartment, "人力资源和社会保障局"),
        ] {
            let id = BodyId(sim.rng.uuid());
            sim.run(
                RegisterBody {
                    body_id: id,
                    kind,
                    name: format!("{}{suffix}", city.name()),
                    region_code: Some(*city),
                }
                .into(),
                first_day,
            )
            .await?;
            bodies.entry(*city).or_default().push(id);
        }
    }

    // About 150 events per model worker over the simulated years.
    let n = (size.events / 150).max(8);
    let mut workers: Vec<Worker> = (0..n)
        .map(|i| {
            let registers_on = if i < n * 6 / 10 {
                first_day
            } else {
                plus(first_day, sim.rng.below(3 * 365))
            };
            // A few files keep the code they were recorded with before a merger.
            let county = if !retired.is_empty() && sim.rng.chance(0.03) {
                retired[sim.rng.below(retired.len() as u64) as usize]
            } else {
                counties[sim.rng.below(counties.len() as u64) as usize]
            };
            Worker {
                id: ModelWorkerId(sim.rng.uuid()),
                registers_on,
                registered: false,
                active: true,
                director: None,
                pairing: None,
                next_visit: registers_on,
                next_contact: registers_on,
                issue: None,
                fix: None,
                erase_on: None,
                county,
                reassign_on: None,
            }
        })
        .collect();

    let mut today = first_day;
    'days: while today <= last_day {
        for w in workers.iter_mut() {
            if sim.events >= size.events {
                break 'days;
            }
            let rng_today = today;
            if !w.registered {
                if w.registers_on != today {
                    continue;
                }
                w.registered = true;
                let honour = match sim.rng.below(10) {
                    0..=3 => Honour::NationalModelWorker,
                    4..=7 => Honour::ProvincialModelWorker,
                    _ => Honour::ProvincialAdvancedWorker,
                };
                let nm = name(&mut sim.rng);
                let honour_year = Some(1980 + sim.rng.below(40) as u16);
                sim.run(
                    RegisterModelWorker {
                        model_worker_id: w.id,
                        honour,
                        honour_year,
                        occupation: None,
                        region_code: w.county,
                        name: nm,
                        gender: None,
                        birth_year: None,
                        phone: None,
                        wechat: None,
                        address: None,
                        id_number: None,
                    }
                    .into(),
                    today,
                )
                .await?;
                let tier = match sim.rng.below(3) {
                    0 => HardshipTier::Deep,
                    1 => HardshipTier::Relative,
                    _ => HardshipTier::Accidental,
                };
                sim.run(
                    AssessHardship {
                        model_worker_id: w.id,
                        tier,
                        causes: vec![HardshipCause::OldAge, HardshipCause::Illness],
                        assessed_on: Some(today),
                        note: None,
                    }
                    .into(),
                    today,
                )
                .await?;
                w.reassign_on = Some(today);
            }
            if !w.active {
                if w.erase_on == Some(today) {
                    sim.run(
                        ErasePersonalData {
                            subject_id: w.id.0,
                            legal_basis: LegalBasis::PurposeFulfilled,
                        }
                        .into(),
                        today,
                    )
                    .await?;
                }
                continue;
            }
            // (Re)pairing with a newly appointed director.
            if w.reassign_on == Some(today) {
                w.reassign_on = None;
                let d = DirectorId(sim.rng.uuid());
                let role = match sim.rng.below(10) {
                    0 => DirectorRole::VicePresident,
                    1..=6 => DirectorRole::StandingDirector,
                    _ => DirectorRole::Director,
                };
                let nm = name(&mut sim.rng);
                sim.run(
                    AppointDirector {
                        director_id: d,
                        body_id: association,
                        role,
                        term: Term {
                            from: today,
                            until: None,
                        },
                        name: nm,
                        model_worker_id: None,
                        phone: None,
                        wechat: None,
                    }
                    .into(),
                    today,
                )
                .await?;
                let p = PairingId(sim.rng.uuid());
                if sim
                    .run(
                        AssignPair {
                            pairing_id: p,
                            director_id: d,
                            model_worker_id: w.id,
                            effective_from: today,
                            visit_policy: None,
                        }
                        .into(),
                        today,
                    )
                    .await?
                {
                    w.director = Some(d);
                    w.pairing = Some(p);
                    w.next_visit = plus(today, sim.rng.range(7, 60));
                    w.next_contact = plus(today, sim.rng.range(10, 40));
                }
            }
            let (Some(pairing), Some(director)) = (w.pairing, w.director) else {
                continue;
            };
            let city = w.county.city().unwrap_or(RegionCode::ZHEJIANG);
            if today >= w.next_visit {
                let v = VisitId(sim.rng.uuid());
                let mut participants = vec![Participant {
                    who: ParticipantWho::Director {
                        director_id: director,
                    },
                    role: ParticipantRole::Lead,
                    office: None,
                    body_id: None,
                }];
                if sim.rng.chance(0.3) {
                    participants.push(Participant {
                        who: ParticipantWho::Unnamed,
                        role: ParticipantRole::UnionOfficial,
                        office: Some("副主席".into()),
                        body_id: bodies.get(&city).and_then(|b| b.first().copied()),
                    });
                }
                let mut gifts = vec![Gift {
                    kind: GiftKind::Cash,
                    amount_fen: Fen::new(sim.rng.range(5, 20) as i64 * 100 * 100).ok(),
                    description: None,
                }];
                if sim.rng.chance(0.4) {
                    gifts.push(Gift {
                        kind: GiftKind::Goods,
                        amount_fen: Fen::new(sim.rng.range(100, 800) as i64 * 100).ok(),
                        description: Some("米、油".into()),
                    });
                }
                if sim.rng.chance(0.7) {
                    gifts.push(Gift {
                        kind: GiftKind::Flowers,
                        amount_fen: None,
                        description: Some("鲜花".into()),
                    });
                }
                // A few visits are entered more than a month after they happened.
                let entered = if sim.rng.chance(0.02) {
                    plus(today, 35)
                } else {
                    today
                };
                let medical_advice_given = sim.rng.chance(0.1);
                let recorded = sim
                    .run(
                        RecordVisit {
                            visit_id: v,
                            model_worker_id: w.id,
                            pairing_id: Some(pairing),
                            adhoc_reason: None,
                            visited_on: today,
                            region_code: w.county,
                            place: None,
                            participants,
                            gifts,
                            findings: Findings::default(),
                            contact_exchanged: ContactExchanged::default(),
                            medical_advice_given,
                            benefit_checks: vec![],
                        }
                        .into(),
                        entered,
                    )
                    .await?;
                // Mostly every 3-6 months; some drift past the 183-day policy.
                w.next_visit = plus(today, sim.rng.range(60, 200));
                if recorded {
                    if w.fix.is_none() && sim.rng.chance(0.03) {
                        w.fix = Some((v, plus(today, sim.rng.range(1, 10)), sim.rng.chance(0.2)));
                    }
                    if w.issue.is_none() && sim.rng.chance(0.25) {
                        let id = IssueId(sim.rng.uuid());
                        let category = match sim.rng.below(6) {
                            0 => IssueCategory::HousingRepair,
                            1 => IssueCategory::Utilities,
                            2 => IssueCategory::Medical,
                            3 => IssueCategory::BenefitsPolicy,
                            4 => IssueCategory::IncomeLiving,
                            _ => IssueCategory::FamilyCare,
                        };
                        if sim
                            .run(
                                RaiseIssue {
                                    issue_id: id,
                                    model_worker_id: w.id,
                                    visit_id: Some(v),
                                    category,
                                    description: Personal::plain("反映的问题（生成数据）"),
                                    urgency: Urgency::Normal,
                                    on: Some(today),
                                }
                                .into(),
                                entered,
                            )
                            .await?
                        {
                            let list = bodies.get(&city).cloned().unwrap_or_default();
                            let body = list
                                .get(sim.rng.below(list.len().max(1) as u64) as usize)
                                .copied()
                                .unwrap_or(association);
                            w.issue = Some(Issue {
                                id,
                                stage: Stage::Raised,
                                next: plus(entered, sim.rng.range(0, 5)),
                                body,
                            });
                        }
                    }
                }
            }
            if today >= w.next_contact {
                let contact_id = ContactId(sim.rng.uuid());
                let channel = if sim.rng.chance(0.6) {
                    ContactChannel::Wechat
                } else {
                    ContactChannel::Phone
                };
                sim.run(
                    RecordContact {
                        contact_id,
                        pairing_id: pairing,
                        on: today,
                        channel,
                        note: None,
                    }
                    .into(),
                    today,
                )
                .await?;
                w.next_contact = plus(today, sim.rng.range(10, 45));
            }
            if let Some((v, on, void)) = w.fix
                && on <= today
            {
                w.fix = None;
                let cmd: Command = if void {
                    VoidVisit {
                        visit_id: v,
                        reason: Personal::plain("重复录入"),
                    }
                    .into()
                } else {
                    CorrectVisit {
                        visit_id: v,
                        reason: Personal::plain("金额录入有误"),
                        changes: VisitChanges {
                            gifts: Some(vec![Gift {
                                kind: GiftKind::Cash,
                                amount_fen: Fen::new(sim.rng.range(5, 20) as i64 * 100 * 100).ok(),
                                description: None,
                            }]),
                            ..VisitChanges::default()
                        },
                    }
                    .into()
                };
                sim.run(cmd, today).await?;
            }
            if let Some(issue) = &mut w.issue
                && issue.next <= today
            {
                let on = Some(today);
                let (cmd, next_stage, wait): (Command, Option<Stage>, u64) = match issue.stage {
                    Stage::Raised if sim.rng.chance(0.2) => (
                        ResolveOnSpot {
                            issue_id: issue.id,
                            summary: Personal::plain("当场答复"),
                            on,
                        }
                        .into(),
                        Some(Stage::Resolved),
                        sim.rng.range(1, 20),
                    ),
                    Stage::Raised => (
                        AcknowledgeIssue {
                            issue_id: issue.id,
                            owner: director,
                            respond_by: plus(today, 14),
                            on,
                        }
                        .into(),
                        Some(Stage::Acknowledged),
                        sim.rng.range(1, 7),
                    ),
                    Stage::Acknowledged => (
                        EscalateIssue {
                            issue_id: issue.id,
                            to_body: issue.body,
                            channel: EscalationChannel::Letter,
                            due_by: plus(today, 30),
                            on,
                        }
                        .into(),
                        Some(Stage::Escalated),
                        sim.rng.range(3, 25),
                    ),
                    Stage::Escalated => (
                        RecordBodyResponse {
                            issue_id: issue.id,
                            body_id: issue.body,
                            response: BodyResponseKind::Accepted,
                            redirected_to: None,
                            due_by: None,
                            note: None,
                            on,
                        }
                        .into(),
                        Some(Stage::Answered),
                        sim.rng.range(5, 150),
                    ),
                    Stage::Answered => (
                        ResolveIssue {
                            issue_id: issue.id,
                            outcome: ResolutionOutcome::Resolved,
                            summary: Personal::plain("已协调解决"),
                            resolved_by: Some(issue.body),
                            on,
                        }
                        .into(),
                        Some(Stage::Resolved),
                        sim.rng.range(1, 15),
                    ),
                    Stage::Resolved if sim.rng.chance(0.05) => (
                        ReopenIssue {
                            issue_id: issue.id,
                            reason: Personal::plain("问题复发"),
                            on,
                        }
                        .into(),
                        Some(Stage::Answered),
                        sim.rng.range(5, 60),
                    ),
                    Stage::Resolved => (
                        ConfirmResolution {
                            issue_id: issue.id,
                            via: ConfirmationVia::Phone,
                            satisfaction: Satisfaction::Satisfied,
                            on,
                        }
                        .into(),
                        Some(Stage::Confirmed),
                        sim.rng.range(0, 5),
                    ),
                    Stage::Confirmed => (
                        CloseIssue {
                            issue_id: issue.id,
                            override_reason: None,
                            on,
                        }
                        .into(),
                        None,
                        0,
                    ),
                };
                let ok = sim.run(cmd, today).await?;
                match (ok, next_stage) {
                    (true, Some(s)) => {
                        issue.stage = s;
                        issue.next = plus(today, wait);
                    }
                    // Closed, or refused by the domain: the issue stops here.
                    _ => w.issue = None,
                }
            }
            // Life events, per day: yearly rates of about 0.4% deaths, 1% leaving hardship,
            // 1% moves and 4% directors whose term ends.
            let r = sim.rng.next() % 1_000_000;
            if r < 11 {
                sim.run(
                    RecordDeath {
                        model_worker_id: w.id,
                        died_on: rng_today,
                    }
                    .into(),
                    today,
                )
                .await?;
                w.active = false;
                if sim.rng.chance(0.3) {
                    w.erase_on = Some(plus(today, 30));
                }
            } else if r < 38 {
                sim.run(
                    EndPair {
                        pairing_id: pairing,
                        ended_on: Some(today),
                        reason: PairEndReason::HardshipExited,
                        note: None,
                    }
                    .into(),
                    today,
                )
                .await?;
                sim.run(
                    ExitHardship {
                        model_worker_id: w.id,
                        exited_on: Some(today),
                        reason: None,
                    }
                    .into(),
                    today,
                )
                .await?;
                w.active = false;
            } else if r < 65 {
                let to = counties[sim.rng.below(counties.len() as u64) as usize];
                if sim
                    .run(
                        RecordRelocation {
                            model_worker_id: w.id,
                            region_code: to,
                            moved_on: Some(today),
                            address: None,
                        }
                        .into(),
                        today,
                    )
                    .await?
                {
                    w.county = to;
                }
            } else if r < 175 {
                sim.run(
                    EndDirectorTerm {
                        director_id: director,
                        ended_on: Some(today),
                    }
                    .into(),
                    today,
                )
                .await?;
                w.pairing = None;
                w.director = None;
                w.reassign_on = Some(plus(today, sim.rng.range(1, 30)));
            }
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
