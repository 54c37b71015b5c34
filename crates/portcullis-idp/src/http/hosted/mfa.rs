//! The hosted sign-in page's second step for users with a TOTP software token: after the
//! password (or the new password of a temporary one), a form asks for the code of the
//! authenticator app. It carries the same CSRF token and request id as the password form and is
//! checked the same way by [`super::login`]; the step itself is an MFA challenge session in the
//! store (as the JSON API's `SOFTWARE_TOKEN_MFA`), keyed by the pending request, so the form may
//! reach another node. Wrong and reused codes are refused with a message, count toward the
//! user's code lockout, and after [`MAX_SESSION_FAILURES`] the sign-in starts over.
//!
//! Setting a token up (`MFA_SETUP`, a pool with `mfa = "on"` and a user without a token) is not
//! offered here: such users are told to set one up through the application first.

use axum::response::Response;
use http::StatusCode;

use super::{GENERIC_FAILURE, LOCKED_OUT, actions, alert, app_name, finish, hidden_fields};
use crate::http::page::{error_page, escape, html_page, html_response, server_error};
use crate::mfa::{AfterPassword, MAX_SESSION_FAILURES, TotpCheck};
use crate::oauth_code::PendingRequest;
use crate::pending::challenges::{Challenged, SESSION_TTL_SECS, session_hash};
use crate::store::{MfaChallenge, MfaSessionRow};
use crate::{IdentityProvider, IdpError, unix_now};

/// Most code steps held at once (as the JSON API's MFA sessions, which share their table).
const MAX_STEPS: usize = 10_000;

/// The form field of the code.
pub(super) const CODE_FIELD: &str = "totp_code";

/// What the store keeps of the code step of pending request `id`.
fn step_hash(id: &str) -> Vec<u8> {
    session_hash(&format!("hosted-totp:{id}"))
}

fn code_page(
    idp: &IdentityProvider,
    pool: &str,
    id: &str,
    req: &PendingRequest,
    error: Option<&str>,
) -> String {
    let body = format!(
        "<p class=\"app\">Enter the code from your authenticator app to continue to \
         <strong>{client}</strong>.</p>\n{alert}\
         <form method=\"post\" action=\"/pools/{pool}/login\">\n{hidden}\
         <label for=\"{CODE_FIELD}\">Code</label>\n\
         <input id=\"{CODE_FIELD}\" name=\"{CODE_FIELD}\" type=\"text\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" required>\n\
         {actions}</form>\n",
        client = escape(&app_name(idp, pool, &req.client_id)),
        actions = actions("Verify"),
        alert = alert(error),
        pool = escape(pool),
        hidden = hidden_fields(id, &req.csrf),
    );
    html_page("Enter your code", &body)
}

fn start_over() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired. Go back to the application and start again.",
    )
}

/// After the password of `username`: the code form when the pool asks this user for a code,
/// else the end of the sign-in.
pub(super) async fn after_password(
    idp: &IdentityProvider,
    pool: &str,
    id: &str,
    req: &PendingRequest,
    username: &str,
) -> Response {
    match idp.after_password(pool, username).await {
        Ok(AfterPassword::Tokens) => finish(idp, pool, id, username).await,
        Ok(AfterPassword::Challenge(MfaChallenge::SoftwareToken)) => {
            match open_step(idp, pool, id, req, username).await {
                Ok(true) => html_response(StatusCode::OK, code_page(idp, pool, id, req, None)),
                Ok(false) => error_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many sign-ins are in progress. Wait a moment and try again.",
                ),
                Err(e) => server_error(&e),
            }
        }
        Ok(AfterPassword::Challenge(MfaChallenge::Setup)) => error_page(
            StatusCode::FORBIDDEN,
            "Your account needs an authenticator app, which this page cannot set up. Set one \
             up in the application first, then sign in here.",
        ),
        Err(e) => server_error(&e),
    }
}

/// Opens the code step of request `id` (replacing an earlier one).
async fn open_step(
    idp: &IdentityProvider,
    pool: &str,
    id: &str,
    req: &PendingRequest,
    username: &str,
) -> Result<bool, IdpError> {
    let hash = step_hash(id);
    let store = idp.store();
    store.end_mfa_session(&hash).await?;
    let now = unix_now();
    let row = MfaSessionRow {
        session_hash: hash,
        who: Challenged {
            pool: pool.to_owned(),
            client_id: req.client_id.clone(),
            username: username.to_owned(),
        },
        kind: MfaChallenge::SoftwareToken,
        expires_at: now.saturating_add(SESSION_TTL_SECS),
    };
    Ok(store.open_mfa_session(&row, MAX_STEPS, now).await?)
}

/// The code form was sent: a right code ends the sign-in; a wrong or reused one shows the form
/// again with a message.
pub(super) async fn code_step(
    idp: &IdentityProvider,
    pool: &str,
    id: &str,
    req: &PendingRequest,
    code: &str,
) -> Response {
    let hash = step_hash(id);
    let store = idp.store();
    let who = match store.mfa_session(&hash, unix_now()).await {
        Ok(Some((who, state)))
            if who.pool == pool
                && who.client_id == req.client_id
                && state.kind == MfaChallenge::SoftwareToken =>
        {
            who
        }
        Ok(_) => return start_over(),
        Err(e) => return server_error(&e.into()),
    };
    let again = |msg: &str| html_response(StatusCode::OK, code_page(idp, pool, id, req, Some(msg)));
    let message = match idp.check_totp_sign_in(pool, &who.username, code).await {
        Ok(TotpCheck::Valid) => {
            return match store.end_mfa_session(&hash).await {
                Ok(true) => finish(idp, pool, id, &who.username).await,
                Ok(false) => start_over(),
                Err(e) => server_error(&e.into()),
            };
        }
        Ok(TotpCheck::Mismatch) => "Incorrect code. Try again.",
        Ok(TotpCheck::Replayed) => {
            "This code was already used. Wait for the next code of your app and enter it."
        }
        Ok(TotpCheck::Locked) => LOCKED_OUT,
        Ok(TotpCheck::NoToken) => GENERIC_FAILURE,
        Err(e) => return server_error(&e),
    };
    match store.fail_mfa_session(&hash, MAX_SESSION_FAILURES).await {
        Ok(Some(n)) if n < MAX_SESSION_FAILURES => again(message),
        Ok(_) => start_over(),
        Err(e) => server_error(&e.into()),
    }
}
