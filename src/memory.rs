//! `InMemoryStore`: a complete [`UserStore`] in memory, for tests (yours and
//! ours) and as the reference the conformance kit checks against.

use std::collections::{BTreeMap, BTreeSet, HashMap};

type Fast = foldhash::fast::RandomState;
use std::convert::Infallible;
use std::future::{Future, ready};

use crate::catalog::Catalog;
use crate::matching::normalize;
use crate::record::User;
use crate::schema::Field;
use crate::store::{AsyncUserStore, ExistingUser, Fetch, Op, OpOutcome, UserStore, apply_changes};
use crate::text::Text;

/// How often each method of an [`InMemoryStore`] was called (to check batching).
///
/// ```
/// let s = user_import::memory::InMemoryStore::new();
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
    /// The users, each in a slot the indexes below point to; `None` where a
    /// user was removed (the slot is reused, see `free`).
    slots: Vec<Option<ExistingUser>>,
    free: Vec<u32>,
    /// Normalized user id → slot. The ids are kept inline when short, so a
    /// lookup reads the table and the slot, not a third place for the key.
    ids: HashMap<Text, u32, Fast>,
    /// The normalized user ids, in order (for `scan`).
    order: BTreeSet<String>,
    /// Normalized email → the slot of the user holding it.
    emails: HashMap<Text, u32, Fast>,
    reports: HashMap<String, BTreeSet<String>, Fast>,
    /// `seen[slot] == fetches` once a fetch has taken that slot's user: a
    /// user named by id, email and manager is returned once, without a set.
    seen: Vec<u32>,
    fetches: u32,
    catalog: Catalog,
    /// The catalog's roles, normalized, for constant-time checks.
    role_set: std::collections::HashSet<String, Fast>,
}

impl Default for Tenant {
    fn default() -> Tenant {
        Tenant {
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashMap::default(),
            order: BTreeSet::new(),
            emails: HashMap::default(),
            reports: HashMap::default(),
            seen: Vec::new(),
            fetches: 0,
            // Roles are checked by default (an empty list, not `None`); the
            // create policy adds the missing ones on demand.
            catalog: Catalog::new().roles(Vec::<String>::new()),
            role_set: Default::default(),
        }
    }
}

impl Tenant {
    /// The user with this normalized id.
    fn user(&self, id: &str) -> Option<&ExistingUser> {
        let &slot = self.ids.get(id)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    fn user_mut(&mut self, id: &str) -> Option<&mut ExistingUser> {
        let &slot = self.ids.get(id)?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Whether this normalized email belongs to a user other than the one
    /// with this normalized id.
    fn email_taken_from(&self, email: &str, id: &str) -> bool {
        self.emails
            .get(email)
            .is_some_and(|holder| self.ids.get(id) != Some(holder))
    }

    fn unindex(&mut self, id: &str) -> Option<ExistingUser> {
        let slot = self.ids.remove(id)?;
        let old = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        self.order.remove(id);
        if let Some(e) = old.user.email() {
            self.emails.remove(normalize(e).as_str());
        }
        if let Some(m) = old.user.value(Field::ReportsTo)
            && let Some(set) = self.reports.get_mut(&normalize(m))
        {
            set.remove(id);
        }
        Some(old)
    }

    fn index(&mut self, id: String, user: ExistingUser) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        if let Some(e) = user.user.email() {
            self.emails.insert(Text::from(normalize(e)), slot);
        }
        if let Some(m) = user.user.value(Field::ReportsTo) {
            self.reports
                .entry(normalize(m))
                .or_default()
                .insert(id.clone());
        }
        self.order.insert(id.clone());
        self.ids.insert(Text::from(id), slot);
        self.slots[slot as usize] = Some(user);
    }

    /// The users a fetch names, each once, in the order first named.
    fn fetch(&mut self, request: &Fetch) -> Vec<ExistingUser> {
        self.fetches = self.fetches.wrapping_add(1);
        if self.fetches == 0 {
            self.seen.fill(0);
            self.fetches = 1;
        }
        self.seen.resize(self.slots.len(), 0);
        let Tenant {
            slots,
            ids,
            emails,
            reports,
            seen,
            fetches,
            ..
        } = self;
        // The slots first (4 bytes each), so the users are cloned into a
        // list of exactly their number.
        let mut found: Vec<u32> = Vec::with_capacity(request.user_ids.len() + request.emails.len());
        let mut take = |slot: u32| {
            if let (Some(mark), Some(Some(_))) =
                (seen.get_mut(slot as usize), slots.get(slot as usize))
                && *mark != *fetches
            {
                *mark = *fetches;
                found.push(slot);
            }
        };
        for id in &request.user_ids {
            if let Some(&slot) = ids.get(id.as_str()) {
                take(slot);
            }
        }
        for e in &request.emails {
            if let Some(&slot) = emails.get(e.as_str()) {
                take(slot);
            }
        }
        for m in &request.managers {
            for id in reports.get(m).into_iter().flatten() {
                if let Some(&slot) = ids.get(id.as_str()) {
                    take(slot);
                }
            }
        }
        let mut users = Vec::with_capacity(found.len());
        users.extend(
            found
                .iter()
                .filter_map(|&slot| slots.get(slot as usize)?.clone()),
        );
        users
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

    /// Deletes a role no user holds.
    fn delete_role(&mut self, role: &str) -> OpOutcome {
        let norm = normalize(role);
        let Some(roles) = self.catalog.roles.as_mut() else {
            return OpOutcome::Failed("this directory does not keep a list of roles".into());
        };
        if !self.role_set.contains(&norm) {
            return OpOutcome::NotFound;
        }
        let held = self
            .slots
            .iter()
            .flatten()
            .any(|u| u.user.roles().any(|r| normalize(r) == norm));
        if held {
            return OpOutcome::Conflict;
        }
        roles.retain(|r| normalize(r) != norm);
        self.role_set.remove(&norm);
        OpOutcome::Applied
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

/// The state an [`InMemoryStore`] starts from, for property tests and fuzz
/// targets: users (those without a user id, or whose id or email is taken
/// by an earlier one, are left out), the catalog, and locks (user index,
/// field).
///
/// ```
/// use user_import::{Field, User};
/// use user_import::memory::{State, InMemoryStore};
/// let mut dir = State::default();
/// dir.users.push(User::builder().set(Field::UserId, "a").set(Field::Email, "a@x.io").build());
/// let store = InMemoryStore::from_directory("t", &dir);
/// assert_eq!(store.len("t"), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct State {
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
/// use user_import::{Field, User};
/// use user_import::memory::InMemoryStore;
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
    /// assert!(user_import::memory::InMemoryStore::new().is_empty("acme"));
    /// ```
    pub fn new() -> InMemoryStore {
        InMemoryStore::default()
    }

    /// A store holding `directory` as `tenant`'s state.
    ///
    /// ```
    /// let s = user_import::memory::InMemoryStore::from_directory("t", &user_import::memory::State::default());
    /// assert!(s.is_empty("t"));
    /// ```
    pub fn from_directory(tenant: &str, directory: &State) -> InMemoryStore {
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
    /// use user_import::{Field, User};
    /// use user_import::memory::InMemoryStore;
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
            && t.email_taken_from(&normalize(e), &id)
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
    /// assert!(user_import::memory::InMemoryStore::new().get("t", "x").is_none());
    /// ```
    pub fn get(&self, tenant: &str, user_id: &str) -> Option<&ExistingUser> {
        self.tenants
            .get(&normalize(tenant))?
            .user(&normalize(user_id))
    }

    /// Locks a field of a user; `false` when there is no such user.
    ///
    /// ```
    /// use user_import::{Field, User};
    /// use user_import::memory::InMemoryStore;
    /// let mut s = InMemoryStore::new();
    /// s.insert("t", User::builder().set(Field::UserId, "a").build());
    /// assert!(s.lock("t", "a", Field::Roles));
    /// assert_eq!(s.get("t", "a").unwrap().locked, [Field::Roles]);
    /// ```
    pub fn lock(&mut self, tenant: &str, user_id: &str, field: Field) -> bool {
        let t = self.tenant(tenant);
        match t.user_mut(&normalize(user_id)) {
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
    /// use user_import::{Field, User};
    /// use user_import::memory::InMemoryStore;
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
    /// use user_import::Catalog;
    /// use user_import::memory::InMemoryStore;
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
    /// assert!(user_import::memory::InMemoryStore::new().roles("t").is_empty());
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
    /// assert_eq!(user_import::memory::InMemoryStore::new().users("t").count(), 0);
    /// ```
    pub fn users(&self, tenant: &str) -> impl Iterator<Item = &ExistingUser> + '_ {
        self.tenants
            .get(&normalize(tenant))
            .into_iter()
            .flat_map(|t| t.order.iter().filter_map(|id| t.user(id)))
    }

    /// Number of users of the tenant.
    ///
    /// ```
    /// assert_eq!(user_import::memory::InMemoryStore::new().len("t"), 0);
    /// ```
    pub fn len(&self, tenant: &str) -> usize {
        self.tenants
            .get(&normalize(tenant))
            .map_or(0, |t| t.ids.len())
    }

    /// `true` when the tenant has no users.
    ///
    /// ```
    /// assert!(user_import::memory::InMemoryStore::new().is_empty("t"));
    /// ```
    pub fn is_empty(&self, tenant: &str) -> bool {
        self.len(tenant) == 0
    }

    /// How often each method was called.
    ///
    /// ```
    /// use user_import::UserStore;
    /// let mut s = user_import::memory::InMemoryStore::new();
    /// s.count("t").unwrap();
    /// assert_eq!(s.calls().count, 1);
    /// ```
    pub fn calls(&self) -> Calls {
        self.calls
    }

    /// `true` while a transaction is open.
    ///
    /// ```
    /// assert!(!user_import::memory::InMemoryStore::new().in_transaction());
    /// ```
    pub fn in_transaction(&self) -> bool {
        self.snapshot.is_some()
    }

    fn do_fetch(&mut self, request: &Fetch) -> Vec<ExistingUser> {
        self.calls.fetch += 1;
        match self.tenants.get_mut(&normalize(&request.tenant)) {
            Some(t) => t.fetch(request),
            None => Vec::new(),
        }
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
            .filter_map(|id| t.user(id).cloned())
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
        // A role someone created since the plan was made is theirs (an
        // undo must not delete it).
        Op::CreateRole { name } if t.catalog.roles.is_some() && t.has_role(name) => {
            OpOutcome::AlreadyExists
        }
        Op::CreateRole { name } => {
            t.add_role(name);
            OpOutcome::Applied
        }
        Op::DeleteRole { name } => t.delete_role(name),
        Op::Create { user, locked, .. } => {
            let Some(id) = user.user_id().map(normalize) else {
                return OpOutcome::Failed("a user to create needs a user id".into());
            };
            let email_taken = user
                .email()
                .is_some_and(|e| t.emails.contains_key(normalize(e).as_str()));
            if t.ids.contains_key(id.as_str()) || email_taken {
                return OpOutcome::AlreadyExists;
            }
            if let Some(r) = user.roles().find(|r| !t.has_role(r)) {
                return OpOutcome::Failed(format!("role {r:?} does not exist"));
            }
            let mut created = ExistingUser::new(user.clone(), version);
            created.locked = locked.clone();
            t.index(id, created);
            OpOutcome::Applied
        }
        Op::Update {
            user_id,
            version: planned,
            changes,
            ..
        } => {
            let id = normalize(user_id);
            let Some(current) = t.user(&id) else {
                return OpOutcome::NotFound;
            };
            if current.version != *planned {
                return OpOutcome::Conflict;
            }
            let updated = apply_changes(&current.user, changes);
            if let Some(e) = updated.email().map(normalize)
                && t.email_taken_from(&e, &id)
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
            match t.user(&id) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: &str, manager: Option<&str>) -> User {
        let b = User::builder()
            .set(Field::UserId, id)
            .set(Field::Email, email);
        match manager {
            Some(m) => b.set(Field::ReportsTo, m).build(),
            None => b.build(),
        }
    }

    fn ids(found: &[ExistingUser]) -> Vec<&str> {
        found.iter().filter_map(|u| u.user.user_id()).collect()
    }

    fn fetch(
        s: &mut InMemoryStore,
        ids: &[&str],
        emails: &[&str],
        managers: &[&str],
    ) -> Vec<ExistingUser> {
        let mut f = Fetch::new("t");
        f.user_ids = ids.iter().map(|s| s.to_string()).collect();
        f.emails = emails.iter().map(|s| s.to_string()).collect();
        f.managers = managers.iter().map(|s| s.to_string()).collect();
        UserStore::fetch(s, &f).unwrap()
    }

    #[test]
    fn a_user_named_several_ways_is_fetched_once_in_the_order_first_named() {
        let mut s = InMemoryStore::new();
        s.insert("t", user("Boss", "boss@x.io", None));
        s.insert("t", user("Ann", "ann@x.io", Some("boss")));
        s.insert("t", user("Bob", "bob@x.io", Some("boss")));
        let found = fetch(
            &mut s,
            &["bob", "nobody"],
            &["ann@x.io", "bob@x.io"],
            &["boss"],
        );
        assert_eq!(ids(&found), ["Bob", "Ann"]);
        // Every fetch starts afresh: the same request gives the same users.
        let again = fetch(&mut s, &["bob"], &["ann@x.io"], &["boss"]);
        assert_eq!(ids(&again), ["Bob", "Ann"]);
    }

    #[test]
    fn fetches_stay_right_when_their_counter_wraps_round() {
        let mut s = InMemoryStore::new();
        s.insert("t", user("a", "a@x.io", None));
        s.insert("t", user("b", "b@x.io", None));
        s.tenant("t").fetches = u32::MAX - 1;
        let found = fetch(&mut s, &["a", "b"], &["b@x.io", "a@x.io"], &[]);
        assert_eq!(ids(&found), ["a", "b"]);
        // A user whose mark is still zero when the counter wraps to zero.
        s.insert("t", user("c", "c@x.io", None));
        for _ in 0..3 {
            let found = fetch(&mut s, &["a", "b"], &["b@x.io", "c@x.io", "a@x.io"], &[]);
            assert_eq!(ids(&found), ["a", "b", "c"]);
        }
    }

    #[test]
    fn a_removed_users_slot_is_reused_and_their_keys_find_nothing() {
        let mut s = InMemoryStore::new();
        s.insert("t", user("old", "old@x.io", Some("m")));
        let v = s.get("t", "old").unwrap().version;
        let outcome = UserStore::apply(
            &mut s,
            "t",
            &[Op::Delete {
                line: None,
                user_id: "old".into(),
                version: v,
            }],
        )
        .unwrap();
        assert_eq!(outcome, [OpOutcome::Applied]);
        s.insert("t", user("new", "new@x.io", None));
        assert_eq!(s.tenant("t").slots.len(), 1, "the slot is reused");
        assert!(fetch(&mut s, &["old"], &["old@x.io"], &["m"]).is_empty());
        assert_eq!(ids(&fetch(&mut s, &["new"], &[], &[])), ["new"]);
        // The email is free again for someone else.
        assert!(s.insert("t", user("other", "old@x.io", None)).is_some());
        assert!(s.insert("t", user("third", "NEW@x.io", None)).is_none());
        assert_eq!(s.len("t"), 2);
    }
}
