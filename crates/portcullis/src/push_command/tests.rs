//! Where `push` sends (from a configuration) and how it bounds and reports its input.

use std::io::Cursor;

use super::target::{admin_base, resolve};
use super::*;

const BASE: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_listen = "0.0.0.0:9191"

[management]
region = "eu-west-1"
credentials = [
  { access_key_id = "ADMINONLY", secret_access_key = "s1", scopes = ["admin"] },
  { access_key_id = "PUSHER", secret_access_key = "s2" },
]

[integrations.b]
type = "http"
url = "http://127.0.0.1:9000/events"
"#;

fn api(name: &str, stage: &str) -> String {
    format!(
        "[websocket.{name}]\nstage = \"{stage}\"\n[websocket.{name}.routes]\n\"$default\" = {{ integration = \"b\" }}\n"
    )
}

fn config(toml: &str) -> portcullis_config::Config {
    match portcullis_config::load_str(toml, "gw.toml", &|_| None) {
        Ok(c) => c,
        Err(d) => panic!("{d}"),
    }
}

#[test]
fn the_api_picks_the_stage_and_the_connections_credential_signs() {
    let cfg = config(&format!(
        "{BASE}{}{}",
        api("chat", "prod"),
        api("ops", "ops")
    ));
    let t = resolve(&cfg, "gw.toml", Some("ops"), None).expect("resolves");
    assert_eq!(t.base_url, "http://127.0.0.1:9191/ops");
    assert_eq!(t.credentials.access_key_id, "PUSHER");
    assert_eq!(t.credentials.secret_access_key, "s2");
    assert_eq!(t.credentials.region, "eu-west-1");
    assert!(
        t.origin.contains("server.admin_listen of gw.toml"),
        "{}",
        t.origin
    );
    let t = resolve(&cfg, "gw.toml", Some("chat"), Some("http://gw:9090/")).expect("resolves");
    assert_eq!(t.base_url, "http://gw:9090/prod");
}

#[test]
fn unknown_or_ambiguous_apis_and_missing_credentials_are_named() {
    let two = config(&format!(
        "{BASE}{}{}",
        api("chat", "prod"),
        api("ops", "ops")
    ));
    let err = |cfg, api| resolve(cfg, "gw.toml", api, None).err().unwrap_or_default();
    assert_eq!(
        err(&two, Some("caht")),
        "no WebSocket API \"caht\" in gw.toml (its WebSocket APIs: chat, ops)"
    );
    assert_eq!(
        err(&two, None),
        "gw.toml has several WebSocket APIs: choose one with --api (chat, ops)"
    );
    let one = config(&format!("{BASE}{}", api("chat", "prod")));
    assert!(resolve(&one, "gw.toml", None, None).is_ok());
    let none = config(BASE);
    assert_eq!(err(&none, None), "gw.toml has no WebSocket API to push to");
    let admin_only = config(&format!(
        "{}{}",
        BASE.replace(
            "  { access_key_id = \"PUSHER\", secret_access_key = \"s2\" },\n",
            ""
        ),
        api("chat", "prod")
    ));
    assert!(
        err(&admin_only, Some("chat"))
            .starts_with("no [management] credential with the \"connections\" scope in gw.toml"),
        "{}",
        err(&admin_only, Some("chat"))
    );
}

#[test]
fn wildcard_listen_addresses_are_reached_on_loopback() {
    let base = |s: &str| admin_base(s.parse().expect("address"));
    assert_eq!(
        base("0.0.0.0:9090").ok().as_deref(),
        Some("http://127.0.0.1:9090")
    );
    assert_eq!(base("[::]:9090").ok().as_deref(), Some("http://[::1]:9090"));
    assert_eq!(
        base("10.1.2.3:9090").ok().as_deref(),
        Some("http://10.1.2.3:9090")
    );
    assert!(base("127.0.0.1:0").is_err());
}

#[test]
fn messages_over_128_kib_are_refused_before_sending() {
    let exact = vec![b'x'; MAX_DATA_BYTES];
    assert_eq!(
        read_limited(Cursor::new(exact), "input")
            .map(|b| b.len())
            .ok(),
        Some(MAX_DATA_BYTES)
    );
    // an endless input: only the limit and one byte are read
    let endless = std::io::repeat(b'y');
    match read_limited(endless, "input") {
        Err(Failure::Error(m)) => assert!(m.contains("over 131072 bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn refusals_keep_the_aws_code_and_unreachable_names_the_listener() {
    let gone = ClientError::Api(portcullis_client::ApiError {
        status: 410,
        code: "GoneException".into(),
        message: "no such connection".into(),
    });
    assert_eq!(
        describe(gone, "x"),
        "no such connection (GoneException, HTTP 410)"
    );
    let down = ClientError::Unreachable {
        url: "http://127.0.0.1:9090/prod/@users/a".into(),
        reason: "Connection refused (os error 111)".into(),
    };
    assert_eq!(
        describe(
            down,
            "the admin listener at http://127.0.0.1:9090 (server.admin_listen of gw.toml)"
        ),
        "cannot reach the admin listener at http://127.0.0.1:9090 (server.admin_listen of gw.toml): \
         Connection refused (os error 111); is the gateway running?"
    );
}

#[test]
fn an_empty_recipient_is_refused() {
    let name = |r: Result<Recipient, String>| match r {
        Ok(Recipient::User(n)) => format!("user {n}"),
        Ok(Recipient::Topic(n)) => format!("topic {n}"),
        Ok(Recipient::Connection(n)) => format!("connection {n}"),
        Err(e) => e,
    };
    assert_eq!(
        name(recipient(Some("alice".into()), None, None)),
        "user alice"
    );
    assert_eq!(
        name(recipient(None, Some("room:1".into()), None)),
        "topic room:1"
    );
    assert_eq!(
        name(recipient(None, None, Some("abc=".into()))),
        "connection abc="
    );
    assert_eq!(
        name(recipient(Some(String::new()), None, None)),
        "--user needs a non-empty value"
    );
    assert_eq!(
        name(recipient(None, None, Some(String::new()))),
        "--connection needs a non-empty value"
    );
}
