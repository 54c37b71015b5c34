//! `[integrations.NAME]` and `[authorizers.NAME]`.

use std::time::Duration;

use super::{RefKind, Refs};
use crate::HttpUrl;
use crate::model::{
    Authorizer, Csrf, HmacSecret, Integration, IntegrationKind, JwsAlgorithm, JwtAuthorizer,
    JwtIssuer, MIN_HMAC_SECRET_BYTES, PayloadFormat, RequestAuthorizer, Target,
};
use crate::syntax;
use crate::walk::{Ctx, Sp, Tbl, index};

const MIN_TIMEOUT: Duration = Duration::from_millis(50);
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// A required `http(s)://` URL.
fn url(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, key: &'static str) -> Option<HttpUrl> {
    let url = t.req_name(ctx, key)?;
    match HttpUrl::parse(&url.v) {
        Ok(parsed) => Some(parsed),
        Err(message) => {
            ctx.error(url.at, &t.path_of(key), message);
            None
        }
    }
}

/// `function = "NAME"`: a non-empty name, checked against `[functions]` once every section
/// has been read.
fn function(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, refs: &mut Refs) -> Option<Target> {
    let name = t.name(ctx, "function")?;
    refs.push(RefKind::Function, &name, t.path_of("function"));
    Some(Target::Function(name.v))
}

pub(super) fn integration(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    refs: &mut Refs,
) -> Option<Integration> {
    let kind = t.req_string(ctx, "type").and_then(|k| match k.v.as_str() {
        "http" => Some(IntegrationKind::Http),
        "http_proxy" => Some(IntegrationKind::HttpProxy),
        "lambda" => Some(IntegrationKind::Lambda),
        other => {
            ctx.error(
                k.at,
                &t.path_of("type"),
                format!("expected \"http\", \"http_proxy\" or \"lambda\", got {other:?}"),
            );
            None
        }
    });
    // The target key must fit the type; with an unknown type, whichever is given is checked.
    let target = match kind {
        Some(IntegrationKind::Lambda) => {
            if t.contains("url") {
                t.node("url");
                ctx.error(
                    t.at_of("url"),
                    &t.path_of("url"),
                    "not allowed with type = \"lambda\" (it calls the `function`)",
                );
            }
            if t.contains("function") {
                function(ctx, &mut t, refs)
            } else {
                t.missing(ctx, "function");
                None
            }
        }
        Some(kind) => {
            if t.contains("function") {
                t.node("function");
                ctx.error(
                    t.at_of("function"),
                    &t.path_of("function"),
                    format!(
                        "not allowed with type = {:?}: use type = \"lambda\" to call a function",
                        kind.as_str()
                    ),
                );
            }
            url(ctx, &mut t, "url").map(Target::Url)
        }
        None if t.contains("function") => function(ctx, &mut t, refs),
        None => url(ctx, &mut t, "url").map(Target::Url),
    };
    let timeout = t
        .duration_in(ctx, "timeout", MIN_TIMEOUT, MAX_TIMEOUT)
        .map_or(Duration::from_secs(29), |d| d.v);
    let max_response_bytes = t
        .size(ctx, "max_response_bytes", 1)
        .map_or(1_048_576, |s| s.v);
    t.finish(ctx);
    Some(Integration {
        name: name.v.clone(),
        kind: kind?,
        target: target?,
        timeout,
        max_response_bytes,
    })
}

/// Identity sources, each checked; `required` demands at least one.
fn identity_sources(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, required: bool) -> Option<Vec<String>> {
    let path = t.path_of("identity_source");
    let Some(sources) = t.strings(ctx, "identity_source") else {
        if required && !t.contains("identity_source") {
            t.missing(ctx, "identity_source");
        }
        return (!required && !t.contains("identity_source")).then(Vec::new);
    };
    if required && sources.is_empty() {
        ctx.error(
            t.at_of("identity_source"),
            &path,
            "needs at least one identity source",
        );
    }
    let mut ok = true;
    for (i, source) in sources.iter().enumerate() {
        if let Err(message) = syntax::identity_source(&source.v) {
            ctx.error(source.at, &index(&path, i), message);
            ok = false;
        }
    }
    ok.then(|| sources.into_iter().map(|s| s.v).collect())
}

pub(super) fn authorizer(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    refs: &mut Refs,
) -> Option<Authorizer> {
    if name.v == "none" {
        ctx.error(name.at, &t.path, "the name \"none\" is reserved (a route's authorizer = \"none\" turns authorization off)");
    }
    let kind = t.req_string(ctx, "type")?;
    match kind.v.as_str() {
        "jwt" => jwt(ctx, name, t).map(Authorizer::Jwt),
        "request" => request(ctx, name, t, refs).map(Authorizer::Request),
        other => {
            // Without a known type the other keys cannot be checked; report only this.
            ctx.error(
                kind.at,
                &t.path_of("type"),
                format!("expected \"jwt\" or \"request\", got {other:?}"),
            );
            None
        }
    }
}

fn jwt(ctx: &mut Ctx<'_>, name: &Sp<String>, mut t: Tbl<'_>) -> Option<JwtAuthorizer> {
    let identity_source = identity_sources(ctx, &mut t, true);
    let issuers_path = t.path_of("issuers");
    if !t.contains("issuers") {
        t.missing(ctx, "issuers");
    }
    let tables = t.tables(ctx, "issuers");
    if t.contains("issuers") && tables.is_empty() {
        ctx.error(
            t.at_of("issuers"),
            &issuers_path,
            "needs at least one issuer",
        );
    }
    let mut issuers = Vec::new();
    let mut ok = true;
    for i in tables {
        let (at, path) = (i.at_of("issuer"), i.path_of("issuer"));
        match issuer(ctx, i) {
            Some(issuer)
                if issuers
                    .iter()
                    .any(|o: &JwtIssuer| o.issuer == issuer.issuer) =>
            {
                let message = format!("issuer {:?} is listed twice", issuer.issuer);
                ctx.error(at, &path, message);
                ok = false;
            }
            Some(issuer) => issuers.push(issuer),
            None => ok = false,
        }
    }
    let token_use = t.string(ctx, "token_use").and_then(|u| match u.v.as_str() {
        "access" | "id" => Some(u.v),
        other => {
            ctx.error(
                u.at,
                &t.path_of("token_use"),
                format!("expected \"access\" or \"id\", got {other:?}"),
            );
            None
        }
    });
    let principal_claim = t.string(ctx, "principal_claim").and_then(|c| {
        if c.v.is_empty() || c.v.len() > 256 {
            ctx.error(
                c.at,
                &t.path_of("principal_claim"),
                "must name a claim (1 to 256 bytes)",
            );
            return None;
        }
        Some(c.v)
    });
    let cache_ttl = t
        .duration_in(ctx, "cache_ttl", Duration::ZERO, Duration::from_secs(3600))
        .map_or(Duration::from_secs(300), |d| d.v);
    let csrf = csrf(ctx, &mut t);
    t.finish(ctx);
    ok.then_some(())?;
    Some(JwtAuthorizer {
        name: name.v.clone(),
        identity_source: identity_source?,
        issuers,
        token_use,
        principal_claim,
        cache_ttl,
        csrf,
    })
}

/// One element of `issuers`: a JWKS issuer (`issuer` a URL, optional `jwks_uri`, optional
/// asymmetric `algorithms`) or a shared-secret one (`secret` or `secret_file`, required HMAC
/// `algorithms`, `issuer` any string). `None` when something was reported.
fn issuer(ctx: &mut Ctx<'_>, mut i: Tbl<'_>) -> Option<JwtIssuer> {
    let shared = i.contains("secret") || i.contains("secret_file");
    let issuer = if shared {
        // Any string names a shared-secret issuer: nothing is fetched from it.
        i.req_name(ctx, "issuer").and_then(|s| {
            if s.v.len() > 1024 {
                ctx.error(s.at, &i.path_of("issuer"), "longer than 1024 bytes");
                return None;
            }
            Some(s.v)
        })
    } else {
        url(ctx, &mut i, "issuer").map(|u| u.as_str().to_owned())
    };
    let audience = i.string_list(ctx, "audience");
    let jwks_uri = i
        .string(ctx, "jwks_uri")
        .and_then(|u| match HttpUrl::parse(&u.v) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                ctx.error(u.at, &i.path_of("jwks_uri"), message);
                None
            }
        });
    let secret = i.secret(ctx, "secret");
    let secret_file = i.name(ctx, "secret_file");
    let mut ok = true;
    if shared && i.contains("jwks_uri") {
        ctx.error(
            i.at_of("jwks_uri"),
            &i.path_of("jwks_uri"),
            "a shared-secret issuer has no JWKS: set either secret / secret_file or jwks_uri, \
             never both for one issuer",
        );
        ok = false;
    }
    let mut algorithms = Vec::new();
    for name in i.strings(ctx, "algorithms").unwrap_or_default() {
        let path = i.path_of("algorithms");
        match JwsAlgorithm::from_name(&name.v) {
            Some(alg) if alg.is_hmac() != shared => {
                let message = if shared {
                    format!(
                        "{:?} is not an HMAC algorithm: a shared-secret issuer takes HS256, \
                         HS384 or HS512",
                        name.v
                    )
                } else {
                    format!(
                        "{:?} needs a shared secret: set secret or secret_file (HMAC and public \
                         keys are never mixed for one issuer)",
                        name.v
                    )
                };
                ctx.error(name.at, &path, message);
                ok = false;
            }
            Some(alg) if !algorithms.contains(&alg) => algorithms.push(alg),
            Some(_) => {}
            None => {
                let known: Vec<&str> = JwsAlgorithm::ALL.iter().map(|a| a.name()).collect();
                ctx.error(
                    name.at,
                    &path,
                    format!(
                        "unknown algorithm {:?}: expected one of {}",
                        name.v,
                        known.join(", ")
                    ),
                );
                ok = false;
            }
        }
    }
    if shared && algorithms.is_empty() && ok {
        ctx.error(
            i.at_of("algorithms"),
            &i.path_of("algorithms"),
            "required for a shared-secret issuer: algorithms = [\"HS256\"] (or HS384, HS512)",
        );
        ok = false;
    }
    let secret = match (secret, secret_file) {
        (Some(_), Some(file)) => {
            ctx.error(
                file.at,
                &i.path_of("secret_file"),
                "set either secret or secret_file, not both",
            );
            None
        }
        (Some(value), None) => {
            let len = value.v.expose().len();
            if len < MIN_HMAC_SECRET_BYTES {
                ctx.error(
                    value.at,
                    &i.path_of("secret"),
                    format!(
                        "must be at least {MIN_HMAC_SECRET_BYTES} bytes, got {len} (generate \
                         one with `openssl rand -base64 32`)"
                    ),
                );
                None
            } else {
                Some(HmacSecret::Value(value.v))
            }
        }
        (None, Some(file)) => Some(HmacSecret::File(file.v.into())),
        (None, None) => None,
    };
    if shared && secret.is_none() {
        ok = false;
    }
    i.finish(ctx);
    ok.then_some(())?;
    Some(JwtIssuer {
        issuer: issuer?,
        audience,
        jwks_uri,
        algorithms,
        secret,
    })
}

fn request(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    refs: &mut Refs,
) -> Option<RequestAuthorizer> {
    let target = match (t.contains("url"), t.contains("function")) {
        (true, false) => url(ctx, &mut t, "url").map(Target::Url),
        (false, true) => function(ctx, &mut t, refs),
        (both, _) => {
            t.node("url");
            t.node("function");
            let message = if both {
                "set either url (a webhook) or function (a handler), not both"
            } else {
                "missing the authorizer to call: set url (a webhook) or function (a handler)"
            };
            ctx.error(t.at, &t.path, message);
            None
        }
    };
    let identity_source = identity_sources(ctx, &mut t, false);
    let cache_ttl = t
        .duration_in(ctx, "cache_ttl", Duration::ZERO, Duration::from_secs(3600))
        .map_or(Duration::from_secs(300), |d| d.v);
    let csrf = csrf(ctx, &mut t);
    let timeout = t
        .duration_in(ctx, "timeout", MIN_TIMEOUT, MAX_TIMEOUT)
        .map_or(Duration::from_secs(10), |d| d.v);
    let payload_format = match t.string(ctx, "payload_format") {
        None => PayloadFormat::V2,
        Some(f) if f.v == "2.0" => PayloadFormat::V2,
        Some(f) if f.v == "1.0" => PayloadFormat::V1,
        Some(f) => {
            ctx.error(
                f.at,
                &t.path_of("payload_format"),
                "expected \"1.0\" or \"2.0\"",
            );
            PayloadFormat::V2
        }
    };
    t.finish(ctx);
    Some(RequestAuthorizer {
        payload_format,
        name: name.v.clone(),
        target: target?,
        identity_source: identity_source?,
        cache_ttl,
        csrf,
        timeout,
    })
}

/// `csrf = { cookie = "...", query = "..." }` (or `header`): the double-submit check.
fn csrf(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>) -> Option<Csrf> {
    t.table(ctx, "csrf").and_then(|mut c| {
        let cookie = c.req_name(ctx, "cookie");
        let query = c.name(ctx, "query");
        let header = c.name(ctx, "header");
        let both_or_neither = c.contains("query") == c.contains("header");
        if both_or_neither {
            ctx.error(
                c.at,
                &c.path,
                "set exactly one of query or header (where the token's copy is sent)",
            );
        }
        c.finish(ctx);
        (!both_or_neither).then_some(())?;
        Some(Csrf {
            cookie: cookie?.v,
            query: query.map(|q| q.v),
            header: header.map(|h| h.v),
        })
    })
}
