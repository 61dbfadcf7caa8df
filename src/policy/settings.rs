//! `[[rules]]` and `[access]` as written, and the checks that turn them into a [`Policy`].

use serde::Deserialize;

use super::{Action, HostPattern, PathPattern, Policy, Rule};
use crate::settings::{ip_network, Checker};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawAccess {
    pub allow_unmatched: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawRule {
    pub host: Option<String>,
    pub path: Option<String>,
    pub methods: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub networks: Vec<String>,
    pub action: Option<String>,
}

impl Policy {
    /// Every rule is checked; one with a problem is left out (and the problem reported).
    /// `source` names the file, for explanations.
    pub fn from_raw(c: &mut Checker, rules: &[RawRule], access: &RawAccess, source: &str) -> Self {
        Self {
            rules: rules
                .iter()
                .enumerate()
                .filter_map(|(i, r)| rule(c, i, r))
                .collect(),
            allow_unmatched: access.allow_unmatched.unwrap_or(false),
            source: source.to_string(),
        }
    }
}

fn rule(c: &mut Checker, i: usize, raw: &RawRule) -> Option<Rule> {
    let key = |field: &str| format!("rules[{i}].{field}");
    let before = c.0.len();
    let host = raw.host.as_deref().and_then(|h| {
        HostPattern::parse(h)
            .map_err(|e| {
                c.fail(
                    &key("host"),
                    e,
                    "an exact host or *.example.com, no scheme or port",
                )
            })
            .ok()
    });
    let path = raw.path.as_deref().and_then(|p| {
        PathPattern::parse(p)
            .map_err(|e| {
                c.fail(
                    &key("path"),
                    e,
                    "e.g. \"/admin\", \"/admin/**\" or \"/api/*/state\"",
                )
            })
            .ok()
    });
    let methods = methods(c, &key("methods"), &raw.methods);
    let networks = raw
        .networks
        .iter()
        .filter_map(|n| {
            let net = ip_network(n);
            if net.is_none() {
                c.fail(
                    &key("networks"),
                    format!("`{n}` is not an IP network"),
                    "CIDR, e.g. \"10.0.0.0/8\"",
                );
            }
            net
        })
        .collect();
    let action = action(c, &key("action"), raw);
    (c.0.len() == before).then(|| Rule {
        index: i,
        host,
        path,
        methods,
        users: raw.users.clone(),
        groups: raw.groups.clone(),
        networks,
        action,
    })
}

fn methods(c: &mut Checker, key: &str, raw: &[String]) -> Vec<String> {
    let mut methods = Vec::new();
    for m in raw {
        let upper = m.trim().to_ascii_uppercase();
        if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            c.fail(
                key,
                format!("`{m}` is not an HTTP method"),
                "e.g. [\"GET\", \"POST\"]",
            );
        }
        methods.push(upper);
    }
    methods
}

fn action(c: &mut Checker, key: &str, raw: &RawRule) -> Action {
    let action = match raw.action.as_deref() {
        Some("allow") => Action::Allow,
        Some("deny") => Action::Deny,
        Some("bypass") => Action::Bypass,
        Some(other) => {
            c.fail(
                key,
                format!("`{other}` is not an action"),
                "allow, deny or bypass",
            );
            Action::Deny
        }
        None => {
            c.fail(key, "missing", "every rule says allow, deny or bypass");
            Action::Deny
        }
    };
    if action == Action::Bypass && (!raw.users.is_empty() || !raw.groups.is_empty()) {
        c.fail(
            key,
            "a bypass rule cannot name users or groups",
            "bypass means no credentials are asked for; use allow for named users",
        );
    }
    action
}
