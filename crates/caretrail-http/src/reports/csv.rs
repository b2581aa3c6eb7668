//! A report as one CSV file (the `csv` crate): UTF-8 with a byte-order mark, because Excel
//! opens a CSV without one in the machine's legacy code page (GBK on a Chinese Windows) and
//! shows Chinese text as mojibake; with it, Excel, LibreOffice and WPS all read UTF-8.
//!
//! One file rather than one per table: a report is one download, and the federation's staff
//! open it in a spreadsheet. The header block comes first (label, value), then each sheet's
//! tables one after another: a blank line, a title row (`sheet · table`), the column headers,
//! the rows. Rows are of different lengths (the file is written `flexible`).
//!
//! A spreadsheet evaluates a CSV field that starts with `=`, `+`, `-` or `@` (and, in some,
//! after a leading tab or carriage return) as a formula. Every text field that starts with
//! one of those is written with a leading apostrophe (OWASP's advice), which the spreadsheet
//! shows as text; numbers and dates are ours and always start with a digit.

use super::ReportError;
use super::sheet::{Cell, Layout};

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a spreadsheet may read as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` made inert in a spreadsheet: prefixed with `'` when it starts like a formula.
pub fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

fn field(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => neutralise(t).into_owned(),
        Cell::Int(n) => n.to_string(),
        Cell::Yuan(fen) => caretrail_projections::query::yuan(*fen),
        Cell::Date(d) => d.to_string(),
        Cell::Empty => String::new(),
    }
}

/// Writes `layout` as a CSV file's bytes (byte-order mark first).
pub fn write(layout: &Layout) -> Result<Vec<u8>, ReportError> {
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(BOM.to_vec());
    out.write_record([neutralise(&layout.title).as_ref()])?;
    for (label, value) in &layout.header {
        out.write_record([neutralise(label).into_owned(), field(value)])?;
    }
    for sheet in &layout.sheets {
        for table in &sheet.tables {
            out.write_record([""])?;
            out.write_record([neutralise(&format!("{} · {}", sheet.name, table.title)).as_ref()])?;
            out.write_record(table.columns.iter().map(|c| neutralise(c).into_owned()))?;
            for row in &table.rows {
                out.write_record(row.iter().map(field))?;
            }
        }
    }
    out.into_inner()
        .map_err(|e| ReportError::Csv(csv::Error::from(e.into_error())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formula injection: a field that starts like a formula is written inert.
    #[test]
    fn formula_starts_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert!(neutralise(bad).starts_with('\''), "{bad:?}");
        }
        for fine in ["浙江省", "330100", "2021-10-31", "a=b", ""] {
            assert_eq!(neutralise(fine), fine);
        }
    }
}
