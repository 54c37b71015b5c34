//! Groups with their details, group members and pool summaries on one backend.

use std::sync::Arc;

use crate::store::{GroupRecord, Store, StoreError, UserRecord, UserStatus};

fn member(username: &str) -> UserRecord {
    UserRecord {
        pool: "main".into(),
        username: username.into(),
        sub: format!("sub-{username}"),
        password_hash: None,
        status: UserStatus::Confirmed,
        enabled: true,
        attributes: Default::default(),
        failed_attempts: 0,
        locked_until: None,
        tokens_valid_after: 0,
        created_at: 1,
        updated_at: 1,
        srp: None,
    }
}

fn group(name: &str) -> GroupRecord {
    GroupRecord {
        pool: "main".into(),
        name: name.into(),
        description: Some("Edit things".into()),
        precedence: Some(2),
        role_arn: Some("arn:aws:iam::123456789012:role/editors".into()),
        created_at: 50,
        updated_at: Some(60),
    }
}

pub(super) async fn directory_suite(store: Arc<dyn Store>) {
    store.migrate().await.expect("migrate");
    assert_eq!(store.pool_summary("main").await.expect("summary"), None);
    store.upsert_pool("main", 10).await.expect("pool");
    store.upsert_pool("main", 20).await.expect("pool again");
    let summary = store
        .pool_summary("main")
        .await
        .expect("summary")
        .expect("main");
    assert_eq!(
        (summary.created_at, summary.updated_at, summary.users),
        (Some(10), 20, 0)
    );

    // a declared group (name only) and a created one (with details)
    store
        .upsert_group("main", "admins", 30)
        .await
        .expect("declared");
    assert!(store.create_group(&group("editors")).await.expect("create"));
    assert!(!store.create_group(&group("editors")).await.expect("twice"));
    assert!(
        !store
            .create_group(&group("admins"))
            .await
            .expect("declared name")
    );
    let mut stray = group("stray");
    stray.pool = "nopool".into();
    assert!(matches!(
        store.create_group(&stray).await,
        Err(StoreError::NotFound(_))
    ));
    let groups = store.group_records("main").await.expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].name, "admins");
    assert_eq!(
        (
            groups[0].description.as_deref(),
            groups[0].precedence,
            groups[0].updated_at
        ),
        (None, None, None)
    );
    assert_eq!(groups[1], group("editors"));
    assert_eq!(
        store.list_groups("main").await.expect("names"),
        ["admins", "editors"]
    );

    // members, paged by username
    for name in ["cy", "ann", "bo", "dee"] {
        store.create_user(&member(name)).await.expect("user");
    }
    for name in ["cy", "ann", "dee"] {
        store
            .add_user_to_group("main", name, "editors")
            .await
            .expect("member");
    }
    store
        .add_user_to_group("main", "bo", "admins")
        .await
        .expect("admin");
    let names = |users: Vec<UserRecord>| users.into_iter().map(|u| u.username).collect::<Vec<_>>();
    let first = store
        .group_members("main", "editors", None, 2)
        .await
        .expect("page");
    assert_eq!(names(first), ["ann", "cy"]);
    let rest = store
        .group_members("main", "editors", Some("cy"), 2)
        .await
        .expect("page");
    assert_eq!(names(rest), ["dee"]);
    assert_eq!(
        store
            .pool_summary("main")
            .await
            .expect("summary")
            .map(|s| s.users),
        Some(4)
    );

    // deleting a group ends its memberships
    assert!(store.delete_group("main", "editors").await.expect("delete"));
    assert!(
        store
            .group_members("main", "editors", None, 10)
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        store.user_groups("main", "ann").await.expect("groups"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.user_groups("main", "bo").await.expect("groups"),
        ["admins"]
    );
}
