//! The text report's row lines written as they come, so a large import
//! whose rows all have something to say (a rollback, say) does not hold a
//! report row per line: each row's lines go to a temporary file, and the
//! report is then written with them in their place. The output is
//! `Report::render_text`'s, byte for byte (`tests/import_command.rs` holds
//! it so).

use std::fs::File;
use std::io::BufReader;

use user_import::RowReport;

use crate::spool::Spool;

/// The text report's row lines, written to a temporary file as they come;
/// [`TextRows::into_reader`] reads them back, for the report to be written
/// with them in their place.
pub struct TextRows(Spool);

impl TextRows {
    /// Lines to a new temporary file (deleted when dropped).
    pub fn new() -> std::io::Result<TextRows> {
        Ok(TextRows(Spool::new()?))
    }

    /// Writes a row's lines (after the ones before it).
    pub fn push(&mut self, row: &RowReport) {
        self.0.write(|file| row.write_text(file));
    }

    /// The spooled lines, from the start, to be written where the rows'
    /// lines go (`Report::write_text_with_rows`); the error of spooling
    /// them, if it failed.
    pub fn into_reader(self) -> std::io::Result<BufReader<File>> {
        Ok(BufReader::new(self.0.into_file()?))
    }
}
