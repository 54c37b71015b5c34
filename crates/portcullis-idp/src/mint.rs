//! Tokens minted for an operator (`portcullis token mint --pool`): a user's access (and ID)
//! token or a client's client-credentials token, signed with the pool's current key exactly as
//! a sign-in or a `client_credentials` grant would sign them, without a password, a client
//! secret or a session (no refresh token is stored). Whoever can open the store holds the
//! signing keys anyway; this only saves them a sign-in.

use portcullis_config::Secret;

use crate::options::secs;
use crate::store::ClientRecord;
use crate::{IdentityProvider, IdpError, tokens};

/// What [`IdentityProvider::mint_for_user`] returns.
#[derive(Debug, Clone)]
pub struct MintedTokens {
    pub access_token: Secret,
    /// `None` for a client-credentials token.
    pub id_token: Option<Secret>,
    pub expires_in: i64,
}

impl IdentityProvider {
    /// The client of `pool` named `client_id`, else the pool's first client by id.
    async fn mint_client(
        &self,
        pool: &str,
        client_id: Option<&str>,
    ) -> Result<ClientRecord, IdpError> {
        let mut clients: Vec<ClientRecord> = self
            .store
            .list_clients(pool)
            .await?
            .into_iter()
            .filter(|c| c.pool == pool)
            .collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        match client_id {
            Some(id) => clients
                .into_iter()
                .find(|c| c.client_id == id)
                .ok_or_else(|| {
                    IdpError::InvalidParameter(format!("no client {id:?} in pool {pool:?}"))
                }),
            None => clients.into_iter().next().ok_or_else(|| {
                IdpError::InvalidParameter(format!(
                    "pool {pool:?} has no client to name as audience"
                ))
            }),
        }
    }

    /// Access and ID token of `username` (enabled) for `client_id` (default: the pool's first
    /// client), with `scopes` (default: `aws.cognito.signin.user.admin`, as a password sign-in).
    pub async fn mint_for_user(
        &self,
        pool: &str,
        username: &str,
        client_id: Option<&str>,
        scopes: &[String],
    ) -> Result<MintedTokens, IdpError> {
        let state = self.pool(pool)?;
        let user = self.user(pool, username).await?;
        if !user.enabled {
            return Err(IdpError::InvalidParameter("user is disabled".into()));
        }
        let client = self.mint_client(pool, client_id).await?;
        let groups = self.store.user_groups(pool, username).await?;
        let scopes: Vec<String> = if scopes.is_empty() {
            vec!["aws.cognito.signin.user.admin".to_owned()]
        } else {
            scopes.to_vec()
        };
        let now = self.now();
        let (access, id, expires_in) = self.mint_user_tokens(
            state,
            &user,
            &groups,
            &client.client_id,
            &scopes,
            &tokens::uuid_v4(),
            now,
            now,
            None,
            &crate::triggers::TokenShaping::default(),
        )?;
        Ok(MintedTokens {
            access_token: access,
            id_token: Some(id),
            expires_in,
        })
    }

    /// A client-credentials access token of `client_id` with `scopes` (default: every scope
    /// the client may be granted).
    pub async fn mint_for_client(
        &self,
        pool: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<MintedTokens, IdpError> {
        let state = self.pool(pool)?;
        let client = self.mint_client(pool, Some(client_id)).await?;
        let scope = if scopes.is_empty() {
            client.allowed_scopes.join(" ")
        } else {
            scopes.join(" ")
        };
        let now = self.now();
        let ttl = secs(state.config.access_token_ttl);
        let claims = tokens::client_credentials_claims(
            &state.issuer,
            &client.client_id,
            &scope,
            &tokens::uuid_v4(),
            now,
            ttl,
        );
        Ok(MintedTokens {
            access_token: state.sign(&claims, now)?,
            id_token: None,
            expires_in: ttl,
        })
    }
}
