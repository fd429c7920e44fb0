//! The validation report: text, JSON, and the error CSV.

mod common;

use common::validate;
use user_import::{Field, Importer};

#[test]
fn text_report_has_a_summary_and_a_line_per_issue() {
    let v = validate("userId,email\na,\nb,b@x.io\n");
    assert_eq!(
        v.render_text(),
        "2 rows: 1 valid, 1 with errors; 1 errors, 0 warnings\n\
         line 2, email: missing required value [missing_value]\n"
    );
}

#[test]
fn json_has_one_entry_per_row_in_order_with_its_issues() {
    let v = validate("userId,email,shoe\na,bad,1\n\nb,b@x.io,2\n");
    let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
    assert_eq!(json["issues"][0]["code"], "unknown_column");
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(rows[0]["key"], "a");
    assert_eq!(rows[0]["issues"][0]["code"], "invalid_email");
    assert_eq!(rows[0]["issues"][0]["column"], "email");
    assert_eq!(rows[1]["line"], 4);
    assert_eq!(rows[1]["issues"].as_array().unwrap().len(), 0);
    assert_eq!(json["counts"]["invalid_rows"], 1);
}

#[test]
fn error_csv_holds_failed_rows_with_original_cells_line_and_error() {
    let file = "userId,firstName,email,enabled\n\
                a,Ann,a@x.io,true\n\
                b,\"Ben, Jr.\",,YES\n\
                c,=HYPERLINK(\"http://evil\"),c@x.io,perhaps\n";
    let v = validate(file);
    let mut out = Vec::new();
    v.write_error_csv(file.as_bytes(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "userId,firstName,email,enabled,line,error\n\
         b,\"Ben, Jr.\",,YES,3,missing required value [missing_value]\n\
         c,\"'=HYPERLINK(\"\"http://evil\"\")\",c@x.io,perhaps,4,enabled: enabled must be true or false [invalid_value]\n"
    );
}

/// OWASP's CSV-injection examples, through the whole error file.
#[test]
fn owasp_examples_are_neutralized_in_the_error_csv() {
    let file = "userId,firstName,email\nx,\"=1+2\"\";=1+2\",bad\ny,\"=1+2'\"\" ;,=1+2\",bad\n";
    let v = validate(file);
    let mut out = Vec::new();
    v.write_error_csv(file.as_bytes(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].starts_with("x,\"'=1+2\"\";=1+2\",bad,2,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("y,\"'=1+2'\"\" ;,=1+2\",bad,3,"),
        "{}",
        lines[2]
    );
}

#[test]
fn an_error_csv_reads_back_to_the_original_values() {
    let file = "userId,firstName,email\nx,=SUM(A1:A9),bad\ny,-5,bad\nz,'@home,bad\n";
    let v = validate(file);
    let mut out = Vec::new();
    v.write_error_csv(file.as_bytes(), &mut out).unwrap();
    // Fix the emails and import the error file again.
    let text = String::from_utf8(out).unwrap();
    let fixed = ["x", "y", "z"]
        .iter()
        .fold(text, |t, k| t.replacen(",bad,", &format!(",{k}@x.io,"), 1));
    let again = Importer::new("default").validate(fixed.as_bytes(), None);
    let names: Vec<&str> = again
        .rows()
        .iter()
        .map(|r| r.user.get(Field::FirstName).unwrap())
        .collect();
    assert_eq!(names, ["=SUM(A1:A9)", "-5", "'@home"]);
    // The `line` and `error` columns the library added are ignored quietly.
    assert_eq!(again.issues().count(), 0, "{}", again.render_text());
}

#[test]
fn every_row_appears_exactly_once() {
    let mut file = String::from("userId,email\n");
    for i in 0..50 {
        match i % 5 {
            0 => file.push_str(&format!("u{i},bad\n")),
            1 => file.push('\n'),
            2 => file.push_str(&format!("u{i},\"u{i}@x.io\"\n")),
            3 => file.push_str(&format!("u{i},u{i}@x.io,extra\n")),
            _ => file.push_str(&format!("u{i},u{i}@x.io\n")),
        }
    }
    let v = validate(&file);
    assert_eq!(v.rows().len(), 40);
    let mut lines: Vec<u64> = v.rows().iter().map(|r| r.line).collect();
    lines.dedup();
    assert_eq!(lines.len(), 40);
    assert!(lines.windows(2).all(|w| w[0] < w[1]));
}
