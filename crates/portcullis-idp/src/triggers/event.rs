//! The events of Cognito's Lambda triggers and what their answers say, without I/O: events
//! are built from values, answers are read from JSON (already size-bounded by the caller).
//!
//! Shapes as Cognito sends them (the `version: "1"` common fields, then `request` and an empty
//! `response` per trigger; pre token generation is the V1_0 event).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::store::UserRecord;

/// The `awsSdkVersion` of `callerContext`: Cognito names the SDK of the caller; Portcullis
/// does not know it.
const SDK_VERSION: &str = "aws-sdk-unknown-unknown";

/// Which trigger runs, named as in Cognito's error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    PreSignUp,
    PostConfirmation,
    PreAuthentication,
    PreTokenGeneration,
}

impl TriggerKind {
    /// The name in `UserLambdaValidationException: PreSignUp failed with error …`.
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::PreSignUp => "PreSignUp",
            TriggerKind::PostConfirmation => "PostConfirmation",
            TriggerKind::PreAuthentication => "PreAuthentication",
            TriggerKind::PreTokenGeneration => "PreTokenGeneration",
        }
    }
}

/// `triggerSource`: why a trigger runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerSource {
    /// `SignUp`.
    PreSignUpSignUp,
    /// An administrator creates a user (`AdminCreateUser`).
    PreSignUpAdminCreateUser,
    /// `ConfirmSignUp`.
    PostConfirmationConfirmSignUp,
    /// `ConfirmForgotPassword`.
    PostConfirmationConfirmForgotPassword,
    /// A sign-in proved the password (`USER_PASSWORD_AUTH`, SRP, the hosted page).
    PreAuthentication,
    /// Tokens of a sign-in by the JSON API.
    TokenAuthentication,
    /// Tokens after the `NEW_PASSWORD_REQUIRED` challenge.
    TokenNewPasswordChallenge,
    /// Tokens of a refresh token.
    TokenRefreshTokens,
    /// Tokens of the hosted sign-in (authorization code).
    TokenHostedAuth,
}

impl TriggerSource {
    /// The `triggerSource` value.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerSource::PreSignUpSignUp => "PreSignUp_SignUp",
            TriggerSource::PreSignUpAdminCreateUser => "PreSignUp_AdminCreateUser",
            TriggerSource::PostConfirmationConfirmSignUp => "PostConfirmation_ConfirmSignUp",
            TriggerSource::PostConfirmationConfirmForgotPassword => {
                "PostConfirmation_ConfirmForgotPassword"
            }
            TriggerSource::PreAuthentication => "PreAuthentication_Authentication",
            TriggerSource::TokenAuthentication => "TokenGeneration_Authentication",
            TriggerSource::TokenNewPasswordChallenge => "TokenGeneration_NewPasswordChallenge",
            TriggerSource::TokenRefreshTokens => "TokenGeneration_RefreshTokens",
            TriggerSource::TokenHostedAuth => "TokenGeneration_HostedAuth",
        }
    }

    /// The trigger this source belongs to.
    pub fn kind(self) -> TriggerKind {
        match self {
            TriggerSource::PreSignUpSignUp | TriggerSource::PreSignUpAdminCreateUser => {
                TriggerKind::PreSignUp
            }
            TriggerSource::PostConfirmationConfirmSignUp
            | TriggerSource::PostConfirmationConfirmForgotPassword => TriggerKind::PostConfirmation,
            TriggerSource::PreAuthentication => TriggerKind::PreAuthentication,
            TriggerSource::TokenAuthentication
            | TriggerSource::TokenNewPasswordChallenge
            | TriggerSource::TokenRefreshTokens
            | TriggerSource::TokenHostedAuth => TriggerKind::PreTokenGeneration,
        }
    }
}

/// What every event names: the pool, the user, the app client.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The user pool id (`{region}_{name}`); the region is the part before the first `_`.
    pub pool_id: &'a str,
    pub username: &'a str,
    pub client_id: &'a str,
}

/// The envelope shared by every event, with `request` and `response`.
pub fn event(source: TriggerSource, caller: &Caller<'_>, request: Value, response: Value) -> Value {
    let region = caller
        .pool_id
        .split_once('_')
        .map_or(caller.pool_id, |(r, _)| r);
    json!({
        "version": "1",
        "region": region,
        "userPoolId": caller.pool_id,
        "userName": caller.username,
        "callerContext": {
            "awsSdkVersion": SDK_VERSION,
            "clientId": caller.client_id,
        },
        "triggerSource": source.as_str(),
        "request": request,
        "response": response,
    })
}

/// `request.userAttributes` of a user who exists: every attribute as a string (`*_verified`
/// as `"true"`/`"false"`), with `sub` and `cognito:user_status`.
pub fn user_attributes(user: &UserRecord) -> Map<String, Value> {
    let mut out: Map<String, Value> = user
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    out.insert("sub".into(), json!(user.sub));
    out.insert("cognito:user_status".into(), json!(user.status.as_str()));
    if user.attributes.contains_key("email") && !out.contains_key("email_verified") {
        out.insert("email_verified".into(), json!("false"));
    }
    out
}

/// `request.userAttributes` of a sign-up: the attributes given, as strings.
pub fn given_attributes(attributes: &BTreeMap<String, String>) -> Map<String, Value> {
    attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// A map of strings from a call (`ValidationData`, `ClientMetadata`), or `null` without one.
fn metadata(map: Option<&Map<String, Value>>) -> Value {
    map.map_or(Value::Null, |m| Value::Object(m.clone()))
}

/// The pre sign-up event.
pub fn pre_sign_up(
    source: TriggerSource,
    caller: &Caller<'_>,
    attributes: &BTreeMap<String, String>,
    validation_data: Option<&Map<String, Value>>,
    client_metadata: Option<&Map<String, Value>>,
) -> Value {
    let mut request = json!({
        "userAttributes": given_attributes(attributes),
        "validationData": metadata(validation_data),
    });
    if let Some(m) = client_metadata {
        request["clientMetadata"] = Value::Object(m.clone());
    }
    event(
        source,
        caller,
        request,
        json!({"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}),
    )
}

/// The post confirmation event.
pub fn post_confirmation(
    source: TriggerSource,
    caller: &Caller<'_>,
    user: &UserRecord,
    client_metadata: Option<&Map<String, Value>>,
) -> Value {
    let mut request = json!({"userAttributes": user_attributes(user)});
    if let Some(m) = client_metadata {
        request["clientMetadata"] = Value::Object(m.clone());
    }
    event(source, caller, request, json!({}))
}

/// The pre authentication event; `validationData` is the sign-in's `ClientMetadata`, as
/// Cognito passes it.
pub fn pre_authentication(
    caller: &Caller<'_>,
    user: &UserRecord,
    client_metadata: Option<&Map<String, Value>>,
) -> Value {
    let request = json!({
        "userAttributes": user_attributes(user),
        "validationData": metadata(client_metadata),
    });
    event(TriggerSource::PreAuthentication, caller, request, json!({}))
}

/// The pre token generation event (V1_0).
pub fn pre_token_generation(
    source: TriggerSource,
    caller: &Caller<'_>,
    user: &UserRecord,
    groups: &[String],
    client_metadata: Option<&Map<String, Value>>,
) -> Value {
    let mut request = json!({
        "userAttributes": user_attributes(user),
        "groupConfiguration": {
            "groupsToOverride": groups,
            "iamRolesToOverride": [],
            "preferredRole": null,
        },
    });
    if let Some(m) = client_metadata {
        request["clientMetadata"] = Value::Object(m.clone());
    }
    event(
        source,
        caller,
        request,
        json!({"claimsOverrideDetails": null}),
    )
}

/// An answer that is not the event Cognito expects back (`InvalidLambdaResponseException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognizable lambda output: {0}")]
pub struct BadAnswer(pub &'static str);

/// The answer's `response` object: the answer must be an object; a missing or `null`
/// `response` is an empty one.
fn response(answer: &Value) -> Result<Map<String, Value>, BadAnswer> {
    let event = answer.as_object().ok_or(BadAnswer("not a JSON object"))?;
    match event.get("response") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(r)) => Ok(r.clone()),
        Some(_) => Err(BadAnswer("response is not an object")),
    }
}

/// A flag of `response`: absent or `null` is false.
fn flag(response: &Map<String, Value>, key: &'static str) -> Result<bool, BadAnswer> {
    match response.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(BadAnswer(key)),
    }
}

/// What a pre sign-up answer decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignUpDecision {
    /// The user is `CONFIRMED` at once; no code is sent.
    pub auto_confirm: bool,
    /// `email_verified` is set (when the user has an email).
    pub auto_verify_email: bool,
    /// `phone_number_verified` is set (when the user has a phone number).
    pub auto_verify_phone: bool,
}

impl SignUpDecision {
    /// Reads the answer of a pre sign-up trigger.
    pub fn from_answer(answer: &Value) -> Result<SignUpDecision, BadAnswer> {
        let r = response(answer)?;
        Ok(SignUpDecision {
            auto_confirm: flag(&r, "autoConfirmUser")?,
            auto_verify_email: flag(&r, "autoVerifyEmail")?,
            auto_verify_phone: flag(&r, "autoVerifyPhone")?,
        })
    }

    /// Marks the attributes the answer verifies, when the user has them.
    pub fn verify(&self, attributes: &mut BTreeMap<String, String>) {
        if self.auto_verify_email && attributes.contains_key("email") {
            attributes.insert("email_verified".into(), "true".into());
        }
        if self.auto_verify_phone && attributes.contains_key("phone_number") {
            attributes.insert("phone_number_verified".into(), "true".into());
        }
    }
}

/// Claims a pre token generation trigger may neither add, override nor suppress (Cognito's
/// list); a trigger naming them is ignored for them.
pub const RESERVED_CLAIMS: [&str; 17] = [
    "acr",
    "amr",
    "aud",
    "at_hash",
    "auth_time",
    "azp",
    "cognito:username",
    "exp",
    "iat",
    "identities",
    "iss",
    "jti",
    "nbf",
    "nonce",
    "origin_jti",
    "sub",
    "token_use",
];

/// Claims set by `groupOverrideDetails` only.
const GROUP_CLAIMS: [&str; 3] = ["cognito:groups", "cognito:roles", "cognito:preferred_role"];

fn reserved(claim: &str) -> bool {
    RESERVED_CLAIMS.contains(&claim) || GROUP_CLAIMS.contains(&claim) || claim == "event_id"
}

/// What a pre token generation answer (V1_0) changes in the tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenShaping {
    /// Claims added to (or replacing those of) the ID token.
    pub add: Map<String, Value>,
    /// Claims removed from the ID token.
    pub suppress: Vec<String>,
    /// `groupsToOverride`: replaces `cognito:groups` in the ID and access tokens.
    pub groups: Option<Vec<String>>,
    /// `iamRolesToOverride`: `cognito:roles` of the ID token.
    pub roles: Option<Vec<String>>,
    /// `preferredRole`: `cognito:preferred_role` of the ID token.
    pub preferred_role: Option<String>,
}

/// A list of strings, or `null` (absent).
fn strings(value: Option<&Value>, what: &'static str) -> Result<Option<Vec<String>>, BadAnswer> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(BadAnswer(what)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(BadAnswer(what)),
    }
}

/// An object, or `null` (absent).
fn object<'v>(
    value: Option<&'v Value>,
    what: &'static str,
) -> Result<Option<&'v Map<String, Value>>, BadAnswer> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(BadAnswer(what)),
    }
}

impl TokenShaping {
    /// Reads the answer of a pre token generation trigger. Reserved claims (and the group
    /// claims, which only `groupOverrideDetails` sets) are left out of `add` and `suppress`.
    pub fn from_answer(answer: &Value) -> Result<TokenShaping, BadAnswer> {
        let r = response(answer)?;
        let Some(details) = object(r.get("claimsOverrideDetails"), "claimsOverrideDetails")? else {
            return Ok(TokenShaping::default());
        };
        let mut shaping = TokenShaping::default();
        if let Some(add) = object(
            details.get("claimsToAddOrOverride"),
            "claimsToAddOrOverride",
        )? {
            for (claim, value) in add {
                if !value.is_string() {
                    return Err(BadAnswer("claimsToAddOrOverride values must be strings"));
                }
                if !reserved(claim) {
                    shaping.add.insert(claim.clone(), value.clone());
                }
            }
        }
        shaping.suppress = strings(details.get("claimsToSuppress"), "claimsToSuppress")?
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !reserved(c))
            .collect();
        if let Some(groups) = object(details.get("groupOverrideDetails"), "groupOverrideDetails")? {
            shaping.groups = strings(groups.get("groupsToOverride"), "groupsToOverride")?;
            shaping.roles = strings(groups.get("iamRolesToOverride"), "iamRolesToOverride")?;
            shaping.preferred_role = match groups.get("preferredRole") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(BadAnswer("preferredRole")),
            };
        }
        Ok(shaping)
    }

    /// Applies the shaping to the claims of an ID token; a claim both added and suppressed
    /// is suppressed (groups are given to the minting
    /// separately, for both tokens).
    pub fn apply_to_id(&self, claims: &mut Value) {
        let Some(c) = claims.as_object_mut() else {
            return;
        };
        for (claim, value) in &self.add {
            c.insert(claim.clone(), value.clone());
        }
        for claim in &self.suppress {
            c.remove(claim);
        }
        if let Some(roles) = self.roles.as_ref().filter(|r| !r.is_empty()) {
            c.insert("cognito:roles".into(), json!(roles));
        }
        if let Some(role) = &self.preferred_role {
            c.insert("cognito:preferred_role".into(), json!(role));
        }
    }
}

#[cfg(test)]
mod tests;
