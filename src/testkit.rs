//! The conformance kit for adapter authors (feature `testkit`): scenarios
//! that check a [`UserStore`] or [`AsyncUserStore`] keeps the trait's
//! contract. The crate runs it against [`crate::memory::InMemoryStore`]; run it
//! against yours in a few lines:
//!
//! ```
//! use user_import::memory::InMemoryStore;
//! use user_import::testkit;
//!
//! // Each scenario gets a fresh, empty store from the closure.
//! testkit::conformance(InMemoryStore::new).unwrap();
//! // An async store: run `testkit::conformance_async` on your runtime; here
//! // the kit's own `block_on` does for a store whose futures are ready at once.
//! testkit::block_on(testkit::conformance_async(InMemoryStore::new)).unwrap();
//! ```
//!
//! Scenarios seed their data through [`UserStore::apply`] (role and user
//! creations), use tenants named `testkit-a` and `testkit-b`, and expect the
//! store to start empty.

pub mod strategies;

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::apply::RunOptions;
use crate::catalog::Catalog;
use crate::import::Importer;
use crate::matching::normalize;
use crate::profile::{ErrorPolicy, Profile, RolePolicy};
use crate::record::User;
use crate::report::Outcome;
use crate::schema::Field;
use crate::store::{
    AsyncUserStore, Attribute, Change, ExistingUser, Fetch, Op, OpOutcome, UserStore,
};

/// A scenario that found the store breaking the contract.
///
/// ```
/// use user_import::testkit;
/// use user_import::memory::InMemoryStore;
/// let f = testkit::block_on(testkit::run_scenario("nope", &mut InMemoryStore::new())).unwrap_err();
/// assert_eq!(f.to_string(), "conformance scenario nope: no such scenario");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The scenario's name.
    pub scenario: &'static str,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conformance scenario {}: {}",
            self.scenario, self.message
        )
    }
}

impl std::error::Error for Failure {}

/// Runs a future to completion on the current thread (a minimal executor
/// for tests: it parks the thread until woken).
///
/// ```
/// assert_eq!(user_import::testkit::block_on(async { 1 + 1 }), 2);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// A sync [`UserStore`] seen as an [`AsyncUserStore`] (its futures are ready
/// at once), so one set of scenarios serves both.
///
/// ```
/// use user_import::memory::InMemoryStore;
/// use user_import::{AsyncUserStore, testkit::{Blocking, block_on}};
/// let mut s = Blocking(InMemoryStore::new());
/// assert_eq!(block_on(s.count("t")).unwrap(), 0);
/// ```
#[derive(Debug)]
pub struct Blocking<S>(pub S);

impl<S: UserStore + Send> AsyncUserStore for Blocking<S> {
    type Error = S::Error;

    fn catalog(&mut self, tenant: &str) -> impl Future<Output = Result<Catalog, S::Error>> + Send {
        std::future::ready(self.0.catalog(tenant))
    }

    fn fetch(
        &mut self,
        request: &Fetch,
    ) -> impl Future<Output = Result<Vec<ExistingUser>, S::Error>> + Send {
        std::future::ready(self.0.fetch(request))
    }

    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ExistingUser>, S::Error>> + Send {
        std::future::ready(self.0.scan(tenant, after, limit))
    }

    fn count(&mut self, tenant: &str) -> impl Future<Output = Result<u64, S::Error>> + Send {
        std::future::ready(self.0.count(tenant))
    }

    fn apply(
        &mut self,
        tenant: &str,
        ops: &[Op],
    ) -> impl Future<Output = Result<Vec<OpOutcome>, S::Error>> + Send {
        std::future::ready(self.0.apply(tenant, ops))
    }

    fn begin(&mut self) -> impl Future<Output = Result<bool, S::Error>> + Send {
        std::future::ready(self.0.begin())
    }

    fn commit(&mut self) -> impl Future<Output = Result<(), S::Error>> + Send {
        std::future::ready(self.0.commit())
    }

    fn rollback(&mut self) -> impl Future<Output = Result<(), S::Error>> + Send {
        std::future::ready(self.0.rollback())
    }
}

/// Runs every scenario against fresh sync stores from `make`.
///
/// # Errors
///
/// The first [`Failure`].
///
/// ```
/// user_import::testkit::conformance(user_import::memory::InMemoryStore::new).unwrap();
/// ```
pub fn conformance<S: UserStore + Send>(mut make: impl FnMut() -> S) -> Result<(), Failure> {
    block_on(conformance_async(move || Blocking(make())))
}

/// The scenarios, by name.
///
/// ```
/// assert!(user_import::testkit::SCENARIOS.contains(&"stale_version_gives_conflict"));
/// ```
pub const SCENARIOS: &[&str] = &[
    "fetch_present_and_absent",
    "case_insensitive_matching",
    "tenant_isolation",
    "batches_larger_than_one_chunk",
    "scan_pages_in_order",
    "stale_version_gives_conflict",
    "delete_of_a_missing_user",
    "create_of_a_taken_user",
    "failed_apply_batch",
    "export_then_import_is_a_no_op",
    "undo_puts_the_directory_back",
];

/// Runs every scenario against fresh async stores from `make`.
///
/// # Errors
///
/// The first [`Failure`].
///
/// ```
/// use user_import::testkit;
/// use user_import::memory::InMemoryStore;
/// testkit::block_on(testkit::conformance_async(InMemoryStore::new)).unwrap();
/// ```
pub async fn conformance_async<S: AsyncUserStore>(
    mut make: impl FnMut() -> S,
) -> Result<(), Failure> {
    for &name in SCENARIOS {
        let mut store = make();
        run_scenario(name, &mut store).await?;
    }
    Ok(())
}

/// Runs one scenario (see [`SCENARIOS`]) against `store`.
///
/// # Errors
///
/// A [`Failure`] naming what broke the contract; an unknown name is a failure too.
///
/// ```
/// use user_import::testkit;
/// use user_import::memory::InMemoryStore;
/// testkit::block_on(testkit::run_scenario("tenant_isolation", &mut InMemoryStore::new())).unwrap();
/// ```
pub async fn run_scenario<S: AsyncUserStore>(
    name: &'static str,
    store: &mut S,
) -> Result<(), Failure> {
    let mut c = Ctx { name, store };
    match name {
        "fetch_present_and_absent" => c.fetch_present_and_absent().await,
        "case_insensitive_matching" => c.case_insensitive_matching().await,
        "tenant_isolation" => c.tenant_isolation().await,
        "batches_larger_than_one_chunk" => c.batches_larger_than_one_chunk().await,
        "scan_pages_in_order" => c.scan_pages_in_order().await,
        "stale_version_gives_conflict" => c.stale_version_gives_conflict().await,
        "delete_of_a_missing_user" => c.delete_of_a_missing_user().await,
        "create_of_a_taken_user" => c.create_of_a_taken_user().await,
        "failed_apply_batch" => c.failed_apply_batch().await,
        "export_then_import_is_a_no_op" => c.export_then_import_is_a_no_op().await,
        "undo_puts_the_directory_back" => c.undo_puts_the_directory_back().await,
        _ => Err(Failure {
            scenario: name,
            message: "no such scenario".into(),
        }),
    }
}

const A: &str = "testkit-a";
const B: &str = "testkit-b";

/// A user for the scenarios.
fn person(id: &str) -> User {
    User::builder()
        .set(Field::UserId, id)
        .set(Field::Email, &format!("{}@example.com", id.to_lowercase()))
        .set(Field::FirstName, "Test")
        .set(Field::LastName, id)
        .set(Field::Enabled, "true")
        .set(Field::TaskNotification, "Email")
        .build()
}

struct Ctx<'s, S> {
    name: &'static str,
    store: &'s mut S,
}

impl<S: AsyncUserStore> Ctx<'_, S> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, Failure> {
        Err(Failure {
            scenario: self.name,
            message: message.into(),
        })
    }

    fn check(&self, ok: bool, message: impl FnOnce() -> String) -> Result<(), Failure> {
        if ok { Ok(()) } else { self.fail(message()) }
    }

    async fn apply(&mut self, tenant: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, Failure> {
        match self.store.apply(tenant, ops).await {
            Ok(o) => {
                self.check(o.len() == ops.len(), || {
                    format!("apply returned {} outcomes for {} ops", o.len(), ops.len())
                })?;
                Ok(o)
            }
            Err(e) => self.fail(format!("apply failed: {e}")),
        }
    }

    async fn seed(&mut self, tenant: &str, ids: &[&str]) -> Result<(), Failure> {
        let ops: Vec<Op> = ids
            .iter()
            .map(|id| Op::Create {
                line: None,
                user: person(id),
                locked: Vec::new(),
            })
            .collect();
        let out = self.apply(tenant, &ops).await?;
        self.check(out.iter().all(OpOutcome::is_applied), || {
            format!("seeding users failed: {out:?}")
        })
    }

    async fn fetch(&mut self, f: &Fetch) -> Result<Vec<ExistingUser>, Failure> {
        match self.store.fetch(f).await {
            Ok(u) => Ok(u),
            Err(e) => self.fail(format!("fetch failed: {e}")),
        }
    }

    async fn fetch_ids(
        &mut self,
        tenant: &str,
        ids: &[&str],
        emails: &[&str],
        managers: &[&str],
    ) -> Result<Vec<String>, Failure> {
        let mut f = Fetch::new(tenant);
        f.user_ids = ids.iter().map(|s| normalize(s)).collect();
        f.emails = emails.iter().map(|s| normalize(s)).collect();
        f.managers = managers.iter().map(|s| normalize(s)).collect();
        let users = self.fetch(&f).await?;
        let mut got: Vec<String> = users.iter().map(|u| normalize(u.user_id())).collect();
        got.sort();
        let before = got.len();
        got.dedup();
        self.check(got.len() == before, || "fetch returned a user twice".into())?;
        Ok(got)
    }

    async fn fetch_present_and_absent(&mut self) -> Result<(), Failure> {
        self.seed(A, &["alice", "bob", "carol"]).await?;
        let got = self.fetch_ids(A, &["alice", "nobody"], &[], &[]).await?;
        self.check(got == ["alice"], || {
            format!("fetch by id gave {got:?}, expected [alice]")
        })?;
        let got = self
            .fetch_ids(A, &[], &["bob@example.com", "ghost@example.com"], &[])
            .await?;
        self.check(got == ["bob"], || {
            format!("fetch by email gave {got:?}, expected [bob]")
        })?;
        let got = self
            .fetch_ids(A, &["alice"], &["bob@example.com"], &[])
            .await?;
        self.check(got == ["alice", "bob"], || {
            format!("fetch by id or email gave {got:?}")
        })?;
        // A user named by id and by email, beside one named by email only.
        let got = self
            .fetch_ids(
                A,
                &["alice"],
                &["alice@example.com", "bob@example.com"],
                &[],
            )
            .await?;
        self.check(got == ["alice", "bob"], || {
            format!("fetch of alice by id and email, and bob by email, gave {got:?}")
        })?;
        // A list may name a value twice; each user comes once.
        let got = self
            .fetch_ids(
                A,
                &["alice", "bob", "Alice"],
                &["bob@example.com", "bob@example.com"],
                &[],
            )
            .await?;
        self.check(got == ["alice", "bob"], || {
            format!("fetch naming alice and bob's email twice gave {got:?}")
        })?;
        let got = self.fetch_ids(A, &[], &[], &[]).await?;
        self.check(got.is_empty(), || format!("an empty fetch gave {got:?}"))?;
        // Reports of a manager.
        let set = Op::Update {
            line: None,
            user_id: "bob".into(),
            version: self.version(A, "bob").await?,
            changes: vec![Change::new(
                Attribute::Field(Field::ReportsTo),
                None,
                Some("alice"),
            )],
        };
        let out = self.apply(A, &[set]).await?;
        self.check(out[0].is_applied(), || {
            format!("setting reportsTo gave {:?}", out[0])
        })?;
        let got = self.fetch_ids(A, &[], &[], &["ALICE"]).await?;
        self.check(got == ["bob"], || {
            format!("fetch of alice's reports gave {got:?}, expected [bob]")
        })
    }

    async fn version(&mut self, tenant: &str, id: &str) -> Result<u64, Failure> {
        let mut f = Fetch::new(tenant);
        f.user_ids.push(normalize(id));
        let users = self.fetch(&f).await?;
        match users.first() {
            Some(u) => Ok(u.version),
            None => self.fail(format!("user {id} not found")),
        }
    }

    async fn case_insensitive_matching(&mut self) -> Result<(), Failure> {
        self.seed(A, &["JDoe"]).await?;
        let got = self.fetch_ids(A, &["jdoe"], &[], &[]).await?;
        self.check(got == ["jdoe"], || {
            format!("fetch of 'jdoe' for user 'JDoe' gave {got:?}")
        })?;
        let got = self.fetch_ids(A, &[], &["JDOE@EXAMPLE.COM"], &[]).await?;
        self.check(got == ["jdoe"], || {
            format!("fetch by upper-case email gave {got:?}")
        })?;
        let mut f = Fetch::new(A);
        f.user_ids.push("jdoe".into());
        let users = self.fetch(&f).await?;
        self.check(users.first().map(|u| u.user_id()) == Some("JDoe"), || {
            "the user id must come back as stored ('JDoe')".into()
        })
    }

    async fn tenant_isolation(&mut self) -> Result<(), Failure> {
        self.seed(A, &["alice"]).await?;
        let got = self
            .fetch_ids(B, &["alice"], &["alice@example.com"], &[])
            .await?;
        self.check(got.is_empty(), || {
            format!("tenant {B} sees tenant {A}'s user: {got:?}")
        })?;
        let n = match self.store.count(B).await {
            Ok(n) => n,
            Err(e) => return self.fail(format!("count failed: {e}")),
        };
        self.check(n == 0, || format!("count of an empty tenant is {n}"))?;
        // The same user id may exist in both tenants.
        self.seed(B, &["alice"]).await
    }

    async fn batches_larger_than_one_chunk(&mut self) -> Result<(), Failure> {
        let profile = Profile {
            batch_size: 7,
            unknown_roles: RolePolicy::Create,
            ..Profile::default()
        };
        let importer = Importer::with_profile(A, profile);
        let mut file = String::from("userId,email,firstName,lastName,roles,reportsTo\n");
        for i in 0..50 {
            let manager = if i == 0 {
                String::new()
            } else {
                format!("u{:02}", i / 2)
            };
            file.push_str(&format!(
                "u{i:02},u{i:02}@example.com,User,N{i},Staff,{manager}\n"
            ));
        }
        let report = match importer.run_async(file.as_bytes(), None, self.store).await {
            Ok(r) => r,
            Err(e) => return self.fail(format!("import failed: {e}")),
        };
        self.check(
            report.summary.added == 50 && report.summary.roles_added == 1,
            || {
                format!(
                    "importing 50 users in batches of 7 gave: {}",
                    report.render_text()
                )
            },
        )?;
        let n = self.store.count(A).await.map_err(|e| Failure {
            scenario: self.name,
            message: e.to_string(),
        })?;
        self.check(n == 50, || format!("count after import is {n}"))?;
        let again = match importer.run_async(file.as_bytes(), None, self.store).await {
            Ok(r) => r,
            Err(e) => return self.fail(format!("re-import failed: {e}")),
        };
        self.check(again.summary.unchanged == 50, || {
            format!(
                "re-importing the same file changed something: {}",
                again.render_text()
            )
        })
    }

    async fn scan_pages_in_order(&mut self) -> Result<(), Failure> {
        self.seed(A, &["d", "B", "a", "C", "e"]).await?;
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..10 {
            let page = match self.store.scan(A, after.as_deref(), 2).await {
                Ok(p) => p,
                Err(e) => return self.fail(format!("scan failed: {e}")),
            };
            self.check(page.len() <= 2, || {
                format!("scan returned {} users for limit 2", page.len())
            })?;
            let done = page.len() < 2;
            for u in &page {
                seen.push(normalize(u.user_id()));
            }
            after = page.last().map(|u| normalize(u.user_id()));
            if done {
                break;
            }
        }
        self.check(seen == ["a", "b", "c", "d", "e"], || {
            format!("scan pages gave {seen:?}, expected a..e in order")
        })
    }

    async fn stale_version_gives_conflict(&mut self) -> Result<(), Failure> {
        self.seed(A, &["alice"]).await?;
        let v = self.version(A, "alice").await?;
        let update = |version, last: &str| Op::Update {
            line: None,
            user_id: "alice".into(),
            version,
            changes: vec![Change::new(
                Attribute::Field(Field::LastName),
                Some("alice"),
                Some(last),
            )],
        };
        let out = self.apply(A, &[update(v, "First")]).await?;
        self.check(out[0].is_applied(), || {
            format!("an update at the current version gave {:?}", out[0])
        })?;
        let v2 = self.version(A, "alice").await?;
        self.check(v2 != v, || {
            "an applied update must change the version".into()
        })?;
        let out = self.apply(A, &[update(v, "Second")]).await?;
        self.check(out[0] == OpOutcome::Conflict, || {
            format!(
                "an update at a stale version gave {:?}, expected Conflict",
                out[0]
            )
        })?;
        let out = self
            .apply(
                A,
                &[Op::Delete {
                    line: None,
                    user_id: "alice".into(),
                    version: v,
                }],
            )
            .await?;
        self.check(out[0] == OpOutcome::Conflict, || {
            format!(
                "a delete at a stale version gave {:?}, expected Conflict",
                out[0]
            )
        })?;
        let mut f = Fetch::new(A);
        f.user_ids.push("alice".into());
        let u = self.fetch(&f).await?;
        self.check(
            u.first().and_then(|u| u.user.get(Field::LastName)) == Some("First"),
            || "a conflicting update must not be applied".into(),
        )
    }

    async fn delete_of_a_missing_user(&mut self) -> Result<(), Failure> {
        let out = self
            .apply(
                A,
                &[Op::Delete {
                    line: None,
                    user_id: "ghost".into(),
                    version: 1,
                }],
            )
            .await?;
        self.check(out[0] == OpOutcome::NotFound, || {
            format!(
                "deleting a missing user gave {:?}, expected NotFound",
                out[0]
            )
        })
    }

    async fn create_of_a_taken_user(&mut self) -> Result<(), Failure> {
        self.seed(A, &["alice"]).await?;
        let same_id = Op::Create {
            line: None,
            user: person("ALICE"),
            locked: Vec::new(),
        };
        let same_email = Op::Create {
            line: None,
            user: person("other")
                .to_builder()
                .set(Field::Email, "Alice@Example.com")
                .build(),
            locked: Vec::new(),
        };
        let out = self.apply(A, &[same_id, same_email]).await?;
        self.check(
            out == [OpOutcome::AlreadyExists, OpOutcome::AlreadyExists],
            || {
                format!(
                    "creating a taken user id / email gave {out:?}, expected AlreadyExists twice"
                )
            },
        )
    }

    async fn failed_apply_batch(&mut self) -> Result<(), Failure> {
        self.seed(A, &["alice"]).await?;
        // One op of the batch fails; the others still get their own outcome.
        let ops = [
            Op::Create {
                line: None,
                user: person("bob"),
                locked: Vec::new(),
            },
            Op::Create {
                line: None,
                user: person("alice"),
                locked: Vec::new(),
            },
            Op::Create {
                line: None,
                user: person("carol"),
                locked: Vec::new(),
            },
        ];
        let out = self.apply(A, &ops).await?;
        self.check(
            out[0].is_applied() && out[1] == OpOutcome::AlreadyExists && out[2].is_applied(),
            || format!("a batch with one failing op gave {out:?}"),
        )?;
        // A store that first tries the batch as a whole and, on a failure,
        // again op by op must not hand out a version twice: the users it
        // kept have versions of their own.
        let mut f = Fetch::new(A);
        f.user_ids = ["alice", "bob", "carol"].map(normalize).to_vec();
        let users = self.fetch(&f).await?;
        let mut versions: Vec<u64> = users.iter().map(|u| u.version).collect();
        versions.sort_unstable();
        versions.dedup();
        self.check(versions.len() == 3, || {
            format!("after a batch that failed in part, versions repeat: {users:?}")
        })?;
        // All or nothing: a file whose apply fails half-way leaves nothing
        // behind when the store has transactions.
        let profile = Profile {
            on_error: ErrorPolicy::RejectFile,
            batch_size: 1,
            ..Profile::default()
        };
        let importer = Importer::with_profile(A, profile);
        let file = "userId,email\ndan,dan@example.com\nerin,erin@example.com\n";
        let plan = match importer
            .plan_async(importer.validate(file.as_bytes(), None), self.store)
            .await
        {
            Ok(p) => p,
            Err(e) => return self.fail(format!("planning failed: {e}")),
        };
        // Someone takes erin's email between planning and applying.
        let thief = Op::Create {
            line: None,
            user: person("thief")
                .to_builder()
                .set(Field::Email, "erin@example.com")
                .build(),
            locked: Vec::new(),
        };
        self.apply(A, &[thief]).await?;
        let transactional = match self.store.begin().await {
            Ok(t) => t,
            Err(e) => return self.fail(format!("begin failed: {e}")),
        };
        if transactional && let Err(e) = self.store.rollback().await {
            return self.fail(format!("rollback failed: {e}"));
        }
        let report = match importer.apply_async(&plan, self.store).await {
            Ok(r) => r,
            Err(e) => return self.fail(format!("apply failed: {e}")),
        };
        let erin = report
            .rows
            .iter()
            .find(|r| r.key.as_deref() == Some("erin"));
        self.check(erin.is_some_and(|r| r.outcome == Outcome::Failed), || {
            format!(
                "the create of a taken email must fail: {}",
                report.render_text()
            )
        })?;
        let dan = self.fetch_ids(A, &["dan"], &[], &[]).await?;
        let dan_reported = report
            .rows
            .iter()
            .find(|r| r.key.as_deref() == Some("dan"))
            .map(|r| r.outcome);
        if transactional {
            self.check(dan.is_empty() && dan_reported == Some(Outcome::Skipped), || {
                format!("a transactional store must roll back the whole file: dan is {dan:?}, reported {dan_reported:?}")
            })
        } else {
            // Without transactions the report must say exactly what was applied.
            self.check(
                dan.is_empty() == (dan_reported != Some(Outcome::Added)),
                || format!("the report says dan is {dan_reported:?} but the store has {dan:?}"),
            )
        }
    }

    async fn export_then_import_is_a_no_op(&mut self) -> Result<(), Failure> {
        let profile = Profile {
            unknown_roles: RolePolicy::Create,
            ..Profile::default()
        };
        let importer = Importer::with_profile(A, profile);
        let file = "userId,firstName,lastName,email,enabled,reportsTo,roles,taskNotification,permissions,sso\n\
                    boss,Bea,\"O'Neil, Jr.\",boss@example.com,true,,Admin|Manager,Email,\"Read, Write\",true\n\
                    emp,Eli,=1+2,emp@example.com,false,boss,Staff,OFF,,false\n";
        let first = match importer.run_async(file.as_bytes(), None, self.store).await {
            Ok(r) => r,
            Err(e) => return self.fail(format!("import failed: {e}")),
        };
        self.check(first.summary.added == 2, || {
            format!("import gave {}", first.render_text())
        })?;
        let mut out = Vec::new();
        if let Err(e) = importer.export_async(self.store, &mut out).await {
            return self.fail(format!("export failed: {e}"));
        }
        let again = match importer.run_async(&out, None, self.store).await {
            Ok(r) => r,
            Err(e) => return self.fail(format!("re-import of the export failed: {e}")),
        };
        self.check(
            again.summary.unchanged == 2 && again.summary.failed == 0,
            || {
                format!(
                    "importing the export changed something: {}\nexport was:\n{}",
                    again.render_text(),
                    String::from_utf8_lossy(&out)
                )
            },
        )
    }

    /// The tenant as an administrator sees it: every user's record, and
    /// the roles the catalog lists.
    async fn snapshot(&mut self) -> Result<(Vec<User>, Option<Vec<String>>), Failure> {
        let users = match self.store.scan(A, None, 1000).await {
            Ok(u) => u,
            Err(e) => return self.fail(format!("scan failed: {e}")),
        };
        let mut users: Vec<User> = users.into_iter().map(|u| u.user).collect();
        users.sort_by_key(|u| u.user_id().map(normalize));
        let mut roles = match self.store.catalog(A).await {
            Ok(c) => c.roles,
            Err(e) => return self.fail(format!("catalog failed: {e}")),
        };
        if let Some(r) = roles.as_mut() {
            r.sort_by_key(|r| normalize(r));
        }
        Ok((users, roles))
    }

    /// An import's undo (`RunOptions::undo`), applied, gives back exactly
    /// the users and roles before the import: the store gives whole
    /// records, new versions, and deletes a role no one holds.
    async fn undo_puts_the_directory_back(&mut self) -> Result<(), Failure> {
        let profile = Profile {
            unknown_roles: RolePolicy::Create,
            on_error: ErrorPolicy::SkipInvalid,
            ..Profile::default()
        };
        let importer = Importer::with_profile(A, profile);
        let seed = "userId,firstName,lastName,email,reportsTo,roles\n\
                    boss,Bea,Boss,boss@example.com,,Admin\n\
                    emp,Eli,Emp,emp@example.com,boss,Admin\n\
                    old,Ola,Old,old@example.com,,Admin\n";
        if let Err(e) = importer.run_async(seed.as_bytes(), None, self.store).await {
            return self.fail(format!("import failed: {e}"));
        }
        let before = self.snapshot().await?;
        let file = "userId,firstName,lastName,email,reportsTo,roles,transaction\n\
                    emp,Eli,Changed,emp@example.com,new,Admin|Undoable,\n\
                    new,Nia,New,new@example.com,boss,Undoable,\n\
                    old,,,,,,DELETE\n";
        let plan = match importer
            .plan_async(importer.validate(file.as_bytes(), None), self.store)
            .await
        {
            Ok(p) => p,
            Err(e) => return self.fail(format!("planning failed: {e}")),
        };
        let mut undo = None;
        let report = match importer
            .apply_async_with(&plan, self.store, RunOptions::new().undo(&mut undo))
            .await
        {
            Ok(r) => r,
            Err(e) => return self.fail(format!("apply failed: {e}")),
        };
        self.check(report.is_success(), || {
            format!("the import failed: {}", report.render_text())
        })?;
        let Some(undo) = undo else {
            return self.fail("applying gave no undo");
        };
        let undone = match importer.apply_async(&undo, self.store).await {
            Ok(r) => r,
            Err(e) => return self.fail(format!("applying the undo failed: {e}")),
        };
        self.check(undone.is_success(), || {
            format!("the undo failed: {}", undone.render_text())
        })?;
        let after = self.snapshot().await?;
        self.check(after == before, || {
            format!("after the undo the tenant is {after:?}, not {before:?}")
        })
    }
}
