//! Stage two of a check: who holds the credential. The [`Holder`] carries the identity-header
//! values made once; the [`Holders`] cache resolves a token seen before without a copy. A
//! bearer token's own limits (the hosts it is meant for, its scope) are read here too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::header::HeaderValue;

use super::credentials::Credential;
use super::Check;
use crate::error::{AppError, Code, Refused};
use crate::identity::Mapping;
use crate::identity::{self, Identity};
use crate::jwt::{Claims, TokenKind};
use crate::policy::scope::Grant;
use crate::policy::{bearer_limits, Asker};

/// The credential's holder, what it limits them to, and its kind.
pub(super) struct Authenticated {
    pub(super) who: Arc<Holder>,
    grants: Option<Vec<Grant>>,
    pub(super) via: Code,
    /// For the audit line of a refusal: the token, or the certificate's serial and device.
    pub(super) from: Source,
}

pub(super) enum Source {
    Token(Arc<Claims>),
    Certificate {
        serial: crate::cert::Serial,
        device: Option<String>,
    },
}

impl Asker for Authenticated {
    fn identity(&self) -> &Identity {
        &self.who.identity
    }

    fn grants(&self) -> Option<&[Grant]> {
        self.grants.as_deref()
    }
}

/// The holder of a usable credential. `host` is the request's canonical host, if the proxy
/// said.
///
/// # Errors
/// A 403 when the user may not sign in (disabled, unlisted…); a challenge when a bearer
/// token is not meant for this host or its scope cannot be read.
pub(super) fn resolve(
    ck: &Check<'_>,
    credential: Credential,
    host: Option<&str>,
) -> Result<Authenticated, AppError> {
    let cfg = &ck.state.config.identity;
    let via = credential.via();
    let (who, grants, from) = match credential {
        Credential::Bearer(claims) => {
            let grants = bearer_limits(&claims, ck.state.tokens.issuer(), host)
                .map_err(|why| ck.challenge(Some(Refused::Invalid(TokenKind::Bearer)), why))?;
            let who = ck.state.holders.of(&claims, cfg)?;
            (who, grants, Source::Token(claims))
        }
        Credential::Session(claims) => {
            let who = ck.state.holders.of(&claims, cfg)?;
            (who, None, Source::Token(claims))
        }
        Credential::Certificate(cert) => {
            let who = Arc::new(Holder::new(ck.state.cert_holder(&cert)?));
            let c = cert.cert();
            let from = Source::Certificate {
                serial: c.serial.clone(),
                device: c.device.clone(),
            };
            (who, None, from)
        }
    };
    Ok(Authenticated {
        who,
        grants,
        via,
        from,
    })
}

/// Who holds a credential, with the values of the identity headers (user, groups, e-mail,
/// name; empty when unknown) made once: cloning them for a response copies nothing.
#[derive(Debug)]
pub struct Holder {
    pub identity: Identity,
    pub(super) values: [HeaderValue; 4],
}

impl Holder {
    pub fn new(identity: Identity) -> Self {
        let value = |v: String| {
            HeaderValue::from_maybe_shared(bytes::Bytes::from(v))
                .unwrap_or(HeaderValue::from_static(""))
        };
        let optional = |v: &Option<String>| v.clone().map_or(HeaderValue::from_static(""), value);
        let values = [
            value(identity.user.clone()),
            value(identity.groups.join(",")),
            optional(&identity.email),
            optional(&identity.name),
        ];
        Self { identity, values }
    }
}

/// The holders of tokens seen before, so a token checked again resolves its holder without a
/// copy. One per [`crate::http::AppState`]: a reload (a user disabled, new groups) starts afresh. Only
/// tokens whose signature verified are looked up; a refusal (disabled, unlisted) is never kept.
/// Keyed by `jti` and checked against the very claims it was made from, so even two tokens
/// with one `jti` could not share a holder.
#[derive(Debug, Default)]
pub struct Holders(Mutex<Held>);

/// By `jti`: the claims a holder was made from, and the holder.
type Held = HashMap<String, (Arc<Claims>, Arc<Holder>), foldhash::fast::RandomState>;

impl Holders {
    /// The holder of a verified token, as the user table says now.
    ///
    /// # Errors
    /// When the user is disabled or no longer allowed.
    pub fn of(
        &self,
        claims: &Arc<Claims>,
        cfg: &Mapping,
    ) -> Result<Arc<Holder>, identity::IdentityError> {
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((made_from, holder)) = lock().get(&claims.jti) {
            if Arc::ptr_eq(made_from, claims) {
                return Ok(Arc::clone(holder));
            }
        }
        let holder = Arc::new(Holder::new(identity::from_claims(claims, cfg)?));
        let mut held = lock();
        if held.len() >= crate::jwt::cache::CAPACITY {
            held.clear();
        }
        held.insert(
            claims.jti.clone(),
            (Arc::clone(claims), Arc::clone(&holder)),
        );
        Ok(holder)
    }
}

#[cfg(test)]
mod tests {
    use super::{Holder, Holders};
    use crate::identity::IdentityError;
    use crate::identity::{Mapping, User, UsernameFrom};
    use crate::jwt::Claims;
    use std::sync::Arc;

    fn claims(sub: &str, jti: &str) -> Arc<Claims> {
        Arc::new(Claims {
            groups: vec!["from-token".into()],
            name: Some("Alice L".into()),
            ..Claims::for_test(sub, jti)
        })
    }

    fn table(disabled: bool, groups: &[&str]) -> Mapping {
        let alice = User {
            name: "alice".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            email: None,
            display_name: None,
            disabled,
            email_verified: false,
            ca: Vec::new(),
        };
        Mapping {
            username_from: UsernameFrom::Cn,
            allow_unlisted: false,
            users: [("alice".to_string(), alice)].into(),
            unlisted_ca: Vec::new(),
            any_ca: true,
            cas: Vec::new(),
        }
    }

    fn values(h: &Holder) -> Vec<&str> {
        h.values.iter().map(|v| v.to_str().unwrap()).collect()
    }

    #[test]
    fn a_holder_carries_the_identity_header_values() {
        let holders = Holders::default();
        let h = holders
            .of(&claims("alice", "j1"), &table(false, &["a", "b"]))
            .unwrap();
        // Groups from the table, the name from the token, no e-mail: an empty value.
        assert_eq!(values(&h), ["alice", "a,b", "", "Alice L"]);
    }

    #[test]
    fn a_holder_is_made_once_per_token_and_never_for_a_refusal() {
        let holders = Holders::default();
        let table = table(false, &["family"]);
        let token = claims("alice", "j1");
        let first = holders.of(&token, &table).unwrap();
        assert!(Arc::ptr_eq(&first, &holders.of(&token, &table).unwrap()));
        // Other claims under the same jti never get that holder.
        let other = holders.of(&claims("alice", "j1"), &table).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        // Nobody else's token is answered from the cache, and refusals are not kept.
        assert_eq!(
            holders.of(&claims("mallory", "j2"), &table).unwrap_err(),
            IdentityError::Unlisted("mallory".into())
        );
        assert_eq!(
            holders.of(&claims("mallory", "j2"), &table).unwrap_err(),
            IdentityError::Unlisted("mallory".into())
        );
    }
}
