//! TOTP MFA over the JSON API: a token associated, verified and enabled; sign-in with its
//! codes (right, wrong, reused, out of the window, two at once); `MFA_SETUP` in a pool with
//! `mfa = "on"`; a pool with `mfa = "off"`; SRP and `NEW_PASSWORD_REQUIRED` followed by the
//! code. The provider's clock is fixed (near the real time, so tokens verify) so each test
//! decides the time step.

use super::srp::with_user;
use super::*;
use crate::mfa::totp::{self, TotpSecret};

type CallResult = Result<Value, (u16, String, String)>;

/// A harness whose `[pools.main]` has `mfa = mode`, with the provider's clock fixed (at the
/// real time once the signing keys exist), returned to move it.
async fn mfa_harness(mode: &str) -> (Harness, crate::Clock) {
    let idp_clock = crate::Clock::fixed(crate::unix_now());
    let idp = IdentityProvider::open_with(
        &config_with(&format!("mfa = \"{mode}\"")),
        IdpOptions {
            hash_concurrency: 1,
            clock: idp_clock.clone(),
            ..IdpOptions::default()
        },
    )
    .await
    .expect("provider");
    idp_clock.set(crate::unix_now());
    let codes: Arc<Mutex<Vec<CodeDelivery>>> = Arc::default();
    let options = CognitoOptions {
        clock: Clock::manual(),
        ..CognitoOptions::default()
    };
    let clock = options.clock.clone();
    let app = cognito_router_with(idp.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (
        Harness {
            addr,
            idp,
            codes,
            clock,
        },
        idp_clock,
    )
}

/// The code of `secret` at `step` steps from the clock's.
fn code(secret: &TotpSecret, clock: &crate::Clock, step: i64) -> String {
    let digits = totp::code_at(secret, totp::step_at(clock.now()) + step);
    String::from_utf8(digits.to_vec()).expect("ascii")
}

fn secret_of(answer: &Value) -> TotpSecret {
    let text = answer["SecretCode"].as_str().expect("SecretCode");
    let bytes = totp::base32_decode(text).expect("base32");
    TotpSecret(bytes.try_into().expect("160 bits"))
}

fn access_token(r: &Value) -> String {
    r["AuthenticationResult"]["AccessToken"]
        .as_str()
        .expect("access token")
        .to_owned()
}

fn refused(r: CallResult) -> (String, String) {
    let (status, name, message) = r.expect_err("refused");
    assert_eq!(status, 400);
    (name, message)
}

fn mfa_answer(client_id: &str, user: &str, session: &str, code: &str) -> Value {
    json!({"ClientId": client_id, "ChallengeName": "SOFTWARE_TOKEN_MFA", "Session": session,
           "ChallengeResponses": {"USERNAME": user, "SOFTWARE_TOKEN_MFA_CODE": code}})
}

impl Harness {
    /// A confirmed user with an enabled token (through the API); its secret.
    async fn user_with_token(&self, clock: &crate::Clock, user: &str) -> TotpSecret {
        with_user(self, user, "password1", true).await;
        let r = self
            .login("web", user, "password1")
            .await
            .expect("signed in");
        let token = access_token(&r);
        let r = self
            .call("AssociateSoftwareToken", json!({"AccessToken": token}))
            .await
            .expect("associated");
        let secret = secret_of(&r);
        let r = self
            .call(
                "VerifySoftwareToken",
                json!({"AccessToken": token, "UserCode": code(&secret, clock, 0),
                       "FriendlyDeviceName": "phone"}),
            )
            .await
            .expect("verified");
        assert_eq!(r, json!({"Status": "SUCCESS"}));
        self.call(
            "SetUserMFAPreference",
            json!({"AccessToken": token,
                   "SoftwareTokenMfaSettings": {"Enabled": true, "PreferredMfa": true}}),
        )
        .await
        .expect("enabled");
        secret
    }

    /// A password sign-in that meets `SOFTWARE_TOKEN_MFA`: its session.
    async fn mfa_challenge(&self, user: &str) -> String {
        let r = self
            .login("web", user, "password1")
            .await
            .expect("challenge");
        assert_eq!(r["ChallengeName"], "SOFTWARE_TOKEN_MFA", "{r}");
        assert!(r.get("AuthenticationResult").is_none());
        r["Session"].as_str().expect("session").to_owned()
    }
}

#[tokio::test]
async fn associate_verify_enable_then_sign_in_with_the_code() {
    let (h, clock) = mfa_harness("optional").await;
    with_user(&h, "alice", "password1", true).await;
    let r = h.login("web", "alice", "password1").await.expect("tokens");
    let token = access_token(&r);
    // no token yet: GetUser lists no factor
    let user = h
        .call("GetUser", json!({"AccessToken": token}))
        .await
        .expect("user");
    assert!(user.get("UserMFASettingList").is_none(), "{user}");
    // enabling before verifying is refused
    let r = h
        .call(
            "SetUserMFAPreference",
            json!({"AccessToken": token, "SoftwareTokenMfaSettings": {"Enabled": true}}),
        )
        .await;
    assert_eq!(refused(r).0, "InvalidParameterException");
    let r = h
        .call("AssociateSoftwareToken", json!({"AccessToken": token}))
        .await
        .expect("associated");
    let text = r["SecretCode"].as_str().expect("SecretCode");
    assert_eq!(text.len(), 32, "160 bits in base32");
    assert!(r.get("Session").is_none());
    let secret = secret_of(&r);
    // the secret is sealed in the store
    let row = h
        .idp
        .user_mfa("main", "alice")
        .await
        .expect("store")
        .expect("row");
    let pending = row.pending_secret.expect("pending");
    assert!(!pending.windows(totp::SECRET_LEN).any(|w| w == secret.0));
    assert!(row.secret.is_none());
    // a wrong code does not verify it
    let wrong = if code(&secret, &clock, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = h
        .call(
            "VerifySoftwareToken",
            json!({"AccessToken": token, "UserCode": wrong}),
        )
        .await;
    assert_eq!(refused(r).0, "EnableSoftwareTokenMFAException");
    let r = h
        .call(
            "VerifySoftwareToken",
            json!({"AccessToken": token, "UserCode": code(&secret, &clock, 0)}),
        )
        .await
        .expect("verified");
    assert_eq!(r, json!({"Status": "SUCCESS"}));
    // verified but not enabled: optional pools sign in without a code
    h.login("web", "alice", "password1")
        .await
        .expect("tokens")["AuthenticationResult"]["AccessToken"]
        .as_str()
        .expect("no challenge yet");
    // SMS cannot be enabled
    let r = h
        .call(
            "SetUserMFAPreference",
            json!({"AccessToken": token, "SMSMfaSettings": {"Enabled": true}}),
        )
        .await;
    assert_eq!(refused(r).0, "InvalidParameterException");
    h.call(
        "SetUserMFAPreference",
        json!({"AccessToken": token,
               "SMSMfaSettings": {"Enabled": false},
               "SoftwareTokenMfaSettings": {"Enabled": true, "PreferredMfa": true}}),
    )
    .await
    .expect("enabled");
    let user = h
        .call("GetUser", json!({"AccessToken": token}))
        .await
        .expect("user");
    assert_eq!(user["UserMFASettingList"], json!(["SOFTWARE_TOKEN_MFA"]));
    assert_eq!(user["PreferredMfaSetting"], "SOFTWARE_TOKEN_MFA");

    // the next sign-in meets the code; the verification spent this step, so the next one
    clock.set(clock.now() + totp::STEP_SECS);
    let session = h.mfa_challenge("alice").await;
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "alice", &session, &code(&secret, &clock, 0)),
        )
        .await
        .expect("tokens");
    let access = access_token(&r);
    assert_eq!(claims(&access)["username"], "alice");
    assert!(r["AuthenticationResult"]["RefreshToken"].is_string());
    // the session is spent
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "alice", &session, &code(&secret, &clock, 1)),
        )
        .await;
    assert_eq!(
        refused(r),
        (
            "NotAuthorizedException".to_owned(),
            "Invalid session for the user.".to_owned()
        )
    );
    // disabling turns the challenge off again
    h.call(
        "SetUserMFAPreference",
        json!({"AccessToken": access, "SoftwareTokenMfaSettings": {"Enabled": false}}),
    )
    .await
    .expect("disabled");
    assert!(
        h.login("web", "alice", "password1").await.expect("tokens")["AuthenticationResult"]
            .is_object()
    );
}

#[tokio::test]
async fn wrong_reused_and_stale_codes_are_refused_and_the_window_is_one_step() {
    let (h, clock) = mfa_harness("optional").await;
    let secret = h.user_with_token(&clock, "bob").await;
    clock.set(clock.now() + 10 * totp::STEP_SECS);
    // two steps ago, two steps ahead: refused
    for step in [-2, 2] {
        let session = h.mfa_challenge("bob").await;
        let r = h
            .call(
                "RespondToAuthChallenge",
                mfa_answer("web", "bob", &session, &code(&secret, &clock, step)),
            )
            .await;
        assert_eq!(refused(r).0, "CodeMismatchException", "step {step}");
    }
    // one step back is accepted
    let session = h.mfa_challenge("bob").await;
    h.call(
        "RespondToAuthChallenge",
        mfa_answer("web", "bob", &session, &code(&secret, &clock, -1)),
    )
    .await
    .expect("previous step accepted");
    // the current step is accepted, once
    let now_code = code(&secret, &clock, 0);
    let session = h.mfa_challenge("bob").await;
    h.call(
        "RespondToAuthChallenge",
        mfa_answer("web", "bob", &session, &now_code),
    )
    .await
    .expect("current step accepted");
    let session = h.mfa_challenge("bob").await;
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "bob", &session, &now_code),
        )
        .await;
    assert_eq!(refused(r).0, "CodeMismatchException", "reused code");
    // nor an earlier step once a later one was spent
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "bob", &session, &code(&secret, &clock, -1)),
        )
        .await;
    assert_eq!(refused(r).0, "CodeMismatchException");
    // the next step is accepted (same session: wrong answers left it open)
    h.call(
        "RespondToAuthChallenge",
        mfa_answer("web", "bob", &session, &code(&secret, &clock, 1)),
    )
    .await
    .expect("next step accepted");
}

#[tokio::test]
async fn a_new_token_replaces_the_old_one_even_within_a_spent_step() {
    let (h, clock) = mfa_harness("optional").await;
    let old = h.user_with_token(&clock, "ida").await;
    clock.set(clock.now() + totp::STEP_SECS);
    let session = h.mfa_challenge("ida").await;
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "ida", &session, &code(&old, &clock, 0)),
        )
        .await
        .expect("tokens");
    let token = access_token(&r);
    // a new phone, in the step just spent by the old token
    let r = h
        .call("AssociateSoftwareToken", json!({"AccessToken": token}))
        .await
        .expect("associated");
    let new = secret_of(&r);
    // until it is verified the old token stays in use
    let session = h.mfa_challenge("ida").await;
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "ida", &session, &code(&new, &clock, 1)),
        )
        .await;
    assert_eq!(refused(r).0, "CodeMismatchException");
    let r = h
        .call(
            "VerifySoftwareToken",
            json!({"AccessToken": token, "UserCode": code(&new, &clock, 0)}),
        )
        .await
        .expect("verified");
    assert_eq!(r["Status"], "SUCCESS");
    // the new token answers from the next step on, the old one no more
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "ida", &session, &code(&old, &clock, 1)),
        )
        .await;
    assert_eq!(refused(r).0, "CodeMismatchException");
    h.call(
        "RespondToAuthChallenge",
        mfa_answer("web", "ida", &session, &code(&new, &clock, 1)),
    )
    .await
    .expect("tokens with the new token");
}

#[tokio::test]
async fn five_wrong_codes_end_the_session_and_lock_the_codes() {
    let (h, clock) = mfa_harness("optional").await;
    let secret = h.user_with_token(&clock, "carol").await;
    clock.set(clock.now() + 10 * totp::STEP_SECS);
    let right = code(&secret, &clock, 0);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    let session = h.mfa_challenge("carol").await;
    for _ in 0..5 {
        let r = h
            .call(
                "RespondToAuthChallenge",
                mfa_answer("web", "carol", &session, wrong),
            )
            .await;
        assert_eq!(refused(r).0, "CodeMismatchException");
    }
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "carol", &session, &right),
        )
        .await;
    assert_eq!(
        refused(r),
        (
            "NotAuthorizedException".to_owned(),
            "Invalid session for the user.".to_owned()
        )
    );
    // the fifth wrong code locked the user's codes: a new session (the password is right) is
    // refused even with the right code until the lock passes
    let session = h.mfa_challenge("carol").await;
    let r = h
        .call(
            "RespondToAuthChallenge",
            mfa_answer("web", "carol", &session, &right),
        )
        .await;
    assert_eq!(
        refused(r),
        (
            "NotAuthorizedException".to_owned(),
            "Password attempts exceeded".to_owned()
        )
    );
    clock.set(clock.now() + 2);
    h.call(
        "RespondToAuthChallenge",
        mfa_answer("web", "carol", &session, &right),
    )
    .await
    .expect("after the lock");
}

#[tokio::test]
async fn parallel_answers_with_one_code_let_exactly_one_in() {
    let (h, clock) = mfa_harness("optional").await;
    let secret = h.user_with_token(&clock, "dave").await;
    clock.set(clock.now() + 10 * totp::STEP_SECS);
    let right = code(&secret, &clock, 0);
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(h.mfa_challenge("dave").await);
    }
    let h = Arc::new(h);
    let answers = sessions.into_iter().map(|session| {
        let h = Arc::clone(&h);
        let right = right.clone();
        tokio::spawn(async move {
            h.call(
                "RespondToAuthChallenge",
                mfa_answer("web", "dave", &session, &right),
            )
            .await
        })
    });
    let mut signed_in = 0;
    for answer in answers {
        match answer.await.expect("task") {
            Ok(r) => {
                assert!(r["AuthenticationResult"]["AccessToken"].is_string());
                signed_in += 1;
            }
            Err((_, name, _)) => assert!(
                name == "CodeMismatchException" || name == "NotAuthorizedException",
                "{name}"
            ),
        }
    }
    assert_eq!(signed_in, 1);
}

#[tokio::test]
async fn mfa_on_sets_a_token_up_during_sign_in() {
    let (h, clock) = mfa_harness("on").await;
    with_user(&h, "erin", "password1", true).await;
    let r = h
        .login("web", "erin", "password1")
        .await
        .expect("challenge");
    assert_eq!(r["ChallengeName"], "MFA_SETUP", "{r}");
    assert_eq!(
        r["ChallengeParameters"]["MFAS_CAN_SETUP"],
        "[\"SOFTWARE_TOKEN_MFA\"]"
    );
    let session = r["Session"].as_str().expect("session").to_owned();
    // answering before a token is verified is refused
    let finish = |session: &str| {
        json!({"ClientId": "web", "ChallengeName": "MFA_SETUP", "Session": session,
               "ChallengeResponses": {"USERNAME": "erin"}})
    };
    let r = h.call("RespondToAuthChallenge", finish(&session)).await;
    assert_eq!(refused(r).0, "InvalidParameterException");
    let r = h
        .call("AssociateSoftwareToken", json!({"Session": session}))
        .await
        .expect("associated");
    let session = r["Session"].as_str().expect("session").to_owned();
    let secret = secret_of(&r);
    let r = h
        .call(
            "VerifySoftwareToken",
            json!({"Session": session, "UserCode": code(&secret, &clock, 0)}),
        )
        .await
        .expect("verified");
    assert_eq!(r["Status"], "SUCCESS");
    let session = r["Session"].as_str().expect("session").to_owned();
    let r = h
        .call("RespondToAuthChallenge", finish(&session))
        .await
        .expect("tokens");
    let token = access_token(&r);
    let user = h
        .call("GetUser", json!({"AccessToken": token}))
        .await
        .expect("user");
    assert_eq!(user["UserMFASettingList"], json!(["SOFTWARE_TOKEN_MFA"]));
    // the setup session is spent; the next sign-in asks for a code
    let r = h.call("RespondToAuthChallenge", finish(&session)).await;
    assert_eq!(refused(r).0, "NotAuthorizedException");
    clock.set(clock.now() + totp::STEP_SECS);
    let session = h.mfa_challenge("erin").await;
    h.call(
        "RespondToAuthChallenge",
        mfa_answer("web", "erin", &session, &code(&secret, &clock, 0)),
    )
    .await
    .expect("tokens");
    // a session of one kind does not answer the other
    let session = h.mfa_challenge("erin").await;
    let r = h.call("RespondToAuthChallenge", finish(&session)).await;
    assert_eq!(refused(r).0, "NotAuthorizedException");
}

#[tokio::test]
async fn new_password_required_then_the_code() {
    let (h, clock) = mfa_harness("on").await;
    with_user(&h, "fay", "temporary1", false).await;
    let r = h
        .login("web", "fay", "temporary1")
        .await
        .expect("challenge");
    assert_eq!(r["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    let r = h
        .call(
            "RespondToAuthChallenge",
            json!({"ClientId": "web", "ChallengeName": "NEW_PASSWORD_REQUIRED",
                   "Session": r["Session"],
                   "ChallengeResponses": {"USERNAME": "fay", "NEW_PASSWORD": "password1"}}),
        )
        .await
        .expect("next challenge");
    assert_eq!(r["ChallengeName"], "MFA_SETUP", "{r}");
    let r = h
        .call("AssociateSoftwareToken", json!({"Session": r["Session"]}))
        .await
        .expect("associated");
    let secret = secret_of(&r);
    let r = h
        .call(
            "VerifySoftwareToken",
            json!({"Session": r["Session"], "UserCode": code(&secret, &clock, 0)}),
        )
        .await
        .expect("verified");
    h.call(
        "RespondToAuthChallenge",
        json!({"ClientId": "web", "ChallengeName": "MFA_SETUP", "Session": r["Session"],
               "ChallengeResponses": {"USERNAME": "fay"}}),
    )
    .await
    .expect("tokens");
    // a user with a token and a temporary password: new password, then the code
    h.idp
        .set_password("main", "fay", &Secret::new("temporary2"), false)
        .await
        .expect("temporary password");
    clock.set(clock.now() + totp::STEP_SECS);
    let r = h
        .login("web", "fay", "temporary2")
        .await
        .expect("challenge");
    assert_eq!(r["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    let r = h
        .call(
            "RespondToAuthChallenge",
            json!({"ClientId": "web", "ChallengeName": "NEW_PASSWORD_REQUIRED",
                   "Session": r["Session"],
                   "ChallengeResponses": {"USERNAME": "fay", "NEW_PASSWORD": "password2"}}),
        )
        .await
        .expect("next challenge");
    assert_eq!(r["ChallengeName"], "SOFTWARE_TOKEN_MFA", "{r}");
    let session = r["Session"].as_str().expect("session");
    h.call(
        "RespondToAuthChallenge",
        mfa_answer("web", "fay", session, &code(&secret, &clock, 0)),
    )
    .await
    .expect("tokens");
}

#[tokio::test]
async fn an_mfa_off_pool_ignores_tokens_and_refuses_new_ones() {
    let (h, clock) = mfa_harness("off").await;
    with_user(&h, "gus", "password1", true).await;
    let r = h.login("web", "gus", "password1").await.expect("tokens");
    let token = access_token(&r);
    let r = h
        .call("AssociateSoftwareToken", json!({"AccessToken": token}))
        .await;
    assert_eq!(refused(r).0, "SoftwareTokenMFANotFoundException");
    // a token enabled while the pool had MFA (written directly) is not asked for
    let secret = h.idp.associate_totp("main", "gus").await.expect("pending");
    let check = h
        .idp
        .verify_totp("main", "gus", &code(&secret, &clock, 0), true)
        .await
        .expect("verified");
    assert_eq!(check, crate::mfa::TotpCheck::Valid);
    let r = h.login("web", "gus", "password1").await.expect("tokens");
    assert!(r["AuthenticationResult"]["AccessToken"].is_string(), "{r}");
    let user = h
        .call("GetUser", json!({"AccessToken": token}))
        .await
        .expect("user");
    assert!(user.get("UserMFASettingList").is_none());
}

#[tokio::test]
async fn srp_sign_in_then_the_code_with_a_client_secret() {
    let (h, clock) = mfa_harness("optional").await;
    let secret = h.user_with_token(&clock, "hank").await;
    clock.set(clock.now() + totp::STEP_SECS);
    // SRP: the PASSWORD_VERIFIER answer meets the code
    let r = h.srp_login("hank", "password1").await.expect("challenge");
    assert_eq!(r["ChallengeName"], "SOFTWARE_TOKEN_MFA", "{r}");
    assert_eq!(r["ChallengeParameters"]["USER_ID_FOR_SRP"], "hank");
    let session = r["Session"].as_str().expect("session");
    // a session answered through another client is refused
    let mut other = mfa_answer("confidential", "hank", session, &code(&secret, &clock, 0));
    other["ChallengeResponses"]["SECRET_HASH"] = json!(secret_hash("hank", "confidential"));
    let r = h.call("RespondToAuthChallenge", other).await;
    assert_eq!(refused(r).0, "NotAuthorizedException");
    h.call(
        "RespondToAuthChallenge",
        mfa_answer("web", "hank", session, &code(&secret, &clock, 0)),
    )
    .await
    .expect("tokens");
    // a client with a secret: SECRET_HASH is required on the answer
    clock.set(clock.now() + totp::STEP_SECS);
    let r = h
        .call(
            "InitiateAuth",
            json!({"ClientId": "confidential", "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "hank", "PASSWORD": "password1",
                                      "SECRET_HASH": secret_hash("hank", "confidential")}}),
        )
        .await
        .expect("challenge");
    let session = r["Session"].as_str().expect("session");
    let answer = mfa_answer("confidential", "hank", session, &code(&secret, &clock, 0));
    let r = h.call("RespondToAuthChallenge", answer.clone()).await;
    assert_eq!(refused(r).0, "NotAuthorizedException");
    let mut answer = answer;
    answer["ChallengeResponses"]["SECRET_HASH"] = json!(secret_hash("hank", "confidential"));
    h.call("RespondToAuthChallenge", answer)
        .await
        .expect("tokens");
}
