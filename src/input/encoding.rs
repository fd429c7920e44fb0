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
/// per field with their line. UTF-16 is decoded whole; an unpaired surrogate is
/// an `invalid_encoding` error naming its line.
pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> Result<(Cow<'_, [u8]>, Encoding), Issue> {
    match encoding {
        Encoding::Utf8 => Ok((Cow::Borrowed(bytes), encoding)),
        Encoding::Utf8Bom => Ok((
            Cow::Borrowed(bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes)),
            encoding,
        )),
        Encoding::Windows1252 => {
            let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
            out.extend(bytes.iter().map(|&b| windows_1252(b)));
            Ok((Cow::Owned(out.into_bytes()), encoding))
        }
        Encoding::Utf16Le | Encoding::Utf16Be => {
            // The byte order mark, when there is one, is not text.
            let bom: &[u8] = if encoding == Encoding::Utf16Le {
                &[0xFF, 0xFE]
            } else {
                &[0xFE, 0xFF]
            };
            let body = bytes.strip_prefix(bom).unwrap_or(bytes);
            if !body.len().is_multiple_of(2) {
                let line = 1 + body.iter().filter(|&&b| b == b'\n').count() as u64 / 2;
                return Err(Issue::error(
                    Code::InvalidEncoding,
                    "the UTF-16 file ends in the middle of a character",
                )
                .at(line.max(1)));
            }
            let units = body.chunks_exact(2).map(|c| {
                if encoding == Encoding::Utf16Le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            });
            let mut out = String::with_capacity(body.len() / 2 + body.len() / 8);
            let mut line = 1u64;
            for c in char::decode_utf16(units) {
                match c {
                    Ok(c) => {
                        if c == '\n' {
                            line += 1;
                        }
                        out.push(c);
                    }
                    Err(e) => {
                        return Err(Issue::error(
                            Code::InvalidEncoding,
                            format!(
                                "invalid UTF-16: unpaired surrogate {:#06x}",
                                e.unpaired_surrogate()
                            ),
                        )
                        .at(line));
                    }
                }
            }
            Ok((Cow::Owned(out.into_bytes()), encoding))
        }
    }
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
        let mut v = if bom { vec![0xFF, 0xFE] } else { vec![] };
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
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

    #[test]
    fn unpaired_surrogate_names_its_line() {
        let mut b = utf16le("userId\nok\n", true);
        b.extend_from_slice(&0xD800u16.to_le_bytes());
        let e = decode(&b, Encoding::Utf16Le).unwrap_err();
        assert_eq!(e.line, Some(3));
    }
}
