//! Every apply can be taken back: its undo, applied, puts the directory back
//! exactly as it was (users, their roles, managers and custom attributes,
//! and the roles the import created), and a user changed since the import
//! is a `conflict`, never overwritten.

// Not every helper of the adapter is used here.
#[allow(dead_code)]
#[path = "../examples/import/sqlite_store.rs"]
mod sqlite_store;

use proptest::prelude::*;
use sqlite_store::SqliteStore;
use user_import::memory::InMemoryStore;
use user_import::{
    AttributeKind, Catalog, CustomAttribute, ErrorPolicy, Field, Importer, MirrorAction, Mode, Op,
    Outcome, Plan, Planned, Profile, RolePolicy, RunOptions, User, UserStore,
};

const T: &str = "acme";
const ROLES: [&str; 4] = ["Staff", "Admin", "Coach", "Pilot"];

/// A user of the directory or a row of the file, by numbers.
#[derive(Debug, Clone)]
struct Person {
    id: u8,
    email: u8,
    last: u8,
    roles: Vec<u8>,
    manager: Option<u8>,
    cost: Option<u8>,
    delete: bool,
}

fn person() -> impl Strategy<Value = Person> {
    (
        0u8..16,
        0u8..16,
        0u8..3,
        prop::collection::vec(0u8..4, 0..3),
        prop::option::of(0u8..16),
        prop::option::of(0u8..3),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(id, email, last, roles, manager, cost, delete)| Person {
            id,
            email,
            last,
            roles,
            manager,
            cost,
            delete,
        })
}

fn roles_of(p: &Person) -> String {
    let mut seen = Vec::new();
    for &r in &p.roles {
        if !seen.contains(&ROLES[r as usize]) {
            seen.push(ROLES[r as usize]);
        }
    }
    seen.join("|")
}

fn user_of(p: &Person) -> User {
    let mut b = User::builder()
        .set(Field::UserId, &format!("u{}", p.id))
        .set(Field::Email, &format!("e{}@example.com", p.email))
        .set(Field::LastName, &format!("L{}", p.last))
        .set(Field::Enabled, "true");
    let roles = roles_of(p);
    if !roles.is_empty() {
        b = b.set(Field::Roles, &roles);
    }
    if let Some(m) = p.manager.filter(|&m| m != p.id) {
        b = b.set(Field::ReportsTo, &format!("u{m}"));
    }
    if let Some(c) = p.cost {
        b = b.custom("costCenter", &format!("C{c}"));
    }
    b.build()
}

/// A directory that knows two of the four roles, so an import creates the
/// others.
fn store_of(dir: &[Person]) -> InMemoryStore {
    let mut s = InMemoryStore::new();
    s.set_catalog(T, Catalog::new().roles(["Staff", "Admin"]));
    for p in dir {
        let mut p = p.clone();
        p.roles.retain(|&r| r < 2);
        s.insert(T, user_of(&p));
    }
    s
}

fn file_of(rows: &[Person]) -> String {
    let mut f = String::from("userId,email,lastName,roles,reportsTo,costCenter,transaction\n");
    for r in rows {
        let manager = r
            .manager
            .filter(|&m| m != r.id)
            .map(|m| format!("u{m}"))
            .unwrap_or_default();
        let cost = r.cost.map(|c| format!("C{c}")).unwrap_or_default();
        let action = if r.delete { "DELETE" } else { "" };
        f.push_str(&format!(
            "u{},e{}@example.com,L{},{},{manager},{cost},{action}\n",
            r.id,
            r.email,
            r.last,
            roles_of(r)
        ));
    }
    f
}

/// The same directory in the SQLite adapter.
fn sqlite_of(dir: &[Person]) -> SqliteStore {
    let mut s = SqliteStore::open_in_memory().expect("an in-memory database");
    let mut ops = vec![
        Op::CreateRole {
            name: "Staff".into(),
        },
        Op::CreateRole {
            name: "Admin".into(),
        },
    ];
    for p in dir {
        let mut p = p.clone();
        p.roles.retain(|&r| r < 2);
        ops.push(Op::Create {
            line: None,
            user: user_of(&p),
            locked: Vec::new(),
        });
    }
    // Users whose id or email is taken are left out, as in memory.
    s.apply(T, &ops).expect("the directory is written");
    s
}

/// The directory as an administrator sees it: every user's record (not
/// their versions), and the roles it knows.
fn snapshot<S: UserStore>(s: &mut S) -> (Vec<User>, Vec<String>)
where
    S::Error: std::fmt::Debug,
{
    let mut users: Vec<User> = s
        .scan(T, None, 10_000)
        .unwrap()
        .into_iter()
        .map(|u| u.user)
        .collect();
    users.sort_by_key(|u| u.user_id().map(str::to_lowercase));
    let mut roles = s.catalog(T).unwrap().roles.unwrap_or_default();
    roles.sort();
    (users, roles)
}

fn profile(mirror: bool) -> Profile {
    let mut p = Profile::default();
    p.on_error = ErrorPolicy::SkipInvalid;
    p.unknown_roles = RolePolicy::Create;
    p.custom = vec![CustomAttribute::new("costCenter", AttributeKind::Text)];
    p.guards.max_delete_share = None;
    if mirror {
        p.mode = Mode::Mirror;
        p.mirror = MirrorAction::Delete;
    }
    p
}

/// Plans and applies `file`, giving the report's outcomes and the undo.
fn import<S: UserStore>(importer: &Importer, store: &mut S, file: &str) -> (Vec<Outcome>, Plan)
where
    S::Error: std::fmt::Debug,
{
    let plan = importer
        .plan(importer.validate(file.as_bytes(), None), store)
        .unwrap();
    apply(importer, store, &plan)
}

fn apply<S: UserStore>(importer: &Importer, store: &mut S, plan: &Plan) -> (Vec<Outcome>, Plan)
where
    S::Error: std::fmt::Debug,
{
    let mut undo = None;
    let report = importer
        .apply_with(plan, store, RunOptions::new().undo(&mut undo))
        .unwrap();
    let outcomes = report.rows.iter().map(|r| r.outcome).collect();
    (outcomes, undo.expect("applying gives an undo"))
}

/// Apply, then apply the undo: the directory is exactly as before. The
/// undo of the undo puts the import back.
fn round_trip<S: UserStore>(
    store: &mut S,
    rows: &[Person],
    mirror: bool,
) -> Result<(), TestCaseError>
where
    S::Error: std::fmt::Debug,
{
    let importer = Importer::with_profile(T, profile(mirror));
    let before = snapshot(store);
    let (_, undo) = import(&importer, store, &file_of(rows));
    let after = snapshot(store);
    // The undo is an ordinary plan: it survives JSON.
    let undo: Plan = serde_json::from_str(&serde_json::to_string(&undo).unwrap()).unwrap();
    let (outcomes, redo) = apply(&importer, store, &undo);
    prop_assert!(
        !outcomes.contains(&Outcome::Failed),
        "{outcomes:?}\n{undo:#?}"
    );
    prop_assert_eq!(snapshot(store), before, "file:\n{}", file_of(rows));
    // The redo puts the import back.
    apply(&importer, store, &redo);
    prop_assert_eq!(snapshot(store), after);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Apply, then apply the undo: the directory is exactly as before. The
    /// undo of the undo puts the import back.
    #[test]
    fn an_undo_puts_the_directory_back(
        dir in prop::collection::vec(person(), 0..10),
        rows in prop::collection::vec(person(), 1..12),
        mirror in prop::bool::weighted(0.2),
    ) {
        round_trip(&mut store_of(&dir), &rows, mirror)?;
    }

    /// The same with the SQLite adapter.
    #[test]
    fn an_undo_puts_the_sqlite_directory_back(
        dir in prop::collection::vec(person(), 0..10),
        rows in prop::collection::vec(person(), 1..12),
        mirror in prop::bool::weighted(0.2),
    ) {
        round_trip(&mut sqlite_of(&dir), &rows, mirror)?;
    }
}

#[test]
fn a_user_changed_since_the_import_is_a_conflict_and_the_others_come_back() {
    let importer = Importer::with_profile(T, profile(false));
    let dir = [
        Person {
            id: 1,
            email: 1,
            last: 0,
            roles: vec![0],
            manager: None,
            cost: Some(1),
            delete: false,
        },
        Person {
            id: 2,
            email: 2,
            last: 0,
            roles: vec![1],
            manager: Some(1),
            cost: None,
            delete: false,
        },
        Person {
            id: 3,
            email: 3,
            last: 0,
            roles: vec![],
            manager: None,
            cost: None,
            delete: false,
        },
    ];
    let mut store = store_of(&dir);
    let before = snapshot(&mut store);
    let file = "userId,email,lastName,roles,reportsTo,transaction\n\
                u1,e1@example.com,Changed,Staff|Coach,,\n\
                u2,e2@example.com,Also,Admin,u1,\n\
                u3,,,,,DELETE\n\
                u4,e4@example.com,New,Pilot,u1,\n";
    let (outcomes, undo) = import(&importer, &mut store, file);
    assert_eq!(
        outcomes,
        [
            Outcome::Updated,
            Outcome::Updated,
            Outcome::Deleted,
            Outcome::Added
        ]
    );
    let planned: Vec<Planned> = undo.rows().iter().map(|r| r.planned).collect();
    assert_eq!(
        planned,
        [
            Planned::Update,
            Planned::Update,
            Planned::Create,
            Planned::Delete
        ]
    );
    // Someone changes u2 by hand after the import.
    assert!(store.touch(T, "u2", Field::LastName, "ByHand"));
    let report = importer.apply(&undo, &mut store).unwrap();
    let outcomes: Vec<Outcome> = report.rows.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Updated,
            Outcome::Failed,
            Outcome::Added,
            Outcome::Deleted
        ]
    );
    assert!(
        report.rows[1]
            .issues
            .iter()
            .any(|i| i.code == user_import::Code::Conflict)
    );
    // u2 keeps the hand's change; everyone else is as before the import,
    // and the roles the import created are gone.
    let (users, roles) = snapshot(&mut store);
    assert_eq!(roles, before.1);
    let u2 = users.iter().find(|u| u.user_id() == Some("u2")).unwrap();
    assert_eq!(u2.get(Field::LastName), Some("ByHand"));
    let others = |users: &[User]| -> Vec<User> {
        users
            .iter()
            .filter(|u| u.user_id() != Some("u2"))
            .cloned()
            .collect()
    };
    assert_eq!(others(&users), others(&before.0));
}

/// A deleted user comes back with the fields they had locked locked again,
/// in memory and in SQLite.
#[test]
fn a_deleted_user_comes_back_with_their_locks() {
    let importer = Importer::with_profile(T, profile(false));
    let file = "userId,transaction\nu1,DELETE\n";
    let dir = [Person {
        id: 1,
        email: 1,
        last: 0,
        roles: vec![0],
        manager: None,
        cost: None,
        delete: false,
    }];
    let mut memory = store_of(&dir);
    assert!(memory.lock(T, "u1", Field::Roles));
    let (_, undo) = import(&importer, &mut memory, file);
    assert!(memory.get(T, "u1").is_none());
    apply(&importer, &mut memory, &undo);
    assert_eq!(
        memory.get(T, "u1").map(|u| u.locked.clone()),
        Some(vec![Field::Roles])
    );

    let mut sqlite = sqlite_of(&dir);
    assert!(sqlite.lock(T, "u1", Field::Roles).unwrap());
    let (_, undo) = import(&importer, &mut sqlite, file);
    apply(&importer, &mut sqlite, &undo);
    let mut f = user_import::Fetch::new(T);
    f.user_ids = vec!["u1".into()];
    let back = sqlite.fetch(&f).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].locked, [Field::Roles]);
}

/// The undo of mirror mode's changes to users the file does not name is
/// reported like them: a user mirror mode deleted comes back as an `added`
/// directory change, counted in the summary.
#[test]
fn the_undo_of_a_mirror_delete_is_in_the_report() {
    let importer = Importer::with_profile(T, profile(true));
    let dir = [1u8, 2].map(|id| Person {
        id,
        email: id,
        last: 0,
        roles: vec![],
        manager: None,
        cost: None,
        delete: false,
    });
    let mut store = store_of(&dir);
    let (_, undo) = import(&importer, &mut store, "userId,email\nu1,e1@example.com\n");
    assert!(store.get(T, "u2").is_none(), "mirror mode deleted u2");
    let report = importer.apply(&undo, &mut store).unwrap();
    let back: Vec<(&str, Outcome)> = report
        .directory
        .iter()
        .map(|d| (d.user_id.as_str(), d.outcome))
        .collect();
    assert_eq!(back, [("u2", Outcome::Added)]);
    assert_eq!(report.summary.added, 1);
    assert!(store.get(T, "u2").is_some());
}
