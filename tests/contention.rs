//! The `import` command under contention, run as real processes against one
//! SQLite database: every run that reads its file prints its report, writers
//! wait for the lock instead of failing, opening a database writes nothing,
//! an oversized file is refused before it is read, and a killed import
//! leaves the database as it was before or after.
//!
//! These tests run the built example binary (`target/<profile>/examples/
//! import`), which `cargo test` builds beside the test binaries. When it is
//! missing they fail, saying how to build it.
#![cfg(feature = "json")]

mod common;
use common::TempDir;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::Value;

/// The example binary; panics (the test fails) when it was not built.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| {
            dir.join("examples")
                .join(format!("import{}", std::env::consts::EXE_SUFFIX))
        })
        .expect("target/<profile>/examples");
    assert!(
        bin.exists(),
        "{} is missing: run the whole suite with `cargo test` (which builds the examples), or `cargo build --example import` first",
        bin.display()
    );
    bin
}

/// A users file of `n` users named `{prefix}{i}`, each with two roles and a
/// manager (the previous user).
fn users_file(prefix: &str, n: usize) -> String {
    let mut f = String::from("userId,firstName,lastName,email,reportsTo,roles\n");
    for i in 0..n {
        let manager = if i == 0 {
            String::new()
        } else {
            format!("{prefix}{}", i - 1)
        };
        f.push_str(&format!(
            "{prefix}{i},First{i},Last{i},{prefix}{i}@example.com,{manager},Staff|Team{}\n",
            i % 7
        ));
    }
    f
}

fn import(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the import command")
}

/// Starts the command with `args`, its output piped, without waiting.
fn start(args: &[&str]) -> std::process::Child {
    Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start an import")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every issue code in a JSON report, file-level and per row.
fn codes(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut take = |issues: &Value| {
        for i in issues.as_array().into_iter().flatten() {
            out.push(i["code"].as_str().unwrap_or("?").to_owned());
        }
    };
    take(&report["issues"]);
    for r in report["rows"].as_array().into_iter().flatten() {
        take(&r["issues"]);
    }
    out
}

fn count(db: &str) -> i64 {
    let conn = Connection::open(db).expect("open the database");
    conn.busy_timeout(Duration::from_secs(30)).ok();
    conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .expect("count users")
}

/// The directory as the command exports it.
fn export(db: &str, dir: &TempDir, name: &str) -> String {
    let path = dir.path(name);
    let out = import(&["--db", db, "--export", &path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(path).expect("read the export")
}

/// A connection that holds a read transaction until dropped.
fn reader(db: &str) -> Connection {
    let conn = Connection::open(db).expect("open the database");
    conn.execute_batch("BEGIN").expect("begin");
    let _: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .expect("read");
    conn
}

#[test]
fn a_commit_that_fails_still_prints_the_report() {
    let dir = TempDir::new("commit");
    let db = dir.path("users.db");
    let first = dir.write("first.csv", &users_file("a", 20));
    assert_eq!(import(&["--db", &db, &first]).status.code(), Some(0));
    let second = dir.write("second.csv", &users_file("b", 20));
    let before = export(&db, &dir, "before.csv");

    // Another program reads: the all-or-nothing import cannot commit. It
    // waits for the reader as long as --busy-timeout says, not the 30 s
    // default.
    let held = reader(&db);
    let asked = std::time::Instant::now();
    let out = import(&[
        "--db",
        &db,
        "--report",
        "json",
        "--busy-timeout",
        "0.3",
        &second,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "--busy-timeout 0.3 was not honoured"
    );
    let report = json(&out);
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r["outcome"] == "failed"), "{report}");
    let message = rows[0]["issues"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("could not commit"), "{message}");
    assert!(message.contains("locked"), "{message}");
    drop(held);
    assert_eq!(export(&db, &dir, "after.csv"), before);
}

#[test]
fn four_writers_of_disjoint_users_all_succeed_under_every_policy() {
    for policy in ["reject-file", "skip-invalid"] {
        let dir = TempDir::new(&format!("disjoint-{policy}"));
        let db = dir.path("users.db");
        // The database exists before the writers start.
        let seed = dir.write("seed.csv", &users_file("seed", 1));
        assert_eq!(import(&["--db", &db, &seed]).status.code(), Some(0));
        let files: Vec<String> = (0..4)
            .map(|k| dir.write(&format!("f{k}.csv"), &users_file(&format!("w{k}u"), 150)))
            .collect();
        let children: Vec<_> = files
            .iter()
            .map(|f| start(&["--db", &db, "--report", "json", "--on-error", policy, f]))
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait for an import");
            assert_eq!(
                out.status.code(),
                Some(0),
                "{policy}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            let report = json(&out);
            assert_eq!(report["summary"]["added"], 150, "{policy}");
            assert!(codes(&report).is_empty(), "{policy}: {:?}", codes(&report));
        }
        assert_eq!(count(&db), 1 + 4 * 150, "{policy}");
    }
}

#[test]
fn writers_of_the_same_users_get_conflicts_never_store_errors() {
    for policy in ["reject-file", "skip-invalid"] {
        let dir = TempDir::new(&format!("overlap-{policy}"));
        let db = dir.path("users.db");
        let seed = dir.write("seed.csv", &users_file("seed", 1));
        assert_eq!(import(&["--db", &db, &seed]).status.code(), Some(0));
        let file = dir.write("same.csv", &users_file("same", 200));
        let children: Vec<_> = (0..3)
            .map(|_| start(&["--db", &db, "--report", "json", "--on-error", policy, &file]))
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait for an import");
            let report = json(&out);
            let codes = codes(&report);
            assert!(
                !codes.iter().any(|c| c == "store_error"),
                "{policy}: {codes:?}"
            );
            assert!(
                codes
                    .iter()
                    .all(|c| c == "conflict" || c == "file_rejected"),
                "{policy}: {codes:?}"
            );
        }
        // The users are there once each, whoever wrote them.
        assert_eq!(count(&db), 201, "{policy}");
    }
}

#[test]
fn opening_a_database_writes_nothing() {
    let dir = TempDir::new("open");
    let db = dir.path("users.db");
    let file = dir.write("users.csv", &users_file("u", 30));
    assert_eq!(import(&["--db", &db, &file]).status.code(), Some(0));
    let held = reader(&db);
    // With another program's read transaction open, an import that needs
    // no write, a dry run, an export and a template all run.
    let out = import(&[
        "--db",
        &db,
        "--report",
        "json",
        "--busy-timeout",
        "0.3",
        &file,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["summary"]["unchanged"], 30);
    let out = import(&["--db", &db, "--dry-run", &file]);
    assert_eq!(out.status.code(), Some(0));
    let out = import(&["--db", &db, "--export", &dir.path("export.csv")]);
    assert_eq!(out.status.code(), Some(0));
    let out = import(&["--template"]);
    assert_eq!(out.status.code(), Some(0));
    drop(held);
}

#[test]
fn an_oversized_file_is_refused_before_it_is_read() {
    let dir = TempDir::new("limit");
    let db = dir.path("users.db");
    // 300 MB, sparse: larger than the default limit of 256 MiB.
    let big = dir.path("big.csv");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(300_000_000).expect("size");
    drop(f);
    // The child's peak RSS, as the kernel counts it.
    let out = Command::new("python3")
        .args([
            "-c",
            "import resource, subprocess, sys\n\
             r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n\
             sys.stdout.write(r.stdout.decode())\n\
             sys.stderr.write('%d %d' % (r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n",
        ])
        .arg(binary())
        .args(["--db", &db, "--report", "json", &big])
        .output()
        .expect("python3 runs the command (python3 is needed for this test)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (status, rss_kib) = stderr
        .trim()
        .rsplit_once(' ')
        .map(|(s, r)| {
            (
                s.rsplit(char::is_whitespace)
                    .next()
                    .unwrap_or(s)
                    .parse::<i32>()
                    .unwrap_or(-1),
                r.parse::<u64>().unwrap_or(u64::MAX),
            )
        })
        .expect("status and peak RSS");
    assert_eq!(status, 1, "{stderr}");
    let report = json(&out);
    assert_eq!(codes(&report), ["limit_exceeded"]);
    assert!(
        rss_kib < 64 * 1024,
        "refusing a 300 MB file took {rss_kib} KiB"
    );

    // A stream is read up to the limit and refused there.
    let profile = dir.write("small.json", r#"{"limits": {"file_bytes": 1048576}}"#);
    let out = import(&[
        "--db",
        &db,
        "--profile",
        &profile,
        "--report",
        "json",
        "/dev/zero",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(codes(&json(&out)), ["limit_exceeded"]);
}

/// Kill the command at moments spread over its run: under all-or-nothing
/// the directory is as before or as after; under skip-invalid a second run
/// converges to what one uninterrupted run gives.
#[test]
fn a_killed_import_leaves_the_database_before_or_after() {
    let dir = TempDir::new("kill");
    let file = dir.write("users.csv", &users_file("k", 3000));
    let seed = dir.write("seed.csv", &users_file("seed", 5));
    // What one uninterrupted run gives.
    let whole = dir.path("whole.db");
    assert_eq!(import(&["--db", &whole, &seed]).status.code(), Some(0));
    let before = export(&whole, &dir, "before.csv");
    assert_eq!(import(&["--db", &whole, &file]).status.code(), Some(0));
    let after = export(&whole, &dir, "after.csv");

    for (k, delay_ms) in [5u64, 20, 40, 80, 120, 200, 300, 450]
        .into_iter()
        .enumerate()
    {
        for policy in ["reject-file", "skip-invalid"] {
            let db = dir.path(&format!("kill-{k}-{policy}.db"));
            assert_eq!(import(&["--db", &db, &seed]).status.code(), Some(0));
            let mut child = start(&["--db", &db, "--on-error", policy, &file]);
            std::thread::sleep(Duration::from_millis(delay_ms));
            let _ = child.kill();
            let _ = child.wait();
            let now = export(&db, &dir, &format!("now-{k}-{policy}.csv"));
            if policy == "reject-file" {
                assert!(
                    now == before || now == after,
                    "killed at {delay_ms} ms: neither before nor after"
                );
            }
            // A second run converges.
            let again = import(&["--db", &db, "--on-error", policy, &file]);
            assert_eq!(again.status.code(), Some(0), "{policy} at {delay_ms} ms");
            assert_eq!(
                export(&db, &dir, &format!("again-{k}-{policy}.csv")),
                after,
                "{policy} at {delay_ms} ms"
            );
        }
    }
}

/// A store that fails while the import is planned (here, a database whose
/// tables are not the adapter's): the report still accounts for every row.
#[test]
fn a_store_that_fails_while_planning_still_gets_a_report() {
    let dir = TempDir::new("plan-fails");
    let db = dir.path("users.db");
    let conn = Connection::open(&db).expect("create");
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, display_name TEXT);
         CREATE TABLE roles (id INTEGER PRIMARY KEY);
         CREATE TABLE user_roles (id INTEGER PRIMARY KEY);
         CREATE TABLE locations (id INTEGER PRIMARY KEY);
         CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    )
    .expect("a foreign schema");
    drop(conn);
    let file = dir.write("users.csv", &users_file("p", 3));
    let out = import(&["--db", &db, "--report", "json", &file]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["rows"].as_array().map(Vec::len), Some(3));
    assert!(
        codes(&report).contains(&"store_error".to_owned()),
        "{report}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
}

/// Ctrl-C (SIGINT) cancels between batches, and the report still comes:
/// under skip-invalid it says which rows were applied before the cancel,
/// and a second run converges.
#[test]
fn an_interrupted_import_prints_its_report() {
    let dir = TempDir::new("interrupt");
    let db = dir.path("users.db");
    let seed = dir.write("seed.csv", &users_file("seed", 1));
    assert_eq!(import(&["--db", &db, &seed]).status.code(), Some(0));
    let file = dir.write("users.csv", &users_file("i", 60_000));
    let profile = dir.write("small-batches.json", r#"{"batch_size": 50}"#);
    let child = start(&[
        "--db",
        &db,
        "--report",
        "json",
        "--on-error",
        "skip-invalid",
        "--unknown-roles",
        "create",
        "--profile",
        &profile,
        &file,
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait for the import");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let rows = report["rows"].as_array().map_or(0, Vec::len);
    assert_eq!(rows, 60_000, "every row is in the report");
    let cancelled = report["cancelled"] == true || codes(&report).iter().any(|c| c == "cancelled");
    assert!(cancelled, "the report says the import was cancelled");
    // A second run converges.
    let again = import(&["--db", &db, "--unknown-roles", "create", &file]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(count(&db), 60_001);
}
