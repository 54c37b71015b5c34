//! Admin subcommands (`pools`, `users`, `groups`, `clients`, `keys`): they open the identity
//! store named by the configuration file's `[store] url` directly, so they work whether or not a
//! gateway is running on that store.
//!
//! Output is plain, stable text (one record per line, fields separated by a tab, or `key: value`
//! blocks), or JSON with `--json`. Exit status: 0 on success, 1 on a client or operator error
//! (one line on stderr, `users confirm: no user "alice" in pool "main"`), 2 when the
//! configuration file is invalid (its diagnostics, as `check` prints them). Command-line usage
//! errors are clap's (exit 2, with usage). Passwords are never printed: not on success, not in
//! error messages.
//!
//! The operations themselves are `portcullis_idp::manage`'s, which the gateway's admin HTTP API
//! (`/admin/...` on the admin listener) calls too; this module parses arguments and prints.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use portcullis_config::Secret;
use portcullis_idp::manage::{self as admin, AdminError, NewUser, Target, rfc3339};
use portcullis_idp::{ClientRecord, IdentityProvider, UserDetails};
use serde_json::Value;

/// The admin commands, flattened into the binary's top-level subcommands.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// User pools of the configuration.
    #[command(subcommand)]
    Pools(PoolsCommand),
    /// Users of a pool: create, inspect, change, delete.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Groups of a pool.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// App clients (secrets are never shown).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Signing keys of a pool.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
pub enum PoolsCommand {
    /// List the configured pools (name and issuer).
    List(StoreArgs),
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user and print its `sub`. Without a password the user is UNCONFIRMED.
    Create(CreateArgs),
    /// List a pool's users: username, status, enabled/disabled, sub.
    List(PoolArgs),
    /// Show a user: sub, status, enabled, groups, attributes.
    Show(UserArgs),
    /// Delete a user (its tokens stop working).
    Delete(UserArgs),
    /// Set a user's password (permanent unless --temporary).
    SetPassword(SetPasswordArgs),
    /// Confirm an UNCONFIRMED user.
    Confirm(UserArgs),
    /// Disable a user and revoke its tokens.
    Disable(UserArgs),
    /// Enable a disabled user.
    Enable(UserArgs),
    /// Revoke every token issued to the user so far (global sign-out).
    SignOut(UserArgs),
    /// Add a user to a group.
    AddToGroup(GroupMemberArgs),
    /// Remove a user from a group.
    RemoveFromGroup(GroupMemberArgs),
}

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// List a pool's groups.
    List(PoolArgs),
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// List app clients: client id, pool, public/confidential, grants, scopes.
    List(ClientsListArgs),
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Start a signing key rotation; prints the new kid and when it starts signing.
    Rotate(PoolArgs),
}

#[derive(Args)]
pub struct StoreArgs {
    /// Configuration file; its `[store] url` names the identity store.
    #[arg(long, short)]
    config: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct PoolArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// User pool (a `[pools.NAME]` of the configuration).
    #[arg(long)]
    pool: String,
}

#[derive(Args)]
pub struct UserArgs {
    #[command(flatten)]
    target: PoolArgs,
    username: String,
}

#[derive(Args)]
pub struct GroupMemberArgs {
    #[command(flatten)]
    user: UserArgs,
    group: String,
}

#[derive(Args)]
pub struct ClientsListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this pool's clients (default: every configured pool).
    #[arg(long)]
    pool: Option<String>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("pw").args(["password", "temporary_password", "password_stdin"])))]
pub struct CreateArgs {
    #[command(flatten)]
    user: UserArgs,
    /// Permanent password (status CONFIRMED). Visible in shell history and process lists:
    /// prefer --password-stdin.
    #[arg(long, value_name = "PW", allow_hyphen_values = true)]
    password: Option<String>,
    /// Temporary password (status FORCE_CHANGE_PASSWORD).
    #[arg(long, value_name = "PW", allow_hyphen_values = true)]
    temporary_password: Option<String>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
    /// The password of --password or --password-stdin is temporary.
    #[arg(long, requires = "pw", conflicts_with = "temporary_password")]
    temporary: bool,
    /// A user attribute (repeatable), e.g. --attribute email=alice@example.com.
    #[arg(long = "attribute", value_name = "NAME=VALUE", value_parser = parse_attribute)]
    attributes: Vec<(String, String)>,
    /// Create the user CONFIRMED even without a password.
    #[arg(long, conflicts_with_all = ["temporary_password", "temporary"])]
    confirmed: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("pw").required(true).args(["password", "password_stdin"])))]
pub struct SetPasswordArgs {
    #[command(flatten)]
    user: UserArgs,
    /// The new password. Visible in shell history and process lists: prefer --password-stdin.
    #[arg(long, value_name = "PW", allow_hyphen_values = true)]
    password: Option<String>,
    /// Read the new password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
    /// The user must change the password at next sign-in (FORCE_CHANGE_PASSWORD).
    #[arg(long)]
    temporary: bool,
}

fn parse_attribute(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err("expected NAME=VALUE".to_owned()),
    }
}

/// Why a command failed: the exit status and what goes to stderr.
enum Failure {
    /// Invalid configuration file: its diagnostics, exit 2.
    Config(String),
    /// Anything else: one line, exit 1.
    Error(String),
}

/// What a successful command prints.
struct Output {
    text: String,
    json: Value,
}

impl AdminCommand {
    /// `users confirm`, … (the prefix of error messages).
    fn name(&self) -> &'static str {
        match self {
            AdminCommand::Pools(PoolsCommand::List(_)) => "pools list",
            AdminCommand::Users(c) => match c {
                UsersCommand::Create(_) => "users create",
                UsersCommand::List(_) => "users list",
                UsersCommand::Show(_) => "users show",
                UsersCommand::Delete(_) => "users delete",
                UsersCommand::SetPassword(_) => "users set-password",
                UsersCommand::Confirm(_) => "users confirm",
                UsersCommand::Disable(_) => "users disable",
                UsersCommand::Enable(_) => "users enable",
                UsersCommand::SignOut(_) => "users sign-out",
                UsersCommand::AddToGroup(_) => "users add-to-group",
                UsersCommand::RemoveFromGroup(_) => "users remove-from-group",
            },
            AdminCommand::Groups(GroupsCommand::List(_)) => "groups list",
            AdminCommand::Clients(ClientsCommand::List(_)) => "clients list",
            AdminCommand::Keys(KeysCommand::Rotate(_)) => "keys rotate",
        }
    }

    fn store_args(&self) -> &StoreArgs {
        match self {
            AdminCommand::Pools(PoolsCommand::List(s)) => s,
            AdminCommand::Users(c) => match c {
                UsersCommand::Create(a) => &a.user.target.store,
                UsersCommand::List(a) => &a.store,
                UsersCommand::SetPassword(a) => &a.user.target.store,
                UsersCommand::AddToGroup(a) | UsersCommand::RemoveFromGroup(a) => {
                    &a.user.target.store
                }
                UsersCommand::Show(a)
                | UsersCommand::Delete(a)
                | UsersCommand::Confirm(a)
                | UsersCommand::Disable(a)
                | UsersCommand::Enable(a)
                | UsersCommand::SignOut(a) => &a.target.store,
            },
            AdminCommand::Groups(GroupsCommand::List(a)) => &a.store,
            AdminCommand::Clients(ClientsCommand::List(a)) => &a.store,
            AdminCommand::Keys(KeysCommand::Rotate(a)) => &a.store,
        }
    }
}

/// Runs an admin command; the binary exits with the returned status.
pub fn run(command: AdminCommand) -> ExitCode {
    let name = command.name();
    let store = command.store_args();
    let (config_path, json) = (store.config.clone(), store.json);
    match execute(&config_path, command) {
        Ok(out) => {
            if json {
                println!("{}", out.json);
            } else if !out.text.is_empty() {
                print!("{}", out.text);
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Config(message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Err(Failure::Error(message)) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(config_path: &Path, command: AdminCommand) -> Result<Output, Failure> {
    let cfg = portcullis_config::load_file(config_path).map_err(|diagnostics| {
        Failure::Config(format!(
            "{diagnostics}\n{}: {} error(s)",
            config_path.display(),
            diagnostics.0.len()
        ))
    })?;
    // read a password before touching the store, so a bad stdin fails fast
    let stdin_password = match &command {
        AdminCommand::Users(UsersCommand::Create(a)) if a.password_stdin => {
            Some(read_password_stdin()?)
        }
        AdminCommand::Users(UsersCommand::SetPassword(a)) if a.password_stdin => {
            Some(read_password_stdin()?)
        }
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let idp = IdentityProvider::open(&cfg)
            .await
            .map_err(|e| failure(AdminError::from_idp(e, Target::default()), config_path))?;
        dispatch(&idp, command, stdin_password)
            .await
            .map_err(|e| failure(e, config_path))
    })
}

async fn dispatch(
    idp: &IdentityProvider,
    command: AdminCommand,
    stdin_password: Option<Secret>,
) -> Result<Output, AdminError> {
    match command {
        AdminCommand::Pools(PoolsCommand::List(_)) => {
            let pools = admin::pools(idp);
            Ok(Output {
                text: pools
                    .iter()
                    .map(|p| format!("{}\t{}\n", p.name, p.issuer))
                    .collect(),
                json: Value::Array(pools.iter().map(admin::pool_json).collect()),
            })
        }
        AdminCommand::Groups(GroupsCommand::List(a)) => {
            let groups = admin::groups(idp, &a.pool).await?;
            Ok(Output {
                text: groups.iter().map(|g| format!("{g}\n")).collect(),
                json: Value::Array(groups.iter().map(|g| admin::group_json(g)).collect()),
            })
        }
        AdminCommand::Clients(ClientsCommand::List(a)) => {
            let clients = admin::clients(idp, a.pool.as_deref()).await?;
            Ok(Output {
                text: clients.iter().map(client_line).collect(),
                json: Value::Array(clients.iter().map(admin::client_json).collect()),
            })
        }
        AdminCommand::Keys(KeysCommand::Rotate(a)) => {
            let key = admin::rotate_keys(idp, &a.pool).await?;
            Ok(Output {
                text: format!(
                    "kid: {}\nsigns_from: {}\n",
                    key.kid,
                    rfc3339(key.activates_at)
                ),
                json: admin::rotated_json(&key),
            })
        }
        AdminCommand::Users(c) => users(idp, c, stdin_password).await,
    }
}

async fn users(
    idp: &IdentityProvider,
    command: UsersCommand,
    stdin_password: Option<Secret>,
) -> Result<Output, AdminError> {
    match command {
        UsersCommand::Create(a) => {
            let password = match (stdin_password, a.password, a.temporary_password) {
                (Some(p), _, _) => Some((p, !a.temporary)),
                (None, Some(p), _) => Some((Secret::new(p), !a.temporary)),
                (None, None, Some(p)) => Some((Secret::new(p), false)),
                (None, None, None) => None,
            };
            let details = admin::create_user(
                idp,
                NewUser {
                    pool: a.user.target.pool,
                    username: a.user.username,
                    attributes: a.attributes,
                    permanent: password.as_ref().is_none_or(|(_, permanent)| *permanent),
                    password: password.map(|(p, _)| p),
                    confirmed: a.confirmed,
                },
            )
            .await?;
            Ok(Output {
                text: format!("{}\n", details.user.sub),
                json: admin::user_details_json(&details),
            })
        }
        UsersCommand::List(a) => {
            let users = admin::all_users(idp, &a.pool).await?;
            Ok(Output {
                text: users
                    .iter()
                    .map(|u| {
                        format!(
                            "{}\t{}\t{}\t{}\n",
                            u.username,
                            u.status,
                            if u.enabled { "enabled" } else { "disabled" },
                            u.sub
                        )
                    })
                    .collect(),
                json: Value::Array(users.iter().map(|u| admin::user_json(u, None)).collect()),
            })
        }
        UsersCommand::Show(a) => {
            let details = admin::show_user(idp, &a.target.pool, &a.username).await?;
            Ok(Output {
                text: user_block(&details),
                json: admin::user_details_json(&details),
            })
        }
        UsersCommand::Delete(a) => {
            admin::delete_user(idp, &a.target.pool, &a.username).await?;
            Ok(Output {
                text: format!(
                    "deleted user {:?} from pool {:?}\n",
                    a.username, a.target.pool
                ),
                json: admin::deleted_json(&a.target.pool, &a.username),
            })
        }
        UsersCommand::SetPassword(a) => {
            let u = &a.user;
            let password = match (stdin_password, a.password) {
                (Some(p), _) => p,
                (None, Some(p)) => Secret::new(p),
                (None, None) => return Err(AdminError::Invalid("no password given".into())),
            };
            let details =
                admin::set_password(idp, &u.target.pool, &u.username, &password, !a.temporary)
                    .await?;
            let kind = if a.temporary {
                "temporary"
            } else {
                "permanent"
            };
            Ok(changed(&details, &format!("{kind} password set")))
        }
        UsersCommand::Confirm(a) => {
            let details = admin::confirm_user(idp, &a.target.pool, &a.username).await?;
            Ok(changed(&details, "confirmed"))
        }
        UsersCommand::Disable(a) => {
            let details = admin::disable_user(idp, &a.target.pool, &a.username).await?;
            Ok(changed(&details, "disabled; its tokens are revoked"))
        }
        UsersCommand::Enable(a) => {
            let details = admin::enable_user(idp, &a.target.pool, &a.username).await?;
            Ok(changed(&details, "enabled"))
        }
        UsersCommand::SignOut(a) => {
            let details = admin::sign_out(idp, &a.target.pool, &a.username).await?;
            Ok(changed(&details, "signed out; its tokens are revoked"))
        }
        UsersCommand::AddToGroup(a) => {
            let u = &a.user;
            let details = admin::add_to_group(idp, &u.target.pool, &u.username, &a.group).await?;
            Ok(changed(&details, &format!("added to group {:?}", a.group)))
        }
        UsersCommand::RemoveFromGroup(a) => {
            let u = &a.user;
            let details =
                admin::remove_from_group(idp, &u.target.pool, &u.username, &a.group).await?;
            Ok(changed(
                &details,
                &format!("removed from group {:?}", a.group),
            ))
        }
    }
}

/// Output of a command that changed a user: a sentence, or the user as `show` gives it.
fn changed(details: &UserDetails, what: &str) -> Output {
    let user = &details.user;
    Output {
        text: format!(
            "user {:?} {what} (status {}, {})\n",
            user.username,
            user.status,
            if user.enabled { "enabled" } else { "disabled" }
        ),
        json: admin::user_details_json(details),
    }
}

/// One line naming what went wrong (never a password: none of these messages holds one).
fn failure(e: AdminError, config_path: &Path) -> Failure {
    match e {
        AdminError::UnknownPool(p) => {
            Failure::Error(format!("no pool {p:?} in {}", config_path.display()))
        }
        AdminError::Config(m) => Failure::Config(format!("{}: {m}", config_path.display())),
        AdminError::Store(m) => Failure::Error(format!("{m} (store of {})", config_path.display())),
        other => Failure::Error(other.to_string()),
    }
}

/// Reads one line (the password) from standard input.
fn read_password_stdin() -> Result<Secret, Failure> {
    let mut stdin = std::io::stdin();
    let mut buf = String::new();
    let read = if stdin.is_terminal() {
        eprintln!("reading the password from standard input (it is echoed)");
        stdin.read_line(&mut buf)
    } else {
        stdin.read_to_string(&mut buf)
    };
    read.map_err(|e| Failure::Error(format!("cannot read the password from stdin: {e}")))?;
    let line = buf.strip_suffix('\n').unwrap_or(&buf);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains('\n') {
        return Err(Failure::Error(
            "the password on stdin must be a single line".into(),
        ));
    }
    if line.is_empty() {
        return Err(Failure::Error("no password on stdin".into()));
    }
    Ok(Secret::new(line.to_owned()))
}

/// `key: value` lines for `users show` (no password hash, ever).
fn user_block(d: &UserDetails) -> String {
    let u = &d.user;
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(&escape(v));
        out.push('\n');
    };
    line("username", &u.username);
    line("pool", &u.pool);
    line("sub", &u.sub);
    line("status", u.status.as_str());
    line("enabled", if u.enabled { "true" } else { "false" });
    line(
        "password_set",
        if u.password_hash.is_some() {
            "true"
        } else {
            "false"
        },
    );
    line("groups", &d.groups.join(","));
    line("created_at", &rfc3339(u.created_at));
    line("updated_at", &rfc3339(u.updated_at));
    if let Some(t) = u.locked_until {
        line("locked_until", &rfc3339(t));
    }
    for (name, value) in &u.attributes {
        line(&format!("attribute.{name}"), value);
    }
    out
}

fn client_line(c: &ClientRecord) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(",")
        }
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\n",
        c.client_id,
        c.pool,
        if c.public { "public" } else { "confidential" },
        list(&c.grants),
        list(&c.allowed_scopes)
    )
}

/// Control characters would break the one-value-per-line format: show them escaped.
fn escape(v: &str) -> String {
    if v.chars().any(char::is_control) {
        v.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        v.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_and_escapes() {
        assert_eq!(
            parse_attribute("email=a=b@x").ok(),
            Some(("email".into(), "a=b@x".into()))
        );
        assert!(parse_attribute("=x").is_err());
        assert!(parse_attribute("x").is_err());
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("plain é"), "plain é");
    }
}
