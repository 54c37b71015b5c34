//! The keys the connection registry files a connection's identity-provider session
//! ([`LiveSession`]) under, so a revocation finds its connections without a scan.

pub use portcullis_idp::LiveSession;

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

/// The index keys `session` is filed under: its user, and its sign-in when known.
pub fn keys(session: &LiveSession) -> impl Iterator<Item = SessionKey> + use<> {
    let user = SessionKey::User {
        issuer: session.issuer.clone(),
        sub: session.sub.clone(),
    };
    let origin = session
        .origin_jti
        .as_ref()
        .map(|origin_jti| SessionKey::Origin {
            issuer: session.issuer.clone(),
            origin_jti: origin_jti.clone(),
        });
    std::iter::once(user).chain(origin)
}
