//! TLS to `https://` backends: the system's roots plus those of `[server] ca_file`, HTTP/1.1
//! only (ALPN `http/1.1`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::UpstreamError;
use super::io::Stream;

/// Connects TLS clients; the trust store is built on first use (reading the system's roots
/// costs milliseconds, which a gateway with only `http://` backends never pays).
#[derive(Clone)]
pub struct Connector {
    extra_roots: Arc<Vec<CertificateDer<'static>>>,
    connector: Arc<std::sync::OnceLock<Result<TlsConnector, String>>>,
}

impl Connector {
    /// `ca_file`'s certificates are read now: an unusable file is refused at start.
    pub fn new(ca_file: Option<&str>) -> Result<Connector, String> {
        let extra_roots = match ca_file {
            None => Vec::new(),
            Some(file) => portcullis_auth::outbound_tls::read_der_roots(
                Path::new(file),
                portcullis_auth::outbound_tls::CA_FILE_KEY,
            )?,
        };
        Ok(Connector {
            extra_roots: Arc::new(extra_roots),
            connector: Arc::new(std::sync::OnceLock::new()),
        })
    }

    fn connector(&self) -> Result<&TlsConnector, UpstreamError> {
        self.connector
            .get_or_init(|| {
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
                    self.extra_roots.iter().cloned(),
                    provider.clone(),
                )
                .map_err(|e| format!("TLS trust store: {e}"))?;
                let mut config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS versions: {e}"))?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok(TlsConnector::from(Arc::new(config)))
            })
            .as_ref()
            .map_err(|e| UpstreamError::Connect(e.clone()))
    }

    pub async fn connect(&self, host: &str, tcp: TcpStream) -> Result<Stream, UpstreamError> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| UpstreamError::Connect(format!("TLS server name: {e}")))?;
        let tls = self
            .connector()?
            .connect(name, tcp)
            .await
            .map_err(|e| UpstreamError::Connect(format!("TLS: {e}")))?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}
