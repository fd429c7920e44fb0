//! The SQLite benchmark: the `import` command's adapter (`SqliteStore`, the
//! model `UserStore` in `examples/import/sqlite_store.rs`) beside the plain
//! prepared `INSERT` a team would write, measured in the same process, on
//! the same rows, into the same schema.
//!
//! ```text
//! cargo bench --bench sqlite -- --rows 100000       # default under `cargo bench`
//! cargo bench --bench sqlite -- --quick             # smoke run (2,000 rows, 1 repetition)
//! ```
//!
//! Steps, each run `--reps` times (interleaved, best time kept), each on a
//! fresh, empty database file in a temporary directory (removed afterwards):
//!
//! - `import`: `Importer::run` (validate + plan + apply) of a generated users
//!   file of N new users (the canonical columns, all valid, a few roles,
//!   chains of managers) through `SqliteStore`, with the default all-or-nothing
//!   policy (one transaction) and `RolePolicy::Create`;
//! - `insert`: the baseline: the same rows (the same column values, the
//!   normalized columns, versions from the same counter, the roles and the
//!   `user_roles` rows) written with plain prepared `INSERT`s in one
//!   transaction with rusqlite, into the schema `SqliteStore::open` creates;
//! - `phases`: the import again, with `Importer::validate`, `Importer::plan`
//!   and `Importer::apply` timed apart, and the time spent inside the
//!   store's methods measured (so the library's own share of `apply` shows);
//! - `ablation`: the `insert` again, five times, each adding one more of the
//!   ways of writing a new user op by op (a SAVEPOINT per batch, one per
//!   user, a version per user from the counter, roles by name, owned bound
//!   values), as the adapter's fallback pass does, to show what each costs
//!   without the library;
//! - `import-mem`, `insert-mem`: `import` and `insert` on an in-memory
//!   database (`SqliteStore::open_in_memory`), for reference: no file, no sync;
//! - `import-wal`, `insert-wal`: `import` and `insert` on a file database in
//!   WAL mode with `synchronous=NORMAL` (what many services run), to show
//!   what the adapter's durability (a rollback journal, `synchronous=FULL`)
//!   costs, on both sides alike.
//!
//! After every run the database is read back and checked: the users as
//! `SqliteStore::scan` gives them (user id, email, last name, roles) must
//! equal the generated users, every column of `users` (values, normalized
//! columns), the roles, the `user_roles` rows, the versions and the version
//! counter must be the same as after the first run, and the import's report
//! must say N Added, 0 Failed (and a Roles Added per role used). A
//! mismatch panics. The last line printed is
//!
//! ```text
//! ratio import/insert=X.XX
//! ```
//!
//! (import rows/s ÷ insert rows/s, best wall times, file databases).
//!
//! Other flags: `--reps N` (default 3), `--seed N`, `--batch N` (the
//! profile's batch size), `--threads N` (the profile's reading threads;
//! default 1; the `import` command uses the machine's cores), `--only STEP[,STEP]`. Run without
//! `--bench` (as `cargo test --benches` does) it is a 2,000-row smoke test.
//! See `benches/README.md` for results.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use user_import::{
    Catalog, ExistingUser, Fetch, Importer, Limits, Op, OpOutcome, RolePolicy, UserStore, normalize,
};

// The adapter has helpers (locations, locks, read-only opening) this bench
// does not use.
#[allow(dead_code)]
#[path = "../examples/import/sqlite_store.rs"]
mod sqlite_store;

use sqlite_store::SqliteStore;

mod common;
use common::clock::{Clock, Cpu, Measure, Sample};
use common::generator::{Dataset, Person, Shape, TENANT, generate};
use common::thousands;

// ---------------------------------------------------------------------------
// The measured steps.

/// The crate: validate + plan + apply, one call.
#[inline(never)]
fn run_import(importer: &Importer, bytes: &[u8], store: &mut SqliteStore) -> user_import::Report {
    importer
        .run(bytes, Some("users.csv"), store)
        .expect("import into SQLite")
}

/// The same users in `users` as `SqliteStore::open` creates it, with the
/// same values as the adapter writes (`user_values` in sqlite_store.rs):
/// the fields as written, the tenant and the `normalize`d id, email and
/// manager, no custom attributes, and a fresh version for every user from
/// the `counters` table.
const INSERT_USER: &str = "
INSERT INTO users (user_id, first_name, last_name, email, enabled, reports_to, location,
                   department_id, group_name, permissions, sso, task_notification,
                   tenant, user_id_norm, email_norm, reports_to_norm, custom, version)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, NULL, NULL, NULL, ?7, ?8, ?9, ?10, ?11, NULL, ?12)";

/// Runs [`INSERT_USER`] for person `p`.
fn insert_user(
    stmt: &mut rusqlite::Statement<'_>,
    d: &Dataset,
    p: &Person,
    tenant: &str,
    version: i64,
) -> rusqlite::Result<usize> {
    let manager = p.manager.map(|m| d.persons[m].id.as_str());
    stmt.execute(params![
        p.id,
        p.first,
        p.last,
        p.email,
        p.enabled_text(),
        manager,
        p.task_text(),
        tenant,
        normalize(&p.id),
        normalize(&p.email),
        manager.map(normalize),
        version,
    ])
}

/// The baseline: plain prepared `INSERT`s in one transaction.
#[inline(never)]
fn run_insert(conn: &Connection, d: &Dataset) -> rusqlite::Result<()> {
    // IMMEDIATE, as `SqliteStore::begin`.
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let tenant = normalize(TENANT);
    let mut role_ids: HashMap<&str, i64> = HashMap::with_capacity(d.roles.len());
    {
        let mut add_role =
            tx.prepare("INSERT INTO roles (tenant, name, name_norm) VALUES (?1, ?2, ?3)")?;
        for &r in &d.roles {
            add_role.execute(params![tenant, r, normalize(r)])?;
            role_ids.insert(r, tx.last_insert_rowid());
        }
    }
    // One version per user from the store's counter, taken in one step.
    let n = d.persons.len() as i64;
    let last: i64 = tx.query_row(
        "UPDATE counters SET value = value + ?1 WHERE name = 'version' RETURNING value",
        [n],
        |r| r.get(0),
    )?;
    let first_version = last - n + 1;
    {
        let mut add_user = tx.prepare(INSERT_USER)?;
        let mut add_user_role =
            tx.prepare("INSERT INTO user_roles (user, role) VALUES (?1, ?2)")?;
        for (i, p) in d.persons.iter().enumerate() {
            insert_user(&mut add_user, d, p, &tenant, first_version + i as i64)?;
            let row = tx.last_insert_rowid();
            for r in &p.roles {
                add_user_role.execute(params![row, role_ids[r]])?;
            }
        }
    }
    tx.commit()
}

/// The ablation: the baseline's rows written the adapter's way, one of its
/// ways added at a time (cumulative), without the library. Level 1 adds a
/// SAVEPOINT per batch of `batch` users (as `SqliteStore::apply`, with
/// rusqlite's statements); 2 adds one per user inside it (as `apply_op`
/// runs in); 3 takes each user's version from the counter
/// (`UPDATE ... RETURNING`, as `next_version`); 4 sets roles by name
/// (`DELETE FROM user_roles`, then one `INSERT ... SELECT` by normalized
/// role name per role, as `set_roles` does for an update); 5 binds owned
/// `Value`s for all 18 columns through `prepare_cached`. Level 5 is the
/// op-by-op way of writing a user, without the library; the adapter takes
/// per-op savepoints only in its second pass over a batch in which an op
/// failed, and binds its values borrowed.
const ABLATION: [&str; 5] = [
    "+batch savepoints",
    "+savepoint per user",
    "+version per user",
    "+roles by name",
    "+owned values",
];

#[inline(never)]
fn run_ablation(
    conn: &Connection,
    d: &Dataset,
    level: usize,
    batch: usize,
) -> rusqlite::Result<()> {
    const SP: &str = "SAVEPOINT _rusqlite_sp";
    const RELEASE: &str = "RELEASE _rusqlite_sp";
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let tenant = normalize(TENANT);
    let mut role_ids: HashMap<&str, i64> = HashMap::with_capacity(d.roles.len());
    for &r in &d.roles {
        tx.prepare_cached(
            "INSERT INTO roles (tenant, name, name_norm) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant, name_norm) DO NOTHING",
        )?
        .execute(params![tenant, r, normalize(r)])?;
        role_ids.insert(r, tx.last_insert_rowid());
    }
    let n = d.persons.len() as i64;
    let first_version = if level >= 3 {
        0
    } else {
        let last: i64 = tx.query_row(
            "UPDATE counters SET value = value + ?1 WHERE name = 'version' RETURNING value",
            [n],
            |r| r.get(0),
        )?;
        last - n + 1
    };
    let full_insert = "
INSERT INTO users (user_id, first_name, last_name, email, enabled, reports_to, location,
                   department_id, group_name, permissions, sso, task_notification,
                   tenant, user_id_norm, email_norm, reports_to_norm, custom, version)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
    let mut add_user = tx.prepare(INSERT_USER)?;
    let mut add_user_role = tx.prepare("INSERT INTO user_roles (user, role) VALUES (?1, ?2)")?;
    for (c, chunk) in d.persons.chunks(batch.max(1)).enumerate() {
        tx.execute_batch(SP)?;
        for (j, p) in chunk.iter().enumerate() {
            if level >= 2 {
                tx.execute_batch(SP)?;
            }
            let version = if level >= 3 {
                tx.prepare_cached(
                    "UPDATE counters SET value = value + 1 WHERE name = 'version' RETURNING value",
                )?
                .query_row([], |r| r.get::<_, i64>(0))?
            } else {
                first_version + (c * batch + j) as i64
            };
            let manager = p.manager.map(|m| d.persons[m].id.as_str());
            if level >= 5 {
                let text = |v: Option<&str>| v.map_or(Value::Null, |v| Value::Text(v.to_owned()));
                let values = vec![
                    text(Some(&p.id)),
                    text(Some(&p.first)),
                    text(Some(&p.last)),
                    text(Some(&p.email)),
                    text(Some(p.enabled_text())),
                    text(manager),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    text(Some(p.task_text())),
                    Value::Text(tenant.clone()),
                    Value::Text(normalize(&p.id)),
                    Value::Text(normalize(&p.email)),
                    text(manager.map(normalize).as_deref()),
                    Value::Null,
                    Value::Integer(version),
                ];
                tx.prepare_cached(full_insert)?
                    .execute(rusqlite::params_from_iter(values))?;
            } else {
                insert_user(&mut add_user, d, p, &tenant, version)?;
            }
            let row = tx.last_insert_rowid();
            if level >= 4 {
                tx.prepare_cached("DELETE FROM user_roles WHERE user = ?1")?
                    .execute([row])?;
                let mut add = tx.prepare_cached(
                    "INSERT INTO user_roles (user, role)
                     SELECT ?1, id FROM roles WHERE tenant = ?2 AND name_norm = ?3",
                )?;
                for r in &p.roles {
                    add.execute(params![row, tenant, normalize(r)])?;
                }
            } else {
                for r in &p.roles {
                    add_user_role.execute(params![row, role_ids[r]])?;
                }
            }
            if level >= 2 {
                tx.execute_batch(RELEASE)?;
            }
        }
        tx.execute_batch(RELEASE)?;
    }
    drop((add_user, add_user_role));
    tx.commit()
}

/// A `UserStore` that forwards to `SqliteStore` and times each call, to
/// tell the adapter's time (SQL) from the library's.
struct Timed<'a> {
    inner: &'a mut SqliteStore,
    read: Duration,
    fetch_calls: u64,
    apply: Duration,
    apply_calls: u64,
    ops: u64,
    tx: Duration,
}

impl<'a> Timed<'a> {
    fn new(inner: &'a mut SqliteStore) -> Timed<'a> {
        Timed {
            inner,
            read: Duration::ZERO,
            fetch_calls: 0,
            apply: Duration::ZERO,
            apply_calls: 0,
            ops: 0,
            tx: Duration::ZERO,
        }
    }
}

impl UserStore for Timed<'_> {
    type Error = rusqlite::Error;

    fn catalog(&mut self, tenant: &str) -> rusqlite::Result<Catalog> {
        let t = Instant::now();
        let r = self.inner.catalog(tenant);
        self.read += t.elapsed();
        r
    }

    fn fetch(&mut self, request: &Fetch) -> rusqlite::Result<Vec<ExistingUser>> {
        let t = Instant::now();
        let r = self.inner.fetch(request);
        self.read += t.elapsed();
        self.fetch_calls += 1;
        r
    }

    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<Vec<ExistingUser>> {
        let t = Instant::now();
        let r = self.inner.scan(tenant, after, limit);
        self.read += t.elapsed();
        r
    }

    fn count(&mut self, tenant: &str) -> rusqlite::Result<u64> {
        let t = Instant::now();
        let r = self.inner.count(tenant);
        self.read += t.elapsed();
        r
    }

    fn apply(&mut self, tenant: &str, ops: &[Op]) -> rusqlite::Result<Vec<OpOutcome>> {
        let t = Instant::now();
        let r = self.inner.apply(tenant, ops);
        self.apply += t.elapsed();
        self.apply_calls += 1;
        self.ops += ops.len() as u64;
        r
    }

    fn begin(&mut self) -> rusqlite::Result<bool> {
        let t = Instant::now();
        let r = self.inner.begin();
        self.tx += t.elapsed();
        r
    }

    fn commit(&mut self) -> rusqlite::Result<()> {
        let t = Instant::now();
        let r = self.inner.commit();
        self.tx += t.elapsed();
        r
    }

    fn rollback(&mut self) -> rusqlite::Result<()> {
        let t = Instant::now();
        let r = self.inner.rollback();
        self.tx += t.elapsed();
        r
    }
}

/// One run of the `phases` step.
struct Phases {
    validate: Sample,
    plan: Sample,
    apply: Sample,
    /// Inside the store during `plan` (catalog, fetch, count).
    plan_store: Duration,
    fetch_calls: u64,
    /// Inside `SqliteStore::apply` during `apply`.
    apply_store: Duration,
    apply_calls: u64,
    ops: u64,
    /// Inside `begin` + `commit` (the COMMIT writes the file).
    tx: Duration,
}

#[inline(never)]
fn run_phases(importer: &Importer, bytes: &[u8], roles: u64, store: &mut SqliteStore) -> Phases {
    let mut timed = Timed::new(store);
    let c = Clock::start(Cpu::Thread);
    let v = importer.validate(bytes, Some("users.csv"));
    let validate = c.stop();
    let c = Clock::start(Cpu::Thread);
    let plan = importer.plan(v, &mut timed).expect("plan against SQLite");
    let plan_t = c.stop();
    let (plan_store, fetch_calls) = (timed.read, timed.fetch_calls);
    let c = Clock::start(Cpu::Thread);
    let report = importer.apply(&plan, &mut timed).expect("apply to SQLite");
    let apply = c.stop();
    check_report(&report, bytes_rows(bytes), roles);
    drop(black_box(plan));
    Phases {
        validate,
        plan: plan_t,
        apply,
        plan_store,
        fetch_calls,
        apply_store: timed.apply,
        apply_calls: timed.apply_calls,
        ops: timed.ops,
        tx: timed.tx,
    }
}

/// Data rows in a generated file (one line each, no quoted newlines).
fn bytes_rows(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64 - 1
}

// ---------------------------------------------------------------------------
// The checks (outside the timed sections).

fn check_report(report: &user_import::Report, n: u64, roles: u64) {
    let s = &report.summary;
    assert!(
        !report.rejected && s.added == n && s.failed == 0 && s.roles_added == roles,
        "MISMATCH import report: expected {n} Added, {roles} Roles Added, 0 Failed, not rejected; got {s} (rejected: {}); first issues: {:?}",
        report.rejected,
        report
            .issues
            .iter()
            .chain(report.rows.iter().flat_map(|r| r.issues.iter()))
            .take(5)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
}

type Key = (String, String, String, String);

/// (user id, email, last name, roles) of every generated user, sorted.
fn expected_users(d: &Dataset) -> Vec<Key> {
    let mut v: Vec<Key> = d
        .persons
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                p.email.clone(),
                p.last.clone(),
                p.roles.join("|"),
            )
        })
        .collect();
    v.sort();
    v
}

/// (user id, email, last name, roles) of every user, read back through
/// `SqliteStore::scan`, sorted.
fn scanned_users(store: &mut SqliteStore) -> Vec<Key> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .scan(TENANT, after.as_deref(), 1000)
            .expect("scan the users");
        for u in &page {
            let mut roles: Vec<&str> = u.user.roles().collect();
            roles.sort_unstable();
            out.push((
                u.user_id().to_owned(),
                u.user.email().unwrap_or("").to_owned(),
                u.user
                    .get(user_import::Field::LastName)
                    .unwrap_or("")
                    .to_owned(),
                roles.join("|"),
            ));
        }
        match page.last() {
            Some(last) if page.len() == 1000 => after = Some(normalize(last.user_id())),
            _ => break,
        }
    }
    out.sort();
    out
}

/// Everything a run leaves in the database, row ids aside.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// Every column of `users` but `id` and `version`, with the user's
    /// roles, ordered by the normalized user id.
    users: Vec<Vec<Value>>,
    /// (tenant, name, name_norm), ordered.
    roles: Vec<Vec<Value>>,
    user_roles: i64,
    /// min, max and number of distinct versions.
    versions: (i64, i64, i64),
    counter: i64,
}

fn snapshot(conn: &Connection) -> Snapshot {
    let rows = |sql: &str, width: usize| -> Vec<Vec<Value>> {
        let mut stmt = conn.prepare(sql).expect("prepare a check");
        stmt.query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())
            .expect("query a check")
            .collect::<rusqlite::Result<_>>()
            .expect("read a check")
    };
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("a check") };
    let users = rows(
        "SELECT user_id, first_name, last_name, email, enabled, reports_to, location,
                department_id, group_name, permissions, sso, task_notification, custom,
                locked, tenant, user_id_norm, email_norm, reports_to_norm,
                (SELECT group_concat(name, '|') FROM
                   (SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role
                     WHERE ur.user = u.id ORDER BY r.name))
           FROM users u ORDER BY user_id_norm",
        19,
    );
    let roles = rows(
        "SELECT tenant, name, name_norm FROM roles ORDER BY tenant, name_norm",
        3,
    );
    let versions = conn
        .query_row(
            "SELECT min(version), max(version), count(DISTINCT version) FROM users",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("versions");
    Snapshot {
        users,
        roles,
        user_roles: one("SELECT count(*) FROM user_roles"),
        versions,
        counter: one("SELECT value FROM counters WHERE name = 'version'"),
    }
}

struct Checker {
    expected: Vec<Key>,
    n: i64,
    /// The first run's snapshot, and which step made it.
    reference: Option<(Snapshot, &'static str)>,
}

impl Checker {
    fn check(&mut self, what: &'static str, store: &mut SqliteStore) {
        let got = scanned_users(store);
        if got != self.expected {
            let diff: Vec<(&Key, &Key)> = got
                .iter()
                .zip(&self.expected)
                .filter(|(a, b)| a != b)
                .take(5)
                .collect();
            panic!(
                "MISMATCH {what}: users read back ({}) differ from the generated users ({}); first (got, expected): {diff:?}",
                got.len(),
                self.expected.len()
            );
        }
        let snap = snapshot(store.connection());
        let n = self.n;
        assert_eq!(
            (snap.versions, snap.counter),
            ((1, n, n), n),
            "MISMATCH {what}: versions (min, max, distinct) and counter"
        );
        match &self.reference {
            None => self.reference = Some((snap, what)),
            Some((r, by)) => {
                if snap != *r {
                    let first = snap
                        .users
                        .iter()
                        .zip(&r.users)
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| format!("{a:?} vs {b:?}"));
                    panic!(
                        "MISMATCH {what} vs {by}: the databases differ: users {} vs {}, roles {:?} vs {:?}, user_roles {} vs {}; first differing user: {first:?}",
                        snap.users.len(),
                        r.users.len(),
                        snap.roles,
                        r.roles,
                        snap.user_roles,
                        r.user_roles
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Fresh databases in a temporary directory.

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "user-import-bench-sqlite-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).expect("create the temporary directory");
        TempDir(dir)
    }

    fn db(&self, name: &str) -> PathBuf {
        let p = self.0.join(name);
        assert!(!p.exists(), "{} exists", p.display());
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Puts a fresh database in WAL mode with `synchronous=NORMAL`, what many
/// services run (the `-wal` steps), instead of the adapter's defaults.
fn wal(conn: &Connection) {
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("journal_mode=WAL");
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous=NORMAL");
}

/// Removes a database file and its journal.
fn remove_db(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

// ---------------------------------------------------------------------------
// Arguments.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Import,
    Insert,
    Phases,
    ImportMem,
    InsertMem,
    ImportWal,
    InsertWal,
    Ablation,
}

impl Step {
    const ALL: [Step; 8] = [
        Step::Import,
        Step::Insert,
        Step::Phases,
        Step::Ablation,
        Step::ImportMem,
        Step::InsertMem,
        Step::ImportWal,
        Step::InsertWal,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Import => "import",
            Step::Insert => "insert",
            Step::Phases => "phases",
            Step::ImportMem => "import-mem",
            Step::ImportWal => "import-wal",
            Step::InsertWal => "insert-wal",
            Step::InsertMem => "insert-mem",
            Step::Ablation => "ablation",
        }
    }
}

type Args = common::args::StepArgs<Step>;

fn parse_args() -> Args {
    let steps: Vec<(Step, &str)> = Step::ALL.iter().map(|&s| (s, s.name())).collect();
    common::args::parse_step_args("sqlite", &steps, 1, false)
}

// ---------------------------------------------------------------------------

fn main() {
    let args = parse_args();
    let t0 = Instant::now();
    let data = generate(args.rows, args.seed, Shape::NewUsers);
    let n = data.persons.len();
    let file_len = data.bytes.len();
    let gen_time = t0.elapsed();

    let mut importer = Importer::new(TENANT);
    {
        let p = importer.profile_mut();
        // The default error policy (all or nothing: one transaction) and
        // mode (upsert); roles created as needed, as the `import` command does.
        p.unknown_roles = RolePolicy::Create;
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
    let tmp = TempDir::new();

    println!(
        "sqlite: rows={n} file={:.1} MB ({:.0} B/row) reps={} seed={:#x} batch={batch} threads={} sqlite={}",
        file_len as f64 / 1e6,
        file_len as f64 / n as f64,
        args.reps,
        args.seed,
        args.threads,
        rusqlite::version(),
    );
    let with_manager = data.persons.iter().filter(|p| p.manager.is_some()).count();
    let user_roles: usize = data.persons.iter().map(|p| p.roles.len()).sum();
    println!(
        "file: {n} new users, {} roles used, {user_roles} user_roles rows, {with_manager} with a manager, deepest chain {}, generated in {:.2}s",
        data.roles.len(),
        data.persons.iter().map(|p| p.depth).max().unwrap_or(0),
        gen_time.as_secs_f64(),
    );
    let (journal, sync) = {
        let path = tmp.db("pragmas.db");
        let store = SqliteStore::open(&path).expect("open a database");
        let c = store.connection();
        let j: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal_mode");
        let s: i64 = c
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("synchronous");
        let s = match s {
            0 => "off",
            1 => "normal",
            2 => "full",
            _ => "extra",
        };
        drop(store);
        remove_db(&path);
        (j, s)
    };
    println!(
        "databases: a fresh file per run in {} (journal_mode={journal}, synchronous={sync}); schema by SqliteStore::open, not timed",
        tmp.0.display(),
    );

    let steps: Vec<Step> = args.only.clone().unwrap_or_else(|| Step::ALL.to_vec());
    let mut checker = Checker {
        expected: expected_users(&data),
        n: n as i64,
        reference: None,
    };
    let mut m: HashMap<&'static str, Measure> = HashMap::new();
    let mut ph: Vec<Phases> = Vec::new();

    for rep in 0..args.reps {
        for &step in &steps {
            match step {
                Step::Import | Step::ImportMem | Step::ImportWal => {
                    let path = tmp.db(&format!("{}-{rep}.db", step.name()));
                    let mut store = if step == Step::ImportMem {
                        SqliteStore::open_in_memory()
                    } else {
                        SqliteStore::open(&path)
                    }
                    .expect("open a fresh database");
                    if step == Step::ImportWal {
                        wal(store.connection());
                    }
                    let c = Clock::start(Cpu::Thread);
                    let report = run_import(&importer, &data.bytes, &mut store);
                    let t = c.stop();
                    m.entry(step.name()).or_default().add(t);
                    check_report(&report, n as u64, data.roles.len() as u64);
                    checker.check(step.name(), &mut store);
                    drop(store);
                    remove_db(&path);
                }
                Step::Insert | Step::InsertMem | Step::InsertWal => {
                    let path = tmp.db(&format!("{}-{rep}.db", step.name()));
                    // The schema exactly as the adapter creates it, and
                    // its connection (the same pragmas: foreign keys on).
                    let mut store = if step == Step::InsertMem {
                        SqliteStore::open_in_memory()
                    } else {
                        SqliteStore::open(&path)
                    }
                    .expect("open a fresh database");
                    if step == Step::InsertWal {
                        wal(store.connection());
                    }
                    let c = Clock::start(Cpu::Thread);
                    run_insert(store.connection(), &data).expect("plain INSERTs");
                    let t = c.stop();
                    m.entry(step.name()).or_default().add(t);
                    checker.check(step.name(), &mut store);
                    drop(store);
                    remove_db(&path);
                }
                Step::Ablation => {
                    for (level, name) in ABLATION.iter().enumerate() {
                        let path = tmp.db(&format!("ablation-{level}-{rep}.db"));
                        let mut store = SqliteStore::open(&path).expect("open a fresh database");
                        let c = Clock::start(Cpu::Thread);
                        run_ablation(store.connection(), &data, level + 1, batch)
                            .expect("the ablation's INSERTs");
                        let t = c.stop();
                        m.entry(name).or_default().add(t);
                        checker.check(name, &mut store);
                        drop(store);
                        remove_db(&path);
                    }
                }
                Step::Phases => {
                    let path = tmp.db(&format!("phases-{rep}.db"));
                    let mut store = SqliteStore::open(&path).expect("open a fresh database");
                    let p = run_phases(&importer, &data.bytes, data.roles.len() as u64, &mut store);
                    checker.check("phases", &mut store);
                    ph.push(p);
                    drop(store);
                    remove_db(&path);
                }
            }
        }
    }

    for &step in &steps {
        if matches!(step, Step::Phases | Step::Ablation) {
            continue;
        }
        let s = m[step.name()];
        println!(
            "{:<10} best {:>7.3}s {:>9} rows/s | cpu {:>9} rows/s, waited for a cpu {:>4.1}%, blocked (disk) {}",
            step.name(),
            s.secs(),
            thousands(s.rate(n as u64)),
            s.cpu_rate(n as u64).map_or("n/a".to_owned(), thousands),
            s.waited(),
            s.blocked()
                .map_or("n/a".to_owned(), |b| format!("{:.3}s", b.as_secs_f64())),
        );
    }
    if !ph.is_empty() {
        print_phases(&ph, n);
    }
    if steps.contains(&Step::Ablation) {
        print_ablation(&m, &ph, n);
    }
    let has = |a: &str, b: &str| m.contains_key(a) && m.contains_key(b);
    if has("import-wal", "insert-wal") && has("import", "insert") {
        let rate = |s: &str| m[s].rate(n as u64);
        println!(
            "with journal_mode=WAL, synchronous=NORMAL: ratio import-wal/insert-wal={:.2} import-wal/import={:.2} insert-wal/insert={:.2}",
            rate("import-wal") / rate("insert-wal").max(1e-9),
            rate("import-wal") / rate("import").max(1e-9),
            rate("insert-wal") / rate("insert").max(1e-9),
        );
    }
    if has("import-mem", "insert-mem") {
        println!(
            "in memory: ratio import-mem/insert-mem={:.2}",
            m["import-mem"].rate(n as u64) / m["insert-mem"].rate(n as u64).max(1e-9)
        );
    }
    if !has("import", "insert") {
        println!("(--only without import and insert: the ratio line skipped)");
        return;
    }
    let (imp, ins) = (m["import"], m["insert"]);
    let cpu = match (imp.cpu_rate(n as u64), ins.cpu_rate(n as u64)) {
        (Some(a), Some(b)) => format!("{:.2}", a / b.max(1e-9)),
        _ => "n/a".to_owned(),
    };
    println!(
        "checks: import report {n} Added, 0 Failed, {} Roles Added; every database read back equal (scan: user id, email, last name, roles; all columns, roles, user_roles, versions 1..{n}, counter {n})",
        data.roles.len()
    );
    println!("cpu-time ratio (less sensitive to other load): import/insert={cpu}");
    println!(
        "ratio import/insert={:.2}",
        imp.rate(n as u64) / ins.rate(n as u64).max(1e-9)
    );
}

/// The `phases` lines: each phase's best over the repetitions.
fn print_phases(ph: &[Phases], n: usize) {
    let best = |f: &dyn Fn(&Phases) -> Sample| -> &Phases {
        ph.iter()
            .min_by_key(|p| f(p).wall)
            .expect("at least one run")
    };
    let v = best(&|p| p.validate);
    let p = best(&|p| p.plan);
    let a = best(&|p| p.apply);
    let secs = |d: Duration| d.as_secs_f64();
    let cpu = |s: Sample| {
        s.cpu
            .filter(|_| s.wall >= Duration::from_millis(50))
            .map_or("n/a".to_owned(), |c| thousands(n as f64 / secs(c)))
    };
    let total = secs(v.validate.wall) + secs(p.plan.wall) + secs(a.apply.wall);
    println!(
        "phases (Importer::validate, ::plan, ::apply timed apart on a fresh file database; best of each; sum {total:.3}s):"
    );
    println!(
        "  validate best {:>7.3}s {:>9} rows/s | cpu {:>9} rows/s | {:>4.1}% of the sum",
        secs(v.validate.wall),
        thousands(n as f64 / secs(v.validate.wall)),
        cpu(v.validate),
        100.0 * secs(v.validate.wall) / total,
    );
    println!(
        "  plan     best {:>7.3}s {:>9} rows/s | cpu {:>9} rows/s | {:>4.1}% of the sum | in the store (catalog, {} fetch calls) {:.3}s",
        secs(p.plan.wall),
        thousands(n as f64 / secs(p.plan.wall)),
        cpu(p.plan),
        100.0 * secs(p.plan.wall) / total,
        p.fetch_calls,
        secs(p.plan_store),
    );
    println!(
        "  apply    best {:>7.3}s {:>9} rows/s | cpu {:>9} rows/s | {:>4.1}% of the sum | in SqliteStore::apply ({} calls, {} ops) {:.3}s, begin+commit {:.3}s, the library {:.3}s",
        secs(a.apply.wall),
        thousands(n as f64 / secs(a.apply.wall)),
        cpu(a.apply),
        100.0 * secs(a.apply.wall) / total,
        a.apply_calls,
        a.ops,
        secs(a.apply_store),
        secs(a.tx),
        secs(a.apply.wall.saturating_sub(a.apply_store + a.tx)),
    );
}

/// The ablation lines: the insert, then each of the adapter's ways added,
/// with what each adds per user (wall and CPU time, best runs).
fn print_ablation(m: &HashMap<&'static str, Measure>, ph: &[Phases], n: usize) {
    let us = |d: f64| 1e6 * d / n as f64;
    let cpu = |s: &Measure| s.best_cpu.map(|c| c.as_secs_f64());
    println!(
        "ablation (the insert done the adapter's way, one way added at a time, cumulative; file databases, no library):"
    );
    let mut prev: Option<(f64, Option<f64>)> = m.get("insert").map(|s| (s.secs(), cpu(s)));
    let line = |name: &str, s: &Measure, prev: Option<(f64, Option<f64>)>| {
        let (w, c) = (s.secs(), cpu(s));
        let dw = prev.map_or(String::new(), |p| format!(" ({:+.1})", us(w - p.0)));
        let dc = match (prev.and_then(|p| p.1), c) {
            (Some(p), Some(c)) => format!(" ({:+.1})", us(c - p)),
            _ => String::new(),
        };
        println!(
            "  {:<20} best {:>7.3}s {:>9} rows/s | {:>5.1} us/user{dw:<8} | cpu {:>5} us/user{dc}",
            name,
            w,
            thousands(n as f64 / w.max(1e-9)),
            us(w),
            c.map_or("n/a".to_owned(), |c| format!("{:.1}", us(c))),
        );
        (w, c)
    };
    if let Some(s) = m.get("insert") {
        line("insert", s, None);
    }
    for name in ABLATION {
        prev = Some(line(name, &m[name], prev));
    }
    if let Some(a) = ph.iter().min_by_key(|p| p.apply.wall) {
        let w = a.apply_store.as_secs_f64();
        println!(
            "  {:<20} best {:>7.3}s {:>9} rows/s | {:>5.1} us/user (wall time inside SqliteStore::apply, from the phases)",
            "the adapter",
            w,
            thousands(n as f64 / w.max(1e-9)),
            us(w),
        );
    }
}
