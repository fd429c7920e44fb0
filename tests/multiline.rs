//! Records are RFC 4180 records under every policy: a line break inside a
//! quoted value is part of the value, never the start of a row. A column
//! says whether it takes one; a quote that merges rows rejects the file.

mod common;

use common::{codes, only, validate};
use proptest::prelude::*;
use user_import::memory::InMemoryStore;
use user_import::{AttributeKind, Code, CustomAttribute, ErrorPolicy, Importer, Profile};

const T: &str = "default";

fn importer(policy: ErrorPolicy) -> Importer {
    let mut p = Profile::default();
    p.on_error = policy;
    p.custom = vec![CustomAttribute::new("notes", AttributeKind::Text).multiline()];
    Importer::with_profile(T, p)
}

/// The user ids in the store, sorted.
fn ids(store: &InMemoryStore) -> Vec<String> {
    let mut ids: Vec<String> = store
        .users(T)
        .filter_map(|u| u.user.user_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// What a spreadsheet writes for a last name typed over two lines: the
/// second line looks like a user of its own (`evil`), and is not one.
#[test]
fn a_continuation_line_is_never_imported_as_a_user() {
    for end in ["\n", "\r\n", "\r"] {
        let text =
            format!("userId,email,lastName{end}a,a@x.io,\"Doe{end}evil\"{end}b,b@x.io,Kim{end}");
        let mut store = InMemoryStore::new();
        let report = importer(ErrorPolicy::SkipInvalid)
            .run(text.as_bytes(), None, &mut store)
            .unwrap();
        assert_eq!(ids(&store), ["b"], "{text:?}");
        let rows: Vec<(u64, Option<&str>)> = report
            .rows
            .iter()
            .map(|r| (r.line, r.key.as_deref()))
            .collect();
        assert_eq!(rows, [(2, Some("a")), (4, Some("b"))], "{text:?}");
        let issue = &report.rows[0].issues[0];
        assert_eq!(issue.code, Code::InvalidValue);
        assert_eq!(issue.column.as_deref(), Some("lastName"));
        assert!(issue.message.contains("lines 2 to 3"), "{}", issue.message);

        // Under the default policy the file is refused, naming the row.
        let v = importer(ErrorPolicy::RejectFile).validate(text.as_bytes(), None);
        assert_eq!(codes(&v), [(Some(2), Code::InvalidValue)]);
    }
}

#[test]
fn a_column_that_takes_line_breaks_reads_the_value_whole() {
    let text = "userId,email,notes\na,a@x.io,\"first line\r\nsecond, with a comma\r\nthird\"\nb,b@x.io,plain\n";
    let v = importer(ErrorPolicy::RejectFile).validate(text.as_bytes(), None);
    assert!(!v.has_errors(), "{}", v.render_text());
    let rows: Vec<(u64, Option<&str>)> = v
        .rows()
        .iter()
        .map(|r| (r.line, r.user.custom("notes")))
        .collect();
    assert_eq!(
        rows,
        [
            (2, Some("first line\r\nsecond, with a comma\r\nthird")),
            (5, Some("plain"))
        ]
    );
    let mut store = InMemoryStore::new();
    importer(ErrorPolicy::RejectFile)
        .run(text.as_bytes(), None, &mut store)
        .unwrap();
    assert_eq!(ids(&store), ["a", "b"]);
}

#[test]
fn a_column_the_import_ignores_takes_line_breaks_and_delimiters() {
    let v = validate("userId,comment,email\na,\"x,\ny\",a@x.io\nb,,b@x.io\n");
    assert_eq!(codes(&v), [(Some(1), Code::UnknownColumn)]);
    let lines: Vec<u64> = v.rows().iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 4]);
}

/// A stray quote makes one "value" of several rows: with its delimiters it
/// looks like rows, and nothing of the file is imported, under any policy.
#[test]
fn rows_merged_by_a_stray_quote_reject_the_file_under_every_policy() {
    let text = "userId,email,lastName\na,a@x.io,\"Doe\nevil,evil@x.io,Boss\nc,c@x.io,Kim\"\nd,d@x.io,Lee\n";
    for policy in [
        ErrorPolicy::RejectFile,
        ErrorPolicy::SkipInvalid,
        ErrorPolicy::StopAfter(10),
    ] {
        let mut store = InMemoryStore::new();
        let report = importer(policy)
            .run(text.as_bytes(), None, &mut store)
            .unwrap();
        assert!(store.is_empty(T), "{policy:?}");
        assert!(!report.is_success());
        let v = importer(policy).validate(text.as_bytes(), None);
        let i = only(&v, Code::MalformedRow);
        assert_eq!((i.line, i.column.as_deref()), (Some(2), Some("lastName")));
        assert!(
            i.message.contains("opens on line 2 and closes on line 4"),
            "{}",
            i.message
        );
        assert!(v.rows().is_empty());
    }
}

#[test]
fn an_unterminated_quote_at_the_end_rejects_the_file_under_every_policy() {
    let text = "userId,email,lastName\na,a@x.io,Doe\nb,b@x.io,\"Kim\n";
    for policy in [ErrorPolicy::RejectFile, ErrorPolicy::SkipInvalid] {
        let mut store = InMemoryStore::new();
        importer(policy)
            .run(text.as_bytes(), None, &mut store)
            .unwrap();
        assert!(store.is_empty(T), "{policy:?}");
    }
    let v = validate(text);
    let i = only(&v, Code::MalformedRow);
    assert_eq!((i.line, i.column.as_deref()), (Some(3), Some("lastName")));
    assert!(i.message.contains("never closed"), "{}", i.message);
}

#[test]
fn the_error_csv_writes_a_multi_line_row_back_whole() {
    let text = "userId,email,lastName\na,a@x.io,\"Doe\nSmith\"\nb,b@x.io,Kim\n";
    let v = validate(text);
    let mut out = Vec::new();
    v.write_error_csv(text.as_bytes(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let mut r = csv::Reader::from_reader(out.as_bytes());
    let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1, "{out}");
    assert_eq!(&records[0][2], "Doe\nSmith");
    assert_eq!(&records[0][3], "2");
}

/// A cell: mostly plain, sometimes quotes, delimiters, line breaks and
/// non-ASCII, which a CSV writer must quote.
fn cell() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => "[a-z]{1,3}",
            1 => Just("\"".to_owned()),
            1 => Just(",".to_owned()),
            1 => Just("\n".to_owned()),
            1 => Just("\r\n".to_owned()),
            1 => Just("\r".to_owned()),
            1 => Just("é王 😀".to_owned()),
            1 => Just(" ".to_owned()),
        ],
        0..5,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    /// A file written by the csv crate's `Writer` reads back record for
    /// record: every row, on the line where its record starts, with a
    /// multi-line notes value whole.
    #[test]
    fn files_written_by_the_csv_crate_read_back_record_for_record(
        notes in prop::collection::vec(cell(), 1..12),
        terminator in prop::sample::select(vec![
            csv::Terminator::CRLF,
            csv::Terminator::Any(b'\n'),
            csv::Terminator::Any(b'\r'),
        ]),
    ) {
        let mut w = csv::WriterBuilder::new().terminator(terminator).from_writer(Vec::new());
        w.write_record(["userId", "email", "notes"]).unwrap();
        let mut line = 2u64;
        let mut expected = Vec::new();
        for (i, n) in notes.iter().enumerate() {
            let id = format!("u{i}");
            w.write_record([id.as_str(), &format!("{id}@x.io"), n]).unwrap();
            expected.push((line, id));
            // The record's own line breaks, and its terminator.
            line += 1 + n.matches('\n').count() as u64
                + n.match_indices('\r').filter(|(at, _)| !n[at + 1..].starts_with('\n')).count() as u64;
        }
        let file = w.into_inner().unwrap();
        let v = importer(ErrorPolicy::RejectFile).validate(&file, None);
        let got: Vec<(u64, String)> = v
            .rows()
            .iter()
            .map(|r| (r.line, r.user.user_id().unwrap_or("").to_owned()))
            .collect();
        prop_assert_eq!(&got, &expected, "{}", String::from_utf8_lossy(&file));
        prop_assert!(!v.has_errors(), "{}", v.render_text());
        for (row, n) in v.rows().iter().zip(&notes) {
            let trimmed = n.trim();
            prop_assert_eq!(row.user.custom("notes").unwrap_or(""), trimmed);
        }
    }

    /// Whatever the quoting, however broken, no import under any policy
    /// creates a user whose key is not the key of a record of the file (as
    /// an RFC 4180 reader, the csv crate's, reads its records).
    #[test]
    fn no_import_creates_a_user_who_is_not_a_record_of_the_file(
        rows in prop::collection::vec(
            (prop_oneof![3 => "u[0-9]", 1 => cell()], prop_oneof![3 => Just(true), 1 => Just(false)], cell()),
            1..10,
        ),
        quote_ids in any::<bool>(),
    ) {
        let mut text = String::from("userId,email,lastName\n");
        for (id, good_email, last) in &rows {
            let email = if *good_email { format!("{}@x.io", id.trim()) } else { last.clone() };
            let id = if quote_ids { format!("\"{id}\"") } else { id.clone() };
            // Written raw: the cells' quotes and line breaks make the file
            // valid, merged or broken, by chance.
            text.push_str(&format!("{id},{email},{last}\n"));
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let keys: Vec<String> = reader
            .records()
            .filter_map(Result::ok)
            .filter_map(|r| r.get(0).map(|k| k.trim().to_lowercase()))
            .collect();
        for policy in [ErrorPolicy::RejectFile, ErrorPolicy::SkipInvalid, ErrorPolicy::StopAfter(3)] {
            let mut store = InMemoryStore::new();
            let _ = importer(policy).run(text.as_bytes(), None, &mut store);
            for id in ids(&store) {
                prop_assert!(
                    keys.contains(&id.to_lowercase()),
                    "{policy:?} created {id:?}, not a record of {text:?} (records' keys: {keys:?})"
                );
            }
        }
    }
}
