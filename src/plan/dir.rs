//! One chunk's directory users, indexed by their normalized user id, email
//! and manager.

use crate::index::HashIndex;
use crate::matching::{normalize, same};
use crate::record::User;
use crate::schema::Field;
use crate::store::ExistingUser;

/// The users fetched for one chunk, indexed by their normalized user id,
/// email and manager (no string is allocated to look one up).
pub(super) struct Dir<'a> {
    pub(super) users: &'a [ExistingUser],
    pub(super) ids: HashIndex,
    pub(super) emails: HashIndex,
    pub(super) managers: HashIndex,
}

impl<'a> Dir<'a> {
    /// Indexes `users` by id and email, and by manager when `managers`.
    pub(super) fn new(users: &'a [ExistingUser], managers: bool) -> Dir<'a> {
        let by = |get: fn(&User) -> Option<&str>| {
            HashIndex::new(
                users
                    .iter()
                    .enumerate()
                    .filter_map(move |(i, u)| Some((i, get(&u.user)?))),
            )
        };
        Dir {
            users,
            ids: by(User::user_id),
            emails: by(User::email),
            managers: if managers {
                by(|u| u.value(Field::ReportsTo))
            } else {
                HashIndex::default()
            },
        }
    }

    /// The value of a user's field (`get`), as an index looks it up.
    fn value_of(&self, get: fn(&User) -> Option<&str>) -> impl Fn(usize) -> Option<&'a str> + 'a {
        let users = self.users;
        move |i| get(&users.get(i)?.user)
    }

    pub(super) fn by_id(&self, id: &str) -> Option<&'a ExistingUser> {
        let i = self.ids.find(id, self.value_of(User::user_id)).next()?;
        self.users.get(i)
    }

    pub(super) fn by_email(&self, email: &str) -> Option<&'a ExistingUser> {
        let i = self.emails.find(email, self.value_of(User::email)).next()?;
        self.users.get(i)
    }

    /// The normalized ids of the users who report to `id` (not `id` itself).
    pub(super) fn reports_of(&self, id: &str) -> Vec<String> {
        let users = self.users;
        self.managers
            .find(id, self.value_of(|u| u.value(Field::ReportsTo)))
            .filter_map(|i| users[i].user.user_id())
            .filter(|r| !same(r, id))
            .map(normalize)
            .collect()
    }
}
