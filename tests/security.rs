//! The security guards of planning (self-lockout, grantable roles, mass
//! deletion), end to end: file in, report out, and the
//! directory untouched where it must be.

mod common;

use common::person;

use user_import::memory::InMemoryStore;
use user_import::{Code, Importer, MirrorAction, Mode, Outcome, Profile, Report, RolePolicy};

fn codes(r: &Report) -> Vec<Code> {
    r.issues
        .iter()
        .chain(r.rows.iter().flat_map(|x| &x.issues))
        .map(|i| i.code)
        .collect()
}

/// A snapshot of a tenant's users, to prove nothing changed.
fn snapshot(store: &InMemoryStore, tenant: &str) -> Vec<(String, u64)> {
    store
        .users(tenant)
        .map(|u| (u.user_id().to_owned(), u.version))
        .collect()
}

#[test]
fn another_tenants_rows_never_touch_this_tenant() {
    let mut store = InMemoryStore::new();
    store.insert("acme", person("ann", ""));
    store.insert("globex", person("boss", ""));
    store.insert("globex", person("victim", ""));
    let before_acme = snapshot(&store, "acme");
    let before_globex = snapshot(&store, "globex");
    let file = "userId,tenant,email,reportsTo,transaction\n\
                victim,globex,,,DELETE\n\
                mallory,GLOBEX,mallory@example.com,,\n\
                ann,,ann@example.com,boss,\n";
    let mut p = Profile::default();
    p.on_error = user_import::ErrorPolicy::SkipInvalid;
    let report = Importer::with_profile("acme", p)
        .run(file.as_bytes(), None, &mut store)
        .unwrap();
    assert_eq!(report.rows[0].issues[0].code, Code::TenantMismatch);
    assert_eq!(report.rows[1].issues[0].code, Code::TenantMismatch);
    // reportsTo into another tenant: that manager does not exist here.
    assert_eq!(report.rows[2].issues[0].code, Code::UnknownReference);
    assert!(report.rows.iter().all(|r| r.outcome == Outcome::Failed));
    assert_eq!(snapshot(&store, "acme"), before_acme);
    assert_eq!(snapshot(&store, "globex"), before_globex);
}

#[test]
fn a_file_cannot_grant_a_role_outside_the_grantable_set() {
    let mut store = InMemoryStore::new();
    store.insert("t", person("ann", "Tester"));
    let mut p = Profile::default();
    p.unknown_roles = RolePolicy::Create;
    p.guards = p.guards.grantable(["Tester", "Viewer"]);
    let importer = Importer::with_profile("t", p);
    for file in [
        // An existing role.
        "userId,email,roles\nann,ann@example.com,Tester|Admin\n",
        // A role the create policy would insert.
        "userId,email,roles\nbob,bob@example.com,Root\n",
    ] {
        let before = snapshot(&store, "t");
        let report = importer.run(file.as_bytes(), None, &mut store).unwrap();
        assert!(codes(&report).contains(&Code::RoleNotGrantable), "{file}");
        assert_eq!(report.summary.roles_added, 0);
        assert_eq!(snapshot(&store, "t"), before);
    }
    assert_eq!(store.roles("t"), ["Tester"]);
}

#[test]
fn the_acting_administrator_cannot_lock_themselves_out() {
    let mut store = InMemoryStore::new();
    store.insert("t", person("root", "Admin|Tester"));
    let importer = Importer::new("t").acting_user("root");
    for file in [
        "userId,email,transaction\nroot,,DELETE\n",
        "userId,email,enabled\nroot,root@example.com,no\n",
        "userId,email,roles\nroot,root@example.com,Tester\n",
    ] {
        let before = snapshot(&store, "t");
        let report = importer.run(file.as_bytes(), None, &mut store).unwrap();
        assert!(codes(&report).contains(&Code::SelfLockout), "{file}");
        assert_eq!(snapshot(&store, "t"), before, "{file}");
    }
    // Nor by mirror mode, which leaves their account alone.
    let mut p = Profile::default();
    p.mode = Mode::Mirror;
    p.mirror = MirrorAction::Delete;
    let report = Importer::with_profile("t", p)
        .acting_user("root")
        .run(b"userId,email\nnew,new@example.com\n", None, &mut store)
        .unwrap();
    assert!(codes(&report).contains(&Code::SelfLockout));
    assert!(store.get("t", "root").is_some());
}

#[test]
fn mass_removal_is_refused_whole() {
    let mut store = InMemoryStore::new();
    for i in 0..40 {
        store.insert("t", person(&format!("u{i:02}"), ""));
    }
    let before = snapshot(&store, "t");
    // Mirror mode with a file naming 5 of 40 users: 35 would be disabled.
    let mut p = Profile::default();
    p.mode = Mode::Mirror;
    let mut file = String::from("userId,email\n");
    for i in 0..5 {
        file.push_str(&format!("u{i:02},u{i:02}@example.com\n"));
    }
    let report = Importer::with_profile("t", p)
        .run(file.as_bytes(), None, &mut store)
        .unwrap();
    assert!(report.rejected);
    assert_eq!(report.issues[0].code, Code::GuardTripped);
    assert_eq!(snapshot(&store, "t"), before);
    // A delete-heavy file over the cap.
    let mut p = Profile::default();
    p.guards = p.guards.max_deletes(5);
    let mut file = String::from("userId,transaction\n");
    for i in 0..6 {
        file.push_str(&format!("u{i:02},DELETE\n"));
    }
    let report = Importer::with_profile("t", p)
        .run(file.as_bytes(), None, &mut store)
        .unwrap();
    assert!(codes(&report).contains(&Code::GuardTripped));
    assert_eq!(snapshot(&store, "t"), before);
}
