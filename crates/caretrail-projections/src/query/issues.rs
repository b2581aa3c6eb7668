//! The issues board (dashboard 5) and the issues summary, with the open-issue counts by
//! state and age that the overview shares.

use super::*;

/// Dashboard 5's filters.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IssuesQuery {
    pub as_of: NaiveDate,
    #[serde(default)]
    pub region: RegionFilter,
    /// A state (`raised`, `escalated`, ...) or `open` (the default) or `all`.
    pub state: Option<String>,
    pub body_id: Option<Uuid>,
    pub raised_from: Option<NaiveDate>,
    pub raised_to: Option<NaiveDate>,
    /// Only issues whose response is overdue.
    #[serde(default)]
    pub breached_only: bool,
    #[serde(default)]
    pub page: Page,
}

/// Dashboard 5: one issue on the board (oldest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct IssueItem {
    pub issue_id: Uuid,
    pub model_worker_id: Uuid,
    pub city_code: Option<String>,
    pub county_code: String,
    pub category: String,
    pub urgency: String,
    pub state: String,
    pub raised_on: NaiveDate,
    pub age_days: i64,
    pub age_bucket: String,
    pub escalated_to: Option<Uuid>,
    pub escalated_to_name: Option<String>,
    pub due_by: Option<NaiveDate>,
    pub respond_by: Option<NaiveDate>,
    pub breached: bool,
    pub resolved_on: Option<NaiveDate>,
}

/// Dashboard 5's summary: open issues by state and age, by body, and the median time to
/// resolve.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct IssueSummary {
    pub as_of: NaiveDate,
    pub open_by_state_and_age: Vec<IssueCount>,
    pub by_body: Vec<BodyIssues>,
    pub resolved: i64,
    pub median_days_to_resolve: Option<f64>,
}

/// Open issues escalated to one body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BodyIssues {
    pub body_id: Uuid,
    pub name: Option<String>,
    pub open: i64,
    pub breached: i64,
}

impl ReadModels {
    /// Dashboard 5: the issues board, oldest first.
    #[tracing::instrument(name = "projections.issues", skip_all)]
    pub async fn issues(&self, query: &IssuesQuery) -> Result<Paged<IssueItem>> {
        let (mut tx, g) = self.begin().await?;
        let mut conn = tx.conn();
        let (issues, bodies) = (physical(g, "issues"), physical(g, "bodies"));
        let mut q = Q::new();
        let bucket = bucket_sql(&mut q, query.as_of);
        let a = q.text(query.as_of.to_string());
        let mut filter = match query.state.as_deref() {
            None | Some("open") => format!(" AND i.state IN {}", open_states_sql()),
            Some("all") => String::new(),
            Some(s) => {
                let p = q.text(s);
                format!(" AND i.state = {p}")
            }
        };
        filter.push_str(&q.region(&query.region, "i.")?);
        if let Some(b) = query.body_id {
            let p = q.text(b.to_string());
            filter.push_str(&format!(" AND i.body_id = {p}"));
        }
        if let Some(d) = query.raised_from {
            let p = q.text(d.to_string());
            filter.push_str(&format!(" AND i.raised_on >= {p}"));
        }
        if let Some(d) = query.raised_to {
            let p = q.text(d.to_string());
            filter.push_str(&format!(" AND i.raised_on <= {p}"));
        }
        let breach = format!("COALESCE(i.due_by, i.respond_by) < {a}");
        if query.breached_only {
            filter.push_str(&format!(
                " AND i.state IN {} AND {breach}",
                open_states_sql()
            ));
        }
        let lim = limit_sql(&mut q, query.page);
        let sql = format!(
            "SELECT i.id, i.model_worker_id, i.city_code, i.county_code, i.category, i.urgency, \
             i.state, i.raised_on, {bucket}, i.body_id, b.name, i.due_by, i.respond_by, \
             CASE WHEN i.state IN {open} AND {breach} THEN 1 ELSE 0 END, i.resolved_on \
             FROM {issues} i LEFT JOIN {bodies} b ON b.id = i.body_id \
             WHERE 1 = 1{filter} ORDER BY i.raised_on, i.id{lim}",
            bucket = bucket.replace("raised_on", "i.raised_on"),
            open = open_states_sql(),
        );
        use ColType::{Int as I, Text as T};
        let rows = q
            .fetch(
                &mut conn,
                &sql,
                &[T, T, T, T, T, T, T, T, T, T, T, T, T, I, T],
            )
            .await?;
        let items = rows
            .iter()
            .map(|r| {
                let raised = date(&r[7]).unwrap_or_default();
                IssueItem {
                    issue_id: uuid(&r[0]).unwrap_or_default(),
                    model_worker_id: uuid(&r[1]).unwrap_or_default(),
                    city_code: text(&r[2]),
                    county_code: text(&r[3]).unwrap_or_default(),
                    category: text(&r[4]).unwrap_or_default(),
                    urgency: text(&r[5]).unwrap_or_default(),
                    state: text(&r[6]).unwrap_or_default(),
                    raised_on: raised,
                    age_days: (query.as_of - raised).num_days(),
                    age_bucket: text(&r[8]).unwrap_or_default(),
                    escalated_to: uuid(&r[9]),
                    escalated_to_name: text(&r[10]),
                    due_by: date(&r[11]),
                    respond_by: date(&r[12]),
                    breached: int(&r[13]) != 0,
                    resolved_on: date(&r[14]),
                }
            })
            .collect();
        Ok(page_of(items, query.page))
    }

    /// Dashboard 5's summary.
    #[tracing::instrument(name = "projections.issue_summary", skip_all)]
    pub async fn issue_summary(
        &self,
        as_of: NaiveDate,
        region: &RegionFilter,
    ) -> Result<IssueSummary> {
        let (mut tx, g) = self.begin().await?;
        let mut conn = tx.conn();
        let (issues, bodies) = (physical(g, "issues"), physical(g, "bodies"));
        let open_by_state_and_age = open_issue_counts(&mut conn, &issues, as_of, region).await?;
        let mut q = Q::new();
        let a = q.text(as_of.to_string());
        let r = q.region(region, "i.")?;
        let by_body = q
            .fetch(
                &mut conn,
                &format!(
                    "SELECT i.body_id, b.name, COUNT(*), CAST(COALESCE(SUM(CASE WHEN \
                     COALESCE(i.due_by, i.respond_by) < {a} THEN 1 ELSE 0 END), 0) AS BIGINT) \
                     FROM {issues} i LEFT JOIN {bodies} b ON b.id = i.body_id \
                     WHERE i.body_id IS NOT NULL AND i.state IN {open}{r} \
                     GROUP BY i.body_id, b.name ORDER BY COUNT(*) DESC, i.body_id",
                    open = open_states_sql()
                ),
                &[ColType::Text, ColType::Text, ColType::Int, ColType::Int],
            )
            .await?
            .iter()
            .map(|r| BodyIssues {
                body_id: uuid(&r[0]).unwrap_or_default(),
                name: text(&r[1]),
                open: int(&r[2]),
                breached: int(&r[3]),
            })
            .collect();
        // The median through the `days_to_resolve` index: count, then one or two rows at the
        // middle offset.
        let mut q = Q::new();
        let r = q.region(region, "")?;
        let resolved = q
            .fetch(
                &mut conn,
                &format!("SELECT COUNT(*) FROM {issues} WHERE days_to_resolve IS NOT NULL{r}"),
                &[ColType::Int],
            )
            .await?
            .first()
            .map_or(0, |r| int(&r[0]));
        let median = if resolved == 0 {
            None
        } else {
            let mut q = Q::new();
            let r = q.region(region, "")?;
            let off = q.int((resolved - 1) / 2);
            let n = q.int(if resolved % 2 == 0 { 2 } else { 1 });
            let mid = q
                .fetch(
                    &mut conn,
                    &format!(
                        "SELECT days_to_resolve FROM {issues} WHERE days_to_resolve IS NOT NULL{r} \
                         ORDER BY days_to_resolve LIMIT {n} OFFSET {off}"
                    ),
                    &[ColType::Int],
                )
                .await?;
            let vals: Vec<i64> = mid.iter().map(|r| int(&r[0])).collect();
            (!vals.is_empty()).then(|| vals.iter().sum::<i64>() as f64 / vals.len() as f64)
        };
        Ok(IssueSummary {
            as_of,
            open_by_state_and_age,
            by_body,
            resolved,
            median_days_to_resolve: median,
        })
    }
}

pub(super) async fn open_issue_counts(
    conn: &mut Conn<'_>,
    issues: &str,
    as_of: NaiveDate,
    region: &RegionFilter,
) -> Result<Vec<IssueCount>> {
    let mut q = Q::new();
    let bucket = bucket_sql(&mut q, as_of);
    let r = q.region(region, "")?;
    let rows = q
        .fetch(
            conn,
            &format!(
                "SELECT state, {bucket}, COUNT(*) FROM {issues} \
                 WHERE state IN {open}{r} GROUP BY 1, 2 ORDER BY 1, 2",
                open = open_states_sql()
            ),
            &[ColType::Text, ColType::Text, ColType::Int],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| IssueCount {
            state: text(&r[0]).unwrap_or_default(),
            age_bucket: text(&r[1]).unwrap_or_default(),
            count: int(&r[2]),
        })
        .collect())
}
