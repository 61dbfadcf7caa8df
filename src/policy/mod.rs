//! Access rules: who may reach which host, path and method. A pure function of the rules,
//! the canonical request and (once known) the identity. First match wins; no match denies
//! unless `access.allow_unmatched` says otherwise.

pub mod canonical;
mod decide;
pub mod pattern;
pub mod scope;
mod settings;

use std::borrow::Cow;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::identity::Identity;
pub use decide::{bearer_limits, decide, Asker, Verdict};
pub use pattern::{host_allowed, HostPattern, PathPattern};
pub use settings::{RawAccess, RawRule};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    /// No credentials needed (a public `/manifest.json`).
    Bypass,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Position in the file, from 0 (`rules[0]`).
    pub index: usize,
    pub host: Option<HostPattern>,
    pub path: Option<PathPattern>,
    /// Upper-case; empty means any method.
    pub methods: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub networks: Vec<IpNet>,
    pub action: Action,
}

/// The canonical request a decision is about. Borrowed from the request where it already is
/// canonical: `/verify` builds one per check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// Canonical host; `None` when the proxy did not say (then host rules never match).
    pub host: Option<Cow<'a, str>>,
    /// Canonical path; `None` when unknown (then path rules never match).
    pub path: Option<Cow<'a, str>>,
    /// Upper-case.
    pub method: Cow<'a, str>,
    /// The client as the trusted proxy saw it, or the peer itself.
    pub client: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub allow_unmatched: bool,
    /// Where the rules came from, for explanations ("certgate.toml").
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Bypass {
        rule: usize,
    },
    Allow {
        rule: Option<usize>,
    },
    Deny {
        rule: Option<usize>,
    },
    /// A rule that names users or groups matched the request: authenticate, then ask again.
    NeedsIdentity {
        rule: Option<usize>,
    },
}

impl Rule {
    /// An unknown host, path or client never satisfies an allow or bypass rule, and always
    /// satisfies a deny rule: not knowing fails closed.
    fn matches_request(&self, r: &Request) -> bool {
        let unknown = self.action == Action::Deny;
        let host_ok = match (&self.host, &r.host) {
            (None, _) => true,
            (Some(p), Some(h)) => p.matches(h),
            (Some(_), None) => unknown,
        };
        let path_ok = match (&self.path, &r.path) {
            (None, _) => true,
            (Some(p), Some(path)) => p.matches(path),
            (Some(_), None) => unknown,
        };
        let method_ok = self.methods.is_empty() || self.methods.iter().any(|m| *m == r.method);
        let network_ok = self.networks.is_empty()
            || match r.client {
                Some(ip) => self.networks.iter().any(|n| n.contains(&normalise(ip))),
                None => unknown,
            };
        host_ok && path_ok && method_ok && network_ok
    }

    fn names_subjects(&self) -> bool {
        !self.users.is_empty() || !self.groups.is_empty()
    }

    fn matches_subject(&self, who: &Identity) -> bool {
        self.users.contains(&who.user) || self.groups.iter().any(|g| who.groups.contains(g))
    }

    /// A short description for logs, pages and `certgate explain`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("rules[{}]", self.index)];
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        if let Some(p) = &self.path {
            parts.push(format!("path {p}"));
        }
        if !self.methods.is_empty() {
            parts.push(format!("methods {}", self.methods.join(",")));
        }
        if !self.users.is_empty() {
            parts.push(format!("users {}", self.users.join(",")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("groups {}", self.groups.join(",")));
        }
        if !self.networks.is_empty() {
            let nets: Vec<String> = self.networks.iter().map(ToString::to_string).collect();
            parts.push(format!("networks {}", nets.join(",")));
        }
        let action = match self.action {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Bypass => "bypass",
        };
        parts.push(format!("action {action}"));
        parts.join(", ")
    }
}

fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Policy {
    /// Decides `request` for `who` (`None` before authentication).
    pub fn evaluate(&self, request: &Request, who: Option<&Identity>) -> Decision {
        for rule in self.rules.iter().filter(|r| r.matches_request(request)) {
            let index = Some(rule.index);
            match (rule.action, who) {
                (Action::Bypass, _) => return Decision::Bypass { rule: rule.index },
                (Action::Deny, _) if !rule.names_subjects() => {
                    return Decision::Deny { rule: index }
                }
                (_, None) => return Decision::NeedsIdentity { rule: index },
                (_, Some(who)) if rule.names_subjects() && !rule.matches_subject(who) => continue,
                (Action::Allow, Some(_)) => return Decision::Allow { rule: index },
                (Action::Deny, Some(_)) => return Decision::Deny { rule: index },
            }
        }
        match (self.allow_unmatched, who) {
            (true, Some(_)) => Decision::Allow { rule: None },
            (true, None) => Decision::NeedsIdentity { rule: None },
            (false, _) => Decision::Deny { rule: None },
        }
    }

    pub fn rule(&self, index: Option<usize>) -> Option<&Rule> {
        index.and_then(|i| self.rules.get(i))
    }

    /// Why, in a sentence, for pages and `certgate explain`.
    pub fn explain(&self, decision: &Decision) -> String {
        self.explain_with(decision, true)
    }

    /// [`Self::explain`] without the config file's path, for pages people read.
    pub fn explain_briefly(&self, decision: &Decision) -> String {
        self.explain_with(decision, false)
    }

    fn explain_with(&self, decision: &Decision, with_source: bool) -> String {
        let rule = |i: &Option<usize>| {
            self.rule(*i)
                .map(|r| {
                    if with_source {
                        format!("{} in {}", r.describe(), self.source)
                    } else {
                        r.describe()
                    }
                })
                .unwrap_or_default()
        };
        match decision {
            Decision::Bypass { rule: i } => format!("public by {}", rule(&Some(*i))),
            Decision::Allow { rule: None } => {
                "allowed: no rule matched and access.allow_unmatched is true".into()
            }
            Decision::Allow { rule: i } => format!("allowed by {}", rule(i)),
            Decision::Deny { rule: None } => {
                "denied: no rule matched (access is denied by default)".into()
            }
            Decision::Deny { rule: i } => format!("denied by {}", rule(i)),
            Decision::NeedsIdentity { rule: None } => "sign-in required".into(),
            Decision::NeedsIdentity { rule: i } => format!("sign-in required by {}", rule(i)),
        }
    }
}

#[cfg(test)]
mod tests;
