//! The claims of a shared-secret token minted by `portcullis token mint`: pure, tested apart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Largest `--claims` accepted: tokens past 16 KiB are refused by the verifier anyway.
pub(super) const MAX_CLAIMS_BYTES: usize = 8 * 1024;

/// Longest lifetime minted: a test token is short-lived; a year covers any sane use.
pub(super) const MAX_TTL: Duration = Duration::from_secs(366 * 86_400);

pub(super) struct Request<'a> {
    pub claims: Option<&'a str>,
    pub issuer: &'a str,
    pub audience: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub ttl: Duration,
    pub now: i64,
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The payload: the `--claims` object plus `iss`, `iat`, `exp` (and `sub`, `aud` when given).
/// A claim given twice (in `--claims` and by a flag) is refused rather than silently chosen.
pub(super) fn build(r: &Request<'_>) -> Result<Map<String, Value>, String> {
    let mut claims = match r.claims {
        None => Map::new(),
        Some(text) if text.len() > MAX_CLAIMS_BYTES => {
            return Err(format!("--claims is larger than {MAX_CLAIMS_BYTES} bytes"));
        }
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err("--claims must be a JSON object, e.g. '{\"userId\":\"u1\"}'".into());
            }
            Err(e) => return Err(format!("--claims is not valid JSON: {e}")),
        },
    };
    if r.issuer.is_empty() {
        return Err("--issuer must not be empty".into());
    }
    if r.ttl.is_zero() || r.ttl > MAX_TTL {
        return Err("--ttl must be between 1s and 366d".into());
    }
    let ttl = i64::try_from(r.ttl.as_secs()).map_err(|_| "--ttl is too long".to_owned())?;
    let flags: [(&str, &str, Option<Value>); 5] = [
        ("iss", "--issuer", Some(Value::from(r.issuer))),
        ("iat", "the current time", Some(Value::from(r.now))),
        ("exp", "--ttl", Some(Value::from(r.now.saturating_add(ttl)))),
        ("sub", "--subject", r.subject.map(Value::from)),
        ("aud", "--audience", r.audience.map(Value::from)),
    ];
    for (name, flag, value) in flags {
        let Some(value) = value else { continue };
        if claims.contains_key(name) {
            return Err(format!(
                "--claims sets {name:?}, which {flag} sets: remove it from --claims"
            ));
        }
        claims.insert(name.to_owned(), value);
    }
    Ok(claims)
}
