//! `GetTokensFromRefreshToken`, the refresh Amplify v6 sends: the same tokens and rotation as
//! `REFRESH_TOKEN_AUTH`, the client's secret itself for a client with one.

use super::*;

async fn refresh_token_of(h: &Harness, client_id: &str, username: &str, extra: Value) -> String {
    let mut params = json!({"USERNAME": username, "PASSWORD": "password1"});
    if let (Value::Object(p), Value::Object(e)) = (&mut params, extra) {
        p.extend(e);
    }
    let r = h
        .call(
            "InitiateAuth",
            json!({"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": params}),
        )
        .await
        .expect("signed in");
    r["AuthenticationResult"]["RefreshToken"]
        .as_str()
        .expect("refresh token")
        .to_owned()
}

async fn create(h: &Harness, username: &str) {
    h.idp
        .create_user(
            "main",
            username,
            Default::default(),
            Some((&Secret::new("password1"), true)),
        )
        .await
        .expect("user");
}

#[tokio::test]
async fn a_public_client_gets_new_tokens_and_the_refresh_token_rotates() {
    let h = harness().await;
    create(&h, "erin").await;
    let refresh = refresh_token_of(&h, "web", "erin", json!({})).await;
    let r = h
        .call(
            "GetTokensFromRefreshToken",
            json!({"ClientId": "web", "RefreshToken": refresh}),
        )
        .await
        .expect("refreshed");
    let result = &r["AuthenticationResult"];
    assert!(
        result["AccessToken"].is_string() && result["IdToken"].is_string(),
        "{r}"
    );
    assert_eq!(result["TokenType"], "Bearer");
    assert!(r.get("ChallengeParameters").is_none(), "{r}");
    let next = result["RefreshToken"].as_str().expect("rotated");
    assert_ne!(next, refresh);
    // the next one works; garbage does not
    h.call(
        "GetTokensFromRefreshToken",
        json!({"ClientId": "web", "RefreshToken": next}),
    )
    .await
    .expect("refreshed again");
    let r = h
        .call(
            "GetTokensFromRefreshToken",
            json!({"ClientId": "web", "RefreshToken": "not-a-token"}),
        )
        .await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    let r = h
        .call("GetTokensFromRefreshToken", json!({"ClientId": "web"}))
        .await;
    assert_eq!(error_name(r), "InvalidParameterException");
}

#[tokio::test]
async fn a_client_with_a_secret_sends_the_secret() {
    let h = harness().await;
    create(&h, "fred").await;
    let refresh = refresh_token_of(
        &h,
        "confidential",
        "fred",
        json!({"SECRET_HASH": secret_hash("fred", "confidential")}),
    )
    .await;
    for wrong in [json!(null), json!("not-the-secret")] {
        let r = h
            .call(
                "GetTokensFromRefreshToken",
                json!({"ClientId": "confidential", "RefreshToken": refresh, "ClientSecret": wrong}),
            )
            .await;
        assert_eq!(error_name(r), "NotAuthorizedException", "secret {wrong}");
    }
    let r = h
        .call(
            "GetTokensFromRefreshToken",
            json!({"ClientId": "confidential", "RefreshToken": refresh, "ClientSecret": SECRET}),
        )
        .await
        .expect("refreshed");
    assert!(r["AuthenticationResult"]["AccessToken"].is_string(), "{r}");
}
