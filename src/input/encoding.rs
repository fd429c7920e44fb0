//! Character encodings: byte order marks, UTF-16, and refusing what cannot be
//! read rather than reading garbage.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::issue::{Code, Issue};

/// The character encoding of a file.
///
/// ```
/// use user_import::{Encoding, Importer};
/// let v = Importer::new("t").validate(b"\xEF\xBB\xBFuserId,email\na,a@x.io\n", None);
/// assert_eq!(v.input().encoding, Encoding::Utf8Bom);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Encoding {
    /// UTF-8 without a byte order mark.
    #[default]
    Utf8,
    /// UTF-8 with a byte order mark (Excel's "CSV UTF-8").
    Utf8Bom,
    /// UTF-16 little-endian with a byte order mark (Excel's "Unicode Text").
    Utf16Le,
    /// UTF-16 big-endian with a byte order mark.
    Utf16Be,
    /// Windows-1252 (older Excel "CSV" exports in Western Europe and the
    /// Americas; a superset of Latin-1 as browsers read it). Never detected:
    /// chosen in `Profile::encoding`.
    Windows1252,
}

impl Encoding {
    /// The encoding's usual name.
    ///
    /// ```
    /// assert_eq!(user_import::Encoding::Utf16Le.as_str(), "UTF-16LE");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf8Bom => "UTF-8 (BOM)",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Windows1252 => "Windows-1252",
        }
    }
}

/// Detects the encoding from the byte order mark (or its absence).
pub(crate) fn sniff(bytes: &[u8]) -> Result<Encoding, Issue> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Ok(Encoding::Utf8Bom)
    } else if bytes.starts_with(&[0xFF, 0xFE]) {
        Ok(Encoding::Utf16Le)
    } else if bytes.starts_with(&[0xFE, 0xFF]) {
        Ok(Encoding::Utf16Be)
    } else if looks_like_utf16(bytes) {
        Err(Issue::error(
            Code::InvalidEncoding,
            "the file looks like UTF-16 without a byte order mark; save it as UTF-8 (or as UTF-16 with a byte order mark)",
        )
        .at(1))
    } else {
        Ok(Encoding::Utf8)
    }
}

/// Text in UTF-16 has a zero in every other byte for ASCII characters.
fn looks_like_utf16(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024) & !1];
    if head.len() < 4 {
        return false;
    }
    let pairs = head.len() / 2;
    let even = head.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd = head.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    let (many, few) = if even > odd { (even, odd) } else { (odd, even) };
    many * 2 >= pairs && few * 10 < pairs
}

/// Decodes `bytes` to UTF-8 bytes (borrowed when already UTF-8), without the
/// byte order mark. UTF-8 is not validated here: invalid sequences are reported
/// per field with their line. UTF-16 and Windows-1252 go through a
/// [`Transcoder`] in one part; an unpaired surrogate is an `invalid_encoding`
/// error naming its line.
pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> Result<(Cow<'_, [u8]>, Encoding), Issue> {
    let Some(mut transcoder) = Transcoder::new(encoding) else {
        let text = match encoding {
            Encoding::Utf8Bom => bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes),
            _ => bytes,
        };
        return Ok((Cow::Borrowed(text), encoding));
    };
    // UTF-16 is two bytes a character (most of them ASCII); Windows-1252
    // one, some of them two in UTF-8.
    let room = match encoding {
        Encoding::Windows1252 => bytes.len(),
        _ => bytes.len() / 2,
    };
    let mut out = Vec::with_capacity(room + bytes.len() / 8);
    transcoder.feed(bytes, &mut out);
    transcoder.finish()?;
    Ok((Cow::Owned(out), encoding))
}

/// UTF-16 (either byte order) or Windows-1252 converted to UTF-8 a part at
/// a time, in order, so that a file in those encodings is read as it comes
/// as well as whole ([`decode`] is one part). A UTF-16 byte order mark at
/// the start is not text. After an unpaired surrogate nothing more is
/// written, and [`Transcoder::finish`] says why the file cannot be read: a
/// file that ends in the middle of a UTF-16 character first (whatever came
/// before), then the first unpaired surrogate, with its line.
pub(crate) struct Transcoder {
    encoding: Encoding,
    /// The first byte of a UTF-16 unit whose second byte is still to come.
    odd: Option<u8>,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
    /// Whether the next unit is the file's first (a byte order mark).
    first: bool,
    /// The line the text written so far ends on.
    line: u64,
    /// `\n` bytes among the UTF-16 bytes, which place an odd byte at the
    /// end: half of them, as a file of text in UTF-16 has two per line
    /// end when a zero byte is not one of them.
    newline_bytes: u64,
    /// The first unpaired surrogate.
    error: Option<Issue>,
}

impl Transcoder {
    /// A transcoder from `encoding`; `None` for UTF-8, which is read as it
    /// is.
    pub(crate) fn new(encoding: Encoding) -> Option<Transcoder> {
        match encoding {
            Encoding::Utf8 | Encoding::Utf8Bom => None,
            Encoding::Utf16Le | Encoding::Utf16Be | Encoding::Windows1252 => Some(Transcoder {
                encoding,
                odd: None,
                high: None,
                first: true,
                line: 1,
                newline_bytes: 0,
                error: None,
            }),
        }
    }

    /// The encoding converted from.
    pub(crate) fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Whether an unpaired surrogate was met (the rest is not written).
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Converts the next part of the file, appending its text to `out`.
    pub(crate) fn feed(&mut self, part: &[u8], out: &mut Vec<u8>) {
        if self.encoding == Encoding::Windows1252 {
            out.reserve(part.len());
            for &b in part {
                if b.is_ascii() {
                    out.push(b);
                } else {
                    push_char(out, windows_1252(b));
                }
            }
            return;
        }
        self.newline_bytes += memchr::memchr_iter(b'\n', part).count() as u64;
        let mut rest = part;
        if let Some(first) = self.odd.take() {
            let Some((&second, after)) = rest.split_first() else {
                self.odd = Some(first);
                return;
            };
            self.unit(self.unit_of([first, second]), out);
            rest = after;
        }
        out.reserve(rest.len() / 2);
        let mut pairs = rest.chunks_exact(2);
        for pair in &mut pairs {
            let u = self.unit_of([pair[0], pair[1]]);
            // Most of a file is ASCII, between other ASCII.
            match u8::try_from(u) {
                Ok(b)
                    if b.is_ascii()
                        && !self.first
                        && self.high.is_none()
                        && self.error.is_none() =>
                {
                    self.line += u64::from(b == b'\n');
                    out.push(b);
                }
                _ => self.unit(u, out),
            }
        }
        self.odd = pairs.remainder().first().copied();
    }

    /// A UTF-16 unit from its two bytes in the file's order.
    fn unit_of(&self, bytes: [u8; 2]) -> u16 {
        if self.encoding == Encoding::Utf16Le {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        }
    }

    /// One UTF-16 unit.
    fn unit(&mut self, u: u16, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.first) && u == 0xFEFF {
            return;
        }
        if self.error.is_some() {
            return;
        }
        if let Some(high) = self.high.take() {
            match char::decode_utf16([high, u]).next() {
                Some(Ok(c)) => push_char(out, c),
                _ => self.unpaired(high),
            }
            return;
        }
        match u {
            0xD800..=0xDBFF => self.high = Some(u),
            0xDC00..=0xDFFF => self.unpaired(u),
            _ => {
                if u == u16::from(b'\n') {
                    self.line += 1;
                }
                match u8::try_from(u) {
                    Ok(b) if b.is_ascii() => out.push(b),
                    _ => push_char(out, char::from_u32(u32::from(u)).unwrap_or('\u{FFFD}')),
                }
            }
        }
    }

    fn unpaired(&mut self, surrogate: u16) {
        self.error = Some(unpaired(surrogate, self.line));
    }

    /// Once the whole file is fed: why its text cannot be read, if it
    /// cannot (see [`Transcoder`] for which reason comes first).
    pub(crate) fn finish(&self) -> Result<(), Issue> {
        if self.odd.is_some() {
            let line = 1 + self.newline_bytes / 2;
            return Err(Issue::error(
                Code::InvalidEncoding,
                "the UTF-16 file ends in the middle of a character",
            )
            .at(line.max(1)));
        }
        if let Some(issue) = &self.error {
            return Err(issue.clone());
        }
        match self.high {
            Some(high) => Err(unpaired(high, self.line)),
            None => Ok(()),
        }
    }
}

/// The error of an unpaired surrogate on `line`.
fn unpaired(surrogate: u16, line: u64) -> Issue {
    Issue::error(
        Code::InvalidEncoding,
        format!("invalid UTF-16: unpaired surrogate {surrogate:#06x}"),
    )
    .at(line)
}

/// `text` in UTF-16 after its byte order mark, little-endian when `le`
/// (for tests).
#[cfg(test)]
pub(crate) fn utf16(text: &str, le: bool) -> Vec<u8> {
    let mut bytes = if le {
        vec![0xFF, 0xFE]
    } else {
        vec![0xFE, 0xFF]
    };
    for u in text.encode_utf16() {
        bytes.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
    }
    bytes
}

/// Appends `c` in UTF-8.
fn push_char(out: &mut Vec<u8>, c: char) {
    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
}

/// One byte of Windows-1252 as a character, following the WHATWG Encoding
/// Standard (0x80–0x9F are the typographic characters Windows puts there; the
/// five bytes it leaves undefined map to the C1 controls of the same value).
/// Twenty-seven entries do not justify a dependency; `tests/encodings.rs`
/// checks all 256 bytes against `encoding_rs`.
pub(crate) fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}',
        '\u{017D}', '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}',
        '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}',
        '\u{9D}', '\u{017E}', '\u{0178}',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let v = utf16(s, true);
        if bom { v } else { v[2..].to_vec() }
    }

    #[test]
    fn windows_1252_matches_encoding_rs_for_every_byte() {
        for b in 0..=255u8 {
            let byte = [b];
            let (want, _, _) = encoding_rs::WINDOWS_1252.decode(&byte);
            assert_eq!(Some(windows_1252(b)), want.chars().next(), "byte {b:#04x}");
        }
    }

    #[test]
    fn utf16_with_bom_decodes() {
        let b = utf16le("userId,email\nä,ä@x.io\n", true);
        let enc = sniff(&b).unwrap();
        assert_eq!(enc, Encoding::Utf16Le);
        let (d, _) = decode(&b, enc).unwrap();
        assert_eq!(&d[..], "userId,email\nä,ä@x.io\n".as_bytes());
    }

    #[test]
    fn utf16_without_bom_is_refused() {
        let b = utf16le("userId,email\na,a@x.io\n", false);
        assert_eq!(sniff(&b).unwrap_err().code, Code::InvalidEncoding);
    }

    /// `bytes` through a transcoder in parts of `n` bytes.
    fn in_parts(bytes: &[u8], encoding: Encoding, n: usize) -> Result<Vec<u8>, Issue> {
        let mut t = Transcoder::new(encoding).unwrap();
        let mut out = Vec::new();
        for part in bytes.chunks(n) {
            t.feed(part, &mut out);
        }
        t.finish().map(|()| out)
    }

    #[test]
    fn a_file_converted_in_parts_is_converted_as_whole() {
        let text = "userId,name\n1,Zo\u{eb} \u{1F600}\n2,\u{20AC}\u{FEFF}\n";
        let be = utf16(text, false);
        let latin = b"userId,name\n1,Zo\xEB \x80\x9D\n";
        for (bytes, encoding) in [
            (utf16le(text, true), Encoding::Utf16Le),
            (utf16le(text, false), Encoding::Utf16Le),
            (be, Encoding::Utf16Be),
            (latin.to_vec(), Encoding::Windows1252),
        ] {
            let (whole, _) = decode(&bytes, encoding).unwrap();
            if encoding != Encoding::Windows1252 {
                assert_eq!(&whole[..], text.as_bytes());
            }
            for n in 1..8 {
                assert_eq!(in_parts(&bytes, encoding, n).unwrap(), &whole[..], "{n}");
            }
        }
    }

    #[test]
    fn an_odd_end_is_named_before_an_unpaired_surrogate() {
        let mut b = utf16le("userId\nok\n", true);
        b.extend_from_slice(&0xDC00u16.to_le_bytes());
        b.extend_from_slice(b"\n\0\n");
        for n in [1, 2, 3, 64] {
            let e = in_parts(&b, Encoding::Utf16Le, n).unwrap_err();
            assert!(e.message.contains("middle of a character"), "{e:?}");
            assert_eq!(e.line, Some(3));
            b.pop();
            let e = in_parts(&b, Encoding::Utf16Le, n).unwrap_err();
            assert!(e.message.contains("0xdc00"), "{e:?}");
            assert_eq!(e.line, Some(3));
            b.push(b'\n');
        }
        // A high surrogate at the very end has no low half.
        let mut b = utf16le("a\n", true);
        b.extend_from_slice(&0xD83Du16.to_le_bytes());
        assert_eq!(
            in_parts(&b, Encoding::Utf16Le, 1).unwrap_err().line,
            Some(2)
        );
    }

    #[test]
    fn unpaired_surrogate_names_its_line() {
        let mut b = utf16le("userId\nok\n", true);
        b.extend_from_slice(&0xD800u16.to_le_bytes());
        let e = decode(&b, Encoding::Utf16Le).unwrap_err();
        assert_eq!(e.line, Some(3));
    }
}
