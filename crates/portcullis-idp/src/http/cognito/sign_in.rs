//! Signing in: `InitiateAuth` (`USER_PASSWORD_AUTH`, `REFRESH_TOKEN_AUTH`; `USER_SRP_AUTH` is
//! [`super::srp`]'s), the `NEW_PASSWORD_REQUIRED` challenge (`RespondToAuthChallenge`) and its
//! sessions, what a user who proved the password gets, and the authentication result.

use portcullis_config::{AppClient, AuthFlow, Secret};
use serde_json::{Map, Value, json};

use super::errors::{
    CognitoError, ErrorType as E, bad_credentials, err, internal, invalid_parameter,
    not_authorized, password_answer,
};
use super::{ADMIN_SCOPE, Body, Cognito, opt_map, opt_str, req_str};
use crate::attributes::token_claims;
use crate::pending::challenges::{ChallengeError, Challenged, session_expiry, session_hash};
use crate::store::ChallengeRow;
use crate::store::{UserRecord, UserStatus};
use crate::triggers::{TokenContext, TriggerSource};
use crate::{OAuthError, tokens, unix_now};

impl Cognito {
    // ---- challenge sessions ----

    /// A new challenge session for `who`: the `Session` string of the answer. The store keeps
    /// its SHA-256, so the answer may reach another node.
    async fn new_session(&self, who: Challenged) -> Result<String, CognitoError> {
        let token = tokens::random_token().ok_or_else(|| internal(&"no randomness"))?;
        let session = format!("AYABe{token}");
        let now = unix_now();
        let row = ChallengeRow {
            session_hash: session_hash(&session),
            who,
            expires_at: session_expiry(now),
        };
        if !self
            .idp
            .store
            .open_challenge_session(&row, self.options.max_pending.max(1), now)
            .await?
        {
            return Err(ChallengeError::Full.into());
        }
        Ok(session)
    }

    fn authentication_result(tokens: &crate::SessionTokens) -> Value {
        let mut result = json!({
            "AccessToken": tokens.access_token.expose(),
            "IdToken": tokens.id_token.expose(),
            "ExpiresIn": tokens.expires_in,
            "TokenType": "Bearer",
        });
        if let Some(r) = &tokens.refresh_token {
            result["RefreshToken"] = json!(r.expose());
        }
        json!({"ChallengeParameters": {}, "AuthenticationResult": result})
    }

    /// A session of `username`, its tokens minted for `context` (the pre token generation
    /// trigger's source and metadata).
    pub(super) async fn start_session_for(
        &self,
        pool: &str,
        client_id: &str,
        username: &str,
        context: &TokenContext,
    ) -> Result<Value, CognitoError> {
        let scopes = [ADMIN_SCOPE.to_owned()];
        let tokens = self
            .idp
            .issue_session_for(pool, client_id, username, &scopes, None, context)
            .await?;
        Ok(Self::authentication_result(&tokens))
    }

    // ---- operations ----

    pub(super) async fn initiate_auth(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let flow = req_str(body, "AuthFlow")?;
        let empty = Map::new();
        let params = opt_map(body, "AuthParameters")?.unwrap_or(&empty);
        let (pool, client) = self.client(client_id)?;
        match flow {
            "USER_PASSWORD_AUTH" => self.password_auth(pool, client, params, body).await,
            "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => self.refresh_auth(pool, client, params).await,
            "USER_SRP_AUTH" => self.srp_auth(pool, client, params).await,
            "CUSTOM_AUTH" | "USER_AUTH" | "ADMIN_USER_PASSWORD_AUTH" | "ADMIN_NO_SRP_AUTH" => Err(
                invalid_parameter(format!("{flow} flow not enabled for this client")),
            ),
            _ => Err(invalid_parameter(format!("Unknown AuthFlow {flow}"))),
        }
    }

    async fn password_auth(
        &self,
        pool: &str,
        client: &AppClient,
        params: &Body,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        Self::check_flow(client, AuthFlow::UserPassword)?;
        let username = req_str(params, "USERNAME")?;
        let password = Secret::new(req_str(params, "PASSWORD")?);
        Self::check_secret_hash(client, username, opt_str(params, "SECRET_HASH")?)?;
        let Some(user) = self.idp.store.get_user(pool, username).await? else {
            // counted and locked out like a real user, with the same work and answers
            let check = self
                .idp
                .verify_unknown_user_password(pool, username, &password)
                .await;
            return Err(password_answer(check).err().unwrap_or_else(bad_credentials));
        };
        Self::check_has_password(&user)?;
        let user = self.verify_with_lockout(user, &password).await?;
        self.signed_in(pool, client, user, body).await
    }

    /// Refuses a flow the app client is not allowed (`auth_flows`).
    pub(super) fn check_flow(client: &AppClient, flow: AuthFlow) -> Result<(), CognitoError> {
        if client.auth_flows.contains(&flow) {
            Ok(())
        } else {
            Err(invalid_parameter(format!(
                "{} flow not enabled for this client",
                flow.name()
            )))
        }
    }

    /// A user without a password (created by an administrator without one, not a sign-up
    /// awaiting confirmation) must reset it first.
    pub(super) fn check_has_password(user: &UserRecord) -> Result<(), CognitoError> {
        if user.password_hash.is_none() && user.status != UserStatus::Unconfirmed {
            return Err(err(
                E::PasswordResetRequired,
                "Password reset required for the user",
            ));
        }
        Ok(())
    }

    /// The answer once a user proved the password (`USER_PASSWORD_AUTH`, `PASSWORD_VERIFIER`
    /// of the call `body`): refused when disabled, unconfirmed or by the pre authentication
    /// trigger, the `NEW_PASSWORD_REQUIRED` challenge for a temporary password, else the
    /// tokens.
    pub(super) async fn signed_in(
        &self,
        pool: &str,
        client: &AppClient,
        user: UserRecord,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        if !user.enabled {
            return Err(not_authorized("User is disabled."));
        }
        self.pre_authentication_trigger(body, &client.client_id, &user)
            .await?;
        match user.status {
            UserStatus::Unconfirmed => Err(err(E::UserNotConfirmed, "User is not confirmed.")),
            UserStatus::ForceChangePassword => {
                let session = self
                    .new_session(Challenged {
                        pool: pool.to_owned(),
                        client_id: client.client_id.clone(),
                        username: user.username.clone(),
                    })
                    .await?;
                let attrs: Map<String, Value> = token_claims(&user.attributes)
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                Ok(json!({
                    "ChallengeName": "NEW_PASSWORD_REQUIRED",
                    "Session": session,
                    "ChallengeParameters": {
                        "USER_ID_FOR_SRP": user.username,
                        "requiredAttributes": "[]",
                        "userAttributes": Value::Object(attrs).to_string(),
                    },
                }))
            }
            UserStatus::Confirmed => {
                let context = Self::token_context(body, TriggerSource::TokenAuthentication)?;
                // the second factor, when the pool asks for one
                self.after_password(pool, client, &user.username, &context)
                    .await
            }
        }
    }

    pub(super) async fn refresh_auth(
        &self,
        pool: &str,
        client: &AppClient,
        params: &Body,
    ) -> Result<Value, CognitoError> {
        Self::check_flow(client, AuthFlow::RefreshToken)?;
        let token = Secret::new(req_str(params, "REFRESH_TOKEN")?);
        if client.secret.is_some() {
            // SECRET_HASH is over the internal username the token belongs to
            let hash = tokens::refresh_token_hash(token.expose());
            let record = self
                .idp
                .store
                .get_refresh_token(&hash)
                .await?
                .filter(|r| r.client_id == client.client_id)
                .ok_or_else(|| not_authorized("Invalid Refresh Token"))?;
            Self::check_secret_hash(client, &record.username, opt_str(params, "SECRET_HASH")?)?;
        }
        let result = self.refreshed(pool, client, &token).await?;
        Ok(json!({"ChallengeParameters": {}, "AuthenticationResult": result}))
    }

    /// `GetTokensFromRefreshToken` (what Amplify v6 refreshes with): `{ClientId, RefreshToken,
    /// [ClientSecret]}` → `{AuthenticationResult}`, as `REFRESH_TOKEN_AUTH` answers. A client
    /// with a secret sends the secret itself here (no `SECRET_HASH`).
    pub(super) async fn get_tokens_from_refresh_token(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let (pool, client) = self.client(req_str(body, "ClientId")?)?;
        Self::check_flow(client, AuthFlow::RefreshToken)?;
        let token = Secret::new(req_str(body, "RefreshToken")?);
        if let Some(secret) = &client.secret {
            let given = opt_str(body, "ClientSecret")?.unwrap_or_default();
            if !crate::oauth_code::ct_eq(given, secret.expose()) {
                return Err(not_authorized(format!(
                    "Unable to verify secret hash for client {}",
                    client.client_id
                )));
            }
        }
        let result = self.refreshed(pool, client, &token).await?;
        Ok(json!({"AuthenticationResult": result}))
    }

    /// New tokens for a refresh token of `client` (`AuthenticationResult`).
    async fn refreshed(
        &self,
        pool: &str,
        client: &AppClient,
        token: &Secret,
    ) -> Result<Value, CognitoError> {
        let grant = self
            .idp
            .refresh(pool, &Self::client_auth(client), token)
            .await
            .map_err(|e| match e {
                OAuthError::UnauthorizedClient => {
                    invalid_parameter("REFRESH_TOKEN_AUTH flow not enabled for this client")
                }
                OAuthError::Server(inner) => inner.into(),
                _ => not_authorized("Invalid Refresh Token"),
            })?;
        let mut result = json!({
            "AccessToken": grant.access_token.expose(),
            "ExpiresIn": grant.expires_in,
            "TokenType": "Bearer",
        });
        if let Some(id) = &grant.id_token {
            result["IdToken"] = json!(id.expose());
        }
        // with rotation (as Cognito does when it is enabled): the next refresh token
        if let Some(next) = &grant.refresh_token {
            result["RefreshToken"] = json!(next.expose());
        }
        Ok(result)
    }

    pub(super) async fn respond_to_auth_challenge(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let challenge = req_str(body, "ChallengeName")?;
        let (pool, client) = self.client(client_id)?;
        match challenge {
            "PASSWORD_VERIFIER" => return self.password_verifier(pool, client, body).await,
            "SOFTWARE_TOKEN_MFA" => return self.software_token_mfa(pool, client, body).await,
            "MFA_SETUP" => return self.mfa_setup(pool, client, body).await,
            _ => {}
        }
        if challenge != "NEW_PASSWORD_REQUIRED" {
            return Err(invalid_parameter(format!(
                "Unsupported challenge {challenge}"
            )));
        }
        let empty = Map::new();
        let responses = opt_map(body, "ChallengeResponses")?.unwrap_or(&empty);
        let username = req_str(responses, "USERNAME")?;
        let new_password = Secret::new(req_str(responses, "NEW_PASSWORD")?);
        Self::check_secret_hash(client, username, opt_str(responses, "SECRET_HASH")?)?;
        let session = req_str(body, "Session")?;
        let challenged = Challenged {
            pool: pool.to_owned(),
            client_id: client.client_id.clone(),
            username: username.to_owned(),
        };
        let hash = session_hash(session);
        if !self
            .idp
            .store
            .challenge_session_live(&hash, &challenged, unix_now())
            .await?
        {
            return Err(ChallengeError::Invalid.into());
        }
        self.idp
            .set_password(pool, username, &new_password, true)
            .await?;
        // one answer per session: of two answering at once (on two nodes), one ends it
        if !self.idp.store.end_challenge_session(&hash).await? {
            return Err(ChallengeError::Invalid.into());
        }
        let context = Self::token_context(body, TriggerSource::TokenNewPasswordChallenge)?;
        // the second factor, when the pool asks for one
        self.after_password(pool, client, username, &context).await
    }
}
