use super::*;

fn request(method: Method, path: &str, target: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(target) = target {
        builder = builder.header("x-amz-target", target);
    }
    builder.body(Body::empty()).unwrap()
}

#[test]
fn identity_requests() {
    let cognito = Some("AWSCognitoIdentityProviderService.InitiateAuth");
    assert!(is_identity_request(&request(
        Method::GET,
        "/pools/main/.well-known/openid-configuration",
        None
    )));
    assert!(is_identity_request(&request(Method::POST, "/", cognito)));
    // The Cognito API lives at `/` only, and needs its target.
    assert!(!is_identity_request(&request(
        Method::POST,
        "/api",
        cognito
    )));
    assert!(!is_identity_request(&request(Method::POST, "/", None)));
    assert!(!is_identity_request(&request(
        Method::POST,
        "/",
        Some("DynamoDB_20120810.GetItem")
    )));
    assert!(!is_identity_request(&request(Method::GET, "/pools", None)));
    assert!(!is_identity_request(&request(
        Method::GET,
        "/poolside/x",
        None
    )));
}

fn state() -> Arc<State> {
    State::for_tests()
}

fn site_at_root() -> Site {
    Site::new(&portcullis_config::StaticSite {
        name: "root".into(),
        path: "/".into(),
        dir: std::env::temp_dir(),
        index: "index.html".into(),
    })
    .unwrap()
}

#[test]
fn identity_endpoints_come_before_a_site_at_the_root() {
    let cognito = Some("AWSCognitoIdentityProviderService.InitiateAuth");
    let public = Public {
        state: state(),
        websocket: HashMap::new(),
        sse: HashMap::new(),
        identity: Some(axum::Router::new()),
        http_apis: Vec::new(),
        static_sites: vec![site_at_root()],
        limits: crate::abuse::Limits::for_tests(),
    };
    let select = |method, path, target| public.select(&request(method, path, target));
    assert_eq!(select(Method::POST, "/", cognito), PublicApp::Identity);
    assert_eq!(
        select(Method::GET, "/pools/main/login", None),
        PublicApp::Identity
    );
    assert_eq!(select(Method::POST, "/", None), PublicApp::StaticSite(0));
    assert_eq!(
        select(Method::GET, "/index.html", None),
        PublicApp::StaticSite(0)
    );

    // Without pools, the same paths are the site's.
    let public = Public {
        identity: None,
        ..public
    };
    let select = |method, path, target| public.select(&request(method, path, target));
    assert_eq!(select(Method::POST, "/", cognito), PublicApp::StaticSite(0));
    assert_eq!(
        select(Method::GET, "/pools/main/login", None),
        PublicApp::StaticSite(0)
    );
}

#[tokio::test]
async fn nothing_configured_is_a_json_404() {
    use http_body_util::BodyExt;
    let public = Public {
        state: state(),
        websocket: HashMap::new(),
        sse: HashMap::new(),
        identity: None,
        http_apis: Vec::new(),
        static_sites: Vec::new(),
        limits: crate::abuse::Limits::for_tests(),
    };
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let response = public.serve(request(Method::GET, "/x", None), peer).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"message":"Not Found"}"#);
}
