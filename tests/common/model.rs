//! A small reference model of planning, in a deliberately different style
//! from the planner (a naive fixpoint instead of a dependency graph), over a
//! small domain: users with an id, an email and a last name. Shared by the
//! property tests and the `ops` fuzz target.
#![allow(dead_code)]

use std::collections::HashMap;

use user_import::memory::InMemoryStore;
use user_import::{Field, Planned, User};

pub const T: &str = "t";

#[derive(Debug, Clone)]
pub struct Row {
    pub id: u8,
    pub email: u8,
    pub bad_email: bool,
    pub last: u8,
    pub delete: bool,
}

#[derive(Debug, Clone)]
pub struct DirUser {
    pub id: u8,
    pub email: u8,
    pub last: u8,
}

pub fn email(e: u8) -> String {
    format!("e{e}@example.com")
}

pub fn to_file(rows: &[Row]) -> String {
    let mut f = String::from("userId,email,lastName,transaction\n");
    for r in rows {
        let email = if r.bad_email {
            format!("e{}-at-example.com", r.email)
        } else {
            email(r.email)
        };
        // Mixed case: matching is case-insensitive.
        let id = if r.id % 2 == 0 {
            format!("U{}", r.id)
        } else {
            format!("u{}", r.id)
        };
        if r.delete {
            f.push_str(&format!("{id},,,DELETE\n"));
        } else {
            f.push_str(&format!("{id},{email},L{},\n", r.last));
        }
    }
    f
}

pub fn store_of(dir: &[DirUser]) -> InMemoryStore {
    let mut s = InMemoryStore::new();
    for u in dir {
        s.insert(
            T,
            User::builder()
                .set(Field::UserId, &format!("u{}", u.id))
                .set(Field::Email, &email(u.email))
                .set(Field::LastName, &format!("L{}", u.last))
                .set(Field::Enabled, "true")
                .set(Field::TaskNotification, "Email")
                .build(),
        );
    }
    s
}

/// The reference model: what each row should plan to, computed directly
/// (and naively: a fixpoint loop rather than the planner's dependency graph).
pub fn model(dir: &[DirUser], rows: &[Row]) -> Vec<Planned> {
    let mut id_count: HashMap<u8, usize> = HashMap::new();
    let mut email_count: HashMap<u8, usize> = HashMap::new();
    for r in rows {
        *id_count.entry(r.id).or_default() += 1;
        if !r.delete && !r.bad_email {
            *email_count.entry(r.email).or_default() += 1;
        }
    }
    let valid = |r: &Row| {
        id_count[&r.id] == 1 && (r.delete || (!r.bad_email && email_count[&r.email] == 1))
    };
    // The row of the file that makes `holder` give up email `e`.
    let releaser = |holder: u8, e: u8| {
        rows.iter()
            .position(|r| r.id == holder && valid(r) && (r.delete || r.email != e))
    };
    let mut dep: Vec<Option<usize>> = vec![None; rows.len()];
    let mut out: Vec<Planned> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if !valid(r) {
                return Planned::Fail; // duplicate_key, invalid_email, duplicate_email
            }
            if r.delete {
                return match dir.iter().any(|u| u.id == r.id) {
                    true => Planned::Delete,
                    false => Planned::Skip,
                };
            }
            let by_id = dir.iter().find(|u| u.id == r.id);
            let holder = dir
                .iter()
                .find(|u| u.email == r.email)
                .filter(|b| by_id.is_none_or(|a| a.id != b.id));
            if let Some(b) = holder {
                match releaser(b.id, r.email) {
                    Some(j) => dep[i] = Some(j),
                    None => return Planned::Fail, // identity_conflict / email_taken
                }
            }
            match by_id {
                None => Planned::Create,
                Some(a) if a.email == r.email && a.last == r.last => Planned::Unchanged,
                Some(_) => Planned::Update,
            }
        })
        .collect();
    // Swaps: a row that (transitively) waits for its own release.
    for i in 0..rows.len() {
        let mut cur = dep[i];
        for _ in 0..rows.len() {
            match cur {
                Some(j) if j == i => out[i] = Planned::Fail,
                Some(j) => cur = dep[j],
                None => break,
            }
        }
    }
    // A handover needs the releasing row to succeed.
    loop {
        let mut changed = false;
        for i in 0..rows.len() {
            if let Some(j) = dep[i]
                && out[i] != Planned::Fail
                && !matches!(out[j], Planned::Update | Planned::Delete)
            {
                out[i] = Planned::Fail;
                changed = true;
            }
        }
        if !changed {
            return out;
        }
    }
}

/// The directory after a run whose rows ended as `outcomes` (planned or
/// applied: `Create`, `Update` and `Delete` change the directory).
pub fn apply_model(dir: &mut Vec<DirUser>, rows: &[Row], outcomes: &[Planned]) {
    for (r, o) in rows.iter().zip(outcomes) {
        match o {
            Planned::Create => dir.push(DirUser {
                id: r.id,
                email: r.email,
                last: r.last,
            }),
            Planned::Update => {
                if let Some(u) = dir.iter_mut().find(|u| u.id == r.id) {
                    u.email = r.email;
                    u.last = r.last;
                }
            }
            Planned::Delete => dir.retain(|u| u.id != r.id),
            _ => {}
        }
    }
    dir.sort_by_key(|u| u.id);
}

/// The store's users of tenant [`T`] in the model's terms, sorted by id.
pub fn observe(store: &InMemoryStore) -> Vec<(u8, u8, u8)> {
    let num = |s: &str, prefix: &[char]| {
        s.trim_start_matches(prefix)
            .split('@')
            .next()
            .and_then(|n| n.parse::<u8>().ok())
    };
    let mut out: Vec<(u8, u8, u8)> = store
        .users(T)
        .filter_map(|u| {
            let id = num(u.user.user_id()?, &['u', 'U'])?;
            let email = num(u.user.email()?, &['e'])?;
            let last = num(u.user.get(Field::LastName)?, &['L'])?;
            Some((id, email, last))
        })
        .collect();
    out.sort();
    out
}
