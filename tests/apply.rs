//! Applying: error policies, atomicity, batching, progress and
//! cancellation, the async driver, and the report.

use std::ops::ControlFlow;

use user_import::memory::InMemoryStore;
use user_import::{Code, ErrorPolicy, Field, Importer, Outcome, Phase, Profile, Progress};

const T: &str = "acme";

fn importer(policy: ErrorPolicy, batch: usize) -> Importer {
    let mut p = Profile::default();
    p.on_error = policy;
    p.batch_size = batch;
    Importer::with_profile(T, p)
}

fn file(valid: usize, invalid_at: &[usize]) -> String {
    let mut f = String::from("userId,email\n");
    for i in 0..valid {
        if invalid_at.contains(&i) {
            f.push_str(&format!("u{i},not-an-email\n"));
        } else {
            f.push_str(&format!("u{i},u{i}@example.com\n"));
        }
    }
    f
}

#[test]
fn reject_file_writes_nothing_and_reports_bad_rows_failed_good_rows_skipped() {
    let mut store = InMemoryStore::new();
    let report = importer(ErrorPolicy::RejectFile, 100)
        .run(file(4, &[2]).as_bytes(), None, &mut store)
        .unwrap();
    let outcomes: Vec<Outcome> = report.rows.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Skipped,
            Outcome::Skipped,
            Outcome::Failed,
            Outcome::Skipped
        ]
    );
    assert!(store.is_empty(T));
    assert_eq!(store.calls().apply, 0);
    assert!(!report.is_success());
}

#[test]
fn skip_invalid_imports_the_rest() {
    let mut store = InMemoryStore::new();
    let report = importer(ErrorPolicy::SkipInvalid, 100)
        .run(file(6, &[3]).as_bytes(), None, &mut store)
        .unwrap();
    assert_eq!((report.summary.added, report.summary.failed), (5, 1));
    assert_eq!(store.len(T), 5);
}

#[test]
fn stop_after_n_errors() {
    let mut store = InMemoryStore::new();
    let two_bad = file(6, &[1, 4]);
    let report = importer(ErrorPolicy::StopAfter(1), 100)
        .run(two_bad.as_bytes(), None, &mut store)
        .unwrap();
    assert_eq!(report.summary.added, 0, "two errors > 1: nothing applied");
    assert!(store.is_empty(T));
    let report = importer(ErrorPolicy::StopAfter(2), 100)
        .run(two_bad.as_bytes(), None, &mut store)
        .unwrap();
    assert_eq!(report.summary.added, 4);
}

#[test]
fn lookups_and_writes_are_batched() {
    let mut store = InMemoryStore::new();
    let n = 1000;
    let imp = importer(ErrorPolicy::RejectFile, 100);
    imp.run(file(n, &[]).as_bytes(), None, &mut store).unwrap();
    let c = store.calls();
    assert_eq!(c.fetch, 10, "one fetch per batch of 100 rows");
    assert_eq!(c.apply, 10, "one apply per batch of 100 ops");
    assert_eq!(c.catalog, 1);
}

#[test]
fn progress_is_reported_and_cancellation_stops_between_batches() {
    let mut store = InMemoryStore::new();
    let imp = importer(ErrorPolicy::SkipInvalid, 10);
    let plan = imp
        .plan(imp.validate(file(35, &[]).as_bytes(), None), &mut store)
        .unwrap();
    let mut seen: Vec<Progress> = Vec::new();
    let report = imp
        .apply_with(
            &plan,
            &mut store,
            user_import::RunOptions::new().on_progress(&mut |p| {
                seen.push(*p);
                if p.ops_done >= 20 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }),
        )
        .unwrap();
    assert!(
        seen.iter()
            .all(|p| p.phase == Phase::Applying && p.ops_total == 35)
    );
    assert_eq!(
        seen.iter().map(|p| p.ops_done).collect::<Vec<_>>(),
        [0, 10, 20, 20]
    );
    assert!(report.cancelled);
    // Without a transaction policy the first two batches stay, and the report says so.
    assert_eq!(store.len(T), 20);
    assert_eq!((report.summary.added, report.summary.skipped), (20, 15));
    let skipped = report
        .rows
        .iter()
        .find(|r| r.outcome == Outcome::Skipped)
        .unwrap();
    assert_eq!(skipped.issues[0].code, Code::Cancelled);
    assert!(report.issues.iter().any(|i| i.code == Code::Cancelled));

    // Re-running converges.
    let again = imp.run(file(35, &[]).as_bytes(), None, &mut store).unwrap();
    assert_eq!((again.summary.added, again.summary.unchanged), (15, 20));
}

#[test]
fn cancelling_an_all_or_nothing_import_rolls_it_back() {
    let mut store = InMemoryStore::new();
    let imp = importer(ErrorPolicy::RejectFile, 10);
    let plan = imp
        .plan(imp.validate(file(35, &[]).as_bytes(), None), &mut store)
        .unwrap();
    let report = imp
        .apply_with(
            &plan,
            &mut store,
            user_import::RunOptions::new().on_progress(&mut |p| {
                if p.ops_done >= 20 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            }),
        )
        .unwrap();
    assert!(report.cancelled);
    assert!(store.is_empty(T));
    assert!(!store.in_transaction());
    assert_eq!(report.summary.added, 0);
    assert!(report.rows.iter().all(|r| r.outcome == Outcome::Skipped));
}

#[test]
fn planning_progress_and_cancellation() {
    let mut store = InMemoryStore::new();
    let imp = importer(ErrorPolicy::RejectFile, 10);
    let mut rows_done = Vec::new();
    imp.plan_with(
        imp.validate(file(25, &[]).as_bytes(), None),
        &mut store,
        user_import::RunOptions::new().on_progress(&mut |p| {
            assert_eq!((p.phase, p.rows_total), (Phase::Planning, 25));
            rows_done.push(p.rows_done);
            ControlFlow::Continue(())
        }),
    )
    .unwrap();
    assert_eq!(rows_done, [0, 10, 20]);
}

#[test]
fn the_async_driver_gives_the_same_report() {
    let text = file(30, &[]);
    let imp = importer(ErrorPolicy::RejectFile, 7);
    let mut sync_store = InMemoryStore::new();
    let sync_report = imp.run(text.as_bytes(), None, &mut sync_store).unwrap();
    let mut async_store = InMemoryStore::new();
    let async_report =
        futures_lite_block_on(imp.run_async(text.as_bytes(), None, &mut async_store)).unwrap();
    assert_eq!(sync_report, async_report);
    assert_eq!(async_store.calls().fetch, 5);
}

#[test]
fn the_async_driver_hands_the_same_rows_to_on_row() {
    let text = file(30, &[]);
    let imp = importer(ErrorPolicy::RejectFile, 7);
    let sync_report = imp
        .run(text.as_bytes(), None, &mut InMemoryStore::new())
        .unwrap();
    let mut async_store = InMemoryStore::new();
    let plan = futures_lite_block_on(
        imp.plan_async(imp.validate(text.as_bytes(), None), &mut async_store),
    )
    .unwrap();
    let mut rows = Vec::new();
    let mut on_row = |row: user_import::RowReport| rows.push(row);
    let mut async_report = futures_lite_block_on(imp.apply_async_with(
        &plan,
        &mut async_store,
        user_import::RunOptions::new().on_row(&mut on_row),
    ))
    .unwrap();
    assert!(async_report.rows.is_empty());
    assert_eq!(rows.len(), 30);
    async_report.rows = rows;
    assert_eq!(sync_report, async_report);
}

/// The async API needs no runtime: a future that is polled to completion by
/// a minimal executor is enough (here, the std-only one below).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct W(std::thread::Thread);
    impl Wake for W {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(W(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn summary_line_starts_with_the_four_counts() {
    let mut store = InMemoryStore::new();
    let report = importer(ErrorPolicy::SkipInvalid, 100)
        .run(
            b"userId,email,shoe\na,a@x.io,1\nb,bad,2\n",
            None,
            &mut store,
        )
        .unwrap();
    assert_eq!(
        report.summary.to_string(),
        "1 Added, 0 Updated, 0 Deleted, 0 Roles Added, 0 Unchanged, 0 Skipped, 1 Failed, 1 Warnings"
    );
    assert!(
        report
            .render_text()
            .starts_with("1 Added, 0 Updated, 0 Deleted, 0 Roles Added")
    );
}

#[test]
fn every_row_is_reported_once_in_input_order_with_its_changes() {
    let mut store = InMemoryStore::new();
    store.insert(
        T,
        user_import::User::builder()
            .set(Field::UserId, "b")
            .set(Field::Email, "b@x.io")
            .build(),
    );
    let report = importer(ErrorPolicy::SkipInvalid, 2)
        .run(
            b"userId,email,lastName\nc,c@x.io,C\nb,b@x.io,Bee\n\na,bad,A\nd,d@x.io,D\n",
            None,
            &mut store,
        )
        .unwrap();
    let lines: Vec<(u64, Outcome)> = report.rows.iter().map(|r| (r.line, r.outcome)).collect();
    assert_eq!(
        lines,
        [
            (2, Outcome::Added),
            (3, Outcome::Updated),
            (5, Outcome::Failed),
            (6, Outcome::Added)
        ]
    );
    assert_eq!(
        report.rows[1].changes[0].to_string(),
        "lastName: (none) → \"Bee\""
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["summary"]["added"], 2);
    assert_eq!(json["rows"][2]["outcome"], "failed");
    assert_eq!(json["rows"][2]["issues"][0]["code"], "invalid_email");
    assert_eq!(json["rows"][2]["issues"][0]["severity"], "error");
}

#[test]
fn error_csv_of_a_report_includes_rows_that_failed_when_applied() {
    let mut store = InMemoryStore::new();
    let imp = importer(ErrorPolicy::SkipInvalid, 100);
    let text = b"userId,email\na,a@x.io\nb,b@x.io\n";
    let plan = imp.plan(imp.validate(text, None), &mut store).unwrap();
    // b's email is taken between planning and applying.
    store.insert(
        T,
        user_import::User::builder()
            .set(Field::UserId, "zed")
            .set(Field::Email, "b@x.io")
            .build(),
    );
    let report = imp.apply(&plan, &mut store).unwrap();
    let mut out = Vec::new();
    report.write_error_csv(text, &mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    assert!(
        csv.starts_with("userId,email,line,error\nb,b@x.io,3,"),
        "{csv}"
    );
    assert!(csv.contains("[conflict]"));
}
