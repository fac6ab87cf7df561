//! A throwaway certificate authority for trying TLS locally (`concord dev --tls`) and
//! for tests: a fresh CA and certificates it signs for loopback names.
//!
//! Its keys are written next to the data they protect, unencrypted, and it never
//! rotates anything: for production, use certificates from your own CA
//! (docs/security.md shows how).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

/// A CA that can sign certificates.
pub struct DevCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

/// PEM files of a CA and of one certificate it signed.
#[derive(Clone, Debug)]
pub struct DevFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DevFiles {
    /// Where `write_loopback_files` puts them in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self { ca: dir.join("ca.pem"), cert: dir.join("node.pem"), key: dir.join("node-key.pem") }
    }
}

fn rcgen_error(e: rcgen::Error) -> String {
    format!("cannot make a certificate: {e}")
}

impl DevCa {
    pub fn generate(name: &str) -> Result<Self, String> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let certificate = params.self_signed(&key).map_err(rcgen_error)?;
        Ok(Self { certificate, key })
    }

    pub fn certificate_pem(&self) -> String {
        self.certificate.pem()
    }

    /// A certificate and key (PEM) for `names` (DNS names or IP addresses), good as a
    /// server and as a client certificate (members are both to each other).
    pub fn issue(&self, names: &[&str]) -> Result<(String, String), String> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).map_err(rcgen_error)?;
        params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("concord"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let certificate = params.signed_by(&key, &self.certificate, &self.key).map_err(rcgen_error)?;
        Ok((certificate.pem(), key.serialize_pem()))
    }

    /// Writes `ca.pem`, `node.pem` and `node-key.pem` (for 127.0.0.1 and localhost) into
    /// `dir`, the key readable by its owner only.
    pub fn write_loopback_files(&self, dir: &Path) -> Result<DevFiles, String> {
        let (cert, key) = self.issue(&["127.0.0.1", "localhost"])?;
        let files = DevFiles::in_dir(dir);
        let write = |path: &Path, text: &str| std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        write(&files.ca, &self.certificate_pem())?;
        write(&files.cert, &cert)?;
        write(&files.key, &key)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("cannot restrict {}: {e}", files.key.display()))?;
        Ok(files)
    }
}
