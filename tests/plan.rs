//! Planning: matching, modes, deletes, changes, directory checks,
//! ordering, guards, notices, serialization.

mod common;

use user_import::memory::InMemoryStore;
use user_import::{
    Attribute, BlankPolicy, Catalog, Code, Field, Importer, KeyField, ListPolicy, Location,
    MirrorAction, Mode, Op, Plan, Planned, Profile, RolePolicy, Severity, User,
};

const T: &str = "acme";

fn person(id: &str) -> User {
    User::builder()
        .set(Field::UserId, id)
        .set(Field::Email, &format!("{id}@example.com"))
        .set(Field::FirstName, "F")
        .set(Field::LastName, id)
        .set(Field::Enabled, "true")
        .set(Field::TaskNotification, "Email")
        .build()
}

fn store_with(users: &[User]) -> InMemoryStore {
    let mut s = InMemoryStore::new();
    for u in users {
        s.insert(T, u.clone());
    }
    s
}

fn plan_with(profile: Profile, file: &str, store: &mut InMemoryStore) -> Plan {
    let importer = Importer::with_profile(T, profile);
    importer
        .plan(importer.validate(file.as_bytes(), None), store)
        .unwrap()
}

fn plan(file: &str, store: &mut InMemoryStore) -> Plan {
    plan_with(Profile::default(), file, store)
}

fn planned(p: &Plan) -> Vec<Planned> {
    p.rows().iter().map(|r| r.planned).collect()
}

fn codes(p: &Plan, line: u64) -> Vec<Code> {
    p.row_issues(line).iter().map(|i| i.code).collect()
}

#[test]
fn matching_by_key_then_by_email_when_the_key_is_blank() {
    let mut store = store_with(&[person("ann")]);
    let mut profile = Profile::default();
    profile.required = vec![Field::Email];
    let p = plan_with(
        profile,
        "userId,email,lastName\n,ANN@example.com,Archer\nann,ann@example.com,Archer\n",
        &mut store,
    );
    // Both rows name ann (the first by email only): a duplicate email.
    assert_eq!(codes(&p, 2), [Code::DuplicateEmail]);
    let mut profile = Profile::default();
    profile.required = vec![Field::Email];
    let p = plan_with(
        profile,
        "userId,email,lastName\n,ANN@example.com,Archer\n",
        &mut store,
    );
    assert_eq!(planned(&p), [Planned::Update]);
    let Op::Update {
        user_id, changes, ..
    } = &p.ops()[0]
    else {
        panic!()
    };
    assert_eq!(user_id, "ann");
    assert_eq!(changes[0].to_string(), "lastName: \"ann\" → \"Archer\"");
}

#[test]
fn identity_conflict_and_email_taken() {
    let mut store = store_with(&[person("ann"), person("bob")]);
    // ann's row carries bob's email.
    let p = plan("userId,email\nann,bob@example.com\n", &mut store);
    assert_eq!(codes(&p, 2), [Code::IdentityConflict]);
    // A new user with bob's email.
    let p = plan("userId,email\ncat,Bob@Example.com\n", &mut store);
    assert_eq!(codes(&p, 2), [Code::EmailTaken]);
    assert!(p.ops().is_empty());
}

#[test]
fn modes_create_only_and_update_only() {
    let mut store = store_with(&[person("ann")]);
    let file = "userId,email\nann,ann@example.com\nnew,new@example.com\n";
    let mut p = Profile::default();
    p.mode = Mode::CreateOnly;
    p.on_error = user_import::ErrorPolicy::SkipInvalid;
    let cp = plan_with(p.clone(), file, &mut store);
    assert_eq!(planned(&cp), [Planned::Fail, Planned::Create]);
    assert_eq!(codes(&cp, 2), [Code::AlreadyExists]);
    p.mode = Mode::UpdateOnly;
    let up = plan_with(p, file, &mut store);
    assert_eq!(planned(&up), [Planned::Unchanged, Planned::Fail]);
    assert_eq!(codes(&up, 3), [Code::NotFound]);
}

#[test]
fn delete_rows_and_deleting_a_missing_user() {
    let mut store = store_with(&[person("ann")]);
    let p = plan(
        "userId,email,transaction\nann,,DELETE\nghost,,delete\n",
        &mut store,
    );
    assert_eq!(planned(&p), [Planned::Delete, Planned::Skip]);
    let i = &p.row_issues(3)[0];
    assert_eq!((i.code, i.severity), (Code::NotFound, Severity::Warning));
    assert!(!p.is_blocked(), "a warning does not reject the file");
    // Create-only files may not delete.
    let mut cp = Profile::default();
    cp.mode = Mode::CreateOnly;
    let p = plan_with(cp, "userId,email,transaction\nann,,DELETE\n", &mut store);
    assert_eq!(codes(&p, 2), [Code::InvalidValue]);
}

#[test]
fn unchanged_rows_have_no_operation_and_changes_are_field_level() {
    let mut store = store_with(&[person("ann")]);
    let p = plan(
        "userId,email,firstName,lastName,enabled,taskNotification\n\
         ann,ann@example.com,F,ann,TRUE,email\n",
        &mut store,
    );
    assert_eq!(planned(&p), [Planned::Unchanged]);
    assert!(p.ops().is_empty());
    let p = plan(
        "userId,email,lastName,enabled\nann,ann@example.com,Archer,no\n",
        &mut store,
    );
    let Op::Update {
        changes, version, ..
    } = &p.ops()[0]
    else {
        panic!()
    };
    assert_eq!(*version, store.get(T, "ann").unwrap().version);
    let fields: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        fields,
        [
            "lastName: \"ann\" → \"Archer\"",
            "enabled: \"true\" → \"false\""
        ]
    );
}

#[test]
fn blank_cells_keep_by_default_and_clear_on_request() {
    let mut store = store_with(&[person("ann")]);
    let file = "userId,email,firstName\nann,ann@example.com,\n";
    assert_eq!(planned(&plan(file, &mut store)), [Planned::Unchanged]);
    let mut p = Profile::default();
    p.blank = BlankPolicy::Clear;
    let cleared = plan_with(p, file, &mut store);
    let Op::Update { changes, .. } = &cleared.ops()[0] else {
        panic!()
    };
    assert_eq!(changes[0].to_string(), "firstName: \"F\" → (none)");
}

#[test]
fn lists_replace_by_default_or_only_add() {
    let mut store = store_with(&[person("ann")
        .to_builder()
        .set(Field::Roles, "Admin|Tester")
        .build()]);
    let file = "userId,email,roles\nann,ann@example.com,Tester|Viewer\n";
    let mut p = Profile::default();
    p.unknown_roles = RolePolicy::Create;
    let replace = plan_with(p.clone(), file, &mut store);
    let Op::Update { changes, .. } = &replace.ops()[1] else {
        panic!("{:?}", replace.ops())
    };
    assert_eq!(changes[0].new.as_deref(), Some("Tester|Viewer"));
    p.lists = ListPolicy::AddOnly;
    let add = plan_with(p, file, &mut store);
    let Op::Update { changes, .. } = &add.ops()[1] else {
        panic!()
    };
    assert_eq!(changes[0].new.as_deref(), Some("Admin|Tester|Viewer"));
}

#[test]
fn unknown_role_policies() {
    let mut store = store_with(&[]);
    store.set_catalog(T, Catalog::new().roles(["Admin", "Standard"]));
    let file = "userId,email,roles\nann,ann@example.com,Admn\n";
    // Reject (default): an error with the closest name.
    let p = plan(file, &mut store);
    let i = &p.row_issues(2)[0];
    assert_eq!(
        (i.code, i.suggestion.as_deref()),
        (Code::UnknownRole, Some("Admin"))
    );
    // Create: a role op, counted as Roles Added.
    let mut c = Profile::default();
    c.unknown_roles = RolePolicy::Create;
    let p = plan_with(c, file, &mut store);
    assert_eq!(
        p.ops()[0],
        Op::CreateRole {
            name: "Admn".into()
        }
    );
    assert_eq!(user_import::Report::dry_run(&p).summary.roles_added, 1);
    // Fallback: a warning and the fallback role.
    let mut f = Profile::default();
    f.unknown_roles = RolePolicy::Fallback("Standard".into());
    let p = plan_with(f, file, &mut store);
    assert_eq!(p.row_issues(2)[0].severity, Severity::Warning);
    let Op::Create { user, .. } = &p.ops()[0] else {
        panic!()
    };
    assert_eq!(user.get(Field::Roles), Some("Standard"));
}

#[test]
fn unknown_location_department_and_manager() {
    let mut store = store_with(&[person("boss")]);
    store.set_catalog(
        T,
        Catalog::new()
            .roles(Vec::<String>::new())
            .locations([Location::new("Paris")])
            .departments(["Sales"]),
    );
    let p = plan(
        "userId,email,location,departmentId,reportsTo\n\
         a,a@x.io,Pariss,Sales,boss\n\
         b,b@x.io,Paris,Sale,boss\n\
         c,c@x.io,Paris,Sales,nobody\n\
         d,d@x.io,paris,sales,BOSS\n",
        &mut store,
    );
    assert_eq!(codes(&p, 2), [Code::UnknownReference]);
    assert_eq!(p.row_issues(2)[0].suggestion.as_deref(), Some("Paris"));
    assert_eq!(codes(&p, 3), [Code::UnknownReference]);
    assert_eq!(codes(&p, 4), [Code::UnknownReference]);
    assert_eq!(p.row_issues(4)[0].column.as_deref(), Some("reportsTo"));
    assert_eq!(planned(&p)[3], Planned::Create);
}

#[test]
fn catalog_issues_name_the_files_own_column_when_a_mapping_renames_it() {
    let mut store = store_with(&[]);
    store.set_catalog(
        T,
        Catalog::new()
            .roles(["Staff"])
            .locations([Location::new("Paris")]),
    );
    let mut profile = Profile::default();
    let mut m = user_import::ColumnMapping::new();
    m.map("Standort", user_import::Column::Field(Field::Location))
        .map("Rollen", user_import::Column::Field(Field::Roles));
    profile.mapping = m;
    let p = plan_with(
        profile,
        "userId,email,Standort,Rollen\n\
         a,a@x.io,Pariss,Staff\n\
         b,b@x.io,Paris,Stuff\n",
        &mut store,
    );
    assert_eq!(codes(&p, 2), [Code::UnknownReference]);
    assert_eq!(p.row_issues(2)[0].column.as_deref(), Some("Standort"));
    assert_eq!(codes(&p, 3), [Code::UnknownRole]);
    assert_eq!(p.row_issues(3)[0].column.as_deref(), Some("Rollen"));
}

#[test]
fn locked_fields_are_kept_with_a_warning() {
    let mut store = store_with(&[person("ann")
        .to_builder()
        .set(Field::Location, "Paris")
        .build()]);
    store.lock(T, "ann", Field::Location);
    let p = plan(
        "userId,email,location,lastName\nann,ann@example.com,Berlin,Archer\n",
        &mut store,
    );
    let i = &p.row_issues(2)[0];
    assert_eq!(
        (i.code, i.severity, i.column.as_deref()),
        (Code::FieldLocked, Severity::Warning, Some("location"))
    );
    let Op::Update { changes, .. } = &p.ops()[0] else {
        panic!()
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field, Attribute::Field(Field::LastName));
}

#[test]
fn managers_are_created_before_their_reports_whatever_the_row_order() {
    let mut store = store_with(&[]);
    let p = plan(
        "userId,email,reportsTo\nc,c@x.io,b\nb,b@x.io,a\na,a@x.io,\nz,z@x.io,a\n",
        &mut store,
    );
    let order: Vec<&str> = p.ops().iter().filter_map(Op::user_id).collect();
    // Each user after their manager; otherwise by user id.
    assert_eq!(order, ["a", "b", "c", "z"]);
}

#[test]
fn an_email_can_move_to_another_user_in_one_file() {
    let mut store = store_with(&[person("ann"), person("bob")]);
    // ann takes bob's email, bob takes a new one, and cat takes ann's old one.
    let p = plan(
        "userId,email\nann,bob@example.com\ncat,ann@example.com\nbob,bob2@example.com\n",
        &mut store,
    );
    assert_eq!(
        planned(&p),
        [Planned::Update, Planned::Create, Planned::Update]
    );
    let order: Vec<&str> = p.ops().iter().filter_map(Op::user_id).collect();
    assert_eq!(
        order,
        ["bob", "ann", "cat"],
        "each email is released before it is taken"
    );
    let report = Importer::new(T).apply(&p, &mut store).unwrap();
    assert_eq!(report.summary.failed, 0, "{}", report.render_text());
    assert_eq!(
        store.get(T, "cat").unwrap().user.email(),
        Some("ann@example.com")
    );
    // A swap cannot be ordered: ann and cat trade emails.
    let p = plan(
        "userId,email\nann,ann@example.com\ncat,bob@example.com\n",
        &mut store,
    );
    assert_eq!(planned(&p), [Planned::Fail, Planned::Fail]);
    assert!(p.row_issues(2)[0].message.contains("swap"));
}

#[test]
fn deleting_a_manager_who_keeps_reports_is_an_error() {
    let mut store = store_with(&[
        person("boss"),
        person("ann")
            .to_builder()
            .set(Field::ReportsTo, "boss")
            .build(),
        person("bob")
            .to_builder()
            .set(Field::ReportsTo, "boss")
            .build(),
    ]);
    let p = plan("userId,email,transaction\nboss,,DELETE\n", &mut store);
    assert_eq!(codes(&p, 2), [Code::HasReports]);
    assert!(p.row_issues(2)[0].message.contains("ann, bob"));
    // Deleting the reports too, or moving them, makes it fine — and reports go first.
    let p = plan(
        "userId,email,reportsTo,transaction\nboss,,,DELETE\nann,,,DELETE\nbob,bob@example.com,ann2,\nann2,ann2@x.io,,\n",
        &mut store,
    );
    assert_eq!(
        planned(&p),
        [
            Planned::Delete,
            Planned::Delete,
            Planned::Update,
            Planned::Create
        ]
    );
    let deletes: Vec<&str> = p
        .ops()
        .iter()
        .filter(|o| matches!(o, Op::Delete { .. }))
        .filter_map(Op::user_id)
        .collect();
    assert_eq!(deletes, ["ann", "boss"]);
}

#[test]
fn self_lockout_guards() {
    let admin = person("root")
        .to_builder()
        .set(Field::Roles, "Admin|Tester")
        .build();
    let mut store = store_with(&[admin]);
    let importer = Importer::new(T).acting_user("ROOT");
    for file in [
        "userId,email,transaction\nroot,,DELETE\n",
        "userId,email,enabled\nroot,root@example.com,false\n",
        "userId,email,roles\nroot,root@example.com,Tester\n",
    ] {
        let p = importer
            .plan(importer.validate(file.as_bytes(), None), &mut store)
            .unwrap();
        assert_eq!(codes(&p, 2), [Code::SelfLockout], "{file}");
    }
    // Someone else may be disabled.
    let p = Importer::new(T)
        .acting_user("other")
        .plan(
            Importer::new(T).validate(b"userId,email,enabled\nroot,root@example.com,false\n", None),
            &mut store,
        )
        .unwrap();
    assert_eq!(planned(&p), [Planned::Update]);
}

#[test]
fn roles_outside_the_grantable_set_are_refused_even_when_created() {
    let mut store = store_with(&[person("ann")
        .to_builder()
        .set(Field::Roles, "Admin")
        .build()]);
    let mut p = Profile::default();
    p.unknown_roles = RolePolicy::Create;
    p.guards = p.guards.grantable(["Tester", "Viewer"]);
    let plan = plan_with(
        p,
        "userId,email,roles\nann,ann@example.com,Admin|Tester\nbob,bob@x.io,SuperAdmin\ncat,cat@x.io,Viewer\n",
        &mut store,
    );
    // ann keeps Admin (not granted by the file) and gains Tester: fine.
    assert_eq!(
        planned(&plan),
        [Planned::Update, Planned::Fail, Planned::Create]
    );
    assert_eq!(codes(&plan, 3), [Code::RoleNotGrantable]);
    assert!(
        !plan
            .ops()
            .iter()
            .any(|o| matches!(o, Op::CreateRole { name } if name == "SuperAdmin"))
    );
}

#[test]
fn guard_trips_on_too_many_deletes() {
    let users: Vec<User> = (0..30).map(|i| person(&format!("u{i}"))).collect();
    let mut store = store_with(&users);
    let mut file = String::from("userId,email,transaction\n");
    for i in 0..5 {
        file.push_str(&format!("u{i},,DELETE\n"));
    }
    let mut p = Profile::default();
    p.guards = p.guards.max_deletes(3);
    let plan = plan_with(p.clone(), &file, &mut store);
    assert!(plan.is_blocked());
    assert_eq!(plan.file_issues()[0].code, Code::GuardTripped);
    p.guards.override_guards = true;
    assert!(!plan_with(p, &file, &mut store).is_blocked());
    // Share: 20 of 30 users.
    let mut file = String::from("userId,email,transaction\n");
    for i in 0..20 {
        file.push_str(&format!("u{i},,DELETE\n"));
    }
    let plan = plan_with(Profile::default(), &file, &mut store);
    assert!(
        plan.file_issues()
            .iter()
            .any(|i| i.code == Code::GuardTripped)
    );
}

#[test]
fn mirror_mode_disables_or_deletes_users_absent_from_the_file() {
    let users: Vec<User> = ["a", "b", "c", "d"].iter().map(|i| person(i)).collect();
    let mut store = store_with(&users);
    let mut p = Profile::default();
    p.mode = Mode::Mirror;
    let plan = plan_with(
        p.clone(),
        "userId,email\na,a@example.com\nb,b@example.com\nnew,new@x.io\n",
        &mut store,
    );
    assert!(!plan.is_blocked(), "{:?}", plan.file_issues());
    let report = user_import::Report::dry_run(&plan);
    let dir: Vec<(&str, user_import::Outcome)> = report
        .directory
        .iter()
        .map(|d| (d.user_id.as_str(), d.outcome))
        .collect();
    assert_eq!(
        dir,
        [
            ("c", user_import::Outcome::Updated),
            ("d", user_import::Outcome::Updated)
        ]
    );
    p.mirror = MirrorAction::Delete;
    let plan = plan_with(
        p.clone(),
        "userId,email\na,a@example.com\nb,b@example.com\n",
        &mut store,
    );
    assert_eq!(user_import::Report::dry_run(&plan).summary.deleted, 2);
    // The acting user is never mirrored away.
    let importer = Importer::with_profile(T, p).acting_user("c");
    let plan = importer
        .plan(
            importer.validate(b"userId,email\na,a@example.com\nb,b@example.com\n", None),
            &mut store,
        )
        .unwrap();
    assert_eq!(user_import::Report::dry_run(&plan).summary.deleted, 1);
    assert!(
        plan.file_issues()
            .iter()
            .any(|i| i.code == Code::SelfLockout)
    );
}

#[test]
fn welcome_notices_only_for_created_users_who_asked() {
    let mut store = store_with(&[person("ann")]);
    let p = plan(
        "userId,email,firstName,notifyIfNewUser\nann,ann@example.com,F,true\nbob,bob@x.io,Bob,true\ncat,cat@x.io,Cat,false\n",
        &mut store,
    );
    let n: Vec<(&str, Option<&str>)> = p
        .notices()
        .iter()
        .map(|n| (n.user_id.as_str(), n.first_name.as_deref()))
        .collect();
    assert_eq!(n, [("bob", Some("Bob"))]);
}

#[test]
fn a_stored_plan_applied_after_a_change_gives_a_conflict() {
    let mut store = store_with(&[person("ann"), person("bob")]);
    let importer = Importer::new(T);
    let p = plan(
        "userId,email,lastName\nann,ann@example.com,A2\nbob,bob@example.com,B2\n",
        &mut store,
    );
    let stored = serde_json::to_string(&p).unwrap();
    // Someone edits ann meanwhile.
    assert!(store.touch(T, "ann", Field::FirstName, "Anne"));
    let p: Plan = serde_json::from_str(&stored).unwrap();
    let report = importer.apply(&p, &mut store).unwrap();
    // All or nothing (the default): ann's conflict rolls bob back too.
    let outcomes: Vec<_> = report.rows.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [user_import::Outcome::Failed, user_import::Outcome::Skipped]
    );
    assert_eq!(report.rows[0].issues[0].code, Code::Conflict);
    assert_eq!(
        store.get(T, "ann").unwrap().user.get(Field::FirstName),
        Some("Anne")
    );
    assert_eq!(
        store.get(T, "bob").unwrap().user.get(Field::LastName),
        Some("bob")
    );
}

#[test]
fn email_as_key_matches_by_email_and_refuses_to_change_the_user_id() {
    let mut store = store_with(&[person("ann")]);
    let mut p = Profile::default();
    p.key = KeyField::Email;
    p.required = vec![Field::Email];
    let plan = plan_with(
        p.clone(),
        "email,lastName\nANN@example.com,Archer\nnew@x.io,New\n",
        &mut store,
    );
    assert_eq!(planned(&plan), [Planned::Update, Planned::Create]);
    let Op::Create { user, .. } = &plan.ops()[0] else {
        panic!()
    };
    assert_eq!(
        user.user_id(),
        Some("new@x.io"),
        "the email stands in for a missing user id"
    );
    let plan = plan_with(p, "email,userId\nann@example.com,someone\n", &mut store);
    assert_eq!(
        codes(&plan, 2),
        [Code::IdentityConflict],
        "user ids cannot be changed"
    );
}

#[test]
fn a_fallback_role_that_does_not_exist_is_an_error_not_a_broken_user() {
    let mut store = store_with(&[]);
    store.set_catalog(T, Catalog::new().roles(["Admin"]));
    let mut f = Profile::default();
    f.unknown_roles = RolePolicy::Fallback("Standard".into());
    let p = plan_with(
        f,
        "userId,email,roles\nann,ann@example.com,Superuser\n",
        &mut store,
    );
    assert_eq!(codes(&p, 2), [Code::UnknownRole]);
    assert!(p.row_issues(2)[0].is_error());
    assert!(p.ops().is_empty());
}

#[test]
fn email_key_files_can_create_a_manager_and_their_reports() {
    let mut store = store_with(&[]);
    let mut p = Profile::default();
    p.key = KeyField::Email;
    p.required = vec![Field::Email];
    p.batch_size = 1; // the manager's row is planned in an earlier batch
    let plan = plan_with(
        p,
        "email,userId,reportsTo\nboss@x.io,boss,\nann@x.io,ann,boss\n",
        &mut store,
    );
    assert_eq!(
        planned(&plan),
        [Planned::Create, Planned::Create],
        "{:?}",
        plan.issues().collect::<Vec<_>>()
    );
}

#[test]
fn a_created_user_reporting_to_a_deleted_manager_stops_the_delete() {
    let mut store = store_with(&[person("boss")]);
    let mut p = Profile::default();
    p.batch_size = 1;
    let plan = plan_with(
        p,
        "userId,email,reportsTo,transaction\nnew,new@x.io,boss,\nboss,,,DELETE\n",
        &mut store,
    );
    assert_eq!(planned(&plan), [Planned::Create, Planned::Fail]);
    assert_eq!(codes(&plan, 3), [Code::HasReports]);
}

#[test]
fn a_delete_found_by_email_still_checks_the_reports() {
    let mut store = store_with(&[
        person("boss"),
        person("emp")
            .to_builder()
            .set(Field::ReportsTo, "boss")
            .build(),
    ]);
    let p = plan(
        "userId,email,transaction\n,boss@example.com,DELETE\n",
        &mut store,
    );
    assert_eq!(codes(&p, 2), [Code::HasReports]);
    let mut k = Profile::default();
    k.key = KeyField::Email;
    k.required = vec![Field::Email];
    let p = plan_with(
        k,
        "email,transaction\nboss@example.com,DELETE\n",
        &mut store,
    );
    assert_eq!(codes(&p, 2), [Code::HasReports]);
}

#[test]
fn mirror_delete_keeps_every_manager_someone_who_stays_reports_to() {
    let mut store = store_with(&[
        person("c"),
        person("b").to_builder().set(Field::ReportsTo, "c").build(),
        person("a").to_builder().set(Field::ReportsTo, "b").build(),
        person("me")
            .to_builder()
            .set(Field::ReportsTo, "mgr")
            .build(),
        person("mgr"),
        person("m"),
        person("gone"),
    ]);
    let mut p = Profile::default();
    p.mode = Mode::Mirror;
    p.mirror = MirrorAction::Delete;
    p.guards.max_delete_share = None;
    let importer = Importer::with_profile(T, p).acting_user("me");
    let plan = importer
        .plan(
            importer.validate(
                b"userId,email,reportsTo\na,a@example.com,b\nnew1,new1@x.io,m\n",
                None,
            ),
            &mut store,
        )
        .unwrap();
    let deleted: Vec<&str> = plan
        .ops()
        .iter()
        .filter(|o| matches!(o, Op::Delete { .. }))
        .filter_map(Op::user_id)
        .collect();
    assert_eq!(
        deleted,
        ["gone"],
        "b and c (a's chain), mgr (mine) and m (new1's) stay"
    );
}

#[test]
fn two_rows_about_one_directory_user_both_fail_whatever_their_order() {
    let mut store = store_with(&[person("x")]);
    for file in [
        "userId,email,lastName,transaction\nx,x@example.com,New,\n,x@example.com,,DELETE\n",
        "userId,email,lastName,transaction\n,x@example.com,,DELETE\nx,x@example.com,New,\n",
        "userId,email,transaction\nx,,DELETE\n,x@example.com,DELETE\n",
    ] {
        let mut p = Profile::default();
        p.required = vec![Field::Email];
        let plan = plan_with(p, file, &mut store);
        assert_eq!(planned(&plan), [Planned::Fail, Planned::Fail], "{file}");
        assert_eq!(codes(&plan, 2), [Code::DuplicateKey]);
        assert!(plan.ops().is_empty());
    }
    // With email as the key, two rows may not share a user id either.
    let mut p = Profile::default();
    p.key = KeyField::Email;
    p.required = vec![Field::Email];
    let v = Importer::with_profile(T, p).validate(b"userId,email\nu1,a@x.io\nU1,b@x.io\n", None);
    assert_eq!(
        v.issues().filter(|i| i.code == Code::DuplicateKey).count(),
        2
    );
}

/// Each chunk's request names exactly that chunk's values, normalized, even
/// though a request reuses the previous one's strings: a shorter chunk
/// after a longer one leaves nothing of it behind.
#[test]
fn each_request_names_only_its_own_chunk() {
    use user_import::{Request, Response};
    let file = "userId,email,reportsTo,transaction\n\
                A1,A1@X.io,Boss,\n\
                a2,a2@x.io,,\n\
                b1,,,DELETE\n\
                bad,not-an-email,,\n\
                ÜNÏ,C1@X.io,,\n";
    let mut profile = Profile::default();
    profile.batch_size = 2;
    profile.on_error = user_import::ErrorPolicy::SkipInvalid;
    let importer = Importer::with_profile(T, profile);
    let mut planner = importer.planner(importer.validate(file.as_bytes(), None));
    let mut asked = Vec::new();
    while let Some(request) = planner.poll() {
        let answer = match request {
            Request::Catalog { .. } => Response::Catalog(Catalog::new()),
            Request::Count { .. } => Response::Count(0),
            Request::Fetch(f) => {
                asked.push((f.user_ids.clone(), f.emails.clone(), f.managers.clone()));
                Response::Users(Vec::new())
            }
            _ => Response::Users(Vec::new()),
        };
        planner.respond(answer).unwrap();
    }
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        asked,
        [
            (
                strings(&["a1", "boss", "a2"]),
                strings(&["a1@x.io", "a2@x.io"]),
                strings(&[])
            ),
            (strings(&["b1"]), strings(&[]), strings(&["b1"])),
            (strings(&["ünï"]), strings(&["c1@x.io"]), strings(&[])),
        ]
    );
}

#[test]
fn each_new_role_is_created_once_whatever_its_spellings_and_only_when_an_op_needs_it() {
    let mut store = store_with(&[person("ann"), person("bob")]);
    store.set_catalog(T, Catalog::new().roles(["Staff"]));
    let mut p = Profile::default();
    p.unknown_roles = RolePolicy::Create;
    // Coach in three spellings, from a create and two updates; Nurse only
    // on a row that fails (a bad email), so no op needs it.
    let file = "userId,email,roles\n\
                cat,cat@x.io,coach|Staff\n\
                ann,ann@example.com,Coach\n\
                bob,bob@example.com,COACH|Pilot\n\
                dan,not-an-email,Nurse\n";
    let plan = plan_with(p, file, &mut store);
    assert_eq!(
        planned(&plan),
        [
            Planned::Create,
            Planned::Update,
            Planned::Update,
            Planned::Fail
        ]
    );
    let created = common::created_roles(&plan);
    // One op per role, first in the plan, in order of their names; each
    // in the one spelling the rows were given (the first in byte order).
    assert_eq!(created, ["COACH", "Pilot"]);
    assert!(
        plan.ops()[..2]
            .iter()
            .all(|o| matches!(o, Op::CreateRole { .. }))
    );
    let Op::Create { user, .. } = &plan.ops()[2] else {
        panic!("{:?}", plan.ops())
    };
    assert_eq!(user.get(Field::Roles), Some("COACH|Staff"));
}
