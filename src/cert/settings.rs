//! `[client_ca]`: the CAs whose client certificates sign people in, and their revocation lists.
//! Every file is read here, so a bad path or a CA that is not a CA is reported with its key.

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use serde::Deserialize;

use crate::settings::{list, pem_certificates, resolve, Checker};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawClientCa {
    pub bundle: Option<String>,
    #[serde(deserialize_with = "list::string_or_list")]
    pub crl: Vec<String>,
    pub danger_accept_expired_crl: Option<bool>,
    /// With several CAs in the bundle: let any of them issue any user (no binding; read by
    /// `identity`).
    pub danger_any_ca_for_any_user: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct TrustSettings {
    /// Trust anchors for client certificates, DER, each checked to be a CA.
    pub bundle: Vec<CertificateDer<'static>>,
    /// Where `client_ca.bundle` was read from (resolved against the config file's directory):
    /// `proxy-config --config` gives the proxy the same file.
    pub bundle_path: PathBuf,
    /// CRL files (re-read when they change) and whether an expired one still counts.
    pub crl_files: Vec<PathBuf>,
    pub danger_accept_expired_crl: bool,
}

impl TrustSettings {
    /// `client_ca.bundle` is required; every CRL must already be readable.
    pub fn from_raw(c: &mut Checker, raw: &RawClientCa, base: &Path) -> Self {
        let bundle_path = raw
            .bundle
            .as_deref()
            .map(|p| resolve(base, p))
            .unwrap_or_default();
        let bundle = match raw.bundle.as_deref() {
            Some(_) => ca_bundle(c, &bundle_path),
            None => {
                c.fail(
                    "client_ca.bundle",
                    "missing",
                    "set it to the PEM file of the CA that issued your client certificates",
                );
                Vec::new()
            }
        };
        let crl_files: Vec<PathBuf> = raw.crl.iter().map(|p| resolve(base, p)).collect();
        for path in &crl_files {
            if let Err(e) = super::crl::read_crl(path) {
                c.fail(
                    "client_ca.crl",
                    format!("{}: {e}", path.display()),
                    "a CRL file in PEM (-----BEGIN X509 CRL-----) or DER, readable by certgate",
                );
            }
        }
        Self {
            bundle,
            bundle_path,
            crl_files,
            danger_accept_expired_crl: raw.danger_accept_expired_crl.unwrap_or(false),
        }
    }
}

fn ca_bundle(c: &mut Checker, path: &Path) -> Vec<CertificateDer<'static>> {
    let Some(certs) = pem_certificates(
        c,
        "client_ca.bundle",
        path,
        "it must contain the CA certificate(s) as -----BEGIN CERTIFICATE----- blocks",
    ) else {
        return Vec::new();
    };
    for (i, der) in certs.iter().enumerate() {
        if let Err(why) = super::check_is_ca(der) {
            c.fail(
                "client_ca.bundle",
                format!("{}: certificate #{} {why}", path.display(), i + 1),
                "point it at the CA that issued your client certificates, not at a client certificate",
            );
        }
    }
    certs
}
