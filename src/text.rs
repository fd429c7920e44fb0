//! [`Text`]: the strings a plan holds for every row (keys, notices), kept
//! inline when short so a large plan does not make one small allocation
//! per row.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest string kept inline, in bytes (24 on 64-bit targets).
const INLINE: usize = std::mem::size_of::<String>();

/// An immutable string that keeps up to 24 bytes inline (no allocation) and
/// longer ones on the heap; 24 bytes either way, like a `String` (and an
/// `Option<Text>` too). (12 bytes on 32-bit targets.)
///
/// Plans and reports hold one or more per row (the row's key, a notice's
/// name and email): user ids and most emails are short, so a plan of many
/// rows does not pay an allocation for each of them. It reads like a `&str`
/// (`Deref<Target = str>`, without re-checking the bytes), compares and
/// hashes as its text, and serializes as a plain string. (Inside, a
/// [`compact_str`](https://docs.rs/compact_str) string; that type is not
/// part of this API.)
///
/// ```
/// use user_import::Text;
/// let id = Text::from("jdoe");
/// assert_eq!(id, "jdoe");
/// assert_eq!(id.len(), 4);
/// assert!(id.starts_with("jd"));
/// let long = Text::from("a.rather.long.address@example.com");
/// assert_eq!(long.as_str(), "a.rather.long.address@example.com");
/// assert_eq!(String::from(long), "a.rather.long.address@example.com");
/// ```
#[derive(Clone)]
pub struct Text(compact_str::CompactString);

impl Text {
    /// The text as a string slice.
    ///
    /// ```
    /// assert_eq!(user_import::Text::from("a").as_str(), "a");
    /// ```
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the text is stored inline (short enough not to allocate).
    ///
    /// ```
    /// use user_import::Text;
    /// assert!(Text::from("jdoe@example.com").is_inline());
    /// assert!(!Text::from("someone.with.a.long.name@example.com").is_inline());
    /// ```
    pub fn is_inline(&self) -> bool {
        !self.0.is_heap_allocated()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(compact_str::CompactString::new(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        if s.len() <= INLINE {
            Text::from(s.as_str())
        } else {
            // Keeps the string's buffer.
            Text(compact_str::CompactString::from(s))
        }
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::from(s.as_str())
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0.into_string()
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::from("")
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text::from(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text::from(v))
            }
            // As `String` does: formats that hand strings over as bytes.
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Text, E> {
                std::str::from_utf8(v)
                    .map(Text::from)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(v), &self))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Text, E> {
                String::from_utf8(v).map(Text::from).map_err(|e| {
                    E::invalid_value(serde::de::Unexpected::Bytes(e.as_bytes()), &self)
                })
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Text {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Text> {
        Ok(Text::from(<&str>::arbitrary(u)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_as_small_as_a_string_and_an_option_of_it_too() {
        assert_eq!(std::mem::size_of::<Text>(), std::mem::size_of::<String>());
        assert_eq!(
            std::mem::size_of::<Option<Text>>(),
            std::mem::size_of::<String>()
        );
    }

    #[test]
    fn keeps_every_string_exactly_at_and_around_the_inline_limit() {
        // ASCII and multi-byte characters, lengths 0..=30 bytes, so some cut
        // points fall inside a character of a longer string.
        for unit in ["a", "é", "€", "😀"] {
            let mut s = String::new();
            while s.len() <= 30 {
                let t = Text::from(s.as_str());
                assert_eq!(t.as_str(), s);
                assert_eq!(t.is_inline(), s.len() <= INLINE, "{s:?}");
                assert_eq!(Text::from(s.clone()), t);
                assert_eq!(String::from(t.clone()), s);
                s.push_str(unit);
            }
        }
    }

    #[test]
    fn compares_orders_and_hashes_as_its_text() {
        use std::collections::HashSet;
        let short = Text::from("b");
        let long = Text::from("a-long-user-id-beyond-the-inline-limit");
        assert!(long < short);
        assert_eq!(long.cmp(&short), "a-long".cmp("b"));
        let set: HashSet<Text> = [short.clone(), long.clone(), Text::from("b")].into();
        assert_eq!(set.len(), 2);
        assert!(set.contains("b"));
        assert_eq!(format!("{short} {short:?}"), "b \"b\"");
    }

    #[test]
    fn serializes_as_a_plain_string() {
        let t = Text::from("ünïcode and a long enough tail");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"ünïcode and a long enough tail\"");
        let back: Text = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        let short: Text = serde_json::from_str("\"\\u00e9t\\u00e9\"").unwrap();
        assert_eq!(short, "été");
    }

    #[test]
    fn deserializes_from_utf8_bytes_as_a_string_does() {
        use serde::de::value::{BytesDeserializer, Error};
        let t = Text::deserialize(BytesDeserializer::<Error>::new("jdoé".as_bytes())).unwrap();
        assert_eq!(t, "jdoé");
        assert!(Text::deserialize(BytesDeserializer::<Error>::new(&[0xff, 0xfe])).is_err());
    }
}
