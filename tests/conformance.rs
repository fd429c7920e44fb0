//! The conformance kit, run against the crate's own InMemoryStore, sync and async.
#![cfg(feature = "testkit")]

use user_import::memory::InMemoryStore;
use user_import::testkit::{self, SCENARIOS};

#[test]
fn in_memory_store_passes_the_kit_sync() {
    testkit::conformance(InMemoryStore::new).unwrap();
}

#[test]
fn in_memory_store_passes_the_kit_async() {
    testkit::block_on(testkit::conformance_async(InMemoryStore::new)).unwrap();
}

#[test]
fn every_scenario_runs_by_name() {
    for &name in SCENARIOS {
        testkit::block_on(testkit::run_scenario(name, &mut InMemoryStore::new()))
            .unwrap_or_else(|f| panic!("{f}"));
    }
    assert!(testkit::block_on(testkit::run_scenario("nope", &mut InMemoryStore::new())).is_err());
}

/// A store that breaks the contract is caught: it ignores versions.
#[test]
fn the_kit_catches_a_store_that_ignores_versions() {
    use user_import::{Catalog, ExistingUser, Fetch, Op, OpOutcome, UserStore};
    struct Sloppy(InMemoryStore);
    impl UserStore for Sloppy {
        type Error = std::convert::Infallible;
        fn catalog(&mut self, t: &str) -> Result<Catalog, Self::Error> {
            self.0.catalog(t)
        }
        fn fetch(&mut self, r: &Fetch) -> Result<Vec<ExistingUser>, Self::Error> {
            self.0.fetch(r)
        }
        fn scan(
            &mut self,
            t: &str,
            a: Option<&str>,
            l: usize,
        ) -> Result<Vec<ExistingUser>, Self::Error> {
            self.0.scan(t, a, l)
        }
        fn count(&mut self, t: &str) -> Result<u64, Self::Error> {
            self.0.count(t)
        }
        fn apply(&mut self, t: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, Self::Error> {
            // Rewrites every version to the current one: last writer wins.
            let current: Vec<Op> = ops
                .iter()
                .map(|op| match op {
                    Op::Update {
                        line,
                        user_id,
                        changes,
                        ..
                    } => Op::Update {
                        line: *line,
                        user_id: user_id.clone(),
                        version: self.0.get(t, user_id).map_or(0, |u| u.version),
                        changes: changes.clone(),
                    },
                    other => other.clone(),
                })
                .collect();
            self.0.apply(t, &current)
        }
    }
    let err = testkit::conformance(|| Sloppy(InMemoryStore::new())).unwrap_err();
    assert_eq!(err.scenario, "stale_version_gives_conflict");
}
