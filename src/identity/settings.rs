//! `[identity]` and `[[users]]`: how a certificate names its user, who is listed, and which CA
//! may issue whom (see [`super::binding`]).

use std::collections::BTreeMap;
use std::path::Path;

use rustls_pki_types::CertificateDer;
use serde::Deserialize;

use super::binding::{self, Bundle, UserCas};
use crate::cert::IssuerCa;
use crate::settings::{list, Checker};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawIdentity {
    pub username_from: Option<String>,
    pub allow_unlisted: Option<bool>,
    /// Group name to the CA (subject CN, or `sha256:` fingerprint) that issues its members.
    pub group_ca: BTreeMap<String, String>,
    /// The CA(s) that may issue users not listed in `[[users]]` (with `allow_unlisted`).
    #[serde(deserialize_with = "list::string_or_list")]
    pub unlisted_ca: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawUser {
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// The CA(s) that may issue this user's certificates: subject CN, or `sha256:` fingerprint.
    #[serde(deserialize_with = "list::string_or_list")]
    pub ca: Vec<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub disabled: bool,
    /// The operator vouches for `email` (OpenID Connect's `email_verified`).
    pub email_verified: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameFrom {
    Cn,
    SanEmail,
    SanUri,
    SanDns,
}

/// Certificates and token claims to users: the validated `[identity]` and `[[users]]`.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub username_from: UsernameFrom,
    pub allow_unlisted: bool,
    pub users: BTreeMap<String, User>,
    /// The CAs that may issue users not listed (`identity.unlisted_ca`); empty: see `any_ca`.
    pub unlisted_ca: Vec<IssuerCa>,
    /// Whether any CA of the bundle may issue a user bound to none: one CA in the bundle, or
    /// `client_ca.danger_any_ca_for_any_user`.
    pub any_ca: bool,
    /// The bundle's CAs, one entry each (what a token's `x5ca` claim names).
    pub cas: Vec<IssuerCa>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub disabled: bool,
    /// `email` is the person's, as the operator checked (OpenID Connect's `email_verified`).
    pub email_verified: bool,
    /// The CAs that may issue this user's certificates (see `identity::binding`); empty: any,
    /// where `Mapping::any_ca` says so, else none.
    pub ca: Vec<IssuerCa>,
}

/// What [`Mapping::from_raw`] reads besides its own sections.
pub struct Context<'a> {
    /// `client_ca.bundle`, already read.
    pub client_ca: &'a [CertificateDer<'static>],
    /// `client_ca.danger_any_ca_for_any_user`.
    pub danger_any_ca: bool,
    /// Where the built-in CA keeps its certificate and the users it issued.
    pub data_dir: &'a Path,
}

impl Mapping {
    pub fn from_raw(
        c: &mut Checker,
        raw: &RawIdentity,
        raw_users: Vec<RawUser>,
        cx: &Context<'_>,
    ) -> Self {
        let username_from = match raw.username_from.as_deref().unwrap_or("cn") {
            "cn" => UsernameFrom::Cn,
            "san_email" => UsernameFrom::SanEmail,
            "san_uri" => UsernameFrom::SanUri,
            "san_dns" => UsernameFrom::SanDns,
            other => {
                c.fail(
                    "identity.username_from",
                    format!("`{other}` is not a username source"),
                    "use one of cn, san_email, san_uri, san_dns",
                );
                UsernameFrom::Cn
            }
        };
        let allow_unlisted = raw.allow_unlisted.unwrap_or(false);
        let (mut users, user_cas) = users(c, raw_users);
        let bound = binding::bind(
            &Bundle::new(cx.client_ca, cx.data_dir),
            &mut users,
            &user_cas,
            raw,
            allow_unlisted,
            cx.danger_any_ca,
            &mut c.0,
        );
        Self {
            username_from,
            allow_unlisted,
            users,
            unlisted_ca: bound.unlisted,
            any_ca: bound.any_ca,
            cas: bound.cas,
        }
    }
}

/// The `[[users]]` table, and each user's `ca` references with the index of their entry (for
/// [`super::binding`]).
fn users(c: &mut Checker, raw: Vec<RawUser>) -> (BTreeMap<String, User>, UserCas) {
    let mut users = BTreeMap::new();
    let mut cas = BTreeMap::new();
    for (i, u) in raw.into_iter().enumerate() {
        let key = format!("users[{i}].name");
        let Some(name) = u.name.filter(|n| !n.trim().is_empty()) else {
            c.fail(&key, "missing", "every [[users]] entry needs a name");
            continue;
        };
        if users.contains_key(&name) {
            c.fail(
                &key,
                format!("user `{name}` is listed twice"),
                "merge the two entries",
            );
            continue;
        }
        for group in &u.groups {
            if group.is_empty() || group.contains(',') || group.chars().any(char::is_control) {
                c.fail(
                    &format!("users[{i}].groups"),
                    format!("`{group}` is not a usable group name"),
                    "group names are sent comma-separated in Remote-Groups: no commas, no control characters",
                );
            }
        }
        if u.email_verified && u.email.is_none() {
            c.fail(
                &format!("users[{i}].email_verified"),
                "is true, but the user has no email",
                "set users.email to the address you checked, or remove email_verified",
            );
        }
        let user = User {
            name: name.clone(),
            groups: u.groups,
            email: u.email,
            display_name: u.display_name,
            disabled: u.disabled,
            email_verified: u.email_verified,
            ca: Vec::new(),
        };
        if !u.ca.is_empty() {
            cas.insert(name.clone(), (i, u.ca));
        }
        users.insert(name, user);
    }
    (users, cas)
}
