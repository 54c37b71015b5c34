//! `[websocket.NAME]` and `[http.NAME]`.

mod sse;

use std::collections::HashMap;
use std::time::Duration;

use indexmap::IndexMap;
use portcullis_core::http_route::RouteTable;
use portcullis_core::selection::SelectionExpression;

use super::{RefKind, Refs, authorization as iam};
use crate::model::{
    Authorization, BinaryFrames, Cors, HttpApi, HttpRoute, Throttle, WebSocketApi, WsRoute,
};
use crate::syntax::{self, WsRouteKind};
use crate::walk::{Ctx, Sp, Tbl};

/// Where an API's path and id came from, for the uniqueness checks across APIs.
pub(super) struct ApiMeta {
    pub(super) kind: &'static str,
    pub(super) name: String,
    /// `path` (WebSocket) or `base_path` (HTTP) and the key path to blame.
    pub(super) path: Sp<String>,
    path_key: String,
    api_id: Sp<String>,
    api_id_key: String,
    /// A WebSocket API's SSE path and the key path to blame.
    sse: Option<(Sp<String>, String)>,
}

impl ApiMeta {
    /// Every path the API answers at exactly: its own and its SSE stream's.
    pub(super) fn paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.path.v.as_str()).chain(self.sse.iter().map(|(p, _)| p.v.as_str()))
    }
}

const TEN_YEARS: Duration = Duration::from_secs(3650 * 86_400);

/// `path` / `base_path`: starts with `/`, no whitespace, `?` or `#`.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("invalid path {path:?}: must start with \"/\""));
    }
    if path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#') {
        return Err(format!(
            "invalid path {path:?}: must not contain spaces, '?' or '#'"
        ));
    }
    Ok(())
}

fn stage(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, default: &str) -> String {
    let Some(stage) = t.name(ctx, "stage") else {
        return default.to_owned();
    };
    let valid = stage.v == "$default"
        || stage
            .v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        ctx.error(
            stage.at,
            &t.path_of("stage"),
            format!(
                "invalid stage {:?}: use letters, digits, '_' and '-' (or \"$default\")",
                stage.v
            ),
        );
    }
    stage.v
}

fn api_id(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, kind: &str, name: &Sp<String>) -> Sp<String> {
    match t.name(ctx, "api_id") {
        Some(id) => {
            let valid = id.v.len() <= 64
                && id
                    .v
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            if !valid {
                ctx.error(
                    id.at,
                    &t.path_of("api_id"),
                    format!(
                        "invalid api_id {:?}: use up to 64 lower-case letters and digits",
                        id.v
                    ),
                );
            }
            id
        }
        None => Sp {
            v: syntax::derive_api_id(kind, &name.v),
            at: t.at,
        },
    }
}

pub(super) fn websocket(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    refs: &mut Refs,
) -> Option<(WebSocketApi, ApiMeta)> {
    let path = match t.string(ctx, "path") {
        Some(path) => {
            if let Err(message) = check_path(&path.v) {
                ctx.error(path.at, &t.path_of("path"), message);
            }
            path
        }
        None => {
            if let Err(message) = syntax::url_name(&name.v) {
                ctx.error(name.at, &t.path, format!("{message}, or set path"));
            }
            Sp {
                v: format!("/{}", name.v),
                at: t.at,
            }
        }
    };
    let stage = stage(ctx, &mut t, "prod");
    let api_id = api_id(ctx, &mut t, "websocket", name);
    let route_selection_expression = match t.name(ctx, "route_selection_expression") {
        Some(e) => SelectionExpression::parse(&e.v).unwrap_or_else(|err| {
            ctx.error(
                e.at,
                &t.path_of("route_selection_expression"),
                err.to_string(),
            );
            // Never handed out: the error fails the whole configuration.
            SelectionExpression::default()
        }),
        None => SelectionExpression::default(),
    };
    let authorizer = t.name(ctx, "authorizer");
    if let Some(a) = &authorizer {
        refs.push(RefKind::Authorizer, a, t.path_of("authorizer"));
    }
    let authorization = iam::authorization(ctx, &mut t, refs);
    iam::exclusive(ctx, &t, authorization.as_ref(), authorizer.as_ref());
    let idle_timeout = t
        .duration_in(ctx, "idle_timeout", Duration::from_millis(1), TEN_YEARS)
        .map_or(Duration::from_secs(600), |d| d.v);
    let max_duration = t
        .duration_in(ctx, "max_duration", Duration::from_millis(1), TEN_YEARS)
        .map_or(Duration::from_secs(7200), |d| d.v);
    let max_frame = t.size(ctx, "max_frame_bytes", 1);
    let max_message = t.size(ctx, "max_message_bytes", 1);
    let max_frame_bytes = max_frame.as_ref().map_or(32_768, |s| s.v);
    let max_message_bytes = max_message.as_ref().map_or(131_072, |s| s.v);
    if max_frame_bytes > max_message_bytes {
        let (at, key) = match (&max_frame, &max_message) {
            (Some(f), _) => (f.at, "max_frame_bytes"),
            (None, Some(m)) => (m.at, "max_message_bytes"),
            (None, None) => (t.at, "max_frame_bytes"),
        };
        ctx.error(
            at,
            &t.path_of(key),
            format!(
                "max_frame_bytes ({max_frame_bytes}) must not exceed max_message_bytes ({max_message_bytes})"
            ),
        );
    }
    let allowed_origins = t.string_list(ctx, "allowed_origins");
    let subprotocols = t.string_list(ctx, "subprotocols");
    let sse = sse::sse(ctx, &mut t, &path.v);
    let binary_frames = match t.string(ctx, "binary_frames") {
        None => BinaryFrames::Close,
        Some(b) => match b.v.as_str() {
            "close" => BinaryFrames::Close,
            "base64" => BinaryFrames::Base64,
            other => {
                ctx.error(
                    b.at,
                    &t.path_of("binary_frames"),
                    format!("expected \"close\" or \"base64\", got {other:?}"),
                );
                BinaryFrames::Close
            }
        },
    };
    let message_policy = t.bool(ctx, "message_policy");
    if let Some(mp) = &message_policy
        && mp.v
        && authorizer.is_none()
    {
        ctx.error(
            mp.at,
            &t.path_of("message_policy"),
            "needs the API to have an authorizer (with authorization = \"AWS_IAM\" the \
             role's policy is always evaluated for every message)",
        );
    }
    let send_queue = t.size(ctx, "send_queue", 1).map_or(64, |s| s.v);
    let max_inflight = t.size(ctx, "max_inflight", 1).map_or(8, |s| s.v);
    let message_rate = super::limits::message_rate(ctx, &mut t);
    let max_topics_per_connection = t
        .size(ctx, "max_topics_per_connection", 1)
        .map_or(100, |s| s.v);
    let max_subscribers_per_topic = t
        .size(ctx, "max_subscribers_per_topic", 1)
        .map_or(100_000, |s| s.v);
    let ping_interval = t
        .duration_in(
            ctx,
            "ping_interval",
            Duration::ZERO,
            Duration::from_secs(86_400),
        )
        .map_or(Duration::from_secs(30), |d| d.v);

    let mut routes = IndexMap::new();
    if let Some(mut table) = t.table(ctx, "routes") {
        for entry in table.entries() {
            let path = table.path_of(&entry.key);
            let kind = match syntax::ws_route_key(&entry.key) {
                Ok(kind) => Some(kind),
                Err(message) => {
                    ctx.error(entry.key_at, &path, message);
                    None
                }
            };
            let Some(mut r) = ctx.table(&entry.node, &path) else {
                continue;
            };
            let integration = r.name(ctx, "integration");
            let response = r.bool(ctx, "response");
            let scopes = r.string_list(ctx, "scopes");
            let groups = r.string_list(ctx, "groups");
            let needs_integration =
                matches!(kind, Some(WsRouteKind::Default | WsRouteKind::Custom));
            if needs_integration && !r.contains("integration") {
                r.missing(ctx, "integration");
            }
            if let Some(i) = &integration {
                refs.push(RefKind::Integration, i, r.path_of("integration"));
            }
            if let (Some(response), Some(WsRouteKind::Connect | WsRouteKind::Disconnect)) =
                (&response, kind)
                && response.v
            {
                ctx.error(
                    response.at,
                    &r.path_of("response"),
                    "response = true is only allowed on $default and custom routes",
                );
            }
            if (!scopes.is_empty() || !groups.is_empty()) && authorizer.is_none() {
                ctx.error(
                    r.at,
                    &path,
                    "scopes and groups need the API to have an authorizer",
                );
            }
            r.finish(ctx);
            routes.insert(
                entry.key.clone(),
                WsRoute {
                    integration: integration.map(|i| i.v),
                    response: response.is_some_and(|r| r.v),
                    scopes,
                    groups,
                },
            );
        }
        table.finish(ctx);
    }
    let meta = ApiMeta {
        kind: "websocket",
        name: name.v.clone(),
        path: path.clone(),
        path_key: t.path_of("path"),
        api_id: api_id.clone(),
        api_id_key: t.path_of("api_id"),
        sse: sse
            .as_ref()
            .map(|(_, at)| (at.clone(), format!("{}.path", t.path_of("sse")))),
    };
    t.finish(ctx);
    let api = WebSocketApi {
        name: name.v.clone(),
        path: path.v,
        stage,
        api_id: api_id.v,
        route_selection_expression,
        authorizer: authorizer.map(|a| a.v),
        authorization: authorization.map_or(Authorization::None, |a| a.v),
        idle_timeout,
        max_duration,
        max_frame_bytes,
        max_message_bytes,
        allowed_origins,
        subprotocols,
        sse: sse.map(|(sse, _)| sse),
        binary_frames,
        message_policy: message_policy.is_some_and(|m| m.v),
        send_queue,
        max_inflight,
        message_rate,
        ping_interval,
        max_topics_per_connection,
        max_subscribers_per_topic,
        routes,
    };
    Some((api, meta))
}

/// Methods a CORS `allow_methods` entry may name.
const CORS_METHODS: [&str; 8] = [
    "*", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
];

fn cors(ctx: &mut Ctx<'_>, mut t: Tbl<'_>) -> Cors {
    let allow_origins = t.strings(ctx, "allow_origins").unwrap_or_default();
    let mut allow_methods = Vec::new();
    for method in t.strings(ctx, "allow_methods").unwrap_or_default() {
        let upper = method.v.to_ascii_uppercase();
        if CORS_METHODS.contains(&upper.as_str()) {
            allow_methods.push(upper);
        } else {
            ctx.error(
                method.at,
                &t.path_of("allow_methods"),
                format!(
                    "unknown method {:?}; expected {}",
                    method.v,
                    CORS_METHODS.join(", ")
                ),
            );
        }
    }
    let allow_headers = t.string_list(ctx, "allow_headers");
    let expose_headers = t.string_list(ctx, "expose_headers");
    let allow_credentials = t.bool(ctx, "allow_credentials");
    if let Some(creds) = &allow_credentials
        && creds.v
        && allow_origins.iter().any(|o| o.v == "*")
    {
        ctx.error(
            creds.at,
            &t.path_of("allow_credentials"),
            "allow_credentials = true cannot be combined with allow_origins = [\"*\"] (browsers reject it); list the origins",
        );
    }
    let max_age = t
        .duration_in(ctx, "max_age", Duration::ZERO, Duration::from_secs(86_400))
        .map(|d| d.v);
    t.finish(ctx);
    Cors {
        allow_origins: allow_origins.into_iter().map(|o| o.v).collect(),
        allow_methods,
        allow_headers,
        expose_headers,
        allow_credentials: allow_credentials.is_some_and(|c| c.v),
        max_age,
    }
}

pub(super) fn http(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    refs: &mut Refs,
) -> Option<(HttpApi, ApiMeta)> {
    let base_path = match t.string(ctx, "base_path") {
        Some(path) => {
            if !path.v.is_empty() {
                let check = check_path(&path.v).and_then(|()| {
                    if path.v.ends_with('/') {
                        Err(format!(
                            "invalid base_path {:?}: must not end with \"/\"",
                            path.v
                        ))
                    } else {
                        Ok(())
                    }
                });
                if let Err(message) = check {
                    ctx.error(path.at, &t.path_of("base_path"), message);
                }
            }
            path
        }
        None => Sp {
            v: String::new(),
            at: t.at,
        },
    };
    let stage = stage(ctx, &mut t, "$default");
    let api_id = api_id(ctx, &mut t, "http", name);
    let default_authorizer = t.name(ctx, "authorizer");
    if let Some(a) = &default_authorizer {
        if a.v == "none" {
            ctx.error(
                a.at,
                &t.path_of("authorizer"),
                "\"none\" is only meaningful on a route; leave authorizer unset",
            );
        } else {
            refs.push(RefKind::Authorizer, a, t.path_of("authorizer"));
        }
    }
    let default_authorization = iam::authorization(ctx, &mut t, refs);
    iam::exclusive(
        ctx,
        &t,
        default_authorization.as_ref(),
        default_authorizer.as_ref(),
    );
    let default_authorization = default_authorization.map_or(Authorization::None, |a| a.v);
    let cors = t.table(ctx, "cors").map(|c| cors(ctx, c));
    let max_body_bytes = t.size(ctx, "max_body_bytes", 1).map_or(10_485_760, |s| s.v);

    let mut routes = IndexMap::new();
    // Keys that passed the checks below, for the matching table.
    let mut valid_keys: Vec<String> = Vec::new();
    let mut routes_at = t.at;
    if let Some(mut table) = t.table(ctx, "routes") {
        routes_at = table.at;
        let mut seen: HashMap<String, String> = HashMap::new();
        for entry in table.entries() {
            let path = table.path_of(&entry.key);
            match syntax::http_route_key(&entry.key) {
                Ok(normalized) => {
                    if let Some(previous) = seen.get(&normalized) {
                        ctx.error(
                            entry.key_at,
                            &path,
                            format!(
                                "route key {:?} matches the same requests as {previous:?}",
                                entry.key
                            ),
                        );
                    } else {
                        seen.insert(normalized, entry.key.clone());
                        valid_keys.push(entry.key.clone());
                    }
                }
                Err(message) => ctx.error(entry.key_at, &path, message),
            }
            let Some(mut r) = ctx.table(&entry.node, &path) else {
                continue;
            };
            let integration = r.req_name(ctx, "integration");
            if let Some(i) = &integration {
                refs.push(RefKind::Integration, i, r.path_of("integration"));
            }
            let own_authorizer = r.name(ctx, "authorizer");
            let own_authorization = iam::authorization(ctx, &mut r, refs);
            iam::exclusive(ctx, &r, own_authorization.as_ref(), own_authorizer.as_ref());
            // The route's own choice wins; a route that names an authorizer (even "none")
            // does not inherit the API's authorization.
            let authorization = match (&own_authorization, &own_authorizer) {
                (Some(a), _) => a.v,
                (None, Some(_)) => Authorization::None,
                (None, None) => default_authorization,
            };
            let authorizer = match own_authorizer {
                _ if authorization == Authorization::AwsIam => None,
                Some(a) if a.v == "none" => None,
                Some(a) => {
                    refs.push(RefKind::Authorizer, &a, r.path_of("authorizer"));
                    Some(a.v)
                }
                None => default_authorizer.as_ref().map(|a| a.v.clone()),
            };
            let scopes = r.string_list(ctx, "scopes");
            let groups = r.string_list(ctx, "groups");
            if (!scopes.is_empty() || !groups.is_empty()) && authorizer.is_none() {
                ctx.error(
                    r.at,
                    &path,
                    "scopes and groups need an authorizer (on the route or the API)",
                );
            }
            let throttle = r.table(ctx, "throttle").and_then(|mut th| {
                let rate = th.number(ctx, "rate");
                if rate.is_none() && !th.contains("rate") {
                    th.missing(ctx, "rate");
                }
                let rate = rate.and_then(|rate| {
                    if rate.v.is_finite() && rate.v > 0.0 {
                        Some(rate.v)
                    } else {
                        ctx.error(
                            rate.at,
                            &th.path_of("rate"),
                            "must be a positive number of requests per second",
                        );
                        None
                    }
                });
                if !th.contains("burst") {
                    th.missing(ctx, "burst");
                }
                let burst = th.int(ctx, "burst", 0, i64::from(u32::MAX));
                th.finish(ctx);
                Some(Throttle {
                    rate_per_second: rate?,
                    burst: u32::try_from(burst?.v).ok()?,
                })
            });
            r.finish(ctx);
            let Some(integration) = integration else {
                continue;
            };
            routes.insert(
                entry.key.clone(),
                HttpRoute {
                    integration: integration.v,
                    authorizer,
                    authorization,
                    scopes,
                    groups,
                    throttle,
                },
            );
        }
        table.finish(ctx);
    }
    let route_table = RouteTable::new(valid_keys.iter().filter_map(|key| {
        routes
            .get(key)
            .map(|route| (key.clone(), HttpRoute::clone(route)))
    }))
    .unwrap_or_else(|e| {
        // The checks above accept only keys the table accepts; should they ever disagree,
        // this is reported like any other problem.
        ctx.error(routes_at, &t.path_of("routes"), e.to_string());
        RouteTable::default()
    });
    let meta = ApiMeta {
        kind: "http",
        name: name.v.clone(),
        path: base_path.clone(),
        path_key: t.path_of("base_path"),
        api_id: api_id.clone(),
        api_id_key: t.path_of("api_id"),
        sse: None,
    };
    t.finish(ctx);
    let api = HttpApi {
        name: name.v.clone(),
        base_path: base_path.v,
        stage,
        api_id: api_id.v,
        authorizer: default_authorizer.map(|a| a.v),
        authorization: default_authorization,
        cors,
        max_body_bytes,
        routes,
        route_table,
    };
    Some((api, meta))
}

/// WebSocket paths and HTTP base paths must not collide; api ids must be unique.
pub(super) fn check_unique(ctx: &mut Ctx<'_>, websocket: &[ApiMeta], http: &[ApiMeta]) {
    let mut paths: HashMap<&str, &ApiMeta> = HashMap::new();
    for meta in websocket.iter().chain(http) {
        // WebSocket paths are never empty, so base_path "" only collides with another HTTP API
        // at the root.
        let key = meta.path.v.as_str();
        match paths.get(key) {
            Some(previous) => {
                let what = if meta.kind == "http" {
                    "base_path"
                } else {
                    "path"
                };
                ctx.error(
                    meta.path.at,
                    &meta.path_key,
                    format!(
                        "{what} {:?} is already used by {} API {:?}",
                        meta.path.v, previous.kind, previous.name
                    ),
                );
            }
            None => {
                paths.insert(key, meta);
            }
        }
    }
    // SSE streams answer at one exact path too, in the same namespace.
    let mut streams: HashMap<&str, &ApiMeta> = HashMap::new();
    for meta in websocket {
        let Some((path, key)) = &meta.sse else {
            continue;
        };
        let taken = paths
            .get(path.v.as_str())
            .map(|p| {
                if std::ptr::eq(*p, meta) {
                    "the WebSocket API itself".to_owned()
                } else {
                    format!("{} API {:?}", p.kind, p.name)
                }
            })
            .or_else(|| {
                streams
                    .get(path.v.as_str())
                    .map(|p| format!("the SSE stream of websocket API {:?}", p.name))
            });
        if path.v == "/pools" || path.v.starts_with("/pools/") {
            ctx.error(path.at, key, "/pools is reserved for the identity provider");
        } else if let Some(owner) = taken {
            ctx.error(
                path.at,
                key,
                format!("path {:?} is already used by {owner}", path.v),
            );
        } else {
            streams.insert(path.v.as_str(), meta);
        }
    }
    let mut ids: HashMap<&str, &ApiMeta> = HashMap::new();
    for meta in websocket.iter().chain(http) {
        match ids.get(meta.api_id.v.as_str()) {
            Some(previous) => ctx.error(
                meta.api_id.at,
                &meta.api_id_key,
                format!(
                    "api_id {:?} is already used by {} API {:?}",
                    meta.api_id.v, previous.kind, previous.name
                ),
            ),
            None => {
                ids.insert(meta.api_id.v.as_str(), meta);
            }
        }
    }
}
