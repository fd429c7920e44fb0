//! Reading a file, as validation meets it: the source decoded, the lines
//! before the header skipped, the delimiter chosen, the header's cells, and
//! then the body's records — whole, with the line each starts on, their
//! cells decoded — in pieces that threads can read apart.

use crate::input::source::{self, Decoded};
use crate::input::tokenize::{Multiline, Problem, Record, Tokenizer, unescape};
use crate::input::{self, Delimiter, Encoding, Format, Limits};
use crate::issue::{Code, Issue};

/// The longest header cell.
const MAX_HEADER_BYTES: usize = 256;

/// How to open a file.
pub(crate) struct Options<'a> {
    pub encoding: Option<Encoding>,
    pub sheet: Option<&'a str>,
    pub limits: Limits,
    pub delimiter: Delimiter,
    /// Lines before the header (`None`: skipped when unambiguous).
    pub preamble: Option<usize>,
    /// Whether a header cell names a column (for the preamble and the
    /// delimiter).
    pub known: &'a dyn Fn(&str) -> bool,
}

/// A file opened: what was found, the header, and where the body starts.
pub(crate) struct Opened<'a> {
    decoded: Decoded<'a>,
    pub format: Format,
    pub encoding: Encoding,
    pub part: Option<String>,
    pub delimiter: u8,
    /// The lines skipped before the header.
    pub preamble: Vec<String>,
    /// The header's cells, decoded (formula neutralization undone).
    pub header: Vec<String>,
    /// For a workbook: the converted text's lines and the sheet's rows.
    pub lines: Option<Vec<(u64, u64)>>,
    body: (usize, u64),
}

/// What [`open`] refused, and what it had found by then.
pub(crate) struct Refused {
    pub issue: Issue,
    pub format: Option<(Format, Encoding, Option<String>)>,
    pub preamble: Vec<String>,
    pub delimiter: Option<u8>,
}

/// Opens `bytes`: every file-level problem of reading is the `Err`.
pub(crate) fn open<'a>(
    bytes: &'a [u8],
    name: Option<&str>,
    opts: &Options<'_>,
) -> Result<Opened<'a>, Box<Refused>> {
    let limits = opts.limits;
    let mut refused = Refused {
        issue: Issue::error(Code::FileEmpty, "file is empty"),
        format: None,
        preamble: Vec::new(),
        delimiter: None,
    };
    let refuse = |mut r: Refused, issue: Issue| {
        r.issue = issue;
        Err(Box::new(r))
    };
    if bytes.len() as u64 > limits.file_bytes {
        return refuse(
            refused,
            Issue::error(
                Code::LimitExceeded,
                format!(
                    "the file is {} bytes, more than the limit of {} bytes",
                    bytes.len(),
                    limits.file_bytes
                ),
            ),
        );
    }
    let decoded = match source::decode_source(bytes, name, opts.encoding, opts.sheet, &limits) {
        Ok(d) => d,
        Err(issue) => return refuse(refused, issue),
    };
    refused.format = Some((decoded.format, decoded.encoding, decoded.part.clone()));
    let data: &[u8] = &decoded.text;
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return refuse(refused, Issue::error(Code::FileEmpty, "file is empty"));
    }
    // Lines before the header (a vendor's version line).
    let (header_at, preamble) = input::preamble(data, opts.preamble, opts.known);
    let header_line = 1 + preamble.len() as u64;
    refused.preamble.clone_from(&preamble);
    let delimiter = match opts.delimiter.byte() {
        Some(d) => d,
        None => {
            match input::detect_delimiter(&data[header_at..], decoded.name.as_deref(), opts.known) {
                Ok(d) => d,
                Err(issue) => return refuse(refused, issue),
            }
        }
    };
    refused.delimiter = Some(delimiter);
    let mut tok = Tokenizer::new(data, delimiter, limits.field_bytes, limits.columns);
    tok.resume(header_at, header_line);
    let mut rec = Record::default();
    if !tok.next_record(&mut rec) {
        return refuse(refused, Issue::error(Code::FileEmpty, "file is empty"));
    }
    if rec.field_count > limits.columns {
        let issue = Issue::error(
            Code::LimitExceeded,
            format!(
                "the header has {} columns, more than the limit of {}",
                rec.field_count, limits.columns
            ),
        )
        .at(rec.line);
        return refuse(refused, issue);
    }
    if let Some(problem) = rec.problem {
        return refuse(refused, problem_issue(problem, &[], rec.line));
    }
    if let Some(m) = rec.multiline.iter().find(|m| m.delimiter) {
        let issue = merged_rows(&[], m.column, m.first, Some(m.last));
        return refuse(refused, issue);
    }
    let mut header = Vec::with_capacity(rec.fields.len());
    let mut buf = Vec::new();
    for (col, s) in rec.fields.iter().enumerate() {
        let raw = &data[s.start..s.end];
        let bytes = if s.escaped {
            unescape(raw, &mut buf);
            &buf[..]
        } else {
            raw
        };
        match std::str::from_utf8(bytes) {
            Ok(t) => header.push(crate::cell::restore_cell(t).to_owned()),
            Err(e) => {
                let issue = Issue::error(
                    Code::InvalidEncoding,
                    format!(
                        "the header is not valid UTF-8 (column {}, byte {}); save the file as UTF-8",
                        col + 1,
                        e.valid_up_to() + 1
                    ),
                )
                .at(rec.line);
                return refuse(refused, issue);
            }
        }
    }
    // A header names a column; a long one is a mistake (or an attack: every
    // issue of that column would carry it).
    if let Some((col, _)) = header
        .iter()
        .enumerate()
        .find(|(_, c)| c.len() > MAX_HEADER_BYTES)
    {
        let issue = Issue::error(
            Code::LimitExceeded,
            format!(
                "the header of column {} is longer than {MAX_HEADER_BYTES} bytes",
                col + 1
            ),
        )
        .at(rec.line);
        return refuse(refused, issue);
    }
    let body = (tok.position(), tok.line());
    Ok(Opened {
        format: decoded.format,
        encoding: decoded.encoding,
        part: decoded.part.clone(),
        lines: decoded.lines.clone(),
        decoded,
        delimiter,
        preamble,
        header,
        body,
    })
}

/// Lines the head of a file read in blocks must hold whole (after a
/// preamble the profile names): more than finding the preamble and the
/// header looks at.
const HEAD_LINES: usize = 8;

/// Opens the head of a file whose rest is still to come, for reading the
/// body in blocks ([`Body::block`]): `None` unless the file is plain UTF-8
/// text (with or without a byte order mark) and `head` settles everything
/// [`open`] decides as the whole file would. That is, the encoding's sniff
/// sees its first kilobyte, the lines a preamble search reads are whole,
/// and the header, like the first record on each delimiter tried, ends
/// before the head does. A head that cannot tell (or whose opening is
/// refused: the whole file then says why) leaves the file to be read whole.
pub(crate) fn open_head<'a>(
    head: &'a [u8],
    name: Option<&str>,
    opts: &Options<'_>,
) -> Option<Opened<'a>> {
    if head.len() < 1024 {
        return None;
    }
    let opened = open(head, name, opts).ok()?;
    let plain = opened.format == Format::Csv
        && matches!(opened.encoding, Encoding::Utf8 | Encoding::Utf8Bom)
        && matches!(opened.decoded.text, std::borrow::Cow::Borrowed(_));
    let text: &[u8] = &opened.decoded.text;
    let lines = HEAD_LINES.saturating_add(opts.preamble.unwrap_or(0));
    if !plain || !whole_lines(text, lines) || opened.body.0 >= text.len() {
        return None;
    }
    if opts.delimiter.byte().is_none() {
        let (header_at, _) = input::preamble(text, opts.preamble, opts.known);
        let header = &text[header_at..];
        let mut rec = Record::default();
        for d in [b',', b'\t', b';'] {
            let mut tok = Tokenizer::new(header, d, usize::MAX, 4096);
            if !tok.next_record(&mut rec) || tok.position() >= header.len() {
                return None;
            }
        }
    }
    Some(opened)
}

/// Whether `text` holds `n` whole lines (ended by `\n`, `\r\n` or `\r`)
/// with something after them.
fn whole_lines(text: &[u8], n: usize) -> bool {
    let mut at = 0;
    for _ in 0..n {
        let Some(end) = memchr::memchr2(b'\n', b'\r', &text[at..]) else {
            return false;
        };
        at += end + 1;
        if text[at - 1] == b'\r' && text.get(at) == Some(&b'\n') {
            at += 1;
        }
        if at >= text.len() {
            return false;
        }
    }
    true
}

/// Where the records of `data` (a body's records from line `line` on)
/// that surely end before the data does end: the byte and the line after
/// the last of them (`(0, line)` when there is none). A record that
/// reaches the end of the data may go on in what follows it.
pub(crate) fn complete(data: &[u8], delimiter: u8, limits: Limits, line: u64) -> (usize, u64) {
    let mut tok = Tokenizer::new(data, delimiter, limits.field_bytes, limits.columns);
    tok.resume(0, line);
    let mut rec = Record::default();
    let mut end = (0, line);
    while tok.next_record(&mut rec) && tok.position() < data.len() {
        end = (tok.position(), tok.line());
    }
    end
}

impl Opened<'_> {
    /// The body, to read.
    pub fn body(&self, limits: Limits) -> Body<'_> {
        let data: &[u8] = &self.decoded.text;
        Body {
            data,
            text: std::str::from_utf8(data).ok(),
            delimiter: self.delimiter,
            limits,
            start: self.body,
        }
    }

    /// The decoded text from where the body starts, and the body's line.
    pub fn rest(&self) -> (&[u8], u64) {
        (&self.decoded.text[self.body.0..], self.body.1)
    }
}

/// A file's body: its records, read in pieces.
pub(crate) struct Body<'a> {
    data: &'a [u8],
    /// The whole text when it is valid UTF-8 (its cells then need no check).
    text: Option<&'a str>,
    delimiter: u8,
    limits: Limits,
    start: (usize, u64),
}

/// A piece of the body: from a record boundary `(byte, line)` to another.
pub(crate) type Piece = ((usize, u64), (usize, u64));

/// One record of the body, as read.
pub(crate) struct RecordView<'r> {
    /// The line the record starts on.
    pub line: u64,
    /// The cells, decoded; `None` where a cell is not valid UTF-8.
    pub cells: &'r [Option<&'r str>],
    /// The cells that are not valid UTF-8: (column, bytes valid before).
    pub bad: &'r [(usize, usize)],
    /// Fields seen, including those past the columns limit.
    pub field_count: usize,
    /// What is structurally wrong with it (the first problem).
    pub problem: Option<Problem>,
    /// Its quoted values that span lines.
    pub multiline: &'r [Multiline],
}

impl<'a> Body<'a> {
    /// A block of a body read in blocks: `data` starts on a record of line
    /// `line`.
    pub fn block(data: &'a [u8], delimiter: u8, limits: Limits, line: u64) -> Body<'a> {
        Body {
            data,
            text: std::str::from_utf8(data).ok(),
            delimiter,
            limits,
            start: (0, line),
        }
    }

    /// Boundaries cutting the body into about `threads` pieces of about the
    /// same size (one piece when `threads` is 1). Finding a boundary takes
    /// tokenizing up to it (the quotes decide where records end), which
    /// costs little beside checking the records.
    pub fn pieces(&self, threads: usize) -> Vec<Piece> {
        let end = (self.data.len(), u64::MAX);
        if threads < 2 {
            return vec![(self.start, end)];
        }
        let (start, line) = self.start;
        let mut points = vec![(start, line)];
        let mut tok = self.tokenizer();
        tok.resume(start, line);
        let mut rec = Record::default();
        let piece = (self.data.len() - start) / threads;
        for k in 1..threads {
            let target = start + k * piece;
            while tok.position() < target && tok.next_record(&mut rec) {}
            if tok.position() >= self.data.len() {
                break;
            }
            points.push((tok.position(), tok.line()));
        }
        points.push(end);
        points.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// Bytes of the body.
    pub fn len(&self) -> usize {
        self.data.len() - self.start.0
    }

    /// Roughly how many records a piece holds (its line ends).
    pub fn lines_in(&self, piece: Piece) -> usize {
        memchr::memchr_iter(b'\n', &self.data[piece.0.0..piece.1.0]).count()
    }

    fn tokenizer(&self) -> Tokenizer<'a> {
        Tokenizer::new(
            self.data,
            self.delimiter,
            self.limits.field_bytes,
            self.limits.columns,
        )
    }

    /// Calls `each` with every record of `piece` that is not blank (a blank
    /// record: every cell blank, as Excel's trailing `,,,,` rows), at most
    /// `width` cells decoded, until `each` breaks. After a record with a
    /// fatal problem there is none.
    pub fn for_each(
        &self,
        piece: Piece,
        width: usize,
        mut each: impl FnMut(RecordView<'_>) -> std::ops::ControlFlow<()>,
    ) {
        let data = self.data;
        let mut tok = self.tokenizer();
        tok.resume(piece.0.0, piece.0.1);
        tok.stop_at(piece.1.0);
        let mut rec = Record::default();
        let mut owned: Vec<Vec<u8>> = Vec::new();
        let mut spare: Vec<Option<&str>> = Vec::with_capacity(width);
        let mut bad: Vec<(usize, usize)> = Vec::new();
        while tok.next_record(&mut rec) {
            if is_blank(data, &rec) {
                continue;
            }
            // Escaped cells need an owned copy.
            owned.resize_with(width.max(owned.len()), Vec::new);
            for (col, s) in rec.fields.iter().enumerate().take(width) {
                if s.escaped {
                    unescape(&data[s.start..s.end], &mut owned[col]);
                }
            }
            let mut cells = recycle(std::mem::take(&mut spare));
            bad.clear();
            for (col, s) in rec.fields.iter().enumerate().take(width) {
                // A file that is valid UTF-8 as a whole needs no check per
                // cell (the tokenizer splits at ASCII bytes, always char
                // boundaries).
                if let (false, Some(text)) = (s.escaped, self.text)
                    && let Some(t) = text.get(s.start..s.end)
                {
                    cells.push(Some(t));
                    continue;
                }
                let bytes = if s.escaped {
                    &owned[col][..]
                } else {
                    &data[s.start..s.end]
                };
                match std::str::from_utf8(bytes) {
                    Ok(t) => cells.push(Some(t)),
                    Err(e) => {
                        bad.push((col, e.valid_up_to()));
                        cells.push(None);
                    }
                }
            }
            let flow = each(RecordView {
                line: rec.line,
                cells: &cells,
                bad: &bad,
                field_count: rec.field_count,
                problem: rec.problem,
                multiline: &rec.multiline,
            });
            spare = recycle(cells);
            if flow.is_break() {
                return;
            }
        }
    }
}

/// Empties a vector of borrowed cells so its allocation can be reused with
/// another lifetime (the collect reuses the buffer in place).
pub(crate) fn recycle<'b>(mut v: Vec<Option<&str>>) -> Vec<Option<&'b str>> {
    v.clear();
    v.into_iter().map(|_| None).collect()
}

/// A record whose every cell is blank (e.g. Excel's trailing `,,,,` rows).
fn is_blank(data: &[u8], rec: &Record) -> bool {
    rec.problem.is_none()
        && rec
            .fields
            .iter()
            .all(|s| data[s.start..s.end].iter().all(|b| b.is_ascii_whitespace()))
}

/// A column's header, or its number where the header has none.
pub(crate) fn column_name(names: &[String], c: usize) -> String {
    names
        .get(c)
        .cloned()
        .unwrap_or_else(|| format!("column {}", c + 1))
}

/// The file error for a quote that merged rows: it opens on line `open` and
/// closes on line `close` (`None`: never).
pub(crate) fn merged_rows(names: &[String], column: usize, open: u64, close: Option<u64>) -> Issue {
    let what = match close {
        Some(close) => format!(
            "a quoted value opens on line {open} and closes on line {close}, running over what look like rows of their own"
        ),
        None => format!(
            "a quoted value opens on line {open} and is never closed: the rest of the file would be one value"
        ),
    };
    Issue::error(
        Code::MalformedRow,
        format!(
            "{what}. A quote is missing or stray, so the file is not imported: fix the quotes and upload it again"
        ),
    )
    .column(column_name(names, column))
    .at(open)
}

/// The issue for a record's structural problem, on the record's line.
pub(crate) fn problem_issue(problem: Problem, names: &[String], record_line: u64) -> Issue {
    let col = |c: usize| column_name(names, c);
    match problem {
        Problem::UnterminatedQuote { column, line } => {
            return merged_rows(names, column, line, None);
        }
        Problem::MergedRows {
            column,
            open,
            close,
        } => return merged_rows(names, column, open, Some(close)),
        Problem::TextAfterQuote { column, .. } => Issue::error(
            Code::MalformedRow,
            "text after the closing quote of a quoted field",
        )
        .column(col(column)),
        Problem::Nul { column, .. } => {
            Issue::error(Code::MalformedRow, "contains a NUL byte").column(col(column))
        }
        Problem::FieldTooLong { column, bytes, .. } => Issue::error(
            Code::LimitExceeded,
            format!("the field is {bytes} bytes, more than the limit"),
        )
        .column(col(column)),
    }
    .at(record_line)
}
