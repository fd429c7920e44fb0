//! What the `pipeline` and `sqlite` benches share: a seeded PRNG, the name
//! tables their generators draw from, small text helpers, the command line
//! and the scheduler's clock. Each bench
//! compiles its own copy (`mod common;`) and uses what it needs.

#![allow(dead_code)]

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// True with probability `per_10k / 10,000`.
    pub fn chance(&mut self, per_10k: usize) -> bool {
        self.below(10_000) < per_10k
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub const ROLES: [&str; 12] = [
    "Admin",
    "Auditor",
    "Coordinator",
    "Developer",
    "Finance",
    "Guest",
    "HR",
    "Manager",
    "Reviewer",
    "Sales",
    "Support",
    "Tester",
];

pub const FIRST: [&str; 30] = [
    "James",
    "Mary",
    "José",
    "Zoë",
    "Łukasz",
    "Søren",
    "François",
    "Ana María",
    "Nguyễn",
    "Dmitrij",
    "Άννα",
    "Yuki",
    "李",
    "Mohammed",
    "Siobhán",
    "Björn",
    "Chloé",
    "Raj",
    "Olga",
    "Ngozi",
    "Mateus",
    "Aoife",
    "Jürgen",
    "Maëlle",
    "Ólafur",
    "Priya",
    "Élodie",
    "Kofi",
    "Hana",
    "Zeynep",
];

pub const LAST: [&str; 26] = [
    "Smith",
    "García",
    "Müller",
    "O'Brien",
    "Ødegaard",
    "Nowak",
    "Dupont",
    "Kowalski",
    "van der Berg",
    "Smith, Jr.",
    "Núñez",
    "Иванов",
    "Tanaka",
    "王",
    "Okafor",
    "Schröder",
    "D'Angelo",
    "Lefèvre",
    "Hernández",
    "Johansson",
    "Nakamura-Lee",
    "Brown",
    "Østergård",
    "Çelik",
    "Dubois, PhD",
    "Wójcik",
];

pub const DOMAINS: [&str; 5] = [
    "example.com",
    "corp.example.org",
    "mail.acme.io",
    "eu.example.net",
    "research.example.edu",
];

pub fn fold_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let m = match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            'á' | 'à' | 'ä' | 'â' | 'ã' | 'å' | 'Á' => 'a',
            'é' | 'è' | 'ë' | 'ê' | 'ễ' | 'É' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' | 'ø' | 'Ø' | 'Ó' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            'ç' | 'Ç' => 'c',
            'ł' | 'Ł' => 'l',
            _ => continue,
        };
        out.push(m);
    }
    if out.is_empty() {
        out.push_str("user");
    }
    out
}

pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

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

/// This thread's time on a CPU and waiting for one (ns), from the scheduler's
/// statistics: on a busy machine the wall clock also counts time spent
/// waiting behind other processes, the CPU time does not.
pub fn schedstat() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
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
