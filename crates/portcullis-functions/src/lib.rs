//! Runs unchanged AWS Lambda handlers (`[functions.NAME]`): each execution environment is a
//! child process (the Python or Node bootstrap shipped in this crate, or a `provided`
//! command) speaking the Lambda Runtime API against its own loopback endpoint.
//!
//! This crate owns the processes, the Runtime API server, the pools and the CloudWatch-style
//! log lines. It does not know about HTTP routes or authorizers: the gateway builds events
//! and reads results. Pure rules (paths, variables, identifiers, report lines) are apart from
//! the I/O: [`runtime_api`], `process`, `logs::split_lines`, `changes`, `callback::connect`.
//!
//! A change under a function's `code` directory recycles its environments (`watch`, `pool`);
//! every call is counted in [`FunctionMetrics`]. [`CallbackProxy`] lets handlers call the
//! gateway's `@connections` API back as AWS samples do (see its module).

#![forbid(unsafe_code)]

mod callback;
mod changes;
mod endpoint;
mod environment;
mod error;
mod host;
mod logs;
mod metrics;
mod pool;
mod process;
pub mod runtime_api;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use portcullis_config::{Config, Function};

pub use callback::{CallbackProxy, MAX_TUNNELS};
pub use error::{Fault, FunctionError};
pub use metrics::{EnvironmentLabels, ErrorLabels, FunctionLabel, FunctionMetrics};
pub use pool::QUEUE_PER_ENVIRONMENT;
pub use process::Identity;

use crate::host::Host;
use crate::pool::Pool;

/// How functions run, beyond their own configuration.
#[derive(Debug, Clone)]
pub struct Options {
    pub identity: Identity,
    /// Variables given to every function by the gateway (e.g. [`CallbackProxy::environment`]);
    /// a function's own `environment` replaces any of them.
    pub extra_env: Vec<(String, String)>,
    /// Where calls are counted: families registered by the gateway, or unregistered ones.
    pub metrics: Arc<FunctionMetrics>,
}

impl Options {
    /// The region and account of `[management]`, no extra variables.
    pub fn for_config(config: &Config) -> Options {
        Options {
            identity: Identity {
                region: config.management.region.clone(),
                account_id: config.management.account_id.clone(),
            },
            extra_env: Vec::new(),
            metrics: Arc::default(),
        }
    }

    /// The same options, counting calls in `metrics` (from [`FunctionMetrics::register`]).
    pub fn with_metrics(self, metrics: Arc<FunctionMetrics>) -> Options {
        Options { metrics, ..self }
    }
}

/// A successful invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The handler's result as JSON.
    pub payload: Bytes,
    pub request_id: String,
    pub duration: Duration,
    /// Peak resident memory of the environment's process, when known.
    pub max_memory_mb: Option<u64>,
}

/// Every configured function, ready to invoke. Dropping it kills the processes and stops
/// watching the code.
pub struct Functions {
    /// First: stop watching before the pools go.
    _watch: watch::Watch,
    host: Host,
    pools: IndexMap<String, Arc<Pool>>,
}

impl Functions {
    /// Writes the bootstraps and starts watching each function's code; processes start on
    /// the first invocation of each function.
    pub fn start(
        functions: &IndexMap<String, Function>,
        options: Options,
    ) -> Result<Functions, FunctionError> {
        let pools: IndexMap<String, Arc<Pool>> = functions
            .iter()
            .map(|(name, f)| {
                let pool = Pool::new(name, f.concurrency, &options.metrics);
                (name.clone(), Arc::new(pool))
            })
            .collect();
        let host = Host::new(functions.clone(), options.identity, options.extra_env)?;
        let targets = functions
            .iter()
            .filter_map(|(name, f)| {
                Some(watch::Target {
                    name: name.clone(),
                    code: f.code.clone(),
                    pool: Arc::downgrade(pools.get(name)?),
                })
            })
            .collect();
        let watch = watch::start(targets);
        Ok(Functions {
            host,
            pools,
            _watch: watch,
        })
    }

    /// Runs `name` with `event` (JSON) and returns its result.
    pub async fn invoke(&self, name: &str, event: Bytes) -> Result<Invocation, FunctionError> {
        let pool = self
            .pools
            .get(name)
            .ok_or_else(|| FunctionError::UnknownFunction(name.to_owned()))?;
        let done = pool.invoke(&self.host, event).await?;
        Ok(Invocation {
            payload: done.payload,
            request_id: done.request_id,
            duration: done.duration,
            max_memory_mb: done.max_memory_mb,
        })
    }

    /// Calls of `name` waiting for a free environment (bounded by `concurrency` ×
    /// [`QUEUE_PER_ENVIRONMENT`]); `None` for an unknown function.
    pub fn queued(&self, name: &str) -> Option<usize> {
        self.pools.get(name).map(|p| p.queued())
    }
}
