//! `InMemoryStore`: a complete [`UserStore`] in memory, for tests (yours and
//! ours) and as the reference the conformance kit checks against.

use std::collections::{BTreeMap, BTreeSet, HashMap};

type Fast = foldhash::fast::RandomState;
use std::convert::Infallible;
use std::future::{Future, ready};

use crate::catalog::Catalog;
use crate::record::{User, normalize};
use crate::schema::Field;
use crate::store::{AsyncUserStore, ExistingUser, Fetch, Op, OpOutcome, UserStore, apply_changes};

/// How often each method of an [`InMemoryStore`] was called (to check batching).
///
/// ```
/// let s = user_import::InMemoryStore::new();
/// assert_eq!(s.calls().fetch, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Calls {
    /// `catalog` calls.
    pub catalog: u64,
    /// `fetch` calls.
    pub fetch: u64,
    /// `scan` calls.
    pub scan: u64,
    /// `count` calls.
    pub count: u64,
    /// `apply` calls.
    pub apply: u64,
}

#[derive(Debug, Clone)]
struct Tenant {
    users: HashMap<String, ExistingUser, Fast>,
    /// The normalized user ids, in order (for `scan`).
    order: BTreeSet<String>,
    emails: HashMap<String, String, Fast>,
    reports: HashMap<String, BTreeSet<String>, Fast>,
    catalog: Catalog,
    /// The catalog's roles, normalized, for constant-time checks.
    role_set: std::collections::HashSet<String, Fast>,
}

impl Default for Tenant {
    fn default() -> Tenant {
        Tenant {
            users: HashMap::default(),
            order: BTreeSet::new(),
            emails: HashMap::default(),
            reports: HashMap::default(),
            // Roles are checked (and created on demand) by default, as in S4.
            catalog: Catalog::new().roles(Vec::<String>::new()),
            role_set: Default::default(),
        }
    }
}

impl Tenant {
    fn unindex(&mut self, id: &str) -> Option<ExistingUser> {
        let old = self.users.remove(id)?;
        self.order.remove(id);
        if let Some(e) = old.user.email() {
            self.emails.remove(&normalize(e));
        }
        if let Some(m) = old.user.value(Field::ReportsTo)
            && let Some(set) = self.reports.get_mut(&normalize(m))
        {
            set.remove(id);
        }
        Some(old)
    }

    fn index(&mut self, id: String, user: ExistingUser) {
        if let Some(e) = user.user.email() {
            self.emails.insert(normalize(e), id.clone());
        }
        if let Some(m) = user.user.value(Field::ReportsTo) {
            self.reports
                .entry(normalize(m))
                .or_default()
                .insert(id.clone());
        }
        self.order.insert(id.clone());
        self.users.insert(id, user);
    }

    fn has_role(&self, role: &str) -> bool {
        self.catalog.roles.is_none() || self.role_set.contains(&normalize(role))
    }

    /// Adds a role to the catalog (if roles are checked and it is new).
    fn add_role(&mut self, role: &str) {
        if let Some(roles) = self.catalog.roles.as_mut()
            && self.role_set.insert(normalize(role))
        {
            roles.push(role.to_owned());
        }
    }

    fn set_catalog(&mut self, catalog: Catalog) {
        self.role_set = catalog
            .roles
            .iter()
            .flatten()
            .map(|r| normalize(r))
            .collect();
        self.catalog = catalog;
    }

    fn add_roles(&mut self, user: &User) {
        for r in user.roles() {
            self.add_role(r);
        }
    }
}

/// A directory's state, for property tests and fuzz targets: users (those
/// without a user id, or whose id or email is taken by an earlier one, are
/// left out), the catalog, and locks (user index, field).
///
/// ```
/// use user_import::{Directory, Field, InMemoryStore, User};
/// let mut dir = Directory::default();
/// dir.users.push(User::builder().set(Field::UserId, "a").set(Field::Email, "a@x.io").build());
/// let store = InMemoryStore::from_directory("t", &dir);
/// assert_eq!(store.len("t"), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct Directory {
    /// The users.
    pub users: Vec<User>,
    /// The catalog (roles of the users are added to it).
    pub catalog: Catalog,
    /// Locked fields: (index into `users`, field).
    pub locks: Vec<(u16, Field)>,
}

/// A multi-tenant user directory in memory, implementing [`UserStore`] and
/// [`AsyncUserStore`] with the full contract: case-insensitive matching,
/// versions (a counter), conditional updates and deletes, role checks (a
/// user's roles must exist; [`Op::CreateRole`] adds them), locks, and
/// transactions (by snapshot).
///
/// ```
/// use user_import::{Field, InMemoryStore, User};
/// let mut store = InMemoryStore::new();
/// store.insert("acme", User::builder()
///     .set(Field::UserId, "admin").set(Field::Email, "admin@example.com").set(Field::Roles, "Admin").build());
/// assert_eq!(store.len("acme"), 1);
/// assert!(store.get("acme", "ADMIN").is_some());
/// assert_eq!(store.roles("acme"), ["Admin"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    tenants: BTreeMap<String, Tenant>,
    snapshot: Option<BTreeMap<String, Tenant>>,
    next_version: u64,
    calls: Calls,
}

impl InMemoryStore {
    /// An empty store.
    ///
    /// ```
    /// assert!(user_import::InMemoryStore::new().is_empty("acme"));
    /// ```
    pub fn new() -> InMemoryStore {
        InMemoryStore::default()
    }

    /// A store holding `directory` as `tenant`'s state.
    ///
    /// ```
    /// let s = user_import::InMemoryStore::from_directory("t", &user_import::Directory::default());
    /// assert!(s.is_empty("t"));
    /// ```
    pub fn from_directory(tenant: &str, directory: &Directory) -> InMemoryStore {
        let mut s = InMemoryStore::new();
        let mut catalog = directory.catalog.clone();
        if catalog.roles.is_none() {
            catalog.roles = Some(Vec::new());
        }
        s.set_catalog(tenant, catalog);
        for u in &directory.users {
            if let Some(id) = u.user_id()
                && s.get(tenant, id).is_none()
            {
                s.insert(tenant, u.clone());
            }
        }
        for &(k, f) in &directory.locks {
            if let Some(id) = directory.users.get(usize::from(k)).and_then(User::user_id) {
                s.lock(tenant, id, f);
            }
        }
        s
    }

    fn tenant(&mut self, tenant: &str) -> &mut Tenant {
        self.tenants.entry(normalize(tenant)).or_default()
    }

    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Inserts or replaces a user (which must have a user id); its roles are
    /// added to the tenant's catalog. Returns the new version, or `None` when
    /// the user has no user id or their email belongs to another user.
    ///
    /// ```
    /// use user_import::{Field, InMemoryStore, User};
    /// let mut s = InMemoryStore::new();
    /// let a = User::builder().set(Field::UserId, "a").set(Field::Email, "a@x.io").build();
    /// assert!(s.insert("t", a).is_some());
    /// assert!(s.insert("t", User::default()).is_none());
    /// let b = User::builder().set(Field::UserId, "b").set(Field::Email, "A@X.io").build();
    /// assert!(s.insert("t", b).is_none(), "the email is a's");
    /// ```
    pub fn insert(&mut self, tenant: &str, user: User) -> Option<u64> {
        let id = normalize(user.user_id()?);
        let t = self.tenant(tenant);
        if let Some(e) = user.email()
            && t.emails
                .get(&normalize(e))
                .is_some_and(|owner| *owner != id)
        {
            return None;
        }
        let version = self.version();
        let t = self.tenant(tenant);
        t.unindex(&id);
        t.add_roles(&user);
        t.index(id, ExistingUser::new(user, version));
        Some(version)
    }

    /// The user with this id (any case).
    ///
    /// ```
    /// assert!(user_import::InMemoryStore::new().get("t", "x").is_none());
    /// ```
    pub fn get(&self, tenant: &str, user_id: &str) -> Option<&ExistingUser> {
        self.tenants
            .get(&normalize(tenant))?
            .users
            .get(&normalize(user_id))
    }

    /// Locks a field of a user; `false` when there is no such user.
    ///
    /// ```
    /// use user_import::{Field, InMemoryStore, User};
    /// let mut s = InMemoryStore::new();
    /// s.insert("t", User::builder().set(Field::UserId, "a").build());
    /// assert!(s.lock("t", "a", Field::Roles));
    /// assert_eq!(s.get("t", "a").unwrap().locked, [Field::Roles]);
    /// ```
    pub fn lock(&mut self, tenant: &str, user_id: &str, field: Field) -> bool {
        let t = self.tenant(tenant);
        match t.users.get_mut(&normalize(user_id)) {
            Some(u) => {
                if !u.locked.contains(&field) {
                    u.locked.push(field);
                }
                true
            }
            None => false,
        }
    }

    /// Changes a user behind the import's back (a new version), as a
    /// concurrent administrator would. `false` when there is no such user.
    ///
    /// ```
    /// use user_import::{Field, InMemoryStore, User};
    /// let mut s = InMemoryStore::new();
    /// let v = s.insert("t", User::builder().set(Field::UserId, "a").build()).unwrap();
    /// assert!(s.touch("t", "a", Field::LastName, "Changed"));
    /// assert!(s.get("t", "a").unwrap().version > v);
    /// ```
    pub fn touch(&mut self, tenant: &str, user_id: &str, field: Field, value: &str) -> bool {
        let version = self.version();
        let t = self.tenant(tenant);
        let id = normalize(user_id);
        let Some(mut old) = t.unindex(&id) else {
            return false;
        };
        old.user = old.user.to_builder().set(field, value).build();
        old.version = version;
        t.index(id, old);
        true
    }

    /// Sets the tenant's catalog.
    ///
    /// ```
    /// use user_import::{Catalog, InMemoryStore};
    /// let mut s = InMemoryStore::new();
    /// s.set_catalog("t", Catalog::new().roles(["Admin"]));
    /// assert_eq!(s.roles("t"), ["Admin"]);
    /// ```
    pub fn set_catalog(&mut self, tenant: &str, catalog: Catalog) {
        self.tenant(tenant).set_catalog(catalog);
    }

    /// The tenant's known roles, sorted.
    ///
    /// ```
    /// assert!(user_import::InMemoryStore::new().roles("t").is_empty());
    /// ```
    pub fn roles(&self, tenant: &str) -> Vec<String> {
        let mut r = self
            .tenants
            .get(&normalize(tenant))
            .and_then(|t| t.catalog.roles.clone())
            .unwrap_or_default();
        r.sort();
        r
    }

    /// The tenant's users, by normalized user id.
    ///
    /// ```
    /// assert_eq!(user_import::InMemoryStore::new().users("t").count(), 0);
    /// ```
    pub fn users(&self, tenant: &str) -> impl Iterator<Item = &ExistingUser> + '_ {
        self.tenants
            .get(&normalize(tenant))
            .into_iter()
            .flat_map(|t| t.order.iter().filter_map(|id| t.users.get(id)))
    }

    /// Number of users of the tenant.
    ///
    /// ```
    /// assert_eq!(user_import::InMemoryStore::new().len("t"), 0);
    /// ```
    pub fn len(&self, tenant: &str) -> usize {
        self.tenants
            .get(&normalize(tenant))
            .map_or(0, |t| t.users.len())
    }

    /// `true` when the tenant has no users.
    ///
    /// ```
    /// assert!(user_import::InMemoryStore::new().is_empty("t"));
    /// ```
    pub fn is_empty(&self, tenant: &str) -> bool {
        self.len(tenant) == 0
    }

    /// How often each method was called.
    ///
    /// ```
    /// use user_import::UserStore;
    /// let mut s = user_import::InMemoryStore::new();
    /// s.count("t").unwrap();
    /// assert_eq!(s.calls().count, 1);
    /// ```
    pub fn calls(&self) -> Calls {
        self.calls
    }

    /// `true` while a transaction is open.
    ///
    /// ```
    /// assert!(!user_import::InMemoryStore::new().in_transaction());
    /// ```
    pub fn in_transaction(&self) -> bool {
        self.snapshot.is_some()
    }

    fn do_fetch(&mut self, request: &Fetch) -> Vec<ExistingUser> {
        self.calls.fetch += 1;
        let Some(t) = self.tenants.get(&normalize(&request.tenant)) else {
            return Vec::new();
        };
        // Each user is looked up once, and told apart from the others by
        // where it is stored (not by hashing its id again).
        let mut found: Vec<&ExistingUser> =
            Vec::with_capacity(request.user_ids.len() + request.emails.len());
        found.extend(request.user_ids.iter().filter_map(|id| t.users.get(id)));
        found.extend(
            request
                .emails
                .iter()
                .filter_map(|e| t.users.get(t.emails.get(e)?)),
        );
        for m in &request.managers {
            if let Some(set) = t.reports.get(m) {
                found.extend(set.iter().filter_map(|id| t.users.get(id)));
            }
        }
        let mut seen: std::collections::HashSet<usize, Fast> =
            std::collections::HashSet::with_capacity_and_hasher(found.len(), Fast::default());
        found
            .into_iter()
            .filter(|u| seen.insert(std::ptr::from_ref::<ExistingUser>(u) as usize))
            .cloned()
            .collect()
    }

    fn do_scan(&mut self, tenant: &str, after: Option<&str>, limit: usize) -> Vec<ExistingUser> {
        use std::ops::Bound;
        self.calls.scan += 1;
        let Some(t) = self.tenants.get(&normalize(tenant)) else {
            return Vec::new();
        };
        let lower = match after {
            Some(a) => Bound::Excluded(a.to_owned()),
            None => Bound::Unbounded,
        };
        t.order
            .range((lower, Bound::Unbounded))
            .take(limit)
            .filter_map(|id| t.users.get(id).cloned())
            .collect()
    }

    fn do_apply(&mut self, tenant: &str, ops: &[Op]) -> Vec<OpOutcome> {
        self.calls.apply += 1;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let version = self.version();
            let t = self.tenant(tenant);
            out.push(apply_one(t, op, version));
        }
        out
    }
}

fn apply_one(t: &mut Tenant, op: &Op, version: u64) -> OpOutcome {
    match op {
        Op::CreateRole { name } => {
            t.add_role(name);
            OpOutcome::Applied
        }
        Op::Create { user, .. } => {
            let Some(id) = user.user_id().map(normalize) else {
                return OpOutcome::Failed("a user to create needs a user id".into());
            };
            let email_taken = user
                .email()
                .is_some_and(|e| t.emails.contains_key(&normalize(e)));
            if t.users.contains_key(&id) || email_taken {
                return OpOutcome::AlreadyExists;
            }
            if let Some(r) = user.roles().find(|r| !t.has_role(r)) {
                return OpOutcome::Failed(format!("role {r:?} does not exist"));
            }
            t.index(id, ExistingUser::new(user.clone(), version));
            OpOutcome::Applied
        }
        Op::Update {
            user_id,
            version: planned,
            changes,
            ..
        } => {
            let id = normalize(user_id);
            let Some(current) = t.users.get(&id) else {
                return OpOutcome::NotFound;
            };
            if current.version != *planned {
                return OpOutcome::Conflict;
            }
            let updated = apply_changes(&current.user, changes);
            if let Some(e) = updated.email().map(normalize)
                && t.emails.get(&e).is_some_and(|owner| *owner != id)
            {
                return OpOutcome::Failed("the email is used by another user".into());
            }
            if let Some(r) = updated.roles().find(|r| !t.has_role(r)) {
                return OpOutcome::Failed(format!("role {r:?} does not exist"));
            }
            let locked = current.locked.clone();
            t.unindex(&id);
            let mut u = ExistingUser::new(updated, version);
            u.locked = locked;
            t.index(id, u);
            OpOutcome::Applied
        }
        Op::Delete {
            user_id,
            version: planned,
            ..
        } => {
            let id = normalize(user_id);
            match t.users.get(&id) {
                None => OpOutcome::NotFound,
                Some(u) if u.version != *planned => OpOutcome::Conflict,
                Some(_) => {
                    t.unindex(&id);
                    OpOutcome::Applied
                }
            }
        }
    }
}

impl UserStore for InMemoryStore {
    type Error = Infallible;

    fn catalog(&mut self, tenant: &str) -> Result<Catalog, Infallible> {
        self.calls.catalog += 1;
        Ok(self.tenant(tenant).catalog.clone())
    }

    fn fetch(&mut self, request: &Fetch) -> Result<Vec<ExistingUser>, Infallible> {
        Ok(self.do_fetch(request))
    }

    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ExistingUser>, Infallible> {
        Ok(self.do_scan(tenant, after, limit))
    }

    fn count(&mut self, tenant: &str) -> Result<u64, Infallible> {
        self.calls.count += 1;
        Ok(self.len(tenant) as u64)
    }

    fn apply(&mut self, tenant: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, Infallible> {
        Ok(self.do_apply(tenant, ops))
    }

    fn begin(&mut self) -> Result<bool, Infallible> {
        self.snapshot = Some(self.tenants.clone());
        Ok(true)
    }

    fn commit(&mut self) -> Result<(), Infallible> {
        self.snapshot = None;
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), Infallible> {
        if let Some(s) = self.snapshot.take() {
            self.tenants = s;
        }
        Ok(())
    }
}

impl AsyncUserStore for InMemoryStore {
    type Error = Infallible;

    fn catalog(
        &mut self,
        tenant: &str,
    ) -> impl Future<Output = Result<Catalog, Infallible>> + Send {
        ready(UserStore::catalog(self, tenant))
    }

    fn fetch(
        &mut self,
        request: &Fetch,
    ) -> impl Future<Output = Result<Vec<ExistingUser>, Infallible>> + Send {
        ready(UserStore::fetch(self, request))
    }

    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ExistingUser>, Infallible>> + Send {
        ready(UserStore::scan(self, tenant, after, limit))
    }

    fn count(&mut self, tenant: &str) -> impl Future<Output = Result<u64, Infallible>> + Send {
        ready(UserStore::count(self, tenant))
    }

    fn apply(
        &mut self,
        tenant: &str,
        ops: &[Op],
    ) -> impl Future<Output = Result<Vec<OpOutcome>, Infallible>> + Send {
        ready(UserStore::apply(self, tenant, ops))
    }

    fn begin(&mut self) -> impl Future<Output = Result<bool, Infallible>> + Send {
        ready(UserStore::begin(self))
    }

    fn commit(&mut self) -> impl Future<Output = Result<(), Infallible>> + Send {
        ready(UserStore::commit(self))
    }

    fn rollback(&mut self) -> impl Future<Output = Result<(), Infallible>> + Send {
        ready(UserStore::rollback(self))
    }
}
