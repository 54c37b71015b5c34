//! The callback proxy's ephemeral certificate authority: made at start, kept in memory only,
//! trusted by the functions alone (through the CA file their environment names). It signs one
//! leaf certificate per gateway name a handler connects to; the leaves share one key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Server configurations kept for reuse; past this, new names get a fresh one each time.
const MAX_CACHED: usize = 64;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthorityError {
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    leaf_key: KeyPair,
    provider: Arc<rustls::crypto::CryptoProvider>,
    cached: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl Authority {
    /// A new CA (ECDSA P-256) and leaf key.
    pub(crate) fn generate() -> Result<Authority, AuthorityError> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Portcullis functions callback CA");
        name.push(DnType::OrganizationName, "Portcullis");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(serial());
        let key = KeyPair::generate()?;
        let ca = params.self_signed(&key)?;
        Ok(Authority {
            issuer: Issuer::new(params, key),
            ca_pem: ca.pem(),
            leaf_key: KeyPair::generate()?,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            cached: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM.
    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A TLS server configuration presenting a certificate for `host` (a DNS name or an IP
    /// literal), HTTP/1.1 only: the bytes go on to the admin listener as they are.
    pub(crate) fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, AuthorityError> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = cached.get(host) {
            return Ok(config.clone());
        }
        drop(cached);
        let config = Arc::new(self.make(host)?);
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.len() < MAX_CACHED {
            cached.insert(host.to_owned(), config.clone());
        }
        Ok(config)
    }

    fn make(&self, host: &str) -> Result<ServerConfig, AuthorityError> {
        let mut params = CertificateParams::new(vec![host.to_owned()])?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(serial());
        let leaf = params.signed_by(&self.leaf_key, &self.issuer)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// A random positive 16-byte serial number.
fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_made_once_per_name_and_cover_dns_names_and_addresses() {
        let authority = Authority::generate().unwrap();
        assert!(
            authority
                .ca_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let a = authority.server_config("localhost").unwrap();
        let b = authority.server_config("localhost").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        authority.server_config("127.0.0.1").unwrap();
        authority.server_config("::1").unwrap();
        assert_eq!(a.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
