//! Assembling the plan: the rows' entries and the operations, from what the
//! planner decided for each row.

use super::{Disp, Notice, Plan, Planned, PlannedRow, Planner};
use crate::issue::{Code, Issue, sort_issues};
use crate::matching::normalize;
use crate::schema::Field;
use crate::store::{Attribute, Change, Op};
use crate::text::Text;
use crate::validate::Row;
use std::collections::{BTreeMap, HashMap};

use super::checks::*;
use super::order::*;

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
        p.managers = Some(crate::validate::file::index_rows(
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

pub(super) fn makes_op(d: &Disp) -> bool {
    matches!(
        d,
        Disp::Create { .. } | Disp::Update { .. } | Disp::Delete(_)
    )
}

/// The plan's entries for some rows, made from the last row back.
#[derive(Default)]
pub(super) struct Built {
    pub(super) rows: Vec<PlannedRow>,
    pub(super) pending: Pending,
    /// The row of each op in `pending`.
    pub(super) op_rows: Vec<u32>,
    pub(super) notices: Vec<Notice>,
    pub(super) failed: u64,
    /// New roles named: (normalized name, first spelling in byte order).
    pub(super) needed: BTreeMap<String, String>,
}

impl Built {
    pub(super) fn reserve(&mut self, rows: usize, ops: usize) {
        self.rows.reserve_exact(rows);
        self.pending.reserve_exact(ops);
        self.op_rows.reserve_exact(ops);
    }

    /// Adds the entries of the rows before these.
    pub(super) fn append(&mut self, part: Built) {
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

/// What making the plan's entries reads.
#[derive(Clone, Copy)]
pub(super) struct Converting<'a> {
    pub(super) key: crate::schema::KeyField,
    /// The roles the plan creates (normalized, as first spelled).
    pub(super) new_roles: &'a BTreeMap<String, String>,
    /// The import source that tags the users it creates
    /// ([`crate::Profile::source`]).
    pub(super) source: Option<&'a str>,
}

/// Makes the plan's entries for the rows of `rows` after the first `keep`
/// (the first of `rows` being row `base` of the file) with their
/// dispositions, from the last row back, releasing each row as it goes.
pub(super) fn convert(
    rows: &mut Vec<Row>,
    disp: &mut Vec<Disp>,
    keep: usize,
    base: usize,
    how: &Converting<'_>,
    out: &mut Built,
) {
    let Converting {
        key,
        new_roles,
        source,
    } = *how;
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
                let taken = match &row.edits {
                    Some(edits) => super::diff::created_lists(row.user, &edits.0),
                    None => row.user,
                };
                // A new user without an id gets their normalized email as id.
                let fallback = match taken.user_id() {
                    None => taken.email().map(normalize),
                    Some(_) => None,
                };
                let mut user = super::diff::for_create(taken, fallback.as_deref());
                if let Some(tag) = source {
                    user = user
                        .to_builder()
                        .custom(crate::profile::SOURCE_ATTRIBUTE, tag)
                        .build();
                }
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
                push(
                    out,
                    1,
                    Op::Create {
                        line,
                        user,
                        locked: Vec::new(),
                    },
                );
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

pub(super) fn build(mut p: Planner, file_issues: Vec<Issue>, edges: Vec<Edge>) -> Plan {
    // The lookups are done: free them before the plan's own arrays grow.
    p.ids = crate::index::HashIndex::default();
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
    let tag = p.profile.source.clone();
    let how = &Converting {
        key,
        new_roles: &new_roles,
        source: tag.as_deref(),
    };
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
            let (high, low) = crate::par::join(
                move || {
                    let mut high = Built::default();
                    let (rows, disp) = (&mut high_rows, &mut high_disp);
                    convert(rows, disp, 0, mid, how, &mut high);
                    high
                },
                || {
                    let mut low = Built::default();
                    let (rows, disp) = (&mut source, &mut disp);
                    convert(rows, disp, start, 0, how, &mut low);
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
            convert(&mut source, &mut disp, start, 0, how, &mut whole);
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
        file_issues.insert(0, super::rejection(p.profile.on_error, failed));
    }
    let provenance = super::Provenance::new(
        &p.v.input,
        &p.profile,
        &p.tenant,
        p.acting_given.as_deref(),
        p.v.started,
    );
    // The records of the users the plan still deletes.
    let deleted: std::collections::HashSet<String> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Delete { user_id, .. } => Some(normalize(user_id)),
            _ => None,
        })
        .collect();
    let mut removed = std::mem::take(&mut p.removed);
    removed.retain(|u| deleted.contains(&normalize(u.user_id())));
    Plan {
        provenance,
        removed,
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
