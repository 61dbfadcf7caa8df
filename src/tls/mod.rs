//! The mTLS listener. The handshake asks for a client certificate but does not require one,
//! and defers the chain check to [`crate::cert::TrustStore::verify`]: that way `/auth` can
//! answer a certless or wrongly-certified browser with a page that says why, instead of a
//! TLS alert the person cannot read. Proof of possession (the CertificateVerify signature)
//! is still checked here, in the handshake.

use std::any::Any;
use std::sync::Arc;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

mod settings;

pub use settings::{RawTls, ServerTls};

/// Connection data set at accept time: which listener, and the client's certificates on mTLS.
#[derive(Debug, Clone)]
pub enum Connection {
    Plain,
    Mtls {
        peer_chain: Vec<CertificateDer<'static>>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client_ca.bundle: {0}")]
    Anchor(String),
}

/// rustls server configuration for the mTLS listener.
///
/// # Errors
/// When the server certificate and key do not fit together, or a CA cannot be a hint.
pub fn server_config(
    tls: &ServerTls,
    client_cas: &[CertificateDer<'static>],
) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let hints = client_cas
        .iter()
        .map(|der| {
            webpki::anchor_from_trusted_cert(der)
                .map(|ta| DistinguishedName::in_sequence(ta.subject.as_ref()))
                .map_err(|e| TlsError::Anchor(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let verifier = DeferredClientVerifier {
        hints,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(tls.chain.clone(), tls.key.clone_key())?;
    Ok(config)
}

#[derive(Debug)]
struct DeferredClientVerifier {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for DeferredClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    /// Accepted here, verified per request: see the module docs.
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// actix `on_connect` hook: records which listener accepted the connection and, on mTLS,
/// the client's certificates (leaf first, as `peer_certificates()` returns them).
pub fn capture_connection(conn: &dyn Any, ext: &mut Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(tls) = conn.downcast_ref::<TlsStream<TcpStream>>() {
        let (_, session) = tls.get_ref();
        let peer_chain = session
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
            .unwrap_or_default();
        ext.insert(Connection::Mtls { peer_chain });
    } else {
        ext.insert(Connection::Plain);
    }
}
