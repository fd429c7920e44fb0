//! The fields of a users file, custom attributes, and the column mapping.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

macro_rules! fields {
    ($( $(#[$doc:meta])* $variant:ident = $header:literal [$($alias:literal),*], )*) => {
        /// A standard field of the users file. The canonical header of each
        /// field is its column name in the canonical format, e.g. `userId`,
        /// `firstName`, `reportsTo`.
        ///
        /// ```
        /// use user_import::Field;
        /// assert_eq!(Field::UserId.header(), "userId");
        /// assert_eq!(Field::from_header("First Name"), Some(Field::FirstName));
        /// assert_eq!(Field::from_header("e-mail"), Some(Field::Email));
        /// assert_eq!(Field::from_header("manager"), Some(Field::ReportsTo));
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        #[non_exhaustive]
        pub enum Field {
            $( $(#[$doc])* #[serde(rename = $header)] $variant, )*
        }

        impl Field {
            /// Every field, in canonical column order (the order of an export).
            ///
            /// ```
            /// assert_eq!(user_import::Field::ALL[0], user_import::Field::UserId);
            /// ```
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// The canonical header (the column name in the canonical format).
            ///
            /// ```
            /// assert_eq!(user_import::Field::NotifyIfNewUser.header(), "notifyIfNewUser");
            /// ```
            pub fn header(self) -> &'static str {
                match self { $(Field::$variant => $header,)* }
            }

            /// The accepted aliases of the field, already in folded form (see
            /// [`fold_header`]).
            ///
            /// ```
            /// assert!(user_import::Field::UserId.aliases().contains(&"username"));
            /// ```
            pub fn aliases(self) -> &'static [&'static str] {
                match self { $(Field::$variant => &[$($alias),*],)* }
            }
        }
    };
}

fields! {
    /// The unique login id; the default key. Aliases: username, login,
    /// user name, employee number, employee id.
    UserId = "userId" ["username", "login", "loginid", "employeenumber", "employeeid", "employeeno"],
    /// The tenant; blank means the import's current tenant.
    Tenant = "tenant" ["tenantid"],
    /// First name.
    FirstName = "firstName" ["givenname", "first"],
    /// Last name.
    LastName = "lastName" ["surname", "familyname", "last"],
    /// The name shown for the user (`Ann Lee`), as other products' exports
    /// carry it beside the first and last names.
    DisplayName = "displayName" ["fullname", "name", "commonname"],
    /// Email address; unique in the directory.
    Email = "email" ["emailaddress", "mail", "emailid"],
    /// `true`/`false`, `yes`/`no`, `1`/`0`, any case.
    Enabled = "enabled" ["active", "isenabled"],
    /// The user id of the user's manager.
    ReportsTo = "reportsTo" ["manager", "managerid", "supervisor"],
    /// Roles, `|`-separated.
    Roles = "roles" ["role"],
    /// A location name or alias.
    Location = "location" ["locationname", "site"],
    /// The primary department.
    DepartmentId = "departmentId" ["department", "dept"],
    /// The permission group.
    GroupName = "groupName" ["group", "permissiongroup"],
    /// Access permissions, a comma-separated list inside one cell.
    Permissions = "permissions" ["accesspermissions", "permission"],
    /// Single sign-on: `true`/`false`.
    Sso = "sso" ["singlesignon"],
    /// `OFF` or `Email`; blank means `Email`.
    TaskNotification = "taskNotification" ["notification", "notifications"],
    /// Blank (create or update) or `DELETE`.
    Transaction = "transaction" ["action"],
    /// `true`: the plan carries a welcome notice for a user it creates.
    NotifyIfNewUser = "notifyIfNewUser" ["notifynewuser", "sendwelcome", "welcome"],
}

impl Field {
    /// Fields that hold a value of the user (everything but the row directives
    /// `tenant`, `transaction` and `notifyIfNewUser`).
    pub(crate) const ATTRIBUTES: &'static [Field] = &[
        Field::UserId,
        Field::FirstName,
        Field::LastName,
        Field::DisplayName,
        Field::Email,
        Field::Enabled,
        Field::ReportsTo,
        Field::Roles,
        Field::Location,
        Field::DepartmentId,
        Field::GroupName,
        Field::Permissions,
        Field::Sso,
        Field::TaskNotification,
    ];

    /// The field whose folded canonical header or alias equals `header` after
    /// folding (case, spaces, `_` and `-` ignored).
    ///
    /// ```
    /// use user_import::Field;
    /// assert_eq!(Field::from_header("USER_ID"), Some(Field::UserId));
    /// assert_eq!(Field::from_header("Employee Number"), Some(Field::UserId));
    /// assert_eq!(Field::from_header("shoe size"), None);
    /// ```
    pub fn from_header(header: &str) -> Option<Field> {
        let folded = fold_header(header);
        Field::ALL
            .iter()
            .copied()
            .find(|f| fold_header(f.header()) == folded || f.aliases().contains(&folded.as_str()))
    }

    /// `true` for the boolean fields.
    pub(crate) fn is_bool(self) -> bool {
        matches!(self, Field::Enabled | Field::Sso | Field::NotifyIfNewUser)
    }

    /// The list separator of a list field.
    pub(crate) fn list_separator(self) -> Option<char> {
        match self {
            Field::Roles => Some('|'),
            Field::Permissions => Some(','),
            _ => None,
        }
    }

    /// Index among [`Field::ATTRIBUTES`], for the compact user layout.
    pub(crate) fn slot(self) -> Option<usize> {
        const NONE: u8 = u8::MAX;
        // By declaration order (`Field::ALL`); checked by a unit test.
        const SLOTS: [u8; Field::ALL.len()] = [
            0, NONE, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, NONE, NONE,
        ];
        match SLOTS[self.index()] {
            NONE => None,
            s => Some(usize::from(s)),
        }
    }

    /// Position in [`Field::ALL`] (the declaration order).
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// `fold_header(cell) == folded`, without allocating (the hot path checks
/// every row against the header this way).
pub(crate) fn folds_to(cell: &str, folded: &str) -> bool {
    let mut want = folded.chars();
    let kept = cell
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '\t') && !c.is_whitespace());
    for c in kept {
        for l in c.to_lowercase() {
            if want.next() != Some(l) {
                return false;
            }
        }
    }
    want.next().is_none()
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header())
    }
}

/// Folds a header for matching: lower case, with spaces, `_`, `-` and `.`
/// removed, and surrounding whitespace and a leading byte order mark ignored.
///
/// ```
/// use user_import::helpers::fold_header;
/// assert_eq!(fold_header(" First_Name "), "firstname");
/// assert_eq!(fold_header("e-mail"), "email");
/// assert_eq!(fold_header("firstName"), "firstname");
/// ```
pub fn fold_header(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '\t') && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The type of a custom attribute.
///
/// ```
/// use user_import::AttributeKind;
/// let k = AttributeKind::OneOf(vec!["S".into(), "M".into(), "L".into()]);
/// assert!(matches!(k, AttributeKind::OneOf(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttributeKind {
    /// Free text (trimmed, at most the configured number of characters).
    Text,
    /// A boolean: `true`/`false`, `yes`/`no`, `1`/`0`, any case.
    Bool,
    /// One of a fixed set of values, matched case-insensitively and stored in
    /// the set's spelling.
    OneOf(Vec<String>),
    /// A list of items separated by `separator`; order and duplicates ignored.
    List {
        /// The separator between items.
        separator: char,
    },
}

/// A caller-defined attribute of a user, beyond the standard fields.
///
/// ```
/// use user_import::{AttributeKind, CustomAttribute};
/// let a = CustomAttribute::new("costCenter", AttributeKind::Text).required();
/// assert!(a.required);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct CustomAttribute {
    /// The attribute's name, also its canonical header.
    pub name: String,
    /// Its type.
    pub kind: AttributeKind,
    /// Whether a row must give a value.
    #[serde(default)]
    pub required: bool,
    /// Aliases matched like headers (folded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Whether a value may hold line breaks (a text attribute such as notes
    /// or a postal address; a spreadsheet writes such a cell as a quoted
    /// value over several lines). Off: a value with a line break is an
    /// `invalid_value`, as in every standard field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multiline: bool,
}

impl CustomAttribute {
    /// A new optional attribute.
    ///
    /// ```
    /// let a = user_import::CustomAttribute::new("shirt", user_import::AttributeKind::Text);
    /// assert_eq!(a.name, "shirt");
    /// ```
    pub fn new(name: impl Into<String>, kind: AttributeKind) -> CustomAttribute {
        CustomAttribute {
            name: name.into(),
            kind,
            required: false,
            aliases: Vec::new(),
            multiline: false,
        }
    }

    /// Makes the attribute required.
    ///
    /// ```
    /// let a = user_import::CustomAttribute::new("x", user_import::AttributeKind::Bool).required();
    /// assert!(a.required);
    /// ```
    pub fn required(mut self) -> CustomAttribute {
        self.required = true;
        self
    }

    /// Lets a value hold line breaks (see [`CustomAttribute::multiline`]).
    ///
    /// ```
    /// use user_import::{AttributeKind, CustomAttribute, Importer, Profile};
    /// let mut profile = Profile::default();
    /// profile.custom = vec![CustomAttribute::new("notes", AttributeKind::Text).multiline()];
    /// let file = b"userId,email,notes\njdoe,j@x.io,\"first line\nsecond line\"\n";
    /// let v = Importer::with_profile("t", profile).validate(file, None);
    /// assert!(!v.has_errors());
    /// assert_eq!(v.rows()[0].user.custom("notes"), Some("first line\nsecond line"));
    /// ```
    pub fn multiline(mut self) -> CustomAttribute {
        self.multiline = true;
        self
    }

    /// Adds a header alias.
    ///
    /// ```
    /// let a = user_import::CustomAttribute::new("costCenter", user_import::AttributeKind::Text)
    ///     .alias("cost centre");
    /// assert_eq!(a.aliases, ["cost centre"]);
    /// ```
    pub fn alias(mut self, alias: impl Into<String>) -> CustomAttribute {
        self.aliases.push(alias.into());
        self
    }
}

/// What a column of the file is read into.
///
/// ```
/// use user_import::{Column, Field};
/// let c = Column::Field(Field::Email);
/// assert_ne!(c, Column::Ignore);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Column {
    /// A standard field.
    Field(Field),
    /// A custom attribute, by name.
    Custom(String),
    /// Read nothing from this column (and do not warn about it).
    Ignore,
}

/// An explicit mapping from the file's headers to fields (what a column
/// mapping screen produces),
/// serde-serializable so an import can be saved and re-run.
///
/// Headers in the mapping are matched after folding (see [`fold_header`]);
/// headers it does not name are matched automatically.
///
/// ```
/// use user_import::{Column, ColumnMapping, Field};
/// let mut m = ColumnMapping::new();
/// m.map("Mitarbeiter-Nr", Column::Field(Field::UserId));
/// m.map("Notes", Column::Ignore);
/// assert_eq!(m.get("mitarbeiter nr"), Some(&Column::Field(Field::UserId)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ColumnMapping {
    columns: IndexMap<String, Column>,
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for ColumnMapping {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<ColumnMapping> {
        let pairs: Vec<(String, Column)> = u.arbitrary()?;
        let mut m = ColumnMapping::new();
        for (h, c) in pairs {
            m.map(h, c);
        }
        Ok(m)
    }
}

impl ColumnMapping {
    /// An empty mapping: every header is matched automatically.
    ///
    /// ```
    /// assert!(user_import::ColumnMapping::new().is_empty());
    /// ```
    pub fn new() -> ColumnMapping {
        ColumnMapping::default()
    }

    /// Maps a header to a column target.
    ///
    /// ```
    /// let mut m = user_import::ColumnMapping::new();
    /// m.map("Mail", user_import::Column::Field(user_import::Field::Email));
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn map(&mut self, header: impl Into<String>, target: Column) -> &mut ColumnMapping {
        self.columns.insert(header.into(), target);
        self
    }

    /// The target a header is mapped to, if the mapping names it.
    ///
    /// ```
    /// let m = user_import::ColumnMapping::new();
    /// assert_eq!(m.get("x"), None);
    /// ```
    pub fn get(&self, header: &str) -> Option<&Column> {
        let folded = fold_header(header);
        self.columns
            .iter()
            .find(|(h, _)| fold_header(h) == folded)
            .map(|(_, c)| c)
    }

    /// Number of mapped headers.
    ///
    /// ```
    /// assert_eq!(user_import::ColumnMapping::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// `true` when nothing is mapped.
    ///
    /// ```
    /// assert!(user_import::ColumnMapping::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The mapped headers and their targets, in insertion order.
    ///
    /// ```
    /// let mut m = user_import::ColumnMapping::new();
    /// m.map("Mail", user_import::Column::Field(user_import::Field::Email));
    /// assert_eq!(m.iter().count(), 1);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.columns.iter().map(|(h, c)| (h.as_str(), c))
    }
}

/// The field used to identify users.
///
/// ```
/// use user_import::KeyField;
/// assert_eq!(KeyField::default(), KeyField::UserId);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyField {
    /// `userId`. Rows with a blank user id are matched by email.
    #[default]
    UserId,
    /// `email`, for files that identify users by email address. Rows are
    /// matched by email only.
    Email,
}

impl KeyField {
    /// The standard field behind the key.
    ///
    /// ```
    /// assert_eq!(user_import::KeyField::Email.field(), user_import::Field::Email);
    /// ```
    pub fn field(self) -> Field {
        match self {
            KeyField::UserId => Field::UserId,
            KeyField::Email => Field::Email,
        }
    }
}

/// Edit distance between two short strings (by characters), counting a swap
/// of two neighbouring characters as one edit (optimal string alignment).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j - 1] + cost)
                .min(d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The candidate closest to `name` (compared folded), if it is close enough to
/// be a plausible typo: at most a third of the longer name's length, and at
/// least one edit allowed.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let folded = fold_header(name);
    if folded.is_empty() || folded.len() > 200 {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    let len = folded.chars().count();
    for c in candidates {
        let fc = fold_header(c);
        if fc.len() > 200 {
            continue;
        }
        let clen = fc.chars().count();
        let allowed = (len.max(clen) / 3).max(1);
        // The distance is at least the difference in length: most candidates
        // are ruled out without computing it.
        if len.abs_diff(clen) > allowed {
            continue;
        }
        let d = edit_distance(&folded, &fc);
        if d <= allowed && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_fold_across_styles() {
        for h in [
            "firstName",
            "first_name",
            "First Name",
            "FIRST-NAME",
            "first name",
        ] {
            assert_eq!(Field::from_header(h), Some(Field::FirstName), "{h}");
        }
    }

    #[test]
    fn aliases_are_folded_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in Field::ALL {
            assert!(seen.insert(fold_header(f.header())), "{f}");
            for a in f.aliases() {
                assert_eq!(fold_header(a), *a, "alias {a} must be stored folded");
                assert!(seen.insert((*a).to_owned()), "alias {a} used twice");
            }
        }
    }

    #[test]
    fn slots_and_indexes_follow_the_declaration_order() {
        for (i, &f) in Field::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
            assert_eq!(
                f.slot(),
                Field::ATTRIBUTES.iter().position(|&a| a == f),
                "{f}"
            );
        }
    }

    #[test]
    fn folds_to_agrees_with_fold_header() {
        for (cell, folded) in [
            ("First Name", "firstname"),
            ("E-MAIL", "email"),
            ("\u{feff}userId", "userid"),
            ("İx", "i̇x"),
        ] {
            assert!(folds_to(cell, folded), "{cell}");
            assert_eq!(fold_header(cell), folded);
        }
        assert!(!folds_to("email2", "email"));
        assert!(!folds_to("emai", "email"));
    }

    #[test]
    fn closest_finds_typos_only() {
        let names = ["email", "firstName", "lastName"];
        assert_eq!(closest("emial", names).as_deref(), Some("email"));
        assert_eq!(closest("frist_name", names).as_deref(), Some("firstName"));
        assert_eq!(closest("shoe size", names), None);
    }
}
