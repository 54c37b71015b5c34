//! Where the JSON API calls the pool's Lambda triggers ([`crate::triggers`]): what each
//! operation passes from its call (`ValidationData`, `ClientMetadata`) and what it does with
//! the answer.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::errors::CognitoError;
use super::{Body, Cognito, attribute_list, opt_map};
use crate::store::UserRecord;
use crate::triggers::{TokenContext, TriggerSource};

impl Cognito {
    /// The pre sign-up trigger of a `SignUp` (or an `AdminCreateUser`, `source`): whether it
    /// confirms the user, and the attributes with those it verifies. Its error refuses the
    /// sign-up before anything is stored.
    pub(super) async fn pre_sign_up_trigger(
        &self,
        body: &Body,
        source: TriggerSource,
        pool: &str,
        client_id: &str,
        username: &str,
        mut attributes: BTreeMap<String, String>,
    ) -> Result<(bool, BTreeMap<String, String>), CognitoError> {
        let validation: Map<String, Value> = attribute_list(body, "ValidationData")?
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let validation = body.get("ValidationData").is_some().then_some(&validation);
        let decision = self
            .idp
            .pre_sign_up(
                pool,
                source,
                client_id,
                username,
                &attributes,
                validation,
                opt_map(body, "ClientMetadata")?,
            )
            .await?;
        decision.verify(&mut attributes);
        Ok((decision.auto_confirm, attributes))
    }

    /// The post confirmation trigger once `username` is confirmed (sign-up or password
    /// reset): the confirmation stays done, the trigger's error is the answer (as Cognito).
    pub(super) async fn post_confirmation_trigger(
        &self,
        body: &Body,
        source: TriggerSource,
        client_id: &str,
        pool: &str,
        username: &str,
    ) -> Result<(), CognitoError> {
        if !self
            .idp
            .has_trigger(pool, |t| t.post_confirmation.is_some())
        {
            return Ok(());
        }
        let user = self.idp.user(pool, username).await?;
        let metadata = opt_map(body, "ClientMetadata")?;
        Ok(self
            .idp
            .post_confirmation(source, client_id, &user, metadata)
            .await?)
    }

    /// The pre authentication trigger of a user who proved the password, with the sign-in
    /// call's `ClientMetadata`.
    pub(super) async fn pre_authentication_trigger(
        &self,
        body: &Body,
        client_id: &str,
        user: &UserRecord,
    ) -> Result<(), CognitoError> {
        let metadata = opt_map(body, "ClientMetadata")?;
        Ok(self
            .idp
            .pre_authentication(client_id, user, metadata)
            .await?)
    }

    /// What the tokens of a sign-in by this call are minted for.
    pub(super) fn token_context(
        body: &Body,
        source: TriggerSource,
    ) -> Result<TokenContext, CognitoError> {
        let client_metadata = opt_map(body, "ClientMetadata")?.cloned();
        Ok(TokenContext {
            source,
            client_metadata,
        })
    }
}
