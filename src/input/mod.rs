//! Reading: encodings, delimiters, limits, the lines before the header, the
//! header, the records (`reader`), and raw rows for the error CSV.

#[cfg(feature = "zip")]
mod archive;
mod encoding;
pub(crate) mod header;
pub(crate) mod reader;
#[cfg(feature = "xlsx")]
mod sheet;
pub(crate) mod source;
pub(crate) mod tokenize;

use std::io::Read;

use serde::{Deserialize, Serialize};

pub use encoding::Encoding;
#[cfg(test)]
pub(crate) use encoding::utf16;
pub(crate) use encoding::{Transcoder, decode};

use crate::error::Error;
use crate::issue::{Code, Issue};
use tokenize::{Record, Tokenizer};

/// Limits on what a file may contain. Past a limit the file (or, for a field,
/// the row) gets a `limit_exceeded` error; memory stays bounded by the limits
/// whatever the input.
///
/// ```
/// use user_import::Limits;
/// let limits = Limits::default().max_rows(249); // a platform's per-file cap
/// assert_eq!(limits.rows, 249);
/// assert_eq!(Limits::default().file_bytes, 256 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    /// Bytes in the whole file. Default 256 MiB.
    pub file_bytes: u64,
    /// Data rows (the header and blank lines not counted). Default 1,000,000.
    pub rows: u64,
    /// Bytes in one field. Default 64 KiB.
    pub field_bytes: usize,
    /// Columns in the header. Default 256.
    pub columns: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            file_bytes: 256 * 1024 * 1024,
            rows: 1_000_000,
            field_bytes: 64 * 1024,
            columns: 256,
        }
    }
}

impl Limits {
    /// Sets the byte limit of a file.
    ///
    /// ```
    /// assert_eq!(user_import::Limits::default().max_file_bytes(10).file_bytes, 10);
    /// ```
    pub fn max_file_bytes(mut self, bytes: u64) -> Limits {
        self.file_bytes = bytes;
        self
    }

    /// Sets the row limit.
    ///
    /// ```
    /// assert_eq!(user_import::Limits::default().max_rows(10).rows, 10);
    /// ```
    pub fn max_rows(mut self, rows: u64) -> Limits {
        self.rows = rows;
        self
    }

    /// Sets the byte limit of one field.
    ///
    /// ```
    /// assert_eq!(user_import::Limits::default().max_field_bytes(10).field_bytes, 10);
    /// ```
    pub fn max_field_bytes(mut self, bytes: usize) -> Limits {
        self.field_bytes = bytes;
        self
    }

    /// Sets the column limit.
    ///
    /// ```
    /// assert_eq!(user_import::Limits::default().max_columns(10).columns, 10);
    /// ```
    pub fn max_columns(mut self, columns: usize) -> Limits {
        self.columns = columns;
        self
    }
}

/// The field delimiter.
///
/// ```
/// use user_import::Delimiter;
/// assert_eq!(Delimiter::default(), Delimiter::Auto);
/// assert_eq!(Delimiter::Tab.byte(), Some(b'\t'));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Delimiter {
    /// Detect from the header line: the candidate (`,`, tab, `;`) that splits
    /// it into the most recognised column names wins; the file name breaks a
    /// tie (`.txt`/`.tsv` → tab, `.csv` → comma); if still tied, the file is
    /// refused with `ambiguous_delimiter`. A one-column file is comma-separated.
    #[default]
    Auto,
    /// `,`
    Comma,
    /// Tab (`.txt` and `.tsv` files).
    Tab,
    /// `;` (Excel in many European locales).
    Semicolon,
}

impl Delimiter {
    /// The delimiter byte, `None` for [`Delimiter::Auto`].
    ///
    /// ```
    /// assert_eq!(user_import::Delimiter::Semicolon.byte(), Some(b';'));
    /// ```
    pub fn byte(self) -> Option<u8> {
        match self {
            Delimiter::Auto => None,
            Delimiter::Comma => Some(b','),
            Delimiter::Tab => Some(b'\t'),
            Delimiter::Semicolon => Some(b';'),
        }
    }

    fn from_byte(b: u8) -> Delimiter {
        match b {
            b'\t' => Delimiter::Tab,
            b';' => Delimiter::Semicolon,
            _ => Delimiter::Comma,
        }
    }
}

/// The file's format.
///
/// ```
/// assert_eq!(user_import::Format::Csv.as_str(), "csv");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Format {
    /// Delimited text.
    #[default]
    Csv,
    /// An Excel workbook (feature `xlsx`); `InputInfo::part` names the sheet.
    Xlsx,
    /// A zip file holding one `.csv` / `.txt` (feature `zip`);
    /// `InputInfo::part` names it.
    Zip,
}

impl Format {
    /// The format's name.
    ///
    /// ```
    /// assert_eq!(user_import::Format::Csv.as_str(), "csv");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Zip => "zip",
        }
    }
}

/// What the reader found and used: format, encoding, delimiter.
///
/// ```
/// let v = user_import::Importer::new("acme").validate(b"userId;email\na;a@x.io\n", None);
/// assert_eq!(v.input().delimiter, user_import::Delimiter::Semicolon);
/// assert_eq!(v.input().encoding, user_import::Encoding::Utf8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputInfo {
    /// The format.
    pub format: Format,
    /// The character encoding.
    pub encoding: Encoding,
    /// The delimiter used (never [`Delimiter::Auto`] once a header was read).
    pub delimiter: Delimiter,
    /// The zip member or the workbook sheet that was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    /// The lines before the header that were skipped (a vendor's version
    /// line such as `version:v1.0`), as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preamble: Vec<String>,
    /// The preset the profile came from ([`crate::Profile::preset`]), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// How each column of the header was read: the mapping applied, from
    /// the profile, the preset or the headers themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnRead>,
    /// The name the file was given with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The SHA-256 of the bytes given, in lower-case hex: the file exactly
    /// as uploaded, before any decoding.
    #[serde(default)]
    pub sha256: String,
    /// How many bytes were given.
    #[serde(default)]
    pub bytes: u64,
}

/// The SHA-256 of `bytes`, in lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Bytes in lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// How one column of the file was read.
///
/// ```
/// use user_import::{Importer, Profile};
/// let v = Importer::new("t").validate(b"Email Address [Required],login,notes\na@x.io,a,hi\n", None);
/// let read: Vec<(&str, Option<&str>)> = v.input().columns.iter()
///     .map(|c| (c.column.as_str(), c.read_as.as_deref()))
///     .collect();
/// assert_eq!(read, [("Email Address [Required]", Some("email")), ("login", Some("userId")), ("notes", None)]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ColumnRead {
    /// The column's header, as written.
    pub column: String,
    /// The field or custom attribute it was read into (its canonical
    /// name); `None` when the column was not read.
    pub read_as: Option<String>,
}

impl InputInfo {
    /// What the reader did beyond the plain file, in a line for a person:
    /// the preset applied and the lines skipped before the header.
    ///
    /// ```
    /// use user_import::{Importer, Profile};
    /// let profile = Profile::preset("entra").unwrap();
    /// let file = "version:v1.0\nName [displayName] Required,User name [userPrincipalName] Required\nAnn Lee,ann@x.io\n";
    /// let v = Importer::with_profile("t", profile).validate(file.as_bytes(), None);
    /// assert_eq!(
    ///     v.input().describe().as_deref(),
    ///     Some("read with the entra preset; skipped before the header: line 1 \"version:v1.0\"")
    /// );
    /// ```
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(p) = &self.preset {
            parts.push(format!("read with the {p} preset"));
        }
        if !self.preamble.is_empty() {
            let lines: Vec<String> = self
                .preamble
                .iter()
                .enumerate()
                .map(|(i, l)| format!("line {} {:?}", i + 1, crate::issue::printable(l)))
                .collect();
            parts.push(format!("skipped before the header: {}", lines.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// The lines to skip before the header: `skip` of them when the profile
/// says how many; otherwise the leading lines that hold one cell naming no
/// column (no delimiter, no quote), when the line after them is a header
/// naming at least two known columns. Returns the byte where the header
/// starts and the skipped lines' text.
pub(crate) fn preamble(
    data: &[u8],
    skip: Option<usize>,
    known: &dyn Fn(&str) -> bool,
) -> (usize, Vec<String>) {
    const MOST: usize = 5;
    let mut lines = Vec::new();
    let mut at = 0;
    // The physical lines, each with the byte after its end.
    let next_line = |at: usize| -> Option<(usize, &[u8])> {
        let rest = data.get(at..).filter(|r| !r.is_empty())?;
        let end = memchr::memchr2(b'\n', b'\r', rest).unwrap_or(rest.len());
        let mut after = at + end;
        if data.get(after) == Some(&b'\r') {
            after += 1;
        }
        if data.get(after) == Some(&b'\n') {
            after += 1;
        }
        Some((after, &rest[..end]))
    };
    let text = |l: &[u8]| {
        String::from_utf8_lossy(l)
            .trim_start_matches('\u{feff}')
            .to_owned()
    };
    match skip {
        Some(n) => {
            for _ in 0..n {
                let Some((after, line)) = next_line(at) else {
                    break;
                };
                lines.push(text(line));
                at = after;
            }
            (at, lines)
        }
        None => {
            while lines.len() < MOST {
                let Some((after, line)) = next_line(at) else {
                    return (0, Vec::new());
                };
                let cells = |d: u8| line.split(|&b| b == d).count();
                let one_cell =
                    !line.contains(&b'"') && [b',', b'\t', b';'].iter().all(|&d| cells(d) == 1);
                let t = text(line);
                if one_cell && !t.trim().is_empty() && !known(t.trim()) {
                    lines.push(t);
                    at = after;
                    continue;
                }
                // The header candidate: enough known names on any delimiter.
                let names = [b',', b'\t', b';']
                    .iter()
                    .map(|&d| {
                        line.split(|&b| b == d)
                            .filter(|c| {
                                std::str::from_utf8(c)
                                    .is_ok_and(|c| known(c.trim().trim_matches('"')))
                            })
                            .count()
                    })
                    .max()
                    .unwrap_or(0);
                return if !lines.is_empty() && names >= 2 {
                    (at, lines)
                } else {
                    (0, Vec::new())
                };
            }
            (0, Vec::new())
        }
    }
}

/// Reads a whole source into memory, stopping as soon as it holds more than
/// `limit` bytes, so a huge stream costs at most `limit + 1` bytes.
///
/// # Errors
///
/// [`Error`] when reading fails or the source is larger than `limit`
/// (`Error::is_limit`).
///
/// ```
/// let bytes = user_import::helpers::read_limited(&b"userId\na\n"[..], 100)?;
/// assert_eq!(bytes.len(), 9);
/// assert!(user_import::helpers::read_limited(&[0u8; 50][..], 10).unwrap_err().is_limit());
/// # Ok::<(), user_import::Error>(())
/// ```
pub fn read_limited(source: impl Read, limit: u64) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    source
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(Error::io)?;
    if buf.len() as u64 > limit {
        return Err(over_limit(limit));
    }
    Ok(buf)
}

/// Reads `source` to its end in parts, each handed to `each` as it comes;
/// fails as [`read_limited`] does, as soon as more than `limit` bytes came.
pub(crate) fn read_parts(
    source: impl Read,
    limit: u64,
    mut each: impl FnMut(&[u8]),
) -> Result<(), Error> {
    read_parts_while(source, limit, |part| {
        each(part);
        std::ops::ControlFlow::Continue(())
    })
}

/// [`read_parts`], stopping (with `Ok`) as soon as `each` says `Break`.
pub(crate) fn read_parts_while(
    mut source: impl Read,
    limit: u64,
    mut each: impl FnMut(&[u8]) -> std::ops::ControlFlow<()>,
) -> Result<(), Error> {
    let mut buf = vec![0; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(e)),
        };
        total += n as u64;
        if total > limit {
            return Err(over_limit(limit));
        }
        if each(&buf[..n]).is_break() {
            return Ok(());
        }
    }
}

fn over_limit(limit: u64) -> Error {
    Error::limit(format!(
        "the file is larger than the limit of {limit} bytes"
    ))
}

/// Chooses the delimiter for `data` (already decoded to UTF-8 bytes).
pub(crate) fn detect_delimiter(
    data: &[u8],
    name: Option<&str>,
    known: &dyn Fn(&str) -> bool,
) -> Result<u8, Issue> {
    const CANDIDATES: [u8; 3] = [b',', b'\t', b';'];
    let hint = name.and_then(|n| {
        let n = n.to_ascii_lowercase();
        if n.ends_with(".tsv") || n.ends_with(".txt") || n.ends_with(".tab") {
            Some(b'\t')
        } else if n.ends_with(".csv") {
            Some(b',')
        } else {
            None
        }
    });
    // (delimiter, recognised names, fields)
    let mut scores = Vec::with_capacity(3);
    for d in CANDIDATES {
        let mut t = Tokenizer::new(data, d, usize::MAX, 4096);
        let mut rec = Record::default();
        if !t.next_record(&mut rec) {
            return Ok(hint.unwrap_or(b','));
        }
        let recognised = rec
            .fields
            .iter()
            .filter(|s| std::str::from_utf8(&data[s.start..s.end]).is_ok_and(known))
            .count();
        scores.push((d, recognised, rec.field_count));
    }
    let split: Vec<_> = scores.iter().filter(|s| s.2 > 1).collect();
    if split.is_empty() {
        return Ok(hint.unwrap_or(b','));
    }
    let best = split
        .iter()
        .map(|s| (s.1, s.1 == s.2))
        .max()
        .unwrap_or((0, false));
    let tied: Vec<u8> = split
        .iter()
        .filter(|s| (s.1, s.1 == s.2) == best)
        .map(|s| s.0)
        .collect();
    if tied.len() == 1 {
        return Ok(tied[0]);
    }
    if let Some(h) = hint.filter(|h| tied.contains(h)) {
        return Ok(h);
    }
    let names: Vec<&str> = tied
        .iter()
        .map(|d| match d {
            b'\t' => "tab",
            b';' => "';'",
            _ => "','",
        })
        .collect();
    Err(Issue::error(
        Code::AmbiguousDelimiter,
        format!(
            "cannot tell the delimiter: the header splits equally well on {}",
            names.join(" and ")
        ),
    )
    .at(1)
    .suggest("name the delimiter explicitly"))
}

/// The raw rows of a file, as text cells with their line numbers (the
/// lines the reports use: a sheet's row numbers for a workbook); used to
/// write back failed rows with their original columns.
pub(crate) struct RawRows<'a> {
    decoded: source::Decoded<'a>,
    delimiter: u8,
    /// Lines before the header.
    preamble: usize,
}

impl<'a> RawRows<'a> {
    pub fn new(source: &'a [u8], info: &InputInfo, limits: &Limits) -> Option<RawRows<'a>> {
        let encoding = match info.format {
            Format::Xlsx => None,
            _ => Some(info.encoding),
        };
        let sheet = match info.format {
            Format::Xlsx => info.part.as_deref(),
            _ => None,
        };
        let decoded = source::decode_source(source, None, encoding, sheet, limits).ok()?;
        Some(RawRows {
            decoded,
            delimiter: info.delimiter.byte().unwrap_or(b','),
            preamble: info.preamble.len(),
        })
    }

    /// Calls `each(line, cells)` for every record (header included).
    pub fn for_each(&self, mut each: impl FnMut(u64, &[String])) {
        let data: &[u8] = &self.decoded.text;
        let mut t = Tokenizer::new(data, self.delimiter, usize::MAX, usize::MAX);
        // The lines before the header, skipped as validation skipped them.
        let (header_at, _) = preamble(data, Some(self.preamble), &|_| false);
        t.resume(header_at, 1 + self.preamble as u64);
        let mut rec = Record::default();
        let mut cells = Vec::new();
        let mut buf = Vec::new();
        while t.next_record(&mut rec) {
            cells.clear();
            for s in &rec.fields {
                let raw = &data[s.start..s.end];
                let bytes = if s.escaped {
                    tokenize::unescape(raw, &mut buf);
                    &buf[..]
                } else {
                    raw
                };
                cells.push(String::from_utf8_lossy(bytes).into_owned());
            }
            each(self.decoded.line(rec.line), &cells);
        }
    }
}

pub(crate) fn delimiter_from_byte(b: u8) -> Delimiter {
    Delimiter::from_byte(b)
}
