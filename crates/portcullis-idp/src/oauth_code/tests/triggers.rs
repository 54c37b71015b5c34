//! The pool's triggers on the hosted page and the token endpoint: pre authentication refuses on
//! the sign-in form, pre token generation shapes the tokens of the code, and its refusal of a
//! refresh at the token endpoint is the client's error.

use std::sync::Mutex;

use axum::extract::{Path, State};
use axum::routing::post;

use super::*;

type Events = Arc<Mutex<Vec<Value>>>;

async fn hook(
    State(events): State<Events>,
    Path(path): Path<String>,
    axum::Json(mut event): axum::Json<Value>,
) -> (http::StatusCode, String) {
    events.lock().expect("events").push(event.clone());
    if path == "pre-auth" && event["userName"] == "blocked" {
        let raised = serde_json::json!({"errorMessage": "Blocked <by policy>"});
        return (http::StatusCode::BAD_REQUEST, raised.to_string());
    }
    if path == "pre-token" && event["triggerSource"] == "TokenGeneration_RefreshTokens" {
        let raised = serde_json::json!({"errorMessage": "no refresh today"});
        return (http::StatusCode::BAD_REQUEST, raised.to_string());
    }
    if path == "pre-token" {
        event["response"]["claimsOverrideDetails"] =
            serde_json::json!({"claimsToAddOrOverride": {"custom_tier": "gold"}});
    }
    (http::StatusCode::OK, event.to_string())
}

/// The harness of these tests with the pool's triggers calling a webhook on loopback.
async fn env_with_triggers() -> (Env, Events) {
    let events: Events = Arc::default();
    let app = axum::Router::new()
        .route("/{path}", post(hook))
        .with_state(events.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let source = CONFIG.replace(
        "[pools.main]\n",
        &format!(
            "[pools.main]\ntriggers = {{ pre_authentication = {{ url = \"{url}/pre-auth\" }}, \
             pre_token_generation = {{ url = \"{url}/pre-token\" }} }}\n"
        ),
    );
    (env_from(config_from(&source)).await, events)
}

fn id_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("claims")
}

#[tokio::test]
async fn pre_authentication_refuses_on_the_sign_in_form() {
    let (e, events) = env_with_triggers().await;
    e.idp
        .create_user(
            "main",
            "blocked",
            BTreeMap::new(),
            Some((&Secret::new("password1"), true)),
        )
        .await
        .expect("user");
    let page = open_page(&e, &pkce_params("web", CALLBACK)).await;
    let r = login(&e, &page, "blocked", "password1").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("page");
    // the trigger's message, escaped like everything the page shows
    assert!(
        html.contains("PreAuthentication failed with error Blocked &lt;by policy&gt;."),
        "{html}"
    );
    let events = events.lock().expect("events");
    let event = events.last().expect("event");
    assert_eq!(event["triggerSource"], "PreAuthentication_Authentication");
    assert_eq!(event["callerContext"]["clientId"], "web");
}

#[tokio::test]
async fn pre_token_generation_shapes_hosted_tokens_and_may_refuse_refreshes() {
    let (e, events) = env_with_triggers().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    let (status, tokens) = exchange_public(&e, &code, CALLBACK, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let id = id_claims(tokens["id_token"].as_str().expect("id token"));
    assert_eq!(id["custom_tier"], "gold");
    assert_eq!(id["nonce"], "n-456");
    let source = |events: &Events| {
        events.lock().expect("events").last().expect("event")["triggerSource"].clone()
    };
    assert_eq!(source(&events), "TokenGeneration_HostedAuth");

    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let (status, tokens) = exchange(
        &e,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("refresh_token", refresh),
        ],
    )
    .await;
    // refused by the trigger: a client error naming it, and nothing issued
    assert_eq!(status, 400, "{tokens}");
    assert_eq!(
        tokens,
        serde_json::json!({"error": "invalid_request",
                           "error_description": "PreTokenGeneration failed with error no refresh today."})
    );
    assert_eq!(source(&events), "TokenGeneration_RefreshTokens");
}
