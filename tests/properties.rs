//! Property tests over reading and validation.

use proptest::prelude::*;
use user_import::cell::{neutralize_cell, restore_cell};
use user_import::{Field, Importer};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes: no panic, rows in strictly increasing line order, every
    /// issue on a line that exists, every error row marked.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let v = Importer::new("t").validate(&bytes, None);
        let lines = 2 + bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64;
        prop_assert!(v.rows().windows(2).all(|w| w[0].line < w[1].line));
        for i in v.issues() {
            prop_assert!(i.line.unwrap_or(1) <= lines, "{i:?}");
        }
        for r in v.rows() {
            prop_assert_eq!(r.error, v.row_issues(r.line).iter().any(|i| i.is_error()));
        }
    }

    /// Arbitrary bytes after a valid header.
    #[test]
    fn arbitrary_rows_never_panic(body in "[a-z@.,;\"\\r\\n\t |=\u{0}é]{0,300}") {
        let text = format!("userId,email,reportsTo,roles\n{body}");
        let v = Importer::new("t").validate(text.as_bytes(), None);
        prop_assert!(v.rows().windows(2).all(|w| w[0].line < w[1].line));
    }

    /// Whatever a (trimmed) name holds, writing it neutralized with the csv
    /// crate and reading it back gives the same name (quotes, delimiters,
    /// formulas included).
    #[test]
    fn written_values_read_back(names in proptest::collection::vec("[ -~é]{0,20}", 1..20)) {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["userId", "email", "lastName"]).unwrap();
        for (i, n) in names.iter().enumerate() {
            w.write_record([format!("u{i}"), format!("u{i}@x.io"), neutralize_cell(n.trim()).into_owned()]).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let v = Importer::new("t").validate(&bytes, None);
        prop_assert_eq!(v.rows().len(), names.len());
        for (r, n) in v.rows().iter().zip(&names) {
            let got = r.user.get(Field::LastName).unwrap_or("");
            prop_assert_eq!(got, n.trim());
        }
    }

    #[test]
    fn neutralize_round_trips(s in ".{0,12}") {
        let n = neutralize_cell(&s);
        prop_assert_eq!(restore_cell(&n), s.as_str());
        prop_assert!(!n.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']));
    }
}

#[cfg(feature = "testkit")]
mod with_testkit_strategies {
    use proptest::prelude::*;
    use user_import::Importer;
    use user_import::testkit::strategies::{file_with_defect, valid_file};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
        ))]

        /// A valid generated file validates without an issue.
        #[test]
        fn valid_files_validate_clean(f in valid_file(12)) {
            let v = Importer::new("default").validate(f.text.as_bytes(), None);
            prop_assert_eq!(v.issues().count(), 0, "{}\n{}", f.text, v.render_text());
            prop_assert_eq!(v.rows().len(), f.rows.len());
        }

        /// Each defect produces exactly its code(s) on its line(s), and no other error.
        #[test]
        fn each_defect_produces_exactly_its_issues(f in file_with_defect(12)) {
            let v = Importer::new("default").validate(f.text.as_bytes(), None);
            let errors: Vec<(u64, user_import::Code)> =
                v.issues().filter(|i| i.is_error()).map(|i| (i.line.unwrap_or(0), i.code)).collect();
            prop_assert_eq!(&errors, &f.expected, "{:?}\n{}\n{}", f.defect, f.text, v.render_text());
        }
    }
}
