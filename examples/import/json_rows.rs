//! The JSON report's rows written as they come, so a large import does
//! not hold a report row per line: each row goes to a temporary file as
//! `Report::to_json` would write it inside the report, and the report is
//! then written with them in their place. The output is `to_json`'s, byte
//! for byte (`tests/import_command.rs` holds it so).

use std::io::Write;

use user_import::{Report, RowReport};

use crate::spool::Spool;

/// The JSON report's rows, written to a temporary file as they come, each
/// as `Report::to_json` writes it there; [`JsonRows::write_json`] writes the
/// report with them where `to_json` puts them, so the output is the same
/// without a report row per line held in memory.
pub struct JsonRows {
    file: Spool,
    rows: u64,
    /// One row's JSON, reused.
    row: Vec<u8>,
}

impl JsonRows {
    /// Rows to a new temporary file (deleted when dropped).
    pub fn new() -> std::io::Result<JsonRows> {
        Ok(JsonRows {
            file: Spool::new()?,
            rows: 0,
            row: Vec::new(),
        })
    }

    /// Writes a row (after the ones before it).
    pub fn push(&mut self, row: &RowReport) {
        let (buffer, first) = (&mut self.row, self.rows == 0);
        let written = self.file.write(|file| {
            buffer.clear();
            serde_json::to_writer_pretty(&mut *buffer, row).map_err(std::io::Error::other)?;
            if !first {
                file.write_all(b",\n")?;
            }
            // The rows of the report's pretty JSON are two levels in.
            for (i, line) in buffer.split(|&b| b == b'\n').enumerate() {
                if i > 0 {
                    file.write_all(b"\n")?;
                }
                file.write_all(b"    ")?;
                file.write_all(line)?;
            }
            Ok(())
        });
        if written {
            self.rows += 1;
        }
    }

    /// Writes `report` as pretty JSON with the spooled rows as its rows
    /// (its own `rows` are left out).
    pub fn write_json(self, report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
        let mut file = self.file.into_file()?;
        let mut head = report.clone();
        head.rows.clear();
        let text = serde_json::to_string_pretty(&head).map_err(std::io::Error::other)?;
        const EMPTY: &str = "\n  \"rows\": []";
        if self.rows == 0 {
            return out.write_all(text.as_bytes());
        }
        let Some(at) = text.find(EMPTY) else {
            return Err(std::io::Error::other(
                "the report has no place for its rows",
            ));
        };
        let at = at + EMPTY.len() - 1; // before the `]`
        out.write_all(&text.as_bytes()[..at])?;
        out.write_all(b"\n")?;
        std::io::copy(&mut file, out)?;
        out.write_all(b"\n  ")?;
        out.write_all(&text.as_bytes()[at..])
    }
}
