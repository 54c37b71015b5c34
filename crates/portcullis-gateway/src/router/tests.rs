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
