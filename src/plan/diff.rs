//! Field-level changes between a row and the user it updates, under the
//! blank-cell, list and lock policies.

use crate::issue::{Code, Issue};
use crate::profile::{BlankPolicy, ListPolicy};
use crate::record::User;
use crate::schema::{AttributeKind, CustomAttribute, Field};
use crate::store::{Attribute, Change, ExistingUser};
use crate::text::Text;
use crate::validate::Row;
use crate::validate::tokens::{self, ListEdit};

/// The changes an update makes, kept until the plan is built. Nearly every
/// update changes one standard field: that change is kept inline, its values
/// as [`Text`] (no allocation up to 24 bytes), where a `Vec<Change>` costs
/// an allocation for the list and one per value (and a large file plans
/// many updates).
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Changes {
    /// No change.
    #[default]
    None,
    /// One change to a standard field.
    One {
        field: Field,
        old: Option<Text>,
        new: Option<Text>,
    },
    /// Any other number of changes, or a change to a custom attribute.
    Many(Vec<Change>),
}

impl Changes {
    fn push(&mut self, field: Attribute, old: Option<&str>, new: Option<&str>) {
        match (std::mem::take(self), field) {
            (Changes::None, Attribute::Field(field)) => {
                *self = Changes::One {
                    field,
                    old: old.map(Text::from),
                    new: new.map(Text::from),
                };
            }
            (Changes::None, field) => *self = Changes::Many(vec![Change::new(field, old, new)]),
            (one @ Changes::One { .. }, field) => {
                let mut all = one.into_vec();
                all.push(Change::new(field, old, new));
                *self = Changes::Many(all);
            }
            (Changes::Many(mut all), field) => {
                all.push(Change::new(field, old, new));
                *self = Changes::Many(all);
            }
        }
    }

    /// No change at all.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Changes::None => true,
            Changes::One { .. } => false,
            Changes::Many(all) => all.is_empty(),
        }
    }

    /// The value `field` gets, if it changes (`Some(None)`: it is cleared).
    pub(crate) fn new_value(&self, field: Field) -> Option<Option<&str>> {
        match self {
            Changes::None => None,
            Changes::One { field: f, new, .. } => (*f == field).then_some(new.as_deref()),
            Changes::Many(all) => all
                .iter()
                .find(|c| c.field == Attribute::Field(field))
                .map(|c| c.new.as_deref()),
        }
    }

    /// The changes as the plan's operation lists them (in field order).
    pub(crate) fn into_vec(self) -> Vec<Change> {
        match self {
            Changes::None => Vec::new(),
            Changes::One { field, old, new } => vec![Change {
                field: Attribute::Field(field),
                old: old.map(String::from),
                new: new.map(String::from),
            }],
            Changes::Many(all) => all,
        }
    }
}

/// The value a row asks for, given the current one; `None` means "no change
/// asked". A list cell written as changes (`edit`) asks for the current list
/// with the row's items (those it adds) added and the edit's removed.
fn wanted<'a>(
    file: Option<&'a str>,
    current: Option<&'a str>,
    sep: Option<char>,
    blank: BlankPolicy,
    lists: ListPolicy,
    edit: Option<&ListEdit>,
    scratch: &'a mut String,
) -> Option<Option<&'a str>> {
    if let (Some(edit), Some(sep)) = (edit, sep) {
        let key = tokens::key_of(&edit.attribute);
        tokens::apply(current, file, &edit.remove, sep, key, scratch);
        return Some(Some(scratch.as_str()).filter(|s| !s.is_empty()));
    }
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

/// Whether a user's `current` value of `attribute` already is `new`, as
/// planning compares them (a change is planned only when it is not): equal
/// text, or, for the names of things the directory knows, the same names.
pub(crate) fn same_value(attribute: &Attribute, current: Option<&str>, new: Option<&str>) -> bool {
    match attribute {
        Attribute::Field(f) => !differs(current, new) || same_reference(*f, current, new),
        Attribute::Custom(_) => !differs(current, new),
    }
}

/// Names of things the directory knows (roles, location, department,
/// group, permissions) are matched without regard to case: `admin` and
/// `Admin` are the same role, and re-importing an export must not "change"
/// one into the other.
fn same_reference(f: Field, old: Option<&str>, new: Option<&str>) -> bool {
    let (old, new) = (old.unwrap_or(""), new.unwrap_or(""));
    match f {
        Field::Location | Field::DepartmentId | Field::GroupName => crate::matching::same(old, new),
        Field::Roles | Field::Permissions => {
            let sep = f.list_separator().unwrap_or('|');
            let set = |v: &str| {
                let mut items: Vec<String> = v
                    .split(sep)
                    .filter(|s| !s.is_empty())
                    .map(crate::matching::normalize)
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
    row: &Row,
    custom: &[CustomAttribute],
    blank: BlankPolicy,
    lists: ListPolicy,
    column_name: &dyn Fn(Field) -> String,
    warnings: &mut Vec<Issue>,
) -> Changes {
    let (edits, row) = (row.edits(), &row.user);
    let mut out = Changes::None;
    let mut scratch = String::new();
    for &f in Field::ATTRIBUTES {
        if f == Field::UserId {
            continue; // the identity; never changed by an import
        }
        let edit = edits.iter().find(|e| e.attribute == Attribute::Field(f));
        // A blank `enabled` leaves an existing user as they are, and a
        // blank `taskNotification` means Email, whatever the blank policy.
        let file = match (f, row.get(f)) {
            (_, None) if edit.is_some() => None, // a change that adds nothing
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
            edit,
            &mut scratch,
        ) else {
            continue;
        };
        if same_value(&Attribute::Field(f), current, new) {
            continue;
        }
        if existing.locked.contains(&f) {
            warnings.push(
                Issue::warning(
                    Code::FieldLocked,
                    format!(
                        "{} is locked on this user and was not changed (stays {:?})",
                        f.header(),
                        crate::issue::printable(current.unwrap_or(""))
                    ),
                )
                .column(column_name(f))
                .value(new.unwrap_or("")),
            );
            continue;
        }
        out.push(Attribute::Field(f), current, new);
    }
    for a in custom {
        let current = existing.user.custom(&a.name).filter(|v| !v.is_empty());
        let sep = match a.kind {
            AttributeKind::List { separator } => Some(separator),
            _ => None,
        };
        let edit = edits
            .iter()
            .find(|e| matches!(&e.attribute, Attribute::Custom(n) if *n == a.name));
        let Some(new) = wanted(
            row.custom(&a.name),
            current,
            sep,
            blank,
            lists,
            edit,
            &mut scratch,
        ) else {
            continue;
        };
        let attribute = Attribute::Custom(a.name.clone());
        if !same_value(&attribute, current, new) {
            out.push(attribute, current, new);
        }
    }
    // The list is kept until the plan is dropped: give back the room the
    // pushes reserved (4 slots).
    if let Changes::Many(all) = &mut out {
        all.shrink_to_fit();
    }
    out
}

/// A new user's lists under change tokens: `(∅ ∪ added) ∖ removed`, as for
/// an existing user. The row's lists hold what it adds, and validation
/// refused a cell that adds and removes one item; but planning may have put
/// the fallback role in place of an unknown one, which the cell may remove.
/// (Planning rewrites no other list, so a custom list needs nothing here.)
pub(crate) fn created_lists(row: User, edits: &[ListEdit]) -> User {
    let mut scratch = String::new();
    let mut user = row;
    for e in edits {
        let Attribute::Field(f) = e.attribute else {
            continue;
        };
        let (Some(sep), Some(added)) = (f.list_separator(), user.value(f)) else {
            continue;
        };
        if e.remove.is_empty() {
            continue;
        }
        tokens::apply(
            None,
            Some(added),
            &e.remove,
            sep,
            tokens::key_of(&e.attribute),
            &mut scratch,
        );
        if scratch != added {
            user = if scratch.is_empty() {
                user.to_builder().unset(f).build()
            } else {
                user.to_builder().set(f, &scratch).build()
            };
        }
    }
    user
}

/// The user to create from a row: blank values dropped, the defaults
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

    /// The reference `for_create` must agree with: rebuild through the
    /// builder, which canonicalizes every value again (`for_create` builds
    /// the user in one pass).
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
    fn an_update_lists_its_changes_in_order_however_many_it_keeps_inline() {
        let field = |f| Attribute::Field(f);
        let mut c = Changes::None;
        assert!(c.is_empty());
        c.push(field(Field::Email), Some("a@x.io"), Some("b@x.io"));
        assert!(matches!(c, Changes::One { .. }));
        assert_eq!(c.new_value(Field::Email), Some(Some("b@x.io")));
        assert_eq!(c.new_value(Field::Roles), None);
        let long = "a value longer than the twenty-four bytes kept inline";
        c.push(field(Field::Roles), Some(long), None);
        c.push(Attribute::Custom("costCenter".into()), None, Some("42"));
        assert_eq!(c.new_value(Field::Roles), Some(None));
        assert_eq!(
            c.into_vec(),
            [
                Change::new(field(Field::Email), Some("a@x.io"), Some("b@x.io")),
                Change::new(field(Field::Roles), Some(long), None),
                Change::new(Attribute::Custom("costCenter".into()), None, Some("42")),
            ]
        );
        // A lone custom change is listed too.
        let mut c = Changes::None;
        c.push(Attribute::Custom("costCenter".into()), Some("1"), Some("2"));
        assert_eq!(c.new_value(Field::Email), None);
        assert_eq!(
            c.into_vec(),
            [Change::new(
                Attribute::Custom("costCenter".into()),
                Some("1"),
                Some("2")
            )]
        );
        assert!(Changes::Many(Vec::new()).is_empty());
    }

    /// A row of `user` with `edits`.
    fn row(user: User, edits: Vec<ListEdit>) -> Row {
        Row {
            line: 2,
            action: crate::record::Action::Upsert,
            notify: false,
            user,
            error: false,
            edits: (!edits.is_empty()).then(|| Box::new(crate::validate::Edits(edits))),
        }
    }

    #[test]
    fn a_list_edit_changes_the_current_list_unless_the_field_is_locked() {
        let roles = |user: &str, custom: &str| {
            UserBuilder::default()
                .set(Field::Roles, user)
                .custom("tags", custom)
                .build()
        };
        let tags = [CustomAttribute::new(
            "tags",
            AttributeKind::List { separator: ';' },
        )];
        let edits = vec![
            ListEdit::new(Attribute::Field(Field::Roles), &["viewer"]),
            ListEdit::new(Attribute::Custom("tags".into()), &["Red"]),
        ];
        let existing = ExistingUser::new(roles("Tester|Viewer", "Red;red"), 1);
        let cols = |f: Field| f.header().to_owned();
        let mut warnings = Vec::new();
        // A cell that adds Admin and removes Viewer; a custom list removing
        // Red (exactly) and adding nothing.
        let r = row(
            UserBuilder::default().set(Field::Roles, "Admin").build(),
            edits.clone(),
        );
        let asked = changes(
            &existing,
            &r,
            &tags,
            BlankPolicy::Keep,
            ListPolicy::Tokens,
            &cols,
            &mut warnings,
        );
        assert_eq!(
            asked.into_vec(),
            [
                Change::new(
                    Attribute::Field(Field::Roles),
                    Some("Tester|Viewer"),
                    Some("Admin|Tester")
                ),
                Change::new(
                    Attribute::Custom("tags".into()),
                    Some("Red;red"),
                    Some("red")
                ),
            ]
        );
        assert!(warnings.is_empty());
        // Locked roles: no change, a warning.
        let locked = existing.clone().lock(Field::Roles);
        let asked = changes(
            &locked,
            &r,
            &[],
            BlankPolicy::Keep,
            ListPolicy::Tokens,
            &cols,
            &mut warnings,
        );
        assert!(asked.is_empty());
        assert_eq!(warnings[0].code, Code::FieldLocked);
        // A new user: what the row adds, less what it removes.
        let created = created_lists(
            UserBuilder::default()
                .set(Field::Roles, "Staff|Tester")
                .build(),
            &[ListEdit::new(Attribute::Field(Field::Roles), &["staff"])],
        );
        assert_eq!(created.get(Field::Roles), Some("Tester"));
        let created = created_lists(
            UserBuilder::default().set(Field::Roles, "Staff").build(),
            &[ListEdit::new(Attribute::Field(Field::Roles), &["Staff"])],
        );
        assert_eq!(created.get(Field::Roles), None);
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
