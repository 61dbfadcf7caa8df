//! Who a credential belongs to. Pure functions of the certificate (or token claims) and the
//! `[identity]`/`[[users]]` configuration; default deny for users not listed.

mod binding;
mod headers;
mod settings;

pub use headers::{HeaderNames, RawHeaders};
pub use settings::{Context, Mapping, RawIdentity, RawUser, User, UsernameFrom};

use crate::cert::{IssuerCa, VerifiedCert};
use crate::jwt::{Claims, Subject};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    pub email: Option<String>,
    /// Only an address from `[[users]]` with `email_verified = true` is verified; one from a
    /// certificate or a token is what it says, unchecked.
    pub email_verified: bool,
    pub name: Option<String>,
}

impl Identity {
    /// What a token minted for this holder of `cert` says (a session at `/auth`, a bearer
    /// token at `/token`): the certificate's thumbprint, serial and CA bind it.
    pub fn subject_with_cert(self, cert: &VerifiedCert) -> Subject {
        let c = cert.cert();
        Subject {
            cert_thumbprint: Some(c.thumbprint.clone()),
            cert_serial: Some(c.serial.to_string()),
            cert_ca: Some(cert.issuer().claim()),
            ..self.subject()
        }
    }

    /// What a token minted from the session `claims` says: the session's certificate binding
    /// carries over, so revoking the certificate ends both.
    pub fn subject_with_session(self, claims: &Claims) -> Subject {
        Subject {
            cert_thumbprint: claims.cnf.as_ref().map(|c| c.x5t_s256.clone()),
            cert_serial: claims.x5s.clone(),
            cert_ca: claims.x5ca.clone(),
            ..self.subject()
        }
    }

    fn subject(self) -> Subject {
        Subject {
            user: self.user,
            groups: self.groups,
            email: self.email,
            name: self.name,
            ..Subject::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the certificate has no {0} to take the user name from")]
    NoUsername(&'static str),
    #[error("the user name {0:?} contains characters that cannot be passed on")]
    BadUsername(String),
    #[error("user {0} is not listed in [[users]]")]
    Unlisted(String),
    #[error("user {0} is disabled")]
    Disabled(String),
    /// Locked out at run time (`certgate user disable`, the admin page): until let back in.
    #[error("{0}'s account is locked: an administrator has locked it out for now")]
    Locked(String),
    #[error("the user name {0:?} is not listed, and too like the listed user {1:?} to be let in as another")]
    LookAlike(String, String),
    #[error("user {user}'s certificates come from {expected}; this one was issued by {issuer}")]
    WrongCa {
        user: String,
        issuer: String,
        expected: String,
    },
}

/// Maps a verified certificate to a user.
///
/// # Errors
/// When the certificate names no usable user, or the user is unlisted (without
/// `identity.allow_unlisted`) or disabled.
pub fn from_cert(cert: &VerifiedCert, cfg: &Mapping) -> Result<Identity, IdentityError> {
    let c = cert.cert();
    let (username, source) = match cfg.username_from {
        UsernameFrom::Cn => (c.common_name.as_deref(), "common name (CN)"),
        UsernameFrom::SanEmail => (first(&c.emails), "e-mail subject alternative name"),
        UsernameFrom::SanUri => (first(&c.uris), "URI subject alternative name"),
        UsernameFrom::SanDns => (first(&c.dns_names), "DNS subject alternative name"),
    };
    let user = username.ok_or(IdentityError::NoUsername(source))?;
    let who = resolve(
        Claimed {
            user,
            groups: &[],
            email: first(&c.emails),
            name: c.common_name.as_deref(),
        },
        cfg,
    )?;
    check_issuer(cert, &who.user, cfg)?;
    Ok(who)
}

fn check_issuer(cert: &VerifiedCert, user: &str, cfg: &Mapping) -> Result<(), IdentityError> {
    allowed_issuer(Some(cert.issuer()), user, cfg)
}

/// With several CAs in the bundle, a user signs in only with a certificate of a CA bound to
/// them, or of a CA one of those issued (see [`binding`]); a user bound to none, only
/// where any CA may issue anyone. `issuer` is `None` when it cannot be known (a token of a CA
/// no longer in the bundle): then only a user any CA may issue passes.
fn allowed_issuer(
    issuer: Option<&IssuerCa>,
    user: &str,
    cfg: &Mapping,
) -> Result<(), IdentityError> {
    let bound = match cfg.users.get(user) {
        Some(listed) => &listed.ca,
        None => &cfg.unlisted_ca,
    };
    if bound.is_empty() && cfg.any_ca {
        return Ok(());
    }
    if issuer.is_some_and(|ca| ca.within(bound)) {
        return Ok(());
    }
    let expected: Vec<&str> = bound.iter().map(|ca| &*ca.name).collect();
    Err(IdentityError::WrongCa {
        user: user.to_owned(),
        issuer: issuer.map_or_else(
            || "a CA not in client_ca.bundle".into(),
            |ca| ca.name.to_string(),
        ),
        expected: if expected.is_empty() {
            "no CA named in the configuration".into()
        } else {
            expected.join(" or ")
        },
    })
}

/// Re-checks a token's holder against the current user table, so disabling a user takes
/// effect on live sessions. Listed users get their current groups; unlisted ones keep the
/// token's (they can only exist with `allow_unlisted`).
///
/// # Errors
/// When the user is now disabled or no longer allowed.
pub fn from_claims(claims: &Claims, cfg: &Mapping) -> Result<Identity, IdentityError> {
    let who = resolve(
        Claimed {
            user: &claims.sub,
            groups: &claims.groups,
            email: claims.email.as_deref(),
            name: claims.name.as_deref(),
        },
        cfg,
    )?;
    // The CA the token's certificate chained to, as the bundle knows it now.
    let issuer = match claims.x5ca.as_deref() {
        Some(claim) => cfg.cas.iter().find(|ca| ca.claim() == claim),
        // Minted before tokens named their CA: only one CA can have issued it.
        None if cfg.cas.len() <= 1 => cfg.cas.first(),
        None => None,
    };
    allowed_issuer(issuer, &who.user, cfg)?;
    Ok(who)
}

/// A user by name, as the user table (or `allow_unlisted`) says (for `certgate explain`).
///
/// # Errors
/// When the user is disabled or not allowed.
pub fn from_user(user: &str, cfg: &Mapping) -> Result<Identity, IdentityError> {
    resolve(
        Claimed {
            user,
            groups: &[],
            email: None,
            name: None,
        },
        cfg,
    )
}

/// What a credential says about its holder, before the user table has its say (borrowed:
/// this runs on every check, and a listed user's table entry wins anyway).
struct Claimed<'a> {
    user: &'a str,
    groups: &'a [String],
    email: Option<&'a str>,
    name: Option<&'a str>,
}

fn first(v: &[String]) -> Option<&str> {
    v.first().map(String::as_str)
}

fn resolve(found: Claimed<'_>, cfg: &Mapping) -> Result<Identity, IdentityError> {
    if found.user.is_empty()
        || found.user.trim() != found.user
        || found.user.len() > 256
        || found.user.chars().any(|ch| ch.is_control() || ch == ',')
    {
        return Err(IdentityError::BadUsername(found.user.to_owned()));
    }
    let owned = |v: Option<&str>| v.map(str::to_owned);
    match cfg.users.get(found.user) {
        Some(User { disabled: true, .. }) => Err(IdentityError::Disabled(found.user.to_owned())),
        Some(user) => Ok(Identity {
            user: user.name.clone(),
            groups: user.groups.clone(),
            email_verified: user.email_verified && user.email.is_some(),
            email: user.email.clone().or_else(|| owned(found.email)),
            name: user.display_name.clone().or_else(|| owned(found.name)),
        }),
        // Another CA's `CN=Alice` is not alice, and must not pass for her in an app that
        // folds case.
        None if cfg.allow_unlisted => {
            if let Some(listed) = cfg
                .users
                .keys()
                .find(|name| name.eq_ignore_ascii_case(found.user))
            {
                return Err(IdentityError::LookAlike(
                    found.user.to_owned(),
                    listed.clone(),
                ));
            }
            Ok(Identity {
                user: found.user.to_owned(),
                groups: found.groups.to_vec(),
                email: owned(found.email),
                email_verified: false,
                name: owned(found.name),
            })
        }
        None => Err(IdentityError::Unlisted(found.user.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{Ca, ClientSpec};
    use crate::cert::{PresentedChain, TrustStore};
    use std::collections::BTreeMap;

    fn verified(spec: &ClientSpec) -> VerifiedCert {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ca = Ca::generate("Identity CA", now).unwrap();
        let issued = ca.issue(spec, now).unwrap();
        let store = TrustStore::new(&[ca.cert_der.clone().into()]).unwrap();
        store
            .verify(&PresentedChain(vec![issued.cert_der.into()]), now)
            .unwrap()
    }

    fn cfg(from: UsernameFrom, allow_unlisted: bool, users: &[User]) -> Mapping {
        Mapping {
            username_from: from,
            allow_unlisted,
            users: users
                .iter()
                .map(|u| (u.name.clone(), u.clone()))
                .collect::<BTreeMap<_, _>>(),
            unlisted_ca: Vec::new(),
            any_ca: true,
            cas: Vec::new(),
        }
    }

    fn user(name: &str, disabled: bool) -> User {
        User {
            name: name.into(),
            groups: vec!["admins".into()],
            email: Some(format!("{name}@example.test")),
            display_name: Some("Alice Liddell".into()),
            disabled,
            email_verified: true,
            ca: Vec::new(),
        }
    }

    #[test]
    fn listed_user_gets_groups_from_the_table() {
        let id = from_cert(
            &verified(&ClientSpec::new("alice", 1)),
            &cfg(UsernameFrom::Cn, false, &[user("alice", false)]),
        )
        .unwrap();
        assert_eq!(id.user, "alice");
        assert_eq!(id.groups, vec!["admins"]);
        assert_eq!(id.name.as_deref(), Some("Alice Liddell"));
        assert!(id.email_verified, "the table vouches for its address");
    }

    #[test]
    fn unlisted_user_is_denied_by_default_and_allowed_when_asked() {
        let cert = verified(&ClientSpec::new("mallory", 1));
        assert_eq!(
            from_cert(&cert, &cfg(UsernameFrom::Cn, false, &[])),
            Err(IdentityError::Unlisted("mallory".into()))
        );
        assert_eq!(
            from_cert(&cert, &cfg(UsernameFrom::Cn, true, &[]))
                .unwrap()
                .user,
            "mallory"
        );
    }

    #[test]
    fn an_unlisted_name_like_a_listed_one_is_refused() {
        let table = cfg(UsernameFrom::Cn, true, &[user("alice", false)]);
        assert_eq!(
            from_cert(&verified(&ClientSpec::new("Alice", 1)), &table),
            Err(IdentityError::LookAlike("Alice".into(), "alice".into()))
        );
        assert_eq!(
            from_cert(&verified(&ClientSpec::new("alice ", 1)), &table),
            Err(IdentityError::BadUsername("alice ".into()))
        );
        assert_eq!(
            from_cert(&verified(&ClientSpec::new("alicia", 1)), &table).map(|id| id.user),
            Ok("alicia".into())
        );
    }

    #[test]
    fn disabled_user_is_refused() {
        let cert = verified(&ClientSpec::new("alice", 1));
        assert_eq!(
            from_cert(&cert, &cfg(UsernameFrom::Cn, true, &[user("alice", true)])),
            Err(IdentityError::Disabled("alice".into()))
        );
    }

    #[test]
    fn username_can_come_from_each_san_kind() {
        let mut spec = ClientSpec::new("Alice L", 1);
        spec.emails = vec!["alice@example.test".into()];
        spec.uris = vec!["urn:user:alice".into()];
        spec.dns_names = vec!["alice.devices.example.test".into()];
        let cert = verified(&spec);
        for (from, want) in [
            (UsernameFrom::Cn, "Alice L"),
            (UsernameFrom::SanEmail, "alice@example.test"),
            (UsernameFrom::SanUri, "urn:user:alice"),
            (UsernameFrom::SanDns, "alice.devices.example.test"),
        ] {
            assert_eq!(from_cert(&cert, &cfg(from, true, &[])).unwrap().user, want);
        }
        let bare = verified(&ClientSpec::new("bob", 1));
        assert!(matches!(
            from_cert(&bare, &cfg(UsernameFrom::SanEmail, true, &[])),
            Err(IdentityError::NoUsername(_))
        ));
    }
}
