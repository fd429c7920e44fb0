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
