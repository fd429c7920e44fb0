//! What the directory knows besides users: roles, locations, departments and
//! permission groups, for the reference checks.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::matching::normalize;
use crate::schema::closest;

/// A location with its aliases: a row may name the location by either.
///
/// ```
/// let l = user_import::Location::new("Berlin HQ").alias("BER");
/// assert_eq!(l.aliases, ["BER"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct Location {
    /// The location's name, as stored on users.
    pub name: String,
    /// Other names or codes that mean this location.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

impl Location {
    /// A location without aliases.
    ///
    /// ```
    /// assert_eq!(user_import::Location::new("Paris").name, "Paris");
    /// ```
    pub fn new(name: impl Into<String>) -> Location {
        Location {
            name: name.into(),
            aliases: Vec::new(),
        }
    }

    /// Adds an alias.
    ///
    /// ```
    /// assert_eq!(user_import::Location::new("Paris").alias("PAR").aliases.len(), 1);
    /// ```
    pub fn alias(mut self, alias: impl Into<String>) -> Location {
        self.aliases.push(alias.into());
        self
    }
}

/// The names the directory knows. Each list is optional: `None` means "not
/// checked" (any value is accepted), `Some(list)` means values must match an
/// entry (case-insensitively; the entry's spelling is stored).
///
/// ```
/// use user_import::Catalog;
/// let c = Catalog::new().roles(["Admin", "Tester"]).departments(["R&D"]);
/// assert_eq!(c.find_role("admin"), Some("Admin"));
/// assert_eq!(c.find_role("Guest"), None);
/// assert_eq!(c.suggest_role("Testr").as_deref(), Some("Tester"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct Catalog {
    /// Known roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Known locations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<Location>>,
    /// Known departments (`departmentId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departments: Option<Vec<String>>,
    /// Known permission groups (`groupName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

impl Catalog {
    /// A catalog that checks nothing.
    ///
    /// ```
    /// assert_eq!(user_import::Catalog::new().roles, None);
    /// ```
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Sets the known roles.
    ///
    /// ```
    /// let c = user_import::Catalog::new().roles(["Admin"]);
    /// assert_eq!(c.roles.unwrap(), ["Admin"]);
    /// ```
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Catalog {
        self.roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the known locations.
    ///
    /// ```
    /// use user_import::{Catalog, Location};
    /// let c = Catalog::new().locations([Location::new("Paris").alias("PAR")]);
    /// assert_eq!(c.find_location("par"), Some("Paris"));
    /// ```
    pub fn locations(mut self, locations: impl IntoIterator<Item = Location>) -> Catalog {
        self.locations = Some(locations.into_iter().collect());
        self
    }

    /// Sets the known departments.
    ///
    /// ```
    /// let c = user_import::Catalog::new().departments(["Sales"]);
    /// assert_eq!(c.find_department("sales"), Some("Sales"));
    /// ```
    pub fn departments<I: IntoIterator<Item = S>, S: Into<String>>(mut self, d: I) -> Catalog {
        self.departments = Some(d.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the known permission groups.
    ///
    /// ```
    /// let c = user_import::Catalog::new().groups(["Readers"]);
    /// assert_eq!(c.find_group("READERS"), Some("Readers"));
    /// ```
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(mut self, g: I) -> Catalog {
        self.groups = Some(g.into_iter().map(Into::into).collect());
        self
    }

    /// The known role matching `name` case-insensitively.
    ///
    /// ```
    /// assert_eq!(user_import::Catalog::new().roles(["A"]).find_role("a"), Some("A"));
    /// ```
    pub fn find_role(&self, name: &str) -> Option<&str> {
        find(self.roles.as_deref()?, name)
    }

    /// The closest known role, for a "did you mean".
    ///
    /// ```
    /// assert_eq!(user_import::Catalog::new().roles(["Admin"]).suggest_role("Admn").as_deref(), Some("Admin"));
    /// ```
    pub fn suggest_role(&self, name: &str) -> Option<String> {
        closest(name, self.roles.iter().flatten().map(String::as_str))
    }

    /// The known location whose name or alias matches `name`.
    ///
    /// ```
    /// use user_import::{Catalog, Location};
    /// assert_eq!(Catalog::new().locations([Location::new("Oslo")]).find_location("OSLO"), Some("Oslo"));
    /// ```
    pub fn find_location(&self, name: &str) -> Option<&str> {
        let n = normalize(name);
        self.locations
            .as_ref()?
            .iter()
            .find(|l| normalize(&l.name) == n || l.aliases.iter().any(|a| normalize(a) == n))
            .map(|l| l.name.as_str())
    }

    /// The known department matching `name`.
    ///
    /// ```
    /// assert_eq!(user_import::Catalog::new().departments(["D1"]).find_department("d1"), Some("D1"));
    /// ```
    pub fn find_department(&self, name: &str) -> Option<&str> {
        find(self.departments.as_deref()?, name)
    }

    /// The known permission group matching `name`.
    ///
    /// ```
    /// assert_eq!(user_import::Catalog::new().groups(["G"]).find_group("g"), Some("G"));
    /// ```
    pub fn find_group(&self, name: &str) -> Option<&str> {
        find(self.groups.as_deref()?, name)
    }

    /// An index for fast lookups of many values.
    pub(crate) fn index(&self) -> CatalogIndex<'_> {
        fn names(list: Option<&[String]>) -> Option<HashMap<String, &str>> {
            list.map(|l| l.iter().map(|n| (normalize(n), n.as_str())).collect())
        }
        CatalogIndex {
            catalog: self,
            roles: names(self.roles.as_deref()),
            locations: self.locations.as_ref().map(|ls| {
                let mut m = HashMap::new();
                for l in ls {
                    for a in &l.aliases {
                        m.insert(normalize(a), l.name.as_str());
                    }
                }
                // Names win over aliases.
                for l in ls {
                    m.insert(normalize(&l.name), l.name.as_str());
                }
                m
            }),
            departments: names(self.departments.as_deref()),
            groups: names(self.groups.as_deref()),
        }
    }
}

fn find<'a>(list: &'a [String], name: &str) -> Option<&'a str> {
    let n = normalize(name);
    list.iter().find(|r| normalize(r) == n).map(String::as_str)
}

/// Which kind of reference a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    Role,
    Location,
    Department,
    Group,
}

/// Hash-indexed view of a [`Catalog`].
pub(crate) struct CatalogIndex<'a> {
    catalog: &'a Catalog,
    roles: Option<HashMap<String, &'a str>>,
    locations: Option<HashMap<String, &'a str>>,
    departments: Option<HashMap<String, &'a str>>,
    groups: Option<HashMap<String, &'a str>>,
}

/// The result of looking a name up.
pub(crate) enum Lookup<'a> {
    /// This kind is not checked.
    Unchecked,
    /// Found, in the catalog's spelling.
    Found(&'a str),
    /// Not found (see [`CatalogIndex::suggest`] for the closest name).
    Missing,
}

impl<'a> CatalogIndex<'a> {
    fn map(&self, kind: RefKind) -> Option<&HashMap<String, &'a str>> {
        match kind {
            RefKind::Role => self.roles.as_ref(),
            RefKind::Location => self.locations.as_ref(),
            RefKind::Department => self.departments.as_ref(),
            RefKind::Group => self.groups.as_ref(),
        }
    }

    pub fn lookup(&self, kind: RefKind, name: &str) -> Lookup<'a> {
        let Some(map) = self.map(kind) else {
            return Lookup::Unchecked;
        };
        match map.get(&normalize(name)) {
            Some(found) => Lookup::Found(found),
            None => Lookup::Missing,
        }
    }

    /// The known name closest to `name`, for a "did you mean" (costly with a
    /// large catalog: ask only when an issue is reported).
    pub fn suggest(&self, kind: RefKind, name: &str) -> Option<String> {
        let c = self.catalog;
        match kind {
            RefKind::Role => c.suggest_role(name),
            RefKind::Location => closest(
                name,
                c.locations
                    .iter()
                    .flatten()
                    .flat_map(|l| std::iter::once(&l.name).chain(&l.aliases))
                    .map(String::as_str),
            ),
            RefKind::Department => {
                closest(name, c.departments.iter().flatten().map(String::as_str))
            }
            RefKind::Group => closest(name, c.groups.iter().flatten().map(String::as_str)),
        }
    }
}
