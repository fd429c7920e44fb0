//! A PostgreSQL server for the tests: the one `USER_IMPORT_PG_URL` names
//! (`.ci/run` starts one and sets it), or else a throwaway cluster that
//! `.ci/postgres.sh` starts under `target/pg-test` and leaves running for the
//! next test binary. When neither works the test fails, saying why: a test
//! that needs the server never passes without it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, PgConnection};

/// The server's URL (its `postgres` database). The first call also drops
/// the databases that runs of the tests which are over left behind.
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = start_server();
        // On a thread of its own: the caller may be inside a runtime.
        let cleaning = url.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime")
                .block_on(drop_left_over(&cleaning))
        })
        .join()
        .expect("drop the databases of earlier runs");
        url
    })
}

/// Drops the databases `fresh_database` made for processes that have ended.
async fn drop_left_over(url: &str) {
    let Ok(mut admin) = PgConnection::connect(url).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'ui\\_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name.rsplit('_').nth(1).unwrap_or("");
        if pid.is_empty() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}

/// Drops the database of `url` (made by `fresh_database`).
pub async fn drop_database(url: &str) {
    let Some(name) = url::Url::parse(url)
        .ok()
        .map(|u| u.path().trim_start_matches('/').to_owned())
    else {
        return;
    };
    if !name.starts_with("ui_") {
        return;
    }
    let mut admin = PgConnection::connect(server_url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", server_url()));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("cannot drop database {name}: {e}"));
}

/// The server `USER_IMPORT_PG_URL` names, or one `.ci/postgres.sh` starts.
fn start_server() -> String {
    {
        if let Ok(url) = std::env::var("USER_IMPORT_PG_URL")
            && !url.is_empty()
        {
            return url;
        }
        let root = env!("CARGO_MANIFEST_DIR");
        let out = std::process::Command::new("bash")
            .arg(format!("{root}/.ci/postgres.sh"))
            .arg("start")
            .arg(format!("{root}/target/pg-test"))
            .output()
            .expect("run bash .ci/postgres.sh");
        assert!(
            out.status.success(),
            "no PostgreSQL server for the tests: set USER_IMPORT_PG_URL, or install \
             PostgreSQL (apt-get install postgresql) so that .ci/postgres.sh can start one:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).unwrap_or_else(|e| panic!("{url} is not a URL: {e}"));
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// A new, empty database (dropped first if a run before left it), named
/// after `name`, the process and a counter; returns its URL.
pub async fn fresh_database(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let db: String = format!("ui_{name}_{}_{n}", std::process::id())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    let mut admin = PgConnection::connect(server_url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", server_url()));
    // One statement each: several in one string run as one transaction,
    // where CREATE DATABASE cannot.
    for sql in [
        format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        format!("CREATE DATABASE {db}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {db}: {e}"));
    }
    admin.close().await.ok();
    with_database(server_url(), &db)
}

/// `fresh_database`, blocking (for tests that are not async).
pub fn fresh_database_blocking(name: &str) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(fresh_database(name))
}

/// A users file of `n` users (ids from `first`), in batches' worth: chains
/// of managers, a few roles each, every `edit`-th user with a changed last
/// name, every `drop`-th one deleted.
pub fn generated(first: usize, n: usize, edit: usize, drop: usize) -> String {
    let mut text =
        String::from("userId,firstName,lastName,email,enabled,reportsTo,roles,transaction\n");
    for i in first..first + n {
        let manager = if i % 10 == 0 {
            String::new()
        } else {
            format!("u{}", i - i % 10)
        };
        let last = if edit > 0 && i % edit == 0 {
            "Changed"
        } else {
            "Person"
        };
        let roles = ["Staff", "Staff|Lead", "Staff|Audit|Lead"][i % 3];
        let transaction = if drop > 0 && i % drop == 7 {
            "DELETE"
        } else {
            ""
        };
        text.push_str(&format!(
            "u{i},First{i},{last},u{i}@example.com,true,{manager},{roles},{transaction}\n"
        ));
    }
    text
}
