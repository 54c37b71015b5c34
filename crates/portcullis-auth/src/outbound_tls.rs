//! Trust for outbound `https://` calls (integrations, HTTP authorizers, JWKS): the system
//! roots, plus the certificates of `[server] ca_file` when it is set.

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The certificates of `ca_file` (PEM, one or more); the error is one line naming
/// `server.ca_file` and the file.
pub fn extra_roots(ca_file: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let problem =
        |what: &dyn std::fmt::Display| format!("server.ca_file: {}: {what}", ca_file.display());
    let pem = std::fs::read(ca_file).map_err(|e| problem(&e))?;
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(&format_args!("not a PEM certificate bundle ({e})")))?;
    if ders.is_empty() {
        return Err(problem(&"no CERTIFICATE block in the file"));
    }
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            x509_parser::parse_x509_certificate(der).map_err(|e| {
                problem(&format_args!("certificate {} does not parse ({e})", i + 1))
            })?;
            reqwest::Certificate::from_der(der)
                .map_err(|e| problem(&format_args!("certificate {}: {e}", i + 1)))
        })
        .collect()
}

/// Adds the certificates of `ca_file`, if any, to the roots `builder` trusts.
pub fn trust(
    builder: reqwest::ClientBuilder,
    ca_file: Option<&str>,
) -> Result<reqwest::ClientBuilder, String> {
    match ca_file {
        None => Ok(builder),
        Some(file) => Ok(builder.tls_certs_merge(extra_roots(Path::new(file))?)),
    }
}
