//! TOTP MFA on the JSON API: `AssociateSoftwareToken`, `VerifySoftwareToken` and
//! `SetUserMFAPreference` (with an access token, or with the `Session` of an `MFA_SETUP`
//! challenge), the `SOFTWARE_TOKEN_MFA` and `MFA_SETUP` challenges a sign-in meets after the
//! password ([`Cognito::after_password`]), and their answers (`RespondToAuthChallenge`). The
//! rules are [`crate::mfa`]'s.
//!
//! * Challenge sessions are kept in the store by their SHA-256 (table `mfa_sessions`), bound to
//!   pool, app client and user, live [`SESSION_TTL_SECS`], bounded like the other challenge
//!   sessions, and end after [`MAX_SESSION_FAILURES`] wrong codes; the `Session` string stays the
//!   same through `MFA_SETUP`'s steps.
//! * Wrong codes: `CodeMismatchException` at sign-in, `EnableSoftwareTokenMFAException` when
//!   verifying a new token (as Cognito); a pool with `mfa = "off"` answers
//!   `SoftwareTokenMFANotFoundException` to token operations.
//! * Only the software token is supported: SMS and email settings that enable them are refused.

use portcullis_config::{AppClient, Mfa};
use serde_json::{Value, json};

use super::errors::{
    CognitoError, ErrorType as E, err, internal, invalid_parameter, not_authorized,
};
use super::{Body, Cognito, opt_map, opt_str, req_str};
use crate::mfa::{AfterPassword, MAX_SESSION_FAILURES, TotpCheck, totp_active};
use crate::pending::challenges::{ChallengeError, Challenged, SESSION_TTL_SECS, session_hash};
use crate::store::{MfaChallenge, MfaSessionRow, MfaSessionState, UserRecord};
use crate::triggers::{TokenContext, TriggerSource};
use crate::{tokens, unix_now};

/// Longest code accepted (six digits; a little room for spaces pasted around them).
const MAX_CODE: usize = 32;
/// Longest `Session` accepted.
const MAX_SESSION: usize = 2048;
/// Longest `FriendlyDeviceName` accepted (it is not stored).
const MAX_DEVICE_NAME: usize = 256;
const SOFTWARE_TOKEN_MFA: &str = "SOFTWARE_TOKEN_MFA";

fn not_found_in_pool() -> CognitoError {
    err(
        E::SoftwareTokenMFANotFound,
        "Software Token MFA has not been enabled by the userPool.",
    )
}

fn enable_failed() -> CognitoError {
    err(
        E::EnableSoftwareTokenMFA,
        "Code mismatch and fail enable Software Token MFA",
    )
}

fn bounded<'a>(obj: &'a Body, name: &str, max: usize) -> Result<&'a str, CognitoError> {
    let value = req_str(obj, name)?;
    if value.len() > max {
        return Err(invalid_parameter(format!("{name} is too long")));
    }
    Ok(value)
}

/// A live MFA session, with whom it was issued to and its hash.
struct LiveSession {
    hash: Vec<u8>,
    who: Challenged,
    state: MfaSessionState,
    session: String,
}

impl Cognito {
    /// What a user who proved the password gets: a `SOFTWARE_TOKEN_MFA` or `MFA_SETUP`
    /// challenge under the pool's `mfa` setting, else the tokens.
    pub(super) async fn after_password(
        &self,
        pool: &str,
        client: &AppClient,
        username: &str,
        context: &TokenContext,
    ) -> Result<Value, CognitoError> {
        let challenge = match self.idp.after_password(pool, username).await? {
            AfterPassword::Tokens => {
                return self
                    .start_session_for(pool, &client.client_id, username, context)
                    .await;
            }
            AfterPassword::Challenge(kind) => kind,
        };
        let who = Challenged {
            pool: pool.to_owned(),
            client_id: client.client_id.clone(),
            username: username.to_owned(),
        };
        let session = self.new_mfa_session(who, challenge).await?;
        let mut parameters = json!({"USER_ID_FOR_SRP": username});
        if challenge == MfaChallenge::Setup {
            parameters["MFAS_CAN_SETUP"] = json!(format!("[\"{SOFTWARE_TOKEN_MFA}\"]"));
        }
        Ok(json!({
            "ChallengeName": challenge.name(),
            "Session": session,
            "ChallengeParameters": parameters,
        }))
    }

    async fn new_mfa_session(
        &self,
        who: Challenged,
        kind: MfaChallenge,
    ) -> Result<String, CognitoError> {
        let token = tokens::random_token().ok_or_else(|| internal(&"no randomness"))?;
        let session = format!("AYABe{token}");
        let now = unix_now();
        let row = MfaSessionRow {
            session_hash: session_hash(&session),
            who,
            kind,
            expires_at: now.saturating_add(SESSION_TTL_SECS),
        };
        if !self
            .idp
            .store
            .open_mfa_session(&row, self.options.max_pending.max(1), now)
            .await?
        {
            return Err(ChallengeError::Full.into());
        }
        Ok(session)
    }

    /// The live MFA session of the request's `Session`, of `kind`.
    async fn live_session(
        &self,
        body: &Body,
        kind: MfaChallenge,
    ) -> Result<LiveSession, CognitoError> {
        let session = bounded(body, "Session", MAX_SESSION)?;
        let hash = session_hash(session);
        match self.idp.store.mfa_session(&hash, unix_now()).await? {
            Some((who, state)) if state.kind == kind => Ok(LiveSession {
                hash,
                who,
                state,
                session: session.to_owned(),
            }),
            _ => Err(ChallengeError::Invalid.into()),
        }
    }

    /// Counts a wrong answer of a session (it ends at [`MAX_SESSION_FAILURES`]).
    async fn session_failed(&self, hash: &[u8]) -> Result<(), CognitoError> {
        self.idp
            .store
            .fail_mfa_session(hash, MAX_SESSION_FAILURES)
            .await?;
        Ok(())
    }

    /// The user named by the request's `AccessToken`, in a pool whose `mfa` is not off.
    async fn token_user_with_mfa(&self, body: &Body) -> Result<UserRecord, CognitoError> {
        let user = self.token_user(body).await?;
        if self.idp.pool_mfa(&user.pool)? == Mfa::Off {
            return Err(not_found_in_pool());
        }
        Ok(user)
    }

    /// `AssociateSoftwareToken`: `AccessToken` or `Session` (of `MFA_SETUP`) → `SecretCode`
    /// (base32, 160 bits) [+ `Session`]; the secret waits for `VerifySoftwareToken`.
    pub(super) async fn associate_software_token(
        &self,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        if opt_str(body, "AccessToken")?.is_some() {
            let user = self.token_user_with_mfa(body).await?;
            let secret = self.idp.associate_totp(&user.pool, &user.username).await?;
            return Ok(json!({"SecretCode": secret.base32()}));
        }
        let live = self.live_session(body, MfaChallenge::Setup).await?;
        let secret = self
            .idp
            .associate_totp(&live.who.pool, &live.who.username)
            .await?;
        Ok(json!({"SecretCode": secret.base32(), "Session": live.session}))
    }

    /// `VerifySoftwareToken`: `UserCode` of the associated secret with `AccessToken` or
    /// `Session` → `{"Status": "SUCCESS"}` [+ `Session`]; a wrong code is
    /// `EnableSoftwareTokenMFAException`. Through `MFA_SETUP` the token is enabled at once.
    pub(super) async fn verify_software_token(&self, body: &Body) -> Result<Value, CognitoError> {
        let code = bounded(body, "UserCode", MAX_CODE)?;
        if let Some(name) = opt_str(body, "FriendlyDeviceName")?
            && name.len() > MAX_DEVICE_NAME
        {
            return Err(invalid_parameter("FriendlyDeviceName is too long"));
        }
        if opt_str(body, "AccessToken")?.is_some() {
            let user = self.token_user_with_mfa(body).await?;
            return match self
                .idp
                .verify_totp(&user.pool, &user.username, code, false)
                .await?
            {
                TotpCheck::Valid => Ok(json!({"Status": "SUCCESS"})),
                TotpCheck::NoToken => Err(not_associated()),
                _ => Err(enable_failed()),
            };
        }
        let live = self.live_session(body, MfaChallenge::Setup).await?;
        match self
            .idp
            .verify_totp(&live.who.pool, &live.who.username, code, true)
            .await?
        {
            TotpCheck::Valid => {
                if !self.idp.store.verify_mfa_session(&live.hash).await? {
                    return Err(ChallengeError::Invalid.into());
                }
                Ok(json!({"Status": "SUCCESS", "Session": live.session}))
            }
            TotpCheck::NoToken => Err(not_associated()),
            _ => {
                self.session_failed(&live.hash).await?;
                Err(enable_failed())
            }
        }
    }

    /// `SetUserMFAPreference`: `SoftwareTokenMfaSettings {Enabled, PreferredMfa}` for a user
    /// with a verified token; SMS and email factors cannot be enabled (not supported).
    pub(super) async fn set_user_mfa_preference(&self, body: &Body) -> Result<Value, CognitoError> {
        let user = self.token_user(body).await?;
        for unsupported in ["SMSMfaSettings", "EmailMfaSettings", "WebAuthnMfaSettings"] {
            let enabled = opt_map(body, unsupported)?.is_some_and(|s| {
                s.get("Enabled").and_then(Value::as_bool) == Some(true)
                    || s.get("PreferredMfa").and_then(Value::as_bool) == Some(true)
            });
            if enabled {
                return Err(invalid_parameter(format!(
                    "{unsupported}: only software token MFA is supported"
                )));
            }
        }
        let Some(settings) = opt_map(body, "SoftwareTokenMfaSettings")? else {
            return Ok(json!({}));
        };
        let flag = |name: &str| match settings.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(err(E::Serialization, format!("{name} must be a boolean"))),
        };
        let enabled = flag("Enabled")?;
        let preferred = flag("PreferredMfa")?;
        let current = self.idp.user_mfa(&user.pool, &user.username).await?;
        let verified = current.as_ref().is_some_and(|r| r.secret.is_some());
        let enabled = enabled.unwrap_or_else(|| current.as_ref().is_some_and(|r| r.enabled));
        let preferred = preferred.unwrap_or(false) && enabled;
        if !verified {
            if enabled || preferred {
                return Err(invalid_parameter(
                    "User has not verified software token mfa",
                ));
            }
            return Ok(json!({}));
        }
        if self.idp.pool_mfa(&user.pool)? == Mfa::Off && enabled {
            return Err(not_found_in_pool());
        }
        self.idp
            .set_totp_preference(&user.pool, &user.username, enabled, preferred)
            .await?;
        Ok(json!({}))
    }

    /// `GetUser`'s `UserMFASettingList` and `PreferredMfaSetting` of `user` (absent when the
    /// software token is not asked for at sign-in).
    pub(super) async fn mfa_settings(
        &self,
        user: &UserRecord,
        answer: &mut Value,
    ) -> Result<(), CognitoError> {
        let mode = self.idp.pool_mfa(&user.pool)?;
        let row = self.idp.user_mfa(&user.pool, &user.username).await?;
        if totp_active(mode, row.as_ref()) {
            answer["UserMFASettingList"] = json!([SOFTWARE_TOKEN_MFA]);
            if row.as_ref().is_some_and(|r| r.preferred) || mode == Mfa::On {
                answer["PreferredMfaSetting"] = json!(SOFTWARE_TOKEN_MFA);
            }
        }
        Ok(())
    }

    /// `RespondToAuthChallenge` with `SOFTWARE_TOKEN_MFA`: `{USERNAME, SOFTWARE_TOKEN_MFA_CODE,
    /// [SECRET_HASH]}` + `Session` → the tokens.
    pub(super) async fn software_token_mfa(
        &self,
        pool: &str,
        client: &AppClient,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let empty = Body::new();
        let responses = opt_map(body, "ChallengeResponses")?.unwrap_or(&empty);
        let username = req_str(responses, "USERNAME")?;
        let code = bounded(responses, "SOFTWARE_TOKEN_MFA_CODE", MAX_CODE)?;
        Self::check_secret_hash(client, username, opt_str(responses, "SECRET_HASH")?)?;
        let live = self.live_session(body, MfaChallenge::SoftwareToken).await?;
        if !live.is_for(pool, client, username) {
            return Err(ChallengeError::Invalid.into());
        }
        match self.idp.check_totp_sign_in(pool, username, code).await? {
            TotpCheck::Valid => {
                self.finish_mfa(body, pool, client, username, &live.hash)
                    .await
            }
            TotpCheck::NoToken => {
                self.idp.store.end_mfa_session(&live.hash).await?;
                Err(ChallengeError::Invalid.into())
            }
            TotpCheck::Locked => {
                self.session_failed(&live.hash).await?;
                Err(not_authorized("Password attempts exceeded"))
            }
            TotpCheck::Mismatch | TotpCheck::Replayed => {
                self.session_failed(&live.hash).await?;
                Err(err(E::CodeMismatch, "Invalid code received for user"))
            }
        }
    }

    /// `RespondToAuthChallenge` with `MFA_SETUP`: `{USERNAME, [SECRET_HASH]}` + the `Session`
    /// a token was verified with → the tokens.
    pub(super) async fn mfa_setup(
        &self,
        pool: &str,
        client: &AppClient,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        let empty = Body::new();
        let responses = opt_map(body, "ChallengeResponses")?.unwrap_or(&empty);
        let username = req_str(responses, "USERNAME")?;
        Self::check_secret_hash(client, username, opt_str(responses, "SECRET_HASH")?)?;
        let live = self.live_session(body, MfaChallenge::Setup).await?;
        if !live.is_for(pool, client, username) {
            return Err(ChallengeError::Invalid.into());
        }
        if !live.state.verified {
            return Err(invalid_parameter(
                "Software token has not been verified: call AssociateSoftwareToken and \
                 VerifySoftwareToken with the Session first",
            ));
        }
        self.finish_mfa(body, pool, client, username, &live.hash)
            .await
    }

    /// Ends a met MFA session (one answer per session, on every node) and starts the user's
    /// session, unless the user was disabled meanwhile.
    async fn finish_mfa(
        &self,
        body: &Body,
        pool: &str,
        client: &AppClient,
        username: &str,
        hash: &[u8],
    ) -> Result<Value, CognitoError> {
        if !self.idp.store.end_mfa_session(hash).await? {
            return Err(ChallengeError::Invalid.into());
        }
        match self.idp.store.get_user(pool, username).await? {
            Some(user) if user.enabled => {
                // minted as for the password that came before the code
                let context = Self::token_context(body, TriggerSource::TokenAuthentication)?;
                self.start_session_for(pool, &client.client_id, username, &context)
                    .await
            }
            Some(_) => Err(not_authorized("User is disabled.")),
            None => Err(ChallengeError::Invalid.into()),
        }
    }
}

impl LiveSession {
    fn is_for(&self, pool: &str, client: &AppClient, username: &str) -> bool {
        self.who.pool == pool
            && self.who.client_id == client.client_id
            && self.who.username == username
    }
}

fn not_associated() -> CognitoError {
    err(
        E::SoftwareTokenMFANotFound,
        "Software token has not been associated with the user: call AssociateSoftwareToken first",
    )
}
