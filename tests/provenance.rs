//! Every plan and report says where it comes from: the input's SHA-256 and
//! size, how it was read, the profile, the tenant, the acting user, the
//! library's version and the times.

use user_import::memory::InMemoryStore;
use user_import::{ErrorPolicy, Importer, Plan, Profile, Report};

const FILE: &[u8] = b"userId,email,roles\na,a@x.io,Staff\nb,bad,Staff\n";

#[test]
fn the_digest_is_sha256_of_the_bytes_as_given() {
    // FIPS 180-2's first example: the SHA-256 of "abc".
    let v = Importer::new("t").validate(b"abc", Some("abc.csv"));
    assert_eq!(
        v.input().sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(v.input().bytes, 3);
    assert_eq!(v.input().name.as_deref(), Some("abc.csv"));
    // A byte order mark is part of the bytes given.
    let bom = Importer::new("t").validate(b"\xEF\xBB\xBFabc", None);
    assert_ne!(bom.input().sha256, v.input().sha256);
    assert_eq!(bom.input().bytes, 6);
}

#[test]
fn a_report_says_who_imported_what_under_which_settings() {
    let mut profile = Profile::default();
    profile.on_error = ErrorPolicy::SkipInvalid;
    let importer = Importer::with_profile("acme", profile.clone()).acting_user("Root ");
    let report = importer
        .run(FILE, Some("users.csv"), &mut InMemoryStore::new())
        .unwrap();
    let p = &report.provenance;
    assert_eq!(p.input_bytes, FILE.len() as u64);
    assert_eq!(p.input_name.as_deref(), Some("users.csv"));
    assert_eq!(p.tenant, "acme");
    assert_eq!(p.acting_user.as_deref(), Some("Root "), "as given");
    assert_eq!(p.profile, profile);
    assert_eq!(p.library_version, env!("CARGO_PKG_VERSION"));
    assert!(
        p.decisions
            .iter()
            .any(|d| d == "rows with errors are skipped")
    );
    assert!(p.started_at <= p.planned_at && p.planned_at <= p.finished_at);
    // The same digest as the validation's.
    let v = importer.validate(FILE, None);
    assert_eq!(p.input_sha256, v.input().sha256);
}

#[test]
fn a_plan_keeps_its_provenance_through_json_and_its_report_adds_the_end() {
    let importer = Importer::new("acme").acting_user("root");
    let mut store = InMemoryStore::new();
    let plan = importer
        .plan(importer.validate(FILE, Some("u.csv")), &mut store)
        .unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "input_sha256",
        "input_bytes",
        "library_version",
        "tenant",
        "acting_user",
        "started_at",
        "finished_at",
    ] {
        assert!(
            value["provenance"].get(key).is_some(),
            "{key} in {}",
            value["provenance"]
        );
    }
    let again: Plan = serde_json::from_str(&json).unwrap();
    assert_eq!(again.provenance().planned_at, plan.provenance().planned_at);
    assert_eq!(again, plan);
    let report = Report::dry_run(&plan);
    assert_eq!(report.provenance.planned_at, plan.provenance().planned_at);
    assert!(report.provenance.finished_at >= plan.provenance().planned_at);
    // A plan made again from the same file equals the first: the times
    // are not compared.
    let twice = importer
        .plan(importer.validate(FILE, Some("u.csv")), &mut store)
        .unwrap();
    assert_eq!(twice, plan);
    // A plan stored before provenance existed still reads.
    let mut old = value.clone();
    if let Some(o) = old.as_object_mut() {
        o.remove("provenance");
    }
    let old: Plan = serde_json::from_value(old).unwrap();
    assert_eq!(old.provenance().input_sha256, "");
}

#[test]
fn the_text_report_ends_with_where_the_import_comes_from() {
    let report = Importer::new("acme")
        .run(FILE, Some("users.csv"), &mut InMemoryStore::new())
        .unwrap();
    let text = report.render_text();
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    assert!(
        lines[n - 3].starts_with(&format!("input: users.csv {} bytes, sha256 ", FILE.len())),
        "{text}"
    );
    assert!(lines[n - 2].starts_with("import: tenant acme, user-import "));
    assert!(lines[n - 1].starts_with("settings: users are matched by userId; "));
    // The error CSV holds none of it.
    let mut csv = Vec::new();
    report.write_error_csv(FILE, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(!csv.contains("sha256"), "{csv}");
}
