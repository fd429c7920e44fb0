//! Validating a file handed over in parts as it is read, without holding
//! it whole: the head is opened as soon as it settles how the file is read,
//! then the body's complete records are checked a block at a time and the
//! block is freed. A record is held until it ends, so a quote never closed
//! holds the rest of the file (which is then refused). A file in UTF-16
//! or Windows-1252 is converted to UTF-8 as it comes, and its blocks are
//! read from the text. Gives exactly the [`Validation`] of [`super::run`]
//! on the whole file (a property test and the fuzz `read` target hold them
//! equal); a file the head cannot settle (a workbook, a zip, an odd head)
//! is kept whole and read by [`super::run`].

use std::borrow::Cow;

use sha2::Digest;

use super::{Reading, Settings, Validation, check, known_header, open_options};
use crate::catalog::Catalog;
use crate::input::{Transcoder, reader, source};

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
    /// complete (as UTF-8 text), or (when the file is read whole) the file
    /// so far.
    pending: Vec<u8>,
    /// The conversion of a file in another encoding than UTF-8, once its
    /// head is opened.
    transcoder: Option<Transcoder>,
    /// The text of the last part converted.
    text: Vec<u8>,
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
    /// counted and hashed (and converted, to find where it cannot be).
    Stopped(Box<Validation>),
    /// The file's encoding cannot be read (its transcoder failed): the
    /// whole file is refused, and the rest is only counted and hashed.
    Unreadable,
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
            transcoder: None,
            text: Vec::new(),
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
            State::Stopped(_) | State::Unreadable => {
                self.hash.update(part);
                if let Some(t) = &mut self.transcoder {
                    self.text.clear();
                    t.feed(part, &mut self.text);
                }
                self.unreadable(false);
                return;
            }
        }
        let part = match &mut self.transcoder {
            Some(t) if matches!(self.state, State::Body { .. }) => {
                self.text.clear();
                t.feed(part, &mut self.text);
                &self.text[..]
            }
            _ => part,
        };
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
        if self.unreadable(false) || self.pending.len() < self.want {
            return;
        }
        if matches!(self.state, State::Head) {
            self.open();
        }
        if matches!(self.state, State::Body { .. }) {
            self.read_block(false);
        }
    }

    /// Whether the text of a file converted cannot be read (its
    /// conversion failed or, once the whole file is fed (`ended`), the file
    /// ends where its encoding does not allow): then the rows read so far,
    /// and what waits to be read, are let go.
    fn unreadable(&mut self, ended: bool) -> bool {
        let failed = self.transcoder.as_ref().is_some_and(|t| {
            if ended {
                t.finish().is_err()
            } else {
                t.failed()
            }
        });
        if failed && !matches!(self.state, State::Unreadable) {
            self.state = State::Unreadable;
            self.pending = Vec::new();
        }
        failed
    }

    /// Bytes of the file whose records are read (fed, less what waits
    /// for the rest of its record or block).
    pub(crate) fn bytes_read(&self) -> u64 {
        // (Of a file converted, the text waiting is counted as if it were
        // the file's bytes: a byte of text stands for up to two bytes of
        // UTF-16, or as little as a third of a byte of Windows-1252. An
        // estimate, for progress.)
        self.bytes.saturating_sub(self.pending.len() as u64)
    }

    /// Opens the head gathered in `pending`: the body's reading starts, or
    /// the file is to be read whole.
    fn open(&mut self) {
        let profile = self.settings.profile;
        let known = known_header(profile);
        let mut options = open_options(profile, &known);
        // A file in another encoding is opened from its head's text, as
        // UTF-8 (which the whole file's reading never looks for again: a
        // head whose text starts as UTF-8's byte order mark is read whole).
        let mut transcoder = None;
        let mut converted = None;
        if let Some(mut t) = source::to_convert(&self.pending, options.encoding) {
            let mut text = Vec::new();
            t.feed(&self.pending, &mut text);
            if t.failed() || text.starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.state = State::Whole;
                return;
            }
            options.encoding = None;
            transcoder = Some(t);
            converted = Some(text);
        }
        let head: &[u8] = converted.as_deref().unwrap_or(&self.pending);
        // The head ends with a line: the open looks at whole lines only. A
        // head with no line end cannot settle how the file is read.
        let Some(cut) = memchr::memrchr(b'\n', head).map(|i| i + 1) else {
            self.state = State::Whole;
            return;
        };
        let (state, taken) = match reader::open_head(&head[..cut], self.name.as_deref(), &options) {
            None => (State::Whole, 0),
            Some(opened) => {
                let mut v = Box::new(Validation::empty(self.tenant, profile));
                let reading =
                    Reading::begin(&mut v, self.settings, self.tenant, self.catalog, &opened);
                if let Some(t) = &transcoder {
                    v.input.encoding = t.encoding();
                }
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
            if let Some(text) = converted {
                self.pending = text;
                self.transcoder = transcoder;
            }
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
        self.unreadable(true);
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
            State::Unreadable => {
                // Refused as the whole file is: only the reason is kept.
                let mut v = Box::new(Validation::empty(self.tenant, self.settings.profile));
                v.file_issues
                    .extend(self.transcoder.as_ref().and_then(|t| t.finish().err()));
                (v, None)
            }
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
    /// `Some(false)` once it is to be read whole (a workbook, a zip, an odd
    /// head), has stopped (over the row limit, rows merged by a quote), is
    /// found unreadable in its encoding, or its header has a file-level
    /// error or lacks a required column.
    pub(crate) fn in_segments(&self) -> Option<bool> {
        match &self.state {
            State::Head => None,
            State::Whole | State::Stopped(_) | State::Unreadable => Some(false),
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
        self.unreadable(true);
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
    let in_blocks = matches!(
        stream.state,
        State::Body { .. } | State::Stopped(_) | State::Unreadable
    );
    let mut streamed = stream.finish();
    whole.started = None;
    streamed.started = None;
    (whole, streamed, in_blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Encoding;
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
        text(true).prop_map(|(text, bom, bad_byte)| {
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

    /// A file of [`text`] in another encoding, and the profile's choice of
    /// encoding: UTF-16 (either byte order, with its byte order mark; when
    /// spoilt, with an unpaired surrogate or an odd byte at the end) or
    /// Windows-1252 (the text's UTF-8 bytes, read as Windows-1252 bytes;
    /// with a UTF-8 byte order mark it is UTF-8).
    fn encoded_file() -> impl Strategy<Value = (Vec<u8>, Option<Encoding>)> {
        (text(false), 0u8..3, 0u8..8).prop_map(|((text, bom, spoil), encoding, how)| {
            let spoil = spoil && how < 4 && text.len() > 40;
            if encoding == 2 {
                let mut bytes = Vec::new();
                if bom {
                    bytes.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
                }
                bytes.extend_from_slice(text.as_bytes());
                return (bytes, Some(Encoding::Windows1252));
            }
            let mut units: Vec<u16> = text.encode_utf16().collect();
            if spoil {
                let at = units.len() - 7;
                units[at] = [0xD800, 0xDC00, 0xDBFF][usize::from(how % 3)];
            }
            let le = encoding == 0;
            let mut bytes = if le {
                vec![0xFF, 0xFE]
            } else {
                vec![0xFE, 0xFF]
            };
            for u in units {
                bytes.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
            }
            if spoil && how == 3 {
                bytes.push(b'\n');
            }
            (bytes, None)
        })
    }

    /// The text of a file (a header and rows as [`file`] describes), and
    /// whether it has a byte order mark and is spoilt.
    /// (Without `open`, no quote is left open, to hold the rest of the
    /// file.)
    fn text(open: bool) -> impl Strategy<Value = (String, bool, bool)> {
        let cell = cell().prop_map(move |c| {
            if open || c != "\"open" {
                c
            } else {
                "x".to_owned()
            }
        });
        let row = prop::collection::vec(cell, 1..6);
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
                (text, bom, bad_byte)
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

        #[test]
        fn a_file_in_another_encoding_fed_in_parts_validates_as_the_whole_file(
            (file, encoding) in encoded_file(),
            parts in prop::collection::vec(1usize..300, 1..8),
            head in 1024usize..4096,
            block in 1usize..400,
            threads in 1usize..3,
            rows_limit in prop::sample::select(vec![5u64, 50, 1_000]),
        ) {
            let mut profile = Profile::default();
            profile.limits.rows = rows_limit;
            profile.encoding = encoding;
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
    fn a_large_file_in_another_encoding_is_read_in_blocks_and_validates_as_whole() {
        let mut text = "userId,email,firstName\n".to_owned();
        for i in 0..2_000 {
            text.push_str(&format!("u{i},u{i}@x.io,\"Zo\u{eb} \u{1F600}, {i}\"\n"));
        }
        let utf16 = |le| crate::input::utf16(&text, le);
        let latin: Vec<u8> = text
            .replace('\u{1F600}', "\u{20AC}")
            .chars()
            .map(|c| match c {
                '\u{20AC}' => 0x80,
                c => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            })
            .collect();
        for (file, encoding, choice) in [
            (utf16(true), Encoding::Utf16Le, None),
            (utf16(false), Encoding::Utf16Be, None),
            (latin, Encoding::Windows1252, Some(Encoding::Windows1252)),
        ] {
            let profile = Profile {
                encoding: choice,
                ..Profile::default()
            };
            let (whole, streamed, in_blocks) = both(&profile, 2, &file, &[701], (4096, 3_000));
            assert!(in_blocks, "{encoding:?}");
            assert_eq!(whole.rows().len(), 2_000);
            assert_eq!(whole.input().encoding, encoding);
            assert!(whole.issues().next().is_none(), "{encoding:?}");
            assert_eq!(whole, streamed, "{encoding:?}");
            // Spoilt at its end, the file is refused as a whole file is.
            let mut spoilt = file.clone();
            if encoding == Encoding::Windows1252 {
                continue;
            }
            spoilt.pop();
            let (whole, streamed, in_blocks) = both(&profile, 2, &spoilt, &[701], (4096, 3_000));
            assert!(in_blocks && whole.rows().is_empty(), "{encoding:?}");
            assert_eq!(whole.file_issues()[0].code, crate::Code::InvalidEncoding);
            assert_eq!(whole, streamed, "{encoding:?}");
        }
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
