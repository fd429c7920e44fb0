//! `SqliteStore`: a `UserStore` over SQLite (rusqlite), written as the model
//! adapter to copy for your own database.
//!
//! How it keeps the trait's contract (see `UserStore` in `src/store.rs`):
//!
//! - **Matching**: each user row keeps, beside the values as written, the
//!   values the library matches on, normalized with `user_import::normalize`
//!   (`user_id_norm`, `email_norm`, `reports_to_norm`). Lookups compare those
//!   columns with the request's already-normalized values. Normalizing in Rust,
//!   not with SQL's `lower()`, keeps one policy for the file and the
//!   directory (SQLite's `lower()` only folds ASCII).
//! - **Uniqueness**: `UNIQUE (tenant, user_id_norm)` and
//!   `UNIQUE (tenant, email_norm)`; a create that breaks one is
//!   `AlreadyExists`.
//! - **Tenants**: every table has a `tenant` column and every query filters on it.
//! - **Versions**: every create or update takes a fresh number from one
//!   counter, so a version is never reused, not even when a user is deleted
//!   and created again. Updates and deletes check the version they were
//!   planned against (optimistic concurrency).
//! - **Reads**: `fetch` reads the users named by id whole, each id once,
//!   one indexed lookup each, then their roles: in one range of row ids
//!   when they lie close together (a batch of a file that lists users in
//!   about the order they were created), one lookup per user otherwise
//!   (`scan` reads a page's roles the same way); the role ids are named
//!   from a map filled as they are met, not by a join per row. An email
//!   one of them holds is no one else's, so only the other emails are
//!   looked up; those users and the reports of the managers asked for are
//!   found in the indexes alone (row ids), and only the rows not read yet
//!   are read. A re-import of an unchanged file reads each user once and
//!   looks up no email.
//! - **Atomicity**: each `apply` runs inside a SAVEPOINT (an `Err` leaves
//!   nothing of the batch behind). Its ops run one after another in it, with
//!   a block of versions taken for the batch at once, role ids looked up
//!   once and the statements prepared once; when one does not apply, the
//!   batch is rolled back and run again with each op inside a nested
//!   SAVEPOINT, so an op that fails leaves nothing of itself behind and the
//!   others apply. `begin`/`commit`/`rollback` wrap a whole import in one
//!   transaction for the all-or-nothing policy.
//! - **Contention**: a write takes the write lock up front (`BEGIN
//!   IMMEDIATE`), for a batch as for a whole import, and waits for it up to
//!   the busy timeout ([`DEFAULT_BUSY_TIMEOUT`], or
//!   [`SqliteStore::set_busy_timeout`]). A transaction that begins as a read
//!   and turns into a write would be refused at once by SQLite when another
//!   writer holds the lock, without waiting. Opening an existing database
//!   writes nothing: the schema is created only when it is missing.
//! - **Durability**: SQLite's defaults, a rollback journal
//!   (`journal_mode=DELETE`) with `synchronous=FULL`: once `commit` returns,
//!   the import survives a crash of the process or of the machine, and a
//!   killed import is rolled back by the next connection. WAL with
//!   `synchronous=NORMAL`, what many services run, lets readers go on
//!   beside a writer and commits with fewer syncs, but a power loss may
//!   take back the last commits; this adapter leaves that choice to the
//!   database's owner (a database already in WAL mode stays in it). The
//!   savepoints' journals are kept in memory (`temp_store=MEMORY`): they
//!   only ever undo part of a transaction that is still open, and a crash
//!   is undone by the rollback journal, a file.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::types::{FromSqlError, ToSqlOutput, Type, Value, ValueRef};
use rusqlite::{CachedStatement, Connection, OpenFlags, OptionalExtension, Row, ffi, params};
use user_import::{
    Catalog, ExistingUser, Fetch, Field, Location, Op, OpOutcome, User, UserBuilder, UserStore,
    apply_changes, normalize,
};

/// The schema. `CREATE ... IF NOT EXISTS`, so opening an existing database
/// is harmless.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id                INTEGER PRIMARY KEY,
    tenant            TEXT NOT NULL,      -- normalized tenant name
    user_id           TEXT NOT NULL,      -- as written: 'JDoe'
    first_name        TEXT,
    last_name         TEXT,
    email             TEXT,
    enabled           TEXT,               -- 'true' / 'false'
    reports_to        TEXT,
    location          TEXT,
    department_id     TEXT,
    group_name        TEXT,
    permissions       TEXT,               -- comma-separated
    sso               TEXT,
    task_notification TEXT,               -- 'OFF' / 'Email'
    display_name      TEXT,
    custom            TEXT,               -- custom attributes: a JSON object, or NULL
    locked            TEXT,               -- locked fields: comma-separated headers
    user_id_norm      TEXT NOT NULL,      -- normalize(user_id): what lookups compare
    email_norm        TEXT,
    reports_to_norm   TEXT,
    version           INTEGER NOT NULL,   -- changes on every write
    UNIQUE (tenant, user_id_norm),
    UNIQUE (tenant, email_norm)
);
CREATE INDEX IF NOT EXISTS users_by_manager ON users (tenant, reports_to_norm);

CREATE TABLE IF NOT EXISTS roles (
    id        INTEGER PRIMARY KEY,
    tenant    TEXT NOT NULL,
    name      TEXT NOT NULL,              -- as spelled when created: 'Coordinator'
    name_norm TEXT NOT NULL,
    UNIQUE (tenant, name_norm)
);

CREATE TABLE IF NOT EXISTS user_roles (
    user INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role INTEGER NOT NULL REFERENCES roles (id),
    PRIMARY KEY (user, role)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS locations (
    tenant  TEXT NOT NULL,
    name    TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '',     -- '|'-separated
    PRIMARY KEY (tenant, name)
);

-- Where versions come from.
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES ('version', 0);
";

/// The standard fields stored in columns of `users`, in the column order of
/// [`select_users_from!`], [`INSERT_USER`] and [`UPDATE_USER`]. Roles live in
/// `user_roles`.
const COLUMNS: [Field; 13] = [
    Field::UserId,
    Field::FirstName,
    Field::LastName,
    Field::Email,
    Field::Enabled,
    Field::ReportsTo,
    Field::Location,
    Field::DepartmentId,
    Field::GroupName,
    Field::Permissions,
    Field::Sso,
    Field::TaskNotification,
    Field::DisplayName,
];

/// The columns that read a user (`u`): the [`COLUMNS`], then roles (as the
/// expression given, or the user's roles by name: the form for one user;
/// users read together get theirs from [`with_roles`]), custom, locked,
/// version, row id, normalized email; up to `FROM`.
macro_rules! select_users_from {
    () => {
        select_users_from!(
            "(SELECT group_concat(r.name, '|') FROM user_roles ur JOIN roles r ON r.id = ur.role
               WHERE ur.user = u.id)"
        )
    };
    ($roles:literal) => {
        concat!(
            "
SELECT user_id, first_name, last_name, email, enabled, reports_to, location,
       department_id, group_name, permissions, sso, task_notification, display_name, ",
            $roles,
            ",
       custom, locked, version, u.id, email_norm
  FROM"
        )
    };
}

/// The users whose normalized id is in the JSON array ?2 (each once: no id
/// twice), for tenant ?1, without their roles ([`with_roles`] adds them). A
/// loop over the ids, each one indexed lookup: `IN (SELECT ...)` would
/// first build a temporary index of the list.
const SELECT_USERS_BY_ID: &str = concat!(
    select_users_from!("NULL"),
    " json_each(?2) AS ids CROSS JOIN users u
     WHERE u.tenant = ?1 AND u.user_id_norm = ids.value"
);

/// The role ids of the users whose row ids lie from ?1 to ?2, by user: one
/// range of `user_roles`' key, read in order (one lookup for the lot, not
/// one per user, for the users of a batch, who mostly lie close together).
/// The names come from [`RoleNames`], not a join per row.
const ROLES_IN_RANGE: &str = "
SELECT user, role FROM user_roles WHERE user BETWEEN ?1 AND ?2 ORDER BY user";

/// The role ids of the users whose row ids are in the JSON array ?1 (in
/// ascending order), by user: one lookup per user, for users spread over
/// the table. In the array's order (`CROSS JOIN` keeps `json_each` the
/// outer loop), which `roles_of` checks as it reads.
const ROLES_OF: &str = "
SELECT ur.user, ur.role FROM json_each(?1) AS ids CROSS JOIN user_roles ur
 WHERE ur.user = ids.value";

/// The column of [`select_users_from!`] with the normalized email (after
/// those [`read_fields`] reads).
const EMAIL_NORM: usize = COLUMNS.len() + 5;

/// ?1..?13 the [`COLUMNS`], then tenant, norms, custom, version.
const INSERT_USER: &str = "
INSERT INTO users (user_id, first_name, last_name, email, enabled, reports_to, location,
                   department_id, group_name, permissions, sso, task_notification,
                   display_name, tenant, user_id_norm, email_norm, reports_to_norm, custom,
                   version)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

/// The same parameters as [`INSERT_USER`], then the row id (?20) and the
/// version the update was planned against (?21).
const UPDATE_USER: &str = "
UPDATE users SET user_id = ?1, first_name = ?2, last_name = ?3, email = ?4, enabled = ?5,
                 reports_to = ?6, location = ?7, department_id = ?8, group_name = ?9,
                 permissions = ?10, sso = ?11, task_notification = ?12, display_name = ?13,
                 tenant = ?14, user_id_norm = ?15, email_norm = ?16, reports_to_norm = ?17,
                 custom = ?18, version = ?19
 WHERE id = ?20 AND version = ?21";

/// How long a write waits for another connection's write lock (or for its
/// readers to finish, at commit) before it fails with "database is locked".
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A user directory in one SQLite database, for any number of tenants.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> rusqlite::Result<SqliteStore> {
        SqliteStore::init(Connection::open(path)?)
    }

    /// Opens an existing database without the right to change it (for dry
    /// runs and exports). One write may still be needed: after a process
    /// was killed mid-transaction, the first reader must roll its journal
    /// back, which a read-only connection cannot; the database is then
    /// opened for that recovery, and nothing else is written.
    pub fn open_read_only(path: impl AsRef<Path>) -> rusqlite::Result<SqliteStore> {
        let path = path.as_ref();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)?;
        let probe = |c: &Connection| {
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        };
        match probe(&conn) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ReadOnly =>
            {
                drop(conn);
                let conn = Connection::open(path)?;
                conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)?;
                probe(&conn)?;
                Ok(SqliteStore { conn })
            }
            Err(e) => Err(e),
            Ok(_) => Ok(SqliteStore { conn }),
        }
    }

    /// A fresh, private database in memory (tests, dry runs).
    pub fn open_in_memory() -> rusqlite::Result<SqliteStore> {
        SqliteStore::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> rusqlite::Result<SqliteStore> {
        // Wait for another writer instead of failing at once.
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)?;
        // Per connection in SQLite: needed for ON DELETE CASCADE.
        conn.pragma_update(None, "foreign_keys", true)?;
        // The journal of a SAVEPOINT (a batch's, an op's) in memory, not in
        // a temporary file: a batch that changes pages written earlier in
        // the transaction copies them there first. The database's own
        // rollback journal, which is what survives a crash, stays a file.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Only reads when the schema is there: opening an existing database
        // takes no write lock, so it works beside another program's
        // transaction.
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'
               AND name IN ('users', 'roles', 'user_roles', 'locations', 'counters')",
            [],
            |r| r.get(0),
        )?;
        if tables < 5 {
            conn.execute_batch(SCHEMA)?;
        }
        // A database whose users table has no display_name column (made by
        // an older version of this schema) gets it.
        let has_display_name = conn
            .prepare("SELECT 1 FROM pragma_table_info('users') WHERE name = 'display_name'")?
            .exists([])?;
        if !has_display_name {
            conn.execute_batch("ALTER TABLE users ADD COLUMN display_name TEXT")?;
        }
        Ok(SqliteStore { conn })
    }

    /// How long a write waits for the lock before it fails.
    pub fn set_busy_timeout(&mut self, timeout: Duration) -> rusqlite::Result<()> {
        self.conn.busy_timeout(timeout)
    }

    /// The connection, for your own queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Adds (or replaces) a location of `tenant`. Once a tenant has locations,
    /// the import checks the `location` column against them.
    pub fn add_location(&mut self, tenant: &str, location: &Location) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO locations (tenant, name, aliases) VALUES (?1, ?2, ?3)",
            params![normalize(tenant), location.name, location.aliases.join("|")],
        )?;
        Ok(())
    }

    /// Locks a field of a user (the import will not change it). `false`
    /// when there is no such user.
    pub fn lock(&mut self, tenant: &str, user_id: &str, field: Field) -> rusqlite::Result<bool> {
        lock_fields(&self.conn, tenant, user_id, &[field])
    }
}

/// Locks `fields` of a user (adding to those locked); `false` when there
/// is no such user. Locks are not changes of the user: no new version.
fn lock_fields(
    conn: &Connection,
    tenant: &str,
    user_id: &str,
    fields: &[Field],
) -> rusqlite::Result<bool> {
    let (tenant, id) = (normalize(tenant), normalize(user_id));
    let current: Option<Option<String>> = conn
        .query_row(
            "SELECT locked FROM users WHERE tenant = ?1 AND user_id_norm = ?2",
            params![tenant, id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(current) = current else {
        return Ok(false);
    };
    let mut locked: BTreeSet<String> = current
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    locked.extend(fields.iter().map(|f| f.header().to_owned()));
    let locked = locked.into_iter().collect::<Vec<_>>().join(",");
    conn.execute(
        "UPDATE users SET locked = ?3 WHERE tenant = ?1 AND user_id_norm = ?2",
        params![tenant, id, locked],
    )?;
    Ok(true)
}

/// The users `read`, each with its roles ([`roles_of`]): the row id and
/// the user.
fn with_roles(
    conn: &Connection,
    read: Vec<ReadUser>,
) -> rusqlite::Result<Vec<(i64, ExistingUser)>> {
    let (text, lists) = roles_of(conn, &read)?;
    Ok(read
        .into_iter()
        .zip(lists)
        .map(|(user, list)| user.finish(text.get(list).filter(|r| !r.is_empty())))
        .collect())
}

/// The roles of the users `read` (each once), in their order: each user's
/// roles `|`-separated (empty for none), as a range of one string. Users whose
/// row ids lie close together (as a batch's mostly do: a file lists users
/// in about the order they were created) are read in one range; others one
/// lookup each.
fn roles_of(
    conn: &Connection,
    read: &[ReadUser],
) -> rusqlite::Result<(String, Vec<std::ops::Range<usize>>)> {
    let mut text = String::new();
    let mut lists = vec![0..0; read.len()];
    // The users by row id: the order in which their roles come.
    let mut by_row: Vec<(i64, usize)> = read.iter().enumerate().map(|(i, u)| (u.row, i)).collect();
    by_row.sort_unstable();
    let (Some(&(low, _)), Some(&(high, _))) = (by_row.first(), by_row.last()) else {
        return Ok((text, lists));
    };
    let span = u64::try_from(high.saturating_sub(low)).unwrap_or(u64::MAX);
    let mut stmt;
    let mut rows = if span <= 4 * read.len() as u64 + 64 {
        stmt = conn.prepare_cached(ROLES_IN_RANGE)?;
        stmt.query(params![low, high])?
    } else {
        let ids: Vec<i64> = by_row.iter().map(|&(row, _)| row).collect();
        stmt = conn.prepare_cached(ROLES_OF)?;
        stmt.query(params![json_list(&ids)?])?
    };
    let mut names = RoleNames::default();
    // Both queries give the rows by user, in ascending order: a cursor over
    // `by_row` follows them, and each user's roles lie end to end in `text`.
    let mut at = 0;
    let mut last = i64::MIN;
    while let Some(row) = rows.next()? {
        let user: i64 = row.get(0)?;
        if user < last {
            let order = format!("the roles of user row {user} came after those of row {last}");
            return Err(rusqlite::Error::FromSqlConversionFailure(
                0,
                Type::Integer,
                order.into(),
            ));
        }
        last = user;
        while by_row.get(at).is_some_and(|&(r, _)| r < user) {
            at += 1;
        }
        // A range holds users the batch did not ask for: skipped.
        let Some(&(_, i)) = by_row.get(at).filter(|&&(r, _)| r == user) else {
            continue;
        };
        let Some(name) = names.get(conn, row.get(1)?)? else {
            continue;
        };
        let list = &mut lists[i];
        if list.start == list.end {
            *list = text.len()..text.len();
        } else {
            text.push('|');
        }
        text.push_str(name);
        list.end = text.len();
    }
    Ok((text, lists))
}

/// Role names by role id, read as they are first met: a batch's users hold
/// a few roles many times over. A role id with no role (a role deleted
/// with foreign keys off, as the sqlite3 shell does by default) has no
/// name, and is left out of the users' roles.
#[derive(Default)]
struct RoleNames(HashMap<i64, Option<String>>);

impl RoleNames {
    fn get(&mut self, conn: &Connection, id: i64) -> rusqlite::Result<Option<&str>> {
        let name = match self.0.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                conn.prepare_cached("SELECT name FROM roles WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?,
            ),
        };
        Ok(name.as_deref())
    }
}

impl UserStore for SqliteStore {
    type Error = rusqlite::Error;

    fn catalog(&mut self, tenant: &str) -> rusqlite::Result<Catalog> {
        let tenant = normalize(tenant);
        let mut roles = self
            .conn
            .prepare_cached("SELECT name FROM roles WHERE tenant = ?1 ORDER BY name")?;
        let roles = roles
            .query_map([&tenant], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut locations = self.conn.prepare_cached(
            "SELECT name, aliases FROM locations WHERE tenant = ?1 ORDER BY name",
        )?;
        let locations = locations
            .query_map([&tenant], |r| {
                let aliases: String = r.get(1)?;
                let mut l = Location::new(r.get::<_, String>(0)?);
                for a in aliases.split('|').filter(|a| !a.is_empty()) {
                    l = l.alias(a);
                }
                Ok(l)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // Roles are always checked (and created on demand under the "create"
        // policy). Locations are checked once the tenant has any.
        // Departments and groups are not checked here: add tables like
        // `locations` if your directory has them.
        let mut catalog = Catalog::new().roles(roles);
        if !locations.is_empty() {
            catalog = catalog.locations(locations);
        }
        Ok(catalog)
    }

    fn fetch(&mut self, request: &Fetch) -> rusqlite::Result<Vec<ExistingUser>> {
        if request.is_empty() {
            return Ok(Vec::new());
        }
        // Each list goes in as one JSON array parameter (no limit on the
        // number of SQL variables). The users named by id are read whole,
        // one indexed lookup each. An email one of them holds is no one
        // else's (emails are unique), so only the other emails are looked
        // up; those users, and the reports of the managers, are found in
        // the indexes alone (row ids), and only the ones not read yet are
        // read, so a user matching several lists is one row.
        let tenant = normalize(&request.tenant);
        let mut users: Vec<(i64, ExistingUser)> = Vec::new();
        // The emails still to look up: those the users read by id hold are
        // crossed off as they come.
        let mut unheld: Strings<'_> = request.emails.iter().map(String::as_str).collect();
        if !request.user_ids.is_empty() {
            // A request may name an id twice (a row's user and another
            // row's manager): each is looked up once, in the order named.
            let mut named = Strings::default();
            named.reserve(request.user_ids.len());
            let ids: Vec<&str> = request
                .user_ids
                .iter()
                .map(String::as_str)
                .filter(|id| named.insert(id))
                .collect();
            let mut read = Vec::with_capacity(ids.len());
            let mut stmt = self.conn.prepare_cached(SELECT_USERS_BY_ID)?;
            let mut rows = stmt.query(params![tenant, json_list(&ids)?])?;
            while let Some(row) = rows.next()? {
                read.push(read_fields(row)?);
                if !unheld.is_empty()
                    && let Some(email) = row.get_ref(EMAIL_NORM)?.as_str_or_null()?
                {
                    unheld.remove(email);
                }
            }
            users.extend(with_roles(&self.conn, read)?);
        }
        let emails: Vec<&String> = request
            .emails
            .iter()
            .filter(|e| unheld.contains(e.as_str()))
            .collect();
        if emails.is_empty() && request.managers.is_empty() {
            return Ok(users.into_iter().map(|(_, u)| u).collect());
        }
        let read: HashSet<i64> = users.iter().map(|(row, _)| *row).collect();
        let others: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM users WHERE tenant = ?1
                    AND email_norm IN (SELECT value FROM json_each(?2))
                 UNION SELECT id FROM users WHERE tenant = ?1
                    AND reports_to_norm IN (SELECT value FROM json_each(?3))",
            )?
            .query_map(
                params![tenant, json_list(&emails)?, json_list(&request.managers)?],
                |r| r.get(0),
            )?
            .filter(|row| row.as_ref().map_or(true, |row| !read.contains(row)))
            .collect::<rusqlite::Result<_>>()?;
        if !others.is_empty() {
            let read = self
                .conn
                .prepare_cached(concat!(
                    select_users_from!("NULL"),
                    " users u WHERE u.tenant = ?1
                       AND u.id IN (SELECT value FROM json_each(?2))"
                ))?
                .query_map(params![tenant, json_list(&others)?], read_fields)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            users.extend(with_roles(&self.conn, read)?);
        }
        Ok(users.into_iter().map(|(_, u)| u).collect())
    }

    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<Vec<ExistingUser>> {
        // SQLite compares TEXT byte by byte, the order of Rust's `str`.
        // The roles come after the users, as for `fetch`.
        let mut stmt = self.conn.prepare_cached(concat!(
            select_users_from!("NULL"),
            " users u WHERE u.tenant = ?1 AND u.user_id_norm > ?2
              ORDER BY u.user_id_norm LIMIT ?3"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let read = stmt
            .query_map(
                params![normalize(tenant), after.unwrap_or(""), limit],
                read_fields,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let users = with_roles(&self.conn, read)?;
        Ok(users.into_iter().map(|(_, u)| u).collect())
    }

    fn count(&mut self, tenant: &str) -> rusqlite::Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM users WHERE tenant = ?1",
            [normalize(tenant)],
            |r| r.get(0),
        )?;
        Ok(n.unsigned_abs())
    }

    fn apply(&mut self, tenant: &str, ops: &[Op]) -> rusqlite::Result<Vec<OpOutcome>> {
        let tenant = normalize(tenant);
        // Outside the import's transaction the batch is a transaction of its
        // own that takes the write lock up front (and waits for it).
        let own = self.conn.is_autocommit();
        if own {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        let result = apply_batch(&mut self.conn, &tenant, ops);
        if own {
            let ended = match &result {
                Ok(_) => self.conn.execute_batch("COMMIT"),
                Err(_) => Ok(()),
            };
            if result.is_err() || ended.is_err() {
                // Nothing of the batch stays; the error says why.
                let _ = self.conn.execute_batch("ROLLBACK");
                ended?;
            }
        }
        result
    }

    fn begin(&mut self) -> rusqlite::Result<bool> {
        if !self.conn.is_autocommit() {
            // The caller runs a transaction of their own; it is theirs to end.
            return Ok(false);
        }
        // IMMEDIATE: take the write lock now, not half-way through the import.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(true)
    }

    fn commit(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("COMMIT")
    }

    fn rollback(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("ROLLBACK")
    }
}

/// Applies a batch inside a SAVEPOINT. First the fast way: every op in the
/// one savepoint, versions taken as one block, role ids looked up once. If
/// every op applies, that is the batch. If one does not (a conflict, a
/// taken email, a role gone) the batch is rolled back and applied again
/// with each op inside a nested savepoint, to find the ops that fail and
/// leave nothing of them behind. Any `?` drops the savepoint, which rolls
/// the whole batch back: an `Err` means none of these ops took effect.
fn apply_batch(
    conn: &mut Connection,
    tenant: &str,
    ops: &[Op],
) -> rusqlite::Result<Vec<OpOutcome>> {
    {
        let batch = conn.savepoint()?;
        let writes = ops
            .iter()
            .filter(|op| matches!(op, Op::Create { .. } | Op::Update { .. }))
            .count();
        let mut ctx = Batch::new(&batch, writes)?;
        let mut all = true;
        for op in ops {
            if !apply_op(&batch, tenant, op, &mut ctx)?.is_applied() {
                all = false;
                break;
            }
        }
        if all {
            drop(ctx);
            batch.commit()?;
            return Ok(vec![OpOutcome::Applied; ops.len()]);
        }
        // Dropped: rolled back, versions and all.
    }
    let batch = conn.savepoint()?;
    let mut ctx = Batch::new(&batch, 0)?;
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        // Each op in a savepoint of its own, in SQL, so that the batch's
        // statements stay prepared across them. An `Err` drops the batch's
        // savepoint, and this one with it.
        batch.execute_batch("SAVEPOINT user_import_op")?;
        let outcome = apply_op(&batch, tenant, op, &mut ctx)?;
        if outcome.is_applied() {
            batch.execute_batch("RELEASE user_import_op")?;
        } else {
            // A failed op leaves nothing behind, and the role ids it may
            // have looked up are forgotten with it.
            batch.execute_batch("ROLLBACK TO user_import_op; RELEASE user_import_op")?;
            ctx.roles.clear();
        }
        outcomes.push(outcome);
    }
    drop(ctx);
    batch.commit()?;
    Ok(outcomes)
}

/// What one batch's ops share: a block of versions taken from the counter
/// at once, the role ids already looked up, and the statements they run
/// most, prepared once for the batch.
struct Batch<'c> {
    /// The next version of the block, and the end of the block.
    versions: (i64, i64),
    /// Role ids by normalized name.
    roles: std::collections::HashMap<String, i64>,
    /// The largest user row id `user_roles` names as the batch begins. A
    /// user created with a larger row id has no roles left behind to clear
    /// (see [`set_roles`]).
    roles_up_to: i64,
    insert_user: CachedStatement<'c>,
    update_user: CachedStatement<'c>,
    clear_roles: CachedStatement<'c>,
    add_role: CachedStatement<'c>,
}

impl<'c> Batch<'c> {
    /// Takes `n` versions from the counter (none: one at a time).
    fn new(conn: &'c Connection, n: usize) -> rusqlite::Result<Batch<'c>> {
        let versions = if n == 0 {
            (0, 0)
        } else {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            let last: i64 = conn
                .prepare_cached(
                    "UPDATE counters SET value = value + ?1 WHERE name = 'version' RETURNING value",
                )?
                .query_row([n], |r| r.get(0))?;
            (last - n + 1, last + 1)
        };
        let roles_up_to = conn
            .prepare_cached("SELECT coalesce(max(user), 0) FROM user_roles")?
            .query_row([], |r| r.get(0))?;
        Ok(Batch {
            versions,
            roles: std::collections::HashMap::new(),
            roles_up_to,
            insert_user: conn.prepare_cached(INSERT_USER)?,
            update_user: conn.prepare_cached(UPDATE_USER)?,
            clear_roles: conn.prepare_cached("DELETE FROM user_roles WHERE user = ?1")?,
            add_role: conn
                .prepare_cached("INSERT OR IGNORE INTO user_roles (user, role) VALUES (?1, ?2)")?,
        })
    }

    /// A new version: from the block while it lasts, else the counter's next.
    fn version(&mut self, conn: &Connection) -> rusqlite::Result<i64> {
        if self.versions.0 < self.versions.1 {
            self.versions.0 += 1;
            return Ok(self.versions.0 - 1);
        }
        next_version(conn)
    }

    /// The id of the role whose normalized name is `norm`, if it exists.
    fn role(
        &mut self,
        conn: &Connection,
        tenant: &str,
        norm: &str,
    ) -> rusqlite::Result<Option<i64>> {
        if let Some(&id) = self.roles.get(norm) {
            return Ok(Some(id));
        }
        let id: Option<i64> = conn
            .prepare_cached("SELECT id FROM roles WHERE tenant = ?1 AND name_norm = ?2")?
            .query_row(params![tenant, norm], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            self.roles.insert(norm.to_owned(), id);
        }
        Ok(id)
    }
}

/// Performs one op. `Ok` with a non-applied outcome is a failure of this op
/// alone; `Err` is a database failure (the caller rolls the batch back).
fn apply_op(
    conn: &Connection,
    tenant: &str,
    op: &Op,
    ctx: &mut Batch<'_>,
) -> rusqlite::Result<OpOutcome> {
    match op {
        Op::CreateRole { name } => {
            let created = conn
                .prepare_cached(
                    "INSERT INTO roles (tenant, name, name_norm) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant, name_norm) DO NOTHING",
                )?
                .execute(params![tenant, name, normalize(name)])?;
            // A role someone created since the plan was made is theirs (an
            // undo must not delete it).
            Ok(if created == 0 {
                OpOutcome::AlreadyExists
            } else {
                OpOutcome::Applied
            })
        }
        Op::DeleteRole { name } => {
            // Only a role no user holds (an undo takes back the roles its
            // import created).
            let role: Option<i64> = conn
                .prepare_cached("SELECT id FROM roles WHERE tenant = ?1 AND name_norm = ?2")?
                .query_row(params![tenant, normalize(name)], |r| r.get(0))
                .optional()?;
            let Some(role) = role else {
                return Ok(OpOutcome::NotFound);
            };
            let held: bool = conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM user_roles WHERE role = ?1)")?
                .query_row(params![role], |r| r.get(0))?;
            if held {
                return Ok(OpOutcome::Conflict);
            }
            conn.prepare_cached("DELETE FROM roles WHERE id = ?1")?
                .execute(params![role])?;
            Ok(OpOutcome::Applied)
        }
        Op::Create { user, locked, .. } => {
            let Some(id) = user.user_id() else {
                return Ok(OpOutcome::Failed("a user to create needs a user id".into()));
            };
            let mut values = user_values(tenant, user)?;
            values.push(ToSqlOutput::Owned(Value::Integer(ctx.version(conn)?)));
            match ctx.insert_user.execute(rusqlite::params_from_iter(values)) {
                Ok(_) => {}
                // The user id or the email is taken in this tenant.
                Err(e) if is_unique_violation(&e) => return Ok(OpOutcome::AlreadyExists),
                Err(e) => return Err(e),
            }
            let row = conn.last_insert_rowid();
            let outcome = set_roles(conn, tenant, row, user, ctx, true)?;
            // The fields a deleted user had locked (an undo creating them
            // again).
            if outcome.is_applied() && !locked.is_empty() {
                lock_fields(conn, tenant, id, locked)?;
            }
            Ok(outcome)
        }
        Op::Update {
            user_id,
            version,
            changes,
            ..
        } => {
            let Some((row, current)) = load(conn, tenant, &normalize(user_id))? else {
                return Ok(OpOutcome::NotFound);
            };
            if current.version != *version {
                return Ok(OpOutcome::Conflict);
            }
            // Rewrite the whole record: the current user with the changes applied.
            let updated = apply_changes(&current.user, changes);
            if updated.user_id().is_none() {
                return Ok(OpOutcome::Failed("a user needs a user id".into()));
            }
            let mut values = user_values(tenant, &updated)?;
            values.extend(
                [ctx.version(conn)?, row, to_sql_version(current.version)]
                    .map(|n| ToSqlOutput::Owned(Value::Integer(n))),
            );
            match ctx.update_user.execute(rusqlite::params_from_iter(values)) {
                Ok(1) => {}
                Ok(_) => return Ok(OpOutcome::Conflict),
                Err(e) if is_unique_violation(&e) => {
                    return Ok(OpOutcome::Failed(
                        "the user id or email is used by another user".into(),
                    ));
                }
                Err(e) => return Err(e),
            }
            set_roles(conn, tenant, row, &updated, ctx, false)
        }
        Op::Delete {
            user_id, version, ..
        } => {
            let id = normalize(user_id);
            // Conditional on the version; `user_roles` rows go by ON DELETE CASCADE.
            let deleted = conn
                .prepare_cached(
                    "DELETE FROM users WHERE tenant = ?1 AND user_id_norm = ?2 AND version = ?3",
                )?
                .execute(params![tenant, id, to_sql_version(*version)])?;
            if deleted == 1 {
                Ok(OpOutcome::Applied)
            } else if load(conn, tenant, &id)?.is_some() {
                Ok(OpOutcome::Conflict)
            } else {
                Ok(OpOutcome::NotFound)
            }
        }
        // `Op` is non-exhaustive: fail an op this adapter does not know
        // (from a newer library) rather than skip it silently.
        _ => Ok(OpOutcome::Failed(
            "operation not supported by this store".into(),
        )),
    }
}

/// The row id and state of the user whose normalized id is `id`.
fn load(
    conn: &Connection,
    tenant: &str,
    id: &str,
) -> rusqlite::Result<Option<(i64, ExistingUser)>> {
    const SQL: &str = concat!(
        select_users_from!(),
        " users u WHERE u.tenant = ?1 AND u.user_id_norm = ?2"
    );
    conn.prepare_cached(SQL)?
        .query_row(params![tenant, id], read_user)
        .optional()
}

/// Gives the user exactly the roles it names. Every role must exist in the
/// tenant (the plan creates missing ones first, with `Op::CreateRole`).
fn set_roles(
    conn: &Connection,
    tenant: &str,
    row: i64,
    user: &User,
    ctx: &mut Batch<'_>,
    created: bool,
) -> rusqlite::Result<OpOutcome> {
    // A user just created too may find roles there: its row id may be a
    // deleted user's, and a delete made with foreign keys off (the sqlite3
    // shell's default) leaves that user's roles behind. Not when its row id
    // is past every one `user_roles` named as the batch began.
    if !created || row <= ctx.roles_up_to {
        ctx.clear_roles.execute([row])?;
    }
    // A user holds a few roles: a list is enough to skip one named twice.
    let mut seen: Vec<i64> = Vec::new();
    for role in user.roles() {
        match ctx.role(conn, tenant, &normalize(role))? {
            Some(id) if seen.contains(&id) => {}
            Some(id) => {
                ctx.add_role.execute(params![row, id])?;
                seen.push(id);
            }
            None => return Ok(OpOutcome::Failed(format!("role {role:?} does not exist"))),
        }
    }
    Ok(OpOutcome::Applied)
}

/// A new version: the next number of the counter, never reused.
fn next_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "UPDATE counters SET value = value + 1 WHERE name = 'version' RETURNING value",
    )?
    .query_row([], |r| r.get(0))
}

/// Versions are `u64` in the trait and INTEGER (i64) in SQLite. This store
/// only hands out positive ones; a larger number (from a plan made against
/// some other store) matches no row, so it gives `Conflict` or `NotFound`.
fn to_sql_version(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(-1)
}

/// The parameters ?1..?18 of [`INSERT_USER`] / [`UPDATE_USER`] for `user`:
/// its values borrowed, the normalized keys computed.
fn user_values<'a>(tenant: &'a str, user: &'a User) -> rusqlite::Result<Vec<ToSqlOutput<'a>>> {
    let borrowed = |v: Option<&'a str>| {
        ToSqlOutput::Borrowed(v.map_or(ValueRef::Null, |v| ValueRef::Text(v.as_bytes())))
    };
    let owned = |v: Option<String>| ToSqlOutput::Owned(v.map_or(Value::Null, Value::Text));
    let mut values: Vec<ToSqlOutput<'a>> = Vec::with_capacity(COLUMNS.len() + 8);
    values.extend(COLUMNS.iter().map(|&f| borrowed(user.get(f))));
    let custom: BTreeMap<&str, &str> = user.customs().collect();
    let custom = if custom.is_empty() {
        None
    } else {
        Some(
            serde_json::to_string(&custom)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
        )
    };
    values.extend([
        borrowed(Some(tenant)),
        owned(user.user_id().map(normalize)),
        owned(user.email().map(normalize)),
        owned(
            user.get(Field::ReportsTo)
                .filter(|m| !m.is_empty())
                .map(normalize),
        ),
        owned(custom),
    ]);
    Ok(values)
}

/// Reads a row of [`select_users_from!`] with roles: the row id and the user.
fn read_user(row: &Row<'_>) -> rusqlite::Result<(i64, ExistingUser)> {
    let roles = text(row, ROLES)?;
    Ok(read_fields(row)?.finish(roles))
}

/// The columns after the [`COLUMNS`] in [`select_users_from!`].
const ROLES: usize = COLUMNS.len();
const CUSTOM: usize = ROLES + 1;
const LOCKED: usize = ROLES + 2;
const VERSION: usize = ROLES + 3;
const ROW_ID: usize = ROLES + 4;
const _: () = assert!(EMAIL_NORM == ROW_ID + 1);

/// A user read from a row of [`select_users_from!`] but for the roles.
struct ReadUser {
    row: i64,
    builder: UserBuilder,
    version: u64,
    locked: Option<String>,
}

/// Reads a row of [`select_users_from!`] but for its roles.
fn read_fields(row: &Row<'_>) -> rusqlite::Result<ReadUser> {
    let mut b = User::builder();
    for (i, &field) in COLUMNS.iter().enumerate() {
        if let Some(v) = text(row, i)? {
            b.put(field, v);
        }
    }
    if let Some(json) = text(row, CUSTOM)? {
        let custom: BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(CUSTOM, Type::Text, e.into()))?;
        for (name, value) in custom {
            b.put_custom(name, &value);
        }
    }
    let version: i64 = row.get(VERSION)?;
    let version = u64::try_from(version)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(VERSION, Type::Integer, e.into()))?;
    Ok(ReadUser {
        row: row.get(ROW_ID)?,
        builder: b,
        version,
        locked: row.get(LOCKED)?,
    })
}

impl ReadUser {
    /// The row id and the user, with `roles` (`|`-separated).
    fn finish(mut self, roles: Option<&str>) -> (i64, ExistingUser) {
        if let Some(roles) = roles {
            self.builder.put(Field::Roles, roles);
        }
        let mut user = ExistingUser::new(self.builder.build(), self.version);
        for field in self
            .locked
            .iter()
            .flat_map(|l| l.split(','))
            .filter_map(Field::from_header)
        {
            user = user.lock(field);
        }
        (self.row, user)
    }
}

/// Column `i` of `row` as text, as SQLite holds it (no `String` per
/// column); `None` for NULL.
fn text<'r>(row: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    let value = row.get_ref(i)?;
    value.as_str_or_null().map_err(|e| match e {
        FromSqlError::InvalidType => rusqlite::Error::InvalidColumnType(
            i,
            row.as_ref().column_name(i).unwrap_or_default().to_owned(),
            value.data_type(),
        ),
        e => rusqlite::Error::FromSqlConversionFailure(i, Type::Text, e.into()),
    })
}

/// A set of borrowed strings, hashed for speed (a fetch makes one or two a
/// batch).
type Strings<'a> = HashSet<&'a str, foldhash::fast::RandomState>;

/// A list of values as one JSON array parameter, for `json_each`.
fn json_list(values: &[impl serde::Serialize]) -> rusqlite::Result<String> {
    serde_json::to_string(values).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_extended_error_code() == Some(ffi::SQLITE_CONSTRAINT_UNIQUE)
}
