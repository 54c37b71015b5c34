//! `[static.NAME]` sites: files served from a directory, never anything outside it.

use portcullis_testkit::*;

struct Site {
    gw: TestGateway,
    base: String,
    _dir: tempfile::TempDir,
    _outside: tempfile::TempDir,
}

async fn site() -> Site {
    let dir = tempfile::tempdir().expect("tmp");
    let outside = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><h1>chat</h1>",
    )
    .expect("write");
    std::fs::write(dir.path().join("app.js"), "console.log('hi');").expect("write");
    std::fs::create_dir(dir.path().join("img")).expect("mkdir");
    std::fs::write(dir.path().join("img").join("index.html"), "img index").expect("write");
    std::fs::write(dir.path().join(".env"), "SECRET=1").expect("write");
    std::fs::write(outside.path().join("secret.txt"), "outside").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("leak.txt"),
    )
    .expect("symlink");
    let toml = format!(
        "[static.demo]\npath = \"/demo\"\ndir = \"{}\"\n",
        dir.path().display()
    );
    let gw = TestGateway::start(&toml).await;
    let base = gw.ws_url("").replacen("ws://", "http://", 1);
    Site {
        gw,
        base,
        _dir: dir,
        _outside: outside,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn files_are_served_with_types_validators_and_safety_headers() {
    let s = site().await;
    let http = client();
    let r = http
        .get(format!("{}/demo/", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("default-src 'self'")
    );
    assert_eq!(
        r.text().await.expect("body"),
        "<!doctype html><h1>chat</h1>"
    );

    let r = http
        .get(format!("{}/demo/app.js", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = r.headers()["etag"].clone();
    let again = http
        .get(format!("{}/demo/app.js", s.base))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("get");
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.expect("body").is_empty());

    let head = http
        .head(format!("{}/demo/app.js", s.base))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "18");

    let post = http
        .post(format!("{}/demo/app.js", s.base))
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn directories_redirect_to_their_slash_form() {
    let s = site().await;
    let http = client();
    for (path, location) in [
        ("/demo", "/demo/"),
        ("/demo?code=x", "/demo/?code=x"),
        ("/demo/img", "/demo/img/"),
    ] {
        let r = http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 301, "{path}");
        assert_eq!(r.headers()["location"], location, "{path}");
    }
    let r = http
        .get(format!("{}/demo/img/", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.text().await.expect("body"), "img index");
}

#[tokio::test]
async fn nothing_outside_the_directory_or_hidden_is_reachable() {
    let s = site().await;
    let http = client();
    for path in [
        "/demo/%2e%2e/%2e%2e/etc/passwd",
        "/demo/..%2f..%2fetc%2fpasswd",
        "/demo/.env",
        "/demo/leak.txt",
        "/demo/missing.js",
        "/demo/%00",
    ] {
        let r = http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 404, "{path}");
        let body = r.text().await.expect("body");
        assert!(
            !body.contains("outside") && !body.contains("SECRET"),
            "{path}: {body}"
        );
    }
    // Other paths are not the site's.
    let r = http
        .get(format!("{}/demos", s.base))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    drop(s.gw);
}
