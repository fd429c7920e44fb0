//! Change tokens in list cells, read under `ListPolicy::Tokens`: `+X` adds
//! the item `X`, `-X` removes it, and a cell of plain items replaces the
//! list. The first `+` or `-` of an item is always the token (`++C` adds the
//! item `+C`), so an item whose name begins with a sign is written with a
//! token, and a list that replaces never holds one.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::Serialize;

use crate::store::Attribute;

/// A list cell written as changes, under
/// [`ListPolicy::Tokens`](crate::ListPolicy::Tokens): the items it removes
/// are here, and the items it adds are the list's value in the row's
/// [`User`](crate::User) (so that they are checked, resolved against the
/// catalog and created exactly as the items of a plain list are). A row has
/// one edit for each list cell written with tokens, and none under the other
/// list policies.
///
/// ```
/// use user_import::{Attribute, Field, Importer, ListPolicy, Profile};
/// let mut p = Profile::default();
/// p.lists = ListPolicy::Tokens;
/// let v = Importer::with_profile("t", p).validate(b"userId,email,roles\na,a@x.io,+Admin|-Guest\n", None);
/// let row = &v.rows()[0];
/// assert_eq!(row.user.roles().collect::<Vec<_>>(), ["Admin"]);
/// assert_eq!(row.edits()[0].attribute, Attribute::Field(Field::Roles));
/// assert_eq!(row.edits()[0].remove, ["Guest"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ListEdit {
    /// The list: `roles`, `permissions` or a custom list attribute.
    pub attribute: Attribute,
    /// The items the cell removes (`-X`), trimmed, sorted, without
    /// duplicates.
    pub remove: Vec<String>,
}

impl ListEdit {
    /// The edit of `attribute`'s list that removes `remove` (sorted,
    /// without duplicates).
    pub(crate) fn new(attribute: Attribute, remove: &[&str]) -> ListEdit {
        ListEdit {
            attribute,
            remove: remove.iter().map(|&r| r.to_owned()).collect(),
        }
    }
}

/// The items of a list cell that changes the list.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Tokens<'a> {
    /// `+X` items, without their sign, in the cell's order.
    pub add: Vec<&'a str>,
    /// `-X` items, without their sign, sorted, without duplicates.
    pub remove: Vec<&'a str>,
}

/// Why a list cell cannot be read under tokens: an `invalid_value`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: &'static str,
    pub value: String,
    pub suggestion: Option<String>,
}

/// What two items of a list are compared by: names the directory knows
/// (roles, permissions) by the matching policy, the items of a custom list
/// attribute exactly (as the list diff compares them).
pub(crate) type Key = fn(&str) -> Cow<'_, str>;

fn normalized(item: &str) -> Cow<'_, str> {
    Cow::Owned(crate::matching::normalize(item))
}

fn exact(item: &str) -> Cow<'_, str> {
    Cow::Borrowed(item)
}

/// The key of the items of a standard list (roles, permissions).
pub(crate) const NAMES: Key = normalized;
/// The key of the items of a custom list attribute.
pub(crate) const ITEMS: Key = exact;

/// How the items of `attribute`'s list are compared.
pub(crate) fn key_of(attribute: &Attribute) -> Key {
    match attribute {
        Attribute::Field(_) => NAMES,
        Attribute::Custom(_) => ITEMS,
    }
}

fn items(cell: &str, sep: char) -> impl Iterator<Item = &str> {
    cell.split(sep)
        .map(crate::matching::trim)
        .filter(|s| !s.is_empty())
}

/// Reads a (non-blank) list cell: `Ok(None)` when no item is a token (the
/// cell replaces the list), `Ok(Some(_))` when every item is one.
///
/// # Errors
///
/// A cell that mixes plain items and tokens, holds a sign without a name,
/// or adds and removes the same item.
pub(crate) fn read(cell: &str, sep: char, key: Key) -> Result<Option<Tokens<'_>>, Problem> {
    let sign = |item: &str| item.starts_with(['+', '-']);
    if !items(cell, sep).any(sign) {
        return Ok(None);
    }
    if !items(cell, sep).all(sign) {
        let suggestion: Vec<String> = items(cell, sep)
            .map(|item| {
                if sign(item) {
                    item.to_owned()
                } else {
                    format!("+{item}")
                }
            })
            .collect();
        return Err(Problem {
            message: "mixes plain items with changes: write + or - before every item to change the list (+X adds X, -X removes it), or before none to replace it",
            value: cell.to_owned(),
            suggestion: Some(suggestion.join(&sep.to_string())),
        });
    }
    let mut tokens = Tokens::default();
    for item in items(cell, sep) {
        let (to, name) = match item.strip_prefix('+') {
            Some(name) => (&mut tokens.add, name),
            None => (&mut tokens.remove, item.get(1..).unwrap_or("")),
        };
        let name = crate::matching::trim(name);
        if name.is_empty() {
            return Err(Problem {
                message: "a + or - must be followed by the name of an item",
                value: item.to_owned(),
                suggestion: None,
            });
        }
        to.push(name);
    }
    tokens.remove.sort_unstable();
    tokens.remove.dedup();
    let removed: BTreeSet<Cow<'_, str>> = tokens.remove.iter().map(|r| key(r)).collect();
    if let Some(both) = tokens.add.iter().find(|a| removed.contains(&key(a))) {
        return Err(Problem {
            message: "adds and removes the same item: keep either its + or its -",
            value: (*both).to_owned(),
            suggestion: None,
        });
    }
    Ok(Some(tokens))
}

/// The list a change asks for: `(current ∪ add) ∖ remove`, items compared
/// by `key`, written into `out` (cleared first) in a list's canonical form
/// (sorted, without duplicates, joined by `sep`). An item the current list
/// holds keeps its spelling; `current` and `add` are lists joined by `sep`.
pub(crate) fn apply(
    current: Option<&str>,
    add: Option<&str>,
    remove: &[String],
    sep: char,
    key: Key,
    out: &mut String,
) {
    let removed: BTreeSet<Cow<'_, str>> = remove.iter().map(|r| key(r)).collect();
    let mut seen: BTreeSet<Cow<'_, str>> = BTreeSet::new();
    let mut list: Vec<&str> = Vec::new();
    for item in items(current.unwrap_or(""), sep).chain(items(add.unwrap_or(""), sep)) {
        let k = key(item);
        if !removed.contains(&k) && seen.insert(k) {
            list.push(item);
        }
    }
    list.sort_unstable();
    out.clear();
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        out.push_str(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens<'a>(add: &[&'a str], remove: &[&'a str]) -> Option<Tokens<'a>> {
        Some(Tokens {
            add: add.to_vec(),
            remove: remove.to_vec(),
        })
    }

    #[test]
    fn a_cell_of_tokens_changes_the_list_and_a_plain_cell_replaces_it() {
        let read = |cell| read(cell, '|', normalized);
        assert_eq!(read("Admin|Tester"), Ok(None));
        assert_eq!(read(" | "), Ok(None));
        assert_eq!(read("+Admin"), Ok(tokens(&["Admin"], &[])));
        assert_eq!(
            read(" +Admin | -Guest|-Audit|-Guest "),
            Ok(tokens(&["Admin"], &["Audit", "Guest"]))
        );
        // The first sign is the token; the rest is the name.
        assert_eq!(
            read("++C|-+D|--E|+-F"),
            Ok(tokens(&["+C", "-F"], &["+D", "-E"]))
        );
        assert_eq!(read("+ Admin"), Ok(tokens(&["Admin"], &[])));
    }

    #[test]
    fn a_cell_that_cannot_be_read_says_what_to_write() {
        let read = |cell| read(cell, '|', normalized);
        let mixed = read("Admin|-Guest|Tester").unwrap_err();
        assert!(mixed.message.contains("mixes plain items"), "{mixed:?}");
        assert_eq!(mixed.value, "Admin|-Guest|Tester");
        assert_eq!(mixed.suggestion.as_deref(), Some("+Admin|-Guest|+Tester"));
        let bare = read("+Admin|-").unwrap_err();
        assert_eq!((bare.value.as_str(), bare.suggestion), ("-", None));
        let both = read("+Admin|-ADMIN").unwrap_err();
        assert!(both.message.contains("adds and removes"), "{both:?}");
        assert_eq!(both.value, "Admin");
        // A custom list compares its items exactly: two items.
        assert_eq!(super::read("+a,-A", ',', exact), Ok(tokens(&["a"], &["A"])));
    }

    #[test]
    fn a_change_adds_what_is_missing_and_removes_what_is_there() {
        let apply = |current, add, remove: &[&str], key| {
            let remove: Vec<String> = remove.iter().map(|r| r.to_string()).collect();
            let mut out = String::from("stale");
            apply(current, add, &remove, '|', key, &mut out);
            out
        };
        assert_eq!(apply(Some("B|D"), Some("A|C"), &["D"], normalized), "A|B|C");
        // Matching keeps the current spelling, and a removal names any spelling.
        assert_eq!(
            apply(Some("Admin|Tester"), Some("ADMIN"), &["tester"], normalized),
            "Admin"
        );
        assert_eq!(
            apply(Some("Admin"), Some("ADMIN"), &[], exact),
            "ADMIN|Admin"
        );
        // Removing what the list lacks changes nothing; removal wins over adding.
        assert_eq!(apply(Some("A"), None, &["Ghost"], normalized), "A");
        assert_eq!(apply(None, Some("A|B"), &["b"], normalized), "A");
        assert_eq!(apply(None, None, &[], normalized), "");
    }
}
