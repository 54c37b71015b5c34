//! Revocation: what a sign-out, a token revocation or a disabled or deleted user revokes, the
//! rule of which live sessions a [`Revocation`] covers ([`Revocation::covers`]), announcing
//! revocations to this process's subscribers and to other processes through the store's
//! revocation log ([`cursor`] reads it), and checking a verified token against the store
//! ([`IdentityProvider::is_revoked`]).

use std::time::Duration;

use crate::options::secs;
use crate::pool::PoolState;
use crate::store::{RefreshTokenRecord, RevocationEventRecord, RevokedSubject, StoreError};
use crate::{IdentityProvider, IdpError, unix_now};

pub mod cursor;

pub use cursor::{EventCursor, GAP_WAIT};

/// The reader's state of the store's revocation log.
#[derive(Debug)]
pub(crate) struct RevocationFeed {
    pub(crate) cursor: EventCursor,
    pub(crate) last_prune: Option<std::time::Instant>,
}

/// How often the poller deletes old revocation events.
const REVOCATION_PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Revocation events are kept at least this long (and at least the longest token lifetime).
const REVOCATION_KEEP_MIN: i64 = 600;

/// What one [`IdentityProvider::poll_revocation_events`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevocationPoll {
    /// Events of other processes turned into [`Revocation`]s.
    pub announced: usize,
    /// The batch was full: poll again at once.
    pub more: bool,
}

/// A revocation (sign-out, token revocation, disabled or deleted user), announced so the
/// gateway can close the live connections it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One session: every token carrying this `origin_jti`.
    Session { issuer: String, origin_jti: String },
    /// Every token of this user (`sub`) issued before `before` (unix seconds).
    User {
        issuer: String,
        sub: String,
        before: i64,
    },
}

/// What a live gateway connection was admitted with: the token's issuer, subject, session
/// (`origin_jti`, absent for tokens without one) and issue time (`iat`, unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub issuer: String,
    pub sub: String,
    pub origin_jti: Option<String>,
    pub iat: i64,
}

impl Revocation {
    /// Whether this revocation covers `session`: a session revocation covers the tokens of that
    /// session (same issuer and `origin_jti`); a user revocation covers the user's tokens (same
    /// issuer and `sub`) issued before its `before`.
    pub fn covers(&self, session: &LiveSession) -> bool {
        match self {
            Revocation::Session { issuer, origin_jti } => {
                *issuer == session.issuer
                    && session.origin_jti.as_deref() == Some(origin_jti.as_str())
            }
            Revocation::User {
                issuer,
                sub,
                before,
            } => *issuer == session.issuer && *sub == session.sub && session.iat < *before,
        }
    }
}

/// Revocations buffered for slow subscribers; a lagging subscriber skips the oldest.
pub(crate) const REVOCATION_BUFFER: usize = 1024;

impl IdentityProvider {
    /// How long a revoked session is remembered: as long as any token of it may be alive.
    pub(crate) fn session_keep(&self, state: &PoolState, now: i64) -> i64 {
        now.saturating_add(
            secs(state.config.refresh_token_ttl)
                .max(state.keys.max_ttl)
                .max(REVOCATION_KEEP_MIN),
        )
    }

    /// Revocations from now on: those this process makes, and those of other processes that
    /// [`poll_revocation_events`](Self::poll_revocation_events) reads from the store.
    pub fn subscribe_revocations(&self) -> tokio::sync::broadcast::Receiver<Revocation> {
        self.revocations.subscribe()
    }

    pub(crate) fn announce(&self, revocation: Revocation) {
        // No subscriber (e.g. an admin command) is fine.
        let _ = self.revocations.send(revocation);
    }

    pub(crate) fn revocation_of(&self, pool: &str, subject: RevokedSubject) -> Revocation {
        let issuer = self.issuer(pool);
        match subject {
            RevokedSubject::Session { origin_jti } => Revocation::Session { issuer, origin_jti },
            RevokedSubject::User { sub, before } => Revocation::User {
                issuer,
                sub,
                before,
            },
        }
    }

    /// A revocation was written to the store: announce it here, and append it to the store's
    /// revocation log for the other processes sharing the store.
    pub(crate) async fn revoked(
        &self,
        pool: &str,
        subject: RevokedSubject,
    ) -> Result<(), IdpError> {
        self.announce(self.revocation_of(pool, subject.clone()));
        self.store
            .insert_revocation_event(&RevocationEventRecord {
                id: 0,
                pool: pool.to_owned(),
                subject,
                writer: self.writer_id.clone(),
                created_at: unix_now(),
            })
            .await?;
        Ok(())
    }

    /// Revokes one refresh token and its session (every token carrying its `origin_jti`).
    pub(crate) async fn revoke_session_of(
        &self,
        pool: &str,
        record: &RefreshTokenRecord,
    ) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        let now = self.now();
        // keep the session marker as long as any token of it may be alive
        let keep_until = record
            .expires_at
            .max(now.saturating_add(state.keys.max_ttl));
        self.store
            .revoke_session_family(pool, &record.username, &record.origin_jti, now, keep_until)
            .await?;
        self.revoked(
            pool,
            RevokedSubject::Session {
                origin_jti: record.origin_jti.clone(),
            },
        )
        .await
    }

    /// Reads the store's revocation log once: events written by other processes (the CLI,
    /// other gateway nodes) since the last poll are announced to
    /// [`subscribe_revocations`](Self::subscribe_revocations) like this process's own; events of
    /// pools this configuration lacks are skipped. Reads at most
    /// [`IdpOptions::revocation_poll_batch`](crate::IdpOptions::revocation_poll_batch) events, and now and then deletes events older than
    /// the longest token lifetime (at least 10 minutes). A serving gateway calls this every
    /// [`IdpOptions::revocation_poll_interval`](crate::IdpOptions::revocation_poll_interval).
    pub async fn poll_revocation_events(&self) -> Result<RevocationPoll, IdpError> {
        let mut feed = self.feed.lock().await;
        let limit = self.options.revocation_poll_batch.max(1);
        let events = self
            .store
            .revocation_events_after(feed.cursor.after(), limit)
            .await?;
        let mut poll = RevocationPoll {
            announced: 0,
            more: events.len() >= limit as usize,
        };
        for event in events {
            if !feed.cursor.accept(event.id)
                || event.writer == self.writer_id
                || !self.pools.contains_key(&event.pool)
            {
                continue;
            }
            tracing::debug!(id = event.id, pool = %event.pool, "revocation by another process");
            self.announce(self.revocation_of(&event.pool, event.subject));
            poll.announced += 1;
        }
        let now = std::time::Instant::now();
        feed.cursor.settle(now, limit as usize);
        if feed
            .last_prune
            .is_none_or(|t| now.duration_since(t) >= REVOCATION_PRUNE_EVERY)
        {
            feed.last_prune = Some(now);
            let keep = self
                .pools
                .values()
                .map(|p| p.keys.max_ttl)
                .max()
                .unwrap_or(0)
                .max(REVOCATION_KEEP_MIN);
            let pruned = self
                .store
                .prune_revocation_events(unix_now().saturating_sub(keep))
                .await?;
            if pruned > 0 {
                tracing::debug!(pruned, "old revocation events deleted");
            }
            self.housekeeping().await;
        }
        Ok(poll)
    }

    /// What a serving gateway does now and then besides reading the revocation log: deletes a
    /// bounded batch of expired sign-in steps (pending requests, codes, challenge sessions,
    /// confirmation entries), and re-reads every pool's signing keys, so a rotation made by
    /// another process (a node, the CLI) is published and used here too — within a minute,
    /// well inside the grace period before a new key signs.
    async fn housekeeping(&self) {
        match self.store.prune_sign_in_steps(unix_now()).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "expired sign-in steps deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete expired sign-in steps"),
        }
        for pool in self.pools.keys() {
            if let Err(e) = self.reload_keys(pool).await {
                tracing::warn!(pool = %pool, error = %e, "cannot re-read the signing keys");
            }
        }
    }

    /// Revokes every token of a user issued before now (GlobalSignOut / AdminUserGlobalSignOut).
    pub async fn global_sign_out(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        self.end_sessions(pool, username).await
    }

    /// Ends every session of a user: each one the store knows (`origin_jti`) is marked revoked
    /// with its refresh tokens, so every token issued before now is refused however close to
    /// now it was issued, while tokens of sessions started later work; and tokens of a whole
    /// second before now are refused by `tokens_valid_after` as well.
    pub(crate) async fn end_sessions(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        let mut user = self.user(pool, username).await?;
        let now = self.now();
        user.tokens_valid_after = now;
        user.updated_at = now;
        self.store.update_user(&user).await?;
        self.store
            .revoke_user_sessions(pool, username, None, now, self.session_keep(state, now))
            .await?;
        // Live connections close even for tokens issued in this very second (a connection
        // opened with a newer token in that second closes too; its token still works).
        self.revoked(
            pool,
            RevokedSubject::User {
                sub: user.sub,
                before: now.saturating_add(1),
            },
        )
        .await
    }

    /// True when a verified token must be refused: its session (`origin_jti`) was revoked, its
    /// user is gone or disabled, or it was issued (`iat`) before the user's last global sign-out.
    /// Client-credentials tokens (`sub` = a client id) are revoked when the client is gone.
    /// Fails closed: a store error counts as revoked.
    pub async fn is_revoked(&self, origin_jti: Option<&str>, sub: &str, iat: i64) -> bool {
        match self.revocation_check(origin_jti, sub, iat).await {
            Ok(revoked) => revoked,
            Err(e) => {
                tracing::warn!(error = %e, "revocation check failed; treating token as revoked");
                true
            }
        }
    }

    pub(crate) async fn revocation_check(
        &self,
        origin_jti: Option<&str>,
        sub: &str,
        iat: i64,
    ) -> Result<bool, StoreError> {
        if let Some(jti) = origin_jti
            && self.store.is_session_revoked(jti).await?
        {
            return Ok(true);
        }
        if let Some(user) = self.store.get_user_by_sub(sub).await? {
            return Ok(!user.enabled || iat < user.tokens_valid_after);
        }
        Ok(self.store.get_client(sub).await?.is_none())
    }
}

#[cfg(test)]
mod tests;
