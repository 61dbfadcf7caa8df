//! The keys ID tokens are signed with: for each algorithm a client may ask for (RSA-2048 for
//! RS256, P-256 for ES256, Ed25519 for EdDSA), keys in `data_dir/oidc-keys/<alg>-<from>.pem`
//! (PKCS#8 PEM, mode 0600), the first made on first start, published in the OIDC JWKS, each
//! with its RFC 7638 thumbprint as `kid`. They rotate as the session keys do
//! ([`crate::jwt::keys::lifecycle`]): `certgate keys rotate` adds one per algorithm that is
//! published at once and signs from a later time, so every relying party can know it before
//! the first ID token it signs; the server re-reads the directory every 2 s. RSA keys are made
//! and used through aws-lc-rs (never the `rsa` crate: RUSTSEC-2023-0071).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{DecodingKey, Header};
use zeroize::Zeroizing;

use super::settings::Alg;
use crate::clock::Clock;
use crate::jwt::keys::{create_private_dir, lifecycle, write_private, KeyError, KeyState};

/// One signing key with its public half as a JWK.
pub struct OidcKey {
    pub alg: Alg,
    pub kid: String,
    /// When it starts signing (Unix seconds; from its file name).
    pub from: i64,
    /// The public JWK (`kty` and its members), without `kid`, `alg` and `use`.
    public: serde_json::Value,
    signer: Signer,
    decoding: DecodingKey,
}

/// A private key parsed once, when its file is read: signing with it does no parsing, key
/// check or per-key precomputation (an RSA key's Montgomery constants and blinding are kept
/// with it). `jsonwebtoken::encode` re-parses the key for every token: for RSA-2048 the parse,
/// `RSA_check_key` and a new blinding cost about 1.6 times the private-key operation itself.
enum Signer {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(aws_lc_rs::signature::EcdsaKeyPair),
    Ed(aws_lc_rs::signature::Ed25519KeyPair),
}

impl Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let failed = |_| "signing failed".to_string();
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match self {
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
            Self::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(failed),
            Self::Ed(pair) => pair
                .try_sign(message)
                .map(|s| s.as_ref().to_vec())
                .map_err(failed),
        }
    }
}

impl std::fmt::Debug for OidcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OidcKey({}, {}, from {})",
            self.alg.as_str(),
            self.kid,
            self.from
        )
    }
}

/// Every algorithm's keys, re-read from their directory when it changes.
pub struct OidcKeys {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    /// A replaced key stays published this long after its successor starts signing.
    max_lifetime: i64,
    ring: RwLock<Arc<Vec<OidcKey>>>,
}

impl std::fmt::Debug for OidcKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OidcKeys({})", self.dir.display())
    }
}

impl OidcKeys {
    /// Loads `dir`, creating it and a key for any algorithm that has none.
    ///
    /// # Errors
    /// A [`KeyError`] naming the file that cannot be read, parsed or written.
    pub fn load_or_create(
        dir: &Path,
        clock: Arc<dyn Clock>,
        max_lifetime: i64,
    ) -> Result<Self, KeyError> {
        create_private_dir(dir).map_err(|e| KeyError {
            path: dir.to_path_buf(),
            problem: format!("cannot create: {e}"),
        })?;
        let mut keys = read(dir)?;
        for alg in Alg::ALL {
            if !keys.iter().any(|k| k.alg == alg) {
                add_one(dir, alg, clock.now())?;
            }
        }
        if keys.len() < Alg::ALL.len() {
            keys = read(dir)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            clock,
            max_lifetime,
            ring: RwLock::new(Arc::new(keys)),
        })
    }

    /// Adds a key for every algorithm, signing from `from` (published at once).
    ///
    /// # Errors
    /// When a key cannot be generated or written.
    pub fn add(dir: &Path, from: i64) -> Result<Vec<PathBuf>, KeyError> {
        Alg::ALL
            .iter()
            .map(|&alg| add_one(dir, alg, from))
            .collect()
    }

    /// Re-reads the directory; swaps the keys in if they changed.
    ///
    /// # Errors
    /// When a key cannot be read; the keys in force stay.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let fresh = read(&self.dir)?;
        let kids = |keys: &[OidcKey]| keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        if kids(&fresh) == kids(&self.ring()) {
            return Ok(false);
        }
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(true)
    }

    fn ring(&self) -> Arc<Vec<OidcKey>> {
        Arc::clone(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Every key with its state now, and its file (for `certgate keys`).
    pub fn states(&self) -> Vec<(String, Alg, i64, KeyState, PathBuf)> {
        let now = self.clock.now();
        let ring = self.ring();
        ring.iter()
            .map(|k| {
                let state = self.state(&ring, k, now);
                (
                    k.kid.clone(),
                    k.alg,
                    k.from,
                    state,
                    file(&self.dir, k.alg, k.from),
                )
            })
            .collect()
    }

    fn state(&self, ring: &[OidcKey], key: &OidcKey, now: i64) -> KeyState {
        let same_alg = ring.iter().filter(|k| k.alg == key.alg).map(|k| k.from);
        lifecycle(key.from, same_alg, now, self.max_lifetime)
    }

    /// Signs `claims` as a JWT with the current key of `alg`: the newest whose time has come.
    ///
    /// # Errors
    /// When there is no key of `alg`, or signing fails (it does not with a loaded key).
    pub fn sign(&self, alg: Alg, claims: &impl serde::Serialize) -> Result<String, String> {
        self.sign_typed(alg, "JWT", claims)
    }

    /// [`Self::sign`] with the header's `typ` (`logout+jwt` for a back-channel logout token,
    /// so that it can never pass for an ID token).
    ///
    /// # Errors
    /// When there is no key of `alg`, or signing fails (it does not with a loaded key).
    pub fn sign_typed(
        &self,
        alg: Alg,
        typ: &str,
        claims: &impl serde::Serialize,
    ) -> Result<String, String> {
        let now = self.clock.now();
        let ring = self.ring();
        let mut of_alg: Vec<&OidcKey> = ring.iter().filter(|k| k.alg == alg).collect();
        of_alg.sort_by_key(|k| std::cmp::Reverse(k.from));
        let key = of_alg
            .iter()
            .find(|k| k.from <= now)
            .or_else(|| of_alg.last())
            .ok_or_else(|| format!("no {} key", alg.as_str()))?;
        let mut header = Header::new(jwt_alg(alg));
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.into());
        // The compact serialization as `jsonwebtoken::encode` makes it, with the parsed key.
        let mut token = b64_json(&header)?;
        token.push('.');
        token.push_str(&b64_json(claims)?);
        let signature = key.signer.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }

    /// The claims of an ID token that one of these keys signed for `issuer`, expired or not
    /// (RP-initiated logout takes an expired `id_token_hint`). The key is found by `kid` among
    /// every key on disk and its own algorithm is required: the header's `alg` chooses nothing.
    ///
    /// # Errors
    /// Why the token is not one certgate signed.
    pub fn verify_id_token(&self, token: &str, issuer: &str) -> Result<serde_json::Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        if header.typ.as_deref().is_some_and(|t| t != "JWT") {
            return Err("not an ID token (its typ is another)".into());
        }
        let kid = header.kid.ok_or("it names no key (kid)")?;
        let ring = self.ring();
        let key = ring
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

    /// The JWK set relying parties verify ID tokens with: next, current and previous keys.
    pub fn jwks(&self) -> serde_json::Value {
        let now = self.clock.now();
        let ring = self.ring();
        let keys: Vec<serde_json::Value> = ring
            .iter()
            .filter(|k| self.state(&ring, k, now) != KeyState::Retired)
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

/// `value` as JSON, base64url without padding: one part of a JWT.
fn b64_json(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_vec(value)
        .map(|json| URL_SAFE_NO_PAD.encode(json))
        .map_err(|e| e.to_string())
}

/// Every key in `dir`, by algorithm (RS256, ES256, EdDSA), newest first within each.
fn read(dir: &Path) -> Result<Vec<OidcKey>, KeyError> {
    let err = |path: &Path, problem: String| KeyError {
        path: path.to_path_buf(),
        problem,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| err(dir, format!("cannot list: {e}")))?;
    let mut keys = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some((alg, from)) = name_parts(&path) else {
            continue;
        };
        let pem = Zeroizing::new(
            std::fs::read_to_string(&path).map_err(|e| err(&path, format!("cannot read: {e}")))?,
        );
        keys.push(load(alg, from, &pem).map_err(|p| err(&path, p))?);
    }
    keys.sort_by_key(|k| (k.alg, std::cmp::Reverse(k.from)));
    Ok(keys)
}

fn add_one(dir: &Path, alg: Alg, from: i64) -> Result<PathBuf, KeyError> {
    let path = file(dir, alg, from);
    let pem = generate(alg).map_err(|problem| KeyError {
        path: path.clone(),
        problem,
    })?;
    write_private(&path, pem.as_bytes()).map_err(|e| KeyError {
        path: path.clone(),
        problem: format!("cannot write: {e}"),
    })?;
    Ok(path)
}

fn name_parts(path: &Path) -> Option<(Alg, i64)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".pem")?;
    let (alg, from) = name.rsplit_once('-')?;
    let alg = Alg::ALL
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(alg))?;
    Some((alg, from.parse().ok()?))
}

pub const fn jwt_alg(alg: Alg) -> jsonwebtoken::Algorithm {
    match alg {
        Alg::Rs256 => jsonwebtoken::Algorithm::RS256,
        Alg::Es256 => jsonwebtoken::Algorithm::ES256,
        Alg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
    }
}

fn file(dir: &Path, alg: Alg, from: i64) -> PathBuf {
    dir.join(format!("{}-{from}.pem", alg.as_str().to_ascii_lowercase()))
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
fn load(alg: Alg, from: i64, pem: &str) -> Result<OidcKey, String> {
    use rustls_pki_types::pem::PemObject;
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PKCS#8 PEM key: {e}"))?;
    let der = pkcs8.secret_pkcs8_der();
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    // Members in the lexicographic order RFC 7638 hashes them in.
    let (public, signer) = match alg {
        Alg::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
                .map_err(|e| format!("not an RSA key: {e}"))?;
            let public = aws_lc_rs::signature::KeyPair::public_key(&pair);
            let e = b64(public.exponent().big_endian_without_leading_zero());
            let n = b64(public.modulus().big_endian_without_leading_zero());
            (
                serde_json::json!({"e": e, "kty": "RSA", "n": n}),
                Signer::Rsa(pair),
            )
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
            let signing = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
            )
            .map_err(|e| format!("not a P-256 key: {e}"))?;
            (
                serde_json::json!({"crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y)}),
                Signer::Ec(signing),
            )
        }
        Alg::EdDsa => {
            let pair = rcgen::KeyPair::try_from(der).map_err(|e| format!("not a key: {e}"))?;
            if !pair.is_compatible(&rcgen::PKCS_ED25519) {
                return Err("not an Ed25519 key".into());
            }
            let signing = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(der)
                .map_err(|e| format!("not an Ed25519 key: {e}"))?;
            (
                serde_json::json!({"crv": "Ed25519", "kty": "OKP", "x": b64(pair.public_key_raw())}),
                Signer::Ed(signing),
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
        from,
        public,
        signer,
        decoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn keys_at(dir: &Path, now: i64) -> (Arc<FixedClock>, OidcKeys) {
        let clock = Arc::new(FixedClock::at(now));
        let keys = OidcKeys::load_or_create(dir, clock.clone(), 600).unwrap();
        (clock, keys)
    }

    fn verify(keys: &OidcKeys, jwt: &str) -> Result<String, String> {
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(keys.jwks()).unwrap();
        let header = jsonwebtoken::decode_header(jwt).unwrap();
        let kid = header.kid.unwrap();
        let jwk = jwks.find(&kid).ok_or("kid not published")?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation)
            .map(|_| kid)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_algorithm_has_a_private_key_that_signs_what_its_published_jwk_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (_, keys) = keys_at(&dir.path().join("oidc-keys"), 1_000);
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 3);
        for alg in Alg::ALL {
            let jwt = keys
                .sign(alg, &serde_json::json!({"sub": "alice"}))
                .unwrap();
            assert_eq!(jsonwebtoken::decode_header(&jwt).unwrap().alg, jwt_alg(alg));
            verify(&keys, &jwt).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(file(&dir.path().join("oidc-keys"), alg, 1_000))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{alg:?}");
            }
        }
        // The same keys after a restart, not new ones.
        let (_, again) = keys_at(&dir.path().join("oidc-keys"), 2_000);
        assert_eq!(again.jwks(), keys.jwks());
    }

    #[test]
    fn deterministic_signatures_are_byte_for_byte_those_of_jsonwebtoken_encode() {
        let dir = tempfile::tempdir().unwrap();
        let (_, keys) = keys_at(dir.path(), 1_000);
        let claims = serde_json::json!({"iss": "https://a", "sub": "alice", "nonce": "n"});
        for (alg, pem_key) in [
            (
                Alg::Rs256,
                jsonwebtoken::EncodingKey::from_rsa_pem as fn(&[u8]) -> _,
            ),
            (Alg::EdDsa, jsonwebtoken::EncodingKey::from_ed_pem),
        ] {
            let pem = std::fs::read(file(dir.path(), alg, 1_000)).unwrap();
            let ring = keys.ring();
            let key = ring.iter().find(|k| k.alg == alg).unwrap();
            let mut header = Header::new(jwt_alg(alg));
            header.kid = Some(key.kid.clone());
            header.typ = Some("JWT".into());
            let expected = jsonwebtoken::encode(&header, &claims, &pem_key(&pem).unwrap()).unwrap();
            assert_eq!(keys.sign(alg, &claims).unwrap(), expected, "{alg:?}");
        }
    }

    #[test]
    fn an_id_token_verifies_expired_but_not_from_another_issuer_or_key() {
        let dir = tempfile::tempdir().unwrap();
        let (_, keys) = keys_at(dir.path(), 1_000);
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
        let (_, other) = keys_at(&dir.path().join("other"), 1_000);
        let forged = other.sign(Alg::Rs256, &claims).unwrap();
        assert!(keys.verify_id_token(&forged, "https://a").is_err());
    }

    #[test]
    fn a_rotated_key_is_published_first_signs_later_and_retires_after_the_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let (clock, keys) = keys_at(dir.path(), 1_000);
        let claims = serde_json::json!({"sub": "alice"});
        let old = verify(&keys, &keys.sign(Alg::Rs256, &claims).unwrap()).unwrap();
        OidcKeys::add(dir.path(), 1_060).unwrap();
        assert!(keys.reload().unwrap());
        assert!(!keys.reload().unwrap(), "nothing changed the second time");
        assert_eq!(
            keys.jwks()["keys"].as_array().unwrap().len(),
            6,
            "next keys published"
        );
        assert_eq!(
            verify(&keys, &keys.sign(Alg::Rs256, &claims).unwrap()).unwrap(),
            old
        );
        clock.advance(60);
        let new = verify(&keys, &keys.sign(Alg::Rs256, &claims).unwrap()).unwrap();
        assert_ne!(new, old, "the next key signs from its time");
        assert!(
            keys.jwks().to_string().contains(&old),
            "previous keys still verify"
        );
        clock.advance(601);
        assert!(
            !keys.jwks().to_string().contains(&old),
            "retired after the lifetime"
        );
        let states = keys.states();
        assert_eq!(
            states.iter().filter(|s| s.3 == KeyState::Retired).count(),
            3
        );
    }

    #[test]
    fn the_rsa_key_is_2048_bits_and_its_kid_is_the_rfc7638_thumbprint() {
        let dir = tempfile::tempdir().unwrap();
        let (_, keys) = keys_at(dir.path(), 1_000);
        let ring = keys.ring();
        let rsa = ring.iter().find(|k| k.alg == Alg::Rs256).unwrap();
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
