//! One execution environment: a child process and its Runtime API endpoint. It runs one
//! invocation at a time; whoever holds it has it to themselves.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::FunctionError;
use crate::endpoint::{self, Job, Reply, Shared};
use crate::host::Host;
use crate::logs;
use crate::process;

/// Longest wait for a handler to load (its first `/next`), as AWS's init phase.
pub(crate) const INIT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Environment {
    child: Child,
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    /// The load time, reported once on the first invocation's REPORT line.
    init: Option<Duration>,
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.server.abort();
        // kill_on_drop ends the process.
    }
}

/// What a finished invocation gave.
pub(crate) struct Done {
    pub(crate) payload: Bytes,
    pub(crate) request_id: String,
    pub(crate) duration: Duration,
    pub(crate) max_memory_mb: Option<u64>,
}

impl Environment {
    /// Starts the process and waits until the handler is loaded.
    pub(crate) async fn start(rt: &Host, name: &str) -> Result<Environment, FunctionError> {
        let function = rt.function(name)?;
        let started = Instant::now();
        let (shared, jobs, ready) = Shared::new();
        let (addr, server) = endpoint::serve(shared.clone())
            .await
            .map_err(|e| FunctionError::Gateway(format!("cannot bind the Runtime API: {e}")))?;
        let stream = process::log_stream_name(
            &chrono::Utc::now().format("%Y/%m/%d").to_string(),
            rand::random(),
        );
        let vars = process::variables(
            function,
            &rt.identity,
            &addr.to_string(),
            &stream,
            &rt.inherited,
            &rt.extra_env,
        );
        let argv = process::command(function, &rt.bootstraps());
        let Some((program, args)) = argv.split_first() else {
            server.abort();
            return Err(FunctionError::Gateway("empty command".to_owned()));
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&function.code)
            .env_clear()
            .envs(vars)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                server.abort();
                return Err(FunctionError::InitError {
                    error_type: "Runtime.InvalidEntrypoint".to_owned(),
                    error_message: format!("cannot start {program:?}: {e}"),
                });
            }
        };
        if let Some(out) = child.stdout.take() {
            tokio::spawn(logs::forward(out, name.to_owned(), shared.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(logs::forward(err, name.to_owned(), shared.clone()));
        }
        let mut env = Environment {
            child,
            jobs,
            shared,
            server,
            init: None,
        };
        let outcome = tokio::select! {
            biased;
            r = ready => r.is_ok(),
            _ = env.child.wait() => false,
            () = tokio::time::sleep(INIT_TIMEOUT) => {
                let _ = env.child.kill().await;
                return Err(FunctionError::InitError {
                    error_type: "Runtime.InitTimeout".to_owned(),
                    error_message: format!("the handler did not load within {}s", INIT_TIMEOUT.as_secs()),
                });
            }
        };
        if !outcome {
            let (error_type, error_message) = env.shared.init_error().unwrap_or_else(|| {
                (
                    "Runtime.ExitError".to_owned(),
                    "the runtime exited before loading the handler".to_owned(),
                )
            });
            tracing::warn!(function = name, error_type, "init failed");
            return Err(FunctionError::InitError {
                error_type,
                error_message,
            });
        }
        env.init = Some(started.elapsed());
        Ok(env)
    }

    /// How long the handler took to load.
    pub(crate) fn init_time(&self) -> Duration {
        self.init.unwrap_or_default()
    }

    /// Whether the process is still running (an idle one may have died).
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Runs one invocation. On `Err`, the environment must be dropped unless the error is
    /// `Handled` (the process is still well).
    pub(crate) async fn invoke(
        &mut self,
        rt: &Host,
        name: &str,
        event: Bytes,
    ) -> Result<Done, FunctionError> {
        let function = rt.function(name)?;
        let request_id = process::request_id(rand::random());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let deadline_ms = (now + function.timeout).as_millis();
        let (tx, rx) = oneshot::channel();
        let job = Job {
            request_id: request_id.clone(),
            event,
            deadline_ms: u64::try_from(deadline_ms).unwrap_or(u64::MAX),
            function_arn: process::function_arn(&rt.identity, name),
            trace_id: process::trace_id(now.as_secs(), rand::random()),
            reply: tx,
        };
        tracing::info!(function = name, "{}", process::start_line(&request_id));
        let started = Instant::now();
        if self.jobs.try_send(job).is_err() {
            return Err(FunctionError::Gateway(
                "environment not ready for a job".to_owned(),
            ));
        }
        let outcome = tokio::select! {
            biased;
            r = rx => match r {
                Ok(reply) => Ok(reply),
                Err(_) => Err(FunctionError::Crashed("the runtime dropped the invocation".to_owned())),
            },
            status = self.child.wait() => Err(FunctionError::Crashed(match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            })),
            () = tokio::time::sleep(function.timeout) => {
                let _ = self.child.kill().await;
                Err(FunctionError::Timeout(function.timeout))
            }
        };
        let duration = started.elapsed();
        let max_memory_mb = self.peak_rss_mb();
        tracing::info!(function = name, "{}", process::end_line(&request_id));
        tracing::info!(
            function = name,
            "{}",
            process::report_line(
                &request_id,
                duration,
                function.memory_mb,
                max_memory_mb,
                self.init.take()
            )
        );
        let result = match outcome? {
            Reply::Response(payload) => Ok(Done {
                payload,
                request_id,
                duration,
                max_memory_mb,
            }),
            Reply::Error {
                error_type,
                error_message,
            } => Err(FunctionError::Handled {
                error_type,
                error_message,
            }),
            Reply::TooLarge => Err(FunctionError::ResponseTooLarge(
                crate::runtime_api::MAX_PAYLOAD,
            )),
        };
        *self
            .shared
            .request_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        result
    }

    fn peak_rss_mb(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        process::peak_rss_mb(&status)
    }
}
