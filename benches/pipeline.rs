//! The pipeline benchmark (issue 5): how fast and how lean `user-import`
//! validates and plans a large users file, beside baselines measured in the
//! same process, on the same bytes.
//!
//! ```text
//! cargo bench --bench pipeline -- --rows 100000        # 10k / 100k / 1M
//! cargo bench --bench pipeline -- --quick              # CI smoke run (2,000 rows, 1 repetition)
//! ```
//!
//! Steps, each run `--reps` times (interleaved, best time kept):
//!
//! - `ceiling`:  the csv crate + serde into a struct of owned `String`s (parsing alone);
//! - `naive`:    the ceiling, plus `EmailAddress::from_str` on every email and two
//!   `HashMap`s (lower-cased user id, lower-cased email) to find duplicates;
//! - `validate`: `Importer::validate`;
//! - `plan`:     `Importer::validate` + `Importer::plan` against an `InMemoryStore`
//!   holding half of the file's users (plus users only in the directory), so the
//!   plan mixes creates, updates, unchanged rows, deletes and failures;
//! - `export`:   `Importer::export` of that directory;
//! - `stream`:   `Importer::dry_run_streaming` of a file of as many new, valid
//!   users (the generator's `NewUsers` shape, roles created) against an empty
//!   directory: the dry run a segment at a time, which holds neither the file
//!   nor its plan (a file with a failing row, as the `plan` step's, is
//!   planned whole).
//!
//! Every result is checked against a slower reference (the generator's ground
//! truth and a `HashMap` model of the planner); a mismatch panics. The last
//! line printed is
//!
//! ```text
//! ratio plan/naive=X.XX plan/ceiling=Y.YY validate/naive=Z.ZZ peak_heap/file=W.WW stream_heap/file=V.VV
//! ```
//!
//! (throughput ratios; `peak_heap/file` is the peak heap in use during `plan`
//! above what was in use when it started, divided by the file's size, and
//! `stream_heap/file` the same of `stream` and its file).
//!
//! A line before it gives the same ratios from CPU time (the process's time
//! on a CPU, all threads included, from `/proc/self/stat`), which other load
//! on the machine disturbs less than wall time; with `--threads 2` it counts
//! both cores' work, so it compares the work done, not the waiting.
//!
//! Other flags: `--reps N` (default 3), `--seed N`, `--batch N` (the
//! profile's batch size), `--only STEP[,STEP]` (run only these steps, e.g.
//! under a profiler; checks and the ratio line are skipped), `--write PATH`
//! (save the generated file). Run without `--bench` (as `cargo test
//! --benches` does) it is a 2,000-row smoke test. See `benches/README.md`
//! for results and how to profile.

use std::collections::HashMap;
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use email_address::EmailAddress;
use serde::Deserialize;
use user_import::memory::InMemoryStore;
use user_import::{
    Code, Importer, Limits, Plan, Planned, Report, RolePolicy, RunOptions, User, Validation,
};

mod common;
use common::alloc::{Counting, heap_mark, heap_since, settle_allocator};
use common::clock::{Clock, Cpu, Measure, Sample};
use common::generator::{C_REPORTS, COLUMNS, Dataset, Expect, GenRow, Shape, TENANT, generate};
use common::model::{check_eq, count, fmt_counts, reference_plan, rows_with};
use common::thousands;

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------
// The baselines.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRow {
    user_id: String,
    tenant: String,
    first_name: String,
    last_name: String,
    email: String,
    enabled: String,
    reports_to: String,
    roles: String,
    task_notification: String,
    transaction: String,
    notify_if_new_user: String,
}

impl RawRow {
    fn cells(&self) -> [&str; 11] {
        [
            &self.user_id,
            &self.tenant,
            &self.first_name,
            &self.last_name,
            &self.email,
            &self.enabled,
            &self.reports_to,
            &self.roles,
            &self.task_notification,
            &self.transaction,
            &self.notify_if_new_user,
        ]
    }
}

#[inline(never)]
fn run_ceiling(bytes: &[u8]) -> Vec<RawRow> {
    let mut reader = csv::Reader::from_reader(bytes);
    reader
        .deserialize()
        .collect::<Result<Vec<RawRow>, _>>()
        .expect("the csv crate reads the generated file")
}

struct Naive {
    rows: Vec<RawRow>,
    bad_email: Vec<usize>,
    dup_ids: Vec<usize>,
    dup_emails: Vec<usize>,
}

#[inline(never)]
fn run_naive(bytes: &[u8]) -> Naive {
    let rows = run_ceiling(bytes);
    let mut bad_email = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut by_email: HashMap<String, usize> = HashMap::new();
    let mut dup_id = vec![false; rows.len()];
    let mut dup_email = vec![false; rows.len()];
    for (i, r) in rows.iter().enumerate() {
        let delete = r.transaction.trim().eq_ignore_ascii_case("delete");
        let id = r.user_id.trim().to_lowercase();
        if !id.is_empty() {
            if let Some(&first) = by_id.get(&id) {
                dup_id[first] = true;
                dup_id[i] = true;
            } else {
                by_id.insert(id, i);
            }
        }
        let email = r.email.trim();
        if email.is_empty() {
            continue;
        }
        let valid = black_box(EmailAddress::from_str(email).is_ok());
        // A DELETE row's email only identifies the user: not checked further.
        if delete {
            continue;
        }
        if !valid {
            bad_email.push(i);
            continue;
        }
        let email = email.to_lowercase();
        if let Some(&first) = by_email.get(&email) {
            dup_email[first] = true;
            dup_email[i] = true;
        } else {
            by_email.insert(email, i);
        }
    }
    let set = |v: Vec<bool>| v.iter().enumerate().filter(|x| *x.1).map(|x| x.0).collect();
    Naive {
        rows,
        bad_email,
        dup_ids: set(dup_id),
        dup_emails: set(dup_email),
    }
}

#[inline(never)]
fn run_validate(importer: &Importer, bytes: &[u8]) -> Validation {
    importer.validate(bytes, Some("users.csv"))
}

#[inline(never)]
fn run_plan(importer: &Importer, bytes: &[u8], store: &mut InMemoryStore) -> Plan {
    common::alloc::trace_peaks(std::env::var_os("PIPELINE_TRACE_PEAK").is_some());
    let v = importer.validate(bytes, Some("users.csv"));
    let plan = importer
        .plan(v, store)
        .expect("planning against InMemoryStore");
    common::alloc::trace_peaks(false);
    plan
}

/// The streamed dry run of `bytes`: its report, with the rows handed over
/// counted (not kept), and whether it started over (read the file whole).
#[inline(never)]
fn run_stream(importer: &Importer, bytes: &[u8], store: &mut InMemoryStore) -> (Report, u64, bool) {
    let rows = std::sync::atomic::AtomicU64::new(0);
    let restarted = std::sync::atomic::AtomicBool::new(false);
    let mut count = |_: user_import::RowReport| {
        rows.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let mut restart = || {
        restarted.store(true, std::sync::atomic::Ordering::Relaxed);
        rows.store(0, std::sync::atomic::Ordering::Relaxed);
    };
    let report = importer
        .dry_run_streaming(
            || Ok(bytes),
            Some(bytes.len() as u64),
            Some("users.csv"),
            store,
            RunOptions::new()
                .on_row(&mut count)
                .on_restart(&mut restart),
        )
        .expect("a dry run against InMemoryStore");
    (report, rows.into_inner(), restarted.into_inner())
}

#[inline(never)]
fn run_export(importer: &Importer, store: &mut InMemoryStore, out: &mut Vec<u8>) -> u64 {
    importer.export(store, out).expect("export to memory")
}

// ---------------------------------------------------------------------------
// Running.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Ceiling,
    Naive,
    Validate,
    Plan,
    Export,
    Stream,
}

impl Step {
    const ALL: [Step; 6] = [
        Step::Ceiling,
        Step::Naive,
        Step::Validate,
        Step::Plan,
        Step::Export,
        Step::Stream,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Ceiling => "ceiling",
            Step::Naive => "naive",
            Step::Validate => "validate",
            Step::Plan => "plan",
            Step::Export => "export",
            Step::Stream => "stream",
        }
    }
}

type Args = common::args::StepArgs<Step>;

fn parse_args() -> Args {
    // The importer's threads: the machine's cores (both, here); `--threads
    // 1` measures one core.
    let steps: Vec<(Step, &str)> = Step::ALL.iter().map(|&s| (s, s.name())).collect();
    common::args::parse_step_args(
        "pipeline",
        &steps,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        true,
    )
}

/// A step's figures: its times, and its heap (peak above where it started,
/// and what its result still held).
#[derive(Default, Clone, Copy)]
struct Figures {
    time: Measure,
    /// Largest peak heap of a repetition above its start.
    peak: usize,
    /// Heap still held by the result when the step returned.
    held: isize,
    units: u64,
}

impl Figures {
    fn add(&mut self, t: Sample, peak: usize, held: isize, units: u64) {
        self.time.add(t);
        self.peak = self.peak.max(peak);
        self.held = self.held.max(held);
        self.units = units;
    }

    fn rate(&self) -> f64 {
        self.time.rate(self.units)
    }

    fn cpu_rate(&self) -> Option<f64> {
        self.time.cpu_rate(self.units)
    }
}

fn main() {
    let args = parse_args();
    let t0 = Instant::now();
    let mut data = generate(args.rows, args.seed, Shape::Mixed);
    let n = data.rows.len();
    let file_len = data.bytes.len();
    if let Some(path) = &args.write {
        std::fs::write(path, &data.bytes).expect("write the generated file");
    }
    let gen_time = t0.elapsed();
    let t1 = Instant::now();
    let mut store = data.store();
    let setup_time = t1.elapsed();
    if args.only.is_some() {
        // Only the bytes are needed: keep a profiler's view of the heap clean.
        data.persons = Vec::new();
        data.stored = Vec::new();
        data.rows.truncate(0);
        data.rows.shrink_to_fit();
    }

    let mut importer = Importer::new(TENANT);
    {
        let p = importer.profile_mut();
        let d = Limits::default();
        p.limits = d
            .max_rows(d.rows.max(n as u64 + 1))
            .max_file_bytes(d.file_bytes.max(2 * file_len as u64));
        if let Some(b) = args.batch {
            p.batch_size = b;
        }
    }
    let importer = importer.threads(args.threads);
    let batch = importer.profile().batch_size;

    println!(
        "pipeline: rows={n} file={:.1} MB ({:.0} B/row) reps={} seed={:#x} batch={batch} threads={}",
        file_len as f64 / 1e6,
        file_len as f64 / n as f64,
        args.reps,
        args.seed,
        args.threads
    );
    println!(
        "setup: generated in {:.2}s; directory of {} users built in {:.2}s (not timed)",
        gen_time.as_secs_f64(),
        store.len(TENANT),
        setup_time.as_secs_f64()
    );

    if args.only.is_none() {
        let t = |f: fn(&GenRow) -> bool| data.rows.iter().filter(|r| f(r)).count();
        println!(
            "file: {} DELETE rows, {} invalid emails, {} rows sharing a user id, {} rows sharing an email, {} with a manager, {} quoted cells, deepest chain {}",
            t(GenRow::is_delete),
            t(|r| r.bad_email),
            t(|r| r.dup_key),
            t(|r| r.dup_email),
            t(|r| !r.cells[C_REPORTS].is_empty()),
            data.quoted,
            data.persons.iter().map(|p| p.depth).max().unwrap_or(0),
        );
    }
    println!(
        "type sizes (bytes): Row={} User={} ExistingUser={} PlannedRow={} Op={} Change={} Issue={}",
        std::mem::size_of::<user_import::Row>(),
        std::mem::size_of::<User>(),
        std::mem::size_of::<user_import::ExistingUser>(),
        std::mem::size_of::<user_import::PlannedRow>(),
        std::mem::size_of::<user_import::Op>(),
        std::mem::size_of::<user_import::Change>(),
        std::mem::size_of::<user_import::Issue>(),
    );
    let steps: Vec<Step> = args.only.clone().unwrap_or_else(|| Step::ALL.to_vec());
    let checking = args.only.is_none();
    // The `stream` step's file: as many new, valid users, roles created.
    let fresh = steps
        .contains(&Step::Stream)
        .then(|| generate(n, args.seed ^ 0x5eed, Shape::NewUsers).bytes);
    let creating = {
        let mut importer = importer.clone();
        let p = importer.profile_mut();
        p.unknown_roles = RolePolicy::Create;
        p.limits = p.limits.max_file_bytes(
            p.limits
                .file_bytes
                .max(2 * fresh.as_ref().map_or(0, Vec::len) as u64),
        );
        importer
    };
    let row_of_line: HashMap<u64, usize> = if checking {
        data.lines
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, i))
            .collect()
    } else {
        HashMap::new()
    };
    let mut m: HashMap<&'static str, Figures> = HashMap::new();
    let mut fetch_calls = 0u64;
    let mut plan_counts = [0usize; 6];
    let mut export_buf: Vec<u8> = Vec::new();

    for rep in 0..args.reps {
        let verify = checking && rep == 0;
        for &step in &steps {
            settle_allocator();
            let mark = heap_mark();
            let start = Clock::start(Cpu::Process);
            match step {
                Step::Ceiling => {
                    let rows = run_ceiling(&data.bytes);
                    let t = start.stop();
                    let (peak, held) = heap_since(mark);
                    m.entry(step.name())
                        .or_default()
                        .add(t, peak, held, n as u64);
                    if verify {
                        check_ceiling(&data, &rows);
                    }
                    drop(black_box(rows));
                }
                Step::Naive => {
                    let out = run_naive(&data.bytes);
                    let t = start.stop();
                    let (peak, held) = heap_since(mark);
                    m.entry(step.name())
                        .or_default()
                        .add(t, peak, held, n as u64);
                    if verify {
                        check_naive(&data, &out);
                    }
                    drop(black_box(out));
                }
                Step::Validate => {
                    let v = run_validate(&importer, &data.bytes);
                    let t = start.stop();
                    let (peak, held) = heap_since(mark);
                    m.entry(step.name())
                        .or_default()
                        .add(t, peak, held, n as u64);
                    if verify {
                        check_validation(&data, &v, &row_of_line);
                    }
                    drop(black_box(v));
                }
                Step::Plan => {
                    let before = store.calls().fetch;
                    let plan = run_plan(&importer, &data.bytes, &mut store);
                    let t = start.stop();
                    let (peak, held) = heap_since(mark);
                    fetch_calls = store.calls().fetch - before;
                    m.entry(step.name())
                        .or_default()
                        .add(t, peak, held, n as u64);
                    if verify {
                        plan_counts = check_plan(&data, &plan);
                    }
                    drop(black_box(plan));
                }
                Step::Stream => {
                    let bytes = fresh.as_deref().unwrap_or_default();
                    let mut empty = InMemoryStore::new();
                    let (report, rows, restarted) = run_stream(&creating, bytes, &mut empty);
                    let t = start.stop();
                    let (peak, held) = heap_since(mark);
                    m.entry(step.name())
                        .or_default()
                        .add(t, peak, held, n as u64);
                    if verify {
                        assert!(!restarted, "MISMATCH stream: the file was planned whole");
                        assert_eq!(rows, n as u64, "MISMATCH stream: rows handed over");
                        assert_eq!(report.summary.added, n as u64, "MISMATCH stream: added");
                        assert!(empty.is_empty(TENANT), "MISMATCH stream: a dry run wrote");
                    }
                    drop(black_box(report));
                }
                Step::Export => {
                    let mut out = std::mem::take(&mut export_buf);
                    out.clear();
                    settle_allocator();
                    let mark = heap_mark(); // the buffer is reused, not counted
                    let start = Clock::start(Cpu::Process);
                    let users = run_export(&importer, &mut store, &mut out);
                    let t = start.stop();
                    let (peak, held) = heap_since(mark);
                    m.entry(step.name()).or_default().add(t, peak, held, users);
                    if verify {
                        check_export(&importer, &mut store, &out, users);
                    }
                    export_buf = black_box(out);
                }
            }
        }
    }

    let mb = |b: f64| b / 1e6;
    let step_file = |step: Step| match (step, &fresh) {
        (Step::Stream, Some(bytes)) => bytes.len(),
        _ => file_len,
    };
    for &step in &steps {
        let s = m[step.name()];
        let unit = if step == Step::Export {
            "users"
        } else {
            "rows"
        };
        println!(
            "{:<9} best {:>8.3}s {:>11} {unit}/s | cpu {:>11} {unit}/s, waited {:>4.1}% | peak heap {:>7.1} MB ({:.2}x file), held after {:>7.1} MB",
            step.name(),
            s.time.secs(),
            thousands(s.rate()),
            s.cpu_rate().map_or("n/a".to_owned(), thousands),
            s.time.waited(),
            mb(s.peak as f64),
            s.peak as f64 / step_file(step) as f64,
            mb(s.held as f64),
        );
    }
    if steps.contains(&Step::Plan) {
        let bound = n.div_ceil(batch.max(1)) as u64;
        common::alloc::print_peak_trace("plan step");
        println!(
            "plan: store fetch calls={fetch_calls} (ceil(rows/batch)={bound}; goal <= {bound} + a constant)"
        );
    }
    if !checking {
        println!("(--only: checks and the ratio line skipped)");
        return;
    }
    println!(
        "plan rows: {} (equal to the reference model)",
        fmt_counts(&plan_counts)
    );
    let r = |a: &str, b: &str| m[a].rate() / m[b].rate().max(1e-9);
    let plan_naive = r("plan", "naive");
    let plan_ceiling = r("plan", "ceiling");
    let validate_naive = r("validate", "naive");
    let heap = m["plan"].peak as f64 / file_len as f64;
    let stream_heap = m["stream"].peak as f64 / step_file(Step::Stream) as f64;
    let bound = n.div_ceil(batch.max(1)) as u64;
    let ok = |b: bool| if b { "met" } else { "NOT MET" };
    println!(
        "goals (at 1,000,000 rows): validate/naive>=2.0 {}; peak_heap/file<=1.5 {} (the whole plan; a dry run in segments: stream_heap/file<=1.5 {}); fetch calls<=ceil(rows/batch)+2 {}",
        ok(validate_naive >= 2.0),
        ok(heap <= 1.5),
        ok(stream_heap <= 1.5),
        ok(fetch_calls <= bound + 2),
    );
    let cr = |a: &str, b: &str| {
        let (x, y) = (m[a].cpu_rate()?, m[b].cpu_rate()?);
        Some(format!("{:.2}", x / y.max(1e-9)))
    };
    let na = || "n/a".to_owned();
    println!(
        "cpu-time ratios (less sensitive to other load): plan/naive={} plan/ceiling={} validate/naive={}",
        cr("plan", "naive").unwrap_or_else(na),
        cr("plan", "ceiling").unwrap_or_else(na),
        cr("validate", "naive").unwrap_or_else(na),
    );
    println!(
        "ratio plan/naive={plan_naive:.2} plan/ceiling={plan_ceiling:.2} validate/naive={validate_naive:.2} peak_heap/file={heap:.2} stream_heap/file={stream_heap:.2}"
    );
}

// ---------------------------------------------------------------------------
// The checks (outside the timed sections).

fn check_ceiling(d: &Dataset, rows: &[RawRow]) {
    assert_eq!(rows.len(), d.rows.len(), "MISMATCH ceiling: row count");
    for (i, (got, want)) in rows.iter().zip(&d.rows).enumerate() {
        let cells = got.cells();
        for c in 0..11 {
            assert_eq!(
                cells[c],
                want.cells[c],
                "MISMATCH ceiling: row {i} column {}",
                COLUMNS[c].header()
            );
        }
    }
}

fn check_naive(d: &Dataset, out: &Naive) {
    assert_eq!(out.rows.len(), d.rows.len(), "MISMATCH naive: row count");
    check_eq(
        "naive invalid emails vs ground truth",
        &out.bad_email,
        &d.rows_where(|r| r.bad_email),
    );
    check_eq(
        "naive duplicate user ids vs ground truth",
        &out.dup_ids,
        &d.rows_where(|r| r.dup_key),
    );
    check_eq(
        "naive duplicate emails vs ground truth",
        &out.dup_emails,
        &d.rows_where(|r| r.dup_email),
    );
}

fn check_validation(d: &Dataset, v: &Validation, row_of_line: &HashMap<u64, usize>) {
    assert!(
        v.file_issues().is_empty(),
        "MISMATCH validate: file issues {:?}",
        v.file_issues()
    );
    assert_eq!(v.rows().len(), d.rows.len(), "MISMATCH validate: row count");
    let lines: Vec<u64> = v.rows().iter().map(|r| r.line).collect();
    check_eq("validate: row lines", &lines, &d.lines);
    let issues: Vec<(u64, Code)> = v
        .issues()
        .map(|i| (i.line.expect("row issues have a line"), i.code))
        .collect();
    let unexpected: Vec<&(u64, Code)> = issues
        .iter()
        .filter(|(_, c)| {
            !matches!(
                c,
                Code::InvalidEmail | Code::DuplicateKey | Code::DuplicateEmail
            )
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "MISMATCH validate: unexpected issues {:?}",
        &unexpected[..unexpected.len().min(8)]
    );
    check_eq(
        "validate invalid_email vs ground truth",
        &rows_with(&issues, Code::InvalidEmail, row_of_line),
        &d.rows_where(|r| r.bad_email),
    );
    check_eq(
        "validate duplicate_key vs naive HashMap / ground truth",
        &rows_with(&issues, Code::DuplicateKey, row_of_line),
        &d.rows_where(|r| r.dup_key),
    );
    check_eq(
        "validate duplicate_email vs naive HashMap / ground truth",
        &rows_with(&issues, Code::DuplicateEmail, row_of_line),
        &d.rows_where(|r| r.dup_email),
    );
    let errors: Vec<usize> = v
        .rows()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.error)
        .map(|(i, _)| i)
        .collect();
    check_eq(
        "validate rows with errors",
        &errors,
        &d.rows_where(GenRow::bad),
    );
}

fn check_plan(d: &Dataset, plan: &Plan) -> [usize; 6] {
    assert_eq!(plan.rows().len(), d.rows.len(), "MISMATCH plan: row count");
    let model = reference_plan(d);
    let intent: Vec<Expect> = d.rows.iter().map(|r| r.expect).collect();
    let got: Vec<Expect> = plan.rows().iter().map(|r| Expect::of(r.planned)).collect();
    // The model and the generator's intent must agree first (a bench bug otherwise).
    let mismatch = |a: &[Expect], b: &[Expect]| -> Vec<(u64, Expect, Expect)> {
        a.iter()
            .zip(b)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| (d.lines[i], *x, *y))
            .take(8)
            .collect()
    };
    let bad = mismatch(&model, &intent);
    assert!(
        bad.is_empty(),
        "bench bug: reference model vs generator intent (line, model, intent): {bad:?}"
    );
    let bad = mismatch(&got, &model);
    if !bad.is_empty() {
        for (line, g, _) in &bad {
            let issues: Vec<String> = plan
                .row_issues(*line)
                .iter()
                .map(ToString::to_string)
                .collect();
            eprintln!("line {line}: planned {g:?}; issues {issues:?}");
        }
        panic!(
            "MISMATCH plan vs reference model (line, planned, expected): {bad:?}; counts planned {} vs model {}",
            fmt_counts(&count(got.iter().copied())),
            fmt_counts(&count(model.iter().copied()))
        );
    }
    for (r, line) in plan.rows().iter().zip(&d.lines) {
        assert_eq!(r.line, *line, "MISMATCH plan: line numbers");
    }
    count(got.into_iter())
}

fn check_export(importer: &Importer, store: &mut InMemoryStore, out: &[u8], users: u64) {
    assert_eq!(
        users,
        store.len(TENANT) as u64,
        "MISMATCH export: users written vs directory"
    );
    let v = importer.validate(out, Some("export.csv"));
    assert!(
        !v.has_errors(),
        "MISMATCH export: the export does not validate: {:?}",
        v.issues().take(5).collect::<Vec<_>>()
    );
    assert_eq!(
        v.rows().len() as u64,
        users,
        "MISMATCH export: rows read back"
    );
    let plan = importer.plan(v, store).expect("plan the export");
    let changed: Vec<(u64, Planned)> = plan
        .rows()
        .iter()
        .filter(|r| r.planned != Planned::Unchanged)
        .map(|r| (r.line, r.planned))
        .take(8)
        .collect();
    assert!(
        changed.is_empty(),
        "MISMATCH export: re-import is not all unchanged: {changed:?}"
    );
}
