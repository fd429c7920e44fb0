//! Checking rows against the catalog: roles, locations, departments and
//! groups the directory knows (or, for roles, will create).

use crate::catalog::{Lookup, RefKind};
use crate::issue::{Code, Issue};
use crate::matching::normalize;
use crate::profile::{Profile, RolePolicy};
use crate::record::Action;
use crate::schema::Field;
use crate::validate::Row;
use std::collections::{BTreeMap, HashMap};

/// What checking rows against the catalog needs.
pub(super) struct Refs<'a> {
    pub(super) index: &'a crate::catalog::CatalogIndex<'a>,
    pub(super) exact: &'a std::collections::HashSet<&'a str, foldhash::fast::RandomState>,
    pub(super) profile: &'a Profile,
    /// The file's column of each field (`Planner::column_names`).
    pub(super) column_names: &'a [String],
    pub(super) roles_checked: bool,
    pub(super) others_checked: bool,
}

/// Notes `spelling` for the new role whose normalized name is `folded`:
/// of all the spellings a file gives a new role, the first in byte order is
/// the one created and written into the rows.
pub(crate) fn first_spelling(roles: &mut BTreeMap<String, String>, folded: &str, spelling: &str) {
    match roles.get_mut(folded) {
        Some(first) if spelling < first.as_str() => spelling.clone_into(first),
        Some(_) => {}
        None => {
            roles.insert(folded.to_owned(), spelling.to_owned());
        }
    }
}

/// What checking some rows against the catalog found.
#[derive(Default)]
pub(super) struct RefsOut {
    /// New roles (`RolePolicy::Create`): normalized name → first spelling.
    pub(super) new_roles: BTreeMap<String, String>,
    pub(super) issues: Vec<Issue>,
    /// Rows (indexes into the file's rows, in order) that fail.
    pub(super) failed: Vec<usize>,
}

impl RefsOut {
    /// Adds what the rows after these found.
    pub(super) fn absorb(&mut self, later: RefsOut) {
        for (name, spelling) in later.new_roles {
            first_spelling(&mut self.new_roles, &name, &spelling);
        }
        self.issues.extend(later.issues);
        self.failed.extend(later.failed);
    }
}

impl Refs<'_> {
    /// The file's column of `f`, as issues name it.
    pub(super) fn column(&self, f: Field) -> &str {
        &self.column_names[crate::input::header::field_index(f)]
    }

    /// Checks `rows` (the first being row `base`) and rewrites their
    /// references in the catalog's spelling.
    pub(super) fn check(&self, rows: &mut [Row], base: usize) -> RefsOut {
        let index = self.index;
        let exact = self.exact;
        let roles_col = self.column(Field::Roles);
        let roles_checked = self.roles_checked;
        let others_checked = self.others_checked;
        let mut new_roles: BTreeMap<String, String> = BTreeMap::new();
        let mut issues = Vec::new();
        let mut failed = Vec::new();
        // "Did you mean" costs a comparison with every catalog entry: once
        // per distinct unknown value.
        let mut suggestions: HashMap<(u8, String), Option<String>> = HashMap::new();
        let suggest =
            |memo: &mut HashMap<(u8, String), Option<String>>, kind: RefKind, value: &str| {
                memo.entry((kind as u8, normalize(value)))
                    .or_insert_with(|| index.suggest(kind, value))
                    .clone()
            };
        for (i, row) in rows.iter_mut().enumerate() {
            let i = base + i;
            if row.error || row.action != Action::Upsert {
                continue;
            }
            let roles_fine = !roles_checked || row.user.roles().all(|r| exact.contains(r));
            if roles_fine && !others_checked {
                continue;
            }
            let mut rewrite: Option<Vec<String>> = None;
            let roles: Vec<String> = row.user.roles().map(str::to_owned).collect();
            let mut out = Vec::with_capacity(roles.len());
            let mut row_failed = false;
            for role in &roles {
                match index.lookup(RefKind::Role, role) {
                    Lookup::Unchecked => out.push(role.clone()),
                    Lookup::Found(r) => out.push(r.to_owned()),
                    Lookup::Missing => {
                        match &self.profile.unknown_roles {
                            RolePolicy::Reject => {
                                let suggestion = suggest(&mut suggestions, RefKind::Role, role);
                                issues.push(
                                    Issue::error(Code::UnknownRole, "unknown role")
                                        .at(row.line)
                                        .column(roles_col)
                                        .value(role)
                                        .maybe_suggest(suggestion),
                                );
                                row_failed = true;
                            }
                            RolePolicy::Create => {
                                first_spelling(&mut new_roles, &normalize(role), role);
                                out.push(role.clone());
                            }
                            RolePolicy::Fallback(fallback) => {
                                // The fallback must exist itself (in the catalog's spelling).
                                let fallback = match index.lookup(RefKind::Role, fallback) {
                                    Lookup::Found(f) => f.to_owned(),
                                    Lookup::Unchecked => fallback.clone(),
                                    Lookup::Missing => {
                                        issues.push(
                                            Issue::error(
                                                Code::UnknownRole,
                                                format!("unknown role, and the fallback role {fallback:?} does not exist either"),
                                            )
                                            .at(row.line)
                                            .column(roles_col)
                                            .value(role),
                                        );
                                        row_failed = true;
                                        continue;
                                    }
                                };
                                let suggestion = suggest(&mut suggestions, RefKind::Role, role);
                                issues.push(
                                Issue::warning(
                                    Code::UnknownRole,
                                    format!("unknown role; the user gets the role {fallback:?} instead"),
                                )
                                .at(row.line)
                                .column(roles_col)
                                .value(role)
                                .maybe_suggest(suggestion),
                            );
                                out.push(fallback.clone());
                            }
                        }
                    }
                }
            }
            if out != roles {
                rewrite = Some(out);
            }
            // Locations, departments, groups.
            let mut fixed: Vec<(Field, String)> = Vec::new();
            for (f, kind, what) in [
                (Field::Location, RefKind::Location, "unknown location"),
                (
                    Field::DepartmentId,
                    RefKind::Department,
                    "unknown department",
                ),
                (Field::GroupName, RefKind::Group, "unknown permission group"),
            ] {
                let Some(value) = row.user.value(f) else {
                    continue;
                };
                match index.lookup(kind, value) {
                    Lookup::Unchecked => {}
                    Lookup::Found(name) => {
                        if name != value {
                            fixed.push((f, name.to_owned()));
                        }
                    }
                    Lookup::Missing => {
                        let suggestion = suggest(&mut suggestions, kind, value);
                        issues.push(
                            Issue::error(Code::UnknownReference, what)
                                .at(row.line)
                                .column(self.column(f))
                                .value(value)
                                .maybe_suggest(suggestion),
                        );
                        row_failed = true;
                    }
                }
            }
            if rewrite.is_some() || !fixed.is_empty() {
                let mut b = row.user.to_builder();
                if let Some(roles) = rewrite {
                    b.put(Field::Roles, &roles.join("|"));
                }
                for (f, v) in fixed {
                    b.put(f, &v);
                }
                row.user = b.build();
            }
            if row_failed {
                failed.push(i);
            }
        }
        RefsOut {
            new_roles,
            issues,
            failed,
        }
    }
}
