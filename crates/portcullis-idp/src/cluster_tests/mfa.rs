//! TOTP MFA across two nodes sharing the store: a token verified on one node answers a challenge
//! started on the other, the answer cannot be replayed on the first, and two nodes answering
//! with one code at the same moment let exactly one sign-in through.

use super::*;
use crate::mfa::TotpCheck;
use crate::mfa::totp::{self, TotpSecret};

/// A node whose pool has `mfa = "optional"`, on the provider clock `clock` (shared by the
/// nodes of a test, so they agree on the time step).
async fn mfa_node(url: &str, clock: &crate::Clock) -> Node {
    let source = CONFIG.replace("[pools.main]\n", "[pools.main]\nmfa = \"optional\"\n");
    let config: Config =
        portcullis_config::load_str(&source, "test.toml", &|_| None).expect("configuration");
    let store = store::open(url).await.expect("store");
    let idp = IdentityProvider::with_store(
        &config,
        store,
        IdpOptions {
            hash_concurrency: 1,
            clock: clock.clone(),
            ..IdpOptions::default()
        },
    )
    .await
    .expect("provider");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = cognito_router_with(Arc::clone(&idp), CognitoOptions::default());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    Node {
        idp,
        base: String::new(),
        api: format!("http://{addr}/"),
        codes: Arc::default(),
    }
}

fn code(clock: &crate::Clock, secret: &TotpSecret, step: i64) -> String {
    let digits = totp::code_at(secret, totp::step_at(clock.now()) + step);
    String::from_utf8(digits.to_vec()).expect("ascii")
}

async fn challenge(node: &Node, user: &str) -> String {
    let (status, r) = node
        .call(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": user, "PASSWORD": "Password1"}}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["ChallengeName"], "SOFTWARE_TOKEN_MFA", "{r}");
    r["Session"].as_str().expect("session").to_owned()
}

fn answer(session: &str, user: &str, code: &str) -> Value {
    json!({"ClientId": "web", "ChallengeName": "SOFTWARE_TOKEN_MFA", "Session": session,
           "ChallengeResponses": {"USERNAME": user, "SOFTWARE_TOKEN_MFA_CODE": code}})
}

async fn totp_across_nodes(url: &str) {
    let clock = crate::Clock::fixed(crate::unix_now());
    let a = mfa_node(url, &clock).await;
    let b = mfa_node(url, &clock).await;
    // the signing keys exist: the clock may stand at the real time from now on
    clock.set(crate::unix_now());
    user(&a, "ivan", "Password1", true).await;
    let secret = a.idp.associate_totp("main", "ivan").await.expect("pending");
    let check = b
        .idp
        .verify_totp("main", "ivan", &code(&clock, &secret, 0), true)
        .await
        .expect("verified on the other node");
    assert_eq!(check, TotpCheck::Valid);
    clock.set(clock.now() + totp::STEP_SECS);

    // started on A, answered on B, replayed on A
    let session = challenge(&a, "ivan").await;
    let right = answer(&session, "ivan", &code(&clock, &secret, 0));
    let (status, done) = b.call("RespondToAuthChallenge", right.clone()).await;
    assert_eq!(status, 200, "{done}");
    assert!(done["AuthenticationResult"]["AccessToken"].is_string());
    let (status, replay) = a.call("RespondToAuthChallenge", right).await;
    assert_eq!(status, 400, "{replay}");

    // one code answered on both nodes at once, many times: one sign-in each time
    for _ in 0..5 {
        clock.set(clock.now() + totp::STEP_SECS);
        let on_a = challenge(&a, "ivan").await;
        let on_b = challenge(&b, "ivan").await;
        let now_code = code(&clock, &secret, 0);
        let (ra, rb) = tokio::join!(
            a.call("RespondToAuthChallenge", answer(&on_a, "ivan", &now_code)),
            b.call("RespondToAuthChallenge", answer(&on_b, "ivan", &now_code)),
        );
        let won = [&ra, &rb]
            .iter()
            .filter(|(status, _)| *status == 200)
            .count();
        assert_eq!(won, 1, "{ra:?} {rb:?}");
    }
}

#[tokio::test]
async fn totp_challenges_and_codes_are_shared_by_nodes_on_a_sqlite_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    totp_across_nodes(&url).await;
}

#[tokio::test]
async fn totp_challenges_and_codes_are_shared_by_nodes_on_postgres() {
    let Some(pg) =
        TempPostgres::start("totp_challenges_and_codes_are_shared_by_nodes_on_postgres").await
    else {
        return;
    };
    totp_across_nodes(&pg.url).await;
}
