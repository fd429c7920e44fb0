//! File-level checks: the same key or email on several rows, and `reportsTo`
//! cycles. Both work on a compact sorted index (hash, row) rather than a map
//! of owned strings, so a million rows cost 8 MB here, not hundreds.

use crate::issue::{Code, Issue, Severity};
use crate::record::{Action, normalize};
use crate::schema::Field;

use super::Row;

/// At most this many other lines are named in a duplicate or cycle message.
const MAX_NAMED: usize = 10;

/// The hash of a value's normalized form (see [`normalize`]) under `seed`;
/// allocation-free for ASCII values, which are lower-cased eight bytes at a
/// time as they are hashed. Only compared within one process (sorted
/// indexes, where equal hashes are then compared as values), never stored.
pub(crate) fn key_hash(seed: u64, value: &str) -> u64 {
    let v = crate::record::trim(value);
    if v.is_ascii() {
        hash_words(seed, v.as_bytes(), true)
    } else {
        // Already lower case: the same bytes an ASCII value lower-cases to.
        hash_words(seed, normalize(v).as_bytes(), false)
    }
}

/// A folded-multiply hash (as foldhash's) of `bytes` read as little-endian
/// words, the last one zero-padded, with the length mixed in first;
/// each word ASCII-lower-cased first when `lower`.
#[inline]
fn hash_words(seed: u64, bytes: &[u8], lower: bool) -> u64 {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let fold = |a: u64, b: u64| {
        let p = u128::from(a) * u128::from(b);
        (p as u64) ^ ((p >> 64) as u64)
    };
    let word = |chunk: &[u8]| {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        let w = u64::from_le_bytes(buf);
        if lower {
            crate::record::ascii_lowercase_word(w)
        } else {
            w
        }
    };
    let mut acc = fold(seed ^ K1, bytes.len() as u64 ^ K2);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        acc = fold(acc ^ word(chunk), K1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        acc = fold(acc ^ word(rest), K1);
    }
    fold(acc, K2)
}

/// Rows indexed by the normalized value of one field: one `u64` per row,
/// the top 32 bits of the value's hash above the row's index, sorted. Equal
/// hashes are always confirmed by comparing the values, so 32 bits are
/// enough (at a million rows a few hundred pairs share them), and the index
/// costs 8 bytes a row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    seed: u64,
    entries: Vec<u64>,
}

/// The part of a hash an index keeps.
fn short(hash: u64) -> u64 {
    hash >> 32
}

impl KeyIndex {
    /// Indexes `rows` by `field`, for the rows `include` accepts and whose
    /// value is not blank.
    pub fn build(rows: &[Row], field: Field, include: impl Fn(&Row) -> bool) -> KeyIndex {
        let seed = 0x005e_ed0f_u64 ^ field as u64;
        let mut entries: Vec<u64> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| include(r))
            .filter_map(|(i, r)| {
                let v = r.user.value(field)?;
                let row = u32::try_from(i).ok()?;
                Some(short(key_hash(seed, v)) << 32 | u64::from(row))
            })
            .collect();
        entries.sort_unstable();
        KeyIndex { seed, entries }
    }

    /// Rows whose value equals `value` (normalized).
    pub fn find<'a>(
        &'a self,
        rows: &'a [Row],
        field: Field,
        value: &'a str,
    ) -> impl Iterator<Item = usize> + 'a {
        let h = short(key_hash(self.seed, value));
        let start = self.entries.partition_point(|&e| e >> 32 < h);
        self.entries[start..]
            .iter()
            .take_while(move |&&e| e >> 32 == h)
            .map(|&e| e as u32 as usize)
            .filter(move |&i| {
                rows[i]
                    .user
                    .value(field)
                    .is_some_and(|v| crate::record::same(v, value))
            })
    }

    /// The one row whose value equals `value`; `None` when no row or several
    /// rows have it (several rows with one key are all errors anyway). Looks
    /// at two matches at most, so a value repeated on a million rows costs
    /// no more than a unique one.
    pub fn unique(&self, rows: &[Row], field: Field, value: &str) -> Option<usize> {
        let mut found = self.find(rows, field, value);
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    /// Groups of two or more rows with equal values (each group sorted by row).
    pub fn duplicates(&self, rows: &[Row], field: Field) -> Vec<Vec<usize>> {
        let mut groups = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            let h = self.entries[i] >> 32;
            let mut j = i + 1;
            while j < self.entries.len() && self.entries[j] >> 32 == h {
                j += 1;
            }
            if j - i > 1 {
                // Same hash: split by actual value (collisions are rare).
                let mut run: Vec<(String, usize)> = self.entries[i..j]
                    .iter()
                    .map(|&e| {
                        let r = e as u32 as usize;
                        (normalize(rows[r].user.value(field).unwrap_or("")), r)
                    })
                    .collect();
                run.sort();
                let mut k = 0;
                while k < run.len() {
                    let mut m = k + 1;
                    while m < run.len() && run[m].0 == run[k].0 {
                        m += 1;
                    }
                    if m - k > 1 {
                        groups.push(run[k..m].iter().map(|x| x.1).collect());
                    }
                    k = m;
                }
            }
            i = j;
        }
        groups
    }
}

fn name_lines(lines: impl Iterator<Item = u64>, total: usize) -> String {
    let named: Vec<String> = lines.take(MAX_NAMED).map(|l| l.to_string()).collect();
    let mut s = named.join(", ");
    if total > named.len() {
        s.push_str(&format!(" and {} more", total - named.len()));
    }
    s
}

/// Reports every row of every duplicate group, each naming the others' lines.
pub(crate) fn duplicates(
    rows: &mut [Row],
    index: &KeyIndex,
    field: Field,
    code: Code,
    column: &str,
    issues: &mut Vec<Issue>,
) {
    let what = if code == Code::DuplicateKey {
        field.header()
    } else {
        "email"
    };
    for group in index.duplicates(rows, field) {
        for &r in &group {
            let others = group.iter().filter(|&&o| o != r).map(|&o| rows[o].line);
            let value = rows[r].user.value(field).unwrap_or("").to_owned();
            issues.push(
                Issue::error(
                    code,
                    format!(
                        "the same {what} is on line{} {}",
                        if group.len() > 2 { "s" } else { "" },
                        name_lines(others, group.len() - 1)
                    ),
                )
                .at(rows[r].line)
                .column(column.to_owned())
                .value(&value),
            );
            rows[r].error = true;
        }
    }
}

/// Finds `reportsTo` cycles among the rows (upserts only; self-references are
/// reported by the row checks) and reports every row on a cycle.
pub(crate) fn cycles(
    rows: &mut [Row],
    keys: &KeyIndex,
    key_field: Field,
    column: &str,
    issues: &mut Vec<Issue>,
) {
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let n = rows.len();
    // The successor of each row: the unique upsert row it reports to.
    let next: Vec<Option<u32>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if r.action != Action::Upsert {
                return None;
            }
            let m = r.user.value(Field::ReportsTo)?;
            let mut found = keys.find(rows, key_field, m);
            let first = found.next()?;
            if found.next().is_some() || first == i {
                return None; // ambiguous (duplicate key) or self (reported per row)
            }
            (rows[first].action == Action::Upsert).then_some(first as u32)
        })
        .collect();
    let mut state = vec![UNSEEN; n];
    let mut path: Vec<usize> = Vec::new();
    let mut on_cycle: Vec<Vec<usize>> = Vec::new();
    for start in 0..n {
        if state[start] != UNSEEN {
            continue;
        }
        path.clear();
        let mut cur = Some(start);
        while let Some(c) = cur {
            match state[c] {
                UNSEEN => {
                    state[c] = ON_PATH;
                    path.push(c);
                    cur = next[c].map(|x| x as usize);
                }
                ON_PATH => {
                    if let Some(pos) = path.iter().position(|&p| p == c) {
                        on_cycle.push(path[pos..].to_vec());
                    }
                    break;
                }
                _ => break,
            }
        }
        for &p in &path {
            state[p] = DONE;
        }
    }
    for cycle in on_cycle {
        let ids: Vec<String> = cycle
            .iter()
            .take(MAX_NAMED)
            .map(|&r| crate::printable(rows[r].user.value(key_field).unwrap_or("")))
            .collect();
        let more = if cycle.len() > MAX_NAMED {
            format!(" and {} more", cycle.len() - MAX_NAMED)
        } else {
            String::new()
        };
        let chain = format!("{}{more}", ids.join(" → "));
        for &r in &cycle {
            let lines = cycle.iter().filter(|&&o| o != r).map(|&o| rows[o].line);
            let value = rows[r]
                .user
                .value(Field::ReportsTo)
                .unwrap_or("")
                .to_owned();
            issues.push(
                Issue::new(
                    Severity::Error,
                    Code::ReportsToCycle,
                    format!(
                        "reportsTo forms a cycle of {} users ({chain}); see line{} {}",
                        cycle.len(),
                        if cycle.len() > 2 { "s" } else { "" },
                        name_lines(lines, cycle.len() - 1)
                    ),
                )
                .at(rows[r].line)
                .column(column.to_owned())
                .value(&value),
            );
            rows[r].error = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ascii_lowercase_word;

    #[test]
    fn words_are_lower_cased_like_bytes() {
        for b in 0u8..0x80 {
            for pos in 0..8 {
                let mut bytes = *b"xYz09_@Q";
                bytes[pos] = b;
                let want = u64::from_le_bytes(bytes.map(|c| c.to_ascii_lowercase()));
                assert_eq!(
                    ascii_lowercase_word(u64::from_le_bytes(bytes)),
                    want,
                    "{b:#x} at {pos}"
                );
            }
        }
    }

    #[test]
    fn the_hash_is_of_the_normalized_value() {
        let h = |v: &str| key_hash(7, v);
        for (a, b) in [
            ("  JDoe ", "jdoe"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"),
            ("ÉMILE", "émile"),
            (
                "Søren.Okafor@Corp.Example.ORG",
                "søren.okafor@corp.example.org",
            ),
            ("", "  "),
        ] {
            assert_eq!(h(a), h(b), "{a:?} vs {b:?}");
            assert_eq!(h(a), h(&normalize(a)), "{a:?}");
        }
        // Different values, including ones that pad to the same words.
        let values = [
            "a",
            "a\u{1}",
            "ab",
            "b",
            "abcdefgh",
            "abcdefgh\u{1}",
            "abcdefghi",
            "émile",
            "emile",
        ];
        for (i, a) in values.iter().enumerate() {
            for b in &values[i + 1..] {
                assert_ne!(h(a), h(b), "{a:?} vs {b:?}");
            }
        }
    }
}
