//! Closing the live connections a revocation of the built-in identity provider covers.
//!
//! A sign-out, a revoked refresh token or a disabled user becomes a
//! [`Revocation`]: the provider announces its own at once, and those other processes wrote to
//! the store (the CLI, other nodes) once [`poll`] has read them from the revocation log. The
//! watcher asks the registry for the connections filed under the key the revocation names
//! ([`ConnectionRegistry::by_session`]), keeps those the revocation covers (the identity
//! provider's rule, [`Revocation::covers`]), and closes each
//! with 1008 (`$disconnect` follows). A revoked token presented again is refused by the
//! authorizer, which asks the provider itself; this module only ends connections already open.

use std::sync::Arc;

use portcullis_idp::{IdentityProvider, Revocation};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use portcullis_core::close::Close;

use crate::registry::ConnectionRegistry;
use crate::session_key::SessionKey;

/// Start closing the connections `idp`'s revocations cover, until `shutdown`: a watcher of the
/// provider's announcements and a reader of the store's revocation log, both on `tasks`.
pub(crate) fn spawn(
    tasks: &TaskTracker,
    idp: &Arc<IdentityProvider>,
    registry: Arc<dyn ConnectionRegistry>,
    shutdown: CancellationToken,
) {
    tasks.spawn(watch(
        idp.subscribe_revocations(),
        registry,
        shutdown.clone(),
    ));
    // Revocations other processes wrote to the store come from its revocation log; the
    // provider announces them like its own, to the watcher above.
    tasks.spawn(poll(idp.clone(), shutdown));
}

/// Closes what each announced revocation covers until `shutdown` or the provider is gone.
async fn watch(
    mut revocations: broadcast::Receiver<Revocation>,
    registry: Arc<dyn ConnectionRegistry>,
    shutdown: CancellationToken,
) {
    loop {
        let revocation = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = revocations.recv() => r,
        };
        match revocation {
            Ok(revocation) => {
                close_revoked(registry.as_ref(), &revocation).await;
            }
            Err(RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "revocation events were missed; affected tokens are refused on their next use"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Reads the identity store's revocation log every `revocation_poll_interval` (at once again
/// while batches come back full) until the gateway drains.
async fn poll(idp: Arc<IdentityProvider>, shutdown: CancellationToken) {
    let interval = idp.options().revocation_poll_interval;
    let mut failing = false;
    loop {
        let polled = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = idp.poll_revocation_events() => r,
        };
        let more = match polled {
            Ok(poll) => {
                if failing {
                    info!("revocation log readable again");
                    failing = false;
                }
                if poll.announced > 0 {
                    info!(
                        revocations = poll.announced,
                        "revocations made by another process"
                    );
                }
                poll.more
            }
            Err(e) => {
                if !failing {
                    warn!(
                        error = %e,
                        "cannot read the revocation log; revocations made by other processes \
                         close live connections once it is readable"
                    );
                    failing = true;
                }
                false
            }
        };
        if !more {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// Close (1008, then `$disconnect`) every connection whose session `revocation` covers; the
/// number of connections asked to close. Only the connections filed under the key the
/// revocation names are looked at.
pub(crate) async fn close_revoked(
    registry: &dyn ConnectionRegistry,
    revocation: &Revocation,
) -> usize {
    let key = index_key(revocation);
    let mut closed = 0;
    for candidate in registry.by_session(&key).await {
        if !revocation.covers(&candidate.session) {
            continue;
        }
        info!(connection_id = %candidate.id, "closing a connection whose token was revoked");
        if registry.close(&candidate.id, Close::Revoked).await.is_ok() {
            closed += 1;
        }
    }
    closed
}

/// The session-index key under which every session `revocation` can cover is filed: for any
/// session `s`, `r.covers(s)` implies `session_key::keys(s)` yields `index_key(r)`.
fn index_key(revocation: &Revocation) -> SessionKey {
    match revocation {
        Revocation::Session { issuer, origin_jti } => SessionKey::Origin {
            issuer: issuer.clone(),
            origin_jti: origin_jti.clone(),
        },
        Revocation::User { issuer, sub, .. } => SessionKey::User {
            issuer: issuer.clone(),
            sub: sub.clone(),
        },
    }
}
