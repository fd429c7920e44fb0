//! What the `pipeline` and `sqlite` benches share. Each bench compiles its
//! own copy (`mod common;`) and uses what it needs:
//!
//! - here: a seeded PRNG, the name tables the generator draws from, small
//!   text helpers;
//! - [`args`]: the command line;
//! - [`generator`]: the generator (a users file, its ground truth, its directory);
//! - [`model`]: the reference results are checked against;
//! - [`clock`]: wall, CPU and waiting time, best of the repetitions;
//! - [`alloc`]: a counting allocator (current and peak heap).

#![allow(dead_code)]

pub mod alloc;
pub mod args;
pub mod clock;
pub mod generator;
pub mod model;

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
