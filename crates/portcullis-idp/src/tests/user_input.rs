//! Administrators may write verification flags and declared attributes but never reserved
//! claims; admin lookups use the normalised username; `userInfo` never shows a reserved
//! claim taken from a stored attribute.

use super::*;
use crate::manage::{self, AdminError, NewUser};

fn new_user(username: &str, attributes: &[(&str, &str)]) -> NewUser {
    NewUser {
        pool: "main".into(),
        username: username.into(),
        attributes: attributes
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        password: Some(Secret::new("password1")),
        permanent: true,
        confirmed: false,
    }
}

#[tokio::test]
async fn administrators_write_flags_and_declared_attributes_but_no_claims() {
    let idp = idp().await;
    let created = manage::create_user(
        &idp,
        new_user(
            "ann",
            &[
                ("email", "ann@example.com"),
                ("email_verified", "true"),
                ("phone_number_verified", "false"),
                ("custom:tier", "gold"),
            ],
        ),
    )
    .await
    .unwrap();
    assert_eq!(created.user.attributes["email_verified"], "true");
    for (name, value) in [
        ("iss", "https://attacker.example"),
        ("aud", "web"),
        ("token_use", "access"),
        ("sub", "forged"),
        ("cognito:groups", "admins"),
        ("amr", "mfa"),
        ("custom:undeclared", "x"),
    ] {
        let r = manage::create_user(&idp, new_user("ben", &[(name, value)])).await;
        match r {
            Err(AdminError::Invalid(message)) => assert!(
                message.contains("Attributes did not conform to the schema"),
                "{name}: {message}"
            ),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(
        manage::create_user(&idp, new_user("ben", &[("name", &"x".repeat(2049))])).await,
        Err(AdminError::Invalid(_))
    ));
    let users = idp.list_users("main", None, 10).await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["ann"]
    );
}

#[tokio::test]
async fn admin_usernames_are_normalised_and_look_alikes_refused() {
    let idp = idp().await;
    let mut confirmed = new_user("ｃａｒｌ", &[]);
    confirmed.password = None;
    confirmed.confirmed = true;
    let created = manage::create_user(&idp, confirmed).await.unwrap();
    assert_eq!(created.user.username, "carl");
    assert_eq!(created.user.status, UserStatus::Confirmed);
    assert_eq!(
        manage::show_user(&idp, "main", "ｃａｒｌ")
            .await
            .unwrap()
            .user
            .username,
        "carl"
    );
    manage::disable_user(&idp, "main", "ｃａｒｌ")
        .await
        .unwrap();
    assert!(!idp.show_user("main", "carl").await.unwrap().user.enabled);
    for raw in ["ca\u{200B}rl", "c\u{202E}arl", "c\u{0430}rl", "ca rl"] {
        assert!(
            matches!(
                manage::create_user(&idp, new_user(raw, &[])).await,
                Err(AdminError::Invalid(m)) if m.contains("Username must not")
            ),
            "{raw:?}"
        );
    }
    assert_eq!(idp.list_users("main", None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn user_info_never_shows_reserved_claims_from_stored_attributes() {
    let idp = idp().await;
    alice(&idp).await;
    let mut user = idp.store.get_user("main", "alice").await.unwrap().unwrap();
    for (name, value) in [
        ("iss", "https://attacker.example"),
        ("aud", "someone-else"),
        ("token_use", "access"),
        ("amr", "mfa"),
        ("username", "admin"),
        ("cognito:groups", "admins"),
    ] {
        user.attributes.insert(name.to_owned(), value.to_owned());
    }
    idp.store.update_user(&user).await.unwrap();
    let scopes = ["openid", "email", "profile"].map(String::from);
    let tokens = idp
        .issue_session("main", "web", "alice", &scopes)
        .await
        .unwrap();
    let addr = serve(idp.clone()).await;
    let info: Value = reqwest::Client::new()
        .get(format!("http://{addr}/pools/main/oauth2/userInfo"))
        .bearer_auth(tokens.access_token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        keys_of(&info),
        sorted(&["custom:tier", "email", "email_verified", "sub", "username"]),
        "{info}"
    );
    assert_eq!(info["username"], "alice");
    let id = decode_part(tokens.id_token.expose(), 1);
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["aud"], "web");
    assert!(id.get("amr").is_none());
}
