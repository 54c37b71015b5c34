//! Users: creating, listing, showing and deleting them, their passwords, confirmation, groups,
//! and enabling or disabling them. Signing in with a password is [`crate::sign_in`]'s.

use std::collections::BTreeMap;

use portcullis_config::Secret;

use crate::store::{ClientRecord, RevokedSubject, UserRecord, UserStatus};
use crate::{IdentityProvider, IdpError, password, srp, tokens, unix_now};

/// A user with the groups it belongs to (`show user`).
#[derive(Debug, Clone)]
pub struct UserDetails {
    pub user: UserRecord,
    pub groups: Vec<String>,
}

/// Most users returned by one `list_users` call.
pub const MAX_LIST_USERS: u32 = 1000;

impl IdentityProvider {
    /// Creates a user. Without a password the user is `UNCONFIRMED`; with one it is
    /// `CONFIRMED` (permanent) or `FORCE_CHANGE_PASSWORD` (temporary).
    pub async fn create_user(
        &self,
        pool: &str,
        username: &str,
        attributes: BTreeMap<String, String>,
        password: Option<(&Secret, bool)>,
    ) -> Result<UserRecord, IdpError> {
        let state = self.pool(pool)?;
        let username = &crate::username::normalize(username)
            .map_err(|e| IdpError::InvalidParameter(e.to_string()))?;
        crate::attributes::check_write(
            &state.config,
            crate::attributes::Writer::Admin,
            &attributes,
        )
        .map_err(|e| IdpError::InvalidParameter(e.to_string()))?;
        let (password_hash, srp, status) = match password {
            Some((pw, permanent)) => {
                password::check_policy(&state.config.password_policy, pw.expose())?;
                let status = if permanent {
                    UserStatus::Confirmed
                } else {
                    UserStatus::ForceChangePassword
                };
                let verifier = self.srp_verifier(pool, username, pw).await?;
                (Some(self.hasher.hash(pw).await?), Some(verifier), status)
            }
            None => (None, None, UserStatus::Unconfirmed),
        };
        let now = unix_now();
        let user = UserRecord {
            pool: pool.to_owned(),
            username: username.to_owned(),
            sub: tokens::uuid_v4(),
            password_hash,
            status,
            enabled: true,
            attributes,
            failed_attempts: 0,
            locked_until: None,
            tokens_valid_after: 0,
            created_at: now,
            updated_at: now,
            srp,
        };
        self.store.create_user(&user).await?;
        Ok(user)
    }

    /// Users of a pool by username, at most `limit` (capped at [`MAX_LIST_USERS`]) after `after`.
    pub async fn list_users(
        &self,
        pool: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, IdpError> {
        self.pool(pool)?;
        Ok(self
            .store
            .list_users(pool, after, limit.min(MAX_LIST_USERS))
            .await?)
    }

    pub(crate) async fn user(&self, pool: &str, username: &str) -> Result<UserRecord, IdpError> {
        self.pool(pool)?;
        self.store
            .get_user(pool, username)
            .await?
            .ok_or(IdpError::UserNotFound)
    }

    pub async fn show_user(&self, pool: &str, username: &str) -> Result<UserDetails, IdpError> {
        let user = self.user(pool, username).await?;
        let groups = self.store.user_groups(pool, username).await?;
        Ok(UserDetails { user, groups })
    }

    /// Deletes a user; its refresh tokens go with it and its tokens count as revoked.
    pub async fn delete_user(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let user = self.user(pool, username).await?;
        if !self.store.delete_user(pool, username).await? {
            return Err(IdpError::UserNotFound);
        }
        self.revoked(
            pool,
            RevokedSubject::User {
                sub: user.sub,
                before: i64::MAX,
            },
        )
        .await
    }

    /// Sets a password (policy checked). Permanent → `CONFIRMED`; temporary →
    /// `FORCE_CHANGE_PASSWORD`. Clears a lockout, and ends every session of the user as
    /// [`global_sign_out`](Self::global_sign_out) does (admin set-password, a reset with a
    /// code, a first password after a temporary one).
    pub async fn set_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
        permanent: bool,
    ) -> Result<(), IdpError> {
        self.store_password(pool, username, password, permanent)
            .await?;
        self.end_sessions(pool, username).await
    }

    /// A user changes their own password with a token of session `current` (ChangePassword):
    /// every refresh token of the user is revoked and every other session ends at once; the
    /// access and ID tokens of `current` stay valid until they expire, as in Cognito.
    pub async fn change_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
        current: Option<&str>,
    ) -> Result<(), IdpError> {
        self.store_password(pool, username, password, true).await?;
        let state = self.pool(pool)?;
        let now = self.now();
        let ended = self
            .store
            .revoke_user_sessions(pool, username, current, now, self.session_keep(state, now))
            .await?;
        for origin_jti in ended {
            self.revoked(pool, RevokedSubject::Session { origin_jti })
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn store_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
        permanent: bool,
    ) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        password::check_policy(&state.config.password_policy, password.expose())?;
        let hash = self.hasher.hash(password).await?;
        let verifier = self.srp_verifier(pool, username, password).await?;
        let mut user = self.user(pool, username).await?;
        user.password_hash = Some(hash);
        user.srp = Some(verifier);
        user.status = if permanent {
            UserStatus::Confirmed
        } else {
            UserStatus::ForceChangePassword
        };
        user.failed_attempts = 0;
        user.locked_until = None;
        user.updated_at = self.now();
        self.store.update_user(&user).await?;
        Ok(())
    }

    /// A new SRP salt and verifier of `password` for `username` (the internal name, the one
    /// `USER_ID_FOR_SRP` returns) in `pool`, under the pool name the clients derive from the
    /// pool id. Computed on the hasher's blocking pool.
    pub(crate) async fn srp_verifier(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
    ) -> Result<srp::Verifier, IdpError> {
        let pool_name = self.srp_pool_name(pool)?.to_owned();
        let (username, password) = (username.to_owned(), password.clone());
        Ok(self
            .hasher
            .run(move || {
                srp::new_verifier(&pool_name, &username, password.expose(), &mut rand::rng())
            })
            .await?)
    }

    /// The pool name that enters SRP's hashes: the part of the pool id after its first `_`.
    pub(crate) fn srp_pool_name(&self, pool: &str) -> Result<&str, IdpError> {
        Ok(srp::pool_name(&self.pool(pool)?.config.id))
    }

    /// Verifies a user's password (admin checks and tests). Sign-in (later phase) must add
    /// lockout and hide unknown users from timing; this helper does neither.
    pub async fn check_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
    ) -> Result<bool, IdpError> {
        let user = self.user(pool, username).await?;
        match &user.password_hash {
            Some(phc) => Ok(self.hasher.verify(password, phc).await?),
            None => Ok(false),
        }
    }

    /// Confirms a sign-up with the code sent to the user's email address: `UNCONFIRMED` →
    /// `CONFIRMED`, and the address it reached is verified (`email_verified`).
    pub(crate) async fn confirm_sign_up_by_code(
        &self,
        pool: &str,
        username: &str,
    ) -> Result<(), IdpError> {
        let mut user = self.user(pool, username).await?;
        if user.status == UserStatus::Unconfirmed {
            user.status = UserStatus::Confirmed;
            if user.attributes.contains_key("email") {
                user.attributes
                    .insert("email_verified".into(), "true".into());
            }
            user.updated_at = unix_now();
            self.store.update_user(&user).await?;
        }
        Ok(())
    }

    /// `UNCONFIRMED` → `CONFIRMED` (AdminConfirmSignUp). Other statuses are left alone.
    pub async fn confirm_user(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let mut user = self.user(pool, username).await?;
        if user.status == UserStatus::Unconfirmed {
            user.status = UserStatus::Confirmed;
            user.updated_at = unix_now();
            self.store.update_user(&user).await?;
        }
        Ok(())
    }

    pub async fn enable_user(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let mut user = self.user(pool, username).await?;
        user.enabled = true;
        user.updated_at = unix_now();
        self.store.update_user(&user).await?;
        Ok(())
    }

    /// Disables a user: sign-in and refresh fail, and every token issued so far is revoked.
    pub async fn disable_user(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let mut user = self.user(pool, username).await?;
        let now = unix_now();
        user.enabled = false;
        user.tokens_valid_after = now;
        user.updated_at = now;
        self.store.update_user(&user).await?;
        self.store
            .revoke_user_refresh_tokens(pool, username)
            .await?;
        // Disabled: every token of the user, whenever it was issued.
        self.revoked(
            pool,
            RevokedSubject::User {
                sub: user.sub,
                before: i64::MAX,
            },
        )
        .await
    }

    pub async fn add_user_to_group(
        &self,
        pool: &str,
        username: &str,
        group: &str,
    ) -> Result<(), IdpError> {
        self.user(pool, username).await?;
        if !self
            .store
            .list_groups(pool)
            .await?
            .iter()
            .any(|g| g == group)
        {
            return Err(IdpError::GroupNotFound);
        }
        self.store.add_user_to_group(pool, username, group).await?;
        Ok(())
    }

    pub async fn remove_user_from_group(
        &self,
        pool: &str,
        username: &str,
        group: &str,
    ) -> Result<(), IdpError> {
        self.user(pool, username).await?;
        self.store
            .remove_user_from_group(pool, username, group)
            .await?;
        Ok(())
    }

    pub async fn list_groups(&self, pool: &str) -> Result<Vec<String>, IdpError> {
        self.pool(pool)?;
        Ok(self.store.list_groups(pool).await?)
    }

    pub async fn list_clients(&self, pool: &str) -> Result<Vec<ClientRecord>, IdpError> {
        self.pool(pool)?;
        Ok(self.store.list_clients(pool).await?)
    }
}
