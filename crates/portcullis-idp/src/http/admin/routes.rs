//! Which operation a method and path of the identity admin API ask for.

use http::Method;

use super::ApiError;

/// What a request asks for, from its method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListPools,
    ListUsers {
        pool: String,
    },
    CreateUser {
        pool: String,
    },
    ShowUser {
        pool: String,
        username: String,
    },
    DeleteUser {
        pool: String,
        username: String,
    },
    SetPassword {
        pool: String,
        username: String,
    },
    Confirm {
        pool: String,
        username: String,
    },
    Disable {
        pool: String,
        username: String,
    },
    Enable {
        pool: String,
        username: String,
    },
    SignOut {
        pool: String,
        username: String,
    },
    RemoveMfa {
        pool: String,
        username: String,
    },
    AddToGroup {
        pool: String,
        username: String,
        group: String,
    },
    RemoveFromGroup {
        pool: String,
        username: String,
        group: String,
    },
    ListGroups {
        pool: String,
    },
    ListClients {
        pool: Option<String>,
    },
    RotateKeys {
        pool: String,
    },
}

impl Operation {
    /// The CLI command's name, for logs and the metric label.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::ListPools => "pools.list",
            Operation::ListUsers { .. } => "users.list",
            Operation::CreateUser { .. } => "users.create",
            Operation::ShowUser { .. } => "users.show",
            Operation::DeleteUser { .. } => "users.delete",
            Operation::SetPassword { .. } => "users.set-password",
            Operation::Confirm { .. } => "users.confirm",
            Operation::Disable { .. } => "users.disable",
            Operation::Enable { .. } => "users.enable",
            Operation::SignOut { .. } => "users.sign-out",
            Operation::RemoveMfa { .. } => "users.remove-mfa",
            Operation::AddToGroup { .. } => "users.add-to-group",
            Operation::RemoveFromGroup { .. } => "users.remove-from-group",
            Operation::ListGroups { .. } => "groups.list",
            Operation::ListClients { .. } => "clients.list",
            Operation::RotateKeys { .. } => "keys.rotate",
        }
    }

    pub fn pool(&self) -> Option<&str> {
        match self {
            Operation::ListPools | Operation::ListClients { pool: None } => None,
            Operation::ListClients { pool: Some(pool) }
            | Operation::ListUsers { pool }
            | Operation::CreateUser { pool }
            | Operation::ShowUser { pool, .. }
            | Operation::DeleteUser { pool, .. }
            | Operation::SetPassword { pool, .. }
            | Operation::Confirm { pool, .. }
            | Operation::Disable { pool, .. }
            | Operation::Enable { pool, .. }
            | Operation::SignOut { pool, .. }
            | Operation::RemoveMfa { pool, .. }
            | Operation::AddToGroup { pool, .. }
            | Operation::RemoveFromGroup { pool, .. }
            | Operation::ListGroups { pool }
            | Operation::RotateKeys { pool } => Some(pool),
        }
    }

    pub fn username(&self) -> Option<&str> {
        match self {
            Operation::ShowUser { username, .. }
            | Operation::DeleteUser { username, .. }
            | Operation::SetPassword { username, .. }
            | Operation::Confirm { username, .. }
            | Operation::Disable { username, .. }
            | Operation::Enable { username, .. }
            | Operation::SignOut { username, .. }
            | Operation::RemoveMfa { username, .. }
            | Operation::AddToGroup { username, .. }
            | Operation::RemoveFromGroup { username, .. } => Some(username),
            _ => None,
        }
    }

    /// Only reads: not worth an info line each.
    pub fn reads(&self) -> bool {
        matches!(
            self,
            Operation::ListPools
                | Operation::ListUsers { .. }
                | Operation::ShowUser { .. }
                | Operation::ListGroups { .. }
                | Operation::ListClients { .. }
        )
    }
}

/// Whether a path belongs to this API. `/admin/@connections/...` stays the management API's
/// (a WebSocket API may have a stage named `admin`).
pub fn owns(path: &str) -> bool {
    match path.strip_prefix("/admin") {
        Some("") => true,
        Some(rest) => rest.strip_prefix('/').is_some_and(|rest| {
            let first = rest.split('/').next().unwrap_or_default();
            !(first == "@connections" || first.eq_ignore_ascii_case("%40connections"))
        }),
        None => false,
    }
}

/// The operation of a method and raw path.
pub fn resolve(method: &Method, raw_path: &str) -> Result<Operation, ApiError> {
    let not_found = || ApiError::NotFound("Not Found".into());
    let rest = raw_path.strip_prefix("/admin/").ok_or_else(not_found)?;
    let mut segments = Vec::new();
    for s in rest.split('/') {
        let decoded = percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map_err(|_| not_found())?;
        if decoded.is_empty() {
            return Err(not_found());
        }
        segments.push(decoded.into_owned());
    }
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let allow = |allowed: &[Method], op: Operation| {
        if allowed.contains(method) {
            Ok(op)
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    };
    let owned = |s: &str| s.to_owned();
    match seg.as_slice() {
        ["pools"] => allow(&[Method::GET], Operation::ListPools),
        ["clients"] => allow(&[Method::GET], Operation::ListClients { pool: None }),
        ["pools", pool, "users"] => match *method {
            Method::GET => Ok(Operation::ListUsers { pool: owned(pool) }),
            Method::POST => Ok(Operation::CreateUser { pool: owned(pool) }),
            _ => Err(ApiError::MethodNotAllowed),
        },
        ["pools", pool, "users", username] => {
            let (pool, username) = (owned(pool), owned(username));
            match *method {
                Method::GET => Ok(Operation::ShowUser { pool, username }),
                Method::DELETE => Ok(Operation::DeleteUser { pool, username }),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        ["pools", pool, "users", username, action] => {
            let (pool, username) = (owned(pool), owned(username));
            let op = match *action {
                "password" => Operation::SetPassword { pool, username },
                "confirm" => Operation::Confirm { pool, username },
                "disable" => Operation::Disable { pool, username },
                "enable" => Operation::Enable { pool, username },
                "sign-out" => Operation::SignOut { pool, username },
                "remove-mfa" => Operation::RemoveMfa { pool, username },
                _ => return Err(not_found()),
            };
            allow(&[Method::POST], op)
        }
        ["pools", pool, "users", username, "groups", group] => {
            let (pool, username, group) = (owned(pool), owned(username), owned(group));
            match *method {
                Method::PUT => Ok(Operation::AddToGroup {
                    pool,
                    username,
                    group,
                }),
                Method::DELETE => Ok(Operation::RemoveFromGroup {
                    pool,
                    username,
                    group,
                }),
                _ => Err(ApiError::MethodNotAllowed),
            }
        }
        ["pools", pool, "groups"] => {
            allow(&[Method::GET], Operation::ListGroups { pool: owned(pool) })
        }
        ["pools", pool, "clients"] => allow(
            &[Method::GET],
            Operation::ListClients {
                pool: Some(owned(pool)),
            },
        ),
        ["pools", pool, "keys", "rotate"] => {
            allow(&[Method::POST], Operation::RotateKeys { pool: owned(pool) })
        }
        _ => Err(not_found()),
    }
}
