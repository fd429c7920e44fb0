//! The per-row rules: matching a row to a directory user, and what an
//! upsert, a delete and mirror mode make of it.

use crate::issue::{Code, Issue};
use crate::matching::{normalize, same};
use crate::profile::{MirrorAction, Mode};
use crate::record::Action;
use crate::schema::Field;
use crate::store::ExistingUser;
use crate::text::Text;
use crate::validate::Row;
use crate::validate::file::{index_rows, value_in};

use super::*;

impl Planner {
    /// Finds the existing user a row is about: `(by user id, by email)`.
    pub(super) fn identify<'d>(
        &self,
        row: &Row,
        dir: &'d Dir<'_>,
    ) -> (Option<&'d ExistingUser>, Option<&'d ExistingUser>) {
        let by_id = row.user.value(Field::UserId).and_then(|v| dir.by_id(v));
        let by_email = row.user.value(Field::Email).and_then(|v| dir.by_email(v));
        (by_id, by_email)
    }

    pub(super) fn plan_upsert(&self, i: usize, dir: &Dir<'_>, out: &mut ChunkOut) {
        let row = &self.v.rows[i];
        let line = row.line;
        let (by_id, by_email) = self.identify(row, dir);
        let key_field = self.key_field();
        let email_col = self.column(Field::Email);
        let id_col = self.column(Field::UserId);
        let email = row.user.email().unwrap_or("");
        // A row may take the email of another user when the file moves that
        // user to another email (or deletes them): the handover is ordered
        // (release first) and checked when the plan is finished.
        let mut email_from: Option<u32> = None;
        if let (Some(a), Some(b)) = (by_id, by_email)
            && !same(a.user_id(), b.user_id())
        {
            match self.releaser(b.user_id(), email) {
                Some(j) if key_field == Field::UserId => email_from = Some(j as u32),
                _ => {
                    let issue = Issue::error(
                            Code::IdentityConflict,
                            format!(
                                "userId {:?} and email {:?} belong to two different users ({:?} has this email)",
                                crate::issue::printable(a.user_id()),
                                crate::issue::printable(email),
                                crate::issue::printable(b.user_id()),
                            ),
                        )
                        .column(email_col)
                        .value(email);
                    return self.chunk_error(out, i, issue);
                }
            }
        }
        let target = match key_field {
            Field::Email => {
                if by_email.is_none() && by_id.is_some() {
                    let issue = Issue::error(
                        Code::IdentityConflict,
                        "this userId belongs to a user with another email; the email is the key and cannot change",
                    )
                    .column(id_col)
                    .value(row.user.user_id().unwrap_or(""));
                    return self.chunk_error(out, i, issue);
                }
                if let (Some(t), Some(id)) = (by_email, row.user.user_id())
                    && !same(t.user_id(), id)
                {
                    let issue = Issue::error(
                        Code::IdentityConflict,
                        format!(
                            "the user with this email has userId {:?}; a user id cannot be changed",
                            crate::issue::printable(t.user_id())
                        ),
                    )
                    .column(id_col)
                    .value(id);
                    return self.chunk_error(out, i, issue);
                }
                by_email
            }
            _ => {
                if row.user.user_id().is_some() {
                    if by_id.is_none()
                        && let Some(b) = by_email
                    {
                        match self.releaser(b.user_id(), email) {
                            Some(j) => email_from = Some(j as u32),
                            None => {
                                let issue = Issue::error(
                                    Code::EmailTaken,
                                    format!(
                                        "the email is already used by user {:?}",
                                        crate::issue::printable(b.user_id()),
                                    ),
                                )
                                .column(email_col)
                                .value(email);
                                return self.chunk_error(out, i, issue);
                            }
                        }
                    }
                    by_id
                } else {
                    by_email
                }
            }
        };
        match (self.profile.mode, target) {
            (Mode::CreateOnly, Some(t)) => {
                let issue = Issue::error(
                    Code::AlreadyExists,
                    format!(
                        "user {:?} already exists (create-only import)",
                        crate::issue::printable(t.user_id())
                    ),
                )
                .column(self.column(key_field));
                return self.chunk_error(out, i, issue);
            }
            (Mode::UpdateOnly, None) => {
                let issue = Issue::error(
                    Code::NotFound,
                    "no such user (update-only import: users must already exist)",
                )
                .column(self.column(key_field))
                .value(row.key(self.profile.key).unwrap_or(""));
                return self.chunk_error(out, i, issue);
            }
            _ => {}
        }
        // The manager must exist, in the directory or in the file.
        let mut manager_row = None;
        if let Some(m) = row.user.value(Field::ReportsTo)
            && dir.by_id(m).is_none()
        {
            let in_file = self
                .ids
                .unique(m, value_in(&self.v.rows, Field::UserId))
                .filter(|&r| self.v.rows[r].action == Action::Upsert);
            match in_file {
                Some(r) => manager_row = Some(r as u32),
                None => {
                    let issue = Issue::error(
                        Code::UnknownReference,
                        "the manager is neither in the directory nor in the file",
                    )
                    .column(self.column(Field::ReportsTo))
                    .value(m);
                    return self.chunk_error(out, i, issue);
                }
            }
        }
        if row.user.user_id().is_none() && target.is_none() && key_field == Field::UserId {
            let issue = Issue::error(
                Code::MissingValue,
                "a new user needs a userId (no existing user has this email)",
            )
            .column(id_col);
            return self.chunk_error(out, i, issue);
        }
        // Roles this row grants that the guard does not allow.
        let not_grantable = self
            .profile
            .guards
            .grantable_roles
            .as_ref()
            .and_then(|grantable| {
                row.user.roles().find(|r| {
                    !target.is_some_and(|t| t.user.roles().any(|c| same(c, r)))
                        && !grantable.iter().any(|g| same(g, r))
                })
            });
        if let Some(bad) = not_grantable {
            let issue = Issue::error(
                Code::RoleNotGrantable,
                "this import may not grant this role",
            )
            .column(self.column(Field::Roles))
            .value(bad);
            return self.chunk_error(out, i, issue);
        }
        match target {
            None => {
                // The user stays in the row until the plan is built.
                let notify = row.notify;
                out.set(
                    i,
                    Disp::Create {
                        notify,
                        manager_row: Link::to(manager_row),
                        email_from: Link::to(email_from),
                    },
                );
            }
            Some(t) => {
                let mut warnings = Vec::new();
                let changes = {
                    let cols = |f: Field| self.column(f).to_owned();
                    diff::changes(
                        t,
                        row,
                        &self.profile.custom,
                        self.profile.blank,
                        self.profile.lists,
                        &cols,
                        &mut warnings,
                    )
                };
                for w in warnings {
                    out.issues.push(w.at(line));
                }
                // The acting administrator cannot lock themselves out.
                if self.acting.as_deref().is_some_and(|a| same(a, t.user_id()))
                    && let Some(reason) = self.lockout(t, &changes)
                {
                    let issue = Issue::error(Code::SelfLockout, reason).column(self.column(
                        if reason.contains("role") {
                            Field::Roles
                        } else {
                            Field::Enabled
                        },
                    ));
                    return self.chunk_error(out, i, issue);
                }
                out.note_target(i, t.user_id());
                if changes.is_empty() {
                    out.set(i, Disp::Unchanged);
                } else {
                    out.set(
                        i,
                        Disp::Update(Box::new(UpdateDisp {
                            manager_row: Link::to(manager_row),
                            email_from: Link::to(email_from),
                            version: t.version,
                            user_id: Text::from(t.user_id()),
                            changes,
                        })),
                    );
                }
            }
        }
    }

    /// The row of this file that moves `email` away from its current
    /// holder (changes the holder's email, or deletes them), if any.
    pub(super) fn releaser(&self, holder: &str, email: &str) -> Option<usize> {
        self.ids
            .unique(holder, value_in(&self.v.rows, Field::UserId))
            .filter(|&r| {
                let row = &self.v.rows[r];
                !row.error
                    && (row.action == Action::Delete
                        || row.user.email().is_some_and(|e| !same(e, email)))
            })
    }

    /// Why applying `changes` to the acting user would lock them out.
    pub(super) fn lockout(
        &self,
        t: &ExistingUser,
        changes: &diff::Changes,
    ) -> Option<&'static str> {
        if changes.new_value(Field::Enabled) == Some(Some("false")) {
            return Some("you cannot disable your own account");
        }
        if let Some(new) = changes.new_value(Field::Roles) {
            let admin = |roles: Option<&str>| {
                roles
                    .unwrap_or("")
                    .split('|')
                    .any(|r| self.profile.guards.admin_roles.iter().any(|a| same(a, r)))
            };
            if admin(t.user.value(Field::Roles)) && !admin(new) {
                return Some("you cannot remove your own admin role");
            }
        }
        None
    }

    pub(super) fn plan_delete(&self, i: usize, dir: &Dir<'_>, out: &mut ChunkOut) {
        let row = &self.v.rows[i];
        let key_col = self.column(self.key_field());
        if self.profile.mode == Mode::CreateOnly {
            let issue = Issue::error(
                Code::InvalidValue,
                "DELETE rows are not allowed in a create-only import",
            )
            .column(self.column(Field::Transaction));
            return self.chunk_error(out, i, issue);
        }
        let (by_id, by_email) = self.identify(row, dir);
        let target = match (self.key_field(), row.user.user_id()) {
            (Field::UserId, Some(_)) => by_id,
            (Field::UserId, None) => by_email,
            _ => by_email.or(by_id),
        };
        let Some(t) = target else {
            let line = row.line;
            let key = row.key(self.profile.key).unwrap_or("").to_owned();
            out.issues.push(
                Issue::warning(Code::NotFound, "no such user to delete; nothing to do")
                    .at(line)
                    .column(key_col)
                    .value(&key),
            );
            out.set(i, Disp::Skip);
            return;
        };
        if self.acting.as_deref().is_some_and(|a| same(a, t.user_id())) {
            let issue = Issue::error(Code::SelfLockout, "you cannot delete your own account")
                .column(key_col);
            return self.chunk_error(out, i, issue);
        }
        let reports = dir.reports_of(t.user_id());
        let target = t.user_id().to_owned();
        out.note_target(i, &target);
        let row = &self.v.rows[i];
        let by_id = row.user.user_id().is_some_and(|id| same(id, t.user_id()));
        if !by_id {
            // The chunk asked for the reports of the row's user id only.
            out.pending_reports.push((i, normalize(t.user_id())));
        }
        // The whole record, for an undo to create the user again.
        out.removed.push(t.clone());
        out.set(
            i,
            Disp::Delete(Box::new(DeleteDisp {
                user_id: t.user_id().to_owned(),
                version: t.version,
                reports,
            })),
        );
    }

    /// A page of the directory in mirror mode.
    pub(super) fn mirror_page(&mut self, users: Vec<ExistingUser>) {
        self.mirror_seen += users.len() as u64;
        if let Some(last) = users.last() {
            self.mirror_after = Some(normalize(last.user_id()));
        }
        if self.emails.is_none() {
            self.emails = Some(index_rows(&self.v.rows, Field::Email, |_| true));
        }
        let Some(emails) = self.emails.as_ref() else {
            return;
        };
        for u in users {
            let id = u.user_id();
            // Rows naming this user (two of each kind at most: more are
            // duplicates, errors all).
            let rows: Vec<usize> =
                self.ids
                    .find(id, value_in(&self.v.rows, Field::UserId))
                    .take(2)
                    .chain(
                        u.user.email().into_iter().flat_map(|e| {
                            emails.find(e, value_in(&self.v.rows, Field::Email)).take(2)
                        }),
                    )
                    .collect();
            if !rows.is_empty() {
                // Kept: remember whom they will report to.
                for &r in &rows {
                    let m = match self.v.rows[r].user.value(Field::ReportsTo) {
                        Some(m) => Some(m),
                        None => u.user.value(Field::ReportsTo),
                    };
                    if let Some(m) = m {
                        self.mirror_kept_managers.insert(normalize(m));
                    }
                }
                continue;
            }
            // Another source's user (or an administrator's) is not this
            // import's to remove.
            if let Some(tag) = &self.profile.source
                && !u
                    .user
                    .custom(crate::profile::SOURCE_ATTRIBUTE)
                    .is_some_and(|t| same(t, tag))
            {
                // Kept, so their manager is kept too.
                if let Some(m) = u.user.value(Field::ReportsTo) {
                    self.mirror_kept_managers.insert(normalize(m));
                }
                continue;
            }
            if self.acting.as_deref().is_some_and(|a| same(a, id)) {
                self.plan_issues.push(Issue::warning(
                    Code::SelfLockout,
                    format!(
                        "you ({}) are not in the file, but mirror mode leaves your own account alone",
                        crate::issue::printable(id)
                    ),
                ));
                // Kept, so their manager is kept too.
                if let Some(m) = u.user.value(Field::ReportsTo) {
                    self.mirror_kept_managers.insert(normalize(m));
                }
                continue;
            }
            match self.profile.mirror {
                MirrorAction::Disable => {
                    if u.user.enabled() == Some(false) {
                        continue;
                    }
                    if u.locked.contains(&Field::Enabled) {
                        self.plan_issues.push(Issue::warning(
                            Code::FieldLocked,
                            format!(
                                "{} is not in the file but enabled is locked; not disabled",
                                crate::issue::printable(id)
                            ),
                        ));
                        continue;
                    }
                    self.mirror_disable.push((
                        id.to_owned(),
                        u.version,
                        u.user.get(Field::Enabled).map(str::to_owned),
                    ));
                }
                MirrorAction::Delete => {
                    self.mirror_delete.push((
                        id.to_owned(),
                        u.version,
                        u.user.value(Field::ReportsTo).map(normalize),
                    ));
                    self.removed.push(u.clone());
                }
            }
        }
    }
}
