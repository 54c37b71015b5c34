//! How the code flow's pending requests and codes are written into the identity store's rows
//! (JSON bodies; the store keys them by the SHA-256 of their id or code).

use portcullis_config::Secret;
use serde::{Deserialize, Serialize};

use super::{CodeRecord, PendingRequest};
use crate::IdpError;
use crate::store::StoreError;

/// A [`PendingRequest`] as stored.
#[derive(Serialize, Deserialize)]
struct StoredRequest {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    nonce: Option<String>,
    /// The CSRF token the form must echo (the browser holds it in a cookie as well).
    csrf: String,
    password_verified_user: Option<String>,
    expires_at: i64,
}

pub(super) fn request_body(request: &PendingRequest) -> Result<String, IdpError> {
    serde_json::to_string(&StoredRequest {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scopes: request.scopes.clone(),
        state: request.state.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        csrf: request.csrf.expose().to_owned(),
        password_verified_user: request.password_verified_user.clone(),
        expires_at: request.expires_at,
    })
    .map_err(|e| IdpError::Store(StoreError::Corrupt(format!("pending request: {e}"))))
}

/// The request stored under `body` for `pool`.
pub(super) fn request_from(pool: &str, body: &str) -> Result<PendingRequest, IdpError> {
    let s: StoredRequest = serde_json::from_str(body)
        .map_err(|e| IdpError::Store(StoreError::Corrupt(format!("pending request: {e}"))))?;
    Ok(PendingRequest {
        pool: pool.to_owned(),
        client_id: s.client_id,
        redirect_uri: s.redirect_uri,
        scopes: s.scopes,
        state: s.state,
        code_challenge: s.code_challenge,
        nonce: s.nonce,
        csrf: Secret::new(s.csrf),
        password_verified_user: s.password_verified_user,
        expires_at: s.expires_at,
    })
}

/// A [`CodeRecord`] as stored (pool and client are columns of their own).
#[derive(Serialize, Deserialize)]
struct StoredCode {
    redirect_uri: String,
    scopes: Vec<String>,
    code_challenge: Option<String>,
    nonce: Option<String>,
    username: String,
}

pub(super) fn code_body(record: &CodeRecord) -> Result<String, IdpError> {
    serde_json::to_string(&StoredCode {
        redirect_uri: record.redirect_uri.clone(),
        scopes: record.scopes.clone(),
        code_challenge: record.code_challenge.clone(),
        nonce: record.nonce.clone(),
        username: record.username.clone(),
    })
    .map_err(|e| IdpError::Store(StoreError::Corrupt(format!("authorization code: {e}"))))
}

pub(super) fn code_from(client_id: &str, body: &str) -> Result<CodeRecord, StoreError> {
    let s: StoredCode = serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("authorization code: {e}")))?;
    Ok(CodeRecord {
        client_id: client_id.to_owned(),
        redirect_uri: s.redirect_uri,
        scopes: s.scopes,
        code_challenge: s.code_challenge,
        nonce: s.nonce,
        username: s.username,
    })
}
