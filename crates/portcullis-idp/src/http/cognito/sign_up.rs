//! Sign-up and forgotten passwords: `SignUp`, `ConfirmSignUp`, `ResendConfirmationCode`,
//! `ForgotPassword`, `ConfirmForgotPassword`, and the codes they issue and check
//! ([`super::codes`] keeps them in the store, [`crate::delivery`] delivers them).

use std::collections::BTreeMap;
use std::net::IpAddr;

use portcullis_config::Secret;
use serde_json::{Value, json};

use super::errors::{
    CognitoError, ErrorType as E, check_attributes, code_mismatch, err, internal,
    invalid_parameter, not_authorized,
};
use super::{Body, Cognito, attribute_list, opt_str, req_str};
use crate::attributes::Writer;
use crate::delivery::{CodeDelivery, CodePurpose};
use crate::store::{UserRecord, UserStatus};
use crate::triggers::TriggerSource;
use crate::{IdpError, password, tokens, unix_now};

/// Who may reset a password by code: enabled users past sign-up confirmation.
fn can_reset(user: &UserRecord) -> bool {
    user.enabled && user.status != UserStatus::Unconfirmed
}

/// An `UNCONFIRMED` user that a new `SignUp` of the same name may replace: an enabled one who
/// signed up (has a password; administrators create unconfirmed users without one) longer ago
/// than a sign-up code lives, so the code of that sign-up has expired. The caller also checks
/// that no code sent later (`ResendConfirmationCode`) is still live.
fn stale_sign_up(user: &UserRecord, code_ttl: i64, now: i64) -> bool {
    user.status == UserStatus::Unconfirmed
        && user.enabled
        && user.password_hash.is_some()
        && user.created_at.saturating_add(code_ttl) <= now
}

/// `CodeDeliveryDetails` for a sign-up: the caller gave the address, so it is shown masked.
fn code_delivery(email: Option<&str>) -> Value {
    let destination = match email.and_then(|e| e.split_once('@')) {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => MASKED_DESTINATION.to_owned(),
    };
    json!({"Destination": destination, "DeliveryMedium": "EMAIL", "AttributeName": "email"})
}

/// The destination `ForgotPassword` and `ResendConfirmationCode` show, whoever the user is:
/// any part of a real address would tell a known name from an unknown one, and the caller of
/// these operations need not be the user.
const MASKED_DESTINATION: &str = "***";

/// `CodeDeliveryDetails` of `ForgotPassword` and `ResendConfirmationCode`: the same for every
/// name.
fn masked_code_delivery() -> Value {
    code_delivery(None)
}

/// A uniformly random 6-digit code.
pub(super) fn random_code() -> Result<String, CognitoError> {
    loop {
        let mut b = [0u8; 4];
        aws_lc_rs::rand::fill(&mut b).map_err(|_| internal(&"no randomness"))?;
        let n = u32::from_be_bytes(b);
        // reject the top partial range to avoid modulo bias
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

impl Cognito {
    // ---- codes (kept by `codes.rs`) ----

    /// Hands a reserved code for `user` to the pool's webhook, or else to the log.
    fn deliver_code(&self, client_id: &str, user: &UserRecord, purpose: CodePurpose, code: Secret) {
        let (pool, username) = (user.pool.as_str(), user.username.as_str());
        if !self.webhooks.configured(pool) {
            // Without a webhook the log is the delivery: the line carries the code and whom it
            // is for, nothing else.
            tracing::info!(pool, username, purpose = purpose.as_str(), code = %code.expose(), "verification code");
        }
        let delivery = CodeDelivery {
            pool: pool.to_owned(),
            username: username.to_owned(),
            purpose,
            code,
            client_id: client_id.to_owned(),
            email: user.attributes.get("email").cloned(),
            phone_number: user.attributes.get("phone_number").cloned(),
        };
        self.webhooks.send(&delivery);
        if let Some(cb) = &self.options.on_code {
            cb(&delivery);
        }
    }

    /// Issues a code for `username`, delivered only when `deliver_to` is given: the same
    /// work and limits for every name.
    async fn issue_code(
        &self,
        pool: &str,
        username: &str,
        purpose: CodePurpose,
        ip: Option<IpAddr>,
        deliver_to: Option<(&str, &UserRecord)>,
    ) -> Result<(), CognitoError> {
        let code = self
            .reserve_code(pool, username, purpose, ip, false)
            .await?;
        if let Some((client_id, user)) = deliver_to {
            self.deliver_code(client_id, user, purpose, code);
        }
        Ok(())
    }

    // ---- operations ----

    /// Creates an `UNCONFIRMED` user once its code is issued: a sign-up refused by the code
    /// limits leaves no user behind. An `UNCONFIRMED` user who signed up earlier and whose code
    /// has expired is replaced (see [`stale_sign_up`]).
    pub(super) async fn sign_up(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let state = self.idp.pool(pool)?;
        if !state.config.self_sign_up {
            return Err(not_authorized("SignUp is not permitted for this user pool"));
        }
        let password = Secret::new(req_str(body, "Password")?);
        let attributes = attribute_list(body, "UserAttributes")?;
        let username =
            &crate::username::normalize(username).map_err(|e| invalid_parameter(e.to_string()))?;
        check_attributes(&state.config, Writer::SignUp, &attributes)?;
        password::check_policy(&state.config.password_policy, password.expose())
            .map_err(IdpError::from)?;
        let existing = self.idp.store.get_user(pool, username).await?;
        if let Some(old) = &existing {
            let now = self.options.clock.now();
            let ttl = crate::secs(self.options.sign_up_code_ttl);
            if !stale_sign_up(old, ttl, now) || self.has_live_sign_up_code(pool, username).await? {
                return Err(err(E::UsernameExists, "User already exists"));
            }
        }
        let (auto_confirm, attributes) = self
            .pre_sign_up_trigger(
                body,
                TriggerSource::PreSignUpSignUp,
                pool,
                client_id,
                username,
                attributes,
            )
            .await?;
        if auto_confirm {
            // confirmed by the trigger: no code is issued or sent
            let user = self
                .create_signed_up_user(pool, username, &password, attributes, &existing, true)
                .await?;
            return Ok(json!({"UserConfirmed": true, "UserSub": user.sub}));
        }
        let code = self
            .reserve_code(pool, username, CodePurpose::SignUp, ip, true)
            .await?;
        let user = match self
            .create_signed_up_user(pool, username, &password, attributes, &existing, false)
            .await
        {
            Ok(user) => user,
            Err(e) => {
                self.withdraw_code(pool, username, CodePurpose::SignUp)
                    .await;
                return Err(e);
            }
        };
        let email = user.attributes.get("email").map(String::as_str);
        let delivery = code_delivery(email);
        self.deliver_code(client_id, &user, CodePurpose::SignUp, code);
        Ok(json!({
            "UserConfirmed": false,
            "UserSub": user.sub,
            "CodeDeliveryDetails": delivery,
        }))
    }

    /// The user of a sign-up whose code is reserved (or `confirmed` by the pre sign-up
    /// trigger); an expired sign-up of the same name (`existing`) goes first.
    async fn create_signed_up_user(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
        attributes: BTreeMap<String, String>,
        existing: &Option<UserRecord>,
        confirmed: bool,
    ) -> Result<UserRecord, CognitoError> {
        let replace = existing.is_some();
        let hash = self
            .idp
            .hasher
            .hash(password)
            .await
            .map_err(|e| internal(&e))?;
        let verifier = self.idp.srp_verifier(pool, username, password).await?;
        if replace {
            tracing::info!(pool, username, "replacing an expired, unconfirmed sign-up");
            self.idp.store.delete_user(pool, username).await?;
        }
        let now = unix_now();
        let user = UserRecord {
            pool: pool.to_owned(),
            username: username.to_owned(),
            sub: tokens::uuid_v4(),
            password_hash: Some(hash),
            status: if confirmed {
                UserStatus::Confirmed
            } else {
                UserStatus::Unconfirmed
            },
            enabled: true,
            attributes,
            failed_attempts: 0,
            locked_until: None,
            tokens_valid_after: 0,
            created_at: now,
            updated_at: now,
            srp: Some(verifier),
        };
        self.idp.store.create_user(&user).await?;
        Ok(user)
    }

    /// A new sign-up code for an unconfirmed user (the previous one stops working). Unknown,
    /// disabled and already confirmed users get a code nobody receives: the same answer,
    /// limits and work (no existence leak).
    pub(super) async fn resend_confirmation_code(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let user = self.idp.store.get_user(pool, username).await?;
        let recipient = user
            .as_ref()
            .filter(|u| u.enabled && u.status == UserStatus::Unconfirmed);
        self.issue_code(
            pool,
            username,
            CodePurpose::SignUp,
            ip,
            recipient.map(|u| (client_id, u)),
        )
        .await?;
        Ok(json!({"CodeDeliveryDetails": masked_code_delivery()}))
    }

    pub(super) async fn confirm_sign_up(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let code = req_str(body, "ConfirmationCode")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        // The same calls whatever the user's state: a confirmed or unknown user holds no code
        // (or one nobody received), so a guess gets what a wrong code gets.
        let user = self.idp.store.get_user(pool, username).await?;
        self.check_code(pool, username, CodePurpose::SignUp, code)
            .await?;
        match user {
            Some(u) if u.status == UserStatus::Unconfirmed => {
                // the code went to the user's address: it is verified too
                self.idp.confirm_sign_up_by_code(pool, username).await?;
                let source = TriggerSource::PostConfirmationConfirmSignUp;
                self.post_confirmation_trigger(body, source, client_id, pool, username)
                    .await?;
            }
            // confirmed meanwhile (e.g. by an administrator): the code was right, nothing to do
            Some(_) => {}
            None => return Err(code_mismatch()),
        }
        Ok(json!({}))
    }

    /// A reset code. Unknown, disabled and unconfirmed users get a code nobody receives: the
    /// same answer, limits and work (no existence leak).
    pub(super) async fn forgot_password(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let user = self.idp.store.get_user(pool, username).await?;
        let recipient = user.as_ref().filter(|u| can_reset(u));
        self.issue_code(
            pool,
            username,
            CodePurpose::ForgotPassword,
            ip,
            recipient.map(|u| (client_id, u)),
        )
        .await?;
        Ok(json!({"CodeDeliveryDetails": masked_code_delivery()}))
    }

    pub(super) async fn confirm_forgot_password(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let code = req_str(body, "ConfirmationCode")?;
        let password = Secret::new(req_str(body, "Password")?);
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let state = self.idp.pool(pool)?;
        password::check_policy(&state.config.password_policy, password.expose())
            .map_err(IdpError::from)?;
        self.check_code(pool, username, CodePurpose::ForgotPassword, code)
            .await?;
        // a code nobody received (unknown, disabled or unconfirmed user) was guessed
        let user = self.idp.store.get_user(pool, username).await?;
        if !user.as_ref().is_some_and(can_reset) {
            return Err(code_mismatch());
        }
        self.idp
            .set_password(pool, username, &password, true)
            .await?;
        let source = TriggerSource::PostConfirmationConfirmForgotPassword;
        self.post_confirmation_trigger(body, source, client_id, pool, username)
            .await?;
        Ok(json!({}))
    }
}
