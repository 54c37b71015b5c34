//! The pool's Lambda triggers over the JSON API, each a webhook served here on loopback that
//! records the events it receives and answers as a Lambda handler would.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;

use super::*;
use crate::triggers::{
    FunctionFailure, FunctionInvoker, Invocation, TriggerFunctions, TriggerSource,
};

type Events = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook answering each trigger path as a handler would.
async fn hook(
    State(events): State<Events>,
    Path(path): Path<String>,
    axum::Json(mut event): axum::Json<Value>,
) -> (StatusCode, String) {
    events
        .lock()
        .expect("events")
        .push((path.clone(), event.clone()));
    let user = event["userName"].as_str().unwrap_or_default().to_owned();
    let raise = |message: &str| {
        (
            StatusCode::BAD_REQUEST,
            json!({"errorMessage": message, "errorType": "Error"}).to_string(),
        )
    };
    match path.as_str() {
        "pre-sign-up" => {
            if event["request"]["validationData"]["invite"] == "none" {
                return raise("an invitation is required");
            }
            if user.starts_with("auto") {
                event["response"]["autoConfirmUser"] = json!(true);
                event["response"]["autoVerifyEmail"] = json!(true);
            }
        }
        "pre-auth" if user == "blocked" => return raise("User is blocked"),
        "pre-token" => {
            event["response"]["claimsOverrideDetails"] = json!({
                "claimsToAddOrOverride": {"custom_tier": "gold", "sub": "forged", "iss": "forged"},
                "claimsToSuppress": ["custom:team", "exp"],
                "groupOverrideDetails": {"groupsToOverride": ["gold-members"]},
            });
        }
        "fail" => return raise("the ledger is closed"),
        "slow" => tokio::time::sleep(Duration::from_secs(3)).await,
        "huge" => return (StatusCode::OK, "x".repeat(300 * 1024)),
        "garbage" => return (StatusCode::OK, "<html>not an event</html>".to_owned()),
        "broken" => return (StatusCode::INTERNAL_SERVER_ERROR, "oops".to_owned()),
        _ => {}
    }
    (StatusCode::OK, event.to_string())
}

/// Starts the webhook; its base URL and what it received.
async fn webhook() -> (String, Events) {
    let events: Events = Arc::default();
    let app = axum::Router::new()
        .route("/{path}", post(hook))
        .with_state(events.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), events)
}

fn received(events: &Events, path: &str) -> Vec<Value> {
    events
        .lock()
        .expect("events")
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, e)| e.clone())
        .collect()
}

/// A harness whose pool calls `triggers` (the inside of `triggers = { ... }`, `{url}` replaced
/// by the webhook's base URL).
async fn with_triggers(triggers: &str) -> (Harness, Events) {
    let (url, events) = webhook().await;
    let extra = format!(
        "groups = [\"admins\", \"gold-members\"]\ncustom_attributes = {{ team = {{}} }}\n\
         triggers = {{ {} }}",
        triggers.replace("{url}", &url)
    );
    (harness_with(&extra).await, events)
}

fn refused(r: Result<Value, (u16, String, String)>) -> (String, String) {
    let (status, name, message) = r.expect_err("refused");
    assert_eq!(status, 400, "{name}: {message}");
    (name, message)
}

#[tokio::test]
async fn pre_sign_up_confirms_verifies_or_refuses() {
    let (h, events) = with_triggers("pre_sign_up = { url = \"{url}/pre-sign-up\" }").await;
    let r = h
        .call(
            "SignUp",
            json!({"ClientId": "web", "Username": "autoann", "Password": "password1",
                   "UserAttributes": [{"Name": "email", "Value": "ann@example.com"}],
                   "ValidationData": [{"Name": "invite", "Value": "A-1"}],
                   "ClientMetadata": {"campaign": "spring"}}),
        )
        .await
        .expect("signed up");
    assert_eq!(r["UserConfirmed"], true);
    assert!(r.get("CodeDeliveryDetails").is_none());
    assert_eq!(h.delivered("autoann", CodePurpose::SignUp), 0);
    let event = received(&events, "pre-sign-up").pop().expect("event");
    assert_eq!(event["triggerSource"], "PreSignUp_SignUp");
    assert_eq!(event["userPoolId"], "us-east-1_main");
    assert_eq!(event["region"], "us-east-1");
    assert_eq!(event["callerContext"]["clientId"], "web");
    assert_eq!(
        event["request"],
        json!({"userAttributes": {"email": "ann@example.com"},
               "validationData": {"invite": "A-1"},
               "clientMetadata": {"campaign": "spring"}})
    );
    assert!(!event.to_string().contains("password1"));
    // confirmed without a code, the address verified
    let tokens = h
        .login("web", "autoann", "password1")
        .await
        .expect("signed in");
    let id = claims(
        tokens["AuthenticationResult"]["IdToken"]
            .as_str()
            .expect("id"),
    );
    assert_eq!(id["email_verified"], true);

    // the unchanged event: an unconfirmed user and a code
    let r = h
        .call(
            "SignUp",
            json!({"ClientId": "web", "Username": "bea", "Password": "password1"}),
        )
        .await
        .expect("signed up");
    assert_eq!(r["UserConfirmed"], false);
    assert_eq!(h.delivered("bea", CodePurpose::SignUp), 1);
    assert_eq!(
        received(&events, "pre-sign-up")[1]["request"]["validationData"],
        Value::Null
    );

    // a raised error: refused, and nothing left behind
    let (name, message) = refused(
        h.call(
            "SignUp",
            json!({"ClientId": "web", "Username": "cid", "Password": "password1",
                   "ValidationData": [{"Name": "invite", "Value": "none"}]}),
        )
        .await,
    );
    assert_eq!(name, "UserLambdaValidationException");
    assert_eq!(
        message,
        "PreSignUp failed with error an invitation is required."
    );
    assert!(
        h.idp
            .store()
            .get_user("main", "cid")
            .await
            .expect("store")
            .is_none()
    );
    assert_eq!(h.delivered("cid", CodePurpose::SignUp), 0);
}

#[tokio::test]
async fn post_confirmation_follows_confirmations_and_its_failure_is_answered() {
    let (h, events) =
        with_triggers("post_confirmation = { url = \"{url}/post-confirmation\" }").await;
    h.call(
        "SignUp",
        json!({"ClientId": "web", "Username": "dan", "Password": "password1",
               "UserAttributes": [{"Name": "email", "Value": "dan@example.com"}]}),
    )
    .await
    .expect("signed up");
    assert!(received(&events, "post-confirmation").is_empty());
    let code = h.last_code("dan", CodePurpose::SignUp);
    h.call(
        "ConfirmSignUp",
        json!({"ClientId": "web", "Username": "dan", "ConfirmationCode": code,
               "ClientMetadata": {"source": "mail"}}),
    )
    .await
    .expect("confirmed");
    let event = received(&events, "post-confirmation").pop().expect("event");
    assert_eq!(event["triggerSource"], "PostConfirmation_ConfirmSignUp");
    let attributes = &event["request"]["userAttributes"];
    assert_eq!(attributes["cognito:user_status"], "CONFIRMED");
    assert_eq!(attributes["email_verified"], "true");
    assert_eq!(attributes["email"], "dan@example.com");
    assert!(attributes["sub"].as_str().is_some_and(|s| s.len() == 36));
    assert_eq!(
        event["request"]["clientMetadata"],
        json!({"source": "mail"})
    );
    assert_eq!(event["response"], json!({}));

    h.call(
        "ForgotPassword",
        json!({"ClientId": "web", "Username": "dan"}),
    )
    .await
    .expect("code sent");
    let code = h.last_code("dan", CodePurpose::ForgotPassword);
    h.call(
        "ConfirmForgotPassword",
        json!({"ClientId": "web", "Username": "dan", "ConfirmationCode": code,
               "Password": "password2"}),
    )
    .await
    .expect("reset");
    let event = received(&events, "post-confirmation").pop().expect("event");
    assert_eq!(
        event["triggerSource"],
        "PostConfirmation_ConfirmForgotPassword"
    );

    // a failing trigger: the caller gets its error, the confirmation stays done
    let (h, _) = with_triggers("post_confirmation = { url = \"{url}/fail\" }").await;
    h.call(
        "SignUp",
        json!({"ClientId": "web", "Username": "eve", "Password": "password1"}),
    )
    .await
    .expect("signed up");
    let code = h.last_code("eve", CodePurpose::SignUp);
    let (name, message) = refused(
        h.call(
            "ConfirmSignUp",
            json!({"ClientId": "web", "Username": "eve", "ConfirmationCode": code}),
        )
        .await,
    );
    assert_eq!(name, "UserLambdaValidationException");
    assert_eq!(
        message,
        "PostConfirmation failed with error the ledger is closed."
    );
    h.login("web", "eve", "password1").await.expect("confirmed");
}

#[tokio::test]
async fn pre_authentication_refuses_after_the_password_and_only_real_users() {
    let (h, events) = with_triggers("pre_authentication = { url = \"{url}/pre-auth\" }").await;
    for name in ["blocked", "fay"] {
        h.idp
            .create_user(
                "main",
                name,
                BTreeMap::new(),
                Some((&Secret::new("password1".to_owned()), true)),
            )
            .await
            .expect("user");
    }
    h.login("web", "fay", "password1").await.expect("signed in");
    let event = received(&events, "pre-auth").pop().expect("event");
    assert_eq!(event["triggerSource"], "PreAuthentication_Authentication");
    assert_eq!(
        event["request"]["userAttributes"]["cognito:user_status"],
        "CONFIRMED"
    );

    let (name, message) = refused(h.login("web", "blocked", "password1").await);
    assert_eq!(name, "UserLambdaValidationException");
    assert_eq!(
        message,
        "PreAuthentication failed with error User is blocked."
    );
    let (name, message) = refused(h.srp_login("blocked", "password1").await);
    assert_eq!(
        (name.as_str(), message.as_str()),
        (
            "UserLambdaValidationException",
            "PreAuthentication failed with error User is blocked."
        )
    );
    // a wrong password or an unknown name never reaches the trigger
    let calls = received(&events, "pre-auth").len();
    let (name, _) = refused(h.login("web", "blocked", "wrong-password1").await);
    assert_eq!(name, "NotAuthorizedException");
    let (name, _) = refused(h.login("web", "nobody", "password1").await);
    assert_eq!(name, "NotAuthorizedException");
    assert_eq!(received(&events, "pre-auth").len(), calls);
}

#[tokio::test]
async fn pre_token_generation_shapes_every_session_it_mints() {
    let (h, events) = with_triggers("pre_token_generation = { url = \"{url}/pre-token\" }").await;
    let attributes = BTreeMap::from([("custom:team".to_owned(), "blue".to_owned())]);
    h.idp
        .create_user(
            "main",
            "gil",
            attributes,
            Some((&Secret::new("password1".to_owned()), true)),
        )
        .await
        .expect("user");
    h.idp
        .add_user_to_group("main", "gil", "admins")
        .await
        .expect("group");
    let r = h.login("web", "gil", "password1").await.expect("signed in");
    let result = &r["AuthenticationResult"];
    let id = claims(result["IdToken"].as_str().expect("id"));
    let access = claims(result["AccessToken"].as_str().expect("access"));
    assert_eq!(id["custom_tier"], "gold");
    assert!(id.get("custom:team").is_none());
    assert_eq!(id["cognito:groups"], json!(["gold-members"]));
    assert_eq!(access["cognito:groups"], json!(["gold-members"]));
    // reserved claims are neither overridden nor suppressed
    assert_ne!(id["sub"], "forged");
    assert_eq!(id["iss"], "http://localhost:8080/pools/main");
    assert!(id["exp"].is_i64());
    // the access token is not customised by the V1_0 event
    assert!(access.get("custom_tier").is_none());
    let event = received(&events, "pre-token").pop().expect("event");
    assert_eq!(event["triggerSource"], "TokenGeneration_Authentication");
    assert_eq!(
        event["request"]["groupConfiguration"],
        json!({"groupsToOverride": ["admins"], "iamRolesToOverride": [], "preferredRole": null})
    );
    assert_eq!(event["response"], json!({"claimsOverrideDetails": null}));

    let refresh = result["RefreshToken"].as_str().expect("refresh");
    let r = h
        .call(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "REFRESH_TOKEN_AUTH",
                   "AuthParameters": {"REFRESH_TOKEN": refresh}}),
        )
        .await
        .expect("refreshed");
    let id = claims(r["AuthenticationResult"]["IdToken"].as_str().expect("id"));
    assert_eq!(id["custom_tier"], "gold");
    let event = received(&events, "pre-token").pop().expect("event");
    assert_eq!(event["triggerSource"], "TokenGeneration_RefreshTokens");

    // a temporary password answered with a new one
    h.idp
        .create_user(
            "main",
            "hue",
            BTreeMap::new(),
            Some((&Secret::new("password1".to_owned()), false)),
        )
        .await
        .expect("user");
    let challenge = h.login("web", "hue", "password1").await.expect("challenge");
    assert_eq!(challenge["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    let r = h
        .call(
            "RespondToAuthChallenge",
            json!({"ClientId": "web", "ChallengeName": "NEW_PASSWORD_REQUIRED",
                   "Session": challenge["Session"],
                   "ChallengeResponses": {"USERNAME": "hue", "NEW_PASSWORD": "password2"},
                   "ClientMetadata": {"step": "new-password"}}),
        )
        .await
        .expect("signed in");
    let id = claims(r["AuthenticationResult"]["IdToken"].as_str().expect("id"));
    assert_eq!(id["custom_tier"], "gold");
    let event = received(&events, "pre-token").pop().expect("event");
    assert_eq!(
        event["triggerSource"],
        "TokenGeneration_NewPasswordChallenge"
    );
    assert_eq!(
        event["request"]["clientMetadata"],
        json!({"step": "new-password"})
    );
}

#[tokio::test]
async fn slow_oversized_or_unreadable_answers_fail_the_sign_in() {
    for (path, name, message) in [
        (
            "slow",
            "UnexpectedLambdaException",
            "PreTokenGeneration invocation failed due to error Socket timeout while invoking Lambda function.",
        ),
        (
            "huge",
            "UnexpectedLambdaException",
            "PreTokenGeneration invocation failed due to error response too large.",
        ),
        (
            "broken",
            "UnexpectedLambdaException",
            "PreTokenGeneration invocation failed due to error status 500.",
        ),
        (
            "garbage",
            "InvalidLambdaResponseException",
            "Unrecognizable lambda output",
        ),
    ] {
        let (h, _) = with_triggers(&format!(
            "pre_token_generation = {{ url = \"{{url}}/{path}\", timeout = \"300ms\" }}"
        ))
        .await;
        h.idp
            .create_user(
                "main",
                "hal",
                BTreeMap::new(),
                Some((&Secret::new("password1".to_owned()), true)),
            )
            .await
            .expect("user");
        let (got_name, got_message) = refused(h.login("web", "hal", "password1").await);
        assert_eq!(
            (got_name.as_str(), got_message.as_str()),
            (name, message),
            "{path}"
        );
    }
    // an unreachable webhook
    let (h, _) = with_triggers("pre_sign_up = { url = \"http://127.0.0.1:9/hook\" }").await;
    let (name, _) = refused(
        h.call(
            "SignUp",
            json!({"ClientId": "web", "Username": "ian", "Password": "password1"}),
        )
        .await,
    );
    assert_eq!(name, "UnexpectedLambdaException");
    assert!(
        h.idp
            .store()
            .get_user("main", "ian")
            .await
            .expect("store")
            .is_none()
    );
}

/// Functions as the gateway runs them: `claims` adds a claim, `deny` raises, `crash` fails.
struct FakeFunctions;

impl TriggerFunctions for FakeFunctions {
    fn invoke<'a>(&'a self, name: &'a str, event: Vec<u8>) -> Invocation<'a> {
        Box::pin(async move { fake_function(name, &event) })
    }
}

fn fake_function(name: &str, event: &[u8]) -> Result<Vec<u8>, FunctionFailure> {
    let mut event: Value = serde_json::from_slice(event).expect("event");
    match name {
        "claims" => {
            event["response"]["claimsOverrideDetails"] =
                json!({"claimsToAddOrOverride": {"custom_tier": "gold"}});
            Ok(event.to_string().into_bytes())
        }
        "deny" => Err(FunctionFailure::Raised("no sign-ups today".into())),
        _ => Err(FunctionFailure::Failed("Runtime.ExitError".into())),
    }
}

#[tokio::test]
async fn function_triggers_run_through_the_invoker() {
    let functions: String = ["claims", "deny", "crash"]
        .iter()
        .map(|f| {
            format!("[functions.{f}]\nruntime = \"python3.11\"\nhandler = \"a.h\"\ncode = \"f\"\n")
        })
        .collect();
    let source = CONFIG.replace(
        "[pools.main]\n",
        "[pools.main]\ntriggers = { pre_token_generation = { function = \"claims\" }, \
         pre_sign_up = { function = \"deny\" }, post_confirmation = { function = \"crash\" } }\n",
    ) + &functions;
    let config = portcullis_config::load_str(&source, "test.toml", &|_| None).expect("config");
    let idp = IdentityProvider::open_with(
        &config,
        IdpOptions {
            hash_concurrency: 1,
            trigger_functions: Some(FunctionInvoker(Arc::new(FakeFunctions))),
            ..IdpOptions::default()
        },
    )
    .await
    .expect("provider");
    let user = idp
        .create_user(
            "main",
            "joe",
            BTreeMap::new(),
            Some((&Secret::new("password1".to_owned()), true)),
        )
        .await
        .expect("user");
    let tokens = idp
        .issue_session("main", "web", "joe", &["openid".to_owned()])
        .await
        .expect("session");
    assert_eq!(claims(tokens.id_token.expose())["custom_tier"], "gold");
    let refused = idp
        .pre_sign_up(
            "main",
            TriggerSource::PreSignUpAdminCreateUser,
            "web",
            "kim",
            &BTreeMap::new(),
            None,
            None,
        )
        .await
        .expect_err("refused");
    assert_eq!(
        refused.to_string(),
        "PreSignUp failed with error no sign-ups today."
    );
    let failed = idp
        .post_confirmation(
            TriggerSource::PostConfirmationConfirmSignUp,
            "web",
            &user,
            None,
        )
        .await
        .expect_err("failed");
    assert_eq!(
        failed.to_string(),
        "PostConfirmation invocation failed due to error Runtime.ExitError."
    );
}
