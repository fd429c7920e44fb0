//! The `import` command itself, as a function of its arguments and output
//! streams (so the tests can run it in-process): parse the options, read the
//! file, plan and apply it against a [`SqliteStore`] or a [`PgStore`],
//! print the report.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use user_import::{
    Code, ErrorPolicy, Importer, InputInfo, Issue, Mode, Outcome, Phase, Plan, Profile, Progress,
    Report, RolePolicy, RowReport, RunOptions, Validation,
};

use crate::json_rows::JsonRows;
use crate::pg_store::PgStore;
use crate::spool::Replay;
use crate::sqlite_store::SqliteStore;
use crate::text_rows::TextRows;

/// The usage text (`--help`, and after a usage error).
pub const USAGE: &str = "\
usage: import [OPTIONS] [FILE]

Imports a users CSV (the canonical columns: userId, tenant, firstName,
lastName, email, enabled, reportsTo, roles, taskNotification, transaction,
notifyIfNewUser, ...) into a user directory in SQLite or PostgreSQL, and
prints the report.

Options:
  --db PATH|URL             SQLite file, created if missing, or a PostgreSQL
                            database: postgres://USER@HOST:PORT/DB (the tables
                            are created if missing)       [default: users.db]
  --tenant NAME             the current tenant                 [default: default]
  --dry-run                 validate and plan; write nothing
  --mode upsert|create-only|update-only|mirror                  [default: upsert]
  --on-error reject-file|skip-invalid                           [default: reject-file]
  --unknown-roles reject|create|fallback:ROLE                   [default: create]
  --grantable ROLE,ROLE     roles this import may grant        [default: any]
  --as USER_ID              the acting administrator (self-lockout guard;
                            named in the report)
  --max-deletes N           refuse a plan deleting or disabling more than N users
  --report text|json        what goes to stdout                 [default: text]
  --errors PATH             write the error CSV of failed rows (copied from
                            FILE read again after the import: it must be
                            unchanged; a pipe from its copy, or held
                            under PostgreSQL or --plan-out/--undo-out)
  --plan-out PATH           write the plan as JSON (with --dry-run: a plan to
                            review, then apply with --apply-plan)
  --apply-plan PATH         apply a stored plan (from --plan-out or --undo-out)
                            instead of a FILE; a user changed since it was
                            planned is a conflict, never overwritten
  --undo-out PATH           write the undo of what was applied, as a plan that
                            --apply-plan takes back
  --export PATH             after the run (or alone, with no FILE), write every
                            user of the tenant as a users CSV in the canonical format
  --profile PATH            a saved import profile (JSON: mapping, key, required
                            fields, custom attributes, policies); the options
                            above override it where given
  --busy-timeout SECONDS    how long a write waits for another program's lock
                            on the database (PostgreSQL: on a row) before it
                            fails                                 [default: 30]
  --threads N               threads for reading, checking and planning a large
                            file; the result is the same with any number
                                               [default: the machine's cores]
  --preset NAME             read another product's user export or template as
                            it is (okta, entra, m365, google, zendesk, atlassian,
                            canvas, moodle); the options above override it
  --presets                 list the presets and what each reads
  --template                print the users file to fill in for the profile
  -h, --help                print this help

FILE is a .csv/.txt (delimiter and encoding detected), or, when the command
is built with the library's features `xlsx` / `zip`
(cargo run --release --features xlsx,zip --example import -- ...), an Excel
workbook or a zip holding one .csv/.txt.

Ctrl-C cancels between batches, and the report still says what was done (under
reject-file nothing is); a second Ctrl-C ends the command at once.

Exit status: 0 every row succeeded (warnings allowed); 1 the file was rejected,
a row failed, or the database failed during the import; 2 usage error, or a
file or database that cannot be read or written.
";

/// Set when the operator interrupts the command (Ctrl-C): planning and
/// applying stop at the next batch, and the report says what was done.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Exit status: every row succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status: the file was rejected or some row failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: usage error, unreadable file or database.
pub const EXIT_USAGE: u8 = 2;

/// Files with at least this many rows get a progress bar (when stderr is a terminal).
const PROGRESS_ROWS: usize = 2_000;

/// The parsed command line.
#[derive(Debug)]
struct Options {
    file: Option<PathBuf>,
    db: String,
    tenant: String,
    dry_run: bool,
    mode: Option<Mode>,
    on_error: Option<ErrorPolicy>,
    unknown_roles: Option<RolePolicy>,
    profile: Option<PathBuf>,
    busy_timeout: Option<std::time::Duration>,
    threads: Option<usize>,
    preset: Option<String>,
    presets: bool,
    template: bool,
    grantable: Option<Vec<String>>,
    acting: Option<String>,
    max_deletes: Option<u64>,
    json: bool,
    errors: Option<PathBuf>,
    export: Option<PathBuf>,
    plan_out: Option<PathBuf>,
    apply_plan: Option<PathBuf>,
    undo_out: Option<PathBuf>,
    help: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            file: None,
            db: "users.db".into(),
            tenant: "default".into(),
            dry_run: false,
            mode: None,
            on_error: None,
            unknown_roles: None,
            profile: None,
            busy_timeout: None,
            threads: None,
            preset: None,
            presets: false,
            template: false,
            grantable: None,
            acting: None,
            max_deletes: None,
            json: false,
            errors: None,
            export: None,
            plan_out: None,
            apply_plan: None,
            undo_out: None,
            help: false,
        }
    }
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut o = Options::default();
    let mut args = args.into_iter();
    let mut only_files = false;
    while let Some(arg) = args.next() {
        if only_files || !arg.starts_with('-') || arg == "-" {
            if o.file.is_some() {
                return Err(format!(
                    "only one FILE can be imported (got another: {arg})"
                ));
            }
            o.file = Some(PathBuf::from(arg));
            continue;
        }
        // `--name value` or `--name=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--" => only_files = true,
            "-h" | "--help" => o.help = true,
            "--dry-run" => o.dry_run = true,
            "--db" => o.db = value()?,
            "--tenant" => {
                o.tenant = value()?;
                if o.tenant.trim().is_empty() {
                    return Err("--tenant needs a name".into());
                }
            }
            "--mode" => {
                o.mode = Some(match value()?.as_str() {
                    "upsert" => Mode::Upsert,
                    "create-only" => Mode::CreateOnly,
                    "update-only" => Mode::UpdateOnly,
                    "mirror" => Mode::Mirror,
                    v => {
                        return Err(format!(
                            "--mode {v}: expected upsert, create-only, update-only or mirror"
                        ));
                    }
                })
            }
            "--on-error" => {
                o.on_error = Some(match value()?.as_str() {
                    "reject-file" => ErrorPolicy::RejectFile,
                    "skip-invalid" => ErrorPolicy::SkipInvalid,
                    v => {
                        return Err(format!(
                            "--on-error {v}: expected reject-file or skip-invalid"
                        ));
                    }
                })
            }
            "--unknown-roles" => {
                let v = value()?;
                o.unknown_roles = Some(match v.split_once(':') {
                    None if v == "reject" => RolePolicy::Reject,
                    None if v == "create" => RolePolicy::Create,
                    Some(("fallback", role)) if !role.trim().is_empty() => {
                        RolePolicy::Fallback(role.trim().to_owned())
                    }
                    _ => {
                        return Err(format!(
                            "--unknown-roles {v}: expected reject, create or fallback:ROLE"
                        ));
                    }
                })
            }
            "--grantable" => {
                let roles = value()?;
                o.grantable = Some(
                    roles
                        .split(',')
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            "--as" => {
                let id = value()?;
                if id.trim().is_empty() {
                    return Err("--as needs a user id".into());
                }
                o.acting = Some(id);
            }
            "--threads" => {
                let v = value()?;
                o.threads = Some(
                    v.parse()
                        .ok()
                        .filter(|&n: &usize| n >= 1)
                        .ok_or_else(|| format!("--threads {v}: expected a number from 1"))?,
                );
            }
            "--max-deletes" => {
                let v = value()?;
                o.max_deletes = Some(
                    v.parse()
                        .map_err(|_| format!("--max-deletes {v}: expected a number"))?,
                );
            }
            "--report" => {
                o.json = match value()?.as_str() {
                    "text" => false,
                    "json" => true,
                    v => return Err(format!("--report {v}: expected text or json")),
                }
            }
            "--errors" => o.errors = Some(PathBuf::from(value()?)),
            "--profile" => o.profile = Some(PathBuf::from(value()?)),
            "--template" => o.template = true,
            "--preset" => o.preset = Some(value()?),
            "--busy-timeout" => {
                let v = value()?;
                let seconds: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("--busy-timeout {v}: expected a number of seconds"))?;
                o.busy_timeout = Some(std::time::Duration::from_secs_f64(seconds));
            }
            "--presets" => o.presets = true,
            "--export" => o.export = Some(PathBuf::from(value()?)),
            "--plan-out" => o.plan_out = Some(PathBuf::from(value()?)),
            "--apply-plan" => o.apply_plan = Some(PathBuf::from(value()?)),
            "--undo-out" => o.undo_out = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown option {name}")),
        }
        if inline.is_some()
            && matches!(
                name.as_str(),
                "--dry-run" | "--template" | "--presets" | "-h" | "--help" | "--"
            )
        {
            return Err(format!("{name} takes no value"));
        }
    }
    if o.profile.is_some() && o.preset.is_some() {
        return Err("--profile and --preset: choose one".into());
    }
    if o.apply_plan.is_some() {
        if o.file.is_some() {
            return Err("--apply-plan applies a stored plan: give it no FILE".into());
        }
        if o.errors.is_some() || o.plan_out.is_some() {
            return Err("--errors and --plan-out need a FILE to import".into());
        }
    }
    if o.dry_run && o.undo_out.is_some() {
        return Err("--undo-out needs an import that writes: not with --dry-run".into());
    }
    if !o.help && !o.template && !o.presets && o.file.is_none() && o.apply_plan.is_none() {
        if o.dry_run || o.errors.is_some() || o.plan_out.is_some() || o.undo_out.is_some() {
            return Err(
                "--dry-run, --errors, --plan-out and --undo-out need a FILE to import (or --apply-plan)"
                    .into(),
            );
        }
        if o.export.is_none() {
            return Err("nothing to do: give a FILE to import, or --export PATH".into());
        }
    }
    Ok(o)
}

/// The importer: the saved profile (or the command's defaults), with the
/// options given on the command line on top.
fn importer(o: &Options) -> Result<Importer, String> {
    let mut profile = match (&o.profile, &o.preset) {
        (_, Some(name)) => {
            let mut p = Profile::preset(name)
                .ok_or_else(|| format!("unknown preset {name:?} (--presets lists them)"))?;
            p.unknown_roles = RolePolicy::Create;
            p
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read profile {}: {e}", path.display()))?;
            Profile::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        (None, None) => {
            let mut p = Profile::default();
            // The command's default: roles the file names that the tenant
            // lacks are created (`--unknown-roles` chooses otherwise).
            p.unknown_roles = RolePolicy::Create;
            p
        }
    };
    if let Some(mode) = o.mode {
        profile.mode = mode;
    }
    if let Some(on_error) = o.on_error {
        profile.on_error = on_error;
    }
    if let Some(roles) = &o.unknown_roles {
        profile.unknown_roles = roles.clone();
    }
    if o.grantable.is_some() {
        profile.guards.grantable_roles = o.grantable.clone();
    }
    if o.max_deletes.is_some() {
        profile.guards.max_deletes = o.max_deletes;
    }
    // The library starts no thread unless asked; the command uses the
    // machine's cores (the store is called from this thread only).
    let threads = o.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let importer = Importer::with_profile(o.tenant.trim(), profile).threads(threads);
    Ok(match &o.acting {
        Some(id) => importer.acting_user(id.trim()),
        None => importer,
    })
}

/// Reads and validates the file; `Err` when it cannot be read at all. A
/// file over the size limit is refused from its size, before it is read; a
/// stream (a pipe, a device) is read up to the limit and refused there. The
/// bytes of an input that is not a file (a pipe, a device), which cannot
/// be read again, are given back (for the error CSV, and for the report of
/// an import that does not happen); a file's are freed once the rows are
/// read, unless `keep`.
fn read(
    importer: &Importer,
    path: &Path,
    keep: bool,
) -> Result<(Option<Vec<u8>>, Validation), String> {
    let name = path.to_string_lossy();
    let file = File::open(path).map_err(|e| format!("cannot open {name}: {e}"))?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let failed = |e: user_import::Error| format!("cannot read {name}: {e}");
    if keep || size.is_none() {
        let (bytes, v) = importer
            .read_and_validate_sized(file, size, Some(&name))
            .map_err(failed)?;
        return Ok((Some(bytes), v));
    }
    // Not kept: freed as soon as the rows are read.
    let v = importer
        .validate_reader_sized(file, size, Some(&name))
        .map_err(failed)?;
    Ok((None, v))
}

/// The imported file's bytes for the error CSV: those kept, or the file
/// read again (no more than the report says was read), which must be the
/// file imported: its SHA-256 is the report's. An input of which nothing
/// was read (empty, or refused at once as over the byte limit) has no row
/// to copy.
pub fn again(path: &Path, kept: Option<Vec<u8>>, input: &InputInfo) -> Result<Vec<u8>, String> {
    use sha2::Digest;
    use std::io::Read;
    if let Some(bytes) = kept {
        return Ok(bytes);
    }
    if input.bytes == 0 {
        return Ok(Vec::new());
    }
    let name = path.display();
    let cannot = |e: std::io::Error| format!("cannot read {name} again: {e}");
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| {
            f.take(input.bytes.saturating_add(1))
                .read_to_end(&mut bytes)
        })
        .map_err(cannot)?;
    if format!("{:x}", sha2::Sha256::digest(&bytes)) != input.sha256 {
        return Err(format!("{name} changed since it was imported"));
    }
    Ok(bytes)
}

/// The user directory the command works on.
enum Directory {
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database, through the library's async drivers, on a
    /// runtime of the command's own.
    Postgres {
        runtime: tokio::runtime::Runtime,
        store: PgStore,
    },
}

/// Whether `--db` names a PostgreSQL database.
fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `db` without the password a URL may hold (in its user part or as a
/// `password=` parameter), for messages.
fn shown(db: &str) -> String {
    let Ok(mut url) = url::Url::parse(db) else {
        return db.to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

impl Directory {
    /// Opens the database; read-only when nothing will be written.
    fn open(o: &Options) -> Result<Directory, String> {
        let writes = (o.file.is_some() || o.apply_plan.is_some()) && !o.dry_run;
        let failed =
            |e: &dyn std::fmt::Display| format!("cannot open database {}: {e}", shown(&o.db));
        if is_postgres(&o.db) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| failed(&e))?;
            // Read-only, a database without the tables is an empty directory.
            let store = runtime
                .block_on(async {
                    let mut store = if writes {
                        PgStore::connect(&o.db).await?
                    } else {
                        PgStore::connect_read_only(&o.db).await?
                    };
                    if let Some(timeout) = o.busy_timeout {
                        store.set_lock_timeout(timeout).await?;
                    }
                    Ok::<_, sqlx::Error>(store)
                })
                .map_err(|e| failed(&e))?;
            return Ok(Directory::Postgres { runtime, store });
        }
        let path = Path::new(&o.db);
        let mut store = if writes {
            SqliteStore::open(path)
        } else if o.dry_run && !path.exists() {
            // A dry run against a database that does not exist yet: plan
            // against an empty directory, and create nothing.
            SqliteStore::open_in_memory()
        } else {
            SqliteStore::open_read_only(path)
        }
        .map_err(|e| failed(&e))?;
        if let Some(timeout) = o.busy_timeout {
            store
                .set_busy_timeout(timeout)
                .map_err(|e| format!("cannot set the busy timeout: {e}"))?;
        }
        Ok(Directory::Sqlite(store))
    }

    fn plan(
        &mut self,
        importer: &Importer,
        validation: Validation,
        options: RunOptions<'_>,
    ) -> Result<Plan, user_import::Error> {
        match self {
            Directory::Sqlite(store) => importer.plan_with(validation, store, options),
            Directory::Postgres { runtime, store } => {
                runtime.block_on(importer.plan_async_with(validation, store, options))
            }
        }
    }

    fn apply(
        &mut self,
        importer: &Importer,
        plan: &Plan,
        options: RunOptions<'_>,
    ) -> Result<Report, user_import::Error> {
        match self {
            Directory::Sqlite(store) => importer.apply_with(plan, store, options),
            Directory::Postgres { runtime, store } => {
                runtime.block_on(importer.apply_async_with(plan, store, options))
            }
        }
    }

    fn export(
        &mut self,
        importer: &Importer,
        out: &mut BufWriter<File>,
    ) -> Result<u64, user_import::Error> {
        match self {
            Directory::Sqlite(store) => importer.export(store, out),
            Directory::Postgres { runtime, store } => {
                runtime.block_on(importer.export_async(store, out))
            }
        }
    }
}

/// A progress bar on stderr for big files; `None` otherwise.
fn progress_bar(rows: usize, interactive: bool) -> Option<ProgressBar> {
    if !interactive || rows < PROGRESS_ROWS {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(rows as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// Runs the command; returns the exit status. `interactive`: stderr is a
/// terminal (progress bars are drawn there).
pub fn run(
    args: impl IntoIterator<Item = String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    interactive: bool,
) -> u8 {
    // Writes to stdout/stderr that fail (a closed pipe) are not worth a panic.
    let o = match parse(args) {
        Ok(o) => o,
        Err(message) => {
            let _ = write!(err, "error: {message}\n\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    if o.help {
        let _ = out.write_all(USAGE.as_bytes());
        return EXIT_OK;
    }
    if o.presets {
        for (name, reads) in Profile::presets() {
            let _ = writeln!(out, "{name:<10} {reads}");
        }
        return EXIT_OK;
    }
    let importer = match importer(&o) {
        Ok(i) => i,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return EXIT_USAGE;
        }
    };
    if o.template {
        let _ = out.write_all(importer.profile().template().as_bytes());
        return EXIT_OK;
    }

    // Read the file before opening the database: an unreadable file
    // changes nothing. A file imported a segment at a time is only opened
    // now (to refuse one that cannot be), and read as it is imported, in
    // one transaction: one that cannot be read to its end changes nothing
    // either.
    let source = match &o.file {
        Some(path) if streams(&o, path) => match File::open(path) {
            Ok(file) => match file.metadata() {
                Ok(m) if m.is_file() => {
                    Some(Input::Streamed(Some(m.len()), Reopen::Path(path.clone())))
                }
                // A pipe is copied as it is read, to be read again.
                _ => match Replay::new(file) {
                    Ok(replay) => Some(Input::Streamed(None, Reopen::Replay(replay))),
                    Err(e) => {
                        let _ = writeln!(err, "error: cannot copy {}: {e}", path.display());
                        return EXIT_USAGE;
                    }
                },
            },
            Err(e) => {
                let _ = writeln!(err, "error: cannot open {}: {e}", path.to_string_lossy());
                return EXIT_USAGE;
            }
        },
        // The file's bytes are kept only for the error CSV, and only when
        // the file cannot be read again for it (a pipe, a device, under
        // PostgreSQL or with the whole plan asked for): a file is read
        // again once the import is done, not held through it.
        Some(path) => match read(&importer, path, o.errors.is_some()) {
            Ok((bytes, validation)) => Some(Input::Read(bytes, Box::new(validation))),
            Err(message) => {
                let _ = writeln!(err, "error: {message}");
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    // The plan and the undo are written after the import: a path that
    // cannot be written is refused before anything is.
    for path in [&o.plan_out, &o.undo_out].into_iter().flatten() {
        if let Err(e) = create(path) {
            let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let stored = match &o.apply_plan {
        // A plan applies to the tenant it was made for: the one the command
        // names must be that one (a later --export reads it too).
        Some(path) => match read_plan(path) {
            Ok(plan)
                if user_import::normalize(plan.tenant())
                    != user_import::normalize(importer.tenant()) =>
            {
                let _ = writeln!(
                    err,
                    "error: {} is a plan for tenant {:?}: give --tenant {:?}",
                    path.display(),
                    plan.tenant(),
                    plan.tenant()
                );
                return EXIT_USAGE;
            }
            Ok(plan) => Some(plan),
            Err(message) => {
                let _ = writeln!(err, "error: {message}");
                return EXIT_USAGE;
            }
        },
        None => None,
    };
    let mut store = match Directory::open(&o) {
        Ok(s) => s,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return EXIT_USAGE;
        }
    };

    let mut status = EXIT_OK;
    if let Some(input) = source {
        let name = o.file.as_deref().map(|p| p.to_string_lossy().into_owned());
        let mut run = Run::new(&o, interactive);
        let (input_size, reopen) = match &input {
            Input::Streamed(size, reopen) => (*size, Some(reopen.clone())),
            Input::Read(..) => (None, None),
        };
        let (bytes, imported) = match (input, &o.file, &mut store) {
            (Input::Streamed(size, reopen), Some(path), Directory::Sqlite(store)) => (
                None,
                import_streaming(&importer, path, &reopen, size, store, &mut run),
            ),
            (Input::Read(bytes, validation), _, store) => {
                (bytes, import(&importer, *validation, store, &mut run))
            }
            // A file is streamed only into SQLite.
            (Input::Streamed(..), _, _) => return EXIT_USAGE,
        };
        let report = match imported {
            Ok(r) => r,
            // A file imported as it is read that cannot be read to its
            // end: rolled back, and said as a file that cannot be read.
            Err(e) if e.kind() == user_import::ErrorKind::Io => {
                let path = o.file.as_deref().map(Path::to_string_lossy);
                let _ = writeln!(err, "error: cannot read {}: {e}", path.unwrap_or_default());
                return EXIT_USAGE;
            }
            Err(e) => {
                // Planning failed (the store, a cancel): the report still
                // accounts for every row, none of them applied.
                let _ = writeln!(err, "error: {e}");
                let code = if e.kind() == user_import::ErrorKind::Cancelled {
                    Code::Cancelled
                } else {
                    Code::StoreError
                };
                let why = Issue::error(code, format!("nothing is imported: {e}"));
                let report = match (&bytes, o.file.as_deref(), input_size) {
                    (Some(bytes), _, _) => {
                        let validation = importer.validate(bytes, name.as_deref());
                        let plan = importer.planner(validation).abort(why);
                        store.apply(&importer, &plan, RunOptions::new())
                    }
                    // A file read again: a segment at a time.
                    (None, Some(path), size) => {
                        let size = size.or_else(|| {
                            let meta = std::fs::metadata(path).ok();
                            meta.filter(|m| m.is_file()).map(|m| m.len())
                        });
                        let reopen = reopen
                            .clone()
                            .unwrap_or_else(|| Reopen::Path(path.to_path_buf()));
                        report_not_imported(&importer, path, &reopen, size, why, &mut run)
                    }
                    (None, None, _) => return EXIT_FAILED,
                };
                match report {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = match (e.kind(), o.file.as_deref()) {
                            (user_import::ErrorKind::Io, Some(path)) => {
                                writeln!(err, "error: cannot read {}: {e}", path.display())
                            }
                            _ => writeln!(err, "error: {e}"),
                        };
                        return EXIT_FAILED;
                    }
                }
            }
        };
        let concluded = conclude(&o, &report, &mut run, out, err);
        if concluded == EXIT_USAGE {
            return EXIT_USAGE;
        }
        status = status.max(concluded);
        if let (Some(path), Some(file)) = (&o.errors, &o.file) {
            let failed = report.summary.failed;
            // A pipe's copy holds what was read of it.
            let bytes = match (bytes, &reopen) {
                (None, Some(Reopen::Replay(replay))) => {
                    use std::io::Read;
                    let mut copy = Vec::new();
                    let read = replay
                        .open()
                        .take(report.input.bytes)
                        .read_to_end(&mut copy);
                    if let Err(e) = read {
                        let _ = writeln!(
                            err,
                            "error: no error CSV written to {}: cannot read the copy of {}: {e}",
                            path.display(),
                            file.display()
                        );
                        return EXIT_USAGE;
                    }
                    Some(copy)
                }
                (bytes, _) => bytes,
            };
            let bytes = match again(file, bytes, &report.input) {
                Ok(bytes) => bytes,
                Err(e) => {
                    let _ = writeln!(
                        err,
                        "error: no error CSV written to {}: {e}",
                        path.display()
                    );
                    return EXIT_USAGE;
                }
            };
            let written = create(path).and_then(|mut w| {
                // The failed rows kept as they came, or (after a planning
                // failure) those of the report.
                let csv = match run.failed.take() {
                    Some(kept) => report.write_error_csv_of(&bytes, kept, &mut w),
                    None => report.write_error_csv(&bytes, &mut w),
                };
                csv.map_err(|e| e.to_string())?;
                w.flush().map_err(|e| e.to_string())
            });
            match written {
                Ok(()) => {
                    let _ = writeln!(err, "wrote {failed} failed row(s) to {}", path.display());
                }
                Err(e) => {
                    let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
                    return EXIT_USAGE;
                }
            }
        }
    }

    if let Some(plan) = stored {
        let mut run = Run::new(&o, interactive);
        let report = match apply(&importer, &plan, &mut store, &mut run) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return EXIT_FAILED;
            }
        };
        match conclude(&o, &report, &mut run, out, err) {
            EXIT_USAGE => return EXIT_USAGE,
            concluded => status = status.max(concluded),
        }
    }

    if let Some(path) = &o.export {
        let exported = create(path).and_then(|mut w| {
            let n = store.export(&importer, &mut w).map_err(|e| e.to_string())?;
            w.flush().map_err(|e| e.to_string())?;
            Ok(n)
        });
        match exported {
            Ok(n) => {
                let _ = writeln!(
                    err,
                    "exported {n} user(s) of tenant {} to {}",
                    importer.tenant(),
                    path.display()
                );
            }
            Err(e) => {
                let _ = writeln!(err, "error: cannot export to {}: {e}", path.display());
                return EXIT_USAGE;
            }
        }
    }
    status
}

/// The file to import: read and checked already, or to be read as it is
/// imported.
enum Input {
    /// Its bytes (when kept for the error CSV) and its validation (boxed:
    /// large beside a size).
    Read(Option<Vec<u8>>, Box<Validation>),
    /// Opened, to be imported a segment at a time; its size, if known, and
    /// how it is read (again).
    Streamed(Option<u64>, Reopen),
}

/// Where a file imported a segment at a time is read (again) from: its
/// path, or the copy of a pipe, which cannot be opened twice.
#[derive(Clone)]
enum Reopen {
    Path(PathBuf),
    Replay(Replay),
}

impl Reopen {
    /// A reader of the file from its start.
    fn open(&self) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(match self {
            Reopen::Path(path) => Box::new(File::open(path)?),
            Reopen::Replay(replay) => Box::new(replay.open()),
        })
    }
}

/// Whether the file is imported a segment at a time
/// (`Importer::run_streaming`, or `dry_run_streaming` for a dry run): a
/// file on disk or a pipe (copied as it is read, [`Replay`]) imported into
/// SQLite, with nothing asked for that needs the whole plan
/// (`--plan-out`, `--undo-out`). The library reads it whole where that
/// gives another result.
fn streams(o: &Options, path: &Path) -> bool {
    !is_postgres(&o.db)
        && o.plan_out.is_none()
        && o.undo_out.is_none()
        && std::fs::metadata(path).is_ok_and(|m| m.is_file() || is_pipe(&m))
}

/// Whether `meta` is a pipe's (a FIFO, a socket). A device is read whole
/// (`/dev/zero` would only fill a copy up to the byte limit).
fn is_pipe(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_fifo() || meta.file_type().is_socket()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Imports the file at `path` a segment at a time where the library can
/// (see [`streams`]), with the report's rows going where [`apply`] sends
/// them; they are taken back if the library starts over.
fn import_streaming(
    importer: &Importer,
    path: &Path,
    reopen: &Reopen,
    size: Option<u64>,
    store: &mut SqliteStore,
    run: &mut Run,
) -> Result<Report, user_import::Error> {
    let name = path.to_string_lossy();
    let dry = run.dry_run;
    with_streamed_rows(size, run, |options| {
        let open = || reopen.open();
        if dry {
            importer.dry_run_streaming(open, size, Some(&name), store, options)
        } else {
            importer.run_streaming(open, size, Some(&name), store, options)
        }
    })
}

/// The report of an import of the file at `path` that did not happen
/// (`why` says why), read a segment at a time where the library can, its
/// rows going where [`apply`] sends them.
fn report_not_imported(
    importer: &Importer,
    path: &Path,
    reopen: &Reopen,
    size: Option<u64>,
    why: Issue,
    run: &mut Run,
) -> Result<Report, user_import::Error> {
    let name = path.to_string_lossy();
    with_streamed_rows(size, run, |options| {
        importer.abort_streaming(|| reopen.open(), size, Some(&name), why, options)
    })
}

/// Runs `streamed` (a call of the library that reads a file of `size`
/// bytes a segment at a time) with a progress bar, and with the report's
/// rows going where [`apply`] sends them as they come, taken back if the
/// library starts over.
fn with_streamed_rows(
    size: Option<u64>,
    run: &mut Run,
    streamed: impl FnOnce(RunOptions<'_>) -> Result<Report, user_import::Error>,
) -> Result<Report, user_import::Error> {
    let rows = std::sync::Mutex::new(Rows::new(run));
    let lock = || {
        rows.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    // A bar for a file of more than a few thousand rows (its length the
    // file's rows or operations, as the import estimates them from the
    // share of the file read).
    let bar = progress_bar(size.map_or(0, |s| s / 64) as usize, run.interactive);
    let mut progress = on_progress(bar.as_ref());
    let mut keep = |row: RowReport| lock().push(row);
    let mut restart = || lock().restart();
    let options = RunOptions::new()
        .on_progress(&mut progress)
        .on_row(&mut keep)
        .on_restart(&mut restart);
    let report = streamed(options);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let rows = rows
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    report.map(|mut report| {
        rows.finish(run, &mut report);
        report
    })
}

/// Where an applied plan's rows go as they come: the JSON report's rows or
/// the text report's lines to a temporary file ([`JsonRows`],
/// [`TextRows`]); without one, the rows held in the report (all of them
/// for JSON, those with issues for text); and the failed rows, when the
/// error CSV is asked for.
struct Rows {
    json_rows: Option<JsonRows>,
    text_rows: Option<TextRows>,
    json: bool,
    keep_failed: bool,
    kept: Vec<RowReport>,
    failed: Vec<(u64, String)>,
}

impl Rows {
    fn new(run: &Run) -> Rows {
        Rows {
            json_rows: if run.json { JsonRows::new().ok() } else { None },
            text_rows: if run.json { None } else { TextRows::new().ok() },
            json: run.json,
            keep_failed: run.errors,
            kept: Vec::new(),
            failed: Vec::new(),
        }
    }

    fn push(&mut self, row: RowReport) {
        if let Some(json_rows) = &mut self.json_rows {
            json_rows.push(&row);
        }
        if let Some(text_rows) = &mut self.text_rows {
            text_rows.push(&row);
        }
        if self.keep_failed && row.outcome == Outcome::Failed {
            self.failed.push((row.line, row.error_text()));
        }
        let keep_all = self.json && self.json_rows.is_none();
        let keep_issues = !self.json && self.text_rows.is_none();
        if keep_all || (keep_issues && !row.issues.is_empty()) {
            self.kept.push(row);
        }
    }

    /// Forgets every row taken so far: they come again.
    fn restart(&mut self) {
        *self = Rows {
            json_rows: if self.json {
                JsonRows::new().ok()
            } else {
                None
            },
            text_rows: if self.json {
                None
            } else {
                TextRows::new().ok()
            },
            json: self.json,
            keep_failed: self.keep_failed,
            kept: Vec::new(),
            failed: Vec::new(),
        };
    }

    /// Gives the rows to the run and the report they belong to.
    fn finish(self, run: &mut Run, report: &mut Report) {
        run.json_rows = self.json_rows;
        run.text_rows = self.text_rows;
        run.failed = Some(self.failed);
        report.rows = self.kept;
    }
}

/// How one run plans and applies, and the plans it keeps.
struct Run {
    dry_run: bool,
    interactive: bool,
    /// The JSON report is asked for.
    json: bool,
    /// The JSON report's rows of the last plan applied (see [`JsonRows`]).
    json_rows: Option<JsonRows>,
    /// The text report's lines of the last plan applied (see [`TextRows`]).
    text_rows: Option<TextRows>,
    /// The error CSV is asked for: the failed rows are kept for it.
    errors: bool,
    /// The line and error text of each failed row of the last plan
    /// applied, for the error CSV (when it is asked for); `None` when no
    /// plan was applied through [`apply`] (the report then holds its rows).
    failed: Option<Vec<(u64, String)>>,
    /// The plan made, when asked for (`--plan-out`).
    plan: Option<Option<Plan>>,
    /// The undo of what was applied, when asked for (`--undo-out`).
    undo: Option<Option<Plan>>,
}

/// The progress callback: a progress bar for big files, and Ctrl-C.
fn on_progress(bar: Option<&ProgressBar>) -> impl FnMut(&Progress) -> ControlFlow<()> + '_ {
    move |p: &Progress| {
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            return ControlFlow::Break(());
        }
        if let Some(bar) = bar {
            let (what, done, total) = match p.phase {
                Phase::Applying => ("applying", p.ops_done, p.ops_total),
                _ => ("planning", p.rows_done, p.rows_total),
            };
            bar.set_message(what);
            bar.set_length(total);
            bar.set_position(done);
        }
        ControlFlow::Continue(())
    }
}

/// Plans and (unless a dry run) applies, with a progress bar for big files.
/// Returns the report (`report.rejected` says whether the file was refused).
fn import(
    importer: &Importer,
    validation: Validation,
    store: &mut Directory,
    run: &mut Run,
) -> Result<Report, user_import::Error> {
    let bar = progress_bar(validation.rows().len(), run.interactive);
    let mut progress = on_progress(bar.as_ref());
    let plan = store.plan(
        importer,
        validation,
        RunOptions::new().on_progress(&mut progress),
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let plan = plan?;
    let report = apply(importer, &plan, store, run);
    if let Some(keep) = &mut run.plan {
        *keep = Some(plan);
    }
    report
}

/// Applies `plan` (or shows its dry run), with a progress bar for big plans.
///
/// The report's rows go to a temporary file as they come: the JSON
/// report's rows ([`JsonRows`]), or the text report's lines of the rows
/// with something to say ([`TextRows`]); without one, those rows are held
/// in the report's `rows`. The error CSV needs the failed rows: when it is
/// asked for, those are held too. The others are counted in the summary,
/// so a large import does not hold a report row per line, even one whose
/// every row has something to say (a rollback).
fn apply(
    importer: &Importer,
    plan: &Plan,
    store: &mut Directory,
    run: &mut Run,
) -> Result<Report, user_import::Error> {
    let mut rows = Rows::new(run);
    let mut keep = |row: RowReport| rows.push(row);
    let report = if run.dry_run {
        Ok(Report::dry_run_to(plan, &mut keep))
    } else {
        let bar = progress_bar(plan.ops().len(), run.interactive);
        let mut progress = on_progress(bar.as_ref());
        let mut options = RunOptions::new()
            .on_progress(&mut progress)
            .on_row(&mut keep);
        if let Some(undo) = &mut run.undo {
            options = options.undo(undo);
        }
        let report = store.apply(importer, plan, options);
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        report
    };
    report.map(|mut report| {
        // Kept for the report they belong to (never for an error's).
        rows.finish(run, &mut report);
        report
    })
}

impl Run {
    /// A run as the options ask: the plans to keep, a dry run or not.
    fn new(o: &Options, interactive: bool) -> Run {
        Run {
            dry_run: o.dry_run,
            interactive,
            json: o.json,
            json_rows: None,
            text_rows: None,
            errors: o.errors.is_some(),
            failed: None,
            plan: o.plan_out.as_ref().map(|_| None),
            undo: o.undo_out.as_ref().map(|_| None),
        }
    }
}

/// Prints the report on stdout and the notes on stderr, then writes the
/// plan (`--plan-out`) and the undo (`--undo-out`) the run kept, each on
/// its own (one that cannot be written does not keep the other from
/// being written). The exit status: usage when one of them or the JSON
/// report could not be written, or the text report's lines about rows
/// were lost from their temporary file; failed when the report is not a
/// success.
fn conclude(
    o: &Options,
    report: &Report,
    run: &mut Run,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut all = true;
    if o.json {
        // Written as it is serialized: the JSON of a big import is larger
        // than its file.
        let written = match run.json_rows.take() {
            Some(json_rows) => json_rows.write_json(report, &mut *out),
            None => report.write_json(&mut *out),
        };
        match written.and_then(|()| writeln!(out)) {
            Ok(()) => {}
            Err(e) => {
                let _ = writeln!(err, "error: cannot write the JSON report: {e}");
                all = false;
            }
        }
    } else {
        // As the text report has always been: written as far as stdout
        // takes it (a reader that stops early is not an error).
        match run.text_rows.take().map(TextRows::into_reader).transpose() {
            Ok(Some(mut rows)) => {
                let _ = report.write_text_with_rows(&mut rows, &mut *out);
            }
            Ok(None) => {
                let _ = report.write_text(&mut *out);
            }
            Err(e) => {
                // The rows' lines are lost: the rest of the report still
                // says what happened.
                let _ = report.write_text(&mut *out);
                let _ = writeln!(
                    err,
                    "error: the report's lines about rows could not be kept in a temporary file: {e}"
                );
                all = false;
            }
        }
    }
    // The report first, then the notes on stderr, also on a terminal.
    let _ = out.flush();
    notes(report, err);
    let kept = [
        (&o.plan_out, &run.plan, "the plan"),
        (&o.undo_out, &run.undo, "the undo plan"),
    ];
    for (path, plan, what) in kept {
        if let (Some(path), Some(Some(plan))) = (path, plan) {
            let written = create(path).and_then(|mut w| {
                serde_json::to_writer_pretty(&mut w, plan).map_err(|e| e.to_string())?;
                w.flush().map_err(|e| e.to_string())
            });
            match written {
                Ok(()) => {
                    let _ = writeln!(err, "wrote {what} to {}", path.display());
                }
                Err(e) => {
                    let _ = writeln!(err, "error: cannot write {what} to {}: {e}", path.display());
                    all = false;
                }
            }
        }
    }
    match (all, report.is_success()) {
        (false, _) => EXIT_USAGE,
        (true, false) => EXIT_FAILED,
        (true, true) => EXIT_OK,
    }
}

/// Reads a stored plan (`--plan-out`, `--undo-out`).
fn read_plan(path: &Path) -> Result<Plan, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is not a plan this command can apply: {e}",
            path.display()
        )
    })
}

/// What the administrator should know besides the report (on stderr, so
/// stdout stays the report alone).
fn notes(report: &Report, err: &mut dyn Write) {
    if !report.notices.is_empty() {
        let who: Vec<&str> = report.notices.iter().map(|n| n.user_id.as_str()).collect();
        let _ = writeln!(
            err,
            "{} welcome notice(s) asked for by notifyIfNewUser (this command sends no email): {}",
            who.len(),
            who.join(", ")
        );
    }
}

fn create(path: &Path) -> Result<BufWriter<File>, String> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| e.to_string())
}
