//! From the bytes a caller hands over to delimited UTF-8 text: format
//! detection by content (zip, Excel workbook, text), the zip member or the
//! sheet, and the character encoding.

use std::borrow::Cow;

use crate::input::{Encoding, Format, Limits, decode, encoding};
use crate::issue::{Code, Issue};

/// The bytes as UTF-8 delimited text, and what they were.
pub(crate) struct Decoded<'a> {
    pub text: Cow<'a, [u8]>,
    pub format: Format,
    pub encoding: Encoding,
    /// The zip member, or the sheet, the text came from.
    pub part: Option<String>,
    /// A file name for delimiter detection (the zip member's, if any).
    pub name: Option<String>,
    /// For sheets: `(record line, sheet row)`.
    pub lines: Option<Vec<(u64, u64)>>,
}

impl Decoded<'_> {
    /// Maps a line of the text to the line (row) the administrator sees.
    pub fn line(&self, line: u64) -> u64 {
        match &self.lines {
            None => line,
            Some(map) => match map.binary_search_by_key(&line, |e| e.0) {
                Ok(i) => map[i].1,
                // Past the last record (a limit issue): one past the last row.
                Err(i) => map.get(i).or(map.last()).map_or(line, |e| e.1),
            },
        }
    }
}

fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Whether a zip file looks like an Excel workbook.
fn is_workbook(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"xl/workbook.xml").is_some()
}

#[cfg_attr(all(feature = "xlsx", feature = "zip"), allow(dead_code))]
fn unsupported(what: &str, feature: &str) -> Issue {
    Issue::error(
        Code::UnsupportedFormat,
        format!("the file is {what}; this build of the importer reads it only with the `{feature}` feature"),
    )
    .at(1)
}

/// Decodes `bytes`. `encoding` is the profile's choice (`None`: detect from
/// the byte order mark, else UTF-8); `sheet` picks a workbook's sheet.
pub(crate) fn decode_source<'a>(
    bytes: &'a [u8],
    name: Option<&str>,
    encoding: Option<Encoding>,
    sheet: Option<&str>,
    limits: &Limits,
) -> Result<Decoded<'a>, Issue> {
    let _ = (sheet, limits);
    if is_zip(bytes) {
        if is_workbook(bytes) {
            #[cfg(feature = "xlsx")]
            {
                let s = super::sheet::read(bytes, sheet, limits)?;
                return Ok(Decoded {
                    text: Cow::Owned(s.text),
                    format: Format::Xlsx,
                    encoding: Encoding::Utf8,
                    part: Some(s.name),
                    name: Some("sheet.csv".to_owned()),
                    lines: Some(s.lines),
                });
            }
            #[cfg(not(feature = "xlsx"))]
            return Err(unsupported("an Excel workbook (.xlsx)", "xlsx"));
        }
        #[cfg(feature = "zip")]
        {
            let (member, inner) = super::archive::extract(bytes, limits.file_bytes)?;
            let text = text(Cow::Owned(inner), encoding)?;
            return Ok(Decoded {
                format: Format::Zip,
                part: Some(member.clone()),
                name: Some(member),
                ..text
            });
        }
        #[cfg(not(feature = "zip"))]
        return Err(unsupported("a zip file", "zip"));
    }
    let mut d = text(Cow::Borrowed(bytes), encoding)?;
    d.name = name.map(str::to_owned);
    Ok(d)
}

/// The encoding of plain text starting with `bytes`: the profile's choice
/// (`encoding`), or detected.
fn detect(bytes: &[u8], encoding: Option<Encoding>) -> Result<Encoding, Issue> {
    Ok(match encoding {
        None => encoding::sniff(bytes)?,
        // A byte order mark always wins: it cannot be anything else.
        Some(choice) => match encoding::sniff(bytes) {
            Ok(Encoding::Utf8) | Err(_) => choice,
            Ok(bom) => bom,
        },
    })
}

/// The conversion of a file starting with `head` (its first kilobyte at
/// least, or all of it) from the encoding [`decode_source`] decides on:
/// `None` for a zip, a file in UTF-8 or one the encoding refuses.
pub(crate) fn to_convert(head: &[u8], encoding: Option<Encoding>) -> Option<encoding::Transcoder> {
    if is_zip(head) {
        return None;
    }
    encoding::Transcoder::new(detect(head, encoding).ok()?)
}

/// Plain text in `encoding` (or detected).
fn text(bytes: Cow<'_, [u8]>, encoding: Option<Encoding>) -> Result<Decoded<'_>, Issue> {
    let detected = detect(&bytes, encoding)?;
    let decoded = match bytes {
        Cow::Borrowed(b) => decode(b, detected)?.0,
        Cow::Owned(b) => Cow::Owned(decode(&b, detected)?.0.into_owned()),
    };
    Ok(Decoded {
        text: decoded,
        format: Format::Csv,
        encoding: detected,
        part: None,
        name: None,
        lines: None,
    })
}
