//! Codes to deliver (what each is for, whom it goes to) and their delivery to a pool's
//! `code_webhook`.
//!
//! Each code is one JSON `POST` to the configured URL:
//! `{"pool", "username", "kind": "SIGN_UP" | "FORGOT_PASSWORD" | "ADMIN_CREATE_USER", "code", "client_id",
//! "destination": {"email", "phone_number"}}` (`destination` only with what the user's
//! attributes hold), signed with `X-Portcullis-Signature: sha256=<hex HMAC-SHA256 of the body>`
//! when `code_webhook_secret` is set.
//!
//! Deliveries run in the background: the API call that issued the code never waits for the
//! webhook and never fails because of it. At most [`MAX_IN_FLIGHT`] deliveries run at once
//! across all pools; a code issued while all are busy is dropped (and logged) rather than
//! queued, so a slow or dead webhook costs bounded memory. One attempt per code, bounded by
//! `code_webhook_timeout`; the user can ask for a new code. Failures are logged with the pool,
//! user and reason, never with the code or the URL (which may carry credentials).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use portcullis_config::{Pool, Secret};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePurpose {
    SignUp,
    ForgotPassword,
    /// The temporary password of a user an administrator created (`AdminCreateUser`).
    Invitation,
}

impl CodePurpose {
    /// The purpose in logs and in a code's HMAC.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CodePurpose::SignUp => "sign_up",
            CodePurpose::ForgotPassword => "forgot_password",
            CodePurpose::Invitation => "invitation",
        }
    }
}

/// A code to deliver to a user (passed to the Cognito JSON API's `on_code` callback and to the
/// pool's webhook).
#[derive(Debug, Clone)]
pub struct CodeDelivery {
    pub pool: String,
    pub username: String,
    pub purpose: CodePurpose,
    pub code: Secret,
    /// The app client of the call that issued the code.
    pub client_id: String,
    /// The user's `email` attribute, if any.
    pub email: Option<String>,
    /// The user's `phone_number` attribute, if any.
    pub phone_number: Option<String>,
}

/// Called with every generated code (tests, or an in-process mailer), whether or not the pool
/// also has a `code_webhook`.
pub type CodeCallback = Arc<dyn Fn(&CodeDelivery) + Send + Sync>;

/// Most webhook deliveries in flight at once (all pools together).
pub const MAX_IN_FLIGHT: usize = 64;
/// The signature header (`sha256=` + lowercase hex).
pub const SIGNATURE_HEADER: &str = "x-portcullis-signature";

/// One pool's webhook.
struct Hook {
    url: String,
    key: Option<hmac::Key>,
    timeout: Duration,
}

/// The configured code webhooks, by pool.
pub(crate) struct CodeWebhooks {
    hooks: HashMap<String, Arc<Hook>>,
    client: Option<reqwest::Client>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for CodeWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeWebhooks")
            .field("pools", &self.hooks.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl CodeWebhooks {
    /// The webhooks of `pools`, called with `client` (the provider's outbound client: the
    /// system roots and `[server] ca_file`, no redirects).
    pub(crate) fn new<'a>(
        pools: impl Iterator<Item = (&'a String, &'a Pool)>,
        client: &reqwest::Client,
    ) -> Self {
        let hooks: HashMap<String, Arc<Hook>> = pools
            .filter_map(|(name, pool)| {
                let hook = pool.code_webhook.as_ref()?;
                Some((
                    name.clone(),
                    Arc::new(Hook {
                        url: hook.url.clone(),
                        key: hook
                            .secret
                            .as_ref()
                            .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.expose().as_bytes())),
                        timeout: hook.timeout,
                    }),
                ))
            })
            .collect();
        let client = (!hooks.is_empty()).then(|| client.clone());
        CodeWebhooks {
            hooks,
            client,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// True when `pool` delivers its codes to a webhook (rather than to the log).
    pub(crate) fn configured(&self, pool: &str) -> bool {
        self.hooks.contains_key(pool)
    }

    /// Starts delivering `delivery` to its pool's webhook in the background; returns at once.
    /// Does nothing for a pool without a webhook.
    pub(crate) fn send(&self, delivery: &CodeDelivery) {
        let Some(hook) = self.hooks.get(&delivery.pool) else {
            return;
        };
        let who = Who::of(delivery);
        let Some(client) = self.client.clone() else {
            who.failed("no HTTP client");
            return;
        };
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            who.failed("too many deliveries in flight");
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            who.failed("no async runtime");
            return;
        };
        let body = body(delivery).to_string();
        let hook = Arc::clone(hook);
        runtime.spawn(async move {
            let _permit = permit;
            let mut request = client
                .post(&hook.url)
                .timeout(hook.timeout)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::USER_AGENT, "portcullis-code-webhook");
            if let Some(key) = &hook.key {
                request = request.header(SIGNATURE_HEADER, signature(key, body.as_bytes()));
            }
            match request.body(body).send().await {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(pool = %who.pool, username = %who.username, kind = who.kind, "code delivered to the webhook");
                }
                Ok(response) => who.failed(&format!("answered {}", response.status().as_u16())),
                Err(e) if e.is_timeout() => {
                    who.failed(&format!("timed out after {:?}", hook.timeout));
                }
                Err(e) if e.is_connect() => who.failed("connection failed"),
                Err(_) => who.failed("request failed"),
            }
        });
    }
}

/// Whom a delivery is for, for the log (never the code).
struct Who {
    pool: String,
    username: String,
    kind: &'static str,
}

impl Who {
    fn of(d: &CodeDelivery) -> Self {
        Who {
            pool: d.pool.clone(),
            username: d.username.clone(),
            kind: kind(d.purpose),
        }
    }

    fn failed(&self, why: &str) {
        tracing::warn!(pool = %self.pool, username = %self.username, kind = self.kind, reason = why, "code webhook failed; the code was not delivered");
    }
}

/// The `kind` of a delivery.
pub fn kind(purpose: CodePurpose) -> &'static str {
    match purpose {
        CodePurpose::SignUp => "SIGN_UP",
        CodePurpose::ForgotPassword => "FORGOT_PASSWORD",
        CodePurpose::Invitation => "ADMIN_CREATE_USER",
    }
}

/// The JSON body of a delivery.
pub(crate) fn body(d: &CodeDelivery) -> Value {
    let mut out = json!({
        "pool": d.pool,
        "username": d.username,
        "kind": kind(d.purpose),
        "code": d.code.expose(),
        "client_id": d.client_id,
    });
    let mut destination = Map::new();
    if let Some(email) = &d.email {
        destination.insert("email".into(), json!(email));
    }
    if let Some(phone) = &d.phone_number {
        destination.insert("phone_number".into(), json!(phone));
    }
    if !destination.is_empty() {
        out["destination"] = Value::Object(destination);
    }
    out
}

/// `sha256=<lowercase hex HMAC-SHA256 of body>`.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(email: Option<&str>) -> CodeDelivery {
        CodeDelivery {
            pool: "main".into(),
            username: "ann".into(),
            purpose: CodePurpose::ForgotPassword,
            code: Secret::new("123456"),
            client_id: "web".into(),
            email: email.map(str::to_owned),
            phone_number: None,
        }
    }

    #[test]
    fn body_has_the_destination_only_when_known() {
        assert_eq!(
            body(&delivery(Some("ann@example.com"))),
            json!({"pool": "main", "username": "ann", "kind": "FORGOT_PASSWORD", "code": "123456",
                   "client_id": "web", "destination": {"email": "ann@example.com"}})
        );
        assert!(body(&delivery(None)).get("destination").is_none());
    }

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
