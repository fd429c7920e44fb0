//! Reading: delimiters, encodings, line numbers, empty files, limits.

mod common;

use std::io::Read;

use common::{codes, only, validate};
use user_import::{Code, Delimiter, Encoding, Importer, Limits, Profile};

fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if little { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] });
    }
    for u in text.encode_utf16() {
        out.extend_from_slice(&if little {
            u.to_le_bytes()
        } else {
            u.to_be_bytes()
        });
    }
    out
}

#[test]
fn comma_is_the_default() {
    let v = validate("userId,email\njdoe,jdoe@example.com\n");
    assert_eq!(v.input().delimiter, Delimiter::Comma);
    assert_eq!(v.rows()[0].user.email(), Some("jdoe@example.com"));
}

#[test]
fn txt_and_tsv_files_are_tab_separated() {
    for name in ["users.txt", "users.tsv"] {
        let v = Importer::new("t").validate(b"userId\temail\njdoe\tjdoe@example.com\n", Some(name));
        assert_eq!(v.input().delimiter, Delimiter::Tab, "{name}");
        assert!(!v.has_errors(), "{name}: {:?}", codes(&v));
    }
}

#[test]
fn semicolons_are_detected_and_can_be_named() {
    let text = b"userId;email;lastName\njdoe;jdoe@example.com;Doe, Jr.\n";
    let v = Importer::new("t").validate(text, Some("users.csv"));
    assert_eq!(v.input().delimiter, Delimiter::Semicolon);
    assert_eq!(
        v.rows()[0].user.get(user_import::Field::LastName),
        Some("Doe, Jr.")
    );
    let mut p = Profile::default();
    p.delimiter = Delimiter::Semicolon;
    let v = Importer::with_profile("t", p).validate(text, None);
    assert_eq!(v.input().delimiter, Delimiter::Semicolon);
    assert!(!v.has_errors());
}

#[test]
fn detection_refuses_an_ambiguous_header() {
    let v = validate("userId,email;firstName;lastName\na,b;c;d\n");
    assert_eq!(
        v.input().delimiter,
        Delimiter::Semicolon,
        "three known names beat two"
    );
    // No name is recognised, and both ',' and ';' split the header.
    let v = validate("Nom;Prénom,Courriel;Rôle\na;b,c;d\n");
    only(&v, Code::AmbiguousDelimiter);
    assert!(v.rows().is_empty());
}

#[test]
fn utf8_bom_is_stripped() {
    let v = Importer::new("t").validate(b"\xEF\xBB\xBFuserId,email\njdoe,jdoe@example.com\n", None);
    assert_eq!(v.input().encoding, Encoding::Utf8Bom);
    assert_eq!(v.columns()[0], "userId");
    assert!(!v.has_errors(), "{:?}", codes(&v));
}

#[test]
fn utf16_with_bom_is_decoded_both_ways() {
    let text = "userId\temail\tlastName\nzoë\tzoe@example.com\tMüller\n";
    for little in [true, false] {
        let v = Importer::new("t").validate(&utf16(text, little, true), Some("users.txt"));
        assert_eq!(
            v.input().encoding,
            if little {
                Encoding::Utf16Le
            } else {
                Encoding::Utf16Be
            }
        );
        assert!(!v.has_errors(), "{:?}", codes(&v));
        assert_eq!(
            v.rows()[0].user.get(user_import::Field::LastName),
            Some("Müller")
        );
    }
}

#[test]
fn utf16_without_bom_is_refused_not_read_as_garbage() {
    let v = Importer::new("t").validate(&utf16("userId,email\na,a@x.io\n", true, false), None);
    let i = only(&v, Code::InvalidEncoding);
    assert_eq!(i.line, Some(1));
    assert!(v.rows().is_empty());
}

#[test]
fn invalid_utf8_is_an_error_of_that_row_with_line_and_column() {
    let v = Importer::new("t").validate(
        b"userId,lastName,email\na,Ok,a@x.io\nb,M\xFCller,b@x.io\nc,Fine,c@x.io\n",
        None,
    );
    let i = only(&v, Code::InvalidEncoding);
    assert_eq!((i.line, i.column.as_deref()), (Some(3), Some("lastName")));
    let errors: Vec<bool> = v.rows().iter().map(|r| r.error).collect();
    assert_eq!(errors, [false, true, false]);
}

#[test]
fn line_numbers_are_physical_across_quoted_newlines() {
    // Multi-line notes, in a column the import does not read.
    let v = validate(
        "userId,notes,email\na,\"two\nlines\",a@x.io\n\nb,Plain,b@x.io\nc,\"x\r\ny\r\nz\",c@x.io\nd,bad,nope\n",
    );
    let lines: Vec<u64> = v.rows().iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 5, 6, 9]);
    assert_eq!(
        codes(&v),
        [
            (Some(1), Code::UnknownColumn),
            (Some(9), Code::InvalidEmail)
        ]
    );
    // In a column it reads, a value over several lines is the row's error,
    // naming the lines; the line after it is part of the value, not a row.
    let v = validate("userId,lastName,email\na,\"two\nlines\",a@x.io\nb,Lee,b@x.io\n");
    assert_eq!(codes(&v), [(Some(2), Code::InvalidValue)]);
    let issue = v.issues().next().unwrap();
    assert_eq!(issue.column.as_deref(), Some("lastName"));
    assert!(issue.message.contains("lines 2 to 3"), "{}", issue.message);
    let lines: Vec<(u64, bool)> = v.rows().iter().map(|r| (r.line, r.error)).collect();
    assert_eq!(lines, [(2, true), (4, false)]);
}

#[test]
fn cr_only_line_ends_count_lines() {
    let v = validate("userId,email\ra,a@x.io\rb,nope\r");
    assert_eq!(v.rows().len(), 2);
    assert_eq!(only(&v, Code::InvalidEmail).line, Some(3));
}

#[test]
fn empty_and_header_only_files_are_file_empty() {
    for text in [
        "",
        "\n\n",
        "userId,email\n",
        "userId,email\n\n,\n , \n",
        "\u{feff}",
    ] {
        let v = validate(text);
        let i = only(&v, Code::FileEmpty);
        assert_eq!(i.message, "file is empty", "{text:?}");
    }
}

#[test]
fn blank_rows_are_not_rows() {
    let v = validate("userId,email\n,\na,a@x.io\n,,\n");
    assert_eq!(v.rows().len(), 1);
}

fn limited(limits: Limits) -> Importer {
    let mut p = Profile::default();
    p.limits = limits;
    Importer::with_profile("t", p)
}

#[test]
fn file_byte_limit() {
    let v =
        limited(Limits::default().max_file_bytes(10)).validate(b"userId,email\na,a@x.io\n", None);
    only(&v, Code::LimitExceeded);
    assert!(v.rows().is_empty());
}

#[test]
fn row_limit_rejects_the_file_at_the_first_row_over() {
    let v = limited(Limits::default().max_rows(2)).validate(
        b"userId,email\na,a@x.io\nb,b@x.io\nc,c@x.io\nd,d@x.io\n",
        None,
    );
    let i = only(&v, Code::LimitExceeded);
    assert_eq!(i.line, Some(4));
    assert!(v.has_errors());
}

#[test]
fn field_limit_is_a_row_error() {
    let text = format!(
        "userId,lastName,email\na,{},a@x.io\nb,Short,b@x.io\n",
        "x".repeat(100)
    );
    let v = limited(Limits::default().max_field_bytes(50)).validate(text.as_bytes(), None);
    let i = only(&v, Code::LimitExceeded);
    assert_eq!((i.line, i.column.as_deref()), (Some(2), Some("lastName")));
    assert_eq!(v.rows().iter().filter(|r| r.error).count(), 1);
}

#[test]
fn column_limit() {
    let header: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let text = format!("{}\n", header.join(","));
    let v = limited(Limits::default().max_columns(20)).validate(text.as_bytes(), None);
    let i = only(&v, Code::LimitExceeded);
    assert_eq!(i.line, Some(1));
}

/// A reader that counts the bytes it serves.
struct Counting<R> {
    inner: R,
    served: std::rc::Rc<std::cell::Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.served.set(self.served.get() + n);
        Ok(n)
    }
}

#[test]
fn reading_past_the_byte_limit_stops_early() {
    let served = std::rc::Rc::new(std::cell::Cell::new(0));
    // An endless stream of rows.
    let endless = std::io::repeat(b'a').take(u64::MAX);
    let source = Counting {
        inner: endless,
        served: served.clone(),
    };
    let v = limited(Limits::default().max_file_bytes(1 << 20))
        .validate_reader(source, None)
        .unwrap();
    only(&v, Code::LimitExceeded);
    assert!(
        served.get() <= (1 << 20) + 64 * 1024,
        "served {}",
        served.get()
    );
}

/// Reading a large file on several threads gives exactly what one thread
/// gives: rows, lines, issues, in the same order — also when a quoted field
/// spans lines, the row limit falls in a piece, and a quote is left open;
/// and the file checks (duplicate keys and emails, cycles), which use
/// threads too from 50,000 rows, find the same.
#[test]
fn threads_read_exactly_what_one_thread_reads() {
    let mut file = String::from("userId,email,lastName,reportsTo\n");
    for i in 0..60_000 {
        match i % 997 {
            0 => file.push_str(&format!("u{i},u{i}@x.io,\"two\nlines\",\n")),
            1 => file.push_str(&format!("u{i},not-an-email,Last,u{}\n", i - 1)),
            2 => file.push_str(&format!("u{i},u{i}@x.io,\"say \"\"hi\"\"\r\nthere\",\n")),
            3 => file.push_str("\n\n"),
            4 => file.push_str(&format!("U{},dup{i}@x.io,Dup,\n", i - 4)),
            // Two rows reporting to each other, the second with the first's email.
            5 => file.push_str(&format!("u{i},u{i}@x.io,Cycle,u{}\n", i + 1)),
            6 => file.push_str(&format!("u{i},U{}@x.io,Cycle,u{}\n", i - 1, i - 1)),
            _ => file.push_str(&format!("u{i},u{i}@x.io,\"Last, {i}\",u{}\n", i / 2)),
        }
    }
    assert!(file.len() > 2 << 20);
    // One thread reads its one piece's 60,000 rows in two blocks (of 32,768
    // rows at most) and appends them one after the other; two threads read
    // a block each.
    let run_on = |file: &str, threads: usize, rows: u64| {
        let mut p = Profile::default();
        p.limits = p.limits.max_rows(rows);
        Importer::with_profile("t", p)
            .threads(threads)
            .validate(file.as_bytes(), None)
    };
    let run = |threads: usize, rows: u64| run_on(&file, threads, rows);
    for rows in [1_000_000, 45_000] {
        let one = run(1, rows);
        for threads in [2, 3, 7] {
            let many = run(threads, rows);
            assert_eq!(many.rows(), one.rows(), "threads={threads} rows={rows}");
            assert_eq!(
                many.issues().collect::<Vec<_>>(),
                one.issues().collect::<Vec<_>>()
            );
        }
    }
    let codes: Vec<Code> = run(1, 1_000_000).issues().map(|i| i.code).collect();
    for code in [
        Code::DuplicateKey,
        Code::DuplicateEmail,
        Code::ReportsToCycle,
    ] {
        assert!(codes.contains(&code), "{code:?}");
    }
    assert_eq!(run(2, 45_000).file_issues()[0].code, Code::LimitExceeded);
    // A quote left open near the end rejects the file, whatever the threads.
    let open_quote = format!("{file}late,late@x.io,\"open,\n");
    let run = |threads: usize, rows: u64| run_on(&open_quote, threads, rows);
    for rows in [1_000_000, 45_000] {
        let one = run(1, rows);
        for threads in [2, 3] {
            let many = run(threads, rows);
            assert_eq!(many.rows(), one.rows(), "threads={threads} rows={rows}");
            assert_eq!(
                many.issues().collect::<Vec<_>>(),
                one.issues().collect::<Vec<_>>()
            );
        }
    }
    let open = run(1, 1_000_000);
    assert!(open.rows().is_empty());
    assert_eq!(open.file_issues()[0].code, Code::MalformedRow);
}

/// A vendor's version line before the header is skipped when it is
/// unambiguous (one cell naming no column, then a header naming at least
/// two), or when the profile says how many lines to skip; lines stay
/// physical, and the error CSV starts at the header.
#[test]
fn lines_before_the_header_are_skipped_and_said() {
    let file = "version:v1.0\nuserId,email\na,a@x.io\nb,bad\n";
    let v = validate(file);
    assert_eq!(v.input().preamble, ["version:v1.0"]);
    assert_eq!(codes(&v), [(Some(4), Code::InvalidEmail)]);
    assert_eq!(v.rows()[0].line, 3);
    let mut out = Vec::new();
    v.write_error_csv(file.as_bytes(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "userId,email,line,error\nb,bad,4,invalid email address: no @ [invalid_email]\n"
    );

    // Not a preamble: a header of one known column, or a line that is not
    // followed by a header.
    assert!(validate("email\na@x.io\n").input().preamble.is_empty());
    let v = validate("some title\nnot,a,header\n");
    assert!(v.input().preamble.is_empty());

    // The profile decides: never, or exactly so many lines.
    let mut p = Profile::default();
    p.preamble = Some(0);
    let v = Importer::with_profile("t", p.clone()).validate(file.as_bytes(), None);
    assert!(v.input().preamble.is_empty());
    assert!(v.has_errors());
    p.preamble = Some(2);
    let v = Importer::with_profile("t", p).validate(
        b"Users export\nGenerated by X, 2 rows\nuserId,email\na,a@x.io\n",
        None,
    );
    assert_eq!(v.input().preamble.len(), 2);
    assert!(!v.has_errors(), "{}", v.render_text());
    assert_eq!(v.rows()[0].line, 4);
}
