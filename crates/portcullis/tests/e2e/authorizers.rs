//! Authorizers end to end: JWTs from real JWKS endpoints (minted by jsonwebtoken), a real
//! request-authorizer webhook, identity sources, CSRF, the result cache, and per-message
//! authorization.

use std::time::Duration;

use futures_util::SinkExt;
use portcullis_testkit::jwt::Issuer;
use portcullis_testkit::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn jwt_api(backend: &Backend, issuers: &[&Issuer], sources: &str, extra: &str) -> String {
    let issuers: Vec<String> = issuers
        .iter()
        .map(|i| format!("{{ issuer = \"{}\" }}", i.issuer))
        .collect();
    format!(
        "[websocket.chat]\nstage = \"prod\"\nauthorizer = \"users\"\nsubprotocols = [\"chat.v1\"]\n{extra}\n\
         [websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n\
         sendmessage = {{ integration = \"backend\", response = true, scopes = [\"chat/write\"] }}\n\
         admin = {{ integration = \"backend\", response = true, groups = [\"admins\"] }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.users]\ntype = \"jwt\"\nidentity_source = [{sources}]\nissuers = [{}]\n",
        backend.url,
        issuers.join(", ")
    )
}

const QUERY_FIRST: &str = r#""route.request.querystring.access_token", "route.request.header.Sec-WebSocket-Protocol", "route.request.header.Authorization", "route.request.cookie.id_token""#;

#[tokio::test]
async fn jwt_in_every_identity_source_is_accepted_and_reaches_every_event() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&jwt_api(&backend, &[&issuer], QUERY_FIRST, "")).await;
    let token = issuer.token(json!({"sub": "alice", "scope": "chat/write openid", "cognito:groups": ["admins", "members"]}));

    // Query string.
    let mut client = connect(&format!("{}?access_token={token}", gw.ws_url("/chat"))).await;
    let connect_event = backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    let id = connect_event["requestContext"]["connectionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let authorizer = &connect_event["requestContext"]["authorizer"];
    assert_eq!(authorizer["principalId"], "alice");
    assert_eq!(authorizer["jwt"]["claims"]["sub"], "alice");
    assert_eq!(
        authorizer["jwt"]["claims"]["cognito:groups"],
        "[admins members]"
    );
    assert_eq!(authorizer["jwt"]["scopes"], json!(["chat/write", "openid"]));
    send_text(&mut client, r#"{"action":"sendmessage","data":"hi"}"#).await;
    assert_eq!(
        next_text(&mut client).await,
        r#"{"action":"sendmessage","data":"hi"}"#
    );
    let message = backend.wait_event("MESSAGE", &id).await;
    assert_eq!(
        message["requestContext"]["authorizer"]["principalId"],
        "alice"
    );
    let info: Value = management(
        &gw,
        "GET",
        &format!("/@connections/{}", encode_id(&id)),
        b"",
        SECRET_ACCESS_KEY,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(info["principalId"], "alice");
    client.close(None).await.expect("close");
    let disconnect = backend.wait_event("DISCONNECT", &id).await;
    assert_eq!(
        disconnect["requestContext"]["authorizer"]["principalId"],
        "alice"
    );

    // Sec-WebSocket-Protocol (browsers), echoing only the real protocol.
    let (_c, response) = try_connect_response(
        &gw.ws_url("/chat"),
        &[("Sec-WebSocket-Protocol", &format!("chat.v1, {token}"))],
    )
    .await
    .expect("protocol token");
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    // Authorization header with Bearer, and a named cookie.
    assert_eq!(
        handshake_status(
            &gw.ws_url("/chat"),
            &[("Authorization", &format!("Bearer {token}"))]
        )
        .await,
        None
    );
    assert_eq!(
        handshake_status(
            &gw.ws_url("/chat"),
            &[("Cookie", &format!("theme=dark; id_token={token}"))]
        )
        .await,
        None
    );
}

#[tokio::test]
async fn missing_or_invalid_tokens_get_401_and_never_reach_connect() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&jwt_api(&backend, &[&issuer], QUERY_FIRST, "")).await;
    let url = gw.ws_url("/chat");
    assert_eq!(handshake_status(&url, &[]).await, Some(401));
    let expired = issuer.token(json!({"exp": chrono::Utc::now().timestamp() - 600}));
    assert_eq!(
        handshake_status(&format!("{url}?access_token={expired}"), &[]).await,
        Some(401)
    );
    assert_eq!(
        handshake_status(&format!("{url}?access_token=not.a.token"), &[]).await,
        Some(401)
    );
    assert!(
        backend.events().is_empty(),
        "no $connect for refused tokens"
    );
}

#[tokio::test]
async fn one_authorizer_trusts_several_issuers() {
    let first = Issuer::start("pool-a-key").await;
    let second = Issuer::start("pool-b-key").await;
    let stranger = Issuer::start("pool-c-key").await;
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&jwt_api(&backend, &[&first, &second], QUERY_FIRST, "")).await;
    let url = gw.ws_url("/chat");
    for issuer in [&first, &second] {
        let token = issuer.token(json!({}));
        assert_eq!(
            handshake_status(&format!("{url}?access_token={token}"), &[]).await,
            None
        );
    }
    let foreign = stranger.token(json!({}));
    assert_eq!(
        handshake_status(&format!("{url}?access_token={foreign}"), &[]).await,
        Some(401)
    );
    // A token claiming a trusted issuer but signed by an untrusted key.
    let forged = stranger.key.mint(&first.claims(json!({})));
    assert_eq!(
        handshake_status(&format!("{url}?access_token={forged}"), &[]).await,
        Some(401)
    );
}

#[tokio::test]
async fn route_scopes_and_groups_are_checked_for_every_message() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&jwt_api(&backend, &[&issuer], QUERY_FIRST, "")).await;
    let reader =
        issuer.token(json!({"sub": "bob", "scope": "chat/read", "cognito:groups": ["members"]}));
    let mut client = connect(&format!("{}?access_token={reader}", gw.ws_url("/chat"))).await;

    for denied in [
        r#"{"action":"sendmessage","data":"x"}"#,
        r#"{"action":"admin"}"#,
    ] {
        send_text(&mut client, denied).await;
        let frame = next_text(&mut client).await;
        assert!(
            frame.starts_with(r#"{"message": "Forbidden", "connectionId":""#),
            "{frame}"
        );
    }
    // Still open, and unrestricted routes work.
    send_text(&mut client, "plain text to $default").await;
    assert_eq!(next_text(&mut client).await, "plain text to $default");
    assert!(
        backend
            .events()
            .iter()
            .all(|e| e["requestContext"]["routeKey"] != "sendmessage"
                && e["requestContext"]["routeKey"] != "admin")
    );
    assert!(
        gw.metrics_text()
            .await
            .contains("portcullis_ws_message_denials_total{api=\"chat\"} 2")
    );
}

#[tokio::test]
async fn connect_route_scopes_refuse_the_upgrade_with_403() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let toml = jwt_api(&backend, &[&issuer], QUERY_FIRST, "").replace(
        "\"$connect\" = { integration = \"backend\" }",
        "\"$connect\" = { integration = \"backend\", scopes = [\"chat/connect\"] }",
    );
    let gw = TestGateway::start(&toml).await;
    let url = gw.ws_url("/chat");
    let without = issuer.token(json!({"scope": "chat/read"}));
    assert_eq!(
        handshake_status(&format!("{url}?access_token={without}"), &[]).await,
        Some(403)
    );
    let with = issuer.token(json!({"scope": "chat/connect"}));
    assert_eq!(
        handshake_status(&format!("{url}?access_token={with}"), &[]).await,
        None
    );
}

// ---- request authorizer -----------------------------------------------------------------------

fn request_api(
    backend: &Backend,
    webhook: &Backend,
    extra_authorizer: &str,
    api_extra: &str,
    routes: &str,
) -> String {
    format!(
        "[websocket.chat]\nstage = \"prod\"\nauthorizer = \"legacy\"\n{api_extra}\n\
         [websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n{routes}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [authorizers.legacy]\ntype = \"request\"\nurl = \"{}\"\nidentity_source = [\"route.request.header.Cookie\"]\n{extra_authorizer}\n",
        backend.url, webhook.url
    )
}

fn allow_all(principal: &str) -> Reply {
    Reply::Json(
        200,
        json!({
            "principalId": principal,
            "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:*:*:*/prod/*"}]},
            "context": {"tenant": "acme", "tier": 3, "admin": false}
        })
        .to_string(),
    )
}

#[tokio::test]
async fn request_authorizer_receives_the_websocket_event_and_its_context_reaches_every_event() {
    let webhook = Backend::start(|e| {
        if e["headers"]["Cookie"]
            .as_str()
            .is_some_and(|c| c.contains("session=good"))
        {
            allow_all("user-7781")
        } else {
            Reply::Json(401, "\"Unauthorized\"".into())
        }
    })
    .await;
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&request_api(&backend, &webhook, "", "", "")).await;
    let url = gw.ws_url("/chat");

    let mut client = try_connect(&url, &[("Cookie", "session=good")])
        .await
        .expect("allowed");
    let call = webhook.wait_for(|_| true).await;
    assert_eq!(call["type"], "REQUEST");
    let arn = call["methodArn"].as_str().expect("methodArn");
    assert!(
        arn.starts_with("arn:aws:execute-api:us-east-1:000000000000:")
            && arn.ends_with("/prod/$connect"),
        "{arn}"
    );
    assert_eq!(call["requestContext"]["routeKey"], "$connect");
    assert_eq!(call["requestContext"]["eventType"], "CONNECT");

    let connect_event = backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    let id = connect_event["requestContext"]["connectionId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        call["requestContext"]["connectionId"],
        id.as_str(),
        "the authorizer sees the final connection id"
    );
    let authorizer = &connect_event["requestContext"]["authorizer"];
    assert_eq!(authorizer["principalId"], "user-7781");
    assert_eq!(authorizer["tenant"], "acme");
    assert_eq!(authorizer["tier"], 3);
    assert_eq!(authorizer["admin"], false);
    assert!(authorizer["integrationLatency"].is_u64());
    send_text(&mut client, "hello").await;
    assert_eq!(next_text(&mut client).await, "hello");
    assert_eq!(
        backend.wait_event("MESSAGE", &id).await["requestContext"]["authorizer"]["tenant"],
        "acme"
    );

    assert_eq!(
        handshake_status(&url, &[("Cookie", "session=bad")]).await,
        Some(401)
    );
    // Missing identity source: 401 without calling the webhook.
    let calls = webhook.events().len();
    assert_eq!(handshake_status(&url, &[]).await, Some(401));
    assert_eq!(webhook.events().len(), calls);
}

#[tokio::test]
async fn request_authorizer_outcomes_map_to_aws_statuses() {
    let deny = json!({"principalId": "u", "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "*"}]}}).to_string();
    let big = json!({"principalId": "u", "policyDocument": {"Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]}, "context": {"pad": "x".repeat(9000)}}).to_string();
    let cases: Vec<(Reply, u16)> = vec![
        (Reply::Json(200, deny), 403),
        (Reply::Json(200, json!({"isAuthorized": false}).to_string()), 403),
        (Reply::Json(200, "\"Unauthorized\"".into()), 401),
        (Reply::Json(500, "{\"errorMessage\":\"boom\"}".into()), 500),
        (Reply::Json(200, "not json".into()), 500),
        (Reply::Json(200, big), 500),
        (Reply::Json(200, json!({"principalId": "u", "policyDocument": {"Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]}, "context": {"nested": {"no": 1}}}).to_string()), 500),
        (Reply::Delay(Duration::from_secs(3), Box::new(allow_all("slow"))), 500),
    ];
    for (reply, status) in cases {
        let webhook = Backend::start(move |_| reply.clone()).await;
        let backend = Backend::echo().await;
        let gw =
            TestGateway::start(&request_api(&backend, &webhook, "timeout = \"1s\"", "", "")).await;
        assert_eq!(
            handshake_status(&gw.ws_url("/chat"), &[("Cookie", "session=x")]).await,
            Some(status)
        );
        assert!(backend.events().is_empty());
    }
}

#[tokio::test]
async fn request_authorizer_answers_are_cached_by_identity_source() {
    let webhook = Backend::start(|_| allow_all("cached-user")).await;
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&request_api(
        &backend,
        &webhook,
        "cache_ttl = \"300s\"",
        "",
        "",
    ))
    .await;
    let url = gw.ws_url("/chat");
    for _ in 0..3 {
        assert_eq!(
            handshake_status(&url, &[("Cookie", "session=one")]).await,
            None
        );
    }
    assert_eq!(
        handshake_status(&url, &[("Cookie", "session=two")]).await,
        None
    );
    assert_eq!(webhook.events().len(), 2, "one call per distinct identity");
    let metrics = gw.metrics_text().await;
    assert!(
        metrics.contains("portcullis_authorizer_cache_hits_total{authorizer=\"legacy\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_authorizer_cache_misses_total{authorizer=\"legacy\"} 2"),
        "{metrics}"
    );

    // cache_ttl = "0s" calls every time.
    let webhook = Backend::start(|_| allow_all("uncached")).await;
    let gw = TestGateway::start(&request_api(
        &backend,
        &webhook,
        "cache_ttl = \"0s\"",
        "",
        "",
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(
            handshake_status(&gw.ws_url("/chat"), &[("Cookie", "session=one")]).await,
            None
        );
    }
    assert_eq!(webhook.events().len(), 3);
}

#[tokio::test]
async fn csrf_double_submit_is_checked_before_the_webhook() {
    let webhook = Backend::start(|_| allow_all("csrf-user")).await;
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&request_api(
        &backend,
        &webhook,
        "csrf = { cookie = \"CSRF-TOKEN\", query = \"csrf\" }",
        "allowed_origins = [\"http://app.example\"]",
        "",
    ))
    .await;
    let url = gw.ws_url("/chat");
    let cookie = ("Cookie", "session=s1; CSRF-TOKEN=abc123");
    let origin = ("Origin", "http://app.example");
    assert_eq!(
        handshake_status(&format!("{url}?csrf=wrong"), &[cookie, origin]).await,
        Some(403)
    );
    assert_eq!(handshake_status(&url, &[cookie, origin]).await, Some(403));
    assert_eq!(
        handshake_status(
            &format!("{url}?csrf=abc123"),
            &[("Cookie", "session=s1"), origin]
        )
        .await,
        Some(403)
    );
    assert!(
        webhook.events().is_empty(),
        "no webhook call before CSRF passes"
    );
    assert_eq!(
        handshake_status(&format!("{url}?csrf=abc123"), &[cookie, origin]).await,
        None
    );
    // A foreign page cannot use the victim's cookies even with the token.
    assert_eq!(
        handshake_status(
            &format!("{url}?csrf=abc123"),
            &[cookie, ("Origin", "http://evil.example")]
        )
        .await,
        Some(403)
    );
    assert_eq!(webhook.events().len(), 1);
}

#[tokio::test]
async fn message_policy_evaluates_the_connection_policy_per_route() {
    let policy = json!({
        "principalId": "p",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:*:*:*/prod/*"},
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "arn:aws:execute-api:*:*:*/prod/secret"}
        ]}
    })
    .to_string();
    let webhook = Backend::start(move |_| Reply::Json(200, policy.clone())).await;
    let backend = Backend::echo().await;
    let routes = "secret = { integration = \"backend\", response = true }\npublic = { integration = \"backend\", response = true }";
    let gw = TestGateway::start(&request_api(
        &backend,
        &webhook,
        "",
        "message_policy = true",
        routes,
    ))
    .await;
    let mut client = try_connect(&gw.ws_url("/chat"), &[("Cookie", "session=1")])
        .await
        .expect("connect");
    send_text(&mut client, r#"{"action":"secret"}"#).await;
    assert!(
        next_text(&mut client)
            .await
            .starts_with(r#"{"message": "Forbidden""#)
    );
    send_text(&mut client, r#"{"action":"public"}"#).await;
    assert_eq!(next_text(&mut client).await, r#"{"action":"public"}"#);
}

#[tokio::test]
async fn policies_naming_only_connect_keep_working_without_message_policy() {
    let policy = json!({
        "principalId": "p",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:*:*:*/prod/$connect"}
        ]}
    })
    .to_string();
    let webhook = Backend::start(move |_| Reply::Json(200, policy.clone())).await;
    let backend = Backend::echo().await;
    let routes = "public = { integration = \"backend\", response = true }";
    let gw = TestGateway::start(&request_api(&backend, &webhook, "", "", routes)).await;
    let mut client = try_connect(&gw.ws_url("/chat"), &[("Cookie", "session=1")])
        .await
        .expect("connect");
    client
        .send(Message::text(r#"{"action":"public"}"#))
        .await
        .expect("send");
    assert_eq!(next_text(&mut client).await, r#"{"action":"public"}"#);
}

#[tokio::test]
async fn cookie_borne_jwts_need_the_csrf_echo_other_sources_do_not() {
    let issuer = Issuer::start("k1").await;
    let backend = Backend::echo().await;
    let toml = format!(
        "{}csrf = {{ cookie = \"portcullis_csrf\", query = \"csrf\" }}\n",
        jwt_api(
            &backend,
            &[&issuer],
            r#""route.request.header.Sec-WebSocket-Protocol", "route.request.cookie.portcullis_access""#,
            "",
        )
    );
    let gw = TestGateway::start(&toml).await;
    let url = gw.ws_url("/chat");
    let token = issuer.token(json!({"sub": "alice"}));
    let session = format!("portcullis_access={token}; portcullis_csrf=s3cret-value");

    // A cross-site page can make the browser send the cookies, but not read the CSRF one.
    assert_eq!(
        handshake_status(&url, &[("Cookie", &session)]).await,
        Some(403)
    );
    assert_eq!(
        handshake_status(&format!("{url}?csrf=guessed"), &[("Cookie", &session)]).await,
        Some(403)
    );
    let no_csrf_cookie = format!("portcullis_access={token}");
    assert_eq!(
        handshake_status(
            &format!("{url}?csrf=s3cret-value"),
            &[("Cookie", &no_csrf_cookie)]
        )
        .await,
        Some(403)
    );
    assert!(
        backend.events().is_empty(),
        "no $connect for refused upgrades"
    );

    // The page that read the cookie echoes it.
    assert_eq!(
        handshake_status(&format!("{url}?csrf=s3cret-value"), &[("Cookie", &session)]).await,
        None
    );
    // A token offered in Sec-WebSocket-Protocol is not ambient: no echo needed.
    let protocols = format!("chat.v1, {token}");
    assert_eq!(
        handshake_status(&url, &[("Sec-WebSocket-Protocol", &protocols)]).await,
        None
    );
}
