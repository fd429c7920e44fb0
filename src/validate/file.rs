//! File-level checks: the same key or email on several rows, and `reportsTo`
//! cycles. Both work on a compact sorted index (hash, row) rather than a map
//! of owned strings: 8 bytes a row, whatever the length of the values.

use crate::issue::{Code, Issue, Severity};
use crate::matching::{key_hash, normalize};
use crate::record::Action;
use crate::schema::Field;

use super::Row;

/// At most this many other lines are named in a duplicate or cycle message.
const MAX_NAMED: usize = 10;

/// Rows indexed by the normalized value of one field: one `u64` per row,
/// the top 32 bits of the value's hash above the row's index, sorted. Equal
/// hashes are always confirmed by comparing the values, so 32 bits are
/// enough (even in a large file few pairs of rows share one), and the index
/// costs 8 bytes a row. A directory of where each run of hashes with the
/// same top bits starts (one `u32` per four rows) turns a lookup into one
/// or two cache lines, where a binary search of a large index misses the
/// cache at nearly every step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    seed: u64,
    entries: Vec<u64>,
    /// The directory's bits: bucket `b` holds the hashes whose top `bits`
    /// bits are `b`, at `entries[starts[b]..starts[b + 1]]`.
    bits: u32,
    starts: Vec<u32>,
}

/// The first place in `s` where `pred` (true, then false along `s`) is
/// false, searched from the front in steps that double: the place is
/// usually a step or two ahead, where a binary search of the whole slice
/// would read it all over.
fn gallop(s: &[u64], pred: impl Fn(u64) -> bool) -> usize {
    let mut hi = 1;
    while hi < s.len() && pred(s[hi]) {
        hi *= 2;
    }
    let lo = hi / 2;
    lo + s[lo..hi.min(s.len())].partition_point(|&e| pred(e))
}

/// The part of a hash an index keeps.
fn short(hash: u64) -> u64 {
    hash >> 32
}

/// The directory bucket of a short hash: its top `bits` bits (`bits` ≥ 1).
fn bucket(short: u64, bits: u32) -> u64 {
    short >> (32 - bits)
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
        // About four entries a bucket; none for a small index.
        let bits = (entries.len() / 4).max(1).ilog2().min(30);
        let mut starts = Vec::new();
        if bits > 0 {
            starts.reserve_exact((1 << bits) + 1);
            let mut at = 0usize;
            for b in 0..1u64 << bits {
                while at < entries.len() && bucket(entries[at] >> 32, bits) < b {
                    at += 1;
                }
                starts.push(at as u32);
            }
            starts.push(entries.len() as u32);
        }
        KeyIndex {
            seed,
            entries,
            bits,
            starts,
        }
    }

    /// The entries that may hold hash `h` (a short hash): its bucket.
    fn candidates(&self, h: u64) -> &[u64] {
        if self.bits == 0 {
            return &self.entries;
        }
        let b = bucket(h, self.bits) as usize;
        match (self.starts.get(b), self.starts.get(b + 1)) {
            (Some(&from), Some(&to)) => &self.entries[from as usize..to as usize],
            _ => &[],
        }
    }

    /// Rows whose value equals `value` (normalized).
    pub fn find<'a>(
        &'a self,
        rows: &'a [Row],
        field: Field,
        value: &'a str,
    ) -> impl Iterator<Item = usize> + 'a {
        self.same_hash(value)
            .iter()
            .map(|&e| e as u32 as usize)
            .filter(move |&i| {
                rows[i]
                    .user
                    .value(field)
                    .is_some_and(|v| crate::matching::same(v, value))
            })
    }

    /// The entries whose hash equals `value`'s: every row with that value,
    /// and rarely others (their row is the entry's low 32 bits).
    fn same_hash(&self, value: &str) -> &[u64] {
        let h = short(key_hash(self.seed, value));
        let candidates = self.candidates(h);
        let start = candidates.partition_point(|&e| e >> 32 < h);
        let len = candidates[start..].partition_point(|&e| e >> 32 == h);
        &candidates[start..start + len]
    }

    /// The rows `include` accepts whose `field` is not blank, as the index
    /// keeps them (the short hash of the value above the row), sorted: what
    /// [`KeyIndex::join`] takes. With `threads` > 1, from [`crate::par::from::FILE_CHECK_ROWS`]
    /// rows, the hashes are worked out and sorted on two threads.
    pub fn wanted_by(
        &self,
        rows: &[Row],
        field: Field,
        include: impl Fn(usize) -> bool + Sync,
        threads: usize,
    ) -> Vec<u64> {
        let hashed = |from: usize, part: &[Row]| -> Vec<u64> {
            part.iter()
                .enumerate()
                .filter(|&(k, _)| include(from + k))
                .filter_map(|(k, r)| {
                    let v = r.user.value(field)?;
                    let row = u32::try_from(from + k).ok()?;
                    Some(short(key_hash(self.seed, v)) << 32 | u64::from(row))
                })
                .collect()
        };
        if threads < 2 || rows.len() < crate::par::from::FILE_CHECK_ROWS {
            let mut wants = hashed(0, rows);
            wants.sort_unstable();
            return wants;
        }
        let mid = rows.len() / 2;
        let (low, high) = rows.split_at(mid);
        let (high, mut wants) = crate::par::join(|| hashed(mid, high), || hashed(0, low));
        wants.extend(high);
        // Split at the median, each side sorted on its own thread.
        let at = wants.len() / 2;
        if at > 0 {
            wants.select_nth_unstable(at);
            let (low, high) = wants.split_at_mut(at);
            crate::par::join(|| high.sort_unstable(), || low.sort_unstable());
        }
        wants
    }

    /// For each of `n` rows, what `link` makes of the row and the entries
    /// sharing its wanted value's hash, for the rows in `wants` (sorted, as
    /// [`KeyIndex::wanted_by`] makes them; `None` for the others). `link`
    /// sees exactly the entries `same_hash` would give for the value.
    pub fn join(
        &self,
        wants: &[u64],
        n: usize,
        mut link: impl FnMut(usize, &[u64]) -> Option<u32>,
    ) -> Vec<Option<u32>> {
        let mut next = vec![None; n];
        let entries = &self.entries[..];
        let mut at = 0;
        for run in wants.chunk_by(|a, b| a >> 32 == b >> 32) {
            let h = run[0] >> 32;
            at += gallop(&entries[at..], |e| e >> 32 < h);
            let len = gallop(&entries[at..], |e| e >> 32 == h);
            let same = &entries[at..at + len];
            for &w in run {
                let row = w as u32 as usize;
                if let Some(slot) = next.get_mut(row) {
                    *slot = link(row, same);
                }
            }
        }
        next
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
    threads: usize,
) {
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let n = rows.len();
    let upsert: Vec<bool> = rows.iter().map(|r| r.action == Action::Upsert).collect();
    // The successor of each row: the unique upsert row it reports to. Where
    // one row has the manager's hash it is taken without comparing values
    // (looking at a random row for each row is most of the cost in a large
    // file): a row so linked by a mere hash collision has no real manager
    // in the file, so it is on no real cycle, and a cycle through such a
    // link is dropped below, where every link of a cycle is compared.
    let rows_now: &[Row] = rows;
    // The rows' managers by the short hash of their value, sorted, then
    // walked beside the index's entries (sorted the same way): a merge,
    // where looking each manager up read the index all over memory.
    let wants = keys.wanted_by(rows_now, Field::ReportsTo, |i| upsert[i], threads);
    let next = keys.join(&wants, n, |i, candidates| {
        let first = match candidates {
            [] => return None,
            [only] => *only as u32 as usize,
            _ => {
                let m = rows_now[i].user.value(Field::ReportsTo)?;
                let mut found = keys.find(rows_now, key_field, m);
                let first = found.next()?;
                if found.next().is_some() {
                    return None; // ambiguous (duplicate key)
                }
                first
            }
        };
        // Self-references are reported per row.
        (first != i && upsert[first]).then_some(first as u32)
    });
    drop(wants);
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
    let linked = |from: usize, to: usize| {
        let manager = rows[from].user.value(Field::ReportsTo);
        let id = rows[to].user.value(key_field);
        manager
            .zip(id)
            .is_some_and(|(m, id)| crate::matching::same(m, id))
    };
    on_cycle.retain(|c| (0..c.len()).all(|k| linked(c[k], c[(k + 1) % c.len()])));
    for cycle in &mut on_cycle {
        // Named from its first row in the file, whichever row the walk met
        // first (a link by hash alone can lead the walk in elsewhere).
        let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
        cycle.rotate_left(first);
    }
    for cycle in on_cycle {
        let ids: Vec<String> = cycle
            .iter()
            .take(MAX_NAMED)
            .map(|&r| crate::issue::printable(rows[r].user.value(key_field).unwrap_or("")))
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

    fn row(line: u64, id: &str, manager: Option<&str>) -> Row {
        let mut b = crate::User::builder().set(Field::UserId, id);
        if let Some(m) = manager {
            b = b.set(Field::ReportsTo, m);
        }
        Row {
            line,
            action: Action::Upsert,
            notify: false,
            user: b.build(),
            error: false,
        }
    }

    /// The cycle issues `cycles` reports for `rows` (marking them).
    fn cycle_issues(rows: &mut [Row], index: &KeyIndex, threads: usize) -> Vec<Issue> {
        let mut issues = Vec::new();
        cycles(
            rows,
            index,
            Field::UserId,
            "reportsTo",
            &mut issues,
            threads,
        );
        issues
    }

    #[test]
    fn the_directory_finds_every_value_at_every_size() {
        for n in [0usize, 1, 3, 4, 7, 8, 9, 100, 1000, 5000] {
            let rows: Vec<Row> = (0..n)
                .map(|i| row(i as u64 + 2, &format!("User{i}"), None))
                .collect();
            let index = KeyIndex::build(&rows, Field::UserId, |_| true);
            if n >= 8 {
                assert!(index.bits > 0, "{n} rows get a directory");
            }
            for i in 0..n {
                let found: Vec<usize> = index
                    .find(&rows, Field::UserId, &format!("user{i}"))
                    .collect();
                assert_eq!(found, [i], "{n} rows, looking for user{i}");
            }
            assert_eq!(index.find(&rows, Field::UserId, "nobody").count(), 0);
        }
    }

    #[test]
    fn a_cycle_made_by_a_hash_collision_is_not_reported() {
        // Line 2 reports to "x", whom the file does not have; line 3 reports
        // to "a". An index in which "b" has the hash of "x" (a collision)
        // links 2 -> 3 -> 2 by hashes; comparing the values undoes it.
        let mut rows = vec![row(2, "a", Some("x")), row(3, "b", Some("a"))];
        let seed = 0x005e_ed0f_u64 ^ Field::UserId as u64;
        let mut entries = vec![
            short(key_hash(seed, "a")) << 32,
            short(key_hash(seed, "x")) << 32 | 1,
        ];
        entries.sort_unstable();
        let colliding = KeyIndex {
            seed,
            entries,
            bits: 0,
            starts: Vec::new(),
        };
        let issues = cycle_issues(&mut rows, &colliding, 1);
        assert!(issues.is_empty(), "{issues:?}");
        assert!(rows.iter().all(|r| !r.error));

        // The same rows with a real cycle are reported.
        let mut rows = vec![row(2, "a", Some("b")), row(3, "b", Some("A"))];
        let index = KeyIndex::build(&rows, Field::UserId, |_| true);
        let issues = cycle_issues(&mut rows, &index, 1);
        let lines: Vec<_> = issues.iter().map(|i| (i.line, i.code)).collect();
        assert_eq!(
            lines,
            [
                (Some(2), Code::ReportsToCycle),
                (Some(3), Code::ReportsToCycle)
            ]
        );
    }

    #[test]
    fn a_gallop_finds_what_a_binary_search_finds() {
        let s: Vec<u64> = (0..300u64).map(|k| k / 3 * 2).collect();
        for len in 0..s.len() {
            let s = &s[..len];
            for x in 0..205u64 {
                assert_eq!(
                    gallop(s, |e| e < x),
                    s.partition_point(|&e| e < x),
                    "{len} entries, below {x}"
                );
            }
        }
    }

    #[test]
    fn a_join_gives_each_row_the_entries_its_lookup_gives() {
        // Managers named by one row, by several, by none; in another case;
        // sharing the index's 32 bits with another id ("m19307" and
        // "k18435"); blank; on rows the join leaves out (every fifth).
        let n = crate::par::from::FILE_CHECK_ROWS + 321;
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                let id = match i % 97 {
                    0 => "k18435".to_owned(),
                    1 => "twice".to_owned(),
                    _ => format!("u{i}"),
                };
                let manager = match i % 6 {
                    0 => None,
                    1 => Some(format!("U{}", (i * 7919) % n)),
                    2 => Some("m19307".to_owned()),
                    3 => Some(" Twice ".to_owned()),
                    4 => Some(format!("nobody{i}")),
                    _ => Some(format!("u{}", i / 2)),
                };
                row(i as u64 + 2, &id, manager.as_deref())
            })
            .collect();
        let index = KeyIndex::build(&rows, Field::UserId, |_| true);
        let include = |i: usize| i % 5 != 4;
        for threads in [1, 2] {
            let wants = index.wanted_by(&rows, Field::ReportsTo, include, threads);
            let mut seen: Vec<Option<Vec<u64>>> = vec![None; n];
            let next = index.join(&wants, n, |i, same| {
                seen[i] = Some(same.to_vec());
                u32::try_from(same.len()).ok()
            });
            for (i, r) in rows.iter().enumerate() {
                let want = r
                    .user
                    .value(Field::ReportsTo)
                    .filter(|_| include(i))
                    .map(|m| index.same_hash(m).to_vec());
                assert_eq!(seen[i], want, "row {i}, {threads} threads");
                assert_eq!(next[i], want.map(|w| w.len() as u32), "row {i}");
            }
            assert!(
                seen.iter().flatten().any(|s| s.len() > 1),
                "several entries"
            );
            assert!(seen.iter().flatten().any(|s| s.is_empty()), "no entry");
        }
    }

    #[test]
    fn cycles_found_in_parallel_are_the_ones_found_on_one_thread() {
        // Chains, cycles of several lengths, self-references, duplicates.
        let n = crate::par::from::FILE_CHECK_ROWS + 1234;
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                let manager = match i % 7 {
                    0 => None,
                    1 => Some(format!("u{i}")),
                    // One cycle through every row 7k + 2, across the pieces.
                    2 => Some(format!("u{}", if i + 7 < n { i + 7 } else { 2 })),
                    3 => Some(format!("u{}", (i * 31) % n)),
                    4 => Some(format!("u{}", i - 4)),
                    // Pairs reporting to each other.
                    5 => Some(format!("u{}", i + 1)),
                    _ => Some(format!("u{}", i - 1)),
                };
                let id = if i % 1000 == 999 {
                    "dup".to_owned()
                } else {
                    format!("u{i}")
                };
                row(i as u64 + 2, &id, manager.as_deref())
            })
            .collect();
        let index = KeyIndex::build(&rows, Field::UserId, |_| true);
        let found = |threads: usize| {
            let mut rows = rows.clone();
            let issues = cycle_issues(&mut rows, &index, threads);
            let errors: Vec<bool> = rows.iter().map(|r| r.error).collect();
            (issues, errors)
        };
        let one = found(1);
        assert!(!one.0.is_empty(), "the rows have cycles");
        assert_eq!(found(2), one);
        assert_eq!(found(3), one);
    }

    #[test]
    fn a_cycle_is_named_from_its_first_row_however_the_walk_meets_it() {
        // "m19307" and "k18435" share the 32 bits an index keeps, so line 2
        // (whose manager is in no row) is linked by hash to line 4, on the
        // cycle b ↔ k18435, and the walk from line 2 meets the cycle there.
        let seed = 0x005e_ed0f_u64 ^ Field::UserId as u64;
        assert_eq!(
            short(key_hash(seed, "m19307")),
            short(key_hash(seed, "k18435"))
        );
        let mut rows = vec![
            row(2, "a", Some("m19307")),
            row(3, "b", Some("k18435")),
            row(4, "k18435", Some("b")),
        ];
        let index = KeyIndex::build(&rows, Field::UserId, |_| true);
        let issues = cycle_issues(&mut rows, &index, 1);
        let got: Vec<_> = issues
            .iter()
            .map(|i| (i.line, i.message.as_str()))
            .collect();
        let message = "reportsTo forms a cycle of 2 users (b → k18435); see line";
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].1.starts_with(message) && got[0].0 == Some(3),
            "{got:?}"
        );
        assert!(
            got[1].1.starts_with(message) && got[1].0 == Some(4),
            "{got:?}"
        );
    }
}
