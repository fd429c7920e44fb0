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
//! - `export`:   `Importer::export` of that directory.
//!
//! Every result is checked against a slower reference (the generator's ground
//! truth and a `HashMap` model of the planner); a mismatch panics. The last
//! line printed is
//!
//! ```text
//! ratio plan/naive=X.XX plan/ceiling=Y.YY validate/naive=Z.ZZ peak_heap/file=W.WW
//! ```
//!
//! (throughput ratios; `peak_heap/file` is the peak heap in use during `plan`
//! above what was in use when it started, divided by the file's size).
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

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use email_address::EmailAddress;
use serde::Deserialize;
use user_import::memory::InMemoryStore;
use user_import::{Catalog, Code, Field, Importer, Limits, Plan, Planned, User, Validation};

mod common;
use common::alloc::{Counting, heap_mark, heap_since, settle_allocator};
use common::clock::{Clock, Cpu, Measure, Sample};
use common::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------
// The generator.

const TENANT: &str = "acme";
const HEADER: [&str; 11] = [
    "userId",
    "tenant",
    "firstName",
    "lastName",
    "email",
    "enabled",
    "reportsTo",
    "roles",
    "taskNotification",
    "transaction",
    "notifyIfNewUser",
];
const C_ID: usize = 0;
const C_TENANT: usize = 1;
const C_FIRST: usize = 2;
const C_LAST: usize = 3;
const C_EMAIL: usize = 4;
const C_ENABLED: usize = 5;
const C_REPORTS: usize = 6;
const C_ROLES: usize = 7;
const C_TASK: usize = 8;
const C_TRANSACTION: usize = 9;
const C_NOTIFY: usize = 10;

const NICKS: [&str; 4] = ["Bob", "Bill", "Liz", "Kate"];
/// Deepest manager chain the generator builds (an org chart, not a linked list).
const MAX_DEPTH: u32 = 12;

/// What the plan should do with a row, as the generator intends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Expect {
    Create,
    Update,
    Unchanged,
    Delete,
    Skip,
    Fail,
}

impl Expect {
    const ALL: [Expect; 6] = [
        Expect::Create,
        Expect::Update,
        Expect::Unchanged,
        Expect::Delete,
        Expect::Skip,
        Expect::Fail,
    ];

    fn of(p: Planned) -> Expect {
        match p {
            Planned::Create => Expect::Create,
            Planned::Update => Expect::Update,
            Planned::Unchanged => Expect::Unchanged,
            Planned::Delete => Expect::Delete,
            Planned::Skip => Expect::Skip,
            _ => Expect::Fail,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expect::Create => "create",
            Expect::Update => "update",
            Expect::Unchanged => "unchanged",
            Expect::Delete => "delete",
            Expect::Skip => "skip",
            Expect::Fail => "fail",
        }
    }
}

struct Person {
    id: String,
    first: String,
    last: String,
    email: String,
    enabled: bool,
    manager: Option<usize>,
    depth: u32,
    roles: Vec<&'static str>,
    task_off: bool,
}

/// A generated row: its cells (before CSV quoting) and its ground truth.
struct GenRow {
    cells: [String; 11],
    bad_email: bool,
    dup_key: bool,
    dup_email: bool,
    expect: Expect,
}

impl GenRow {
    fn bad(&self) -> bool {
        self.bad_email || self.dup_key || self.dup_email
    }
}

struct Dataset {
    bytes: Vec<u8>,
    /// Rows in file order.
    rows: Vec<GenRow>,
    /// The line each row starts on (header = 1).
    lines: Vec<u64>,
    persons: Vec<Person>,
    /// Persons in the directory.
    stored: Vec<usize>,
    /// Cells written in quotes.
    quoted: usize,
}

#[derive(Clone, Copy)]
enum Variant {
    Create,
    Unchanged,
    Update,
}

struct Gen {
    rng: Rng,
    persons: Vec<Person>,
    stored: Vec<usize>,
    /// Clean, kept users in the directory: managers for anyone.
    mgr_existing: Vec<usize>,
    /// Clean, kept users in the directory or created by the file.
    mgr_any: Vec<usize>,
    /// Directory-only users whose email a conflicting row may borrow (once).
    borrowable: Vec<usize>,
    rows: Vec<GenRow>,
}

/// Flips the case of the first ASCII letter.
fn flip_first_case(s: &str) -> String {
    let mut out = s.to_owned();
    if let Some(i) = out.bytes().position(|b| b.is_ascii_alphabetic()) {
        let c = char::from(out.as_bytes()[i]);
        let flipped = if c.is_ascii_lowercase() {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        out.replace_range(i..=i, flipped.encode_utf8(&mut [0u8; 4]));
    }
    out
}

impl Gen {
    fn pick_manager(&mut self, existing: bool) -> Option<usize> {
        if !self.rng.chance(4_500) {
            return None;
        }
        let pool = if existing {
            &self.mgr_existing
        } else {
            &self.mgr_any
        };
        if pool.is_empty() {
            return None;
        }
        // Half from the recent past (chains), half from anywhere.
        let i = if self.rng.chance(5_000) {
            let w = pool.len().min(64);
            pool.len() - 1 - self.rng.below(w)
        } else {
            self.rng.below(pool.len())
        };
        let mut m = pool[i];
        while self.persons[m].depth + 1 >= MAX_DEPTH {
            m = self.persons[m].manager?;
        }
        Some(m)
    }

    fn new_person(&mut self, existing: bool) -> usize {
        let idx = self.persons.len();
        let mut first = (*self.rng.pick(&FIRST)).to_owned();
        let last = (*self.rng.pick(&LAST)).to_owned();
        let (fl, ll) = (fold_ascii(&first), fold_ascii(&last));
        if self.rng.chance(150) {
            first = format!("{first} \"{}\"", self.rng.pick(&NICKS));
        }
        let id = if self.rng.chance(1_000) {
            format!("{}{}{idx}", fl[..1].to_ascii_uppercase(), capitalize(&ll))
        } else {
            format!("{}{ll}{idx}", &fl[..1])
        };
        let domain = *self.rng.pick(&DOMAINS);
        let email = if self.rng.chance(1_500) {
            let d = if self.rng.chance(5_000) {
                domain.to_ascii_uppercase()
            } else {
                capitalize(domain)
            };
            format!("{}.{}{idx}@{d}", capitalize(&fl), capitalize(&ll))
        } else {
            format!("{fl}.{ll}{idx}@{domain}")
        };
        let mut roles: Vec<&'static str> = Vec::new();
        for _ in 0..self.rng.below(4) {
            let r = *self.rng.pick(&ROLES);
            if !roles.contains(&r) {
                roles.push(r);
            }
        }
        roles.sort_unstable();
        let manager = self.pick_manager(existing);
        let depth = manager.map_or(0, |m| self.persons[m].depth + 1);
        self.persons.push(Person {
            id,
            first,
            last,
            email,
            enabled: self.rng.chance(9_200),
            manager,
            depth,
            roles,
            task_off: self.rng.chance(2_000),
        });
        if existing {
            self.stored.push(idx);
        }
        idx
    }

    fn id_variant(&mut self, id: &str) -> String {
        match self.rng.below(10) {
            0 => id.to_ascii_uppercase(),
            1 => id.to_ascii_lowercase(),
            2 => flip_first_case(id),
            _ => id.to_owned(),
        }
    }

    fn bool_text(&mut self, b: bool) -> String {
        let t = if b {
            ["true", "TRUE", "True", "yes", "1", "Y"]
        } else {
            ["false", "FALSE", "False", "no", "0", "N"]
        };
        (*self.rng.pick(&t)).to_owned()
    }

    fn roles_text(&mut self, roles: &[&str]) -> String {
        let mut items: Vec<String> = roles
            .iter()
            .map(|r| {
                if self.rng.chance(500) {
                    r.to_ascii_lowercase()
                } else {
                    (*r).to_owned()
                }
            })
            .collect();
        // Any order; sometimes a repeated role or spaces around the bars.
        for i in (1..items.len()).rev() {
            let j = self.rng.below(i + 1);
            items.swap(i, j);
        }
        if !items.is_empty() && self.rng.chance(200) {
            let again = items[0].clone();
            items.push(again);
        }
        let sep = if self.rng.chance(300) { " | " } else { "|" };
        items.join(sep)
    }

    fn name_text(&mut self, name: &str) -> String {
        if self.rng.chance(200) {
            format!(" {name} ")
        } else {
            name.to_owned()
        }
    }

    fn tenant_text(&mut self) -> String {
        match self.rng.below(10) {
            0..=6 => String::new(),
            7 | 8 => TENANT.to_owned(),
            _ => TENANT.to_ascii_uppercase(),
        }
    }

    /// The cells of an upsert row for person `p`.
    fn person_cells(&mut self, p: usize, variant: Variant) -> [String; 11] {
        let (id, first, last, email, enabled, manager, roles, task_off) = {
            let q = &self.persons[p];
            (
                q.id.clone(),
                q.first.clone(),
                q.last.clone(),
                q.email.clone(),
                q.enabled,
                q.manager,
                q.roles.clone(),
                q.task_off,
            )
        };
        let exact_manager = matches!(variant, Variant::Unchanged | Variant::Update);
        let mut c: [String; 11] = Default::default();
        c[C_ID] = self.id_variant(&id);
        c[C_TENANT] = self.tenant_text();
        c[C_FIRST] = if exact_manager && self.rng.chance(500) {
            String::new() // blank keeps the current value
        } else {
            self.name_text(&first)
        };
        c[C_LAST] = self.name_text(&last);
        c[C_EMAIL] = email;
        c[C_ENABLED] = if self.rng.chance(800) {
            String::new()
        } else {
            self.bool_text(enabled)
        };
        c[C_REPORTS] = match manager {
            Some(m) if exact_manager => self.persons[m].id.clone(),
            Some(m) => {
                let mid = self.persons[m].id.clone();
                self.id_variant(&mid)
            }
            None => String::new(),
        };
        c[C_ROLES] = self.roles_text(&roles);
        c[C_TASK] = match (task_off, self.rng.below(8)) {
            (true, 0) => "off".to_owned(),
            (true, _) => "OFF".to_owned(),
            (false, 0) => "email".to_owned(),
            (false, 1 | 2) => String::new(),
            (false, _) => "Email".to_owned(),
        };
        c[C_NOTIFY] = match self.rng.below(4) {
            0 => "true".to_owned(),
            1 => "false".to_owned(),
            _ => String::new(),
        };
        if let Variant::Update = variant {
            self.mutate(p, &mut c);
        }
        c
    }

    /// Changes one thing of an existing user's row.
    fn mutate(&mut self, p: usize, c: &mut [String; 11]) {
        match self.rng.below(7) {
            0 => loop {
                let l = *self.rng.pick(&LAST);
                if l != self.persons[p].last {
                    c[C_LAST] = l.to_owned();
                    break;
                }
            },
            1 => loop {
                let f = *self.rng.pick(&FIRST);
                if f != self.persons[p].first {
                    c[C_FIRST] = f.to_owned();
                    break;
                }
            },
            2 => {
                let mut roles = self.persons[p].roles.clone();
                let r = *self.rng.pick(&ROLES);
                match roles.iter().position(|x| *x == r) {
                    Some(i) => {
                        roles.remove(i);
                        if roles.is_empty() {
                            // A blank cell would keep the roles; replace instead.
                            roles.push(if r == "Guest" { "Tester" } else { "Guest" });
                        }
                    }
                    None => roles.push(r),
                }
                c[C_ROLES] = self.roles_text(&roles);
            }
            3 => {
                let e = !self.persons[p].enabled;
                c[C_ENABLED] = self.bool_text(e);
            }
            4 => c[C_EMAIL] = flip_first_case(&self.persons[p].email),
            5 => {
                c[C_TASK] = if self.persons[p].task_off {
                    "Email"
                } else {
                    "OFF"
                }
                .to_owned();
            }
            _ => {
                // A new manager from the directory (earlier users only: no cycle).
                let current = self.persons[p].manager;
                let candidate = if self.mgr_existing.is_empty() {
                    None
                } else {
                    Some(self.mgr_existing[self.rng.below(self.mgr_existing.len())])
                };
                match candidate {
                    Some(m) if Some(m) != current && m != p => {
                        c[C_REPORTS] = self.persons[m].id.clone();
                    }
                    _ => c[C_LAST] = format!("{}-Moved", self.persons[p].last),
                }
            }
        }
    }

    fn push(&mut self, cells: [String; 11], expect: Expect) -> &mut GenRow {
        self.rows.push(GenRow {
            cells,
            bad_email: false,
            dup_key: false,
            dup_email: false,
            expect,
        });
        let last = self.rows.len() - 1;
        &mut self.rows[last]
    }

    fn invalid_email(&mut self, email: &str) -> String {
        let at = email.find('@').unwrap_or(0);
        let (local, domain) = (&email[..at], &email[at + 1..]);
        match self.rng.below(4) {
            0 => format!("{local}.{domain}"), // no @
            1 => format!("{local} x@{domain}"),
            2 => format!("@{domain}"),
            _ => format!("{local}@"),
        }
    }

    fn generate(rows: usize, seed: u64) -> Gen {
        let mut g = Gen {
            rng: Rng(seed),
            persons: Vec::with_capacity(rows + rows / 8),
            stored: Vec::new(),
            mgr_existing: Vec::new(),
            mgr_any: Vec::new(),
            borrowable: Vec::new(),
            rows: Vec::with_capacity(rows + 1),
        };
        while g.rows.len() < rows {
            // Users only in the directory (managers, email owners).
            if g.rng.chance(300) {
                let p = g.new_person(true);
                g.mgr_existing.push(p);
                g.mgr_any.push(p);
                g.borrowable.push(p);
            }
            let room = rows - g.rows.len();
            let r = g.rng.below(10_000);
            match r {
                // ~2% DELETE rows; a tenth name nobody.
                0..=199 => {
                    let present = g.rng.chance(9_000);
                    let p = g.new_person(present);
                    let mut c: [String; 11] = Default::default();
                    let id = g.persons[p].id.clone();
                    c[C_ID] = g.id_variant(&id);
                    c[C_TENANT] = g.tenant_text();
                    if g.rng.chance(5_000) {
                        c[C_EMAIL] = g.persons[p].email.clone();
                    }
                    c[C_TRANSACTION] = if g.rng.chance(9_000) {
                        "DELETE"
                    } else {
                        "delete"
                    }
                    .to_owned();
                    let expect = if present {
                        Expect::Delete
                    } else {
                        Expect::Skip
                    };
                    g.push(c, expect);
                }
                // ~0.5% invalid emails.
                200..=249 => {
                    let existing = g.rng.chance(5_000);
                    let p = g.new_person(existing);
                    let variant = if existing {
                        Variant::Unchanged
                    } else {
                        Variant::Create
                    };
                    let mut c = g.person_cells(p, variant);
                    c[C_EMAIL] = g.invalid_email(&c[C_EMAIL]);
                    g.push(c, Expect::Fail).bad_email = true;
                }
                // ~0.1% pairs of rows with the same user id.
                250..=259 if room >= 2 => {
                    let existing = g.rng.chance(5_000);
                    let p = g.new_person(existing);
                    let q = g.new_person(false);
                    let variant = if existing {
                        Variant::Unchanged
                    } else {
                        Variant::Create
                    };
                    let a = g.person_cells(p, variant);
                    let mut b = g.person_cells(q, Variant::Create);
                    let pid = g.persons[p].id.clone();
                    b[C_ID] = g.id_variant(&pid);
                    g.push(a, Expect::Fail).dup_key = true;
                    g.push(b, Expect::Fail).dup_key = true;
                }
                // ~0.1% pairs of rows with the same email (any case).
                260..=269 if room >= 2 => {
                    let existing = g.rng.chance(5_000);
                    let p = g.new_person(existing);
                    let q = g.new_person(false);
                    let variant = if existing {
                        Variant::Unchanged
                    } else {
                        Variant::Create
                    };
                    let a = g.person_cells(p, variant);
                    let mut b = g.person_cells(q, Variant::Create);
                    b[C_EMAIL] = if g.rng.chance(5_000) {
                        g.persons[p].email.to_ascii_uppercase()
                    } else {
                        g.persons[p].email.to_ascii_lowercase()
                    };
                    g.push(a, Expect::Fail).dup_email = true;
                    g.push(b, Expect::Fail).dup_email = true;
                }
                // ~0.05% identity conflicts: an existing user given another user's email.
                270..=274 if !g.borrowable.is_empty() => {
                    let s = g.borrowable.swap_remove(g.rng.below(g.borrowable.len()));
                    let p = g.new_person(true);
                    let mut c = g.person_cells(p, Variant::Unchanged);
                    c[C_EMAIL] = g.persons[s].email.clone();
                    g.push(c, Expect::Fail);
                }
                // ~0.05% new users with an email already taken in the directory.
                275..=279 if !g.borrowable.is_empty() => {
                    let s = g.borrowable.swap_remove(g.rng.below(g.borrowable.len()));
                    let p = g.new_person(false);
                    let mut c = g.person_cells(p, Variant::Create);
                    c[C_EMAIL] = flip_first_case(&g.persons[s].email);
                    g.push(c, Expect::Fail);
                }
                // The rest: half existing users (60% unchanged, 40% updated), half new.
                _ => {
                    let existing = g.rng.chance(5_000);
                    let p = g.new_person(existing);
                    let (variant, expect) = if !existing {
                        (Variant::Create, Expect::Create)
                    } else if g.rng.chance(6_000) {
                        (Variant::Unchanged, Expect::Unchanged)
                    } else {
                        (Variant::Update, Expect::Update)
                    };
                    let c = g.person_cells(p, variant);
                    g.push(c, expect);
                    if existing {
                        g.mgr_existing.push(p);
                    }
                    g.mgr_any.push(p);
                }
            }
        }
        // File order: shuffled, so managers come before or after their reports.
        for i in (1..g.rows.len()).rev() {
            let j = g.rng.below(i + 1);
            g.rows.swap(i, j);
        }
        g
    }
}

/// Writes one cell, quoted when it must be (and sometimes when it need not,
/// as spreadsheets do); `true` when quoted.
fn write_cell(out: &mut Vec<u8>, cell: &str, rng: &mut Rng) -> bool {
    let needs =
        cell.contains([',', '"', '\n', '\r']) || cell.starts_with(' ') || cell.ends_with(' ');
    if needs || (!cell.is_empty() && rng.chance(300)) {
        out.push(b'"');
        for b in cell.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
        true
    } else {
        out.extend_from_slice(cell.as_bytes());
        false
    }
}

fn generate(rows: usize, seed: u64) -> Dataset {
    let g = Gen::generate(rows, seed);
    let mut rng = Rng(seed ^ 0x5eed);
    let mut bytes = Vec::with_capacity(rows * 128);
    bytes.extend_from_slice(HEADER.join(",").as_bytes());
    bytes.extend_from_slice(b"\r\n");
    let mut lines = Vec::with_capacity(g.rows.len());
    let mut line = 2u64;
    let mut quoted = 0;
    for r in &g.rows {
        lines.push(line);
        for (i, c) in r.cells.iter().enumerate() {
            if i > 0 {
                bytes.push(b',');
            }
            quoted += usize::from(write_cell(&mut bytes, c, &mut rng));
            line += c.matches('\n').count() as u64;
        }
        bytes.extend_from_slice(b"\r\n");
        line += 1;
    }
    Dataset {
        bytes,
        rows: g.rows,
        lines,
        persons: g.persons,
        stored: g.stored,
        quoted,
    }
}

fn store_user(p: &Person, persons: &[Person]) -> User {
    let mut b = User::builder()
        .set(Field::UserId, &p.id)
        .set(Field::FirstName, &p.first)
        .set(Field::LastName, &p.last)
        .set(Field::Email, &p.email)
        .set(Field::Enabled, if p.enabled { "true" } else { "false" })
        .set(Field::Roles, &p.roles.join("|"))
        .set(
            Field::TaskNotification,
            if p.task_off { "OFF" } else { "Email" },
        );
    if let Some(m) = p.manager {
        b = b.set(Field::ReportsTo, &persons[m].id);
    }
    b.build()
}

fn build_store(d: &Dataset) -> InMemoryStore {
    let mut store = InMemoryStore::new();
    for &p in &d.stored {
        store
            .insert(TENANT, store_user(&d.persons[p], &d.persons))
            .expect("the directory takes every generated user");
    }
    store.set_catalog(TENANT, Catalog::new().roles(ROLES));
    store
}

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

#[inline(never)]
fn run_export(importer: &Importer, store: &mut InMemoryStore, out: &mut Vec<u8>) -> u64 {
    importer.export(store, out).expect("export to memory")
}

// ---------------------------------------------------------------------------
// The references.

fn truth_set(d: &Dataset, f: impl Fn(&GenRow) -> bool) -> Vec<usize> {
    d.rows
        .iter()
        .enumerate()
        .filter(|(_, r)| f(r))
        .map(|(i, _)| i)
        .collect()
}

fn check_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    if got != want {
        let show = |v: &[T]| format!("{} items, first {:?}", v.len(), &v[..v.len().min(8)]);
        panic!(
            "MISMATCH {what}: got {}; expected {}",
            show(got),
            show(want)
        );
    }
}

/// Row indices of the issues with `code`, sorted and de-duplicated.
fn rows_with(issues: &[(u64, Code)], code: Code, row_of_line: &HashMap<u64, usize>) -> Vec<usize> {
    let mut v: Vec<usize> = issues
        .iter()
        .filter(|(_, c)| *c == code)
        .map(|(l, _)| *row_of_line.get(l).expect("an issue on a data row"))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn canon_bool(v: &str) -> Option<&'static str> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "on" => Some("true"),
        "false" | "no" | "n" | "0" | "off" => Some("false"),
        _ => None,
    }
}

fn canon_roles(v: &str, catalog: &HashMap<String, &'static str>) -> String {
    let mut r: Vec<String> = v
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            catalog
                .get(&s.to_lowercase())
                .map_or_else(|| s.to_owned(), |c| (*c).to_owned())
        })
        .collect();
    r.sort();
    r.dedup();
    r.join("|")
}

/// A plain `HashMap` model of the planner (upsert mode, blank keeps, lists
/// replace, unknown roles rejected): what each row should become.
fn reference_plan(d: &Dataset) -> Vec<Expect> {
    struct Dir {
        email: String,
        first: String,
        last: String,
        enabled: &'static str,
        manager: String,
        roles: String,
        task: &'static str,
    }
    let catalog: HashMap<String, &'static str> =
        ROLES.iter().map(|r| (r.to_lowercase(), *r)).collect();
    let mut by_id: HashMap<String, Dir> = HashMap::new();
    let mut by_email: HashMap<String, String> = HashMap::new();
    for &i in &d.stored {
        let p = &d.persons[i];
        by_id.insert(
            p.id.to_lowercase(),
            Dir {
                email: p.email.clone(),
                first: p.first.clone(),
                last: p.last.clone(),
                enabled: if p.enabled { "true" } else { "false" },
                manager: p.manager.map_or(String::new(), |m| d.persons[m].id.clone()),
                roles: p.roles.join("|"),
                task: if p.task_off { "OFF" } else { "Email" },
            },
        );
        by_email.insert(p.email.to_lowercase(), p.id.to_lowercase());
    }
    let is_delete = |r: &GenRow| r.cells[C_TRANSACTION].eq_ignore_ascii_case("delete");
    let file_ids: HashSet<String> = d
        .rows
        .iter()
        .filter(|r| !is_delete(r))
        .map(|r| r.cells[C_ID].trim().to_lowercase())
        .collect();
    d.rows
        .iter()
        .map(|r| {
            let c = &r.cells;
            if r.bad() {
                return Expect::Fail;
            }
            let id = c[C_ID].trim().to_lowercase();
            if is_delete(r) {
                return if by_id.contains_key(&id) {
                    Expect::Delete
                } else {
                    Expect::Skip
                };
            }
            let email = c[C_EMAIL].trim();
            let owner = by_email.get(&email.to_lowercase());
            let target = by_id.get(&id);
            match (target.is_some(), owner) {
                (true, Some(o)) if *o != id => return Expect::Fail, // identity_conflict
                (false, Some(_)) => return Expect::Fail,            // email_taken
                _ => {}
            }
            let m = c[C_REPORTS].trim().to_lowercase();
            if !m.is_empty() && !by_id.contains_key(&m) && !file_ids.contains(&m) {
                return Expect::Fail; // unknown manager
            }
            let Some(t) = target else {
                return Expect::Create;
            };
            // Blank keeps; anything else must equal the canonical current value.
            let differs = |file: &str, current: &str| {
                let f = file.trim();
                !f.is_empty() && f != current
            };
            let changed = differs(c[C_FIRST].as_str(), &t.first)
                || differs(&c[C_LAST], &t.last)
                || differs(email, &t.email)
                || differs(canon_bool(&c[C_ENABLED]).unwrap_or(""), t.enabled)
                || differs(&c[C_REPORTS], &t.manager)
                || differs(&canon_roles(&c[C_ROLES], &catalog), &t.roles)
                || differs(
                    match c[C_TASK].trim().to_ascii_lowercase().as_str() {
                        "off" => "OFF",
                        "email" => "Email",
                        _ => "",
                    },
                    t.task,
                );
            if changed {
                Expect::Update
            } else {
                Expect::Unchanged
            }
        })
        .collect()
}

fn count(v: impl Iterator<Item = Expect>) -> [usize; 6] {
    let mut out = [0usize; 6];
    for e in v {
        out[Expect::ALL.iter().position(|x| *x == e).unwrap_or(5)] += 1;
    }
    out
}

fn fmt_counts(c: &[usize; 6]) -> String {
    Expect::ALL
        .iter()
        .zip(c)
        .map(|(e, n)| format!("{}={n}", e.name()))
        .collect::<Vec<_>>()
        .join(" ")
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
}

impl Step {
    const ALL: [Step; 5] = [
        Step::Ceiling,
        Step::Naive,
        Step::Validate,
        Step::Plan,
        Step::Export,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Ceiling => "ceiling",
            Step::Naive => "naive",
            Step::Validate => "validate",
            Step::Plan => "plan",
            Step::Export => "export",
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
    let mut data = generate(args.rows, args.seed);
    let n = data.rows.len();
    let file_len = data.bytes.len();
    if let Some(path) = &args.write {
        std::fs::write(path, &data.bytes).expect("write the generated file");
    }
    let gen_time = t0.elapsed();
    let t1 = Instant::now();
    let mut store = build_store(&data);
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
            t(|r| r.cells[C_TRANSACTION].eq_ignore_ascii_case("delete")),
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
            s.peak as f64 / file_len as f64,
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
    let bound = n.div_ceil(batch.max(1)) as u64;
    let ok = |b: bool| if b { "met" } else { "NOT MET" };
    println!(
        "goals (at 1,000,000 rows): plan/naive>=2.0 {}; plan/ceiling>=0.45 {}; peak_heap/file<=1.5 {}; fetch calls<=ceil(rows/batch)+2 {}",
        ok(plan_naive >= 2.0),
        ok(plan_ceiling >= 0.45),
        ok(heap <= 1.5),
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
        "ratio plan/naive={plan_naive:.2} plan/ceiling={plan_ceiling:.2} validate/naive={validate_naive:.2} peak_heap/file={heap:.2}"
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
                cells[c], want.cells[c],
                "MISMATCH ceiling: row {i} column {}",
                HEADER[c]
            );
        }
    }
}

fn check_naive(d: &Dataset, out: &Naive) {
    assert_eq!(out.rows.len(), d.rows.len(), "MISMATCH naive: row count");
    check_eq(
        "naive invalid emails vs ground truth",
        &out.bad_email,
        &truth_set(d, |r| r.bad_email),
    );
    check_eq(
        "naive duplicate user ids vs ground truth",
        &out.dup_ids,
        &truth_set(d, |r| r.dup_key),
    );
    check_eq(
        "naive duplicate emails vs ground truth",
        &out.dup_emails,
        &truth_set(d, |r| r.dup_email),
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
        &truth_set(d, |r| r.bad_email),
    );
    check_eq(
        "validate duplicate_key vs naive HashMap / ground truth",
        &rows_with(&issues, Code::DuplicateKey, row_of_line),
        &truth_set(d, |r| r.dup_key),
    );
    check_eq(
        "validate duplicate_email vs naive HashMap / ground truth",
        &rows_with(&issues, Code::DuplicateEmail, row_of_line),
        &truth_set(d, |r| r.dup_email),
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
        &truth_set(d, GenRow::bad),
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
