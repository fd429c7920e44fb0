//! Planning on two threads (`Importer::threads` > 1: each batch of rows is
//! planned while the next batch's users are fetched, and the calling thread
//! joins in once it has them) makes exactly the plan one thread makes, asks
//! the store as often, and stops as one thread does.

mod common;

use std::fmt::Write as _;
use std::ops::ControlFlow;

use user_import::memory::InMemoryStore;
use user_import::{Catalog, ErrorKind, Field, Importer, Op, Plan, Profile, RolePolicy, User};

const T: &str = "acme";

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A directory of 300 users (ids `u0`…`u299`, some with managers) and a file
/// of `rows` rows, mostly one per id from `u0` on: creates, updates, unchanged rows,
/// deletes by id and by email (whose reports are asked for afterwards),
/// duplicate ids and emails, invalid emails, unknown and new managers, new
/// roles in several spellings.
fn case(seed: u64, rows: usize) -> (InMemoryStore, String) {
    let mut rng = Rng(seed);
    let mut store = InMemoryStore::new();
    store.set_catalog(T, Catalog::new().roles(["Staff", "Admin"]));
    for k in 0..300 {
        let mut b = User::builder()
            .set(Field::UserId, &format!("u{k}"))
            .set(Field::Email, &format!("u{k}@example.com"))
            .set(Field::FirstName, "First")
            .set(Field::LastName, &format!("Last{}", k % 7))
            .set(Field::Roles, "Staff");
        if k % 3 != 0 {
            b = b.set(Field::ReportsTo, &format!("u{}", k % 10));
        }
        store.insert(T, b.build());
    }
    let mut file = String::from(
        "userId,email,firstName,lastName,reportsTo,roles,transaction,notifyIfNewUser\n",
    );
    for i in 0..rows as u64 {
        // Mostly one row per user (a few rows repeat an id: errors both).
        let k = if rng.below(40) == 0 {
            rng.below(rows as u64)
        } else {
            i
        };
        let id = match rng.below(20) {
            0 => String::new(), // found by email (or a new user without an id)
            1 => format!("U{k}"),
            _ => format!("u{k}"),
        };
        let email = match rng.below(25) {
            0 => "not-an-email".to_owned(),
            1 => format!("u{}@example.com", rng.below(rows as u64)), // someone else's
            2 => format!("U{k}@Example.com"),
            _ => format!("u{k}@example.com"),
        };
        let last = format!("Last{}", rng.below(9));
        let manager = match rng.below(6) {
            0 => format!("nobody{k}"),
            1 | 2 => String::new(),
            _ => format!("u{}", rng.below(rows as u64)),
        };
        let roles =
            ["Staff", "Admin|Staff", "coach", "Coach|Staff", "Pilot"][rng.below(5) as usize];
        let transaction = if rng.below(14) == 0 { "DELETE" } else { "" };
        let notify = if rng.below(3) == 0 { "true" } else { "" };
        writeln!(
            file,
            "{id},{email},First,{last},{manager},{roles},{transaction},{notify}"
        )
        .unwrap();
    }
    (store, file)
}

fn plan(file: &str, store: &mut InMemoryStore, threads: usize, batch: usize) -> Plan {
    let mut p = Profile::default();
    p.batch_size = batch;
    p.unknown_roles = RolePolicy::Create;
    p.on_error = user_import::ErrorPolicy::SkipInvalid;
    let importer = Importer::with_profile(T, p).threads(threads);
    importer
        .plan(importer.validate(file.as_bytes(), None), store)
        .unwrap()
}

#[test]
fn two_threads_make_the_plan_one_thread_makes() {
    let mut deletes_by_email = 0;
    for (seed, rows, batch) in [(1, 700, 64), (2, 1000, 100), (3, 300, 64), (4, 129, 64)] {
        let (mut one_store, file) = case(seed, rows);
        let (mut two_store, _) = case(seed, rows);
        let one = plan(&file, &mut one_store, 1, batch);
        let two = plan(&file, &mut two_store, 2, batch);
        assert_eq!(one, two, "seed {seed}, {rows} rows, batches of {batch}");
        assert_eq!(
            one_store.calls().fetch,
            two_store.calls().fetch,
            "as many store calls"
        );
        // More threads share each batch's rows in more blocks.
        for threads in [3, 4] {
            let (mut store, _) = case(seed, rows);
            let more = plan(&file, &mut store, threads, batch);
            assert_eq!(one, more, "seed {seed}, {threads} threads");
        }
        assert!(
            one.ops().len() > rows / 2,
            "a plan with work in it: {}",
            one.ops().len()
        );
        // Deletes found by email ask for their reports after the batch.
        deletes_by_email += file
            .lines()
            .filter(|l| l.starts_with(',') && l.contains(",DELETE,"))
            .count();
    }
    assert!(deletes_by_email > 0);
}

#[test]
fn one_batch_is_planned_on_the_calling_thread_as_before() {
    let (mut store, file) = case(5, 60);
    let one = plan(&file, &mut store, 1, 64);
    let (mut store, _) = case(5, 60);
    assert_eq!(plan(&file, &mut store, 2, 64), one);
}

#[test]
fn cancelling_stops_planning_on_two_threads_too() {
    let (mut store, file) = case(6, 1000);
    let mut p = Profile::default();
    p.batch_size = 64;
    let importer = Importer::with_profile(T, p).threads(2);
    let mut asked = 0;
    let mut last_done = 0;
    let result = importer.plan_with(
        importer.validate(file.as_bytes(), None),
        &mut store,
        user_import::RunOptions::new().on_progress(&mut |progress| {
            assert!(progress.rows_done >= last_done, "progress never goes back");
            last_done = progress.rows_done;
            asked += 1;
            if asked == 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }),
    );
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(asked, 4);
    assert!(store.calls().fetch <= 3, "no fetch after the cancel");
}

#[test]
fn new_roles_and_deletes_are_all_there_on_two_threads() {
    let (mut store, file) = case(7, 700);
    let two = plan(&file, &mut store, 2, 64);
    let roles = common::created_roles(&two);
    assert_eq!(roles, ["Coach", "Pilot"]);
    assert!(two.ops().iter().any(|o| matches!(o, Op::Delete { .. })));
}

#[test]
fn a_large_plan_is_built_the_same_on_two_threads() {
    // Large enough that the plan's entries are made in halves side by side
    // (parts of 4,096 rows or more).
    let (mut one_store, file) = case(8, 60_000);
    let (mut two_store, _) = case(8, 60_000);
    let one = plan(&file, &mut one_store, 1, 1000);
    let two = plan(&file, &mut two_store, 2, 1000);
    assert!(one.ops().len() > 20_000, "{}", one.ops().len());
    let (mut four_store, _) = case(8, 60_000);
    assert_eq!(one, plan(&file, &mut four_store, 4, 1000), "four threads");
    assert!(one.notices().len() > 5_000, "{}", one.notices().len());
    assert_eq!(one, two);
}

#[test]
fn roles_are_checked_in_two_halves_with_the_same_outcome() {
    // 60,000 rows (the halves are checked side by side from 50,000): a new
    // role spelled "Coach" in the first half and "COACH" (first in byte
    // order) only in the second; an unknown role under a fallback policy,
    // with its suggestion, in both halves. With 50,000 ops or more, the
    // ops are also sorted in halves, and the welcome notices and the
    // issues beside their reordering.
    let mut file = String::from("userId,email,roles,notifyIfNewUser\n");
    for i in 0..60_000 {
        let roles = match i % 5 {
            0 if i < 30_000 => "Coach",
            0 => "COACH|Staff",
            1 => "Staf",
            _ => "Staff",
        };
        let notify = if i % 3 == 0 { "yes" } else { "" };
        writeln!(file, "u{i},u{i}@example.com,{roles},{notify}").unwrap();
    }
    let run = |threads: usize, policy: RolePolicy| {
        let mut store = InMemoryStore::new();
        store.set_catalog(T, Catalog::new().roles(["Staff", "Admin"]));
        let mut p = Profile::default();
        p.unknown_roles = policy;
        p.on_error = user_import::ErrorPolicy::SkipInvalid;
        let importer = Importer::with_profile(T, p).threads(threads);
        importer
            .plan(importer.validate(file.as_bytes(), None), &mut store)
            .unwrap()
    };
    let one = run(1, RolePolicy::Create);
    let two = run(2, RolePolicy::Create);
    assert!(two.ops().len() >= 50_000);
    assert_eq!(two.notices().len(), 20_000);
    assert_eq!(one, two);
    assert!(matches!(&two.ops()[0], Op::CreateRole { name } if name == "COACH"));
    assert!(matches!(&two.ops()[1], Op::CreateRole { name } if name == "Staf"));
    let Op::Create { user, .. } = &two.ops()[2] else {
        panic!("{:?}", &two.ops()[..3])
    };
    assert_eq!(user.get(Field::Roles), Some("COACH"), "{user:?}");
    let one = run(1, RolePolicy::Fallback("Admin".into()));
    let two = run(2, RolePolicy::Fallback("Admin".into()));
    assert_eq!(one, two);
    let warned = two.row_issues(3);
    assert_eq!(warned[0].suggestion.as_deref(), Some("Staff"));
    // A warning on every row naming Coach or Staf: two rows in five.
    assert_eq!(two.issues().count(), 24_000);
}

#[test]
fn once_cancelled_neither_the_callback_nor_the_store_is_called_again() {
    // The first batch holds a delete found by email (its reports are asked
    // for after the batch); the cancel comes on the look-ahead request.
    let mut file = String::from("userId,email,lastName,transaction\n");
    for i in 0..200 {
        if i == 5 {
            writeln!(file, ",u{i}@example.com,X,DELETE").unwrap();
        } else {
            writeln!(file, "u{i},u{i}@example.com,L{i},").unwrap();
        }
    }
    for threads in [1, 2] {
        let (mut store, _) = case(9, 0);
        let mut p = Profile::default();
        p.batch_size = 64;
        let importer = Importer::with_profile(T, p).threads(threads);
        let mut calls = 0;
        let result = importer.plan_with(
            importer.validate(file.as_bytes(), None),
            &mut store,
            user_import::RunOptions::new().on_progress(&mut |_| {
                calls += 1;
                if calls == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }),
        );
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
        assert_eq!(calls, 2, "threads {threads}: no call after the cancel");
        assert_eq!(
            store.calls().fetch,
            1,
            "threads {threads}: one fetch, then the cancel"
        );
    }
}

/// An in-memory store that writes down every request it is asked.
#[cfg(feature = "testkit")]
struct Recorder {
    inner: InMemoryStore,
    asked: Vec<String>,
}

#[cfg(feature = "testkit")]
impl user_import::UserStore for Recorder {
    type Error = std::convert::Infallible;
    fn catalog(&mut self, t: &str) -> Result<Catalog, Self::Error> {
        self.asked.push(format!("catalog {t}"));
        self.inner.catalog(t)
    }
    fn fetch(
        &mut self,
        f: &user_import::Fetch,
    ) -> Result<Vec<user_import::ExistingUser>, Self::Error> {
        self.asked.push(format!("{f:?}"));
        self.inner.fetch(f)
    }
    fn scan(
        &mut self,
        t: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<user_import::ExistingUser>, Self::Error> {
        self.asked.push(format!("scan {t} {after:?} {limit}"));
        self.inner.scan(t, after, limit)
    }
    fn count(&mut self, t: &str) -> Result<u64, Self::Error> {
        self.asked.push(format!("count {t}"));
        self.inner.count(t)
    }
    fn apply(&mut self, t: &str, ops: &[Op]) -> Result<Vec<user_import::OpOutcome>, Self::Error> {
        self.inner.apply(t, ops)
    }
}

/// Only the sync driver plans a chunk while it fetches the next one: the
/// async driver asks the store in the order it always has (each chunk's
/// users, then the reports of its deletes found by email), whatever the
/// number of threads, and makes the same plan.
#[cfg(feature = "testkit")]
#[test]
fn the_async_driver_asks_chunk_by_chunk_with_any_number_of_threads() {
    use user_import::testkit::{Blocking, block_on};
    let (store, file) = case(2, 1000);
    let plan_async = |threads: usize| {
        let mut p = Profile::default();
        p.batch_size = 100;
        p.unknown_roles = RolePolicy::Create;
        p.on_error = user_import::ErrorPolicy::SkipInvalid;
        let importer = Importer::with_profile(T, p).threads(threads);
        let mut recorder = Blocking(Recorder {
            inner: store.clone(),
            asked: Vec::new(),
        });
        let plan =
            block_on(importer.plan_async(importer.validate(file.as_bytes(), None), &mut recorder))
                .unwrap();
        (plan, recorder.0.asked)
    };
    let (one, asked_one) = plan_async(1);
    let (four, asked_four) = plan_async(4);
    assert_eq!(four, one);
    assert_eq!(asked_four, asked_one);
    // The file has deletes found by email, so the order is tested.
    assert!(
        file.lines()
            .any(|l| l.starts_with(',') && l.contains(",DELETE,"))
    );
    assert!(asked_one.len() > 10);
}
