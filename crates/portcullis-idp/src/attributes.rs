//! Which user attributes exist in a pool, and who may write them.
//!
//! A pool's schema is the OIDC standard attributes Cognito has (`name` … `updated_at`), the
//! two verification flags `email_verified` and `phone_number_verified`, and the `custom:NAME`
//! attributes the pool declares (`[pools.P.custom_attributes]`). Nothing else can be stored:
//! not an undeclared `custom:` name, not `sub`, and not the name of any token claim (`iss`,
//! `aud`, `token_use`, `amr`, `cognito:*`, …), which could otherwise end up in ID tokens.
//!
//! * Users signing up may write the standard attributes and every declared custom one.
//! * Users changing their own attributes may write the standard ones and the mutable custom
//!   ones; changing `email` (or `phone_number`) unverifies it.
//! * Neither may write a verification flag: `email_verified` becomes true only when a code
//!   sent to the email address comes back.
//! * Administrators (the admin API, the CLI) may also write the verification flags.
//!
//! [`token_claims`] is the read side: what of the stored attributes may appear in an ID token
//! or `userInfo`, whatever rows an older version stored.

use std::collections::BTreeMap;

use portcullis_config::Pool;

/// The OIDC standard attributes of a Cognito pool that users may write (`sub` excepted).
pub const STANDARD: [&str; 17] = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "address",
    "updated_at",
];

/// Set only by a proven code or an administrator.
pub const VERIFICATION_FLAGS: [&str; 2] = ["email_verified", "phone_number_verified"];

/// Most attributes in one request (17 standard + 2 flags + at most 50 custom ones fit).
pub const MAX_ATTRIBUTES_PER_REQUEST: usize = 100;
/// Longest value of any attribute, in characters (Cognito: 2048).
pub const MAX_VALUE_CHARS: usize = 2048;

/// Who writes attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A user signing up (`SignUp`).
    SignUp,
    /// A signed-in user changing their own attributes (`UpdateUserAttributes`).
    User,
    /// An administrator (the admin API, the CLI).
    Admin,
}

/// Why attributes are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// Not in the pool's schema: an undeclared `custom:` name, `sub`, a token claim.
    #[error(
        "Attributes did not conform to the schema: Type for attribute {{{0}}} could not be determined"
    )]
    Unknown(String),
    /// In the schema, but this writer may not write it.
    #[error("A client attempted to write unauthorized attribute")]
    Unauthorized(String),
    #[error(
        "Attributes did not conform to the schema: {name}: String must be no longer than {max} characters"
    )]
    TooLong { name: String, max: usize },
    #[error("Too many attributes: at most {MAX_ATTRIBUTES_PER_REQUEST} in one request")]
    TooMany,
}

impl AttributeError {
    /// The Cognito error type of the JSON API's answer.
    pub fn cognito_type(&self) -> &'static str {
        match self {
            AttributeError::Unauthorized(_) => "NotAuthorizedException",
            _ => "InvalidParameterException",
        }
    }
}

/// What an attribute name is in a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Standard,
    VerificationFlag,
    Custom { mutable: bool, max_length: usize },
    Unknown,
}

fn kind(pool: &Pool, name: &str) -> Kind {
    if STANDARD.contains(&name) {
        return Kind::Standard;
    }
    if VERIFICATION_FLAGS.contains(&name) {
        return Kind::VerificationFlag;
    }
    match name
        .strip_prefix("custom:")
        .and_then(|n| pool.custom_attributes.get(n))
    {
        Some(c) => Kind::Custom {
            mutable: c.mutable,
            max_length: usize::try_from(c.max_length)
                .unwrap_or(MAX_VALUE_CHARS)
                .min(MAX_VALUE_CHARS),
        },
        None => Kind::Unknown,
    }
}

/// Checks attributes `writer` wants to write in `pool`: every name in the schema, writable by
/// `writer`, every value within its length.
pub fn check_write(
    pool: &Pool,
    writer: Writer,
    attributes: &BTreeMap<String, String>,
) -> Result<(), AttributeError> {
    if attributes.len() > MAX_ATTRIBUTES_PER_REQUEST {
        return Err(AttributeError::TooMany);
    }
    for (name, value) in attributes {
        let max = match kind(pool, name) {
            Kind::Unknown => return Err(AttributeError::Unknown(name.clone())),
            Kind::VerificationFlag if writer != Writer::Admin => {
                return Err(AttributeError::Unauthorized(name.clone()));
            }
            Kind::VerificationFlag => {
                if value != "true" && value != "false" {
                    return Err(AttributeError::Unknown(name.clone()));
                }
                MAX_VALUE_CHARS
            }
            Kind::Custom { mutable: false, .. } if writer == Writer::User => {
                return Err(AttributeError::Unauthorized(name.clone()));
            }
            Kind::Custom { max_length, .. } => max_length,
            Kind::Standard => MAX_VALUE_CHARS,
        };
        if value.chars().count() > max {
            return Err(AttributeError::TooLong {
                name: name.clone(),
                max,
            });
        }
    }
    Ok(())
}

/// `current` with `changes` applied by a user (already checked with [`check_write`]): a
/// changed `email` or `phone_number` is no longer verified.
pub fn apply_user_changes(
    current: &BTreeMap<String, String>,
    changes: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = current.clone();
    for (name, value) in changes {
        let changed = current.get(name) != Some(value);
        if changed {
            match name.as_str() {
                "email" => {
                    out.insert("email_verified".into(), "false".into());
                }
                "phone_number" => {
                    out.insert("phone_number_verified".into(), "false".into());
                }
                _ => {}
            }
        }
        out.insert(name.clone(), value.clone());
    }
    out
}

/// Claims an ID token and `userInfo` never take from stored attributes: they are the
/// provider's own (or name another principal).
pub fn is_reserved_claim(name: &str) -> bool {
    const RESERVED: [&str; 22] = [
        "sub",
        "iss",
        "aud",
        "azp",
        "exp",
        "iat",
        "nbf",
        "jti",
        "auth_time",
        "amr",
        "acr",
        "nonce",
        "at_hash",
        "c_hash",
        "token_use",
        "origin_jti",
        "event_id",
        "client_id",
        "username",
        "scope",
        "version",
        "identities",
    ];
    RESERVED.contains(&name) || name.starts_with("cognito:") || name.starts_with("dev:")
}

/// The stored attributes that may become claims: every attribute except reserved claim
/// names, whatever an older version let into the store.
pub fn token_claims(
    attributes: &BTreeMap<String, String>,
) -> impl Iterator<Item = (&String, &String)> {
    attributes
        .iter()
        .filter(|(name, _)| !is_reserved_claim(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_config::CustomAttribute;

    fn pool() -> Pool {
        let config = portcullis_config::load_str(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
             [pools.p.custom_attributes]\ntier = { mutable = false }\nteam = {}\nbio = { max_length = 5 }\n",
            "t.toml",
            &|_| None,
        )
        .unwrap();
        let pool = config.pools["p"].clone();
        assert_eq!(
            pool.custom_attributes["tier"],
            CustomAttribute {
                mutable: false,
                max_length: 2048
            }
        );
        pool
    }

    fn one(name: &str, value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(name.to_owned(), value.to_owned())])
    }

    /// name, value, and what SignUp, User and Admin get.
    type Row<'a> = (&'a str, &'a str, [Result<(), AttributeError>; 3]);

    #[test]
    fn who_may_write_what() {
        use AttributeError::{Unauthorized as No, Unknown as Schema};
        use Writer::{Admin, SignUp, User};
        let pool = pool();
        let ok = Ok(());
        let no = |n: &str| Err(No(n.to_owned()));
        let schema = |n: &str| Err(Schema(n.to_owned()));
        #[rustfmt::skip]
        let table: Vec<Row<'_>> = vec![
            // name, value, [SignUp, User, Admin]
            ("email", "a@example.com", [ok.clone(), ok.clone(), ok.clone()]),
            ("name", "Ann", [ok.clone(), ok.clone(), ok.clone()]),
            ("updated_at", "1700000000", [ok.clone(), ok.clone(), ok.clone()]),
            ("email_verified", "true", [no("email_verified"), no("email_verified"), ok.clone()]),
            ("email_verified", "yes", [no("email_verified"), no("email_verified"), schema("email_verified")]),
            ("phone_number_verified", "true", [no("phone_number_verified"), no("phone_number_verified"), ok.clone()]),
            ("custom:team", "blue", [ok.clone(), ok.clone(), ok.clone()]),
            ("custom:tier", "gold", [ok.clone(), no("custom:tier"), ok.clone()]),
            ("custom:undeclared", "x", [schema("custom:undeclared"), schema("custom:undeclared"), schema("custom:undeclared")]),
            ("dev:custom:tier", "x", [schema("dev:custom:tier"), schema("dev:custom:tier"), schema("dev:custom:tier")]),
            ("tier", "x", [schema("tier"), schema("tier"), schema("tier")]),
            ("sub", "x", [schema("sub"), schema("sub"), schema("sub")]),
            ("iss", "https://evil", [schema("iss"), schema("iss"), schema("iss")]),
            ("aud", "web", [schema("aud"), schema("aud"), schema("aud")]),
            ("token_use", "access", [schema("token_use"), schema("token_use"), schema("token_use")]),
            ("amr", "mfa", [schema("amr"), schema("amr"), schema("amr")]),
            ("auth_time", "1", [schema("auth_time"), schema("auth_time"), schema("auth_time")]),
            ("exp", "9999999999", [schema("exp"), schema("exp"), schema("exp")]),
            ("identities", "[]", [schema("identities"), schema("identities"), schema("identities")]),
            ("cognito:groups", "admins", [schema("cognito:groups"), schema("cognito:groups"), schema("cognito:groups")]),
            ("cognito:username", "admin", [schema("cognito:username"), schema("cognito:username"), schema("cognito:username")]),
            ("Email", "a@example.com", [schema("Email"), schema("Email"), schema("Email")]),
        ];
        for (name, value, expected) in table {
            for (writer, want) in [SignUp, User, Admin].into_iter().zip(expected) {
                assert_eq!(
                    check_write(&pool, writer, &one(name, value)),
                    want,
                    "{writer:?} writes {name}={value}"
                );
            }
        }
    }

    #[test]
    fn lengths_and_counts_are_bounded() {
        let pool = pool();
        let long = "x".repeat(MAX_VALUE_CHARS);
        assert_eq!(
            check_write(&pool, Writer::SignUp, &one("name", &long)),
            Ok(())
        );
        let longer = "é".repeat(MAX_VALUE_CHARS + 1);
        assert_eq!(
            check_write(&pool, Writer::Admin, &one("name", &longer)),
            Err(AttributeError::TooLong {
                name: "name".into(),
                max: MAX_VALUE_CHARS
            })
        );
        assert_eq!(
            check_write(&pool, Writer::User, &one("custom:bio", "12345")),
            Ok(())
        );
        assert_eq!(
            check_write(&pool, Writer::User, &one("custom:bio", "123456")),
            Err(AttributeError::TooLong {
                name: "custom:bio".into(),
                max: 5
            })
        );
        let many: BTreeMap<String, String> = (0..=MAX_ATTRIBUTES_PER_REQUEST)
            .map(|i| (format!("custom:a{i}"), String::new()))
            .collect();
        assert_eq!(
            check_write(&pool, Writer::Admin, &many),
            Err(AttributeError::TooMany)
        );
    }

    #[test]
    fn errors_speak_cognito() {
        let e = AttributeError::Unknown("custom:undeclared".into());
        assert_eq!(e.cognito_type(), "InvalidParameterException");
        assert_eq!(
            e.to_string(),
            "Attributes did not conform to the schema: Type for attribute {custom:undeclared} could not be determined"
        );
        let e = AttributeError::Unauthorized("email_verified".into());
        assert_eq!(e.cognito_type(), "NotAuthorizedException");
        assert_eq!(
            e.to_string(),
            "A client attempted to write unauthorized attribute"
        );
    }

    #[test]
    fn changing_email_or_phone_unverifies_it() {
        let current = BTreeMap::from([
            ("email".to_owned(), "a@example.com".to_owned()),
            ("email_verified".to_owned(), "true".to_owned()),
            ("phone_number".to_owned(), "+15550100".to_owned()),
            ("phone_number_verified".to_owned(), "true".to_owned()),
        ]);
        let same = apply_user_changes(&current, &one("email", "a@example.com"));
        assert_eq!(same, current);
        let new_email = apply_user_changes(&current, &one("email", "b@example.com"));
        assert_eq!(new_email["email"], "b@example.com");
        assert_eq!(new_email["email_verified"], "false");
        assert_eq!(new_email["phone_number_verified"], "true");
        let new_phone = apply_user_changes(&current, &one("phone_number", "+15550199"));
        assert_eq!(new_phone["phone_number_verified"], "false");
        assert_eq!(new_phone["email_verified"], "true");
        let name = apply_user_changes(&current, &one("name", "Ann"));
        assert_eq!(name["name"], "Ann");
        assert_eq!(name["email_verified"], "true");
    }

    #[test]
    fn reserved_claims_never_come_from_attributes() {
        let stored: BTreeMap<String, String> = [
            "iss",
            "aud",
            "sub",
            "token_use",
            "amr",
            "exp",
            "iat",
            "auth_time",
            "cognito:groups",
            "cognito:username",
            "dev:custom:x",
            "identities",
            "email",
            "email_verified",
            "custom:tier",
            "name",
        ]
        .into_iter()
        .map(|n| (n.to_owned(), "v".to_owned()))
        .collect();
        let kept: Vec<&str> = token_claims(&stored).map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["custom:tier", "email", "email_verified", "name"]);
    }
}
