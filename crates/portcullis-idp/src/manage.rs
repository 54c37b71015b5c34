//! Pool administration: the operations behind the `portcullis` admin subcommands (`pools`,
//! `users`, `groups`, `clients`, `keys`) and the gateway's admin HTTP API (`/admin/...` on the
//! admin listener), written once so both behave alike.
//!
//! Each operation takes the [`IdentityProvider`] and plain values, and fails with an
//! [`AdminError`] whose variant says who is at fault (the edges map it to an exit status or an
//! HTTP status) and whose message names the pool, user or group involved. Mutations return the
//! user as [`show_user`] gives it afterwards. The JSON shapes ([`user_json`], [`client_json`],
//! …) are shared too: `--json` output and HTTP answers are the same documents. Nothing here
//! prints, logs or returns a password or a hash of one.

use std::collections::BTreeMap;

use portcullis_config::Secret;
use serde_json::{Value, json};

use crate::{
    ClientRecord, Fault, HasFault, IdentityProvider, IdpError, MAX_LIST_USERS, StoreError,
    UserDetails, UserRecord,
};

/// Why an admin operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No such pool in the configuration (the caller's fault; the CLI names the file).
    #[error("no pool {0:?} in the configuration")]
    UnknownPool(String),
    /// No such user or group.
    #[error("{0}")]
    NotFound(String),
    /// The user (or other record) exists already.
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong: a username, attribute or password the pool refuses.
    #[error("{0}")]
    Invalid(String),
    /// The configuration does not fit the store (the operator's problem).
    #[error("{0}")]
    Config(String),
    /// The store failed or is unreachable (the operator's problem).
    #[error("{0}")]
    Store(String),
    /// A bug or a failing library.
    #[error("{0}")]
    Internal(String),
}

impl HasFault for AdminError {
    fn fault(&self) -> Fault {
        match self {
            AdminError::UnknownPool(_)
            | AdminError::NotFound(_)
            | AdminError::Conflict(_)
            | AdminError::Invalid(_) => Fault::Client,
            AdminError::Config(_) | AdminError::Store(_) => Fault::Operator,
            AdminError::Internal(_) => Fault::Internal,
        }
    }
}

impl AdminError {
    /// An [`IdpError`] described with the names the operation was about.
    pub fn from_idp(e: IdpError, target: Target<'_>) -> Self {
        let pool = target.pool.unwrap_or("?");
        let username = target.username.unwrap_or("?");
        match e {
            IdpError::UnknownPool(p) => AdminError::UnknownPool(p),
            IdpError::UserNotFound => {
                AdminError::NotFound(format!("no user {username:?} in pool {pool:?}"))
            }
            IdpError::UserExists => {
                AdminError::Conflict(format!("user {username:?} already exists in pool {pool:?}"))
            }
            IdpError::GroupNotFound => AdminError::NotFound(format!(
                "no group {:?} in pool {pool:?}",
                target.group.unwrap_or("?")
            )),
            IdpError::InvalidPassword(v) => AdminError::Invalid(v.to_string()),
            IdpError::Config(m) => AdminError::Config(m),
            IdpError::Store(StoreError::NotFound(_)) => AdminError::NotFound(e.to_string()),
            IdpError::Store(StoreError::Conflict(_)) => AdminError::Conflict(e.to_string()),
            other => match other.fault() {
                Fault::Client => AdminError::Invalid(other.to_string()),
                Fault::Operator | Fault::Backend => AdminError::Store(other.to_string()),
                Fault::Internal => AdminError::Internal(other.to_string()),
            },
        }
    }
}

/// What an operation is about, for its error messages.
#[derive(Debug, Default, Clone, Copy)]
pub struct Target<'a> {
    pub pool: Option<&'a str>,
    pub username: Option<&'a str>,
    pub group: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn pool(pool: &'a str) -> Self {
        Target {
            pool: Some(pool),
            ..Target::default()
        }
    }

    pub fn user(pool: &'a str, username: &'a str) -> Self {
        Target {
            pool: Some(pool),
            username: Some(username),
            group: None,
        }
    }

    pub fn member(pool: &'a str, username: &'a str, group: &'a str) -> Self {
        Target {
            pool: Some(pool),
            username: Some(username),
            group: Some(group),
        }
    }
}

/// A configured pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInfo {
    pub name: String,
    /// The user pool id (`us-east-1_main`), as the Cognito clients are configured with it.
    pub id: String,
    pub issuer: String,
}

/// A user to create.
pub struct NewUser {
    pub pool: String,
    pub username: String,
    /// Attribute names and values in the order given; a name given twice is refused.
    pub attributes: Vec<(String, String)>,
    /// Without one the user is `UNCONFIRMED` (unless `confirmed`).
    pub password: Option<Secret>,
    /// The password is permanent (`CONFIRMED`); otherwise temporary (`FORCE_CHANGE_PASSWORD`).
    pub permanent: bool,
    /// Create the user `CONFIRMED` even without a password.
    pub confirmed: bool,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("pool", &self.pool)
            .field("username", &self.username)
            .field("attributes", &self.attributes)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("permanent", &self.permanent)
            .field("confirmed", &self.confirmed)
            .finish()
    }
}

/// A started key rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedKey {
    pub pool: String,
    pub kid: String,
    /// When the new key starts signing (unix seconds).
    pub activates_at: i64,
}

/// The configured pools with their ids and issuers, by name.
pub fn pools(idp: &IdentityProvider) -> Vec<PoolInfo> {
    idp.pool_names()
        .into_iter()
        .map(|name| PoolInfo {
            issuer: idp.issuer(&name),
            id: idp.pool_id(&name).unwrap_or_default().to_owned(),
            name,
        })
        .collect()
}

/// One page of a pool's users by username: at most `limit` (capped at [`MAX_LIST_USERS`])
/// after `after`.
pub async fn list_users(
    idp: &IdentityProvider,
    pool: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<UserRecord>, AdminError> {
    idp.list_users(pool, after, limit)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::pool(pool)))
}

/// Every user of a pool, by username (page after page).
pub async fn all_users(idp: &IdentityProvider, pool: &str) -> Result<Vec<UserRecord>, AdminError> {
    let mut users: Vec<UserRecord> = Vec::new();
    loop {
        let after = users.last().map(|u| u.username.clone());
        let page = list_users(idp, pool, after.as_deref(), MAX_LIST_USERS).await?;
        let full = page.len() >= MAX_LIST_USERS as usize;
        users.extend(page);
        if !full {
            return Ok(users);
        }
    }
}

/// Creates a user (see [`NewUser`]) and returns it as [`show_user`] does.
pub async fn create_user(idp: &IdentityProvider, new: NewUser) -> Result<UserDetails, AdminError> {
    let target = Target::user(&new.pool, &new.username);
    let fail = |e| AdminError::from_idp(e, target);
    let mut attributes = BTreeMap::new();
    for (name, value) in new.attributes {
        if attributes.contains_key(&name) {
            return Err(AdminError::Invalid(format!(
                "attribute {name:?} given twice"
            )));
        }
        attributes.insert(name, value);
    }
    if new.confirmed && new.password.is_some() && !new.permanent {
        return Err(AdminError::Invalid(
            "a user with a temporary password cannot be created confirmed".into(),
        ));
    }
    let user = idp
        .create_user(
            &new.pool,
            &new.username,
            attributes,
            new.password.as_ref().map(|p| (p, new.permanent)),
        )
        .await
        .map_err(fail)?;
    if new.confirmed {
        // the stored (normalised) username
        idp.confirm_user(&new.pool, &user.username)
            .await
            .map_err(fail)?;
        return show_user(idp, &new.pool, &user.username).await;
    }
    Ok(UserDetails {
        user,
        groups: Vec::new(),
    })
}

/// A user and its groups.
pub async fn show_user(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
) -> Result<UserDetails, AdminError> {
    let username = &crate::username::lookup(username);
    idp.show_user(pool, username)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::user(pool, username)))
}

/// Deletes a user: its tokens stop working and its live connections close.
pub async fn delete_user(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
) -> Result<(), AdminError> {
    let username = &crate::username::lookup(username);
    idp.delete_user(pool, username)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::user(pool, username)))
}

/// Sets a password (the pool's policy applies); permanent → `CONFIRMED`, temporary →
/// `FORCE_CHANGE_PASSWORD`.
pub async fn set_password(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
    password: &Secret,
    permanent: bool,
) -> Result<UserDetails, AdminError> {
    let username = &crate::username::lookup(username);
    idp.set_password(pool, username, password, permanent)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::user(pool, username)))?;
    show_user(idp, pool, username).await
}

/// `UNCONFIRMED` → `CONFIRMED`.
pub async fn confirm_user(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
) -> Result<UserDetails, AdminError> {
    let username = &crate::username::lookup(username);
    idp.confirm_user(pool, username)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::user(pool, username)))?;
    show_user(idp, pool, username).await
}

/// Disables a user and revokes every token it has (its live connections close).
pub async fn disable_user(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
) -> Result<UserDetails, AdminError> {
    let username = &crate::username::lookup(username);
    idp.disable_user(pool, username)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::user(pool, username)))?;
    show_user(idp, pool, username).await
}

/// Enables a disabled user (tokens revoked by the disable stay revoked).
pub async fn enable_user(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
) -> Result<UserDetails, AdminError> {
    let username = &crate::username::lookup(username);
    idp.enable_user(pool, username)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::user(pool, username)))?;
    show_user(idp, pool, username).await
}

/// Global sign-out: revokes every token issued to the user so far (its live connections close).
pub async fn sign_out(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
) -> Result<UserDetails, AdminError> {
    let username = &crate::username::lookup(username);
    idp.global_sign_out(pool, username)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::user(pool, username)))?;
    show_user(idp, pool, username).await
}

/// Forgets a user's TOTP software token (a lost authenticator app); true when there was one.
pub async fn remove_mfa(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
) -> Result<(bool, UserDetails), AdminError> {
    let username = &crate::username::lookup(username);
    let removed = idp
        .remove_totp(pool, username)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::user(pool, username)))?;
    Ok((removed, show_user(idp, pool, username).await?))
}

/// Adds a user to one of the pool's groups (adding twice is fine).
pub async fn add_to_group(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
    group: &str,
) -> Result<UserDetails, AdminError> {
    let username = &crate::username::lookup(username);
    idp.add_user_to_group(pool, username, group)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::member(pool, username, group)))?;
    show_user(idp, pool, username).await
}

/// Removes a user from a group. A group the pool does not have is an error (an operator's typo
/// deserves one), a group the user is not in is not.
pub async fn remove_from_group(
    idp: &IdentityProvider,
    pool: &str,
    username: &str,
    group: &str,
) -> Result<UserDetails, AdminError> {
    let username = &crate::username::lookup(username);
    let fail = |e| AdminError::from_idp(e, Target::member(pool, username, group));
    if !idp
        .list_groups(pool)
        .await
        .map_err(fail)?
        .iter()
        .any(|g| g == group)
    {
        return Err(fail(IdpError::GroupNotFound));
    }
    idp.remove_user_from_group(pool, username, group)
        .await
        .map_err(fail)?;
    show_user(idp, pool, username).await
}

/// A pool's groups, by name.
pub async fn groups(idp: &IdentityProvider, pool: &str) -> Result<Vec<String>, AdminError> {
    idp.list_groups(pool)
        .await
        .map_err(|e| AdminError::from_idp(e, Target::pool(pool)))
}

/// App clients of one pool, or of every configured pool.
pub async fn clients(
    idp: &IdentityProvider,
    pool: Option<&str>,
) -> Result<Vec<ClientRecord>, AdminError> {
    let pools = match pool {
        Some(p) => vec![p.to_owned()],
        None => idp.pool_names(),
    };
    let mut clients = Vec::new();
    for pool in &pools {
        clients.extend(
            idp.list_clients(pool)
                .await
                .map_err(|e| AdminError::from_idp(e, Target::pool(pool)))?,
        );
    }
    Ok(clients)
}

/// Starts a signing key rotation: the new key is published now and signs from `activates_at`.
pub async fn rotate_keys(idp: &IdentityProvider, pool: &str) -> Result<RotatedKey, AdminError> {
    let fail = |e| AdminError::from_idp(e, Target::pool(pool));
    let kid = idp.rotate_keys(pool).await.map_err(fail)?;
    let activates_at = idp
        .store()
        .list_signing_keys(pool)
        .await
        .map_err(|e| fail(e.into()))?
        .into_iter()
        .find(|k| k.kid == kid)
        .map(|k| k.activates_at)
        .ok_or_else(|| AdminError::Internal(format!("new key {kid:?} is not in the store")))?;
    Ok(RotatedKey {
        pool: pool.to_owned(),
        kid,
        activates_at,
    })
}

// ---- JSON documents (CLI `--json` and the HTTP API) ----

pub fn pool_json(p: &PoolInfo) -> Value {
    json!({ "name": p.name, "id": p.id, "issuer": p.issuer })
}

/// A user without its password hash; `groups` when known.
pub fn user_json(u: &UserRecord, groups: Option<&[String]>) -> Value {
    let mut v = json!({
        "pool": u.pool,
        "username": u.username,
        "sub": u.sub,
        "status": u.status.as_str(),
        "enabled": u.enabled,
        "password_set": u.password_hash.is_some(),
        "attributes": u.attributes,
        "created_at": rfc3339(u.created_at),
        "updated_at": rfc3339(u.updated_at),
    });
    if let Some(groups) = groups {
        v["groups"] = json!(groups);
    }
    if let Some(t) = u.locked_until {
        v["locked_until"] = json!(rfc3339(t));
    }
    v
}

pub fn user_details_json(d: &UserDetails) -> Value {
    user_json(&d.user, Some(&d.groups))
}

/// A client without its secret (only whether it has one).
pub fn client_json(c: &ClientRecord) -> Value {
    json!({
        "client_id": c.client_id,
        "pool": c.pool,
        "public": c.public,
        "has_secret": c.secret_hash.is_some(),
        "grants": c.grants,
        "allowed_scopes": c.allowed_scopes,
        "callback_urls": c.callback_urls,
        "logout_urls": c.logout_urls,
    })
}

pub fn group_json(name: &str) -> Value {
    json!({ "name": name })
}

pub fn rotated_json(k: &RotatedKey) -> Value {
    json!({
        "pool": k.pool,
        "kid": k.kid,
        "signs_from": rfc3339(k.activates_at),
        "signs_from_unix": k.activates_at,
    })
}

pub fn deleted_json(pool: &str, username: &str) -> Value {
    json!({ "pool": pool, "username": username, "deleted": true })
}

/// Unix seconds as RFC 3339 UTC (`2025-01-31T12:00:00Z`).
pub fn rfc3339(t: i64) -> String {
    // days to civil date: Howard Hinnant's algorithm
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn errors_name_what_they_are_about() {
        let t = Target::member("main", "alice", "admins");
        assert_eq!(
            AdminError::from_idp(IdpError::UserNotFound, t),
            AdminError::NotFound(r#"no user "alice" in pool "main""#.into())
        );
        assert_eq!(
            AdminError::from_idp(IdpError::UserExists, t),
            AdminError::Conflict(r#"user "alice" already exists in pool "main""#.into())
        );
        assert_eq!(
            AdminError::from_idp(IdpError::GroupNotFound, t),
            AdminError::NotFound(r#"no group "admins" in pool "main""#.into())
        );
        assert_eq!(
            AdminError::from_idp(IdpError::UnknownPool("x".into()), t),
            AdminError::UnknownPool("x".into())
        );
        let bad = AdminError::from_idp(IdpError::InvalidParameter("username".into()), t);
        assert_eq!(bad.fault(), Fault::Client);
        let down = AdminError::from_idp(IdpError::Store(StoreError::UnsupportedUrl), t);
        assert_eq!(down.fault(), Fault::Operator);
    }
}
