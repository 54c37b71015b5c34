//! Claim checks after the signature verified: pure functions over the payload and `now`.
//!
//! Rules (API Gateway's HTTP JWT authorizer, with aws-jwt-verify's strictness on types):
//! * `exp` is required and must be later than `now - skew`; `nbf` and `iat`, when present, must
//!   not be later than `now + skew`. NumericDates may be integers or finite decimals.
//! * audience, only when the issuer lists audiences: a present `aud` (string or array of
//!   strings) must contain one of them; only when `aud` is absent, `client_id` must be one.
//! * `token_use`, only when the authorizer sets it, must equal it.
//! * `sub`, when present, is a string; scopes come from `scope` (space-separated string), else
//!   `scp` (array or space-separated string); groups from `cognito:groups` (array or string).

use serde_json::{Map, Number, Value};

use super::JwtError;

/// What the claims are checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimRules<'a> {
    pub audience: &'a [String],
    pub token_use: Option<&'a str>,
    /// Allowed clock difference, in seconds.
    pub skew: i64,
}

/// The claims the gateway reads, extracted while checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedClaims {
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
    pub token_use: Option<String>,
    pub expires_at: i64,
}

/// A JSON NumericDate as whole seconds; `None` if not a number.
fn numeric_date(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    // Float-to-int `as` saturates; JSON has no NaN or infinities.
    n.as_f64().map(|f| f.floor() as i64)
}

fn optional_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => numeric_date(v)
            .map(Some)
            .ok_or(JwtError::Malformed("a time claim is not a number")),
    }
}

fn optional_string<'a>(
    claims: &'a Map<String, Value>,
    name: &str,
    malformed: &'static str,
) -> Result<Option<&'a str>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwtError::Malformed(malformed)),
    }
}

/// A string or array of strings as a list; `None` if it is neither.
fn string_list(value: &Value, split_spaces: bool) -> Option<Vec<String>> {
    match value {
        Value::String(s) if split_spaces => {
            Some(s.split_ascii_whitespace().map(str::to_owned).collect())
        }
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn check_audience(claims: &Map<String, Value>, audience: &[String]) -> Result<(), JwtError> {
    if audience.is_empty() {
        return Ok(());
    }
    let allowed = |candidate: &str| audience.iter().any(|a| a == candidate);
    match claims.get("aud") {
        Some(Value::String(aud)) if allowed(aud) => Ok(()),
        Some(Value::Array(auds)) if auds.iter().filter_map(Value::as_str).any(allowed) => Ok(()),
        Some(_) => Err(JwtError::WrongAudience),
        None => match claims.get("client_id") {
            Some(Value::String(client_id)) if allowed(client_id) => Ok(()),
            _ => Err(JwtError::WrongAudience),
        },
    }
}

pub(crate) fn check(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<CheckedClaims, JwtError> {
    let expires_at = match claims.get("exp") {
        None => return Err(JwtError::Malformed("the token has no exp claim")),
        Some(v) => numeric_date(v).ok_or(JwtError::Malformed("a time claim is not a number"))?,
    };
    if now >= expires_at.saturating_add(rules.skew) {
        return Err(JwtError::Expired);
    }
    let latest_start = now.saturating_add(rules.skew);
    if optional_date(claims, "nbf")?.is_some_and(|nbf| nbf > latest_start) {
        return Err(JwtError::NotYetValid);
    }
    if optional_date(claims, "iat")?.is_some_and(|iat| iat > latest_start) {
        return Err(JwtError::IssuedInFuture);
    }
    check_audience(claims, rules.audience)?;
    let token_use = optional_string(claims, "token_use", "token_use is not a string")?;
    if let Some(required) = rules.token_use
        && token_use != Some(required)
    {
        return Err(JwtError::WrongTokenUse);
    }
    let subject = optional_string(claims, "sub", "sub is not a string")?;
    let scopes = match (claims.get("scope"), claims.get("scp")) {
        (Some(v), _) | (None, Some(v)) => {
            string_list(v, true).ok_or(JwtError::Malformed("scope is not a string or list"))?
        }
        (None, None) => Vec::new(),
    };
    let groups = match claims.get("cognito:groups") {
        None => Vec::new(),
        Some(v) => string_list(v, false).ok_or(JwtError::Malformed(
            "cognito:groups is not a list of strings",
        ))?,
    };
    Ok(CheckedClaims {
        subject: subject.map(str::to_owned),
        scopes,
        groups,
        token_use: token_use.map(str::to_owned),
        expires_at,
    })
}

/// A claim value as API Gateway's JWT authorizer hands it to integrations: always a string.
/// Strings as is, numbers in decimal (integral floats without a fraction), booleans as
/// `true`/`false`, arrays Go-style as `[a b]`, objects as compact JSON, `null` as `null`.
/// Longest principal taken from a claim; a longer value names no principal.
const MAX_PRINCIPAL_BYTES: usize = 1024;

/// The principal named by claim `name`: a non-empty string or an integer (in decimal); any
/// other value, or none, names no principal.
pub(crate) fn principal(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let text = match claims.get(name)? {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= MAX_PRINCIPAL_BYTES).then_some(text)
}

pub(crate) fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => number_text(n),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(claim_text).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(_) => value.to_string(),
    }
}

fn number_text(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn table() {
        let web = vec!["web".to_owned(), "mobile".to_owned()];
        let none: Vec<String> = Vec::new();
        let exp = NOW + 3600;
        let base = ClaimRules {
            audience: &web,
            token_use: None,
            skew: 60,
        };
        let any_aud = ClaimRules {
            audience: &none,
            ..base
        };
        let access = ClaimRules {
            token_use: Some("access"),
            ..any_aud
        };
        type Case<'a> = (&'a str, Value, ClaimRules<'a>, Result<(), JwtError>);
        let cases: Vec<Case> = vec![
            (
                "aud string ok",
                json!({"exp": exp, "aud": "web"}),
                base,
                Ok(()),
            ),
            (
                "aud array one matches",
                json!({"exp": exp, "aud": ["x", "mobile"]}),
                base,
                Ok(()),
            ),
            (
                "aud wrong",
                json!({"exp": exp, "aud": "other"}),
                base,
                Err(JwtError::WrongAudience),
            ),
            (
                "aud empty array",
                json!({"exp": exp, "aud": []}),
                base,
                Err(JwtError::WrongAudience),
            ),
            (
                "aud number",
                json!({"exp": exp, "aud": 5}),
                base,
                Err(JwtError::WrongAudience),
            ),
            (
                "aud null",
                json!({"exp": exp, "aud": null}),
                base,
                Err(JwtError::WrongAudience),
            ),
            (
                "aud wrong, client_id ok: aud wins",
                json!({"exp": exp, "aud": "x", "client_id": "web"}),
                base,
                Err(JwtError::WrongAudience),
            ),
            (
                "aud absent, client_id ok",
                json!({"exp": exp, "client_id": "web"}),
                base,
                Ok(()),
            ),
            (
                "aud absent, client_id wrong",
                json!({"exp": exp, "client_id": "nope"}),
                base,
                Err(JwtError::WrongAudience),
            ),
            (
                "aud absent, client_id absent",
                json!({"exp": exp}),
                base,
                Err(JwtError::WrongAudience),
            ),
            (
                "aud absent, client_id array",
                json!({"exp": exp, "client_id": ["web"]}),
                base,
                Err(JwtError::WrongAudience),
            ),
            (
                "no audience configured",
                json!({"exp": exp, "aud": "anything"}),
                any_aud,
                Ok(()),
            ),
            (
                "exp missing",
                json!({"aud": "web"}),
                base,
                Err(JwtError::Malformed("")),
            ),
            (
                "exp string",
                json!({"exp": "9999999999", "aud": "web"}),
                base,
                Err(JwtError::Malformed("")),
            ),
            (
                "exp past beyond skew",
                json!({"exp": NOW - 61, "aud": "web"}),
                base,
                Err(JwtError::Expired),
            ),
            (
                "exp exactly at skew edge",
                json!({"exp": NOW - 60, "aud": "web"}),
                base,
                Err(JwtError::Expired),
            ),
            (
                "exp past within skew",
                json!({"exp": NOW - 59, "aud": "web"}),
                base,
                Ok(()),
            ),
            (
                "exp float",
                json!({"exp": (NOW + 10) as f64 + 0.5, "aud": "web"}),
                base,
                Ok(()),
            ),
            (
                "exp huge u64",
                json!({"exp": u64::MAX, "aud": "web"}),
                base,
                Ok(()),
            ),
            (
                "exp negative",
                json!({"exp": -1, "aud": "web"}),
                base,
                Err(JwtError::Expired),
            ),
            (
                "nbf future beyond skew",
                json!({"exp": exp, "nbf": NOW + 61, "aud": "web"}),
                base,
                Err(JwtError::NotYetValid),
            ),
            (
                "nbf future within skew",
                json!({"exp": exp, "nbf": NOW + 60, "aud": "web"}),
                base,
                Ok(()),
            ),
            (
                "nbf bool",
                json!({"exp": exp, "nbf": true, "aud": "web"}),
                base,
                Err(JwtError::Malformed("")),
            ),
            (
                "iat future beyond skew",
                json!({"exp": exp, "iat": NOW + 3000, "aud": "web"}),
                base,
                Err(JwtError::IssuedInFuture),
            ),
            (
                "iat past",
                json!({"exp": exp, "iat": NOW - 3000, "aud": "web"}),
                base,
                Ok(()),
            ),
            (
                "token_use ok",
                json!({"exp": exp, "token_use": "access"}),
                access,
                Ok(()),
            ),
            (
                "token_use wrong",
                json!({"exp": exp, "token_use": "id"}),
                access,
                Err(JwtError::WrongTokenUse),
            ),
            (
                "token_use missing",
                json!({"exp": exp}),
                access,
                Err(JwtError::WrongTokenUse),
            ),
            (
                "token_use not checked",
                json!({"exp": exp, "token_use": "id"}),
                any_aud,
                Ok(()),
            ),
            (
                "token_use number",
                json!({"exp": exp, "token_use": 1}),
                any_aud,
                Err(JwtError::Malformed("")),
            ),
            (
                "sub number",
                json!({"exp": exp, "sub": 1}),
                any_aud,
                Err(JwtError::Malformed("")),
            ),
            (
                "scope number",
                json!({"exp": exp, "scope": 1}),
                any_aud,
                Err(JwtError::Malformed("")),
            ),
            (
                "groups object",
                json!({"exp": exp, "cognito:groups": {}}),
                any_aud,
                Err(JwtError::Malformed("")),
            ),
            (
                "groups mixed",
                json!({"exp": exp, "cognito:groups": ["a", 1]}),
                any_aud,
                Err(JwtError::Malformed("")),
            ),
        ];
        for (name, claims, rules, want) in cases {
            let got = check(&obj(claims), &rules, NOW).map(|_| ());
            match (&got, &want) {
                (Err(JwtError::Malformed(_)), Err(JwtError::Malformed(_))) => {}
                _ => assert_eq!(got, want, "{name}"),
            }
        }
    }

    #[test]
    fn extraction() {
        let rules = ClaimRules {
            audience: &[],
            token_use: None,
            skew: 0,
        };
        let got = check(
            &obj(json!({"exp": NOW + 5, "sub": "u1", "scope": "openid  chat/write ", "scp": ["ignored"],
                        "cognito:groups": ["admins", "members"], "token_use": "access"})),
            &rules,
            NOW,
        )
        .unwrap();
        assert_eq!(
            got,
            CheckedClaims {
                subject: Some("u1".into()),
                scopes: vec!["openid".into(), "chat/write".into()],
                groups: vec!["admins".into(), "members".into()],
                token_use: Some("access".into()),
                expires_at: NOW + 5,
            }
        );
        let scp_array = check(
            &obj(json!({"exp": NOW + 5, "scp": ["a", "b c"]})),
            &rules,
            NOW,
        )
        .unwrap();
        assert_eq!(scp_array.scopes, ["a", "b c"]);
        let scp_string = check(&obj(json!({"exp": NOW + 5, "scp": "a b"})), &rules, NOW).unwrap();
        assert_eq!(scp_string.scopes, ["a", "b"]);
        let group_string = check(
            &obj(json!({"exp": NOW + 5, "cognito:groups": "solo"})),
            &rules,
            NOW,
        )
        .unwrap();
        assert_eq!(group_string.groups, ["solo"]);
        let bare = check(&obj(json!({"exp": NOW + 5})), &rules, NOW).unwrap();
        assert!(bare.scopes.is_empty() && bare.groups.is_empty() && bare.subject.is_none());
    }

    #[test]
    fn claim_text_is_go_like() {
        let cases = [
            (json!("s"), "s"),
            (json!(1_700_000_000), "1700000000"),
            (json!(-3), "-3"),
            (json!(1.5), "1.5"),
            (json!(1_700_000_000.0), "1700000000"),
            (json!(true), "true"),
            (json!(null), "null"),
            (json!(["admins", "editors"]), "[admins editors]"),
            (json!([]), "[]"),
            (json!([1, ["a", "b"]]), "[1 [a b]]"),
            (json!({"a": [1, "x"]}), r#"{"a":[1,"x"]}"#),
        ];
        for (value, want) in cases {
            assert_eq!(claim_text(&value), want, "{value}");
        }
    }
}
