//! Which CA may issue which user. With several CAs in `client_ca.bundle` (the built-in one and
//! a company CA, say) either could otherwise issue `CN=alice`, and alice may be an admin. So
//! each user is bound to the CA(s) that issue their certificates: their own `ca`, else their
//! groups' `identity.group_ca`, else the built-in CA when it issued them a certificate. With
//! one CA nothing changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::settings::{RawIdentity, User};
use crate::cert::IssuerCa;
use crate::settings::Problem;

/// How a config names a CA, for hints.
const HOW: &str = "name a CA of client_ca.bundle by its subject CN, by `sha256:` and its fingerprint (`openssl x509 -noout -fingerprint -sha256 -in CA.pem`), or as `builtin` for certgate's own CA";

/// The CAs of the bundle, and which of them is certgate's own.
pub(super) struct Bundle {
    cas: Vec<IssuerCa>,
    builtin: Option<IssuerCa>,
    /// The users the built-in CA issued a certificate to (when it is in the bundle).
    issued_here: BTreeSet<String>,
    /// Each certificate's fingerprint, and the CA (in `cas`) it is.
    fingerprints: Vec<([u8; 32], usize)>,
}

impl Bundle {
    pub(super) fn new(client_ca: &[CertificateDer<'static>], data_dir: &Path) -> Self {
        // One entry per CA: a certificate listed twice, or renewed with the same key, is one.
        let all = IssuerCa::bundle(client_ca).unwrap_or_default();
        let mut cas: Vec<IssuerCa> = Vec::new();
        for ca in &all {
            match cas.iter_mut().find(|known| *known == ca) {
                Some(known) => known.issued_by.extend(ca.issued_by.iter().copied()),
                None => cas.push(ca.clone()),
            }
        }
        // Every certificate's fingerprint names its CA.
        let fingerprints = all
            .iter()
            .filter_map(|ca| {
                cas.iter()
                    .position(|known| known == ca)
                    .map(|i| (ca.fingerprint, i))
            })
            .collect();
        let builtin = CertificateDer::from_pem_file(data_dir.join("ca.pem"))
            .ok()
            .and_then(|der| IssuerCa::of(&der).ok())
            .and_then(|own| cas.iter().find(|ca| **ca == own).cloned());
        // Its certificates that were not revoked (a user who moved to another CA is no longer
        // bound here once their old certificate is revoked).
        let issued_here = match &builtin {
            Some(_) => {
                let store = crate::ca::store::CaStore::new(data_dir);
                let revoked = store.revoked().unwrap_or_default();
                store
                    .list()
                    .map(|records| {
                        records
                            .into_iter()
                            .filter(|r| !revoked.contains(&r.serial))
                            .map(|r| r.user)
                            .collect()
                    })
                    .unwrap_or_default()
            }
            None => BTreeSet::new(),
        };
        Self {
            cas,
            builtin,
            issued_here,
            fingerprints,
        }
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.cas.iter().map(|ca| &*ca.name).collect();
        names.join(", ")
    }

    /// The CA that `reference` names.
    fn resolve(&self, key: &str, reference: &str, problems: &mut Vec<Problem>) -> Option<IssuerCa> {
        let reference = reference.trim();
        let mut fail = |problem: String| {
            problems.push(Problem::new(key, problem, HOW));
            None
        };
        if reference.eq_ignore_ascii_case("builtin") {
            return match &self.builtin {
                Some(own) => Some(own.clone()),
                None => fail(
                    "`builtin`: certgate's own CA (data_dir/ca.pem) is not in client_ca.bundle"
                        .into(),
                ),
            };
        }
        let fingerprint = reference
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("sha256:"))
            .map(|_| reference[7..].replace(':', "").to_ascii_lowercase());
        let found: Vec<&IssuerCa> = match &fingerprint {
            Some(hex) => self
                .fingerprints
                .iter()
                .filter(|(fp, _)| hex::encode(fp) == *hex)
                .filter_map(|(_, i)| self.cas.get(*i))
                .take(1)
                .collect(),
            None => self
                .cas
                .iter()
                .filter(|ca| &*ca.name == reference)
                .collect(),
        };
        match found.as_slice() {
            [one] => Some((*one).clone()),
            [] => fail(format!(
                "no CA in client_ca.bundle is `{reference}` (the bundle holds: {})",
                self.names()
            )),
            [..] => fail(format!(
                "several CAs in client_ca.bundle are named `{reference}`: name one by its sha256 fingerprint"
            )),
        }
    }
}

/// Each user's raw `ca` references, by user name, with the index of their `[[users]]` entry.
pub(super) type UserCas = BTreeMap<String, (usize, Vec<String>)>;

/// What the binding settings come to.
pub(super) struct Bound {
    /// For users not in `[[users]]`; empty: none named.
    pub unlisted: Vec<IssuerCa>,
    /// Any CA of the bundle may issue a user not bound to one (one CA, or
    /// `client_ca.danger_any_ca_for_any_user`).
    pub any_ca: bool,
    /// The bundle's CAs, one entry each (to tell which CA a token's `x5ca` names).
    pub cas: Vec<IssuerCa>,
}

/// Binds every user in `users` (whose raw `ca` references are in `user_refs`, by user name,
/// with the index of their `[[users]]` entry) and checks that nobody is left unbound while
/// several CAs could issue them.
pub(super) fn bind(
    bundle: &Bundle,
    users: &mut BTreeMap<String, User>,
    user_refs: &UserCas,
    raw: &RawIdentity,
    allow_unlisted: bool,
    danger_any: bool,
    problems: &mut Vec<Problem>,
) -> Bound {
    let group_ca: BTreeMap<&str, Option<IssuerCa>> = raw
        .group_ca
        .iter()
        .map(|(group, reference)| {
            let key = format!("identity.group_ca.{group}");
            (group.as_str(), bundle.resolve(&key, reference, problems))
        })
        .collect();
    let unlisted: Vec<IssuerCa> = raw
        .unlisted_ca
        .iter()
        .filter_map(|r| bundle.resolve("identity.unlisted_ca", r, problems))
        .collect();
    for (name, user) in users.iter_mut() {
        if let Some((i, refs)) = user_refs.get(name) {
            let key = format!("users[{i}].ca");
            user.ca = refs
                .iter()
                .filter_map(|r| bundle.resolve(&key, r, problems))
                .collect();
        }
        if user.ca.is_empty() {
            for group in &user.groups {
                if let Some(Some(ca)) = group_ca.get(group.as_str()) {
                    if !user.ca.contains(ca) {
                        user.ca.push(ca.clone());
                    }
                }
            }
        }
        if user.ca.is_empty() && bundle.issued_here.contains(name) {
            user.ca.extend(bundle.builtin.clone());
        }
    }
    let any_ca = bundle.cas.len() <= 1 || danger_any;
    if !any_ca {
        let unbound: Vec<&str> = users
            .values()
            .filter(|u| u.ca.is_empty() && !u.disabled)
            .map(|u| u.name.as_str())
            .collect();
        if !unbound.is_empty() {
            problems.push(Problem::new(
                "users",
                format!(
                    "client_ca.bundle holds {} CAs ({}), and any of them could issue a certificate for these users: {}",
                    bundle.cas.len(),
                    bundle.names(),
                    unbound.join(", ")
                ),
                format!("bind each to the CA that issues their certificates with `ca = \"…\"` in their [[users]] entry or `identity.group_ca.GROUP = \"…\"` ({HOW}); or set client_ca.danger_any_ca_for_any_user = true to let any CA issue any user"),
            ));
        }
        if allow_unlisted && unlisted.is_empty() {
            problems.push(Problem::new(
                "identity.unlisted_ca",
                format!(
                    "identity.allow_unlisted lets in users of any of the {} CAs in client_ca.bundle ({})",
                    bundle.cas.len(),
                    bundle.names()
                ),
                format!("name the CA(s) whose certificates may sign in unlisted users ({HOW}), or set client_ca.danger_any_ca_for_any_user = true"),
            ));
        }
    }
    Bound {
        unlisted,
        any_ca,
        cas: bundle.cas.clone(),
    }
}
