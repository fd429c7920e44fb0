//! Planning: from validated rows and the directory's state, a pure,
//! deterministic [`Plan`] of operations.
//!
//! The [`Planner`] does no I/O: it asks for what it needs ([`Request`]) and is
//! given the answers ([`Response`]), in the style of quinn-proto. The drivers
//! in [`crate::Importer`] connect it to a [`crate::UserStore`] (sync or
//! async); a test can answer it from anything.

mod diff;
mod order;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Lookup, RefKind};
use crate::error::Error;
use crate::input::InputInfo;
use crate::issue::{Code, Issue};
use crate::matching::key_hash;
use crate::matching::{normalize, same};
use crate::profile::{ErrorPolicy, MirrorAction, Mode, Profile, RolePolicy};
use crate::record::{Action, User};
use crate::schema::{Field, KeyField};
use crate::store::{ExistingUser, Fetch, Op};
use crate::text::Text;
use crate::validate::file::KeyIndex;
use crate::validate::{Row, Validation, issues_of_line};

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
}

impl Plan {
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

/// What the [`Planner`] needs next.
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

/// What the plan does with one row, before ordering: 16 bytes a row.
#[derive(Debug)]
enum Disp {
    Pending,
    Fail,
    Skip,
    Unchanged,
    /// The row's user, taken from the row when the plan is built.
    Create {
        notify: bool,
        /// The row creating this row's manager, when the manager is new.
        manager_row: Link,
        /// The row that moves this row's email away from its current holder.
        email_from: Link,
    },
    /// The update is boxed: most rows are creates or unchanged, and an
    /// unboxed update would make every row's entry several times larger.
    Update(Box<UpdateDisp>),
    Delete(Box<DeleteDisp>),
}

impl Disp {
    /// The rows a create or an update depends on: the row creating its
    /// manager, and the row moving its email away.
    fn links(&self) -> Option<[Link; 2]> {
        match self {
            Disp::Create {
                manager_row,
                email_from,
                ..
            } => Some([*manager_row, *email_from]),
            Disp::Update(u) => Some([u.manager_row, u.email_from]),
            _ => None,
        }
    }

    /// The value an update gives `field`, if it changes it (`Some(None)`:
    /// cleared).
    fn new_value(&self, field: Field) -> Option<Option<&str>> {
        match self {
            Disp::Update(u) => u.changes.new_value(field),
            _ => None,
        }
    }
}

/// Another row a row depends on, if any, in 4 bytes (an `Option<u32>`
/// takes 8, which would make every row's entry 24 bytes instead of 16).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Link(Option<std::num::NonZeroU32>);

impl Link {
    fn to(row: Option<u32>) -> Link {
        Link(row.and_then(|r| std::num::NonZeroU32::new(r.wrapping_add(1))))
    }

    fn row(self) -> Option<u32> {
        self.0.map(|r| r.get() - 1)
    }
}

/// An update planned for a row.
#[derive(Debug)]
struct UpdateDisp {
    manager_row: Link,
    email_from: Link,
    version: u64,
    user_id: Text,
    changes: diff::Changes,
}

/// A delete planned for a row.
#[derive(Debug)]
struct DeleteDisp {
    user_id: String,
    version: u64,
    /// Directory users reporting to this user (normalized ids).
    reports: Vec<String>,
}

/// What checking rows against the catalog needs.
struct Refs<'a> {
    index: &'a crate::catalog::CatalogIndex<'a>,
    exact: &'a std::collections::HashSet<&'a str, foldhash::fast::RandomState>,
    profile: &'a Profile,
    /// The file's column of each field (`Planner::column_names`).
    column_names: &'a [String],
    roles_checked: bool,
    others_checked: bool,
}

/// Notes `spelling` for the new role whose normalized name is `folded`:
/// of all the spellings a file gives a new role, the first in byte order is
/// the one created and written into the rows.
pub(crate) fn first_spelling(roles: &mut BTreeMap<String, String>, folded: &str, spelling: &str) {
    match roles.get_mut(folded) {
        Some(first) if spelling < first.as_str() => spelling.clone_into(first),
        Some(_) => {}
        None => {
            roles.insert(folded.to_owned(), spelling.to_owned());
        }
    }
}

/// What checking some rows against the catalog found.
#[derive(Default)]
struct RefsOut {
    /// New roles (`RolePolicy::Create`): normalized name → first spelling.
    new_roles: BTreeMap<String, String>,
    issues: Vec<Issue>,
    /// Rows (indexes into the file's rows) that fail.
    failed: Vec<usize>,
}

impl RefsOut {
    /// Adds what the rows after these found.
    fn absorb(&mut self, later: RefsOut) {
        for (name, spelling) in later.new_roles {
            first_spelling(&mut self.new_roles, &name, &spelling);
        }
        self.issues.extend(later.issues);
        self.failed.extend(later.failed);
    }
}

impl Refs<'_> {
    /// The file's column of `f`, as issues name it.
    fn column(&self, f: Field) -> &str {
        &self.column_names[crate::input::header::field_index(f)]
    }

    /// Checks `rows` (the first being row `base`) and rewrites their
    /// references in the catalog's spelling.
    fn check(&self, rows: &mut [Row], base: usize) -> RefsOut {
        let index = self.index;
        let exact = self.exact;
        let roles_col = self.column(Field::Roles);
        let roles_checked = self.roles_checked;
        let others_checked = self.others_checked;
        let mut new_roles: BTreeMap<String, String> = BTreeMap::new();
        let mut issues = Vec::new();
        let mut failed = Vec::new();
        // "Did you mean" costs a comparison with every catalog entry: once
        // per distinct unknown value.
        let mut suggestions: HashMap<(u8, String), Option<String>> = HashMap::new();
        let suggest =
            |memo: &mut HashMap<(u8, String), Option<String>>, kind: RefKind, value: &str| {
                memo.entry((kind as u8, normalize(value)))
                    .or_insert_with(|| index.suggest(kind, value))
                    .clone()
            };
        for (i, row) in rows.iter_mut().enumerate() {
            let i = base + i;
            if row.error || row.action != Action::Upsert {
                continue;
            }
            let roles_fine = !roles_checked || row.user.roles().all(|r| exact.contains(r));
            if roles_fine && !others_checked {
                continue;
            }
            let mut rewrite: Option<Vec<String>> = None;
            let roles: Vec<String> = row.user.roles().map(str::to_owned).collect();
            let mut out = Vec::with_capacity(roles.len());
            let mut row_failed = false;
            for role in &roles {
                match index.lookup(RefKind::Role, role) {
                    Lookup::Unchecked => out.push(role.clone()),
                    Lookup::Found(r) => out.push(r.to_owned()),
                    Lookup::Missing => {
                        match &self.profile.unknown_roles {
                            RolePolicy::Reject => {
                                let suggestion = suggest(&mut suggestions, RefKind::Role, role);
                                issues.push(
                                    Issue::error(Code::UnknownRole, "unknown role")
                                        .at(row.line)
                                        .column(roles_col)
                                        .value(role)
                                        .maybe_suggest(suggestion),
                                );
                                row_failed = true;
                            }
                            RolePolicy::Create => {
                                first_spelling(&mut new_roles, &normalize(role), role);
                                out.push(role.clone());
                            }
                            RolePolicy::Fallback(fallback) => {
                                // The fallback must exist itself (in the catalog's spelling).
                                let fallback = match index.lookup(RefKind::Role, fallback) {
                                    Lookup::Found(f) => f.to_owned(),
                                    Lookup::Unchecked => fallback.clone(),
                                    Lookup::Missing => {
                                        issues.push(
                                            Issue::error(
                                                Code::UnknownRole,
                                                format!("unknown role, and the fallback role {fallback:?} does not exist either"),
                                            )
                                            .at(row.line)
                                            .column(roles_col)
                                            .value(role),
                                        );
                                        row_failed = true;
                                        continue;
                                    }
                                };
                                let suggestion = suggest(&mut suggestions, RefKind::Role, role);
                                issues.push(
                                Issue::warning(
                                    Code::UnknownRole,
                                    format!("unknown role; the user gets the role {fallback:?} instead"),
                                )
                                .at(row.line)
                                .column(roles_col)
                                .value(role)
                                .maybe_suggest(suggestion),
                            );
                                out.push(fallback.clone());
                            }
                        }
                    }
                }
            }
            if out != roles {
                rewrite = Some(out);
            }
            // Locations, departments, groups.
            let mut fixed: Vec<(Field, String)> = Vec::new();
            for (f, kind, what) in [
                (Field::Location, RefKind::Location, "unknown location"),
                (
                    Field::DepartmentId,
                    RefKind::Department,
                    "unknown department",
                ),
                (Field::GroupName, RefKind::Group, "unknown permission group"),
            ] {
                let Some(value) = row.user.value(f) else {
                    continue;
                };
                match index.lookup(kind, value) {
                    Lookup::Unchecked => {}
                    Lookup::Found(name) => {
                        if name != value {
                            fixed.push((f, name.to_owned()));
                        }
                    }
                    Lookup::Missing => {
                        let suggestion = suggest(&mut suggestions, kind, value);
                        issues.push(
                            Issue::error(Code::UnknownReference, what)
                                .at(row.line)
                                .column(self.column(f))
                                .value(value)
                                .maybe_suggest(suggestion),
                        );
                        row_failed = true;
                    }
                }
            }
            if rewrite.is_some() || !fixed.is_empty() {
                let mut b = row.user.to_builder();
                if let Some(roles) = rewrite {
                    b.put(Field::Roles, &roles.join("|"));
                }
                for (f, v) in fixed {
                    b.put(f, &v);
                }
                row.user = b.build();
            }
            if row_failed {
                failed.push(i);
            }
        }
        RefsOut {
            new_roles,
            issues,
            failed,
        }
    }
}

/// Answers a chunk's request, given the rows planned so far.
pub(crate) type FetchFn<'a> = dyn FnMut(&Fetch, u64) -> Result<Vec<ExistingUser>, Error> + 'a;

/// The smallest batch planned on other threads (threads are started per
/// chunk: for smaller chunks that costs more than it saves).
const OVERLAP_MIN_BATCH: usize = 64;

/// What planning one chunk of rows decided, kept apart from the planner
/// so a chunk can be planned while the next one's users are fetched.
#[derive(Default)]
struct ChunkOut {
    /// (row, its disposition).
    disp: Vec<(u32, Disp)>,
    issues: Vec<Issue>,
    targets: Vec<(u64, u32)>,
    pending_reports: Vec<(usize, String)>,
    /// What the rows the chunk does not create keep (see `release_rows`).
    slim: Vec<(u32, User)>,
}

impl ChunkOut {
    fn set(&mut self, row: usize, disp: Disp) {
        self.disp.push((row as u32, disp));
    }

    /// Row `row` resolved to the directory user `user_id`.
    fn note_target(&mut self, row: usize, user_id: &str) {
        self.targets
            .push((key_hash(TARGET_SEED, user_id), row as u32));
    }
}

/// One chunk's rows, planned in blocks by whichever thread is free: the
/// threads beside the caller start at once, and the caller joins in once it
/// has fetched the next chunk's users, so neither idles while the other
/// works (the store may answer in a moment or take longer than the
/// planning). Each block's result is kept with its number, and the blocks
/// are merged in row order: the plan is the one a single thread makes.
struct SharedChunk<'a> {
    start: usize,
    end: usize,
    block: usize,
    users: &'a [ExistingUser],
    deletes: bool,
    /// The chunk's users, indexed once by the first thread to need them
    /// (the others wait for it).
    dir: std::sync::OnceLock<Dir<'a>>,
    /// The next block to plan.
    next: std::sync::atomic::AtomicUsize,
}

impl<'a> SharedChunk<'a> {
    /// The blocks of a chunk: a sixteenth of it, but no fewer than
    /// `MIN_BLOCK` rows.
    const MIN_BLOCK: usize = 32;

    fn new(
        planner: &Planner,
        start: usize,
        end: usize,
        users: &'a [ExistingUser],
    ) -> SharedChunk<'a> {
        SharedChunk {
            start,
            end,
            block: (end - start).div_ceil(16).max(SharedChunk::MIN_BLOCK),
            users,
            deletes: planner.has_deletes(start, end),
            dir: std::sync::OnceLock::new(),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many blocks the chunk is cut into.
    fn blocks(&self) -> usize {
        (self.end - self.start).div_ceil(self.block)
    }

    /// Plans blocks until none is left: (block number, what it came to).
    fn work(&self, planner: &Planner) -> Vec<(usize, ChunkOut)> {
        let mut done = Vec::new();
        loop {
            let b = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let from = b.saturating_mul(self.block).saturating_add(self.start);
            if from >= self.end {
                return done;
            }
            let dir = self.dir.get_or_init(|| Dir::new(self.users, self.deletes));
            let to = from.saturating_add(self.block).min(self.end);
            done.push((b, planner.plan_rows(from, to, dir)));
        }
    }
}

/// Writes normalized values over a vector's strings in order, reusing
/// their buffers; `finish` drops the strings left over.
struct Refill<'a> {
    values: &'a mut Vec<String>,
    used: usize,
}

impl<'a> Refill<'a> {
    fn new(values: &'a mut Vec<String>) -> Refill<'a> {
        Refill { values, used: 0 }
    }

    fn push(&mut self, value: &str) {
        match self.values.get_mut(self.used) {
            Some(s) => crate::matching::normalize_into(value, s),
            None => {
                // Room for most ids and emails, so that the next chunks'
                // values rarely need to grow the buffer.
                let mut s = String::with_capacity(value.len().max(48));
                crate::matching::normalize_into(value, &mut s);
                self.values.push(s);
            }
        }
        self.used += 1;
    }

    fn finish(self) {
        self.values.truncate(self.used);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Catalog,
    Rows,
    Mirror,
    Count,
    Done,
}

/// The planning state machine. Drive it with [`Planner::poll`] and
/// [`Planner::respond`] until `poll` returns `None`, then [`Planner::finish`].
///
/// ```
/// use user_import::{Catalog, Importer, Planner, Request, Response};
/// let importer = Importer::new("t");
/// let v = importer.validate(b"userId,email\na,a@x.io\n", None);
/// let mut planner = importer.planner(v);
/// while let Some(request) = planner.poll() {
///     let answer = match request {
///         Request::Catalog { .. } => Response::Catalog(Catalog::new()),
///         Request::Count { .. } => Response::Count(0),
///         _ => Response::Users(Vec::new()), // an empty directory
///     };
///     planner.respond(answer)?;
/// }
/// let plan = planner.finish();
/// assert_eq!(plan.ops().len(), 1);
/// # Ok::<(), user_import::Error>(())
/// ```
#[derive(Debug)]
pub struct Planner {
    profile: Profile,
    /// Threads the planner may use ([`Planner::threads`]).
    threads: usize,
    tenant: String,
    acting: Option<String>,
    v: Validation,
    stage: Stage,
    asked: Option<Request>,
    catalog: Catalog,
    new_roles: BTreeMap<String, String>,
    ids: KeyIndex,
    /// Built when first needed (mirror mode; deletes).
    emails: Option<KeyIndex>,
    managers: Option<KeyIndex>,
    cursor: usize,
    chunk_end: usize,
    disp: Vec<Disp>,
    plan_issues: Vec<Issue>,
    mirror_after: Option<String>,
    mirror_seen: u64,
    mirror_disable: Vec<(String, u64, Option<String>)>,
    mirror_delete: Vec<(String, u64, Option<String>)>,
    mirror_kept_managers: std::collections::HashSet<String>,
    directory_size: Option<u64>,
    /// The column of each field, by `Field::ALL` index.
    column_names: Vec<String>,
    /// Delete rows whose reports must still be asked for: (row, normalized id).
    pending_reports: Vec<(usize, String)>,
    /// The directory user each row resolved to: (hash of the normalized
    /// user id, row), to catch two rows about one user.
    targets: Vec<(u64, u32)>,
    /// The last chunk's request, whose strings the next one reuses.
    spare: Option<Fetch>,
}

impl Planner {
    /// A planner for `validation` under `profile`, for `tenant`, with the
    /// acting administrator (for the self-lockout guard), if known.
    /// [`crate::Importer::planner`] makes one from an importer's settings.
    ///
    /// ```
    /// use user_import::{Importer, Planner, Profile};
    /// let v = Importer::new("t").validate(b"userId,email\na,a@x.io\n", None);
    /// let planner = Planner::new(&Profile::default(), "t", Some("admin"), v);
    /// assert_eq!(planner.progress(), (0, 1));
    /// ```
    pub fn new(
        profile: &Profile,
        tenant: &str,
        acting_user: Option<&str>,
        validation: Validation,
    ) -> Planner {
        let mut v = validation;
        let n = v.rows.len();
        let ids = v
            .ids
            .take()
            .unwrap_or_else(|| KeyIndex::build(&v.rows, Field::UserId, |_| true));
        // Reference checks are redone against the store's catalog.
        v.row_issues
            .retain(|i| !matches!(i.code, Code::UnknownRole | Code::UnknownReference));
        let row_issues = std::mem::take(&mut v.row_issues);
        // Rows and issues are both in line order: one pass over each (a row
        // out of order, which reading never makes, is looked up instead).
        let (mut at, mut last) = (0, 0);
        for r in &mut v.rows {
            if r.line < last {
                at = 0;
            }
            last = r.line;
            while row_issues
                .get(at)
                .is_some_and(|i| i.line.unwrap_or(0) < r.line)
            {
                at += 1;
            }
            let on_line = row_issues[at..]
                .iter()
                .take_while(|i| i.line == Some(r.line));
            let (mut count, mut error) = (0, false);
            for i in on_line {
                count += 1;
                error |= i.is_error();
            }
            r.error = error;
            at += count;
        }
        v.row_issues = row_issues;
        let stage = if v.file_error() || v.rows.is_empty() {
            Stage::Done
        } else {
            Stage::Catalog
        };
        Planner {
            profile: profile.clone(),
            threads: 1,
            tenant: tenant.to_owned(),
            acting: acting_user.map(normalize),
            v,
            stage,
            asked: None,
            catalog: Catalog::new(),
            new_roles: BTreeMap::new(),
            ids,
            emails: None,
            managers: None,
            cursor: 0,
            chunk_end: 0,
            disp: (0..n).map(|_| Disp::Pending).collect(),
            plan_issues: Vec::new(),
            mirror_after: None,
            mirror_seen: 0,
            mirror_disable: Vec::new(),
            mirror_delete: Vec::new(),
            mirror_kept_managers: Default::default(),
            directory_size: None,
            column_names: Vec::new(),
            pending_reports: Vec::new(),
            targets: Vec::new(),
            spare: None,
        }
        .with_column_names()
    }

    /// Lets the planner use `threads` threads for a large file (see
    /// [`crate::Importer::threads`]); 1 by default.
    ///
    /// ```
    /// use user_import::{Importer, Planner, Profile};
    /// let v = Importer::new("t").validate(b"userId,email\na,a@x.io\n", None);
    /// let planner = Planner::new(&Profile::default(), "t", None, v).threads(2);
    /// assert_eq!(planner.progress(), (0, 1));
    /// ```
    pub fn threads(mut self, threads: usize) -> Planner {
        self.threads = threads.max(1);
        self
    }

    fn with_column_names(mut self) -> Planner {
        self.column_names = if self.v.field_columns.len() == Field::ALL.len() {
            std::mem::take(&mut self.v.field_columns)
        } else {
            Field::ALL.iter().map(|f| f.header().to_owned()).collect()
        };
        self
    }

    /// Rows planned so far, and the total.
    ///
    /// ```
    /// let importer = user_import::Importer::new("t");
    /// let p = importer.planner(importer.validate(b"userId,email\na,a@x.io\n", None));
    /// assert_eq!(p.progress(), (0, 1));
    /// ```
    pub fn progress(&self) -> (u64, u64) {
        (self.cursor as u64, self.v.rows.len() as u64)
    }

    /// The next request, or `None` when planning is complete.
    ///
    /// ```
    /// let importer = user_import::Importer::new("t");
    /// let mut planner = importer.planner(importer.validate(b"", None));
    /// assert_eq!(planner.poll(), None, "an empty file needs nothing from the directory");
    /// ```
    pub fn poll(&mut self) -> Option<&Request> {
        if self.asked.is_some() {
            return self.asked.as_ref();
        }
        let request = loop {
            match self.stage {
                Stage::Catalog => {
                    break Request::Catalog {
                        tenant: self.tenant.clone(),
                    };
                }
                Stage::Rows => {
                    // Deletes found by email: their reports were not asked
                    // for with the chunk (the user id was not known yet).
                    if !self.pending_reports.is_empty() {
                        break Request::Fetch(self.reports_fetch());
                    }
                    if self.cursor >= self.v.rows.len() {
                        self.stage = Stage::Mirror;
                        continue;
                    }
                    let fetch = self.next_fetch();
                    if fetch.is_empty() {
                        // Only failing rows in this chunk: nothing to look up.
                        self.spare = Some(fetch);
                        self.process_chunk(Vec::new());
                        continue;
                    }
                    break Request::Fetch(fetch);
                }
                Stage::Mirror => {
                    if self.profile.mode != Mode::Mirror {
                        self.stage = Stage::Count;
                        continue;
                    }
                    break Request::Scan {
                        tenant: self.tenant.clone(),
                        after: self.mirror_after.clone(),
                        limit: self.profile.batch_size.max(1),
                    };
                }
                Stage::Count => {
                    if self.directory_size.is_none() && self.share_guard_applies() {
                        break Request::Count {
                            tenant: self.tenant.clone(),
                        };
                    }
                    self.stage = Stage::Done;
                }
                Stage::Done => return None,
            }
        };
        self.asked = Some(request);
        self.asked.as_ref()
    }

    /// Gives the answer to the last request.
    ///
    /// # Errors
    ///
    /// [`Error`] (kind `Plan`) when the answer does not fit the request.
    ///
    /// ```
    /// use user_import::{Importer, Planner, Response};
    /// let importer = Importer::new("t");
    /// let mut planner = importer.planner(importer.validate(b"userId,email\na,a@x.io\n", None));
    /// planner.poll();
    /// // The first request is for the catalog: a count does not answer it.
    /// assert!(planner.respond(Response::Count(0)).is_err());
    /// ```
    pub fn respond(&mut self, response: Response) -> Result<(), Error> {
        let Some(asked) = self.asked.take() else {
            return Err(Error::plan("an answer was given, but nothing was asked"));
        };
        match (asked, response) {
            (Request::Catalog { .. }, Response::Catalog(c)) => {
                self.catalog = c;
                self.resolve_roles();
                self.stage = Stage::Rows;
            }
            (Request::Fetch(f), Response::Users(users)) if !self.pending_reports.is_empty() => {
                self.fill_reports(&users);
                self.spare = Some(f);
            }
            (Request::Fetch(f), Response::Users(users)) => {
                self.process_chunk(users);
                self.spare = Some(f);
            }
            (Request::Scan { limit, .. }, Response::Users(users)) => {
                let done = users.len() < limit;
                self.mirror_page(users);
                if done {
                    self.directory_size = Some(self.mirror_seen);
                    self.stage = Stage::Count;
                }
            }
            (Request::Count { .. }, Response::Count(n)) => {
                self.directory_size = Some(n);
                self.stage = Stage::Done;
            }
            (asked, _) => {
                self.asked = Some(asked);
                return Err(Error::plan("the answer does not fit the request"));
            }
        }
        Ok(())
    }

    fn key_field(&self) -> Field {
        self.profile.key.field()
    }

    /// The column of `f` as written in the file (or its canonical header).
    fn column(&self, f: Field) -> &str {
        &self.column_names[crate::input::header::field_index(f)]
    }

    fn row_error(&mut self, i: usize, issue: Issue) {
        let line = self.v.rows[i].line;
        self.plan_issues.push(issue.at(line));
        self.disp[i] = Disp::Fail;
    }

    /// Row `i` of the chunk being planned fails with `issue`.
    fn chunk_error(&self, out: &mut ChunkOut, i: usize, issue: Issue) {
        out.issues.push(issue.at(self.v.rows[i].line));
        out.set(i, Disp::Fail);
    }

    /// Checks roles and references of every row against the store's catalog;
    /// collects the roles to create. With threads, from 50,000 rows, the two
    /// halves of the rows are checked side by side.
    fn resolve_roles(&mut self) {
        let index = self.catalog.index();
        // Most rows name roles exactly as the catalog spells them: check
        // that first, without allocating.
        let exact: std::collections::HashSet<&str, foldhash::fast::RandomState> = self
            .catalog
            .roles
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let refs = Refs {
            index: &index,
            exact: &exact,
            profile: &self.profile,
            column_names: &self.column_names,
            roles_checked: self.catalog.roles.is_some(),
            others_checked: self.catalog.locations.is_some()
                || self.catalog.departments.is_some()
                || self.catalog.groups.is_some(),
        };
        let rows = &mut self.v.rows;
        let n = rows.len();
        let out = if self.threads > 1 && n >= crate::par::from::REFERENCE_ROWS {
            let (low, high) = rows.split_at_mut(n / 2);
            let refs = &refs;
            let (high, mut low) =
                crate::par::join(move || refs.check(high, n / 2), || refs.check(low, 0));
            low.absorb(high);
            low
        } else {
            refs.check(rows, 0)
        };
        drop(exact);
        drop(index);
        let RefsOut {
            new_roles,
            issues,
            failed,
        } = out;
        // Rows use the chosen spelling of new roles.
        if !new_roles.is_empty() {
            for row in self.v.rows.iter_mut() {
                if row.action != Action::Upsert || row.error {
                    continue;
                }
                let roles: Vec<String> = row
                    .user
                    .roles()
                    .map(|r| {
                        new_roles
                            .get(&normalize(r))
                            .cloned()
                            .unwrap_or_else(|| r.to_owned())
                    })
                    .collect();
                if roles.iter().ne(row.user.roles()) {
                    row.user = row
                        .user
                        .to_builder()
                        .set(Field::Roles, &roles.join("|"))
                        .build();
                }
            }
        }
        self.new_roles = new_roles;
        self.plan_issues.extend(issues);
        for i in failed {
            self.disp[i] = Disp::Fail;
        }
    }

    /// The lookups of the next chunk of rows, written over the last
    /// request's strings (no allocation per value once the first chunk has
    /// sized them).
    fn next_fetch(&mut self) -> Fetch {
        let start = self.cursor;
        let end = (start + self.profile.batch_size.max(1)).min(self.v.rows.len());
        self.chunk_end = end;
        let spare = self.spare.take();
        self.fetch_for(start, end, spare)
    }

    /// The lookups of rows `start..end`, written over `spare`'s strings.
    fn fetch_for(&self, start: usize, end: usize, spare: Option<Fetch>) -> Fetch {
        let mut f = spare.unwrap_or_else(|| Fetch::new(self.tenant.clone()));
        let mut ids = Refill::new(&mut f.user_ids);
        let mut emails = Refill::new(&mut f.emails);
        let mut managers = Refill::new(&mut f.managers);
        for i in start..end {
            let row = &self.v.rows[i];
            if row.error || matches!(self.disp[i], Disp::Fail) {
                continue;
            }
            if let Some(id) = row.user.value(Field::UserId) {
                ids.push(id);
            }
            if let Some(e) = row.user.value(Field::Email) {
                emails.push(e);
            }
            match row.action {
                Action::Upsert => {
                    if let Some(m) = row.user.value(Field::ReportsTo) {
                        ids.push(m);
                    }
                }
                Action::Delete => {
                    // Who reports to the user the row deletes (by id; one
                    // found by email is asked for after).
                    if let Some(id) = row.user.value(Field::UserId) {
                        managers.push(id);
                    }
                }
            }
        }
        ids.finish();
        emails.finish();
        managers.finish();
        // Duplicates are allowed in a request (the contract says so); not
        // removing them saves sorting strings for every batch.
        f
    }

    /// Plans the rows of the current chunk with the users fetched for it.
    fn process_chunk(&mut self, users: Vec<ExistingUser>) {
        let (start, end) = (self.cursor, self.chunk_end.max(self.cursor));
        let out = self.plan_chunk(start, end, &users);
        self.merge(out, &mut Vec::new());
        self.cursor = end;
    }

    /// Once rows `start..end` are planned, the plan needs only the user id,
    /// email and manager of those it does not create (to find them, report
    /// them and order the operations around them): what they keep is made
    /// here, beside the chunk's planning, and swapped in by `merge`, so the
    /// rest of their values is let go, which keeps the peak of a large plan
    /// lower.
    fn release_rows(&self, start: usize, end: usize, out: &mut ChunkOut) {
        const KEPT: [Field; 3] = [Field::UserId, Field::Email, Field::ReportsTo];
        // The chunk's entries are in row order; rows without one failed
        // before (they are not created either).
        let mut creates = out
            .disp
            .iter()
            .filter(|(_, d)| matches!(d, Disp::Create { .. }))
            .map(|&(i, _)| i as usize)
            .peekable();
        for i in start..end {
            if creates.next_if_eq(&i).is_some() {
                continue;
            }
            if let Some(slim) = self.v.rows[i].user.keeping(&KEPT) {
                out.slim.push((i as u32, slim));
            }
        }
    }

    /// What the rows `start..end` come to, given the users fetched for
    /// them. Reads the planner only, so it can run beside `fetch_for`.
    fn plan_chunk(&self, start: usize, end: usize, users: &[ExistingUser]) -> ChunkOut {
        let dir = Dir::new(users, self.has_deletes(start, end));
        self.plan_rows(start, end, &dir)
    }

    /// Whether rows `start..end` hold a delete: only deletes ask who
    /// reports to a user.
    fn has_deletes(&self, start: usize, end: usize) -> bool {
        self.v.rows[start..end]
            .iter()
            .any(|r| r.action == Action::Delete)
    }

    /// What the rows `start..end` come to, with `dir` holding (at least)
    /// the users fetched for them.
    fn plan_rows(&self, start: usize, end: usize, dir: &Dir<'_>) -> ChunkOut {
        let mut out = ChunkOut::default();
        for i in start..end {
            if self.v.rows[i].error {
                out.set(i, Disp::Fail);
                continue;
            }
            if matches!(self.disp[i], Disp::Fail) {
                continue;
            }
            match self.v.rows[i].action {
                Action::Upsert => self.plan_upsert(i, dir, &mut out),
                Action::Delete => self.plan_delete(i, dir, &mut out),
            }
        }
        self.release_rows(start, end, &mut out);
        out
    }

    /// Records what a chunk came to (chunks are merged in file order), and
    /// adds the row values it let go to `old` (for the caller to drop
    /// where it costs least).
    fn merge(&mut self, out: ChunkOut, old: &mut Vec<User>) {
        for (i, d) in out.disp {
            self.disp[i as usize] = d;
        }
        old.reserve(out.slim.len());
        for (i, slim) in out.slim {
            old.push(std::mem::replace(&mut self.v.rows[i as usize].user, slim));
        }
        self.plan_issues.extend(out.issues);
        self.targets.extend(out.targets);
        self.pending_reports.extend(out.pending_reports);
    }

    /// Gives the deletes found by email the reports `users` holds.
    fn fill_reports(&mut self, users: &[ExistingUser]) {
        let dir = Dir::new(users, true);
        for (i, id) in std::mem::take(&mut self.pending_reports) {
            if let Disp::Delete(delete) = &mut self.disp[i] {
                delete.reports = dir.reports_of(&id);
            }
        }
    }

    /// The request asking for the reports of the deletes found by email.
    fn reports_fetch(&self) -> Fetch {
        let mut f = Fetch::new(self.tenant.clone());
        f.managers = self.pending_reports.iter().map(|p| p.1.clone()).collect();
        f
    }

    /// Whether [`Planner::plan_rows_overlapped`] applies now: the rows are
    /// next, nothing is asked, the profile allows more than one thread and
    /// the file has more than one chunk of rows (large enough that starting
    /// threads per chunk pays).
    pub(crate) fn overlap_ready(&self) -> bool {
        let batch = self.profile.batch_size.max(1);
        self.stage == Stage::Rows
            && self.asked.is_none()
            && self.pending_reports.is_empty()
            && self.threads > 1
            && batch >= OVERLAP_MIN_BATCH
            && self.v.rows.len() - self.cursor > batch
    }

    /// Plans the remaining rows, chunk by chunk, planning each chunk on
    /// other threads while this one builds the next chunk's request and
    /// has `fetch` answer it (`fetch` is given the rows planned so far);
    /// then this thread plans what is left of the chunk beside them (see
    /// `SharedChunk`).
    /// The plan is the one the request-by-request protocol makes: a chunk
    /// reads only the rows, the indexes and its own users, and what it
    /// decides is merged in file order. Only the order of the store's
    /// calls differs (the next chunk's users are asked for before the
    /// reports of this chunk's deletes found by email).
    pub(crate) fn plan_rows_overlapped(&mut self, fetch: &mut FetchFn<'_>) -> Result<(), Error> {
        let n = self.v.rows.len();
        let batch = self.profile.batch_size.max(1);
        let mut spare = self.spare.take();
        // The chunk in hand: its rows and its users.
        let mut next: Option<(usize, usize, Vec<ExistingUser>)> = None;
        // The row values the last chunk let go: dropped on another thread.
        let mut old: Vec<User> = Vec::new();
        // The users fetched for the last chunk: dropped there too.
        let mut spent: Vec<ExistingUser> = Vec::new();
        // Threads beside this one, planning the chunk in hand.
        let helpers = self.threads.clamp(2, 16) - 1;
        while self.cursor < n {
            let (start, end, users) = match next.take() {
                Some(chunk) => chunk,
                None => {
                    let end = (self.cursor + batch).min(n);
                    let done = self.cursor as u64;
                    let users = self.fetch_chunk(self.cursor, end, &mut spare, fetch, done)?;
                    (self.cursor, end, users)
                }
            };
            let after = (end < n).then(|| (end, (end + batch).min(n)));
            let this = &*self;
            let let_go = (std::mem::take(&mut old), std::mem::take(&mut spent));
            let shared = SharedChunk::new(this, start, end, &users);
            // What the last chunk let go of is dropped by whichever thread
            // starts working first (a helper, as a rule), not between chunks.
            let let_go = std::sync::Mutex::new(Some(let_go));
            let work = || {
                drop(let_go.lock().ok().and_then(|mut l| l.take()));
                shared.work(this)
            };
            // The helpers plan blocks while this thread fetches the next
            // chunk's users; then this thread plans the blocks still left.
            let (ahead, outs) = crate::par::beside(helpers.min(shared.blocks()), work, || {
                after.map(|(s, e)| {
                    this.fetch_chunk(s, e, &mut spare, fetch, start as u64)
                        .map(|u| (s, e, u))
                })
            });
            let mut outs: Vec<_> = outs.into_iter().flatten().collect();
            drop(shared);
            spent = users;
            // In row order, as one thread makes them (the reports asked for
            // next list their managers in that order).
            outs.sort_unstable_by_key(|o| o.0);
            for (_, out) in outs {
                self.merge(out, &mut old);
            }
            self.cursor = end;
            self.chunk_end = end;
            // A cancel or a store error on the next chunk's request stops
            // here: `fetch` is not called again once it has failed.
            let ahead = ahead.transpose()?;
            if !self.pending_reports.is_empty() {
                let f = self.reports_fetch();
                let users = fetch(&f, end as u64)?;
                self.fill_reports(&users);
            }
            next = ahead;
        }
        self.spare = spare;
        Ok(())
    }

    /// The users of rows `start..end`, asked of `fetch` (with `done` rows
    /// planned) unless the rows need no lookup; the request is written over
    /// `spare` and kept there.
    fn fetch_chunk(
        &self,
        start: usize,
        end: usize,
        spare: &mut Option<Fetch>,
        fetch: &mut FetchFn<'_>,
        done: u64,
    ) -> Result<Vec<ExistingUser>, Error> {
        let f = self.fetch_for(start, end, spare.take());
        let users = if f.is_empty() {
            Ok(Vec::new())
        } else {
            fetch(&f, done)
        };
        *spare = Some(f);
        users
    }

    /// Finds the existing user a row is about: `(by user id, by email)`.
    fn identify<'d>(
        &self,
        row: &Row,
        dir: &'d Dir<'_>,
    ) -> (Option<&'d ExistingUser>, Option<&'d ExistingUser>) {
        let by_id = row.user.value(Field::UserId).and_then(|v| dir.by_id(v));
        let by_email = row.user.value(Field::Email).and_then(|v| dir.by_email(v));
        (by_id, by_email)
    }

    fn plan_upsert(&self, i: usize, dir: &Dir<'_>, out: &mut ChunkOut) {
        let row = &self.v.rows[i];
        let line = row.line;
        let (by_id, by_email) = self.identify(row, dir);
        let key_field = self.key_field();
        let email_col = self.column(Field::Email);
        let id_col = self.column(Field::UserId);
        let email = row.user.email().unwrap_or("");
        // A row may take the email of another user when the file moves that
        // user to another email (or deletes them): the handover is ordered
        // (release first) and checked when the plan is finished.
        let mut email_from: Option<u32> = None;
        if let (Some(a), Some(b)) = (by_id, by_email)
            && !same(a.user_id(), b.user_id())
        {
            match self.releaser(b.user_id(), email) {
                Some(j) if key_field == Field::UserId => email_from = Some(j as u32),
                _ => {
                    let issue = Issue::error(
                            Code::IdentityConflict,
                            format!(
                                "userId {:?} and email {:?} belong to two different users ({:?} has this email)",
                                crate::issue::printable(a.user_id()),
                                crate::issue::printable(email),
                                crate::issue::printable(b.user_id()),
                            ),
                        )
                        .column(email_col)
                        .value(email);
                    return self.chunk_error(out, i, issue);
                }
            }
        }
        let target = match key_field {
            Field::Email => {
                if by_email.is_none() && by_id.is_some() {
                    let issue = Issue::error(
                        Code::IdentityConflict,
                        "this userId belongs to a user with another email; the email is the key and cannot change",
                    )
                    .column(id_col)
                    .value(row.user.user_id().unwrap_or(""));
                    return self.chunk_error(out, i, issue);
                }
                if let (Some(t), Some(id)) = (by_email, row.user.user_id())
                    && !same(t.user_id(), id)
                {
                    let issue = Issue::error(
                        Code::IdentityConflict,
                        format!(
                            "the user with this email has userId {:?}; a user id cannot be changed",
                            crate::issue::printable(t.user_id())
                        ),
                    )
                    .column(id_col)
                    .value(id);
                    return self.chunk_error(out, i, issue);
                }
                by_email
            }
            _ => {
                if row.user.user_id().is_some() {
                    if by_id.is_none()
                        && let Some(b) = by_email
                    {
                        match self.releaser(b.user_id(), email) {
                            Some(j) => email_from = Some(j as u32),
                            None => {
                                let issue = Issue::error(
                                    Code::EmailTaken,
                                    format!(
                                        "the email is already used by user {:?}",
                                        crate::issue::printable(b.user_id()),
                                    ),
                                )
                                .column(email_col)
                                .value(email);
                                return self.chunk_error(out, i, issue);
                            }
                        }
                    }
                    by_id
                } else {
                    by_email
                }
            }
        };
        match (self.profile.mode, target) {
            (Mode::CreateOnly, Some(t)) => {
                let issue = Issue::error(
                    Code::AlreadyExists,
                    format!(
                        "user {:?} already exists (create-only import)",
                        crate::issue::printable(t.user_id())
                    ),
                )
                .column(self.column(key_field));
                return self.chunk_error(out, i, issue);
            }
            (Mode::UpdateOnly, None) => {
                let issue = Issue::error(
                    Code::NotFound,
                    "no such user (update-only import: users must already exist)",
                )
                .column(self.column(key_field))
                .value(row.key(self.profile.key).unwrap_or(""));
                return self.chunk_error(out, i, issue);
            }
            _ => {}
        }
        // The manager must exist, in the directory or in the file.
        let mut manager_row = None;
        if let Some(m) = row.user.value(Field::ReportsTo)
            && dir.by_id(m).is_none()
        {
            let in_file = self
                .ids
                .unique(&self.v.rows, Field::UserId, m)
                .filter(|&r| self.v.rows[r].action == Action::Upsert);
            match in_file {
                Some(r) => manager_row = Some(r as u32),
                None => {
                    let issue = Issue::error(
                        Code::UnknownReference,
                        "the manager is neither in the directory nor in the file",
                    )
                    .column(self.column(Field::ReportsTo))
                    .value(m);
                    return self.chunk_error(out, i, issue);
                }
            }
        }
        if row.user.user_id().is_none() && target.is_none() && key_field == Field::UserId {
            let issue = Issue::error(
                Code::MissingValue,
                "a new user needs a userId (no existing user has this email)",
            )
            .column(id_col);
            return self.chunk_error(out, i, issue);
        }
        // Roles this row grants that the guard does not allow.
        let not_grantable = self
            .profile
            .guards
            .grantable_roles
            .as_ref()
            .and_then(|grantable| {
                row.user.roles().find(|r| {
                    !target.is_some_and(|t| t.user.roles().any(|c| same(c, r)))
                        && !grantable.iter().any(|g| same(g, r))
                })
            });
        if let Some(bad) = not_grantable {
            let issue = Issue::error(
                Code::RoleNotGrantable,
                "this import may not grant this role",
            )
            .column(self.column(Field::Roles))
            .value(bad);
            return self.chunk_error(out, i, issue);
        }
        match target {
            None => {
                // The user stays in the row until the plan is built.
                let notify = row.notify;
                out.set(
                    i,
                    Disp::Create {
                        notify,
                        manager_row: Link::to(manager_row),
                        email_from: Link::to(email_from),
                    },
                );
            }
            Some(t) => {
                let mut warnings = Vec::new();
                let changes = {
                    let cols = |f: Field| self.column(f).to_owned();
                    diff::changes(
                        t,
                        &row.user,
                        &self.profile.custom,
                        self.profile.blank,
                        self.profile.lists,
                        &cols,
                        &mut warnings,
                    )
                };
                for w in warnings {
                    out.issues.push(w.at(line));
                }
                // The acting administrator cannot lock themselves out.
                if self.acting.as_deref().is_some_and(|a| same(a, t.user_id()))
                    && let Some(reason) = self.lockout(t, &changes)
                {
                    let issue = Issue::error(Code::SelfLockout, reason).column(self.column(
                        if reason.contains("role") {
                            Field::Roles
                        } else {
                            Field::Enabled
                        },
                    ));
                    return self.chunk_error(out, i, issue);
                }
                out.note_target(i, t.user_id());
                if changes.is_empty() {
                    out.set(i, Disp::Unchanged);
                } else {
                    out.set(
                        i,
                        Disp::Update(Box::new(UpdateDisp {
                            manager_row: Link::to(manager_row),
                            email_from: Link::to(email_from),
                            version: t.version,
                            user_id: Text::from(t.user_id()),
                            changes,
                        })),
                    );
                }
            }
        }
    }

    /// The row of this file that moves `email` away from its current
    /// holder (changes the holder's email, or deletes them), if any.
    fn releaser(&self, holder: &str, email: &str) -> Option<usize> {
        self.ids
            .unique(&self.v.rows, Field::UserId, holder)
            .filter(|&r| {
                let row = &self.v.rows[r];
                !row.error
                    && (row.action == Action::Delete
                        || row.user.email().is_some_and(|e| !same(e, email)))
            })
    }

    /// Why applying `changes` to the acting user would lock them out.
    fn lockout(&self, t: &ExistingUser, changes: &diff::Changes) -> Option<&'static str> {
        if changes.new_value(Field::Enabled) == Some(Some("false")) {
            return Some("you cannot disable your own account");
        }
        if let Some(new) = changes.new_value(Field::Roles) {
            let admin = |roles: Option<&str>| {
                roles
                    .unwrap_or("")
                    .split('|')
                    .any(|r| self.profile.guards.admin_roles.iter().any(|a| same(a, r)))
            };
            if admin(t.user.value(Field::Roles)) && !admin(new) {
                return Some("you cannot remove your own admin role");
            }
        }
        None
    }

    fn plan_delete(&self, i: usize, dir: &Dir<'_>, out: &mut ChunkOut) {
        let row = &self.v.rows[i];
        let key_col = self.column(self.key_field());
        if self.profile.mode == Mode::CreateOnly {
            let issue = Issue::error(
                Code::InvalidValue,
                "DELETE rows are not allowed in a create-only import",
            )
            .column(self.column(Field::Transaction));
            return self.chunk_error(out, i, issue);
        }
        let (by_id, by_email) = self.identify(row, dir);
        let target = match (self.key_field(), row.user.user_id()) {
            (Field::UserId, Some(_)) => by_id,
            (Field::UserId, None) => by_email,
            _ => by_email.or(by_id),
        };
        let Some(t) = target else {
            let line = row.line;
            let key = row.key(self.profile.key).unwrap_or("").to_owned();
            out.issues.push(
                Issue::warning(Code::NotFound, "no such user to delete; nothing to do")
                    .at(line)
                    .column(key_col)
                    .value(&key),
            );
            out.set(i, Disp::Skip);
            return;
        };
        if self.acting.as_deref().is_some_and(|a| same(a, t.user_id())) {
            let issue = Issue::error(Code::SelfLockout, "you cannot delete your own account")
                .column(key_col);
            return self.chunk_error(out, i, issue);
        }
        let reports = dir.reports_of(t.user_id());
        let target = t.user_id().to_owned();
        out.note_target(i, &target);
        let row = &self.v.rows[i];
        let by_id = row.user.user_id().is_some_and(|id| same(id, t.user_id()));
        if !by_id {
            // The chunk asked for the reports of the row's user id only.
            out.pending_reports.push((i, normalize(t.user_id())));
        }
        out.set(
            i,
            Disp::Delete(Box::new(DeleteDisp {
                user_id: t.user_id().to_owned(),
                version: t.version,
                reports,
            })),
        );
    }

    /// A page of the directory in mirror mode.
    fn mirror_page(&mut self, users: Vec<ExistingUser>) {
        self.mirror_seen += users.len() as u64;
        if let Some(last) = users.last() {
            self.mirror_after = Some(normalize(last.user_id()));
        }
        if self.emails.is_none() {
            self.emails = Some(KeyIndex::build(&self.v.rows, Field::Email, |_| true));
        }
        let Some(emails) = self.emails.as_ref() else {
            return;
        };
        for u in users {
            let id = u.user_id();
            // Rows naming this user (two of each kind at most: more are
            // duplicates, errors all).
            let rows: Vec<usize> = self
                .ids
                .find(&self.v.rows, Field::UserId, id)
                .take(2)
                .chain(
                    u.user
                        .email()
                        .into_iter()
                        .flat_map(|e| emails.find(&self.v.rows, Field::Email, e).take(2)),
                )
                .collect();
            if !rows.is_empty() {
                // Kept: remember whom they will report to.
                for &r in &rows {
                    let m = match self.v.rows[r].user.value(Field::ReportsTo) {
                        Some(m) => Some(m),
                        None => u.user.value(Field::ReportsTo),
                    };
                    if let Some(m) = m {
                        self.mirror_kept_managers.insert(normalize(m));
                    }
                }
                continue;
            }
            if self.acting.as_deref().is_some_and(|a| same(a, id)) {
                self.plan_issues.push(Issue::warning(
                    Code::SelfLockout,
                    format!(
                        "you ({}) are not in the file, but mirror mode leaves your own account alone",
                        crate::issue::printable(id)
                    ),
                ));
                // Kept, so their manager is kept too.
                if let Some(m) = u.user.value(Field::ReportsTo) {
                    self.mirror_kept_managers.insert(normalize(m));
                }
                continue;
            }
            match self.profile.mirror {
                MirrorAction::Disable => {
                    if u.user.enabled() == Some(false) {
                        continue;
                    }
                    if u.locked.contains(&Field::Enabled) {
                        self.plan_issues.push(Issue::warning(
                            Code::FieldLocked,
                            format!(
                                "{} is not in the file but enabled is locked; not disabled",
                                crate::issue::printable(id)
                            ),
                        ));
                        continue;
                    }
                    self.mirror_disable.push((
                        id.to_owned(),
                        u.version,
                        u.user.get(Field::Enabled).map(str::to_owned),
                    ));
                }
                MirrorAction::Delete => self.mirror_delete.push((
                    id.to_owned(),
                    u.version,
                    u.user.value(Field::ReportsTo).map(normalize),
                )),
            }
        }
    }

    fn share_guard_applies(&self) -> bool {
        self.profile.guards.max_delete_share.is_some()
            && order::removals(self) >= self.profile.guards.min_removals_for_share
    }

    /// Ends planning without asking for anything more: a blocked plan that
    /// applies nothing, with `issue` (why: a store that failed, a cancel)
    /// among its file issues. Every row is accounted for: rows with errors
    /// fail, the others are skipped. Applying it calls no store and gives
    /// the report of an import that did not happen.
    ///
    /// ```
    /// use user_import::{Code, Importer, Issue, Planned};
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let planner = importer.planner(importer.validate(b"userId,email\na,a@x.io\n", None));
    /// let plan = planner.abort(Issue::error(Code::StoreError, "the directory is down"));
    /// assert!(plan.is_blocked());
    /// assert_eq!(plan.rows()[0].planned, Planned::Skip);
    /// let report = importer.apply(&plan, &mut InMemoryStore::new())?;
    /// assert!(report.issues.iter().any(|i| i.code == Code::StoreError));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn abort(mut self, issue: Issue) -> Plan {
        self.v.file_issues.push(issue);
        self.disp.iter_mut().for_each(|d| *d = Disp::Pending);
        self.mirror_delete.clear();
        self.mirror_disable.clear();
        self.new_roles.clear();
        self.pending_reports.clear();
        self.plan_issues.clear();
        self.asked = None;
        self.stage = Stage::Done;
        order::finish(self)
    }

    /// The finished plan.
    ///
    /// ```
    /// let importer = user_import::Importer::new("t");
    /// let plan = importer.planner(importer.validate(b"", None)).finish();
    /// assert!(plan.is_blocked(), "an empty file is refused");
    /// ```
    pub fn finish(self) -> Plan {
        order::finish(self)
    }
}

pub(crate) const TARGET_SEED: u64 = 0x7a29_e7f1;

/// The users fetched for one chunk, indexed by the hash of their normalized
/// user id, email and manager (no string is allocated to look one up).
struct Dir<'a> {
    users: &'a [ExistingUser],
    seed: u64,
    ids: Probe,
    emails: Probe,
    managers: Probe,
}

/// An open-addressing table of (hash, user) for one chunk's users: built in
/// one pass (no sort), looked up in a probe or two. Users with equal hashes
/// sit along the probe sequence in the order they were added, so the first
/// match is the first such user, and all matches come in the users' order.
struct Probe {
    slots: Vec<(u64, u32)>,
    mask: usize,
}

impl Probe {
    const EMPTY: u32 = u32::MAX;

    fn new(entries: impl Iterator<Item = (u64, u32)>, count: usize) -> Probe {
        let size = (count * 2).next_power_of_two().max(8);
        let mut slots = vec![(0, Probe::EMPTY); size];
        let mask = size - 1;
        for (h, i) in entries {
            let mut at = h as usize & mask;
            while slots[at].1 != Probe::EMPTY {
                at = (at + 1) & mask;
            }
            slots[at] = (h, i);
        }
        Probe { slots, mask }
    }

    /// The users whose hash is `h`, in the order they were added.
    fn with_hash(&self, h: u64) -> impl Iterator<Item = u32> + '_ {
        let start = h as usize & self.mask;
        (0..self.slots.len())
            .map(move |k| self.slots[(start + k) & self.mask])
            .take_while(|e| e.1 != Probe::EMPTY)
            .filter(move |e| e.0 == h)
            .map(|e| e.1)
    }
}

impl<'a> Dir<'a> {
    /// Indexes `users` by id and email, and by manager when `managers`.
    fn new(users: &'a [ExistingUser], managers: bool) -> Dir<'a> {
        let seed = 0x0d1c_7a11;
        let hashed = move |get: fn(&User) -> Option<&str>| {
            users
                .iter()
                .enumerate()
                .filter_map(move |(i, u)| Some((key_hash(seed, get(&u.user)?), i as u32)))
        };
        let managers = if managers {
            Probe::new(hashed(|u| u.value(Field::ReportsTo)), users.len())
        } else {
            Probe::new(std::iter::empty(), 0)
        };
        Dir {
            users,
            ids: Probe::new(hashed(User::user_id), users.len()),
            emails: Probe::new(hashed(User::email), users.len()),
            managers,
            seed,
        }
    }

    /// The first user whose value (`get`) equals `value`, in `probe`.
    fn first(
        &self,
        probe: &Probe,
        value: &str,
        get: fn(&User) -> Option<&str>,
    ) -> Option<&'a ExistingUser> {
        let users = self.users;
        probe
            .with_hash(key_hash(self.seed, value))
            .map(|i| &users[i as usize])
            .find(|u| get(&u.user).is_some_and(|v| same(v, value)))
    }

    fn by_id(&self, id: &str) -> Option<&'a ExistingUser> {
        self.first(&self.ids, id, User::user_id)
    }

    fn by_email(&self, email: &str) -> Option<&'a ExistingUser> {
        self.first(&self.emails, email, User::email)
    }

    /// The normalized ids of the users who report to `id` (not `id` itself).
    fn reports_of(&self, id: &str) -> Vec<String> {
        let users = self.users;
        self.managers
            .with_hash(key_hash(self.seed, id))
            .map(|i| &users[i as usize])
            .filter(|u| u.user.value(Field::ReportsTo).is_some_and(|m| same(m, id)))
            .filter_map(|u| u.user.user_id())
            .filter(|r| !same(r, id))
            .map(normalize)
            .collect()
    }
}

/// Policy checks shared with ordering.
pub(crate) fn blocked(policy: ErrorPolicy, file_error: bool, failed: u64) -> bool {
    file_error
        || match policy {
            ErrorPolicy::RejectFile => failed > 0,
            ErrorPolicy::SkipInvalid => false,
            ErrorPolicy::StopAfter(n) => failed > n,
        }
}

/// Plans and planners can move between threads.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<Planner>();
    is_send::<Plan>();
    // A chunk is planned on other threads while this one reads the planner.
    const fn is_sync<T: Sync>() {}
    is_sync::<Planner>();
};

#[cfg(test)]
mod tests {
    use super::{Disp, Link, Probe, UpdateDisp};

    #[test]
    fn a_probe_table_gives_equal_hashes_in_the_order_they_were_added() {
        // An 8-slot table: 7 and 15 share slot 7, the later ones wrap round.
        let p = Probe::new(
            [(7u64, 0u32), (15, 1), (7, 2), (3, 3), (7, 4)].into_iter(),
            4,
        );
        assert_eq!(p.slots.len(), 8);
        assert_eq!(p.with_hash(7).collect::<Vec<_>>(), [0, 2, 4]);
        assert_eq!(p.with_hash(15).collect::<Vec<_>>(), [1]);
        assert_eq!(p.with_hash(3).collect::<Vec<_>>(), [3]);
        assert_eq!(p.with_hash(11).count(), 0);
        assert_eq!(Probe::new(std::iter::empty(), 0).with_hash(0).count(), 0);
    }

    #[test]
    fn a_rows_entry_stays_small() {
        // One entry per row of the file, so it must stay small: updates and
        // deletes are boxed, links to other rows take 4 bytes.
        assert_eq!(std::mem::size_of::<Disp>(), 16);
        assert_eq!(std::mem::size_of::<Link>(), 4);
        // An update planned: the usual single change is kept inline.
        assert!(
            std::mem::size_of::<UpdateDisp>() <= 96,
            "{}",
            std::mem::size_of::<UpdateDisp>()
        );
    }

    #[test]
    fn planned_rows_keep_only_what_finishing_the_plan_reads() {
        use crate::memory::InMemoryStore;
        use crate::{Field, Importer, Profile, User};
        // Rows 3k create a user, 3k + 1 update one, 3k + 2 change nothing;
        // every fifth row deletes a user instead.
        let mut csv = String::from("userId,firstName,lastName,email,reportsTo,transaction\n");
        let mut store = InMemoryStore::new();
        let user = |id: &str, first: &str| {
            User::builder()
                .set(Field::UserId, id)
                .set(Field::FirstName, first)
                .set(Field::LastName, "Doe")
                .set(Field::Email, &format!("{id}@x.io"))
                .set(Field::ReportsTo, "boss")
                .build()
        };
        store.insert("t", User::builder().set(Field::UserId, "boss").build());
        for i in 0..300 {
            let (id, first) = (format!("u{i}"), format!("First{i}"));
            if i % 5 == 4 {
                csv.push_str(&format!("{id},,,,,DELETE\n"));
            } else {
                csv.push_str(&format!("{id},{first},Doe,{id}@x.io,boss,\n"));
            }
            match i % 3 {
                1 => store.insert("t", user(&id, "Before")),
                2 => store.insert("t", user(&id, &first)),
                _ => None,
            };
        }
        for threads in [1, 2] {
            let profile = Profile {
                batch_size: 64,
                ..Profile::default()
            };
            let importer = Importer::with_profile("t", profile).threads(threads);
            let mut planner = importer.planner(importer.validate(csv.as_bytes(), None));
            crate::apply::answer_sync(&mut planner, &mut store, &mut |_| {
                std::ops::ControlFlow::Continue(())
            })
            .expect("planned");
            let mut kinds = [0; 3];
            for (row, disp) in planner.v.rows.iter().zip(&planner.disp) {
                let kept: Vec<Field> = row.user.fields().map(|(f, _)| f).collect();
                if matches!(disp, Disp::Create { .. }) {
                    kinds[0] += 1;
                    assert!(kept.contains(&Field::FirstName), "line {}", row.line);
                } else {
                    kinds[if matches!(disp, Disp::Delete(_)) {
                        2
                    } else {
                        1
                    }] += 1;
                    assert!(
                        kept.iter()
                            .all(|f| [Field::UserId, Field::Email, Field::ReportsTo].contains(f)),
                        "line {}: {kept:?}",
                        row.line
                    );
                    assert!(row.user.user_id().is_some(), "line {}", row.line);
                }
            }
            // 20 deletes name nobody (skipped).
            assert_eq!(kinds, [80, 180, 40], "{threads} threads");
            assert_eq!(planner.finish().rows().len(), 300);
        }
    }

    #[test]
    fn a_link_keeps_any_row_but_the_last_index() {
        for row in [0, 1, 7, u32::MAX - 1] {
            assert_eq!(Link::to(Some(row)).row(), Some(row));
        }
        assert_eq!(Link::to(None).row(), None);
        assert_eq!(Link::default().row(), None);
    }
}
