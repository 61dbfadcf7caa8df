//! The built-in CA: a root key and certificate, and certificates it issues. The quickstart's
//! demo CA and the test suite's certificates both come from here (ECDSA P-256, which every
//! browser and phone accepts for client certificates; Ed25519 is not).

pub mod enroll;
mod p12;
mod status;
pub mod store;

pub use p12::{export_p12, P12Kind};
pub use status::CertStatus;

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

/// A CA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the CA certificate or key cannot be used: {0}")]
    Load(String),
    #[error("PKCS#12 export failed: {0}")]
    P12(String),
    #[error("{0} is not a valid name for a certificate")]
    BadName(String),
}

/// The CA's own key. P-256 is the default: browsers and phones do not accept Ed25519 in a
/// certificate chain, while curl, OpenSSL and certgate itself do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    P256,
    Ed25519,
}

/// A loaded CA that can sign.
pub struct Ca {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate the CA issued, with its fresh private key.
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8 PEM. Callers write it with mode 0600.
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

/// What to put into a client certificate; tests use the odd fields to make bad certificates.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub common_name: String,
    /// The device, as the subject's OU.
    pub organizational_unit: Option<String>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
    pub dns_names: Vec<String>,
    /// Offsets from now, in seconds.
    pub valid_from: i64,
    pub valid_until: i64,
    pub usage: Vec<ExtendedKeyUsagePurpose>,
}

impl ClientSpec {
    pub fn new(common_name: &str, days: i64) -> Self {
        Self {
            common_name: common_name.to_string(),
            organizational_unit: None,
            emails: Vec::new(),
            uris: Vec::new(),
            dns_names: Vec::new(),
            valid_from: -300,
            valid_until: days * 86_400,
            usage: vec![ExtendedKeyUsagePurpose::ClientAuth],
        }
    }
}

impl Ca {
    /// A new self-signed root, valid from `now` (Unix seconds; time is a parameter).
    ///
    /// # Errors
    /// When key generation or signing fails.
    pub fn generate(common_name: &str, now: i64) -> Result<Self, CaError> {
        Self::generate_with(common_name, KeyType::P256, now)
    }

    /// A new self-signed root with the given key type.
    ///
    /// # Errors
    /// When key generation or signing fails.
    pub fn generate_with(common_name: &str, key_type: KeyType, now: i64) -> Result<Self, CaError> {
        let alg = match key_type {
            KeyType::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        };
        let key = KeyPair::generate_for(alg)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = at(now);
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(3650);
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads an existing CA from its PEM certificate and key.
    ///
    /// # Errors
    /// [`CaError::Load`] when either does not parse or they do not belong together.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| CaError::Load(e.to_string()))?;
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e: rustls_pki_types::pem::Error| CaError::Load(e.to_string()))?;
        let der: CertificateDer<'static> = der;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| CaError::Load(e.to_string()))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CaError::Load(
                "the key does not belong to the certificate".into(),
            ));
        }
        let issuer =
            Issuer::from_ca_cert_der(&der, key).map_err(|e| CaError::Load(e.to_string()))?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            cert_der: der.to_vec(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    /// A client certificate for `user`, valid for `days`.
    ///
    /// # Errors
    /// When the name is unusable or signing fails.
    pub fn issue_client(&self, user: &str, days: i64, now: i64) -> Result<Issued, CaError> {
        self.issue(&ClientSpec::new(user, days), now)
    }

    /// A client (or deliberately odd) certificate as the spec says.
    ///
    /// # Errors
    /// When a name is unusable or signing fails.
    pub fn issue(&self, spec: &ClientSpec, now: i64) -> Result<Issued, CaError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&spec.common_name);
        if let Some(ou) = &spec.organizational_unit {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, ou.as_str());
        }
        let ia5 = |s: &String| {
            rcgen::string::Ia5String::try_from(s.clone()).map_err(|_| CaError::BadName(s.clone()))
        };
        for e in &spec.emails {
            params.subject_alt_names.push(SanType::Rfc822Name(ia5(e)?));
        }
        for u in &spec.uris {
            params.subject_alt_names.push(SanType::URI(ia5(u)?));
        }
        for d in &spec.dns_names {
            params.subject_alt_names.push(SanType::DnsName(ia5(d)?));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = spec.usage.clone();
        let now = at(now);
        params.not_before = now + Duration::seconds(spec.valid_from);
        params.not_after = now + Duration::seconds(spec.valid_until);
        self.sign(params)
    }

    /// A TLS server certificate for the given DNS names and IP addresses.
    ///
    /// # Errors
    /// When a name is unusable or signing fails.
    pub fn issue_server(&self, hosts: &[&str], days: i64, now: i64) -> Result<Issued, CaError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(hosts.first().copied().unwrap_or("certgate"));
        for host in hosts {
            let san = match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    rcgen::string::Ia5String::try_from(host.to_string())
                        .map_err(|_| CaError::BadName(host.to_string()))?,
                ),
            };
            params.subject_alt_names.push(san);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = at(now);
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(days);
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Result<Issued, CaError> {
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        })
    }
}

impl Ca {
    /// A CRL signed by this CA listing `revoked` (serial bytes, revocation time), valid from
    /// `now` for `days`. Proxies (nginx `ssl_crl`) and other verifiers read it.
    ///
    /// # Errors
    /// When signing fails.
    pub fn crl(
        &self,
        revoked: &[(Vec<u8>, i64)],
        now: i64,
        days: i64,
    ) -> Result<(String, Vec<u8>), CaError> {
        let params = rcgen::CertificateRevocationListParams {
            this_update: at(now),
            next_update: at(now + days.max(1) * 86_400),
            // Strictly increasing across CRLs made within one second too.
            crl_number: SerialNumber::from_slice(
                &OffsetDateTime::now_utc()
                    .unix_timestamp_nanos()
                    .max(1)
                    .to_be_bytes(),
            ),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|(serial, when)| rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: at(*when),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            // The CA certificate's own key identifier, so verifiers (OpenSSL/nginx) match the
            // CRL to an imported CA whatever method made its identifier.
            key_identifier_method: self.key_identifier(),
        };
        let crl = params.signed_by(&self.issuer)?;
        Ok((crl.pem()?, crl.der().to_vec()))
    }
}

impl Ca {
    fn key_identifier(&self) -> rcgen::KeyIdMethod {
        use x509_parser::extensions::ParsedExtension;
        x509_parser::parse_x509_certificate(&self.cert_der)
            .ok()
            .and_then(|(_, c)| {
                c.extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                        _ => None,
                    })
            })
            .map_or(rcgen::KeyIdMethod::Sha256, rcgen::KeyIdMethod::PreSpecified)
    }
}

/// A Unix time as rcgen takes it.
fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// 16 random bytes, top bit clear so the DER integer stays positive.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The system RNG failing is not recoverable; a time-derived serial still keeps issuance unique.
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        bytes.copy_from_slice(&nanos.to_be_bytes());
    }
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crl_lists_a_top_bit_serial_under_its_canonical_spelling() {
        use crate::cert::crl::lists;
        use webpki::{CertRevocationList, OwnedCertRevocationList};
        let now = 1_900_000_000;
        let ca = Ca::generate("CRL CA", now).unwrap();
        let revoked = [(vec![0x9a, 0x00, 0xab], 0), (vec![0x01, 0x02], 0)];
        let (_, der) = ca.crl(&revoked, now, 1).unwrap();
        let crl = OwnedCertRevocationList::from_der(&der)
            .map(CertRevocationList::from)
            .unwrap();
        let crls = [crl];
        assert!(lists(&crls, "9a00ab"));
        assert!(lists(&crls, "0102"));
        assert!(!lists(&crls, "9a00ac"));
        assert!(lists(&crls, "009A00AB"));
        assert!(!lists(&crls, "not hex"));
        assert!(!lists(
            &crls,
            &"ab".repeat(crate::cert::serial::MAX_BYTES + 1)
        ));
    }

    #[test]
    fn issued_client_cert_chains_to_its_ca_and_carries_client_auth() {
        // Any time: the CA reads no clock of its own.
        let now = 1_900_000_000;
        let ca = Ca::generate("Unit CA", now).unwrap();
        let alice = ca.issue_client("alice", 30, now).unwrap();
        let store = crate::cert::TrustStore::new(&[ca.cert_der.clone().into()]).unwrap();
        let chain = crate::cert::PresentedChain(vec![alice.cert_der.clone().into()]);
        let verified = store.verify(&chain, now).unwrap();
        assert_eq!(verified.cert().common_name.as_deref(), Some("alice"));
    }

    #[test]
    fn a_reloaded_ca_signs_certs_that_chain_to_the_original() {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let ca = Ca::generate("Unit CA", now).unwrap();
        let again = Ca::load(&ca.cert_pem, &ca.key_pem).unwrap();
        let bob = again.issue_client("bob", 1, now).unwrap();
        let store = crate::cert::TrustStore::new(&[ca.cert_der.clone().into()]).unwrap();
        let chain = crate::cert::PresentedChain(vec![bob.cert_der.into()]);
        assert!(store.verify(&chain, now).is_ok());
    }

    #[test]
    fn loading_a_ca_with_a_foreign_key_fails() {
        let a = Ca::generate("A", 0).unwrap();
        let b = Ca::generate("B", 0).unwrap();
        assert!(matches!(
            Ca::load(&a.cert_pem, &b.key_pem),
            Err(CaError::Load(_))
        ));
    }
}
