//! The identity-store commands (`pools`, `users`, `groups`, `clients`, `keys`): they open the
//! identity store named by the configuration file's `[store] url` directly, so they work whether
//! or not a gateway is running on that store.
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

mod args;

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use portcullis_config::Secret;
use portcullis_idp::manage::{self as admin, AdminError, NewUser, Target, rfc3339};
use portcullis_idp::{ClientRecord, IdentityProvider, UserDetails};
use serde_json::Value;

use crate::failure::{Failure, load_config};
pub use args::IdentityCommand;
use args::{ClientsCommand, GroupsCommand, KeysCommand, PoolsCommand, UsersCommand};

/// What a successful command prints.
struct Output {
    text: String,
    json: Value,
}

pub fn run(command: IdentityCommand) -> ExitCode {
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
        Err(failure) => failure.report(name),
    }
}

fn execute(config_path: &Path, command: IdentityCommand) -> Result<Output, Failure> {
    let cfg = load_config(config_path)?;
    // read a password before touching the store, so a bad stdin fails fast
    let stdin_password = match &command {
        IdentityCommand::Users(UsersCommand::Create(a)) if a.password_stdin => {
            Some(read_password_stdin()?)
        }
        IdentityCommand::Users(UsersCommand::SetPassword(a)) if a.password_stdin => {
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
    command: IdentityCommand,
    stdin_password: Option<Secret>,
) -> Result<Output, AdminError> {
    match command {
        IdentityCommand::Pools(PoolsCommand::List(_)) => {
            let pools = admin::pools(idp);
            Ok(Output {
                text: pools
                    .iter()
                    .map(|p| format!("{}\t{}\n", p.name, p.issuer))
                    .collect(),
                json: Value::Array(pools.iter().map(admin::pool_json).collect()),
            })
        }
        IdentityCommand::Groups(GroupsCommand::List(a)) => {
            let groups = admin::groups(idp, &a.pool).await?;
            Ok(Output {
                text: groups.iter().map(|g| format!("{g}\n")).collect(),
                json: Value::Array(groups.iter().map(|g| admin::group_json(g)).collect()),
            })
        }
        IdentityCommand::Clients(ClientsCommand::List(a)) => {
            let clients = admin::clients(idp, a.pool.as_deref()).await?;
            Ok(Output {
                text: clients.iter().map(client_line).collect(),
                json: Value::Array(clients.iter().map(admin::client_json).collect()),
            })
        }
        IdentityCommand::Keys(KeysCommand::Rotate(a)) => {
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
        IdentityCommand::Users(c) => users(idp, c, stdin_password).await,
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
        UsersCommand::RemoveMfa(a) => {
            let (removed, details) = admin::remove_mfa(idp, &a.target.pool, &a.username).await?;
            let what = if removed {
                "TOTP software token removed"
            } else {
                "had no TOTP software token"
            };
            Ok(changed(&details, what))
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
mod tests;
