//! File-level checks: the same key or email on several rows, and `reportsTo`
//! cycles. Both work on the hashed index of the rows (`crate::index`), 8
//! bytes a row whatever the length of the values, rather than a map of
//! owned strings.

use crate::index::HashIndex;
use crate::issue::{Code, Issue, Severity};
use crate::record::Action;
use crate::schema::Field;

use super::Row;

/// At most this many other lines are named in a duplicate or cycle message.
const MAX_NAMED: usize = 10;

/// Rows indexed by the value of `field`, for the rows `include` accepts
/// and whose value is not blank.
pub(crate) fn index_rows(rows: &[Row], field: Field, include: impl Fn(&Row) -> bool) -> HashIndex {
    HashIndex::new(
        rows.iter()
            .enumerate()
            .filter(|(_, r)| include(r))
            .filter_map(|(i, r)| Some((i, r.user.value(field)?))),
    )
}

/// Row `i`'s value of `field`, as an index looks values up.
pub(crate) fn value_in<'a>(
    rows: &'a [Row],
    field: Field,
) -> impl Fn(usize) -> Option<&'a str> + Copy + 'a {
    move |i| rows.get(i)?.user.value(field)
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
    index: &HashIndex,
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
    for group in index.duplicates(value_in(rows, field)) {
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
    keys: &HashIndex,
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
    let wants = HashIndex::wanted(
        n,
        value_in(rows_now, Field::ReportsTo),
        |i| upsert[i],
        threads,
    );
    let next = keys.join(&wants, n, |i, candidates| {
        let first = match candidates.only() {
            Some(only) => only,
            None if candidates.len() == 0 => return None,
            None => {
                let m = rows_now[i].user.value(Field::ReportsTo)?;
                // None when ambiguous (a duplicate key).
                keys.unique(m, value_in(rows_now, key_field))?
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
            edits: None,
        }
    }

    /// The cycle issues `cycles` reports for `rows` (marking them).
    fn cycle_issues(rows: &mut [Row], index: &HashIndex, threads: usize) -> Vec<Issue> {
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
    fn a_cycle_made_by_a_hash_collision_is_not_reported() {
        // Line 2 reports to "x", whom the file does not have; line 3 reports
        // to "a". An index in which "b" has the hash of "x" (a collision)
        // links 2 -> 3 -> 2 by hashes; comparing the values undoes it.
        let mut rows = vec![row(2, "a", Some("x")), row(3, "b", Some("a"))];
        let colliding = crate::index::colliding(&[("a", 0), ("x", 1)]);
        let issues = cycle_issues(&mut rows, &colliding, 1);
        assert!(issues.is_empty(), "{issues:?}");
        assert!(rows.iter().all(|r| !r.error));

        // The same rows with a real cycle are reported.
        let mut rows = vec![row(2, "a", Some("b")), row(3, "b", Some("A"))];
        let index = index_rows(&rows, Field::UserId, |_| true);
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
        let index = index_rows(&rows, Field::UserId, |_| true);
        let include = |i: usize| i % 5 != 4;
        for threads in [1, 2] {
            let wants = HashIndex::wanted(n, value_in(&rows, Field::ReportsTo), include, threads);
            let mut seen: Vec<Option<Vec<usize>>> = vec![None; n];
            let next = index.join(&wants, n, |i, same| {
                seen[i] = Some(same.items().collect());
                u32::try_from(same.len()).ok()
            });
            for (i, r) in rows.iter().enumerate() {
                let want = r
                    .user
                    .value(Field::ReportsTo)
                    .filter(|_| include(i))
                    .map(|m| index.candidates_of(m).items().collect::<Vec<_>>());
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
        let index = index_rows(&rows, Field::UserId, |_| true);
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
        // (`crate::index`'s tests hold that they do.)
        let mut rows = vec![
            row(2, "a", Some("m19307")),
            row(3, "b", Some("k18435")),
            row(4, "k18435", Some("b")),
        ];
        let index = index_rows(&rows, Field::UserId, |_| true);
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
