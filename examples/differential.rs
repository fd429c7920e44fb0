//! The differential harness: runs a corpus through validate → plan → apply
//! and writes, per case, the validation, the plan and the report as JSON and
//! the sequence of store calls, into a directory. Run it on two revisions and
//! compare the directories (`benches/differential.sh` does both): a change
//! meant to keep behaviour must leave them identical.
//!
//! ```sh
//! cargo run --release --example differential -- OUT_DIR
//! ```
//!
//! The corpus: every file under `tests/data/` and the fuzz corpora, each
//! against an empty directory and a small one, and generated files of 10,000
//! rows against generated directories of 5,000 users, planned on one thread
//! and on four; each under the default profile and under `skip-invalid`
//! with roles created as needed.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use user_import::memory::InMemoryStore;
use user_import::{
    Catalog, ErrorPolicy, ExistingUser, Fetch, Field, Importer, Op, OpOutcome, Profile, RolePolicy,
    User, UserStore,
};

const TENANT: &str = "acme";

/// An [`InMemoryStore`] that records every call made to it.
struct Recorder {
    inner: InMemoryStore,
    calls: Vec<Value>,
}

impl UserStore for Recorder {
    type Error = Infallible;

    fn catalog(&mut self, tenant: &str) -> Result<Catalog, Infallible> {
        self.calls.push(json!({ "catalog": tenant }));
        self.inner.catalog(tenant)
    }

    fn fetch(&mut self, request: &Fetch) -> Result<Vec<ExistingUser>, Infallible> {
        self.calls.push(json!({ "fetch": request }));
        self.inner.fetch(request)
    }

    fn scan(
        &mut self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ExistingUser>, Infallible> {
        self.calls.push(json!({ "scan": [tenant, after, limit] }));
        self.inner.scan(tenant, after, limit)
    }

    fn count(&mut self, tenant: &str) -> Result<u64, Infallible> {
        self.calls.push(json!({ "count": tenant }));
        self.inner.count(tenant)
    }

    fn apply(&mut self, tenant: &str, ops: &[Op]) -> Result<Vec<OpOutcome>, Infallible> {
        let outcomes = self.inner.apply(tenant, ops)?;
        self.calls
            .push(json!({ "apply": { "tenant": tenant, "ops": ops, "outcomes": format!("{outcomes:?}") } }));
        Ok(outcomes)
    }

    fn begin(&mut self) -> Result<bool, Infallible> {
        self.calls.push(json!("begin"));
        self.inner.begin()
    }

    fn commit(&mut self) -> Result<(), Infallible> {
        self.calls.push(json!("commit"));
        self.inner.commit()
    }

    fn rollback(&mut self) -> Result<(), Infallible> {
        self.calls.push(json!("rollback"));
        self.inner.rollback()
    }
}

/// A deterministic generator (an LCG), so both revisions see the same files.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

const ROLES: [&str; 5] = ["Staff", "Admin", "Tester", "Coordinator", "Auditor"];

/// A directory of `n` users.
fn directory(seed: u64, n: usize) -> InMemoryStore {
    let mut rng = Lcg(seed);
    let mut store = InMemoryStore::new();
    store.set_catalog(TENANT, Catalog::new().roles(ROLES));
    for i in 0..n {
        let roles = format!(
            "{}|{}",
            ROLES[rng.next(5) as usize],
            ROLES[rng.next(5) as usize]
        );
        let mut b = User::builder()
            .set(Field::UserId, &format!("user{i}"))
            .set(Field::Email, &format!("user{i}@example.com"))
            .set(Field::LastName, &format!("Last{}", rng.next(50)))
            .set(Field::Roles, &roles);
        if i > 0 && rng.next(3) == 0 {
            b = b.set(Field::ReportsTo, &format!("user{}", rng.next(i as u64)));
        }
        store.insert(TENANT, b.build());
    }
    store
}

/// A file of `n` rows over a directory of `dir` users: updates, unchanged
/// rows, new users, deletes, bad emails, duplicates and unknown roles.
fn file(seed: u64, n: usize, dir: usize) -> String {
    let mut rng = Lcg(seed);
    let mut f = String::from("userId,email,lastName,roles,reportsTo,transaction\n");
    for i in 0..n {
        let id = match rng.next(10) {
            0..=5 => format!("user{}", rng.next(dir as u64)),
            _ => format!("new{i}"),
        };
        let email = match rng.next(50) {
            0 => "not-an-email".to_owned(),
            _ => format!("{id}@example.com"),
        };
        let roles = match rng.next(20) {
            0 => "Unheard".to_owned(),
            _ => ROLES[rng.next(5) as usize].to_owned(),
        };
        let manager = match rng.next(4) {
            0 => format!("user{}", rng.next(dir as u64)),
            _ => String::new(),
        };
        let action = if rng.next(40) == 0 { "DELETE" } else { "" };
        f.push_str(&format!(
            "{id},{email},Last{},{roles},{manager},{action}\n",
            rng.next(50)
        ));
    }
    f
}

fn profiles() -> Vec<(&'static str, Profile)> {
    let mut skip = Profile::default();
    skip.on_error = ErrorPolicy::SkipInvalid;
    skip.unknown_roles = RolePolicy::Create;
    skip.batch_size = 256;
    vec![("default", Profile::default()), ("skip", skip)]
}

/// Runs one case and returns its record.
fn case(
    bytes: &[u8],
    name: Option<&str>,
    store: InMemoryStore,
    profile: &Profile,
    threads: usize,
) -> Value {
    let importer = Importer::with_profile(TENANT, profile.clone())
        .acting_user("user0")
        .threads(threads);
    let validation = importer.validate(bytes, name);
    let validation_json = serde_json::to_value(&validation).unwrap_or(Value::Null);
    let mut recorder = Recorder {
        inner: store,
        calls: Vec::new(),
    };
    let plan = importer.plan(validation, &mut recorder);
    let (plan_json, report_json) = match plan {
        Ok(plan) => {
            let report = importer.apply(&plan, &mut recorder);
            (
                serde_json::to_value(&plan).unwrap_or(Value::Null),
                match report {
                    Ok(r) => serde_json::to_value(&r).unwrap_or(Value::Null),
                    Err(e) => json!({ "error": e.to_string() }),
                },
            )
        }
        Err(e) => (json!({ "error": e.to_string() }), Value::Null),
    };
    let (mut plan_json, mut report_json) = (plan_json, report_json);
    untimed(&mut plan_json);
    untimed(&mut report_json);
    json!({
        "validation": validation_json,
        "plan": plan_json,
        "report": report_json,
        "calls": recorder.calls,
    })
}

/// Blanks the times of a plan's or report's provenance, which differ from
/// run to run.
fn untimed(record: &mut Value) {
    if let Some(p) = record.get_mut("provenance").and_then(Value::as_object_mut) {
        for time in ["started_at", "planned_at", "finished_at"] {
            if let Some(t) = p.get_mut(time) {
                *t = Value::Null;
            }
        }
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(out) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: differential OUT_DIR");
        std::process::exit(2);
    };
    std::fs::create_dir_all(&out)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    for dir in ["tests/data", "fuzz/corpus"] {
        files_under(&root.join(dir), &mut inputs);
    }
    inputs.sort();
    let mut written = 0;
    let mut write = |name: String, record: Value| -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&record).unwrap_or_default();
        std::fs::write(out.join(format!("{name}.json")), text)?;
        written += 1;
        Ok(())
    };
    for (pname, profile) in profiles() {
        for path in &inputs {
            let bytes = std::fs::read(path)?;
            let rel = path.strip_prefix(root).unwrap_or(path);
            let file_name = rel.file_name().and_then(|n| n.to_str());
            let stem = rel.to_string_lossy().replace(['/', '\\', '.'], "_");
            for (dname, users) in [("empty", 0), ("small", 40)] {
                let record = case(&bytes, file_name, directory(7, users), &profile, 1);
                write(format!("{pname}-{dname}-{stem}"), record)?;
            }
        }
        for seed in 0..3u64 {
            let text = file(100 + seed, 10_000, 5_000);
            // One thread, and four (chunks planned while the next chunk's
            // users are fetched).
            for threads in [1, 4] {
                let record = case(
                    text.as_bytes(),
                    None,
                    directory(seed, 5_000),
                    &profile,
                    threads,
                );
                write(format!("{pname}-generated-{seed}-threads{threads}"), record)?;
            }
        }
    }
    eprintln!("wrote {written} cases to {}", out.display());
    Ok(())
}
