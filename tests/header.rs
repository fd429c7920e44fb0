//! Header matching: folding, aliases, the explicit mapping, and the column checks.

mod common;

use common::{codes, only, validate};
use user_import::{Code, Column, ColumnMapping, Field, Importer, Profile};

#[test]
fn headers_match_forgiving_of_case_spaces_underscores_and_dashes() {
    let v = validate("User_ID,First Name,last-name,E-Mail,REPORTS TO\na,Ann,Lee,a@x.io,\n");
    assert!(!v.has_errors(), "{:?}", codes(&v));
    let u = &v.rows()[0].user;
    assert_eq!(u.user_id(), Some("a"));
    assert_eq!(u.get(Field::FirstName), Some("Ann"));
    assert_eq!(u.get(Field::LastName), Some("Lee"));
    assert_eq!(u.email(), Some("a@x.io"));
}

#[test]
fn aliases() {
    for (header, field) in [
        ("username", Field::UserId),
        ("Login", Field::UserId),
        ("Employee Number", Field::UserId),
        ("email address", Field::Email),
        ("manager", Field::ReportsTo),
        ("surname", Field::LastName),
        ("department", Field::DepartmentId),
        ("notifyNewUser", Field::NotifyIfNewUser),
        ("Display Name", Field::DisplayName),
        ("full name", Field::DisplayName),
    ] {
        assert_eq!(Field::from_header(header), Some(field), "{header}");
    }
}

#[test]
fn scenario_files_read_cleanly() {
    // The located import (docs/scenarios.md): six rows, line 5 without an email.
    let located =
        Importer::new("default").validate(&common::data("s3_users.csv"), Some("users.csv"));
    assert_eq!(located.rows().len(), 6);
    assert_eq!(located.rows()[0].user.get(Field::FirstName), Some("Ann"));
    assert_eq!(codes(&located), [(Some(5), Code::MissingValue)]);

    // The mapped workspace import (docs/scenarios.md): a new user needs an
    // email address, a first name and a last name; the user id may be absent.
    let mut p = Profile::default();
    p.required = vec![Field::Email, Field::FirstName, Field::LastName];
    let workspace = Importer::with_profile("default", p)
        .validate(&common::data("s2_users.txt"), Some("users.txt"));
    assert_eq!(
        codes(&workspace),
        [],
        "{:#?}",
        workspace.issues().collect::<Vec<_>>()
    );
    assert_eq!(
        workspace.rows()[0]
            .user
            .list(Field::Permissions)
            .collect::<Vec<_>>(),
        ["Product None", "Products Read", "Products Write"]
    );
}

#[test]
fn unknown_column_is_a_warning_with_a_suggestion() {
    let v = validate("userId,emial,shoe size\na,a@x.io,42\n");
    let unknown: Vec<(String, Option<String>)> = v
        .issues()
        .filter(|i| i.code == Code::UnknownColumn)
        .map(|i| (i.column.clone().unwrap(), i.suggestion.clone()))
        .collect();
    assert_eq!(
        unknown,
        [
            ("emial".to_owned(), Some("email".to_owned())),
            ("shoe size".to_owned(), None)
        ]
    );
    // And without an email column the required column is missing.
    assert_eq!(
        only(&v, Code::MissingColumn).column.as_deref(),
        Some("email")
    );
}

#[test]
fn two_columns_that_name_a_field_equally_well_are_an_error() {
    let v = validate("userId,email,E-mail\na,a@x.io,b@x.io\n");
    let i = only(&v, Code::DuplicateColumn);
    assert_eq!((i.line, i.column.as_deref()), (Some(1), Some("E-mail")));
    assert!(v.has_errors());
}

#[test]
fn missing_required_column_is_a_file_error_and_not_repeated_per_row() {
    let v = validate("userId,firstName\na,Ann\nb,Ben\n");
    assert_eq!(codes(&v), [(Some(1), Code::MissingColumn)]);
}

#[test]
fn explicit_mapping_round_trips_through_serde_and_is_used() {
    let mut m = ColumnMapping::new();
    m.map("Mitarbeiter-Nr", Column::Field(Field::UserId))
        .map("Mail", Column::Field(Field::Email))
        .map("Bemerkung", Column::Ignore);
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        json,
        r#"{"Mitarbeiter-Nr":{"field":"userId"},"Mail":{"field":"email"},"Bemerkung":"ignore"}"#
    );
    let back: ColumnMapping = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);

    let mut p = Profile::default();
    p.mapping = back;
    let v = Importer::with_profile("t", p).validate(
        "Mitarbeiter-Nr;Mail;Bemerkung\n0042;a@x.io;hi\n".as_bytes(),
        None,
    );
    assert_eq!(codes(&v), []);
    assert_eq!(v.rows()[0].user.user_id(), Some("0042"));
}

#[test]
fn a_file_of_delete_rows_needs_only_the_key_column() {
    let v = validate("userId,transaction\nold1,DELETE\nold2,delete\n");
    assert_eq!(codes(&v), []);
    // One upsert row and the email column is required again.
    let v = validate("userId,transaction\nold1,DELETE\nnew,\n");
    assert_eq!(codes(&v), [(Some(1), Code::MissingColumn)]);
}

/// Vendors decorate their headers: a requirement in brackets or words, or
/// the attribute's own name in square brackets, which is preferred.
#[test]
fn vendor_decorations_are_understood() {
    for (header, field) in [
        ("Email Address [Required]", Field::Email),
        ("email (required)", Field::Email),
        ("User ID *", Field::UserId),
        ("First name [givenName]", Field::FirstName),
        ("Last name [surname]", Field::LastName),
        ("E-mail [mail]", Field::Email),
        ("Manager (optional)", Field::ReportsTo),
        // The bracket names the attribute, whatever the words say.
        ("Kennung [userId] Required", Field::UserId),
    ] {
        let value = if field == Field::Email { "v@x.io" } else { "v" };
        let file = format!("{header},x\n{value},w\n");
        let v = validate(&file);
        assert!(
            !v.issues()
                .any(|i| i.code == Code::UnknownColumn && i.column.as_deref() == Some(header)),
            "{header}: {:?}",
            codes(&v)
        );
        assert_eq!(v.rows()[0].user.get(field), Some(value), "{header}");
    }
    // A decoration that names nothing known leaves the column unknown (an
    // inverted boolean is not read as `enabled`).
    let v =
        validate("userId,email,Block sign in (Yes/No) [accountEnabled] Required\na,a@x.io,Yes\n");
    assert_eq!(codes(&v), [(Some(1), Code::UnknownColumn)]);
    assert_eq!(v.rows()[0].user.get(Field::Enabled), None);
}

#[test]
fn an_exact_field_name_beats_an_alias() {
    let v = validate("login,userId,email\nalias,exact,a@x.io\n");
    assert_eq!(v.rows()[0].user.user_id(), Some("exact"));
    let i = only(&v, Code::DuplicateColumn);
    assert_eq!(i.severity, user_import::Severity::Warning);
    assert_eq!(i.column.as_deref(), Some("login"));
    assert!(!v.has_errors());
}

#[test]
fn two_aliases_of_one_field_are_a_warning_naming_the_column_read() {
    let v = validate("login,employeeNumber,email\nann,0042,a@x.io\n");
    assert!(!v.has_errors(), "{:?}", codes(&v));
    assert_eq!(v.rows()[0].user.user_id(), Some("ann"));
    let i = only(&v, Code::DuplicateColumn);
    assert_eq!(i.severity, user_import::Severity::Warning);
    assert_eq!(i.column.as_deref(), Some("employeeNumber"));
    assert!(i.message.contains("column 1 is read"), "{}", i.message);

    // The profile chooses the other.
    let mut p = Profile::default();
    p.mapping = ColumnMapping::new();
    p.mapping
        .map("employeeNumber", Column::Field(Field::UserId))
        .map("login", Column::Ignore);
    let v = Importer::with_profile("t", p)
        .validate(b"login,employeeNumber,email\nann,0042,a@x.io\n", None);
    assert_eq!(codes(&v), []);
    assert_eq!(v.rows()[0].user.user_id(), Some("0042"));
}
