//! PKCS#12 export. Modern files (PBES2 AES-256-CBC, HMAC-SHA256) open in OpenSSL 3, curl,
//! desktop browsers and recent phones.

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};

use super::CaError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum P12Kind {
    /// PBES2 AES-256-CBC, HMAC-SHA256: OpenSSL 3's default; desktop browsers, iOS, Android 14+.
    Modern,
    /// pbeWithSHA1And3-KeyTripleDES-CBC for key and certificates, SHA-1 MAC: Android 13 and
    /// older and Wear OS refuse the modern kind with a misleading "wrong password".
    Legacy,
}

/// Packs a key, its certificate and the CA certificate into a password-protected PKCS#12 file.
///
/// # Errors
/// [`CaError::P12`] when the key or a certificate cannot be encoded.
pub fn export_p12(
    alias: &str,
    key_pkcs8_der: &[u8],
    cert_der: &[u8],
    ca_der: &[u8],
    password: &str,
    kind: P12Kind,
) -> Result<Vec<u8>, CaError> {
    let err = |e: p12_keystore::error::Error| CaError::P12(e.to_string());
    let key = PrivateKey::from_der(key_pkcs8_der).map_err(err)?;
    let certs = vec![
        Certificate::from_der(cert_der).map_err(err)?,
        Certificate::from_der(ca_der).map_err(err)?,
    ];
    let local_key_id =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der);
    let chain = PrivateKeyChain::new(local_key_id.as_ref(), key, certs);
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    match kind {
        P12Kind::Modern => store.writer(password).write().map_err(err),
        P12Kind::Legacy => store
            .writer(password)
            .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .encryption_iterations(2048)
            .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha1)
            .mac_iterations(2048)
            .write()
            .map_err(err),
    }
}
