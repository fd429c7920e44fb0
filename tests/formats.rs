//! Spreadsheets, zips, legacy encodings: real files under tests/data/.

mod common;

use common::{codes, data};
use user_import::memory::InMemoryStore;
use user_import::{Code, Delimiter, Encoding, Field, Format, Importer, Profile};

#[test]
fn windows_1252_is_refused_by_default_with_its_lines_and_decoded_on_request() {
    let bytes = data("users_1252.csv");
    let v = Importer::new("t").validate(&bytes, Some("users.csv"));
    let cells: Vec<(Option<u64>, Option<String>)> =
        v.issues().map(|i| (i.line, i.column.clone())).collect();
    let mut want = Vec::new();
    for line in 2..=4 {
        for column in ["firstName", "lastName"] {
            want.push((Some(line), Some(column.to_owned())));
        }
    }
    assert_eq!(cells, want);
    assert!(v.issues().all(|i| i.code == Code::InvalidEncoding));
    assert!(v.issues().next().unwrap().message.contains("Windows-1252"));

    let mut p = Profile::default();
    p.encoding = Some(Encoding::Windows1252);
    let v = Importer::with_profile("t", p).validate(&bytes, Some("users.csv"));
    assert_eq!(codes(&v), []);
    assert_eq!(v.input().encoding, Encoding::Windows1252);
    assert_eq!(v.input().delimiter, Delimiter::Semicolon);
    let names: Vec<&str> = v
        .rows()
        .iter()
        .map(|r| r.user.get(Field::LastName).unwrap())
        .collect();
    assert_eq!(names, ["Müller", "Pérez", "Œuvre €"]);
}

#[test]
fn tab_separated_txt_is_detected_and_reported() {
    let mut p = Profile::default();
    p.required = vec![Field::Email];
    let v = Importer::with_profile("t", p).validate(&data("s2_users.txt"), Some("users.txt"));
    assert_eq!(
        (v.input().format, v.input().delimiter),
        (Format::Csv, Delimiter::Tab)
    );
    assert_eq!(codes(&v), []);
}

#[cfg(feature = "xlsx")]
mod xlsx {
    use super::*;
    use user_import::{AttributeKind, CustomAttribute};

    fn profile() -> Profile {
        let mut p = Profile::default();
        p.custom = vec![CustomAttribute::new("startDate", AttributeKind::Text)];
        p
    }

    #[test]
    fn a_workbook_reads_as_the_user_sees_it_with_sheet_row_numbers() {
        // The name says .csv: the content says workbook.
        let v =
            Importer::with_profile("t", profile()).validate(&data("users.xlsx"), Some("users.csv"));
        assert_eq!(v.input().format, Format::Xlsx);
        assert_eq!(v.input().part.as_deref(), Some("Users"));
        let lines: Vec<u64> = v.rows().iter().map(|r| r.line).collect();
        assert_eq!(
            lines,
            [2, 3, 5, 6],
            "row 4 is empty; rows keep the sheet's numbers"
        );
        let u = |i: usize| &v.rows()[i].user;
        assert_eq!(u(0).user_id(), Some("00123"), "text stays text");
        assert_eq!(
            u(1).user_id(),
            Some("00042"),
            "a number formatted 00000 keeps its zeros"
        );
        assert_eq!(u(0).enabled(), Some(true), "TRUE is true");
        assert_eq!(u(1).enabled(), Some(false));
        assert_eq!(
            u(0).custom("startDate"),
            Some("2024-01-31"),
            "dates as ISO 8601"
        );
        assert_eq!(u(0).get(Field::Roles), Some("Admin|Tester"));
        // The bad email is on sheet row 5.
        assert_eq!(codes(&v), [(Some(5), Code::InvalidEmail)]);
    }

    #[test]
    fn a_named_sheet_and_a_missing_one() {
        let mut p = profile();
        p.sheet = Some("contractors".into());
        let v = Importer::with_profile("t", p.clone()).validate(&data("users.xlsx"), None);
        assert_eq!(v.input().part.as_deref(), Some("Contractors"));
        assert_eq!(v.rows()[0].user.user_id(), Some("zed"));
        p.sheet = Some("Nope".into());
        let v = Importer::with_profile("t", p).validate(&data("users.xlsx"), None);
        let i = v.file_issues()[0].clone();
        assert_eq!(i.code, Code::UnsupportedFormat);
        assert!(i.message.contains("Users, Contractors"), "{}", i.message);
    }

    #[test]
    fn the_error_file_of_a_workbook_names_its_rows() {
        let bytes = data("users.xlsx");
        let mut p = profile();
        p.on_error = user_import::ErrorPolicy::SkipInvalid;
        p.unknown_roles = user_import::RolePolicy::Create;
        let mut store = InMemoryStore::new();
        let report = Importer::with_profile("t", p)
            .run(&bytes, None, &mut store)
            .unwrap();
        assert_eq!(report.summary.added, 3, "{}", report.render_text());
        let mut out = Vec::new();
        report.write_error_csv(&bytes, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "userId,firstName,lastName,email,enabled,roles,startDate,line,error\n\
             cat,Cat,Cole,cat-at-example.com,true,Tester,,5,invalid email address: no @ [invalid_email]\n"
        );
        assert_eq!(
            store.get("t", "00042").unwrap().user.get(Field::LastName),
            Some("Baker")
        );
    }
}

#[cfg(feature = "zip")]
mod zipped {
    use std::io::Write;

    use super::*;

    fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in files {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zip_holding_one_csv_reads_it() {
        let v = Importer::new("default").validate(&data("users.zip"), Some("users.zip"));
        assert_eq!(
            (v.input().format, v.input().part.as_deref()),
            (Format::Zip, Some("users.csv"))
        );
        assert_eq!(v.rows().len(), 4);
        assert_eq!(codes(&v), [], "the __MACOSX entry is ignored");
        // A tab-separated .txt member is detected by its own name.
        let z = zip(&[("Users.TXT", b"userId\temail\na\ta@x.io\n")]);
        let v = Importer::new("t").validate(&z, None);
        assert_eq!(v.input().delimiter, Delimiter::Tab);
    }

    #[test]
    fn zips_the_importer_refuses() {
        let csv: &[u8] = b"userId,email\na,a@x.io\n";
        for (z, says) in [
            (zip(&[("a.csv", csv), ("b.csv", csv)]), "exactly one"),
            (zip(&[("users.xlsx", csv)]), "no .csv"),
            (
                zip(&[("inner.zip", &zip(&[("a.csv", csv)]))]),
                "another zip",
            ),
            (
                zip(&[("users.csv", &zip(&[("a.csv", csv)]))]),
                "itself a zip",
            ),
            (zip(&[]), "empty"),
        ] {
            let v = Importer::new("t").validate(&z, None);
            let i = &v.file_issues()[0];
            assert_eq!(i.code, Code::UnsupportedFormat, "{}", i.message);
            assert!(i.message.contains(says), "{} / {says}", i.message);
            assert!(v.rows().is_empty());
        }
    }

    #[test]
    fn a_zip_bomb_stops_at_the_byte_limit() {
        let mut big = b"userId,email\n".to_vec();
        big.resize(8 * 1024 * 1024, b'a');
        let z = zip(&[("users.csv", &big)]);
        assert!(z.len() < 64 * 1024, "compresses to {} bytes", z.len());
        let mut p = Profile::default();
        p.limits = p.limits.max_file_bytes(1024 * 1024);
        let v = Importer::with_profile("t", p).validate(&z, None);
        assert_eq!(v.file_issues()[0].code, Code::LimitExceeded);
    }
}
