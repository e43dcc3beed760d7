//! rustls client configuration for HTTPS load (ring provider, HTTP/1.1 by ALPN).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// A connector trusting the PEM certificates in `ca_file`, or the system's roots.
pub fn connector(ca_file: Option<&str>) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read {path}: {e}"))?;
            for c in certs {
                let c = c.map_err(|e| format!("{path}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("{path}: not a CA certificate ({e})"))?;
            }
            if roots.is_empty() {
                return Err(format!("{path}: no PEM certificate in the file"));
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c); // a malformed system certificate is skipped
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(cfg)))
}
