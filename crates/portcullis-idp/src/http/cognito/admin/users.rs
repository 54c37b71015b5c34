//! One user at a time: `AdminCreateUser`, `AdminGetUser`, `AdminDeleteUser`,
//! `AdminUpdateUserAttributes`, `AdminSetUserPassword`, `AdminConfirmSignUp`,
//! `AdminDisableUser` / `AdminEnableUser`, `AdminUserGlobalSignOut`; and Cognito's `UserType`
//! shape of a user, shared with the listings. Each goes through the provider's own operations
//! (the ones the CLI and the identity admin API use), so passwords get their policy check,
//! Argon2id hash and SRP verifier in one place.

use std::collections::BTreeMap;

use portcullis_config::{PasswordPolicy, Secret};
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::super::errors::{
    CognitoError, ErrorType as E, check_attributes, err, invalid_parameter,
};
use super::super::{Body, Cognito, attribute_list, opt_str, req_str};
use super::{bounded_str, changed};
use crate::attributes::{MAX_ATTRIBUTES_PER_REQUEST, Writer, apply_user_changes, token_claims};
use crate::delivery::{CodeDelivery, CodePurpose};
use crate::store::{UserRecord, UserStatus};
use crate::triggers::TriggerSource;
use crate::unix_now;

/// `callerContext.clientId` of triggers an administrator's call fires, as Cognito sends it.
const ADMIN_CLIENT_ID: &str = "CLIENT_ID_NOT_APPLICABLE";
/// Longest password accepted (Cognito's bound).
const MAX_PASSWORD_CHARS: usize = 256;
/// Length of a generated temporary password (longer when the policy asks for more).
const GENERATED_LENGTH: usize = 16;
/// Symbols a generated password draws from (all in Cognito's symbol set, none that needs
/// quoting in a shell or JSON).
const GENERATED_SYMBOLS: &[u8] = b"!#%&*+-.=?@^_~";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";

/// A temporary password the pool's policy accepts: at least [`GENERATED_LENGTH`] characters
/// (or the policy's minimum), with a lower-case letter, an upper-case letter, a digit and a
/// symbol whatever the policy requires.
pub(super) fn generate_password(policy: &PasswordPolicy, rng: &mut impl Rng) -> String {
    let length = usize::try_from(policy.min_length)
        .unwrap_or(GENERATED_LENGTH)
        .clamp(GENERATED_LENGTH, 256);
    let classes: [&[u8]; 4] = [LOWER, UPPER, DIGITS, GENERATED_SYMBOLS];
    let mut bytes: Vec<u8> = classes
        .iter()
        .map(|class| class[rng.random_range(0..class.len())])
        .collect();
    let all: Vec<u8> = classes.concat();
    while bytes.len() < length {
        bytes.push(all[rng.random_range(0..all.len())]);
    }
    bytes.shuffle(rng);
    bytes.into_iter().map(char::from).collect()
}

/// A user as Cognito's `UserType` (`ListUsers`, `AdminCreateUser`): `Attributes`, dates in
/// epoch seconds. `only`: the attributes to show (`AttributesToGet`), all when `None`.
pub(super) fn user_type(user: &UserRecord, only: Option<&[String]>) -> Value {
    let wanted = |name: &str| only.is_none_or(|names| names.iter().any(|n| n == name));
    let mut attributes = Vec::new();
    if wanted("sub") {
        attributes.push(json!({"Name": "sub", "Value": user.sub}));
    }
    attributes.extend(
        token_claims(&user.attributes)
            .filter(|(k, _)| wanted(k))
            .map(|(k, v)| json!({"Name": k, "Value": v})),
    );
    json!({
        "Username": user.username,
        "Attributes": attributes,
        "UserCreateDate": user.created_at,
        "UserLastModifiedDate": user.updated_at,
        "Enabled": user.enabled,
        "UserStatus": user.status.as_str(),
    })
}

/// A user's attributes as `AdminGetUser` lists them (`sub` first).
fn user_attributes(user: &UserRecord) -> Vec<Value> {
    let mut attributes = vec![json!({"Name": "sub", "Value": user.sub})];
    attributes.extend(token_claims(&user.attributes).map(|(k, v)| json!({"Name": k, "Value": v})));
    attributes
}

/// `UserAttributes` of a call, bounded in number.
fn admin_attributes(body: &Body) -> Result<BTreeMap<String, String>, CognitoError> {
    if body
        .get("UserAttributes")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > MAX_ATTRIBUTES_PER_REQUEST)
    {
        return Err(invalid_parameter(format!(
            "1 validation error detected: Value at 'userAttributes' failed to satisfy \
             constraint: Member must have length less than or equal to \
             {MAX_ATTRIBUTES_PER_REQUEST}"
        )));
    }
    attribute_list(body, "UserAttributes")
}

impl Cognito {
    pub(super) async fn admin_user(
        &self,
        pool: &str,
        username: &str,
    ) -> Result<UserRecord, CognitoError> {
        self.idp
            .store
            .get_user(pool, username)
            .await?
            .ok_or_else(|| err(E::UserNotFound, "User does not exist."))
    }

    pub(super) async fn admin_create_user(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, state) = self.admin_pool(body)?;
        let username = req_str(body, "Username")?;
        let attributes = admin_attributes(body)?;
        let given =
            bounded_str(body, "TemporaryPassword", MAX_PASSWORD_CHARS)?.filter(|p| !p.is_empty());
        let action = opt_str(body, "MessageAction")?;
        let password = Secret::new(match given {
            Some(p) => p.to_owned(),
            None => generate_password(&state.config.password_policy, &mut rand::rng()),
        });
        let user = match action {
            None | Some("SUPPRESS") => {
                check_attributes(&state.config, Writer::Admin, &attributes)?;
                // The pre sign-up trigger may refuse or verify attributes; an administrator's
                // user keeps its temporary password whatever `autoConfirmUser` says (as Cognito).
                let (_, attributes) = self
                    .pre_sign_up_trigger(
                        body,
                        TriggerSource::PreSignUpAdminCreateUser,
                        pool,
                        ADMIN_CLIENT_ID,
                        username,
                        attributes,
                    )
                    .await?;
                self.idp
                    .create_user(pool, username, attributes, Some((&password, false)))
                    .await?
            }
            Some("RESEND") => {
                // a new temporary password (and invitation) for a user who has not signed in
                let user = self.admin_user(pool, username).await?;
                if user.status != UserStatus::ForceChangePassword {
                    return Err(err(
                        E::UnsupportedUserState,
                        format!(
                            "Resend not possible. {username} status is not FORCE_CHANGE_PASSWORD."
                        ),
                    ));
                }
                self.idp
                    .set_password(pool, username, &password, false)
                    .await?;
                self.admin_user(pool, username).await?
            }
            Some(other) => {
                return Err(invalid_parameter(format!(
                    "1 validation error detected: Value '{other}' at 'messageAction' failed to \
                     satisfy constraint: Member must satisfy enum value set: [RESEND, SUPPRESS]"
                )));
            }
        };
        if action != Some("SUPPRESS") {
            self.deliver_invitation(&user, password);
        }
        changed("AdminCreateUser", pool, Some(&user.username));
        Ok(json!({"User": user_type(&user, None)}))
    }

    /// Hands the temporary password of a new user to the pool's `code_webhook` (kind
    /// `ADMIN_CREATE_USER`). Without a webhook nothing is sent: a password never goes to the
    /// log.
    fn deliver_invitation(&self, user: &UserRecord, password: Secret) {
        if !self.webhooks.configured(&user.pool) {
            tracing::info!(pool = %user.pool, username = %user.username, "invitation not sent: the pool has no code_webhook");
        }
        let delivery = CodeDelivery {
            pool: user.pool.clone(),
            username: user.username.clone(),
            purpose: CodePurpose::Invitation,
            code: password,
            client_id: String::new(),
            email: user.attributes.get("email").cloned(),
            phone_number: user.attributes.get("phone_number").cloned(),
        };
        self.webhooks.send(&delivery);
        if let Some(cb) = &self.options.on_code {
            cb(&delivery);
        }
    }

    pub(super) async fn admin_get_user(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        let user = self.admin_user(pool, username).await?;
        Ok(json!({
            "Username": user.username,
            "UserAttributes": user_attributes(&user),
            "UserCreateDate": user.created_at,
            "UserLastModifiedDate": user.updated_at,
            "Enabled": user.enabled,
            "UserStatus": user.status.as_str(),
            "UserMFASettingList": [],
        }))
    }

    pub(super) async fn admin_delete_user(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        self.idp.delete_user(pool, username).await?;
        changed("AdminDeleteUser", pool, Some(username));
        Ok(json!({}))
    }

    /// Writes attributes as an administrator may (verification flags and immutable custom
    /// attributes too); a changed `email` / `phone_number` is unverified unless the call sets
    /// its flag itself.
    pub(super) async fn admin_update_user_attributes(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let (pool, state) = self.admin_pool(body)?;
        let username = req_str(body, "Username")?;
        let changes = admin_attributes(body)?;
        check_attributes(&state.config, Writer::Admin, &changes)?;
        let mut user = self.admin_user(pool, username).await?;
        let mut attributes = apply_user_changes(&user.attributes, &changes);
        for flag in crate::attributes::VERIFICATION_FLAGS {
            if let Some(v) = changes.get(flag) {
                attributes.insert(flag.to_owned(), v.clone());
            }
        }
        user.attributes = attributes;
        user.updated_at = unix_now();
        self.idp.store.update_user(&user).await?;
        changed("AdminUpdateUserAttributes", pool, Some(username));
        Ok(json!({}))
    }

    pub(super) async fn admin_set_user_password(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        // Cognito's bound; the body bound keeps others short too
        let password = Secret::new(
            bounded_str(body, "Password", MAX_PASSWORD_CHARS)?
                .filter(|p| !p.is_empty())
                .ok_or_else(|| invalid_parameter("Missing required parameter Password"))?,
        );
        let permanent = match body.get("Permanent") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(err(E::Serialization, "Permanent must be a boolean")),
        };
        self.admin_user(pool, username).await?;
        self.idp
            .set_password(pool, username, &password, permanent)
            .await?;
        changed("AdminSetUserPassword", pool, Some(username));
        Ok(json!({}))
    }

    pub(super) async fn admin_confirm_sign_up(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        let user = self.admin_user(pool, username).await?;
        if user.status != UserStatus::Unconfirmed {
            return Err(crate::http::cognito::errors::not_authorized(format!(
                "User cannot be confirmed. Current status is {}",
                user.status.as_str()
            )));
        }
        self.idp.confirm_user(pool, username).await?;
        changed("AdminConfirmSignUp", pool, Some(username));
        Ok(json!({}))
    }

    pub(super) async fn admin_disable_user(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        self.idp.disable_user(pool, username).await?;
        changed("AdminDisableUser", pool, Some(username));
        Ok(json!({}))
    }

    pub(super) async fn admin_enable_user(&self, body: &Body) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        self.idp.enable_user(pool, username).await?;
        changed("AdminEnableUser", pool, Some(username));
        Ok(json!({}))
    }

    pub(super) async fn admin_user_global_sign_out(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let (pool, username) = self.admin_target(body)?;
        self.admin_user(pool, username).await?;
        self.idp.global_sign_out(pool, username).await?;
        changed("AdminUserGlobalSignOut", pool, Some(username));
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min_length: u32) -> PasswordPolicy {
        PasswordPolicy {
            min_length,
            require_digits: true,
            require_lowercase: true,
            require_uppercase: true,
            require_symbols: true,
        }
    }

    #[test]
    fn generated_passwords_pass_the_strictest_policy() {
        let mut rng = rand::rng();
        for min in [6, 8, 16, 40, 99] {
            let p = policy(min);
            for _ in 0..50 {
                let pw = generate_password(&p, &mut rng);
                assert!(pw.len() >= usize::try_from(min).expect("small"), "{pw}");
                crate::password::check_policy(&p, &pw).expect("accepted by the policy");
            }
        }
        let a = generate_password(&policy(8), &mut rng);
        let b = generate_password(&policy(8), &mut rng);
        assert_ne!(a, b);
    }

    #[test]
    fn attributes_to_get_selects_what_users_show() {
        let user = UserRecord {
            pool: "main".into(),
            username: "ann".into(),
            sub: "s-1".into(),
            password_hash: None,
            status: UserStatus::Confirmed,
            enabled: true,
            attributes: [("email".to_owned(), "a@example.com".to_owned())].into(),
            failed_attempts: 0,
            locked_until: None,
            tokens_valid_after: 0,
            created_at: 10,
            updated_at: 20,
            srp: None,
        };
        let all = user_type(&user, None);
        assert_eq!(all["Attributes"].as_array().map(Vec::len), Some(2));
        assert_eq!(all["UserCreateDate"], 10);
        assert_eq!(all["UserStatus"], "CONFIRMED");
        let only = user_type(&user, Some(&["email".to_owned()]));
        assert_eq!(
            only["Attributes"],
            json!([{"Name": "email", "Value": "a@example.com"}])
        );
    }
}
