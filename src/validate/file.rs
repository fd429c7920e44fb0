//! File-level checks: the same key or email on several rows, and `reportsTo`
//! cycles. Both work on a compact sorted index (hash, row) rather than a map
//! of owned strings, so a million rows cost 16 MB here, not hundreds.

use std::hash::{BuildHasher, Hasher};

use crate::issue::{Code, Issue, Severity};
use crate::record::{Action, normalize};
use crate::schema::Field;

use super::Row;

/// At most this many other lines are named in a duplicate or cycle message.
const MAX_NAMED: usize = 10;

/// The hash of a value's normalized form (see [`normalize`]); allocation-free
/// for ASCII values up to 256 bytes.
pub(crate) fn key_hash(state: &foldhash::fast::FixedState, value: &str) -> u64 {
    let v = crate::record::trim(value);
    let mut h = state.build_hasher();
    if v.is_ascii() && v.len() <= 256 {
        let mut buf = [0u8; 256];
        let lower = &mut buf[..v.len()];
        lower.copy_from_slice(v.as_bytes());
        lower.make_ascii_lowercase();
        h.write(lower);
    } else {
        h.write(normalize(v).as_bytes());
    }
    h.finish()
}

/// Rows indexed by the normalized value of one field, sorted by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    seed: u64,
    entries: Vec<(u64, u32)>,
}

impl KeyIndex {
    /// Indexes `rows` by `field`, for the rows `include` accepts and whose
    /// value is not blank.
    pub fn build(rows: &[Row], field: Field, include: impl Fn(&Row) -> bool) -> KeyIndex {
        let seed = 0x005e_ed0f_u64 ^ field as u64;
        let state = foldhash::fast::FixedState::with_seed(seed);
        let mut entries: Vec<(u64, u32)> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| include(r))
            .filter_map(|(i, r)| {
                let v = r.user.value(field)?;
                Some((key_hash(&state, v), u32::try_from(i).ok()?))
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
        let h = key_hash(&foldhash::fast::FixedState::with_seed(self.seed), value);
        let start = self.entries.partition_point(|e| e.0 < h);
        self.entries[start..]
            .iter()
            .take_while(move |e| e.0 == h)
            .map(|e| e.1 as usize)
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
            let h = self.entries[i].0;
            let mut j = i + 1;
            while j < self.entries.len() && self.entries[j].0 == h {
                j += 1;
            }
            if j - i > 1 {
                // Same hash: split by actual value (collisions are rare).
                let mut run: Vec<(String, usize)> = self.entries[i..j]
                    .iter()
                    .map(|e| {
                        let r = e.1 as usize;
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
