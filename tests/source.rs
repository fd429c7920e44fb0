//! An import source (`Profile::source`) tags the users it creates, and in
//! mirror mode removes only users so tagged: never those another source or
//! an administrator created. The guards apply on top.

use user_import::memory::InMemoryStore;
use user_import::{
    Code, ErrorPolicy, Field, Guards, Importer, MirrorAction, Mode, Outcome, Profile,
    SOURCE_ATTRIBUTE, User,
};

const T: &str = "acme";

fn feed(action: MirrorAction) -> Importer {
    let mut p = Profile::default();
    p.source = Some("hr-feed".into());
    p.mode = Mode::Mirror;
    p.mirror = action;
    p.on_error = ErrorPolicy::SkipInvalid;
    p.guards = Guards::default();
    p.guards.max_delete_share = None;
    Importer::with_profile(T, p)
}

fn by_hand(id: &str, manager: Option<&str>) -> User {
    let mut b = User::builder()
        .set(Field::UserId, id)
        .set(Field::Email, &format!("{id}@x.io"))
        .set(Field::Enabled, "true");
    if let Some(m) = manager {
        b = b.set(Field::ReportsTo, m);
    }
    b.build()
}

#[test]
fn mirror_mode_removes_only_the_users_its_source_created() {
    let importer = feed(MirrorAction::Delete);
    let mut store = InMemoryStore::new();
    store.insert(T, by_hand("admin", None));
    let first = importer
        .run(
            b"userId,email,lastName\na,a@x.io,A\nb,b@x.io,B\nc,c@x.io,C\n",
            None,
            &mut store,
        )
        .unwrap();
    assert_eq!(first.summary.added, 3);
    assert!(
        first.directory.is_empty(),
        "admin is not the feed's to remove"
    );
    for id in ["a", "b", "c"] {
        let u = store.get(T, id).unwrap();
        assert_eq!(u.user.custom(SOURCE_ATTRIBUTE), Some("hr-feed"), "{id}");
    }
    // The feed updates a and no longer names b or c: they are deleted;
    // admin, created by hand, stays; a keeps its tag.
    let second = importer
        .run(
            b"userId,email,lastName\na,a@x.io,Changed\n",
            None,
            &mut store,
        )
        .unwrap();
    assert_eq!(second.summary.updated, 1);
    let mut removed: Vec<&str> = second
        .directory
        .iter()
        .map(|d| d.user_id.as_str())
        .collect();
    removed.sort();
    assert_eq!(removed, ["b", "c"]);
    assert!(store.get(T, "admin").is_some());
    assert!(store.get(T, "b").is_none());
    let a = store.get(T, "a").unwrap();
    assert_eq!(a.user.get(Field::LastName), Some("Changed"));
    assert_eq!(a.user.custom(SOURCE_ATTRIBUTE), Some("hr-feed"));
    // Another source's users are not this one's either.
    let mut other = Profile::default();
    other.source = Some("sis".into());
    Importer::with_profile(T, other)
        .run(b"userId,email\ns,s@x.io\n", None, &mut store)
        .unwrap();
    importer
        .run(
            b"userId,email,lastName\na,a@x.io,Changed\n",
            None,
            &mut store,
        )
        .unwrap();
    assert!(store.get(T, "s").is_some());
}

#[test]
fn the_guards_apply_on_top_and_a_kept_users_manager_stays() {
    let mut store = InMemoryStore::new();
    let importer = feed(MirrorAction::Delete);
    importer
        .run(
            b"userId,email\nboss,boss@x.io\nx,x@x.io\n",
            None,
            &mut store,
        )
        .unwrap();
    // A user created by hand reports to the feed's boss.
    store.insert(T, by_hand("helper", Some("boss")));
    let report = importer
        .run(b"userId,email\nx,x@x.io\n", None, &mut store)
        .unwrap();
    // boss keeps a report the feed does not own: not deleted.
    assert!(store.get(T, "boss").is_some(), "{}", report.render_text());
    let boss = report.directory.iter().find(|d| d.user_id == "boss");
    assert!(boss.is_none_or(|d| d.outcome != Outcome::Deleted));

    // The deletion cap still trips.
    let mut capped = Profile::default();
    capped.source = Some("hr-feed".into());
    capped.mode = Mode::Mirror;
    capped.mirror = MirrorAction::Delete;
    capped.guards.max_deletes = Some(0);
    let capped = Importer::with_profile(T, capped);
    capped
        .run(b"userId,email\nx,x@x.io\nnew,new@x.io\n", None, &mut store)
        .unwrap();
    let report = capped
        .run(b"userId,email\nx,x@x.io\n", None, &mut store)
        .unwrap();
    assert!(report.rejected, "{}", report.render_text());
    assert!(report.issues.iter().any(|i| i.code == Code::GuardTripped));
    assert!(store.get(T, "new").is_some());
}

#[test]
fn disabling_reaches_only_the_sources_users_too() {
    let importer = feed(MirrorAction::Disable);
    let mut store = InMemoryStore::new();
    store.insert(T, by_hand("admin", None));
    importer
        .run(b"userId,email\na,a@x.io\nb,b@x.io\n", None, &mut store)
        .unwrap();
    let report = importer
        .run(b"userId,email\na,a@x.io\n", None, &mut store)
        .unwrap();
    assert_eq!(report.directory.len(), 1, "{}", report.render_text());
    assert_eq!(store.get(T, "b").unwrap().user.enabled(), Some(false));
    assert_eq!(store.get(T, "admin").unwrap().user.enabled(), Some(true));
}
