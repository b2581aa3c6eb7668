//! The downloadable templates of the three rosters, as XLSX and as CSV.
//!
//! The workbook's sheet `名册` has the Chinese headers in its first row and the English field
//! names in its second (the import skips that row), with every column formatted as text, so
//! that Excel keeps a resident ID number's 18 digits and a region code's leading digits
//! instead of turning them into numbers; the sheet `说明 Notes` explains each column in both
//! languages, with its format, whether it is required and whether it is personal data. The
//! CSV template is the same two header rows in UTF-8 with a byte-order mark (which Excel needs
//! to read UTF-8 CSV as UTF-8).

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::roster::Kind;

/// The template of `kind` as an XLSX workbook.
pub fn xlsx(kind: Kind) -> Result<Vec<u8>, XlsxError> {
    let columns = kind.columns();
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let text = Format::new().set_num_format("@");
    let wrap = Format::new().set_text_wrap();
    let sheet = book.add_worksheet();
    sheet.set_name("名册")?;
    for (i, column) in columns.iter().enumerate() {
        let at =
            u16::try_from(i).map_err(|_| XlsxError::ParameterError("too many columns".into()))?;
        sheet.set_column_format(at, &text)?;
        sheet.set_column_width(at, 16)?;
        sheet.write_string_with_format(0, at, column.zh, &bold)?;
        sheet.write_string(1, at, column.key)?;
    }
    sheet.set_freeze_panes(2, 0)?;

    let notes = book.add_worksheet();
    notes.set_name("说明 Notes")?;
    let heads = [
        "列名",
        "Column",
        "必填 Required",
        "个人信息 Personal data",
        "说明",
        "Explanation",
    ];
    for (i, h) in heads.iter().enumerate() {
        let at =
            u16::try_from(i).map_err(|_| XlsxError::ParameterError("too many columns".into()))?;
        notes.write_string_with_format(0, at, *h, &bold)?;
    }
    for (i, column) in columns.iter().enumerate() {
        let row =
            u32::try_from(i + 1).map_err(|_| XlsxError::ParameterError("too many rows".into()))?;
        notes.write_string(row, 0, column.zh)?;
        notes.write_string(row, 1, column.key)?;
        notes.write_string(row, 2, if column.required { "是 yes" } else { "否 no" })?;
        notes.write_string(
            row,
            3,
            if column.personal {
                "是 yes（加密保存 sealed）"
            } else {
                "否 no"
            },
        )?;
        notes.write_string_with_format(row, 4, column.about_zh, &wrap)?;
        notes.write_string_with_format(row, 5, column.about, &wrap)?;
    }
    let last = u32::try_from(columns.len() + 2).unwrap_or(u32::MAX);
    notes.write_string(
        last,
        0,
        format!(
            "每行导入为一条 {} 命令；每个文件最多 {} 行数据。Each row runs one {} command; at most {} data rows per file.",
            kind.command(),
            super::read::MAX_ROWS,
            kind.command(),
            super::read::MAX_ROWS
        ),
    )?;
    notes.set_column_width(0, 14)?;
    notes.set_column_width(1, 18)?;
    notes.set_column_width(4, 50)?;
    notes.set_column_width(5, 60)?;
    book.save_to_buffer()
}

/// The template of `kind` as CSV: UTF-8 with a byte-order mark, Chinese and English headers.
pub fn csv(kind: Kind) -> Vec<u8> {
    let columns = kind.columns();
    let mut out = "\u{feff}".as_bytes().to_vec();
    // The headers are this module's own text: no commas, quotes or line breaks to escape.
    let zh: Vec<&str> = columns.iter().map(|c| c.zh).collect();
    let en: Vec<&str> = columns.iter().map(|c| c.key).collect();
    out.extend_from_slice(zh.join(",").as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(en.join(",").as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::read::{Declared, Format as FileFormat, read};
    use super::super::roster::header;
    use super::*;

    /// The templates read back through the importer's own reader and header matcher.
    #[test]
    fn each_template_reads_back_as_its_roster_with_two_header_rows() {
        for kind in Kind::ALL {
            let (format, grid) = read(&xlsx(kind).unwrap(), Declared::Xlsx).unwrap();
            assert_eq!(format, FileFormat::Xlsx);
            assert_eq!(header(kind, &grid).unwrap().rows, 2, "{kind:?}");
            let (format, grid) = read(&csv(kind), Declared::Csv).unwrap();
            assert_eq!(format, FileFormat::Csv);
            assert_eq!(header(kind, &grid).unwrap().rows, 2, "{kind:?}");
        }
    }
}
