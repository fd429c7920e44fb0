//! The entry point: an [`Importer`] holds a profile and the import's context
//! (tenant, acting user, catalog) and runs the pipeline steps.

use std::io::Read;

use crate::catalog::Catalog;
use crate::error::Error;
use crate::input::read_limited;
use crate::issue::{Code, Issue};
use crate::profile::Profile;
use crate::validate::{self, Validation};

/// Runs imports for one tenant with one [`Profile`].
///
/// ```
/// use user_import::Importer;
/// let importer = Importer::new("acme");
/// let v = importer.validate(b"userId,email\njdoe,jdoe@example.com\n", Some("users.csv"));
/// assert!(!v.has_errors());
/// assert_eq!(v.rows()[0].user.email(), Some("jdoe@example.com"));
/// ```
#[derive(Debug, Clone)]
pub struct Importer {
    pub(crate) profile: Profile,
    pub(crate) tenant: String,
    pub(crate) acting_user: Option<String>,
    pub(crate) catalog: Option<Catalog>,
}

impl Importer {
    /// An importer for `tenant` with the default profile.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("acme").tenant(), "acme");
    /// ```
    pub fn new(tenant: impl Into<String>) -> Importer {
        Importer::with_profile(tenant, Profile::default())
    }

    /// An importer for `tenant` with `profile`.
    ///
    /// ```
    /// let mut p = user_import::Profile::default();
    /// p.mode = user_import::Mode::CreateOnly;
    /// let i = user_import::Importer::with_profile("acme", p);
    /// assert_eq!(i.profile().mode, user_import::Mode::CreateOnly);
    /// ```
    pub fn with_profile(tenant: impl Into<String>, profile: Profile) -> Importer {
        Importer {
            profile,
            tenant: tenant.into(),
            acting_user: None,
            catalog: None,
        }
    }

    /// The profile.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("t").profile().batch_size, 1000);
    /// ```
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The profile, to change.
    ///
    /// ```
    /// let mut i = user_import::Importer::new("t");
    /// i.profile_mut().batch_size = 10;
    /// assert_eq!(i.profile().batch_size, 10);
    /// ```
    pub fn profile_mut(&mut self) -> &mut Profile {
        &mut self.profile
    }

    /// The current tenant.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("t").tenant(), "t");
    /// ```
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Sets the acting administrator (for the self-lockout guard).
    ///
    /// ```
    /// let i = user_import::Importer::new("t").acting_user("admin");
    /// assert_eq!(i.acting(), Some("admin"));
    /// ```
    pub fn acting_user(mut self, user_id: impl Into<String>) -> Importer {
        self.acting_user = Some(user_id.into());
        self
    }

    /// The acting administrator, if set.
    ///
    /// ```
    /// assert_eq!(user_import::Importer::new("t").acting(), None);
    /// ```
    pub fn acting(&self) -> Option<&str> {
        self.acting_user.as_deref()
    }

    /// Gives validation a catalog, so that it reports unknown roles and
    /// references without a store. (Planning always uses the store's catalog.)
    ///
    /// ```
    /// use user_import::{Catalog, Code, Importer};
    /// let i = Importer::new("t").catalog(Catalog::new().roles(["Admin", "Tester"]));
    /// let v = i.validate(b"userId,email,roles\na,a@x.io,Testr\n", None);
    /// let issue = v.issues().next().unwrap();
    /// assert_eq!((issue.code, issue.suggestion.as_deref()), (Code::UnknownRole, Some("Tester")));
    /// ```
    pub fn catalog(mut self, catalog: Catalog) -> Importer {
        self.catalog = Some(catalog);
        self
    }

    /// Reads and validates the bytes of a users file. `name` (the file's name,
    /// if known) helps choose the delimiter (`.txt`/`.tsv` → tab).
    ///
    /// Never fails: every problem is an [`Issue`] in the result.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate(b"", None);
    /// assert_eq!(v.file_issues()[0].to_string(), "file is empty [file_empty]");
    /// ```
    pub fn validate(&self, bytes: &[u8], name: Option<&str>) -> Validation {
        validate::run(
            &self.profile,
            &self.tenant,
            self.catalog.as_ref(),
            bytes,
            name,
        )
    }

    /// Reads a users file from `source` (at most the byte limit, plus one
    /// byte to tell that it is over) and validates it. A source over the limit
    /// gives a `limit_exceeded` issue, not an error.
    ///
    /// # Errors
    ///
    /// [`Error`] when reading from `source` fails.
    ///
    /// ```
    /// let v = user_import::Importer::new("t").validate_reader(&b"userId,email\na,a@x.io\n"[..], None)?;
    /// assert_eq!(v.rows().len(), 1);
    /// # Ok::<(), user_import::Error>(())
    /// ```
    pub fn validate_reader(
        &self,
        source: impl Read,
        name: Option<&str>,
    ) -> Result<Validation, Error> {
        match read_limited(source, self.profile.limits.file_bytes) {
            Ok(bytes) => Ok(self.validate(&bytes, name)),
            Err(e) if e.is_limit() => {
                let mut v = self.validate(b"", name);
                v.file_issues = vec![Issue::error(Code::LimitExceeded, e.to_string())];
                Ok(v)
            }
            Err(e) => Err(e),
        }
    }
}
