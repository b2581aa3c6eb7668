//! A report as an Excel workbook (`rust_xlsxwriter`): one worksheet per sheet of the layout,
//! set up to print on A4 with the report's title in the page header and page numbers in the
//! footer.
//!
//! Text is written with `write_string` only, so a name from the log that starts with `=`, `+`,
//! `-` or `@` is a string cell Excel shows as it is and never evaluates; nothing here writes
//! a formula. Counts are numbers; money is a number of yuan formatted `0.00` while Excel can
//! hold it exactly (below 10¹⁵ fen: Excel keeps 15 significant digits), and the exact yuan
//! text beyond, never a rounded number.

use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet, XlsxError};

use super::ReportError;
use super::sheet::{Cell, Layout, Table};

/// The largest amount in fen written as a number: Excel keeps 15 significant digits.
const EXACT_FEN: i64 = 999_999_999_999_999;

/// The largest count written as a number (the same 15 digits).
const EXACT_INT: i64 = 999_999_999_999_999;

/// Excel's paper size code for A4.
const A4: u8 = 9;

struct Formats {
    bold: Format,
    title: Format,
    yuan: Format,
    yuan_bold: Format,
    int_bold: Format,
    plain: Format,
    header: Format,
}

/// Writes `layout` as an `.xlsx` file's bytes.
pub fn write(layout: &Layout) -> Result<Vec<u8>, ReportError> {
    let f = Formats {
        bold: Format::new().set_bold(),
        title: Format::new().set_bold().set_font_size(14),
        yuan: Format::new().set_num_format("0.00"),
        yuan_bold: Format::new().set_num_format("0.00").set_bold(),
        int_bold: Format::new().set_bold(),
        plain: Format::new(),
        header: Format::new()
            .set_bold()
            .set_background_color("#E7EEF7")
            .set_align(FormatAlign::Center),
    };
    let mut workbook = Workbook::new();
    // Excel's page header is limited to 255 characters, and `&` starts a code in it.
    let page_title: String = layout.title.chars().take(100).collect::<String>();
    let page_title = page_title.replace('&', "&&");
    for sheet in &layout.sheets {
        let ws = workbook.add_worksheet();
        ws.set_name(&sheet.name)?;
        ws.set_paper_size(A4);
        ws.set_header(format!("&C{page_title}"));
        ws.set_footer("&C&P / &N");
        ws.set_print_fit_to_pages(1, 0);
        let mut widths: Vec<usize> = Vec::new();
        ws.write_string_with_format(0, 0, &layout.title, &f.title)?;
        let mut row: u32 = 1;
        for (label, value) in &layout.header {
            ws.write_string_with_format(row, 0, label, &f.bold)?;
            cell(ws, row, 1, value, &f, false)?;
            widen(&mut widths, 0, label.as_str());
            row += 1;
        }
        for table in &sheet.tables {
            row += 1;
            row = write_table(ws, row, table, &f, &mut widths)?;
        }
        for (col, width) in widths.iter().enumerate() {
            let col = u16::try_from(col).map_err(|_| XlsxError::RowColumnLimitError)?;
            // Header values (the title, the period) may run into the empty cells beside them.
            ws.set_column_width(col, (*width as f64 + 2.0).clamp(8.0, 60.0))?;
        }
    }
    Ok(workbook.save_to_buffer()?)
}

/// Writes `table` from `row` on (title, header, rows); answers the row after it.
fn write_table(
    ws: &mut Worksheet,
    mut row: u32,
    table: &Table,
    f: &Formats,
    widths: &mut Vec<usize>,
) -> Result<u32, ReportError> {
    ws.write_string_with_format(row, 0, &table.title, &f.bold)?;
    row += 1;
    for (col, name) in table.columns.iter().enumerate() {
        let c = u16::try_from(col).map_err(|_| XlsxError::RowColumnLimitError)?;
        ws.write_string_with_format(row, c, name, &f.header)?;
        widen(widths, col, name);
    }
    row += 1;
    let last = table.rows.len().saturating_sub(1);
    for (i, cells) in table.rows.iter().enumerate() {
        let bold = table.total && i == last;
        for (col, value) in cells.iter().enumerate() {
            let c = u16::try_from(col).map_err(|_| XlsxError::RowColumnLimitError)?;
            cell(ws, row, c, value, f, bold)?;
            if let Cell::Text(t) = value {
                widen(widths, col, t);
            }
        }
        row = row.checked_add(1).ok_or(XlsxError::RowColumnLimitError)?;
    }
    Ok(row)
}

fn cell(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    value: &Cell,
    f: &Formats,
    bold: bool,
) -> Result<(), XlsxError> {
    match value {
        Cell::Text(t) if bold => ws
            .write_string_with_format(row, col, t, &f.bold)
            .map(|_| ()),
        Cell::Text(t) => ws.write_string(row, col, t).map(|_| ()),
        Cell::Date(d) => ws.write_string(row, col, d.to_string()).map(|_| ()),
        Cell::Int(n) if n.unsigned_abs() <= EXACT_INT.unsigned_abs() => {
            // Exact: a 15-digit integer is exactly an f64.
            let fmt = if bold { &f.int_bold } else { &f.plain };
            ws.write_number_with_format(row, col, *n as f64, fmt)
                .map(|_| ())
        }
        Cell::Int(n) => ws.write_string(row, col, n.to_string()).map(|_| ()),
        Cell::Yuan(fen) if fen.unsigned_abs() <= EXACT_FEN.unsigned_abs() => {
            // fen / 100 rounded to the nearest double: shown with two decimals it is the exact
            // amount, as 15 significant digits are.
            let fmt = if bold { &f.yuan_bold } else { &f.yuan };
            ws.write_number_with_format(row, col, *fen as f64 / 100.0, fmt)
                .map(|_| ())
        }
        Cell::Yuan(fen) => ws
            .write_string(row, col, caretrail_projections::query::yuan(*fen))
            .map(|_| ()),
        Cell::Empty => Ok(()),
    }
}

/// Widens column `col` to fit `text`: a CJK character takes two columns' width.
fn widen(widths: &mut Vec<usize>, col: usize, text: &str) {
    let width = text
        .chars()
        .map(|c| if c.is_ascii() { 1 } else { 2 })
        .sum::<usize>();
    if widths.len() <= col {
        widths.resize(col + 1, 0);
    }
    widths[col] = widths[col].max(width);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::sheet::Sheet;
    use calamine::{Data, Reader, Xlsx};

    fn one_table(rows: Vec<Vec<Cell>>) -> Layout {
        Layout {
            title: "=标题 & 报表".into(),
            header: vec![("单位".into(), Cell::Text("@协会".into()))],
            sheets: vec![Sheet {
                name: "概览".into(),
                tables: vec![Table {
                    title: "汇总".into(),
                    columns: vec!["a".into(), "b".into()],
                    rows,
                    total: true,
                }],
            }],
        }
    }

    /// Formula injection and exactness: text that starts like a formula is a string cell, no
    /// cell is a formula, money within Excel's 15 digits is a number of yuan, and an amount or
    /// count beyond them is its exact text, never a rounded number.
    #[test]
    fn text_is_never_a_formula_and_big_amounts_stay_exact() {
        let layout = one_table(vec![
            vec![Cell::Text("=1+1".into()), Cell::Yuan(123_456)],
            vec![Cell::Text("+SUM(A1)".into()), Cell::Yuan(i64::MAX)],
            vec![Cell::Text("-2".into()), Cell::Int(i64::MIN)],
            vec![Cell::Text("合计".into()), Cell::Int(9)],
        ]);
        let bytes = write(&layout).unwrap();
        let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let formulas = book.worksheet_formula("概览").unwrap();
        assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()));
        let range = book.worksheet_range("概览").unwrap();
        let rows: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
        let row = |first: &str| {
            rows.iter()
                .find(|r| r[0] == Data::String(first.into()))
                .unwrap_or_else(|| panic!("{first}"))
                .clone()
        };
        assert_eq!(rows[0][0], Data::String("=标题 & 报表".into()));
        assert_eq!(row("单位")[1], Data::String("@协会".into()));
        assert_eq!(row("=1+1")[1], Data::Float(1234.56));
        assert_eq!(
            row("+SUM(A1)")[1],
            Data::String("92233720368547758.07".into())
        );
        assert_eq!(row("-2")[1], Data::String(i64::MIN.to_string()));
        assert_eq!(row("合计")[1], Data::Float(9.0));
    }
}
