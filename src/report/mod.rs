//! Reports: what happened to every row, and the CSV files the library writes.

pub(crate) mod export;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::input::InputInfo;
use crate::issue::{Issue, Severity};
use crate::plan::{Notice, Plan, Planned};
use crate::store::{Change, Op};
use crate::text::Text;

/// What happened to a row.
///
/// ```
/// assert_eq!(user_import::Outcome::Added.as_str(), "added");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The user was created.
    Added,
    /// The user was updated.
    Updated,
    /// The user was deleted.
    Deleted,
    /// The user already looked like the row; nothing written.
    Unchanged,
    /// Nothing was done with a valid row: the file was rejected, the import
    /// was cancelled or stopped, or there was nothing to do (deleting a user
    /// who is not there).
    Skipped,
    /// The row has an error, or applying it failed.
    Failed,
}

impl Outcome {
    /// The snake_case name.
    ///
    /// ```
    /// assert_eq!(user_import::Outcome::Failed.as_str(), "failed");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Added => "added",
            Outcome::Updated => "updated",
            Outcome::Deleted => "deleted",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// One input row in the report.
///
/// ```
/// use user_import::{Importer, Outcome};
/// use user_import::memory::InMemoryStore;
/// let importer = Importer::new("t");
/// let report = importer.run(b"userId,email\na,a@x.io\n", None, &mut InMemoryStore::new())?;
/// let row = &report.rows[0];
/// assert_eq!((row.line, row.key.as_deref(), row.outcome), (2, Some("a"), Outcome::Added));
/// # Ok::<(), user_import::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RowReport {
    /// The row's line (header = 1).
    pub line: u64,
    /// The row's key as written.
    pub key: Option<Text>,
    /// What happened.
    pub outcome: Outcome,
    /// For updates: the field-level changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// The row's issues.
    pub issues: Vec<Issue>,
}

impl RowReport {
    /// Writes the row's lines of the text report (one per issue, as
    /// [`Report::render_text`] writes them); nothing for a row without
    /// issues.
    ///
    /// # Errors
    ///
    /// The writer's error.
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let r = Importer::new("t").run(b"userId,email\na,a@x.io\nb,bad\n", None, &mut InMemoryStore::new())?;
    /// let mut out = Vec::new();
    /// r.rows[0].write_text(&mut out)?;
    /// assert!(out.is_empty(), "a row without issues writes nothing");
    /// r.rows[1].write_text(&mut out)?;
    /// assert!(String::from_utf8(out).unwrap().starts_with("line 3, email:"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.issues.iter().try_for_each(|i| writeln!(out, "{i}"))
    }

    /// What the error CSV says of the row in its `error` column: its
    /// errors, joined by `; `.
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let r = Importer::new("t").run(b"userId,email\nb,bad\n", None, &mut InMemoryStore::new())?;
    /// assert!(r.rows[0].error_text().starts_with("invalid email address"));
    /// assert!(r.rows[0].error_text().ends_with("[invalid_email]"));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn error_text(&self) -> String {
        let texts: Vec<String> = self
            .issues
            .iter()
            .filter(|i| i.is_error())
            .map(crate::validate::error_text)
            .collect();
        texts.join("; ")
    }
}

/// Where the rows' reports go when they are not kept in [`Report::rows`]:
/// see [`crate::RunOptions::on_row`] and [`Report::dry_run_to`]. Each row
/// comes once, in input order, with its final outcome.
///
/// ```
/// use user_import::{Importer, OnRow, Outcome, RowReport};
/// use user_import::memory::InMemoryStore;
/// let file = b"userId,email\na,a@x.io\nb,bad\n";
/// let report = Importer::new("t").run(file, None, &mut InMemoryStore::new())?;
/// let mut failed = Vec::new();
/// let mut keep_failed: Box<OnRow<'_>> = Box::new(|row: RowReport| {
///     if row.outcome == Outcome::Failed {
///         failed.push(row.line);
///     }
/// });
/// for row in report.rows {
///     keep_failed(row);
/// }
/// drop(keep_failed);
/// assert_eq!(failed, [3]);
/// # Ok::<(), user_import::Error>(())
/// ```
pub type OnRow<'a> = dyn FnMut(RowReport) + Send + 'a;

/// A change to a user the file does not name (mirror mode).
///
/// ```
/// use user_import::{Field, Importer, Mode, Outcome, Profile, User};
/// use user_import::memory::InMemoryStore;
/// let mut store = InMemoryStore::new();
/// store.insert("t", User::builder().set(Field::UserId, "gone").set(Field::Email, "gone@x.io").build());
/// let mut p = Profile::default();
/// p.mode = Mode::Mirror;
/// let report = Importer::with_profile("t", p).run(b"userId,email\na,a@x.io\n", None, &mut store)?;
/// assert_eq!((report.directory[0].user_id.as_str(), report.directory[0].outcome), ("gone", Outcome::Updated));
/// # Ok::<(), user_import::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DirectoryChange {
    /// The user.
    pub user_id: String,
    /// `updated` (disabled) or `deleted`; `failed` or `skipped` when not applied.
    pub outcome: Outcome,
    /// What went wrong, if anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<Issue>,
}

/// The counts of a report. Its `Display` is the one-line summary (added,
/// updated, deleted, roles added), then the other counts:
/// `3 Added, 1 Updated, 0 Deleted, 4 Roles Added, 0 Unchanged, 0 Skipped, 0 Failed, 0 Warnings`.
///
/// ```
/// let s = user_import::Summary::default();
/// assert!(s.to_string().starts_with("0 Added, 0 Updated, 0 Deleted, 0 Roles Added"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Summary {
    /// Users created.
    pub added: u64,
    /// Users updated (including mirror-mode disables).
    pub updated: u64,
    /// Users deleted (including mirror-mode deletes).
    pub deleted: u64,
    /// Rows that changed nothing.
    pub unchanged: u64,
    /// Rows skipped.
    pub skipped: u64,
    /// Rows failed.
    pub failed: u64,
    /// Roles created.
    pub roles_added: u64,
    /// Warnings (file and rows).
    pub warnings: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} Added, {} Updated, {} Deleted, {} Roles Added, {} Unchanged, {} Skipped, {} Failed, {} Warnings",
            self.added,
            self.updated,
            self.deleted,
            self.roles_added,
            self.unchanged,
            self.skipped,
            self.failed,
            self.warnings
        )
    }
}

/// The answer to an import: a summary, file-level issues, one entry per input
/// row in input order (every row exactly once, unless the rows went to
/// [`crate::RunOptions::on_row`] or [`Report::dry_run_to`] instead),
/// mirror-mode changes, and the welcome notices for users actually created.
///
/// ```
/// use user_import::Importer;
/// use user_import::memory::InMemoryStore;
/// let report = Importer::new("t").run(b"userId,email\na,a@x.io\nb,\n", None, &mut InMemoryStore::new())?;
/// // The default policy rejects a file with errors: nothing is written.
/// assert_eq!(report.summary.to_string(), "0 Added, 0 Updated, 0 Deleted, 0 Roles Added, 0 Unchanged, 1 Skipped, 1 Failed, 0 Warnings");
/// # Ok::<(), user_import::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The tenant.
    pub tenant: String,
    /// How the file was read.
    pub input: InputInfo,
    /// `true` for a dry run (nothing was written; outcomes say what would happen).
    pub dry_run: bool,
    /// `true` when the import was cancelled.
    pub cancelled: bool,
    /// `true` when the file was refused as a whole (file-level errors, a
    /// tripped guard, or row errors under the error policy): nothing was
    /// written. The file-level issues say why.
    pub rejected: bool,
    /// The counts.
    pub summary: Summary,
    /// File-level issues.
    pub issues: Vec<Issue>,
    /// One entry per input row, in input order; empty when the rows went
    /// to [`crate::RunOptions::on_row`] or [`Report::dry_run_to`] instead
    /// ([`Report::render_text`] and [`Report::write_error_csv`] then show
    /// the rows put back here, if any).
    pub rows: Vec<RowReport>,
    /// Changes to users the file does not name (mirror mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory: Vec<DirectoryChange>,
    /// Welcome notices for the users created (the caller sends them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// Where the import comes from: the input's hash and size, the profile,
    /// the tenant and acting user, the library's version, the times.
    #[serde(default)]
    pub provenance: crate::plan::Provenance,
    #[serde(skip)]
    pub(crate) columns: Vec<String>,
    #[serde(skip)]
    pub(crate) limits: crate::input::Limits,
}

impl Report {
    /// The report of a dry run of `plan`: what applying it would do
    /// (nothing is written).
    ///
    /// ```
    /// use user_import::{Importer, Report};
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\n", None),
    ///     &mut InMemoryStore::new())?;
    /// assert_eq!(Report::dry_run(&plan).summary.to_string(), "1 Added, 0 Updated, 0 Deleted, 0 Roles Added, 0 Unchanged, 0 Skipped, 0 Failed, 0 Warnings");
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn dry_run(plan: &Plan) -> Report {
        from_plan(plan, None, None)
    }

    /// [`Report::dry_run`], with each row's report handed to `on_row`, in
    /// input order, instead of kept: [`Report::rows`] stays empty, and the
    /// rest of the report (the summary, file-level issues, directory
    /// changes, notices) is as `dry_run` gives it. A caller that writes
    /// the rows as they come, or keeps only some, does not hold a report
    /// row per line of a large file. [`Report::render_text`] and
    /// [`Report::write_error_csv`] show the rows in [`Report::rows`]: put
    /// back the ones they need (those with issues, the failed ones).
    ///
    /// ```
    /// use user_import::{Importer, Outcome, Report, RowReport};
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\nb,bad\n", None),
    ///     &mut InMemoryStore::new())?;
    /// let mut failed = Vec::new();
    /// let mut keep_failed = |row: RowReport| {
    ///     if row.outcome == Outcome::Failed {
    ///         failed.push(row.line);
    ///     }
    /// };
    /// let report = Report::dry_run_to(&plan, &mut keep_failed);
    /// assert!(report.rows.is_empty());
    /// assert_eq!(report.summary.failed, 1);
    /// assert_eq!(failed, [3]);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn dry_run_to(plan: &Plan, on_row: &mut OnRow<'_>) -> Report {
        from_plan(plan, None, Some(on_row))
    }

    /// `true` when every row succeeded (warnings allowed) and nothing was
    /// rejected: what the `import` example maps to exit status 0.
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let r = Importer::new("t").run(b"userId,email\na,a@x.io\n", None, &mut InMemoryStore::new())?;
    /// assert!(r.is_success());
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn is_success(&self) -> bool {
        self.summary.failed == 0
            && !self.cancelled
            && !self.issues.iter().any(Issue::is_error)
            && self.directory.iter().all(|d| d.outcome != Outcome::Failed)
    }

    /// The report as text: the summary line, then one line per issue
    /// (file-level first, then by line), then where the import comes from
    /// (the input, the tenant, the acting user, the library's version, the
    /// times, the settings).
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let r = Importer::new("t").run(b"userId,email\na,bad\n", None, &mut InMemoryStore::new())?;
    /// let text = r.render_text();
    /// let lines: Vec<&str> = text.lines().collect();
    /// assert_eq!(lines[..3], [
    ///     "0 Added, 0 Updated, 0 Deleted, 0 Roles Added, 0 Unchanged, 0 Skipped, 1 Failed, 0 Warnings",
    ///     "the file is rejected, nothing is imported: 1 row has errors and the file is imported all or nothing \
    ///      (fix the rows with errors, or import the valid rows with the skip-invalid policy) [file_rejected]",
    ///     "line 2, email: invalid email address: no @ [invalid_email]",
    /// ]);
    /// assert!(lines[3].starts_with("input: 19 bytes, sha256 "));
    /// assert!(lines[4].starts_with("import: tenant t, user-import "));
    /// assert!(lines[5].starts_with("settings: users are matched by userId; "));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn render_text(&self) -> String {
        let mut out = Vec::new();
        // Writing to a `Vec` does not fail.
        let _ = self.write_text(&mut out);
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Writes the text report ([`Report::render_text`]) to `out` as it
    /// goes.
    ///
    /// # Errors
    ///
    /// The writer's error.
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let r = Importer::new("t").run(b"userId,email\na,a@x.io\nb,bad\n", None, &mut InMemoryStore::new())?;
    /// let mut out = Vec::new();
    /// r.write_text(&mut out)?;
    /// assert_eq!(String::from_utf8(out).unwrap(), r.render_text());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.write_text_around(out, &mut |out| {
            self.rows.iter().try_for_each(|r| r.write_text(&mut *out))
        })
    }

    /// Writes the text report with the lines of its rows read from `rows`,
    /// where [`Report::render_text`] puts them (the report's own `rows` are
    /// left out): for rows handed one by one to an [`OnRow`] callback,
    /// which wrote them (with [`RowReport::write_text`]) to a temporary
    /// file, so that a large import does not hold a report row per line.
    ///
    /// # Errors
    ///
    /// The reader's or the writer's error.
    ///
    /// ```
    /// use user_import::{Importer, RowReport};
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let file = b"userId,email\na,a@x.io\nb,bad\n";
    /// // The rows' lines spooled as the rows come, the report written after.
    /// let (mut lines, mut rows) = (Vec::new(), Vec::new());
    /// let mut spool = |row: RowReport| {
    ///     row.write_text(&mut lines).unwrap();
    ///     rows.push(row);
    /// };
    /// let mut store = InMemoryStore::new();
    /// let plan = importer.plan(importer.validate(file, None), &mut store)?;
    /// let options = user_import::RunOptions::new().on_row(&mut spool);
    /// let report = importer.apply_with(&plan, &mut store, options)?;
    /// assert!(report.rows.is_empty(), "the rows went to the callback");
    /// let mut out = Vec::new();
    /// report.write_text_with_rows(&mut lines.as_slice(), &mut out)?;
    /// // What the report with its rows kept says.
    /// let mut whole = report.clone();
    /// whole.rows = rows;
    /// assert_eq!(String::from_utf8(out).unwrap(), whole.render_text());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_text_with_rows(
        &self,
        rows: &mut dyn std::io::Read,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        self.write_text_around(out, &mut |out| std::io::copy(rows, out).map(|_| ()))
    }

    /// The text report, with `rows` writing the rows' lines in their place.
    fn write_text_around(
        &self,
        out: &mut dyn std::io::Write,
        rows: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if self.dry_run {
            out.write_all(b"Dry run (nothing written): ")?;
        }
        writeln!(out, "{}", self.summary)?;
        if let Some(read) = self.input.describe() {
            writeln!(out, "{read}")?;
        }
        for i in &self.issues {
            writeln!(out, "{i}")?;
        }
        rows(&mut *out)?;
        for d in &self.directory {
            for i in &d.issues {
                writeln!(out, "{}: {i}", crate::issue::printable(&d.user_id))?;
            }
        }
        let mut provenance = String::new();
        self.provenance.render_text(&mut provenance);
        out.write_all(provenance.as_bytes())
    }

    /// The report as pretty-printed JSON.
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let r = Importer::new("t").run(b"userId,email\na,a@x.io\n", None, &mut InMemoryStore::new())?;
    /// assert!(r.to_json().contains("\"added\": 1"));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the report as pretty-printed JSON (what [`Report::to_json`]
    /// gives) to `out` as it is serialized, without building the text in
    /// memory first: for a report of a million rows that text is larger
    /// than the file imported.
    ///
    /// # Errors
    ///
    /// The writer's error.
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let r = Importer::new("t").run(b"userId,email\na,a@x.io\n", None, &mut InMemoryStore::new())?;
    /// let mut out = Vec::new();
    /// r.write_json(&mut out)?;
    /// assert_eq!(String::from_utf8(out).unwrap(), r.to_json());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "json")]
    pub fn write_json(&self, out: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(out, self).map_err(std::io::Error::other)
    }

    /// Writes the failed rows of `source` (the bytes that were imported) as
    /// CSV: original columns plus `line` and `error`, formula-safe.
    ///
    /// # Errors
    ///
    /// [`crate::Error`] when writing fails.
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let file = b"userId,email\na,bad\n";
    /// let r = Importer::new("t").run(file, None, &mut InMemoryStore::new())?;
    /// let mut out = Vec::new();
    /// r.write_error_csv(file, &mut out)?;
    /// assert!(String::from_utf8(out).unwrap().starts_with("userId,email,line,error\na,bad,2,"));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn write_error_csv(
        &self,
        source: &[u8],
        out: impl std::io::Write,
    ) -> Result<(), crate::error::Error> {
        let failed = self
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .map(|r| (r.line, r.error_text()));
        self.write_error_csv_of(source, failed, out)
    }

    /// Writes the error CSV ([`Report::write_error_csv`]) of the failed
    /// rows given as (line, [`RowReport::error_text`]), in any order: for
    /// rows handed to an [`OnRow`] callback, which keeps only that of each
    /// failed row rather than the row's report.
    ///
    /// # Errors
    ///
    /// [`crate::Error`] when writing fails.
    ///
    /// ```
    /// use user_import::{Importer, Outcome, RowReport, RunOptions};
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let file = b"userId,email\na,a@x.io\nb,bad\n";
    /// let mut failed = Vec::new();
    /// let mut keep = |row: RowReport| {
    ///     if row.outcome == Outcome::Failed {
    ///         failed.push((row.line, row.error_text()));
    ///     }
    /// };
    /// let mut store = InMemoryStore::new();
    /// let plan = importer.plan(importer.validate(file, None), &mut store)?;
    /// let report = importer.apply_with(&plan, &mut store, RunOptions::new().on_row(&mut keep))?;
    /// let mut out = Vec::new();
    /// report.write_error_csv_of(file, failed, &mut out)?;
    /// assert!(String::from_utf8(out).unwrap().starts_with("userId,email,line,error\nb,bad,3,"));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn write_error_csv_of(
        &self,
        source: &[u8],
        failed: impl IntoIterator<Item = (u64, String)>,
        out: impl std::io::Write,
    ) -> Result<(), crate::error::Error> {
        // The rows are copied in one pass over `source`: in line order.
        let mut failed: Vec<(u64, String)> = failed.into_iter().collect();
        if !failed.is_sorted_by_key(|f| f.0) {
            failed.sort_by_key(|f| f.0);
        }
        crate::validate::error_csv::write_error_rows(
            source,
            &self.input,
            &self.limits,
            failed.into_iter(),
            out,
        )
    }
}

/// The fate of one op when applying.
///
/// An issue is shared: when a stop, a rollback or a store failure gives
/// every op of a large plan the same issue, they hold one issue between
/// them, not a copy each.
#[derive(Debug, Clone)]
pub(crate) enum OpStatus {
    /// Not applied, and not because of this op (dry run, blocked plan).
    Planned,
    /// Done.
    Applied,
    /// This op failed; the row fails with the issue.
    Failed(Arc<Issue>),
    /// Not applied for a reason outside the op; the row is skipped with the
    /// issue (a warning).
    Skipped(Arc<Issue>),
    /// Nothing needed doing after all (deleting a user already gone).
    Moot(Arc<Issue>),
}

// One per op of a plan, a million for a million-row file.
const _: () = assert!(std::mem::size_of::<OpStatus>() <= 16);

impl OpStatus {
    /// [`OpStatus::Failed`] with `issue`.
    pub(crate) fn failed(issue: Issue) -> OpStatus {
        OpStatus::Failed(Arc::new(issue))
    }

    /// [`OpStatus::Skipped`] with `issue`.
    pub(crate) fn skipped(issue: Issue) -> OpStatus {
        OpStatus::Skipped(Arc::new(issue))
    }

    /// [`OpStatus::Moot`] with `issue`.
    pub(crate) fn moot(issue: Issue) -> OpStatus {
        OpStatus::Moot(Arc::new(issue))
    }
}

/// Builds the report of a plan; `status` holds one entry per op when the
/// plan was applied, `None` for a dry run.
pub(crate) fn from_plan(
    plan: &Plan,
    applied: Option<(&[OpStatus], bool)>,
    mut on_row: Option<&mut OnRow<'_>>,
) -> Report {
    let dry_run = applied.is_none();
    let (status, cancelled) = applied.unwrap_or((&[], false));
    let status_of = |k: usize| status.get(k).cloned().unwrap_or(OpStatus::Planned);
    // The op of each line (the last, should a line have several): the
    // indexes of the ops that have a line, by line, then in plan order
    // within a line (most plans hold them nearly so already), walked beside
    // the rows, which come in line order.
    let line_of = |k: usize| plan.ops[k].line().unwrap_or(0);
    let mut by_line: Vec<usize> = Vec::with_capacity(plan.ops.len());
    by_line.extend((0..plan.ops.len()).filter(|&k| plan.ops[k].line().is_some()));
    if !by_line.is_sorted_by_key(|&k| line_of(k)) {
        by_line.sort_by_key(|&k| line_of(k));
    }
    let mut at = 0;
    let mut op_at = |line: u64| {
        // A row before the last one asked about (a plan stored with its
        // rows out of order) is looked up from the start.
        if at > 0 && line_of(by_line[at - 1]) >= line {
            at = by_line.partition_point(|&k| line_of(k) < line);
        }
        while at < by_line.len() && line_of(by_line[at]) < line {
            at += 1;
        }
        let mut op = None;
        while at < by_line.len() && line_of(by_line[at]) == line {
            op = Some(by_line[at]);
            at += 1;
        }
        op
    };
    let mut summary = Summary::default();
    // Kept only when no `on_row` takes them.
    let mut rows = Vec::with_capacity(if on_row.is_some() { 0 } else { plan.rows.len() });
    let mut row_warnings = 0u64;
    let notice_lines: std::collections::HashSet<u64> =
        plan.notices.iter().map(|n| n.line).collect();
    // The lines of the notices whose user was created (a notice goes out
    // only for a user actually created).
    let mut created_lines = std::collections::HashSet::new();
    for r in &plan.rows {
        let mut issues = plan.row_issues(r.line).to_vec();
        let mut changes = Vec::new();
        let outcome = match r.planned {
            Planned::Fail => Outcome::Failed,
            Planned::Skip => Outcome::Skipped,
            Planned::Unchanged => Outcome::Unchanged,
            _ if plan.blocked => Outcome::Skipped,
            planned => {
                let k = op_at(r.line);
                if let Some(Op::Update { changes: c, .. }) = k.map(|k| &plan.ops[k]) {
                    changes = c.clone();
                }
                let done = match planned {
                    Planned::Create => Outcome::Added,
                    Planned::Update => Outcome::Updated,
                    _ => Outcome::Deleted,
                };
                match k.map(status_of).unwrap_or(OpStatus::Planned) {
                    OpStatus::Planned if dry_run => done,
                    OpStatus::Planned => Outcome::Skipped,
                    OpStatus::Applied => done,
                    OpStatus::Failed(i) => {
                        issues.push(Issue::clone(&i).at(r.line));
                        Outcome::Failed
                    }
                    OpStatus::Skipped(i) | OpStatus::Moot(i) => {
                        issues.push(Issue::clone(&i).at(r.line));
                        Outcome::Skipped
                    }
                }
            }
        };
        if outcome == Outcome::Added && notice_lines.contains(&r.line) {
            created_lines.insert(r.line);
        }
        count(&mut summary, outcome);
        row_warnings += issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .count() as u64;
        let row = RowReport {
            line: r.line,
            key: r.key.clone(),
            outcome,
            changes,
            issues,
        };
        match on_row.as_mut() {
            Some(on_row) => on_row(row),
            None => rows.push(row),
        }
    }
    let mut directory = Vec::new();
    let mut role_issues = Vec::new();
    for (k, op) in plan.ops.iter().enumerate() {
        let ok = !plan.blocked && (dry_run || matches!(status_of(k), OpStatus::Applied));
        match op {
            Op::CreateRole { .. } if ok => summary.roles_added += 1,
            // A role that could not be created is the file's problem: the
            // rows that need it fail (or are skipped) on their own, but the
            // report must say why.
            Op::CreateRole { name } => match status_of(k) {
                OpStatus::Failed(i) => role_issues.push(Issue::error(
                    crate::issue::Code::StoreError,
                    format!(
                        "role {:?} could not be created: {}",
                        crate::issue::printable(name),
                        i.message
                    ),
                )),
                OpStatus::Skipped(i) if !plan.blocked => role_issues.push(Issue::warning(
                    i.code,
                    format!(
                        "role {:?} was not created: {}",
                        crate::issue::printable(name),
                        i.message
                    ),
                )),
                _ => {}
            },
            Op::DeleteRole { name } => match status_of(k) {
                OpStatus::Failed(i) | OpStatus::Skipped(i) | OpStatus::Moot(i) => {
                    role_issues.push(Issue::warning(
                        i.code,
                        format!(
                            "role {:?} was not deleted: {}",
                            crate::issue::printable(name),
                            i.message
                        ),
                    ))
                }
                _ => {}
            },
            // Changes to users the file does not name: mirror mode's, and
            // an undo's of them (a user mirror mode deleted, created again).
            Op::Update { line: None, .. }
            | Op::Delete { line: None, .. }
            | Op::Create { line: None, .. } => {
                let user_id = op.user_id().unwrap_or("").to_owned();
                let (outcome, issues) = match (plan.blocked, dry_run, status_of(k)) {
                    (true, _, _) => (Outcome::Skipped, Vec::new()),
                    (_, true, _) | (_, _, OpStatus::Applied) => (
                        match op {
                            Op::Delete { .. } => Outcome::Deleted,
                            Op::Create { .. } => Outcome::Added,
                            _ => Outcome::Updated,
                        },
                        Vec::new(),
                    ),
                    (_, _, OpStatus::Failed(i)) => (Outcome::Failed, vec![Arc::unwrap_or_clone(i)]),
                    (_, _, OpStatus::Skipped(i) | OpStatus::Moot(i)) => {
                        (Outcome::Skipped, vec![Arc::unwrap_or_clone(i)])
                    }
                    (_, _, OpStatus::Planned) => (Outcome::Skipped, Vec::new()),
                };
                match outcome {
                    Outcome::Deleted => summary.deleted += 1,
                    Outcome::Updated => summary.updated += 1,
                    Outcome::Added => summary.added += 1,
                    _ => {}
                }
                directory.push(DirectoryChange {
                    user_id,
                    outcome,
                    issues,
                });
            }
            _ => {}
        }
    }
    let mut issues = plan.file_issues.clone();
    issues.append(&mut role_issues);
    if cancelled {
        issues.push(Issue::warning(
            crate::issue::Code::Cancelled,
            "the import was cancelled; rows it did not reach were not applied",
        ));
    }
    summary.warnings = row_warnings
        + issues
            .iter()
            .chain(directory.iter().flat_map(|d| &d.issues))
            .filter(|i| i.severity == Severity::Warning)
            .count() as u64;
    let notices = plan
        .notices
        .iter()
        .filter(|n| created_lines.contains(&n.line))
        .cloned()
        .collect();
    Report {
        tenant: plan.tenant.clone(),
        input: plan.input.clone(),
        dry_run,
        cancelled,
        rejected: plan.blocked,
        summary,
        issues,
        rows,
        directory,
        notices,
        provenance: crate::plan::Provenance {
            finished_at: crate::plan::now(),
            ..plan.provenance.clone()
        },
        columns: plan.columns.clone(),
        limits: plan.limits,
    }
}

fn count(s: &mut Summary, o: Outcome) {
    match o {
        Outcome::Added => s.added += 1,
        Outcome::Updated => s.updated += 1,
        Outcome::Deleted => s.deleted += 1,
        Outcome::Unchanged => s.unchanged += 1,
        Outcome::Skipped => s.skipped += 1,
        Outcome::Failed => s.failed += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Importer;
    use crate::memory::InMemoryStore;

    fn plan_of(file: &[u8]) -> Plan {
        let importer = Importer::new("t");
        importer
            .plan(importer.validate(file, None), &mut InMemoryStore::new())
            .unwrap()
    }

    /// Each row's op is found whatever the order of the plan's rows (a
    /// stored plan may hold them in any order): the same outcome and
    /// issues for each line.
    #[test]
    fn each_row_finds_its_op_whatever_the_order_of_the_rows() {
        let mut plan = plan_of(b"userId,email\na,a@x.io\nb,b@x.io\nc,c@x.io\nd,d@x.io\n");
        let mut status = vec![OpStatus::Applied; plan.ops.len()];
        status[1] = OpStatus::failed(Issue::error(crate::issue::Code::Conflict, "taken"));
        let by_line = |r: Report| {
            let mut rows: Vec<(u64, Outcome, Vec<Issue>)> = r
                .rows
                .into_iter()
                .map(|r| (r.line, r.outcome, r.issues))
                .collect();
            rows.sort_by_key(|r| r.0);
            rows
        };
        let in_order = by_line(from_plan(&plan, Some((&status, false)), None));
        assert!(in_order.iter().any(|r| r.1 == Outcome::Failed));
        assert!(in_order.iter().any(|r| r.1 == Outcome::Added));
        plan.rows.reverse();
        assert_eq!(
            by_line(from_plan(&plan, Some((&status, false)), None)),
            in_order
        );
        plan.rows.swap(0, 2);
        assert_eq!(
            by_line(from_plan(&plan, Some((&status, false)), None)),
            in_order
        );
    }

    /// The error CSV of failed rows given as (line, error text), in any
    /// order, is the error CSV of the report's own rows.
    #[test]
    fn the_error_csv_of_given_rows_is_the_reports() {
        let file = b"userId,email\na,bad\nb,b@x.io\nc,also bad\nd,@\n";
        let report = Importer::new("t")
            .run(file, None, &mut InMemoryStore::new())
            .unwrap();
        let mut whole = Vec::new();
        report.write_error_csv(file, &mut whole).unwrap();
        let mut failed: Vec<(u64, String)> = report
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .map(|r| (r.line, r.error_text()))
            .collect();
        assert_eq!(failed.len(), 3);
        failed.reverse();
        let mut given = Vec::new();
        report.write_error_csv_of(file, failed, &mut given).unwrap();
        assert_eq!(
            String::from_utf8(given).unwrap(),
            String::from_utf8(whole).unwrap()
        );
    }
}
