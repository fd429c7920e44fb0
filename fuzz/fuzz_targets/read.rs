//! Arbitrary bytes through reading and validation: never panics, and the
//! result is internally consistent.
#![no_main]

#[path = "../checks.rs"]
mod checks;
#[path = "../../tests/common/model.rs"]
mod model;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::read(data));
