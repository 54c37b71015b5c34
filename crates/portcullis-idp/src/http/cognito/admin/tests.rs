//! The Admin API over real HTTP (axum::serve on 127.0.0.1:0), signed as boto3 signs it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use portcullis_auth::sigv4::{self, SignableRequest};
use serde_json::{Value, json};

use crate::delivery::{CodeDelivery, CodePurpose};
use crate::http::cognito::{CognitoOptions, cognito_router_with};
use crate::{IdentityProvider, IdpOptions};

const ADMIN_KEY: &str = "AKIDADMIN";
const ADMIN_SECRET: &str = "admin-secret-0123456789";
const PUSH_KEY: &str = "AKIDPUSH";
const PUSH_SECRET: &str = "push-secret-0123456789";
const POOL_ID: &str = "us-east-1_main";
const CLIENT_SECRET: &str = "confidential-secret-0123456789";

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[management]
credentials = [
  { access_key_id = "AKIDADMIN", secret_access_key = "admin-secret-0123456789", scopes = ["admin"] },
  { access_key_id = "AKIDPUSH", secret_access_key = "push-secret-0123456789" },
]

[store]
url = "sqlite::memory:"

[pools.main]
password_policy = { min_length = 8, require_digits = true }
groups = ["admins"]
custom_attributes = { team = {}, tier = { mutable = false, max_length = 32 } }

[pools.main.clients.web]
public = true
name = "Web app"
callback_urls = ["http://localhost/cb"]

[pools.main.clients.confidential]
secret = "confidential-secret-0123456789"
grants = ["password", "refresh_token"]

[pools.other]
mfa = "optional"

[pools.other.clients.other-web]
public = true
"#;

type Failure = (u16, String, String);

struct Admin {
    addr: SocketAddr,
    idp: Arc<IdentityProvider>,
    invitations: Arc<Mutex<Vec<CodeDelivery>>>,
}

async fn admin() -> Admin {
    admin_with(CONFIG).await
}

async fn admin_with(text: &str) -> Admin {
    let config = portcullis_config::load_str(text, "test.toml", &|_| None).expect("config");
    let idp = IdentityProvider::open_with(
        &config,
        IdpOptions {
            hash_concurrency: 1,
            ..IdpOptions::default()
        },
    )
    .await
    .expect("provider");
    let invitations: Arc<Mutex<Vec<CodeDelivery>>> = Arc::default();
    let sink = invitations.clone();
    let options = CognitoOptions {
        management: Some(config.management.clone()),
        on_code: Some(Arc::new(move |d: &CodeDelivery| {
            sink.lock().expect("sink").push(d.clone());
        })),
        ..CognitoOptions::default()
    };
    let app = cognito_router_with(idp.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    Admin {
        addr,
        idp,
        invitations,
    }
}

/// How a test signs a call.
#[derive(Clone, Copy)]
enum Signer<'a> {
    None,
    Key {
        akid: &'a str,
        secret: &'a str,
        region: &'a str,
        service: &'a str,
        at: Option<DateTime<Utc>>,
    },
}

fn signed_by(akid: &'static str, secret: &'static str) -> Signer<'static> {
    Signer::Key {
        akid,
        secret,
        region: "us-east-1",
        service: "cognito-idp",
        at: None,
    }
}

const ADMIN: Signer<'static> = Signer::Key {
    akid: ADMIN_KEY,
    secret: ADMIN_SECRET,
    region: "us-east-1",
    service: "cognito-idp",
    at: None,
};

impl Admin {
    async fn send(&self, signer: Signer<'_>, op: &str, body: &[u8]) -> (u16, Value) {
        let host = self.addr.to_string();
        let target = format!("AWSCognitoIdentityProviderService.{op}");
        let content_type = "application/x-amz-json-1.1";
        let mut request = reqwest::Client::new()
            .post(format!("http://{host}/"))
            .header("content-type", content_type)
            .header("x-amz-target", &target)
            .body(body.to_vec());
        if let Signer::Key {
            akid,
            secret,
            region,
            service,
            at,
        } = signer
        {
            let headers = [
                ("host", host.as_str()),
                ("content-type", content_type),
                ("x-amz-target", target.as_str()),
            ];
            let signable = SignableRequest {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body,
            };
            for (name, value) in sigv4::sign(
                &signable,
                akid,
                secret,
                region,
                service,
                at.unwrap_or_else(Utc::now),
            ) {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn call_as(&self, signer: Signer<'_>, op: &str, body: Value) -> Result<Value, Failure> {
        let (status, body) = self.send(signer, op, body.to_string().as_bytes()).await;
        if status == 200 {
            Ok(body)
        } else {
            Err((
                status,
                body["__type"].as_str().unwrap_or_default().to_owned(),
                body["message"].as_str().unwrap_or_default().to_owned(),
            ))
        }
    }

    async fn call(&self, op: &str, mut body: Value) -> Result<Value, Failure> {
        if body.get("UserPoolId").is_none() {
            body["UserPoolId"] = json!(POOL_ID);
        }
        self.call_as(ADMIN, op, body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e:?}"),
        }
    }

    async fn fails(&self, op: &str, body: Value) -> (u16, String, String) {
        match self.call(op, body).await {
            Ok(v) => panic!("{op} succeeded: {v}"),
            Err(e) => e,
        }
    }

    /// Creates `username` with a permanent password.
    async fn user(&self, username: &str, email: &str) {
        self.ok(
            "AdminCreateUser",
            json!({"Username": username, "MessageAction": "SUPPRESS",
                   "UserAttributes": [{"Name": "email", "Value": email}]}),
        )
        .await;
        self.ok(
            "AdminSetUserPassword",
            json!({"Username": username, "Password": "Permanent-1", "Permanent": true}),
        )
        .await;
    }

    async fn public(&self, op: &str, body: Value) -> Result<Value, Failure> {
        self.call_as(Signer::None, op, body).await
    }
}

fn attribute<'a>(attributes: &'a Value, name: &str) -> Option<&'a str> {
    attributes
        .as_array()?
        .iter()
        .find(|a| a["Name"] == name)
        .and_then(|a| a["Value"].as_str())
}

fn secret_hash(username: &str, client_id: &str) -> String {
    use base64::Engine;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{username}{client_id}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

// ---- the signature gate ----

#[tokio::test]
async fn admin_calls_need_a_good_signature_by_an_admin_credential() {
    let a = admin().await;
    let body = json!({"UserPoolId": POOL_ID});
    let (status, kind, message) = a
        .call_as(Signer::None, "ListUsers", body.clone())
        .await
        .expect_err("unsigned");
    assert_eq!((status, kind.as_str()), (400, "NotAuthorizedException"));
    assert_eq!(message, "Missing Authentication Token");

    let wrong_secret = signed_by(ADMIN_KEY, "not-the-secret");
    let (status, kind, message) = a
        .call_as(wrong_secret, "ListUsers", body.clone())
        .await
        .expect_err("wrong secret");
    assert_eq!((status, kind.as_str()), (400, "NotAuthorizedException"));
    assert!(
        message.contains("signature we calculated does not match"),
        "{message}"
    );

    let unknown = signed_by("AKIDNOBODY", ADMIN_SECRET);
    let (status, kind, message) = a
        .call_as(unknown, "ListUsers", body.clone())
        .await
        .expect_err("unknown key");
    assert_eq!((status, kind.as_str()), (400, "NotAuthorizedException"));
    assert_eq!(
        message,
        "The security token included in the request is invalid."
    );

    let push = signed_by(PUSH_KEY, PUSH_SECRET);
    let (status, kind, message) = a
        .call_as(
            push,
            "AdminCreateUser",
            json!({"UserPoolId": POOL_ID, "Username": "x"}),
        )
        .await
        .expect_err("connections scope");
    assert_eq!((status, kind.as_str()), (403, "AccessDeniedException"));
    assert!(message.contains("AKIDPUSH"), "{message}");
    assert!(
        a.idp
            .store
            .get_user("main", "x")
            .await
            .expect("store")
            .is_none()
    );

    // a signature of ten minutes ago, replayed
    let old = Signer::Key {
        akid: ADMIN_KEY,
        secret: ADMIN_SECRET,
        region: "us-east-1",
        service: "cognito-idp",
        at: Some(Utc::now() - chrono::Duration::minutes(10)),
    };
    let (status, kind, message) = a
        .call_as(old, "ListUsers", body.clone())
        .await
        .expect_err("old signature");
    assert_eq!((status, kind.as_str()), (400, "NotAuthorizedException"));
    assert!(message.starts_with("Signature expired"), "{message}");

    // signed for another service or region
    for (region, service) in [("us-east-1", "execute-api"), ("eu-west-1", "cognito-idp")] {
        let other = Signer::Key {
            akid: ADMIN_KEY,
            secret: ADMIN_SECRET,
            region,
            service,
            at: None,
        };
        let (status, kind, _) = a
            .call_as(other, "ListUsers", body.clone())
            .await
            .expect_err("other scope");
        assert_eq!((status, kind.as_str()), (400, "NotAuthorizedException"));
    }

    // the body is covered: a signature over another body does not pass
    let (status, body_answer) = {
        let host = a.addr.to_string();
        let target = "AWSCognitoIdentityProviderService.ListUsers";
        let headers = [("host", host.as_str()), ("x-amz-target", target)];
        let signed_body = br#"{"UserPoolId":"us-east-1_main"}"#;
        let signable = SignableRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: signed_body,
        };
        let mut request = reqwest::Client::new()
            .post(format!("http://{host}/"))
            .header("x-amz-target", target)
            .body(r#"{"UserPoolId":"us-east-1_other"}"#);
        for (n, v) in sigv4::sign(
            &signable,
            ADMIN_KEY,
            ADMIN_SECRET,
            "us-east-1",
            "cognito-idp",
            Utc::now(),
        ) {
            request = request.header(n, v);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("json"))
    };
    assert_eq!(status, 400);
    assert_eq!(body_answer["__type"], "NotAuthorizedException");

    // a good signature works; unsupported admin operations are refused after it, and public
    // operations stay unsigned
    a.ok("ListUsers", json!({})).await;
    let (_, kind, _) = a
        .fails("AdminResetUserPassword", json!({"Username": "x"}))
        .await;
    assert_eq!(kind, "UnknownOperationException");
    let (_, kind, _) = a
        .call_as(
            Signer::None,
            "AdminResetUserPassword",
            json!({"Username": "x"}),
        )
        .await
        .expect_err("unsigned");
    assert_eq!(kind, "NotAuthorizedException");
    let public = a
        .public(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "nobody", "PASSWORD": "Wrong-pass-1"}}),
        )
        .await
        .expect_err("no such user");
    assert_eq!(public.1, "NotAuthorizedException");
    assert_eq!(public.2, "Incorrect username or password.");
}

#[tokio::test]
async fn bodies_are_bounded() {
    let a = admin().await;
    let big = json!({"UserPoolId": POOL_ID, "Filter": "x".repeat(super::MAX_BODY_BYTES)});
    let (status, body) = a.send(ADMIN, "ListUsers", big.to_string().as_bytes()).await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidParameterException");
}

// ---- users ----

#[tokio::test]
async fn create_get_update_and_delete_a_user() {
    let a = admin().await;
    let created = a
        .ok(
            "AdminCreateUser",
            json!({"Username": "alice", "TemporaryPassword": "Temporary-1",
                   "MessageAction": "SUPPRESS",
                   "UserAttributes": [{"Name": "email", "Value": "alice@example.com"},
                                      {"Name": "email_verified", "Value": "true"},
                                      {"Name": "custom:tier", "Value": "gold"}]}),
        )
        .await;
    let user = &created["User"];
    assert_eq!(user["Username"], "alice");
    assert_eq!(user["UserStatus"], "FORCE_CHANGE_PASSWORD");
    assert_eq!(user["Enabled"], true);
    assert!(user["UserCreateDate"].is_i64());
    assert_eq!(
        attribute(&user["Attributes"], "email"),
        Some("alice@example.com")
    );
    assert!(attribute(&user["Attributes"], "sub").is_some());
    assert!(
        a.invitations.lock().expect("sink").is_empty(),
        "SUPPRESS sends nothing"
    );

    let got = a.ok("AdminGetUser", json!({"Username": "alice"})).await;
    assert_eq!(got["UserStatus"], "FORCE_CHANGE_PASSWORD");
    assert_eq!(
        attribute(&got["UserAttributes"], "custom:tier"),
        Some("gold")
    );

    let (status, kind, _) = a
        .fails(
            "AdminCreateUser",
            json!({"Username": "alice", "MessageAction": "SUPPRESS"}),
        )
        .await;
    assert_eq!((status, kind.as_str()), (400, "UsernameExistsException"));

    // admins may write immutable custom attributes and verification flags; a new email is
    // unverified unless the call says otherwise
    a.ok(
        "AdminUpdateUserAttributes",
        json!({"Username": "alice", "UserAttributes": [
            {"Name": "email", "Value": "alice@example.org"},
            {"Name": "custom:tier", "Value": "silver"}]}),
    )
    .await;
    let got = a.ok("AdminGetUser", json!({"Username": "alice"})).await;
    assert_eq!(
        attribute(&got["UserAttributes"], "email"),
        Some("alice@example.org")
    );
    assert_eq!(
        attribute(&got["UserAttributes"], "email_verified"),
        Some("false")
    );
    assert_eq!(
        attribute(&got["UserAttributes"], "custom:tier"),
        Some("silver")
    );
    let (_, kind, _) = a
        .fails(
            "AdminUpdateUserAttributes",
            json!({"Username": "alice", "UserAttributes": [{"Name": "custom:nope", "Value": "x"}]}),
        )
        .await;
    assert_eq!(kind, "InvalidParameterException");

    a.ok("AdminDeleteUser", json!({"Username": "alice"})).await;
    for op in [
        "AdminGetUser",
        "AdminDeleteUser",
        "AdminDisableUser",
        "AdminUserGlobalSignOut",
    ] {
        let (status, kind, message) = a.fails(op, json!({"Username": "alice"})).await;
        assert_eq!(
            (status, kind.as_str()),
            (400, "UserNotFoundException"),
            "{op}"
        );
        assert_eq!(message, "User does not exist.");
    }
    let (_, kind, message) = a
        .fails(
            "AdminGetUser",
            json!({"UserPoolId": "us-east-1_nope", "Username": "alice"}),
        )
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
    assert_eq!(message, "User pool us-east-1_nope does not exist.");
    let (_, kind, _) = a.fails("AdminGetUser", json!({})).await;
    assert_eq!(kind, "InvalidParameterException");
}

#[tokio::test]
async fn created_users_get_a_policy_password_and_an_invitation() {
    let a = admin().await;
    a.ok(
        "AdminCreateUser",
        json!({"Username": "bob", "UserAttributes": [{"Name": "email", "Value": "bob@example.com"}]}),
    )
    .await;
    let sent = a.invitations.lock().expect("sink").clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].purpose, CodePurpose::Invitation);
    assert_eq!(sent[0].email.as_deref(), Some("bob@example.com"));
    let password = sent[0].code.clone();
    assert!(
        a.idp
            .check_password("main", "bob", &password)
            .await
            .expect("check")
    );
    // RESEND: a new temporary password for a user who has not signed in yet
    a.ok(
        "AdminCreateUser",
        json!({"Username": "bob", "MessageAction": "RESEND"}),
    )
    .await;
    let resent = a.invitations.lock().expect("sink").clone();
    assert_eq!(resent.len(), 2);
    assert_ne!(resent[1].code.expose(), password.expose());
    let (_, kind, _) = a
        .fails(
            "AdminCreateUser",
            json!({"Username": "nobody", "MessageAction": "RESEND"}),
        )
        .await;
    assert_eq!(kind, "UserNotFoundException");

    let (_, kind, _) = a
        .fails(
            "AdminCreateUser",
            json!({"Username": "carol", "TemporaryPassword": "short", "MessageAction": "SUPPRESS"}),
        )
        .await;
    assert_eq!(kind, "InvalidPasswordException");
    let (_, kind, _) = a
        .fails(
            "AdminCreateUser",
            json!({"Username": "carol", "MessageAction": "LOUD"}),
        )
        .await;
    assert_eq!(kind, "InvalidParameterException");
    let (_, kind, _) = a
        .fails(
            "AdminCreateUser",
            json!({"Username": "white space", "MessageAction": "SUPPRESS"}),
        )
        .await;
    assert_eq!(kind, "InvalidParameterException");
}

#[tokio::test]
async fn passwords_confirmation_and_disabling() {
    let a = admin().await;
    a.ok(
        "AdminCreateUser",
        json!({"Username": "dan", "MessageAction": "SUPPRESS"}),
    )
    .await;
    let (_, kind, _) = a
        .fails(
            "AdminSetUserPassword",
            json!({"Username": "dan", "Password": "weak", "Permanent": true}),
        )
        .await;
    assert_eq!(kind, "InvalidPasswordException");
    let (_, kind, _) = a
        .fails(
            "AdminSetUserPassword",
            json!({"Username": "dan", "Password": format!("Long-1{}", "x".repeat(300)), "Permanent": true}),
        )
        .await;
    assert_eq!(kind, "InvalidParameterException");
    a.ok(
        "AdminSetUserPassword",
        json!({"Username": "dan", "Password": "Permanent-1", "Permanent": true}),
    )
    .await;
    let got = a.ok("AdminGetUser", json!({"Username": "dan"})).await;
    assert_eq!(got["UserStatus"], "CONFIRMED");
    // the SRP verifier is set with the password
    let stored = a
        .idp
        .store
        .get_user("main", "dan")
        .await
        .expect("store")
        .expect("dan");
    assert!(stored.srp.is_some());
    let login = json!({"ClientId": "web", "AuthFlow": "USER_PASSWORD_AUTH",
                       "AuthParameters": {"USERNAME": "dan", "PASSWORD": "Permanent-1"}});
    let tokens = a
        .public("InitiateAuth", login.clone())
        .await
        .expect("sign-in");
    assert!(tokens["AuthenticationResult"]["AccessToken"].is_string());

    a.ok(
        "AdminSetUserPassword",
        json!({"Username": "dan", "Password": "Temporary-2", "Permanent": false}),
    )
    .await;
    let got = a.ok("AdminGetUser", json!({"Username": "dan"})).await;
    assert_eq!(got["UserStatus"], "FORCE_CHANGE_PASSWORD");

    a.ok("AdminDisableUser", json!({"Username": "dan"})).await;
    let got = a.ok("AdminGetUser", json!({"Username": "dan"})).await;
    assert_eq!(got["Enabled"], false);
    let login = json!({"ClientId": "web", "AuthFlow": "USER_PASSWORD_AUTH",
                       "AuthParameters": {"USERNAME": "dan", "PASSWORD": "Temporary-2"}});
    let refused = a
        .public("InitiateAuth", login.clone())
        .await
        .expect_err("disabled");
    assert_eq!(
        (refused.1.as_str(), refused.2.as_str()),
        ("NotAuthorizedException", "User is disabled.")
    );
    a.ok("AdminEnableUser", json!({"Username": "dan"})).await;
    let challenge = a
        .public("InitiateAuth", login)
        .await
        .expect("enabled again");
    assert_eq!(challenge["ChallengeName"], "NEW_PASSWORD_REQUIRED");

    // AdminConfirmSignUp: UNCONFIRMED → CONFIRMED, refused for others
    a.idp
        .create_user("main", "erin", Default::default(), None)
        .await
        .expect("erin");
    a.ok("AdminConfirmSignUp", json!({"Username": "erin"}))
        .await;
    let got = a.ok("AdminGetUser", json!({"Username": "erin"})).await;
    assert_eq!(got["UserStatus"], "CONFIRMED");
    let (_, kind, message) = a
        .fails("AdminConfirmSignUp", json!({"Username": "erin"}))
        .await;
    assert_eq!(kind, "NotAuthorizedException");
    assert_eq!(
        message,
        "User cannot be confirmed. Current status is CONFIRMED"
    );
}

// ---- listing ----

#[tokio::test]
async fn list_users_filters_and_pages() {
    let a = admin().await;
    for i in 0..25 {
        let domain = if i % 5 == 0 {
            "corp.example"
        } else {
            "example.com"
        };
        a.idp
            .create_user(
                "main",
                &format!("user-{i:02}"),
                [("email".to_owned(), format!("u{i:02}@{domain}"))].into(),
                None,
            )
            .await
            .expect("user");
    }
    // 25 users, pages of 10: 10, 10, 5, each page after the last
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut body = json!({"Limit": 10});
        if let Some(t) = &token {
            body["PaginationToken"] = json!(t);
        }
        let page = a.ok("ListUsers", body).await;
        let users = page["Users"].as_array().expect("users").clone();
        pages.push(users.len());
        seen.extend(
            users
                .iter()
                .map(|u| u["Username"].as_str().unwrap_or_default().to_owned()),
        );
        token = page["PaginationToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, [10, 10, 5]);
    let expected: Vec<String> = (0..25).map(|i| format!("user-{i:02}")).collect();
    assert_eq!(seen, expected);

    let exact = a
        .ok(
            "ListUsers",
            json!({"Filter": "email = \"u07@example.com\""}),
        )
        .await;
    let names: Vec<&str> = exact["Users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["Username"].as_str())
        .collect();
    assert_eq!(names, ["user-07"]);
    let prefix = a
        .ok(
            "ListUsers",
            json!({"Filter": "email ^= \"u1\"", "Limit": 4}),
        )
        .await;
    assert_eq!(prefix["Users"].as_array().map(Vec::len), Some(4));
    let next = prefix["PaginationToken"].as_str().expect("more").to_owned();
    let rest = a
        .ok(
            "ListUsers",
            json!({"Filter": "email ^= \"u1\"", "Limit": 4, "PaginationToken": next}),
        )
        .await;
    let names: Vec<&str> = rest["Users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["Username"].as_str())
        .collect();
    assert_eq!(names, ["user-14", "user-15", "user-16", "user-17"]);
    let by_name = a
        .ok("ListUsers", json!({"Filter": "username ^= \"user-2\""}))
        .await;
    assert_eq!(by_name["Users"].as_array().map(Vec::len), Some(5));
    assert!(by_name.get("PaginationToken").is_none());
    let unconfirmed = a
        .ok(
            "ListUsers",
            json!({"Filter": "cognito:user_status = \"UNCONFIRMED\"", "Limit": 60}),
        )
        .await;
    assert_eq!(unconfirmed["Users"].as_array().map(Vec::len), Some(25));

    // AttributesToGet
    let only = a
        .ok(
            "ListUsers",
            json!({"Filter": "username = \"user-03\"", "AttributesToGet": ["email"]}),
        )
        .await;
    assert_eq!(
        only["Users"][0]["Attributes"],
        json!([{"Name": "email", "Value": "u03@example.com"}])
    );

    for (body, what) in [
        (json!({"Limit": 61}), "limit"),
        (json!({"Filter": "custom:team = \"x\""}), "attribute"),
        (json!({"Filter": "email = unquoted"}), "syntax"),
        (json!({"Filter": "x".repeat(257)}), "length"),
        (json!({"PaginationToken": "garbage!"}), "token"),
    ] {
        let (status, kind, _) = a.fails("ListUsers", body).await;
        assert_eq!(
            (status, kind.as_str()),
            (400, "InvalidParameterException"),
            "{what}"
        );
    }
}

// ---- groups ----

#[tokio::test]
async fn groups_are_created_listed_joined_and_deleted() {
    let a = admin().await;
    a.user("ann", "ann@example.com").await;
    a.user("ben", "ben@example.com").await;
    let created = a
        .ok(
            "CreateGroup",
            json!({"GroupName": "editors", "Description": "Edit things", "Precedence": 3,
                   "RoleArn": "arn:aws:iam::123456789012:role/editors"}),
        )
        .await;
    let group = &created["Group"];
    assert_eq!(group["GroupName"], "editors");
    assert_eq!(group["UserPoolId"], POOL_ID);
    assert_eq!(group["Precedence"], 3);
    assert_eq!(group["Description"], "Edit things");
    assert!(group["CreationDate"].is_i64());
    for name in ["editors", "admins"] {
        let (_, kind, _) = a.fails("CreateGroup", json!({"GroupName": name})).await;
        assert_eq!(kind, "GroupExistsException", "{name}");
    }
    let (_, kind, _) = a
        .fails("CreateGroup", json!({"GroupName": "neg", "Precedence": -1}))
        .await;
    assert_eq!(kind, "InvalidParameterException");

    let listed = a.ok("ListGroups", json!({})).await;
    let names: Vec<&str> = listed["Groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["GroupName"].as_str())
        .collect();
    assert_eq!(names, ["admins", "editors"]);
    let first = a.ok("ListGroups", json!({"Limit": 1})).await;
    let token = first["NextToken"].as_str().expect("next").to_owned();
    let second = a
        .ok("ListGroups", json!({"Limit": 1, "NextToken": token}))
        .await;
    assert_eq!(second["Groups"][0]["GroupName"], "editors");
    assert!(second.get("NextToken").is_none());

    for user in ["ann", "ben"] {
        a.ok(
            "AdminAddUserToGroup",
            json!({"Username": user, "GroupName": "editors"}),
        )
        .await;
    }
    a.ok(
        "AdminAddUserToGroup",
        json!({"Username": "ann", "GroupName": "admins"}),
    )
    .await;
    let (_, kind, _) = a
        .fails(
            "AdminAddUserToGroup",
            json!({"Username": "ann", "GroupName": "nope"}),
        )
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
    let (_, kind, _) = a
        .fails(
            "AdminAddUserToGroup",
            json!({"Username": "nobody", "GroupName": "admins"}),
        )
        .await;
    assert_eq!(kind, "UserNotFoundException");

    let of_ann = a
        .ok("AdminListGroupsForUser", json!({"Username": "ann"}))
        .await;
    let names: Vec<&str> = of_ann["Groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["GroupName"].as_str())
        .collect();
    assert_eq!(names, ["admins", "editors"]);
    let members = a
        .ok(
            "ListUsersInGroup",
            json!({"GroupName": "editors", "Limit": 1}),
        )
        .await;
    assert_eq!(members["Users"][0]["Username"], "ann");
    let token = members["NextToken"].as_str().expect("next").to_owned();
    let members = a
        .ok(
            "ListUsersInGroup",
            json!({"GroupName": "editors", "Limit": 1, "NextToken": token}),
        )
        .await;
    assert_eq!(members["Users"][0]["Username"], "ben");
    assert!(members.get("NextToken").is_none());

    // membership shows in tokens
    let tokens = a
        .public(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "ann", "PASSWORD": "Permanent-1"}}),
        )
        .await
        .expect("sign-in");
    let access = tokens["AuthenticationResult"]["AccessToken"]
        .as_str()
        .expect("token");
    let payload = access.split('.').nth(1).expect("payload");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("claims");
    assert_eq!(claims["cognito:groups"], json!(["admins", "editors"]));

    a.ok(
        "AdminRemoveUserFromGroup",
        json!({"Username": "ann", "GroupName": "editors"}),
    )
    .await;
    let of_ann = a
        .ok("AdminListGroupsForUser", json!({"Username": "ann"}))
        .await;
    assert_eq!(of_ann["Groups"].as_array().map(Vec::len), Some(1));

    let got = a.ok("GetGroup", json!({"GroupName": "editors"})).await;
    assert_eq!(
        got["Group"]["RoleArn"],
        "arn:aws:iam::123456789012:role/editors"
    );
    a.ok("DeleteGroup", json!({"GroupName": "editors"})).await;
    let (_, kind, _) = a
        .fails("DeleteGroup", json!({"GroupName": "editors"}))
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
    let (_, kind, message) = a.fails("DeleteGroup", json!({"GroupName": "admins"})).await;
    assert_eq!(kind, "InvalidParameterException");
    assert!(message.contains("configuration file"), "{message}");
    let (_, kind, _) = a
        .fails("ListUsersInGroup", json!({"GroupName": "editors"}))
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

// ---- sign-in ----

#[tokio::test]
async fn admin_sign_in_with_a_new_password_challenge_and_refresh() {
    let a = admin().await;
    a.ok(
        "AdminCreateUser",
        json!({"Username": "fay", "TemporaryPassword": "Temporary-1", "MessageAction": "SUPPRESS"}),
    )
    .await;
    for flow in ["ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"] {
        let challenge = a
            .ok(
                "AdminInitiateAuth",
                json!({"ClientId": "web", "AuthFlow": flow,
                       "AuthParameters": {"USERNAME": "fay", "PASSWORD": "Temporary-1"}}),
            )
            .await;
        assert_eq!(
            challenge["ChallengeName"], "NEW_PASSWORD_REQUIRED",
            "{flow}"
        );
    }
    let challenge = a
        .ok(
            "AdminInitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "fay", "PASSWORD": "Temporary-1"}}),
        )
        .await;
    let session = challenge["Session"].as_str().expect("session").to_owned();
    let done = a
        .ok(
            "AdminRespondToAuthChallenge",
            json!({"ClientId": "web", "ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": session,
                   "ChallengeResponses": {"USERNAME": "fay", "NEW_PASSWORD": "Permanent-2"}}),
        )
        .await;
    let refresh = done["AuthenticationResult"]["RefreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert!(done["AuthenticationResult"]["IdToken"].is_string());
    let got = a.ok("AdminGetUser", json!({"Username": "fay"})).await;
    assert_eq!(got["UserStatus"], "CONFIRMED");

    // wrong password, unknown user: the same answer; the client must be the pool's
    for (user, pw) in [("fay", "Wrong-pass-1"), ("nobody", "Wrong-pass-1")] {
        let (_, kind, message) = a
            .fails(
                "AdminInitiateAuth",
                json!({"ClientId": "web", "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                       "AuthParameters": {"USERNAME": user, "PASSWORD": pw}}),
            )
            .await;
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("NotAuthorizedException", "Incorrect username or password.")
        );
    }
    let (_, kind, _) = a
        .fails(
            "AdminInitiateAuth",
            json!({"ClientId": "other-web", "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "fay", "PASSWORD": "Permanent-2"}}),
        )
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
    // a client with a secret needs SECRET_HASH
    let (_, kind, _) = a
        .fails(
            "AdminInitiateAuth",
            json!({"ClientId": "confidential", "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "fay", "PASSWORD": "Permanent-2"}}),
        )
        .await;
    assert_eq!(kind, "NotAuthorizedException");
    let signed_in = a
        .ok(
            "AdminInitiateAuth",
            json!({"ClientId": "confidential", "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "fay", "PASSWORD": "Permanent-2",
                                      "SECRET_HASH": secret_hash("fay", "confidential")}}),
        )
        .await;
    assert!(signed_in["AuthenticationResult"]["AccessToken"].is_string());

    let refreshed = a
        .ok(
            "AdminInitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "REFRESH_TOKEN_AUTH",
                   "AuthParameters": {"REFRESH_TOKEN": refresh}}),
        )
        .await;
    let refresh = refreshed["AuthenticationResult"]["RefreshToken"]
        .as_str()
        .map_or(refresh, str::to_owned);
    assert!(refreshed["AuthenticationResult"]["AccessToken"].is_string());

    // global sign-out ends the refresh token
    a.ok("AdminUserGlobalSignOut", json!({"Username": "fay"}))
        .await;
    let refused = a
        .public(
            "InitiateAuth",
            json!({"ClientId": "web", "AuthFlow": "REFRESH_TOKEN_AUTH",
                   "AuthParameters": {"REFRESH_TOKEN": refresh}}),
        )
        .await
        .expect_err("signed out");
    assert_eq!(refused.1, "NotAuthorizedException");
}

// ---- describing ----

#[tokio::test]
async fn describe_pool_and_client() {
    let a = admin().await;
    a.user("gus", "gus@example.com").await;
    let pool = a.ok("DescribeUserPool", json!({})).await;
    let pool = &pool["UserPool"];
    assert_eq!(pool["Id"], POOL_ID);
    assert_eq!(pool["Name"], "main");
    assert_eq!(
        pool["Arn"],
        "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_main"
    );
    assert_eq!(pool["Policies"]["PasswordPolicy"]["MinimumLength"], 8);
    assert_eq!(pool["Policies"]["PasswordPolicy"]["RequireNumbers"], true);
    assert_eq!(pool["MfaConfiguration"], "OFF");
    assert_eq!(pool["EstimatedNumberOfUsers"], 1);
    let other = a
        .call("DescribeUserPool", json!({"UserPoolId": "us-east-1_other"}))
        .await
        .expect("the other pool");
    assert_eq!(other["UserPool"]["MfaConfiguration"], "OPTIONAL");
    assert!(pool["CreationDate"].as_i64().is_some_and(|d| d > 0));
    let schema = pool["SchemaAttributes"].as_array().expect("schema");
    let tier = schema
        .iter()
        .find(|s| s["Name"] == "custom:tier")
        .expect("tier");
    assert_eq!(tier["Mutable"], false);
    assert_eq!(tier["StringAttributeConstraints"]["MaxLength"], "32");

    let client = a
        .ok("DescribeUserPoolClient", json!({"ClientId": "web"}))
        .await;
    let client = &client["UserPoolClient"];
    assert_eq!(client["ClientId"], "web");
    assert_eq!(client["ClientName"], "Web app");
    assert_eq!(client["UserPoolId"], POOL_ID);
    assert_eq!(client["CallbackURLs"], json!(["http://localhost/cb"]));
    assert!(client.get("ClientSecret").is_none());
    let flows = client["ExplicitAuthFlows"].as_array().expect("flows");
    assert!(flows.contains(&json!("ALLOW_USER_SRP_AUTH")));
    let confidential = a
        .ok(
            "DescribeUserPoolClient",
            json!({"ClientId": "confidential"}),
        )
        .await;
    assert_eq!(
        confidential["UserPoolClient"]["ClientSecret"],
        CLIENT_SECRET
    );
    let (_, kind, _) = a
        .fails("DescribeUserPoolClient", json!({"ClientId": "other-web"}))
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

/// A pre sign-up webhook for `AdminCreateUser`: refuses names starting with `refused`, verifies
/// the email of the others; what it received.
async fn pre_sign_up_webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    use axum::routing::post;
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/pre-sign-up",
        post(move |axum::Json(mut event): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("seen").push(event.clone());
                if event["userName"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("refused")
                {
                    return (
                        http::StatusCode::BAD_REQUEST,
                        json!({"errorMessage": "not on the list"}).to_string(),
                    );
                }
                event["response"]["autoVerifyEmail"] = json!(true);
                event["response"]["autoConfirmUser"] = json!(true);
                (http::StatusCode::OK, event.to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/pre-sign-up"), seen)
}

#[tokio::test]
async fn admin_created_users_go_through_the_pre_sign_up_trigger() {
    let (url, seen) = pre_sign_up_webhook().await;
    let config = CONFIG.replacen(
        "groups = [\"admins\"]\n",
        &format!("groups = [\"admins\"]\ntriggers = {{ pre_sign_up = {{ url = \"{url}\" }} }}\n"),
        1,
    );
    let a = admin_with(&config).await;
    let created = a
        .call(
            "AdminCreateUser",
            json!({"UserPoolId": POOL_ID, "Username": "grace", "MessageAction": "SUPPRESS",
                   "TemporaryPassword": "Temporary-1",
                   "UserAttributes": [{"Name": "email", "Value": "grace@example.com"}],
                   "ClientMetadata": {"source": "backoffice"}}),
        )
        .await
        .expect("created");
    let user = &created["User"];
    // autoVerifyEmail applies; autoConfirmUser does not replace the temporary password
    assert_eq!(user["UserStatus"], "FORCE_CHANGE_PASSWORD");
    assert_eq!(
        attribute(&user["Attributes"], "email_verified"),
        Some("true")
    );
    let events = seen.lock().expect("seen").clone();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["triggerSource"], "PreSignUp_AdminCreateUser");
    assert_eq!(event["userPoolId"], POOL_ID);
    assert_eq!(
        event["callerContext"]["clientId"],
        "CLIENT_ID_NOT_APPLICABLE"
    );
    assert_eq!(
        event["request"]["userAttributes"]["email"],
        "grace@example.com"
    );
    assert_eq!(event["request"]["clientMetadata"]["source"], "backoffice");
    // a refusal creates nobody
    let (status, name, message) = a
        .call(
            "AdminCreateUser",
            json!({"UserPoolId": POOL_ID, "Username": "refused-ron", "MessageAction": "SUPPRESS"}),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        (status, name.as_str(), message.as_str()),
        (
            400,
            "UserLambdaValidationException",
            "PreSignUp failed with error not on the list."
        )
    );
    let (_, name, _) = a
        .call(
            "AdminGetUser",
            json!({"UserPoolId": POOL_ID, "Username": "refused-ron"}),
        )
        .await
        .expect_err("no user");
    assert_eq!(name, "UserNotFoundException");
}
