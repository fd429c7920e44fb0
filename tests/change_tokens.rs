//! Change tokens in list cells (`ListPolicy::Tokens`): `+X` adds, `-X`
//! removes, a plain list still replaces, through `Importer` and the
//! in-memory store; and the planned list against its set-algebra
//! definition.

mod common;

use common::person;

use proptest::prelude::*;
use user_import::memory::InMemoryStore;
use user_import::{
    Attribute, AttributeKind, BlankPolicy, Catalog, Code, CustomAttribute, Field, Importer,
    ListPolicy, Op, Outcome, Plan, Planned, Profile, Report, RolePolicy, RunOptions, Severity,
};

const T: &str = "acme";

/// Ann (Tester, Viewer) and Bob (Admin), in a directory that knows the
/// roles Admin, Tester, Viewer and Guest.
fn store() -> InMemoryStore {
    let mut s = InMemoryStore::new();
    s.set_catalog(
        T,
        Catalog::new().roles(["Admin", "Tester", "Viewer", "Guest"]),
    );
    s.insert(T, person("ann", "Tester|Viewer"));
    s.insert(T, person("bob", "Admin"));
    s
}

fn tokens() -> Profile {
    let mut p = Profile::default();
    p.lists = ListPolicy::Tokens;
    p
}

fn plan_with(profile: Profile, file: &str, store: &mut InMemoryStore) -> Plan {
    let importer = Importer::with_profile(T, profile);
    importer
        .plan(importer.validate(file.as_bytes(), None), store)
        .unwrap()
}

fn roles_file(rows: &[(&str, &str)]) -> String {
    let mut f = String::from("userId,email,roles\n");
    for (id, roles) in rows {
        f.push_str(&format!("{id},{id}@example.com,{roles}\n"));
    }
    f
}

/// The roles each update of `plan` sets, by user id.
fn new_roles(plan: &Plan) -> Vec<(String, Option<String>)> {
    plan.ops()
        .iter()
        .filter_map(|op| match op {
            Op::Update {
                user_id, changes, ..
            } => changes
                .iter()
                .find(|c| c.field == Attribute::Field(Field::Roles))
                .map(|c| (user_id.clone(), c.new.clone())),
            _ => None,
        })
        .collect()
}

fn stored_roles(store: &InMemoryStore, id: &str) -> Option<String> {
    store
        .get(T, id)
        .and_then(|u| u.user.get(Field::Roles).map(str::to_owned))
}

fn planned(plan: &Plan) -> Vec<Planned> {
    plan.rows().iter().map(|r| r.planned).collect()
}

#[test]
fn plus_adds_a_role_and_minus_removes_one_keeping_the_others() {
    let mut s = store();
    let file = roles_file(&[("ann", "+Admin"), ("bob", "-admin|+Guest")]);
    let importer = Importer::with_profile(T, tokens());
    let plan = importer
        .plan(importer.validate(file.as_bytes(), None), &mut s)
        .unwrap();
    assert_eq!(
        new_roles(&plan),
        [
            ("ann".to_owned(), Some("Admin|Tester|Viewer".to_owned())),
            ("bob".to_owned(), Some("Guest".to_owned())),
        ]
    );
    // The change names the old list too, for review and undo.
    let Op::Update { changes, .. } = &plan.ops()[0] else {
        panic!("{:?}", plan.ops())
    };
    assert_eq!(changes[0].old.as_deref(), Some("Tester|Viewer"));
    let report = importer.apply(&plan, &mut s).unwrap();
    assert_eq!(report.summary.updated, 2);
    assert_eq!(
        stored_roles(&s, "ann").as_deref(),
        Some("Admin|Tester|Viewer")
    );
    assert_eq!(stored_roles(&s, "bob").as_deref(), Some("Guest"));
    // Removing the last role leaves none.
    let plan = plan_with(tokens(), &roles_file(&[("bob", "-Guest")]), &mut s);
    assert_eq!(new_roles(&plan), [("bob".to_owned(), None)]);
}

#[test]
fn the_undo_of_a_change_puts_the_lists_back() {
    let mut s = store();
    let mut p = tokens();
    p.unknown_roles = RolePolicy::Create;
    let importer = Importer::with_profile(T, p);
    let file = roles_file(&[("ann", "+Ops|-Viewer"), ("cy", "+Tester")]);
    let plan = importer
        .plan(importer.validate(file.as_bytes(), None), &mut s)
        .unwrap();
    let mut undo = None;
    importer
        .apply_with(&plan, &mut s, RunOptions::new().undo(&mut undo))
        .unwrap();
    assert_eq!(stored_roles(&s, "ann").as_deref(), Some("Ops|Tester"));
    importer.apply(&undo.expect("an undo"), &mut s).unwrap();
    assert_eq!(stored_roles(&s, "ann").as_deref(), Some("Tester|Viewer"));
    assert!(s.get(T, "cy").is_none());
    assert!(!s.roles(T).contains(&"Ops".to_owned()));
}

#[test]
fn a_cell_mixing_plain_items_and_changes_is_an_error_at_its_line_and_column() {
    let mut s = store();
    // The column as the file writes it.
    let file = "userId,email,Roles\n\
                ann,ann@example.com,+Admin\n\
                bob,bob@example.com,Viewer|-Admin\n";
    let importer = Importer::with_profile(T, tokens());
    let v = importer.validate(file.as_bytes(), None);
    let issues: Vec<_> = v.issues().collect();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let i = issues[0];
    assert_eq!(
        (i.code, i.severity, i.line, i.column.as_deref()),
        (Code::InvalidValue, Severity::Error, Some(3), Some("Roles"))
    );
    assert_eq!(i.value.as_deref(), Some("Viewer|-Admin"));
    assert_eq!(i.suggestion.as_deref(), Some("+Viewer|-Admin"));
    assert!(
        i.to_string().starts_with(
            "line 3, Roles: mixes plain items with changes: write + or - before every item"
        ),
        "{i}"
    );
    let plan = importer.plan(v, &mut s).unwrap();
    assert_eq!(planned(&plan), [Planned::Update, Planned::Fail]);
    assert!(new_roles(&plan).iter().all(|(id, _)| id == "ann"));
    // A sign without a name, and a cell adding and removing one role.
    for (cell, value) in [("+Admin|-", "-"), ("+Admin|-ADMIN", "Admin")] {
        let v = importer.validate(roles_file(&[("ann", cell)]).as_bytes(), None);
        let i = v.issues().next().unwrap();
        assert_eq!(
            (i.code, i.line, i.value.as_deref()),
            (Code::InvalidValue, Some(2), Some(value)),
            "{cell}"
        );
    }
}

#[test]
fn a_plain_list_still_replaces_and_an_equal_one_is_unchanged() {
    let mut s = store();
    let file = roles_file(&[("ann", "viewer|TESTER"), ("bob", "Guest|Viewer")]);
    let plan = plan_with(tokens(), &file, &mut s);
    assert_eq!(planned(&plan), [Planned::Unchanged, Planned::Update]);
    assert_eq!(
        new_roles(&plan),
        [("bob".to_owned(), Some("Guest|Viewer".to_owned()))]
    );
}

#[test]
fn a_change_that_changes_nothing_is_unchanged_in_the_plan_and_the_report() {
    let mut s = store();
    // Ann has Tester; nobody knows Ghost.
    let file = roles_file(&[("ann", "+tester|-Ghost|-Admin"), ("bob", "+Admin")]);
    let importer = Importer::with_profile(T, tokens());
    let plan = importer
        .plan(importer.validate(file.as_bytes(), None), &mut s)
        .unwrap();
    assert_eq!(planned(&plan), [Planned::Unchanged, Planned::Unchanged]);
    assert!(plan.ops().is_empty(), "{:?}", plan.ops());
    assert_eq!(plan.issues().count(), 0);
    let dry = Report::dry_run(&plan);
    assert_eq!(
        dry.rows.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [Outcome::Unchanged, Outcome::Unchanged]
    );
    let report = importer.apply(&plan, &mut s).unwrap();
    assert_eq!(report.summary.unchanged, 2);
    assert_eq!(
        report.summary.to_string().split(", ").nth(4),
        Some("2 Unchanged")
    );
}

#[test]
fn a_name_that_begins_with_a_sign_is_written_with_a_token() {
    let mut s = store();
    let mut p = tokens();
    p.unknown_roles = RolePolicy::Create;
    let importer = Importer::with_profile(T, p.clone());
    // `++C` adds the role `+C` (created, as any unknown role under this policy).
    let report = importer
        .run(roles_file(&[("ann", "++C")]).as_bytes(), None, &mut s)
        .unwrap();
    assert_eq!(report.summary.roles_added, 1);
    assert_eq!(stored_roles(&s, "ann").as_deref(), Some("+C|Tester|Viewer"));
    assert!(s.roles(T).contains(&"+C".to_owned()));
    // `-+C` removes it.
    importer
        .run(roles_file(&[("ann", "-+C")]).as_bytes(), None, &mut s)
        .unwrap();
    assert_eq!(stored_roles(&s, "ann").as_deref(), Some("Tester|Viewer"));
    // A list that replaces cannot hold it: `+C|Admin` mixes a change and a plain item.
    let v = importer.validate(roles_file(&[("ann", "+C|Admin")]).as_bytes(), None);
    assert_eq!(v.issues().next().map(|i| i.code), Some(Code::InvalidValue));
    // Under the other policies an item is read as written: `+C` is a role.
    let mut replace = p;
    replace.lists = ListPolicy::Replace;
    let plan = plan_with(replace, &roles_file(&[("ann", "+C|Admin")]), &mut s);
    assert_eq!(
        new_roles(&plan),
        [("ann".to_owned(), Some("+C|Admin".to_owned()))]
    );
}

#[test]
fn removing_an_unknown_role_is_no_error_and_adding_one_follows_the_policy() {
    let mut s = store();
    // `-Ghost`: nothing to remove.
    let plan = plan_with(tokens(), &roles_file(&[("ann", "-Ghost")]), &mut s);
    assert_eq!(planned(&plan), [Planned::Unchanged]);
    assert_eq!(plan.issues().count(), 0);
    let file = roles_file(&[("ann", "+Ghost|-Viewer")]);
    // Reject (the default): an unknown_role error, as for a plain list.
    let plan = plan_with(tokens(), &file, &mut s);
    assert_eq!(planned(&plan), [Planned::Fail]);
    let i = &plan.row_issues(2)[0];
    assert_eq!(
        (i.code, i.column.as_deref(), i.value.as_deref()),
        (Code::UnknownRole, Some("roles"), Some("Ghost"))
    );
    // Create: the role is created and added.
    let mut create = tokens();
    create.unknown_roles = RolePolicy::Create;
    let plan = plan_with(create, &file, &mut s);
    assert_eq!(
        plan.ops()[0],
        Op::CreateRole {
            name: "Ghost".into()
        }
    );
    assert_eq!(
        new_roles(&plan),
        [("ann".to_owned(), Some("Ghost|Tester".to_owned()))]
    );
    // Fallback: the fallback role is added instead, with a warning.
    let mut fallback = tokens();
    fallback.unknown_roles = RolePolicy::Fallback("Guest".into());
    let plan = plan_with(fallback.clone(), &file, &mut s);
    assert_eq!(plan.row_issues(2)[0].severity, Severity::Warning);
    assert_eq!(
        new_roles(&plan),
        [("ann".to_owned(), Some("Guest|Tester".to_owned()))]
    );
    // A cell that also removes the fallback role ends without it.
    let plan = plan_with(
        fallback,
        &roles_file(&[("ann", "+Ghost|-Guest"), ("cy", "+Ghost|-Guest|+Tester")]),
        &mut s,
    );
    assert_eq!(planned(&plan), [Planned::Unchanged, Planned::Create]);
    let created = plan.ops().iter().find_map(|op| match op {
        Op::Create { user, .. } => user.get(Field::Roles),
        _ => None,
    });
    assert_eq!(created, Some("Tester"));
}

#[test]
fn a_new_user_gets_the_roles_it_adds() {
    let mut s = store();
    let file = roles_file(&[("cy", "+Tester|-Admin|+viewer"), ("dee", "-Admin")]);
    let importer = Importer::with_profile(T, tokens());
    let report = importer.run(file.as_bytes(), None, &mut s).unwrap();
    assert_eq!(report.summary.added, 2, "{}", report.render_text());
    assert_eq!(stored_roles(&s, "cy").as_deref(), Some("Tester|Viewer"));
    assert_eq!(stored_roles(&s, "dee"), None);
}

#[test]
fn a_blank_cell_follows_the_blank_policy() {
    let mut s = store();
    let file = roles_file(&[("ann", "")]);
    assert_eq!(
        planned(&plan_with(tokens(), &file, &mut s)),
        [Planned::Unchanged]
    );
    let mut clear = tokens();
    clear.blank = BlankPolicy::Clear;
    assert_eq!(
        new_roles(&plan_with(clear, &file, &mut s)),
        [("ann".to_owned(), None)]
    );
}

#[test]
fn the_acting_administrator_cannot_remove_their_own_admin_role() {
    let mut s = store();
    let importer = Importer::with_profile(T, tokens()).acting_user("bob");
    let plan = importer
        .plan(
            importer.validate(roles_file(&[("bob", "-Admin|+Tester")]).as_bytes(), None),
            &mut s,
        )
        .unwrap();
    assert_eq!(plan.row_issues(2)[0].code, Code::SelfLockout);
}

#[test]
fn only_grantable_roles_may_be_added() {
    let mut s = store();
    let mut p = tokens();
    p.guards = p.guards.grantable(["Guest"]);
    // Removing is not granting; adding Guest is allowed, Admin is not.
    let file = roles_file(&[("ann", "-Viewer|+Guest"), ("bob", "+Tester")]);
    let plan = plan_with(p, &file, &mut s);
    assert_eq!(planned(&plan), [Planned::Update, Planned::Fail]);
    assert_eq!(plan.row_issues(3)[0].code, Code::RoleNotGrantable);
}

#[test]
fn permissions_and_custom_lists_take_tokens_too() {
    let mut s = InMemoryStore::new();
    s.insert(
        T,
        person("ann", "")
            .to_builder()
            .set(Field::Permissions, "Products Read,Orders Read")
            .custom("tags", "blue;green")
            .build(),
    );
    let mut p = tokens();
    p.custom.push(CustomAttribute::new(
        "tags",
        AttributeKind::List { separator: ';' },
    ));
    let file = "userId,email,permissions,tags\n\
                ann,ann@example.com,\"-products read, +Orders Write\",+red;-Green;-green\n";
    let importer = Importer::with_profile(T, p);
    let v = importer.validate(file.as_bytes(), None);
    assert!(!v.has_errors(), "{}", v.render_text());
    let edits = v.rows()[0].edits();
    assert_eq!(
        edits
            .iter()
            .map(|e| (e.attribute.name(), e.remove.clone()))
            .collect::<Vec<_>>(),
        [
            ("permissions", vec!["products read".to_owned()]),
            ("tags", vec!["Green".to_owned(), "green".to_owned()]),
        ]
    );
    importer.run(file.as_bytes(), None, &mut s).unwrap();
    let ann = &s.get(T, "ann").unwrap().user;
    // Permissions are matched as names the directory knows (any case);
    // a custom list's items exactly.
    assert_eq!(
        ann.get(Field::Permissions),
        Some("Orders Read,Orders Write")
    );
    assert_eq!(ann.custom("tags"), Some("blue;red"));
}

#[test]
fn the_validation_json_shows_edits_only_where_a_row_has_some() {
    let file = roles_file(&[("ann", "+Admin|-Viewer"), ("bob", "Admin")]);
    let v = Importer::with_profile(T, tokens()).validate(file.as_bytes(), None);
    let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
    assert_eq!(
        json["rows"][0]["edits"],
        serde_json::json!([{"attribute": "roles", "remove": ["Viewer"]}])
    );
    assert_eq!(json["rows"][0]["user"]["roles"], "Admin");
    assert!(json["rows"][1].get("edits").is_none());
    // The default policy reads `-Viewer` as a role, and writes no edits.
    let v = Importer::new(T).validate(file.as_bytes(), None);
    assert!(!v.to_json().contains("\"edits\""));
}

#[test]
fn a_token_cell_survives_the_error_csv() {
    // The error CSV neutralizes a cell starting with + or - (a formula to a
    // spreadsheet), and reading it back restores the cell.
    let importer = Importer::with_profile(T, tokens());
    let file = roles_file(&[("ann", "+Admin|-admin")]);
    let v = importer.validate(file.as_bytes(), None);
    let mut csv = Vec::new();
    v.write_error_csv(file.as_bytes(), &mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert!(text.contains("'+Admin|-admin"), "{text}");
    let again = importer.validate(text.as_bytes(), None);
    let i = again
        .issues()
        .find(|i| i.code == Code::InvalidValue)
        .unwrap();
    assert_eq!(i.value.as_deref(), Some("Admin"), "{i}");
}

#[test]
fn a_saved_profile_says_tokens() {
    let json = tokens().to_json();
    assert!(json.contains("\"lists\": \"tokens\""), "{json}");
    assert_eq!(Profile::from_json(&json).unwrap().lists, ListPolicy::Tokens);
    // A plan's provenance says how its lists were read.
    let plan = plan_with(tokens(), &roles_file(&[("ann", "+Admin")]), &mut store());
    assert!(
        plan.provenance()
            .decisions
            .iter()
            .any(|d| d.starts_with("list items written +X and -X add and remove items")),
        "{:?}",
        plan.provenance().decisions
    );
}

/// The pool of role names: two begin with a sign.
const POOL: [&str; 6] = ["Admin", "Tester", "Viewer", "ops", "+C", "-D"];

/// A role of the pool in one of three spellings.
fn spelled(i: usize, case: u8) -> String {
    let name = POOL[i % POOL.len()];
    match case % 3 {
        0 => name.to_owned(),
        1 => name.to_lowercase(),
        _ => name.to_uppercase(),
    }
}

proptest! {
    /// For any current roles and any cell of tokens, the planned roles are
    /// `(current ∪ added) ∖ removed` (matched by the matching policy, a
    /// current role keeping its spelling), sorted; a cell that adds and
    /// removes one role is refused.
    #[test]
    fn the_planned_roles_are_the_current_ones_with_the_added_and_without_the_removed(
        current in prop::collection::btree_set(0usize..POOL.len(), 0..=POOL.len()),
        cell in prop::collection::vec((any::<bool>(), 0usize..POOL.len(), 0u8..3), 1..6),
    ) {
        let key = |r: &str| r.to_lowercase();
        let current: Vec<String> = current.iter().map(|&i| POOL[i].to_owned()).collect();
        let mut s = InMemoryStore::new();
        s.insert(T, person("ann", &current.join("|")));
        let items: Vec<String> = cell
            .iter()
            .map(|&(add, i, case)| format!("{}{}", if add { '+' } else { '-' }, spelled(i, case)))
            .collect();
        let file = roles_file(&[("ann", &items.join("|"))]);
        // The directory knows the current roles only: the others are created.
        let mut p = tokens();
        p.unknown_roles = RolePolicy::Create;
        let plan = plan_with(p, &file, &mut s);

        let adds: Vec<String> = cell.iter().filter(|c| c.0).map(|&(_, i, case)| spelled(i, case)).collect();
        let removes: Vec<String> = cell.iter().filter(|c| !c.0).map(|&(_, i, case)| spelled(i, case)).collect();
        if adds.iter().any(|a| removes.iter().any(|r| key(r) == key(a))) {
            prop_assert_eq!(planned(&plan), [Planned::Fail]);
            prop_assert_eq!(plan.row_issues(2)[0].code, Code::InvalidValue);
            return Ok(());
        }
        // The definition: the current roles, then the added ones it lacks
        // (of two spellings of one new role, the first in byte order), less
        // the removed ones; sorted.
        let mut sorted_adds = adds.clone();
        sorted_adds.sort();
        let mut want: Vec<String> = Vec::new();
        for r in current.iter().chain(&sorted_adds) {
            if !removes.iter().any(|x| key(x) == key(r)) && !want.iter().any(|w| key(w) == key(r)) {
                want.push(r.clone());
            }
        }
        want.sort();
        let same_set = {
            let mut a: Vec<String> = want.iter().map(|r| key(r)).collect();
            let mut b: Vec<String> = current.iter().map(|r| key(r)).collect();
            a.sort();
            b.sort();
            a == b
        };
        if same_set {
            prop_assert_eq!(planned(&plan), [Planned::Unchanged]);
        } else {
            prop_assert_eq!(planned(&plan), [Planned::Update]);
            let want = (!want.is_empty()).then(|| want.join("|"));
            prop_assert_eq!(new_roles(&plan), [("ann".to_owned(), want)]);
        }
    }
}
