//! The Cognito Admin API: the `cognito-idp` operations backends call with IAM credentials
//! (`AdminCreateUser`, `ListUsers`, `CreateGroup`, `AdminInitiateAuth`, `DescribeUserPool`,
//! …), served at the same `POST /` as the public operations and told apart by their
//! `X-Amz-Target`. Every one of them must be signed with SigV4 (service `cognito-idp`, the
//! `[management]` region) by a `[management]` credential holding the `admin` scope
//! ([`gate`]); the signature is checked before the body is even parsed.
//!
//! Files: this one reads the call, checks it and dispatches; [`gate`] (the signature and the
//! scope), [`users`] (creating, reading, changing and deleting users), [`listing`] (`ListUsers`
//! and its [`filter`], `ListUsersInGroup`, page tokens), [`groups`] (groups and memberships),
//! [`auth`] (`AdminInitiateAuth`, `AdminRespondToAuthChallenge`), [`describe`]
//! (`DescribeUserPool`, `DescribeUserPoolClient`).
//!
//! Design choices:
//! * Admin calls may tell whether a user exists (`UserNotFoundException`), as on AWS: only
//!   holders of an admin credential get here.
//! * They are not counted against the pool's `rate_limit_per_ip` (the caller is a signed
//!   backend, typically one address for all users); `AdminInitiateAuth` still goes through the
//!   per-user lockout.
//! * Bodies are bounded by [`MAX_BODY_BYTES`] (64 KiB, the identity admin API's bound: a user
//!   with 100 attributes of 2 KiB needs more than the public operations' 16 KiB), and
//!   changes are logged with the operation, pool and username only.

mod auth;
mod describe;
mod filter;
mod gate;
mod groups;
mod listing;
#[cfg(test)]
mod tests;
mod users;

use axum::body::to_bytes;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::errors::{CognitoError, ErrorType as E, err};
use super::{Body, Cognito, opt_str, req_str};
use crate::http::json11::{CallError, answer};
use crate::pool::PoolState;

/// Largest body of a signed admin call.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The operations this module serves. Any other `Admin*` operation is refused here too (after
/// the signature), so an unsupported admin call is never mistaken for a public one.
pub const OPERATIONS: [&str; 22] = [
    "AdminAddUserToGroup",
    "AdminConfirmSignUp",
    "AdminCreateUser",
    "AdminDeleteUser",
    "AdminDisableUser",
    "AdminEnableUser",
    "AdminGetUser",
    "AdminInitiateAuth",
    "AdminListGroupsForUser",
    "AdminRemoveUserFromGroup",
    "AdminRespondToAuthChallenge",
    "AdminSetUserPassword",
    "AdminUpdateUserAttributes",
    "AdminUserGlobalSignOut",
    "CreateGroup",
    "DeleteGroup",
    "DescribeUserPool",
    "DescribeUserPoolClient",
    "GetGroup",
    "ListGroups",
    "ListUsers",
    "ListUsersInGroup",
];

/// The operation of a call whose target asks for the Admin API, if it does.
pub(super) fn admin_operation<'h>(headers: &'h HeaderMap, prefix: &str) -> Option<&'h str> {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(prefix))?;
    (OPERATIONS.contains(&operation) || operation.starts_with("Admin")).then_some(operation)
}

impl Cognito {
    /// Serves one signed admin call (its target said so: [`admin_operation`]).
    pub(super) async fn admin_call(&self, operation: String, request: Request) -> Response {
        match self.admin_inner(&operation, request).await {
            Ok(body) => answer(StatusCode::OK, &body),
            Err(e) => e.into_response(),
        }
    }

    async fn admin_inner(&self, operation: &str, request: Request) -> Result<Value, CognitoError> {
        let (parts, body) = request.into_parts();
        let bytes = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
            err(
                E::InvalidParameter,
                format!("Request body exceeds the maximum of {MAX_BODY_BYTES} bytes"),
            )
        })?;
        gate::check(self.options.management.as_ref(), operation, &parts, &bytes)?;
        let body: Value =
            serde_json::from_slice(&bytes).map_err(|_| CognitoError::from(CallError::NotJson))?;
        let Value::Object(mut body) = body else {
            return Err(CallError::NotObject.into());
        };
        crate::username::normalize_request_fields(&mut body);
        let b = &body;
        match operation {
            "AdminCreateUser" => self.admin_create_user(b).await,
            "AdminGetUser" => self.admin_get_user(b).await,
            "AdminDeleteUser" => self.admin_delete_user(b).await,
            "AdminUpdateUserAttributes" => self.admin_update_user_attributes(b).await,
            "AdminSetUserPassword" => self.admin_set_user_password(b).await,
            "AdminConfirmSignUp" => self.admin_confirm_sign_up(b).await,
            "AdminDisableUser" => self.admin_disable_user(b).await,
            "AdminEnableUser" => self.admin_enable_user(b).await,
            "AdminUserGlobalSignOut" => self.admin_user_global_sign_out(b).await,
            "AdminAddUserToGroup" => self.admin_add_user_to_group(b).await,
            "AdminRemoveUserFromGroup" => self.admin_remove_user_from_group(b).await,
            "AdminListGroupsForUser" => self.admin_list_groups_for_user(b).await,
            "CreateGroup" => self.create_group(b).await,
            "GetGroup" => self.get_group(b).await,
            "DeleteGroup" => self.delete_group(b).await,
            "ListGroups" => self.list_groups(b).await,
            "ListUsers" => self.list_users(b).await,
            "ListUsersInGroup" => self.list_users_in_group(b).await,
            "AdminInitiateAuth" => self.admin_initiate_auth(b).await,
            "AdminRespondToAuthChallenge" => self.admin_respond_to_auth_challenge(b).await,
            "DescribeUserPool" => self.describe_user_pool(b).await,
            "DescribeUserPoolClient" => self.describe_user_pool_client(b).await,
            _ => Err(err(
                E::UnknownOperation,
                "The operation is not supported by this server",
            )),
        }
    }

    /// The pool a call's `UserPoolId` names (the pool's id, `us-east-1_main`): its name and
    /// state.
    fn admin_pool<'a>(&'a self, body: &Body) -> Result<(&'a str, &'a PoolState), CognitoError> {
        let id = req_str(body, "UserPoolId")?;
        self.idp
            .pools
            .iter()
            .find(|(_, state)| state.config.id == id)
            .map(|(name, state)| (name.as_str(), state))
            .ok_or_else(|| {
                err(
                    E::ResourceNotFound,
                    format!("User pool {id} does not exist."),
                )
            })
    }

    /// The pool and the (stored, normalised) username of a call about one user.
    fn admin_target<'a>(&'a self, body: &'a Body) -> Result<(&'a str, &'a str), CognitoError> {
        let (pool, _) = self.admin_pool(body)?;
        Ok((pool, req_str(body, "Username")?))
    }
}

/// Logs a change made through the Admin API: the operation, pool and username, nothing else.
fn changed(operation: &str, pool: &str, username: Option<&str>) {
    tracing::info!(
        operation,
        pool,
        username = username.unwrap_or_default(),
        "cognito admin change"
    );
}

/// A `Limit` field: absent → `default`; otherwise 0..=`max` (AWS's range; 0 answers the
/// default page as AWS does).
fn limit(body: &Body, default: u32, max: u32) -> Result<u32, CognitoError> {
    match body.get("Limit") {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(0) => Ok(default),
            Some(n) if n <= u64::from(max) => Ok(u32::try_from(n).unwrap_or(max)),
            _ => Err(super::errors::invalid_parameter(format!(
                "1 validation error detected: Value at 'limit' failed to satisfy constraint: \
                 Member must have value less than or equal to {max}"
            ))),
        },
    }
}

/// An optional string field bounded to `max` characters.
fn bounded_str<'a>(
    body: &'a Body,
    name: &str,
    max: usize,
) -> Result<Option<&'a str>, CognitoError> {
    let value = opt_str(body, name)?;
    if value.is_some_and(|v| v.chars().count() > max) {
        return Err(super::errors::invalid_parameter(format!(
            "1 validation error detected: Value at '{name}' failed to satisfy constraint: \
             Member must have length less than or equal to {max}"
        )));
    }
    Ok(value)
}
