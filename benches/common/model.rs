//! The reference the benches check results against: a plain `HashMap`
//! model of the planner over a generated file, and the comparisons.

use std::collections::{HashMap, HashSet};

use user_import::Code;

use super::ROLES;
use super::generator::{
    C_EMAIL, C_ENABLED, C_FIRST, C_ID, C_LAST, C_REPORTS, C_ROLES, C_TASK, Dataset, Expect,
};

/// Panics with the sizes and first items of both sides unless `got` is `want`.
pub fn check_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    if got != want {
        let show = |v: &[T]| format!("{} items, first {:?}", v.len(), &v[..v.len().min(8)]);
        panic!(
            "MISMATCH {what}: got {}; expected {}",
            show(got),
            show(want)
        );
    }
}

/// Row indices of the issues with `code`, sorted and de-duplicated.
pub fn rows_with(
    issues: &[(u64, Code)],
    code: Code,
    row_of_line: &HashMap<u64, usize>,
) -> Vec<usize> {
    let mut v: Vec<usize> = issues
        .iter()
        .filter(|(_, c)| *c == code)
        .map(|(l, _)| *row_of_line.get(l).expect("an issue on a data row"))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn canon_bool(v: &str) -> Option<&'static str> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "on" => Some("true"),
        "false" | "no" | "n" | "0" | "off" => Some("false"),
        _ => None,
    }
}

fn canon_roles(v: &str, catalog: &HashMap<String, &'static str>) -> String {
    let mut r: Vec<String> = v
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            catalog
                .get(&s.to_lowercase())
                .map_or_else(|| s.to_owned(), |c| (*c).to_owned())
        })
        .collect();
    r.sort();
    r.dedup();
    r.join("|")
}

/// A plain `HashMap` model of the planner (upsert mode, blank keeps, lists
/// replace, unknown roles rejected): what each row should become.
pub fn reference_plan(d: &Dataset) -> Vec<Expect> {
    struct Dir {
        email: String,
        first: String,
        last: String,
        enabled: &'static str,
        manager: String,
        roles: String,
        task: &'static str,
    }
    let catalog: HashMap<String, &'static str> =
        ROLES.iter().map(|r| (r.to_lowercase(), *r)).collect();
    let mut by_id: HashMap<String, Dir> = HashMap::new();
    let mut by_email: HashMap<String, String> = HashMap::new();
    for &i in &d.stored {
        let p = &d.persons[i];
        by_id.insert(
            p.id.to_lowercase(),
            Dir {
                email: p.email.clone(),
                first: p.first.clone(),
                last: p.last.clone(),
                enabled: p.enabled_text(),
                manager: p.manager.map_or(String::new(), |m| d.persons[m].id.clone()),
                roles: p.roles.join("|"),
                task: p.task_text(),
            },
        );
        by_email.insert(p.email.to_lowercase(), p.id.to_lowercase());
    }
    let file_ids: HashSet<String> = d
        .rows
        .iter()
        .filter(|r| !r.is_delete())
        .map(|r| r.cells[C_ID].trim().to_lowercase())
        .collect();
    d.rows
        .iter()
        .map(|r| {
            let c = &r.cells;
            if r.bad() {
                return Expect::Fail;
            }
            let id = c[C_ID].trim().to_lowercase();
            if r.is_delete() {
                return if by_id.contains_key(&id) {
                    Expect::Delete
                } else {
                    Expect::Skip
                };
            }
            let email = c[C_EMAIL].trim();
            let owner = by_email.get(&email.to_lowercase());
            let target = by_id.get(&id);
            match (target.is_some(), owner) {
                (true, Some(o)) if *o != id => return Expect::Fail, // identity_conflict
                (false, Some(_)) => return Expect::Fail,            // email_taken
                _ => {}
            }
            let m = c[C_REPORTS].trim().to_lowercase();
            if !m.is_empty() && !by_id.contains_key(&m) && !file_ids.contains(&m) {
                return Expect::Fail; // unknown manager
            }
            let Some(t) = target else {
                return Expect::Create;
            };
            // Blank keeps; anything else must equal the canonical current value.
            let differs = |file: &str, current: &str| {
                let f = file.trim();
                !f.is_empty() && f != current
            };
            let changed = differs(c[C_FIRST].as_str(), &t.first)
                || differs(&c[C_LAST], &t.last)
                || differs(email, &t.email)
                || differs(canon_bool(&c[C_ENABLED]).unwrap_or(""), t.enabled)
                || differs(&c[C_REPORTS], &t.manager)
                || differs(&canon_roles(&c[C_ROLES], &catalog), &t.roles)
                || differs(
                    match c[C_TASK].trim().to_ascii_lowercase().as_str() {
                        "off" => "OFF",
                        "email" => "Email",
                        _ => "",
                    },
                    t.task,
                );
            if changed {
                Expect::Update
            } else {
                Expect::Unchanged
            }
        })
        .collect()
}

/// How many of each outcome, in [`Expect::ALL`]'s order.
pub fn count(v: impl Iterator<Item = Expect>) -> [usize; 6] {
    let mut out = [0usize; 6];
    for e in v {
        out[Expect::ALL.iter().position(|x| *x == e).unwrap_or(5)] += 1;
    }
    out
}

/// `create=… update=… …`.
pub fn fmt_counts(c: &[usize; 6]) -> String {
    Expect::ALL
        .iter()
        .zip(c)
        .map(|(e, n)| format!("{}={n}", e.name()))
        .collect::<Vec<_>>()
        .join(" ")
}
