use serde_json::json;

use super::*;
use crate::store::UserStatus;

fn user() -> UserRecord {
    UserRecord {
        pool: "main".into(),
        username: "alice".into(),
        sub: "0b6c1f4e-0000-4000-8000-000000000001".into(),
        password_hash: Some("$argon2id$secret".into()),
        status: UserStatus::Confirmed,
        enabled: true,
        attributes: BTreeMap::from([
            ("email".to_owned(), "alice@example.com".to_owned()),
            ("custom:team".to_owned(), "blue".to_owned()),
        ]),
        failed_attempts: 0,
        locked_until: None,
        tokens_valid_after: 0,
        created_at: 0,
        updated_at: 0,
        srp: None,
    }
}

const CALLER: Caller<'static> = Caller {
    pool_id: "eu-west-1_main",
    username: "alice",
    client_id: "web",
};

#[test]
fn the_envelope_is_cognitos() {
    let meta = Map::from_iter([("k".to_owned(), json!("v"))]);
    let e = pre_token_generation(
        TriggerSource::TokenRefreshTokens,
        &CALLER,
        &user(),
        &["admins".to_owned()],
        Some(&meta),
    );
    assert_eq!(
        e,
        json!({
            "version": "1",
            "region": "eu-west-1",
            "userPoolId": "eu-west-1_main",
            "userName": "alice",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "web"},
            "triggerSource": "TokenGeneration_RefreshTokens",
            "request": {
                "userAttributes": {
                    "sub": "0b6c1f4e-0000-4000-8000-000000000001",
                    "email": "alice@example.com",
                    "email_verified": "false",
                    "custom:team": "blue",
                    "cognito:user_status": "CONFIRMED",
                },
                "groupConfiguration": {
                    "groupsToOverride": ["admins"],
                    "iamRolesToOverride": [],
                    "preferredRole": null,
                },
                "clientMetadata": {"k": "v"},
            },
            "response": {"claimsOverrideDetails": null},
        })
    );
    // the password hash is never part of an event
    assert!(!e.to_string().contains("argon2"));
}

#[test]
fn sign_up_events_carry_validation_data_and_default_answers() {
    let attrs = BTreeMap::from([("email".to_owned(), "a@example.com".to_owned())]);
    let data = Map::from_iter([("invite".to_owned(), json!("X1"))]);
    let e = pre_sign_up(
        TriggerSource::PreSignUpSignUp,
        &CALLER,
        &attrs,
        Some(&data),
        None,
    );
    assert_eq!(e["triggerSource"], "PreSignUp_SignUp");
    assert_eq!(
        e["request"],
        json!({"userAttributes": {"email": "a@example.com"}, "validationData": {"invite": "X1"}})
    );
    assert_eq!(
        e["response"],
        json!({"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false})
    );
    // the event answered unchanged decides nothing
    assert_eq!(
        SignUpDecision::from_answer(&e),
        Ok(SignUpDecision::default())
    );

    let pre_auth = pre_authentication(&CALLER, &user(), None);
    assert_eq!(
        pre_auth["triggerSource"],
        "PreAuthentication_Authentication"
    );
    assert_eq!(pre_auth["request"]["validationData"], Value::Null);
    let post = post_confirmation(
        TriggerSource::PostConfirmationConfirmForgotPassword,
        &CALLER,
        &user(),
        None,
    );
    assert_eq!(
        post["triggerSource"],
        "PostConfirmation_ConfirmForgotPassword"
    );
    assert_eq!(post["response"], json!({}));
}

#[test]
fn sign_up_answers() {
    let answer = json!({"response": {"autoConfirmUser": true, "autoVerifyEmail": true, "autoVerifyPhone": true}});
    let decision = SignUpDecision::from_answer(&answer).expect("valid answer");
    assert!(decision.auto_confirm && decision.auto_verify_email);
    let mut attrs = BTreeMap::from([("email".to_owned(), "a@example.com".to_owned())]);
    decision.verify(&mut attrs);
    assert_eq!(
        attrs.get("email_verified").map(String::as_str),
        Some("true")
    );
    assert!(!attrs.contains_key("phone_number_verified"));

    for (bad, why) in [
        (json!(null), "not a JSON object"),
        (json!("ok"), "not a JSON object"),
        (json!({"response": []}), "response is not an object"),
        (
            json!({"response": {"autoConfirmUser": "true"}}),
            "autoConfirmUser",
        ),
    ] {
        assert_eq!(
            SignUpDecision::from_answer(&bad),
            Err(BadAnswer(why)),
            "{bad}"
        );
    }
    assert_eq!(
        SignUpDecision::from_answer(&json!({"response": null})),
        Ok(SignUpDecision::default())
    );
}

#[test]
fn token_answers_add_suppress_and_override_groups_but_never_reserved_claims() {
    let answer = json!({"response": {"claimsOverrideDetails": {
        "claimsToAddOrOverride": {"custom_tier": "gold", "email": "other@example.com", "sub": "x", "iss": "y", "cognito:groups": "z"},
        "claimsToSuppress": ["custom:team", "aud", "exp", "both"],
        "groupOverrideDetails": {"groupsToOverride": ["gold"], "iamRolesToOverride": ["arn:aws:iam::1:role/r"], "preferredRole": "arn:aws:iam::1:role/r"},
    }}});
    let mut answer = answer;
    answer["response"]["claimsOverrideDetails"]["claimsToAddOrOverride"]["both"] = json!("b");
    let shaping = TokenShaping::from_answer(&answer).expect("valid answer");
    assert_eq!(shaping.groups, Some(vec!["gold".to_owned()]));
    let mut claims = json!({"sub": "s", "iss": "i", "aud": "web", "exp": 1, "email": "a@example.com", "custom:team": "blue"});
    shaping.apply_to_id(&mut claims);
    assert_eq!(
        claims,
        json!({
            "sub": "s", "iss": "i", "aud": "web", "exp": 1,
            "email": "other@example.com",
            "custom_tier": "gold",
            "cognito:roles": ["arn:aws:iam::1:role/r"],
            "cognito:preferred_role": "arn:aws:iam::1:role/r",
        })
    );

    assert_eq!(
        TokenShaping::from_answer(&json!({"response": {"claimsOverrideDetails": null}})),
        Ok(TokenShaping::default())
    );
    for bad in [
        json!({"response": {"claimsOverrideDetails": []}}),
        json!({"response": {"claimsOverrideDetails": {"claimsToAddOrOverride": {"n": 1}}}}),
        json!({"response": {"claimsOverrideDetails": {"claimsToSuppress": "email"}}}),
        json!({"response": {"claimsOverrideDetails": {"groupOverrideDetails": {"groupsToOverride": [1]}}}}),
    ] {
        assert!(TokenShaping::from_answer(&bad).is_err(), "{bad}");
    }
}
