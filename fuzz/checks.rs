#![allow(dead_code)]
//! The checks the fuzz targets run, shared with `tests/fuzz_corpus.rs`,
//! which replays the corpus through them on stable Rust.
//!
//! Every check panics on a broken invariant (which is what the fuzzer looks
//! for) and must never panic otherwise.

use arbitrary::{Arbitrary, Unstructured};
use user_import::memory::{InMemoryStore, State};
use user_import::{
    Encoding, ErrorPolicy, Importer, ListPolicy, Mode, Op, Outcome, Planned, Profile, RolePolicy,
    RunOptions, User, UserStore,
};

use crate::model;

/// `read`: arbitrary bytes through reading and validation.
pub fn read(data: &[u8]) {
    let importer = Importer::new("default");
    let mut latin = Profile::default();
    latin.encoding = Some(Encoding::Windows1252);
    let latin = Importer::with_profile("default", latin);
    // Read in blocks as it comes, the same validation (the head is at
    // least a kilobyte: smaller inputs are read whole either way; the text
    // of a UTF-16 head is half its bytes), also converted from
    // Windows-1252.
    for (importer, sizes) in [
        (&importer, (1024, 64, 7)),
        (&importer, (1024, 1 + data.len() % 97, 4096)),
        (&importer, (2600, 1 + data.len() % 61, 13)),
        (&latin, (1024, 64, 7)),
    ] {
        if let Err(diff) = importer.check_blocks(data, None, sizes) {
            panic!("reading in blocks {sizes:?} differs:\n{diff}");
        }
    }
    let v = importer.validate(data, None);
    assert!(
        v.rows().windows(2).all(|w| w[0].line < w[1].line),
        "rows out of order"
    );
    for r in v.rows() {
        assert_eq!(
            r.error,
            v.row_issues(r.line).iter().any(|i| i.is_error()),
            "error flag of line {}",
            r.line
        );
    }
    let _ = v.render_text();
    let mut out = Vec::new();
    v.write_error_csv(data, &mut out)
        .expect("writing to a Vec cannot fail");
}

/// The file of a pipeline input: raw bytes, or rows under the canonical header.
#[derive(Debug, Arbitrary)]
pub enum File {
    Raw(Vec<u8>),
    Rows(Vec<[String; 8]>),
}

impl File {
    fn bytes(&self) -> Vec<u8> {
        match self {
            File::Raw(b) => b.clone(),
            File::Rows(rows) => {
                let mut w = csv::Writer::from_writer(Vec::new());
                let _ = w.write_record([
                    "userId",
                    "email",
                    "lastName",
                    "reportsTo",
                    "roles",
                    "enabled",
                    "transaction",
                    "notifyIfNewUser",
                ]);
                for r in rows {
                    let _ = w.write_record(r);
                }
                w.into_inner().unwrap_or_default()
            }
        }
    }
}

/// `pipeline`: a file and a directory state through validate → plan → apply.
#[derive(Debug, Arbitrary)]
pub struct Pipeline {
    pub file: File,
    pub directory: State,
    pub mode: u8,
    pub roles: u8,
    /// The list policy, by `lists % 4`: 1 or 3 add only, 2 change tokens,
    /// 0 replace.
    pub lists: u8,
    pub batch: u8,
    pub acting: Option<String>,
    /// Sometimes a wholly arbitrary profile (what a downstream fuzz target
    /// would use): then only "never panic, every row once" is checked.
    pub profile: Option<user_import::Profile>,
}

pub fn pipeline(data: &[u8]) {
    let Ok(input) = Pipeline::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut profile = Profile::default();
    profile.on_error = ErrorPolicy::SkipInvalid;
    profile.mode = match input.mode % 8 {
        0 => Mode::CreateOnly,
        1 => Mode::UpdateOnly,
        2 => Mode::Mirror,
        _ => Mode::Upsert,
    };
    profile.unknown_roles = match input.roles % 3 {
        0 => RolePolicy::Reject,
        1 => RolePolicy::Create,
        _ => RolePolicy::Fallback("Staff".into()),
    };
    profile.lists = match input.lists % 4 {
        1 | 3 => ListPolicy::AddOnly,
        2 => ListPolicy::Tokens,
        _ => ListPolicy::Replace,
    };
    profile.batch_size = usize::from(input.batch % 16) + 1;
    let mut importer = Importer::with_profile("t", profile);
    if let Some(a) = &input.acting {
        importer = importer.acting_user(a.clone());
    }
    let bytes = input.file.bytes();
    let mut store = InMemoryStore::from_directory("t", &input.directory);

    let validation = importer.validate(&bytes, None);
    let lines: Vec<u64> = validation.rows().iter().map(|r| r.line).collect();
    let invalid: Vec<u64> = validation
        .rows()
        .iter()
        .filter(|r| r.error)
        .map(|r| r.line)
        .collect();
    let plan = importer
        .plan(validation, &mut store)
        .expect("the in-memory store does not fail");
    // Every row once, in order; rows with errors produce no operation.
    assert_eq!(
        plan.rows().iter().map(|r| r.line).collect::<Vec<_>>(),
        lines
    );
    for r in plan.rows() {
        let ops = plan
            .ops()
            .iter()
            .filter(|o| o.line() == Some(r.line))
            .count();
        let expected = usize::from(matches!(
            r.planned,
            Planned::Create | Planned::Update | Planned::Delete
        ));
        assert_eq!(ops, expected, "line {} planned {:?}", r.line, r.planned);
        if invalid.contains(&r.line) {
            assert_eq!(r.planned, Planned::Fail, "line {} has errors", r.line);
        }
    }
    let before = snapshot(&store);
    let mut undo = None;
    let report = importer
        .apply_with(&plan, &mut store, RunOptions::new().undo(&mut undo))
        .expect("the in-memory store does not fail");
    assert_eq!(
        report.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        lines
    );
    let s = report.summary;
    let from_rows = report
        .rows
        .iter()
        .filter(|r| r.outcome == Outcome::Added)
        .count() as u64;
    assert_eq!(s.added, from_rows);
    let dir_changes = report
        .directory
        .iter()
        .filter(|d| matches!(d.outcome, Outcome::Updated | Outcome::Deleted))
        .count() as u64;
    assert_eq!(
        s.added + s.updated + s.deleted + s.unchanged + s.skipped + s.failed,
        lines.len() as u64 + dir_changes
    );
    // Re-planning after a clean apply plans nothing.
    if !plan.is_blocked() && s.failed == 0 {
        let again = importer
            .plan(importer.validate(&bytes, None), &mut store)
            .expect("the in-memory store does not fail");
        assert!(
            again.ops().is_empty(),
            "re-plan after apply: {:?}",
            again.ops()
        );
    }
    // The undo puts the directory back as it was.
    let undo = undo.expect("applying gives an undo");
    let undone = importer
        .apply(&undo, &mut store)
        .expect("the in-memory store does not fail");
    assert!(undone.is_success(), "{}", undone.render_text());
    assert_eq!(snapshot(&store), before, "after the undo");
}

/// The directory as an administrator sees it: every user's record and
/// locks (not their versions), and the roles.
fn snapshot(store: &InMemoryStore) -> (Vec<(User, Vec<user_import::Field>)>, Vec<String>) {
    let mut users: Vec<_> = store
        .users("t")
        .map(|u| (u.user.clone(), u.locked.clone()))
        .collect();
    users.sort_by_key(|(u, _)| u.user_id().map(user_import::normalize));
    let mut roles = store.roles("t");
    roles.sort();
    (users, roles)
}

/// One step of an `ops` sequence.
#[derive(Debug, Arbitrary)]
pub enum Step {
    Import(Vec<(u8, u8, bool, u8, bool)>),
    Insert { id: u8, email: u8, last: u8 },
    Remove(u8),
    Touch { id: u8, last: u8 },
}

/// `ops`: directory changes and imports replayed against `InMemoryStore` and
/// the reference model; both must agree after every step.
pub fn ops(data: &[u8]) {
    let Ok(steps) = Vec::<Step>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut store = InMemoryStore::new();
    let mut dir: Vec<model::DirUser> = Vec::new();
    let mut profile = Profile::default();
    profile.on_error = ErrorPolicy::SkipInvalid;
    profile.batch_size = 3;
    let importer = Importer::with_profile(model::T, profile);
    for step in steps.into_iter().take(32) {
        match step {
            Step::Import(rows) => {
                let rows: Vec<model::Row> = rows
                    .into_iter()
                    .take(12)
                    .map(|(id, email, bad_email, last, delete)| model::Row {
                        id: id % 8,
                        email: email % 8,
                        bad_email: bad_email && id % 5 == 0,
                        last: last % 3,
                        delete: delete && email % 4 == 0,
                    })
                    .collect();
                if rows.is_empty() {
                    continue;
                }
                let expected = model::model(&dir, &rows);
                let report = importer
                    .run(model::to_file(&rows).as_bytes(), None, &mut store)
                    .expect("the in-memory store does not fail");
                let got: Vec<Planned> = report
                    .rows
                    .iter()
                    .map(|r| match r.outcome {
                        Outcome::Added => Planned::Create,
                        Outcome::Updated => Planned::Update,
                        Outcome::Deleted => Planned::Delete,
                        Outcome::Unchanged => Planned::Unchanged,
                        Outcome::Skipped => Planned::Skip,
                        _ => Planned::Fail,
                    })
                    .collect();
                assert_eq!(got, expected, "file:\n{}", model::to_file(&rows));
                model::apply_model(&mut dir, &rows, &expected);
            }
            Step::Insert { id, email, last } => {
                let (id, email, last) = (id % 8, email % 8, last % 3);
                let user = user_import::User::builder()
                    .set(user_import::Field::UserId, &format!("u{id}"))
                    .set(user_import::Field::Email, &model::email(email))
                    .set(user_import::Field::LastName, &format!("L{last}"))
                    .set(user_import::Field::Enabled, "true")
                    .set(user_import::Field::TaskNotification, "Email")
                    .build();
                let taken = dir.iter().any(|u| u.email == email && u.id != id);
                assert_eq!(store.insert(model::T, user).is_some(), !taken);
                if !taken {
                    dir.retain(|u| u.id != id);
                    dir.push(model::DirUser { id, email, last });
                    dir.sort_by_key(|u| u.id);
                }
            }
            Step::Remove(id) => {
                let id = id % 8;
                let version = store.get(model::T, &format!("u{id}")).map(|u| u.version);
                if let Some(version) = version {
                    let op = Op::Delete {
                        line: None,
                        user_id: format!("u{id}"),
                        version,
                    };
                    let out = UserStore::apply(&mut store, model::T, &[op]).expect("infallible");
                    assert!(out[0].is_applied());
                }
                dir.retain(|u| u.id != id);
            }
            Step::Touch { id, last } => {
                let (id, last) = (id % 8, last % 3);
                let done = store.touch(
                    model::T,
                    &format!("u{id}"),
                    user_import::Field::LastName,
                    &format!("L{last}"),
                );
                assert_eq!(done, dir.iter().any(|u| u.id == id));
                if let Some(u) = dir.iter_mut().find(|u| u.id == id) {
                    u.last = last;
                }
            }
        }
        let want: Vec<(u8, u8, u8)> = dir.iter().map(|u| (u.id, u.email, u.last)).collect();
        assert_eq!(model::observe(&store), want);
    }
}

/// A row of a `streaming` input: small pools of ids, emails and managers,
/// so that rows meet each other and the directory.
#[derive(Debug, Arbitrary)]
pub struct StreamRow {
    /// By `free % 8`: 0, a row about any user of the pools (`id`,
    /// `email`); 1, a row naming an earlier row's user by email alone
    /// (that row by `id`, and without its email when `free` is 9 or more);
    /// else, as exports mostly have them, about a user of its own (its row
    /// number for id and email, and a manager on a row before it).
    pub free: u8,
    pub id: Option<u8>,
    pub email: Option<u8>,
    pub manager: Option<u8>,
    pub role: u8,
    /// `enabled`, by `enabled % 16`: `maybe` (an error), blank, false, or
    /// (mostly) true.
    pub enabled: u8,
    pub last: u8,
    /// A `DELETE` row when `delete % 12` is 0 (`% 2` for a row naming an
    /// earlier row's user by email alone).
    pub delete: u8,
    pub notify: bool,
}

/// `streaming`: a file read in segments and imported (or dry-run) with
/// `run_streaming`, against the same file imported whole.
#[derive(Debug, Arbitrary)]
pub struct Streaming {
    /// The error policy, key, role policy, mode and blank policy, a few
    /// bits each.
    pub settings: u16,
    /// The segments' size in bytes, from 60 to 571.
    pub segment: u16,
    pub acting: Option<u8>,
    pub threads: bool,
    pub dry: bool,
    /// Directory users: id, email, manager, role (from the same pools).
    pub directory: Vec<(u8, u8, Option<u8>, u8)>,
    /// The rows, from the rest of the input.
    pub rows: Vec<StreamRow>,
}

/// Role names as files spell them: two of them one role.
const ROLES: [&str; 5] = ["Staff", "staff", "Admin", "Sales", "Ops"];
/// A long first name, so that each row takes a hundred bytes or so.
const PADDING: &str = "Maximiliana-Konstantinopoulou-Wolfeschlegelsteinhausenbergerdorff";

impl Streaming {
    fn file(&self) -> Vec<u8> {
        let mut f = String::from(
            "userId,email,reportsTo,roles,enabled,lastName,firstName,transaction,notifyIfNewUser\n",
        );
        // Rows of users of their own fill the 2 KiB head a file needs to
        // be read in segments, so that the rows below are read a few to a
        // segment.
        for i in 0..24 {
            f.push_str(&format!("p{i},p{i}@x.io,,Staff,true,L0,{PADDING},,false\n"));
        }
        let cell = |p: &str, v: Option<u8>, s: &str| {
            v.map_or(String::new(), |v| format!("{p}{}{s}", v % 40))
        };
        // The earlier row an email-only row names, and whether that row
        // leaves its email out (so that only the directory ties the two).
        let echoed = |r: &StreamRow, i: usize| usize::from(r.id.unwrap_or(0)) % i;
        let mut blank = vec![false; self.rows.len()];
        for (i, r) in self.rows.iter().enumerate() {
            if r.free % 8 == 1 && r.free >= 9 && i > 0 {
                blank[echoed(r, i)] = true;
            }
        }
        for (i, r) in self.rows.iter().enumerate() {
            let (id, email, manager) = match r.free % 8 {
                1 if i > 0 => (
                    String::new(),
                    format!("e{}@x.io", echoed(r, i)),
                    String::new(),
                ),
                _ if blank[i] => (format!("u{i}"), String::new(), String::new()),
                0 => (
                    cell("u", r.id, ""),
                    cell("e", r.email, "@x.io"),
                    cell("u", r.manager, ""),
                ),
                _ => (
                    format!("u{i}"),
                    format!("e{i}@x.io"),
                    r.manager
                        .filter(|_| i > 0)
                        .map_or(String::new(), |m| format!("u{}", usize::from(m) % i)),
                ),
            };
            f.push_str(&format!(
                "{id},{email},{manager},{},{},L{},{PADDING},{},{}\n",
                ROLES[usize::from(r.role) % ROLES.len()],
                match r.enabled % 16 {
                    0 => "maybe",
                    1 => "",
                    2 | 3 => "false",
                    _ => "true",
                },
                r.last % 3,
                // Half the email-only rows delete; one in twelve others.
                if r.delete % if r.free % 8 == 1 { 2 } else { 12 } == 0 {
                    "DELETE"
                } else {
                    ""
                },
                r.notify,
            ));
        }
        f.into_bytes()
    }

    fn store(&self) -> InMemoryStore {
        let mut store = InMemoryStore::new();
        let (mut ids, mut emails) = (Vec::new(), Vec::new());
        for &(id, email, manager, role) in &self.directory {
            let (id, email) = (id % 40, email % 40);
            if ids.contains(&id) || emails.contains(&email) {
                continue;
            }
            ids.push(id);
            emails.push(email);
            let mut u = User::builder()
                .set(user_import::Field::UserId, &format!("u{id}"))
                .set(user_import::Field::Email, &format!("e{email}@x.io"))
                .set(user_import::Field::Roles, ROLES[usize::from(role) % 4 + 1])
                .set(user_import::Field::LastName, "L0");
            if let Some(m) = manager.map(|m| m % 40).filter(|m| *m < id) {
                u = u.set(user_import::Field::ReportsTo, &format!("u{m}"));
            }
            store.insert("t", u.build());
        }
        store
    }

    fn profile(&self) -> Profile {
        let s = self.settings;
        let mut p = Profile::default();
        p.on_error = match s % 4 {
            0 => ErrorPolicy::RejectFile,
            1 => ErrorPolicy::StopAfter(u64::from(s >> 2 & 3)),
            _ => ErrorPolicy::SkipInvalid,
        };
        if s & 0x10 != 0 {
            p.key = user_import::KeyField::Email;
        }
        p.unknown_roles = match s >> 5 & 1 {
            0 => RolePolicy::Create,
            _ => RolePolicy::Reject,
        };
        p.mode = match s >> 6 & 7 {
            0 => Mode::CreateOnly,
            1 => Mode::UpdateOnly,
            2 => Mode::Mirror,
            _ => Mode::Upsert,
        };
        if s & 0x200 != 0 {
            p.blank = user_import::BlankPolicy::Clear;
        }
        if s & 0x400 != 0 {
            p.guards.max_deletes = Some(u64::from(s >> 11 & 3));
        }
        p
    }
}

pub fn streaming(data: &[u8]) {
    let Ok(input) = Streaming::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let file = input.file();
    let mut importer =
        Importer::with_profile("t", input.profile()).threads(if input.threads { 2 } else { 1 });
    if let Some(a) = input.acting {
        importer = importer.acting_user(format!("u{}", a % 40));
    }
    let name = Some("users.csv");
    let mut whole = input.store();
    let expected = if input.dry {
        let v = importer.validate(&file, name);
        let plan = importer
            .plan(v, &mut whole)
            .expect("the in-memory store does not fail");
        user_import::Report::dry_run(&plan)
    } else {
        importer
            .run(&file, name, &mut whole)
            .expect("the in-memory store does not fail")
    };
    let rows = std::sync::Mutex::new(Vec::new());
    let mut keep = |row| rows.lock().unwrap_or_else(|e| e.into_inner()).push(row);
    let mut restart = || rows.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let options = RunOptions::new().on_row(&mut keep).on_restart(&mut restart);
    let streamed = importer
        .clone()
        .segment_bytes(60 + usize::from(input.segment % 512));
    let mut store = input.store();
    let size = Some(file.len() as u64);
    let mut got = if input.dry {
        streamed.dry_run_streaming(|| Ok(&file[..]), size, name, &mut store, options)
    } else {
        streamed.run_streaming(|| Ok(&file[..]), size, name, &mut store, options)
    }
    .expect("the in-memory store does not fail");
    got.rows = rows.into_inner().unwrap_or_else(|e| e.into_inner());
    assert_eq!(got, expected, "streamed against whole");
    assert_eq!(snapshot(&store), snapshot(&whole), "the directories");
    assert!(!store.in_transaction(), "the transaction is ended");
}
