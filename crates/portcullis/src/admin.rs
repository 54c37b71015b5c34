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

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use portcullis_config::Secret;
use portcullis_idp::{
    ClientRecord, Fault, IdentityProvider, IdpError, MAX_LIST_USERS, UserDetails, UserRecord,
};
use serde_json::{Value, json};

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

/// What an error message names.
#[derive(Default, Clone, Copy)]
struct Ctx<'a> {
    pool: Option<&'a str>,
    username: Option<&'a str>,
    group: Option<&'a str>,
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
            .map_err(|e| failure(e, config_path, Ctx::default()))?;
        dispatch(&idp, config_path, command, stdin_password).await
    })
}

async fn dispatch(
    idp: &IdentityProvider,
    config_path: &Path,
    command: AdminCommand,
    stdin_password: Option<Secret>,
) -> Result<Output, Failure> {
    match command {
        AdminCommand::Pools(PoolsCommand::List(_)) => Ok(pools_list(idp)),
        AdminCommand::Groups(GroupsCommand::List(a)) => {
            let ctx = pool_ctx(&a.pool);
            let groups = idp
                .list_groups(&a.pool)
                .await
                .map_err(|e| failure(e, config_path, ctx))?;
            Ok(Output {
                text: groups.iter().map(|g| format!("{g}\n")).collect(),
                json: Value::Array(groups.iter().map(|g| json!({ "name": g })).collect()),
            })
        }
        AdminCommand::Clients(ClientsCommand::List(a)) => {
            let pools = match &a.pool {
                Some(p) => vec![p.clone()],
                None => idp.pool_names(),
            };
            let mut clients = Vec::new();
            for pool in &pools {
                clients.extend(
                    idp.list_clients(pool)
                        .await
                        .map_err(|e| failure(e, config_path, pool_ctx(pool)))?,
                );
            }
            Ok(Output {
                text: clients.iter().map(client_line).collect(),
                json: Value::Array(clients.iter().map(client_json).collect()),
            })
        }
        AdminCommand::Keys(KeysCommand::Rotate(a)) => {
            let ctx = pool_ctx(&a.pool);
            let fail = |e| failure(e, config_path, ctx);
            let kid = idp.rotate_keys(&a.pool).await.map_err(fail)?;
            let activates_at = idp
                .store()
                .list_signing_keys(&a.pool)
                .await
                .map_err(|e| fail(e.into()))?
                .into_iter()
                .find(|k| k.kid == kid)
                .map(|k| k.activates_at)
                .ok_or_else(|| Failure::Error(format!("new key {kid:?} is not in the store")))?;
            let signs_from = rfc3339(activates_at);
            Ok(Output {
                text: format!("kid: {kid}\nsigns_from: {signs_from}\n"),
                json: json!({
                    "pool": a.pool,
                    "kid": kid,
                    "signs_from": signs_from,
                    "signs_from_unix": activates_at,
                }),
            })
        }
        AdminCommand::Users(c) => users(idp, config_path, c, stdin_password).await,
    }
}

async fn users(
    idp: &IdentityProvider,
    config_path: &Path,
    command: UsersCommand,
    stdin_password: Option<Secret>,
) -> Result<Output, Failure> {
    match command {
        UsersCommand::Create(a) => create(idp, config_path, a, stdin_password).await,
        UsersCommand::List(a) => {
            let fail = |e| failure(e, config_path, pool_ctx(&a.pool));
            let mut users: Vec<UserRecord> = Vec::new();
            loop {
                let after = users.last().map(|u| u.username.clone());
                let page = idp
                    .list_users(&a.pool, after.as_deref(), MAX_LIST_USERS)
                    .await
                    .map_err(fail)?;
                let full = page.len() >= MAX_LIST_USERS as usize;
                users.extend(page);
                if !full {
                    break;
                }
            }
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
                json: Value::Array(users.iter().map(|u| user_json(u, None)).collect()),
            })
        }
        UsersCommand::Show(a) => {
            let details = idp
                .show_user(&a.target.pool, &a.username)
                .await
                .map_err(|e| failure(e, config_path, user_ctx(&a)))?;
            Ok(Output {
                text: user_block(&details),
                json: user_json(&details.user, Some(&details.groups)),
            })
        }
        UsersCommand::Delete(a) => {
            idp.delete_user(&a.target.pool, &a.username)
                .await
                .map_err(|e| failure(e, config_path, user_ctx(&a)))?;
            Ok(Output {
                text: format!(
                    "deleted user {:?} from pool {:?}\n",
                    a.username, a.target.pool
                ),
                json: json!({ "pool": a.target.pool, "username": a.username, "deleted": true }),
            })
        }
        UsersCommand::SetPassword(a) => {
            let u = &a.user;
            let password = match (stdin_password, a.password) {
                (Some(p), _) => p,
                (None, Some(p)) => Secret::new(p),
                (None, None) => return Err(Failure::Error("no password given".into())),
            };
            idp.set_password(&u.target.pool, &u.username, &password, !a.temporary)
                .await
                .map_err(|e| failure(e, config_path, user_ctx(u)))?;
            let kind = if a.temporary {
                "temporary"
            } else {
                "permanent"
            };
            after_change(idp, config_path, u, &format!("{kind} password set")).await
        }
        UsersCommand::Confirm(a) => {
            idp.confirm_user(&a.target.pool, &a.username)
                .await
                .map_err(|e| failure(e, config_path, user_ctx(&a)))?;
            after_change(idp, config_path, &a, "confirmed").await
        }
        UsersCommand::Disable(a) => {
            idp.disable_user(&a.target.pool, &a.username)
                .await
                .map_err(|e| failure(e, config_path, user_ctx(&a)))?;
            after_change(idp, config_path, &a, "disabled; its tokens are revoked").await
        }
        UsersCommand::Enable(a) => {
            idp.enable_user(&a.target.pool, &a.username)
                .await
                .map_err(|e| failure(e, config_path, user_ctx(&a)))?;
            after_change(idp, config_path, &a, "enabled").await
        }
        UsersCommand::SignOut(a) => {
            idp.global_sign_out(&a.target.pool, &a.username)
                .await
                .map_err(|e| failure(e, config_path, user_ctx(&a)))?;
            after_change(idp, config_path, &a, "signed out; its tokens are revoked").await
        }
        UsersCommand::AddToGroup(a) => {
            let u = &a.user;
            let ctx = Ctx {
                group: Some(&a.group),
                ..user_ctx(u)
            };
            idp.add_user_to_group(&u.target.pool, &u.username, &a.group)
                .await
                .map_err(|e| failure(e, config_path, ctx))?;
            after_change(
                idp,
                config_path,
                u,
                &format!("added to group {:?}", a.group),
            )
            .await
        }
        UsersCommand::RemoveFromGroup(a) => {
            let u = &a.user;
            let ctx = Ctx {
                group: Some(&a.group),
                ..user_ctx(u)
            };
            let fail = |e| failure(e, config_path, ctx);
            // the provider ignores unknown groups here; an operator's typo deserves an error
            if !idp
                .list_groups(&u.target.pool)
                .await
                .map_err(fail)?
                .contains(&a.group)
            {
                return Err(fail(IdpError::GroupNotFound));
            }
            idp.remove_user_from_group(&u.target.pool, &u.username, &a.group)
                .await
                .map_err(fail)?;
            after_change(
                idp,
                config_path,
                u,
                &format!("removed from group {:?}", a.group),
            )
            .await
        }
    }
}

async fn create(
    idp: &IdentityProvider,
    config_path: &Path,
    a: CreateArgs,
    stdin_password: Option<Secret>,
) -> Result<Output, Failure> {
    let u = &a.user;
    let ctx = user_ctx(u);
    let mut attributes = BTreeMap::new();
    for (name, value) in a.attributes {
        if attributes.contains_key(&name) {
            return Err(Failure::Error(format!("attribute {name:?} given twice")));
        }
        attributes.insert(name, value);
    }
    let password = match (stdin_password, a.password, a.temporary_password) {
        (Some(p), _, _) => Some((p, !a.temporary)),
        (None, Some(p), _) => Some((Secret::new(p), !a.temporary)),
        (None, None, Some(p)) => Some((Secret::new(p), false)),
        (None, None, None) => None,
    };
    let user = idp
        .create_user(
            &u.target.pool,
            &u.username,
            attributes,
            password.as_ref().map(|(p, permanent)| (p, *permanent)),
        )
        .await
        .map_err(|e| failure(e, config_path, ctx))?;
    let user = if a.confirmed {
        idp.confirm_user(&u.target.pool, &u.username)
            .await
            .map_err(|e| failure(e, config_path, ctx))?;
        idp.show_user(&u.target.pool, &u.username)
            .await
            .map_err(|e| failure(e, config_path, ctx))?
            .user
    } else {
        user
    };
    Ok(Output {
        text: format!("{}\n", user.sub),
        json: user_json(&user, Some(&[])),
    })
}

/// Output of a command that changed a user: a sentence, or the user as `show` gives it.
async fn after_change(
    idp: &IdentityProvider,
    config_path: &Path,
    a: &UserArgs,
    what: &str,
) -> Result<Output, Failure> {
    let details = idp
        .show_user(&a.target.pool, &a.username)
        .await
        .map_err(|e| failure(e, config_path, user_ctx(a)))?;
    let user = &details.user;
    Ok(Output {
        text: format!(
            "user {:?} {what} (status {}, {})\n",
            user.username,
            user.status,
            if user.enabled { "enabled" } else { "disabled" }
        ),
        json: user_json(user, Some(&details.groups)),
    })
}

fn pools_list(idp: &IdentityProvider) -> Output {
    let names = idp.pool_names();
    Output {
        text: names
            .iter()
            .map(|n| format!("{n}\t{}\n", idp.issuer(n)))
            .collect(),
        json: Value::Array(
            names
                .iter()
                .map(|n| json!({ "name": n, "issuer": idp.issuer(n) }))
                .collect(),
        ),
    }
}

fn pool_ctx(pool: &str) -> Ctx<'_> {
    Ctx {
        pool: Some(pool),
        ..Ctx::default()
    }
}

fn user_ctx(a: &UserArgs) -> Ctx<'_> {
    Ctx {
        pool: Some(&a.target.pool),
        username: Some(&a.username),
        group: None,
    }
}

/// One line naming what went wrong (never a password: none of these messages holds one).
fn failure(e: IdpError, config_path: &Path, ctx: Ctx<'_>) -> Failure {
    let pool = ctx.pool.unwrap_or("?");
    let username = ctx.username.unwrap_or("?");
    let message = match &e {
        IdpError::UnknownPool(p) => {
            format!("no pool {p:?} in {}", config_path.display())
        }
        IdpError::UserNotFound => format!("no user {username:?} in pool {pool:?}"),
        IdpError::UserExists => format!("user {username:?} already exists in pool {pool:?}"),
        IdpError::GroupNotFound => {
            format!("no group {:?} in pool {pool:?}", ctx.group.unwrap_or("?"))
        }
        IdpError::InvalidPassword(v) => v.to_string(),
        IdpError::Config(m) => {
            return Failure::Config(format!("{}: {m}", config_path.display()));
        }
        other => match other.fault() {
            Fault::Operator => format!("{other} (store of {})", config_path.display()),
            Fault::Client | Fault::Internal => other.to_string(),
        },
    };
    Failure::Error(message)
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

fn user_json(u: &UserRecord, groups: Option<&[String]>) -> Value {
    let mut v = json!({
        "pool": u.pool,
        "username": u.username,
        "sub": u.sub,
        "status": u.status.as_str(),
        "enabled": u.enabled,
        "password_set": u.password_hash.is_some(),
        "attributes": u.attributes,
        "created_at": rfc3339(u.created_at),
        "updated_at": rfc3339(u.updated_at),
    });
    if let Some(groups) = groups {
        v["groups"] = json!(groups);
    }
    if let Some(t) = u.locked_until {
        v["locked_until"] = json!(rfc3339(t));
    }
    v
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

fn client_json(c: &ClientRecord) -> Value {
    json!({
        "client_id": c.client_id,
        "pool": c.pool,
        "public": c.public,
        "has_secret": c.secret_hash.is_some(),
        "grants": c.grants,
        "allowed_scopes": c.allowed_scopes,
        "callback_urls": c.callback_urls,
        "logout_urls": c.logout_urls,
    })
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

/// Unix seconds as RFC 3339 UTC (`2025-01-31T12:00:00Z`).
fn rfc3339(t: i64) -> String {
    // days to civil date: Howard Hinnant's algorithm
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

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
