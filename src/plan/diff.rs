//! Field-level changes between a row and the user it updates, under the
//! blank-cell, list and lock policies.

use crate::issue::{Code, Issue};
use crate::profile::{BlankPolicy, ListPolicy};
use crate::record::User;
use crate::schema::{AttributeKind, CustomAttribute, Field};
use crate::store::{Attribute, Change, ExistingUser};

/// The value a row asks for, given the current one; `None` means "no change
/// asked".
fn wanted<'a>(
    file: Option<&'a str>,
    current: Option<&'a str>,
    sep: Option<char>,
    blank: BlankPolicy,
    lists: ListPolicy,
    scratch: &'a mut String,
) -> Option<Option<&'a str>> {
    let file = file?;
    if file.is_empty() {
        return match blank {
            BlankPolicy::Keep => None,
            BlankPolicy::Clear => Some(None),
        };
    }
    match (sep, lists) {
        (Some(sep), ListPolicy::AddOnly) => {
            let mut items: Vec<&str> = current
                .unwrap_or("")
                .split(sep)
                .chain(file.split(sep))
                .filter(|s| !s.is_empty())
                .collect();
            items.sort_unstable();
            items.dedup();
            scratch.clear();
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    scratch.push(sep);
                }
                scratch.push_str(it);
            }
            Some(Some(scratch.as_str()))
        }
        _ => Some(Some(file)),
    }
}

fn differs(old: Option<&str>, new: Option<&str>) -> bool {
    old.unwrap_or("") != new.unwrap_or("")
}

/// Names of things the directory knows (roles, location, department,
/// group, permissions) are matched without regard to case: `admin` and
/// `Admin` are the same role, and re-importing an export must not "change"
/// one into the other.
fn same_reference(f: Field, old: Option<&str>, new: Option<&str>) -> bool {
    let (old, new) = (old.unwrap_or(""), new.unwrap_or(""));
    match f {
        Field::Location | Field::DepartmentId | Field::GroupName => crate::record::same(old, new),
        Field::Roles | Field::Permissions => {
            let sep = f.list_separator().unwrap_or('|');
            let set = |v: &str| {
                let mut items: Vec<String> = v
                    .split(sep)
                    .filter(|s| !s.is_empty())
                    .map(crate::record::normalize)
                    .collect();
                items.sort();
                items.dedup();
                items
            };
            set(old) == set(new)
        }
        _ => false,
    }
}

/// The changes `row` makes to `existing`. Changes to locked fields are left
/// out, with a `field_locked` warning each (pushed to `warnings`, without line).
pub(crate) fn changes(
    existing: &ExistingUser,
    row: &User,
    custom: &[CustomAttribute],
    blank: BlankPolicy,
    lists: ListPolicy,
    column_name: &dyn Fn(Field) -> String,
    warnings: &mut Vec<Issue>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let mut scratch = String::new();
    for &f in Field::ATTRIBUTES {
        if f == Field::UserId {
            continue; // the identity; never changed by an import
        }
        // SPEC §2: a blank `enabled` leaves an existing user as they are, and a
        // blank `taskNotification` means Email, whatever the blank policy.
        let file = match (f, row.get(f)) {
            (Field::Enabled, Some("")) | (_, None) => continue, // no change asked
            (Field::TaskNotification, Some("")) if blank == BlankPolicy::Clear => Some("Email"),
            (_, v) => v,
        };
        let current = existing.user.value(f);
        let Some(new) = wanted(
            file,
            current,
            f.list_separator(),
            blank,
            lists,
            &mut scratch,
        ) else {
            continue;
        };
        if !differs(current, new) || same_reference(f, current, new) {
            continue;
        }
        if existing.locked.contains(&f) {
            warnings.push(
                Issue::warning(
                    Code::FieldLocked,
                    format!(
                        "{} is locked on this user and was not changed (stays {:?})",
                        f.header(),
                        crate::printable(current.unwrap_or(""))
                    ),
                )
                .column(column_name(f))
                .value(new.unwrap_or("")),
            );
            continue;
        }
        out.push(Change::new(Attribute::Field(f), current, new));
    }
    for a in custom {
        let current = existing.user.custom(&a.name).filter(|v| !v.is_empty());
        let sep = match a.kind {
            AttributeKind::List { separator } => Some(separator),
            _ => None,
        };
        let Some(new) = wanted(
            row.custom(&a.name),
            current,
            sep,
            blank,
            lists,
            &mut scratch,
        ) else {
            continue;
        };
        if differs(current, new) {
            out.push(Change::new(Attribute::Custom(a.name.clone()), current, new));
        }
    }
    // Most updates change one or two fields; the list is kept until the
    // plan is dropped, so give back the room the pushes reserved (4 slots).
    out.shrink_to_fit();
    out
}

/// The user to create from a row: blank values dropped, S4's defaults
/// (`enabled` = true, `taskNotification` = Email) filled in.
pub(crate) fn for_create(row: User, fallback_id: Option<&str>) -> User {
    let mut fill = [(Field::UserId, ""); 3];
    let mut n = 0;
    for (field, missing, default) in [
        (Field::UserId, row.user_id().is_none(), fallback_id),
        (
            Field::Enabled,
            row.value(Field::Enabled).is_none(),
            Some("true"),
        ),
        (
            Field::TaskNotification,
            row.value(Field::TaskNotification).is_none(),
            Some("Email"),
        ),
    ] {
        if let (true, Some(value)) = (missing, default) {
            fill[n] = (field, value);
            n += 1;
        }
    }
    let blanks =
        row.fields().any(|(_, v)| v.is_empty()) || row.customs().any(|(_, v)| v.is_empty());
    if n == 0 && !blanks {
        return row;
    }
    row.without_blanks_filled(&fill[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::UserBuilder;

    /// What `for_create` did before it built the user in one pass: rebuild
    /// through the builder, which canonicalizes every value again.
    fn rebuilt(row: &User, fallback_id: Option<&str>) -> User {
        let mut b = UserBuilder::default();
        for (f, v) in row.fields().filter(|(_, v)| !v.is_empty()) {
            b.put(f, v);
        }
        for (k, v) in row.customs().filter(|(_, v)| !v.is_empty()) {
            b.put_custom(k.to_owned(), v);
        }
        if row.user_id().is_none()
            && let Some(id) = fallback_id
        {
            b.put(Field::UserId, id);
        }
        if row.value(Field::Enabled).is_none() {
            b.put(Field::Enabled, "true");
        }
        if row.value(Field::TaskNotification).is_none() {
            b.put(Field::TaskNotification, "Email");
        }
        b.build()
    }

    #[test]
    fn a_new_user_gets_the_defaults_and_loses_its_blanks() {
        let cells: [(Field, &[&str]); 6] = [
            (Field::UserId, &["", "jdoe"]),
            (Field::FirstName, &["", "Ann"]),
            (Field::Enabled, &["", "no"]),
            (Field::Roles, &["", "b|A"]),
            (Field::TaskNotification, &["", "off"]),
            (Field::Location, &["", "Łódź"]),
        ];
        // Every combination of absent, blank and set for each field, with
        // and without a custom attribute (blank or set) and a fallback id.
        let mut combos = 0;
        for mask in 0..3usize.pow(cells.len() as u32) {
            let mut b = UserBuilder::default().set(Field::Email, "a@x.io");
            let mut m = mask;
            for (f, values) in cells {
                match m % 3 {
                    0 => {}
                    k => {
                        b.put(f, values[k - 1]);
                    }
                }
                m /= 3;
            }
            for custom in [None, Some(""), Some("42")] {
                let mut b = b.clone();
                if let Some(c) = custom {
                    b.put_custom("costCenter".to_owned(), c);
                }
                let row = b.build();
                for fallback in [None, Some("a@x.io")] {
                    let want = rebuilt(&row, fallback);
                    assert_eq!(
                        for_create(row.clone(), fallback),
                        want,
                        "{row:?} {fallback:?}"
                    );
                    combos += 1;
                }
            }
        }
        assert_eq!(combos, 729 * 6);
    }
}
