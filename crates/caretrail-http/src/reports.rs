//! The monthly and yearly reports the association sends up to the provincial federation:
//! `GET /api/v1/reports/monthly?period=2021-10` and `GET /api/v1/reports/yearly?period=2021`,
//! as an Excel workbook (`format=xlsx`, the default), one CSV file (`format=csv`) or JSON
//! (`format=json`, what the web page renders its printable version from).
//!
//! A report is written from the dashboards' own queries (`caretrail_projections::query`) on
//! the same read models the dashboards answer from (live, or a replay for `as_of_position` /
//! `as_of_recorded_at`), so its figures equal the overview's, the gifts' and the issues
//! summary's for the same as-of: see [`data`]. The figures that depend on a date (issue ages,
//! overdue pairings) are computed as of the period's last day, or `as_of` when that is earlier
//! (a current period). Who may read a report is who may read those dashboards
//! ([`DASHBOARD_READERS`]). A report holds no personal data: regions, bodies (organisations),
//! pairing ids and dates, never a person's name, because it leaves the system.
//!
//! [`sheet`] lays the figures out once as sheets of tables (Chinese headers by default,
//! `lang=en` for English); [`xlsx`] and [`csv`] write that layout, so the two files carry the
//! same cells. Bad input is a 400 problem with a stable code: `invalid_period` (not `YYYY-MM`
//! or `YYYY`, or a month outside 1–12), `period_out_of_range` (before 1949, or starting after
//! the as-of date), `unsupported_format`; a period without data is a report of zeros.

pub mod csv;
pub mod data;
pub mod sheet;
pub mod xlsx;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Principal;
use crate::dashboard::{DASHBOARD_READERS, Params};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;

/// The first year a report may cover: 1949, the founding of the People's Republic; an earlier
/// period is refused as out of range rather than answered with zeros.
pub const FIRST_YEAR: i32 = 1949;

/// Why a report could not be written. Each answers a stable code; none carries a value the
/// client sent or a value of the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The period is not `YYYY-MM` (monthly) or `YYYY` (yearly), or its month is not 1–12.
    #[error("{0}")]
    InvalidPeriod(&'static str),
    /// The period is before 1949 or starts after the as-of date.
    #[error("{0}")]
    PeriodOutOfRange(&'static str),
    /// `format` is not `xlsx`, `csv` or `json`.
    #[error("format must be xlsx, csv or json")]
    UnsupportedFormat,
    /// A total does not fit 64 bits (the sums are checked, never wrapped or saturated).
    #[error("a report total does not fit 64 bits")]
    Overflow,
    /// The workbook could not be written.
    #[error("writing the workbook failed: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// The CSV could not be written.
    #[error("writing the CSV failed: {0}")]
    Csv(#[from] ::csv::Error),
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> ApiError {
        match e {
            ReportError::InvalidPeriod(why) => ApiError::bad_request("invalid_period", why),
            ReportError::PeriodOutOfRange(why) => ApiError::bad_request("period_out_of_range", why),
            ReportError::UnsupportedFormat => {
                ApiError::bad_request("unsupported_format", e.to_string())
            }
            ReportError::Overflow => {
                tracing::error!("a report total does not fit 64 bits");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "amount_not_representable",
                    "a total is too large to write as a 64-bit number",
                )
            }
            ReportError::Xlsx(_) | ReportError::Csv(_) => ApiError::internal(&e),
        }
    }
}

/// Monthly or yearly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// One calendar month.
    Monthly,
    /// One calendar year.
    Yearly,
}

/// The calendar month or year a report covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// Monthly or yearly.
    pub kind: PeriodKind,
    /// The year.
    pub year: i32,
    /// The month (1–12) of a monthly report.
    pub month: Option<u32>,
}

impl Period {
    /// Parses `YYYY-MM` (monthly) or `YYYY` (yearly): exactly those digits, a month 1–12, a
    /// year from 1949.
    pub fn parse(kind: PeriodKind, text: &str) -> Result<Period, ReportError> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (year, month) = match kind {
            PeriodKind::Monthly => {
                let (y, m) = text
                    .split_once('-')
                    .filter(|&(y, m)| y.len() == 4 && m.len() == 2 && digits(y) && digits(m))
                    .ok_or(ReportError::InvalidPeriod(
                        "a monthly report's period is YYYY-MM, e.g. 2021-10",
                    ))?;
                (y, Some(m))
            }
            PeriodKind::Yearly => {
                if text.len() != 4 || !digits(text) {
                    return Err(ReportError::InvalidPeriod(
                        "a yearly report's period is YYYY, e.g. 2021",
                    ));
                }
                (text, None)
            }
        };
        let year: i32 = year
            .parse()
            .map_err(|_| ReportError::InvalidPeriod("the period's year is not a number"))?;
        let month = match month {
            None => None,
            Some(m) => match m.parse::<u32>() {
                Ok(m @ 1..=12) => Some(m),
                _ => {
                    return Err(ReportError::InvalidPeriod(
                        "the period's month must be 01 to 12",
                    ));
                }
            },
        };
        if year < FIRST_YEAR {
            return Err(ReportError::PeriodOutOfRange(
                "a report covers 1949 or later",
            ));
        }
        Ok(Period { kind, year, month })
    }

    /// The first day of the period.
    pub fn first_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month.unwrap_or(1), 1).unwrap_or(NaiveDate::MIN)
    }

    /// The last day of the period.
    pub fn last_day(&self) -> NaiveDate {
        let next = match self.month {
            Some(12) | None => NaiveDate::from_ymd_opt(self.year + 1, 1, 1),
            Some(m) => NaiveDate::from_ymd_opt(self.year, m + 1, 1),
        };
        next.and_then(|d| d.pred_opt()).unwrap_or(NaiveDate::MAX)
    }

    /// `2021-10` or `2021`.
    pub fn label(&self) -> String {
        match self.month {
            Some(m) => format!("{:04}-{m:02}", self.year),
            None => format!("{:04}", self.year),
        }
    }

    /// Refuses a period that starts after `as_of` (nothing of it has happened yet).
    fn check_against(&self, as_of: NaiveDate) -> Result<(), ReportError> {
        if self.first_day() > as_of {
            return Err(ReportError::PeriodOutOfRange(
                "the period starts after the as-of date",
            ));
        }
        Ok(())
    }
}

/// The file format of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An Excel workbook, one sheet per part.
    Xlsx,
    /// One UTF-8 CSV file with a byte-order mark, the parts one after another.
    Csv,
    /// The figures as JSON (for the page's printable version).
    Json,
}

impl Format {
    fn parse(text: Option<&str>) -> Result<Format, ReportError> {
        match text {
            None | Some("xlsx") => Ok(Format::Xlsx),
            Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            Some(_) => Err(ReportError::UnsupportedFormat),
        }
    }
}

/// The language of a report's headers, sheet names and labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Lang {
    /// Simplified Chinese (the default).
    #[default]
    #[serde(rename = "zh", alias = "zh-CN")]
    Zh,
    /// English.
    #[serde(rename = "en")]
    En,
}

fn format_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": ["xlsx", "csv", "json"], "default": "xlsx" })
}

fn monthly_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$" })
}

fn yearly_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "pattern": "^[0-9]{4}$" })
}

/// Declares a report route's query parameters (the period's grammar differs per route).
macro_rules! report_params {
    ($(#[$m:meta])* $name:ident, $period_schema:literal, $period_doc:literal) => {
        $(#[$m])*
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[doc = $period_doc]
            #[schemars(schema_with = $period_schema)]
            pub period: String,
            /// `xlsx` (default), `csv` (UTF-8 with a byte-order mark) or `json`.
            #[serde(default)]
            #[schemars(schema_with = "format_schema")]
            pub format: Option<String>,
            /// Headers and sheet names in Chinese (`zh`, default) or English (`en`).
            #[serde(default)]
            pub lang: Option<Lang>,
            /// The business date the report is computed against (default: today in
            /// Asia/Shanghai); the period may not start after it.
            pub as_of: Option<NaiveDate>,
            /// The report computed from the log up to this position, not from the live tables
            /// (administrators and auditors; at most the log's head).
            pub as_of_position: Option<u64>,
            /// The report computed from what had been stored at this time (RFC 3339; not with
            /// `as_of_position`).
            pub as_of_recorded_at: Option<chrono::DateTime<chrono::Utc>>,
        }

        impl $name {
            fn split(self) -> (String, Option<String>, Lang, Params) {
                (
                    self.period,
                    self.format,
                    self.lang.unwrap_or_default(),
                    Params {
                        as_of: self.as_of,
                        as_of_position: self.as_of_position,
                        as_of_recorded_at: self.as_of_recorded_at,
                        ..Params::default()
                    },
                )
            }
        }
    };
}

report_params!(
    /// Parameters of the monthly report.
    MonthlyParams,
    "monthly_schema",
    "The month: `YYYY-MM` (1949-01 or later, not after the as-of date)."
);

report_params!(
    /// Parameters of the yearly report.
    YearlyParams,
    "yearly_schema",
    "The year: `YYYY` (1949 or later, not after the as-of date's year)."
);

/// `GET /api/v1/reports/monthly`.
pub async fn monthly(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<MonthlyParams>, ApiError>,
) -> ApiResult<Response> {
    principal.require(DASHBOARD_READERS, "read reports")?;
    let (period, format, lang, params) = q?.0.split();
    report(
        state,
        principal,
        PeriodKind::Monthly,
        &period,
        format,
        lang,
        params,
    )
    .await
}

/// `GET /api/v1/reports/yearly`.
pub async fn yearly(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<YearlyParams>, ApiError>,
) -> ApiResult<Response> {
    principal.require(DASHBOARD_READERS, "read reports")?;
    let (period, format, lang, params) = q?.0.split();
    report(
        state,
        principal,
        PeriodKind::Yearly,
        &period,
        format,
        lang,
        params,
    )
    .await
}

#[tracing::instrument(name = "http.report", skip_all, fields(kind = ?kind))]
async fn report(
    state: AppState,
    principal: Principal,
    kind: PeriodKind,
    period: &str,
    format: Option<String>,
    lang: Lang,
    params: Params,
) -> ApiResult<Response> {
    let period = Period::parse(kind, period)?;
    let format = Format::parse(format.as_deref())?;
    let today = crate::dashboard::today(&state, &params);
    period.check_against(today)?;
    let report = data::compute(&state, &principal, &params, period, today).await?;
    let (body, content_type, ext) = match format {
        Format::Json => {
            let layout = sheet::PrintLayout::from(&sheet::layout(&report, lang));
            let body = serde_json::to_vec(&ReportAnswer { report, layout })
                .map_err(|e| ApiError::internal(&e))?;
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
        Format::Xlsx => {
            let layout = sheet::layout(&report, lang);
            let bytes = tokio::task::spawn_blocking(move || xlsx::write(&layout))
                .await
                .map_err(|e| ApiError::internal(&e))??;
            (bytes, XLSX_TYPE, "xlsx")
        }
        Format::Csv => (
            csv::write(&sheet::layout(&report, lang))?,
            "text/csv; charset=utf-8; header=absent",
            "csv",
        ),
    };
    let mut res = Body::from(body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let disposition = content_disposition(&period, lang, ext);
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|e| ApiError::internal(&e))?,
    );
    // Programme figures for one reader: no shared cache keeps a copy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A report route's documentation: the three answers and every problem it may give.
pub fn document<'a>(
    op: aide::transform::TransformOperation<'a>,
    id: &str,
    summary: &str,
) -> aide::transform::TransformOperation<'a> {
    use crate::openapi::{Describe, json_answer, response};
    use serde_json::json;
    let mut answer = json_answer::<ReportAnswer>(
        "the report: a workbook (format=xlsx, the default), a CSV file with a byte-order mark \
         (format=csv), or its figures (format=json)",
        json!({ "Content-Disposition": {
            "description": "for xlsx and csv: attachment; filename=\"caretrail-monthly-report-2021-10.xlsx\"; filename*=UTF-8''<the name in the report's language, percent-encoded>",
            "schema": { "type": "string" } } }),
    );
    let files = response(json!({
        "description": "",
        "content": {
            XLSX_TYPE: { "schema": { "type": "string", "format": "binary" } },
            "text/csv": { "schema": { "type": "string" } }
        }
    }));
    answer.content.extend(files.content);
    op.describe(id, "reports", summary)
        .answer(200, answer)
        .problem(400, "the period is malformed or its month is not 01–12 (invalid_period)")
        .problem(400, "the period is before 1949 or starts after the as-of date (period_out_of_range)")
        .problem(400, "format is not xlsx, csv or json (unsupported_format)")
        .problem(400, "a parameter is missing, unknown or invalid, or as_of_position is beyond the head (invalid_query)")
        .problem(403, "the token's role may not read reports (forbidden)")
        .problem(403, "only administrators and auditors may replay the log (as_of_position, as_of_recorded_at)")
        .problem(500, "a total does not fit 64 bits (amount_not_representable)")
        .problem(503, "dashboards are not enabled on this server (read_side_unavailable)")
}

/// A report as JSON (`format=json`): its figures, and the layout the files are written from,
/// which the web page prints.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReportAnswer {
    /// The figures.
    pub report: data::Report,
    /// The same report laid out in the requested language.
    pub layout: sheet::PrintLayout,
}

/// The media type of an Excel workbook.
pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// `attachment` with an ASCII `filename` (for clients without RFC 5987) and the report's
/// name in the report's language as `filename*` (RFC 6266 §4.3, RFC 5987 UTF-8 encoding).
pub fn content_disposition(period: &Period, lang: Lang, ext: &str) -> String {
    let label = period.label();
    let ascii = match period.kind {
        PeriodKind::Monthly => format!("caretrail-monthly-report-{label}.{ext}"),
        PeriodKind::Yearly => format!("caretrail-yearly-report-{label}.{ext}"),
    };
    let name = match (lang, period.kind) {
        (Lang::Zh, PeriodKind::Monthly) => format!("劳模帮扶月度报表-{label}.{ext}"),
        (Lang::Zh, PeriodKind::Yearly) => format!("劳模帮扶年度报表-{label}.{ext}"),
        (Lang::En, _) => ascii.clone(),
    };
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        rfc5987(&name)
    )
}

/// Everything but RFC 5987's `attr-char`s (ALPHA, DIGIT and ``!#$&+-.^_`|~``).
const NOT_ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Percent-encodes everything but RFC 5987's `attr-char`s (the UTF-8 bytes of the rest).
fn rfc5987(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, NOT_ATTR_CHAR).to_string()
}

/// The day after which nothing counts yet: the period's last day, or `today` within a
/// current period.
pub fn report_date(period: &Period, today: NaiveDate) -> NaiveDate {
    period.last_day().min(today)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: PeriodKind, s: &str) -> &'static str {
        match Period::parse(kind, s) {
            Err(ReportError::InvalidPeriod(_)) => "invalid_period",
            Err(ReportError::PeriodOutOfRange(_)) => "period_out_of_range",
            Err(_) => "other",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn periods_parse_strictly() {
        use PeriodKind::*;
        assert_eq!(err(Monthly, "2021-10"), "ok");
        assert_eq!(err(Monthly, "2021-13"), "invalid_period");
        assert_eq!(err(Monthly, "2021-00"), "invalid_period");
        assert_eq!(err(Monthly, "2021-1"), "invalid_period");
        assert_eq!(err(Monthly, "+021-10"), "invalid_period");
        assert_eq!(err(Monthly, "２０２１-10"), "invalid_period");
        assert_eq!(err(Monthly, "2021"), "invalid_period");
        assert_eq!(err(Monthly, "1948-12"), "period_out_of_range");
        assert_eq!(err(Yearly, "2021"), "ok");
        assert_eq!(err(Yearly, "1948"), "period_out_of_range");
        assert_eq!(err(Yearly, "2021-10"), "invalid_period");
        assert_eq!(err(Yearly, "20211"), "invalid_period");
        assert_eq!(err(Yearly, ""), "invalid_period");
        let feb = Period::parse(Monthly, "2024-02").unwrap();
        assert_eq!(
            feb.last_day(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        let dec = Period::parse(Monthly, "2021-12").unwrap();
        assert_eq!(
            dec.last_day(),
            NaiveDate::from_ymd_opt(2021, 12, 31).unwrap()
        );
        let year = Period::parse(Yearly, "9999").unwrap();
        assert_eq!(
            year.last_day(),
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()
        );
    }

    #[test]
    fn the_filename_has_an_ascii_fallback_and_an_encoded_chinese_name() {
        let p = Period::parse(PeriodKind::Monthly, "2021-10").unwrap();
        let d = content_disposition(&p, Lang::Zh, "xlsx");
        assert!(d.starts_with(
            "attachment; filename=\"caretrail-monthly-report-2021-10.xlsx\"; filename*=UTF-8''%E5%8A%B3"
        ));
        assert!(d.is_ascii());
        assert!(d.ends_with("-2021-10.xlsx"));
    }
}
