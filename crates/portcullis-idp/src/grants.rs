//! The token and revocation endpoints' operations: client authentication, the
//! client-credentials and refresh-token grants, and revocation (RFC 7009).

use portcullis_config::Secret;

use crate::keys::KeyError;
use crate::options::secs;
use crate::pool::PoolState;
use crate::store::{ClientRecord, RefreshTokenRecord, RevokedSubject, StoreError};
use crate::triggers::{TokenContext, TriggerSource};
use crate::{IdentityProvider, IdpError, OAuthError, store, tokens, unix_now};

/// How a client authenticated at the token or revocation endpoint.
#[derive(Clone)]
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// True when the credentials came in an `Authorization: Basic` header.
    pub basic: bool,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .field("basic", &self.basic)
            .finish()
    }
}

/// A successful token endpoint answer.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub id_token: Option<Secret>,
    /// The next refresh token, when the client rotates them.
    pub refresh_token: Option<Secret>,
    pub expires_in: i64,
}

impl IdentityProvider {
    /// Authenticates a client of `pool`: confidential clients need their secret, public ones
    /// must not send one. Any mismatch is `invalid_client`.
    pub async fn authenticate_client(
        &self,
        pool: &str,
        auth: &ClientAuth,
    ) -> Result<ClientRecord, OAuthError> {
        let client = match self.store.get_client(&auth.client_id).await? {
            Some(c) if c.pool == pool => c,
            _ => return Err(OAuthError::InvalidClient),
        };
        match (&client.secret_hash, &auth.secret) {
            (Some(hash), Some(secret))
                if self.client_secret_matches(&client.client_id, secret, &hash.0) =>
            {
                Ok(client)
            }
            (None, None) => Ok(client),
            _ => Err(OAuthError::InvalidClient),
        }
    }

    /// The custom scopes (`identifier/name`) that exist in the pool's resource servers.
    pub(crate) async fn custom_scopes(&self, pool: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .store
            .list_resource_servers(pool)
            .await?
            .into_iter()
            .flat_map(|rs| {
                rs.scopes
                    .iter()
                    .map(|s| format!("{}/{s}", rs.identifier))
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// `grant_type=client_credentials`.
    pub async fn client_credentials(
        &self,
        pool: &str,
        auth: &ClientAuth,
        scope: Option<&str>,
    ) -> Result<TokenGrant, OAuthError> {
        let state = self.pool(pool)?;
        let client = self.authenticate_client(pool, auth).await?;
        if client.public || !client.grants.iter().any(|g| g == "client_credentials") {
            return Err(OAuthError::UnauthorizedClient);
        }
        let existing = self.custom_scopes(pool).await?;
        let grantable: Vec<&String> = client
            .allowed_scopes
            .iter()
            .filter(|s| existing.contains(s))
            .collect();
        let granted: Vec<String> = match scope.map(str::trim).filter(|s| !s.is_empty()) {
            Some(requested) => {
                let mut out: Vec<String> = Vec::new();
                for s in requested.split(' ').filter(|s| !s.is_empty()) {
                    if !grantable.iter().any(|g| *g == s) {
                        return Err(OAuthError::InvalidScope);
                    }
                    if !out.iter().any(|o| o == s) {
                        out.push(s.to_owned());
                    }
                }
                out
            }
            None => grantable.into_iter().cloned().collect(),
        };
        if granted.is_empty() {
            return Err(OAuthError::InvalidScope);
        }
        let now = unix_now();
        let ttl = secs(state.config.access_token_ttl);
        let claims = tokens::client_credentials_claims(
            &state.issuer,
            &client.client_id,
            &granted.join(" "),
            &tokens::uuid_v4(),
            now,
            ttl,
        );
        Ok(TokenGrant {
            access_token: state.sign(&claims, now)?,
            id_token: None,
            refresh_token: None,
            expires_in: ttl,
        })
    }

    /// True when refresh tokens of `client_id` rotate (`refresh_token_rotation`).
    pub(crate) fn rotates(state: &PoolState, client_id: &str) -> bool {
        state
            .config
            .clients
            .get(client_id)
            .is_some_and(|c| c.refresh_token_rotation)
    }

    /// `grant_type=refresh_token`: new access and ID tokens, same `origin_jti` and `auth_time`.
    /// A client with `refresh_token_rotation` also gets a new refresh token, and the one it
    /// presented stops working; presenting a refresh token that was already used ends the
    /// whole session (reuse of a stolen token), and of two parallel uses of one token at most
    /// one succeeds.
    pub async fn refresh(
        &self,
        pool: &str,
        auth: &ClientAuth,
        refresh_token: &Secret,
    ) -> Result<TokenGrant, OAuthError> {
        let state = self.pool(pool)?;
        let client = self.authenticate_client(pool, auth).await?;
        if !client.grants.iter().any(|g| g == "refresh_token")
            && !client
                .grants
                .iter()
                .any(|g| g == "authorization_code" || g == "password")
        {
            return Err(OAuthError::UnauthorizedClient);
        }
        let rotates = Self::rotates(state, &client.client_id);
        let now = self.now();
        let hash = tokens::refresh_token_hash(refresh_token.expose());
        let record = match self.store.get_refresh_token(&hash).await? {
            Some(r) if r.pool == pool && r.client_id == client.client_id => r,
            _ => return Err(OAuthError::InvalidGrant),
        };
        if record.revoked {
            // A used token of a session that still has a live one: it was rotated, and someone
            // presents it again (a stolen copy, or the thief's): the whole session ends.
            // (Tokens revoked by sign-out, revocation or a password change have no live
            // successor, and change nothing.)
            if rotates
                && self
                    .store
                    .revoke_live_family(pool, &record.username, &record.origin_jti)
                    .await?
                    > 0
            {
                tracing::warn!(pool, client_id = %client.client_id, "refresh token reused; session revoked");
                self.revoke_session_of(pool, &record).await?;
            }
            return Err(OAuthError::InvalidGrant);
        }
        if now >= record.expires_at || self.store.is_session_revoked(&record.origin_jti).await? {
            return Err(OAuthError::InvalidGrant);
        }
        let user = match self.store.get_user(pool, &record.username).await? {
            Some(u) if u.enabled && record.created_at >= u.tokens_valid_after => u,
            _ => return Err(OAuthError::InvalidGrant),
        };
        // before the refresh token rotates: a refusal leaves the session as it was
        let groups = self.store.user_groups(pool, &user.username).await?;
        let context = TokenContext::new(TriggerSource::TokenRefreshTokens);
        let shaping = self
            .pre_token_generation(&state.config, &context, &client.client_id, &user, &groups)
            .await?;
        let next_refresh = if rotates {
            let token = tokens::random_token()
                .ok_or(IdpError::Key(KeyError("no randomness for refresh token")))?;
            let next = RefreshTokenRecord {
                token_hash: store::SecretBytes(tokens::refresh_token_hash(&token)),
                created_at: now,
                revoked: false,
                ..record.clone()
            };
            if !self
                .store
                .rotate_refresh_token(&hash, &client.client_id, now, &next)
                .await?
            {
                // used at the same time by someone else: the same as a reuse
                tracing::warn!(pool, client_id = %client.client_id, "refresh token used twice at once; session revoked");
                self.revoke_session_of(pool, &record).await?;
                return Err(OAuthError::InvalidGrant);
            }
            Some(Secret::new(token))
        } else {
            None
        };
        let (access, id, expires_in) = self.mint_user_tokens(
            state,
            &user,
            &groups,
            &client.client_id,
            &record.scopes,
            &record.origin_jti,
            record.auth_time,
            now,
            None,
            &shaping,
        )?;
        Ok(TokenGrant {
            access_token: access,
            id_token: Some(id),
            refresh_token: next_refresh,
            expires_in,
        })
    }

    /// `/oauth2/revoke`: revokes a refresh token of this client and its session, or the
    /// session of an access token of this client (its refresh tokens, and every token carrying
    /// its `origin_jti`). Unknown, expired and foreign-issuer tokens succeed silently
    /// (RFC 7009); another client's token is `invalid_grant` and changes nothing; a
    /// client-credentials access token, which has no session, is `unsupported_token_type`.
    pub async fn revoke(
        &self,
        pool: &str,
        auth: &ClientAuth,
        token: &Secret,
    ) -> Result<(), OAuthError> {
        self.pool(pool)?;
        let client = self.authenticate_client(pool, auth).await?;
        let hash = tokens::refresh_token_hash(token.expose());
        let Some(record) = self.store.get_refresh_token(&hash).await? else {
            return self.revoke_access_token(pool, &client, token).await;
        };
        if record.pool != pool || record.client_id != client.client_id {
            return Err(OAuthError::InvalidGrant);
        }
        self.revoke_session_of(pool, &record).await?;
        Ok(())
    }

    pub(crate) async fn revoke_access_token(
        &self,
        pool: &str,
        client: &ClientRecord,
        token: &Secret,
    ) -> Result<(), OAuthError> {
        // Only what looks like a JWT is worth verifying.
        if token.expose().split('.').count() != 3 {
            return Ok(());
        }
        let Some(verifier) = self.access_verifier(pool) else {
            return Err(IdpError::Config("access-token verifier unavailable".into()).into());
        };
        let Ok(verified) = verifier.verify(token.expose()).await else {
            return Ok(());
        };
        let claim = |name: &str| {
            verified
                .claims
                .get(name)
                .and_then(serde_json::Value::as_str)
        };
        if claim("client_id") != Some(client.client_id.as_str()) {
            return Err(OAuthError::InvalidGrant);
        }
        let (Some(origin_jti), Some(sub)) = (claim("origin_jti"), verified.subject.as_deref())
        else {
            return Err(OAuthError::UnsupportedTokenType);
        };
        let Some(user) = self
            .store
            .get_user_by_sub(sub)
            .await?
            .filter(|u| u.pool == pool)
        else {
            return Ok(());
        };
        let state = self.pool(pool)?;
        let now = self.now();
        self.store
            .revoke_session_family(
                pool,
                &user.username,
                origin_jti,
                now,
                self.session_keep(state, now),
            )
            .await?;
        self.revoked(
            pool,
            RevokedSubject::Session {
                origin_jti: origin_jti.to_owned(),
            },
        )
        .await?;
        Ok(())
    }
}
