//! Issues: what the library found wrong (or worth a warning) in a file, a row
//! or a plan, each with a stable machine-readable [`Code`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad an [`Issue`] is.
///
/// ```
/// use user_import::Severity;
/// assert!(Severity::Error > Severity::Warning);
/// assert_eq!(Severity::Error.as_str(), "error");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; the row is still imported.
    Warning,
    /// The row (or, for a file-level issue, the file) cannot be imported as it is.
    Error,
}

impl Severity {
    /// The lower-case name used in reports: `"warning"` or `"error"`.
    ///
    /// ```
    /// assert_eq!(user_import::Severity::Warning.as_str(), "warning");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// The stable, snake_case code of an [`Issue`].
        ///
        /// Codes are public API: a code's name and meaning never change, and new
        /// codes may be added (the enum is `#[non_exhaustive]`). Serialized as
        /// the snake_case name, e.g. `"missing_value"`.
        ///
        /// ```
        /// use user_import::Code;
        /// assert_eq!(Code::MissingValue.as_str(), "missing_value");
        /// assert_eq!("duplicate_email".parse::<Code>(), Ok(Code::DuplicateEmail));
        /// assert_eq!(Code::ALL.len(), Code::ALL.iter().collect::<std::collections::HashSet<_>>().len());
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order.
            ///
            /// ```
            /// assert!(user_import::Code::ALL.contains(&user_import::Code::Conflict));
            /// ```
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code's snake_case name.
            ///
            /// ```
            /// assert_eq!(user_import::Code::FileEmpty.as_str(), "file_empty");
            /// ```
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }
        }

        impl std::str::FromStr for Code {
            type Err = UnknownCode;
            fn from_str(s: &str) -> Result<Self, UnknownCode> {
                match s { $($name => Ok(Code::$variant),)* _ => Err(UnknownCode(s.to_owned())) }
            }
        }
    };
}

codes! {
    /// The file has no data rows: it is empty, or holds only a header.
    FileEmpty = "file_empty",
    /// A required column is absent from the header. File-level error, line 1.
    MissingColumn = "missing_column",
    /// Two header cells name the same field (after case/space/alias folding).
    /// A file-level error when neither names it better (two `email` columns,
    /// or two columns the mapping gives one field); a warning when one is
    /// only an alias and another is the field's own name, or both are
    /// aliases: the better (or first) is read, and the warning names it.
    DuplicateColumn = "duplicate_column",
    /// A header cell names no known field; the column is ignored. Warning, with the
    /// closest known name as suggestion.
    UnknownColumn = "unknown_column",
    /// The CSV structure is broken. On a row: text after a closing quote, a
    /// NUL byte, more or fewer cells than the header, or a row that repeats
    /// the header. File-level (nothing is imported, under any policy): a
    /// quote that never closes, or a quoted value that merges what look like
    /// rows, naming the lines where the quote opens and closes.
    MalformedRow = "malformed_row",
    /// Bytes that are not valid in the file's encoding (for example invalid UTF-8
    /// in a row, UTF-16 without a byte order mark, or a byte order mark in the
    /// middle of the file).
    InvalidEncoding = "invalid_encoding",
    /// A configured limit (bytes per file, rows per file, bytes per field,
    /// columns) was exceeded.
    LimitExceeded = "limit_exceeded",
    /// A required value is blank.
    MissingValue = "missing_value",
    /// The email address does not meet the email policy.
    InvalidEmail = "invalid_email",
    /// A value is not one the field accepts (a boolean, an enumeration such as
    /// `taskNotification` or `transaction`, a custom attribute's type, a
    /// length), or, under [`ListPolicy::Tokens`](crate::ListPolicy::Tokens),
    /// a list cell that mixes plain items with `+`/`-` changes, adds and
    /// removes the same item, or has a sign with no name after it.
    InvalidValue = "invalid_value",
    /// Two or more rows share a key (compared case-insensitively); all of them are
    /// rejected, each naming the others' lines.
    DuplicateKey = "duplicate_key",
    /// Two or more rows share an email address (compared case-insensitively); all
    /// of them are rejected, each naming the others' lines.
    DuplicateEmail = "duplicate_email",
    /// The email address belongs to another user of the directory.
    EmailTaken = "email_taken",
    /// The row's key and its email address identify two different users.
    IdentityConflict = "identity_conflict",
    /// A role the directory does not know (error or warning, per the unknown-role policy).
    UnknownRole = "unknown_role",
    /// A role name breaks the naming rules: spaces, or more than 100 characters.
    InvalidRoleName = "invalid_role_name",
    /// The row would grant a role outside the importer's grantable set.
    RoleNotGrantable = "role_not_grantable",
    /// A location, department, permission group or manager (`reportsTo`) that does
    /// not exist.
    UnknownReference = "unknown_reference",
    /// `reportsTo` forms a cycle (including a user who reports to themselves).
    ReportsToCycle = "reports_to_cycle",
    /// The row names a tenant other than the import's current tenant.
    TenantMismatch = "tenant_mismatch",
    /// Create-only mode: the user already exists.
    AlreadyExists = "already_exists",
    /// Update-only mode: the user does not exist; or a `DELETE` row for a user that
    /// is not there (a warning: the row is skipped).
    NotFound = "not_found",
    /// A locked field was not changed (warning; the current value is kept).
    FieldLocked = "field_locked",
    /// The acting administrator would delete, disable or demote themselves.
    SelfLockout = "self_lockout",
    /// The plan deletes or disables more users than the guard allows; nothing is applied.
    GuardTripped = "guard_tripped",
    /// The user changed in the directory between planning and applying.
    Conflict = "conflict",
    /// The store failed to apply an operation, or did not say what happened to it.
    StoreError = "store_error",
    /// The delimiter could not be detected with certainty; the caller must name it.
    AmbiguousDelimiter = "ambiguous_delimiter",
    /// A `DELETE` row for a user whom other users that stay still report to.
    HasReports = "has_reports",
    /// The import was cancelled; the rows it did not reach were not applied.
    Cancelled = "cancelled",
    /// The file is not something the importer reads: an Excel workbook or a
    /// zip file in a build without the `xlsx` / `zip` feature, a zip file that
    /// does not hold exactly one `.csv` / `.txt`, a zip inside a zip, an
    /// unreadable workbook or sheet.
    UnsupportedFormat = "unsupported_format",
    /// Rows have errors and the error policy refuses the whole file (all or
    /// nothing, or more errors than `stop_after` allows): nothing is imported.
    FileRejected = "file_rejected",
    /// A warning: the email address is valid, but its domain is under a
    /// special-use top-level domain (such as `.test`, `.invalid` or
    /// `.localhost`), where mail is not normally delivered. The row is still
    /// imported. See [`EmailPolicy::warning`](crate::EmailPolicy::warning).
    SpecialUseDomain = "special_use_domain",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when parsing a string that is not a known [`Code`].
///
/// ```
/// assert!("no_such_code".parse::<user_import::Code>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown issue code {0:?}")]
pub struct UnknownCode(pub String);

/// One problem (or warning) found in a file, a row or a plan.
///
/// Every issue has a severity, a stable [`Code`], and where they apply the
/// physical `line` (header = line 1), the `column` (the header as written in the
/// file), the offending `value` (made safe to print), a human `message` and a
/// `suggestion` (the closest known name).
///
/// ```
/// use user_import::{Code, Issue, Severity};
/// let issue = Issue::new(Severity::Error, Code::MissingValue, "missing required value")
///     .at(5)
///     .column("email");
/// assert_eq!(issue.to_string(), "line 5, email: missing required value [missing_value]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Issue {
    /// Error or warning.
    pub severity: Severity,
    /// The stable code.
    pub code: Code,
    /// Physical line where the row starts (header = 1); `None` (JSON `null`)
    /// for issues that concern no line (for example a guard on the whole plan).
    #[serde(default)]
    pub line: Option<u64>,
    /// The column as written in the file's header (or the field's canonical
    /// header when the column is absent); `None` (JSON `null`) when the issue
    /// is about no column.
    #[serde(default)]
    pub column: Option<String>,
    /// The offending value, truncated and with control characters escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A sentence for a human.
    pub message: String,
    /// The closest known name, or another hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl Issue {
    /// A new issue with no line, column, value or suggestion.
    ///
    /// ```
    /// use user_import::{Code, Issue, Severity};
    /// let i = Issue::new(Severity::Error, Code::FileEmpty, "file is empty");
    /// assert_eq!(i.line, None);
    /// ```
    pub fn new(severity: Severity, code: Code, message: impl Into<String>) -> Issue {
        Issue {
            severity,
            code,
            line: None,
            column: None,
            value: None,
            message: message.into(),
            suggestion: None,
        }
    }

    /// An error.
    ///
    /// ```
    /// let i = user_import::Issue::error(user_import::Code::FileEmpty, "file is empty");
    /// assert!(i.is_error());
    /// ```
    pub fn error(code: Code, message: impl Into<String>) -> Issue {
        Issue::new(Severity::Error, code, message)
    }

    /// A warning.
    ///
    /// ```
    /// let i = user_import::Issue::warning(user_import::Code::UnknownColumn, "ignored");
    /// assert!(!i.is_error());
    /// ```
    pub fn warning(code: Code, message: impl Into<String>) -> Issue {
        Issue::new(Severity::Warning, code, message)
    }

    /// Sets the line.
    ///
    /// ```
    /// let i = user_import::Issue::error(user_import::Code::MalformedRow, "x").at(3);
    /// assert_eq!(i.line, Some(3));
    /// ```
    pub fn at(mut self, line: u64) -> Issue {
        self.line = Some(line);
        self
    }

    /// Sets the column.
    ///
    /// ```
    /// let i = user_import::Issue::error(user_import::Code::MissingValue, "x").column("email");
    /// assert_eq!(i.column.as_deref(), Some("email"));
    /// ```
    pub fn column(mut self, column: impl Into<String>) -> Issue {
        self.column = Some(column.into());
        self
    }

    /// Sets the offending value; it is made safe to print (see [`printable`]).
    ///
    /// ```
    /// let i = user_import::Issue::error(user_import::Code::InvalidEmail, "x").value("a\u{0}b");
    /// assert_eq!(i.value.as_deref(), Some("a\\u{0}b"));
    /// ```
    pub fn value(mut self, value: &str) -> Issue {
        self.value = Some(printable(value));
        self
    }

    /// Sets the suggestion.
    ///
    /// ```
    /// let i = user_import::Issue::warning(user_import::Code::UnknownRole, "x").suggest("Admin");
    /// assert_eq!(i.suggestion.as_deref(), Some("Admin"));
    /// ```
    pub fn suggest(mut self, suggestion: impl Into<String>) -> Issue {
        self.suggestion = Some(suggestion.into());
        self
    }

    /// Sets the suggestion when there is one.
    pub(crate) fn maybe_suggest(self, suggestion: Option<String>) -> Issue {
        match suggestion {
            Some(s) => self.suggest(s),
            None => self,
        }
    }

    /// `true` for [`Severity::Error`].
    ///
    /// ```
    /// assert!(user_import::Issue::error(user_import::Code::Conflict, "x").is_error());
    /// ```
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts issues deterministically: by line (issues without a line first), then
/// by the column's position in `columns` (issues without a column first,
/// columns not in the file after those that are), then code; the sort is
/// stable, so issues with equal keys keep the order they were found in.
pub(crate) fn sort_issues(issues: &mut [Issue], columns: &[String]) {
    let position = |i: &Issue| match &i.column {
        None => 0,
        Some(c) => columns
            .iter()
            .position(|h| h == c)
            .map_or(usize::MAX, |p| p + 1),
    };
    issues.sort_by_cached_key(|i| (i.line.unwrap_or(0), position(i), i.code));
}

impl fmt::Display for Issue {
    /// `line 5, email: missing required value [missing_value]`, with the parts
    /// that are absent left out, and `(did you mean "X"?)` when there is a
    /// suggestion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prefix = false;
        if let Some(line) = self.line {
            write!(f, "line {line}")?;
            prefix = true;
        }
        if let Some(column) = &self.column {
            if prefix {
                f.write_str(", ")?;
            }
            f.write_str(&printable(column))?;
            prefix = true;
        }
        if prefix {
            f.write_str(": ")?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            match self.code {
                // For these codes the suggestion is advice, not a name.
                Code::FileRejected | Code::GuardTripped | Code::AmbiguousDelimiter => {
                    write!(f, " ({})", printable(s))?
                }
                _ => write!(f, " (did you mean \"{}\"?)", printable(s))?,
            }
        }
        write!(f, " [{}]", self.code)
    }
}

/// Longest value kept in an [`Issue`], in characters.
const MAX_PRINTABLE: usize = 80;

/// Makes a value safe to print in a terminal, a log or a report: control
/// characters (including ESC, so no terminal escape sequences) and the Unicode
/// bidi controls are escaped as `\u{..}`, and values longer than 80 characters
/// are cut with `…`.
///
/// ```
/// assert_eq!(user_import::helpers::printable("ok"), "ok");
/// assert_eq!(user_import::helpers::printable("\u{1b}[31m"), "\\u{1b}[31m");
/// assert_eq!(user_import::helpers::printable(&"x".repeat(100)).chars().count(), 81);
/// ```
pub fn printable(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_PRINTABLE * 2));
    for (n, c) in value.chars().enumerate() {
        if n == MAX_PRINTABLE {
            out.push('…');
            break;
        }
        if c.is_control() || is_bidi_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name_and_serde() {
        for &code in Code::ALL {
            assert_eq!(code.as_str().parse::<Code>(), Ok(code));
            let json = format!("\"{}\"", code.as_str());
            #[cfg(feature = "json")]
            assert_eq!(serde_json::to_string(&code).unwrap(), json);
            let _ = json;
        }
    }

    #[test]
    fn display_leaves_out_absent_parts() {
        let i = Issue::error(Code::FileEmpty, "file is empty");
        assert_eq!(i.to_string(), "file is empty [file_empty]");
        let w = Issue::warning(Code::UnknownColumn, "unknown column, ignored")
            .at(1)
            .column("emial")
            .suggest("email");
        assert_eq!(
            w.to_string(),
            "line 1, emial: warning: unknown column, ignored (did you mean \"email\"?) [unknown_column]"
        );
    }
}
