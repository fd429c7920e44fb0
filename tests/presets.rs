//! Each preset reads its product's user export or import template as it
//! is: the product's exact header line (where it comes from is said beside
//! each test) and a few rows, in `tests/data/vendors/`.

mod common;

use user_import::memory::InMemoryStore;
use user_import::{Action, Code, Field, Importer, Outcome, Profile, Validation};

/// Validates `tests/data/vendors/{file}` with preset `preset`: no error, no
/// unknown column, the preset named in the input.
fn read(preset: &str, file: &str) -> Validation {
    let profile = Profile::preset(preset).unwrap();
    let bytes = common::data(&format!("vendors/{file}"));
    let v = Importer::with_profile("t", profile).validate(&bytes, Some(file));
    assert!(!v.has_errors(), "{preset}: {}", v.render_text());
    let unknown: Vec<_> = v
        .issues()
        .filter(|i| i.code == Code::UnknownColumn || i.code == Code::DuplicateColumn)
        .collect();
    assert!(unknown.is_empty(), "{preset}: {unknown:?}");
    assert_eq!(v.input().preset.as_deref(), Some(preset));
    v
}

/// `(user id, email, first, last, display name, enabled)` of each row.
type Seen<'a> = Vec<(
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<bool>,
)>;

fn seen(v: &Validation) -> Seen<'_> {
    v.rows()
        .iter()
        .map(|r| {
            let u = &r.user;
            (
                u.user_id(),
                u.email(),
                u.get(Field::FirstName),
                u.get(Field::LastName),
                u.get(Field::DisplayName),
                u.enabled(),
            )
        })
        .collect()
}

/// The header of Microsoft Entra ID's bulk create template
/// (UserCreateTemplate.csv, downloaded from Users > Bulk operations > Bulk
/// create; documented in "Bulk create users in Microsoft Entra ID",
/// learn.microsoft.com/en-us/entra/identity/users/users-bulk-add), with its
/// `version:v1.0` line.
#[test]
fn entra_bulk_create_template() {
    let v = read("entra", "entra.csv");
    assert_eq!(v.input().preamble, ["version:v1.0"]);
    assert_eq!(
        seen(&v),
        [
            (
                Some("alain@contoso.com"),
                None,
                Some("Alain"),
                Some("Charon"),
                Some("Alain Charon"),
                Some(true)
            ),
            (
                Some("isabella@contoso.com"),
                None,
                Some("Isabella"),
                Some("Simonsen"),
                Some("Isabella Simonsen"),
                Some(false)
            ),
        ]
    );
    // The header is line 2, the rows lines 3 and 4.
    assert_eq!(v.rows()[0].line, 3);
    // Passwords are never read.
    assert!(v.rows().iter().all(|r| r.user.customs().count() == 0));
    // The input says how each column was read.
    let read = |header: &str| {
        v.input()
            .columns
            .iter()
            .find(|c| c.column == header)
            .map(|c| c.read_as.clone())
    };
    assert_eq!(
        read("Block sign in (Yes/No) [accountEnabled] Required"),
        Some(Some("enabled".to_owned()))
    );
    assert_eq!(
        read("User name [userPrincipalName] Required"),
        Some(Some("userId".to_owned()))
    );
    assert_eq!(
        read("Initial password [passwordProfile] Required"),
        Some(None)
    );
    let text = v.input().describe().unwrap();
    assert!(text.contains("entra preset"), "{text}");
    assert!(text.contains("version:v1.0"), "{text}");
}

/// The header of the Microsoft 365 admin center's CSV for adding several
/// users ("Add several users at the same time to Microsoft 365",
/// learn.microsoft.com/en-us/microsoft-365/admin/add-users/add-several-users-at-the-same-time).
#[test]
fn microsoft_365_admin_center_add_users() {
    let v = read("m365", "m365.csv");
    assert_eq!(
        seen(&v)[0],
        (
            Some("chris@contoso.com"),
            None,
            Some("Chris"),
            Some("Green"),
            Some("Chris Green"),
            None
        )
    );
    assert_eq!(v.rows().len(), 2);
}

/// The default template of Okta's "Import Users from CSV" (Directory >
/// People > More actions; help.okta.com, "Import users from a CSV file"):
/// Okta writes the attributes of the tenant's user profile, these 31 for the
/// default profile. `login` and `employeeNumber` are both aliases of the user
/// id: the preset reads `login` and ignores the employee number.
#[test]
fn okta_import_template() {
    let v = read("okta", "okta.csv");
    assert_eq!(
        seen(&v),
        [
            (
                Some("jdoe@example.com"),
                Some("jdoe@example.com"),
                Some("John"),
                Some("Doe"),
                Some("John Doe"),
                None
            ),
            (
                Some("alee@example.com"),
                Some("ann.lee@example.com"),
                Some("Ann"),
                Some("Lee"),
                Some("Ann Lee"),
                None
            ),
        ]
    );
    assert_eq!(
        v.rows()[1].user.get(Field::ReportsTo),
        Some("jdoe@example.com")
    );
}

/// Google Workspace's blank template for "Add or update multiple users
/// from a CSV file" (Admin console > Directory > Users > Bulk update users;
/// support.google.com/a/answer/40057), as its current download writes it.
/// Users are keyed by email; `New Status [UPLOAD ONLY]` reads as enabled.
#[test]
fn google_workspace_bulk_upload_template() {
    let v = read("google", "google.csv");
    assert_eq!(
        seen(&v),
        [
            (
                Some("E100"),
                Some("mike@example.com"),
                Some("Mike"),
                Some("Jones"),
                None,
                None
            ),
            (
                Some("E101"),
                Some("sara@example.com"),
                Some("Sara"),
                Some("Kim"),
                None,
                Some(false)
            ),
        ]
    );
}

/// Zendesk's bulk user import CSV ("Bulk importing users",
/// support.zendesk.com/hc/en-us/articles/4408893496218), its columns in the
/// article's order. Users are keyed by email; `name` is the display name.
#[test]
fn zendesk_bulk_user_import() {
    let v = read("zendesk", "zendesk.csv");
    assert_eq!(
        seen(&v)[0],
        (
            Some("4456"),
            Some("jdoe@example.com"),
            None,
            None,
            Some("Jane Doe"),
            None
        )
    );
    assert_eq!(v.rows()[1].user.get(Field::Roles), Some("agent"));
}

/// The user export of Atlassian's admin console (admin.atlassian.com >
/// Directory > Users > Export users; "Export users from a site" on
/// support.atlassian.com), its fixed columns. "User name" is the person's
/// name; "User status" reads as enabled.
#[test]
fn atlassian_user_export() {
    let v = read("atlassian", "atlassian.csv");
    assert_eq!(
        seen(&v),
        [
            (
                Some("712020:978521a6-2367-4092-a7f6-7cc1b9043bdd"),
                Some("ann@example.com"),
                None,
                None,
                Some("Ann Lee"),
                Some(true)
            ),
            (
                Some("5b10ac8d82e05b22cc7d4ef5"),
                Some("bob@example.com"),
                None,
                None,
                Some("Bob Stone"),
                Some(false)
            ),
        ]
    );
}

/// Canvas LMS's SIS import users.csv ("SIS Import Format Documentation",
/// doc/api/sis_csv.md in instructure/canvas-lms): the documentation's own
/// sample header. `status` reads as enabled (`suspended` and `deleted` are
/// not enabled).
#[test]
fn canvas_sis_users_csv() {
    let v = read("canvas", "canvas.csv");
    assert_eq!(
        seen(&v),
        [
            (
                Some("01103"),
                Some("bob.smith@myschool.edu"),
                Some("Bob"),
                Some("Smith"),
                None,
                Some(true)
            ),
            (
                Some("13834"),
                Some("john.doe@myschool.edu"),
                Some("John"),
                Some("Doe"),
                None,
                Some(false)
            ),
        ]
    );
}

/// Moodle's "Upload users" CSV (Site administration > Users > Accounts >
/// Upload users; admin/tool/uploaduser in Moodle, docs.moodle.org/en/Upload_users):
/// its standard fields, with `suspended` (1 suspends) and `deleted` (1
/// deletes).
#[test]
fn moodle_upload_users() {
    let v = read("moodle", "moodle.csv");
    let enabled: Vec<Option<bool>> = v.rows().iter().map(|r| r.user.enabled()).collect();
    assert_eq!(enabled, [Some(true), Some(false), None]);
    let actions: Vec<Action> = v.rows().iter().map(|r| r.action).collect();
    assert_eq!(actions, [Action::Upsert, Action::Upsert, Action::Delete]);
    assert_eq!(v.rows()[0].user.user_id(), Some("student1"));
}

/// An imported preset file plans like any other: a re-import of the same
/// file changes nothing, and the report names the preset.
#[test]
fn a_preset_import_re_imports_as_unchanged() {
    let profile = Profile::preset("entra").unwrap();
    let bytes = common::data("vendors/entra.csv");
    let importer = Importer::with_profile("t", profile);
    let mut store = InMemoryStore::new();
    let first = importer.run(&bytes, None, &mut store).unwrap();
    assert_eq!(first.summary.added, 2, "{}", first.render_text());
    assert_eq!(first.input.preset.as_deref(), Some("entra"));
    let again = importer.run(&bytes, None, &mut store).unwrap();
    assert!(again.rows.iter().all(|r| r.outcome == Outcome::Unchanged));
}

/// Keyed by email, a user without an employee id imports too.
#[test]
fn a_google_user_without_an_employee_id_imports() {
    let profile = Profile::preset("google").unwrap();
    let file = "First Name [Required],Last Name [Required],Email Address [Required],Password [Required],Employee ID\nMike,Jones,mike@example.com,x,\n";
    let mut store = InMemoryStore::new();
    let report = Importer::with_profile("t", profile)
        .run(file.as_bytes(), None, &mut store)
        .unwrap();
    assert_eq!(report.summary.added, 1, "{}", report.render_text());
}

/// The example rows of "Bulk create users in Microsoft Entra ID" stop two
/// cells short of the template's 17 columns: the preset reads the missing
/// cells as blank (any other profile calls such a row malformed).
#[test]
fn entra_documentation_sample_with_short_rows() {
    let v = read("entra", "entra-sample.csv");
    assert_eq!(v.rows().len(), 2);
    assert_eq!(
        v.rows()[1].user.get(Field::DisplayName),
        Some("Isabella Simonsen")
    );
    let bytes = common::data("vendors/entra-sample.csv");
    let mut p = Profile::preset("entra").unwrap();
    p.short_rows = false;
    let strict = Importer::with_profile("t", p).validate(&bytes, None);
    assert_eq!(
        strict
            .issues()
            .filter(|i| i.code == Code::MalformedRow)
            .count(),
        2
    );
}
