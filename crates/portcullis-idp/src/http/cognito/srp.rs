//! SRP sign-in: `InitiateAuth` with `USER_SRP_AUTH` answered by a `PASSWORD_VERIFIER`
//! challenge, and that challenge's answer (`RespondToAuthChallenge`). The arithmetic is
//! [`crate::srp`]'s, the sealed `SECRET_BLOCK` [`crate::srp::secret_block`]'s, the lockout
//! [`crate::sign_in`]'s.
//!
//! * The challenge keeps no state: everything the answer needs is in the `SECRET_BLOCK`
//!   (sealed under a key derived from the store's pepper), so the answer may reach any node
//!   and needs no `Session` (pycognito sends none).
//! * Unknown users and users without a verifier get a challenge of the same shape, built from a
//!   fake salt and verifier derived from the name (the same salt every time), with the same
//!   work; their answer fails like a wrong password.
//! * A block is answered once: its id is recorded in the store's challenge table (bounded as the
//!   sessions are) before the signature is checked, so every answer is one guess at most and a
//!   replayed answer is refused on every node. It lives [`BLOCK_TTL_SECS`]; the `TIMESTAMP`
//!   must be within [`TIMESTAMP_SKEW_SECS`] of the server's clock.
//! * A wrong signature counts toward the user's lockout as a wrong password does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_config::{AppClient, AuthFlow};
use serde_json::{Value, json};

use super::errors::{CognitoError, bad_credentials, internal, invalid_parameter, password_answer};
use super::{Body, Cognito, opt_map, opt_str, req_str};
use crate::pending::challenges::{ChallengeError, Challenged, used_block_hash};
use crate::sign_in::{Proof, SrpClaim};
use crate::srp::secret_block::{self, BLOCK_TTL_SECS, BlockContents, ID_LEN, MAX_BLOCK_B64};
use crate::srp::{self, MAX_A_HEX};
use crate::store::{ChallengeRow, StoreError};

/// How far a claim's `TIMESTAMP` may be from the server's clock, either way.
pub const TIMESTAMP_SKEW_SECS: i64 = 300;
/// Longest `USERNAME` accepted here, in bytes (a username is at most 128 characters).
const MAX_USERNAME_BYTES: usize = 512;
/// Longest `PASSWORD_CLAIM_SIGNATURE` accepted (base64 of 32 bytes is 44 characters).
const MAX_SIGNATURE: usize = 128;
/// Longest `TIMESTAMP` accepted (`Wed Sep 10 12:34:56 UTC 2025` is 28 characters).
const MAX_TIMESTAMP: usize = 64;

/// A required string of at most `max` bytes.
fn bounded<'a>(obj: &'a Body, name: &str, max: usize) -> Result<&'a str, CognitoError> {
    let value = req_str(obj, name)?;
    if value.len() > max {
        return Err(invalid_parameter(format!("{name} is too long")));
    }
    Ok(value)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Cognito {
    /// `InitiateAuth` with `USER_SRP_AUTH`: `{USERNAME, SRP_A, [SECRET_HASH]}` →
    /// `PASSWORD_VERIFIER` with `SALT`, `SECRET_BLOCK`, `SRP_B`, `USERNAME`, `USER_ID_FOR_SRP`.
    pub(super) async fn srp_auth(
        &self,
        pool: &str,
        client: &AppClient,
        params: &Body,
    ) -> Result<Value, CognitoError> {
        Self::check_flow(client, AuthFlow::UserSrp)?;
        let username = bounded(params, "USERNAME", MAX_USERNAME_BYTES)?;
        let a_hex = bounded(params, "SRP_A", MAX_A_HEX)?;
        Self::check_secret_hash(client, username, opt_str(params, "SECRET_HASH")?)?;
        let a = srp::parse_a(a_hex).map_err(|e| invalid_parameter(e.to_string()))?;
        let user = self.idp.store.get_user(pool, username).await?;
        if let Some(user) = &user {
            Self::check_has_password(user)?;
        }
        let user_id = user
            .as_ref()
            .map_or(username, |u| u.username.as_str())
            .to_owned();
        let pool_name = self.idp.srp_pool_name(pool)?.to_owned();
        // no verifier (unknown user, or a password older than verifiers): a fake one, the same
        // salt for the same name every time
        let verifier = match user.and_then(|u| u.srp) {
            Some(v) => v,
            None => srp::fake_verifier(&self.idp.srp_keys.fake, &pool_name, &user_id),
        };
        let stored = verifier.verifier;
        let challenge = self
            .idp
            .hasher
            .run(move || srp::start(&stored, &mut rand::rng()))
            .await
            .map_err(|e| internal(&e))?;
        let mut id = [0u8; ID_LEN];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| internal(&"no randomness"))?;
        let block = secret_block::seal(
            &self.idp.srp_keys,
            &BlockContents {
                pool: pool.to_owned(),
                client_id: client.client_id.clone(),
                username: user_id.clone(),
                a,
                b: challenge.b,
                issued_at: self.options.clock.now(),
                id,
            },
        )
        .map_err(|e| internal(&e))?;
        Ok(json!({
            "ChallengeName": "PASSWORD_VERIFIER",
            "ChallengeParameters": {
                "SALT": hex(&verifier.salt),
                "SECRET_BLOCK": STANDARD.encode(block),
                "SRP_B": hex(&challenge.big_b),
                "USERNAME": user_id,
                "USER_ID_FOR_SRP": user_id,
            },
        }))
    }

    /// `RespondToAuthChallenge` with `PASSWORD_VERIFIER`: `{USERNAME,
    /// PASSWORD_CLAIM_SECRET_BLOCK, PASSWORD_CLAIM_SIGNATURE, TIMESTAMP, [SECRET_HASH]}` → what
    /// a correct password gets ([`Cognito::signed_in`]).
    pub(super) async fn password_verifier(
        &self,
        pool: &str,
        client: &AppClient,
        body: &Body,
    ) -> Result<Value, CognitoError> {
        Self::check_flow(client, AuthFlow::UserSrp)?;
        let empty = Body::new();
        let responses = opt_map(body, "ChallengeResponses")?.unwrap_or(&empty);
        let username = bounded(responses, "USERNAME", MAX_USERNAME_BYTES)?;
        let block_b64 = bounded(responses, "PASSWORD_CLAIM_SECRET_BLOCK", MAX_BLOCK_B64)?;
        let signature = bounded(responses, "PASSWORD_CLAIM_SIGNATURE", MAX_SIGNATURE)?;
        let timestamp = bounded(responses, "TIMESTAMP", MAX_TIMESTAMP)?;
        Self::check_secret_hash(client, username, opt_str(responses, "SECRET_HASH")?)?;
        let now = self.options.clock.now();
        // A block this store sealed, live, issued to this pool, client and user.
        let secret_block = STANDARD.decode(block_b64).map_err(|_| bad_credentials())?;
        let block = secret_block::open(&self.idp.srp_keys, &secret_block, now).map_err(|e| {
            tracing::debug!(pool, error = %e, "PASSWORD_VERIFIER refused");
            bad_credentials()
        })?;
        if block.pool != pool || block.client_id != client.client_id || block.username != username {
            return Err(bad_credentials());
        }
        let fresh = srp::parse_timestamp(timestamp)
            .is_some_and(|t| (t.timestamp() - now).abs() <= TIMESTAMP_SKEW_SECS);
        if !fresh {
            return Err(bad_credentials());
        }
        // One answer per block, on every node: recorded before the signature is checked.
        let record = ChallengeRow {
            session_hash: used_block_hash(&block.id),
            who: Challenged {
                pool: pool.to_owned(),
                client_id: client.client_id.clone(),
                username: username.to_owned(),
            },
            expires_at: block.issued_at.saturating_add(BLOCK_TTL_SECS),
        };
        match self
            .idp
            .store
            .open_challenge_session(&record, self.options.max_pending.max(1), now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(ChallengeError::Full.into()),
            Err(StoreError::Conflict(_)) => return Err(bad_credentials()),
            Err(e) => return Err(e.into()),
        }
        let claim = SrpClaim {
            a: block.a,
            b: block.b,
            secret_block,
            timestamp: timestamp.to_owned(),
            signature: signature.to_owned(),
        };
        let Some(user) = self.idp.store.get_user(pool, username).await? else {
            // counted and locked out like a real user, with the same work and answers
            let check = self
                .idp
                .verify_unknown_user(pool, username, Proof::Srp(&claim))
                .await;
            return Err(password_answer(check).err().unwrap_or_else(bad_credentials));
        };
        let check = self.idp.verify_with_lockout(user, Proof::Srp(&claim)).await;
        let user = password_answer(check)?;
        self.signed_in(pool, client, user, body).await
    }
}
