//! The benches' command line.

/// The benches' command line: `--rows N` (`-n`), `--reps N`, `--quick`,
/// `--seed N`, `--batch N`, `--threads N`, `--only STEP,STEP` and, where the
/// bench takes it, `--write PATH`.
pub struct Args {
    pub rows: usize,
    pub reps: usize,
    pub seed: u64,
    pub batch: Option<usize>,
    pub threads: usize,
    /// The steps named with `--only`, each one of the bench's `steps`.
    pub only: Option<Vec<String>>,
    pub write: Option<String>,
}

/// Parses the command line of bench `name`, whose steps are `steps`.
/// `cargo bench` passes `--bench`; without it (`cargo test --benches`) the
/// bench is a smoke test of 2,000 rows.
pub fn parse_args(name: &str, steps: &[&str], threads: usize, takes_write: bool) -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let bench = argv.iter().any(|a| a == "--bench");
    let mut a = Args {
        rows: if bench { 100_000 } else { 2_000 },
        reps: if bench { 3 } else { 1 },
        seed: 0x00c0_ffee,
        batch: None,
        threads,
        only: None,
        write: None,
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--bench" => {}
            "--rows" | "-n" => a.rows = parse_count(&value()),
            "--reps" => a.reps = parse_count(&value()).max(1),
            "--seed" => a.seed = parse_count(&value()) as u64,
            "--batch" => a.batch = Some(parse_count(&value()).max(1)),
            "--threads" => a.threads = parse_count(&value()).max(1),
            "--quick" => {
                a.rows = 2_000;
                a.reps = 1;
            }
            "--write" if takes_write => a.write = Some(value()),
            "--only" => {
                let v = value();
                let only = v
                    .split(',')
                    .map(|s| {
                        let s = s.trim();
                        assert!(steps.contains(&s), "unknown step {s:?}");
                        s.to_owned()
                    })
                    .collect();
                a.only = Some(only);
            }
            "--help" | "-h" => {
                let write = if takes_write { " [--write PATH]" } else { "" };
                println!(
                    "cargo bench --bench {name} -- [--rows N] [--reps N] [--quick] [--seed N] \
                     [--batch N] [--threads N] [--only {}]{write}",
                    steps.join(",")
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }
    a.rows = a.rows.max(10);
    a
}

/// The command line of a bench whose steps are of type `S`: the common
/// arguments, and the steps `--only` names.
pub struct StepArgs<S> {
    pub common: Args,
    pub only: Option<Vec<S>>,
}

impl<S> std::ops::Deref for StepArgs<S> {
    type Target = Args;
    fn deref(&self) -> &Args {
        &self.common
    }
}

/// [`parse_args`] for a bench whose steps are `steps` (each with its name).
pub fn parse_step_args<S: Copy>(
    name: &str,
    steps: &[(S, &str)],
    threads: usize,
    takes_write: bool,
) -> StepArgs<S> {
    let names: Vec<&str> = steps.iter().map(|s| s.1).collect();
    let common = parse_args(name, &names, threads, takes_write);
    let only = common.only.as_ref().map(|o| {
        o.iter()
            .filter_map(|n| steps.iter().find(|s| s.1 == n).map(|s| s.0))
            .collect()
    });
    StepArgs { common, only }
}

/// A count: `100000`, `100_000`, `100k`, `1m`.
pub fn parse_count(s: &str) -> usize {
    let t = s.trim().replace('_', "").to_ascii_lowercase();
    let (num, mul) = if let Some(n) = t.strip_suffix('m') {
        (n.to_owned(), 1_000_000)
    } else if let Some(n) = t.strip_suffix('k') {
        (n.to_owned(), 1_000)
    } else {
        (t.clone(), 1)
    };
    num.parse::<usize>()
        .map(|n| n * mul)
        .unwrap_or_else(|_| panic!("not a count: {s:?}"))
}
