//! An uploaded roster file turned into a grid of text cells, with every limit checked before
//! the work it bounds.
//!
//! XLSX is recognised by the zip signature at its start (a client's `Content-Type` is a hint
//! that is checked, not trusted: a zip that says it is CSV is refused); anything else is read
//! as CSV in UTF-8, with or without a byte-order mark. A workbook is a zip of XML parts, so
//! a small upload can inflate to gigabytes (a zip bomb) or name a cell at row 1,048,576
//! (a dense-range bomb). Both are stopped here: every part of the zip is inflated once through
//! a counting reader that stops at [`MAX_INFLATED_BYTES`] in total and at each part's declared
//! size, before calamine opens anything, and the sheet is read cell by cell with
//! `worksheet_cells_reader` (sparse) rather than as a dense `Range`, refusing a cell past the
//! row or column limit as soon as it is seen.
//!
//! Cells come out as text exactly as a person typed them. Numbers Excel stored as numbers
//! become their integer text when they are whole and below 2^53 (a resident ID number stored
//! as a number has already lost digits and is refused); dates become `YYYY-MM-DD`; a cell
//! with a formula is refused (its value is whatever the workbook last computed, and a roster
//! is data, not a calculation). Nothing here logs or repeats a cell's content.

use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};

/// Largest upload accepted (8 MiB). A 10,000-row roster of a dozen columns is about 1.5 MB as
/// CSV and under 1 MB as XLSX; eight times that leaves room for long addresses and a styled
/// workbook while bounding what one request holds in memory (the whole body is kept to hash
/// it, and parsed from memory).
pub const MAX_UPLOAD_BYTES: usize = 8 * 1024 * 1024;

/// Most data rows in one file. The association's largest roster (the province's model
/// workers) is a few thousand; an import of more is a mistake or an attack, and a bound keeps
/// a preview within its time and memory.
pub const MAX_ROWS: usize = 10_000;

/// Most characters in one cell. The longest field, a home address, is well under 200
/// characters; 500 leaves room for a note without letting one cell hold a book.
pub const MAX_CELL_CHARS: usize = 500;

/// Most columns a sheet may use (the widest template has 12).
pub const MAX_COLUMNS: u32 = 64;

/// Most bytes all parts of a workbook may inflate to (64 MiB): a 10,000-row sheet of a dozen
/// text columns is about 5 MB of XML plus its shared strings.
pub const MAX_INFLATED_BYTES: u64 = 64 * 1024 * 1024;

/// Most parts (files) in a workbook's zip. A plain workbook has about ten.
pub const MAX_ZIP_ENTRIES: usize = 200;

/// The sheet names a roster is read from (the template's, in either language).
pub const SHEET_NAMES: [&str; 2] = ["名册", "Roster"];

/// Why a file could not be read at all (as opposed to a row that is wrong).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body is larger than [`MAX_UPLOAD_BYTES`].
    #[error("the file is larger than {MAX_UPLOAD_BYTES} bytes")]
    TooLarge,
    /// The body is empty.
    #[error("the file is empty")]
    Empty,
    /// A zip that is not a readable workbook (truncated, corrupt, encrypted, not XLSX).
    #[error("the file is not a readable XLSX workbook ({0})")]
    BadWorkbook(&'static str),
    /// The workbook inflates past [`MAX_INFLATED_BYTES`] or has too many parts: a zip bomb or
    /// something that is not a roster.
    #[error(
        "the workbook expands to more than {MAX_INFLATED_BYTES} bytes or {MAX_ZIP_ENTRIES} parts"
    )]
    Bomb,
    /// The workbook has no sheet of the template's name.
    #[error("the workbook has no sheet named 名册 or Roster")]
    NoRosterSheet,
    /// Not UTF-8 text, or CSV quoting that does not close.
    #[error("the file is neither an XLSX workbook nor CSV in UTF-8 ({0})")]
    BadCsv(String),
    /// More data rows than [`MAX_ROWS`].
    #[error("the file has more than {MAX_ROWS} data rows")]
    TooManyRows,
    /// A cell past [`MAX_COLUMNS`].
    #[error("the file uses more than {MAX_COLUMNS} columns")]
    TooManyColumns,
    /// The `Content-Type` says one format and the bytes are the other.
    #[error("the Content-Type says {0} but the file is not")]
    TypeMismatch(&'static str),
}

impl ReadError {
    /// The stable code of the problem answer.
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::TooLarge => "import_too_large",
            ReadError::Empty => "import_empty",
            ReadError::BadWorkbook(_) => "import_bad_workbook",
            ReadError::Bomb => "import_workbook_too_large",
            ReadError::NoRosterSheet => "import_sheet_missing",
            ReadError::BadCsv(_) => "import_bad_csv",
            ReadError::TooManyRows => "import_too_many_rows",
            ReadError::TooManyColumns => "import_too_many_columns",
            ReadError::TypeMismatch(_) => "import_type_mismatch",
        }
    }

    /// The same explanation in Chinese.
    pub fn message_zh(&self) -> String {
        match self {
            ReadError::TooLarge => format!("文件超过 {MAX_UPLOAD_BYTES} 字节上限"),
            ReadError::Empty => "文件为空".to_owned(),
            ReadError::BadWorkbook(_) => {
                "文件不是可读取的 XLSX 工作簿（可能已损坏或不完整）".to_owned()
            }
            ReadError::Bomb => "工作簿解压后过大，不像是名册文件".to_owned(),
            ReadError::NoRosterSheet => {
                "工作簿中没有名为“名册”的工作表，请使用下载的模板".to_owned()
            }
            ReadError::BadCsv(_) => "文件既不是 XLSX 工作簿，也不是 UTF-8 编码的 CSV".to_owned(),
            ReadError::TooManyRows => format!("数据行超过 {MAX_ROWS} 行上限，请分批导入"),
            ReadError::TooManyColumns => format!("使用的列超过 {MAX_COLUMNS} 列"),
            ReadError::TypeMismatch(_) => "Content-Type 与文件内容不符".to_owned(),
        }
    }
}

/// Why one cell cannot be used (reported on its row; the cell's content is not repeated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellProblem {
    /// A formula instead of a value.
    Formula,
    /// An error value (`#N/A`, `#REF!`).
    ErrorValue,
    /// A number that cannot be written back exactly as the digits typed (a fraction, or more
    /// than 15 significant digits: an ID number typed into a number cell).
    InexactNumber,
    /// Longer than [`MAX_CELL_CHARS`].
    TooLong,
}

/// One cell: its text, or why it has none.
pub type Cell = Result<String, CellProblem>;

/// A file as rows of cells, each row with its number as the spreadsheet shows it (1-based).
#[derive(Debug, Default)]
pub struct Grid {
    /// `(row number, cells)`, in order; rows with no cell at all are left out.
    pub rows: Vec<(u32, Vec<Cell>)>,
}

/// Which format a file was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An Office Open XML workbook.
    Xlsx,
    /// Comma-separated text in UTF-8.
    Csv,
}

/// What the client's `Content-Type` says the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// `application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`.
    Xlsx,
    /// `text/csv`.
    Csv,
    /// Anything else, or nothing: the bytes decide.
    Unknown,
}

const ZIP_SIGNATURE: &[u8] = b"PK\x03\x04";

/// Reads `body` into a grid, detecting its format.
pub fn read(body: &[u8], declared: Declared) -> Result<(Format, Grid), ReadError> {
    if body.len() > MAX_UPLOAD_BYTES {
        return Err(ReadError::TooLarge);
    }
    if body.is_empty() {
        return Err(ReadError::Empty);
    }
    let zip = body.starts_with(ZIP_SIGNATURE);
    match (zip, declared) {
        (true, Declared::Csv) => Err(ReadError::TypeMismatch("text/csv")),
        (false, Declared::Xlsx) => Err(ReadError::TypeMismatch("XLSX")),
        (true, _) => read_xlsx(body).map(|g| (Format::Xlsx, g)),
        (false, _) => read_csv(body).map(|g| (Format::Csv, g)),
    }
}

fn check_len(text: String) -> Cell {
    if text.chars().count() > MAX_CELL_CHARS {
        Err(CellProblem::TooLong)
    } else {
        Ok(text)
    }
}

/// CSV in UTF-8: a leading byte-order mark is dropped; quoting follows RFC 4180.
fn read_csv(body: &[u8]) -> Result<Grid, ReadError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if std::str::from_utf8(body).is_err() {
        return Err(ReadError::BadCsv("not UTF-8".into()));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut grid = Grid::default();
    let mut record = csv::StringRecord::new();
    // The line the last record started on (1-based), and its byte offset.
    let (mut line, mut seen): (u32, usize) = (1, 0);
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // The error's text names a position, never the content.
                let at = e.position().map_or(0, csv::Position::line);
                return Err(ReadError::BadCsv(format!("line {at}")));
            }
        }
        // The record's first line, as an editor (or Excel, for one-line records) numbers it,
        // counted from the record's byte offset (csv's own line count starts the first record
        // at 1 and the others at 0).
        let start = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .and_then(|b| body.get(seen..b).map(|skipped| (b, skipped)));
        let Some((start, skipped)) = start else {
            return Err(ReadError::BadCsv("record positions".into()));
        };
        // A record's offset is where the parser resumed: line ends of the record before it
        // (a CRLF's LF) and blank lines come first.
        let blank = body
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let lead = body.get(start..start + blank).unwrap_or_default();
        let newlines = skipped.iter().chain(lead).filter(|&&b| b == b'\n').count();
        let newlines = u32::try_from(newlines).map_err(|_| ReadError::TooManyRows)?;
        line = line.checked_add(newlines).ok_or(ReadError::TooManyRows)?;
        seen = start + blank;
        let number = line;
        if record.len() > MAX_COLUMNS as usize {
            return Err(ReadError::TooManyColumns);
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        // Two header rows at most precede the data.
        if grid.rows.len() >= MAX_ROWS + 2 {
            return Err(ReadError::TooManyRows);
        }
        let cells = record.iter().map(|c| check_len(c.to_owned())).collect();
        grid.rows.push((number, cells));
    }
    Ok(grid)
}

/// Inflates every part of the zip once, bounded, so that calamine (which trusts the zip) only
/// ever sees a workbook whose parts are known to be small and honest about their sizes.
fn check_zip(body: &[u8]) -> Result<(), ReadError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(body))
        .map_err(|_| ReadError::BadWorkbook("not a complete zip archive"))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(ReadError::Bomb);
    }
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|_| ReadError::BadWorkbook("a part of the zip cannot be read"))?;
        let declared = entry.size();
        if declared > MAX_INFLATED_BYTES
            || total
                .checked_add(declared)
                .is_none_or(|t| t > MAX_INFLATED_BYTES)
        {
            return Err(ReadError::Bomb);
        }
        let mut seen: u64 = 0;
        loop {
            let n = entry.read(&mut buf).map_err(|e| {
                // zip stops a part that inflates past its declared size (a bomb that lies
                // about its size) with this message; anything else is a damaged part.
                if e.to_string().contains("larger than its declared") {
                    ReadError::Bomb
                } else {
                    ReadError::BadWorkbook("a part of the zip does not inflate")
                }
            })?;
            if n == 0 {
                break;
            }
            seen = seen.checked_add(n as u64).ok_or(ReadError::Bomb)?;
            total = total.checked_add(n as u64).ok_or(ReadError::Bomb)?;
            if seen > declared || total > MAX_INFLATED_BYTES {
                return Err(ReadError::Bomb);
            }
        }
    }
    Ok(())
}

fn workbook_error(e: &calamine::XlsxError) -> ReadError {
    // calamine's messages can quote the workbook's XML; only the kind is kept.
    match e {
        calamine::XlsxError::Io(_) | calamine::XlsxError::Zip(_) => {
            ReadError::BadWorkbook("the zip cannot be read")
        }
        calamine::XlsxError::Xml(_) | calamine::XlsxError::XmlAttr(_) => {
            ReadError::BadWorkbook("malformed XML")
        }
        _ => ReadError::BadWorkbook("not a workbook calamine can read"),
    }
}

fn read_xlsx(body: &[u8]) -> Result<Grid, ReadError> {
    check_zip(body)?;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(body)).map_err(|e| workbook_error(&e))?;
    let names = book.sheet_names();
    let Some(sheet) = SHEET_NAMES
        .iter()
        .find_map(|want| names.iter().find(|n| n.trim() == *want))
        .cloned()
    else {
        return Err(ReadError::NoRosterSheet);
    };
    let is_1904 = book.has_1904_epoch();
    let mut cells = book
        .worksheet_cells_reader(&sheet)
        .map_err(|e| workbook_error(&e))?;
    let mut grid = Grid::default();
    while let Some(c) = cells
        .next_cell_with_formula()
        .map_err(|e| workbook_error(&e))?
    {
        let (row, col) = c.pos;
        if col >= MAX_COLUMNS {
            return Err(ReadError::TooManyColumns);
        }
        // Rows are zero-based here; two header rows at most precede the data.
        if row as usize >= MAX_ROWS + 2 {
            // An empty cell far down (formatting) is not data; anything else is a row too many.
            if matches!(c.value, DataRef::Empty) && c.formula.is_none() {
                continue;
            }
            return Err(ReadError::TooManyRows);
        }
        let value = if c.formula.is_some() {
            Err(CellProblem::Formula)
        } else {
            match cell_text(&c.value, is_1904) {
                None => continue,
                Some(v) => v.and_then(check_len),
            }
        };
        let number = row + 1;
        if grid.rows.last().is_none_or(|(n, _)| *n != number) {
            if grid.rows.last().is_some_and(|(n, _)| *n > number) {
                return Err(ReadError::BadWorkbook("rows out of order"));
            }
            grid.rows.push((number, Vec::new()));
        }
        let Some((_, row_cells)) = grid.rows.last_mut() else {
            continue;
        };
        let col = col as usize;
        if row_cells.len() <= col {
            row_cells.resize(col + 1, Ok(String::new()));
        }
        row_cells[col] = value;
    }
    Ok(grid)
}

/// The largest integer an `f64` holds exactly.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// A cell's text: `None` for an empty cell.
fn cell_text(value: &DataRef<'_>, is_1904: bool) -> Option<Cell> {
    Some(match value {
        DataRef::Empty => return None,
        DataRef::String(s) => Ok(s.clone()),
        DataRef::SharedString(s) => Ok((*s).to_owned()),
        DataRef::Int(i) => Ok(i.to_string()),
        DataRef::Float(f) => whole(*f),
        DataRef::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.to_owned()),
        DataRef::DateTime(d) if d.is_datetime() => excel_date(d.as_f64(), is_1904),
        DataRef::DateTime(_) => Err(CellProblem::InexactNumber),
        DataRef::DateTimeIso(s) => Ok(s.get(..10).unwrap_or(s).to_owned()),
        DataRef::DurationIso(_) => Err(CellProblem::InexactNumber),
        DataRef::Error(_) => Err(CellProblem::ErrorValue),
    })
}

/// A number as integer text, when it is one Excel could have stored exactly.
fn whole(f: f64) -> Cell {
    // Excel keeps 15 significant digits: beyond 10^15 the digits typed may already be gone.
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 && f.abs() < EXACT_F64 {
        // Whole and within ±10^15, so the conversion is exact.
        #[allow(clippy::cast_possible_truncation)]
        Ok((f as i64).to_string())
    } else {
        Err(CellProblem::InexactNumber)
    }
}

/// An Excel date serial as `YYYY-MM-DD` (the time of day, if any, is dropped: the roster's
/// dates are days).
fn excel_date(serial: f64, is_1904: bool) -> Cell {
    if !serial.is_finite() || !(0.0..3_000_000.0).contains(&serial) {
        return Err(CellProblem::InexactNumber);
    }
    // In range, so the day count fits an i64 exactly.
    #[allow(clippy::cast_possible_truncation)]
    let days = serial.floor() as i64;
    // The 1900 system counts from 1899-12-30 (Excel's phantom 1900-02-29 included, which
    // only shifts dates before March 1900); the 1904 system from 1904-01-01.
    let (y, m, d) = if is_1904 {
        (1904, 1, 1)
    } else {
        (1899, 12, 30)
    };
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::try_days(days)?))
        .map(|date| date.format("%Y-%m-%d").to_string())
        .ok_or(CellProblem::InexactNumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_become_their_digits_and_lossy_ones_are_refused() {
        assert_eq!(whole(330106.0), Ok("330106".to_owned()));
        assert_eq!(whole(1.5), Err(CellProblem::InexactNumber));
        // An 18-digit ID number typed into a number cell.
        assert_eq!(whole(330106199001011234.0), Err(CellProblem::InexactNumber));
        assert_eq!(whole(f64::NAN), Err(CellProblem::InexactNumber));
    }

    #[test]
    fn excel_serials_are_dates_in_both_epochs() {
        assert_eq!(excel_date(45658.0, false), Ok("2025-01-01".to_owned()));
        assert_eq!(excel_date(45658.75, false), Ok("2025-01-01".to_owned()));
        assert_eq!(excel_date(0.0, true), Ok("1904-01-01".to_owned()));
        assert_eq!(excel_date(-1.0, false), Err(CellProblem::InexactNumber));
    }

    #[test]
    fn csv_with_a_byte_order_mark_and_quotes_reads_as_cells() {
        let (format, grid) = read(
            "\u{feff}姓名,地址\n\"张三\",\"杭州市, 西湖区\"\n\n".as_bytes(),
            Declared::Unknown,
        )
        .unwrap();
        assert_eq!(format, Format::Csv);
        assert_eq!(grid.rows.len(), 2);
        assert_eq!(grid.rows[0].0, 1);
        assert_eq!(grid.rows[1].0, 2);
        assert_eq!(grid.rows[1].1[1], Ok("杭州市, 西湖区".to_owned()));
        // A quoted line break makes a record two lines long; a blank line is a line too.
        for text in [
            &b"a,b\n\"x\ny\",z\n\nc,d\n"[..],
            b"a,b\r\n\"x\r\ny\",z\r\n\r\nc,d",
        ] {
            let (_, grid) = read(text, Declared::Csv).unwrap();
            let numbers: Vec<u32> = grid.rows.iter().map(|r| r.0).collect();
            assert_eq!(numbers, vec![1, 2, 5]);
        }
    }

    #[test]
    fn a_zip_declared_as_csv_and_text_declared_as_xlsx_are_refused() {
        assert!(matches!(
            read(b"PK\x03\x04rest", Declared::Csv),
            Err(ReadError::TypeMismatch(_))
        ));
        assert!(matches!(
            read(b"a,b\n", Declared::Xlsx),
            Err(ReadError::TypeMismatch(_))
        ));
    }

    #[test]
    fn a_truncated_zip_is_a_bad_workbook() {
        assert!(matches!(
            read(b"PK\x03\x04\x14\x00\x00\x00", Declared::Unknown),
            Err(ReadError::BadWorkbook(_))
        ));
    }

    #[test]
    fn latin1_text_is_not_csv() {
        assert!(matches!(
            read(b"caf\xe9,x\n", Declared::Unknown),
            Err(ReadError::BadCsv(_))
        ));
    }
}
