//! `[tls]`: the mTLS listener's server certificate and key, read once at start-up.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::settings::{pem_certificates, resolve, Checker};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawTls {
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug)]
pub struct ServerTls {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl ServerTls {
    /// Required exactly when the mTLS listener is on (`mtls_on`); `None` when it is off or a
    /// problem was reported.
    pub fn from_raw(c: &mut Checker, raw: &RawTls, mtls_on: bool, base: &Path) -> Option<Self> {
        match (mtls_on, raw.cert.as_deref(), raw.key.as_deref()) {
            (false, _, _) => None,
            (true, Some(cert), Some(key)) => read(c, &resolve(base, cert), &resolve(base, key)),
            (true, _, _) => {
                c.fail(
                    "tls.cert, tls.key",
                    "both are required when listen.mtls is set",
                    "point them at the mTLS listener's server certificate and key, or remove listen.mtls",
                );
                None
            }
        }
    }
}

fn read(c: &mut Checker, cert: &Path, key: &Path) -> Option<ServerTls> {
    let chain = pem_certificates(
        c,
        "tls.cert",
        cert,
        "it must contain -----BEGIN CERTIFICATE-----",
    )?;
    let key = match PrivateKeyDer::from_pem_file(key) {
        Ok(k) => Some(k),
        Err(e) => {
            c.fail(
                "tls.key",
                format!("cannot read a private key from {}: {e}", key.display()),
                "a PEM PKCS#8, SEC1 or PKCS#1 key, readable by certgate",
            );
            None
        }
    };
    Some(ServerTls { chain, key: key? })
}
