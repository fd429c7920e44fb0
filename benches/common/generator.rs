//! The generator: a seeded users file in the canonical columns, its ground
//! truth row by row, and the directory it is planned against. Two shapes:
//!
//! - [`Shape::Mixed`] (the `pipeline` bench): a file against a directory
//!   that holds half of its users and others, with the text a real export
//!   has (non-ASCII and quoted names, mixed-case ids, values in every
//!   spelling, CRLF) and its defects: ~0.5% invalid emails, ~0.1% duplicate
//!   ids and emails, identity conflicts, ~2% `DELETE` rows; shuffled, so
//!   managers come before or after their reports;
//! - [`Shape::NewUsers`] (the `sqlite` bench): N new users, all valid, every
//!   value as it is stored (`true`/`false`, `Email`/`OFF`, roles sorted),
//!   55% with a manager earlier in the file, LF.
//!
//! Both draw people the same way (names, ids, emails, 0–3 of 12 roles,
//! manager chains at most [`MAX_DEPTH`] deep) from one seed.

use std::collections::BTreeSet;

use user_import::memory::InMemoryStore;
use user_import::{Catalog, Field, Planned, User};

use super::{DOMAINS, FIRST, LAST, ROLES, Rng, capitalize, fold_ascii};

pub const TENANT: &str = "acme";
/// The file's columns, in canonical order; their headers are the library's
/// (`Field::header`).
pub const COLUMNS: [Field; 11] = [
    Field::UserId,
    Field::Tenant,
    Field::FirstName,
    Field::LastName,
    Field::Email,
    Field::Enabled,
    Field::ReportsTo,
    Field::Roles,
    Field::TaskNotification,
    Field::Transaction,
    Field::NotifyIfNewUser,
];
pub const C_ID: usize = 0;
pub const C_TENANT: usize = 1;
pub const C_FIRST: usize = 2;
pub const C_LAST: usize = 3;
pub const C_EMAIL: usize = 4;
pub const C_ENABLED: usize = 5;
pub const C_REPORTS: usize = 6;
pub const C_ROLES: usize = 7;
pub const C_TASK: usize = 8;
pub const C_TRANSACTION: usize = 9;
pub const C_NOTIFY: usize = 10;

const NICKS: [&str; 4] = ["Bob", "Bill", "Liz", "Kate"];
/// Deepest manager chain the generator builds (an org chart, not a linked list).
pub const MAX_DEPTH: u32 = 12;

/// Which file to generate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A file against a directory: creates, updates, unchanged rows,
    /// deletes and failures, in messy text.
    Mixed,
    /// New, valid users in canonical text.
    NewUsers,
}

/// What the plan should do with a row, as the generator intends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Expect {
    Create,
    Update,
    Unchanged,
    Delete,
    Skip,
    Fail,
}

impl Expect {
    pub const ALL: [Expect; 6] = [
        Expect::Create,
        Expect::Update,
        Expect::Unchanged,
        Expect::Delete,
        Expect::Skip,
        Expect::Fail,
    ];

    pub fn of(p: Planned) -> Expect {
        match p {
            Planned::Create => Expect::Create,
            Planned::Update => Expect::Update,
            Planned::Unchanged => Expect::Unchanged,
            Planned::Delete => Expect::Delete,
            Planned::Skip => Expect::Skip,
            _ => Expect::Fail,
        }
    }

    pub fn name(self) -> &'static str {
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

/// A generated user, with the values a directory holds for them (all
/// canonical: `true`/`false`, `Email`/`OFF`, roles sorted).
pub struct Person {
    pub id: String,
    pub first: String,
    pub last: String,
    pub email: String,
    pub enabled: bool,
    pub manager: Option<usize>,
    pub depth: u32,
    pub roles: Vec<&'static str>,
    pub task_off: bool,
}

impl Person {
    pub fn enabled_text(&self) -> &'static str {
        if self.enabled { "true" } else { "false" }
    }

    pub fn task_text(&self) -> &'static str {
        if self.task_off { "OFF" } else { "Email" }
    }
}

/// A generated row: its cells (before CSV quoting) and its ground truth.
pub struct GenRow {
    pub cells: [String; 11],
    pub bad_email: bool,
    pub dup_key: bool,
    pub dup_email: bool,
    pub expect: Expect,
}

impl GenRow {
    pub fn bad(&self) -> bool {
        self.bad_email || self.dup_key || self.dup_email
    }

    pub fn is_delete(&self) -> bool {
        self.cells[C_TRANSACTION].eq_ignore_ascii_case("delete")
    }
}

pub struct Dataset {
    pub bytes: Vec<u8>,
    /// Rows in file order.
    pub rows: Vec<GenRow>,
    /// The line each row starts on (header = 1).
    pub lines: Vec<u64>,
    /// Everyone: the file's users and the directory's, by index.
    pub persons: Vec<Person>,
    /// Persons in the directory.
    pub stored: Vec<usize>,
    /// Cells written in quotes.
    pub quoted: usize,
    /// The roles the persons hold, sorted.
    pub roles: Vec<&'static str>,
}

impl Dataset {
    /// Indices of the rows for which `f` holds.
    pub fn rows_where(&self, f: impl Fn(&GenRow) -> bool) -> Vec<usize> {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| f(r))
            .map(|(i, _)| i)
            .collect()
    }

    /// The directory: the stored persons, and the roles as its catalog.
    pub fn store(&self) -> InMemoryStore {
        let mut store = InMemoryStore::new();
        for &p in &self.stored {
            store
                .insert(TENANT, self.user(p))
                .expect("the directory takes every generated user");
        }
        store.set_catalog(TENANT, Catalog::new().roles(ROLES));
        store
    }

    /// Person `p` as the directory holds them.
    fn user(&self, p: usize) -> User {
        let p = &self.persons[p];
        let mut b = User::builder()
            .set(Field::UserId, &p.id)
            .set(Field::FirstName, &p.first)
            .set(Field::LastName, &p.last)
            .set(Field::Email, &p.email)
            .set(Field::Enabled, p.enabled_text())
            .set(Field::Roles, &p.roles.join("|"))
            .set(Field::TaskNotification, p.task_text());
        if let Some(m) = p.manager {
            b = b.set(Field::ReportsTo, &self.persons[m].id);
        }
        b.build()
    }
}

/// A file of `rows` rows of `shape`, from `seed`.
pub fn generate(rows: usize, seed: u64, shape: Shape) -> Dataset {
    let mut g = Gen {
        rng: Rng(seed),
        shape,
        persons: Vec::with_capacity(rows + rows / 8),
        stored: Vec::new(),
        mgr_existing: Vec::new(),
        mgr_any: Vec::new(),
        borrowable: Vec::new(),
        rows: Vec::with_capacity(rows + 1),
    };
    let (eol, mut quote_some): (&[u8], _) = match shape {
        Shape::Mixed => {
            g.mixed(rows);
            (b"\r\n", Some(Rng(seed ^ 0x5eed)))
        }
        Shape::NewUsers => {
            g.new_users(rows);
            (b"\n", None)
        }
    };
    let mut bytes = Vec::with_capacity(rows * 128);
    bytes.extend_from_slice(COLUMNS.map(Field::header).join(",").as_bytes());
    bytes.extend_from_slice(eol);
    let mut lines = Vec::with_capacity(g.rows.len());
    let mut line = 2u64;
    let mut quoted = 0;
    for r in &g.rows {
        lines.push(line);
        for (i, c) in r.cells.iter().enumerate() {
            if i > 0 {
                bytes.push(b',');
            }
            quoted += usize::from(write_cell(&mut bytes, c, quote_some.as_mut()));
            line += c.matches('\n').count() as u64;
        }
        bytes.extend_from_slice(eol);
        line += 1;
    }
    let roles: BTreeSet<&'static str> = g
        .persons
        .iter()
        .flat_map(|p| p.roles.iter().copied())
        .collect();
    Dataset {
        bytes,
        rows: g.rows,
        lines,
        persons: g.persons,
        stored: g.stored,
        quoted,
        roles: roles.into_iter().collect(),
    }
}

/// Writes one cell, quoted when it must be (and, given `quote_some`,
/// sometimes when it need not, as spreadsheets do); `true` when quoted.
fn write_cell(out: &mut Vec<u8>, cell: &str, quote_some: Option<&mut Rng>) -> bool {
    let needs =
        cell.contains([',', '"', '\n', '\r']) || cell.starts_with(' ') || cell.ends_with(' ');
    if needs || (!cell.is_empty() && quote_some.is_some_and(|rng| rng.chance(300))) {
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

#[derive(Clone, Copy)]
enum Variant {
    Create,
    Unchanged,
    Update,
}

struct Gen {
    rng: Rng,
    shape: Shape,
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
    /// An index into a pool of `len` managers: half from the recent past
    /// (chains), half from anywhere.
    fn recent_or_any(&mut self, len: usize) -> usize {
        if self.rng.chance(5_000) {
            len - 1 - self.rng.below(len.min(64))
        } else {
            self.rng.below(len)
        }
    }

    /// `m`, or the first of its managers under whom a report stays within
    /// [`MAX_DEPTH`].
    fn within_depth(&self, mut m: usize) -> usize {
        while self.persons[m].depth + 1 >= MAX_DEPTH {
            m = self.persons[m]
                .manager
                .expect("a user below the top has a manager");
        }
        m
    }

    /// A manager for a new person (`existing`: in the directory): 45% have
    /// one, from the directory for a directory user, from anyone kept
    /// otherwise.
    fn pick_manager(&mut self, existing: bool) -> Option<usize> {
        if !self.rng.chance(4_500) {
            return None;
        }
        let len = if existing {
            self.mgr_existing.len()
        } else {
            self.mgr_any.len()
        };
        if len == 0 {
            return None;
        }
        let i = self.recent_or_any(len);
        let m = if existing {
            self.mgr_existing[i]
        } else {
            self.mgr_any[i]
        };
        Some(self.within_depth(m))
    }

    /// A manager among the persons before `idx`, for 55% of them.
    fn pick_earlier(&mut self, idx: usize) -> Option<usize> {
        if idx == 0 || !self.rng.chance(5_500) {
            return None;
        }
        let m = self.recent_or_any(idx);
        Some(self.within_depth(m))
    }

    fn new_person(&mut self, existing: bool) -> usize {
        let idx = self.persons.len();
        let mixed = self.shape == Shape::Mixed;
        let mut first = (*self.rng.pick(&FIRST)).to_owned();
        let last = (*self.rng.pick(&LAST)).to_owned();
        let (fl, ll) = (fold_ascii(&first), fold_ascii(&last));
        if mixed && self.rng.chance(150) {
            first = format!("{first} \"{}\"", self.rng.pick(&NICKS));
        }
        // `jsmith42`; sometimes `JSmith42` (matched case-insensitively).
        let id = if self.rng.chance(1_000) {
            format!("{}{}{idx}", fl[..1].to_ascii_uppercase(), capitalize(&ll))
        } else {
            format!("{}{ll}{idx}", &fl[..1])
        };
        let domain = *self.rng.pick(&DOMAINS);
        let email = if self.rng.chance(1_500) {
            let d = if !mixed {
                domain.to_owned()
            } else if self.rng.chance(5_000) {
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
        let manager = if mixed {
            self.pick_manager(existing)
        } else {
            self.pick_earlier(idx)
        };
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

    /// `rows` new users, then their rows in the same order, every value as
    /// stored; the tenant blank or named.
    fn new_users(&mut self, rows: usize) {
        for _ in 0..rows {
            self.new_person(false);
        }
        for p in 0..rows {
            let tenant = if self.rng.chance(3_000) { TENANT } else { "" };
            let notify = match self.rng.below(4) {
                0 => "true",
                1 => "false",
                _ => "",
            };
            let q = &self.persons[p];
            let cells = [
                q.id.clone(),
                tenant.to_owned(),
                q.first.clone(),
                q.last.clone(),
                q.email.clone(),
                q.enabled_text().to_owned(),
                q.manager
                    .map_or(String::new(), |m| self.persons[m].id.clone()),
                q.roles.join("|"),
                q.task_text().to_owned(),
                String::new(), // transaction: blank (not DELETE)
                notify.to_owned(),
            ];
            self.push(cells, Expect::Create);
        }
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

    /// A person, in the directory half the time, and how a row gives them
    /// as they are: unchanged, or a create.
    fn kept_or_new(&mut self) -> (usize, Variant) {
        let existing = self.rng.chance(5_000);
        let p = self.new_person(existing);
        let variant = if existing {
            Variant::Unchanged
        } else {
            Variant::Create
        };
        (p, variant)
    }

    /// Two rows sharing the user id (`same_id`) or the email (any case):
    /// both fail.
    fn duplicate_pair(&mut self, same_id: bool) {
        let (p, variant) = self.kept_or_new();
        let q = self.new_person(false);
        let a = self.person_cells(p, variant);
        let mut b = self.person_cells(q, Variant::Create);
        if same_id {
            let pid = self.persons[p].id.clone();
            b[C_ID] = self.id_variant(&pid);
        } else {
            b[C_EMAIL] = if self.rng.chance(5_000) {
                self.persons[p].email.to_ascii_uppercase()
            } else {
                self.persons[p].email.to_ascii_lowercase()
            };
        }
        for cells in [a, b] {
            let r = self.push(cells, Expect::Fail);
            r.dup_key = same_id;
            r.dup_email = !same_id;
        }
    }

    /// A row whose email a directory-only user holds: an existing user's
    /// (`existing`, the email as it is) or a new user's (the email in
    /// another case). It fails.
    fn taken_email(&mut self, existing: bool) {
        let s = self
            .borrowable
            .swap_remove(self.rng.below(self.borrowable.len()));
        let p = self.new_person(existing);
        let (variant, email) = if existing {
            (Variant::Unchanged, self.persons[s].email.clone())
        } else {
            (Variant::Create, flip_first_case(&self.persons[s].email))
        };
        let mut c = self.person_cells(p, variant);
        c[C_EMAIL] = email;
        self.push(c, Expect::Fail);
    }

    /// The rows of a [`Shape::Mixed`] file.
    fn mixed(&mut self, rows: usize) {
        while self.rows.len() < rows {
            // Users only in the directory (managers, email owners).
            if self.rng.chance(300) {
                let p = self.new_person(true);
                self.mgr_existing.push(p);
                self.mgr_any.push(p);
                self.borrowable.push(p);
            }
            let room = rows - self.rows.len();
            let r = self.rng.below(10_000);
            match r {
                // ~2% DELETE rows; a tenth name nobody.
                0..=199 => {
                    let present = self.rng.chance(9_000);
                    let p = self.new_person(present);
                    let mut c: [String; 11] = Default::default();
                    let id = self.persons[p].id.clone();
                    c[C_ID] = self.id_variant(&id);
                    c[C_TENANT] = self.tenant_text();
                    if self.rng.chance(5_000) {
                        c[C_EMAIL] = self.persons[p].email.clone();
                    }
                    c[C_TRANSACTION] = if self.rng.chance(9_000) {
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
                    self.push(c, expect);
                }
                // ~0.5% invalid emails.
                200..=249 => {
                    let (p, variant) = self.kept_or_new();
                    let mut c = self.person_cells(p, variant);
                    c[C_EMAIL] = self.invalid_email(&c[C_EMAIL]);
                    self.push(c, Expect::Fail).bad_email = true;
                }
                // ~0.1% pairs of rows with the same user id, ~0.1% with
                // the same email.
                250..=269 if room >= 2 => self.duplicate_pair(r < 260),
                // ~0.05% identity conflicts: an existing user given another
                // user's email; ~0.05% new users with an email already taken
                // in the directory.
                270..=279 if !self.borrowable.is_empty() => self.taken_email(r < 275),
                // The rest: half existing users (60% unchanged, 40% updated), half new.
                _ => {
                    let existing = self.rng.chance(5_000);
                    let p = self.new_person(existing);
                    let (variant, expect) = if !existing {
                        (Variant::Create, Expect::Create)
                    } else if self.rng.chance(6_000) {
                        (Variant::Unchanged, Expect::Unchanged)
                    } else {
                        (Variant::Update, Expect::Update)
                    };
                    let c = self.person_cells(p, variant);
                    self.push(c, expect);
                    if existing {
                        self.mgr_existing.push(p);
                    }
                    self.mgr_any.push(p);
                }
            }
        }
        // File order: shuffled, so managers come before or after their reports.
        for i in (1..self.rows.len()).rev() {
            let j = self.rng.below(i + 1);
            self.rows.swap(i, j);
        }
    }
}
