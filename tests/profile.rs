//! Import profiles: saved as JSON, loaded and checked, and the template.

use user_import::{
    AttributeKind, Column, ColumnMapping, CustomAttribute, ErrorKind, ErrorPolicy, Field, Importer,
    KeyField, ListPolicy, Mode, Profile, RolePolicy,
};

/// A profile in the manner of the mapped workspace import (docs/scenarios.md):
/// German headers mapped to fields, email as the key, names required, a
/// no-access fallback role; and other settings off their defaults, so that
/// a round trip covers them.
fn workspace_profile() -> Profile {
    let mut p = Profile::default();
    p.key = KeyField::Email;
    p.required = vec![Field::Email, Field::FirstName, Field::LastName];
    let mut m = ColumnMapping::new();
    m.map("E-Mail-Adresse", Column::Field(Field::Email))
        .map("Vorname", Column::Field(Field::FirstName))
        .map("Nachname", Column::Field(Field::LastName))
        .map("Kostenstelle", Column::Custom("costCenter".into()))
        .map("Notizen", Column::Ignore);
    p.mapping = m;
    p.custom = vec![
        CustomAttribute::new("costCenter", AttributeKind::Text).required(),
        CustomAttribute::new("shirt", AttributeKind::OneOf(vec!["S".into(), "M".into()])),
    ];
    p.mode = Mode::UpdateOnly;
    p.on_error = ErrorPolicy::StopAfter(3);
    p.unknown_roles = RolePolicy::Fallback("NoAccess".into());
    p.lists = ListPolicy::AddOnly;
    p.guards = p.guards.max_deletes(10);
    p
}

#[test]
fn a_profile_round_trips_through_json() {
    let p = workspace_profile();
    assert_eq!(p.problems(), Vec::<String>::new());
    let json = p.to_json();
    assert!(json.contains("\"version\": 1"));
    assert_eq!(Profile::from_json(&json).unwrap(), p);
}

#[test]
fn unknown_settings_and_newer_versions_are_refused() {
    for (json, says) in [
        (r#"{"on_eror": "skip_invalid"}"#, "on_eror"),
        (r#"{"guards": {"max_delets": 3}}"#, "max_delets"),
        (r#"{"required": ["userId", "shoeSize"]}"#, "shoeSize"),
        (r#"{"version": 2}"#, "newer version"),
        (r#"{"version": 0}"#, "version 0"),
        ("not json", "not valid JSON"),
    ] {
        let e = Profile::from_json(json).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains(says), "{json}: {e}");
    }
}

#[test]
fn profile_problems_are_all_listed() {
    let mut p = Profile::default();
    p.key = KeyField::Email;
    p.required = vec![Field::UserId, Field::Tenant];
    p.mapping.map("Cost", Column::Custom("nope".into()));
    p.mapping.map("Mail", Column::Field(Field::UserId));
    p.custom = vec![
        CustomAttribute::new("email", AttributeKind::Text),
        CustomAttribute::new("size", AttributeKind::OneOf(vec![])),
        CustomAttribute::new("Size", AttributeKind::Text),
    ];
    p.unknown_roles = RolePolicy::Fallback("No Access".into());
    p.guards.max_delete_share = Some(1.5);
    let problems = p.problems().join("\n");
    for expected in [
        "key field \"email\" must be one of the required fields",
        "\"tenant\" cannot be required",
        "custom attribute \"nope\", which is not defined",
        "custom attribute \"email\" has the name of a standard field",
        "custom attribute \"size\" is one of an empty set",
        "custom attribute \"Size\" is defined twice",
        "fallback role \"No Access\"",
        "deletion share 1.5",
    ] {
        assert!(
            problems.contains(expected),
            "missing {expected:?} in\n{problems}"
        );
    }
    assert!(p.check().is_err());
}

#[test]
fn the_template_uses_the_profiles_headers_and_validates_clean() {
    let p = workspace_profile();
    let template = p.template();
    let header = template.lines().next().unwrap();
    assert_eq!(
        header,
        "userId,tenant,Vorname,Nachname,E-Mail-Adresse,enabled,reportsTo,roles,taskNotification,transaction,notifyIfNewUser,Kostenstelle,shirt"
    );
    let v = Importer::with_profile("t", p).validate(template.as_bytes(), Some("template.csv"));
    assert!(!v.has_errors(), "{}", v.render_text());
    assert_eq!(v.rows().len(), 1);
    assert_eq!(v.rows()[0].user.custom("costCenter"), Some("example"));
    // The default profile's template is the canonical file.
    let default = Profile::default().template();
    assert!(default.starts_with(
        "userId,tenant,firstName,lastName,email,enabled,reportsTo,roles,taskNotification,transaction,notifyIfNewUser\n\
         jdoe,,John,Doe,john.doe@example.com,true,,Tester,Email,,false\n"
    ));
}

/// A profile saved with the `threads` setting (an execution setting now,
/// `Importer::threads`) still loads.
#[test]
fn a_profile_saved_with_threads_still_loads() {
    let p = user_import::Profile::from_json(r#"{"version": 1, "threads": 4, "batch_size": 10}"#)
        .unwrap();
    assert_eq!(p.batch_size, 10);
    assert!(!p.to_json().contains("threads"));
}
