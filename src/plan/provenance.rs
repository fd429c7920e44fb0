//! Where a plan and its report come from: the input's hash and size, how it
//! was read, the profile, who imported it for which tenant, the library's
//! version and the times. Carried by every plan and report, for an audit.

use serde::{Deserialize, Serialize};

use crate::input::{Delimiter, Encoding, Format, InputInfo};
use crate::profile::{
    BlankPolicy, ErrorPolicy, ListPolicy, MirrorAction, Mode, Profile, RolePolicy,
};

/// Where a plan or a report comes from. In the JSON of a plan or a report
/// it is the object `provenance`.
///
/// ```
/// use user_import::Importer;
/// use user_import::memory::InMemoryStore;
/// let importer = Importer::new("acme").acting_user("admin");
/// let report = importer.run(b"userId,email\na,a@x.io\n", Some("users.csv"), &mut InMemoryStore::new())?;
/// let p = &report.provenance;
/// assert_eq!(p.input_bytes, 22);
/// assert_eq!(p.input_sha256.len(), 64);
/// assert_eq!(p.input_name.as_deref(), Some("users.csv"));
/// assert_eq!(p.tenant, "acme");
/// assert_eq!(p.acting_user.as_deref(), Some("admin"));
/// assert_eq!(p.library_version, env!("CARGO_PKG_VERSION"));
/// assert!(p.started_at <= p.finished_at, "RFC 3339 times in UTC sort as text");
/// # Ok::<(), user_import::Error>(())
/// ```
///
/// Two provenances are equal when they name the same input, settings,
/// tenant, acting user and library version: the times are not compared, so
/// a plan made again from the same file against the same directory equals
/// the first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Provenance {
    /// The SHA-256 of the input's bytes, exactly as given, in lower-case hex.
    pub input_sha256: String,
    /// The input's size in bytes.
    pub input_bytes: u64,
    /// The name the input was given with, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_name: Option<String>,
    /// The input's format.
    pub format: Format,
    /// The input's character encoding.
    pub encoding: Encoding,
    /// The delimiter read.
    pub delimiter: Delimiter,
    /// The zip member or workbook sheet read, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    /// The tenant imported into.
    pub tenant: String,
    /// The administrator who ran the import, as given, if known.
    pub acting_user: Option<String>,
    /// The version of this library that made the plan.
    pub library_version: String,
    /// When reading the input began (UTC, RFC 3339).
    pub started_at: String,
    /// When the plan was made (UTC, RFC 3339).
    pub planned_at: String,
    /// When the import ended (UTC, RFC 3339): for a plan, when it was
    /// made; for a report, when applying it (or its dry run) ended.
    pub finished_at: String,
    /// The policy decisions that shaped the plan, in words.
    pub decisions: Vec<String>,
    /// The profile as applied.
    pub profile: Profile,
}

impl PartialEq for Provenance {
    fn eq(&self, other: &Provenance) -> bool {
        // Every field but the times.
        let Provenance {
            input_sha256,
            input_bytes,
            input_name,
            format,
            encoding,
            delimiter,
            part,
            tenant,
            acting_user,
            library_version,
            started_at: _,
            planned_at: _,
            finished_at: _,
            decisions,
            profile,
        } = self;
        *input_sha256 == other.input_sha256
            && *input_bytes == other.input_bytes
            && *input_name == other.input_name
            && *format == other.format
            && *encoding == other.encoding
            && *delimiter == other.delimiter
            && *part == other.part
            && *tenant == other.tenant
            && *acting_user == other.acting_user
            && *library_version == other.library_version
            && *decisions == other.decisions
            && *profile == other.profile
    }
}

/// A time as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Now, as RFC 3339 in UTC, to the second.
pub(crate) fn now() -> String {
    rfc3339(std::time::SystemTime::now())
}

impl Provenance {
    /// The provenance of a plan of `input`, read from `started`, made now.
    pub(crate) fn new(
        input: &InputInfo,
        profile: &Profile,
        tenant: &str,
        acting_user: Option<&str>,
        started: Option<std::time::SystemTime>,
    ) -> Provenance {
        let planned_at = now();
        Provenance {
            input_sha256: input.sha256.clone(),
            input_bytes: input.bytes,
            input_name: input.name.clone(),
            format: input.format,
            encoding: input.encoding,
            delimiter: input.delimiter,
            part: input.part.clone(),
            tenant: tenant.to_owned(),
            acting_user: acting_user.map(str::to_owned),
            library_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: started.map_or_else(|| planned_at.clone(), rfc3339),
            finished_at: planned_at.clone(),
            planned_at,
            decisions: decisions(profile),
            profile: profile.clone(),
        }
    }

    /// The text report's lines for it.
    pub(crate) fn render_text(&self, out: &mut String) {
        let name = self
            .input_name
            .as_deref()
            .map(|n| format!("{} ", crate::issue::printable(n)))
            .unwrap_or_default();
        let part = self
            .part
            .as_deref()
            .map(|p| format!(", read from {}", crate::issue::printable(p)))
            .unwrap_or_default();
        out.push_str(&format!(
            "input: {name}{} bytes, sha256 {}{part}\n",
            self.input_bytes, self.input_sha256
        ));
        let by = self
            .acting_user
            .as_deref()
            .map(|a| format!(" by {}", crate::issue::printable(a)))
            .unwrap_or_default();
        out.push_str(&format!(
            "import: tenant {}{by}, user-import {}, from {} to {}\n",
            crate::issue::printable(&self.tenant),
            self.library_version,
            self.started_at,
            self.finished_at
        ));
        if !self.decisions.is_empty() {
            out.push_str(&format!("settings: {}\n", self.decisions.join("; ")));
        }
    }
}

/// The profile's policy decisions, in words.
pub(crate) fn decisions(p: &Profile) -> Vec<String> {
    let mut d = vec![format!("users are matched by {}", p.key.field())];
    d.push(
        match p.mode {
            Mode::Upsert => "rows create and update users",
            Mode::CreateOnly => "rows only create users",
            Mode::UpdateOnly => "rows only update users",
            Mode::Mirror => match p.mirror {
                MirrorAction::Disable => "mirror: users the file does not name are disabled",
                MirrorAction::Delete => "mirror: users the file does not name are deleted",
            },
        }
        .to_owned(),
    );
    d.push(match p.on_error {
        ErrorPolicy::RejectFile => "all or nothing: a row with errors rejects the file".to_owned(),
        ErrorPolicy::SkipInvalid => "rows with errors are skipped".to_owned(),
        ErrorPolicy::StopAfter(n) => format!("the import stops after {n} rows with errors"),
    });
    d.push(match &p.unknown_roles {
        RolePolicy::Reject => "unknown roles are errors".to_owned(),
        RolePolicy::Create => "unknown roles are created".to_owned(),
        RolePolicy::Fallback(r) => format!("unknown roles become {}", crate::issue::printable(r)),
    });
    d.push(
        match p.blank {
            BlankPolicy::Keep => "blank cells keep the current value",
            BlankPolicy::Clear => "blank cells clear the value",
        }
        .to_owned(),
    );
    d.push(
        match p.lists {
            ListPolicy::Replace => "a list replaces the user's list",
            ListPolicy::AddOnly => "lists only add items",
            ListPolicy::Tokens => {
                "list items written +X and -X add and remove items, and a plain list replaces the user's list"
            }
        }
        .to_owned(),
    );
    if let Some(source) = &p.source {
        d.push(format!(
            "the users it creates are tagged as from {}{}",
            crate::issue::printable(source),
            if p.mode == Mode::Mirror {
                ", and mirror mode removes only users so tagged"
            } else {
                ""
            }
        ));
    }
    if let Some(n) = p.guards.max_deletes {
        d.push(format!("at most {n} users deleted or disabled"));
    }
    if let Some(share) = p.guards.max_delete_share {
        d.push(format!(
            "at most {}% of the directory deleted or disabled, once an import removes {} or more users",
            share * 100.0,
            p.guards.min_removals_for_share
        ));
    }
    d
}
