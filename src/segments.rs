//! Importing a file a segment at a time, to the result of importing it
//! whole ([`crate::Importer::run_streaming`]).
//!
//! Under the all-or-nothing policy, with a store that has transactions,
//! the file is read in segments of about 2 MiB inside one transaction:
//! each segment's rows are checked, planned against the directory as the
//! segments before it left it, applied and reported, then let go. What
//! ties rows of different segments together is kept per row as hashes (a
//! few dozen bytes a row, not the rows): the file-wide checks (duplicate
//! keys and emails, `reportsTo` cycles), rows of two segments about one
//! directory user, how a new role is spelled, and the guards on mass
//! removal, which count the whole file's removals.
//!
//! The result is the one planning the whole file gives whenever the import
//! goes through: every row is valid and every operation applies, so every
//! row's outcome is its plan's, and each segment, planned after the
//! segments before it were applied, finds in the directory what the whole
//! plan would have found in the file (a manager created by an earlier
//! row, an email an earlier row let go). Anything else ends the attempt
//! before it commits: a row with an error, a row that cannot be planned
//! in its segment (a manager or an email only a later segment provides),
//! an operation that does not apply, a store error, or a file-wide check
//! that may find something. Then the transaction is rolled back, and the
//! file is imported whole, so that every report and every outcome is the
//! whole plan's, the failures included. That costs a second reading of
//! the file, but only for a file that does not import cleanly.

use std::collections::HashSet;
use std::io::Read;
use std::ops::ControlFlow;

use crate::apply::{Applier, Parts, Progress, answer_sync};
use crate::catalog::Catalog;
use crate::error::{Error, ErrorKind};
use crate::issue::{Severity, sort_issues};
use crate::matching::normalize;
use crate::plan::{Planned, Planner, Provenance, guard_issue, now};
use crate::profile::{ErrorPolicy, Mode, Profile};
use crate::record::Action;
use crate::report::{Report, Summary};
use crate::schema::Field;
use crate::store::UserStore;
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
}

/// How an import in segments ended.
pub(crate) enum Ended {
    /// Applied and committed (boxed: a report is large beside a reason).
    Done(Box<Report>),
    /// Nothing of it is left (it was rolled back, or not begun): the file
    /// is to be imported whole. Why, in words (for the tests).
    Whole(#[cfg_attr(not(test), allow(dead_code))] &'static str),
}

/// Imports the file `source` holds a segment at a time, if it can (see the
/// module's documentation). `parts.on_row` gets the rows as their segments
/// are applied; if the attempt is given up after some were,
/// `parts.on_restart` is called before this returns `Whole`.
pub(crate) fn run<S: UserStore + ?Sized>(
    job: &Job<'_>,
    source: impl Read,
    size: Option<u64>,
    name: Option<&str>,
    store: &mut S,
    parts: &mut Parts<'_>,
) -> Result<Ended, Error> {
    let profile = job.profile;
    let not_now = if profile.on_error != ErrorPolicy::RejectFile {
        Some("only an all-or-nothing import can be taken back whole")
    } else if profile.mode == Mode::Mirror {
        Some("mirror mode reads the whole directory against the whole file")
    } else if parts.undo.is_some() {
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
    match store.begin() {
        Ok(true) => {}
        Ok(false) => return Ok(Ended::Whole("the store has no transactions")),
        // Importing whole meets the same error where it reports it.
        Err(_) => return Ok(Ended::Whole("the store could not begin a transaction")),
    }
    let mut segments = Segments::new(job);
    let ended = match segments.read(source, name, store, parts) {
        Ok(Ok(report)) => match store.commit() {
            Ok(()) => return Ok(Ended::Done(Box::new(report))),
            // Not committed: rolled back below (a store that ended the
            // transaction anyway has nothing to roll back).
            Err(_) => Ok(None),
        },
        Ok(Err(why)) => Ok(Some(why)),
        Err(e) => Err(e),
    };
    let rolled_back = store.rollback();
    if segments.handed_over
        && let Some(restart) = parts.on_restart.as_mut()
    {
        restart();
    }
    match ended? {
        None => Ok(Ended::Whole("the store could not commit")),
        Some(why) => {
            rolled_back.map_err(Error::store)?;
            Ok(Ended::Whole(why))
        }
    }
}

/// What an import in segments keeps from one segment to the next.
struct Segments<'j> {
    job: &'j Job<'j>,
    /// The profile each segment is planned under: the job's, without the
    /// guards on mass removal, which are checked once for the whole file.
    planned_under: Profile,
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
    /// Hashes of the directory users rows are about (updated, unchanged,
    /// deleted).
    targets: Vec<u64>,
    /// Role names as the rows spell them.
    spellings: HashSet<String>,
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
}

/// A segment's end: go on, or give up the attempt (why, in words).
type Step = Result<Result<(), &'static str>, Error>;

impl<'j> Segments<'j> {
    fn new(job: &'j Job<'j>) -> Segments<'j> {
        let mut planned_under = job.profile.clone();
        planned_under.guards.max_deletes = None;
        planned_under.guards.max_delete_share = None;
        Segments {
            job,
            planned_under,
            rows: 0,
            ids: Vec::new(),
            keys: Vec::new(),
            emails: Vec::new(),
            managers: Vec::new(),
            targets: Vec::new(),
            spellings: HashSet::new(),
            removals: 0,
            directory_size: None,
            summary: Summary::default(),
            notices: Vec::new(),
            kept: Vec::new(),
            handed_over: false,
        }
    }

    /// Reads, plans and applies the file a segment at a time; the report,
    /// or why the file must be imported whole.
    fn read<S: UserStore + ?Sized>(
        &mut self,
        source: impl Read,
        name: Option<&str>,
        store: &mut S,
        parts: &mut Parts<'_>,
    ) -> Result<Result<Report, &'static str>, Error> {
        let job = self.job;
        if job.profile.guards.max_delete_share.is_some() {
            match store.count(job.tenant) {
                Ok(n) => self.directory_size = Some(n),
                Err(_) => return Ok(Err("the store could not count the directory")),
            }
        }
        let settings = Settings {
            profile: job.profile,
            threads: job.threads,
        };
        let mut stream = Stream::with_sizes(settings, job.tenant, job.catalog, name, job.sizes);
        let mut stopped: Step = Ok(Ok(()));
        let read = crate::input::read_parts_while(source, job.profile.limits.file_bytes, |part| {
            // Fed a segment's worth at a time, so no segment is much larger.
            for piece in part.chunks(job.sizes.1.max(1)) {
                stream.feed(piece);
                stopped = self.segments(&mut stream, store, parts);
                if !matches!(stopped, Ok(Ok(()))) {
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
        if let Err(why) = stopped? {
            return Ok(Err(why));
        }
        stream.end_body();
        if let Err(why) = self.segments(&mut stream, store, parts)? {
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
        if let Some(why) = self.file_wide() {
            return Ok(Err(why));
        }
        Ok(self.report(file))
    }

    /// Plans and applies the segments the stream has ready.
    fn segments<S: UserStore + ?Sized>(
        &mut self,
        stream: &mut Stream<'_>,
        store: &mut S,
        parts: &mut Parts<'_>,
    ) -> Step {
        match stream.in_segments() {
            None => return Ok(Ok(())),
            Some(false) => return Ok(Err("the file cannot be read in segments")),
            Some(true) => {}
        }
        while let Some(segment) = stream.take_segment() {
            if let Err(why) = self.segment(segment, store, parts)? {
                return Ok(Err(why));
            }
        }
        Ok(Ok(()))
    }

    /// Plans, applies and reports one segment.
    fn segment<S: UserStore + ?Sized>(
        &mut self,
        v: Validation,
        store: &mut S,
        parts: &mut Parts<'_>,
    ) -> Step {
        let job = self.job;
        if v.rows.iter().any(|r| r.error) {
            return Ok(Err("a row has an error"));
        }
        let base = self.rows;
        self.rows += v.rows.len();
        if self.rows as u64 > job.profile.limits.rows || u32::try_from(self.rows).is_err() {
            return Ok(Err("the file is over the row limit"));
        }
        self.remember(&v, base);
        let mut planner =
            Planner::new(&self.planned_under, job.tenant, job.acting, v).threads(job.threads);
        let total = self.rows as u64;
        let mut outer = parts.on_progress.as_deref_mut();
        // Rows counted over the file, not the segment.
        let mut on_progress = |p: &Progress| {
            let mut p = *p;
            p.rows_done += base as u64;
            p.rows_total = total;
            match outer.as_deref_mut() {
                Some(f) => f(&p),
                None => ControlFlow::Continue(()),
            }
        };
        match answer_sync(&mut planner, store, &mut on_progress) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
            Err(_) => return Ok(Err("the store failed while planning")),
        }
        self.targets.extend(planner.target_hashes());
        self.removals += planner.removals();
        let plan = planner.finish();
        if plan.blocked || plan.rows.iter().any(|r| r.planned == Planned::Fail) {
            return Ok(Err("a row cannot be planned in its segment"));
        }
        if !plan.file_issues.is_empty() {
            return Ok(Err("a segment's plan has an issue of the file's"));
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
        if !applier.all_applied() {
            return Ok(Err("an operation did not apply"));
        }
        let report = applier.report(None);
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
        Ok(Ok(()))
    }

    /// Keeps what the file-wide checks need of a segment's rows.
    fn remember(&mut self, v: &Validation, base: usize) {
        let key = self.job.profile.key.field();
        for (k, row) in v.rows.iter().enumerate() {
            let n = (base + k) as u32;
            let u = &row.user;
            if let Some(id) = u.value(Field::UserId) {
                self.ids.push((crate::index::hash(id), n));
            }
            if key != Field::UserId
                && let Some(value) = u.value(key)
            {
                self.keys.push(crate::index::hash(value));
            }
            if row.action != Action::Upsert {
                continue;
            }
            if key != Field::Email
                && let Some(email) = u.value(Field::Email)
            {
                self.emails.push(crate::index::hash(email));
            }
            if let Some(m) = u.value(Field::ReportsTo) {
                self.managers.push((n, crate::index::hash(m)));
            }
            for role in u.roles() {
                if !self.spellings.contains(role) {
                    self.spellings.insert(role.to_owned());
                }
            }
        }
    }

    /// Why the file-wide checks may find something the segments could not
    /// see, if they may: two rows with one key, user id or email; a
    /// `reportsTo` cycle; two rows of different segments about one
    /// directory user; a role spelled two ways; a guard on mass removal.
    /// Hashes that merely collide are taken for the real thing: the file
    /// is then imported whole, which compares the values.
    fn file_wide(&mut self) -> Option<&'static str> {
        self.ids.sort_unstable();
        let twice = |hashes: &mut Vec<u64>| {
            hashes.sort_unstable();
            hashes.windows(2).any(|w| w[0] == w[1])
        };
        if self.ids.windows(2).any(|w| w[0].0 == w[1].0)
            || twice(&mut self.keys)
            || twice(&mut self.emails)
        {
            return Some("two rows may share a key, a user id or an email");
        }
        if twice(&mut self.targets) {
            return Some("rows of two segments may be about one directory user");
        }
        if self.has_cycle() {
            return Some("the rows' managers may form a cycle");
        }
        let mut spelled: Vec<String> = self.spellings.iter().map(|r| normalize(r)).collect();
        if twice_text(&mut spelled) {
            return Some("a role is spelled two ways");
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

    /// Whether following each row to the row of its manager (by hash) can
    /// come back to a row.
    fn has_cycle(&self) -> bool {
        const DONE: u32 = u32::MAX;
        // The manager row of each row, if any (ids are sorted and unique).
        let mut next = vec![DONE; self.rows];
        for &(row, m) in &self.managers {
            if let Ok(at) = self.ids.binary_search_by_key(&m, |e| e.0) {
                next[row as usize] = self.ids[at].1;
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

    /// The report of the whole file, once every segment is applied.
    fn report(&mut self, file: Validation) -> Result<Report, &'static str> {
        let job = self.job;
        let mut issues = file.file_issues;
        let size = self
            .directory_size
            .filter(|_| self.removals >= job.profile.guards.min_removals_for_share);
        issues.extend(guard_issue(&job.profile.guards, self.removals, size));
        sort_issues(&mut issues, &file.columns);
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
            dry_run: false,
            cancelled: false,
            rejected: false,
            summary,
            issues,
            rows: std::mem::take(&mut self.kept),
            directory: Vec::new(),
            notices: std::mem::take(&mut self.notices),
            provenance,
            columns: file.columns,
            limits: job.profile.limits,
        })
    }
}

/// Whether two of `texts` are equal.
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
        let job = Job {
            profile,
            tenant: "t",
            acting: None,
            catalog: None,
            threads: 1,
            sizes: (2048, 300),
        };
        let mut parts = RunOptions::new().into_parts();
        match run(&job, file.as_bytes(), None, None, store, &mut parts) {
            Ok(Ended::Done(_)) => None,
            Ok(Ended::Whole(why)) => Some(why),
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
        assert_eq!(why(&profile, &bad), Some("a row has an error"));
        let twice = format!("{file}user1,other@example.com,Staff\n");
        assert_eq!(
            why(&profile, &twice),
            Some("two rows may share a key, a user id or an email")
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
        let cycle = file
            .replacen("userId,email,roles", "userId,email,roles,reportsTo", 1)
            .replace(",Staff\n", ",Staff,\n")
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
        profile.on_error = ErrorPolicy::SkipInvalid;
        assert_eq!(
            why(&profile, &file),
            Some("only an all-or-nothing import can be taken back whole")
        );
    }
}
