//! `portcullis token mint`: tokens for operators and tests (what seed 003's `CreateTestJwt`
//! Lambda did).
//!
//! * Shared-secret tokens, no configuration needed: `--secret-env VAR` (or `--secret-file`),
//!   `--issuer`, `--claims '{...}'`, `--ttl`; `iat`, `exp` and `iss` are added (and `sub`,
//!   `aud` from `--subject`, `--audience`). The secret never comes from the command line,
//!   where `ps` and shell histories would keep it.
//! * Built-in pool tokens: `--config FILE --pool P --user U` prints the user's access token
//!   (`--id-token`: the ID token), `--client C` without `--user` a client-credentials token;
//!   the store named by the configuration is opened as the identity commands open it.
//!
//! Only the token goes to stdout (one line), so `TOKEN=$(portcullis token mint ...)` works.
//! Every failure prints one line on stderr, nothing on stdout, and exits 1 (2 for an invalid
//! configuration file).

mod claims;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use portcullis_auth::jwt::HmacAlgorithm;
use portcullis_config::{MIN_HMAC_SECRET_BYTES, Secret};
use portcullis_idp::IdentityProvider;

use crate::failure::{Failure, load_config};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a signed JWT: a shared-secret (HMAC) token, or a built-in pool's token.
    Mint(MintArgs),
}

#[derive(Args)]
pub struct MintArgs {
    /// Environment variable holding the shared secret (at least 32 bytes).
    #[arg(long, value_name = "VAR", conflicts_with_all = ["secret_file", "config"])]
    secret_env: Option<String>,
    /// File holding the shared secret (one trailing newline is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    secret_file: Option<PathBuf>,
    /// `iss` of a shared-secret token, as the authorizer's issuer lists it.
    #[arg(long)]
    issuer: Option<String>,
    /// Claims of a shared-secret token, a JSON object (`{"userId":"u1"}`).
    #[arg(long, value_name = "JSON")]
    claims: Option<String>,
    /// Lifetime of a shared-secret token (`30s`, `15m`, `1h`, `7d`). Default 1h.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// HS256, HS384 or HS512. Default HS256.
    #[arg(long, default_value = "HS256")]
    algorithm: String,
    /// `aud` of a shared-secret token.
    #[arg(long)]
    audience: Option<String>,
    /// `sub` of a shared-secret token.
    #[arg(long)]
    subject: Option<String>,

    /// Configuration file whose store holds the pool (built-in pool tokens).
    #[arg(long, short, requires = "pool")]
    config: Option<PathBuf>,
    /// The built-in pool (`[pools.NAME]`).
    #[arg(long, requires = "config")]
    pool: Option<String>,
    /// The user whose access token to mint.
    #[arg(long, requires = "pool")]
    user: Option<String>,
    /// The app client: the user token's audience (default: the pool's first client), or
    /// without `--user` the client of a client-credentials token.
    #[arg(long, requires = "pool")]
    client: Option<String>,
    /// Scopes of the access token, comma- or space-separated (default: as a sign-in grants).
    #[arg(long, requires = "pool")]
    scopes: Option<String>,
    /// Print the user's ID token instead of the access token.
    #[arg(long, requires = "user")]
    id_token: bool,
}

pub fn run(command: TokenCommand) -> ExitCode {
    let TokenCommand::Mint(args) = command;
    match mint(args) {
        Ok(token) => {
            println!("{}", token.expose());
            ExitCode::SUCCESS
        }
        Err(failure) => failure.report("token mint"),
    }
}

fn mint(args: MintArgs) -> Result<Secret, Failure> {
    match (&args.config, &args.pool) {
        (Some(config), Some(pool)) => mint_pool(config, pool, &args),
        _ => mint_shared(&args),
    }
}

fn mint_shared(args: &MintArgs) -> Result<Secret, Failure> {
    let error = |m: String| Failure::Error(m);
    let secret = match (&args.secret_env, &args.secret_file) {
        (Some(var), None) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Secret::new(value),
            Ok(_) => return Err(error(format!("the environment variable {var} is empty"))),
            Err(_) => return Err(error(format!("the environment variable {var} is not set"))),
        },
        (None, Some(file)) => portcullis_config::HmacSecret::File(file.clone())
            .load()
            .map_err(|e| error(format!("cannot read {}: {e}", file.display())))?,
        _ => {
            return Err(error(
                "give the shared secret with --secret-env VAR or --secret-file FILE, or a \
                 built-in pool with --config FILE --pool NAME"
                    .into(),
            ));
        }
    };
    let len = secret.expose().len();
    if len < MIN_HMAC_SECRET_BYTES {
        return Err(error(format!(
            "the shared secret is {len} bytes; at least {MIN_HMAC_SECRET_BYTES} are needed"
        )));
    }
    let issuer = args
        .issuer
        .as_deref()
        .ok_or_else(|| error("--issuer is required for a shared-secret token".into()))?;
    let algorithm = HmacAlgorithm::from_name(&args.algorithm).ok_or_else(|| {
        error(format!(
            "unsupported --algorithm {:?}: expected HS256, HS384 or HS512",
            args.algorithm
        ))
    })?;
    let ttl =
        portcullis_config::parse_duration(&args.ttl).map_err(|e| error(format!("--ttl: {e}")))?;
    let claims = claims::build(&claims::Request {
        claims: args.claims.as_deref(),
        issuer,
        audience: args.audience.as_deref(),
        subject: args.subject.as_deref(),
        ttl,
        now: claims::unix_now(),
    })
    .map_err(error)?;
    Ok(Secret::new(portcullis_auth::jwt::hmac::sign(
        algorithm,
        secret.expose().as_bytes(),
        &claims,
    )))
}

fn mint_pool(config: &std::path::Path, pool: &str, args: &MintArgs) -> Result<Secret, Failure> {
    let shared_only = [
        (args.secret_file.is_some(), "--secret-file"),
        (args.issuer.is_some(), "--issuer"),
        (args.claims.is_some(), "--claims"),
        (args.audience.is_some(), "--audience"),
        (args.subject.is_some(), "--subject"),
    ];
    if let Some((_, flag)) = shared_only.iter().find(|(set, _)| *set) {
        return Err(Failure::Error(format!(
            "{flag} is for shared-secret tokens, not built-in pool tokens"
        )));
    }
    let cfg = load_config(config)?;
    let scopes: Vec<String> = args
        .scopes
        .as_deref()
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let idp = IdentityProvider::open(&cfg)
            .await
            .map_err(|e| Failure::Error(e.to_string()))?;
        let minted = match (&args.user, &args.client) {
            (Some(user), client) => idp
                .mint_for_user(pool, user, client.as_deref(), &scopes)
                .await
                .map_err(|e| Failure::Error(pool_error(e, pool, user)))?,
            (None, Some(client)) => idp
                .mint_for_client(pool, client, &scopes)
                .await
                .map_err(|e| Failure::Error(e.to_string()))?,
            (None, None) => {
                return Err(Failure::Error(
                    "name the token's owner: --user NAME, or --client ID for a \
                     client-credentials token"
                        .into(),
                ));
            }
        };
        if args.id_token {
            minted
                .id_token
                .ok_or_else(|| Failure::Error("no ID token for this grant".into()))
        } else {
            Ok(minted.access_token)
        }
    })
}

fn pool_error(e: portcullis_idp::IdpError, pool: &str, user: &str) -> String {
    match e {
        portcullis_idp::IdpError::UserNotFound => format!("no user {user:?} in pool {pool:?}"),
        other => other.to_string(),
    }
}
