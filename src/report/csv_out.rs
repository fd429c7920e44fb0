//! Writing CSV safely: formula neutralization (and its inverse on reading),
//! and the error CSV of failed rows.

use std::borrow::Cow;
use std::io::Write;

use crate::error::Error;
use crate::input::{InputInfo, RawRows};

/// Characters that make a spreadsheet treat a cell as a formula (OWASP's
/// list, plus line feed).
const TRIGGERS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\n'];

fn is_formula_like(value: &str) -> bool {
    value.trim_start_matches('\'').starts_with(TRIGGERS)
}

/// Neutralizes a cell against spreadsheet formula injection (OWASP "CSV
/// Injection"): a value that starts with `=`, `+`, `-`, `@`, tab, CR or LF
/// (possibly after apostrophes) gets a leading `'`, which spreadsheets show as
/// text. [`restore_cell`] undoes it exactly, and the library's reader applies
/// it to every cell, so a file the library wrote imports back unchanged.
///
/// ```
/// use user_import::{neutralize_cell, restore_cell};
/// assert_eq!(neutralize_cell("=1+2"), "'=1+2");
/// assert_eq!(neutralize_cell("Ann"), "Ann");
/// assert_eq!(neutralize_cell("'=x"), "''=x");
/// for v in ["=1+2", "Ann", "'=x", "''", "-", "'", "O'Brien"] {
///     assert_eq!(restore_cell(&neutralize_cell(v)), v);
/// }
/// ```
pub fn neutralize_cell(value: &str) -> Cow<'_, str> {
    if is_formula_like(value) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Undoes [`neutralize_cell`]: strips one leading `'` when what follows it
/// would have been neutralized.
///
/// ```
/// assert_eq!(user_import::restore_cell("'=SUM(A1)"), "=SUM(A1)");
/// assert_eq!(user_import::restore_cell("'quoted'"), "'quoted'");
/// ```
pub fn restore_cell(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if is_formula_like(rest) => rest,
        _ => value,
    }
}

/// A CSV writer (comma, UTF-8, `\n`) whose every cell is neutralized.
pub(crate) struct SafeWriter<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> SafeWriter<W> {
    pub fn new(out: W) -> SafeWriter<W> {
        SafeWriter {
            inner: csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(out),
        }
    }

    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
        self.inner
            .write_record(cells.into_iter().map(|c| neutralize_cell(c).into_owned()))
            .map_err(Error::csv)
    }

    pub fn finish(mut self) -> Result<(), Error> {
        self.inner.flush().map_err(Error::io)
    }

    /// The underlying writer, flushed.
    pub fn into_inner(self) -> W
    where
        W: Default,
    {
        self.inner.into_inner().unwrap_or_default()
    }
}

/// Writes the header of `source` plus `line` and `error`, then each failed
/// row (given as `(line, error text)`, in line order) with its original cells.
pub(crate) fn write_error_rows(
    source: &[u8],
    info: &InputInfo,
    limits: &crate::Limits,
    failed: impl Iterator<Item = (u64, String)>,
    out: impl Write,
) -> Result<(), Error> {
    let mut w = SafeWriter::new(out);
    let mut failed = failed.peekable();
    let Some(raw) = RawRows::new(source, info, limits) else {
        return w.finish();
    };
    let mut result = Ok(());
    let mut width = 0;
    let mut first = true;
    raw.for_each(|line, cells| {
        if result.is_err() {
            return;
        }
        if first {
            first = false;
            width = cells.len();
            let header = cells
                .iter()
                .map(|c| c.trim_start_matches('\u{feff}'))
                .chain(["line", "error"]);
            result = w.row(header);
            return;
        }
        while failed.peek().is_some_and(|(l, _)| *l < line) {
            failed.next();
        }
        if let Some((_, error)) = failed.next_if(|(l, _)| *l == line) {
            let line_text = line.to_string();
            // Keep the row's shape: pad or cut to the header's width.
            let padded = (0..width).map(|i| cells.get(i).map_or("", String::as_str));
            result = w.row(padded.chain([line_text.as_str(), error.as_str()]));
        }
    });
    result?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_line(cells: &[&str]) -> String {
        let mut out = Vec::new();
        let mut w = SafeWriter::new(&mut out);
        w.row(cells.iter().copied()).unwrap();
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    /// OWASP's two examples (CSV Injection page), as golden output.
    #[test]
    fn owasp_examples_are_neutralized_and_quoted() {
        assert_eq!(csv_line(&["=1+2\";=1+2"]), "\"'=1+2\"\";=1+2\"\n");
        assert_eq!(csv_line(&["=1+2'\" ;,=1+2"]), "\"'=1+2'\"\" ;,=1+2\"\n");
    }

    #[test]
    fn every_trigger_is_neutralized() {
        for t in TRIGGERS {
            let v = format!("{t}cmd");
            assert!(neutralize_cell(&v).starts_with('\''), "{t:?}");
            assert_eq!(restore_cell(&neutralize_cell(&v)), v);
        }
    }
}
