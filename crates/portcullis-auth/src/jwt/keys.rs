//! Public signing keys: the JWK shape issuers publish ([`Jwk`], [`Jwks`]), the in-process
//! [`KeySource`] seam, and keys pre-parsed for verification ([`KeySet`]).
//!
//! A JWK becomes a [`VerifyingKey`] once, when its JWKS is loaded: the key material is decoded,
//! checked (RSA 2048–8192 bits, EC points of the right length for their curve, Ed25519 only)
//! and parsed by aws-lc-rs for every algorithm it may verify, so a token costs one signature
//! check and no key parsing. Keys that cannot be used are skipped, never fatal for the set:
//! `use` other than `sig`, an unknown `kty`/`crv`/`alg` (HMAC `oct` keys included), bad material.

use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::JwtError;

/// Longest `kid` looked up (longer ones are rejected without a JWKS refresh).
pub(crate) const MAX_KID_BYTES: usize = 256;

/// The JWS algorithms a token may use. HMAC (`HS256`…) and `none` are deliberately absent: the
/// gateway never holds shared secrets, so accepting them could only mean algorithm confusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

impl Algorithm {
    /// The algorithm named by a JOSE `alg` value (case-sensitive, as RFC 7518 registers it).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            Self::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Self::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Self::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
            Self::EdDSA => &signature::ED25519,
        }
    }
}

/// One public key as published in a JWKS (RFC 7517). Only the members the gateway uses are
/// kept; others (`x5c`, `key_ops`, private members) are ignored when parsing. Binary members are
/// base64url without padding, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

impl Jwk {
    /// An RSA signing key from its big-endian modulus and exponent.
    pub fn rsa(kid: impl Into<String>, alg: Algorithm, n: &[u8], e: &[u8]) -> Self {
        Jwk {
            kty: "RSA".into(),
            kid: Some(kid.into()),
            key_use: Some("sig".into()),
            alg: Some(alg.name().into()),
            n: Some(URL_SAFE_NO_PAD.encode(n)),
            e: Some(URL_SAFE_NO_PAD.encode(e)),
            ..Jwk::default()
        }
    }

    /// An EC signing key from its affine coordinates; the curve follows from `alg`
    /// (`ES256` → P-256, `ES384` → P-384, `ES512` → P-521).
    pub fn ec(kid: impl Into<String>, alg: Algorithm, x: &[u8], y: &[u8]) -> Self {
        let crv = match alg {
            Algorithm::ES384 => "P-384",
            Algorithm::ES512 => "P-521",
            _ => "P-256",
        };
        Jwk {
            kty: "EC".into(),
            kid: Some(kid.into()),
            key_use: Some("sig".into()),
            alg: Some(alg.name().into()),
            crv: Some(crv.into()),
            x: Some(URL_SAFE_NO_PAD.encode(x)),
            y: Some(URL_SAFE_NO_PAD.encode(y)),
            ..Jwk::default()
        }
    }

    /// An Ed25519 signing key from its 32-byte public key.
    pub fn ed25519(kid: impl Into<String>, x: &[u8]) -> Self {
        Jwk {
            kty: "OKP".into(),
            kid: Some(kid.into()),
            key_use: Some("sig".into()),
            alg: Some(Algorithm::EdDSA.name().into()),
            crv: Some("Ed25519".into()),
            x: Some(URL_SAFE_NO_PAD.encode(x)),
            ..Jwk::default()
        }
    }
}

/// A JWK Set document: `{"keys": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// An in-process source of an issuer's current public keys (the built-in identity provider),
/// used instead of fetching its JWKS over HTTP. Called when the verifier first needs the
/// issuer's keys and again whenever a token names a `kid` it does not know (no rate limit: it is
/// a local call; the keys are re-parsed only when the returned list changed). Return retired
/// keys for as long as tokens signed with them may be live.
pub trait KeySource: Send + Sync {
    fn jwks(&self) -> Vec<Jwk>;
}

/// Parses a JWKS document leniently: the document must be a JSON object with a `keys` array;
/// elements that are not JWK-shaped are skipped (they are filtered again by [`KeySet::build`]).
pub(crate) fn parse_jwks(body: &[u8]) -> Result<Vec<Jwk>, &'static str> {
    #[derive(Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|_| "the JWKS is not {\"keys\": [...]}")?;
    Ok(raw
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec(Algorithm),
    Ed25519,
}

/// A public key ready to verify signatures: one parsed key per algorithm it may be used with.
pub(crate) struct VerifyingKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's own `alg`, when it has one: tokens must use exactly that algorithm.
    pinned: Option<Algorithm>,
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("pinned", &self.pinned)
            .finish_non_exhaustive()
    }
}

fn b64(value: Option<&String>, missing: &'static str) -> Result<Vec<u8>, &'static str> {
    let value = value.ok_or(missing)?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| "key material is not base64url")
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

impl VerifyingKey {
    pub(crate) fn from_jwk(jwk: &Jwk) -> Result<Self, &'static str> {
        if let Some(key_use) = &jwk.key_use
            && key_use != "sig"
        {
            return Err("use is not \"sig\"");
        }
        let pinned = match &jwk.alg {
            None => None,
            Some(name) => Some(Algorithm::from_name(name).ok_or("unsupported alg")?),
        };
        let (kind, algorithms, material): (KeyKind, Vec<Algorithm>, Vec<u8>) =
            match jwk.kty.as_str() {
                "RSA" => {
                    let n = b64(jwk.n.as_ref(), "RSA key without n")?;
                    let e = b64(jwk.e.as_ref(), "RSA key without e")?;
                    let (n, e) = (strip_leading_zeros(&n), strip_leading_zeros(&e));
                    let bits = match n.first() {
                        Some(top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
                        None => 0,
                    };
                    if !(2048..=8192).contains(&bits) {
                        return Err("RSA modulus must be 2048 to 8192 bits");
                    }
                    if e.is_empty() || e.len() > 8 {
                        return Err("RSA exponent out of range");
                    }
                    let algorithms = match pinned {
                        Some(alg) if RSA_ALGORITHMS.contains(&alg) => vec![alg],
                        Some(_) => return Err("RSA key with a non-RSA alg"),
                        None => RSA_ALGORITHMS.to_vec(),
                    };
                    (KeyKind::Rsa, algorithms, der_rsa_public_key(n, e))
                }
                "EC" => {
                    let (alg, len) = match jwk.crv.as_deref() {
                        Some("P-256") => (Algorithm::ES256, 32),
                        Some("P-384") => (Algorithm::ES384, 48),
                        Some("P-521") => (Algorithm::ES512, 66),
                        _ => return Err("unsupported EC curve"),
                    };
                    if pinned.is_some_and(|p| p != alg) {
                        return Err("EC key alg does not match its curve");
                    }
                    let x = b64(jwk.x.as_ref(), "EC key without x")?;
                    let y = b64(jwk.y.as_ref(), "EC key without y")?;
                    if x.len() != len || y.len() != len {
                        return Err("EC coordinates have the wrong length for the curve");
                    }
                    let mut point = Vec::with_capacity(1 + 2 * len);
                    point.push(0x04);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    (KeyKind::Ec(alg), vec![alg], point)
                }
                "OKP" => {
                    if jwk.crv.as_deref() != Some("Ed25519") {
                        return Err("unsupported OKP curve");
                    }
                    if pinned.is_some_and(|p| p != Algorithm::EdDSA) {
                        return Err("Ed25519 key alg is not EdDSA");
                    }
                    let x = b64(jwk.x.as_ref(), "OKP key without x")?;
                    if x.len() != 32 {
                        return Err("Ed25519 key must be 32 bytes");
                    }
                    (KeyKind::Ed25519, vec![Algorithm::EdDSA], x)
                }
                _ => return Err("unsupported kty"),
            };
        let parsed = algorithms
            .into_iter()
            .map(|alg| {
                ParsedPublicKey::new(alg.verification(), &material)
                    .map(|key| (alg, key))
                    .map_err(|_| "key material rejected")
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VerifyingKey {
            kid: jwk.kid.clone(),
            kind,
            pinned,
            parsed,
        })
    }

    /// Verifies `signature` over `message` with this key and `alg`. A key of another type than
    /// the algorithm needs, or whose JWK pins another `alg`, is [`JwtError::KeyMismatch`].
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JwtError> {
        if self.pinned.is_some_and(|p| p != alg) {
            return Err(JwtError::KeyMismatch);
        }
        let (_, key) = self
            .parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .ok_or(JwtError::KeyMismatch)?;
        key.verify_sig(message, signature)
            .map_err(|_| JwtError::BadSignature)
    }
}

/// Result of looking a token's `kid` up in a [`KeySet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found(usize),
    NotFound,
    /// No `kid` in the token and more than one key to choose from.
    Ambiguous,
}

/// One issuer's usable keys at one point in time. Replaced as a whole on refresh.
#[derive(Debug)]
pub(crate) struct KeySet {
    /// Changes on every replacement; lets a waiter see that another task already refreshed.
    pub generation: u64,
    /// False until keys were obtained once (a failed first fetch leaves it false).
    pub loaded: bool,
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    pub(crate) fn empty(generation: u64) -> Self {
        KeySet {
            generation,
            loaded: false,
            keys: Vec::new(),
        }
    }

    /// Pre-parses every usable key; unusable ones are skipped and logged at debug level.
    pub(crate) fn build(generation: u64, jwks: &[Jwk], issuer: &str) -> Self {
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(jwks.len());
        for jwk in jwks {
            match VerifyingKey::from_jwk(jwk) {
                Ok(key) => {
                    if key.kid.is_some() && keys.iter().any(|k| k.kid == key.kid) {
                        tracing::debug!(issuer, kid = ?jwk.kid, "duplicate kid in JWKS; keeping the first");
                        continue;
                    }
                    keys.push(key);
                }
                Err(reason) => {
                    let kid = jwk
                        .kid
                        .as_deref()
                        .map(|k| k.chars().take(64).collect::<String>());
                    tracing::debug!(issuer, ?kid, reason, "skipping JWK");
                }
            }
        }
        KeySet {
            generation,
            loaded: true,
            keys,
        }
    }

    pub(crate) fn find(&self, kid: Option<&str>) -> Lookup {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .position(|k| k.kid.as_deref() == Some(kid))
                .map_or(Lookup::NotFound, Lookup::Found),
            None => match self.keys.len() {
                0 => Lookup::NotFound,
                1 => Lookup::Found(0),
                _ => Lookup::Ambiguous,
            },
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<&VerifyingKey> {
        self.keys.get(index)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017) from
/// unsigned big-endian magnitudes without leading zeros.
fn der_rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    der_unsigned_integer(&mut body, n);
    der_unsigned_integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(0x30);
    der_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    // A set high bit would read as negative: prefix a zero byte.
    let pad = magnitude.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_length(out, magnitude.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant = strip_leading_zeros(&bytes);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RsaPublicKeyComponents};

    #[test]
    fn der_encoding_matches_aws_lc() {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let ours = der_rsa_public_key(strip_leading_zeros(&parts.n), strip_leading_zeros(&parts.e));
        assert_eq!(ours, pair.public_key().as_ref());
        // And the SPKI form aws-lc produces wraps exactly these bytes.
        let spki = pair.public_key().as_der().unwrap();
        assert!(spki.as_ref().ends_with(&ours));
    }

    #[test]
    fn der_lengths() {
        let mut out = Vec::new();
        der_length(&mut out, 5);
        der_length(&mut out, 0x80);
        der_length(&mut out, 0x1234);
        assert_eq!(out, [5, 0x81, 0x80, 0x82, 0x12, 0x34]);
        let mut int = Vec::new();
        der_unsigned_integer(&mut int, &[0x80]);
        der_unsigned_integer(&mut int, &[0x01, 0x00, 0x01]);
        assert_eq!(int, [2, 2, 0, 0x80, 2, 3, 1, 0, 1]);
    }

    fn rsa_jwk() -> Jwk {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        Jwk::rsa("r", Algorithm::RS256, &parts.n, &parts.e)
    }

    #[test]
    fn jwk_filtering() {
        let good = rsa_jwk();
        assert!(VerifyingKey::from_jwk(&good).is_ok());
        let unpinned = Jwk {
            alg: None,
            ..good.clone()
        };
        let key = VerifyingKey::from_jwk(&unpinned).unwrap();
        assert_eq!(key.parsed.len(), 6);

        let p256 = Jwk::ec("e", Algorithm::ES256, &[1; 32], &[2; 32]);
        let cases: Vec<(&str, Jwk)> = vec![
            (
                "enc use",
                Jwk {
                    key_use: Some("enc".into()),
                    ..good.clone()
                },
            ),
            (
                "encryption alg",
                Jwk {
                    alg: Some("RSA-OAEP".into()),
                    ..good.clone()
                },
            ),
            (
                "hmac alg on RSA",
                Jwk {
                    alg: Some("HS256".into()),
                    ..good.clone()
                },
            ),
            (
                "EC alg on RSA",
                Jwk {
                    alg: Some("ES256".into()),
                    ..good.clone()
                },
            ),
            (
                "no n",
                Jwk {
                    n: None,
                    ..good.clone()
                },
            ),
            (
                "short modulus",
                Jwk {
                    n: Some(URL_SAFE_NO_PAD.encode([0xff; 128])),
                    ..good.clone()
                },
            ),
            (
                "padded base64",
                Jwk {
                    e: Some("AQAB=".into()),
                    ..good.clone()
                },
            ),
            (
                "empty exponent",
                Jwk {
                    e: Some(String::new()),
                    ..good.clone()
                },
            ),
            (
                "oct key",
                Jwk {
                    kty: "oct".into(),
                    ..Jwk::default()
                },
            ),
            (
                "unknown kty",
                Jwk {
                    kty: "XYZ".into(),
                    ..good.clone()
                },
            ),
            (
                "P-256 with ES384",
                Jwk {
                    alg: Some("ES384".into()),
                    ..p256.clone()
                },
            ),
            (
                "P-256 short x",
                Jwk {
                    x: Some(URL_SAFE_NO_PAD.encode([1; 31])),
                    ..p256.clone()
                },
            ),
            (
                "secp256k1",
                Jwk {
                    crv: Some("secp256k1".into()),
                    ..p256.clone()
                },
            ),
            ("point not on curve", p256.clone()),
            (
                "X25519",
                Jwk {
                    kty: "OKP".into(),
                    crv: Some("X25519".into()),
                    x: Some(URL_SAFE_NO_PAD.encode([9; 32])),
                    ..Jwk::default()
                },
            ),
            (
                "Ed25519 wrong alg",
                Jwk {
                    alg: Some("ES256".into()),
                    ..Jwk::ed25519("d", &[7; 32])
                },
            ),
            ("Ed25519 short", Jwk::ed25519("d", &[7; 31])),
        ];
        for (name, jwk) in cases {
            assert!(
                VerifyingKey::from_jwk(&jwk).is_err(),
                "{name} must be skipped"
            );
        }
    }

    #[test]
    fn parse_jwks_is_lenient_per_key_strict_per_document() {
        let doc = br#"{"keys":[{"kty":"RSA","n":"x","e":"AQAB","kid":"a"}, 7, {"kid":"no kty"}, {"kty":"EC","kid":"b"}]}"#;
        let keys = parse_jwks(doc).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(parse_jwks(b"[]").is_err());
        assert!(parse_jwks(b"{\"keys\": {}}").is_err());
        assert!(parse_jwks(b"not json").is_err());
    }

    #[test]
    fn lookup_rules() {
        let a = Jwk {
            kid: Some("a".into()),
            ..rsa_jwk()
        };
        let b = Jwk {
            kid: Some("b".into()),
            ..rsa_jwk()
        };
        let one = KeySet::build(1, std::slice::from_ref(&a), "iss");
        assert_eq!(one.find(None), Lookup::Found(0));
        assert_eq!(one.find(Some("a")), Lookup::Found(0));
        assert_eq!(one.find(Some("b")), Lookup::NotFound);
        let two = KeySet::build(2, &[a.clone(), b, a], "iss");
        assert_eq!(two.len(), 2, "duplicate kid dropped");
        assert_eq!(two.find(None), Lookup::Ambiguous);
        assert_eq!(two.find(Some("b")), Lookup::Found(1));
        assert_eq!(KeySet::build(3, &[], "iss").find(None), Lookup::NotFound);
    }
}
