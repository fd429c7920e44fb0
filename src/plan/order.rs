//! Finishing a plan: the checks that need every row, the guards, and the
//! order of operations.
//!
//! Rows can depend on other rows of the same file: a user whose manager the
//! file creates, a user who takes over an email another row gives up, a
//! delete of a manager whose reports the file moves away or deletes. Each
//! dependency is an edge "row i needs row j to succeed"; the same edges order
//! the operations (j's op before i's). Failures propagate along the edges
//! (a row whose prerequisite fails, fails, saying why), and the ops are sorted
//! topologically with a deterministic tie-break — kind (roles, creates,
//! updates, deletes), then normalized user id — so the plan does not depend on
//! the order of unrelated rows.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use crate::issue::{Code, Issue, sort_issues};
use crate::matching::{cmp_ids, id_prefix, normalize, same};
use crate::schema::Field;
use crate::store::{Attribute, Change, Op};

use super::{Disp, Notice, Plan, Planned, PlannedRow, Planner};
use crate::text::Text;
use crate::validate::Row;

/// Why row `from` needs row `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// `to` creates `from`'s manager.
    Manager,
    /// `to` moves `from`'s new email away from its current holder.
    Email,
    /// `from` deletes a manager; `to` moves one of their reports away (or deletes them).
    Report,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    from: u32,
    to: u32,
    need: Need,
}

/// Whether the prerequisite `to` (in its current state) does what `need` asks.
fn holds(p: &Planner, e: &Edge) -> bool {
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

fn failure(p: &Planner, e: &Edge) -> Issue {
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

pub(super) fn finish(mut p: Planner) -> Plan {
    let n = p.v.rows.len();
    for (i, d) in p.disp.iter_mut().enumerate() {
        if matches!(d, Disp::Pending) {
            *d = if p.v.rows[i].error {
                Disp::Fail
            } else {
                Disp::Skip
            };
        }
    }
    same_user_rows(&mut p);
    if p.managers.is_none() && p.disp.iter().any(|d| matches!(d, Disp::Delete(_))) {
        p.managers = Some(crate::validate::file::KeyIndex::build(
            &p.v.rows,
            Field::ReportsTo,
            |r| r.action == crate::record::Action::Upsert,
        ));
    }
    let mut edges: Vec<Edge> = Vec::new();
    for i in 0..n {
        if let Some([manager_row, email_from]) = p.disp[i].links() {
            for (to, need) in [(manager_row, Need::Manager), (email_from, Need::Email)] {
                if let Some(to) = to.row() {
                    edges.push(Edge {
                        from: i as u32,
                        to,
                        need,
                    });
                }
            }
        } else if matches!(p.disp[i], Disp::Delete(_)) {
            delete_edges(&mut p, i, &mut edges);
        }
    }
    email_swaps(&mut p, &edges);
    propagate(&mut p, &edges);

    // Mirror deletes of users someone who stays reports to are skipped: the
    // managers of the directory users who stay, of the users the file
    // creates, and — a kept manager staying in turn — of those managers.
    let mut kept_managers = std::mem::take(&mut p.mirror_kept_managers);
    if !p.mirror_delete.is_empty() {
        for (i, d) in p.disp.iter().enumerate() {
            if matches!(d, Disp::Create { .. })
                && let Some(m) = p.v.rows[i].user.value(Field::ReportsTo)
            {
                kept_managers.insert(normalize(m));
            }
        }
        let manager_of: HashMap<String, Option<String>> = p
            .mirror_delete
            .iter()
            .map(|(id, _, m)| (normalize(id), m.clone()))
            .collect();
        let mut work: Vec<String> = kept_managers.iter().cloned().collect();
        while let Some(id) = work.pop() {
            if let Some(Some(m)) = manager_of.get(&id)
                && kept_managers.insert(m.clone())
            {
                work.push(m.clone());
            }
        }
    }
    let mut file_issues = std::mem::take(&mut p.v.file_issues);
    p.mirror_delete.retain(|(id, _, _)| {
        let keep = kept_managers.contains(&normalize(id));
        if keep {
            file_issues.push(Issue::warning(
                Code::HasReports,
                format!(
                    "{} is not in the file but users who stay report to them; not deleted",
                    crate::issue::printable(id)
                ),
            ));
        }
        !keep
    });
    guards(&p, &mut file_issues);
    for i in p.plan_issues.iter().filter(|i| i.line.is_none()) {
        file_issues.push(i.clone());
    }
    p.plan_issues.retain(|i| i.line.is_some());
    build(p, file_issues, edges)
}

/// Two rows that resolved to the same directory user (one by user id, one by
/// email; or two deletes) would race each other: every such row fails,
/// naming the others, whatever their order.
fn same_user_rows(p: &mut Planner) {
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
fn delete_edges(p: &mut Planner, i: usize, edges: &mut Vec<Edge>) {
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
            .unique(&p.v.rows, Field::UserId, r)
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
        .flat_map(|m| m.find(&p.v.rows, Field::ReportsTo, user_id))
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
fn email_swaps(p: &mut Planner, edges: &[Edge]) {
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
fn propagate(p: &mut Planner, edges: &[Edge]) {
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
fn guards(p: &Planner, file_issues: &mut Vec<Issue>) {
    let removals = removals(p);
    let guards = &p.profile.guards;
    let mut tripped = None;
    if let Some(max) = guards.max_deletes
        && removals > max
    {
        tripped = Some(format!(
            "the plan deletes or disables {removals} users, more than the limit of {max}"
        ));
    }
    if let (Some(share), Some(size)) = (guards.max_delete_share, p.directory_size)
        && removals >= guards.min_removals_for_share
        && size > 0
        && removals as f64 > share * size as f64
    {
        tripped.get_or_insert(format!(
            "the plan deletes or disables {removals} of {size} users, more than {:.0}%",
            share * 100.0
        ));
    }
    if let Some(message) = tripped {
        if guards.override_guards {
            file_issues.push(Issue::warning(
                Code::GuardTripped,
                format!("{message} (guard overridden)"),
            ));
        } else {
            file_issues.push(
                Issue::error(Code::GuardTripped, format!("{message}; nothing is applied"))
                    .suggest("raise the limit or override the guard if this is intended"),
            );
        }
    }
}

/// The ops of a plan before they are ordered, each with its kind (0 roles,
/// 1 creates, 2 updates, 3 deletes), the first part of its sort key; the
/// second is its normalized user id. Kept as two arrays so the ops can be
/// put in order in place (no second array of a million ops).
#[derive(Default)]
struct Pending {
    ranks: Vec<u8>,
    ops: Vec<Op>,
}

impl Pending {
    fn reserve_exact(&mut self, more: usize) {
        self.ranks.reserve_exact(more);
        self.ops.reserve_exact(more);
    }

    fn push(&mut self, rank: u8, op: Op) {
        self.ranks.push(rank);
        self.ops.push(op);
    }

    fn len(&self) -> usize {
        self.ops.len()
    }

    fn id(&self, k: usize) -> &str {
        self.ops[k].user_id().unwrap_or("")
    }

    /// The ops in `order` (a permutation of their indexes), rearranged in
    /// place by following its cycles.
    fn into_ordered(self, order: &[u32]) -> Vec<Op> {
        let mut ops = self.ops;
        permute(&mut ops, order);
        ops
    }
}

/// Puts `items[order[p]]` at `p` for every `p` (`order` is a permutation of
/// the indexes), in place, by following its cycles: one swap per item.
fn permute<T>(items: &mut [T], order: &[u32]) {
    debug_assert_eq!(order.len(), items.len());
    let mut done = vec![false; order.len()];
    for start in 0..order.len() {
        if done[start] {
            continue;
        }
        let mut p = start;
        done[p] = true;
        loop {
            let from = order[p] as usize;
            if from == start || done[from] {
                break;
            }
            items.swap(p, from);
            done[from] = true;
            p = from;
        }
    }
}

fn makes_op(d: &Disp) -> bool {
    matches!(
        d,
        Disp::Create { .. } | Disp::Update { .. } | Disp::Delete(_)
    )
}

/// The plan's entries for some rows, made from the last row back.
#[derive(Default)]
struct Built {
    rows: Vec<PlannedRow>,
    pending: Pending,
    /// The row of each op in `pending`.
    op_rows: Vec<u32>,
    notices: Vec<Notice>,
    failed: u64,
    /// New roles named: (normalized name, first spelling in byte order).
    needed: BTreeMap<String, String>,
}

impl Built {
    fn reserve(&mut self, rows: usize, ops: usize) {
        self.rows.reserve_exact(rows);
        self.pending.reserve_exact(ops);
        self.op_rows.reserve_exact(ops);
    }

    /// Adds the entries of the rows before these.
    fn append(&mut self, part: Built) {
        self.rows.extend(part.rows);
        self.pending.ranks.extend(part.pending.ranks);
        self.pending.ops.extend(part.pending.ops);
        self.op_rows.extend(part.op_rows);
        self.notices.extend(part.notices);
        self.failed += part.failed;
        for (folded, spelling) in part.needed {
            super::first_spelling(&mut self.needed, &folded, &spelling);
        }
    }
}

/// Makes the plan's entries for the rows of `rows` after the first `keep`
/// (the first of `rows` being row `base` of the file) with their
/// dispositions, from the last row back, releasing each row as it goes.
fn convert(
    rows: &mut Vec<Row>,
    disp: &mut Vec<Disp>,
    keep: usize,
    base: usize,
    key: crate::schema::KeyField,
    new_roles: &BTreeMap<String, String>,
    out: &mut Built,
) {
    let ops = disp[keep.min(disp.len())..]
        .iter()
        .filter(|d| makes_op(d))
        .count();
    out.reserve(rows.len().saturating_sub(keep), ops);
    let mut folded = String::new();
    let mut need = |needed: &mut BTreeMap<String, String>, r: &str| {
        crate::matching::normalize_into(r, &mut folded);
        if new_roles.contains_key(folded.as_str()) {
            super::first_spelling(needed, &folded, r);
        }
    };
    while rows.len() > keep {
        let (Some(row), Some(d)) = (rows.pop(), disp.pop()) else {
            break;
        };
        let i = base + rows.len();
        let row_key = row.key(key).map(Text::from);
        let row_line = row.line;
        let line = Some(row_line);
        let push = |out: &mut Built, rank: u8, op: Op| {
            out.op_rows.push(i as u32);
            out.pending.push(rank, op);
        };
        let planned = match d {
            Disp::Pending | Disp::Skip => Planned::Skip,
            Disp::Fail => {
                out.failed += 1;
                Planned::Fail
            }
            Disp::Unchanged => Planned::Unchanged,
            Disp::Create { notify, .. } => {
                let taken = row.user;
                // A new user without an id gets their normalized email as id.
                let fallback = match taken.user_id() {
                    None => taken.email().map(normalize),
                    Some(_) => None,
                };
                let user = super::diff::for_create(taken, fallback.as_deref());
                if !new_roles.is_empty() {
                    for r in user.roles() {
                        need(&mut out.needed, r);
                    }
                }
                if notify {
                    out.notices.push(Notice {
                        line: row_line,
                        user_id: Text::from(user.user_id().unwrap_or("")),
                        email: user.email().map(Text::from),
                        first_name: user.value(Field::FirstName).map(Text::from),
                        last_name: user.value(Field::LastName).map(Text::from),
                    });
                }
                push(out, 1, Op::Create { line, user });
                Planned::Create
            }
            Disp::Update(update) => {
                let super::UpdateDisp {
                    user_id,
                    version,
                    changes,
                    ..
                } = *update;
                if !new_roles.is_empty()
                    && let Some(roles) = changes.new_value(Field::Roles)
                {
                    for r in roles.unwrap_or("").split('|') {
                        need(&mut out.needed, r);
                    }
                }
                push(
                    out,
                    2,
                    Op::Update {
                        line,
                        user_id: String::from(user_id),
                        version,
                        changes: changes.into_vec(),
                    },
                );
                Planned::Update
            }
            Disp::Delete(delete) => {
                let super::DeleteDisp {
                    user_id, version, ..
                } = *delete;
                push(
                    out,
                    3,
                    Op::Delete {
                        line,
                        user_id,
                        version,
                    },
                );
                Planned::Delete
            }
        };
        out.rows.push(PlannedRow {
            line: row_line,
            key: row_key,
            planned,
        });
    }
}

fn build(mut p: Planner, file_issues: Vec<Issue>, edges: Vec<Edge>) -> Plan {
    // The lookups are done: free them before the plan's own arrays grow.
    p.ids = crate::validate::file::KeyIndex::default();
    p.emails = None;
    p.managers = None;
    p.targets = Vec::new();
    let n = p.v.rows.len();
    let key = p.profile.key;
    let threads = p.threads;
    // The new roles (by normalized name) some op names get created.
    let new_roles = std::mem::take(&mut p.new_roles);
    // Grown as the rows are released (not presized: the whole array beside
    // every row would be the step's peak), and trimmed to size after.
    let mut whole = Built::default();
    // The rows are taken from the back, a sixteenth of what is left at a time:
    // the plan's arrays grow by what that part makes and the rows' arrays
    // shrink by as much, so the file's rows and the plan are never both
    // held whole (the plan's arrays are put back in file order after).
    let mut disp = std::mem::take(&mut p.disp);
    let mut source = std::mem::take(&mut p.v.rows);
    let mut end = n;
    while end > 0 {
        // A sixteenth of what is left, but no less than a 64th of the file:
        // a few dozen steps, each of which may move the arrays it grows (and
        // whose entries are made apart, then appended: small parts keep
        // that second copy small).
        let start = end - end.div_ceil(16).max(n / 64).min(end);
        if threads > 1 && end - start >= crate::par::from::BUILD_ROWS {
            // The upper half on a second thread: both halves' results are
            // taken upper first, as one thread would have made them.
            let mid = start + (end - start) / 2;
            let (mut high_rows, mut high_disp) = (source.split_off(mid), disp.split_off(mid));
            let new_roles = &new_roles;
            let (high, low) = crate::par::join(
                move || {
                    let mut high = Built::default();
                    let (rows, disp) = (&mut high_rows, &mut high_disp);
                    convert(rows, disp, 0, mid, key, new_roles, &mut high);
                    high
                },
                || {
                    let mut low = Built::default();
                    let (rows, disp) = (&mut source, &mut disp);
                    convert(rows, disp, start, 0, key, new_roles, &mut low);
                    low
                },
            );
            whole.reserve(
                high.rows.len() + low.rows.len(),
                high.pending.len() + low.pending.len(),
            );
            whole.append(high);
            whole.append(low);
        } else {
            // One thread: straight into the plan's arrays.
            convert(
                &mut source,
                &mut disp,
                start,
                0,
                key,
                &new_roles,
                &mut whole,
            );
        }
        source.shrink_to_fit();
        disp.shrink_to_fit();
        end = start;
    }
    let Built {
        mut rows,
        mut pending,
        op_rows,
        mut notices,
        failed,
        needed,
    } = whole;
    rows.reverse();
    notices.reverse();
    pending.ranks.reverse();
    pending.ops.reverse();
    // Each row's op, by its place in file order.
    let mut op_of_row: Vec<u32> = vec![u32::MAX; n];
    let last = pending.len().wrapping_sub(1);
    for (k, &row) in op_rows.iter().enumerate() {
        op_of_row[row as usize] = (last - k) as u32;
    }
    drop(op_rows);
    // Ordering edges: each prerequisite's op before its dependant's.
    let op_at = |row: u32| {
        op_of_row
            .get(row as usize)
            .copied()
            .filter(|&k| k != u32::MAX)
    };
    let mut after: Vec<(u32, u32)> = edges
        .iter()
        .filter_map(|e| Some((op_at(e.to)?, op_at(e.from)?)))
        .collect();
    // Freed before the ops are ordered, which needs a few arrays as long.
    drop(op_of_row);
    drop(edges);
    // Mirror mode's changes to users the file does not name.
    for (id, version, old) in std::mem::take(&mut p.mirror_disable) {
        pending.push(
            2,
            Op::Update {
                line: None,
                user_id: id,
                version,
                changes: vec![Change::new(
                    Attribute::Field(Field::Enabled),
                    old.as_deref(),
                    Some("false"),
                )],
            },
        );
    }
    let mirror_start = pending.len();
    let mirror_deletes = std::mem::take(&mut p.mirror_delete);
    let managers: Vec<Option<String>> = mirror_deletes.iter().map(|d| d.2.clone()).collect();
    for (id, version, _) in mirror_deletes {
        pending.push(
            3,
            Op::Delete {
                line: None,
                user_id: id,
                version,
            },
        );
    }
    // A deleted manager goes after their deleted reports.
    let deleted: HashMap<String, u32> = (mirror_start..pending.len())
        .map(|k| (normalize(pending.id(k)), k as u32))
        .collect();
    for (k, m) in managers.iter().enumerate() {
        if let Some(&mk) = m.as_deref().and_then(|m| deleted.get(m)) {
            after.push(((mirror_start + k) as u32, mk));
        }
    }
    let order = topological(&pending, after, p.threads);

    // The notices and the row issues are sorted beside the ops' reordering
    // (neither needs the other).
    let mut row_issues = std::mem::take(&mut p.v.row_issues);
    row_issues.append(&mut p.plan_issues);
    let columns = &p.v.columns;
    let mut side = || {
        sort_notices(&mut notices);
        sort_issues(&mut row_issues, columns);
    };
    let mut ops = if p.threads > 1 && pending.len() >= crate::par::from::KEY_ORDER_OPS {
        crate::par::join(side, || pending.into_ordered(&order)).1
    } else {
        side();
        pending.into_ordered(&order)
    };
    drop(order);
    // The roles some op needs are created first, in order of their names.
    let mut roles_needed: Vec<String> = needed.into_values().collect();
    roles_needed.sort_unstable();
    if !roles_needed.is_empty() {
        // Room for exactly these (not the doubling a push would reserve).
        ops.reserve_exact(roles_needed.len());
        let roles = roles_needed.len();
        ops.extend(roles_needed.into_iter().map(|name| Op::CreateRole { name }));
        ops.rotate_right(roles);
    }
    ops.shrink_to_fit();
    let mut file_issues = file_issues;
    sort_issues(&mut file_issues, &p.v.columns);
    let file_error = file_issues.iter().any(Issue::is_error);
    let blocked = super::blocked(p.profile.on_error, file_error, failed);
    if blocked && !file_error {
        let why = match p.profile.on_error {
            crate::profile::ErrorPolicy::StopAfter(max) => {
                format!("{failed} rows have errors, more than the {max} the error policy accepts")
            }
            _ => format!(
                "{failed} row{} errors and the file is imported all or nothing",
                if failed == 1 { " has" } else { "s have" }
            ),
        };
        file_issues.insert(
            0,
            Issue::error(
                Code::FileRejected,
                format!("the file is rejected, nothing is imported: {why}"),
            )
            .suggest(
                "fix the rows with errors, or import the valid rows with the skip-invalid policy",
            ),
        );
    }
    Plan {
        tenant: p.tenant,
        input: p.v.input,
        columns: p.v.columns,
        key,
        on_error: p.profile.on_error,
        batch_size: p.profile.batch_size.max(1),
        limits: p.profile.limits,
        rows,
        ops,
        notices,
        file_issues,
        row_issues,
        blocked,
    }
}

/// Welcome notices by normalized user id; notices about one id keep their
/// file order.
fn sort_notices(notices: &mut [Notice]) {
    let mut keyed: Vec<((u64, u64), u32)> = notices
        .iter()
        .enumerate()
        .map(|(i, n)| (id_prefix(0, &n.user_id), i as u32))
        .collect();
    keyed.sort_unstable_by(|&(pa, a), &(pb, b)| {
        pa.cmp(&pb)
            .then_with(|| cmp_ids(&notices[a as usize].user_id, &notices[b as usize].user_id))
            .then(a.cmp(&b))
    });
    let order: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
    permute(notices, &order);
}

/// The ops `range` in key order: (rank, normalized id), then place.
///
/// Sorted by (rank, the first 15 bytes of the normalized id) first, as two
/// integers: ids that share a surname and an initial ("jgarcia…") still
/// differ there, and only ties compare whole ids. The prefix is taken from
/// the normalized id, zero-padded, so that it orders exactly as `cmp_ids`
/// does (a shorter id sorts first; equal prefixes fall through).
fn key_order(
    items: &Pending,
    range: std::ops::Range<usize>,
    threads: usize,
    parallel_from: usize,
) -> Vec<u32> {
    // The prefix as four 4-byte words beside the place: 20 bytes, not 24,
    // and the sorted array becomes the places where it lies (same
    // alignment), with no second array beside it.
    type Keyed = ([u32; 4], u32);
    let prefix = |k: usize| {
        let (hi, lo) = id_prefix(items.ranks[k], items.id(k));
        [(hi >> 32) as u32, hi as u32, (lo >> 32) as u32, lo as u32]
    };
    // The words, most significant first, compare as the two integers do.
    let cmp = |(pa, a): &Keyed, (pb, b): &Keyed| {
        pa.cmp(pb)
            .then_with(|| cmp_ids(items.id(*a as usize), items.id(*b as usize)))
            .then(a.cmp(b))
    };
    if threads < 2 || range.len() < parallel_from.max(2) {
        let mut v: Vec<Keyed> = range.map(|k| (prefix(k), k as u32)).collect();
        v.sort_unstable_by(cmp);
        return places(v);
    }
    // Two threads work out the keys of half the ops each (in op order: the
    // ops and their ids are read front to back); the keys are split at
    // their median (every key is distinct: the place breaks ties), and each
    // thread sorts one side. The lower side sorted, then the upper, is the
    // order one sort gives. (Merging two sorted halves instead would read
    // the ops again in key order, jumping all over memory.)
    let len = range.len();
    let mut v: Vec<Keyed> = vec![([0; 4], 0); len];
    let (low, high) = v.split_at_mut(len / 2);
    let fill = |part: &mut [Keyed], from: usize| {
        for (i, slot) in part.iter_mut().enumerate() {
            let k = from + i;
            *slot = (prefix(k), k as u32);
        }
    };
    let high_from = range.start + low.len();
    crate::par::join(|| fill(high, high_from), || fill(low, range.start));
    let mid = len / 2;
    v.select_nth_unstable_by(mid, cmp);
    let (low, high) = v.split_at_mut(mid);
    crate::par::join(|| high.sort_unstable_by(cmp), || low.sort_unstable_by(cmp));
    places(v)
}

/// The places of sorted keys, in the keys' array (trimmed to size).
fn places<K>(keyed: Vec<(K, u32)>) -> Vec<u32> {
    let mut places: Vec<u32> = keyed.into_iter().map(|(_, k)| k).collect();
    places.shrink_to_fit();
    places
}

/// Kahn's algorithm: `before → after` edges respected, ties broken by
/// (rank, normalized id). Ops left in a cycle (which the checks rule out)
/// follow in key order.
fn topological(items: &Pending, edges: Vec<(u32, u32)>, threads: usize) -> Vec<u32> {
    let n = items.len();
    let by_key = key_order(items, 0..n, threads, crate::par::from::KEY_ORDER_OPS);
    if edges.is_empty() {
        return by_key;
    }
    let mut place = vec![0u32; n];
    for (p, &k) in by_key.iter().enumerate() {
        place[k as usize] = p as u32;
    }
    // The edges as one array grouped by source (`out[start[a]..start[a + 1]]`
    // are a's successors): two allocations instead of one per op.
    let mut indegree = vec![0u32; n];
    let mut start = vec![0u32; n + 1];
    for &(a, b) in &edges {
        if a != b {
            start[a as usize + 1] += 1;
            indegree[b as usize] += 1;
        }
    }
    for k in 0..n {
        start[k + 1] += start[k];
    }
    let mut fill = start.clone();
    let mut out = vec![0u32; start[n] as usize];
    for &(a, b) in &edges {
        if a != b {
            let a = a as usize;
            out[fill[a] as usize] = b;
            fill[a] += 1;
        }
    }
    drop(fill);
    drop(edges);
    // The ready op that comes first in key order goes next. Ops that wait
    // for none are taken in key order straight from `by_key`; only those
    // freed by an edge go through a heap (by their place in key order), so
    // the heap holds a few, not every op.
    let waits: Vec<bool> = indegree.iter().map(|&d| d > 0).collect();
    let mut freed: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
    let mut cursor = 0usize;
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    loop {
        while cursor < n && waits[by_key[cursor] as usize] {
            cursor += 1;
        }
        let p = match freed.peek() {
            Some(&Reverse(f)) if cursor >= n || (f as usize) < cursor => {
                freed.pop();
                f as usize
            }
            _ if cursor < n => {
                cursor += 1;
                cursor - 1
            }
            _ => break,
        };
        let k = by_key[p];
        order.push(k);
        let k = k as usize;
        placed[k] = true;
        for &m in &out[start[k] as usize..start[k + 1] as usize] {
            let m = m as usize;
            indegree[m] -= 1;
            if indegree[m] == 0 {
                freed.push(Reverse(place[m]));
            }
        }
    }
    if order.len() < n {
        order.extend(by_key.iter().copied().filter(|&k| !placed[k as usize]));
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(list: &[(u8, &str)]) -> Pending {
        let mut p = Pending::default();
        for &(rank, id) in list {
            p.push(
                rank,
                Op::Delete {
                    line: None,
                    user_id: id.into(),
                    version: 0,
                },
            );
        }
        p
    }

    #[test]
    fn topological_order_breaks_ties_by_rank_then_id() {
        let items = items(&[(3, "a"), (1, "z"), (1, "b"), (2, "c")]);
        // z must come before b; a (a delete) before c (an update).
        let order = topological(&items, vec![(1, 2), (0, 3)], 1);
        assert_eq!(order, [1, 2, 0, 3]);
    }

    #[test]
    fn non_ascii_ids_order_as_normalized() {
        let items = items(&[(1, "Émile"), (1, "élise"), (1, "zed"), (1, "ÉMILE2")]);
        let order = topological(&items, Vec::new(), 1);
        let ids: Vec<&str> = order.iter().map(|&k| items.id(k as usize)).collect();
        assert_eq!(ids, ["zed", "élise", "Émile", "ÉMILE2"]);
    }

    #[test]
    fn the_order_is_rank_then_normalized_id_whatever_the_prefixes() {
        // Ids that share long prefixes, differ in case, are prefixes of
        // each other, are not ASCII, or are padded: the integer prefix must
        // never decide differently from a comparison of normalized ids.
        let stems = [
            "jgarcia",
            "jgarciamartinezlopez",
            "JGarciaMartinezLopez",
            "é",
            "É",
        ];
        let tails = ["", "1", "10", "2", "a", "B", " ", "\u{e9}", "\0"];
        let mut list: Vec<(u8, String)> = Vec::new();
        for (i, stem) in stems.iter().enumerate() {
            for (j, tail) in tails.iter().enumerate() {
                list.push((((i + j) % 3) as u8 + 1, format!(" {stem}{tail}")));
            }
        }
        let refs: Vec<(u8, &str)> = list.iter().map(|(r, id)| (*r, id.as_str())).collect();
        let items = items(&refs);
        let order = topological(&items, Vec::new(), 1);
        let mut want: Vec<u32> = (0..list.len() as u32).collect();
        want.sort_by_key(|&k| {
            let k = k as usize;
            (list[k].0, normalize(&list[k].1), k)
        });
        assert_eq!(order, want);
    }

    #[test]
    fn keys_split_at_their_median_and_sorted_apart_give_the_order_one_sort_gives() {
        // Ties on every level: equal ids (place decides), ids equal but for
        // case or padding, long shared prefixes, non-ASCII ids, all ranks.
        let stems = [
            "jgarcia",
            "JGarcia",
            "jgarciamartinezlopez",
            "é",
            "É",
            "zed",
        ];
        let tails = ["", "1", "10", " ", "\u{e9}", "a"];
        let mut list: Vec<(u8, String)> = Vec::new();
        for round in 0..4 {
            for (i, stem) in stems.iter().enumerate() {
                for (j, tail) in tails.iter().enumerate() {
                    list.push((((i + j + round) % 3) as u8 + 1, format!("{stem}{tail}")));
                }
            }
        }
        let refs: Vec<(u8, &str)> = list.iter().map(|(r, id)| (*r, id.as_str())).collect();
        let items = items(&refs);
        for end in [2, 3, 17, 64, list.len()] {
            let one = key_order(&items, 0..end, 1, 2);
            assert_eq!(key_order(&items, 0..end, 2, 2), one, "{end} ops");
            assert_eq!(one.len(), end);
        }
    }

    #[test]
    fn notices_are_ordered_by_normalized_id_and_keep_file_order_on_ties() {
        let ids = [
            "bob",
            "Bob",
            " bob",
            "ann",
            "Émile",
            "émile",
            "zed",
            "b",
            "bobby",
            "jgarciamartinezlopez2",
            "JGarciaMartinezLopez1",
            "ann",
            "",
        ];
        let notices: Vec<Notice> = ids
            .iter()
            .enumerate()
            .map(|(line, id)| Notice {
                line: line as u64,
                user_id: Text::from(*id),
                email: None,
                first_name: None,
                last_name: None,
            })
            .collect();
        let mut want = notices.clone();
        want.sort_by_cached_key(|n| normalize(&n.user_id));
        let mut got = notices;
        sort_notices(&mut got);
        let lines = |v: &[Notice]| v.iter().map(|n| n.line).collect::<Vec<_>>();
        assert_eq!(lines(&got), lines(&want));
    }

    #[test]
    fn a_long_chain_is_ordered_without_recursion() {
        let ids: Vec<String> = (0..100_000)
            .map(|i| format!("{:06}", 100_000 - i))
            .collect();
        let list: Vec<(u8, &str)> = ids.iter().map(|id| (1, id.as_str())).collect();
        let items = items(&list);
        let edges: Vec<(u32, u32)> = (1..items.len() as u32).map(|i| (i - 1, i)).collect();
        let order = topological(&items, edges, 1);
        assert!(order.iter().copied().eq(0..items.len() as u32));
    }

    #[test]
    fn the_next_op_is_always_the_first_ready_one_in_key_order() {
        // Against the definition, on small random graphs (some with cycles):
        // repeatedly take, among the ops whose prerequisites are all placed,
        // the first by (rank, normalized id); ops left on a cycle follow in
        // key order.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..500 {
            let n = 1 + next(24) as usize;
            let ids: Vec<String> = (0..n).map(|_| format!("u{}", next(40))).collect();
            let list: Vec<(u8, &str)> = ids
                .iter()
                .map(|id| (1 + next(3) as u8, id.as_str()))
                .collect();
            let items = items(&list);
            let edges: Vec<(u32, u32)> = (0..next(2 * n as u64))
                .map(|_| (next(n as u64) as u32, next(n as u64) as u32))
                .collect();
            let key = |k: usize| (list[k].0, normalize(list[k].1), k);
            let mut want = Vec::new();
            let mut placed = vec![false; n];
            loop {
                let ready = (0..n)
                    .filter(|&k| !placed[k])
                    .filter(|&k| {
                        edges
                            .iter()
                            .all(|&(a, b)| b as usize != k || a == b || placed[a as usize])
                    })
                    .min_by_key(|&k| key(k));
                let Some(k) = ready else { break };
                placed[k] = true;
                want.push(k);
            }
            let mut rest: Vec<usize> = (0..n).filter(|&k| !placed[k]).collect();
            rest.sort_by_key(|&k| key(k));
            want.extend(rest);
            let want: Vec<u32> = want.into_iter().map(|k| k as u32).collect();
            assert_eq!(
                topological(&items, edges.clone(), 1),
                want,
                "{list:?} {edges:?}"
            );
        }
    }

    #[test]
    fn ops_are_put_in_order_in_place() {
        // Every permutation of five ops (cycles of every length).
        let ids = ["a", "b", "c", "d", "e"];
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        let mut seen = 0;
        permutations(&mut order, 0, &mut |order| {
            seen += 1;
            let list: Vec<(u8, &str)> = ids.iter().map(|&id| (1, id)).collect();
            let ops = items(&list).into_ordered(order);
            let got: Vec<&str> = ops.iter().filter_map(Op::user_id).collect();
            let want: Vec<&str> = order.iter().map(|&k| ids[k as usize]).collect();
            assert_eq!(got, want, "order {order:?}");
        });
        assert_eq!(seen, 120);
    }

    fn permutations(v: &mut Vec<u32>, k: usize, f: &mut dyn FnMut(&[u32])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permutations(v, k + 1, f);
            v.swap(k, i);
        }
    }
}
