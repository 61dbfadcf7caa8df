//! Tokens (DESIGN.md §3): JWS compact, EdDSA, `kid` in the header, and a `typ` that keeps
//! session cookies (`certgate-session+jwt`) and bearer tokens (`at+jwt`) apart.
//! Verification pins the algorithm per key, requires typ/iss/aud, and checks time against
//! our [`Clock`](crate::clock::Clock) with at most [`LEEWAY`] seconds of slack.

pub mod cache;
mod claims;
pub mod keys;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::Deserialize;

pub use claims::{Audience, Claims, Confirmation, Subject, TokenKind};
pub use keys::{KeyError, KeySet, KeyState};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWS")]
    Malformed,
    #[error("the token's key id is unknown")]
    UnknownKey,
    #[error("the token's type is {found:?}, expected {expected}")]
    WrongType {
        expected: &'static str,
        found: Option<String>,
    },
    #[error("the token was rejected: {0}")]
    Invalid(String),
    #[error("the token expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("no signing key is available")]
    NoKey,
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Mints and verifies certgate's tokens with the key set.
#[derive(Debug)]
pub struct Tokens {
    /// Swapped whole when the key directory changes (a rotation by `certgate keys rotate`).
    keys: std::sync::RwLock<std::sync::Arc<KeySet>>,
    /// The longest a token may live: how long a replaced key keeps verifying.
    max_lifetime: i64,
    issuer: String,
    audience: String,
    verified: cache::VerifiedCache,
}

impl Tokens {
    pub fn new(keys: KeySet, issuer: &str) -> Self {
        Self {
            keys: std::sync::RwLock::new(std::sync::Arc::new(keys)),
            max_lifetime: i64::MAX,
            issuer: issuer.to_string(),
            audience: issuer.to_string(),
            verified: cache::VerifiedCache::default(),
        }
    }

    /// Retire a replaced key once its successor has signed for `secs` (the longest session or
    /// token lifetime, plus leeway).
    #[must_use]
    pub fn with_max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime = secs;
        self
    }

    pub fn max_lifetime(&self) -> i64 {
        self.max_lifetime
    }

    /// The key set in force.
    pub fn keys(&self) -> std::sync::Arc<KeySet> {
        std::sync::Arc::clone(
            &self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Re-reads the key directory; swaps the set in if its keys changed.
    ///
    /// # Errors
    /// When the directory or a key in it cannot be read; the keys in force stay.
    pub fn reload_keys(&self, dir: &std::path::Path) -> Result<bool, KeyError> {
        let fresh = KeySet::load(dir)?;
        if fresh.kids() == self.keys().kids() {
            return Ok(false);
        }
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(fresh);
        // A dropped key must not keep verifying through the cache.
        self.verified.clear();
        Ok(true)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// # Errors
    /// [`JwtError::NoKey`] or [`JwtError::Sign`].
    pub fn mint(
        &self,
        kind: TokenKind,
        subject: &Subject,
        ttl_secs: i64,
        now: i64,
    ) -> Result<(String, Claims), JwtError> {
        self.mint_at_ms(kind, subject, ttl_secs, now.saturating_mul(1000))
    }

    /// [`Self::mint`] with the issue time in milliseconds (kept as `iat_ms`).
    ///
    /// # Errors
    /// As [`Self::mint`].
    pub fn mint_at_ms(
        &self,
        kind: TokenKind,
        subject: &Subject,
        ttl_secs: i64,
        issued_ms: i64,
    ) -> Result<(String, Claims), JwtError> {
        let now = issued_ms.div_euclid(1000);
        let keys = self.keys();
        let key = keys.current(now).ok_or(JwtError::NoKey)?;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.user.clone(),
            aud: Audience(
                std::iter::once(self.audience.clone())
                    .chain(subject.app_hosts.iter().map(|h| format!("https://{h}")))
                    .collect(),
            ),
            exp: now.saturating_add(ttl_secs),
            nbf: now,
            iat: now,
            jti: random_id().ok_or_else(|| JwtError::Sign("the system RNG failed".into()))?,
            groups: subject.groups.clone(),
            email: subject.email.clone(),
            name: subject.name.clone(),
            scope: subject.scope.clone(),
            cnf: subject
                .cert_thumbprint
                .clone()
                .map(|x5t_s256| Confirmation { x5t_s256 }),
            x5s: subject.cert_serial.clone(),
            x5ca: subject.cert_ca.clone(),
            iat_ms: Some(issued_ms),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        header.typ = Some(kind.typ().to_string());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| JwtError::Sign(e.to_string()))?;
        Ok((token, claims))
    }

    /// Verifies a token of the given kind.
    ///
    /// # Errors
    /// A [`JwtError`] saying why the token is not acceptable.
    pub fn verify(&self, token: &str, kind: TokenKind, now: i64) -> Result<Arc<Claims>, JwtError> {
        match self.verified.get(token, kind) {
            Some(claims) => Self::in_time(claims, now),
            None => self.verify_fresh(token, kind, now),
        }
    }

    /// Each of `tokens` verified in turn (the values of one cookie name): tokens verified
    /// before cost a cache lookup; of the others, only the first `max_checks` get a signature
    /// check and the rest are skipped. So forged values cannot multiply what a request costs,
    /// and junk values in front of the real one cannot hide it once it was seen (at sign-in or
    /// on an earlier check).
    pub fn verify_each<'a>(
        &'a self,
        tokens: impl Iterator<Item = &'a str> + 'a,
        kind: TokenKind,
        now: i64,
        max_checks: usize,
    ) -> impl Iterator<Item = Result<Arc<Claims>, JwtError>> + 'a {
        let mut checks = 0;
        tokens.filter_map(move |token| match self.verified.get(token, kind) {
            Some(claims) => Some(Self::in_time(claims, now)),
            None if checks < max_checks => {
                checks += 1;
                Some(self.verify_fresh(token, kind, now))
            }
            None => None,
        })
    }

    /// [`Self::verify`] of a token from `Authorization`, or `None` when it is not ours (an app's
    /// own API token, ignored rather than refused). A token verified before is ours: its cache
    /// hit skips reading its header to tell.
    pub fn verify_if_ours(
        &self,
        token: &str,
        kind: TokenKind,
        now: i64,
    ) -> Option<Result<Arc<Claims>, JwtError>> {
        match self.verified.get(token, kind) {
            Some(claims) => Some(Self::in_time(claims, now)),
            None => self
                .claims_to_be_ours(token)
                .then(|| self.verify_fresh(token, kind, now)),
        }
    }

    /// Remembers a token just minted, so its first check needs no signature check.
    pub fn remember(&self, token: &str, kind: TokenKind, claims: Claims) {
        self.verified.insert(token, kind, &Arc::new(claims));
    }

    /// A cached token's claims, if they are good at `now`.
    fn in_time(claims: Arc<Claims>, now: i64) -> Result<Arc<Claims>, JwtError> {
        Self::check_time(&claims, now)?;
        Ok(claims)
    }

    fn check_time(claims: &Claims, now: i64) -> Result<(), JwtError> {
        if claims.exp.saturating_add(LEEWAY) <= now {
            return Err(JwtError::Expired);
        }
        if claims.nbf.saturating_sub(LEEWAY) > now {
            return Err(JwtError::NotYetValid);
        }
        Ok(())
    }

    /// Signature and claims checked; cached when good now.
    fn verify_fresh(
        &self,
        token: &str,
        kind: TokenKind,
        now: i64,
    ) -> Result<Arc<Claims>, JwtError> {
        let claims = Arc::new(self.verify_signature(token, kind, now)?);
        // Time is checked on every use, cached or not; only a token good now is cached.
        Self::check_time(&claims, now)?;
        self.verified.insert(token, kind, &claims);
        Ok(claims)
    }

    /// How many verified tokens are cached (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.verified.len()
    }

    /// Header, key, signature, issuer, audience and required claims: everything but time.
    fn verify_signature(&self, token: &str, kind: TokenKind, now: i64) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.typ.as_deref() != Some(kind.typ()) {
            return Err(JwtError::WrongType {
                expected: kind.typ(),
                found: header.typ,
            });
        }
        let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
        let keys = self.keys();
        let key = keys
            .find(kid, now, self.max_lifetime)
            .ok_or(JwtError::UnknownKey)?;
        // Every key of ours is Ed25519: the algorithm is pinned, whatever the header claims.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        Ok(data.claims)
    }

    /// Whether a bearer token claims to be ours (our `kid` or our `iss`), before any
    /// verification. A foreign token (an app's own API token) is ignored, not refused.
    pub fn claims_to_be_ours(&self, token: &str) -> bool {
        if let Ok(header) = jsonwebtoken::decode_header(token) {
            if header
                .kid
                .as_deref()
                .is_some_and(|k| self.keys().all().iter().any(|key| key.kid == k))
            {
                return true;
            }
        }
        // The header may be unparseable to jsonwebtoken (`alg: none`): read the payload's `iss`.
        #[derive(Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|bytes| serde_json::from_slice::<Iss>(&bytes).ok())
            .and_then(|c| c.iss)
            .is_some_and(|iss| iss == self.issuer)
    }

    /// The JWK set, newest key first.
    /// The public keys that verify at `now`, newest (next, then current) first.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let set = self.keys();
        let keys: Vec<serde_json::Value> = set
            .all()
            .iter()
            .filter(|k| set.state(k, now, self.max_lifetime) != KeyState::Retired)
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": k.x, "kid": k.kid, "alg": "EdDSA", "use": "sig"
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// 128 random bits, base64url (token ids, passwords); `None` only if the system RNG fails.
pub fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Claims for unit tests that need a token's contents without signing one.
#[cfg(test)]
mod tests;
