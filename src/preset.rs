//! Presets: profiles that read other products' user exports and import
//! templates as they are, header decorations, version lines and vendor
//! words included.
//!
//! A preset maps each of the product's columns to a field or to nothing
//! (passwords, phone numbers, addresses and free-text departments are never
//! read), says which lines come before the header, and how the product's
//! status words read. Each is tested with the product's own header line
//! (`tests/data/vendors/`).

use crate::profile::{Profile, ValueMap};
use crate::schema::{Column, ColumnMapping, Field, KeyField};

/// A preset: its name, what it reads, and how to make its profile.
struct Preset {
    name: &'static str,
    reads: &'static str,
    make: fn() -> Profile,
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "okta",
        reads: "Okta's CSV template for importing users",
        make: okta,
    },
    Preset {
        name: "entra",
        reads: "Microsoft Entra ID's bulk create template (version line included)",
        make: entra,
    },
    Preset {
        name: "m365",
        reads: "the Microsoft 365 admin center's CSV for adding multiple users",
        make: m365,
    },
    Preset {
        name: "google",
        reads: "Google Workspace's bulk user upload CSV",
        make: google,
    },
    Preset {
        name: "zendesk",
        reads: "Zendesk's bulk user import CSV",
        make: zendesk,
    },
    Preset {
        name: "atlassian",
        reads: "the user export CSV of Atlassian's admin console",
        make: atlassian,
    },
    Preset {
        name: "canvas",
        reads: "Canvas LMS's SIS import users.csv",
        make: canvas,
    },
    Preset {
        name: "moodle",
        reads: "Moodle's upload users CSV",
        make: moodle,
    },
];

impl Profile {
    /// The profile that reads a product's user export or import template
    /// as it is: `okta`, `entra`, `m365`, `google`, `zendesk`, `atlassian`,
    /// `canvas` or `moodle` (see [`Profile::presets`]). `None` for an
    /// unknown name. The profile is an ordinary one: change what it does
    /// not do as you need (a preset never reads passwords).
    ///
    /// ```
    /// use user_import::{Importer, Profile};
    /// let profile = Profile::preset("okta").unwrap();
    /// let file = "login,firstName,lastName,email,employeeNumber\nann@x.io,Ann,Lee,ann@x.io,0042\n";
    /// let v = Importer::with_profile("t", profile).validate(file.as_bytes(), None);
    /// assert!(!v.has_errors());
    /// assert_eq!(v.rows()[0].user.user_id(), Some("ann@x.io"));
    /// assert_eq!(v.input().preset.as_deref(), Some("okta"));
    /// ```
    pub fn preset(name: &str) -> Option<Profile> {
        let preset = PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))?;
        let mut profile = (preset.make)();
        profile.preset = Some(preset.name.to_owned());
        Some(profile)
    }

    /// The presets: each one's name and what it reads.
    ///
    /// ```
    /// let names: Vec<&str> = user_import::Profile::presets().map(|(n, _)| n).collect();
    /// assert!(names.contains(&"entra"));
    /// ```
    pub fn presets() -> impl Iterator<Item = (&'static str, &'static str)> {
        PRESETS.iter().map(|p| (p.name, p.reads))
    }
}

/// A mapping of `fields` and of `ignored` columns.
fn mapping(fields: &[(&str, Field)], ignored: &[&str]) -> ColumnMapping {
    let mut m = ColumnMapping::new();
    for &(header, field) in fields {
        m.map(header, Column::Field(field));
    }
    for &header in ignored {
        m.map(header, Column::Ignore);
    }
    m
}

fn okta() -> Profile {
    Profile {
        mapping: mapping(
            &[("login", Field::UserId), ("managerId", Field::ReportsTo)],
            &[
                "middleName",
                "honorificPrefix",
                "honorificSuffix",
                "title",
                "nickName",
                "profileUrl",
                "secondEmail",
                "mobilePhone",
                "primaryPhone",
                "streetAddress",
                "city",
                "state",
                "zipCode",
                "countryCode",
                "postalAddress",
                "preferredLanguage",
                "locale",
                "timezone",
                "userType",
                "employeeNumber",
                "costCenter",
                "organization",
                "division",
                "department",
                "manager",
            ],
        ),
        ..Profile::default()
    }
}

fn entra() -> Profile {
    Profile {
        // The template's first line is `version:v1.0`.
        preamble: Some(1),
        // Microsoft's own sample rows stop before the last empty cells.
        short_rows: true,
        // The template has no mail column: the user name is the sign-in.
        required: vec![Field::UserId, Field::DisplayName],
        mapping: mapping(
            &[
                ("User name [userPrincipalName] Required", Field::UserId),
                (
                    "Block sign in (Yes/No) [accountEnabled] Required",
                    Field::Enabled,
                ),
            ],
            &[
                "Initial password [passwordProfile] Required",
                "Job title [jobTitle]",
                "Department [department]",
                "Usage location [usageLocation]",
                "Street address [streetAddress]",
                "State or province [state]",
                "Country or region [country]",
                "Office [physicalDeliveryOfficeName]",
                "City [city]",
                "ZIP or postal code [postalCode]",
                "Office phone [telephoneNumber]",
                "Mobile phone [mobile]",
            ],
        ),
        // `Block sign in`: Yes means the account is not enabled.
        values: vec![ValueMap::new("Block sign in (Yes/No) [accountEnabled] Required").invert()],
        ..Profile::default()
    }
}

fn m365() -> Profile {
    Profile {
        // The user name is the sign-in address; there is no other email.
        required: vec![Field::UserId],
        mapping: mapping(
            &[("User Name", Field::UserId)],
            &[
                "Job Title",
                "Department",
                "Office Number",
                "Office Phone",
                "Mobile Phone",
                "Fax",
                "Alternate email address",
                "Address",
                "City",
                "State or Province",
                "ZIP or Postal Code",
                "Country or Region",
            ],
        ),
        ..Profile::default()
    }
}

fn google() -> Profile {
    Profile {
        // Users are known by their primary email; the employee id is the
        // user id where it is given.
        key: KeyField::Email,
        required: vec![Field::Email],
        mapping: mapping(
            &[
                ("Email Address [Required]", Field::Email),
                ("Employee ID", Field::UserId),
                ("New Status [UPLOAD ONLY]", Field::Enabled),
            ],
            &[
                "Password [Required]",
                "Password Hash Function [UPLOAD ONLY]",
                "Org Unit Path [Required]",
                "New Primary Email [UPLOAD ONLY]",
                "Recovery Email",
                "Home Secondary Email",
                "Work Secondary Email",
                "Recovery Phone [MUST BE IN THE E.164 FORMAT]",
                "Work Phone",
                "Home Phone",
                "Mobile Phone",
                "Work Address",
                "Home Address",
                "Employee Type",
                "Employee Title",
                "Manager Email",
                "Department",
                "Cost Center",
                "Building ID",
                "Floor Name",
                "Floor Section",
                "Change Password at Next Sign-In",
                "New Licenses [UPLOAD ONLY]",
                "Advanced Protection Program enrollment",
                // The "Download users" export's own columns.
                "Status [READ ONLY]",
                "Last Sign In [READ ONLY]",
                "2sv Enrolled [READ ONLY]",
                "2sv Enforced [READ ONLY]",
                "Email Usage [READ ONLY]",
                "Drive Usage [READ ONLY]",
                "Photos Usage [READ ONLY]",
                "Storage limit [READ ONLY]",
                "Storage Used [READ ONLY]",
                "Total Storage [READ ONLY]",
                "Gemini Limit Status [READ ONLY]",
            ],
        ),
        values: vec![
            ValueMap::new("New Status [UPLOAD ONLY]")
                .value("Active", "true")
                .value("Suspended", "false"),
        ],
        ..Profile::default()
    }
}

fn zendesk() -> Profile {
    Profile {
        key: KeyField::Email,
        required: vec![Field::Email],
        mapping: mapping(
            &[
                ("name", Field::DisplayName),
                ("external_id", Field::UserId),
                ("role", Field::Roles),
            ],
            &[
                "details",
                "notes",
                "phone",
                "shared_phone_number",
                "restriction",
                "organization",
                "tags",
                "brand",
            ],
        ),
        ..Profile::default()
    }
}

fn atlassian() -> Profile {
    Profile {
        mapping: mapping(
            &[
                ("User id", Field::UserId),
                // The export's "User name" is the person's name, not a login.
                ("User name", Field::DisplayName),
                ("User status", Field::Enabled),
            ],
            &["Added to org", "Org role"],
        ),
        values: vec![
            ValueMap::new("User status")
                .value("Active", "true")
                .value("Suspended", "false")
                .value("Deactivated", "false"),
        ],
        ..Profile::default()
    }
}

fn canvas() -> Profile {
    Profile {
        // The SIS id is the key; many schools have no email for every user.
        required: vec![Field::UserId],
        mapping: mapping(
            &[
                ("user_id", Field::UserId),
                ("full_name", Field::DisplayName),
                ("status", Field::Enabled),
            ],
            &[
                "integration_id",
                "login_id",
                "password",
                "ssha_password",
                "authentication_provider_id",
                "sortable_name",
                "short_name",
                "pronouns",
                "declared_user_type",
                "canvas_password_notification",
                "home_account",
            ],
        ),
        // `active` users may sign in; `suspended` and `deleted` ones may
        // not. A `deleted` user is disabled, never deleted: a delete is
        // asked for with a `transaction` column of `DELETE`.
        values: vec![
            ValueMap::new("status")
                .value("active", "true")
                .value("suspended", "false")
                .value("deleted", "false"),
        ],
        ..Profile::default()
    }
}

fn moodle() -> Profile {
    Profile {
        mapping: mapping(
            &[
                ("username", Field::UserId),
                ("suspended", Field::Enabled),
                ("deleted", Field::Transaction),
            ],
            &[
                "password",
                "auth",
                "idnumber",
                "institution",
                "department",
                "city",
                "country",
                "lang",
                "timezone",
                "phone1",
                "phone2",
                "address",
                "description",
            ],
        ),
        values: vec![
            // `suspended=1` is a user who may not sign in.
            ValueMap::new("suspended").invert(),
            ValueMap::new("deleted").value("1", "DELETE").value("0", ""),
        ],
        ..Profile::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_makes_a_usable_profile_that_names_itself() {
        for (name, _) in Profile::presets() {
            let p = Profile::preset(name).unwrap();
            assert_eq!(p.problems(), Vec::<String>::new(), "{name}");
            assert_eq!(p.preset.as_deref(), Some(name));
            let json = p.to_json();
            assert_eq!(Profile::from_json(&json).unwrap(), p, "{name}");
        }
        assert_eq!(Profile::preset("nope"), None);
        assert_eq!(
            Profile::preset("OKTA").unwrap().preset.as_deref(),
            Some("okta")
        );
    }
}
