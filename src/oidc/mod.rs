//! certgate as an OpenID Connect provider whose login is the client certificate (DESIGN.md
//! §8): relying parties (apps) send people to `/oidc/authorize`, where the certgate session or
//! the certificate says who they are, and redeem the code at `/oidc/token` for an ID token, an
//! access token for `/oidc/userinfo` and, with `offline_access`, a refresh token.
//!
//! - [`settings`]: `[oidc]` and its clients; [`keys`]: the ID-token signing keys and JWKS;
//!   [`grants`]: codes, grants and tokens in the database; [`backchannel`]: logout tokens
//!   queued for the apps and sent by a worker.
//! - Every grant is checked against the revocation view when it is used (refresh, userinfo):
//!   `certgate revoke --user/--device/--serial`, a lock-out, or `--jti <grant id>` end it.
//!   Beside the servers, a sweep (`http::oidc::sweep`) marks such grants revoked as soon as
//!   the revocation arrives, which queues a logout token for their app: the app learns of it
//!   without waiting for its next refresh.
//!
//! - [`device`]: the device authorization grant (RFC 8628) for watches and TVs.
//! - Introspection (RFC 7662) and revocation (RFC 7009) look a token up in any state
//!   ([`grants::Token`]); one access token can be revoked on its own.
//!
//! - [`store`]: the database in `data_dir`, or Redis ([`redis`]) where replicas share it.

pub mod backchannel;
pub mod device;
pub mod grants;
pub mod keys;
pub mod params;
pub mod redis;
pub mod settings;
pub mod store;

use std::sync::Arc;

use serde::Serialize;

pub use grants::{Grant, Grants, NewGrant, Redeemed, Refreshed, Token};
pub use keys::OidcKeys;
pub use settings::{Alg, AuthMethod, Client, RawOidc, Settings};
pub use store::{Store, StoreError};

use crate::identity::Identity;

/// The provider: its settings, keys and grants.
#[derive(Debug)]
pub struct Provider {
    pub settings: Settings,
    pub keys: OidcKeys,
    pub grants: Grants,
    /// Logout tokens waiting to be sent.
    pub deliveries: backchannel::Queue,
    pub devices: device::Devices,
}

impl Provider {
    /// Keys from `data_dir/oidc-keys` (created on first start), grants in `store`.
    ///
    /// # Errors
    /// When a key cannot be read or written.
    pub fn new(
        settings: Settings,
        data_dir: &std::path::Path,
        store: Store,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Result<Self, crate::jwt::keys::KeyError> {
        // A replaced key stays published while ID tokens it signed may still be checked.
        let lifetime = i64::try_from(settings.id_token_ttl.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_add(crate::jwt::LEEWAY);
        let notify = settings
            .clients
            .iter()
            .filter(|c| c.backchannel_logout_uri.is_some())
            .map(|c| c.id.clone());
        Ok(Self {
            keys: OidcKeys::load_or_create(&keys_dir(data_dir), clock, lifetime)?,
            // An app's own session is taken to last at most as long as a refresh token.
            grants: Grants::new(store.clone())
                .notifying(notify.collect::<Vec<_>>(), settings.refresh_token_ttl),
            devices: device::Devices::new(store.clone()),
            deliveries: backchannel::Queue::new(store),
            settings,
        })
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/oidc/{path}", self.settings.issuer)
    }

    /// The discovery document (OpenID Connect Discovery 1.0, RFC 8414).
    pub fn discovery(&self) -> serde_json::Value {
        let algs: Vec<&str> = settings::Alg::ALL.iter().map(|a| a.as_str()).collect();
        let mut discovery = serde_json::json!({
            "issuer": self.settings.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "end_session_endpoint": self.endpoint("logout"),
            "jwks_uri": self.endpoint("jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
            "device_authorization_endpoint": self.endpoint("device"),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "scopes_supported": settings::SCOPES,
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint": self.endpoint("introspect"),
            "tls_client_certificate_bound_access_tokens": true,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint": self.endpoint("revoke"),
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "at_hash",
                "name", "preferred_username", "email", "email_verified", "groups"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": false,
        });
        if let (Some(acr), Some(doc)) = (&self.settings.acr, discovery.as_object_mut()) {
            doc.insert("acr_values_supported".into(), serde_json::json!([acr]));
            if let Some(claims) = doc
                .get_mut("claims_supported")
                .and_then(|c| c.as_array_mut())
            {
                claims.push("acr".into());
            }
        }
        discovery
    }
}

/// How clients authenticate at the token, introspection and revocation endpoints.
const AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "tls_client_auth",
    "none",
];

/// The device authorization grant's `grant_type` (RFC 8628 §3.4).
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Where the ID-token keys live.
pub fn keys_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("oidc-keys")
}

/// The claims of an ID token.
#[derive(Debug, Serialize)]
pub struct IdToken<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    pub amr: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(flatten)]
    pub profile: Profile,
}

/// What the granted scopes show of the person (ID token and userinfo).
#[derive(Debug, Default, Serialize)]
pub struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// With `email`: true only where `[[users]]` says the operator checked the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

impl Profile {
    /// The claims `grant`'s scopes allow of `who`.
    pub fn of(who: &Identity, grant: &Grant) -> Self {
        let profile = grant.has_scope("profile");
        let email = grant
            .has_scope("email")
            .then(|| who.email.clone())
            .flatten();
        Self {
            name: profile.then(|| who.name.clone().unwrap_or_else(|| who.user.clone())),
            preferred_username: profile.then(|| who.user.clone()),
            email_verified: email.as_ref().map(|_| who.email_verified),
            email,
            groups: grant.has_scope("groups").then(|| who.groups.clone()),
        }
    }
}

/// `at_hash`: the left half of the access token's hash with the ID token's algorithm's hash
/// (OpenID Connect Core §3.1.3.6). EdDSA defines none, so there is none.
pub fn at_hash(alg: Alg, access_token: &str) -> Option<String> {
    use base64::Engine;
    let digest = match alg {
        Alg::Rs256 | Alg::Es256 => {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes())
        }
        Alg::EdDsa => return None,
    };
    let half = digest.as_ref().get(..16)?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half))
}

/// PKCE (RFC 7636), S256 only: whether `verifier` is the one `challenge` was made from.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    use base64::Engine;
    // RFC 7636 §4.1: 43 to 128 unreserved characters.
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !shaped {
        return false;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

/// A new code or token: 256 random bits, base64url; `None` only if the system RNG fails.
pub fn secret() -> Option<String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example_and_nothing_else() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(challenge, &verifier.replace('d', "e")));
        assert!(!pkce_matches(verifier, verifier), "plain is not S256");
        assert!(!pkce_matches(challenge, "short"));
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256_and_absent_for_eddsa() {
        // OpenID Connect Core §A.3: the access token and at_hash of its RS256 example.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(
            at_hash(Alg::Rs256, token).as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        assert_eq!(at_hash(Alg::EdDsa, token), None);
    }
}
