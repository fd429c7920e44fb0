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

/// Every user of `tenant` as one line: last name, email, manager, enabled
/// and roles, by user id.
async fn records(url: &str, tenant: &str) -> BTreeMap<String, String> {
    let mut store = PgStore::connect(url).await.expect("connect");
    let users = store.scan(tenant, None, 1_000_000).await.expect("scan");
    users
        .iter()
        .map(|u| {
            let get = |f| u.user.get(f).unwrap_or("").to_owned();
            let mut roles: Vec<&str> = u.user.roles().collect();
            roles.sort_unstable();
            let line = [
                get(Field::LastName),
                get(Field::Email),
                get(Field::ReportsTo),
                get(Field::Enabled),
                roles.join("|"),
            ]
            .join(",");
            (u.user_id().to_owned(), line)
        })
        .collect()
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

/// An update of user `id`'s last name, planned at `version`.
fn rename(id: &str, version: u64, last: &str) -> Op {
    Op::Update {
        line: None,
        user_id: id.into(),
        version,
        changes: vec![Change::new(
            user_import::Attribute::Field(Field::LastName),
            Some("Person"),
            Some(last),
        )],
    }
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
            // Two batches: u3's is written first; u4's then fails.
            plan_importer.validate(
                b"userId,lastName,email\nu3,Mine,u3@example.com\nu4,Mine,u4@example.com\n",
                None,
            ),
            &mut store,
        )
        .await
        .expect("plan");
    let first: Vec<Option<&str>> = plan.ops().iter().map(|op| op.user_id()).collect();
    assert_eq!(first, [Some("u3"), Some("u4")], "u3's batch comes first");
    let v4 = version(&mut other, "u4").await;
    assert!(other.begin().await.expect("begin"));
    other
        .apply("t", &[rename("u4", v4, "Other")])
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
    assert!(
        report.render_text().contains("could not serialize access"),
        "{}",
        report.render_text()
    );
    let now = directory(&url, "t").await;
    assert_eq!(now["u4"], "Other");
    assert_eq!(now["u3"], "Person", "nothing of the import stays");
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
    let expected = records(&reference, "t").await;

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
        let left = records(&url, "t").await;
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
            // Whole users only: no user without their roles.
            for (id, record) in &left {
                assert_eq!(Some(record), expected.get(id), "{id} half-written");
            }
        }
        // A re-run converges.
        let mut store = PgStore::connect(&url).await.expect("connect");
        let rerun = importer
            .run_async(file.as_bytes(), None, &mut store)
            .await
            .expect("re-run");
        assert!(rerun.is_success(), "{}", rerun.summary);
        assert_eq!(records(&url, "t").await, expected, "{policy:?}");
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

/// A small seeded generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// What a random batch does, before each store's own versions are filled in.
#[derive(Debug, Clone)]
enum Step {
    CreateRole(&'static str),
    /// User, email, roles.
    Create(usize, usize, &'static str),
    /// User, change, planned at the current version (or a stale one).
    Update(usize, Change, bool),
    /// User, at the current version (or a stale one).
    Delete(usize, bool),
}

/// A random batch: ids and emails from a small pool, so creates collide,
/// updates swap emails, ops name a user twice, and some versions are stale.
fn random_steps(rng: &mut Rng) -> Vec<Step> {
    const ROLES: [&str; 4] = ["A", "B", "C", "A|C"];
    let n = 2 + rng.below(14);
    (0..n)
        .map(|_| match rng.below(10) {
            0 => Step::CreateRole(["C", "D"][rng.below(2)]),
            1..=3 => Step::Create(rng.below(8), rng.below(8), ROLES[rng.below(4)]),
            4..=8 => {
                let field = user_import::Attribute::Field;
                let change = match rng.below(3) {
                    0 => Change::new(
                        field(Field::Email),
                        None,
                        Some(&format!("e{}@x.io", rng.below(8))),
                    ),
                    1 => Change::new(field(Field::LastName), None, Some(["L", "M"][rng.below(2)])),
                    _ => Change::new(field(Field::Roles), None, Some(ROLES[rng.below(4)])),
                };
                Step::Update(rng.below(8), change, rng.below(6) > 0)
            }
            _ => Step::Delete(rng.below(8), rng.below(4) > 0),
        })
        .collect()
}

/// The ops of `steps` against `store`'s current versions.
async fn ops_for<S: AsyncUserStore>(store: &mut S, tenant: &str, steps: &[Step]) -> Vec<Op> {
    let mut f = user_import::Fetch::new(tenant);
    f.user_ids = (0..8).map(|i| format!("u{i}")).collect();
    let versions: BTreeMap<String, u64> = match store.fetch(&f).await {
        Ok(users) => users
            .iter()
            .map(|u| (u.user_id().to_owned(), u.version))
            .collect(),
        Err(e) => panic!("fetch: {e}"),
    };
    let version = |i: usize, current: bool| {
        let v = versions.get(&format!("u{i}")).copied().unwrap_or(1);
        if current { v } else { v + 1_000_000 }
    };
    steps
        .iter()
        .map(|step| match step {
            Step::CreateRole(name) => Op::CreateRole {
                name: (*name).into(),
            },
            Step::Create(i, e, roles) => Op::Create {
                line: None,
                user: user_import::User::builder()
                    .set(Field::UserId, &format!("u{i}"))
                    .set(Field::Email, &format!("e{e}@x.io"))
                    .set(Field::LastName, "New")
                    .set(Field::Roles, roles)
                    .build(),
                locked: Vec::new(),
            },
            Step::Update(i, change, current) => Op::Update {
                line: None,
                user_id: format!("u{i}"),
                version: version(*i, *current),
                changes: vec![change.clone()],
            },
            Step::Delete(i, current) => Op::Delete {
                line: None,
                user_id: format!("u{i}"),
                version: version(*i, *current),
            },
        })
        .collect()
}

/// The kind of each outcome (the stores word their failures differently).
fn kinds(outcomes: &[OpOutcome]) -> Vec<&'static str> {
    outcomes
        .iter()
        .map(|o| match o {
            OpOutcome::Applied => "applied",
            OpOutcome::Conflict => "conflict",
            OpOutcome::NotFound => "not_found",
            OpOutcome::AlreadyExists => "already_exists",
            OpOutcome::Failed(_) => "failed",
            _ => "other",
        })
        .collect()
}

type State = Vec<(String, String, String, String)>;

/// Every user of `tenant` as (id, email, last name, roles sorted).
async fn state<S: AsyncUserStore>(store: &mut S, tenant: &str) -> State {
    let users = match store.scan(tenant, None, 100).await {
        Ok(users) => users,
        Err(e) => panic!("scan: {e}"),
    };
    users
        .iter()
        .map(|u| {
            let mut roles: Vec<&str> = u.user.roles().collect();
            roles.sort_unstable();
            (
                u.user_id().to_owned(),
                u.user.email().unwrap_or("").to_owned(),
                u.user.get(Field::LastName).unwrap_or("").to_owned(),
                roles.join("|"),
            )
        })
        .collect()
}

/// Random batches give on PostgreSQL, set-based, the outcomes and the
/// directory that the in-memory store gives applying each op in order: the
/// fast path and its fallback are held to the one-op-at-a-time definition.
#[tokio::test]
async fn set_based_batches_give_what_one_op_at_a_time_gives() {
    let url = pg::fresh_database("random_batches").await;
    let mut pg = PgStore::connect(&url).await.expect("connect");
    let mut rng = Rng(0x5eed);
    let mut fell_back = 0;
    let email = |e: usize| {
        Change::new(
            user_import::Attribute::Field(Field::Email),
            None,
            Some(&format!("e{e}@x.io")),
        )
    };
    // First, by hand: u1 takes u0's email before u0 gives it up, which op
    // by op fails (PostgreSQL, writing u0's row first, would let it pass).
    let mut fixed = vec![vec![
        Step::Update(1, email(0), true),
        Step::Update(0, email(7), true),
    ]];
    for case in 0..80 {
        let tenant = format!("case{case}");
        let mut mem = user_import::memory::InMemoryStore::new();
        // Roles are checked in both.
        mem.set_catalog(
            &tenant,
            user_import::Catalog::new().roles(Vec::<String>::new()),
        );
        // The same start: roles A and B, users u0..u5.
        let mut start = vec![Step::CreateRole("A"), Step::CreateRole("B")];
        start.extend((0..6).map(|i| Step::Create(i, i, ["A", "B", "A|B"][i % 3])));
        for _ in 0..3 {
            let steps = if !start.is_empty() {
                std::mem::take(&mut start)
            } else if let Some(steps) = fixed.pop() {
                steps
            } else {
                random_steps(&mut rng)
            };
            let on_mem = ops_for(&mut mem, &tenant, &steps).await;
            let on_pg = ops_for(&mut pg, &tenant, &steps).await;
            let want = match AsyncUserStore::apply(&mut mem, &tenant, &on_mem).await {
                Ok(outcomes) => outcomes,
                Err(e) => match e {},
            };
            let got = pg.apply(&tenant, &on_pg).await.expect("apply");
            if want.iter().any(|o| !o.is_applied()) {
                fell_back += 1;
            }
            assert_eq!(kinds(&got), kinds(&want), "case {case}: {steps:?}");
            assert_eq!(
                state(&mut pg, &tenant).await,
                state(&mut mem, &tenant).await,
                "case {case}: {steps:?}"
            );
        }
    }
    // Both paths ran: batches where every op applied, and batches that went
    // op by op.
    assert!(fell_back > 20, "{fell_back} batches with a refused op");
}

/// Versions come from a sequence: a user deleted and created again gets a
/// version no earlier user had, and versions taken by a rolled-back
/// transaction are not handed out again.
#[tokio::test]
async fn versions_are_never_reused() {
    let url = pg::fresh_database("versions").await;
    seed(&url, "t", 3).await;
    let mut store = PgStore::connect(&url).await.expect("connect");
    let first = version(&mut store, "u0").await;
    let delete = Op::Delete {
        line: None,
        user_id: "u0".into(),
        version: first,
    };
    let again = Op::Create {
        line: None,
        user: user_import::User::builder()
            .set(Field::UserId, "u0")
            .set(Field::Email, "u0@example.com")
            .build(),
        locked: Vec::new(),
    };
    let done = store.apply("t", &[delete, again]).await.expect("apply");
    assert_eq!(done, [OpOutcome::Applied, OpOutcome::Applied]);
    let second = version(&mut store, "u0").await;
    assert!(second > first, "{second} after {first}");

    // Taken inside a transaction that rolls back.
    assert!(store.begin().await.expect("begin"));
    let v1 = version(&mut store, "u1").await;
    let done = store.apply("t", &[rename("u1", v1, "Gone")]).await;
    assert_eq!(done.expect("apply"), [OpOutcome::Applied]);
    let rolled_back = version(&mut store, "u1").await;
    store.rollback().await.expect("rollback");
    assert_eq!(version(&mut store, "u1").await, v1);
    let done = store.apply("t", &[rename("u1", v1, "Kept")]).await;
    assert_eq!(done.expect("apply"), [OpOutcome::Applied]);
    let after = version(&mut store, "u1").await;
    assert!(after > rolled_back, "{after} after {rolled_back}");
}

/// A write waits for another transaction's lock on a row only up to the
/// lock timeout, then fails; nothing of its batch stays.
#[tokio::test]
async fn a_write_waits_for_a_row_lock_up_to_the_lock_timeout() {
    let url = pg::fresh_database("lock_timeout").await;
    seed(&url, "t", 3).await;
    let mut other = PgStore::connect(&url).await.expect("connect");
    let mut store = PgStore::connect(&url).await.expect("connect");
    store
        .set_lock_timeout(Duration::from_millis(200))
        .await
        .expect("lock timeout");
    let (v1, v2) = (
        version(&mut store, "u1").await,
        version(&mut store, "u2").await,
    );
    assert!(other.begin().await.expect("begin"));
    other
        .apply("t", &[rename("u1", v1, "Other")])
        .await
        .expect("apply");
    let err = store
        .apply("t", &[rename("u2", v2, "Mine"), rename("u1", v1, "Mine")])
        .await
        .expect_err("the lock timeout");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("55P03"),
        "{err}"
    );
    other.rollback().await.expect("rollback");
    let now = directory(&url, "t").await;
    assert_eq!(
        (now["u1"].as_str(), now["u2"].as_str()),
        ("Person", "Person")
    );
}
