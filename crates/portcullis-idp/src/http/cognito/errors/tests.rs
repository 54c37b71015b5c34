use super::*;

#[test]
fn each_error_type_has_its_name_status_and_fault() {
    for kind in ErrorType::ALL {
        let (status, fault) = match kind {
            ErrorType::InternalError => (500, Fault::Internal),
            ErrorType::AccessDenied => (403, Fault::Client),
            _ => (400, Fault::Client),
        };
        assert_eq!(kind.status().as_u16(), status, "{kind:?}");
        assert_eq!(kind.fault(), fault, "{kind:?}");
        // the status agrees with the one the fault falls back to (a refused credential is
        // the caller's fault, answered 403 as AWS answers it)
        if kind != ErrorType::AccessDenied {
            assert_eq!(kind.fault().status(), status, "{kind:?}");
        }
        let name = kind.name();
        assert!(name.ends_with("Exception"), "{name}");
        assert_eq!(format!("{kind:?}Exception"), name);
    }
    let mut names: Vec<_> = ErrorType::ALL.iter().map(|k| k.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ErrorType::ALL.len());
}

async fn wire(e: CognitoError) -> (u16, http::HeaderMap, Vec<u8>) {
    let response = e.into_response();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn errors_go_on_the_wire_as_cognito_sends_them() {
    let (status, headers, body) = wire(code_mismatch()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        br#"{"__type":"CodeMismatchException","message":"Invalid verification code provided, please try again."}"#
    );
    assert_eq!(headers["x-amzn-errortype"], "CodeMismatchException:");
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers.contains_key("x-amzn-requestid"));

    let (status, headers, body) = wire(internal(&"the store is down")).await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        br#"{"__type":"InternalErrorException","message":"Internal error"}"#
    );
    assert_eq!(headers["x-amzn-errortype"], "InternalErrorException:");
}

#[test]
fn provider_errors_map_to_their_cognito_types() {
    let table = [
        (IdpError::UserNotFound, ErrorType::UserNotFound),
        (IdpError::UserExists, ErrorType::UsernameExists),
        (
            IdpError::InvalidParameter("bad".into()),
            ErrorType::InvalidParameter,
        ),
        (IdpError::Config("broken".into()), ErrorType::InternalError),
    ];
    for (e, kind) in table {
        let got = CognitoError::from(e);
        assert_eq!(got.kind, kind, "{got}");
    }
    let e = CognitoError::from(ChallengeError::Invalid);
    assert_eq!(
        e.to_string(),
        "NotAuthorizedException: Invalid session for the user."
    );
    let e = CognitoError::from(ChallengeError::Full);
    assert_eq!(
        e.to_string(),
        "TooManyRequestsException: Too many pending sign-ins"
    );
    let e = CognitoError::from(AttributeError::Unauthorized("email_verified".into()));
    assert_eq!(e.kind, ErrorType::NotAuthorized);
    assert_eq!(e.fault(), Fault::Client);
}
