//! See `fuzz/README.md` and `checks::streaming`.
#![no_main]

#[path = "../checks.rs"]
mod checks;
#[path = "../../tests/common/model.rs"]
mod model;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::streaming(data));
