//! The issues board (dashboard 5) and the issues summary, with the open-issue counts by
//! state and age that the overview shares.

use super::*;

/// Dashboard 5's filters.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IssuesQuery {
    /// The business date ages and breaches are computed against.
    pub as_of: NaiveDate,
    /// Only issues in this city or county (the model worker's region when the issue was raised).
    #[serde(default)]
    pub region: RegionFilter,
    /// A state (`raised`, `escalated`, ...) or `open` (the default) or `all`.
    pub state: Option<String>,
    /// Only issues whose current body is this one.
    pub body_id: Option<Uuid>,
    /// Raised on or after this date.
    pub raised_from: Option<NaiveDate>,
    /// Raised on or before this date.
    pub raised_to: Option<NaiveDate>,
    /// Only issues whose response is overdue.
    #[serde(default)]
    pub breached_only: bool,
    /// Which page.
    #[serde(default)]
    pub page: Page,
}

/// Dashboard 5: one issue on the board (oldest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct IssueItem {
    /// The issue's id.
    pub issue_id: Uuid,
    /// The model worker the issue is about.
    pub model_worker_id: Uuid,
    /// The prefecture-level city of the model worker's region when the issue was raised; null for
    /// a province-level region.
    pub city_code: Option<String>,
    /// The model worker's region when the issue was raised (GB/T 2260, current code).
    pub county_code: String,
    /// The issue's category (snake_case).
    pub category: String,
    /// The issue's urgency (snake_case).
    pub urgency: String,
    /// `raised`, `acknowledged`, `escalated`, `reopened`, `resolved`, `confirmed` or `closed`.
    pub state: String,
    /// The date the issue was raised.
    pub raised_on: NaiveDate,
    /// Days from `raised_on` to `as_of`.
    pub age_days: i64,
    /// `0-7`, `8-30`, `31-90` or `>90`, by days since raised as of `as_of`.
    pub age_bucket: String,
    /// The body the issue was last escalated or redirected to, or the body recorded as solving it;
    /// kept after a reopen.
    pub escalated_to: Option<Uuid>,
    /// That body's name.
    pub escalated_to_name: Option<String>,
    /// The date the current body is due to answer by; kept after a reopen.
    pub due_by: Option<NaiveDate>,
    /// The respond-by date set when the issue was acknowledged.
    pub respond_by: Option<NaiveDate>,
    /// Open, and `due_by` (else `respond_by`) is before `as_of`.
    pub breached: bool,
    /// The date it was resolved; null while unresolved or after a reopen.
    pub resolved_on: Option<NaiveDate>,
}

/// Dashboard 5's summary: open issues by state and age, by body, and the median time to
/// resolve.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct IssueSummary {
    /// The business date ages and breaches are computed against.
    pub as_of: NaiveDate,
    /// Open issues counted by state and age bucket.
    pub open_by_state_and_age: Vec<IssueCount>,
    /// Open issues per current body, most first.
    pub by_body: Vec<BodyIssues>,
    /// Issues with a resolution date (resolved, confirmed or closed, and not reopened since).
    pub resolved: i64,
    /// Median days from raised to resolved over those issues; null when there are none.
    pub median_days_to_resolve: Option<f64>,
}

/// Open issues escalated to one body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct BodyIssues {
    /// The body's id.
    pub body_id: Uuid,
    /// The body's name; null if the read model has no such body.
    pub name: Option<String>,
    /// Open issues whose current body is this one.
    pub open: i64,
    /// Of those, the ones whose `due_by` (else `respond_by`) is before `as_of`.
    pub breached: i64,
}

query_row! {
    /// A row of dashboard 5.
    IssueItemRow {
        "issues" => {
            issue_id ("id"): Text<Uuid>,
            model_worker_id: Text<Uuid>,
            city_code: Option<String>,
            county_code: Text<String>,
            category: Text<String>,
            urgency: Text<String>,
            state: Text<String>,
            raised_on: Text<NaiveDate>,
            age_bucket ("raised_on"): Text<String>,
            body_id: Option<Text<Uuid>>,
            due_by: Option<Text<NaiveDate>>,
            respond_by: Option<Text<NaiveDate>>,
            breached ("state"): Flag,
            resolved_on: Option<Text<NaiveDate>>,
        },
        "bodies" => { body_name ("name"): Option<String> },
    }
}

query_row! {
    /// Open issues escalated to one body, as the summary reads them.
    BodyIssuesRow {
        "issues" => { body_id: Text<Uuid>, open ("id"): Int, breached ("due_by"): Int },
        "bodies" => { name: Option<String> },
    }
}

query_row! {
    /// How many issues have been resolved.
    ResolvedCount { "issues" => { resolved ("days_to_resolve"): Int } }
}

query_row! {
    /// One of the middle values for the median time to resolve.
    DaysToResolve { "issues" => { days_to_resolve: Int } }
}

query_row! {
    /// Open issues in one state and age bucket.
    IssueCountRow {
        "issues" => { state: Text<String>, age_bucket ("raised_on"): Text<String>, count ("id"): Int }
    }
}

impl ReadModels {
    /// Dashboard 5: the issues board, oldest first.
    #[tracing::instrument(name = "projections.issues", skip_all)]
    pub async fn issues(&self, query: &IssuesQuery) -> Result<Paged<IssueItem>> {
        let (mut tx, g) = self.begin().await?;
        let (issues, bodies) = (physical(g, "issues"), physical(g, "bodies"));
        let mut q = tx.args();
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
        // The breach flag is cast: a bare integer literal is INT4 on PostgreSQL, and flags
        // are read as BIGINT like the stored ones.
        let sql = format!(
            "SELECT i.id AS issue_id, i.model_worker_id, i.city_code, i.county_code, \
             i.category, i.urgency, i.state, i.raised_on, {bucket} AS age_bucket, i.body_id, \
             b.name AS body_name, i.due_by, i.respond_by, \
             CAST(CASE WHEN i.state IN {open} AND {breach} THEN 1 ELSE 0 END AS BIGINT) \
             AS breached, i.resolved_on \
             FROM {issues} i LEFT JOIN {bodies} b ON b.id = i.body_id \
             WHERE 1 = 1{filter} ORDER BY i.raised_on, i.id{lim}",
            bucket = bucket.replace("raised_on", "i.raised_on"),
            open = open_states_sql(),
        );
        let rows: Vec<IssueItemRow> = tx.rows(&sql, &q).await?;
        let items = rows
            .into_iter()
            .map(|r| {
                let Text(raised) = r.raised_on;
                IssueItem {
                    issue_id: r.issue_id.0,
                    model_worker_id: r.model_worker_id.0,
                    city_code: r.city_code,
                    county_code: r.county_code.0,
                    category: r.category.0,
                    urgency: r.urgency.0,
                    state: r.state.0,
                    raised_on: raised,
                    age_days: (query.as_of - raised).num_days(),
                    age_bucket: r.age_bucket.0,
                    escalated_to: opt(r.body_id),
                    escalated_to_name: r.body_name,
                    due_by: opt(r.due_by),
                    respond_by: opt(r.respond_by),
                    breached: r.breached.0,
                    resolved_on: opt(r.resolved_on),
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
        let (issues, bodies) = (physical(g, "issues"), physical(g, "bodies"));
        let open_by_state_and_age = open_issue_counts(&mut tx, &issues, as_of, region).await?;
        let mut q = tx.args();
        let a = q.text(as_of.to_string());
        let r = q.region(region, "i.")?;
        let by_body = tx
            .rows::<BodyIssuesRow>(
                &format!(
                    "SELECT i.body_id, b.name, COUNT(*) AS open, CAST(COALESCE(SUM(CASE WHEN \
                     COALESCE(i.due_by, i.respond_by) < {a} THEN 1 ELSE 0 END), 0) AS BIGINT) \
                     AS breached \
                     FROM {issues} i LEFT JOIN {bodies} b ON b.id = i.body_id \
                     WHERE i.body_id IS NOT NULL AND i.state IN {open}{r} \
                     GROUP BY i.body_id, b.name ORDER BY COUNT(*) DESC, i.body_id",
                    open = open_states_sql()
                ),
                &q,
            )
            .await?
            .into_iter()
            .map(|r| BodyIssues {
                body_id: r.body_id.0,
                name: r.name,
                open: r.open.0,
                breached: r.breached.0,
            })
            .collect();
        // The median through the `days_to_resolve` index: count, then one or two rows at the
        // middle offset.
        let mut q = tx.args();
        let r = q.region(region, "")?;
        let Int(resolved) = tx
            .one::<ResolvedCount>(
                &format!(
                    "SELECT COUNT(*) AS resolved FROM {issues} \
                     WHERE days_to_resolve IS NOT NULL{r}"
                ),
                &q,
            )
            .await?
            .resolved;
        let median = if resolved == 0 {
            None
        } else {
            let mut q = tx.args();
            let r = q.region(region, "")?;
            let off = q.int((resolved - 1) / 2);
            let n = q.int(if resolved % 2 == 0 { 2 } else { 1 });
            let mid = tx
                .rows::<DaysToResolve>(
                    &format!(
                        "SELECT days_to_resolve FROM {issues} WHERE days_to_resolve IS NOT NULL{r} \
                         ORDER BY days_to_resolve LIMIT {n} OFFSET {off}"
                    ),
                    &q,
                )
                .await?;
            let vals: Vec<i64> = mid.iter().map(|r| r.days_to_resolve.0).collect();
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
    tx: &mut ReadTx,
    issues: &str,
    as_of: NaiveDate,
    region: &RegionFilter,
) -> Result<Vec<IssueCount>> {
    let mut q = tx.args();
    let bucket = bucket_sql(&mut q, as_of);
    let r = q.region(region, "")?;
    let rows: Vec<IssueCountRow> = tx
        .rows(
            &format!(
                "SELECT state, {bucket} AS age_bucket, COUNT(*) AS count FROM {issues} \
                 WHERE state IN {open}{r} GROUP BY 1, 2 ORDER BY 1, 2",
                open = open_states_sql()
            ),
            &q,
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| IssueCount {
            state: r.state.0,
            age_bucket: r.age_bucket.0,
            count: r.count.0,
        })
        .collect())
}
