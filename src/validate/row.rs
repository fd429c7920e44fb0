//! Row-level checks: required values, formats, enumerations, lengths, role
//! names, tenant, and the catalog references.

use crate::catalog::{CatalogIndex, Lookup, RefKind};
use crate::input::header::{Header, Target};
use crate::issue::{Code, Issue, Severity};
use crate::matching::same;
use crate::profile::{ListPolicy, Profile, RolePolicy};
use crate::record::{Action, UserBuilder, parse_bool, parse_task_notification};
use crate::schema::{AttributeKind, Field, KeyField};
use crate::store::Attribute;
use crate::validate::tokens::{self, ListEdit, Tokens};

/// Longest role name, in characters.
pub(crate) const MAX_ROLE_CHARS: usize = 100;

/// A validated row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowOut {
    pub action: Action,
    pub notify: bool,
    pub error: bool,
    /// The list cells written as changes.
    pub edits: Vec<ListEdit>,
}

/// How a list cell reads under the profile's list policy.
enum ListCell<'v> {
    /// As a list that replaces the current one.
    Replace,
    /// As changes (`ListPolicy::Tokens`).
    Change(Tokens<'v>),
    /// Neither: an error was reported.
    Wrong,
}

/// Checks one row's cells (already decoded and unescaped; `None` where the
/// cell could not be decoded) and fills `builder`.
pub(crate) struct RowChecker<'a> {
    pub profile: &'a Profile,
    pub header: &'a Header,
    pub tenant: &'a str,
    pub catalog: Option<&'a CatalogIndex<'a>>,
}

/// Collects the issues of one row and remembers whether one is an error.
pub(crate) struct Sink<'a> {
    pub line: u64,
    pub issues: &'a mut Vec<Issue>,
    pub error: bool,
}

impl Sink<'_> {
    pub fn push(&mut self, issue: Issue) {
        self.error |= issue.severity == Severity::Error;
        self.issues.push(issue.at(self.line));
    }
}

/// Why a text value is not acceptable: a control character (a line break
/// said so), or a byte order mark inside it. Reads eight bytes at a time;
/// `text_problem_bytewise` is the definition, and says why when this finds
/// a control character.
fn text_problem(v: &str) -> Option<(Code, &'static str)> {
    use crate::matching::{HIGH, ONES};
    // Whether any byte of `w` is below 0x20 or is 0x7f (exact: for the
    // first, "a byte below n" with n <= 0x80; for the second, "a zero byte"
    // of `w` xor 0x7f…).
    let control = |w: u64| {
        let del = w ^ (0x7f * ONES);
        (w.wrapping_sub(0x20 * ONES) & !w | del.wrapping_sub(ONES) & !del) & HIGH != 0
    };
    let bytes = v.as_bytes();
    let mut chunks = bytes.chunks_exact(8);
    let mut high = false;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        if control(w) {
            return text_problem_bytewise(v);
        }
        high |= w & HIGH != 0;
    }
    for &b in chunks.remainder() {
        if b < 0x20 || b == 0x7f {
            return text_problem_bytewise(v);
        }
        high |= b >= 0x80;
    }
    if high && v.contains('\u{feff}') {
        return Some(BOM_INSIDE);
    }
    None
}

const BOM_INSIDE: (Code, &str) = (
    Code::InvalidEncoding,
    "contains U+FEFF, a byte order mark, in the middle of the file (were two files joined?)",
);

/// Why a text value is not acceptable (one pass over the bytes).
fn text_problem_bytewise(v: &str) -> Option<(Code, &'static str)> {
    let mut high = false;
    for &b in v.as_bytes() {
        if b < 0x20 || b == 0x7f {
            if b == b'\n' || b == b'\r' || v.contains(['\n', '\r']) {
                return Some((Code::InvalidValue, "contains a line break"));
            }
            return Some((Code::InvalidValue, "contains a control character"));
        }
        high |= b >= 0x80;
    }
    if high && v.contains('\u{feff}') {
        return Some(BOM_INSIDE);
    }
    None
}

/// Why a standard field's value is not acceptable: a control character or a
/// byte order mark in any field; in a field that identifies a user or names
/// a role or reference, also a character that cannot be seen (see
/// [`crate::matching::invisible`]).
fn value_problem(f: Field, v: &str) -> Option<(Code, String)> {
    if let Some((code, why)) = text_problem(v) {
        return Some((code, why.to_owned()));
    }
    let identity = matches!(
        f,
        Field::UserId
            | Field::Email
            | Field::ReportsTo
            | Field::Roles
            | Field::Location
            | Field::DepartmentId
            | Field::GroupName
    );
    if !identity {
        return None;
    }
    let (c, name) = crate::matching::invisible(v)?;
    Some((
        Code::InvalidValue,
        format!(
            "contains U+{:04X} {name}, a character that cannot be seen: the value would look like another one",
            u32::from(c)
        ),
    ))
}

/// A cell as the checks see it: trimmed, and with the formula
/// neutralization of the library's own CSV output undone.
fn clean(v: &str) -> &str {
    crate::cell::restore_cell(crate::matching::trim(v))
}

fn too_long(v: &str, max: usize) -> bool {
    v.len() > max && v.chars().count() > max
}

impl RowChecker<'_> {
    fn cell<'c>(&self, cells: &'c [Option<&'c str>], field: Field) -> Option<&'c str> {
        let col = self.header.column_of(field)?;
        cells.get(col).copied().flatten().map(clean)
    }

    fn col(&self, field: Field) -> String {
        self.header.name_of(field).to_owned()
    }

    pub fn check(
        &self,
        cells: &[Option<&str>],
        builder: &mut UserBuilder,
        sink: &mut Sink<'_>,
    ) -> RowOut {
        let p = self.profile;
        // Directives first: they decide which checks apply.
        let action = match self.cell(cells, Field::Transaction) {
            None | Some("") => Action::Upsert,
            Some(v) if v.eq_ignore_ascii_case("delete") => Action::Delete,
            Some(v) => {
                sink.push(
                    Issue::error(Code::InvalidValue, "transaction must be blank or DELETE")
                        .column(self.col(Field::Transaction))
                        .value(v)
                        .suggest("DELETE"),
                );
                Action::Upsert
            }
        };
        let notify = match self.cell(cells, Field::NotifyIfNewUser) {
            None | Some("") => false,
            Some(v) => parse_bool(v).unwrap_or_else(|| {
                sink.push(
                    Issue::error(Code::InvalidValue, "notifyIfNewUser must be true or false")
                        .column(self.col(Field::NotifyIfNewUser))
                        .value(v),
                );
                false
            }),
        };
        if let Some(t) = self.cell(cells, Field::Tenant)
            && !t.is_empty()
            && !same(t, self.tenant)
        {
            sink.push(
                Issue::error(
                    Code::TenantMismatch,
                    format!(
                        "the row is for tenant {:?}, but this import is for tenant {:?}",
                        crate::issue::printable(t),
                        self.tenant
                    ),
                )
                .column(self.col(Field::Tenant))
                .value(t),
            );
        }

        let key = p.key.field();
        let other = match p.key {
            KeyField::UserId => Field::Email,
            KeyField::Email => Field::UserId,
        };
        if action == Action::Delete {
            // A delete needs only something to find the user by.
            let k = self.cell(cells, key).unwrap_or("");
            let o = self.cell(cells, other).unwrap_or("");
            if k.is_empty() && o.is_empty() {
                sink.push(
                    Issue::error(Code::MissingValue, "a DELETE row needs the user's key")
                        .column(self.col(key)),
                );
            }
            for (f, v) in [(key, k), (other, o)] {
                if v.is_empty() {
                    continue;
                }
                match value_problem(f, v) {
                    Some((code, why)) => {
                        sink.push(Issue::error(code, why).column(self.col(f)).value(v))
                    }
                    None => {
                        builder.put(f, v);
                    }
                }
            }
            return RowOut {
                action,
                notify,
                error: sink.error,
                edits: Vec::new(),
            };
        }

        let mut edits = Vec::new();
        for &f in Field::ATTRIBUTES {
            let Some(v) = self.cell(cells, f) else {
                continue;
            };
            if v.is_empty() {
                if p.required.contains(&f) {
                    sink.push(
                        Issue::error(Code::MissingValue, "missing required value")
                            .column(self.col(f)),
                    );
                } else if p.blank == crate::profile::BlankPolicy::Clear {
                    // Under the default policy a blank cell is no value at
                    // all (it changes nothing); to clear, it must be kept.
                    builder.put(f, "");
                }
                continue;
            }
            if let Some((code, why)) = value_problem(f, v) {
                sink.push(Issue::error(code, why).column(self.col(f)).value(v));
                continue;
            }
            let accepted = match f {
                Field::Email => self.email(v, sink),
                Field::UserId | Field::ReportsTo => self.id(f, v, sink),
                Field::Enabled | Field::Sso => self.boolean(f, v, sink),
                Field::TaskNotification => match parse_task_notification(v) {
                    Some(_) => true,
                    None => {
                        sink.push(
                            Issue::error(
                                Code::InvalidValue,
                                "taskNotification must be OFF or Email",
                            )
                            .column(self.col(f))
                            .value(v)
                            .maybe_suggest(crate::schema::closest(v, ["OFF", "Email"])),
                        );
                        false
                    }
                },
                Field::Roles => {
                    self.roles(v, builder, sink, &mut edits);
                    continue;
                }
                Field::Permissions => {
                    match self.list_cell(v, ',', tokens::NAMES, || self.col(f), sink) {
                        ListCell::Replace => self.text(f, v, sink),
                        ListCell::Wrong => false,
                        ListCell::Change(t) => {
                            if self.text(f, v, sink) {
                                if !t.add.is_empty() {
                                    builder.put(f, &t.add.join(","));
                                }
                                edits.push(ListEdit::new(Attribute::Field(f), &t.remove));
                            }
                            false
                        }
                    }
                }
                Field::Location => self.reference(f, RefKind::Location, v, builder, sink),
                Field::DepartmentId => self.reference(f, RefKind::Department, v, builder, sink),
                Field::GroupName => self.reference(f, RefKind::Group, v, builder, sink),
                _ => self.text(f, v, sink),
            };
            if accepted {
                builder.put(f, v);
            }
        }
        // A user who reports to themselves.
        if let (Some(id), Some(m)) = (
            self.cell(cells, Field::UserId).filter(|v| !v.is_empty()),
            self.cell(cells, Field::ReportsTo).filter(|v| !v.is_empty()),
        ) && same(id, m)
        {
            sink.push(
                Issue::error(Code::ReportsToCycle, "a user cannot report to themselves")
                    .column(self.col(Field::ReportsTo))
                    .value(m),
            );
        }
        self.custom(cells, builder, sink, &mut edits);
        RowOut {
            action,
            notify,
            error: sink.error,
            edits,
        }
    }

    fn text(&self, f: Field, v: &str, sink: &mut Sink<'_>) -> bool {
        let max = self.profile.max_text_chars;
        if too_long(v, max) {
            sink.push(
                Issue::error(Code::InvalidValue, format!("longer than {max} characters"))
                    .column(self.col(f))
                    .value(v),
            );
            return false;
        }
        true
    }

    fn id(&self, f: Field, v: &str, sink: &mut Sink<'_>) -> bool {
        if v.contains(char::is_whitespace) {
            sink.push(
                Issue::error(Code::InvalidValue, "a user id cannot contain spaces")
                    .column(self.col(f))
                    .value(v),
            );
            return false;
        }
        self.text(f, v, sink)
    }

    fn email(&self, v: &str, sink: &mut Sink<'_>) -> bool {
        match self.profile.email.check(v) {
            Ok(()) => {
                if let Some(why) = self.profile.email.warning(v) {
                    sink.push(
                        Issue::warning(
                            Code::SpecialUseDomain,
                            format!("email address in a special-use domain: {why}"),
                        )
                        .column(self.col(Field::Email))
                        .value(v),
                    );
                }
                true
            }
            Err(why) => {
                sink.push(
                    Issue::error(Code::InvalidEmail, format!("invalid email address: {why}"))
                        .column(self.col(Field::Email))
                        .value(v),
                );
                false
            }
        }
    }

    fn boolean(&self, f: Field, v: &str, sink: &mut Sink<'_>) -> bool {
        if parse_bool(v).is_some() {
            return true;
        }
        sink.push(
            Issue::error(
                Code::InvalidValue,
                format!("{} must be true or false", f.header()),
            )
            .column(self.col(f))
            .value(v),
        );
        false
    }

    /// Reads a list cell under the profile's list policy: as changes only
    /// under `ListPolicy::Tokens`, and then only when its items say so.
    fn list_cell<'v>(
        &self,
        v: &'v str,
        sep: char,
        key: tokens::Key,
        column: impl FnOnce() -> String,
        sink: &mut Sink<'_>,
    ) -> ListCell<'v> {
        if self.profile.lists != ListPolicy::Tokens {
            return ListCell::Replace;
        }
        match tokens::read(v, sep, key) {
            Ok(None) => ListCell::Replace,
            Ok(Some(t)) => ListCell::Change(t),
            Err(problem) => {
                sink.push(
                    Issue::error(Code::InvalidValue, problem.message)
                        .column(column())
                        .value(&problem.value)
                        .maybe_suggest(problem.suggestion),
                );
                ListCell::Wrong
            }
        }
    }

    fn roles(
        &self,
        v: &str,
        builder: &mut UserBuilder,
        sink: &mut Sink<'_>,
        edits: &mut Vec<ListEdit>,
    ) {
        let col = self.col(Field::Roles);
        let mut kept = String::with_capacity(v.len());
        let mut keep = |role: &str| {
            if !kept.is_empty() {
                kept.push('|');
            }
            kept.push_str(role);
        };
        match self.list_cell(v, '|', tokens::NAMES, || col.clone(), sink) {
            ListCell::Wrong => {}
            ListCell::Replace => {
                for role in v
                    .split('|')
                    .map(crate::matching::trim)
                    .filter(|r| !r.is_empty())
                {
                    if let Some(role) = self.role(role, &col, sink) {
                        keep(role);
                    }
                }
                builder.put(Field::Roles, &kept);
            }
            // Added roles are checked as a plain list's are; a removed role
            // needs only a valid name (removing one the catalog does not
            // know does nothing).
            ListCell::Change(t) => {
                for &role in &t.add {
                    if let Some(role) = self.role(role, &col, sink) {
                        keep(role);
                    }
                }
                for &role in &t.remove {
                    self.role_name(role, &col, sink);
                }
                if !kept.is_empty() {
                    builder.put(Field::Roles, &kept);
                }
                edits.push(ListEdit::new(Attribute::Field(Field::Roles), &t.remove));
            }
        }
    }

    /// Whether `role` is a valid role name (an `invalid_role_name` when not).
    fn role_name(&self, role: &str, col: &str, sink: &mut Sink<'_>) -> bool {
        if role.contains(char::is_whitespace) {
            sink.push(
                Issue::error(Code::InvalidRoleName, "role names cannot contain spaces")
                    .column(col)
                    .value(role),
            );
            return false;
        }
        if too_long(role, MAX_ROLE_CHARS) {
            sink.push(
                Issue::error(
                    Code::InvalidRoleName,
                    format!("role names cannot be longer than {MAX_ROLE_CHARS} characters"),
                )
                .column(col)
                .value(role),
            );
            return false;
        }
        true
    }

    /// A role a row gives: `None` when its name is not valid; else as the
    /// catalog spells it, or as written when the catalog does not know it
    /// (reported under the unknown-role policy).
    fn role<'r>(&'r self, role: &'r str, col: &str, sink: &mut Sink<'_>) -> Option<&'r str> {
        if !self.role_name(role, col, sink) {
            return None;
        }
        Some(match self.catalog.map(|c| c.lookup(RefKind::Role, role)) {
            None | Some(Lookup::Unchecked) => role,
            Some(Lookup::Found(r)) => r,
            // An unknown role is reported, and kept in the row: planning
            // checks it again against the store's catalog (which has the
            // last word) and applies the policy there.
            Some(Lookup::Missing) => {
                let suggestion = || self.catalog.and_then(|c| c.suggest(RefKind::Role, role));
                match &self.profile.unknown_roles {
                    RolePolicy::Reject => sink.push(
                        Issue::error(Code::UnknownRole, "unknown role")
                            .column(col)
                            .value(role)
                            .maybe_suggest(suggestion()),
                    ),
                    RolePolicy::Create => {}
                    RolePolicy::Fallback(fallback) => {
                        match self.catalog.map(|c| c.lookup(RefKind::Role, fallback)) {
                            Some(Lookup::Missing) => sink.push(
                                Issue::error(
                                    Code::UnknownRole,
                                    format!("unknown role, and the fallback role {fallback:?} does not exist either"),
                                )
                                .column(col)
                                .value(role),
                            ),
                            _ => sink.push(
                                Issue::warning(
                                    Code::UnknownRole,
                                    format!("unknown role; the user gets the role {fallback:?} instead"),
                                )
                                .column(col)
                                .value(role)
                                .maybe_suggest(suggestion()),
                            ),
                        }
                    }
                }
                role
            }
        })
    }

    fn reference(
        &self,
        f: Field,
        kind: RefKind,
        v: &str,
        builder: &mut UserBuilder,
        sink: &mut Sink<'_>,
    ) -> bool {
        if !self.text(f, v, sink) {
            return false;
        }
        match self.catalog.map(|c| c.lookup(kind, v)) {
            None | Some(Lookup::Unchecked) => true,
            Some(Lookup::Found(name)) => {
                builder.put(f, name);
                false
            }
            Some(Lookup::Missing) => {
                let suggestion = self.catalog.and_then(|c| c.suggest(kind, v));
                let what = match kind {
                    RefKind::Location => "unknown location",
                    RefKind::Department => "unknown department",
                    _ => "unknown permission group",
                };
                sink.push(
                    Issue::error(Code::UnknownReference, what)
                        .column(self.col(f))
                        .value(v)
                        .maybe_suggest(suggestion),
                );
                // Kept in the row: planning checks it again.
                true
            }
        }
    }

    fn custom(
        &self,
        cells: &[Option<&str>],
        builder: &mut UserBuilder,
        sink: &mut Sink<'_>,
        edits: &mut Vec<ListEdit>,
    ) {
        for (i, attr) in self.profile.custom.iter().enumerate() {
            let Some(col) = self.header.custom.get(i).copied().flatten() else {
                continue;
            };
            debug_assert_eq!(self.header.targets.get(col), Some(&Target::Custom(i)));
            let Some(v) = cells.get(col).copied().flatten().map(clean) else {
                continue;
            };
            let name = self.header.names[col].clone();
            if v.is_empty() {
                if attr.required {
                    sink.push(
                        Issue::error(Code::MissingValue, "missing required value").column(name),
                    );
                } else if self.profile.blank == crate::profile::BlankPolicy::Clear {
                    builder.put_custom(attr.name.clone(), "");
                }
                continue;
            }
            let problem = if attr.multiline {
                v.split(['\r', '\n']).find_map(text_problem)
            } else {
                text_problem(v)
            };
            if let Some((code, why)) = problem {
                sink.push(Issue::error(code, why).column(name).value(v));
                continue;
            }
            let value: Option<String> = match &attr.kind {
                AttributeKind::Text => {
                    let max = self.profile.max_text_chars;
                    (!too_long(v, max)).then(|| v.to_owned()).or_else(|| {
                        sink.push(
                            Issue::error(
                                Code::InvalidValue,
                                format!("longer than {max} characters"),
                            )
                            .column(name.clone())
                            .value(v),
                        );
                        None
                    })
                }
                AttributeKind::Bool => match parse_bool(v) {
                    Some(b) => Some(b.to_string()),
                    None => {
                        sink.push(
                            Issue::error(Code::InvalidValue, "must be true or false")
                                .column(name.clone())
                                .value(v),
                        );
                        None
                    }
                },
                AttributeKind::OneOf(options) => match options.iter().find(|o| same(o, v)) {
                    Some(o) => Some(o.clone()),
                    None => {
                        sink.push(
                            Issue::error(
                                Code::InvalidValue,
                                format!("must be one of: {}", options.join(", ")),
                            )
                            .column(name.clone())
                            .value(v)
                            .maybe_suggest(crate::schema::closest(
                                v,
                                options.iter().map(String::as_str),
                            )),
                        );
                        None
                    }
                },
                AttributeKind::List { separator } => {
                    let mut items: Vec<&str> =
                        match self.list_cell(v, *separator, tokens::ITEMS, || name.clone(), sink) {
                            ListCell::Wrong => continue,
                            ListCell::Replace => v
                                .split(*separator)
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .collect(),
                            ListCell::Change(t) => {
                                let attribute = Attribute::Custom(attr.name.clone());
                                edits.push(ListEdit::new(attribute, &t.remove));
                                if t.add.is_empty() {
                                    continue;
                                }
                                t.add
                            }
                        };
                    items.sort_unstable();
                    items.dedup();
                    Some(items.join(&separator.to_string()))
                }
            };
            if let Some(value) = value {
                builder.put_custom(attr.name.clone(), &value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{text_problem, text_problem_bytewise};

    #[test]
    fn reading_eight_bytes_at_a_time_finds_what_reading_each_byte_finds() {
        // Every ASCII byte and a few non-ASCII characters (a BOM among
        // them), at every position of values 0 to 19 bytes long, amid
        // ASCII and non-ASCII filler.
        let mut specials: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        specials.extend(["é", "\u{feff}", "\u{7ff}", "王", "\u{80}", "😀"].map(String::from));
        let mut checked = 0;
        for filler in ["a", "é", "Z"] {
            for len in 0..20 {
                for at in 0..=len {
                    for special in &specials {
                        let mut v = filler.repeat(at);
                        v.push_str(special);
                        v.push_str(&filler.repeat(len - at));
                        assert_eq!(text_problem(&v), text_problem_bytewise(&v), "{v:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 20_000);
        assert_eq!(text_problem("plain value"), None);
        assert!(text_problem("line\nbreak").is_some_and(|p| p.1.contains("line break")));
        assert!(text_problem("bell\u{7}xxxxxxxxxx").is_some_and(|p| p.1.contains("control")));
    }
}
