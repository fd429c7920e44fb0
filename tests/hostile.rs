//! Files made to hurt: each gives a clear issue on the right line, and
//! nothing is written.

use user_import::memory::InMemoryStore;
use user_import::{Code, Field, Importer, Issue, Outcome, Report, User};

const T: &str = "default";

/// Runs `file` through the whole pipeline with the default policy and
/// checks that nothing was written.
fn rejected(file: &[u8]) -> Report {
    let mut store = InMemoryStore::new();
    let report = Importer::new(T).run(file, None, &mut store).unwrap();
    assert!(store.is_empty(T), "nothing may be written");
    assert_eq!(store.calls().apply, 0);
    assert!(!report.is_success());
    report
}

fn all_issues(r: &Report) -> Vec<&Issue> {
    r.issues
        .iter()
        .chain(r.rows.iter().flat_map(|x| &x.issues))
        .collect()
}

fn has(r: &Report, line: u64, code: Code) -> bool {
    all_issues(r)
        .iter()
        .any(|i| i.line == Some(line) && i.code == code)
}

#[test]
fn a_million_columns_in_the_header() {
    let mut file = "c,".repeat(1_000_000);
    file.push_str("\na\n");
    let r = rejected(file.as_bytes());
    assert!(has(&r, 1, Code::LimitExceeded), "{:?}", r.issues);
    assert!(
        r.issues[0]
            .message
            .contains("1000001 columns, more than the limit of 256"),
        "{}",
        r.issues[0].message
    );
}

#[test]
fn one_hundred_megabyte_field() {
    let mut file = String::from("userId,email,lastName\na,a@x.io,");
    file.push_str(&"x".repeat(100 * 1024 * 1024));
    file.push_str("\nb,b@x.io,Short\n");
    let r = rejected(file.as_bytes());
    let i = all_issues(&r)
        .into_iter()
        .find(|i| i.code == Code::LimitExceeded)
        .unwrap();
    assert_eq!((i.line, i.column.as_deref()), (Some(2), Some("lastName")));
    assert_eq!(
        r.rows[1].outcome,
        Outcome::Skipped,
        "the next row is read and kept apart"
    );
}

#[test]
fn ten_million_empty_lines() {
    let mut file = String::from("userId,email\n");
    file.push_str(&"\n".repeat(10_000_000));
    let r = rejected(file.as_bytes());
    assert_eq!(r.issues[0].code, Code::FileEmpty);
    let mut file = String::from("userId,email\n");
    file.push_str(&"\n".repeat(10_000_000));
    file.push_str("a,bad\n");
    let r = rejected(file.as_bytes());
    assert!(has(&r, 10_000_002, Code::InvalidEmail));
}

/// A million rows in release builds; debug builds (CI's `cargo test`) use
/// 200,000, still far deeper than any recursion would survive, and CI runs
/// this file again with `--release`.
const BIG: usize = if cfg!(debug_assertions) {
    200_000
} else {
    1_000_000
};

fn chain(n: usize, cycle: bool) -> String {
    let mut f = String::with_capacity(n * 40);
    f.push_str("userId,email,reportsTo\n");
    for i in 0..n {
        let manager = if cycle {
            format!("u{}", (i + 1) % n)
        } else if i == 0 {
            String::new()
        } else {
            format!("u{}", i - 1)
        };
        f.push_str(&format!("u{i},u{i}@example.com,{manager}\n"));
    }
    f
}

#[test]
fn a_reports_to_chain_a_million_deep() {
    let n = BIG;
    let mut store = InMemoryStore::new();
    let importer = Importer::new(T);
    let plan = importer
        .plan(
            importer.validate(chain(n, false).as_bytes(), None),
            &mut store,
        )
        .unwrap();
    assert!(!plan.is_blocked());
    // Every manager is created before their report.
    let ids: Vec<&str> = plan
        .ops()
        .iter()
        .filter_map(|o| o.user_id())
        .take(3)
        .collect();
    assert_eq!(ids, ["u0", "u1", "u2"]);
    assert_eq!(plan.ops().len(), n);
}

#[test]
fn a_million_row_cycle() {
    let n = BIG;
    let r = rejected(chain(n, true).as_bytes());
    assert_eq!(r.summary.failed, n as u64);
    let first = &r.rows[0].issues[0];
    assert_eq!((first.code, first.line), (Code::ReportsToCycle, Some(2)));
    assert!(
        first.message.contains(&format!("cycle of {n} users")),
        "{}",
        first.message
    );
}

#[test]
fn every_value_a_formula() {
    let f = "=cmd|' /C calc'!A0";
    let file =
        format!("userId,firstName,lastName,email,roles\n\"{f}\",\"{f}\",\"{f}\",\"{f}\",\"{f}\"\n");
    let r = rejected(file.as_bytes());
    let codes: Vec<Code> = r.rows[0].issues.iter().map(|i| i.code).collect();
    assert_eq!(
        codes,
        [
            Code::InvalidValue,
            Code::InvalidEmail,
            Code::InvalidRoleName
        ]
    );
    // The error file written back is formula-safe.
    let mut out = Vec::new();
    r.write_error_csv(file.as_bytes(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let row = text.lines().nth(1).unwrap();
    assert!(
        row.starts_with("'=cmd|' /C calc'!A0,'=cmd|' /C calc'!A0,"),
        "{row}"
    );
}

#[test]
fn formula_names_survive_export_and_import_neutralized() {
    let mut store = InMemoryStore::new();
    let importer = Importer::new(T);
    // A leading apostrophe is a spreadsheet's "this is text" mark: `'=x` in a
    // file means the text `=x`.
    let names = ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "'=x"];
    let stored = ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "=x"];
    let mut file = String::from("userId,email,lastName\n");
    for (i, n) in names.iter().enumerate() {
        file.push_str(&format!(
            "u{i},u{i}@example.com,\"{}\"\n",
            n.replace('"', "\"\"")
        ));
    }
    let r = importer.run(file.as_bytes(), None, &mut store).unwrap();
    assert_eq!(r.summary.added, names.len() as u64);
    let mut out = Vec::new();
    importer.export(&mut store, &mut out).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&out[..]);
    for rec in reader.records() {
        for cell in rec.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']),
                "{cell:?} would run as a formula"
            );
        }
    }
    let again = importer.run(&out, None, &mut store).unwrap();
    assert_eq!(
        again.summary.unchanged,
        names.len() as u64,
        "{}",
        again.render_text()
    );
    for (i, n) in stored.iter().enumerate() {
        assert_eq!(
            store
                .get(T, &format!("u{i}"))
                .unwrap()
                .user
                .get(Field::LastName),
            Some(*n)
        );
    }
    // A stored value that itself starts with an apostrophe round-trips too.
    store.insert(
        T,
        User::builder()
            .set(Field::UserId, "q")
            .set(Field::Email, "q@x.io")
            .set(Field::LastName, "'=x")
            .build(),
    );
    let mut out = Vec::new();
    importer.export(&mut store, &mut out).unwrap();
    let again = importer.run(&out, None, &mut store).unwrap();
    assert_eq!(
        again.summary.unchanged,
        names.len() as u64 + 1,
        "{}",
        again.render_text()
    );
}

#[test]
fn hostile_emails() {
    let long = format!("{}@example.com", "a".repeat(290));
    let file = format!(
        "userId,email\n\
         a,John Doe <john@example.com>\n\
         b,john@[192.168.0.1]\n\
         c,\"\"\"john doe\"\"@example.com\"\n\
         d,{long}\n\
         e,\u{0430}dmin@example.com\n\
         f,Admin@Example.com\n\
         g,admin@EXAMPLE.COM\n"
    );
    let r = rejected(file.as_bytes());
    for line in 2..=6 {
        assert!(has(&r, line, Code::InvalidEmail), "line {line}");
    }
    assert!(has(&r, 7, Code::DuplicateEmail) && has(&r, 8, Code::DuplicateEmail));
}

#[test]
fn nul_bytes_cr_only_lines_and_boms() {
    let r = rejected(b"userId,email\ra,a@x.io\rb,b\0@x.io\r");
    assert!(has(&r, 3, Code::MalformedRow));
    // Two files joined: the second one's BOM and header show up as a row.
    let r = rejected(b"\xEF\xBB\xBFuserId,email\na,a@x.io\n\xEF\xBB\xBFuserId,email\nb,b@x.io\n");
    assert!(has(&r, 3, Code::MalformedRow));
    // A BOM inside a value.
    let r = rejected("userId,email,lastName\na,a@x.io,Do\u{feff}e\n".as_bytes());
    assert!(has(&r, 2, Code::InvalidEncoding));
}

#[test]
fn utf16_without_bom() {
    let bytes: Vec<u8> = "userId,email\na,a@x.io\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let r = rejected(&bytes);
    assert_eq!(
        (r.issues[0].code, r.issues[0].line),
        (Code::InvalidEncoding, Some(1))
    );
}

#[test]
fn header_repeated_as_a_data_row() {
    let r = rejected(b"userId,email\na,a@x.io\nUSER ID,E-mail\n");
    assert!(has(&r, 3, Code::MalformedRow));
}

#[test]
fn a_valid_file_is_written() {
    // The `rejected` helper would fail on a good file: make sure it can.
    let mut store = InMemoryStore::new();
    let r = Importer::new(T)
        .run(b"userId,email\na,a@x.io\n", None, &mut store)
        .unwrap();
    assert!(r.is_success());
    assert_eq!(store.len(T), 1);
}

/// One manager named by tens of thousands of rows (here on duplicate DELETE
/// rows too): each lookup stops at the second match, so this stays linear.
#[test]
fn one_manager_on_many_rows_stays_linear() {
    let n = 30_000;
    let mut store = InMemoryStore::new();
    store.insert(
        T,
        User::builder()
            .set(Field::UserId, "boss")
            .set(Field::Email, "boss@x.io")
            .build(),
    );
    let mut file = String::from("userId,email,reportsTo,transaction\n");
    for _ in 0..n {
        file.push_str("boss,,,DELETE\n");
    }
    for k in 0..n {
        file.push_str(&format!("u{k},u{k}@x.io,boss,\n"));
    }
    let importer = Importer::new(T);
    let plan = importer
        .plan(importer.validate(file.as_bytes(), None), &mut store)
        .unwrap();
    assert_eq!(plan.rows().len(), 2 * n);
    assert!(plan.is_blocked(), "the duplicate DELETE rows are errors");
}

/// Thousands of distinct new roles against a large catalog: "did you mean"
/// is computed only for reported issues, once per distinct value.
#[test]
fn many_unknown_roles_against_a_large_catalog() {
    let mut store = InMemoryStore::new();
    let roles: Vec<String> = (0..1000)
        .map(|k| format!("Role{k:04}WithALongishName"))
        .collect();
    store.set_catalog(T, user_import::Catalog::new().roles(roles));
    let mut file = String::from("userId,email,roles\n");
    for k in 0..5000 {
        file.push_str(&format!(
            "u{k},u{k}@x.io,New{k}RoleWithAnotherName|Role0001WithALongishName\n"
        ));
    }
    let mut p = user_import::Profile::default();
    p.unknown_roles = user_import::RolePolicy::Create;
    let importer = Importer::with_profile(T, p);
    let report = importer.run(file.as_bytes(), None, &mut store).unwrap();
    assert_eq!(
        (report.summary.added, report.summary.roles_added),
        (5000, 5000)
    );
}
