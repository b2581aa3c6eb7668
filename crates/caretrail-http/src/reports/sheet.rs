//! A report laid out once as sheets of tables, in the report's language, for both writers:
//! the workbook has one sheet per [`Sheet`], the CSV the same tables one after another. Each
//! sheet starts with the same header block (association, report, period, as-of date, log
//! position, generation time), so a printed or forwarded sheet says what it is on its own.
//!
//! Cells keep their kind ([`Cell`]): text is only ever written as text (never as a formula),
//! counts as integers, money as fen shown as yuan with two decimals.

use chrono::{FixedOffset, NaiveDate};

use super::data::{RegionLine, Report};
use super::{Lang, PeriodKind};

/// One cell's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Text, written as a string (names come from the log and may start with `=`).
    Text(String),
    /// A count or a position.
    Int(i64),
    /// An amount in fen, shown as yuan with two decimals.
    Yuan(i64),
    /// A date, written as `YYYY-MM-DD` text.
    Date(NaiveDate),
    /// Nothing.
    Empty,
}

impl Cell {
    fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    fn opt(s: Option<&str>) -> Cell {
        s.map_or(Cell::Empty, Cell::text)
    }
}

/// A titled table: a header row and data rows; the last row is a total when `total` is set.
#[derive(Clone, Debug)]
pub struct Table {
    /// The table's title.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Data rows (each as long as `columns`).
    pub rows: Vec<Vec<Cell>>,
    /// The last row is a total (written bold).
    pub total: bool,
}

/// A sheet: its name and tables.
#[derive(Clone, Debug)]
pub struct Sheet {
    /// The sheet's name (at most 31 characters, none of `[]:*?/\`).
    pub name: String,
    /// Its tables, in order.
    pub tables: Vec<Table>,
}

/// A report ready to write.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The report's title (`浙江省劳动模范协会 2021-10 月度报表`).
    pub title: String,
    /// The header block: label and value per row.
    pub header: Vec<(String, Cell)>,
    /// The sheets.
    pub sheets: Vec<Sheet>,
}

/// The words of a report in one language.
struct Words {
    monthly: &'static str,
    yearly: &'static str,
    association: &'static str,
    report: &'static str,
    period: &'static str,
    as_of: &'static str,
    position: &'static str,
    replayed: &'static str,
    live: &'static str,
    generated: &'static str,
    to: &'static str,
    sheets: [&'static str; 4],
    totals: &'static str,
    item: &'static str,
    value: &'static str,
    visits: &'static str,
    people: &'static str,
    cash: &'static str,
    goods: &'static str,
    goods_count: &'static str,
    flowers: &'static str,
    open_issues: &'static str,
    overdue_pairings: &'static str,
    by_city: &'static str,
    by_county: &'static str,
    city_code: &'static str,
    city: &'static str,
    county_code: &'static str,
    county: &'static str,
    no_city: &'static str,
    total: &'static str,
    by_body: &'static str,
    body: &'static str,
    open: &'static str,
    breached: &'static str,
    not_escalated: &'static str,
    by_age: &'static str,
    age: &'static str,
    days: &'static str,
    pairing: &'static str,
    last_visit: &'static str,
    due_on: &'static str,
    days_overdue: &'static str,
    none: &'static str,
}

static ZH: Words = Words {
    monthly: "月度报表",
    yearly: "年度报表",
    association: "单位",
    report: "报表",
    period: "统计期间",
    as_of: "截至日期",
    position: "日志位置",
    replayed: "（日志回放）",
    live: "",
    generated: "生成时间",
    to: "至",
    sheets: ["概览", "地区", "问题", "逾期结对"],
    totals: "汇总",
    item: "项目",
    value: "数值",
    visits: "走访次数",
    people: "走访劳模人数",
    cash: "慰问金（元）",
    goods: "慰问品价值（元）",
    goods_count: "慰问品件数",
    flowers: "鲜花束数",
    open_issues: "未办结问题",
    overdue_pairings: "逾期未走访结对",
    by_city: "按设区市",
    by_county: "按县（市、区）",
    city_code: "设区市代码",
    city: "设区市",
    county_code: "县（市、区）代码",
    county: "县（市、区）",
    no_city: "省级",
    total: "合计",
    by_body: "按承办单位",
    body: "承办单位",
    open: "未办结",
    breached: "已超期",
    not_escalated: "未转办",
    by_age: "按已提出天数",
    age: "已提出天数",
    days: "天",
    pairing: "结对编号",
    last_visit: "最近走访日期",
    due_on: "应走访日期",
    days_overdue: "逾期天数",
    none: "（无）",
};

static EN: Words = Words {
    monthly: "Monthly report",
    yearly: "Yearly report",
    association: "Association",
    report: "Report",
    period: "Period",
    as_of: "As of",
    position: "Log position",
    replayed: " (replayed log)",
    live: "",
    generated: "Generated at",
    to: "to",
    sheets: ["Summary", "Regions", "Issues", "Overdue pairings"],
    totals: "Totals",
    item: "Item",
    value: "Value",
    visits: "Visits",
    people: "Model workers reached",
    cash: "Cash (yuan)",
    goods: "Goods value (yuan)",
    goods_count: "Gifts of goods",
    flowers: "Gifts of flowers",
    open_issues: "Open issues",
    overdue_pairings: "Overdue pairings",
    by_city: "By city",
    by_county: "By county",
    city_code: "City code",
    city: "City",
    county_code: "County code",
    county: "County",
    no_city: "Province level",
    total: "Total",
    by_body: "By body",
    body: "Body",
    open: "Open",
    breached: "Past due",
    not_escalated: "Not escalated",
    by_age: "By days since raised",
    age: "Days since raised",
    days: "days",
    pairing: "Pairing",
    last_visit: "Last visit",
    due_on: "Due on",
    days_overdue: "Days overdue",
    none: "(none)",
};

/// Lays `report` out in `lang`.
pub fn layout(report: &Report, lang: Lang) -> Layout {
    let w = match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    };
    let kind = match report.kind {
        PeriodKind::Monthly => w.monthly,
        PeriodKind::Yearly => w.yearly,
    };
    let association = report.association.as_deref().unwrap_or(w.none);
    let shanghai = FixedOffset::east_opt(8 * 3600).map(|tz| {
        report
            .generated_at
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M:%S %:z")
            .to_string()
    });
    let header = vec![
        (w.association.to_owned(), Cell::text(association)),
        (w.report.to_owned(), Cell::text(kind)),
        (
            w.period.to_owned(),
            Cell::text(format!(
                "{} ({} {} {})",
                report.period, report.from, w.to, report.to
            )),
        ),
        (w.as_of.to_owned(), Cell::Date(report.as_of)),
        (
            format!(
                "{}{}",
                w.position,
                if report.replayed { w.replayed } else { w.live }
            ),
            i64::try_from(report.log_position)
                .map_or_else(|_| Cell::text(report.log_position.to_string()), Cell::Int),
        ),
        (
            w.generated.to_owned(),
            Cell::text(shanghai.unwrap_or_else(|| report.generated_at.to_rfc3339())),
        ),
    ];
    let t = &report.totals;
    let summary = Table {
        title: w.totals.to_owned(),
        columns: vec![w.item.to_owned(), w.value.to_owned()],
        rows: vec![
            vec![Cell::text(w.visits), Cell::Int(t.visits)],
            vec![Cell::text(w.people), Cell::Int(t.people_reached)],
            vec![Cell::text(w.cash), Cell::Yuan(t.cash_fen)],
            vec![Cell::text(w.goods), Cell::Yuan(t.goods_fen)],
            vec![Cell::text(w.goods_count), Cell::Int(t.goods_count)],
            vec![Cell::text(w.flowers), Cell::Int(t.flowers_count)],
            vec![Cell::text(w.open_issues), Cell::Int(t.open_issues)],
            vec![
                Cell::text(w.overdue_pairings),
                Cell::Int(t.overdue_pairings),
            ],
        ],
        total: false,
    };
    let figures = |l: &RegionLine| {
        vec![
            Cell::Int(l.visits),
            Cell::Int(l.people_reached),
            Cell::Yuan(l.cash_fen),
            Cell::Yuan(l.goods_fen),
            Cell::Int(l.goods_count),
            Cell::Int(l.flowers_count),
        ]
    };
    let figure_columns = [
        w.visits,
        w.people,
        w.cash,
        w.goods,
        w.goods_count,
        w.flowers,
    ];
    // The total row repeats the report's totals: people reached is the distinct count over
    // the period, not the sum of the rows (a person visited in two places is one person).
    let total_figures = vec![
        Cell::Int(t.visits),
        Cell::Int(t.people_reached),
        Cell::Yuan(t.cash_fen),
        Cell::Yuan(t.goods_fen),
        Cell::Int(t.goods_count),
        Cell::Int(t.flowers_count),
    ];
    let region_name = |l: &RegionLine| {
        if l.code.is_empty() {
            w.no_city.to_owned()
        } else {
            l.name.clone()
        }
    };
    let mut city_rows: Vec<Vec<Cell>> = report
        .by_city
        .iter()
        .map(|l| {
            let mut row = vec![Cell::text(l.code.clone()), Cell::text(region_name(l))];
            row.extend(figures(l));
            row
        })
        .collect();
    city_rows.push(
        [
            vec![Cell::text(w.total), Cell::Empty],
            total_figures.clone(),
        ]
        .concat(),
    );
    let mut county_rows: Vec<Vec<Cell>> = report
        .by_county
        .iter()
        .map(|l| {
            let mut row = vec![
                Cell::text(l.code.clone()),
                Cell::text(region_name(l)),
                Cell::opt(l.city_code.as_deref()),
                Cell::opt(l.city_name.as_deref()),
            ];
            row.extend(figures(l));
            row
        })
        .collect();
    county_rows.push(
        [
            vec![Cell::text(w.total), Cell::Empty, Cell::Empty, Cell::Empty],
            total_figures,
        ]
        .concat(),
    );
    let columns = |first: &[&str]| -> Vec<String> {
        first
            .iter()
            .chain(figure_columns.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    let regions = vec![
        Table {
            title: w.by_city.to_owned(),
            columns: columns(&[w.city_code, w.city]),
            rows: city_rows,
            total: true,
        },
        Table {
            title: w.by_county.to_owned(),
            columns: columns(&[w.county_code, w.county, w.city_code, w.city]),
            rows: county_rows,
            total: true,
        },
    ];
    let i = &report.issues;
    let mut body_rows: Vec<Vec<Cell>> = i
        .by_body
        .iter()
        .map(|b| {
            vec![
                Cell::opt(b.name.as_deref()),
                Cell::Int(b.open),
                Cell::Int(b.breached),
            ]
        })
        .collect();
    body_rows.push(vec![
        Cell::text(w.not_escalated),
        Cell::Int(i.not_escalated),
        Cell::Empty,
    ]);
    body_rows.push(vec![
        Cell::text(w.total),
        Cell::Int(t.open_issues),
        Cell::Empty,
    ]);
    let mut age_rows: Vec<Vec<Cell>> = i
        .by_age
        .iter()
        .map(|a| {
            vec![
                Cell::text(format!("{} {}", a.bucket, w.days)),
                Cell::Int(a.open),
            ]
        })
        .collect();
    age_rows.push(vec![Cell::text(w.total), Cell::Int(t.open_issues)]);
    let issues = vec![
        Table {
            title: w.by_body.to_owned(),
            columns: vec![w.body.to_owned(), w.open.to_owned(), w.breached.to_owned()],
            rows: body_rows,
            total: true,
        },
        Table {
            title: w.by_age.to_owned(),
            columns: vec![w.age.to_owned(), w.open.to_owned()],
            rows: age_rows,
            total: true,
        },
    ];
    let overdue = vec![Table {
        title: w.sheets[3].to_owned(),
        columns: [
            w.pairing,
            w.city_code,
            w.city,
            w.county_code,
            w.county,
            w.last_visit,
            w.due_on,
            w.days_overdue,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        rows: report
            .overdue
            .iter()
            .map(|o| {
                vec![
                    Cell::text(o.pairing_id.to_string()),
                    Cell::opt(o.city_code.as_deref()),
                    Cell::opt(o.city_name.as_deref()),
                    Cell::text(o.county_code.clone()),
                    Cell::text(o.county_name.clone()),
                    o.last_visit_on.map_or(Cell::Empty, Cell::Date),
                    Cell::Date(o.due_on),
                    Cell::Int(o.days_overdue),
                ]
            })
            .collect(),
        total: false,
    }];
    let sheets = [vec![summary], regions, issues, overdue]
        .into_iter()
        .zip(w.sheets)
        .map(|(tables, name)| Sheet {
            name: name.to_owned(),
            tables,
        })
        .collect();
    Layout {
        title: match lang {
            Lang::Zh => format!("{association} {} {kind}", report.period),
            Lang::En => format!("{association} · {kind} {}", report.period),
        },
        header,
        sheets,
    }
}

/// What kind of value a [`PrintCell`] shows (numbers are right-aligned when printed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Text.
    Text,
    /// A count.
    Int,
    /// Yuan with two decimals.
    Yuan,
    /// A date.
    Date,
    /// Nothing.
    Empty,
}

/// A cell as the page prints it: its kind and the exact text the CSV holds (before the CSV's
/// formula guard, which a web page does not need: it shows text as text).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PrintCell {
    /// What the value is.
    pub kind: CellKind,
    /// The value as text (yuan with two decimals, dates as `YYYY-MM-DD`).
    pub text: String,
}

impl From<&Cell> for PrintCell {
    fn from(c: &Cell) -> PrintCell {
        let (kind, text) = match c {
            Cell::Text(t) => (CellKind::Text, t.clone()),
            Cell::Int(n) => (CellKind::Int, n.to_string()),
            Cell::Yuan(f) => (CellKind::Yuan, caretrail_projections::query::yuan(*f)),
            Cell::Date(d) => (CellKind::Date, d.to_string()),
            Cell::Empty => (CellKind::Empty, String::new()),
        };
        PrintCell { kind, text }
    }
}

/// One row of the header block.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PrintHeader {
    /// The label.
    pub label: String,
    /// The value.
    pub value: PrintCell,
}

/// A table as the page prints it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PrintTable {
    /// The sheet it is on.
    pub sheet: String,
    /// Its title.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<PrintCell>>,
    /// The last row is a total.
    pub total: bool,
}

/// The layout the workbook and the CSV are written from, for the page's printable version: the
/// same words, headers and cells in the report's language.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PrintLayout {
    /// The report's title.
    pub title: String,
    /// The header block.
    pub header: Vec<PrintHeader>,
    /// Every table, sheet by sheet.
    pub tables: Vec<PrintTable>,
}

impl From<&Layout> for PrintLayout {
    fn from(l: &Layout) -> PrintLayout {
        PrintLayout {
            title: l.title.clone(),
            header: l
                .header
                .iter()
                .map(|(label, value)| PrintHeader {
                    label: label.clone(),
                    value: value.into(),
                })
                .collect(),
            tables: l
                .sheets
                .iter()
                .flat_map(|s| {
                    s.tables.iter().map(|t| PrintTable {
                        sheet: s.name.clone(),
                        title: t.title.clone(),
                        columns: t.columns.clone(),
                        rows: t
                            .rows
                            .iter()
                            .map(|r| r.iter().map(PrintCell::from).collect())
                            .collect(),
                        total: t.total,
                    })
                })
                .collect(),
        }
    }
}
