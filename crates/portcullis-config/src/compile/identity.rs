//! `[roles.NAME]` and `[identity_pools.NAME]`.
//!
//! Checked here: role names (they end up in ARNs), policies (valid JSON, a valid IAM policy,
//! at most [`MAX_POLICY_BYTES`]), identity pool ids (unique, `REGION:ID`), that every user
//! pool and role an identity pool names is declared, and that guests have a role when they
//! are allowed. A `by_group` group that none of the identity pool's user pools declares is a
//! warning, not an error: groups can also be created at run time with the admin API.

use indexmap::IndexMap;
use portcullis_core::policy::PolicyDocument;

use crate::model::{IdentityPool, IdentityPoolRoles, Pool, Role};
use crate::syntax;
use crate::walk::{Ctx, Sp, Tbl, index};

/// Longest inline policy, in bytes (IAM's inline role policy limit is 10,240 characters).
pub(crate) const MAX_POLICY_BYTES: usize = 10_240;
/// Longest role name (IAM: 64).
const MAX_ROLE_NAME: usize = 64;
/// Longest identity pool id (Cognito: 55).
const MAX_IDENTITY_POOL_ID: usize = 55;

/// `[roles.NAME]`: `policy` (required), an IAM policy document as a JSON string.
pub(super) fn role(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    account_id: &str,
) -> Option<Role> {
    let mut ok = true;
    if let Err(message) = syntax::url_name(&name.v) {
        ctx.error(
            name.at,
            &t.path,
            format!("{message} (the role name is part of its ARN)"),
        );
        ok = false;
    } else if name.v.len() > MAX_ROLE_NAME {
        ctx.error(
            name.at,
            &t.path,
            format!("role names are at most {MAX_ROLE_NAME} characters"),
        );
        ok = false;
    }
    let path = t.path_of("policy");
    let policy = t.req_string(ctx, "policy");
    t.finish(ctx);
    let policy = policy?;
    let (policy_json, policy) = match parse_policy(&policy.v) {
        Ok(parsed) => parsed,
        Err(message) => {
            ctx.error(policy.at, &path, message);
            return None;
        }
    };
    ok.then(|| Role {
        name: name.v.clone(),
        arn: format!("arn:aws:iam::{account_id}:role/{}", name.v),
        policy_json,
        policy,
    })
}

/// A policy string → its JSON and the parsed document, or the message to report.
fn parse_policy(text: &str) -> Result<(serde_json::Value, PolicyDocument), String> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "the policy is {} bytes; at most {MAX_POLICY_BYTES} are allowed",
            text.len()
        ));
    }
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid policy JSON: {e}"))?;
    let document =
        PolicyDocument::from_value(&json).map_err(|e| format!("invalid IAM policy: {e}"))?;
    Ok((json, document))
}

/// What an identity pool is checked against.
pub(super) struct Known<'a> {
    pub(super) region: &'a str,
    pub(super) pools: &'a IndexMap<String, Pool>,
    /// Every `[roles.NAME]` declared (also those with errors, so a bad role is reported once).
    pub(super) roles: &'a [String],
}

/// `[identity_pools.NAME]`. `ids` collects the ids seen so far (unique across pools).
pub(super) fn identity_pool(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    known: &Known<'_>,
    ids: &mut Vec<(String, String)>,
) -> Option<IdentityPool> {
    let mut ok = true;
    if let Err(message) = syntax::url_name(&name.v) {
        ctx.error(
            name.at,
            &t.path,
            format!("{message} (the name is part of the identity pool id)"),
        );
        ok = false;
    }
    let id = match t.string(ctx, "id") {
        None => format!("{}:{}", known.region, name.v),
        Some(id) => {
            if let Err(message) = identity_pool_id(&id.v) {
                ctx.error(id.at, &t.path_of("id"), message);
                ok = false;
            }
            id.v
        }
    };
    if let Some((_, other)) = ids.iter().find(|(seen, _)| *seen == id) {
        ctx.error(
            t.at_of("id"),
            &t.path_of("id"),
            format!("identity pool id {id:?} is already used by identity pool {other:?}"),
        );
        ok = false;
    }
    ids.push((id.clone(), name.v.clone()));

    let user_pools = user_pools(ctx, &mut t, known.pools, &mut ok);
    let allow_unauthenticated = t.bool(ctx, "allow_unauthenticated").is_some_and(|b| b.v);
    let credentials_ttl = t
        .duration_in(
            ctx,
            "credentials_ttl",
            IdentityPool::MIN_CREDENTIALS_TTL,
            IdentityPool::MAX_CREDENTIALS_TTL,
        )
        .map_or(IdentityPool::DEFAULT_CREDENTIALS_TTL, |d| d.v);
    let rate_limit_per_ip = t
        .int(ctx, "rate_limit_per_ip", 0, 1_000_000)
        .and_then(|r| u32::try_from(r.v).ok())
        .unwrap_or(IdentityPool::DEFAULT_RATE_LIMIT_PER_IP);
    let table_at = t.at;
    let user_pools_path = t.path_of("user_pools");
    let roles_at = t.at_of("roles");
    let roles_path = t.path_of("roles");
    let roles = match t.table(ctx, "roles") {
        Some(r) => roles(ctx, r, known, &user_pools, &mut ok),
        None => IdentityPoolRoles::default(),
    };
    t.finish(ctx);

    if allow_unauthenticated && roles.unauthenticated.is_none() {
        ctx.error(
            roles_at,
            &format!("{roles_path}.unauthenticated"),
            "allow_unauthenticated = true needs a role for guests: set roles.unauthenticated",
        );
        ok = false;
    } else if !allow_unauthenticated && roles.unauthenticated.is_some() {
        ctx.warn(
            roles_at,
            &format!("{roles_path}.unauthenticated"),
            "unused: guests are refused unless allow_unauthenticated = true",
        );
    }
    if !user_pools.is_empty() && roles.authenticated.is_none() && roles.by_group.is_empty() {
        ctx.error(
            roles_at,
            &format!("{roles_path}.authenticated"),
            "signed-in users would get no role: set roles.authenticated or roles.by_group",
        );
        ok = false;
    }
    if user_pools.is_empty() && !allow_unauthenticated {
        ctx.error(
            table_at,
            &user_pools_path,
            "the identity pool accepts nobody: list user_pools or set allow_unauthenticated = true",
        );
        ok = false;
    }
    ok.then(|| IdentityPool {
        name: name.v.clone(),
        id,
        user_pools,
        allow_unauthenticated,
        credentials_ttl,
        roles,
        rate_limit_per_ip,
    })
}

/// `REGION:ID` with letters, digits, `-` and `_`, at most [`MAX_IDENTITY_POOL_ID`] long.
fn identity_pool_id(id: &str) -> Result<(), String> {
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    match id.split_once(':') {
        Some((region, rest)) if id.len() <= MAX_IDENTITY_POOL_ID && word(region) && word(rest) => {
            Ok(())
        }
        _ => Err(format!(
            "invalid identity pool id {id:?}: expected REGION:ID like \"us-east-1:app\" \
             (letters, digits, '-', '_'; at most {MAX_IDENTITY_POOL_ID} characters)"
        )),
    }
}

/// `user_pools`: declared `[pools.NAME]`, without duplicates.
fn user_pools(
    ctx: &mut Ctx<'_>,
    t: &mut Tbl<'_>,
    pools: &IndexMap<String, Pool>,
    ok: &mut bool,
) -> Vec<String> {
    let path = t.path_of("user_pools");
    let mut out: Vec<String> = Vec::new();
    for (i, pool) in t
        .strings(ctx, "user_pools")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if !pools.contains_key(&pool.v) {
            ctx.error(
                pool.at,
                &index(&path, i),
                format!(
                    "no user pool named {:?} (declare it in a [pools.{}] table)",
                    pool.v, pool.v
                ),
            );
            *ok = false;
        } else if out.contains(&pool.v) {
            ctx.error(
                pool.at,
                &index(&path, i),
                format!("duplicate entry {:?}", pool.v),
            );
            *ok = false;
        } else {
            out.push(pool.v);
        }
    }
    out
}

/// `roles = { authenticated, unauthenticated, by_group = { GROUP = ROLE } }`.
fn roles(
    ctx: &mut Ctx<'_>,
    mut t: Tbl<'_>,
    known: &Known<'_>,
    user_pools: &[String],
    ok: &mut bool,
) -> IdentityPoolRoles {
    let mut role_ref = |ctx: &mut Ctx<'_>, name: Sp<String>, path: &str| -> Option<String> {
        if known.roles.contains(&name.v) {
            Some(name.v)
        } else {
            ctx.error(
                name.at,
                path,
                format!(
                    "no role named {:?} (declare it in a [roles.{}] table)",
                    name.v, name.v
                ),
            );
            *ok = false;
            None
        }
    };
    let authenticated = t
        .name(ctx, "authenticated")
        .and_then(|r| role_ref(ctx, r, &t.path_of("authenticated")));
    let unauthenticated = t
        .name(ctx, "unauthenticated")
        .and_then(|r| role_ref(ctx, r, &t.path_of("unauthenticated")));
    let by_group_path = t.path_of("by_group");
    let mut by_group = IndexMap::new();
    for (group, role) in t.string_map(ctx, "by_group") {
        let path = crate::walk::join(&by_group_path, &group.v);
        let role = role_ref(
            ctx,
            Sp {
                v: role,
                at: group.at,
            },
            &path,
        );
        let declared = user_pools.iter().any(|p| {
            known
                .pools
                .get(p)
                .is_some_and(|pool| pool.groups.contains(&group.v))
        });
        if !declared && !user_pools.is_empty() {
            ctx.warn(
                group.at,
                &path,
                format!(
                    "group {:?} is not declared in the groups of {}: this entry only applies \
                     if the group is created at run time (admin API)",
                    group.v,
                    user_pools
                        .iter()
                        .map(|p| format!("[pools.{p}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if let Some(role) = role {
            by_group.insert(group.v, role);
        }
    }
    t.finish(ctx);
    IdentityPoolRoles {
        authenticated,
        unauthenticated,
        by_group,
    }
}

#[cfg(test)]
mod tests;
