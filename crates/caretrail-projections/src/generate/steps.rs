//! The generator's steps: the set-up before the first day (bodies, the model workers to
//! simulate) and each thing that can happen on one day of one model worker's life.

use super::*;

/// The bodies issues are escalated to: the association and, per city, its union, volunteer
/// team and department.
pub(super) struct Bodies {
    association: BodyId,
    by_city: HashMap<RegionCode, Vec<BodyId>>,
}

/// The generator's steps, each one day of one model worker's life (or the set-up before the
/// first day). The order of their random draws is the generated log: a step that drew in
/// another order would change every later id, date and amount of a seed.
impl Sim {
    /// Registers the association, and each city's union, volunteer team and department.
    pub(super) async fn register_bodies(
        &mut self,
        cities: &[RegionCode],
        first_day: NaiveDate,
    ) -> Result<Bodies> {
        let association = BodyId(self.rng.uuid());
        self.run(
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
        let mut by_city: HashMap<RegionCode, Vec<BodyId>> = HashMap::new();
        for city in cities {
            for (kind, suffix) in [
                (BodyKind::UnionCity, "总工会"),
                (BodyKind::VolunteerTeam, "劳模工匠志愿服务队"),
                (BodyKind::GovernmentDepartment, "人力资源和社会保障局"),
            ] {
                let id = BodyId(self.rng.uuid());
                self.run(
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
                by_city.entry(*city).or_default().push(id);
            }
        }
        Ok(Bodies {
            association,
            by_city,
        })
    }

    /// The `n` model workers to simulate: most registered on the first day, the others over
    /// the next three years; a few in counties whose code has been retired since.
    pub(super) fn plan_workers(
        &mut self,
        n: u64,
        first_day: NaiveDate,
        counties: &[RegionCode],
        retired: &[RegionCode],
    ) -> Vec<Worker> {
        (0..n)
            .map(|i| {
                let registers_on = if i < n * 6 / 10 {
                    first_day
                } else {
                    plus(first_day, self.rng.below(3 * 365))
                };
                // A few files keep the code they were recorded with before a merger.
                let county = if !retired.is_empty() && self.rng.chance(0.03) {
                    retired[self.rng.below(retired.len() as u64) as usize]
                } else {
                    counties[self.rng.below(counties.len() as u64) as usize]
                };
                Worker {
                    id: ModelWorkerId(self.rng.uuid()),
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
            .collect()
    }

    /// Registers a model worker and assesses their hardship on `today`; a director is
    /// appointed and paired the same day.
    pub(super) async fn register_worker(&mut self, w: &mut Worker, today: NaiveDate) -> Result<()> {
        let honour = match self.rng.below(10) {
            0..=3 => Honour::NationalModelWorker,
            4..=7 => Honour::ProvincialModelWorker,
            _ => Honour::ProvincialAdvancedWorker,
        };
        let nm = name(&mut self.rng);
        let honour_year = Some(1980 + self.rng.below(40) as u16);
        self.run(
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
        let tier = match self.rng.below(3) {
            0 => HardshipTier::Deep,
            1 => HardshipTier::Relative,
            _ => HardshipTier::Accidental,
        };
        self.run(
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
        Ok(())
    }

    /// Erases a model worker who died 30 days ago, when that was drawn.
    pub(super) async fn erase_if_due(&mut self, w: &Worker, today: NaiveDate) -> Result<()> {
        if w.erase_on == Some(today) {
            self.run(
                ErasePersonalData {
                    subject_id: w.id.0,
                    legal_basis: LegalBasis::PurposeFulfilled,
                }
                .into(),
                today,
            )
            .await?;
        }
        Ok(())
    }

    /// Appoints a new director and pairs them with the model worker.
    pub(super) async fn pair_with_new_director(
        &mut self,
        w: &mut Worker,
        bodies: &Bodies,
        today: NaiveDate,
    ) -> Result<()> {
        let d = DirectorId(self.rng.uuid());
        let role = match self.rng.below(10) {
            0 => DirectorRole::VicePresident,
            1..=6 => DirectorRole::StandingDirector,
            _ => DirectorRole::Director,
        };
        let nm = name(&mut self.rng);
        self.run(
            AppointDirector {
                director_id: d,
                body_id: bodies.association,
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
        let p = PairingId(self.rng.uuid());
        if self
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
            w.next_visit = plus(today, self.rng.range(7, 60));
            w.next_contact = plus(today, self.rng.range(10, 40));
        }
        Ok(())
    }

    /// A visit on `today`, with gifts and sometimes a union official; sometimes entered late,
    /// later corrected or voided, or raising an issue.
    pub(super) async fn visit(
        &mut self,
        w: &mut Worker,
        pairing: PairingId,
        director: DirectorId,
        bodies: &Bodies,
        today: NaiveDate,
    ) -> Result<()> {
        let city = w.county.city().unwrap_or(RegionCode::ZHEJIANG);
        let v = VisitId(self.rng.uuid());
        let mut participants = vec![Participant {
            who: ParticipantWho::Director {
                director_id: director,
            },
            role: ParticipantRole::Lead,
            office: None,
            body_id: None,
        }];
        if self.rng.chance(0.3) {
            participants.push(Participant {
                who: ParticipantWho::Unnamed,
                role: ParticipantRole::UnionOfficial,
                office: Some("副主席".into()),
                body_id: bodies.by_city.get(&city).and_then(|b| b.first().copied()),
            });
        }
        let mut gifts = vec![Gift {
            kind: GiftKind::Cash,
            amount_fen: Fen::new(self.rng.range(5, 20) as i64 * 100 * 100).ok(),
            description: None,
        }];
        if self.rng.chance(0.4) {
            gifts.push(Gift {
                kind: GiftKind::Goods,
                amount_fen: Fen::new(self.rng.range(100, 800) as i64 * 100).ok(),
                description: Some("米、油".into()),
            });
        }
        if self.rng.chance(0.7) {
            gifts.push(Gift {
                kind: GiftKind::Flowers,
                amount_fen: None,
                description: Some("鲜花".into()),
            });
        }
        // A few visits are entered more than a month after they happened.
        let entered = if self.rng.chance(0.02) {
            plus(today, 35)
        } else {
            today
        };
        let medical_advice_given = self.rng.chance(0.1);
        let recorded = self
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
        w.next_visit = plus(today, self.rng.range(60, 200));
        if recorded {
            if w.fix.is_none() && self.rng.chance(0.03) {
                w.fix = Some(Fix {
                    visit: v,
                    on: plus(today, self.rng.range(1, 10)),
                    void: self.rng.chance(0.2),
                });
            }
            if w.issue.is_none() && self.rng.chance(0.25) {
                let id = IssueId(self.rng.uuid());
                let category = match self.rng.below(6) {
                    0 => IssueCategory::HousingRepair,
                    1 => IssueCategory::Utilities,
                    2 => IssueCategory::Medical,
                    3 => IssueCategory::BenefitsPolicy,
                    4 => IssueCategory::IncomeLiving,
                    _ => IssueCategory::FamilyCare,
                };
                if self
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
                    let list = bodies.by_city.get(&city).cloned().unwrap_or_default();
                    let body = list
                        .get(self.rng.below(list.len().max(1) as u64) as usize)
                        .copied()
                        .unwrap_or(bodies.association);
                    w.issue = Some(Issue {
                        id,
                        stage: Stage::Raised,
                        next: plus(entered, self.rng.range(0, 5)),
                        body,
                    });
                }
            }
        }
        Ok(())
    }

    /// A contact between visits.
    pub(super) async fn contact(
        &mut self,
        w: &mut Worker,
        pairing: PairingId,
        today: NaiveDate,
    ) -> Result<()> {
        let contact_id = ContactId(self.rng.uuid());
        let channel = if self.rng.chance(0.6) {
            ContactChannel::Wechat
        } else {
            ContactChannel::Phone
        };
        self.run(
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
        w.next_contact = plus(today, self.rng.range(10, 45));
        Ok(())
    }

    /// Corrects or voids a visit, as drawn when it was recorded.
    pub(super) async fn fix_visit(&mut self, fix: Fix, today: NaiveDate) -> Result<()> {
        let Fix { visit: v, void, .. } = fix;
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
                        amount_fen: Fen::new(self.rng.range(5, 20) as i64 * 100 * 100).ok(),
                        description: None,
                    }]),
                    ..VisitChanges::default()
                },
            }
            .into()
        };
        self.run(cmd, today).await?;
        Ok(())
    }

    /// Takes the model worker's open issue one step further in its life.
    pub(super) async fn advance_issue(
        &mut self,
        w: &mut Worker,
        director: DirectorId,
        today: NaiveDate,
    ) -> Result<()> {
        let Some(issue) = &mut w.issue else {
            return Ok(());
        };
        let on = Some(today);
        let (cmd, next_stage, wait): (Command, Option<Stage>, u64) = match issue.stage {
            Stage::Raised if self.rng.chance(0.2) => (
                ResolveOnSpot {
                    issue_id: issue.id,
                    summary: Personal::plain("当场答复"),
                    on,
                }
                .into(),
                Some(Stage::Resolved),
                self.rng.range(1, 20),
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
                self.rng.range(1, 7),
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
                self.rng.range(3, 25),
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
                self.rng.range(5, 150),
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
                self.rng.range(1, 15),
            ),
            Stage::Resolved if self.rng.chance(0.05) => (
                ReopenIssue {
                    issue_id: issue.id,
                    reason: Personal::plain("问题复发"),
                    on,
                }
                .into(),
                Some(Stage::Answered),
                self.rng.range(5, 60),
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
                self.rng.range(0, 5),
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
        let ok = self.run(cmd, today).await?;
        match (ok, next_stage) {
            (true, Some(s)) => {
                issue.stage = s;
                issue.next = plus(today, wait);
            }
            // Closed, or refused by the domain: the issue stops here.
            _ => w.issue = None,
        }
        Ok(())
    }

    /// Life events, per day: yearly rates of about 0.4% deaths, 1% leaving hardship, 1% moves
    /// and 4% directors whose term ends.
    pub(super) async fn life_events(
        &mut self,
        w: &mut Worker,
        pairing: PairingId,
        director: DirectorId,
        counties: &[RegionCode],
        today: NaiveDate,
    ) -> Result<()> {
        let r = self.rng.next() % 1_000_000;
        if r < 11 {
            self.run(
                RecordDeath {
                    model_worker_id: w.id,
                    died_on: today,
                }
                .into(),
                today,
            )
            .await?;
            w.active = false;
            if self.rng.chance(0.3) {
                w.erase_on = Some(plus(today, 30));
            }
        } else if r < 38 {
            self.run(
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
            self.run(
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
            let to = counties[self.rng.below(counties.len() as u64) as usize];
            if self
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
            self.run(
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
            w.reassign_on = Some(plus(today, self.rng.range(1, 30)));
        }
        Ok(())
    }
}
