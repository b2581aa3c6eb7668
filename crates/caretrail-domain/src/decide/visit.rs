//! Decisions about visits: recording, correcting and voiding a visit's facts, and checking
//! its participants and gifts (the `Decider` methods `decide` calls for visit commands).

use super::*;

impl Decider<'_> {
    pub(super) fn participants(
        &self,
        participants: &[Participant],
    ) -> Result<Vec<Participant>, Rejection> {
        if participants.is_empty() {
            return Err(Rejection::VisitWithoutParticipants);
        }
        let mut leads = participants
            .iter()
            .filter(|p| p.role == ParticipantRole::Lead);
        let (Some(lead), None) = (leads.next(), leads.next()) else {
            return Err(Rejection::VisitNeedsOneLead);
        };
        // A director records their own visits: other directors may come along (the article
        // has directors visiting together), but the lead is the director who records it, so
        // nobody can put a visit on another director's record.
        if let Some(actor) = self.ctx.actor.director
            && lead.who != (ParticipantWho::Director { director_id: actor })
        {
            return Err(Rejection::VisitLeadNotActor);
        }
        participants
            .iter()
            .map(|p| {
                let who = match &p.who {
                    ParticipantWho::Director { director_id } => {
                        self.director(*director_id)?;
                        p.who.clone()
                    }
                    ParticipantWho::Named { person_id, name } => ParticipantWho::Named {
                        person_id: *person_id,
                        name: required(name, "participants.name")?,
                    },
                    ParticipantWho::Unnamed => ParticipantWho::Unnamed,
                };
                if let Some(b) = p.body_id {
                    self.body(b)?;
                }
                Ok(Participant { who, ..p.clone() })
            })
            .collect()
    }

    /// Checks a visit's gifts; `field` is where the list is in the command (`gifts` or
    /// `changes.gifts`), for naming a gift in a refusal.
    pub(super) fn gifts(&self, gifts: &[Gift], field: &str) -> Result<Vec<Gift>, Rejection> {
        if gifts
            .iter()
            .any(|g| g.kind == GiftKind::Cash && g.amount_fen.is_none())
        {
            return Err(Rejection::CashGiftWithoutAmount);
        }
        let cap = self.ctx.policy.max_gift_fen;
        if let Some(i) = gifts
            .iter()
            .position(|g| g.amount_fen.is_some_and(|a| a > cap))
        {
            return Err(Rejection::GiftAmountAboveCap {
                field: format!("{field}[{i}].amount_fen"),
                cap,
            });
        }
        // The total must be representable, or every report summing these gifts would fail.
        Fen::sum(gifts.iter().filter_map(|g| g.amount_fen))
            .map_err(|_| Rejection::AmountOverflow)?;
        Ok(gifts.to_vec())
    }

    pub(super) fn late_entry(&self, visited_on: NaiveDate) -> bool {
        (self.today() - visited_on).num_days() > self.ctx.policy.late_entry_after_days
    }

    pub(super) fn record_visit(&mut self, c: &RecordVisit) -> Result<(), Rejection> {
        if self.states.visit(c.visit_id)?.info.is_some() {
            return Err(Rejection::VisitAlreadyRecorded);
        }
        if c.visited_on > self.today() {
            return Err(Rejection::VisitDateInFuture);
        }
        let adhoc_reason = optional(&c.adhoc_reason, "adhoc_reason")?;
        let director_id = match (c.pairing_id, &adhoc_reason) {
            (None, None) => return Err(Rejection::VisitNeedsPairingOrAdhocReason),
            (Some(_), Some(_)) => return Err(Rejection::VisitHasPairingAndAdhocReason),
            (None, Some(_)) => {
                self.model_worker(c.model_worker_id)?;
                None
            }
            (Some(p), None) => {
                self.model_worker(c.model_worker_id)?;
                let (_, info) = self.pairing(p)?;
                if info.model_worker_id != c.model_worker_id {
                    return Err(Rejection::VisitModelWorkerMismatch);
                }
                if !info.active_on(c.visited_on) {
                    return Err(Rejection::PairingNotActiveOnDate);
                }
                Some(info.director_id)
            }
        };
        let event = VisitRecorded {
            visit_id: c.visit_id,
            model_worker_id: c.model_worker_id,
            pairing_id: c.pairing_id,
            director_id,
            adhoc_reason,
            visited_on: c.visited_on,
            region_code: c.region_code,
            place: optional(&c.place, "place")?,
            participants: self.participants(&c.participants)?,
            gifts: self.gifts(&c.gifts, "gifts")?,
            findings: findings(&c.findings)?,
            contact_exchanged: c.contact_exchanged,
            medical_advice_given: c.medical_advice_given,
            benefit_checks: c.benefit_checks.clone(),
            late_entry: self.late_entry(c.visited_on),
        };
        self.emit(Category::Visit, c.visit_id, event);
        if let Some(p) = c.pairing_id {
            self.emit(
                Category::Pairing,
                p,
                PairActivityLogged {
                    pairing_id: p,
                    activity_id: c.visit_id.0,
                    kind: ActivityKind::Visit,
                    on: c.visited_on,
                },
            );
        }
        Ok(())
    }

    /// A director corrects or voids only the visits they led: another director's visit to
    /// the same model worker (a co-visit they joined, or one from an earlier pairing) stays
    /// as its leader recorded it. Administrators may correct any visit.
    pub(super) fn own_visit(&self, info: &VisitInfo) -> Result<(), Rejection> {
        match self.ctx.actor.director {
            Some(actor) if info.led_by != Some(actor) => Err(Rejection::VisitNotLedByActor),
            _ => Ok(()),
        }
    }

    pub(super) fn correct_visit(&mut self, c: &CorrectVisit) -> Result<(), Rejection> {
        let info = self
            .states
            .visit(c.visit_id)?
            .info
            .as_ref()
            .ok_or(Rejection::UnknownVisit)?;
        if info.voided {
            return Err(Rejection::VisitVoided);
        }
        self.own_visit(info)?;
        if c.changes.is_empty() {
            return Err(Rejection::CorrectionEmpty);
        }
        let reason = required(&c.reason, "reason")?;
        let ch = &c.changes;
        if let Some(date) = ch.visited_on {
            if date > self.today() {
                return Err(Rejection::VisitDateInFuture);
            }
            if let Some(p) = info.pairing_id {
                let (_, pairing) = self.pairing(p)?;
                if !pairing.active_on(date) {
                    return Err(Rejection::PairingNotActiveOnDate);
                }
            }
        }
        let changes = VisitChanges {
            visited_on: ch.visited_on,
            region_code: ch.region_code,
            place: optional(&ch.place, "changes.place")?,
            participants: ch
                .participants
                .as_deref()
                .map(|p| self.participants(p))
                .transpose()?,
            gifts: ch
                .gifts
                .as_deref()
                .map(|g| self.gifts(g, "changes.gifts"))
                .transpose()?,
            findings: ch.findings.as_ref().map(findings).transpose()?,
            contact_exchanged: ch.contact_exchanged,
            medical_advice_given: ch.medical_advice_given,
            benefit_checks: ch.benefit_checks.clone(),
        };
        let event = VisitCorrected {
            visit_id: c.visit_id,
            model_worker_id: info.model_worker_id,
            reason,
            changes,
            late_entry: ch.visited_on.is_some_and(|d| self.late_entry(d)),
        };
        self.emit(Category::Visit, c.visit_id, event);
        if let (Some(p), Some(date)) = (info.pairing_id, ch.visited_on) {
            // Re-logging under the same activity id moves the visit's date in the pairing.
            self.emit(
                Category::Pairing,
                p,
                PairActivityLogged {
                    pairing_id: p,
                    activity_id: c.visit_id.0,
                    kind: ActivityKind::Visit,
                    on: date,
                },
            );
        }
        Ok(())
    }
}
