//! The three rosters an import reads (model workers, directors, pairings): their columns as
//! the templates show them, how a file's header row is matched to those columns, and how one
//! row becomes the body of the command it stands for.
//!
//! A row is turned into exactly the JSON a client would send to `/api/v1/commands/{name}`, so
//! the command parser, its text rules and the domain's decision judge an imported row exactly
//! as they judge a command sent by hand; this module only adds what a spreadsheet needs on top:
//! Chinese labels for enums (`省劳动模范`), dates typed as dates, the resident ID number's
//! check digit, text that a spreadsheet would run as a formula, and ids derived from the file
//! when the roster leaves them blank. Problems name the column, never the value.

use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::read::{Cell, CellProblem, Grid, MAX_CELL_CHARS};

/// What one column holds.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct Column {
    /// The command field it fills, and the column's English header.
    pub key: &'static str,
    /// The column's Chinese header (what the template's first row says).
    pub zh: &'static str,
    /// Whether every row must fill it.
    pub required: bool,
    /// Whether it is personal data (sealed under the person's key when stored).
    pub personal: bool,
    /// What it holds and in which format, in English.
    pub about: &'static str,
    /// The same in Chinese.
    pub about_zh: &'static str,
}

const fn col(
    key: &'static str,
    zh: &'static str,
    required: bool,
    personal: bool,
    about: &'static str,
    about_zh: &'static str,
) -> Column {
    Column {
        key,
        zh,
        required,
        personal,
        about,
        about_zh,
    }
}

const MODEL_WORKERS: &[Column] = &[
    col(
        "model_worker_id",
        "劳模编号",
        false,
        false,
        "The model worker's id (UUID). Leave blank for a new file: the import derives one from the file and the row.",
        "劳模编号（UUID）。新建档案留空，由导入根据文件和行号生成。",
    ),
    col("name", "姓名", true, true, "Full name.", "姓名。"),
    col(
        "honour",
        "荣誉称号",
        true,
        false,
        "One of 全国劳动模范, 全国先进工作者, 省劳动模范, 省先进工作者, 其他 (or national_model_worker, national_advanced_worker, provincial_model_worker, provincial_advanced_worker, other).",
        "填写：全国劳动模范、全国先进工作者、省劳动模范、省先进工作者、其他 之一。",
    ),
    col(
        "honour_year",
        "授予年份",
        false,
        false,
        "Year the honour was conferred, four digits.",
        "授予年份，四位数字。",
    ),
    col(
        "occupation",
        "职业",
        false,
        false,
        "Occupation or trade, e.g. 种粮大户.",
        "职业或行业，如“种粮大户”。",
    ),
    col(
        "region_code",
        "地区代码",
        true,
        false,
        "Six-digit GB/T 2260 code of a Zhejiang division, e.g. 330106 (typed as text).",
        "浙江省行政区划代码，六位数字，如 330106（请以文本格式填写）。",
    ),
    col(
        "gender",
        "性别",
        false,
        true,
        "Gender, e.g. 男 or 女.",
        "性别，如 男、女。",
    ),
    col(
        "birth_year",
        "出生年份",
        false,
        true,
        "Birth year, four digits.",
        "出生年份，四位数字。",
    ),
    col(
        "phone",
        "电话",
        false,
        true,
        "Phone number: digits, spaces, hyphens, an optional leading +.",
        "电话号码：数字、空格、连字符，可用 + 开头。",
    ),
    col("wechat", "微信号", false, true, "WeChat id.", "微信号。"),
    col(
        "address",
        "住址",
        false,
        true,
        "Home address.",
        "家庭住址。",
    ),
    col(
        "id_number",
        "身份证号",
        false,
        true,
        "Resident ID number, 18 characters (the last may be X), typed as text; checked for its check digit and for duplicates.",
        "居民身份证号码，18 位（末位可为 X），请以文本格式填写；将校验末位并检查重复。",
    ),
];

const DIRECTORS: &[Column] = &[
    col(
        "director_id",
        "理事编号",
        false,
        false,
        "The director's id (UUID). Leave blank for a new director: the import derives one from the file and the row.",
        "理事编号（UUID）。新任理事留空，由导入根据文件和行号生成。",
    ),
    col("name", "姓名", true, true, "Full name.", "姓名。"),
    col(
        "body_id",
        "所属组织编号",
        true,
        false,
        "The association's id (UUID) the director serves in.",
        "所在协会（组织）的编号（UUID）。",
    ),
    col(
        "role",
        "职务",
        true,
        false,
        "One of 会长, 副会长, 常务理事, 理事, 工作人员 (or president, vice_president, standing_director, director, staff).",
        "填写：会长、副会长、常务理事、理事、工作人员 之一。",
    ),
    col(
        "term_from",
        "任期开始",
        true,
        false,
        "First day of the term, YYYY-MM-DD or a date cell.",
        "任期开始日期，YYYY-MM-DD 或日期格式单元格。",
    ),
    col(
        "term_until",
        "任期结束",
        false,
        false,
        "Planned last day of the term, YYYY-MM-DD or a date cell.",
        "计划任期结束日期，YYYY-MM-DD 或日期格式单元格。",
    ),
    col(
        "model_worker_id",
        "本人劳模编号",
        false,
        false,
        "The director's own model-worker id (UUID), when registered.",
        "理事本人的劳模编号（UUID），如已登记。",
    ),
    col(
        "phone",
        "电话",
        false,
        true,
        "Phone number: digits, spaces, hyphens, an optional leading +.",
        "电话号码：数字、空格、连字符，可用 + 开头。",
    ),
    col("wechat", "微信号", false, true, "WeChat id.", "微信号。"),
];

const PAIRINGS: &[Column] = &[
    col(
        "pairing_id",
        "结对编号",
        false,
        false,
        "The pairing's id (UUID). Leave blank: the import derives one from the file and the row.",
        "结对编号（UUID）。一般留空，由导入根据文件和行号生成。",
    ),
    col(
        "director_id",
        "理事编号",
        true,
        false,
        "The director's id (UUID).",
        "理事编号（UUID）。",
    ),
    col(
        "model_worker_id",
        "劳模编号",
        true,
        false,
        "The model worker's id (UUID).",
        "劳模编号（UUID）。",
    ),
    col(
        "effective_from",
        "生效日期",
        true,
        false,
        "First day the pairing is in force, YYYY-MM-DD or a date cell.",
        "结对生效日期，YYYY-MM-DD 或日期格式单元格。",
    ),
];

/// Which roster a file is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Model workers: one `RegisterModelWorker` per row.
    ModelWorkers,
    /// Directors: one `AppointDirector` per row.
    Directors,
    /// Pairings: one `AssignPair` per row.
    Pairings,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::ModelWorkers, Kind::Directors, Kind::Pairings];

    /// The kind named in a URL (`model-workers`).
    pub fn from_slug(slug: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// Its name in URLs.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::ModelWorkers => "model-workers",
            Kind::Directors => "directors",
            Kind::Pairings => "pairings",
        }
    }

    /// Its name in Chinese.
    pub fn name_zh(self) -> &'static str {
        match self {
            Kind::ModelWorkers => "劳模名册",
            Kind::Directors => "理事名册",
            Kind::Pairings => "结对名册",
        }
    }

    /// The command each row runs.
    pub fn command(self) -> &'static str {
        match self {
            Kind::ModelWorkers => "RegisterModelWorker",
            Kind::Directors => "AppointDirector",
            Kind::Pairings => "AssignPair",
        }
    }

    /// The template's columns, in order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Kind::ModelWorkers => MODEL_WORKERS,
            Kind::Directors => DIRECTORS,
            Kind::Pairings => PAIRINGS,
        }
    }

    /// The column that holds the id of the record a row creates.
    pub fn id_column(self) -> &'static str {
        match self {
            Kind::ModelWorkers => "model_worker_id",
            Kind::Directors => "director_id",
            Kind::Pairings => "pairing_id",
        }
    }
}

/// What is wrong with one row (or one of its cells). Never carries the cell's content.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// The column at fault (its `key`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<&'static str>,
    /// A stable code: the domain's rejection code, `validation_failed`, or an `import_*` code.
    pub code: String,
    /// What is wrong, in English.
    pub message: String,
    /// What is wrong, in Chinese.
    pub message_zh: String,
}

impl Problem {
    /// A problem of `column`.
    pub fn at(column: &'static str, code: &str, message: String, message_zh: String) -> Self {
        Self {
            column: Some(column),
            code: code.to_owned(),
            message,
            message_zh,
        }
    }
}

/// Why a file's header row does not fit its roster.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HeaderError {
    /// In English; names template columns and positions, never what the file's cells say.
    pub message: String,
    /// In Chinese.
    pub message_zh: String,
}

/// Where each template column is in the file (`None` for an optional column it leaves out),
/// and how many rows the header took.
#[derive(Debug)]
pub struct Header {
    positions: Vec<Option<usize>>,
    /// Rows of the grid that are header rows (1 or 2), from the first.
    pub rows: usize,
    width: usize,
}

fn header_error(message: String, message_zh: String) -> HeaderError {
    HeaderError {
        message,
        message_zh,
    }
}

/// Matches the grid's first row to `kind`'s columns: each cell must be a column's Chinese or
/// English header, each at most once, with every required column present. A second row of
/// English headers (the template's) is skipped.
pub fn header(kind: Kind, grid: &Grid) -> Result<Header, HeaderError> {
    let columns = kind.columns();
    let Some((_, first)) = grid.rows.first() else {
        return Err(header_error(
            "the file has no header row (the template's first row names the columns)".into(),
            "文件没有表头行（模板第一行为列名）".into(),
        ));
    };
    let mut positions = vec![None; columns.len()];
    for (at, cell) in first.iter().enumerate() {
        let text = match cell {
            Ok(t) => t.trim(),
            Err(_) => "",
        };
        if text.is_empty() {
            continue;
        }
        let Some(i) = columns.iter().position(|c| c.zh == text || c.key == text) else {
            return Err(header_error(
                format!(
                    "column {} of the header is not a column of the {} template (is this the right kind of roster?)",
                    at + 1,
                    kind.slug()
                ),
                format!(
                    "表头第 {} 列不是{}模板中的列（请确认名册类型）",
                    at + 1,
                    kind.name_zh()
                ),
            ));
        };
        if positions[i].is_some() {
            return Err(header_error(
                format!("the header names the column {} twice", columns[i].key),
                format!("表头中“{}”列出现了两次", columns[i].zh),
            ));
        }
        positions[i] = Some(at);
    }
    let missing: Vec<&Column> = columns
        .iter()
        .zip(&positions)
        .filter(|(c, p)| c.required && p.is_none())
        .map(|(c, _)| c)
        .collect();
    if !missing.is_empty() {
        return Err(header_error(
            format!(
                "the header lacks the required columns {}",
                missing.iter().map(|c| c.key).collect::<Vec<_>>().join(", ")
            ),
            format!(
                "表头缺少必填列：{}",
                missing.iter().map(|c| c.zh).collect::<Vec<_>>().join("、")
            ),
        ));
    }
    let width = first.len();
    // The template's second row repeats the headers in English.
    let english = grid.rows.get(1).is_some_and(|(_, cells)| {
        positions.iter().enumerate().all(|(i, p)| match p {
            Some(at) => cells
                .get(*at)
                .is_some_and(|c| c.as_deref().is_ok_and(|t| t.trim() == columns[i].key)),
            None => true,
        })
    });
    Ok(Header {
        positions,
        rows: if english { 2 } else { 1 },
        width,
    })
}

/// A row read into a command body.
#[derive(Debug)]
pub struct Parsed {
    /// The command's JSON body.
    pub body: Value,
    /// The id of the record the row creates (`model_worker_id`, `director_id`, `pairing_id`).
    pub subject: Uuid,
    /// The resident ID number, normalised (model workers only).
    pub id_number: Option<zeroize::Zeroizing<String>>,
    /// The director and model worker a pairing row names.
    pub pair: Option<(Uuid, Uuid)>,
}

fn cell_problem(column: &Column, p: CellProblem) -> Problem {
    let (code, en, zh) = match p {
        CellProblem::Formula => (
            "import_formula_cell",
            "holds a formula; paste it as a value",
            "含有公式，请以数值形式粘贴",
        ),
        CellProblem::ErrorValue => (
            "import_error_cell",
            "holds a spreadsheet error value",
            "含有表格错误值（如 #N/A）",
        ),
        CellProblem::InexactNumber => (
            "import_number_cell",
            "is a number the spreadsheet may have rounded; type it as text",
            "为可能已被表格四舍五入的数字，请以文本格式填写",
        ),
        CellProblem::TooLong => (
            "import_cell_too_long",
            "is longer than the cell limit",
            "超过单元格长度上限",
        ),
    };
    let (en, zh) = if p == CellProblem::TooLong {
        (
            format!("{} {en} ({MAX_CELL_CHARS} characters)", column.key),
            format!("“{}”{zh}（{MAX_CELL_CHARS} 字）", column.zh),
        )
    } else {
        (
            format!("{} {en}", column.key),
            format!("“{}”{zh}", column.zh),
        )
    };
    Problem::at(column.key, code, en, zh)
}

/// Whether text would be run by a spreadsheet as a formula if it were written into one
/// (CSV/formula injection). Such text has no place in a roster: it is refused rather than
/// stored and later exported into someone's Excel. A phone number may begin with `+` and a
/// digit.
fn formula_like(column: &Column, text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some('=' | '@' | '-' | '\t' | '\r' | '\n') => true,
        Some('+') => !(column.key == "phone" && chars.next().is_some_and(|c| c.is_ascii_digit())),
        _ => false,
    }
}

const HONOURS: &[(&str, &str)] = &[
    ("全国劳动模范", "national_model_worker"),
    ("全国先进工作者", "national_advanced_worker"),
    ("省劳动模范", "provincial_model_worker"),
    ("省先进工作者", "provincial_advanced_worker"),
    ("其他", "other"),
];

const ROLES: &[(&str, &str)] = &[
    ("会长", "president"),
    ("副会长", "vice_president"),
    ("常务理事", "standing_director"),
    ("理事", "director"),
    ("工作人员", "staff"),
];

fn label(options: &[(&str, &'static str)], text: &str) -> Option<&'static str> {
    options
        .iter()
        .find(|(zh, code)| *zh == text || *code == text)
        .map(|(_, code)| *code)
}

/// The check digit of a resident ID number (GB 11643-1999): 17 digits weighted, modulo 11.
pub fn id_number_valid(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK.get((sum % 11) as usize) == Some(&b[17])
}

fn year(text: &str) -> Option<u16> {
    (text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
        .filter(|y| (1900..=2100).contains(y))
}

fn date(text: &str) -> Option<String> {
    // `2025/1/5` is how a Chinese Excel shows a date typed as text.
    let normal = text.replace('/', "-");
    chrono::NaiveDate::parse_from_str(&normal, "%Y-%m-%d")
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// Reads one data row. `derive` makes the id of a record the row leaves blank (from the file's
/// hash and the row number, so the same file always makes the same records).
pub fn row(
    kind: Kind,
    header: &Header,
    cells: &[Cell],
    derive: impl Fn(&str) -> Uuid,
) -> Result<Parsed, Vec<Problem>> {
    let columns = kind.columns();
    let mut problems = Vec::new();
    if cells
        .iter()
        .enumerate()
        .any(|(i, c)| i >= header.width && c.as_deref().is_ok_and(|t| !t.trim().is_empty()))
    {
        problems.push(Problem {
            column: None,
            code: "import_cell_outside_columns".into(),
            message: "the row has a value to the right of the last header column".into(),
            message_zh: "该行在表头最后一列右侧还有内容".into(),
        });
    }
    let mut body = Map::new();
    let mut id_number = None;
    let mut texts: Vec<Option<String>> = vec![None; columns.len()];
    for (i, column) in columns.iter().enumerate() {
        let Some(at) = header.positions[i] else {
            continue;
        };
        match cells.get(at) {
            None => {}
            Some(Err(p)) => problems.push(cell_problem(column, *p)),
            Some(Ok(text)) => {
                // Spreadsheet cells carry stray spaces around typed values; inner text is kept.
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                if formula_like(column, text) {
                    problems.push(Problem::at(
                        column.key,
                        "import_formula_text",
                        format!(
                            "{} begins like a spreadsheet formula (=, +, -, @)",
                            column.key
                        ),
                        format!("“{}”以公式字符（= + - @）开头", column.zh),
                    ));
                    continue;
                }
                texts[i] = Some(text.to_owned());
            }
        }
    }
    for (i, column) in columns.iter().enumerate() {
        let Some(text) = texts[i].take() else {
            if column.required && !problems.iter().any(|p| p.column == Some(column.key)) {
                problems.push(Problem::at(
                    column.key,
                    "import_required_empty",
                    format!("{} is required", column.key),
                    format!("“{}”为必填项", column.zh),
                ));
            }
            continue;
        };
        let bad = |what: &str, what_zh: &str| {
            Problem::at(
                column.key,
                "import_invalid_value",
                format!("{} {what}", column.key),
                format!("“{}”{what_zh}", column.zh),
            )
        };
        let value = match column.key {
            "model_worker_id" | "director_id" | "pairing_id" | "body_id" => {
                match Uuid::try_parse(&text) {
                    Ok(id) => json!(id),
                    Err(_) => {
                        problems.push(bad("is not an id (UUID)", "不是有效的编号（UUID）"));
                        continue;
                    }
                }
            }
            "honour" => match label(HONOURS, &text) {
                Some(code) => json!(code),
                None => {
                    problems.push(bad(
                        "is not one of the honours listed in the notes",
                        "不是说明中列出的荣誉称号",
                    ));
                    continue;
                }
            },
            "role" => match label(ROLES, &text) {
                Some(code) => json!(code),
                None => {
                    problems.push(bad(
                        "is not one of the roles listed in the notes",
                        "不是说明中列出的职务",
                    ));
                    continue;
                }
            },
            "honour_year" => match year(&text) {
                Some(y) => json!(y),
                None => {
                    problems.push(bad("is not a year (four digits)", "不是四位年份"));
                    continue;
                }
            },
            "birth_year" => match year(&text) {
                // Personal: sealed as text.
                Some(y) => json!(y.to_string()),
                None => {
                    problems.push(bad("is not a year (four digits)", "不是四位年份"));
                    continue;
                }
            },
            "region_code" => match caretrail_domain::RegionCode::parse(&text) {
                Ok(code) => json!(code.as_str()),
                Err(e) => {
                    problems.push(Problem::at(
                        column.key,
                        e.code(),
                        format!("{}: {e}", column.key),
                        match e {
                            caretrail_domain::region::RegionError::Malformed => {
                                "“地区代码”须为六位数字（GB/T 2260）".to_owned()
                            }
                            caretrail_domain::region::RegionError::Unknown => {
                                "“地区代码”不是浙江省的行政区划代码".to_owned()
                            }
                        },
                    ));
                    continue;
                }
            },
            "term_from" | "term_until" | "effective_from" => match date(&text) {
                Some(d) => json!(d),
                None => {
                    problems.push(bad("is not a date (YYYY-MM-DD)", "不是日期（YYYY-MM-DD）"));
                    continue;
                }
            },
            "phone" => {
                let digits = text.bytes().filter(u8::is_ascii_digit).count();
                let shape = text.chars().enumerate().all(|(i, c)| {
                    c.is_ascii_digit() || c == ' ' || c == '-' || (i == 0 && c == '+')
                });
                if !shape || !(5..=20).contains(&digits) {
                    problems.push(bad(
                        "is not a phone number (digits, spaces, hyphens, a leading +)",
                        "不是电话号码（数字、空格、连字符，可用 + 开头）",
                    ));
                    continue;
                }
                json!(text)
            }
            "id_number" => {
                let normal = zeroize::Zeroizing::new(text.to_ascii_uppercase());
                if !id_number_valid(&normal) {
                    problems.push(bad(
                        "is not a resident ID number (18 characters with a valid check digit)",
                        "不是有效的居民身份证号码（18 位，校验位须正确）",
                    ));
                    continue;
                }
                let value = json!(normal.as_str());
                id_number = Some(normal);
                value
            }
            _ => json!(text),
        };
        body.insert(column.key.to_owned(), value);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let id_key = kind.id_column();
    let subject = match body.get(id_key).and_then(Value::as_str) {
        Some(id) => Uuid::try_parse(id).unwrap_or_else(|_| derive(id_key)),
        None => {
            let id = derive(id_key);
            body.insert(id_key.to_owned(), json!(id));
            id
        }
    };
    if kind == Kind::Directors {
        // The command's term is one field; the roster has two columns.
        let from = body.remove("term_from").unwrap_or(Value::Null);
        let mut term = Map::new();
        term.insert("from".into(), from);
        if let Some(until) = body.remove("term_until") {
            term.insert("until".into(), until);
        }
        body.insert("term".into(), Value::Object(term));
    }
    let pair = if kind == Kind::Pairings {
        let get = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .and_then(|s| Uuid::try_parse(s).ok())
        };
        get("director_id").zip(get("model_worker_id"))
    } else {
        None
    };
    Ok(Parsed {
        body: Value::Object(body),
        subject,
        id_number,
        pair,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_check_digits() {
        // GB 11643-1999's example number.
        assert!(id_number_valid("11010519491231002X"));
        assert!(!id_number_valid("110105194912310021"));
        assert!(!id_number_valid("11010519491231002"));
        assert!(!id_number_valid("1101051949123100２X"));
    }

    #[test]
    fn formula_like_text_is_caught_but_an_international_phone_is_not() {
        let name = &MODEL_WORKERS[1];
        let phone = MODEL_WORKERS.iter().find(|c| c.key == "phone").unwrap();
        for f in ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx"] {
            assert!(formula_like(name, f), "{f:?}");
        }
        assert!(!formula_like(phone, "+86 138 0000 0000"));
        assert!(formula_like(phone, "+cmd"));
        assert!(!formula_like(name, "张三"));
    }

    fn grid(rows: &[&[&str]]) -> Grid {
        Grid {
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let n = u32::try_from(i + 1).unwrap();
                    (n, r.iter().map(|c| Ok((*c).to_owned())).collect())
                })
                .collect(),
        }
    }

    #[test]
    fn a_header_in_either_language_in_any_order_fits_and_the_english_row_is_skipped() {
        let g = grid(&[
            &["地区代码", "name", "荣誉称号"],
            &["region_code", "name", "honour"],
            &["330106", "张三", "其他"],
        ]);
        let h = header(Kind::ModelWorkers, &g).unwrap();
        assert_eq!(h.rows, 2);
        let derive = |_: &str| Uuid::from_u128(7);
        let parsed = row(Kind::ModelWorkers, &h, &g.rows[2].1, derive).unwrap();
        assert_eq!(parsed.subject, Uuid::from_u128(7));
        assert_eq!(parsed.body["region_code"], json!("330106"));
        assert_eq!(parsed.body["honour"], json!("other"));
        assert_eq!(parsed.body["model_worker_id"], json!(Uuid::from_u128(7)));
    }

    #[test]
    fn an_unknown_or_repeated_column_or_a_missing_required_one_is_a_header_error() {
        for rows in [
            &[&["姓名", "荣誉称号", "地区代码", "备注"][..]][..],
            &[&["姓名", "荣誉称号", "地区代码", "name"][..]][..],
            &[&["姓名", "荣誉称号"][..]][..],
        ] {
            let e = header(Kind::ModelWorkers, &grid(rows)).unwrap_err();
            assert!(!e.message.contains("备注"), "the cell is not repeated: {e}");
            assert!(!e.message_zh.is_empty());
        }
        assert!(header(Kind::ModelWorkers, &Grid::default()).is_err());
    }

    #[test]
    fn a_value_right_of_the_header_and_cell_problems_are_row_problems() {
        let g = grid(&[
            &["姓名", "荣誉称号", "地区代码"],
            &["张三", "其他", "330106", "多余"],
        ]);
        let h = header(Kind::ModelWorkers, &g).unwrap();
        let problems = row(Kind::ModelWorkers, &h, &g.rows[1].1, |_| Uuid::nil()).unwrap_err();
        assert_eq!(problems[0].code, "import_cell_outside_columns");
        let cells = vec![
            Err(CellProblem::Formula),
            Ok("其他".into()),
            Ok("330106".into()),
        ];
        let problems = row(Kind::ModelWorkers, &h, &cells, |_| Uuid::nil()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].code, "import_formula_cell");
        assert_eq!(problems[0].column, Some("name"));
    }

    #[test]
    fn a_directors_term_columns_become_the_commands_term() {
        let g = grid(&[
            &["姓名", "所属组织编号", "职务", "任期开始", "任期结束"],
            &[
                "李四",
                "00000000-0000-0000-0000-000000000001",
                "副会长",
                "2024/3/1",
                "2028-2-29",
            ],
        ]);
        let h = header(Kind::Directors, &g).unwrap();
        let parsed = row(Kind::Directors, &h, &g.rows[1].1, |_| Uuid::from_u128(9)).unwrap();
        assert_eq!(
            parsed.body["term"],
            json!({ "from": "2024-03-01", "until": "2028-02-29" })
        );
        assert_eq!(parsed.body["role"], json!("vice_president"));
        assert!(parsed.body.get("term_from").is_none());
    }

    #[test]
    fn every_template_has_distinct_headers_and_an_id_column() {
        for kind in Kind::ALL {
            let cols = kind.columns();
            for (i, a) in cols.iter().enumerate() {
                for b in &cols[i + 1..] {
                    assert_ne!(a.zh, b.zh);
                    assert_ne!(a.key, b.key);
                }
            }
            assert!(cols.iter().any(|c| c.key == kind.id_column()));
            assert_eq!(Kind::from_slug(kind.slug()), Some(kind));
        }
    }
}
