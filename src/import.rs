//! The entry point: an [`Importer`] holds a profile and the import's context
//! (tenant, acting user, catalog) and runs the pipeline steps.

use std::io::{Read, Write};
use std::ops::ControlFlow;

use crate::apply::{self, RunOptions};
use crate::catalog::Catalog;
use crate::error::Error;
use crate::input::read_limited;
use crate::issue::{Code, Issue};
use crate::plan::{Plan, Planner};
use crate::profile::Profile;
use crate::report::Report;
use crate::report::export::Exporter;
use crate::store::{AsyncUserStore, UserStore};
use crate::validate::{self, Validation};

fn no_progress(_: &crate::apply::Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// Runs imports for one tenant with one [`Profile`].
///
/// ```
/// use user_import::Importer;
/// let importer = Importer::new("acme");
/// let v = importer.validate(b"userId,email\njdoe,jdoe@example.com\n", Some("users.csv"));
/// assert!(!v.has_errors());
/// assert_eq!(v.rows()[0].user.email(), Some("jdoe@example.com"));
/// ```
#[derive(Debug, Clone)]
pub struct Importer {
    pub(crate) profile: Profile,
    pub(crate) tenant: String,
    pub(crate) acting_user: Option<String>,
    pub(crate) catalog: Option<Catalog>,
    pub(crate) threads: usize,
    /// Bytes of a file's head and of a segment, for `run_streaming`.
    pub(crate) segment: (usize, usize),
}

impl Importer {
    /// An importer for `tenant` with the default profile.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("acme").tenant(), "acme");
    /// ```
    pub fn new(tenant: impl Into<String>) -> Importer {
        Importer::with_profile(tenant, Profile::default())
    }

    /// An importer for `tenant` with `profile`.
    ///
    /// ```
    /// let mut p = user_import::Profile::default();
    /// p.mode = user_import::Mode::CreateOnly;
    /// let i = user_import::Importer::with_profile("acme", p);
    /// assert_eq!(i.profile().mode, user_import::Mode::CreateOnly);
    /// ```
    pub fn with_profile(tenant: impl Into<String>, profile: Profile) -> Importer {
        Importer {
            profile,
            tenant: tenant.into(),
            acting_user: None,
            catalog: None,
            threads: 1,
            segment: (validate::stream::BLOCK, validate::stream::BLOCK),
        }
    }

    /// A [`Planner`] for `validation` under this importer's profile, tenant
    /// and acting user, to drive by hand (see [`Planner`]).
    ///
    /// ```
    /// let importer = user_import::Importer::new("t");
    /// let planner = importer.planner(importer.validate(b"userId,email\na,a@x.io\n", None));
    /// assert_eq!(planner.progress(), (0, 1));
    /// ```
    pub fn planner(&self, validation: Validation) -> Planner {
        Planner::new(
            &self.profile,
            &self.tenant,
            self.acting_user.as_deref(),
            validation,
        )
        .threads(self.threads)
    }

    /// How many threads the import may use for a large file (default 1:
    /// the library starts no thread unless asked; 2, or the machine's core
    /// count, makes a large file faster). An execution setting, not saved
    /// with the profile. Used for reading and checking a file over 1 MiB in
    /// pieces, from 50,000 rows for the file-wide checks (duplicate keys and
    /// emails, `reportsTo` cycles), and, when a sync store plans more than
    /// one batch (of 64 rows or more), for planning each batch on the other
    /// threads while the next batch's users are fetched (the calling thread
    /// then plans the rest of the batch beside them). The store is only
    /// ever called from the calling thread (it need not be `Send`), and the
    /// result is the same whatever the number (only the order of the
    /// store's calls may differ). The async planner runs on the calling
    /// task. The threads are scoped: they end before the call that started
    /// them returns.
    ///
    /// ```
    /// let importer = user_import::Importer::new("t").threads(2);
    /// let v = importer.validate(b"userId,email\na,a@x.io\n", None);
    /// assert!(!v.has_errors());
    /// ```
    pub fn threads(mut self, threads: usize) -> Importer {
        self.threads = threads.max(1);
        self
    }

    /// The profile.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("t").profile().batch_size, 1000);
    /// ```
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The profile, to change.
    ///
    /// ```
    /// let mut i = user_import::Importer::new("t");
    /// i.profile_mut().batch_size = 10;
    /// assert_eq!(i.profile().batch_size, 10);
    /// ```
    pub fn profile_mut(&mut self) -> &mut Profile {
        &mut self.profile
    }

    /// The current tenant.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("t").tenant(), "t");
    /// ```
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Sets the acting administrator (for the self-lockout guard).
    ///
    /// ```
    /// let i = user_import::Importer::new("t").acting_user("admin");
    /// assert_eq!(i.acting(), Some("admin"));
    /// ```
    pub fn acting_user(mut self, user_id: impl Into<String>) -> Importer {
        self.acting_user = Some(user_id.into());
        self
    }

    /// The acting administrator, if set.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("t").acting(), None);
    /// ```
    pub fn acting(&self) -> Option<&str> {
        self.acting_user.as_deref()
    }

    /// Gives validation a catalog, so that it reports unknown roles and
    /// references without a store. (Planning always uses the store's catalog.)
    ///
    /// ```
    /// use user_import::{Catalog, Code, Importer};
    /// let i = Importer::new("t").catalog(Catalog::new().roles(["Admin", "Tester"]));
    /// let v = i.validate(b"userId,email,roles\na,a@x.io,Testr\n", None);
    /// let issue = v.issues().next().unwrap();
    /// assert_eq!((issue.code, issue.suggestion.as_deref()), (Code::UnknownRole, Some("Tester")));
    /// ```
    pub fn catalog(mut self, catalog: Catalog) -> Importer {
        self.catalog = Some(catalog);
        self
    }

    /// Reads and validates the bytes of a users file. `name` (the file's name,
    /// if known) helps choose the delimiter (`.txt`/`.tsv` → tab).
    ///
    /// Never fails: every problem is an [`Issue`] in the result.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"", None);
    /// assert_eq!(v.file_issues()[0].to_string(), "file is empty [file_empty]");
    /// ```
    pub fn validate(&self, bytes: &[u8], name: Option<&str>) -> Validation {
        self.validate_source(std::borrow::Cow::Borrowed(bytes), name)
    }

    /// How this importer validates.
    fn settings(&self) -> validate::Settings<'_> {
        validate::Settings {
            profile: &self.profile,
            threads: self.threads,
        }
    }

    /// Validates `bytes`, borrowed or handed over (then freed once the rows
    /// are read).
    fn validate_source(&self, bytes: std::borrow::Cow<'_, [u8]>, name: Option<&str>) -> Validation {
        validate::run(
            self.settings(),
            &self.tenant,
            self.catalog.as_ref(),
            bytes,
            name,
        )
    }

    /// Reads a users file from `source` (at most the byte limit, plus one
    /// byte to tell that it is over) and validates it. A source over the limit
    /// gives a `limit_exceeded` issue, not an error. A CSV file is
    /// validated as it is read, its complete records a block of 2 MiB at a
    /// time, so it is never held whole (but for a quote never closed, which
    /// holds the rest of the file as one record, and is refused); a file in
    /// UTF-16 or Windows-1252 is converted to UTF-8 as it comes. A
    /// workbook, a zip, or a file whose first block does not settle how to
    /// read it, is read whole first. The validation is the same either way.
    /// A source with no size given that turns out over the byte limit is
    /// checked as it comes until it passes the limit: it costs no more than
    /// a file at the limits (its rows stop at the row limit). (Keep the
    /// bytes with [`Importer::read_and_validate`] when you write an error
    /// CSV.)
    ///
    /// # Errors
    ///
    /// [`Error`] when reading from `source` fails.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate_reader(&b"userId,email\na,a@x.io\n"[..], None)?;
    /// assert_eq!(v.rows().len(), 1);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn validate_reader(
        &self,
        source: impl Read,
        name: Option<&str>,
    ) -> Result<Validation, Error> {
        self.validate_reader_sized(source, None, name)
    }

    /// [`Importer::validate_reader`] for a source whose size is known
    /// beforehand, as [`Importer::read_and_validate_sized`]: one over the
    /// byte limit is refused before a byte of it is read.
    ///
    /// # Errors
    ///
    /// [`Error`] when reading from `source` fails.
    ///
    /// ```
    /// let file = b"userId,email\na,a@x.io\n";
    /// let v = user_import::Importer::new("t").validate_reader_sized(&file[..], Some(file.len() as u64), None)?;
    /// assert_eq!(v.rows().len(), 1);
    /// assert_eq!(v.input().bytes, file.len() as u64);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn validate_reader_sized(
        &self,
        source: impl Read,
        size: Option<u64>,
        name: Option<&str>,
    ) -> Result<Validation, Error> {
        self.read_sized(source, size, name, false).map(|(_, v)| v)
    }

    /// [`Importer::validate_reader`], also giving back the bytes read (empty
    /// when the source is over the limit), for
    /// [`Validation::write_error_csv`] / [`crate::Report::write_error_csv`].
    ///
    /// # Errors
    ///
    /// [`Error`] when reading from `source` fails.
    ///
    /// ```
    /// let importer = user_import::Importer::new("t");
    /// let (bytes, v) = importer.read_and_validate(&b"userId,email\na,bad\n"[..], None)?;
    /// let mut errors = Vec::new();
    /// v.write_error_csv(&bytes, &mut errors)?;
    /// assert!(!errors.is_empty());
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn read_and_validate(
        &self,
        source: impl Read,
        name: Option<&str>,
    ) -> Result<(Vec<u8>, Validation), Error> {
        self.read_and_validate_sized(source, None, name)
    }

    /// [`Importer::read_and_validate`] for a source whose size is known
    /// beforehand (a file's metadata, an upload's length): one over the
    /// byte limit is refused before a byte of it is read. A size of `None`,
    /// or one that turns out wrong, is still held to the limit as the
    /// source is read.
    ///
    /// # Errors
    ///
    /// [`Error`] when reading from `source` fails.
    ///
    /// ```
    /// use user_import::{Code, Importer, Limits, Profile};
    /// let mut p = Profile::default();
    /// p.limits = Limits::default().max_file_bytes(1000);
    /// let importer = Importer::with_profile("t", p);
    /// // A source that would fail if it were read at all.
    /// struct Unread;
    /// impl std::io::Read for Unread {
    ///     fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
    ///         Err(std::io::Error::other("read"))
    ///     }
    /// }
    /// let (bytes, v) = importer.read_and_validate_sized(Unread, Some(300_000_000), None)?;
    /// assert!(bytes.is_empty());
    /// assert_eq!(v.file_issues()[0].code, Code::LimitExceeded);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn read_and_validate_sized(
        &self,
        source: impl Read,
        size: Option<u64>,
        name: Option<&str>,
    ) -> Result<(Vec<u8>, Validation), Error> {
        self.read_sized(source, size, name, true)
    }

    /// Reads and validates `source`, giving the bytes back when `keep` (or
    /// else freeing them once the rows are read).
    fn read_sized(
        &self,
        source: impl Read,
        size: Option<u64>,
        name: Option<&str>,
        keep: bool,
    ) -> Result<(Vec<u8>, Validation), Error> {
        let limit = self.profile.limits.file_bytes;
        let over = |message: String| {
            let mut v = self.validate(b"", name);
            v.file_issues = vec![Issue::error(Code::LimitExceeded, message)];
            (Vec::new(), v)
        };
        if let Some(size) = size.filter(|&s| s > limit) {
            return Ok(over(format!(
                "the file is {size} bytes, more than the limit of {limit} bytes"
            )));
        }
        let read = if keep {
            read_limited(source, limit).map(|bytes| {
                let v = self.validate(&bytes, name);
                (bytes, v)
            })
        } else {
            // Validated as it is read, a block at a time: the file is not
            // held whole.
            let mut stream =
                validate::Stream::new(self.settings(), &self.tenant, self.catalog.as_ref(), name);
            crate::input::read_parts(source, limit, |part| stream.feed(part))
                .map(|()| (Vec::new(), stream.finish()))
        };
        match read {
            Err(e) if e.is_limit() => Ok(over(e.to_string())),
            read => read,
        }
    }

    /// Whether validating `file` fed in parts of `part` bytes, read in
    /// blocks of `block` bytes after a head of `head`, gives what validating
    /// it whole gives: the check of reading in blocks that the fuzz targets
    /// run (with small sizes, so that small inputs are read in blocks).
    #[cfg(feature = "arbitrary")]
    #[doc(hidden)]
    pub fn check_blocks(
        &self,
        file: &[u8],
        name: Option<&str>,
        (head, block, part): (usize, usize, usize),
    ) -> Result<(), String> {
        let (whole, streamed, _) = validate::stream::whole_and_in_blocks(
            self.settings(),
            &self.tenant,
            self.catalog.as_ref(),
            (file, name),
            &[part],
            (head, block),
        );
        if whole == streamed {
            Ok(())
        } else {
            Err(format!("whole: {whole:?}\nin blocks: {streamed:?}"))
        }
    }

    /// Plans `validation` against the directory behind `store`: fetches the
    /// catalog and the users the rows name, in batches of
    /// `profile.batch_size` (one `fetch` per batch, never one per row), and
    /// returns the [`Plan`]. Writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error`] when the store fails.
    ///
    /// ```
    /// use user_import::{Field, Importer, Planned, User};
    /// use user_import::memory::InMemoryStore;
    /// let mut store = InMemoryStore::new();
    /// store.insert("acme", User::builder().set(Field::UserId, "jdoe")
    ///     .set(Field::Email, "jdoe@example.com").set(Field::LastName, "Doe").build());
    /// let importer = Importer::new("acme");
    /// let v = importer.validate(b"userId,email,lastName\njdoe,jdoe@example.com,Smith\n", None);
    /// let plan = importer.plan(v, &mut store)?;
    /// assert_eq!(plan.rows()[0].planned, Planned::Update);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn plan<S: UserStore + ?Sized>(
        &self,
        validation: Validation,
        store: &mut S,
    ) -> Result<Plan, Error> {
        self.plan_with(validation, store, RunOptions::new())
    }

    /// [`Importer::plan`] run as `options` say: a progress callback, called
    /// before each batch; returning `Break` cancels (an [`Error`] of kind
    /// `Cancelled`).
    ///
    /// # Errors
    ///
    /// [`Error`] when the store fails or the callback cancels.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// let importer = user_import::Importer::new("t");
    /// let v = importer.validate(b"userId,email\na,a@x.io\n", None);
    /// let err = importer
    ///     .plan_with(v, &mut user_import::memory::InMemoryStore::new(),
    ///         user_import::RunOptions::new().on_progress(&mut |_| ControlFlow::Break(())))
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), user_import::ErrorKind::Cancelled);
    /// ```
    pub fn plan_with<S: UserStore + ?Sized>(
        &self,
        validation: Validation,
        store: &mut S,
        options: RunOptions<'_>,
    ) -> Result<Plan, Error> {
        match options.into_parts().on_progress {
            Some(on_progress) => apply::plan_sync(self.planner(validation), store, on_progress),
            None => apply::plan_sync(self.planner(validation), store, &mut no_progress),
        }
    }

    /// [`Importer::plan`] with an [`AsyncUserStore`].
    ///
    /// # Errors
    ///
    /// [`Error`] when the store fails.
    ///
    /// ```
    /// # async fn run() -> Result<(), user_import::Error> {
    /// let importer = user_import::Importer::new("t");
    /// let v = importer.validate(b"userId,email\na,a@x.io\n", None);
    /// let plan = importer.plan_async(v, &mut user_import::memory::InMemoryStore::new()).await?;
    /// assert_eq!(plan.ops().len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn plan_async<S: AsyncUserStore + ?Sized>(
        &self,
        validation: Validation,
        store: &mut S,
    ) -> Result<Plan, Error> {
        apply::plan_async(self.planner(validation), store, &mut no_progress).await
    }

    /// [`Importer::plan_with`] with an [`AsyncUserStore`].
    ///
    /// # Errors
    ///
    /// [`Error`] when the store fails or the callback cancels.
    ///
    /// ```
    /// # async fn run() -> Result<(), user_import::Error> {
    /// let importer = user_import::Importer::new("t");
    /// let v = importer.validate(b"userId,email\na,a@x.io\n", None);
    /// let mut seen = 0;
    /// let mut count = |_: &user_import::Progress| {
    ///     seen += 1;
    ///     std::ops::ControlFlow::Continue(())
    /// };
    /// let plan = importer
    ///     .plan_async_with(v, &mut user_import::memory::InMemoryStore::new(),
    ///         user_import::RunOptions::new().on_progress(&mut count))
    ///     .await?;
    /// assert_eq!((plan.ops().len(), seen), (1, 1));
    /// # Ok(()) }
    /// ```
    pub async fn plan_async_with<S: AsyncUserStore + ?Sized>(
        &self,
        validation: Validation,
        store: &mut S,
        options: RunOptions<'_>,
    ) -> Result<Plan, Error> {
        match options.into_parts().on_progress {
            Some(on_progress) => {
                apply::plan_async(self.planner(validation), store, on_progress).await
            }
            None => apply::plan_async(self.planner(validation), store, &mut no_progress).await,
        }
    }

    /// Applies a plan through `store`, in batches, under the plan's error
    /// policy: a blocked plan writes nothing; the all-or-nothing policy runs
    /// in one transaction when the store has them (rolled back on any
    /// failure); otherwise the report says exactly which rows were applied.
    ///
    /// # Errors
    ///
    /// None from the store: a store that fails to begin, commit or roll back
    /// the transaction, like a batch that fails, is reported on the rows it
    /// leaves unapplied (`store_error`), so every apply gives its report.
    /// The `Result` is kept for errors a later version may have.
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let mut store = InMemoryStore::new();
    /// let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\n", None), &mut store)?;
    /// let report = importer.apply(&plan, &mut store)?;
    /// assert_eq!(report.summary.added, 1);
    /// assert_eq!(store.len("t"), 1);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn apply<S: UserStore + ?Sized>(
        &self,
        plan: &Plan,
        store: &mut S,
    ) -> Result<Report, Error> {
        apply::apply_sync(plan, store, &mut no_progress, None, None)
    }

    /// [`Importer::apply`] run as `options` say: a progress callback, called
    /// before each batch; returning `Break` cancels between batches (rolled
    /// back under the all-or-nothing policy; otherwise the report says what
    /// was done).
    ///
    /// # Errors
    ///
    /// As [`Importer::apply`].
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let mut store = InMemoryStore::new();
    /// let plan = importer.plan(importer.validate(b"userId,email\na,a@x.io\n", None), &mut store)?;
    /// let mut cancel = |_: &user_import::Progress| ControlFlow::Break(());
    /// let report = importer.apply_with(&plan, &mut store, user_import::RunOptions::new().on_progress(&mut cancel))?;
    /// assert!(report.cancelled);
    /// assert!(store.is_empty("t"));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn apply_with<S: UserStore + ?Sized>(
        &self,
        plan: &Plan,
        store: &mut S,
        options: RunOptions<'_>,
    ) -> Result<Report, Error> {
        let p = options.into_parts();
        match p.on_progress {
            Some(on_progress) => apply::apply_sync(plan, store, on_progress, p.undo, p.on_row),
            None => apply::apply_sync(plan, store, &mut no_progress, p.undo, p.on_row),
        }
    }

    /// [`Importer::apply`] with an [`AsyncUserStore`].
    ///
    /// # Errors
    ///
    /// As [`Importer::apply`].
    ///
    /// ```
    /// # async fn run() -> Result<(), user_import::Error> {
    /// let importer = user_import::Importer::new("t");
    /// let mut store = user_import::memory::InMemoryStore::new();
    /// let plan = importer.plan_async(importer.validate(b"userId,email\na,a@x.io\n", None), &mut store).await?;
    /// let report = importer.apply_async(&plan, &mut store).await?;
    /// assert_eq!(report.summary.added, 1);
    /// # Ok(()) }
    /// ```
    pub async fn apply_async<S: AsyncUserStore + ?Sized>(
        &self,
        plan: &Plan,
        store: &mut S,
    ) -> Result<Report, Error> {
        apply::apply_async(plan, store, &mut no_progress, None, None).await
    }

    /// [`Importer::apply_with`] with an [`AsyncUserStore`].
    ///
    /// # Errors
    ///
    /// As [`Importer::apply`].
    ///
    /// ```
    /// # async fn run() -> Result<(), user_import::Error> {
    /// let importer = user_import::Importer::new("t");
    /// let mut store = user_import::memory::InMemoryStore::new();
    /// let plan = importer.plan_async(importer.validate(b"userId,email\na,a@x.io\n", None), &mut store).await?;
    /// let report = importer
    ///     .apply_async_with(&plan, &mut store,
    ///         user_import::RunOptions::new().on_progress(&mut |_| std::ops::ControlFlow::Break(())))
    ///     .await?;
    /// assert!(report.cancelled);
    /// # Ok(()) }
    /// ```
    pub async fn apply_async_with<S: AsyncUserStore + ?Sized>(
        &self,
        plan: &Plan,
        store: &mut S,
        options: RunOptions<'_>,
    ) -> Result<Report, Error> {
        let p = options.into_parts();
        match p.on_progress {
            Some(on_progress) => {
                apply::apply_async(plan, store, on_progress, p.undo, p.on_row).await
            }
            None => apply::apply_async(plan, store, &mut no_progress, p.undo, p.on_row).await,
        }
    }

    /// Validates, plans and applies in one call.
    ///
    /// # Errors
    ///
    /// As [`Importer::plan`] and [`Importer::apply`].
    ///
    /// ```
    /// use user_import::Importer;
    /// use user_import::memory::InMemoryStore;
    /// let mut store = InMemoryStore::new();
    /// let report = Importer::new("t").run(b"userId,email\na,a@x.io\n", Some("users.csv"), &mut store)?;
    /// assert_eq!(report.summary.to_string(), "1 Added, 0 Updated, 0 Deleted, 0 Roles Added, 0 Unchanged, 0 Skipped, 0 Failed, 0 Warnings");
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn run<S: UserStore + ?Sized>(
        &self,
        bytes: &[u8],
        name: Option<&str>,
        store: &mut S,
    ) -> Result<Report, Error> {
        let plan = self.plan(self.validate(bytes, name), store)?;
        self.apply(&plan, store)
    }

    /// Validates, plans and applies the file `open` reads, a segment of
    /// about 2 MiB at a time where that gives the result of
    /// [`Importer::run`] (so that a large file is never held whole, nor
    /// its plan); `open` is called again to read the file whole where it
    /// does not. `size` (a file's metadata) lets a file over the byte limit
    /// be refused before it is read.
    ///
    /// Segments are used outside mirror mode, without an undo, with a store
    /// whose `begin` starts a transaction, and for a file read in blocks
    /// (delimited text of 1 KiB or more, not a workbook or a zip): all
    /// segments are applied inside one transaction, each planned against
    /// the directory as the segments before it left it (with threads, the
    /// next segment is read and checked meanwhile on another thread). A
    /// row with an error fails in its segment, as in the whole plan, under
    /// an error policy that imports the valid rows (`SkipInvalid`, and
    /// `StopAfter` while the file's failed rows stay within it). When the
    /// rows' errors reject the file (a row with an error under
    /// `RejectFile`, more failed rows than `StopAfter` accepts), the
    /// transaction is rolled back where that shows, and the file is read
    /// again in segments, planned as [`Importer::dry_run_streaming`] plans
    /// it and applied nowhere, for the report of a rejected file. When a
    /// row fails for any other reason (its manager is created further down
    /// the file, say), a row looks a user up by an id or email an earlier
    /// segment created, changed or removed, an operation does not apply,
    /// the store fails, or a check of the whole file
    /// (duplicates, cycles, two segments' rows about one user, a role
    /// spelled two ways, a guard on mass removal) may find something, the
    /// transaction is rolled back before it commits and the file is read
    /// again and imported whole (a commit that fails is an error instead).
    /// Either way the report and the directory are `run`'s, under every
    /// error policy.
    /// An import that goes through costs one reading of the file; one
    /// given up on after it began, two (three when the reading for a
    /// rejected file's report cannot decide either, and the file is then
    /// read whole). The transaction begins before the first operation (an
    /// import that writes nothing begins none), and holds the store's
    /// write lock (in SQLite) from there to the commit.
    ///
    /// With [`RunOptions::on_row`], the rows are handed over as their
    /// segment is applied, which is before the commit: give
    /// [`RunOptions::on_restart`] too, which is called when the rows handed
    /// over so far no longer count (they are handed over again); without
    /// it, the file is imported whole. The progress callback is called as
    /// for `run`, a segment's planning and applying in turn, with rows and
    /// operations counted over the whole file: with `size` given, its
    /// totals are estimated from the share of the file read so far (exact
    /// once it is read; without it, what is read so far); a cancel rolls
    /// back and returns an error of kind `Cancelled`.
    ///
    /// # Errors
    ///
    /// [`Error`] when `open` or reading the file fails (kind `Io`), when the
    /// store fails to commit the segments or to roll them back (kind
    /// `Store`: whether a commit that failed wrote anything is the store's
    /// to say), or as [`Importer::plan`] and [`Importer::apply`].
    ///
    /// ```
    /// use user_import::{Importer, RunOptions};
    /// use user_import::memory::InMemoryStore;
    /// let file = b"userId,email,reportsTo\nboss,boss@x.io,\nann,ann@x.io,boss\n";
    /// let mut store = InMemoryStore::new();
    /// let report = Importer::new("t").run_streaming(|| Ok(&file[..]), None, Some("users.csv"),
    ///     &mut store, RunOptions::new())?;
    /// assert_eq!(report.summary.added, 2);
    /// assert_eq!(store.len("t"), 2);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn run_streaming<S: UserStore + ?Sized, R: Read + Send>(
        &self,
        open: impl FnMut() -> std::io::Result<R>,
        size: Option<u64>,
        name: Option<&str>,
        store: &mut S,
        options: RunOptions<'_>,
    ) -> Result<Report, Error> {
        self.streaming(open, (size, name), store, options, false)
    }

    /// The dry run of the file `open` reads: the report
    /// [`Report::dry_run`] gives of [`Importer::plan`]'s plan of it,
    /// planned a segment at a time where that gives the same report, as
    /// [`Importer::run_streaming`] imports it (the same files are planned
    /// whole: a row that fails for other than its own errors, and so on;
    /// a file its rows' errors reject is read again in segments), each
    /// segment planned against the directory as the segments before it would
    /// leave it (the users and roles they create are taken as there).
    /// Writes nothing; its undo option is ignored.
    ///
    /// # Errors
    ///
    /// [`Error`] when `open` or reading the file fails, or as
    /// [`Importer::plan`].
    ///
    /// ```
    /// use user_import::{Importer, RunOptions};
    /// use user_import::memory::InMemoryStore;
    /// let file = b"userId,email,reportsTo\nboss,boss@x.io,\nann,ann@x.io,boss\n";
    /// let mut store = InMemoryStore::new();
    /// let report = Importer::new("t").dry_run_streaming(|| Ok(&file[..]), None, None,
    ///     &mut store, RunOptions::new())?;
    /// assert_eq!((report.dry_run, report.summary.added), (true, 2));
    /// assert!(store.is_empty("t"));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn dry_run_streaming<S: UserStore + ?Sized, R: Read + Send>(
        &self,
        open: impl FnMut() -> std::io::Result<R>,
        size: Option<u64>,
        name: Option<&str>,
        store: &mut S,
        options: RunOptions<'_>,
    ) -> Result<Report, Error> {
        self.streaming(open, (size, name), store, options, true)
    }

    /// The report of an import of the file `open` reads that did not
    /// happen, `why` saying why (an error: a store that failed, a cancel):
    /// every row is accounted for, the rows with errors failed and the
    /// others skipped, and nothing is asked of a store or applied. It is
    /// the report of applying [`Planner::abort`]'s plan of the whole file,
    /// made a segment at a time where that gives the same report, as
    /// [`Importer::run_streaming`] reads (the rows go to `on_row` as they
    /// are known; a file whose file-wide checks may find something is read
    /// again whole, after `on_restart`, and so is one for a reason that is
    /// not an error). For the report of an import in segments that failed
    /// or was cancelled, without holding the file.
    ///
    /// # Errors
    ///
    /// [`Error`] when `open` or reading the file fails.
    ///
    /// ```
    /// use user_import::{Code, Importer, Issue, RunOptions};
    /// let file = b"userId,email\na,a@x.io\nb,not-an-email\n";
    /// let why = Issue::error(Code::Cancelled, "nothing is imported: cancelled");
    /// let report = Importer::new("t").abort_streaming(|| Ok(&file[..]), None, None, why,
    ///     RunOptions::new())?;
    /// assert_eq!((report.summary.skipped, report.summary.failed), (1, 1));
    /// assert!(report.issues.iter().any(|i| i.code == Code::Cancelled));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn abort_streaming<R: Read + Send>(
        &self,
        mut open: impl FnMut() -> std::io::Result<R>,
        size: Option<u64>,
        name: Option<&str>,
        why: Issue,
        options: RunOptions<'_>,
    ) -> Result<Report, Error> {
        let mut parts = options.into_parts();
        // An import that did not happen asks nothing of a store: this one
        // is empty, and never asked.
        let mut none = crate::memory::InMemoryStore::new();
        // (A reason that is not an error leaves the file's rows to say
        // whether it is rejected: the whole plan says it.)
        if why.is_error() {
            let job = self.job(false, Some(&why));
            let source = open().map_err(Error::io)?;
            if let crate::segments::Ended::Done(report) =
                crate::segments::run(&job, source, size, name, &mut none, &mut parts)?
            {
                return Ok(*report);
            }
        }
        let source = open().map_err(Error::io)?;
        let validation = self.validate_reader_sized(source, size, name)?;
        let plan = self.planner(validation).abort(why);
        let on_progress: &mut apply::OnProgress<'_> = match parts.on_progress {
            Some(f) => f,
            None => &mut no_progress,
        };
        apply::apply_sync(&plan, &mut none, on_progress, None, parts.on_row)
    }

    /// What an import in segments needs of this importer: a dry run or
    /// not, and why the import did not happen, if it did not.
    fn job<'a>(&'a self, dry: bool, aborted: Option<&'a Issue>) -> crate::segments::Job<'a> {
        crate::segments::Job {
            profile: &self.profile,
            tenant: &self.tenant,
            acting: self.acting_user.as_deref(),
            catalog: self.catalog.as_ref(),
            threads: self.threads,
            sizes: self.segment,
            dry,
            rejected: false,
            aborted,
        }
    }

    /// [`Importer::run_streaming`], or with `dry`
    /// [`Importer::dry_run_streaming`].
    fn streaming<S: UserStore + ?Sized, R: Read + Send>(
        &self,
        mut open: impl FnMut() -> std::io::Result<R>,
        (size, name): (Option<u64>, Option<&str>),
        store: &mut S,
        options: RunOptions<'_>,
        dry: bool,
    ) -> Result<Report, Error> {
        let mut parts = options.into_parts();
        let mut job = self.job(dry, None);
        use crate::segments::Ended;
        let source = open().map_err(Error::io)?;
        match crate::segments::run(&job, source, size, name, store, &mut parts)? {
            Ended::Done(report) => return Ok(*report),
            // Rejected, the file is read again for its report, planned in
            // segments and applied nowhere.
            Ended::Rejected => {
                job.rejected = true;
                let source = open().map_err(Error::io)?;
                if let Ended::Done(report) =
                    crate::segments::run(&job, source, size, name, store, &mut parts)?
                {
                    return Ok(*report);
                }
            }
            Ended::Whole(_) => {}
        }
        let source = open().map_err(Error::io)?;
        let validation = self.validate_reader_sized(source, size, name)?;
        let on_progress: &mut apply::OnProgress<'_> = match parts.on_progress {
            Some(f) => f,
            None => &mut no_progress,
        };
        let plan = apply::plan_sync(self.planner(validation), store, on_progress)?;
        if dry {
            return Ok(match parts.on_row {
                Some(on_row) => Report::dry_run_to(&plan, on_row),
                None => Report::dry_run(&plan),
            });
        }
        apply::apply_sync(&plan, store, on_progress, parts.undo, parts.on_row)
    }

    /// The bytes of a segment [`Importer::run_streaming`] reads: tests
    /// read files in tiny ones. The head read before the first segment
    /// stays 2 KiB at least (a head shorter than 1 KiB cannot settle how a
    /// file is read, and the file is then read whole).
    #[doc(hidden)]
    pub fn segment_bytes(mut self, bytes: usize) -> Importer {
        self.segment = (bytes.max(2048), bytes.max(1));
        self
    }

    /// [`Importer::run`] with an [`AsyncUserStore`].
    ///
    /// # Errors
    ///
    /// As [`Importer::run`].
    ///
    /// ```
    /// # async fn run() -> Result<(), user_import::Error> {
    /// let mut store = user_import::memory::InMemoryStore::new();
    /// let report = user_import::Importer::new("t").run_async(b"userId,email\na,a@x.io\n", None, &mut store).await?;
    /// assert_eq!(report.summary.added, 1);
    /// # Ok(()) }
    /// ```
    pub async fn run_async<S: AsyncUserStore + ?Sized>(
        &self,
        bytes: &[u8],
        name: Option<&str>,
        store: &mut S,
    ) -> Result<Report, Error> {
        let plan = self.plan_async(self.validate(bytes, name), store).await?;
        self.apply_async(&plan, store).await
    }

    /// Writes every user of the tenant as a users file in the canonical
    /// format (every standard column, then the profile's
    /// custom attributes; roles `|`-joined; formula-safe). Importing that file
    /// again plans nothing. Returns the number of users written.
    ///
    /// # Errors
    ///
    /// [`Error`] when the store or the writer fails.
    ///
    /// ```
    /// use user_import::{Importer, Outcome};
    /// use user_import::memory::InMemoryStore;
    /// let importer = Importer::new("t");
    /// let mut store = InMemoryStore::new();
    /// importer.run(b"userId,email,roles\na,a@x.io,Admin\n", None, &mut store)?;
    /// # let mut store = store; let _ = &mut store;
    /// let mut file = Vec::new();
    /// assert_eq!(importer.export(&mut store, &mut file)?, 0 + store.len("t") as u64);
    /// let again = importer.run(&file, None, &mut store)?;
    /// assert!(again.rows.iter().all(|r| r.outcome == Outcome::Unchanged));
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn export<S: UserStore + ?Sized>(
        &self,
        store: &mut S,
        out: impl Write,
    ) -> Result<u64, Error> {
        let mut e = Exporter::new(out, &self.tenant, &self.profile.custom)?;
        let limit = self.profile.batch_size.max(1);
        let mut after: Option<String> = None;
        loop {
            let page = store
                .scan(&self.tenant, after.as_deref(), limit)
                .map_err(Error::store)?;
            for u in &page {
                e.user(u)?;
            }
            match page.last() {
                Some(last) if page.len() >= limit => {
                    after = Some(crate::matching::normalize(last.user_id()))
                }
                _ => break,
            }
        }
        e.finish()
    }

    /// [`Importer::export`] with an [`AsyncUserStore`].
    ///
    /// # Errors
    ///
    /// As [`Importer::export`].
    ///
    /// ```
    /// # async fn run() -> Result<(), user_import::Error> {
    /// let mut out = Vec::new();
    /// let n = user_import::Importer::new("t").export_async(&mut user_import::memory::InMemoryStore::new(), &mut out).await?;
    /// assert_eq!(n, 0);
    /// assert!(out.starts_with(b"userId,tenant,"));
    /// # Ok(()) }
    /// ```
    pub async fn export_async<S: AsyncUserStore + ?Sized>(
        &self,
        store: &mut S,
        out: impl Write + Send,
    ) -> Result<u64, Error> {
        let mut e = Exporter::new(out, &self.tenant, &self.profile.custom)?;
        let limit = self.profile.batch_size.max(1);
        let mut after: Option<String> = None;
        loop {
            let page = store
                .scan(&self.tenant, after.as_deref(), limit)
                .await
                .map_err(Error::store)?;
            for u in &page {
                e.user(u)?;
            }
            match page.last() {
                Some(last) if page.len() >= limit => {
                    after = Some(crate::matching::normalize(last.user_id()))
                }
                _ => break,
            }
        }
        e.finish()
    }
}
