//! Nobody can crowd others out of hosted sign-in: `authorize` is rate limited and its pending
//! requests are bounded per client address and per pool; discovery and cookies say exactly
//! what the endpoints do.

use std::net::IpAddr;

use super::*;

/// The same server, seen from another loopback address.
fn from_address(e: &Env, ip: &str) -> Env {
    let ip: IpAddr = ip.parse().unwrap();
    Env {
        idp: Arc::clone(&e.idp),
        base: e.base.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip)
            .build()
            .unwrap(),
    }
}

async fn authorize_status(e: &Env, params: &[(&str, &str)]) -> (u16, String) {
    let r = e
        .http
        .get(authorize_url(&e.base, params))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Signs alice in through the hosted page and redeems the code: the whole flow works.
async fn completes_a_code_flow(e: &Env) {
    let code = sign_in(e, "web", CALLBACK).await;
    let (status, body) = exchange_public(e, &code, CALLBACK, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some());
}

#[tokio::test]
async fn authorize_takes_from_the_pools_rate_limit() {
    let e = env_from(config_from(
        &CONFIG.replace("[pools.main]\n", "[pools.main]\nrate_limit_per_ip = 1\n"),
    ))
    .await;
    let params = pkce_params("web", CALLBACK);
    // bursts of twice the rate
    for _ in 0..2 {
        assert_eq!(authorize_status(&e, &params).await.0, 200);
    }
    let (status, html) = authorize_status(&e, &params).await;
    assert_eq!(status, 429);
    assert!(html.contains("Too many attempts"), "{html}");
    // another address has its own bucket
    let other = from_address(&e, "127.0.0.2");
    assert_eq!(authorize_status(&other, &params).await.0, 200);
}

#[tokio::test]
async fn an_address_over_its_pending_cap_is_refused_and_others_still_sign_in() {
    let e = env().await;
    let cap = 5;
    e.idp.code_flow().set_pending_limits(PendingLimits {
        per_client: cap,
        ..PendingLimits::default()
    });
    let params = pkce_params("web", CALLBACK);
    let mut statuses = Vec::new();
    for _ in 0..cap + 3 {
        statuses.push(authorize_status(&e, &params).await.0);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), cap);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
    let (_, html) = authorize_status(&e, &params).await;
    assert!(html.contains("Too many sign-ins are in progress"), "{html}");
    assert_eq!(e.idp.code_flow().pending_count().await.unwrap(), cap as u64);

    completes_a_code_flow(&from_address(&e, "127.0.0.2")).await;

    // expiry frees the places
    e.idp.code_flow().advance_clock(PENDING_TTL_SECS);
    completes_a_code_flow(&e).await;
}

#[tokio::test]
async fn a_flood_from_many_addresses_does_not_push_out_a_users_sign_in() {
    let e = env().await;
    let per_pool = 12;
    e.idp.code_flow().set_pending_limits(PendingLimits {
        per_client: 3,
        per_pool,
        ..PendingLimits::default()
    });
    let user = from_address(&e, "127.0.0.2");
    let page = open_page(&user, &pkce_params("web", CALLBACK)).await;

    // fewer flooding addresses than places: each holds more than the user's one request
    let params = pkce_params("web", CALLBACK);
    let (mut served, mut refused) = (0, 0);
    for n in 10..20 {
        let flooder = from_address(&e, &format!("127.0.0.{n}"));
        for _ in 0..4 {
            match authorize_status(&flooder, &params).await.0 {
                200 => served += 1,
                429 => refused += 1,
                other => panic!("{other}"),
            }
        }
    }
    assert!(
        served > per_pool,
        "the full pool made room: {served} served"
    );
    assert!(refused > 0, "addresses over their cap were refused");
    assert_eq!(
        e.idp.code_flow().pending_count().await.unwrap(),
        per_pool as u64
    );

    // the user's page, opened before the flood, still signs in
    let r = login(&user, &page, "alice", "password1").await;
    let code = code_of(&r, CALLBACK);
    let (status, body) = exchange_public(&user, &code, CALLBACK, VERIFIER).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn discovery_advertises_exactly_the_response_types_authorize_accepts() {
    let e = env().await;
    let d: Value = e
        .http
        .get(format!("{}/.well-known/openid-configuration", e.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let advertised: Vec<&str> = d["response_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!advertised.is_empty());
    let with = |response_type: &'static str| {
        let mut params = pkce_params("web", CALLBACK);
        params[0] = ("response_type", response_type);
        params
    };
    for t in [
        "code",
        "token",
        "id_token",
        "code id_token",
        "code token",
        "none",
    ] {
        let r = e
            .http
            .get(authorize_url(&e.base, &with(t)))
            .send()
            .await
            .unwrap();
        if advertised.contains(&t) {
            assert_eq!(r.status(), 200, "{t} is advertised");
        } else {
            assert_eq!(r.status(), 302, "{t}");
            let location = r.headers()["location"].to_str().unwrap();
            assert!(
                location.contains("error=unsupported_response_type"),
                "{t}: {location}"
            );
        }
    }
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sign_in_cookie_is_secure_exactly_under_an_https_public_url() {
    for (public_url, secure) in [
        ("http://localhost:8080", false),
        ("https://id.example.com", true),
    ] {
        let e = env_from(config_from(
            &CONFIG.replace("http://localhost:8080\"\n", &format!("{public_url}\"\n")),
        ))
        .await;
        let r = e
            .http
            .get(authorize_url(&e.base, &pkce_params("web", CALLBACK)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let logout = e
            .http
            .get(format!(
                "{}/logout?client_id=web&logout_uri=http%3A%2F%2Flocalhost%3A8080%2Fbye",
                e.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), 302);
        let cookies = [set_cookies(&r), set_cookies(&logout)].concat();
        assert_eq!(cookies.len(), 2);
        for c in cookies {
            assert!(c.starts_with("portcullis_signin_csrf="), "{c}");
            assert_eq!(c.contains("; Secure"), secure, "{public_url}: {c}");
        }
    }
}
