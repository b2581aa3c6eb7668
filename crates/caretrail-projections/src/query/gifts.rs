//! Gifts by month, city, county or director (dashboard 6) and coverage by region
//! (dashboard 7).

use super::*;

/// How dashboard 6 groups gifts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GiftGrouping {
    /// By calendar month of the visit date.
    Month,
    /// By the prefecture-level city where the visit took place.
    City,
    /// By the county where the visit took place.
    County,
    /// By director and year (`from`/`to` select whole years).
    Director,
}

/// Dashboard 6's filters: months `from..=to` (any day in the month selects it).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct GiftsQuery {
    /// Any day of the first month (of the first year for the director grouping).
    pub from: NaiveDate,
    /// Any day of the last month (of the last year for the director grouping).
    pub to: NaiveDate,
    /// Only visits that took place in this city or county (not applied to the director grouping).
    #[serde(default)]
    pub region: RegionFilter,
    /// How to group.
    pub group_by: GiftGrouping,
    /// Which page.
    #[serde(default)]
    pub page: Page,
}

/// Dashboard 6: gifts given in one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GiftTotals {
    /// The month (`2021-10`), region code, or director id.
    pub key: String,
    /// The region's name, for region groupings.
    pub label: Option<String>,
    /// For the director grouping: the year.
    pub year: Option<i64>,
    /// Non-voided visits in the group (for the director grouping, within the director's pairings).
    pub visits: i64,
    /// Condolence money given, in fen (1 yuan = 100 fen).
    pub cash_fen: i64,
    /// `cash_fen` as yuan with two decimals (e.g. `1000.00`).
    pub cash_yuan: String,
    /// The known value of goods given, in fen (flower values are not summed).
    pub goods_fen: i64,
    /// Number of gifts of goods.
    pub goods_count: i64,
    /// Number of gifts of flowers.
    pub flowers_count: i64,
}

/// Dashboard 7's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoverageLevel {
    /// One row per prefecture-level city.
    City,
    /// One row per county.
    County,
}

/// Dashboard 7: coverage in one city or county.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CoverageRow {
    /// The city's or county's GB/T 2260 code (current code).
    pub region_code: String,
    /// Its name (empty when the code is not in the region table).
    pub region_name: String,
    /// The city the row belongs to; null for a province-level region.
    pub city_code: Option<String>,
    /// Living model workers in hardship whose current region is here.
    pub in_hardship: i64,
    /// Of those, the ones with an active pairing.
    pub paired: i64,
    /// In hardship and visited in the 183 days up to `as_of`.
    pub visited_last_183_days: i64,
}

query_row! {
    /// Gifts summed over one group of dashboard 6.
    GiftTotalsRow {
        "gifts_by_month" => {
            /// The month, region code or director id.
            group_key ("month, county_code, city_code or director_id"): Text<String>,
            /// The year for the director grouping, else NULL.
            year: Option<Int>,
            visits: Int,
            cash_hi ("cash_fen_hi"): Int,
            cash_lo ("cash_fen_lo"): Int,
            goods_hi ("goods_fen_hi"): Int,
            goods_lo ("goods_fen_lo"): Int,
            goods_count: Int,
            flowers_count: Int,
        }
    }
}

query_row! {
    /// Coverage counts of one city or county (dashboard 7).
    CoverageRowCounts {
        "model_workers" => {
            region_code ("county_code"): Text<String>,
            city_code: Option<String>,
            in_hardship: Int,
            paired ("pairing_id"): Int,
            visited_last_183_days ("last_visit_on"): Int,
        }
    }
}

impl ReadModels {
    /// Dashboard 6.
    #[tracing::instrument(name = "projections.gifts", skip_all)]
    pub async fn gifts(&self, query: &GiftsQuery) -> Result<Paged<GiftTotals>> {
        let (mut tx, g) = self.begin().await?;
        let sums = format!(
            "CAST(SUM(visits) AS BIGINT) AS visits, {}, {}, \
             CAST(SUM(goods_count) AS BIGINT) AS goods_count, \
             CAST(SUM(flowers_count) AS BIGINT) AS flowers_count",
            sum_fen("cash_fen", "cash"),
            sum_fen("goods_fen", "goods")
        );
        let mut q = tx.args();
        let sql = if query.group_by == GiftGrouping::Director {
            let from = q.int(i64::from(query.from.year()));
            let to = q.int(i64::from(query.to.year()));
            let lim = limit_sql(&mut q, query.page);
            format!(
                "SELECT director_id AS group_key, year, {sums} FROM {t} WHERE year >= {from} \
                 AND year <= {to} GROUP BY director_id, year \
                 ORDER BY director_id, year{lim}",
                t = physical(g, "director_years")
            )
        } else {
            let key = match query.group_by {
                GiftGrouping::Month => "month",
                GiftGrouping::City => "city_code",
                _ => "county_code",
            };
            let from = q.text(format!(
                "{:04}-{:02}",
                query.from.year(),
                query.from.month()
            ));
            let to = q.text(format!("{:04}-{:02}", query.to.year(), query.to.month()));
            let r = q.region(&query.region, "")?;
            let lim = limit_sql(&mut q, query.page);
            format!(
                "SELECT {key} AS group_key, CAST(NULL AS BIGINT) AS year, {sums} FROM {t} \
                 WHERE month >= {from} AND month <= {to}{r} \
                 GROUP BY {key} ORDER BY {key}{lim}",
                t = physical(g, "gifts_by_month")
            )
        };
        let rows: Vec<GiftTotalsRow> = tx.rows(&sql, &q).await?;
        let items = rows
            .into_iter()
            .map(|r| {
                let cash = fen(r.cash_hi, r.cash_lo)?;
                let goods = fen(r.goods_hi, r.goods_lo)?;
                let Text(key) = r.group_key;
                let label = match query.group_by {
                    GiftGrouping::City | GiftGrouping::County => {
                        RegionCode::parse(&key).ok().map(|c| c.name().to_owned())
                    }
                    _ => None,
                };
                Ok(GiftTotals {
                    key,
                    label,
                    year: r.year.map(|Int(y)| y),
                    visits: r.visits.0,
                    cash_fen: cash,
                    cash_yuan: yuan(cash),
                    goods_fen: goods,
                    goods_count: r.goods_count.0,
                    flowers_count: r.flowers_count.0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, query.page))
    }

    /// Dashboard 7: per city or county, model workers in hardship, paired, and visited in the
    /// 183 days up to `as_of`.
    #[tracing::instrument(name = "projections.coverage", skip_all)]
    pub async fn coverage(
        &self,
        as_of: NaiveDate,
        level: CoverageLevel,
        region: &RegionFilter,
    ) -> Result<Vec<CoverageRow>> {
        let (mut tx, g) = self.begin().await?;
        let mw = physical(g, "model_workers");
        let mut q = tx.args();
        let since = q.text(minus(as_of, 183).to_string());
        let a = q.text(as_of.to_string());
        let r = q.region(region, "")?;
        let (key, group) = match level {
            CoverageLevel::City => (
                "COALESCE(city_code, county_code)",
                "COALESCE(city_code, county_code), city_code",
            ),
            CoverageLevel::County => ("county_code", "county_code, city_code"),
        };
        let rows: Vec<CoverageRowCounts> = tx
            .rows(
                &format!(
                    "SELECT {key} AS region_code, city_code, COUNT(*) AS in_hardship, \
                     CAST(SUM(CASE WHEN pairing_id IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) \
                     AS paired, \
                     CAST(SUM(CASE WHEN last_visit_on >= {since} AND last_visit_on <= {a} \
                     THEN 1 ELSE 0 END) AS BIGINT) AS visited_last_183_days \
                     FROM {mw} WHERE in_hardship = 1 AND died_on IS NULL{r} \
                     GROUP BY {group} ORDER BY 1"
                ),
                &q,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let Text(code) = r.region_code;
                CoverageRow {
                    region_name: RegionCode::parse(&code)
                        .map(|c| c.name().to_owned())
                        .unwrap_or_default(),
                    region_code: code,
                    city_code: r.city_code,
                    in_hardship: r.in_hardship.0,
                    paired: r.paired.0,
                    visited_last_183_days: r.visited_last_183_days.0,
                }
            })
            .collect())
    }
}
