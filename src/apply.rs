//! The drivers: connecting the planner and plans to a `UserStore` (sync) or
//! an `AsyncUserStore`, with batching, error policies, transactions,
//! progress and cancellation.

use std::ops::{ControlFlow, Range};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::issue::{Code, Issue};
use crate::plan::{Plan, Planner, Request, Response};
use crate::profile::ErrorPolicy;
use crate::report::{OnRow, OpStatus, Report, from_plan};
use crate::store::{AsyncUserStore, Op, OpOutcome, UserStore};

/// Which step a [`Progress`] report is about.
///
/// ```
/// assert_ne!(user_import::Phase::Planning, user_import::Phase::Applying);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Looking users up and planning rows.
    Planning,
    /// Writing operations.
    Applying,
}

/// How far an import has got; given to the progress callback between
/// batches. Returning [`ControlFlow::Break`] from the callback cancels the
/// import there.
///
/// ```
/// let p = user_import::Progress::default();
/// assert_eq!((p.rows_done, p.ops_total), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// The step.
    pub phase: Phase,
    /// Rows planned so far.
    pub rows_done: u64,
    /// Rows in the file.
    pub rows_total: u64,
    /// Operations applied (or attempted) so far.
    pub ops_done: u64,
    /// Operations in the plan.
    pub ops_total: u64,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            phase: Phase::Planning,
            rows_done: 0,
            rows_total: 0,
            ops_done: 0,
            ops_total: 0,
        }
    }
}

/// A progress callback; `Break` cancels.
///
/// ```
/// use std::ops::ControlFlow;
/// let mut stop_at_100: Box<user_import::OnProgress<'_>> =
///     Box::new(|p| if p.ops_done >= 100 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) });
/// assert!(stop_at_100(&user_import::Progress::default()).is_continue());
/// ```
pub type OnProgress<'a> = dyn FnMut(&Progress) -> ControlFlow<()> + Send + 'a;

/// How a step runs: where its progress goes, and so how it is cancelled.
/// The `_with` methods of [`crate::Importer`] take one; the others run with
/// the default (no progress, no cancel).
///
/// ```
/// use std::ops::ControlFlow;
/// use user_import::{Importer, RunOptions};
/// use user_import::memory::InMemoryStore;
/// let importer = Importer::new("t");
/// let v = importer.validate(b"userId,email\na,a@x.io\n", None);
/// let mut cancel = |_: &user_import::Progress| ControlFlow::Break(());
/// let err = importer
///     .plan_with(v, &mut InMemoryStore::new(), RunOptions::new().on_progress(&mut cancel))
///     .unwrap_err();
/// assert_eq!(err.kind(), user_import::ErrorKind::Cancelled);
/// ```
#[derive(Default)]
#[non_exhaustive]
pub struct RunOptions<'a> {
    on_progress: Option<&'a mut OnProgress<'a>>,
    undo: Option<&'a mut Option<Plan>>,
    on_row: Option<&'a mut OnRow<'a>>,
    on_restart: Option<&'a mut (dyn FnMut() + Send + 'a)>,
}

impl<'a> RunOptions<'a> {
    /// No progress, no cancel.
    ///
    /// ```
    /// let _ = user_import::RunOptions::new();
    /// ```
    pub fn new() -> RunOptions<'a> {
        RunOptions::default()
    }

    /// Calls `on_progress` before each batch (of planning and of applying);
    /// returning `Break` cancels: planning stops with an error of kind
    /// `Cancelled`, applying stops between batches (rolled back under the
    /// all-or-nothing policy; otherwise the report says what was done).
    ///
    /// ```
    /// let mut seen = 0;
    /// let mut count = |_: &user_import::Progress| {
    ///     seen += 1;
    ///     std::ops::ControlFlow::Continue(())
    /// };
    /// let _ = user_import::RunOptions::new().on_progress(&mut count);
    /// ```
    pub fn on_progress(mut self, on_progress: &'a mut OnProgress<'a>) -> RunOptions<'a> {
        self.on_progress = Some(on_progress);
        self
    }

    /// Has applying a plan also write its undo into `undo`: an ordinary
    /// plan that takes back what was applied (see [`crate::Importer::apply_with`]).
    /// Planning ignores it. It is asked for, not always made, because it
    /// costs a read of every user the import created or updated (one
    /// `fetch` per batch, before the commit) and holds a plan as large as
    /// the import's.
    ///
    /// ```
    /// use user_import::{Importer, Planned, RunOptions};
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let mut store = InMemoryStore::new();
    /// let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\n", None), &mut store)?;
    /// let mut undo = None;
    /// importer.apply_with(&plan, &mut store, RunOptions::new().undo(&mut undo))?;
    /// let undo = undo.expect("an undo");
    /// assert_eq!(undo.rows()[0].planned, Planned::Delete);
    /// importer.apply(&undo, &mut store)?;
    /// assert_eq!(store.len("t"), 0);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn undo(mut self, undo: &'a mut Option<Plan>) -> RunOptions<'a> {
        self.undo = Some(undo);
        self
    }

    /// Has applying a plan hand each row's report to `on_row`, in input
    /// order, once its outcome is final (after the commit or the rollback),
    /// instead of keeping it: [`Report::rows`] stays empty, and the rest of
    /// the report (the summary, file-level issues, directory changes,
    /// notices) is as without it. A caller that writes the rows as they
    /// come, or keeps only the failed ones, does not hold a report row per
    /// line of a large file. [`Report::render_text`] and
    /// [`Report::write_error_csv`] show the rows in [`Report::rows`]: put
    /// back the ones they need (those with issues, the failed ones), or
    /// write each row's lines as it comes
    /// ([`RowReport::write_text`](crate::report::RowReport::write_text)) and
    /// the report around them after ([`Report::write_text_with_rows`]).
    /// Planning ignores it; a dry run takes it through
    /// [`Report::dry_run_to`].
    ///
    /// ```
    /// use user_import::{Importer, Outcome, RowReport, RunOptions};
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let mut store = InMemoryStore::new();
    /// let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,b@x.io\n", None), &mut store)?;
    /// let mut added = 0;
    /// let mut count = |row: RowReport| added += u32::from(row.outcome == Outcome::Added);
    /// let report = importer.apply_with(&plan, &mut store, RunOptions::new().on_row(&mut count))?;
    /// assert!(report.rows.is_empty());
    /// assert_eq!(report.summary.added, 2);
    /// assert_eq!(added, 2);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn on_row(mut self, on_row: &'a mut OnRow<'a>) -> RunOptions<'a> {
        self.on_row = Some(on_row);
        self
    }

    /// Lets [`crate::Importer::run_streaming`] take back the rows it gave
    /// `on_row`: it hands each row over as soon as its part of the file is
    /// applied (inside the import's transaction), and when it must start
    /// the import again from the first row (see `run_streaming`), it rolls
    /// back, calls `on_restart`, and hands every row over again (or, when
    /// the store fails to commit, calls it and returns the error). A caller
    /// that writes the rows as they come truncates what it wrote. Without
    /// it, `run_streaming` with an `on_row` reads the file whole, as
    /// [`crate::Importer::run`] does. The other steps ignore it.
    ///
    /// ```
    /// use user_import::{RowReport, RunOptions};
    /// let mut lines = Vec::new();
    /// let mut keep = |row: RowReport| lines.push(row.line);
    /// let mut restarts = 0;
    /// let mut restart = || restarts += 1;
    /// let _ = RunOptions::new().on_row(&mut keep).on_restart(&mut restart);
    /// ```
    pub fn on_restart(mut self, on_restart: &'a mut (dyn FnMut() + Send + 'a)) -> RunOptions<'a> {
        self.on_restart = Some(on_restart);
        self
    }

    /// The progress callback, where the undo goes and where the rows go.
    pub(crate) fn into_parts(self) -> Parts<'a> {
        Parts {
            on_progress: self.on_progress,
            undo: self.undo,
            on_row: self.on_row,
            on_restart: self.on_restart,
        }
    }
}

/// A [`RunOptions`] taken apart.
pub(crate) struct Parts<'a> {
    pub(crate) on_progress: Option<&'a mut OnProgress<'a>>,
    pub(crate) undo: Option<&'a mut Option<Plan>>,
    pub(crate) on_row: Option<&'a mut OnRow<'a>>,
    pub(crate) on_restart: Option<&'a mut (dyn FnMut() + Send + 'a)>,
}

impl std::fmt::Debug for RunOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("on_progress", &self.on_progress.is_some())
            .field("undo", &self.undo.is_some())
            .field("on_row", &self.on_row.is_some())
            .field("on_restart", &self.on_restart.is_some())
            .finish()
    }
}

fn planning_progress(p: &Planner) -> Progress {
    let (done, total) = p.progress();
    Progress {
        phase: Phase::Planning,
        rows_done: done,
        rows_total: total,
        ..Progress::default()
    }
}

/// Drives a planner with a sync store.
pub(crate) fn plan_sync<S: UserStore + ?Sized>(
    mut planner: Planner,
    store: &mut S,
    on_progress: &mut OnProgress<'_>,
) -> Result<Plan, Error> {
    answer_sync(&mut planner, store, on_progress)?;
    Ok(planner.finish())
}

/// Answers a planner's requests with a sync store until it asks no more.
pub(crate) fn answer_sync<S: UserStore + ?Sized>(
    planner: &mut Planner,
    store: &mut S,
    on_progress: &mut OnProgress<'_>,
) -> Result<(), Error> {
    planner.plan_ahead();
    loop {
        if planner.poll().is_none() {
            break;
        }
        let progress = planning_progress(planner);
        // With threads to spare, the chunk whose users came last is planned
        // while the next chunk's users are fetched (same plan; see
        // `Planner::ahead`).
        let ahead = planner.ahead();
        let Some(request) = planner.asked() else {
            break;
        };
        let (response, planned) = match request {
            Request::Catalog { tenant } => (
                Response::Catalog(store.catalog(tenant).map_err(Error::store)?),
                None,
            ),
            Request::Fetch(f) => {
                if on_progress(&progress).is_break() {
                    return Err(Error::cancelled());
                }
                let mut fetch = || store.fetch(f).map_err(Error::store);
                let (users, planned) = match ahead {
                    Some(ahead) => {
                        let (users, planned) = ahead.beside(fetch);
                        (users, Some(planned))
                    }
                    None => (fetch(), None),
                };
                (Response::Users(users?), planned)
            }
            Request::Scan {
                tenant,
                after,
                limit,
            } => (
                Response::Users(
                    store
                        .scan(tenant, after.as_deref(), *limit)
                        .map_err(Error::store)?,
                ),
                None,
            ),
            Request::Count { tenant } => (
                Response::Count(store.count(tenant).map_err(Error::store)?),
                None,
            ),
        };
        if let Some(planned) = planned {
            planner.planned(planned);
        }
        planner.respond(response)?;
    }
    Ok(())
}

/// Drives a planner with an async store.
pub(crate) async fn plan_async<S: AsyncUserStore + ?Sized>(
    mut planner: Planner,
    store: &mut S,
    on_progress: &mut OnProgress<'_>,
) -> Result<Plan, Error> {
    loop {
        let progress = planning_progress(&planner);
        let Some(request) = planner.poll() else {
            break;
        };
        let response = match request {
            Request::Catalog { tenant } => {
                Response::Catalog(store.catalog(tenant).await.map_err(Error::store)?)
            }
            Request::Fetch(f) => {
                if on_progress(&progress).is_break() {
                    return Err(Error::cancelled());
                }
                Response::Users(store.fetch(f).await.map_err(Error::store)?)
            }
            Request::Scan {
                tenant,
                after,
                limit,
            } => Response::Users(
                store
                    .scan(tenant, after.as_deref(), *limit)
                    .await
                    .map_err(Error::store)?,
            ),
            Request::Count { tenant } => {
                Response::Count(store.count(tenant).await.map_err(Error::store)?)
            }
        };
        planner.respond(response)?;
    }
    Ok(planner.finish())
}

/// The bookkeeping of applying a plan, shared by the sync and async drivers.
pub(crate) struct Applier<'p> {
    plan: &'p Plan,
    status: Vec<OpStatus>,
    next: usize,
    failed_rows: u64,
    stopped: bool,
    cancelled: bool,
    transaction: bool,
    /// The statuses of [`Said`], made when first needed.
    said: [Option<OpStatus>; Said::COUNT],
}

/// What a store's outcome says of an op, in the same words for every op
/// it is given (all but a failure with the store's own message).
#[derive(Debug, Clone, Copy)]
enum Said {
    NoOutcome,
    RoleHeld,
    RoleCreated,
    RoleGone,
    UserGone,
    UserChanged,
    UserTaken,
}

impl Said {
    const COUNT: usize = Said::UserTaken as usize + 1;

    /// What `outcome` (neither applied nor a failure of the store's) says
    /// of `op`.
    fn of(outcome: Option<OpOutcome>, op: &Op) -> Said {
        match outcome {
            None => Said::NoOutcome,
            // A role is only deleted by an undo, where no user holds it:
            // one held again (or gone) stays as it is.
            Some(OpOutcome::Conflict) if matches!(op, Op::DeleteRole { .. }) => Said::RoleHeld,
            Some(OpOutcome::AlreadyExists) if matches!(op, Op::CreateRole { .. }) => {
                Said::RoleCreated
            }
            Some(OpOutcome::NotFound) if matches!(op, Op::DeleteRole { .. }) => Said::RoleGone,
            Some(OpOutcome::NotFound) if matches!(op, Op::Delete { .. }) => Said::UserGone,
            Some(OpOutcome::AlreadyExists) => Said::UserTaken,
            Some(_) => Said::UserChanged,
        }
    }

    fn status(self) -> OpStatus {
        // How the op ends (a failure is an error, the others warnings),
        // with its issue's code and message.
        enum End {
            Failed,
            Skipped,
            Moot,
        }
        let (end, code, message) = match self {
            Said::NoOutcome => (
                End::Failed,
                Code::StoreError,
                "the store gave no outcome for this operation; it is not counted as applied",
            ),
            Said::RoleHeld => (
                End::Skipped,
                Code::Conflict,
                "the role is held by users again, so it is kept",
            ),
            Said::RoleCreated => (
                End::Moot,
                Code::Conflict,
                "the role was created since the import was planned",
            ),
            Said::RoleGone => (End::Moot, Code::NotFound, "the role was already gone"),
            Said::UserGone => (
                End::Moot,
                Code::NotFound,
                "the user was already gone when the delete ran",
            ),
            Said::UserChanged => (
                End::Failed,
                Code::Conflict,
                "the user changed in the directory since the import was planned; nothing was overwritten (plan again)",
            ),
            Said::UserTaken => (
                End::Failed,
                Code::Conflict,
                "a user with this user id or email was created since the import was planned",
            ),
        };
        match end {
            End::Failed => OpStatus::failed(Issue::error(code, message)),
            End::Skipped => OpStatus::skipped(Issue::warning(code, message)),
            End::Moot => OpStatus::moot(Issue::warning(code, message)),
        }
    }
}

impl<'p> Applier<'p> {
    pub fn new(plan: &'p Plan) -> Applier<'p> {
        let failed_rows = plan
            .rows
            .iter()
            .filter(|r| r.planned == crate::plan::Planned::Fail)
            .count() as u64;
        Applier {
            plan,
            status: vec![OpStatus::Planned; plan.ops.len()],
            next: 0,
            failed_rows,
            stopped: plan.blocked,
            cancelled: false,
            transaction: false,
            said: Default::default(),
        }
    }

    /// Whether the all-or-nothing policy asks for a transaction.
    pub fn wants_transaction(&self) -> bool {
        !self.plan.blocked
            && self.plan.on_error == ErrorPolicy::RejectFile
            && !self.plan.ops.is_empty()
    }

    pub fn began(&mut self, transaction: bool) {
        self.transaction = transaction;
    }

    pub fn progress(&self) -> Progress {
        Progress {
            phase: Phase::Applying,
            rows_done: self.plan.rows.len() as u64,
            rows_total: self.plan.rows.len() as u64,
            ops_done: self.next as u64,
            ops_total: self.plan.ops.len() as u64,
        }
    }

    /// The ops of the next batch, or `None` when done (or stopped).
    pub fn next_batch(&mut self) -> Option<Range<usize>> {
        if self.stopped || self.next >= self.plan.ops.len() {
            return None;
        }
        // A stored plan may say anything: never a batch of nothing.
        let end = (self.next + self.plan.batch_size.max(1)).min(self.plan.ops.len());
        Some(self.next..end)
    }

    pub fn ops(&self, range: Range<usize>) -> &'p [Op] {
        &self.plan.ops[range]
    }

    pub fn cancel(&mut self) {
        self.cancelled = true;
        self.stop_rest(|| {
            Issue::warning(
                Code::Cancelled,
                "not applied: the import was cancelled before this row",
            )
        });
    }

    fn stop_rest(&mut self, why: impl Fn() -> Issue) {
        self.stopped = true;
        // One issue, shared by every op it stops.
        let skipped = OpStatus::skipped(why());
        for k in self.next..self.status.len() {
            if matches!(self.status[k], OpStatus::Planned) {
                self.status[k] = skipped.clone();
            }
        }
    }

    /// Records a batch's outcomes (or its error).
    pub fn record(&mut self, range: Range<usize>, result: Result<Vec<OpOutcome>, String>) {
        let outcomes = match result {
            Ok(o) => o,
            Err(message) => {
                let failed = OpStatus::failed(Issue::error(
                    Code::StoreError,
                    format!("not applied: the store failed: {message}"),
                ));
                for k in range.clone() {
                    self.status[k] = failed.clone();
                    self.failed_rows += 1;
                }
                self.next = range.end;
                self.stop_rest(|| {
                    Issue::warning(
                        Code::StoreError,
                        "not applied: the import stopped at a store error; run it again to finish",
                    )
                });
                return;
            }
        };
        let mut outcomes = outcomes.into_iter();
        let mut any_failed = false;
        let plan = self.plan;
        for k in range.clone() {
            let op = &plan.ops[k];
            let status = match outcomes.next() {
                Some(OpOutcome::Applied) => OpStatus::Applied,
                Some(OpOutcome::Failed(m)) => OpStatus::failed(Issue::error(Code::StoreError, m)),
                outcome => {
                    // The same words for every op: one issue, shared.
                    let said = Said::of(outcome, op);
                    self.said[said as usize]
                        .get_or_insert_with(|| said.status())
                        .clone()
                }
            };
            if matches!(status, OpStatus::Failed(_)) {
                any_failed = true;
                self.failed_rows += 1;
            }
            self.status[k] = status;
        }
        self.next = range.end;
        let stop = match self.plan.on_error {
            ErrorPolicy::RejectFile => any_failed,
            ErrorPolicy::SkipInvalid => false,
            ErrorPolicy::StopAfter(n) => self.failed_rows > n,
        };
        if stop {
            // The store did not fail: an operation did (a conflict, say),
            // and the policy stops the file there.
            self.stop_rest(|| {
                Issue::warning(
                    Code::FileRejected,
                    "not applied: the import stopped after an operation failed",
                )
            });
        }
    }

    /// Whether every op was applied.
    pub fn all_applied(&self) -> bool {
        self.status.iter().all(|s| matches!(s, OpStatus::Applied))
    }

    /// Whether the transaction must be rolled back rather than committed.
    pub fn must_roll_back(&self) -> bool {
        self.transaction
            && (self.cancelled || self.status.iter().any(|s| matches!(s, OpStatus::Failed(_))))
    }

    /// After a rollback: nothing that was applied stays applied.
    pub fn rolled_back(&mut self, why: &str) {
        let code = if self.cancelled {
            Code::Cancelled
        } else {
            Code::FileRejected
        };
        let rolled_back = OpStatus::skipped(Issue::warning(
            code,
            format!("not applied: rolled back because {why}"),
        ));
        for s in &mut self.status {
            if matches!(s, OpStatus::Applied) {
                *s = rolled_back.clone();
            }
        }
    }

    pub fn transaction(&self) -> bool {
        self.transaction
    }

    /// The store failed outside a batch (starting the transaction): nothing
    /// planned is applied, and each op says why.
    pub fn store_failed(&mut self, message: &str) {
        let failed = OpStatus::failed(Issue::error(
            Code::StoreError,
            format!("not applied: the store failed: {message}"),
        ));
        for k in self.next..self.status.len() {
            if matches!(self.status[k], OpStatus::Planned) {
                self.status[k] = failed.clone();
                self.failed_rows += 1;
            }
        }
        self.stopped = true;
    }

    /// The transaction did not commit (or did not roll back): what the
    /// batches applied is not in the directory, or not known to be.
    pub fn end_failed(&mut self, what: &str, message: &str) {
        let failed = OpStatus::failed(Issue::error(Code::StoreError, format!("{what}: {message}")));
        for s in &mut self.status {
            if matches!(s, OpStatus::Applied) {
                *s = failed.clone();
                self.failed_rows += 1;
            }
        }
    }

    /// The requests that read back what the undo needs, made one at a time.
    fn undo_fetches(&self) -> impl Iterator<Item = crate::store::Fetch> + '_ {
        crate::undo::fetches(self.plan, &self.status, self.plan.batch_size)
    }

    /// The undo of what was applied.
    fn undo(&self, read_back: ReadBack) -> Plan {
        crate::undo::build(
            self.plan,
            &self.status,
            read_back.users,
            read_back.failed.as_deref(),
        )
    }

    pub fn report(self, on_row: Option<&mut OnRow<'_>>) -> Report {
        if self.plan.blocked {
            return from_plan(self.plan, Some((&[], false)), on_row);
        }
        from_plan(self.plan, Some((&self.status, self.cancelled)), on_row)
    }
}

/// Why ops a batch applied are not applied after all, when the transaction
/// does not end as it should.
const COMMIT_FAILED: &str =
    "not applied: the store could not commit the import, so nothing of it was written";
const ROLLBACK_FAILED: &str = "perhaps applied: the store could not roll the import back, so the directory may hold part of it; run the import again to converge";

fn rollback_reason(a: &Applier<'_>) -> &'static str {
    if a.cancelled {
        "the import was cancelled"
    } else {
        "an operation failed and the file is imported all or nothing"
    }
}

/// Applies a plan through a sync store; with `undo`, also its undo.
pub(crate) fn apply_sync<S: UserStore + ?Sized>(
    plan: &Plan,
    store: &mut S,
    on_progress: &mut OnProgress<'_>,
    undo: Option<&mut Option<Plan>>,
    on_row: Option<&mut OnRow<'_>>,
) -> Result<Report, Error> {
    let mut a = Applier::new(plan);
    if a.wants_transaction() {
        match store.begin() {
            Ok(t) => a.began(t),
            Err(e) => a.store_failed(&e.to_string()),
        }
    }
    while let Some(range) = a.next_batch() {
        if on_progress(&a.progress()).is_break() {
            a.cancel();
            break;
        }
        let result = store
            .apply(&plan.tenant, a.ops(range.clone()))
            .map_err(|e| e.to_string());
        a.record(range, result);
    }
    // What the undo needs is read back before the transaction ends.
    let mut read_back = ReadBack::default();
    if undo.is_some() && !a.must_roll_back() {
        for f in a.undo_fetches() {
            match store.fetch(&f) {
                Ok(users) => read_back.users.extend(users),
                Err(e) => {
                    read_back.failed = Some(e.to_string());
                    break;
                }
            }
        }
    }
    if a.transaction() {
        if a.must_roll_back() {
            let why = rollback_reason(&a);
            match store.rollback() {
                Ok(()) => a.rolled_back(why),
                Err(e) => a.end_failed(ROLLBACK_FAILED, &e.to_string()),
            }
        } else if let Err(e) = store.commit() {
            a.end_failed(COMMIT_FAILED, &e.to_string());
        }
    }
    if let Some(undo) = undo {
        *undo = Some(a.undo(read_back));
    }
    let _ = on_progress(&a.progress());
    Ok(a.report(on_row))
}

/// The users read back after applying, for the undo.
#[derive(Default)]
struct ReadBack {
    users: Vec<crate::store::ExistingUser>,
    /// Why they could not be read, if so.
    failed: Option<String>,
}

/// Applies a plan through an async store; with `undo`, also its undo.
pub(crate) async fn apply_async<S: AsyncUserStore + ?Sized>(
    plan: &Plan,
    store: &mut S,
    on_progress: &mut OnProgress<'_>,
    undo: Option<&mut Option<Plan>>,
    on_row: Option<&mut OnRow<'_>>,
) -> Result<Report, Error> {
    let mut a = Applier::new(plan);
    if a.wants_transaction() {
        match store.begin().await {
            Ok(t) => a.began(t),
            Err(e) => a.store_failed(&e.to_string()),
        }
    }
    while let Some(range) = a.next_batch() {
        if on_progress(&a.progress()).is_break() {
            a.cancel();
            break;
        }
        let result = store
            .apply(&plan.tenant, a.ops(range.clone()))
            .await
            .map_err(|e| e.to_string());
        a.record(range, result);
    }
    let mut read_back = ReadBack::default();
    if undo.is_some() && !a.must_roll_back() {
        for f in a.undo_fetches() {
            match store.fetch(&f).await {
                Ok(users) => read_back.users.extend(users),
                Err(e) => {
                    read_back.failed = Some(e.to_string());
                    break;
                }
            }
        }
    }
    if a.transaction() {
        if a.must_roll_back() {
            let why = rollback_reason(&a);
            match store.rollback().await {
                Ok(()) => a.rolled_back(why),
                Err(e) => a.end_failed(ROLLBACK_FAILED, &e.to_string()),
            }
        } else if let Err(e) = store.commit().await {
            a.end_failed(COMMIT_FAILED, &e.to_string());
        }
    }
    if let Some(undo) = undo {
        *undo = Some(a.undo(read_back));
    }
    let _ = on_progress(&a.progress());
    Ok(a.report(on_row))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::import::Importer;
    use crate::memory::InMemoryStore;

    /// A stop and a rollback give every op they touch one issue between
    /// them: a large import that rolls back holds one issue, not one an op.
    #[test]
    fn a_stop_and_a_rollback_share_one_issue_among_their_ops() {
        let mut file = String::from("userId,email\n");
        for i in 0..10 {
            file.push_str(&format!("u{i},u{i}@example.org\n"));
        }
        let importer = Importer::new("t");
        let mut store = InMemoryStore::new();
        let plan = importer
            .plan(importer.validate(file.as_bytes(), None), &mut store)
            .unwrap();
        assert_eq!(plan.ops.len(), 10);
        let mut a = Applier::new(&plan);
        a.began(true);
        a.record(0..4, Ok(vec![OpOutcome::Applied; 4]));
        a.cancel();
        assert!(a.must_roll_back());
        a.rolled_back(rollback_reason(&a));
        let shared = |range: Range<usize>| {
            let issues: Vec<&Arc<Issue>> = a.status[range]
                .iter()
                .map(|s| match s {
                    OpStatus::Skipped(i) => i,
                    other => panic!("not skipped: {other:?}"),
                })
                .collect();
            assert!(issues.windows(2).all(|w| Arc::ptr_eq(w[0], w[1])));
            issues[0].message.clone()
        };
        assert!(shared(0..4).contains("rolled back"));
        assert!(shared(4..10).contains("cancelled before this row"));
        let report = a.report(None);
        assert_eq!(report.summary.skipped, 10);
        assert!(report.rows.iter().all(|r| r.issues.len() == 1));

        // Outcomes in the same words share their issue; a store's own
        // message is the op's.
        let mut plan = plan;
        plan.on_error = ErrorPolicy::SkipInvalid;
        let mut a = Applier::new(&plan);
        let mut outcomes = vec![OpOutcome::Conflict; 9];
        outcomes[4] = OpOutcome::Failed("disk full".into());
        a.record(0..10, Ok(outcomes));
        let issue = |k: usize| match &a.status[k] {
            OpStatus::Failed(i) => i.clone(),
            other => panic!("not failed: {other:?}"),
        };
        assert!(Arc::ptr_eq(&issue(0), &issue(8)));
        assert_eq!(issue(4).message, "disk full");
        assert!(issue(9).message.contains("no outcome"));
        assert_eq!(a.report(None).summary.failed, 10);
    }
}
