//! User sessions: minting a session's access, ID and refresh tokens.

use portcullis_config::Secret;

use crate::keys::KeyError;
use crate::options::secs;
use crate::pool::PoolState;
use crate::store::{RefreshTokenRecord, UserRecord};
use crate::tokens::SessionInfo;
use crate::triggers::{TokenContext, TokenShaping, TriggerSource};
use crate::{IdentityProvider, IdpError, store, tokens};

/// Tokens of one user session.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub access_token: Secret,
    pub id_token: Secret,
    /// Absent when refreshing without rotation (Cognito returns no new refresh token).
    pub refresh_token: Option<Secret>,
    pub expires_in: i64,
}

impl IdentityProvider {
    /// Mints access + ID tokens for a user session (shared by sign-in and refresh), as the
    /// pre token generation trigger's `shaping` says.
    #[allow(clippy::too_many_arguments)] // private; every argument is a distinct claim source
    pub(crate) fn mint_user_tokens(
        &self,
        state: &PoolState,
        user: &UserRecord,
        groups: &[String],
        client_id: &str,
        scopes: &[String],
        origin_jti: &str,
        auth_time: i64,
        now: i64,
        nonce: Option<&str>,
        shaping: &TokenShaping,
    ) -> Result<(Secret, Secret, i64), IdpError> {
        let groups = shaping.groups.as_deref().unwrap_or(groups);
        let event_id = tokens::uuid_v4();
        let session = SessionInfo {
            issuer: &state.issuer,
            client_id,
            sub: &user.sub,
            username: &user.username,
            groups,
            origin_jti,
            event_id: &event_id,
            auth_time,
        };
        let access_ttl = secs(state.config.access_token_ttl);
        let access = tokens::access_claims(
            &session,
            &scopes.join(" "),
            &tokens::uuid_v4(),
            now,
            access_ttl,
        );
        let mut id = tokens::id_claims(
            &session,
            &user.attributes,
            &tokens::uuid_v4(),
            now,
            secs(state.config.id_token_ttl),
        );
        if let (Some(nonce), Some(claims)) = (nonce, id.as_object_mut()) {
            claims.insert("nonce".into(), serde_json::json!(nonce));
        }
        shaping.apply_to_id(&mut id);
        Ok((state.sign(&access, now)?, state.sign(&id, now)?, access_ttl))
    }

    /// Starts a session for an authenticated user: access, ID and refresh token. Used by the
    /// sign-in flows (later phase) and tests; the caller has checked the password.
    pub async fn issue_session(
        &self,
        pool: &str,
        client_id: &str,
        username: &str,
        scopes: &[String],
    ) -> Result<SessionTokens, IdpError> {
        let context = TokenContext::new(TriggerSource::TokenAuthentication);
        self.issue_session_for(pool, client_id, username, scopes, None, &context)
            .await
    }

    /// [`issue_session`](Self::issue_session) of the hosted sign-in, whose ID token carries
    /// `nonce` (OIDC, code flow).
    pub async fn issue_session_with_nonce(
        &self,
        pool: &str,
        client_id: &str,
        username: &str,
        scopes: &[String],
        nonce: Option<&str>,
    ) -> Result<SessionTokens, IdpError> {
        let context = TokenContext::new(TriggerSource::TokenHostedAuth);
        self.issue_session_for(pool, client_id, username, scopes, nonce, &context)
            .await
    }

    /// Starts a session whose tokens the pool's pre token generation trigger shapes for
    /// `context` (run before anything is stored: its error leaves no session).
    pub async fn issue_session_for(
        &self,
        pool: &str,
        client_id: &str,
        username: &str,
        scopes: &[String],
        nonce: Option<&str>,
        context: &TokenContext,
    ) -> Result<SessionTokens, IdpError> {
        let state = self.pool(pool)?;
        let client = self
            .store
            .get_client(client_id)
            .await?
            .filter(|c| c.pool == pool)
            .ok_or_else(|| IdpError::InvalidParameter("unknown client".into()))?;
        let user = self.user(pool, username).await?;
        if !user.enabled {
            return Err(IdpError::InvalidParameter("user is disabled".into()));
        }
        let groups = self.store.user_groups(pool, username).await?;
        let shaping = self
            .pre_token_generation(&state.config, context, &client.client_id, &user, &groups)
            .await?;
        let now = self.now();
        let origin_jti = tokens::uuid_v4();
        let refresh = tokens::random_token()
            .ok_or(IdpError::Key(KeyError("no randomness for refresh token")))?;
        self.store
            .insert_refresh_token(&RefreshTokenRecord {
                token_hash: store::SecretBytes(tokens::refresh_token_hash(&refresh)),
                pool: pool.to_owned(),
                client_id: client.client_id.clone(),
                username: username.to_owned(),
                scopes: scopes.to_vec(),
                origin_jti: origin_jti.clone(),
                auth_time: now,
                created_at: now,
                expires_at: now.saturating_add(secs(state.config.refresh_token_ttl)),
                revoked: false,
            })
            .await?;
        let (access, id, expires_in) = self.mint_user_tokens(
            state,
            &user,
            &groups,
            &client.client_id,
            scopes,
            &origin_jti,
            now,
            now,
            nonce,
            &shaping,
        )?;
        Ok(SessionTokens {
            access_token: access,
            id_token: id,
            refresh_token: Some(Secret::new(refresh)),
            expires_in,
        })
    }
}
