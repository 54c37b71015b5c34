//! Trust for outbound `https://` calls (integrations, HTTP authorizers, JWKS, the identity
//! provider's webhooks, `portcullis push`): the system roots, plus the certificates of an
//! extra CA file (`[server] ca_file`, or a command's `--ca-file`) when one is given.
//!
//! Every outbound client of the gateway and of the identity provider starts from
//! [`client_builder`], so that one `ca_file` is trusted everywhere or nowhere.

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The key every problem with the gateway's extra CA file is reported under.
pub const CA_FILE_KEY: &str = "server.ca_file";

/// The certificates of `ca_file` (PEM, one or more), each checked to parse; the error is one
/// line naming `key` (the configuration key or flag the file came from) and the file.
pub fn read_der_roots(ca_file: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let problem = |what: &dyn std::fmt::Display| format!("{key}: {}: {what}", ca_file.display());
    let pem = std::fs::read(ca_file).map_err(|e| problem(&e))?;
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(&format_args!("not a PEM certificate bundle ({e})")))?;
    if ders.is_empty() {
        return Err(problem(&"no CERTIFICATE block in the file"));
    }
    for (i, der) in ders.iter().enumerate() {
        x509_parser::parse_x509_certificate(der)
            .map_err(|e| problem(&format_args!("certificate {} does not parse ({e})", i + 1)))?;
    }
    Ok(ders)
}

/// [`read_der_roots`], as the HTTP client takes them.
pub fn read_roots(ca_file: &Path, key: &str) -> Result<Vec<reqwest::Certificate>, String> {
    let problem = |what: &dyn std::fmt::Display| format!("{key}: {}: {what}", ca_file.display());
    read_der_roots(ca_file, key)?
        .iter()
        .enumerate()
        .map(|(i, der)| {
            reqwest::Certificate::from_der(der)
                .map_err(|e| problem(&format_args!("certificate {}: {e}", i + 1)))
        })
        .collect()
}

/// The certificates of `[server] ca_file`; the error names `server.ca_file` and the file.
pub fn extra_roots(ca_file: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    read_roots(ca_file, CA_FILE_KEY)
}

/// Adds the certificates of `ca_file` (`[server] ca_file`), if any, to the roots `builder`
/// trusts.
pub fn trust(
    builder: reqwest::ClientBuilder,
    ca_file: Option<&str>,
) -> Result<reqwest::ClientBuilder, String> {
    match ca_file {
        None => Ok(builder),
        Some(file) => Ok(builder.tls_certs_merge(extra_roots(Path::new(file))?)),
    }
}

/// A client builder that trusts the system roots and `ca_file` (`[server] ca_file`), with
/// no proxy from the environment and no redirects followed: a webhook, backend or key
/// endpoint must not bounce a call (and what it carries) elsewhere. Callers add their own
/// timeouts and pool settings.
pub fn client_builder(ca_file: Option<&str>) -> Result<reqwest::ClientBuilder, String> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true);
    trust(builder, ca_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_file_is_named_with_its_key() {
        let dir = std::env::temp_dir().join(format!("pc-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = read_roots(&empty, "--ca-file").unwrap_err();
        assert!(e.starts_with("--ca-file: "), "{e}");
        assert!(e.contains("no CERTIFICATE block"), "{e}");
        let e = extra_roots(&dir.join("missing.pem")).unwrap_err();
        assert!(e.starts_with("server.ca_file: "), "{e}");
        assert!(client_builder(Some(empty.to_str().unwrap())).is_err());
        assert!(client_builder(None).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
