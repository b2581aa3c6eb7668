//! Gifts by month, city, county or director (dashboard 6) and coverage by region
//! (dashboard 7).

use super::*;

/// How dashboard 6 groups gifts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GiftGrouping {
    Month,
    City,
    County,
    /// By director and year (`from`/`to` select whole years).
    Director,
}

/// Dashboard 6's filters: months `from..=to` (any day in the month selects it).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct GiftsQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(default)]
    pub region: RegionFilter,
    pub group_by: GiftGrouping,
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
    pub visits: i64,
    pub cash_fen: i64,
    pub cash_yuan: String,
    pub goods_fen: i64,
    pub goods_count: i64,
    pub flowers_count: i64,
}

/// Dashboard 7's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoverageLevel {
    City,
    County,
}

/// Dashboard 7: coverage in one city or county.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CoverageRow {
    pub region_code: String,
    pub region_name: String,
    pub city_code: Option<String>,
    pub in_hardship: i64,
    pub paired: i64,
    /// In hardship and visited in the 183 days up to `as_of`.
    pub visited_last_183_days: i64,
}

impl ReadModels {
    /// Dashboard 6.
    #[tracing::instrument(name = "projections.gifts", skip_all)]
    pub async fn gifts(&self, query: &GiftsQuery) -> Result<Paged<GiftTotals>> {
        let (mut tx, g) = self.begin().await?;
        let mut conn = tx.conn();
        let sums = format!(
            "CAST(SUM(visits) AS BIGINT), {}, {}, CAST(SUM(goods_count) AS BIGINT), \
             CAST(SUM(flowers_count) AS BIGINT)",
            sum_fen("cash_fen"),
            sum_fen("goods_fen")
        );
        let mut q = Q::new();
        use ColType::{Int as I, Text as T};
        let (sql, director) = if query.group_by == GiftGrouping::Director {
            let from = q.int(i64::from(query.from.year()));
            let to = q.int(i64::from(query.to.year()));
            let lim = limit_sql(&mut q, query.page);
            (
                format!(
                    "SELECT director_id, year, {sums} FROM {t} WHERE year >= {from} \
                     AND year <= {to} GROUP BY director_id, year \
                     ORDER BY director_id, year{lim}",
                    t = physical(g, "director_years")
                ),
                true,
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
            (
                format!(
                    "SELECT {key}, 0, {sums} FROM {t} WHERE month >= {from} AND month <= {to}{r} \
                     GROUP BY {key} ORDER BY {key}{lim}",
                    t = physical(g, "gifts_by_month")
                ),
                false,
            )
        };
        let rows = q
            .fetch(&mut conn, &sql, &[T, I, I, I, I, I, I, I, I])
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                let (cash, goods) = (fen(&r[3], &r[4])?, fen(&r[5], &r[6])?);
                let key = text(&r[0]).unwrap_or_default();
                let label = match query.group_by {
                    GiftGrouping::City | GiftGrouping::County => {
                        RegionCode::parse(&key).ok().map(|c| c.name().to_owned())
                    }
                    _ => None,
                };
                Ok(GiftTotals {
                    key,
                    label,
                    year: director.then(|| int(&r[1])),
                    visits: int(&r[2]),
                    cash_fen: cash,
                    cash_yuan: yuan(cash),
                    goods_fen: goods,
                    goods_count: int(&r[7]),
                    flowers_count: int(&r[8]),
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
        let mut conn = tx.conn();
        let mw = physical(g, "model_workers");
        let mut q = Q::new();
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
        let rows = q
            .fetch(
                &mut conn,
                &format!(
                    "SELECT {key}, city_code, COUNT(*), \
                     CAST(SUM(CASE WHEN pairing_id IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
                     CAST(SUM(CASE WHEN last_visit_on >= {since} AND last_visit_on <= {a} \
                     THEN 1 ELSE 0 END) AS BIGINT) \
                     FROM {mw} WHERE in_hardship = 1 AND died_on IS NULL{r} \
                     GROUP BY {group} ORDER BY 1"
                ),
                &[
                    ColType::Text,
                    ColType::Text,
                    ColType::Int,
                    ColType::Int,
                    ColType::Int,
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let code = text(&r[0]).unwrap_or_default();
                CoverageRow {
                    region_name: RegionCode::parse(&code)
                        .map(|c| c.name().to_owned())
                        .unwrap_or_default(),
                    region_code: code,
                    city_code: text(&r[1]),
                    in_hardship: int(&r[2]),
                    paired: int(&r[3]),
                    visited_last_183_days: int(&r[4]),
                }
            })
            .collect())
    }
}
