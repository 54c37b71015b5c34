//! SRP sign-in over the JSON API (`USER_SRP_AUTH`, `PASSWORD_VERIFIER`), with the client half
//! computed as Cognito's clients compute it ([`SrpClient`]).

use super::*;
use crate::srp::client_tests::SrpClient;
use crate::srp::format_timestamp;

/// The SRP pool name of `[pools.main]`: its id is `us-east-1_main`.
const POOL_NAME: &str = "main";

type CallResult = Result<Value, (u16, String, String)>;

/// A `PASSWORD_VERIFIER` challenge and the client that asked for it.
struct Challenge {
    client: SrpClient,
    params: Value,
}

impl Challenge {
    fn param(&self, name: &str) -> &str {
        self.params[name].as_str().expect("challenge parameter")
    }

    /// The answer with `password` at the time `at` (unix seconds), as a body for `client_id`.
    fn answer(&self, client_id: &str, password: &str, at: i64) -> Value {
        let timestamp =
            format_timestamp(chrono::DateTime::from_timestamp(at, 0).expect("time in range"));
        let user_id = self.param("USER_ID_FOR_SRP");
        let signature = self.client.signature(
            POOL_NAME,
            user_id,
            password,
            self.param("SALT"),
            self.param("SRP_B"),
            self.param("SECRET_BLOCK"),
            &timestamp,
        );
        json!({"ClientId": client_id, "ChallengeName": "PASSWORD_VERIFIER",
               "ChallengeResponses": {
                   "USERNAME": user_id,
                   "PASSWORD_CLAIM_SECRET_BLOCK": self.param("SECRET_BLOCK"),
                   "PASSWORD_CLAIM_SIGNATURE": signature,
                   "TIMESTAMP": timestamp}})
    }
}

impl Harness {
    /// `InitiateAuth` with `USER_SRP_AUTH` and the parameters `extra` (e.g. `SECRET_HASH`).
    async fn srp_start_with(
        &self,
        client_id: &str,
        user: &str,
        extra: Value,
    ) -> (SrpClient, CallResult) {
        let client = SrpClient::new();
        let mut params = json!({"USERNAME": user, "SRP_A": client.a_hex()});
        if let (Some(params), Value::Object(extra)) = (params.as_object_mut(), extra) {
            params.extend(extra);
        }
        let r = self
            .call(
                "InitiateAuth",
                json!({"ClientId": client_id, "AuthFlow": "USER_SRP_AUTH", "AuthParameters": params}),
            )
            .await;
        (client, r)
    }

    async fn srp_start(&self, client_id: &str, user: &str) -> Challenge {
        let (client, r) = self.srp_start_with(client_id, user, json!({})).await;
        let r = r.expect("PASSWORD_VERIFIER challenge");
        assert_eq!(r["ChallengeName"], "PASSWORD_VERIFIER", "{r}");
        Challenge {
            client,
            params: r["ChallengeParameters"].clone(),
        }
    }

    async fn srp_answer(&self, answer: Value) -> CallResult {
        self.call("RespondToAuthChallenge", answer).await
    }

    /// A whole SRP sign-in with the public client `web`.
    pub(super) async fn srp_login(&self, user: &str, password: &str) -> CallResult {
        let challenge = self.srp_start("web", user).await;
        self.srp_answer(challenge.answer("web", password, self.clock.now()))
            .await
    }

    async fn user_row(&self, username: &str) -> crate::store::UserRecord {
        self.idp
            .store()
            .get_user("main", username)
            .await
            .expect("store")
            .expect("user")
    }
}

pub(super) async fn with_user(h: &Harness, username: &str, password: &str, permanent: bool) {
    h.idp
        .create_user(
            "main",
            username,
            Default::default(),
            Some((&Secret::new(password), permanent)),
        )
        .await
        .expect("user created");
}

fn refused(r: CallResult) -> (String, String) {
    let (status, name, message) = r.expect_err("refused");
    assert_eq!(status, 400);
    (name, message)
}

fn bad_credentials() -> (String, String) {
    (
        "NotAuthorizedException".to_owned(),
        "Incorrect username or password.".to_owned(),
    )
}

#[tokio::test]
async fn srp_sign_in_issues_tokens_and_a_block_is_answered_once() {
    let h = harness().await;
    with_user(&h, "sam", "password1", true).await;
    let challenge = h.srp_start("web", "sam").await;
    let mut keys: Vec<&String> = challenge
        .params
        .as_object()
        .expect("parameters")
        .keys()
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "SALT",
            "SECRET_BLOCK",
            "SRP_B",
            "USERNAME",
            "USER_ID_FOR_SRP"
        ]
    );
    assert_eq!(challenge.param("USERNAME"), "sam");
    assert_eq!(challenge.param("USER_ID_FOR_SRP"), "sam");
    assert_eq!(challenge.param("SALT").len(), 32);
    assert!(challenge.param("SRP_B").len() > 700);
    let answer = challenge.answer("web", "password1", h.clock.now());
    let r = h.srp_answer(answer.clone()).await.expect("signed in");
    let result = &r["AuthenticationResult"];
    assert!(result["AccessToken"].is_string() && result["RefreshToken"].is_string());
    let id = claims(result["IdToken"].as_str().expect("id token"));
    assert_eq!(id["cognito:username"], "sam");
    assert_eq!(id["aud"], "web");
    // the same answer again: refused, the block was used
    assert_eq!(refused(h.srp_answer(answer).await), bad_credentials());
    assert_eq!(h.user_row("sam").await.failed_attempts, 0);
}

#[tokio::test]
async fn parallel_answers_with_one_block_sign_in_once() {
    let h = harness().await;
    with_user(&h, "pat", "password1", true).await;
    let challenge = h.srp_start("web", "pat").await;
    let answer = challenge.answer("web", "password1", h.clock.now());
    let (a, b) = tokio::join!(h.srp_answer(answer.clone()), h.srp_answer(answer));
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
}

#[tokio::test]
async fn wrong_password_counts_toward_the_lockout() {
    let h = harness().await;
    with_user(&h, "wes", "password1", true).await;
    assert_eq!(
        refused(h.srp_login("wes", "password2").await),
        bad_credentials()
    );
    assert_eq!(h.user_row("wes").await.failed_attempts, 1);
    for _ in 0..4 {
        refused(h.srp_login("wes", "password2").await);
    }
    let user = h.user_row("wes").await;
    assert_eq!(user.failed_attempts, 5);
    assert!(user.locked_until.is_some());
    // locked: even the right password is refused, as USER_PASSWORD_AUTH would be
    let mut user = user;
    user.locked_until = Some(crate::unix_now() + 600);
    h.idp.store().update_user(&user).await.expect("store");
    let (name, message) = refused(h.srp_login("wes", "password1").await);
    assert_eq!(name, "NotAuthorizedException");
    assert_eq!(message, "Password attempts exceeded");
    user.locked_until = Some(crate::unix_now() - 1);
    h.idp.store().update_user(&user).await.expect("store");
    h.srp_login("wes", "password1").await.expect("signed in");
    assert_eq!(h.user_row("wes").await.failed_attempts, 0);
}

#[tokio::test]
async fn stale_or_future_timestamps_and_expired_blocks_are_refused() {
    let h = harness().await;
    with_user(&h, "tim", "password1", true).await;
    let challenge = h.srp_start("web", "tim").await;
    let now = h.clock.now();
    for at in [now - 600, now + 600] {
        assert_eq!(
            refused(h.srp_answer(challenge.answer("web", "password1", at)).await),
            bad_credentials()
        );
    }
    // a timestamp in the clients' format only (zero-padded day, wrong weekday, ISO)
    let mut answer = challenge.answer("web", "password1", now);
    answer["ChallengeResponses"]["TIMESTAMP"] = json!("2025-12-02T05:04:09Z");
    assert_eq!(refused(h.srp_answer(answer).await), bad_credentials());
    // these were not guesses: the user is not counted, and the block still answers
    assert_eq!(h.user_row("tim").await.failed_attempts, 0);
    h.srp_answer(challenge.answer("web", "password1", now + 240))
        .await
        .expect("within the window");
    // a block lives five minutes
    let challenge = h.srp_start("web", "tim").await;
    h.clock.advance(301);
    assert_eq!(
        refused(
            h.srp_answer(challenge.answer("web", "password1", h.clock.now()))
                .await
        ),
        bad_credentials()
    );
}

#[tokio::test]
async fn tampered_foreign_or_misdirected_blocks_are_refused() {
    let h = harness().await;
    with_user(&h, "tara", "password1", true).await;
    with_user(&h, "uma", "password1", true).await;
    let challenge = h.srp_start("web", "tara").await;
    let now = h.clock.now();
    // a flipped bit in the block (the client signs what it received)
    let mut tampered = challenge.params.clone();
    let mut block = STANDARD
        .decode(challenge.param("SECRET_BLOCK"))
        .expect("base64");
    block[40] ^= 1;
    tampered["SECRET_BLOCK"] = json!(STANDARD.encode(&block));
    let bad = Challenge {
        client: SrpClient::new(),
        params: tampered,
    };
    assert_eq!(
        refused(h.srp_answer(bad.answer("web", "password1", now)).await),
        bad_credentials()
    );
    // not base64, empty
    let mut answer = challenge.answer("web", "password1", now);
    answer["ChallengeResponses"]["PASSWORD_CLAIM_SECRET_BLOCK"] = json!("%%%");
    assert_eq!(refused(h.srp_answer(answer).await), bad_credentials());
    // a block sealed by another store (another pepper)
    let other = harness().await;
    with_user(&other, "tara", "password1", true).await;
    let foreign = other.srp_start("web", "tara").await;
    assert_eq!(
        refused(h.srp_answer(foreign.answer("web", "password1", now)).await),
        bad_credentials()
    );
    // tara's block answered as uma
    let mut answer = challenge.answer("web", "password1", now);
    answer["ChallengeResponses"]["USERNAME"] = json!("uma");
    assert_eq!(refused(h.srp_answer(answer).await), bad_credentials());
    // a block of the client `web` answered through another client of the pool
    let mut answer = challenge.answer("web", "password1", now);
    answer["ClientId"] = json!("confidential");
    answer["ChallengeResponses"]["SECRET_HASH"] = json!(secret_hash("tara", "confidential"));
    assert_eq!(refused(h.srp_answer(answer).await), bad_credentials());
    // none of these counted, and the genuine answer still works
    assert_eq!(h.user_row("tara").await.failed_attempts, 0);
    h.srp_answer(challenge.answer("web", "password1", now))
        .await
        .expect("signed in");
}

#[tokio::test]
async fn unknown_users_get_a_challenge_of_the_same_shape_and_fail_like_a_wrong_password() {
    let h = harness().await;
    with_user(&h, "kim", "password1", true).await;
    let known = h.srp_start("web", "kim").await;
    // a name as long as kim's: the block carries the name
    let unknown = h.srp_start("web", "zed").await;
    let keys = |c: &Challenge| -> Vec<String> {
        let mut keys: Vec<String> = c
            .params
            .as_object()
            .expect("parameters")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&known), keys(&unknown));
    assert_eq!(known.param("SALT").len(), unknown.param("SALT").len());
    // A and B are minimal: their lengths vary a little with their values
    let len = |c: &Challenge, name: &str| c.param(name).len();
    assert!(len(&known, "SECRET_BLOCK").abs_diff(len(&unknown, "SECRET_BLOCK")) <= 4);
    assert!(len(&known, "SRP_B").abs_diff(len(&unknown, "SRP_B")) <= 4);
    assert_eq!(unknown.param("USER_ID_FOR_SRP"), "zed");
    assert_eq!(unknown.param("USERNAME"), "zed");
    // the same salt for the same name every time, another for another name
    let again = h.srp_start("web", "zed").await;
    assert_eq!(unknown.param("SALT"), again.param("SALT"));
    assert_ne!(unknown.param("SRP_B"), again.param("SRP_B"));
    let other = h.srp_start("web", "zed2").await;
    assert_ne!(unknown.param("SALT"), other.param("SALT"));
    let now = h.clock.now();
    assert_eq!(
        refused(h.srp_answer(unknown.answer("web", "password1", now)).await),
        bad_credentials()
    );
    // counted like a real user: locked after five failures
    for _ in 0..4 {
        refused(h.srp_login("zed", "password1").await);
    }
    let (_, message) = refused(h.srp_login("zed", "password1").await);
    assert_eq!(message, "Password attempts exceeded");
}

#[tokio::test]
async fn a_user_from_before_verifiers_gets_one_at_the_next_password_sign_in() {
    let h = harness().await;
    with_user(&h, "olga", "password1", true).await;
    let mut user = h.user_row("olga").await;
    assert!(user.srp.is_some());
    user.srp = None;
    h.idp.store().update_user(&user).await.expect("store");
    // without a verifier: a (fake) challenge, which the right password cannot answer
    assert_eq!(
        refused(h.srp_login("olga", "password1").await),
        bad_credentials()
    );
    h.login("web", "olga", "password1")
        .await
        .expect("signed in");
    let user = h.user_row("olga").await;
    assert!(user.srp.is_some());
    assert_eq!(user.failed_attempts, 0);
    h.srp_login("olga", "password1").await.expect("signed in");
}

#[tokio::test]
async fn new_passwords_get_new_verifiers() {
    let h = harness().await;
    confirmed_user(&h, "cy").await;
    let r = h.srp_login("cy", "password1").await.expect("signed in");
    let access = r["AuthenticationResult"]["AccessToken"]
        .as_str()
        .expect("access token")
        .to_owned();
    h.call(
        "ChangePassword",
        json!({"AccessToken": access, "PreviousPassword": "password1", "ProposedPassword": "password2"}),
    )
    .await
    .expect("changed");
    refused(h.srp_login("cy", "password1").await);
    h.srp_login("cy", "password2").await.expect("signed in");
    // reset with a code
    h.call("ForgotPassword", forgot("cy"))
        .await
        .expect("code sent");
    let code = h.last_code("cy", CodePurpose::ForgotPassword);
    let mut confirm = confirm_forgot("cy", &code);
    confirm["Password"] = json!("password3");
    h.call("ConfirmForgotPassword", confirm)
        .await
        .expect("reset");
    refused(h.srp_login("cy", "password2").await);
    h.srp_login("cy", "password3").await.expect("signed in");
    // an administrator's new password
    h.idp
        .set_password("main", "cy", &Secret::new("password4"), true)
        .await
        .expect("set");
    h.srp_login("cy", "password4").await.expect("signed in");
}

#[tokio::test]
async fn a_temporary_password_leads_to_new_password_required() {
    let h = harness().await;
    with_user(&h, "fay", "temporary1", false).await;
    let r = h.srp_login("fay", "temporary1").await.expect("challenge");
    assert_eq!(r["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    let session = r["Session"].as_str().expect("session");
    h.call(
        "RespondToAuthChallenge",
        json!({"ClientId": "web", "ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": session,
               "ChallengeResponses": {"USERNAME": "fay", "NEW_PASSWORD": "permanent1"}}),
    )
    .await
    .expect("new password");
    h.srp_login("fay", "permanent1").await.expect("signed in");
    // a disabled user proves the password and is refused as USER_PASSWORD_AUTH refuses
    h.idp.disable_user("main", "fay").await.expect("disabled");
    let (name, message) = refused(h.srp_login("fay", "permanent1").await);
    assert_eq!(
        (name.as_str(), message.as_str()),
        ("NotAuthorizedException", "User is disabled.")
    );
}

#[tokio::test]
async fn clients_with_a_secret_need_secret_hash() {
    let h = harness().await;
    with_user(&h, "sol", "password1", true).await;
    let (_, r) = h.srp_start_with("confidential", "sol", json!({})).await;
    assert_eq!(error_name(r), "NotAuthorizedException");
    let hash = json!({"SECRET_HASH": secret_hash("sol", "confidential")});
    let (client, r) = h.srp_start_with("confidential", "sol", hash).await;
    let challenge = Challenge {
        client,
        params: r.expect("challenge")["ChallengeParameters"].clone(),
    };
    let mut answer = challenge.answer("confidential", "password1", h.clock.now());
    let without = answer.clone();
    assert_eq!(
        error_name(h.srp_answer(without).await),
        "NotAuthorizedException"
    );
    answer["ChallengeResponses"]["SECRET_HASH"] = json!(secret_hash("sol", "confidential"));
    h.srp_answer(answer).await.expect("signed in");
}

#[tokio::test]
async fn flows_follow_the_clients_auth_flows() {
    let h = harness_with(
        "clients.password-only = { public = true, auth_flows = [\"USER_PASSWORD_AUTH\"] }",
    )
    .await;
    with_user(&h, "flo", "password1", true).await;
    let (_, r) = h.srp_start_with("password-only", "flo", json!({})).await;
    let (name, message) = refused(r);
    assert_eq!(name, "InvalidParameterException");
    assert_eq!(message, "USER_SRP_AUTH flow not enabled for this client");
    h.login("password-only", "flo", "password1")
        .await
        .expect("signed in");
    // a confidential client without the password grant: SRP only (the default)
    let hash = json!({"SECRET_HASH": STANDARD.encode(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, b"m2m-secret-0123456789abcdef"),
        b"flom2m",
    ).as_ref())});
    let (_, r) = h.srp_start_with("m2m", "flo", hash).await;
    assert_eq!(r.expect("challenge")["ChallengeName"], "PASSWORD_VERIFIER");
}

#[tokio::test]
async fn oversized_or_malformed_parameters_are_refused() {
    let h = harness().await;
    with_user(&h, "max", "password1", true).await;
    let start = |a: &str| {
        json!({"ClientId": "web", "AuthFlow": "USER_SRP_AUTH",
               "AuthParameters": {"USERNAME": "max", "SRP_A": a}})
    };
    for a in [
        "0".repeat(2000),
        "xyz".to_owned(),
        "0".to_owned(),
        String::new(),
    ] {
        let r = h.call("InitiateAuth", start(&a)).await;
        assert_eq!(error_name(r), "InvalidParameterException", "{a:.20}");
    }
    let challenge = h.srp_start("web", "max").await;
    let answer = challenge.answer("web", "password1", h.clock.now());
    for (field, value) in [
        ("PASSWORD_CLAIM_SECRET_BLOCK", "A".repeat(5000)),
        ("PASSWORD_CLAIM_SIGNATURE", "A".repeat(200)),
        ("TIMESTAMP", "x".repeat(100)),
        ("USERNAME", "u".repeat(600)),
    ] {
        let mut bad = answer.clone();
        bad["ChallengeResponses"][field] = json!(value);
        let r = h.srp_answer(bad).await;
        assert_eq!(error_name(r), "InvalidParameterException", "{field}");
    }
    h.srp_answer(answer).await.expect("signed in");
}
