//! Planning: from validated rows and the directory's state, a pure,
//! deterministic [`Plan`] of operations.
//!
//! The [`Planner`] does no I/O: it asks for what it needs ([`Request`]) and is
//! given the answers ([`Response`]), in the style of quinn-proto. The drivers
//! in [`crate::Importer`] connect it to a [`crate::UserStore`] (sync or
//! async); a test can answer it from anything.
//!
//! The parts: `types` (the plan and the requests, public), this module (the
//! planner's state machine: poll, respond, finish), `rows` (the per-row
//! rules: matching, upsert, delete, mirror), `refs` (catalog checks),
//! `chunk` (planning a chunk apart, on other threads), `dir` (one chunk's
//! directory users, hashed), `diff` (field changes), `checks` (the checks
//! that need every row, and the guards), `assemble` (the plan's entries and
//! operations) and `order` (the order of operations).

mod assemble;
mod checks;
mod chunk;
mod diff;
mod dir;
mod order;
mod provenance;
mod refs;
mod rows;
mod types;

pub(crate) use checks::guard_issue;
use chunk::{ChunkOut, Refill};
pub(crate) use diff::same_value;
use dir::Dir;
pub(crate) use order::sort_notices;
pub use provenance::Provenance;
pub(crate) use provenance::{decisions, now};
pub(crate) use refs::first_spelling;
use refs::{Refs, RefsOut};
pub use types::{Notice, Plan, Planned, PlannedRow, Request, Response};

use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::error::Error;
use crate::index::HashIndex;
use crate::issue::{Code, Issue};
use crate::matching::normalize;
use crate::profile::{ErrorPolicy, Mode, Profile};
use crate::record::{Action, User};
use crate::schema::Field;
use crate::store::{ExistingUser, Fetch};
use crate::text::Text;
use crate::validate::Validation;
use crate::validate::file::index_rows;

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
    /// The acting user, normalized.
    acting: Option<String>,
    /// The acting user as given.
    acting_given: Option<String>,
    v: Validation,
    stage: Stage,
    asked: Option<Request>,
    catalog: Catalog,
    new_roles: BTreeMap<String, String>,
    ids: HashIndex,
    /// Built when first needed (mirror mode; deletes).
    emails: Option<HashIndex>,
    managers: Option<HashIndex>,
    /// Rows planned (merged) so far.
    cursor: usize,
    /// The rows of the chunk whose users are asked for.
    asking: std::ops::Range<usize>,
    /// A chunk whose users have come, to be planned beside the next
    /// chunk's request (with threads; see `chunk::Ahead`).
    held: Option<chunk::Held>,
    /// Whether the driver plans held chunks beside its requests.
    ahead_driver: bool,
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
    /// The directory users the plan may delete, whole (for an undo).
    removed: Vec<ExistingUser>,
    /// The rows the store's catalog fails (a role or reference it does
    /// not hold), in order.
    refused: Vec<usize>,
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
            .unwrap_or_else(|| index_rows(&v.rows, Field::UserId, |_| true));
        // Reference checks are redone against the store's catalog.
        v.row_issues.retain(|i| !redone(i.code));
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
            acting_given: acting_user.map(str::to_owned),
            v,
            stage,
            asked: None,
            catalog: Catalog::new(),
            new_roles: BTreeMap::new(),
            ids,
            emails: None,
            managers: None,
            cursor: 0,
            asking: 0..0,
            held: None,
            ahead_driver: false,
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
            removed: Vec::new(),
            refused: Vec::new(),
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
                    // The next chunk starts after the one held, if any.
                    let start = self.held.as_ref().map_or(self.cursor, |h| h.end);
                    if start >= self.v.rows.len() {
                        if self.held.is_some() {
                            self.settle();
                        } else {
                            self.stage = Stage::Mirror;
                        }
                        continue;
                    }
                    let fetch = self.next_fetch(start);
                    if fetch.is_empty() {
                        // Only failing rows in this chunk: nothing to look up.
                        self.spare = Some(fetch);
                        self.received(self.asking.clone(), Vec::new());
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

    /// The request polled and not yet answered.
    pub(crate) fn asked(&self) -> Option<&Request> {
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
                self.received(self.asking.clone(), users);
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
        for &i in &failed {
            self.disp[i] = Disp::Fail;
        }
        self.refused = failed;
    }

    /// The lookups of the next chunk of rows, written over the last
    /// request's strings (no allocation per value once the first chunk has
    /// sized them).
    fn next_fetch(&mut self, start: usize) -> Fetch {
        let end = (start + self.profile.batch_size.max(1)).min(self.v.rows.len());
        self.asking = start..end;
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
        self.removed.extend(out.removed);
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

    fn share_guard_applies(&self) -> bool {
        self.profile.guards.max_delete_share.is_some()
            && checks::removals(self) >= self.profile.guards.min_removals_for_share
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
        assemble::finish(self)
    }

    /// The lines of the rows with errors, as planning takes them once the
    /// store's catalog has answered (it has the last word on roles and
    /// references), in order: the rows that fail in any plan of them, for
    /// their own errors.
    pub(crate) fn error_lines(&self) -> Vec<u64> {
        let mut refused = self.refused.iter().copied().peekable();
        let mut lines = Vec::new();
        for (i, r) in self.v.rows.iter().enumerate() {
            let by_catalog = refused.next_if_eq(&i).is_some();
            if r.error || by_catalog {
                lines.push(r.line);
            }
        }
        lines
    }

    /// The hashes of the directory users the rows planned so far are about
    /// (updated, unchanged or deleted), as two rows of one plan about the
    /// same user are found: for a driver that plans a file in parts, to
    /// find two parts' rows about one user.
    pub(crate) fn target_hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.targets.iter().map(|t| t.0)
    }

    /// How many users the rows planned so far delete or disable, as the
    /// guards on mass removal count them.
    pub(crate) fn removals(&self) -> u64 {
        checks::removals(self)
    }

    /// The finished plan.
    ///
    /// ```
    /// let importer = user_import::Importer::new("t");
    /// let plan = importer.planner(importer.validate(b"", None)).finish();
    /// assert!(plan.is_blocked(), "an empty file is refused");
    /// ```
    pub fn finish(self) -> Plan {
        assemble::finish(self)
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

/// Whether planning checks again what an issue of `code` says (against
/// the store's catalog), dropping validation's issue.
pub(crate) fn redone(code: Code) -> bool {
    matches!(code, Code::UnknownRole | Code::UnknownReference)
}

/// The issue that says why a file without file errors is rejected: more
/// rows fail (`failed`) than `policy` accepts.
pub(crate) fn rejection(policy: ErrorPolicy, failed: u64) -> Issue {
    let why = match policy {
        ErrorPolicy::StopAfter(max) => {
            format!("{failed} rows have errors, more than the {max} the error policy accepts")
        }
        _ => format!(
            "{failed} row{} errors and the file is imported all or nothing",
            if failed == 1 { " has" } else { "s have" }
        ),
    };
    Issue::error(
        Code::FileRejected,
        format!("the file is rejected, nothing is imported: {why}"),
    )
    .suggest("fix the rows with errors, or import the valid rows with the skip-invalid policy")
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
    use super::{Disp, Link, UpdateDisp};

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
