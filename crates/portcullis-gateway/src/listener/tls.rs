//! TLS on a listener (`[server] tls` and `admin_tls`): the certificate files loaded and
//! checked, the resolver that hands each new handshake the current certificate, and the
//! watcher that re-reads the files when they change.
//!
//! Loading is shared by `portcullis check` and `serve` ([`check`]): both files readable, the
//! chain and the key parse, the key belongs to the leaf certificate, the leaf is valid now.
//! Every problem is one line naming the configuration key and the file; key material is never
//! printed. A renewal replaces the files: the watcher polls their modification time and
//! length every [`POLL_INTERVAL`] (through symlinks, so a Kubernetes secret's swap is seen),
//! and a file that does not load is logged and leaves the old certificate in place. Open
//! connections keep the certificate they were made with.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use portcullis_config::{Config, Tls};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::error::GatewayError;
use crate::metrics::Metrics;

/// How often the watcher looks at the certificate files.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// A leaf certificate that ends sooner than this gets a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
/// The protocols offered in ALPN: HTTP/2 for the HTTP APIs, HTTP/1.1 for WebSocket upgrades.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The provider of every TLS object here (aws-lc-rs), whatever the process default is.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// One `{ cert, key }` pair and the configuration key it comes from (`server.tls`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub config_key: &'static str,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn new(config_key: &'static str, tls: &Tls) -> Self {
        TlsFiles {
            config_key,
            cert: PathBuf::from(&tls.cert),
            key: PathBuf::from(&tls.key),
        }
    }

    /// The files of `[server]`: `tls` then `admin_tls`, those configured.
    pub fn of(config: &Config) -> Vec<TlsFiles> {
        let server = &config.server;
        [
            ("server.tls", &server.tls),
            ("server.admin_tls", &server.admin_tls),
        ]
        .into_iter()
        .filter_map(|(name, tls)| Some(TlsFiles::new(name, tls.as_ref()?)))
        .collect()
    }

    fn cert_problem(&self, what: impl std::fmt::Display) -> String {
        format!("{}.cert: {}: {what}", self.config_key, self.cert.display())
    }

    fn key_problem(&self, what: impl std::fmt::Display) -> String {
        format!("{}.key: {}: {what}", self.config_key, self.key.display())
    }
}

/// A certificate and key that loaded and matched.
#[derive(Debug)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// The leaf's subject, for logs.
    pub subject: String,
    /// The leaf's `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
}

impl Loaded {
    /// A warning when the leaf ends within [`EXPIRY_WARNING`] of `now` (Unix seconds).
    pub fn expiry_warning(&self, files: &TlsFiles, now: i64) -> Option<String> {
        let left = self.not_after.saturating_sub(now);
        (left < EXPIRY_WARNING.as_secs() as i64).then(|| {
            files.cert_problem(format_args!(
                "certificate expires in {} hours ({})",
                left / 3600,
                date(self.not_after)
            ))
        })
    }
}

/// Reads and checks `files`; `now` is Unix seconds. The error is one line starting with the
/// configuration key (`server.tls.cert: PATH: ...`).
pub fn load(files: &TlsFiles, now: i64) -> Result<Loaded, String> {
    let pem = std::fs::read(&files.cert).map_err(|e| files.cert_problem(e))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| files.cert_problem(format_args!("not a PEM certificate chain ({e})")))?;
    let Some(leaf) = chain.first() else {
        return Err(files.cert_problem("no CERTIFICATE block in the file"));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
        files.cert_problem(format_args!("the first certificate does not parse ({e})"))
    })?;
    let subject = parsed.subject().to_string();
    let validity = parsed.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if now > not_after {
        return Err(files.cert_problem(format_args!(
            "certificate of {subject:?} expired on {}",
            date(not_after)
        )));
    }
    if now < not_before {
        return Err(files.cert_problem(format_args!(
            "certificate of {subject:?} is not valid before {}",
            date(not_before)
        )));
    }
    let key_pem = std::fs::read(&files.key).map_err(|e| files.key_problem(e))?;
    // The parser's own errors may quote the file; only say what was expected.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        files.key_problem("no private key in the file (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)")
    })?;
    drop(key_pem);
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| files.key_problem(format_args!("unusable private key ({e})")))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(files.key_problem(format_args!(
                "the key does not belong to the certificate in {}",
                files.cert.display()
            )));
        }
    }
    Ok(Loaded {
        key: Arc::new(certified),
        subject,
        not_after,
    })
}

/// What `portcullis check` and `serve` say about the TLS files of `config`: the problems
/// (each refuses the configuration) and warnings (certificates about to expire; an extra
/// CA file that holds no certificate is a problem).
pub fn check(config: &Config) -> (Vec<String>, Vec<String>) {
    let now = chrono::Utc::now().timestamp();
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    for files in TlsFiles::of(config) {
        match load(&files, now) {
            Ok(loaded) => warnings.extend(loaded.expiry_warning(&files, now)),
            Err(problem) => problems.push(problem),
        }
    }
    if let Some(ca_file) = &config.server.ca_file
        && let Err(problem) = portcullis_auth::outbound_tls::extra_roots(Path::new(ca_file))
    {
        problems.push(problem);
    }
    (problems, warnings)
}

/// The certificate new handshakes get; replaced as a whole by the watcher.
#[derive(Debug)]
pub struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        CurrentCert(RwLock::new(key))
    }

    fn get(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, key: Arc<CertifiedKey>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = key;
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The client side of the gateway's own calls to its admin listener (the functions' callback
/// proxy, see `portcullis_functions::CallbackProxy`): the listener is trusted when it presents
/// exactly the certificate `current` holds now, and proves it holds that certificate's key.
/// No CA, name or `ca_file` is involved: the caller knows which certificate it serves.
/// ALPN `http/1.1` (what the proxy's tunnels carry).
pub fn own_admin_client_config(
    current: Arc<CurrentCert>,
) -> Result<Arc<rustls::ClientConfig>, GatewayError> {
    let provider = provider();
    let verifier = Arc::new(OwnCertificate {
        current,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts the certificate the gateway's admin listener serves now, and no other.
#[derive(Debug)]
struct OwnCertificate {
    current: Arc<CurrentCert>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let served = self.current.get();
        match served.end_entity_cert() {
            Ok(own) if own.as_ref() == end_entity.as_ref() => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// TLS 1.2 and 1.3 with the aws-lc-rs provider, ALPN [`ALPN`], the certificate of `current`.
pub fn server_config(current: Arc<CurrentCert>) -> Result<ServerConfig, GatewayError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(current);
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The acceptor of a listener (`public` or `admin`) with `tls` configured, and the
/// certificate it serves, see [`acceptor`].
pub fn listener_acceptor(
    listener: &'static str,
    tls: Option<&Tls>,
    metrics: &Arc<Metrics>,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> Result<Option<(TlsAcceptor, Arc<CurrentCert>)>, GatewayError> {
    let Some(tls) = tls else {
        return Ok(None);
    };
    let config_key = if listener == "admin" {
        "server.admin_tls"
    } else {
        "server.tls"
    };
    let files = TlsFiles::new(config_key, tls);
    acceptor(listener, files, metrics, tasks, stop.clone()).map(Some)
}

/// Loads the files of `tls` (refusing to start when they are unusable), and keeps them
/// current: the watcher runs in `tasks` until `stop`. Returns the acceptor and the
/// certificate new handshakes get (replaced when the files change).
pub fn acceptor(
    listener: &'static str,
    files: TlsFiles,
    metrics: &Arc<Metrics>,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Result<(TlsAcceptor, Arc<CurrentCert>), GatewayError> {
    let now = chrono::Utc::now().timestamp();
    let loaded = load(&files, now).map_err(GatewayError::Tls)?;
    if let Some(warning) = loaded.expiry_warning(&files, now) {
        warn!(listener, "{warning}");
    }
    info!(listener, subject = %loaded.subject, expires = %date(loaded.not_after), "TLS certificate loaded");
    let current = Arc::new(CurrentCert::new(loaded.key));
    let config = server_config(current.clone())?;
    let watcher = Watcher {
        listener,
        stamp: stamp(&files),
        files,
        current: current.clone(),
        metrics: metrics.clone(),
    };
    tasks.spawn(watcher.run(POLL_INTERVAL, stop));
    Ok((TlsAcceptor::from(Arc::new(config)), current))
}

/// What identifies a version of the files: modification time and length of both.
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert, &files.key].map(|path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    })
}

struct Watcher {
    listener: &'static str,
    files: TlsFiles,
    stamp: Stamp,
    current: Arc<CurrentCert>,
    metrics: Arc<Metrics>,
}

impl Watcher {
    async fn run(mut self, every: Duration, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let files = self.files.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || stamp(&files)).await else {
                continue;
            };
            if now == self.stamp {
                continue;
            }
            // A failed load is not retried until the files change again (the second half of
            // a renewal written file by file is such a change).
            self.stamp = now;
            let files = self.files.clone();
            let loaded =
                tokio::task::spawn_blocking(move || load(&files, chrono::Utc::now().timestamp()))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
            self.apply(loaded);
        }
    }

    fn apply(&self, loaded: Result<Loaded, String>) {
        match loaded {
            Ok(loaded) => {
                info!(
                    listener = self.listener,
                    subject = %loaded.subject,
                    expires = %date(loaded.not_after),
                    "TLS certificate reloaded; new handshakes use it"
                );
                if let Some(warning) =
                    loaded.expiry_warning(&self.files, chrono::Utc::now().timestamp())
                {
                    warn!(listener = self.listener, "{warning}");
                }
                self.current.set(loaded.key);
                self.metrics.tls_reload(self.listener, "ok");
            }
            Err(problem) => {
                warn!(
                    listener = self.listener,
                    "TLS certificate not reloaded, the previous one stays: {problem}"
                );
                self.metrics.tls_reload(self.listener, "failed");
            }
        }
    }
}

/// `2026-12-04 16:00:00 UTC`.
fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
