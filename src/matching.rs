//! The matching policy: how keys, emails, roles and references are compared
//! — one policy, applied the same way to the file and to the directory.
//!
//! [`normalize`] is its definition: surrounding whitespace removed, Unicode
//! NFC, then lower-cased. Every other form here (equality, ordering, hashing,
//! a sortable prefix) gives what comparing normalized values would give,
//! with a fast path for ASCII values, which are already in NFC; a property
//! test holds each fast form equal to the definition.

use unicode_normalization::UnicodeNormalization;

/// `str::trim`, with a fast path for the common case of a value that starts
/// and ends with a visible ASCII character (no Unicode table lookups).
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if f > b' ' && f < 0x80 && l > b' ' && l < 0x80 => s,
        (None, _) => s,
        _ => s.trim(),
    }
}

/// The normalization used to match keys, emails, roles and references — one
/// policy, applied the same way to the file and to the directory: surrounding
/// whitespace removed (spaces, non-breaking spaces, any Unicode white
/// space), composed to Unicode NFC (so `e` followed by a combining acute
/// accent is `é`), then lower-cased (full Unicode lower-casing).
///
/// ```
/// use user_import::normalize;
/// assert_eq!(normalize(" John.Doe@Example.COM "), "john.doe@example.com");
/// assert_eq!(normalize("ÉLODIE"), "élodie");
/// assert_eq!(normalize("E\u{301}lodie\u{a0}"), "élodie");
/// ```
pub fn normalize(value: &str) -> String {
    let mut out = String::new();
    normalize_into(value, &mut out);
    out
}

/// [`normalize`] written into `out` (cleared first), reusing its buffer:
/// the one implementation of the policy.
pub(crate) fn normalize_into(value: &str, out: &mut String) {
    out.clear();
    let v = trim(value);
    if v.is_ascii() {
        out.push_str(v);
        out.make_ascii_lowercase();
    } else {
        // NFC first, then `str::to_lowercase` (final sigma and all), whose
        // result is NFC again for every character a user id holds in
        // practice; a value whose lower case is not composed is composed
        // once more, so the form is a fixed point.
        let composed: String = v.nfc().collect();
        let lower = composed.to_lowercase();
        if unicode_normalization::is_nfc(&lower) {
            out.push_str(&lower);
        } else {
            out.extend(lower.nfc());
        }
    }
}

/// `normalize(a) == normalize(b)`, without allocating for ASCII.
pub(crate) fn same(a: &str, b: &str) -> bool {
    // Most values compared are found by an equal hash and written alike.
    if a == b {
        return true;
    }
    let (a, b) = (trim(a), trim(b));
    if a.is_ascii() && b.is_ascii() {
        // Lower-casing ASCII keeps the length; compare a word at a time.
        a.len() == b.len() && eq_ascii_fold(a.as_bytes(), b.as_bytes())
    } else {
        normalize(a) == normalize(b)
    }
}

/// `a.eq_ignore_ascii_case(b)` for ASCII slices of equal length, eight bytes
/// at a time.
fn eq_ascii_fold(a: &[u8], b: &[u8]) -> bool {
    let word = |chunk: &[u8]| {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        ascii_lowercase_word(u64::from_le_bytes(buf))
    };
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    (&mut ca)
        .zip(&mut cb)
        .all(|(x, y)| x == y || word(x) == word(y))
        && word(ca.remainder()) == word(cb.remainder())
}

/// A byte of 1 in each of a word's eight bytes (for reading eight bytes at
/// a time: `n * ONES` is the byte `n` eight times).
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// The top bit of each of a word's eight bytes.
pub(crate) const HIGH: u64 = 0x80 * ONES;

/// `w`'s eight bytes, all ASCII, with `A`–`Z` lower-cased (a SWAR version of
/// `u8::to_ascii_lowercase`: no byte's sum carries into the next, as every
/// byte is below 0x80).
pub(crate) fn ascii_lowercase_word(w: u64) -> u64 {
    let at_least_a = w.wrapping_add((0x80 - u64::from(b'A')) * ONES);
    let above_z = w.wrapping_add((0x80 - u64::from(b'Z') - 1) * ONES);
    let upper = at_least_a & !above_z & HIGH;
    w | (upper >> 2)
}

/// The hash of a value's normalized form (see [`normalize`]) under `seed`;
/// allocation-free for ASCII values, which are lower-cased eight bytes at a
/// time as they are hashed. Only compared within one process (sorted
/// indexes, where equal hashes are then compared as values), never stored.
pub(crate) fn key_hash(seed: u64, value: &str) -> u64 {
    let v = trim(value);
    if v.is_ascii() {
        hash_words(seed, v.as_bytes(), true)
    } else {
        // Already lower case: the same bytes an ASCII value lower-cases to.
        hash_words(seed, normalize(v).as_bytes(), false)
    }
}

/// A folded-multiply hash (as foldhash's) of `bytes` read as little-endian
/// words, the last one zero-padded, with the length mixed in first;
/// each word ASCII-lower-cased first when `lower`.
#[inline]
fn hash_words(seed: u64, bytes: &[u8], lower: bool) -> u64 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let fold = |a: u64, b: u64| {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    };
    let word = |chunk: &[u8]| {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        let w = u64::from_le_bytes(buf);
        if lower { ascii_lowercase_word(w) } else { w }
    };
    let mut acc = fold(seed ^ K1, bytes.len() as u64 ^ K2);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        acc = fold(acc ^ word(chunk), K1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        acc = fold(acc ^ word(rest), K1);
    }
    fold(acc, K2)
}

/// Compares user ids as [`normalize`] would, without allocating for ASCII.
pub(crate) fn cmp_ids(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        let (a, b) = (trim(a), trim(b));
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    } else {
        normalize(a).cmp(&normalize(b))
    }
}

/// `rank` and the first 15 bytes of the normalized `id`, zero-padded, as
/// two integers that order as (rank, `cmp_ids`) does as far as they go (a
/// shorter id sorts first; equal prefixes must compare whole ids). Most ids
/// are shorter than 15 bytes, so most compare on the prefix alone; a
/// shorter prefix would make many ids tie ("jschroder15…"), and ties
/// compare whole ids.
pub(crate) fn id_prefix(rank: u8, id: &str) -> (u64, u64) {
    let id = trim(id);
    let mut p = [0u8; 16];
    p[0] = rank;
    if id.is_ascii() {
        for (slot, c) in p[1..].iter_mut().zip(id.bytes()) {
            *slot = c.to_ascii_lowercase();
        }
    } else {
        for (slot, c) in p[1..].iter_mut().zip(normalize(id).bytes()) {
            *slot = c;
        }
    }
    let (hi, lo) = p.split_at(8);
    let word = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    (word(hi), word(lo))
}

/// The first character of `value` that cannot be seen and would make it
/// look like another identity (`admin` followed by a zero-width space looks
/// like `admin`), with its name: zero-width spaces and joiners, invisible
/// operators and fillers, a byte order mark, soft hyphens, and the
/// bidirectional controls (marks, embeddings, overrides and isolates).
/// Identity values that hold one are refused, not matched.
///
/// ```
/// # use user_import::Importer;
/// let v = Importer::new("t").validate("userId,email\nadmin\u{200b},a@x.io\n".as_bytes(), None);
/// assert!(v.issues().next().unwrap().message.contains("U+200B ZERO WIDTH SPACE"));
/// ```
pub(crate) fn invisible(value: &str) -> Option<(char, &'static str)> {
    if value.is_ascii() {
        return None;
    }
    value.chars().find_map(|c| {
        let name = match c {
            '\u{00ad}' => "SOFT HYPHEN",
            '\u{034f}' => "COMBINING GRAPHEME JOINER",
            '\u{061c}' => "ARABIC LETTER MARK",
            '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' => "HANGUL FILLER",
            '\u{17b4}' | '\u{17b5}' => "KHMER INHERENT VOWEL",
            '\u{180e}' => "MONGOLIAN VOWEL SEPARATOR",
            '\u{200b}' => "ZERO WIDTH SPACE",
            '\u{200c}' => "ZERO WIDTH NON-JOINER",
            '\u{200d}' => "ZERO WIDTH JOINER",
            '\u{200e}' => "LEFT-TO-RIGHT MARK",
            '\u{200f}' => "RIGHT-TO-LEFT MARK",
            '\u{202a}' => "LEFT-TO-RIGHT EMBEDDING",
            '\u{202b}' => "RIGHT-TO-LEFT EMBEDDING",
            '\u{202c}' => "POP DIRECTIONAL FORMATTING",
            '\u{202d}' => "LEFT-TO-RIGHT OVERRIDE",
            '\u{202e}' => "RIGHT-TO-LEFT OVERRIDE",
            '\u{2060}' => "WORD JOINER",
            '\u{2061}'..='\u{2064}' => "INVISIBLE OPERATOR",
            '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
            '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
            '\u{2068}' => "FIRST STRONG ISOLATE",
            '\u{2069}' => "POP DIRECTIONAL ISOLATE",
            '\u{feff}' => "ZERO WIDTH NO-BREAK SPACE",
            _ => return None,
        };
        Some((c, name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_is_equality_of_normalized_values() {
        let base = "Jo.Garcia-Martinez_07@Example.ORG";
        let mut values: Vec<String> = Vec::new();
        for len in 0..=base.len() {
            let v = &base[..len];
            values.push(v.to_owned());
            values.push(v.to_ascii_lowercase());
            values.push(format!("  {v} "));
            // One byte changed at each position, in and out of the letters.
            for pos in 0..len {
                for c in ['@', '[', '`', '{', 'z', 'Z', '0'] {
                    let mut w = v.to_owned();
                    w.replace_range(pos..pos + 1, &c.to_string());
                    values.push(w);
                }
            }
        }
        values.extend([
            "\u{212a}".into(),
            "k".into(),
            "K".into(),
            "Émile".into(),
            "émile".into(),
        ]);
        for a in &values {
            for b in values.iter().step_by(7) {
                assert_eq!(same(a, b), normalize(a) == normalize(b), "{a:?} vs {b:?}");
                assert_eq!(same(b, a), same(a, b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn words_are_lower_cased_like_bytes() {
        for b in 0u8..0x80 {
            for pos in 0..8 {
                let mut bytes = *b"xYz09_@Q";
                bytes[pos] = b;
                let want = u64::from_le_bytes(bytes.map(|c| c.to_ascii_lowercase()));
                assert_eq!(
                    ascii_lowercase_word(u64::from_le_bytes(bytes)),
                    want,
                    "{b:#x} at {pos}"
                );
            }
        }
    }

    #[test]
    fn the_hash_is_of_the_normalized_value() {
        let h = |v: &str| key_hash(7, v);
        for (a, b) in [
            ("  JDoe ", "jdoe"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"),
            ("ÉMILE", "émile"),
            (
                "Søren.Okafor@Corp.Example.ORG",
                "søren.okafor@corp.example.org",
            ),
            ("", "  "),
        ] {
            assert_eq!(h(a), h(b), "{a:?} vs {b:?}");
            assert_eq!(h(a), h(&normalize(a)), "{a:?}");
        }
        // Different values, including ones that pad to the same words.
        let values = [
            "a",
            "a\u{1}",
            "ab",
            "b",
            "abcdefgh",
            "abcdefgh\u{1}",
            "abcdefghi",
            "émile",
            "emile",
        ];
        for (i, a) in values.iter().enumerate() {
            for b in &values[i + 1..] {
                assert_ne!(h(a), h(b), "{a:?} vs {b:?}");
            }
        }
    }
    #[test]
    fn normalizing_into_a_used_buffer_gives_what_normalize_gives() {
        let mut out = String::from("left over from before, longer than the values");
        for (v, want) in [
            ("  JDoe ", "jdoe"),
            ("", ""),
            ("   ", ""),
            ("ÉLODIE", "élodie"),
            // `str::to_lowercase`: a final capital sigma becomes ς.
            ("ΟΔΥΣΣΕΥΣ", "οδυσσευς"),
            ("a@B.io", "a@b.io"),
            // Unicode NFC: a decomposed é is the composed one; white space
            // around, a non-breaking space among it, is trimmed.
            ("E\u{301}LODIE", "élodie"),
            ("\u{a0}élodie\u{a0}", "élodie"),
            // The Kelvin sign composes to K.
            ("\u{212a}", "k"),
        ] {
            normalize_into(v, &mut out);
            assert_eq!(out, want, "{v:?}");
            assert_eq!(normalize(v), want, "{v:?}");
            let mut fresh = String::new();
            normalize_into(v, &mut fresh);
            assert_eq!(fresh, want, "{v:?}");
        }
    }

    /// Pieces of values: ASCII in both cases, white space (a non-breaking
    /// space among it), composed and decomposed accents, and characters
    /// whose lower case or composition changes their length.
    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop::sample::select(vec![
                "a",
                "B",
                "z",
                "Z",
                "0",
                ".",
                "@",
                "-",
                " ",
                "\u{a0}",
                "e\u{301}",
                "é",
                "É",
                "E\u{301}",
                "\u{212a}",
                "k",
                "ß",
                "Σ",
                "σ",
                "ς",
                "İ",
                "i\u{307}",
                "ﬁ",
                "\u{2126}",
                "ω",
                "abcdefghijklmnop",
            ]),
            0..6,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        /// Every fast form of the policy agrees with `normalize`, its
        /// definition, on ASCII and non-ASCII values alike.
        #[test]
        fn every_form_agrees_with_the_definition(a in value(), b in value()) {
            let (na, nb) = (normalize(&a), normalize(&b));
            proptest::prop_assert_eq!(normalize(&na), na.clone(), "a fixed point");
            proptest::prop_assert_eq!(same(&a, &b), na == nb);
            if na == nb {
                proptest::prop_assert_eq!(key_hash(3, &a), key_hash(3, &b));
                proptest::prop_assert_eq!(id_prefix(1, &a), id_prefix(1, &b));
            }
            proptest::prop_assert_eq!(cmp_ids(&a, &b), na.cmp(&nb));
            // The prefix orders as far as it goes.
            match id_prefix(0, &a).cmp(&id_prefix(0, &b)) {
                std::cmp::Ordering::Equal => {}
                order => proptest::prop_assert_eq!(order, na.cmp(&nb)),
            }
            let mut buf = String::from("used");
            normalize_into(&a, &mut buf);
            proptest::prop_assert_eq!(buf, na);
        }
    }
}
