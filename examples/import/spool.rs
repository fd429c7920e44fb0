//! Temporary files: one that a report's rows are written to as they come
//! ([`crate::json_rows::JsonRows`], [`crate::text_rows::TextRows`]), to be
//! read back when the report is written ([`Spool`]); and the copy of a
//! pipe, to read it again ([`Replay`]).

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, PoisonError};

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

/// An input that cannot be opened twice (a pipe, a device), copied to a
/// temporary file (deleted when the last clone is dropped) as it is read,
/// so that it can be read again from its start
/// ([`Replay::open`]): what was read comes from the copy, the rest from
/// the input, copied as it comes. A file imported a segment at a time is
/// read again whole when a segment cannot decide as the whole file would.
#[derive(Clone)]
pub struct Replay(Arc<Mutex<Copied>>);

/// The input, its copy so far, whether the input has ended, and why the
/// copy failed, if it did (what was read is then in neither).
struct Copied {
    input: File,
    copy: File,
    len: u64,
    ended: bool,
    failed: Option<(std::io::ErrorKind, String)>,
}

impl Replay {
    /// Copies `input` as it is read.
    pub fn new(input: File) -> std::io::Result<Replay> {
        Ok(Replay(Arc::new(Mutex::new(Copied {
            input,
            copy: tempfile::tempfile()?,
            len: 0,
            ended: false,
            failed: None,
        }))))
    }

    /// A reader of the input from its start.
    pub fn open(&self) -> ReplayReader {
        ReplayReader {
            copied: Arc::clone(&self.0),
            at: 0,
        }
    }
}

/// Reads a [`Replay`]'s input from its start.
pub struct ReplayReader {
    copied: Arc<Mutex<Copied>>,
    /// Bytes read so far.
    at: u64,
}

impl Read for ReplayReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut copied = self.copied.lock().unwrap_or_else(PoisonError::into_inner);
        let c = &mut *copied;
        if let Some((kind, message)) = &c.failed {
            return Err(std::io::Error::new(*kind, message.clone()));
        }
        let n = if self.at < c.len {
            let left = usize::try_from(c.len - self.at).unwrap_or(usize::MAX);
            let room = left.min(buf.len());
            c.copy.seek(SeekFrom::Start(self.at))?;
            c.copy.read(&mut buf[..room])?
        } else if c.ended {
            0
        } else {
            let n = c.input.read(buf)?;
            if n == 0 {
                c.ended = true;
            } else {
                let written = c
                    .copy
                    .seek(SeekFrom::Start(c.len))
                    .and_then(|_| c.copy.write_all(&buf[..n]));
                if let Err(e) = written {
                    let message = format!("cannot copy the input to a temporary file: {e}");
                    c.failed = Some((e.kind(), message.clone()));
                    return Err(std::io::Error::new(e.kind(), message));
                }
                c.len += n as u64;
            }
            n
        };
        self.at += n as u64;
        Ok(n)
    }
}
