//! Imports a users CSV into a user directory in SQLite or PostgreSQL and
//! prints the report.
//!
//! ```text
//! cargo run --release --example import -- [OPTIONS] [FILE]
//! cargo run --release --example import -- --help
//! ```
//!
//! - `sqlite_store.rs`: the `UserStore` over SQLite, the model adapter to copy.
//! - `pg_store.rs`: the `AsyncUserStore` over PostgreSQL (sqlx, tokio), the
//!   model async adapter.
//! - `cli.rs`: the command (options, report, exit status).
//! - `json_rows.rs`, `text_rows.rs`: the JSON report's rows and the text
//!   report's lines about rows, written to a temporary file as they come
//!   (`spool.rs`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

mod cli;
mod json_rows;
mod spool;
mod text_rows;
// The adapters have helpers (locations, locks) this command does not use.
#[allow(dead_code)]
mod pg_store;
// The adapter has helpers (locations, locks) this command does not use.
#[allow(dead_code)]
mod sqlite_store;

fn main() -> ExitCode {
    // Ctrl-C (SIGINT) cancels between batches: the report still says what
    // was done. A second Ctrl-C ends the process at once.
    let _ = ctrlc::set_handler(|| {
        if cli::INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut stderr = std::io::stderr();
    let interactive = stderr.is_terminal();
    let status = cli::run(
        std::env::args().skip(1),
        &mut stdout,
        &mut stderr,
        interactive,
    );
    let _ = stdout.flush();
    ExitCode::from(status)
}
