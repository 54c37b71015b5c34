//! A signed-in user's own operations, authorized by an access token of this API: `GetUser`,
//! `UpdateUserAttributes`, `ChangePassword`, `GlobalSignOut`; and `RevokeToken`.

use std::net::IpAddr;

use portcullis_auth::jwt::JwtError;
use portcullis_config::Secret;
use serde_json::{Value, json};

use super::errors::{
    CognitoError, ErrorType as E, check_attributes, err, invalid_parameter, not_authorized,
};
use super::{ADMIN_SCOPE, Body, Cognito, attribute_list, opt_str, req_str};
use crate::attributes::{Writer, apply_user_changes, token_claims};
use crate::store::UserRecord;
use crate::{ClientAuth, IdpError, OAuthError, password, unix_now};

impl Cognito {
    /// Writes the standard and mutable custom attributes; a changed `email` or `phone_number`
    /// is no longer verified. Verification flags, immutable and undeclared attributes are
    /// refused, and nothing is written then.
    pub(super) async fn update_user_attributes(&self, body: &Body) -> Result<Value, CognitoError> {
        let mut user = self.token_user(body).await?;
        let changes = attribute_list(body, "UserAttributes")?;
        let state = self.idp.pool(&user.pool)?;
        check_attributes(&state.config, Writer::User, &changes)?;
        user.attributes = apply_user_changes(&user.attributes, &changes);
        user.updated_at = unix_now();
        self.idp.store.update_user(&user).await?;
        Ok(json!({"CodeDeliveryDetailsList": []}))
    }

    /// A verified access token of this API → the user.
    pub(super) async fn token_user(&self, body: &Body) -> Result<UserRecord, CognitoError> {
        Ok(self.token_session(body).await?.0)
    }

    /// A verified access token of this API → the user and the token's session (`origin_jti`).
    async fn token_session(
        &self,
        body: &Body,
    ) -> Result<(UserRecord, Option<String>), CognitoError> {
        let token = req_str(body, "AccessToken")?;
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| not_authorized("Invalid Access Token"))?;
        let verified = verifier.verify(token).await.map_err(|e| match e {
            JwtError::Expired => not_authorized("Access Token has expired"),
            _ => not_authorized("Invalid Access Token"),
        })?;
        if !verified.scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(not_authorized("Access Token does not have required scopes"));
        }
        let pool = self
            .issuers
            .get(&verified.issuer)
            .ok_or_else(|| not_authorized("Invalid Access Token"))?;
        let sub = verified
            .subject
            .as_deref()
            .ok_or_else(|| not_authorized("Invalid Access Token"))?;
        let iat = verified
            .claims
            .get("iat")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let origin = verified.claims.get("origin_jti").and_then(Value::as_str);
        if self.idp.is_revoked(origin, sub, iat).await {
            return Err(not_authorized("Access Token has been revoked"));
        }
        match self.idp.store.get_user_by_sub(sub).await? {
            Some(u) if u.pool == *pool => Ok((u, origin.map(str::to_owned))),
            _ => Err(err(E::UserNotFound, "User does not exist.")),
        }
    }

    pub(super) async fn get_user(&self, body: &Body) -> Result<Value, CognitoError> {
        let user = self.token_user(body).await?;
        let mut attrs = vec![json!({"Name": "sub", "Value": user.sub})];
        attrs.extend(token_claims(&user.attributes).map(|(k, v)| json!({"Name": k, "Value": v})));
        let mut answer = json!({"Username": user.username, "UserAttributes": attrs});
        self.mfa_settings(&user, &mut answer).await?;
        Ok(answer)
    }

    pub(super) async fn change_password(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, CognitoError> {
        let (user, session) = self.token_session(body).await?;
        if let Some(ip) = ip {
            self.check_rate(&user.pool, ip)?;
        }
        let previous = Secret::new(req_str(body, "PreviousPassword")?);
        let proposed = Secret::new(req_str(body, "ProposedPassword")?);
        let state = self.idp.pool(&user.pool)?;
        password::check_policy(&state.config.password_policy, proposed.expose())
            .map_err(IdpError::from)?;
        let user = self.verify_with_lockout(user, &previous).await?;
        // every refresh token and every other session of the user end; this token lives on
        self.idp
            .change_password(&user.pool, &user.username, &proposed, session.as_deref())
            .await?;
        Ok(json!({}))
    }

    pub(super) async fn global_sign_out(&self, body: &Body) -> Result<Value, CognitoError> {
        let user = self.token_user(body).await?;
        self.idp.global_sign_out(&user.pool, &user.username).await?;
        Ok(json!({}))
    }

    pub(super) async fn revoke_token(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let token = Secret::new(req_str(body, "Token")?);
        let (pool, _client) = self.client(client_id)?;
        let auth = ClientAuth {
            client_id: client_id.to_owned(),
            secret: opt_str(body, "ClientSecret")?
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            basic: false,
        };
        self.idp
            .revoke(pool, &auth, &token)
            .await
            .map_err(|e| match e {
                OAuthError::InvalidClient => not_authorized("Invalid client credentials"),
                OAuthError::InvalidGrant => {
                    err(E::Unauthorized, "Token does not belong to this client")
                }
                OAuthError::UnsupportedTokenType => {
                    err(E::UnsupportedTokenType, "Unsupported token type")
                }
                OAuthError::Server(inner) => inner.into(),
                other => invalid_parameter(other.to_string()),
            })?;
        Ok(json!({}))
    }
}
