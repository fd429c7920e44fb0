//! One chunk's directory users, indexed by the hash of their normalized
//! user id, email and manager.

use crate::matching::key_hash;
use crate::matching::{normalize, same};
use crate::record::User;
use crate::schema::Field;
use crate::store::ExistingUser;

pub(crate) const TARGET_SEED: u64 = 0x7a29_e7f1;

/// The users fetched for one chunk, indexed by the hash of their normalized
/// user id, email and manager (no string is allocated to look one up).
pub(super) struct Dir<'a> {
    pub(super) users: &'a [ExistingUser],
    pub(super) seed: u64,
    pub(super) ids: Probe,
    pub(super) emails: Probe,
    pub(super) managers: Probe,
}

/// An open-addressing table of (hash, user) for one chunk's users: built in
/// one pass (no sort), looked up in a probe or two. Users with equal hashes
/// sit along the probe sequence in the order they were added, so the first
/// match is the first such user, and all matches come in the users' order.
pub(super) struct Probe {
    pub(super) slots: Vec<(u64, u32)>,
    pub(super) mask: usize,
}

impl Probe {
    pub(super) const EMPTY: u32 = u32::MAX;

    pub(super) fn new(entries: impl Iterator<Item = (u64, u32)>, count: usize) -> Probe {
        let size = (count * 2).next_power_of_two().max(8);
        let mut slots = vec![(0, Probe::EMPTY); size];
        let mask = size - 1;
        for (h, i) in entries {
            let mut at = h as usize & mask;
            while slots[at].1 != Probe::EMPTY {
                at = (at + 1) & mask;
            }
            slots[at] = (h, i);
        }
        Probe { slots, mask }
    }

    /// The users whose hash is `h`, in the order they were added.
    pub(super) fn with_hash(&self, h: u64) -> impl Iterator<Item = u32> + '_ {
        let start = h as usize & self.mask;
        (0..self.slots.len())
            .map(move |k| self.slots[(start + k) & self.mask])
            .take_while(|e| e.1 != Probe::EMPTY)
            .filter(move |e| e.0 == h)
            .map(|e| e.1)
    }
}

impl<'a> Dir<'a> {
    /// Indexes `users` by id and email, and by manager when `managers`.
    pub(super) fn new(users: &'a [ExistingUser], managers: bool) -> Dir<'a> {
        let seed = 0x0d1c_7a11;
        let hashed = move |get: fn(&User) -> Option<&str>| {
            users
                .iter()
                .enumerate()
                .filter_map(move |(i, u)| Some((key_hash(seed, get(&u.user)?), i as u32)))
        };
        let managers = if managers {
            Probe::new(hashed(|u| u.value(Field::ReportsTo)), users.len())
        } else {
            Probe::new(std::iter::empty(), 0)
        };
        Dir {
            users,
            ids: Probe::new(hashed(User::user_id), users.len()),
            emails: Probe::new(hashed(User::email), users.len()),
            managers,
            seed,
        }
    }

    /// The first user whose value (`get`) equals `value`, in `probe`.
    pub(super) fn first(
        &self,
        probe: &Probe,
        value: &str,
        get: fn(&User) -> Option<&str>,
    ) -> Option<&'a ExistingUser> {
        let users = self.users;
        probe
            .with_hash(key_hash(self.seed, value))
            .map(|i| &users[i as usize])
            .find(|u| get(&u.user).is_some_and(|v| same(v, value)))
    }

    pub(super) fn by_id(&self, id: &str) -> Option<&'a ExistingUser> {
        self.first(&self.ids, id, User::user_id)
    }

    pub(super) fn by_email(&self, email: &str) -> Option<&'a ExistingUser> {
        self.first(&self.emails, email, User::email)
    }

    /// The normalized ids of the users who report to `id` (not `id` itself).
    pub(super) fn reports_of(&self, id: &str) -> Vec<String> {
        let users = self.users;
        self.managers
            .with_hash(key_hash(self.seed, id))
            .map(|i| &users[i as usize])
            .filter(|u| u.user.value(Field::ReportsTo).is_some_and(|m| same(m, id)))
            .filter_map(|u| u.user.user_id())
            .filter(|r| !same(r, id))
            .map(normalize)
            .collect()
    }
}
