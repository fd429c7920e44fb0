//! Row-level and file-level checks, all reported in one pass.

mod common;

use common::{codes, only, validate};
use user_import::{
    AttributeKind, Catalog, Code, CustomAttribute, Field, Importer, KeyField, Location, Profile,
    RolePolicy, Severity,
};

#[test]
fn every_problem_of_a_file_is_reported_in_one_pass_in_line_order() {
    let v = validate(
        "userId,email,enabled,taskNotification,transaction,roles,tenant\n\
         a,,maybe,Sometimes,UPDATE,Big Boss,other\n\
         b,b@x.io,TRUE,off,,Admin,\n\
         c,not-an-email,0,Email,delete,,default\n",
    );
    assert_eq!(
        codes(&v),
        [
            (Some(2), Code::MissingValue),    // email
            (Some(2), Code::InvalidValue),    // enabled
            (Some(2), Code::InvalidValue),    // taskNotification
            (Some(2), Code::InvalidValue),    // transaction
            (Some(2), Code::InvalidRoleName), // roles
            (Some(2), Code::TenantMismatch),  // tenant
        ]
    );
    // Row c is a DELETE: its email is only an identifier, not checked as data.
    assert!(!v.rows()[2].error);
    assert_eq!(v.rows()[2].action, user_import::Action::Delete);
    // Row b is canonicalized.
    let b = &v.rows()[1].user;
    assert_eq!(
        (b.enabled(), b.get(Field::TaskNotification)),
        (Some(true), Some("OFF"))
    );
}

#[test]
fn missing_value_for_each_required_field() {
    let mut p = Profile::default();
    p.required = vec![
        Field::UserId,
        Field::Email,
        Field::FirstName,
        Field::LastName,
    ];
    let v = Importer::with_profile("t", p).validate(
        b"userId,firstName,lastName,email\na,,Lee,a@x.io\n,Ben,,\n",
        None,
    );
    let got: Vec<(Option<u64>, Option<String>)> =
        v.issues().map(|i| (i.line, i.column.clone())).collect();
    assert_eq!(
        got,
        [
            (Some(2), Some("firstName".into())),
            (Some(3), Some("userId".into())),
            (Some(3), Some("lastName".into())),
            (Some(3), Some("email".into())),
        ]
    );
    assert!(v.issues().all(|i| i.code == Code::MissingValue));
}

#[test]
fn strict_email_policy() {
    for bad in [
        "John <john@example.com>",
        "john@[10.0.0.1]",
        "\"john doe\"@example.com",
        "john@localhost",
        &format!("{}@example.com", "a".repeat(300)),
        "jоhn@example.com",
    ] {
        let v = validate(&format!(
            "userId,email\na,\"{}\"\n",
            bad.replace('"', "\"\"")
        ));
        let i = only(&v, Code::InvalidEmail);
        assert_eq!(i.line, Some(2), "{bad}");
        assert!(i.value.is_some());
    }
}

#[test]
fn strict_email_host_names() {
    for (bad, why) in [
        ("a@ab--cd.com", "only xn-- labels may"),
        (
            "a@xn--a.com",
            "not decode to a valid internationalized name",
        ),
        ("a@example.c0m", "must be letters only"),
    ] {
        let v = validate(&format!("userId,email\na,{bad}\n"));
        let i = only(&v, Code::InvalidEmail);
        assert!(i.message.contains(why), "{bad}: {}", i.message);
        assert!(v.rows()[0].error);
    }
    let v = validate("userId,email\na,a@xn--nxasmq6b.com\n");
    assert_eq!(codes(&v), []);
}

#[test]
fn special_use_email_domains_are_a_warning_not_an_error() {
    let v = validate(
        "userId,email\n\
         a,a@corp.test\n\
         b,b@example.com\n\
         c,c@mail.example.org\n\
         d,d@printer.local\n",
    );
    assert_eq!(
        codes(&v),
        [
            (Some(2), Code::SpecialUseDomain),
            (Some(5), Code::SpecialUseDomain)
        ]
    );
    let i = v.issues().next().unwrap();
    assert_eq!(i.severity, Severity::Warning);
    assert_eq!(i.column.as_deref(), Some("email"));
    assert_eq!(i.value.as_deref(), Some("a@corp.test"));
    assert!(i.message.contains(".test"), "{}", i.message);
    assert!(v.rows().iter().all(|r| !r.error));
    assert_eq!(v.rows()[0].user.email(), Some("a@corp.test"));
}

#[test]
fn duplicate_keys_and_emails_name_each_other_case_insensitively() {
    let v = validate(
        "userId,email\nJDoe,j1@x.io\nann,Ann@X.io\njdoe,j2@x.io\nbob,ann@x.io\nJDOE,j3@x.io\n",
    );
    let keys: Vec<(u64, String)> = v
        .issues()
        .filter(|i| i.code == Code::DuplicateKey)
        .map(|i| (i.line.unwrap(), i.message.clone()))
        .collect();
    assert_eq!(
        keys,
        [
            (2, "the same userId is on lines 4, 6".to_owned()),
            (4, "the same userId is on lines 2, 6".to_owned()),
            (6, "the same userId is on lines 2, 4".to_owned()),
        ]
    );
    let emails: Vec<(u64, String)> = v
        .issues()
        .filter(|i| i.code == Code::DuplicateEmail)
        .map(|i| (i.line.unwrap(), i.message.clone()))
        .collect();
    assert_eq!(
        emails,
        [
            (3, "the same email is on line 5".to_owned()),
            (5, "the same email is on line 3".to_owned())
        ]
    );
    // Every row involved is rejected; none is picked at random.
    assert!(v.rows().iter().all(|r| r.error));
}

#[test]
fn reports_to_cycles_and_self_reference() {
    let v = validate(
        "userId,email,reportsTo\na,a@x.io,b\nb,b@x.io,c\nc,c@x.io,A\nd,d@x.io,d\ne,e@x.io,a\n",
    );
    let cycle: Vec<u64> = v
        .issues()
        .filter(|i| i.code == Code::ReportsToCycle)
        .map(|i| i.line.unwrap())
        .collect();
    assert_eq!(
        cycle,
        [2, 3, 4, 5],
        "a→b→c→a and d→d; e only reports into the cycle"
    );
    assert!(v.row_issues(2)[0].message.contains("cycle of 3 users"));
    assert!(v.row_issues(5)[0].message.contains("themselves"));
    assert!(!v.rows()[4].error);
}

#[test]
fn catalog_checks_with_closest_names() {
    let catalog = Catalog::new()
        .roles(["Admin", "Tester", "Standard"])
        .locations([Location::new("Berlin HQ").alias("BER")])
        .departments(["Sales"]);
    let v = Importer::new("t").catalog(catalog.clone()).validate(
        b"userId,email,roles,location,department\na,a@x.io,admin|Testr,ber,Sales\nb,b@x.io,Tester,Berlin HQ,Salse\n",
        None,
    );
    let role = only(&v, Code::UnknownRole);
    assert_eq!(
        (role.line, role.suggestion.as_deref()),
        (Some(2), Some("Tester"))
    );
    let reference = only(&v, Code::UnknownReference);
    assert_eq!(
        (reference.line, reference.suggestion.as_deref()),
        (Some(3), Some("Sales"))
    );
    // Known names are stored in the catalog's spelling.
    let b = &v.rows()[1].user;
    assert_eq!(b.get(Field::Location), Some("Berlin HQ"));

    // Fallback policy: a warning; the row keeps the file's role until
    // planning, which replaces it with the fallback.
    let mut p = Profile::default();
    p.unknown_roles = RolePolicy::Fallback("Standard".into());
    let importer = Importer::with_profile("t", p).catalog(catalog.clone());
    let v = importer.validate(b"userId,email,roles\na,a@x.io,Superuser|Admin\n", None);
    let w = only(&v, Code::UnknownRole);
    assert_eq!(w.severity, Severity::Warning);
    assert!(!v.has_errors());
    assert_eq!(v.rows()[0].user.get(Field::Roles), Some("Admin|Superuser"));
    let mut store = user_import::memory::InMemoryStore::new();
    store.set_catalog("t", catalog);
    let plan = importer.plan(v, &mut store).unwrap();
    let user_import::Op::Create { user, .. } = &plan.ops()[0] else {
        panic!()
    };
    assert_eq!(user.get(Field::Roles), Some("Admin|Standard"));
    assert_eq!(plan.row_issues(2)[0].code, Code::UnknownRole);
}

/// A catalog given to validation does not hide anything from planning: the
/// unknown values stay in the row, and the store's catalog decides.
#[test]
fn validating_with_a_catalog_never_lets_unknown_names_through() {
    let catalog = Catalog::new()
        .roles(["Admin", "Tester"])
        .locations([Location::new("Paris")]);
    let mut store = user_import::memory::InMemoryStore::new();
    store.set_catalog("t", catalog.clone());
    store.insert(
        "t",
        user_import::User::builder()
            .set(Field::UserId, "a")
            .set(Field::Email, "a@x.io")
            .set(Field::Roles, "Admin|Tester")
            .build(),
    );
    let mut p = Profile::default();
    p.on_error = user_import::ErrorPolicy::SkipInvalid;
    let importer = Importer::with_profile("t", p).catalog(catalog);
    let file = b"userId,email,roles,location\na,a@x.io,Admin|Bogus,\nb,b@x.io,Bogus,\nc,c@x.io,Tester,Atlantis\n";
    let report = importer.run(file, None, &mut store).unwrap();
    assert_eq!(report.summary.failed, 3, "{}", report.render_text());
    assert_eq!(
        store.get("t", "a").unwrap().user.get(Field::Roles),
        Some("Admin|Tester")
    );
    assert!(store.get("t", "b").is_none() && store.get("t", "c").is_none());
}

#[test]
fn role_names_follow_the_naming_rules() {
    let long = "R".repeat(101);
    let v = validate(&format!(
        "userId,email,roles\na,a@x.io,Ok|Has Space|{long}\n"
    ));
    let bad: Vec<Code> = v.issues().map(|i| i.code).collect();
    assert_eq!(bad, [Code::InvalidRoleName, Code::InvalidRoleName]);
}

#[test]
fn typed_custom_attributes() {
    let mut p = Profile::default();
    p.custom = vec![
        CustomAttribute::new("costCenter", AttributeKind::Text).required(),
        CustomAttribute::new("contractor", AttributeKind::Bool),
        CustomAttribute::new(
            "shirt",
            AttributeKind::OneOf(vec!["S".into(), "M".into(), "L".into()]),
        ),
        CustomAttribute::new("skills", AttributeKind::List { separator: ';' }).alias("competences"),
    ];
    let v = Importer::with_profile("t", p).validate(
        b"userId,email,Cost Center,contractor,shirt,competences\n\
          a,a@x.io,CC-1,yes,m,rust; sql;rust\n\
          b,b@x.io,,perhaps,XL,\n",
        None,
    );
    let a = &v.rows()[0].user;
    assert_eq!(a.custom("contractor"), Some("true"));
    assert_eq!(a.custom("shirt"), Some("M"));
    assert_eq!(a.custom("skills"), Some("rust;sql"));
    let b: Vec<(Code, String)> = v
        .row_issues(3)
        .iter()
        .map(|i| (i.code, i.column.clone().unwrap()))
        .collect();
    assert_eq!(
        b,
        [
            (Code::MissingValue, "Cost Center".into()),
            (Code::InvalidValue, "contractor".into()),
            (Code::InvalidValue, "shirt".into()),
        ]
    );
}

#[test]
fn email_as_key() {
    let mut p = Profile::default();
    p.key = KeyField::Email;
    p.required = vec![Field::Email];
    let v = Importer::with_profile("t", p)
        .validate(b"email,firstName\na@x.io,Ann\nA@X.IO,Anne\n", None);
    assert_eq!(
        codes(&v),
        [(Some(2), Code::DuplicateKey), (Some(3), Code::DuplicateKey)]
    );
}

#[test]
fn values_are_made_safe_to_print() {
    let v = validate("userId,email\n\"a\u{1b}[31m\",a@x.io\n");
    let i = only(&v, Code::InvalidValue);
    assert_eq!(i.value.as_deref(), Some("a\\u{1b}[31m"));
}

#[test]
fn formula_cells_are_data_not_formulas() {
    let v = validate(
        "userId,firstName,email\n=cmd|' /C calc'!A0,=cmd|' /C calc'!A0,=cmd|' /C calc'!A0\n",
    );
    let got: Vec<(Code, Option<String>)> = v.issues().map(|i| (i.code, i.column.clone())).collect();
    assert_eq!(
        got,
        [
            (Code::InvalidValue, Some("userId".into())),
            (Code::InvalidEmail, Some("email".into()))
        ]
    );
    // The name is kept as text; it is neutralized whenever the library writes it.
    assert_eq!(
        v.rows()[0].user.get(Field::FirstName),
        Some("=cmd|' /C calc'!A0")
    );
}

/// A file handed over to be read (freed once its rows are read, before the
/// file-wide checks) validates as the same bytes lent: the checks across
/// rows still run, and the input says how many bytes were read.
#[test]
fn a_file_read_from_a_source_validates_as_the_same_bytes() {
    let file = "userId,email,reportsTo\n\
                a,a@x.io,\n\
                b,b@x.io,a\n\
                A,c@x.io,\n\
                d,A@X.IO,\n\
                e,bad,\n";
    for threads in [1, 2] {
        let importer = Importer::new("t").threads(threads);
        let lent = importer.validate(file.as_bytes(), Some("users.csv"));
        let read = importer
            .validate_reader_sized(file.as_bytes(), Some(file.len() as u64), Some("users.csv"))
            .unwrap();
        let codes: std::collections::BTreeSet<Code> = read.issues().map(|i| i.code).collect();
        assert!(
            [Code::DuplicateKey, Code::DuplicateEmail, Code::InvalidEmail]
                .iter()
                .all(|c| codes.contains(c)),
            "{codes:?}"
        );
        assert_eq!(read.input().bytes, file.len() as u64);
        assert_eq!(read.to_json(), lent.to_json());
    }
}
