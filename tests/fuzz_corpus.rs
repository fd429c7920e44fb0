//! Replays the fuzz corpus (fuzz/corpus/<target>/*) through the same checks
//! the fuzz targets run, on stable Rust, as an ordinary test. Crashes found
//! by fuzzing are kept in the corpus as regression inputs.
#![cfg(feature = "arbitrary")]

#[path = "../fuzz/checks.rs"]
mod checks;
#[path = "common/model.rs"]
mod model;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
        n += 1;
    }
    n
}

#[test]
fn read_corpus() {
    assert!(replay("read", checks::read) > 10);
}

#[test]
fn pipeline_corpus() {
    assert!(replay("pipeline", checks::pipeline) > 5);
}

#[test]
fn ops_corpus() {
    assert!(replay("ops", checks::ops) > 5);
}

#[test]
fn streaming_corpus() {
    assert!(replay("streaming", checks::streaming) > 5);
}

/// What a downstream fuzz target does in three lines — arbitrary file,
/// directory and profile through the whole pipeline — on a few thousand
/// pseudo-random inputs: it must never panic.
#[test]
fn arbitrary_file_directory_and_profile_never_panic() {
    use arbitrary::{Arbitrary, Unstructured};
    use user_import::memory::{InMemoryStore, State};
    use user_import::{Importer, Profile};
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let len = (next() % 2048) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut u = Unstructured::new(&bytes);
        let Ok((file, dir, profile)) = <(Vec<u8>, State, Profile)>::arbitrary(&mut u) else {
            continue;
        };
        let mut store = InMemoryStore::from_directory("t", &dir);
        let _ = Importer::with_profile("t", profile).run(&file, None, &mut store);
    }
}
