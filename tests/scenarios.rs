//! The reference scenarios' own walk-throughs (docs/scenarios.md), as tests.

mod common;

use user_import::memory::InMemoryStore;
use user_import::{
    Catalog, Code, ErrorPolicy, Field, Importer, KeyField, Location, Mode, Outcome, Profile,
    RolePolicy, User,
};

fn user(id: &str, first: &str, last: &str, roles: &str) -> User {
    User::builder()
        .set(Field::UserId, id)
        .set(Field::FirstName, first)
        .set(Field::LastName, last)
        .set(Field::Email, &format!("{id}@example.com"))
        .set(Field::Enabled, "true")
        .set(Field::Roles, roles)
        .set(Field::TaskNotification, "Email")
        .build()
}

/// The tenant admin file: "3 Added, 1 Updated, 0 Deleted, 4 Roles Added",
/// then "1 Added, 1 Updated, 0 Deleted, 1 Roles Added", and Mary's welcome
/// email.
#[test]
fn tenant_admin_walk_through() {
    let mut store = InMemoryStore::new();
    store.insert("default", user("admin", "Ada", "Admin", "Admin"));
    let mut profile = Profile::default();
    profile.unknown_roles = RolePolicy::Create; // missing roles are created
    let importer = Importer::with_profile("default", profile);

    let first = "userId,tenant,firstName,lastName,email,enabled,reportsTo,roles,taskNotification,transaction,notifyIfNewUser\n\
                 admin,,Ada,Admin,admin@example.com,true,,Admin|Manager|Tester|Reviewer|Auditor,Email,,false\n\
                 jdoe,,John,Doe,jdoe@example.com,true,admin,Tester,Email,,false\n\
                 pat,default,Pat,Lee,pat@example.com,true,jdoe,Manager,OFF,,false\n\
                 sam,,Sam,Sun,sam@example.com,true,jdoe,Reviewer|Tester,Email,,false\n";
    let report = importer
        .run(first.as_bytes(), Some("users.csv"), &mut store)
        .unwrap();
    assert!(
        report
            .summary
            .to_string()
            .starts_with("3 Added, 1 Updated, 0 Deleted, 4 Roles Added"),
        "{}",
        report.render_text()
    );
    assert_eq!(
        store.roles("default"),
        ["Admin", "Auditor", "Manager", "Reviewer", "Tester"]
    );
    // The update carries its field-level change.
    let admin = &report.rows[0];
    assert_eq!(admin.outcome, Outcome::Updated);
    assert_eq!(admin.changes.len(), 1);
    assert_eq!(
        admin.changes[0].new.as_deref(),
        Some("Admin|Auditor|Manager|Reviewer|Tester")
    );

    // Second upload: change one last name, add mary with the new role Coordinator.
    let second = first.replace("jdoe,,John,Doe,", "jdoe,,John,Smith,")
        + "mary,,Mary,May,mary@example.com,true,pat,Coordinator,Email,,TRUE\n";
    let report = importer
        .run(second.as_bytes(), Some("users.csv"), &mut store)
        .unwrap();
    assert!(
        report
            .summary
            .to_string()
            .starts_with("1 Added, 1 Updated, 0 Deleted, 1 Roles Added"),
        "{}",
        report.render_text()
    );
    assert_eq!(report.summary.unchanged, 3);
    assert_eq!(
        store
            .get("default", "jdoe")
            .unwrap()
            .user
            .get(Field::LastName),
        Some("Smith")
    );
    assert_eq!(
        store.get("default", "mary").unwrap().user.get(Field::Roles),
        Some("Coordinator")
    );
    // notifyIfNewUser=TRUE: Mary gets the welcome notice; nobody else does.
    let notices: Vec<&str> = report.notices.iter().map(|n| n.user_id.as_str()).collect();
    assert_eq!(notices, ["mary"]);
}

/// The located import: six rows, one without an email; the valid five are
/// imported, line 5 is reported; an unknown role falls back to Standard with
/// a warning.
#[test]
fn located_import_five_out_of_six() {
    let mut store = InMemoryStore::new();
    store.set_catalog(
        "default",
        Catalog::new().roles(["Standard", "Manager"]).locations([
            Location::new("Berlin HQ").alias("BER"),
            Location::new("Paris"),
            Location::new("Munich"),
        ]),
    );
    let mut profile = Profile::default();
    profile.on_error = ErrorPolicy::SkipInvalid;
    profile.unknown_roles = RolePolicy::Fallback("Standard".into());
    let importer = Importer::with_profile("default", profile);
    let file = common::data("s3_users.csv");
    let report = importer.run(&file, Some("users.csv"), &mut store).unwrap();
    assert_eq!(report.summary.added, 5, "{}", report.render_text());
    assert_eq!(report.summary.failed, 1);
    let failed = report
        .rows
        .iter()
        .find(|r| r.outcome == Outcome::Failed)
        .unwrap();
    assert_eq!(failed.line, 5);
    assert_eq!(failed.issues[0].code, Code::MissingValue);
    // emp002's location alias BER is stored as the location's name.
    assert_eq!(
        store
            .get("default", "emp002")
            .unwrap()
            .user
            .get(Field::Location),
        Some("Berlin HQ")
    );
    // emp006's Superuser is not a role here: Standard instead, with a warning.
    assert_eq!(
        store
            .get("default", "emp006")
            .unwrap()
            .user
            .get(Field::Roles),
        Some("Standard")
    );
    assert_eq!(report.summary.warnings, 1);
}

/// The stepwise capped import: step 1 creates users in the platform; step 2
/// is an update-only import keyed by email that sets department and
/// permission group, and refuses users that do not exist yet.
#[test]
fn stepwise_two_step_import() {
    let mut store = InMemoryStore::new();
    store.set_catalog(
        "db",
        Catalog::new()
            .roles(Vec::<String>::new())
            .departments(["Sales", "R&D"])
            .groups(["Readers", "Editors"]),
    );
    let step1 = Importer::new("db");
    let r = step1
        .run(b"userId,firstName,lastName,email\nann,Ann,Lee,ann@example.com\nbob,Bob,Ray,bob@example.com\n", None, &mut store)
        .unwrap();
    assert_eq!(r.summary.added, 2);

    let mut profile = Profile::default();
    profile.mode = Mode::UpdateOnly;
    profile.key = KeyField::Email;
    profile.required = vec![Field::Email, Field::DepartmentId, Field::GroupName];
    let step2 = Importer::with_profile("db", profile);
    let file = b"email,departmentId,groupName\nANN@example.com,Sales,Editors\nbob@example.com,R&D,readers\ncat@example.com,Sales,Readers\n";
    let report = step2.run(file, None, &mut store).unwrap();
    // cat has no platform account yet: the whole file is refused (default policy).
    let cat = &report.rows[2];
    assert_eq!(
        (cat.outcome, cat.issues[0].code),
        (Outcome::Failed, Code::NotFound)
    );
    assert_eq!(report.summary.updated, 0);
    assert!(
        store
            .get("db", "ann")
            .unwrap()
            .user
            .get(Field::DepartmentId)
            .is_none()
    );

    // Without cat, both updates go through; the group's spelling is the catalog's.
    let fixed = b"email,departmentId,groupName\nANN@example.com,Sales,Editors\nbob@example.com,R&D,readers\n";
    let report = step2.run(fixed, None, &mut store).unwrap();
    assert_eq!(report.summary.updated, 2, "{}", report.render_text());
    let bob = &store.get("db", "bob").unwrap().user;
    assert_eq!(
        (bob.get(Field::DepartmentId), bob.get(Field::GroupName)),
        (Some("R&D"), Some("Readers"))
    );

    // An unknown department is an unknown_reference with a suggestion.
    let bad = b"email,departmentId,groupName\nann@example.com,Sale,Editors\n";
    let report = step2.run(bad, None, &mut store).unwrap();
    let issue = &report.rows[0].issues[0];
    assert_eq!(
        (issue.code, issue.suggestion.as_deref()),
        (Code::UnknownReference, Some("Sales"))
    );
}
