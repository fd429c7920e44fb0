//! Identities that look alike are one identity, or refused: values are
//! matched after Unicode NFC and case folding, white space around them
//! (a non-breaking space too) is trimmed, and an identity that holds a
//! character nobody can see is an error naming it.

mod common;

use common::{codes, validate};
use user_import::memory::InMemoryStore;
use user_import::{Code, Field, Importer, Outcome, Profile, RolePolicy, User};

const T: &str = "t";

fn store_with(id: &str, email: &str) -> InMemoryStore {
    let mut store = InMemoryStore::new();
    store.insert(
        T,
        User::builder()
            .set(Field::UserId, id)
            .set(Field::Email, email)
            .set(Field::LastName, "Lee")
            .build(),
    );
    store
}

#[test]
fn a_decomposed_identity_matches_the_composed_one_in_the_directory() {
    // The directory holds "josé" composed (U+00E9); the file writes it as
    // "e" and a combining acute accent (U+0301), as some systems do.
    let mut store = store_with("jos\u{e9}", "jose@x.io");
    let file = "userId,email,lastName\nJOSE\u{301},jose@x.io,Lee\n";
    let report = Importer::new(T)
        .run(file.as_bytes(), None, &mut store)
        .unwrap();
    assert_eq!(report.rows[0].outcome, Outcome::Unchanged);
    assert_eq!(store.len(T), 1);
}

#[test]
fn composed_and_decomposed_rows_of_one_identity_are_duplicates() {
    let v = validate("userId,email\njos\u{e9},a@x.io\njose\u{301},b@x.io\n");
    assert_eq!(
        codes(&v),
        [(Some(2), Code::DuplicateKey), (Some(3), Code::DuplicateKey)]
    );
}

#[test]
fn a_non_breaking_space_around_a_value_is_trimmed() {
    let mut store = store_with("ann", "ann@x.io");
    let file = "userId,email,lastName\n\u{a0}ann\u{a0},ann@x.io\u{a0},Lee\n";
    let report = Importer::new(T)
        .run(file.as_bytes(), None, &mut store)
        .unwrap();
    assert_eq!(report.rows[0].outcome, Outcome::Unchanged);
}

#[test]
fn an_invisible_character_in_an_identity_is_an_error_naming_it() {
    for (value, named) in [
        ("admin\u{200b}", "U+200B ZERO WIDTH SPACE"),
        ("ad\u{200d}min", "U+200D ZERO WIDTH JOINER"),
        ("admin\u{2060}", "U+2060 WORD JOINER"),
        ("ad\u{feff}min", "U+FEFF"),
        ("\u{202e}nimda", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("admin\u{2066}", "U+2066 LEFT-TO-RIGHT ISOLATE"),
    ] {
        for (header, row) in [
            ("userId,email", format!("{value},a@x.io")),
            ("userId,email,reportsTo", format!("a,a@x.io,{value}")),
        ] {
            let v = validate(&format!("{header}\n{row}\n"));
            let errors: Vec<_> = v.issues().filter(|i| i.is_error()).collect();
            assert_eq!(errors.len(), 1, "{value:?} in {header}: {errors:?}");
            assert!(
                errors[0].message.contains(named),
                "{value:?}: {}",
                errors[0].message
            );
        }
    }
    // Roles too, and the row is not imported under skip-invalid.
    let mut p = Profile::default();
    p.unknown_roles = RolePolicy::Create;
    p.on_error = user_import::ErrorPolicy::SkipInvalid;
    let mut store = InMemoryStore::new();
    let report = Importer::with_profile(T, p)
        .run(
            "userId,email,roles\na,a@x.io,Admin\u{200b}\nb,b@x.io,Admin\n".as_bytes(),
            None,
            &mut store,
        )
        .unwrap();
    assert_eq!(report.rows[0].outcome, Outcome::Failed);
    assert_eq!(report.rows[0].issues[0].code, Code::InvalidValue);
    assert_eq!(store.roles(T), ["Admin"]);
}

#[test]
fn invisible_characters_in_a_name_are_not_an_identity_matter() {
    // A name is no identity: a zero-width joiner is part of some scripts.
    let v = validate("userId,email,lastName\na,a@x.io,\u{915}\u{94d}\u{200d}\u{937}\n");
    assert_eq!(codes(&v), []);
}
