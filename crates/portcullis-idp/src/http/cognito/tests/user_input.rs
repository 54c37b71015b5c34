//! What users may write: attributes outside the pool's schema or reserved to the provider are
//! refused, and usernames are normalised (NFKC) and refused when invisible characters or
//! mixed scripts could make them look like someone else's.

use std::collections::BTreeMap;

use super::*;
use crate::store::{UserRecord, UserStatus};

const DECLARED: &str = "custom_attributes = { tier = { mutable = false }, team = {} }";

fn attrs(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(n, v)| json!({"Name": n, "Value": v}))
            .collect(),
    )
}

impl Harness {
    async fn sign_up(
        &self,
        username: &str,
        attributes: &[(&str, &str)],
    ) -> Result<Value, (u16, String, String)> {
        self.call(
            "SignUp",
            json!({"ClientId": "web", "Username": username, "Password": "password1",
                   "UserAttributes": attrs(attributes)}),
        )
        .await
    }

    /// Signs up, confirms with the delivered code, signs in: the authentication result.
    async fn signed_up(&self, username: &str, attributes: &[(&str, &str)]) -> Value {
        self.sign_up(username, attributes).await.unwrap();
        let code = self.last_code(username, CodePurpose::SignUp);
        self.call(
            "ConfirmSignUp",
            json!({"ClientId": "web", "Username": username, "ConfirmationCode": code}),
        )
        .await
        .unwrap();
        self.login("web", username, "password1").await.unwrap()["AuthenticationResult"].clone()
    }

    async fn user_attributes(&self, access: &str) -> BTreeMap<String, String> {
        let me = self
            .call("GetUser", json!({"AccessToken": access}))
            .await
            .unwrap();
        me["UserAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["Name"].as_str().unwrap().to_owned(),
                    a["Value"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn sign_up_writes_only_the_schema_and_never_a_verification_flag() {
    let h = harness_with(DECLARED).await;
    let refused = [
        ("email_verified", "true", "NotAuthorizedException"),
        ("phone_number_verified", "true", "NotAuthorizedException"),
        ("custom:undeclared", "x", "InvalidParameterException"),
        (
            "iss",
            "https://attacker.example",
            "InvalidParameterException",
        ),
        ("aud", "web", "InvalidParameterException"),
        ("token_use", "access", "InvalidParameterException"),
        ("amr", "mfa", "InvalidParameterException"),
        ("cognito:groups", "admins", "InvalidParameterException"),
        (
            "sub",
            "00000000-0000-0000-0000-000000000000",
            "InvalidParameterException",
        ),
    ];
    for (name, value, error) in refused {
        let r = h
            .sign_up("mallory", &[("email", "m@example.com"), (name, value)])
            .await;
        let (status, got, message) = r.unwrap_err();
        assert_eq!((status, got.as_str()), (400, error), "{name}: {message}");
    }
    let (_, _, message) = h
        .sign_up("mallory", &[("custom:undeclared", "x")])
        .await
        .unwrap_err();
    assert_eq!(
        message,
        "Attributes did not conform to the schema: Type for attribute {custom:undeclared} could not be determined"
    );
    let (_, _, message) = h
        .sign_up("mallory", &[("email_verified", "true")])
        .await
        .unwrap_err();
    assert_eq!(
        message,
        "A client attempted to write unauthorized attribute"
    );
    let long = "x".repeat(2049);
    let r = h.sign_up("mallory", &[("name", &long)]).await;
    assert_eq!(error_name(r), "InvalidParameterException");
    // nothing of the refused sign-ups was stored
    assert!(
        h.idp
            .store
            .get_user("main", "mallory")
            .await
            .unwrap()
            .is_none()
    );
    assert!(h.codes.lock().unwrap().is_empty());

    // declared custom attributes (mutable or not) may be set at sign-up; the emailed code
    // proves the address
    let unconfirmed = h
        .sign_up(
            "mallory",
            &[
                ("email", "m@example.com"),
                ("custom:tier", "gold"),
                ("custom:team", "blue"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(unconfirmed["UserConfirmed"], false);
    let stored = h
        .idp
        .store
        .get_user("main", "mallory")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.attributes.get("email_verified"), None);
    let code = h.last_code("mallory", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "mallory", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
    let result = h.login("web", "mallory", "password1").await.unwrap();
    let id = claims(result["AuthenticationResult"]["IdToken"].as_str().unwrap());
    assert_eq!(id["email_verified"], json!(true));
    assert_eq!(id["custom:tier"], "gold");
    assert_eq!(id["iss"], "http://localhost:8080/pools/main");
    assert_eq!(id["aud"], "web");
    assert_eq!(id["token_use"], "id");
}

#[tokio::test]
async fn an_unconfirmed_email_is_not_verified_in_tokens() {
    let h = harness_with(DECLARED).await;
    // SignUp with email_verified=true is refused; the same user without it, confirmed by an
    // administrator (no code reached the address), has an unverified email.
    let r = h
        .sign_up(
            "oscar",
            &[("email", "o@example.com"), ("email_verified", "true")],
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    h.sign_up("oscar", &[("email", "o@example.com")])
        .await
        .unwrap();
    h.idp.confirm_user("main", "oscar").await.unwrap();
    let result = h.login("web", "oscar", "password1").await.unwrap();
    let id = claims(result["AuthenticationResult"]["IdToken"].as_str().unwrap());
    assert_eq!(id["email"], "o@example.com");
    assert_eq!(id["email_verified"], json!(false));
}

#[tokio::test]
async fn update_user_attributes_keeps_to_the_schema_and_mutability() {
    let h = harness_with(DECLARED).await;
    let result = h
        .signed_up(
            "uma",
            &[
                ("email", "u@example.com"),
                ("custom:tier", "bronze"),
                ("custom:team", "red"),
            ],
        )
        .await;
    let access = result["AccessToken"].as_str().unwrap().to_owned();
    let refresh = result["RefreshToken"].as_str().unwrap().to_owned();
    let before = h.user_attributes(&access).await;
    assert_eq!(before["email_verified"], "true");
    let update =
        |pairs: &[(&str, &str)]| json!({"AccessToken": access, "UserAttributes": attrs(pairs)});
    let refused = [
        (("custom:tier", "gold"), "NotAuthorizedException"),
        (("email_verified", "true"), "NotAuthorizedException"),
        (("phone_number_verified", "true"), "NotAuthorizedException"),
        (("custom:undeclared", "x"), "InvalidParameterException"),
        (
            ("iss", "https://attacker.example"),
            "InvalidParameterException",
        ),
        (("amr", "mfa"), "InvalidParameterException"),
        (("cognito:groups", "admins"), "InvalidParameterException"),
    ];
    for ((name, value), error) in refused {
        // a refused attribute stops the whole update
        let r = h
            .call(
                "UpdateUserAttributes",
                update(&[("custom:team", "green"), (name, value)]),
            )
            .await;
        assert_eq!(error_name(r), error, "{name}");
    }
    assert_eq!(h.user_attributes(&access).await, before);

    // mutable attributes change; a new email address is no longer verified
    let r = h
        .call(
            "UpdateUserAttributes",
            update(&[
                ("custom:team", "green"),
                ("email", "new@example.com"),
                ("name", "Uma"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(r, json!({"CodeDeliveryDetailsList": []}));
    let after = h.user_attributes(&access).await;
    assert_eq!(after["custom:team"], "green");
    assert_eq!(after["custom:tier"], "bronze");
    assert_eq!(after["email"], "new@example.com");
    assert_eq!(after["email_verified"], "false");
    assert_eq!(after["name"], "Uma");
    let r = h
        .call(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "REFRESH_TOKEN_AUTH",
                   "AuthParameters": {"REFRESH_TOKEN": refresh}}),
        )
        .await
        .unwrap();
    let id = claims(r["AuthenticationResult"]["IdToken"].as_str().unwrap());
    assert_eq!(id["email_verified"], json!(false));
    assert_eq!(id["custom:tier"], "bronze");
    // without a valid access token nothing is written
    let r = h
        .call(
            "UpdateUserAttributes",
            json!({"AccessToken": "a.b.c", "UserAttributes": attrs(&[("name", "X")])}),
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
}

#[tokio::test]
async fn reserved_attributes_already_stored_never_reach_tokens_or_get_user() {
    let h = harness_with(DECLARED).await;
    h.idp
        .create_user(
            "main",
            "olga",
            BTreeMap::from([("email".to_owned(), "o@example.com".to_owned())]),
            Some((&Secret::new("password1"), true)),
        )
        .await
        .unwrap();
    // a row written before attributes were checked
    let mut user: UserRecord = h.idp.store.get_user("main", "olga").await.unwrap().unwrap();
    for (name, value) in [
        ("iss", "https://attacker.example"),
        ("aud", "someone-else"),
        ("token_use", "access"),
        ("amr", "mfa"),
        ("sub", "forged-sub"),
        ("cognito:groups", "admins"),
        ("cognito:username", "admin"),
        ("exp", "9999999999"),
        ("identities", "[]"),
    ] {
        user.attributes.insert(name.to_owned(), value.to_owned());
    }
    h.idp.store.update_user(&user).await.unwrap();
    assert_eq!(user.status, UserStatus::Confirmed);
    let result = h.login("web", "olga", "password1").await.unwrap();
    let result = &result["AuthenticationResult"];
    let id = claims(result["IdToken"].as_str().unwrap());
    assert_eq!(id["iss"], "http://localhost:8080/pools/main");
    assert_eq!(id["aud"], "web");
    assert_eq!(id["token_use"], "id");
    assert_eq!(id["sub"], user.sub.as_str());
    assert_eq!(id["cognito:username"], "olga");
    assert!(id.get("amr").is_none() && id.get("identities").is_none());
    assert!(id.get("cognito:groups").is_none());
    assert_ne!(id["exp"], json!(9_999_999_999_i64));
    assert_eq!(id["email"], "o@example.com");
    let shown = h
        .user_attributes(result["AccessToken"].as_str().unwrap())
        .await;
    assert_eq!(
        shown,
        BTreeMap::from([
            ("email".to_owned(), "o@example.com".to_owned()),
            ("sub".to_owned(), user.sub.clone()),
        ])
    );
}

#[tokio::test]
async fn usernames_are_normalised_and_look_alikes_refused() {
    let h = harness_with(DECLARED).await;
    for (name, raw) in [
        ("zero-width space", "bo\u{200B}b"),
        ("right-to-left override", "b\u{202E}ob"),
        ("zero-width joiner", "bo\u{200D}b"),
        ("byte order mark", "\u{FEFF}bob"),
        ("Cyrillic o in Latin", "b\u{043E}b"),
        ("Greek omicron in Latin", "b\u{03BF}b"),
        ("no-break space", "bo\u{A0}b"),
    ] {
        let (status, error, message) = h.sign_up(raw, &[]).await.unwrap_err();
        assert_eq!(
            (status, error.as_str()),
            (400, "InvalidParameterException"),
            "{name}"
        );
        assert!(
            message.starts_with("Username must not"),
            "{name}: {message}"
        );
    }
    assert!(h.idp.list_users("main", None, 10).await.unwrap().is_empty());

    // full-width letters are the name itself
    let r = h.sign_up("ｂｏｂ", &[]).await.unwrap();
    assert_eq!(r["UserConfirmed"], false);
    let stored = h.idp.list_users("main", None, 10).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
    assert_eq!(
        error_name(h.sign_up("bob", &[]).await),
        "UsernameExistsException"
    );
    let code = h.last_code("bob", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "ｂｏｂ", "ConfirmationCode": code}),
    )
    .await
    .unwrap();
    for spelling in ["bob", "ｂｏｂ"] {
        let r = h.login("web", spelling, "password1").await.unwrap();
        let access = claims(r["AuthenticationResult"]["AccessToken"].as_str().unwrap());
        assert_eq!(access["username"], "bob", "{spelling}");
    }
    // the same on the other operations that name a user
    h.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "ｂｏｂ"}),
    )
    .await
    .unwrap();
    let code = h.last_code("bob", CodePurpose::ForgotPassword);
    h.call(
        "ConfirmForgotPassword",
        json!({"ClientId": "web", "Username": "ｂｏｂ", "ConfirmationCode": code,
               "Password": "password2"}),
    )
    .await
    .unwrap();
    h.login("web", "bob", "password2").await.unwrap();
    // case is kept: usernames are case-sensitive
    assert_eq!(
        error_name(h.login("web", "BOB", "password2").await),
        "NotAuthorizedException"
    );
    // the look-alike names match no one
    assert_eq!(
        error_name(h.login("web", "bo\u{200B}b", "password2").await),
        "NotAuthorizedException"
    );
}
