use super::*;

fn caller(authenticated: bool) -> CallerIdentity {
    CallerIdentity {
        account_id: "123456789012".into(),
        access_key: "ASIAABCDEFGHIJKLMNOP".into(),
        role_arn: "arn:aws:iam::123456789012:role/chat-user".into(),
        role_name: "chat-user".into(),
        identity_id: "us-east-1:0f0e0d0c-0b0a-4900-8800-000000000001".into(),
        identity_pool_id: "us-east-1:app".into(),
        authenticated,
        login: authenticated.then(|| ("localhost:8080/pools/main".into(), "u-1".into())),
    }
}

#[test]
fn role_id_is_stable_and_shaped_like_aws() {
    let id = role_id("arn:aws:iam::123456789012:role/chat-user");
    assert_eq!(id.len(), 21);
    assert!(id.starts_with("AROA"));
    assert!(
        id.chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
    );
    assert_eq!(id, role_id("arn:aws:iam::123456789012:role/chat-user"));
    assert_ne!(id, role_id("arn:aws:iam::123456789012:role/chat-admin"));
}

#[test]
fn identity_fields_of_an_authenticated_caller() {
    let c = caller(true);
    let v = serde_json::to_value(c.identity_fields()).unwrap_or_default();
    let role = c.role_id();
    assert_eq!(
        v,
        json!({
            "cognitoIdentityPoolId": "us-east-1:app",
            "accountId": "123456789012",
            "cognitoIdentityId": "us-east-1:0f0e0d0c-0b0a-4900-8800-000000000001",
            "caller": format!("{role}:CognitoIdentityCredentials"),
            "accessKey": "ASIAABCDEFGHIJKLMNOP",
            "cognitoAuthenticationType": "authenticated",
            "cognitoAuthenticationProvider":
                "localhost:8080/pools/main,localhost:8080/pools/main:CognitoSignIn:u-1",
            "userArn": "arn:aws:sts::123456789012:assumed-role/chat-user/CognitoIdentityCredentials",
            "user": format!("{role}:CognitoIdentityCredentials"),
        })
    );
}

#[test]
fn http_authorizer_of_both_kinds() {
    let v = caller(true).http_authorizer();
    assert_eq!(
        v["iam"]["cognitoIdentity"]["amr"],
        json!([
            "authenticated",
            "localhost:8080/pools/main",
            "localhost:8080/pools/main:CognitoSignIn:u-1"
        ])
    );
    assert_eq!(v["iam"]["principalOrgId"], Value::Null);
    assert_eq!(
        v["iam"]["cognitoIdentity"]["identityPoolId"],
        "us-east-1:app"
    );
    let v = caller(false).http_authorizer();
    assert_eq!(
        v["iam"]["cognitoIdentity"]["amr"],
        json!(["unauthenticated"])
    );
    assert_eq!(v["iam"]["callerId"], v["iam"]["userId"]);
    let fields = serde_json::to_value(caller(false).identity_fields()).unwrap_or_default();
    assert_eq!(fields["cognitoAuthenticationProvider"], Value::Null);
    assert_eq!(fields["cognitoAuthenticationType"], "unauthenticated");
}
