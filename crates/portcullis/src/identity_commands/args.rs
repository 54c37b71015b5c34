//! The command line of the identity-store commands (`pools`, `users`, `groups`, `clients`,
//! `keys`): what clap parses, and the name and store arguments of each command.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};

/// The identity-store commands, flattened into the binary's top-level subcommands.
#[derive(Subcommand)]
pub enum IdentityCommand {
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
    /// Remove a user's TOTP software token (a lost authenticator app): the user signs in
    /// without a code again, or sets a new token up in a pool with `mfa = "on"`.
    RemoveMfa(UserArgs),
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
    pub(super) config: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Args)]
pub struct PoolArgs {
    #[command(flatten)]
    pub(super) store: StoreArgs,
    /// User pool (a `[pools.NAME]` of the configuration).
    #[arg(long)]
    pub(super) pool: String,
}

#[derive(Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub(super) target: PoolArgs,
    pub(super) username: String,
}

#[derive(Args)]
pub struct GroupMemberArgs {
    #[command(flatten)]
    pub(super) user: UserArgs,
    pub(super) group: String,
}

#[derive(Args)]
pub struct ClientsListArgs {
    #[command(flatten)]
    pub(super) store: StoreArgs,
    /// Only this pool's clients (default: every configured pool).
    #[arg(long)]
    pub(super) pool: Option<String>,
}

#[derive(Args)]
#[command(group(ArgGroup::new("pw").args(["password", "temporary_password", "password_stdin"])))]
pub struct CreateArgs {
    #[command(flatten)]
    pub(super) user: UserArgs,
    /// Permanent password (status CONFIRMED). Visible in shell history and process lists:
    /// prefer --password-stdin.
    #[arg(long, value_name = "PW", allow_hyphen_values = true)]
    pub(super) password: Option<String>,
    /// Temporary password (status FORCE_CHANGE_PASSWORD).
    #[arg(long, value_name = "PW", allow_hyphen_values = true)]
    pub(super) temporary_password: Option<String>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    pub(super) password_stdin: bool,
    /// The password of --password or --password-stdin is temporary.
    #[arg(long, requires = "pw", conflicts_with = "temporary_password")]
    pub(super) temporary: bool,
    /// A user attribute (repeatable), e.g. --attribute email=alice@example.com.
    #[arg(long = "attribute", value_name = "NAME=VALUE", value_parser = parse_attribute)]
    pub(super) attributes: Vec<(String, String)>,
    /// Create the user CONFIRMED even without a password.
    #[arg(long, conflicts_with_all = ["temporary_password", "temporary"])]
    pub(super) confirmed: bool,
}

#[derive(Args)]
#[command(group(ArgGroup::new("pw").required(true).args(["password", "password_stdin"])))]
pub struct SetPasswordArgs {
    #[command(flatten)]
    pub(super) user: UserArgs,
    /// The new password. Visible in shell history and process lists: prefer --password-stdin.
    #[arg(long, value_name = "PW", allow_hyphen_values = true)]
    pub(super) password: Option<String>,
    /// Read the new password from standard input (one line).
    #[arg(long)]
    pub(super) password_stdin: bool,
    /// The user must change the password at next sign-in (FORCE_CHANGE_PASSWORD).
    #[arg(long)]
    pub(super) temporary: bool,
}

pub(super) fn parse_attribute(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err("expected NAME=VALUE".to_owned()),
    }
}

impl IdentityCommand {
    /// `users confirm`, … (the prefix of error messages).
    pub(super) fn name(&self) -> &'static str {
        match self {
            IdentityCommand::Pools(PoolsCommand::List(_)) => "pools list",
            IdentityCommand::Users(c) => match c {
                UsersCommand::Create(_) => "users create",
                UsersCommand::List(_) => "users list",
                UsersCommand::Show(_) => "users show",
                UsersCommand::Delete(_) => "users delete",
                UsersCommand::SetPassword(_) => "users set-password",
                UsersCommand::Confirm(_) => "users confirm",
                UsersCommand::Disable(_) => "users disable",
                UsersCommand::Enable(_) => "users enable",
                UsersCommand::SignOut(_) => "users sign-out",
                UsersCommand::RemoveMfa(_) => "users remove-mfa",
                UsersCommand::AddToGroup(_) => "users add-to-group",
                UsersCommand::RemoveFromGroup(_) => "users remove-from-group",
            },
            IdentityCommand::Groups(GroupsCommand::List(_)) => "groups list",
            IdentityCommand::Clients(ClientsCommand::List(_)) => "clients list",
            IdentityCommand::Keys(KeysCommand::Rotate(_)) => "keys rotate",
        }
    }

    pub(super) fn store_args(&self) -> &StoreArgs {
        match self {
            IdentityCommand::Pools(PoolsCommand::List(s)) => s,
            IdentityCommand::Users(c) => match c {
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
                | UsersCommand::SignOut(a)
                | UsersCommand::RemoveMfa(a) => &a.target.store,
            },
            IdentityCommand::Groups(GroupsCommand::List(a)) => &a.store,
            IdentityCommand::Clients(ClientsCommand::List(a)) => &a.store,
            IdentityCommand::Keys(KeysCommand::Rotate(a)) => &a.store,
        }
    }
}
