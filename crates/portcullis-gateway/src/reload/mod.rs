//! Live configuration reload: SIGHUP, a change of the configuration file (`watch`) or
//! [`RunningGateway::reload`](crate::RunningGateway::reload) build the new configuration's
//! [`Apps`] next to the running ones and swap them in at once.
//!
//! New requests and connections get the new apps; open connections keep the API they
//! connected with, except those of a WebSocket API the new file removed, which close with
//! 1001 (`API removed`) and get their `$disconnect`. The identity provider is rebuilt on its
//! store when pools, identity pools, roles or the public URL changed. A file that does not
//! compile, or apps that cannot be built, are refused: the diagnostics are logged and the old
//! configuration stays. Listener, cluster, functions and store settings only change with a
//! restart ([`Changes::needs_restart`], logged). Every reload counts in
//! `portcullis_config_reloads_total{result}`.

mod diff;
pub(crate) mod watch;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use portcullis_config::Config;
use portcullis_core::close::Close;
use portcullis_idp::triggers::FunctionInvoker;
use portcullis_idp::{IdentityProvider, IdpOptions};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use diff::{Changes, Counts};

use crate::apps::{self, Apps, Base};
use crate::error::GatewayError;
use crate::live::Live;
use crate::revocation;
use crate::trigger_functions::TriggerInvoker;

/// The running configuration and what replaces it.
pub struct Reloader {
    base: Base,
    apps: Live<Apps>,
    event_streams: Live<HashSet<String>>,
    /// Held for the whole of a reload: reloads happen one at a time.
    current: tokio::sync::Mutex<Current>,
}

struct Current {
    config: Config,
    /// Stops the revocation watcher of the identity provider in use.
    revocations: Option<CancellationToken>,
}

impl Reloader {
    /// Build the first apps of `config` over `base`.
    pub async fn start(config: Config, base: Base) -> Result<Arc<Reloader>, GatewayError> {
        // The built-in identity provider, when the file defines user or identity pools.
        let idp = if has_identity(&config) {
            Some(open_identity(&config, None, &base).await?)
        } else {
            None
        };
        let apps = apps::build(&config, &base, idp.clone(), None)?;
        let revocations = idp.as_ref().map(|idp| watch_revocations(&base, idp));
        Ok(Arc::new(Reloader {
            event_streams: Live::new(apps.event_streams.clone()),
            apps: Live::new(apps),
            base,
            current: tokio::sync::Mutex::new(Current {
                config,
                revocations,
            }),
        }))
    }

    pub fn base(&self) -> &Base {
        &self.base
    }

    /// The apps requests are served with now.
    pub fn apps(&self) -> &Live<Apps> {
        &self.apps
    }

    /// The public listener's event-stream paths, replaced on each reload.
    pub fn event_streams(&self) -> &Live<HashSet<String>> {
        &self.event_streams
    }

    /// `server.shutdown_grace` of the running configuration.
    pub async fn shutdown_grace(&self) -> std::time::Duration {
        self.current.lock().await.config.server.shutdown_grace
    }

    /// Compile `path` as `portcullis check` does and apply it. A file with errors is refused:
    /// each diagnostic is logged, the old configuration stays.
    pub async fn reload_file(&self, path: &Path) -> Result<Changes, GatewayError> {
        let owned = path.to_path_buf();
        let loaded = tokio::task::spawn_blocking(move || portcullis_config::load_file(&owned))
            .await
            .map_err(|e| GatewayError::Internal(format!("configuration loader: {e}")))?;
        match loaded {
            Ok(config) => {
                for w in &config.warnings {
                    let at = format!("{}:{}:{}", w.file, w.line, w.column);
                    warn!(key = %w.path, at = %at, "{}", w.message);
                }
                self.reload(config).await
            }
            Err(diagnostics) => {
                for d in &diagnostics.0 {
                    let at = format!("{}:{}:{}", d.file, d.line, d.column);
                    error!(key = %d.path, at = %at, "{}", d.message);
                }
                error!(
                    file = %path.display(),
                    errors = diagnostics.0.len(),
                    "configuration reload refused; the running configuration stays"
                );
                self.base.metrics.config_reload(false);
                Err(GatewayError::Config(diagnostics.to_string()))
            }
        }
    }

    /// Apply `config`: new requests and connections use it from now on.
    pub async fn reload(&self, config: Config) -> Result<Changes, GatewayError> {
        let mut current = self.current.lock().await;
        let changes = Changes::between(&current.config, &config);
        let previous = self.apps.load();
        let built = async {
            let idp = match (&previous.idp, has_identity(&config)) {
                (_, false) => None,
                (Some(idp), true) if !changes.identity => Some(idp.clone()),
                (old, true) => Some(open_identity(&config, old.as_ref(), &self.base).await?),
            };
            apps::build(&config, &self.base, idp, Some(&previous))
        }
        .await;
        let apps = match built {
            Ok(apps) => apps,
            Err(e) => {
                error!(error = %e, "configuration reload refused; the running configuration stays");
                self.base.metrics.config_reload(false);
                return Err(e);
            }
        };
        let identity_replaced = match (&previous.idp, &apps.idp) {
            (Some(old), Some(new)) => !Arc::ptr_eq(old, new),
            (None, None) => false,
            _ => true,
        };
        if identity_replaced {
            if let Some(old) = current.revocations.take() {
                old.cancel();
            }
            current.revocations = apps
                .idp
                .as_ref()
                .map(|idp| watch_revocations(&self.base, idp));
        }
        for api in &changes.removed_websocket {
            if let Some(api) = previous.websocket.get(api) {
                api.retire();
            }
        }
        self.event_streams
            .store(Arc::new(apps.event_streams.clone()));
        self.apps.store(Arc::new(apps));
        current.config = config;
        drop(current);
        info!(changes = %changes, identity_rebuilt = identity_replaced, "configuration reloaded");
        for key in &changes.needs_restart {
            warn!(
                key,
                "changed in the configuration file; needs a restart to apply"
            );
        }
        self.base.metrics.config_reload(true);
        for api in &changes.removed_websocket {
            self.close_api(api).await;
        }
        Ok(changes)
    }

    /// Close (1001 `API removed`, then `$disconnect`) this node's connections of `api`.
    async fn close_api(&self, api: &str) {
        let registry = &self.base.registry;
        let ids = match registry.list(api).await {
            Ok(ids) => ids,
            Err(_) => {
                warn!(api, "cannot list the connections of a removed API");
                return;
            }
        };
        let node = registry.node();
        let mut closed = 0usize;
        for id in ids.iter().filter(|id| id.node() == node) {
            if registry.close(id, Close::ApiRemoved).await.is_ok() {
                closed += 1;
            }
        }
        if closed > 0 {
            info!(
                api,
                connections = closed,
                "closing the connections of a removed API"
            );
        }
    }
}

fn has_identity(config: &Config) -> bool {
    !(config.pools.is_empty() && config.identity_pools.is_empty())
}

/// The identity provider of `config`: on `old`'s store when there is one (a changed
/// `[store]` needs a restart), else on the store `[store]` names. Its triggers run the
/// gateway's functions.
async fn open_identity(
    config: &Config,
    old: Option<&Arc<IdentityProvider>>,
    base: &Base,
) -> Result<Arc<IdentityProvider>, GatewayError> {
    let trigger_functions = base
        .functions
        .as_ref()
        .map(|functions| FunctionInvoker(Arc::new(TriggerInvoker(Arc::clone(functions)))));
    let opened = match old {
        Some(old) => {
            let options = IdpOptions {
                trigger_functions,
                ..old.options().clone()
            };
            IdentityProvider::with_store(config, old.store().clone(), options).await
        }
        None => {
            let options = IdpOptions {
                trigger_functions,
                ..IdpOptions::default()
            };
            IdentityProvider::open_with(config, options).await
        }
    };
    opened.map_err(|e| GatewayError::Internal(format!("identity provider: {e}")))
}

/// Revocations by the identity provider close the live connections they cover, until the
/// gateway drains or the token returned is cancelled (the provider was replaced).
fn watch_revocations(base: &Base, idp: &Arc<IdentityProvider>) -> CancellationToken {
    let stop = base.shutdown.child_token();
    revocation::spawn(&base.tasks, idp, base.registry.clone(), stop.clone());
    stop
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
