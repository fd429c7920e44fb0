//! The `import` command against PostgreSQL (`--db postgres://…`), end to
//! end: the same flags give the same output, exit statuses and directory as
//! on SQLite, step by step, and an export from either database imports into
//! the other as all unchanged. The server: see `tests/common/pg.rs`.
#![cfg(feature = "json")]

#[path = "../examples/import/cli.rs"]
mod cli;
#[path = "../examples/import/json_rows.rs"]
mod json_rows;
#[allow(dead_code)]
#[path = "../examples/import/pg_store.rs"]
mod pg_store;
#[path = "../examples/import/spool.rs"]
mod spool;
#[allow(dead_code)]
#[path = "../examples/import/sqlite_store.rs"]
mod sqlite_store;
#[path = "../examples/import/text_rows.rs"]
mod text_rows;

mod common;
#[allow(dead_code)]
#[path = "common/pg.rs"]
mod pg;

use common::TempDir;

/// What one run of the command gave.
#[derive(Debug, PartialEq)]
struct Run {
    status: u8,
    stdout: String,
    stderr: String,
}

/// Runs the command with `args`.
fn command(args: &[String]) -> Run {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let status = cli::run(args.iter().cloned(), &mut stdout, &mut stderr, false);
    Run {
        status,
        stdout: String::from_utf8(stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(stderr).expect("UTF-8 stderr"),
    }
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `text` with every RFC 3339 time (`2026-01-02T03:04:05Z`) blanked.
fn without_times(text: &str) -> String {
    let b = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let is_time = b.len() - i >= shape.len()
            && shape.iter().zip(&b[i..]).all(|(s, c)| match s {
                b'd' => c.is_ascii_digit(),
                s => s == c,
            });
        if is_time {
            out.push_str("TIME");
            i += shape.len();
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The output with what differs from run to run by nature blanked: the
/// times of the provenance, and the paths of the run's own files.
fn comparable(text: &str, out: &str, db: &str) -> String {
    let mut lines = Vec::new();
    for line in without_times(&text.replace(out, "OUT").replace(db, "DB")).lines() {
        let line = if line.starts_with("import: tenant ") {
            line.split(", from ").next().unwrap_or(line).to_owned()
        } else {
            line.to_owned()
        };
        lines.push(line);
    }
    let text = lines.join("\n");
    // The JSON report's times.
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(mut v) => {
            if let Some(p) = v.get_mut("provenance").and_then(|p| p.as_object_mut()) {
                for time in ["started_at", "planned_at", "finished_at"] {
                    p.remove(time);
                }
            }
            v.to_string()
        }
        Err(_) => text,
    }
}

/// One directory in SQLite and one in PostgreSQL, driven with the same
/// commands.
struct Both {
    dir: TempDir,
    sqlite: String,
    postgres: String,
}

impl Both {
    fn new(name: &str) -> Both {
        let dir = TempDir::new(&format!("pg-{name}"));
        for side in ["sqlite", "postgres"] {
            std::fs::create_dir_all(dir.0.join(side)).expect("a directory for the side");
        }
        let sqlite = dir.path("sqlite/users.db");
        Both {
            dir,
            sqlite,
            postgres: pg::fresh_database_blocking(name),
        }
    }

    /// Runs `args` (where `{out}` is a directory of each side's own) with
    /// `--db` each database; asserts both gave the same exit status, stdout
    /// and stderr, and that the directories export the same; returns the run.
    fn run(&self, args: &[&str]) -> Run {
        let mut runs = Vec::new();
        for (side, db) in [("sqlite", &self.sqlite), ("postgres", &self.postgres)] {
            let out = self.dir.path(side);
            let mut all = vec!["--db".to_owned(), db.clone()];
            all.extend(args.iter().map(|a| a.replace("{out}", &out)));
            let run = command(&all);
            runs.push(Run {
                status: run.status,
                stdout: comparable(&run.stdout, &out, db),
                stderr: comparable(&run.stderr, &out, db),
            });
        }
        let postgres = runs.pop().expect("two runs");
        let sqlite = runs.pop().expect("two runs");
        assert_eq!(sqlite, postgres, "{args:?}: SQLite, then PostgreSQL");
        for tenant in ["default", "other"] {
            assert_eq!(
                self.export("sqlite", tenant),
                self.export("postgres", tenant),
                "{args:?}: the exports of tenant {tenant}"
            );
        }
        sqlite
    }

    /// The export of `tenant` from one side.
    fn export(&self, side: &str, tenant: &str) -> String {
        let db = if side == "sqlite" {
            &self.sqlite
        } else {
            &self.postgres
        };
        let path = self.dir.path(&format!("{side}/export-{tenant}.csv"));
        let run = command(&[
            "--db".into(),
            db.clone(),
            "--tenant".into(),
            tenant.into(),
            "--export".into(),
            path.clone(),
        ]);
        assert_eq!(run.status, 0, "export from {side}: {run:?}");
        std::fs::read_to_string(&path).expect("the export")
    }
}

/// The walk-through of the command's tests, step by step on both databases.
#[test]
fn the_command_does_on_postgres_what_it_does_on_sqlite() {
    let both = Both::new("same");
    let big = both.dir.write("big.csv", &pg::generated(0, 2_500, 0, 0));
    // 10% updated, 1% deleted, 5% new.
    let changed = both
        .dir
        .write("changed.csv", &pg::generated(0, 2_625, 10, 100));
    let steps: &[(&[&str], u8)] = &[
        (&[&data("import_s4_0_directory.csv")], 0),
        (&["--report", "json", &data("import_s4_1_first.csv")], 0),
        (&["--dry-run", &data("import_s4_2_second.csv")], 0),
        (
            &[
                "--report",
                "json",
                "--undo-out",
                "{out}/undo.json",
                &data("import_s4_2_second.csv"),
            ],
            0,
        ),
        (&[&data("import_one_bad_row.csv")], 1),
        (
            &[
                "--on-error",
                "skip-invalid",
                "--errors",
                "{out}/errors.csv",
                &data("import_one_bad_row.csv"),
            ],
            1,
        ),
        (&["--report", "json", "--apply-plan", "{out}/undo.json"], 0),
        (&["--unknown-roles", "reject", &data("s3_users.csv")], 1),
        (&["--on-error", "skip-invalid", &data("s3_users.csv")], 1),
        (
            &[
                "--tenant",
                "other",
                "--preset",
                "okta",
                &data("vendors/okta.csv"),
            ],
            0,
        ),
        (
            &[
                "--tenant",
                "other",
                "--on-error",
                "skip-invalid",
                &data("s4_users.csv"),
            ],
            1,
        ),
        (
            &[
                "--dry-run",
                "--plan-out",
                "{out}/plan.json",
                &data("import_s4_3_delete.csv"),
            ],
            0,
        ),
        (&["--apply-plan", "{out}/plan.json"], 0),
        // Applied again: the users are gone already, nothing to do.
        (&["--apply-plan", "{out}/plan.json"], 0),
        (
            &[
                "--mode",
                "mirror",
                "--as",
                "admin",
                "--max-deletes",
                "1",
                &data("import_s4_1_first.csv"),
            ],
            1,
        ),
        (
            &[
                "--mode",
                "mirror",
                "--as",
                "admin",
                "--report",
                "json",
                &data("import_s4_1_first.csv"),
            ],
            0,
        ),
        (
            &["--grantable", "Standard", &data("import_s4_2_second.csv")],
            1,
        ),
        (&["--mode", "update-only", &data("s4_users.csv")], 0),
        (&["--report", "json", &big], 0),
        (&["--report", "json", &changed], 0),
        (&["--report", "json", &changed], 0),
        (&["--undo-out", "{out}/undo-big.json", &big], 0),
        (&["--apply-plan", "{out}/undo-big.json"], 0),
    ];
    let statuses: Vec<u8> = steps
        .iter()
        .map(|(args, _)| both.run(args).status)
        .collect();
    let expected: Vec<u8> = steps.iter().map(|&(_, status)| status).collect();
    assert_eq!(statuses, expected, "the exit statuses, step by step");
    // The error CSVs are the same too.
    let errors = |side: &str| std::fs::read(both.dir.path(&format!("{side}/errors.csv")));
    assert_eq!(errors("sqlite").ok(), errors("postgres").ok());
}

/// An export from either database imports into the other as all unchanged.
#[test]
fn an_export_from_either_database_imports_into_the_other_unchanged() {
    let both = Both::new("cross");
    both.run(&["--on-error", "skip-invalid", &data("s3_users.csv")]);
    both.run(&["--preset", "okta", &data("vendors/okta.csv")]);
    let from_sqlite = both.dir.path("sqlite/export-default.csv");
    let from_postgres = both.dir.path("postgres/export-default.csv");
    for (db, file) in [
        (&both.postgres, &from_sqlite),
        (&both.sqlite, &from_postgres),
    ] {
        let run = command(&[
            "--db".into(),
            db.clone(),
            "--report".into(),
            "json".into(),
            file.clone(),
        ]);
        assert_eq!(run.status, 0, "{run:?}");
        let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        let summary = &report["summary"];
        assert!(
            summary["unchanged"].as_u64().is_some_and(|n| n > 0),
            "{summary}"
        );
        for k in ["added", "updated", "deleted", "failed", "skipped"] {
            assert_eq!(summary[k], 0, "{k}: {summary}");
        }
    }
}

/// A dry run and an export write nothing: on a database without the
/// tables, none are created, and the dry run plans against an empty
/// directory.
#[test]
fn a_dry_run_creates_nothing_in_postgres() {
    let url = pg::fresh_database_blocking("dry");
    let run = command(&[
        "--db".into(),
        url.clone(),
        "--dry-run".into(),
        data("s4_users.csv"),
    ]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.starts_with("Dry run (nothing written): 3 Added"),
        "{}",
        run.stdout
    );
    let tables = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_one(&mut c)
            .await
            .expect("count the tables")
        });
    assert_eq!(tables, 0);
}

/// A server that cannot be reached is a usage error (exit 2) that names the
/// database, without its password.
#[test]
fn an_unreachable_server_exits_2() {
    let run = command(&[
        "--db".into(),
        "postgres://someone:p@ss@127.0.0.1:1/nowhere?password=other&sslmode=disable".into(),
        data("s4_users.csv"),
    ]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.starts_with(
            "error: cannot open database postgres://someone:***@127.0.0.1:1/nowhere?password=***&sslmode=disable"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("p@ss") && !run.stderr.contains("other"));
    let run = command(&[
        "--db".into(),
        "postgres://someone:secret@127.0.0.1:1/nowhere".into(),
        data("s4_users.csv"),
    ]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: cannot open database postgres://someone:***@127.0.0.1:1/nowhere"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("secret"));
}
