//! How a handler calls the gateway back the way AWS samples do:
//! `boto3.client("apigatewaymanagementapi", endpoint_url=f"https://{domainName}/{stage}")`.
//!
//! The gateway's `@connections` API is on the admin listener (plain HTTP, or its own TLS with
//! `admin_tls`), while the handler asks for `https://` on the public name. The
//! [`CallbackProxy`] closes that gap without a change to the handler: every function gets
//! `HTTPS_PROXY` pointing at this loopback proxy. A `CONNECT` to the gateway's own name and
//! port is answered here, TLS is terminated inside the tunnel with a certificate of an
//! ephemeral CA (which the function trusts through `AWS_CA_BUNDLE` / `NODE_EXTRA_CA_CERTS`),
//! and the decrypted bytes go to the admin listener unchanged, so the `Host` header and the
//! SigV4 signature stay valid. With `admin_tls` they go inside a TLS connection of the
//! proxy's own, whose client configuration the gateway gives (it trusts the certificate the
//! admin listener serves); nothing crosses the wire in plain text. Any other `CONNECT`
//! is a plain tunnel, so the handler's other HTTPS calls work as before. The function signs
//! with a credential minted at start (scope `connections` only) that the gateway adds in
//! memory to the credentials its admin listener accepts.
//!
//! Pure rules are in `connect` (heads, routes) and `authority` (certificates).

mod authority;
mod connect;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_config::{Credential, CredentialScope, Secret};
use rand::Rng;
use rand::distr::Alphanumeric;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::FunctionError;
use authority::Authority;
use connect::{Gateway, Head, Refused, Route, Target};

/// Most tunnels open at once; past this a `CONNECT` is answered 503.
pub const MAX_TUNNELS: usize = 256;
/// How long a client may take to send its `CONNECT` head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the TLS handshake inside a gateway tunnel may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dialing the target (or the admin listener) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A tunnel with no byte either way for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Buffer of each direction of a tunnel.
const PIPE_BUFFER: usize = 16 * 1024;
/// The system's CA bundle, appended to the function's so that real AWS endpoints still verify.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Largest system bundle read.
const MAX_SYSTEM_ROOTS: u64 = 8 * 1024 * 1024;

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const UNREACHABLE: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const TOO_SLOW: &[u8] =
    b"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The running proxy, its CA files and the minted credential. Dropping it stops accepting
/// and removes the files; open tunnels end on their own (idle timeout).
pub struct CallbackProxy {
    addr: SocketAddr,
    credential: Credential,
    ca_file: PathBuf,
    bundle_file: PathBuf,
    accept: JoinHandle<()>,
    _files: tempfile::TempDir,
}

impl Drop for CallbackProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl std::fmt::Debug for CallbackProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackProxy")
            .field("addr", &self.addr)
            .field("credential", &self.credential.access_key_id)
            .finish_non_exhaustive()
    }
}

struct Shared {
    admin: SocketAddr,
    /// TLS to the admin listener (`admin_tls`); `None`: plain TCP.
    admin_tls: Option<tokio_rustls::TlsConnector>,
    gateway: Gateway,
    authority: Authority,
}

impl CallbackProxy {
    /// Starts the proxy on `127.0.0.1` (an ephemeral port) for a gateway whose events say
    /// `domain_name` and whose admin listener is `admin`, reached over TLS with `admin_tls`
    /// when the listener has TLS (the configuration decides whom it trusts).
    pub async fn start(
        admin: SocketAddr,
        domain_name: &str,
        admin_tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<CallbackProxy, FunctionError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            FunctionError::Gateway(format!("callback proxy: {what}: {e}"))
        };
        let authority = Authority::generate().map_err(|e| fail("CA", &e))?;
        let files = tempfile::Builder::new()
            .prefix("portcullis-callback-")
            .tempdir()
            .map_err(|e| fail("temporary directory", &e))?;
        let ca_file = files.path().join("ca.pem");
        let bundle_file = files.path().join("bundle.pem");
        std::fs::write(&ca_file, authority.ca_pem()).map_err(|e| fail("CA file", &e))?;
        std::fs::write(&bundle_file, bundle(authority.ca_pem(), &system_roots()))
            .map_err(|e| fail("CA bundle", &e))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| fail("bind", &e))?;
        let addr = listener.local_addr().map_err(|e| fail("bind", &e))?;
        let shared = Arc::new(Shared {
            admin: reachable(admin),
            admin_tls: admin_tls.map(tokio_rustls::TlsConnector::from),
            gateway: Gateway::from_domain_name(domain_name),
            authority,
        });
        let accept = tokio::spawn(serve(listener, shared));
        tracing::info!(%addr, "functions callback proxy listening");
        Ok(CallbackProxy {
            addr,
            credential: mint(),
            ca_file,
            bundle_file,
            accept,
            _files: files,
        })
    }

    /// Where the proxy listens (always loopback).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The credential functions sign with: the admin listener must accept it (scope
    /// `connections` only). It lives in memory only, for this process's lifetime.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The variables every function gets so that the AWS samples' management client reaches
    /// the gateway: the proxy, the CA files and the minted credential. A function's own
    /// `environment` may replace any of them.
    pub fn environment(&self) -> Vec<(String, String)> {
        let proxy = format!("http://{}", self.addr);
        let vars = [
            ("HTTPS_PROXY", proxy.clone()),
            ("https_proxy", proxy),
            ("NO_PROXY", String::new()),
            ("no_proxy", String::new()),
            ("AWS_CA_BUNDLE", self.bundle_file.display().to_string()),
            ("NODE_EXTRA_CA_CERTS", self.ca_file.display().to_string()),
            ("AWS_ACCESS_KEY_ID", self.credential.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.credential.secret_access_key.expose().to_owned(),
            ),
        ];
        vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

/// A fresh access key id (`PCB` and 17 characters, shaped like AWS's) and secret (40
/// characters), scope `connections`.
fn mint() -> Credential {
    let mut rng = rand::rng();
    let mut random = |n: usize| -> String {
        (&mut rng)
            .sample_iter(Alphanumeric)
            .take(n)
            .map(char::from)
            .collect()
    };
    let access_key_id = format!("PCB{}", random(17).to_ascii_uppercase());
    let secret = random(40);
    Credential {
        access_key_id,
        secret_access_key: Secret::new(secret),
        scopes: vec![CredentialScope::Connections],
    }
}

/// The admin listener's address as a dialable one: an unspecified bind address means this
/// host.
fn reachable(admin: SocketAddr) -> SocketAddr {
    if admin.ip().is_unspecified() {
        let ip = match admin {
            SocketAddr::V4(_) => std::net::IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(ip, admin.port())
    } else {
        admin
    }
}

fn system_roots() -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Ok(file) = std::fs::File::open(SYSTEM_ROOTS) {
        // A partial read leaves the roots read so far; the CA comes first regardless.
        let _ = file.take(MAX_SYSTEM_ROOTS).read_to_string(&mut text);
    }
    text
}

/// The CA first, then the system roots.
fn bundle(ca: &str, system: &str) -> String {
    let mut out = String::with_capacity(ca.len() + system.len() + 1);
    out.push_str(ca);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(system);
    out
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_TUNNELS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "callback proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Best effort, without waiting: a full proxy spends nothing on refusals.
            let _ = stream.try_write(BUSY);
            tracing::warn!(limit = MAX_TUNNELS, "callback proxy: too many tunnels");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = tunnel(stream, &shared).await {
                tracing::debug!(error = %e, "callback proxy: tunnel ended");
            }
        });
    }
}

/// One client connection: its `CONNECT` head, then the tunnel.
async fn tunnel(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    let (target, early) = match timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(Ok(head))) => head,
        Ok(Ok(Err(refused))) => return client.write_all(refused.response()).await,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    match connect::route(&target, &shared.gateway) {
        Route::Gateway => {
            // A client waits for the 200 before its TLS hello.
            if !early.is_empty() {
                return client.write_all(Refused::Malformed.response()).await;
            }
            let config = match shared.authority.server_config(&target.host) {
                Ok(config) => config,
                Err(e) => {
                    tracing::warn!(error = %e, "callback proxy: no certificate");
                    return client.write_all(UNREACHABLE).await;
                }
            };
            let admin = match timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.admin)).await {
                Ok(Ok(admin)) => admin,
                Ok(Err(_)) => return client.write_all(UNREACHABLE).await,
                Err(_) => return client.write_all(TOO_SLOW).await,
            };
            let admin = match &shared.admin_tls {
                None => Admin::Plain(admin),
                Some(connector) => {
                    let name = ServerName::IpAddress(shared.admin.ip().into());
                    match timeout(HANDSHAKE_TIMEOUT, connector.connect(name, admin)).await {
                        Ok(Ok(tls)) => Admin::Tls(Box::new(tls)),
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "callback proxy: TLS to the admin listener failed");
                            return client.write_all(UNREACHABLE).await;
                        }
                        Err(_) => return client.write_all(TOO_SLOW).await,
                    }
                }
            };
            client.write_all(ESTABLISHED).await?;
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let tls = timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))??;
            match admin {
                Admin::Plain(admin) => pipe(tls, admin, IDLE_TIMEOUT).await,
                Admin::Tls(admin) => pipe(tls, *admin, IDLE_TIMEOUT).await,
            }
        }
        Route::Tunnel => {
            let dial = TcpStream::connect((target.host.as_str(), target.port));
            let mut upstream = match timeout(CONNECT_TIMEOUT, dial).await {
                Ok(Ok(upstream)) => upstream,
                Ok(Err(_)) => return client.write_all(UNREACHABLE).await,
                Err(_) => return client.write_all(TOO_SLOW).await,
            };
            client.write_all(ESTABLISHED).await?;
            upstream.write_all(&early).await?;
            pipe(client, upstream, IDLE_TIMEOUT).await
        }
    }
}

/// The proxy's connection to the admin listener.
enum Admin {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Reads up to the blank line of the head; returns the target and any bytes that came after.
async fn read_head(client: &mut TcpStream) -> io::Result<Result<(Target, Vec<u8>), Refused>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match connect::parse_head(&buf) {
            Ok(Head::Partial) => {}
            Ok(Head::Complete { target, len }) => {
                return Ok(Ok((target, buf.split_off(len))));
            }
            Err(refused) => return Ok(Err(refused)),
        }
    }
}

/// Copies both ways until both sides are done, either fails, or nothing moves for `idle`.
async fn pipe<A, B>(a: A, b: B, idle: Duration) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite,
    B: AsyncRead + AsyncWrite,
{
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let both = async {
        tokio::try_join!(
            copy(&mut a_read, &mut b_write, &last, start),
            copy(&mut b_read, &mut a_write, &last, start),
        )
    };
    let watch = async {
        loop {
            let quiet = start
                .elapsed()
                .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    tokio::select! {
        r = both => r.map(|_| ()),
        () = watch => Ok(()),
    }
}

/// One direction; at end of input the other side's write half is shut down.
async fn copy<R, W>(from: &mut R, to: &mut W, last: &AtomicU64, start: Instant) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; PIPE_BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        last.store(now, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn minted_credentials_are_random_and_scoped_to_connections() {
        let a = mint();
        let b = mint();
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key.expose(), b.secret_access_key.expose());
        assert_eq!(a.access_key_id.len(), 20);
        assert_eq!(a.secret_access_key.expose().len(), 40);
        assert!(a.allows(CredentialScope::Connections));
        assert!(!a.allows(CredentialScope::Admin));
        assert!(!format!("{a:?}").contains(a.secret_access_key.expose()));
    }

    #[test]
    fn the_bundle_starts_with_the_ca_and_keeps_the_system_roots() {
        let ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----";
        let system = "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n";
        let out = bundle(ca, system);
        assert!(out.starts_with(ca));
        assert!(out.ends_with(system));
        assert!(out.contains("-----\n-----BEGIN"));
    }

    #[test]
    fn an_unspecified_admin_address_is_dialled_on_loopback() {
        let any: SocketAddr = "0.0.0.0:9001".parse().unwrap();
        assert_eq!(reachable(any), "127.0.0.1:9001".parse().unwrap());
        let v6: SocketAddr = "[::]:9001".parse().unwrap();
        assert_eq!(reachable(v6), "[::1]:9001".parse().unwrap());
        let set: SocketAddr = "10.1.2.3:9001".parse().unwrap();
        assert_eq!(reachable(set), set);
    }
}
