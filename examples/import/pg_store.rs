//! `PgStore`: an `AsyncUserStore` over PostgreSQL (sqlx, on tokio), written
//! as the model async adapter to copy for your own server database.
//!
//! How it keeps the trait's contract (see `UserStore` in `src/store.rs`):
//!
//! - **Matching**: each user row keeps, beside the values as written, the
//!   values the library matches on, normalized with `user_import::normalize`
//!   (`user_id_norm`, `email_norm`, `reports_to_norm`), in `COLLATE "C"`
//!   columns: equality and order are byte for byte, the order of Rust's
//!   `str`, whatever the database's locale. Normalizing in Rust, not with
//!   SQL's `lower()`, keeps one policy for the file and the directory.
//! - **Uniqueness**: `UNIQUE (tenant, user_id_norm)` and
//!   `UNIQUE (tenant, email_norm)`; a create that breaks one is
//!   `AlreadyExists`.
//! - **Tenants**: every table has a `tenant` column and every query filters
//!   on it.
//! - **Versions**: every create or update takes `nextval('user_versions')`.
//!   A sequence never hands a number out twice, not even when the
//!   transaction that took it rolls back. Updates and deletes are
//!   conditional on the version they were planned against (optimistic
//!   concurrency).
//! - **Batched reads**: `fetch` is one query whatever the number of keys:
//!   each list is one array parameter (`= ANY($2)`).
//! - **Set-based writes**: a batch is written as a few statements, not one
//!   per user. Each run of consecutive ops of one kind is one statement
//!   over `UNNEST` of array parameters (`INSERT … SELECT … FROM UNNEST(…)
//!   ON CONFLICT DO NOTHING RETURNING …`, `UPDATE … FROM UNNEST(…)`,
//!   `DELETE … USING UNNEST(…)`), plus one for the runs' roles. The rows
//!   each statement touched say whether every op applied. When one did not
//!   (a conflict, a taken email, a role gone), the batch is rolled back to
//!   its SAVEPOINT and applied again op by op, each inside a nested
//!   savepoint, to give each op its own outcome and leave nothing of a
//!   failed op behind. The one-by-one pass runs the very same statements,
//!   with runs of one op.
//! - **Transactions and isolation**: `begin`/`commit`/`rollback` wrap a whole
//!   import in one transaction for the all-or-nothing policy; otherwise each
//!   `apply` is a transaction of its own. The isolation level is READ
//!   COMMITTED unless set otherwise ([`PgStore::set_isolation`]). That is
//!   enough here: every write is conditional on the version the plan read,
//!   and PostgreSQL checks that condition against the newest committed row
//!   after waiting for a concurrent writer of the same row, so an update is
//!   never lost, it is a `Conflict`. Under REPEATABLE READ or SERIALIZABLE,
//!   PostgreSQL fails such a write with a serialization failure (SQLSTATE
//!   40001), as it fails one of two deadlocked transactions (40P01) under
//!   any level: an `apply` in a transaction of its own is then rolled back
//!   and run again (up to [`RETRIES`] times, then reported as an error);
//!   inside an import's transaction the error ends the import, which the
//!   library rolls back whole.
//! - **Waiting**: a write waits for another transaction's row lock up to the
//!   lock timeout ([`DEFAULT_LOCK_TIMEOUT`], or [`PgStore::set_lock_timeout`])
//!   and then fails (SQLSTATE 55P03), rolled back.
//! - **Durability**: the server's own settings. A commit returns once
//!   PostgreSQL has it in its write-ahead log (`synchronous_commit=on`, the
//!   default); a connection lost before the commit leaves nothing of the
//!   transaction behind. A connection lost during the `COMMIT` itself is an
//!   error although the server may have committed: the outcome is then
//!   unknown until the directory is read again (a re-run converges).
//! - **Savepoints**: the op-by-op pass gives each op a savepoint and
//!   releases it at once. Inside one long all-or-nothing transaction many
//!   failed ops still mean many subtransactions, which PostgreSQL tracks at
//!   a cost past 64; the fast path needs none per op.
//! - **The connection's transactions are the store's**: `begin`, `commit`
//!   and `apply` issue their own `BEGIN`/`COMMIT`; do not leave a
//!   transaction of your own open on [`PgStore::connection`] across them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use user_import::{
    AsyncUserStore, Attribute, Catalog, ExistingUser, Fetch, Field, Location, Op, OpOutcome, User,
    apply_changes, normalize,
};

/// The schema, created when the database lacks it (`IF NOT EXISTS`, under an
/// advisory lock, so two imports starting at once do not race).
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant            text NOT NULL,          -- normalized tenant name
    user_id           text NOT NULL,          -- as written: 'JDoe'
    first_name        text,
    last_name         text,
    email             text,
    enabled           text,                   -- 'true' / 'false'
    reports_to        text,
    location          text,
    department_id     text,
    group_name        text,
    permissions       text,                   -- comma-separated
    sso               text,
    task_notification text,                   -- 'OFF' / 'Email'
    display_name      text,
    custom            jsonb,                  -- custom attributes, or NULL
    locked            text[],                 -- locked fields, by header
    user_id_norm      text COLLATE "C" NOT NULL,  -- normalize(user_id): what lookups compare
    email_norm        text COLLATE "C",
    reports_to_norm   text COLLATE "C",
    version           bigint NOT NULL,        -- changes on every write
    UNIQUE (tenant, user_id_norm),
    UNIQUE (tenant, email_norm)
);
CREATE INDEX IF NOT EXISTS users_by_manager ON users (tenant, reports_to_norm);

CREATE TABLE IF NOT EXISTS roles (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant    text NOT NULL,
    name      text NOT NULL,                  -- as spelled when created: 'Coordinator'
    name_norm text COLLATE "C" NOT NULL,
    UNIQUE (tenant, name_norm)
);

CREATE TABLE IF NOT EXISTS user_roles (
    user_ref bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     bigint NOT NULL REFERENCES roles (id),
    ord      integer NOT NULL,                -- the role's place in the user's list
    PRIMARY KEY (user_ref, role)
);
CREATE INDEX IF NOT EXISTS user_roles_by_role ON user_roles (role);

CREATE TABLE IF NOT EXISTS locations (
    tenant  text NOT NULL,
    name    text NOT NULL,
    aliases text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, name)
);

-- Where versions come from.
CREATE SEQUENCE IF NOT EXISTS user_versions;
"#;

/// The standard fields stored in columns of `users`, in the column order of
/// [`SELECT_USERS`] and of the write statements. Roles live in `user_roles`.
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

/// Reads users: the [`COLUMNS`], then roles, custom, locked, version, id.
/// Callers append the `WHERE` clause.
const SELECT_USERS: &str = "
SELECT u.user_id, u.first_name, u.last_name, u.email, u.enabled, u.reports_to, u.location,
       u.department_id, u.group_name, u.permissions, u.sso, u.task_notification,
       u.display_name,
       (SELECT array_agg(r.name ORDER BY ur.ord) FROM user_roles ur
          JOIN roles r ON r.id = ur.role WHERE ur.user_ref = u.id),
       u.custom::text, u.locked, u.version, u.id
  FROM users u";

/// Creates users: $1 the tenant, $2..$19 one array per column (the
/// [`COLUMNS`], custom as JSON text, locked as comma-separated headers,
/// then the three normalized columns). Taken ids and emails are skipped
/// (`ON CONFLICT DO NOTHING`): the rows returned are the users created.
const INSERT_USERS: &str = r#"
INSERT INTO users (tenant, user_id, first_name, last_name, email, enabled, reports_to, location,
                   department_id, group_name, permissions, sso, task_notification, display_name,
                   custom, locked, user_id_norm, email_norm, reports_to_norm, version)
SELECT $1, v.user_id, v.first_name, v.last_name, v.email, v.enabled, v.reports_to, v.location,
       v.department_id, v.group_name, v.permissions, v.sso, v.task_notification, v.display_name,
       v.custom::jsonb, string_to_array(v.locked, ','), v.user_id_norm, v.email_norm,
       v.reports_to_norm, nextval('user_versions')
  FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
              $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[])
       WITH ORDINALITY AS v(user_id, first_name, last_name, email, enabled, reports_to,
                            location, department_id, group_name, permissions, sso,
                            task_notification, display_name, custom, locked, user_id_norm,
                            email_norm, reports_to_norm, n)
 ORDER BY v.n
ON CONFLICT DO NOTHING
RETURNING id, user_id_norm"#;

/// Rewrites users: $1 their row ids, $2 the versions the updates were
/// planned against, $3..$19 the new values as in [`INSERT_USERS`] (without
/// locked). A user no longer at its planned version is left alone.
const UPDATE_USERS: &str = "
UPDATE users u
   SET user_id = v.user_id, first_name = v.first_name, last_name = v.last_name,
       email = v.email, enabled = v.enabled, reports_to = v.reports_to,
       location = v.location, department_id = v.department_id, group_name = v.group_name,
       permissions = v.permissions, sso = v.sso, task_notification = v.task_notification,
       display_name = v.display_name, custom = v.custom::jsonb,
       user_id_norm = v.user_id_norm, email_norm = v.email_norm,
       reports_to_norm = v.reports_to_norm, version = nextval('user_versions')
  FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
              $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
              $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
              $19::text[])
       AS v(id, planned, user_id, first_name, last_name, email, enabled, reports_to,
            location, department_id, group_name, permissions, sso, task_notification,
            display_name, custom, user_id_norm, email_norm, reports_to_norm)
 WHERE u.id = v.id AND u.version = v.planned";

/// Gives users their roles: $1 the tenant, $2 user row ids, $3 normalized
/// role names, $4 places. A role the tenant lacks adds no row.
const INSERT_USER_ROLES: &str = "
INSERT INTO user_roles (user_ref, role, ord)
SELECT v.user_ref, r.id, v.ord
  FROM UNNEST($2::bigint[], $3::text[], $4::integer[]) AS v(user_ref, name_norm, ord)
  JOIN roles r ON r.tenant = $1 AND r.name_norm = v.name_norm";

/// How long a write waits for another transaction's row lock before it
/// fails.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times an `apply` in a transaction of its own is run again after
/// a serialization failure or a deadlock.
pub const RETRIES: u32 = 3;

/// The isolation level of the store's transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// PostgreSQL's default; see the module's notes for why it suffices.
    ReadCommitted,
    /// Snapshot isolation: a write to a row changed since the snapshot is a
    /// serialization failure.
    RepeatableRead,
    /// Serializable.
    Serializable,
}

impl Isolation {
    fn begin(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
            Isolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// A user directory in one PostgreSQL database, for any number of tenants.
pub struct PgStore {
    conn: PgConnection,
    /// Inside an import's transaction (`begin` was called).
    in_transaction: bool,
    isolation: Isolation,
    /// Opened read-only on a database without the schema: an empty
    /// directory.
    empty: bool,
    /// Batches run again after a serialization failure or a deadlock.
    retried: u64,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`), creating the
    /// schema when it is missing.
    pub async fn connect(url: &str) -> Result<PgStore, sqlx::Error> {
        PgStore::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// [`PgStore::connect`] with options of your own (search path, TLS,
    /// application name).
    pub async fn connect_with(options: PgConnectOptions) -> Result<PgStore, sqlx::Error> {
        let mut store = PgStore::open(options).await?;
        if !store.has_schema().await? {
            let mut tx = store.conn.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(8061776)")
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(store)
    }

    /// Connects without the right to change anything (dry runs, exports):
    /// every transaction is read-only, and the schema is not created. A
    /// database without it is an empty directory.
    pub async fn connect_read_only(url: &str) -> Result<PgStore, sqlx::Error> {
        let options =
            PgConnectOptions::from_str(url)?.options([("default_transaction_read_only", "on")]);
        let mut store = PgStore::open(options).await?;
        store.empty = !store.has_schema().await?;
        Ok(store)
    }

    async fn open(options: PgConnectOptions) -> Result<PgStore, sqlx::Error> {
        let options = if options.get_application_name().is_none() {
            options.application_name("user-import")
        } else {
            options
        };
        let conn = PgConnection::connect_with(&options).await?;
        let mut store = PgStore {
            conn,
            in_transaction: false,
            isolation: Isolation::ReadCommitted,
            empty: false,
            retried: 0,
        };
        store.set_lock_timeout(DEFAULT_LOCK_TIMEOUT).await?;
        Ok(store)
    }

    async fn has_schema(&mut self) -> Result<bool, sqlx::Error> {
        // The last object SCHEMA creates.
        sqlx::query_scalar("SELECT to_regclass('user_versions') IS NOT NULL")
            .fetch_one(&mut self.conn)
            .await
    }

    /// How long a write waits for another transaction's row lock.
    pub async fn set_lock_timeout(&mut self, timeout: Duration) -> Result<(), sqlx::Error> {
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
        sqlx::query(AssertSqlSafe(format!("SET lock_timeout = {ms}")))
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// The isolation level of the transactions the store begins.
    pub fn set_isolation(&mut self, isolation: Isolation) {
        self.isolation = isolation;
    }

    /// How many batches were run again after a serialization failure or a
    /// deadlock.
    pub fn retried(&self) -> u64 {
        self.retried
    }

    /// The connection, for your own queries.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The server's id for this connection (`pg_backend_pid()`).
    pub async fn backend_pid(&mut self) -> Result<i32, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut self.conn)
            .await
    }

    /// Adds (or replaces) a location of `tenant`. Once a tenant has locations,
    /// the import checks the `location` column against them.
    pub async fn add_location(
        &mut self,
        tenant: &str,
        location: &Location,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO locations (tenant, name, aliases) VALUES ($1, $2, $3)
             ON CONFLICT (tenant, name) DO UPDATE SET aliases = EXCLUDED.aliases",
        )
        .bind(normalize(tenant))
        .bind(&location.name)
        .bind(&location.aliases)
        .execute(&mut self.conn)
        .await?;
        Ok(())
    }

    /// Locks a field of a user (the import will not change it). `false`
    /// when there is no such user. A lock is not a change of the user: no
    /// new version.
    pub async fn lock(
        &mut self,
        tenant: &str,
        user_id: &str,
        field: Field,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE users SET locked = (SELECT array_agg(DISTINCT f ORDER BY f)
                 FROM unnest(array_append(coalesce(locked, '{}'), $3)) AS f)
              WHERE tenant = $1 AND user_id_norm = $2",
        )
        .bind(normalize(tenant))
        .bind(normalize(user_id))
        .bind(field.header())
        .execute(&mut self.conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Runs `sql` (no result) on the connection.
    async fn run(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sql).execute(&mut self.conn).await?;
        Ok(())
    }

    /// One batch, in a transaction of its own, run again after a
    /// serialization failure or a deadlock.
    async fn apply_alone(
        &mut self,
        tenant: &str,
        ops: &[Op],
    ) -> Result<Vec<OpOutcome>, sqlx::Error> {
        let mut attempt = 0;
        loop {
            self.run(self.isolation.begin()).await?;
            let result = match apply_batch(&mut self.conn, tenant, ops).await {
                Ok(outcomes) => self.run("COMMIT").await.map(|()| outcomes),
                Err(e) => Err(e),
            };
            match result {
                Ok(outcomes) => return Ok(outcomes),
                Err(e) => {
                    // Nothing of the batch stays (a failed COMMIT has
                    // already ended the transaction: this is then a no-op).
                    let _ = self.run("ROLLBACK").await;
                    if attempt < RETRIES && is_retryable(&e) {
                        attempt += 1;
                        self.retried += 1;
                        tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }
}

impl AsyncUserStore for PgStore {
    type Error = sqlx::Error;

    async fn catalog(&mut self, tenant: &str) -> Result<Catalog, sqlx::Error> {
        if self.empty {
            return Ok(Catalog::new().roles(Vec::<String>::new()));
        }
        let tenant = normalize(tenant);
        let roles: Vec<String> =
            sqlx::query_scalar("SELECT name FROM roles WHERE tenant = $1 ORDER BY name")
                .bind(&tenant)
                .fetch_all(&mut self.conn)
                .await?;
        let locations =
            sqlx::query("SELECT name, aliases FROM locations WHERE tenant = $1 ORDER BY name")
                .bind(&tenant)
                .fetch_all(&mut self.conn)
                .await?
                .into_iter()
                .map(|r| {
                    let mut l = Location::new(r.try_get::<String, _>(0)?);
                    for a in r.try_get::<Vec<String>, _>(1)? {
                        l = l.alias(a);
                    }
                    Ok(l)
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
        // Roles are always checked (and created on demand under the "create"
        // policy). Locations are checked once the tenant has any.
        let mut catalog = Catalog::new().roles(roles);
        if !locations.is_empty() {
            catalog = catalog.locations(locations);
        }
        Ok(catalog)
    }

    async fn fetch(&mut self, request: &Fetch) -> Result<Vec<ExistingUser>, sqlx::Error> {
        if request.is_empty() || self.empty {
            return Ok(Vec::new());
        }
        // One round trip however many keys: three indexed lookups joined by
        // UNION (an `OR` of the three would scan the tenant), so a user
        // matching on several lists is still one row.
        let sql = format!(
            "{SELECT_USERS} WHERE u.id IN (
                SELECT id FROM users WHERE tenant = $1 AND user_id_norm = ANY($2)
                UNION SELECT id FROM users WHERE tenant = $1 AND email_norm = ANY($3)
                UNION SELECT id FROM users WHERE tenant = $1 AND reports_to_norm = ANY($4))"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(normalize(&request.tenant))
            .bind(&request.user_ids)
            .bind(&request.emails)
            .bind(&request.managers)
            .fetch_all(&mut self.conn)
            .await?;
        rows.iter().map(|r| read_user(r).map(|(_, u)| u)).collect()
    }

    async fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ExistingUser>, sqlx::Error> {
        if self.empty {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{SELECT_USERS} WHERE u.tenant = $1 AND u.user_id_norm > $2
              ORDER BY u.user_id_norm LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(normalize(tenant))
            .bind(after.unwrap_or(""))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut self.conn)
            .await?;
        rows.iter().map(|r| read_user(r).map(|(_, u)| u)).collect()
    }

    async fn count(&mut self, tenant: &str) -> Result<u64, sqlx::Error> {
        if self.empty {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE tenant = $1")
            .bind(normalize(tenant))
            .fetch_one(&mut self.conn)
            .await?;
        Ok(n.unsigned_abs())
    }

    async fn apply(&mut self, tenant: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, sqlx::Error> {
        let tenant = normalize(tenant);
        if !self.in_transaction {
            return self.apply_alone(&tenant, ops).await;
        }
        // Inside the import's transaction: a failed batch is rolled back to
        // its savepoint (apply_batch does), and the error ends the import.
        apply_batch(&mut self.conn, &tenant, ops).await
    }

    async fn begin(&mut self) -> Result<bool, sqlx::Error> {
        self.run(self.isolation.begin()).await?;
        self.in_transaction = true;
        Ok(true)
    }

    async fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.in_transaction = false;
        self.run("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), sqlx::Error> {
        self.in_transaction = false;
        self.run("ROLLBACK").await
    }
}

/// Whether running the transaction again may succeed: a serialization
/// failure or a deadlock.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    sqlstate(e).is_some_and(|c| c == "40001" || c == "40P01")
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    sqlstate(e).is_some_and(|c| c == "23505")
}

/// A role deleted by another transaction after the roles were looked up.
fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    sqlstate(e).is_some_and(|c| c == "23503")
}

/// Applies a batch inside a SAVEPOINT: first set-based, run by run; if an
/// op did not apply, again op by op, each in a nested savepoint. An `Err`
/// rolls the savepoint back: none of these ops took effect.
async fn apply_batch(
    conn: &mut PgConnection,
    tenant: &str,
    ops: &[Op],
) -> Result<Vec<OpOutcome>, sqlx::Error> {
    exec(conn, "SAVEPOINT batch").await?;
    let result = apply_in_savepoint(conn, tenant, ops).await;
    match result {
        Ok(outcomes) => {
            exec(conn, "RELEASE SAVEPOINT batch").await?;
            Ok(outcomes)
        }
        Err(e) => {
            // On a lost connection this fails too; the server then rolls
            // the whole transaction back.
            let _ = exec(conn, "ROLLBACK TO SAVEPOINT batch").await;
            Err(e)
        }
    }
}

async fn apply_in_savepoint(
    conn: &mut PgConnection,
    tenant: &str,
    ops: &[Op],
) -> Result<Vec<OpOutcome>, sqlx::Error> {
    // The fast way: each run of consecutive ops of one kind as one statement.
    let mut all = true;
    for run in runs(ops) {
        match apply_run(conn, tenant, run).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                all = false;
                break;
            }
            Err(e) if is_unique_violation(&e) || is_foreign_key_violation(&e) => {
                all = false;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    if all {
        return Ok(vec![OpOutcome::Applied; ops.len()]);
    }
    // Op by op, to find the ops that fail.
    exec(conn, "ROLLBACK TO SAVEPOINT batch").await?;
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        exec(conn, "SAVEPOINT op").await?;
        let outcome = match apply_run(conn, tenant, std::slice::from_ref(op)).await {
            Ok(None) => OpOutcome::Applied,
            Ok(Some(refused)) => refused,
            Err(e) if is_unique_violation(&e) => match op {
                Op::Create { .. } => OpOutcome::AlreadyExists,
                _ => OpOutcome::Failed("the user id or email is used by another user".into()),
            },
            Err(e) if is_foreign_key_violation(&e) => {
                OpOutcome::Failed("a role of the user was deleted meanwhile".into())
            }
            Err(e) => return Err(e),
        };
        if !outcome.is_applied() {
            // A failed op leaves nothing behind.
            exec(conn, "ROLLBACK TO SAVEPOINT op").await?;
        }
        // Released either way, so savepoints do not pile up in a long
        // transaction.
        exec(conn, "RELEASE SAVEPOINT op").await?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn exec(conn: &mut PgConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql).execute(conn).await?;
    Ok(())
}

/// Splits `ops` into runs of consecutive ops of one kind (role deletions:
/// one per run).
fn runs(ops: &[Op]) -> impl Iterator<Item = &[Op]> {
    ops.chunk_by(|a, b| {
        std::mem::discriminant(a) == std::mem::discriminant(b)
            && !matches!(a, Op::DeleteRole { .. })
    })
}

/// Applies a run of ops of one kind. `Ok(None)`: every op applied.
/// `Ok(Some(outcome))`: at least one did not; for a run of one op, the
/// outcome is that op's. The caller rolls back what a refused run did.
async fn apply_run(
    conn: &mut PgConnection,
    tenant: &str,
    run: &[Op],
) -> Result<Option<OpOutcome>, sqlx::Error> {
    match run.first() {
        None => Ok(None),
        Some(Op::CreateRole { .. }) => create_roles(conn, tenant, run).await,
        Some(Op::DeleteRole { name }) => delete_role(conn, tenant, name).await,
        Some(Op::Create { .. }) => create_users(conn, tenant, run).await,
        Some(Op::Update { .. }) => update_users(conn, tenant, run).await,
        Some(Op::Delete { .. }) => delete_users(conn, tenant, run).await,
        // `Op` is non-exhaustive: fail an op this adapter does not know
        // (from a newer library) rather than skip it silently.
        Some(_) => Ok(Some(OpOutcome::Failed(
            "operation not supported by this store".into(),
        ))),
    }
}

async fn create_roles(
    conn: &mut PgConnection,
    tenant: &str,
    run: &[Op],
) -> Result<Option<OpOutcome>, sqlx::Error> {
    let (names, norms): (Vec<&str>, Vec<String>) = run
        .iter()
        .filter_map(|op| match op {
            Op::CreateRole { name } => Some((name.as_str(), normalize(name))),
            _ => None,
        })
        .unzip();
    let created = sqlx::query(
        "INSERT INTO roles (tenant, name, name_norm)
         SELECT $1, v.name, v.name_norm FROM UNNEST($2::text[], $3::text[]) AS v(name, name_norm)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(&names)
    .bind(&norms)
    .execute(&mut *conn)
    .await?;
    // A role someone created since the plan was made is theirs (an undo
    // must not delete it).
    Ok(refused(created.rows_affected(), run.len(), || {
        OpOutcome::AlreadyExists
    }))
}

async fn delete_role(
    conn: &mut PgConnection,
    tenant: &str,
    name: &str,
) -> Result<Option<OpOutcome>, sqlx::Error> {
    // Only a role no user holds (an undo takes back the roles its import
    // created).
    let role: Option<i64> =
        sqlx::query_scalar("SELECT id FROM roles WHERE tenant = $1 AND name_norm = $2 FOR UPDATE")
            .bind(tenant)
            .bind(normalize(name))
            .fetch_optional(&mut *conn)
            .await?;
    let Some(role) = role else {
        return Ok(Some(OpOutcome::NotFound));
    };
    let held: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM user_roles WHERE role = $1)")
        .bind(role)
        .fetch_one(&mut *conn)
        .await?;
    if held {
        return Ok(Some(OpOutcome::Conflict));
    }
    sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(role)
        .execute(&mut *conn)
        .await?;
    Ok(None)
}

/// `None` when `done` rows are all `wanted`, else the refusal `outcome`.
fn refused(done: u64, wanted: usize, outcome: impl FnOnce() -> OpOutcome) -> Option<OpOutcome> {
    (done != wanted as u64).then(outcome)
}

type UsersQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The column arrays of [`INSERT_USERS`] / [`UPDATE_USERS`]: one per
/// [`COLUMNS`] entry, then custom, (locked,) and the normalized columns.
struct UserArrays {
    columns: Vec<Vec<Option<String>>>,
    custom: Vec<Option<String>>,
    locked: Vec<Option<String>>,
    user_id_norm: Vec<String>,
    email_norm: Vec<Option<String>>,
    reports_to_norm: Vec<Option<String>>,
}

impl UserArrays {
    fn with_capacity(n: usize) -> UserArrays {
        UserArrays {
            columns: (0..COLUMNS.len()).map(|_| Vec::with_capacity(n)).collect(),
            custom: Vec::with_capacity(n),
            locked: Vec::with_capacity(n),
            user_id_norm: Vec::with_capacity(n),
            email_norm: Vec::with_capacity(n),
            reports_to_norm: Vec::with_capacity(n),
        }
    }

    /// Binds the arrays, in the order of [`INSERT_USERS`] (`with_locked`)
    /// or of [`UPDATE_USERS`], after the parameters `query` has.
    fn bind<'q>(&'q self, mut query: UsersQuery<'q>, with_locked: bool) -> UsersQuery<'q> {
        for column in &self.columns {
            query = query.bind(column);
        }
        query = query.bind(&self.custom);
        if with_locked {
            query = query.bind(&self.locked);
        }
        query
            .bind(&self.user_id_norm)
            .bind(&self.email_norm)
            .bind(&self.reports_to_norm)
    }

    fn push(&mut self, user: &User, id: &str, locked: &[Field]) -> Result<(), sqlx::Error> {
        for (column, &field) in self.columns.iter_mut().zip(COLUMNS.iter()) {
            column.push(user.get(field).map(str::to_owned));
        }
        let custom: BTreeMap<&str, &str> = user.customs().collect();
        self.custom.push(if custom.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&custom).map_err(|e| sqlx::Error::Encode(e.into()))?)
        });
        self.locked.push(if locked.is_empty() {
            None
        } else {
            Some(
                locked
                    .iter()
                    .map(|f| f.header())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        });
        self.user_id_norm.push(normalize(id));
        self.email_norm.push(user.email().map(normalize));
        self.reports_to_norm.push(
            user.get(Field::ReportsTo)
                .filter(|m| !m.is_empty())
                .map(normalize),
        );
        Ok(())
    }
}

/// The roles to give users: user row id, normalized role name, place.
#[derive(Default)]
struct RoleRows {
    users: Vec<i64>,
    names: Vec<String>,
    places: Vec<i32>,
}

impl RoleRows {
    /// The roles `user` names, each once.
    fn push(&mut self, row: i64, user: &User) {
        let mut seen = BTreeSet::new();
        for role in user.roles() {
            let norm = normalize(role);
            if seen.insert(norm.clone()) {
                self.users.push(row);
                self.names.push(norm);
                self.places
                    .push(i32::try_from(seen.len()).unwrap_or(i32::MAX));
            }
        }
    }

    /// Inserts the rows; `false` when a role the tenant lacks kept one out.
    async fn insert(&self, conn: &mut PgConnection, tenant: &str) -> Result<bool, sqlx::Error> {
        if self.users.is_empty() {
            return Ok(true);
        }
        let done = sqlx::query(INSERT_USER_ROLES)
            .bind(tenant)
            .bind(&self.users)
            .bind(&self.names)
            .bind(&self.places)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected() == self.users.len() as u64)
    }
}

/// The failure of users given a role the tenant lacks, naming the role.
async fn missing_role(
    conn: &mut PgConnection,
    tenant: &str,
    users: &[&User],
) -> Result<OpOutcome, sqlx::Error> {
    let named: Vec<&str> = users.iter().flat_map(|u| u.roles()).collect();
    let norms: Vec<String> = named.iter().map(|r| normalize(r)).collect();
    let known: Vec<String> =
        sqlx::query_scalar("SELECT name_norm FROM roles WHERE tenant = $1 AND name_norm = ANY($2)")
            .bind(tenant)
            .bind(&norms)
            .fetch_all(&mut *conn)
            .await?;
    let missing = named
        .iter()
        .zip(&norms)
        .find(|(_, norm)| !known.contains(norm))
        .map_or("?", |(name, _)| *name);
    Ok(OpOutcome::Failed(format!(
        "role {missing:?} does not exist"
    )))
}

async fn create_users(
    conn: &mut PgConnection,
    tenant: &str,
    run: &[Op],
) -> Result<Option<OpOutcome>, sqlx::Error> {
    let mut arrays = UserArrays::with_capacity(run.len());
    let mut users = Vec::with_capacity(run.len());
    for op in run {
        let Op::Create { user, locked, .. } = op else {
            continue;
        };
        let Some(id) = user.user_id() else {
            return Ok(Some(OpOutcome::Failed(
                "a user to create needs a user id".into(),
            )));
        };
        arrays.push(user, id, locked)?;
        users.push(user);
    }
    let created = arrays
        .bind(sqlx::query(INSERT_USERS).bind(tenant), true)
        .fetch_all(&mut *conn)
        .await?;
    if created.len() != users.len() {
        // The user id or the email is taken in this tenant.
        return Ok(Some(OpOutcome::AlreadyExists));
    }
    let mut rows: HashMap<String, i64> = HashMap::with_capacity(created.len());
    for r in &created {
        rows.insert(r.try_get(1)?, r.try_get(0)?);
    }
    let mut roles = RoleRows::default();
    for (user, norm) in users.iter().zip(&arrays.user_id_norm) {
        let Some(&row) = rows.get(norm) else {
            return Ok(Some(OpOutcome::AlreadyExists));
        };
        roles.push(row, user);
    }
    if !roles.insert(conn, tenant).await? {
        return Ok(Some(missing_role(conn, tenant, &users).await?));
    }
    Ok(None)
}

async fn update_users(
    conn: &mut PgConnection,
    tenant: &str,
    run: &[Op],
) -> Result<Option<OpOutcome>, sqlx::Error> {
    let ids: Vec<String> = run
        .iter()
        .filter_map(|op| op.user_id().map(normalize))
        .collect();
    // The users as they are now, locked against concurrent writers until
    // the transaction ends.
    // In row order, so two batches lock their common users in the same order.
    let sql = format!(
        "{SELECT_USERS} WHERE u.tenant = $1 AND u.user_id_norm = ANY($2) ORDER BY u.id FOR UPDATE"
    );
    let mut current: HashMap<String, (i64, ExistingUser)> = HashMap::with_capacity(ids.len());
    for r in sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
    {
        let (row, user) = read_user(&r)?;
        current.insert(normalize(user.user_id()), (row, user));
    }
    let mut arrays = UserArrays::with_capacity(run.len());
    let (mut rows, mut planned) = (Vec::with_capacity(run.len()), Vec::with_capacity(run.len()));
    let mut updated = Vec::with_capacity(run.len());
    let (mut roles, mut cleared) = (RoleRows::default(), Vec::new());
    for (op, id) in run.iter().zip(&ids) {
        let Op::Update {
            version, changes, ..
        } = op
        else {
            continue;
        };
        let Some((row, user)) = current.get(id) else {
            return Ok(Some(OpOutcome::NotFound));
        };
        if user.version != *version {
            return Ok(Some(OpOutcome::Conflict));
        }
        // The whole record: the current user with the changes applied.
        let new = apply_changes(&user.user, changes);
        let Some(new_id) = new.user_id() else {
            return Ok(Some(OpOutcome::Failed("a user needs a user id".into())));
        };
        arrays.push(&new, new_id, &[])?;
        rows.push(*row);
        planned.push(to_sql_version(*version));
        if changes
            .iter()
            .any(|c| c.field == Attribute::Field(Field::Roles))
        {
            roles.push(*row, &new);
            cleared.push(*row);
        }
        updated.push(new);
    }
    // PostgreSQL checks a unique constraint row by row, in the order it
    // writes the rows: a run in which a user takes a user id or email that
    // another user of the run gives up (a swap) could pass as one
    // statement where op by op, in order, it would not. Such a run goes op
    // by op.
    if run.len() > 1 {
        // Every op of the run pushed its user, so index i is op i: the
        // keys normalized once, by `arrays.push` and `ids`.
        let old_emails: Vec<Option<String>> = ids
            .iter()
            .map(|id| {
                current
                    .get(id)
                    .and_then(|(_, u)| u.user.email().map(normalize))
            })
            .collect();
        let held: HashSet<&str> = ids
            .iter()
            .chain(old_emails.iter().flatten())
            .map(String::as_str)
            .collect();
        let moved = (0..ids.len()).any(|i| {
            let id = &arrays.user_id_norm[i];
            let email = &arrays.email_norm[i];
            (id != &ids[i] && held.contains(id.as_str()))
                || (email != &old_emails[i] && email.as_deref().is_some_and(|e| held.contains(e)))
        });
        if moved {
            return Ok(Some(OpOutcome::Conflict));
        }
    }
    let done = arrays
        .bind(sqlx::query(UPDATE_USERS).bind(&rows).bind(&planned), false)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() != rows.len() as u64 {
        // Changed since it was read (a user named twice in the run).
        return Ok(Some(OpOutcome::Conflict));
    }
    // The users whose roles change get exactly the roles they name.
    if !cleared.is_empty() {
        sqlx::query("DELETE FROM user_roles WHERE user_ref = ANY($1)")
            .bind(&cleared)
            .execute(&mut *conn)
            .await?;
    }
    if !roles.insert(conn, tenant).await? {
        let users: Vec<&User> = updated.iter().collect();
        return Ok(Some(missing_role(conn, tenant, &users).await?));
    }
    Ok(None)
}

async fn delete_users(
    conn: &mut PgConnection,
    tenant: &str,
    run: &[Op],
) -> Result<Option<OpOutcome>, sqlx::Error> {
    let (ids, versions): (Vec<String>, Vec<i64>) = run
        .iter()
        .filter_map(|op| match op {
            Op::Delete {
                user_id, version, ..
            } => Some((normalize(user_id), to_sql_version(*version))),
            _ => None,
        })
        .unzip();
    // Conditional on the version; `user_roles` rows go by ON DELETE CASCADE.
    let deleted = sqlx::query(
        "DELETE FROM users u USING UNNEST($2::text[], $3::bigint[]) AS v(user_id_norm, version)
          WHERE u.tenant = $1 AND u.user_id_norm = v.user_id_norm AND u.version = v.version",
    )
    .bind(tenant)
    .bind(&ids)
    .bind(&versions)
    .execute(&mut *conn)
    .await?;
    if deleted.rows_affected() == ids.len() as u64 {
        return Ok(None);
    }
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE tenant = $1 AND user_id_norm = ANY($2))",
    )
    .bind(tenant)
    .bind(&ids)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(if exists {
        OpOutcome::Conflict
    } else {
        OpOutcome::NotFound
    }))
}

/// Versions are `u64` in the trait and bigint (i64) in PostgreSQL. This
/// store only hands out positive ones; a larger number (from a plan made
/// against some other store) matches no row: `Conflict` or `NotFound`.
fn to_sql_version(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(-1)
}

/// Reads a row of [`SELECT_USERS`]: the row id and the user.
fn read_user(row: &PgRow) -> Result<(i64, ExistingUser), sqlx::Error> {
    let mut b = User::builder();
    for (i, &field) in COLUMNS.iter().enumerate() {
        if let Some(v) = row.try_get::<Option<String>, _>(i)? {
            b.put(field, &v);
        }
    }
    // The columns after the COLUMNS.
    const ROLES: usize = COLUMNS.len();
    const CUSTOM: usize = ROLES + 1;
    const LOCKED: usize = ROLES + 2;
    const VERSION: usize = ROLES + 3;
    const ROW_ID: usize = ROLES + 4;
    if let Some(roles) = row.try_get::<Option<Vec<String>>, _>(ROLES)? {
        b.put(Field::Roles, &roles.join("|"));
    }
    if let Some(json) = row.try_get::<Option<String>, _>(CUSTOM)? {
        let custom: BTreeMap<String, String> =
            serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(e.into()))?;
        for (name, value) in custom {
            b.put_custom(name, &value);
        }
    }
    let version: i64 = row.try_get(VERSION)?;
    let version = u64::try_from(version).map_err(|e| sqlx::Error::Decode(e.into()))?;
    let mut user = ExistingUser::new(b.build(), version);
    let locked: Option<Vec<String>> = row.try_get(LOCKED)?;
    for field in locked
        .iter()
        .flatten()
        .filter_map(|h| Field::from_header(h))
    {
        user = user.lock(field);
    }
    Ok((row.try_get(ROW_ID)?, user))
}
