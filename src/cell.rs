//! Formula-safe cells: the neutralization every CSV the library writes
//! applies (against spreadsheet formula injection), its inverse, which the
//! reader applies to every cell, and a CSV writer that neutralizes.

use std::borrow::Cow;
use std::io::Write;

use crate::error::Error;

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
/// use user_import::cell::{neutralize_cell, restore_cell};
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
/// assert_eq!(user_import::cell::restore_cell("'=SUM(A1)"), "=SUM(A1)");
/// assert_eq!(user_import::cell::restore_cell("'quoted'"), "'quoted'");
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
