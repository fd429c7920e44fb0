//! Validates a users file and prints the report.
//!
//! ```text
//! cargo run --example validate -- [FILE] [--tenant NAME] [--json]
//! ```
//!
//! FILE defaults to `examples/data/users.csv`. Exit status: 0 when the file was
//! read (whatever it contains), 2 when it could not be read.

use std::process::ExitCode;

use user_import::Importer;

fn main() -> ExitCode {
    let mut path = String::from("examples/data/users.csv");
    let mut tenant = String::from("default");
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--tenant" => match args.next() {
                Some(t) => tenant = t,
                None => return usage("--tenant needs a value"),
            },
            a if a.starts_with("--") => return usage(&format!("unknown option {a}")),
            a => path = a.to_owned(),
        }
    }
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot open {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let importer = Importer::new(tenant);
    let validation = match importer.validate_reader(file, Some(&path)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!("{}", validation.to_json());
    } else {
        let info = validation.input();
        println!(
            "{path}: {}, {}, delimiter {:?}",
            info.format.as_str(),
            info.encoding.as_str(),
            info.delimiter
        );
        print!("{}", validation.render_text());
    }
    ExitCode::SUCCESS
}

fn usage(message: &str) -> ExitCode {
    eprintln!("{message}\nusage: validate [FILE] [--tenant NAME] [--json]");
    ExitCode::from(2)
}
