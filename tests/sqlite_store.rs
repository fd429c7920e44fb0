//! The SQLite adapter of the `import` example (`examples/import/sqlite_store.rs`):
//! the conformance kit, and what the kit does not cover.
#![cfg(feature = "testkit")]

// Not every helper of the adapter is used here.
#[allow(dead_code)]
#[path = "../examples/import/sqlite_store.rs"]
mod sqlite_store;

use sqlite_store::SqliteStore;
use user_import::testkit;
use user_import::{
    Catalog, Code, ExistingUser, Fetch, Field, Importer, Location, Op, OpOutcome, Outcome, Profile,
    RolePolicy, User, UserStore, normalize,
};

fn store() -> SqliteStore {
    SqliteStore::open_in_memory().expect("an in-memory database")
}

fn person(id: &str) -> User {
    User::builder()
        .set(Field::UserId, id)
        .set(Field::Email, &format!("{}@example.com", id.to_lowercase()))
        .set(Field::LastName, id)
        .build()
}

fn create(id: &str) -> Op {
    Op::Create {
        line: None,
        user: person(id),
        locked: Vec::new(),
    }
}

fn get(s: &mut SqliteStore, tenant: &str, id: &str) -> Option<ExistingUser> {
    let mut f = Fetch::new(tenant);
    f.user_ids.push(normalize(id));
    s.fetch(&f).unwrap().pop()
}

/// A unique file in the temporary directory, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempFile(std::env::temp_dir().join(format!(
            "user-import-sqlite-{}-{n}-{name}",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn sqlite_store_passes_the_conformance_kit() {
    testkit::conformance(store).unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn sqlite_store_passes_the_kit_async() {
    testkit::block_on(testkit::conformance_async(|| testkit::Blocking(store())))
        .unwrap_or_else(|f| panic!("{f}"));
}

/// Applies `ops`, one of which creates the user `boom`, on whose insert the
/// database fails: `Err`, nothing of the batch is left, and the store is
/// still usable afterwards.
fn fails_and_leaves_nothing(ops: &[Op]) {
    let mut s = store();
    s.connection()
        .execute_batch(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON users WHEN NEW.user_id = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let err = s.apply("t", ops).unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    assert_eq!(s.count("t").unwrap(), 0);
    assert_eq!(s.catalog("t").unwrap().roles, Some(vec![]));
    assert!(s.connection().is_autocommit());
    assert_eq!(
        s.apply("t", &[create("ann")]).unwrap(),
        [OpOutcome::Applied]
    );
}

/// A create of `id` with a role the tenant does not have: it fails alone.
fn without_role(id: &str) -> Op {
    Op::Create {
        line: None,
        user: person(id).to_builder().set(Field::Roles, "Ghost").build(),
        locked: Vec::new(),
    }
}

/// `Err` from `apply` means nothing of the batch took effect: a database
/// failure on the third op undoes the first two.
#[test]
fn a_failing_batch_leaves_nothing_behind() {
    let staff = Op::CreateRole {
        name: "Staff".into(),
    };
    fails_and_leaves_nothing(&[staff, create("ann"), create("boom")]);
}

/// The same when the database fails in the second pass over a batch, the
/// one op by op after an op did not apply.
#[test]
fn a_batch_failing_op_by_op_leaves_nothing_behind() {
    let staff = Op::CreateRole {
        name: "Staff".into(),
    };
    fails_and_leaves_nothing(&[
        staff,
        create("ann"),
        without_role("ghost"),
        create("bob"),
        create("boom"),
    ]);
}

/// An op that fails leaves nothing of itself behind: a user whose role does
/// not exist is not created half-way.
#[test]
fn a_failed_op_is_undone_and_the_batch_goes_on() {
    let mut s = store();
    let out = s.apply("t", &[without_role("ann"), create("bob")]).unwrap();
    assert!(
        matches!(&out[0], OpOutcome::Failed(m) if m.contains("Ghost")),
        "{out:?}"
    );
    assert_eq!(out[1], OpOutcome::Applied);
    assert!(get(&mut s, "t", "ann").is_none());
    assert!(get(&mut s, "t", "bob").is_some());
}

/// A user deleted and created again gets a new version, so an op planned
/// against the old user cannot touch the new one.
#[test]
fn versions_are_never_reused() {
    let mut s = store();
    s.apply("t", &[create("ann")]).unwrap();
    let old = get(&mut s, "t", "ann").unwrap().version;
    let delete = Op::Delete {
        line: None,
        user_id: "ann".into(),
        version: old,
    };
    assert_eq!(
        s.apply("t", std::slice::from_ref(&delete)).unwrap(),
        [OpOutcome::Applied]
    );
    s.apply("t", &[create("ann")]).unwrap();
    assert_ne!(get(&mut s, "t", "ann").unwrap().version, old);
    assert_eq!(s.apply("t", &[delete]).unwrap(), [OpOutcome::Conflict]);
    // A version no store of this kind hands out matches nothing.
    let huge = Op::Delete {
        line: None,
        user_id: "ann".into(),
        version: u64::MAX,
    };
    assert_eq!(s.apply("t", &[huge]).unwrap(), [OpOutcome::Conflict]);
}

/// Matching uses the library's normalization, Unicode included (SQLite's
/// `lower()` folds ASCII only).
#[test]
fn matching_folds_non_ascii_case() {
    let mut s = store();
    let user = person("Élodie")
        .to_builder()
        .set(Field::Email, "ÉLODIE@Example.com")
        .build();
    s.apply(
        "t",
        &[Op::Create {
            line: None,
            user,
            locked: Vec::new(),
        }],
    )
    .unwrap();
    let mut f = Fetch::new("T");
    f.emails.push(normalize("élodie@example.com"));
    let found = s.fetch(&f).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].user_id(), "Élodie");
    let out = s.apply("t", &[create("ÉLODIE")]).unwrap();
    assert_eq!(out, [OpOutcome::AlreadyExists]);
}

/// Every attribute round-trips: the values as written, custom attributes,
/// locks, and roles (in the catalog's spelling).
#[test]
fn users_round_trip_with_roles_custom_attributes_and_locks() {
    let mut s = store();
    let user = User::builder()
        .set(Field::UserId, "JDoe")
        .set(Field::FirstName, "John")
        .set(Field::LastName, "Doe")
        .set(Field::Email, "John.Doe@example.com")
        .set(Field::Enabled, "false")
        .set(Field::ReportsTo, "Boss")
        .set(Field::Roles, "Tester|Admin")
        .set(Field::Location, "Paris")
        .set(Field::DepartmentId, "R&D")
        .set(Field::GroupName, "Readers")
        .set(Field::Permissions, "Write,Read")
        .set(Field::Sso, "true")
        .set(Field::TaskNotification, "OFF")
        .custom("costCenter", "42")
        .build();
    let ops = [
        Op::CreateRole {
            name: "Admin".into(),
        },
        Op::CreateRole {
            name: "Tester".into(),
        },
        Op::CreateRole {
            name: "ADMIN".into(),
        },
        Op::Create {
            line: None,
            user: user.clone(),
            locked: Vec::new(),
        },
    ];
    // Creating a role that exists (in any case) changes nothing, and says
    // so: it was not this import's to create (an undo leaves it).
    assert_eq!(
        s.apply("t", &ops).unwrap(),
        [
            OpOutcome::Applied,
            OpOutcome::Applied,
            OpOutcome::AlreadyExists,
            OpOutcome::Applied
        ]
    );
    assert_eq!(
        s.catalog("t").unwrap().roles,
        Some(vec!["Admin".to_owned(), "Tester".to_owned()])
    );
    assert!(s.lock("t", "jdoe", Field::Roles).unwrap());
    assert!(!s.lock("t", "nobody", Field::Roles).unwrap());
    let got = get(&mut s, "t", "jdoe").unwrap();
    assert_eq!(got.user, user);
    assert_eq!(got.locked, [Field::Roles]);
    // Found as a report of their manager, too.
    let mut f = Fetch::new("t");
    f.managers.push("boss".into());
    assert_eq!(s.fetch(&f).unwrap().len(), 1);
    // The database keeps it: reopen a file.
    let file = TempFile::new("roundtrip.db");
    let mut disk = SqliteStore::open(&file.0).unwrap();
    disk.apply("t", &ops).unwrap();
    drop(disk);
    let mut disk = SqliteStore::open(&file.0).unwrap();
    assert_eq!(get(&mut disk, "t", "JDOE").unwrap().user, user);
}

/// The importer sees the adapter's catalog: roles always, locations once the
/// tenant has some; locked fields are left alone.
#[test]
fn the_importer_uses_the_catalog_and_locks() {
    let mut s = store();
    let mut profile = Profile::default();
    profile.unknown_roles = RolePolicy::Create;
    let importer = Importer::with_profile("acme", profile);
    let file = b"userId,email,roles,location\nann,ann@example.com,Staff,Anywhere\n";
    let report = importer.run(file, None, &mut s).unwrap();
    assert_eq!(report.summary.added, 1, "{}", report.render_text());
    assert_eq!(report.summary.roles_added, 1);

    s.add_location("acme", &Location::new("Berlin HQ").alias("BER"))
        .unwrap();
    let catalog: Catalog = s.catalog("acme").unwrap();
    assert_eq!(catalog.find_location("ber"), Some("Berlin HQ"));
    let bad = b"userId,email,location\nbob,bob@example.com,Nowhere\n";
    let report = importer.run(bad, None, &mut s).unwrap();
    assert_eq!(report.rows[0].issues[0].code, Code::UnknownReference);
    let good = b"userId,email,location\nbob,bob@example.com,ber\n";
    importer.run(good, None, &mut s).unwrap();
    assert_eq!(
        get(&mut s, "acme", "bob")
            .unwrap()
            .user
            .get(Field::Location),
        Some("Berlin HQ")
    );

    s.lock("acme", "ann", Field::Roles).unwrap();
    let change = b"userId,email,roles\nann,ann@example.com,Boss\n";
    let report = importer.run(change, None, &mut s).unwrap();
    assert!(
        report.rows[0]
            .issues
            .iter()
            .any(|i| i.code == Code::FieldLocked),
        "{}",
        report.render_text()
    );
    assert_eq!(
        get(&mut s, "acme", "ann").unwrap().user.get(Field::Roles),
        Some("Staff")
    );
    assert_ne!(report.rows[0].outcome, Outcome::Failed);
}

/// `begin` inside a transaction of the caller's own leaves it to the caller.
#[test]
fn begin_inside_a_callers_transaction_is_not_a_second_transaction() {
    let mut s = store();
    assert!(s.begin().unwrap());
    assert!(!s.begin().unwrap());
    s.apply("t", &[create("ann")]).unwrap();
    s.rollback().unwrap();
    assert_eq!(s.count("t").unwrap(), 0);
}

/// The durability the adapter documents: a rollback journal with
/// `synchronous=FULL` (SQLite's defaults, which the adapter keeps).
#[test]
fn a_database_keeps_a_rollback_journal_with_full_syncs() {
    let file = TempFile::new("durability.db");
    let mut s = SqliteStore::open(&file.0).expect("a database");
    s.apply("t", &[Op::CreateRole { name: "A".into() }])
        .unwrap();
    // Only the savepoints' journals are in memory (2 = MEMORY).
    let temp: i64 = s
        .connection()
        .query_row("PRAGMA temp_store", [], |r| r.get(0))
        .unwrap();
    assert_eq!(temp, 2);
    drop(s);
    let conn = rusqlite::Connection::open(&file.0).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!((journal.as_str(), sync), ("delete", 2));
}

/// A user deleted by another program with foreign keys off (the sqlite3
/// shell's default) leaves its `user_roles` rows behind; a user created
/// next may get its row id, and must not get its roles.
#[test]
fn a_new_user_does_not_inherit_roles_left_behind() {
    let file = TempFile::new("orphans.db");
    let mut s = SqliteStore::open(&file.0).expect("a database");
    let admin = Op::Create {
        line: None,
        user: User::builder()
            .set(Field::UserId, "old")
            .set(Field::Roles, "Admin")
            .build(),
        locked: Vec::new(),
    };
    let out = s
        .apply(
            "t",
            &[
                Op::CreateRole {
                    name: "Admin".into(),
                },
                admin,
            ],
        )
        .unwrap();
    assert_eq!(out, [OpOutcome::Applied, OpOutcome::Applied]);
    let other = rusqlite::Connection::open(&file.0).unwrap();
    other.pragma_update(None, "foreign_keys", false).unwrap();
    let deleted = other
        .execute("DELETE FROM users WHERE user_id = 'old'", [])
        .unwrap();
    assert_eq!(deleted, 1);
    let left: i64 = other
        .query_row("SELECT count(*) FROM user_roles", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 1, "the shell's delete leaves the role row");
    assert_eq!(
        s.apply("t", &[create("new")]).unwrap(),
        [OpOutcome::Applied]
    );
    let new = get(&mut s, "t", "new").expect("the new user");
    assert_eq!(new.user.roles().count(), 0, "{:?}", new.user);
}

/// Creates `roles`, then `users`, in one batch that must apply whole.
fn create_with_roles(s: &mut SqliteStore, roles: &[&str], users: impl Iterator<Item = User>) {
    let mut ops: Vec<Op> = roles
        .iter()
        .map(|r| Op::CreateRole {
            name: (*r).to_owned(),
        })
        .collect();
    ops.extend(users.map(|user| Op::Create {
        line: None,
        user,
        locked: Vec::new(),
    }));
    let outcomes = s.apply("t", &ops).unwrap();
    assert!(outcomes.iter().all(OpOutcome::is_applied), "{outcomes:?}");
}

/// `fetch` (by id and by email) and `scan` read a batch's roles in one
/// range of row ids when its users lie close together, and one lookup per
/// user when they are far apart: either way each user gets their own roles,
/// and no one the batch did not ask for comes back.
#[test]
fn fetch_and_scan_read_the_roles_of_users_close_together_and_far_apart() {
    const ROLES: [&str; 3] = ["Admin", "Staff", "Tester"];
    let roles_of = |i: usize| format!("{}|{}", ROLES[i % 3], ROLES[(i + 1) % 3]);
    let id = |i: usize| format!("u{i}");
    let mut s = store();
    create_with_roles(
        &mut s,
        &ROLES,
        (0..300).map(|i| {
            User::builder()
                .set(Field::UserId, &id(i))
                .set(Field::Email, &format!("{}@example.com", id(i)))
                .set(Field::Roles, &roles_of(i))
                .build()
        }),
    );
    // Every other user of the first 41 (a range with users not asked for
    // between them), then the first and the last (too far apart for one).
    for asked in [(0..=40).step_by(2).collect::<Vec<usize>>(), vec![0, 299]] {
        let mut f = Fetch::new("t");
        f.user_ids = asked.iter().map(|&i| id(i)).collect();
        let mut got: Vec<(String, Option<String>)> = s
            .fetch(&f)
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u.user_id().to_owned(),
                    u.user.get(Field::Roles).map(str::to_owned),
                )
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, Option<String>)> = asked
            .iter()
            .map(|&i| {
                let canonical = User::builder().set(Field::Roles, &roles_of(i)).build();
                (id(i), canonical.get(Field::Roles).map(str::to_owned))
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "asked for {asked:?}");
    }
    // Pages of a scan in id order: `u1, u10, u100, ...` lie far apart by
    // row id, `u100, u101, ...` close together.
    let mut after: Option<String> = None;
    let mut seen = 0;
    loop {
        let page = s.scan("t", after.as_deref(), 3).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(normalize(last.user_id()));
        for u in &page {
            let i: usize = u.user_id()[1..].parse().unwrap();
            let canonical = User::builder().set(Field::Roles, &roles_of(i)).build();
            assert_eq!(
                u.user.get(Field::Roles),
                canonical.get(Field::Roles),
                "{}",
                id(i)
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 300);
    // Users found by email rather than by id get their roles too.
    let mut f = Fetch::new("t");
    f.emails = [7, 250]
        .iter()
        .map(|&i| normalize(&format!("{}@example.com", id(i))))
        .collect();
    let mut found: Vec<(String, Option<String>)> = s
        .fetch(&f)
        .unwrap()
        .iter()
        .map(|u| {
            (
                u.user_id().to_owned(),
                u.user.get(Field::Roles).map(str::to_owned),
            )
        })
        .collect();
    found.sort();
    let mut want: Vec<(String, Option<String>)> = [250, 7]
        .iter()
        .map(|&i| {
            let canonical = User::builder().set(Field::Roles, &roles_of(i)).build();
            (id(i), canonical.get(Field::Roles).map(str::to_owned))
        })
        .collect();
    want.sort();
    assert_eq!(found, want);
}

/// A role deleted with foreign keys off (the sqlite3 shell's default)
/// leaves its `user_roles` rows behind: the users who held it are read
/// without it, by id (one range of row ids, or one lookup per user) and by
/// a scan, and the rest of their roles stay.
#[test]
fn a_role_deleted_behind_the_stores_back_is_left_out() {
    let file = TempFile::new("role-gone.db");
    let mut s = SqliteStore::open(&file.0).expect("a database");
    create_with_roles(
        &mut s,
        &["Admin", "Staff"],
        (0..40).map(|i| {
            User::builder()
                .set(Field::UserId, &format!("u{i:02}"))
                .set(Field::Roles, "Admin|Staff")
                .build()
        }),
    );
    let other = rusqlite::Connection::open(&file.0).unwrap();
    other.pragma_update(None, "foreign_keys", false).unwrap();
    assert_eq!(
        other
            .execute("DELETE FROM roles WHERE name = 'Admin'", [])
            .unwrap(),
        1
    );
    let roles = |users: Vec<ExistingUser>| -> Vec<(String, Option<String>)> {
        users
            .iter()
            .map(|u| {
                (
                    u.user_id().to_owned(),
                    u.user.get(Field::Roles).map(str::to_owned),
                )
            })
            .collect()
    };
    // All forty (close together), then the first and the last (far apart).
    for asked in [(0..40).collect::<Vec<usize>>(), vec![0, 39]] {
        let mut f = Fetch::new("t");
        f.user_ids = asked.iter().map(|i| format!("u{i:02}")).collect();
        let got = roles(s.fetch(&f).unwrap());
        assert_eq!(got.len(), asked.len());
        assert!(
            got.iter().all(|(_, r)| r.as_deref() == Some("Staff")),
            "{got:?}"
        );
    }
    let page = roles(s.scan("t", None, 100).unwrap());
    assert_eq!(page.len(), 40);
    assert!(page.iter().all(|(_, r)| r.as_deref() == Some("Staff")));
}
