//! What the hosted sign-in page shows a person: the application's display name and a way back
//! to it that tells the application the user declined.

use super::*;

#[tokio::test]
async fn the_page_names_the_app_by_its_display_name_else_its_client_id() {
    let e = env().await;
    let named = open_page(&e, &pkce_params("web", CALLBACK)).await;
    // escaped like everything the page shows
    assert!(
        named
            .html
            .contains("to continue to <strong>Portcullis &lt;chat&gt;</strong>"),
        "{}",
        named.html
    );
    assert!(!named.html.contains("<strong>web</strong>"));
    let mut params = pkce_params("webapp", APP_CALLBACK);
    params.retain(|(k, _)| *k != "scope");
    params.push(("scope", "openid email"));
    let unnamed = open_page(&e, &params).await;
    assert!(
        unnamed
            .html
            .contains("to continue to <strong>webapp</strong>"),
        "{}",
        unnamed.html
    );
    // a Cancel button that skips the required fields
    assert!(
        named
            .html
            .contains("name=\"cancel\" value=\"1\" class=\"secondary\" formnovalidate>Cancel"),
        "{}",
        named.html
    );
}

#[tokio::test]
async fn cancel_returns_access_denied_with_the_state_and_ends_the_request() {
    let e = env().await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = post_login(
        &e,
        Some(&page.cookie),
        &[
            ("csrf", &page.csrf),
            ("request_id", &page.request_id),
            ("cancel", "1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CALLBACK), "{location}");
    let url = url::Url::parse(&location).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"));
    assert!(!q.contains_key("code"), "{location}");
    // the request is over: signing in with it now fails
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn cancel_needs_the_form_csrf_token_like_sign_in() {
    let e = env().await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = post_login(
        &e,
        Some(&page.cookie),
        &[
            ("csrf", "x".repeat(43).as_str()),
            ("request_id", &page.request_id),
            ("cancel", "1"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    // the request survived the forged cancel
    let r = login(&e, &page, "alice", "password1").await;
    code_of(&r, CALLBACK);
}
