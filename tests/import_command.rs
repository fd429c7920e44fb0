//! End-to-end tests of the `import` example command (`examples/import/`):
//! files from `tests/data/` imported into a temporary SQLite database, with
//! the JSON report and the exit status checked.
//!
//! The command runs in-process through `cli::run` (the very function the
//! binary's `main` calls), so these tests never run a stale binary; the last
//! test also runs the built binary itself when `cargo test` has built it.
#![cfg(feature = "json")]

#[path = "../examples/import/cli.rs"]
mod cli;
#[path = "../examples/import/json_rows.rs"]
mod json_rows;
#[path = "../examples/import/spool.rs"]
mod spool;
#[path = "../examples/import/text_rows.rs"]
mod text_rows;
// Not every helper of the adapter is used here.
#[allow(dead_code)]
#[path = "../examples/import/pg_store.rs"]
mod pg_store;
#[allow(dead_code)]
#[path = "../examples/import/sqlite_store.rs"]
mod sqlite_store;

mod common;
use common::TempDir;

use std::path::Path;

use serde_json::Value;
use sqlite_store::SqliteStore;
use user_import::{Fetch, Field, UserStore, normalize};

/// What one run of the command gave.
struct Run {
    status: u8,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The summary counts, in the one-line summary's order.
    fn summary(&self) -> [u64; 8] {
        let s = &self.json()["summary"];
        [
            "added",
            "updated",
            "deleted",
            "roles_added",
            "unchanged",
            "skipped",
            "failed",
            "warnings",
        ]
        .map(|k| {
            s[k].as_u64()
                .unwrap_or_else(|| panic!("summary.{k} missing: {s}"))
        })
    }

    fn outcomes(&self) -> Vec<String> {
        rows(&self.json())
            .iter()
            .map(|r| r["outcome"].as_str().unwrap_or("?").to_owned())
            .collect()
    }
}

fn rows(report: &Value) -> &Vec<Value> {
    report["rows"].as_array().expect("rows is an array")
}

/// Runs the command with `args`.
fn import(args: &[&str]) -> Run {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let status = cli::run(
        args.iter().map(|a| a.to_string()),
        &mut stdout,
        &mut stderr,
        false,
    );
    Run {
        status,
        stdout: String::from_utf8(stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(stderr).expect("UTF-8 stderr"),
    }
}

/// Runs the command with `--db DB --report json` and `args`; panics with the
/// output unless the exit status is `status`.
fn import_json(db: &str, args: &[&str], status: u8) -> Run {
    let mut all = vec!["--db", db, "--report", "json"];
    all.extend_from_slice(args);
    let run = import(&all);
    assert_eq!(
        run.status, status,
        "import {all:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The directory as the database holds it: `(user id, last name, enabled, roles)`.
fn users(db: &str) -> Vec<(String, String, String, String)> {
    let mut store = SqliteStore::open(db).expect("open the database");
    let users = store.scan("default", None, 1000).expect("scan");
    users
        .iter()
        .map(|u| {
            let get = |f| u.user.get(f).unwrap_or("").to_owned();
            (
                u.user_id().to_owned(),
                get(Field::LastName),
                get(Field::Enabled),
                get(Field::Roles),
            )
        })
        .collect()
}

/// Seeds the tenant admin file's directory: one user, `admin`.
fn tenant_admin_directory(db: &str) {
    let run = import_json(db, &[&data("import_s4_0_directory.csv")], 0);
    assert_eq!(run.summary(), [1, 0, 0, 1, 0, 0, 0, 0]);
}

/// The tenant admin file's walk-through (docs/scenarios.md): "3 Added,
/// 1 Updated, 0 Deleted, 4 Roles Added", then "1 Added, 1 Updated,
/// 0 Deleted, 1 Roles Added" with mary's welcome notice.
#[test]
fn tenant_admin_walk_through() {
    let dir = TempDir::new("tenant-admin");
    let db = dir.path("users.db");
    tenant_admin_directory(&db);

    let first = import_json(&db, &[&data("import_s4_1_first.csv")], 0);
    assert_eq!(first.summary(), [3, 1, 0, 4, 0, 0, 0, 0]);
    assert_eq!(first.outcomes(), ["updated", "added", "added", "added"]);
    let report = first.json();
    let admin = &rows(&report)[0];
    assert_eq!(admin["changes"][0]["field"], "roles");
    assert_eq!(
        admin["changes"][0]["new"],
        "Admin|Auditor|Manager|Reviewer|Tester"
    );

    // The second upload, with the text report: the one-line summary comes first.
    let second = import(&["--db", &db, &data("import_s4_2_second.csv")]);
    assert_eq!(second.status, 0, "{}{}", second.stdout, second.stderr);
    let (text, provenance) = split_provenance(&second.stdout);
    assert_eq!(
        text,
        "1 Added, 1 Updated, 0 Deleted, 1 Roles Added, 3 Unchanged, 0 Skipped, 0 Failed, 0 Warnings\n"
    );
    assert!(
        provenance[0].starts_with("input: /")
            && provenance[0].contains("/import_s4_2_second.csv 463 bytes, sha256 "),
        "{provenance:?}"
    );
    assert!(second.stderr.contains("notifyIfNewUser") && second.stderr.contains("mary"));

    assert_eq!(
        users(&db),
        [
            (
                "admin",
                "Admin",
                "true",
                "Admin|Auditor|Manager|Reviewer|Tester"
            ),
            ("jdoe", "Smith", "true", "Tester"),
            ("mary", "May", "true", "Coordinator"),
            ("pat", "Lee", "true", "Manager"),
            ("sam", "Sun", "true", "Reviewer|Tester"),
        ]
        .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()))
    );
    let mut store = SqliteStore::open(&db).unwrap();
    assert_eq!(
        store.catalog("default").unwrap().roles.unwrap(),
        [
            "Admin",
            "Auditor",
            "Coordinator",
            "Manager",
            "Reviewer",
            "Tester"
        ]
    );
    let mut f = Fetch::new("default");
    f.user_ids.push(normalize("MARY"));
    let mary = store.fetch(&f).unwrap();
    assert_eq!(mary[0].user.get(Field::ReportsTo), Some("pat"));
    assert_eq!(mary[0].user.get(Field::TaskNotification), Some("Email"));
}

/// The JSON report has what the command documents: summary counts, file
/// issues, and one row per input row (line, key, outcome, issues with code,
/// severity, column and message).
#[test]
fn the_json_report_has_summary_issues_and_rows() {
    let dir = TempDir::new("json");
    let db = dir.path("users.db");
    let run = import_json(&db, &[&data("import_one_bad_row.csv")], 1);
    let report = run.json();
    for key in [
        "added",
        "updated",
        "deleted",
        "unchanged",
        "skipped",
        "failed",
        "roles_added",
        "warnings",
    ] {
        assert!(report["summary"][key].is_u64(), "summary.{key}: {report}");
    }
    assert!(report["issues"].is_array());
    let rows = rows(&report);
    assert_eq!(rows.len(), 3);
    for (row, (line, key)) in rows.iter().zip([(2, "ann"), (3, "bob"), (4, "cid")]) {
        assert_eq!(
            (row["line"].as_u64(), row["key"].as_str()),
            (Some(line), Some(key))
        );
        assert!(row["issues"].is_array());
    }
    let issue = &rows[1]["issues"][0];
    assert_eq!(issue["code"], "invalid_email");
    assert_eq!(issue["severity"], "error");
    assert_eq!(issue["column"], "email");
    assert!(issue["message"].as_str().is_some_and(|m| !m.is_empty()));

    // A file-level issue: an unknown column is a warning with a line.
    let file = dir.write(
        "extra.csv",
        "userId,email,shoeSize\nann,ann@example.com,42\n",
    );
    let run = import_json(&db, &[&file], 0);
    let issue = &run.json()["issues"][0];
    assert_eq!(
        (&issue["code"], &issue["severity"], &issue["column"]),
        (
            &Value::from("unknown_column"),
            &Value::from("warning"),
            &Value::from("shoeSize")
        )
    );
    assert_eq!(issue["line"], 1);
}

/// With the default policy a file with one bad row is rejected: the bad row
/// `failed`, the good rows `skipped`, nothing written, exit 1; the error CSV
/// holds the bad row. Under `--on-error skip-invalid` the good rows go in.
#[test]
fn a_rejected_file_writes_nothing() {
    let dir = TempDir::new("rejected");
    let db = dir.path("users.db");
    let errors = dir.path("errors.csv");
    let run = import_json(
        &db,
        &["--errors", &errors, &data("import_one_bad_row.csv")],
        1,
    );
    assert_eq!(run.summary(), [0, 0, 0, 0, 0, 2, 1, 0]);
    assert_eq!(run.outcomes(), ["skipped", "failed", "skipped"]);
    assert_eq!(run.json()["rejected"], true);
    assert_eq!(run.json()["issues"][0]["code"], "file_rejected");
    assert!(users(&db).is_empty());
    assert!(
        SqliteStore::open(&db)
            .unwrap()
            .catalog("default")
            .unwrap()
            .roles
            == Some(vec![])
    );
    let csv = std::fs::read_to_string(&errors).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].ends_with(",line,error"), "{csv}");
    assert!(
        lines[1].starts_with("bob,,Bob,Ray,bob@example,") && lines[1].contains(",3,"),
        "{csv}"
    );

    let run = import_json(
        &db,
        &[
            "--on-error",
            "skip-invalid",
            &data("import_one_bad_row.csv"),
        ],
        1,
    );
    assert_eq!(run.summary(), [2, 0, 0, 2, 0, 0, 1, 0]);
    assert_eq!(run.outcomes(), ["added", "failed", "added"]);
    let ids: Vec<String> = users(&db).into_iter().map(|u| u.0).collect();
    assert_eq!(ids, ["ann", "cid"]);
}

/// A delete file run twice: the second run has nothing to delete, its rows
/// are skipped with `not_found` warnings, and that is a success.
#[test]
fn a_delete_file_run_twice() {
    let dir = TempDir::new("delete");
    let db = dir.path("users.db");
    tenant_admin_directory(&db);
    import_json(&db, &[&data("import_s4_1_first.csv")], 0);
    import_json(&db, &[&data("import_s4_2_second.csv")], 0);

    let first = import_json(&db, &[&data("import_s4_3_delete.csv")], 0);
    assert_eq!(first.summary(), [0, 0, 2, 0, 0, 0, 0, 0]);
    assert_eq!(first.outcomes(), ["deleted", "deleted"]);
    let ids: Vec<String> = users(&db).into_iter().map(|u| u.0).collect();
    assert_eq!(ids, ["admin", "jdoe", "pat"]);

    let again = import_json(&db, &[&data("import_s4_3_delete.csv")], 0);
    assert_eq!(again.summary(), [0, 0, 0, 0, 0, 2, 0, 2]);
    let report = again.json();
    for row in rows(&report) {
        assert_eq!(row["outcome"], "skipped");
        assert_eq!(row["issues"][0]["code"], "not_found");
        assert_eq!(row["issues"][0]["severity"], "warning");
    }
    assert_eq!(users(&db).len(), 3);
}

/// `--dry-run` reports what would happen and leaves the database as it was,
/// byte for byte; on a database that does not exist yet, it creates nothing.
#[test]
fn a_dry_run_leaves_the_database_untouched() {
    let dir = TempDir::new("dry");
    let db = dir.path("users.db");

    let run = import_json(&db, &["--dry-run", &data("import_s4_0_directory.csv")], 0);
    assert_eq!(run.json()["dry_run"], true);
    assert_eq!(run.summary(), [1, 0, 0, 1, 0, 0, 0, 0]);
    assert!(!Path::new(&db).exists(), "a dry run created the database");

    tenant_admin_directory(&db);
    let before = std::fs::read(&db).unwrap();
    let run = import_json(&db, &["--dry-run", &data("import_s4_1_first.csv")], 0);
    assert_eq!(run.summary(), [3, 1, 0, 4, 0, 0, 0, 0]);
    assert_eq!(run.outcomes(), ["updated", "added", "added", "added"]);
    let text = import(&["--db", &db, "--dry-run", &data("import_s4_1_first.csv")]);
    assert!(
        text.stdout
            .starts_with("Dry run (nothing written): 3 Added, 1 Updated, 0 Deleted, 4 Roles Added"),
        "{}",
        text.stdout
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "a dry run changed the database"
    );
    assert_eq!(users(&db).len(), 1);
}

/// `--export` alone writes the tenant's users in the canonical format;
/// importing that file changes nothing; an export after a run is the same file.
#[test]
fn export_then_import_is_a_no_op() {
    let dir = TempDir::new("export");
    let db = dir.path("users.db");
    tenant_admin_directory(&db);
    import_json(&db, &[&data("import_s4_1_first.csv")], 0);
    import_json(&db, &[&data("import_s4_2_second.csv")], 0);

    let export = dir.path("export.csv");
    let run = import(&["--db", &db, "--export", &export]);
    assert_eq!((run.status, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert!(run.stderr.contains("exported 5 user(s)"), "{}", run.stderr);
    let exported = std::fs::read_to_string(&export).unwrap();
    let header: Vec<&str> = Field::ALL.iter().map(|f| f.header()).collect();
    assert_eq!(exported.lines().next(), Some(header.join(",").as_str()));
    assert_eq!(exported.lines().count(), 6, "{exported}");

    let again = import_json(&db, &[&export], 0);
    assert_eq!(again.outcomes(), ["unchanged"; 5]);
    assert_eq!(again.summary(), [0, 0, 0, 0, 5, 0, 0, 0]);

    let after = dir.path("after.csv");
    import_json(
        &db,
        &["--export", &after, &data("import_s4_2_second.csv")],
        0,
    );
    assert_eq!(std::fs::read_to_string(&after).unwrap(), exported);
}

/// The options reach the import: mode, unknown-role policy, grantable
/// roles, the acting administrator, the deletion cap, the tenant.
#[test]
fn the_options_reach_the_import() {
    let dir = TempDir::new("options");
    let db = dir.path("users.db");
    let issue_codes = |run: &Run| -> Vec<String> {
        let report = run.json();
        let file = report["issues"].as_array().cloned().unwrap_or_default();
        file.iter()
            .chain(
                rows(&report)
                    .iter()
                    .flat_map(|r| r["issues"].as_array().cloned().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .map(|i| i["code"].as_str().unwrap_or("?").to_owned())
            .collect()
    };

    // --unknown-roles reject: a fresh database knows no role.
    let run = import_json(
        &db,
        &[
            "--unknown-roles",
            "reject",
            &data("import_s4_0_directory.csv"),
        ],
        1,
    );
    assert_eq!(issue_codes(&run), ["file_rejected", "unknown_role"]);
    tenant_admin_directory(&db);

    // --unknown-roles fallback:ROLE: the unknown role becomes Admin, with a warning.
    let ghost = dir.write(
        "ghost.csv",
        "userId,email,roles\ngus,gus@example.com,Ghost\n",
    );
    let run = import_json(
        &db,
        &["--unknown-roles", "fallback:Admin", "--dry-run", &ghost],
        0,
    );
    assert_eq!(issue_codes(&run), ["unknown_role"]);
    assert_eq!(run.summary()[7], 1);

    // --mode create-only: admin exists.
    let run = import_json(
        &db,
        &["--mode", "create-only", &data("import_s4_1_first.csv")],
        1,
    );
    assert_eq!(issue_codes(&run), ["file_rejected", "already_exists"]);
    assert_eq!(users(&db).len(), 1);

    // --mode update-only: jdoe, pat and sam do not exist.
    let run = import_json(
        &db,
        &["--mode", "update-only", &data("import_s4_1_first.csv")],
        1,
    );
    assert_eq!(
        issue_codes(&run),
        ["file_rejected", "not_found", "not_found", "not_found"]
    );

    // --grantable: only Tester may be granted.
    let run = import_json(
        &db,
        &["--grantable", "Tester", &data("import_s4_1_first.csv")],
        1,
    );
    assert!(
        issue_codes(&run).contains(&"role_not_grantable".to_owned()),
        "{}",
        run.stdout
    );
    assert_eq!(users(&db).len(), 1);

    // --as: the acting administrator cannot disable themselves.
    let off = dir.write(
        "off.csv",
        "userId,email,enabled\nadmin,admin@example.com,false\n",
    );
    let run = import_json(&db, &["--as", "admin", &off], 1);
    assert_eq!(issue_codes(&run), ["file_rejected", "self_lockout"]);
    import_json(&db, &["--as", "someone-else", "--dry-run", &off], 0);

    // --tenant: a row naming another tenant is refused.
    let run = import_json(
        &db,
        &["--tenant", "acme", &data("import_s4_1_first.csv")],
        1,
    );
    assert_eq!(issue_codes(&run), ["file_rejected", "tenant_mismatch"]);

    // --max-deletes: two deletes over a cap of one trip the guard.
    import_json(&db, &[&data("import_s4_2_second.csv")], 0);
    let run = import_json(
        &db,
        &["--max-deletes", "1", &data("import_s4_3_delete.csv")],
        1,
    );
    assert!(
        issue_codes(&run).contains(&"guard_tripped".to_owned()),
        "{}",
        run.stdout
    );
    assert_eq!(users(&db).len(), 5);

    // --mode mirror: the users the file does not name are disabled.
    let run = import_json(
        &db,
        &["--mode", "mirror", &data("import_s4_0_directory.csv")],
        0,
    );
    let report = run.json();
    let disabled: Vec<&str> = report["directory"]
        .as_array()
        .map(|d| d.iter().filter_map(|c| c["user_id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(disabled, ["jdoe", "mary", "pat", "sam"]);
    let enabled: Vec<(String, String)> = users(&db).into_iter().map(|u| (u.0, u.2)).collect();
    assert_eq!(
        enabled,
        [
            ("admin", "true"),
            ("jdoe", "false"),
            ("mary", "false"),
            ("pat", "false"),
            ("sam", "false")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
}

/// Usage errors and unreadable files exit with 2 and change nothing.
#[test]
fn usage_errors_and_unreadable_files_exit_2() {
    let dir = TempDir::new("usage");
    let db = dir.path("users.db");
    let file = data("import_s4_0_directory.csv");
    let missing = dir.path("no-such-file.csv");
    for (args, message) in [
        (vec![], "nothing to do"),
        (vec!["--bogus", file.as_str()], "unknown option --bogus"),
        (vec!["--mode", "sideways", file.as_str()], "--mode sideways"),
        (
            vec!["--on-error", "ignore", file.as_str()],
            "--on-error ignore",
        ),
        (
            vec!["--unknown-roles", "fallback:", file.as_str()],
            "--unknown-roles",
        ),
        (vec!["--report", "xml", file.as_str()], "--report xml"),
        (
            vec!["--max-deletes", "many", file.as_str()],
            "--max-deletes many",
        ),
        (vec!["--threads", "0", file.as_str()], "--threads 0"),
        (vec![file.as_str(), "--db"], "--db needs a value"),
        (vec![file.as_str(), file.as_str()], "only one FILE"),
        (vec!["--errors", "e.csv"], "need a FILE"),
        (vec!["--dry-run=yes", file.as_str()], "takes no value"),
        (vec![missing.as_str()], "cannot open"),
        (vec!["--export", "out.csv"], "cannot open database"),
    ] {
        let mut all = vec!["--db", db.as_str()];
        all.extend(args);
        let run = import(&all);
        assert_eq!(run.status, 2, "{all:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(message), "{all:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{all:?}: {}", run.stdout);
        assert!(!Path::new(&db).exists(), "{all:?} created the database");
    }
    let help = import(&["--help"]);
    assert_eq!(help.status, 0);
    assert!(help.stdout.starts_with("usage: import [OPTIONS] [FILE]"));
    // `--name=value` works like `--name value`.
    import_json(&db, &["--dry-run", "--tenant=default", &file], 0);
}

/// The command's threads change nothing but the time: a file large enough
/// to be read, checked and planned in pieces (over 1 MiB, over 50,000 rows,
/// many batches), with invalid rows, duplicates, manager chains, deletes and
/// users already in the directory, gives the same report and the same
/// directory with one thread as with three.
#[test]
fn threads_change_nothing_but_the_time() {
    let dir = TempDir::new("threads");
    let mut file = String::from("userId,email,lastName,reportsTo,roles,transaction\n");
    let mut seed = String::from("userId,email,lastName\n");
    for i in 0..52_000u32 {
        let manager = if i % 40 == 0 {
            String::new()
        } else {
            format!("u{}", i - 1)
        };
        let email = match i % 997 {
            0 => "not-an-email".to_owned(),
            1 => "u1@example.com".to_owned(), // a duplicate email
            _ => format!("u{i}@example.com"),
        };
        let roles = ["Staff", "Staff|Admin", "Sales|Support|Staff"][(i % 3) as usize];
        let delete = if i % 1_000 == 999 { "DELETE" } else { "" };
        file.push_str(&format!(
            "u{i},{email},Last{i},{manager},{roles},{delete}\n"
        ));
        // A fifth of the users, and those the file deletes, are there already.
        if i % 5 == 0 || !delete.is_empty() {
            seed.push_str(&format!("u{i},u{i}@example.com,Old{i}\n"));
        }
    }
    let (users_csv, seed_csv) = (dir.path("users.csv"), dir.path("seed.csv"));
    std::fs::write(&users_csv, &file).expect("write the file");
    std::fs::write(&seed_csv, &seed).expect("write the seed");
    assert!(
        file.len() > 1 << 20,
        "{} bytes: too small to be read in pieces",
        file.len()
    );
    let mut runs = Vec::new();
    for threads in ["1", "3"] {
        let db = dir.path(&format!("threads-{threads}.db"));
        let export = dir.path(&format!("threads-{threads}.csv"));
        import_json(&db, &[&seed_csv], 0);
        let run = import_json(
            &db,
            &[
                "--threads",
                threads,
                "--on-error",
                "skip-invalid",
                "--export",
                &export,
                &users_csv,
            ],
            1,
        );
        let report = run.json();
        let exported = std::fs::read_to_string(&export).expect("read the export");
        runs.push((report["summary"].clone(), rows(&report).clone(), exported));
    }
    let summary = &runs[0].0;
    assert!(
        summary["failed"].as_u64() > Some(100)
            && summary["added"].as_u64() > Some(35_000)
            && summary["updated"].as_u64() > Some(9_000)
            && summary["deleted"].as_u64() > Some(10),
        "the file exercises every outcome: {summary}"
    );
    assert_eq!(runs[0].1.len(), 52_000);
    assert!(runs[0] == runs[1], "one thread and three threads differ");
}

/// A text report's lines before where the import comes from, and those
/// lines (input, import, settings).
fn split_provenance(stdout: &str) -> (String, Vec<String>) {
    let at = stdout.find("\ninput: ").map_or(0, |i| i + 1);
    let provenance: Vec<String> = stdout[at..].lines().map(str::to_owned).collect();
    assert_eq!(provenance.len(), 3, "three lines of provenance: {stdout}");
    (stdout[..at].to_owned(), provenance)
}

/// The README's command, on a fresh database: its output is the README's.
#[test]
fn the_readme_command_on_a_fresh_database() {
    let dir = TempDir::new("readme");
    let db = dir.path("users.db");
    let sample = format!("{}/examples/data/users.csv", env!("CARGO_MANIFEST_DIR"));
    let run = import(&["--db", &db, "--on-error", "skip-invalid", &sample]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let (text, provenance) = split_provenance(&run.stdout);
    assert_eq!(
        text,
        "6 Added, 0 Updated, 0 Deleted, 5 Roles Added, 0 Unchanged, 0 Skipped, 1 Failed, 0 Warnings\n\
         line 6, email: invalid email address: the domain needs a dot (e.g. example.com) [invalid_email]\n"
    );
    let size = std::fs::metadata(&sample).map(|m| m.len()).unwrap_or(0);
    assert!(
        provenance[0].starts_with(&format!("input: {sample} {size} bytes, sha256 ")),
        "{provenance:?}"
    );
    assert!(provenance[1].starts_with("import: tenant default, user-import "));
    assert!(provenance[2].starts_with("settings: users are matched by userId; "));
    assert_eq!(users(&db).len(), 6);
    // Without the flag the file is rejected whole (the default policy).
    let dir = TempDir::new("readme-default");
    let db = dir.path("users.db");
    let run = import(&["--db", &db, &sample]);
    assert_eq!(run.status, 1);
    assert!(run.stdout.starts_with(
        "0 Added, 0 Updated, 0 Deleted, 0 Roles Added, 0 Unchanged, 6 Skipped, 1 Failed, 0 Warnings\n"
    ));
    assert!(users(&db).is_empty());
}

/// The binary itself (built by `cargo test` next to the test binaries, in
/// `target/<profile>/examples/`): its exit status and stdout. Skipped, with a
/// note, when it was not built (`cargo test --test import_command` alone
/// builds no examples).
#[test]
fn the_built_binary() {
    let Some(binary) = std::env::current_exe().ok().and_then(|exe| {
        let profile_dir = exe.parent()?.parent()?;
        let bin = profile_dir
            .join("examples")
            .join(format!("import{}", std::env::consts::EXE_SUFFIX));
        bin.exists().then_some(bin)
    }) else {
        eprintln!("the import example is not built; skipping (run `cargo test` to build it)");
        return;
    };
    let dir = TempDir::new("binary");
    let db = dir.path("users.db");
    let run = |args: &[&str]| {
        std::process::Command::new(&binary)
            .args(args)
            .output()
            .expect("run the import binary")
    };
    let out = run(&[
        "--db",
        &db,
        "--report",
        "json",
        &data("import_s4_0_directory.csv"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["summary"]["added"], 1);
    let out = run(&["--db", &db, &data("import_one_bad_row.csv")]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["--db", &db, "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}

/// `--profile`: a saved profile (here German headers, email as key)
/// drives the import; options given on the command line override it; a
/// broken profile is a usage error. `--template` prints the file to fill in.
#[test]
fn a_saved_profile_and_its_template() {
    let dir = TempDir::new("profile");
    let db = dir.path("users.db");
    let profile = dir.write(
        "workspace.json",
        r#"{
            "version": 1,
            "key": "email",
            "required": ["email", "firstName", "lastName"],
            "mapping": {"E-Mail-Adresse": {"field": "email"}, "Vorname": {"field": "firstName"}, "Nachname": {"field": "lastName"}},
            "unknown_roles": "create"
        }"#,
    );
    let template = import(&["--profile", &profile, "--template"]);
    assert_eq!(template.status, 0, "{}", template.stderr);
    assert!(
        template
            .stdout
            .starts_with("userId,tenant,Vorname,Nachname,E-Mail-Adresse,"),
        "{}",
        template.stdout
    );
    let file = dir.write(
        "mitarbeiter.csv",
        "E-Mail-Adresse;Vorname;Nachname;roles\nanna@example.com;Anna;Berg;Tester\n",
    );
    let run = import_json(&db, &["--profile", &profile, &file], 0);
    assert_eq!(run.summary()[0], 1);
    // The email stands in for the missing user id.
    assert_eq!(users(&db)[0].0, "anna@example.com");
    // Update-only from the command line overrides the profile's upsert.
    let other = dir.write(
        "neu.csv",
        "E-Mail-Adresse;Vorname;Nachname\nneu@example.com;Neu;Mann\n",
    );
    let run = import_json(
        &db,
        &["--profile", &profile, "--mode", "update-only", &other],
        1,
    );
    assert_eq!(run.outcomes(), ["failed"]);
    // A profile with a typo is refused before anything is read.
    let broken = dir.write("broken.json", r#"{"mdoe": "mirror"}"#);
    let run = import(&["--db", &db, "--profile", &broken, &file]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("mdoe"), "{}", run.stderr);
}

/// Workbooks and zips, when the library is built with `xlsx` and `zip`.
#[cfg(all(feature = "xlsx", feature = "zip"))]
#[test]
fn workbooks_and_zips() {
    let dir = TempDir::new("formats");
    let db = dir.path("users.db");
    let run = import_json(&db, &["--on-error", "skip-invalid", &data("users.zip")], 0);
    assert_eq!(run.summary()[0], 3, "{}", run.stdout);
    let run = import_json(&db, &["--on-error", "skip-invalid", &data("users.xlsx")], 1);
    let json = run.json();
    let failed: Vec<u64> = rows(&json)
        .iter()
        .filter(|r| r["outcome"] == "failed")
        .map(|r| r["line"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(failed, [5], "the sheet's row number: {}", run.stdout);
}

#[test]
fn presets_are_listed_and_read_a_vendors_template_as_it_is() {
    let listed = import(&["--presets"]);
    assert_eq!(listed.status, cli::EXIT_OK);
    for name in [
        "okta",
        "entra",
        "m365",
        "google",
        "zendesk",
        "atlassian",
        "canvas",
        "moodle",
    ] {
        assert!(listed.stdout.contains(name), "{}", listed.stdout);
    }

    let dir = TempDir::new("preset");
    let db = dir.path("users.db");
    let file = data("vendors/entra.csv");
    let run = import_json(&db, &["--preset", "entra", &file], cli::EXIT_OK);
    assert_eq!(run.summary()[0], 2);
    let report = run.json();
    assert_eq!(report["input"]["preset"], "entra");
    assert_eq!(report["input"]["preamble"][0], "version:v1.0");
    // `Block sign in` Yes: the second user is not enabled.
    let enabled: Vec<String> = users(&db).into_iter().map(|u| u.2).collect();
    assert_eq!(enabled, ["true", "false"]);
    // Again: nothing changes (the display names are stored too).
    let again = import_json(&db, &["--preset", "entra", &file], cli::EXIT_OK);
    assert_eq!(again.summary()[4], 2, "{}", again.stdout);

    let text = import(&["--db", &db, "--dry-run", "--preset", "entra", &file]);
    assert!(
        text.stdout
            .contains("read with the entra preset; skipped before the header: line 1"),
        "{}",
        text.stdout
    );
    let unknown = import(&["--db", &db, "--preset", "nope", &file]);
    assert_eq!(unknown.status, cli::EXIT_USAGE);
    assert!(unknown.stderr.contains("--presets"), "{}", unknown.stderr);
}

/// `--report json` says where the import comes from: the file's SHA-256
/// and size, the tenant, the acting user, the library's version, the times
/// and the profile as applied.
#[test]
fn the_json_report_holds_the_provenance() {
    let dir = TempDir::new("provenance");
    let db = dir.path("users.db");
    let file = data("import_s4_1_first.csv");
    let bytes = std::fs::read(&file).unwrap();
    let run = import_json(
        &db,
        &[
            "--tenant",
            "acme",
            "--as",
            "root",
            "--on-error",
            "skip-invalid",
            &file,
        ],
        1, // a row fails on a fresh database
    );
    let report = run.json();
    let p = &report["provenance"];
    let expected = user_import::Importer::new("acme").validate(&bytes, None);
    assert_eq!(p["input_sha256"], expected.input().sha256.as_str());
    assert_eq!(p["input_bytes"], bytes.len() as u64);
    assert_eq!(p["input_name"], file.as_str());
    assert_eq!(p["format"], "csv");
    assert_eq!(p["tenant"], "acme");
    assert_eq!(p["acting_user"], "root");
    assert_eq!(p["library_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(p["profile"]["on_error"], "skip_invalid");
    let times: Vec<&str> = ["started_at", "planned_at", "finished_at"]
        .iter()
        .map(|t| p[t].as_str().unwrap_or_default())
        .collect();
    for t in &times {
        // RFC 3339, UTC, to the second: 2026-12-02T11:48:00Z.
        let b = t.as_bytes();
        assert!(
            b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z',
            "{t}"
        );
    }
    assert!(times[0] <= times[1] && times[1] <= times[2], "{times:?}");
    assert!(
        p["decisions"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d == "rows with errors are skipped")),
        "{p}"
    );
}

/// Import a file, change one imported user by hand, apply the undo: that
/// user is a `conflict` and keeps the hand's change; every other user is
/// exactly as before the import (the exports match but for that user), and
/// the roles the import created are gone again.
#[test]
fn an_undo_takes_an_import_back_but_a_user_changed_since() {
    let dir = TempDir::new("undo");
    let db = dir.path("users.db");
    tenant_admin_directory(&db);
    import_json(&db, &[&data("import_s4_1_first.csv")], 0);
    let before = dir.path("before.csv");
    import_json(&db, &["--export", &before], 0);

    // The second upload adds mary, updates jdoe and creates a role.
    let undo = dir.path("undo.json");
    let second = import_json(
        &db,
        &["--undo-out", &undo, &data("import_s4_2_second.csv")],
        0,
    );
    assert_eq!(second.summary(), [1, 1, 0, 1, 3, 0, 0, 0]);
    let changed: Vec<String> = rows(&second.json())
        .iter()
        .filter(|r| r["outcome"] != "unchanged")
        .map(|r| r["key"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");

    // One of them is changed by hand (through the command, as any other
    // program would, which gives the user a new version).
    let by_hand_id = &changed[0];
    let by_hand = dir.path("by-hand.csv");
    let export = std::fs::read_to_string(&before).unwrap();
    let header = export.lines().next().unwrap_or_default();
    let now = dir.path("now.csv");
    import_json(&db, &["--export", &now], 0);
    let now = std::fs::read_to_string(&now).unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let last = columns.iter().position(|c| *c == "lastName").unwrap();
    let line = now
        .lines()
        .find(|l| l.starts_with(&format!("{by_hand_id},")))
        .expect("the user in the export");
    let mut cells: Vec<&str> = line.split(',').collect();
    cells[last] = "ByHand";
    std::fs::write(&by_hand, format!("{header}\n{}\n", cells.join(","))).unwrap();
    import_json(&db, &[&by_hand], 0);

    // The undo: the hand-changed user is a conflict, the other comes back.
    let run = import_json(&db, &["--apply-plan", &undo], 1);
    let report = run.json();
    let outcome = |id: &str| {
        rows(&report)
            .iter()
            .find(|r| r["key"] == id)
            .map(|r| (r["outcome"].clone(), r["issues"].to_string()))
    };
    let (hand_outcome, hand_issues) =
        outcome(by_hand_id).expect("the row of the hand-changed user");
    assert_eq!(hand_outcome, "failed");
    assert!(hand_issues.contains("conflict"), "{hand_issues}");
    assert_ne!(outcome(&changed[1]).map(|o| o.0), Some("failed".into()));
    assert!(
        report["provenance"]["decisions"][0]
            .as_str()
            .is_some_and(|d| d.starts_with("undo of the import of sha256 "))
    );

    // An export after the undo equals the one before the import, but for
    // the hand-changed user.
    let after = dir.path("after.csv");
    import_json(&db, &["--export", &after], 0);
    let after = std::fs::read_to_string(&after).unwrap();
    let others = |export: &str| -> Vec<String> {
        export
            .lines()
            .filter(|l| !l.starts_with(&format!("{by_hand_id},")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(after.lines().next(), Some(header));
    assert_eq!(others(&after), others(&export));
    assert!(
        after
            .lines()
            .any(|l| l.starts_with(&format!("{by_hand_id},")) && l.contains("ByHand")),
        "{after}"
    );
}

/// A dry run's plan, stored with `--plan-out`, is applied as reviewed with
/// `--apply-plan`; applied again, its rows are conflicts (the users changed
/// since it was planned) and nothing is overwritten.
#[test]
fn a_reviewed_plan_is_applied_as_it_was_planned() {
    let dir = TempDir::new("plan-out");
    let db = dir.path("users.db");
    tenant_admin_directory(&db);
    let plan = dir.path("plan.json");
    let dry = import_json(
        &db,
        &[
            "--dry-run",
            "--plan-out",
            &plan,
            &data("import_s4_1_first.csv"),
        ],
        0,
    );
    assert_eq!(dry.summary(), [3, 1, 0, 4, 0, 0, 0, 0]);
    assert_eq!(users(&db).len(), 1, "a dry run writes nothing");
    let applied = import_json(&db, &["--apply-plan", &plan], 0);
    assert_eq!(applied.summary(), [3, 1, 0, 4, 0, 0, 0, 0]);
    assert_eq!(users(&db).len(), 4);
    let again = import_json(&db, &["--apply-plan", &plan], 1);
    assert_eq!(again.summary()[6], 4, "four rows fail: {}", again.stdout);
    // Usage errors.
    let both = import(&[
        "--db",
        &db,
        "--apply-plan",
        &plan,
        &data("import_s4_1_first.csv"),
    ]);
    assert_eq!(both.status, 2, "{}", both.stderr);
    let not_a_plan = import(&["--db", &db, "--apply-plan", &data("import_s4_1_first.csv")]);
    assert_eq!(not_a_plan.status, 2);
    assert!(
        not_a_plan.stderr.contains("is not a plan"),
        "{}",
        not_a_plan.stderr
    );
}

/// An undo that could not be written is refused before the import writes
/// anything; a plan stored for another tenant is refused.
#[test]
fn plans_and_undos_are_refused_before_anything_is_written() {
    let dir = TempDir::new("undo-refused");
    let db = dir.path("users.db");
    tenant_admin_directory(&db);
    let nowhere = dir.path("no/such/dir/undo.json");
    let run = import(&[
        "--db",
        &db,
        "--undo-out",
        &nowhere,
        &data("import_s4_1_first.csv"),
    ]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(users(&db).len(), 1, "nothing imported");
    let plan = dir.path("plan.json");
    import_json(
        &db,
        &[
            "--dry-run",
            "--plan-out",
            &plan,
            &data("import_s4_1_first.csv"),
        ],
        0,
    );
    let other = import(&["--db", &db, "--tenant", "other", "--apply-plan", &plan]);
    assert_eq!(other.status, 2, "{}", other.stderr);
    assert!(other.stderr.contains("tenant"), "{}", other.stderr);
    assert_eq!(users(&db).len(), 1);
}

/// The text report keeps only the rows with something to say, and says
/// what the JSON report (every row, written as it comes) says: the same
/// summary and the same issue lines, and the same error CSV. The JSON
/// report is the library's `to_json`.
#[test]
fn the_text_report_says_what_the_json_report_says() {
    let dir = TempDir::new("text-json");
    let file = dir.path("users.csv");
    let mut text = String::from("userId,firstName,lastName,email,transaction\n");
    for i in 0..300 {
        match i % 50 {
            7 => text.push_str(&format!("u{i},F,L,not-an-email,\n")),
            9 => text.push_str(&format!("gone{i},,,,DELETE\n")),
            _ => text.push_str(&format!("u{i},F,L,u{i}@example.org,\n")),
        }
    }
    std::fs::write(&file, text).unwrap();
    let run = |report: &str| {
        let db = dir.path(&format!("{report}.db"));
        let errors = dir.path(&format!("{report}.csv"));
        let args = [
            "--db",
            &db,
            "--report",
            report,
            "--on-error",
            "skip-invalid",
            "--errors",
            &errors,
            &file,
        ];
        let run = import(&args);
        assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
        (
            run.stdout,
            std::fs::read_to_string(&errors).unwrap(),
            users(&db),
        )
    };
    let (text_out, text_errors, text_users) = run("text");
    let (json_out, json_errors, json_users) = run("json");
    let report: user_import::Report = serde_json::from_str(&json_out).unwrap();
    assert_eq!(report.rows.len(), 300);
    // The rows written as they came are where `to_json` puts them.
    assert_eq!(format!("{}\n", report.to_json()), json_out);
    let (from_json, _) = split_provenance(&report.render_text());
    let (from_text, _) = split_provenance(&text_out);
    assert_eq!(from_text, from_json);
    assert_eq!(
        from_text.lines().next(),
        Some(
            "288 Added, 0 Updated, 0 Deleted, 0 Roles Added, 0 Unchanged, 6 Skipped, 6 Failed, 6 Warnings"
        )
    );
    assert_eq!(from_text.lines().count(), 1 + 12, "{from_text}");
    assert_eq!(text_errors, json_errors);
    assert_eq!(text_errors.lines().count(), 7, "{text_errors}");
    assert_eq!(text_users, json_users);
}

/// The report's rows written as they come give the whole report's bytes:
/// the JSON rows `to_json`'s, the text lines `render_text`'s; for rows with
/// changes, issues and none, beside directory changes and notices, and for
/// a report without rows.
#[test]
fn rows_written_as_they_come_are_the_whole_report() {
    use user_import::memory::InMemoryStore;
    use user_import::{Importer, Mode, Profile, User};
    let mut store = InMemoryStore::new();
    for id in ["ann", "gone"] {
        let user = User::builder()
            .set(Field::UserId, id)
            .set(Field::Email, &format!("{id}@example.org"))
            .set(Field::LastName, "Old")
            .build();
        store.insert("t", user);
    }
    let mut profile = Profile::default();
    profile.mode = Mode::Mirror;
    profile.on_error = user_import::ErrorPolicy::SkipInvalid;
    let importer = Importer::with_profile("t", profile);
    let file = b"userId,email,lastName,notifyIfNewUser\n\
                 ann,ann@example.org,New \"Quoted\"\\,false\n\
                 bob,bob@example.org,B\xc3\xa9,true\n\
                 eve,not-an-email,E,false\n";
    let empty = importer.run(b"userId,email\n", None, &mut InMemoryStore::new());
    let report = importer.run(file, Some("users.csv"), &mut store).unwrap();
    assert!(report.rows.iter().any(|r| !r.changes.is_empty()));
    assert!(report.rows.iter().any(|r| !r.issues.is_empty()));
    assert!(!report.directory.is_empty() && !report.notices.is_empty());
    for report in [report, empty.unwrap()] {
        let mut rows = json_rows::JsonRows::new().unwrap();
        for row in &report.rows {
            rows.push(row);
        }
        let mut out = Vec::new();
        rows.write_json(&report, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), report.to_json());
        let mut lines = text_rows::TextRows::new().unwrap();
        for row in &report.rows {
            lines.push(row);
        }
        let mut out = Vec::new();
        let mut lines = lines.into_reader().unwrap();
        report.write_text_with_rows(&mut lines, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), report.render_text());
    }
}

/// The error CSV copies the failed rows from the file read again after the
/// import, which must be the file imported: one changed since is refused,
/// not copied from; a file over the byte limit, of which nothing was read,
/// has no row to copy.
#[test]
fn the_error_csv_reads_the_file_again_only_if_it_is_unchanged() {
    let dir = TempDir::new("errors-again");
    let file = dir.path("users.csv");
    let db = dir.path("users.db");
    let errors = dir.path("errors.csv");
    std::fs::write(&file, "userId,email\na,a@example.org\nb,bad\n").unwrap();
    let run = import(&["--db", &db, "--errors", &errors, &file]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let csv = std::fs::read_to_string(&errors).unwrap();
    assert!(
        csv.starts_with("userId,email,line,error\nb,bad,3,"),
        "{csv}"
    );
    // What the import read of the file, and the file changed after:
    // longer, or as long.
    let path = Path::new(&file);
    let bytes = std::fs::read(path).unwrap();
    let v = user_import::Importer::new("t").validate(&bytes, Some("users.csv"));
    assert_eq!(cli::again(path, None, v.input()).unwrap(), bytes);
    for changed in [
        "userId,email\na,a@example.org\nb,worse\n",
        "userId,email\na,a@example.org\nb,bax\n",
    ] {
        std::fs::write(&file, changed).unwrap();
        let refused = cli::again(path, None, v.input()).unwrap_err();
        assert!(
            refused.contains("changed since it was imported"),
            "{refused}"
        );
    }
    // A file over the byte limit, of which nothing is read: there is no
    // row to copy, and no reason to read it again.
    let profile = dir.path("profile.json");
    std::fs::write(&profile, r#"{"limits": {"file_bytes": 10}}"#).unwrap();
    let run = import(&[
        "--db",
        &db,
        "--profile",
        &profile,
        "--errors",
        &errors,
        &file,
    ]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("wrote 0 failed row(s)"),
        "{}",
        run.stderr
    );
}

/// A pipe is imported a segment at a time, copied as it is read so that
/// it can be read again (for the report of a rejected file, for a file
/// imported whole, for the error CSV): the report, the error CSV and the
/// directory are those of the same file given by its path.
#[cfg(unix)]
#[test]
fn a_pipe_is_imported_as_the_file_is() {
    let dir = TempDir::new("pipe");
    let mut clean = String::from("userId,email,reportsTo,roles\n");
    for i in 0..3_000 {
        let manager = if i == 0 {
            String::new()
        } else {
            format!("u{}", i - 1)
        };
        clean.push_str(&format!("u{i},u{i}@example.org,{manager},Staff\n"));
    }
    // A row with an error: rejected (and read again for the report), or
    // under skip-invalid imported without it.
    let bad = format!("{clean}bad,not-an-email,,Staff\n");
    // The same first, in a file of more than one segment: rejected at its
    // first segment, with the rest still in the pipe, which the reading
    // for the report takes from the copy and then from the pipe.
    let mut first = String::from("userId,email,reportsTo,roles\nbad,not-an-email,,Staff\n");
    for i in 0..80_000 {
        first.push_str(&format!("u{i},u{i}@example.org,,Staff\n"));
    }
    // A user id twice, which the checks of the whole file find: imported
    // whole.
    let twice = format!("{clean}u5,again@example.org,,Staff\n");
    let skip: &[&str] = &["--on-error", "skip-invalid"];
    let cases: [(&str, &str, &[&str]); 5] = [
        ("clean", &clean, &[]),
        ("rejected", &bad, &[]),
        ("first", &first, &[]),
        ("skipping", &bad, skip),
        ("twice", &twice, skip),
    ];
    for (name, text, options) in cases {
        let file = dir.path(&format!("{name}.csv"));
        std::fs::write(&file, text).unwrap();
        let fifo = dir.path(&format!("{name}.pipe"));
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let both = ["file", "pipe"].map(|how| {
            let db = dir.path(&format!("{name}-{how}.db"));
            let errors = dir.path(&format!("{name}-{how}-errors.csv"));
            let mut args = vec!["--db", &db, "--report", "json", "--unknown-roles", "create"];
            args.extend_from_slice(options);
            args.extend_from_slice(&["--errors", &errors]);
            let run = if how == "file" {
                args.push(&file);
                import(&args)
            } else {
                // The pipe's writer, which the import reads as it writes.
                let writer = std::thread::spawn({
                    let (fifo, text) = (fifo.clone(), text.to_owned());
                    move || std::fs::write(fifo, text)
                });
                args.push(&fifo);
                let run = import(&args);
                // A writer the import left waiting is let go (it fails
                // the comparison below, rather than hanging the test).
                for _ in 0..200 {
                    if writer.is_finished() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                if !writer.is_finished() {
                    let _ = std::fs::read(&fifo);
                }
                writer.join().unwrap().unwrap();
                run
            };
            let mut report = run.json();
            for t in ["started_at", "planned_at", "finished_at"] {
                report["provenance"][t] = Value::Null;
            }
            report["input"]["name"] = Value::Null;
            report["provenance"]["input_name"] = Value::Null;
            let csv = std::fs::read_to_string(&errors).unwrap_or_default();
            (run.status, report, csv, users(&db))
        });
        let [(status, report, csv, users), pipe] = both;
        assert_eq!(status, pipe.0, "{name}");
        assert!(report == pipe.1, "{name}: the reports differ");
        assert_eq!(csv, pipe.2, "{name}");
        assert!(users == pipe.3, "{name}: the directories differ");
        let bad_row = matches!(name, "rejected" | "skipping" | "first");
        assert_eq!(csv.contains("bad,not-an-email"), bad_row, "{name}: {csv}");
        assert_eq!(csv.contains("again@"), name == "twice", "{name}: {csv}");
    }
}

/// A pipe's copy gives every reader the input from its start, in reads
/// of any size, while another reader is part way: from the copy as far
/// as it goes, then from the input.
#[test]
fn a_replay_reads_the_input_again_from_its_start() {
    use std::io::Read;
    let dir = TempDir::new("replay");
    let input = dir.path("input");
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&input, &bytes).unwrap();
    let replay = spool::Replay::new(std::fs::File::open(&input).unwrap()).unwrap();
    let mut first = replay.open();
    let mut head = [0u8; 100];
    first.read_exact(&mut head).unwrap();
    assert_eq!(head[..], bytes[..100]);
    // A second reader, in reads of 7 bytes: past where the first stopped.
    let mut second = replay.open();
    let mut got = Vec::new();
    let mut part = [0u8; 7];
    let mut went_on = false;
    loop {
        let n = second.read(&mut part).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&part[..n]);
        if got.len() >= 3_000 && !went_on {
            went_on = true;
            // The first goes on meanwhile, from the copy.
            let mut more = [0u8; 500];
            first.read_exact(&mut more).unwrap();
            assert_eq!(more[..], bytes[100..600]);
        }
    }
    assert_eq!(got, bytes);
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, bytes[600..]);
    assert_eq!(first.read(&mut []).unwrap(), 0);
    let mut third = Vec::new();
    replay.open().read_to_end(&mut third).unwrap();
    assert_eq!(third, bytes);
}

/// The temporary file the report's rows go to keeps the first error
/// writing it, writes nothing after it, and gives that error instead of
/// the file (the command then writes the text report without the rows'
/// lines, or no JSON report, and says so on stderr); one written without
/// error reads back from its start.
#[test]
fn a_spool_gives_its_first_write_error_instead_of_the_file() {
    use std::io::{Read, Write};
    let mut good = spool::Spool::new().unwrap();
    assert!(good.write(|f| f.write_all(b"one,")));
    assert!(good.write(|f| f.write_all(b"two")));
    let mut text = String::new();
    good.into_file().unwrap().read_to_string(&mut text).unwrap();
    assert_eq!(text, "one,two");

    let mut bad = spool::Spool::new().unwrap();
    assert!(bad.write(|f| f.write_all(b"one,")));
    assert!(!bad.write(|_| Err(std::io::Error::other("no space left"))));
    let mut called = false;
    assert!(!bad.write(|_| {
        called = true;
        Ok(())
    }));
    assert!(!called, "nothing is written after an error");
    assert_eq!(bad.into_file().unwrap_err().to_string(), "no space left");
}
