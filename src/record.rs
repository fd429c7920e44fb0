//! The typed user record, shared by the file side and the directory side
//! (the policy that matches its values is `matching`).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::matching::trim;
use crate::schema::Field;

const SLOTS: usize = Field::ATTRIBUTES.len();

/// A user's attributes: the standard fields ([`Field`]) (without the row
/// directives `tenant`, `transaction`, `notifyIfNewUser`) plus custom
/// attributes.
///
/// The same type describes a row of the file and a user of the directory, and
/// values are stored in one canonical form so the two compare directly:
/// values are trimmed; booleans are `true`/`false`; `taskNotification` is
/// `OFF`/`Email`; lists (`roles`, `permissions`, list attributes) are sorted,
/// de-duplicated and joined by their separator (`|` for roles, `,` for
/// permissions). Planning treats an absent value and a blank one alike
/// (`==` on two users does not: it compares what was given).
///
/// Internally the values share one allocation; a user costs a few dozen bytes
/// more than its text.
///
/// ```
/// use user_import::{Field, User};
/// let u = User::builder()
///     .set(Field::UserId, " jdoe ")
///     .set(Field::Email, "John.Doe@example.com")
///     .set(Field::Roles, "Tester|Admin|Tester")
///     .set(Field::Enabled, "YES")
///     .build();
/// assert_eq!(u.user_id(), Some("jdoe"));
/// assert_eq!(u.get(Field::Roles), Some("Admin|Tester"));
/// assert_eq!(u.enabled(), Some(true));
/// assert_eq!(u.roles().collect::<Vec<_>>(), ["Admin", "Tester"]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct User {
    text: Box<str>,
    /// Where each slot but the last ends in `text` (the last ends where the
    /// text does), in the low 13 bits; the top bit says whether the slot is
    /// present, and bit 14 of `ends[0]` whether the last slot is. All zero
    /// when the text is longer than [`NARROW_MAX`] bytes: `extra.wide` has
    /// the ends and flags then. (So the flags take no bytes of their own.)
    ends: [u16; SLOTS - 1],
    /// What few users have, boxed so the others pay 8 bytes for it.
    extra: Option<Box<Extra>>,
}

/// The longest text whose value ends fit the 13 bits `User::ends` gives them.
const NARROW_MAX: usize = END_BITS as usize;
const END_BITS: u16 = 0x1fff;
const PRESENT: u16 = 0x8000;
const LAST_PRESENT: u16 = 0x4000;

/// Custom attributes, and the value ends of a user whose text is longer
/// than [`NARROW_MAX`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
struct Extra {
    custom: BTreeMap<String, String>,
    wide: Option<Wide>,
}

/// Where each slot's value ends, and which are present, for a long text.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Wide {
    ends: [u32; SLOTS],
    present: u16,
}

impl User {
    /// A builder for a user.
    ///
    /// ```
    /// let u = user_import::User::builder().set(user_import::Field::UserId, "a").build();
    /// assert_eq!(u.user_id(), Some("a"));
    /// ```
    pub fn builder() -> UserBuilder {
        UserBuilder {
            // Room for a typical user's values, so building one does not
            // grow the buffer value by value.
            scratch: String::with_capacity(128),
            ..UserBuilder::default()
        }
    }

    /// The value of a standard field, `None` when absent. Always `None` for the
    /// row directives (`tenant`, `transaction`, `notifyIfNewUser`).
    ///
    /// ```
    /// use user_import::{Field, User};
    /// let u = User::builder().set(Field::LastName, "Doe").build();
    /// assert_eq!(u.get(Field::LastName), Some("Doe"));
    /// assert_eq!(u.get(Field::FirstName), None);
    /// ```
    pub fn get(&self, field: Field) -> Option<&str> {
        let slot = field.slot()?;
        if let Some(wide) = self.extra.as_deref().and_then(|e| e.wide.as_ref()) {
            if wide.present & (1 << slot) == 0 {
                return None;
            }
            let start = if slot == 0 { 0 } else { wide.ends[slot - 1] };
            return self.text.get(start as usize..wide.ends[slot] as usize);
        }
        let start = match slot.checked_sub(1) {
            None => 0,
            Some(before) => (self.ends[before] & END_BITS) as usize,
        };
        let end = match self.ends.get(slot) {
            Some(&e) if e & PRESENT != 0 => (e & END_BITS) as usize,
            Some(_) => return None,
            None if self.ends[0] & LAST_PRESENT != 0 => self.text.len(),
            None => return None,
        };
        self.text.get(start..end)
    }

    /// Each slot's value in slot order (`None`: absent), read in one pass
    /// (where `get` for each field would work out every start again).
    fn slots(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        let present = self.present();
        let mut ends = [0usize; SLOTS];
        match self.extra.as_deref().and_then(|e| e.wide.as_ref()) {
            Some(wide) => {
                for (e, &w) in ends.iter_mut().zip(&wide.ends) {
                    *e = w as usize;
                }
            }
            None => {
                for (e, &n) in ends.iter_mut().zip(&self.ends) {
                    *e = (n & END_BITS) as usize;
                }
                ends[SLOTS - 1] = self.text.len();
            }
        }
        let mut start = 0;
        ends.into_iter().enumerate().map(move |(slot, end)| {
            let value = if present & (1 << slot) != 0 {
                self.text.get(start..end)
            } else {
                None
            };
            start = end;
            value
        })
    }

    /// Which slots are present, one bit each.
    fn present(&self) -> u16 {
        if let Some(wide) = self.extra.as_deref().and_then(|e| e.wide.as_ref()) {
            return wide.present;
        }
        let mut present = u16::from(self.ends[0] & LAST_PRESENT != 0) << (SLOTS - 1);
        for (slot, &e) in self.ends.iter().enumerate() {
            present |= u16::from(e & PRESENT != 0) << slot;
        }
        present
    }

    /// The value, with blank values treated as absent.
    pub(crate) fn value(&self, field: Field) -> Option<&str> {
        self.get(field).filter(|v| !v.is_empty())
    }

    /// The user id.
    ///
    /// ```
    /// assert_eq!(user_import::User::default().user_id(), None);
    /// ```
    pub fn user_id(&self) -> Option<&str> {
        self.value(Field::UserId)
    }

    /// The email address as written.
    ///
    /// ```
    /// let u = user_import::User::builder().set(user_import::Field::Email, "A@x.io").build();
    /// assert_eq!(u.email(), Some("A@x.io"));
    /// ```
    pub fn email(&self) -> Option<&str> {
        self.value(Field::Email)
    }

    /// `enabled` as a boolean, when set.
    ///
    /// ```
    /// let u = user_import::User::builder().set(user_import::Field::Enabled, "no").build();
    /// assert_eq!(u.enabled(), Some(false));
    /// ```
    pub fn enabled(&self) -> Option<bool> {
        self.value(Field::Enabled).and_then(parse_bool)
    }

    /// The roles, sorted.
    ///
    /// ```
    /// let u = user_import::User::builder().set(user_import::Field::Roles, "b|a").build();
    /// assert_eq!(u.roles().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn roles(&self) -> impl Iterator<Item = &str> + '_ {
        self.list(Field::Roles)
    }

    /// The items of a list field (`roles`, `permissions`); empty for others.
    ///
    /// ```
    /// use user_import::{Field, User};
    /// let u = User::builder().set(Field::Permissions, "Products Write, Products Read").build();
    /// assert_eq!(u.list(Field::Permissions).collect::<Vec<_>>(), ["Products Read", "Products Write"]);
    /// ```
    pub fn list(&self, field: Field) -> impl Iterator<Item = &str> + '_ {
        let sep = field.list_separator().unwrap_or('\0');
        self.value(field)
            .into_iter()
            .flat_map(move |v| v.split(sep))
            .filter(|s| !s.is_empty())
    }

    /// A custom attribute's value.
    ///
    /// ```
    /// let u = user_import::User::builder().custom("costCenter", "42").build();
    /// assert_eq!(u.custom("costCenter"), Some("42"));
    /// ```
    pub fn custom(&self, name: &str) -> Option<&str> {
        self.extra.as_ref()?.custom.get(name).map(String::as_str)
    }

    /// All custom attributes, sorted by name.
    ///
    /// ```
    /// let u = user_import::User::builder().custom("b", "2").custom("a", "1").build();
    /// assert_eq!(u.customs().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// ```
    pub fn customs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.extra
            .iter()
            .flat_map(|e| e.custom.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The standard fields that are present, in canonical order, with their values.
    ///
    /// ```
    /// use user_import::{Field, User};
    /// let u = User::builder().set(Field::Email, "a@b.io").set(Field::UserId, "a").build();
    /// assert_eq!(u.fields().collect::<Vec<_>>(), [(Field::UserId, "a"), (Field::Email, "a@b.io")]);
    /// ```
    pub fn fields(&self) -> impl Iterator<Item = (Field, &str)> + '_ {
        Field::ATTRIBUTES
            .iter()
            .zip(self.slots())
            .filter_map(|(&f, v)| v.map(|v| (f, v)))
    }

    /// A builder holding this user's values, to change some of them.
    ///
    /// ```
    /// use user_import::{Field, User};
    /// let u = User::builder().set(Field::UserId, "a").build();
    /// let v = u.to_builder().set(Field::LastName, "Doe").build();
    /// assert_eq!((v.user_id(), v.get(Field::LastName)), (Some("a"), Some("Doe")));
    /// ```
    pub fn to_builder(&self) -> UserBuilder {
        let mut b = UserBuilder::default();
        b.scratch.reserve(self.text.len());
        for (f, v) in self.fields() {
            b.put_canonical(f, v);
        }
        if let Some(e) = &self.extra {
            b.custom = e.custom.clone();
        }
        b
    }

    /// Heap bytes this user holds (for the benchmarks' memory accounting).
    #[doc(hidden)]
    pub fn heap_size(&self) -> usize {
        self.text.len()
            + self.extra.as_ref().map_or(0, |e| {
                std::mem::size_of::<Extra>()
                    + e.custom
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 48)
                        .sum::<usize>()
            })
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for User {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<User> {
        let fields: Vec<(Field, String)> = u.arbitrary()?;
        let custom: Vec<(String, String)> = u.arbitrary()?;
        let mut b = User::builder();
        for (f, v) in &fields {
            b.put(*f, v);
        }
        for (k, v) in custom.into_iter().take(4) {
            b.put_custom(k, &v);
        }
        Ok(b.build())
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (field, v) in self.fields() {
            m.entry(&field.header(), &v);
        }
        for (k, v) in self.customs() {
            m.entry(&k, &v);
        }
        m.finish()
    }
}

/// Builds a [`User`]; every setter canonicalizes its value (see [`User`]).
///
/// ```
/// use user_import::{Field, User};
/// let mut b = User::builder();
/// b.put(Field::UserId, "jdoe");
/// b.put(Field::TaskNotification, "off");
/// let u = b.build();
/// assert_eq!(u.get(Field::TaskNotification), Some("OFF"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct UserBuilder {
    scratch: String,
    spans: [Option<(u32, u32)>; SLOTS],
    custom: BTreeMap<String, String>,
}

impl UserBuilder {
    /// Sets a standard field (by value, for chaining). Row directives
    /// (`tenant`, `transaction`, `notifyIfNewUser`) are not user attributes and
    /// are ignored.
    ///
    /// ```
    /// let u = user_import::User::builder().set(user_import::Field::Sso, "1").build();
    /// assert_eq!(u.get(user_import::Field::Sso), Some("true"));
    /// ```
    pub fn set(mut self, field: Field, value: &str) -> UserBuilder {
        self.put(field, value);
        self
    }

    /// Sets a standard field in place.
    ///
    /// ```
    /// let mut b = user_import::User::builder();
    /// b.put(user_import::Field::FirstName, "  Ann ");
    /// assert_eq!(b.build().get(user_import::Field::FirstName), Some("Ann"));
    /// ```
    pub fn put(&mut self, field: Field, value: &str) -> &mut UserBuilder {
        let value = trim(value);
        if let Some(sep) = field.list_separator() {
            if is_canonical_list(value, sep) {
                return self.put_canonical(field, value);
            }
            let mut items: Vec<&str> = value
                .split(sep)
                .map(trim)
                .filter(|s| !s.is_empty())
                .collect();
            items.sort_unstable();
            items.dedup();
            let start = self.scratch.len();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.scratch.push(sep);
                }
                self.scratch.push_str(item);
            }
            self.record(field, start);
            return self;
        }
        let canonical = canonical_scalar(field, value);
        self.put_canonical(field, canonical)
    }

    /// Sets a value already in canonical form.
    pub(crate) fn put_canonical(&mut self, field: Field, value: &str) -> &mut UserBuilder {
        let start = self.scratch.len();
        self.scratch.push_str(value);
        self.record(field, start);
        self
    }

    fn record(&mut self, field: Field, start: usize) {
        if let Some(slot) = field.slot() {
            let end = self.scratch.len();
            match (u32::try_from(start), u32::try_from(end)) {
                (Ok(s), Ok(e)) => self.spans[slot] = Some((s, e)),
                // Values this large never come from a file (the field limit is
                // far lower); refuse to store them rather than wrap.
                _ => self.scratch.truncate(start),
            }
        } else {
            self.scratch.truncate(start);
        }
    }

    /// Removes a standard field.
    ///
    /// ```
    /// use user_import::{Field, User};
    /// let u = User::builder().set(Field::LastName, "x").unset(Field::LastName).build();
    /// assert_eq!(u.get(Field::LastName), None);
    /// ```
    pub fn unset(mut self, field: Field) -> UserBuilder {
        if let Some(slot) = field.slot() {
            self.spans[slot] = None;
        }
        self
    }

    /// Sets a custom attribute (trimmed).
    ///
    /// ```
    /// let u = user_import::User::builder().custom("shirt", " M ").build();
    /// assert_eq!(u.custom("shirt"), Some("M"));
    /// ```
    pub fn custom(mut self, name: impl Into<String>, value: &str) -> UserBuilder {
        self.put_custom(name, value);
        self
    }

    /// Sets a custom attribute in place.
    ///
    /// ```
    /// let mut b = user_import::User::builder();
    /// b.put_custom("shirt", "L");
    /// assert_eq!(b.build().custom("shirt"), Some("L"));
    /// ```
    pub fn put_custom(&mut self, name: impl Into<String>, value: &str) -> &mut UserBuilder {
        self.custom.insert(name.into(), value.trim().to_owned());
        self
    }

    /// Removes a custom attribute.
    pub(crate) fn remove_custom(&mut self, name: &str) -> &mut UserBuilder {
        self.custom.remove(name);
        self
    }

    /// The finished user. The builder can be reused afterwards (it is cleared).
    ///
    /// ```
    /// let u = user_import::User::builder().build();
    /// assert_eq!(u, user_import::User::default());
    /// ```
    pub fn build(self) -> User {
        let mut b = self;
        b.take()
    }

    /// Builds the user and clears the builder for the next one, keeping its
    /// allocations (the hot path of validation).
    pub(crate) fn take(&mut self) -> User {
        // Values put once each in slot order (columns in the template's
        // order) already lie end to end: the text is the scratch buffer.
        let mut at = 0;
        let in_order = self.spans.iter().flatten().all(|&(s, e)| {
            let next = s == at;
            at = e;
            next
        }) && at as usize == self.scratch.len();
        let mut wide_ends = [0u32; SLOTS];
        let mut present = 0u16;
        let text = if in_order {
            let mut end = 0;
            for (slot, span) in self.spans.iter_mut().enumerate() {
                if let Some((_, e)) = span.take() {
                    end = e;
                    present |= 1 << slot;
                }
                wide_ends[slot] = end;
            }
            String::from(self.scratch.as_str())
        } else {
            let total: usize = self
                .spans
                .iter()
                .flatten()
                .map(|&(s, e)| (e - s) as usize)
                .sum();
            let mut text = String::with_capacity(total);
            for (slot, span) in self.spans.iter_mut().enumerate() {
                if let Some((s, e)) = span.take() {
                    text.push_str(self.scratch.get(s as usize..e as usize).unwrap_or(""));
                    present |= 1 << slot;
                }
                // `total` fits in u32 because every span end did.
                wide_ends[slot] = u32::try_from(text.len()).unwrap_or(u32::MAX);
            }
            text
        };
        self.scratch.clear();
        User::from_parts(text, wide_ends, present, std::mem::take(&mut self.custom))
    }
}

impl User {
    /// A user from its values laid end to end in slot order (`ends[slot]`
    /// where each slot's value ends; absent slots have `present` bit clear).
    fn from_parts(
        text: String,
        wide_ends: [u32; SLOTS],
        present: u16,
        custom: BTreeMap<String, String>,
    ) -> User {
        let mut ends = [0u16; SLOTS - 1];
        let wide = text.len() > NARROW_MAX;
        if !wide {
            for (slot, (e, &w)) in ends.iter_mut().zip(&wide_ends).enumerate() {
                // `w` <= the text's length <= NARROW_MAX.
                *e = u16::try_from(w).unwrap_or(END_BITS) & END_BITS;
                if present & (1 << slot) != 0 {
                    *e |= PRESENT;
                }
            }
            if present & (1 << (SLOTS - 1)) != 0 {
                ends[0] |= LAST_PRESENT;
            }
        }
        let extra = if custom.is_empty() && !wide {
            None
        } else {
            Some(Box::new(Extra {
                custom,
                wide: wide.then_some(Wide {
                    ends: wide_ends,
                    present,
                }),
            }))
        };
        User {
            text: text.into_boxed_str(),
            ends,
            extra,
        }
    }

    /// This user with only the standard fields `keep` (values as they are,
    /// blank ones too), or `None` when that is already all it has.
    pub(crate) fn keeping(&self, keep: &[Field]) -> Option<User> {
        let mask = keep
            .iter()
            .filter_map(|f| f.slot())
            .fold(0u16, |m, slot| m | 1 << slot);
        if self.present() & !mask == 0 && self.extra.as_ref().is_none_or(|e| e.custom.is_empty()) {
            return None;
        }
        let mut text =
            String::with_capacity(keep.iter().filter_map(|&f| self.get(f)).map(str::len).sum());
        let mut wide_ends = [0u32; SLOTS];
        let mut present = 0u16;
        for (slot, value) in self.slots().enumerate() {
            if mask & (1 << slot) != 0
                && let Some(v) = value
            {
                text.push_str(v);
                present |= 1 << slot;
            }
            wide_ends[slot] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Some(User::from_parts(text, wide_ends, present, BTreeMap::new()))
    }

    /// This user without its blank values (standard and custom), with
    /// `fill` given to the standard fields it then lacks. Values are taken
    /// as they are, so `fill` must be canonical (see [`User`]).
    pub(crate) fn without_blanks_filled(&self, fill: &[(Field, &str)]) -> User {
        let extra: usize = fill.iter().map(|(_, v)| v.len()).sum();
        let mut text = String::with_capacity(self.text.len() + extra);
        let mut wide_ends = [0u32; SLOTS];
        let mut present = 0u16;
        for (slot, (&f, value)) in Field::ATTRIBUTES.iter().zip(self.slots()).enumerate() {
            let value = value
                .filter(|v| !v.is_empty())
                .or_else(|| fill.iter().find(|(g, _)| *g == f).map(|(_, v)| *v));
            if let Some(v) = value {
                text.push_str(v);
                present |= 1 << slot;
            }
            wide_ends[slot] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        let custom = self
            .customs()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        User::from_parts(text, wide_ends, present, custom)
    }
}

/// Whether a list is already in canonical form: items without surrounding
/// spaces, none empty, strictly ascending (so sorted and without repeats).
fn is_canonical_list(value: &str, sep: char) -> bool {
    let mut prev: Option<&str> = None;
    for item in value.split(sep) {
        if item.is_empty() || trim(item).len() != item.len() || prev.is_some_and(|p| p >= item) {
            return false;
        }
        prev = Some(item);
    }
    true
}

fn canonical_scalar(field: Field, value: &str) -> &str {
    if field.is_bool() {
        return match parse_bool(value) {
            Some(true) => "true",
            Some(false) => "false",
            None => value,
        };
    }
    if field == Field::TaskNotification {
        return match parse_task_notification(value) {
            Some(v) => v,
            None => value,
        };
    }
    value
}

/// Parses a boolean the way the library reads files: `true`/`false`,
/// `yes`/`no`, `y`/`n`, `1`/`0`, `on`/`off`, in any case, surrounding
/// whitespace ignored.
///
/// ```
/// use user_import::helpers::parse_bool;
/// assert_eq!(parse_bool("TRUE"), Some(true));
/// assert_eq!(parse_bool(" no "), Some(false));
/// assert_eq!(parse_bool("maybe"), None);
/// ```
pub fn parse_bool(value: &str) -> Option<bool> {
    let v = trim(value);
    const TRUE: [&str; 5] = ["true", "yes", "y", "1", "on"];
    const FALSE: [&str; 5] = ["false", "no", "n", "0", "off"];
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(v)) {
        Some(true)
    } else if FALSE.iter().any(|t| t.eq_ignore_ascii_case(v)) {
        Some(false)
    } else {
        None
    }
}

/// `OFF` or `Email` in canonical spelling (any case accepted).
pub(crate) fn parse_task_notification(value: &str) -> Option<&'static str> {
    let v = trim(value);
    if v.eq_ignore_ascii_case("off") {
        Some("OFF")
    } else if v.eq_ignore_ascii_case("email") {
        Some("Email")
    } else {
        None
    }
}

/// Whether a row creates-or-updates its user or deletes it (the
/// `transaction` column).
///
/// ```
/// use user_import::Action;
/// assert_eq!(Action::default(), Action::Upsert);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Blank `transaction`: create the user, or update them if they exist.
    #[default]
    Upsert,
    /// `transaction=DELETE`.
    Delete,
}

impl Serialize for User {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let n = self.fields().count() + self.customs().count();
        let mut map = serializer.serialize_map(Some(n))?;
        for (f, v) in self.fields() {
            map.serialize_entry(f.header(), v)?;
        }
        for (k, v) in self.customs() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for User {
    /// Reads a map of header → value: canonical headers of the standard
    /// fields are read into those fields, any other name into a custom
    /// attribute.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<User, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = User;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<User, A::Error> {
                let mut b = User::builder();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    match Field::ALL.iter().find(|f| f.header() == k) {
                        Some(&f) => {
                            b.put(f, &v);
                        }
                        None => {
                            b.put_custom(k, &v);
                        }
                    }
                }
                Ok(b.build())
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_keeping_some_fields_has_those_values_only() {
        let keep = [Field::UserId, Field::Email, Field::ReportsTo];
        let long = "x".repeat(70_000); // past the 16-bit value ends
        for last in ["Doe", long.as_str()] {
            for blank_manager in [false, true] {
                let mut b = User::builder()
                    .set(Field::UserId, "jdoe")
                    .set(Field::LastName, last)
                    .set(Field::Email, "J@x.io")
                    .set(Field::Roles, "b|a")
                    .custom("costCenter", "42");
                if blank_manager {
                    b.put(Field::ReportsTo, "");
                }
                let u = b.build();
                let slim = u.keeping(&keep).expect("it has other values");
                for &f in Field::ATTRIBUTES {
                    let want = if keep.contains(&f) { u.get(f) } else { None };
                    assert_eq!(slim.get(f), want, "{f:?}");
                }
                assert_eq!(slim.customs().count(), 0);
                assert!(slim.heap_size() < 20);
                assert_eq!(slim.keeping(&keep), None, "nothing left to drop");
            }
        }
        // Custom values alone are dropped too.
        let u = User::builder()
            .set(Field::UserId, "a")
            .custom("k", "v")
            .build();
        assert_eq!(
            u.keeping(&keep),
            Some(User::builder().set(Field::UserId, "a").build())
        );
    }

    #[test]
    fn absent_fields_stay_absent_between_present_ones() {
        let u = User::builder()
            .set(Field::Email, "e@x.io")
            .set(Field::UserId, "u")
            .set(Field::TaskNotification, "email")
            .set(Field::FirstName, "")
            .build();
        assert_eq!(u.get(Field::UserId), Some("u"));
        assert_eq!(u.get(Field::FirstName), Some(""));
        assert_eq!(u.get(Field::LastName), None);
        assert_eq!(u.get(Field::Email), Some("e@x.io"));
        assert_eq!(u.get(Field::TaskNotification), Some("Email"));
        assert_eq!(u.get(Field::Tenant), None);
    }

    #[test]
    fn values_past_64_kib_keep_their_bounds() {
        // Ends are stored in 13 bits; a longer text keeps them as u32 aside
        // (the other values add 10 bytes: 8181 is the longest narrow one).
        for len in [8_180, 8_181, 8_182, u16::MAX as usize, 70_000, 300_000] {
            let long = "x".repeat(len);
            for custom in [false, true] {
                let mut b = User::builder()
                    .set(Field::UserId, "u")
                    .set(Field::LastName, &long)
                    .set(Field::Email, "e@x.io")
                    .set(Field::TaskNotification, "off");
                if custom {
                    b = b.custom("costCenter", "42");
                }
                let u = b.build();
                assert_eq!(u.get(Field::UserId), Some("u"), "{len}");
                assert_eq!(u.get(Field::LastName), Some(long.as_str()), "{len}");
                assert_eq!(u.get(Field::FirstName), None, "{len}");
                assert_eq!(u.email(), Some("e@x.io"), "{len}");
                assert_eq!(u.get(Field::TaskNotification), Some("OFF"), "{len}");
                assert_eq!(u.custom("costCenter"), custom.then_some("42"));
                assert_eq!(u.to_builder().build(), u, "{len}");
            }
        }
    }

    #[test]
    fn a_user_stays_small() {
        // Rows and create ops hold a user each: a million of them. The
        // text's box, the value ends (one u16 per slot but the last, the
        // presence flags in their top bits) and the box of extras.
        assert_eq!(
            std::mem::size_of::<User>(),
            (16 + 2 * (SLOTS - 1) + 8).next_multiple_of(8)
        );
        assert_eq!(std::mem::size_of::<User>(), 56);
    }

    #[test]
    fn every_mix_of_absent_blank_and_set_fields_reads_back() {
        // The first slot and the last (whose presence flags share ends[0]),
        // and two between, each absent, blank or set; short and long text.
        let fields = [
            Field::UserId,
            Field::Email,
            Field::Location,
            Field::TaskNotification,
        ];
        assert_eq!(Field::ATTRIBUTES.first(), Some(&Field::UserId));
        assert_eq!(Field::ATTRIBUTES.last(), Some(&Field::TaskNotification));
        let long = "y".repeat(NARROW_MAX);
        for filler in ["", long.as_str()] {
            for mask in 0..3usize.pow(fields.len() as u32) {
                let mut b = User::builder();
                if !filler.is_empty() {
                    b.put(Field::LastName, filler);
                }
                let mut want = Vec::new();
                let mut m = mask;
                for f in fields {
                    let value = match m % 3 {
                        0 => None,
                        1 => Some(""),
                        _ => Some(if f == Field::TaskNotification {
                            "OFF"
                        } else {
                            "v"
                        }),
                    };
                    if let Some(v) = value {
                        b.put(f, v);
                    }
                    want.push((f, value));
                    m /= 3;
                }
                let u = b.build();
                for (f, value) in want {
                    assert_eq!(
                        u.get(f),
                        value,
                        "{f:?} mask {mask} long {}",
                        !filler.is_empty()
                    );
                }
                assert_eq!(u.get(Field::FirstName), None);
                assert_eq!(u.to_builder().build(), u);
            }
        }
    }

    #[test]
    fn builder_reuse_does_not_leak_values() {
        let mut b = User::builder();
        b.put(Field::UserId, "a").put(Field::Email, "a@x.io");
        let a = b.take();
        b.put(Field::UserId, "b");
        let c = b.take();
        assert_eq!(a.email(), Some("a@x.io"));
        assert_eq!(c.email(), None);
        assert_eq!(c.user_id(), Some("b"));
    }

    #[test]
    fn a_user_is_the_same_whatever_order_its_values_were_put_in() {
        // Values put in slot order lie end to end (the text is copied at
        // once); any other order, a value put twice, or an unset value
        // takes the slot-by-slot path. All must build the same user.
        let values = [
            (Field::UserId, "jdoe"),
            (Field::FirstName, ""),
            (Field::Email, "j@x.io"),
            (Field::Roles, "b|A"),
            (Field::TaskNotification, "off"),
        ];
        let want = User::builder()
            .set(Field::UserId, "jdoe")
            .set(Field::FirstName, "")
            .set(Field::Email, "j@x.io")
            .set(Field::Roles, "A|b")
            .set(Field::TaskNotification, "OFF")
            .build();
        let mut b = User::builder();
        let mut orders = 0;
        // Every rotation, forwards and backwards, each with a value put
        // twice and with a field set then unset before or after.
        for turn in 0..values.len() {
            for backwards in [false, true] {
                for extra in 0..4 {
                    let mut order: Vec<(Field, &str)> = values.to_vec();
                    order.rotate_left(turn);
                    if backwards {
                        order.reverse();
                    }
                    match extra {
                        1 => order.insert(0, (Field::Email, "old@x.io")),
                        2 => {
                            b.put(Field::LastName, "gone");
                            b.spans[Field::LastName.slot().unwrap_or(0)] = None;
                        }
                        _ => {}
                    }
                    for (f, v) in order {
                        b.put(f, v);
                    }
                    if extra == 3 {
                        b.put(Field::LastName, "gone");
                        b.spans[Field::LastName.slot().unwrap_or(0)] = None;
                    }
                    let got = b.take();
                    assert_eq!(got, want, "turn {turn} backwards {backwards} extra {extra}");
                    assert_eq!(got.get(Field::LastName), None);
                    orders += 1;
                }
            }
        }
        assert_eq!(orders, 40);
        // The builder is empty again after each user.
        assert_eq!(b.take(), User::default());
    }

    #[test]
    fn role_lists_compare_as_sets() {
        let a = User::builder().set(Field::Roles, "B|A").build();
        let b = User::builder().set(Field::Roles, " A | B |A|").build();
        assert_eq!(a, b);
    }
}
