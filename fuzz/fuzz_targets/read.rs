//! Arbitrary bytes through reading and validation: never panics, and the
//! result is internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use user_import::Importer;

fuzz_target!(|data: &[u8]| {
    let v = Importer::new("default").validate(data, None);
    // Rows are in strictly increasing line order.
    assert!(v.rows().windows(2).all(|w| w[0].line < w[1].line));
    // A row is marked failed exactly when it has an error.
    for r in v.rows() {
        assert_eq!(r.error, v.row_issues(r.line).iter().any(|i| i.is_error()));
    }
    let _ = v.render_text();
});
