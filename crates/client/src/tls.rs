//! The outgoing half of TLS (`ClientTls`): which CA to trust and which certificate
//! to present, if any. Shared by the Rust client and, in the server, by the peer
//! network, `concord bench` and the node's own TLS setup (`concord::tls`), which
//! also reads its PEM files with `read` and `certificates`.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Which CA to trust, and which certificate (with its key) to present, if any.
#[derive(Clone, Debug)]
pub struct ClientTls {
    ca_pem: Arc<[u8]>,
    identity_pem: Option<Arc<[u8]>>,
}

/// The bytes of `file`, or an error naming it as `what`.
pub fn read(file: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read the {what} {}: {e}", file.display()))
}

/// The PEM certificates in `pem` (read from `file`); at least one.
pub fn certificates(pem: &[u8], file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| format!("{}: not PEM certificates: {e}", file.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", file.display()));
    }
    Ok(certs)
}

impl ClientTls {
    /// Trusts the CA in `ca_file`.
    pub fn read_ca(ca_file: &Path) -> Result<Self, String> {
        let pem = read(ca_file, "CA file")?;
        certificates(&pem, ca_file)?;
        Ok(Self { ca_pem: pem.into(), identity_pem: None })
    }

    /// Trusts the CA in `ca_pem` and presents `identity_pem` (a certificate chain and
    /// its key, PEM), both already checked by the caller.
    pub fn with_identity(ca_pem: Vec<u8>, identity_pem: Vec<u8>) -> Self {
        Self { ca_pem: ca_pem.into(), identity_pem: Some(identity_pem.into()) }
    }

    /// `builder` trusting only this CA (not the system's roots), presenting our
    /// certificate if we have one.
    pub fn configure(&self, builder: reqwest::ClientBuilder) -> reqwest::Result<reqwest::ClientBuilder> {
        let mut builder = builder.use_rustls_tls().tls_built_in_root_certs(false);
        for certificate in reqwest::Certificate::from_pem_bundle(&self.ca_pem)? {
            builder = builder.add_root_certificate(certificate);
        }
        if let Some(identity) = &self.identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(identity)?);
        }
        Ok(builder)
    }
}
