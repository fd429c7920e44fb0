//! A CSV tokenizer over a byte slice that keeps physical line numbers and
//! reports, instead of hiding, what is broken.
//!
//! Why not the csv crate's reader: it silently swallows the rest of the file
//! after an unterminated quote, accepts NUL bytes, and counts lines by `\n`
//! only (so CR-only files are all "line 1"). This tokenizer follows RFC 4180
//! with the usual leniencies (a quote inside an unquoted field is literal;
//! `\n`, `\r\n` and a lone `\r` all end a line), never allocates per field
//! (fields are spans into the input), and recovers from a broken row at the
//! next physical line so that no later row is lost.

use memchr::{memchr, memchr2};

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
    /// A quoted field (in `column`, 0-based) opened on `line` is never closed.
    UnterminatedQuote { column: usize, line: u64 },
    /// Text follows a closing quote in `column`.
    TextAfterQuote { column: usize, line: u64 },
    /// A NUL byte in `column`.
    Nul { column: usize, line: u64 },
    /// A quoted value in `column` runs from `line` over several lines, in a
    /// column that takes one line: most likely a closing quote is missing and
    /// later rows were swallowed, so they are read as rows again.
    Multiline { column: usize, line: u64 },
    /// A field longer than the field limit.
    FieldTooLong {
        column: usize,
        line: u64,
        bytes: usize,
    },
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
    pub problem: Option<Problem>,
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
    /// Columns whose quoted values may not span lines (empty: all may).
    single_line: &'a [bool],
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
            single_line: &[],
        }
    }

    /// Quoted values in these columns (`true`) may not span lines: one that
    /// does is a broken row, and reading resumes on its next line.
    pub fn single_line(&mut self, columns: &'a [bool]) {
        self.single_line = columns;
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
    /// end of the input (or of the range set with [`Tokenizer::stop_at`]).
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
        loop {
            let column = rec.field_count;
            let span = if data.get(self.pos) == Some(&b'"') {
                match self.quoted(rec, column) {
                    Some(span) => span,
                    None => {
                        // Broken quoting: the record ends at the end of the
                        // line the quote opened on; the next line starts afresh.
                        rec.end = self.pos;
                        self.skip_terminator();
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

    /// Reads a quoted field starting at the opening quote. Returns `None` when
    /// the quoting is broken; the tokenizer is then left at the end of the line
    /// the quote opened on.
    fn quoted(&mut self, rec: &mut Record, column: usize) -> Option<Span> {
        let data = self.data;
        let open = self.pos;
        let open_line = self.line;
        let start = open + 1;
        let mut i = start;
        let mut escaped = false;
        let mut lines = 0u64;
        loop {
            let Some(q) = memchr(b'"', &data[i..]).map(|q| i + q) else {
                rec.problem = Some(Problem::UnterminatedQuote {
                    column,
                    line: open_line,
                });
                self.recover(open);
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
                    // The quote probably never closed on its own line and
                    // paired with a quote of a later row: treat it as
                    // unterminated, so the later rows are read as rows.
                    rec.problem = Some(Problem::UnterminatedQuote {
                        column,
                        line: open_line,
                    });
                    self.recover(open);
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
            if lines > 0 && self.single_line.get(column).copied().unwrap_or(false) {
                rec.problem = Some(Problem::Multiline {
                    column,
                    line: open_line,
                });
                self.recover(open);
                return None;
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

    /// Positions the tokenizer at the end of the physical line containing `at`
    /// (line count unchanged: the quote's line is the current line).
    fn recover(&mut self, at: usize) {
        let data = self.data;
        self.pos = match memchr2(b'\n', b'\r', &data[at..]) {
            Some(n) => at + n,
            None => data.len(),
        };
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

    fn records(input: &str) -> Vec<(u64, Vec<String>, Option<Problem>)> {
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
    fn unterminated_quote_recovers_at_next_line() {
        let r = records("h1,h2\n1,\"open\n2,b\n3,c\n");
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[1].2,
            Some(Problem::UnterminatedQuote { column: 1, line: 2 })
        );
        assert_eq!((r[2].0, r[3].0), (3, 4));
        assert_eq!(r[3].1, ["3", "c"]);
    }

    #[test]
    fn quote_pairing_with_a_later_row_is_caught() {
        let r = records("a,\"bob,x\nc,\"dan\",y\n");
        assert_eq!(
            r[0].2,
            Some(Problem::UnterminatedQuote { column: 1, line: 1 })
        );
        assert_eq!(r[1].0, 2);
        assert_eq!(r[1].1, ["c", "dan", "y"]);
        assert_eq!(r[1].2, None);
    }

    #[test]
    fn nul_and_text_after_quote() {
        let r = records("a\0b,c\n\"x\"y,z\n");
        assert_eq!(r[0].2, Some(Problem::Nul { column: 0, line: 1 }));
        assert_eq!(r[1].2, Some(Problem::TextAfterQuote { column: 0, line: 2 }));
        assert_eq!(r[1].1.len(), 2);
    }

    #[test]
    fn unescape_collapses_pairs() {
        let mut out = Vec::new();
        unescape(b"a\"\"b\"\"", &mut out);
        assert_eq!(out, b"a\"b\"");
    }
}
