//! The decision of a check, in one pure function that `/verify` and `certgate explain` both
//! call, so what the rules say and what the gateway does cannot drift apart.
//!
//! The rules are asked first without an identity: a public path needs no credential and a
//! path closed to everyone reads none. Only then is the caller's `authenticate` run (find the
//! credential, check its standing, resolve its holder), the rules are asked again for that
//! holder, and a scoped bearer token's grants must cover the request too.

use super::scope::{self, Grant};
use super::{Decision, Policy, Request};
use crate::identity::Identity;
use crate::jwt::Claims;

/// Whoever asks, as a decision sees them.
pub trait Asker {
    fn identity(&self) -> &Identity;
    /// What a scoped bearer token limits its holder to; `None`: no limit beyond the rules.
    fn grants(&self) -> Option<&[Grant]>;
}

/// What a check comes to. `A` is the holder `authenticate` found, `R` why it found none.
#[derive(Debug)]
pub enum Verdict<A, R> {
    /// Public (a bypass rule): no credential needed, and none was read.
    Public(Decision),
    /// Nobody may open this; no credential was read.
    Closed(Decision),
    /// A holder was needed and none could be found.
    Unauthenticated {
        decision: Decision,
        why: R,
    },
    Allowed {
        decision: Decision,
        asker: A,
    },
    /// The rules deny this holder.
    Denied {
        decision: Decision,
        asker: A,
    },
    /// The rules allow the holder, but their token's scope does not cover the request.
    OutOfScope {
        decision: Decision,
        asker: A,
    },
}

impl<A, R> Verdict<A, R> {
    /// The rules' last word, for explanations.
    pub fn decision(&self) -> &Decision {
        match self {
            Self::Public(d) | Self::Closed(d) => d,
            Self::Unauthenticated { decision, .. }
            | Self::Allowed { decision, .. }
            | Self::Denied { decision, .. }
            | Self::OutOfScope { decision, .. } => decision,
        }
    }
}

impl Decision {
    /// The rule that decided, if one did.
    pub fn rule(&self) -> Option<usize> {
        match self {
            Self::Bypass { rule } => Some(*rule),
            Self::Allow { rule } | Self::Deny { rule } | Self::NeedsIdentity { rule } => *rule,
        }
    }
}

/// Decides `request`; runs `authenticate` only when the rules need to know who asks.
pub fn decide<A: Asker, R>(
    policy: &Policy,
    request: &Request,
    authenticate: impl FnOnce() -> Result<A, R>,
) -> Verdict<A, R> {
    let decision = policy.evaluate(request, None);
    match decision {
        Decision::Bypass { .. } => return Verdict::Public(decision),
        Decision::Deny { .. } => return Verdict::Closed(decision),
        Decision::Allow { .. } | Decision::NeedsIdentity { .. } => {}
    }
    let asker = match authenticate() {
        Ok(asker) => asker,
        Err(why) => return Verdict::Unauthenticated { decision, why },
    };
    let decision = policy.evaluate(request, Some(asker.identity()));
    match decision {
        Decision::Allow { .. } | Decision::Bypass { .. } => {}
        Decision::Deny { .. } | Decision::NeedsIdentity { .. } => {
            return Verdict::Denied { decision, asker }
        }
    }
    match asker.grants() {
        Some(grants) if !scope::covers(grants, request) => Verdict::OutOfScope { decision, asker },
        _ => Verdict::Allowed { decision, asker },
    }
}

/// What a bearer token limits its holder to: the app hosts it is meant for (RFC 8707; none
/// named: any) must include the request's canonical `host`, and its scope, if any, becomes
/// the grants [`decide`] checks.
///
/// # Errors
/// Why the token cannot be used here (it is then an invalid token).
pub fn bearer_limits(
    claims: &Claims,
    issuer: &str,
    host: Option<&str>,
) -> Result<Option<Vec<Grant>>, String> {
    let hosts = claims.aud.app_hosts(issuer);
    if !hosts.is_empty() {
        match host {
            Some(host) if hosts.iter().any(|h| h == host) => {}
            other => {
                let what = other.unwrap_or("a request of unknown host");
                return Err(format!("the token is not meant for {what}"));
            }
        }
    }
    claims.scope.as_deref().map(scope::parse).transpose()
}
