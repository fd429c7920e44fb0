//! Importing a file a segment at a time, to the result of importing it
//! whole ([`crate::Importer::run_streaming`],
//! [`crate::Importer::dry_run_streaming`]).
//!
//! With a store that has transactions, the file is read in segments of
//! about 2 MiB inside one transaction (begun before the first operation,
//! so an import that writes nothing takes no write lock): each segment's
//! rows are checked,
//! planned against the directory as the segments before it left it,
//! applied and reported, then let go. With threads, the next segment is
//! read and checked on a thread of its own while this one is planned and
//! applied (the store is called from the calling thread only). What ties
//! rows of different segments together is kept per row as hashes (a few
//! dozen bytes a row, not the rows): the file-wide checks (duplicate keys
//! and emails, `reportsTo` cycles), rows of two segments about one
//! directory user, how a new role is spelled, and the guards on mass
//! removal, which count the whole file's removals.
//!
//! The result is the one planning the whole file gives whenever no row
//! fails but for its own errors: every operation applies, so every row's
//! outcome is its plan's, and what a segment's rows find in the
//! directory is what the whole plan finds there, or, for a manager
//! created by an earlier row (named by the id that row gives), what the
//! whole plan finds in the file. So a segment's rows must not look a user
//! up by an id or email that an earlier segment created, changed or
//! removed (the directory would answer as the import left it), nor delete
//! a user whose report an earlier segment moved or deleted (the directory
//! would list fewer reports), nor name as a manager a user whose id is
//! made from an email. A row with an error fails in any plan, and, under
//! an error policy that imports the valid rows, fails alike in its
//! segment, so long as the file's failed rows stay within what
//! `StopAfter` accepts: no other row's outcome hangs on it across
//! segments (a row naming as its manager a user only such a row would
//! create fails in its segment too, for a manager it cannot find, and so
//! sends the file whole). A row with an error under `RejectFile`, or
//! more failed rows than `StopAfter` accepts, rejects the file: the
//! attempt ends there, and the file is read again for its report
//! ([`Job::rejected`]), planned as a dry run and reported as the whole
//! plan reports a rejected file. Anything else ends the attempt before
//! it commits: a row that fails for another reason or cannot be planned
//! in its segment (a manager or an email only a later segment
//! provides), a row that looks up what an earlier segment touched, an
//! operation that does not apply, a store error, or a file-wide check that
//! may find something. Then the transaction is rolled back, and the file
//! is imported whole, so that every report and every outcome is the whole
//! plan's, the failures included. That costs a second reading of the
//! file, but only for such a file (and a third when the reading for a
//! rejected file's report cannot decide either). A property
//! test (`tests/streaming.rs`) holds the two equal over files whose rows
//! meet each other and the directory every way a small pool of ids,
//! emails, managers and role spellings allows.
//!
//! A dry run applies nothing, so each segment is planned against the
//! directory with the users and roles the segments before it create added
//! (by id, for the rows that name them as managers); the same checks send
//! a file to be planned whole, and one more: a user the file deletes who
//! manages a user the file names (applied, the delete would find that
//! report in the directory).
//!
//! The report of an import that did not happen ([`Job::aborted`]: a
//! store that failed, a cancel) is read in segments the same way, each
//! segment's plan aborted as the whole file's would be: nothing is asked
//! of the store, and only mirror mode, rows handed over that could not be
//! taken back, a file over the size limit, and what the reading finds (a
//! file error, rows over the limit, a file-wide check that may find
//! something) send the file whole.

use std::collections::HashSet;
use std::io::Read;
use std::ops::ControlFlow;

use crate::apply::{Applier, Parts, Phase, Progress, answer_sync};
use crate::catalog::Catalog;
use crate::error::{Error, ErrorKind};
use crate::issue::{Issue, Severity, sort_issues};
use crate::matching::normalize;
use crate::plan::{Planned, Planner, Provenance, blocked, guard_issue, now};
use crate::profile::{ErrorPolicy, Mode, Profile};
use crate::record::Action;
use crate::record::User;
use crate::report::{Report, Summary};
use crate::schema::Field;
use crate::store::{ExistingUser, Op, OpOutcome, UserStore};
use crate::validate::{Settings, Stream, Validation};

/// What an import in segments needs of the importer.
pub(crate) struct Job<'a> {
    pub(crate) profile: &'a Profile,
    pub(crate) tenant: &'a str,
    /// The acting user, as given.
    pub(crate) acting: Option<&'a str>,
    pub(crate) catalog: Option<&'a Catalog>,
    pub(crate) threads: usize,
    /// Bytes of the file's head and of a segment (tests read tiny ones).
    pub(crate) sizes: (usize, usize),
    /// A dry run: planned and reported, nothing applied.
    pub(crate) dry: bool,
    /// The file is rejected (more of its rows have errors than the error
    /// policy accepts): planned as a dry run is, nothing applied, and
    /// reported as the whole plan of a rejected file is (the rows that
    /// would change something are skipped).
    pub(crate) rejected: bool,
    /// The import did not happen (the issue says why: a store that
    /// failed, a cancel): nothing is asked of the store nor applied, and
    /// the rows are reported as the whole file's aborted plan reports them
    /// (`Planner::abort`).
    pub(crate) aborted: Option<&'a Issue>,
}

impl Job<'_> {
    /// Whether the segments are planned without applying them.
    fn plans_dry(&self) -> bool {
        self.dry || self.reports_only()
    }

    /// Whether the file is read only for the report of an import that did
    /// not happen (a rejected or an aborted file): no row of it rejects it
    /// again.
    fn reports_only(&self) -> bool {
        self.rejected || self.aborted.is_some()
    }
}

/// Why an attempt stops when more rows fail than the error policy
/// accepts (any under `RejectFile`): the file is rejected.
const TOO_MANY_FAIL: &str = "more rows fail than the error policy accepts";

/// How an import in segments ended.
pub(crate) enum Ended {
    /// Applied and committed (boxed: a report is large beside a reason).
    Done(Box<Report>),
    /// Nothing of it is left (it was rolled back, or not begun): the file
    /// is to be imported whole. Why, in words (for the tests).
    Whole(#[cfg_attr(not(test), allow(dead_code))] &'static str),
    /// Nothing of it is left, and the rows' errors reject the file: it is
    /// to be read again with [`Job::rejected`], for the report.
    Rejected,
}

/// Imports the file `source` holds a segment at a time, if it can (see the
/// module's documentation). `parts.on_row` gets the rows as their segments
/// are applied; if the attempt is given up after some were,
/// `parts.on_restart` is called before this returns `Whole` or `Rejected`.
pub(crate) fn run<S: UserStore + ?Sized>(
    job: &Job<'_>,
    source: impl Read + Send,
    size: Option<u64>,
    name: Option<&str>,
    store: &mut S,
    parts: &mut Parts<'_>,
) -> Result<Ended, Error> {
    let profile = job.profile;
    let not_now = if profile.mode == Mode::Mirror {
        Some("mirror mode reads the whole directory against the whole file")
    } else if parts.undo.is_some() && !job.plans_dry() {
        Some("an undo is made from the whole plan")
    } else if parts.on_row.is_some() && parts.on_restart.is_none() {
        Some("rows handed over could not be taken back")
    } else if size.is_some_and(|s| s > profile.limits.file_bytes) {
        Some("the file is over the size limit")
    } else {
        None
    };
    if let Some(why) = not_now {
        return Ok(Ended::Whole(why));
    }
    let mut segments = Segments::new(job);
    let ended = segments.read(source, (size, name), store, parts);
    // The transaction began before the first operation, if one came: an
    // import that writes nothing takes no write lock.
    if let Ok(Ok(report)) = ended {
        if !segments.began {
            return Ok(Ended::Done(Box::new(report)));
        }
        return match store.commit() {
            Ok(()) => Ok(Ended::Done(Box::new(report))),
            // Whether a commit that failed wrote anything only the store
            // knows: not imported again, but said (a transaction it left
            // open is rolled back).
            Err(e) => {
                let _ = store.rollback();
                segments.restart(parts);
                Err(Error::store(e))
            }
        };
    }
    let rolled_back = match segments.began {
        true => store.rollback().map_err(Error::store),
        false => Ok(()),
    };
    segments.restart(parts);
    // A rollback that failed leaves the store in doubt: that comes first.
    rolled_back?;
    match ended? {
        Ok(_) => Ok(Ended::Whole("the import ended without its commit")),
        Err(TOO_MANY_FAIL) if !job.rejected => Ok(Ended::Rejected),
        Err(why) => Ok(Ended::Whole(why)),
    }
}

/// What an import in segments keeps from one segment to the next.
struct Segments<'j> {
    job: &'j Job<'j>,
    /// The profile each segment is planned under: the job's, without the
    /// guards on mass removal, which are checked once for the whole file.
    planned_under: Profile,
    /// Rows planned so far.
    rows: usize,
    /// Hashes of the directory users rows are about (updated, unchanged,
    /// deleted).
    targets: Vec<u64>,
    /// A dry run's: the users and roles the segments before create (a dry
    /// run applies nothing, so the directory does not hold them).
    created: Created,
    /// A dry run's: hashes of the users the segments delete.
    deleted: Vec<u64>,
    /// Hashes of the user ids and emails the segments so far created,
    /// changed or removed: a later row that looks a user up by one of them
    /// would find the directory as the import left it, not as the whole
    /// plan found it.
    touched: Runs,
    /// Hashes of the managers who lost a report to the segments so far (a
    /// report moved away or deleted): a later delete of one would find
    /// fewer reports in the directory than the whole plan finds.
    lost_reports: Runs,
    /// Users deleted or disabled, as the guards count them.
    removals: u64,
    /// The directory's size before the import, when the share guard needs it.
    directory_size: Option<u64>,
    summary: Summary,
    notices: Vec<crate::plan::Notice>,
    /// The rows' reports, when no `on_row` takes them.
    kept: Vec<crate::report::RowReport>,
    /// Whether a row's report went to `on_row`.
    handed_over: bool,
    /// Whether the store's transaction began (before the first operation).
    began: bool,
    /// The file's size, if known (to estimate the progress's totals).
    size: Option<u64>,
    /// Operations applied (or tried) by the segments so far.
    ops: u64,
}

/// A segment as read: its rows, the hashes of each row's user id and
/// email, and the bytes of the file read up to its end.
struct Segment {
    v: Validation,
    named: Vec<[Option<u64>; 2]>,
    read: u64,
}

/// `n`, counted over the first `read` bytes of a file of `size` bytes,
/// scaled to the whole file (`n` itself when the size is not known or
/// the file is read).
fn over_file(n: u64, read: u64, size: Option<u64>) -> u64 {
    match size {
        Some(size) if read > 0 && size > read => {
            u64::try_from(u128::from(n) * u128::from(size) / u128::from(read)).unwrap_or(u64::MAX)
        }
        _ => n,
    }
}

/// A segment's end: go on, or give up the attempt (why, in words).
type Step = Result<Result<(), &'static str>, Error>;

impl<'j> Segments<'j> {
    fn new(job: &'j Job<'j>) -> Segments<'j> {
        let mut planned_under = job.profile.clone();
        planned_under.guards.max_deletes = None;
        planned_under.guards.max_delete_share = None;
        // The error policy is the file's: the segments count its failed
        // rows, and the first segment that takes them over what it
        // accepts (any, under `RejectFile`) is not applied.
        planned_under.on_error = ErrorPolicy::SkipInvalid;
        Segments {
            job,
            planned_under,
            rows: 0,
            targets: Vec::new(),
            created: Created::default(),
            deleted: Vec::new(),
            touched: Runs::default(),
            lost_reports: Runs::default(),
            removals: 0,
            directory_size: None,
            summary: Summary::default(),
            notices: Vec::new(),
            kept: Vec::new(),
            handed_over: false,
            began: false,
            size: None,
            ops: 0,
        }
    }

    /// Takes back the rows handed over, if any: the file is to be
    /// imported whole.
    fn restart(&mut self, parts: &mut Parts<'_>) {
        if std::mem::take(&mut self.handed_over)
            && let Some(restart) = parts.on_restart.as_mut()
        {
            restart();
        }
    }

    /// Reads, plans and applies the file a segment at a time; the report,
    /// or why the file must be imported whole.
    fn read<S: UserStore + ?Sized>(
        &mut self,
        source: impl Read + Send,
        (size, name): (Option<u64>, Option<&str>),
        store: &mut S,
        parts: &mut Parts<'_>,
    ) -> Result<Result<Report, &'static str>, Error> {
        let job = self.job;
        self.size = size;
        // (An import that did not happen removes no one.)
        if job.profile.guards.max_delete_share.is_some() && job.aborted.is_none() {
            match store.count(job.tenant) {
                Ok(n) => self.directory_size = Some(n),
                Err(_) => return Ok(Err("the store could not count the directory")),
            }
        }
        let mut survey = Survey {
            size,
            ..Survey::default()
        };
        let mut step: Step = Ok(Ok(()));
        let read = if job.threads > 1 {
            // The file is read and checked a segment ahead, on a thread of
            // its own, while this one plans and applies (the store is
            // called from this thread only).
            let stopped = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let reading = &mut survey;
                let given_up = &stopped;
                let reader = scope.spawn(move || {
                    let read = reading.read(job, source, name, |v| tx.send(v).is_ok());
                    // The rows' checks while the last segments are applied
                    // (none once the segments stopped short).
                    let verdict = match &read {
                        Ok(Ok(_)) if !given_up.load(std::sync::atomic::Ordering::Relaxed) => {
                            reading.file_wide()
                        }
                        _ => None,
                    };
                    (read, verdict)
                });
                for segment in rx.iter() {
                    step = self.segment(segment, store, parts);
                    if !matches!(step, Ok(Ok(()))) {
                        stopped.store(true, std::sync::atomic::Ordering::Relaxed);
                        break;
                    }
                }
                // The reader stops at its next segment.
                drop(rx);
                match reader.join() {
                    Ok(read) => read,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            })
        } else {
            let read = survey.read(job, source, name, |segment| {
                step = self.segment(segment, store, parts);
                matches!(step, Ok(Ok(())))
            });
            let verdict = match (&read, &step) {
                (Ok(Ok(_)), Ok(Ok(()))) => survey.file_wide(),
                _ => None,
            };
            (read, verdict)
        };
        let (read, verdict) = read;
        if let Err(why) = step? {
            return Ok(Err(why));
        }
        let file = match read? {
            Ok(file) => file,
            Err(why) => return Ok(Err(why)),
        };
        if let Some(why) = verdict.or_else(|| self.file_wide(&survey)) {
            return Ok(Err(why));
        }
        Ok(self.report(file))
    }

    /// Plans, applies and reports one segment.
    fn segment<S: UserStore + ?Sized>(
        &mut self,
        Segment { v, named, read }: Segment,
        store: &mut S,
        parts: &mut Parts<'_>,
    ) -> Step {
        let job = self.job;
        // Applied, the segments before changed the directory: a row must not
        // look up what they touched. A dry run's directory is as the whole
        // plan finds it but for the users created before, found by id.
        let mut looked_up: Vec<u64> = named.iter().flatten().flatten().copied().collect();
        looked_up.sort_unstable();
        let touched = match job.plans_dry() {
            true => self.created.meets(&looked_up),
            false => self.touched.meets(&looked_up),
        };
        if touched {
            return Ok(Err(
                "a row names a user an earlier segment created, changed or removed",
            ));
        }
        let base = self.rows;
        self.rows += v.rows.len();
        let mut planner =
            Planner::new(&self.planned_under, job.tenant, job.acting, v).threads(job.threads);
        let total = self.rows as u64;
        let mut outer = parts.on_progress.as_deref_mut();
        // Rows and operations counted over the file, not the segment; the
        // totals estimated from the share of the file read so far.
        let (size, ops_before) = (self.size, self.ops);
        let mut on_progress = |p: &Progress| {
            let mut p = *p;
            p.rows_done += base as u64;
            p.rows_total = over_file(total, read, size).max(p.rows_done);
            if p.phase == Phase::Applying {
                p.ops_done += ops_before;
                p.ops_total = over_file(ops_before + p.ops_total, read, size).max(p.ops_done);
            }
            match outer.as_deref_mut() {
                Some(f) => f(&p),
                None => ControlFlow::Continue(()),
            }
        };
        let answered = if job.aborted.is_some() {
            // An import that did not happen asks nothing. Its rows are
            // counted as planned (a cancel is not asked again).
            let rows = total - base as u64;
            let planned = Progress {
                rows_done: rows,
                rows_total: rows,
                ..Progress::default()
            };
            let _ = on_progress(&planned);
            Ok(())
        } else if job.plans_dry() {
            let mut ahead = Ahead {
                store,
                created: &self.created,
            };
            answer_sync(&mut planner, &mut ahead, &mut on_progress)
        } else {
            answer_sync(&mut planner, store, &mut on_progress)
        };
        match answered {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
            Err(_) => return Ok(Err("the store failed while planning")),
        }
        // The rows with errors (by line, in order), which fail in their
        // segment as in the whole plan: no other row's outcome hangs on
        // theirs across segments (a row whose manager only such a row
        // names fails in its segment too, the manager not being found).
        let erring = planner.error_lines();
        self.targets.extend(planner.target_hashes());
        self.removals += planner.removals();
        let mut plan = match job.aborted {
            // The reason is the file's, said once in its report (and the
            // plan is blocked below, as a rejected file's is).
            Some(why) => {
                let mut plan = planner.abort(why.clone());
                plan.file_issues.clear();
                plan.blocked = false;
                plan
            }
            None => planner.finish(),
        };
        let fails_here = |r: &crate::plan::PlannedRow| {
            r.planned == Planned::Fail && erring.binary_search(&r.line).is_err()
        };
        if plan.blocked || plan.rows.iter().any(fails_here) {
            return Ok(Err("a row cannot be planned in its segment"));
        }
        if !plan.file_issues.is_empty() {
            return Ok(Err("a segment's plan has an issue of the file's"));
        }
        // With this segment's, more rows fail than the error policy
        // accepts: the file is rejected, and nothing of this segment is
        // applied.
        let failed = erring.len() as u64;
        if !job.reports_only() && blocked(job.profile.on_error, false, self.summary.failed + failed)
        {
            return Ok(Err(TOO_MANY_FAIL));
        }
        let mut deletes = deleted_users(&plan);
        if job.plans_dry() {
            if !self.created.note(&plan) {
                return Ok(Err("the new users' ids are too long to keep"));
            }
            self.deleted.append(&mut deletes);
            // The plan of a rejected or aborted file is blocked: its rows
            // that would change something are skipped.
            plan.blocked = job.reports_only();
            let report = crate::report::from_plan(&plan, None, None);
            self.take(report, parts);
            return Ok(Ok(()));
        }
        deletes.sort_unstable();
        if self.lost_reports.meets(&deletes) {
            return Ok(Err(
                "a row deletes a user whose report an earlier segment moved or deleted",
            ));
        }
        self.lost_reports.add(lost_reports(&plan));
        // What the directory holds differently after this segment: the ids
        // and emails the rows that change it name (rows and plan rows are
        // in the same order), and what their operations let go.
        let changed = plan.rows.iter().zip(&named).filter(|(r, _)| {
            matches!(
                r.planned,
                Planned::Create | Planned::Update | Planned::Delete
            )
        });
        let values = changed.flat_map(|(_, n)| n.iter().flatten().copied());
        self.touched.add(values.chain(let_go(&plan)));
        if !self.began && !plan.ops.is_empty() {
            match store.begin() {
                Ok(true) => self.began = true,
                Ok(false) => return Ok(Err("the store has no transactions")),
                // Importing whole meets the same error where it reports it.
                Err(_) => return Ok(Err("the store could not begin a transaction")),
            }
        }
        let mut applier = Applier::new(&plan);
        applier.began(true);
        while let Some(range) = applier.next_batch() {
            if on_progress(&applier.progress()).is_break() {
                return Err(Error::cancelled());
            }
            let result = store
                .apply(job.tenant, applier.ops(range.clone()))
                .map_err(|e| e.to_string());
            applier.record(range, result);
        }
        self.ops += plan.ops.len() as u64;
        if !applier.all_applied() {
            return Ok(Err("an operation did not apply"));
        }
        let report = applier.report(None);
        self.take(report, parts);
        Ok(Ok(()))
    }

    /// Adds a segment's report to the file's.
    fn take(&mut self, report: Report, parts: &mut Parts<'_>) {
        let s = report.summary;
        self.summary.added += s.added;
        self.summary.updated += s.updated;
        self.summary.deleted += s.deleted;
        self.summary.unchanged += s.unchanged;
        self.summary.skipped += s.skipped;
        self.summary.failed += s.failed;
        self.summary.roles_added += s.roles_added;
        self.summary.warnings += s.warnings;
        self.notices.extend(report.notices);
        match parts.on_row.as_deref_mut() {
            Some(on_row) => {
                self.handed_over |= !report.rows.is_empty();
                report.rows.into_iter().for_each(on_row);
            }
            None => self.kept.extend(report.rows),
        }
    }

    /// Why the file-wide checks of what the segments applied may find
    /// something they could not see, if they may: two rows of different
    /// segments about one directory user; in a dry run, a deleted user
    /// who manages a user the file names; a guard on mass removal. (The
    /// checks of the rows alone are [`Survey::file_wide`].)
    fn file_wide(&mut self, survey: &Survey) -> Option<&'static str> {
        if twice(&mut self.targets) {
            return Some("rows of two segments may be about one directory user");
        }
        // (A file with more failed rows than the policy accepts was
        // rejected in the segment where they came to be too many.)
        if self.job.rejected && !blocked(self.job.profile.on_error, false, self.summary.failed) {
            return Some("no more rows fail than the error policy accepts");
        }
        if self.job.plans_dry() {
            // Applied, a delete of a user someone the file names reports
            // to would find those reports in the directory; a dry run's
            // directory does not hold them.
            if survey.names_a_manager_in(&mut self.deleted) {
                return Some("a user the file deletes may manage a user it names");
            }
        }
        let guards = &self.job.profile.guards;
        let size = self
            .directory_size
            .filter(|_| self.removals >= guards.min_removals_for_share);
        match guard_issue(guards, self.removals, size) {
            Some(issue) if issue.severity == Severity::Error => {
                Some("a guard on mass removal trips")
            }
            _ => None,
        }
    }

    /// The report of the whole file, once every segment is applied.
    fn report(&mut self, file: Validation) -> Result<Report, &'static str> {
        let job = self.job;
        let mut issues = file.file_issues;
        let size = self
            .directory_size
            .filter(|_| self.removals >= job.profile.guards.min_removals_for_share);
        issues.extend(guard_issue(&job.profile.guards, self.removals, size));
        issues.extend(job.aborted.cloned());
        sort_issues(&mut issues, &file.columns);
        if job.rejected {
            issues.insert(
                0,
                crate::plan::rejection(job.profile.on_error, self.summary.failed),
            );
        }
        let mut summary = self.summary;
        summary.warnings += issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .count() as u64;
        let mut provenance = Provenance::new(
            &file.input,
            job.profile,
            job.tenant,
            job.acting,
            file.started,
        );
        provenance.finished_at = now();
        Ok(Report {
            tenant: job.tenant.to_owned(),
            input: file.input,
            dry_run: job.dry,
            cancelled: false,
            rejected: job.reports_only(),
            summary,
            issues,
            rows: std::mem::take(&mut self.kept),
            directory: Vec::new(),
            notices: {
                // As the whole plan sorts them: by user id, then file order.
                let mut notices = std::mem::take(&mut self.notices);
                crate::plan::sort_notices(&mut notices);
                notices
            },
            provenance,
            columns: file.columns,
            limits: job.profile.limits,
        })
    }
}

/// What reading the file keeps of every row for the checks of the whole
/// file (a few dozen bytes a row), and the reading itself.
#[derive(Default)]
struct Survey {
    /// Rows read so far.
    rows: usize,
    /// Hashes of each row's user id (all rows), with the row's number.
    ids: Vec<(u64, u32)>,
    /// Hashes of each row's key when the key is not the user id.
    keys: Vec<u64>,
    /// Hashes of the upserts' emails, when the key is not the email.
    emails: Vec<u64>,
    /// Each upsert row with a manager: its number, and the manager's hash.
    managers: Vec<(u32, u64)>,
    /// Role names as the rows spell them.
    spellings: HashSet<String>,
    /// Hashes of the emails of upserts without a user id: a user created
    /// from such a row gets the email as its id, which the whole plan does
    /// not find as a manager named by another row.
    generated: Vec<u64>,
    /// Bytes fed to the reading so far, and the file's size if known: the
    /// vectors above are sized for the whole file once its first segment
    /// shows how many rows a byte holds.
    fed: u64,
    size: Option<u64>,
}

impl Survey {
    /// Reads `source` a segment at a time, handing each segment to `each`
    /// (which says whether to go on) once its rows are remembered. Gives
    /// what is left of the file once its rows are taken (how it was read,
    /// its file issues), or why it is to be imported whole.
    fn read(
        &mut self,
        job: &Job<'_>,
        source: impl Read,
        name: Option<&str>,
        mut each: impl FnMut(Segment) -> bool,
    ) -> Result<Result<Validation, &'static str>, Error> {
        let settings = Settings {
            profile: job.profile,
            threads: job.threads,
        };
        let mut stream = Stream::with_sizes(settings, job.tenant, job.catalog, name, job.sizes);
        let mut stopped = Ok(());
        let read = crate::input::read_parts_while(source, job.profile.limits.file_bytes, |part| {
            // Fed a segment's worth at a time, so no segment is much larger.
            for piece in part.chunks(job.sizes.1.max(1)) {
                self.fed += piece.len() as u64;
                stream.feed(piece);
                stopped = self.hand_over(&mut stream, job, &mut each);
                if stopped.is_err() {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        match read {
            Err(e) if e.is_limit() => return Ok(Err("the file is over the size limit")),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        if let Err(why) = stopped {
            return Ok(Err(why));
        }
        stream.end_body();
        if let Err(why) = self.hand_over(&mut stream, job, &mut each) {
            return Ok(Err(why));
        }
        if stream.in_segments() != Some(true) {
            return Ok(Err("the file cannot be read in segments"));
        }
        let Some(file) = stream.finish_segments() else {
            return Ok(Err("the file cannot be read in segments"));
        };
        // Issues left without a row to take them are the whole file's to
        // place.
        if self.rows == 0 || file.file_error() || !file.row_issues.is_empty() {
            return Ok(Err("the file has no rows, or an error"));
        }
        Ok(Ok(file))
    }

    /// Sizes the vectors for the whole file, from what its first segment
    /// held in the bytes read so far (so that they do not grow by doubling).
    fn reserve(&mut self, max_rows: u64) {
        let Some(size) = self.size else {
            return;
        };
        let scale =
            (size as f64 / self.fed.max(1) as f64).min(max_rows as f64 / self.rows.max(1) as f64);
        let more = |len: usize| ((len as f64 * scale * 1.02) as usize).saturating_sub(len);
        self.ids.reserve_exact(more(self.ids.len()));
        self.keys.reserve_exact(more(self.keys.len()));
        self.emails.reserve_exact(more(self.emails.len()));
        self.managers.reserve_exact(more(self.managers.len()));
    }

    /// Hands the segments the stream has ready to `each`.
    fn hand_over(
        &mut self,
        stream: &mut Stream<'_>,
        job: &Job<'_>,
        each: &mut impl FnMut(Segment) -> bool,
    ) -> Result<(), &'static str> {
        match stream.in_segments() {
            None => return Ok(()),
            Some(false) => return Err("the file cannot be read in segments"),
            Some(true) => {}
        }
        while let Some(segment) = stream.take_segment() {
            let base = self.rows;
            self.rows += segment.rows.len();
            if self.rows as u64 > job.profile.limits.rows || u32::try_from(self.rows).is_err() {
                return Err("the file is over the row limit");
            }
            // Under `RejectFile`, a row with an error that planning keeps
            // rejects the file where it is read (one that planning checks
            // again, the segment's plan says).
            if job.profile.on_error == ErrorPolicy::RejectFile
                && !job.reports_only()
                && segment
                    .row_issues
                    .iter()
                    .any(|i| i.is_error() && !crate::plan::redone(i.code))
            {
                return Err(TOO_MANY_FAIL);
            }
            let named = self.remember(&segment, base, job.profile.key.field());
            if base == 0 {
                self.reserve(job.profile.limits.rows);
            }
            let read = stream.bytes_read();
            if !each(Segment {
                v: segment,
                named,
                read,
            }) {
                return Err("planning stopped");
            }
        }
        Ok(())
    }

    /// Keeps what the file-wide checks need of a segment's rows.
    /// Gives the hashes of each row's user id and email, which look users
    /// up (the segment's planning checks them against what the segments
    /// before changed).
    fn remember(&mut self, v: &Validation, base: usize, key: Field) -> Vec<[Option<u64>; 2]> {
        let mut named = Vec::with_capacity(v.rows.len());
        for (k, row) in v.rows.iter().enumerate() {
            let n = (base + k) as u32;
            let u = &row.user;
            let id = u.value(Field::UserId).map(crate::index::hash);
            let email = u.value(Field::Email).map(crate::index::hash);
            named.push([id, email]);
            if let Some(id) = id {
                self.ids.push((id, n));
            }
            match key {
                Field::UserId => {}
                Field::Email => self.keys.extend(email),
                other => self.keys.extend(u.value(other).map(crate::index::hash)),
            }
            if row.action != Action::Upsert {
                continue;
            }
            if key != Field::Email {
                self.emails.extend(email);
            }
            if let Some(m) = u.value(Field::ReportsTo) {
                self.managers.push((n, crate::index::hash(m)));
            }
            if id.is_none() {
                self.generated.extend(email);
            }
            for role in u.roles() {
                if !self.spellings.contains(role) {
                    self.spellings.insert(role.to_owned());
                }
            }
        }
        named
    }

    /// Why the checks of the whole file's rows may find something the
    /// segments could not see, if they may: two rows with one key, user id
    /// or email; a manager who is a user made from an email; a `reportsTo`
    /// cycle; a role spelled two ways. Hashes that merely collide are taken
    /// for the real thing: the file is then imported whole, which compares
    /// the values. Run where the file was read, once it is read (the last
    /// segments may still be being applied).
    fn file_wide(&mut self) -> Option<&'static str> {
        self.ids.sort_unstable();
        if self.ids.windows(2).any(|w| w[0].0 == w[1].0)
            || twice(&mut self.keys)
            || twice(&mut self.emails)
        {
            return Some("two rows may share a key, a user id or an email");
        }
        let mut generated = std::mem::take(&mut self.generated);
        if self.names_a_manager_in(&mut generated) {
            return Some("a row's manager may be a user made from an email");
        }
        if self.has_cycle() {
            return Some("the rows' managers may form a cycle");
        }
        let mut spelled: Vec<String> = self.spellings.iter().map(|r| normalize(r)).collect();
        if twice_text(&mut spelled) {
            return Some("a role is spelled two ways");
        }
        None
    }

    /// Whether a row names as its manager a user whose hash is in `users`
    /// (sorted here).
    fn names_a_manager_in(&self, users: &mut [u64]) -> bool {
        users.sort_unstable();
        !users.is_empty()
            && self
                .managers
                .iter()
                .any(|(_, m)| users.binary_search(m).is_ok())
    }

    /// Whether following each row to the row of its manager (by hash) can
    /// come back to a row.
    fn has_cycle(&mut self) -> bool {
        const DONE: u32 = u32::MAX;
        // The manager row of each row, if any: the managers sorted as the
        // ids are (sorted and unique), the two walked side by side.
        let mut next = vec![DONE; self.rows];
        self.managers.sort_unstable_by_key(|&(_, m)| m);
        let mut ids = self.ids.iter().peekable();
        for &(row, m) in &self.managers {
            while ids.next_if(|e| e.0 < m).is_some() {}
            if let Some(&&(id, at)) = ids.peek()
                && id == m
            {
                next[row as usize] = at;
            }
        }
        // Each walk marks the rows it passes with its start; meeting its
        // own mark again is a cycle, meeting an older walk's is not.
        let mut mark = vec![DONE; self.rows];
        for start in 0..self.rows {
            let mut at = start;
            while at != DONE as usize && mark[at] == DONE {
                mark[at] = start as u32;
                at = next[at] as usize;
            }
            if at != DONE as usize && mark[at] == start as u32 {
                return true;
            }
        }
        false
    }
}

/// A set of hashes kept as a few sorted runs (8 bytes a hash): each
/// segment's added as a run, runs of like sizes merged.
#[derive(Default)]
struct Runs(Vec<Vec<u64>>);

impl Runs {
    fn add(&mut self, hashes: impl Iterator<Item = u64>) {
        let mut run: Vec<u64> = hashes.collect();
        if run.is_empty() {
            return;
        }
        run.sort_unstable();
        self.0.push(run);
        while let [.., a, b] = self.0.as_slice()
            && a.len() <= 2 * b.len()
        {
            let (Some(b), Some(mut a)) = (self.0.pop(), self.0.pop()) else {
                break;
            };
            // Two sorted runs one after the other: the stable sort merges them.
            a.reserve_exact(b.len());
            a.extend(b);
            a.sort();
            self.0.push(a);
        }
    }

    /// Whether one of `sorted` (sorted) is in the set.
    fn meets(&self, sorted: &[u64]) -> bool {
        self.0.iter().any(|run| meet(run, sorted))
    }
}

/// Whether the sorted `run` and `sorted` share a hash: one walk along the
/// run, galloping from each hash found to the next (the hashes asked for
/// lie spread over it, a few cache lines apart, where a binary search each
/// would read the run all over).
fn meet(run: &[u64], sorted: &[u64]) -> bool {
    let mut at = 0;
    for &h in sorted {
        at += crate::index::gallop(&run[at..], |x| x < h);
        match run.get(at) {
            None => return false,
            Some(&x) if x == h => return true,
            Some(_) => {}
        }
    }
    false
}

/// Hashes of what `plan`'s operations touch beyond the values their rows
/// name: the ids of the users updated and deleted (a row may find its
/// user by email), the emails an update changes or clears, and those of
/// the users deleted.
fn let_go(plan: &crate::plan::Plan) -> impl Iterator<Item = u64> + '_ {
    let ids = plan.ops.iter().filter_map(|op| match op {
        Op::Update { user_id, .. } | Op::Delete { user_id, .. } => Some(user_id.as_str()),
        _ => None,
    });
    let changed = plan.ops.iter().flat_map(|op| match op {
        Op::Update { changes, .. } => changes.as_slice(),
        _ => &[],
    });
    let old = changed
        .filter(|c| c.field == crate::store::Attribute::Field(Field::Email))
        .filter_map(|c| c.old.as_deref());
    let removed = plan.removed.iter().filter_map(|u| u.user.email());
    ids.chain(old).chain(removed).map(crate::index::hash)
}

/// Hashes of the user ids `plan` deletes.
fn deleted_users(plan: &crate::plan::Plan) -> Vec<u64> {
    plan.ops
        .iter()
        .filter_map(|op| match op {
            Op::Delete { user_id, .. } => Some(crate::index::hash(user_id)),
            _ => None,
        })
        .collect()
}

/// Hashes of the managers who lose a report by `plan`'s operations: the
/// old manager of an update that moves or clears `reportsTo`, and the
/// manager of a user it deletes.
fn lost_reports(plan: &crate::plan::Plan) -> impl Iterator<Item = u64> + '_ {
    let moved = plan
        .ops
        .iter()
        .flat_map(|op| match op {
            Op::Update { changes, .. } => changes.as_slice(),
            _ => &[],
        })
        .filter(|c| c.field == crate::store::Attribute::Field(Field::ReportsTo))
        .filter_map(|c| c.old.as_deref());
    let deleted = plan
        .removed
        .iter()
        .filter_map(|u| u.user.value(Field::ReportsTo));
    moved.chain(deleted).map(crate::index::hash)
}

/// The users a dry run's segments create (their normalized ids, exactly),
/// and the roles they create: 16 bytes and the id's text per user.
#[derive(Default)]
struct Created {
    /// Each segment's ids' hashes, sorted, with where each id is in `ids`
    /// (beside them, in the second vector): one sorted run per segment.
    runs: Vec<(Vec<u64>, Vec<u32>)>,
    /// The ids, one after another, each after its length (4 bytes, little
    /// endian).
    ids: Vec<u8>,
    roles: Vec<String>,
}

impl Created {
    /// Notes what `plan` creates; `false` when the ids outgrow the index.
    fn note(&mut self, plan: &crate::plan::Plan) -> bool {
        let mut run: Vec<(u64, u32)> = Vec::new();
        for op in &plan.ops {
            match op {
                Op::Create { user, .. } => {
                    let id = normalize(user.user_id().unwrap_or(""));
                    let (Ok(at), Ok(len)) =
                        (u32::try_from(self.ids.len()), u32::try_from(id.len()))
                    else {
                        return false;
                    };
                    run.push((crate::index::hash(&id), at));
                    self.ids.extend_from_slice(&len.to_le_bytes());
                    self.ids.extend_from_slice(id.as_bytes());
                }
                Op::CreateRole { name } => self.roles.push(name.clone()),
                _ => {}
            }
        }
        if u32::try_from(self.ids.len()).is_err() {
            return false;
        }
        run.sort_unstable();
        self.runs.push(run.into_iter().unzip());
        // Runs of like sizes merged, so that a few runs hold them all.
        while let [.., (a, _), (b, _)] = self.runs.as_slice()
            && a.len() <= 2 * b.len()
        {
            let (Some((hb, ab)), Some((ha, aa))) = (self.runs.pop(), self.runs.pop()) else {
                break;
            };
            let mut merged: Vec<(u64, u32)> = ha
                .into_iter()
                .zip(aa)
                .chain(hb.into_iter().zip(ab))
                .collect();
            // Two sorted runs one after the other: the stable sort merges them.
            merged.sort();
            self.runs.push(merged.into_iter().unzip());
        }
        true
    }

    /// Whether a segment before creates a user whose id has one of these
    /// hashes (sorted).
    fn meets(&self, sorted: &[u64]) -> bool {
        self.runs.iter().any(|(hashes, _)| meet(hashes, sorted))
    }

    /// Whether a segment before creates the user `id` names.
    fn contains(&self, id: &str) -> bool {
        let id = normalize(id);
        let h = crate::index::hash(&id);
        self.runs.iter().any(|(hashes, at)| {
            let from = hashes.partition_point(|&x| x < h);
            hashes[from..]
                .iter()
                .take_while(|&&x| x == h)
                .zip(&at[from..])
                .any(|(_, &at)| self.id_at(at) == Some(id.as_bytes()))
        })
    }

    /// The id kept at `at`.
    fn id_at(&self, at: u32) -> Option<&[u8]> {
        let at = at as usize;
        let len = self.ids.get(at..at + 4)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        self.ids.get(at + 4..at + 4 + len)
    }
}

/// A dry run's directory as the segments before this one would leave it
/// applied: the store's, with the users they create (by id, for the rows
/// that name them as managers) and the roles they create.
struct Ahead<'a, S: ?Sized> {
    store: &'a mut S,
    created: &'a Created,
}

impl<S: UserStore + ?Sized> UserStore for Ahead<'_, S> {
    type Error = S::Error;

    fn catalog(&mut self, tenant: &str) -> Result<Catalog, S::Error> {
        let mut catalog = self.store.catalog(tenant)?;
        if let Some(roles) = &mut catalog.roles {
            roles.extend(self.created.roles.iter().cloned());
        }
        Ok(catalog)
    }

    fn fetch(&mut self, request: &crate::store::Fetch) -> Result<Vec<ExistingUser>, S::Error> {
        let mut users = self.store.fetch(request)?;
        let mut ids: Vec<&String> = request
            .user_ids
            .iter()
            .filter(|id| self.created.contains(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        users.extend(
            ids.into_iter()
                .map(|id| ExistingUser::new(User::builder().set(Field::UserId, id).build(), 0)),
        );
        Ok(users)
    }

    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ExistingUser>, S::Error> {
        self.store.scan(tenant, after, limit)
    }

    fn count(&mut self, tenant: &str) -> Result<u64, S::Error> {
        self.store.count(tenant)
    }

    fn apply(&mut self, tenant: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, S::Error> {
        // A dry run applies nothing.
        let _ = tenant;
        Ok(ops
            .iter()
            .map(|_| OpOutcome::Failed("a dry run applies nothing".into()))
            .collect())
    }
}

/// Whether two of `hashes` are equal (sorted here).
fn twice(hashes: &mut [u64]) -> bool {
    hashes.sort_unstable();
    hashes.windows(2).any(|w| w[0] == w[1])
}

/// Whether two of `texts` are equal (sorted here).
fn twice_text(texts: &mut [String]) -> bool {
    texts.sort_unstable();
    texts.windows(2).any(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::RunOptions;
    use crate::memory::InMemoryStore;

    /// Why `file` is imported whole under `profile`, or `None` when it
    /// goes through in segments.
    fn why(profile: &Profile, file: &str) -> Option<&'static str> {
        why_in(profile, file, &mut InMemoryStore::new())
    }

    /// [`why`], against `store`.
    fn why_in(profile: &Profile, file: &str, store: &mut InMemoryStore) -> Option<&'static str> {
        attempt(profile, file, store, false)
    }

    /// [`why_in`], for the report of a rejected file when `rejected`.
    fn attempt(
        profile: &Profile,
        file: &str,
        store: &mut InMemoryStore,
        rejected: bool,
    ) -> Option<&'static str> {
        let job = Job {
            profile,
            tenant: "t",
            acting: None,
            catalog: None,
            threads: 1,
            sizes: (2048, 300),
            dry: false,
            rejected,
            aborted: None,
        };
        let mut parts = RunOptions::new().into_parts();
        match run(&job, file.as_bytes(), None, None, store, &mut parts) {
            Ok(Ended::Done(_)) => None,
            Ok(Ended::Whole(why)) => Some(why),
            Ok(Ended::Rejected) => Some("rejected"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn what_sends_a_file_to_be_imported_whole() {
        let mut file = String::from("userId,email,roles\n");
        for i in 0..100 {
            file.push_str(&format!("user{i},user{i}@example.com,Staff\n"));
        }
        let mut profile = Profile::default();
        profile.unknown_roles = crate::profile::RolePolicy::Create;
        assert_eq!(why(&profile, &file), None);
        assert_eq!(
            why(&profile, &file[..500]),
            Some("the file cannot be read in segments")
        );
        let bad = format!("{file}x,not-an-email,Staff\n");
        assert_eq!(why(&profile, &bad), Some("rejected"));
        // Read again for the report of a rejected file, it goes through in
        // segments; a file that is not rejected does not.
        let mut store = InMemoryStore::new();
        assert_eq!(attempt(&profile, &bad, &mut store, true), None);
        assert!(store.is_empty("t"), "nothing applied");
        assert_eq!(
            attempt(&profile, &file, &mut store, true),
            Some("no more rows fail than the error policy accepts")
        );
        // A key twice, far apart: the later segment's row names a user an
        // earlier one created (found before the file's duplicates are).
        let twice = format!("{file}user1,other@example.com,Staff\n");
        assert_eq!(
            why(&profile, &twice),
            Some("a row names a user an earlier segment created, changed or removed")
        );
        // Two users of the directory made each other's manager, by rows of
        // different segments.
        let mut store = InMemoryStore::new();
        for id in ["user3", "user90"] {
            let user = crate::record::User::builder()
                .set(Field::UserId, id)
                .set(Field::Email, &format!("{id}@example.com"))
                .set(Field::Roles, "Staff")
                .build();
            store.insert("t", user);
        }
        // The file with a `reportsTo` column, blank on every row.
        let managed = file
            .replacen("userId,email,roles", "userId,email,roles,reportsTo", 1)
            .replace(",Staff\n", ",Staff,\n");
        let cycle = managed
            .replace("user3@example.com,Staff,", "user3@example.com,Staff,user90")
            .replace(
                "user90@example.com,Staff,",
                "user90@example.com,Staff,user3",
            );
        assert_eq!(
            why_in(&profile, &cycle, &mut store),
            Some("the rows' managers may form a cycle")
        );
        assert!(store.get("t", "user0").is_none(), "rolled back");
        // Under a policy that imports the valid rows, a row with an error
        // fails in its segment as in the whole plan.
        profile.on_error = crate::profile::ErrorPolicy::SkipInvalid;
        assert_eq!(why(&profile, &file), None);
        assert_eq!(why(&profile, &bad), None);
        // A row naming as its manager a new user whose row (in another
        // segment) has an error: the whole plan fails it for that row, its
        // segment for a manager it cannot find.
        let managed = managed
            .replace("user3@example.com", "not-an-email")
            .replace(
                "user99@example.com,Staff,",
                "user99@example.com,Staff,user3",
            );
        assert_eq!(
            why(&profile, &managed),
            Some("a row cannot be planned in its segment")
        );
        // The same manager in the directory: found there, in either plan.
        assert_eq!(why_in(&profile, &managed, &mut store), None);
        // More failed rows than the policy accepts reject the file.
        profile.on_error = crate::profile::ErrorPolicy::StopAfter(0);
        assert_eq!(why(&profile, &bad), Some("rejected"));
        assert_eq!(
            attempt(&profile, &bad, &mut InMemoryStore::new(), true),
            None
        );
        profile.on_error = crate::profile::ErrorPolicy::StopAfter(1);
        assert_eq!(why(&profile, &bad), None);
        profile.mode = Mode::Mirror;
        assert_eq!(
            why(&profile, &file),
            Some("mirror mode reads the whole directory against the whole file")
        );
    }
}
