//! Validating a file handed over in parts as it is read, without holding
//! it whole: the head is opened as soon as it settles how the file is read,
//! then the body's complete records are checked a block at a time and the
//! block is freed. A record is held until it ends, so a quote never closed
//! holds the rest of the file (which is then refused). Gives exactly the
//! [`Validation`] of [`super::run`] on the whole file (a property test and
//! the fuzz `read` target hold them equal); a file the head cannot settle
//! (a workbook, an encoding to convert, an odd head) is kept whole and
//! read by [`super::run`].

use std::borrow::Cow;

use sha2::Digest;

use super::{Reading, Settings, Validation, check, known_header, open_options};
use crate::catalog::Catalog;
use crate::input::reader;

/// Bytes gathered before the head is opened, and the least a block holds
/// (a block of a megabyte or more is checked in pieces on the importer's
/// threads).
pub(crate) const BLOCK: usize = 2 << 20;

/// A validation fed the file in parts ([`Stream::feed`]), in order.
pub(crate) struct Stream<'a> {
    settings: Settings<'a>,
    tenant: &'a str,
    catalog: Option<&'a Catalog>,
    name: Option<String>,
    started: std::time::SystemTime,
    hash: sha2::Sha256,
    bytes: u64,
    /// What is not read yet: the head, the records not known to be
    /// complete, or (when the file is read whole) the file so far.
    pending: Vec<u8>,
    /// Bytes a block holds at least.
    block: usize,
    /// Bytes `pending` gathers before it is read: the head, a block, or
    /// more while one record is longer than a block.
    want: usize,
    state: State<'a>,
}

enum State<'a> {
    /// The head is being gathered.
    Head,
    /// The head could not settle how to read the file: it is read whole.
    Whole,
    /// Reading the body a block at a time; `line` is where `pending`
    /// starts.
    Body {
        v: Box<Validation>,
        reading: Box<Reading<'a>>,
        delimiter: u8,
        line: u64,
    },
    /// The rows were over the limit or merged by a quote: the rest is only
    /// counted and hashed.
    Stopped(Box<Validation>),
}

impl<'a> Stream<'a> {
    /// A validation of a file named `name` (for the format), fed in parts.
    pub(crate) fn new(
        settings: Settings<'a>,
        tenant: &'a str,
        catalog: Option<&'a Catalog>,
        name: Option<&str>,
    ) -> Stream<'a> {
        Stream::with_sizes(settings, tenant, catalog, name, (BLOCK, BLOCK))
    }

    /// [`Stream::new`] with a head and blocks of the sizes given (tests
    /// read tiny ones).
    pub(crate) fn with_sizes(
        settings: Settings<'a>,
        tenant: &'a str,
        catalog: Option<&'a Catalog>,
        name: Option<&str>,
        (head, block): (usize, usize),
    ) -> Stream<'a> {
        Stream {
            settings,
            tenant,
            catalog,
            name: name.map(str::to_owned),
            started: std::time::SystemTime::now(),
            hash: sha2::Sha256::new(),
            bytes: 0,
            pending: Vec::new(),
            block: block.max(1),
            want: head.max(1),
            state: State::Head,
        }
    }

    /// The next part of the file.
    pub(crate) fn feed(&mut self, part: &[u8]) {
        self.bytes += part.len() as u64;
        // A file read whole is hashed where it is read; one read in blocks
        // from its head on (see `open`).
        match self.state {
            State::Head | State::Whole => {}
            State::Body { .. } => self.hash.update(part),
            State::Stopped(_) => {
                self.hash.update(part);
                return;
            }
        }
        // Room for a block and a part at once, not twice that (the buffer
        // would grow by doubling); past that (a file read whole), by half.
        let needed = self.pending.len() + part.len();
        if self.pending.capacity() < needed {
            let room = if needed <= self.want + part.len() {
                self.want + part.len()
            } else {
                needed.max(self.pending.capacity().saturating_mul(3) / 2)
            };
            self.pending.reserve_exact(room - self.pending.len());
        }
        self.pending.extend_from_slice(part);
        if self.pending.len() < self.want {
            return;
        }
        if matches!(self.state, State::Head) {
            self.open();
        }
        if matches!(self.state, State::Body { .. }) {
            self.read_block(false);
        }
    }

    /// Bytes of the file whose records are read (fed, less what waits
    /// for the rest of its record or block).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes - self.pending.len() as u64
    }

    /// Opens the head gathered in `pending`: the body's reading starts, or
    /// the file is to be read whole.
    fn open(&mut self) {
        // The head ends with a line: the open looks at whole lines only. A
        // head with no line end cannot settle how the file is read.
        let Some(cut) = memchr::memrchr(b'\n', &self.pending).map(|i| i + 1) else {
            self.state = State::Whole;
            return;
        };
        let profile = self.settings.profile;
        let known = known_header(profile);
        let options = open_options(profile, &known);
        let head = &self.pending[..cut];
        let (state, taken) = match reader::open_head(head, self.name.as_deref(), &options) {
            None => (State::Whole, 0),
            Some(opened) => {
                let mut v = Box::new(Validation::empty(self.tenant, profile));
                let reading =
                    Reading::begin(&mut v, self.settings, self.tenant, self.catalog, &opened);
                let (rest, line) = opened.rest();
                let state = State::Body {
                    v,
                    reading: Box::new(reading),
                    delimiter: opened.delimiter,
                    line,
                };
                (state, cut - rest.len())
            }
        };
        if matches!(state, State::Body { .. }) {
            // Every byte so far is in `pending`.
            self.hash.update(&self.pending);
        }
        self.pending.drain(..taken);
        self.state = state;
        self.want = self.block;
    }

    /// Reads the complete records in `pending` (all of it when `last`),
    /// and keeps the rest for the next block.
    fn read_block(&mut self, last: bool) {
        let State::Body {
            v,
            reading,
            delimiter,
            line,
        } = &mut self.state
        else {
            return;
        };
        let limits = self.settings.profile.limits;
        let (end, next_line) = if last {
            (self.pending.len(), *line)
        } else {
            reader::complete(&self.pending, *delimiter, limits, *line)
        };
        if end == 0 && !last {
            // One record longer than the block so far: wait for as much
            // again (so a long record is tokenized a few times, not once
            // per part).
            self.want = self.pending.len().saturating_mul(2);
            return;
        }
        self.want = self.block;
        let body = reader::Body::block(&self.pending[..end], *delimiter, limits, *line);
        let flow = reading.body(v, &body, None);
        *line = next_line;
        self.pending.drain(..end);
        if flow.is_break() {
            let State::Body { v, .. } = std::mem::replace(&mut self.state, State::Head) else {
                return;
            };
            self.state = State::Stopped(v);
            self.pending = Vec::new();
        }
    }

    /// The validation of the whole file.
    pub(crate) fn finish(mut self) -> Validation {
        if matches!(self.state, State::Body { .. }) {
            self.read_block(true);
        }
        let (mut v, header) = match std::mem::replace(&mut self.state, State::Head) {
            State::Head | State::Whole => {
                let bytes = std::mem::take(&mut self.pending);
                return super::run(
                    self.settings,
                    self.tenant,
                    self.catalog,
                    Cow::Owned(bytes),
                    self.name.as_deref(),
                );
            }
            State::Body { mut v, reading, .. } => {
                let header = reading.end(&mut v);
                (v, Some(header))
            }
            State::Stopped(v) => (v, None),
        };
        self.pending = Vec::new();
        // The rows grew by half when they had to: the room left is let go.
        v.rows.shrink_to_fit();
        v.input.bytes = self.bytes;
        check(&mut v, self.settings, header, None);
        v.input.sha256 = crate::input::hex(&self.hash.finalize());
        v.input.name = self.name;
        v.started = Some(self.started);
        *v
    }
}

impl Stream<'_> {
    /// Whether the file can be taken a segment at a time
    /// ([`Stream::take_segment`]): `None` while its head is gathered;
    /// `Some(false)` once it is to be read whole (a workbook, an encoding to
    /// convert, an odd head), has stopped (over the row limit, rows merged
    /// by a quote), or its header has a file-level error or lacks a
    /// required column.
    pub(crate) fn in_segments(&self) -> Option<bool> {
        match &self.state {
            State::Head => None,
            State::Whole | State::Stopped(_) => Some(false),
            State::Body { v, reading, .. } => Some(!v.file_error() && reading.missing.is_empty()),
        }
    }

    /// Takes the rows read so far, with their issues (in the order the
    /// whole file's validation gives them), as a validation of their own
    /// without the file's issues and without the file-wide checks
    /// (duplicates, cycles), which are the caller's to make. `None` when
    /// no row is waiting or the file is not read in blocks.
    pub(crate) fn take_segment(&mut self) -> Option<Validation> {
        let State::Body { v, .. } = &mut self.state else {
            return None;
        };
        if v.rows.is_empty() {
            return None;
        }
        let mut row_issues = std::mem::take(&mut v.row_issues);
        crate::issue::sort_issues(&mut row_issues, &v.columns);
        Some(Validation {
            input: v.input.clone(),
            tenant: v.tenant.clone(),
            columns: v.columns.clone(),
            field_columns: v.field_columns.clone(),
            file_issues: Vec::new(),
            rows: std::mem::take(&mut v.rows),
            row_issues,
            key: v.key,
            limits: v.limits,
            ids: None,
            started: Some(self.started),
        })
    }

    /// Reads the records left once the whole file was fed (the last
    /// block), for [`Stream::take_segment`] to take.
    pub(crate) fn end_body(&mut self) {
        // A file shorter than the head is opened now.
        if matches!(self.state, State::Head) && !self.pending.is_empty() {
            self.open();
        }
        if matches!(self.state, State::Body { .. }) {
            self.read_block(true);
        }
    }

    /// What is left of a file read in segments once its rows are taken:
    /// how it was read (its size, hash and name), its columns and file
    /// issues (sorted), no rows. `None` when it was not read in blocks.
    pub(crate) fn finish_segments(mut self) -> Option<Validation> {
        let State::Body { mut v, .. } = std::mem::replace(&mut self.state, State::Head) else {
            return None;
        };
        v.input.bytes = self.bytes;
        v.input.sha256 = crate::input::hex(&self.hash.finalize());
        v.input.name = self.name;
        v.started = Some(self.started);
        crate::issue::sort_issues(&mut v.file_issues, &v.columns);
        Some(*v)
    }
}

/// `file` validated whole, and fed in parts (of the `parts` sizes in turn)
/// to a stream with a head and blocks of the sizes given, both without
/// their start time; and whether the stream read it in blocks. What the
/// tests and the fuzz `read` target compare.
#[cfg(any(test, feature = "arbitrary"))]
pub(crate) fn whole_and_in_blocks(
    settings: Settings<'_>,
    tenant: &str,
    catalog: Option<&Catalog>,
    (file, name): (&[u8], Option<&str>),
    parts: &[usize],
    sizes: (usize, usize),
) -> (Validation, Validation, bool) {
    let mut whole = super::run(settings, tenant, catalog, Cow::Borrowed(file), name);
    let mut stream = Stream::with_sizes(settings, tenant, catalog, name, sizes);
    let mut rest = file;
    for &n in parts.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (part, after) = rest.split_at(n.clamp(1, rest.len()));
        stream.feed(part);
        rest = after;
    }
    let in_blocks = matches!(stream.state, State::Body { .. } | State::Stopped(_));
    let mut streamed = stream.finish();
    whole.started = None;
    streamed.started = None;
    (whole, streamed, in_blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;
    use proptest::prelude::*;

    /// The validation of `file` read whole, and fed in `parts` to a stream
    /// with a head and blocks of the sizes given; `started` left out.
    fn both(
        profile: &Profile,
        threads: usize,
        file: &[u8],
        parts: &[usize],
        sizes: (usize, usize),
    ) -> (Validation, Validation, bool) {
        let settings = Settings { profile, threads };
        whole_and_in_blocks(settings, "t", None, (file, Some("f.csv")), parts, sizes)
    }

    /// A cell: plain, quoted (with line breaks, quotes, delimiters), blank,
    /// or with what a file should not hold.
    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-z]{1,8}",
            2 => "[a-z]{1,6}@[a-z]{1,4}\\.io",
            1 => Just(String::new()),
            1 => Just("\"a\nb\"".to_owned()),
            1 => Just("\"x,\r\ny\"".to_owned()),
            1 => Just("\"q\"\"q\"".to_owned()),
            1 => Just("\"open".to_owned()),
            1 => Just("stray\"quote".to_owned()),
            1 => Just("caf\u{e9}".to_owned()),
            1 => Just("DELETE".to_owned()),
            1 => Just("a\0b".to_owned()),
        ]
    }

    /// A file: an optional byte order mark and preamble, a header, and rows
    /// of cells, with `\n` or `\r\n` line ends and some blank lines.
    fn file() -> impl Strategy<Value = Vec<u8>> {
        let row = prop::collection::vec(cell(), 1..6);
        (
            any::<bool>(),
            any::<bool>(),
            prop::sample::select(vec![",", ";", "\t"]),
            any::<bool>(),
            prop::collection::vec((row, 0u8..12), 0..120),
            any::<bool>(),
        )
            .prop_map(|(bom, preamble, d, crlf, rows, bad_byte)| {
                let end = if crlf { "\r\n" } else { "\n" };
                let mut text = String::new();
                if preamble {
                    text.push_str("Users export");
                    text.push_str(end);
                }
                text.push_str(&["userId", "email", "firstName", "lastName", "transaction"].join(d));
                text.push_str(end);
                for (cells, blank) in rows {
                    text.push_str(&cells.join(d));
                    text.push_str(end);
                    if blank == 0 {
                        text.push_str(end);
                    }
                }
                let mut bytes = Vec::new();
                if bom {
                    bytes.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
                }
                bytes.extend_from_slice(text.as_bytes());
                if bad_byte && bytes.len() > 40 {
                    let at = bytes.len() - 7;
                    bytes[at] = 0xFF;
                }
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn a_file_fed_in_parts_validates_as_the_whole_file(
            file in file(),
            parts in prop::collection::vec(1usize..300, 1..8),
            head in 1024usize..2048,
            block in 1usize..400,
            threads in 1usize..3,
            rows_limit in prop::sample::select(vec![5u64, 50, 1_000]),
        ) {
            let mut profile = Profile::default();
            profile.limits.rows = rows_limit;
            let (whole, streamed, _) = both(&profile, threads, &file, &parts, (head, block));
            prop_assert_eq!(whole, streamed);
        }
    }

    #[test]
    fn a_head_with_no_line_end_is_read_whole_and_looked_at_once() {
        let file = vec![b'a'; 5_000];
        let profile = Profile::default();
        let settings = Settings {
            profile: &profile,
            threads: 1,
        };
        let mut stream = Stream::with_sizes(settings, "t", None, None, (1024, 64));
        stream.feed(&file[..2_000]);
        assert!(matches!(stream.state, State::Whole));
        let (whole, streamed, in_blocks) = both(&profile, 1, &file, &[100], (1024, 64));
        assert!(!in_blocks);
        assert_eq!(whole, streamed);
    }

    #[test]
    fn a_large_file_is_read_in_blocks_and_validates_as_whole() {
        let mut file = b"userId,email,firstName\n".to_vec();
        for i in 0..2_000 {
            file.extend_from_slice(format!("u{i},u{i}@x.io,\"First\n{i}\"\n").as_bytes());
        }
        let profile = Profile::default();
        let (whole, streamed, in_blocks) = both(&profile, 2, &file, &[700], (1024, 3_000));
        assert!(in_blocks);
        assert_eq!(whole.rows().len(), 2_000);
        assert_eq!(whole, streamed);
    }
}
