//! A store that fails: on the k-th batch, by timing out, by answering fewer
//! outcomes than ops. The report names exactly what was applied; nothing is
//! reported done that was not; a rerun converges.

use std::fmt;

use user_import::memory::InMemoryStore;
use user_import::{
    Catalog, Code, ErrorPolicy, ExistingUser, Fetch, Importer, Op, OpOutcome, Outcome, Profile,
    UserStore,
};

const T: &str = "acme";

#[derive(Debug)]
struct Boom(&'static str);
impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl std::error::Error for Boom {}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// `apply` fails on this call (1-based), applying nothing of that batch.
    FailBatch(u64),
    /// `apply` times out on this call: an error, nothing applied.
    Timeout(u64),
    /// `apply` answers one outcome too few on this call (the last op of the
    /// batch is not applied).
    ShortAnswer(u64),
}

struct Faulty {
    inner: InMemoryStore,
    fault: Fault,
    applies: u64,
    transactions: bool,
}

impl Faulty {
    fn new(fault: Fault, transactions: bool) -> Faulty {
        Faulty {
            inner: InMemoryStore::new(),
            fault,
            applies: 0,
            transactions,
        }
    }
}

impl UserStore for Faulty {
    type Error = Boom;
    fn catalog(&mut self, t: &str) -> Result<Catalog, Boom> {
        Ok(self.inner.catalog(t).unwrap_or_default())
    }
    fn fetch(&mut self, r: &Fetch) -> Result<Vec<ExistingUser>, Boom> {
        Ok(self.inner.fetch(r).unwrap_or_default())
    }
    fn scan(&mut self, t: &str, a: Option<&str>, l: usize) -> Result<Vec<ExistingUser>, Boom> {
        Ok(self.inner.scan(t, a, l).unwrap_or_default())
    }
    fn count(&mut self, t: &str) -> Result<u64, Boom> {
        Ok(self.inner.count(t).unwrap_or(0))
    }
    fn apply(&mut self, t: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, Boom> {
        self.applies += 1;
        match self.fault {
            Fault::FailBatch(k) if k == self.applies => Err(Boom("disk full")),
            Fault::Timeout(k) if k == self.applies => Err(Boom("timed out after 30s")),
            Fault::ShortAnswer(k) if k == self.applies => {
                let head = &ops[..ops.len() - 1];
                Ok(self.inner.apply(t, head).unwrap_or_default())
            }
            _ => Ok(self.inner.apply(t, ops).unwrap_or_default()),
        }
    }
    fn begin(&mut self) -> Result<bool, Boom> {
        if self.transactions {
            let _ = self.inner.begin();
        }
        Ok(self.transactions)
    }
    fn commit(&mut self) -> Result<(), Boom> {
        let _ = self.inner.commit();
        Ok(())
    }
    fn rollback(&mut self) -> Result<(), Boom> {
        let _ = self.inner.rollback();
        Ok(())
    }
}

fn users_file(n: usize) -> String {
    let mut f = String::from("userId,email\n");
    for i in 0..n {
        f.push_str(&format!("u{i:02},u{i:02}@example.com\n"));
    }
    f
}

fn importer(policy: ErrorPolicy) -> Importer {
    let mut p = Profile::default();
    p.batch_size = 5;
    p.on_error = policy;
    Importer::with_profile(T, p)
}

/// The report and the store agree, row by row.
fn assert_report_matches_store(report: &user_import::Report, store: &InMemoryStore) {
    for r in &report.rows {
        let key = r.key.as_deref().unwrap();
        let exists = store.get(T, key).is_some();
        assert_eq!(
            exists,
            r.outcome == Outcome::Added,
            "row {key}: reported {:?}, in store: {exists}",
            r.outcome
        );
    }
}

#[test]
fn a_batch_error_without_transactions_reports_exactly_what_was_applied() {
    for fault in [Fault::FailBatch(3), Fault::Timeout(2)] {
        let mut store = Faulty::new(fault, false);
        let imp = importer(ErrorPolicy::SkipInvalid);
        let text = users_file(20);
        let report = imp.run(text.as_bytes(), None, &mut store).unwrap();
        assert_report_matches_store(&report, &store.inner);
        let failed: Vec<&str> = report
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .map(|r| r.key.as_deref().unwrap())
            .collect();
        assert_eq!(failed.len(), 5, "the failing batch's rows");
        assert!(
            report
                .rows
                .iter()
                .filter(|r| r.outcome == Outcome::Failed)
                .all(|r| r.issues[0].code == Code::StoreError)
        );
        assert!(
            report.rows.iter().any(|r| r.outcome == Outcome::Skipped),
            "later batches are not attempted"
        );
        // Rerun on a healthy store converges.
        store.fault = Fault::FailBatch(0);
        let again = imp.run(text.as_bytes(), None, &mut store).unwrap();
        assert_eq!(again.summary.failed, 0);
        assert_eq!(store.inner.len(T), 20);
        let third = imp.run(text.as_bytes(), None, &mut store).unwrap();
        assert_eq!(third.summary.unchanged, 20);
    }
}

#[test]
fn a_batch_error_with_transactions_rolls_everything_back() {
    let mut store = Faulty::new(Fault::FailBatch(3), true);
    let imp = importer(ErrorPolicy::RejectFile);
    let report = imp
        .run(users_file(20).as_bytes(), None, &mut store)
        .unwrap();
    assert!(store.inner.is_empty(T));
    assert_eq!(report.summary.added, 0);
    assert_report_matches_store(&report, &store.inner);
    assert!(!report.is_success());
}

#[test]
fn fewer_outcomes_than_ops_is_not_counted_as_applied() {
    let mut store = Faulty::new(Fault::ShortAnswer(2), false);
    let imp = importer(ErrorPolicy::SkipInvalid);
    let report = imp
        .run(users_file(12).as_bytes(), None, &mut store)
        .unwrap();
    assert_report_matches_store(&report, &store.inner);
    let failed: Vec<&user_import::RowReport> = report
        .rows
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].issues[0].message.contains("no outcome"));
}

#[test]
fn a_store_that_changes_a_user_between_plan_and_apply() {
    let mut store = InMemoryStore::new();
    let imp = importer(ErrorPolicy::SkipInvalid);
    imp.run(users_file(10).as_bytes(), None, &mut store)
        .unwrap();
    let edit = users_file(10)
        .replace("u03@example.com", "u03-new@example.com")
        .replace("u07@example.com", "u07-new@example.com");
    let plan = imp
        .plan(imp.validate(edit.as_bytes(), None), &mut store)
        .unwrap();
    store.touch(T, "u03", user_import::Field::LastName, "Edited elsewhere");
    store.insert(
        T,
        user_import::User::builder()
            .set(user_import::Field::UserId, "u07")
            .set(user_import::Field::Email, "u07@example.com")
            .build(),
    );
    let report = imp.apply(&plan, &mut store).unwrap();
    let u03 = report
        .rows
        .iter()
        .find(|r| r.key.as_deref() == Some("u03"))
        .unwrap();
    assert_eq!(
        (u03.outcome, u03.issues[0].code),
        (Outcome::Failed, Code::Conflict)
    );
    // Nothing was overwritten.
    assert_eq!(
        store.get(T, "u03").unwrap().user.email(),
        Some("u03@example.com")
    );
    // Planning again picks up the change and converges.
    let again = imp.run(edit.as_bytes(), None, &mut store).unwrap();
    assert_eq!((again.summary.updated, again.summary.failed), (2, 0));
}
