//! The plan and what the planner asks and is answered: the public types.

use crate::catalog::Catalog;
use crate::input::InputInfo;
use crate::issue::Issue;
use crate::profile::ErrorPolicy;
use crate::schema::KeyField;
use crate::store::{ExistingUser, Fetch, Op};
use crate::text::Text;
use crate::validate::issues_of_line;
use serde::{Deserialize, Serialize};

/// What the plan does with a row.
///
/// ```
/// assert_eq!(user_import::Planned::Create.as_str(), "create");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Planned {
    /// Create the user.
    Create,
    /// Update the user.
    Update,
    /// Delete the user.
    Delete,
    /// Nothing to do: the user already looks like the row.
    Unchanged,
    /// Nothing to do, with a reason (e.g. deleting a user who is not there).
    Skip,
    /// The row has an error.
    Fail,
}

impl Planned {
    /// The snake_case name.
    ///
    /// ```
    /// assert_eq!(user_import::Planned::Fail.as_str(), "fail");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Planned::Create => "create",
            Planned::Update => "update",
            Planned::Delete => "delete",
            Planned::Unchanged => "unchanged",
            Planned::Skip => "skip",
            Planned::Fail => "fail",
        }
    }
}

/// A row of the file and what the plan does with it.
///
/// ```
/// use user_import::{Importer, Planned};
/// use user_import::memory::InMemoryStore;
/// let v = Importer::new("t").validate(b"userId,email\njdoe,jdoe@example.com\n", None);
/// let plan = Importer::new("t").plan(v, &mut InMemoryStore::new())?;
/// assert_eq!(plan.rows()[0].planned, Planned::Create);
/// assert_eq!(plan.rows()[0].key.as_deref(), Some("jdoe"));
/// # Ok::<(), user_import::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlannedRow {
    /// The row's line.
    pub line: u64,
    /// The row's key as written.
    pub key: Option<Text>,
    /// What the plan does with it.
    pub planned: Planned,
}

/// A welcome notice for a user the plan creates with `notifyIfNewUser=true`.
/// The library does not send it: the caller does, after applying.
///
/// ```
/// use user_import::Importer;
/// use user_import::memory::InMemoryStore;
/// let file = b"userId,email,firstName,notifyIfNewUser\nmary,mary@example.com,Mary,true\n";
/// let importer = Importer::new("t");
/// let plan = importer.plan(importer.validate(file, None), &mut InMemoryStore::new())?;
/// assert_eq!(plan.notices()[0].email.as_deref(), Some("mary@example.com"));
/// # Ok::<(), user_import::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Notice {
    /// The row's line.
    pub line: u64,
    /// The new user's id.
    pub user_id: Text,
    /// The new user's email.
    pub email: Option<Text>,
    /// The new user's first name.
    pub first_name: Option<Text>,
    /// The new user's last name.
    pub last_name: Option<Text>,
}

/// A serializable, reviewable plan: one [`PlannedRow`] per input row, the
/// [`Op`]s to apply in order, welcome notices, and every issue. Plans are
/// deterministic: the same file and directory give the same ops in the same
/// order, whatever the order of unrelated rows.
///
/// A plan can be stored (serde) and applied later; updates and deletes carry
/// the version they were planned against, so a user who changed since gets a
/// `conflict`, never a silent overwrite. A stored plan is applied as it is
/// (its checks and guards ran when it was made): keep it where only trusted
/// code can change it, or plan again from the file.
///
/// ```
/// use user_import::{Importer, Op};
/// use user_import::memory::InMemoryStore;
/// let importer = Importer::new("acme");
/// let mut store = InMemoryStore::new();
/// let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\n", None), &mut store)?;
/// assert!(matches!(plan.ops()[0], Op::Create { .. }));
/// let json = serde_json::to_string(&plan).unwrap();
/// let again: user_import::Plan = serde_json::from_str(&json).unwrap();
/// assert_eq!(again, plan);
/// # Ok::<(), user_import::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub(crate) tenant: String,
    pub(crate) input: InputInfo,
    pub(crate) columns: Vec<String>,
    pub(crate) key: KeyField,
    pub(crate) on_error: ErrorPolicy,
    pub(crate) batch_size: usize,
    #[serde(default)]
    pub(crate) limits: crate::input::Limits,
    pub(crate) rows: Vec<PlannedRow>,
    pub(crate) ops: Vec<Op>,
    pub(crate) notices: Vec<Notice>,
    pub(crate) file_issues: Vec<Issue>,
    pub(crate) row_issues: Vec<Issue>,
    pub(crate) blocked: bool,
    /// Where the plan comes from.
    #[serde(default)]
    pub(crate) provenance: super::Provenance,
    /// The whole record of every user the plan deletes, as the directory
    /// gave it (for an undo to create them again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) removed: Vec<ExistingUser>,
}

impl Plan {
    /// Where the plan comes from: the input's hash, the profile, the tenant
    /// and acting user, the library's version, the times.
    ///
    /// ```
    /// let importer = user_import::Importer::new("acme");
    /// let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\n", None),
    ///     &mut user_import::memory::InMemoryStore::new())?;
    /// assert_eq!(plan.provenance().input_bytes, 22);
    /// assert_eq!(plan.provenance().tenant, "acme");
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn provenance(&self) -> &super::Provenance {
        &self.provenance
    }

    /// The tenant.
    ///
    /// ```
    /// # let importer = user_import::Importer::new("acme");
    /// # let plan = importer.plan(importer.validate(b"", None), &mut user_import::memory::InMemoryStore::new())?;
    /// assert_eq!(plan.tenant(), "acme");
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// How the file was read.
    ///
    /// ```
    /// # let importer = user_import::Importer::new("acme");
    /// # let mut store = user_import::memory::InMemoryStore::new();
    /// # let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,bad\n", None), &mut store)?;
    /// assert_eq!(plan.input().format, user_import::Format::Csv);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn input(&self) -> &InputInfo {
        &self.input
    }

    /// One entry per input row, in file order.
    ///
    /// ```
    /// # let importer = user_import::Importer::new("acme");
    /// # let mut store = user_import::memory::InMemoryStore::new();
    /// # let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,bad\n", None), &mut store)?;
    /// assert_eq!(plan.rows().len(), 2);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn rows(&self) -> &[PlannedRow] {
        &self.rows
    }

    /// The operations, in the order they must be applied: role creations,
    /// creates (managers before their reports), updates, deletes (reports
    /// before their managers).
    ///
    /// ```
    /// # let importer = user_import::Importer::new("acme");
    /// # let mut store = user_import::memory::InMemoryStore::new();
    /// # let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,bad\n", None), &mut store)?;
    /// assert!(matches!(plan.ops()[0], user_import::Op::Create { .. }));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Welcome notices for the users the plan creates.
    ///
    /// ```
    /// # let importer = user_import::Importer::new("acme");
    /// # let mut store = user_import::memory::InMemoryStore::new();
    /// # let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,bad\n", None), &mut store)?;
    /// assert!(plan.notices().is_empty());
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// File-level issues (header, limits, guards).
    ///
    /// ```
    /// # let importer = user_import::Importer::new("acme");
    /// # let mut store = user_import::memory::InMemoryStore::new();
    /// # let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,bad\n", None), &mut store)?;
    /// assert_eq!(plan.file_issues()[0].code, user_import::Code::FileRejected);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn file_issues(&self) -> &[Issue] {
        &self.file_issues
    }

    /// The issues of the row on `line`.
    ///
    /// ```
    /// # let importer = user_import::Importer::new("acme");
    /// # let mut store = user_import::memory::InMemoryStore::new();
    /// # let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,bad\n", None), &mut store)?;
    /// assert_eq!(plan.row_issues(3)[0].code, user_import::Code::InvalidEmail);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn row_issues(&self, line: u64) -> &[Issue] {
        issues_of_line(&self.row_issues, line)
    }

    /// Every issue: file-level first, then by line.
    ///
    /// ```
    /// # let importer = user_import::Importer::new("acme");
    /// # let mut store = user_import::memory::InMemoryStore::new();
    /// # let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,bad\n", None), &mut store)?;
    /// assert_eq!(plan.issues().count(), 2);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn issues(&self) -> impl Iterator<Item = &Issue> + '_ {
        self.file_issues.iter().chain(&self.row_issues)
    }

    /// `true` when the plan must not be applied: a file-level error, a
    /// tripped guard, or row errors under the error policy (by default any
    /// error rejects the whole file).
    ///
    /// ```
    /// let importer = user_import::Importer::new("t");
    /// let plan = importer.plan(importer.validate(b"userId,email\na,bad\nb,b@x.io\n", None),
    ///     &mut user_import::memory::InMemoryStore::new())?;
    /// assert!(plan.is_blocked());
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }
}

/// What the [`crate::Planner`] needs next.
///
/// ```
/// use user_import::{Importer, Planner, Request};
/// let importer = Importer::new("acme");
/// let mut planner = importer.planner(importer.validate(b"userId,email\na,a@x.io\n", None));
/// assert_eq!(planner.poll(), Some(&Request::Catalog { tenant: "acme".into() }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The tenant's catalog ([`crate::UserStore::catalog`]); answer with
    /// [`Response::Catalog`].
    Catalog {
        /// The tenant.
        tenant: String,
    },
    /// A batched lookup ([`crate::UserStore::fetch`]); answer with [`Response::Users`].
    Fetch(Fetch),
    /// A page of the directory ([`crate::UserStore::scan`]); answer with [`Response::Users`].
    Scan {
        /// The tenant.
        tenant: String,
        /// Normalized user id to continue after.
        after: Option<String>,
        /// Page size.
        limit: usize,
    },
    /// The number of users ([`crate::UserStore::count`]); answer with [`Response::Count`].
    Count {
        /// The tenant.
        tenant: String,
    },
}

/// The answer to a [`Request`].
///
/// ```
/// use user_import::{Catalog, Importer, Planner, Request, Response};
/// let importer = Importer::new("acme");
/// let mut planner = importer.planner(importer.validate(b"userId,email\na,a@x.io\n", None));
/// planner.poll();
/// planner.respond(Response::Catalog(Catalog::new()))?;
/// assert!(matches!(planner.poll(), Some(Request::Fetch(_))));
/// # Ok::<(), user_import::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// The catalog.
    Catalog(Catalog),
    /// Users.
    Users(Vec<ExistingUser>),
    /// A count.
    Count(u64),
}
