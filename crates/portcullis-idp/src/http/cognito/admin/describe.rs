//! `DescribeUserPool` and `DescribeUserPoolClient`: a pool's and an app client's
//! configuration in Cognito's shapes (`UserPoolType`, `UserPoolClientType`), built from the
//! configuration file, with the store's counts and dates. Pure shapes apart from the two
//! reads of the store.

use portcullis_config::{AppClient, Pool};
use serde_json::{Value, json};

use super::super::errors::{CognitoError, ErrorType as E, err};
use super::super::{Body, Cognito, req_str};
use crate::attributes::{STANDARD, VERIFICATION_FLAGS};
use crate::store::PoolSummary;

/// Days a temporary password stays valid, as Cognito's default says (Portcullis does not
/// expire them).
const TEMPORARY_PASSWORD_DAYS: u32 = 7;

/// The pool's ARN: `arn:aws:cognito-idp:{region}:{account}:userpool/{id}`.
pub(super) fn pool_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:cognito-idp:{region}:{account}:userpool/{id}")
}

/// `SchemaAttributes`: `sub`, the standard attributes, the verification flags and the pool's
/// custom attributes.
pub(super) fn schema_attributes(pool: &Pool) -> Vec<Value> {
    let string = |name: &str, mutable: bool, required: bool, max: u32| {
        json!({
            "Name": name,
            "AttributeDataType": "String",
            "DeveloperOnlyAttribute": false,
            "Mutable": mutable,
            "Required": required,
            "StringAttributeConstraints": {"MinLength": "0", "MaxLength": max.to_string()},
        })
    };
    let mut out = vec![string("sub", false, true, 2048)];
    for name in STANDARD {
        if name == "updated_at" {
            out.push(json!({
                "Name": name,
                "AttributeDataType": "Number",
                "DeveloperOnlyAttribute": false,
                "Mutable": true,
                "Required": false,
                "NumberAttributeConstraints": {"MinValue": "0"},
            }));
        } else {
            out.push(string(name, true, false, 2048));
        }
    }
    for name in VERIFICATION_FLAGS {
        out.push(json!({
            "Name": name,
            "AttributeDataType": "Boolean",
            "DeveloperOnlyAttribute": false,
            "Mutable": true,
            "Required": false,
        }));
    }
    for (name, attr) in &pool.custom_attributes {
        out.push(string(
            &format!("custom:{name}"),
            attr.mutable,
            false,
            attr.max_length,
        ));
    }
    out
}

/// `UserPoolType` of `pool` (named `name`).
pub(super) fn user_pool_type(
    name: &str,
    pool: &Pool,
    arn: &str,
    summary: Option<PoolSummary>,
) -> Value {
    let policy = &pool.password_policy;
    let created = summary.and_then(|s| s.created_at.or(Some(s.updated_at)));
    json!({
        "Id": pool.id,
        "Name": name,
        "Arn": arn,
        "Policies": {
            "PasswordPolicy": {
                "MinimumLength": policy.min_length,
                "RequireUppercase": policy.require_uppercase,
                "RequireLowercase": policy.require_lowercase,
                "RequireNumbers": policy.require_digits,
                "RequireSymbols": policy.require_symbols,
                "TemporaryPasswordValidityDays": TEMPORARY_PASSWORD_DAYS,
            },
        },
        "DeletionProtection": "INACTIVE",
        "SchemaAttributes": schema_attributes(pool),
        "MfaConfiguration": match pool.mfa {
            portcullis_config::Mfa::Off => "OFF",
            portcullis_config::Mfa::Optional => "OPTIONAL",
            portcullis_config::Mfa::On => "ON",
        },
        "EstimatedNumberOfUsers": summary.map_or(0, |s| s.users),
        "CreationDate": created.unwrap_or(0),
        "LastModifiedDate": summary.map_or(0, |s| s.updated_at),
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": !pool.self_sign_up},
        "UsernameConfiguration": {"CaseSensitive": true},
        "UserPoolTags": {},
    })
}

/// The OAuth flows of a client's grants, as Cognito names them.
fn oauth_flows(client: &AppClient) -> Vec<&'static str> {
    client
        .grants
        .iter()
        .filter_map(|g| match g.as_str() {
            "authorization_code" => Some("code"),
            "client_credentials" => Some("client_credentials"),
            _ => None,
        })
        .collect()
}

/// `UserPoolClientType` of `client` in `pool`. `ClientSecret` is there for a client with a
/// secret, as Cognito returns it.
pub(super) fn user_pool_client_type(
    pool: &Pool,
    client: &AppClient,
    summary: Option<PoolSummary>,
) -> Value {
    let mut flows: Vec<String> = client
        .auth_flows
        .iter()
        .map(|f| format!("ALLOW_{}", f.name()))
        .collect();
    // signed admin calls may always use it (see auth.rs)
    flows.push("ALLOW_ADMIN_USER_PASSWORD_AUTH".into());
    let oauth = oauth_flows(client);
    let mut v = json!({
        "UserPoolId": pool.id,
        "ClientName": client.name.as_deref().unwrap_or(&client.client_id),
        "ClientId": client.client_id,
        "LastModifiedDate": summary.map_or(0, |s| s.updated_at),
        "CreationDate": summary.and_then(|s| s.created_at).unwrap_or(0),
        "RefreshTokenValidity": pool.refresh_token_ttl.as_secs(),
        "AccessTokenValidity": pool.access_token_ttl.as_secs(),
        "IdTokenValidity": pool.id_token_ttl.as_secs(),
        "TokenValidityUnits": {
            "AccessToken": "seconds",
            "IdToken": "seconds",
            "RefreshToken": "seconds",
        },
        "ExplicitAuthFlows": flows,
        "SupportedIdentityProviders": ["COGNITO"],
        "CallbackURLs": client.callback_urls,
        "LogoutURLs": client.logout_urls,
        "AllowedOAuthFlows": oauth,
        "AllowedOAuthScopes": client.allowed_scopes,
        "AllowedOAuthFlowsUserPoolClient": !oauth.is_empty(),
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": true,
        "EnablePropagateAdditionalUserContextData": false,
        "AuthSessionValidity": 3,
    });
    if let Some(secret) = &client.secret {
        v["ClientSecret"] = json!(secret.expose());
    }
    v
}

impl Cognito {
    /// The region and account id of ARNs: `[management]`'s, or the pool id's region.
    fn arn_parts<'a>(&'a self, pool_id: &'a str) -> (&'a str, &'a str) {
        match &self.options.management {
            Some(m) => (m.region.as_str(), m.account_id.as_str()),
            None => (
                pool_id.split('_').next().unwrap_or(pool_id),
                portcullis_config::defaults::ACCOUNT_ID,
            ),
        }
    }

    pub(super) async fn describe_user_pool(&self, body: &Body) -> Result<Value, CognitoError> {
        let (name, state) = self.admin_pool(body)?;
        let summary = self.idp.store.pool_summary(name).await?;
        let (region, account) = self.arn_parts(&state.config.id);
        let arn = pool_arn(region, account, &state.config.id);
        Ok(json!({"UserPool": user_pool_type(name, &state.config, &arn, summary)}))
    }

    pub(super) async fn describe_user_pool_client(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let (name, state) = self.admin_pool(body)?;
        let client_id = req_str(body, "ClientId")?;
        let client = state.config.clients.get(client_id).ok_or_else(|| {
            err(
                E::ResourceNotFound,
                format!("User pool client {client_id} does not exist."),
            )
        })?;
        let summary = self.idp.store.pool_summary(name).await?;
        Ok(json!({"UserPoolClient": user_pool_client_type(&state.config, client, summary)}))
    }
}
