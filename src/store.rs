//! The `UserStore` trait callers implement for their directory, its async
//! twin, and the data that crosses it.

use std::fmt;
use std::future::Future;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalog::Catalog;
use crate::record::{User, UserBuilder};
use crate::schema::Field;

/// A user as the directory holds it.
///
/// ```
/// use user_import::{ExistingUser, Field, User};
/// let u = ExistingUser::new(User::builder().set(Field::UserId, "jdoe").build(), 7)
///     .lock(Field::Roles);
/// assert_eq!((u.user_id(), u.version), ("jdoe", 7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExistingUser {
    /// The user's values; `userId` is always set.
    pub user: User,
    /// The version the store gives this state of the user (a row version, a
    /// counter, a hash of an etag). Any change to the user must change it.
    pub version: u64,
    /// Fields an administrator locked on this user (a role or location
    /// lock, say): the import never changes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<Field>,
}

impl ExistingUser {
    /// A user at `version`, with nothing locked.
    ///
    /// ```
    /// let u = user_import::ExistingUser::new(user_import::User::default(), 1);
    /// assert!(u.locked.is_empty());
    /// ```
    pub fn new(user: User, version: u64) -> ExistingUser {
        ExistingUser {
            user,
            version,
            locked: Vec::new(),
        }
    }

    /// Locks a field.
    ///
    /// ```
    /// let u = user_import::ExistingUser::new(user_import::User::default(), 1)
    ///     .lock(user_import::Field::Location);
    /// assert_eq!(u.locked, [user_import::Field::Location]);
    /// ```
    pub fn lock(mut self, field: Field) -> ExistingUser {
        if !self.locked.contains(&field) {
            self.locked.push(field);
        }
        self
    }

    /// The user id (empty if the store left it out, which breaks the contract).
    ///
    /// ```
    /// let u = user_import::ExistingUser::new(user_import::User::default(), 1);
    /// assert_eq!(u.user_id(), "");
    /// ```
    pub fn user_id(&self) -> &str {
        self.user.user_id().unwrap_or("")
    }
}

/// One batched lookup: every user of `tenant` whose user id is in
/// `user_ids`, OR whose email is in `emails`, OR who reports to a user in
/// `managers`. All values are normalized (see [`crate::normalize`]); the store
/// must compare them with its own values normalized the same way (trimmed,
/// lower-cased). A list may name a value more than once; each user is
/// returned once.
///
/// ```
/// let f = user_import::Fetch::new("acme");
/// assert!(f.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Fetch {
    /// The tenant.
    pub tenant: String,
    /// Normalized user ids.
    pub user_ids: Vec<String>,
    /// Normalized emails.
    pub emails: Vec<String>,
    /// Normalized user ids of managers whose reports are wanted.
    pub managers: Vec<String>,
}

impl Fetch {
    /// An empty request for `tenant`.
    ///
    /// ```
    /// assert_eq!(user_import::Fetch::new("t").tenant, "t");
    /// ```
    pub fn new(tenant: impl Into<String>) -> Fetch {
        Fetch {
            tenant: tenant.into(),
            ..Fetch::default()
        }
    }

    /// `true` when the request asks for nothing.
    ///
    /// ```
    /// let mut f = user_import::Fetch::new("t");
    /// f.user_ids.push("jdoe".into());
    /// assert!(!f.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.user_ids.is_empty() && self.emails.is_empty() && self.managers.is_empty()
    }

    /// Whether `user` answers this request (what a store must return).
    ///
    /// ```
    /// use user_import::{Fetch, Field, User};
    /// let mut f = Fetch::new("t");
    /// f.emails.push("ann@x.io".into());
    /// let u = User::builder().set(Field::UserId, "ann").set(Field::Email, "Ann@X.io").build();
    /// assert!(f.matches(&u));
    /// ```
    pub fn matches(&self, user: &User) -> bool {
        let has = |list: &[String], v: Option<&str>| {
            v.is_some_and(|v| {
                let n = crate::matching::normalize(v);
                list.contains(&n)
            })
        };
        has(&self.user_ids, user.user_id())
            || has(&self.emails, user.email())
            || has(&self.managers, user.value(Field::ReportsTo))
    }
}

/// The attribute a [`Change`] is about: a standard field or a custom
/// attribute. Serialized as its header (`"lastName"`, `"costCenter"`).
///
/// ```
/// use user_import::{Attribute, Field};
/// assert_eq!(Attribute::Field(Field::LastName).name(), "lastName");
/// assert_eq!(Attribute::Custom("costCenter".into()).name(), "costCenter");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Attribute {
    /// A standard field.
    Field(Field),
    /// A custom attribute.
    Custom(String),
}

impl Attribute {
    /// The header name.
    ///
    /// ```
    /// assert_eq!(user_import::Attribute::Field(user_import::Field::Email).name(), "email");
    /// ```
    pub fn name(&self) -> &str {
        match self {
            Attribute::Field(f) => f.header(),
            Attribute::Custom(n) => n,
        }
    }

    fn parse(name: &str) -> Attribute {
        match Field::ALL.iter().find(|f| f.header() == name) {
            Some(&f) => Attribute::Field(f),
            None => Attribute::Custom(name.to_owned()),
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Attribute {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Attribute {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Attribute, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Attribute;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Attribute, E> {
                Ok(Attribute::parse(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// One field-level change of an update: `old → new` (`None` = no value).
///
/// ```
/// use user_import::{Attribute, Change, Field};
/// let c = Change::new(Attribute::Field(Field::LastName), Some("Doe"), Some("Smith"));
/// assert_eq!(c.to_string(), "lastName: \"Doe\" → \"Smith\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Change {
    /// The attribute.
    pub field: Attribute,
    /// The current value.
    pub old: Option<String>,
    /// The value after the update.
    pub new: Option<String>,
}

impl Change {
    /// A change.
    ///
    /// ```
    /// let c = user_import::Change::new(
    ///     user_import::Attribute::Field(user_import::Field::Enabled), Some("true"), Some("false"));
    /// assert_eq!(c.new.as_deref(), Some("false"));
    /// ```
    pub fn new(field: Attribute, old: Option<&str>, new: Option<&str>) -> Change {
        Change {
            field,
            old: old.map(str::to_owned),
            new: new.map(str::to_owned),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| match v {
            Some(v) => format!("{:?}", crate::issue::printable(v)),
            None => "(none)".to_owned(),
        };
        write!(
            f,
            "{}: {} → {}",
            self.field,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// One write of a plan.
///
/// ```
/// use user_import::{Field, Op, User};
/// let op = Op::Create {
///     line: Some(2),
///     user: User::builder().set(Field::UserId, "jdoe").build(),
///     locked: Vec::new(),
/// };
/// assert_eq!(op.user_id(), Some("jdoe"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// Create a role that the file names and the directory lacks (the
    /// create role policy).
    CreateRole {
        /// The role's name.
        name: String,
    },
    /// Create a user. Must fail with [`OpOutcome::AlreadyExists`] when the user
    /// id or the email is already taken.
    Create {
        /// The row's line.
        line: Option<u64>,
        /// The new user (always with a user id).
        user: User,
        /// Fields to lock on the new user (the import never changes a
        /// locked field). Only an undo gives any: a deleted user created
        /// again gets back the locks they had.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        locked: Vec<Field>,
    },
    /// Update a user, only if it is still at `version`
    /// ([`OpOutcome::Conflict`] otherwise).
    Update {
        /// The row's line (`None` for mirror-mode disables).
        line: Option<u64>,
        /// The user id.
        user_id: String,
        /// The version the update was planned against.
        version: u64,
        /// The changes.
        changes: Vec<Change>,
    },
    /// Delete a user, only if it is still at `version`.
    Delete {
        /// The row's line (`None` for mirror-mode deletes).
        line: Option<u64>,
        /// The user id.
        user_id: String,
        /// The version the delete was planned against.
        version: u64,
    },
    /// Delete a role, only if no user of the tenant holds it
    /// ([`OpOutcome::Conflict`] otherwise; [`OpOutcome::NotFound`] when
    /// there is no such role). Only an undo plan asks for it, to take back
    /// the roles an import created.
    DeleteRole {
        /// The role's name.
        name: String,
    },
}

impl Op {
    /// The user the op is about (`None` for role creation).
    ///
    /// ```
    /// let op = user_import::Op::CreateRole { name: "Coordinator".into() };
    /// assert_eq!(op.user_id(), None);
    /// ```
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Op::CreateRole { .. } | Op::DeleteRole { .. } => None,
            Op::Create { user, .. } => user.user_id(),
            Op::Update { user_id, .. } | Op::Delete { user_id, .. } => Some(user_id),
        }
    }

    /// The line of the row the op comes from.
    ///
    /// ```
    /// let op = user_import::Op::Delete { line: Some(9), user_id: "x".into(), version: 1 };
    /// assert_eq!(op.line(), Some(9));
    /// ```
    pub fn line(&self) -> Option<u64> {
        match self {
            Op::CreateRole { .. } | Op::DeleteRole { .. } => None,
            Op::Create { line, .. } | Op::Update { line, .. } | Op::Delete { line, .. } => *line,
        }
    }
}

/// Applies `changes` to `user`, giving the user after an update: what an
/// adapter that rewrites whole records stores.
///
/// ```
/// use user_import::{apply_changes, Attribute, Change, Field, User};
/// let u = User::builder().set(Field::UserId, "a").set(Field::LastName, "Doe").build();
/// let c = [Change::new(Attribute::Field(Field::LastName), Some("Doe"), Some("Smith"))];
/// assert_eq!(apply_changes(&u, &c).get(Field::LastName), Some("Smith"));
/// ```
pub fn apply_changes(user: &User, changes: &[Change]) -> User {
    let mut b: UserBuilder = user.to_builder();
    for c in changes {
        match (&c.field, &c.new) {
            (Attribute::Field(f), Some(v)) => {
                b.put(*f, v);
            }
            (Attribute::Field(f), None) => b = b.unset(*f),
            (Attribute::Custom(n), Some(v)) => {
                b.put_custom(n.clone(), v);
            }
            (Attribute::Custom(n), None) => {
                b.remove_custom(n);
            }
        }
    }
    b.build()
}

/// What happened to one [`Op`].
///
/// ```
/// assert!(user_import::OpOutcome::Applied.is_applied());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "message", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpOutcome {
    /// Done.
    Applied,
    /// The user is not at the version the op was planned against.
    Conflict,
    /// The user to update or delete does not exist (any more).
    NotFound,
    /// The user id or email of a user to create is taken.
    AlreadyExists,
    /// Another failure of this op alone; the message is shown to the administrator.
    Failed(String),
}

impl OpOutcome {
    /// `true` for [`OpOutcome::Applied`].
    ///
    /// ```
    /// assert!(!user_import::OpOutcome::Conflict.is_applied());
    /// ```
    pub fn is_applied(&self) -> bool {
        matches!(self, OpOutcome::Applied)
    }
}

/// The directory a service keeps, as the import sees it. Implement it for
/// your database; check your implementation with the conformance kit
/// (`testkit` feature).
///
/// # Contract
///
/// - **Tenants.** Every call names the tenant; a store must never read or
///   write users of another tenant.
/// - **Matching.** User ids and emails are matched after normalization
///   (trimmed, lower-cased: [`crate::normalize`]); the requests carry
///   normalized values. A user id and an email are each unique within a tenant.
/// - **`fetch`** returns, in one round trip, every user that answers the
///   request ([`Fetch::matches`]); absent keys are simply not in the result; the
///   order does not matter and a user may appear once only. The library calls it
///   once per batch of rows (`Profile::batch_size`), never once per row.
///   Users come whole (every field, role and custom attribute): a plan keeps
///   the record of each user it deletes, and its undo creates them again
///   from it. A store that gives less cannot have its deletes undone
///   exactly. When applying asks for an undo ([`crate::RunOptions::undo`]),
///   `fetch` is also called after the batches, before `commit`, to read the
///   new versions of the users the import created or updated.
/// - **`scan`** returns up to `limit` users of the tenant whose normalized user
///   id sorts after `after` (all when `None`), in ascending order of normalized
///   user id. Used by mirror mode and export.
/// - **`count`** returns the number of users of the tenant (for the
///   share-of-users deletion guard).
/// - **`catalog`** returns the roles, locations, departments and groups the
///   tenant knows; a `None` list is not checked.
/// - **`apply`** performs the ops in order and returns one [`OpOutcome`] per
///   op, in the same order. Updates and deletes are conditional on the op's
///   `version` ([`OpOutcome::Conflict`] when the user changed); a create of a
///   taken user id or email is [`OpOutcome::AlreadyExists`]; an update or delete
///   of a missing user is [`OpOutcome::NotFound`]. An applied create or update
///   gives the user a new version. [`Op::DeleteRole`] (only in an undo)
///   deletes a role no user holds, and is [`OpOutcome::Conflict`] for a
///   role someone holds. A `CreateRole` of a role the tenant has is
///   [`OpOutcome::AlreadyExists`] (a store without a list of roles may
///   answer `Applied`). A create may name fields to lock on the new user
///   (only an undo does, giving a deleted user back their locks). Returning `Err` means *none* of the batch's
///   ops took effect (wrap the batch in a transaction or savepoint if the
///   database can fail half-way); the library then reports those rows as not
///   applied. Fewer outcomes than ops: the ops without an outcome are reported
///   as not applied.
/// - **Transactions** (optional). `begin` returns `true` if the store started a
///   transaction that `commit` or `rollback` ends; everything applied in between
///   is then atomic. The library uses one for the all-or-nothing error policy.
///   The default implementation supports none (`begin` returns `false`).
///
/// Every method takes `&mut self`, so an implementation can wrap a connection
/// or a transaction.
///
/// ```
/// use user_import::{Importer, UserStore};
/// use user_import::memory::InMemoryStore;
/// fn count_users(store: &mut impl UserStore, tenant: &str) -> u64 {
///     store.count(tenant).unwrap_or(0)
/// }
/// assert_eq!(count_users(&mut InMemoryStore::new(), "acme"), 0);
/// ```
pub trait UserStore {
    /// The store's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The names the tenant knows.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn catalog(&mut self, tenant: &str) -> Result<Catalog, Self::Error>;

    /// The users answering `request`.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn fetch(&mut self, request: &Fetch) -> Result<Vec<ExistingUser>, Self::Error>;

    /// A page of the tenant's users, by ascending normalized user id.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ExistingUser>, Self::Error>;

    /// How many users the tenant has.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn count(&mut self, tenant: &str) -> Result<u64, Self::Error>;

    /// Performs `ops` in order; one outcome per op.
    ///
    /// A store may write a batch the fast way (one transaction or savepoint
    /// for the batch, set-based statements, a block of versions) as long as
    /// the outcomes are those of performing the ops one by one: when an op
    /// would not apply, roll the batch back and perform it again op by op
    /// (each in a savepoint of its own) to find the ops that fail, which
    /// leave nothing behind. Versions stay unique: a block taken for a batch
    /// that was rolled back is rolled back with it, or never handed out
    /// again. The SQLite example does this; the conformance kit's
    /// `failed_apply_batch` checks it.
    ///
    /// # Errors
    ///
    /// The store's error; none of the ops took effect.
    fn apply(&mut self, tenant: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, Self::Error>;

    /// Starts a transaction, if the store has them.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn begin(&mut self) -> Result<bool, Self::Error> {
        Ok(false)
    }

    /// Commits the transaction `begin` started.
    ///
    /// # Errors
    ///
    /// The store's error; the transaction did not commit.
    fn commit(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Rolls back the transaction `begin` started.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn rollback(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The async twin of [`UserStore`], for tokio / sqlx services; the same
/// contract. The futures must be `Send`, so the import can run on a
/// multi-threaded runtime; the crate depends on no runtime.
///
/// The model adapter is `examples/import/pg_store.rs` in the repository:
/// PostgreSQL through sqlx, with set-based batch writes and a savepoint
/// fallback op by op (README, "Writing an async adapter").
///
/// Written with return-position `impl Future` (stable since Rust 1.75), so no
/// boxing and no macro crate.
///
/// ```
/// use user_import::AsyncUserStore;
/// use user_import::memory::InMemoryStore;
/// async fn count_users(store: &mut impl AsyncUserStore) -> u64 {
///     store.count("acme").await.unwrap_or(0)
/// }
/// let _ = count_users(&mut InMemoryStore::new());
/// ```
pub trait AsyncUserStore: Send {
    /// The store's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// See [`UserStore::catalog`].
    fn catalog(
        &mut self,
        tenant: &str,
    ) -> impl Future<Output = Result<Catalog, Self::Error>> + Send;

    /// See [`UserStore::fetch`].
    fn fetch(
        &mut self,
        request: &Fetch,
    ) -> impl Future<Output = Result<Vec<ExistingUser>, Self::Error>> + Send;

    /// See [`UserStore::scan`].
    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ExistingUser>, Self::Error>> + Send;

    /// See [`UserStore::count`].
    fn count(&mut self, tenant: &str) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// See [`UserStore::apply`].
    fn apply(
        &mut self,
        tenant: &str,
        ops: &[Op],
    ) -> impl Future<Output = Result<Vec<OpOutcome>, Self::Error>> + Send;

    /// See [`UserStore::begin`].
    fn begin(&mut self) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        async { Ok(false) }
    }

    /// See [`UserStore::commit`].
    fn commit(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// See [`UserStore::rollback`].
    fn rollback(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
}
