//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`): verification of signed requests (header or
//! presigned-URL form) and signing, compatible with botocore.
//!
//! Canonicalisation follows botocore's `SigV4Auth` for non-S3 services:
//!
//! * **URI**: the raw path as sent (still percent-encoded), dot segments removed and empty
//!   segments collapsed, then percent-encoded *once more* leaving only `A-Za-z0-9-._~` and `/`
//!   (`/prod/@connections/abc%3D` → `/prod/%40connections/abc%253D`).
//! * **Query**: each name and value percent-decoded then strictly re-encoded, sorted by name then
//!   value; `a` without `=` becomes `a=`; empty pairs (`a&&b`) are dropped. In presigned form
//!   `X-Amz-Signature` is left out.
//! * **Headers**: only the signed ones, names lower-cased, values trimmed with inner whitespace
//!   runs collapsed, repeated headers joined with `,`, in `SignedHeaders` order.
//! * **Payload**: hex SHA-256 of the body. A present `x-amz-content-sha256` header must equal it
//!   (else [`SigV4Error::SignatureMismatch`]); `UNSIGNED-PAYLOAD` is accepted only for an empty
//!   body, so a signature always covers the bytes delivered.
//!
//! Verification requires `host` and (for the header form) `x-amz-date` to be signed; over HTTP/2
//! the caller must pass the `:authority` as a `host` header. Error messages never include secrets
//! or signatures.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only supported algorithm.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Payload hash placeholder for unsigned bodies.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Longest validity of a presigned URL (`X-Amz-Expires`), as in AWS.
pub const MAX_PRESIGN_EXPIRES: Duration = Duration::from_secs(604_800);

const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything except `A-Za-z0-9-._~` (RFC 3986's unreserved characters): what SigV4 and
/// botocore percent-encode, in a path segment as in a query.
pub const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// [`STRICT`] but leaving `/` alone (paths).
const STRICT_PATH: &AsciiSet = &STRICT.remove(b'/');

/// Headers botocore never signs (and neither does [`sign`]).
const UNSIGNED_HEADERS: &[&str] = &[
    "user-agent",
    "expect",
    "x-amzn-trace-id",
    "authorization",
    "x-amz-date",
];

/// A request as it arrived (or is about to be sent).
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// Raw path as sent, still percent-encoded.
    pub path: &'a str,
    /// Raw query without `?` (empty if none).
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// What a verifier accepts.
#[derive(Debug, Clone, Copy)]
pub struct VerifyParams<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub now: DateTime<Utc>,
    /// Allowed difference between `now` and `X-Amz-Date` (AWS uses 15 minutes).
    pub max_skew: Duration,
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No SigV4 credentials at all (no `Authorization` header, no `X-Amz-Signature` parameter).
    #[error("request is not signed")]
    Missing,
    /// Credentials present but unusable.
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    /// The access key id is not known.
    #[error("unknown access key id")]
    UnknownAccessKey,
    /// The credential scope names another date, region or service.
    #[error("credential scope does not match this endpoint")]
    WrongScope,
    /// `X-Amz-Date` is too far from now, or a presigned URL has expired.
    #[error("signature expired or request time too skewed")]
    Expired,
    /// The signature (or the payload hash) does not match.
    #[error("signature does not match")]
    SignatureMismatch,
}

/// Verifies a signed request; `secret_for` maps an access key id to its secret.
pub fn verify(
    req: &SignableRequest,
    params: &VerifyParams,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Verified, SigV4Error> {
    let mut auth_headers = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"));
    match (auth_headers.next(), auth_headers.next()) {
        (Some(_), Some(_)) => Err(SigV4Error::Malformed("more than one Authorization header")),
        (Some((_, value)), None) => verify_header(req, params, secret_for, value),
        (None, _) => {
            if query_params(req.query)
                .any(|(k, _)| k == "X-Amz-Signature" || k == "X-Amz-Algorithm")
            {
                verify_presigned(req, params, secret_for)
            } else {
                Err(SigV4Error::Missing)
            }
        }
    }
}

struct Credential<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_credential(value: &str) -> Result<Credential<'_>, SigV4Error> {
    let mut parts = value.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(term), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(SigV4Error::Malformed(
            "Credential must be AKID/date/region/service/aws4_request",
        ));
    };
    if access_key_id.is_empty() {
        return Err(SigV4Error::Malformed("empty access key id"));
    }
    if term != "aws4_request" {
        return Err(SigV4Error::WrongScope);
    }
    Ok(Credential {
        access_key_id,
        date,
        region,
        service,
    })
}

fn parse_signed_headers(value: &str) -> Result<Vec<&str>, SigV4Error> {
    let names: Vec<&str> = value.split(';').collect();
    if names
        .iter()
        .any(|n| n.is_empty() || n.bytes().any(|b| b.is_ascii_uppercase() || b <= b' '))
    {
        return Err(SigV4Error::Malformed(
            "SignedHeaders must be lower-case names separated by ';'",
        ));
    }
    if !names.contains(&"host") {
        return Err(SigV4Error::Malformed("host must be signed"));
    }
    Ok(names)
}

fn parse_amz_date(value: &str) -> Result<DateTime<Utc>, SigV4Error> {
    NaiveDateTime::parse_from_str(value, AMZ_DATE_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|_| SigV4Error::Malformed("X-Amz-Date must look like 20150830T123600Z"))
}

fn check_scope(cred: &Credential, amz_date: &str, params: &VerifyParams) -> Result<(), SigV4Error> {
    if amz_date.get(..8) != Some(cred.date)
        || cred.region != params.region
        || cred.service != params.service
    {
        return Err(SigV4Error::WrongScope);
    }
    Ok(())
}

fn within_skew(t: DateTime<Utc>, params: &VerifyParams) -> bool {
    let diff = (params.now - t).abs();
    diff.to_std().is_ok_and(|d| d <= params.max_skew)
}

fn verify_header(
    req: &SignableRequest,
    params: &VerifyParams,
    secret_for: &dyn Fn(&str) -> Option<String>,
    authorization: &str,
) -> Result<Verified, SigV4Error> {
    let rest = authorization
        .trim_start()
        .strip_prefix(ALGORITHM)
        .ok_or(SigV4Error::Malformed(
            "Authorization is not AWS4-HMAC-SHA256",
        ))?;
    if !rest.starts_with([' ', '\t']) {
        return Err(SigV4Error::Malformed(
            "Authorization is not AWS4-HMAC-SHA256",
        ));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or(SigV4Error::Malformed("Authorization component without '='"))?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(SigV4Error::Malformed("unknown Authorization component")),
        };
        if slot.replace(value).is_some() {
            return Err(SigV4Error::Malformed("repeated Authorization component"));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(SigV4Error::Malformed(
            "Authorization needs Credential, SignedHeaders and Signature",
        ));
    };
    let cred = parse_credential(credential)?;
    let names = parse_signed_headers(signed_headers)?;
    if !names.contains(&"x-amz-date") {
        return Err(SigV4Error::Malformed("x-amz-date must be signed"));
    }
    let amz_date = single_header(req.headers, "x-amz-date")?
        .ok_or(SigV4Error::Malformed("missing X-Amz-Date header"))?
        .trim();
    let t = parse_amz_date(amz_date)?;
    check_scope(&cred, amz_date, params)?;
    if !within_skew(t, params) {
        return Err(SigV4Error::Expired);
    }
    let secret = secret_for(cred.access_key_id).ok_or(SigV4Error::UnknownAccessKey)?;
    let payload = payload_hashes(req)?;
    let canonical_query = canonical_query(req.query, false);
    check_signature(
        req,
        &cred,
        &secret,
        amz_date,
        &canonical_query,
        &names,
        &payload,
        signature,
    )?;
    Ok(Verified {
        access_key_id: cred.access_key_id.to_owned(),
    })
}

fn verify_presigned(
    req: &SignableRequest,
    params: &VerifyParams,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Verified, SigV4Error> {
    // Decoded copies of the X-Amz-* parameters (each must appear at most once).
    let mut algorithm = None;
    let mut credential = None;
    let mut date = None;
    let mut expires = None;
    let mut signed_headers = None;
    let mut signature = None;
    for (k, v) in query_params(req.query) {
        let slot = match k.as_str() {
            "X-Amz-Algorithm" => &mut algorithm,
            "X-Amz-Credential" => &mut credential,
            "X-Amz-Date" => &mut date,
            "X-Amz-Expires" => &mut expires,
            "X-Amz-SignedHeaders" => &mut signed_headers,
            "X-Amz-Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(SigV4Error::Malformed("repeated X-Amz-* query parameter"));
        }
    }
    if algorithm.as_deref() != Some(ALGORITHM) {
        return Err(SigV4Error::Malformed(
            "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
        ));
    }
    let (Some(credential), Some(amz_date), Some(signed_headers), Some(signature)) =
        (credential, date, signed_headers, signature)
    else {
        return Err(SigV4Error::Malformed(
            "presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Signature",
        ));
    };
    let cred = parse_credential(&credential)?;
    let names = parse_signed_headers(&signed_headers)?;
    let t = parse_amz_date(&amz_date)?;
    check_scope(&cred, &amz_date, params)?;
    match expires {
        Some(e) => {
            let secs: u64 = e
                .parse()
                .map_err(|_| SigV4Error::Malformed("X-Amz-Expires must be a number of seconds"))?;
            if secs == 0 || secs > MAX_PRESIGN_EXPIRES.as_secs() {
                return Err(SigV4Error::Malformed("X-Amz-Expires out of range"));
            }
            let skew = chrono::Duration::from_std(params.max_skew).unwrap_or(chrono::Duration::MAX);
            let not_before = t.checked_sub_signed(skew).unwrap_or(t);
            let secs = i64::try_from(secs).unwrap_or(i64::MAX);
            let not_after = t
                .checked_add_signed(chrono::Duration::seconds(secs))
                .ok_or(SigV4Error::Expired)?;
            if params.now < not_before || params.now > not_after {
                return Err(SigV4Error::Expired);
            }
        }
        None => {
            if !within_skew(t, params) {
                return Err(SigV4Error::Expired);
            }
        }
    }
    let secret = secret_for(cred.access_key_id).ok_or(SigV4Error::UnknownAccessKey)?;
    let payload = payload_hashes(req)?;
    let canonical_query = canonical_query(req.query, true);
    check_signature(
        req,
        &cred,
        &secret,
        &amz_date,
        &canonical_query,
        &names,
        &payload,
        &signature,
    )?;
    Ok(Verified {
        access_key_id: cred.access_key_id.to_owned(),
    })
}

/// Payload hashes a signer may legitimately have used: the body's SHA-256 (or the value of a
/// matching `x-amz-content-sha256` header), plus `UNSIGNED-PAYLOAD` when there is no body.
fn payload_hashes(req: &SignableRequest) -> Result<Vec<String>, SigV4Error> {
    let body_hash = hex::encode(Sha256::digest(req.body));
    match single_header(req.headers, "x-amz-content-sha256")?.map(str::trim) {
        Some(UNSIGNED_PAYLOAD) if req.body.is_empty() => Ok(vec![UNSIGNED_PAYLOAD.to_owned()]),
        Some(UNSIGNED_PAYLOAD) => Err(SigV4Error::Malformed("unsigned payloads are not accepted")),
        Some(v) if v.eq_ignore_ascii_case(&body_hash) => Ok(vec![v.to_owned()]),
        Some(_) => Err(SigV4Error::SignatureMismatch),
        None if req.body.is_empty() => Ok(vec![body_hash, UNSIGNED_PAYLOAD.to_owned()]),
        None => Ok(vec![body_hash]),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_signature(
    req: &SignableRequest,
    cred: &Credential,
    secret: &str,
    amz_date: &str,
    canonical_query: &str,
    signed_headers: &[&str],
    payload_hashes: &[String],
    provided: &str,
) -> Result<(), SigV4Error> {
    let key = signing_key(secret, cred.date, cred.region, cred.service);
    let scope = format!(
        "{}/{}/{}/aws4_request",
        cred.date, cred.region, cred.service
    );
    let canonical_headers = canonical_headers(req.headers, signed_headers)?;
    let uri = canonical_uri(req.path);
    let mut ok = subtle::Choice::from(0);
    for payload in payload_hashes {
        let creq = canonical_request(
            req.method,
            &uri,
            canonical_query,
            &canonical_headers,
            &signed_headers.join(";"),
            payload,
        );
        let expected = signature(&key, amz_date, &scope, &creq);
        ok |= expected.as_bytes().ct_eq(provided.as_bytes());
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}

/// The value of a header that must appear at most once.
fn single_header<'a>(
    headers: &[(&str, &'a str)],
    name: &str,
) -> Result<Option<&'a str>, SigV4Error> {
    let mut it = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    match (it.next(), it.next()) {
        (Some(_), Some(_)) => Err(SigV4Error::Malformed("header repeated")),
        (first, _) => Ok(first.map(|(_, v)| *v)),
    }
}

/// Decoded `(name, value)` pairs of a raw query (`+` is kept literally).
fn query_params(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Strictly re-encodes and sorts a raw query; see the module docs.
pub fn canonical_query(query: &str, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode_str(k).collect::<Vec<u8>>();
            if skip_signature && k == b"X-Amz-Signature" {
                return None;
            }
            let v = percent_decode_str(v).collect::<Vec<u8>>();
            Some((encode_bytes(&k, STRICT), encode_bytes(&v, STRICT)))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn encode_bytes(bytes: &[u8], set: &'static AsciiSet) -> String {
    percent_encoding::percent_encode(bytes, set).to_string()
}

/// The canonical URI of a raw (still percent-encoded) path; see the module docs.
pub fn canonical_uri(raw_path: &str) -> String {
    let normalized = remove_dot_segments(raw_path);
    utf8_percent_encode(&normalized, STRICT_PATH).to_string()
}

/// botocore's `remove_dot_segments`: RFC 3986 §5.2.4 plus collapsing of empty segments.
fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(path.len());
    if path.starts_with('/') {
        s.push('/');
    }
    s.push_str(&out.join("/"));
    if path.ends_with('/') && !out.is_empty() {
        s.push('/');
    }
    s
}

fn canonical_headers(headers: &[(&str, &str)], signed: &[&str]) -> Result<String, SigV4Error> {
    let mut out = String::with_capacity(64 * signed.len());
    for name in signed {
        out.push_str(name);
        out.push(':');
        let mut found = false;
        for (_, v) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if found {
                out.push(',');
            }
            found = true;
            for (i, word) in v.split_ascii_whitespace().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
        if !found {
            return Err(SigV4Error::Malformed(
                "a signed header is missing from the request",
            ));
        }
        out.push('\n');
    }
    Ok(out)
}

fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n{uri}\n{query}\n{headers}\n{signed_headers}\n{payload_hash}")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn signature(key: &[u8; 32], amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let creq_hash = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    let sts = format!("{ALGORITHM}\n{amz_date}\n{scope}\n{creq_hash}");
    hex::encode(hmac(key, sts.as_bytes()))
}

/// Signs a request the way botocore does: every header in `req.headers` (which must include
/// `host`) is signed except `user-agent`, `expect`, `x-amzn-trace-id` and any existing
/// `authorization`/`x-amz-date`. Returns the headers to add: `x-amz-date` and `authorization`.
pub fn sign(
    req: &SignableRequest,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let amz_date = now.format(AMZ_DATE_FORMAT).to_string();
    let date = amz_date.get(..8).unwrap_or_default();
    let mut headers: Vec<(String, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), *v))
        .filter(|(n, _)| !UNSIGNED_HEADERS.contains(&n.as_str()))
        .collect();
    headers.push(("x-amz-date".to_owned(), &amz_date));
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    names.dedup();
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let canonical_headers = canonical_headers(&pairs, &names).unwrap_or_default();
    let payload = single_header(req.headers, "x-amz-content-sha256")
        .ok()
        .flatten()
        .map_or_else(
            || hex::encode(Sha256::digest(req.body)),
            |v| v.trim().to_owned(),
        );
    let signed_headers = names.join(";");
    let creq = canonical_request(
        req.method,
        &canonical_uri(req.path),
        &canonical_query(req.query, false),
        &canonical_headers,
        &signed_headers,
        &payload,
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sig = signature(
        &signing_key(secret, date, region, service),
        &amz_date,
        &scope,
        &creq,
    );
    vec![
        ("x-amz-date".to_owned(), amz_date.clone()),
        (
            "authorization".to_owned(),
            format!(
                "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={sig}"
            ),
        ),
    ]
}

/// Presigns a request (the `wss://` upgrade form, signing only `host`): returns the full query
/// string to send — `req.query` followed by the `X-Amz-*` parameters, as botocore's
/// `SigV4QueryAuth` produces it. The payload hash is that of `req.body` (normally empty).
#[allow(clippy::too_many_arguments)]
pub fn presign(
    req: &SignableRequest,
    access_key_id: &str,
    secret: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
    expires: Duration,
) -> String {
    let amz_date = now.format(AMZ_DATE_FORMAT).to_string();
    let date = amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let enc = |s: &str| utf8_percent_encode(s, STRICT).to_string();
    let mut query = String::from(req.query);
    let mut push = |k: &str, v: &str| {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(k);
        query.push('=');
        query.push_str(&enc(v));
    };
    push("X-Amz-Algorithm", ALGORITHM);
    push("X-Amz-Credential", &format!("{access_key_id}/{scope}"));
    push("X-Amz-Date", &amz_date);
    push("X-Amz-Expires", &expires.as_secs().to_string());
    push("X-Amz-SignedHeaders", "host");
    if let Some(token) = session_token {
        push("X-Amz-Security-Token", token);
    }
    let host: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .copied()
        .collect();
    let canonical_headers = canonical_headers(&host, &["host"]).unwrap_or_default();
    let creq = canonical_request(
        req.method,
        &canonical_uri(req.path),
        &canonical_query(&query, false),
        &canonical_headers,
        "host",
        &hex::encode(Sha256::digest(req.body)),
    );
    let sig = signature(
        &signing_key(secret, date, region, service),
        &amz_date,
        &scope,
        &creq,
    );
    query.push_str("&X-Amz-Signature=");
    query.push_str(&sig);
    query
}

/// The SHA-256 of an empty payload, hex-encoded.
pub fn empty_payload_hash() -> &'static str {
    EMPTY_SHA256
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    const EX_AKID: &str = "AKIDEXAMPLE";
    const EX_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const AKID: &str = "AKIAPORTCULLISTEST01";
    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXh5eg";
    const HOST: &str = "k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com";

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, AMZ_DATE_FORMAT)
            .unwrap()
            .and_utc()
    }

    fn params(now: &str) -> VerifyParams<'static> {
        VerifyParams {
            region: "eu-west-1",
            service: "execute-api",
            now: at(now),
            max_skew: Duration::from_secs(15 * 60),
        }
    }

    fn secrets(akid: &str) -> Option<String> {
        match akid {
            AKID => Some(SECRET.to_owned()),
            EX_AKID => Some(EX_SECRET.to_owned()),
            "ASIAPORTCULLISTEST02" => Some("tempsecret/with+chars".to_owned()),
            _ => None,
        }
    }

    /// aws-sig-v4-test-suite `get-vanilla` and `get-vanilla-query-order-key-case`.
    #[test]
    fn aws_test_suite_vectors() {
        let cases = [
            (
                "",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ];
        for (query, sig) in cases {
            let auth = format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}"
            );
            let headers = [
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
                ("Authorization", auth.as_str()),
            ];
            let req = SignableRequest {
                method: "GET",
                path: "/",
                query,
                headers: &headers,
                body: b"",
            };
            let p = VerifyParams {
                region: "us-east-1",
                service: "service",
                now: at("20150830T123600Z"),
                max_skew: Duration::from_secs(300),
            };
            assert_eq!(
                verify(&req, &p, &secrets),
                Ok(Verified {
                    access_key_id: EX_AKID.into()
                })
            );
            let signed = sign(
                &SignableRequest {
                    headers: &headers[..2],
                    ..req
                },
                EX_AKID,
                EX_SECRET,
                "us-east-1",
                "service",
                at("20150830T123600Z"),
            );
            assert_eq!(signed[1].1, auth);
        }
    }

    /// Produced by botocore 1.43 `SigV4Auth` for `PostToConnection`.
    const BOTO_POST_SIG: &str = "6f43e7e39b602836e4351510ec6add66a06921400492e75fa743a217718eb32c";

    fn boto_post_auth() -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20250303/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature={BOTO_POST_SIG}"
        )
    }

    #[test]
    fn botocore_post_to_connection() {
        let auth = boto_post_auth();
        let headers = [
            ("Host", HOST),
            ("User-Agent", "Boto3/1.40"),
            ("X-Amz-Date", "20250303T091600Z"),
            ("Authorization", auth.as_str()),
            ("Content-Length", "25"),
        ];
        let req = SignableRequest {
            method: "POST",
            path: "/prod/@connections/Yq3jQfP1oAMCJzA%3D",
            query: "",
            headers: &headers,
            body: br#"{"text":"server says hi"}"#,
        };
        assert_eq!(
            verify(&req, &params("20250303T091600Z"), &secrets)
                .unwrap()
                .access_key_id,
            AKID
        );
        // The same request with the `%40` spelling of `@` canonicalises differently, as in AWS:
        let other = SignableRequest {
            path: "/prod/%40connections/Yq3jQfP1oAMCJzA%3D",
            ..req
        };
        assert_eq!(
            verify(&other, &params("20250303T091600Z"), &secrets),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    /// botocore: dot segments, doubled slashes, an encoded slash, repeated and valueless params.
    #[test]
    fn botocore_normalisation_vector() {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20250303/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=c90fd954ec654b7e3c70043ec2062671ee896b1eab4dd01dee0922d2b184e242"
        );
        let headers = [
            ("host", "h.example"),
            ("x-amz-date", "20250303T091600Z"),
            ("authorization", auth.as_str()),
        ];
        let req = SignableRequest {
            method: "GET",
            path: "/prod/./a/../b//c%2Fd~e",
            query: "b=2&a=x%20y&a=1&c",
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            verify(&req, &params("20250303T091600Z"), &secrets)
                .unwrap()
                .access_key_id,
            AKID
        );
    }

    /// botocore `SigV4QueryAuth` presigned URL with a session token.
    #[test]
    fn botocore_presigned_url() {
        let query = "room=lobby&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAPORTCULLISTEST02%2F20250303%2Feu-west-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20250303T091600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FQoGZXIvYXdzEJr%2F%2F%2F%2F%2F%2F%2F%2F%2F%2Ftoken%3D&X-Amz-Signature=8cb4f171d50dd42219f735df7e4b670574dca55155597caabf82549a45d86679";
        let headers = [
            ("Host", HOST),
            ("Sec-WebSocket-Key", "abc"),
            ("User-Agent", "x"),
        ];
        let req = SignableRequest {
            method: "GET",
            path: "/prod",
            query,
            headers: &headers,
            body: b"",
        };
        let ok = verify(&req, &params("20250303T091800Z"), &secrets);
        assert_eq!(ok.unwrap().access_key_id, "ASIAPORTCULLISTEST02");
        // Our presigner reproduces botocore's query exactly.
        let ours = presign(
            &SignableRequest {
                query: "room=lobby",
                ..req
            },
            "ASIAPORTCULLISTEST02",
            "tempsecret/with+chars",
            Some("FQoGZXIvYXdzEJr//////////token="),
            "eu-west-1",
            "execute-api",
            at("20250303T091600Z"),
            Duration::from_secs(300),
        );
        assert_eq!(ours, query);
        // Expired after 300 s; not yet valid well before X-Amz-Date.
        assert_eq!(
            verify(&req, &params("20250303T092101Z"), &secrets),
            Err(SigV4Error::Expired)
        );
        assert_eq!(
            verify(&req, &params("20250303T090000Z"), &secrets),
            Err(SigV4Error::Expired)
        );
        // Tampering with a signed query parameter breaks it.
        let tampered = query.replace("room=lobby", "room=admin");
        let bad = SignableRequest {
            query: &tampered,
            ..req
        };
        assert_eq!(
            verify(&bad, &params("20250303T091800Z"), &secrets),
            Err(SigV4Error::SignatureMismatch)
        );
        let bad_host = [("Host", "evil.example")];
        let bad = SignableRequest {
            headers: &bad_host,
            ..req
        };
        assert_eq!(
            verify(&bad, &params("20250303T091800Z"), &secrets),
            Err(SigV4Error::SignatureMismatch)
        );
    }

    #[test]
    fn double_encoding_rule() {
        let cases = [
            ("/prod/@connections/abc%3D", "/prod/%40connections/abc%253D"),
            (
                "/prod/%40connections/Yq3j%3D",
                "/prod/%2540connections/Yq3j%253D",
            ),
            ("", "/"),
            ("/", "/"),
            ("/a/./b/../c/", "/a/c/"),
            ("/..", "/"),
            ("//a//b", "/a/b"),
            ("/a b/ü", "/a%20b/%C3%BC"),
            (
                "/-._~!$&'()*+,;=:",
                "/-._~%21%24%26%27%28%29%2A%2B%2C%3B%3D%3A",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical_uri(raw), want, "{raw}");
        }
        let queries = [
            ("", ""),
            ("b=2&a=1", "a=1&b=2"),
            ("a=2&a=1&a", "a=&a=1&a=2"),
            ("x=a+b&y=a%20b&z=%7e", "x=a%2Bb&y=a%20b&z=~"),
            ("k%5Fx=%2f", "k_x=%2F"),
            ("a&&b=", "a=&b="),
            ("B=1&a=1", "B=1&a=1"),
        ];
        for (raw, want) in queries {
            assert_eq!(canonical_query(raw, false), want, "{raw}");
        }
    }

    type Headers = Vec<(&'static str, &'static str)>;

    fn signed_post(now: &str) -> (Vec<(String, String)>, Headers) {
        let base = vec![
            ("Host", HOST),
            ("Content-Type", "application/json"),
            ("X-Custom", "  a   b "),
        ];
        let req = SignableRequest {
            method: "POST",
            path: "/prod/@connections/abc%3D",
            query: "x=1",
            headers: &base,
            body: b"hello",
        };
        (
            sign(&req, AKID, SECRET, "eu-west-1", "execute-api", at(now)),
            base,
        )
    }

    #[test]
    fn round_trip_and_tampering() {
        let (added, base) = signed_post("20250303T091600Z");
        assert_eq!(
            added[0],
            ("x-amz-date".to_owned(), "20250303T091600Z".to_owned())
        );
        assert!(
            added[1]
                .1
                .contains("SignedHeaders=content-type;host;x-amz-date;x-custom,"),
            "{}",
            added[1].1
        );
        let mut headers: Vec<(&str, &str)> = base.clone();
        headers.extend(added.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let good = SignableRequest {
            method: "POST",
            path: "/prod/@connections/abc%3D",
            query: "x=1",
            headers: &headers,
            body: b"hello",
        };
        let p = params("20250303T091600Z");
        assert_eq!(
            verify(&good, &p, &secrets),
            Ok(Verified {
                access_key_id: AKID.into()
            })
        );
        // Whitespace differences in a signed header value do not matter.
        let mut reformatted = headers.clone();
        reformatted[2].1 = "a b";
        assert!(
            verify(
                &SignableRequest {
                    headers: &reformatted,
                    ..good
                },
                &p,
                &secrets
            )
            .is_ok()
        );
        // Within the allowed skew on both sides.
        assert!(verify(&good, &params("20250303T093000Z"), &secrets).is_ok());
        assert!(verify(&good, &params("20250303T090100Z"), &secrets).is_ok());

        let mismatch = Err(SigV4Error::SignatureMismatch);
        assert_eq!(
            verify(
                &SignableRequest {
                    method: "GET",
                    ..good
                },
                &p,
                &secrets
            ),
            mismatch
        );
        assert_eq!(
            verify(
                &SignableRequest {
                    path: "/prod/@connections/abd%3D",
                    ..good
                },
                &p,
                &secrets
            ),
            mismatch
        );
        assert_eq!(
            verify(
                &SignableRequest {
                    query: "x=2",
                    ..good
                },
                &p,
                &secrets
            ),
            mismatch
        );
        assert_eq!(
            verify(&SignableRequest { query: "", ..good }, &p, &secrets),
            mismatch
        );
        assert_eq!(
            verify(
                &SignableRequest {
                    body: b"hellO",
                    ..good
                },
                &p,
                &secrets
            ),
            mismatch
        );
        assert_eq!(
            verify(&SignableRequest { body: b"", ..good }, &p, &secrets),
            mismatch
        );
        let mut h = headers.clone();
        h[1].1 = "text/plain";
        assert_eq!(
            verify(
                &SignableRequest {
                    headers: &h,
                    ..good
                },
                &p,
                &secrets
            ),
            mismatch
        );
        let mut h = headers.clone();
        h.push(("X-Custom", "second"));
        assert_eq!(
            verify(
                &SignableRequest {
                    headers: &h,
                    ..good
                },
                &p,
                &secrets
            ),
            mismatch
        );
        // Unsigned headers may be added freely.
        let mut h = headers.clone();
        h.push(("User-Agent", "curl"));
        assert!(
            verify(
                &SignableRequest {
                    headers: &h,
                    ..good
                },
                &p,
                &secrets
            )
            .is_ok()
        );

        // Skew.
        assert_eq!(
            verify(&good, &params("20250303T093101Z"), &secrets),
            Err(SigV4Error::Expired)
        );
        assert_eq!(
            verify(&good, &params("20250303T090059Z"), &secrets),
            Err(SigV4Error::Expired)
        );
        // Scope.
        let wrong_region = VerifyParams {
            region: "us-east-1",
            ..p
        };
        assert_eq!(
            verify(&good, &wrong_region, &secrets),
            Err(SigV4Error::WrongScope)
        );
        let wrong_service = VerifyParams {
            service: "execute-api2",
            ..p
        };
        assert_eq!(
            verify(&good, &wrong_service, &secrets),
            Err(SigV4Error::WrongScope)
        );
        // Unknown key.
        assert_eq!(
            verify(&good, &p, &|_| None),
            Err(SigV4Error::UnknownAccessKey)
        );
        // Wrong secret.
        assert_eq!(verify(&good, &p, &|_| Some("other".to_owned())), mismatch);
    }

    #[test]
    fn content_sha256_header() {
        let body = b"payload";
        let hash = hex::encode(Sha256::digest(body));
        let cases: [(&str, &[u8], Result<(), SigV4Error>); 5] = [
            (hash.as_str(), body, Ok(())),
            (EMPTY_SHA256, body, Err(SigV4Error::SignatureMismatch)),
            (
                UNSIGNED_PAYLOAD,
                body,
                Err(SigV4Error::Malformed("unsigned payloads are not accepted")),
            ),
            (UNSIGNED_PAYLOAD, b"", Ok(())),
            (EMPTY_SHA256, b"", Ok(())),
        ];
        for (value, body, want) in cases {
            let base = [("host", HOST), ("x-amz-content-sha256", value)];
            let req = SignableRequest {
                method: "POST",
                path: "/p",
                query: "",
                headers: &base,
                body,
            };
            let added = sign(
                &req,
                AKID,
                SECRET,
                "eu-west-1",
                "execute-api",
                at("20250303T091600Z"),
            );
            let mut headers = base.to_vec();
            headers.extend(added.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let req = SignableRequest {
                headers: &headers,
                ..req
            };
            assert_eq!(
                verify(&req, &params("20250303T091600Z"), &secrets).map(|_| ()),
                want,
                "{value}"
            );
        }
    }

    #[test]
    fn malformed_and_missing() {
        let p = params("20250303T091600Z");
        let check = |headers: &[(&str, &str)], query: &str| {
            verify(
                &SignableRequest {
                    method: "GET",
                    path: "/",
                    query,
                    headers,
                    body: b"",
                },
                &p,
                &secrets,
            )
        };
        let cred = format!("Credential={AKID}/20250303/eu-west-1/execute-api/aws4_request");
        let sig = "Signature=0000000000000000000000000000000000000000000000000000000000000000";
        let date = ("x-amz-date", "20250303T091600Z");
        let host = ("host", HOST);

        assert_eq!(check(&[host, date], ""), Err(SigV4Error::Missing));
        assert_eq!(
            check(&[host, date], "room=1&token=x"),
            Err(SigV4Error::Missing)
        );
        let malformed = |v: &str| -> bool {
            matches!(
                check(&[host, date, ("Authorization", v)], ""),
                Err(SigV4Error::Malformed(_))
            )
        };
        for bad in [
            "Bearer abc".to_owned(),
            "AWS4-HMAC-SHA256".to_owned(),
            "AWS4-HMAC-SHA256Credential=x".to_owned(),
            format!("AWS4-HMAC-SHA256 {cred}, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=Host;x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;;x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date;x-missing, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, {cred}, SignedHeaders=host;x-amz-date, {sig}"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, {sig}, Extra=1"),
            format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, {sig}, junk"),
            format!(
                "AWS4-HMAC-SHA256 Credential={AKID}/20250303/eu-west-1/execute-api, SignedHeaders=host;x-amz-date, {sig}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=/20250303/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, {sig}"
            ),
        ] {
            assert!(malformed(&bad), "{bad}");
        }
        // Spacing variants parse (and then fail only on the signature).
        for ok in [
            format!("AWS4-HMAC-SHA256 {cred},SignedHeaders=host;x-amz-date,{sig}"),
            format!("AWS4-HMAC-SHA256   {cred} SignedHeaders=host;x-amz-date {sig}"),
            format!("  AWS4-HMAC-SHA256 {cred} ,  SignedHeaders=host;x-amz-date ,{sig}"),
        ] {
            assert_eq!(
                check(&[host, date, ("Authorization", &ok)], ""),
                Err(SigV4Error::SignatureMismatch),
                "{ok}"
            );
        }
        let good_auth = format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, {sig}");
        let a = ("Authorization", good_auth.as_str());
        assert!(matches!(
            check(&[host, a], ""),
            Err(SigV4Error::Malformed(_))
        ));
        assert!(matches!(
            check(&[host, ("x-amz-date", "2025-03-03T09:16:00Z"), a], ""),
            Err(SigV4Error::Malformed(_))
        ));
        assert!(matches!(
            check(&[host, date, date, a], ""),
            Err(SigV4Error::Malformed(_))
        ));
        assert!(matches!(
            check(&[host, date, a, a], ""),
            Err(SigV4Error::Malformed(_))
        ));
        assert!(matches!(
            check(&[date, a], ""),
            Err(SigV4Error::Malformed(_))
        ));
        // Scope date must be X-Amz-Date's date.
        assert_eq!(
            check(&[host, ("x-amz-date", "20250304T091600Z"), a], ""),
            Err(SigV4Error::WrongScope)
        );
        let term = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20250303/eu-west-1/execute-api/aws5_request, SignedHeaders=host;x-amz-date, {sig}"
        );
        assert_eq!(
            check(&[host, date, ("Authorization", &term)], ""),
            Err(SigV4Error::WrongScope)
        );
        // Presigned variants.
        assert!(matches!(
            check(&[host], "X-Amz-Signature=00"),
            Err(SigV4Error::Malformed(_))
        ));
        assert!(matches!(
            check(
                &[host],
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20250303%2Feu-west-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20250303T091600Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Signature=00"
            ),
            Err(SigV4Error::Malformed(_))
        ));
        assert!(matches!(
            check(
                &[host],
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20250303%2Feu-west-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20250303T091600Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
            ),
            Err(SigV4Error::Malformed(_))
        ));
        assert_eq!(
            check(
                &[host],
                "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=nobody%2F20250303%2Feu-west-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20250303T091600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
            ),
            Err(SigV4Error::UnknownAccessKey)
        );
    }

    #[test]
    fn presign_round_trip() {
        let headers = [("Host", HOST)];
        let req = SignableRequest {
            method: "GET",
            path: "/prod",
            query: "",
            headers: &headers,
            body: b"",
        };
        let now = Utc.with_ymd_and_hms(2025, 3, 3, 9, 16, 0).unwrap();
        let q = presign(
            &req,
            AKID,
            SECRET,
            None,
            "eu-west-1",
            "execute-api",
            now,
            Duration::from_secs(60),
        );
        assert!(!q.contains("Security-Token"));
        let signed = SignableRequest { query: &q, ..req };
        assert_eq!(
            verify(&signed, &params("20250303T091700Z"), &secrets)
                .unwrap()
                .access_key_id,
            AKID
        );
        assert_eq!(
            verify(&signed, &params("20250303T091701Z"), &secrets),
            Err(SigV4Error::Expired)
        );
    }

    #[test]
    fn errors_do_not_leak() {
        for e in [
            SigV4Error::Missing,
            SigV4Error::Malformed("x"),
            SigV4Error::UnknownAccessKey,
            SigV4Error::WrongScope,
            SigV4Error::Expired,
            SigV4Error::SignatureMismatch,
        ] {
            let msg = e.to_string();
            assert!(!msg.contains(SECRET) && !msg.contains(AKID), "{msg}");
        }
        assert_eq!(empty_payload_hash(), hex::encode(Sha256::digest(b"")));
    }
}
