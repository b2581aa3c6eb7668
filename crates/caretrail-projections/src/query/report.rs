//! What the monthly and yearly reports need beyond the dashboards: the people reached by
//! visits in a date range (distinct model workers, in total and per city and county), and the
//! association the reports are written in the name of.
//!
//! Everything else a report shows (gifts per region, issues per body and age, overdue
//! pairings) is read through the dashboards' own queries, so a report and a dashboard for the
//! same as-of cannot disagree. People reached is counted here because no dashboard counts
//! distinct model workers over a range: a person visited twice is one person reached, and a
//! person visited in two counties (after a relocation) is reached once in each county and once
//! in total, so the per-region rows are not summed into the total.

use super::*;

/// Visits and distinct model workers visited in one group of a date range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Reach {
    /// The city's or county's GB/T 2260 code (current code); empty for the total, and for the
    /// city of a region that has none (a province-level region).
    pub code: String,
    /// Non-voided visits dated in the range.
    pub visits: i64,
    /// Distinct model workers those visits went to.
    pub people: i64,
}

/// People reached in a date range: in total, per city and per county.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PeriodReach {
    /// The whole range (`code` is empty).
    pub total: Reach,
    /// Per city (prefecture) where the visits took place, by code.
    pub by_city: Vec<Reach>,
    /// Per county where the visits took place, by code.
    pub by_county: Vec<Reach>,
}

query_row! {
    /// Visits and distinct model workers in one group.
    ReachRow {
        "visits" => {
            group_key ("county_code or city_code"): Text<String>,
            visits ("id"): Int,
            people ("model_worker_id"): Int,
        }
    }
}

query_row! {
    /// A body of kind `association`.
    AssociationRow {
        "bodies" => { name: Text<String>, region_code: Option<String> }
    }
}

impl ReadModels {
    /// People reached by non-voided visits dated `from..=to` (one read transaction, so the
    /// total and the groups agree).
    #[tracing::instrument(name = "projections.period_reach", skip_all)]
    pub async fn period_reach(&self, from: NaiveDate, to: NaiveDate) -> Result<PeriodReach> {
        let (mut tx, g) = self.begin().await?;
        let visits = physical(g, "visits");
        let mut groups = Vec::with_capacity(3);
        // The total is one aggregate without groups (a row of zeros when nothing matches),
        // keyed by the empty string; a city of NULL is keyed the same way, as the gifts table
        // keys it.
        for (key, group) in [
            ("CAST('' AS TEXT)", ""),
            ("COALESCE(city_code, '')", " GROUP BY 1 ORDER BY 1"),
            ("county_code", " GROUP BY 1 ORDER BY 1"),
        ] {
            let mut q = tx.args();
            let f = q.text(from.to_string());
            let t = q.text(to.to_string());
            let rows: Vec<ReachRow> = tx
                .rows(
                    &format!(
                        "SELECT {key} AS group_key, COUNT(*) AS visits, \
                         COUNT(DISTINCT model_worker_id) AS people FROM {visits} \
                         WHERE voided = 0 AND visited_on >= {f} AND visited_on <= {t}{group}"
                    ),
                    &q,
                )
                .await?;
            groups.push(
                rows.into_iter()
                    .map(|r| Reach {
                        code: r.group_key.0,
                        visits: r.visits.0,
                        people: r.people.0,
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let by_county = groups.pop().unwrap_or_default();
        let by_city = groups.pop().unwrap_or_default();
        let total = groups
            .pop()
            .and_then(|t| t.into_iter().next())
            .unwrap_or(Reach {
                code: String::new(),
                visits: 0,
                people: 0,
            });
        Ok(PeriodReach {
            total,
            by_city,
            by_county,
        })
    }

    /// The name of the association reports are written for: the registered body of kind
    /// `association` serving the province (a province-level region), else the first
    /// association registered for any region, else the first without one (by id); `None` when
    /// no association is registered.
    #[tracing::instrument(name = "projections.association_name", skip_all)]
    pub async fn association_name(&self) -> Result<Option<String>> {
        let (mut tx, g) = self.begin().await?;
        let bodies = physical(g, "bodies");
        let q = tx.args();
        let rows: Vec<AssociationRow> = tx
            .rows(
                &format!(
                    "SELECT name, region_code FROM {bodies} \
                     WHERE kind = 'association' ORDER BY id"
                ),
                &q,
            )
            .await?;
        let rank = |r: &AssociationRow| match r.region_code.as_deref().map(RegionCode::parse) {
            Some(Ok(code)) if code.city().is_none() => 0,
            Some(_) => 1,
            None => 2,
        };
        Ok(rows
            .into_iter()
            .enumerate()
            .min_by_key(|(i, r)| (rank(r), *i))
            .map(|(_, r)| r.name.0))
    }
}
