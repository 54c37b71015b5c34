//! Cookie sessions (`/pools/{pool}/session`): the page redeems its code here and only ever
//! sees cookies it cannot read.

use super::*;

const ORIGIN: &str = "http://localhost:8080";

struct Opened {
    status: u16,
    body: Value,
    set_cookies: Vec<String>,
}

async fn open_session(e: &Env, code: &str, origin: Option<&str>) -> Opened {
    let mut req = e.http.post(format!("{}/session", e.base)).form(&[
        ("grant_type", "authorization_code"),
        ("client_id", "web"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("code_verifier", VERIFIER),
    ]);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    let r = req.send().await.unwrap();
    let set_cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    Opened {
        status: r.status().as_u16(),
        body: r.json().await.unwrap(),
        set_cookies,
    }
}

fn set_cookie<'a>(opened: &'a Opened, name: &str) -> &'a str {
    opened
        .set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", opened.set_cookies))
}

/// `name=value` of a Set-Cookie line, as a browser would send it back.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The Cookie header a browser sends to `/pools/main/session/...` after sign-in.
fn jar(opened: &Opened) -> String {
    ["portcullis_access", "portcullis_refresh", "portcullis_csrf"]
        .iter()
        .map(|n| pair(set_cookie(opened, n)))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn post_with(e: &Env, path: &str, cookie: &str, csrf: Option<&str>) -> reqwest::Response {
    let mut req = e
        .http
        .post(format!("{}/session/{path}", e.base))
        .header("cookie", cookie)
        .form(&[("client_id", "web")]);
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    req.send().await.unwrap()
}

async fn describe(e: &Env, cookie: &str) -> (u16, Value) {
    let r = e
        .http
        .get(format!("{}/session", e.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_session_is_cookies_the_page_cannot_read() {
    let e = env().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    let opened = open_session(&e, &code, Some(ORIGIN)).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert_eq!(opened.body["username"], "alice");
    assert_eq!(opened.body["scope"], "openid email profile");
    assert!(opened.body["expires_in"].as_i64().unwrap() > 0);
    for token_field in ["access_token", "id_token", "refresh_token"] {
        assert!(opened.body.get(token_field).is_none(), "{}", opened.body);
    }

    let access = set_cookie(&opened, "portcullis_access");
    assert!(
        access.contains("HttpOnly") && access.contains("SameSite=Strict"),
        "{access}"
    );
    assert!(access.contains("Path=/;"), "{access}");
    let refresh = set_cookie(&opened, "portcullis_refresh");
    assert!(refresh.contains("HttpOnly"), "{refresh}");
    assert!(refresh.contains("Path=/pools/main/session;"), "{refresh}");
    let csrf = set_cookie(&opened, "portcullis_csrf");
    assert!(!csrf.contains("HttpOnly"), "the page must read it: {csrf}");
    assert_eq!(
        pair(csrf),
        format!("portcullis_csrf={}", opened.body["csrf"].as_str().unwrap())
    );

    // The access cookie is a real access token of the pool.
    let token = pair(access).split_once('=').unwrap().1.to_owned();
    let verified = remote_verifier(&e, "web").verify(&token).await.unwrap();
    assert_eq!(verified.token_use.as_deref(), Some("access"));
    assert_eq!(verified.claims["client_id"], "web");
    assert_eq!(verified.claims["username"], "alice");
    let (status, me) = describe(&e, &jar(&opened)).await;
    assert_eq!((status, me["username"].as_str()), (200, Some("alice")));
}

#[tokio::test]
async fn another_origin_cannot_open_a_session_and_the_code_survives() {
    let e = env().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    for origin in [
        Some("http://evil.example"),
        Some("http://localhost:8081"),
        None,
    ] {
        let refused = open_session(&e, &code, origin).await;
        assert_eq!(refused.status, 403, "{origin:?}");
        assert!(refused.set_cookies.is_empty(), "{:?}", refused.set_cookies);
    }
    // Nothing was lost: the code still works where it belongs.
    let opened = open_session(&e, &code, Some(ORIGIN)).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    // ... once.
    let replayed = open_session(&e, &code, Some(ORIGIN)).await;
    assert_eq!(replayed.status, 400);
    assert_eq!(replayed.body["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_and_logout_need_the_csrf_echo_and_logout_ends_the_session() {
    let e = env().await;
    let code = sign_in(&e, "web", CALLBACK).await;
    let opened = open_session(&e, &code, Some(ORIGIN)).await;
    let cookie = jar(&opened);
    let csrf = opened.body["csrf"].as_str().unwrap().to_owned();

    for wrong in [None, Some("not-the-cookie")] {
        assert_eq!(post_with(&e, "refresh", &cookie, wrong).await.status(), 403);
        assert_eq!(post_with(&e, "logout", &cookie, wrong).await.status(), 403);
    }
    // A sibling subdomain can add a CSRF cookie of its own that the browser sends first
    // ("cookie tossing"): a CSRF cookie sent twice is refused, whichever value is echoed.
    let tossed = format!("portcullis_csrf=tossed; {cookie}");
    for echo in ["tossed", csrf.as_str()] {
        assert_eq!(
            post_with(&e, "refresh", &tossed, Some(echo)).await.status(),
            403
        );
        assert_eq!(
            post_with(&e, "logout", &tossed, Some(echo)).await.status(),
            403
        );
    }
    // Still signed in after the refused attempts.
    assert_eq!(describe(&e, &cookie).await.0, 200);

    let r = post_with(&e, "refresh", &cookie, Some(&csrf)).await;
    assert_eq!(r.status(), 200);
    let renewed = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("portcullis_access=ey"));
    assert!(renewed, "a new access cookie is set");

    let mut revocations = e.idp.subscribe_revocations();
    let r = post_with(&e, "logout", &cookie, Some(&csrf)).await;
    assert_eq!(r.status(), 204);
    let cleared: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        cleared.iter().filter(|c| c.contains("Max-Age=0")).count(),
        3,
        "{cleared:?}"
    );
    assert!(
        revocations.try_recv().is_ok(),
        "logout revokes the session (closing its sockets)"
    );

    // The old cookies are worthless now.
    assert_eq!(describe(&e, &cookie).await.0, 401);
    let r = post_with(&e, "refresh", &cookie, Some(&csrf)).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}
