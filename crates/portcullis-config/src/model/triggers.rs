//! `[pools.NAME.triggers]`: the Cognito Lambda triggers of a user pool, each a webhook or a
//! declared `[functions.NAME]`.

use std::time::Duration;

/// The triggers of one pool; `None`: the pool has no such trigger.
#[derive(Debug, Clone, Default)]
pub struct Triggers {
    /// Before a user signs up (`SignUp`) or is created by an administrator.
    pub pre_sign_up: Option<Trigger>,
    /// After a user confirmed the sign-up or a password reset.
    pub post_confirmation: Option<Trigger>,
    /// When a user who proved the password signs in, before anything is issued.
    pub pre_authentication: Option<Trigger>,
    /// Before the tokens of a session are minted (the V1_0 event).
    pub pre_token_generation: Option<Trigger>,
}

impl Triggers {
    /// True when no trigger is configured.
    pub fn is_empty(&self) -> bool {
        self.all().iter().all(|(_, t)| t.is_none())
    }

    /// Every trigger with its key in the file, in file-documented order.
    pub fn all(&self) -> [(&'static str, Option<&Trigger>); 4] {
        [
            ("pre_sign_up", self.pre_sign_up.as_ref()),
            ("post_confirmation", self.post_confirmation.as_ref()),
            ("pre_authentication", self.pre_authentication.as_ref()),
            ("pre_token_generation", self.pre_token_generation.as_ref()),
        ]
    }
}

/// One trigger: what is called and how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub target: TriggerTarget,
    /// Time allowed for one call (connect + answer, or the function's run); default 5 s, as
    /// Cognito's own limit.
    pub timeout: Duration,
}

/// What a trigger calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerTarget {
    /// `url = "http(s)://..."`: the event is POSTed as JSON, the answer is the event with its
    /// `response` filled in.
    Url(String),
    /// `function = "NAME"`: the declared `[functions.NAME]` is invoked with the event.
    Function(String),
}
