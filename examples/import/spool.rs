//! A temporary file that a report's rows are written to as they come
//! ([`crate::json_rows::JsonRows`], [`crate::text_rows::TextRows`]), to be
//! read back when the report is written.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom};

/// A temporary file (deleted when dropped), written through a buffer,
/// that keeps the first error writing to it.
pub struct Spool {
    file: BufWriter<File>,
    /// The first error writing to the file, if any.
    failed: Option<std::io::Error>,
}

impl Spool {
    /// A new, empty temporary file.
    pub fn new() -> std::io::Result<Spool> {
        Ok(Spool {
            file: BufWriter::new(tempfile::tempfile()?),
            failed: None,
        })
    }

    /// Writes with `write`, unless an earlier write failed; whether this
    /// one was written (an error is kept for [`Spool::into_file`]).
    pub fn write(
        &mut self,
        write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    ) -> bool {
        if self.failed.is_some() {
            return false;
        }
        match write(&mut self.file) {
            Ok(()) => true,
            Err(e) => {
                self.failed = Some(e);
                false
            }
        }
    }

    /// The file, from its start, to read what was written; the first
    /// error writing it, if one failed.
    pub fn into_file(self) -> std::io::Result<File> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    }
}
