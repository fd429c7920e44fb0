//! The undo of an applied plan: an ordinary [`Plan`] that takes back what
//! applying did, op by op, in the reverse order.
//!
//! - a created user is deleted, at the version the directory gave it after
//!   the import;
//! - an updated user gets the previous values of the changed fields back
//!   (lists included), at its version after the import;
//! - a deleted user is created again from the whole record the plan kept,
//!   with the fields they had locked locked again;
//! - a created role is deleted, where no user holds it any more.
//!
//! The versions after the import are read back from the store by the apply
//! driver (one `fetch` per batch of users, inside the import's transaction
//! when it has one), so a user changed since the import is a `conflict` when
//! the undo is applied, never overwritten. A user whose state read back is
//! not what the import wrote (changed between the write and the read, when
//! the store has no transaction) is not taken back: its row fails, saying so.
//! Applying an undo gives its own undo: the redo.

use crate::index::HashIndex;
use crate::issue::{Code, Issue};
use crate::matching::normalize;
use crate::plan::{Plan, Planned, PlannedRow};
use crate::profile::ErrorPolicy;
use crate::record::User;
use crate::report::OpStatus;
use crate::schema::Field;
use crate::store::{Attribute, Change, ExistingUser, Fetch, Op};
use crate::text::Text;

/// The users whose state after applying the undo needs: those the applied
/// ops created or updated, normalized, in requests of at most `batch` ids,
/// each made when it is asked for (a million-user import does not hold
/// every id twice over).
pub(crate) fn fetches<'a>(
    plan: &'a Plan,
    status: &'a [OpStatus],
    batch: usize,
) -> impl Iterator<Item = Fetch> + 'a {
    let mut ids = plan
        .ops
        .iter()
        .zip(status)
        .filter(|(op, s)| {
            matches!(s, OpStatus::Applied) && matches!(op, Op::Create { .. } | Op::Update { .. })
        })
        .filter_map(|(op, _)| op.user_id().map(normalize))
        .peekable();
    std::iter::from_fn(move || {
        ids.peek()?;
        let mut f = Fetch::new(plan.tenant.clone());
        f.user_ids = ids.by_ref().take(batch.max(1)).collect();
        Some(f)
    })
}

/// The user of `users` whose id is `id` under the matching policy (the
/// last, should several be), by `index` of their ids; a user already moved
/// into the undo is no longer there (see `uses` in [`build`]).
fn find(index: &HashIndex, users: &[Option<ExistingUser>], id: &str) -> Option<usize> {
    index
        .find(id, |i| users.get(i)?.as_ref().map(ExistingUser::user_id))
        .last()
}

/// An index of the ids of `users`.
fn index_ids<'a>(users: impl Iterator<Item = &'a ExistingUser>) -> HashIndex {
    HashIndex::new(users.enumerate().map(|(i, u)| (i, u.user_id())))
}

/// The undo of `plan`, applied with `status`, given the users `after` the
/// store holds now (as [`fetches`] asked for): a user it deletes is moved
/// into the undo's records, not copied, once no other op needs it.
/// `read_failed` says why the store could not be read back, if so.
pub(crate) fn build(
    plan: &Plan,
    status: &[OpStatus],
    after: Vec<ExistingUser>,
    read_failed: Option<&str>,
) -> Plan {
    let unread = read_failed.map(|e| {
        format!("the store could not be read back after the import, so the undo leaves this user as they are: {e}")
    });
    let changed = unread.as_deref().unwrap_or(CHANGED);
    let now = index_ids(after.iter());
    let mut after: Vec<Option<ExistingUser>> = after.into_iter().map(Some).collect();
    // How many applied ops look each user up: the last of them may move
    // the user into the undo, the others read it (a plan the planner made
    // has one op a user; a stored plan may hold several).
    let mut uses = vec![0u32; after.len()];
    for (op, _) in plan
        .ops
        .iter()
        .zip(status)
        .filter(|(_, s)| matches!(s, OpStatus::Applied))
    {
        if let Op::Create { .. } | Op::Update { .. } = op
            && let Some(i) = find(&now, &after, op.user_id().unwrap_or(""))
        {
            uses[i] = uses[i].saturating_add(1);
        }
    }
    let before = index_ids(plan.removed.iter());
    let before_at = |id: &str| {
        before
            .find(id, |i| plan.removed.get(i).map(ExistingUser::user_id))
            .last()
            .and_then(|i| plan.removed.get(i))
    };
    let mut undo = Undo::default();
    for (op, s) in plan.ops.iter().zip(status).rev() {
        if !matches!(s, OpStatus::Applied) {
            continue;
        }
        match op {
            Op::CreateRole { name } => undo.ops.push(Op::DeleteRole { name: name.clone() }),
            Op::DeleteRole { name } => undo.ops.push(Op::CreateRole { name: name.clone() }),
            Op::Create { line, user, .. } => {
                let id = user.user_id().unwrap_or("");
                let as_left = find(&now, &after, id).and_then(|i| {
                    uses[i] = uses[i].saturating_sub(1);
                    let holds = |u: &ExistingUser| holds_all(&u.user, &as_changes(user));
                    if uses[i] == 0 {
                        after[i].take_if(|u| holds(u))
                    } else {
                        after[i].as_ref().filter(|u| holds(u)).cloned()
                    }
                });
                match as_left {
                    Some(u) => {
                        let delete = Op::Delete {
                            line: *line,
                            user_id: u.user_id().to_owned(),
                            version: u.version,
                        };
                        undo.removed.push(u);
                        undo.push(*line, id, Planned::Delete, delete);
                    }
                    None => undo.cannot(*line, id, changed),
                }
            }
            Op::Update {
                line,
                user_id,
                changes,
                ..
            } => match find(&now, &after, user_id).and_then(|i| {
                uses[i] = uses[i].saturating_sub(1);
                after[i].as_ref()
            }) {
                Some(u) if holds_all(&u.user, changes) => undo.push(
                    *line,
                    user_id,
                    Planned::Update,
                    Op::Update {
                        line: *line,
                        user_id: u.user_id().to_owned(),
                        version: u.version,
                        changes: changes
                            .iter()
                            .map(|c| Change {
                                field: c.field.clone(),
                                old: c.new.clone(),
                                new: c.old.clone(),
                            })
                            .collect(),
                    },
                ),
                _ => undo.cannot(*line, user_id, changed),
            },
            Op::Delete { line, user_id, .. } => match before_at(user_id) {
                Some(u) => {
                    undo.push(
                        *line,
                        user_id,
                        Planned::Create,
                        Op::Create {
                            line: *line,
                            user: u.user.clone(),
                            locked: u.locked.clone(),
                        },
                    );
                }
                None => undo.cannot(
                    *line,
                    user_id,
                    "the plan holds no record of this user, so the undo cannot create them again",
                ),
            },
        }
    }
    undo.rows.sort_by_key(|r| r.line);
    undo.issues.sort_by_key(|i| i.line);
    let mut provenance = plan.provenance.clone();
    let planned_at = crate::plan::now();
    // The undo applies what it can (see `on_error` below).
    provenance.profile.on_error = ErrorPolicy::SkipInvalid;
    provenance.decisions = crate::plan::decisions(&provenance.profile);
    provenance.decisions.insert(
        0,
        format!(
            "undo of the import of sha256 {} planned at {}",
            plan.provenance.input_sha256, plan.provenance.planned_at
        ),
    );
    provenance.planned_at = planned_at.clone();
    provenance.finished_at = planned_at;
    Plan {
        tenant: plan.tenant.clone(),
        input: plan.input.clone(),
        columns: plan.columns.clone(),
        key: plan.key,
        // Every user the undo can take back is taken back; one changed
        // since is a conflict of its own row.
        on_error: ErrorPolicy::SkipInvalid,
        batch_size: plan.batch_size,
        limits: plan.limits,
        rows: undo.rows,
        ops: undo.ops,
        notices: Vec::new(),
        file_issues: undo.file_issues,
        row_issues: undo.issues,
        blocked: false,
        provenance,
        removed: undo.removed,
    }
}

const CHANGED: &str =
    "this user is not as the import left them, so the undo leaves them as they are";

#[derive(Default)]
struct Undo {
    ops: Vec<Op>,
    rows: Vec<PlannedRow>,
    issues: Vec<Issue>,
    file_issues: Vec<Issue>,
    removed: Vec<ExistingUser>,
}

impl Undo {
    /// An op of the undo, and the row of the file it takes back (mirror
    /// mode's changes have no row).
    fn push(&mut self, line: Option<u64>, id: &str, planned: Planned, op: Op) {
        if let Some(line) = line {
            self.rows.push(PlannedRow {
                line,
                key: Some(Text::from(id)),
                planned,
            });
        }
        self.ops.push(op);
    }

    /// A row the undo cannot take back.
    fn cannot(&mut self, line: Option<u64>, id: &str, why: &str) {
        let issue = Issue::error(Code::Conflict, why).value(id);
        match line {
            Some(line) => {
                self.rows.push(PlannedRow {
                    line,
                    key: Some(Text::from(id)),
                    planned: Planned::Fail,
                });
                self.issues.push(issue.at(line));
            }
            // A change to a user the file does not name (mirror mode's).
            None => self.file_issues.push(issue),
        }
    }
}

/// A created user's values, as changes from nothing.
fn as_changes(user: &User) -> Vec<Change> {
    user.fields()
        .map(|(f, v)| Change::new(Attribute::Field(f), None, Some(v)))
        .chain(
            user.customs()
                .map(|(n, v)| Change::new(Attribute::Custom(n.to_owned()), None, Some(v))),
        )
        .collect()
}

/// Whether `user` holds what `changes` set: planning the same changes
/// against it would plan none (the user id, matched by the matching
/// policy, aside).
fn holds_all(user: &User, changes: &[Change]) -> bool {
    changes.iter().all(|c| {
        let current = match &c.field {
            Attribute::Field(Field::UserId) => return true,
            Attribute::Field(f) => user.get(*f),
            Attribute::Custom(n) => user.custom(n),
        };
        crate::plan::same_value(&c.field, current, c.new.as_deref())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Importer;
    use crate::memory::InMemoryStore;

    /// A stored plan may hold several ops on one user: each reads the user
    /// read back, and only the last moves it into the undo's records.
    #[test]
    fn every_op_on_a_user_reads_it_and_the_last_moves_it() {
        let importer = Importer::new("t");
        let mut store = InMemoryStore::new();
        let file = b"userId,email\nx,x@example.org\ny,y@example.org\n";
        let mut plan = importer
            .plan(importer.validate(file, None), &mut store)
            .unwrap();
        let Op::Create { user: x, .. } = plan.ops[0].clone() else {
            panic!("not a create: {:?}", plan.ops[0]);
        };
        let Op::Create { user: y, .. } = plan.ops[1].clone() else {
            panic!("not a create: {:?}", plan.ops[1]);
        };
        // Hand-edited: x is created twice.
        plan.ops.push(plan.ops[0].clone());
        let status = vec![OpStatus::Applied; 3];
        let read_back = |user: &User, version| ExistingUser {
            user: user.clone(),
            version,
            locked: Vec::new(),
        };
        let undo = build(
            &plan,
            &status,
            vec![read_back(&x, 7), read_back(&y, 8)],
            None,
        );
        let deletes: Vec<(&str, u64)> = undo
            .ops
            .iter()
            .map(|op| match op {
                Op::Delete {
                    user_id, version, ..
                } => (user_id.as_str(), *version),
                other => panic!("not a delete: {other:?}"),
            })
            .collect();
        assert_eq!(deletes, [("x", 7), ("y", 8), ("x", 7)]);
        let removed: Vec<&str> = undo.removed.iter().map(ExistingUser::user_id).collect();
        assert_eq!(removed, ["x", "y", "x"]);
    }
}
