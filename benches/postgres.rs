//! The PostgreSQL benchmark: the `import` command's async adapter
//! (`PgStore`, `examples/import/pg_store.rs`) beside what a team would
//! write instead, in the same run, on the same rows, into the same tables.
//!
//! ```text
//! cargo bench --bench postgres -- --rows 100000     # default under `cargo bench`
//! cargo bench --bench postgres -- --quick           # smoke run (2,000 rows, 1 repetition)
//! ```
//!
//! The server: the one `USER_IMPORT_PG_URL` names, else a throwaway cluster
//! that `.ci/postgres.sh` starts under `target/pg-test` (see
//! `tests/common/pg.rs`). Each run gets a fresh database with the schema
//! `PgStore::connect` creates (not timed). Steps, each run `--reps` times
//! (interleaved, best wall time kept):
//!
//! - `copy`: the floor: the users with `COPY … FROM STDIN` (text format,
//!   versions numbered by the client), the roles with one `INSERT`, the
//!   `user_roles` rows with `COPY` into a temporary table, `ANALYZE`, and
//!   one `INSERT … SELECT` that joins users and roles. No checks of any kind.
//! - `insert`: plain prepared `INSERT`s in one transaction: one per user
//!   (`RETURNING id`), one per role a user holds, versions from the same
//!   sequence, the normalized columns as the adapter writes them;
//! - `import`: `Importer::run_async` (validate, plan, apply) of the generated
//!   file of N new users through `PgStore`, under the default all-or-nothing
//!   policy (one transaction) and `RolePolicy::Create`, on a current-thread
//!   tokio runtime, as the `import` command runs it;
//! - `reimport`: the same file again into the database `import` filled:
//!   every row unchanged.
//!
//! After every run the database is read back through `PgStore::scan`: the
//! users (id, email, last name, roles) must equal the generated ones, and
//! the import's report must say N Added (or N Unchanged), 0 Failed. A
//! mismatch panics. The last line printed is
//!
//! ```text
//! ratio import/insert=X.XX import/copy=X.XX reimport/insert=X.XX
//! ```
//!
//! (rows/s ÷ rows/s, best wall times; above 1 the import is faster).
//! Other flags: `--reps N` (default 3), `--seed N`, `--batch N` (the
//! profile's batch size), `--only STEP[,STEP]`. See `benches/README.md`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use user_import::{AsyncUserStore, Importer, Limits, RolePolicy, normalize};

#[allow(dead_code)]
#[path = "../tests/common/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "../examples/import/pg_store.rs"]
mod pg_store;

mod common;
use common::args::parse_args;
use common::generator::{Dataset, Shape, TENANT, generate};
use common::thousands;

use pg_store::PgStore;

const STEPS: [&str; 4] = ["copy", "insert", "import", "reimport"];

/// The plain INSERT of one user, with the columns the adapter writes.
const INSERT_USER: &str = "
INSERT INTO users (tenant, user_id, first_name, last_name, email, enabled, reports_to,
                   task_notification, user_id_norm, email_norm, reports_to_norm, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, nextval('user_versions'))
RETURNING id";

/// The baseline: plain prepared INSERTs in one transaction.
async fn run_insert(conn: &mut PgConnection, d: &Dataset) -> Result<(), sqlx::Error> {
    let tenant = normalize(TENANT);
    let mut tx = conn.begin().await?;
    let mut role_ids: HashMap<&str, i64> = HashMap::new();
    for &r in &d.roles {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO roles (tenant, name, name_norm) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&tenant)
        .bind(r)
        .bind(normalize(r))
        .fetch_one(&mut *tx)
        .await?;
        role_ids.insert(r, id);
    }
    for p in &d.persons {
        let manager = p.manager.map(|m| d.persons[m].id.as_str());
        let id: i64 = sqlx::query_scalar(INSERT_USER)
            .bind(&tenant)
            .bind(&p.id)
            .bind(&p.first)
            .bind(&p.last)
            .bind(&p.email)
            .bind(p.enabled_text())
            .bind(manager)
            .bind(p.task_text())
            .bind(normalize(&p.id))
            .bind(normalize(&p.email))
            .bind(manager.map(normalize))
            .fetch_one(&mut *tx)
            .await?;
        for (place, r) in p.roles.iter().enumerate() {
            sqlx::query("INSERT INTO user_roles (user_ref, role, ord) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(role_ids[r])
                .bind(place as i32 + 1)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await
}

/// A value for COPY's text format: `\N` for none, else escaped.
fn copy_text(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push_str("\\N"),
        Some(v) => {
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

/// The floor: COPY.
async fn run_copy(conn: &mut PgConnection, d: &Dataset) -> Result<(), sqlx::Error> {
    let tenant = normalize(TENANT);
    let mut tx = conn.begin().await?;
    let mut users = String::with_capacity(d.persons.len() * 160);
    let mut user_roles = String::with_capacity(d.persons.len() * 40);
    for (i, p) in d.persons.iter().enumerate() {
        let manager = p.manager.map(|m| d.persons[m].id.as_str());
        let norm = normalize(&p.id);
        let fields = [
            Some(tenant.as_str()),
            Some(p.id.as_str()),
            Some(p.first.as_str()),
            Some(p.last.as_str()),
            Some(p.email.as_str()),
            Some(p.enabled_text()),
            manager,
            Some(p.task_text()),
            Some(norm.as_str()),
        ];
        for f in fields {
            copy_text(&mut users, f);
            users.push('\t');
        }
        copy_text(&mut users, Some(&normalize(&p.email)));
        users.push('\t');
        copy_text(&mut users, manager.map(normalize).as_deref());
        users.push_str(&format!("\t{}\n", i + 1));
        for (place, r) in p.roles.iter().enumerate() {
            copy_text(&mut user_roles, Some(&norm));
            user_roles.push('\t');
            copy_text(&mut user_roles, Some(&normalize(r)));
            user_roles.push_str(&format!("\t{}\n", place + 1));
        }
    }
    let mut copy = tx
        .copy_in_raw(
            "COPY users (tenant, user_id, first_name, last_name, email, enabled, reports_to,
                         task_notification, user_id_norm, email_norm, reports_to_norm, version)
             FROM STDIN",
        )
        .await?;
    copy.send(users.as_bytes()).await?;
    copy.finish().await?;
    sqlx::query("SELECT setval('user_versions', $1)")
        .bind(d.persons.len() as i64)
        .execute(&mut *tx)
        .await?;
    let names: Vec<&str> = d.roles.clone();
    let norms: Vec<String> = names.iter().map(|r| normalize(r)).collect();
    sqlx::query(
        "INSERT INTO roles (tenant, name, name_norm)
         SELECT $1, n, nn FROM UNNEST($2::text[], $3::text[]) AS v(n, nn)",
    )
    .bind(&tenant)
    .bind(&names)
    .bind(&norms)
    .execute(&mut *tx)
    .await?;
    sqlx::raw_sql(
        "CREATE TEMPORARY TABLE held (user_norm text, role_norm text, ord integer) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw("COPY held (user_norm, role_norm, ord) FROM STDIN")
        .await?;
    copy.send(user_roles.as_bytes()).await?;
    copy.finish().await?;
    // Fresh statistics, so the join below is planned for the rows there are.
    sqlx::raw_sql("ANALYZE held; ANALYZE users")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO user_roles (user_ref, role, ord)
         SELECT u.id, r.id, h.ord FROM held h
           JOIN users u ON u.tenant = $1 AND u.user_id_norm = h.user_norm
           JOIN roles r ON r.tenant = $1 AND r.name_norm = h.role_norm",
    )
    .bind(&tenant)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

type Key = (String, String, String, String);

/// (user id, email, last name, roles sorted) of every generated user, sorted.
fn expected_users(d: &Dataset) -> Vec<Key> {
    let mut v: Vec<Key> = d
        .persons
        .iter()
        .map(|p| {
            let mut roles = p.roles.clone();
            roles.sort_unstable();
            (
                p.id.clone(),
                p.email.clone(),
                p.last.clone(),
                roles.join("|"),
            )
        })
        .collect();
    v.sort();
    v
}

/// The users read back through `PgStore::scan`, as [`expected_users`].
async fn scanned_users(store: &mut PgStore) -> Vec<Key> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .scan(TENANT, after.as_deref(), 5000)
            .await
            .expect("scan the users");
        for u in &page {
            let mut roles: Vec<&str> = u.user.roles().collect();
            roles.sort_unstable();
            out.push((
                u.user_id().to_owned(),
                u.user.email().unwrap_or("").to_owned(),
                u.user
                    .get(user_import::Field::LastName)
                    .unwrap_or("")
                    .to_owned(),
                roles.join("|"),
            ));
        }
        match page.last() {
            Some(last) if page.len() == 5000 => after = Some(normalize(last.user_id())),
            _ => break,
        }
    }
    out.sort();
    out
}

/// Reads the database back; panics unless it holds the generated users.
async fn check(what: &str, url: &str, expected: &[Key]) {
    let mut store = PgStore::connect(url).await.expect("connect");
    // Right after a bulk load the planner's statistics are stale until
    // autovacuum comes by; the read-back (not timed) should not wait for it.
    sqlx::raw_sql("ANALYZE")
        .execute(store.connection())
        .await
        .expect("analyze");
    let got = scanned_users(&mut store).await;
    if got != expected {
        let diff: Vec<(&Key, &Key)> = got
            .iter()
            .zip(expected)
            .filter(|(a, b)| a != b)
            .take(5)
            .collect();
        panic!(
            "MISMATCH {what}: users read back ({}) differ from the generated users ({}); first (got, expected): {diff:?}",
            got.len(),
            expected.len()
        );
    }
}

fn main() {
    let args = parse_args("postgres", &STEPS, 1, false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(bench(args));
}

async fn bench(args: common::args::Args) {
    let data = generate(args.rows, args.seed, Shape::NewUsers);
    let n = data.persons.len();
    let mut importer = Importer::new(TENANT);
    {
        let p = importer.profile_mut();
        p.unknown_roles = RolePolicy::Create;
        let d = Limits::default();
        p.limits = d
            .max_rows(d.rows.max(n as u64 + 1))
            .max_file_bytes(d.file_bytes.max(2 * data.bytes.len() as u64));
        if let Some(b) = args.batch {
            p.batch_size = b;
        }
    }
    let importer = importer.threads(args.threads);
    let server = pg::server_url();
    let version: String = {
        let mut c = PgConnection::connect(server).await.expect("connect");
        sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut c)
            .await
            .expect("version")
    };
    let user_roles: usize = data.persons.iter().map(|p| p.roles.len()).sum();
    println!(
        "postgres: rows={n} file={:.1} MB reps={} seed={:#x} batch={} server={version} at {}",
        data.bytes.len() as f64 / 1e6,
        args.reps,
        args.seed,
        importer.profile().batch_size,
        server,
    );
    println!(
        "file: {n} new users, {} roles used, {user_roles} user_roles rows; a fresh database per run, schema by PgStore::connect, not timed",
        data.roles.len()
    );
    let expected = expected_users(&data);
    let steps: Vec<String> = args
        .only
        .clone()
        .unwrap_or_else(|| STEPS.iter().map(|s| s.to_string()).collect());
    let mut best: HashMap<String, Duration> = HashMap::new();
    let mut keep = |step: &str, t: Duration| {
        let b = best.entry(step.to_owned()).or_insert(t);
        *b = (*b).min(t);
        t
    };
    let mut imported_last: Option<String> = None;
    for rep in 0..args.reps {
        // The import keeps its database for the re-import.
        let mut imported: Option<String> = None;
        for step in &steps {
            let url = match (step.as_str(), &imported) {
                ("reimport", Some(url)) => url.clone(),
                _ => pg::fresh_database(&format!("bench_{step}")).await,
            };
            let mut store = PgStore::connect(&url).await.expect("connect");
            let t = match step.as_str() {
                "copy" | "insert" => {
                    let conn = store.connection();
                    let t0 = Instant::now();
                    if step == "copy" {
                        run_copy(conn, &data).await.expect("copy");
                    } else {
                        run_insert(conn, &data).await.expect("insert");
                    }
                    t0.elapsed()
                }
                "import" | "reimport" => {
                    if step == "reimport" && imported.is_none() {
                        // Without an import step before it: fill the database first.
                        importer
                            .run_async(&data.bytes, Some("users.csv"), &mut store)
                            .await
                            .expect("import");
                    }
                    let t0 = Instant::now();
                    let report = importer
                        .run_async(&data.bytes, Some("users.csv"), &mut store)
                        .await
                        .expect("import into PostgreSQL");
                    let t = t0.elapsed();
                    let s = &report.summary;
                    let ok = if step == "import" {
                        s.added == n as u64 && s.failed == 0
                    } else {
                        s.unchanged == n as u64 && s.failed == 0
                    };
                    assert!(ok, "MISMATCH {step} report: {s}");
                    if step == "import" {
                        imported = Some(url.clone());
                        if let Some(old) = imported_last.replace(url.clone()) {
                            pg::drop_database(&old).await;
                        }
                    }
                    t
                }
                other => panic!("unknown step {other}"),
            };
            drop(store);
            check(step, &url, &expected).await;
            if step != "import" {
                pg::drop_database(&url).await;
            }
            let t = keep(step, t);
            println!(
                "rep {rep} {step:<9} {:>8.3} s {:>12} rows/s",
                t.as_secs_f64(),
                thousands(n as f64 / t.as_secs_f64().max(1e-9))
            );
        }
    }
    println!();
    if let Some(url) = imported_last {
        pg::drop_database(&url).await;
    }
    for step in &steps {
        let t = best[step.as_str()];
        println!(
            "{step:<9} best {:>8.3} s {:>12} rows/s",
            t.as_secs_f64(),
            thousands(n as f64 / t.as_secs_f64().max(1e-9))
        );
    }
    let ratio = |a: &str, b: &str| match (best.get(a), best.get(b)) {
        (Some(a), Some(b)) => format!("{:.2}", b.as_secs_f64() / a.as_secs_f64().max(1e-9)),
        _ => "n/a".into(),
    };
    println!(
        "ratio import/insert={} import/copy={} reimport/insert={}",
        ratio("import", "insert"),
        ratio("import", "copy"),
        ratio("reimport", "insert"),
    );
}
