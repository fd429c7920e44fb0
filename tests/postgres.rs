//! The PostgreSQL adapter of the `import` example
//! (`examples/import/pg_store.rs`) against a real server: the async
//! conformance kit, concurrency, serialization failures, killed connections
//! and tenants. See `tests/common/pg.rs` for where the server comes from.
#![cfg(feature = "testkit")]

// Not every helper of the adapter is used here.
#[allow(dead_code)]
#[path = "../examples/import/pg_store.rs"]
mod pg_store;

mod common;
#[allow(dead_code)]
#[path = "common/pg.rs"]
mod pg;

use pg_store::PgStore;
use user_import::testkit::{self, SCENARIOS};

#[tokio::test]
async fn the_adapter_passes_the_async_conformance_kit() {
    for &name in SCENARIOS {
        let url = pg::fresh_database(name).await;
        let mut store = PgStore::connect(&url).await.expect("connect");
        testkit::run_scenario(name, &mut store)
            .await
            .unwrap_or_else(|f| panic!("{f}"));
    }
}

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use pg_store::Isolation;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use user_import::{
    AsyncUserStore, Change, ErrorPolicy, Field, Importer, Op, OpOutcome, Outcome, Profile, Report,
};

/// An importer for `tenant` with `policy` and batches of `batch` ops.
fn importer(tenant: &str, policy: ErrorPolicy, batch: usize) -> Importer {
    let mut profile = Profile::default();
    profile.on_error = policy;
    profile.batch_size = batch;
    profile.unknown_roles = user_import::RolePolicy::Create;
    Importer::with_profile(tenant, profile)
}

/// A file setting the last name of users `u{from}`..`u{to}` to `last`.
fn last_names(from: usize, to: usize, last: &str) -> String {
    let mut text = String::from("userId,lastName,email\n");
    for i in from..to {
        text.push_str(&format!("u{i},{last},u{i}@example.com\n"));
    }
    text
}

/// A store on `url` whose connection is named `name` (to find its backend).
async fn named(url: &str, name: &str) -> PgStore {
    let options = PgConnectOptions::from_str(url)
        .expect("a URL")
        .application_name(name);
    PgStore::connect_with(options).await.expect("connect")
}

/// The last name of every user of `tenant`, by user id.
async fn directory(url: &str, tenant: &str) -> BTreeMap<String, String> {
    let mut store = PgStore::connect(url).await.expect("connect");
    let mut all = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .scan(tenant, after.as_deref(), 500)
            .await
            .expect("scan");
        for u in &page {
            let last = u.user.get(Field::LastName).unwrap_or("").to_owned();
            all.insert(u.user_id().to_owned(), last);
        }
        match page.last() {
            Some(u) if page.len() == 500 => after = Some(user_import::normalize(u.user_id())),
            _ => return all,
        }
    }
}

/// Seeds `tenant` with the generated users `u0`..`u{n}`.
async fn seed(url: &str, tenant: &str, n: usize) {
    let mut store = PgStore::connect(url).await.expect("connect");
    let report = importer(tenant, ErrorPolicy::RejectFile, 1000)
        .run_async(pg::generated(0, n, 0, 0).as_bytes(), None, &mut store)
        .await
        .expect("seed");
    assert!(report.is_success(), "{}", report.render_text());
}

/// Waits until a backend named `name` waits for a lock (or 10 s pass).
async fn until_waiting(admin: &mut PgConnection, name: &str) -> bool {
    for _ in 0..1000 {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE application_name = $1 AND wait_event_type = 'Lock')",
        )
        .bind(name)
        .fetch_one(&mut *admin)
        .await
        .expect("pg_stat_activity");
        if waiting {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// The users each report says it updated.
fn updated(report: &Report) -> Vec<String> {
    report
        .rows
        .iter()
        .filter(|r| r.outcome == Outcome::Updated)
        .filter_map(|r| r.key.as_deref().map(str::to_owned))
        .collect()
}

/// The version of user `id` of tenant `t`.
async fn version(store: &mut PgStore, id: &str) -> u64 {
    let mut f = user_import::Fetch::new("t");
    f.user_ids.push(id.into());
    store.fetch(&f).await.expect("fetch")[0].version
}

/// Two imports at once, planned against the same directory, on users that
/// overlap: each user ends with the value of the import that says it
/// updated it, no user is said updated by both, and the other import's row
/// of that user is a conflict. Under all or nothing, one import applies
/// whole and the other not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_imports_at_once_lose_no_update() {
    for policy in [ErrorPolicy::SkipInvalid, ErrorPolicy::RejectFile] {
        let url = pg::fresh_database(&format!("two_{policy:?}")).await;
        seed(&url, "t", 300).await;
        let before = directory(&url, "t").await;
        let importer = importer("t", policy, 50);
        let (mut a, mut b) = (
            PgStore::connect(&url).await.expect("connect"),
            PgStore::connect(&url).await.expect("connect"),
        );
        let file_a = last_names(0, 200, "A");
        let file_b = last_names(100, 300, "B");
        let plan_a = importer
            .plan_async(importer.validate(file_a.as_bytes(), None), &mut a)
            .await
            .expect("plan a");
        let plan_b = importer
            .plan_async(importer.validate(file_b.as_bytes(), None), &mut b)
            .await
            .expect("plan b");
        let (ra, rb) = tokio::join!(
            importer.apply_async(&plan_a, &mut a),
            importer.apply_async(&plan_b, &mut b)
        );
        let (ra, rb) = (ra.expect("apply a"), rb.expect("apply b"));
        let after = directory(&url, "t").await;
        let (ua, ub) = (updated(&ra), updated(&rb));
        for id in &ua {
            assert!(!ub.contains(id), "{id} said updated by both imports");
            assert_eq!(after[id], "A", "{id}");
        }
        for id in &ub {
            assert_eq!(after[id], "B", "{id}");
        }
        for (id, last) in &after {
            if !ua.contains(id) && !ub.contains(id) {
                assert_eq!(last, &before[id], "{id} changed by no import");
            }
        }
        // Every row of the overlap is applied by one import and a conflict
        // (or, under all or nothing, rolled back) in the other.
        assert_eq!(
            ua.len() + ub.len(),
            match policy {
                ErrorPolicy::SkipInvalid => 300,
                _ => 200,
            },
            "{policy:?}: a {} b {}",
            ra.summary,
            rb.summary
        );
        if policy == ErrorPolicy::RejectFile {
            assert!(
                ra.is_success() != rb.is_success(),
                "one import applies whole"
            );
        }
    }
}

/// Under SERIALIZABLE, a batch whose rows another transaction changed is a
/// serialization failure: in a transaction of its own it is run again, and
/// the changed user is then a conflict; inside an import's transaction it
/// ends the import, and nothing of it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialization_failure_is_retried_or_reported_never_half_applied() {
    let url = pg::fresh_database("serializable").await;
    seed(&url, "t", 10).await;
    let mut admin = PgConnection::connect(&url).await.expect("admin");
    let mut other = PgStore::connect(&url).await.expect("connect");
    let rename = |id: &str, version: u64, last: &str| Op::Update {
        line: None,
        user_id: id.into(),
        version,
        changes: vec![Change::new(
            user_import::Attribute::Field(Field::LastName),
            Some("Person"),
            Some(last),
        )],
    };

    // 1. A batch alone: retried, then u1 is a conflict and u2 applied.
    let mut store = named(&url, "retried").await;
    store.set_isolation(Isolation::Serializable);
    let (v1, v2) = (
        version(&mut store, "u1").await,
        version(&mut store, "u2").await,
    );
    assert!(other.begin().await.expect("begin"));
    let done = other.apply("t", &[rename("u1", v1, "Other")]).await;
    assert_eq!(done.expect("apply"), vec![OpOutcome::Applied]);
    let batch = tokio::spawn(async move {
        let outcomes = store
            .apply("t", &[rename("u1", v1, "Mine"), rename("u2", v2, "Mine")])
            .await;
        (outcomes, store.retried())
    });
    assert!(
        until_waiting(&mut admin, "retried").await,
        "the batch waits"
    );
    other.commit().await.expect("commit");
    let (outcomes, retried) = batch.await.expect("the batch");
    assert_eq!(
        outcomes.expect("retried, not an error"),
        vec![OpOutcome::Conflict, OpOutcome::Applied]
    );
    assert!(retried >= 1, "the batch was run again");
    let now = directory(&url, "t").await;
    assert_eq!((now["u1"].as_str(), now["u2"].as_str()), ("Other", "Mine"));

    // 2. Inside an import's transaction: the import ends, rolled back whole.
    let mut store = named(&url, "in-import").await;
    store.set_isolation(Isolation::Serializable);
    let plan_importer = importer("t", ErrorPolicy::RejectFile, 1);
    let plan = plan_importer
        .plan_async(
            plan_importer.validate(last_names(3, 5, "Mine").as_bytes(), None),
            &mut store,
        )
        .await
        .expect("plan");
    let v3 = version(&mut other, "u3").await;
    assert!(other.begin().await.expect("begin"));
    other
        .apply("t", &[rename("u3", v3, "Other")])
        .await
        .expect("apply");
    let import = tokio::spawn(async move { plan_importer.apply_async(&plan, &mut store).await });
    assert!(
        until_waiting(&mut admin, "in-import").await,
        "the import waits"
    );
    other.commit().await.expect("commit");
    let report = import.await.expect("the import").expect("a report");
    assert!(!report.is_success(), "{}", report.render_text());
    assert_eq!(report.summary.updated, 0, "{}", report.render_text());
    let now = directory(&url, "t").await;
    assert_eq!(now["u3"], "Other");
    assert_eq!(now["u4"], "Person", "nothing of the import stays");
}

/// A connection killed mid-import (its backend terminated from a second
/// connection): under all or nothing nothing stays; under skip-invalid the
/// batches before stay, and a re-run converges to the directory an
/// uninterrupted import gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_leaves_nothing_half_written_and_a_rerun_converges() {
    let file = pg::generated(0, 6_000, 0, 0);
    // The uninterrupted result, for reference.
    let reference = pg::fresh_database("kill_reference").await;
    let mut store = PgStore::connect(&reference).await.expect("connect");
    let whole = importer("t", ErrorPolicy::SkipInvalid, 200)
        .run_async(file.as_bytes(), None, &mut store)
        .await
        .expect("import");
    assert!(whole.is_success());
    let expected = directory(&reference, "t").await;

    for policy in [ErrorPolicy::RejectFile, ErrorPolicy::SkipInvalid] {
        let url = pg::fresh_database(&format!("kill_{policy:?}")).await;
        let mut admin = PgConnection::connect(&url).await.expect("admin");
        let name = format!("killed-{policy:?}");
        let mut store = named(&url, &name).await;
        let importer = importer("t", policy, 200);
        let bytes = file.clone().into_bytes();
        let import = tokio::spawn({
            let importer = importer.clone();
            async move { importer.run_async(&bytes, None, &mut store).await }
        });
        // Kill the backend once it has written a few batches.
        let mut killed = false;
        for _ in 0..2000 {
            let pid: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1
                    AND xact_start IS NOT NULL AND query LIKE '%INSERT INTO user_roles%'",
            )
            .bind(&name)
            .fetch_optional(&mut admin)
            .await
            .expect("pg_stat_activity");
            if let Some(pid) = pid {
                tokio::time::sleep(Duration::from_millis(20)).await;
                killed = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                    .bind(pid)
                    .fetch_one(&mut admin)
                    .await
                    .expect("terminate");
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(
            killed,
            "{policy:?}: the import's backend was found and killed"
        );
        let report = import.await.expect("the import");
        if let Ok(report) = &report {
            assert!(
                !report.is_success(),
                "{policy:?}: a killed import is not a success"
            );
        }
        let left = directory(&url, "t").await;
        if policy == ErrorPolicy::RejectFile {
            assert!(
                left.is_empty(),
                "all or nothing: {} users stayed",
                left.len()
            );
        } else {
            assert!(
                left.len() < expected.len(),
                "{policy:?}: killed before the end"
            );
        }
        // A re-run converges.
        let mut store = PgStore::connect(&url).await.expect("connect");
        let rerun = importer
            .run_async(file.as_bytes(), None, &mut store)
            .await
            .expect("re-run");
        assert!(rerun.is_success(), "{}", rerun.summary);
        assert_eq!(directory(&url, "t").await, expected, "{policy:?}");
    }
}

/// One tenant never sees another's users: the same user ids in two tenants
/// are two users, and a mirror import of one tenant leaves the other alone.
#[tokio::test]
async fn one_tenant_never_sees_another() {
    let url = pg::fresh_database("tenants").await;
    seed(&url, "a", 20).await;
    seed(&url, "b", 20).await;
    let mut store = PgStore::connect(&url).await.expect("connect");
    let mut profile = Profile::default();
    profile.mode = user_import::Mode::Mirror;
    profile.guards.max_deletes = None;
    profile.guards.max_delete_share = None;
    let report = Importer::with_profile("a", profile)
        .run_async(last_names(1, 2, "Kept").as_bytes(), None, &mut store)
        .await
        .expect("mirror");
    assert!(report.is_success(), "{}", report.render_text());
    // Mirror mode disables the users of `a` the file does not name.
    assert_eq!(report.summary.updated, 20, "{}", report.render_text());
    let enabled = |users: Vec<user_import::ExistingUser>| {
        users
            .iter()
            .filter(|u| u.user.get(Field::Enabled) == Some("true"))
            .count()
    };
    let a = store.scan("a", None, 100).await.expect("scan a");
    let b = store.scan("b", None, 100).await.expect("scan b");
    assert_eq!((a.len(), enabled(a)), (20, 1));
    assert_eq!((b.len(), enabled(b)), (20, 20));
    let b = directory(&url, "b").await;
    assert!(b.values().all(|l| l == "Person"), "{b:?}");
    assert_eq!(store.count("b").await.expect("count"), 20);
}
