//! TLS for client and peer traffic (rustls with the `ring` provider).
//!
//! With `--tls-cert`, `--tls-key` and `--tls-ca`, a node serves HTTPS only, on the one
//! listener that carries both the client API and the peer routes, and speaks HTTPS
//! to its peers (replication, forwarding, joining), trusting only the certificates
//! `--tls-ca` signed: every member's certificate must name the host of its advertised
//! address. A client certificate is optional at the handshake (clients have none),
//! but one that is presented must chain to the CA, or the handshake fails. With
//! `--peer-mtls`, the peer routes answer `401` on a connection that presented none:
//! only holders of a certificate from the cluster's CA can send Raft messages.
//!
//! `ClientTls`, the outgoing half (the CA to trust, and our certificate to present),
//! lives in the client crate (`concord_client::tls`) and is shared by the peer
//! network, the forwarder, the Rust client and `concord bench`.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::TlsAcceptor;

pub use concord_client::tls::ClientTls;
use concord_client::tls::{certificates, read};

use crate::api::error::ApiError;

/// What a node needs to serve and speak TLS.
#[derive(Clone)]
pub struct NodeTls {
    pub acceptor: TlsAcceptor,
    pub outgoing: ClientTls,
    /// Peer routes need a client certificate from the CA (`--peer-mtls`).
    pub peer_mtls: bool,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeTls(peer_mtls: {})", self.peer_mtls)
    }
}

/// Whether the connection a request came on presented a client certificate (which
/// the handshake verified against the CA). Absent on plain HTTP.
#[derive(Clone, Copy, Debug)]
pub struct ClientCertificate {
    pub presented: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl NodeTls {
    /// Loads the node's certificate chain and key and the cluster's CA; every error
    /// names the file and what is wrong with it.
    pub fn load(cert_file: &Path, key_file: &Path, ca_file: &Path, peer_mtls: bool) -> Result<Self, String> {
        let (cert_pem, key_pem, ca_pem) = (read(cert_file, "certificate")?, read(key_file, "key")?, read(ca_file, "CA file")?);
        let chain = certificates(&cert_pem, cert_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| format!("{}: no PEM private key: {e}", key_file.display()))?;
        let mut roots = RootCertStore::empty();
        for ca in certificates(&ca_pem, ca_file)? {
            roots.add(ca).map_err(|e| format!("{}: not a usable CA certificate: {e}", ca_file.display()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("cannot verify client certificates with {}: {e}", ca_file.display()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| format!("{} and {} do not make a usable certificate and key: {e}", cert_file.display(), key_file.display()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut identity = cert_pem;
        identity.extend_from_slice(b"\n");
        identity.extend_from_slice(&key_pem);
        let outgoing = ClientTls::with_identity(ca_pem, identity);
        Ok(Self { acceptor: TlsAcceptor::from(Arc::new(config)), outgoing, peer_mtls })
    }
}

/// The peer routes' guard with `--peer-mtls`: `401` unless the connection presented
/// a certificate from the cluster's CA.
pub async fn require_client_certificate(State(required): State<bool>, request: Request, next: Next) -> Response {
    let presented = request.extensions().get::<ClientCertificate>().is_some_and(|c| c.presented);
    if required && !presented {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "peer RPCs need a client certificate signed by the cluster's CA (--peer-mtls)",
        )
        .into_response();
    }
    next.run(request).await
}
