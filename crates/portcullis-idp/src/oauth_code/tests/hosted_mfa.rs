//! The hosted sign-in page with a TOTP software token: the code form after the password, a
//! wrong and a reused code shown as errors, the form's CSRF check, too many wrong codes, and a
//! pool with `mfa = "on"` whose user has no token.

use super::*;
use crate::mfa::TotpCheck;
use crate::mfa::totp::{self, TotpSecret};

fn mfa_config(mode: &str) -> Config {
    config_from(&CONFIG.replace(
        "[pools.main]\n",
        &format!("[pools.main]\nmfa = \"{mode}\"\n"),
    ))
}

fn code(e: &Env, secret: &TotpSecret, step: i64) -> String {
    let now = e.idp.options().clock.now();
    String::from_utf8(totp::code_at(secret, totp::step_at(now) + step).to_vec()).expect("ascii")
}

fn next_step(e: &Env) {
    let clock = &e.idp.options().clock;
    clock.set(clock.now() + totp::STEP_SECS);
}

/// Gives alice an enabled token; its secret.
async fn alice_token(e: &Env) -> TotpSecret {
    let secret = e
        .idp
        .associate_totp("main", "alice")
        .await
        .expect("pending");
    let check = e
        .idp
        .verify_totp("main", "alice", &code(e, &secret, 0), true)
        .await
        .expect("verified");
    assert_eq!(check, TotpCheck::Valid);
    next_step(e);
    secret
}

async fn send_code(e: &Env, page: &Page, code: &str) -> reqwest::Response {
    post_login(
        e,
        Some(&page.cookie),
        &[
            ("csrf", &page.csrf),
            ("request_id", &page.request_id),
            ("totp_code", code),
        ],
    )
    .await
}

#[tokio::test]
async fn a_user_with_a_token_enters_its_code_after_the_password() {
    let e = env_from(mfa_config("optional")).await;
    let secret = alice_token(&e).await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("page");
    assert!(html.contains("name=\"totp_code\""), "{html}");
    assert!(html.contains("autocomplete=\"one-time-code\""), "{html}");
    assert_eq!(hidden(&html, "csrf"), page.csrf);
    // a code without the CSRF cookie is refused
    let r = post_login(
        &e,
        None,
        &[
            ("csrf", &page.csrf),
            ("request_id", &page.request_id),
            ("totp_code", &code(&e, &secret, 0)),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    let right = code(&e, &secret, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = send_code(&e, &page, wrong).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("page").contains("Incorrect code"));
    let r = send_code(&e, &page, &right).await;
    let code_value = code_of(&r, CALLBACK);
    assert!(!code_value.is_empty());

    // the same code in another sign-in is refused as used
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 200);
    let r = send_code(&e, &page, &right).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("page").contains("already used"));
    next_step(&e);
    let r = send_code(&e, &page, &code(&e, &secret, 0)).await;
    code_of(&r, CALLBACK);
}

#[tokio::test]
async fn a_code_form_needs_the_password_first_and_ends_after_five_wrong_codes() {
    let e = env_from(mfa_config("optional")).await;
    let secret = alice_token(&e).await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    // no password yet: a code alone is not a sign-in
    let r = send_code(&e, &page, &code(&e, &secret, 0)).await;
    assert_eq!(r.status(), 400);
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 200);
    let right = code(&e, &secret, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..4 {
        let r = send_code(&e, &page, wrong).await;
        assert_eq!(r.status(), 200);
    }
    let r = send_code(&e, &page, wrong).await;
    assert_eq!(r.status(), 400);
    let r = send_code(&e, &page, &right).await;
    assert_eq!(r.status(), 400, "the code step is over");
}

#[tokio::test]
async fn mfa_off_signs_in_without_a_code_and_mfa_on_without_a_token_is_turned_away() {
    let e = env_from(mfa_config("off")).await;
    alice_token(&e).await;
    sign_in(&e, "web", CALLBACK).await;
    let e = env_from(mfa_config("on")).await;
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = login(&e, &page, "alice", "password1").await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.expect("page").contains("authenticator app"));
}
