//! Where `portcullis push` sends, read from the configuration: the admin listener's address,
//! the stage of the chosen WebSocket API, and the first `[management]` credential allowed to
//! push. Pure: a [`Config`] in, a [`Target`] or the reason there is none out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use portcullis_client::Credentials;
use portcullis_config::{Config, CredentialScope};

/// A management endpoint and the credential to sign for it.
pub struct Target {
    /// `http://127.0.0.1:9090/prod`: the admin listener (or `--endpoint-url`) and the stage.
    pub base_url: String,
    /// Where the base URL came from, for "cannot reach" messages.
    pub origin: String,
    pub credentials: Credentials,
}

/// Resolves the target for `api` (may be left out when the configuration has exactly one
/// WebSocket API); `endpoint_url` (`http://host:port`, no stage) replaces the admin listener.
pub fn resolve(
    cfg: &Config,
    file: &str,
    api: Option<&str>,
    endpoint_url: Option<&str>,
) -> Result<Target, String> {
    let names = || cfg.websocket.keys().cloned().collect::<Vec<_>>().join(", ");
    let api = match api {
        Some(name) => cfg.websocket.get(name).ok_or_else(|| {
            if cfg.websocket.is_empty() {
                format!("no WebSocket API {name:?} in {file}: it has none")
            } else {
                format!(
                    "no WebSocket API {name:?} in {file} (its WebSocket APIs: {})",
                    names()
                )
            }
        })?,
        None => match cfg.websocket.values().collect::<Vec<_>>().as_slice() {
            [only] => *only,
            [] => return Err(format!("{file} has no WebSocket API to push to")),
            _ => {
                return Err(format!(
                    "{file} has several WebSocket APIs: choose one with --api ({})",
                    names()
                ));
            }
        },
    };
    let credential = cfg
        .management
        .credentials
        .iter()
        .find(|c| c.allows(CredentialScope::Connections))
        .ok_or_else(|| {
            format!(
                "no [management] credential with the \"connections\" scope in {file}: \
                 add one to push"
            )
        })?;
    let (base, origin) = match endpoint_url {
        Some(url) => (url.trim_end_matches('/').to_owned(), url.to_owned()),
        None => {
            let mut base =
                admin_base(cfg.server.admin_listen).map_err(|e| format!("{e} in {file}"))?;
            // `admin_tls`: the same address over https (the certificate must name it, or
            // pass --endpoint-url with the name it has).
            if cfg.server.admin_tls.is_some() {
                base = base.replacen("http://", "https://", 1);
            }
            let origin = format!("the admin listener at {base} (server.admin_listen of {file})");
            (base, origin)
        }
    };
    Ok(Target {
        base_url: format!("{base}/{}", api.stage),
        origin,
        credentials: Credentials {
            access_key_id: credential.access_key_id.clone(),
            secret_access_key: credential.secret_access_key.expose().to_owned(),
            region: cfg.management.region.clone(),
        },
    })
}

/// `http://ADDR` of a listen address; a wildcard address is reached on loopback.
pub fn admin_base(listen: SocketAddr) -> Result<String, String> {
    if listen.port() == 0 {
        return Err(
            "server.admin_listen has port 0 (chosen when the gateway starts): pass --endpoint-url"
                .to_owned(),
        );
    }
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(format!("http://{}", SocketAddr::new(ip, listen.port())))
}
