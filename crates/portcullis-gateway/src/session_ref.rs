//! The built-in identity provider's session a connection was admitted with, and the keys the
//! connection registry files it under so a revocation finds its connections without a scan.

/// The built-in identity provider's session a connection was admitted with, so a revocation
/// (sign-out, revoked token, disabled user) can close it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub issuer: String,
    pub sub: String,
    /// The `origin_jti` claim: the sign-in every token of this session descends from.
    pub origin_jti: Option<String>,
    /// When the token was issued (unix seconds).
    pub iat: i64,
}

/// One key of the registry's session index. A revocation names exactly one key (a user of a
/// pool, or one sign-in of a pool); a session is filed under its user and, when the token has
/// one, its sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionKey {
    /// Every session of a user (`sub`) of the pool `issuer`.
    User { issuer: String, sub: String },
    /// The session that descends from the sign-in `origin_jti` of the pool `issuer`.
    Origin { issuer: String, origin_jti: String },
}

impl SessionRef {
    /// The index keys this session is filed under: its user, and its sign-in when known.
    pub fn keys(&self) -> impl Iterator<Item = SessionKey> {
        let user = SessionKey::User {
            issuer: self.issuer.clone(),
            sub: self.sub.clone(),
        };
        let origin = self
            .origin_jti
            .as_ref()
            .map(|origin_jti| SessionKey::Origin {
                issuer: self.issuer.clone(),
                origin_jti: origin_jti.clone(),
            });
        std::iter::once(user).chain(origin)
    }
}
