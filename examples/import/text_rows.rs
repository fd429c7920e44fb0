//! The text report's row lines written as they come, so a large import
//! whose rows all have something to say (a rollback, say) does not hold a
//! report row per line: each row's lines go to a temporary file, and the
//! report is then written with them in their place. The output is
//! `Report::render_text`'s, byte for byte (`tests/import_command.rs` holds
//! it so).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};

use user_import::{Report, RowReport};

/// The text report's row lines, written to a temporary file as they come;
/// [`TextRows::write_text`] writes the report with them in their place.
pub struct TextRows {
    file: BufWriter<File>,
    /// The first error writing to the file, if any.
    failed: Option<std::io::Error>,
}

impl TextRows {
    /// Lines to a new temporary file (deleted when dropped).
    pub fn new() -> std::io::Result<TextRows> {
        Ok(TextRows {
            file: BufWriter::new(tempfile::tempfile()?),
            failed: None,
        })
    }

    /// Writes a row's lines (after the ones before it).
    pub fn push(&mut self, row: &RowReport) {
        if self.failed.is_none()
            && let Err(e) = row.write_text(&mut self.file)
        {
            self.failed = Some(e);
        }
    }

    /// Writes `report` as text with the spooled lines as its rows' lines
    /// (its own `rows` are left out).
    pub fn write_text(self, report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        report.write_text_with_rows(&mut std::io::BufReader::new(file), out)
    }
}
