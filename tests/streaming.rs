//! `Importer::run_streaming` gives what `Importer::run` gives: the same
//! report (its rows through `on_row`) and the same directory, for files
//! whose rows tie into each other and into the directory every way a small
//! pool of ids, emails, managers and role spellings allows, read in
//! segments of a few rows. A file whose rows fail only for their own
//! errors (under an error policy that imports the valid rows) goes through
//! in segments (applied as it is read, committed once); one that a segment
//! cannot decide as the whole file would is rolled back, its rows taken
//! back, and imported whole.

use std::convert::Infallible;
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use proptest::prelude::*;
use user_import::memory::InMemoryStore;
use user_import::{
    Catalog, Code, Encoding, ErrorPolicy, ExistingUser, Fetch, Field, Importer, Issue, KeyField,
    Mode, Op, OpOutcome, Phase, Profile, Progress, Report, RolePolicy, RowReport, RunOptions, User,
    UserStore,
};

const HEADER: &str =
    "userId,email,reportsTo,roles,enabled,lastName,firstName,transaction,notifyIfNewUser\n";
/// A first name long enough that a few rows fill a segment of a few
/// hundred bytes after a head of 2 KiB.
const PADDING: &str = "Maximiliana-Konstantinopoulou-Wolfeschlegelsteinhausenbergerdorff";
/// Role names as files spell them: two of them one role.
const ROLES: [&str; 5] = ["Staff", "staff", "Admin", "Sales", "Ops"];

/// A row of the file, from small pools, so that rows meet each other and
/// the directory: the same ids, emails and managers, roles spelled two ways.
#[derive(Debug, Clone)]
struct Line {
    id: Option<u8>,
    email: Option<u8>,
    manager: Option<u8>,
    role: u8,
    enabled: bool,
    last: u8,
    delete: bool,
    notify: bool,
    /// An own row: its user id left out (a delete by email, an upsert
    /// keyed by email), or its email left blank.
    drop_id: bool,
    drop_email: bool,
    /// A row with an error: `enabled` is neither true nor false.
    bad: bool,
    /// A row naming an earlier row's user by email alone.
    echo: bool,
}

fn line(ids: u8) -> impl Strategy<Value = Line> {
    (
        prop::option::weighted(0.95, 0..ids),
        prop::option::weighted(0.9, 0..ids),
        prop::option::weighted(0.5, 0..ids),
        0u8..5,
        prop::bool::weighted(0.9),
        0u8..3,
        prop::bool::weighted(0.08),
        (
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.04),
            prop::bool::weighted(0.04),
        ),
    )
        .prop_map(
            |(
                id,
                email,
                manager,
                role,
                enabled,
                last,
                delete,
                (notify, drop_id, drop_email, bad),
            )| {
                Line {
                    id,
                    email,
                    manager,
                    role,
                    enabled,
                    last,
                    delete,
                    notify,
                    drop_id,
                    drop_email,
                    bad,
                    echo: false,
                }
            },
        )
}

/// Rows mostly about users of their own (ids in file order, managers
/// before them, as exports have them), a few about any user, and a few
/// that name an earlier row's user by email alone (a delete, or an
/// upsert found by email, the earlier row sometimes without its email:
/// rows of two segments about one user); with
/// `lowercase`, some name the role `Staff` as `staff`.
fn lines() -> impl Strategy<Value = Vec<Line>> {
    let row = (
        line(40),
        prop::bool::weighted(0.97),
        prop::option::weighted(0.1, any::<u8>()),
    );
    (prop::collection::vec(row, 1..60), prop::bool::weighted(0.2)).prop_map(|(lines, lowercase)| {
        let mut out: Vec<Line> = Vec::with_capacity(lines.len());
        for (i, (mut l, own, echo)) in lines.into_iter().enumerate() {
            let i = i as u8;
            if own {
                l.id = (!l.drop_id).then_some(i);
                l.email = (!l.drop_email).then_some(i);
                l.manager = l.manager.map(|m| m % i.max(1)).filter(|_| i > 0);
            }
            if let Some(echo) = echo.filter(|_| i > 0) {
                let earlier = echo % i;
                l.id = None;
                l.email = Some(earlier);
                l.delete = echo % 2 == 0;
                l.echo = true;
                // Sometimes the earlier row names its user by id alone, so
                // that only the directory ties the two rows together.
                if echo % 3 == 0 {
                    out[usize::from(earlier)].email = None;
                }
            }
            if l.role == 1 && !lowercase {
                l.role = 0;
            }
            out.push(l);
        }
        out
    })
}

fn file_of(lines: &[Line]) -> Vec<u8> {
    let mut f = String::from(HEADER);
    let opt = |p: &str, v: Option<u8>, s: &str| v.map_or(String::new(), |v| format!("{p}{v}{s}"));
    for l in lines {
        f.push_str(&format!(
            "{},{},{},{},{},L{},{PADDING},{},{}\n",
            opt("u", l.id, ""),
            opt("e", l.email, "@x.io"),
            opt("u", l.manager, ""),
            ROLES[l.role as usize],
            if l.bad {
                "maybe"
            } else if l.enabled {
                "true"
            } else {
                "false"
            },
            l.last,
            if l.delete { "DELETE" } else { "" },
            l.notify,
        ));
    }
    f.into_bytes()
}

/// A directory user: id, email, manager, role.
type DirUser = (u8, u8, Option<u8>, u8);

/// Directory users, most with the email their id gives the file's rows.
fn directory() -> impl Strategy<Value = Vec<DirUser>> {
    let user = (
        0u8..40,
        prop::option::weighted(0.1, 0u8..40),
        prop::option::of(0u8..40),
        0u8..5,
    );
    prop::collection::vec(user, 0..30).prop_map(|users| {
        users
            .into_iter()
            .map(|(id, email, manager, role)| (id, email.unwrap_or(id), manager, role))
            .collect()
    })
}

fn store_of(dir: &[DirUser]) -> InMemoryStore {
    let mut store = InMemoryStore::new();
    let (mut ids, mut emails) = (Vec::new(), Vec::new());
    for &(id, email, manager, role) in dir {
        if ids.contains(&id) || emails.contains(&email) {
            continue;
        }
        ids.push(id);
        emails.push(email);
        let mut u = User::builder()
            .set(Field::UserId, &format!("u{id}"))
            .set(Field::Email, &format!("e{email}@x.io"))
            .set(Field::Roles, ROLES[role as usize % 4 + 1])
            .set(Field::Enabled, "true")
            .set(Field::LastName, "L0");
        if let Some(m) = manager.filter(|m| *m < id) {
            u = u.set(Field::ReportsTo, &format!("u{m}"));
        }
        store.insert("t", u.build());
    }
    store
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.6),
        0u8..10,
        prop::option::weighted(0.2, 0u64..3),
        prop::bool::weighted(0.2),
        0u8..10,
        prop::bool::weighted(0.3),
        (prop::bool::weighted(0.2), prop::bool::weighted(0.3)),
    )
        .prop_map(
            |(
                by_id,
                create_roles,
                mode,
                max_deletes,
                overridden,
                policy,
                share,
                (clear, key_only),
            )| {
                let mut p = Profile::default();
                if clear {
                    p.blank = user_import::BlankPolicy::Clear;
                }
                if key_only {
                    // Only the key required: the other may be left out.
                    p.required = vec![if by_id { Field::UserId } else { Field::Email }];
                }
                p.key = if by_id {
                    KeyField::UserId
                } else {
                    KeyField::Email
                };
                p.unknown_roles = if create_roles {
                    RolePolicy::Create
                } else {
                    RolePolicy::Reject
                };
                p.mode = match mode {
                    0 => Mode::CreateOnly,
                    1 => Mode::UpdateOnly,
                    2 => Mode::Mirror,
                    _ => Mode::Upsert,
                };
                p.on_error = match policy {
                    0..=2 => ErrorPolicy::SkipInvalid,
                    3 => ErrorPolicy::StopAfter(1),
                    4 => ErrorPolicy::StopAfter(3),
                    _ => ErrorPolicy::RejectFile,
                };
                p.guards.max_deletes = max_deletes;
                p.guards.override_guards = overridden;
                if share {
                    p.guards.max_delete_share = Some(0.05);
                    p.guards.min_removals_for_share = 1;
                }
                p
            },
        )
}

/// A report as JSON, without its times.
fn json(report: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap();
    for t in ["started_at", "planned_at", "finished_at"] {
        v["provenance"][t] = serde_json::Value::Null;
    }
    v
}

/// The directory's users and roles, without their versions (which count
/// operations in the order they ran).
fn state(store: &InMemoryStore) -> (Vec<User>, Vec<String>) {
    let mut users: Vec<User> = store.users("t").map(|u| u.user.clone()).collect();
    users.sort_by(|a, b| a.user_id().cmp(&b.user_id()));
    (users, store.roles("t"))
}

/// An in-memory store that counts its transactions.
#[derive(Clone, Default)]
struct Watched {
    inner: InMemoryStore,
    begun: u32,
    committed: u32,
    rolled_back: u32,
    applied: u32,
}

impl UserStore for Watched {
    type Error = Infallible;

    fn catalog(&mut self, tenant: &str) -> Result<Catalog, Infallible> {
        self.inner.catalog(tenant)
    }

    fn fetch(&mut self, request: &Fetch) -> Result<Vec<ExistingUser>, Infallible> {
        self.inner.fetch(request)
    }

    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ExistingUser>, Infallible> {
        self.inner.scan(tenant, after, limit)
    }

    fn count(&mut self, tenant: &str) -> Result<u64, Infallible> {
        self.inner.count(tenant)
    }

    fn apply(&mut self, tenant: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, Infallible> {
        self.applied += 1;
        self.inner.apply(tenant, ops)
    }

    fn begin(&mut self) -> Result<bool, Infallible> {
        self.begun += 1;
        self.inner.begin()
    }

    fn commit(&mut self) -> Result<(), Infallible> {
        self.committed += 1;
        self.inner.commit()
    }

    fn rollback(&mut self) -> Result<(), Infallible> {
        self.rolled_back += 1;
        self.inner.rollback()
    }
}

/// `run_streaming` of `file` in segments of `bytes`, its rows taken
/// through `on_row` (and taken back on a restart) and put in the report.
fn streamed<S: UserStore>(importer: &Importer, file: &[u8], bytes: usize, store: &mut S) -> Report {
    streamed_or_dry(importer, file, bytes, store, false)
}

/// [`streamed`], or with `dry` `dry_run_streaming`.
fn streamed_or_dry<S: UserStore>(
    importer: &Importer,
    file: &[u8],
    bytes: usize,
    store: &mut S,
    dry: bool,
) -> Report {
    let importer = importer.clone().segment_bytes(bytes);
    let (size, name) = (Some(file.len() as u64), Some("users.csv"));
    with_rows(|options| match dry {
        true => importer.dry_run_streaming(|| Ok(file), size, name, store, options),
        false => importer.run_streaming(|| Ok(file), size, name, store, options),
    })
}

/// The report `run` gives, its rows taken through `on_row` (and taken
/// back on a restart) and put in it.
fn with_rows(run: impl FnOnce(RunOptions<'_>) -> Result<Report, user_import::Error>) -> Report {
    let rows = Mutex::new(Vec::new());
    let mut keep = |row: RowReport| rows.lock().unwrap().push(row);
    let mut restart = || rows.lock().unwrap().clear();
    let options = RunOptions::new().on_row(&mut keep).on_restart(&mut restart);
    let mut report = run(options).unwrap();
    report.rows = rows.into_inner().unwrap();
    report
}

/// The report of an import of `file` that did not happen, `why` saying
/// why: read in segments of `bytes` (`abort_streaming`), and of the whole
/// file's aborted plan.
fn aborted_both(importer: &Importer, file: &[u8], bytes: usize, why: &Issue) -> (Report, Report) {
    let v = importer.validate(file, Some("users.csv"));
    let plan = importer.planner(v).abort(why.clone());
    let whole = importer.apply(&plan, &mut InMemoryStore::new()).unwrap();
    let importer = importer.clone().segment_bytes(bytes);
    let (size, name) = (Some(file.len() as u64), Some("users.csv"));
    let streamed = with_rows(|options| {
        importer.abort_streaming(|| Ok(file), size, name, why.clone(), options)
    });
    (streamed, whole)
}

/// `run` of `file`, or with `dry` the dry run of its whole plan.
fn whole_or_dry<S: UserStore>(
    importer: &Importer,
    file: &[u8],
    store: &mut S,
    dry: bool,
) -> Report {
    if dry {
        let v = importer.validate(file, Some("users.csv"));
        Report::dry_run(&importer.plan(v, store).unwrap())
    } else {
        importer.run(file, Some("users.csv"), store).unwrap()
    }
}

/// Checks that `file`, streamed in segments of `bytes` and dry-run so,
/// gives the whole plan's report and directory, each from `directory()`.
fn same_streamed_and_whole(
    importer: &Importer,
    file: &str,
    bytes: usize,
    directory: impl Fn() -> Watched,
) {
    for dry in [false, true] {
        let mut whole = directory();
        let expected = whole_or_dry(importer, file.as_bytes(), &mut whole, dry);
        let mut store = directory();
        let got = streamed_or_dry(importer, file.as_bytes(), bytes, &mut store, dry);
        assert_eq!(json(&got), json(&expected), "dry: {dry}\n{file}");
        assert_eq!(state(&store.inner), state(&whole.inner), "{file}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn streaming_gives_what_run_gives(
        dir in directory(),
        lines in lines(),
        profile in profile(),
        bytes in 60usize..300,
        acting in prop::option::of(0u8..40),
        threads in 1usize..3,
        tame in prop::bool::weighted(0.5),
        dry in prop::bool::weighted(0.4),
    ) {
        let (mut dir, mut lines, mut profile, mut acting) = (dir, lines, profile, acting);
        if tame {
            // A file that imports: upserts of users of their own (new, or
            // in the directory with the same email), roles created.
            for (i, l) in lines.iter_mut().enumerate().filter(|(_, l)| !l.echo) {
                l.id = (!l.drop_id).then_some(i as u8);
                l.email = (!l.drop_email).then_some(i as u8);
                l.manager = l.manager.filter(|&m| m < i as u8);
                l.delete = false;
            }
            for u in &mut dir {
                u.1 = u.0;
            }
            profile.mode = Mode::Upsert;
            profile.unknown_roles = RolePolicy::Create;
            acting = None;
        }
        let file = file_of(&lines);
        let mut importer = Importer::with_profile("t", profile).threads(threads);
        if let Some(a) = acting {
            importer = importer.acting_user(format!("u{a}"));
        }
        let mut whole = store_of(&dir);
        let expected = whole_or_dry(&importer, &file, &mut whole, dry);
        let mut store = store_of(&dir);
        let got = streamed_or_dry(&importer, &file, bytes, &mut store, dry);
        prop_assert_eq!(json(&got), json(&expected));
        prop_assert_eq!(state(&store), state(&whole));
        prop_assert!(!store.in_transaction());
        if dry {
            prop_assert_eq!(state(&store), state(&store_of(&dir)));
        }
    }

    #[test]
    fn an_import_that_did_not_happen_is_reported_as_its_whole_abort(
        lines in lines(),
        profile in profile(),
        bytes in 60usize..300,
        threads in 1usize..3,
        cancel in any::<bool>(),
        warning in prop::bool::weighted(0.2),
    ) {
        let file = file_of(&lines);
        let importer = Importer::with_profile("t", profile).threads(threads);
        let code = if cancel { Code::Cancelled } else { Code::StoreError };
        let why = match warning {
            // (Read whole: the rows say whether the file is rejected.)
            true => Issue::warning(code, "nothing is imported: it stopped"),
            false => Issue::error(code, "nothing is imported: it stopped"),
        };
        let (streamed, whole) = aborted_both(&importer, &file, bytes, &why);
        prop_assert_eq!(json(&streamed), json(&whole));
    }
}

/// Users u0…u{n-1}, each reporting to the one before, with a role.
fn chain(n: usize) -> Vec<u8> {
    let mut f = String::from("userId,email,reportsTo,roles,firstName\n");
    for i in 0..n {
        let manager = if i == 0 {
            String::new()
        } else {
            format!("u{}", i - 1)
        };
        f.push_str(&format!("u{i},u{i}@x.io,{manager},Staff,{PADDING}\n"));
    }
    f.into_bytes()
}

/// The default profile, creating the roles the file names.
fn creating_roles() -> Profile {
    let mut profile = Profile::default();
    profile.unknown_roles = RolePolicy::Create;
    profile
}

#[test]
fn a_clean_file_is_applied_as_it_is_read_and_committed_once() {
    let file = chain(60);
    let importer = Importer::with_profile("t", creating_roles());
    let mut store = Watched::default();
    let report = streamed(&importer, &file, 200, &mut store);
    assert_eq!(report.summary.added, 60);
    assert_eq!(report.rows.len(), 60);
    assert_eq!((store.begun, store.committed, store.rolled_back), (1, 1, 0));
    assert!(store.applied > 5, "one apply a segment: {}", store.applied);
    assert_eq!(store.inner.len("t"), 60);
}

#[test]
fn a_file_in_utf16_or_windows_1252_is_converted_and_imported_in_segments() {
    let name = format!("{PADDING} Zo\u{eb} Fran\u{e7}oise");
    let text = String::from_utf8(chain(60))
        .unwrap()
        .replace(PADDING, &name);
    let utf16 = |le: bool| {
        let mut bytes = if le {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        bytes
    };
    let latin: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    let mut windows = creating_roles();
    windows.encoding = Some(Encoding::Windows1252);
    let mut odd = utf16(true);
    odd.push(b'\n');
    for (file, profile, clean) in [
        (utf16(true), creating_roles(), true),
        (utf16(false), creating_roles(), true),
        (latin, windows, true),
        // Not UTF-16 to its end: refused whole, as `run` refuses it.
        (odd, creating_roles(), false),
    ] {
        let importer = Importer::with_profile("t", profile);
        let mut whole = Watched::default();
        let expected = importer.run(&file, Some("users.csv"), &mut whole).unwrap();
        let mut store = Watched::default();
        let got = streamed(&importer, &file, 200, &mut store);
        assert_eq!(json(&got), json(&expected));
        assert_eq!(state(&store.inner), state(&whole.inner));
        assert!(store.applied > 5, "one apply a segment: {}", store.applied);
        if clean {
            assert_eq!(got.summary.added, 60);
            assert_eq!((store.begun, store.committed, store.rolled_back), (1, 1, 0));
            let user = store.inner.get("t", "u7").unwrap();
            assert_eq!(user.user.get(Field::FirstName), Some(name.as_str()));
        } else {
            assert_eq!(got.summary.added, 0);
            assert_eq!((store.committed, store.rolled_back), (0, 1));
            assert!(store.inner.is_empty("t"));
        }
    }
}

#[test]
fn progress_counts_over_the_whole_file() {
    let n = 200;
    let file = format!("userId,email,reportsTo,roles,firstName\n{}", plain("p", n));
    let importer = Importer::with_profile("t", creating_roles()).segment_bytes(400);
    let seen = Mutex::new(Vec::new());
    let mut progress = |p: &Progress| {
        seen.lock().unwrap().push(*p);
        std::ops::ControlFlow::Continue(())
    };
    let options = RunOptions::new().on_progress(&mut progress);
    let size = Some(file.len() as u64);
    let mut store = Watched::default();
    let report = importer
        .run_streaming(|| Ok(file.as_bytes()), size, None, &mut store, options)
        .unwrap();
    assert_eq!(report.summary.added, n as u64);
    assert!(store.applied > 5, "in segments: {}", store.applied);
    let seen = seen.into_inner().unwrap();
    let (planning, applying): (Vec<Progress>, Vec<Progress>) =
        seen.iter().partition(|p| p.phase == Phase::Planning);
    // The rows of the whole file from the first segment on, estimated
    // from the share of it read (the rows are alike); exact at the end.
    let first = planning[0].rows_total;
    assert!(
        (n * 9 / 10..=n * 11 / 10).contains(&(first as usize)),
        "{first}"
    );
    assert_eq!(planning.last().unwrap().rows_total, n as u64);
    // Operations likewise: a role, and a user a row.
    let ops = n as u64 + 1;
    let first = applying[0].ops_total;
    assert!((ops * 9 / 10..=ops * 11 / 10).contains(&first), "{first}");
    assert_eq!(applying.last().unwrap().ops_total, ops);
    for p in &seen {
        assert!(
            p.rows_done <= p.rows_total && p.ops_done <= p.ops_total,
            "{p:?}"
        );
    }
    for pair in applying.windows(2) {
        assert!(pair[0].ops_done <= pair[1].ops_done, "{pair:?}");
    }
}

/// `n` rows of users of their own with no manager, named `prefix0`….
fn plain(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i},{prefix}{i}@x.io,,Staff,{PADDING}\n"))
        .collect()
}

#[test]
fn a_file_that_does_not_import_cleanly_is_rolled_back_and_imported_whole() {
    let head = "userId,email,reportsTo,roles,firstName\n";
    // A manager created further down the file; a key twice, far apart; a
    // role spelled two ways.
    let forward = format!(
        "{head}z0,z0@x.io,z1,Staff,\n{}z1,z1@x.io,,Staff,\n",
        plain("f", 30)
    );
    let twice = format!("{head}{}f3,other@x.io,,Staff,\n", plain("f", 30));
    let spelled = format!(
        "{head}s1,s1@x.io,,sales,\n{}s2,s2@x.io,,Sales,\n",
        plain("f", 30)
    );
    let importer = Importer::with_profile("t", creating_roles());
    for (file, importer) in [
        (forward, &importer),
        (twice, &importer),
        (spelled, &importer),
    ] {
        let mut whole = Watched::default();
        let expected = importer
            .run(file.as_bytes(), Some("users.csv"), &mut whole)
            .unwrap();
        let mut store = Watched::default();
        let got = streamed(importer, file.as_bytes(), 120, &mut store);
        assert_eq!(json(&got), json(&expected), "{file}");
        assert_eq!(state(&store.inner), state(&whole.inner), "{file}");
        // Read in segments first, then whole: the directory asked twice.
        assert!(
            store.inner.calls().catalog > whole.inner.calls().catalog,
            "{file}"
        );
        assert!(!store.inner.in_transaction(), "{file}");
    }
}

#[test]
fn a_rejected_file_is_read_again_in_segments_for_its_report() {
    let head = "userId,email,reportsTo,roles,firstName\n";
    let bad = |at: usize| format!("bad{at},not-an-email,,Staff,\n");
    // A row with an error at the end; two, far apart, under a policy that
    // accepts one; one at the start, under a policy that accepts none; a
    // role the directory lacks on every row (which the store's catalog
    // fails).
    let at_end = format!("{head}{}{}", plain("f", 30), bad(30));
    let two = format!("{head}{}{}{}", bad(0), plain("f", 30), bad(31));
    let first = format!("{head}{}{}", bad(0), plain("f", 30));
    let unknown_role = format!("{head}{}", plain("f", 30));
    let mut profile = creating_roles();
    let rejecting = Importer::with_profile("t", profile.clone());
    profile.on_error = ErrorPolicy::StopAfter(1);
    let one_accepted = Importer::with_profile("t", profile.clone());
    profile.on_error = ErrorPolicy::StopAfter(0);
    let none_accepted = Importer::with_profile("t", profile);
    let default = Importer::new("t");
    // Whether the first attempt applies segments (and rolls them back)
    // before the rejection shows.
    for (file, importer, applied) in [
        (at_end, &rejecting, true),
        (two, &one_accepted, true),
        (first, &none_accepted, false),
        (unknown_role, &default, false),
    ] {
        let mut whole = Watched::default();
        let expected = importer
            .run(file.as_bytes(), Some("users.csv"), &mut whole)
            .unwrap();
        assert!(expected.rejected);
        for dry in [false, true] {
            let importer = importer.clone().segment_bytes(120);
            let trickled = Trickled::default();
            let (mut keep, mut restart) = (trickled.keep(), trickled.restart());
            let options = RunOptions::new().on_row(&mut keep).on_restart(&mut restart);
            let (size, name) = (Some(file.len() as u64), Some("users.csv"));
            let mut store = Watched::default();
            let open = trickled.open(&file);
            let mut got = match dry {
                true => importer.dry_run_streaming(open, size, name, &mut store, options),
                false => importer.run_streaming(open, size, name, &mut store, options),
            }
            .unwrap();
            let read_then = trickled.rows(&mut got);
            let mut want = json(&expected);
            want["dry_run"] = serde_json::Value::Bool(dry);
            assert_eq!(json(&got), want, "{file}");
            assert!(store.inner.is_empty("t"), "{file}");
            assert!(!store.inner.in_transaction(), "{file}");
            let began = u32::from(applied && !dry);
            assert_eq!((store.begun, store.rolled_back), (began, began), "{file}");
            // In segments: the first row came before the file was read to
            // its end (read whole, every row comes after).
            assert!(read_then[0] < file.len(), "{file}");
        }
    }
}

#[test]
fn an_import_that_did_not_happen_is_reported_a_segment_at_a_time() {
    let head = "userId,email,reportsTo,roles,firstName\n";
    let bad = |at: usize| format!("bad{at},not-an-email,,Staff,\n");
    let clean = format!("{head}{}", plain("f", 30));
    // Rows with errors, under the default policy, which rejects them.
    let with_errors = format!("{head}{}{}{}", bad(0), plain("f", 30), bad(31));
    let importer = Importer::with_profile("t", creating_roles()).segment_bytes(120);
    for file in [clean, with_errors] {
        let why = Issue::error(Code::Cancelled, "nothing is imported: cancelled");
        let (_, whole) = aborted_both(&importer, file.as_bytes(), 120, &why);
        let trickled = Trickled::default();
        let (mut keep, mut restart) = (trickled.keep(), trickled.restart());
        // The rows counted as they are read, a cancel not asked again.
        let mut counted = 0;
        let mut progress = |p: &Progress| {
            counted = p.rows_done;
            std::ops::ControlFlow::Break(())
        };
        let options = RunOptions::new()
            .on_row(&mut keep)
            .on_restart(&mut restart)
            .on_progress(&mut progress);
        let size = Some(file.len() as u64);
        let open = trickled.open(&file);
        let mut got = importer
            .abort_streaming(open, size, Some("users.csv"), why, options)
            .unwrap();
        let read_then = trickled.rows(&mut got);
        assert_eq!(json(&got), json(&whole), "{file}");
        assert!(got.rejected && got.summary.added == 0, "{file}");
        let rows = file.lines().count() as u64 - 1;
        assert_eq!(got.summary.skipped + got.summary.failed, rows, "{file}");
        assert_eq!(counted, rows, "{file}");
        // In segments: the first row came before the file was read to its
        // end (read whole, every row comes after).
        assert!(read_then[0] < file.len(), "{file}");
    }
}

/// A file read through a [`Trickle`], and the rows handed over as it is
/// read: each row's report, and how much of the file was read when it
/// came (taken back on a restart).
#[derive(Default)]
struct Trickled {
    read: AtomicUsize,
    rows: Mutex<Vec<(RowReport, usize)>>,
}

impl Trickled {
    /// Opens `file` from its start.
    fn open<'a>(&'a self, file: &'a str) -> impl Fn() -> std::io::Result<Trickle<'a>> + 'a {
        move || {
            self.read.store(0, Relaxed);
            Ok(Trickle {
                rest: file.as_bytes(),
                read: &self.read,
            })
        }
    }

    /// The `on_row` callback.
    fn keep(&self) -> impl FnMut(RowReport) + Send + '_ {
        |row| {
            let read = self.read.load(Relaxed);
            self.rows.lock().unwrap().push((row, read));
        }
    }

    /// The `on_restart` callback.
    fn restart(&self) -> impl FnMut() + Send + '_ {
        || self.rows.lock().unwrap().clear()
    }

    /// Puts the rows in `report`; gives how much of the file was read
    /// when each came.
    fn rows(&self, report: &mut Report) -> Vec<usize> {
        let (rows, read) = std::mem::take(&mut *self.rows.lock().unwrap())
            .into_iter()
            .unzip();
        report.rows = rows;
        read
    }
}

/// A file's bytes, at most 64 at a time, counting them in `read`.
struct Trickle<'a> {
    rest: &'a [u8],
    read: &'a AtomicUsize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(64);
        let n = self.rest.read(&mut buf[..n])?;
        self.read.fetch_add(n, Relaxed);
        Ok(n)
    }
}

#[test]
fn a_file_over_the_row_limit_or_tripping_a_guard_is_imported_whole() {
    let mut profile = creating_roles();
    profile.limits.rows = 50;
    let limited = Importer::with_profile("t", profile);
    let mut store = Watched::default();
    let report = streamed(&limited, &chain(60), 200, &mut store);
    assert!(report.rejected);
    assert_eq!(store.inner.len("t"), 0);
    assert_eq!(store.rolled_back, 1);

    // Deleting 3 of 30 users, over a limit of 2: each segment deletes one,
    // the whole file three.
    let mut profile = creating_roles();
    profile.guards.max_deletes = Some(2);
    let guarded = Importer::with_profile("t", profile);
    let mut store = Watched::default();
    let users = format!("userId,email,reportsTo,roles,firstName\n{}", plain("u", 30));
    guarded.run(users.as_bytes(), None, &mut store).unwrap();
    let mut file = String::from("userId,email,firstName,transaction\n");
    for i in 0..30 {
        let delete = if [1, 15, 29].contains(&i) {
            "DELETE"
        } else {
            ""
        };
        file.push_str(&format!("u{i},u{i}@x.io,{PADDING},{delete}\n"));
    }
    let report = streamed(&guarded, file.as_bytes(), 200, &mut store);
    assert!(report.rejected, "{:#?}", report.issues);
    assert_eq!(store.inner.len("t"), 30);
    assert_eq!(store.rolled_back, 1);
}

#[test]
fn a_user_made_from_an_email_is_not_found_by_a_later_segment() {
    // Keyed by email, a new user without an id gets the email as its id:
    // the whole plan does not find that id in the file, so a later row
    // naming it (as its own id, or as a manager) is not about that user.
    let mut profile = creating_roles();
    profile.key = KeyField::Email;
    profile.required = vec![Field::Email];
    let importer = Importer::with_profile("t", profile);
    let head = "userId,email,reportsTo,transaction,firstName\n";
    let filler: String = (0..30)
        .map(|i| format!("f{i},f{i}@x.io,,,{PADDING}\n"))
        .collect();
    for last in ["boss@x.io,,,DELETE,\n", "ann,ann@x.io,boss@x.io,,\n"] {
        let file = format!("{head},boss@x.io,,,\n{filler}{last}");
        same_streamed_and_whole(&importer, &file, 120, Watched::default);
    }
}

#[test]
fn a_delete_after_its_users_report_left_in_an_earlier_segment_is_the_whole_plans() {
    // The whole plan finds `u` reporting to `d` in the directory, and no
    // row moving `u` by user id: deleting `d` fails. Streamed, an earlier
    // segment has deleted `u` (found by email): the directory no longer
    // says so, and the file is imported whole.
    let importer = Importer::with_profile("t", creating_roles());
    let directory = || {
        let mut store = Watched::default();
        let user = |id: &str, manager: Option<&str>| {
            let mut b = User::builder()
                .set(Field::UserId, id)
                .set(Field::Email, &format!("{id}@x.io"));
            if let Some(m) = manager {
                b = b.set(Field::ReportsTo, m);
            }
            b.build()
        };
        store.inner.insert("t", user("d", None));
        store.inner.insert("t", user("u", Some("d")));
        store
    };
    let filler: String = (0..30)
        .map(|i| format!("f{i},f{i}@x.io,,{PADDING},\n"))
        .collect();
    for first in [",u@x.io,,,DELETE\n", "u,u@x.io,f0,,\n"] {
        let file =
            format!("userId,email,reportsTo,firstName,transaction\n{first}{filler}d,,,,DELETE\n");
        same_streamed_and_whole(&importer, &file, 300, directory);
    }
}

#[test]
fn a_row_whose_error_the_stores_catalog_clears_fails_as_in_the_whole_plan() {
    // Under skip-invalid a row with an error fails in its segment. Here the
    // importer's catalog knows only `Admin`, so validation finds `Staff`
    // unknown on ann's row; the store's catalog has the last word (it
    // knows `Staff`), and planning clears that error. Her manager
    // is created by a later segment: the whole plan makes both, while her
    // segment cannot find him, so the file goes whole.
    let mut profile = Profile::default();
    profile.on_error = ErrorPolicy::SkipInvalid;
    let importer =
        Importer::with_profile("t", profile).catalog(user_import::Catalog::new().roles(["Admin"]));
    let file = format!(
        "userId,email,reportsTo,roles,firstName\nann,ann@x.io,boss,Staff,{PADDING}\n{}boss,boss@x.io,,Admin,{PADDING}\n",
        plain("f", 30).replace(",Staff,", ",Admin,")
    );
    let directory = || {
        let mut store = Watched::default();
        let roles = user_import::Catalog::new().roles(["Staff", "Admin"]);
        store.inner.set_catalog("t", roles);
        store
    };
    let mut whole = directory();
    let expected = importer
        .run(file.as_bytes(), Some("users.csv"), &mut whole)
        .unwrap();
    assert_eq!(expected.summary.added, 32, "the whole plan makes ann");
    same_streamed_and_whole(&importer, &file, 120, directory);
}
