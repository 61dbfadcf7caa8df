//! The CAs of the client CA bundle, as users are bound to them (`identity::binding`) and as a
//! verified certificate and the tokens minted from it name the one it chains to.

use std::sync::Arc;

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::CertError;

/// A CA of the bundle. Two certificates with one subject and one key (a CA certificate
/// renewed, or listed twice) are one CA: chains verify to either.
#[derive(Debug, Clone)]
pub struct IssuerCa {
    /// SHA-256 of the CA certificate's DER, as `openssl x509 -fingerprint -sha256` prints it
    /// (how a config may name it).
    pub fingerprint: [u8; 32],
    /// SHA-256 of its subject and public key: who the CA is.
    pub key: [u8; 32],
    /// Its subject's common name, else the whole subject.
    pub name: Arc<str>,
    /// The keys of the bundle's CAs that issued this one (a root above an intermediate that
    /// is in the bundle too): a user bound to the root may come through the intermediate.
    pub issued_by: Vec<[u8; 32]>,
}

impl PartialEq for IssuerCa {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for IssuerCa {}

impl IssuerCa {
    /// # Errors
    /// When the DER is not a certificate.
    pub fn of(der: &[u8]) -> Result<Self, CertError> {
        let (_, c) =
            X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        let name = c
            .subject()
            .iter_common_name()
            .find_map(|v| v.as_str().ok().map(String::from))
            .unwrap_or_else(|| c.subject().to_string());
        let mut who = digest::Context::new(&digest::SHA256);
        who.update(c.subject().as_raw());
        who.update(c.public_key().raw);
        Ok(Self {
            fingerprint: sha256(der),
            key: to_array(who.finish().as_ref()),
            name: name.into(),
            issued_by: Vec::new(),
        })
    }

    /// Every CA of a bundle, in its order, each with the bundle's CAs that issued it: the
    /// parent's subject is the child's issuer, and the parent's subject key identifier, where
    /// both name one, is the child's authority key identifier. (Everything in the bundle is
    /// trusted already; this only says which CA a chain through both belongs to.)
    ///
    /// # Errors
    /// When a certificate cannot be read.
    pub fn bundle(cas: &[CertificateDer<'_>]) -> Result<Vec<Self>, CertError> {
        let parsed: Vec<X509Certificate<'_>> = cas
            .iter()
            .map(|der| {
                X509Certificate::from_der(der)
                    .map(|(_, c)| c)
                    .map_err(|e| CertError::Malformed(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let mut out: Vec<Self> = cas
            .iter()
            .map(|der| Self::of(der))
            .collect::<Result<_, _>>()?;
        for (i, child) in parsed.iter().enumerate() {
            if child.subject().as_raw() == child.issuer().as_raw() {
                continue;
            }
            for (j, parent) in parsed.iter().enumerate() {
                if i != j
                    && parent.subject().as_raw() == child.issuer().as_raw()
                    && key_ids_agree(parent, child)
                {
                    let parent_key = out[j].key;
                    if parent_key != out[i].key && !out[i].issued_by.contains(&parent_key) {
                        out[i].issued_by.push(parent_key);
                    }
                }
            }
        }
        Ok(out)
    }

    /// How tokens minted from a certificate of this CA name it (`x5ca`).
    pub fn claim(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key)
    }

    /// Whether a user bound to `bound` may come with a certificate of this CA: it is one of
    /// them, or was issued by one of them.
    pub fn within(&self, bound: &[Self]) -> bool {
        bound
            .iter()
            .any(|b| b.key == self.key || self.issued_by.contains(&b.key))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    to_array(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// A SHA-256 digest's 32 bytes.
fn to_array(digest: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest);
    out
}

/// The child's authority key identifier and the parent's subject key identifier, where both
/// are present, agree.
fn key_ids_agree(parent: &X509Certificate<'_>, child: &X509Certificate<'_>) -> bool {
    use x509_parser::extensions::ParsedExtension;
    let ski = parent
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        });
    let aki = child
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        });
    match (ski, aki) {
        (Some(s), Some(a)) => s == a,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    fn ca_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.use_authority_key_identifier_extension = true;
        params
    }

    #[test]
    fn an_intermediate_in_the_bundle_belongs_to_the_root_that_issued_it() {
        let root_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let root = ca_params("Root CA")
            .self_signed(&root_key)
            .unwrap_or_else(|e| panic!("{e}"));
        // A second certificate of the root: same subject, same key.
        let renewed = ca_params("Root CA")
            .self_signed(&root_key)
            .unwrap_or_else(|e| panic!("{e}"));
        let sub_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let issuer = Issuer::new(ca_params("Root CA"), root_key);
        let sub = ca_params("Sub CA")
            .signed_by(&sub_key, &issuer)
            .unwrap_or_else(|e| panic!("{e}"));
        let other_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let other = ca_params("Other CA")
            .self_signed(&other_key)
            .unwrap_or_else(|e| panic!("{e}"));
        let ders = [root.der().clone(), sub.der().clone(), other.der().clone()];
        let cas = IssuerCa::bundle(&ders).unwrap_or_else(|e| panic!("{e}"));
        let [root, sub, other] = [&cas[0], &cas[1], &cas[2]];
        assert_eq!(&*sub.name, "Sub CA");
        assert_eq!(sub.issued_by, vec![root.key]);
        assert!(root.issued_by.is_empty() && other.issued_by.is_empty());
        assert!(sub.within(std::slice::from_ref(root)), "bound to the root");
        assert!(sub.within(std::slice::from_ref(sub)));
        assert!(
            !root.within(std::slice::from_ref(sub)),
            "not the other way round"
        );
        assert!(!sub.within(std::slice::from_ref(other)));
        assert!(!other.within(&[root.clone(), sub.clone()]));
        let again = IssuerCa::of(renewed.der()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&again, root, "one subject and key: one CA");
        assert_ne!(again.fingerprint, root.fingerprint);
    }
}
