//! `[pools.NAME]`: the built-in identity provider's user pools and their app clients.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use indexmap::IndexMap;

use crate::model::{
    AppClient, AuthFlow, CodeWebhook, CustomAttribute, Mfa, PasswordPolicy, Pool, ResourceServer,
};
use crate::syntax;
use crate::walk::{Ctx, Sp, Tbl, index};

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// Default of `rate_limit_per_ip` (requests per second per client IP; burst twice that).
const DEFAULT_RATE_LIMIT_PER_IP: u32 = 200;
/// Largest `rate_limit_per_ip` accepted.
const MAX_RATE_LIMIT_PER_IP: i64 = 1_000_000;
const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_WEBHOOK_TIMEOUT: Duration = Duration::from_millis(50);
const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Most custom attributes a pool declares (Cognito: 50).
const MAX_CUSTOM_ATTRIBUTES: usize = 50;
/// Longest custom attribute name, without the `custom:` prefix (Cognito: 20).
const MAX_CUSTOM_ATTRIBUTE_NAME: usize = 20;
/// Longest attribute value, and the default `max_length` (Cognito: 2048).
const MAX_ATTRIBUTE_VALUE: u32 = 2048;

const GRANTS: [&str; 4] = [
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "password",
];

/// Longest user pool id (Cognito: 55).
const MAX_POOL_ID: usize = 55;

/// What the pools are compiled against: the `[management]` region of their default ids, the
/// owner of each client id seen so far (ids are unique across pools) and of each pool id.
pub(super) struct Seen<'a> {
    pub(super) region: &'a str,
    pub(super) client_owners: HashMap<String, String>,
    pub(super) pool_ids: HashMap<String, String>,
}

pub(super) fn pool(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    seen: &mut Seen<'_>,
    refs: &mut super::Refs,
) -> Option<Pool> {
    if let Err(message) = syntax::url_name(&name.v) {
        ctx.error(
            name.at,
            &t.path,
            format!("{message} (the pool name is part of its issuer URL)"),
        );
    }
    let id = match t.string(ctx, "id") {
        None => format!("{}_{}", seen.region, name.v),
        Some(id) => {
            if let Err(message) = pool_id(&id.v) {
                ctx.error(id.at, &t.path_of("id"), message);
            }
            id.v
        }
    };
    match seen.pool_ids.get(&id) {
        Some(other) => ctx.error(
            t.at_of("id"),
            &t.path_of("id"),
            format!("user pool id {id:?} is already used by pool {other:?}"),
        ),
        None => {
            seen.pool_ids.insert(id.clone(), name.v.clone());
        }
    }
    let client_owners = &mut seen.client_owners;
    let self_sign_up = t.bool(ctx, "self_sign_up").is_some_and(|b| b.v);
    let password_policy = match t.table(ctx, "password_policy") {
        Some(p) => password_policy(ctx, p),
        None => PasswordPolicy {
            min_length: 8,
            require_digits: false,
            require_lowercase: false,
            require_uppercase: false,
            require_symbols: false,
        },
    };
    let ttl = |ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, key, min, max, default| {
        t.duration_in(ctx, key, Duration::from_secs(min), Duration::from_secs(max))
            .map_or(Duration::from_secs(default), |d| d.v)
    };
    let access_token_ttl = ttl(ctx, &mut t, "access_token_ttl", 5 * MINUTE, DAY, HOUR);
    let id_token_ttl = ttl(ctx, &mut t, "id_token_ttl", 5 * MINUTE, DAY, HOUR);
    let refresh_token_ttl = ttl(ctx, &mut t, "refresh_token_ttl", HOUR, 3650 * DAY, 30 * DAY);
    let groups = unique(ctx, &mut t, "groups", |_| None);
    let rate_limit_per_ip = t
        .int(ctx, "rate_limit_per_ip", 0, MAX_RATE_LIMIT_PER_IP)
        .and_then(|r| u32::try_from(r.v).ok())
        .unwrap_or(DEFAULT_RATE_LIMIT_PER_IP);
    let code_webhook = code_webhook(ctx, &mut t);
    let custom_attributes = custom_attributes(ctx, &mut t);
    let triggers = super::triggers::triggers(ctx, &mut t, refs);
    let mfa = mfa(ctx, &mut t);

    let mut resource_servers = IndexMap::new();
    if let Some(mut table) = t.table(ctx, "resource_servers") {
        for entry in table.entries() {
            let path = table.path_of(&entry.key);
            if entry.key.is_empty()
                || entry.key.contains(char::is_whitespace)
                || entry.key.contains('/')
            {
                ctx.error(
                    entry.key_at,
                    &path,
                    "resource server identifiers must be non-empty without spaces or '/'",
                );
            }
            let Some(mut rs) = ctx.table(&entry.node, &path) else {
                continue;
            };
            let scopes = unique(ctx, &mut rs, "scopes", |scope| {
                scope
                    .contains(|c: char| c.is_whitespace() || c == '/')
                    .then(|| format!("invalid scope name {scope:?}: no spaces or '/'"))
            });
            rs.finish(ctx);
            resource_servers.insert(
                entry.key.clone(),
                ResourceServer {
                    identifier: entry.key.clone(),
                    scopes,
                },
            );
        }
        table.finish(ctx);
    }

    let mut clients = IndexMap::new();
    if let Some(mut table) = t.table(ctx, "clients") {
        for entry in table.entries() {
            let path = table.path_of(&entry.key);
            if entry.key.is_empty() || entry.key.contains(char::is_whitespace) {
                ctx.error(
                    entry.key_at,
                    &path,
                    "client ids must be non-empty without spaces",
                );
            }
            match client_owners.get(&entry.key) {
                Some(owner) => ctx.error(
                    entry.key_at,
                    &path,
                    format!("client id {:?} is already used in pool {owner:?} (client ids are unique across pools)", entry.key),
                ),
                None => {
                    client_owners.insert(entry.key.clone(), name.v.clone());
                }
            }
            let Some(c) = ctx.table(&entry.node, &path) else {
                continue;
            };
            if let Some(client) = client(ctx, &entry.key, c) {
                clients.insert(entry.key.clone(), client);
            }
        }
        table.finish(ctx);
    }
    t.finish(ctx);
    Some(Pool {
        name: name.v.clone(),
        id,
        self_sign_up,
        password_policy,
        access_token_ttl,
        id_token_ttl,
        refresh_token_ttl,
        groups,
        resource_servers,
        clients,
        rate_limit_per_ip,
        code_webhook,
        custom_attributes,
        triggers,
        mfa,
        extra: BTreeMap::new(),
    })
}

/// `mfa`: `"off"` (default), `"optional"` or `"on"`.
fn mfa(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>) -> Mfa {
    let Some(value) = t.string(ctx, "mfa") else {
        return Mfa::Off;
    };
    Mfa::parse(&value.v).unwrap_or_else(|| {
        ctx.error(
            value.at,
            &t.path_of("mfa"),
            format!(
                "expected one of {}, got {:?}",
                Mfa::ALL.map(|m| format!("{:?}", m.name())).join(", "),
                value.v
            ),
        );
        Mfa::Off
    })
}

/// A user pool id as the Cognito clients accept it: `REGION_NAME` matching
/// `^[\w-]+_[0-9a-zA-Z]+$`, at most [`MAX_POOL_ID`] characters (amazon-cognito-identity-js
/// refuses any other; the SRP pool name is the part after the first `_`).
fn pool_id(id: &str) -> Result<(), String> {
    let valid = id.len() <= MAX_POOL_ID
        && id.rsplit_once('_').is_some_and(|(region, name)| {
            !region.is_empty()
                && !name.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                && name.chars().all(|c| c.is_ascii_alphanumeric())
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid user pool id {id:?}: expected REGION_NAME like \"us-east-1_main\" \
             (letters, digits, '-' and '_' before the last '_', letters and digits after it; \
             at most {MAX_POOL_ID} characters)"
        ))
    }
}

/// `code_webhook`, `code_webhook_secret`, `code_webhook_timeout`: the last two only with the
/// first.
fn code_webhook(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>) -> Option<CodeWebhook> {
    let url = t
        .name(ctx, "code_webhook")
        .and_then(|u| match syntax::http_url(&u.v) {
            Ok(_) => Some(u.v),
            Err(message) => {
                ctx.error(u.at, &t.path_of("code_webhook"), message);
                None
            }
        });
    let secret = t.secret(ctx, "code_webhook_secret");
    let timeout = t.duration_in(
        ctx,
        "code_webhook_timeout",
        MIN_WEBHOOK_TIMEOUT,
        MAX_WEBHOOK_TIMEOUT,
    );
    if !t.contains("code_webhook") {
        for key in ["code_webhook_secret", "code_webhook_timeout"] {
            if t.contains(key) {
                ctx.error(
                    t.at_of(key),
                    &t.path_of(key),
                    "only allowed together with code_webhook",
                );
            }
        }
        return None;
    }
    Some(CodeWebhook {
        url: url?,
        secret: secret.map(|s| s.v),
        timeout: timeout.map_or(DEFAULT_WEBHOOK_TIMEOUT, |d| d.v),
    })
}

/// `custom_attributes`: `NAME = { mutable = BOOL, max_length = INT }` per declared
/// `custom:NAME` attribute.
fn custom_attributes(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>) -> IndexMap<String, CustomAttribute> {
    let mut out = IndexMap::new();
    let Some(mut table) = t.table(ctx, "custom_attributes") else {
        return out;
    };
    for (i, entry) in table.entries().iter().enumerate() {
        let path = table.path_of(&entry.key);
        if entry.key.is_empty()
            || entry.key.len() > MAX_CUSTOM_ATTRIBUTE_NAME
            || !entry
                .key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            ctx.error(
                entry.key_at,
                &path,
                format!(
                    "custom attribute names are 1-{MAX_CUSTOM_ATTRIBUTE_NAME} letters, digits, '_' or '-' (without the custom: prefix)"
                ),
            );
        }
        if i == MAX_CUSTOM_ATTRIBUTES {
            ctx.error(
                entry.key_at,
                &path,
                format!("a pool declares at most {MAX_CUSTOM_ATTRIBUTES} custom attributes"),
            );
        }
        let Some(mut a) = ctx.table(&entry.node, &path) else {
            continue;
        };
        let mutable = a.bool(ctx, "mutable").is_none_or(|b| b.v);
        let max_length = a
            .int(ctx, "max_length", 1, i64::from(MAX_ATTRIBUTE_VALUE))
            .and_then(|m| u32::try_from(m.v).ok())
            .unwrap_or(MAX_ATTRIBUTE_VALUE);
        a.finish(ctx);
        out.insert(
            entry.key.clone(),
            CustomAttribute {
                mutable,
                max_length,
            },
        );
    }
    table.finish(ctx);
    out
}

/// A list of strings without duplicates, each passing `check`.
fn unique(
    ctx: &mut Ctx<'_>,
    t: &mut Tbl<'_>,
    key: &'static str,
    check: fn(&str) -> Option<String>,
) -> Vec<String> {
    let path = t.path_of(key);
    let mut out: Vec<String> = Vec::new();
    for (i, item) in t
        .strings(ctx, key)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if let Some(message) = check(&item.v) {
            ctx.error(item.at, &index(&path, i), message);
        } else if out.contains(&item.v) {
            ctx.error(
                item.at,
                &index(&path, i),
                format!("duplicate entry {:?}", item.v),
            );
        } else {
            out.push(item.v);
        }
    }
    out
}

fn password_policy(ctx: &mut Ctx<'_>, mut t: Tbl<'_>) -> PasswordPolicy {
    let min_length = t
        .int(ctx, "min_length", 6, 99)
        .and_then(|m| u32::try_from(m.v).ok())
        .unwrap_or(8);
    let mut flag = |key| t.bool(ctx, key).is_some_and(|b| b.v);
    let policy = PasswordPolicy {
        min_length,
        require_digits: flag("require_digits"),
        require_lowercase: flag("require_lowercase"),
        require_uppercase: flag("require_uppercase"),
        require_symbols: flag("require_symbols"),
    };
    t.finish(ctx);
    policy
}

/// Longest client display name, in characters.
const MAX_CLIENT_NAME_CHARS: usize = 128;

fn client(ctx: &mut Ctx<'_>, client_id: &str, mut t: Tbl<'_>) -> Option<AppClient> {
    let public = t.bool(ctx, "public").is_some_and(|p| p.v);
    let secret = t.secret(ctx, "secret");
    match (&secret, public) {
        (Some(secret), true) => ctx.error(
            secret.at,
            &t.path_of("secret"),
            "a public client has no secret; remove it or set public = false",
        ),
        (None, false) if !t.contains("secret") => ctx.error(
            t.at,
            &t.path_of("secret"),
            "missing required key (confidential clients need a secret; set public = true for a client without one)",
        ),
        _ => {}
    }
    let grants_path = t.path_of("grants");
    let grants = match t.strings(ctx, "grants") {
        Some(grants) => {
            if grants.is_empty() {
                ctx.error(t.at_of("grants"), &grants_path, "needs at least one grant");
            }
            let mut out: Vec<String> = Vec::new();
            for (i, grant) in grants.into_iter().enumerate() {
                let path = index(&grants_path, i);
                if !GRANTS.contains(&grant.v.as_str()) {
                    ctx.error(
                        grant.at,
                        &path,
                        format!(
                            "unknown grant {:?}; expected one of {}",
                            grant.v,
                            GRANTS.join(", ")
                        ),
                    );
                } else if public && grant.v == "client_credentials" {
                    ctx.error(
                        grant.at,
                        &path,
                        "client_credentials needs a client secret; a public client cannot use it",
                    );
                } else if !out.contains(&grant.v) {
                    out.push(grant.v);
                }
            }
            out
        }
        None if public => ["authorization_code", "refresh_token", "password"]
            .map(String::from)
            .to_vec(),
        None => vec!["client_credentials".to_owned()],
    };
    let mut urls = |t: &mut Tbl<'_>, key: &'static str| -> Vec<String> {
        let path = t.path_of(key);
        let mut out = Vec::new();
        for (i, u) in t
            .strings(ctx, key)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            match url::Url::parse(&u.v) {
                Ok(_) => out.push(u.v),
                Err(e) => ctx.error(
                    u.at,
                    &index(&path, i),
                    format!("invalid URL {:?}: {e}", u.v),
                ),
            }
        }
        out
    };
    let callback_urls = urls(&mut t, "callback_urls");
    let logout_urls = urls(&mut t, "logout_urls");
    let allowed_scopes = t.string_list(ctx, "allowed_scopes");
    let refresh_token_rotation = t
        .bool(ctx, "refresh_token_rotation")
        .map_or(secret.is_none(), |b| b.v);
    let auth_flows = auth_flows(ctx, &mut t, &grants);
    let name = t.string(ctx, "name").and_then(|name| {
        let chars = name.v.chars().count();
        if chars == 0 || chars > MAX_CLIENT_NAME_CHARS || name.v.chars().any(char::is_control) {
            ctx.error(
                name.at,
                &t.path_of("name"),
                format!("must be 1-{MAX_CLIENT_NAME_CHARS} characters without control characters"),
            );
            return None;
        }
        Some(name.v)
    });
    t.finish(ctx);
    Some(AppClient {
        client_id: client_id.to_owned(),
        name,
        public,
        secret: secret.map(|s| s.v),
        grants,
        callback_urls,
        logout_urls,
        allowed_scopes,
        refresh_token_rotation,
        auth_flows,
    })
}

/// `auth_flows`: the `InitiateAuth` flows the client may start (names as in `AuthFlow`, also in
/// Cognito's `ALLOW_` form), without duplicates; `REFRESH_TOKEN_AUTH` needs the
/// `refresh_token` grant. Absent: `USER_SRP_AUTH`, and the password and refresh flows of the
/// client's grants.
fn auth_flows(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, grants: &[String]) -> Vec<AuthFlow> {
    let has = |grant: &str| grants.iter().any(|g| g == grant);
    let path = t.path_of("auth_flows");
    let Some(names) = t.strings(ctx, "auth_flows") else {
        let mut flows = vec![AuthFlow::UserSrp];
        if has("password") {
            flows.push(AuthFlow::UserPassword);
        }
        if has("refresh_token") {
            flows.push(AuthFlow::RefreshToken);
        }
        return flows;
    };
    let mut flows = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let at = index(&path, i);
        match AuthFlow::parse(&name.v) {
            None => ctx.error(
                name.at,
                &at,
                format!(
                    "unknown auth flow {:?}; expected one of {}",
                    name.v,
                    AuthFlow::ALL.map(AuthFlow::name).join(", ")
                ),
            ),
            Some(AuthFlow::RefreshToken) if !has("refresh_token") => ctx.error(
                name.at,
                &at,
                "REFRESH_TOKEN_AUTH needs the refresh_token grant",
            ),
            Some(flow) if flows.contains(&flow) => {
                ctx.error(name.at, &at, format!("{} is listed twice", flow.name()));
            }
            Some(flow) => flows.push(flow),
        }
    }
    flows
}
