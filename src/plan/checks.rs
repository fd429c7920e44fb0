//! The checks that need every row, and the guards.
//!
//! Rows can depend on other rows of the same file: a user whose manager the
//! file creates, a user who takes over an email another row gives up, a
//! delete of a manager whose reports the file moves away or deletes. Each
//! dependency is an edge "row i needs row j to succeed"; failures propagate
//! along the edges (a row whose prerequisite fails, fails, saying why). The
//! same edges order the operations (`order`).

use super::{Disp, Planner};
use crate::issue::{Code, Issue};
use crate::matching::{normalize, same};
use crate::schema::Field;
use crate::validate::file::value_in;
use std::collections::HashMap;

/// Why row `from` needs row `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// `to` creates `from`'s manager.
    Manager,
    /// `to` moves `from`'s new email away from its current holder.
    Email,
    /// `from` deletes a manager; `to` moves one of their reports away (or deletes them).
    Report,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Edge {
    pub(super) from: u32,
    pub(super) to: u32,
    pub(super) need: Need,
}

/// Whether the prerequisite `to` (in its current state) does what `need` asks.
pub(super) fn holds(p: &Planner, e: &Edge) -> bool {
    let d = &p.disp[e.to as usize];
    match e.need {
        Need::Manager => matches!(d, Disp::Create { .. }),
        Need::Email => {
            matches!(d, Disp::Delete(_))
                || d.new_value(Field::Email).is_some_and(|new| new.is_some())
        }
        Need::Report => matches!(d, Disp::Delete(_)) || d.new_value(Field::ReportsTo).is_some(),
    }
}

pub(super) fn failure(p: &Planner, e: &Edge) -> Issue {
    let to = &p.v.rows[e.to as usize];
    let from = &p.v.rows[e.from as usize];
    match e.need {
        Need::Manager => Issue::error(
            Code::UnknownReference,
            format!("the manager is created by line {}, which is not imported", to.line),
        )
        .column(p.column(Field::ReportsTo))
        .value(from.user.value(Field::ReportsTo).unwrap_or("")),
        Need::Email => Issue::error(
            Code::EmailTaken,
            format!(
                "the email belongs to user {:?}, who gives it up on line {}, but that line is not imported",
                crate::issue::printable(to.user.user_id().unwrap_or("")),
                to.line
            ),
        )
        .column(p.column(Field::Email))
        .value(from.user.email().unwrap_or("")),
        Need::Report => Issue::error(
            Code::HasReports,
            format!(
                "cannot delete this user: {:?} still reports to them, because line {} is not imported",
                crate::issue::printable(to.user.user_id().unwrap_or("")),
                to.line
            ),
        )
        .column(p.column(p.key_field())),
    }
}

/// Two rows that resolved to the same directory user (one by user id, one by
/// email; or two deletes) would race each other: every such row fails,
/// naming the others, whatever their order.
pub(super) fn same_user_rows(p: &mut Planner) {
    let mut targets = std::mem::take(&mut p.targets);
    targets.sort_unstable();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for run in targets.chunk_by(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            groups.push(run.iter().map(|t| t.1 as usize).collect());
        }
    }
    for group in groups {
        let lines: Vec<String> = group
            .iter()
            .map(|&r| p.v.rows[r].line.to_string())
            .collect();
        let col = p.column(p.key_field()).to_owned();
        for &r in &group {
            let others: Vec<&str> = group
                .iter()
                .zip(&lines)
                .filter(|(o, _)| **o != r)
                .map(|(_, l)| l.as_str())
                .collect();
            p.row_error(
                r,
                Issue::error(
                    Code::DuplicateKey,
                    format!(
                        "this row and line{} {} are about the same user of the directory",
                        if others.len() > 1 { "s" } else { "" },
                        others.join(", ")
                    ),
                )
                .column(col.clone()),
            );
        }
    }
}

/// The static part of the "a manager who keeps reports cannot be deleted"
/// check, and an edge to every row the delete relies on.
pub(super) fn delete_edges(p: &mut Planner, i: usize, edges: &mut Vec<Edge>) {
    let Disp::Delete(delete) = &p.disp[i] else {
        return;
    };
    let (user_id, reports) = (&delete.user_id, &delete.reports);
    let id = normalize(user_id);
    let mut kept: Vec<String> = Vec::new();
    let mut needs: Vec<u32> = Vec::new();
    for r in reports {
        let leaving = p
            .ids
            .unique(r, value_in(&p.v.rows, Field::UserId))
            .filter(|&row| match &p.disp[row] {
                Disp::Delete(_) => true,
                d => d
                    .new_value(Field::ReportsTo)
                    .is_some_and(|new| !new.is_some_and(|m| same(m, &id))),
            });
        match leaving {
            Some(row) => needs.push(row as u32),
            None => kept.push(r.clone()),
        }
    }
    // Rows of the file that will report to this user.
    let reporters: Vec<usize> = p
        .managers
        .iter()
        .flat_map(|m| m.find(user_id, value_in(&p.v.rows, Field::ReportsTo)))
        .collect();
    for r in reporters {
        if r != i
            && matches!(
                p.disp[r],
                Disp::Create { .. } | Disp::Update { .. } | Disp::Unchanged
            )
        {
            kept.push(match p.v.rows[r].user.value(Field::UserId) {
                Some(k) => normalize(k),
                None => format!("line {}", p.v.rows[r].line),
            });
        }
    }
    if kept.is_empty() {
        edges.extend(needs.into_iter().map(|to| Edge {
            from: i as u32,
            to,
            need: Need::Report,
        }));
        return;
    }
    kept.sort();
    kept.dedup();
    let names: Vec<String> = kept
        .iter()
        .take(10)
        .map(|k| crate::issue::printable(k))
        .collect();
    let more = if kept.len() > 10 {
        format!(" and {} more", kept.len() - 10)
    } else {
        String::new()
    };
    let col = p.column(p.key_field());
    p.row_error(
        i,
        Issue::error(
            Code::HasReports,
            format!(
                "cannot delete this user: {} user(s) who stay still report to them ({}{more})",
                kept.len(),
                names.join(", ")
            ),
        )
        .column(col),
    );
}

/// Rows that take each other's emails in a cycle (a swap) cannot be ordered:
/// they fail, saying so.
pub(super) fn email_swaps(p: &mut Planner, edges: &[Edge]) {
    let mut next: HashMap<u32, u32> = HashMap::new();
    for e in edges.iter().filter(|e| e.need == Need::Email) {
        next.insert(e.from, e.to);
    }
    let mut state: HashMap<u32, u8> = HashMap::new(); // 1 on path, 2 done
    let mut cyclic: Vec<u32> = Vec::new();
    for &start in next.keys() {
        let mut path = Vec::new();
        let mut cur = Some(start);
        while let Some(c) = cur {
            match state.get(&c) {
                None => {
                    state.insert(c, 1);
                    path.push(c);
                    cur = next.get(&c).copied();
                }
                Some(1) => {
                    if let Some(pos) = path.iter().position(|&x| x == c) {
                        cyclic.extend_from_slice(&path[pos..]);
                    }
                    break;
                }
                _ => break,
            }
        }
        for x in path {
            state.insert(x, 2);
        }
    }
    cyclic.sort_unstable();
    for i in cyclic {
        let col = p.column(Field::Email);
        let email = p.v.rows[i as usize].user.email().unwrap_or("").to_owned();
        p.row_error(
            i as usize,
            Issue::error(
                Code::EmailTaken,
                "rows of this file swap emails between users; one import cannot swap them (give one user a temporary email first)",
            )
            .column(col)
            .value(&email),
        );
    }
}

/// Fails every row whose prerequisite does not hold, and, transitively, the
/// rows that need those.
pub(super) fn propagate(p: &mut Planner, edges: &[Edge]) {
    let mut by_to: Vec<&Edge> = edges.iter().collect();
    by_to.sort_by_key(|e| e.to);
    let mut queue: Vec<&Edge> = edges.iter().filter(|e| !holds(p, e)).collect();
    while let Some(e) = queue.pop() {
        let from = e.from as usize;
        if matches!(p.disp[from], Disp::Fail) {
            continue;
        }
        let issue = failure(p, e);
        p.row_error(from, issue);
        let start = by_to.partition_point(|x| x.to < e.from);
        queue.extend(
            by_to[start..]
                .iter()
                .take_while(|x| x.to == e.from)
                .copied(),
        );
    }
}

pub(super) fn removals(p: &Planner) -> u64 {
    let rows = p
        .disp
        .iter()
        .filter(|d| {
            matches!(d, Disp::Delete(_)) || d.new_value(Field::Enabled) == Some(Some("false"))
        })
        .count() as u64;
    rows + (p.mirror_disable.len() + p.mirror_delete.len()) as u64
}

/// The guards on mass removal.
pub(super) fn guards(p: &Planner, file_issues: &mut Vec<Issue>) {
    file_issues.extend(guard_issue(
        &p.profile.guards,
        removals(p),
        p.directory_size,
    ));
}

/// What the guards on mass removal say of a plan that deletes or disables
/// `removals` users of a directory of `size` (when it was counted): an
/// error when one trips, a warning when one trips but is overridden.
pub(crate) fn guard_issue(
    guards: &crate::profile::Guards,
    removals: u64,
    size: Option<u64>,
) -> Option<Issue> {
    let mut tripped = None;
    if let Some(max) = guards.max_deletes
        && removals > max
    {
        tripped = Some(format!(
            "the plan deletes or disables {removals} users, more than the limit of {max}"
        ));
    }
    if let (Some(share), Some(size)) = (guards.max_delete_share, size)
        && removals >= guards.min_removals_for_share
        && size > 0
        && removals as f64 > share * size as f64
    {
        tripped.get_or_insert(format!(
            "the plan deletes or disables {removals} of {size} users, more than {:.0}%",
            share * 100.0
        ));
    }
    let message = tripped?;
    Some(if guards.override_guards {
        Issue::warning(Code::GuardTripped, format!("{message} (guard overridden)"))
    } else {
        Issue::error(Code::GuardTripped, format!("{message}; nothing is applied"))
            .suggest("raise the limit or override the guard if this is intended")
    })
}
