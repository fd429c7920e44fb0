//! Malformed CSV is reported on the right line, where the csv crate alone
//! stays silent or blames the wrong line. Each test first shows what the csv
//! crate does with the same bytes, so the test cannot pass by accident.

mod common;

use common::{only, validate};
use user_import::Code;

/// What the csv crate reports: `(record start line, fields)` per record, or
/// the first error's line.
/// Records as the csv crate sees them: `(start line, fields)`.
type Records = Vec<(u64, Vec<String>)>;

fn csv_crate(text: &str, flexible: bool) -> Result<Records, (u64, String)> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(flexible)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for rec in r.records() {
        match rec {
            Ok(rec) => out.push((
                rec.position().map_or(0, |p| p.line()),
                rec.iter().map(str::to_owned).collect(),
            )),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err((line, e.to_string()));
            }
        }
    }
    Ok(out)
}

/// The file error a stray or missing quote gives: `(line, column)` and its
/// message; the file has no rows.
fn merged(v: &user_import::Validation) -> (Option<u64>, Option<String>, String) {
    let i = only(v, Code::MalformedRow);
    assert!(v.rows().is_empty(), "no row of a merged file is kept");
    assert!(v.has_errors());
    (i.line, i.column.clone(), i.message.clone())
}

#[test]
fn an_unterminated_quote_rejects_the_file() {
    let text = "userId,lastName,email\na,\"Doe,a@x.io\nb,Lee,b@x.io\nc,Kim,c@x.io\n";
    // The csv crate: no error; the quote swallows the rest of the file into
    // one field, and rows b and c are gone.
    let seen = csv_crate(text, true).unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].1[1].contains("c@x.io"));

    let (line, column, message) = merged(&validate(text));
    assert_eq!((line, column.as_deref()), (Some(2), Some("lastName")));
    assert!(
        message.contains("opens on line 2 and is never closed"),
        "{message}"
    );
}

#[test]
fn a_quote_closed_by_a_later_row_rejects_the_file() {
    let text = "userId,lastName,email\na,\"Doe,a@x.io\nb,\"Lee\",b@x.io\n";
    // The csv crate joins the two rows into one record and says nothing.
    let seen = csv_crate(text, true).unwrap();
    assert_eq!(seen.len(), 2);
    let (line, column, message) = merged(&validate(text));
    assert_eq!((line, column.as_deref()), (Some(2), Some("lastName")));
    assert!(
        message.contains("opens on line 2 and closes on line 3"),
        "{message}"
    );
}

#[test]
fn a_missing_quote_closed_at_the_end_of_a_later_line_rejects_the_file() {
    // The csv crate reads one record: line 3 disappears into a last name.
    let text = "userId,email,lastName\nu1,u1@x.io,\"O'Neil\nu2,u2@x.io,Smith\"\nu3,u3@x.io,Kim\n";
    let seen = csv_crate(text, true).unwrap();
    assert_eq!(seen.len(), 3);
    let (line, column, message) = merged(&validate(text));
    assert_eq!((line, column.as_deref()), (Some(2), Some("lastName")));
    assert!(
        message.contains("opens on line 2 and closes on line 3"),
        "{message}"
    );
}

#[test]
fn too_many_and_too_few_cells_on_cr_only_lines() {
    // Old Mac line ends: the csv crate counts lines by '\n' only.
    let text = "userId,lastName,email\ra,Doe,a@x.io\rb,Lee\rc,Kim,c@x.io,extra\r";
    let err = csv_crate(text, false).unwrap_err();
    assert_eq!(err.0, 1, "the csv crate blames line 1: {}", err.1);

    let v = validate(text);
    let malformed: Vec<(Option<u64>, String)> = v
        .issues()
        .filter(|i| i.code == Code::MalformedRow)
        .map(|i| (i.line, i.message.clone()))
        .collect();
    assert_eq!(
        malformed,
        [
            (
                Some(3),
                "the row has 2 cells but the header has 3".to_owned()
            ),
            (
                Some(4),
                "the row has 4 cells but the header has 3".to_owned()
            ),
        ]
    );
}

#[test]
fn ragged_row_after_a_quoted_multiline_field() {
    // Notes (a column the import ignores) may run over lines.
    let text = "userId,notes,email\na,\"Doe\n(née Smith)\",a@x.io\nb,b@x.io\n";
    let v = validate(text);
    assert_eq!(only(&v, Code::MalformedRow).line, Some(4));
}

#[test]
fn nul_byte_is_reported_where_the_csv_crate_accepts_it() {
    let text = "userId,lastName,email\na,Do\0e,a@x.io\nb,Lee,b@x.io\n";
    let seen = csv_crate(text, false).unwrap();
    assert_eq!(seen[1].1[1], "Do\0e", "the csv crate keeps the NUL");

    let v = validate(text);
    let i = only(&v, Code::MalformedRow);
    assert_eq!((i.line, i.column.as_deref()), (Some(2), Some("lastName")));
    assert!(i.message.contains("NUL"));
    assert!(!v.rows()[1].error);
}

#[test]
fn text_after_a_closing_quote() {
    let v = validate("userId,lastName,email\na,\"Doe\" Jr,a@x.io\n");
    let i = only(&v, Code::MalformedRow);
    assert_eq!((i.line, i.column.as_deref()), (Some(2), Some("lastName")));
}

#[test]
fn a_header_repeated_as_a_data_row() {
    let v = validate("userId,email\na,a@x.io\nuserId,email\nb,b@x.io\n");
    let i = only(&v, Code::MalformedRow);
    assert_eq!(i.line, Some(3));
    assert!(i.message.contains("repeats the header"));
}

#[test]
fn broken_header_quote_is_a_file_error() {
    let v = validate("userId,\"email\na,a@x.io\n");
    assert_eq!(only(&v, Code::MalformedRow).line, Some(1));
    assert!(v.rows().is_empty());
}
