//! The error CSV: the failed rows of a file, written back with their
//! original cells plus `line` and `error`, ready to fix and upload again.

use std::io::Write;

use crate::cell::SafeWriter;
use crate::error::Error;
use crate::input::{InputInfo, RawRows};

/// Writes the header of `source` plus `line` and `error`, then each failed
/// row (given as `(line, error text)`, in line order) with its original cells.
pub(crate) fn write_error_rows(
    source: &[u8],
    info: &InputInfo,
    limits: &crate::input::Limits,
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
