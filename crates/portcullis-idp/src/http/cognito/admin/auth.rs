//! Server-side sign-in: `AdminInitiateAuth` (`ADMIN_USER_PASSWORD_AUTH` and its older name
//! `ADMIN_NO_SRP_AUTH`, `REFRESH_TOKEN_AUTH`, `USER_SRP_AUTH`) and
//! `AdminRespondToAuthChallenge`. They are the public sign-in's paths — the same lockout,
//! the same `NEW_PASSWORD_REQUIRED` challenge and sessions, the same tokens — with the pool
//! named by `UserPoolId` and the app client required to belong to it.
//!
//! The admin password flow is not gated by the client's `auth_flows` (only a holder of an
//! admin credential can start it); `REFRESH_TOKEN_AUTH` and `USER_SRP_AUTH` are, as in the
//! public API.

use portcullis_config::{AppClient, Secret};
use serde_json::{Map, Value};

use super::super::errors::{
    CognitoError, ErrorType as E, bad_credentials, err, invalid_parameter, password_answer,
};
use super::super::{Body, Cognito, opt_map, opt_str, req_str};

impl Cognito {
    /// The app client `ClientId` of the pool `UserPoolId` names.
    fn admin_client<'a>(&'a self, body: &Body) -> Result<(&'a str, &'a AppClient), CognitoError> {
        let (pool, state) = self.admin_pool(body)?;
        let client_id = req_str(body, "ClientId")?;
        state
            .config
            .clients
            .get(client_id)
            .map(|c| (pool, c))
            .ok_or_else(|| {
                err(
                    E::ResourceNotFound,
                    format!("User pool client {client_id} does not exist."),
                )
            })
    }

    pub(super) async fn admin_initiate_auth(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, client) = self.admin_client(body)?;
        let flow = req_str(body, "AuthFlow")?;
        let empty = Map::new();
        let params = opt_map(body, "AuthParameters")?.unwrap_or(&empty);
        match flow {
            "ADMIN_USER_PASSWORD_AUTH" | "ADMIN_NO_SRP_AUTH" => {
                self.admin_password_auth(pool, client, params, body).await
            }
            "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => self.refresh_auth(pool, client, params).await,
            "USER_SRP_AUTH" => self.srp_auth(pool, client, params).await,
            "CUSTOM_AUTH" | "USER_AUTH" | "USER_PASSWORD_AUTH" => Err(invalid_parameter(format!(
                "{flow} flow not enabled for this client"
            ))),
            _ => Err(invalid_parameter(format!("Unknown AuthFlow {flow}"))),
        }
    }

    /// `ADMIN_USER_PASSWORD_AUTH`: `USERNAME`, `PASSWORD` (and `SECRET_HASH` for a client with
    /// a secret), checked with the lockout exactly as `USER_PASSWORD_AUTH` checks them.
    async fn admin_password_auth(
        &self,
        pool: &str,
        client: &AppClient,
        params: &Body,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let username = req_str(params, "USERNAME")?;
        let password = Secret::new(req_str(params, "PASSWORD")?);
        Self::check_secret_hash(client, username, opt_str(params, "SECRET_HASH")?)?;
        let Some(user) = self.idp.store.get_user(pool, username).await? else {
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

    /// The public `RespondToAuthChallenge` for a client of the pool `UserPoolId` names.
    pub(super) async fn admin_respond_to_auth_challenge(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        self.admin_client(body)?;
        self.respond_to_auth_challenge(body).await
    }
}
