//! # user-import
//!
//! Correct, fast, safe bulk user import for any Rust service: an
//! administrator's CSV of users is read, validated, planned as create /
//! update / delete operations against the service's own user directory,
//! applied through a `UserStore` the service implements, and answered with a
//! report that accounts for every row.
//!
//! The pipeline, each step usable on its own:
//!
//! ```text
//! bytes --read--> rows --validate--> records + issues --plan(store state)--> Plan --apply(store)--> Report
//! ```
//!
//! ## Validating a file
//!
//! ```
//! use user_import::{Code, Importer};
//!
//! let file = b"userId,firstName,lastName,email,roles\n\
//!              jdoe,John,Doe,john.doe@example.com,Admin|Tester\n\
//!              ann,Ann,Lee,,Tester\n";
//! let validation = Importer::new("acme").validate(file, Some("users.csv"));
//!
//! assert_eq!(validation.rows().len(), 2);
//! let issue = validation.issues().next().unwrap();
//! assert_eq!(issue.code, Code::MissingValue);
//! assert_eq!(issue.to_string(), "line 3, email: missing required value [missing_value]");
//! ```
//!
//! ## Large files
//!
//! [`Importer::run`] holds the file's rows and its whole plan, which is
//! what a plan to review needs. [`Importer::run_streaming`] (and
//! [`Importer::dry_run_streaming`]) read a file from a source that can be
//! opened again and import it a segment at a time inside one transaction,
//! to the same report and the same directory, holding a few segments and
//! a few dozen bytes a row instead of the rows; a file a segment cannot
//! decide as the whole file would is rolled back and imported whole.
//!
//! ## Issue codes
//!
//! Every finding is an [`Issue`] with a stable [`Code`]; the list, with what
//! each code means, is the documentation of [`Code`].
//!
//! ## Fuzzing and property tests of your own
//!
//! With the `arbitrary` feature, a service's fuzz target drives the whole
//! pipeline against an arbitrary directory and profile in three lines:
//!
//! ```
//! # #[cfg(feature = "arbitrary")] {
//! # use arbitrary::{Arbitrary, Unstructured};
//! # let data = [7u8; 64];
//! # let input = <(Vec<u8>, user_import::memory::State, user_import::Profile)>::arbitrary(&mut Unstructured::new(&data)).unwrap();
//! // fuzz_target!(|input: (Vec<u8>, user_import::memory::State, user_import::Profile)| {
//!     let (file, directory, profile) = input;
//!     let mut store = user_import::memory::InMemoryStore::from_directory("acme", &directory);
//!     let _ = user_import::Importer::with_profile("acme", profile).run(&file, None, &mut store);
//! // });
//! # }
//! ```
//!
//! With the `testkit` feature, `testkit::strategies` gives proptest
//! strategies for valid files, files with a chosen defect (and the issues it
//! must produce) and directory states, and `testkit::conformance` checks a
//! `UserStore` implementation against the trait's contract.
//!
//! ## Matching policy
//!
//! Keys, emails, roles and references are matched after [`normalize`]:
//! trimmed (a non-breaking space too), composed to Unicode NFC and
//! lower-cased, the same way for the file and the directory. An identity
//! value that holds a character nobody can see (a zero-width space or
//! joiner, a bidirectional control) is refused with `invalid_value` naming
//! the code point, so `admin` and `admin` followed by U+200B are never two
//! users.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod apply;
mod catalog;
pub mod cell;
mod email;
mod error;
mod import;
mod index;
mod input;
mod issue;
mod matching;
pub mod memory;
mod par;
mod plan;
mod preset;
mod profile;
mod record;
mod report;
mod schema;
mod segments;
mod store;
mod text;
mod undo;
mod validate;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use apply::{OnProgress, Phase, Progress, RunOptions};
pub use catalog::{Catalog, Location};
pub use email::EmailPolicy;
pub use error::{Error, ErrorKind};
pub use import::Importer;
pub use input::{ColumnRead, Delimiter, Encoding, Format, InputInfo, Limits};
pub use issue::{Code, Issue, Severity, UnknownCode};
pub use matching::normalize;
pub use plan::{Notice, Plan, Planned, PlannedRow, Planner, Provenance, Request, Response};
pub use profile::{
    BlankPolicy, ErrorPolicy, Guards, ListPolicy, MirrorAction, Mode, PROFILE_VERSION, Profile,
    RolePolicy, SOURCE_ATTRIBUTE, ValueMap,
};
pub use record::{Action, User, UserBuilder};
pub use report::{DirectoryChange, OnRow, Outcome, Report, RowReport, Summary};
pub use schema::{AttributeKind, Column, ColumnMapping, CustomAttribute, Field, KeyField};
pub use store::{
    AsyncUserStore, Attribute, Change, ExistingUser, Fetch, Op, OpOutcome, UserStore, apply_changes,
};
pub use text::Text;
pub use validate::{ListEdit, Row, Validation, ValidationCounts};

/// Helpers for the edges of an import: header folding, boolean parsing,
/// printable values, and reading a source within a limit.
pub mod helpers {
    pub use crate::input::read_limited;
    pub use crate::issue::printable;
    pub use crate::record::parse_bool;
    pub use crate::schema::fold_header;
}

/// The README's examples, compiled and run as doc tests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
