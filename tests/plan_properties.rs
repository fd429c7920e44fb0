//! Property tests of planning and applying: the planner agrees with
//! a small reference model; re-planning after apply is empty; row order of
//! independent rows does not change the plan, nor does the number of
//! threads; every row is reported once; invalid rows produce no operation;
//! rows handed to a callback are the rows the report would hold.

mod common;

use common::model::{DirUser, Row, T, model, store_of, to_file};
use proptest::prelude::*;
use user_import::{
    ErrorPolicy, Importer, Op, Outcome, Planned, Profile, Report, RowReport, RunOptions,
};

fn row() -> impl Strategy<Value = Row> {
    (
        0u8..8,
        0u8..8,
        prop::bool::weighted(0.1),
        0u8..3,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(id, email, bad_email, last, delete)| Row {
            id,
            email,
            bad_email,
            last,
            delete,
        })
}

/// A directory: distinct ids and distinct emails.
fn directory() -> impl Strategy<Value = Vec<DirUser>> {
    prop::collection::btree_map(0u8..8, (0u8..8, 0u8..3), 0..6).prop_map(|m| {
        let mut used = std::collections::HashSet::new();
        m.into_iter()
            .filter(|(_, (e, _))| used.insert(*e))
            .map(|(id, (email, last))| DirUser { id, email, last })
            .collect()
    })
}

/// 65 to 200 rows, each about its own user (ids 0, 1, 2, …), a tenth
/// taking another user's email and a tenth deleting: more than one batch of
/// 64 rows, most of them planned (not failed as duplicates).
fn distinct_rows() -> impl Strategy<Value = Vec<Row>> {
    let cells = (
        any::<u8>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.05),
        0u8..3,
        prop::bool::weighted(0.1),
    );
    prop::collection::vec(cells, 65..200).prop_map(|cells| {
        cells
            .into_iter()
            .enumerate()
            .map(|(i, (other, share, bad_email, last, delete))| Row {
                id: i as u8,
                email: if share { other } else { i as u8 },
                bad_email,
                last,
                delete,
            })
            .collect()
    })
}

/// A directory of up to 150 users among ids 0–255 (distinct emails).
fn wide_directory() -> impl Strategy<Value = Vec<DirUser>> {
    prop::collection::btree_map(any::<u8>(), (any::<u8>(), 0u8..3), 0..150).prop_map(|m| {
        let mut used = std::collections::HashSet::new();
        m.into_iter()
            .filter(|(_, (e, _))| used.insert(*e))
            .map(|(id, (email, last))| DirUser { id, email, last })
            .collect()
    })
}

fn importer() -> Importer {
    let mut p = Profile::default();
    p.on_error = ErrorPolicy::SkipInvalid;
    p.batch_size = 3;
    Importer::with_profile(T, p)
}

fn strip_lines(ops: &[Op]) -> Vec<Op> {
    ops.iter()
        .map(|op| {
            let mut v = serde_json::to_value(op).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.remove("line");
            }
            serde_json::from_value(v).unwrap()
        })
        .collect()
}

proptest! {
    // PROPTEST_CASES=10000 for a deeper run by hand.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
    ))]

    #[test]
    fn planner_agrees_with_the_reference_model(dir in directory(), rows in prop::collection::vec(row(), 1..10)) {
        let mut store = store_of(&dir);
        let imp = importer();
        let plan = imp.plan(imp.validate(to_file(&rows).as_bytes(), None), &mut store).unwrap();
        let got: Vec<Planned> = plan.rows().iter().map(|r| r.planned).collect();
        prop_assert_eq!(got, model(&dir, &rows), "file:\n{}", to_file(&rows));
    }

    /// With more than one batch of 64 rows, the batches are planned by
    /// several threads in blocks: the plan and the store's calls are the
    /// ones one thread makes.
    #[test]
    fn the_number_of_threads_does_not_change_the_plan(
        dir in wide_directory(),
        rows in distinct_rows(),
        threads in 2usize..5,
    ) {
        let plan = |threads: usize| {
            let mut store = store_of(&dir);
            let mut p = Profile::default();
            p.on_error = ErrorPolicy::SkipInvalid;
            p.batch_size = 64;
            let imp = Importer::with_profile(T, p).threads(threads);
            let plan = imp.plan(imp.validate(to_file(&rows).as_bytes(), None), &mut store).unwrap();
            (plan, store.calls())
        };
        prop_assert_eq!(plan(threads), plan(1), "file:\n{}", to_file(&rows));
    }

    #[test]
    fn every_row_once_and_invalid_rows_produce_no_operation(dir in directory(), rows in prop::collection::vec(row(), 1..10)) {
        let mut store = store_of(&dir);
        let imp = importer();
        let text = to_file(&rows);
        let plan = imp.plan(imp.validate(text.as_bytes(), None), &mut store).unwrap();
        prop_assert_eq!(plan.rows().len(), rows.len());
        let op_lines: Vec<u64> = plan.ops().iter().filter_map(Op::line).collect();
        for r in plan.rows() {
            let with_op = op_lines.iter().filter(|&&l| l == r.line).count();
            let expected = usize::from(matches!(r.planned, Planned::Create | Planned::Update | Planned::Delete));
            prop_assert_eq!(with_op, expected, "line {} planned {:?}", r.line, r.planned);
        }
        let report = imp.apply(&plan, &mut store).unwrap();
        prop_assert_eq!(report.rows.len(), rows.len());
        let s = report.summary;
        prop_assert_eq!(s.added + s.updated + s.deleted + s.unchanged + s.skipped + s.failed, rows.len() as u64);
    }

    /// Rows handed to `on_row` (applying, and in a dry run) are the rows
    /// the report would hold, in order, and the rest of the report is the
    /// same, under either error policy.
    #[test]
    fn rows_handed_to_on_row_are_the_reports_rows(
        dir in directory(),
        rows in prop::collection::vec(row(), 1..10),
        reject in any::<bool>(),
    ) {
        let mut p = Profile::default();
        p.on_error = if reject { ErrorPolicy::RejectFile } else { ErrorPolicy::SkipInvalid };
        p.batch_size = 3;
        let imp = Importer::with_profile(T, p);
        let text = to_file(&rows);
        let plan = imp.plan(imp.validate(text.as_bytes(), None), &mut store_of(&dir)).unwrap();

        let mut streamed = Vec::new();
        let mut dry = Report::dry_run_to(&plan, &mut |r: RowReport| streamed.push(r));
        prop_assert!(dry.rows.is_empty());
        dry.rows = streamed;
        prop_assert_eq!(&dry, &Report::dry_run(&plan));

        let kept = imp.apply(&plan, &mut store_of(&dir)).unwrap();
        let mut streamed = Vec::new();
        let mut on_row = |r: RowReport| streamed.push(r);
        let mut store = store_of(&dir);
        let mut report = imp
            .apply_with(&plan, &mut store, RunOptions::new().on_row(&mut on_row))
            .unwrap();
        prop_assert!(report.rows.is_empty());
        report.rows = streamed;
        prop_assert_eq!(&report, &kept, "file:\n{}", text);
    }

    #[test]
    fn replanning_after_apply_is_empty(dir in directory(), rows in prop::collection::vec(row(), 1..10)) {
        let mut store = store_of(&dir);
        let imp = importer();
        let text = to_file(&rows);
        let report = imp.run(text.as_bytes(), None, &mut store).unwrap();
        prop_assert!(report.rows.iter().all(|r| r.outcome != Outcome::Failed || r.issues.iter().any(|i| i.is_error())));
        let again = imp.plan(imp.validate(text.as_bytes(), None), &mut store).unwrap();
        prop_assert!(again.ops().is_empty(), "{:?}", again.ops());
    }

    #[test]
    fn row_order_of_independent_rows_does_not_change_the_plan(
        dir in directory(),
        rows in prop::collection::vec(row(), 1..10),
        seed in any::<u64>(),
    ) {
        let mut shuffled = rows.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let imp = importer();
        let a = imp.plan(imp.validate(to_file(&rows).as_bytes(), None), &mut store_of(&dir)).unwrap();
        let b = imp.plan(imp.validate(to_file(&shuffled).as_bytes(), None), &mut store_of(&dir)).unwrap();
        prop_assert_eq!(strip_lines(a.ops()), strip_lines(b.ops()));
    }
}

#[cfg(feature = "testkit")]
mod with_testkit_strategies {
    use proptest::prelude::*;
    use user_import::memory::InMemoryStore;
    use user_import::testkit::strategies::{directory, valid_file};
    use user_import::{ErrorPolicy, Importer, Outcome, Profile};

    fn importer() -> Importer {
        let mut p = Profile::default();
        p.on_error = ErrorPolicy::SkipInvalid;
        p.batch_size = 4;
        Importer::with_profile("default", p)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
        ))]

        /// A valid file against any directory: applying it, then planning it
        /// again, plans nothing.
        #[test]
        fn reimport_is_a_no_op(f in valid_file(10), d in directory(10)) {
            let mut store = InMemoryStore::from_directory("default", &d);
            let imp = importer();
            let first = imp.run(f.text.as_bytes(), None, &mut store).unwrap();
            prop_assert_eq!(first.rows.len(), f.rows.len());
            let again = imp.plan(imp.validate(f.text.as_bytes(), None), &mut store).unwrap();
            prop_assert!(again.ops().is_empty(), "{}\n{:?}", f.text, again.ops());
        }

        /// Export → import round-trips: every exported user is unchanged.
        #[test]
        fn export_then_import_round_trips(f in valid_file(10), d in directory(10)) {
            let mut store = InMemoryStore::from_directory("default", &d);
            let imp = importer();
            imp.run(f.text.as_bytes(), None, &mut store).unwrap();
            let mut out = Vec::new();
            let n = imp.export(&mut store, &mut out).unwrap();
            let again = imp.run(&out, None, &mut store).unwrap();
            prop_assert_eq!(again.rows.len() as u64, n);
            prop_assert!(again.rows.iter().all(|r| r.outcome == Outcome::Unchanged),
                "{}\n{}", String::from_utf8_lossy(&out), again.render_text());
        }
    }
}
