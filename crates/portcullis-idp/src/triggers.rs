//! Cognito's Lambda triggers of a pool (`[pools.NAME.triggers]`): `pre_sign_up`,
//! `post_confirmation`, `pre_authentication` and `pre_token_generation` (V1_0), each a webhook
//! or a `[functions.NAME]` handler, called with Cognito's event and answered as a Lambda
//! trigger answers (the event with its `response` filled in).
//!
//! [`event`] builds the events and reads the answers without I/O; [`call`] sends them, bounded
//! by the trigger's `timeout` and [`MAX_ANSWER_BYTES`]. Functions are run by the gateway,
//! which hands the provider a [`FunctionInvoker`] (this crate does not run processes). The
//! operations call the triggers through the methods here: sign-up and the confirmations (the
//! JSON API), sign-in (the JSON API and the hosted page) and every session's minting
//! ([`crate::sessions`], refresh in [`crate::grants`]).
//!
//! Failures are Cognito's: a handler that raised an error refuses the operation with
//! `UserLambdaValidationException` (`PreSignUp failed with error …`), an answer that is not the
//! event with `InvalidLambdaResponseException`, and a timeout, an unreachable webhook or an
//! oversized answer with `UnexpectedLambdaException`. Events carry no password, hash or token;
//! failures are logged with the pool and trigger, never the URL (it may hold credentials).

pub mod call;
pub mod event;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use portcullis_config::Trigger;
use portcullis_core::fault::{Fault, HasFault};
use serde_json::{Map, Value};

pub use call::{MAX_ANSWER_BYTES, TIMED_OUT};
pub use event::{SignUpDecision, TokenShaping, TriggerKind, TriggerSource};

use crate::store::UserRecord;
use crate::{IdentityProvider, IdpError};

/// How a function handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionFailure {
    /// The handler raised (or returned) an error with this message.
    Raised(String),
    /// The function could not run or answer (crash, timeout, overload…): a short reason.
    Failed(String),
}

/// What [`TriggerFunctions::invoke`] returns.
pub type Invocation<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, FunctionFailure>> + Send + 'a>>;

/// Runs `[functions.NAME]` handlers for the triggers; implemented by the gateway over its
/// running functions.
pub trait TriggerFunctions: Send + Sync {
    /// Invokes `name` with `event` (JSON) and returns its result (JSON).
    fn invoke<'a>(&'a self, name: &'a str, event: Vec<u8>) -> Invocation<'a>;
}

/// The functions a provider's triggers may call ([`crate::IdpOptions::trigger_functions`]).
#[derive(Clone)]
pub struct FunctionInvoker(pub Arc<dyn TriggerFunctions>);

impl std::fmt::Debug for FunctionInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FunctionInvoker")
    }
}

/// A trigger that refused or failed the operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The handler raised an error: `UserLambdaValidationException`.
    #[error("{} failed with error {message}.", kind.name())]
    Raised { kind: TriggerKind, message: String },
    /// No usable answer in time: `UnexpectedLambdaException`.
    #[error("{} invocation failed due to error {reason}.", kind.name())]
    Failed { kind: TriggerKind, reason: String },
    /// The answer is not the event: `InvalidLambdaResponseException`.
    #[error("Unrecognizable lambda output")]
    BadAnswer(TriggerKind),
}

impl TriggerError {
    pub(crate) fn failed(kind: TriggerKind, reason: &str) -> TriggerError {
        TriggerError::Failed {
            kind,
            reason: reason.to_owned(),
        }
    }
}

impl HasFault for TriggerError {
    fn fault(&self) -> Fault {
        match self {
            // the pool's own rule refused the caller
            TriggerError::Raised { .. } => Fault::Client,
            TriggerError::Failed { .. } | TriggerError::BadAnswer(_) => Fault::Operator,
        }
    }
}

/// What a session's tokens are minted for: the `triggerSource` of pre token generation and
/// the call's `ClientMetadata`.
#[derive(Debug, Clone)]
pub struct TokenContext {
    pub source: TriggerSource,
    pub client_metadata: Option<Map<String, Value>>,
}

impl TokenContext {
    /// Tokens for `source`, without client metadata.
    pub fn new(source: TriggerSource) -> TokenContext {
        TokenContext {
            source,
            client_metadata: None,
        }
    }
}

impl IdentityProvider {
    /// Calls `trigger` with `event`; failures are logged (pool and trigger, no URL).
    async fn run_trigger(
        &self,
        pool: &str,
        kind: TriggerKind,
        trigger: &Trigger,
        event: &Value,
    ) -> Result<Value, IdpError> {
        let called = call::call(
            kind,
            trigger,
            event,
            &self.outbound,
            self.options.trigger_functions.as_ref(),
        )
        .await;
        called.map_err(|e| {
            match &e {
                TriggerError::Raised { .. } => {
                    tracing::info!(pool, trigger = kind.name(), error = %e, "trigger refused")
                }
                _ => tracing::warn!(pool, trigger = kind.name(), error = %e, "trigger failed"),
            }
            IdpError::Trigger(e)
        })
    }

    /// The pre sign-up trigger of `pool` for a new user (`SignUp`, or an administrator's
    /// `AdminCreateUser` with [`TriggerSource::PreSignUpAdminCreateUser`]). Without the
    /// trigger: nothing decided. An error refuses the sign-up; call it before anything is
    /// stored.
    #[allow(clippy::too_many_arguments)] // each is a field of Cognito's event
    pub async fn pre_sign_up(
        &self,
        pool: &str,
        source: TriggerSource,
        client_id: &str,
        username: &str,
        attributes: &std::collections::BTreeMap<String, String>,
        validation_data: Option<&Map<String, Value>>,
        client_metadata: Option<&Map<String, Value>>,
    ) -> Result<SignUpDecision, IdpError> {
        let state = self.pool(pool)?;
        let Some(trigger) = &state.config.triggers.pre_sign_up else {
            return Ok(SignUpDecision::default());
        };
        let caller = event::Caller {
            pool_id: &state.config.id,
            username,
            client_id,
        };
        let e = event::pre_sign_up(
            source,
            &caller,
            attributes,
            validation_data,
            client_metadata,
        );
        let answer = self
            .run_trigger(pool, TriggerKind::PreSignUp, trigger, &e)
            .await?;
        SignUpDecision::from_answer(&answer)
            .map_err(|_| IdpError::Trigger(TriggerError::BadAnswer(TriggerKind::PreSignUp)))
    }

    /// The post confirmation trigger of the user's pool, once `user` is confirmed (its sign-up
    /// or a password reset). The confirmation stays done whatever the trigger answers; its
    /// error is the caller's answer, as Cognito's.
    pub async fn post_confirmation(
        &self,
        source: TriggerSource,
        client_id: &str,
        user: &UserRecord,
        client_metadata: Option<&Map<String, Value>>,
    ) -> Result<(), IdpError> {
        let state = self.pool(&user.pool)?;
        let Some(trigger) = &state.config.triggers.post_confirmation else {
            return Ok(());
        };
        let caller = event::Caller {
            pool_id: &state.config.id,
            username: &user.username,
            client_id,
        };
        let e = event::post_confirmation(source, &caller, user, client_metadata);
        let answer = self
            .run_trigger(&user.pool, TriggerKind::PostConfirmation, trigger, &e)
            .await?;
        if answer.is_object() {
            Ok(())
        } else {
            Err(IdpError::Trigger(TriggerError::BadAnswer(
                TriggerKind::PostConfirmation,
            )))
        }
    }

    /// The pre authentication trigger of the user's pool, for a user who proved the password:
    /// an error refuses the sign-in before anything is issued. `client_metadata` is the
    /// sign-in call's `ClientMetadata` (the event's `validationData`, as Cognito passes it).
    pub async fn pre_authentication(
        &self,
        client_id: &str,
        user: &UserRecord,
        client_metadata: Option<&Map<String, Value>>,
    ) -> Result<(), IdpError> {
        let state = self.pool(&user.pool)?;
        let Some(trigger) = &state.config.triggers.pre_authentication else {
            return Ok(());
        };
        let caller = event::Caller {
            pool_id: &state.config.id,
            username: &user.username,
            client_id,
        };
        let e = event::pre_authentication(&caller, user, client_metadata);
        let answer = self
            .run_trigger(&user.pool, TriggerKind::PreAuthentication, trigger, &e)
            .await?;
        if answer.is_object() {
            Ok(())
        } else {
            Err(IdpError::Trigger(TriggerError::BadAnswer(
                TriggerKind::PreAuthentication,
            )))
        }
    }

    /// The pre token generation trigger (V1_0) of the pool `config` before `user`'s tokens
    /// are minted: what it changes in them (nothing without the trigger).
    pub(crate) async fn pre_token_generation(
        &self,
        config: &portcullis_config::Pool,
        context: &TokenContext,
        client_id: &str,
        user: &UserRecord,
        groups: &[String],
    ) -> Result<TokenShaping, IdpError> {
        let Some(trigger) = &config.triggers.pre_token_generation else {
            return Ok(TokenShaping::default());
        };
        let caller = event::Caller {
            pool_id: &config.id,
            username: &user.username,
            client_id,
        };
        let e = event::pre_token_generation(
            context.source,
            &caller,
            user,
            groups,
            context.client_metadata.as_ref(),
        );
        let answer = self
            .run_trigger(&user.pool, TriggerKind::PreTokenGeneration, trigger, &e)
            .await?;
        TokenShaping::from_answer(&answer).map_err(|_| {
            IdpError::Trigger(TriggerError::BadAnswer(TriggerKind::PreTokenGeneration))
        })
    }
}

impl IdentityProvider {
    /// Whether `pool` has the trigger `which` picks (false for an unknown pool).
    pub fn has_trigger(
        &self,
        pool: &str,
        which: impl FnOnce(&portcullis_config::Triggers) -> bool,
    ) -> bool {
        self.pool(pool)
            .is_ok_and(|state| which(&state.config.triggers))
    }
}
