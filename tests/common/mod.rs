//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod model;

use user_import::{Code, Field, Importer, Issue, User, Validation};

/// A directory user with `roles`, enabled, with email notifications.
pub fn person(id: &str, roles: &str) -> User {
    User::builder()
        .set(Field::UserId, id)
        .set(Field::Email, &format!("{id}@example.com"))
        .set(Field::Roles, roles)
        .set(Field::Enabled, "true")
        .set(Field::TaskNotification, "Email")
        .build()
}

/// Validates `text` for tenant `default` with the default profile.
pub fn validate(text: &str) -> Validation {
    Importer::new("default").validate(text.as_bytes(), None)
}

/// `(line, code)` of every issue, in report order.
pub fn codes(v: &Validation) -> Vec<(Option<u64>, Code)> {
    v.issues().map(|i| (i.line, i.code)).collect()
}

/// The only issue with `code`; panics when there is not exactly one.
pub fn only(v: &Validation, code: Code) -> Issue {
    let found: Vec<&Issue> = v.issues().filter(|i| i.code == code).collect();
    assert_eq!(found.len(), 1, "expected one {code}, got {found:#?}");
    found[0].clone()
}

pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub const HEADER: &str = "userId,firstName,lastName,email,roles";

/// The names of the roles a plan creates, in plan order.
pub fn created_roles(plan: &user_import::Plan) -> Vec<&str> {
    plan.ops()
        .iter()
        .filter_map(|o| match o {
            user_import::Op::CreateRole { name } => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("user-import-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a temporary file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
