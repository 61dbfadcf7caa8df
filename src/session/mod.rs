//! What certgate hands out once a certificate checked: the session cookie (`[session]`) and
//! bearer tokens (`[token]`), how long each lives, and the list of those issued ([`issued`]).

pub mod issued;

use std::time::Duration;

use serde::Deserialize;
use url::Url;

pub use issued::{Issued, Sessions};

use crate::policy::HostPattern;
use crate::settings::{list, Checker, HOUR};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawSession {
    pub cookie_name: Option<String>,
    pub cookie_domain: Option<String>,
    pub ttl: Option<String>,
    #[serde(deserialize_with = "list::opt_string_or_list")]
    pub allowed_redirect_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawToken {
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
}

/// `[session]`: the cookie `/auth` sets and where it may send a browser back to.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The full cookie name, prefix included (`__Host-certgate`).
    pub cookie_name: String,
    /// `Domain` attribute for single sign-on across subdomains.
    pub cookie_domain: Option<String>,
    /// False only when `public_url` is plain http (a lab without TLS).
    pub secure: bool,
    pub ttl: Duration,
    /// Lower-case host names; `*.example.com` matches any subdomain.
    pub allowed_redirect_hosts: Vec<String>,
}

/// `[token]`: lifetimes of the bearer tokens `/token` hands out.
#[derive(Debug, Clone, Copy)]
pub struct TokenSettings {
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

impl TokenSettings {
    /// Each lifetime on its own; [`Self::check`] compares them.
    pub fn from_raw(c: &mut Checker, raw: &RawToken) -> Self {
        Self {
            default_ttl: c.duration("token.default_ttl", raw.default_ttl.as_deref(), HOUR),
            max_ttl: c.duration("token.max_ttl", raw.max_ttl.as_deref(), 30 * 24 * HOUR),
        }
    }

    /// The default may not be longer than the longest allowed.
    pub fn check(&self, c: &mut Checker) {
        if self.default_ttl > self.max_ttl {
            c.fail(
                "token.default_ttl, token.max_ttl",
                "default_ttl is longer than max_ttl",
                "raise token.max_ttl or lower token.default_ttl",
            );
        }
    }
}

impl Settings {
    /// The cookie's name, prefix and domain follow `public_url` (`None` when it is itself
    /// invalid: then the cookie is checked on its own).
    pub fn from_raw(c: &mut Checker, raw: &RawSession, public_url: Option<&Url>) -> Self {
        let secure = public_url.is_none_or(|u| u.scheme() == "https");
        let base = cookie_base(c, raw);
        let domain = cookie_domain(c, raw, public_url);
        let cookie_name = match (secure, &domain) {
            (false, _) => base,
            (true, None) => format!("__Host-{base}"),
            (true, Some(_)) => format!("__Secure-{base}"),
        };
        let allowed_redirect_hosts = match &raw.allowed_redirect_hosts {
            Some(list) => list.iter().filter_map(|h| redirect_host(c, h)).collect(),
            None => public_url
                .and_then(Url::host_str)
                .map(|h| vec![h.to_ascii_lowercase()])
                .unwrap_or_default(),
        };
        Self {
            cookie_name,
            cookie_domain: domain,
            secure,
            ttl: c.duration("session.ttl", raw.ttl.as_deref(), HOUR),
            allowed_redirect_hosts,
        }
    }
}

/// `session.cookie_name` without its prefix.
fn cookie_base(c: &mut Checker, raw: &RawSession) -> String {
    let base = raw.cookie_name.clone().unwrap_or_else(|| "certgate".into());
    if base.is_empty()
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        c.fail(
            "session.cookie_name",
            format!("`{base}` is not a valid cookie name"),
            "use letters, digits, '-' and '_'",
        );
    }
    base
}

fn cookie_domain(c: &mut Checker, raw: &RawSession, public_url: Option<&Url>) -> Option<String> {
    let domain = raw
        .cookie_domain
        .as_deref()
        .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    if let (Some(domain), Some(url)) = (&domain, public_url) {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if host != *domain && !host.ends_with(&format!(".{domain}")) {
            c.fail(
                "session.cookie_domain, public_url",
                format!("public_url host `{host}` is not inside cookie_domain `{domain}`"),
                "the cookie must be settable by certgate: use a parent domain of the public_url host",
            );
        }
    }
    domain
}

fn redirect_host(c: &mut Checker, raw: &str) -> Option<String> {
    match HostPattern::parse(raw) {
        Ok(pattern) => Some(pattern.to_string()),
        Err(problem) => {
            c.fail(
                "session.allowed_redirect_hosts",
                problem,
                "list bare host names such as \"app.example.com\" or \"*.example.com\" (no scheme, port or path)",
            );
            None
        }
    }
}
