//! The import profile: everything about an import that can be saved and
//! re-run later, as one serde value.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::email::EmailPolicy;
use crate::input::{Delimiter, Limits};
use crate::schema::{ColumnMapping, CustomAttribute, Field, KeyField};

/// What the import does with the users it matches.
///
/// ```
/// assert_eq!(user_import::Mode::default(), user_import::Mode::Upsert);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// Create users that do not exist, update those that do.
    #[default]
    Upsert,
    /// Only create; an existing user is an `already_exists` error.
    CreateOnly,
    /// Only update; a missing user is a `not_found` error (the second step
    /// of a two-step import: create the accounts, then update them).
    UpdateOnly,
    /// Upsert, and delete or disable (see [`MirrorAction`]) every user of the
    /// tenant that the file does not name. Opt-in and guarded.
    Mirror,
}

/// What mirror mode does to users absent from the file.
///
/// ```
/// assert_eq!(user_import::MirrorAction::default(), user_import::MirrorAction::Disable);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MirrorAction {
    /// Set `enabled=false` (reversible; the default).
    #[default]
    Disable,
    /// Delete them.
    Delete,
}

/// What happens to the rows of a file in which some rows have errors.
///
/// ```
/// assert_eq!(user_import::ErrorPolicy::default(), user_import::ErrorPolicy::RejectFile);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// All or nothing: any error rejects the whole file, and nothing is
    /// written. Applied in one transaction when the store has them.
    #[default]
    RejectFile,
    /// Import the valid rows, report the invalid ones (a file of six users
    /// with one bad row imports five and reports the sixth by its line).
    SkipInvalid,
    /// Like `SkipInvalid`, but give up (apply nothing) when more than this many
    /// rows have errors.
    StopAfter(u64),
}

/// What happens to a role the directory does not know.
///
/// ```
/// assert_eq!(user_import::RolePolicy::default(), user_import::RolePolicy::Reject);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RolePolicy {
    /// The row is rejected with `unknown_role` (the default).
    #[default]
    Reject,
    /// The role is created as the file names it, counted as Roles Added.
    Create,
    /// The unknown role is replaced by this role, with an `unknown_role`
    /// warning (typically a basic role such as `Standard` or `No Access`).
    Fallback(String),
}

/// What a blank cell means when updating an existing user.
///
/// ```
/// assert_eq!(user_import::BlankPolicy::default(), user_import::BlankPolicy::Keep);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BlankPolicy {
    /// Keep the current value (the default).
    #[default]
    Keep,
    /// Clear the value.
    Clear,
}

/// How a list in the file (roles, permissions) combines with the current one.
///
/// ```
/// assert_eq!(user_import::ListPolicy::default(), user_import::ListPolicy::Replace);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ListPolicy {
    /// The file's list replaces the current one (the default).
    #[default]
    Replace,
    /// Items are only added; nothing is removed.
    AddOnly,
    /// A cell may change the list instead of replacing it: `+X` adds `X`
    /// (unless the user has it), `-X` removes `X` (if the user has it), and
    /// the user's other items stay. Saved as `"lists": "tokens"`.
    ///
    /// - A cell whose every item starts with `+` or `-` is a change; a cell
    ///   with no such item replaces the list, as under
    ///   [`ListPolicy::Replace`]; a cell that mixes the two is an
    ///   `invalid_value` error, as is a cell that adds and removes the same
    ///   item or a sign with no name after it. A blank cell follows
    ///   [`crate::BlankPolicy`].
    /// - The list a change asks for is `(current ∪ added) ∖ removed`, in
    ///   the list's canonical order (sorted). Items are compared as the
    ///   list diff compares them: roles and permissions by the matching
    ///   policy ([`crate::normalize`]: `-admin` removes `Admin`, and `+admin`
    ///   does not add a second one), the items of a custom list attribute
    ///   exactly. A row that ends with the list it had is `unchanged`.
    /// - Added roles are checked as the roles of a plain list are: an
    ///   unknown role follows [`Profile::unknown_roles`] (rejected, created
    ///   or replaced by the fallback), and the grantable-roles guard applies.
    ///   Removing a role the user lacks, even one the catalog does not know,
    ///   does nothing and is no error.
    /// - A new user gets the added items (`-X` has nothing to remove).
    /// - It covers every list: `roles`, `permissions` and custom
    ///   attributes of kind [`crate::AttributeKind::List`].
    ///
    /// **Names that begin with `+` or `-`.** Under this policy the first
    /// `+` or `-` of an item is always the token and the rest is the name:
    /// `++C` adds the role `+C`, `-+C` removes it, and `--C` removes `-C`.
    /// Such a name can only be written with a token (a plain `+C` would be
    /// a change, not a list holding `+C`). Under the other policies every
    /// item is read as it is written.
    ///
    /// ```
    /// use user_import::memory::InMemoryStore;
    /// use user_import::{Field, Importer, ListPolicy, Op, Planned, Profile, RolePolicy, User};
    ///
    /// let mut store = InMemoryStore::new();
    /// store.insert("acme", User::builder()
    ///     .set(Field::UserId, "ann").set(Field::Email, "ann@example.com")
    ///     .set(Field::Roles, "Tester|Viewer").build());
    /// let mut profile = Profile::default();
    /// profile.lists = ListPolicy::Tokens;
    /// profile.unknown_roles = RolePolicy::Create;
    /// let importer = Importer::with_profile("acme", profile);
    /// let roles = |file: &str, store: &mut InMemoryStore| {
    ///     let plan = importer.plan(importer.validate(file.as_bytes(), None), store).unwrap();
    ///     plan.ops().iter().find_map(|op| match op {
    ///         Op::Update { changes, .. } => changes[0].new.clone(),
    ///         _ => None,
    ///     })
    /// };
    /// let file = |cell: &str| format!("userId,email,roles\nann,ann@example.com,{cell}\n");
    ///
    /// // Add one role and remove another; Tester stays.
    /// assert_eq!(roles(&file("+Admin|-viewer"), &mut store).as_deref(), Some("Admin|Tester"));
    /// // A plain list still replaces.
    /// assert_eq!(roles(&file("Admin"), &mut store).as_deref(), Some("Admin"));
    /// // `++C` adds the role `+C`.
    /// assert_eq!(roles(&file("++C"), &mut store).as_deref(), Some("+C|Tester|Viewer"));
    /// // Nothing to do: the row is unchanged.
    /// let plan = importer.plan(importer.validate(file("+Tester|-Ghost").as_bytes(), None), &mut store).unwrap();
    /// assert_eq!(plan.rows()[0].planned, Planned::Unchanged);
    /// // Mixing plain items and changes is an error that says what to write.
    /// let v = importer.validate(file("Admin|-Viewer").as_bytes(), None);
    /// let issue = v.issues().next().unwrap();
    /// assert_eq!((issue.code, issue.suggestion.as_deref()), (user_import::Code::InvalidValue, Some("+Admin|-Viewer")));
    /// ```
    Tokens,
}

/// Limits on what one import may take away, and whom it may empower.
///
/// ```
/// let g = user_import::Guards::default().max_deletes(10);
/// assert_eq!(g.max_deletes, Some(10));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Guards {
    /// At most this many users deleted or disabled by one import; more trips
    /// the guard (`guard_tripped`) and nothing is applied.
    pub max_deletes: Option<u64>,
    /// At most this share (0.0–1.0) of the tenant's existing users deleted or
    /// disabled by one import, checked once an import removes at least
    /// `min_removals_for_share` users (so deleting 2 of 3 users in a small
    /// directory is not refused). Default 0.5.
    pub max_delete_share: Option<f64>,
    /// Removals below this number never trip the share guard. Default 10.
    pub min_removals_for_share: u64,
    /// When set, the only roles this import may grant (`role_not_grantable`).
    pub grantable_roles: Option<Vec<String>>,
    /// Roles that make a user an administrator: the acting user may not lose
    /// all of them through the file (`self_lockout`).
    pub admin_roles: Vec<String>,
    /// Let the import go ahead although a guard tripped.
    pub override_guards: bool,
}

impl Default for Guards {
    fn default() -> Guards {
        Guards {
            max_deletes: None,
            max_delete_share: Some(0.5),
            min_removals_for_share: 10,
            grantable_roles: None,
            admin_roles: vec!["Admin".to_owned()],
            override_guards: false,
        }
    }
}

impl Guards {
    /// Sets the deletion cap.
    ///
    /// ```
    /// assert_eq!(user_import::Guards::default().max_deletes(3).max_deletes, Some(3));
    /// ```
    pub fn max_deletes(mut self, n: u64) -> Guards {
        self.max_deletes = Some(n);
        self
    }

    /// Sets the grantable roles.
    ///
    /// ```
    /// let g = user_import::Guards::default().grantable(["Tester"]);
    /// assert_eq!(g.grantable_roles.unwrap(), ["Tester"]);
    /// ```
    pub fn grantable<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Guards {
        self.grantable_roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }
}

/// Current version of the [`Profile`] format.
///
/// ```
/// assert_eq!(user_import::Profile::default().version, user_import::PROFILE_VERSION);
/// ```
pub const PROFILE_VERSION: u32 = 1;

/// The custom attribute in which an import source ([`Profile::source`])
/// tags the users it creates.
///
/// ```
/// assert_eq!(user_import::SOURCE_ATTRIBUTE, "importSource");
/// ```
pub const SOURCE_ATTRIBUTE: &str = "importSource";

/// Everything about an import that can be stored and re-run: the column
/// mapping, key and required fields, custom attributes, reading options and
/// policies. Serializes to JSON and back (every field has a default, so a
/// stored profile only needs what differs).
///
/// ```
/// use user_import::{Field, Mode, Profile};
/// let mut p = Profile::default();
/// p.mode = Mode::CreateOnly;
/// p.required = vec![Field::UserId, Field::Email, Field::FirstName, Field::LastName];
/// assert_eq!(p.key, user_import::KeyField::UserId);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Profile {
    /// Format version, for migrations ([`PROFILE_VERSION`]).
    pub version: u32,
    /// The field that identifies users.
    pub key: KeyField,
    /// Fields a row must give (for `DELETE` rows only the key is needed).
    /// Default: `userId` and `email`.
    pub required: Vec<Field>,
    /// Custom attributes.
    pub custom: Vec<CustomAttribute>,
    /// Explicit header mapping; headers it does not name are matched automatically.
    pub mapping: ColumnMapping,
    /// How some columns' values are read (a vendor's words, inverted
    /// booleans).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<ValueMap>,
    /// Lines before the header to skip (a vendor's `version:v1.0` line).
    /// `None` (the default) skips them only when they are unambiguous:
    /// leading lines of one cell that names no column, followed by a header
    /// that names at least two. `Some(0)` never skips.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preamble: Option<usize>,
    /// Whether a row with fewer cells than the header is read with the
    /// missing cells blank (some products write rows without their empty
    /// trailing cells). Off: such a row is a `malformed_row`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub short_rows: bool,
    /// The preset this profile came from ([`Profile::preset`]), reported with
    /// the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The delimiter.
    pub delimiter: Delimiter,
    /// The character encoding: `None` detects it (a byte order mark, else
    /// UTF-8; invalid UTF-8 is reported per row, never guessed);
    /// `Some(Encoding::Windows1252)` reads older Excel "CSV" exports.
    pub encoding: Option<crate::input::Encoding>,
    /// The sheet of a workbook to read (`None`: the first).
    pub sheet: Option<String>,
    /// Limits.
    pub limits: Limits,
    /// The email policy.
    pub email: EmailPolicy,
    /// Longest text value, in characters (emails: 254). Default 255.
    pub max_text_chars: usize,
    /// Create / update / mirror.
    pub mode: Mode,
    /// Mirror mode's treatment of absent users.
    pub mirror: MirrorAction,
    /// Rows with errors.
    pub on_error: ErrorPolicy,
    /// Unknown roles.
    pub unknown_roles: RolePolicy,
    /// Blank cells on update.
    pub blank: BlankPolicy,
    /// How a list cell combines with the user's list (and, under
    /// [`ListPolicy::Tokens`], how it is read).
    pub lists: ListPolicy,
    /// Guards.
    pub guards: Guards,
    /// Users fetched from and written to the store per call.
    pub batch_size: usize,
    /// The name of this import source (an HR feed, a nightly sync). Users
    /// it creates carry it in the custom attribute [`SOURCE_ATTRIBUTE`],
    /// which the store keeps like any other; in mirror mode only users
    /// carrying it are disabled or deleted, so one source never removes
    /// the users another source or an administrator created. The guards
    /// apply on top. `None` (the default): no tag, and mirror mode reaches
    /// every user of the tenant.
    ///
    /// ```
    /// use user_import::{Importer, MirrorAction, Mode, Profile, SOURCE_ATTRIBUTE};
    /// use user_import::memory::InMemoryStore;
    /// let mut p = Profile::default();
    /// p.source = Some("hr-feed".into());
    /// p.mode = Mode::Mirror;
    /// p.mirror = MirrorAction::Delete;
    /// let importer = Importer::with_profile("t", p);
    /// let mut store = InMemoryStore::new();
    /// importer.run(b"userId,email\na,a@x.io\nb,b@x.io\n", None, &mut store)?;
    /// assert_eq!(store.get("t", "a").unwrap().user.custom(SOURCE_ATTRIBUTE), Some("hr-feed"));
    /// // A user the feed did not create stays when the feed no longer names them.
    /// store.insert("t", user_import::User::builder()
    ///     .set(user_import::Field::UserId, "admin").set(user_import::Field::Email, "admin@x.io").build());
    /// let report = importer.run(b"userId,email\na,a@x.io\n", None, &mut store)?;
    /// assert_eq!(report.directory.len(), 1, "b is deleted");
    /// assert!(store.get("t", "admin").is_some());
    /// # Ok::<(), user_import::Error>(())
    /// ```
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Read from profiles saved with a `threads` setting, and ignored: how
    /// many threads an import uses is an execution setting
    /// ([`crate::Importer::threads`]), not part of what is saved.
    #[serde(rename = "threads", skip_serializing)]
    #[cfg_attr(feature = "arbitrary", arbitrary(default))]
    pub(crate) legacy_threads: Option<serde::de::IgnoredAny>,
}

impl Default for Profile {
    fn default() -> Profile {
        Profile {
            version: PROFILE_VERSION,
            key: KeyField::UserId,
            required: vec![Field::UserId, Field::Email],
            custom: Vec::new(),
            mapping: ColumnMapping::new(),
            values: Vec::new(),
            preamble: None,
            short_rows: false,
            preset: None,
            delimiter: Delimiter::Auto,
            encoding: None,
            sheet: None,
            limits: Limits::default(),
            email: EmailPolicy::Strict,
            max_text_chars: 255,
            mode: Mode::Upsert,
            mirror: MirrorAction::Disable,
            on_error: ErrorPolicy::RejectFile,
            unknown_roles: RolePolicy::Reject,
            blank: BlankPolicy::Keep,
            lists: ListPolicy::Replace,
            guards: Guards::default(),
            batch_size: 1000,
            source: None,
            legacy_threads: None,
        }
    }
}

impl Profile {
    /// What is wrong with this profile, in words; empty when it is usable.
    /// Checked: the format version; the key is one of the required fields;
    /// required fields are user attributes; the mapping names defined custom
    /// attributes and maps no field twice; custom attributes have distinct
    /// names that are not standard headers or aliases, and usable types; the
    /// fallback role, limits, batch size and deletion share make sense.
    ///
    /// ```
    /// use user_import::{Field, Profile};
    /// let mut p = Profile::default();
    /// assert!(p.problems().is_empty());
    /// p.required = vec![Field::Email, Field::Transaction];
    /// p.batch_size = 0;
    /// assert_eq!(p.problems().len(), 3);
    /// ```
    pub fn problems(&self) -> Vec<String> {
        use crate::schema::{AttributeKind, Column, fold_header};
        let mut out = Vec::new();
        if self.version != PROFILE_VERSION {
            out.push(format!(
                "profile version {} is not supported (this library reads version {PROFILE_VERSION})",
                self.version
            ));
        }
        if !self.required.contains(&self.key.field()) {
            out.push(format!(
                "the key field {:?} must be one of the required fields",
                self.key.field().header()
            ));
        }
        for f in &self.required {
            if matches!(
                f,
                Field::Tenant | Field::Transaction | Field::NotifyIfNewUser
            ) {
                out.push(format!(
                    "{:?} cannot be required: it is not a user attribute",
                    f.header()
                ));
            }
        }
        let mut mapped: Vec<(&str, &Column)> = Vec::new();
        for (header, target) in self.mapping.iter() {
            match target {
                Column::Custom(name) if !self.custom.iter().any(|a| a.name == *name) => out.push(format!(
                    "the mapping sends column {header:?} to custom attribute {name:?}, which is not defined"
                )),
                Column::Ignore => {}
                _ => {
                    if let Some((other, _)) = mapped.iter().find(|(_, t)| *t == target) {
                        out.push(format!("the mapping sends both {other:?} and {header:?} to the same field"));
                    }
                    mapped.push((header, target));
                }
            }
        }
        for (i, a) in self.custom.iter().enumerate() {
            let folded = fold_header(&a.name);
            if folded.is_empty() {
                out.push("a custom attribute has no name".to_owned());
            } else if Field::from_header(&a.name).is_some() {
                out.push(format!(
                    "custom attribute {:?} has the name of a standard field",
                    a.name
                ));
            }
            if self.custom[..i]
                .iter()
                .any(|b| fold_header(&b.name) == folded)
            {
                out.push(format!("custom attribute {:?} is defined twice", a.name));
            }
            match &a.kind {
                AttributeKind::OneOf(options) if options.is_empty() => {
                    out.push(format!(
                        "custom attribute {:?} is one of an empty set",
                        a.name
                    ));
                }
                AttributeKind::List {
                    separator: '"' | '\n' | '\r',
                } => {
                    out.push(format!(
                        "custom attribute {:?} has an unusable list separator",
                        a.name
                    ));
                }
                _ => {}
            }
        }
        if let RolePolicy::Fallback(role) = &self.unknown_roles
            && (role.trim().is_empty() || role.contains(char::is_whitespace))
        {
            out.push(format!(
                "the fallback role {role:?} is not a valid role name"
            ));
        }
        if self.batch_size == 0 {
            out.push("the batch size must be at least 1".to_owned());
        }
        if let Some(share) = self.guards.max_delete_share
            && !(0.0..=1.0).contains(&share)
        {
            out.push(format!(
                "the deletion share {share} must be between 0 and 1"
            ));
        }
        let l = &self.limits;
        if l.file_bytes == 0 || l.rows == 0 || l.field_bytes == 0 || l.columns == 0 {
            out.push("limits must be at least 1".to_owned());
        }
        out
    }

    /// [`Profile::problems`] as a result.
    ///
    /// # Errors
    ///
    /// [`crate::Error`] of kind `Config` listing every problem.
    ///
    /// ```
    /// let mut p = user_import::Profile::default();
    /// assert!(p.check().is_ok());
    /// p.batch_size = 0;
    /// assert_eq!(p.check().unwrap_err().kind(), user_import::ErrorKind::Config);
    /// ```
    pub fn check(&self) -> Result<(), crate::error::Error> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(crate::error::Error::config(format!(
                "the profile is not usable: {}",
                problems.join("; ")
            )))
        }
    }

    /// Reads a profile stored as JSON, refusing unknown settings (a typo is
    /// an error, not a silently ignored option) and profiles from a newer
    /// version, then [`Profile::check`]s it. Settings left out take their
    /// defaults.
    ///
    /// # Errors
    ///
    /// [`crate::Error`] of kind `Config`.
    ///
    /// ```
    /// use user_import::{Mode, Profile};
    /// let p = Profile::from_json(r#"{"version": 1, "mode": "create_only"}"#)?;
    /// assert_eq!(p.mode, Mode::CreateOnly);
    /// assert!(Profile::from_json(r#"{"mdoe": "create_only"}"#).is_err());
    /// assert_eq!(Profile::from_json(&Profile::default().to_json())?, Profile::default());
    /// # Ok::<(), user_import::Error>(())
    /// ```
    #[cfg(feature = "json")]
    pub fn from_json(text: &str) -> Result<Profile, crate::error::Error> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            crate::error::Error::config(format!("the profile is not valid JSON: {e}"))
        })?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v > u64::from(PROFILE_VERSION) => {
                return Err(crate::error::Error::config(format!(
                    "the profile is version {v}, made by a newer version of the library (this one reads version {PROFILE_VERSION})"
                )));
            }
            // Version 1 is the first: nothing to migrate yet.
            _ => {}
        }
        let profile: Profile = serde_json::from_value(value)
            .map_err(|e| crate::error::Error::config(format!("the profile is not usable: {e}")))?;
        profile.check()?;
        Ok(profile)
    }

    /// The profile as pretty-printed JSON (every setting, so it documents itself).
    ///
    /// ```
    /// assert!(user_import::Profile::default().to_json().contains("\"batch_size\": 1000"));
    /// ```
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The columns of a users file for this profile: the canonical columns,
    /// then the other standard fields the profile requires or maps, then its
    /// custom attributes; each under the header the mapping gives it, if any.
    fn template_columns(
        &self,
    ) -> Vec<(
        String,
        Option<Field>,
        Option<&crate::schema::CustomAttribute>,
    )> {
        use crate::schema::Column;
        const CANONICAL: [Field; 11] = [
            Field::UserId,
            Field::Tenant,
            Field::FirstName,
            Field::LastName,
            Field::Email,
            Field::Enabled,
            Field::ReportsTo,
            Field::Roles,
            Field::TaskNotification,
            Field::Transaction,
            Field::NotifyIfNewUser,
        ];
        let header_of = |target: &Column, default: &str| {
            self.mapping
                .iter()
                .find(|(_, t)| *t == target)
                .map_or_else(|| default.to_owned(), |(h, _)| h.to_owned())
        };
        let mut cols = Vec::new();
        for &f in Field::ALL {
            let wanted = CANONICAL.contains(&f)
                || self.required.contains(&f)
                || self.mapping.iter().any(|(_, t)| *t == Column::Field(f));
            if wanted {
                cols.push((header_of(&Column::Field(f), f.header()), Some(f), None));
            }
        }
        for a in &self.custom {
            cols.push((
                header_of(&Column::Custom(a.name.clone()), &a.name),
                None,
                Some(a),
            ));
        }
        cols
    }

    /// A users file to download and fill in, the example file an
    /// administrator starts from: the profile's headers and one example
    /// row, formula-safe. Validating it with the same profile gives no error.
    ///
    /// ```
    /// let t = user_import::Profile::default().template();
    /// assert!(t.starts_with("userId,tenant,firstName,lastName,email,enabled,reportsTo,roles,"));
    /// let v = user_import::Importer::new("t").validate(t.as_bytes(), None);
    /// assert!(!v.has_errors());
    /// ```
    pub fn template(&self) -> String {
        use crate::schema::AttributeKind;
        let cols = self.template_columns();
        let example = |f: Field| -> &'static str {
            match f {
                Field::UserId => "jdoe",
                Field::FirstName => "John",
                Field::LastName => "Doe",
                Field::Email => "john.doe@example.com",
                Field::Enabled | Field::Sso => "true",
                Field::Roles => "Tester",
                Field::TaskNotification => "Email",
                Field::NotifyIfNewUser => "false",
                Field::Location => "Headquarters",
                Field::DepartmentId => "Sales",
                Field::GroupName => "Readers",
                Field::Permissions => "Products Read",
                _ => "",
            }
        };
        let mut w = crate::cell::SafeWriter::new(Vec::new());
        let header: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
        let row: Vec<String> = cols
            .iter()
            .map(|(_, f, a)| match (f, a) {
                (Some(f), _) => example(*f).to_owned(),
                (_, Some(a)) => match &a.kind {
                    AttributeKind::Bool => "false".to_owned(),
                    AttributeKind::OneOf(options) => options.first().cloned().unwrap_or_default(),
                    AttributeKind::List { separator } => format!("one{separator}two"),
                    _ => "example".to_owned(),
                },
                _ => String::new(),
            })
            .collect();
        // Writing to a Vec cannot fail.
        let _ = w.row(header);
        let _ = w.row(row.iter().map(String::as_str));
        let bytes = w.into_inner();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

/// How the values of one column are read: a vendor's words mapped to the
/// field's (`Active` → `true`, `deleted` → `DELETE`), and, for a boolean
/// column that says the opposite of its field (`Block sign in`, `suspended`),
/// an inversion. Part of a [`crate::Profile`], so a saved import re-runs the
/// same way.
///
/// The column is named by its header, matched as [`crate::ColumnMapping`] matches
/// headers (after [`crate::helpers::fold_header`]). A value is trimmed, then looked up in
/// `values` as identities are matched ([`crate::normalize`]); a value not
/// listed is read as it is. Then, when
/// `invert` is set, a boolean (`true`/`false`, `yes`/`no`, `1`/`0`) is read
/// as its opposite; anything else is left for the field's own check.
///
/// ```
/// use user_import::{Column, Field, Importer, Profile, ValueMap};
/// let mut p = Profile::default();
/// p.mapping.map("Block sign in", Column::Field(Field::Enabled));
/// p.values.push(ValueMap::new("Block sign in").invert());
/// p.values.push(ValueMap::new("status").value("Active", "").value("Gone", "DELETE"));
/// p.mapping.map("status", Column::Field(Field::Transaction));
/// let file = b"userId,email,Block sign in,status\na,a@x.io,Yes,Active\nb,,No,gone\n";
/// let v = Importer::with_profile("t", p).validate(file, None);
/// assert!(!v.has_errors(), "{}", v.render_text());
/// assert_eq!(v.rows()[0].user.enabled(), Some(false));
/// assert_eq!(v.rows()[1].action, user_import::Action::Delete);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct ValueMap {
    /// The column's header.
    pub column: String,
    /// The file's words and what they are read as.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[cfg_attr(feature = "arbitrary", arbitrary(with = arbitrary_values))]
    pub values: IndexMap<String, String>,
    /// Read a boolean as its opposite (after `values`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert: bool,
}

#[cfg(feature = "arbitrary")]
fn arbitrary_values(
    u: &mut arbitrary::Unstructured<'_>,
) -> arbitrary::Result<IndexMap<String, String>> {
    let pairs: Vec<(String, String)> = u.arbitrary()?;
    Ok(pairs.into_iter().collect())
}

impl ValueMap {
    /// A map for the column with header `column` that reads every value as
    /// it is (until [`ValueMap::value`] or [`ValueMap::invert`]).
    ///
    /// ```
    /// let m = user_import::ValueMap::new("status");
    /// assert_eq!(m.read("Active"), "Active");
    /// ```
    pub fn new(column: impl Into<String>) -> ValueMap {
        ValueMap {
            column: column.into(),
            values: IndexMap::new(),
            invert: false,
        }
    }

    /// Reads the file's `word` (any case) as `meaning`.
    ///
    /// ```
    /// let m = user_import::ValueMap::new("status").value("Suspended", "false");
    /// assert_eq!(m.read(" SUSPENDED "), "false");
    /// ```
    pub fn value(mut self, word: impl Into<String>, meaning: impl Into<String>) -> ValueMap {
        self.values.insert(word.into(), meaning.into());
        self
    }

    /// Reads booleans as their opposite.
    ///
    /// ```
    /// let m = user_import::ValueMap::new("Block sign in").invert();
    /// assert_eq!(m.read("Yes"), "false");
    /// assert_eq!(m.read("maybe"), "maybe");
    /// ```
    pub fn invert(mut self) -> ValueMap {
        self.invert = true;
        self
    }

    /// What a cell of the column is read as.
    ///
    /// ```
    /// let m = user_import::ValueMap::new("active").value("Y", "yes").invert();
    /// assert_eq!(m.read("y"), "false");
    /// ```
    pub fn read(&self, cell: &str) -> String {
        let v = cell.trim();
        let mapped = self
            .values
            .iter()
            .find(|(word, _)| crate::matching::same(word, v))
            .map_or(v, |(_, meaning)| meaning.as_str());
        if self.invert
            && let Some(b) = crate::record::parse_bool(mapped)
        {
            return (!b).to_string();
        }
        mapped.to_owned()
    }
}
