//! The keys ID tokens are signed with: one per algorithm a client may ask for (RSA-2048 for
//! RS256, P-256 for ES256, Ed25519 for EdDSA), created on first start in
//! `data_dir/oidc-keys/` (PKCS#8 PEM, mode 0600) and published in the OIDC JWKS, each with its
//! RFC 7638 thumbprint as `kid`. RSA keys are made and used through aws-lc-rs (never the `rsa`
//! crate: RUSTSEC-2023-0071).

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use zeroize::Zeroizing;

use super::settings::Alg;
use crate::jwt::keys::{create_private_dir, write_private, KeyError};

/// One signing key with its public half as a JWK.
pub struct OidcKey {
    pub alg: Alg,
    pub kid: String,
    /// The public JWK (`kty` and its members), without `kid`, `alg` and `use`.
    public: serde_json::Value,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for OidcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OidcKey({}, {})", self.alg.as_str(), self.kid)
    }
}

/// Every algorithm's key.
#[derive(Debug)]
pub struct OidcKeys {
    keys: Vec<OidcKey>,
}

impl OidcKeys {
    /// Loads `dir`, creating it and any key that is missing.
    ///
    /// # Errors
    /// A [`KeyError`] naming the file that cannot be read, parsed or written.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let err = |path: &Path, problem: String| KeyError {
            path: path.to_path_buf(),
            problem,
        };
        create_private_dir(dir).map_err(|e| err(dir, format!("cannot create: {e}")))?;
        let mut keys = Vec::new();
        for alg in Alg::ALL {
            let path = file(dir, alg);
            let pem = match std::fs::read_to_string(&path) {
                Ok(pem) => Zeroizing::new(pem),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let pem = generate(alg).map_err(|p| err(&path, p))?;
                    write_private(&path, pem.as_bytes())
                        .map_err(|e| err(&path, format!("cannot write: {e}")))?;
                    pem
                }
                Err(e) => return Err(err(&path, format!("cannot read: {e}"))),
            };
            keys.push(load(alg, &pem).map_err(|p| err(&path, p))?);
        }
        Ok(Self { keys })
    }

    pub fn get(&self, alg: Alg) -> Option<&OidcKey> {
        self.keys.iter().find(|k| k.alg == alg)
    }

    /// Signs `claims` as a JWT with the key of `alg`.
    ///
    /// # Errors
    /// When signing fails (it does not with a loaded key).
    pub fn sign(&self, alg: Alg, claims: &impl serde::Serialize) -> Result<String, String> {
        self.sign_typed(alg, "JWT", claims)
    }

    /// [`Self::sign`] with the header's `typ` (`logout+jwt` for a back-channel logout token,
    /// so that it can never pass for an ID token).
    ///
    /// # Errors
    /// When signing fails (it does not with a loaded key).
    pub fn sign_typed(
        &self,
        alg: Alg,
        typ: &str,
        claims: &impl serde::Serialize,
    ) -> Result<String, String> {
        let key = self
            .get(alg)
            .ok_or_else(|| format!("no {} key", alg.as_str()))?;
        let mut header = Header::new(jwt_alg(alg));
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.into());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| e.to_string())
    }

    /// The claims of an ID token that one of these keys signed for `issuer`, expired or not
    /// (RP-initiated logout takes an expired `id_token_hint`). The key is found by `kid` and
    /// its own algorithm is required: the header's `alg` chooses nothing.
    ///
    /// # Errors
    /// Why the token is not one certgate signed.
    pub fn verify_id_token(&self, token: &str, issuer: &str) -> Result<serde_json::Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        if header.typ.as_deref().is_some_and(|t| t != "JWT") {
            return Err("not an ID token (its typ is another)".into());
        }
        let kid = header.kid.ok_or("it names no key (kid)")?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or("it names a key certgate does not have")?;
        let mut validation = jsonwebtoken::Validation::new(jwt_alg(key.alg));
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["iss", "sub", "aud"]);
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("its signature or issuer is wrong: {e}"))
    }

    /// The JWK set relying parties verify ID tokens with.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| {
                let mut jwk = k.public.clone();
                if let Some(map) = jwk.as_object_mut() {
                    map.insert("kid".into(), k.kid.clone().into());
                    map.insert("alg".into(), k.alg.as_str().into());
                    map.insert("use".into(), "sig".into());
                }
                jwk
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

pub const fn jwt_alg(alg: Alg) -> jsonwebtoken::Algorithm {
    match alg {
        Alg::Rs256 => jsonwebtoken::Algorithm::RS256,
        Alg::Es256 => jsonwebtoken::Algorithm::ES256,
        Alg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
    }
}

fn file(dir: &Path, alg: Alg) -> PathBuf {
    dir.join(format!("{}.pem", alg.as_str().to_ascii_lowercase()))
}

/// A new key of `alg`, as PKCS#8 PEM.
fn generate(alg: Alg) -> Result<Zeroizing<String>, String> {
    let der = match alg {
        Alg::Rs256 => {
            use aws_lc_rs::encoding::AsDer;
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| "cannot generate an RSA key".to_string())?;
            let der = pair
                .as_der()
                .map_err(|_| "cannot encode the RSA key".to_string())?;
            Zeroizing::new(der.as_ref().to_vec())
        }
        Alg::Es256 | Alg::EdDsa => {
            let kind = if alg == Alg::Es256 {
                &rcgen::PKCS_ECDSA_P256_SHA256
            } else {
                &rcgen::PKCS_ED25519
            };
            let pair = rcgen::KeyPair::generate_for(kind)
                .map_err(|e| format!("cannot generate a key: {e}"))?;
            Zeroizing::new(pair.serialize_der())
        }
    };
    let body = STANDARD.encode(der.as_slice());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(Zeroizing::new(pem))
}

/// The key of `alg` in `pem` (PKCS#8), with its public JWK and thumbprint.
fn load(alg: Alg, pem: &str) -> Result<OidcKey, String> {
    use rustls_pki_types::pem::PemObject;
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PKCS#8 PEM key: {e}"))?;
    let der = pkcs8.secret_pkcs8_der();
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    // Members in the lexicographic order RFC 7638 hashes them in.
    let (public, encoding) = match alg {
        Alg::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
                .map_err(|e| format!("not an RSA key: {e}"))?;
            let public = aws_lc_rs::signature::KeyPair::public_key(&pair);
            let e = b64(public.exponent().big_endian_without_leading_zero());
            let n = b64(public.modulus().big_endian_without_leading_zero());
            let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
            (serde_json::json!({"e": e, "kty": "RSA", "n": n}), encoding)
        }
        Alg::Es256 => {
            let pair = rcgen::KeyPair::try_from(der).map_err(|e| format!("not a key: {e}"))?;
            if !pair.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256) {
                return Err("not a P-256 key".into());
            }
            let point = pair.public_key_raw();
            let (x, y) = match point {
                [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                _ => return Err("not an uncompressed P-256 point".into()),
            };
            (
                serde_json::json!({"crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y)}),
                EncodingKey::from_ec_der(der),
            )
        }
        Alg::EdDsa => {
            let pair = rcgen::KeyPair::try_from(der).map_err(|e| format!("not a key: {e}"))?;
            if !pair.is_compatible(&rcgen::PKCS_ED25519) {
                return Err("not an Ed25519 key".into());
            }
            (
                serde_json::json!({"crv": "Ed25519", "kty": "OKP", "x": b64(pair.public_key_raw())}),
                EncodingKey::from_ed_der(der),
            )
        }
    };
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(public.clone()).map_err(|e| e.to_string())?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    // serde_json's maps are sorted, and no member has whitespace: the RFC 7638 input.
    let canonical = serde_json::to_string(&public).map_err(|e| e.to_string())?;
    let kid =
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref());
    Ok(OidcKey {
        alg,
        kid,
        public,
        encoding,
        decoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_has_a_private_key_that_signs_what_its_published_jwk_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let keys = OidcKeys::load_or_create(&dir.path().join("oidc-keys")).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(keys.jwks()).unwrap();
        assert_eq!(jwks.keys.len(), 3);
        for alg in Alg::ALL {
            let jwt = keys
                .sign(
                    alg,
                    &serde_json::json!({"sub": "alice", "exp": 4_000_000_000_i64}),
                )
                .unwrap();
            let header = jsonwebtoken::decode_header(&jwt).unwrap();
            assert_eq!(header.alg, jwt_alg(alg));
            let kid = header.kid.unwrap();
            let jwk = jwks.find(&kid).unwrap();
            let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(jwt_alg(alg));
            validation.validate_aud = false;
            let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation).unwrap();
            assert_eq!(data.claims["sub"], "alice");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(file(&dir.path().join("oidc-keys"), alg))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{alg:?}");
            }
        }
        // The same keys after a restart, not new ones.
        let again = OidcKeys::load_or_create(&dir.path().join("oidc-keys")).unwrap();
        assert_eq!(again.jwks(), keys.jwks());
    }

    #[test]
    fn an_id_token_verifies_expired_but_not_from_another_issuer_or_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = OidcKeys::load_or_create(dir.path()).unwrap();
        let claims =
            serde_json::json!({"iss": "https://a", "sub": "alice", "aud": "app", "exp": 1});
        for alg in Alg::ALL {
            let jwt = keys.sign(alg, &claims).unwrap();
            assert_eq!(
                keys.verify_id_token(&jwt, "https://a").unwrap()["sub"],
                "alice"
            );
            assert!(keys.verify_id_token(&jwt, "https://b").is_err());
            let logout = keys.sign_typed(alg, "logout+jwt", &claims).unwrap();
            assert!(keys.verify_id_token(&logout, "https://a").is_err());
        }
        let other = OidcKeys::load_or_create(&dir.path().join("other")).unwrap();
        let forged = other.sign(Alg::Rs256, &claims).unwrap();
        assert!(keys.verify_id_token(&forged, "https://a").is_err());
    }

    #[test]
    fn the_rsa_key_is_2048_bits_and_its_kid_is_the_rfc7638_thumbprint() {
        let dir = tempfile::tempdir().unwrap();
        let keys = OidcKeys::load_or_create(dir.path()).unwrap();
        let rsa = keys.get(Alg::Rs256).unwrap();
        let n = URL_SAFE_NO_PAD
            .decode(rsa.public["n"].as_str().unwrap())
            .unwrap();
        assert_eq!(n.len(), 256);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(rsa.public.clone()).unwrap();
        assert_eq!(
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256),
            rsa.kid
        );
    }
}
