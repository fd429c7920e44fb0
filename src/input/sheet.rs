//! Excel workbooks (`.xlsx`), behind the `xlsx` feature: one sheet turned
//! into the same CSV text the reader takes, with a map from each record to
//! the sheet row it came from, so reports name the sheet's row numbers.
//!
//! Cells are read with calamine's streaming cell reader (never a dense range:
//! a workbook with one cell in A1 and one in XFD1048576 must not allocate a
//! billion cells), and become the text the user sees: text as is, booleans
//! `true`/`false`, whole numbers without `.0` (zero-padded when the cell's
//! number format is like `00000`, so employee number `00123` stays `00123`),
//! dates as ISO 8601. Empty trailing rows and columns are ignored.

use std::io::Cursor;

use calamine::{Data, DataRef, Reader, Xlsx};

use crate::cell::neutralize_cell;
use crate::input::Limits;
use crate::issue::{Code, Issue};

/// A sheet as CSV text.
pub(crate) struct Sheet {
    /// The sheet's name.
    pub name: String,
    /// UTF-8 CSV text.
    pub text: Vec<u8>,
    /// `(line of the record in text, row of the sheet)`, 1-based, ascending.
    pub lines: Vec<(u64, u64)>,
}

fn refuse(message: impl Into<String>) -> Issue {
    Issue::error(Code::UnsupportedFormat, message).at(1)
}

/// Uncompressed sizes of the workbook's parts, checked before calamine
/// inflates them (the zip reader stops at the declared size).
fn check_sizes(bytes: &[u8], limits: &Limits) -> Result<(), Issue> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| refuse(format!("the workbook cannot be read: {e}")))?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let f = zip
            .by_index_raw(i)
            .map_err(|e| refuse(format!("the workbook cannot be read: {e}")))?;
        total = total.saturating_add(f.size());
    }
    if total > limits.file_bytes {
        return Err(Issue::error(
            Code::LimitExceeded,
            format!(
                "the workbook expands to {total} bytes, more than the limit of {} bytes",
                limits.file_bytes
            ),
        )
        .at(1));
    }
    Ok(())
}

/// The text a user sees in a cell.
fn text(value: &DataRef<'_>, format: Option<&str>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::Int(i) => padded(*i as f64, format).unwrap_or_else(|| i.to_string()),
        DataRef::Float(f) => padded(*f, format).unwrap_or_else(|| number(*f)),
        DataRef::DateTime(d) => {
            if d.is_duration() {
                return number(d.as_f64());
            }
            let (y, mo, da, h, mi, s, _) = d.to_ymd_hms_milli();
            if (h, mi, s) == (0, 0, 0) {
                format!("{y:04}-{mo:02}-{da:02}")
            } else {
                format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{s:02}")
            }
        }
        DataRef::Error(e) => Data::Error(e.clone()).to_string(),
    }
}

/// A number as a spreadsheet shows it with the General format: whole numbers
/// without a decimal point.
fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// A whole number under a zero-padding format (`00000`).
fn padded(f: f64, format: Option<&str>) -> Option<String> {
    let code = format?;
    if code.is_empty()
        || !code.bytes().all(|b| b == b'0')
        || f.fract() != 0.0
        || !(0.0..1e15).contains(&f)
    {
        return None;
    }
    Some(format!("{:0width$}", f as i64, width = code.len()))
}

/// Reads sheet `name` (or the first sheet) of an `.xlsx` workbook.
pub(crate) fn read(bytes: &[u8], name: Option<&str>, limits: &Limits) -> Result<Sheet, Issue> {
    check_sizes(bytes, limits)?;
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e| refuse(format!("the workbook cannot be read: {e}")))?;
    let names = book.sheet_names();
    let sheet = match name {
        Some(n) => names
            .iter()
            .find(|s| crate::matching::same(s, n))
            .cloned()
            .ok_or_else(|| {
                refuse(format!(
                    "the workbook has no sheet {n:?} (it has {})",
                    names.join(", ")
                ))
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| refuse("the workbook has no sheet"))?,
    };
    let mut reader = book
        .worksheet_cells_reader(&sheet)
        .map_err(|e| refuse(format!("sheet {sheet:?} cannot be read: {e}")))?;
    let formats: Vec<Option<String>> = reader
        .styles()
        .iter()
        .map(|s| s.number_format.as_ref().map(|f| f.format_code.clone()))
        .collect();
    // Rows in sheet order; cells as (column, text).
    let mut rows: Vec<(u32, Vec<(u32, String)>)> = Vec::new();
    let mut produced: u64 = 0;
    loop {
        let next = reader
            .next_cell_with_style_id()
            .map_err(|e| refuse(format!("sheet {sheet:?} cannot be read: {e}")))?;
        let Some((cell, style)) = next else { break };
        let (row, col) = cell.get_position();
        if col as usize >= limits.columns {
            if cell.get_value() == &DataRef::Empty {
                continue;
            }
            return Err(Issue::error(
                Code::LimitExceeded,
                format!(
                    "the sheet has a value in column {}, more than the limit of {} columns",
                    col + 1,
                    limits.columns
                ),
            )
            .at(u64::from(row) + 1));
        }
        let value = text(
            cell.get_value(),
            formats.get(style).and_then(|f| f.as_deref()),
        );
        if value.trim().is_empty() {
            continue;
        }
        // Shared strings let a small workbook name the same long text in
        // many cells: what the sheet expands to is bounded like a file.
        produced = produced.saturating_add(value.len() as u64 + 1);
        if produced > limits.file_bytes {
            return Err(Issue::error(
                Code::LimitExceeded,
                format!(
                    "the sheet expands to more than the limit of {} bytes of text",
                    limits.file_bytes
                ),
            )
            .at(u64::from(row) + 1));
        }
        if value.len() > limits.field_bytes {
            return Err(Issue::error(
                Code::LimitExceeded,
                format!(
                    "the cell in column {} is {} bytes, more than the limit",
                    col + 1,
                    value.len()
                ),
            )
            .at(u64::from(row) + 1));
        }
        match rows.last_mut() {
            Some((r, cells)) if *r == row => cells.push((col, value)),
            _ => {
                if rows.len() as u64 > limits.rows {
                    return Err(Issue::error(
                        Code::LimitExceeded,
                        format!("the sheet has more than {} rows (the limit)", limits.rows),
                    )
                    .at(u64::from(row) + 1));
                }
                rows.push((row, vec![(col, value)]));
            }
        }
    }
    // The columns: from the leftmost to the rightmost cell of any row (a
    // value left of the header is a column without a header, and says so).
    if rows.is_empty() {
        return Ok(Sheet {
            name: sheet,
            text: Vec::new(),
            lines: Vec::new(),
        });
    }
    let first_col = rows
        .iter()
        .flat_map(|(_, c)| c.iter().map(|c| c.0))
        .min()
        .unwrap_or(0);
    let last_col = rows
        .iter()
        .flat_map(|(_, c)| c.iter().map(|c| c.0))
        .max()
        .unwrap_or(0);
    let width = (last_col - first_col + 1) as usize;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let mut lines = Vec::with_capacity(rows.len());
    let mut line: u64 = 1;
    let mut record = vec![String::new(); width];
    for (row, cells) in &rows {
        record.iter_mut().for_each(String::clear);
        for (col, value) in cells {
            if let Some(slot) = col
                .checked_sub(first_col)
                .and_then(|c| record.get_mut(c as usize))
            {
                // Neutralized so the reader, which undoes neutralization,
                // gets the cell's text exactly.
                slot.push_str(&neutralize_cell(value));
            }
        }
        lines.push((line, u64::from(*row) + 1));
        line += 1 + record.iter().map(|c| line_ends(c)).sum::<u64>();
        w.write_record(&record)
            .map_err(|e| refuse(format!("the sheet cannot be converted: {e}")))?;
    }
    let text = w
        .into_inner()
        .map_err(|e| refuse(format!("the sheet cannot be converted: {e}")))?;
    Ok(Sheet {
        name: sheet,
        text,
        lines,
    })
}

/// Line ends in a cell as the reader counts them (`\r\n`, `\n`, lone `\r`).
fn line_ends(cell: &str) -> u64 {
    let b = cell.as_bytes();
    b.iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')))
        .count() as u64
}
