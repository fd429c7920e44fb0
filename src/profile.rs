//! The import profile: everything about an import that can be saved and
//! re-run (S2 "saves as an action"), as one serde value.

use serde::{Deserialize, Serialize};

use crate::input::{Delimiter, Limits};
use crate::schema::{ColumnMapping, CustomAttribute, Field, KeyField};
use crate::validate::EmailPolicy;

/// What the import does with the users it matches (SPEC §4).
///
/// ```
/// assert_eq!(user_import::Mode::default(), user_import::Mode::Upsert);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mode {
    /// Create users that do not exist, update those that do (S3, S4).
    #[default]
    Upsert,
    /// Only create; an existing user is an `already_exists` error.
    CreateOnly,
    /// Only update; a missing user is a `not_found` error (S1 step 2).
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
    /// All or nothing: any error rejects the whole file (S4 will not load a
    /// file with errors). Applied in one transaction when the store has them.
    #[default]
    RejectFile,
    /// Import the valid rows, report the invalid ones (S3: "5 out of 6 imported").
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
    /// The role is created (S4: "roles are inserted as necessary"), counted as
    /// Roles Added.
    Create,
    /// The unknown role is replaced by this role, with an `unknown_role`
    /// warning (S3 gives Standard, S2 gives No Access).
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
}

/// Limits on what one import may take away, and whom it may empower.
///
/// ```
/// let g = user_import::Guards::default().max_deletes(10);
/// assert_eq!(g.max_deletes, Some(10));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(default)]
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
pub const PROFILE_VERSION: u32 = 1;

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
#[serde(default)]
#[non_exhaustive]
pub struct Profile {
    /// Format version, for migrations ([`PROFILE_VERSION`]).
    pub version: u32,
    /// The field that identifies users.
    pub key: KeyField,
    /// Fields a row must give (for `DELETE` rows only the key is needed).
    /// Default: `userId` and `email` (S4).
    pub required: Vec<Field>,
    /// Custom attributes.
    pub custom: Vec<CustomAttribute>,
    /// Explicit header mapping; headers it does not name are matched automatically.
    pub mapping: ColumnMapping,
    /// The delimiter.
    pub delimiter: Delimiter,
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
    /// Lists on update.
    pub lists: ListPolicy,
    /// Guards.
    pub guards: Guards,
    /// Users fetched from and written to the store per call.
    pub batch_size: usize,
}

impl Default for Profile {
    fn default() -> Profile {
        Profile {
            version: PROFILE_VERSION,
            key: KeyField::UserId,
            required: vec![Field::UserId, Field::Email],
            custom: Vec::new(),
            mapping: ColumnMapping::new(),
            delimiter: Delimiter::Auto,
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
        }
    }
}
