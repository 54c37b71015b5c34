//! Who signed an `AWS_IAM` request, as API Gateway shows it to integrations: the caller fields
//! of a WebSocket event's `requestContext.identity` and the `requestContext.authorizer.iam`
//! object of an HTTP API (payload format 2.0) event, for temporary credentials of a Cognito
//! identity pool (an assumed role, session name `CognitoIdentityCredentials`).

use serde::Serialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// The session name AWS gives the role sessions of identity-pool credentials.
pub const COGNITO_SESSION_NAME: &str = "CognitoIdentityCredentials";

/// The caller behind identity-pool credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account_id: String,
    pub access_key: String,
    /// `arn:aws:iam::{account}:role/{name}`.
    pub role_arn: String,
    /// The role's name (the last segment of its ARN).
    pub role_name: String,
    pub identity_id: String,
    pub identity_pool_id: String,
    pub authenticated: bool,
    /// For an authenticated identity: the login's provider (`localhost:8080/pools/main`) and
    /// user (`sub`).
    pub login: Option<(String, String)>,
}

/// The `requestContext.identity` caller fields in API Gateway's order (`sourceIp` and
/// `userAgent` are the event's own).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityFields<'a> {
    pub cognito_identity_pool_id: &'a str,
    pub account_id: &'a str,
    pub cognito_identity_id: &'a str,
    pub caller: String,
    pub access_key: &'a str,
    pub cognito_authentication_type: &'static str,
    pub cognito_authentication_provider: Option<String>,
    pub user_arn: String,
    pub user: String,
}

impl CallerIdentity {
    /// `AROA` and 17 upper-case base32 characters derived from the role ARN: stable, and
    /// shaped like the unique id AWS gives a role.
    pub fn role_id(&self) -> String {
        role_id(&self.role_arn)
    }

    /// `{ROLEID}:CognitoIdentityCredentials`: `caller`, `user`, `callerId`, `userId`.
    pub fn caller_id(&self) -> String {
        format!("{}:{COGNITO_SESSION_NAME}", self.role_id())
    }

    /// `arn:aws:sts::{account}:assumed-role/{role}/CognitoIdentityCredentials`.
    pub fn user_arn(&self) -> String {
        format!(
            "arn:aws:sts::{}:assumed-role/{}/{COGNITO_SESSION_NAME}",
            self.account_id, self.role_name
        )
    }

    /// `authenticated` or `unauthenticated`.
    pub fn authentication_type(&self) -> &'static str {
        if self.authenticated {
            "authenticated"
        } else {
            "unauthenticated"
        }
    }

    /// `{provider},{provider}:CognitoSignIn:{sub}` for an authenticated identity.
    pub fn authentication_provider(&self) -> Option<String> {
        self.login
            .as_ref()
            .map(|(provider, sub)| format!("{provider},{provider}:CognitoSignIn:{sub}"))
    }

    /// The caller fields of a WebSocket event's `requestContext.identity`.
    pub fn identity_fields(&self) -> IdentityFields<'_> {
        IdentityFields {
            cognito_identity_pool_id: &self.identity_pool_id,
            account_id: &self.account_id,
            cognito_identity_id: &self.identity_id,
            caller: self.caller_id(),
            access_key: &self.access_key,
            cognito_authentication_type: self.authentication_type(),
            cognito_authentication_provider: self.authentication_provider(),
            user_arn: self.user_arn(),
            user: self.caller_id(),
        }
    }

    /// `requestContext.authorizer` of an HTTP API event: `{"iam": {...}}` as API Gateway
    /// fills it for a Cognito-federated caller.
    pub fn http_authorizer(&self) -> Value {
        let mut amr = vec![Value::from(self.authentication_type())];
        if let Some((provider, sub)) = &self.login {
            amr.push(Value::from(provider.as_str()));
            amr.push(Value::from(format!("{provider}:CognitoSignIn:{sub}")));
        }
        json!({
            "iam": {
                "accessKey": self.access_key,
                "accountId": self.account_id,
                "callerId": self.caller_id(),
                "cognitoIdentity": {
                    "amr": amr,
                    "identityId": self.identity_id,
                    "identityPoolId": self.identity_pool_id,
                },
                "principalOrgId": Value::Null,
                "userArn": self.user_arn(),
                "userId": self.caller_id(),
            }
        })
    }
}

/// See [`CallerIdentity::role_id`].
pub fn role_id(role_arn: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha1::digest(role_arn.as_bytes());
    let mut out = String::with_capacity(21);
    out.push_str("AROA");
    // 17 base32 characters take 85 bits of the 160-bit digest.
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &byte in digest.iter() {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 && out.len() < 21 {
            bits -= 5;
            let index = ((acc >> bits) & 31) as usize;
            out.push(char::from(ALPHABET[index]));
        }
        acc &= (1 << bits) - 1;
        if out.len() == 21 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests;
