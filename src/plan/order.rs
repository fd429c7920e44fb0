//! Finishing a plan: the checks that need every row (managers created by the
//! file, managers deleted while users still report to them), the guards, and
//! the canonical order of operations.

use std::collections::HashMap;

use crate::issue::{Code, Issue, sort_issues};
use crate::record::{normalize, same};
use crate::schema::Field;
use crate::store::{Attribute, Change, Op};

use super::{Disp, Notice, Plan, Planned, PlannedRow, Planner};

/// Depth of each node in a forest given by `parent` (iteratively: chains may
/// be a million long). A cycle, which validation rules out, is cut where the
/// walk meets itself.
fn depths(parent: &[Option<usize>]) -> Vec<u32> {
    const UNKNOWN: u32 = u32::MAX;
    const VISITING: u32 = u32::MAX - 1;
    let mut depth = vec![UNKNOWN; parent.len()];
    let mut path = Vec::new();
    for start in 0..parent.len() {
        if depth[start] != UNKNOWN {
            continue;
        }
        let mut cur = Some(start);
        let mut base = 0;
        while let Some(c) = cur {
            match depth[c] {
                UNKNOWN => {
                    depth[c] = VISITING;
                    path.push(c);
                    cur = parent[c].filter(|&p| p < parent.len());
                }
                VISITING => break,
                d => {
                    base = d + 1;
                    break;
                }
            }
        }
        // The last node pushed is the one nearest the root.
        while let Some(node) = path.pop() {
            depth[node] = base;
            base += 1;
        }
    }
    depth
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

    // (a) A row whose manager is created by another row fails when that row
    // fails. Managers first: walk each chain from its top.
    let manager_of = |d: &Disp| match d {
        Disp::Create { manager_row, .. } | Disp::Update { manager_row, .. } => {
            manager_row.map(|m| m as usize)
        }
        _ => None,
    };
    let parents: Vec<Option<usize>> = p.disp.iter().map(manager_of).collect();
    let depth = depths(&parents);
    let mut by_depth: Vec<usize> = (0..n).filter(|&i| parents[i].is_some()).collect();
    by_depth.sort_by_key(|&i| depth[i]);
    for i in by_depth {
        let Some(m) = parents[i] else { continue };
        if !matches!(p.disp[m], Disp::Create { .. }) {
            let line = p.v.rows[m].line;
            let manager = p.v.rows[i]
                .user
                .value(Field::ReportsTo)
                .unwrap_or("")
                .to_owned();
            let col = p.column(Field::ReportsTo);
            p.row_error(
                i,
                Issue::error(
                    Code::UnknownReference,
                    format!("the manager is created by line {line}, which is not imported"),
                )
                .column(col)
                .value(&manager),
            );
        }
    }

    // (b) A delete fails while a user who stays still reports to the deleted
    // user. Deleted reports are decided first (deepest first).
    let delete_rows: Vec<usize> = (0..n)
        .filter(|&i| matches!(p.disp[i], Disp::Delete { .. }))
        .collect();
    let row_of_id: HashMap<String, usize> = delete_rows
        .iter()
        .filter_map(|&i| match &p.disp[i] {
            Disp::Delete { user_id, .. } => Some((normalize(user_id), i)),
            _ => None,
        })
        .collect();
    let del_parent: Vec<Option<usize>> = (0..n)
        .map(|i| match &p.disp[i] {
            Disp::Delete {
                manager: Some(m), ..
            } => row_of_id.get(m).copied(),
            _ => None,
        })
        .collect();
    let del_depth = depths(&del_parent);
    let mut deletes_deepest_first = delete_rows.clone();
    deletes_deepest_first.sort_by_key(|&i| std::cmp::Reverse(del_depth[i]));
    for i in deletes_deepest_first {
        let Disp::Delete {
            user_id, reports, ..
        } = &p.disp[i]
        else {
            continue;
        };
        let id = normalize(user_id);
        let mut kept: Vec<String> = Vec::new();
        for r in reports {
            if !leaves(&p, r, &id) {
                kept.push(r.clone());
            }
        }
        // Rows of the file that will report to this user.
        for r in p.managers.find(&p.v.rows, Field::ReportsTo, user_id) {
            if r != i
                && matches!(
                    p.disp[r],
                    Disp::Create { .. } | Disp::Update { .. } | Disp::Unchanged
                )
            {
                if let Some(k) = p.v.rows[r].user.value(Field::UserId) {
                    kept.push(normalize(k));
                } else {
                    kept.push(format!("line {}", p.v.rows[r].line));
                }
            }
        }
        if !kept.is_empty() {
            kept.sort();
            kept.dedup();
            let names: Vec<String> = kept.iter().take(10).map(|k| crate::printable(k)).collect();
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
    }

    // Mirror deletes of users someone who stays reports to are skipped.
    let kept_managers = std::mem::take(&mut p.mirror_kept_managers);
    let mut mirror_issues = Vec::new();
    p.mirror_delete.retain(|(id, _, _)| {
        let keep = kept_managers.contains(&normalize(id));
        if keep {
            mirror_issues.push(Issue::warning(
                Code::HasReports,
                format!(
                    "{} is not in the file but users who stay report to them; not deleted",
                    crate::printable(id)
                ),
            ));
        }
        !keep
    });

    // Guards on mass removal.
    let removals = p.removals();
    let mut file_issues = std::mem::take(&mut p.v.file_issues);
    file_issues.extend(mirror_issues);
    let guards = &p.profile.guards;
    let mut tripped = None;
    if let Some(max) = guards.max_deletes {
        if removals > max {
            tripped = Some(format!(
                "the plan deletes or disables {removals} users, more than the limit of {max}"
            ));
        }
    }
    if let (Some(share), Some(size)) = (guards.max_delete_share, p.directory_size) {
        if removals >= guards.min_removals_for_share
            && size > 0
            && removals as f64 > share * size as f64
        {
            tripped.get_or_insert(format!(
                "the plan deletes or disables {removals} of {size} users, more than {:.0}%",
                share * 100.0
            ));
        }
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
    for i in p.plan_issues.iter_mut().filter(|i| i.line.is_none()) {
        file_issues.push(i.clone());
    }
    p.plan_issues.retain(|i| i.line.is_some());

    build(p, file_issues)
}

/// Whether directory user `r` (normalized id), who reports to `manager`,
/// stops doing so: deleted by the file, or reassigned by it.
fn leaves(p: &Planner, r: &str, manager: &str) -> bool {
    p.ids
        .find(&p.v.rows, Field::UserId, r)
        .any(|row| match &p.disp[row] {
            Disp::Delete { .. } => true,
            Disp::Update { changes, .. } => changes.iter().any(|c| {
                c.field == Attribute::Field(Field::ReportsTo)
                    && !c.new.as_deref().is_some_and(|m| same(m, manager))
            }),
            _ => false,
        })
}

fn build(mut p: Planner, file_issues: Vec<Issue>) -> Plan {
    let n = p.v.rows.len();
    let key = p.profile.key;
    let mut rows = Vec::with_capacity(n);
    let mut roles_needed: Vec<String> = Vec::new();
    let mut creates: Vec<(usize, u32, String)> = Vec::new(); // (row, depth, id)
    let parents: Vec<Option<usize>> = p
        .disp
        .iter()
        .map(|d| match d {
            Disp::Create { manager_row, .. } => manager_row.map(|m| m as usize),
            _ => None,
        })
        .collect();
    let depth = depths(&parents);
    let mut updates: Vec<(String, Op)> = Vec::new();
    let mut deletes: Vec<(String, Option<String>, Op)> = Vec::new();
    let mut notices = Vec::new();
    let mut failed = 0u64;
    let disp = std::mem::take(&mut p.disp);
    let mut create_ops: HashMap<usize, Op> = HashMap::new();
    for (i, d) in disp.into_iter().enumerate() {
        let row = &p.v.rows[i];
        let planned = match d {
            Disp::Pending | Disp::Skip => Planned::Skip,
            Disp::Fail => {
                failed += 1;
                Planned::Fail
            }
            Disp::Unchanged => Planned::Unchanged,
            Disp::Create { user, notify, .. } => {
                for r in user.roles() {
                    if p.new_roles.contains_key(&normalize(r)) {
                        roles_needed.push(r.to_owned());
                    }
                }
                let id = user.user_id().unwrap_or("").to_owned();
                if notify {
                    notices.push(Notice {
                        line: row.line,
                        user_id: id.clone(),
                        email: user.email().map(str::to_owned),
                        first_name: user.value(Field::FirstName).map(str::to_owned),
                        last_name: user.value(Field::LastName).map(str::to_owned),
                    });
                }
                creates.push((i, depth[i], normalize(&id)));
                create_ops.insert(
                    i,
                    Op::Create {
                        line: Some(row.line),
                        user,
                    },
                );
                Planned::Create
            }
            Disp::Update {
                user_id,
                version,
                changes,
                ..
            } => {
                for c in &changes {
                    if c.field == Attribute::Field(Field::Roles) {
                        for r in c.new.as_deref().unwrap_or("").split('|') {
                            if p.new_roles.contains_key(&normalize(r)) {
                                roles_needed.push(r.to_owned());
                            }
                        }
                    }
                }
                updates.push((
                    normalize(&user_id),
                    Op::Update {
                        line: Some(row.line),
                        user_id,
                        version,
                        changes,
                    },
                ));
                Planned::Update
            }
            Disp::Delete {
                user_id,
                version,
                manager,
                ..
            } => {
                deletes.push((
                    normalize(&user_id),
                    manager,
                    Op::Delete {
                        line: Some(row.line),
                        user_id,
                        version,
                    },
                ));
                Planned::Delete
            }
        };
        rows.push(PlannedRow {
            line: row.line,
            key: row.key(key).map(str::to_owned),
            planned,
        });
    }
    for (id, version, old) in std::mem::take(&mut p.mirror_disable) {
        updates.push((
            normalize(&id),
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
        ));
    }
    for (id, version, manager) in std::mem::take(&mut p.mirror_delete) {
        deletes.push((
            normalize(&id),
            manager,
            Op::Delete {
                line: None,
                user_id: id,
                version,
            },
        ));
    }

    let mut ops = Vec::new();
    roles_needed.sort();
    roles_needed.dedup_by(|a, b| same(a, b));
    ops.extend(roles_needed.into_iter().map(|name| Op::CreateRole { name }));
    creates.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
    for (i, _, _) in creates {
        if let Some(op) = create_ops.remove(&i) {
            ops.push(op);
        }
    }
    updates.sort_by(|a, b| a.0.cmp(&b.0));
    ops.extend(updates.into_iter().map(|(_, op)| op));
    // Deletes: reports before their managers.
    let index: HashMap<&str, usize> = deletes
        .iter()
        .enumerate()
        .map(|(k, d)| (d.0.as_str(), k))
        .collect();
    let parent: Vec<Option<usize>> = deletes
        .iter()
        .map(|d| d.1.as_deref().and_then(|m| index.get(m).copied()))
        .collect();
    let ddepth = depths(&parent);
    let mut order: Vec<usize> = (0..deletes.len()).collect();
    order.sort_by(|&a, &b| {
        (std::cmp::Reverse(ddepth[a]), &deletes[a].0)
            .cmp(&(std::cmp::Reverse(ddepth[b]), &deletes[b].0))
    });
    drop(index);
    let mut deletes: Vec<Option<Op>> = deletes.into_iter().map(|d| Some(d.2)).collect();
    for k in order {
        if let Some(op) = deletes[k].take() {
            ops.push(op);
        }
    }
    notices.sort_by_cached_key(|n| normalize(&n.user_id));

    let mut row_issues = std::mem::take(&mut p.v.row_issues);
    row_issues.append(&mut p.plan_issues);
    sort_issues(&mut row_issues, &p.v.columns);
    let mut file_issues = file_issues;
    sort_issues(&mut file_issues, &p.v.columns);
    let file_error = file_issues.iter().any(Issue::is_error);
    let blocked = super::blocked(p.profile.on_error, file_error, failed);
    Plan {
        tenant: p.tenant,
        input: p.v.input,
        columns: p.v.columns,
        key,
        on_error: p.profile.on_error,
        batch_size: p.profile.batch_size.max(1),
        rows,
        ops,
        notices,
        file_issues,
        row_issues,
        blocked,
    }
}

#[cfg(test)]
mod tests {
    use super::depths;

    #[test]
    fn depths_of_a_forest() {
        // 0 ← 1 ← 2, 3 alone, 4 → 1
        let parent = [None, Some(0), Some(1), None, Some(1)];
        assert_eq!(depths(&parent), [0, 1, 2, 0, 2]);
    }

    #[test]
    fn a_long_chain_does_not_overflow() {
        let n: usize = 200_000;
        let parent: Vec<Option<usize>> = (0..n).map(|i| i.checked_sub(1)).collect();
        let d = depths(&parent);
        assert_eq!(d[n - 1], (n - 1) as u32);
    }

    #[test]
    fn a_cycle_terminates() {
        let parent = [Some(1), Some(0)];
        let d = depths(&parent);
        assert_eq!(d.len(), 2);
    }
}
