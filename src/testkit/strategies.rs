//! proptest strategies for downstream property tests (and the crate's own):
//! valid users files, files with a chosen defect and the issues it must
//! produce, and directory states.
//!
//! ```
//! use proptest::prelude::*;
//! use proptest::test_runner::TestRunner;
//! use user_import::Importer;
//! use user_import::testkit::strategies::file_with_defect;
//!
//! let mut runner = TestRunner::default();
//! runner.run(&file_with_defect(8), |f| {
//!     let v = Importer::new("default").validate(f.text.as_bytes(), None);
//!     let errors: Vec<_> = v.issues().filter(|i| i.is_error()).map(|i| (i.line.unwrap_or(0), i.code)).collect();
//!     prop_assert_eq!(errors, f.expected.clone());
//!     Ok(())
//! }).unwrap();
//! ```

use proptest::prelude::*;

use crate::catalog::Catalog;
use crate::issue::Code;
use crate::memory::State;
use crate::record::User;
use crate::schema::Field;

/// The header of generated files (the canonical columns).
///
/// ```
/// assert_eq!(user_import::testkit::strategies::HEADER[0], "userId");
/// ```
pub const HEADER: [&str; 11] = [
    "userId",
    "tenant",
    "firstName",
    "lastName",
    "email",
    "enabled",
    "reportsTo",
    "roles",
    "taskNotification",
    "transaction",
    "notifyIfNewUser",
];

/// Roles used by generated rows and directories.
///
/// ```
/// assert!(user_import::testkit::strategies::ROLES.contains(&"Admin"));
/// ```
pub const ROLES: [&str; 5] = ["Admin", "Manager", "Tester", "Reviewer", "Staff"];

/// One generated row, as cells under [`HEADER`].
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use user_import::testkit::strategies::*;
/// let mut runner = TestRunner::deterministic();
/// let file = valid_file(3).new_tree(&mut runner).unwrap().current();
/// assert_eq!(file.rows[0].cells.len(), HEADER.len());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenRow {
    /// The cells, in [`HEADER`] order (not yet quoted).
    pub cells: Vec<String>,
}

/// A generated users file for tenant `default`: one physical line per row.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use user_import::testkit::strategies::*;
/// let mut runner = TestRunner::deterministic();
/// let file = valid_file(3).new_tree(&mut runner).unwrap().current();
/// assert!(file.text.starts_with("userId,tenant,"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GeneratedFile {
    /// The rows.
    pub rows: Vec<GenRow>,
    /// The file's text.
    pub text: String,
}

/// A defect [`file_with_defect`] can put into a file.
///
/// ```
/// use user_import::testkit::strategies::Defect;
/// assert_eq!(Defect::DuplicateKey.code(), user_import::Code::DuplicateKey);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Defect {
    /// A blank email.
    MissingEmail,
    /// An email without `@`.
    InvalidEmail,
    /// Two rows with the same user id (different case).
    DuplicateKey,
    /// Two rows with the same email (different case).
    DuplicateEmail,
    /// `enabled=maybe`.
    BadBool,
    /// `taskNotification=Sometimes`.
    BadTaskNotification,
    /// `transaction=REMOVE`.
    BadTransaction,
    /// A role name with a space.
    RoleWithSpace,
    /// A user who reports to themselves.
    SelfReport,
    /// Another tenant.
    TenantMismatch,
    /// A quoted field that is never closed.
    UnterminatedQuote,
    /// One cell too many.
    RaggedRow,
    /// A NUL byte in a name.
    NulByte,
}

impl Defect {
    /// Every defect.
    ///
    /// ```
    /// assert_eq!(user_import::testkit::strategies::Defect::ALL.len(), 13);
    /// ```
    pub const ALL: [Defect; 13] = [
        Defect::MissingEmail,
        Defect::InvalidEmail,
        Defect::DuplicateKey,
        Defect::DuplicateEmail,
        Defect::BadBool,
        Defect::BadTaskNotification,
        Defect::BadTransaction,
        Defect::RoleWithSpace,
        Defect::SelfReport,
        Defect::TenantMismatch,
        Defect::UnterminatedQuote,
        Defect::RaggedRow,
        Defect::NulByte,
    ];

    /// The code the defect must produce.
    ///
    /// ```
    /// use user_import::testkit::strategies::Defect;
    /// assert_eq!(Defect::NulByte.code(), user_import::Code::MalformedRow);
    /// ```
    pub fn code(self) -> Code {
        match self {
            Defect::MissingEmail => Code::MissingValue,
            Defect::InvalidEmail => Code::InvalidEmail,
            Defect::DuplicateKey => Code::DuplicateKey,
            Defect::DuplicateEmail => Code::DuplicateEmail,
            Defect::BadBool | Defect::BadTaskNotification | Defect::BadTransaction => {
                Code::InvalidValue
            }
            Defect::RoleWithSpace => Code::InvalidRoleName,
            Defect::SelfReport => Code::ReportsToCycle,
            Defect::TenantMismatch => Code::TenantMismatch,
            Defect::UnterminatedQuote | Defect::RaggedRow | Defect::NulByte => Code::MalformedRow,
        }
    }
}

/// A file with one defect, and the errors validation must report:
/// `(line, code)` in report order.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use user_import::testkit::strategies::*;
/// let mut runner = TestRunner::deterministic();
/// let f = file_with_defect(4).new_tree(&mut runner).unwrap().current();
/// assert_eq!(f.expected[0].1, f.defect.code());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefectiveFile {
    /// The file's text.
    pub text: String,
    /// The defect.
    pub defect: Defect,
    /// The errors it must produce, and no others.
    pub expected: Vec<(u64, Code)>,
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

fn render(rows: &[GenRow]) -> String {
    let mut text = HEADER.join(",");
    text.push('\n');
    for r in rows {
        let cells: Vec<String> = r.cells.iter().map(|c| quote(c)).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

/// A display name: ASCII, accents, apostrophes, commas, quotes, and
/// formula-like text, never blank.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use user_import::testkit::strategies::*;
/// let mut runner = TestRunner::deterministic();
/// let n = name().new_tree(&mut runner).unwrap().current();
/// assert!(!n.trim().is_empty());
/// ```
pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z][a-z]{1,8}",
        "[A-Z][a-zéèüöñ]{1,6}",
        Just("O'Brien".to_owned()),
        Just("Nguyen, Jr.".to_owned()),
        Just("\"JJ\" Smith".to_owned()),
        Just("=1+2".to_owned()),
        Just("-Dash".to_owned()),
        Just("Łukasz".to_owned()),
        Just("李".to_owned()),
    ]
}

/// A valid users file of 1 to `max_rows` rows: distinct user ids and emails
/// (emails in mixed case), names with quotes, commas, accents and
/// formula-like text, roles, and `reportsTo` pointing at earlier rows (no
/// cycles).
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use user_import::testkit::strategies::*;
/// let mut runner = TestRunner::deterministic();
/// let f = valid_file(5).new_tree(&mut runner).unwrap().current();
/// let v = user_import::Importer::new("default").validate(f.text.as_bytes(), None);
/// assert!(!v.has_errors());
/// ```
pub fn valid_file(max_rows: usize) -> impl Strategy<Value = GeneratedFile> {
    let row = (
        name(),
        name(),
        any::<bool>(),
        prop::sample::subsequence(ROLES.to_vec(), 0..=3),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(any::<prop::sample::Index>()),
        any::<bool>(),
    );
    prop::collection::vec(row, 1..=max_rows.max(1)).prop_map(|rows| {
        let rows: Vec<GenRow> = rows
            .into_iter()
            .enumerate()
            .map(
                |(i, (first, last, enabled, roles, email_task, upper, manager, notify))| {
                    let id = format!("user{i}");
                    let email = if upper {
                        format!("User{i}@Example.COM")
                    } else {
                        format!("user{i}@example.com")
                    };
                    let reports_to = match manager {
                        Some(ix) if i > 0 => format!("user{}", ix.index(i)),
                        _ => String::new(),
                    };
                    GenRow {
                        cells: vec![
                            id,
                            String::new(),
                            first,
                            last,
                            email,
                            enabled.to_string(),
                            reports_to,
                            roles.join("|"),
                            if email_task {
                                "Email".into()
                            } else {
                                "OFF".into()
                            },
                            String::new(),
                            notify.to_string(),
                        ],
                    }
                },
            )
            .collect();
        let text = render(&rows);
        GeneratedFile { rows, text }
    })
}

/// A valid file of 2 to `max_rows` rows with one [`Defect`], and the errors
/// it must produce.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use user_import::testkit::strategies::*;
/// let mut runner = TestRunner::deterministic();
/// let f = file_with_defect(5).new_tree(&mut runner).unwrap().current();
/// let v = user_import::Importer::new("default").validate(f.text.as_bytes(), None);
/// assert!(v.has_errors());
/// ```
pub fn file_with_defect(max_rows: usize) -> impl Strategy<Value = DefectiveFile> {
    (
        valid_file(max_rows.max(2)),
        prop::sample::select(Defect::ALL.to_vec()),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    )
        .prop_filter("needs two rows", |(f, ..)| f.rows.len() >= 2)
        .prop_map(|(file, defect, at, other)| inject(file, defect, at, other))
}

fn inject(
    file: GeneratedFile,
    defect: Defect,
    at: prop::sample::Index,
    other: prop::sample::Index,
) -> DefectiveFile {
    let mut rows = file.rows;
    let n = rows.len();
    let k = at.index(n);
    let m = (k + 1 + other.index(n - 1)) % n;
    let line = |r: usize| r as u64 + 2;
    let col = |f: &str| HEADER.iter().position(|h| *h == f).unwrap_or(0);
    let mut expected = vec![(line(k), defect.code())];
    let mut raw: Option<String> = None;
    match defect {
        Defect::MissingEmail => rows[k].cells[col("email")] = String::new(),
        Defect::InvalidEmail => rows[k].cells[col("email")] = "not-an-email".into(),
        Defect::DuplicateKey => {
            let id = rows[m].cells[col("userId")].clone();
            rows[k].cells[col("userId")] = id.to_uppercase();
            // Not a self-reference on top of the duplicate.
            if rows[k].cells[col("reportsTo")].eq_ignore_ascii_case(&id) {
                rows[k].cells[col("reportsTo")] = String::new();
            }
            expected.push((line(m), Code::DuplicateKey));
        }
        Defect::DuplicateEmail => {
            rows[k].cells[col("email")] = rows[m].cells[col("email")].to_lowercase();
            expected.push((line(m), Code::DuplicateEmail));
        }
        Defect::BadBool => rows[k].cells[col("enabled")] = "maybe".into(),
        Defect::BadTaskNotification => rows[k].cells[col("taskNotification")] = "Sometimes".into(),
        Defect::BadTransaction => rows[k].cells[col("transaction")] = "REMOVE".into(),
        Defect::RoleWithSpace => rows[k].cells[col("roles")] = "Big Boss".into(),
        Defect::SelfReport => {
            rows[k].cells[col("reportsTo")] = rows[k].cells[col("userId")].clone()
        }
        Defect::TenantMismatch => rows[k].cells[col("tenant")] = "other".into(),
        Defect::UnterminatedQuote => {
            let mut cells: Vec<String> = rows[k].cells.iter().map(|c| quote(c)).collect();
            cells[col("lastName")] = "\"Unclosed".into();
            raw = Some(cells.join(","));
        }
        Defect::RaggedRow => rows[k].cells.push("extra".into()),
        Defect::NulByte => rows[k].cells[col("firstName")].insert(0, '\0'),
    }
    expected.sort();
    let mut text = render(&rows);
    if let Some(raw) = raw {
        let mut lines: Vec<&str> = text.lines().collect();
        lines[k + 1] = &raw;
        text = lines.join("\n") + "\n";
    }
    DefectiveFile {
        text,
        defect,
        expected,
    }
}

/// A directory state: up to `max_users` users with distinct ids and emails
/// (ids `user0`… overlap those of [`valid_file`], so files and directories
/// meet), roles from [`ROLES`], some locked fields.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// use proptest::test_runner::TestRunner;
/// use user_import::testkit::strategies::*;
/// let mut runner = TestRunner::deterministic();
/// let d = directory(5).new_tree(&mut runner).unwrap().current();
/// let store = user_import::memory::InMemoryStore::from_directory("default", &d);
/// assert!(store.len("default") <= 5);
/// ```
pub fn directory(max_users: usize) -> impl Strategy<Value = State> {
    let user = (
        0..(max_users.max(1) * 2),
        name(),
        prop::sample::subsequence(ROLES.to_vec(), 0..=2),
        any::<bool>(),
    );
    (
        prop::collection::vec(user, 0..=max_users),
        prop::collection::vec(
            (
                any::<u16>(),
                prop::sample::select(vec![Field::Roles, Field::LastName, Field::Enabled]),
            ),
            0..3,
        ),
    )
        .prop_map(|(users, locks)| {
            let mut seen = std::collections::HashSet::new();
            let users: Vec<User> = users
                .into_iter()
                .filter(|(id, ..)| seen.insert(*id))
                .map(|(id, last, roles, enabled)| {
                    User::builder()
                        .set(Field::UserId, &format!("user{id}"))
                        .set(Field::Email, &format!("user{id}@example.com"))
                        .set(Field::LastName, &last)
                        .set(Field::Roles, &roles.join("|"))
                        .set(Field::Enabled, if enabled { "true" } else { "false" })
                        .set(Field::TaskNotification, "Email")
                        .build()
                })
                .collect();
            let n = users.len().max(1) as u16;
            State {
                users,
                catalog: Catalog::new().roles(ROLES),
                locks: locks.into_iter().map(|(k, f)| (k % n, f)).collect(),
            }
        })
}
