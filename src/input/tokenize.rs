//! A CSV tokenizer over a byte slice that keeps physical line numbers and
//! reports, instead of hiding, what is broken.
//!
//! Why not the csv crate's reader: it silently swallows the rest of the file
//! after an unterminated quote, accepts NUL bytes, and counts lines by `\n`
//! only (so CR-only files are all "line 1"). This tokenizer reads RFC 4180
//! records with the usual leniencies (a quote inside an unquoted field is
//! literal; `\n`, `\r\n` and a lone `\r` all end a line), and never
//! allocates per field (fields are spans into the input).
//!
//! A line break inside a quoted value is part of the value, always: the
//! tokenizer never cuts a record at one. It reports the quoted values that
//! span lines ([`Record::multiline`]) and leaves it to the reader to decide
//! whether a column may hold one. Quoting that cannot be read as records at
//! all (a quote that never closes, or one that closes on a later line and is
//! followed by text) is fatal: nothing after it can be told apart into
//! records, so the tokenizer stops there.

use memchr::memchr;

/// A field: a span of the input. When `escaped`, the span holds doubled
/// quotes (`""`) that must be collapsed to read the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub escaped: bool,
}

/// What is structurally wrong with a record (the first problem found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A quoted field (in `column`, 0-based) opened on `line` is never
    /// closed: it runs to the end of the input. Fatal.
    UnterminatedQuote { column: usize, line: u64 },
    /// A quoted field opened on line `open` closes on a later line `close`
    /// and text follows the closing quote: the quote most likely paired
    /// with one of a later row. Fatal.
    MergedRows {
        column: usize,
        open: u64,
        close: u64,
    },
    /// Text follows a closing quote in `column` (on the line it opened on).
    TextAfterQuote { column: usize, line: u64 },
    /// A NUL byte in `column`.
    Nul { column: usize, line: u64 },
    /// A field longer than the field limit.
    FieldTooLong {
        column: usize,
        line: u64,
        bytes: usize,
    },
}

impl Problem {
    /// Whether the problem leaves the rest of the input unreadable as
    /// records (the tokenizer reads no record after it).
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            Problem::UnterminatedQuote { .. } | Problem::MergedRows { .. }
        )
    }
}

/// A quoted value that spans lines: legal CSV, but not every column takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Multiline {
    /// The column (0-based).
    pub column: usize,
    /// The line where the value's opening quote is.
    pub first: u64,
    /// The line where its closing quote is.
    pub last: u64,
    /// Whether the value holds the delimiter: with its line breaks, it then
    /// looks like further records.
    pub delimiter: bool,
}

/// One record, reused between calls.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// Physical line where the record starts (1-based).
    pub line: u64,
    /// Byte range of the record in the input, without its line terminator.
    pub start: usize,
    pub end: usize,
    /// The fields, at most `max_columns` of them.
    pub fields: Vec<Span>,
    /// Number of fields seen, including those past `max_columns`.
    pub field_count: usize,
    /// The first problem; a fatal one replaces any other.
    pub problem: Option<Problem>,
    /// The quoted values of the record that span lines.
    pub multiline: Vec<Multiline>,
}

pub(crate) struct Tokenizer<'a> {
    data: &'a [u8],
    pos: usize,
    /// No record starts at or after this byte.
    end: usize,
    line: u64,
    delimiter: u8,
    max_field: usize,
    max_columns: usize,
    /// Bytes that end an unquoted field.
    stops: [bool; 256],
}

impl<'a> Tokenizer<'a> {
    pub fn new(data: &'a [u8], delimiter: u8, max_field: usize, max_columns: usize) -> Self {
        let mut stops = [false; 256];
        for b in [delimiter, b'\n', b'\r', 0] {
            stops[b as usize] = true;
        }
        Tokenizer {
            data,
            pos: 0,
            end: data.len(),
            line: 1,
            delimiter,
            max_field,
            max_columns,
            stops,
        }
    }

    /// Continues from byte `pos` (a record boundary), counting lines from `line`.
    pub fn resume(&mut self, pos: usize, line: u64) {
        self.pos = pos.min(self.data.len());
        self.line = line;
    }

    /// Reads no record that starts at or after byte `end` (a record boundary).
    pub fn stop_at(&mut self, end: usize) {
        self.end = end.min(self.data.len());
    }

    /// The byte where the next record (or blank line) starts.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The line the tokenizer is on.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Skips blank lines, then reads the next record. Returns `false` at the
    /// end of the input (or of the range set with [`Tokenizer::stop_at`]),
    /// and after a record with a fatal problem.
    pub fn next_record(&mut self, rec: &mut Record) -> bool {
        let data = self.data;
        if self.pos >= self.end {
            return false;
        }
        // Skip blank lines (they are not records).
        loop {
            if self.pos >= self.end {
                return false;
            }
            match data.get(self.pos) {
                None => return false,
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                }
                Some(b'\r') => {
                    self.pos += 1;
                    if data.get(self.pos) == Some(&b'\n') {
                        self.pos += 1;
                    }
                    self.line += 1;
                }
                Some(_) => break,
            }
        }
        rec.line = self.line;
        rec.start = self.pos;
        rec.fields.clear();
        rec.field_count = 0;
        rec.problem = None;
        rec.multiline.clear();
        loop {
            let column = rec.field_count;
            let span = if data.get(self.pos) == Some(&b'"') {
                match self.quoted(rec, column) {
                    Some(span) => span,
                    None => {
                        // Broken quoting: no record can be told apart after
                        // it. The record runs to the end; nothing follows.
                        self.pos = data.len();
                        self.end = data.len();
                        rec.end = data.len();
                        return true;
                    }
                }
            } else {
                self.unquoted(rec, column)
            };
            if span.end - span.start > self.max_field && rec.problem.is_none() {
                rec.problem = Some(Problem::FieldTooLong {
                    column,
                    line: self.line,
                    bytes: span.end - span.start,
                });
            }
            rec.field_count += 1;
            if rec.fields.len() < self.max_columns {
                rec.fields.push(span);
            }
            match data.get(self.pos) {
                Some(&b) if b == self.delimiter => {
                    self.pos += 1;
                }
                _ => {
                    rec.end = self.pos;
                    self.skip_terminator();
                    return true;
                }
            }
        }
    }

    /// Consumes one line terminator (if any) and counts the line.
    fn skip_terminator(&mut self) {
        match self.data.get(self.pos) {
            Some(b'\n') => {
                self.pos += 1;
                self.line += 1;
            }
            Some(b'\r') => {
                self.pos += 1;
                if self.data.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
                self.line += 1;
            }
            _ => {}
        }
    }

    /// Reads an unquoted field; stops at the delimiter, a line end or the end.
    /// A NUL byte is recorded as a problem and read past.
    fn unquoted(&mut self, rec: &mut Record, column: usize) -> Span {
        let data = self.data;
        let start = self.pos;
        let mut i = self.pos;
        loop {
            while i < data.len() && !self.stops[data[i] as usize] {
                i += 1;
            }
            if i < data.len() && data[i] == 0 {
                if rec.problem.is_none() {
                    rec.problem = Some(Problem::Nul {
                        column,
                        line: self.line,
                    });
                }
                i += 1;
                continue;
            }
            break;
        }
        self.pos = i;
        Span {
            start,
            end: i,
            escaped: false,
        }
    }

    /// Reads a quoted field starting at the opening quote. Returns `None`
    /// when the quoting is broken beyond reading (a fatal problem, recorded).
    fn quoted(&mut self, rec: &mut Record, column: usize) -> Option<Span> {
        let data = self.data;
        let open_line = self.line;
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        let mut lines = 0u64;
        loop {
            let Some(q) = memchr(b'"', &data[i..]).map(|q| i + q) else {
                rec.problem = Some(Problem::UnterminatedQuote {
                    column,
                    line: open_line,
                });
                return None;
            };
            lines += count_line_ends(&data[i..q], data.get(q).copied());
            if memchr(0, &data[i..q]).is_some() && rec.problem.is_none() {
                rec.problem = Some(Problem::Nul {
                    column,
                    line: open_line,
                });
            }
            if data.get(q + 1) == Some(&b'"') {
                escaped = true;
                i = q + 2;
                continue;
            }
            // Closing quote.
            let after = data.get(q + 1).copied();
            let well_ended =
                matches!(after, None | Some(b'\n') | Some(b'\r')) || after == Some(self.delimiter);
            if !well_ended {
                if lines > 0 {
                    // The quote never closed on its own line and paired
                    // with a quote of a later row.
                    rec.problem = Some(Problem::MergedRows {
                        column,
                        open: open_line,
                        close: open_line + lines,
                    });
                    return None;
                }
                if rec.problem.is_none() {
                    rec.problem = Some(Problem::TextAfterQuote {
                        column,
                        line: open_line,
                    });
                }
                // Read the rest of the field as if unquoted, so the record
                // keeps its shape.
                self.pos = q + 1;
                let tail = self.unquoted(rec, column);
                return Some(Span {
                    start,
                    end: tail.end,
                    escaped,
                });
            }
            if lines > 0 {
                rec.multiline.push(Multiline {
                    column,
                    first: open_line,
                    last: open_line + lines,
                    delimiter: memchr(self.delimiter, &data[start..q]).is_some(),
                });
            }
            self.line += lines;
            self.pos = q + 1;
            return Some(Span {
                start,
                end: q,
                escaped,
            });
        }
    }
}

/// Counts line ends in `bytes` (`\n`, `\r\n`, lone `\r`), where `next` is the
/// byte right after the slice.
fn count_line_ends(bytes: &[u8], next: Option<u8>) -> u64 {
    let lf = memchr::memchr_iter(b'\n', bytes).count() as u64;
    if memchr(b'\r', bytes).is_none() {
        return lf;
    }
    let mut lone_cr = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' {
            let following = bytes.get(i + 1).copied().or(next);
            if following != Some(b'\n') {
                lone_cr += 1;
            }
        }
    }
    lf + lone_cr
}

/// Collapses doubled quotes of an escaped span into `out`.
pub(crate) fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while let Some(q) = memchr(b'"', &raw[i..]) {
        out.extend_from_slice(&raw[i..i + q + 1]);
        i += q + 1;
        if raw.get(i) == Some(&b'"') {
            i += 1;
        }
    }
    out.extend_from_slice(&raw[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = Vec<(u64, Vec<String>, Option<Problem>)>;

    fn records(input: &str) -> Read {
        let mut t = Tokenizer::new(input.as_bytes(), b',', 1 << 20, 1000);
        let mut rec = Record::default();
        let mut out = Vec::new();
        while t.next_record(&mut rec) {
            let fields = rec
                .fields
                .iter()
                .map(|s| {
                    let raw = &input.as_bytes()[s.start..s.end];
                    let mut buf = Vec::new();
                    if s.escaped {
                        unescape(raw, &mut buf);
                    } else {
                        buf.extend_from_slice(raw);
                    }
                    String::from_utf8(buf).unwrap()
                })
                .collect();
            out.push((rec.line, fields, rec.problem));
        }
        out
    }

    #[test]
    fn plain_quoted_and_escaped_fields() {
        let r = records("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n");
        assert_eq!(r[0].1, ["a", "b"]);
        assert_eq!(r[1].1, ["x, y", "say \"hi\""]);
        assert_eq!(r[1].0, 2);
    }

    #[test]
    fn lines_count_across_quoted_newlines_and_all_terminators() {
        let r = records("h\r\n\"multi\nline\r\nvalue\"\rnext\n\nlast");
        let lines: Vec<u64> = r.iter().map(|x| x.0).collect();
        assert_eq!(lines, [1, 2, 5, 7]);
    }

    #[test]
    fn empty_trailing_field_is_a_field() {
        let r = records("a,\n");
        assert_eq!(r[0].1, ["a", ""]);
    }

    #[test]
    fn an_unterminated_quote_is_fatal_and_ends_the_records() {
        let r = records("h1,h2\n1,\"open\n2,b\n3,c\n");
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1].2,
            Some(Problem::UnterminatedQuote { column: 1, line: 2 })
        );
        assert!(r[1].2.is_some_and(Problem::is_fatal));
    }

    #[test]
    fn quote_pairing_with_a_later_row_is_fatal() {
        let r = records("a,\"bob,x\nc,\"dan\",y\nlast\n");
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].2,
            Some(Problem::MergedRows {
                column: 1,
                open: 1,
                close: 2
            })
        );
    }

    #[test]
    fn a_quoted_line_break_is_part_of_the_value_and_is_reported() {
        let input = "a,\"x\r\ny\",\"p,\nq\"\nnext,1\n";
        let mut t = Tokenizer::new(input.as_bytes(), b',', 1 << 20, 1000);
        let mut rec = Record::default();
        assert!(t.next_record(&mut rec));
        assert_eq!(rec.field_count, 3);
        assert_eq!(rec.problem, None);
        assert_eq!(
            rec.multiline,
            [
                Multiline {
                    column: 1,
                    first: 1,
                    last: 2,
                    delimiter: false
                },
                Multiline {
                    column: 2,
                    first: 2,
                    last: 3,
                    delimiter: true
                }
            ]
        );
        assert!(t.next_record(&mut rec));
        assert_eq!(rec.line, 4);
        assert!(rec.multiline.is_empty());
    }

    #[test]
    fn nul_and_text_after_quote() {
        let r = records("a\0b,c\n\"x\"y,z\n");
        assert_eq!(r[0].2, Some(Problem::Nul { column: 0, line: 1 }));
        assert_eq!(r[1].2, Some(Problem::TextAfterQuote { column: 0, line: 2 }));
        assert_eq!(r[1].1.len(), 2);
    }

    proptest::proptest! {
        /// Records written by the csv crate's `Writer` (quotes, delimiters,
        /// every line end, non-ASCII) read back field for field, each on the
        /// line where it starts.
        #[test]
        fn what_the_csv_crate_writes_reads_back_record_for_record(
            written in proptest::collection::vec(
                proptest::collection::vec("(\"|,|;|\n|\r\n|\r| |é|王|[a-z]{1,3}){0,6}", 1..5),
                1..8,
            ),
            terminator in proptest::sample::select(vec![
                csv::Terminator::CRLF,
                csv::Terminator::Any(b'\n'),
                csv::Terminator::Any(b'\r'),
            ]),
        ) {
            let mut w = csv::WriterBuilder::new()
                .flexible(true)
                .terminator(terminator)
                .from_writer(Vec::new());
            for r in &written {
                w.write_record(r).unwrap();
            }
            let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
            let mut expected = Vec::new();
            let mut line = 1;
            for r in &written {
                // (A record of one empty field is written `""`, not as a
                // blank line, so it is a record here too.)
                expected.push((line, r.clone(), None));
                line += 1 + r.iter().map(|f| count_line_ends(f.as_bytes(), None)).sum::<u64>();
            }
            proptest::prop_assert_eq!(records(&text), expected, "{:?}", text);
        }
    }

    #[test]
    fn unescape_collapses_pairs() {
        let mut out = Vec::new();
        unescape(b"a\"\"b\"\"", &mut out);
        assert_eq!(out, b"a\"b\"");
    }
}
