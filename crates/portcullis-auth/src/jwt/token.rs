//! The JWS compact serialization, parsed without trusting anything in it.
//!
//! `BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)`: exactly three parts,
//! unpadded base64url with canonical trailing bits, a header and payload that are JSON objects,
//! a string `alg` naming an asymmetric or HMAC algorithm (never `none`; which kind an issuer
//! accepts is decided later, from its configuration), an optional string `kid`, no `crit`. The size
//! bound is checked before anything is decoded. Header members that point at keys (`jku`, `jwk`,
//! `x5u`, `x5c`) are ignored: keys only ever come from the issuer's configured JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::JwtError;
use super::hmac::HmacAlgorithm;
use super::keys::Algorithm;

/// A token's `alg`: a public-key signature or a MAC. The issuer's configuration, not the token,
/// says which of the two it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenAlgorithm {
    Signature(Algorithm),
    Mac(HmacAlgorithm),
}

impl TokenAlgorithm {
    fn from_name(name: &str) -> Option<Self> {
        Algorithm::from_name(name)
            .map(Self::Signature)
            .or_else(|| HmacAlgorithm::from_name(name).map(Self::Mac))
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Signature(alg) => alg.name(),
            Self::Mac(alg) => alg.name(),
        }
    }
}

/// The protected header members the verifier uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub alg: TokenAlgorithm,
    pub kid: Option<String>,
}

/// A compact JWS split and decoded, signature not yet checked.
#[derive(Debug)]
pub(crate) struct CompactJws<'a> {
    pub header: Header,
    pub claims: Map<String, Value>,
    /// `header "." payload`, the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub signature: Vec<u8>,
}

fn decode_object(part: &str, what: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed(what))?;
    serde_json::from_slice::<Map<String, Value>>(&bytes).map_err(|_| JwtError::Malformed(what))
}

/// An attacker-chosen `alg`, made safe to show in an error: at most 16 characters, only
/// `[A-Za-z0-9_-]`, others replaced by `?`.
fn sanitize_alg(alg: &str) -> String {
    alg.chars()
        .take(16)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

pub(crate) fn parse(token: &str, max_bytes: usize) -> Result<CompactJws<'_>, JwtError> {
    if token.len() > max_bytes {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed(
            "a JWT has exactly three dot-separated parts",
        ));
    };

    let header = decode_object(header_b64, "the header is not base64url JSON object")?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        _ => return Err(JwtError::Malformed("the header has no string alg")),
    };
    let alg = TokenAlgorithm::from_name(alg)
        .ok_or_else(|| JwtError::UnsupportedAlgorithm(sanitize_alg(alg)))?;
    if header.contains_key("crit") {
        return Err(JwtError::Malformed(
            "critical header parameters are not supported",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(JwtError::Malformed("the header kid is not a string")),
    };

    let claims = decode_object(payload_b64, "the payload is not a base64url JSON object")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JwtError::Malformed("the signature is not base64url"))?;
    if signature.is_empty() {
        return Err(JwtError::Malformed("the signature is empty"));
    }
    let signing_input = token
        .as_bytes()
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(JwtError::Malformed("the token is truncated"))?;
    Ok(CompactJws {
        header: Header { alg, kid },
        claims,
        signing_input,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, payload: &str, sig: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), sig)
    }

    const SIG: &str = "c2ln";

    #[test]
    fn accepts_well_formed() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"iss":"a"}"#,
            SIG,
        );
        let jws = parse(&t, 16_384).unwrap();
        assert_eq!(
            jws.header,
            Header {
                alg: TokenAlgorithm::Signature(Algorithm::RS256),
                kid: Some("k1".into())
            }
        );
        assert_eq!(jws.claims.get("iss"), Some(&Value::String("a".into())));
        assert_eq!(jws.signature, b"sig");
        assert_eq!(jws.signing_input, t.rsplit_once('.').unwrap().0.as_bytes());
        let no_kid = token(r#"{"alg":"EdDSA"}"#, "{}", SIG);
        assert_eq!(parse(&no_kid, 16_384).unwrap().header.kid, None);
    }

    #[test]
    fn rejects_hostile_shapes() {
        let payload = b64(r#"{"iss":"a"}"#);
        let rs = b64(r#"{"alg":"RS256"}"#);
        let cases: Vec<(&str, String, JwtError)> = vec![
            (
                "two parts",
                format!("{rs}.{payload}"),
                JwtError::Malformed(""),
            ),
            (
                "four parts",
                format!("{rs}.{payload}.{SIG}.{SIG}"),
                JwtError::Malformed(""),
            ),
            (
                "JWE five parts",
                format!("{rs}.a.b.c.d"),
                JwtError::Malformed(""),
            ),
            ("empty", String::new(), JwtError::Malformed("")),
            (
                "padded header",
                format!("{}=.{payload}.{SIG}", b64(r#"{"alg":"RS256"}"#)),
                JwtError::Malformed(""),
            ),
            (
                "std base64 chars",
                format!("{rs}.{payload}.ab+/"),
                JwtError::Malformed(""),
            ),
            (
                "bad base64 header",
                format!("!!!.{payload}.{SIG}"),
                JwtError::Malformed(""),
            ),
            (
                "header not JSON",
                format!("{}.{payload}.{SIG}", b64("alg=RS256")),
                JwtError::Malformed(""),
            ),
            (
                "header array",
                format!("{}.{payload}.{SIG}", b64(r#"["RS256"]"#)),
                JwtError::Malformed(""),
            ),
            (
                "no alg",
                token(r#"{"kid":"a"}"#, "{}", SIG),
                JwtError::Malformed(""),
            ),
            (
                "numeric alg",
                token(r#"{"alg":256}"#, "{}", SIG),
                JwtError::Malformed(""),
            ),
            (
                "alg none",
                token(r#"{"alg":"none"}"#, "{}", SIG),
                JwtError::UnsupportedAlgorithm("none".into()),
            ),
            (
                "alg None",
                token(r#"{"alg":"None"}"#, "{}", SIG),
                JwtError::UnsupportedAlgorithm("None".into()),
            ),
            (
                "alg none no sig",
                format!("{}.{payload}.", b64(r#"{"alg":"none"}"#)),
                JwtError::UnsupportedAlgorithm("none".into()),
            ),
            (
                "lowercase hs256",
                token(r#"{"alg":"hs256"}"#, "{}", SIG),
                JwtError::UnsupportedAlgorithm("hs256".into()),
            ),
            (
                "HS1",
                token(r#"{"alg":"HS1"}"#, "{}", SIG),
                JwtError::UnsupportedAlgorithm("HS1".into()),
            ),
            (
                "lowercase rs256",
                token(r#"{"alg":"rs256"}"#, "{}", SIG),
                JwtError::UnsupportedAlgorithm("rs256".into()),
            ),
            (
                "hostile alg",
                token(r#"{"alg":"RS256\n<script>alert(1)</script>"}"#, "{}", SIG),
                JwtError::UnsupportedAlgorithm("RS256??script?al".into()),
            ),
            (
                "crit",
                token(r#"{"alg":"RS256","crit":["b64"],"b64":false}"#, "{}", SIG),
                JwtError::Malformed(""),
            ),
            (
                "numeric kid",
                token(r#"{"alg":"RS256","kid":1}"#, "{}", SIG),
                JwtError::Malformed(""),
            ),
            (
                "payload not JSON",
                format!("{rs}.{}.{SIG}", b64("hello")),
                JwtError::Malformed(""),
            ),
            (
                "payload string",
                format!("{rs}.{}.{SIG}", b64(r#""iss""#)),
                JwtError::Malformed(""),
            ),
            (
                "bad base64 payload",
                format!("{rs}.***.{SIG}"),
                JwtError::Malformed(""),
            ),
            (
                "empty signature",
                format!("{rs}.{payload}."),
                JwtError::Malformed(""),
            ),
            (
                "bad base64 signature",
                format!("{rs}.{payload}.a"),
                JwtError::Malformed(""),
            ),
        ];
        for (name, input, want) in cases {
            let got = parse(&input, 16_384).map(|_| ()).unwrap_err();
            match (&got, &want) {
                (JwtError::Malformed(_), JwtError::Malformed(_)) => {}
                _ => assert_eq!(got, want, "{name}"),
            }
        }
    }

    #[test]
    fn size_is_bounded_before_decoding() {
        let huge = "a".repeat(16_385);
        assert_eq!(parse(&huge, 16_384).unwrap_err(), JwtError::TooLarge);
        let t = token(r#"{"alg":"RS256"}"#, "{}", SIG);
        assert_eq!(parse(&t, t.len() - 1).unwrap_err(), JwtError::TooLarge);
        assert!(parse(&t, t.len()).is_ok());
    }
}
