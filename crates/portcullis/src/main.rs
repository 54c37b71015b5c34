//! The `portcullis` binary: command line, logging, signals. Everything else lives in the
//! library crates (`portcullis-config` compiles the file, `portcullis-gateway` serves it,
//! `portcullis-idp` runs the identity-store commands of [`identity_commands`],
//! `portcullis-client` calls a running gateway for [`push_command`], `portcullis-functions`
//! runs a handler for [`invoke_command`], `portcullis-auth` signs the tokens of
//! [`token_command`]).

mod failure;
mod identity_commands;
mod invoke_command;
mod push_command;
mod token_command;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing::{error, warn};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PORTCULLIS_COMMIT"), ")"),
    about = "WebSocket and HTTP API gateway with identity built in"
)]
struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "PORTCULLIS_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway described by a configuration file.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and print the effective configuration (secrets redacted).
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Push a message to a user, a topic or a connection through a running gateway.
    ///
    /// Calls the management API of the configuration's admin listener under the API's stage,
    /// signed by its first [management] credential with the "connections" scope. Prints
    /// {"connections": N}, how many connections were handed the message. Exit status: 0 on
    /// success; 1 when the gateway refuses (its message and AWS error code are printed) or
    /// cannot be reached; 2 for an invalid configuration file.
    Push(push_command::PushArgs),
    /// Run one invocation of a [functions.NAME] handler and print its result JSON.
    ///
    /// Logs (START, END, REPORT and the handler's output) go to stderr. Exit status: 0 on
    /// success; 1 on a function error (its {"errorType", "errorMessage"} is printed on
    /// stdout, as `aws lambda invoke` writes it) or an unknown function; 2 for an invalid
    /// configuration file.
    Invoke(invoke_command::InvokeArgs),
    /// Mint tokens: shared-secret (HMAC) JWTs, or a built-in pool's tokens.
    ///
    /// Prints only the token on stdout. Exit status: 0 on success; 1 on any error (one line on
    /// stderr, nothing on stdout); 2 for an invalid configuration file.
    #[command(subcommand)]
    Token(token_command::TokenCommand),
    // `pools`, `users`, `groups`, `clients`, `keys`: the identity store, directly.
    #[command(flatten)]
    Identity(identity_commands::IdentityCommand),
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The TLS files of `cfg` (`[server] tls`, `admin_tls`, `ca_file`) as `check` and `serve`
/// see them: each problem is printed as `FILE: server.tls.cert: PATH: reason` and refuses
/// the configuration; warnings (a certificate about to expire) go to `warn`.
fn tls_usable(
    config: &std::path::Path,
    cfg: &portcullis_config::Config,
    warn: impl Fn(&str),
) -> bool {
    let (problems, warnings) = portcullis_gateway::check_tls(cfg);
    for warning in &warnings {
        warn(warning);
    }
    for problem in &problems {
        eprintln!("{}: {problem}", config.display());
    }
    if !problems.is_empty() {
        eprintln!("{}: {} error(s)", config.display(), problems.len());
    }
    problems.is_empty()
}

fn main() -> ExitCode {
    // One crypto provider for every TLS object of the process (listeners, outbound calls,
    // Redis): with two in the dependency graph rustls would otherwise refuse to pick one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match portcullis_config::load_file(&config) {
            Ok(cfg) => {
                if !tls_usable(&config, &cfg, |w| eprintln!("warning: {w}")) {
                    return ExitCode::from(2);
                }
                println!("{}", portcullis_config::render_redacted(&cfg));
                for warning in &cfg.warnings {
                    eprintln!("warning: {warning}");
                }
                eprintln!("{}: configuration is valid", config.display());
                ExitCode::SUCCESS
            }
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                eprintln!("{}: {} error(s)", config.display(), diagnostics.0.len());
                ExitCode::from(2)
            }
        },
        Command::Serve { config } => {
            init_logging(cli.log_format, "info");
            let cfg = match portcullis_config::load_file(&config) {
                Ok(cfg) => {
                    for w in &cfg.warnings {
                        let at = format!("{}:{}:{}", w.file, w.line, w.column);
                        warn!(key = %w.path, at = %at, "{}", w.message);
                    }
                    if !tls_usable(&config, &cfg, |w| warn!("{w}")) {
                        return ExitCode::from(2);
                    }
                    cfg
                }
                Err(diagnostics) => {
                    eprintln!("{diagnostics}");
                    eprintln!("{}: {} error(s)", config.display(), diagnostics.0.len());
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(serve(cfg, config))
        }
        Command::Push(args) => {
            init_logging(cli.log_format, "warn");
            push_command::run(args)
        }
        Command::Invoke(args) => {
            init_logging(cli.log_format, "info");
            invoke_command::run(args)
        }
        Command::Token(command) => {
            init_logging(cli.log_format, "warn");
            token_command::run(command)
        }
        Command::Identity(command) => {
            // These commands print their results; only warnings and errors are logged.
            init_logging(cli.log_format, "warn");
            identity_commands::run(command)
        }
    }
}

async fn serve(cfg: portcullis_config::Config, path: PathBuf) -> ExitCode {
    if let Some(warning) = portcullis_idp::keys::unencrypted_store_warning(&cfg) {
        tracing::warn!("{warning}");
    }
    let gateway = match portcullis_gateway::start(cfg).await {
        Ok(g) => g,
        Err(e) => {
            error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    // A change of the file reloads it; without a watch (no inotify left), SIGHUP still does.
    if let Err(e) = gateway.watch_config(&path) {
        warn!(error = %e, "cannot watch the configuration file; reload it with SIGHUP");
    }
    run_until_stopped(&gateway, &path).await;
    gateway.shutdown().await;
    ExitCode::SUCCESS
}

/// Until SIGTERM or SIGINT: SIGHUP reloads the configuration file (the reload logs its
/// outcome and refuses a file with errors).
async fn run_until_stopped(gateway: &portcullis_gateway::RunningGateway, path: &std::path::Path) {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(mut term), Ok(mut int), Ok(mut hup)) => loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = int.recv() => return,
                _ = hup.recv() => {
                    tracing::info!(file = %path.display(), "SIGHUP: reloading the configuration");
                    let _ = gateway.reload_file(path).await;
                }
            }
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
