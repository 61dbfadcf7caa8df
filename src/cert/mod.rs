//! Client certificates: parsed once into [`ClientCert`], then verified into a [`VerifiedCert`].
//! Only [`TrustStore::verify`] makes a `VerifiedCert`, so nothing downstream can forget the
//! chain check, whichever way the certificate arrived (own mTLS listener or a trusted proxy).

pub mod crl;
pub mod forwarded;
pub mod issuer;
pub mod serial;
mod settings;

use std::fmt;

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::TrustAnchor;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

pub use issuer::IssuerCa;
pub use serial::Serial;
pub use settings::{RawClientCa, TrustSettings};

/// Longest chain (leaf plus intermediates) certgate will look at.
pub const MAX_CHAIN_LEN: usize = 5;

/// What a client presented: the leaf first, then any intermediates.
#[derive(Debug, Clone)]
pub struct PresentedChain(pub Vec<CertificateDer<'static>>);

/// Why a certificate was refused, with enough context to tell a person what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the certificate could not be read: {0}")]
    Malformed(String),
    #[error("the certificate chain is longer than {MAX_CHAIN_LEN} certificates")]
    ChainTooLong,
    #[error("the certificate was not issued by a CA this gateway trusts")]
    UnknownIssuer,
    #[error("the certificate expired at {} (now {})", utc(*not_after), utc(*now))]
    Expired { now: i64, not_after: i64 },
    #[error("the certificate is not valid before {} (now {})", utc(*not_before), utc(*now))]
    NotYetValid { now: i64, not_before: i64 },
    #[error(
        "the certificate is not meant for client authentication (no clientAuth extended key usage)"
    )]
    NotForClientAuth,
    #[error("a CA certificate was presented instead of a personal certificate")]
    CaAsClient,
    #[error("the certificate was revoked")]
    Revoked,
    #[error("the revocation lists cannot be read ({0}), so no certificate can be trusted")]
    RevocationUnknown(String),
    #[error("the CA's revocation list expired at {} (now {}), so no certificate of that CA can be trusted", utc(*next_update), utc(*now))]
    CrlExpired { now: i64, next_update: i64 },
    #[error("the certificate was rejected: {0}")]
    Other(String),
}

/// A Unix time as people read it, for messages.
fn utc(secs: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| secs.to_string())
}

impl CertError {
    /// What the person should do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::UnknownIssuer => "Your browser sent a certificate from another authority. Install the certificate your administrator issued for this site, then choose it when asked.",
            Self::Expired { .. } | Self::NotYetValid { .. } => "Ask your administrator for a new certificate, or check the device's date and time.",
            Self::NotForClientAuth | Self::CaAsClient => "This certificate cannot log you in. Choose your personal certificate when the browser asks.",
            Self::Revoked => "This certificate was withdrawn (a lost or replaced device?). Ask your administrator for a new one.",
            Self::CrlExpired { .. } | Self::RevocationUnknown(_) => "The administrator needs to fix or renew the revocation list.",
            _ => "Ask your administrator to issue you a new certificate.",
        }
    }
}

/// A certificate's facts, extracted once so nothing re-parses DER per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub common_name: Option<String>,
    /// The subject's OU, where the built-in CA puts the device name.
    pub device: Option<String>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
    pub dns_names: Vec<String>,
    pub serial: Serial,
    /// RFC 8705 `x5t#S256`: base64url SHA-256 of the DER.
    pub thumbprint: String,
    pub not_after: i64,
}

impl ClientCert {
    /// # Errors
    /// [`CertError::Malformed`] when the DER is not an X.509 certificate.
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        let (_, x509) =
            X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        let common_name = first_str(x509.subject().iter_common_name());
        // The built-in CA names the device in the subject's OU (for the audit log and pages).
        let device = first_str(x509.subject().iter_organizational_unit());
        let (mut emails, mut uris, mut dns_names) = (Vec::new(), Vec::new(), Vec::new());
        if let Ok(Some(san)) = x509.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(v) => emails.push((*v).to_string()),
                    GeneralName::URI(v) => uris.push((*v).to_string()),
                    GeneralName::DNSName(v) => dns_names.push((*v).to_string()),
                    _ => {}
                }
            }
        }
        Ok(Self {
            common_name,
            device,
            emails,
            uris,
            dns_names,
            serial: Serial::from_der(x509.raw_serial()),
            thumbprint: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, der)),
            not_after: x509.validity().not_after.timestamp(),
        })
    }
}

/// The first attribute value that is a string.
fn first_str<'a>(
    mut values: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Option<String> {
    values.find_map(|v| v.as_str().ok().map(String::from))
}

/// A certificate whose chain, validity and usage were checked against the trust anchors, and
/// the CA of the bundle its chain ends at.
#[derive(Debug, Clone)]
pub struct VerifiedCert(ClientCert, IssuerCa);

impl VerifiedCert {
    pub fn cert(&self) -> &ClientCert {
        &self.0
    }

    /// The CA of the bundle that the chain was verified to.
    pub fn issuer(&self) -> &IssuerCa {
        &self.1
    }
}

/// The client CA bundle, prepared once for verification.
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    /// The same CAs, in the same order.
    cas: Vec<IssuerCa>,
    revocation: crl::Revocation,
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustStore({} anchors)", self.anchors.len())
    }
}

impl TrustStore {
    /// # Errors
    /// When a bundle certificate cannot serve as a trust anchor.
    pub fn new(cas: &[CertificateDer<'static>]) -> Result<Self, CertError> {
        let anchors = cas
            .iter()
            .map(|der| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|a| a.to_owned())
                    .map_err(|e| CertError::Malformed(format!("CA certificate: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let cas = IssuerCa::bundle(cas)?;
        Ok(Self {
            anchors,
            cas,
            revocation: crl::Revocation::none(),
        })
    }

    /// Whether the certificate with this serial (a token's `x5s`) was revoked, by the built-in
    /// CA or a CRL: a revocation ends the sessions minted from it too. (Serials are compared
    /// without the issuer; a collision between two CAs fails closed.)
    pub fn is_serial_revoked(&self, serial: &str) -> bool {
        // Unknown revocation state fails closed.
        self.serial_revoked(serial).unwrap_or(true)
    }

    /// Whether `serial` is revoked, or why that cannot be known (an unreadable list).
    ///
    /// # Errors
    /// [`CertError::RevocationUnknown`] while a revocation source cannot be read.
    pub fn serial_revoked(&self, serial: &str) -> Result<bool, CertError> {
        let serial = Serial::canonical(serial);
        self.revocation.refresh_often();
        self.revocation
            .with(|crls, serials| {
                serials.contains(serial.as_ref()) || (!crls.is_empty() && crl::lists(crls, &serial))
            })
            .map_err(CertError::RevocationUnknown)
    }

    /// How many serials the built-in CA has revoked (for `/metrics`; CRL entries not counted),
    /// or `None` while a revocation source cannot be read.
    pub fn revoked_serial_count(&self) -> Option<usize> {
        self.revocation.refresh();
        self.revocation.with(|_, serials| serials.len()).ok()
    }

    /// Adds revocation sources, checked on every verification.
    pub fn with_revocation(mut self, revocation: crl::Revocation) -> Self {
        self.revocation = revocation;
        self
    }

    /// Checks chain to the anchors, validity at `now`, basic constraints, and clientAuth EKU
    /// (required on the leaf; on intermediates only when they carry an EKU at all).
    ///
    /// # Errors
    /// A [`CertError`] that says why the certificate cannot log anyone in.
    pub fn verify(&self, chain: &PresentedChain, now: i64) -> Result<VerifiedCert, CertError> {
        let (leaf, intermediates) = chain
            .0
            .split_first()
            .ok_or_else(|| CertError::Malformed("empty chain".into()))?;
        if chain.0.len() > MAX_CHAIN_LEN {
            return Err(CertError::ChainTooLong);
        }
        let parsed = ClientCert::parse(leaf)?;
        let ee = EndEntityCert::try_from(leaf).map_err(|e| CertError::Malformed(e.to_string()))?;
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or(0),
        ));
        self.revocation.refresh();
        let accept_expired = self.revocation.accept_expired;
        let issuer = self
            .revocation
            .with(|crls, serials| {
                let refs: Vec<&webpki::CertRevocationList<'static>> = crls.iter().collect();
                let options = webpki::RevocationOptionsBuilder::new(&refs).ok().map(|b| {
                    b.with_depth(webpki::RevocationCheckDepth::Chain)
                        .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                        .with_expiration_policy(if accept_expired {
                            webpki::ExpirationPolicy::Ignore
                        } else {
                            webpki::ExpirationPolicy::Enforce
                        })
                        .build()
                });
                let path = ee
                    .verify_for_usage(
                        webpki::ALL_VERIFICATION_ALGS,
                        &self.anchors,
                        intermediates,
                        time,
                        KeyUsage::client_auth(),
                        options,
                        None,
                    )
                    .map_err(|e| map_webpki_error(e, now))?;
                if serials.contains(parsed.serial.as_str()) {
                    return Err(CertError::Revoked);
                }
                // webpki hands back one of the anchors it was given.
                let anchor = path.anchor();
                self.anchors
                    .iter()
                    .position(|a| std::ptr::eq(a, anchor))
                    .and_then(|i| self.cas.get(i).cloned())
                    .ok_or_else(|| CertError::Other("the issuing CA is not in the bundle".into()))
            })
            .map_err(CertError::RevocationUnknown)??;
        // webpki accepts a leaf without any EKU for client auth; we want it stated.
        if !leaf_has_client_auth(leaf) {
            return Err(CertError::NotForClientAuth);
        }
        Ok(VerifiedCert(parsed, issuer))
    }
}

fn map_webpki_error(e: webpki::Error, now: i64) -> CertError {
    use webpki::Error as E;
    let secs = |t: UnixTime| i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match e {
        E::UnknownIssuer => CertError::UnknownIssuer,
        E::CertExpired { not_after, .. } => CertError::Expired {
            now,
            not_after: secs(not_after),
        },
        E::CertNotValidYet { not_before, .. } => CertError::NotYetValid {
            now,
            not_before: secs(not_before),
        },
        E::RequiredEkuNotFoundContext(_) => CertError::NotForClientAuth,
        E::CaUsedAsEndEntity => CertError::CaAsClient,
        E::MaximumPathDepthExceeded | E::MaximumPathBuildCallsExceeded => CertError::ChainTooLong,
        E::CertRevoked => CertError::Revoked,
        E::CrlExpired { next_update, .. } => CertError::CrlExpired {
            now,
            next_update: secs(next_update),
        },
        other => CertError::Other(format!("{other:?}")),
    }
}

fn leaf_has_client_auth(der: &[u8]) -> bool {
    X509Certificate::from_der(der)
        .ok()
        .and_then(|(_, c)| {
            c.extended_key_usage()
                .ok()
                .flatten()
                .map(|e| e.value.client_auth)
        })
        .unwrap_or(false)
}

/// Used by config validation: a trust anchor must be a CA certificate.
///
/// # Errors
/// A sentence saying what is wrong with it.
pub fn check_is_ca(der: &[u8]) -> Result<(), String> {
    let (_, c) = X509Certificate::from_der(der).map_err(|e| format!("cannot be parsed: {e}"))?;
    let subject = c.subject().to_string();
    match c.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => Ok(()),
        _ => Err(format!(
            "({subject}) is not a CA certificate (basicConstraints CA:TRUE missing)"
        )),
    }
}
